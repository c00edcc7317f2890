//! Every HTTP-level refusal, shaped in one place: plain JSON errors for HTTP problems, JSON-RPC
//! error bodies for MCP problems, and the `WWW-Authenticate` challenge for auth failures.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use vault_actors::mcp::jsonrpc::{RpcError, INTERNAL_ERROR, INVALID_REQUEST};
use vault_actors::ActorError;

use crate::auth::AuthError;

/// A plain JSON error (`{"error": code, "error_description": message}`).
pub fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({ "error": code, "error_description": message })),
    )
        .into_response()
}

/// 408 for a request that ran out of time. The work it started is not called back: a write
/// already queued on the user's actor still completes, so the outcome is unknown, and the
/// answer says so (JSON-RPC shaped on `/mcp`, where clients parse those).
pub fn timed_out(json_rpc: bool) -> Response {
    let message = "the request took too long; its outcome is unknown (a change may still be \
                   applied): read the note and its version before retrying a write";
    if json_rpc {
        let err = RpcError::new(INTERNAL_ERROR, message)
            .with_data(json!({ "code": "timeout", "outcome": "unknown" }));
        return rpc_error(StatusCode::REQUEST_TIMEOUT, &Value::Null, err);
    }
    let body = json!({ "error": "timeout", "error_description": message, "outcome": "unknown" });
    (StatusCode::REQUEST_TIMEOUT, Json(body)).into_response()
}

/// A JSON-RPC error body with an HTTP status.
pub fn rpc_error(status: StatusCode, id: &Value, err: RpcError) -> Response {
    (status, Json(err.to_response(id))).into_response()
}

/// 401 with the RFC 9728 pointer to our protected-resource metadata.
pub fn unauthorized(public_url: &str, err: &AuthError) -> Response {
    let metadata = format!("{public_url}/.well-known/oauth-protected-resource/mcp");
    let scope = "notes:read notes:write";
    let challenge = match err {
        AuthError::Missing => {
            format!("Bearer resource_metadata=\"{metadata}\", scope=\"{scope}\"")
        }
        AuthError::Invalid(_, reason) => format!(
            "Bearer error=\"invalid_token\", error_description=\"{}\", resource_metadata=\"{metadata}\", scope=\"{scope}\"",
            reason.replace(['"', '\\'], "'")
        ),
    };
    let mut resp = json_error(
        StatusCode::UNAUTHORIZED,
        if matches!(err, AuthError::Missing) {
            "unauthorized"
        } else {
            "invalid_token"
        },
        &err.to_string(),
    );
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

/// The HTTP answer when a user's actor could not produce an MCP reply.
pub fn actor_error(id: &Value, err: ActorError) -> Response {
    let (status, code) = match &err {
        ActorError::UnknownSession => (StatusCode::NOT_FOUND, -32001),
        ActorError::BatchNotSupported => (StatusCode::BAD_REQUEST, INVALID_REQUEST),
        ActorError::Storage(_) => (StatusCode::INTERNAL_SERVER_ERROR, INTERNAL_ERROR),
        ActorError::Restarted | ActorError::CrashLoop { .. } => {
            (StatusCode::SERVICE_UNAVAILABLE, INTERNAL_ERROR)
        }
    };
    if let ActorError::Storage(reason) = &err {
        tracing::error!(error = %reason, "user storage failed");
    }
    let mut resp = rpc_error(status, id, RpcError::new(code, err.to_string()));
    let retry = match err {
        ActorError::Restarted => Some(1),
        ActorError::CrashLoop { retry_after_secs } => Some(retry_after_secs),
        _ => None,
    };
    if let Some(secs) = retry {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}
