//! Statement-level query visibility (SPEC §10): live statistics of every named statement a store runs, for
//! `GET /api/v1/admin/queries`, and the statements of each request for its operation log line.
//!
//! A store opened with a [`person_core::storage::QueryRecorder`] over [`QueryStats`] reports each statement it
//! executes (its catalogue name, duration, row count, success). [`QueryStats`] keeps, per statement name: the
//! number of executions, failures, total and maximum duration, the time of the last failure and the durations of
//! the most recent [`RECENT_SAMPLES`] executions, from which the p95 is computed. When the statement runs inside a
//! request, it is also added to the request's list (see [`crate::store_timing`]), which the request's log line
//! shows under `statements`.
//!
//! Names and statement texts come from the store's catalogue: never a parameter value. This module knows nothing
//! of any particular store.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use person_core::storage::{QueryExecution, QueryObserver};
use serde::Serialize;

/// How many recent durations per statement the p95 is computed from.
pub const RECENT_SAMPLES: usize = 1024;

/// Statement statistics shared by the store (which reports into it) and the router (which shows them); cheap to
/// clone. Made by the composition root before it opens the store.
#[derive(Debug, Clone, Default)]
pub struct QueryStats(Arc<Mutex<BTreeMap<&'static str, Series>>>);

/// Latency statistics of one named thing (a statement, or a port-level operation).
#[derive(Debug, Clone, Default)]
pub(crate) struct Series {
    count: u64,
    errors: u64,
    rows: u64,
    total: Duration,
    max: Duration,
    last_error_at: Option<DateTime<Utc>>,
    recent: VecDeque<Duration>,
}

impl Series {
    /// Records one execution.
    pub(crate) fn observe(&mut self, elapsed: Duration, rows: Option<u64>, succeeded: bool) {
        self.count += 1;
        self.rows += rows.unwrap_or(0);
        self.total += elapsed;
        self.max = self.max.max(elapsed);
        if !succeeded {
            self.errors += 1;
            self.last_error_at = Some(Utc::now());
        }
        if self.recent.len() == RECENT_SAMPLES {
            self.recent.pop_front();
        }
        self.recent.push_back(elapsed);
    }

    /// The statistics as shown by `GET /admin/queries`.
    pub(crate) fn view(&self) -> LatencyView {
        let mean =
            if self.count == 0 { Duration::ZERO } else { self.total / u32::try_from(self.count).unwrap_or(u32::MAX) };
        LatencyView {
            count: self.count,
            errors: self.errors,
            rows: self.rows,
            mean_ms: millis(mean),
            p95_ms: millis(self.p95()),
            max_ms: millis(self.max),
            last_error_at: self.last_error_at,
        }
    }

    /// The 95th percentile (nearest rank) of the recent durations; zero before the first.
    fn p95(&self) -> Duration {
        if self.recent.is_empty() {
            return Duration::ZERO;
        }
        let mut sorted: Vec<Duration> = self.recent.iter().copied().collect();
        sorted.sort_unstable();
        // Nearest rank: ceil(0.95 × n), 1-based.
        let rank = (sorted.len() * 95).div_ceil(100).max(1);
        sorted[rank - 1]
    }
}

/// Milliseconds with microsecond precision.
fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// Latency statistics as `GET /admin/queries` shows them.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LatencyView {
    /// Executions since the server started.
    pub count: u64,
    /// Failed executions (including refused conditional writes where the store reports them as failures).
    pub errors: u64,
    /// Rows (or items) returned or changed in all, where the store reports them.
    pub rows: u64,
    /// Mean duration, milliseconds.
    pub mean_ms: f64,
    /// 95th percentile of the most recent executions (up to 1,024), milliseconds.
    pub p95_ms: f64,
    /// Longest duration, milliseconds.
    pub max_ms: f64,
    /// When the last failure happened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error_at: Option<DateTime<Utc>>,
}

impl QueryStats {
    /// The statistics of `name`, zero when it never ran.
    pub(crate) fn view(&self, name: &str) -> LatencyView {
        let series = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        series.get(name).cloned().unwrap_or_default().view()
    }

    /// Names that ran but are not in `catalogue` (a store bug; shown so that it is noticed).
    pub(crate) fn uncatalogued(&self, catalogue: &[person_core::storage::NamedQuery]) -> Vec<&'static str> {
        let series = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        series.keys().copied().filter(|name| !catalogue.iter().any(|q| q.name == *name)).collect()
    }
}

impl QueryObserver for QueryStats {
    fn executed(&self, execution: QueryExecution) {
        {
            let mut series = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            series.entry(execution.query.name).or_default().observe(
                execution.elapsed,
                execution.rows,
                execution.succeeded,
            );
        }
        crate::store_timing::record_statement(execution);
    }
}

#[cfg(test)]
mod tests {
    use person_core::storage::NamedQuery;

    use super::*;

    const GET: NamedQuery = NamedQuery { name: "person.get", sql: "SELECT document FROM persons WHERE id = ?" };

    fn run(stats: &QueryStats, micros: u64, succeeded: bool) {
        let elapsed = Duration::from_micros(micros);
        stats.executed(QueryExecution { query: &GET, elapsed, rows: succeeded.then_some(1), succeeded });
    }

    #[test]
    fn counts_errors_mean_p95_and_max_follow_the_executions() {
        let stats = QueryStats::default();
        assert_eq!(stats.view("person.get").count, 0);
        for micros in 1..=100 {
            run(&stats, micros * 10, true);
        }
        run(&stats, 5_000, false);
        let view = stats.view("person.get");
        assert_eq!((view.count, view.errors, view.rows), (101, 1, 100));
        assert_eq!(view.max_ms, 5.0);
        assert_eq!(view.p95_ms, 0.96, "the 96th of 101 sorted samples");
        assert!((view.mean_ms - (50_500.0 + 5_000.0) / 101.0 / 1000.0).abs() < 0.001, "{}", view.mean_ms);
        assert!(view.last_error_at.is_some());
    }

    #[test]
    fn the_p95_covers_only_the_most_recent_executions() {
        let stats = QueryStats::default();
        for _ in 0..RECENT_SAMPLES {
            run(&stats, 9_000, true);
        }
        for _ in 0..RECENT_SAMPLES {
            run(&stats, 100, true);
        }
        let view = stats.view("person.get");
        assert_eq!(view.p95_ms, 0.1);
        assert_eq!(view.max_ms, 9.0, "the maximum is over every execution");
    }

    #[test]
    fn names_missing_from_the_catalogue_are_reported() {
        let stats = QueryStats::default();
        run(&stats, 10, true);
        assert_eq!(stats.uncatalogued(&[GET]), Vec::<&str>::new());
        assert_eq!(stats.uncatalogued(&[]), vec!["person.get"]);
    }
}
