//! The stateless revision (2026-07-28) on `POST /mcp`: which POSTs belong to it, the checks of
//! its headers against the body, and the HTTP status of its answers.
//!
//! A request belongs to it when it names the revision in `params._meta` (with or without an
//! `Mcp-Session-Id`, which the revision ignores), or when it comes without a session and its
//! `MCP-Protocol-Version` header names the revision. Everything else keeps the session flow.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::Value;
use vault_actors::mcp::jsonrpc::{
    Message, RpcError, INVALID_REQUEST, METHOD_NOT_FOUND, UNSUPPORTED_PROTOCOL_VERSION,
};
use vault_actors::mcp::stateless::{self, RequestMeta, HEADER_MISMATCH};
use vault_actors::messages::StatelessRequest;

use super::VERSION_HEADER;
use crate::http::error::rpc_error;
use crate::http::extract::RpcBody;
use crate::http::session_id::{Presented, SessionIds};

const METHOD_HEADER: &str = "mcp-method";
const NAME_HEADER: &str = "mcp-name";
/// How a header value too unusual for HTTP (non-ASCII, edge whitespace) is sent: base64 of
/// its UTF-8 bytes between these markers.
const BASE64_OPEN: &str = "=?base64?";
const BASE64_CLOSE: &str = "?=";

/// Does this POST belong to the stateless revision?
pub fn is_stateless(headers: &HeaderMap, body: &RpcBody, has_session: bool) -> bool {
    let [message] = body.messages.as_slice() else {
        return false;
    };
    if body.batch {
        return false;
    }
    match message {
        Message::Request { method, params, .. } => match stateless::meta_version(params.as_ref()) {
            // A session revision named in `_meta` is an older client: it keeps the session flow.
            Some(version) => !vault_actors::mcp::protocol::is_supported(version),
            // A probe that names no version gets the fallback answer of the session flow.
            None if method == "server/discover" => false,
            None => !has_session && header(headers, VERSION_HEADER) == Some(stateless::VERSION),
        },
        Message::Notification { .. } => {
            !has_session && header(headers, VERSION_HEADER) == Some(stateless::VERSION)
        }
        Message::Response { .. } => false,
    }
}

/// What to do with a stateless POST once its envelope and headers are checked.
pub enum Checked {
    /// Run this request on the user's actor.
    Run(StatelessRequest),
    /// Answer at once (a notification accepted, or a refusal).
    Answer(Response),
}

/// Check a stateless POST (`is_stateless` said so): its `_meta` envelope, then its headers
/// against the body.
pub fn check(headers: &HeaderMap, body: RpcBody) -> Checked {
    let Some(message) = body.messages.into_iter().next() else {
        return refuse(&Value::Null, RpcError::new(INVALID_REQUEST, "empty body"));
    };
    match message {
        Message::Request { id, method, params } => {
            let meta = match RequestMeta::of(params.as_ref()) {
                Ok(meta) => meta,
                Err(e) => return refuse(&id, e),
            };
            if let Err(e) = check_headers(headers, &method, params.as_ref()) {
                return refuse(&id, e);
            }
            Checked::Run(StatelessRequest {
                meta,
                id,
                method,
                params,
            })
        }
        // Notifications carry no `_meta` envelope; there is nothing for them to steer here
        // (no session, no server-to-client request), so they are accepted and dropped.
        Message::Notification { method, params } => {
            match check_headers(headers, &method, params.as_ref()) {
                Ok(()) => Checked::Answer(StatusCode::ACCEPTED.into_response()),
                Err(e) => refuse(&Value::Null, e),
            }
        }
        Message::Response { id, .. } => refuse(
            &id,
            RpcError::new(
                INVALID_REQUEST,
                "this revision sends no requests to the client",
            ),
        ),
    }
}

/// The HTTP status of a stateless answer: 404 for an unknown (or removed) method, 400 for the
/// revision's protocol errors, else 200.
pub fn status_of(answer: &Value) -> StatusCode {
    match answer.pointer("/error/code").and_then(Value::as_i64) {
        Some(METHOD_NOT_FOUND) => StatusCode::NOT_FOUND,
        Some(UNSUPPORTED_PROTOCOL_VERSION | HEADER_MISMATCH) => StatusCode::BAD_REQUEST,
        _ => StatusCode::OK,
    }
}

fn refuse(id: &Value, err: RpcError) -> Checked {
    Checked::Answer(rpc_error(StatusCode::BAD_REQUEST, id, err))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap_or("\u{fffd}"))
}

/// The revision's header rules: `MCP-Protocol-Version` and `Mcp-Method` on every message,
/// `Mcp-Name` on `tools/call`, `prompts/get` and `resources/read`, each equal to what the
/// body says; anything missing, malformed or different is a `HeaderMismatch`.
fn check_headers(
    headers: &HeaderMap,
    method: &str,
    params: Option<&Value>,
) -> Result<(), RpcError> {
    match header(headers, VERSION_HEADER) {
        None => {
            return Err(stateless::header_mismatch(
                "missing MCP-Protocol-Version header",
            ))
        }
        Some(v) if v != stateless::VERSION => {
            return Err(stateless::header_mismatch(format!(
                "MCP-Protocol-Version header {v:?} does not match the body's protocol version {:?}",
                stateless::VERSION
            )))
        }
        Some(_) => {}
    }
    match header(headers, METHOD_HEADER) {
        None => return Err(stateless::header_mismatch("missing Mcp-Method header")),
        Some(m) if m != method => {
            return Err(stateless::header_mismatch(format!(
                "Mcp-Method header {m:?} does not match the body's method {method:?}"
            )))
        }
        Some(_) => {}
    }
    let Some(body_name) = stateless::routed_name(method, params) else {
        return Ok(());
    };
    let given = header(headers, NAME_HEADER).map(decode_name).transpose()?;
    match (body_name, given) {
        (Some(_), None) => Err(stateless::header_mismatch(format!(
            "missing Mcp-Name header (required for {method})"
        ))),
        (Some(expected), Some(given)) if given != expected => Err(stateless::header_mismatch(
            format!("Mcp-Name header {given:?} does not match the body's {expected:?}"),
        )),
        (None, Some(given)) => Err(stateless::header_mismatch(format!(
            "Mcp-Name header {given:?} names nothing the body names"
        ))),
        _ => Ok(()),
    }
}

/// An `Mcp-Name` value as the client meant it: plain, or base64 between the revision's markers.
fn decode_name(raw: &str) -> Result<String, RpcError> {
    let Some(encoded) = raw
        .strip_prefix(BASE64_OPEN)
        .and_then(|r| r.strip_suffix(BASE64_CLOSE))
    else {
        return Ok(raw.to_string());
    };
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| stateless::header_mismatch("Mcp-Name header is not valid base64 of UTF-8"))
}

/// Marks the inner part of a bound `requestState`, so that a session id (bound the same way)
/// is never taken for one, nor one for a session id.
const STATE_PREFIX: &str = "rs-";

/// Why a `requestState` was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum StateRefused {
    /// Issued to another user.
    Foreign,
    /// Never issued here, or altered.
    Forged,
}

/// Bind the `requestState` of an `input_required` answer to `user`, as session ids are: another
/// user presenting it is recognised, and it cannot be altered.
pub fn bind_state(ids: &SessionIds, user: &vault_actors::UserId, answer: &mut Value) {
    let Some(result) = answer.get_mut("result") else {
        return;
    };
    if result["resultType"] != "input_required" {
        return;
    }
    if let Some(state) = result.get("requestState").and_then(Value::as_str) {
        let bound = ids.wrap(&format!("{STATE_PREFIX}{state}"), user);
        result["requestState"] = Value::String(bound);
    }
}

/// Replace the bound `requestState` of a retry by what the actor issued, when it was issued to
/// `user`.
pub fn unbind_state(
    ids: &SessionIds,
    user: &vault_actors::UserId,
    request: &mut StatelessRequest,
) -> Result<(), StateRefused> {
    let Some(params) = request.params.as_mut() else {
        return Ok(());
    };
    let Some(presented) = params.get("requestState").and_then(Value::as_str) else {
        return Ok(());
    };
    match ids.check(presented, user) {
        Presented::Own(inner) => match inner.strip_prefix(STATE_PREFIX) {
            Some(state) => {
                params["requestState"] = Value::String(state.to_string());
                Ok(())
            }
            None => Err(StateRefused::Forged),
        },
        Presented::Foreign => Err(StateRefused::Foreign),
        Presented::Legacy(_) | Presented::Forged => Err(StateRefused::Forged),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_decode_plain_or_base64() {
        assert_eq!(decode_name("read_note").unwrap(), "read_note");
        let encoded = format!(
            "{BASE64_OPEN}{}{BASE64_CLOSE}",
            base64::engine::general_purpose::STANDARD.encode("note:///café.md")
        );
        assert_eq!(decode_name(&encoded).unwrap(), "note:///café.md");
        let bad = format!("{BASE64_OPEN}!!{BASE64_CLOSE}");
        assert_eq!(decode_name(&bad).unwrap_err().code, HEADER_MISMATCH);
    }
}
