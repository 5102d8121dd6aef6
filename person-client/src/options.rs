//! Options of the client and of its calls: the retry policy, per-call options (correlation id, purpose), create
//! and feed options, and the response metadata kept for diagnostics.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// How calls that are safe to repeat are retried: on transport errors, 502, 503, 504 and 429.
///
/// The delay before retry *n* (1-based) is `base_delay · 2ⁿ⁻¹`, capped at `max_delay`, with "equal jitter"
/// (a random value between half of it and all of it) so that many clients do not retry in lockstep. A
/// `Retry-After` from the server is honoured (the delay is at least what it asks); when it asks for more than
/// `max_delay`, the client gives up at once and returns the error (`TooManyRequests { retry_after }`, or
/// `Server { status: 503, .. }`) rather than wait longer than the policy allows.
///
/// Retried: `GET`, `PUT`, `DELETE`, match (a read sent as `POST`), creates (their `Idempotency-Key` makes a
/// repeat safe) and reference adds (adding a held reference changes nothing). Never retried: `PATCH` (update)
/// and merge, whose outcome after a lost response is unknown — re-read and decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1: never retry).
    pub max_attempts: u32,
    /// Delay before the first retry (before jitter).
    pub base_delay: Duration,
    /// Longest delay between two attempts.
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// One attempt, no retry.
    #[must_use]
    pub fn none() -> Self {
        Self { max_attempts: 1, base_delay: Duration::ZERO, max_delay: Duration::ZERO }
    }

    /// The jittered delay before retry number `retry` (1-based).
    pub(crate) fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        let full = self.base_delay.saturating_mul(factor).min(self.max_delay);
        let half = full / 2;
        half + half.mul_f64(random_fraction())
    }
}

impl Default for RetryPolicy {
    /// 3 attempts, 200 ms then 400 ms (jittered), never more than 10 s between attempts (the server's 503
    /// asks for 5 s, which this honours).
    fn default() -> Self {
        Self { max_attempts: 3, base_delay: Duration::from_millis(200), max_delay: Duration::from_secs(10) }
    }
}

/// A uniformly distributed value in `[0, 1)`, from the v4 UUID generator's randomness (no extra dependency).
fn random_fraction() -> f64 {
    // The low 62 bits of a v4 UUID are random (the version and variant bits sit above them).
    let bits = uuid::Uuid::new_v4().as_u128() & ((1 << 53) - 1);
    #[expect(clippy::cast_precision_loss, reason = "53 bits fit an f64 mantissa exactly")]
    let value = bits as f64;
    value / (1u64 << 53) as f64
}

/// Options that apply to every call made through one [`PersonClient`](crate::PersonClient) handle (see
/// [`PersonClient::with_options`](crate::PersonClient::with_options)).
#[derive(Clone, Default)]
pub struct CallOptions {
    pub(crate) correlation_id: Option<String>,
    pub(crate) purpose: Option<String>,
    pub(crate) capture: Option<MetaCapture>,
}

impl CallOptions {
    /// No options: a correlation id is generated per call, no purpose is declared.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends this `x-correlation-id` (1 to 128 visible ASCII characters) instead of a generated one, to tie
    /// the call to your own logs. The server writes it into its logs, history entries, events and audit
    /// entries.
    #[must_use]
    pub fn correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }

    /// Declares why the caller acts (`x-purpose`, 1 to 200 printable ASCII characters, e.g. `Tenancy audit
    /// 2026`): recorded in the audit trail with every read or change the call causes.
    #[must_use]
    pub fn purpose(mut self, purpose: impl Into<String>) -> Self {
        self.purpose = Some(purpose.into());
        self
    }

    /// Records the [`ResponseMeta`] of every response into `capture` (the last one wins).
    #[must_use]
    pub fn capture(mut self, capture: &MetaCapture) -> Self {
        self.capture = Some(capture.clone());
        self
    }
}

impl fmt::Debug for CallOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A purpose is free text and may name the person concerned.
        f.debug_struct("CallOptions")
            .field("correlation_id", &self.correlation_id)
            .field("purpose", &self.purpose.as_ref().map(|_| "<redacted>"))
            .field("capture", &self.capture.is_some())
            .finish()
    }
}

/// Diagnostics of one HTTP response (successful or not). Holds no personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseMeta {
    /// The HTTP status.
    pub status: u16,
    /// The `x-correlation-id` the server echoed (the one sent, or the one it generated). Quote it when reporting
    /// a problem.
    pub correlation_id: Option<String>,
    /// The `Server-Timing` header (`store;dur=<ms>;desc="<n> operations"`: time the request spent in the store),
    /// absent for requests that used no store.
    pub server_timing: Option<String>,
    /// The `ETag` (a version, e.g. `"3"`), when the response has one.
    pub etag: Option<String>,
    /// True when a create was answered from an earlier attempt with the same `Idempotency-Key`
    /// (`Idempotent-Replayed: true`).
    pub idempotent_replayed: bool,
    /// How many attempts the call took (1 without retries).
    pub attempts: u32,
}

/// A slot the client fills with the [`ResponseMeta`] of each response of the calls made with it (see
/// [`CallOptions::capture`]). Cheap to clone; clones share the slot.
///
/// Use one per call (or per task) when a client is shared: unlike
/// [`PersonClient::last_meta`](crate::PersonClient::last_meta), it only sees your own calls.
#[derive(Debug, Clone, Default)]
pub struct MetaCapture(Arc<Mutex<Option<ResponseMeta>>>);

impl MetaCapture {
    /// An empty slot.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The metadata of the last response recorded, if any.
    #[must_use]
    pub fn get(&self) -> Option<ResponseMeta> {
        lock(&self.0).clone()
    }

    pub(crate) fn set(&self, meta: ResponseMeta) {
        *lock(&self.0) = Some(meta);
    }
}

/// Locks a mutex holding plain data; a panic elsewhere while holding it cannot leave the data inconsistent.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Options of a create.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateOptions {
    /// Create the person even when it matches a recorded one beyond reasonable doubt (`?allowDuplicate=true`);
    /// the draft's `reason` records why.
    pub allow_duplicate: bool,
    /// The `Idempotency-Key` (1 to 255 characters). Leave `None` and the client generates a UUID per call,
    /// reused by its own retries. Set it (and keep it, e.g. with the work item that triggers the create) to
    /// make retries across process restarts safe too.
    pub idempotency_key: Option<String>,
}

/// How [`PersonApi::follow_feed`](crate::PersonApi::follow_feed) reads the feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowOptions {
    /// Events per page, 1 to 1000 (`None`: the server's default, 100).
    pub page_size: Option<u32>,
    /// How long to wait before polling again once caught up (or after an error).
    pub poll_interval: Duration,
}

impl Default for FollowOptions {
    /// The server's page size, polling every second when caught up.
    fn default() -> Self {
        Self { page_size: None, poll_interval: Duration::from_secs(1) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_is_capped() {
        let policy =
            RetryPolicy { max_attempts: 5, base_delay: Duration::from_millis(100), max_delay: Duration::from_secs(1) };
        for _ in 0..100 {
            let first = policy.backoff(1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100), "{first:?}");
            let second = policy.backoff(2);
            assert!(second >= Duration::from_millis(100) && second <= Duration::from_millis(200), "{second:?}");
            let late = policy.backoff(30);
            assert!(late >= Duration::from_millis(500) && late <= Duration::from_secs(1), "{late:?}");
        }
    }

    #[test]
    fn random_fractions_stay_in_the_unit_interval() {
        for _ in 0..1000 {
            let x = random_fraction();
            assert!((0.0..1.0).contains(&x), "{x}");
        }
    }

    #[test]
    fn a_purpose_is_not_shown_by_debug() {
        let shown = format!("{:?}", CallOptions::new().purpose("Visit to Kimakhe").correlation_id("c-1"));
        assert!(!shown.contains("Kimakhe"), "{shown}");
        assert!(shown.contains("c-1"), "{shown}");
    }
}
