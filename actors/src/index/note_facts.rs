//! What `read_note` needs from the index about each note (title, tags, version, size, and the
//! file's mtime when it was indexed), kept in memory so that reading an unchanged note asks
//! SQLite nothing.
//!
//! A cache of rows of `notes`, `note_state` and `tags`, owned by the index like its
//! connection: a miss asks SQLite and keeps the answer; every transaction names the notes it
//! may have changed ([`super::IndexTx::note_changed`]) and their entries are dropped when it
//! ends, committed or not; emptying the tables empties the cache. [`NoteFacts::load`] fills it
//! in one pass, cheaper than the point lookups of a vault's worth of reads. Its bytes come from
//! the budget the search rankers share; what does not fit is not kept, and those lookups ask
//! SQLite as before.

use std::sync::atomic::AtomicUsize;

use foldhash::HashMap;

use super::budget::{Reservation, DEFAULT_MEMORY_LIMIT, IN_USE};
use super::notes::NoteMeta;

/// Rough heap cost of one entry besides its strings (hash slot with its load factor, the
/// entry's fixed fields, string headers), for the budget.
const ENTRY_OVERHEAD: usize = 160;

/// The reservation grows and shrinks in steps of this many bytes, not at every entry.
const STEP: usize = 64 << 10;

/// One note's facts; the path is the map's key (the copy in `meta` is left empty).
struct Entry {
    meta: NoteMeta,
    mtime_ns: i64,
}

impl Entry {
    /// The key and entry of a note's facts.
    fn keyed(mut meta: NoteMeta, mtime_ns: i64) -> (String, Entry) {
        let path = std::mem::take(&mut meta.path);
        (path, Entry { meta, mtime_ns })
    }

    fn bytes(&self, path_len: usize) -> usize {
        ENTRY_OVERHEAD
            + path_len
            + self.meta.title.len()
            + self.meta.created.as_ref().map_or(0, String::len)
            + self.meta.updated.as_ref().map_or(0, String::len)
            + self.meta.tags.iter().map(|t| t.len() + 24).sum::<usize>()
    }
}

/// The facts of the notes read so far (or of all notes, after [`NoteFacts::load`]).
pub struct NoteFacts {
    entries: HashMap<String, Entry>,
    /// Estimated heap bytes of `entries`.
    bytes: usize,
    reservation: Reservation,
    /// Most bytes all in-memory copies of the process may hold together.
    limit: usize,
    /// A full load was done (or found no room) since the cache was last emptied.
    loaded: bool,
}

impl Default for NoteFacts {
    fn default() -> Self {
        NoteFacts::with_pool(&IN_USE)
    }
}

impl NoteFacts {
    fn with_pool(pool: &'static AtomicUsize) -> Self {
        NoteFacts {
            entries: HashMap::default(),
            bytes: 0,
            reservation: Reservation::new(pool),
            limit: DEFAULT_MEMORY_LIMIT,
            loaded: false,
        }
    }

    /// Most bytes all in-memory copies of the process may hold together (checked at the next
    /// growth).
    pub fn set_limit(&mut self, bytes: usize) {
        self.limit = bytes;
    }

    /// Bytes this cache holds from the budget.
    #[cfg(test)]
    pub fn reserved(&self) -> usize {
        self.reservation.held()
    }

    /// The facts of the note at `path` and the mtime it was indexed at, if cached.
    pub fn get(&self, path: &str) -> Option<(NoteMeta, i64)> {
        self.entries.get(path).map(|e| {
            let meta = NoteMeta {
                path: path.to_string(),
                ..e.meta.clone()
            };
            (meta, e.mtime_ns)
        })
    }

    /// Keep what the index answered for one note, if the budget has room for it.
    pub fn insert(&mut self, meta: &NoteMeta, mtime_ns: i64) -> bool {
        let (path, entry) = Entry::keyed(meta.clone(), mtime_ns);
        self.put(path, entry)
    }

    fn put(&mut self, path: String, entry: Entry) -> bool {
        let path_len = path.len();
        let add = entry.bytes(path_len);
        if !self.hold(self.bytes + add) {
            return false;
        }
        self.bytes += add;
        if let Some(old) = self.entries.insert(path, entry) {
            self.bytes -= old.bytes(path_len);
        }
        true
    }

    /// The note at `path` may have changed: forget what is known about it.
    pub fn forget(&mut self, path: &str) {
        if let Some((path, entry)) = self.entries.remove_entry(path) {
            self.bytes -= entry.bytes(path.len());
            self.hold(self.bytes);
        }
    }

    /// Every note may have changed (the tables were emptied or rebuilt).
    pub fn clear(&mut self) {
        self.entries = HashMap::default();
        self.bytes = 0;
        self.loaded = false;
        self.reservation.resize(0, self.limit);
    }

    /// Whether [`NoteFacts::load`] would do anything.
    pub fn wants_load(&self) -> bool {
        !self.loaded
    }

    /// Fill the cache with every note's facts (path, facts, indexed mtime), as far as the
    /// budget allows; already cached entries are kept.
    pub fn load(&mut self, notes: impl IntoIterator<Item = (NoteMeta, i64)>) {
        self.loaded = true;
        for (meta, mtime_ns) in notes {
            if self.entries.contains_key(&meta.path) {
                continue;
            }
            let (path, entry) = Entry::keyed(meta, mtime_ns);
            if !self.put(path, entry) {
                break;
            }
        }
    }

    /// Hold `bytes` rounded up to a step (down when more than two steps would be idle).
    fn hold(&mut self, bytes: usize) -> bool {
        let held = self.reservation.held();
        if bytes <= held && held - bytes < 2 * STEP {
            return true;
        }
        self.reservation
            .resize(bytes.div_ceil(STEP) * STEP, self.limit)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;

    fn meta(path: &str, version: u64) -> NoteMeta {
        NoteMeta {
            path: path.into(),
            title: format!("Title of {path}"),
            version,
            size: 100,
            created: Some("2026-01-01T00:00:00Z".into()),
            updated: None,
            tags: vec!["a".into(), "b".into()],
        }
    }

    #[test]
    fn keeps_forgets_and_clears() {
        static POOL: AtomicUsize = AtomicUsize::new(0);
        let mut facts = NoteFacts::with_pool(&POOL);
        assert!(facts.get("a.md").is_none());
        assert!(facts.insert(&meta("a.md", 3), 42));
        let (got, mtime) = facts.get("a.md").unwrap();
        assert_eq!((got.path.as_str(), got.version, mtime), ("a.md", 3, 42));
        assert_eq!(got.tags, ["a", "b"]);
        assert_eq!(got.created.as_deref(), Some("2026-01-01T00:00:00Z"));
        assert!(facts.reserved() > 0);
        assert_eq!(POOL.load(Ordering::Relaxed), facts.reserved());
        facts.forget("a.md");
        assert!(facts.get("a.md").is_none());
        facts.load((0..100).map(|i| (meta(&format!("n{i}.md"), i), i as i64)));
        assert!(!facts.wants_load());
        assert_eq!(facts.get("n7.md").unwrap().0.version, 7);
        facts.clear();
        assert!(facts.get("n7.md").is_none());
        assert!(facts.wants_load());
        assert_eq!(POOL.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn holds_no_more_than_the_budget_allows() {
        static POOL: AtomicUsize = AtomicUsize::new(0);
        let mut facts = NoteFacts::with_pool(&POOL);
        facts.set_limit(STEP);
        facts.load((0..10_000).map(|i| (meta(&format!("folder/note-{i}.md"), 1), 0)));
        let kept = (0..10_000)
            .filter(|i| facts.get(&format!("folder/note-{i}.md")).is_some())
            .count();
        assert!(kept > 0 && kept < 10_000, "kept {kept}");
        assert!(POOL.load(Ordering::Relaxed) <= STEP);
        assert!(!facts.insert(&meta("one-more.md", 1), 0));
        drop(facts);
        assert_eq!(POOL.load(Ordering::Relaxed), 0);
    }
}
