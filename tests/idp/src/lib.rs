//! A stand-in OpenID Connect provider for vault-mcp's test suites.
//!
//! vault-mcp signs people in with Hugging Face, which the tests cannot reach. This crate serves
//! the same protocol on loopback — discovery, `/authorize`, `/token`, `/userinfo`, `/jwks` — and
//! checks requests as strictly as a real provider would (client secret, single-use codes, exact
//! redirect URI, PKCE S256), so a client that passes here is not passing by luck. A test can also
//! make it misbehave ([`Fault`]) to prove that the client rejects bad ID tokens.
//!
//! Rust tests start it in process with [`Idp::start`]; the browser suite runs the `stand-in-idp`
//! binary, which wraps the same library.

mod keys;
mod provider;
mod routes;
#[cfg(test)]
mod tests;

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::provider::Provider;

/// A person who can sign in at the provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// The stable subject identifier; vault-mcp keys its users on it.
    pub sub: String,
    /// The handle shown to people; `login_hint` may name it instead of `sub`.
    pub preferred_username: String,
    /// The display name claim.
    pub name: String,
    /// The avatar URL claim.
    pub picture: String,
}

impl Account {
    /// An account whose display name is its username and whose avatar URL can never resolve
    /// (`.invalid`), so a page that shows it does not reach the network.
    pub fn new(sub: &str, username: &str) -> Account {
        Account {
            sub: sub.to_owned(),
            preferred_username: username.to_owned(),
            name: username.to_owned(),
            picture: format!("https://avatars.stand-in-idp.invalid/{username}.png"),
        }
    }
}

/// What the provider knows before any request: its one registered client and its people.
#[derive(Clone, Debug)]
pub struct IdpConfig {
    /// The only `client_id` the provider accepts.
    pub client_id: String,
    /// The secret that client authenticates with at `/token`.
    pub client_secret: String,
    /// Who can sign in, in the order the sign-in page lists them.
    pub accounts: Vec<Account>,
}

impl Default for IdpConfig {
    /// Client `vault-mcp-test` with secret `stand-in-secret`, and the accounts alice and bob.
    fn default() -> IdpConfig {
        IdpConfig {
            client_id: "vault-mcp-test".to_owned(),
            client_secret: "stand-in-secret".to_owned(),
            accounts: vec![
                Account::new("1000000000000000000000a1", "alice"),
                Account::new("2000000000000000000000b2", "bob"),
            ],
        }
    }
}

/// A way for the provider to misbehave in the ID tokens it issues, so tests can check that the
/// client refuses each kind of bad token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fault {
    /// Tokens are correct.
    #[default]
    None,
    /// Signed by a second RSA key that the JWKS does not publish, under the genuine `kid`.
    WrongSignature,
    /// `aud` is `someone-else`.
    WrongAudience,
    /// `iss` is `https://evil.example`.
    WrongIssuer,
    /// `nonce` is `not-the-nonce`.
    WrongNonce,
    /// `iat`, `exp` and `auth_time` are two hours earlier, so the token expired an hour ago.
    Expired,
}

/// A running provider. Dropping it stops the server.
pub struct Idp {
    /// The issuer URL, `http://127.0.0.1:PORT` without a trailing slash.
    url: String,
    /// State shared with the request handlers, so a test can change behaviour while running.
    provider: Arc<Provider>,
    /// Sending (or dropping) it starts a graceful shutdown of the server.
    shutdown: Option<oneshot::Sender<()>>,
    /// The server task, kept so [`Idp::stop`] can wait for it to finish.
    server: Option<JoinHandle<()>>,
}

impl Idp {
    /// Starts a provider on an ephemeral loopback port.
    ///
    /// # Panics
    ///
    /// If no loopback port can be bound: a test cannot go on without its provider.
    pub async fn start(config: IdpConfig) -> Idp {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0 for the stand-in provider");
        Idp::with_listener(listener, config)
            .await
            .expect("start the stand-in provider")
    }

    /// Starts a provider on a listener the caller bound, e.g. on a fixed port. The issuer URL
    /// is `http://` followed by the listener's address.
    pub async fn with_listener(listener: TcpListener, config: IdpConfig) -> io::Result<Idp> {
        let url = format!("http://{}", listener.local_addr()?);
        // Generate the signing key now, off the async threads, rather than in the first /token.
        tokio::task::spawn_blocking(keys::warm_up)
            .await
            .map_err(io::Error::other)?;
        let provider = Arc::new(Provider::new(url.clone(), config));
        let (shutdown, stopped) = oneshot::channel::<()>();
        let app = routes::router(Arc::clone(&provider));
        let server = tokio::spawn(async move {
            let serving = axum::serve(listener, app).with_graceful_shutdown(async {
                // An error means the sender was dropped, which also means stop.
                let _ = stopped.await;
            });
            if let Err(error) = serving.await {
                eprintln!("stand-in-idp: server failed: {error}");
            }
        });
        Ok(Idp {
            url,
            provider,
            shutdown: Some(shutdown),
            server: Some(server),
        })
    }

    /// The issuer URL (`http://127.0.0.1:PORT`); discovery is at `{url}/.well-known/openid-configuration`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Makes the ID tokens issued from now on faulty in the given way; [`Fault::None`] restores
    /// correct tokens.
    pub fn set_fault(&self, fault: Fault) {
        *provider::lock(&self.provider.fault) = fault;
    }

    /// How long codes issued from now on stay redeemable (default 60 s). Zero makes every new
    /// code already expired.
    pub fn set_code_lifetime(&self, lifetime: Duration) {
        *provider::lock(&self.provider.code_lifetime) = lifetime;
    }

    /// How many requests reached `/token`, whatever their outcome.
    pub fn token_requests(&self) -> usize {
        self.provider.token_requests.load(Ordering::SeqCst)
    }

    /// Stops the server and waits until it has closed its connections.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}
