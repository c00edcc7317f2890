//! What the provider remembers between requests: the codes it issued at `/authorize` and the
//! access tokens it issued at `/token`, plus the knobs a test turns while it runs.
//!
//! Nothing is ever evicted: a provider lives for one test or one browser suite.

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use tokio::time::Instant;

use crate::{Account, Fault, IdpConfig};

/// How long an access token opens `/userinfo`; also the ID token's lifetime.
pub(crate) const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// The provider's shared state.
pub(crate) struct Provider {
    /// The issuer URL: the `iss` claim, and the prefix of every endpoint URL.
    pub(crate) issuer: String,
    pub(crate) config: IdpConfig,
    /// Applied to the ID tokens issued from now on.
    pub(crate) fault: Mutex<Fault>,
    /// Applied to the codes issued from now on.
    pub(crate) code_lifetime: Mutex<Duration>,
    /// Counts every `/token` request, so a test can tell the client never got that far.
    pub(crate) token_requests: AtomicUsize,
    /// Codes by value, used ones included, so a second use can be told apart from a made-up code.
    codes: Mutex<HashMap<String, StoredGrant>>,
    /// Access tokens by value.
    access_tokens: Mutex<HashMap<String, AccessGrant>>,
}

/// What an authorization code stands for: everything `/token` must check it against.
#[derive(Clone, Debug)]
pub(crate) struct Grant {
    pub(crate) client_id: String,
    /// `/token` must present exactly this URI again.
    pub(crate) redirect_uri: String,
    /// BASE64URL(SHA256(code_verifier)) as the client sent it.
    pub(crate) code_challenge: String,
    /// Copied into the ID token, where the client checks it against its own.
    pub(crate) nonce: Option<String>,
    pub(crate) scope: String,
    pub(crate) account: Account,
    /// When the person signed in, seconds since the epoch: the `auth_time` claim.
    pub(crate) auth_time: u64,
    /// tokio's clock, so a test with a paused clock can expire codes by advancing it.
    pub(crate) expires_at: Instant,
}

/// Why a code cannot be redeemed, as the `error_description` a client will see.
pub(crate) type Refusal = &'static str;

struct StoredGrant {
    grant: Grant,
    /// Set on the first redemption attempt by the right client: codes are single use.
    used: bool,
}

struct AccessGrant {
    account: Account,
    expires_at: Instant,
}

impl Provider {
    pub(crate) fn new(issuer: String, config: IdpConfig) -> Provider {
        Provider {
            issuer,
            config,
            fault: Mutex::new(Fault::None),
            code_lifetime: Mutex::new(Duration::from_secs(60)),
            token_requests: AtomicUsize::new(0),
            codes: Mutex::new(HashMap::new()),
            access_tokens: Mutex::new(HashMap::new()),
        }
    }

    /// The account `hint` names, by `sub` or by username.
    pub(crate) fn account(&self, hint: &str) -> Option<&Account> {
        self.config
            .accounts
            .iter()
            .find(|account| account.sub == hint || account.preferred_username == hint)
    }

    /// Remembers `grant` under a new random code and returns the code.
    pub(crate) fn issue_code(&self, grant: Grant) -> Result<String, getrandom::Error> {
        let code = random_token()?;
        let stored = StoredGrant { grant, used: false };
        lock(&self.codes).insert(code.clone(), stored);
        Ok(code)
    }

    /// A code's grant if `client_id` may redeem it now, marking it used. Expiry, redirect URI and
    /// PKCE are the caller's to check; a failed check still spends the code, as at real
    /// providers, so a client cannot guess verifiers.
    pub(crate) fn redeem_code(&self, code: &str, client_id: &str) -> Result<Grant, Refusal> {
        let mut codes = lock(&self.codes);
        let Some(stored) = codes.get_mut(code) else {
            return Err("unknown code");
        };
        if stored.grant.client_id != client_id {
            return Err("code was issued to another client");
        }
        if stored.used {
            return Err("code was already used");
        }
        stored.used = true;
        Ok(stored.grant.clone())
    }

    /// Issues an access token that opens `/userinfo` for `account`.
    pub(crate) fn issue_access_token(&self, account: Account) -> Result<String, getrandom::Error> {
        let token = random_token()?;
        let grant = AccessGrant {
            account,
            expires_at: Instant::now() + TOKEN_LIFETIME,
        };
        lock(&self.access_tokens).insert(token.clone(), grant);
        Ok(token)
    }

    /// The account an unexpired access token was issued for.
    pub(crate) fn access_token_account(&self, token: &str) -> Option<Account> {
        let tokens = lock(&self.access_tokens);
        let grant = tokens.get(token)?;
        (Instant::now() < grant.expires_at).then(|| grant.account.clone())
    }
}

/// Locks `mutex` even if a panicking handler poisoned it: every value here stays consistent
/// between statements, and a provider that stops answering would only hide the first failure.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Seconds since the Unix epoch, for JWT time claims.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// 256 random bits, base64url: unguessable codes and access tokens.
fn random_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}
