//! The provider's HTTP endpoints, checking each request the way a strict provider does.
//!
//! Error shapes follow the specifications, because the client under test must handle them:
//! `/authorize` refuses a bad `client_id` or `redirect_uri` with a plain 400 (redirecting there
//! could hand a code to an attacker) and reports every other error by redirecting back with
//! `error=` (RFC 6749 §4.1.2.1); `/token` answers `{"error": ...}` JSON (RFC 6749 §5.2).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Query, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::time::Instant;
use url::{form_urlencoded, Url};

use crate::keys;
use crate::provider::{self, unix_now, Grant, Provider, TOKEN_LIFETIME};
use crate::{Account, Fault};

/// The scopes a client may ask for; any other is refused, as Hugging Face refuses unknown ones.
const SCOPES: [&str; 2] = ["openid", "profile"];

/// The claims an ID token carries.
const CLAIMS: [&str; 10] = [
    "iss",
    "aud",
    "sub",
    "iat",
    "exp",
    "auth_time",
    "nonce",
    "preferred_username",
    "name",
    "picture",
];

pub(crate) fn router(provider: Arc<Provider>) -> Router {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .route("/userinfo", get(userinfo))
        .route("/jwks", get(jwks))
        .with_state(provider)
}

async fn discovery(State(provider): State<Arc<Provider>>) -> Json<serde_json::Value> {
    let issuer = &provider.issuer;
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": SCOPES,
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": CLAIMS,
    }))
}

async fn jwks() -> Json<serde_json::Value> {
    Json(keys::jwks())
}

/// The `/authorize` query. Every field is optional here so that a missing one gets the
/// specified error rather than the extractor's.
#[derive(Deserialize)]
struct AuthorizeQuery {
    client_id: Option<String>,
    redirect_uri: Option<String>,
    response_type: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    /// A `sub` or username: sign in as that account at once instead of showing the page.
    login_hint: Option<String>,
}

/// Why `/authorize` did not issue a code.
enum AuthorizeError {
    /// The client or redirect URI cannot be trusted: tell the person, not the client.
    Rejected(String),
    /// Anything else: tell the client at its redirect URI.
    Redirect {
        redirect_uri: Url,
        state: Option<String>,
        error: &'static str,
        description: String,
    },
}

impl IntoResponse for AuthorizeError {
    fn into_response(self) -> Response {
        match self {
            AuthorizeError::Rejected(reason) => (StatusCode::BAD_REQUEST, reason).into_response(),
            AuthorizeError::Redirect {
                mut redirect_uri,
                state,
                error,
                description,
            } => {
                let mut query = redirect_uri.query_pairs_mut();
                query.append_pair("error", error);
                query.append_pair("error_description", &description);
                if let Some(state) = &state {
                    query.append_pair("state", state);
                }
                drop(query);
                found(&redirect_uri)
            }
        }
    }
}

async fn authorize(
    State(provider): State<Arc<Provider>>,
    RawQuery(raw_query): RawQuery,
    query: Result<Query<AuthorizeQuery>, QueryRejection>,
) -> Result<Response, AuthorizeError> {
    let Query(query) =
        query.map_err(|rejection| AuthorizeError::Rejected(rejection.body_text()))?;

    if query.client_id.as_deref() != Some(provider.config.client_id.as_str()) {
        return Err(AuthorizeError::Rejected(
            "unknown or missing client_id".to_owned(),
        ));
    }
    let redirect_uri = checked_redirect_uri(query.redirect_uri.as_deref())
        .map_err(|reason| AuthorizeError::Rejected(reason.to_owned()))?;
    let refuse = |error: &'static str, description: &str| AuthorizeError::Redirect {
        redirect_uri: redirect_uri.clone(),
        state: query.state.clone(),
        error,
        description: description.to_owned(),
    };

    if query.response_type.as_deref() != Some("code") {
        return Err(refuse(
            "unsupported_response_type",
            "response_type must be code",
        ));
    }
    let scope = query.scope.as_deref().unwrap_or_default();
    if !scope.split(' ').any(|scope| scope == "openid") {
        return Err(refuse("invalid_scope", "scope must include openid"));
    }
    if let Some(unknown) = scope.split(' ').find(|scope| !SCOPES.contains(scope)) {
        return Err(refuse(
            "invalid_scope",
            &format!("unsupported scope {unknown:?} (scopes are separated by single spaces)"),
        ));
    }
    let Some(code_challenge) = query.code_challenge.clone() else {
        return Err(refuse("invalid_request", "code_challenge is required"));
    };
    if query.code_challenge_method.as_deref() != Some("S256") {
        return Err(refuse(
            "invalid_request",
            "code_challenge_method must be S256",
        ));
    }
    if code_challenge.len() != 43 || URL_SAFE_NO_PAD.decode(&code_challenge).is_err() {
        return Err(refuse(
            "invalid_request",
            "code_challenge must be BASE64URL(SHA256(code_verifier)) without padding",
        ));
    }

    let hinted = query
        .login_hint
        .as_deref()
        .and_then(|hint| provider.account(hint));
    let Some(account) = hinted else {
        let page = sign_in_page(
            &provider.config.accounts,
            raw_query.as_deref().unwrap_or_default(),
        );
        return Ok(page.into_response());
    };

    let grant = Grant {
        client_id: provider.config.client_id.clone(),
        // As sent, not as parsed: /token compares strings, and parsing normalises.
        redirect_uri: query.redirect_uri.clone().unwrap_or_default(),
        code_challenge,
        nonce: query.nonce.clone(),
        scope: scope.to_owned(),
        account: account.clone(),
        auth_time: unix_now(),
        expires_at: Instant::now() + *provider::lock(&provider.code_lifetime),
    };
    let code = provider
        .issue_code(grant)
        .map_err(|_| refuse("server_error", "no random bytes for a code"))?;
    let mut location = redirect_uri.clone();
    location.query_pairs_mut().append_pair("code", &code);
    if let Some(state) = &query.state {
        location.query_pairs_mut().append_pair("state", state);
    }
    Ok(found(&location))
}

/// The redirect URI if it is one a code may be sent to: an absolute http(s) URL without a
/// fragment (RFC 6749 §3.1.2). Any such URI is accepted: the stand-in has no registration.
fn checked_redirect_uri(redirect_uri: Option<&str>) -> Result<Url, &'static str> {
    let url = redirect_uri.ok_or("redirect_uri is required")?;
    let url = Url::parse(url).map_err(|_| "redirect_uri is not an absolute URL")?;
    if !matches!(url.scheme(), "http" | "https") || url.fragment().is_some() {
        return Err("redirect_uri must be http(s) without a fragment");
    }
    Ok(url)
}

/// A 302, which is what providers send back to the client after sign-in.
fn found(location: &Url) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, location.as_str())]).into_response()
}

/// The page a person sees without a `login_hint`: one link per account, each repeating this
/// authorization request with `login_hint` set to that account.
fn sign_in_page(accounts: &[Account], raw_query: &str) -> Html<String> {
    let mut links = String::new();
    for account in accounts {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in form_urlencoded::parse(raw_query.as_bytes()) {
            if name != "login_hint" {
                query.append_pair(&name, &value);
            }
        }
        query.append_pair("login_hint", &account.sub);
        links.push_str(&format!(
            "    <li><a class=\"account\" data-sub=\"{sub}\" href=\"/authorize?{query}\">Sign in as {username}</a></li>\n",
            sub = escape(&account.sub),
            query = escape(&query.finish()),
            username = escape(&account.preferred_username),
        ));
    }
    Html(format!(
        "<!doctype html>\n<html>\n<head><meta charset=\"utf-8\"><title>Stand-in provider: sign in</title></head>\n\
         <body>\n  <h1>Stand-in provider: sign in</h1>\n  <ul>\n{links}  </ul>\n</body>\n</html>\n"
    ))
}

/// Escapes text for HTML content and double-quoted attributes.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// The `/token` form. Every field is optional here so that a missing one gets the specified
/// error rather than the extractor's.
#[derive(Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    /// Set by clients using `client_secret_post`; optional with `client_secret_basic`.
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// An OAuth error response from `/token` (RFC 6749 §5.2).
struct TokenError {
    status: StatusCode,
    error: &'static str,
    description: String,
}

impl TokenError {
    fn new(error: &'static str, description: impl Into<String>) -> TokenError {
        let status = match error {
            "invalid_client" => StatusCode::UNAUTHORIZED,
            "server_error" => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        TokenError {
            status,
            error,
            description: description.into(),
        }
    }
}

impl IntoResponse for TokenError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.error, "error_description": self.description });
        let mut response = (self.status, no_store(), Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"stand-in-idp\""),
            );
        }
        response
    }
}

/// Token responses must not be cached (RFC 6749 §5.1).
fn no_store() -> [(header::HeaderName, &'static str); 2] {
    [
        (header::CACHE_CONTROL, "no-store"),
        (header::PRAGMA, "no-cache"),
    ]
}

#[derive(Serialize)]
struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    id_token: String,
    scope: String,
}

async fn token(
    State(provider): State<Arc<Provider>>,
    headers: HeaderMap,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Result<Response, TokenError> {
    provider.token_requests.fetch_add(1, Ordering::SeqCst);
    let Form(form) =
        form.map_err(|rejection| TokenError::new("invalid_request", rejection.body_text()))?;
    let client_id = authenticate_client(&provider, &headers, &form)?;

    match form.grant_type.as_deref() {
        Some("authorization_code") => {}
        Some(other) => {
            return Err(TokenError::new(
                "unsupported_grant_type",
                format!("grant_type {other:?} is not supported"),
            ))
        }
        None => return Err(TokenError::new("invalid_request", "grant_type is required")),
    }
    let Some(code) = &form.code else {
        return Err(TokenError::new("invalid_request", "code is required"));
    };
    let grant = provider
        .redeem_code(code, &client_id)
        .map_err(|refusal| TokenError::new("invalid_grant", refusal))?;
    if Instant::now() >= grant.expires_at {
        return Err(TokenError::new("invalid_grant", "code has expired"));
    }
    if form.redirect_uri.as_deref() != Some(grant.redirect_uri.as_str()) {
        return Err(TokenError::new(
            "invalid_grant",
            "redirect_uri differs from the authorization request's",
        ));
    }
    check_code_verifier(form.code_verifier.as_deref(), &grant.code_challenge)?;

    let fault = *provider::lock(&provider.fault);
    let claims = IdTokenClaims::new(&provider.issuer, &grant, fault);
    let id_token =
        tokio::task::spawn_blocking(move || keys::sign(&claims, fault == Fault::WrongSignature))
            .await
            .map_err(|error| TokenError::new("server_error", error.to_string()))?
            .map_err(|error| TokenError::new("server_error", format!("cannot sign: {error}")))?;
    let access_token = provider
        .issue_access_token(grant.account)
        .map_err(|_| TokenError::new("server_error", "no random bytes for a token"))?;
    let body = TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: TOKEN_LIFETIME.as_secs(),
        id_token,
        scope: grant.scope,
    };
    Ok((no_store(), Json(body)).into_response())
}

/// The authenticated client's id, from HTTP Basic (`client_secret_basic`) or from the form
/// (`client_secret_post`), never both (RFC 6749 §2.3.1).
fn authenticate_client(
    provider: &Provider,
    headers: &HeaderMap,
    form: &TokenForm,
) -> Result<String, TokenError> {
    let (client_id, client_secret) = match (basic_credentials(headers)?, &form.client_secret) {
        (Some(_), Some(_)) => {
            return Err(TokenError::new(
                "invalid_request",
                "use one client authentication method, not both",
            ))
        }
        (Some((id, secret)), None) => {
            if form
                .client_id
                .as_ref()
                .is_some_and(|form_id| *form_id != id)
            {
                return Err(TokenError::new(
                    "invalid_client",
                    "client_id differs from the Basic credentials",
                ));
            }
            (id, secret)
        }
        (None, Some(secret)) => {
            let Some(id) = &form.client_id else {
                return Err(TokenError::new("invalid_client", "client_id is required"));
            };
            (id.clone(), secret.clone())
        }
        (None, None) => {
            return Err(TokenError::new(
                "invalid_client",
                "client authentication is required",
            ))
        }
    };
    if client_id != provider.config.client_id || client_secret != provider.config.client_secret {
        return Err(TokenError::new(
            "invalid_client",
            "unknown client or wrong secret",
        ));
    }
    Ok(client_id)
}

/// The client id and secret of an `Authorization: Basic` header, if there is one. Both are
/// form-urlencoded before base64 (RFC 6749 §2.3.1), which the oauth2 crate does.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, TokenError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || TokenError::new("invalid_client", "malformed Basic credentials");
    let value = value.to_str().map_err(|_| malformed())?;
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return Err(malformed());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(malformed());
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let Some((id, secret)) = decoded.split_once(':') else {
        return Err(malformed());
    };
    Ok(Some((form_decode(id), form_decode(secret))))
}

/// Decodes one form-urlencoded component. Parsing it as a whole form works because an encoded
/// component holds no raw `=` or `&`.
fn form_decode(component: &str) -> String {
    form_urlencoded::parse(component.as_bytes())
        .next()
        .map(|(decoded, _)| decoded.into_owned())
        .unwrap_or_default()
}

/// PKCE S256 (RFC 7636 §4.6): the verifier must be 43–128 unreserved characters whose SHA-256,
/// base64url-encoded, is the challenge.
fn check_code_verifier(verifier: Option<&str>, challenge: &str) -> Result<(), TokenError> {
    let Some(verifier) = verifier else {
        return Err(TokenError::new(
            "invalid_grant",
            "code_verifier is required",
        ));
    };
    let unreserved = |c: char| c.is_ascii_alphanumeric() || "-._~".contains(c);
    if !(43..=128).contains(&verifier.len()) || !verifier.chars().all(unreserved) {
        return Err(TokenError::new(
            "invalid_grant",
            "code_verifier must be 43 to 128 unreserved characters",
        ));
    }
    if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != challenge {
        return Err(TokenError::new(
            "invalid_grant",
            "code_verifier does not match code_challenge",
        ));
    }
    Ok(())
}

#[derive(Serialize)]
struct IdTokenClaims {
    iss: String,
    aud: String,
    sub: String,
    iat: u64,
    exp: u64,
    auth_time: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<String>,
    preferred_username: String,
    name: String,
    picture: String,
}

impl IdTokenClaims {
    /// The claims for `grant`, spoiled as `fault` says.
    fn new(issuer: &str, grant: &Grant, fault: Fault) -> IdTokenClaims {
        let shift = if fault == Fault::Expired { 2 * 3600 } else { 0 };
        let now = unix_now().saturating_sub(shift);
        let account = &grant.account;
        IdTokenClaims {
            iss: match fault {
                Fault::WrongIssuer => "https://evil.example".to_owned(),
                _ => issuer.to_owned(),
            },
            aud: match fault {
                Fault::WrongAudience => "someone-else".to_owned(),
                _ => grant.client_id.clone(),
            },
            sub: account.sub.clone(),
            iat: now,
            exp: now + TOKEN_LIFETIME.as_secs(),
            auth_time: grant.auth_time.saturating_sub(shift),
            nonce: match fault {
                Fault::WrongNonce => Some("not-the-nonce".to_owned()),
                _ => grant.nonce.clone(),
            },
            preferred_username: account.preferred_username.clone(),
            name: account.name.clone(),
            picture: account.picture.clone(),
        }
    }
}

/// `/userinfo` (OIDC Core §5.3): the signed-in account's claims, for a valid access token.
async fn userinfo(State(provider): State<Arc<Provider>>, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let Some(account) = token.and_then(|token| provider.access_token_account(token)) else {
        let challenge = if token.is_some() {
            "Bearer error=\"invalid_token\""
        } else {
            "Bearer"
        };
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, challenge)],
        )
            .into_response();
    };
    Json(json!({
        "sub": account.sub,
        "preferred_username": account.preferred_username,
        "name": account.name,
        "picture": account.picture,
    }))
    .into_response()
}
