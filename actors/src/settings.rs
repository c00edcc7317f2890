//! What the actors need to know about the deployment: where data lives, how long things live,
//! and the limits that protect stored data. Built by the process from its configuration.

use std::path::PathBuf;
use std::time::Duration;

pub use crate::quotas::Quotas;

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
    /// Watch each open vault's folder, so that files changed by other programs reach the
    /// index within about a second (see `crate::watch`); off, they are found when a note is
    /// read or written and when the actor next starts.
    pub watch_files: bool,
    /// Crashes of one user's actor within `crash_window` that make the supervisor refuse to
    /// restart it for a while (a crash loop would otherwise burn a core forever).
    pub crash_limit: usize,
    pub crash_window: Duration,
    /// MCP behaviour: delete confirmations, how long to wait for a client's answer.
    pub mcp: McpOptions,
    /// How much one user may store and keep open.
    pub quotas: Quotas,
    /// Previous versions kept per note for `note_history`/`restore_note` (0 keeps none).
    pub history_per_note: usize,
}

/// Server-wide MCP behaviour chosen by configuration.
#[derive(Debug, Clone)]
pub struct McpOptions {
    /// Ask the user (elicitation) before `delete_note`, when the client can ask.
    pub confirm_deletes: bool,
    /// How long a server-to-client request (sampling, elicitation) may take.
    pub client_timeout: Duration,
}

impl Default for McpOptions {
    fn default() -> Self {
        McpOptions {
            confirm_deletes: false,
            client_timeout: Duration::from_secs(120),
        }
    }
}

/// Default for the memory budget shared by the in-memory index copies of every open vault
/// ([`Settings::search_memory_bytes`]).
pub const DEFAULT_SEARCH_MEMORY_BYTES: usize = 256 << 20;

/// Default of [`Settings::history_per_note`].
pub const DEFAULT_HISTORY_PER_NOTE: usize = 20;

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
            search_memory_bytes: DEFAULT_SEARCH_MEMORY_BYTES,
            max_live_actors: 1024,
            watch_files: true,
            crash_limit: 5,
            crash_window: Duration::from_secs(60),
            mcp: Default::default(),
            quotas: Quotas::default(),
            history_per_note: DEFAULT_HISTORY_PER_NOTE,
        }
    }
}
