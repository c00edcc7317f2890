//! The notes that changed last, for `recent_notes`: answered from the index by the time each
//! note last changed (a write or delete through the server, or the file's modification time
//! for a change found on disk).

use serde::Serialize;

use super::Vault;
use crate::error::VaultError;

/// One note of `recent_notes`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RecentNote {
    pub path: String,
    pub title: String,
    pub version: u64,
    pub size: u64,
    /// The frontmatter's `updated`, as the note says it.
    pub updated: Option<String>,
    /// When the note last changed (RFC 3339, milliseconds): pass it as `since` to get only
    /// what changed from then on (the bound is inclusive).
    pub changed: String,
    /// `changed` in milliseconds since the Unix epoch, for ordering.
    #[serde(skip)]
    pub changed_ms: i64,
}

impl Vault {
    /// Up to `limit` notes under `folder` that changed at or after `since_ms`, newest first.
    pub fn recent(
        &self,
        folder: Option<&str>,
        since_ms: Option<i64>,
        limit: usize,
    ) -> Result<Vec<RecentNote>, VaultError> {
        let folder = self.folder(folder)?;
        let rows = self.index.recent(&folder, since_ms, limit)?;
        Ok(rows
            .into_iter()
            .map(|(n, ms)| RecentNote {
                path: n.path,
                title: n.title,
                version: n.version,
                size: n.size,
                updated: n.updated,
                changed: rfc3339_ms(ms),
                changed_ms: ms,
            })
            .collect())
    }
}

/// A `since` argument (RFC 3339, e.g. `2025-06-01T12:00:00Z`) in milliseconds.
pub fn parse_since(since: &str) -> Result<i64, VaultError> {
    super::parse_rfc3339_ms(since.trim()).ok_or_else(|| {
        VaultError::InvalidArguments(format!(
            "since must be an RFC 3339 time such as 2025-06-01T12:00:00Z, got {since:?}"
        ))
    })
}

/// Milliseconds since the epoch as RFC 3339 in UTC, keeping the milliseconds.
fn rfc3339_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use crate::vault::tests::*;

    fn paths(notes: &[super::RecentNote]) -> Vec<&str> {
        notes.iter().map(|n| n.path.as_str()).collect()
    }

    #[test]
    fn recent_notes_are_newest_first_within_a_folder_and_since_a_time() {
        let (_dir, mut v) = vault();
        for p in ["a.md", "work/b.md", "work/deep/c.md", "home/d.md"] {
            write(&mut v, p, "text");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        write(&mut v, "a.md", "again");
        let all = v.recent(None, None, 10).unwrap();
        assert_eq!(
            paths(&all),
            ["a.md", "home/d.md", "work/deep/c.md", "work/b.md"]
        );
        assert_eq!(all[0].version, 2);
        assert_eq!(
            paths(&v.recent(None, None, 2).unwrap()),
            ["a.md", "home/d.md"]
        );
        assert_eq!(
            paths(&v.recent(Some("work"), None, 10).unwrap()),
            ["work/deep/c.md", "work/b.md"]
        );
        // `changed` handed back as `since` includes that note and the newer ones.
        let since = super::parse_since(&all[2].changed).unwrap();
        assert_eq!(since, all[2].changed_ms);
        assert_eq!(
            paths(&v.recent(None, Some(since), 10).unwrap()),
            ["a.md", "home/d.md", "work/deep/c.md"]
        );
        v.delete("home/d.md", None).unwrap();
        assert_eq!(
            paths(&v.recent(None, Some(since), 10).unwrap()),
            ["a.md", "work/deep/c.md"]
        );
        assert!(super::parse_since("yesterday").is_err());
        assert_eq!(
            v.recent(Some("../x"), None, 10).unwrap_err().code(),
            "invalid_path"
        );
    }
}
