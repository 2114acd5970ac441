//! The personal link of a payment request, `{base_url}/r/{token}`. The token is the
//! HMAC-SHA256 of the request's id under a key derived from the portal's secret: the mail
//! worker can write it again on every retry, no one without the secret can forge one, and
//! the database keeps only its SHA-256 (a copy of the database alone opens no link).

use std::fmt;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use crate::config::Settings;
use crate::db::Pool;

/// Separates this key from every other use of the portal's secret.
const PURPOSE: &[u8] = b"obole:payment-request-link:v1";

/// The key that signs request links.
pub struct LinkKey(Vec<u8>);

impl fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LinkKey(***)")
    }
}

impl LinkKey {
    /// Derived from `secret_key`, or from the secret generated on first start and kept in
    /// the database (the one that signs sessions) when none is configured.
    pub async fn load(pool: &Pool, settings: &Settings) -> anyhow::Result<LinkKey> {
        let master: Vec<u8> = match &settings.secret_key {
            Some(secret) => secret.expose_secret().trim().as_bytes().to_vec(),
            None => sqlx::query_scalar::<_, String>(
                "SELECT value FROM settings WHERE key = 'session_key'",
            )
            .fetch_optional(pool)
            .await
            .context("could not read the portal's secret")?
            .context("the portal's secret is not generated yet")?
            .into_bytes(),
        };
        Ok(LinkKey(mac(&master, PURPOSE)?))
    }

    /// The token of a request's link.
    pub fn token(&self, request_id: &str) -> anyhow::Result<String> {
        Ok(URL_SAFE_NO_PAD.encode(mac(&self.0, request_id.as_bytes())?))
    }
}

fn mac(key: &[u8], message: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key)
        .map_err(|_| anyhow::anyhow!("unusable key for link signatures"))?;
    mac.update(message);
    Ok(mac.finalize().into_bytes().to_vec())
}

/// What the database keeps of a token, and looks it up by.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A token as it may appear in a link: anything else is not looked up at all.
pub fn looks_like_token(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_depend_on_the_key_and_the_request() {
        let a = LinkKey(b"first key".to_vec());
        let b = LinkKey(b"second key".to_vec());
        let one = a.token("request-1").unwrap();
        assert_eq!(one, a.token("request-1").unwrap());
        assert_ne!(one, a.token("request-2").unwrap());
        assert_ne!(one, b.token("request-1").unwrap());
        assert!(looks_like_token(&one), "{one}");
        assert_eq!(token_hash(&one).len(), 64);
        assert_ne!(token_hash(&one), one);
    }

    #[test]
    fn odd_tokens_are_not_looked_up() {
        assert!(!looks_like_token(""));
        assert!(!looks_like_token("../../etc/passwd"));
        assert!(!looks_like_token(&"a".repeat(44)));
        assert!(!looks_like_token(&format!("{}=", "a".repeat(42))));
    }
}
