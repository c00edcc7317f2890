//! Note history: the previous version of a note, kept before a write, edit, delete, move or
//! restore replaces it, so that `restore_note` can undo the change.
//!
//! History is state, not cache: it lives in its own SQLite file (`history/<user>.sqlite` beside
//! the user's index file), so dropping or rebuilding the index never loses it. It is bounded
//! per note (`history_per_note`, oldest dropped first; 0 keeps none) and in total by the
//! vault's byte quota (the oldest entries of the whole vault go first); it does not count
//! toward that quota itself, so an undo record never makes a write fail.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::error::VaultError;

/// What replaced the version an entry keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    Write,
    Edit,
    Delete,
    Move,
    Restore,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Write => "write",
            Operation::Edit => "edit",
            Operation::Delete => "delete",
            Operation::Move => "move",
            Operation::Restore => "restore",
        }
    }

    fn parse(s: &str) -> Operation {
        match s {
            "edit" => Operation::Edit,
            "delete" => Operation::Delete,
            "move" => Operation::Move,
            "restore" => Operation::Restore,
            _ => Operation::Write,
        }
    }
}

/// One entry to record: what a note was before an operation changed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The note's path once the operation is done (its new path after a move).
    pub path: String,
    /// The version the replaced content had (0: the note did not exist).
    pub version: u64,
    pub operation: Operation,
    pub at_ms: i64,
    /// Size of the replaced file (for a move that kept the content, the file's size).
    pub size: u64,
    /// The whole replaced file; `None` when the note did not exist before the operation, or a
    /// move left its content as it was (the move itself says how to undo it).
    pub content: Option<String>,
    /// For an entry of a move (or of the restore that reversed one): the move's source and
    /// destination as the client named them (a folder ends with `/`).
    pub move_from: Option<String>,
    pub move_to: Option<String>,
    /// For a move: this note is one of the moved ones (not only a note whose links changed).
    pub moved: bool,
    /// Hash of the file the operation wrote (for a move's rewritten notes): an undo puts the
    /// old content back only while the file is still what the operation left.
    pub after_hash: Option<String>,
    /// Entries of one move share it; an undo of any of them undoes the whole move.
    pub operation_id: Option<String>,
}

/// A history entry as `note_history` lists it (no content).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Entry {
    /// Pass as `history_id` to `restore_note` to restore this entry.
    pub id: i64,
    pub path: String,
    /// The version the note had before the operation (0: it did not exist).
    pub version: u64,
    /// The operation that replaced that version: write, edit, delete, move or restore.
    pub operation: Operation,
    /// When (RFC 3339).
    pub at: String,
    /// Bytes of the kept version.
    pub size: u64,
    /// For a move: where from and where to (a folder ends with `/`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// For a move: true for a moved note, false for a note whose links were rewritten.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moved: Option<bool>,
    /// Entries of one move share it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation_id: Option<String>,
}

/// An entry with everything needed to undo it.
#[derive(Debug, Clone)]
pub struct Stored {
    pub id: i64,
    pub record: Record,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS history (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    path         TEXT NOT NULL,
    version      INTEGER NOT NULL,
    operation    TEXT NOT NULL,
    at_ms        INTEGER NOT NULL,
    size         INTEGER NOT NULL,
    content      TEXT,
    bytes        INTEGER NOT NULL,
    move_from    TEXT,
    move_to      TEXT,
    moved        INTEGER NOT NULL DEFAULT 0,
    after_hash   TEXT,
    operation_id TEXT
);
CREATE INDEX IF NOT EXISTS history_path ON history(path, id);
CREATE INDEX IF NOT EXISTS history_operation ON history(operation_id);
-- The contents sit inline before `bytes`, so reading `bytes` from the table walks every
-- content's pages: the total is kept by triggers, and the oldest-first trim reads this index.
CREATE INDEX IF NOT EXISTS history_sizes ON history(id, bytes);
CREATE TABLE IF NOT EXISTS totals (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    bytes INTEGER NOT NULL
);
INSERT OR IGNORE INTO totals(id, bytes) SELECT 1, coalesce(sum(bytes), 0) FROM history;
CREATE TRIGGER IF NOT EXISTS history_added AFTER INSERT ON history BEGIN
    UPDATE totals SET bytes = bytes + NEW.bytes WHERE id = 1;
END;
CREATE TRIGGER IF NOT EXISTS history_removed AFTER DELETE ON history BEGIN
    UPDATE totals SET bytes = bytes - OLD.bytes WHERE id = 1;
END;
";

const COLUMNS: &str = "id, path, version, operation, at_ms, size, content, move_from, move_to, \
                       moved, after_hash, operation_id";

/// The open history file of one vault.
pub struct History {
    conn: Connection,
    /// Entries kept per note path; 0 keeps none.
    per_note: usize,
    /// Most content bytes kept for the whole vault.
    max_bytes: u64,
}

impl History {
    /// Open (creating if needed) the history file.
    pub fn open(file: &Path, per_note: usize, max_bytes: u64) -> Result<Self, VaultError> {
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let conn = Connection::open(file)?;
        conn.pragma_update(None, "busy_timeout", 5000)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(History {
            conn,
            per_note,
            max_bytes,
        })
    }

    /// Is history kept at all?
    pub fn enabled(&self) -> bool {
        self.per_note > 0
    }

    /// Record one entry (then trim that note's history and the vault's total).
    pub fn record(&mut self, record: &Record) -> Result<(), VaultError> {
        self.record_batch(&[record], &[])
    }

    /// Record the entries of one operation, and move the history of notes that changed path
    /// (`renamed`: old path, new path) along with them, in one transaction. An operation that
    /// is already recorded (its `operation_id` is present) is not recorded twice, so a
    /// journal replayed after a crash can call this again.
    pub fn record_batch(
        &mut self,
        records: &[&Record],
        renamed: &[(String, String)],
    ) -> Result<(), VaultError> {
        let tx = self.conn.transaction()?;
        if let Some(id) = records.iter().find_map(|r| r.operation_id.as_deref()) {
            let seen: Option<i64> = tx
                .query_row(
                    "SELECT 1 FROM history WHERE operation_id = ?1 LIMIT 1",
                    [id],
                    |r| r.get(0),
                )
                .optional()?;
            if seen.is_some() {
                return Ok(());
            }
        }
        // A path's older entries follow the note to its new path.
        for (old, new) in renamed {
            tx.execute(
                "UPDATE history SET path = ?2 WHERE path = ?1",
                params![old, new],
            )?;
        }
        if self.per_note > 0 {
            let mut insert = tx.prepare_cached(
                "INSERT INTO history(path, version, operation, at_ms, size, content, bytes,
                 move_from, move_to, moved, after_hash, operation_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?;
            let mut trim = tx.prepare_cached(
                "DELETE FROM history WHERE path = ?1 AND id NOT IN
                 (SELECT id FROM history WHERE path = ?1 ORDER BY id DESC LIMIT ?2)",
            )?;
            for r in records {
                let bytes = r.content.as_ref().map_or(0, |c| c.len() as u64);
                insert.execute(params![
                    r.path,
                    r.version,
                    r.operation.as_str(),
                    r.at_ms,
                    r.size,
                    r.content,
                    bytes,
                    r.move_from,
                    r.move_to,
                    r.moved,
                    r.after_hash,
                    r.operation_id,
                ])?;
                trim.execute(params![r.path, self.per_note as i64])?;
            }
        }
        trim_total(&tx, self.max_bytes)?;
        tx.commit()?;
        Ok(())
    }

    /// A note's entries, newest first.
    pub fn list(&self, path: &str, limit: usize) -> Result<Vec<Entry>, VaultError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM history WHERE path = ?1 ORDER BY id DESC LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![path, limit as i64], stored_row)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(entry_of(row?));
        }
        Ok(out)
    }

    /// The newest entry of a note, or the entry `id` if it belongs to that note.
    pub fn find(&self, path: &str, id: Option<i64>) -> Result<Option<Stored>, VaultError> {
        let found = match id {
            Some(id) => self
                .conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM history WHERE path = ?1 AND id = ?2"
                ))?
                .query_row(params![path, id], stored_row)
                .optional()?,
            None => self
                .conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM history WHERE path = ?1 ORDER BY id DESC LIMIT 1"
                ))?
                .query_row([path], stored_row)
                .optional()?,
        };
        Ok(found)
    }

    /// Every entry of one operation (a move), in the order they were recorded.
    pub fn operation(&self, operation_id: &str) -> Result<Vec<Stored>, VaultError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM history WHERE operation_id = ?1 ORDER BY id"
        ))?;
        let rows = stmt.query_map([operation_id], stored_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Content bytes kept, for tests and `vault_info`-like reports.
    pub fn total_bytes(&self) -> Result<u64, VaultError> {
        Ok(self
            .conn
            .query_row("SELECT coalesce(sum(bytes), 0) FROM history", [], |r| {
                r.get(0)
            })?)
    }
}

/// Drop the vault's oldest entries until the kept content fits `max_bytes`.
fn trim_total(conn: &Connection, max_bytes: u64) -> rusqlite::Result<()> {
    let total: u64 = conn.query_row("SELECT bytes FROM totals WHERE id = 1", [], |r| r.get(0))?;
    if total <= max_bytes {
        return Ok(());
    }
    let mut excess = total - max_bytes;
    let oldest: Vec<(i64, u64)> = {
        let mut stmt = conn.prepare(
            "SELECT id, bytes FROM history INDEXED BY history_sizes WHERE bytes > 0 ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut delete = conn.prepare_cached("DELETE FROM history WHERE id = ?1")?;
    for (id, bytes) in oldest {
        if excess == 0 {
            break;
        }
        delete.execute([id])?;
        excess = excess.saturating_sub(bytes);
    }
    Ok(())
}

fn stored_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Stored> {
    let operation: String = r.get(3)?;
    Ok(Stored {
        id: r.get(0)?,
        record: Record {
            path: r.get(1)?,
            version: r.get(2)?,
            operation: Operation::parse(&operation),
            at_ms: r.get(4)?,
            size: r.get(5)?,
            content: r.get(6)?,
            move_from: r.get(7)?,
            move_to: r.get(8)?,
            moved: r.get(9)?,
            after_hash: r.get(10)?,
            operation_id: r.get(11)?,
        },
    })
}

fn entry_of(s: Stored) -> Entry {
    let r = s.record;
    let is_move = r.move_from.is_some();
    Entry {
        id: s.id,
        path: r.path,
        version: r.version,
        operation: r.operation,
        at: super::rfc3339_of_ms(r.at_ms),
        size: r.size,
        from: r.move_from,
        to: r.move_to,
        moved: is_move.then_some(r.moved),
        operation_id: r.operation_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(path: &str, text: &str) -> Record {
        Record {
            path: path.into(),
            version: 1,
            operation: Operation::Write,
            at_ms: 0,
            size: text.len() as u64,
            content: Some(text.into()),
            move_from: None,
            move_to: None,
            moved: false,
            after_hash: None,
            operation_id: None,
        }
    }

    #[test]
    fn each_note_keeps_its_newest_entries_up_to_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = History::open(&dir.path().join("h.sqlite"), 3, 1 << 20).unwrap();
        for i in 0..5 {
            h.record(&content("a.md", &format!("v{i}"))).unwrap();
        }
        h.record(&content("b.md", "other")).unwrap();
        let kept: Vec<String> = h
            .list("a.md", 10)
            .unwrap()
            .into_iter()
            .map(|e| e.id.to_string())
            .collect();
        assert_eq!(kept.len(), 3);
        let newest = h.find("a.md", None).unwrap().unwrap();
        assert_eq!(newest.record.content.as_deref(), Some("v4"));
        assert_eq!(h.list("b.md", 10).unwrap().len(), 1);
    }

    #[test]
    fn the_total_is_bounded_oldest_first_and_zero_keeps_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = History::open(&dir.path().join("h.sqlite"), 10, 25).unwrap();
        h.record(&content("a.md", &"a".repeat(10))).unwrap();
        h.record(&content("b.md", &"b".repeat(10))).unwrap();
        h.record(&content("c.md", &"c".repeat(10))).unwrap();
        assert!(h.total_bytes().unwrap() <= 25);
        assert!(h.find("a.md", None).unwrap().is_none(), "the oldest went");
        assert!(h.find("c.md", None).unwrap().is_some());

        // The kept total agrees with the rows after inserts, per-note trims and total trims.
        for i in 0..12 {
            h.record(&content("d.md", &"d".repeat(i))).unwrap();
        }
        let kept: u64 = h
            .conn
            .query_row("SELECT bytes FROM totals WHERE id = 1", [], |r| r.get(0))
            .unwrap();
        assert_eq!(kept, h.total_bytes().unwrap());
        assert!(kept <= 25);

        let mut none = History::open(&dir.path().join("n.sqlite"), 0, 1 << 20).unwrap();
        none.record(&content("a.md", "x")).unwrap();
        assert!(none.find("a.md", None).unwrap().is_none());
    }

    #[test]
    fn a_batch_is_recorded_once_and_history_follows_a_rename() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = History::open(&dir.path().join("h.sqlite"), 10, 1 << 20).unwrap();
        h.record(&content("old.md", "before")).unwrap();
        let mut moved = content("new.md", "before");
        moved.operation = Operation::Move;
        moved.operation_id = Some("op1".into());
        let renamed = [("old.md".to_string(), "new.md".to_string())];
        h.record_batch(&[&moved], &renamed).unwrap();
        h.record_batch(&[&moved], &renamed).unwrap();
        assert_eq!(h.list("new.md", 10).unwrap().len(), 2);
        assert!(h.list("old.md", 10).unwrap().is_empty());
        assert_eq!(h.operation("op1").unwrap().len(), 1);
    }
}
