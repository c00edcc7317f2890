//! Readiness: can this process take work now? The supervisor answers, the data folder takes a
//! write, the accounts file answers a query, and the server is not shutting down.
//!
//! Liveness (`/health`) needs none of this: it is "the process serves HTTP".

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vault_actors::Supervisor;

use crate::accounts::AccountStore;

/// The file the write probe creates and removes in the data folder.
pub const PROBE_FILE: &str = ".ready-probe";
/// Each check must answer within this.
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);
/// A successful write probe is trusted this long, so frequent probes cost no disk writes.
/// A failed one is not remembered: the next probe tries again.
const PROBE_EVERY: Duration = Duration::from_secs(3);

/// The readiness checks and what they remember between calls.
pub struct Readiness {
    probe_path: PathBuf,
    /// When the data folder last took the probe's write; held while a probe runs, so
    /// concurrent checks wait for its answer instead of writing too.
    last_write: tokio::sync::Mutex<Option<Instant>>,
    /// A probe's write is still running (it outlived its timeout): a hung disk then holds one
    /// blocking thread, not one per check.
    writing: Arc<AtomicBool>,
}

/// The outcome of each check, by name, in a fixed order.
pub struct Report {
    pub checks: Vec<(&'static str, Result<(), String>)>,
}

impl Report {
    pub fn ready(&self) -> bool {
        self.checks.iter().all(|(_, r)| r.is_ok())
    }
}

impl Readiness {
    pub fn new(data_dir: &Path) -> Self {
        Readiness {
            probe_path: data_dir.join(PROBE_FILE),
            last_write: tokio::sync::Mutex::new(None),
            writing: Arc::default(),
        }
    }

    /// Run every check (at once); `shutting_down` fails readiness so balancers stop sending.
    pub async fn check(
        &self,
        supervisor: &Supervisor,
        accounts: &AccountStore,
        shutting_down: bool,
    ) -> Report {
        let supervisor = async {
            match tokio::time::timeout(CHECK_TIMEOUT, supervisor.try_stats()).await {
                Ok(Some(_)) => Ok(()),
                Ok(None) => Err("the supervisor is not running".to_string()),
                Err(_) => Err("the supervisor did not answer within 1 s".to_string()),
            }
        };
        let accounts = async {
            match tokio::time::timeout(CHECK_TIMEOUT, accounts.ping()).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("the accounts file did not answer within 1 s".to_string()),
            }
        };
        let (supervisor, data_dir, accounts) =
            tokio::join!(supervisor, self.data_dir_writable(), accounts);
        let serving = if shutting_down {
            Err("shutting down".to_string())
        } else {
            Ok(())
        };
        Report {
            checks: vec![
                ("serving", serving),
                ("supervisor", supervisor),
                ("data_dir", data_dir),
                ("accounts", accounts),
            ],
        }
    }

    /// Write and remove a tiny file in the data folder, at most once every few seconds.
    async fn data_dir_writable(&self) -> Result<(), String> {
        let Ok(mut last) = tokio::time::timeout(CHECK_TIMEOUT, self.last_write.lock()).await else {
            return Err("an earlier write probe is still running".to_string());
        };
        if last.is_some_and(|t| t.elapsed() < PROBE_EVERY) {
            return Ok(());
        }
        if self.writing.swap(true, Ordering::AcqRel) {
            return Err("an earlier write to the data folder has not finished".to_string());
        }
        let (path, writing) = (self.probe_path.clone(), self.writing.clone());
        let probe = tokio::task::spawn_blocking(move || {
            let result =
                std::fs::write(&path, b"ready?").and_then(|()| std::fs::remove_file(&path));
            writing.store(false, Ordering::Release);
            result
        });
        let result = match tokio::time::timeout(CHECK_TIMEOUT, probe).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(format!("the data folder cannot be written: {e}")),
            Ok(Err(e)) => Err(format!("the write probe failed: {e}")),
            Err(_) => Err("a write to the data folder took over 1 s".to_string()),
        };
        *last = result.is_ok().then(Instant::now);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failed_write_is_retried_and_a_good_one_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let r = Readiness::new(dir.path());
        assert_eq!(r.data_dir_writable().await, Ok(()));
        assert!(!dir.path().join(PROBE_FILE).exists(), "the probe cleans up");
        // A directory where the probe writes: no user, root included, can write that file.
        std::fs::create_dir_all(dir.path().join(PROBE_FILE).join("x")).unwrap();
        assert_eq!(
            r.data_dir_writable().await,
            Ok(()),
            "a success is trusted for a while"
        );
        *r.last_write.lock().await = None;
        assert!(r.data_dir_writable().await.is_err());
        std::fs::remove_dir_all(dir.path().join(PROBE_FILE)).unwrap();
        assert_eq!(r.data_dir_writable().await, Ok(()), "not remembered");
    }
}
