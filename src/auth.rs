//! Tokens: HS256 JWTs with `sub`, `exp`, `iat`, `iss` and `aud`, signed with one secret.
//!
//! Exactly one algorithm is accepted; the user id comes from `sub` and must be a safe directory
//! name. Minting happens only from the CLI (and, later, the login flow for the logged-in user):
//! no endpoint mints a token for a user id taken from a request.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use vault_actors::{Caller, UserId};

/// Shortest secret accepted (bytes); HS256 wants at least its output size.
pub const MIN_SECRET_BYTES: usize = 32;
/// Clock skew tolerated between the token's issuer and this server.
const LEEWAY_SECS: u64 = 30;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    iat: u64,
    iss: String,
    /// A string or a list of strings (RFC 7519); `jsonwebtoken` checks it against ours.
    aud: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<u64>,
    /// Space-separated scopes; absent means every right over the user's own vault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
}

/// Why a token was refused (the message goes into `WWW-Authenticate` and the JSON body).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// Verified tokens remembered at most; beyond it the cache starts over.
const VERIFIED_CACHE_ENTRIES: usize = 16_384;

/// The signing and verifying keys with the issuer and audience this server expects.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    /// Tokens already verified, with their expiry: a client sends the same token on every
    /// request, and checking a signature costs more than the rest of a small read.
    verified: Mutex<HashMap<String, (Caller, u64)>>,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl TokenKeys {
    pub fn new(secret: &[u8], issuer: &str, audience: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        TokenKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            verified: Mutex::new(HashMap::new()),
        }
    }

    /// A token for `user`, valid for `ttl`, with `scopes` (empty = unrestricted).
    pub fn mint(
        &self,
        user: &UserId,
        ttl: Duration,
        scopes: &[String],
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let now = now_secs();
        let claims = Claims {
            sub: user.to_string(),
            iat: now,
            exp: now + ttl.as_secs(),
            iss: self.issuer.clone(),
            aud: serde_json::Value::String(self.audience.clone()),
            nbf: None,
            scope: (!scopes.is_empty()).then(|| scopes.join(" ")),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// Verify a bearer token and turn it into the caller it names.
    pub fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        let now = now_secs();
        if let Some((caller, exp)) = self.cache().get(token) {
            if now <= exp + LEEWAY_SECS {
                return Ok(caller.clone());
            }
        }
        let (caller, exp) = self.verify_signed(token)?;
        let mut cache = self.cache();
        if cache.len() >= VERIFIED_CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(token.to_string(), (caller.clone(), exp));
        Ok(caller)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Caller, u64)>> {
        // Entries are inserted whole, so a poisoned lock leaves nothing half-written.
        self.verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The full check: signature, algorithm, claims, user id.
    fn verify_signed(&self, token: &str) -> Result<(Caller, u64), AuthError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        let claims = data.claims;
        if claims.iat > now_secs() + LEEWAY_SECS {
            return Err(AuthError::Invalid(
                "token issued in the future (iat)".into(),
            ));
        }
        let user =
            UserId::parse(&claims.sub).map_err(|e| AuthError::Invalid(format!("sub: {e}")))?;
        let caller = match claims.scope {
            None => Caller::full(user),
            Some(scope) => {
                let has = |s: &str| scope.split_whitespace().any(|x| x == s);
                let can_write = has("notes:write");
                Caller {
                    user,
                    can_read: can_write || has("notes:read"),
                    can_write,
                }
            }
        };
        Ok((caller, claims.exp))
    }
}

/// The local-mode secret: read from `<data_dir>/secret.key`, or generated there (owner-only
/// permissions) on first run, so tokens printed by an earlier start keep working.
pub fn local_secret(data_dir: &Path) -> std::io::Result<String> {
    let path = data_dir.join("secret.key");
    match std::fs::read_to_string(&path) {
        Ok(s) if s.trim().len() >= MIN_SECRET_BYTES => return Ok(s.trim().to_string()),
        Ok(_) => {
            return Err(std::io::Error::other(format!(
                "{} is shorter than {MIN_SECRET_BYTES} bytes; delete it to generate a new one",
                path.display()
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::fs::create_dir_all(data_dir)?;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    file.write_all(secret.as_bytes())?;
    file.sync_all()?;
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::new(&[7u8; 32], "http://iss", "http://aud")
    }

    #[test]
    fn minted_token_verifies_to_its_user() {
        let k = keys();
        let t = k
            .mint(
                &UserId::parse("alice").unwrap(),
                Duration::from_secs(60),
                &[],
            )
            .unwrap();
        assert_eq!(
            k.verify(&t).unwrap(),
            Caller::full(UserId::parse("alice").unwrap())
        );
    }

    #[test]
    fn read_scope_cannot_write() {
        let k = keys();
        let t = k
            .mint(
                &UserId::parse("bob").unwrap(),
                Duration::from_secs(60),
                &["notes:read".into()],
            )
            .unwrap();
        let c = k.verify(&t).unwrap();
        assert!(c.can_read && !c.can_write);
    }

    #[test]
    fn other_secret_issuer_or_audience_is_refused() {
        let t = keys()
            .mint(&UserId::parse("a").unwrap(), Duration::from_secs(60), &[])
            .unwrap();
        assert!(TokenKeys::new(&[8u8; 32], "http://iss", "http://aud")
            .verify(&t)
            .is_err());
        assert!(TokenKeys::new(&[7u8; 32], "http://other", "http://aud")
            .verify(&t)
            .is_err());
        assert!(TokenKeys::new(&[7u8; 32], "http://iss", "http://other")
            .verify(&t)
            .is_err());
    }

    #[test]
    fn a_cached_token_still_expires() {
        let k = keys();
        let user = UserId::parse("alice").unwrap();
        let t = k.mint(&user, Duration::from_secs(60), &[]).unwrap();
        assert!(k.verify(&t).is_ok());
        // Pretend the cached entry is long past its expiry.
        k.cache().get_mut(&t).unwrap().1 = now_secs() - 3600;
        assert!(
            k.verify(&t).is_ok(),
            "re-verified: the token itself is still valid"
        );
        // An entry past its expiry is not trusted: the token is checked again (and here fails).
        k.cache().insert(
            "not.a.token".into(),
            (Caller::full(user), now_secs() - 3600),
        );
        assert!(k.verify("not.a.token").is_err());
    }

    #[test]
    fn local_secret_is_generated_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = local_secret(dir.path()).unwrap();
        let b = local_secret(dir.path()).unwrap();
        assert_eq!(a, b);
        assert!(a.len() >= MIN_SECRET_BYTES);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("secret.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
