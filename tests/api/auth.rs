//! Bearer tokens: only well-formed HS256 tokens for this server, with safe user ids.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn sign(claims: &Value, alg: Algorithm, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(alg),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn good_claims(app: &TestApp) -> Value {
    json!({"sub":"alice","iat":now(),"exp":now()+600,"iss":app.public_url,"aud":app.public_url,"jti":"t-1"})
}

async fn initialize_status(app: &TestApp, token: &str) -> (StatusCode, String) {
    let resp = app
        .post(token, None)
        .json(&json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":LATEST}}))
        .send()
        .await
        .unwrap();
    (resp.status(), header(resp.headers(), "www-authenticate"))
}

#[tokio::test]
async fn well_formed_token_is_accepted() {
    let app = spawn_app().await;
    let token = sign(&good_claims(&app), Algorithm::HS256, SECRET);
    assert_eq!(initialize_status(&app, &token).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_token_without_jti_is_refused() {
    let app = spawn_app().await;
    let mut claims = good_claims(&app);
    claims.as_object_mut().unwrap().remove("jti");
    let token = sign(&claims, Algorithm::HS256, SECRET);
    let (status, challenge) = initialize_status(&app, &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(challenge.contains("jti"), "{challenge}");
}

#[tokio::test]
async fn missing_token_is_401_pointing_at_resource_metadata() {
    let app = spawn_app().await;
    let resp = app
        .client
        .post(format!("{}/mcp", app.base))
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":LATEST}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let challenge = header(resp.headers(), "www-authenticate");
    assert_eq!(
        challenge,
        format!(
            "Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\", scope=\"notes:read notes:write\"",
            app.public_url
        )
    );
    let body: Value = resp.json().await.unwrap();
    assert!(body["error"].is_string());
}

#[tokio::test]
async fn bad_tokens_are_401_with_a_challenge() {
    let app = spawn_app().await;
    let base = good_claims(&app);
    let with = |k: &str, v: Value| {
        let mut c = base.clone();
        c[k] = v;
        c
    };
    let without = |k: &str| {
        let mut c = base.clone();
        c.as_object_mut().unwrap().remove(k);
        c
    };
    let header_none = {
        use base64::Engine;
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.",
            e.encode(br#"{"alg":"none","typ":"JWT"}"#),
            e.encode(base.to_string())
        )
    };
    let cases: Vec<(&str, String)> = vec![
        ("alg none", header_none),
        (
            "wrong signature",
            sign(
                &base,
                Algorithm::HS256,
                "another-secret-another-secret-0123456",
            ),
        ),
        ("other algorithm", sign(&base, Algorithm::HS512, SECRET)),
        (
            "expired",
            sign(&with("exp", json!(now() - 3600)), Algorithm::HS256, SECRET),
        ),
        (
            "not yet valid",
            sign(&with("nbf", json!(now() + 3600)), Algorithm::HS256, SECRET),
        ),
        (
            "wrong audience",
            sign(
                &with("aud", json!("https://elsewhere")),
                Algorithm::HS256,
                SECRET,
            ),
        ),
        (
            "wrong issuer",
            sign(
                &with("iss", json!("https://elsewhere")),
                Algorithm::HS256,
                SECRET,
            ),
        ),
        ("no sub", sign(&without("sub"), Algorithm::HS256, SECRET)),
        ("no exp", sign(&without("exp"), Algorithm::HS256, SECRET)),
        ("no iat", sign(&without("iat"), Algorithm::HS256, SECRET)),
        ("no iss", sign(&without("iss"), Algorithm::HS256, SECRET)),
        ("no aud", sign(&without("aud"), Algorithm::HS256, SECRET)),
        (
            "sub with ..",
            sign(&with("sub", json!("..")), Algorithm::HS256, SECRET),
        ),
        (
            "sub with /",
            sign(&with("sub", json!("../bob")), Algorithm::HS256, SECRET),
        ),
        (
            "sub too long",
            sign(
                &with("sub", json!("x".repeat(65))),
                Algorithm::HS256,
                SECRET,
            ),
        ),
        ("garbage", "not.a.token".to_string()),
    ];
    for (what, token) in cases {
        let (status, challenge) = initialize_status(&app, &token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}");
        assert!(
            challenge.starts_with("Bearer ") && challenge.contains("resource_metadata="),
            "{what}: {challenge}"
        );
    }
    assert!(!app.data.join("vaults/..").join("bob").exists());
    let vaults: Vec<_> = std::fs::read_dir(app.data.join("vaults"))
        .unwrap()
        .collect();
    assert!(
        vaults.is_empty(),
        "no vault was created for a refused token"
    );
}

#[tokio::test]
async fn protected_resource_metadata_is_served_at_both_paths() {
    let app = spawn_app().await;
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let body: Value = app
            .client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            body["resource"],
            format!("{}/mcp", app.public_url),
            "{path}"
        );
        assert_eq!(body["bearer_methods_supported"], json!(["header"]));
    }
}

#[tokio::test]
async fn read_only_token_gets_insufficient_scope_on_write_tools() {
    let app = spawn_app().await;
    let full = app.token("alice");
    let sid = app.session(&full).await;
    app.ok(&full, &sid, "write_note", json!({"path":"a.md","body":"x"}))
        .await;
    let ro = app
        .keys
        .mint(
            &vault_actors::UserId::parse("alice").unwrap(),
            std::time::Duration::from_secs(60),
            &["notes:read".into()],
        )
        .unwrap();
    let ro_sid = app.session(&ro).await;
    assert_eq!(
        app.err_code(
            &ro,
            &ro_sid,
            "write_note",
            json!({"path":"a.md","body":"y"})
        )
        .await,
        "insufficient_scope"
    );
    assert_eq!(
        app.err_code(&ro, &ro_sid, "delete_note", json!({"path":"a.md"}))
            .await,
        "insufficient_scope"
    );
    let read = app
        .ok(&ro, &ro_sid, "read_note", json!({"path":"a.md"}))
        .await;
    assert_eq!(read["body"], "x");
}
