//! Concurrency beyond the contract suite: writers racing with readers on a file store, creates racing on the
//! same id or idempotency key, and two store handles on one file (as two processes would be).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use person_core::Person;
use person_core::ports::{InsertError, PersonRepository};
use person_core::testkit::fixtures::{create_write, full_person, person_id, rename_write};
use person_sqlite::{SqliteOptions, SqliteStore};
use tempfile::TempDir;

#[expect(clippy::expect_used, reason = "a test helper fails the test loudly, with a message")]
async fn open(dir: &TempDir, options: SqliteOptions) -> Arc<SqliteStore> {
    let url = format!("sqlite://{}", dir.path().join("person.db").display());
    Arc::new(SqliteStore::open(&url, options).await.expect("store opens"))
}

#[expect(clippy::expect_used, reason = "a test helper fails the test loudly, with a message")]
async fn create(store: &SqliteStore) -> Person {
    store.insert(create_write(full_person(person_id()), None)).await.expect("insert succeeds")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_queue_in_process_and_never_fail_busy_while_readers_run_in_parallel() {
    let dir = tempfile::tempdir().expect("temporary directory");
    // A zero busy timeout: any lock contention between this store's own connections would fail at once.
    let options = SqliteOptions { busy_timeout: Duration::ZERO, readers: 3, ..SqliteOptions::default() };
    let store = open(&dir, options).await;
    let mut existing = Vec::new();
    for _ in 0..20 {
        existing.push(create(&store).await);
    }

    let creates = (0..50).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { create(&store).await })
    });
    let updates = existing.iter().map(|person| {
        let store = store.clone();
        let write = rename_write(person, "Updated");
        tokio::spawn(async move { store.update(write).await.expect("update succeeds") })
    });
    let readers = (0..20).map(|i| {
        let store = store.clone();
        let id = existing[i % existing.len()].id;
        tokio::spawn(async move {
            for _ in 0..10 {
                store.get(id).await.expect("get succeeds").expect("person exists");
                store.history(id).await.expect("history succeeds");
                store.events_after(0, 20).await.expect("feed reads");
            }
        })
    });
    let readers = tokio::spawn(join_all(readers));
    let updates = tokio::spawn(join_all(updates));
    let created: Vec<Person> = join_all(creates).await.into_iter().map(|r| r.expect("create completes")).collect();
    updates.await.expect("updates complete").into_iter().for_each(|r| r.expect("update completes"));
    readers.await.expect("readers complete").into_iter().for_each(|r| r.expect("reader completes"));

    let refs: HashSet<i64> = existing.iter().chain(&created).map(|p| p.person_ref.0).collect();
    assert_eq!(refs, (1..=70).collect(), "70 creates take exactly the personRefs 1..=70");
    for person in &existing {
        let read = store.get(person.id).await.expect("get succeeds").expect("person exists");
        assert_eq!(read.version_number, 1);
    }
    let feed = store.events_after(0, 1000).await.expect("feed reads");
    let positions: Vec<u64> = feed.iter().map(|entry| entry.position).collect();
    assert_eq!(positions, (1..=90).collect::<Vec<u64>>(), "every write has one event, in one gap-free sequence");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn creates_racing_on_one_idempotency_key_store_exactly_one_person() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = open(&dir, SqliteOptions::default()).await;
    let tasks = (0..20).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.insert(create_write(full_person(person_id()), Some("caller:retry"))).await })
    });
    let results: Vec<_> = join_all(tasks).await.into_iter().map(|r| r.expect("task completes")).collect();

    let stored: Vec<&Person> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    let refused = results.iter().filter(|r| matches!(r, Err(InsertError::IdempotencyKeyTaken))).count();
    assert_eq!((stored.len(), refused), (1, 19), "results: {results:?}");
    let record = store.find_idempotent_create("caller:retry").await.expect("lookup").expect("record stored");
    assert_eq!(&record.person, stored[0]);
    assert_eq!(store.events_after(0, 100).await.expect("feed reads").len(), 1);
    assert_eq!(create(&store).await.person_ref.0, 2, "refused creates consume no personRef");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn creates_racing_on_one_id_store_exactly_one_person() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = open(&dir, SqliteOptions::default()).await;
    let id = person_id();
    let tasks = (0..20).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.insert(create_write(full_person(id), None)).await })
    });
    let results: Vec<_> = join_all(tasks).await.into_iter().map(|r| r.expect("task completes")).collect();

    let stored = results.iter().filter(|r| r.is_ok()).count();
    let refused = results.iter().filter(|r| matches!(r, Err(InsertError::DuplicateId))).count();
    assert_eq!((stored, refused), (1, 19), "results: {results:?}");
    assert_eq!(store.history(id).await.expect("history reads").len(), 1);
    assert_eq!(create(&store).await.person_ref.0, 2, "refused creates consume no personRef");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_on_one_file_like_two_processes_never_share_a_person_ref() {
    let dir = tempfile::tempdir().expect("temporary directory");
    // Across handles the write lock is SQLite's, so the busy timeout is what makes the other handle wait.
    let options = SqliteOptions { busy_timeout: Duration::from_secs(60), ..SqliteOptions::default() };
    let first = open(&dir, options.clone()).await;
    let second = open(&dir, options).await;
    let tasks = (0..50).map(|i| {
        let store = if i % 2 == 0 { first.clone() } else { second.clone() };
        tokio::spawn(async move { create(&store).await })
    });
    let persons: Vec<Person> = join_all(tasks).await.into_iter().map(|r| r.expect("task completes")).collect();

    let refs: HashSet<i64> = persons.iter().map(|p| p.person_ref.0).collect();
    assert_eq!(refs, (1..=50).collect());
    let feed = first.events_after(0, 100).await.expect("feed reads");
    assert_eq!(feed.len(), 50);
    assert!(feed.windows(2).all(|w| w[0].position < w[1].position));
}
