//! Implementing a store: a store is any type that implements the ports (`PersonRepository`,
//! `DocumentRepository`, `AuditLog`, `ReportingRepository`, `RelayRepository`, `QueryCatalogue`), and it is done
//! when the store contract suite of `person-core` (feature `testkit`) passes against it.
//!
//! This one wraps `person_core::InMemoryStore` and counts and logs every operation by name (never its values:
//! they are personal data) — the shape of a caching, metrics or tracing decorator around a real store. The
//! example runs every contract case against a fresh store and reports the result; in a store crate's own tests
//! write `person_core::store_contract_tests!(fresh_store);` instead, which makes one test per case.
//!
//! ```text
//! cargo run -p person-examples --example custom_store
//! ```
//!
//! A store that passes can be served like any other: `PersonService::new(Repositories::from_store(store), …)`
//! then `person_http::router(…)` (see `host_router.rs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use person_core::CrossReference;
use person_core::audit::AuditEntry;
use person_core::documents::{DocumentKind, DocumentWrite, StoredDocument};
use person_core::event::{FeedEntry, HistoryEntry};
use person_core::matching::SearchKey;
use person_core::ports::{
    AuditLog, AuditRecord, Candidate, DocumentRepository, DocumentWriteError, IdempotencyRecord, InsertError,
    MergeWrite, MergeWriteError, NewPersonWrite, PersonRepository, PersonWrite, UpdateError,
};
use person_core::ports::{
    ImportOutcome, ImportRepository, ImportWrite, QueryCatalogue, RelayError, RelayLease, RelayRepository,
    ReportCounts, ReportQuery, ReportingRepository,
};
use person_core::testkit::contract;
use person_core::{InMemoryStore, Person, PersonId, StoreError};

/// A store that delegates to an [`InMemoryStore`] and counts (and, when `verbose`, logs) every operation.
pub struct LoggingStore {
    inner: InMemoryStore,
    operations: AtomicU64,
    verbose: bool,
}

impl LoggingStore {
    /// A new, empty store.
    #[must_use]
    pub fn new(verbose: bool) -> Self {
        Self { inner: InMemoryStore::new(), operations: AtomicU64::new(0), verbose }
    }

    /// How many operations the store has served.
    #[must_use]
    pub fn operations(&self) -> u64 {
        self.operations.load(Ordering::Relaxed)
    }

    fn log(&self, operation: &str) {
        let n = self.operations.fetch_add(1, Ordering::Relaxed) + 1;
        if self.verbose {
            // Names and counts only: the values are personal data.
            eprintln!("store operation #{n}: {operation}");
        }
    }
}

#[async_trait]
impl PersonRepository for LoggingStore {
    async fn insert(&self, write: NewPersonWrite) -> Result<Person, InsertError> {
        self.log("person.insert");
        self.inner.insert(write).await
    }

    async fn get(&self, id: PersonId) -> Result<Option<Person>, StoreError> {
        self.log("person.get");
        self.inner.get(id).await
    }

    async fn update(&self, write: PersonWrite) -> Result<(), UpdateError> {
        self.log("person.update");
        self.inner.update(write).await
    }

    async fn candidates(&self, keys: &[SearchKey], limit: u32) -> Result<Vec<Candidate>, StoreError> {
        self.log("person.search_candidates");
        self.inner.candidates(keys, limit).await
    }

    async fn merge(&self, write: MergeWrite) -> Result<(), MergeWriteError> {
        self.log("person.merge");
        self.inner.merge(write).await
    }

    async fn find_by_reference(&self, reference: &CrossReference) -> Result<Option<PersonId>, StoreError> {
        self.log("person.find_by_reference");
        self.inner.find_by_reference(reference).await
    }

    async fn history(&self, id: PersonId) -> Result<Vec<HistoryEntry>, StoreError> {
        self.log("person.history");
        self.inner.history(id).await
    }

    async fn events_after(&self, after: u64, limit: u32) -> Result<Vec<FeedEntry>, StoreError> {
        self.log("events.after");
        self.inner.events_after(after, limit).await
    }

    async fn find_idempotent_create(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.log("idempotency.find");
        self.inner.find_idempotent_create(key).await
    }

    async fn restricted_among(&self, ids: &[PersonId]) -> Result<Vec<PersonId>, StoreError> {
        self.log("person.restricted_among");
        self.inner.restricted_among(ids).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.log("store.ping");
        self.inner.ping().await
    }
}

#[async_trait]
impl DocumentRepository for LoggingStore {
    async fn get_document(&self, person: PersonId, kind: &DocumentKind) -> Result<Option<StoredDocument>, StoreError> {
        self.log("document.get");
        self.inner.get_document(person, kind).await
    }

    async fn list_documents(&self, person: PersonId) -> Result<Vec<StoredDocument>, StoreError> {
        self.log("document.list");
        self.inner.list_documents(person).await
    }

    async fn write_document(&self, write: DocumentWrite) -> Result<(), DocumentWriteError> {
        self.log("document.write");
        self.inner.write_document(write).await
    }
}

#[async_trait]
impl AuditLog for LoggingStore {
    async fn append(&self, entry: AuditEntry) -> Result<(), StoreError> {
        self.log("audit.append");
        self.inner.append(entry).await
    }

    async fn entries_for_person(
        &self,
        person: PersonId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        self.log("audit.entries_for_person");
        self.inner.entries_for_person(person, after, limit).await
    }
}

#[async_trait]
impl ReportingRepository for LoggingStore {
    async fn report_persons(&self, query: &ReportQuery) -> Result<Vec<Person>, StoreError> {
        self.log("report.persons");
        self.inner.report_persons(query).await
    }

    async fn report_counts(
        &self,
        modified_since: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<ReportCounts, StoreError> {
        self.log("report.counts");
        self.inner.report_counts(modified_since).await
    }
}

#[async_trait]
impl ImportRepository for LoggingStore {
    async fn import_persons(
        &self,
        batch: Vec<ImportWrite>,
        audit: AuditEntry,
    ) -> Result<Vec<ImportOutcome>, StoreError> {
        self.log("person.import");
        self.inner.import_persons(batch, audit).await
    }

    async fn finish_import(&self) -> Result<u64, StoreError> {
        self.log("person.finish_import");
        self.inner.finish_import().await
    }
}

#[async_trait]
impl RelayRepository for LoggingStore {
    async fn acquire_relay_lease(
        &self,
        relay: &str,
        holder: &str,
        now: chrono::DateTime<chrono::Utc>,
        ttl: chrono::TimeDelta,
    ) -> Result<Option<RelayLease>, StoreError> {
        self.log("relay.acquire");
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
        self.log("relay.advance");
        self.inner.advance_relay(relay, holder, position, now, ttl).await
    }

    async fn release_relay_lease(&self, relay: &str, holder: &str) -> Result<(), StoreError> {
        self.log("relay.release");
        self.inner.release_relay_lease(relay, holder).await
    }

    async fn relay_state(&self, relay: &str) -> Result<Option<RelayLease>, StoreError> {
        self.log("relay.state");
        self.inner.relay_state(relay).await
    }
}

impl QueryCatalogue for LoggingStore {
    fn store_kind(&self) -> &'static str {
        self.inner.store_kind()
    }

    fn statements(&self) -> &'static [person_core::storage::NamedQuery] {
        self.inner.statements()
    }
}

/// What a contract run found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractReport {
    /// The cases that passed.
    pub passed: Vec<&'static str>,
    /// The cases that failed (each case panics with its reason, printed to stderr).
    pub failed: Vec<&'static str>,
    /// Store operations served in all.
    pub operations: u64,
}

/// Runs every contract case against a fresh [`LoggingStore`] (`verbose`: log each operation).
pub async fn run(verbose: bool) -> ContractReport {
    let mut report = ContractReport { passed: Vec::new(), failed: Vec::new(), operations: 0 };
    for (name, case) in contract::cases() {
        let store = Arc::new(LoggingStore::new(verbose));
        // A case fails by panicking: run it as a task so that one failure does not stop the others.
        let outcome = tokio::spawn(case(store.clone())).await;
        report.operations += store.operations();
        match outcome {
            Ok(()) => report.passed.push(name),
            Err(_) => report.failed.push(name),
        }
    }
    report
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let verbose = std::env::args().any(|a| a == "--verbose");
    let report = run(verbose).await;
    println!(
        "{} contract case(s) passed, {} failed, {} store operations",
        report.passed.len(),
        report.failed.len(),
        report.operations
    );
    for name in &report.failed {
        println!("FAILED: {name}");
    }
    if report.failed.is_empty() { std::process::ExitCode::SUCCESS } else { std::process::ExitCode::FAILURE }
}
