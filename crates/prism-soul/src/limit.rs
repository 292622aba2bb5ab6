//! Sign-in throttling: failed attempts are counted per account and per client address in a sliding
//! window; past the limit, further attempts are refused (`429`) until the window has moved on,
//! whether or not the password would have been right.

use std::collections::HashMap;
use std::sync::Mutex;

use prism_domain::Timestamp;

/// Failed attempts allowed per key within the window.
#[derive(Debug, Clone, Copy)]
pub struct LimitConfig {
    pub max_failures: usize,
    pub window_ns: i64,
}

impl Default for LimitConfig {
    fn default() -> Self {
        Self {
            max_failures: 10,
            window_ns: 15 * 60 * 1_000_000_000,
        }
    }
}

/// Most keys kept at once; the oldest are forgotten beyond it (bounded memory under a flood).
const MAX_KEYS: usize = 100_000;

#[derive(Debug, Default)]
pub struct LoginLimiter {
    config: LimitConfig,
    failures: Mutex<HashMap<String, Vec<Timestamp>>>,
}

impl LoginLimiter {
    pub fn new(config: LimitConfig) -> Self {
        Self {
            config,
            failures: Mutex::default(),
        }
    }

    /// `Err(seconds to wait)` when any of `keys` is over the limit at `now`.
    pub fn check(&self, keys: &[&str], now: Timestamp) -> Result<(), u64> {
        let mut failures = self.failures.lock().expect("limiter lock");
        let mut wait_ns = 0i64;
        for key in keys {
            if let Some(times) = failures.get_mut(*key) {
                times.retain(|t| now.nanos() - t.nanos() < self.config.window_ns);
                if times.len() >= self.config.max_failures {
                    let oldest = times[times.len() - self.config.max_failures];
                    wait_ns = wait_ns.max(oldest.nanos() + self.config.window_ns - now.nanos());
                }
            }
        }
        if wait_ns > 0 {
            Err((wait_ns as u64).div_ceil(1_000_000_000))
        } else {
            Ok(())
        }
    }

    pub fn record_failure(&self, keys: &[&str], now: Timestamp) {
        let mut failures = self.failures.lock().expect("limiter lock");
        if failures.len() >= MAX_KEYS {
            let window = self.config.window_ns;
            failures.retain(|_, times| {
                times
                    .last()
                    .is_some_and(|t| now.nanos() - t.nanos() < window)
            });
            if failures.len() >= MAX_KEYS {
                failures.clear();
            }
        }
        for key in keys {
            let times = failures.entry((*key).to_owned()).or_default();
            times.push(now);
            if times.len() > self.config.max_failures {
                times.remove(0);
            }
        }
    }

    /// A successful sign-in clears the account's failures (not the address's).
    pub fn clear(&self, key: &str) {
        self.failures.lock().expect("limiter lock").remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_beyond_the_limit_block_until_the_window_moves() {
        let limiter = LoginLimiter::new(LimitConfig {
            max_failures: 3,
            window_ns: 60_000_000_000,
        });
        let t = Timestamp::from_secs(1000);
        for i in 0..3 {
            assert!(limiter.check(&["a", "ip"], t.plus_secs(i)).is_ok());
            limiter.record_failure(&["a", "ip"], t.plus_secs(i));
        }
        assert_eq!(limiter.check(&["a"], t.plus_secs(3)), Err(57));
        assert!(limiter.check(&["b"], t.plus_secs(3)).is_ok());
        assert!(limiter.check(&["b", "ip"], t.plus_secs(3)).is_err());
        assert!(limiter.check(&["a"], t.plus_secs(60)).is_ok());
        limiter.clear("a");
        assert!(limiter.check(&["a"], t.plus_secs(3)).is_ok());
    }
}
