//! Bringing the index in line with files changed outside the server while its actor runs:
//! [`Vault::sync_paths`] re-syncs the paths a file watcher reported (notes or whole folders,
//! present or gone), and [`Vault::settle`] checks one note's file before a write or delete, so
//! that a change made on disk since the index last saw it is never overwritten silently.
//!
//! A file is compared with the index by size and mtime first, and by content hash when those
//! differ, as the start-up reconcile does: a file the server wrote itself matches, so a watcher
//! event for it is a no-op. Every note that is (re)indexed or dropped is recorded as a
//! [`Change`], so subscribers hear about outside edits as they do about writes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::reconcile::walk;
use super::{hash, mtime_ns, now_ms, parse, parse_rfc3339_ms, store, Change, Vault};
use crate::error::VaultError;
use crate::index::{Index, IndexTx, IndexedNote, Scope};
use crate::note::NotePath;

/// Above this many notes in one sync, the text goes straight to the FTS table and links are
/// resolved in one pass at the end (as in a reconcile) instead of note by note.
const BULK_FROM: usize = 32;

/// What a sync did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyncReport {
    /// Notes (re)indexed because their file is new or its content changed.
    pub indexed: usize,
    /// Notes dropped because their file is gone.
    pub removed: usize,
    /// Files that changed but could not be indexed (too large, not UTF-8, broken frontmatter).
    pub skipped: usize,
}

/// How a note's file compares with the index, before a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDisk {
    /// The file is what the index last saw (or both agree that there is none).
    Unchanged,
    /// The file changed on disk since it was indexed (created, edited or deleted outside the
    /// server); the index now follows it where the file could be indexed.
    Changed,
}

/// The notes a sync looks at: each with its file's metadata, `None` when the file is gone.
type Candidates = BTreeMap<String, (NotePath, Option<std::fs::Metadata>)>;

impl Vault {
    /// Re-sync `paths` (relative to the vault folder; notes or folders, existing or not) with
    /// the index: new and changed notes are indexed, notes whose file is gone are dropped,
    /// and a folder is compared as a whole (the empty path is the whole vault). Hidden
    /// entries and files that are not notes are ignored.
    pub fn sync_paths(&mut self, paths: &[PathBuf]) -> Result<SyncReport, VaultError> {
        let mut candidates = Candidates::new();
        // Folders looked at as a whole: notes indexed below them but not found are gone.
        let mut folders: Vec<String> = Vec::new();
        for rel in paths {
            self.collect(rel, &mut candidates, &mut folders);
        }
        if candidates.is_empty() && folders.is_empty() {
            return Ok(SyncReport::default());
        }
        let known = if folders.is_empty() && candidates.len() <= BULK_FROM {
            None
        } else {
            Some(self.index.indexed_files()?)
        };
        if let Some(known) = &known {
            for (key, _) in known.iter() {
                let under = folders
                    .iter()
                    .any(|f| f.is_empty() || key.starts_with(&format!("{f}/")));
                if under && !candidates.contains_key(key) {
                    if let Ok(path) = NotePath::parse(key) {
                        candidates.insert(key.clone(), (path, None));
                    }
                }
            }
        }
        let scope = if candidates.len() > BULK_FROM {
            // Queued text first, so that the bulk pass starts from a settled FTS table.
            self.index.flush_full_text()?;
            Scope::Bulk
        } else {
            Scope::Single
        };
        let (root, max) = (self.root.clone(), self.max_note_bytes);
        let mut report = SyncReport::default();
        let mut changes = Vec::new();
        self.change_index(|tx| -> Result<(), VaultError> {
            for (key, (path, meta)) in &candidates {
                let indexed = match &known {
                    Some(all) => all.get(key).cloned(),
                    None => Index::indexed_file_tx(tx, key)?,
                };
                let outcome = sync_one(tx, &root, path, meta.as_ref(), indexed, max, scope)?;
                match outcome {
                    Outcome::Same => {}
                    Outcome::Indexed { created } => {
                        report.indexed += 1;
                        changes.push(Change::Written {
                            path: key.clone(),
                            created,
                        });
                    }
                    Outcome::Removed => {
                        report.removed += 1;
                        changes.push(Change::Deleted { path: key.clone() });
                    }
                    Outcome::Skipped => report.skipped += 1,
                }
            }
            if scope == Scope::Bulk && !changes.is_empty() {
                Index::resolve_all_links(tx)?;
            }
            Ok(())
        })?;
        if !changes.is_empty() {
            self.last_change_ms = Some(now_ms());
            self.changes.extend(changes);
        }
        Ok(report)
    }

    /// Before a write or delete of `path`: compare its file with what the index last saw and,
    /// when it changed outside the server, bring the index in line (so the note's version
    /// moves on) and record the change.
    pub(super) fn settle(&mut self, path: &NotePath) -> Result<OnDisk, VaultError> {
        let file = self.root.join(path.as_str());
        let meta = match std::fs::symlink_metadata(&file) {
            Ok(meta) => Some(meta),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e.into()),
        };
        // Size and mtime come from the note facts in memory; the stored hash is read only
        // when they differ.
        let known = self.index.meta_and_mtime(path.as_str())?;
        let same = match (&meta, &known) {
            (None, None) => true,
            (Some(meta), Some((facts, mtime))) => {
                facts.size == meta.len() && *mtime == mtime_ns(meta)
                    || match self.index.indexed_file(path.as_str())? {
                        Some(indexed) => read_hash(&file).is_some_and(|h| h == indexed.hash),
                        None => false,
                    }
            }
            _ => false,
        };
        if same {
            return Ok(OnDisk::Unchanged);
        }
        self.sync_paths(&[PathBuf::from(path.as_str())])?;
        Ok(OnDisk::Changed)
    }

    /// Add what `rel` names to the candidates: a note, or the notes of a folder.
    fn collect(&self, rel: &Path, candidates: &mut Candidates, folders: &mut Vec<String>) {
        let Some(key) = rel.to_str().map(|s| s.trim_end_matches('/').to_string()) else {
            return;
        };
        if key.split('/').any(|part| part.starts_with('.')) {
            return;
        }
        let full = self.root.join(&key);
        match std::fs::symlink_metadata(&full) {
            Ok(meta) if meta.is_dir() => {
                let mut found = Vec::new();
                walk(&self.root, &full, &mut found);
                for (path, meta) in found {
                    candidates.insert(path.to_string(), (path, Some(meta)));
                }
                folders.push(key);
            }
            Ok(meta) if meta.is_file() => {
                if let Ok(path) = NotePath::parse(&key) {
                    candidates.insert(key, (path, Some(meta)));
                }
            }
            // A symlink is never a note (the scan skips it too): as good as gone.
            Ok(_) => {
                if let Ok(path) = NotePath::parse(&key) {
                    candidates.insert(key, (path, None));
                }
            }
            Err(_) => {
                // Gone: a note, or a folder moved or deleted with its notes.
                if let Ok(path) = NotePath::parse(&key) {
                    candidates.insert(key.clone(), (path, None));
                }
                if !key.is_empty() {
                    folders.push(key);
                }
            }
        }
    }
}

enum Outcome {
    Same,
    Indexed { created: bool },
    Removed,
    Skipped,
}

/// Bring one note in line with its file (`meta` is `None` when the file is gone).
fn sync_one(
    tx: &IndexTx<'_>,
    root: &Path,
    path: &NotePath,
    meta: Option<&std::fs::Metadata>,
    indexed: Option<IndexedNote>,
    max: usize,
    scope: Scope,
) -> Result<Outcome, VaultError> {
    let key = path.as_str();
    let Some(meta) = meta else {
        if indexed.is_none() {
            return Ok(Outcome::Same);
        }
        Index::remove(tx, key, scope)?;
        return Ok(Outcome::Removed);
    };
    let (size, mtime_ns) = (meta.len(), mtime_ns(meta));
    if indexed
        .as_ref()
        .is_some_and(|k| k.size == size && k.mtime_ns == mtime_ns)
    {
        return Ok(Outcome::Same);
    }
    if size as usize > max {
        tracing::warn!(
            path = key,
            size,
            limit = max,
            "not indexing a note over the size limit"
        );
        return Ok(Outcome::Skipped);
    }
    let bytes = match std::fs::read(root.join(key)) {
        Ok(b) => b,
        // Gone again since the event: the next event (or read) settles it.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if indexed.is_some() {
                Index::remove(tx, key, scope)?;
                return Ok(Outcome::Removed);
            }
            return Ok(Outcome::Same);
        }
        Err(e) => {
            tracing::warn!(path = key, error = %e, "not indexing an unreadable note");
            return Ok(Outcome::Skipped);
        }
    };
    let hash = hash(&bytes);
    if indexed.as_ref().is_some_and(|k| k.hash == hash) {
        Index::touch(tx, key, mtime_ns)?;
        return Ok(Outcome::Same);
    }
    let Ok(text) = String::from_utf8(bytes) else {
        tracing::warn!(path = key, "not indexing a note that is not valid UTF-8");
        return Ok(Outcome::Skipped);
    };
    let parsed = match parse(path, &text) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(path = key, error = %e, "not indexing a note with broken frontmatter");
            return Ok(Outcome::Skipped);
        }
    };
    let updated_ms = parsed
        .frontmatter
        .get("updated")
        .and_then(Value::as_str)
        .and_then(parse_rfc3339_ms)
        .unwrap_or(mtime_ns / 1_000_000);
    store(
        tx, path, &parsed, size, mtime_ns, &hash, updated_ms, false, scope,
    )?;
    Ok(Outcome::Indexed {
        created: indexed.is_none(),
    })
}

/// The content hash of a file, `None` when it cannot be read.
fn read_hash(file: &Path) -> Option<String> {
    std::fs::read(file).ok().map(|b| hash(&b))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::vault::tests::*;
    use crate::vault::WriteRequest;

    /// The notes a set of candidates holds.
    fn keys(c: &Candidates) -> HashSet<&str> {
        c.keys().map(String::as_str).collect()
    }

    fn listed(v: &Vault) -> Vec<String> {
        v.list(None, None, 2000)
            .unwrap()
            .notes
            .into_iter()
            .map(|n| n.path)
            .collect()
    }

    #[test]
    fn outside_creates_edits_deletes_and_renames_reach_the_index() {
        let (dir, mut v) = vault();
        write(&mut v, "a.md", "alpha");
        write(&mut v, "b.md", "bravo");
        v.take_changes();
        let root = dir.path().join("v");
        std::fs::write(root.join("c.md"), "charlie #new").unwrap();
        std::fs::write(root.join("a.md"), "alpha edited outside").unwrap();
        std::fs::rename(root.join("b.md"), root.join("renamed.md")).unwrap();
        let report = v
            .sync_paths(&["c.md", "a.md", "b.md", "renamed.md"].map(PathBuf::from))
            .unwrap();
        assert_eq!(
            report,
            SyncReport {
                indexed: 3,
                removed: 1,
                skipped: 0
            }
        );
        assert_eq!(listed(&v), ["a.md", "c.md", "renamed.md"]);
        assert_eq!(v.search("edited", None, &[], 10).unwrap().len(), 1);
        assert_eq!(v.read("a.md").unwrap().version, 2);
        let changes = v.take_changes();
        assert!(changes.contains(&Change::Deleted {
            path: "b.md".into()
        }));
        assert!(changes.contains(&Change::Written {
            path: "c.md".into(),
            created: true
        }));
        assert!(changes.contains(&Change::Written {
            path: "a.md".into(),
            created: false
        }));
        // Nothing changed since: a second sync is a no-op.
        let again = v
            .sync_paths(&["c.md", "a.md", "b.md", "renamed.md"].map(PathBuf::from))
            .unwrap();
        assert_eq!(again, SyncReport::default());
        assert!(v.take_changes().is_empty());
    }

    #[test]
    fn the_servers_own_writes_and_hidden_files_are_no_ops() {
        let (dir, mut v) = vault();
        write(&mut v, "a.md", "mine");
        v.take_changes();
        std::fs::write(dir.path().join("v/.a.md.123.tmp"), "temp").unwrap();
        let report = v
            .sync_paths(&["a.md", ".a.md.123.tmp", "notes.txt"].map(PathBuf::from))
            .unwrap();
        assert_eq!(report, SyncReport::default());
        assert!(v.take_changes().is_empty());
        assert_eq!(v.read("a.md").unwrap().version, 1);
    }

    #[test]
    fn a_folder_copied_in_or_removed_is_synced_as_a_whole() {
        let (dir, mut v) = vault();
        write(&mut v, "keep.md", "kept");
        let folder = dir.path().join("v/imported/deep");
        std::fs::create_dir_all(&folder).unwrap();
        for i in 0..100 {
            std::fs::write(
                folder.join(format!("n{i}.md")),
                format!("copied [[keep]] {i}"),
            )
            .unwrap();
        }
        let report = v.sync_paths(&[PathBuf::from("imported")]).unwrap();
        assert_eq!(report.indexed, 100);
        assert_eq!(listed(&v).len(), 101);
        assert_eq!(v.search("copied", None, &[], 100).unwrap().len(), 100);
        assert_eq!(v.backlinks("keep.md").unwrap().len(), 100, "links resolved");
        std::fs::rename(dir.path().join("v/imported"), dir.path().join("v/moved")).unwrap();
        let report = v
            .sync_paths(&[PathBuf::from("imported"), PathBuf::from("moved")])
            .unwrap();
        assert_eq!((report.indexed, report.removed), (100, 100));
        assert!(listed(&v).iter().all(|p| !p.starts_with("imported/")));
        std::fs::remove_dir_all(dir.path().join("v/moved")).unwrap();
        v.sync_paths(&[PathBuf::from("moved")]).unwrap();
        assert_eq!(listed(&v), ["keep.md"]);
        // The whole vault (a rescan) finds what no event named.
        std::fs::write(dir.path().join("v/quiet.md"), "no event for me").unwrap();
        v.sync_paths(&[PathBuf::new()]).unwrap();
        assert_eq!(listed(&v), ["keep.md", "quiet.md"]);
    }

    #[test]
    fn collect_skips_hidden_entries_and_walks_folders() {
        let (dir, v) = vault();
        std::fs::create_dir_all(dir.path().join("v/f/.obsidian")).unwrap();
        std::fs::write(dir.path().join("v/f/.obsidian/x.md"), "x").unwrap();
        std::fs::write(dir.path().join("v/f/y.md"), "y").unwrap();
        let (mut c, mut folders) = (Candidates::new(), Vec::new());
        v.collect(Path::new("f"), &mut c, &mut folders);
        v.collect(Path::new(".trash/z.md"), &mut c, &mut folders);
        assert_eq!(keys(&c), HashSet::from(["f/y.md"]));
        assert_eq!(folders, ["f"]);
    }

    #[test]
    fn a_write_over_a_note_changed_outside_is_a_conflict_and_changes_nothing() {
        let (dir, mut v) = vault();
        write(&mut v, "a.md", "first");
        let seen = v.read("a.md").unwrap().version;
        let file = dir.path().join("v/a.md");
        std::fs::write(&file, "changed by an editor").unwrap();
        let err = v
            .write(WriteRequest {
                path: "a.md".into(),
                body: "from the agent".into(),
                if_version: Some(seen),
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(err.code(), "conflict");
        assert_eq!(err.details()["current_version"], seen + 1);
        assert_eq!(std::fs::read(&file).unwrap(), b"changed by an editor");
        assert_eq!(v.search("editor", None, &[], 10).unwrap().len(), 1);
        // A delete with the old version is refused the same way.
        std::fs::write(&file, "changed again").unwrap();
        let err = v.delete("a.md", Some(seen + 1)).unwrap_err();
        assert_eq!(err.code(), "conflict");
        assert_eq!(std::fs::read(&file).unwrap(), b"changed again");
        // With the version it answered, the write goes through.
        let current = v.version_of("a.md").unwrap();
        v.write(WriteRequest {
            path: "a.md".into(),
            body: "merged".into(),
            if_version: Some(current),
            ..Default::default()
        })
        .unwrap();
    }

    #[test]
    fn a_note_created_or_deleted_outside_conflicts_with_the_version_the_writer_expected() {
        let (dir, mut v) = vault();
        // Created outside: "must not exist yet" (0) no longer holds.
        std::fs::write(dir.path().join("v/new.md"), "someone else's").unwrap();
        let err = v
            .write(WriteRequest {
                path: "new.md".into(),
                body: "mine".into(),
                if_version: Some(0),
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(err.details()["current_version"], 1);
        assert_eq!(
            std::fs::read(dir.path().join("v/new.md")).unwrap(),
            b"someone else's"
        );
        // Deleted outside: the version the writer saw is gone.
        write(&mut v, "gone.md", "here");
        let seen = v.version_of("gone.md").unwrap();
        std::fs::remove_file(dir.path().join("v/gone.md")).unwrap();
        let err = v
            .write(WriteRequest {
                path: "gone.md".into(),
                body: "back".into(),
                if_version: Some(seen),
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(err.details()["current_version"], 0);
        assert!(!dir.path().join("v/gone.md").exists());
    }

    #[test]
    fn a_write_without_if_version_overwrites_and_keeps_the_outside_version_in_the_count() {
        let (dir, mut v) = vault();
        write(&mut v, "a.md", "first");
        std::fs::write(dir.path().join("v/a.md"), "outside").unwrap();
        let written = v
            .write(WriteRequest {
                path: "a.md".into(),
                body: "explicit overwrite".into(),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(written.version, 3, "1 ours, 2 the outside edit, 3 ours");
    }
}
