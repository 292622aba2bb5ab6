//! A small bounded map with least-recently-used eviction and an optional time to live.
//!
//! The executor keeps channels and reflected schemas per target; the targets are chosen by users,
//! so without a bound the caches would grow with every address anyone ever typed. Capacities are
//! small (tens of entries), so eviction scans linearly instead of keeping a linked list. "Now" is
//! passed in, which keeps expiry testable without sleeping.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub(crate) struct BoundedCache<K, V> {
    capacity: usize,
    ttl: Option<Duration>,
    entries: HashMap<K, Entry<V>>,
    /// Logical clock for recency; a counter rather than `Instant` so ties cannot happen.
    tick: u64,
}

#[derive(Debug)]
struct Entry<V> {
    value: V,
    inserted: Instant,
    last_used: u64,
}

impl<K: Hash + Eq + Clone, V: Clone> BoundedCache<K, V> {
    /// `capacity` 0 disables caching (every `get` misses).
    pub(crate) fn new(capacity: usize, ttl: Option<Duration>) -> Self {
        Self {
            capacity,
            ttl,
            entries: HashMap::new(),
            tick: 0,
        }
    }

    pub(crate) fn get(&mut self, key: &K, now: Instant) -> Option<V> {
        let expired = self.is_expired(self.entries.get(key)?, now);
        if expired {
            self.entries.remove(key);
            return None;
        }
        self.tick += 1;
        let entry = self.entries.get_mut(key)?;
        entry.last_used = self.tick;
        Some(entry.value.clone())
    }

    pub(crate) fn insert(&mut self, key: K, value: V, now: Instant) {
        if self.capacity == 0 {
            return;
        }
        if !self.entries.contains_key(&key) && self.entries.len() >= self.capacity {
            let ttl = self.ttl;
            self.entries.retain(|_, e| {
                ttl.is_none_or(|ttl| now.saturating_duration_since(e.inserted) < ttl)
            });
            if self.entries.len() >= self.capacity
                && let Some(oldest) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, e)| e.last_used)
                    .map(|(k, _)| k.clone())
            {
                self.entries.remove(&oldest);
            }
        }
        self.tick += 1;
        self.entries.insert(
            key,
            Entry {
                value,
                inserted: now,
                last_used: self.tick,
            },
        );
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    fn is_expired(&self, entry: &Entry<V>, now: Instant) -> bool {
        self.ttl
            .is_some_and(|ttl| now.saturating_duration_since(entry.inserted) >= ttl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_least_recently_used_entry_at_capacity() {
        let now = Instant::now();
        let mut cache = BoundedCache::new(2, None);
        cache.insert("a", 1, now);
        cache.insert("b", 2, now);
        assert_eq!(cache.get(&"a", now), Some(1));
        cache.insert("c", 3, now);
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get(&"b", now), None, "b was used least recently");
        assert_eq!(cache.get(&"a", now), Some(1));
        assert_eq!(cache.get(&"c", now), Some(3));
        // Replacing an existing key does not evict anything.
        cache.insert("c", 4, now);
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get(&"c", now), Some(4));
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let start = Instant::now();
        let mut cache = BoundedCache::new(4, Some(Duration::from_secs(60)));
        cache.insert("a", 1, start);
        assert_eq!(cache.get(&"a", start + Duration::from_secs(59)), Some(1));
        assert_eq!(cache.get(&"a", start + Duration::from_secs(60)), None);
        assert_eq!(cache.len(), 0, "an expired entry is dropped when seen");
    }

    #[test]
    fn expired_entries_make_room_before_live_ones_are_evicted() {
        let start = Instant::now();
        let later = start + Duration::from_secs(10);
        let mut cache = BoundedCache::new(2, Some(Duration::from_secs(5)));
        cache.insert("old", 1, start);
        cache.insert("live", 2, later);
        cache.get(&"old", start); // recent use does not keep an expired entry alive
        cache.insert("new", 3, later);
        assert_eq!(cache.get(&"live", later), Some(2));
        assert_eq!(cache.get(&"new", later), Some(3));
    }

    #[test]
    fn zero_capacity_caches_nothing() {
        let now = Instant::now();
        let mut cache = BoundedCache::new(0, None);
        cache.insert("a", 1, now);
        assert_eq!(cache.get(&"a", now), None);
    }
}
