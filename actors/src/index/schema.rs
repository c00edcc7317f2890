//! The layout of a user's SQLite file.
//!
//! Two kinds of table live in it. *State* (`note_state`, `sessions`) cannot be derived from the
//! vault and survives every rebuild. The *index* (`notes`, `notes_fts`, `links`, `tags`, and
//! `fts_pending`, the notes whose FTS row is stale) is a cache of the markdown files and can
//! always be dropped and refilled from them.

use rusqlite::Connection;

/// Bump when the index tables change shape; an older file's index is dropped and rebuilt from
/// the vault, its state tables kept.
const SCHEMA_VERSION: i64 = 1;

const STATE: &str = "
CREATE TABLE IF NOT EXISTS note_state (
    path    TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    hash    TEXT,
    live    INTEGER NOT NULL DEFAULT 1
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sessions (
    id               TEXT PRIMARY KEY,
    protocol_version TEXT NOT NULL,
    client_info      TEXT NOT NULL,
    capabilities     TEXT NOT NULL,
    log_level        TEXT NOT NULL,
    created_ms       INTEGER NOT NULL,
    last_seen_ms     INTEGER NOT NULL
) WITHOUT ROWID;
";

const INDEX: &str = "
CREATE TABLE IF NOT EXISTS notes (
    id         INTEGER PRIMARY KEY,
    path       TEXT NOT NULL UNIQUE,
    path_key   TEXT NOT NULL,
    folder     TEXT NOT NULL,
    stem       TEXT NOT NULL,
    title      TEXT NOT NULL,
    title_key  TEXT NOT NULL,
    size       INTEGER NOT NULL,
    mtime_ns   INTEGER NOT NULL,
    hash       TEXT NOT NULL,
    created    TEXT,
    updated    TEXT,
    updated_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS notes_path_key ON notes(path_key);
CREATE INDEX IF NOT EXISTS notes_stem ON notes(stem);
CREATE INDEX IF NOT EXISTS notes_title_key ON notes(title_key);
CREATE INDEX IF NOT EXISTS notes_updated ON notes(updated_ms);
CREATE INDEX IF NOT EXISTS notes_folder ON notes(folder, path);
CREATE VIRTUAL TABLE IF NOT EXISTS notes_fts USING fts5(
    title, body,
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '2 3'
);
CREATE TABLE IF NOT EXISTS links (
    src         INTEGER NOT NULL REFERENCES notes(id) ON DELETE CASCADE,
    target      TEXT NOT NULL,
    target_key  TEXT NOT NULL,
    target_last TEXT NOT NULL,
    heading     TEXT,
    alias       TEXT,
    embed       INTEGER NOT NULL,
    dst         INTEGER REFERENCES notes(id) ON DELETE SET NULL
);
CREATE INDEX IF NOT EXISTS links_src ON links(src);
CREATE INDEX IF NOT EXISTS links_dst ON links(dst);
CREATE INDEX IF NOT EXISTS links_target_last ON links(target_last);
CREATE INDEX IF NOT EXISTS links_target_key ON links(target_key);
CREATE TABLE IF NOT EXISTS tags (
    note INTEGER NOT NULL REFERENCES notes(id) ON DELETE CASCADE,
    tag  TEXT NOT NULL,
    PRIMARY KEY (note, tag)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tags_tag ON tags(tag);
CREATE TABLE IF NOT EXISTS fts_pending (
    id INTEGER PRIMARY KEY
);
";

const DROP_INDEX: &str = "
DROP TABLE IF EXISTS fts_pending;
DROP TABLE IF EXISTS tags;
DROP TABLE IF EXISTS links;
DROP TABLE IF EXISTS notes_fts;
DROP TABLE IF EXISTS notes;
";

/// Set the connection's pragmas and bring the file to the current schema.
pub fn prepare(conn: &Connection) -> rusqlite::Result<()> {
    // First, so that every statement below waits for a predecessor still finishing its last
    // job (a retiring actor, a stopping process) instead of failing at once.
    conn.pragma_update(None, "busy_timeout", 5000)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "wal_autocheckpoint", 8000)?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    conn.execute_batch(STATE)?;
    if version != SCHEMA_VERSION {
        conn.execute_batch(DROP_INDEX)?;
    }
    conn.execute_batch(INDEX)?;
    conn.execute_batch("INSERT INTO notes_fts(notes_fts, rank) VALUES('automerge', 8)")?;
    conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    Ok(())
}

/// Empty the index tables (not the state tables): the next reconcile refills them from the
/// files, keeping the versions of unchanged notes.
pub fn drop_index(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(DROP_INDEX)?;
    conn.execute_batch(INDEX)
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    /// The bundled SQLite is built with the options in `.cargo/config.toml`: no process-wide
    /// page cache behind one mutex, no allocation statistics behind another.
    #[test]
    fn sqlite_is_built_without_process_wide_locks() {
        let conn = Connection::open_in_memory().unwrap();
        let mut stmt = conn.prepare("PRAGMA compile_options").unwrap();
        let options: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(options.iter().any(|o| o == "ENABLE_FTS5"), "{options:?}");
        assert!(
            !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
            "{options:?}"
        );
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "{options:?}"
        );
    }
}
