//! The command line: `vault-mcp [serve]` runs the server, `vault-mcp token` mints a token,
//! `vault-mcp stdio` serves a vault over stdin/stdout.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{Mode, Overrides};

#[derive(Debug, Parser)]
#[command(
    name = "vault-mcp",
    version,
    about = "A multi-tenant MCP server for private markdown vaults"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default when no command is given).
    Serve,
    /// Print a bearer token for a user, signed with this server's secret.
    Token(TokenArgs),
    /// Serve one vault over stdin/stdout (MCP stdio transport), for clients that start a
    /// command. Refuses to start while another vault-mcp holds the data folder.
    Stdio(StdioArgs),
}

#[derive(Debug, Args)]
pub struct StdioArgs {
    /// Whose vault to serve (the local-mode user by default).
    #[arg(long, default_value = "local")]
    pub user: String,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The user id (the token's `sub`): 1-64 characters of [A-Za-z0-9._-].
    #[arg(long)]
    pub user: String,
    /// How long the token is valid, e.g. 1h, 7d.
    #[arg(long, default_value = "7d")]
    pub ttl: String,
    /// Restrict the token, e.g. --scope notes:read (repeatable). Default: full access.
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
}

/// Settings every command takes (they override the environment and the config file).
#[derive(Debug, Args)]
pub struct Common {
    /// A TOML file with settings to change (see config.toml for every key).
    #[arg(long, global = true, env = "VAULT_MCP_CONFIG")]
    pub config: Option<PathBuf>,
    /// local (single user, generated secret) or space (multi-tenant, needs JWT_SECRET_KEY).
    #[arg(long, global = true, value_enum)]
    pub mode: Option<Mode>,
    /// Address to listen on.
    #[arg(long, global = true)]
    pub host: Option<String>,
    /// Port to listen on (0 = any free port).
    #[arg(long, global = true)]
    pub port: Option<u16>,
    /// Folder for vaults, indexes and the local secret.
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
}

impl Common {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            mode: self.mode,
            host: self.host.clone(),
            port: self.port,
            data_dir: self.data_dir.clone(),
        }
    }
}
