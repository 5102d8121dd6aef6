//! The store contract: one async function per promise of [`PersonRepository`], run by
//! [`crate::store_contract_tests!`] against every store. Each panics (fails the test) when the store breaks it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::future::join_all;

use crate::access::ServiceArea;
use crate::audit::AuditAction;
use crate::documents::{DocumentKind, StoredDocument};
use crate::event::EventType;
use crate::person::{Person, PersonId, PersonStatus};
use crate::ports::{
    Candidate, DocumentWriteError, ImportOutcome, ImportWrite, InsertError, MergeWriteError, RelayError, ReportCounts,
    ReportQuery, UpdateError,
};
use crate::testkit::fixtures::{
    audit_entry, create_write, document_write, equality_body, equality_body_with_nino, equality_write, extended_body,
    full_person, instant, keyed_create_write, keys, merge_write, person_id, reference, references_write, rename_write,
    restriction_write, status_write, with_keys,
};

/// A shared store under test.
pub type Store = Arc<dyn crate::ports::Store>;

/// One contract case, callable on any store: it panics (fails) when the store breaks the promise it checks.
pub type Case = fn(Store) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

macro_rules! case_table {
    ($($case:ident),+ $(,)?) => {
        vec![$((stringify!($case), (|store| Box::pin($case(store))) as Case)),+]
    };
}

/// Every contract case with its name, in the order of [`crate::store_contract_tests!`].
#[must_use]
pub fn cases() -> Vec<(&'static str, Case)> {
    crate::contract_cases!([case_table])
}

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

// ---------------------------------------------------------------------------------------------------------------
// Search keys, duplicate prevention and merge

async fn create_keyed(store: &Store, search_keys: &[&str], dedup: Option<&str>) -> Person {
    store.insert(keyed_create_write(full_person(person_id()), search_keys, dedup)).await.expect("insert succeeds")
}

async fn candidates_for(store: &Store, search_keys: &[&str]) -> Vec<Candidate> {
    store.candidates(&keys(search_keys), 100).await.expect("candidates succeeds")
}

async fn candidate_ids(store: &Store, search_keys: &[&str]) -> Vec<PersonId> {
    candidates_for(store, search_keys).await.into_iter().map(|c| c.person.id).collect()
}

/// A create stores its keys with the person: `candidates` finds it by any one of them, exactly as stored, with
/// the number of keys matched; keys nobody holds find nothing.
pub async fn insert_stores_search_keys_and_candidates_find_the_person_by_any_of_them(store: Store) {
    let person = create_keyed(&store, &["sn:SM0|1990", "fn:JN|1990-05-17", "pc:E8 1DY"], Some("dedup-1")).await;
    for key in ["sn:SM0|1990", "fn:JN|1990-05-17", "pc:E8 1DY"] {
        let found = candidates_for(&store, &[key]).await;
        assert_eq!(found.len(), 1, "found by {key}");
        assert_eq!(found[0].person, person, "the candidate is the person exactly as stored");
        assert_eq!(found[0].matched_keys, 1);
        assert_eq!(found[0].nino, None, "no equality data, no NI number");
    }
    let both = candidates_for(&store, &["sn:SM0|1990", "pc:E8 1DY", "unrelated"]).await;
    assert_eq!(both.len(), 1);
    assert_eq!(both[0].matched_keys, 2);
    assert!(candidates_for(&store, &["unrelated", "sn:SM0"]).await.is_empty(), "keys match whole, not by prefix");
    assert!(store.candidates(&[], 10).await.expect("candidates succeeds").is_empty());
}

/// An update replaces the person's keys: the old ones no longer find it, the new ones do.
pub async fn update_replaces_the_person_keys(store: Store) {
    let person = create_keyed(&store, &["old:1", "shared"], None).await;
    let write = with_keys(rename_write(&person, "Renamed"), &["new:1", "shared"], None);
    store.update(write).await.expect("update succeeds");
    assert!(candidate_ids(&store, &["old:1"]).await.is_empty(), "an old key must not find the person");
    assert_eq!(candidate_ids(&store, &["new:1"]).await, vec![person.id]);
    let found = candidates_for(&store, &["shared", "new:1", "old:1"]).await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].matched_keys, 2);
    assert_eq!(found[0].person.version_number, 1, "the candidate is the person as updated");
    // A refused update leaves the keys as they were.
    let stale = with_keys(rename_write(&person, "Stale"), &["stale:1"], None);
    assert!(store.update(stale).await.is_err());
    assert!(candidate_ids(&store, &["stale:1"]).await.is_empty());
    assert_eq!(candidate_ids(&store, &["new:1"]).await, vec![person.id]);
}

/// Equality writes replace the equality keys (and only those): candidates carry the NI number, a key held
/// through both sources counts once, and deleting the NI number removes its key.
pub async fn equality_writes_replace_the_equality_keys_and_candidates_carry_the_nino(store: Store) {
    let person = create_keyed(&store, &["name:x"], None).await;
    store.write_document(equality_write(person.id, "AB123456C", &["ni:AB123456C", "name:x"])).await.expect("write");
    let found = candidates_for(&store, &["ni:AB123456C"]).await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].nino.as_deref(), Some("AB123456C"));
    assert_eq!(candidates_for(&store, &["name:x"]).await[0].matched_keys, 1, "a key counts once");
    assert_eq!(candidates_for(&store, &["name:x", "ni:AB123456C"]).await[0].matched_keys, 2);

    // A person update leaves the equality keys alone.
    store.update(with_keys(rename_write(&person, "Again"), &["name:y"], None)).await.expect("update succeeds");
    assert_eq!(candidate_ids(&store, &["ni:AB123456C"]).await, vec![person.id]);

    // A refused equality write changes no key.
    let mut refused = equality_write(person.id, "CE123456A", &["ni:CE123456A"]);
    refused.expected_version = Some(7);
    assert!(store.write_document(refused).await.is_err());
    assert!(candidate_ids(&store, &["ni:CE123456A"]).await.is_empty());

    let mut replace =
        document_write(person.id, DocumentKind::Equality, Some(0), Some((1, equality_body_with_nino("CE123456A"))));
    replace.search_keys = Some(keys(&["ni:CE123456A"]));
    store.write_document(replace).await.expect("replace succeeds");
    assert!(candidate_ids(&store, &["ni:AB123456C"]).await.is_empty(), "the old NI key is gone");
    let found = candidates_for(&store, &["ni:CE123456A"]).await;
    assert_eq!(found[0].nino.as_deref(), Some("CE123456A"));
    assert_eq!(candidate_ids(&store, &["name:y"]).await, vec![person.id], "person keys untouched");

    let mut delete = document_write(person.id, DocumentKind::Equality, Some(1), None);
    delete.search_keys = Some(Vec::new());
    store.write_document(delete).await.expect("delete succeeds");
    assert!(candidate_ids(&store, &["ni:CE123456A"]).await.is_empty());
    assert_eq!(candidates_for(&store, &["name:y"]).await[0].nino, None);
}

/// Candidates come ranked by the number of distinct keys matched, then by person id, the same on every store;
/// `limit` keeps the best.
pub async fn candidates_are_ranked_by_matched_keys_then_id_and_limited(store: Store) {
    let three = create_keyed(&store, &["k1", "k2", "k3"], None).await;
    let mut twos = [
        create_keyed(&store, &["k1", "k2"], None).await.id,
        create_keyed(&store, &["k2", "k3", "other"], None).await.id,
        create_keyed(&store, &["k1", "k3"], None).await.id,
    ];
    twos.sort();
    let one = create_keyed(&store, &["k3"], None).await;
    let _unrelated = create_keyed(&store, &["zz"], None).await;

    let query = keys(&["k1", "k2", "k3", "k1"]);
    let found = store.candidates(&query, 100).await.expect("candidates succeeds");
    let ranked: Vec<(PersonId, u32)> = found.iter().map(|c| (c.person.id, c.matched_keys)).collect();
    let mut expected = vec![(three.id, 3)];
    expected.extend(twos.iter().map(|id| (*id, 2)));
    expected.push((one.id, 1));
    assert_eq!(ranked, expected, "ranked by keys matched, then id; a repeated query key counts once");

    let top = store.candidates(&query, 2).await.expect("candidates succeeds");
    assert_eq!(top.iter().map(|c| c.person.id).collect::<Vec<_>>(), vec![three.id, twos[0]]);
    let again = store.candidates(&query, 100).await.expect("candidates succeeds");
    assert_eq!(again, found, "the same data gives the same answer");
}

/// Deleted, merged and restricted persons are never candidates; lifting a restriction brings the person back.
pub async fn candidates_leave_out_deleted_merged_and_restricted_persons(store: Store) {
    let live = create_keyed(&store, &["common"], None).await;
    let deleted = create_keyed(&store, &["common"], None).await;
    let merged = create_keyed(&store, &["common"], None).await;
    let restricted = create_keyed(&store, &["common"], None).await;
    store.write_document(equality_write(deleted.id, "AB123456C", &["common"])).await.expect("equality write");
    store.update(status_write(&deleted, PersonStatus::Deleted)).await.expect("delete succeeds");
    store.update(status_write(&merged, PersonStatus::Merged { into: live.id })).await.expect("merge succeeds");
    let write = with_keys(restriction_write(&restricted, true), &["common"], None);
    let restricted_v1 = write.person.clone();
    store.update(write).await.expect("restriction succeeds");

    assert_eq!(candidate_ids(&store, &["common"]).await, vec![live.id]);

    let lift = with_keys(restriction_write(&restricted_v1, false), &["common"], None);
    store.update(lift).await.expect("lifting succeeds");
    let mut expected = vec![live.id, restricted.id];
    expected.sort();
    assert_eq!(candidate_ids(&store, &["common"]).await, expected);
}

/// A create whose dedup key a live person holds is `DuplicatePerson` naming that person, and writes nothing;
/// the same person without a dedup key (an allowed duplicate) is stored.
pub async fn an_insert_with_a_taken_dedup_key_is_refused_and_writes_nothing(store: Store) {
    let first = create_keyed(&store, &["k"], Some("john|smith|1990-05-17")).await;
    let second = full_person(person_id());
    let write = keyed_create_write(second.clone(), &["k", "k-second"], Some("john|smith|1990-05-17"));
    let result = store.insert(write).await;
    assert!(matches!(result, Err(InsertError::DuplicatePerson { existing }) if existing == first.id), "got {result:?}");
    assert!(store.get(second.id).await.expect("get succeeds").is_none());
    assert_eq!(all_events(&store).await.len(), 1, "no event for a refused create");
    assert!(candidate_ids(&store, &["k-second"]).await.is_empty(), "no keys for a refused create");
    assert_eq!(audit_actions(&store, second.id).await, Vec::<AuditAction>::new());

    let allowed = store.insert(keyed_create_write(second.clone(), &["k"], None)).await.expect("allowed duplicate");
    assert_eq!(allowed.id, second.id);
    let third = store.insert(keyed_create_write(full_person(person_id()), &[], Some("another|person"))).await;
    assert!(third.is_ok(), "a free dedup key is accepted: {third:?}");
}

/// An update taking a dedup key another live person holds is `DuplicatePerson` and writes nothing; keeping
/// its own key is fine.
pub async fn an_update_with_a_taken_dedup_key_is_refused_and_writes_nothing(store: Store) {
    let holder = create_keyed(&store, &[], Some("taken")).await;
    let other = create_keyed(&store, &["mine"], Some("mine")).await;
    let result = store.update(with_keys(rename_write(&other, "Clash"), &["changed"], Some("taken"))).await;
    assert!(
        matches!(result, Err(UpdateError::DuplicatePerson { existing }) if existing == holder.id),
        "got {result:?}"
    );
    let read = store.get(other.id).await.expect("get succeeds").expect("person exists");
    assert_eq!(read, other, "the person is untouched");
    assert_eq!(candidate_ids(&store, &["mine"]).await, vec![other.id], "its keys are untouched");
    assert_eq!(store.history(other.id).await.expect("history succeeds").len(), 1);
    assert_eq!(all_events(&store).await.len(), 2);

    let write = with_keys(rename_write(&other, "Same key"), &["mine"], Some("mine"));
    let next = write.person.clone();
    store.update(write).await.expect("keeping its own dedup key succeeds");
    // A person that gives up its key frees it for another.
    store.update(with_keys(rename_write(&next, "No key"), &["mine"], None)).await.expect("update succeeds");
    let result = store.update(with_keys(rename_write(&holder, "Takes"), &[], Some("mine"))).await;
    assert!(result.is_ok(), "a freed dedup key can be taken: {result:?}");
}

/// The version check comes first: a stale update is a `VersionConflict` even when its dedup key is taken.
pub async fn a_version_conflict_is_reported_before_a_taken_dedup_key(store: Store) {
    let _holder = create_keyed(&store, &[], Some("taken")).await;
    let other = create_keyed(&store, &[], None).await;
    store.update(rename_write(&other, "Moved on")).await.expect("update succeeds");
    let result = store.update(with_keys(rename_write(&other, "Stale"), &[], Some("taken"))).await;
    assert!(matches!(result, Err(UpdateError::VersionConflict { current: 1 })), "got {result:?}");
}

/// Ten concurrent creates with the same dedup key: exactly one is stored, nine are `DuplicatePerson` naming it.
pub async fn concurrent_inserts_with_the_same_dedup_key_let_exactly_one_win(store: Store) {
    let tasks = (0..10).map(|_| {
        let store = store.clone();
        let write = keyed_create_write(full_person(person_id()), &["race"], Some("ada|lovelace|1990-05-17"));
        tokio::spawn(async move { store.insert(write).await })
    });
    let results: Vec<_> = join_all(tasks).await.into_iter().map(|r| r.expect("task completes")).collect();
    let winners: Vec<&Person> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "results: {results:?}");
    let winner = winners[0].id;
    let losers = results
        .iter()
        .filter(|r| matches!(r, Err(InsertError::DuplicatePerson { existing }) if *existing == winner))
        .count();
    assert_eq!(losers, 9, "results: {results:?}");
    assert_eq!(candidate_ids(&store, &["race"]).await, vec![winner]);
    assert_eq!(all_events(&store).await.len(), 1);
}

/// Deleting a person drops its keys (both sources) and frees its dedup key: the same person can be created
/// again.
pub async fn deleting_a_person_frees_its_dedup_key_and_drops_its_keys(store: Store) {
    let person = create_keyed(&store, &["gone"], Some("same")).await;
    store.write_document(equality_write(person.id, "AB123456C", &["ni:AB123456C"])).await.expect("equality write");
    // The service sends no keys for a tombstone; the store drops them whatever the write carries.
    let delete = with_keys(status_write(&person, PersonStatus::Deleted), &["gone"], Some("same"));
    store.update(delete).await.expect("delete succeeds");
    assert!(candidate_ids(&store, &["gone", "ni:AB123456C"]).await.is_empty());
    let again = store.insert(keyed_create_write(full_person(person_id()), &["gone"], Some("same"))).await;
    let again = again.expect("the dedup key of a deleted person is free");
    assert_eq!(candidate_ids(&store, &["gone", "ni:AB123456C"]).await, vec![again.id]);
}

/// A merge is one atomic write: both persons at their new versions, the duplicate a tombstone without keys, the
/// survivor with its new keys, the duplicate's documents moved, one `PersonMergedEvent`, a history entry for
/// each, the audit entry naming both.
pub async fn merge_is_one_atomic_write_of_both_persons_documents_event_histories_and_audit(store: Store) {
    let survivor = create_keyed(&store, &["survivor", "shared"], Some("survivor")).await;
    let duplicate = create_keyed(&store, &["duplicate", "shared"], Some("duplicate")).await;
    store.write_document(equality_write(duplicate.id, "AB123456C", &["ni:AB123456C"])).await.expect("equality");
    store
        .write_document(document_write(duplicate.id, social_care(), None, Some((0, extended_body("care")))))
        .await
        .expect("extended write");
    store
        .write_document(document_write(duplicate.id, social_care(), Some(0), Some((1, extended_body("care v1")))))
        .await
        .expect("extended replace");
    let events_before = all_events(&store).await.len();

    let mut write = merge_write(
        &survivor,
        &duplicate,
        &["survivor", "shared", "gained"],
        Some("survivor"),
        vec![
            (DocumentKind::Equality, 0, equality_body_with_nino("AB123456C")),
            (social_care(), 1, extended_body("care v1")),
        ],
    );
    write.survivor_equality_keys = Some(keys(&["ni:AB123456C"]));
    let (expected_survivor, expected_duplicate, event_id) =
        (write.survivor.clone(), write.duplicate.clone(), write.event.id);
    store.merge(write).await.expect("merge succeeds");

    let read = store.get(survivor.id).await.expect("get succeeds").expect("survivor exists");
    assert_eq!(read, expected_survivor);
    assert_eq!(read.tenures.len(), survivor.tenures.len() + duplicate.tenures.len(), "tenures moved");
    let gone = store.get(duplicate.id).await.expect("get succeeds").expect("tombstone kept");
    assert_eq!(gone, expected_duplicate);
    assert_eq!(gone.status, PersonStatus::Merged { into: survivor.id });

    assert_eq!(candidate_ids(&store, &["gained"]).await, vec![survivor.id]);
    assert_eq!(candidate_ids(&store, &["shared"]).await, vec![survivor.id], "the duplicate is no candidate");
    assert!(candidate_ids(&store, &["duplicate"]).await.is_empty(), "the duplicate's keys are dropped");
    let by_nino = candidates_for(&store, &["ni:AB123456C"]).await;
    assert_eq!(by_nino.iter().map(|c| c.person.id).collect::<Vec<_>>(), vec![survivor.id]);
    assert_eq!(by_nino[0].nino.as_deref(), Some("AB123456C"));

    assert!(store.list_documents(duplicate.id).await.expect("list succeeds").is_empty(), "documents moved");
    let moved = store.get_document(survivor.id, &social_care()).await.expect("read succeeds").expect("moved");
    assert_eq!((moved.person_id, moved.version, moved.body), (survivor.id, 0, extended_body("care v1")));
    let equality = store.get_document(survivor.id, &DocumentKind::Equality).await.expect("read").expect("moved");
    assert_eq!(equality.body, equality_body_with_nino("AB123456C"));

    let events = all_events(&store).await;
    assert_eq!(events.len(), events_before + 1, "exactly one event");
    let last = &events[events.len() - 1].event;
    assert_eq!((last.id, last.event_type, last.entity_id), (event_id, EventType::PersonMergedEvent, survivor.id));

    let survivor_history = store.history(survivor.id).await.expect("history succeeds");
    assert_eq!(survivor_history.iter().map(|h| h.version_number).collect::<Vec<_>>(), vec![0, 1]);
    let duplicate_history = store.history(duplicate.id).await.expect("history succeeds");
    assert_eq!(duplicate_history.iter().map(|h| h.version_number).collect::<Vec<_>>(), vec![0, 1]);
    assert_eq!(survivor_history[1].event_id, event_id);
    assert_eq!(duplicate_history[1].event_id, event_id);

    assert_eq!(audit_actions(&store, survivor.id).await.last(), Some(&AuditAction::PersonUpdate));
    assert_eq!(audit_actions(&store, duplicate.id).await.last(), Some(&AuditAction::PersonUpdate));

    // The duplicate's dedup key is free again; the survivor's is still held.
    let again = store.insert(keyed_create_write(full_person(person_id()), &[], Some("duplicate"))).await;
    assert!(again.is_ok(), "the duplicate's dedup key is freed: {again:?}");
    let clash = store.insert(keyed_create_write(full_person(person_id()), &[], Some("survivor"))).await;
    assert!(matches!(clash, Err(InsertError::DuplicatePerson { existing }) if existing == survivor.id));
}

/// A merge with a stale survivor or duplicate version (or an unknown person) conflicts and writes nothing.
pub async fn merge_with_a_stale_version_conflicts_and_writes_nothing(store: Store) {
    let survivor = create_keyed(&store, &["s"], None).await;
    let duplicate = create_keyed(&store, &["d"], None).await;
    store.update(with_keys(rename_write(&duplicate, "Moved on"), &["d"], None)).await.expect("update");
    store.update(with_keys(rename_write(&survivor, "Moved on"), &["s"], None)).await.expect("update");
    let events_before = all_events(&store).await.len();

    let stale_both = store.merge(merge_write(&survivor, &duplicate, &["s"], None, Vec::new())).await;
    assert!(matches!(stale_both, Err(MergeWriteError::SurvivorConflict { current: Some(1) })), "got {stale_both:?}");

    let survivor_v1 = store.get(survivor.id).await.expect("get").expect("exists");
    let stale_duplicate = store.merge(merge_write(&survivor_v1, &duplicate, &["s"], None, Vec::new())).await;
    assert!(
        matches!(stale_duplicate, Err(MergeWriteError::DuplicateConflict { current: Some(1) })),
        "got {stale_duplicate:?}"
    );
    let ghost = full_person(person_id());
    let unknown = store.merge(merge_write(&survivor_v1, &ghost, &["s"], None, Vec::new())).await;
    assert!(matches!(unknown, Err(MergeWriteError::DuplicateConflict { current: None })), "got {unknown:?}");
    let unknown = store.merge(merge_write(&ghost, &survivor_v1, &["s"], None, Vec::new())).await;
    assert!(matches!(unknown, Err(MergeWriteError::SurvivorConflict { current: None })), "got {unknown:?}");

    assert_eq!(store.get(survivor.id).await.expect("get").expect("exists"), survivor_v1);
    assert!(store.get(duplicate.id).await.expect("get").expect("exists").status.is_active());
    assert_eq!(candidate_ids(&store, &["d"]).await, vec![duplicate.id], "keys untouched");
    assert_eq!(all_events(&store).await.len(), events_before, "no event");
    assert_eq!(store.history(duplicate.id).await.expect("history").len(), 2);
}

/// A merge whose documents do not match (not on the duplicate at that version, or already on the survivor)
/// conflicts and writes nothing.
pub async fn merge_with_a_document_conflict_writes_nothing(store: Store) {
    let survivor = create_keyed(&store, &["s"], None).await;
    let duplicate = create_keyed(&store, &["d"], None).await;
    store.write_document(equality_write(duplicate.id, "AB123456C", &["ni:AB123456C"])).await.expect("equality");
    let body = || equality_body_with_nino("AB123456C");

    let wrong_version = merge_write(&survivor, &duplicate, &["s"], None, vec![(DocumentKind::Equality, 3, body())]);
    let result = store.merge(wrong_version).await;
    assert!(matches!(result, Err(MergeWriteError::DocumentConflict)), "got {result:?}");
    let missing = merge_write(&survivor, &duplicate, &["s"], None, vec![(social_care(), 0, extended_body("x"))]);
    let result = store.merge(missing).await;
    assert!(matches!(result, Err(MergeWriteError::DocumentConflict)), "got {result:?}");

    store.write_document(equality_write(survivor.id, "CE123456A", &["ni:CE123456A"])).await.expect("equality");
    let occupied = merge_write(&survivor, &duplicate, &["s"], None, vec![(DocumentKind::Equality, 0, body())]);
    let result = store.merge(occupied).await;
    assert!(matches!(result, Err(MergeWriteError::DocumentConflict)), "got {result:?}");

    assert!(store.get(duplicate.id).await.expect("get").expect("exists").status.is_active());
    assert_eq!(store.get(survivor.id).await.expect("get").expect("exists").version_number, 0);
    let kept = store.get_document(duplicate.id, &DocumentKind::Equality).await.expect("read").expect("kept");
    assert_eq!(kept.body, body());
    let events = all_events(&store).await;
    assert!(events.iter().all(|e| e.event.event_type != EventType::PersonMergedEvent), "no merge event");
}

/// The survivor may take the duplicate's dedup key in the merge itself; a key held by a third live person is
/// `DuplicatePerson` and nothing is written.
pub async fn merge_hands_dedup_keys_over_atomically_and_refuses_a_third_persons_key(store: Store) {
    let survivor = create_keyed(&store, &["s"], None).await;
    let duplicate = create_keyed(&store, &["d"], Some("same-person")).await;
    let third = create_keyed(&store, &["t"], Some("third")).await;

    let clash = store.merge(merge_write(&survivor, &duplicate, &["s"], Some("third"), Vec::new())).await;
    assert!(
        matches!(clash, Err(MergeWriteError::DuplicatePerson { existing }) if existing == third.id),
        "got {clash:?}"
    );
    assert!(store.get(duplicate.id).await.expect("get").expect("exists").status.is_active());
    assert_eq!(candidate_ids(&store, &["d"]).await, vec![duplicate.id]);

    store.merge(merge_write(&survivor, &duplicate, &["s"], Some("same-person"), Vec::new())).await.expect("merge");
    let again = store.insert(keyed_create_write(full_person(person_id()), &[], Some("same-person"))).await;
    assert!(
        matches!(again, Err(InsertError::DuplicatePerson { existing }) if existing == survivor.id),
        "the survivor now holds the key: {again:?}"
    );
}

async fn owner_of(store: &Store, system: &str, id: &str) -> Option<PersonId> {
    store.find_by_reference(&reference(system, id)).await.expect("find_by_reference succeeds")
}

/// A person's references are stored with it and each finds it; a write replaces them (removed ones find no one).
pub async fn references_are_stored_with_the_person_and_found_by_reference(store: Store) {
    let person = create(&store).await;
    let own = format!("t-{}", person.id);
    assert_eq!(owner_of(&store, "tenure", &own).await, Some(person.id));
    assert_eq!(owner_of(&store, "tenure", "never-claimed").await, None);
    // Same id in another system is another record.
    assert_eq!(owner_of(&store, "housing-register", &own).await, None);

    let refs = [reference("housing-register", "HR/1:a"), reference("repairs", "R-9 é")];
    store.update(references_write(&person, &refs)).await.expect("reference change succeeds");
    let read = store.get(person.id).await.expect("get").expect("exists");
    assert_eq!(read.references, vec![reference("housing-register", "HR/1:a"), reference("repairs", "R-9 é")]);
    assert_eq!(owner_of(&store, "housing-register", "HR/1:a").await, Some(person.id));
    assert_eq!(owner_of(&store, "repairs", "R-9 é").await, Some(person.id));
    assert_eq!(owner_of(&store, "tenure", &own).await, None, "a removed reference finds no one");
    // Ids are case-sensitive.
    assert_eq!(owner_of(&store, "housing-register", "hr/1:a").await, None);
}

/// A create or update claiming a reference another live person holds is `ReferenceTaken` naming that person;
/// nothing is written. A stale version is reported first.
pub async fn a_reference_held_by_another_live_person_is_refused_and_writes_nothing(store: Store) {
    let owner = create(&store).await;
    let other = create(&store).await;
    let taken = reference("tenure", &format!("t-{}", owner.id));
    let events_before = all_events(&store).await.len();

    let claim = store.update(references_write(&other, &[taken.clone(), reference("repairs", "r1")])).await;
    assert!(
        matches!(&claim, Err(UpdateError::ReferenceTaken { reference, owner: o }) if *reference == taken && *o == owner.id),
        "got {claim:?}"
    );
    assert_eq!(store.get(other.id).await.expect("get").expect("exists"), other, "the claimant is untouched");
    assert_eq!(owner_of(&store, "repairs", "r1").await, None, "no part of a refused write is indexed");

    let mut stale = references_write(&other, std::slice::from_ref(&taken));
    stale.expected_version += 7;
    let stale = store.update(stale).await;
    assert!(matches!(stale, Err(UpdateError::VersionConflict { current: 0 })), "got {stale:?}");

    let mut newcomer = full_person(person_id());
    newcomer.references = vec![taken.clone()];
    let insert = store.insert(create_write(newcomer.clone(), None)).await;
    assert!(matches!(&insert, Err(InsertError::ReferenceTaken { owner: o, .. }) if *o == owner.id), "got {insert:?}");
    assert!(store.get(newcomer.id).await.expect("get").is_none(), "refused create must not be stored");
    assert_eq!(all_events(&store).await.len(), events_before, "no event for refused writes");
    assert_eq!(owner_of(&store, "tenure", &format!("t-{}", owner.id)).await, Some(owner.id));
}

/// Ten persons claiming the same reference at once: exactly one wins, the others are told who holds it.
pub async fn concurrent_claims_of_one_reference_let_exactly_one_win(store: Store) {
    let mut claimants = Vec::new();
    for _ in 0..10 {
        claimants.push(create(&store).await);
    }
    let wanted = reference("tenure", "contested");
    let tasks = claimants.iter().map(|person| {
        let (store, person, wanted) = (store.clone(), person.clone(), wanted.clone());
        tokio::spawn(async move {
            let mut refs = person.references.clone();
            refs.push(wanted);
            (person.id, store.update(references_write(&person, &refs)).await)
        })
    });
    let results: Vec<_> = join_all(tasks).await.into_iter().map(|r| r.expect("task completes")).collect();
    let winners: Vec<PersonId> = results.iter().filter(|(_, r)| r.is_ok()).map(|(id, _)| *id).collect();
    assert_eq!(winners.len(), 1, "exactly one claim must win: {results:?}");
    for (_, result) in &results {
        if let Err(e) = result {
            assert!(
                matches!(e, UpdateError::ReferenceTaken { owner, .. } if *owner == winners[0]),
                "a losing claim must name the winner: {e:?}"
            );
        }
    }
    assert_eq!(owner_of(&store, "tenure", "contested").await, Some(winners[0]));
}

/// A deleted person's references are released: the lookup finds no one and another person may claim them.
pub async fn deleting_a_person_releases_its_references(store: Store) {
    let person = create(&store).await;
    let own = format!("t-{}", person.id);
    store.update(status_write(&person, PersonStatus::Deleted)).await.expect("delete succeeds");
    assert_eq!(owner_of(&store, "tenure", &own).await, None);
    let tombstone = store.get(person.id).await.expect("get").expect("exists");
    assert_eq!(tombstone.references, person.references, "the tombstone keeps what it held, for history");
    let heir = create(&store).await;
    let mut refs = heir.references.clone();
    refs.push(reference("tenure", &own));
    store.update(references_write(&heir, &refs)).await.expect("a released reference can be claimed");
    assert_eq!(owner_of(&store, "tenure", &own).await, Some(heir.id));
}

/// A merge gives the duplicate's references to the survivor in the same write; a survivor reference held by a
/// third live person refuses the whole merge.
pub async fn merge_moves_the_duplicates_references_and_refuses_a_third_persons_reference(store: Store) {
    let survivor = create(&store).await;
    let duplicate = create(&store).await;
    let third = create(&store).await;
    let third_ref = reference("tenure", &format!("t-{}", third.id));

    let mut clash = merge_write(&survivor, &duplicate, &[], None, Vec::new());
    clash.survivor.references.push(third_ref.clone());
    let clash = store.merge(clash).await;
    assert!(
        matches!(&clash, Err(MergeWriteError::ReferenceTaken { reference, owner }) if *reference == third_ref && *owner == third.id),
        "got {clash:?}"
    );
    assert!(store.get(duplicate.id).await.expect("get").expect("exists").status.is_active());
    assert_eq!(owner_of(&store, "tenure", &format!("t-{}", duplicate.id)).await, Some(duplicate.id));

    store.merge(merge_write(&survivor, &duplicate, &[], None, Vec::new())).await.expect("merge succeeds");
    assert_eq!(owner_of(&store, "tenure", &format!("t-{}", duplicate.id)).await, Some(survivor.id));
    assert_eq!(owner_of(&store, "tenure", &format!("t-{}", survivor.id)).await, Some(survivor.id));
    let merged = store.get(survivor.id).await.expect("get").expect("exists");
    assert_eq!(merged.references.len(), 2);
    assert_eq!(owner_of(&store, "tenure", &format!("t-{}", third.id)).await, Some(third.id));
}

/// Inserts `n` persons, the i-th last modified `i` hours after the fixture instant, and returns them sorted by id.
async fn insert_dated(store: &Store, n: i64) -> Vec<Person> {
    let mut persons = Vec::new();
    for hours in 0..n {
        let mut person = full_person(person_id());
        person.last_modified = instant() + chrono::TimeDelta::hours(hours);
        persons.push(store.insert(create_write(person, None)).await.expect("insert succeeds"));
    }
    persons.sort_by_key(|p| p.id);
    persons
}

async fn report_page(store: &Store, query: ReportQuery) -> Vec<Person> {
    store.report_persons(&query).await.expect("report_persons succeeds")
}

fn ids(persons: &[Person]) -> Vec<PersonId> {
    persons.iter().map(|p| p.id).collect()
}

/// `report_persons` returns persons in every state, exactly as stored, in ascending id order, by keyset and by
/// offset paging alike.
pub async fn report_persons_pages_every_state_in_id_order(store: Store) {
    let mut persons = insert_dated(&store, 7).await;
    let deleted = persons[2].clone();
    store.update(status_write(&deleted, PersonStatus::Deleted)).await.expect("delete succeeds");
    let restricted = persons[4].clone();
    store.update(restriction_write(&restricted, true)).await.expect("restriction succeeds");
    for person in &mut persons {
        *person = store.get(person.id).await.expect("get succeeds").expect("person exists");
    }
    let everything = ReportQuery { modified_since: None, after: None, offset: 0, limit: 100 };
    assert_eq!(report_page(&store, everything).await, persons, "every state, as stored, in id order");

    let mut by_keyset = Vec::new();
    let mut after = None;
    loop {
        let page = report_page(&store, ReportQuery { after, limit: 3, ..everything }).await;
        assert!(page.len() <= 3, "a page holds at most `limit` persons");
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        by_keyset.extend(page);
    }
    assert_eq!(ids(&by_keyset), ids(&persons), "keyset paging visits every person once, in order");

    let mut by_offset = Vec::new();
    for offset in (0..9).step_by(3) {
        by_offset.extend(report_page(&store, ReportQuery { offset, limit: 3, ..everything }).await);
    }
    assert_eq!(ids(&by_offset), ids(&persons), "offset paging visits every person once, in order");

    let skipped = report_page(&store, ReportQuery { after: Some(persons[1].id), offset: 2, limit: 2, ..everything });
    assert_eq!(ids(&skipped.await), ids(&persons[4..6]), "offset counts from after the keyset position");
}

/// `modified_since` selects persons modified at or after the instant (inclusive), in every state.
pub async fn report_persons_select_by_modified_since_inclusively(store: Store) {
    let persons = insert_dated(&store, 6).await;
    let since = instant() + chrono::TimeDelta::hours(3);
    let mut expected: Vec<PersonId> = persons.iter().filter(|p| p.last_modified >= since).map(|p| p.id).collect();
    expected.sort();
    let query = ReportQuery { modified_since: Some(since), after: None, offset: 0, limit: 100 };
    assert_eq!(ids(&report_page(&store, query).await), expected);
    assert_eq!(expected.len(), 3, "hours 3, 4 and 5");

    let old = persons.iter().find(|p| p.last_modified < since).expect("an older person").clone();
    let mut delete = status_write(&old, PersonStatus::Deleted);
    delete.person.last_modified = since + chrono::TimeDelta::minutes(1);
    store.update(delete).await.expect("delete succeeds");
    let changed = report_page(&store, query).await;
    let tombstone = changed.iter().find(|p| p.id == old.id).expect("a deleted person modified since is reported");
    assert_eq!(tombstone.status, PersonStatus::Deleted);
    assert_eq!(changed.len(), 4);
}

/// `report_counts` counts persons, tombstones (not live or restricted) and the tenures and references of the
/// reportable ones, over the `modified_since` selection.
pub async fn report_counts_cover_persons_tombstones_tenures_and_references(store: Store) {
    let persons = insert_dated(&store, 5).await;
    store.update(status_write(&persons[0], PersonStatus::Deleted)).await.expect("delete succeeds");
    store.update(restriction_write(&persons[1], true)).await.expect("restriction succeeds");
    let tenures_each = persons[2].tenures.len() as u64;
    let references_each = persons[2].references.len() as u64;
    assert!(tenures_each > 0 && references_each > 0, "the fixture holds tenures and references");

    let counts = store.report_counts(None).await.expect("report_counts succeeds");
    assert_eq!(
        counts,
        ReportCounts { persons: 5, withheld: 2, tenures: 3 * tenures_each, references: 3 * references_each }
    );
    let recent: Vec<&Person> =
        persons.iter().filter(|p| p.last_modified >= instant() + chrono::TimeDelta::hours(3)).collect();
    let since = store.report_counts(Some(instant() + chrono::TimeDelta::hours(3))).await.expect("counts succeed");
    let withheld = recent.iter().filter(|p| p.id == persons[0].id || p.id == persons[1].id).count() as u64;
    let live = recent.len() as u64 - withheld;
    assert_eq!(
        since,
        ReportCounts {
            persons: recent.len() as u64,
            withheld,
            tenures: live * tenures_each,
            references: live * references_each,
        }
    );
    let empty = ReportCounts::default();
    let future = store.report_counts(Some(instant() + chrono::TimeDelta::days(30))).await.expect("counts succeed");
    assert_eq!(future, empty);
}

/// A relay lease is exclusive until it expires; the position survives holders, never decreases, and is
/// advanced only by the holder.
pub async fn relay_lease_is_exclusive_until_it_expires_and_keeps_the_position(store: Store) {
    let ttl = chrono::TimeDelta::seconds(30);
    let t0 = instant();
    assert_eq!(store.relay_state("sns").await.expect("relay_state succeeds"), None);
    let a = store.acquire_relay_lease("sns", "a", t0, ttl).await.expect("acquire succeeds").expect("free lease");
    assert_eq!((a.holder.as_str(), a.position, a.expires_at), ("a", 0, t0 + ttl));
    let refused = store.acquire_relay_lease("sns", "b", t0 + chrono::TimeDelta::seconds(29), ttl).await;
    assert_eq!(refused.expect("acquire succeeds"), None, "an unexpired lease is not taken");
    let other = store.acquire_relay_lease("other", "b", t0, ttl).await.expect("acquire succeeds");
    assert!(other.is_some(), "relays have separate leases");

    store.advance_relay("sns", "a", 5, t0 + chrono::TimeDelta::seconds(10), ttl).await.expect("holder advances");
    store.advance_relay("sns", "a", 3, t0 + chrono::TimeDelta::seconds(20), ttl).await.expect("holder renews");
    let state = store.relay_state("sns").await.expect("relay_state succeeds").expect("relay ran");
    assert_eq!(state.position, 5, "the position never decreases");
    assert_eq!(state.expires_at, t0 + chrono::TimeDelta::seconds(20) + ttl, "advancing renews the lease");
    let lost = store.advance_relay("sns", "b", 9, t0 + chrono::TimeDelta::seconds(21), ttl).await;
    assert!(matches!(lost, Err(RelayError::LeaseLost)), "a non-holder cannot advance: {lost:?}");

    let later = t0 + chrono::TimeDelta::seconds(51);
    let b = store.acquire_relay_lease("sns", "b", later, ttl).await.expect("acquire succeeds").expect("expired");
    assert_eq!((b.holder.as_str(), b.position), ("b", 5), "the new holder resumes at the stored position");
    let lost = store.advance_relay("sns", "a", 7, later, ttl).await;
    assert!(matches!(lost, Err(RelayError::LeaseLost)), "the old holder lost the lease: {lost:?}");
    assert_eq!(store.relay_state("sns").await.expect("state").expect("relay ran").position, 5);

    store.release_relay_lease("sns", "a").await.expect("a release by a non-holder does nothing");
    assert_eq!(store.acquire_relay_lease("sns", "c", later, ttl).await.expect("acquire succeeds"), None);
    store.release_relay_lease("sns", "b").await.expect("release succeeds");
    let c = store.acquire_relay_lease("sns", "c", later, ttl).await.expect("acquire succeeds");
    assert_eq!(c.map(|l| l.position), Some(5), "a released lease is taken at once, position kept");
}

/// Of concurrent acquisitions of a free relay lease exactly one succeeds.
pub async fn concurrent_relay_lease_acquisitions_let_exactly_one_win(store: Store) {
    let ttl = chrono::TimeDelta::seconds(30);
    let attempts = (0..10).map(|i| {
        let store = store.clone();
        async move { store.acquire_relay_lease("race", &format!("holder-{i}"), instant(), ttl).await }
    });
    let results = join_all(attempts).await;
    let winners: Vec<_> = results.into_iter().filter_map(|r| r.expect("acquire succeeds")).collect();
    assert_eq!(winners.len(), 1, "exactly one holder: {winners:?}");
    let state = store.relay_state("race").await.expect("relay_state succeeds").expect("relay ran");
    assert_eq!(state.holder, winners[0].holder);
}

/// The query catalogue names each statement once, with its text.
pub async fn query_catalogue_names_each_statement_once(store: Store) {
    assert!(!store.store_kind().is_empty());
    let mut names = HashSet::new();
    for query in store.statements() {
        assert!(!query.sql.trim().is_empty(), "{} has a statement text", query.name);
        assert!(names.insert(query.name), "{} is listed twice", query.name);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Import

/// A person to import with its own `personRef` (kept) or none (`assign`), keys and dedup key.
fn import_write(person: Person, assign: bool, search_keys: &[&str], dedup: Option<&str>) -> ImportWrite {
    ImportWrite { person, assign_ref: assign, search_keys: keys(search_keys), dedup_key: dedup.map(str::to_owned) }
}

/// A fixture person imported with `person_ref`, last modified a day after it was created.
fn imported_person(person_ref: i64) -> Person {
    let mut person = full_person(person_id());
    person.person_ref = crate::person::PersonRef(person_ref);
    person.version_number = 3;
    person.last_modified = person.created_at + chrono::TimeDelta::days(1);
    person
}

/// An import keeps ids, `personRef`s, versions and timestamps, stores keys, dedup keys and references as a create
/// does, and reports per record what it did: an id already present or repeated, a `personRef` or a reference
/// another person has, a dedup key another live person holds (stored without it). It writes no event, one audit
/// entry naming the persons stored, and raises the `personRef` sequence past every kept number.
pub async fn import_keeps_ids_and_refs_and_reports_each_record(store: Store) {
    let base = 1_000_000 + i64::from(person_id().as_uuid().as_bytes()[0]) * 1_000;
    let first = imported_person(base + 7);
    let assigned = imported_person(0);
    let repeated = first.clone();
    let same_ref = imported_person(base + 7);
    let twin = imported_person(base + 1);
    let mut claims_reference = imported_person(base + 2);
    claims_reference.references = first.references.clone();
    let mut deleted = imported_person(base + 3);
    deleted.status = PersonStatus::Deleted;
    let dedup = format!("dedup-{}", first.id);
    let batch = vec![
        import_write(first.clone(), false, &["imp:a", "imp:b"], Some(&dedup)),
        import_write(assigned.clone(), true, &["imp:a"], None),
        import_write(repeated, false, &["imp:a"], Some(&dedup)),
        import_write(same_ref.clone(), false, &[], None),
        import_write(twin.clone(), false, &["imp:b"], Some(&dedup)),
        import_write(claims_reference.clone(), false, &[], None),
        import_write(deleted.clone(), false, &[], None),
    ];
    let audit = audit_entry(AuditAction::PersonImport, Vec::new());
    let outcomes = store.import_persons(batch.clone(), audit).await.expect("import succeeds");
    let assigned_ref = match &outcomes[1] {
        ImportOutcome::Imported { person_ref, duplicate_of: None } => *person_ref,
        other => panic!("a record without personRef is stored with a new one: {other:?}"),
    };
    assert!(assigned_ref.0 > base + 7, "assigned numbers follow every kept one: {assigned_ref:?}");
    let reference = first.references[0].clone();
    assert_eq!(
        outcomes,
        vec![
            ImportOutcome::Imported { person_ref: first.person_ref, duplicate_of: None },
            ImportOutcome::Imported { person_ref: assigned_ref, duplicate_of: None },
            ImportOutcome::AlreadyStored,
            ImportOutcome::PersonRefTaken { owner: first.id },
            ImportOutcome::Imported { person_ref: twin.person_ref, duplicate_of: Some(first.id) },
            ImportOutcome::ReferenceTaken { reference: reference.clone(), owner: first.id },
            ImportOutcome::Imported { person_ref: deleted.person_ref, duplicate_of: None },
        ]
    );

    assert_eq!(store.get(first.id).await.expect("get").as_ref(), Some(&first), "stored exactly as given");
    let mut expected_assigned = assigned.clone();
    expected_assigned.person_ref = assigned_ref;
    assert_eq!(store.get(assigned.id).await.expect("get"), Some(expected_assigned));
    assert_eq!(store.get(deleted.id).await.expect("get"), Some(deleted.clone()));
    for refused in [&same_ref, &claims_reference] {
        assert_eq!(store.get(refused.id).await.expect("get"), None, "a refused record writes nothing");
    }
    assert_eq!(store.find_by_reference(&reference).await.expect("find_by_reference"), Some(first.id));
    store.finish_import().await.expect("finish_import succeeds");
    assert_eq!(store.finish_import().await.expect("finish_import again"), 0, "nothing left to index");
    let mut found = candidate_ids(&store, &["imp:a", "imp:b"]).await;
    found.sort();
    let mut expected = vec![first.id, assigned.id, twin.id];
    expected.sort();
    assert_eq!(found, expected, "keys are stored for live imported persons");
    assert!(all_events(&store).await.is_empty(), "an import writes no event");
    assert!(store.history(first.id).await.expect("history").is_empty(), "an import writes no history");

    let audited = store.entries_for_person(twin.id, 0, 10).await.expect("audit succeeds");
    assert_eq!(audited.len(), 1, "one audit entry per batch: {audited:?}");
    assert_eq!(audited[0].entry.action, AuditAction::PersonImport);
    let mut named = audited[0].entry.person_ids.clone();
    named.sort();
    let mut stored = vec![first.id, assigned.id, twin.id, deleted.id];
    stored.sort();
    assert_eq!(named, stored, "the entry names exactly the persons stored");

    // The twin holds no dedup key: the first person keeps it, and a create with it is refused.
    let refused = store.insert(keyed_create_write(full_person(person_id()), &[], Some(&dedup))).await;
    assert!(matches!(refused, Err(InsertError::DuplicatePerson { existing }) if existing == first.id), "{refused:?}");
    let created = create(&store).await;
    assert!(created.person_ref > assigned_ref, "creates continue after the imported numbers");

    // Importing the same batch again (a resumed import) writes nothing.
    let again = store.import_persons(batch, audit_entry(AuditAction::PersonImport, Vec::new())).await;
    let again = again.expect("import succeeds");
    let stored = ImportOutcome::AlreadyStored;
    assert_eq!(
        again,
        vec![
            stored.clone(),
            stored.clone(),
            stored.clone(),
            ImportOutcome::PersonRefTaken { owner: first.id },
            stored.clone(),
            ImportOutcome::ReferenceTaken { reference, owner: first.id },
            stored,
        ]
    );
    assert_eq!(store.entries_for_person(twin.id, 0, 10).await.expect("audit").len(), 1, "nothing stored, no entry");
}

/// A merged person is stored only once its survivor is: a survivor neither stored nor earlier in the batch makes it
/// `SurvivorMissing` (nothing written, and never a failed batch), and it is stored when offered again later.
pub async fn import_stores_a_merged_person_only_after_its_survivor(store: Store) {
    let base = 2_000_000 + i64::from(person_id().as_uuid().as_bytes()[0]) * 1_000;
    let survivor = imported_person(base + 1);
    let merged = |person_ref: i64, into: PersonId| {
        let mut person = imported_person(person_ref);
        person.status = PersonStatus::Merged { into };
        person
    };
    let nowhere = person_id();
    let orphan = merged(base + 2, nowhere);
    let early = merged(base + 3, survivor.id);
    let late = merged(base + 4, survivor.id);
    let chained = merged(base + 5, late.id);
    let batch = vec![
        import_write(orphan.clone(), false, &[], None),
        import_write(early.clone(), false, &[], None),
        import_write(survivor.clone(), false, &["imp:survivor"], None),
        import_write(late.clone(), false, &[], None),
        import_write(chained.clone(), false, &[], None),
    ];
    let outcomes = store.import_persons(batch, audit_entry(AuditAction::PersonImport, Vec::new())).await;
    let imported = |person: &Person| ImportOutcome::Imported { person_ref: person.person_ref, duplicate_of: None };
    assert_eq!(
        outcomes.expect("a batch with missing survivors still succeeds"),
        vec![
            ImportOutcome::SurvivorMissing { survivor: nowhere },
            ImportOutcome::SurvivorMissing { survivor: survivor.id },
            imported(&survivor),
            imported(&late),
            imported(&chained),
        ]
    );
    assert_eq!(store.get(orphan.id).await.expect("get"), None, "nothing written for a missing survivor");
    assert_eq!(store.get(early.id).await.expect("get"), None);
    assert_eq!(store.get(chained.id).await.expect("get"), Some(chained.clone()), "a chain within the batch is stored");

    // Offered again once its survivor is stored, the early one is imported.
    let again = vec![import_write(early.clone(), false, &[], None), import_write(orphan, false, &[], None)];
    let outcomes = store.import_persons(again, audit_entry(AuditAction::PersonImport, Vec::new())).await;
    assert_eq!(
        outcomes.expect("import succeeds"),
        vec![imported(&early), ImportOutcome::SurvivorMissing { survivor: nowhere }]
    );
    assert_eq!(store.get(early.id).await.expect("get"), Some(early));
}

/// Once `finish_import` returned, imported persons are found by their keys, except keys a change since the import
/// replaced: the change's keys count, not the import's.
pub async fn finished_import_finds_imported_keys_and_a_change_keeps_its_own(store: Store) {
    let kept = imported_person(3_000_000 + i64::from(person_id().as_uuid().as_bytes()[0]) * 1_000);
    let mut changed = imported_person(kept.person_ref.0 + 1);
    changed.references.clear();
    let (old_key, new_key, kept_key) =
        (format!("imp2:old:{}", changed.id), format!("imp2:new:{}", changed.id), format!("imp2:{}", kept.id));
    let batch = vec![
        import_write(kept.clone(), false, &[&kept_key], None),
        import_write(changed.clone(), false, &[&old_key], None),
    ];
    let outcomes = store.import_persons(batch, audit_entry(AuditAction::PersonImport, Vec::new())).await;
    assert!(outcomes.expect("import succeeds").iter().all(|o| matches!(o, ImportOutcome::Imported { .. })));
    store.update(with_keys(rename_write(&changed, "Changed"), &[&new_key], None)).await.expect("update succeeds");

    store.finish_import().await.expect("finish_import succeeds");
    assert_eq!(candidate_ids(&store, &[&kept_key]).await, vec![kept.id]);
    assert_eq!(candidate_ids(&store, &[&new_key]).await, vec![changed.id], "the change's keys");
    assert!(candidate_ids(&store, &[&old_key]).await.is_empty(), "the import's keys were replaced by the change");
}
