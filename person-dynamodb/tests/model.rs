//! Model-based test (`person_core::testkit::model`) against a DynamoDB-compatible server: random operation
//! sequences, one after the other on one new table (skipped unless `PERSON_TEST_DYNAMODB_ENDPOINT` is set), checked
//! against the reference model after every step and by replaying the feed. `PERSON_MODEL_DYNAMODB_CASES` sets the
//! number of sequences (default 300: moto serves some 40 requests a second under load, see `person-server`'s process
//! tests, and every step reads back every person of the sequence).

#[expect(dead_code, reason = "each test crate uses a different part of the shared helpers")]
mod common;

use std::sync::{Arc, Mutex, OnceLock};

use common::{TestStore, fresh_store};
use person_core::testkit::contract::Store;
use person_core::testkit::model::{check, operations};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("PERSON_MODEL_DYNAMODB_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(300)
}

/// The runtime, the table (its guard: kept for the whole run), the store shared by the sequences and the feed
/// position after the last one.
type Shared = (tokio::runtime::Runtime, TestStore, Store, Mutex<u64>);

/// The [`Shared`] state of this run; `None` without an endpoint.
fn shared() -> Option<&'static Shared> {
    static SHARED: OnceLock<Option<Shared>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            let table = runtime.block_on(fresh_store())?;
            let store: Store = Arc::new(table.store.clone());
            Some((runtime, table, store, Mutex::new(0)))
        })
        .as_ref()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn dynamodb_agrees_with_the_model_after_every_operation(ops in operations(16)) {
        let Some((runtime, _table, store, feed)) = shared() else { return Ok(()) };
        let mut feed = feed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match runtime.block_on(check(store.clone(), &ops, *feed)) {
            Ok(end) => *feed = end,
            Err(divergence) => prop_assert!(false, "{}", divergence),
        }
    }
}
