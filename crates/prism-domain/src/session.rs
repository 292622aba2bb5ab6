//! Browser sessions and API tokens. Only hashes of their secrets are ever stored.

use serde::{Deserialize, Serialize};

use crate::{ApiTokenId, Timestamp, UserId};

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
