//! Two real `person-api` processes on one DynamoDB table (as several instances of the service would be): the
//! multi-process tests of `common::multi_process`, each on a fresh table that both processes create at the same
//! time.
//!
//! Run when `PERSON_TEST_DYNAMODB_ENDPOINT` names a local DynamoDB-compatible server (`.ci/run` starts one);
//! otherwise each test prints a `skipped:` line and passes.

#[macro_use]
mod common;

use common::multi_process::SharedStore;

/// A fresh table. The local test server (moto) answers one request at a time, so a burst of a hundred creates —
/// each a handful of queries for its duplicate check and a transaction — queues for seconds behind it: the
/// processes get timeouts sized for that queue instead of for DynamoDB (3 s per attempt by default). For the same
/// reason the feed test writes 480 events here (16 writers × 6 persons × (1 create + 4 patches)) instead of
/// 2,000: moto serves some 40 requests a second under that load, so 2,000 writes take longer than the test's
/// deadline. The store's own concurrency test (`person-dynamodb/tests/concurrency.rs`) follows the feed during
/// 960 writes from four store handles.
fn fresh_store() -> Option<SharedStore> {
    Some(SharedStore {
        url: person_dynamodb::testing::fresh_test_url()?,
        env: vec![
            ("PERSON_API_DYNAMODB_ATTEMPT_TIMEOUT_SECS", "60".to_owned()),
            ("PERSON_API_DYNAMODB_OPERATION_TIMEOUT_SECS", "120".to_owned()),
            ("PERSON_API_REQUEST_TIMEOUT_SECS", "180".to_owned()),
        ],
        feed_persons_per_writer: 6,
    })
}

multi_process_tests!(fresh_store);
