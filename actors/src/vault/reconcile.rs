//! Scanning the vault folder and bringing the index in line with the files: at open
//! ([`Vault::reconcile`]: new and changed files are indexed, files gone from disk leave the
//! index, unchanged ones are not read) and on demand ([`Vault::rebuild`]: every file is read
//! again). Temp files a crash left behind are removed on the way.

use std::collections::HashSet;
use std::path::Path;

use serde_json::Value;

use super::usage::Scan;
use super::{hash, mtime_ns, now_ms, parse, parse_rfc3339_ms, store, Vault};
use crate::error::VaultError;
use crate::index::{Index, Scope};
use crate::note::NotePath;

/// What a reconcile did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReconcileReport {
    pub indexed: usize,
    pub unchanged: usize,
    pub removed: usize,
    pub skipped: usize,
    /// Bytes of all the note files found (skipped ones included), from the walk's metadata.
    pub bytes: u64,
}

impl Vault {
    /// Bring the index in line with the files: new and changed files are (re)indexed, files
    /// gone from disk leave the index, files that cannot be parsed are skipped and logged.
    /// Unchanged files (same size and mtime) are not read at all.
    pub fn reconcile(&mut self) -> Result<ReconcileReport, VaultError> {
        // A move a crash interrupted is finished first, so the scan sees the moved vault.
        self.finish_interrupted_move()?;
        self.sync(false, &mut |_, _| true)
    }

    /// Rebuild the index from the files: every file is read again. Versions of unchanged notes
    /// are kept (they live in the state tables). `progress(done, total)` is called as files are
    /// indexed; when it returns false the rebuild stops and the old index is kept untouched.
    pub fn rebuild(
        &mut self,
        progress: &mut dyn FnMut(usize, usize) -> bool,
    ) -> Result<ReconcileReport, VaultError> {
        self.sync(true, progress)
    }

    fn sync(
        &mut self,
        full: bool,
        progress: &mut dyn FnMut(usize, usize) -> bool,
    ) -> Result<ReconcileReport, VaultError> {
        // Queued text first, so the bulk pass below starts from a settled FTS table.
        self.index.flush_full_text()?;
        let indexed = if full {
            Default::default()
        } else {
            self.index.indexed_files()?
        };
        let mut files = Vec::new();
        walk(&self.root, &self.root, &mut files);
        let mut report = ReconcileReport {
            bytes: files.iter().map(|(_, meta)| meta.len()).sum(),
            ..ReconcileReport::default()
        };
        let mut keep: HashSet<String> = HashSet::new();
        let max = self.max_note_bytes;
        let root = self.root.clone();
        let total = files.len();
        self.change_index(|tx| -> Result<(), VaultError> {
            let mut changed = full;
            if full {
                Index::clear(tx)?;
            }
            // Notes whose FTS row a crash left stale are read again whatever their file facts.
            let stale: HashSet<String> = Index::stale_full_text(tx)?.into_iter().collect();
            for (done, (path, meta)) in files.iter().enumerate() {
                if done % 64 == 0 && !progress(done, total) {
                    return Err(VaultError::Cancelled);
                }
                let key = path.as_str();
                let size = meta.len();
                let mtime_ns = mtime_ns(meta);
                let known = indexed.get(key).filter(|_| !stale.contains(key));
                if let Some(known) = known {
                    if known.size == size && known.mtime_ns == mtime_ns {
                        keep.insert(key.to_string());
                        report.unchanged += 1;
                        continue;
                    }
                }
                if size as usize > max {
                    tracing::warn!(path = key, size, limit = max, "skipping note over the size limit");
                    report.skipped += 1;
                    continue;
                }
                let bytes = match std::fs::read(root.join(key)) {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::warn!(path = key, error = %e, "skipping unreadable note");
                        report.skipped += 1;
                        continue;
                    }
                };
                let hash = hash(&bytes);
                if known.is_some_and(|k| k.hash == hash) {
                    Index::touch(tx, key, mtime_ns)?;
                    keep.insert(key.to_string());
                    report.unchanged += 1;
                    continue;
                }
                let Ok(text) = String::from_utf8(bytes) else {
                    tracing::warn!(path = key, "skipping note that is not valid UTF-8");
                    report.skipped += 1;
                    continue;
                };
                let parsed = match parse(path, &text) {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!(path = key, error = %e, "skipping note with broken frontmatter");
                        report.skipped += 1;
                        continue;
                    }
                };
                let updated_ms = parsed
                    .frontmatter
                    .get("updated")
                    .and_then(Value::as_str)
                    .and_then(parse_rfc3339_ms)
                    .unwrap_or(mtime_ns / 1_000_000);
                store(tx, path, &parsed, size, mtime_ns, &hash, updated_ms, false, Scope::Bulk)?;
                keep.insert(key.to_string());
                report.indexed += 1;
                changed = true;
            }
            let gone: Vec<&String> = indexed.keys().filter(|k| !keep.contains(*k)).collect();
            for path in &gone {
                Index::remove(tx, path, Scope::Bulk)?;
                report.removed += 1;
                changed = true;
            }
            if changed {
                Index::resolve_all_links(tx)?;
            }
            Index::unmark_all_full_text(tx)?;
            progress(total, total);
            Ok(())
        })?;
        self.last_scan = Some(Scan {
            at_ms: now_ms(),
            files: total as u64,
            skipped: report.skipped as u64,
        });
        Ok(report)
    }
}

/// Every `*.md` file below `dir`, skipping dot-entries (temp files, `.obsidian`, `.trash`)
/// and symlinks; names that are not valid note paths are logged and skipped.
pub(super) fn walk(root: &Path, dir: &Path, out: &mut Vec<(NotePath, std::fs::Metadata)>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot list vault folder");
            return;
        }
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let text = name.to_string_lossy();
        if text.starts_with('.') {
            // A write's temp file (`.<note>.md.<suffix>.tmp`) still here was left by a crash
            // between writing it and renaming it: its note was never acknowledged. A scan runs
            // inside the vault's only actor, so no write of ours is in progress.
            if text.ends_with(".tmp")
                && text.contains(".md.")
                && entry.file_type().is_ok_and(|k| k.is_file())
            {
                match std::fs::remove_file(entry.path()) {
                    Ok(()) => {
                        tracing::info!(file = %entry.path().display(), "removed a temp file left by a crash")
                    }
                    Err(e) => {
                        tracing::warn!(file = %entry.path().display(), error = %e, "cannot remove a leftover temp file")
                    }
                }
            }
            continue;
        }
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let full = entry.path();
        if kind.is_dir() {
            walk(root, &full, out);
        } else if kind.is_file() && name.to_string_lossy().ends_with(".md") {
            let Some(rel) = full.strip_prefix(root).ok().and_then(|p| p.to_str()) else {
                tracing::warn!(file = %full.display(), "skipping note whose name is not UTF-8");
                continue;
            };
            match NotePath::parse(rel) {
                Ok(path) => {
                    if let Ok(meta) = entry.metadata() {
                        out.push((path, meta));
                    }
                }
                Err(e) => {
                    tracing::warn!(file = rel, error = %e, "skipping file with an invalid note path")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::tests::*;

    #[test]
    fn a_scan_removes_temp_files_a_crash_left_and_nothing_else_hidden() {
        let (dir, mut v) = vault();
        write(&mut v, "sub/a.md", "kept");
        let root = dir.path().join("v");
        let leftover = root.join("sub/.a.md.x1y2.tmp");
        std::fs::write(&leftover, "half a note").unwrap();
        std::fs::create_dir_all(root.join(".obsidian")).unwrap();
        std::fs::write(root.join(".obsidian/app.json"), "{}").unwrap();
        std::fs::write(root.join(".notes.tmp"), "someone else's").unwrap();
        v.reconcile().unwrap();
        assert!(
            !leftover.exists(),
            "the leftover of an interrupted write is gone"
        );
        assert!(root.join(".obsidian/app.json").exists());
        assert!(
            root.join(".notes.tmp").exists(),
            "only our own temp files are removed"
        );
        assert_eq!(v.read("sub/a.md").unwrap().body.trim(), "kept");
    }

    #[test]
    fn cancelled_rebuild_keeps_the_old_index() {
        let (_dir, mut v) = vault();
        for i in 0..200 {
            write(&mut v, &format!("n{i}.md"), "findme");
        }
        let mut calls = 0;
        let err = v
            .rebuild(&mut |done, _| {
                calls += 1;
                done < 64
            })
            .unwrap_err();
        assert_eq!(err.code(), "cancelled");
        assert_eq!(calls, 2, "stopped at the first check after the limit");
        assert_eq!(v.index().count().unwrap(), 200);
        assert_eq!(v.search("findme", None, &[], 100).unwrap().len(), 100);
    }

    #[test]
    fn rebuild_reports_progress_to_the_total_and_keeps_versions() {
        let (_dir, mut v) = vault();
        write(&mut v, "a.md", "one");
        write(&mut v, "a.md", "two");
        let mut seen = Vec::new();
        let report = v
            .rebuild(&mut |done, total| {
                seen.push((done, total));
                true
            })
            .unwrap();
        assert_eq!(report.indexed, 1);
        assert_eq!(seen.last(), Some(&(1, 1)));
        assert_eq!(v.read("a.md").unwrap().version, 2);
    }

    #[test]
    fn text_a_crash_left_queued_is_indexed_at_the_next_open() {
        let (dir, mut v) = vault();
        write(&mut v, "kept.md", "old words");
        write(&mut v, "gone.md", "vanishing words");
        v.flush_full_text().unwrap();
        write(&mut v, "kept.md", "fresh words");
        v.delete("gone.md", None).unwrap();
        write(&mut v, "new.md", "newborn words");
        // The process dies here: the queue in memory is lost, the marks in the file are not.
        drop(v);
        let mut v = open_in(&dir);
        v.reconcile().unwrap();
        assert!(!v.full_text_queued());
        assert_eq!(fts_rows(&v, "fresh"), 1);
        assert_eq!(fts_rows(&v, "old"), 0);
        assert_eq!(fts_rows(&v, "vanishing"), 0);
        assert_eq!(fts_rows(&v, "newborn"), 1);
        let paths = |v: &mut Vault, q: &str| -> Vec<String> {
            v.search(q, None, &[], 10)
                .unwrap()
                .into_iter()
                .map(|h| h.path)
                .collect()
        };
        assert_eq!(paths(&mut v, "words").len(), 2);
        assert_eq!(v.read("kept.md").unwrap().version, 2);
    }
}
