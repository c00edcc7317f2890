//! vault-mcp, the process: configuration, the HTTP front and the wiring to the actors.
//!
//! Start here: [`app::Application`] binds the socket and builds the [`http::router`]; every MCP
//! call then goes router → `vault_actors::Supervisor` → the user's actor.

pub mod account_data;
pub mod accounts;
pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod client_metadata;
pub mod config;
pub mod health;
pub mod http;
pub mod lock;
pub mod metrics;
pub mod signin;
pub mod stdio;
pub mod telemetry;
