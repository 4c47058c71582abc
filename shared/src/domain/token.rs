//! Webhook tokens: long and random, stored only as their SHA-256, compared in
//! constant time.
//!
//! The token is `HMAC-SHA256(secret, user, backend, nonce)` with a random nonce kept on
//! the backend: the store holds the nonce and the token's hash, never the token, yet
//! the api can show the same `webhook_url` again whenever the backend is read (the
//! media server needs it pasted once, people look it up later). Anyone with the
//! table but without the secret cannot forge a token.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Prefix that makes a webhook token recognizable in a URL (and in a leak scanner).
pub const PREFIX: &str = "wst_";
const TOKEN_BYTES: usize = 32;

/// The secret tokens are derived from.
#[derive(Clone)]
pub struct TokenSecret(Vec<u8>);

impl TokenSecret {
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        TokenSecret(secret.as_ref().to_vec())
    }
}

impl std::fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSecret(..)")
    }
}

/// A fresh random nonce for a backend's webhook token.
pub fn new_nonce() -> String {
    crate::domain::ids::new_id()
}

/// The webhook token of a backend.
pub fn derive(secret: &TokenSecret, user: &str, backend: &str, nonce: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(&secret.0) {
        Ok(m) => m,
        // HMAC takes keys of any length; this branch cannot be reached.
        Err(_) => return String::new(),
    };
    for part in [user, backend, nonce] {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part.as_bytes());
    }
    let out = mac.finalize().into_bytes();
    let mut s = String::with_capacity(PREFIX.len() + TOKEN_BYTES * 2);
    s.push_str(PREFIX);
    s.push_str(&hex::encode(&out[..TOKEN_BYTES]));
    s
}

/// SHA-256 of a token, hex: what the store keeps and looks up by.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether a path segment can be a token at all (so junk never reaches the store).
pub fn well_formed(token: &str) -> bool {
    token.len() == PREFIX.len() + TOKEN_BYTES * 2
        && token.starts_with(PREFIX)
        && token[PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Constant-time check that a presented token hashes to the stored hash.
pub fn matches(token: &str, stored_hash: &str) -> bool {
    let got = hash(token);
    got.as_bytes().ct_eq(stored_hash.as_bytes()).into()
}

/// Constant-time comparison of two secrets (the admin key).
pub fn secret_eq(a: &str, b: &str) -> bool {
    // Compare digests so the lengths leak nothing either.
    Sha256::digest(a.as_bytes())
        .ct_eq(&Sha256::digest(b.as_bytes()))
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_distinct_and_well_formed() {
        let s = TokenSecret::new("k");
        let a = derive(&s, "ana", "plex", "n1");
        let b = derive(&s, "ana", "plex", "n2");
        let c = derive(&s, "ana", "jf", "n1");
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert!(well_formed(&a), "{a}");
        assert_eq!(a.len(), 68);
        assert_eq!(a, derive(&s, "ana", "plex", "n1"), "derivation is stable");
        assert_ne!(a, derive(&TokenSecret::new("other"), "ana", "plex", "n1"));
        // Field boundaries are unambiguous.
        assert_ne!(derive(&s, "an", "aplex", "n1"), a);
    }

    #[test]
    fn hash_matching() {
        let t = derive(&TokenSecret::new("k"), "u", "b", "n");
        let h = hash(&t);
        assert!(matches(&t, &h));
        assert!(!matches(&format!("{t}x"), &h));
        assert!(!well_formed("wst_short"));
        assert!(!well_formed(&t.to_uppercase()));
        assert!(secret_eq("abc", "abc"));
        assert!(!secret_eq("abc", "abd"));
    }
}
