//! Integration tests: the real server on a real socket (port 0), a fresh data folder per test,
//! real SQLite files, spoken to over HTTP.

mod account_data;
mod actors;
mod audit;
mod auth;
mod bad_input;
mod cli;
mod edit_notes;
mod faults;
mod files;
mod flood;
mod helpers;
mod hostile;
mod isolation;
mod limits;
mod live_files;
mod mcp_features;
mod move_crash;
mod notes_history;
mod oauth;
mod observability;
mod quotas;
mod scopes;
mod session_ids;
mod signin;
mod stateless;
mod stdio;
mod tools;
mod transport;
mod web;
