//! The store contract: one async function per promise of [`PersonRepository`], run by
//! [`crate::store_contract_tests!`] against every store. Each panics (fails the test) when the store breaks it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::future::join_all;

use crate::access::ServiceArea;
use crate::audit::AuditAction;
use crate::documents::{DocumentKind, StoredDocument};
use crate::person::{Person, PersonStatus};
use crate::ports::{DocumentWriteError, InsertError, UpdateError};
use crate::testkit::fixtures::{
    audit_entry, create_write, document_write, equality_body, extended_body, full_person, person_id, rename_write,
    restriction_write, status_write,
};

/// A shared store under test.
pub type Store = Arc<dyn crate::ports::Store>;

async fn create(store: &Store) -> Person {
    store.insert(create_write(full_person(person_id()), None)).await.expect("insert succeeds")
}

async fn all_events(store: &Store) -> Vec<crate::event::FeedEntry> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = store.events_after(after, 100).await.expect("events_after succeeds");
        let Some(last) = page.last() else { return out };
        after = last.position;
        out.extend(page);
    }
}

/// `insert` allocates a positive `personRef`, and `get` returns exactly what was stored.
pub async fn insert_assigns_a_person_ref_and_get_returns_the_person_exactly(store: Store) {
    let person = full_person(person_id());
    let stored = store.insert(create_write(person.clone(), None)).await.expect("insert succeeds");
    assert!(stored.person_ref.0 > 0, "personRef must be positive");
    let mut expected = person;
    expected.person_ref = stored.person_ref;
    assert_eq!(stored, expected);
    let read = store.get(stored.id).await.expect("get succeeds").expect("person exists");
    assert_eq!(read, expected, "get must return the person exactly as stored");
    let events = all_events(&store).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event.entity_id, stored.id);
    assert_eq!(events[0].event.event_data.new_data["personRef"], serde_json::json!(stored.person_ref.0));
}

/// Sequential creates get strictly increasing `personRef`s.
pub async fn person_refs_increase_with_each_create(store: Store) {
    let mut last = 0;
    for _ in 0..5 {
        let person = create(&store).await;
        assert!(person.person_ref.0 > last, "personRef must increase");
        last = person.person_ref.0;
    }
}

/// 50 concurrent creates get 50 distinct `personRef`s and all 50 are stored.
pub async fn concurrent_inserts_get_distinct_person_refs(store: Store) {
    let tasks = (0..50).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { create(&store).await })
    });
    let persons: Vec<Person> = join_all(tasks).await.into_iter().map(|r| r.expect("task completes")).collect();
    let refs: HashSet<i64> = persons.iter().map(|p| p.person_ref.0).collect();
    assert_eq!(refs.len(), 50, "every concurrent create must get its own personRef");
    for person in &persons {
        let read = store.get(person.id).await.expect("get succeeds").expect("person exists");
        assert_eq!(read.person_ref, person.person_ref);
    }
    assert_eq!(all_events(&store).await.len(), 50);
}

/// A second create with the same id is `DuplicateId` and leaves no trace.
pub async fn insert_with_an_existing_id_is_refused_and_writes_nothing(store: Store) {
    let first = create(&store).await;
    let mut again = full_person(first.id);
    again.reason = "second attempt".to_owned();
    let result = store.insert(create_write(again, Some("dup-id-key"))).await;
    assert!(matches!(result, Err(InsertError::DuplicateId)), "expected DuplicateId, got {result:?}");
    let read = store.get(first.id).await.expect("get succeeds").expect("person exists");
    assert_eq!(read, first, "the existing person must be untouched");
    assert_eq!(all_events(&store).await.len(), 1, "no event for a refused create");
    assert_eq!(store.history(first.id).await.expect("history succeeds").len(), 1);
    assert!(store.find_idempotent_create("dup-id-key").await.expect("lookup succeeds").is_none());
}

/// A create reusing a stored idempotency key is `IdempotencyKeyTaken` and leaves no trace.
pub async fn insert_with_a_taken_idempotency_key_is_refused_and_writes_nothing(store: Store) {
    let first = store.insert(create_write(full_person(person_id()), Some("key-1"))).await.expect("insert succeeds");
    let other = full_person(person_id());
    let result = store.insert(create_write(other.clone(), Some("key-1"))).await;
    assert!(matches!(result, Err(InsertError::IdempotencyKeyTaken)), "expected IdempotencyKeyTaken, got {result:?}");
    assert!(store.get(other.id).await.expect("get succeeds").is_none(), "refused create must not be stored");
    assert_eq!(all_events(&store).await.len(), 1);
    let record = store.find_idempotent_create("key-1").await.expect("lookup succeeds").expect("record exists");
    assert_eq!(record.person, first);
}

/// The idempotency record is stored with the create and carries the person as created.
pub async fn idempotency_record_is_stored_with_the_create(store: Store) {
    let stored = store.insert(create_write(full_person(person_id()), Some("key-2"))).await.expect("insert succeeds");
    let record = store.find_idempotent_create("key-2").await.expect("lookup succeeds").expect("record exists");
    assert_eq!(record.key, "key-2");
    assert_eq!(record.fingerprint, "fp-key-2");
    assert_eq!(record.person, stored);
    assert!(store.find_idempotent_create("other").await.expect("lookup succeeds").is_none());
}

/// `get` of an id never stored is `None`.
pub async fn get_of_an_unknown_id_is_none(store: Store) {
    assert!(store.get(person_id()).await.expect("get succeeds").is_none());
}

/// An update with the stored version applies, with its event and history entry.
pub async fn update_with_the_expected_version_replaces_the_person(store: Store) {
    let person = create(&store).await;
    let write = rename_write(&person, "Grace");
    let expected = write.person.clone();
    store.update(write).await.expect("update succeeds");
    let read = store.get(person.id).await.expect("get succeeds").expect("person exists");
    assert_eq!(read, expected);
    assert_eq!(read.version_number, 1);
    let events = all_events(&store).await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].event.event_data.new_data["middleName"], "Grace");
    let history = store.history(person.id).await.expect("history succeeds");
    assert_eq!(history.iter().map(|h| h.version_number).collect::<Vec<_>>(), vec![0, 1]);
}

/// An update with a stale version is `VersionConflict { current }` and writes nothing.
pub async fn update_with_a_stale_version_is_a_conflict_and_writes_nothing(store: Store) {
    let person = create(&store).await;
    store.update(rename_write(&person, "First")).await.expect("first update succeeds");
    let stale = rename_write(&person, "Second");
    let result = store.update(stale).await;
    assert!(matches!(result, Err(UpdateError::VersionConflict { current: 1 })), "got {result:?}");
    let read = store.get(person.id).await.expect("get succeeds").expect("person exists");
    assert_eq!(read.middle_name.as_ref().map(|n| n.as_str()), Some("First"));
    assert_eq!(all_events(&store).await.len(), 2, "no event for a refused update");
    assert_eq!(store.history(person.id).await.expect("history succeeds").len(), 2);
}

/// An update of an unknown id is `NotFound`.
pub async fn update_of_an_unknown_id_is_not_found(store: Store) {
    let ghost = full_person(person_id());
    let result = store.update(rename_write(&ghost, "Nobody")).await;
    assert!(matches!(result, Err(UpdateError::NotFound)), "got {result:?}");
    assert!(all_events(&store).await.is_empty());
}

/// 20 concurrent updates expecting the same version: exactly one wins, 19 conflict, one event.
pub async fn concurrent_updates_with_the_same_version_let_exactly_one_win(store: Store) {
    let person = create(&store).await;
    let tasks = (0..20).map(|i| {
        let store = store.clone();
        let write = rename_write(&person, &format!("Writer {i}"));
        tokio::spawn(async move { store.update(write).await })
    });
    let results: Vec<_> = join_all(tasks).await.into_iter().map(|r| r.expect("task completes")).collect();
    let wins = results.iter().filter(|r| r.is_ok()).count();
    let conflicts = results.iter().filter(|r| matches!(r, Err(UpdateError::VersionConflict { current: 1 }))).count();
    assert_eq!((wins, conflicts), (1, 19), "results: {results:?}");
    let read = store.get(person.id).await.expect("get succeeds").expect("person exists");
    assert_eq!(read.version_number, 1);
    assert_eq!(all_events(&store).await.len(), 2);
}

/// Deleted and merged states are stored and read back.
pub async fn deleted_and_merged_states_round_trip(store: Store) {
    let survivor = create(&store).await;
    let deleted = create(&store).await;
    let merged = create(&store).await;
    store.update(status_write(&deleted, PersonStatus::Deleted)).await.expect("delete succeeds");
    store.update(status_write(&merged, PersonStatus::Merged { into: survivor.id })).await.expect("merge succeeds");
    let read_deleted = store.get(deleted.id).await.expect("get succeeds").expect("tombstone kept");
    assert_eq!(read_deleted.status, PersonStatus::Deleted);
    let read_merged = store.get(merged.id).await.expect("get succeeds").expect("tombstone kept");
    assert_eq!(read_merged.status, PersonStatus::Merged { into: survivor.id });
    let again = store.insert(create_write(full_person(deleted.id), None)).await;
    assert!(matches!(again, Err(InsertError::DuplicateId)), "a deleted id is still taken, got {again:?}");
}

/// Events come back in commit order with increasing positions, and `limit`/`after` page through them.
pub async fn events_are_returned_in_commit_order_and_paged(store: Store) {
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(create(&store).await.id);
    }
    let first_page = store.events_after(0, 2).await.expect("events_after succeeds");
    assert_eq!(first_page.len(), 2);
    let rest = store.events_after(first_page[1].position, 100).await.expect("events_after succeeds");
    assert_eq!(rest.len(), 3);
    let all: Vec<_> = first_page.into_iter().chain(rest).collect();
    let positions: Vec<u64> = all.iter().map(|e| e.position).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "positions must increase: {positions:?}");
    assert!(positions[0] >= 1);
    assert_eq!(all.iter().map(|e| e.event.entity_id).collect::<Vec<_>>(), ids);
    let beyond = store.events_after(positions[4], 100).await.expect("events_after succeeds");
    assert!(beyond.is_empty());
}

/// History lists every version, oldest first, with actor, reason and correlation id.
pub async fn history_lists_every_version_in_order(store: Store) {
    let person = create(&store).await;
    let write = rename_write(&person, "One");
    let second = write.person.clone();
    store.update(write).await.expect("update succeeds");
    store.update(rename_write(&second, "Two")).await.expect("update succeeds");
    let history = store.history(person.id).await.expect("history succeeds");
    assert_eq!(history.iter().map(|h| h.version_number).collect::<Vec<_>>(), vec![0, 1, 2]);
    assert_eq!(history[2].new_data["middleName"], "Two");
    assert_eq!(history[2].old_data["middleName"], "One");
    assert_eq!(history[1].reason.as_deref(), Some("reason for version 1"));
    assert_eq!(history[1].actor.subject, "contract-suite");
    assert!(store.history(person_id()).await.expect("history succeeds").is_empty());
}

/// While 8 writers create and update concurrently, a reader following the feed sees every committed event
/// exactly once, and each person's events in version order.
pub async fn feed_is_complete_and_ordered_under_concurrent_writers(store: Store) {
    let writers = (0..8).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut committed = Vec::new();
            for _ in 0..10 {
                let mut person = create(&store).await;
                for round in 0..3 {
                    let write = rename_write(&person, &format!("Round {round}"));
                    let event_id = write.event.id;
                    let next = write.person.clone();
                    store.update(write).await.expect("update succeeds");
                    committed.push(event_id);
                    person = next;
                }
            }
            committed
        })
    });
    let reader_store = store.clone();
    let (done_tx, mut done_rx) = tokio::sync::watch::channel(false);
    let reader = tokio::spawn(async move {
        let mut seen = Vec::new();
        let mut after = 0;
        loop {
            let finished = *done_rx.borrow_and_update();
            let page = reader_store.events_after(after, 50).await.expect("events_after succeeds");
            if let Some(last) = page.last() {
                after = last.position;
            }
            let empty = page.is_empty();
            seen.extend(page);
            if finished && empty {
                return seen;
            }
            if empty {
                // Wait for the writers to finish or a short tick, whichever comes first; never a fixed sleep.
                let _ = tokio::time::timeout(std::time::Duration::from_millis(5), done_rx.changed()).await;
            }
        }
    });
    let mut committed_updates = 0;
    for writer in join_all(writers).await {
        committed_updates += writer.expect("writer completes").len();
    }
    done_tx.send(true).expect("reader is listening");
    let seen = reader.await.expect("reader completes");
    let expected_total = 80 + committed_updates;
    let unique: HashSet<_> = seen.iter().map(|e| e.event.id).collect();
    assert_eq!(unique.len(), seen.len(), "no event may be seen twice");
    assert_eq!(seen.len(), expected_total, "every committed event must be seen");
    let mut versions: HashMap<_, Vec<u64>> = HashMap::new();
    for entry in &seen {
        let version = match entry.event.event_data.new_data.get("middleName") {
            Some(serde_json::Value::String(s)) if s.starts_with("Round ") => {
                s.trim_start_matches("Round ").parse::<u64>().expect("round number") + 1
            }
            _ => 0,
        };
        versions.entry(entry.event.entity_id).or_default().push(version);
    }
    for (person, order) in versions {
        assert_eq!(order, vec![0, 1, 2, 3], "events of {person} out of version order");
    }
}

/// `ping` succeeds on a working store.
pub async fn ping_succeeds_on_a_working_store(store: Store) {
    store.ping().await.expect("ping succeeds");
}

fn social_care() -> DocumentKind {
    DocumentKind::Extended(ServiceArea::parse("social-care").expect("valid area"))
}

async fn audit_actions(store: &Store, person: crate::person::PersonId) -> Vec<AuditAction> {
    store
        .entries_for_person(person, 0, 1000)
        .await
        .expect("audit read succeeds")
        .into_iter()
        .map(|r| r.entry.action)
        .collect()
}

/// Creates, updates and document writes record their audit entries atomically with the change; refused
/// writes record none.
pub async fn changes_write_their_audit_entries_atomically(store: Store) {
    let person = create(&store).await;
    store.update(rename_write(&person, "Audited")).await.expect("update succeeds");
    let _ = store.update(rename_write(&person, "Stale")).await;
    store
        .write_document(document_write(person.id, DocumentKind::Equality, None, Some((0, equality_body()))))
        .await
        .expect("document write succeeds");
    let _ =
        store.write_document(document_write(person.id, DocumentKind::Equality, None, Some((0, equality_body())))).await;
    assert_eq!(
        audit_actions(&store, person.id).await,
        vec![AuditAction::PersonCreate, AuditAction::PersonUpdate, AuditAction::EqualityWrite]
    );
}

/// Appended audit entries come back for each person they name, in order, paged by position.
pub async fn audit_entries_are_appended_and_listed_per_person_in_order(store: Store) {
    let (a, b) = (person_id(), person_id());
    let actions = [AuditAction::PersonRead, AuditAction::HistoryRead, AuditAction::EqualityRead];
    for action in actions {
        store.append(audit_entry(action, vec![a])).await.expect("append succeeds");
    }
    let shared = audit_entry(AuditAction::Search, vec![a, b]);
    store.append(shared.clone()).await.expect("append succeeds");
    let all = store.entries_for_person(a, 0, 100).await.expect("audit read succeeds");
    assert_eq!(all.len(), 4);
    assert!(all.windows(2).all(|w| w[0].position < w[1].position), "positions must increase");
    assert_eq!(all[3].entry, shared, "the entry comes back exactly as appended");
    let page = store.entries_for_person(a, all[1].position, 1).await.expect("audit read succeeds");
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].entry.action, AuditAction::EqualityRead);
    let for_b = store.entries_for_person(b, 0, 100).await.expect("audit read succeeds");
    assert_eq!(for_b.iter().map(|r| r.entry.id).collect::<Vec<_>>(), vec![shared.id]);
    assert!(store.entries_for_person(person_id(), 0, 100).await.expect("audit read succeeds").is_empty());
}

/// `restricted_among` names exactly the restricted persons among the ids asked about.
pub async fn restricted_among_names_only_restricted_persons(store: Store) {
    let open = create(&store).await;
    let restricted = create(&store).await;
    store.update(restriction_write(&restricted, true)).await.expect("restriction succeeds");
    let read = store.get(restricted.id).await.expect("get succeeds").expect("person exists");
    assert!(read.processing_restricted, "the restriction flag is stored");
    let found = store.restricted_among(&[open.id, restricted.id, person_id()]).await.expect("query succeeds");
    assert_eq!(found, vec![restricted.id]);
    assert!(store.restricted_among(&[]).await.expect("query succeeds").is_empty());
}

/// Equality and extended documents are stored, read back exactly, listed, replaced by version, and deleted.
pub async fn documents_round_trip_by_version_and_can_be_deleted(store: Store) {
    let person = create(&store).await;
    let equality = document_write(person.id, DocumentKind::Equality, None, Some((0, equality_body())));
    let expected_equality: StoredDocument = equality.new.clone().expect("has content");
    store.write_document(equality).await.expect("equality write succeeds");
    let care = document_write(person.id, social_care(), None, Some((0, extended_body("first"))));
    store.write_document(care).await.expect("extended write succeeds");
    let read = store.get_document(person.id, &DocumentKind::Equality).await.expect("read succeeds");
    assert_eq!(read, Some(expected_equality));
    let replace = document_write(person.id, social_care(), Some(0), Some((1, extended_body("second"))));
    let expected_care = replace.new.clone().expect("has content");
    store.write_document(replace).await.expect("replace succeeds");
    assert_eq!(store.get_document(person.id, &social_care()).await.expect("read succeeds"), Some(expected_care));
    let mut listed: Vec<String> =
        store.list_documents(person.id).await.expect("list succeeds").iter().map(|d| d.kind.key()).collect();
    listed.sort();
    assert_eq!(listed, vec!["equality".to_owned(), "extended:social-care".to_owned()]);
    store.write_document(document_write(person.id, social_care(), Some(1), None)).await.expect("delete succeeds");
    assert_eq!(store.get_document(person.id, &social_care()).await.expect("read succeeds"), None);
    assert_eq!(store.list_documents(person.id).await.expect("list succeeds").len(), 1);
    let other_area = DocumentKind::Extended(ServiceArea::parse("housing-needs").expect("valid area"));
    assert_eq!(store.get_document(person.id, &other_area).await.expect("read succeeds"), None);
}

/// A document write with the wrong expected version is a conflict naming the stored version, and writes
/// nothing.
pub async fn document_writes_with_a_wrong_version_conflict_and_write_nothing(store: Store) {
    let person = create(&store).await;
    let first = document_write(person.id, DocumentKind::Equality, None, Some((0, equality_body())));
    store.write_document(first).await.expect("first write succeeds");
    let again = store
        .write_document(document_write(person.id, DocumentKind::Equality, None, Some((0, extended_body("x")))))
        .await;
    assert!(matches!(again, Err(DocumentWriteError::VersionConflict { current: Some(0) })), "got {again:?}");
    let stale = store.write_document(document_write(person.id, DocumentKind::Equality, Some(5), None)).await;
    assert!(matches!(stale, Err(DocumentWriteError::VersionConflict { current: Some(0) })), "got {stale:?}");
    let missing =
        store.write_document(document_write(person.id, social_care(), Some(0), Some((1, extended_body("y"))))).await;
    assert!(matches!(missing, Err(DocumentWriteError::VersionConflict { current: None })), "got {missing:?}");
    let read = store.get_document(person.id, &DocumentKind::Equality).await.expect("read succeeds").expect("kept");
    assert_eq!(read.version, 0);
    assert_eq!(read.body, equality_body());
}

/// 20 concurrent document writes expecting the same version: exactly one wins.
pub async fn concurrent_document_writes_let_exactly_one_win(store: Store) {
    let person = create(&store).await;
    let tasks = (0..20).map(|i| {
        let store = store.clone();
        let write = document_write(person.id, social_care(), None, Some((0, extended_body(&format!("w{i}")))));
        tokio::spawn(async move { store.write_document(write).await })
    });
    let results: Vec<_> = join_all(tasks).await.into_iter().map(|r| r.expect("task completes")).collect();
    let wins = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "results: {results:?}");
    let writes =
        audit_actions(&store, person.id).await.into_iter().filter(|a| *a == AuditAction::ExtendedWrite).count();
    assert_eq!(writes, 1, "only the winning write is audited");
}
