//! Storage-operation timing at the port boundary (SPEC §10, "Query visibility" and "Metrics").
//!
//! [`TimedStore`] wraps any [`Store`] and times every call of a port method under a stable operation name
//! (`person.get`, `document.write`, `audit.append`, … — see [`TimedStore`]), noting its duration, the number of
//! rows it answered (1 or 0 for a look-up, the length of a list, 1 for a successful write) and its outcome (`ok`,
//! or the kind of error: `version_conflict`, `unavailable`, …). Never a parameter, a value or an error's text.
//!
//! Each timed call goes to two places:
//!
//! * [`StoreMetrics`], shared with the router ([`crate::AppState::with_store_metrics`]), which `GET /metrics` renders
//!   as `person_api_store_operation_duration_seconds{operation}` and
//!   `person_api_store_operations_total{operation,outcome}`; every call is counted, in a request or not.
//! * The operations of the current request, when the call runs inside one: `collect`, a layer of
//!   [`crate::router`] placed inside the correlation-id layer, scopes a task-local list around the request, and
//!   when the request ends adds `Server-Timing: store;dur=<ms>;desc="<n> operations"` to the response and logs one
//!   INFO line (target `person_http::store`) with the correlation id and the operations. A request that used no
//!   store (a 404 for an unknown path, `/livez`, `/metrics`) gets neither. Work outside a request (background
//!   tasks, start-up) is only counted in the metrics.
//!
//! These are port-level operations, one per store call; a store that runs several statements for one call (a
//! merge) shows as one operation here.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::header::{HeaderName, HeaderValue};
use person_core::audit::AuditEntry;
use person_core::documents::{DocumentKind, DocumentWrite, StoredDocument};
use person_core::event::{FeedEntry, HistoryEntry};
use person_core::matching::SearchKey;
use person_core::person::{Person, PersonId};
use person_core::ports::{
    AuditLog, AuditRecord, Candidate, DocumentRepository, DocumentWriteError, IdempotencyRecord, ImportOutcome,
    ImportRepository, ImportWrite, InsertError, MergeWrite, MergeWriteError, NewPersonWrite, PersonRepository,
    PersonWrite, QueryCatalogue, RelayError, RelayLease, RelayRepository, ReportCounts, ReportQuery,
    ReportingRepository, Store, StoreError, UpdateError,
};
use person_core::reference::CrossReference;
use person_core::storage::{NamedQuery, QueryExecution};

use crate::metrics::{Histogram, MetricFamily};
use crate::middleware::CorrelationId;

/// The `Server-Timing` response header (W3C Server Timing).
pub(crate) const SERVER_TIMING: HeaderName = HeaderName::from_static("server-timing");

/// The `tracing` target of the per-request operation log line.
pub const LOG_TARGET: &str = "person_http::store";

/// Upper bounds (seconds, inclusive) of the operation latency histogram's buckets; `+Inf` follows. From 0.1 ms
/// (an in-memory or cached look-up) to 10 s.
const STORE_LATENCY_BUCKETS: [f64; 16] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Most operations listed in one request's log line; the rest are counted (`omitted`), not listed.
const MAX_LOGGED_OPERATIONS: usize = 100;

/// The outcome of a call whose future was dropped before it finished (the request timed out or was abandoned).
const CANCELLED: &str = "cancelled";

/// `store` wrapped in a [`TimedStore`] recording into `metrics`: what a composition root builds its
/// `Repositories` from (`Repositories::from_dyn(timed(store, &metrics))`), before handing the same `metrics` to
/// [`crate::AppState::with_store_metrics`].
#[must_use]
pub fn timed(store: Arc<dyn Store>, metrics: &StoreMetrics) -> Arc<dyn Store> {
    Arc::new(TimedStore::new(store, metrics))
}

/// A [`Store`] decorator timing every port call (see the module documentation).
///
/// Operation names: `person.insert`, `person.get`, `person.update`, `person.candidates`, `person.merge`,
/// `person.find_by_reference`, `person.history`, `events.after`, `idempotency.find`, `person.restricted_among`,
/// `store.ping`, `document.get`, `document.list`, `document.write`, `audit.append`, `audit.entries_for_person`,
/// `report.persons`, `report.counts`, `relay.acquire`, `relay.advance`, `relay.release`, `relay.state`.
/// `close` and the query catalogue are passed through untimed.
pub struct TimedStore {
    inner: Arc<dyn Store>,
    metrics: StoreMetrics,
}

impl TimedStore {
    /// `inner`, timed into `metrics`.
    #[must_use]
    pub fn new(inner: Arc<dyn Store>, metrics: &StoreMetrics) -> Self {
        Self { inner, metrics: metrics.clone() }
    }

    /// Runs `call`, recording it as `name` with the rows `rows` counts of its answer and its outcome; a call
    /// dropped before it finishes is recorded as `cancelled`.
    async fn time<T, E: ErrorKind>(
        &self,
        name: &'static str,
        rows: fn(&T) -> u64,
        call: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let mut pending = Pending { name, started: Instant::now(), metrics: &self.metrics, finished: false };
        let result = call.await;
        let (rows, outcome) = match &result {
            Ok(answer) => (rows(answer), "ok"),
            Err(e) => (0, e.kind()),
        };
        pending.finish(rows, outcome);
        result
    }
}

impl fmt::Debug for TimedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimedStore").finish_non_exhaustive()
    }
}

/// A call in progress: recorded when it finishes, or as `cancelled` when dropped first.
struct Pending<'a> {
    name: &'static str,
    started: Instant,
    metrics: &'a StoreMetrics,
    finished: bool,
}

impl Pending<'_> {
    fn finish(&mut self, rows: u64, outcome: &'static str) {
        self.finished = true;
        let operation = Operation { name: self.name, elapsed: self.started.elapsed(), rows, outcome };
        self.metrics.observe(&operation);
        // Outside a request there is no list: the metrics are enough.
        let _outside_a_request = CURRENT.try_with(|current| current.push(operation));
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.finish(0, CANCELLED);
        }
    }
}

/// The rows of an answer that is one row.
fn one<T>(_: &T) -> u64 {
    1
}

/// The rows of an answer that is no row.
fn none<T>(_: &T) -> u64 {
    0
}

/// The rows of a look-up: 1 when found.
fn found<T>(answer: &Option<T>) -> u64 {
    u64::from(answer.is_some())
}

/// The rows of an answer that is a count of rows.
fn counted(rows: &u64) -> u64 {
    *rows
}

/// The rows of a list: its length.
#[expect(clippy::ptr_arg, reason = "used as `fn(&T) -> u64` with `T` the port's `Vec` answer")]
fn listed<T>(answer: &Vec<T>) -> u64 {
    u64::try_from(answer.len()).unwrap_or(u64::MAX)
}

/// The outcome label of an error: its kind, never its text (which may name a person).
trait ErrorKind {
    fn kind(&self) -> &'static str;
}

impl ErrorKind for StoreError {
    fn kind(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "unavailable",
            Self::Unexpected(_) => "unexpected",
        }
    }
}

impl ErrorKind for InsertError {
    fn kind(&self) -> &'static str {
        match self {
            Self::DuplicateId => "duplicate_id",
            Self::IdempotencyKeyTaken => "idempotency_key_taken",
            Self::DuplicatePerson { .. } => "duplicate_person",
            Self::ReferenceTaken { .. } => "reference_taken",
            Self::Store(e) => e.kind(),
        }
    }
}

impl ErrorKind for UpdateError {
    fn kind(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::VersionConflict { .. } => "version_conflict",
            Self::DuplicatePerson { .. } => "duplicate_person",
            Self::ReferenceTaken { .. } => "reference_taken",
            Self::Store(e) => e.kind(),
        }
    }
}

impl ErrorKind for MergeWriteError {
    fn kind(&self) -> &'static str {
        match self {
            Self::SurvivorConflict { .. } => "survivor_conflict",
            Self::DuplicateConflict { .. } => "duplicate_conflict",
            Self::DocumentConflict => "document_conflict",
            Self::DuplicatePerson { .. } => "duplicate_person",
            Self::ReferenceTaken { .. } => "reference_taken",
            Self::Store(e) => e.kind(),
        }
    }
}

impl ErrorKind for RelayError {
    fn kind(&self) -> &'static str {
        match self {
            Self::LeaseLost => "lease_lost",
            Self::Store(e) => e.kind(),
        }
    }
}

impl ErrorKind for DocumentWriteError {
    fn kind(&self) -> &'static str {
        match self {
            Self::VersionConflict { .. } => "version_conflict",
            Self::Store(e) => e.kind(),
        }
    }
}

/// What an `async_trait` method returns (the ports are `async_trait` traits; this crate implements them by hand
/// with the same signatures rather than depend on the macro).
type Call<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl PersonRepository for TimedStore {
    fn insert<'life0, 'async_trait>(
        &'life0 self,
        write: NewPersonWrite,
    ) -> Call<'async_trait, Result<Person, InsertError>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.time("person.insert", one, self.inner.insert(write)))
    }

    fn get<'life0, 'async_trait>(&'life0 self, id: PersonId) -> Call<'async_trait, Result<Option<Person>, StoreError>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.time("person.get", found, self.inner.get(id)))
    }

    fn update<'life0, 'async_trait>(&'life0 self, write: PersonWrite) -> Call<'async_trait, Result<(), UpdateError>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.time("person.update", one, self.inner.update(write)))
    }

    fn candidates<'life0, 'life1, 'async_trait>(
        &'life0 self,
        keys: &'life1 [SearchKey],
        limit: u32,
    ) -> Call<'async_trait, Result<Vec<Candidate>, StoreError>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.time("person.candidates", listed, self.inner.candidates(keys, limit)))
    }

    fn merge<'life0, 'async_trait>(&'life0 self, write: MergeWrite) -> Call<'async_trait, Result<(), MergeWriteError>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.time("person.merge", one, self.inner.merge(write)))
    }

    fn find_by_reference<'life0, 'life1, 'async_trait>(
        &'life0 self,
        reference: &'life1 CrossReference,
    ) -> Call<'async_trait, Result<Option<PersonId>, StoreError>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.time("person.find_by_reference", found, self.inner.find_by_reference(reference)))
    }

    fn history<'life0, 'async_trait>(
        &'life0 self,
        id: PersonId,
    ) -> Call<'async_trait, Result<Vec<HistoryEntry>, StoreError>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.time("person.history", listed, self.inner.history(id)))
    }

    fn events_after<'life0, 'async_trait>(
        &'life0 self,
        after: u64,
        limit: u32,
    ) -> Call<'async_trait, Result<Vec<FeedEntry>, StoreError>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.time("events.after", listed, self.inner.events_after(after, limit)))
    }

    fn find_idempotent_create<'life0, 'life1, 'async_trait>(
        &'life0 self,
        key: &'life1 str,
    ) -> Call<'async_trait, Result<Option<IdempotencyRecord>, StoreError>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.time("idempotency.find", found, self.inner.find_idempotent_create(key)))
    }

    fn restricted_among<'life0, 'life1, 'async_trait>(
        &'life0 self,
        ids: &'life1 [PersonId],
    ) -> Call<'async_trait, Result<Vec<PersonId>, StoreError>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.time("person.restricted_among", listed, self.inner.restricted_among(ids)))
    }

    fn ping<'life0, 'async_trait>(&'life0 self) -> Call<'async_trait, Result<(), StoreError>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.time("store.ping", none, self.inner.ping()))
    }

    fn close<'life0, 'async_trait>(&'life0 self) -> Call<'async_trait, ()>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.close()
    }
}

impl DocumentRepository for TimedStore {
    fn get_document<'life0, 'life1, 'async_trait>(
        &'life0 self,
        person: PersonId,
        kind: &'life1 DocumentKind,
    ) -> Call<'async_trait, Result<Option<StoredDocument>, StoreError>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.time("document.get", found, self.inner.get_document(person, kind)))
    }

    fn list_documents<'life0, 'async_trait>(
        &'life0 self,
        person: PersonId,
    ) -> Call<'async_trait, Result<Vec<StoredDocument>, StoreError>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.time("document.list", listed, self.inner.list_documents(person)))
    }

    fn write_document<'life0, 'async_trait>(
        &'life0 self,
        write: DocumentWrite,
    ) -> Call<'async_trait, Result<(), DocumentWriteError>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.time("document.write", one, self.inner.write_document(write)))
    }
}

impl AuditLog for TimedStore {
    fn append<'life0, 'async_trait>(&'life0 self, entry: AuditEntry) -> Call<'async_trait, Result<(), StoreError>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.time("audit.append", one, self.inner.append(entry)))
    }

    fn entries_for_person<'life0, 'async_trait>(
        &'life0 self,
        person: PersonId,
        after: u64,
        limit: u32,
    ) -> Call<'async_trait, Result<Vec<AuditRecord>, StoreError>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.time("audit.entries_for_person", listed, self.inner.entries_for_person(person, after, limit)))
    }
}

impl ReportingRepository for TimedStore {
    fn report_persons<'life0, 'life1, 'async_trait>(
        &'life0 self,
        query: &'life1 ReportQuery,
    ) -> Call<'async_trait, Result<Vec<Person>, StoreError>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.time("report.persons", listed, self.inner.report_persons(query)))
    }

    fn report_counts<'life0, 'async_trait>(
        &'life0 self,
        modified_since: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Call<'async_trait, Result<ReportCounts, StoreError>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.time("report.counts", one, self.inner.report_counts(modified_since)))
    }
}

impl ImportRepository for TimedStore {
    fn import_persons<'life0, 'async_trait>(
        &'life0 self,
        batch: Vec<ImportWrite>,
        audit: AuditEntry,
    ) -> Call<'async_trait, Result<Vec<ImportOutcome>, StoreError>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.time("person.import", listed, self.inner.import_persons(batch, audit)))
    }

    fn finish_import<'life0, 'async_trait>(&'life0 self) -> Call<'async_trait, Result<u64, StoreError>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.time("person.finish_import", counted, self.inner.finish_import()))
    }
}

impl RelayRepository for TimedStore {
    fn acquire_relay_lease<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        relay: &'life1 str,
        holder: &'life2 str,
        now: chrono::DateTime<chrono::Utc>,
        ttl: chrono::TimeDelta,
    ) -> Call<'async_trait, Result<Option<RelayLease>, StoreError>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.time("relay.acquire", found, self.inner.acquire_relay_lease(relay, holder, now, ttl)))
    }

    fn advance_relay<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        relay: &'life1 str,
        holder: &'life2 str,
        position: u64,
        now: chrono::DateTime<chrono::Utc>,
        ttl: chrono::TimeDelta,
    ) -> Call<'async_trait, Result<(), RelayError>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.time("relay.advance", one, self.inner.advance_relay(relay, holder, position, now, ttl)))
    }

    fn release_relay_lease<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        relay: &'life1 str,
        holder: &'life2 str,
    ) -> Call<'async_trait, Result<(), StoreError>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.time("relay.release", none, self.inner.release_relay_lease(relay, holder)))
    }

    fn relay_state<'life0, 'life1, 'async_trait>(
        &'life0 self,
        relay: &'life1 str,
    ) -> Call<'async_trait, Result<Option<RelayLease>, StoreError>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.time("relay.state", found, self.inner.relay_state(relay)))
    }
}

impl QueryCatalogue for TimedStore {
    fn store_kind(&self) -> &'static str {
        self.inner.store_kind()
    }

    fn statements(&self) -> &'static [NamedQuery] {
        self.inner.statements()
    }
}

/// One finished (or cancelled) store call.
#[derive(Debug, Clone, Copy)]
struct Operation {
    name: &'static str,
    elapsed: Duration,
    rows: u64,
    outcome: &'static str,
}

/// Store operation counts and latencies by operation name; cheap to clone (shared). Made by the composition
/// root, given to [`timed`] and to [`crate::AppState::with_store_metrics`], which renders it on `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct StoreMetrics(Arc<Mutex<BTreeMap<&'static str, OperationSeries>>>);

/// What is known of one operation.
#[derive(Debug, Clone)]
struct OperationSeries {
    /// Calls by outcome.
    outcomes: BTreeMap<&'static str, u64>,
    /// Durations, seconds.
    latency: Histogram,
    /// Count, errors, mean, p95 and maximum, for `GET /admin/queries`.
    stats: crate::query_stats::Series,
}

impl StoreMetrics {
    fn observe(&self, operation: &Operation) {
        // A panic elsewhere while holding the lock leaves the numbers usable: keep counting.
        let mut series = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let series = series.entry(operation.name).or_insert_with(|| OperationSeries {
            outcomes: BTreeMap::new(),
            latency: Histogram::new(&STORE_LATENCY_BUCKETS),
            stats: crate::query_stats::Series::default(),
        });
        *series.outcomes.entry(operation.outcome).or_insert(0) += 1;
        series.latency.observe(operation.elapsed.as_secs_f64());
        series.stats.observe(operation.elapsed, Some(operation.rows), operation.outcome == "ok");
    }

    /// Every operation that ran, by name, with its statistics (for `GET /admin/queries`).
    pub(crate) fn views(&self) -> Vec<(&'static str, crate::query_stats::LatencyView)> {
        let series = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        series.iter().map(|(name, s)| (*name, s.stats.view())).collect()
    }

    /// Appends `person_api_store_operations_total{operation,outcome}` and
    /// `person_api_store_operation_duration_seconds{operation}` in Prometheus text format (nothing before the
    /// first operation).
    pub(crate) fn write(&self, out: &mut String) {
        let series: Vec<(&'static str, OperationSeries)> = {
            let series = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            series.iter().map(|(name, s)| (*name, s.clone())).collect()
        };
        let help = "Storage operations (one per store call) by operation name and outcome";
        let mut total = MetricFamily::new(out, "person_api_store_operations_total", "counter", help);
        for (name, s) in &series {
            for (outcome, count) in &s.outcomes {
                total.sample(&[("operation", name), ("outcome", outcome)], *count);
            }
        }
        let help = "Duration of a storage operation (one store call), by operation name";
        let mut duration = MetricFamily::new(out, "person_api_store_operation_duration_seconds", "histogram", help);
        for (name, s) in &series {
            s.latency.write(&mut duration, &[("operation", name)]);
        }
    }
}

tokio::task_local! {
    /// The operations of the request being answered, set by [`collect`].
    static CURRENT: RequestOperations;
}

/// The store operations of one request (shared between the request's task and [`collect`]).
#[derive(Debug, Clone, Default)]
struct RequestOperations(Arc<Mutex<Summary>>);

/// What a request's store calls add up to.
#[derive(Debug, Default)]
struct Summary {
    count: u64,
    total: Duration,
    /// The first [`MAX_LOGGED_OPERATIONS`], in completion order.
    listed: Vec<Operation>,
    /// Statements the store reported running (when it was opened with [`crate::QueryStats`]).
    statement_count: u64,
    /// The first [`MAX_LOGGED_OPERATIONS`] statements, in completion order.
    statements: Vec<QueryExecution>,
}

impl RequestOperations {
    fn push(&self, operation: Operation) {
        let mut summary = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        summary.count += 1;
        summary.total += operation.elapsed;
        if summary.listed.len() < MAX_LOGGED_OPERATIONS {
            summary.listed.push(operation);
        }
    }

    fn push_statement(&self, execution: QueryExecution) {
        let mut summary = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        summary.statement_count += 1;
        if summary.statements.len() < MAX_LOGGED_OPERATIONS {
            summary.statements.push(execution);
        }
    }

    fn take(&self) -> Summary {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Summary {
    /// `store;dur=<total ms, one decimal>;desc="<n> operations"`.
    fn server_timing(&self) -> String {
        let noun = if self.count == 1 { "operation" } else { "operations" };
        format!("store;dur={:.1};desc=\"{} {noun}\"", millis(self.total), self.count)
    }

    /// `name:duration_ms:rows:outcome` of each listed statement (rows `-` when unknown, outcome `ok`/`error`).
    fn statements(&self) -> String {
        let mut text = String::new();
        for (i, statement) in self.statements.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            let rows = statement.rows.map_or_else(|| "-".to_owned(), |rows| rows.to_string());
            let outcome = if statement.succeeded { "ok" } else { "error" };
            let _ = write!(text, "{}:{:.3}:{rows}:{outcome}", statement.query.name, millis(statement.elapsed));
        }
        text
    }

    /// `name:duration_ms:rows:outcome`, comma-separated, durations in ms with three decimals.
    fn operations(&self) -> String {
        let mut text = String::new();
        for (i, op) in self.listed.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            let _ = write!(text, "{}:{:.3}:{}:{}", op.name, millis(op.elapsed), op.rows, op.outcome);
        }
        text
    }
}

/// Adds a statement the store ran to the current request's list (nothing outside a request).
pub(crate) fn record_statement(execution: QueryExecution) {
    let _outside_a_request = CURRENT.try_with(|current| current.push_statement(execution));
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// The layer collecting the current request's store operations: adds the `Server-Timing` entry and logs the
/// operations when the request used the store (see the module documentation). Placed inside the correlation-id
/// layer, whose id it logs.
pub(crate) async fn collect(request: Request, next: Next) -> Response {
    let correlation_id =
        request.extensions().get::<CorrelationId>().map(|id| id.as_str().to_owned()).unwrap_or_default();
    let operations = RequestOperations::default();
    let mut response = CURRENT.scope(operations.clone(), next.run(request)).await;
    let summary = operations.take();
    if summary.count == 0 {
        return response;
    }
    if let Ok(value) = HeaderValue::from_str(&summary.server_timing()) {
        response.headers_mut().append(SERVER_TIMING, value);
    }
    let omitted = summary.count - u64::try_from(summary.listed.len()).unwrap_or(summary.count);
    tracing::info!(
        target: LOG_TARGET,
        correlation_id,
        count = summary.count,
        total_ms = (millis(summary.total) * 1000.0).round() / 1000.0,
        operations = %summary.operations(),
        omitted,
        statement_count = summary.statement_count,
        statements = %summary.statements(),
        "store operations"
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operation(name: &'static str, micros: u64, rows: u64, outcome: &'static str) -> Operation {
        Operation { name, elapsed: Duration::from_micros(micros), rows, outcome }
    }

    #[test]
    fn the_server_timing_entry_is_the_total_in_milliseconds_with_the_count() {
        let operations = RequestOperations::default();
        operations.push(operation("person.get", 1_250, 1, "ok"));
        operations.push(operation("audit.append", 100, 1, "ok"));
        let summary = operations.take();
        assert_eq!(summary.server_timing(), "store;dur=1.4;desc=\"2 operations\"");
        assert_eq!(summary.operations(), "person.get:1.250:1:ok,audit.append:0.100:1:ok");
        let one = RequestOperations::default();
        one.push(operation("store.ping", 40, 0, "unavailable"));
        assert_eq!(one.take().server_timing(), "store;dur=0.0;desc=\"1 operation\"");
    }

    #[test]
    fn only_the_first_operations_are_listed_but_all_are_counted() {
        let operations = RequestOperations::default();
        for _ in 0..MAX_LOGGED_OPERATIONS + 5 {
            operations.push(operation("person.get", 10, 0, "ok"));
        }
        let summary = operations.take();
        assert_eq!(summary.count, 105);
        assert_eq!(summary.listed.len(), MAX_LOGGED_OPERATIONS);
    }

    #[test]
    fn metrics_count_by_outcome_and_bucket_durations_from_a_tenth_of_a_millisecond() {
        let metrics = StoreMetrics::default();
        metrics.observe(&operation("person.get", 50, 1, "ok"));
        metrics.observe(&operation("person.get", 3_000, 0, "unavailable"));
        let mut text = String::new();
        metrics.write(&mut text);
        assert!(text.contains("person_api_store_operations_total{operation=\"person.get\",outcome=\"ok\"} 1\n"));
        assert!(text.contains("{operation=\"person.get\",outcome=\"unavailable\"} 1\n"), "{text}");
        let bucket = "person_api_store_operation_duration_seconds_bucket{operation=\"person.get\",le=\"0.0001\"} 1\n";
        assert!(text.contains(bucket), "{text}");
        let bucket = "person_api_store_operation_duration_seconds_bucket{operation=\"person.get\",le=\"0.005\"} 2\n";
        assert!(text.contains(bucket), "{text}");
        assert!(text.contains("person_api_store_operation_duration_seconds_count{operation=\"person.get\"} 2\n"));
    }

    #[test]
    fn nothing_is_written_before_the_first_operation() {
        let mut text = String::new();
        StoreMetrics::default().write(&mut text);
        assert_eq!(text, "");
    }

    #[test]
    fn error_outcomes_are_kinds_never_texts() {
        let error = UpdateError::Store(StoreError::unexpected("SECRET"));
        assert_eq!(error.kind(), "unexpected");
        assert_eq!(UpdateError::VersionConflict { current: 3 }.kind(), "version_conflict");
        assert_eq!(DocumentWriteError::VersionConflict { current: None }.kind(), "version_conflict");
    }
}
