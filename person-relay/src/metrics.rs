//! The relay's counters and gauges: atomics the relay updates as it goes and a scrape reads without blocking.
//!
//! Rendering them (Prometheus text) is the composition root's business; this module only keeps the numbers.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use chrono::{DateTime, Utc};

/// The relay's metrics: a cheap-to-clone handle on shared atomics.
#[derive(Debug, Clone, Default)]
pub struct RelayMetrics(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    /// Until when (Unix milliseconds) this instance holds the lease; 0 when it does not.
    lease_until_ms: AtomicI64,
    position: AtomicU64,
    feed_head: AtomicU64,
    /// When (Unix milliseconds) the oldest event read but not yet acknowledged happened; 0 when none.
    oldest_unpublished_ms: AtomicI64,
    events_published: AtomicU64,
    publish_failures: AtomicU64,
    lease_acquisitions: AtomicU64,
    lease_losses: AtomicU64,
    /// When (Unix milliseconds) the relay last published or found the feed caught up; 0 never.
    last_success_ms: AtomicI64,
}

/// The relay's metrics at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayMetricsSnapshot {
    /// This instance holds an unexpired lease: it is the one relaying.
    pub leader: bool,
    /// The feed position up to which (inclusive) the broker acknowledged every event.
    pub position: u64,
    /// The highest feed position this instance has read.
    pub feed_head: u64,
    /// `feed_head − position`: events read but not yet acknowledged (0 when not the leader).
    pub lag_events: u64,
    /// How long ago the oldest event read but not yet acknowledged happened (zero when none).
    pub lag: std::time::Duration,
    /// Events the broker acknowledged, in total (duplicates after a crash or a takeover included).
    pub events_published: u64,
    /// Publish attempts that acknowledged nothing.
    pub publish_failures: u64,
    /// How many times this instance took the lease.
    pub lease_acquisitions: u64,
    /// How many times this instance lost the lease while relaying (it expired, or another instance took it).
    pub lease_losses: u64,
    /// When the relay last published or found the feed caught up.
    pub last_success: Option<DateTime<Utc>>,
}

impl RelayMetrics {
    /// The numbers now; leadership is judged by the lease's expiry against the current time, so a relay that
    /// stopped without releasing (a crashed task) stops reporting itself leader when its lease lapses.
    #[must_use]
    pub fn snapshot(&self) -> RelayMetricsSnapshot {
        let now = Utc::now();
        let inner = &self.0;
        let leader = now.timestamp_millis() < inner.lease_until_ms.load(Ordering::Acquire);
        let position = inner.position.load(Ordering::Relaxed);
        let feed_head = inner.feed_head.load(Ordering::Relaxed).max(position);
        let oldest = inner.oldest_unpublished_ms.load(Ordering::Relaxed);
        let lag = if leader && oldest != 0 {
            let age_ms = now.timestamp_millis().saturating_sub(oldest).max(0);
            std::time::Duration::from_millis(age_ms.unsigned_abs())
        } else {
            std::time::Duration::ZERO
        };
        RelayMetricsSnapshot {
            leader,
            position,
            feed_head,
            lag_events: if leader { feed_head - position } else { 0 },
            lag,
            events_published: inner.events_published.load(Ordering::Relaxed),
            publish_failures: inner.publish_failures.load(Ordering::Relaxed),
            lease_acquisitions: inner.lease_acquisitions.load(Ordering::Relaxed),
            lease_losses: inner.lease_losses.load(Ordering::Relaxed),
            last_success: from_millis(inner.last_success_ms.load(Ordering::Relaxed)),
        }
    }

    pub(crate) fn lease_taken(&self, position: u64, until: DateTime<Utc>) {
        self.0.lease_acquisitions.fetch_add(1, Ordering::Relaxed);
        self.0.position.store(position, Ordering::Relaxed);
        self.0.feed_head.store(position, Ordering::Relaxed);
        self.0.oldest_unpublished_ms.store(0, Ordering::Relaxed);
        self.lease_renewed(until);
    }

    pub(crate) fn lease_renewed(&self, until: DateTime<Utc>) {
        self.0.lease_until_ms.store(until.timestamp_millis(), Ordering::Release);
    }

    pub(crate) fn lease_ended(&self, lost: bool) {
        self.0.lease_until_ms.store(0, Ordering::Release);
        self.0.oldest_unpublished_ms.store(0, Ordering::Relaxed);
        if lost {
            self.0.lease_losses.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A feed read returned entries up to `head`, the oldest not yet acknowledged from `oldest`.
    pub(crate) fn read(&self, head: u64, oldest: DateTime<Utc>) {
        self.0.feed_head.fetch_max(head, Ordering::Relaxed);
        self.0.oldest_unpublished_ms.store(oldest.timestamp_millis(), Ordering::Relaxed);
    }

    /// The broker acknowledged `count` more events, up to `position`; `next_oldest` is the time of the next event
    /// waiting (`None` when the batch read is done).
    pub(crate) fn published(&self, count: usize, position: u64, next_oldest: Option<DateTime<Utc>>) {
        self.0.events_published.fetch_add(u64::try_from(count).unwrap_or(u64::MAX), Ordering::Relaxed);
        self.0.position.fetch_max(position, Ordering::Relaxed);
        self.0.oldest_unpublished_ms.store(next_oldest.map_or(0, |t| t.timestamp_millis()), Ordering::Relaxed);
        self.succeeded();
    }

    /// The feed had nothing new: the relay is caught up.
    pub(crate) fn caught_up(&self) {
        self.0.oldest_unpublished_ms.store(0, Ordering::Relaxed);
        self.succeeded();
    }

    pub(crate) fn publish_failed(&self) {
        self.0.publish_failures.fetch_add(1, Ordering::Relaxed);
    }

    fn succeeded(&self) {
        self.0.last_success_ms.store(Utc::now().timestamp_millis(), Ordering::Relaxed);
    }
}

fn from_millis(ms: i64) -> Option<DateTime<Utc>> {
    if ms == 0 { None } else { DateTime::from_timestamp_millis(ms) }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    #[test]
    fn a_fresh_relay_reports_nothing_and_is_not_leader() {
        let snapshot = RelayMetrics::default().snapshot();
        assert!(!snapshot.leader);
        assert_eq!(snapshot.position, 0);
        assert_eq!(snapshot.lag_events, 0);
        assert_eq!(snapshot.last_success, None);
    }

    #[test]
    fn lag_is_what_was_read_but_not_yet_acknowledged() {
        let metrics = RelayMetrics::default();
        metrics.lease_taken(5, Utc::now() + TimeDelta::seconds(30));
        metrics.read(25, Utc::now() - TimeDelta::seconds(60));
        metrics.published(10, 15, Some(Utc::now()));
        let snapshot = metrics.snapshot();
        assert!(snapshot.leader);
        assert_eq!((snapshot.position, snapshot.feed_head, snapshot.lag_events), (15, 25, 10));
        assert_eq!(snapshot.events_published, 10);
        assert!(snapshot.last_success.is_some());
    }

    #[test]
    fn leadership_lapses_with_the_lease_even_without_a_release() {
        let metrics = RelayMetrics::default();
        metrics.lease_taken(0, Utc::now() - TimeDelta::milliseconds(1));
        assert!(!metrics.snapshot().leader);
        metrics.lease_renewed(Utc::now() + TimeDelta::seconds(30));
        assert!(metrics.snapshot().leader);
        metrics.lease_ended(true);
        let snapshot = metrics.snapshot();
        assert!(!snapshot.leader);
        assert_eq!((snapshot.lease_acquisitions, snapshot.lease_losses), (1, 1));
    }
}
