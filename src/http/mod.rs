//! The HTTP front: routes, shared state and the layers every request passes through.
//!
//! The front knows HTTP and the MCP transport (headers, status codes, SSE framing, the session
//! header); it never touches a vault file or SQL. It turns a request into a call on the
//! [`Supervisor`] and the actor's reply into a response.

mod account_data;
mod client;
mod error;
mod extract;
pub mod limits;
mod login;
mod mcp;
mod oauth;
pub mod observe;
mod origin;
pub mod session;
mod session_id;
mod tokens;
mod web;
mod wellknown;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use axum::{middleware, BoxError, Router};
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use vault_actors::Supervisor;

use crate::accounts::AccountStore;
use crate::auth::TokenKeys;
pub use oauth::OAuthServer;
pub use session::{LoginKind, WebState};
pub use session_id::SessionIds;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub supervisor: Supervisor,
    pub keys: Arc<TokenKeys>,
    /// Binds the MCP session ids and request states handed out to their user (keyed once from
    /// `keys`).
    pub session_ids: Arc<SessionIds>,
    /// The URL clients use, without a trailing slash (e.g. `http://127.0.0.1:7860`).
    pub public_url: Arc<str>,
    /// Exact `Origin` values accepted from browsers.
    pub allowed_origins: Arc<HashSet<String>>,
    pub max_body_bytes: usize,
    pub max_json_depth: usize,
    /// Most working tokens a person may make on the account page (`tokens_per_user`).
    pub max_tokens_per_user: usize,
    /// How people sign in to the web page.
    pub login: LoginKind,
    /// The append-only record of security events.
    pub audit: Arc<crate::audit::Audit>,
    /// Per-user and per-IP rate limits.
    pub limits: Arc<limits::RateLimits>,
    /// The OAuth authorization server's in-memory state.
    pub oauth: Arc<OAuthServer>,
    /// Web sessions and issued tokens.
    pub accounts: AccountStore,
    /// How people sign in to the page, and the state of sign-ins in progress.
    pub web: Arc<WebState>,
    /// Cancelled at shutdown, so open SSE streams end and the server can drain.
    pub shutdown: CancellationToken,
    /// Metrics handle, `METRICS_TOKEN` and readiness checks.
    pub observe: Arc<observe::Observe>,
    /// Where users' files live, for export, import and account deletion.
    pub storage: Arc<crate::account_data::Storage>,
}

/// Limits applied in front of all work.
pub struct Layers {
    pub request_timeout: Duration,
    pub max_in_flight: usize,
}

/// Signing in and out, and the tokens people manage from the page; the web app's security
/// headers apply to them as to its pages.
fn people_routes() -> Router<AppState> {
    Router::new()
        .route("/login", get(login::start))
        .route("/login/callback", get(login::callback))
        .route("/login/local", get(login::local))
        .route("/login/handoff", post(login::handoff))
        .route("/logout", post(login::logout))
        .route("/api/tokens", get(tokens::list).post(tokens::create))
        .route("/api/tokens/refresh", post(tokens::refresh))
        .route("/api/tokens/{id}", delete(tokens::revoke))
        .route("/authorize", get(oauth::authorize).post(oauth::decide))
        .route("/api/clients", get(oauth::clients))
        .route("/api/clients/{id}", delete(oauth::disconnect))
        .route("/api/export", get(account_data::export))
        .route("/api/import", post(account_data::import))
        .route("/api/account/delete", post(account_data::delete))
        .layer(middleware::from_fn(web::security_headers))
}

/// The authorization server's machine endpoints (JSON for clients, no pages).
fn oauth_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(oauth::metadata),
        )
        .route("/.well-known/openid-configuration", get(oauth::metadata))
        .route("/register", post(oauth::register))
        .route("/token", post(oauth::token))
        .route("/revoke", post(oauth::revoke))
}

/// The application's routes, with their layers.
pub fn router(state: AppState, layers: Layers) -> Router {
    let shutdown = state.shutdown.clone();
    let routes = Router::new()
        .route(
            "/mcp",
            get(mcp::open_stream)
                .post(mcp::post)
                .delete(mcp::end_session),
        )
        .route(
            "/.well-known/oauth-protected-resource",
            get(wellknown::protected_resource),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(wellknown::protected_resource),
        )
        .route("/health", get(|| async { "ok" }))
        .route("/ready", get(observe::ready))
        .route("/metrics", get(observe::metrics))
        .merge(people_routes())
        .merge(oauth_routes())
        .merge(web::routes())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            origin::check_origin,
        ))
        // Inside the router, where the matched route template is known.
        .layer(middleware::from_fn(observe::record))
        .with_state(state);
    // Around the whole router, so that `max_in_flight` is one limit for the process:
    // `Router::layer` would give every route (and method) a limit of its own.
    let timeout = layers.request_timeout;
    let guarded = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(
            move |method: Method, uri: Uri, err: BoxError| async move {
                let (resp, took) = if err.is::<tower::timeout::error::Elapsed>() {
                    (error::timed_out(uri.path() == "/mcp"), timeout)
                } else {
                    let resp = error::json_error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "overloaded",
                        "the server is at capacity; retry shortly",
                    );
                    (resp.into_response(), std::time::Duration::ZERO)
                };
                observe::refused(&method, resp.status(), took);
                resp
            },
        ))
        .load_shed()
        .concurrency_limit(layers.max_in_flight)
        .timeout(layers.request_timeout)
        .service(routes);
    Router::new()
        .fallback_service(guarded)
        .layer(middleware::from_fn_with_state(
            shutdown,
            close_when_draining,
        ))
}

/// Once shutdown has begun, every answer asks its client to close the connection. The server
/// goes on answering for a short drain (see `app`), so a client never writes a request onto a
/// kept-alive connection just as the server closes it as idle: that request would be lost.
async fn close_when_draining(
    State(shutdown): State<CancellationToken>,
    request: axum::extract::Request,
    next: middleware::Next,
) -> axum::response::Response {
    let mut response = next.run(request).await;
    if shutdown.is_cancelled() {
        response.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    response
}
