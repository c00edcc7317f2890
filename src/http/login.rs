//! Signing in and out of the web page: `/login` → the provider → `/login/callback`, local
//! mode's one-time link `/login/local`, the popup-to-frame handoff `/login/handoff`, and
//! `/logout`.
//!
//! Every refusal is a page (or JSON for the handoff) that says what went wrong and what to do.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Form, Json};
use maud::{html, Markup, DOCTYPE};
use serde::Deserialize;
use serde_json::json;

use super::client::{ClientIp, RequestOrigin};
use super::error::json_error;
use super::session::{
    cookie, csrf_refused, safe_next, same_secret, LoginKind, MaybeSignedIn, CSRF_HEADER,
};
use super::AppState;
use crate::accounts::WebSession;
use crate::auth::{now_secs, random_id};
use crate::signin::{Account, SignInError};

/// A small page of its own (sign-in problems happen before the app's layout makes sense).
pub fn message_page(status: StatusCode, title: &str, body: Markup) -> Response {
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · vault-mcp" }
                link rel="stylesheet" href="/assets/app.css";
            }
            body {
                main class="message" {
                    h1 { (title) }
                    (body)
                    p { a href="/" { "Back to the start page" } }
                }
            }
        }
    };
    (status, Html(page.into_string())).into_response()
}

fn refused(status: StatusCode, reason: &str) -> Response {
    let mut resp = refused_page(status, reason);
    resp.extensions_mut().insert(Refusal(reason.to_string()));
    resp
}

fn refused_page(status: StatusCode, reason: &str) -> Response {
    message_page(
        status,
        "Sign-in failed",
        html! {
            p class="error" { (reason) }
            p { "Nothing was changed. You can start the sign-in again." }
        },
    )
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    popup: Option<String>,
}

/// `GET /login`: send the browser to the provider, with this sign-in's state in a cookie.
pub async fn start(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    RequestOrigin(origin): RequestOrigin,
    Query(q): Query<LoginQuery>,
) -> Response {
    if let Err(limited) = state.limits.sign_in(ip) {
        let detail = json!({ "scope": limited.scope, "retry_after": limited.retry_after_secs });
        state.audit.record("rate_limited", None, &origin, detail);
        return limited.response(false);
    }
    let web = &state.web;
    match (state.login, &web.signin) {
        (LoginKind::HuggingFace, Some(signin)) => match signin.start().await {
            Ok(started) => {
                let next = safe_next(q.next.as_deref());
                let popup = q.popup.as_deref() == Some("1");
                let cookie = web.login_cookie(&started.state);
                web.remember_login(
                    started.state,
                    started.nonce,
                    started.pkce_verifier,
                    next,
                    popup,
                );
                let mut resp = Redirect::to(&started.url).into_response();
                resp.headers_mut().insert(header::SET_COOKIE, cookie);
                resp
            }
            Err(e) => {
                tracing::warn!(error = %e, "sign-in could not start");
                refused(StatusCode::BAD_GATEWAY, &e.to_string())
            }
        },
        (LoginKind::Local, _) => message_page(
            StatusCode::OK,
            "Sign in",
            html! {
                p { "This server runs in local mode for the user " code { "local" } "." }
                p { "Open the one-time login link that " code { "vault-mcp" }
                    " printed when it started. Restart it for a new link." }
            },
        ),
        _ => message_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in is not configured",
            html! {
                p { "The operator of this server has not set up sign-in. On a Hugging Face Space, add "
                    code { "hf_oauth: true" } " to the Space's README metadata; elsewhere set "
                    code { "OPENID_PROVIDER_URL" } ", " code { "OAUTH_CLIENT_ID" } " and "
                    code { "OAUTH_CLIENT_SECRET" } "." }
            },
        ),
    }
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /login/callback`: check the state against this browser's, trade the code, verify the
/// ID token, and start the web session.
pub async fn callback(
    State(state): State<AppState>,
    RequestOrigin(origin): RequestOrigin,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let resp = finish_sign_in(&state, &origin, &headers, q).await;
    if resp.status().is_client_error() || resp.status().is_server_error() {
        let reason = resp
            .extensions()
            .get::<Refusal>()
            .map_or("refused", |r| r.0.as_str())
            .to_string();
        let detail = json!({ "method": "openid", "reason": reason });
        state.audit.record("sign_in_failed", None, &origin, detail);
    }
    resp
}

/// Why a sign-in was refused, carried on the refusal for the audit log.
#[derive(Clone)]
struct Refusal(String);

async fn finish_sign_in(
    state: &AppState,
    origin: &crate::audit::Origin,
    headers: &HeaderMap,
    q: CallbackQuery,
) -> Response {
    let web = &state.web;
    let Some(signin) = web
        .signin
        .as_ref()
        .filter(|_| state.login == LoginKind::HuggingFace)
    else {
        return refused(
            StatusCode::NOT_FOUND,
            "sign-in with a provider is not configured here",
        );
    };
    let sent_state = q.state.as_deref().unwrap_or("");
    let browser_state = cookie(headers, "vault_login").unwrap_or_default();
    if sent_state.is_empty() || !same_secret(sent_state, &browser_state) {
        return refused(
            StatusCode::BAD_REQUEST,
            "state mismatch: this sign-in was not started in this browser",
        );
    }
    let Some(pending) = web.take_login(sent_state) else {
        return refused(
            StatusCode::BAD_REQUEST,
            "state mismatch: this sign-in is unknown, already completed or too old",
        );
    };
    if let Some(error) = &q.error {
        let detail = q.error_description.as_deref().unwrap_or("");
        return refused(
            StatusCode::BAD_REQUEST,
            &format!("the provider answered {error}: {detail}"),
        );
    }
    let Some(code) = q.code.as_deref().filter(|c| !c.is_empty()) else {
        return refused(
            StatusCode::BAD_REQUEST,
            "the provider sent no authorization code",
        );
    };
    let account = match signin
        .finish(code, &pending.nonce, &pending.pkce_verifier)
        .await
    {
        Ok(account) => account,
        Err(e) => {
            tracing::warn!(error = %e, "sign-in refused");
            let status = match e {
                SignInError::Provider(_) => StatusCode::BAD_GATEWAY,
                SignInError::Exchange(_) => StatusCode::BAD_REQUEST,
                SignInError::IdToken(_) | SignInError::Account(_) => StatusCode::UNAUTHORIZED,
            };
            return refused(status, &e.to_string());
        }
    };
    tracing::info!(user = %account.user, "signed in");
    let detail = json!({ "method": "openid", "username": account.username });
    state
        .audit
        .record("sign_in", Some(account.user.as_str()), origin, detail);
    let session = new_session(state, account);
    let mut resp = if pending.popup {
        // The framed page that opened this popup gets a session of its own through the code.
        let code = web.handoff(session.clone());
        popup_done(&code)
    } else {
        Redirect::to(&pending.next).into_response()
    };
    resp.headers_mut()
        .append(header::SET_COOKIE, web.clear_login_cookie());
    match start_session(state, session).await {
        Ok(cookie) => {
            resp.headers_mut().append(header::SET_COOKIE, cookie);
            resp
        }
        Err(resp) => resp,
    }
}

/// The page a popup sign-in ends on: the app's script hands the code to the framed page that
/// opened it, then closes the popup.
fn popup_done(code: &str) -> Response {
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "Signed in · vault-mcp" }
                link rel="stylesheet" href="/assets/app.css";
            }
            body data-handoff=(code) {
                main class="message" {
                    h1 { "Signed in" }
                    p { "You can close this window and go back to the page you came from, or "
                        a href="/browse" { "open your notes here" } "." }
                }
                script src="/assets/app.js" {}
            }
        }
    };
    Html(page.into_string()).into_response()
}

fn new_session(state: &AppState, account: Account) -> WebSession {
    WebSession {
        user: account.user,
        username: account.username,
        avatar: account.avatar,
        csrf: random_id(),
        expires: now_secs() + state.web.session_ttl.as_secs(),
    }
}

/// Store a new session and return its `Set-Cookie`.
async fn start_session(
    state: &AppState,
    session: WebSession,
) -> Result<axum::http::HeaderValue, Response> {
    let id = random_id();
    match state.accounts.create_session(&id, session).await {
        Ok(()) => Ok(state.web.session_cookie(&id)),
        Err(e) => {
            tracing::error!(error = %e, "storing a web session failed");
            Err(refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "the session could not be stored; retry shortly",
            ))
        }
    }
}

#[derive(Deserialize)]
pub struct LocalQuery {
    code: Option<String>,
}

/// `GET /login/local?code=…`: local mode's one-time link signs in user `local`.
pub async fn local(
    State(state): State<AppState>,
    RequestOrigin(origin): RequestOrigin,
    Query(q): Query<LocalQuery>,
) -> Response {
    if state.login != LoginKind::Local {
        return refused(
            StatusCode::NOT_FOUND,
            "login links exist only in local mode",
        );
    }
    let code = q.code.unwrap_or_default();
    if !state.web.take_local_link(&code) {
        let detail = json!({ "method": "local_link", "reason": "unknown, expired or used link" });
        state.audit.record("sign_in_failed", None, &origin, detail);
        return refused(
            StatusCode::UNAUTHORIZED,
            "this login link is unknown, expired or already used; restart vault-mcp to print a new one",
        );
    }
    let Ok(user) = vault_actors::UserId::parse("local") else {
        return refused(StatusCode::INTERNAL_SERVER_ERROR, "no local user");
    };
    let detail = json!({ "method": "local_link" });
    state
        .audit
        .record("sign_in", Some(user.as_str()), &origin, detail);
    let session = new_session(
        &state,
        Account {
            user,
            username: "local".into(),
            avatar: None,
        },
    );
    match start_session(&state, session).await {
        Ok(cookie) => {
            let mut resp = Redirect::to("/browse").into_response();
            resp.headers_mut().insert(header::SET_COOKIE, cookie);
            resp
        }
        Err(resp) => resp,
    }
}

#[derive(Deserialize)]
pub struct Handoff {
    code: String,
}

/// `POST /login/handoff {code}`: a framed page trades its popup's one-time code for a session
/// (its cookie lives in the frame's own partition). Only from this server's own pages.
pub async fn handoff(
    State(state): State<AppState>,
    RequestOrigin(origin): RequestOrigin,
    headers: HeaderMap,
    Json(body): Json<Handoff>,
) -> Response {
    // The Origin layer refuses foreign origins; here the header must also be present, so a
    // form on another site cannot sign this browser in to somebody else's account.
    if headers.get(header::ORIGIN).is_none() {
        return json_error(
            StatusCode::FORBIDDEN,
            "forbidden_origin",
            "a handoff must come from this server's page",
        );
    }
    let Some(mut session) = state.web.take_handoff(&body.code) else {
        return json_error(
            StatusCode::UNAUTHORIZED,
            "invalid_code",
            "the sign-in code is unknown, expired or already used; sign in again",
        );
    };
    session.csrf = random_id();
    let detail = json!({ "method": "handoff" });
    state
        .audit
        .record("sign_in", Some(session.user.as_str()), &origin, detail);
    match start_session(&state, session).await {
        Ok(cookie) => {
            let mut resp = StatusCode::NO_CONTENT.into_response();
            resp.headers_mut().insert(header::SET_COOKIE, cookie);
            resp
        }
        Err(resp) => resp,
    }
}

#[derive(Deserialize)]
pub struct LogoutForm {
    csrf: Option<String>,
}

/// `POST /logout`: end the web session (the form carries the CSRF token).
pub async fn logout(
    State(state): State<AppState>,
    RequestOrigin(origin): RequestOrigin,
    MaybeSignedIn(user): MaybeSignedIn,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Response {
    let clear = state.web.clear_session_cookie();
    let Some(user) = user else {
        let mut resp = Redirect::to("/").into_response();
        resp.headers_mut().insert(header::SET_COOKIE, clear);
        return resp;
    };
    let sent = form
        .csrf
        .or_else(|| {
            headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        })
        .unwrap_or_default();
    if !same_secret(&sent, &user.csrf) {
        return csrf_refused();
    }
    if let Some(id) = cookie(&headers, state.web.cookie_name()) {
        if let Err(e) = state.accounts.end_session(&id).await {
            tracing::error!(error = %e, "ending a web session failed");
            return json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "signing out failed; retry shortly",
            );
        }
    }
    tracing::info!(user = %user.caller.user, "signed out");
    let user_id = user.caller.user.as_str();
    state
        .audit
        .record("sign_out", Some(user_id), &origin, json!({}));
    let mut resp = Redirect::to("/").into_response();
    resp.headers_mut().insert(header::SET_COOKIE, clear);
    resp
}
