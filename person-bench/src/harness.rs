//! What the store benchmarks share: opening the SQLite store, the service over it with timed ports, the caller,
//! a deterministic PRNG and percentiles.
//!
//! The ports are wrapped ([`Timed`]) so that a run can tell how much of an operation's latency is the store's
//! candidate query, the audit append or the insert, and which query kind each store call served (a task-local
//! label set around each measured operation).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use person_core::CrossReference;
use person_core::access::{Permission, Permissions};
use person_core::audit::AuditEntry;
use person_core::documents::{DocumentKind, DocumentWrite, StoredDocument};
use person_core::event::{Actor, FeedEntry, HistoryEntry};
use person_core::matching::SearchKey;
use person_core::ports::{
    AuditLog, AuditRecord, Candidate, DocumentRepository, DocumentWriteError, IdempotencyRecord, InsertError,
    MergeWrite, MergeWriteError, NewPersonWrite, PersonRepository, PersonWrite, RandomIds, Repositories, StoreError,
    SystemClock, UpdateError,
};
use person_core::ports::{
    ImportOutcome, ImportRepository, ImportWrite, QueryCatalogue, RelayError, RelayLease, RelayRepository,
    ReportCounts, ReportQuery, ReportingRepository,
};
use person_core::testkit::synthetic::SyntheticConfig;
use person_core::{Person, PersonId, PersonService, RequestContext};
use person_sqlite::{SqliteOptions, SqliteStore, Synchronous};

tokio::task_local! {
    /// The label of the operation being measured in this task (a query kind), recorded with each store call.
    pub(crate) static LABEL: &'static str;
}

/// Which store call was timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// `PersonRepository::candidates`.
    Candidates,
    /// `AuditLog::append`.
    AuditAppend,
    /// `PersonRepository::insert`.
    Insert,
    /// `DocumentRepository::write_document`.
    WriteDocument,
}

/// One timed store call.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    /// The label of the measured operation it served, if any.
    pub(crate) label: Option<&'static str>,
    /// The call.
    pub(crate) op: Op,
    /// Wall time of the call (including waiting for a connection).
    pub(crate) elapsed: Duration,
    /// Rows answered (candidates only).
    pub(crate) rows: usize,
    /// The row limit asked for (candidates only).
    pub(crate) limit: u32,
    /// The keys asked for (candidates only, and only when keys are kept).
    pub(crate) keys: Vec<String>,
}

/// The SQLite store with its ports timed.
pub(crate) struct Timed {
    inner: SqliteStore,
    calls: Mutex<Vec<Call>>,
    keep_keys: bool,
    record: bool,
}

impl Timed {
    fn log(&self, op: Op, elapsed: Duration, rows: usize, limit: u32, keys: Vec<String>) {
        if !self.record {
            return;
        }
        let label = LABEL.try_with(|l| *l).ok();
        let call = Call { label, op, elapsed, rows, limit, keys };
        self.calls.lock().unwrap_or_else(PoisonError::into_inner).push(call);
    }

    /// Takes the calls recorded so far.
    pub(crate) fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut *self.calls.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

#[async_trait]
impl PersonRepository for Timed {
    async fn insert(&self, write: NewPersonWrite) -> Result<Person, InsertError> {
        let started = Instant::now();
        let result = self.inner.insert(write).await;
        self.log(Op::Insert, started.elapsed(), 0, 0, Vec::new());
        result
    }

    async fn get(&self, id: PersonId) -> Result<Option<Person>, StoreError> {
        self.inner.get(id).await
    }

    async fn update(&self, write: PersonWrite) -> Result<(), UpdateError> {
        self.inner.update(write).await
    }

    async fn candidates(&self, keys: &[SearchKey], limit: u32) -> Result<Vec<Candidate>, StoreError> {
        let started = Instant::now();
        let result = self.inner.candidates(keys, limit).await;
        let rows = result.as_ref().map_or(0, Vec::len);
        let kept = if self.keep_keys { keys.iter().map(|k| k.as_str().to_owned()).collect() } else { Vec::new() };
        self.log(Op::Candidates, started.elapsed(), rows, limit, kept);
        result
    }

    async fn merge(&self, write: MergeWrite) -> Result<(), MergeWriteError> {
        self.inner.merge(write).await
    }

    async fn find_by_reference(&self, reference: &CrossReference) -> Result<Option<PersonId>, StoreError> {
        self.inner.find_by_reference(reference).await
    }

    async fn history(&self, id: PersonId) -> Result<Vec<HistoryEntry>, StoreError> {
        self.inner.history(id).await
    }

    async fn events_after(&self, after: u64, limit: u32) -> Result<Vec<FeedEntry>, StoreError> {
        self.inner.events_after(after, limit).await
    }

    async fn find_idempotent_create(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.inner.find_idempotent_create(key).await
    }

    async fn restricted_among(&self, ids: &[PersonId]) -> Result<Vec<PersonId>, StoreError> {
        self.inner.restricted_among(ids).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        PersonRepository::ping(&self.inner).await
    }

    async fn close(&self) {
        PersonRepository::close(&self.inner).await;
    }
}

#[async_trait]
impl DocumentRepository for Timed {
    async fn get_document(&self, person: PersonId, kind: &DocumentKind) -> Result<Option<StoredDocument>, StoreError> {
        self.inner.get_document(person, kind).await
    }

    async fn list_documents(&self, person: PersonId) -> Result<Vec<StoredDocument>, StoreError> {
        self.inner.list_documents(person).await
    }

    async fn write_document(&self, write: DocumentWrite) -> Result<(), DocumentWriteError> {
        let started = Instant::now();
        let result = self.inner.write_document(write).await;
        self.log(Op::WriteDocument, started.elapsed(), 0, 0, Vec::new());
        result
    }
}

#[async_trait]
impl ReportingRepository for Timed {
    async fn report_persons(&self, query: &ReportQuery) -> Result<Vec<Person>, StoreError> {
        self.inner.report_persons(query).await
    }

    async fn report_counts(
        &self,
        modified_since: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<ReportCounts, StoreError> {
        self.inner.report_counts(modified_since).await
    }
}

#[async_trait]
impl ImportRepository for Timed {
    async fn import_persons(
        &self,
        batch: Vec<ImportWrite>,
        audit: AuditEntry,
    ) -> Result<Vec<ImportOutcome>, StoreError> {
        self.inner.import_persons(batch, audit).await
    }

    async fn finish_import(&self) -> Result<u64, StoreError> {
        self.inner.finish_import().await
    }
}

#[async_trait]
impl RelayRepository for Timed {
    async fn acquire_relay_lease(
        &self,
        relay: &str,
        holder: &str,
        now: chrono::DateTime<chrono::Utc>,
        ttl: chrono::TimeDelta,
    ) -> Result<Option<RelayLease>, StoreError> {
        self.inner.acquire_relay_lease(relay, holder, now, ttl).await
    }

    async fn advance_relay(
        &self,
        relay: &str,
        holder: &str,
        position: u64,
        now: chrono::DateTime<chrono::Utc>,
        ttl: chrono::TimeDelta,
    ) -> Result<(), RelayError> {
        self.inner.advance_relay(relay, holder, position, now, ttl).await
    }

    async fn release_relay_lease(&self, relay: &str, holder: &str) -> Result<(), StoreError> {
        self.inner.release_relay_lease(relay, holder).await
    }

    async fn relay_state(&self, relay: &str) -> Result<Option<RelayLease>, StoreError> {
        self.inner.relay_state(relay).await
    }
}

impl QueryCatalogue for Timed {
    fn store_kind(&self) -> &'static str {
        self.inner.store_kind()
    }

    fn statements(&self) -> &'static [person_core::storage::NamedQuery] {
        self.inner.statements()
    }
}

#[async_trait]
impl AuditLog for Timed {
    async fn append(&self, entry: AuditEntry) -> Result<(), StoreError> {
        let started = Instant::now();
        let result = self.inner.append(entry).await;
        self.log(Op::AuditAppend, started.elapsed(), 0, 0, Vec::new());
        result
    }

    async fn entries_for_person(
        &self,
        person: PersonId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        self.inner.entries_for_person(person, after, limit).await
    }
}

/// The service over the timed SQLite store, as the server composes it (system clock, random ids).
pub(crate) struct Bench {
    /// The use cases.
    pub(crate) service: PersonService,
    /// The timed ports (for the call log and direct reads).
    pub(crate) timed: Arc<Timed>,
}

impl Bench {
    /// Opens the store at `url` (migrating it) and builds the service. `record` keeps a log of timed calls;
    /// `keep_keys` also keeps the keys of each candidate query.
    pub(crate) async fn open(
        url: &str,
        synchronous: Synchronous,
        readers: u32,
        record: bool,
        keep_keys: bool,
    ) -> anyhow::Result<Self> {
        let options = SqliteOptions { synchronous, readers, ..SqliteOptions::default() };
        let store = SqliteStore::open(url, options).await.map_err(|e| anyhow::anyhow!("opening {url}: {e:?}"))?;
        let timed = Arc::new(Timed { inner: store, calls: Mutex::new(Vec::new()), keep_keys, record });
        let repositories = Repositories::from_store(timed.clone());
        let service = PersonService::new(repositories, Arc::new(SystemClock), Arc::new(RandomIds));
        Ok(Self { service, timed })
    }

    /// The database file.
    pub(crate) fn path(&self) -> &std::path::Path {
        self.timed.inner.path()
    }

    /// Closes the store (checkpointing the WAL).
    pub(crate) async fn close(&self) {
        self.timed.inner.close().await;
    }
}

/// The caller of every benchmark operation: a member of staff who may read and write persons and equality data
/// (so NI numbers are searched and matched on), not `admin`.
pub(crate) fn caller() -> RequestContext {
    let actor = Actor {
        subject: "person-bench".to_owned(),
        name: "Person Bench".to_owned(),
        email: "bench@localhost".to_owned(),
    };
    let permissions: Permissions =
        [Permission::PersonsRead, Permission::PersonsWrite, Permission::EqualityRead, Permission::EqualityWrite]
            .into_iter()
            .collect();
    RequestContext::new(actor, permissions, "person-bench")
}

/// The generator configuration of the store benchmarks: the register of `persons` persons for `seed` with its
/// labelled duplicate queries only.
///
/// The register and the duplicate queries are exactly those of [`SyntheticConfig::new`] (the generator draws
/// the persons first, then the duplicates, then the other queries), but without the new-person and
/// hard-negative queries, which the latency benchmarks do not use and whose generation scans the whole register
/// once per query (hours at 1,000,000 persons).
pub(crate) fn register_config(persons: usize, seed: u64) -> SyntheticConfig {
    SyntheticConfig { new_person_rate: 0.0, hard_negative_rate: 0.0, ..SyntheticConfig::new(persons, seed) }
}

/// SplitMix64: a small deterministic PRNG, so a seed always picks the same queries.
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator for `seed` and a purpose (so different purposes draw independent streams).
    pub(crate) fn new(seed: u64, purpose: u64) -> Self {
        Self(seed ^ purpose.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next_u64() % n as u64) as usize }
    }
}

/// Latency percentiles of a sample, in milliseconds (nearest rank).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Percentiles {
    /// Sample size.
    pub(crate) count: usize,
    /// Median.
    pub(crate) p50: f64,
    /// 95th percentile.
    pub(crate) p95: f64,
    /// 99th percentile.
    pub(crate) p99: f64,
    /// Largest.
    pub(crate) max: f64,
}

impl Percentiles {
    /// The percentiles of `sample` (any order).
    pub(crate) fn of(sample: &[Duration]) -> Self {
        let mut ms: Vec<f64> = sample.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        let at = |q: f64| -> f64 {
            if ms.is_empty() {
                return 0.0;
            }
            // Nearest rank: the smallest value with at least q of the sample at or below it.
            let rank = (q * ms.len() as f64).ceil().max(1.0) as usize;
            ms.get(rank.min(ms.len()) - 1).copied().unwrap_or(0.0)
        };
        Self { count: ms.len(), p50: at(0.50), p95: at(0.95), p99: at(0.99), max: at(1.0) }
    }
}

/// The size of the database file and its WAL, in bytes.
pub(crate) fn database_bytes(path: &std::path::Path) -> (u64, u64) {
    let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    (size(path), size(std::path::Path::new(&wal)))
}

/// Bytes as GiB/MiB text.
pub(crate) fn human_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2} GiB", b / (1024.0 * 1024.0 * 1024.0))
    } else {
        format!("{:.1} MiB", b / (1024.0 * 1024.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let sample: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let p = Percentiles::of(&sample);
        assert_eq!(p.count, 100);
        assert!((p.p50 - 50.0).abs() < 1e-9);
        assert!((p.p95 - 95.0).abs() < 1e-9);
        assert!((p.p99 - 99.0).abs() < 1e-9);
        assert!((p.max - 100.0).abs() < 1e-9);
    }

    #[test]
    fn percentiles_of_nothing_are_zero() {
        let p = Percentiles::of(&[]);
        assert_eq!(p.count, 0);
        assert!(p.p99.abs() < 1e-9);
    }

    #[test]
    fn the_benchmark_register_and_duplicates_are_those_of_the_full_data_set() {
        use person_core::testkit::synthetic::{QueryKind, generate};
        let full = generate(&SyntheticConfig::new(2_000, 9));
        let register = generate(&register_config(2_000, 9));
        let ids = |d: &person_core::testkit::synthetic::SyntheticDataSet| {
            d.persons.iter().map(|p| p.person.id).collect::<Vec<_>>()
        };
        assert_eq!(ids(&full), ids(&register));
        let duplicates: Vec<_> = full.queries.iter().filter(|q| q.kind == QueryKind::Duplicate).collect();
        assert_eq!(duplicates.len(), register.queries.len());
        for (a, b) in duplicates.iter().zip(&register.queries) {
            assert_eq!(a.expected, b.expected);
            assert_eq!(a.profile, b.profile);
        }
    }

    #[test]
    fn the_rng_is_deterministic_per_seed_and_purpose() {
        let draw = |seed, purpose| {
            let mut rng = Rng::new(seed, purpose);
            (0..4).map(|_| rng.below(1000)).collect::<Vec<_>>()
        };
        assert_eq!(draw(42, 1), draw(42, 1));
        assert_ne!(draw(42, 1), draw(42, 2));
    }
}
