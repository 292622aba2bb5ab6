//! Password hashing with argon2id (PHC strings, per-password random salt) and verification that
//! takes the same time whether or not the account exists.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Passwords shorter than this are refused.
pub const MIN_LEN: usize = 8;
/// Longer inputs are refused so hashing cost stays bounded.
pub const MAX_LEN: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("password must be {MIN_LEN} to {MAX_LEN} characters")]
pub struct WeakPassword;

pub fn check_strength(password: &str) -> Result<(), WeakPassword> {
    let len = password.chars().count();
    if (MIN_LEN..=MAX_LEN).contains(&len) {
        Ok(())
    } else {
        Err(WeakPassword)
    }
}

fn hasher() -> Argon2<'static> {
    // OWASP's argon2id recommendation: 19 MiB, 2 iterations, 1 lane.
    let params = Params::new(19 * 1024, 2, 1, None).expect("static argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password into a PHC string. CPU-heavy: call from `spawn_blocking`.
pub fn hash(password: &str) -> String {
    let mut salt_bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut salt_bytes);
    let salt = SaltString::encode_b64(&salt_bytes).expect("16 bytes is a valid salt length");
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashing with valid parameters cannot fail")
        .to_string()
}

/// Checks a password against a stored PHC string. With `None` (unknown user) it verifies against a
/// fixed dummy hash and returns false, so both cases cost the same.
pub fn verify(password: &str, stored: Option<&str>) -> bool {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash("dummy password for timing equality"));
    let (phc, known) = match stored {
        Some(phc) => (phc, true),
        None => (dummy.as_str(), false),
    };
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    hasher()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
        && known
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_verifies_only_the_right_password() {
        let phc = hash("correct horse battery");
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", Some(&phc)));
        assert!(!verify("wrong horse battery", Some(&phc)));
    }

    #[test]
    fn salts_differ() {
        assert_ne!(hash("same password"), hash("same password"));
    }

    #[test]
    fn unknown_user_never_verifies() {
        assert!(!verify("dummy password for timing equality", None));
    }

    #[test]
    fn strength_is_bounded() {
        assert!(check_strength("short").is_err());
        assert!(check_strength("long enough").is_ok());
        assert!(check_strength(&"x".repeat(MAX_LEN + 1)).is_err());
    }
}
