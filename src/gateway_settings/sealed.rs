//! Gateway credentials encrypted at rest: AES-256-GCM with a key from the environment
//! (`OBOLE_SETTINGS_KEY`, never stored), a random nonce for each write, and the gateway's id as
//! associated data, so that a blob copied onto another gateway's row does not open.
//!
//! A sealed blob is the base64 of `nonce (12 bytes) || ciphertext and tag`. Each row also keeps
//! the fingerprint of the key that sealed it, so that a changed key is told apart from a
//! damaged blob.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::zeroize::Zeroizing;
use sha2::{Digest, Sha256};

const NONCE_LEN: usize = 12;

/// The key that seals gateway credentials. Its `Debug` shows the fingerprint only.
pub struct SettingsKey {
    cipher: Aes256Gcm,
    fingerprint: String,
}

impl std::fmt::Debug for SettingsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SettingsKey")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("OBOLE_SETTINGS_KEY is not base64")]
    NotBase64,
    #[error("OBOLE_SETTINGS_KEY must be the base64 of exactly 32 bytes, not {0}")]
    WrongLength(usize),
}

/// Why a stored blob does not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Sealed with another key (the key was changed, or is not the one of this database).
    #[error("sealed with another key (fingerprint {sealed_with}, current {current})")]
    OtherKey {
        sealed_with: String,
        current: String,
    },
    /// The right key, but the blob does not authenticate: damaged or tampered with.
    #[error("the sealed credentials are damaged")]
    Damaged,
}

impl SettingsKey {
    /// A key from the base64 of 32 bytes (`openssl rand -base64 32`).
    pub fn parse(encoded: &str) -> Result<SettingsKey, KeyError> {
        let bytes = Zeroizing::new(
            STANDARD
                .decode(encoded.trim())
                .map_err(|_| KeyError::NotBase64)?,
        );
        if bytes.len() != 32 {
            return Err(KeyError::WrongLength(bytes.len()));
        }
        let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| KeyError::WrongLength(0))?;
        // A hash of a random 256-bit key tells nothing about it; eight hex digits name it.
        let digest = Sha256::new()
            .chain_update(b"obole settings key\0")
            .chain_update(&*bytes)
            .finalize();
        Ok(SettingsKey {
            cipher,
            fingerprint: hex::encode(&digest[..4]),
        })
    }

    /// Eight hex digits naming the key, safe to show and to store.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Seals `plaintext` for `gateway`, with a fresh random nonce.
    pub fn seal(&self, gateway: &str, plaintext: &[u8]) -> anyhow::Result<String> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: gateway.as_bytes(),
                },
            )
            .map_err(|_| anyhow::anyhow!("could not encrypt the credentials"))?;
        let mut blob = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&ciphertext);
        Ok(STANDARD.encode(blob))
    }

    /// Opens a blob sealed for `gateway` by the key whose fingerprint is `sealed_with`.
    pub fn open(
        &self,
        gateway: &str,
        sealed: &str,
        sealed_with: &str,
    ) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        if sealed_with != self.fingerprint {
            return Err(OpenError::OtherKey {
                sealed_with: sealed_with.to_string(),
                current: self.fingerprint.clone(),
            });
        }
        let blob = STANDARD.decode(sealed).map_err(|_| OpenError::Damaged)?;
        if blob.len() <= NONCE_LEN {
            return Err(OpenError::Damaged);
        }
        let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: gateway.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| OpenError::Damaged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const OTHER: &str = "HxweHRwbGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgE=";

    #[test]
    fn sealed_credentials_open_with_the_same_key_for_the_same_gateway_only() {
        let key = SettingsKey::parse(KEY).unwrap();
        let sealed = key.seal("stripe", b"sk_live_secret").unwrap();
        assert!(!sealed.contains("sk_live"));
        let fingerprint = key.fingerprint().to_string();
        assert_eq!(
            key.open("stripe", &sealed, &fingerprint)
                .unwrap()
                .as_slice(),
            b"sk_live_secret"
        );
        // The gateway's id is authenticated: a blob moved to another row does not open.
        assert_eq!(
            key.open("mollie", &sealed, &fingerprint),
            Err(OpenError::Damaged)
        );
        // Two writes of the same secret never look alike (fresh nonce).
        assert_ne!(sealed, key.seal("stripe", b"sk_live_secret").unwrap());
    }

    #[test]
    fn another_key_is_told_apart_from_damage() {
        let key = SettingsKey::parse(KEY).unwrap();
        let other = SettingsKey::parse(OTHER).unwrap();
        let sealed = key.seal("stripe", b"x").unwrap();
        assert!(matches!(
            other.open("stripe", &sealed, key.fingerprint()),
            Err(OpenError::OtherKey { .. })
        ));
        // Even when lying about the fingerprint, the wrong key does not open it.
        assert_eq!(
            other.open("stripe", &sealed, other.fingerprint()),
            Err(OpenError::Damaged)
        );
        let mut tampered = STANDARD.decode(&sealed).unwrap();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(
            key.open("stripe", &STANDARD.encode(tampered), key.fingerprint()),
            Err(OpenError::Damaged)
        );
    }

    #[test]
    fn keys_must_be_32_bytes_of_base64_and_never_show_in_debug() {
        assert_eq!(
            SettingsKey::parse("not base64!").unwrap_err(),
            KeyError::NotBase64
        );
        assert_eq!(
            SettingsKey::parse("AAECAw==").unwrap_err(),
            KeyError::WrongLength(4)
        );
        let key = SettingsKey::parse(KEY).unwrap();
        let shown = format!("{key:?}");
        assert!(shown.contains(key.fingerprint()));
        assert!(!shown.contains("AAEC"));
    }
}
