//! User accounts and the rules for the values they are made of.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Timestamp, UserId};

/// An email address, trimmed and lower-cased so that uniqueness is case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

/// Why an email address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid email address {0:?}")]
pub struct InvalidEmail(pub String);

impl Email {
    pub const MAX_LEN: usize = 254;

    /// Accepts `local@domain` with a non-empty local part and a dotless-or-dotted domain without spaces.
    pub fn parse(raw: &str) -> Result<Self, InvalidEmail> {
        let normalized = raw.trim().to_lowercase();
        let valid = normalized.len() <= Self::MAX_LEN
            && !normalized
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
            && matches!(normalized.split_once('@'), Some((local, domain))
                if !local.is_empty() && !domain.is_empty() && !domain.contains('@')
                    && !domain.starts_with('.') && !domain.ends_with('.'));
        if valid {
            Ok(Self(normalized))
        } else {
            Err(InvalidEmail(raw.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A user account. `password_hash` is a PHC string (argon2id); it never leaves the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub email: Email,
    pub name: String,
    pub password_hash: String,
    /// Instance administrator (the first account on an instance, or one made so with `prism user add --admin`).
    pub is_admin: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_normalized() {
        assert_eq!(
            Email::parse("  Ada@Example.ORG ").unwrap().as_str(),
            "ada@example.org"
        );
    }

    #[test]
    fn bad_emails_are_refused() {
        for bad in [
            "",
            "ada",
            "@example.org",
            "ada@",
            "a b@example.org",
            "a@b@c",
            "ada@.org",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be invalid");
        }
    }
}
