//! Who is calling, as far as the request shows: the client IP (behind a proxy too) and the user
//! agent, for rate limits and the audit log. Below every handler and extractor.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};

use super::limits::Limited;
use super::AppState;
use crate::audit::Origin;

/// The client's IP: the peer, or — when the peer is a proxy on a private address, as on a
/// Space — the last address the proxy appended to `X-Forwarded-For`.
pub fn client_ip(headers: &HeaderMap, peer: Option<SocketAddr>) -> IpAddr {
    let peer_ip = peer.map_or(IpAddr::from([0, 0, 0, 0]), |p| p.ip());
    if crate::client_metadata::is_public(peer_ip) {
        return peer_ip;
    }
    headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|ip| ip.trim().parse().ok())
        .unwrap_or(peer_ip)
}

/// Where a request comes from, for the audit log: the client IP (see [`client_ip`]) and its
/// user agent.
pub fn origin_of(parts: &Parts) -> Origin {
    Origin::new(
        ip_of(parts),
        parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok()),
    )
}

/// The request's [`Origin`], as an extractor.
pub struct RequestOrigin(pub Origin);

impl<S: Send + Sync> FromRequestParts<S> for RequestOrigin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(RequestOrigin(origin_of(parts)))
    }
}

/// Record a rate-limit refusal in the audit log and answer it: 429 with `Retry-After`,
/// JSON-RPC shaped on `/mcp`.
pub fn refuse_limited(
    state: &AppState,
    parts: &Parts,
    user: Option<&str>,
    limited: &Limited,
) -> axum::response::Response {
    let detail = serde_json::json!({
        "scope": limited.scope,
        "retry_after": limited.retry_after_secs,
        "path": parts.uri.path(),
    });
    state
        .audit
        .record("rate_limited", user, &origin_of(parts), detail);
    limited.response(parts.uri.path() == "/mcp")
}

/// Count one request of a signed-in `user` against their rate; over it, the refusal to send.
pub fn admit(
    state: &AppState,
    parts: &Parts,
    user: &vault_actors::UserId,
) -> Option<axum::response::Response> {
    let limited = state.limits.user_request(user).err()?;
    Some(refuse_limited(state, parts, Some(user.as_str()), &limited))
}

/// The request's client IP (see [`client_ip`]), as an extractor.
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(ip_of(parts)))
    }
}

/// The client IP of the request in `parts` (see [`client_ip`]).
pub fn ip_of(parts: &Parts) -> IpAddr {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(p)| *p);
    client_ip(&parts.headers, peer)
}
