//! Changing a note: [`Vault::write`] (checked against `if_version` and the quotas, then a
//! crash-safe file replace, then the index in one transaction) and [`Vault::delete`], with the
//! rules that compose a written note's frontmatter.

use serde::Serialize;
use serde_json::{Map, Value};

use super::frontmatter::render;
use super::history::Operation;
use super::sync::OnDisk;
use super::{files, fm_string, hash, mtime_ns, now_ms, parse, paths, split, store};
use super::{Change, Deleted, Vault};
use crate::error::VaultError;
use crate::index::Scope;
use crate::note::NotePath;

/// What a client asks `write_note` to store.
#[derive(Debug, Clone, Default)]
pub struct WriteRequest {
    pub path: String,
    pub body: String,
    pub title: Option<String>,
    pub metadata: Option<Value>,
    pub if_version: Option<u64>,
}

/// The outcome of a write.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Written {
    pub path: String,
    pub version: u64,
    /// True when the note did not exist before this write.
    pub created_note: bool,
    pub title: String,
    pub tags: Vec<String>,
    pub size: u64,
    pub created: Option<String>,
    pub updated: Option<String>,
}

impl Vault {
    /// Write a note: crash-safe file replace, then the index in one transaction.
    pub fn write(&mut self, req: WriteRequest) -> Result<Written, VaultError> {
        self.write_as(req, Operation::Write)
    }

    /// [`Vault::write`], recording the replaced version in the history as done by `operation`.
    pub(super) fn write_as(
        &mut self,
        req: WriteRequest,
        operation: Operation,
    ) -> Result<Written, VaultError> {
        let path = NotePath::parse(&req.path)?;
        if req.body.len() > self.max_note_bytes {
            return Err(VaultError::TooLarge {
                what: "note body",
                actual: req.body.len(),
                limit: self.max_note_bytes,
            });
        }
        let file = paths::resolve(&self.root, &path)?;
        let current = self.current_for_change(&path, req.if_version)?;
        let existing = match std::fs::read_to_string(&file) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e.into()),
        };
        let existing_fm = match &existing {
            Some(text) => Some(existing_frontmatter(text, req.metadata.is_some())?),
            None => None,
        };
        let (body_fm, body) =
            split(&req.body).map_err(|e| VaultError::InvalidFrontmatter(e.to_string()))?;
        let now = now_rfc3339();
        let frontmatter = compose_frontmatter(existing_fm, req.metadata, body_fm, req.title, &now)?;
        let text = render(&frontmatter, body);
        if text.len() > self.max_note_bytes {
            return Err(VaultError::TooLarge {
                what: "note file",
                actual: text.len(),
                limit: self.max_note_bytes,
            });
        }
        let parsed =
            parse(&path, &text).map_err(|e| VaultError::InvalidFrontmatter(e.to_string()))?;
        // Quotas are checked against the index: the size it has for the note being replaced.
        let usage = self.usage()?;
        let replaced = self.index.file_facts(path.as_str())?.map(|(size, _)| size);
        usage.check_write(&self.quotas, replaced, text.len() as u64)?;
        // The version being replaced goes to the history before the file changes.
        let created = existing.is_none();
        self.keep_history(&path, current, existing, operation)?;
        let aside = files::SetAside::keep(&file)?;
        files::write_atomic(&file, text.as_bytes())?;
        let hash = hash(text.as_bytes());
        let updated_ms = now_ms();
        let indexed = std::fs::metadata(&file)
            .map_err(VaultError::from)
            .and_then(|meta| {
                let version = self.change_index(|tx| {
                    store(
                        tx,
                        &path,
                        &parsed,
                        meta.len(),
                        mtime_ns(&meta),
                        &hash,
                        updated_ms,
                        true,
                        Scope::Single,
                    )
                })?;
                Ok((meta, version))
            });
        // A write the index refused (a full disk) is undone, so a refused write never leaves
        // its text behind.
        let (meta, version) = match indexed {
            Ok(done) => done,
            Err(e) => {
                if let Err(undo) = aside.undo() {
                    tracing::warn!(path = %path, error = %undo, "could not undo a refused write");
                }
                return Err(e);
            }
        };
        drop(aside);
        self.usage = Some(usage.after_write(replaced, meta.len()));
        self.last_change_ms = Some(updated_ms);
        self.changes.push(Change::Written {
            path: path.to_string(),
            created,
        });
        Ok(Written {
            path: path.to_string(),
            version,
            created_note: created,
            created: fm_string(&parsed.frontmatter, "created"),
            updated: fm_string(&parsed.frontmatter, "updated"),
            title: parsed.title,
            tags: parsed.tags,
            size: meta.len(),
        })
    }

    /// The note's current version, checked against `if_version` before a write or delete. A
    /// file changed on disk since the index saw it is indexed first (its version moves on),
    /// and a conditional change then answers `conflict`: never a silent overwrite.
    fn current_for_change(
        &mut self,
        path: &NotePath,
        if_version: Option<u64>,
    ) -> Result<u64, VaultError> {
        let on_disk = self.settle(path)?;
        let current = self.index.current_version(path.as_str())?;
        if let Some(expected) = if_version {
            // A change that is on disk but could not be indexed (broken frontmatter, too
            // large) is not ours to overwrite on the strength of an old version either.
            if expected != current || on_disk == OnDisk::Changed {
                return Err(VaultError::Conflict {
                    path: path.to_string(),
                    expected,
                    current,
                });
            }
        }
        Ok(current)
    }

    /// Delete a note's file and forget it in the index (its version is kept).
    pub fn delete(
        &mut self,
        raw_path: &str,
        if_version: Option<u64>,
    ) -> Result<Deleted, VaultError> {
        let path = NotePath::parse(raw_path)?;
        let file = paths::resolve(&self.root, &path)?;
        let current = self.current_for_change(&path, if_version)?;
        let old_text = std::fs::read_to_string(&file).ok();
        self.keep_history(&path, current, old_text, Operation::Delete)?;
        let gone_already = match files::remove_durably(&file) {
            Ok(()) => false,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(e) => return Err(e.into()),
        };
        self.unindex(&path)?;
        if gone_already {
            // Gone from disk already: the index now agrees; tell the caller.
            return Err(VaultError::NotFound(path.to_string()));
        }
        self.last_change_ms = Some(now_ms());
        self.changes.push(Change::Deleted {
            path: path.to_string(),
        });
        Ok(Deleted {
            path: path.to_string(),
            version: current,
        })
    }
}

/// The frontmatter of the note being replaced. When the caller passes new metadata the old
/// frontmatter is only needed for `created`, so a broken one is not an obstacle then.
fn existing_frontmatter(text: &str, replacing: bool) -> Result<Map<String, Value>, VaultError> {
    match split(text).map(|(fm, _)| fm) {
        Ok(fm) => Ok(fm),
        Err(_) if replacing => Ok(Map::new()),
        Err(e) => Err(VaultError::InvalidFrontmatter(format!(
            "the stored note has broken frontmatter ({e}); pass `metadata` to replace it"
        ))),
    }
}

/// The frontmatter of a write: the client's `metadata` (or, without it, the stored
/// frontmatter), then a frontmatter block at the top of `body`, then `title`; `created` is kept
/// from the stored note and `updated` is set to now.
fn compose_frontmatter(
    existing: Option<Map<String, Value>>,
    metadata: Option<Value>,
    body_fm: Map<String, Value>,
    title: Option<String>,
    now: &str,
) -> Result<Map<String, Value>, VaultError> {
    let stored_created = existing.as_ref().and_then(|m| m.get("created").cloned());
    let mut fm = match metadata {
        None | Some(Value::Null) => existing.unwrap_or_default(),
        Some(Value::Object(m)) => m,
        Some(other) => {
            return Err(VaultError::InvalidFrontmatter(format!(
                "metadata must be an object (a YAML mapping), not {}",
                json_kind(&other)
            )))
        }
    };
    for (k, v) in body_fm {
        fm.insert(k, v);
    }
    if let Some(t) = title {
        fm.insert("title".into(), Value::String(t));
    }
    let created = stored_created
        .or_else(|| fm.get("created").filter(|v| v.is_string()).cloned())
        .unwrap_or_else(|| Value::String(now.to_string()));
    fm.insert("created".into(), created);
    fm.insert("updated".into(), Value::String(now.to_string()));
    Ok(fm)
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;
    use crate::vault::tests::*;
    use crate::vault::usage::{QuotaUse, Usage};

    pub(super) fn open_with_quotas(dir: &tempfile::TempDir, notes: u64, bytes: u64) -> Vault {
        let mut settings = Settings::for_data_dir(dir.path());
        settings.quotas.notes_per_vault = notes;
        settings.quotas.vault_bytes = bytes;
        Vault::open(
            &dir.path().join("v"),
            &dir.path().join("i.sqlite"),
            &settings,
        )
        .unwrap()
    }

    pub(super) fn try_write(v: &mut Vault, path: &str, body: &str) -> Result<Written, VaultError> {
        v.write(WriteRequest {
            path: path.into(),
            body: body.into(),
            ..Default::default()
        })
    }

    /// The running usage agrees with a fresh sum over the index.
    pub(super) fn assert_usage_is_the_index_sum(v: &mut Vault) {
        let carried = v.usage().unwrap();
        let (notes, bytes) = v.index().count_and_bytes().unwrap();
        assert_eq!(carried, Usage { notes, bytes });
    }

    #[test]
    fn a_write_past_a_quota_is_refused_before_the_note_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let mut v = open_with_quotas(&dir, 2, 10_000);
        write(&mut v, "a.md", "first");
        write(&mut v, "b.md", "second");
        let err = try_write(&mut v, "c.md", "third").unwrap_err();
        assert_eq!(err.code(), "quota_exceeded");
        assert_eq!(
            err.details(),
            serde_json::json!({"code": "quota_exceeded", "message": err.to_string(),
                "limit": "notes_per_vault", "max": 2, "current": 2})
        );
        assert!(!dir.path().join("v/c.md").exists());

        // Bytes: a rewrite that grows the vault past the quota leaves the stored note as it was.
        let used = v.usage().unwrap().bytes;
        let mut v = {
            drop(v);
            open_with_quotas(&dir, 2, used + 10)
        };
        let before = std::fs::read(dir.path().join("v/a.md")).unwrap();
        let err = try_write(&mut v, "a.md", &"x".repeat(100)).unwrap_err();
        assert_eq!(err.details()["limit"], "vault_bytes");
        assert_eq!(err.details()["current"], used);
        assert_eq!(std::fs::read(dir.path().join("v/a.md")).unwrap(), before);
        assert_eq!(v.read("a.md").unwrap().version, 1);
        // Growing within the room left, and shrinking, are allowed.
        try_write(&mut v, "a.md", "first!").unwrap();
        try_write(&mut v, "a.md", "1").unwrap();
        assert_usage_is_the_index_sum(&mut v);
    }

    #[test]
    fn the_running_usage_follows_writes_deletes_scans_and_edits_from_outside() {
        let (dir, mut v) = vault();
        write(&mut v, "a.md", "one");
        write(&mut v, "b.md", "two");
        assert_usage_is_the_index_sum(&mut v);
        write(&mut v, "a.md", &"longer ".repeat(50));
        v.delete("b.md", None).unwrap();
        assert_usage_is_the_index_sum(&mut v);
        // A file grown outside the server and re-indexed by a read.
        std::fs::write(dir.path().join("v/a.md"), "# Grown\n".repeat(300)).unwrap();
        v.read("a.md").unwrap();
        assert_usage_is_the_index_sum(&mut v);
        assert_eq!(v.usage().unwrap().bytes, 8 * 300);
        // A file copied in, found by the scan.
        std::fs::write(dir.path().join("v/copied.md"), "hello").unwrap();
        v.reconcile().unwrap();
        assert_eq!(
            v.usage().unwrap(),
            Usage {
                notes: 2,
                bytes: 8 * 300 + 5
            }
        );
        // Deleting a note the index never had leaves the usage alone.
        v.delete("nothing.md", None).unwrap_err();
        assert_usage_is_the_index_sum(&mut v);
    }

    #[test]
    fn files_copied_in_past_the_quota_are_indexed_and_only_growth_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("v")).unwrap();
        for i in 0..4 {
            std::fs::write(dir.path().join(format!("v/n{i}.md")), "# Copied\nwords").unwrap();
        }
        let mut v = open_with_quotas(&dir, 2, 10_000);
        let report = v.reconcile().unwrap();
        assert_eq!(report.indexed, 4);
        assert_eq!(v.search("words", None, &[], 10).unwrap().len(), 4);
        let info = v.info(QuotaUse::default()).unwrap();
        assert_eq!(
            (
                info.quota.notes_per_vault.used,
                info.quota.notes_per_vault.max
            ),
            (4, 2)
        );
        assert_eq!(
            try_write(&mut v, "new.md", "more").unwrap_err().code(),
            "quota_exceeded"
        );
        // Editing a note already there is not growth in notes.
        try_write(&mut v, "n0.md", "edited").unwrap();
        v.delete("n1.md", None).unwrap();
        v.delete("n2.md", None).unwrap();
        assert_eq!(
            try_write(&mut v, "new.md", "more").unwrap_err().code(),
            "quota_exceeded",
            "3 notes, still over 2"
        );
        v.delete("n3.md", None).unwrap();
        try_write(&mut v, "new.md", "room again").unwrap();
    }
}
