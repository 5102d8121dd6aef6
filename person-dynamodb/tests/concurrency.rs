//! Concurrency beyond the contract suite, through the store and across several handles on one table (as several
//! server processes would hold it, sharing no client, lock or counter cache): compare-and-set of versions,
//! unique `personRef`s, race-safe duplicate prevention and cross-references, and a feed that stays complete and
//! ordered while many writers commit. Skipped unless `PERSON_TEST_DYNAMODB_ENDPOINT` is set.

#[expect(dead_code, reason = "each test crate uses a different part of the shared helpers")]
mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::fresh_store;
use futures::future::join_all;
use person_core::event::FeedEntry;
use person_core::ports::{InsertError, PersonRepository, UpdateError};
use person_core::testkit::fixtures::{
    create_write, full_person, keyed_create_write, keys, person_id, reference, references_write, rename_write,
};
use person_core::{Person, PersonId, PersonRef};
use person_dynamodb::DynamoDbStore;
use uuid::Uuid;

/// How long the feed test may wait for its writers (a safety net against a hang, not a timing assertion).
const DEADLINE: Duration = Duration::from_secs(600);

/// Four handles on one new table (the first owns the table and deletes it when dropped).
async fn handles() -> Option<(common::TestStore, Vec<Arc<DynamoDbStore>>)> {
    let owner = fresh_store().await?;
    let mut handles = vec![Arc::new(owner.store.clone())];
    for _ in 0..3 {
        handles.push(Arc::new(owner.another_handle().await));
    }
    Some((owner, handles))
}

#[expect(clippy::expect_used, reason = "a test helper fails the test loudly, with a message")]
async fn all_events(store: &DynamoDbStore) -> Vec<FeedEntry> {
    let mut out = Vec::new();
    loop {
        let after = out.last().map_or(0, |e: &FeedEntry| e.position);
        let page = store.events_after(after, 100).await.expect("events_after succeeds");
        if page.is_empty() {
            return out;
        }
        out.extend(page);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_updates_with_the_same_version_on_four_handles_let_exactly_one_win() {
    let Some((_owner, handles)) = handles().await else { return };
    let person = handles[0].insert(create_write(full_person(person_id()), None)).await.expect("insert succeeds");

    let tasks = (0..20).map(|i| {
        let store = handles[i % handles.len()].clone();
        let write = rename_write(&person, &format!("Writer {i}"));
        tokio::spawn(async move { store.update(write).await })
    });
    let results: Vec<_> = join_all(tasks).await.into_iter().map(|r| r.expect("task completes")).collect();

    let wins = results.iter().filter(|r| r.is_ok()).count();
    let conflicts = results.iter().filter(|r| matches!(r, Err(UpdateError::VersionConflict { current: 1 }))).count();
    assert_eq!((wins, conflicts), (1, 19), "results: {results:?}");
    let read = handles[1].get(person.id).await.expect("get succeeds").expect("person exists");
    assert_eq!(read.version_number, 1);
    assert_eq!(handles[2].history(person.id).await.expect("history").len(), 2, "one history entry per version");
    assert_eq!(all_events(&handles[3]).await.len(), 2, "one event for the create, one for the winning update");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_creates_on_four_handles_get_a_hundred_distinct_person_refs() {
    let Some((_owner, handles)) = handles().await else { return };
    let tasks = (0..100).map(|i| {
        let store = handles[i % handles.len()].clone();
        tokio::spawn(async move { store.insert(create_write(full_person(person_id()), None)).await })
    });
    let persons: Vec<Person> =
        join_all(tasks).await.into_iter().map(|r| r.expect("task completes").expect("insert succeeds")).collect();

    let refs: HashSet<i64> = persons.iter().map(|p| p.person_ref.0).collect();
    assert_eq!(refs, (1..=100).collect(), "100 creates take exactly the personRefs 1..=100, each once");
    for person in &persons {
        let read = handles[0].get(person.id).await.expect("get succeeds").expect("person exists");
        assert_eq!(read.person_ref, person.person_ref);
    }
    let positions: Vec<u64> = all_events(&handles[1]).await.iter().map(|e| e.position).collect();
    assert_eq!(positions, (1..=100).collect::<Vec<u64>>(), "one event per create, in one gap-free sequence");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_creates_of_the_same_person_on_four_handles_store_exactly_one() {
    let Some((_owner, handles)) = handles().await else { return };
    let tasks = (0..10).map(|i| {
        let store = handles[i % handles.len()].clone();
        let write = keyed_create_write(full_person(person_id()), &["race"], Some("ada|lovelace|1990-05-17"));
        tokio::spawn(async move { store.insert(write).await })
    });
    let results: Vec<_> = join_all(tasks).await.into_iter().map(|r| r.expect("task completes")).collect();

    let winners: Vec<PersonId> = results.iter().filter_map(|r| r.as_ref().ok()).map(|p| p.id).collect();
    assert_eq!(winners.len(), 1, "results: {results:?}");
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(InsertError::DuplicatePerson { existing }) if *existing == winners[0]))
        .count();
    assert_eq!(refused, 9, "results: {results:?}");
    let candidates = handles[2].candidates(&keys(&["race"]), 10).await.expect("candidates succeeds");
    assert_eq!(candidates.iter().map(|c| c.person.id).collect::<Vec<_>>(), winners);
    assert_eq!(all_events(&handles[3]).await.len(), 1, "refused creates write no event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twelve_concurrent_claims_of_one_reference_on_four_handles_let_exactly_one_win_and_name_it() {
    let Some((_owner, handles)) = handles().await else { return };
    let mut claimants = Vec::new();
    for i in 0..12 {
        let store = &handles[i % handles.len()];
        claimants.push(store.insert(create_write(full_person(person_id()), None)).await.expect("insert succeeds"));
    }
    let wanted = reference("tenure", "contested");
    let tasks = claimants.iter().enumerate().map(|(i, person)| {
        let store = handles[i % handles.len()].clone();
        let mut claimed = person.references.clone();
        claimed.push(wanted.clone());
        let write = references_write(person, &claimed);
        let id = person.id;
        tokio::spawn(async move { (id, store.update(write).await) })
    });
    let results: Vec<_> = join_all(tasks).await.into_iter().map(|r| r.expect("task completes")).collect();

    let winners: Vec<PersonId> = results.iter().filter(|(_, r)| r.is_ok()).map(|(id, _)| *id).collect();
    assert_eq!(winners.len(), 1, "results: {results:?}");
    let refused = results
        .iter()
        .filter(|(_, r)| {
            matches!(r, Err(UpdateError::ReferenceTaken { reference, owner }) if *reference == wanted && *owner == winners[0])
        })
        .count();
    assert_eq!(refused, 11, "every loser names the winner: {results:?}");
    assert_eq!(handles[1].find_by_reference(&wanted).await.expect("find succeeds"), Some(winners[0]));
    assert_eq!(all_events(&handles[2]).await.len(), 13, "twelve creates and the one winning claim");
}

/// One writer: a few persons, each created and then updated `rounds` times; returns every event it committed
/// with the person and version it belongs to.
async fn write_persons(store: Arc<DynamoDbStore>, persons: usize, rounds: u64) -> Vec<(Uuid, PersonId, u64)> {
    let mut committed = Vec::new();
    for _ in 0..persons {
        let write = create_write(full_person(person_id()), None);
        let event_id = write.clone().assign(PersonRef(0)).event.id;
        let mut person = match store.insert(write).await {
            Ok(person) => person,
            Err(error) => panic!("insert failed: {error:?}"),
        };
        committed.push((event_id, person.id, 0));
        for round in 1..=rounds {
            let write = rename_write(&person, &format!("v{round}"));
            let (event_id, next) = (write.event.id, write.person.clone());
            if let Err(error) = store.update(write).await {
                panic!("update failed: {error:?}");
            }
            committed.push((event_id, person.id, round));
            person = next;
        }
    }
    committed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_feed_reader_sees_every_event_of_a_thousand_concurrent_writes_once_and_in_version_order() {
    let Some((_owner, handles)) = handles().await else { return };
    // 16 writers on 4 handles: 16 × 10 persons × (1 create + 5 updates) = 960 writes.
    let writers: Vec<_> =
        (0..16).map(|i| tokio::spawn(write_persons(handles[i % handles.len()].clone(), 10, 5))).collect();

    let reader_store = handles[1].clone();
    let (done_tx, mut done_rx) = tokio::sync::watch::channel(false);
    let reader = tokio::spawn(async move {
        let started = Instant::now();
        let mut seen: Vec<FeedEntry> = Vec::new();
        loop {
            let finished = *done_rx.borrow_and_update();
            let after = seen.last().map_or(0, |e| e.position);
            let page = reader_store.events_after(after, 100).await.expect("events_after succeeds");
            let caught_up = page.len() < 100;
            seen.extend(page);
            if finished && caught_up {
                return seen;
            }
            assert!(started.elapsed() < DEADLINE, "the writers did not finish within {DEADLINE:?}");
            if caught_up {
                // Wait for the writers to finish or a short tick, whichever comes first; never a fixed sleep.
                let _ = tokio::time::timeout(Duration::from_millis(20), done_rx.changed()).await;
            }
        }
    });

    let mut committed = Vec::new();
    for writer in join_all(writers).await {
        committed.extend(writer.expect("writer completes"));
    }
    done_tx.send(true).expect("reader is listening");
    let seen = reader.await.expect("reader completes");

    assert_eq!(committed.len(), 960);
    let positions: Vec<u64> = seen.iter().map(|e| e.position).collect();
    assert!(positions == (1..=960).collect::<Vec<u64>>(), "positions increase without gaps or repeats");
    let seen_ids: HashSet<Uuid> = seen.iter().map(|e| e.event.id).collect();
    let committed_ids: HashSet<Uuid> = committed.iter().map(|(id, _, _)| *id).collect();
    assert_eq!(seen_ids.len(), seen.len(), "no event is seen twice");
    let missed = committed_ids.difference(&seen_ids).count();
    let unknown = seen_ids.difference(&committed_ids).count();
    assert_eq!((missed, unknown), (0, 0), "every committed event is seen (missed), and nothing else (unknown)");

    let version_of: HashMap<Uuid, u64> = committed.iter().map(|(id, _, version)| (*id, *version)).collect();
    let mut versions: HashMap<PersonId, Vec<u64>> = HashMap::new();
    for entry in &seen {
        versions.entry(entry.event.entity_id).or_default().push(version_of[&entry.event.id]);
    }
    assert_eq!(versions.len(), 160);
    for (person, order) in versions {
        assert_eq!(order, (0..=5).collect::<Vec<u64>>(), "events of {person} out of version order");
    }
    assert!(all_events(&handles[2]).await == seen, "a later reader sees the same feed");
}
