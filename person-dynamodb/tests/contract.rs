//! The `person-core` store contract, run against a local DynamoDB-compatible server (moto, DynamoDB Local), each
//! test on a new table of its own. Skipped (with a `skipped: …` line) unless `PERSON_TEST_DYNAMODB_ENDPOINT` is
//! set.

#[expect(dead_code, reason = "each test crate uses a different part of the shared helpers")]
mod common;

use common::{TestStore, fresh_store};
use person_core::testkit::Guarded;
use person_dynamodb::DynamoDbStore;

/// A store on a new table, which the guard deletes after the test.
async fn contract_store() -> Option<Guarded<DynamoDbStore, TestStore>> {
    let table = fresh_store().await?;
    Some(Guarded::new(table.store.clone(), table))
}

person_core::store_contract_tests!(contract_store);
