//! Encryption of secrets at rest (secret environment variables): AES-256-GCM with a key derived
//! by HKDF-SHA256 from the instance's secret key. Stored form: `enc:v1:` + base64(nonce ‖
//! ciphertext ‖ tag), so an encrypted value is recognisable and the scheme can be rotated.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};

const PREFIX: &str = "enc:v1:";

/// Why a stored secret could not be decrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecryptError {
    #[error("the value is not an encrypted secret")]
    NotEncrypted,
    #[error("the secret cannot be decrypted with this instance's secret key")]
    WrongKeyOrCorrupt,
}

/// Encrypts and decrypts secrets with one key.
pub struct SecretBox {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

struct KeyLen;

impl hkdf::KeyType for KeyLen {
    fn len(&self) -> usize {
        32
    }
}

impl SecretBox {
    /// Derives the encryption key from the instance's secret key.
    pub fn new(secret_key: &str) -> Self {
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"prism secrets at rest");
        let prk = salt.extract(secret_key.as_bytes());
        let info: &[&[u8]] = &[b"environment variables v1"];
        let okm = prk
            .expand(info, KeyLen)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        let mut bytes = [0u8; 32];
        okm.fill(&mut bytes).expect("buffer matches the key length");
        let key = UnboundKey::new(&AES_256_GCM, &bytes).expect("32 bytes is an AES-256 key");
        Self {
            key: LessSafeKey::new(key),
            rng: SystemRandom::new(),
        }
    }

    pub fn is_encrypted(value: &str) -> bool {
        value.starts_with(PREFIX)
    }

    pub fn encrypt(&self, plaintext: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .expect("the operating system's random source works");
        let mut buffer = plaintext.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(PREFIX),
                &mut buffer,
            )
            .expect("AES-GCM sealing of an in-memory buffer cannot fail");
        let mut stored = nonce.to_vec();
        stored.extend_from_slice(&buffer);
        format!("{PREFIX}{}", STANDARD.encode(stored))
    }

    pub fn decrypt(&self, stored: &str) -> Result<String, DecryptError> {
        let encoded = stored
            .strip_prefix(PREFIX)
            .ok_or(DecryptError::NotEncrypted)?;
        let mut bytes = STANDARD
            .decode(encoded)
            .map_err(|_| DecryptError::WrongKeyOrCorrupt)?;
        if bytes.len() < NONCE_LEN {
            return Err(DecryptError::WrongKeyOrCorrupt);
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&bytes[..NONCE_LEN]);
        let plain = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(PREFIX),
                &mut bytes[NONCE_LEN..],
            )
            .map_err(|_| DecryptError::WrongKeyOrCorrupt)?;
        String::from_utf8(plain.to_vec()).map_err(|_| DecryptError::WrongKeyOrCorrupt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_round_trip_and_need_the_right_key() {
        let sealed = SecretBox::new("key-one");
        let a = sealed.encrypt("hunter2");
        let b = sealed.encrypt("hunter2");
        assert!(SecretBox::is_encrypted(&a));
        assert_ne!(a, b, "a fresh nonce per encryption");
        assert!(!a.contains("hunter2"));
        assert_eq!(sealed.decrypt(&a).unwrap(), "hunter2");
        assert_eq!(
            SecretBox::new("key-two").decrypt(&a),
            Err(DecryptError::WrongKeyOrCorrupt)
        );
        assert_eq!(sealed.decrypt("plain"), Err(DecryptError::NotEncrypted));
        let mut tampered = a.clone();
        tampered.pop();
        tampered.push(if a.ends_with('A') { 'B' } else { 'A' });
        assert!(sealed.decrypt(&tampered).is_err());
        assert_eq!(sealed.decrypt(&sealed.encrypt("")).unwrap(), "");
    }
}
