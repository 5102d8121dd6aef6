//! The `person-core` store contract, run against a fresh SQLite database file per test.

use async_trait::async_trait;
use person_core::event::{FeedEntry, HistoryEntry};
use person_core::ports::{
    IdempotencyRecord, InsertError, NewPersonWrite, PersonRepository, PersonWrite, StoreError, UpdateError,
};
use person_core::{Person, PersonId};
use person_sqlite::{SqliteOptions, SqliteStore};
use tempfile::TempDir;

/// A store on a database file in its own temporary directory, deleted when the store is dropped.
struct TempStore {
    // Declared first so it is dropped (connections released) before the directory is removed.
    store: SqliteStore,
    _dir: TempDir,
}

#[expect(clippy::expect_used, reason = "a test helper fails the test loudly, with a message")]
async fn fresh_store() -> Option<TempStore> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("person.db").display());
    let store = SqliteStore::open(&url, SqliteOptions::default()).await.expect("store opens");
    Some(TempStore { store, _dir: dir })
}

#[async_trait]
impl PersonRepository for TempStore {
    async fn insert(&self, write: NewPersonWrite) -> Result<Person, InsertError> {
        self.store.insert(write).await
    }

    async fn get(&self, id: PersonId) -> Result<Option<Person>, StoreError> {
        self.store.get(id).await
    }

    async fn update(&self, write: PersonWrite) -> Result<(), UpdateError> {
        self.store.update(write).await
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

    async fn ping(&self) -> Result<(), StoreError> {
        self.store.ping().await
    }
}

person_core::store_contract_tests!(fresh_store);
