//! Model-based test (`person_core::testkit::model`) against a DynamoDB-compatible server: random operation
//! sequences, one after the other, 50 to a new table (skipped unless `PERSON_TEST_DYNAMODB_ENDPOINT` is set), checked
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

/// Sequences run on one table before the next gets a new one: moto answers queries by scanning the table, so a
/// table holding every sequence's persons would make each request slower than the last.
const SEQUENCES_PER_TABLE: u32 = 50;

/// The table in use (its guard deletes it when replaced), its store, the feed position after the last sequence
/// and how many sequences it has served.
struct Table {
    _guard: TestStore,
    store: Store,
    feed: u64,
    sequences: u32,
}

/// The runtime of this run and the table in use; `None` without an endpoint.
fn shared() -> Option<&'static (tokio::runtime::Runtime, Mutex<Option<Table>>)> {
    static SHARED: OnceLock<Option<(tokio::runtime::Runtime, Mutex<Option<Table>>)>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            std::env::var_os("PERSON_TEST_DYNAMODB_ENDPOINT")?;
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            Some((runtime, Mutex::new(None)))
        })
        .as_ref()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn dynamodb_agrees_with_the_model_after_every_operation(ops in operations(16)) {
        let Some((runtime, table)) = shared() else { return Ok(()) };
        let mut table = table.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if table.as_ref().is_none_or(|t| t.sequences >= SEQUENCES_PER_TABLE) {
            let guard = runtime.block_on(fresh_store()).expect("a table on the test server");
            let store: Store = Arc::new(guard.store.clone());
            *table = Some(Table { _guard: guard, store, feed: 0, sequences: 0 });
        }
        let Some(table) = table.as_mut() else { return Ok(()) };
        match runtime.block_on(check(table.store.clone(), &ops, table.feed)) {
            Ok(end) => {
                table.feed = end;
                table.sequences += 1;
            }
            Err(divergence) => prop_assert!(false, "{}", divergence),
        }
    }
}
