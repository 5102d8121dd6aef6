//! Concurrency beyond the contract suite: writers racing with readers on a file store, creates racing on the
//! same id or idempotency key, document writes racing on one version, audit appends racing with changes, claims
//! of one cross-reference, and two store handles on one file (as two processes would be).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use person_core::audit::AuditAction;
use person_core::documents::{DocumentBody, DocumentKind};
use person_core::event::Actor;
use person_core::ports::{
    AuditLog, DocumentRepository, DocumentWriteError, InsertError, PersonRepository, RandomIds, Repositories,
    SystemClock, UpdateError,
};
use person_core::service::{CreateOptions, CreatePersonError};
use person_core::testkit::fixtures::{
    audit_entry, create_write, document_write, extended_body, full_person, keyed_create_write, keys, person_id,
    reference, references_write, rename_write,
};
use person_core::{Permission, Person, PersonId, PersonService, RequestContext, ServiceArea};
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

#[expect(clippy::expect_used, reason = "a test helper fails the test loudly, with a message")]
fn social_care() -> DocumentKind {
    DocumentKind::Extended(ServiceArea::parse("social-care").expect("valid area"))
}

/// Two store handles on one file (two processes), 20 writers each round, all expecting the same version of one
/// document: per round exactly one wins, the others conflict naming the winner's version, and only the winner
/// is stored and audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn document_writes_racing_on_one_version_across_two_handles_let_exactly_one_win() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let options = SqliteOptions { busy_timeout: Duration::from_secs(60), ..SqliteOptions::default() };
    let first = open(&dir, options.clone()).await;
    let second = open(&dir, options).await;
    let person = create(&first).await;

    let mut expected = None;
    for round in 0..3_u64 {
        let tasks = (0..20).map(|i| {
            let store = if i % 2 == 0 { first.clone() } else { second.clone() };
            let body = extended_body(&format!("round {round} writer {i}"));
            let write = document_write(person.id, social_care(), expected, Some((round, body.clone())));
            tokio::spawn(async move { (body, store.write_document(write).await) })
        });
        let results: Vec<(DocumentBody, Result<(), DocumentWriteError>)> =
            join_all(tasks).await.into_iter().map(|r| r.expect("task completes")).collect();
        let winners: Vec<&DocumentBody> = results.iter().filter(|(_, r)| r.is_ok()).map(|(body, _)| body).collect();
        let conflicts = results
            .iter()
            .filter(|(_, r)| matches!(r, Err(DocumentWriteError::VersionConflict { current: Some(v) }) if *v == round))
            .count();
        assert_eq!((winners.len(), conflicts), (1, 19), "round {round}: {results:?}");
        let stored = second.get_document(person.id, &social_care()).await.expect("read").expect("stored");
        assert_eq!((stored.version, &stored.body), (round, winners[0]), "the winner is what is stored");
        expected = Some(round);
    }
    let writes = first
        .entries_for_person(person.id, 0, 1000)
        .await
        .expect("audit reads")
        .into_iter()
        .filter(|r| r.entry.action == AuditAction::ExtendedWrite)
        .count();
    assert_eq!(writes, 3, "only the winning writes are audited");
}

/// Audit appends racing with person and document writes on two handles: every entry is kept once, positions
/// are unique, and each person's access log is in position order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_appends_racing_with_changes_are_all_kept_in_position_order() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let options = SqliteOptions { busy_timeout: Duration::from_secs(60), ..SqliteOptions::default() };
    let first = open(&dir, options.clone()).await;
    let second = open(&dir, options).await;
    let person = create(&first).await;

    let appends = (0..40).map(|i| {
        let store = if i % 2 == 0 { first.clone() } else { second.clone() };
        let entry = audit_entry(AuditAction::PersonRead, vec![person.id]);
        let id = entry.id;
        tokio::spawn(async move {
            store.append(entry).await.expect("append succeeds");
            id
        })
    });
    let changes = {
        let store = second.clone();
        let person = person.clone();
        tokio::spawn(async move {
            store.update(rename_write(&person, "Changed")).await.expect("update succeeds");
            let write = document_write(person.id, social_care(), None, Some((0, extended_body("x"))));
            store.write_document(write).await.expect("document write succeeds");
        })
    };
    let appended: HashSet<_> = join_all(appends).await.into_iter().map(|r| r.expect("append completes")).collect();
    changes.await.expect("changes complete");

    let log = first.entries_for_person(person.id, 0, 1000).await.expect("audit reads");
    assert_eq!(log.len(), 43, "create, update, document write and 40 reads");
    assert!(log.windows(2).all(|w| w[0].position < w[1].position), "positions increase");
    let reads: HashSet<_> =
        log.iter().filter(|r| r.entry.action == AuditAction::PersonRead).map(|r| r.entry.id).collect();
    assert_eq!(reads, appended, "every appended entry is kept exactly once");
    let positions: Vec<u64> = log.iter().map(|r| r.position).collect();
    assert_eq!(positions, (1..=43).collect::<Vec<u64>>(), "one gap-free sequence across both handles");
}

/// Creates of the same person racing on two handles (as two processes would): the dedup key is checked under
/// the write lock, so exactly one is stored and every other is `DuplicatePerson` naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicate_creates_racing_on_two_handles_store_exactly_one() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let options = SqliteOptions { busy_timeout: Duration::from_secs(60), ..SqliteOptions::default() };
    let first = open(&dir, options.clone()).await;
    let second = open(&dir, options).await;

    let tasks = (0..20).map(|i| {
        let store = if i % 2 == 0 { first.clone() } else { second.clone() };
        let write = keyed_create_write(full_person(person_id()), &["race:key"], Some("zoe|oneill|1990-05-17"));
        tokio::spawn(async move { store.insert(write).await })
    });
    let results: Vec<_> = join_all(tasks).await.into_iter().map(|r| r.expect("task completes")).collect();

    let winners: Vec<&Person> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    let winner = winners[0].id;
    let duplicates = results
        .iter()
        .filter(|r| matches!(r, Err(InsertError::DuplicatePerson { existing }) if *existing == winner))
        .count();
    assert_eq!(duplicates, 19, "{results:?}");
    let found = second.candidates(&keys(&["race:key"]), 10).await.expect("candidates");
    assert_eq!(found.iter().map(|c| c.person.id).collect::<Vec<_>>(), vec![winner]);
}

/// The whole duplicate check through the service, ten creates of the same new person spread over two services
/// on two handles of one file: exactly one is created, nine are refused as duplicates of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_service_creates_of_the_same_person_on_two_handles_create_exactly_one() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let options = SqliteOptions { busy_timeout: Duration::from_secs(60), ..SqliteOptions::default() };
    let services: Vec<PersonService> = [open(&dir, options.clone()).await, open(&dir, options).await]
        .into_iter()
        .map(|store| PersonService::new(Repositories::from_store(store), Arc::new(SystemClock), Arc::new(RandomIds)))
        .collect();
    let actor = Actor { subject: "officer".to_owned(), name: "Officer".to_owned(), email: "o@example.org".to_owned() };
    let ctx = RequestContext::new(actor, [Permission::PersonsWrite].into_iter().collect(), "corr-race");
    let body = serde_json::json!({
        "title": "Ms", "firstName": "Zoë", "surname": "O'Neill", "dateOfBirth": "1990-05-17",
        "personTypes": ["Tenant"], "reason": "New tenancy"
    })
    .to_string();

    let tasks = (0..10).map(|i| {
        let service = services[i % 2].clone();
        let (ctx, body) = (ctx.clone(), body.clone());
        tokio::spawn(async move { service.create(&ctx, body.as_bytes(), CreateOptions::default()).await })
    });
    let results: Vec<_> = join_all(tasks).await.into_iter().map(|r| r.expect("task completes")).collect();

    let created: Vec<PersonId> = results.iter().filter_map(|r| r.as_ref().ok()).map(|c| c.person.id).collect();
    assert_eq!(created.len(), 1, "{results:?}");
    for result in &results {
        match result {
            Ok(_) => {}
            Err(CreatePersonError::Duplicate { candidates }) => {
                assert_eq!(candidates.iter().map(|c| c.id).collect::<Vec<_>>(), created);
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
}

/// Persons claiming one cross-reference through two handles (as two processes would): the claims are written
/// under the write lock, so exactly one wins and every other is `ReferenceTaken` naming the winner.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reference_claims_racing_on_two_handles_let_exactly_one_win() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let options = SqliteOptions { busy_timeout: Duration::from_secs(60), ..SqliteOptions::default() };
    let handles = [open(&dir, options.clone()).await, open(&dir, options).await];
    let mut claimants = Vec::new();
    for _ in 0..20 {
        claimants.push(create(&handles[0]).await);
    }
    let wanted = reference("housing-register", "HR-contested");

    let tasks = claimants.iter().enumerate().map(|(i, person)| {
        let store = handles[i % 2].clone();
        let write = references_write(person, std::slice::from_ref(&wanted));
        let id = person.id;
        tokio::spawn(async move { (id, store.update(write).await) })
    });
    let results: Vec<_> = join_all(tasks).await.into_iter().map(|r| r.expect("task completes")).collect();

    let winners: Vec<PersonId> = results.iter().filter(|(_, r)| r.is_ok()).map(|(id, _)| *id).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    let refused = results
        .iter()
        .filter(|(_, r)| matches!(r, Err(UpdateError::ReferenceTaken { owner, .. }) if *owner == winners[0]))
        .count();
    assert_eq!(refused, 19, "{results:?}");
    for handle in &handles {
        assert_eq!(handle.find_by_reference(&wanted).await.expect("look-up"), Some(winners[0]));
    }
}
