//! The actor side of vault-mcp: everything that owns or touches a user's data, and nothing that
//! knows HTTP.
//!
//! The request path, top down (the HTTP router calls the [`supervisor`]):
//! - [`supervisor`]: the only way to reach a user's actor; spawns it lazily, restarts it after a
//!   crash, retires it when idle, and never lets two actors own one vault.
//! - [`user_actor`]: one actor per user; serialises that user's operations and runs them (SQL
//!   and file I/O) through its [`worker`] queue on the shared job threads ([`pool`]), off the
//!   async workers. The messages both actors take live below them, in [`messages`].
//! - [`user_core`]: the user's data while the actor runs (vault, sessions, hub), changed only
//!   by the worker's jobs.
//! - [`mcp::dispatch`]: turns one JSON-RPC message into an MCP answer for a user's session.
//!
//! Below them: [`vault`] (note files: frontmatter, body scanning, crash-safe writes, reconcile),
//! [`index`] (the per-user SQLite file: FTS5 index, links, tags, versions, sessions),
//! [`session`] (MCP session state), [`watch`] (live file changes), and at the bottom [`note`]
//! (note paths and links, shared by vault and index), [`settings`], [`quotas`] and [`error`].

pub mod caller;
pub mod error;
pub mod hub;
pub mod index;
pub mod mcp;
pub mod messages;
pub mod note;
pub mod pool;
pub mod quotas;
pub mod session;
pub mod settings;
pub mod supervisor;
pub mod user_actor;
pub mod user_core;
pub mod user_id;
pub mod vault;
pub mod watch;
pub mod worker;

pub use caller::Caller;
pub use error::{ActorError, VaultError};
pub use settings::Settings;
pub use supervisor::Supervisor;
pub use user_id::UserId;
