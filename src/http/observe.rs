//! What operators see: the request metrics layer, `/metrics` (on the main port behind
//! `METRICS_TOKEN`, or on its own listener), and `/ready`.
//!
//! Labels come from bounded sets only: the route template axum matched (never the raw path),
//! the HTTP method, and for `POST /mcp` the JSON-RPC method and catalog tool name that
//! [`RpcCall`] carries out of the handler in the response's extensions.

use std::path::Path;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{json, Map, Value};
use vault_actors::mcp::jsonrpc::Message;
use vault_actors::mcp::tools;

use super::session::same_secret;
use super::AppState;
use crate::accounts::digest;
use crate::health::Readiness;

/// The supervisor's answer for the scrape-time gauges is awaited at most this long.
const STATS_TIMEOUT: Duration = Duration::from_secs(1);

/// JSON-RPC methods a client sends us; anything else is counted as `other`.
const RPC_METHODS: [&str; 18] = [
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/roots/list_changed",
    "server/discover",
    "subscriptions/listen",
];

/// The operators' side of the state: the metrics handle, the token, the readiness checks.
pub struct Observe {
    pub handle: PrometheusHandle,
    /// SHA-256 of `METRICS_TOKEN` (hex), compared in constant time; `None`: `/metrics` on the
    /// main port is 404.
    token_digest: Option<String>,
    pub readiness: Readiness,
}

impl Observe {
    pub fn new(handle: PrometheusHandle, token: Option<&str>, data_dir: &Path) -> Self {
        Observe {
            handle,
            token_digest: token.map(digest),
            readiness: Readiness::new(data_dir),
        }
    }
}

/// What a `POST /mcp` asked for, as metric labels: set by the handler on its response.
#[derive(Debug, Clone, Copy)]
pub struct RpcCall {
    pub method: &'static str,
    pub tool: &'static str,
}

impl RpcCall {
    const NONE: RpcCall = RpcCall {
        method: "none",
        tool: "none",
    };

    /// The labels of a posted payload: the one message's method (and, for `tools/call`, the
    /// tool if the catalog has it), `batch` for a batch, `response` for a client's answer.
    pub fn of(messages: &[Message], batch: bool) -> Self {
        let method = |m: &str| RPC_METHODS.iter().find(|k| **k == m).copied();
        match (batch, messages) {
            (true, _) => RpcCall {
                method: "batch",
                tool: "none",
            },
            (
                false,
                [Message::Request {
                    method: m, params, ..
                }],
            ) => {
                let tool = (m == "tools/call").then(|| {
                    params
                        .as_ref()
                        .and_then(|p| p.get("name"))
                        .and_then(Value::as_str)
                        .and_then(tools::find)
                        .map_or("other", |t| t.name)
                });
                RpcCall {
                    method: method(m).unwrap_or("other"),
                    tool: tool.unwrap_or("none"),
                }
            }
            (false, [Message::Notification { method: m, .. }]) => RpcCall {
                method: method(m).unwrap_or("other"),
                tool: "none",
            },
            (false, [Message::Response { .. }]) => RpcCall {
                method: "response",
                tool: "none",
            },
            _ => RpcCall::NONE,
        }
    }
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Layer: count every request by method, route template, JSON-RPC method, tool and status, and
/// time it to the response head.
pub async fn record(req: Request, next: Next) -> Response {
    static OTHER: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from("other"));
    let started = Instant::now();
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| OTHER.clone(), |p| Arc::from(p.as_str()));
    let resp = next.run(req).await;
    let call = resp
        .extensions()
        .get::<RpcCall>()
        .copied()
        .unwrap_or(RpcCall::NONE);
    crate::metrics::request(
        method,
        route,
        call.method,
        call.tool,
        resp.status().as_u16(),
        started.elapsed(),
    );
    resp
}

/// Count a request the overload layers refused (408, 503) before it reached a route.
pub fn refused(method: &Method, status: StatusCode, elapsed: std::time::Duration) {
    static OTHER: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from("other"));
    crate::metrics::request(
        method_label(method),
        OTHER.clone(),
        RpcCall::NONE.method,
        RpcCall::NONE.tool,
        status.as_u16(),
        elapsed,
    );
}

/// `GET /metrics` on the main port: only with `Authorization: Bearer <METRICS_TOKEN>`, and
/// not there at all without one.
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(expected) = &state.observe.token_digest else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    if !given.is_some_and(|t| same_secret(&digest(t), expected)) {
        let mut resp = StatusCode::UNAUTHORIZED.into_response();
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"metrics\""),
        );
        return resp;
    }
    render(&state).await
}

/// `GET /metrics` on the metrics listener: no token (it is reachable only from where the
/// operator bound it).
async fn open_metrics(State(state): State<AppState>) -> Response {
    render(&state).await
}

async fn render(state: &AppState) -> Response {
    let stats = tokio::time::timeout(STATS_TIMEOUT, state.supervisor.try_stats())
        .await
        .ok()
        .flatten();
    if stats.is_none() {
        tracing::warn!("the supervisor did not answer a scrape; its gauges keep their last values");
    }
    let text = crate::metrics::render(&state.observe.handle, stats);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// The metrics listener's whole router: `/metrics`, nothing else.
pub fn metrics_only(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(open_metrics))
        .with_state(state)
}

/// `GET /ready`: 200 `{"ready":true,...}` when every check passes, else 503 naming what failed.
pub async fn ready(State(state): State<AppState>) -> Response {
    let report = state
        .observe
        .readiness
        .check(
            &state.supervisor,
            &state.accounts,
            state.shutdown.is_cancelled(),
        )
        .await;
    let checks: Map<String, Value> = report
        .checks
        .iter()
        .map(|(name, r)| {
            let v = match r {
                Ok(()) => json!("ok"),
                Err(e) => json!(e),
            };
            (name.to_string(), v)
        })
        .collect();
    let status = if report.ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({ "ready": report.ready(), "checks": checks })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(v: Value) -> RpcCall {
        let batch = v.is_array();
        let items = match v {
            Value::Array(items) => items,
            one => vec![one],
        };
        let messages: Vec<Message> = items
            .into_iter()
            .map(|m| Message::parse(m).unwrap())
            .collect();
        RpcCall::of(&messages, batch)
    }

    #[test]
    fn rpc_labels_come_from_bounded_sets() {
        let c = call(
            json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_note"}}),
        );
        assert_eq!((c.method, c.tool), ("tools/call", "read_note"));
        let c =
            call(json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x-9f3a"}}));
        assert_eq!((c.method, c.tool), ("tools/call", "other"));
        let c = call(json!({"jsonrpc":"2.0","id":1,"method":"made/up"}));
        assert_eq!((c.method, c.tool), ("other", "none"));
        for stateless in ["server/discover", "subscriptions/listen"] {
            let c = call(json!({"jsonrpc":"2.0","id":1,"method":stateless}));
            assert_eq!(c.method, stateless);
        }
        let c = call(json!({"jsonrpc":"2.0","method":"notifications/initialized"}));
        assert_eq!(c.method, "notifications/initialized");
        let c = call(json!([{"jsonrpc":"2.0","id":1,"method":"ping"}]));
        assert_eq!(c.method, "batch");
    }
}
