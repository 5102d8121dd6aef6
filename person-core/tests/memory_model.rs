//! Model-based test (`person_core::testkit::model`) against [`InMemoryStore`]: random operation sequences, checked
//! against the reference model after every step and by replaying the feed. `PERSON_MODEL_CASES` sets the number of
//! sequences (default 2,000).

use std::sync::Arc;

use person_core::InMemoryStore;
use person_core::testkit::model::{check, operations};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("PERSON_MODEL_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(2_000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_memory_store_agrees_with_the_model_after_every_operation(ops in operations(24)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let outcome = runtime.block_on(check(Arc::new(InMemoryStore::new()), &ops, 0));
        prop_assert!(outcome.is_ok(), "{}", outcome.err().unwrap_or_default());
    }
}
