//! The web page's sign-in state: the session cookie, the extractors that turn it into a
//! [`WebUser`], the CSRF check, and the short-lived secrets of a sign-in in progress.
//!
//! The cookie holds an opaque random id; everything else is on the server (the accounts file).
//! Over https it is `Secure; SameSite=None; Partitioned`, so it also works when the Space is
//! shown inside huggingface.co's iframe (a partitioned third-party cookie); over plain http
//! (a laptop) it is `SameSite=Lax`. It is never accepted on `/mcp`, which reads only the
//! bearer header.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use subtle::ConstantTimeEq;
use vault_actors::Caller;

use super::client::admit;
use super::error::json_error;
use super::AppState;
use crate::accounts::WebSession;
use crate::signin::SignIn;

/// The header the page's script sends its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a started sign-in may take before its state is forgotten.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(600);
/// How long the one-time code that carries a sign-in from a popup to its frame lives.
const HANDOFF_TIMEOUT: Duration = Duration::from_secs(60);
/// Started sign-ins kept at most (an unauthenticated endpoint creates them).
const MAX_PENDING: usize = 10_000;

/// How people sign in to this server's web page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginKind {
    /// Through the configured OpenID provider (Hugging Face on a Space).
    HuggingFace,
    /// Local mode: the one-time link printed at start signs in user `local`.
    Local,
    /// Space mode without the OAuth variables: nobody can sign in on the page.
    Unavailable,
}

/// A sign-in that went to the provider and has not come back yet.
pub struct PendingLogin {
    pub nonce: String,
    pub pkce_verifier: String,
    /// Where to go afterwards (a path on this server).
    pub next: String,
    /// Started from a popup window opened by a framed page.
    pub popup: bool,
    started: Instant,
}

/// Web sign-in state shared by the handlers.
pub struct WebState {
    pub signin: Option<SignIn>,
    pub session_ttl: Duration,
    pub token_max_ttl: Duration,
    /// The public URL is https: cookies are `Secure`, cross-site capable and partitioned.
    pub secure: bool,
    pending: Mutex<HashMap<String, PendingLogin>>,
    /// One-time codes (by digest) that start a second session for a popup's sign-in.
    handoffs: Mutex<HashMap<String, (WebSession, Instant)>>,
    /// Local mode's one-time login codes (by digest).
    local_links: Mutex<HashMap<String, Instant>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Each use is one map call: a poisoned lock holds a consistent map.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl WebState {
    pub fn new(
        signin: Option<SignIn>,
        session_ttl: Duration,
        token_max_ttl: Duration,
        secure: bool,
    ) -> Self {
        WebState {
            signin,
            session_ttl,
            token_max_ttl,
            secure,
            pending: Mutex::default(),
            handoffs: Mutex::default(),
            local_links: Mutex::default(),
        }
    }

    /// The session cookie's name (`__Host-` binds it to this exact origin over https).
    pub fn cookie_name(&self) -> &'static str {
        if self.secure {
            "__Host-vault_session"
        } else {
            "vault_session"
        }
    }

    /// `Set-Cookie` for a new session id.
    pub fn session_cookie(&self, value: &str) -> HeaderValue {
        let max_age = self.session_ttl.as_secs();
        let attrs = if self.secure {
            "Secure; SameSite=None; Partitioned"
        } else {
            "SameSite=Lax"
        };
        cookie_header(&format!(
            "{}={value}; Path=/; HttpOnly; Max-Age={max_age}; {attrs}",
            self.cookie_name()
        ))
    }

    /// `Set-Cookie` that removes the session cookie.
    pub fn clear_session_cookie(&self) -> HeaderValue {
        let attrs = if self.secure {
            "Secure; SameSite=None; Partitioned"
        } else {
            "SameSite=Lax"
        };
        cookie_header(&format!(
            "{}=; Path=/; HttpOnly; Max-Age=0; {attrs}",
            self.cookie_name()
        ))
    }

    /// `Set-Cookie` binding a started sign-in to this browser (sent back to the callback, a
    /// top-level navigation, so `Lax` suffices).
    pub fn login_cookie(&self, state: &str) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        cookie_header(&format!(
            "vault_login={state}; Path=/login; HttpOnly; Max-Age={}; SameSite=Lax{secure}",
            LOGIN_TIMEOUT.as_secs()
        ))
    }

    pub fn clear_login_cookie(&self) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        cookie_header(&format!(
            "vault_login=; Path=/login; HttpOnly; Max-Age=0; SameSite=Lax{secure}"
        ))
    }

    /// Remember a started sign-in under its `state`.
    pub fn remember_login(
        &self,
        state: String,
        nonce: String,
        verifier: String,
        next: String,
        popup: bool,
    ) {
        let mut pending = lock(&self.pending);
        pending.retain(|_, p| p.started.elapsed() < LOGIN_TIMEOUT);
        if pending.len() >= MAX_PENDING {
            pending.clear();
        }
        pending.insert(
            state,
            PendingLogin {
                nonce,
                pkce_verifier: verifier,
                next,
                popup,
                started: Instant::now(),
            },
        );
    }

    /// Take the sign-in started with `state` (each state completes at most once).
    pub fn take_login(&self, state: &str) -> Option<PendingLogin> {
        lock(&self.pending)
            .remove(state)
            .filter(|p| p.started.elapsed() < LOGIN_TIMEOUT)
    }

    /// A one-time code a framed page can trade for a session of its own.
    pub fn handoff(&self, session: WebSession) -> String {
        let code = crate::auth::random_id();
        let mut handoffs = lock(&self.handoffs);
        handoffs.retain(|_, (_, at)| at.elapsed() < HANDOFF_TIMEOUT);
        handoffs.insert(crate::accounts::digest(&code), (session, Instant::now()));
        code
    }

    pub fn take_handoff(&self, code: &str) -> Option<WebSession> {
        lock(&self.handoffs)
            .remove(&crate::accounts::digest(code))
            .filter(|(_, at)| at.elapsed() < HANDOFF_TIMEOUT)
            .map(|(s, _)| s)
    }

    /// A new one-time local-mode login code, valid for `ttl`.
    pub fn local_link(&self, ttl: Duration) -> String {
        let code = crate::auth::random_id();
        lock(&self.local_links).insert(crate::accounts::digest(&code), Instant::now() + ttl);
        code
    }

    /// Use up a local-mode login code; false when unknown, used or expired.
    pub fn take_local_link(&self, code: &str) -> bool {
        lock(&self.local_links)
            .remove(&crate::accounts::digest(code))
            .is_some_and(|until| Instant::now() < until)
    }
}

fn cookie_header(value: &str) -> HeaderValue {
    // Every part is ours: base64url ids and fixed attributes.
    HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// A signed-in person, from the session cookie.
#[derive(Debug, Clone)]
pub struct WebUser {
    /// Every right over their own vault: the page acts as its owner.
    pub caller: Caller,
    pub username: String,
    pub avatar: Option<String>,
    /// The session's CSRF token: pages embed it, and every change must send it back.
    pub csrf: String,
}

/// Do two secrets match, in time that does not depend on where they differ?
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

async fn web_user(parts: &Parts, state: &AppState) -> Result<Option<WebUser>, Response> {
    let Some(id) = cookie(&parts.headers, state.web.cookie_name()) else {
        return Ok(None);
    };
    match state.accounts.session(&id).await {
        Ok(session) => Ok(session.map(|s| {
            crate::metrics::user_seen(&s.user);
            WebUser {
                caller: Caller::full(s.user),
                username: s.username,
                avatar: s.avatar,
                csrf: s.csrf,
            }
        })),
        Err(e) => {
            tracing::error!(error = %e, "reading a web session failed");
            Err(json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "sessions cannot be read right now; retry shortly",
            ))
        }
    }
}

/// The signed-in person, if any (for pages that show either way).
pub struct MaybeSignedIn(pub Option<WebUser>);

impl FromRequestParts<AppState> for MaybeSignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        web_user(parts, state).await.map(MaybeSignedIn)
    }
}

/// A signed-in person on a page; anyone else is sent to the sign-in page, and back here after.
pub struct SignedIn(pub WebUser);

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match web_user(parts, state).await? {
            Some(user) => {
                if let Some(refused) = admit(state, parts, &user.caller.user) {
                    return Err(refused);
                }
                Ok(SignedIn(user))
            }
            None => {
                let next = parts
                    .uri
                    .path_and_query()
                    .map_or("/", |p| p.as_str())
                    .to_string();
                let to = format!("/?next={}", url_encode(&next));
                Err(Redirect::to(&to).into_response())
            }
        }
    }
}

/// A signed-in person calling the page's JSON API. A change (any method but GET and HEAD)
/// must carry the session's CSRF token in `X-CSRF-Token`, else 403.
pub struct WebApi(pub WebUser);

impl FromRequestParts<AppState> for WebApi {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Some(user) = web_user(parts, state).await? else {
            return Err(json_error(
                StatusCode::UNAUTHORIZED,
                "signed_out",
                "sign in on the web page first",
            ));
        };
        if let Some(refused) = admit(state, parts, &user.caller.user) {
            return Err(refused);
        }
        if parts.method != Method::GET && parts.method != Method::HEAD {
            let sent = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !same_secret(sent, &user.csrf) {
                return Err(csrf_refused());
            }
        }
        Ok(WebApi(user))
    }
}

/// 403 for a change that did not carry the session's CSRF token.
pub fn csrf_refused() -> Response {
    json_error(
        StatusCode::FORBIDDEN,
        "csrf",
        "missing or wrong CSRF token: reload the page and try again",
    )
}

/// Percent-encode everything but unreserved characters and `/`, for a path in a query string.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A `next` target that stays on this server: a path, never `//host` or a full URL.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/browse".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web(secure: bool) -> WebState {
        WebState::new(
            None,
            Duration::from_secs(60),
            Duration::from_secs(60),
            secure,
        )
    }

    #[test]
    fn cookies_work_in_a_frame_over_https_and_stay_lax_over_http() {
        let https = web(true).session_cookie("abc");
        let https = https.to_str().unwrap();
        for attr in [
            "__Host-vault_session=abc",
            "HttpOnly",
            "Secure",
            "SameSite=None",
            "Partitioned",
            "Path=/",
        ] {
            assert!(https.contains(attr), "{https} lacks {attr}");
        }
        let http = web(false).session_cookie("abc");
        let http = http.to_str().unwrap();
        assert!(http.contains("vault_session=abc") && http.contains("SameSite=Lax"));
        assert!(http.contains("HttpOnly") && !http.contains("Secure"));
    }

    #[test]
    fn cookie_values_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; vault_session=xyz"),
        );
        assert_eq!(cookie(&h, "vault_session").as_deref(), Some("xyz"));
        assert_eq!(cookie(&h, "vault"), None);
    }

    #[test]
    fn next_stays_on_this_server() {
        assert_eq!(safe_next(Some("/note/a.md")), "/note/a.md");
        for bad in ["//evil.example", "https://evil.example", "/\\evil", "evil"] {
            assert_eq!(safe_next(Some(bad)), "/browse", "{bad}");
        }
    }

    #[test]
    fn one_time_codes_work_once() {
        let w = web(false);
        let code = w.local_link(Duration::from_secs(60));
        assert!(w.take_local_link(&code));
        assert!(!w.take_local_link(&code));
        let expired = w.local_link(Duration::ZERO);
        assert!(!w.take_local_link(&expired));
        w.remember_login("s".into(), "n".into(), "v".into(), "/".into(), false);
        assert!(w.take_login("s").is_some());
        assert!(w.take_login("s").is_none());
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd") && !same_secret("abc", "ab") && !same_secret("", "a"));
    }
}
