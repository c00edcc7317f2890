//! Session ids as the HTTP front hands them out: the actor's id, bound to the user it was minted
//! for, so that a session id presented by another user is recognised as such without any shared
//! registry (every node derives the same key from the signing secret).
//!
//! The id sent in `Mcp-Session-Id` is `<inner>.<u>.<mac>`:
//! - `<inner>` is the id the user's actor minted and stores;
//! - `<u>` is the first 11 characters of base64url(HMAC-SHA256(key, "user:" + user id)), a
//!   66-bit tag of the owner that does not name them;
//! - `<mac>` is the first 22 characters (132 bits) of base64url(HMAC-SHA256(key,
//!   inner + "." + u)).
//!
//! An id without dots is a legacy id (minted before ids were tagged, and still stored in the
//! user's index): it goes to the caller's actor as it is, which finds it only if it is theirs.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use vault_actors::UserId;

use crate::auth::TokenKeys;

/// The purpose label of the key (see [`TokenKeys::derive_key`]).
const KEY_LABEL: &str = "mcp-session-id v1";
/// Characters of the user tag kept.
const USER_TAG_CHARS: usize = 11;
/// Characters of the MAC kept.
const MAC_CHARS: usize = 22;

/// What a presented session id turns out to be for the caller presenting it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
    /// Minted here for this caller: the actor's own id.
    Own(String),
    /// Untagged (minted before ids were bound to users): the caller's actor decides.
    Legacy(String),
    /// Minted here for another user.
    Foreign,
    /// Tagged, but the MAC does not verify: never minted here (or altered).
    Forged,
}

/// Binds session ids to users and checks the binding.
pub struct SessionIds {
    key: [u8; 32],
}

impl SessionIds {
    /// The binder keyed from this server's signing secret.
    pub fn new(keys: &TokenKeys) -> Self {
        SessionIds {
            key: keys.derive_key(KEY_LABEL),
        }
    }

    fn mac(&self, parts: &[&[u8]], chars: usize) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .expect("HMAC accepts a key of any length");
        for part in parts {
            mac.update(part);
        }
        let mut text = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        text.truncate(chars);
        text
    }

    fn user_tag(&self, user: &UserId) -> String {
        self.mac(&[b"user:", user.as_str().as_bytes()], USER_TAG_CHARS)
    }

    fn seal(&self, inner: &str, tag: &str) -> String {
        self.mac(&[inner.as_bytes(), b".", tag.as_bytes()], MAC_CHARS)
    }

    /// The id to hand `user` for the actor's session `inner`.
    pub fn wrap(&self, inner: &str, user: &UserId) -> String {
        let tag = self.user_tag(user);
        let mac = self.seal(inner, &tag);
        format!("{inner}.{tag}.{mac}")
    }

    /// What the id `presented` by `caller` is.
    pub fn check(&self, presented: &str, caller: &UserId) -> Presented {
        if !presented.contains('.') {
            return Presented::Legacy(presented.to_string());
        }
        let mut parts = presented.rsplitn(3, '.');
        let (Some(mac), Some(tag), Some(inner)) = (parts.next(), parts.next(), parts.next()) else {
            return Presented::Forged;
        };
        let expected = self.seal(inner, tag);
        let sealed = !inner.is_empty()
            && tag.len() == USER_TAG_CHARS
            && bool::from(expected.as_bytes().ct_eq(mac.as_bytes()));
        if !sealed {
            return Presented::Forged;
        }
        if bool::from(self.user_tag(caller).as_bytes().ct_eq(tag.as_bytes())) {
            Presented::Own(inner.to_string())
        } else {
            Presented::Foreign
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(secret: &str) -> SessionIds {
        SessionIds::new(&TokenKeys::new(secret.as_bytes(), "iss", "aud"))
    }

    fn user(id: &str) -> UserId {
        UserId::parse(id).unwrap()
    }

    #[test]
    fn an_id_verifies_for_its_owner_only() {
        let ids = ids("a-secret-a-secret-a-secret-a-secret-0");
        let id = ids.wrap("0123abcd", &user("alice"));
        assert_eq!(id.len(), 8 + 1 + USER_TAG_CHARS + 1 + MAC_CHARS);
        assert_eq!(
            ids.check(&id, &user("alice")),
            Presented::Own("0123abcd".into())
        );
        assert_eq!(ids.check(&id, &user("bob")), Presented::Foreign);
    }

    #[test]
    fn any_change_to_a_tagged_id_is_forged() {
        let ids = ids("a-secret-a-secret-a-secret-a-secret-0");
        let id = ids.wrap("0123abcd", &user("alice"));
        let bob_tag = ids.user_tag(&user("bob"));
        let (inner, rest) = id.split_once('.').unwrap();
        let (_, mac) = rest.split_once('.').unwrap();
        for bad in [
            format!("0123abce.{rest}"),
            format!("{inner}.{bob_tag}.{mac}"),
            format!(
                "{}{}",
                &id[..id.len() - 1],
                if id.ends_with('A') { 'B' } else { 'A' }
            ),
            format!(".{rest}"),
            "a.b".to_string(),
            "..".to_string(),
        ] {
            assert_eq!(ids.check(&bad, &user("bob")), Presented::Forged, "{bad}");
        }
    }

    #[test]
    fn the_key_comes_from_the_secret_and_untagged_ids_pass_through() {
        let one = ids("a-secret-a-secret-a-secret-a-secret-0");
        let same = ids("a-secret-a-secret-a-secret-a-secret-0");
        let other = ids("b-secret-b-secret-b-secret-b-secret-0");
        let id = one.wrap("0123abcd", &user("alice"));
        assert_eq!(
            same.check(&id, &user("alice")),
            Presented::Own("0123abcd".into())
        );
        assert_eq!(other.check(&id, &user("alice")), Presented::Forged);
        assert_eq!(
            one.check("0123abcd", &user("bob")),
            Presented::Legacy("0123abcd".into())
        );
    }
}
