//! Query visibility against a real database: every contract case runs on a store (a fresh database file each)
//! opened with a [`QueryRecorder`] whose observer keeps every execution, and the executions must agree with the
//! store's catalogue: every executed statement is catalogued, every catalogued statement runs, and every
//! statement that returns or changes rows reports how many.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

use person_core::ports::{DocumentRepository, PersonRepository, QueryCatalogue};
use person_core::storage::{QueryExecution, QueryObserver, QueryRecorder};
use person_core::testkit::contract;
use person_core::testkit::fixtures::{create_write, equality_write, full_person, person_id};
use person_sqlite::queries::CATALOGUE;
use person_sqlite::{SqliteOptions, SqliteStore};
use tempfile::TempDir;

/// Keeps every execution reported to it.
#[derive(Default)]
struct Recording(Mutex<Vec<QueryExecution>>);

impl QueryObserver for Recording {
    fn executed(&self, execution: QueryExecution) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push(execution);
    }
}

impl Recording {
    fn executions(&self) -> Vec<QueryExecution> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// A store on a new database file in its own temporary directory, reporting to `recorder`.
#[expect(clippy::expect_used, reason = "a test helper fails the test loudly, with a message")]
async fn open(recorder: &QueryRecorder) -> (SqliteStore, TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("person.db").display());
    let options = SqliteOptions { queries: recorder.clone(), ..SqliteOptions::default() };
    (SqliteStore::open(&url, options).await.expect("store opens"), dir)
}

/// Runs every contract case, each on a fresh store reporting to `recorder`; a failing case fails the test,
/// named.
async fn run_every_contract_case(recorder: &QueryRecorder) {
    for (name, case) in contract::cases() {
        let (store, dir) = open(recorder).await;
        let outcome = tokio::spawn(case(Arc::new(store.clone()))).await;
        store.close().await;
        drop(dir);
        assert!(outcome.is_ok(), "contract case {name} failed (see its panic above)");
    }
}

/// The statements only the search-key backfill runs (after an upgrade, or when keys are recomputed): no contract
/// case stores persons without keys, so they are run here on a person with equality data.
#[expect(clippy::expect_used, reason = "a test helper fails the test loudly, with a message")]
async fn recompute_search_keys(recorder: &QueryRecorder) {
    let (store, dir) = open(recorder).await;
    let person = store.insert(create_write(full_person(person_id()), None)).await.expect("insert succeeds");
    store.write_document(equality_write(person.id, "QQ123456C", &["ni:QQ123456C"])).await.expect("equality stored");
    assert_eq!(store.recompute_search_keys().await.expect("recompute succeeds"), 1);
    store.close().await;
    drop(dir);
}

/// The statement only `person-api backup` runs.
#[expect(clippy::expect_used, reason = "a test helper fails the test loudly, with a message")]
async fn back_up(recorder: &QueryRecorder) {
    let (store, dir) = open(recorder).await;
    store.insert(create_write(full_person(person_id()), None)).await.expect("insert succeeds");
    store.backup_to(&dir.path().join("backup.db")).await.expect("backup succeeds");
    store.close().await;
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_statement_run_by_the_contract_is_catalogued_and_every_catalogued_statement_runs() {
    let recording = Arc::new(Recording::default());
    let recorder = QueryRecorder::new(recording.clone());

    run_every_contract_case(&recorder).await;
    recompute_search_keys(&recorder).await;
    back_up(&recorder).await;

    let executions = recording.executions();
    let uncatalogued: BTreeSet<&str> =
        executions.iter().filter(|e| !CATALOGUE.contains(e.query)).map(|e| e.query.name).collect();
    assert!(uncatalogued.is_empty(), "executed but not catalogued: {uncatalogued:?}");

    let executed: BTreeSet<&str> = executions.iter().map(|e| e.query.name).collect();
    let never_run: Vec<&str> = CATALOGUE.iter().map(|q| q.name).filter(|name| !executed.contains(name)).collect();
    assert!(never_run.is_empty(), "catalogued but never executed: {never_run:?}");

    // Transaction control returns and changes no rows; every other statement reports what it fetched or changed.
    let uncounted: BTreeSet<&str> = executions
        .iter()
        .filter(|e| e.succeeded && e.rows.is_none() && !e.query.name.starts_with("transaction."))
        .map(|e| e.query.name)
        .collect();
    assert!(uncounted.is_empty(), "succeeded without a row count: {uncounted:?}");
    for name in ["person.get", "report.persons", "events.after", "relay.acquire"] {
        assert!(
            executions.iter().any(|e| e.query.name == name && e.rows.is_some_and(|rows| rows > 0)),
            "{name} returned rows at least once, and said so"
        );
    }
    assert!(executions.iter().any(|e| !e.succeeded), "refused writes are reported as failed executions too");
}

#[tokio::test]
async fn the_store_lists_its_catalogue_as_an_sqlite_store() {
    let (store, _dir) = open(&QueryRecorder::default()).await;
    assert_eq!(store.store_kind(), "sqlite");
    assert_eq!(store.statements(), CATALOGUE);
    store.close().await;
}
