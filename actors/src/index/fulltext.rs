//! The note text in the FTS5 table, written in batches.
//!
//! FTS5 turns every transaction that touched it into a new index segment and merges segments as
//! they pile up: for single writes that is most of a write's cost. So a single write only marks
//! its note stale (in `fts_pending`, in the same transaction as the note's row) and its new
//! text is queued here when that transaction commits; [`Index::flush_full_text`] then writes every queued note in one transaction.
//! The flush runs before anything reads the FTS table (search), when the queue grows large, and
//! shortly after the last write (the user actor arranges that). Bulk indexing (reconcile,
//! rebuild) writes the text at once, in its own big transaction.
//!
//! A crash between a write and the flush loses only the queue in memory: the marks survive, and
//! the next reconcile reindexes those notes from their files.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rusqlite::params;

use super::fts_query::segment_cjk;
use super::{Index, IndexTx};

/// Queued notes at which a write flushes at once rather than waiting.
const FLUSH_AT_NOTES: usize = 256;
/// Queued text (bytes) at which a write flushes at once.
const FLUSH_AT_BYTES: usize = 8 << 20;

/// A note's (segmented) title and body as the FTS table holds them; `None` when the note is
/// gone.
pub(super) type Text = Option<(String, String)>;

/// Notes whose text has not reached the FTS table yet.
#[derive(Default)]
pub(super) struct Queue {
    /// Note id → its new text. Ordered: FTS5 flushes its in-memory segment whenever a write's
    /// row id is lower than the last one's, so a batch must go in ascending row id order to
    /// become one segment.
    notes: BTreeMap<i64, Text>,
    bytes: usize,
    /// When the oldest queued text was queued: text that waits long means flushes fail.
    since: Option<Instant>,
}

impl Queue {
    /// Queue a note's text (a later text for the same note replaces the earlier); true when
    /// the queue has grown large enough to be flushed at once.
    pub(super) fn add(&mut self, id: i64, text: Text) -> bool {
        self.bytes += text.as_ref().map_or(0, |(t, b)| t.len() + b.len());
        self.since.get_or_insert_with(Instant::now);
        self.notes.insert(id, text);
        self.notes.len() >= FLUSH_AT_NOTES || self.bytes >= FLUSH_AT_BYTES
    }
}

/// Replace (or, with `None`, remove) note `id`'s row in the FTS table; `text` is segmented.
fn write_row(tx: &IndexTx<'_>, id: i64, text: Option<(&str, &str)>) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM notes_fts WHERE rowid = ?1")?
        .execute([id])?;
    if let Some((title, body)) = text {
        tx.prepare_cached("INSERT INTO notes_fts(rowid, title, body) VALUES (?1, ?2, ?3)")?
            .execute(params![id, title, body])?;
    }
    tx.fts_row_changed(id);
    Ok(())
}

impl Index {
    /// Put a note's text into the FTS table now (bulk indexing).
    pub(super) fn put_full_text(
        tx: &IndexTx<'_>,
        id: i64,
        title: &str,
        body: &str,
    ) -> rusqlite::Result<()> {
        write_row(tx, id, Some((&segment_cjk(title), &segment_cjk(body))))
    }

    /// Take a note's text out of the FTS table now (bulk indexing).
    pub(super) fn drop_full_text(tx: &IndexTx<'_>, id: i64) -> rusqlite::Result<()> {
        write_row(tx, id, None)
    }

    /// A single write: mark the note's FTS row stale in this transaction, and queue its new
    /// text (`None` when the note is removed) for the batch once the transaction commits.
    pub(super) fn mark_full_text(
        tx: &IndexTx<'_>,
        id: i64,
        text: Option<(&str, &str)>,
    ) -> rusqlite::Result<()> {
        tx.prepare_cached("INSERT OR IGNORE INTO fts_pending(id) VALUES (?1)")?
            .execute([id])?;
        tx.queue_text(
            id,
            text.map(|(title, body)| {
                (
                    segment_cjk(title).into_owned(),
                    segment_cjk(body).into_owned(),
                )
            }),
        );
        Ok(())
    }

    /// Is any note's text still waiting for [`Index::flush_full_text`]?
    pub fn full_text_queued(&self) -> bool {
        !self.full_text.notes.is_empty()
    }

    /// How many notes' text waits for [`Index::flush_full_text`], and for how long the oldest
    /// has waited.
    pub fn full_text_backlog(&self) -> (usize, Option<Duration>) {
        let queue = &self.full_text;
        (queue.notes.len(), queue.since.map(|t| t.elapsed()))
    }

    /// Write every queued note's text to the FTS table, in one transaction, and clear their
    /// marks. On failure the queue is kept (and the marks too), so nothing is lost.
    pub fn flush_full_text(&mut self) -> rusqlite::Result<()> {
        if self.full_text.notes.is_empty() {
            return Ok(());
        }
        let queue = std::mem::take(&mut self.full_text);
        let written = self.transaction(|tx| {
            let mut unmark = tx.prepare_cached("DELETE FROM fts_pending WHERE id = ?1")?;
            for (&id, text) in &queue.notes {
                write_row(tx, id, text.as_ref().map(|(t, b)| (t.as_str(), b.as_str())))?;
                unmark.execute([id])?;
            }
            Ok(())
        });
        if written.is_err() {
            self.full_text = queue;
        }
        written
    }

    /// Notes marked stale with nothing queued for them — left by a crash before a flush: the
    /// paths of those that still exist (to reindex from their files); the FTS rows of those
    /// that do not are dropped here, inside the caller's transaction.
    pub fn stale_full_text(tx: &IndexTx<'_>) -> rusqlite::Result<Vec<String>> {
        let stale: Vec<(i64, Option<String>)> = {
            let mut stmt = tx.prepare(
                "SELECT p.id, n.path FROM fts_pending p LEFT JOIN notes n ON n.id = p.id",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let mut paths = Vec::new();
        for (id, path) in stale {
            match path {
                Some(p) => paths.push(p),
                None => Index::drop_full_text(tx, id)?,
            }
        }
        Ok(paths)
    }

    /// Clear every stale mark: the caller has just (re)written their text itself.
    pub fn unmark_all_full_text(tx: &IndexTx<'_>) -> rusqlite::Result<()> {
        tx.execute("DELETE FROM fts_pending", []).map(drop)
    }
}
