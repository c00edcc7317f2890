//! One process per data folder: an exclusive OS lock (`flock`) on `<data_dir>/vault-mcp.lock`,
//! held for the process's life by `serve` and by `stdio`. Two processes writing one vault would
//! each believe their index and sessions are the truth; the lock makes the second one stop with
//! a message naming the first.
//!
//! The file also says who holds it (pid, command, URL), for that message. The OS releases the
//! lock when the process ends, however it ends, so a crash leaves nothing to clean up.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// The lock on a data folder; released when dropped.
#[derive(Debug)]
pub struct DataLock {
    file: File,
    path: PathBuf,
}

/// Why the data folder could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("the data folder {dir} is in use by another vault-mcp ({holder}); stop it first, or connect your client to that server")]
    Held { dir: String, holder: String },
    #[error("cannot lock the data folder {dir}: {source}")]
    Io { dir: String, source: std::io::Error },
}

impl DataLock {
    /// Take the lock on `data_dir` for this process, recording `holder` (e.g. "serve on
    /// http://127.0.0.1:7860") in the file; fail at once when another process holds it.
    pub fn acquire(data_dir: &Path, holder: &str) -> Result<Self, LockError> {
        let io = |source| LockError::Io {
            dir: data_dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(data_dir).map_err(io)?;
        let path = data_dir.join("vault-mcp.lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        // SAFETY: flock on a descriptor this function owns; it touches no memory.
        let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if locked != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let holder = match text.trim() {
                    "" => "another process".to_string(),
                    t => t.to_string(),
                };
                return Err(LockError::Held {
                    dir: data_dir.display().to_string(),
                    holder,
                });
            }
            return Err(io(err));
        }
        let mut lock = DataLock { file, path };
        lock.describe(holder).map_err(io)?;
        Ok(lock)
    }

    /// Say who holds the lock now (a server learns its URL only after binding).
    pub fn describe(&mut self, holder: &str) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.file.rewind()?;
        writeln!(self.file, "pid {}, {holder}", std::process::id())?;
        self.file.flush()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_description() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataLock::acquire(dir.path(), "serve on http://127.0.0.1:1").unwrap();
        let err = DataLock::acquire(dir.path(), "stdio")
            .unwrap_err()
            .to_string();
        assert!(err.contains("in use by another vault-mcp"), "{err}");
        assert!(err.contains("serve on http://127.0.0.1:1"), "{err}");
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(first);
        assert!(
            DataLock::acquire(dir.path(), "stdio").is_ok(),
            "released on drop"
        );
    }
}
