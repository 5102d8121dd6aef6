//! The `person-core` store contract, run against a local DynamoDB-compatible server (moto, DynamoDB Local), each
//! test on a new table of its own. Skipped (with a `skipped: …` line) unless `PERSON_TEST_DYNAMODB_ENDPOINT` is
//! set.

#[expect(dead_code, reason = "each test crate uses a different part of the shared helpers")]
mod common;

use async_trait::async_trait;
use common::{TestStore, fresh_store};
use person_core::Person;
use person_core::PersonId;
use person_core::audit::AuditEntry;
use person_core::documents::{DocumentKind, DocumentWrite, StoredDocument};
use person_core::event::{FeedEntry, HistoryEntry};
use person_core::matching::SearchKey;
use person_core::ports::{
    AuditLog, AuditRecord, Candidate, DocumentRepository, DocumentWriteError, IdempotencyRecord, InsertError,
    MergeWrite, MergeWriteError, NewPersonWrite, PersonRepository, PersonWrite, StoreError, UpdateError,
};

#[async_trait]
impl PersonRepository for TestStore {
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
}

#[async_trait]
impl DocumentRepository for TestStore {
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
impl AuditLog for TestStore {
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

person_core::store_contract_tests!(fresh_store);
