//! The `person-core` store contract, run against PostgreSQL, each test on its own fresh schema of the database
//! named by `PERSON_TEST_POSTGRES_URL` (skipped with a message when it is not set).

use person_postgres::testing::fresh_test_url;
use person_postgres::{PostgresOptions, PostgresStore};

#[expect(clippy::expect_used, reason = "a test helper fails the test loudly, with a message")]
async fn fresh_store() -> Option<PostgresStore> {
    let url = fresh_test_url()?;
    Some(PostgresStore::connect(&url, PostgresOptions::default()).await.expect("store connects and migrates"))
}

person_core::store_contract_tests!(fresh_store);
