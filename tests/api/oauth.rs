//! vault-mcp as the OAuth authorization server of its MCP endpoint: discovery, registration
//! (dynamic and by metadata document), authorize with consent, tokens, refresh rotation,
//! revocation, and each refusal the RFCs ask for.

use std::collections::HashMap;

use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::{spawn_env_in, status_json, TestApp, LATEST, SECRET};
use crate::signin::{sign_in_local, Browser};

const REDIRECT: &str = "http://127.0.0.1:33333/callback";

struct Flow {
    app: TestApp,
    browser: Browser,
    _dir: tempfile::TempDir,
}

async fn flow_with(env: &[(&str, &str)]) -> Flow {
    let dir = tempfile::tempdir().unwrap();
    let mut all = vec![("MODE", "local")];
    all.extend_from_slice(env);
    let app = spawn_env_in(dir.path(), &all, |_| {}).await;
    let mut browser = Browser::new();
    sign_in_local(&mut browser, &app).await;
    Flow {
        app,
        browser,
        _dir: dir,
    }
}

async fn flow() -> Flow {
    flow_with(&[]).await
}

fn pkce() -> (String, String) {
    let verifier = format!("v{}", "x".repeat(50));
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn query_of(url: &str) -> HashMap<String, String> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

fn attr_after(page: &str, marker: &str) -> String {
    let at = page
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} in {page}"));
    let rest = &page[at + marker.len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

impl Flow {
    async fn register(&self, redirect: &str) -> String {
        let resp = self
            .app
            .client
            .post(format!("{}/register", self.app.base))
            .json(
                &json!({"redirect_uris": [redirect], "client_name": "Test Client",
                          "token_endpoint_auth_method": "none"}),
            )
            .send()
            .await
            .unwrap();
        let (status, body) = status_json(resp).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["client_id"].as_str().unwrap().to_string()
    }

    fn authorize_url(
        &self,
        client_id: &str,
        redirect: &str,
        challenge: &str,
        extra: &str,
    ) -> String {
        format!(
            "{}/authorize?response_type=code&client_id={}&redirect_uri={}&state=st-1&code_challenge={challenge}&code_challenge_method=S256{extra}",
            self.app.base,
            urlencode(client_id),
            urlencode(redirect),
        )
    }

    /// Open the consent page and answer it; the redirect back to the client.
    async fn consent(&mut self, authorize: &str, decision: &str) -> String {
        let resp = self.browser.get(authorize).await;
        assert_eq!(resp.status(), StatusCode::OK, "the consent page");
        // Browsers check form-action on the redirect after the form: the client's origin
        // must be allowed, or the person's Approve goes nowhere.
        let csp = resp.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        let redirect = query_of(authorize)["redirect_uri"].clone();
        let origin = reqwest::Url::parse(&redirect)
            .unwrap()
            .origin()
            .ascii_serialization();
        assert!(
            csp.contains(&format!("form-action 'self' {origin}")),
            "{csp}"
        );
        assert!(csp.contains("script-src 'self'"), "{csp}");
        let page = resp.text().await.unwrap();
        assert!(page.contains("id=\"consent\""), "{page}");
        let ticket = attr_after(&page, "name=\"ticket\" value=\"");
        let csrf = attr_after(&page, "name=\"csrf\" value=\"");
        let url = format!("{}/authorize", self.app.base);
        let resp = self
            .browser
            .send(Method::POST, &url, |r| {
                r.header("origin", &self.app.base).form(&[
                    ("ticket", ticket.as_str()),
                    ("csrf", csrf.as_str()),
                    ("decision", decision),
                ])
            })
            .await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        resp.headers()["location"].to_str().unwrap().to_string()
    }

    async fn code(&mut self, client_id: &str, redirect: &str, challenge: &str) -> String {
        let url = self.authorize_url(client_id, redirect, challenge, "");
        let back = self.consent(&url, "approve").await;
        let q = query_of(&back);
        assert_eq!(q["state"], "st-1");
        assert_eq!(q["iss"], self.app.public_url);
        q["code"].clone()
    }

    async fn token(&self, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let resp = self
            .app
            .client
            .post(format!("{}/token", self.app.base))
            .form(form)
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.headers()
                .get("cache-control")
                .map(|v| v.to_str().unwrap()),
            Some("no-store")
        );
        status_json(resp).await
    }

    async fn exchange(&self, client_id: &str, code: &str, verifier: &str) -> (StatusCode, Value) {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("client_id", client_id),
            ("code_verifier", verifier),
        ])
        .await
    }

    async fn refresh(&self, client_id: &str, refresh: &str) -> (StatusCode, Value) {
        self.token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", client_id),
        ])
        .await
    }

    /// Register, authorize and exchange: (client_id, token response).
    async fn connect(&mut self) -> (String, Value) {
        let client_id = self.register(REDIRECT).await;
        let (verifier, challenge) = pkce();
        let code = self.code(&client_id, REDIRECT, &challenge).await;
        let (status, tokens) = self.exchange(&client_id, &code, &verifier).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        (client_id, tokens)
    }

    async fn mcp_status(&self, access_token: &str) -> StatusCode {
        self.app
            .post(access_token, None)
            .json(
                &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": LATEST, "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"}}}),
            )
            .send()
            .await
            .unwrap()
            .status()
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn discovery_leads_from_the_401_to_the_authorization_server() {
    let f = flow().await;
    let resp = f
        .app
        .client
        .post(format!("{}/mcp", f.app.base))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let challenge = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        challenge.contains("resource_metadata=")
            && challenge.contains("scope=\"notes:read notes:write\""),
        "{challenge}"
    );
    let prm: Value = f
        .app
        .client
        .get(format!(
            "{}/.well-known/oauth-protected-resource/mcp",
            f.app.base
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(prm["authorization_servers"], json!([f.app.public_url]));
    for path in ["oauth-authorization-server", "openid-configuration"] {
        let meta: Value = f
            .app
            .client
            .get(format!("{}/.well-known/{path}", f.app.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(meta["issuer"], f.app.public_url, "{path}");
        assert_eq!(meta["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(meta["client_id_metadata_document_supported"], true);
        assert!(meta["registration_endpoint"]
            .as_str()
            .unwrap()
            .ends_with("/register"));
        assert!(meta["revocation_endpoint"]
            .as_str()
            .unwrap()
            .ends_with("/revoke"));
        assert!(meta["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("none")));
    }
}

#[tokio::test]
async fn a_connected_client_uses_and_refreshes_its_tokens() {
    let mut f = flow().await;
    let (client_id, tokens) = f.connect().await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3600);
    assert_eq!(tokens["scope"], "notes:read notes:write");
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(f.mcp_status(access).await, StatusCode::OK);
    let sid = f.app.session(access).await;
    f.app
        .ok(
            access,
            &sid,
            "write_note",
            json!({"path": "from-oauth.md", "body": "x"}),
        )
        .await;
    assert!(f.app.vault_dir("local").join("from-oauth.md").exists());
    // Refresh: a new pair; the old refresh token is used up.
    let (status, next) = f
        .refresh(&client_id, tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK, "{next}");
    assert_ne!(next["refresh_token"], tokens["refresh_token"]);
    assert_eq!(
        f.mcp_status(next["access_token"].as_str().unwrap()).await,
        StatusCode::OK
    );
    // The account page lists it.
    let listed = status_json(f.browser.get(&format!("{}/api/clients", f.app.base)).await)
        .await
        .1;
    assert_eq!(listed["clients"][0]["name"], "Test Client");
    assert_eq!(listed["clients"][0]["client_id"], client_id);
}

#[tokio::test]
async fn a_wrong_pkce_verifier_or_a_reused_code_is_invalid_grant() {
    let mut f = flow().await;
    let client_id = f.register(REDIRECT).await;
    let (verifier, challenge) = pkce();
    let code = f.code(&client_id, REDIRECT, &challenge).await;
    let wrong = format!("w{}", "y".repeat(50));
    let (status, err) = f.exchange(&client_id, &code, &wrong).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    // A code is tried once: even the right verifier cannot use it now.
    let (status, err) = f.exchange(&client_id, &code, &verifier).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );

    let code = f.code(&client_id, REDIRECT, &challenge).await;
    let (status, _) = f.exchange(&client_id, &code, &verifier).await;
    assert_eq!(status, StatusCode::OK);
    let (status, err) = f.exchange(&client_id, &code, &verifier).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert!(err["error_description"]
        .as_str()
        .unwrap()
        .contains("already used"));
}

#[tokio::test]
async fn an_unregistered_redirect_is_refused_without_redirecting() {
    let mut f = flow().await;
    let client_id = f.register(REDIRECT).await;
    let (_, challenge) = pkce();
    for redirect in [
        "https://evil.example/callback",
        "http://127.0.0.1:33333/elsewhere",
    ] {
        let url = f.authorize_url(&client_id, redirect, &challenge, "");
        let resp = f.browser.get(&url).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{redirect}");
        assert!(resp.headers().get("location").is_none());
        assert!(resp.text().await.unwrap().contains("not registered"));
    }
    // A loopback redirect may use any port (RFC 8252).
    let url = f.authorize_url(
        &client_id,
        "http://127.0.0.1:44444/callback",
        &challenge,
        "",
    );
    assert_eq!(f.browser.get(&url).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_resource_of_another_server_is_refused() {
    let mut f = flow().await;
    let client_id = f.register(REDIRECT).await;
    let (verifier, challenge) = pkce();
    let url = f.authorize_url(
        &client_id,
        REDIRECT,
        &challenge,
        "&resource=https%3A%2F%2Fother.example%2Fmcp",
    );
    let resp = f.browser.get(&url).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let q = query_of(resp.headers()["location"].to_str().unwrap());
    assert_eq!(q["error"], "invalid_target");
    assert_eq!(q["state"], "st-1");
    // Named at the token endpoint instead: refused there too.
    let code = f.code(&client_id, REDIRECT, &challenge).await;
    let (status, err) = f
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client_id),
            ("code_verifier", &verifier),
            ("resource", "https://other.example/mcp"),
        ])
        .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_target"))
    );
    // This server's own endpoint is fine, and becomes the token's audience.
    let resource = format!(
        "&resource={}",
        urlencode(&format!("{}/mcp", f.app.public_url))
    );
    let back = f
        .consent(
            &f.authorize_url(&client_id, REDIRECT, &challenge, &resource),
            "approve",
        )
        .await;
    let (status, tokens) = f
        .exchange(&client_id, &query_of(&back)["code"], &verifier)
        .await;
    assert_eq!(status, StatusCode::OK);
    let access = tokens["access_token"].as_str().unwrap();
    let payload = access.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["aud"], format!("{}/mcp", f.app.public_url));
    assert_eq!(f.mcp_status(access).await, StatusCode::OK);
}

#[tokio::test]
async fn a_denied_consent_goes_back_with_access_denied_and_no_code() {
    let mut f = flow().await;
    let client_id = f.register(REDIRECT).await;
    let (_, challenge) = pkce();
    let url = f.authorize_url(&client_id, REDIRECT, &challenge, "");
    let back = f.consent(&url, "deny").await;
    let q = query_of(&back);
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "st-1");
    assert!(!q.contains_key("code"));
    let listed = status_json(f.browser.get(&format!("{}/api/clients", f.app.base)).await)
        .await
        .1;
    assert_eq!(listed["clients"], json!([]));
}

#[tokio::test]
async fn a_reused_refresh_token_revokes_the_whole_grant() {
    let mut f = flow().await;
    let (client_id, tokens) = f.connect().await;
    let first = tokens["refresh_token"].as_str().unwrap();
    let (_, next) = f.refresh(&client_id, first).await;
    let access = next["access_token"].as_str().unwrap();
    assert_eq!(f.mcp_status(access).await, StatusCode::OK);
    // The first refresh token again: somebody replays it.
    let (status, err) = f.refresh(&client_id, first).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    // Everything of the grant is dead: the newest refresh token and the access tokens.
    let (status, _) = f
        .refresh(&client_id, next["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(f.mcp_status(access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        f.mcp_status(tokens["access_token"].as_str().unwrap()).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_disconnected_client_loses_its_tokens_at_once() {
    let mut f = flow().await;
    let (client_id, tokens) = f.connect().await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(f.mcp_status(access).await, StatusCode::OK);
    let listed = status_json(f.browser.get(&format!("{}/api/clients", f.app.base)).await)
        .await
        .1;
    let grant = listed["clients"][0]["id"].as_str().unwrap().to_string();
    let csrf = crate::signin::csrf_of(&mut f.browser, &f.app).await;
    let url = format!("{}/api/clients/{grant}", f.app.base);
    let resp = f
        .browser
        .send(Method::DELETE, &url, |r| r.header("x-csrf-token", &csrf))
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(f.mcp_status(access).await, StatusCode::UNAUTHORIZED);
    let (status, err) = f
        .refresh(&client_id, tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let data = f.app.data.clone();
    let base = f.app.base.clone();
    f.app.stop().await;
    // Still refused after a restart.
    let app = spawn_env_in(&data, &[("MODE", "local")], |_| {}).await;
    let status = app
        .post(access, None)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::UNAUTHORIZED, "after restart ({base})");
}

#[tokio::test]
async fn revoking_a_token_through_rfc_7009_ends_the_grant() {
    let mut f = flow().await;
    let (client_id, tokens) = f.connect().await;
    let resp = f
        .app
        .client
        .post(format!("{}/revoke", f.app.base))
        .form(&[
            ("token", tokens["refresh_token"].as_str().unwrap()),
            ("client_id", &client_id),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        f.mcp_status(tokens["access_token"].as_str().unwrap()).await,
        StatusCode::UNAUTHORIZED
    );
    // Unknown tokens are answered 200 too (RFC 7009 2.2).
    let resp = f
        .app
        .client
        .post(format!("{}/revoke", f.app.base))
        .form(&[("token", "nonsense"), ("client_id", &client_id)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_access_token_for_another_audience_is_refused() {
    let f = flow().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({"sub": "local", "iat": now, "exp": now + 600, "iss": f.app.public_url,
                        "aud": "https://other.example/mcp", "jti": "j1", "gid": "g1"});
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    // Same secret, same issuer: only the audience is wrong.
    assert_eq!(f.mcp_status(&token).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn registration_is_checked_and_limited_per_address() {
    let f = flow_with(&[("OAUTH_REGISTRATIONS_PER_HOUR", "4")]).await;
    for (body, error) in [
        (json!({"redirect_uris": []}), "invalid_redirect_uri"),
        (
            json!({"redirect_uris": ["http://evil.example/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["javascript:alert(1)"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "client_secret_basic"}),
            "invalid_client_metadata",
        ),
    ] {
        let resp = f
            .app
            .client
            .post(format!("{}/register", f.app.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, err) = status_json(resp).await;
        assert_eq!(
            (status, err["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some(error)),
            "{body}"
        );
    }
    // The refusals above counted too: a fifth registration from this address is refused.
    let resp = f
        .app
        .client
        .post(format!("{}/register", f.app.base))
        .json(&json!({"redirect_uris": [REDIRECT]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().contains_key("retry-after"));
}

/// A client metadata document served on loopback, as a client would host it.
async fn serve_metadata(
    doc: impl Fn(&str) -> Value + Send + Sync + 'static,
) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let url = format!("http://{addr}/oauth/client.json");
    let body = doc(&url);
    let app = axum::Router::new().route(
        "/oauth/client.json",
        axum::routing::get(move || {
            let body = body.clone();
            async move { axum::Json(body) }
        }),
    );
    let handle = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, handle)
}

#[tokio::test]
async fn a_metadata_document_client_connects_only_where_the_test_setting_allows_it() {
    let (url, _server) = serve_metadata(
        |url| json!({"client_id": url, "client_name": "Doc Client", "redirect_uris": [REDIRECT]}),
    )
    .await;
    let host = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let (_, challenge) = pkce();
    // Without the setting: plain http and a loopback address are both refused.
    let mut strict = flow().await;
    let resp = strict
        .browser
        .get(&strict.authorize_url(&url, REDIRECT, &challenge, ""))
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let https = url.replace("http://", "https://");
    let resp = strict
        .browser
        .get(&strict.authorize_url(&https, REDIRECT, &challenge, ""))
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.text().await.unwrap().contains("non-public address"));
    // With it, for exactly this host: the document is fetched and its redirects apply.
    let mut f = flow_with(&[("OAUTH_METADATA_HTTP_HOSTS", &host)]).await;
    let (verifier, challenge) = pkce();
    let page = f
        .browser
        .get(&f.authorize_url(&url, REDIRECT, &challenge, ""))
        .await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("Doc Client"));
    let code = f.code(&url, REDIRECT, &challenge).await;
    let (status, tokens) = f.exchange(&url, &code, &verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(
        f.mcp_status(tokens["access_token"].as_str().unwrap()).await,
        StatusCode::OK
    );
    let resp = f
        .browser
        .get(&f.authorize_url(&url, "https://evil.example/cb", &challenge, ""))
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::BAD_REQUEST,
        "redirect not in the document"
    );
}

#[tokio::test]
async fn authorize_sends_a_signed_out_person_to_sign_in_and_back() {
    let f = flow().await;
    let client_id = f.register(REDIRECT).await;
    let (_, challenge) = pkce();
    let mut stranger = Browser::new();
    let resp = stranger
        .get(&f.authorize_url(&client_id, REDIRECT, &challenge, ""))
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let to = resp.headers()["location"].to_str().unwrap();
    assert!(
        to.starts_with("/?next=%2Fauthorize%3F") || to.starts_with("/?next=/authorize"),
        "{to}"
    );
}
