//! The audit log: each security event is written once, with its fields, and no token, code or
//! cookie ever reaches the file.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use stand_in_idp::{Fault, Idp, IdpConfig};

use crate::helpers::{spawn_env_in, status_json, TestApp, LATEST};
use crate::signin::{csrf_of, Browser};

fn audit_lines(app: &TestApp) -> Vec<Value> {
    std::fs::read_to_string(app.data.join("audit/audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every audit line is JSON"))
        .collect()
}

fn events<'a>(lines: &'a [Value], event: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["event"] == event).collect()
}

/// Sign `account` in through the stand-in provider; returns the callback URL used.
async fn sign_in(browser: &mut Browser, app: &TestApp, account: &str) -> String {
    let resp = browser.get(&format!("{}/login", app.base)).await;
    let authorize = resp.headers()["location"].to_str().unwrap().to_string();
    let resp = browser
        .get(&format!("{authorize}&login_hint={account}"))
        .await;
    let callback = resp.headers()["location"].to_str().unwrap().to_string();
    browser
        .send(Method::GET, &callback, |r| {
            r.header("user-agent", "audit-test/1")
        })
        .await;
    callback
}

#[tokio::test]
async fn every_security_event_is_logged_once_with_its_fields_and_no_secret() {
    let idp = Idp::start(IdpConfig::default()).await;
    let cfg = IdpConfig::default();
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_env_in(
        dir.path(),
        &[
            ("OPENID_PROVIDER_URL", idp.url()),
            ("OAUTH_CLIENT_ID", &cfg.client_id),
            ("OAUTH_CLIENT_SECRET", &cfg.client_secret),
            ("RATE_LIMIT_PER_SECOND", "0.01"),
            ("RATE_LIMIT_BURST", "40"),
        ],
        |_| {},
    )
    .await;
    let mut secrets: Vec<String> = Vec::new();

    // A failed sign-in (a bad ID token), then a good one.
    idp.set_fault(Fault::WrongNonce);
    let mut intruder = Browser::new();
    let failed = sign_in(&mut intruder, &app, "alice").await;
    secrets.push(
        failed
            .split("code=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .into(),
    );
    idp.set_fault(Fault::None);
    let mut browser = Browser::new();
    let good = sign_in(&mut browser, &app, "alice").await;
    secrets.push(
        good.split("code=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .into(),
    );
    secrets.push(browser.cookie("vault_session").unwrap().to_string());
    let csrf = csrf_of(&mut browser, &app).await;
    secrets.push(csrf.clone());

    // A token: issued, refreshed, revoked.
    let resp = browser
        .send(Method::POST, &format!("{}/api/tokens", app.base), |r| {
            r.header("x-csrf-token", &csrf)
                .json(&json!({"name": "laptop", "ttl": "1d", "scope": "write"}))
        })
        .await;
    let (_, created) = status_json(resp).await;
    let token = created["token"].as_str().unwrap().to_string();
    secrets.push(token.clone());
    let resp = app
        .client
        .post(format!("{}/api/tokens/refresh", app.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let (_, fresh) = status_json(resp).await;
    let fresh_token = fresh["token"].as_str().unwrap().to_string();
    secrets.push(fresh_token.clone());
    let url = format!("{}/api/tokens/{}", app.base, fresh["id"].as_str().unwrap());
    browser
        .send(Method::DELETE, &url, |r| r.header("x-csrf-token", &csrf))
        .await;

    // Authentication failures with their reasons.
    // One character of the signature changed (not the last: it also carries padding bits).
    let at = fresh_token.len() - 5;
    let swap = if &fresh_token[at..at + 1] == "A" {
        "B"
    } else {
        "A"
    };
    let forged = format!("{}{swap}{}", &fresh_token[..at], &fresh_token[at + 1..]);
    for bad in [
        None,
        Some("garbage"),
        Some(forged.as_str()),
        Some(fresh_token.as_str()),
    ] {
        let mut req = app
            .client
            .post(format!("{}/mcp", app.base))
            .header("accept", "application/json, text/event-stream")
            .header("user-agent", "audit-test/1");
        if let Some(t) = bad {
            req = req.bearer_auth(t);
        }
        let resp = req.json(&json!({})).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }

    // A path that tries to leave the vault; a session id that is not the caller's.
    let t = app.token("1000000000000000000000a1");
    secrets.push(t.clone());
    let sid = app.session(&t).await;
    secrets.push(sid.clone());
    let code = app
        .err_code(
            &t,
            &sid,
            "read_note",
            json!({"path": "../../etc/passwd.md"}),
        )
        .await;
    assert_eq!(code, "invalid_path");
    let other = app.token("bob");
    secrets.push(other.clone());
    let resp = app
        .post(&other, Some(&sid))
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // A connected client, then disconnected; then a rate-limited request and a sign-out.
    let resp = app
        .client
        .post(format!("{}/register", app.base))
        .json(&json!({"redirect_uris": ["http://127.0.0.1:9/cb"], "client_name": "Audited"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let resp = browser
        .send(Method::POST, &format!("{}/logout", app.base), |r| {
            r.form(&[("csrf", csrf.as_str())])
        })
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let limited_token = app.token("carol");
    secrets.push(limited_token.clone());
    let limited_sid = app.session(&limited_token).await;
    let mut limited = false;
    for _ in 0..60 {
        let resp = app
            .post(&limited_token, Some(&limited_sid))
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
            .send()
            .await
            .unwrap();
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = true;
            break;
        }
    }
    assert!(limited, "the burst of 40 runs out");
    let _ = LATEST;

    let lines = audit_lines(&app);
    for line in &lines {
        for field in ["ts", "event", "user", "ip", "user_agent", "detail"] {
            assert!(line.get(field).is_some(), "{field} missing in {line}");
        }
    }
    let once = |event: &str| {
        let found = events(&lines, event);
        assert_eq!(found.len(), 1, "{event}: {found:?}");
        found[0].clone()
    };
    let failed = once("sign_in_failed");
    assert!(failed["detail"]["reason"]
        .as_str()
        .unwrap()
        .to_lowercase()
        .contains("nonce"));
    let signed_in = once("sign_in");
    assert_eq!(signed_in["user"], "1000000000000000000000a1");
    assert_eq!(signed_in["user_agent"], "audit-test/1");
    assert_eq!(signed_in["ip"], "127.0.0.1");
    let issued = once("token_issued");
    assert_eq!(issued["detail"]["token_id"], created["id"]);
    assert_eq!(once("token_refreshed")["detail"]["replaces"], created["id"]);
    assert_eq!(once("token_revoked")["detail"]["token_id"], fresh["id"]);
    let reasons: Vec<&str> = events(&lines, "auth_failed")
        .iter()
        .map(|l| l["detail"]["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        ["missing", "malformed", "bad_signature", "revoked"]
    );
    assert_eq!(once("invalid_path")["user"], "1000000000000000000000a1");
    let foreign = once("foreign_session");
    assert_eq!(foreign["user"], "bob");
    assert_eq!(foreign["ip"], "127.0.0.1");
    assert!(events(&lines, "unknown_session").is_empty());
    assert_eq!(once("client_registered")["detail"]["name"], "Audited");
    assert_eq!(once("sign_out")["user"], "1000000000000000000000a1");
    let limited_line = once("rate_limited");
    assert_eq!(limited_line["user"], "carol");
    assert_eq!(limited_line["detail"]["scope"], "user_requests");

    // Nothing secret anywhere in the file.
    let text = std::fs::read_to_string(app.data.join("audit/audit.jsonl")).unwrap();
    for secret in &secrets {
        assert!(
            !text.contains(secret.as_str()),
            "a secret reached the audit log"
        );
    }
}
