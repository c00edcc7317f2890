//! A user's SQLite file: the full-text index, links and tags of the vault (a rebuildable cache)
//! and the state that is not in the files (note versions, MCP sessions).
//!
//! One [`Index`] wraps the one connection a user actor owns. Every method is synchronous and is
//! called from the actor's job thread, never from an async worker.
//!
//! Searches are mostly answered from an in-memory copy of the full-text index (`ranker`), kept
//! in step with `notes_fts` by the writes: whatever writes that table tells the index which
//! rows it touched ([`IndexTx::fts_row_changed`], [`IndexTx::fts_cleared`]).

mod budget;
pub mod fts_query;
mod fulltext;
mod links;
mod note_facts;
mod notes;
mod ranker;
mod schema;
mod search;
mod sessions;
mod snippet;
#[cfg(test)]
mod testing;
mod tokenizer;

use std::cell::RefCell;
use std::ops::Deref;
use std::path::Path;

use rusqlite::{Connection, Transaction};

pub use links::{choose, link_key, Candidate};
pub use notes::{
    FolderCount, IndexedNote, ListedNote, NoteMeta, NoteRecord, OutgoingLink, Scope, TagCount,
};
pub use search::{SearchFilter, SearchHit};
pub use sessions::StoredSession;

/// The open index of one user.
pub struct Index {
    conn: Connection,
    /// In-memory BM25 over `notes_fts` for plain queries; told about every write to it.
    ranker: ranker::Ranker,
    /// Note text waiting to be written to the FTS table in one batch.
    full_text: fulltext::Queue,
    /// What reads need about each note, so that reading an unchanged note asks SQLite
    /// nothing; told about every note a transaction changes.
    note_facts: RefCell<note_facts::NoteFacts>,
}

/// A transaction on the index that notes what it changed, so that the in-memory state (ranker,
/// note facts, full-text queue) follows once it ends. Derefs to the SQLite transaction.
pub struct IndexTx<'c> {
    tx: Transaction<'c>,
    effects: RefCell<Effects>,
}

/// What a transaction changed, as far as the in-memory state cares.
#[derive(Default)]
struct Effects {
    /// Row ids written (inserted, replaced or deleted) in `notes_fts`.
    fts_rows: Vec<i64>,
    /// Whether `notes_fts` was emptied.
    fts_cleared: bool,
    /// Text of single writes, for the full-text queue once the transaction commits.
    queued_text: Vec<(i64, fulltext::Text)>,
    /// Paths of the notes whose rows (`notes`, `note_state`, `tags`) it wrote.
    changed_notes: Vec<String>,
    /// Whether the note tables were emptied.
    notes_cleared: bool,
}

impl<'c> Deref for IndexTx<'c> {
    type Target = Transaction<'c>;

    fn deref(&self) -> &Transaction<'c> {
        &self.tx
    }
}

impl IndexTx<'_> {
    /// Row `rowid` of `notes_fts` was inserted, replaced or deleted.
    pub fn fts_row_changed(&self, rowid: i64) {
        self.effects.borrow_mut().fts_rows.push(rowid);
    }

    /// Every row of `notes_fts` is gone.
    pub fn fts_cleared(&self) {
        self.effects.borrow_mut().fts_cleared = true;
    }

    /// The rows of the note at `path` (in `notes`, `note_state` or `tags`) were written.
    pub fn note_changed(&self, path: &str) {
        self.effects
            .borrow_mut()
            .changed_notes
            .push(path.to_string());
    }

    /// Every row of `notes` and `tags` is gone.
    pub fn notes_cleared(&self) {
        self.effects.borrow_mut().notes_cleared = true;
    }

    /// Note `id`'s new text (`None`: removed) goes to the full-text queue if this commits.
    fn queue_text(&self, id: i64, text: fulltext::Text) {
        self.effects.borrow_mut().queued_text.push((id, text));
    }
}

impl Index {
    /// Open (creating if needed) the index file and bring it to the current schema.
    pub fn open(path: &Path) -> rusqlite::Result<Self> {
        Index::with_connection(Connection::open(path)?)
    }

    /// An index that lives only in memory, for unit tests of the layers above.
    pub fn open_in_memory() -> rusqlite::Result<Self> {
        Index::with_connection(Connection::open_in_memory()?)
    }

    fn with_connection(conn: Connection) -> rusqlite::Result<Self> {
        schema::prepare(&conn)?;
        Ok(Index {
            conn,
            ranker: ranker::Ranker::default(),
            full_text: Default::default(),
            note_facts: Default::default(),
        })
    }

    /// Drop every index table (state tables stay); the vault's next reconcile refills them.
    pub fn drop_index(&mut self) -> rusqlite::Result<()> {
        self.fts_cleared();
        self.full_text = Default::default();
        self.note_facts.get_mut().clear();
        schema::drop_index(&self.conn)
    }

    /// Run `f` in one transaction: everything it changes lands together or not at all.
    /// Text that single writes queued goes to the full-text queue once it has committed.
    pub fn transaction<T, E: From<rusqlite::Error>>(
        &mut self,
        f: impl FnOnce(&IndexTx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let (out, effects) = {
            let tx = IndexTx {
                tx: self.conn.transaction()?,
                effects: RefCell::default(),
            };
            let out = f(&tx);
            let IndexTx { tx, effects } = tx;
            let out = out.and_then(|out| tx.commit().map(|()| out).map_err(E::from));
            (out, effects)
        };
        let Effects {
            fts_rows,
            fts_cleared,
            queued_text,
            changed_notes,
            notes_cleared,
        } = effects.into_inner();
        // The ranker and the note facts follow even after a rollback: re-reading an unchanged
        // row only costs a lookup.
        if fts_cleared {
            self.fts_cleared();
        }
        for rowid in fts_rows {
            self.fts_row_changed(rowid);
        }
        let facts = self.note_facts.get_mut();
        if notes_cleared {
            facts.clear();
        } else {
            for path in changed_notes {
                facts.forget(&path);
            }
        }
        let out = out?;
        let mut full = false;
        for (id, text) in queued_text {
            full |= self.full_text.add(id, text);
        }
        if full {
            self.flush_full_text()?;
        }
        Ok(out)
    }

    /// Row `rowid` of `notes_fts` was inserted, replaced or deleted: the ranker re-reads it
    /// before its next answer. O(1).
    pub fn fts_row_changed(&mut self, rowid: i64) {
        self.ranker.fts_row_changed(rowid);
    }

    /// `notes_fts` was emptied or replaced: the ranker is dropped and rebuilt when needed.
    pub fn fts_cleared(&mut self) {
        self.ranker.fts_cleared();
    }

    /// Most bytes the in-memory copies (rankers, note facts) of all open indexes may hold
    /// together (the process shares one budget); an index whose ranker does not fit is
    /// searched with FTS5 alone, and note facts that do not fit are looked up in SQLite.
    pub fn set_search_memory_limit(&mut self, bytes: usize) {
        self.ranker.set_limit(bytes);
        self.note_facts.get_mut().set_limit(bytes);
    }

    /// Bytes this index's ranker holds from the shared budget (0 when it has none).
    pub fn search_memory(&self) -> usize {
        self.ranker.reserved()
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }
}
