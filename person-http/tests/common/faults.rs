//! Stores that fail on purpose (never answer, unavailable, broken, panicking), to show how the HTTP layer
//! answers a failing store: a 504, a 503 with `Retry-After`, an opaque 500.

use std::sync::Arc;

use async_trait::async_trait;
use person_core::CrossReference;
use person_core::audit::AuditEntry;
use person_core::documents::{DocumentKind, DocumentWrite, StoredDocument};
use person_core::event::{FeedEntry, HistoryEntry};
use person_core::matching::SearchKey;
use person_core::ports::{
    AuditLog, AuditRecord, Candidate, DocumentRepository, DocumentWriteError, IdempotencyRecord, InsertError,
    MergeWrite, MergeWriteError, NewPersonWrite, PersonRepository, PersonWrite, RandomIds, SystemClock, UpdateError,
};
use person_core::ports::{
    ImportOutcome, ImportRepository, ImportWrite, QueryCatalogue, RelayError, RelayLease, RelayRepository,
    ReportCounts, ReportQuery, ReportingRepository,
};
use person_core::storage::NamedQuery;
use person_core::{Person, PersonId, PersonService, Repositories, StoreError};

/// A store that fails in one way on every call.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Fault {
    /// Never answers.
    Stalls,
    /// Unreachable (`StoreError::Unavailable`).
    Unavailable,
    /// Broken (`StoreError::Unexpected`).
    Broken,
    /// Panics.
    Panics,
}

#[derive(Debug)]
struct DriverError;

impl std::fmt::Display for DriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SECRET driver detail: relation persons_pkey is corrupt")
    }
}

impl std::error::Error for DriverError {}

pub(crate) struct FaultyStore(pub(crate) Fault);

impl FaultyStore {
    async fn fail<T>(&self) -> Result<T, StoreError> {
        match self.0 {
            Fault::Stalls => std::future::pending().await,
            Fault::Unavailable => Err(StoreError::Unavailable(Box::new(DriverError))),
            Fault::Broken => Err(StoreError::unexpected(DriverError)),
            Fault::Panics => panic!("the store panicked"),
        }
    }
}

#[async_trait]
impl PersonRepository for FaultyStore {
    async fn insert(&self, _write: NewPersonWrite) -> Result<Person, InsertError> {
        Ok(self.fail().await?)
    }

    async fn get(&self, _id: PersonId) -> Result<Option<Person>, StoreError> {
        self.fail().await
    }

    async fn update(&self, _write: PersonWrite) -> Result<(), UpdateError> {
        Ok(self.fail().await?)
    }

    async fn find_by_reference(&self, _reference: &CrossReference) -> Result<Option<PersonId>, StoreError> {
        self.fail().await
    }

    async fn history(&self, _id: PersonId) -> Result<Vec<HistoryEntry>, StoreError> {
        self.fail().await
    }

    async fn events_after(&self, _after: u64, _limit: u32) -> Result<Vec<FeedEntry>, StoreError> {
        self.fail().await
    }

    async fn find_idempotent_create(&self, _key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.fail().await
    }

    async fn restricted_among(&self, _ids: &[PersonId]) -> Result<Vec<PersonId>, StoreError> {
        self.fail().await
    }

    async fn candidates(&self, _keys: &[SearchKey], _limit: u32) -> Result<Vec<Candidate>, StoreError> {
        self.fail().await
    }

    async fn merge(&self, _write: MergeWrite) -> Result<(), MergeWriteError> {
        Ok(self.fail().await?)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.fail().await
    }
}

#[async_trait]
impl DocumentRepository for FaultyStore {
    async fn get_document(
        &self,
        _person: PersonId,
        _kind: &DocumentKind,
    ) -> Result<Option<StoredDocument>, StoreError> {
        self.fail().await
    }

    async fn list_documents(&self, _person: PersonId) -> Result<Vec<StoredDocument>, StoreError> {
        self.fail().await
    }

    async fn write_document(&self, _write: DocumentWrite) -> Result<(), DocumentWriteError> {
        Ok(self.fail().await?)
    }
}

#[async_trait]
impl ReportingRepository for FaultyStore {
    async fn report_persons(&self, _query: &ReportQuery) -> Result<Vec<Person>, StoreError> {
        self.fail().await
    }

    async fn report_counts(
        &self,
        _modified_since: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<ReportCounts, StoreError> {
        self.fail().await
    }
}

#[async_trait]
impl ImportRepository for FaultyStore {
    async fn import_persons(
        &self,
        _batch: Vec<ImportWrite>,
        _audit: AuditEntry,
    ) -> Result<Vec<ImportOutcome>, StoreError> {
        self.fail().await
    }

    async fn finish_import(&self) -> Result<u64, StoreError> {
        self.fail().await
    }
}

#[async_trait]
impl RelayRepository for FaultyStore {
    async fn acquire_relay_lease(
        &self,
        _relay: &str,
        _holder: &str,
        _now: chrono::DateTime<chrono::Utc>,
        _ttl: chrono::TimeDelta,
    ) -> Result<Option<RelayLease>, StoreError> {
        self.fail().await
    }

    async fn advance_relay(
        &self,
        _relay: &str,
        _holder: &str,
        _position: u64,
        _now: chrono::DateTime<chrono::Utc>,
        _ttl: chrono::TimeDelta,
    ) -> Result<(), RelayError> {
        Ok(self.fail().await?)
    }

    async fn release_relay_lease(&self, _relay: &str, _holder: &str) -> Result<(), StoreError> {
        self.fail().await
    }

    async fn relay_state(&self, _relay: &str) -> Result<Option<RelayLease>, StoreError> {
        self.fail().await
    }
}

impl QueryCatalogue for FaultyStore {
    fn store_kind(&self) -> &'static str {
        "faulty"
    }

    fn statements(&self) -> &'static [NamedQuery] {
        &[]
    }
}

#[async_trait]
impl AuditLog for FaultyStore {
    async fn append(&self, _entry: AuditEntry) -> Result<(), StoreError> {
        self.fail().await
    }

    async fn entries_for_person(
        &self,
        _person: PersonId,
        _after: u64,
        _limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        self.fail().await
    }
}

pub(crate) fn faulty_service(fault: Fault) -> PersonService {
    let store = Arc::new(FaultyStore(fault));
    PersonService::new(Repositories::from_store(store), Arc::new(SystemClock), Arc::new(RandomIds))
}
