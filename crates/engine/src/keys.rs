//! API keys: `ck_<key id>_<secret>`.
//!
//! The key id is public (it names the key in logs and lists); the secret is 256 random bits,
//! shown once and stored only as its SHA-256. A fast hash is right here: the secret has full
//! entropy, so there is nothing to brute-force. The lookup goes by key id and the hash is then
//! compared in constant time, so response timing says nothing about the secret.

use coffer_core::ids::base32;
use coffer_core::{ApiCredential, KeyId};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Prefix of every Coffer API key, so leaked keys are easy to grep for.
pub const KEY_PREFIX: &str = "ck_";

/// A newly issued key: the only moment the full secret exists outside the caller.
#[derive(Clone)]
pub struct IssuedKey {
    pub credential: ApiCredential,
    pub token: String,
}

impl std::fmt::Debug for IssuedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedKey")
            .field("credential", &self.credential)
            .field("token", &"[redacted]")
            .finish()
    }
}

pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

pub fn make_token(id: &KeyId, secret_bytes: [u8; 32]) -> (String, String) {
    let secret = base32(&secret_bytes);
    let body = id.as_str().trim_start_matches(KeyId::PREFIX);
    (format!("{KEY_PREFIX}{body}_{secret}"), hash_secret(&secret))
}

/// Split a presented token into its key id and secret. `None` for anything malformed.
pub fn parse_token(token: &str) -> Option<(KeyId, &str)> {
    let rest = token.strip_prefix(KEY_PREFIX)?;
    let (id_body, secret) = rest.split_once('_')?;
    let id: KeyId = format!("{}{id_body}", KeyId::PREFIX).parse().ok()?;
    (secret.len() == 52).then_some((id, secret))
}

/// Constant-time comparison of a presented secret with a stored hash.
pub fn secret_matches(secret: &str, stored_hash: &str) -> bool {
    let presented = hash_secret(secret);
    presented.as_bytes().ct_eq(stored_hash.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_roundtrip_and_verification() {
        let id = KeyId::from_random([3; 16]);
        let (token, hash) = make_token(&id, [9; 32]);
        assert!(token.starts_with("ck_"));
        let (parsed_id, secret) = parse_token(&token).unwrap();
        assert_eq!(parsed_id, id);
        assert!(secret_matches(secret, &hash));
        let first = secret.chars().next().unwrap();
        let flipped = format!("{}{}", if first == 'a' { 'b' } else { 'a' }, &secret[1..]);
        assert!(!secret_matches(&flipped, &hash));
        assert!(
            !hash.contains(secret),
            "the stored form does not contain the secret"
        );
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let id = KeyId::from_random([3; 16]);
        let (token, _) = make_token(&id, [9; 32]);
        for bad in [
            "",
            "ck_",
            "sk_live_123",
            &token[..token.len() - 1],
            &token.replace("ck_", "ck"),
            &format!("{token}x"),
        ] {
            assert!(parse_token(bad).is_none(), "{bad:?}");
        }
    }
}
