//! MCP sessions persisted in the user's file, so a live session survives an actor restart and
//! a process restart.

use rusqlite::{params, OptionalExtension};

use super::Index;

/// A session row as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSession {
    pub id: String,
    pub protocol_version: String,
    pub client_info: String,
    pub capabilities: String,
    pub log_level: String,
    pub created_ms: i64,
    pub last_seen_ms: i64,
}

const SELECT_SESSIONS: &str = "SELECT id, protocol_version, client_info, capabilities, log_level,
                               created_ms, last_seen_ms FROM sessions";

fn stored_session(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredSession> {
    Ok(StoredSession {
        id: r.get(0)?,
        protocol_version: r.get(1)?,
        client_info: r.get(2)?,
        capabilities: r.get(3)?,
        log_level: r.get(4)?,
        created_ms: r.get(5)?,
        last_seen_ms: r.get(6)?,
    })
}

impl Index {
    pub fn save_session(&self, s: &StoredSession) -> rusqlite::Result<()> {
        self.conn()
            .prepare_cached(
                "INSERT INTO sessions(id, protocol_version, client_info, capabilities, log_level,
                 created_ms, last_seen_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT(id) DO UPDATE SET protocol_version = ?2, client_info = ?3,
                 capabilities = ?4, log_level = ?5, last_seen_ms = ?7",
            )?
            .execute(params![
                s.id,
                s.protocol_version,
                s.client_info,
                s.capabilities,
                s.log_level,
                s.created_ms,
                s.last_seen_ms
            ])?;
        Ok(())
    }

    pub fn load_session(&self, id: &str) -> rusqlite::Result<Option<StoredSession>> {
        self.conn()
            .prepare_cached(&format!("{SELECT_SESSIONS} WHERE id = ?1"))?
            .query_row([id], stored_session)
            .optional()
    }

    /// Every stored session.
    pub fn load_sessions(&self) -> rusqlite::Result<Vec<StoredSession>> {
        self.conn()
            .prepare(SELECT_SESSIONS)?
            .query_map([], stored_session)?
            .collect()
    }

    pub fn touch_session(&self, id: &str, last_seen_ms: i64) -> rusqlite::Result<()> {
        self.conn()
            .prepare_cached("UPDATE sessions SET last_seen_ms = ?2 WHERE id = ?1")?
            .execute(params![id, last_seen_ms])?;
        Ok(())
    }

    pub fn delete_session(&self, id: &str) -> rusqlite::Result<bool> {
        Ok(self
            .conn()
            .prepare_cached("DELETE FROM sessions WHERE id = ?1")?
            .execute([id])?
            > 0)
    }

    /// Delete sessions last seen before `cutoff_ms`; returns how many.
    pub fn delete_sessions_seen_before(&self, cutoff_ms: i64) -> rusqlite::Result<usize> {
        self.conn()
            .prepare_cached("DELETE FROM sessions WHERE last_seen_ms < ?1")?
            .execute([cutoff_ms])
    }
}
