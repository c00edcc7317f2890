//! MCP sessions of one user: created by `initialize`, looked up on every request, expired after
//! `session_ttl` of inactivity, ended by `DELETE`. Kept in memory by the user actor and written
//! through to the user's SQLite file, so they outlive the actor and the process. The actor loads
//! them all when it opens the file, so the sessions in memory are all the user has: counting
//! them for the `sessions_per_user` quota asks SQLite nothing.

use std::collections::HashMap;

use serde_json::Value;

use crate::error::VaultError;
use crate::index::{Index, StoredSession};
use crate::settings::Quotas;
use crate::vault::usage::QuotaUse;

/// MCP log levels (RFC 5424 severities), least severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug,
    Info,
    Notice,
    Warning,
    Error,
    Critical,
    Alert,
    Emergency,
}

impl LogLevel {
    const ALL: [(&'static str, LogLevel); 8] = [
        ("debug", LogLevel::Debug),
        ("info", LogLevel::Info),
        ("notice", LogLevel::Notice),
        ("warning", LogLevel::Warning),
        ("error", LogLevel::Error),
        ("critical", LogLevel::Critical),
        ("alert", LogLevel::Alert),
        ("emergency", LogLevel::Emergency),
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().find(|(n, _)| *n == s).map(|(_, l)| *l)
    }

    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, l)| *l == self)
            .map_or("info", |(n, _)| n)
    }
}

/// Log messages a session gets before it calls `logging/setLevel`: only problems, so a client
/// that never asked is not flooded.
pub const DEFAULT_LOG_LEVEL: LogLevel = LogLevel::Warning;

/// One live MCP session.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    /// The revision agreed in `initialize`; decides e.g. whether batches are allowed.
    pub protocol_version: String,
    pub client_info: Value,
    /// What the client said it can do (sampling, elicitation, roots, ...).
    pub capabilities: Value,
    /// Minimum level of `notifications/message` this session wants.
    pub log_level: LogLevel,
    pub created_ms: i64,
    pub last_seen_ms: i64,
    /// `last_seen_ms` as last written to disk; touching the file on every request would cost a
    /// write per read, so it is refreshed only when it lags by a fraction of the TTL.
    persisted_seen_ms: i64,
}

impl Session {
    fn to_stored(&self) -> StoredSession {
        StoredSession {
            id: self.id.clone(),
            protocol_version: self.protocol_version.clone(),
            client_info: self.client_info.to_string(),
            capabilities: self.capabilities.to_string(),
            log_level: self.log_level.as_str().to_string(),
            created_ms: self.created_ms,
            last_seen_ms: self.last_seen_ms,
        }
    }

    fn from_stored(s: StoredSession) -> Self {
        Session {
            client_info: serde_json::from_str(&s.client_info).unwrap_or(Value::Null),
            capabilities: serde_json::from_str(&s.capabilities).unwrap_or(Value::Null),
            log_level: LogLevel::parse(&s.log_level).unwrap_or(DEFAULT_LOG_LEVEL),
            id: s.id,
            protocol_version: s.protocol_version,
            created_ms: s.created_ms,
            last_seen_ms: s.last_seen_ms,
            persisted_seen_ms: s.last_seen_ms,
        }
    }
}

/// The sessions of one user.
pub struct Sessions {
    live: HashMap<String, Session>,
    ttl_ms: i64,
    /// Most live sessions at once (the `sessions_per_user` quota).
    max_live: u64,
}

impl Sessions {
    pub fn new(ttl: std::time::Duration, max_live: u64) -> Self {
        Sessions {
            live: HashMap::new(),
            ttl_ms: ttl.as_millis() as i64,
            max_live,
        }
    }

    /// Take in every stored session, once when the user's file is opened; those expired are
    /// deleted instead.
    pub fn load(&mut self, index: &Index, now_ms: i64) -> Result<(), VaultError> {
        index.delete_sessions_seen_before(now_ms - self.ttl_ms)?;
        for stored in index.load_sessions()? {
            self.live
                .insert(stored.id.clone(), Session::from_stored(stored));
        }
        Ok(())
    }

    /// The live sessions (not expired at `now_ms`) against the quota.
    pub fn usage(&self, now_ms: i64) -> QuotaUse {
        let cutoff = now_ms - self.ttl_ms;
        QuotaUse {
            max: self.max_live,
            used: self
                .live
                .values()
                .filter(|s| s.last_seen_ms >= cutoff)
                .count() as u64,
        }
    }

    /// Start a session; its id carries 192 bits from the OS RNG. Refused with
    /// `quota_exceeded` when the user already has the most live sessions allowed.
    pub fn create(
        &mut self,
        index: &Index,
        protocol_version: &str,
        client_info: Value,
        capabilities: Value,
        now_ms: i64,
    ) -> Result<String, crate::VaultError> {
        // Expired sessions go first, so that memory holds at most the quota's worth.
        self.evict_expired(index, now_ms)?;
        let usage = self.usage(now_ms);
        if usage.used >= usage.max {
            return Err(VaultError::QuotaExceeded {
                limit: Quotas::SESSIONS_PER_USER,
                max: usage.max,
                current: usage.used,
            });
        }
        let mut bytes = [0u8; 24];
        getrandom::fill(&mut bytes)
            .map_err(|e| crate::VaultError::Io(std::io::Error::other(e.to_string())))?;
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let session = Session {
            id: id.clone(),
            protocol_version: protocol_version.to_string(),
            client_info,
            capabilities,
            log_level: DEFAULT_LOG_LEVEL,
            created_ms: now_ms,
            last_seen_ms: now_ms,
            persisted_seen_ms: now_ms,
        };
        index.save_session(&session.to_stored())?;
        self.live.insert(id.clone(), session);
        Ok(id)
    }

    /// The live session `id`, touched; `None` when unknown, ended or expired (an expired one
    /// is deleted on the way).
    pub fn get(
        &mut self,
        index: &Index,
        id: &str,
        now_ms: i64,
    ) -> Result<Option<&mut Session>, crate::VaultError> {
        if !self.live.contains_key(id) {
            match index.load_session(id)? {
                Some(stored) => {
                    self.live
                        .insert(id.to_string(), Session::from_stored(stored));
                }
                None => return Ok(None),
            }
        }
        let ttl = self.ttl_ms;
        let expired = self
            .live
            .get(id)
            .is_some_and(|s| now_ms - s.last_seen_ms > ttl);
        if expired {
            self.live.remove(id);
            index.delete_session(id)?;
            return Ok(None);
        }
        let Some(session) = self.live.get_mut(id) else {
            return Ok(None);
        };
        session.last_seen_ms = now_ms;
        if now_ms - session.persisted_seen_ms > (ttl / 8).max(1000) {
            index.touch_session(id, now_ms)?;
            session.persisted_seen_ms = now_ms;
        }
        Ok(Some(session))
    }

    /// Write a session's changed settings (log level) through to disk.
    pub fn save(&mut self, index: &Index, id: &str) -> Result<(), crate::VaultError> {
        if let Some(s) = self.live.get_mut(id) {
            index.save_session(&s.to_stored())?;
            s.persisted_seen_ms = s.last_seen_ms;
        }
        Ok(())
    }

    /// End a session; false when there was none.
    pub fn end(&mut self, index: &Index, id: &str) -> Result<bool, crate::VaultError> {
        let in_memory = self.live.remove(id).is_some();
        let on_disk = index.delete_session(id)?;
        Ok(in_memory || on_disk)
    }

    /// Forget every session idle past the TTL (memory and disk).
    pub fn evict_expired(
        &mut self,
        index: &Index,
        now_ms: i64,
    ) -> Result<usize, crate::VaultError> {
        let cutoff = now_ms - self.ttl_ms;
        self.live.retain(|_, s| s.last_seen_ms >= cutoff);
        // Sessions touched in memory but not yet on disk must not be deleted by the cutoff.
        for s in self.live.values_mut() {
            if s.persisted_seen_ms < cutoff {
                index.touch_session(&s.id, s.last_seen_ms)?;
                s.persisted_seen_ms = s.last_seen_ms;
            }
        }
        Ok(index.delete_sessions_seen_before(cutoff)?)
    }

    /// Persist every in-memory `last_seen` that lags, before the actor stops.
    pub fn flush(&mut self, index: &Index) -> Result<(), crate::VaultError> {
        for s in self.live.values_mut() {
            if s.persisted_seen_ms != s.last_seen_ms {
                index.touch_session(&s.id, s.last_seen_ms)?;
                s.persisted_seen_ms = s.last_seen_ms;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    #[test]
    fn session_survives_a_new_in_memory_table() {
        let index = Index::open_in_memory().unwrap();
        let mut a = Sessions::new(Duration::from_secs(60), 8);
        let id = a
            .create(&index, "2025-06-18", json!({"name":"t"}), json!({}), 1_000)
            .unwrap();
        assert_eq!(id.len(), 48);
        let mut b = Sessions::new(Duration::from_secs(60), 8);
        let s = b.get(&index, &id, 2_000).unwrap().unwrap();
        assert_eq!(s.protocol_version, "2025-06-18");
    }

    #[test]
    fn expired_session_is_gone_from_memory_and_disk() {
        let index = Index::open_in_memory().unwrap();
        let mut s = Sessions::new(Duration::from_secs(1), 8);
        let id = s
            .create(&index, "2025-11-25", json!({}), json!({}), 0)
            .unwrap();
        assert!(s.get(&index, &id, 1_500).unwrap().is_none());
        assert!(index.load_session(&id).unwrap().is_none());
    }

    #[test]
    fn a_session_beyond_the_quota_is_refused_until_one_ends_or_expires() {
        let index = Index::open_in_memory().unwrap();
        let mut s = Sessions::new(Duration::from_secs(60), 2);
        let first = s
            .create(&index, "2025-11-25", json!({}), json!({}), 0)
            .unwrap();
        s.create(&index, "2025-11-25", json!({}), json!({}), 30_000)
            .unwrap();
        let refused = s
            .create(&index, "2025-11-25", json!({}), json!({}), 30_000)
            .unwrap_err();
        assert_eq!(refused.code(), "quota_exceeded");
        assert_eq!(refused.details()["limit"], "sessions_per_user");
        assert_eq!(
            (
                refused.details()["max"].clone(),
                refused.details()["current"].clone()
            ),
            (json!(2), json!(2))
        );
        // The first expires (idle past the TTL): room for one more.
        assert_eq!(s.usage(61_000), QuotaUse { max: 2, used: 1 });
        s.create(&index, "2025-11-25", json!({}), json!({}), 61_000)
            .unwrap();
        assert!(s.get(&index, &first, 61_000).unwrap().is_none());
        // Ending one makes room too.
        let ids: Vec<String> = s.live.keys().cloned().collect();
        assert!(s.end(&index, &ids[0]).unwrap());
        s.create(&index, "2025-11-25", json!({}), json!({}), 61_000)
            .unwrap();
    }

    #[test]
    fn loaded_sessions_count_against_the_quota_and_expired_ones_are_dropped() {
        let index = Index::open_in_memory().unwrap();
        let mut before = Sessions::new(Duration::from_secs(60), 2);
        let old = before
            .create(&index, "2025-11-25", json!({}), json!({}), 0)
            .unwrap();
        before
            .create(&index, "2025-11-25", json!({}), json!({}), 50_000)
            .unwrap();
        // A new actor opens the file at 70 s: the first session has expired, the second not.
        let mut after = Sessions::new(Duration::from_secs(60), 2);
        after.load(&index, 70_000).unwrap();
        assert_eq!(after.usage(70_000).used, 1);
        assert!(index.load_session(&old).unwrap().is_none());
        after
            .create(&index, "2025-11-25", json!({}), json!({}), 70_000)
            .unwrap();
        assert!(after
            .create(&index, "2025-11-25", json!({}), json!({}), 70_000)
            .is_err());
    }

    #[test]
    fn ended_session_is_unknown() {
        let index = Index::open_in_memory().unwrap();
        let mut s = Sessions::new(Duration::from_secs(60), 8);
        let id = s
            .create(&index, "2025-11-25", json!({}), json!({}), 0)
            .unwrap();
        assert!(s.end(&index, &id).unwrap());
        assert!(s.get(&index, &id, 10).unwrap().is_none());
        assert!(!s.end(&index, &id).unwrap());
    }
}
