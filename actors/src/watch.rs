//! Live files: changes made to a vault folder by other programs (an editor, a sync tool, a
//! copy) while the user's actor runs reach the index within about a second.
//!
//! One file watcher ([`notify`], inotify on Linux) serves the whole process, so a vault costs
//! one watch per folder and no extra thread or inotify instance. A user's core registers its
//! vault folder when it opens ([`Watches::watch`]) and the [`WatchGuard`] it keeps removes the
//! watch when the core is dropped, so live watches are bounded by the cap on live actors
//! (`max_live_actors`). Events are turned into vault-relative paths (hidden entries such as the
//! server's own temp files and `.obsidian/` left out) and handed to the vault's actor, which
//! gathers them in a [`Debouncer`] and re-syncs exactly those paths through the vault: a write
//! the server made itself is then a no-op, since the file already matches the index.
//!
//! When events may have been lost (the kernel's event queue overflowed, or the watcher
//! reported an error for a vault's path), the actor is told to rescan: the whole vault is
//! compared with the index, as at start-up. When a watch cannot be added at all (inotify's
//! `max_user_watches` or `max_user_instances` reached, or no watcher on this platform), a
//! warning is logged, `vault_mcp_watch_failures_total` is counted, and the vault works without
//! live updates: outside changes are then found when a note is read or written (its size and
//! mtime are checked each time) and by the full scan when the actor next starts.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};

/// What the watcher tells a vault's actor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// These vault-relative paths (notes or folders) were created, changed, removed or renamed.
    Paths(Vec<PathBuf>),
    /// Events may have been lost: compare the whole vault with the index.
    Rescan,
}

/// Where a vault's events go (called on the watcher's thread; must not block).
pub type Sink = Arc<dyn Fn(WatchEvent) + Send + Sync>;

/// Vault folders being watched, by canonical root.
type Routes = Arc<RwLock<HashMap<PathBuf, Sink>>>;

/// The process's file watcher and the vaults registered with it.
pub struct Watches {
    routes: Routes,
    /// Started at the first registration; `Err` once starting it failed (not retried: the
    /// limit that stopped it rarely goes away while the process runs).
    watcher: Mutex<Option<Result<RecommendedWatcher, ()>>>,
}

/// Keeps a vault folder watched; dropping it removes the watch.
pub struct WatchGuard {
    watches: &'static Watches,
    root: PathBuf,
}

impl Watches {
    /// The process-wide watcher.
    pub fn global() -> &'static Watches {
        static WATCHES: OnceLock<Watches> = OnceLock::new();
        WATCHES.get_or_init(|| Watches {
            routes: Arc::default(),
            watcher: Mutex::new(None),
        })
    }

    /// Watch the vault folder `root` (canonical, existing) recursively and send its events to
    /// `sink`. `None` when it cannot be watched (logged and counted): the vault then works
    /// without live updates.
    pub fn watch(&'static self, root: &Path, sink: Sink) -> Option<WatchGuard> {
        // Routed first, so that events raised while the folders are being added are not lost.
        write(&self.routes).insert(root.to_path_buf(), sink);
        let mut slot = self.watcher.lock().unwrap_or_else(PoisonError::into_inner);
        let started = slot.get_or_insert_with(|| self.start());
        let outcome = match started {
            Ok(watcher) => watcher
                .watch(root, RecursiveMode::Recursive)
                .inspect_err(|_| {
                    // A partial recursive watch would look live and miss folders: drop it.
                    let _ = watcher.unwatch(root);
                }),
            Err(()) => Err(notify::Error::generic("the file watcher could not start")),
        };
        drop(slot);
        match outcome {
            Ok(()) => Some(WatchGuard {
                watches: self,
                root: root.to_path_buf(),
            }),
            Err(e) => {
                write(&self.routes).remove(root);
                failed(&e, "watch");
                None
            }
        }
    }

    fn start(&self) -> Result<RecommendedWatcher, ()> {
        let routes = self.routes.clone();
        notify::recommended_watcher(move |event| route(&routes, event)).map_err(|e| {
            failed(&e, "start");
        })
    }

    fn unwatch(&self, root: &Path) {
        write(&self.routes).remove(root);
        let mut slot = self.watcher.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(Ok(watcher)) = slot.as_mut() {
            // Fails only when the folder's watch is already gone (the folder was removed).
            let _ = watcher.unwatch(root);
        }
    }
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.watches.unwatch(&self.root);
    }
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

/// Log and count a watch that could not be set up or broke.
fn failed(e: &notify::Error, stage: &'static str) {
    let reason = match e.kind {
        notify::ErrorKind::MaxFilesWatch => "limit",
        _ => "error",
    };
    metrics::counter!("vault_mcp_watch_failures_total", "reason" => reason).increment(1);
    tracing::warn!(
        error = %e,
        stage,
        "file watching failed: changes made outside the server are found at the next read, \
         write or actor start instead of live (on Linux, raise fs.inotify.max_user_watches or \
         max_user_instances, or set watch_files = false)"
    );
}

/// Hand one watcher event to the vaults it concerns (on the watcher's thread).
fn route(routes: &Routes, event: notify::Result<Event>) {
    let routes = routes.read().unwrap_or_else(PoisonError::into_inner);
    match event {
        Ok(event) if event.need_rescan() => {
            tracing::warn!("file events were lost (queue overflow): rescanning the open vaults");
            for sink in routes.values() {
                sink(WatchEvent::Rescan);
            }
        }
        Ok(event) if concerns_content(&event.kind) => {
            let mut by_vault: HashMap<&Path, (&Sink, Vec<PathBuf>)> = HashMap::new();
            for path in &event.paths {
                let Some((root, sink)) = owner(&routes, path) else {
                    continue;
                };
                let Ok(rel) = path.strip_prefix(root) else {
                    continue;
                };
                let entry = by_vault.entry(root).or_insert_with(|| (sink, Vec::new()));
                if rel.as_os_str().is_empty() {
                    // The vault folder itself (moved or removed): only a scan can tell.
                    entry.1.clear();
                    entry.1.push(PathBuf::new());
                } else if !is_hidden(rel) {
                    entry.1.push(rel.to_path_buf());
                }
            }
            for (sink, paths) in by_vault.into_values() {
                if paths.first().is_some_and(|p| p.as_os_str().is_empty()) {
                    sink(WatchEvent::Rescan);
                } else if !paths.is_empty() {
                    sink(WatchEvent::Paths(paths));
                }
            }
        }
        Ok(_) => {}
        Err(e) => {
            failed(&e, "event");
            // A folder that could not be watched (or an unreadable queue): what happened in it
            // is unknown, so its vault is scanned; with no path, every open vault is.
            let mut told = false;
            for path in &e.paths {
                if let Some((_, sink)) = owner(&routes, path) {
                    sink(WatchEvent::Rescan);
                    told = true;
                }
            }
            if !told && e.paths.is_empty() {
                for sink in routes.values() {
                    sink(WatchEvent::Rescan);
                }
            }
        }
    }
}

/// The registered vault whose folder holds `path`.
fn owner<'a>(routes: &'a HashMap<PathBuf, Sink>, path: &Path) -> Option<(&'a PathBuf, &'a Sink)> {
    path.ancestors().find_map(|dir| routes.get_key_value(dir))
}

/// Could the event change what a note holds, or which notes exist? Opening, reading and
/// closing a file without writing (the server's own reads among them) cannot.
fn concerns_content(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// Paths with a hidden component (the server's temp files, `.obsidian/`, `.trash/`) are never
/// notes, as for the start-up scan.
fn is_hidden(rel: &Path) -> bool {
    rel.components().any(|c| match c {
        Component::Normal(name) => name.to_string_lossy().starts_with('.'),
        _ => false,
    })
}

/// Gathers a vault's file events until they settle, so a burst (an editor's save in several
/// steps, a folder copied in) costs one re-sync per path instead of one per event.
///
/// A path is due once no event touched it for `quiet`, or `max_wait` after its first event
/// however busy it stays, which bounds how stale the index can be.
#[derive(Debug)]
pub struct Debouncer {
    quiet: Duration,
    max_wait: Duration,
    /// Pending paths, with their first and last event.
    paths: HashMap<PathBuf, (Instant, Instant)>,
    /// A rescan is pending (first and last request); it makes every pending path redundant.
    rescan: Option<(Instant, Instant)>,
}

/// What is due: re-sync these paths, or (with `rescan`) the whole vault.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileBatch {
    pub rescan: bool,
    pub paths: Vec<PathBuf>,
}

/// Quiet time before a changed path is re-synced.
pub const QUIET: Duration = Duration::from_millis(150);
/// Longest a changed path waits, however often it keeps changing.
pub const MAX_WAIT: Duration = Duration::from_millis(600);

impl Default for Debouncer {
    fn default() -> Self {
        Debouncer::new(QUIET, MAX_WAIT)
    }
}

impl Debouncer {
    pub fn new(quiet: Duration, max_wait: Duration) -> Self {
        Debouncer {
            quiet,
            max_wait,
            paths: HashMap::new(),
            rescan: None,
        }
    }

    /// Note an event seen at `now`.
    pub fn push(&mut self, event: WatchEvent, now: Instant) {
        match event {
            WatchEvent::Rescan => {
                let first = self.rescan.map_or(now, |(first, _)| first);
                self.rescan = Some((first, now));
            }
            WatchEvent::Paths(paths) => {
                for path in paths {
                    let seen = self.paths.entry(path).or_insert((now, now));
                    seen.1 = now;
                }
            }
        }
    }

    fn due_at(&self, (first, last): (Instant, Instant)) -> Instant {
        (last + self.quiet).min(first + self.max_wait)
    }

    /// When the next path (or the rescan) falls due; `None` when nothing is pending.
    pub fn next_due(&self) -> Option<Instant> {
        self.rescan
            .iter()
            .chain(self.paths.values())
            .map(|seen| self.due_at(*seen))
            .min()
    }

    /// Take what is due at `now` (sorted paths), leaving the rest pending; `None` when nothing
    /// is due. A due rescan takes every pending path with it.
    pub fn take_due(&mut self, now: Instant) -> Option<FileBatch> {
        if let Some(seen) = self.rescan {
            if self.due_at(seen) <= now {
                self.rescan = None;
                self.paths.clear();
                return Some(FileBatch {
                    rescan: true,
                    paths: Vec::new(),
                });
            }
        }
        let mut due: Vec<PathBuf> = Vec::new();
        let (quiet, max_wait) = (self.quiet, self.max_wait);
        self.paths.retain(|path, (first, last)| {
            let ready = (*last + quiet).min(*first + max_wait) <= now;
            if ready {
                due.push(path.clone());
            }
            !ready
        });
        if due.is_empty() {
            return None;
        }
        due.sort();
        Some(FileBatch {
            rescan: false,
            paths: due,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn paths(list: &[&str]) -> WatchEvent {
        WatchEvent::Paths(list.iter().map(PathBuf::from).collect())
    }

    #[test]
    fn a_path_is_due_after_a_quiet_spell_and_repeated_events_coalesce() {
        let t0 = Instant::now();
        let mut d = Debouncer::new(ms(100), ms(1000));
        assert_eq!(d.next_due(), None);
        d.push(paths(&["a.md", "b.md"]), t0);
        d.push(paths(&["a.md"]), t0 + ms(50));
        assert_eq!(d.next_due(), Some(t0 + ms(100)), "b.md falls due first");
        assert_eq!(d.take_due(t0 + ms(99)), None);
        let batch = d.take_due(t0 + ms(100)).unwrap();
        assert_eq!(batch.paths, [PathBuf::from("b.md")]);
        assert!(!batch.rescan);
        assert_eq!(d.next_due(), Some(t0 + ms(150)), "a.md was touched again");
        let batch = d.take_due(t0 + ms(150)).unwrap();
        assert_eq!(batch.paths, [PathBuf::from("a.md")], "once, not twice");
        assert_eq!(d.next_due(), None);
        assert_eq!(d.take_due(t0 + ms(10_000)), None);
    }

    #[test]
    fn a_path_that_keeps_changing_is_due_after_the_longest_wait() {
        let t0 = Instant::now();
        let mut d = Debouncer::new(ms(100), ms(300));
        for i in 0..10 {
            d.push(paths(&["busy.md"]), t0 + ms(i * 50));
            if i * 50 < 300 {
                assert_eq!(d.take_due(t0 + ms(i * 50)), None);
            }
        }
        assert_eq!(d.next_due(), Some(t0 + ms(300)));
        assert_eq!(
            d.take_due(t0 + ms(300)).unwrap().paths,
            [PathBuf::from("busy.md")]
        );
    }

    #[test]
    fn a_rescan_takes_every_pending_path_with_it() {
        let t0 = Instant::now();
        let mut d = Debouncer::new(ms(100), ms(1000));
        d.push(paths(&["a.md"]), t0);
        d.push(WatchEvent::Rescan, t0 + ms(20));
        d.push(paths(&["b.md"]), t0 + ms(40));
        // a.md is due before the rescan: it goes alone.
        assert_eq!(
            d.take_due(t0 + ms(100)).unwrap().paths,
            [PathBuf::from("a.md")]
        );
        let batch = d.take_due(t0 + ms(120)).unwrap();
        assert!(batch.rescan);
        assert!(batch.paths.is_empty());
        assert_eq!(d.next_due(), None, "b.md is covered by the rescan");
    }

    #[test]
    fn due_paths_come_sorted() {
        let t0 = Instant::now();
        let mut d = Debouncer::new(ms(10), ms(10));
        d.push(paths(&["z.md", "a/b.md", "m.md"]), t0);
        assert_eq!(
            d.take_due(t0 + ms(10)).unwrap().paths,
            ["a/b.md", "m.md", "z.md"].map(PathBuf::from)
        );
    }

    #[test]
    fn hidden_paths_and_plain_reads_are_not_content_changes() {
        assert!(is_hidden(Path::new(".a.md.1f2e.tmp")));
        assert!(is_hidden(Path::new("sub/.obsidian/app.json")));
        assert!(!is_hidden(Path::new("sub/a.md")));
        assert!(!concerns_content(&EventKind::Access(AccessKind::Open(
            AccessMode::Any
        ))));
        assert!(!concerns_content(&EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
        assert!(concerns_content(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(concerns_content(&EventKind::Remove(
            notify::event::RemoveKind::Any
        )));
    }

    #[test]
    fn events_reach_the_vault_that_holds_them_relative_to_its_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let tx = Mutex::new(tx);
        let sink: Sink = Arc::new(move |e| drop(tx.lock().unwrap().send(e)));
        let guard = Watches::global().watch(&root, sink).expect("watchable");
        std::fs::create_dir(root.join("sub")).unwrap();
        std::fs::write(root.join(".hidden.tmp"), "x").unwrap();
        // Give the watcher time to add the new folder before writing into it.
        std::thread::sleep(ms(100));
        std::fs::write(root.join("sub/a.md"), "x").unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut seen = Vec::new();
        while !seen.contains(&PathBuf::from("sub/a.md")) && Instant::now() < deadline {
            if let Ok(WatchEvent::Paths(p)) = rx.recv_timeout(ms(100)) {
                seen.extend(p);
            }
        }
        assert!(seen.contains(&PathBuf::from("sub")), "{seen:?}");
        assert!(seen.contains(&PathBuf::from("sub/a.md")), "{seen:?}");
        assert!(!seen.iter().any(|p| is_hidden(p)), "{seen:?}");
        drop(guard);
        while rx.try_recv().is_ok() {}
        std::fs::write(root.join("after.md"), "x").unwrap();
        assert!(
            rx.recv_timeout(ms(300)).is_err(),
            "no events once the guard is dropped"
        );
    }
}
