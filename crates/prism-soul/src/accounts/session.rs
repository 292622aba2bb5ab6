//! Starting browser sessions. The cookie value and the CSRF token are 256 random bits each; only
//! their SHA-256 hashes are stored, so a copy of the database signs nobody in.

use std::fmt;

use prism_domain::session::{Session, hash_secret};
use prism_domain::{Timestamp, UserId};
use rand::RngCore;

/// User agents longer than this are cut (they are only shown to the user, never trusted).
const MAX_USER_AGENT: usize = 512;

/// A session about to be stored, with the two secrets only the browser will keep.
pub struct NewSession {
    /// The `prism_session` cookie value.
    pub token: String,
    /// The `prism_csrf` cookie value, echoed by the web UI in `X-CSRF-Token`.
    pub csrf: String,
    /// What is stored: hashes, user, times.
    pub session: Session,
}

/// Never prints the secrets (a session in a log line would be a sign-in for whoever reads it).
impl fmt::Debug for NewSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewSession")
            .field("user_id", &self.session.user_id)
            .field("expires_at", &self.session.expires_at)
            .finish_non_exhaustive()
    }
}

/// 256 random bits as 64 hex characters.
fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl NewSession {
    /// A fresh session for `user` lasting `ttl_ns` from `now`.
    pub fn new(user: UserId, now: Timestamp, ttl_ns: i64, user_agent: Option<&str>) -> Self {
        let token = random_hex();
        let csrf = random_hex();
        let session = Session {
            token_hash: hash_secret(&token),
            user_id: user,
            csrf_hash: hash_secret(&csrf),
            created_at: now,
            expires_at: Timestamp(now.nanos().saturating_add(ttl_ns)),
            last_seen_at: now,
            user_agent: user_agent
                .map(|ua| ua.chars().filter(|c| !c.is_control()).take(MAX_USER_AGENT))
                .map(String::from_iter)
                .filter(|ua| !ua.is_empty()),
        };
        Self {
            token,
            csrf,
            session,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_hex_and_only_their_hashes_are_kept() {
        let now = Timestamp::from_secs(100);
        let a = NewSession::new(UserId::new(), now, 5_000_000_000, Some("curl/8"));
        let b = NewSession::new(UserId::new(), now, 5_000_000_000, None);
        assert_eq!(a.token.len(), 64);
        assert!(a.token.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a.token, b.token);
        assert_ne!(a.token, a.csrf);
        assert_eq!(a.session.token_hash, hash_secret(&a.token));
        assert_eq!(a.session.csrf_hash, hash_secret(&a.csrf));
        assert_eq!(a.session.expires_at, now.plus_secs(5));
        assert_eq!(a.session.user_agent.as_deref(), Some("curl/8"));
        let printed = format!("{a:?}");
        assert!(!printed.contains(&a.token) && !printed.contains(&a.csrf));
    }
}
