//! Tokens: HS256 JWTs with `sub`, `exp`, `iat`, `iss` and `aud`, signed with one secret.
//!
//! Exactly one algorithm is accepted; the user id comes from `sub` and must be a safe directory
//! name. Every token has a `jti`, checked against the [`Revocations`] on every request. Tokens
//! are minted by the CLI, the local-mode banner and, for a signed-in person, the account page:
//! no endpoint mints a token for a user id taken from a request.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use vault_actors::caller::Access;
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
    /// The token's id, for revocation and the account page's list.
    #[serde(default)]
    jti: String,
    /// Space-separated scopes (`notes:read`, `notes:write`, and their folder forms
    /// `notes:read:<folder>`, `notes:write:<folder>`; see `vault_actors::caller`); absent means
    /// every right over the user's own vault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    /// The OAuth grant an access token belongs to: disconnecting the client revokes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gid: Option<String>,
}

/// Why a token was refused (the message goes into `WWW-Authenticate` and the JSON body).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("invalid token: {1}")]
    Invalid(AuthFailure, String),
}

/// The kind of an authentication failure: a small, stable set for metrics and the audit log
/// (the message of [`AuthError`] says more, for the client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthFailure {
    /// No bearer token at all.
    Missing,
    /// Not a JWT, undecodable, or a required claim absent or of the wrong type.
    Malformed,
    /// The signature does not verify, or the token names another algorithm.
    BadSignature,
    /// Past its `exp`.
    Expired,
    WrongAudience,
    WrongIssuer,
    /// The token, or the OAuth grant it belongs to, was revoked.
    Revoked,
    /// `sub` is not a valid user id.
    BadSubject,
    /// Anything else (a token not yet valid, a key problem).
    Other,
}

impl AuthFailure {
    /// Every kind, in a fixed order (metrics register a series for each).
    pub const ALL: [AuthFailure; 9] = [
        AuthFailure::Missing,
        AuthFailure::Malformed,
        AuthFailure::BadSignature,
        AuthFailure::Expired,
        AuthFailure::WrongAudience,
        AuthFailure::WrongIssuer,
        AuthFailure::Revoked,
        AuthFailure::BadSubject,
        AuthFailure::Other,
    ];

    /// The machine name: a metric label value and an audit-log field. Stable.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::Malformed => "malformed",
            AuthFailure::BadSignature => "bad_signature",
            AuthFailure::Expired => "expired",
            AuthFailure::WrongAudience => "wrong_audience",
            AuthFailure::WrongIssuer => "wrong_issuer",
            AuthFailure::Revoked => "revoked",
            AuthFailure::BadSubject => "bad_subject",
            AuthFailure::Other => "other",
        }
    }

    /// The kind of a `jsonwebtoken` refusal.
    fn of_jwt(err: &jsonwebtoken::errors::Error) -> Self {
        use jsonwebtoken::errors::ErrorKind as K;
        match err.kind() {
            K::InvalidToken
            | K::Base64(_)
            | K::Json(_)
            | K::Utf8(_)
            | K::MissingRequiredClaim(_)
            | K::InvalidClaimFormat(_) => AuthFailure::Malformed,
            K::InvalidSignature | K::InvalidAlgorithm | K::InvalidAlgorithmName => {
                AuthFailure::BadSignature
            }
            K::ExpiredSignature => AuthFailure::Expired,
            K::InvalidAudience => AuthFailure::WrongAudience,
            K::InvalidIssuer => AuthFailure::WrongIssuer,
            K::InvalidSubject => AuthFailure::BadSubject,
            _ => AuthFailure::Other,
        }
    }
}

impl AuthError {
    /// What kind of failure this is.
    pub fn reason(&self) -> AuthFailure {
        match self {
            AuthError::Missing => AuthFailure::Missing,
            AuthError::Invalid(kind, _) => *kind,
        }
    }
}

/// Verified tokens remembered at most; beyond it the cache starts over.
const VERIFIED_CACHE_ENTRIES: usize = 16_384;
/// A token's use is noted at most this often (seconds): "last used" needs no finer grain.
const USAGE_GRAIN_SECS: u64 = 60;

/// Token ids (`jti`) that stop being accepted at a given time (unix seconds): at once for a
/// revocation, a little later for a token replaced by a refresh.
#[derive(Default)]
pub struct Revocations(RwLock<HashMap<String, u64>>);

impl Revocations {
    /// Is the token `jti` refused at `now`?
    pub fn is_revoked(&self, jti: &str, now: u64) -> bool {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(jti)
            .is_some_and(|&at| at <= now)
    }

    /// Was a token of `user` issued at `issued_at` issued before the account was deleted?
    pub fn issued_before_deletion(&self, user: &str, issued_at: u64) -> bool {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&user_key(user))
            .is_some_and(|&at| issued_at <= at)
    }

    /// Set `key` to `at`, or keep a later time already set (a user deleted twice).
    pub fn insert_latest(&self, key: &str, at: u64) {
        let mut map = self.0.write().unwrap_or_else(PoisonError::into_inner);
        let entry = map.entry(key.to_string()).or_insert(at);
        *entry = (*entry).max(at);
    }

    pub fn insert(&self, jti: &str, at: u64) {
        let mut map = self.0.write().unwrap_or_else(PoisonError::into_inner);
        let entry = map.entry(jti.to_string()).or_insert(at);
        *entry = (*entry).min(at);
    }
}

/// The revocation key of everything issued to `user` up to a time (the account was deleted).
pub fn user_key(user: &str) -> String {
    format!("user:{user}")
}

/// The revocation key of grant `id`.
pub fn grant_key(id: &str) -> String {
    format!("grant:{id}")
}

/// The grant id inside a key made by [`grant_key`].
pub fn grant_of_key(key: &str) -> Option<&str> {
    key.strip_prefix("grant:")
}

/// A freshly minted token and the facts the account page records about it.
#[derive(Debug, Clone)]
pub struct Minted {
    pub token: String,
    pub jti: String,
    pub issued_at: u64,
    pub expires_at: u64,
}

/// What a verified token says.
#[derive(Debug, Clone)]
pub struct Verified {
    pub caller: Caller,
    pub jti: String,
    /// The OAuth grant of an access token issued by `/token`.
    pub grant: Option<String>,
    pub issued_at: u64,
    pub expires_at: u64,
}

/// A verified token remembered by [`TokenKeys`], and when its use was last noted.
struct CachedToken {
    verified: Verified,
    noted_use: u64,
}

/// The signing and verifying keys with the issuer and audience this server expects.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    /// Tokens already verified: a client sends the same token on every request, and checking
    /// a signature costs more than the rest of a small read.
    verified: Mutex<HashMap<String, CachedToken>>,
    revocations: Arc<Revocations>,
    /// When tokens were last used (`jti` → unix seconds), until [`TokenKeys::take_usage`].
    usage: Mutex<HashMap<String, u64>>,
    /// The signing secret, from which keys for other purposes are derived
    /// ([`TokenKeys::derive_key`]): the same on every node and across restarts.
    secret: Vec<u8>,
}

/// The current time, in unix seconds.
pub fn now_secs() -> u64 {
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
            revocations: Arc::default(),
            usage: Mutex::new(HashMap::new()),
            secret: secret.to_vec(),
        }
    }

    /// A 256-bit key for the purpose named by `label` (HMAC-SHA256 of the label under the
    /// signing secret): a server secret that survives restarts and is the same on every node,
    /// and that differs per purpose, so no key can be turned into a token signature.
    pub fn derive_key(&self, label: &str) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.secret)
            .expect("HMAC accepts a key of any length");
        mac.update(b"vault-mcp derived key: ");
        mac.update(label.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Also accept tokens whose audience is `resource` (the MCP endpoint, RFC 8707), as the
    /// authorization server issues them.
    pub fn with_resource(mut self, resource: &str) -> Self {
        self.validation
            .set_audience(&[self.audience.as_str(), resource]);
        self
    }

    /// Check tokens against `revocations` (shared with the accounts store).
    pub fn with_revocations(mut self, revocations: Arc<Revocations>) -> Self {
        self.revocations = revocations;
        self
    }

    /// A token for `user`, valid for `ttl`, with `scopes` (empty = unrestricted).
    pub fn mint(
        &self,
        user: &UserId,
        ttl: Duration,
        scopes: &[String],
    ) -> Result<String, jsonwebtoken::errors::Error> {
        self.mint_token(user, ttl, scopes).map(|m| m.token)
    }

    /// [`TokenKeys::mint`], with the new token's id and times.
    pub fn mint_token(
        &self,
        user: &UserId,
        ttl: Duration,
        scopes: &[String],
    ) -> Result<Minted, jsonwebtoken::errors::Error> {
        self.sign(user, ttl, scopes, &self.audience, None)
    }

    /// An OAuth access token of grant `grant`, for audience `resource`.
    pub fn mint_access(
        &self,
        user: &UserId,
        ttl: Duration,
        scopes: &[String],
        resource: &str,
        grant: &str,
    ) -> Result<Minted, jsonwebtoken::errors::Error> {
        self.sign(user, ttl, scopes, resource, Some(grant))
    }

    fn sign(
        &self,
        user: &UserId,
        ttl: Duration,
        scopes: &[String],
        audience: &str,
        grant: Option<&str>,
    ) -> Result<Minted, jsonwebtoken::errors::Error> {
        let now = now_secs();
        let jti = random_id();
        let claims = Claims {
            sub: user.to_string(),
            iat: now,
            exp: now + ttl.as_secs(),
            iss: self.issuer.clone(),
            aud: serde_json::Value::String(audience.to_string()),
            nbf: None,
            jti: jti.clone(),
            scope: (!scopes.is_empty()).then(|| scopes.join(" ")),
            gid: grant.map(str::to_string),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        Ok(Minted {
            token,
            jti,
            issued_at: claims.iat,
            expires_at: claims.exp,
        })
    }

    /// Verify a bearer token and turn it into the caller it names.
    pub fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        self.verify_token(token).map(|v| v.caller)
    }

    /// [`TokenKeys::verify`], with the token's id and times.
    pub fn verify_token(&self, token: &str) -> Result<Verified, AuthError> {
        let now = now_secs();
        let cached = match self.cache().get_mut(token) {
            Some(entry) if now <= entry.verified.expires_at + LEEWAY_SECS => {
                let note = now >= entry.noted_use + USAGE_GRAIN_SECS;
                if note {
                    entry.noted_use = now;
                }
                Some((entry.verified.clone(), note))
            }
            _ => None,
        };
        let (verified, note) = match cached {
            Some(hit) => hit,
            None => {
                let verified = self.verify_signed(token)?;
                let mut cache = self.cache();
                if cache.len() >= VERIFIED_CACHE_ENTRIES {
                    cache.clear();
                }
                cache.insert(
                    token.to_string(),
                    CachedToken {
                        verified: verified.clone(),
                        noted_use: now,
                    },
                );
                (verified, true)
            }
        };
        // Checked on every request, cache or not: a revocation is in force at once.
        let grant_revoked = verified
            .grant
            .as_ref()
            .is_some_and(|g| self.revocations.is_revoked(&grant_key(g), now));
        let user_deleted = self
            .revocations
            .issued_before_deletion(verified.caller.user.as_str(), verified.issued_at);
        if grant_revoked || user_deleted || self.revocations.is_revoked(&verified.jti, now) {
            return Err(AuthError::Invalid(
                AuthFailure::Revoked,
                "token revoked".into(),
            ));
        }
        if note {
            let mut usage = self.usage.lock().unwrap_or_else(PoisonError::into_inner);
            usage.insert(verified.jti.clone(), now);
            if let Some(g) = &verified.grant {
                usage.insert(grant_key(g), now);
            }
        }
        Ok(verified)
    }

    /// The token uses noted since the last call (`jti` → unix seconds).
    pub fn take_usage(&self) -> HashMap<String, u64> {
        std::mem::take(&mut *self.usage.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, CachedToken>> {
        // Entries are inserted whole, so a poisoned lock leaves nothing half-written.
        self.verified.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The full check: signature, algorithm, claims, user id.
    fn verify_signed(&self, token: &str) -> Result<Verified, AuthError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| AuthError::Invalid(AuthFailure::of_jwt(&e), e.to_string()))?;
        let claims = data.claims;
        if claims.iat > now_secs() + LEEWAY_SECS {
            return Err(AuthError::Invalid(
                AuthFailure::Other,
                "token issued in the future (iat)".into(),
            ));
        }
        if claims.jti.is_empty() {
            return Err(AuthError::Invalid(
                AuthFailure::Malformed,
                "token has no jti".into(),
            ));
        }
        let user = UserId::parse(&claims.sub)
            .map_err(|e| AuthError::Invalid(AuthFailure::BadSubject, format!("sub: {e}")))?;
        let caller = Caller {
            user,
            access: Access::from_claim(claims.scope.as_deref()),
        };
        Ok(Verified {
            caller,
            jti: claims.jti,
            grant: claims.gid,
            issued_at: claims.iat,
            expires_at: claims.exp,
        })
    }
}

/// How the account page and the audit log name a token's access: `write` (everything), `read`
/// (read the whole vault), or, for folder-scoped tokens, the `scope` claim itself
/// (`notes:write:work notes:read:shared`).
pub fn scope_label(access: &Access) -> String {
    if *access == Access::full() {
        return "write".into();
    }
    let claim = access.to_claim();
    if claim == ["notes:read"] {
        "read".into()
    } else {
        claim.join(" ")
    }
}

/// 256 random bits from the OS, base64url without padding: token ids, cookie values, codes.
pub fn random_id() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    // The OS generator does not fail on any system this runs on; all zeros would be caught by
    // nothing, so fail loudly rather than hand out a guessable id.
    if let Err(e) = getrandom::fill(&mut bytes) {
        panic!("the OS random generator failed: {e}");
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
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
    use std::collections::HashSet;

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
        assert!(c.can_read() && !c.can_write());
    }

    #[test]
    fn folder_scopes_survive_the_token() {
        let k = keys();
        let scopes = [
            "notes:write:work".to_string(),
            "notes:read:My%20Notes".to_string(),
        ];
        let t = k
            .mint(
                &UserId::parse("bob").unwrap(),
                Duration::from_secs(60),
                &scopes,
            )
            .unwrap();
        let access = k.verify(&t).unwrap().access;
        assert_eq!(access.to_claim(), scopes);
        let note = |p: &str| vault_actors::note::NotePath::parse(p).unwrap();
        assert!(access.allows_write(&note("work/a.md")));
        assert!(access.allows_read(&note("My Notes/b.md")));
        assert!(!access.allows_write(&note("My Notes/b.md")));
        assert!(!access.allows_read(&note("home/c.md")));
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
        k.cache().get_mut(&t).unwrap().verified.expires_at = now_secs() - 3600;
        assert!(
            k.verify(&t).is_ok(),
            "re-verified: the token itself is still valid"
        );
        // An entry past its expiry is not trusted: the token is checked again (and here fails).
        let stale = Verified {
            caller: Caller::full(user),
            jti: "x".into(),
            grant: None,
            issued_at: 0,
            expires_at: now_secs() - 3600,
        };
        k.cache().insert(
            "not.a.token".into(),
            CachedToken {
                verified: stale,
                noted_use: 0,
            },
        );
        assert!(k.verify("not.a.token").is_err());
    }

    #[test]
    fn refusals_are_classified_by_reason() {
        let k = keys();
        let user = UserId::parse("a").unwrap();
        let reason = |keys: &TokenKeys, token: &str| keys.verify(token).unwrap_err().reason();
        let good = k.mint(&user, Duration::from_secs(60), &[]).unwrap();
        let sign = |claims: serde_json::Value, secret: &[u8]| {
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &claims,
                &EncodingKey::from_secret(secret),
            )
            .unwrap()
        };
        let claims = |sub: &str, exp: u64| {
            serde_json::json!({
                "sub": sub, "iat": now_secs() - 7200, "exp": exp,
                "iss": "http://iss", "aud": "http://aud", "jti": "j",
            })
        };
        assert_eq!(AuthError::Missing.reason(), AuthFailure::Missing);
        assert_eq!(reason(&k, "not-a-jwt"), AuthFailure::Malformed);
        let other_secret = TokenKeys::new(&[8u8; 32], "http://iss", "http://aud");
        assert_eq!(reason(&other_secret, &good), AuthFailure::BadSignature);
        let wrong_iss = TokenKeys::new(&[7u8; 32], "http://other", "http://aud");
        assert_eq!(reason(&wrong_iss, &good), AuthFailure::WrongIssuer);
        let wrong_aud = TokenKeys::new(&[7u8; 32], "http://iss", "http://other");
        assert_eq!(reason(&wrong_aud, &good), AuthFailure::WrongAudience);
        let expired = sign(claims("a", now_secs() - 3600), &[7u8; 32]);
        assert_eq!(reason(&k, &expired), AuthFailure::Expired);
        let bad_sub = sign(claims("../x", now_secs() + 60), &[7u8; 32]);
        assert_eq!(reason(&k, &bad_sub), AuthFailure::BadSubject);
        let names: HashSet<&str> = AuthFailure::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), AuthFailure::ALL.len());
    }

    #[test]
    fn a_revoked_token_is_refused_even_when_cached() {
        let revocations = Arc::new(Revocations::default());
        let k = keys().with_revocations(revocations.clone());
        let minted = k
            .mint_token(&UserId::parse("a").unwrap(), Duration::from_secs(60), &[])
            .unwrap();
        assert!(k.verify(&minted.token).is_ok());
        revocations.insert(&minted.jti, now_secs());
        assert_eq!(
            k.verify(&minted.token),
            Err(AuthError::Invalid(
                AuthFailure::Revoked,
                "token revoked".into()
            ))
        );
    }

    #[test]
    fn every_token_has_its_own_jti_and_one_without_is_refused() {
        let k = keys();
        let user = UserId::parse("a").unwrap();
        let a = k.mint_token(&user, Duration::from_secs(60), &[]).unwrap();
        let b = k.mint_token(&user, Duration::from_secs(60), &[]).unwrap();
        assert_ne!(a.jti, b.jti);
        assert_eq!(k.verify_token(&a.token).unwrap().jti, a.jti);
        let claims = serde_json::json!({
            "sub": "a", "iat": now_secs(), "exp": now_secs() + 60,
            "iss": "http://iss", "aud": "http://aud",
        });
        let no_jti = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&[7u8; 32]),
        )
        .unwrap();
        assert!(k.verify(&no_jti).is_err());
    }

    #[test]
    fn use_is_noted_once_per_grain() {
        let k = keys();
        let minted = k
            .mint_token(&UserId::parse("a").unwrap(), Duration::from_secs(60), &[])
            .unwrap();
        k.verify(&minted.token).unwrap();
        let noted = k.take_usage();
        assert!(noted.contains_key(&minted.jti));
        k.verify(&minted.token).unwrap();
        assert!(
            k.take_usage().is_empty(),
            "within the grain: not noted again"
        );
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
