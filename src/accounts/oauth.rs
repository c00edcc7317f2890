//! What the OAuth authorization server keeps: clients registered with RFC 7591, grants (one
//! person's approval of one client, which every token of that client hangs off), and refresh
//! tokens, stored as SHA-256 digests and used once each.
//!
//! Revoking a grant (disconnecting a client, or a refresh token presented twice) puts the key
//! [`grant_key`] into the in-memory [`crate::auth::Revocations`], which every access token of
//! the grant names in its `gid` claim: they stop working at once, like the refresh tokens.

use rusqlite::{params, OptionalExtension};
use serde::Serialize;
use vault_actors::UserId;

use super::{digest, AccountStore, AccountsError};
use crate::auth::{grant_key, now_secs};

/// A client registered through RFC 7591 dynamic registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredClient {
    pub client_id: String,
    pub name: String,
    pub redirect_uris: Vec<String>,
}

/// A person's approval of a client, as the account page lists it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct GrantInfo {
    pub id: String,
    pub client_id: String,
    pub name: String,
    /// Space-separated scopes granted.
    pub scope: String,
    pub created_at: u64,
    pub last_used_at: u64,
}

/// What a grant lets its tokens do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub id: String,
    pub user: UserId,
    pub client_id: String,
    pub scope: String,
    /// The token audience (RFC 8707 resource) the client asked for.
    pub resource: String,
}

/// What presenting a refresh token found.
#[derive(Debug, PartialEq, Eq)]
pub enum Refresh {
    /// Valid and now used up: issue the next pair for this grant.
    Valid(Grant),
    /// Used before: somebody replays it. The grant has been revoked.
    Reused,
    /// Unknown, expired, of another client, or of a revoked grant.
    Invalid,
}

impl AccountStore {
    /// Record a dynamically registered client.
    pub async fn register_client(&self, client: RegisteredClient) -> Result<(), AccountsError> {
        let uris = serde_json::to_string(&client.redirect_uris)
            .map_err(|e| AccountsError(e.to_string()))?;
        self.with(move |c| {
            c.execute(
                "INSERT INTO oauth_clients(client_id, name, redirect_uris, created) VALUES (?1, ?2, ?3, ?4)",
                params![client.client_id, client.name, uris, now_secs() as i64],
            )?;
            Ok(())
        })
        .await
    }

    /// A dynamically registered client, if `client_id` is one.
    pub async fn registered_client(
        &self,
        client_id: &str,
    ) -> Result<Option<RegisteredClient>, AccountsError> {
        let client_id = client_id.to_string();
        self.with(move |c| {
            let row = c
                .query_row(
                    "SELECT name, redirect_uris FROM oauth_clients WHERE client_id = ?1",
                    [&client_id],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
                )
                .optional()?;
            Ok(row.map(|(name, uris)| RegisteredClient {
                client_id,
                name,
                redirect_uris: serde_json::from_str(&uris).unwrap_or_default(),
            }))
        })
        .await
    }

    /// Record a new grant and its first refresh token.
    pub async fn create_grant(
        &self,
        grant: &Grant,
        client_name: &str,
        refresh_token: &str,
        refresh_expires: u64,
    ) -> Result<(), AccountsError> {
        let (g, name, hash) = (
            grant.clone(),
            client_name.to_string(),
            digest(refresh_token),
        );
        self.with(move |c| {
            let now = now_secs() as i64;
            let tx = c.unchecked_transaction()?;
            tx.execute(
                "INSERT INTO grants(id, user_id, client_id, client_name, scope, resource, created, last_used)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
                params![g.id, g.user.as_str(), g.client_id, name, g.scope, g.resource, now],
            )?;
            tx.execute(
                "INSERT INTO refresh_tokens(hash, grant_id, expires) VALUES (?1, ?2, ?3)",
                params![hash, g.id, refresh_expires as i64],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Use up `refresh_token` presented by `client_id` and store its successor. A token
    /// presented a second time revokes its whole grant (it was stolen, or the client lost
    /// track: either way the chain is no longer trustworthy).
    pub async fn rotate_refresh(
        &self,
        refresh_token: &str,
        client_id: &str,
        next: &str,
        next_expires: u64,
    ) -> Result<Refresh, AccountsError> {
        let (hash, client_id, next_hash) =
            (digest(refresh_token), client_id.to_string(), digest(next));
        let outcome = self
            .with(move |c| {
                let now = now_secs() as i64;
                let tx = c.unchecked_transaction()?;
                let row = tx
                    .query_row(
                        "SELECT r.used, r.expires, g.id, g.user_id, g.client_id, g.scope, g.resource,
                                g.revoked_at
                         FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id WHERE r.hash = ?1",
                        [&hash],
                        |r| {
                            Ok((
                                r.get::<_, i64>(0)? != 0,
                                r.get::<_, i64>(1)?,
                                r.get::<_, String>(2)?,
                                r.get::<_, String>(3)?,
                                r.get::<_, String>(4)?,
                                r.get::<_, String>(5)?,
                                r.get::<_, String>(6)?,
                                r.get::<_, Option<i64>>(7)?,
                            ))
                        },
                    )
                    .optional()?;
                let Some((used, expires, id, user, owner, scope, resource, revoked)) = row else {
                    return Ok((Refresh::Invalid, None));
                };
                if owner != client_id || revoked.is_some() || expires <= now {
                    return Ok((Refresh::Invalid, None));
                }
                if used {
                    tx.execute(
                        "UPDATE grants SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                        params![id, now],
                    )?;
                    tx.execute("DELETE FROM refresh_tokens WHERE grant_id = ?1", [&id])?;
                    tx.commit()?;
                    return Ok((Refresh::Reused, Some(id)));
                }
                tx.execute("UPDATE refresh_tokens SET used = 1 WHERE hash = ?1", [&hash])?;
                tx.execute(
                    "INSERT INTO refresh_tokens(hash, grant_id, expires) VALUES (?1, ?2, ?3)",
                    params![next_hash, id, next_expires as i64],
                )?;
                tx.execute("UPDATE grants SET last_used = ?2 WHERE id = ?1", params![id, now])?;
                tx.commit()?;
                let Ok(user) = UserId::parse(&user) else {
                    return Ok((Refresh::Invalid, None));
                };
                Ok((
                    Refresh::Valid(Grant {
                        id,
                        user,
                        client_id: owner,
                        scope,
                        resource,
                    }),
                    None,
                ))
            })
            .await?;
        if let (Refresh::Reused, Some(id)) = &outcome {
            self.revocations.insert(&grant_key(id), now_secs());
        }
        Ok(outcome.0)
    }

    /// Revoke the grant behind a refresh token (RFC 7009 revocation by a client). False when
    /// the token is unknown or not `client_id`'s.
    pub async fn revoke_by_refresh(
        &self,
        refresh_token: &str,
        client_id: &str,
    ) -> Result<bool, AccountsError> {
        let (hash, client_id) = (digest(refresh_token), client_id.to_string());
        let grant = self
            .with(move |c| {
                Ok(c.query_row(
                    "SELECT g.id FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id
                     WHERE r.hash = ?1 AND g.client_id = ?2",
                    params![hash, client_id],
                    |r| r.get::<_, String>(0),
                )
                .optional()?)
            })
            .await?;
        match grant {
            Some(id) => self.end_grant(None, &id).await,
            None => Ok(false),
        }
    }

    /// The clients `user` has connected and not disconnected, most recently used first.
    pub async fn grants(&self, user: &UserId) -> Result<Vec<GrantInfo>, AccountsError> {
        let user = user.to_string();
        self.with(move |c| {
            let mut stmt = c.prepare(
                "SELECT id, client_id, client_name, scope, created, last_used FROM grants
                 WHERE user_id = ?1 AND revoked_at IS NULL ORDER BY last_used DESC, id",
            )?;
            let rows = stmt.query_map([user], |r| {
                Ok(GrantInfo {
                    id: r.get(0)?,
                    client_id: r.get(1)?,
                    name: r.get(2)?,
                    scope: r.get(3)?,
                    created_at: r.get::<_, i64>(4)?.max(0) as u64,
                    last_used_at: r.get::<_, i64>(5)?.max(0) as u64,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// Disconnect a client: revoke grant `id` (only `user`'s, when given) with every token it
    /// issued. False when there is no such live grant.
    pub async fn end_grant(&self, user: Option<&UserId>, id: &str) -> Result<bool, AccountsError> {
        let (user, id_s) = (user.map(UserId::to_string), id.to_string());
        let found = self
            .with(move |c| {
                let now = now_secs() as i64;
                let tx = c.unchecked_transaction()?;
                let n = tx.execute(
                    "UPDATE grants SET revoked_at = ?2
                     WHERE id = ?1 AND revoked_at IS NULL AND (?3 IS NULL OR user_id = ?3)",
                    params![id_s, now, user],
                )?;
                if n > 0 {
                    tx.execute("DELETE FROM refresh_tokens WHERE grant_id = ?1", [&id_s])?;
                }
                tx.commit()?;
                Ok(n > 0)
            })
            .await?;
        if found {
            self.revocations.insert(&grant_key(id), now_secs());
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(id: &str) -> Grant {
        Grant {
            id: id.into(),
            user: UserId::parse("alice").unwrap(),
            client_id: "client".into(),
            scope: "notes:read notes:write".into(),
            resource: "http://x/mcp".into(),
        }
    }

    #[tokio::test]
    async fn a_refresh_token_rotates_and_a_replay_revokes_the_grant() {
        let dir = tempfile::tempdir().unwrap();
        let store = AccountStore::open(dir.path()).unwrap();
        let far = now_secs() + 3600;
        store
            .create_grant(&grant("g1"), "Client", "r1", far)
            .await
            .unwrap();
        assert_eq!(
            store
                .rotate_refresh("r1", "other-client", "r2", far)
                .await
                .unwrap(),
            Refresh::Invalid,
            "another client's token"
        );
        assert_eq!(
            store
                .rotate_refresh("r1", "client", "r2", far)
                .await
                .unwrap(),
            Refresh::Valid(grant("g1"))
        );
        assert_eq!(
            store
                .rotate_refresh("r1", "client", "r3", far)
                .await
                .unwrap(),
            Refresh::Reused
        );
        assert!(store.revocations().is_revoked(&grant_key("g1"), now_secs()));
        assert_eq!(
            store
                .rotate_refresh("r2", "client", "r4", far)
                .await
                .unwrap(),
            Refresh::Invalid,
            "the successor dies with the grant"
        );
        assert!(store.grants(&grant("g1").user).await.unwrap().is_empty());
        drop(store);
        let store = AccountStore::open(dir.path()).unwrap();
        assert!(store.revocations().is_revoked(&grant_key("g1"), now_secs()));
    }

    #[tokio::test]
    async fn disconnecting_a_client_is_only_for_its_owner() {
        let dir = tempfile::tempdir().unwrap();
        let store = AccountStore::open(dir.path()).unwrap();
        let far = now_secs() + 3600;
        store
            .create_grant(&grant("g1"), "Client", "r1", far)
            .await
            .unwrap();
        let bob = UserId::parse("bob").unwrap();
        assert!(!store.end_grant(Some(&bob), "g1").await.unwrap());
        let listed = store.grants(&grant("g1").user).await.unwrap();
        assert_eq!(listed[0].name, "Client");
        assert!(store
            .end_grant(Some(&grant("g1").user), "g1")
            .await
            .unwrap());
        assert_eq!(
            store
                .rotate_refresh("r1", "client", "r2", far)
                .await
                .unwrap(),
            Refresh::Invalid
        );
    }
}
