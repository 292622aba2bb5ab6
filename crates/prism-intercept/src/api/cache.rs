//! A small cache of credential and membership lookups, for two reasons:
//!
//! - **Speed:** a proxied request should not pay two database reads for the same token and
//!   workspace it used a millisecond ago. Entries younger than [`FRESH`] are used without asking
//!   the database, so a revoked token or a removed member keeps working for at most that long.
//! - **Availability:** when the database is unavailable, entries younger than `auth_stale_if_error` ([`STALE_IF_ERROR`])
//!   are used instead of failing, so requests keep running through an outage (their records wait
//!   in the recorder's memory and spool). Only *positive* answers are cached: an unknown token is
//!   asked about every time.
//!
//! Memory is bounded: past [`MAX_ENTRIES`] the cache is cleared and refills.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use prism_domain::{ApiTokenId, Role, UserId, WorkspaceId};

/// Default of `InterceptSettings::auth_fresh`: answers this young are used without asking the
/// database.
pub const FRESH: Duration = Duration::from_secs(2);
/// Default of `InterceptSettings::auth_stale_if_error`: answers this young are used when the
/// database cannot be asked.
pub const STALE_IF_ERROR: Duration = Duration::from_secs(600);
/// Entries per map before it is cleared.
pub const MAX_ENTRIES: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachedToken {
    pub user_id: UserId,
    pub token_id: ApiTokenId,
}

#[derive(Debug, Default)]
pub struct AuthCache {
    tokens: Mutex<HashMap<Vec<u8>, (CachedToken, Instant)>>,
    roles: Mutex<HashMap<(WorkspaceId, UserId), (Role, Instant)>>,
}

fn get<K: std::hash::Hash + Eq, V: Copy>(
    map: &Mutex<HashMap<K, (V, Instant)>>,
    key: &K,
    max_age: Duration,
) -> Option<V> {
    let map = map.lock().unwrap_or_else(|e| e.into_inner());
    map.get(key)
        .filter(|(_, at)| at.elapsed() <= max_age)
        .map(|(v, _)| *v)
}

fn put<K: std::hash::Hash + Eq, V>(map: &Mutex<HashMap<K, (V, Instant)>>, key: K, value: V) {
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    if map.len() >= MAX_ENTRIES {
        map.clear();
    }
    map.insert(key, (value, Instant::now()));
}

impl AuthCache {
    pub fn token(&self, hash: &[u8], max_age: Duration) -> Option<CachedToken> {
        get(&self.tokens, &hash.to_vec(), max_age)
    }

    pub fn remember_token(&self, hash: Vec<u8>, token: CachedToken) {
        put(&self.tokens, hash, token);
    }

    pub fn role(&self, workspace: WorkspaceId, user: UserId, max_age: Duration) -> Option<Role> {
        get(&self.roles, &(workspace, user), max_age)
    }

    pub fn remember_role(&self, workspace: WorkspaceId, user: UserId, role: Role) {
        put(&self.roles, (workspace, user), role);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_by_the_age_asked_for_and_the_map_stays_bounded() {
        let cache = AuthCache::default();
        let token = CachedToken {
            user_id: UserId::new(),
            token_id: ApiTokenId::new(),
        };
        cache.remember_token(b"h".to_vec(), token);
        assert_eq!(cache.token(b"h", FRESH), Some(token));
        assert_eq!(cache.token(b"h", Duration::ZERO), None);
        assert_eq!(cache.token(b"other", FRESH), None);
        for i in 0..MAX_ENTRIES + 5 {
            cache.remember_token(i.to_le_bytes().to_vec(), token);
        }
        assert!(cache.tokens.lock().unwrap().len() <= MAX_ENTRIES);
    }
}
