//! What the actors need to know about the deployment: where data lives, how long things live,
//! and the limits that protect stored data. Built by the process from its configuration.

use std::path::PathBuf;
use std::time::Duration;

/// Settings shared by the supervisor and every user actor.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `<vault_base>/<user>/` holds the user's markdown files (the source of truth).
    pub vault_base: PathBuf,
    /// `<index_base>/<user>.sqlite` holds the user's index, sessions and versions; kept outside
    /// the vault so no tool can ever list or read it.
    pub index_base: PathBuf,
    /// A session unused for this long is gone (404).
    pub session_ttl: Duration,
    /// A user actor with no message for this long closes its database and stops.
    pub actor_idle_timeout: Duration,
    /// Largest note file, frontmatter included.
    pub max_note_bytes: usize,
    /// Longest search query, in characters.
    pub max_query_chars: usize,
    /// Most bytes the in-memory copies of all open vaults' indexes (search rankers, note
    /// facts) may use together; a vault whose search index would not fit is searched with FTS5
    /// alone, and facts that do not fit are looked up in SQLite (slower, same results).
    pub search_memory_bytes: usize,
    /// Most user actors alive at once; starting one more retires the least recently used (its
    /// sessions stay valid). Bounds memory and open files whatever the number of users.
    pub max_live_actors: usize,
    /// Crashes of one user's actor within `crash_window` that make the supervisor refuse to
    /// restart it for a while (a crash loop would otherwise burn a core forever).
    pub crash_limit: usize,
    pub crash_window: Duration,
    /// MCP behaviour: delete confirmations, how long to wait for a client's answer.
    pub mcp: crate::mcp::context::McpOptions,
    /// How much one user may store and keep open.
    pub quotas: Quotas,
}

/// How much one user may store and keep open. Going over is refused with `quota_exceeded`
/// before anything changes; what is already stored is never refused, truncated or lost (a
/// vault filled from outside the server stays readable and searchable, and may shrink).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    /// Most notes in one vault: a write that would add one more is refused.
    pub notes_per_vault: u64,
    /// Most bytes of note files (frontmatter included) in one vault: a write that would grow
    /// the vault past it is refused; one that keeps or shrinks a note's size never is.
    pub vault_bytes: u64,
    /// Most live (unexpired, not ended) MCP sessions of one user: one more `initialize` is
    /// refused, the sessions already open keep working.
    pub sessions_per_user: u64,
}

impl Quotas {
    /// The names a `quota_exceeded` error gives each limit (part of the public contract).
    pub const NOTES_PER_VAULT: &'static str = "notes_per_vault";
    pub const VAULT_BYTES: &'static str = "vault_bytes";
    pub const SESSIONS_PER_USER: &'static str = "sessions_per_user";
    /// Tokens one person may have working at once; enforced by the token API, not here.
    pub const TOKENS_PER_USER: &'static str = "tokens_per_user";
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            notes_per_vault: 5_000,
            vault_bytes: 1 << 30,
            sessions_per_user: 32,
        }
    }
}

impl Settings {
    /// Defaults for tests and tools; the process builds its own from `config.toml`.
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        Settings {
            vault_base: data_dir.join("vaults"),
            index_base: data_dir.join("index"),
            session_ttl: Duration::from_secs(30 * 60),
            actor_idle_timeout: Duration::from_secs(10 * 60),
            max_note_bytes: 1024 * 1024,
            max_query_chars: 256,
            search_memory_bytes: crate::index::DEFAULT_SEARCH_MEMORY_LIMIT,
            max_live_actors: 1024,
            crash_limit: 5,
            crash_window: Duration::from_secs(60),
            mcp: Default::default(),
            quotas: Quotas::default(),
        }
    }
}
