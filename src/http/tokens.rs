//! Tokens for MCP clients, managed by their owner: `GET/POST /api/tokens` and
//! `DELETE /api/tokens/{id}` from the signed-in page, and `POST /api/tokens/refresh`, where a
//! client trades its still-valid bearer token for a fresh one.
//!
//! Every token is minted for the user the request proved (the web session, or the bearer token
//! being refreshed); no endpoint takes a user id from the request.
//!
//! A token is `read` or `write` over the whole vault, or limited to folders: `folders` gives
//! the chosen right over those folders only, and `read_folders` adds folders it may only read.
//! The recorded scope is `read`, `write`, or the token's `scope` claim for a folder-scoped one
//! (`notes:write:work notes:read:shared`); a refreshed token keeps exactly the old one's rights.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use vault_actors::caller::{Access, Grant, Right};
use vault_actors::UserId;

use super::client::RequestOrigin;
use super::error::json_error;
use super::extract::{Bearer, JsonBody};
use super::session::WebApi;
use super::AppState;
use crate::accounts::NewToken;
use crate::auth::{now_secs, scope_label, Minted};

/// How long a refreshed-away token keeps working, so requests already on their way finish.
pub const REFRESH_GRACE: Duration = Duration::from_secs(60);
/// Lifetimes the account page offers (those up to the configured maximum).
const TTL_CHOICES: [&str; 7] = ["1h", "1d", "7d", "30d", "90d", "180d", "365d"];
/// Longest token name.
const MAX_NAME_CHARS: usize = 64;

fn storage_failed(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "accounts storage failed");
    json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "tokens cannot be stored right now; retry shortly",
    )
}

/// Most folders one token may name.
const MAX_FOLDERS: usize = 32;

/// The access a create request asks for: `scope` (`read` or `write`) over `folders`, or over the
/// whole vault when there are none, plus `read_folders` to read only. The message says why not.
fn access_of(scope: &str, folders: &[String], read_folders: &[String]) -> Result<Access, String> {
    let right = match scope {
        "read" => Right::Read,
        "write" => Right::Write,
        _ => return Err("the scope is read or write".into()),
    };
    if folders.len() + read_folders.len() > MAX_FOLDERS {
        return Err(format!("a token names at most {MAX_FOLDERS} folders"));
    }
    if folders.is_empty() {
        let whole = Grant::parse(if right == Right::Read {
            "notes:read"
        } else {
            "notes:write"
        })
        .map_err(|e| e.to_string())?;
        let mut grants = vec![whole];
        for folder in read_folders {
            grants.push(Grant::folder_grant(Right::Read, folder).map_err(|e| e.to_string())?);
        }
        return Ok(Access::of(&grants));
    }
    let mut grants = Vec::new();
    for folder in folders {
        grants.push(Grant::folder_grant(right, folder).map_err(|e| e.to_string())?);
    }
    for folder in read_folders {
        grants.push(Grant::folder_grant(Right::Read, folder).map_err(|e| e.to_string())?);
    }
    Ok(Access::of(&grants))
}

/// Mint a token for `user` with `access` and record it; the answer shows the token, once.
async fn issue(
    state: &AppState,
    user: &UserId,
    name: &str,
    access: &Access,
    ttl: Duration,
) -> Result<serde_json::Value, Response> {
    let scopes = access.to_claim();
    let scope = scope_label(access);
    let scope = scope.as_str();
    let Minted {
        token,
        jti,
        issued_at,
        expires_at,
    } = state.keys.mint_token(user, ttl, &scopes).map_err(|e| {
        tracing::error!(error = %e, "minting a token failed");
        json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the token could not be made",
        )
    })?;
    state
        .accounts
        .record_token(NewToken {
            jti: &jti,
            user,
            name,
            scope,
            created: issued_at,
            expires: expires_at,
        })
        .await
        .map_err(storage_failed)?;
    tracing::info!(user = %user, token_id = %jti, scope, "token issued");
    Ok(json!({
        "id": jti,
        "name": name,
        "scope": scope,
        "token": token,
        "created_at": issued_at,
        "expires_at": expires_at,
    }))
}

/// `GET /api/tokens`: the person's working tokens (never the tokens themselves).
pub async fn list(State(state): State<AppState>, WebApi(user): WebApi) -> Response {
    if let Err(e) = state.accounts.record_usage(state.keys.take_usage()).await {
        tracing::warn!(error = %e, "recording token use failed");
    }
    match state.accounts.tokens(&user.caller.user).await {
        Ok(tokens) => {
            let max = state.web.token_max_ttl;
            let choices: Vec<&str> = TTL_CHOICES
                .iter()
                .copied()
                .filter(|c| humantime::parse_duration(c).is_ok_and(|d| d <= max))
                .collect();
            Json(json!({
                "tokens": tokens,
                "max_ttl_secs": max.as_secs(),
                "ttl_choices": choices,
            }))
            .into_response()
        }
        Err(e) => storage_failed(e),
    }
}

#[derive(Deserialize)]
pub struct CreateToken {
    name: String,
    ttl: String,
    /// `read` or `write`.
    scope: String,
    /// Limit `scope` to these folders (and everything below them); none = the whole vault.
    #[serde(default)]
    folders: Vec<String>,
    /// Folders the token may also read, without writing.
    #[serde(default)]
    read_folders: Vec<String>,
}

/// `POST /api/tokens {name, ttl, scope, folders?, read_folders?}`: a new token for the
/// signed-in person.
pub async fn create(
    State(state): State<AppState>,
    RequestOrigin(origin): RequestOrigin,
    WebApi(user): WebApi,
    JsonBody(req): JsonBody<CreateToken>,
) -> Response {
    let name = req.name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return json_error(
            StatusCode::BAD_REQUEST,
            "invalid_name",
            &format!("a token name is 1 to {MAX_NAME_CHARS} printable characters"),
        );
    }
    let max = state.web.token_max_ttl;
    let ttl = match humantime::parse_duration(req.ttl.trim()) {
        Ok(d) if !d.is_zero() && d <= max => d,
        Ok(_) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                "invalid_ttl",
                &format!(
                    "the lifetime must be longer than zero and at most {}",
                    humantime::format_duration(max)
                ),
            )
        }
        Err(e) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                "invalid_ttl",
                &format!("the lifetime {:?} is not a duration like 7d: {e}", req.ttl),
            )
        }
    };
    let access = match access_of(&req.scope, &req.folders, &req.read_folders) {
        Ok(access) => access,
        Err(reason) => return json_error(StatusCode::BAD_REQUEST, "invalid_scope", &reason),
    };
    // Working tokens only: revoked and expired ones make room. (Two creates racing may both
    // pass; the quota bounds a person's tokens, it is not a security boundary.)
    let current = match state.accounts.tokens(&user.caller.user).await {
        Ok(tokens) => tokens.len() as u64,
        Err(e) => return storage_failed(e),
    };
    let max = state.max_tokens_per_user as u64;
    if current >= max {
        crate::metrics::quota_hit(vault_actors::settings::Quotas::TOKENS_PER_USER);
        let detail = json!({ "limit": vault_actors::settings::Quotas::TOKENS_PER_USER,
                             "max": max, "current": current });
        let user_id = user.caller.user.as_str();
        state
            .audit
            .record("quota_exceeded", Some(user_id), &origin, detail);
        let err = vault_actors::VaultError::QuotaExceeded {
            limit: vault_actors::settings::Quotas::TOKENS_PER_USER,
            max,
            current,
        };
        let body = json!({
            "error": err.code(),
            "error_description": err.to_string(),
            "limit": vault_actors::settings::Quotas::TOKENS_PER_USER,
            "max": max,
            "current": current,
        });
        return (StatusCode::FORBIDDEN, Json(body)).into_response();
    }
    match issue(&state, &user.caller.user, name, &access, ttl).await {
        Ok(body) => {
            let detail = json!({ "token_id": body["id"], "name": name, "scope": body["scope"],
                                 "expires_at": body["expires_at"] });
            let user_id = user.caller.user.as_str();
            state
                .audit
                .record("token_issued", Some(user_id), &origin, detail);
            (StatusCode::CREATED, Json(body)).into_response()
        }
        Err(resp) => resp,
    }
}

/// `DELETE /api/tokens/{id}`: revoke one of the person's tokens, at once.
pub async fn revoke(
    State(state): State<AppState>,
    RequestOrigin(origin): RequestOrigin,
    WebApi(user): WebApi,
    Path(id): Path<String>,
) -> Response {
    match state
        .accounts
        .revoke(&user.caller.user, &id, now_secs())
        .await
    {
        Ok(true) => {
            tracing::info!(user = %user.caller.user, token_id = %id, "token revoked");
            let user_id = user.caller.user.as_str();
            let detail = json!({ "token_id": id });
            state
                .audit
                .record("token_revoked", Some(user_id), &origin, detail);
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(false) => json_error(
            StatusCode::NOT_FOUND,
            "not_found",
            "you have no token with this id",
        ),
        Err(e) => storage_failed(e),
    }
}

/// `POST /api/tokens/refresh` with a valid bearer token: a fresh token with the same name,
/// scope and lifetime; the old one keeps working for [`REFRESH_GRACE`], then is refused.
pub async fn refresh(
    State(state): State<AppState>,
    RequestOrigin(origin): RequestOrigin,
    Bearer(old): Bearer,
) -> Response {
    let user = old.caller.user.clone();
    let record = match state.accounts.token(&user, &old.jti).await {
        Ok(r) => r,
        Err(e) => return storage_failed(e),
    };
    let name = match &record {
        Some(r) => r.name.clone(),
        None => "refreshed token".to_string(),
    };
    // Exactly the old token's rights, folders included.
    let access = old.caller.access.clone();
    let scope = scope_label(&access);
    let lifetime = old.expires_at.saturating_sub(old.issued_at).max(60);
    let ttl = Duration::from_secs(lifetime).min(state.web.token_max_ttl);
    let body = match issue(&state, &user, &name, &access, ttl).await {
        Ok(body) => body,
        Err(resp) => return resp,
    };
    if record.is_none() {
        // Minted elsewhere with this server's secret: record it so its retirement is durable.
        let old_record = NewToken {
            jti: &old.jti,
            user: &user,
            name: &name,
            scope: &scope,
            created: old.issued_at,
            expires: old.expires_at,
        };
        if let Err(e) = state.accounts.record_token(old_record).await {
            return storage_failed(e);
        }
    }
    let retire_at = now_secs() + REFRESH_GRACE.as_secs();
    if let Err(e) = state.accounts.revoke(&user, &old.jti, retire_at).await {
        return storage_failed(e);
    }
    tracing::info!(user = %user, token_id = %old.jti, "token refreshed");
    let detail =
        json!({ "token_id": body["id"], "replaces": old.jti, "old_retires_at": retire_at });
    state
        .audit
        .record("token_refreshed", Some(user.as_str()), &origin, detail);
    Json(body).into_response()
}
