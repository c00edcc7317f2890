//! Signing in to the web page (with the stand-in OpenID provider, configured exactly as a Space
//! configures the server), web sessions, CSRF, and the tokens people make on the account page.

use std::collections::HashMap;
use std::path::Path;

use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};
use stand_in_idp::{Fault, Idp, IdpConfig};

use crate::helpers::{spawn_env_in, status_json, TestApp, LATEST};

const ALICE_SUB: &str = "1000000000000000000000a1";

/// A browser as far as these tests need one: it keeps cookies and does not follow redirects.
pub struct Browser {
    client: reqwest::Client,
    cookies: HashMap<String, String>,
}

impl Browser {
    pub fn new() -> Self {
        Browser {
            client: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            cookies: HashMap::new(),
        }
    }

    fn keep_cookies(&mut self, resp: &Response) {
        for value in resp.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap_or("");
            let pair = text.split(';').next().unwrap_or("");
            if let Some((name, value)) = pair.split_once('=') {
                if value.is_empty() || text.contains("Max-Age=0") {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_string(), value.to_string());
                }
            }
        }
    }

    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }

    pub async fn send(
        &mut self,
        method: Method,
        url: &str,
        build: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Response {
        let mut req = self.client.request(method, url);
        if !self.cookies.is_empty() {
            req = req.header("cookie", self.cookie_header());
        }
        let resp = build(req).send().await.expect("request");
        self.keep_cookies(&resp);
        resp
    }

    pub async fn get(&mut self, url: &str) -> Response {
        self.send(Method::GET, url, |r| r).await
    }
}

fn location(resp: &Response) -> String {
    resp.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no Location on a {} answer", resp.status()))
        .to_string()
}

/// The CSRF token a signed-in page carries in `<meta name="csrf-token">`.
pub async fn csrf_of(browser: &mut Browser, app: &TestApp) -> String {
    let resp = browser.get(&format!("{}/account", app.base)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let page = resp.text().await.unwrap();
    let at = page
        .find("name=\"csrf-token\" content=\"")
        .expect("a signed-in page carries its CSRF token");
    let rest = &page[at + "name=\"csrf-token\" content=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// A server in space mode that signs people in with `idp`, as a Space with `hf_oauth: true`.
async fn space_app(data: &Path, idp: &Idp) -> TestApp {
    let cfg = IdpConfig::default();
    spawn_env_in(
        data,
        &[
            ("OPENID_PROVIDER_URL", idp.url()),
            ("OAUTH_CLIENT_ID", &cfg.client_id),
            ("OAUTH_CLIENT_SECRET", &cfg.client_secret),
            ("OAUTH_SCOPES", "openid profile"),
        ],
        |_| {},
    )
    .await
}

/// Start a sign-in at the server and sign in `account` at the provider; the answer is the
/// provider's redirect back to the server's callback (not followed).
async fn to_callback(browser: &mut Browser, app: &TestApp, account: &str) -> String {
    let resp = browser
        .get(&format!("{}/login?next=/account", app.base))
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::SEE_OTHER,
        "{:?}",
        resp.text().await
    );
    let authorize = location(&resp);
    assert!(
        authorize.contains("code_challenge_method=S256"),
        "{authorize}"
    );
    assert!(
        authorize.contains("nonce=") && authorize.contains("state="),
        "{authorize}"
    );
    let resp = browser
        .get(&format!("{authorize}&login_hint={account}"))
        .await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    let callback = location(&resp);
    assert!(
        callback.starts_with(&format!("{}/login/callback?", app.public_url)),
        "{callback}"
    );
    callback
}

/// Sign `account` in; the browser then holds a session cookie.
async fn sign_in(browser: &mut Browser, app: &TestApp, account: &str) {
    let callback = to_callback(browser, app, account).await;
    let resp = browser.get(&callback).await;
    assert_eq!(
        resp.status(),
        StatusCode::SEE_OTHER,
        "{:?}",
        resp.text().await
    );
    assert_eq!(location(&resp), "/account");
    assert!(browser.cookie("vault_session").is_some());
}

/// Sign in through local mode's one-time link.
pub async fn sign_in_local(browser: &mut Browser, app: &TestApp) {
    let link = app
        .local_login
        .clone()
        .expect("local mode prints a login link");
    let resp = browser.get(&link).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(browser.cookie("vault_session").is_some());
}

async fn local_app(data: &Path) -> TestApp {
    spawn_env_in(data, &[("MODE", "local")], |_| {}).await
}

async fn create_token(browser: &mut Browser, app: &TestApp, csrf: &str, scope: &str) -> Value {
    let resp = browser
        .send(Method::POST, &format!("{}/api/tokens", app.base), |r| {
            r.header("x-csrf-token", csrf)
                .json(&json!({ "name": "laptop", "ttl": "7d", "scope": scope }))
        })
        .await;
    let (status, body) = status_json(resp).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

async fn mcp_status(app: &TestApp, token: &str) -> StatusCode {
    app.post(token, None)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": LATEST, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn signing_in_with_the_provider_makes_a_session_for_the_accounts_sub() {
    let idp = Idp::start(IdpConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let app = space_app(dir.path(), &idp).await;
    let mut browser = Browser::new();
    sign_in(&mut browser, &app, "alice").await;
    let csrf = csrf_of(&mut browser, &app).await;
    let token = create_token(&mut browser, &app, &csrf, "write").await;
    // The token works on /mcp, for the account's stable sub (never the username).
    let token = token["token"].as_str().unwrap();
    let sid = app.session(token).await;
    app.ok(
        token,
        &sid,
        "write_note",
        json!({"path": "a.md", "body": "hi"}),
    )
    .await;
    assert!(app.vault_dir(ALICE_SUB).join("a.md").exists());
    assert!(!app.vault_dir("alice").exists());
}

#[tokio::test]
async fn a_callback_whose_state_does_not_match_the_browser_is_refused() {
    let idp = Idp::start(IdpConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let app = space_app(dir.path(), &idp).await;
    let mut browser = Browser::new();
    let callback = to_callback(&mut browser, &app, "alice").await;
    // Another browser (no login cookie) brings the same callback: refused.
    let mut other = Browser::new();
    let resp = other.get(&callback).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.text().await.unwrap().contains("state mismatch"));
    // A state that was never issued, with this browser's cookie: refused.
    let forged = callback.replace("state=", "state=x");
    let resp = browser.get(&forged).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.text().await.unwrap().contains("state mismatch"));
    assert!(other.cookie("vault_session").is_none() && browser.cookie("vault_session").is_none());
}

#[tokio::test]
async fn a_reused_or_expired_code_is_refused() {
    let idp = Idp::start(IdpConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let app = space_app(dir.path(), &idp).await;
    let mut browser = Browser::new();
    let first = to_callback(&mut browser, &app, "alice").await;
    let resp = browser.get(&first).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let code = first
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string();

    // The same callback again: its state is used up.
    let mut again = Browser::new();
    let replay = to_callback(&mut again, &app, "alice").await;
    let resp = browser.get(&first).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // A fresh sign-in carrying the old code: the provider refuses it, and so does the server.
    let requests = idp.token_requests();
    let fresh_code = replay
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let reused = replay.replace(fresh_code, &code);
    let resp = again.get(&reused).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("refused the authorization code"));
    assert_eq!(idp.token_requests(), requests + 1);
    assert!(again.cookie("vault_session").is_none());

    idp.set_code_lifetime(std::time::Duration::ZERO);
    let mut late = Browser::new();
    let expired = to_callback(&mut late, &app, "alice").await;
    let resp = late.get(&expired).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("refused the authorization code"));
    assert!(late.cookie("vault_session").is_none());
}

#[tokio::test]
async fn a_bad_id_token_is_refused_whatever_is_wrong_with_it() {
    let idp = Idp::start(IdpConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let app = space_app(dir.path(), &idp).await;
    for (fault, words) in [
        (Fault::WrongSignature, "signature"),
        (Fault::WrongAudience, "audience"),
        (Fault::WrongIssuer, "issuer"),
        (Fault::WrongNonce, "nonce"),
        (Fault::Expired, "expired"),
    ] {
        idp.set_fault(fault);
        let mut browser = Browser::new();
        let callback = to_callback(&mut browser, &app, "alice").await;
        let resp = browser.get(&callback).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{fault:?}");
        let page = resp.text().await.unwrap().to_lowercase();
        assert!(
            page.contains("id token was not accepted"),
            "{fault:?}: {page}"
        );
        assert!(
            page.contains(words),
            "{fault:?} should name {words}: {page}"
        );
        assert!(browser.cookie("vault_session").is_none(), "{fault:?}");
    }
    idp.set_fault(Fault::None);
    let mut browser = Browser::new();
    sign_in(&mut browser, &app, "bob").await;
}

#[tokio::test]
async fn changes_without_the_csrf_token_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let app = local_app(dir.path()).await;
    let mut browser = Browser::new();
    sign_in_local(&mut browser, &app).await;
    for (method, path, body) in [
        (
            Method::POST,
            "/api/tokens",
            json!({"name": "x", "ttl": "1d", "scope": "read"}),
        ),
        (Method::DELETE, "/api/tokens/whatever", json!({})),
        (
            Method::POST,
            "/api/notes",
            json!({"path": "x.md", "body": "x", "if_version": 0}),
        ),
    ] {
        let url = format!("{}{path}", app.base);
        let resp = browser.send(method.clone(), &url, |r| r.json(&body)).await;
        let (status, err) = status_json(resp).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}");
        assert_eq!(err["error"], "csrf", "{method} {path}");
        let resp = browser
            .send(method.clone(), &url, |r| {
                r.header("x-csrf-token", "wrong").json(&body)
            })
            .await;
        assert_eq!(
            resp.status(),
            StatusCode::FORBIDDEN,
            "{method} {path} with a wrong token"
        );
    }
    // Signing out is a change too.
    let resp = browser
        .send(Method::POST, &format!("{}/logout", app.base), |r| {
            r.form(&[("csrf", "")])
        })
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(!app.vault_dir("local").join("x.md").exists());
    let resp = browser.get(&format!("{}/api/tokens", app.base)).await;
    assert_eq!(resp.status(), StatusCode::OK, "still signed in");
}

#[tokio::test]
async fn a_revoked_token_is_refused_at_once_and_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let app = local_app(dir.path()).await;
    let mut browser = Browser::new();
    sign_in_local(&mut browser, &app).await;
    let csrf = csrf_of(&mut browser, &app).await;
    let created = create_token(&mut browser, &app, &csrf, "write").await;
    let (id, token) = (
        created["id"].as_str().unwrap(),
        created["token"].as_str().unwrap(),
    );
    assert_eq!(
        mcp_status(&app, token).await,
        StatusCode::OK,
        "works, and is now cached"
    );
    let listed = browser.get(&format!("{}/api/tokens", app.base)).await;
    let (_, listed) = status_json(listed).await;
    let row = listed["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .cloned();
    let row = row.expect("the new token is listed");
    assert_eq!(
        (row["name"].as_str(), row["scope"].as_str()),
        (Some("laptop"), Some("write"))
    );
    assert!(
        !listed.to_string().contains(token),
        "the list never shows a token"
    );

    let resp = browser
        .send(
            Method::DELETE,
            &format!("{}/api/tokens/{id}", app.base),
            |r| r.header("x-csrf-token", &csrf),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let resp = app
        .post(token, None)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let (_, err) = status_json(resp).await;
    assert!(err.to_string().contains("revoked"), "{err}");

    app.stop().await;
    let app = local_app(dir.path()).await;
    assert_eq!(mcp_status(&app, token).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_session_cookie_is_not_a_credential_on_mcp() {
    let dir = tempfile::tempdir().unwrap();
    let app = local_app(dir.path()).await;
    let mut browser = Browser::new();
    sign_in_local(&mut browser, &app).await;
    let resp = browser
        .send(Method::POST, &format!("{}/mcp", app.base), |r| {
            r.header("accept", "application/json, text/event-stream").json(&json!({
                "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": LATEST, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}))
        })
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers().get("www-authenticate").is_some());
}

#[tokio::test]
async fn a_refreshed_token_works_and_the_old_one_is_retired() {
    let dir = tempfile::tempdir().unwrap();
    let app = local_app(dir.path()).await;
    let mut browser = Browser::new();
    sign_in_local(&mut browser, &app).await;
    let csrf = csrf_of(&mut browser, &app).await;
    let created = create_token(&mut browser, &app, &csrf, "read").await;
    let old = created["token"].as_str().unwrap().to_string();
    let resp = app
        .client
        .post(format!("{}/api/tokens/refresh", app.base))
        .bearer_auth(&old)
        .send()
        .await
        .unwrap();
    let (status, fresh) = status_json(resp).await;
    assert_eq!(status, StatusCode::OK, "{fresh}");
    let new = fresh["token"].as_str().unwrap();
    assert_ne!(new, old);
    assert_eq!(
        (fresh["name"].as_str(), fresh["scope"].as_str()),
        (Some("laptop"), Some("read"))
    );
    let lifetime = fresh["expires_at"].as_u64().unwrap() - fresh["created_at"].as_u64().unwrap();
    assert_eq!(
        lifetime,
        7 * 86400,
        "same lifetime as the token it replaces"
    );
    let sid = app.session(new).await;
    assert_eq!(
        app.err_code(
            new,
            &sid,
            "write_note",
            json!({"path": "a.md", "body": "x"})
        )
        .await,
        "insufficient_scope",
        "same scope as the token it replaces"
    );
    app.ok(new, &sid, "list_notes", json!({})).await;
    // The old token is retired a minute later (requests on their way still finish).
    assert_eq!(mcp_status(&app, &old).await, StatusCode::OK);
    let listed = status_json(browser.get(&format!("{}/api/tokens", app.base)).await)
        .await
        .1;
    assert_eq!(listed["tokens"].as_array().unwrap().len(), 2, "{listed}");
    // Without a bearer: nothing to refresh.
    let resp = app
        .client
        .post(format!("{}/api/tokens/refresh", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn tokens_are_made_only_for_the_signed_in_person_within_limits() {
    let dir = tempfile::tempdir().unwrap();
    let app = local_app(dir.path()).await;
    let mut anonymous = Browser::new();
    let resp = anonymous
        .send(Method::POST, &format!("{}/api/tokens", app.base), |r| {
            r.json(&json!({"name": "x", "ttl": "1d", "scope": "write", "user_id": "local"}))
        })
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // The seed's token endpoint does not exist in any form.
    for path in ["/api/auth/create-token", "/api/auth/token", "/api/token"] {
        let resp = anonymous
            .send(Method::POST, &format!("{}{path}", app.base), |r| {
                r.json(&json!({"user_id": "local"}))
            })
            .await;
        assert!(
            resp.status() == StatusCode::NOT_FOUND
                || resp.status() == StatusCode::METHOD_NOT_ALLOWED,
            "{path}"
        );
    }
    let mut browser = Browser::new();
    sign_in_local(&mut browser, &app).await;
    let csrf = csrf_of(&mut browser, &app).await;
    for (body, code) in [
        (
            json!({"name": "x", "ttl": "10000d", "scope": "write"}),
            "invalid_ttl",
        ),
        (
            json!({"name": "x", "ttl": "soon", "scope": "write"}),
            "invalid_ttl",
        ),
        (
            json!({"name": "", "ttl": "1d", "scope": "write"}),
            "invalid_name",
        ),
        (
            json!({"name": "x", "ttl": "1d", "scope": "admin"}),
            "invalid_scope",
        ),
    ] {
        let resp = browser
            .send(Method::POST, &format!("{}/api/tokens", app.base), |r| {
                r.header("x-csrf-token", &csrf).json(&body)
            })
            .await;
        let (status, err) = status_json(resp).await;
        assert_eq!(
            (status, err["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{body}"
        );
    }
}

#[tokio::test]
async fn the_local_login_link_works_once_and_sessions_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let app = local_app(dir.path()).await;
    let mut browser = Browser::new();
    sign_in_local(&mut browser, &app).await;
    let mut second = Browser::new();
    let resp = second.get(app.local_login.as_ref().unwrap()).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(second.cookie("vault_session").is_none());
    app.stop().await;
    let app = local_app(dir.path()).await;
    let resp = browser.get(&format!("{}/api/tokens", app.base)).await;
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "the web session survived the restart"
    );
    // Signing out ends it for good.
    let csrf = csrf_of(&mut browser, &app).await;
    let kept = browser.cookie("vault_session").unwrap().to_string();
    let resp = browser
        .send(Method::POST, &format!("{}/logout", app.base), |r| {
            r.form(&[("csrf", csrf.as_str())])
        })
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(browser.cookie("vault_session").is_none());
    let resp = second
        .send(Method::GET, &format!("{}/api/tokens", app.base), |r| {
            r.header("cookie", format!("vault_session={kept}"))
        })
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::UNAUTHORIZED,
        "the old cookie is dead"
    );
}

#[tokio::test]
async fn space_mode_without_oauth_variables_says_sign_in_is_not_configured() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_env_in(dir.path(), &[], |_| {}).await;
    let resp = Browser::new().get(&format!("{}/login", app.base)).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(resp.headers().contains_key("content-security-policy"));
    assert!(resp.text().await.unwrap().contains("OPENID_PROVIDER_URL"));
}

#[tokio::test]
async fn a_framed_page_gets_its_own_session_from_the_popups_one_time_code() {
    let idp = Idp::start(IdpConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let app = space_app(dir.path(), &idp).await;
    // The popup: a top-level window, signed in through the provider.
    let mut popup = Browser::new();
    let resp = popup
        .get(&format!("{}/login?popup=1&next=/account", app.base))
        .await;
    let authorize = location(&resp);
    let resp = popup.get(&format!("{authorize}&login_hint=alice")).await;
    let callback = location(&resp);
    let resp = popup.get(&callback).await;
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "the popup ends on a page, not a redirect"
    );
    assert!(popup.cookie("vault_session").is_some());
    let page = resp.text().await.unwrap();
    let at = page
        .find("data-handoff=\"")
        .expect("the page carries the code")
        + 14;
    let code = page[at..at + page[at..].find('"').unwrap()].to_string();
    assert!(
        page.contains("/assets/app.js"),
        "the script hands it to the opener"
    );
    // The frame trades the code for a session of its own, once, from this server's page only.
    let url = format!("{}/login/handoff", app.base);
    let mut frame = Browser::new();
    let resp = frame
        .send(Method::POST, &url, |r| r.json(&json!({ "code": code })))
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::FORBIDDEN,
        "no Origin: not from our page"
    );
    let resp = frame
        .send(Method::POST, &url, |r| {
            r.header("origin", &app.base).json(&json!({ "code": code }))
        })
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let frame_cookie = frame.cookie("vault_session").unwrap().to_string();
    assert_ne!(Some(frame_cookie.as_str()), popup.cookie("vault_session"));
    assert_eq!(
        frame
            .get(&format!("{}/api/tokens", app.base))
            .await
            .status(),
        StatusCode::OK
    );
    let mut again = Browser::new();
    let resp = again
        .send(Method::POST, &url, |r| {
            r.header("origin", &app.base).json(&json!({ "code": code }))
        })
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::UNAUTHORIZED,
        "the code works once"
    );
}
