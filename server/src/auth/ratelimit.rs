//! A small in-memory rate limiter: at most `limit` events per key in each window. Used for sign-in
//! attempts per client address; reusable for ingest. Time is a parameter.

use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug)]
pub struct RateLimiter {
    limit: u32,
    window_ms: i64,
    /// Per key: when its window started and how many events it has had.
    windows: Mutex<HashMap<String, (i64, u32)>>,
}

/// Above this many keys, finished windows are swept before adding another.
const SWEEP_AT: usize = 10_000;

impl RateLimiter {
    pub fn new(limit: u32, window_ms: i64) -> RateLimiter {
        RateLimiter {
            limit,
            window_ms,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Count one event for `key` at `now_ms`; false when the key is over its limit.
    pub fn allow(&self, key: &str, now_ms: i64) -> bool {
        let Ok(mut windows) = self.windows.lock() else {
            return false;
        };
        if windows.len() >= SWEEP_AT {
            let window_ms = self.window_ms;
            windows.retain(|_, (start, _)| now_ms - *start < window_ms);
        }
        let entry = windows.entry(key.to_owned()).or_insert((now_ms, 0));
        if now_ms - entry.0 >= self.window_ms {
            *entry = (now_ms, 0);
        }
        if entry.1 >= self.limit {
            return false;
        }
        entry.1 += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_each_key_within_its_window() {
        let limiter = RateLimiter::new(3, 60_000);
        for _ in 0..3 {
            assert!(limiter.allow("10.0.0.1", 1_000));
        }
        assert!(!limiter.allow("10.0.0.1", 2_000));
        assert!(limiter.allow("10.0.0.2", 2_000), "keys are independent");
        assert!(limiter.allow("10.0.0.1", 61_000), "a new window starts");
    }
}
