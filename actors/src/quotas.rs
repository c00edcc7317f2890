//! The quotas: how much one user may store and keep open, and the names a `quota_exceeded`
//! error gives each limit. Below both the settings (which carry them) and the errors (which
//! name them).

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
