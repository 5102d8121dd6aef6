//! Per-caller rate limiting: a token bucket per authenticated subject (the token's `sub`, or a service token's
//! consumer name). A caller may send `burst` requests at once and `per_second` on average; beyond that requests are
//! answered `429 Too Many Requests` (a `too-many-requests` problem) with `Retry-After` saying when one will be
//! accepted. Health, readiness and the OpenAPI document are not limited (they are not authenticated either).
//!
//! Buckets live in memory, per server process: behind a load balancer each instance limits on its own. The map is
//! bounded: when it holds [`MAX_CALLERS`] buckets, those that have refilled completely (idle callers) are dropped,
//! which changes nothing for them (a full bucket is what a new caller gets).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How many requests a caller may send (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Sustained requests per second per caller (at least 1).
    pub per_second: u32,
    /// Requests a caller may send at once, above the sustained rate (at least 1).
    pub burst: u32,
}

/// Buckets kept before idle ones are dropped.
pub(crate) const MAX_CALLERS: usize = 10_000;

/// A caller's bucket: tokens left, as of `at`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets of every caller.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    pub(crate) fn new(config: RateLimitConfig) -> Self {
        Self {
            per_second: f64::from(config.per_second.max(1)),
            burst: f64::from(config.burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token from `caller`'s bucket at `now`: `Ok`, or `Err(seconds)` until one is available (at least
    /// 1, as `Retry-After` counts whole seconds).
    pub(crate) fn check(&self, caller: &str, now: Instant) -> Result<(), u32> {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= MAX_CALLERS && !buckets.contains_key(caller) {
            let (per_second, burst) = (self.per_second, self.burst);
            buckets.retain(|_, b| b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * per_second < burst);
        }
        let bucket = buckets.entry(caller.to_owned()).or_insert(Bucket { tokens: self.burst, at: now });
        let refilled = now.saturating_duration_since(bucket.at).as_secs_f64() * self.per_second;
        bucket.tokens = (bucket.tokens + refilled).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = Duration::from_secs_f64((1.0 - bucket.tokens) / self.per_second);
        Err(u32::try_from(wait.as_secs()).unwrap_or(u32::MAX).saturating_add(u32::from(wait.subsec_nanos() > 0)).max(1))
    }

    #[cfg(test)]
    fn callers(&self) -> usize {
        self.buckets.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{MAX_CALLERS, RateLimitConfig, RateLimiter};

    #[test]
    fn a_caller_gets_its_burst_then_its_rate_and_others_are_not_affected() {
        let limiter = RateLimiter::new(RateLimitConfig { per_second: 2, burst: 3 });
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.check("a", start), Ok(()));
        }
        assert_eq!(limiter.check("a", start), Err(1), "the burst is spent: one token comes in 0.5 s, rounded up");
        assert_eq!(limiter.check("b", start), Ok(()), "another caller has its own bucket");
        assert_eq!(limiter.check("a", start + Duration::from_millis(400)), Err(1));
        assert_eq!(limiter.check("a", start + Duration::from_millis(500)), Ok(()), "refilled at 2 per second");
        assert_eq!(limiter.check("a", start + Duration::from_millis(500)), Err(1));
        let later = start + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(limiter.check("a", later), Ok(()), "an idle caller gets its whole burst back, not more");
        }
        assert_eq!(limiter.check("a", later), Err(1));
    }

    #[test]
    fn retry_after_counts_whole_seconds_at_low_rates() {
        let limiter = RateLimiter::new(RateLimitConfig { per_second: 1, burst: 1 });
        let start = Instant::now();
        assert_eq!(limiter.check("a", start), Ok(()));
        assert_eq!(limiter.check("a", start), Err(1));
        assert_eq!(limiter.check("a", start + Duration::from_millis(999)), Err(1));
        assert_eq!(limiter.check("a", start + Duration::from_millis(1_000)), Ok(()));
    }

    #[test]
    fn idle_callers_are_forgotten_when_the_map_is_full_but_active_ones_are_kept() {
        let limiter = RateLimiter::new(RateLimitConfig { per_second: 10, burst: 5 });
        let start = Instant::now();
        for caller in 0..MAX_CALLERS {
            assert_eq!(limiter.check(&caller.to_string(), start), Ok(()));
        }
        for _ in 0..4 {
            assert_eq!(limiter.check("0", start + Duration::from_millis(100)), Ok(()));
        }
        assert_eq!(limiter.callers(), MAX_CALLERS);
        // 0.1 s later every bucket but "0" has refilled (1 token at 10/s); "0" spent its burst and is kept.
        assert_eq!(limiter.check("new", start + Duration::from_millis(100)), Ok(()));
        assert_eq!(limiter.callers(), 2, "the idle callers were dropped, the busy one and the new one kept");
        assert_eq!(limiter.check("0", start + Duration::from_millis(100)), Ok(()));
        assert_eq!(limiter.check("0", start + Duration::from_millis(100)), Err(1), "its bucket was not reset");
    }
}
