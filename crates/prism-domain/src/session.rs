//! Browser sessions and API tokens. Only hashes of their secrets are ever stored.

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{ApiTokenId, IngestKeyId, Timestamp, UserId, WorkspaceId};

/// A signed-in browser. `token_hash` is SHA-256 of the cookie value; `csrf_hash` of its CSRF token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub token_hash: Vec<u8>,
    pub user_id: UserId,
    pub csrf_hash: Vec<u8>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub user_agent: Option<String>,
}

/// An API token for scripts, CI and the data plane. The secret is shown once and stored as a hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: ApiTokenId,
    pub user_id: UserId,
    pub name: String,
    /// The first characters of the token (e.g. `prism_ab12`) so users can tell tokens apart.
    pub prefix: String,
    #[serde(skip)]
    pub token_hash: Vec<u8>,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// A workspace's key for OpenTelemetry ingest: exporters send it and their spans are attributed
/// to the workspace. Like API tokens, the secret is shown once and stored as a hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestKey {
    pub id: IngestKeyId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    /// The first characters of the key, for telling keys apart.
    pub prefix: String,
    #[serde(skip)]
    pub key_hash: Vec<u8>,
    pub created_by: Option<UserId>,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// What a credential is for; the kind is visible in the secret's prefix so a leaked secret can be
/// recognised (and scanned for) without a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// A user's API token (`prism_pat_…`).
    ApiToken,
    /// A workspace ingest key (`prism_ik_…`).
    IngestKey,
}

impl SecretKind {
    pub const fn prefix(self) -> &'static str {
        match self {
            SecretKind::ApiToken => "prism_pat_",
            SecretKind::IngestKey => "prism_ik_",
        }
    }
}

/// A new random secret: the kind's prefix and 256 random bits as hex.
pub fn generate_secret(kind: SecretKind) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let mut out = String::with_capacity(kind.prefix().len() + 64);
    out.push_str(kind.prefix());
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// The stored form of a secret. Secrets are 256 random bits, so one SHA-256 is enough: there is
/// nothing to brute-force, and lookups by hash stay a single indexed query.
pub fn hash_secret(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// The shown part of a secret: its first 16 characters (the kind prefix and a few random ones).
pub fn secret_display_prefix(secret: &str) -> String {
    secret.chars().take(16).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_random_and_hash_stably() {
        let a = generate_secret(SecretKind::ApiToken);
        let b = generate_secret(SecretKind::ApiToken);
        assert_ne!(a, b);
        assert!(a.starts_with("prism_pat_") && a.len() == 10 + 64, "{a}");
        assert!(generate_secret(SecretKind::IngestKey).starts_with("prism_ik_"));
        assert_eq!(hash_secret(&a), hash_secret(&a));
        assert_ne!(hash_secret(&a), hash_secret(&b));
        assert_eq!(hash_secret(&a).len(), 32);
        assert_eq!(secret_display_prefix(&a), a[..16]);
    }
}
