//! Exponential backoff with jitter, for retrying a broker or a store that failed.
//!
//! Jitter spreads the retries of many instances (or many relays behind one throttled topic) so they do not come
//! back in step.

use std::time::Duration;

use uuid::Uuid;

/// Delays that double from `base` up to `max`, each drawn at random from its upper half ("equal jitter": never
/// less than half the nominal delay, so a failing broker is not hammered, never in lock-step with others).
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    /// A backoff starting at `base` and never waiting more than `max` (`max` is raised to `base` if lower).
    #[must_use]
    pub fn new(base: Duration, max: Duration) -> Self {
        Self { base, max: max.max(base), failures: 0 }
    }

    /// The delay before the next retry; each call counts one more failure.
    pub fn next_delay(&mut self) -> Duration {
        let nominal = self.nominal(self.failures);
        self.failures = self.failures.saturating_add(1);
        let half = nominal / 2;
        half + half.mul_f64(random_fraction())
    }

    /// Forgets the failures: the next delay is `base` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// How many failures in a row were counted since the last reset.
    #[must_use]
    pub fn failures(&self) -> u32 {
        self.failures
    }

    fn nominal(&self, failures: u32) -> Duration {
        // 2^20 × any sensible base is beyond any sensible max; capping the exponent avoids overflow.
        let factor = 1u32 << failures.min(20);
        self.base.saturating_mul(factor).min(self.max)
    }
}

/// A random number in `[0, 1)`, from the operating system's generator (through a v4 UUID's random bits: no
/// dependency just for jitter).
fn random_fraction() -> f64 {
    let bits = (Uuid::new_v4().as_u128() >> 75) as u64;
    #[expect(clippy::cast_precision_loss, reason = "53 random bits convert to f64 exactly")]
    let fraction = bits as f64 / (1u64 << 53) as f64;
    fraction
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_the_base_and_stop_at_the_max() {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
        let delays: Vec<Duration> = (0..12).map(|_| backoff.next_delay()).collect();
        for (failures, delay) in delays.iter().enumerate() {
            let nominal = backoff.nominal(u32::try_from(failures).unwrap_or(u32::MAX));
            assert!(*delay >= nominal / 2 && *delay <= nominal, "delay {failures}: {delay:?} of {nominal:?}");
        }
        assert_eq!(backoff.nominal(0), Duration::from_millis(200));
        assert_eq!(backoff.nominal(1), Duration::from_millis(400));
        assert_eq!(backoff.nominal(11), Duration::from_secs(30));
        assert_eq!(backoff.nominal(u32::MAX), Duration::from_secs(30));
        assert_eq!(backoff.failures(), 12);
    }

    #[test]
    fn a_reset_starts_again_from_the_base() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        for _ in 0..5 {
            let _ = backoff.next_delay();
        }
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(100));
    }

    #[test]
    fn a_max_below_the_base_is_raised_to_the_base() {
        let mut backoff = Backoff::new(Duration::from_secs(2), Duration::from_secs(1));
        let _ = backoff.next_delay();
        assert!(backoff.next_delay() <= Duration::from_secs(2));
    }

    #[test]
    fn random_fractions_stay_in_the_unit_interval() {
        for _ in 0..1000 {
            let fraction = random_fraction();
            assert!((0.0..1.0).contains(&fraction), "{fraction}");
        }
    }
}
