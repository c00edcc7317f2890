//! Rate limits at the edge: per user on /mcp and the web app, per client IP on failed
//! authentications and sign-ins. Each answers 429 with Retry-After and never touches data.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{spawn_env_in, status_json, TestApp};
use crate::signin::{sign_in_local, Browser};

async fn app_with(env: &[(&str, &str)]) -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_env_in(dir.path(), env, |_| {}).await;
    (app, dir)
}

async fn ping(app: &TestApp, token: &str, sid: &str) -> reqwest::Response {
    app.post(token, Some(sid))
        .json(&json!({"jsonrpc": "2.0", "id": 7, "method": "ping"}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_user_over_the_rate_gets_429_and_other_users_do_not_notice() {
    let (app, _dir) =
        app_with(&[("RATE_LIMIT_PER_SECOND", "0.5"), ("RATE_LIMIT_BURST", "5")]).await;
    let (a, b) = (app.token("alice"), app.token("bob"));
    // initialize and notifications/initialized: 2 of alice's 5.
    let sid = app.session(&a).await;
    for i in 0..3 {
        assert_eq!(
            ping(&app, &a, &sid).await.status(),
            StatusCode::OK,
            "ping {i}"
        );
    }
    let resp = ping(&app, &a, &sid).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    let (_, body) = status_json(resp).await;
    assert_eq!(body["jsonrpc"], "2.0", "a JSON-RPC body on /mcp");
    assert_eq!(body["error"]["data"]["code"], "rate_limited");
    assert_eq!(body["error"]["data"]["scope"], "user_requests");
    // Bob has his own bucket.
    let sid_b = app.session(&b).await;
    for _ in 0..3 {
        assert_eq!(ping(&app, &b, &sid_b).await.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn an_address_that_keeps_failing_authentication_must_wait() {
    let (app, _dir) = app_with(&[("AUTH_FAILURES_PER_MINUTE", "3")]).await;
    let good = app.token("alice");
    for _ in 0..3 {
        let resp = app
            .post("not-a-token", None)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    // Even a good token waits now: the address is what is limited, before any check.
    let resp = app.post(&good, None).json(&json!({})).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().contains_key("retry-after"));
    let (_, body) = status_json(resp).await;
    assert_eq!(body["error"]["data"]["scope"], "auth_failures");
    // Another address is not affected (the proxy header counts only behind a private peer,
    // which loopback is).
    let resp = app
        .post(&good, None)
        .header("x-forwarded-for", "203.0.113.9")
        .json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": crate::helpers::LATEST, "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn sign_ins_per_address_are_limited() {
    let (app, _dir) = app_with(&[("MODE", "local"), ("SIGN_INS_PER_HOUR", "2")]).await;
    let mut browser = Browser::new();
    for _ in 0..2 {
        let resp = browser.get(&format!("{}/login", app.base)).await;
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let resp = browser.get(&format!("{}/login", app.base)).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let (_, body) = status_json(resp).await;
    assert_eq!(body["error"], "rate_limited");
    assert_eq!(body["scope"], "sign_ins");
}

#[tokio::test]
async fn the_web_app_shares_the_users_rate() {
    let (app, _dir) = app_with(&[
        ("MODE", "local"),
        ("RATE_LIMIT_PER_SECOND", "0.5"),
        ("RATE_LIMIT_BURST", "3"),
    ])
    .await;
    let mut browser = Browser::new();
    sign_in_local(&mut browser, &app).await;
    for _ in 0..3 {
        let resp = browser.get(&format!("{}/api/tokens", app.base)).await;
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let resp = browser.get(&format!("{}/api/tokens", app.base)).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    // The same user's MCP token draws from the same bucket.
    let resp = app
        .post(&app.token("local"), None)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
}
