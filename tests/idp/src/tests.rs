//! The provider driven over real sockets the way an OIDC client drives it.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::redirect::Policy;
use reqwest::{Response, StatusCode};
use serde_json::Value;
use sha2::{Digest, Sha256};
use url::Url;

use crate::{Fault, Idp, IdpConfig};

const REDIRECT_URI: &str = "http://127.0.0.1:9/oauth/callback";
const VERIFIER: &str = "a-code-verifier-long-enough-to-satisfy-rfc-7636";
const NONCE: &str = "the-nonce";
const STATE: &str = "the-state";
const ALICE: &str = "1000000000000000000000a1";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("build a reqwest client")
}

/// A correct authorization request, with `changes` replacing or adding parameters.
async fn authorize(idp: &Idp, changes: &[(&str, &str)]) -> Response {
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER));
    let config = IdpConfig::default();
    let mut params = vec![
        ("client_id", config.client_id.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("response_type", "code"),
        ("scope", "openid profile"),
        ("state", STATE),
        ("nonce", NONCE),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    for (name, value) in changes {
        params.retain(|(kept, _)| kept != name);
        params.push((name, value));
    }
    let url = Url::parse_with_params(&format!("{}/authorize", idp.url()), &params).expect("URL");
    client().get(url).send().await.expect("GET /authorize")
}

/// The redirect's query parameters, after checking it is a 302 to [`REDIRECT_URI`].
fn redirect_params(response: &Response) -> Vec<(String, String)> {
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()["location"].to_str().expect("location");
    let location = Url::parse(location).expect("absolute location");
    assert!(location.as_str().starts_with(REDIRECT_URI), "{location}");
    location.query_pairs().into_owned().collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// Signs alice in with `login_hint` and returns the code.
async fn code_for_alice(idp: &Idp) -> String {
    let params = redirect_params(&authorize(idp, &[("login_hint", "alice")]).await);
    assert_eq!(param(&params, "state"), Some(STATE));
    param(&params, "code").expect("a code").to_owned()
}

/// Redeems `code` with Basic client authentication and the given verifier.
async fn exchange(idp: &Idp, code: &str, verifier: &str) -> Response {
    let config = IdpConfig::default();
    client()
        .post(format!("{}/token", idp.url()))
        .basic_auth(&config.client_id, Some(&config.client_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .expect("POST /token")
}

/// The `error` of an OAuth error response with the given status.
async fn oauth_error(response: Response, status: StatusCode) -> String {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.expect("JSON error body");
    body["error"].as_str().expect("error field").to_owned()
}

/// An ID token for alice issued while `fault` was set.
async fn id_token_with(fault: Fault) -> (Idp, String) {
    let idp = Idp::start(IdpConfig::default()).await;
    idp.set_fault(fault);
    let code = code_for_alice(&idp).await;
    let response = exchange(&idp, &code, VERIFIER).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("token JSON");
    let id_token = body["id_token"].as_str().expect("id_token").to_owned();
    (idp, id_token)
}

/// The ID token's claims, checked as a client would: signature by the JWKS key its `kid` names,
/// RS256, issuer, audience and expiry.
async fn verify(idp: &Idp, id_token: &str) -> jsonwebtoken::errors::Result<Value> {
    let jwks: JwkSet = client()
        .get(format!("{}/jwks", idp.url()))
        .send()
        .await
        .expect("GET /jwks")
        .json()
        .await
        .expect("JWKS JSON");
    let kid = jsonwebtoken::decode_header(id_token)?.kid.expect("a kid");
    let jwk = jwks.find(&kid).expect("the kid is in the JWKS");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[idp.url()]);
    validation.set_audience(&[IdpConfig::default().client_id]);
    let key = DecodingKey::from_jwk(jwk)?;
    Ok(jsonwebtoken::decode::<Value>(id_token, &key, &validation)?.claims)
}

/// The claims without any check, to see what a faulty token says.
fn unverified_claims(id_token: &str) -> Value {
    let payload = id_token.split('.').nth(1).expect("a JWT payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON")
}

#[tokio::test]
async fn discovery_document_points_at_this_provider() {
    let idp = Idp::start(IdpConfig::default()).await;
    let url = idp.url();
    assert!(url.starts_with("http://127.0.0.1:") && !url.ends_with('/'));
    let document: Value = client()
        .get(format!("{url}/.well-known/openid-configuration"))
        .send()
        .await
        .expect("GET discovery")
        .json()
        .await
        .expect("discovery JSON");

    assert_eq!(document["issuer"], url);
    assert_eq!(
        document["authorization_endpoint"],
        format!("{url}/authorize")
    );
    assert_eq!(document["token_endpoint"], format!("{url}/token"));
    assert_eq!(document["userinfo_endpoint"], format!("{url}/userinfo"));
    assert_eq!(document["jwks_uri"], format!("{url}/jwks"));
    assert_eq!(
        document["response_types_supported"],
        serde_json::json!(["code"])
    );
    assert_eq!(
        document["subject_types_supported"],
        serde_json::json!(["public"])
    );
    assert_eq!(
        document["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );
    assert_eq!(
        document["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        document["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post"])
    );
    let scopes = document["scopes_supported"].as_array().expect("scopes");
    assert!(scopes.contains(&Value::from("openid")));
    let claims = document["claims_supported"].as_array().expect("claims");
    assert!(claims.contains(&Value::from("preferred_username")));
}

#[tokio::test]
async fn login_hint_sign_in_gives_an_id_token_that_verifies_against_the_jwks() {
    let idp = Idp::start(IdpConfig::default()).await;
    let code = code_for_alice(&idp).await;
    let response = exchange(&idp, &code, VERIFIER).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.expect("token JSON");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "openid profile");

    let claims = verify(&idp, body["id_token"].as_str().expect("id_token"))
        .await
        .expect("the ID token verifies");
    assert_eq!(claims["sub"], ALICE);
    assert_eq!(claims["preferred_username"], "alice");
    assert_eq!(claims["nonce"], NONCE);
    assert_eq!(
        claims["exp"].as_u64(),
        claims["iat"].as_u64().map(|iat| iat + 3600)
    );
    assert!(
        claims["auth_time"].is_u64() && claims["name"].is_string() && claims["picture"].is_string()
    );
    assert_eq!(idp.token_requests(), 1);

    let userinfo: Value = client()
        .get(format!("{}/userinfo", idp.url()))
        .bearer_auth(body["access_token"].as_str().expect("access_token"))
        .send()
        .await
        .expect("GET /userinfo")
        .json()
        .await
        .expect("userinfo JSON");
    assert_eq!(userinfo["sub"], ALICE);
    assert_eq!(userinfo["preferred_username"], "alice");
}

#[tokio::test]
async fn client_secret_post_is_accepted_and_a_wrong_secret_is_invalid_client() {
    let idp = Idp::start(IdpConfig::default()).await;
    let config = IdpConfig::default();
    let redeem = |secret: &'static str, code: String| {
        let url = format!("{}/token", idp.url());
        let client_id = config.client_id.clone();
        async move {
            client()
                .post(url)
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", code.as_str()),
                    ("redirect_uri", REDIRECT_URI),
                    ("code_verifier", VERIFIER),
                    ("client_id", client_id.as_str()),
                    ("client_secret", secret),
                ])
                .send()
                .await
                .expect("POST /token")
        }
    };

    let wrong = redeem("not-the-secret", code_for_alice(&idp).await).await;
    assert!(wrong.headers().contains_key("www-authenticate"));
    assert_eq!(
        oauth_error(wrong, StatusCode::UNAUTHORIZED).await,
        "invalid_client"
    );

    let right = redeem("stand-in-secret", code_for_alice(&idp).await).await;
    assert_eq!(right.status(), StatusCode::OK);
    assert_eq!(idp.token_requests(), 2);
}

#[tokio::test]
async fn wrong_code_verifier_is_invalid_grant() {
    let idp = Idp::start(IdpConfig::default()).await;
    let code = code_for_alice(&idp).await;
    let response = exchange(&idp, &code, "another-verifier-that-is-also-long-enough-xx").await;
    assert_eq!(
        oauth_error(response, StatusCode::BAD_REQUEST).await,
        "invalid_grant"
    );
}

#[tokio::test]
async fn reused_code_is_invalid_grant() {
    let idp = Idp::start(IdpConfig::default()).await;
    let code = code_for_alice(&idp).await;
    assert_eq!(
        exchange(&idp, &code, VERIFIER).await.status(),
        StatusCode::OK
    );
    let again = exchange(&idp, &code, VERIFIER).await;
    assert_eq!(
        oauth_error(again, StatusCode::BAD_REQUEST).await,
        "invalid_grant"
    );
}

#[tokio::test]
async fn code_past_its_lifetime_is_invalid_grant() {
    let idp = Idp::start(IdpConfig::default()).await;
    idp.set_code_lifetime(Duration::ZERO);
    let code = code_for_alice(&idp).await;
    let response = exchange(&idp, &code, VERIFIER).await;
    assert_eq!(
        oauth_error(response, StatusCode::BAD_REQUEST).await,
        "invalid_grant"
    );
}

#[tokio::test]
async fn other_redirect_uri_at_token_is_invalid_grant() {
    let idp = Idp::start(IdpConfig::default()).await;
    let other = "http://127.0.0.1:9/elsewhere";
    let params = redirect_params(&authorize(&idp, &[("login_hint", "alice")]).await);
    let code = param(&params, "code").expect("a code");
    let config = IdpConfig::default();
    let response = client()
        .post(format!("{}/token", idp.url()))
        .basic_auth(&config.client_id, Some(&config.client_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", other),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .expect("POST /token");
    assert_eq!(
        oauth_error(response, StatusCode::BAD_REQUEST).await,
        "invalid_grant"
    );
}

#[tokio::test]
async fn sign_in_page_links_complete_the_authorization_for_their_account() {
    let idp = Idp::start(IdpConfig::default()).await;
    let page = authorize(&idp, &[]).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("HTML");
    assert!(html.contains("<title>Stand-in provider: sign in</title>"));
    assert!(html.contains("Sign in as bob</a>"));

    let marker = format!("<a class=\"account\" data-sub=\"{ALICE}\" href=\"");
    let start = html.find(&marker).expect("a link for alice") + marker.len();
    let href = &html[start..start + html[start..].find('"').expect("end of href")];
    let href = href.replace("&amp;", "&");
    let response = client()
        .get(format!("{}{href}", idp.url()))
        .send()
        .await
        .expect("follow the link");
    let params = redirect_params(&response);
    assert_eq!(param(&params, "state"), Some(STATE));
    let code = param(&params, "code").expect("a code");

    let body: Value = exchange(&idp, code, VERIFIER)
        .await
        .json()
        .await
        .expect("token JSON");
    let claims = verify(&idp, body["id_token"].as_str().expect("id_token"))
        .await
        .expect("the ID token verifies");
    assert_eq!(claims["sub"], ALICE);
}

#[tokio::test]
async fn unknown_client_id_is_400_without_redirect() {
    let idp = Idp::start(IdpConfig::default()).await;
    let response = authorize(&idp, &[("client_id", "stranger"), ("login_hint", "alice")]).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(!response.headers().contains_key("location"));
}

#[tokio::test]
async fn plain_code_challenge_method_is_reported_to_the_redirect_uri() {
    let idp = Idp::start(IdpConfig::default()).await;
    let response = authorize(
        &idp,
        &[("code_challenge_method", "plain"), ("login_hint", "alice")],
    )
    .await;
    let params = redirect_params(&response);
    assert_eq!(param(&params, "error"), Some("invalid_request"));
    assert_eq!(param(&params, "state"), Some(STATE));
    assert_eq!(param(&params, "code"), None);
}

#[tokio::test]
async fn userinfo_refuses_an_unknown_token() {
    let idp = Idp::start(IdpConfig::default()).await;
    let response = client()
        .get(format!("{}/userinfo", idp.url()))
        .bearer_auth("made-up")
        .send()
        .await
        .expect("GET /userinfo");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn wrong_signature_fault_keeps_the_kid_but_fails_verification() {
    let (idp, id_token) = id_token_with(Fault::WrongSignature).await;
    let error = verify(&idp, &id_token).await.expect_err("must not verify");
    assert_eq!(*error.kind(), ErrorKind::InvalidSignature);
    assert_eq!(unverified_claims(&id_token)["sub"], ALICE);
}

#[tokio::test]
async fn wrong_audience_fault_names_someone_else() {
    let (_idp, id_token) = id_token_with(Fault::WrongAudience).await;
    assert_eq!(unverified_claims(&id_token)["aud"], "someone-else");
}

#[tokio::test]
async fn wrong_issuer_fault_names_evil_example() {
    let (_idp, id_token) = id_token_with(Fault::WrongIssuer).await;
    assert_eq!(unverified_claims(&id_token)["iss"], "https://evil.example");
}

#[tokio::test]
async fn wrong_nonce_fault_replaces_the_nonce() {
    let (_idp, id_token) = id_token_with(Fault::WrongNonce).await;
    assert_eq!(unverified_claims(&id_token)["nonce"], "not-the-nonce");
}

#[tokio::test]
async fn expired_fault_dates_the_token_two_hours_back() {
    let (idp, id_token) = id_token_with(Fault::Expired).await;
    let error = verify(&idp, &id_token).await.expect_err("must not verify");
    assert_eq!(*error.kind(), ErrorKind::ExpiredSignature);
    let claims = unverified_claims(&id_token);
    let now = crate::provider::unix_now();
    let iat = claims["iat"].as_u64().expect("iat");
    assert!(
        (now - 2 * 3600 - 5..=now - 2 * 3600).contains(&iat),
        "iat {iat}, now {now}"
    );
    assert!(claims["exp"].as_u64().expect("exp") < now);
}

#[tokio::test]
async fn fault_none_restores_correct_tokens() {
    let idp = Idp::start(IdpConfig::default()).await;
    idp.set_fault(Fault::WrongIssuer);
    idp.set_fault(Fault::None);
    let code = code_for_alice(&idp).await;
    let body: Value = exchange(&idp, &code, VERIFIER)
        .await
        .json()
        .await
        .expect("token JSON");
    let id_token = body["id_token"].as_str().expect("id_token");
    assert!(verify(&idp, id_token).await.is_ok());
}
