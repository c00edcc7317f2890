//! The actor side of vault-mcp: everything that owns or touches a user's data, and nothing that
//! knows HTTP.
//!
//! The request path, in three files:
//! - [`supervisor`]: the only way to reach a user's actor; spawns it lazily, restarts it after a
//!   crash, retires it when idle, and never lets two actors own one vault.
//! - [`user_actor`]: one actor per user; serialises that user's operations and runs them (SQL
//!   and file I/O) through its [`worker`] queue on the shared job threads ([`pool`]), off the
//!   async workers.
//! - [`mcp::dispatch`]: turns one JSON-RPC message into an MCP answer for a user's session.
//!
//! Below them: [`vault`] (note paths, markdown, crash-safe files), [`index`] (the per-user SQLite
//! file: FTS5 index, links, tags, versions, sessions) and [`session`] (MCP session state).

pub mod caller;
pub mod error;
pub mod hub;
pub mod index;
pub mod mcp;
pub mod pool;
pub mod session;
pub mod settings;
pub mod supervisor;
pub mod user_actor;
pub mod user_id;
pub mod vault;
pub mod worker;

pub use caller::Caller;
pub use error::VaultError;
pub use settings::Settings;
pub use supervisor::Supervisor;
pub use user_id::UserId;
