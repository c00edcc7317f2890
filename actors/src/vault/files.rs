//! Crash-safe file operations on the vault: a write that was acknowledged is on disk.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::pool;

/// Replace `target` with `bytes` atomically and durably: write a temporary file in the same
/// folder, fsync it, rename it over the target, then fsync the folder so the rename itself
/// survives a power cut. Missing folders are created (and synced) on the way.
pub fn write_atomic(target: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = target
        .parent()
        .ok_or_else(|| std::io::Error::other("note path has no folder"))?;
    create_dirs_durably(dir)?;
    let tmp = temp_name(target);
    let result = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        file.write_all(bytes)?;
        pool::blocking(|| file.sync_all())?;
        fs::rename(&tmp, target)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        // The rename did not happen (or we cannot tell): never leave the temp file behind.
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// A note's previous file, kept aside under a temp name while a write replaces it (a hard
/// link, so it takes no space), so that the write can be undone when the index then refuses
/// it (a full disk). Dropping it forgets the old file; a crash leaves a temp file, which the
/// next scan removes.
pub struct SetAside {
    target: PathBuf,
    kept: Option<PathBuf>,
}

impl SetAside {
    /// Keep `target`'s current file aside, if it has one.
    pub fn keep(target: &Path) -> std::io::Result<Self> {
        let tmp = temp_name(target);
        let kept = match fs::hard_link(target, &tmp) {
            Ok(()) => Some(tmp),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        Ok(SetAside {
            target: target.to_path_buf(),
            kept,
        })
    }

    /// Undo the write: the previous file comes back, or the new one goes when there was none.
    pub fn undo(mut self) -> std::io::Result<()> {
        match self.kept.take() {
            Some(tmp) => fs::rename(&tmp, &self.target)?,
            None => fs::remove_file(&self.target)?,
        }
        match self.target.parent() {
            Some(dir) => sync_dir(dir),
            None => Ok(()),
        }
    }
}

impl Drop for SetAside {
    fn drop(&mut self) {
        if let Some(tmp) = self.kept.take() {
            let _ = fs::remove_file(tmp);
        }
    }
}

/// Remove a note file durably (the folder entry is synced).
pub fn remove_durably(target: &Path) -> std::io::Result<()> {
    fs::remove_file(target)?;
    if let Some(dir) = target.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Temp files start with '.' and end in '.tmp', so a vault scan never takes one for a note.
fn temp_name(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut random = [0u8; 8];
    // A predictable suffix would only risk a collision with a concurrent writer of the same
    // note, which the actor already rules out; the OS RNG failing is no reason to fail a write.
    let _ = getrandom::fill(&mut random);
    let suffix: String = random.iter().map(|b| format!("{b:02x}")).collect();
    target.with_file_name(format!(".{name}.{suffix}.tmp"))
}

fn create_dirs_durably(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dirs_durably(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e),
    }
    match dir.parent() {
        Some(parent) => sync_dir(parent),
        None => Ok(()),
    }
}

/// fsync waits on the disk, not the CPU: the job thread is given back meanwhile.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    let dir = File::open(dir)?;
    pool::blocking(|| dir.sync_all())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_creates_folders_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a/b/note.md");
        write_atomic(&target, b"hello").unwrap();
        write_atomic(&target, b"again").unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "again");
        let names: Vec<_> = fs::read_dir(dir.path().join("a/b"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("note.md")]);
    }

    #[test]
    fn a_write_set_aside_is_undone_or_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let note = dir.path().join("a.md");
        write_atomic(&note, b"old").unwrap();
        let aside = SetAside::keep(&note).unwrap();
        write_atomic(&note, b"new").unwrap();
        aside.undo().unwrap();
        assert_eq!(fs::read(&note).unwrap(), b"old");

        let aside = SetAside::keep(&note).unwrap();
        write_atomic(&note, b"newer").unwrap();
        drop(aside);
        assert_eq!(fs::read(&note).unwrap(), b"newer");

        let fresh = dir.path().join("b.md");
        let aside = SetAside::keep(&fresh).unwrap();
        write_atomic(&fresh, b"b").unwrap();
        aside.undo().unwrap();
        assert!(!fresh.exists());
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("a.md")],
            "no temp file is left"
        );
    }
}
