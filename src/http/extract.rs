//! Extractors: the authenticated caller (no handler ever sees a raw token) and the JSON-RPC
//! body (whose rejection is a JSON-RPC error, never a plain-text 400).

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use vault_actors::mcp::jsonrpc::{nesting_depth, Message, RpcError, INVALID_REQUEST, PARSE_ERROR};
use vault_actors::Caller;

use super::client::{admit, ip_of, origin_of, refuse_limited};
use super::error::{rpc_error, unauthorized};
use super::AppState;
use crate::auth::{AuthError, Verified};

/// The caller proven by a valid bearer token. Only the `Authorization` header counts: the
/// web page's session cookie is never a credential here.
pub struct Authenticated(pub Caller);

/// A valid bearer token with its id and times (for refreshing it).
pub struct Bearer(pub Verified);

impl FromRequestParts<AppState> for Bearer {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or_else(|| refuse(state, parts, &AuthError::Missing))?;
        let ip = ip_of(parts);
        // An address that keeps presenting bad tokens waits before its next try.
        if let Err(limited) = state.limits.may_authenticate(ip) {
            return Err(refuse_limited(state, parts, None, &limited));
        }
        let verified = state.keys.verify_token(token).map_err(|e| {
            state.limits.auth_failed(ip);
            refuse(state, parts, &e)
        })?;
        if let Some(refused) = admit(state, parts, &verified.caller.user) {
            return Err(refused);
        }
        crate::metrics::user_seen(&verified.caller.user);
        Ok(Bearer(verified))
    }
}

/// The 401 for a refused token, counted and audited by reason.
fn refuse(state: &AppState, parts: &Parts, err: &AuthError) -> Response {
    let reason = err.reason();
    crate::metrics::auth_failure(reason);
    let detail = serde_json::json!({ "reason": reason.as_str(), "path": parts.uri.path() });
    state
        .audit
        .record("auth_failed", None, &origin_of(parts), detail);
    unauthorized(&state.public_url, err)
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Bearer::from_request_parts(parts, state)
            .await
            .map(|Bearer(v)| Authenticated(v.caller))
    }
}

/// A POSTed JSON-RPC payload: one message or a batch.
pub struct RpcBody {
    pub messages: Vec<Message>,
    pub batch: bool,
}

impl RpcBody {
    /// The id to echo in a transport-level error: the single request's id, else `null`.
    pub fn error_id(&self) -> Value {
        match self.messages.as_slice() {
            [Message::Request { id, .. }] if !self.batch => id.clone(),
            _ => Value::Null,
        }
    }
}

impl FromRequest<AppState> for RpcBody {
    type Rejection = Response;

    async fn from_request(req: Request<Body>, state: &AppState) -> Result<Self, Self::Rejection> {
        let limit = state.max_body_bytes;
        let bytes = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|_| {
                rpc_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &Value::Null,
                    RpcError::new(
                        INVALID_REQUEST,
                        format!("request body over the limit of {limit} bytes"),
                    ),
                )
            })?;
        if nesting_depth(&bytes) > state.max_json_depth {
            return Err(rpc_error(
                StatusCode::BAD_REQUEST,
                &Value::Null,
                RpcError::new(
                    INVALID_REQUEST,
                    format!("JSON nested deeper than {} levels", state.max_json_depth),
                ),
            ));
        }
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
            rpc_error(
                StatusCode::BAD_REQUEST,
                &Value::Null,
                RpcError::new(PARSE_ERROR, format!("parse error: {e}")),
            )
        })?;
        let (items, batch) = match value {
            Value::Array(items) if items.is_empty() => {
                return Err(rpc_error(
                    StatusCode::BAD_REQUEST,
                    &Value::Null,
                    RpcError::new(INVALID_REQUEST, "empty batch"),
                ))
            }
            Value::Array(items) => (items, true),
            single => (vec![single], false),
        };
        let mut messages = Vec::with_capacity(items.len());
        for item in items {
            let id = item.get("id").cloned().unwrap_or(Value::Null);
            let msg =
                Message::parse(item).map_err(|e| rpc_error(StatusCode::BAD_REQUEST, &id, e))?;
            messages.push(msg);
        }
        Ok(RpcBody { messages, batch })
    }
}

/// Does an `Accept` header admit `wanted` (exactly, through `type/*`, or through `*/*`)?
pub fn accepts(headers: &axum::http::HeaderMap, wanted: &str) -> bool {
    let major = wanted.split('/').next().unwrap_or("");
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|item| {
            item.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .any(|media| media == wanted || media == "*/*" || media == format!("{major}/*"))
}

/// Refusal for a request whose `Accept` lacks what the transport requires.
pub fn not_acceptable(needed: &str) -> Response {
    super::error::json_error(
        StatusCode::NOT_ACCEPTABLE,
        "not_acceptable",
        &format!("the Accept header must include {needed}"),
    )
    .into_response()
}

/// Why a JSON request body was refused.
#[derive(Debug)]
pub enum BadJson {
    /// Not sent as `application/json`.
    NotJson,
    /// Over `max_body_bytes`.
    TooLarge(usize),
    /// Nested deeper than `max_json_depth` (checked before parsing).
    TooDeep(usize),
    /// Not JSON (invalid UTF-8 included), or not the expected shape.
    Invalid(String),
}

impl BadJson {
    pub fn status(&self) -> StatusCode {
        match self {
            BadJson::NotJson => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            BadJson::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            BadJson::TooDeep(_) | BadJson::Invalid(_) => StatusCode::BAD_REQUEST,
        }
    }

    pub fn message(&self) -> String {
        match self {
            BadJson::NotJson => "the body must be JSON (Content-Type: application/json)".into(),
            BadJson::TooLarge(limit) => format!("the request is over the limit of {limit} bytes"),
            BadJson::TooDeep(depth) => format!("JSON nested deeper than {depth} levels"),
            BadJson::Invalid(e) => format!("the request is not the expected JSON: {e}"),
        }
    }
}

impl IntoResponse for BadJson {
    fn into_response(self) -> Response {
        super::error::json_error(self.status(), "invalid_request", &self.message())
    }
}

/// Parse a JSON body already read: refused when nested deeper than `max_depth` (before any
/// parsing, so depth costs nothing) or when it is not valid UTF-8 JSON of the shape `T`.
pub fn parse_json<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    max_depth: usize,
) -> Result<T, BadJson> {
    if nesting_depth(bytes) > max_depth {
        return Err(BadJson::TooDeep(max_depth));
    }
    // Checked whole, first: serde skips the strings of fields it ignores without checking them.
    let text = std::str::from_utf8(bytes)
        .map_err(|e| BadJson::Invalid(format!("the body is not valid UTF-8 ({e})")))?;
    serde_json::from_str(text).map_err(|e| BadJson::Invalid(e.to_string()))
}

/// Read a JSON body of at most `max_body_bytes` and parse it with [`parse_json`].
pub async fn read_json<T: serde::de::DeserializeOwned>(
    state: &AppState,
    body: Body,
) -> Result<T, BadJson> {
    let limit = state.max_body_bytes;
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| BadJson::TooLarge(limit))?;
    parse_json(&bytes, state.max_json_depth)
}

/// A JSON request body within the body-size and nesting limits; its refusal is a JSON error
/// (axum's own `Json` answers in plain text and bounds nesting only by its parser's limit).
pub struct JsonBody<T>(pub T);

impl<T: serde::de::DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = BadJson;

    async fn from_request(req: Request<Body>, state: &AppState) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(BadJson::NotJson);
        }
        read_json(state, req.into_body()).await.map(JsonBody)
    }
}
