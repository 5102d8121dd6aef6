//! The `person-core` store contract, run against a fresh SQLite database file per test.

use person_core::testkit::Guarded;
use person_sqlite::{SqliteOptions, SqliteStore};
use tempfile::TempDir;

/// A store on a database file in its own temporary directory, removed after the store is dropped.
#[expect(clippy::expect_used, reason = "a test helper fails the test loudly, with a message")]
async fn fresh_store() -> Option<Guarded<SqliteStore, TempDir>> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("person.db").display());
    let store = SqliteStore::open(&url, SqliteOptions::default()).await.expect("store opens");
    Some(Guarded::new(store, dir))
}

person_core::store_contract_tests!(fresh_store);
