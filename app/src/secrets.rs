//! Secrets at rest: AES-256-GCM with a key that never enters the database.
//!
//! The key is 32 bytes written as 64 hex digits (`openssl rand -hex 32`), read from
//! `secrets.key_file` or `PALISADE__SECRETS__KEY`. Each sealed value carries a fresh random nonce,
//! and is bound to what it belongs to (for example a cluster id) as associated data, so a sealed
//! value copied onto another row does not open.

use std::fmt;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

/// The format tag of sealed values, so the scheme can change later without guessing.
const VERSION: &str = "v1";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretsError {
    #[error(
        "the secrets key must be 64 hex digits (32 bytes), for example from `openssl rand -hex 32`"
    )]
    BadKey,
    #[error("no randomness available from the operating system")]
    Random,
    #[error("a sealed value is malformed")]
    Malformed,
    #[error("a sealed value does not open with this key: the key is wrong, or the value was moved or altered")]
    WrongKey,
}

/// Seals and opens secrets with one key. Its `Debug` never shows the key.
pub struct Sealer {
    key: LessSafeKey,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer(<redacted>)")
    }
}

impl Sealer {
    /// A key from its 64 hex digits (surrounding whitespace, as in a key file, is ignored).
    pub fn from_hex(text: &str) -> Result<Sealer, SecretsError> {
        let bytes = decode_hex(text.trim()).ok_or(SecretsError::BadKey)?;
        if bytes.len() != 32 {
            return Err(SecretsError::BadKey);
        }
        let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| SecretsError::BadKey)?;
        Ok(Sealer {
            key: LessSafeKey::new(key),
        })
    }

    /// Encrypt `plaintext`, bound to `context`: `v1:<nonce hex>:<ciphertext and tag hex>`.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Result<String, SecretsError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SecretsError::Random)?;
        let mut data = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut data,
            )
            .map_err(|_| SecretsError::Random)?;
        Ok(format!(
            "{VERSION}:{}:{}",
            encode_hex(&nonce),
            encode_hex(&data)
        ))
    }

    /// Decrypt what [`Sealer::seal`] produced for the same `context`.
    pub fn open(&self, sealed: &str, context: &str) -> Result<Vec<u8>, SecretsError> {
        let mut parts = sealed.splitn(3, ':');
        let (Some(VERSION), Some(nonce), Some(data)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(SecretsError::Malformed);
        };
        let nonce: [u8; NONCE_LEN] = decode_hex(nonce)
            .and_then(|n| n.try_into().ok())
            .ok_or(SecretsError::Malformed)?;
        let mut data = decode_hex(data).ok_or(SecretsError::Malformed)?;
        let plain = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut data,
            )
            .map_err(|_| SecretsError::WrongKey)?;
        Ok(plain.to_vec())
    }
}

fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const OTHER: &str = "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn sealed_values_open_with_the_same_key_and_context_only() {
        let sealer = Sealer::from_hex(&format!("  {KEY}\n")).unwrap();
        let sealed = sealer.seal(b"token-abc", "cluster-1").unwrap();
        assert!(sealed.starts_with("v1:"));
        assert!(!sealed.contains("token-abc"));
        assert_eq!(sealer.open(&sealed, "cluster-1").unwrap(), b"token-abc");
        assert_eq!(
            sealer.open(&sealed, "cluster-2"),
            Err(SecretsError::WrongKey)
        );
        let other = Sealer::from_hex(OTHER).unwrap();
        assert_eq!(
            other.open(&sealed, "cluster-1"),
            Err(SecretsError::WrongKey)
        );
        // A fresh nonce every time: the same secret never seals to the same text.
        assert_ne!(sealed, sealer.seal(b"token-abc", "cluster-1").unwrap());
    }

    #[test]
    fn tampering_and_bad_keys_are_refused() {
        let sealer = Sealer::from_hex(KEY).unwrap();
        let sealed = sealer.seal(b"secret", "c").unwrap();
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'0' { b'1' } else { b'0' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(sealer.open(&tampered, "c"), Err(SecretsError::WrongKey));
        assert_eq!(sealer.open("v2:00:00", "c"), Err(SecretsError::Malformed));
        assert_eq!(sealer.open("nonsense", "c"), Err(SecretsError::Malformed));
        for bad in [
            "",
            "abc",
            &KEY[..62],
            &format!("{KEY}00"),
            &KEY.replace('0', "g"),
        ] {
            assert_eq!(
                Sealer::from_hex(bad).unwrap_err(),
                SecretsError::BadKey,
                "{bad}"
            );
        }
        assert_eq!(format!("{sealer:?}"), "Sealer(<redacted>)");
    }
}
