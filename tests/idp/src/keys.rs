//! The provider's RSA keys: the genuine one, published in the JWKS, and an impostor that signs
//! [`Fault::WrongSignature`](crate::Fault::WrongSignature) tokens.
//!
//! Keys are generated once per process and never written anywhere, so no private key lives in
//! the repository; generating takes long enough that every test paying for it would show.

use std::sync::LazyLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::rand_core::OsRng;
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// One RSA key pair in the two forms the provider needs.
struct KeyPair {
    /// For signing with jsonwebtoken.
    encoding: EncodingKey,
    /// The public modulus, base64url without padding, as a JWK `n`.
    n: String,
    /// The public exponent, base64url without padding, as a JWK `e`.
    e: String,
}

impl KeyPair {
    fn generate() -> KeyPair {
        let private = RsaPrivateKey::new(&mut OsRng, 2048).expect("generate an RSA key");
        let der = private
            .to_pkcs1_der()
            .expect("encode a generated RSA key as PKCS#1");
        KeyPair {
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
            n: URL_SAFE_NO_PAD.encode(private.n().to_bytes_be()),
            e: URL_SAFE_NO_PAD.encode(private.e().to_bytes_be()),
        }
    }
}

static GENUINE: LazyLock<KeyPair> = LazyLock::new(KeyPair::generate);

/// Generated only if a test asks for [`Fault::WrongSignature`](crate::Fault::WrongSignature).
static IMPOSTOR: LazyLock<KeyPair> = LazyLock::new(KeyPair::generate);

/// Derived from the genuine modulus, so it changes with the key, as a real `kid` would.
static KID: LazyLock<String> =
    LazyLock::new(|| URL_SAFE_NO_PAD.encode(&Sha256::digest(GENUINE.n.as_bytes())[..12]));

/// Generates the genuine key if that has not happened yet. Blocks for as long as that takes.
pub(crate) fn warm_up() {
    LazyLock::force(&GENUINE);
}

/// The JWKS document: the genuine public key only.
pub(crate) fn jwks() -> Value {
    json!({
        "keys": [{
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": *KID,
            "n": GENUINE.n,
            "e": GENUINE.e,
        }]
    })
}

/// Signs `claims` as an RS256 JWT under the genuine `kid`, with the impostor key if `impostor`.
/// Blocks: RSA signing is CPU work, and the impostor key may not exist yet.
pub(crate) fn sign(
    claims: &impl Serialize,
    impostor: bool,
) -> jsonwebtoken::errors::Result<String> {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(KID.clone());
    let key = if impostor { &*IMPOSTOR } else { &*GENUINE };
    jsonwebtoken::encode(&header, claims, &key.encoding)
}
