//! [`Guarded`]: a store together with something that must live exactly as long as it — the temporary directory
//! of its database file, or a guard that deletes its test table when dropped — implementing every port by
//! delegating to the store, so an adapter's contract test needs no wrapper of its own.

use std::ops::Deref;

use async_trait::async_trait;

use crate::audit::AuditEntry;
use crate::documents::{DocumentKind, DocumentWrite, StoredDocument};
use crate::event::{FeedEntry, HistoryEntry};
use crate::matching::SearchKey;
use crate::person::{Person, PersonId};
use crate::ports::{
    AuditLog, AuditRecord, Candidate, DocumentRepository, DocumentWriteError, IdempotencyRecord, ImportOutcome,
    ImportRepository, ImportWrite, InsertError, MergeWrite, MergeWriteError, NewPersonWrite, PersonRepository,
    PersonWrite, QueryCatalogue, RelayError, RelayLease, RelayRepository, ReportCounts, ReportQuery,
    ReportingRepository, StoreError, UpdateError,
};
use crate::reference::CrossReference;
use crate::storage::NamedQuery;

/// A store and its guard. The store is dropped first (its connections released), then the guard.
#[derive(Debug)]
pub struct Guarded<S, G> {
    /// The store under test.
    pub store: S,
    /// What must outlive the store's use (dropped after it).
    pub guard: G,
}

impl<S, G> Guarded<S, G> {
    /// `store`, keeping `guard` alive as long as it.
    pub fn new(store: S, guard: G) -> Self {
        Self { store, guard }
    }
}

impl<S, G> Deref for Guarded<S, G> {
    type Target = S;

    fn deref(&self) -> &S {
        &self.store
    }
}

#[async_trait]
impl<S: PersonRepository, G: Send + Sync> PersonRepository for Guarded<S, G> {
    async fn insert(&self, write: NewPersonWrite) -> Result<Person, InsertError> {
        self.store.insert(write).await
    }

    async fn get(&self, id: PersonId) -> Result<Option<Person>, StoreError> {
        self.store.get(id).await
    }

    async fn update(&self, write: PersonWrite) -> Result<(), UpdateError> {
        self.store.update(write).await
    }

    async fn candidates(&self, keys: &[SearchKey], limit: u32) -> Result<Vec<Candidate>, StoreError> {
        self.store.candidates(keys, limit).await
    }

    async fn merge(&self, write: MergeWrite) -> Result<(), MergeWriteError> {
        self.store.merge(write).await
    }

    async fn find_by_reference(&self, reference: &CrossReference) -> Result<Option<PersonId>, StoreError> {
        self.store.find_by_reference(reference).await
    }

    async fn history(&self, id: PersonId) -> Result<Vec<HistoryEntry>, StoreError> {
        self.store.history(id).await
    }

    async fn events_after(&self, after: u64, limit: u32) -> Result<Vec<FeedEntry>, StoreError> {
        self.store.events_after(after, limit).await
    }

    async fn find_idempotent_create(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.store.find_idempotent_create(key).await
    }

    async fn restricted_among(&self, ids: &[PersonId]) -> Result<Vec<PersonId>, StoreError> {
        self.store.restricted_among(ids).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.store.ping().await
    }

    async fn close(&self) {
        self.store.close().await;
    }
}

#[async_trait]
impl<S: DocumentRepository, G: Send + Sync> DocumentRepository for Guarded<S, G> {
    async fn get_document(&self, person: PersonId, kind: &DocumentKind) -> Result<Option<StoredDocument>, StoreError> {
        self.store.get_document(person, kind).await
    }

    async fn list_documents(&self, person: PersonId) -> Result<Vec<StoredDocument>, StoreError> {
        self.store.list_documents(person).await
    }

    async fn write_document(&self, write: DocumentWrite) -> Result<(), DocumentWriteError> {
        self.store.write_document(write).await
    }
}

#[async_trait]
impl<S: AuditLog, G: Send + Sync> AuditLog for Guarded<S, G> {
    async fn append(&self, entry: AuditEntry) -> Result<(), StoreError> {
        self.store.append(entry).await
    }

    async fn entries_for_person(
        &self,
        person: PersonId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        self.store.entries_for_person(person, after, limit).await
    }
}

#[async_trait]
impl<S: ReportingRepository, G: Send + Sync> ReportingRepository for Guarded<S, G> {
    async fn report_persons(&self, query: &ReportQuery) -> Result<Vec<Person>, StoreError> {
        self.store.report_persons(query).await
    }

    async fn report_counts(
        &self,
        modified_since: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<ReportCounts, StoreError> {
        self.store.report_counts(modified_since).await
    }
}

#[async_trait]
impl<S: RelayRepository, G: Send + Sync> RelayRepository for Guarded<S, G> {
    async fn acquire_relay_lease(
        &self,
        relay: &str,
        holder: &str,
        now: chrono::DateTime<chrono::Utc>,
        ttl: chrono::TimeDelta,
    ) -> Result<Option<RelayLease>, StoreError> {
        self.store.acquire_relay_lease(relay, holder, now, ttl).await
    }

    async fn advance_relay(
        &self,
        relay: &str,
        holder: &str,
        position: u64,
        now: chrono::DateTime<chrono::Utc>,
        ttl: chrono::TimeDelta,
    ) -> Result<(), RelayError> {
        self.store.advance_relay(relay, holder, position, now, ttl).await
    }

    async fn release_relay_lease(&self, relay: &str, holder: &str) -> Result<(), StoreError> {
        self.store.release_relay_lease(relay, holder).await
    }

    async fn relay_state(&self, relay: &str) -> Result<Option<RelayLease>, StoreError> {
        self.store.relay_state(relay).await
    }
}

impl<S: QueryCatalogue, G: Send + Sync> QueryCatalogue for Guarded<S, G> {
    fn store_kind(&self) -> &'static str {
        self.store.store_kind()
    }

    fn statements(&self) -> &'static [NamedQuery] {
        self.store.statements()
    }
}

#[async_trait]
impl<S: ImportRepository, G: Send + Sync> ImportRepository for Guarded<S, G> {
    async fn import_persons(
        &self,
        batch: Vec<ImportWrite>,
        audit: AuditEntry,
    ) -> Result<Vec<ImportOutcome>, StoreError> {
        self.store.import_persons(batch, audit).await
    }

    async fn finish_import(&self) -> Result<u64, StoreError> {
        self.store.finish_import().await
    }
}
