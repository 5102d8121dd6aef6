//! Model-based test (`person_core::testkit::model`): random operation sequences on a fresh SQLite file each, checked
//! against the reference model after every step and by replaying the feed. `PERSON_MODEL_CASES` sets the number of
//! sequences (default 1,000).

use std::sync::Arc;

use person_core::testkit::model::{check, operations};
use person_sqlite::{SqliteOptions, SqliteStore};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("PERSON_MODEL_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(1_000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn sqlite_agrees_with_the_model_after_every_operation(ops in operations(24)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let outcome = runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", dir.path().join("person.db").display());
            let store = SqliteStore::open(&url, SqliteOptions::default()).await.unwrap();
            let outcome = check(Arc::new(store.clone()), &ops, 0).await;
            store.close().await;
            outcome
        });
        prop_assert!(outcome.is_ok(), "{}", outcome.err().unwrap_or_default());
    }
}
