//! A user's SQLite file: the full-text index, links and tags of the vault (a rebuildable cache)
//! and the state that is not in the files (note versions, MCP sessions).
//!
//! One [`Index`] wraps the one connection a user actor owns. Every method is synchronous and is
//! called from the actor's blocking task, never from an async worker.

pub mod fts_query;
mod fulltext;
mod links;
mod notes;
mod schema;
mod search;
mod sessions;

use std::path::Path;

use rusqlite::Connection;

pub use links::link_key;
pub use notes::{IndexedNote, ListedNote, NoteMeta, NoteRecord, Scope, TagCount, Upserted};
pub use search::{SearchFilter, SearchHit};
pub use sessions::StoredSession;

/// The open index of one user.
pub struct Index {
    conn: Connection,
    /// Note text waiting to be written to the FTS table in one batch.
    full_text: fulltext::Queue,
}

impl Index {
    /// Open (creating if needed) the index file and bring it to the current schema.
    pub fn open(path: &Path) -> rusqlite::Result<Self> {
        let conn = Connection::open(path)?;
        schema::prepare(&conn)?;
        Ok(Index {
            conn,
            full_text: Default::default(),
        })
    }

    /// An index that lives only in memory, for unit tests of the layers above.
    pub fn open_in_memory() -> rusqlite::Result<Self> {
        let conn = Connection::open_in_memory()?;
        schema::prepare(&conn)?;
        Ok(Index {
            conn,
            full_text: Default::default(),
        })
    }

    /// Drop every index table (state tables stay); the vault's next reconcile refills them.
    pub fn drop_index(&mut self) -> rusqlite::Result<()> {
        self.full_text = Default::default();
        schema::drop_index(&self.conn)
    }

    /// Run `f` in one transaction: everything it changes lands together or not at all.
    pub fn transaction<T, E: From<rusqlite::Error>>(
        &mut self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let tx = self.conn.transaction()?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }
}
