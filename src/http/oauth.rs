//! vault-mcp as the OAuth 2.1 authorization server of its own MCP endpoint, so a client that
//! knows only the URL can connect: discovery (RFC 8414), client registration (Client ID
//! Metadata Documents and RFC 7591), `/authorize` with PKCE S256 and a consent page, `/token`
//! (authorization code and rotating refresh tokens), and revocation (RFC 7009).
//!
//! The person behind a grant is the signed-in web user (Hugging Face on a Space, `local`
//! locally). Access tokens are this server's own JWTs, with the MCP endpoint as audience
//! (RFC 8707) and the grant's id, so disconnecting the client stops them at once. Codes and
//! tokens never appear in a log.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Form, Json};
use base64::Engine;
use maud::html;
use reqwest::Url;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use vault_actors::UserId;

use super::client::{ClientIp, RequestOrigin};
use super::error::json_error;
use super::extract::{BadJson, JsonBody};
use super::login::message_page;
use super::session::{csrf_refused, same_secret, url_encode, MaybeSignedIn, WebApi};
use super::AppState;
use crate::accounts::digest;
use crate::accounts::oauth::{Grant, Refresh, RegisteredClient};
use crate::auth::{now_secs, random_id};
use crate::client_metadata::MetadataFetcher;
use crate::config::OAuthConfig;

/// Scopes this server knows, in the order the consent page lists them.
pub const SCOPES: [&str; 2] = ["notes:read", "notes:write"];
/// How long an authorization code may wait to be traded (OAuth 2.1: short).
const CODE_TTL: Duration = Duration::from_secs(60);
/// How long a consent page may stay open.
const CONSENT_TTL: Duration = Duration::from_secs(600);
/// Pending codes and consent pages kept at most (unauthenticated requests create them).
const MAX_PENDING: usize = 10_000;
/// Longest client name kept.
const MAX_NAME_CHARS: usize = 100;
/// Most redirect URIs one registration may list.
const MAX_REDIRECT_URIS: usize = 10;

/// A validated authorization request, waiting for the person's decision or for its code.
#[derive(Debug, Clone)]
struct Authorization {
    client_id: String,
    client_name: String,
    redirect_uri: String,
    state: String,
    code_challenge: String,
    scope: String,
    resource: String,
    user: Option<UserId>,
}

/// The authorization server's state: fetched client documents, open consent pages, unused
/// codes, and registrations counted per client IP.
pub struct OAuthServer {
    pub config: OAuthConfig,
    fetcher: MetadataFetcher,
    consents: Mutex<HashMap<String, (Authorization, Instant)>>,
    codes: Mutex<HashMap<String, (Authorization, Instant)>>,
    registrations: Mutex<HashMap<IpAddr, Vec<Instant>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Each use is one map call: a poisoned lock holds a consistent map.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Keep a pending item under `key`, forgetting expired ones (and all, past the bound).
fn keep(
    map: &Mutex<HashMap<String, (Authorization, Instant)>>,
    ttl: Duration,
    key: String,
    item: Authorization,
) {
    let mut map = lock(map);
    map.retain(|_, (_, at)| at.elapsed() < ttl);
    if map.len() >= MAX_PENDING {
        map.clear();
    }
    map.insert(key, (item, Instant::now()));
}

fn take(
    map: &Mutex<HashMap<String, (Authorization, Instant)>>,
    ttl: Duration,
    key: &str,
) -> Option<Authorization> {
    lock(map)
        .remove(key)
        .filter(|(_, at)| at.elapsed() < ttl)
        .map(|(a, _)| a)
}

impl OAuthServer {
    pub fn new(config: OAuthConfig) -> Self {
        OAuthServer {
            fetcher: MetadataFetcher::new(config.metadata_http_hosts.clone()),
            config,
            consents: Mutex::default(),
            codes: Mutex::default(),
            registrations: Mutex::default(),
        }
    }

    /// Count a registration from `ip`; the seconds to wait when over the hourly limit.
    fn registration_allowed(&self, ip: IpAddr) -> Result<(), u64> {
        let hour = Duration::from_secs(3600);
        let mut seen = lock(&self.registrations);
        seen.retain(|_, times| times.last().is_some_and(|t| t.elapsed() < hour));
        let times = seen.entry(ip).or_default();
        times.retain(|t| t.elapsed() < hour);
        if times.len() >= self.config.registrations_per_hour {
            let oldest = times
                .first()
                .map_or(hour, |t| hour.saturating_sub(t.elapsed()));
            return Err(oldest.as_secs().max(1));
        }
        times.push(Instant::now());
        Ok(())
    }
}

/// The MCP endpoint: the one resource this server issues tokens for.
pub fn resource_of(state: &AppState) -> String {
    format!("{}/mcp", state.public_url)
}

/// `GET /.well-known/oauth-authorization-server` (and the OpenID discovery path): RFC 8414.
pub async fn metadata(State(state): State<AppState>) -> Json<Value> {
    let base = &state.public_url;
    Json(json!({
        "issuer": base.as_ref(),
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "registration_endpoint": format!("{base}/register"),
        "revocation_endpoint": format!("{base}/revoke"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": SCOPES,
        "client_id_metadata_document_supported": true,
        "authorization_response_iss_parameter_supported": true,
        "service_documentation": format!("{base}/"),
    }))
}

/// An RFC 6749 error answer from `/token`, `/register` or `/revoke`.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut resp = (
        status,
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[derive(Deserialize)]
pub struct Registration {
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    client_name: Option<String>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    grant_types: Option<Vec<String>>,
    #[serde(default)]
    response_types: Option<Vec<String>>,
}

/// Is `uri` a redirect URI a public client may register: absolute https, or http on a
/// loopback host (RFC 8252), or a private-use scheme (`app.example:/cb`); never a fragment.
fn acceptable_redirect(uri: &str) -> bool {
    let Ok(url) = Url::parse(uri) else {
        return false;
    };
    if url.fragment().is_some() {
        return false;
    }
    match url.scheme() {
        "https" => url.host_str().is_some(),
        "http" => is_loopback_url(&url),
        "javascript" | "data" | "file" | "vbscript" => false,
        // Private-use URI schemes of native apps (RFC 8252 7.1) contain a dot.
        scheme => scheme.contains('.'),
    }
}

fn is_loopback_url(url: &Url) -> bool {
    matches!(url.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"))
}

/// `POST /register`: RFC 7591 dynamic registration of a public client.
pub async fn register(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    RequestOrigin(origin): RequestOrigin,
    req: Result<JsonBody<Registration>, BadJson>,
) -> Response {
    if let Err(wait) = state.oauth.registration_allowed(ip) {
        let detail = json!({ "scope": "registrations", "retry_after": wait });
        state.audit.record("rate_limited", None, &origin, detail);
        let mut resp = oauth_error(
            StatusCode::TOO_MANY_REQUESTS,
            "temporarily_unavailable",
            "too many client registrations from this address; retry later",
        );
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait));
        return resp;
    }
    let invalid =
        |what: &str| oauth_error(StatusCode::BAD_REQUEST, "invalid_client_metadata", what);
    let req = match req {
        Ok(JsonBody(req)) => req,
        Err(bad) => return oauth_error(bad.status(), "invalid_client_metadata", &bad.message()),
    };
    if req.redirect_uris.is_empty() || req.redirect_uris.len() > MAX_REDIRECT_URIS {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_redirect_uri",
            &format!("redirect_uris must list 1 to {MAX_REDIRECT_URIS} URIs"),
        );
    }
    if let Some(bad) = req.redirect_uris.iter().find(|u| !acceptable_redirect(u)) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_redirect_uri",
            &format!("{bad:?}: a redirect URI is https, http on a loopback host, or an app's own scheme, without a fragment"),
        );
    }
    if !matches!(
        req.token_endpoint_auth_method.as_deref(),
        None | Some("none")
    ) {
        return invalid(
            "only public clients are registered here: token_endpoint_auth_method must be none",
        );
    }
    if let Some(grants) = &req.grant_types {
        if grants
            .iter()
            .any(|g| g != "authorization_code" && g != "refresh_token")
        {
            return invalid("grant_types may be authorization_code and refresh_token");
        }
    }
    if let Some(types) = &req.response_types {
        if types.iter().any(|t| t != "code") {
            return invalid("response_types may only be code");
        }
    }
    let name: String = req
        .client_name
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME_CHARS)
        .collect();
    let name = if name.trim().is_empty() {
        "unnamed client".to_string()
    } else {
        name
    };
    let client = RegisteredClient {
        client_id: format!("vmc-{}", random_id()),
        name,
        redirect_uris: req.redirect_uris,
    };
    if let Err(e) = state.accounts.register_client(client.clone()).await {
        tracing::error!(error = %e, "storing a client registration failed");
        return oauth_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "registration could not be stored; retry shortly",
        );
    }
    tracing::info!(client_id = %client.client_id, %ip, "client registered");
    let detail = json!({ "client_id": client.client_id, "name": client.name });
    state
        .audit
        .record("client_registered", None, &origin, detail);
    let mut resp = (
        StatusCode::CREATED,
        Json(json!({
            "client_id": client.client_id,
            "client_id_issued_at": now_secs(),
            "client_name": client.name,
            "redirect_uris": client.redirect_uris,
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        })),
    )
        .into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// A client as `/authorize` and `/token` know it.
struct KnownClient {
    name: String,
    redirect_uris: Vec<String>,
}

/// Look a client up: a metadata document URL is fetched (and cached), anything else must be
/// a registered client id.
async fn find_client(state: &AppState, client_id: &str) -> Result<KnownClient, String> {
    if MetadataFetcher::is_metadata_url(client_id) {
        return state
            .oauth
            .fetcher
            .fetch(client_id)
            .await
            .map(|m| KnownClient {
                name: m.name,
                redirect_uris: m.redirect_uris,
            })
            .map_err(|e| e.to_string());
    }
    match state.accounts.registered_client(client_id).await {
        Ok(Some(c)) => Ok(KnownClient {
            name: c.name,
            redirect_uris: c.redirect_uris,
        }),
        Ok(None) => Err("unknown client_id: register the client first".into()),
        Err(e) => {
            tracing::error!(error = %e, "reading a client registration failed");
            Err("the client registry is unavailable; retry shortly".into())
        }
    }
}

/// Does the request's `redirect_uri` match a registered one: exactly, or — for a loopback
/// redirect — on any port (RFC 8252 7.3).
fn redirect_matches(registered: &[String], requested: &str) -> bool {
    if registered.iter().any(|r| r == requested) {
        return true;
    }
    let Ok(req) = Url::parse(requested) else {
        return false;
    };
    if req.scheme() != "http" || !is_loopback_url(&req) {
        return false;
    }
    registered
        .iter()
        .filter_map(|r| Url::parse(r).ok())
        .any(|r| {
            r.scheme() == "http"
                && r.host_str() == req.host_str()
                && r.path() == req.path()
                && r.query() == req.query()
        })
}

/// The audience a client asked for with `resource` (RFC 8707): this MCP endpoint, or nothing.
fn check_resource(state: &AppState, resource: Option<&str>) -> Result<String, String> {
    let ours = resource_of(state);
    match resource {
        None => Ok(ours),
        Some(r) if r.trim_end_matches('/') == ours => Ok(ours),
        Some(r) => Err(format!(
            "resource {r:?} is not served here; this server's MCP endpoint is {ours}"
        )),
    }
}

/// Requested scopes, checked; none asked means all.
fn check_scope(scope: Option<&str>) -> Result<String, String> {
    let asked: Vec<&str> = scope.unwrap_or("").split_whitespace().collect();
    if asked.is_empty() {
        return Ok(SCOPES.join(" "));
    }
    if let Some(bad) = asked.iter().find(|s| !SCOPES.contains(s)) {
        return Err(format!(
            "unknown scope {bad:?}; known: {}",
            SCOPES.join(" ")
        ));
    }
    Ok(SCOPES
        .iter()
        .filter(|s| asked.contains(s))
        .copied()
        .collect::<Vec<_>>()
        .join(" "))
}

/// Send the browser back to the client with an error (the client and redirect are trusted).
fn redirect_error(state: &AppState, a: &Authorization, error: &str, description: &str) -> Response {
    let mut url = a.redirect_uri.clone();
    url.push(if url.contains('?') { '&' } else { '?' });
    url.push_str(&format!(
        "error={error}&error_description={}&state={}&iss={}",
        url_encode(description),
        url_encode(&a.state),
        url_encode(&state.public_url)
    ));
    Redirect::to(&url).into_response()
}

fn refused_page(status: StatusCode, reason: &str) -> Response {
    message_page(
        status,
        "This connection request cannot be used",
        html! {
            p class="error" { (reason) }
            p { "Nothing was granted. Go back to the application and connect again." }
        },
    )
}

/// `GET /authorize`: check the request, make sure a person is signed in, then ask them.
pub async fn authorize(
    State(state): State<AppState>,
    MaybeSignedIn(user): MaybeSignedIn,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let Some(client_id) = get("client_id") else {
        return refused_page(StatusCode::BAD_REQUEST, "the request names no client_id");
    };
    let client = match find_client(&state, client_id).await {
        Ok(c) => c,
        Err(reason) => return refused_page(StatusCode::BAD_REQUEST, &reason),
    };
    let Some(redirect_uri) = get("redirect_uri") else {
        return refused_page(StatusCode::BAD_REQUEST, "the request names no redirect_uri");
    };
    if !redirect_matches(&client.redirect_uris, redirect_uri) {
        return refused_page(
            StatusCode::BAD_REQUEST,
            &format!("the redirect_uri {redirect_uri} is not registered for this client"),
        );
    }
    let mut a = Authorization {
        client_id: client_id.to_string(),
        client_name: client.name,
        redirect_uri: redirect_uri.to_string(),
        state: get("state").unwrap_or("").to_string(),
        code_challenge: String::new(),
        scope: String::new(),
        resource: String::new(),
        user: None,
    };
    if get("response_type") != Some("code") {
        return redirect_error(
            &state,
            &a,
            "unsupported_response_type",
            "response_type must be code",
        );
    }
    if a.state.is_empty() {
        return redirect_error(&state, &a, "invalid_request", "state is required");
    }
    match (get("code_challenge"), get("code_challenge_method")) {
        (Some(c), Some("S256")) if c.len() == 43 => a.code_challenge = c.to_string(),
        _ => {
            return redirect_error(
                &state,
                &a,
                "invalid_request",
                "PKCE is required: code_challenge (S256, 43 characters) with code_challenge_method=S256",
            )
        }
    }
    a.scope = match check_scope(get("scope")) {
        Ok(s) => s,
        Err(e) => return redirect_error(&state, &a, "invalid_scope", &e),
    };
    a.resource = match check_resource(&state, get("resource")) {
        Ok(r) => r,
        Err(e) => return redirect_error(&state, &a, "invalid_target", &e),
    };
    let Some(user) = user else {
        // Sign in first, then come back to this very request.
        let query: Vec<String> = q
            .iter()
            .map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v)))
            .collect();
        let back = format!("/authorize?{}", query.join("&"));
        let to = match state.login {
            super::LoginKind::HuggingFace => format!("/login?next={}", url_encode(&back)),
            _ => format!("/?next={}", url_encode(&back)),
        };
        return Redirect::to(&to).into_response();
    };
    a.user = Some(user.caller.user.clone());
    let ticket = random_id();
    keep(
        &state.oauth.consents,
        CONSENT_TTL,
        ticket.clone(),
        a.clone(),
    );
    consent_page(&a, &ticket, &user.csrf, &user.username)
}

fn consent_page(a: &Authorization, ticket: &str, csrf: &str, username: &str) -> Response {
    let redirect_host = Url::parse(&a.redirect_uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| a.redirect_uri.clone());
    let can_write = a.scope.split_whitespace().any(|s| s == "notes:write");
    let page = html! {
        (maud::DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Connect " (a.client_name) " · vault-mcp" }
                link rel="stylesheet" href="/assets/app.css";
            }
            body {
                main class="message consent" id="consent" {
                    h1 { "Connect " span id="client-name" { (a.client_name) } " to your vault?" }
                    p class="warning" {
                        "vault-mcp has not verified this application. Its name is what it says about itself; its id is "
                        code id="client-id" { (a.client_id) } "."
                    }
                    p { "After you decide, your browser goes back to " strong id="redirect-host" { (redirect_host) } "." }
                    p { "Signed in as " strong { (username) } ". If you approve, it may:" }
                    ul id="scopes" {
                        li { "read your notes" }
                        @if can_write { li { "create, change and delete your notes" } }
                    }
                    p { "You can disconnect it at any time on your account page." }
                    form method="post" action="/authorize" {
                        input type="hidden" name="ticket" value=(ticket);
                        input type="hidden" name="csrf" value=(csrf);
                        button type="submit" name="decision" value="approve" id="approve" class="primary" { "Approve" }
                        " "
                        button type="submit" name="decision" value="deny" id="deny" { "Deny" }
                    }
                }
            }
        }
    };
    let mut resp = Html(page.into_string()).into_response();
    // Browsers check `form-action` on the redirect that follows the form, too: the decision
    // leads to the client's redirect URI, so its origin is allowed here (and only here).
    let policy = super::web::CSP.replace(
        "form-action 'self'",
        &format!("form-action 'self' {}", redirect_source(&a.redirect_uri)),
    );
    if let Ok(value) = HeaderValue::from_str(&policy) {
        resp.headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
    resp
}

/// The CSP source expression that matches a redirect URI: its origin (port included), or for
/// an app's private-use scheme, the scheme.
fn redirect_source(redirect_uri: &str) -> String {
    match Url::parse(redirect_uri) {
        Ok(url) if url.scheme() == "http" || url.scheme() == "https" => {
            url.origin().ascii_serialization()
        }
        Ok(url) => format!("{}:", url.scheme()),
        // Validated before the page is shown; an unparsable one allows nothing more.
        Err(_) => String::new(),
    }
}

#[derive(Deserialize)]
pub struct Decision {
    ticket: String,
    csrf: String,
    decision: String,
}

/// `POST /authorize`: the person's decision on the consent page.
pub async fn decide(
    State(state): State<AppState>,
    RequestOrigin(origin): RequestOrigin,
    MaybeSignedIn(user): MaybeSignedIn,
    Form(form): Form<Decision>,
) -> Response {
    let Some(user) = user else {
        return refused_page(StatusCode::UNAUTHORIZED, "you are not signed in any more");
    };
    if !same_secret(&form.csrf, &user.csrf) {
        return csrf_refused();
    }
    let Some(a) = take(&state.oauth.consents, CONSENT_TTL, &form.ticket)
        .filter(|a| a.user.as_ref() == Some(&user.caller.user))
    else {
        return refused_page(
            StatusCode::BAD_REQUEST,
            "this consent page is unknown, expired or already answered",
        );
    };
    if form.decision != "approve" {
        tracing::info!(user = %user.caller.user, client_id = %a.client_id, "connection denied");
        let detail = json!({ "client_id": a.client_id, "name": a.client_name });
        let user_id = user.caller.user.as_str();
        state
            .audit
            .record("client_denied", Some(user_id), &origin, detail);
        return redirect_error(&state, &a, "access_denied", "the person denied the request");
    }
    let code = random_id();
    let mut url = a.redirect_uri.clone();
    url.push(if url.contains('?') { '&' } else { '?' });
    url.push_str(&format!(
        "code={code}&state={}&iss={}",
        url_encode(&a.state),
        url_encode(&state.public_url)
    ));
    tracing::info!(user = %user.caller.user, client_id = %a.client_id, "connection approved");
    keep(&state.oauth.codes, CODE_TTL, digest(&code), a);
    Redirect::to(&url).into_response()
}

/// The form of a `/token` request (both grants).
#[derive(Deserialize)]
pub struct TokenRequest {
    grant_type: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    client_id: Option<String>,
    code_verifier: Option<String>,
    refresh_token: Option<String>,
    resource: Option<String>,
}

/// `POST /token`.
pub async fn token(
    State(state): State<AppState>,
    RequestOrigin(origin): RequestOrigin,
    Form(req): Form<TokenRequest>,
) -> Response {
    let Some(client_id) = req.client_id.as_deref().filter(|c| !c.is_empty()) else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client_id is required (public clients authenticate with it alone)",
        );
    };
    if let Err(reason) = find_client(&state, client_id).await {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", &reason);
    }
    if let Some(resource) = req.resource.as_deref() {
        if let Err(e) = check_resource(&state, Some(resource)) {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_target", &e);
        }
    }
    match req.grant_type.as_deref() {
        Some("authorization_code") => code_grant(&state, &origin, client_id, &req).await,
        Some("refresh_token") => refresh_grant(&state, &origin, client_id, &req).await,
        Some(other) => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            &format!("grant_type {other:?} is not supported"),
        ),
        None => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "grant_type is required",
        ),
    }
}

fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    well_formed && same_secret(&computed, challenge)
}

async fn code_grant(
    state: &AppState,
    origin: &crate::audit::Origin,
    client_id: &str,
    req: &TokenRequest,
) -> Response {
    let invalid = |why: &str| oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", why);
    let Some(code) = req.code.as_deref() else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "code is required",
        );
    };
    // Taken out whatever happens next: a code is tried once.
    let Some(a) = take(&state.oauth.codes, CODE_TTL, &digest(code)) else {
        return invalid("the code is unknown, expired or already used");
    };
    if a.client_id != client_id {
        return invalid("the code was issued to another client");
    }
    if req.redirect_uri.as_deref() != Some(a.redirect_uri.as_str()) {
        return invalid("redirect_uri differs from the one the code was issued for");
    }
    if !pkce_matches(
        req.code_verifier.as_deref().unwrap_or(""),
        &a.code_challenge,
    ) {
        return invalid("the PKCE code_verifier does not match the code_challenge");
    }
    if req
        .resource
        .as_deref()
        .is_some_and(|r| r.trim_end_matches('/') != a.resource)
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_target",
            "resource differs from the one authorized",
        );
    }
    let Some(user) = a.user.clone() else {
        return invalid("the code has no person behind it");
    };
    let grant = Grant {
        id: random_id(),
        user,
        client_id: a.client_id.clone(),
        scope: a.scope.clone(),
        resource: a.resource.clone(),
    };
    let refresh = random_id();
    let refresh_expires = now_secs() + state.oauth.config.refresh_token_ttl.as_secs();
    if let Err(e) = state
        .accounts
        .create_grant(&grant, &a.client_name, &refresh, refresh_expires)
        .await
    {
        tracing::error!(error = %e, "storing a grant failed");
        return oauth_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "the grant could not be stored; retry shortly",
        );
    }
    tracing::info!(user = %grant.user, client_id, grant = %grant.id, "tokens issued");
    let detail = json!({ "client_id": client_id, "name": a.client_name, "grant": grant.id,
                         "scope": grant.scope });
    state.audit.record(
        "client_connected",
        Some(grant.user.as_str()),
        origin,
        detail,
    );
    token_answer(state, &grant, &refresh)
}

async fn refresh_grant(
    state: &AppState,
    origin: &crate::audit::Origin,
    client_id: &str,
    req: &TokenRequest,
) -> Response {
    let Some(presented) = req.refresh_token.as_deref() else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "refresh_token is required",
        );
    };
    let next = random_id();
    let next_expires = now_secs() + state.oauth.config.refresh_token_ttl.as_secs();
    match state
        .accounts
        .rotate_refresh(presented, client_id, &next, next_expires)
        .await
    {
        Ok(Refresh::Valid(grant)) => {
            let detail = json!({ "client_id": client_id, "grant": grant.id });
            state
                .audit
                .record("token_refreshed", Some(grant.user.as_str()), origin, detail);
            token_answer(state, &grant, &next)
        }
        Ok(Refresh::Reused) => {
            tracing::warn!(
                client_id,
                "a used refresh token was presented again; grant revoked"
            );
            let detail = json!({ "client_id": client_id, "reason": "refresh token reused" });
            state
                .audit
                .record("client_disconnected", None, origin, detail);
            oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "this refresh token was already used; the whole grant is revoked, connect again",
            )
        }
        Ok(Refresh::Invalid) => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "the refresh token is unknown, expired, revoked or not this client's",
        ),
        Err(e) => {
            tracing::error!(error = %e, "rotating a refresh token failed");
            oauth_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "retry shortly",
            )
        }
    }
}

/// A successful token response: a fresh access token and `refresh`.
fn token_answer(state: &AppState, grant: &Grant, refresh: &str) -> Response {
    let ttl = state.oauth.config.access_token_ttl;
    let scopes: Vec<String> = grant.scope.split_whitespace().map(str::to_string).collect();
    let minted = match state
        .keys
        .mint_access(&grant.user, ttl, &scopes, &grant.resource, &grant.id)
    {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "minting an access token failed");
            return oauth_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "no token",
            );
        }
    };
    let mut resp = Json(json!({
        "access_token": minted.token,
        "token_type": "Bearer",
        "expires_in": ttl.as_secs(),
        "refresh_token": refresh,
        "scope": grant.scope,
    }))
    .into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[derive(Deserialize)]
pub struct RevokeRequest {
    token: Option<String>,
    client_id: Option<String>,
}

/// `POST /revoke` (RFC 7009): revoking either token of a grant ends the whole grant, durably.
/// The answer is 200 whether or not the token was known, as the RFC asks.
pub async fn revoke(
    State(state): State<AppState>,
    RequestOrigin(origin): RequestOrigin,
    Form(req): Form<RevokeRequest>,
) -> Response {
    let Some(token) = req.token.as_deref().filter(|t| !t.is_empty()) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "token is required",
        );
    };
    let client_id = req.client_id.as_deref().unwrap_or("");
    let outcome = match state.keys.verify_token(token) {
        Ok(verified) => match verified.grant {
            Some(grant) => state.accounts.end_grant(None, &grant).await,
            None => Ok(false),
        },
        Err(_) => state.accounts.revoke_by_refresh(token, client_id).await,
    };
    match outcome {
        Ok(ended) => {
            if ended {
                tracing::info!(client_id, "grant revoked by its client");
                let detail = json!({ "client_id": client_id, "reason": "revoked by the client" });
                state
                    .audit
                    .record("client_disconnected", None, &origin, detail);
            }
            StatusCode::OK.into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "revoking a grant failed");
            oauth_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "retry shortly",
            )
        }
    }
}

/// `GET /api/clients`: the applications the signed-in person connected.
pub async fn clients(State(state): State<AppState>, WebApi(user): WebApi) -> Response {
    if let Err(e) = state.accounts.record_usage(state.keys.take_usage()).await {
        tracing::warn!(error = %e, "recording token use failed");
    }
    match state.accounts.grants(&user.caller.user).await {
        Ok(grants) => Json(json!({ "clients": grants })).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "listing grants failed");
            json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "retry shortly",
            )
        }
    }
}

/// `DELETE /api/clients/{id}`: disconnect an application; its tokens stop working at once.
pub async fn disconnect(
    State(state): State<AppState>,
    RequestOrigin(origin): RequestOrigin,
    WebApi(user): WebApi,
    Path(id): Path<String>,
) -> Response {
    match state.accounts.end_grant(Some(&user.caller.user), &id).await {
        Ok(true) => {
            tracing::info!(user = %user.caller.user, grant = %id, "client disconnected");
            let detail = json!({ "grant": id, "reason": "disconnected on the account page" });
            let user_id = user.caller.user.as_str();
            state
                .audit
                .record("client_disconnected", Some(user_id), &origin, detail);
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(false) => json_error(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such connected application",
        ),
        Err(e) => {
            tracing::error!(error = %e, "disconnecting a client failed");
            json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "retry shortly",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_needs_the_verifier_of_the_challenge() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        // RFC 7636 appendix B.
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_matches(verifier, challenge));
        assert!(!pkce_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK",
            challenge
        ));
        assert!(!pkce_matches("short", challenge));
    }

    #[test]
    fn loopback_redirects_match_on_any_port_and_others_exactly() {
        let reg = vec![
            "http://127.0.0.1/callback".to_string(),
            "https://app.example/cb".to_string(),
        ];
        assert!(redirect_matches(&reg, "http://127.0.0.1:49152/callback"));
        assert!(!redirect_matches(&reg, "http://127.0.0.1:49152/other"));
        assert!(redirect_matches(&reg, "https://app.example/cb"));
        assert!(!redirect_matches(&reg, "https://app.example/cb/"));
        assert!(!redirect_matches(&reg, "https://app.example:8443/cb"));
    }

    #[test]
    fn scopes_default_to_all_and_unknown_ones_are_refused() {
        assert_eq!(check_scope(None).unwrap(), "notes:read notes:write");
        assert_eq!(check_scope(Some("notes:read")).unwrap(), "notes:read");
        assert!(check_scope(Some("notes:read admin")).is_err());
    }

    #[test]
    fn redirect_uris_must_be_safe_to_send_a_code_to() {
        for ok in [
            "https://app.example/cb",
            "http://127.0.0.1:3000/cb",
            "http://localhost/cb",
            "com.example.app:/cb",
        ] {
            assert!(acceptable_redirect(ok), "{ok}");
        }
        for bad in [
            "http://app.example/cb",
            "https://app.example/cb#x",
            "javascript:alert(1)",
            "not a url",
        ] {
            assert!(!acceptable_redirect(bad), "{bad}");
        }
    }
}
