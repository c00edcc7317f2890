//! The move journal: a move (or the restore that reverses one) touches many files, and must
//! look all-or-nothing even when the process is killed in the middle.
//!
//! Before the first file changes, the whole plan (renames, the new text of every note whose
//! links change, the history entries) is written to a journal file beside the index (outside
//! the vault, durably: temp file, fsync, rename, fsync). Then its steps are applied, each one
//! idempotent, and the journal is removed. When a vault opens and finds a journal, it applies
//! it again to completion before anything else, so after a kill at any point every note
//! exists exactly once and the links all point either to the old paths (no journal yet) or
//! to the new ones.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::files;
use super::history::{History, Record};
use crate::error::VaultError;

/// A move, planned and ready to apply.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Journal {
    /// Shared by the operation's history entries; a replay does not record them twice.
    pub operation_id: String,
    /// Files or folders to rename, vault-relative, in order.
    pub renames: Vec<Rename>,
    /// Notes to rewrite (paths after the renames), with their whole new file.
    pub writes: Vec<Rewrite>,
    /// History entries of the operation.
    pub history: Vec<Record>,
    /// Notes whose path changes, so their older history follows them: (old, new).
    pub renamed_notes: Vec<(String, String)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rename {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rewrite {
    pub path: String,
    pub text: String,
}

impl Journal {
    /// Write the journal durably; nothing in the vault has changed yet.
    pub fn save(&self, file: &Path) -> Result<(), VaultError> {
        let bytes =
            serde_json::to_vec(self).map_err(|e| VaultError::Io(std::io::Error::other(e)))?;
        files::write_atomic(file, &bytes)?;
        Ok(())
    }

    /// The journal a killed move left, if any.
    pub fn load(file: &Path) -> Result<Option<Journal>, VaultError> {
        let bytes = match std::fs::read(file) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        match serde_json::from_slice(&bytes) {
            Ok(j) => Ok(Some(j)),
            // Written through a temp file and a rename, so a torn journal cannot be ours;
            // set it aside rather than fail every open of the vault.
            Err(e) => {
                tracing::error!(file = %file.display(), error = %e, "unreadable move journal set aside");
                std::fs::rename(file, file.with_extension("unreadable"))?;
                Ok(None)
            }
        }
    }

    /// Apply every step (each may already be done), then remove the journal file.
    pub fn apply(&self, root: &Path, history: &mut History, file: &Path) -> Result<(), VaultError> {
        let records: Vec<&Record> = self.history.iter().collect();
        history.record_batch(&records, &self.renamed_notes)?;
        for rename in &self.renames {
            rename_durably(&root.join(&rename.from), &root.join(&rename.to))?;
        }
        crate::pool::blocking(|| write_all(root, &self.writes))?;
        remove_durably(file)
    }
}

/// Threads that write and sync the rewritten notes: each fsync waits on the disk, and many
/// in flight at once share the file system's journal commits instead of queueing for one each.
const WRITERS: usize = 16;

/// Replace every rewritten note as [`files::write_atomic`] does (temp file, fsync, rename,
/// fsync of the folder), with the fsyncs done in parallel and each folder synced once.
fn write_all(root: &Path, writes: &[Rewrite]) -> Result<(), VaultError> {
    if writes.is_empty() {
        return Ok(());
    }
    let targets: Vec<(PathBuf, PathBuf)> = writes
        .iter()
        .map(|w| {
            let target = root.join(&w.path);
            let name = target
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            // A scan removes temp files of this shape (`.<note>.md.<suffix>.tmp`) that a
            // crash left; a replay of the journal writes them again.
            let temp = target.with_file_name(format!(".{name}.move.tmp"));
            (target, temp)
        })
        .collect();
    let chunk = writes.len().div_ceil(WRITERS);
    std::thread::scope(|scope| -> Result<(), VaultError> {
        let jobs: Vec<_> = writes
            .chunks(chunk)
            .zip(targets.chunks(chunk))
            .map(|(writes, targets)| {
                scope.spawn(move || -> std::io::Result<()> {
                    for (w, (target, temp)) in writes.iter().zip(targets) {
                        if let Some(dir) = target.parent() {
                            std::fs::create_dir_all(dir)?;
                        }
                        let mut f = std::fs::File::create(temp)?;
                        std::io::Write::write_all(&mut f, w.text.as_bytes())?;
                        f.sync_all()?;
                    }
                    Ok(())
                })
            })
            .collect();
        for job in jobs {
            job.join()
                .map_err(|_| std::io::Error::other("a note writer panicked"))??;
        }
        Ok(())
    })?;
    let mut dirs: Vec<PathBuf> = Vec::new();
    for (target, temp) in &targets {
        std::fs::rename(temp, target)?;
        if let Some(dir) = target.parent() {
            if !dirs.iter().any(|d| d == dir) {
                dirs.push(dir.to_path_buf());
            }
        }
    }
    for dir in dirs {
        // Already inside `pool::blocking`.
        std::fs::File::open(&dir)?.sync_all()?;
    }
    Ok(())
}

/// Rename `from` to `to` (creating `to`'s folders) unless it was done already (`from` gone).
fn rename_durably(from: &Path, to: &Path) -> Result<(), VaultError> {
    match std::fs::symlink_metadata(from) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    let to_dir = to.parent().map(Path::to_path_buf).unwrap_or_default();
    std::fs::create_dir_all(&to_dir)?;
    std::fs::rename(from, to)?;
    sync_dir(&to_dir)?;
    if let Some(from_dir) = from.parent() {
        if from_dir != to_dir {
            sync_dir(from_dir)?;
        }
    }
    Ok(())
}

fn remove_durably(file: &Path) -> Result<(), VaultError> {
    match std::fs::remove_file(file) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    if let Some(dir) = file.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    let dir = std::fs::File::open(dir)?;
    crate::pool::blocking(|| dir.sync_all())
}

/// Where a vault's private files live, beside its index file and outside the vault: the
/// history (`history/<index file name>`) and the move journal (`journal/<index stem>.json`).
/// A folder per kind keeps them clear of every user's index file, whatever the user id.
#[derive(Debug, Clone)]
pub struct PrivateFiles {
    pub history: PathBuf,
    pub journal: PathBuf,
}

impl PrivateFiles {
    pub fn beside(index_file: &Path) -> Self {
        let dir = index_file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let name = index_file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "index.sqlite".into());
        let stem = name.strip_suffix(".sqlite").unwrap_or(&name).to_string();
        PrivateFiles {
            history: dir.join("history").join(&name),
            journal: dir.join("journal").join(format!("{stem}.json")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applying_twice_is_the_same_as_once() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("v");
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::fs::write(root.join("a/n.md"), "moved").unwrap();
        std::fs::write(root.join("r.md"), "[[a/n]]").unwrap();
        let journal = Journal {
            operation_id: "op".into(),
            renames: vec![Rename {
                from: "a".into(),
                to: "b/a".into(),
            }],
            writes: vec![Rewrite {
                path: "r.md".into(),
                text: "[[b/a/n]]".into(),
            }],
            ..Default::default()
        };
        let file = dir.path().join("j/x.json");
        let mut history = History::open(&dir.path().join("h.sqlite"), 5, 1 << 20).unwrap();
        journal.save(&file).unwrap();
        let loaded = Journal::load(&file).unwrap().unwrap();
        loaded.apply(&root, &mut history, &file).unwrap();
        journal.apply(&root, &mut history, &file).unwrap();
        assert!(!file.exists());
        assert!(!root.join("a").exists());
        assert_eq!(
            std::fs::read_to_string(root.join("b/a/n.md")).unwrap(),
            "moved"
        );
        assert_eq!(
            std::fs::read_to_string(root.join("r.md")).unwrap(),
            "[[b/a/n]]"
        );
        assert!(Journal::load(&file).unwrap().is_none());
    }

    #[test]
    fn private_files_sit_in_their_own_folders_beside_the_index() {
        let p = PrivateFiles::beside(Path::new("/d/index/alice.sqlite"));
        assert_eq!(p.history, Path::new("/d/index/history/alice.sqlite"));
        assert_eq!(p.journal, Path::new("/d/index/journal/alice.json"));
    }
}
