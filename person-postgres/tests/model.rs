//! Model-based test (`person_core::testkit::model`) against PostgreSQL: random operation sequences, one after the
//! other on one fresh schema of the database named by `PERSON_TEST_POSTGRES_URL` (skipped with a message when it is
//! not set; a schema per sequence would spend most of the run migrating), checked against the reference model after
//! every step and by replaying the feed. `PERSON_MODEL_CASES` sets the number of sequences (default 1,000).

use std::sync::{Arc, Mutex, OnceLock};

use person_core::testkit::contract::Store;
use person_core::testkit::model::{check, operations};
use person_postgres::testing::fresh_test_url;
use person_postgres::{PostgresOptions, PostgresStore};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("PERSON_MODEL_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(1_000)
}

/// The runtime, the store shared by the sequences and the feed position after the last one.
type Shared = (tokio::runtime::Runtime, Store, Mutex<u64>);

/// The [`Shared`] state of this run; `None` without a test database.
fn shared() -> Option<&'static Shared> {
    static SHARED: OnceLock<Option<Shared>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            let url = fresh_test_url()?;
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            let options = PostgresOptions { max_connections: 2, ..PostgresOptions::default() };
            let store = runtime.block_on(PostgresStore::connect(&url, options)).ok()?;
            Some((runtime, Arc::new(store) as Store, Mutex::new(0)))
        })
        .as_ref()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn postgresql_agrees_with_the_model_after_every_operation(ops in operations(24)) {
        let Some((runtime, store, feed)) = shared() else { return Ok(()) };
        let mut feed = feed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let outcome = runtime.block_on(check(store.clone(), &ops, *feed));
        match outcome {
            Ok(end) => *feed = end,
            Err(divergence) => prop_assert!(false, "{}", divergence),
        }
    }
}
