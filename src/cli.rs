//! The command line: `vault-mcp [serve]` runs the server, `vault-mcp token` mints a token,
//! `vault-mcp stdio` serves a vault over stdin/stdout, `vault-mcp import` adds a folder or an
//! archive to a vault.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use vault_actors::caller::{Access, Grant};

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
    /// Import a folder (an Obsidian vault, say) or a .tar.gz / .zip archive into a vault,
    /// skipping `.obsidian/`, `.trash/` and dot files; prints what was imported and skipped
    /// (JSON). Refuses while a server holds the data folder.
    Import(ImportArgs),
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The folder or archive to import.
    pub source: PathBuf,
    /// Into whose vault (the local-mode user by default).
    #[arg(long, default_value = "local")]
    pub user: String,
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
    /// Restrict the token (repeatable): notes:read or notes:write for the whole vault,
    /// notes:read:<folder> or notes:write:<folder> for one folder and everything below it,
    /// e.g. --scope notes:write:work --scope "notes:read:Shared Notes". Write implies read.
    /// Default: full access.
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
}

impl TokenArgs {
    /// The token's `scope` claim (empty = full access) and the access it gives; a scope that
    /// is unknown or names an invalid folder is refused with the reason.
    pub fn scope_claim(&self) -> Result<(Vec<String>, Access), String> {
        if self.scopes.is_empty() {
            return Ok((Vec::new(), Access::full()));
        }
        let grants = self
            .scopes
            .iter()
            .map(|s| Grant::parse(s).map_err(|e| format!("--scope: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let access = Access::of(&grants);
        Ok((access.to_claim(), access))
    }
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
