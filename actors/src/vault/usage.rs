//! How much a vault holds against its quotas, and what `vault_info` reports about it.
//!
//! A vault's notes and bytes are those of the index: every note file it indexed and the file's
//! size as stored (frontmatter included). Files it skipped (too large, not UTF-8, broken
//! frontmatter) are not counted; they are reported as the index's health instead.

use schemars::JsonSchema;
use serde::Serialize;

use crate::error::VaultError;
use crate::settings::Quotas;

/// Notes in the index and the bytes of their files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Usage {
    pub notes: u64,
    pub bytes: u64,
}

impl Usage {
    /// Refuse a write that would store `new_size` bytes in place of a note of `replaced`
    /// bytes (`None`: the index has no note there yet) when it would take the vault past a
    /// quota. A write that keeps or shrinks a note's size is always allowed, even in a vault
    /// already over its quotas (filled from outside the server).
    pub fn check_write(
        &self,
        quotas: &Quotas,
        replaced: Option<u64>,
        new_size: u64,
    ) -> Result<(), VaultError> {
        if replaced.is_none() && self.notes >= quotas.notes_per_vault {
            return Err(VaultError::QuotaExceeded {
                limit: Quotas::NOTES_PER_VAULT,
                max: quotas.notes_per_vault,
                current: self.notes,
            });
        }
        let old_size = replaced.unwrap_or(0);
        if new_size > old_size && self.after_write(replaced, new_size).bytes > quotas.vault_bytes {
            return Err(VaultError::QuotaExceeded {
                limit: Quotas::VAULT_BYTES,
                max: quotas.vault_bytes,
                current: self.bytes,
            });
        }
        Ok(())
    }

    /// The usage once a note of `replaced` bytes (`None`: none) is stored with `new_size`.
    pub fn after_write(&self, replaced: Option<u64>, new_size: u64) -> Usage {
        Usage {
            notes: self.notes + u64::from(replaced.is_none()),
            bytes: self.bytes.saturating_sub(replaced.unwrap_or(0)) + new_size,
        }
    }

    /// The usage once a note of `size` bytes has left the index.
    pub fn after_delete(&self, size: u64) -> Usage {
        Usage {
            notes: self.notes.saturating_sub(1),
            bytes: self.bytes.saturating_sub(size),
        }
    }
}

/// What the last scan of the vault's files (when it was opened, or `rebuild_index`) found.
#[derive(Debug, Clone, Copy)]
pub(super) struct Scan {
    pub at_ms: i64,
    pub files: u64,
    pub skipped: u64,
}

/// A quota and how much of it is in use. `used` may exceed `max` when notes were copied into
/// the vault from outside the server: they are kept, and only new growth is refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct QuotaUse {
    pub max: u64,
    pub used: u64,
}

/// Each quota of the user, with its use.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct QuotasUsed {
    pub notes_per_vault: QuotaUse,
    pub vault_bytes: QuotaUse,
    pub sessions_per_user: QuotaUse,
}

/// The state of the index that search, listings and links answer from.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct IndexHealth {
    /// True when the last scan indexed every note file it found and no note's text has waited
    /// longer than 30 s for the full-text index. When false, the server log names the files it
    /// skipped; fix them and run rebuild_index.
    pub healthy: bool,
    /// Notes in the index now.
    pub indexed_notes: u64,
    /// Note files found by the last scan of the folder.
    pub files_at_last_scan: u64,
    /// Files the last scan could not index (too large, not UTF-8, broken frontmatter): still
    /// on disk, untouched, but not listed or searchable.
    pub skipped_at_last_scan: u64,
    /// When the folder was last scanned (RFC 3339): when the vault was opened, or by
    /// rebuild_index.
    pub last_scan: Option<String>,
    /// Notes whose new text waits for the full-text index (a fraction of a second after a
    /// write; a search writes it first, so it always finds what was written).
    pub queued_full_text: u64,
}

/// The answer of `vault_info`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct VaultInfo {
    /// Notes in the vault (as indexed).
    pub notes: u64,
    /// Bytes of those notes' files, frontmatter included.
    pub bytes: u64,
    /// Distinct tags.
    pub tags: u64,
    /// The user's live MCP sessions.
    pub sessions: u64,
    pub quota: QuotasUsed,
    pub index: IndexHealth,
    /// When a note last changed (RFC 3339): the newest note's `updated`, or a delete through
    /// the server since the vault was opened if later; null for an empty vault with no delete
    /// seen.
    pub last_change: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quotas() -> Quotas {
        Quotas {
            notes_per_vault: 2,
            vault_bytes: 100,
            sessions_per_user: 1,
        }
    }

    fn refused_limit(r: Result<(), VaultError>) -> &'static str {
        match r {
            Err(VaultError::QuotaExceeded { limit, .. }) => limit,
            other => panic!("expected quota_exceeded, got {other:?}"),
        }
    }

    #[test]
    fn a_new_note_beyond_the_notes_quota_is_refused_a_rewrite_is_not() {
        let full = Usage {
            notes: 2,
            bytes: 10,
        };
        assert_eq!(
            refused_limit(full.check_write(&quotas(), None, 1)),
            "notes_per_vault"
        );
        assert!(full.check_write(&quotas(), Some(5), 50).is_ok());
    }

    #[test]
    fn only_growth_past_the_bytes_quota_is_refused() {
        let u = Usage {
            notes: 1,
            bytes: 90,
        };
        assert!(u.check_write(&quotas(), None, 10).is_ok(), "exactly full");
        assert_eq!(
            refused_limit(u.check_write(&quotas(), None, 11)),
            "vault_bytes"
        );
        assert_eq!(
            refused_limit(u.check_write(&quotas(), Some(40), 51)),
            "vault_bytes"
        );
        // Over the quota already (files copied in): keeping or shrinking a note is allowed.
        let over = Usage {
            notes: 1,
            bytes: 500,
        };
        assert!(over.check_write(&quotas(), Some(300), 300).is_ok());
        assert!(over.check_write(&quotas(), Some(300), 10).is_ok());
        assert_eq!(
            refused_limit(over.check_write(&quotas(), Some(300), 301)),
            "vault_bytes"
        );
    }

    #[test]
    fn usage_follows_writes_and_deletes() {
        let u = Usage {
            notes: 1,
            bytes: 10,
        };
        assert_eq!(
            u.after_write(None, 5),
            Usage {
                notes: 2,
                bytes: 15
            }
        );
        assert_eq!(u.after_write(Some(10), 3), Usage { notes: 1, bytes: 3 });
        assert_eq!(u.after_delete(10), Usage { notes: 0, bytes: 0 });
    }
}
