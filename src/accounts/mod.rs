//! What the server keeps about people, beside their vaults: web sessions (the sign-in cookie)
//! and the tokens issued to them, with revocations. One SQLite file in the data folder,
//! `accounts.sqlite`, so both survive a restart.
//!
//! A web session is stored under the SHA-256 of its cookie value, so the file alone cannot be
//! used to sign in. Revocations are also held in memory ([`Revocations`]): every request checks
//! its token's `jti` there, so a revoked token is refused on its next request even when its
//! signature was verified (and cached) before.
//!
//! The same file holds what the OAuth authorization server needs to remember ([`oauth`]):
//! registered clients, grants (a person's consent to a client) and refresh tokens.

pub mod oauth;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use sha2::{Digest, Sha256};
use vault_actors::UserId;

use crate::auth::{now_secs, Revocations};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS web_sessions (
    id_hash  TEXT PRIMARY KEY,
    user_id  TEXT NOT NULL,
    username TEXT NOT NULL,
    avatar   TEXT,
    csrf     TEXT NOT NULL,
    created  INTEGER NOT NULL,
    expires  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS web_sessions_expires ON web_sessions(expires);
CREATE TABLE IF NOT EXISTS tokens (
    jti        TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    name       TEXT NOT NULL,
    scope      TEXT NOT NULL,
    created    INTEGER NOT NULL,
    expires    INTEGER NOT NULL,
    last_used  INTEGER,
    revoked_at INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tokens_user ON tokens(user_id);
CREATE TABLE IF NOT EXISTS oauth_clients (
    client_id     TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,
    created       INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS grants (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    client_name TEXT NOT NULL,
    scope       TEXT NOT NULL,
    resource    TEXT NOT NULL,
    created     INTEGER NOT NULL,
    last_used   INTEGER NOT NULL,
    revoked_at  INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS grants_user ON grants(user_id);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    hash     TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL,
    used     INTEGER NOT NULL DEFAULT 0,
    expires  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS refresh_tokens_grant ON refresh_tokens(grant_id);
CREATE TABLE IF NOT EXISTS deleted_users (
    user_id    TEXT PRIMARY KEY,
    deleted_at INTEGER NOT NULL
) WITHOUT ROWID;
";

/// A storage failure of the accounts file.
#[derive(Debug, thiserror::Error)]
#[error("accounts storage failed: {0}")]
pub struct AccountsError(String);

impl From<rusqlite::Error> for AccountsError {
    fn from(e: rusqlite::Error) -> Self {
        AccountsError(e.to_string())
    }
}

/// A signed-in person's web session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    pub user: UserId,
    pub username: String,
    pub avatar: Option<String>,
    /// Every state-changing request from the page must carry it.
    pub csrf: String,
    pub expires: u64,
}

/// A token as the account page lists it (never the token itself).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    /// `read` or `write`.
    pub scope: String,
    pub created_at: u64,
    pub expires_at: u64,
    pub last_used_at: Option<u64>,
}

/// A [`TokenInfo`] from a row of (jti, name, scope, created, expires, last_used).
fn token_info(r: &rusqlite::Row<'_>) -> rusqlite::Result<TokenInfo> {
    Ok(TokenInfo {
        id: r.get(0)?,
        name: r.get(1)?,
        scope: r.get(2)?,
        created_at: r.get::<_, i64>(3)?.max(0) as u64,
        expires_at: r.get::<_, i64>(4)?.max(0) as u64,
        last_used_at: r.get::<_, Option<i64>>(5)?.map(|t| t.max(0) as u64),
    })
}

/// What is recorded about a newly issued token.
pub struct NewToken<'a> {
    pub jti: &'a str,
    pub user: &'a UserId,
    pub name: &'a str,
    pub scope: &'a str,
    pub created: u64,
    pub expires: u64,
}

/// The accounts file, opened once per process.
#[derive(Clone)]
pub struct AccountStore {
    conn: Arc<Mutex<Connection>>,
    revocations: Arc<Revocations>,
}

/// SHA-256 of a secret, in hex: what the file keeps instead of the secret.
pub fn digest(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl AccountStore {
    /// Open (or create) `<data_dir>/accounts.sqlite` and load the revocations still in force.
    pub fn open(data_dir: &Path) -> Result<Self, AccountsError> {
        std::fs::create_dir_all(data_dir).map_err(|e| AccountsError(e.to_string()))?;
        let conn = Connection::open(data_dir.join("accounts.sqlite"))?;
        conn.pragma_update(None, "busy_timeout", 5000)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)?;
        let revocations = Revocations::default();
        {
            let mut stmt = conn.prepare(
                "SELECT jti, revoked_at FROM tokens WHERE revoked_at IS NOT NULL AND expires > ?1",
            )?;
            let rows = stmt.query_map([now_secs() as i64], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })?;
            for row in rows {
                let (jti, at) = row?;
                revocations.insert(&jti, at.max(0) as u64);
            }
            let mut stmt =
                conn.prepare("SELECT id, revoked_at FROM grants WHERE revoked_at IS NOT NULL")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            for row in rows {
                let (id, at) = row?;
                revocations.insert(&crate::auth::grant_key(&id), at.max(0) as u64);
            }
            let mut stmt = conn.prepare("SELECT user_id, deleted_at FROM deleted_users")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            for row in rows {
                let (user, at) = row?;
                revocations.insert(&crate::auth::user_key(&user), at.max(0) as u64);
            }
        }
        Ok(AccountStore {
            conn: Arc::new(Mutex::new(conn)),
            revocations: Arc::new(revocations),
        })
    }

    /// The revocation list every token check consults.
    pub fn revocations(&self) -> Arc<Revocations> {
        self.revocations.clone()
    }

    /// Does the file answer a trivial query? (Readiness: it waits for whatever holds the
    /// connection.)
    pub async fn ping(&self) -> Result<(), AccountsError> {
        self.with(|c| Ok(c.query_row("SELECT 1", [], |_| Ok(()))?))
            .await
    }

    /// Run `f` on the connection off the async workers.
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, AccountsError> + Send + 'static,
    ) -> Result<T, AccountsError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&conn)
        })
        .await
        .map_err(|e| AccountsError(e.to_string()))?
    }

    /// Start a web session; `cookie` is the secret the browser keeps.
    pub async fn create_session(
        &self,
        cookie: &str,
        session: WebSession,
    ) -> Result<(), AccountsError> {
        let id_hash = digest(cookie);
        self.with(move |c| {
            let now = now_secs() as i64;
            c.execute("DELETE FROM web_sessions WHERE expires <= ?1", [now])?;
            c.execute(
                "INSERT INTO web_sessions(id_hash, user_id, username, avatar, csrf, created, expires)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    id_hash,
                    session.user.as_str(),
                    session.username,
                    session.avatar,
                    session.csrf,
                    now,
                    session.expires as i64
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// The live session behind a cookie value, if any.
    pub async fn session(&self, cookie: &str) -> Result<Option<WebSession>, AccountsError> {
        let id_hash = digest(cookie);
        self.with(move |c| {
            let row = c
                .query_row(
                    "SELECT user_id, username, avatar, csrf, expires FROM web_sessions
                     WHERE id_hash = ?1 AND expires > ?2",
                    params![id_hash, now_secs() as i64],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, Option<String>>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, i64>(4)?,
                        ))
                    },
                )
                .optional()?;
            Ok(row.and_then(|(user, username, avatar, csrf, expires)| {
                Some(WebSession {
                    user: UserId::parse(&user).ok()?,
                    username,
                    avatar,
                    csrf,
                    expires: expires.max(0) as u64,
                })
            }))
        })
        .await
    }

    /// End the session behind a cookie value (signing out).
    pub async fn end_session(&self, cookie: &str) -> Result<(), AccountsError> {
        let id_hash = digest(cookie);
        self.with(move |c| {
            c.execute("DELETE FROM web_sessions WHERE id_hash = ?1", [id_hash])?;
            Ok(())
        })
        .await
    }

    /// Record a token issued to a person, so they can see and revoke it.
    pub fn record_token_blocking(&self, token: &NewToken<'_>) -> Result<(), AccountsError> {
        let c = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        c.execute(
            "INSERT INTO tokens(jti, user_id, name, scope, created, expires) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                token.jti,
                token.user.as_str(),
                token.name,
                token.scope,
                token.created as i64,
                token.expires as i64
            ],
        )?;
        Ok(())
    }

    /// [`AccountStore::record_token_blocking`] off the async workers.
    pub async fn record_token(&self, token: NewToken<'_>) -> Result<(), AccountsError> {
        let (jti, user, name, scope) = (
            token.jti.to_string(),
            token.user.clone(),
            token.name.to_string(),
            token.scope.to_string(),
        );
        let (created, expires) = (token.created, token.expires);
        let store = self.clone();
        tokio::task::spawn_blocking(move || {
            store.record_token_blocking(&NewToken {
                jti: &jti,
                user: &user,
                name: &name,
                scope: &scope,
                created,
                expires,
            })
        })
        .await
        .map_err(|e| AccountsError(e.to_string()))?
    }

    /// The user's tokens that still work, newest first.
    pub async fn tokens(&self, user: &UserId) -> Result<Vec<TokenInfo>, AccountsError> {
        let user = user.to_string();
        self.with(move |c| {
            let mut stmt = c.prepare(
                "SELECT jti, name, scope, created, expires, last_used FROM tokens
                 WHERE user_id = ?1 AND expires > ?2 AND (revoked_at IS NULL OR revoked_at > ?2)
                 ORDER BY created DESC, jti",
            )?;
            let rows = stmt.query_map(params![user, now_secs() as i64], token_info)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// The record of one of `user`'s tokens (revoked or not).
    pub async fn token(
        &self,
        user: &UserId,
        jti: &str,
    ) -> Result<Option<TokenInfo>, AccountsError> {
        let (user, jti) = (user.to_string(), jti.to_string());
        self.with(move |c| {
            Ok(c.query_row(
                "SELECT jti, name, scope, created, expires, last_used FROM tokens
                 WHERE user_id = ?1 AND jti = ?2",
                params![user, jti],
                token_info,
            )
            .optional()?)
        })
        .await
    }

    /// Revoke `user`'s token `jti` from time `at` on (now for a revocation). False when the
    /// user has no such token. Durable before it returns; in force at once.
    pub async fn revoke(&self, user: &UserId, jti: &str, at: u64) -> Result<bool, AccountsError> {
        let (user_s, jti_s) = (user.to_string(), jti.to_string());
        let found = self
            .with(move |c| {
                let n = c.execute(
                    "UPDATE tokens SET revoked_at = min(coalesce(revoked_at, ?3), ?3)
                     WHERE user_id = ?1 AND jti = ?2",
                    params![user_s, jti_s, at as i64],
                )?;
                Ok(n > 0)
            })
            .await?;
        if found {
            self.revocations.insert(jti, at);
        }
        Ok(found)
    }

    /// Write when tokens were last used (`jti`, or a grant's key, → unix seconds).
    pub async fn record_usage(&self, pending: HashMap<String, u64>) -> Result<(), AccountsError> {
        if pending.is_empty() {
            return Ok(());
        }
        self.with(move |c| {
            let tx = c.unchecked_transaction()?;
            {
                let mut token = tx.prepare_cached(
                    "UPDATE tokens SET last_used = max(coalesce(last_used, 0), ?2) WHERE jti = ?1",
                )?;
                let mut grant = tx.prepare_cached(
                    "UPDATE grants SET last_used = max(last_used, ?2) WHERE id = ?1",
                )?;
                for (key, at) in pending {
                    match crate::auth::grant_of_key(&key) {
                        Some(id) => grant.execute(params![id, at as i64])?,
                        None => token.execute(params![key, at as i64])?,
                    };
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Forget everything kept about `user` — web sessions, tokens, OAuth grants and their
    /// refresh tokens — and refuse every token issued to them up to `at` (unix seconds), also
    /// those never recorded here (minted by the command line of another node, or OAuth access
    /// tokens). Durable before it returns; in force at once. Registered OAuth clients are not
    /// anyone's (registration is anonymous): their grants for this user go.
    pub async fn delete_user(&self, user: &UserId, at: u64) -> Result<(), AccountsError> {
        let user_s = user.to_string();
        self.with(move |c| {
            let tx = c.unchecked_transaction()?;
            tx.execute(
                "INSERT INTO deleted_users(user_id, deleted_at) VALUES (?1, ?2)
                 ON CONFLICT(user_id) DO UPDATE SET deleted_at = max(deleted_at, ?2)",
                params![user_s, at as i64],
            )?;
            tx.execute("DELETE FROM web_sessions WHERE user_id = ?1", [&user_s])?;
            tx.execute("DELETE FROM tokens WHERE user_id = ?1", [&user_s])?;
            tx.execute(
                "DELETE FROM refresh_tokens WHERE grant_id IN
                     (SELECT id FROM grants WHERE user_id = ?1)",
                [&user_s],
            )?;
            tx.execute("DELETE FROM grants WHERE user_id = ?1", [&user_s])?;
            tx.commit()?;
            Ok(())
        })
        .await?;
        self.revocations
            .insert_latest(&crate::auth::user_key(user.as_str()), at);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> UserId {
        UserId::parse(name).unwrap()
    }

    fn token<'a>(jti: &'a str, u: &'a UserId) -> NewToken<'a> {
        NewToken {
            jti,
            user: u,
            name: "laptop",
            scope: "write",
            created: now_secs(),
            expires: now_secs() + 3600,
        }
    }

    #[tokio::test]
    async fn a_session_is_found_by_its_cookie_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let store = AccountStore::open(dir.path()).unwrap();
        let session = WebSession {
            user: user("alice"),
            username: "Alice".into(),
            avatar: None,
            csrf: "c".into(),
            expires: now_secs() + 60,
        };
        store
            .create_session("secret-cookie", session.clone())
            .await
            .unwrap();
        assert_eq!(store.session("other").await.unwrap(), None);
        drop(store);
        let store = AccountStore::open(dir.path()).unwrap();
        assert_eq!(store.session("secret-cookie").await.unwrap(), Some(session));
        let text = std::fs::read(dir.path().join("accounts.sqlite")).unwrap();
        assert!(!String::from_utf8_lossy(&text).contains("secret-cookie"));
        store.end_session("secret-cookie").await.unwrap();
        assert_eq!(store.session("secret-cookie").await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_revocation_is_in_force_at_once_and_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let store = AccountStore::open(dir.path()).unwrap();
        let (alice, bob) = (user("alice"), user("bob"));
        store.record_token(token("t1", &alice)).await.unwrap();
        assert!(
            !store.revoke(&bob, "t1", now_secs()).await.unwrap(),
            "not bob's"
        );
        assert!(!store.revocations().is_revoked("t1", now_secs()));
        assert!(store.revoke(&alice, "t1", now_secs()).await.unwrap());
        assert!(store.revocations().is_revoked("t1", now_secs()));
        assert!(store.tokens(&alice).await.unwrap().is_empty());
        drop(store);
        let store = AccountStore::open(dir.path()).unwrap();
        assert!(store.revocations().is_revoked("t1", now_secs()));
    }

    #[tokio::test]
    async fn a_later_revocation_keeps_the_token_until_then() {
        let dir = tempfile::tempdir().unwrap();
        let store = AccountStore::open(dir.path()).unwrap();
        let alice = user("alice");
        store.record_token(token("t1", &alice)).await.unwrap();
        let now = now_secs();
        store.revoke(&alice, "t1", now + 60).await.unwrap();
        assert!(!store.revocations().is_revoked("t1", now));
        assert!(store.revocations().is_revoked("t1", now + 60));
        assert_eq!(store.tokens(&alice).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn token_use_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let store = AccountStore::open(dir.path()).unwrap();
        let alice = user("alice");
        store.record_token(token("t1", &alice)).await.unwrap();
        assert_eq!(store.tokens(&alice).await.unwrap()[0].last_used_at, None);
        store
            .record_usage(HashMap::from([("t1".to_string(), 1234)]))
            .await
            .unwrap();
        assert_eq!(
            store.tokens(&alice).await.unwrap()[0].last_used_at,
            Some(1234)
        );
    }
}
