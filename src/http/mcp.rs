//! The MCP Streamable HTTP transport on `/mcp`: `POST` carries JSON-RPC, `GET` opens the
//! session's server-to-client stream, `DELETE` ends the session. POSTs of the stateless
//! revision (2026-07-28) need no session ([`stateless`]).

mod stateless;

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use vault_actors::mcp::jsonrpc::{
    result_response, Message, RpcError, INTERNAL_ERROR, INVALID_REQUEST, QUOTA_EXCEEDED,
};
use vault_actors::mcp::protocol;
use vault_actors::ActorError;

use super::client::RequestOrigin;
use super::error::{actor_error, json_error, rpc_error};
use super::extract::{accepts, not_acceptable, Authenticated, RpcBody};
use super::observe::RpcCall;
use super::session_id::Presented;
use super::AppState;
use crate::audit::Origin;

const SESSION_HEADER: &str = "mcp-session-id";
pub(crate) const VERSION_HEADER: &str = "mcp-protocol-version";
/// Notifications a POST's stream may hold before the actor waits for the client to read them.
const EVENT_BUFFER: usize = 64;

fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The actor's id of the session `presented` by `caller`; `None` — audited — for an id minted
/// for another user or never minted here, which the caller answers with the same 404 as an
/// unknown session, so that nothing about other users' sessions leaks.
fn own_session(
    state: &AppState,
    caller: &vault_actors::Caller,
    origin: &Origin,
    presented: &str,
) -> Option<String> {
    let user = caller.user.as_str();
    match state.session_ids.check(presented, &caller.user) {
        Presented::Own(inner) | Presented::Legacy(inner) => return Some(inner),
        Presented::Foreign => {
            let detail = json!({ "reason": "a session id of another user" });
            state
                .audit
                .record("foreign_session", Some(user), origin, detail);
        }
        Presented::Forged => {
            let detail = json!({ "reason": "a session id not minted here, or altered" });
            state
                .audit
                .record("unknown_session", Some(user), origin, detail);
        }
    }
    None
}

fn missing_session(id: &Value) -> Response {
    rpc_error(
        StatusCode::BAD_REQUEST,
        id,
        RpcError::new(
            INVALID_REQUEST,
            "missing Mcp-Session-Id header: send initialize first and echo the session id it returns",
        ),
    )
}

/// `POST /mcp`. The response carries what was asked ([`RpcCall`]) for the request metrics.
pub async fn post(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    RequestOrigin(origin): RequestOrigin,
    headers: HeaderMap,
    body: RpcBody,
) -> Response {
    let call = RpcCall::of(&body.messages, body.batch);
    let mut resp = run_post(state, caller, origin, headers, body).await;
    resp.extensions_mut().insert(call);
    resp
}

async fn run_post(
    state: AppState,
    caller: vault_actors::Caller,
    origin: Origin,
    headers: HeaderMap,
    body: RpcBody,
) -> Response {
    if !(accepts(&headers, "application/json") && accepts(&headers, "text/event-stream")) {
        return not_acceptable("both application/json and text/event-stream");
    }
    let id = body.error_id();
    if stateless::is_stateless(&headers, &body, session_id(&headers).is_some()) {
        return match stateless::check(&headers, body) {
            stateless::Checked::Run(request) => {
                run_stateless(&state, caller, origin, request).await
            }
            stateless::Checked::Answer(resp) => resp,
        };
    }
    // A client of the stateless revision's drafts probes with server/discover (stamped with its own version):
    // answer so that it falls back to initialize at once.
    if let (false, [Message::Request { id, method, params }]) =
        (body.batch, body.messages.as_slice())
    {
        if method == "server/discover" {
            let requested = params
                .as_ref()
                .and_then(|p| p.get("protocolVersion"))
                .and_then(Value::as_str)
                .or_else(|| headers.get(VERSION_HEADER).and_then(|v| v.to_str().ok()))
                .unwrap_or("");
            return Json(protocol::discover_fallback(requested).to_response(id)).into_response();
        }
    }
    if let Some(v) = headers.get(VERSION_HEADER) {
        let v = v.to_str().unwrap_or("");
        if !protocol::is_supported(v) {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                &id,
                RpcError::new(
                    INVALID_REQUEST,
                    format!(
                        "unsupported MCP-Protocol-Version {v:?}; supported: {}",
                        protocol::SUPPORTED_VERSIONS.join(", ")
                    ),
                ),
            );
        }
    }
    let has_initialize = body
        .messages
        .iter()
        .any(|m| m.method() == Some("initialize"));
    if has_initialize {
        let (false, [Message::Request { id, params, .. }]) = (body.batch, body.messages.as_slice())
        else {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                &Value::Null,
                RpcError::new(
                    INVALID_REQUEST,
                    "initialize must be sent alone, as a request",
                ),
            );
        };
        let caller_user = caller.user.clone();
        return match state
            .supervisor
            .initialize(caller, id.clone(), params.clone())
            .await
        {
            Ok(init) => {
                let mut resp = Json(init.response).into_response();
                let sid = init
                    .session_id
                    .map(|inner| state.session_ids.wrap(&inner, &caller_user));
                if let Some(sid) = sid.and_then(|s| HeaderValue::from_str(&s).ok()) {
                    resp.headers_mut().insert(SESSION_HEADER, sid);
                }
                resp
            }
            Err(e) => actor_error(id, e),
        };
    }
    let Some(presented) = session_id(&headers) else {
        return missing_session(&id);
    };
    let Some(sid) = own_session(&state, &caller, &origin, &presented) else {
        return actor_error(&id, ActorError::UnknownSession);
    };
    answer_post(&state, caller, origin, sid, body, id).await
}

/// Run a stateless request on the user's actor; its answer's status follows the revision
/// (404 for a method it does not have).
async fn run_stateless(
    state: &AppState,
    caller: vault_actors::Caller,
    origin: Origin,
    mut request: vault_actors::messages::StatelessRequest,
) -> Response {
    if request.method == "subscriptions/listen" {
        return run_listen(state, caller, request).await;
    }
    let id = request.id.clone();
    let ids = state.session_ids.clone();
    if let Err(refused) = stateless::unbind_state(&ids, &caller.user, &mut request) {
        let (event, reason) = match refused {
            stateless::StateRefused::Foreign => (
                "foreign_request_state",
                "a requestState issued to another user",
            ),
            stateless::StateRefused::Forged => (
                "unknown_request_state",
                "a requestState not issued here, or altered",
            ),
        };
        let detail = json!({ "reason": reason });
        state
            .audit
            .record(event, Some(caller.user.as_str()), &origin, detail);
        return rpc_error(
            StatusCode::BAD_REQUEST,
            &id,
            RpcError::new(
                vault_actors::mcp::jsonrpc::INVALID_PARAMS,
                "requestState was not issued to this user by this server",
            ),
        );
    }
    let (tx, rx) = mpsc::channel::<Value>(EVENT_BUFFER);
    let supervisor = state.supervisor.clone();
    let audit = state.audit.clone();
    let call = async move {
        let user = caller.user.clone();
        let result = supervisor
            .stateless(caller, request, Some(tx))
            .await
            .map(|mut answer| {
                stateless::bind_state(&ids, &user, &mut answer);
                Some(answer)
            });
        audit_outcome(&audit, user.as_str(), &origin, &result);
        result
    };
    respond(state, rx, call, id, stateless::status_of).await
}

/// `subscriptions/listen`: an SSE stream that starts with the acknowledgment and carries the
/// change notifications the filter asked for until the client leaves or the server stops.
async fn run_listen(
    state: &AppState,
    caller: vault_actors::Caller,
    request: vault_actors::messages::StatelessRequest,
) -> Response {
    let id = request.id.clone();
    let listening = match state.supervisor.listen(caller, request).await {
        Ok(Ok(listening)) => listening,
        // Over quota: answered like an `initialize` over quota; a malformed filter: 400.
        Ok(Err(refused)) if refused.code == QUOTA_EXCEEDED => {
            return Json(refused.to_response(&id)).into_response()
        }
        Ok(Err(refused)) => return rpc_error(StatusCode::BAD_REQUEST, &id, refused),
        Err(e) => return actor_error(&id, e),
    };
    let vault_actors::mcp::listen::Listening {
        acknowledged,
        events,
        delivery,
        guard,
    } = listening;
    // The guard lives as long as the stream: a client that leaves unregisters its listener.
    let changes = ReceiverStream::new(events).filter_map(move |event| {
        let _registered = &guard;
        futures_util::future::ready(delivery.stamp(event))
    });
    let shutdown = state.shutdown.clone();
    // A server that stops ends the subscription with its (empty) answer, so that the client
    // knows it was not a dropped connection.
    let ended = result_response(&id, json!({ "resultType": "complete" }));
    let events = futures_util::stream::once(futures_util::future::ready(acknowledged))
        .chain(changes)
        .take_until(async move { shutdown.cancelled().await })
        .chain(futures_util::stream::once(futures_util::future::ready(
            ended,
        )))
        .map(sse_event);
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// Run a POST and choose its response shape from what the actor does: a plain JSON answer
/// when nothing comes before it, an SSE stream as soon as a notification or a server-to-client
/// request has to go out first (the answer is then the stream's last event).
async fn answer_post(
    state: &AppState,
    caller: vault_actors::Caller,
    origin: Origin,
    sid: String,
    body: RpcBody,
    id: Value,
) -> Response {
    let (tx, rx) = mpsc::channel::<Value>(EVENT_BUFFER);
    let supervisor = state.supervisor.clone();
    let audit = state.audit.clone();
    let call = async move {
        let user = caller.user.clone();
        let result = supervisor
            .post(caller, sid, body.messages, body.batch, Some(tx))
            .await;
        audit_outcome(&audit, user.as_str(), &origin, &result);
        result
    };
    respond(state, rx, call, id, |_| StatusCode::OK).await
}

/// Wait for the first of `call`'s answer and its first event: the answer alone goes out as
/// plain JSON (with the status `status` gives it), anything else as an SSE stream.
async fn respond(
    state: &AppState,
    mut rx: mpsc::Receiver<Value>,
    call: impl std::future::Future<Output = Result<Option<Value>, ActorError>> + Send + 'static,
    id: Value,
    status: fn(&Value) -> StatusCode,
) -> Response {
    let mut call = Box::pin(call);
    tokio::select! {
        biased;
        first = rx.recv() => match first {
            Some(event) => stream_answer(state, event, rx, call, id),
            None => plain_answer(call.await, &id, status),
        },
        result = &mut call => {
            // The answer is ready, so everything sent before it is already queued.
            let mut early = Vec::new();
            while let Ok(event) = rx.try_recv() {
                early.push(event);
            }
            if early.is_empty() {
                plain_answer(result, &id, status)
            } else {
                early.extend(final_event(result, &id));
                let events = futures_util::stream::iter(early.into_iter().map(sse_event));
                Sse::new(events).into_response()
            }
        }
    }
}

/// Tool and protocol refusals that belong in the audit log: paths refused as invalid or
/// escaping the vault, quota hits, missing scopes, and session ids the caller's actor does not
/// know.
const AUDITED_CODES: [&str; 3] = ["invalid_path", "quota_exceeded", "insufficient_scope"];

fn audit_outcome(
    audit: &crate::audit::Audit,
    user: &str,
    origin: &Origin,
    result: &Result<Option<Value>, ActorError>,
) {
    match result {
        Ok(Some(Value::Array(answers))) => {
            for answer in answers {
                audit_answer(audit, user, origin, answer);
            }
        }
        Ok(Some(answer)) => audit_answer(audit, user, origin, answer),
        Ok(None) => {}
        Err(ActorError::UnknownSession) => {
            let detail = json!({ "reason": "unknown, expired or ended session id" });
            audit.record("unknown_session", Some(user), origin, detail);
        }
        Err(_) => {}
    }
}

fn audit_answer(audit: &crate::audit::Audit, user: &str, origin: &Origin, answer: &Value) {
    let details = match (
        answer.pointer("/result/isError"),
        answer.pointer("/error/data"),
    ) {
        (Some(Value::Bool(true)), _) => answer.pointer("/result/structuredContent"),
        (_, Some(data)) => Some(data),
        _ => None,
    };
    let Some(details) = details else {
        return;
    };
    if let Some(code) = details
        .get("code")
        .and_then(Value::as_str)
        .filter(|c| AUDITED_CODES.contains(c))
    {
        audit.record(code, Some(user), origin, details.clone());
    }
}

fn plain_answer(
    result: Result<Option<Value>, ActorError>,
    id: &Value,
    status: fn(&Value) -> StatusCode,
) -> Response {
    match result {
        Ok(Some(answer)) => (status(&answer), Json(answer)).into_response(),
        Ok(None) => StatusCode::ACCEPTED.into_response(),
        Err(e) => actor_error(id, e),
    }
}

/// The last event of a streamed answer: the JSON-RPC answer, or the error in JSON-RPC form
/// (the HTTP status is already sent).
fn final_event(result: Result<Option<Value>, ActorError>, id: &Value) -> Option<Value> {
    match result {
        Ok(answer) => answer,
        Err(e) => Some(RpcError::new(INTERNAL_ERROR, e.to_string()).to_response(id)),
    }
}

fn sse_event(msg: Value) -> Result<Event, Infallible> {
    Ok(Event::default().event("message").data(msg.to_string()))
}

fn stream_answer(
    state: &AppState,
    first: Value,
    mut rx: mpsc::Receiver<Value>,
    call: impl std::future::Future<Output = Result<Option<Value>, ActorError>> + Send + 'static,
    id: Value,
) -> Response {
    let (out, out_rx) = mpsc::channel::<Value>(EVENT_BUFFER);
    tokio::spawn(async move {
        // A client that goes away does not cancel the work (MCP: disconnect is not
        // cancellation); its events are simply dropped.
        let _ = out.send(first).await;
        let forward = async {
            while let Some(event) = rx.recv().await {
                let _ = out.send(event).await;
            }
        };
        let (result, ()) = tokio::join!(call, forward);
        if let Some(last) = final_event(result, &id) {
            let _ = out.send(last).await;
        }
    });
    let shutdown = state.shutdown.clone();
    let events = ReceiverStream::new(out_rx)
        .map(sse_event)
        .take_until(async move { shutdown.cancelled().await });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// `GET /mcp`: the session's stream of server-to-client messages.
pub async fn open_stream(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    RequestOrigin(origin): RequestOrigin,
    headers: HeaderMap,
) -> Response {
    if !accepts(&headers, "text/event-stream") {
        return not_acceptable("text/event-stream");
    }
    let Some(presented) = session_id(&headers) else {
        return missing_session(&Value::Null);
    };
    let Some(sid) = own_session(&state, &caller, &origin, &presented) else {
        return actor_error(&Value::Null, ActorError::UnknownSession);
    };
    let rx = match state.supervisor.open_stream(&caller, sid).await {
        Ok(rx) => rx,
        Err(e) => return actor_error(&Value::Null, e),
    };
    let shutdown = state.shutdown.clone();
    let events = ReceiverStream::new(rx)
        .map(sse_event)
        .take_until(async move { shutdown.cancelled().await });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// `DELETE /mcp`: end the session.
pub async fn end_session(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    RequestOrigin(origin): RequestOrigin,
    headers: HeaderMap,
) -> Response {
    let Some(presented) = session_id(&headers) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "missing_session",
            "missing Mcp-Session-Id header",
        );
    };
    let Some(sid) = own_session(&state, &caller, &origin, &presented) else {
        return actor_error(&Value::Null, ActorError::UnknownSession);
    };
    match state.supervisor.end_session(&caller, sid).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => actor_error(&Value::Null, e),
    }
}
