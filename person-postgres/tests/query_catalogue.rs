//! Query visibility (SPEC §10): the whole contract suite runs against stores whose [`QueryRecorder`] records every
//! execution, and the record is checked against the catalogue: every executed name is listed, every listed
//! statement ran, and every execution that returned or changed rows says how many. Each case gets a fresh schema
//! of the database named by `PERSON_TEST_POSTGRES_URL` (skipped with a message when it is not set).

#![expect(clippy::expect_used, reason = "test code: a failed expectation is a failed test, with a message")]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use futures::{StreamExt as _, stream};
use person_core::ports::QueryCatalogue;
use person_core::storage::{QueryExecution, QueryObserver, QueryRecorder};
use person_core::testkit::contract::cases;
use person_postgres::testing::fresh_test_url;
use person_postgres::{PostgresOptions, PostgresStore, queries};

/// Statements whose driver call reports no row count: transaction control and schema set-up.
const UNCOUNTED: &[&str] =
    &["transaction.begin", "transaction.commit", "transaction.rollback", "schema.create", "schema.migrate"];

/// Keeps every execution it is told about.
#[derive(Default)]
struct Recording(Mutex<Vec<QueryExecution>>);

impl QueryObserver for Recording {
    fn executed(&self, execution: QueryExecution) {
        self.0.lock().expect("the recording is never poisoned").push(execution);
    }
}

impl Recording {
    fn executions(&self) -> Vec<QueryExecution> {
        self.0.lock().expect("the recording is never poisoned").clone()
    }
}

async fn recorded_store(url: &str, recording: &Arc<Recording>) -> PostgresStore {
    // Few connections per store: four cases run at a time, on a server other tests share.
    let options =
        PostgresOptions { max_connections: 4, queries: QueryRecorder::new(recording.clone()), ..Default::default() };
    PostgresStore::connect(url, options).await.expect("store connects and migrates")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_statement_the_contract_suite_runs_is_catalogued_counted_and_every_catalogued_statement_runs() {
    if fresh_test_url().is_none() {
        return;
    }
    let recording = Arc::new(Recording::default());
    let finished: Vec<_> = stream::iter(cases())
        .map(|(name, case)| {
            let recording = recording.clone();
            let run = tokio::spawn(async move {
                let url = fresh_test_url().expect("the test database is configured");
                let store = recorded_store(&url, &recording).await;
                let catalogue = (store.store_kind(), store.statements());
                case(Arc::new(store.clone())).await;
                store.close().await;
                catalogue
            });
            async move { (name, run.await) }
        })
        .buffer_unordered(4)
        .collect()
        .await;
    let mut catalogue = None;
    for (name, outcome) in finished {
        match outcome {
            Ok(listed) => catalogue = Some(listed),
            Err(error) => panic!("contract case {name} failed: {error}"),
        }
    }
    let (kind, statements) = catalogue.expect("at least one contract case ran");
    assert_eq!(kind, "postgres");
    assert_eq!(statements, queries::CATALOGUE);

    let executions = recording.executions();
    let listed: BTreeSet<&str> = statements.iter().map(|q| q.name).collect();
    let mut runs: BTreeMap<&str, usize> = BTreeMap::new();
    for execution in &executions {
        let name = execution.query.name;
        assert!(listed.contains(name), "{name} ran but is not in the catalogue");
        assert!(statements.contains(execution.query), "{name} ran with a text other than its catalogue entry's");
        *runs.entry(name).or_default() += 1;
        if execution.succeeded && !UNCOUNTED.contains(&name) {
            assert!(execution.rows.is_some(), "{name} succeeded without a row count");
        }
        if !execution.succeeded {
            assert_eq!(execution.rows, None, "{name} failed yet reported rows");
        }
    }
    let never: Vec<&str> = listed.iter().copied().filter(|name| !runs.contains_key(name)).collect();
    assert!(never.is_empty(), "catalogued but never run by the contract suite: {never:?}");
    for read in ["person.get", "person.report_page", "person.report_counts", "relay.acquire", "events.after"] {
        let returned_rows = executions.iter().any(|e| e.query.name == read && e.rows.is_some_and(|rows| rows > 0));
        assert!(returned_rows, "{read} never reported the rows it returned");
    }
}
