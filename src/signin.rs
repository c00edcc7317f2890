//! Signing people in with an OpenID provider (Hugging Face on a Space): the authorization-code
//! flow with PKCE (S256), `state` and `nonce`, on the `openidconnect` crate.
//!
//! The provider's endpoints and keys come from its discovery document, fetched on the first
//! sign-in and again after [`METADATA_TTL`], so a provider that is down at start-up does not stop
//! the server, and rotated keys are picked up. The ID token is checked in full (signature
//! against the provider's JWKS, `iss`, `aud`, `exp`, `nonce`) before anything of it is used.
//! The person's user id is the provider's stable `sub`, never the (renamable) username.

use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AccessToken, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use tokio::sync::Mutex;
use vault_actors::UserId;

use crate::config::OidcConfig;

/// How long the provider's discovery document (and its keys) is used before it is fetched again.
const METADATA_TTL: Duration = Duration::from_secs(600);
/// Longest wait for the provider on any one call.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

/// The client as discovery configures it: authorization URL set, token and userinfo URLs as
/// the provider's document says.
type Client = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// Why a sign-in could not be completed.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("the sign-in provider could not be reached or described itself wrongly: {0}")]
    Provider(String),
    #[error("the sign-in provider refused the authorization code: {0}")]
    Exchange(String),
    #[error("the sign-in provider's ID token was not accepted: {0}")]
    IdToken(String),
    #[error("the account's id cannot be used: {0}")]
    Account(String),
}

/// A sign-in just started: where to send the browser, and what the callback must match.
pub struct Started {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// The account a completed sign-in proved.
#[derive(Debug, Clone)]
pub struct Account {
    pub user: UserId,
    /// Shown on the page; may change on the provider's side, unlike `user`.
    pub username: String,
    pub avatar: Option<String>,
}

/// The client side of the provider.
pub struct SignIn {
    config: OidcConfig,
    redirect: RedirectUrl,
    http: reqwest::Client,
    metadata: Mutex<Option<(Instant, CoreProviderMetadata)>>,
}

impl SignIn {
    /// A client for `config` whose callback is `<public_url>/login/callback`.
    pub fn new(config: OidcConfig, public_url: &str) -> Result<Self, SignInError> {
        let redirect = RedirectUrl::new(format!("{public_url}/login/callback"))
            .map_err(|e| SignInError::Provider(format!("callback URL: {e}")))?;
        let http = reqwest::Client::builder()
            // Following redirects from a token endpoint could leak the code elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(PROVIDER_TIMEOUT)
            .no_proxy()
            .build()
            .map_err(|e| SignInError::Provider(e.to_string()))?;
        Ok(SignIn {
            config,
            redirect,
            http,
            metadata: Mutex::new(None),
        })
    }

    async fn metadata(&self) -> Result<CoreProviderMetadata, SignInError> {
        let mut cached = self.metadata.lock().await;
        if let Some((at, m)) = cached.as_ref() {
            if at.elapsed() < METADATA_TTL {
                return Ok(m.clone());
            }
        }
        let issuer = IssuerUrl::new(self.config.provider_url.clone())
            .map_err(|e| SignInError::Provider(e.to_string()))?;
        let m = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| SignInError::Provider(error_chain(&e)))?;
        *cached = Some((Instant::now(), m.clone()));
        Ok(m)
    }

    async fn client(&self) -> Result<Client, SignInError> {
        Ok(CoreClient::from_provider_metadata(
            self.metadata().await?,
            ClientId::new(self.config.client_id.clone()),
            Some(ClientSecret::new(self.config.client_secret.clone())),
        )
        .set_redirect_uri(self.redirect.clone()))
    }

    /// Begin a sign-in: the provider's authorization URL with a fresh state, nonce and PKCE
    /// challenge.
    pub async fn start(&self) -> Result<Started, SignInError> {
        let client = self.client().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        // `openid` is always added by the crate.
        for scope in self.config.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        Ok(Started {
            url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Finish a sign-in: exchange `code` (with the PKCE verifier), verify the ID token against
    /// `nonce`, and read the account from it (and from userinfo, for what it leaves out).
    pub async fn finish(
        &self,
        code: &str,
        nonce: &str,
        pkce_verifier: &str,
    ) -> Result<Account, SignInError> {
        let client = self.client().await?;
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| SignInError::Provider(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_string()))
            .request_async(&self.http)
            .await
            .map_err(|e| SignInError::Exchange(error_chain(&e)))?;
        let id_token = response
            .id_token()
            .ok_or_else(|| SignInError::IdToken("the token response has no id_token".into()))?;
        let claims = id_token
            .claims(&client.id_token_verifier(), &Nonce::new(nonce.to_string()))
            .map_err(|e| SignInError::IdToken(error_chain(&e)))?;
        let sub = claims.subject().as_str().to_string();
        let mut username = claims.preferred_username().map(|u| u.as_str().to_string());
        let mut avatar = claims
            .picture()
            .and_then(|p| p.get(None))
            .map(|u| u.as_str().to_string());
        if username.is_none() || avatar.is_none() {
            // Display details only: the account is already proven, so a failure here is not one.
            if let Some(info) = self
                .user_info(&client, response.access_token(), claims)
                .await
            {
                username =
                    username.or_else(|| info.preferred_username().map(|u| u.as_str().to_string()));
                avatar = avatar.or_else(|| {
                    info.picture()
                        .and_then(|p| p.get(None))
                        .map(|u| u.as_str().to_string())
                });
            }
        }
        Ok(Account {
            user: user_id_for(&sub)?,
            username: username.unwrap_or_else(|| sub.clone()),
            avatar: avatar.filter(|a| a.starts_with("https://") || a.starts_with("http://")),
        })
    }

    async fn user_info(
        &self,
        client: &Client,
        access_token: &AccessToken,
        claims: &openidconnect::core::CoreIdTokenClaims,
    ) -> Option<CoreUserInfoClaims> {
        let request = client
            .user_info(access_token.clone(), Some(claims.subject().clone()))
            .ok()?;
        match request.request_async(&self.http).await {
            Ok(info) => Some(info),
            Err(e) => {
                tracing::warn!(error = %error_chain(&e), "userinfo request failed");
                None
            }
        }
    }
}

/// The user id of the account with provider subject `sub`: `sub` itself when it is a safe
/// directory name (Hugging Face's are), else a stable digest of it, so an odd `sub` never
/// becomes a path.
pub fn user_id_for(sub: &str) -> Result<UserId, SignInError> {
    UserId::parse(sub)
        .or_else(|_| UserId::parse(&format!("sub-{}", &crate::accounts::digest(sub)[..40])))
        .map_err(|e| SignInError::Account(e.to_string()))
}

/// An error with its sources, for a message that says what actually went wrong.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_safe_sub_is_the_user_id_and_an_unsafe_one_is_digested_stably() {
        assert_eq!(user_id_for("60d2a1b3c4").unwrap().as_str(), "60d2a1b3c4");
        let odd = user_id_for("auth0|../etc").unwrap();
        assert!(odd.as_str().starts_with("sub-"));
        assert_eq!(odd, user_id_for("auth0|../etc").unwrap());
        assert_ne!(odd, user_id_for("auth0|../etd").unwrap());
    }
}
