//! Integration tests: the real server on a real socket (port 0), a fresh data folder per test,
//! real SQLite files, spoken to over HTTP.

mod actors;
mod audit;
mod auth;
mod bad_input;
mod cli;
mod faults;
mod files;
mod flood;
mod helpers;
mod hostile;
mod isolation;
mod limits;
mod mcp_features;
mod oauth;
mod observability;
mod quotas;
mod signin;
mod stdio;
mod tools;
mod transport;
mod web;
