//! Unit tests of the use cases: over [`InMemoryStore`] with a [`FixedClock`] for behaviour, and over the mockall
//! mocks of the ports to check how the service maps what a store answers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;
use uuid::Uuid;

use super::*;
use crate::access::Permission;
use crate::api::PersonResponse;
use crate::event::EventData;
use crate::memory::InMemoryStore;
use crate::person::{Name, PersonType, TenureSummary, Title};
use crate::ports::{
    AuditLog, DocumentRepository, FixedClock, IdempotencyRecord, MockAuditLog, MockDocumentRepository, MockIdGenerator,
    MockPersonRepository, PersonRepository, RandomIds,
};
use crate::validate::BodyError;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 10, 9, 30, 0).unwrap()
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn service_at(store: &Arc<InMemoryStore>, at: DateTime<Utc>) -> PersonService {
    PersonService::new(Repositories::from_store(store.clone()), Arc::new(FixedClock(at)), Arc::new(RandomIds))
}

fn setup() -> (PersonService, Arc<InMemoryStore>) {
    let store = Arc::new(InMemoryStore::new());
    (service_at(&store, now()), store)
}

/// What a housing officer holds: persons and the feed, nothing sensitive, not `admin`.
fn officer_permissions() -> Permissions {
    [Permission::PersonsRead, Permission::PersonsWrite, Permission::PersonsDelete, Permission::EventsRead]
        .into_iter()
        .collect()
}

fn ctx_with(subject: &str, permissions: Permissions) -> RequestContext {
    let actor =
        Actor { subject: subject.to_owned(), name: "Olu Officer".to_owned(), email: "olu@hackney.gov.uk".to_owned() };
    RequestContext::new(actor, permissions, format!("corr-{subject}"))
}

fn ctx_for(subject: &str) -> RequestContext {
    ctx_with(subject, officer_permissions())
}

/// A housing officer (not `admin`).
fn ctx() -> RequestContext {
    ctx_for("officer-1")
}

/// An administrator: every permission, restricted persons included.
fn admin() -> RequestContext {
    ctx_with("admin-1", Permissions::all())
}

fn body_json() -> Value {
    json!({
        "title": "Ms",
        "firstName": "Ada",
        "middleName": "Augusta",
        "surname": "Lovelace",
        "dateOfBirth": "1990-05-17",
        "personTypes": ["Tenant"],
        "reason": "New tenancy"
    })
}

fn body() -> Vec<u8> {
    body_json().to_string().into_bytes()
}

fn with_key(key: &str) -> CreateOptions {
    CreateOptions { idempotency_key: Some(key.to_owned()), ..CreateOptions::default() }
}

/// Creates the fixture person (Ada Lovelace) as an allowed duplicate: tests that create it more than once are not
/// about duplicate prevention.
async fn create(service: &PersonService) -> Person {
    service.create(&ctx(), &body(), allowing_duplicates()).await.unwrap().person
}

fn allowing_duplicates() -> CreateOptions {
    CreateOptions { allow_duplicate: true, ..CreateOptions::default() }
}

async fn all_events(service: &PersonService) -> Vec<FeedEntry> {
    service.events(&ctx(), 0, MAX_FEED_LIMIT).await.unwrap().entries
}

/// Marks `person` merged into `into` directly through the repository, as a merge would.
async fn merge_via_repository(store: &InMemoryStore, person: &Person, into: PersonId) {
    let mut next = person.clone();
    next.status = PersonStatus::Merged { into };
    next.version_number += 1;
    let event = PersonEvent {
        id: Uuid::new_v4(),
        event_type: EventType::PersonMergedEvent,
        source_domain: SOURCE_DOMAIN.to_owned(),
        source_system: SOURCE_SYSTEM.to_owned(),
        version: EventVersion::V1,
        correlation_id: "corr-merge".to_owned(),
        date_time: now(),
        user: EventUser { name: "Merger".to_owned(), email: "merger@hackney.gov.uk".to_owned() },
        entity_id: into,
        event_data: EventData::default(),
    };
    let history = history_entry(&ctx(), &event, next.version_number, Some("duplicate".to_owned()));
    let audit = AuditEntry {
        id: Uuid::new_v4(),
        at: now(),
        actor: ctx().actor,
        action: AuditAction::PersonUpdate,
        person_ids: vec![person.id, into],
        detail: Some("merge".to_owned()),
        purpose: None,
        correlation_id: "corr-merge".to_owned(),
        outcome: AuditOutcome::Success,
    };
    let write = PersonWrite {
        person: next,
        expected_version: person.version_number,
        event,
        history,
        audit,
        search_keys: Vec::new(),
        dedup_key: None,
    };
    store.update(write).await.unwrap();
}

// ---------------------------------------------------------------------------------------------------------------
// create

#[tokio::test]
async fn create_assigns_an_id_a_person_ref_version_zero_and_timestamps() {
    let (service, store) = setup();

    let created = service.create(&ctx(), &body(), CreateOptions::default()).await.unwrap();

    let person = created.person;
    assert!(!created.replayed);
    assert!(!person.id.as_uuid().is_nil());
    assert_eq!(person.person_ref, PersonRef(1));
    assert_eq!(person.version_number, 0);
    assert_eq!((person.created_at, person.last_modified), (now(), now()));
    assert_eq!(person.status, PersonStatus::Active);
    assert_eq!(person.surname.as_str(), "Lovelace");
    assert_eq!(person.reason, "New tenancy");
    assert_eq!(store.get(person.id).await.unwrap(), Some(person));
}

#[tokio::test]
async fn consecutive_creates_get_consecutive_person_refs_and_distinct_ids() {
    let (service, _store) = setup();

    let first = create(&service).await;
    let second = create(&service).await;

    assert_eq!((first.person_ref, second.person_ref), (PersonRef(1), PersonRef(2)));
    assert_ne!(first.id, second.id);
}

#[tokio::test]
async fn create_publishes_a_person_created_event_with_the_whole_person_and_correlation_id() {
    let (service, _store) = setup();

    let person = create(&service).await;

    let events = all_events(&service).await;
    assert_eq!(events.len(), 1);
    let event = &events[0].event;
    assert_eq!(event.event_type, EventType::PersonCreatedEvent);
    assert_eq!(event.entity_id, person.id);
    assert_eq!(event.correlation_id, "corr-officer-1");
    assert_eq!(event.version, EventVersion::V1);
    assert_eq!((event.source_domain.as_str(), event.source_system.as_str()), ("Person", "PersonAPI"));
    assert_eq!(event.date_time, now());
    assert_eq!((event.user.name.as_str(), event.user.email.as_str()), ("Olu Officer", "olu@hackney.gov.uk"));
    assert_eq!(event.event_data.new_data, serde_json::to_value(&person).unwrap());
    assert_eq!(event.event_data.new_data["personRef"], json!(1));
    assert_eq!(event.event_data.old_data, json!({}));
}

#[tokio::test]
async fn create_writes_the_first_history_entry_with_the_creation_reason() {
    let (service, _store) = setup();

    let person = create(&service).await;

    let history = service.history(&ctx(), person.id).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].version_number, 0);
    assert_eq!(history[0].event_type, EventType::PersonCreatedEvent);
    assert_eq!(history[0].reason.as_deref(), Some("New tenancy"));
    assert_eq!(history[0].actor.subject, "officer-1");
    assert_eq!(history[0].correlation_id, "corr-officer-1");
    assert_eq!(history[0].new_data, serde_json::to_value(&person).unwrap());
    assert_eq!(history[0].event_id, all_events(&service).await[0].event.id);
}

#[tokio::test]
async fn create_through_v2_marks_the_event_version_v2() {
    let (service, _store) = setup();
    let options = CreateOptions { event_version: EventVersion::V2, ..CreateOptions::default() };

    service.create(&ctx(), &body(), options).await.unwrap();

    let events = all_events(&service).await;
    assert_eq!(events[0].event.version, EventVersion::V2);
    assert_eq!(serde_json::to_value(&events[0].event).unwrap()["version"], "v2");
}

#[tokio::test]
async fn an_invalid_create_stores_nothing_and_consumes_no_person_ref() {
    let (service, _store) = setup();
    let mut bad = body_json();
    bad["firstName"] = json!("");
    bad["dateOfBirth"] = json!("2099-01-01");

    let result = service.create(&ctx(), bad.to_string().as_bytes(), CreateOptions::default()).await;

    let Err(CreatePersonError::Invalid(errors)) = result else { panic!("expected Invalid, got {result:?}") };
    assert!(errors.has_code("W15") && errors.has_code("W10"), "{errors:?}");
    assert!(all_events(&service).await.is_empty(), "no event for a refused create");
    assert_eq!(create(&service).await.person_ref, PersonRef(1));
}

#[tokio::test]
async fn a_malformed_create_body_is_a_body_error_and_stores_nothing() {
    let (service, _store) = setup();

    let result = service.create(&ctx(), b"{not json", CreateOptions::default()).await;

    assert!(matches!(result, Err(CreatePersonError::Body(BodyError::Malformed(_)))), "{result:?}");
    assert!(all_events(&service).await.is_empty());
}

#[tokio::test]
async fn a_client_supplied_id_is_kept() {
    let (service, _store) = setup();
    let id = Uuid::new_v4();
    let mut with_id = body_json();
    with_id["id"] = json!(id);

    let person = service.create(&ctx(), with_id.to_string().as_bytes(), CreateOptions::default()).await.unwrap().person;

    assert_eq!(person.id.as_uuid(), id);
    assert_eq!(service.get(&ctx(), person.id).await.unwrap(), person);
}

#[tokio::test]
async fn a_duplicate_client_supplied_id_is_duplicate_id() {
    let (service, _store) = setup();
    let id = Uuid::new_v4();
    let mut with_id = body_json();
    with_id["id"] = json!(id);
    service.create(&ctx(), with_id.to_string().as_bytes(), CreateOptions::default()).await.unwrap();

    let result = service.create(&ctx(), with_id.to_string().as_bytes(), CreateOptions::default()).await;

    assert!(matches!(result, Err(CreatePersonError::DuplicateId(dup)) if dup.as_uuid() == id), "{result:?}");
    assert_eq!(all_events(&service).await.len(), 1);
}

#[tokio::test]
async fn the_nil_id_is_invalid_at_id() {
    let (service, _store) = setup();
    let mut nil = body_json();
    nil["id"] = json!(Uuid::nil());

    let result = service.create(&ctx(), nil.to_string().as_bytes(), CreateOptions::default()).await;

    let Err(CreatePersonError::Invalid(errors)) = result else { panic!("expected Invalid, got {result:?}") };
    let found: Vec<_> = errors.errors().iter().map(|e| (e.field.as_str(), e.code.as_str())).collect();
    assert_eq!(found, vec![("/id", "invalid_id")]);
    assert!(all_events(&service).await.is_empty());
}

#[tokio::test]
async fn the_nil_id_is_reported_together_with_the_other_field_errors() {
    let (service, _store) = setup();
    let mut nil = body_json();
    nil["id"] = json!(Uuid::nil());
    nil["surname"] = json!("");

    let result = service.create(&ctx(), nil.to_string().as_bytes(), CreateOptions::default()).await;

    let Err(CreatePersonError::Invalid(errors)) = result else { panic!("expected Invalid, got {result:?}") };
    let mut found: Vec<_> = errors.errors().iter().map(|e| (e.field.as_str(), e.code.as_str())).collect();
    found.sort_unstable();
    assert_eq!(found, vec![("/id", "invalid_id"), ("/surname", "W16")]);
}

// ---------------------------------------------------------------------------------------------------------------
// idempotency

#[tokio::test]
async fn the_same_idempotency_key_and_body_replays_the_first_create() {
    let (service, _store) = setup();
    let first = service.create(&ctx(), &body(), with_key("retry-1")).await.unwrap();

    let again = service.create(&ctx(), &body(), with_key("retry-1")).await.unwrap();

    assert!(!first.replayed);
    assert!(again.replayed);
    assert_eq!(again.person, first.person);
    assert_eq!(all_events(&service).await.len(), 1, "exactly one person and one event");
    assert_eq!(create(&service).await.person_ref, PersonRef(2));
}

#[tokio::test]
async fn key_order_differences_in_the_json_still_count_as_the_same_body() {
    let (service, _store) = setup();
    let first = service.create(&ctx(), &body(), with_key("retry-2")).await.unwrap();
    let reordered = br#"{ "reason": "New tenancy", "personTypes": ["Tenant"], "dateOfBirth": "1990-05-17",
        "surname": "Lovelace", "middleName": "Augusta", "firstName": "Ada", "title": "Ms" }"#;

    let again = service.create(&ctx(), reordered, with_key("retry-2")).await.unwrap();

    assert!(again.replayed);
    assert_eq!(again.person.id, first.person.id);
    assert_eq!(all_events(&service).await.len(), 1);
}

#[tokio::test]
async fn the_same_idempotency_key_with_a_different_body_is_refused() {
    let (service, _store) = setup();
    service.create(&ctx(), &body(), with_key("retry-3")).await.unwrap();
    let mut other = body_json();
    other["firstName"] = json!("Grace");

    let result = service.create(&ctx(), other.to_string().as_bytes(), with_key("retry-3")).await;

    assert!(matches!(result, Err(CreatePersonError::IdempotencyKeyReused)), "{result:?}");
    assert_eq!(all_events(&service).await.len(), 1);
}

#[tokio::test]
async fn the_same_idempotency_key_through_the_other_endpoint_version_is_refused() {
    let (service, _store) = setup();
    service.create(&ctx(), &body(), with_key("retry-4")).await.unwrap();
    let v2 = CreateOptions { event_version: EventVersion::V2, ..with_key("retry-4") };

    let result = service.create(&ctx(), &body(), v2).await;

    assert!(matches!(result, Err(CreatePersonError::IdempotencyKeyReused)), "{result:?}");
}

#[tokio::test]
async fn idempotency_keys_are_scoped_per_actor() {
    let (service, _store) = setup();
    let mine = service.create(&ctx_for("alice"), &body(), with_key("shared-key")).await.unwrap();

    let options = CreateOptions { allow_duplicate: true, ..with_key("shared-key") };
    let theirs = service.create(&ctx_for("bob"), &body(), options).await.unwrap();

    assert!(!theirs.replayed);
    assert_ne!(theirs.person.id, mine.person.id);
    assert_eq!(all_events(&service).await.len(), 2);
}

#[tokio::test]
async fn an_empty_or_too_long_idempotency_key_is_refused_before_anything_is_stored() {
    let (service, _store) = setup();

    for key in [String::new(), "k".repeat(MAX_IDEMPOTENCY_KEY_LEN + 1)] {
        let result = service.create(&ctx(), &body(), with_key(&key)).await;

        assert!(matches!(result, Err(CreatePersonError::InvalidIdempotencyKey)), "{} chars: {result:?}", key.len());
    }
    assert!(all_events(&service).await.is_empty());
    let longest = service.create(&ctx(), &body(), with_key(&"k".repeat(MAX_IDEMPOTENCY_KEY_LEN))).await;
    assert!(longest.is_ok(), "{longest:?}");
}

#[tokio::test]
async fn an_invalid_create_under_an_idempotency_key_does_not_burn_the_key() {
    let (service, _store) = setup();
    let mut bad = body_json();
    bad["surname"] = json!("");
    let refused = service.create(&ctx(), bad.to_string().as_bytes(), with_key("retry-5")).await;
    assert!(matches!(refused, Err(CreatePersonError::Invalid(_))), "{refused:?}");

    let fixed = service.create(&ctx(), &body(), with_key("retry-5")).await.unwrap();

    assert!(!fixed.replayed);
    assert_eq!(fixed.person.person_ref, PersonRef(1));
}

// ---------------------------------------------------------------------------------------------------------------
// get

#[tokio::test]
async fn get_of_an_unknown_id_is_not_found() {
    let (service, _store) = setup();

    let result = service.get(&ctx(), PersonId::new(Uuid::new_v4()).unwrap()).await;

    assert!(matches!(result, Err(LookupError::NotFound)), "{result:?}");
}

#[tokio::test]
async fn get_of_a_deleted_person_is_deleted() {
    let (service, _store) = setup();
    let person = create(&service).await;
    service.delete(&ctx(), person.id, None, None).await.unwrap();

    let result = service.get(&ctx(), person.id).await;

    assert!(matches!(result, Err(LookupError::Deleted)), "{result:?}");
}

#[tokio::test]
async fn get_of_a_merged_person_names_the_survivor() {
    let (service, store) = setup();
    let survivor = create(&service).await;
    let duplicate = create(&service).await;
    merge_via_repository(&store, &duplicate, survivor.id).await;

    let result = service.get(&ctx(), duplicate.id).await;

    assert!(matches!(result, Err(LookupError::Merged { into }) if into == survivor.id), "{result:?}");
    assert_eq!(service.get(&ctx(), survivor.id).await.unwrap(), survivor);
}

// ---------------------------------------------------------------------------------------------------------------
// update

#[tokio::test]
async fn update_with_a_stale_version_is_a_version_conflict_with_the_current_version() {
    let (service, _store) = setup();
    let person = create(&service).await;
    service.update(&ctx(), person.id, 0, br#"{"middleName": "Grace"}"#).await.unwrap();

    let result = service.update(&ctx(), person.id, 0, br#"{"middleName": "Mary"}"#).await;

    assert!(matches!(result, Err(UpdatePersonError::VersionConflict { current: 1 })), "{result:?}");
    let read = service.get(&ctx(), person.id).await.unwrap();
    assert_eq!(read.middle_name.as_ref().map(Name::as_str), Some("Grace"));
    assert_eq!(all_events(&service).await.len(), 2);
}

#[tokio::test]
async fn update_changes_only_the_given_keys_and_moves_the_version_and_last_modified() {
    let store = Arc::new(InMemoryStore::new());
    let person = create(&service_at(&store, now())).await;
    let later = now() + Duration::hours(2);
    let service = service_at(&store, later);

    let updated = service.update(&ctx(), person.id, 0, br#"{"middleName": "Grace", "reason": "Typo"}"#).await.unwrap();

    assert!(updated.changed);
    let expected = Person {
        middle_name: Some(Name::parse("Grace").unwrap()),
        version_number: 1,
        last_modified: later,
        ..person.clone()
    };
    assert_eq!(updated.person, expected);
    assert_eq!(updated.person.created_at, now());
    assert_eq!(updated.person.reason, "New tenancy", "the creation reason is kept");
    assert_eq!(service.get(&ctx(), person.id).await.unwrap(), expected);
}

#[tokio::test]
async fn update_records_the_change_reason_and_only_the_changed_keys_in_history_and_event() {
    let (service, _store) = setup();
    let person = create(&service).await;
    let other = ctx_for("officer-2");

    service
        .update(&other, person.id, 0, br#"{"middleName": null, "title": "Dr", "reason": "Doctorate"}"#)
        .await
        .unwrap();

    let history = service.history(&ctx(), person.id).await.unwrap();
    assert_eq!(history.iter().map(|h| h.version_number).collect::<Vec<_>>(), vec![0, 1]);
    let entry = &history[1];
    assert_eq!(entry.event_type, EventType::PersonUpdatedEvent);
    assert_eq!(entry.reason.as_deref(), Some("Doctorate"));
    assert_eq!(entry.actor.subject, "officer-2");
    assert_eq!(entry.old_data, json!({ "middleName": "Augusta", "title": "Ms" }));
    assert_eq!(entry.new_data, json!({ "middleName": null, "title": "Dr" }));
    let event = &all_events(&service).await[1].event;
    assert_eq!(event.event_type, EventType::PersonUpdatedEvent);
    assert_eq!(event.correlation_id, "corr-officer-2");
    assert_eq!(event.event_data.new_data, entry.new_data);
    assert_eq!(event.id, entry.event_id);
}

#[tokio::test]
async fn a_patch_that_changes_nothing_stores_and_publishes_nothing() {
    let (service, _store) = setup();
    let person = create(&service).await;

    let updated = service
        .update(&ctx(), person.id, 0, br#"{"firstName": " Ada ", "title": "Ms", "reason": "Just checking"}"#)
        .await
        .unwrap();

    assert!(!updated.changed);
    assert_eq!(updated.person, person);
    assert_eq!(service.get(&ctx(), person.id).await.unwrap().version_number, 0);
    assert_eq!(all_events(&service).await.len(), 1);
    assert_eq!(service.history(&ctx(), person.id).await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_invalid_patch_is_refused_and_stores_nothing() {
    let (service, _store) = setup();
    let person = create(&service).await;

    let result = service.update(&ctx(), person.id, 0, br#"{"firstName": null}"#).await;

    let Err(UpdatePersonError::Invalid(errors)) = result else { panic!("expected Invalid, got {result:?}") };
    assert!(errors.has_code("W15"));
    assert_eq!(service.get(&ctx(), person.id).await.unwrap(), person);
    assert_eq!(all_events(&service).await.len(), 1);
}

#[tokio::test]
async fn a_read_only_key_in_a_patch_is_a_body_error() {
    let (service, _store) = setup();
    let person = create(&service).await;

    let result = service.update(&ctx(), person.id, 0, br#"{"versionNumber": 5}"#).await;

    assert!(
        matches!(result, Err(UpdatePersonError::Body(BodyError::ReadOnlyField(ref k))) if k == "versionNumber"),
        "{result:?}"
    );
}

#[tokio::test]
async fn update_of_a_deleted_person_is_deleted() {
    let (service, _store) = setup();
    let person = create(&service).await;
    service.delete(&ctx(), person.id, Some(0), None).await.unwrap();

    let result = service.update(&ctx(), person.id, 1, br#"{"middleName": "Grace"}"#).await;

    assert!(matches!(result, Err(UpdatePersonError::Lookup(LookupError::Deleted))), "{result:?}");
}

// ---------------------------------------------------------------------------------------------------------------
// delete

#[tokio::test]
async fn delete_leaves_a_tombstone_publishes_an_event_and_keeps_history() {
    let (service, store) = setup();
    let person = create(&service).await;

    service.delete(&ctx(), person.id, Some(0), Some("Created in error".to_owned())).await.unwrap();

    assert!(matches!(service.get(&ctx(), person.id).await, Err(LookupError::Deleted)));
    let tombstone = store.get(person.id).await.unwrap().unwrap();
    assert_eq!((tombstone.status, tombstone.version_number), (PersonStatus::Deleted, 1));
    let events = all_events(&service).await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].event.event_type, EventType::PersonDeletedEvent);
    assert_eq!(events[1].event.entity_id, person.id);
    assert_eq!(events[1].event.event_data.old_data, serde_json::to_value(&person).unwrap());
    let history = service.history(&ctx(), person.id).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[1].event_type, EventType::PersonDeletedEvent);
    assert_eq!(history[1].reason.as_deref(), Some("Created in error"));
}

#[tokio::test]
async fn delete_with_a_stale_expected_version_is_a_version_conflict() {
    let (service, _store) = setup();
    let person = create(&service).await;
    service.update(&ctx(), person.id, 0, br#"{"middleName": "Grace"}"#).await.unwrap();

    let result = service.delete(&ctx(), person.id, Some(0), None).await;

    assert!(matches!(result, Err(UpdatePersonError::VersionConflict { current: 1 })), "{result:?}");
    assert!(service.get(&ctx(), person.id).await.is_ok(), "the person is still live");
}

#[tokio::test]
async fn deleting_twice_answers_deleted() {
    let (service, _store) = setup();
    let person = create(&service).await;
    service.delete(&ctx(), person.id, None, None).await.unwrap();

    let result = service.delete(&ctx(), person.id, None, None).await;

    assert!(matches!(result, Err(UpdatePersonError::Lookup(LookupError::Deleted))), "{result:?}");
    assert_eq!(all_events(&service).await.len(), 2);
}

// ---------------------------------------------------------------------------------------------------------------
// history and events

#[tokio::test]
async fn history_of_an_unknown_id_is_not_found() {
    let (service, _store) = setup();

    let result = service.history(&ctx(), PersonId::new(Uuid::new_v4()).unwrap()).await;

    assert!(matches!(result, Err(LookupError::NotFound)), "{result:?}");
}

#[tokio::test]
async fn events_page_through_the_feed_with_next_after() {
    let (service, _store) = setup();
    let ids = [create(&service).await.id, create(&service).await.id, create(&service).await.id];

    let first = service.events(&ctx(), 0, 2).await.unwrap();
    let second = service.events(&ctx(), first.next_after, 2).await.unwrap();
    let third = service.events(&ctx(), second.next_after, 2).await.unwrap();

    assert_eq!(first.entries.iter().map(|e| e.event.entity_id).collect::<Vec<_>>(), ids[..2]);
    assert_eq!(first.next_after, 2);
    assert_eq!(second.entries.iter().map(|e| e.event.entity_id).collect::<Vec<_>>(), ids[2..]);
    assert_eq!(second.next_after, 3);
    assert!(third.entries.is_empty());
    assert_eq!(third.next_after, 3, "an empty page keeps the cursor");
}

#[tokio::test]
async fn an_events_limit_of_zero_is_clamped_to_one() {
    let (service, _store) = setup();
    create(&service).await;
    create(&service).await;

    let page = service.events(&ctx(), 0, 0).await.unwrap();

    assert_eq!(page.entries.len(), 1);
}

#[tokio::test]
async fn ready_answers_when_the_store_does() {
    let (service, _store) = setup();

    assert!(service.ready().await.is_ok());
}

#[tokio::test]
async fn today_is_the_clock_date() {
    let (service, _store) = setup();

    assert_eq!(service.today(), date(2026, 1, 10));
}

// ---------------------------------------------------------------------------------------------------------------
// PersonResponse: computed values

fn response_for(date_of_birth: Option<NaiveDate>, tenures: Vec<TenureSummary>) -> PersonResponse {
    let person = Person {
        id: PersonId::new(Uuid::new_v4()).unwrap(),
        person_ref: PersonRef(1),
        title: Some(Title::Mr),
        preferred_title: None,
        first_name: Some(Name::parse("Sam").unwrap()),
        middle_name: None,
        surname: Name::parse("Smith").unwrap(),
        single_name: false,
        preferred_first_name: None,
        preferred_middle_name: None,
        preferred_surname: None,
        place_of_birth: None,
        date_of_birth,
        date_of_death: None,
        person_types: vec![PersonType::HouseholdMember],
        tenures,
        reason: "New tenancy".to_owned(),
        version_number: 0,
        created_at: now(),
        last_modified: now(),
        status: PersonStatus::Active,
        processing_restricted: false,
        references: Vec::new(),
    };
    PersonResponse::new(&person, date(2026, 1, 10), vec![])
}

#[test]
fn is_a_minor_is_null_without_a_date_of_birth() {
    assert_eq!(response_for(None, vec![]).is_a_minor, None);
    assert_eq!(serde_json::to_value(response_for(None, vec![])).unwrap()["isAMinor"], Value::Null);
}

#[test]
fn is_a_minor_is_true_at_17_years_and_364_days() {
    assert_eq!(response_for(Some(date(2008, 1, 11)), vec![]).is_a_minor, Some(true));
}

#[test]
fn is_a_minor_is_false_on_the_18th_birthday() {
    assert_eq!(response_for(Some(date(2008, 1, 10)), vec![]).is_a_minor, Some(false));
}

#[test]
fn tenures_are_sorted_active_then_secure_then_latest_start_in_the_response() {
    let tenure = |kind: &str, start: NaiveDate, end: Option<NaiveDate>| TenureSummary {
        id: Uuid::new_v4(),
        tenure_type: Some(kind.to_owned()),
        start_date: Some(start),
        end_date: end,
        asset_full_address: None,
        asset_id: None,
        uprn: None,
        postcode: None,
        payment_reference: None,
        property_reference: None,
    };
    let ended = tenure("Secure", date(2020, 1, 1), Some(date(2021, 1, 1)));
    let introductory = tenure("Introductory", date(2024, 1, 1), None);
    let old_secure = tenure("Secure", date(2010, 1, 1), Some(crate::person::NO_END_SENTINEL));
    let new_secure = tenure("Secure", date(2015, 1, 1), Some(date(2030, 1, 1)));

    let response =
        response_for(None, vec![ended.clone(), introductory.clone(), old_secure.clone(), new_secure.clone()]);

    let order: Vec<(Uuid, bool)> = response.tenures.iter().map(|t| (t.id, t.is_active)).collect();
    assert_eq!(order, vec![(new_secure.id, true), (old_secure.id, true), (introductory.id, true), (ended.id, false)]);
}

// ---------------------------------------------------------------------------------------------------------------
// The service over mocked ports: how store answers are mapped

/// The service over mocked ports; a mock without expectations fails the test if it is called at all, except the
/// duplicate check's candidate look-up, which finds nobody.
fn mocked_with(
    mut repo: MockPersonRepository,
    documents: MockDocumentRepository,
    audit: MockAuditLog,
) -> PersonService {
    repo.expect_candidates().returning(|_, _| Ok(Vec::new()));
    let unused = Arc::new(crate::memory::InMemoryStore::new());
    let repos = Repositories {
        persons: Arc::new(repo),
        documents: Arc::new(documents),
        audit: Arc::new(audit),
        reporting: Arc::new(crate::ports::MockReportingRepository::new()),
        relay: Arc::new(crate::ports::MockRelayRepository::new()),
        import: Arc::new(crate::ports::MockImportRepository::new()),
        catalogue: unused,
    };
    PersonService::new(repos, Arc::new(FixedClock(now())), Arc::new(RandomIds))
}

fn mocked(repo: MockPersonRepository) -> PersonService {
    mocked_with(repo, MockDocumentRepository::new(), MockAuditLog::new())
}

fn unavailable() -> StoreError {
    StoreError::Unavailable("connection refused".into())
}

fn live_person() -> Person {
    Person {
        id: PersonId::new(Uuid::new_v4()).unwrap(),
        person_ref: PersonRef(12),
        title: Some(Title::Ms),
        preferred_title: None,
        first_name: Some(Name::parse("Ada").unwrap()),
        middle_name: None,
        surname: Name::parse("Lovelace").unwrap(),
        single_name: false,
        preferred_first_name: None,
        preferred_middle_name: None,
        preferred_surname: None,
        place_of_birth: None,
        date_of_birth: Some(date(1990, 5, 17)),
        date_of_death: None,
        person_types: vec![PersonType::Tenant],
        tenures: vec![],
        reason: "New tenancy".to_owned(),
        version_number: 4,
        created_at: now(),
        last_modified: now(),
        status: PersonStatus::Active,
        processing_restricted: false,
        references: Vec::new(),
    }
}

#[tokio::test]
async fn a_store_failure_on_insert_surfaces_as_create_store_error() {
    let mut repo = MockPersonRepository::new();
    repo.expect_insert().times(1).returning(|_| Err(InsertError::Store(unavailable())));

    let result = mocked(repo).create(&ctx(), &body(), CreateOptions::default()).await;

    assert!(matches!(result, Err(CreatePersonError::Store(StoreError::Unavailable(_)))), "{result:?}");
}

#[tokio::test]
async fn a_duplicate_id_from_the_store_maps_to_duplicate_id_with_the_id() {
    let mut repo = MockPersonRepository::new();
    let seen = Arc::new(Mutex::new(None));
    let seen_in_mock = seen.clone();
    repo.expect_insert().times(1).returning(move |write| {
        *seen_in_mock.lock().unwrap() = Some(write.id());
        Err(InsertError::DuplicateId)
    });

    let result = mocked(repo).create(&ctx(), &body(), CreateOptions::default()).await;

    let attempted = seen.lock().unwrap().expect("insert was called");
    assert!(matches!(result, Err(CreatePersonError::DuplicateId(id)) if id == attempted), "{result:?}");
}

#[tokio::test]
async fn the_service_hands_the_store_a_complete_version_zero_write() {
    let mut repo = MockPersonRepository::new();
    repo.expect_insert().times(1).returning(|write| {
        let assigned = write.assign(PersonRef(99));
        assert_eq!(assigned.person.version_number, 0);
        assert_eq!(assigned.history.version_number, 0);
        assert_eq!(assigned.event.entity_id, assigned.person.id);
        assert_eq!(assigned.history.event_id, assigned.event.id);
        assert_eq!(assigned.event.event_data.new_data["personRef"], json!(99));
        assert!(assigned.idempotency.is_none());
        Ok(assigned.person)
    });

    let created = mocked(repo).create(&ctx(), &body(), CreateOptions::default()).await.unwrap();

    assert_eq!(created.person.person_ref, PersonRef(99));
}

#[tokio::test]
async fn an_invalid_create_never_reaches_the_store() {
    let mut repo = MockPersonRepository::new();
    repo.expect_insert().never();

    let result = mocked(repo).create(&ctx(), br#"{"surname": "Lovelace"}"#, CreateOptions::default()).await;

    assert!(matches!(result, Err(CreatePersonError::Invalid(_))), "{result:?}");
}

#[tokio::test]
async fn losing_an_idempotent_create_race_replays_the_winner() {
    let mut repo = MockPersonRepository::new();
    let winner: Arc<Mutex<Option<IdempotencyRecord>>> = Arc::new(Mutex::new(None));
    let stored_by_winner = winner.clone();
    repo.expect_find_idempotent_create().times(2).returning(move |_| Ok(winner.lock().unwrap().clone()));
    repo.expect_insert().times(1).returning(move |write| {
        // A concurrent retry with the same key and body committed first.
        *stored_by_winner.lock().unwrap() = write.assign(PersonRef(41)).idempotency;
        Err(InsertError::IdempotencyKeyTaken)
    });

    let created = mocked(repo).create(&ctx(), &body(), with_key("race")).await.unwrap();

    assert!(created.replayed);
    assert_eq!(created.person.person_ref, PersonRef(41));
}

#[tokio::test]
async fn a_store_failure_on_idempotency_lookup_surfaces_as_store_error() {
    let mut repo = MockPersonRepository::new();
    repo.expect_find_idempotent_create().returning(|_| Err(unavailable()));
    repo.expect_insert().never();

    let result = mocked(repo).create(&ctx(), &body(), with_key("k")).await;

    assert!(matches!(result, Err(CreatePersonError::Store(_))), "{result:?}");
}

#[tokio::test]
async fn a_store_failure_on_get_surfaces_as_lookup_store_error() {
    let mut repo = MockPersonRepository::new();
    repo.expect_get().returning(|_| Err(unavailable()));

    let result = mocked(repo).get(&ctx(), PersonId::new(Uuid::new_v4()).unwrap()).await;

    assert!(matches!(result, Err(LookupError::Store(StoreError::Unavailable(_)))), "{result:?}");
}

#[tokio::test]
async fn a_version_conflict_at_write_time_is_reported_with_the_stores_version() {
    let person = live_person();
    let mut repo = MockPersonRepository::new();
    let current = person.clone();
    repo.expect_get().returning(move |_| Ok(Some(current.clone())));
    repo.expect_update()
        .times(1)
        .withf(|write| write.expected_version == 4 && write.person.version_number == 5)
        .returning(|_| Err(UpdateError::VersionConflict { current: 5 }));

    let result = mocked(repo).update(&ctx(), person.id, 4, br#"{"middleName": "Grace"}"#).await;

    assert!(matches!(result, Err(UpdatePersonError::VersionConflict { current: 5 })), "{result:?}");
}

#[tokio::test]
async fn a_person_gone_at_write_time_is_not_found() {
    let person = live_person();
    let mut repo = MockPersonRepository::new();
    let current = person.clone();
    repo.expect_get().returning(move |_| Ok(Some(current.clone())));
    repo.expect_update().returning(|_| Err(UpdateError::NotFound));

    let result = mocked(repo).update(&ctx(), person.id, 4, br#"{"middleName": "Grace"}"#).await;

    assert!(matches!(result, Err(UpdatePersonError::Lookup(LookupError::NotFound))), "{result:?}");
}

#[tokio::test]
async fn a_store_failure_on_update_surfaces_as_lookup_store_error() {
    let person = live_person();
    let mut repo = MockPersonRepository::new();
    let current = person.clone();
    repo.expect_get().returning(move |_| Ok(Some(current.clone())));
    repo.expect_update().returning(|_| Err(UpdateError::Store(unavailable())));

    let result = mocked(repo).update(&ctx(), person.id, 4, br#"{"middleName": "Grace"}"#).await;

    assert!(matches!(result, Err(UpdatePersonError::Lookup(LookupError::Store(_)))), "{result:?}");
}

#[tokio::test]
async fn a_nil_generated_id_is_never_used_for_a_person() {
    let mut ids = MockIdGenerator::new();
    let calls = AtomicUsize::new(0);
    ids.expect_new_id().returning(
        move || {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 { Uuid::nil() } else { Uuid::new_v4() }
        },
    );
    let store = Arc::new(InMemoryStore::new());
    let service = PersonService::new(Repositories::from_store(store), Arc::new(FixedClock(now())), Arc::new(ids));

    let person = service.create(&ctx(), &body(), CreateOptions::default()).await.unwrap().person;

    assert!(!person.id.as_uuid().is_nil());
}

// ---------------------------------------------------------------------------------------------------------------
// Shared helpers for access control, documents and the audit trail

fn social_care() -> ServiceArea {
    ServiceArea::parse("social-care").unwrap()
}

fn housing_needs() -> ServiceArea {
    ServiceArea::parse("housing-needs").unwrap()
}

/// Every permission except `admin` (including social care's extended data): what the restriction must still stop.
fn everything_but_admin() -> RequestContext {
    let mut permissions: Permissions = Permission::FIXED.iter().filter(|p| **p != Permission::Admin).cloned().collect();
    permissions.extend([Permission::ExtendedRead(social_care()), Permission::ExtendedWrite(social_care())]);
    ctx_with("auditor-1", permissions)
}

/// An equality officer, declaring why they act.
fn equality_officer() -> RequestContext {
    let permissions =
        [Permission::PersonsRead, Permission::EqualityRead, Permission::EqualityWrite].into_iter().collect();
    RequestContext { purpose: Some("equality monitoring".to_owned()), ..ctx_with("equality-1", permissions) }
}

/// A social worker, holding social care's extended data only.
fn social_worker() -> RequestContext {
    let permissions =
        [Permission::PersonsRead, Permission::ExtendedRead(social_care()), Permission::ExtendedWrite(social_care())]
            .into_iter()
            .collect();
    ctx_with("social-worker-1", permissions)
}

/// Restricts `id` as an administrator.
async fn restrict(service: &PersonService, id: PersonId) -> Updated {
    service.set_restriction(&admin(), id, true, None, Some("Article 18 request".to_owned())).await.unwrap()
}

/// Every audit entry naming `id`, read from the store directly (reading through the service would add one).
async fn audit_of(store: &InMemoryStore, id: PersonId) -> Vec<AuditEntry> {
    AuditLog::entries_for_person(store, id, 0, 10_000).await.unwrap().into_iter().map(|r| r.entry).collect()
}

fn unknown_id() -> PersonId {
    PersonId::new(Uuid::new_v4()).unwrap()
}

fn equality_json() -> Value {
    json!({
        "gender": { "code": "woman" },
        "sexRegisteredAtBirth": "female",
        "nationalities": ["gb", "IE"],
        "ethnicity": { "code": "white-other", "description": "Polish" },
        "religion": { "code": "no-religion" },
        "languages": [{ "language": "Polish", "isPrimary": true }, { "language": "English" }],
        "communicationRequirements": ["Interpreter"],
        "nationalInsuranceNumber": "ab 12 34 56 c"
    })
}

fn equality_body() -> Vec<u8> {
    equality_json().to_string().into_bytes()
}

fn equality_of(document: &StoredDocument) -> &EqualityData {
    match &document.body {
        DocumentBody::Equality(data) => data,
        DocumentBody::Extended(_) => panic!("expected equality data"),
    }
}

fn extended_of(document: &StoredDocument) -> &Map<String, Value> {
    match &document.body {
        DocumentBody::Extended(map) => map,
        DocumentBody::Equality(_) => panic!("expected extended data"),
    }
}

async fn put_equality_as(
    service: &PersonService,
    id: PersonId,
    value: &Value,
) -> Result<StoredDocument, DocumentError> {
    service.put_equality(&equality_officer(), id, None, value.to_string().as_bytes()).await
}

fn invalid_fields(result: &Result<StoredDocument, DocumentError>) -> Vec<(String, String)> {
    let Err(DocumentError::Invalid(errors)) = result else { panic!("expected Invalid, got {result:?}") };
    errors.errors().iter().map(|e| (e.field.clone(), e.code.clone())).collect()
}

// ---------------------------------------------------------------------------------------------------------------
// restriction of processing

#[tokio::test]
async fn a_restricted_person_is_refused_to_every_non_admin_operation() {
    let (service, store) = setup();
    let person = create(&service).await;
    restrict(&service, person.id).await;
    let caller = everything_but_admin();
    let area = social_care();

    let get = service.get(&caller, person.id).await;
    let history = service.history(&caller, person.id).await;
    let update = service.update(&caller, person.id, 1, br#"{"middleName": "Grace"}"#).await;
    let delete = service.delete(&caller, person.id, None, None).await;
    let restriction = service.set_restriction(&caller, person.id, false, None, None).await;
    let equality = service.equality(&caller, person.id).await;
    let put_equality = service.put_equality(&caller, person.id, None, &equality_body()).await;
    let extended = service.extended(&caller, person.id, &area).await;
    let put_extended = service.put_extended(&caller, person.id, &area, None, br#"{"a": 1}"#).await;
    let delete_extended = service.delete_extended(&caller, person.id, &area, None).await;

    assert!(matches!(get, Err(LookupError::Restricted)), "{get:?}");
    assert!(matches!(history, Err(LookupError::Restricted)), "{history:?}");
    assert!(matches!(update, Err(UpdatePersonError::Lookup(LookupError::Restricted))), "{update:?}");
    assert!(matches!(delete, Err(UpdatePersonError::Lookup(LookupError::Restricted))), "{delete:?}");
    assert!(matches!(restriction, Err(UpdatePersonError::Lookup(LookupError::Restricted))), "{restriction:?}");
    assert!(matches!(equality, Err(DocumentError::Lookup(LookupError::Restricted))), "{equality:?}");
    assert!(matches!(put_equality, Err(DocumentError::Lookup(LookupError::Restricted))), "{put_equality:?}");
    assert!(matches!(extended, Err(DocumentError::Lookup(LookupError::Restricted))), "{extended:?}");
    assert!(matches!(put_extended, Err(DocumentError::Lookup(LookupError::Restricted))), "{put_extended:?}");
    assert!(matches!(delete_extended, Err(DocumentError::Lookup(LookupError::Restricted))), "{delete_extended:?}");
    let stored = store.get(person.id).await.unwrap().unwrap();
    assert_eq!((stored.version_number, stored.status, stored.processing_restricted), (1, PersonStatus::Active, true));
    assert!(store.list_documents(person.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn deleting_extended_data_of_a_restricted_person_does_not_reveal_whether_a_document_exists() {
    let (service, _store) = setup();
    let with_document = create(&service).await;
    let without_document = create(&service).await;
    service.put_extended(&admin(), with_document.id, &social_care(), None, br#"{"a": 1}"#).await.unwrap();
    restrict(&service, with_document.id).await;
    restrict(&service, without_document.id).await;

    let with = service.delete_extended(&social_worker(), with_document.id, &social_care(), None).await;
    let without = service.delete_extended(&social_worker(), without_document.id, &social_care(), None).await;

    assert!(matches!(with, Err(DocumentError::Lookup(LookupError::Restricted))), "{with:?}");
    assert!(matches!(without, Err(DocumentError::Lookup(LookupError::Restricted))), "{without:?}");
    assert!(service.extended(&admin(), with_document.id, &social_care()).await.is_ok(), "the document is kept");
}

#[tokio::test]
async fn an_admin_reads_a_restricted_person_and_its_history() {
    let (service, _store) = setup();
    let person = create(&service).await;
    let restricted = restrict(&service, person.id).await.person;

    let read = service.get(&admin(), person.id).await.unwrap();
    let history = service.history(&admin(), person.id).await.unwrap();

    assert_eq!(read, restricted);
    assert!(read.processing_restricted);
    assert_eq!(history.iter().map(|h| h.version_number).collect::<Vec<_>>(), vec![0, 1]);
}

#[tokio::test]
async fn an_admin_update_of_a_restricted_person_keeps_the_restriction() {
    let (service, store) = setup();
    let person = create(&service).await;
    restrict(&service, person.id).await;

    let updated = service.update(&admin(), person.id, 1, br#"{"middleName": "Grace"}"#).await.unwrap();

    assert!(updated.changed);
    assert!(updated.person.processing_restricted, "a patch cannot lift the restriction");
    assert!(store.get(person.id).await.unwrap().unwrap().processing_restricted);
    let event = &service.events(&admin(), 0, MAX_FEED_LIMIT).await.unwrap().entries[2].event;
    assert_eq!(event.event_data.new_data, json!({ "middleName": "Grace" }), "only the patched key changed");
    assert!(matches!(service.get(&ctx(), person.id).await, Err(LookupError::Restricted)));
}

#[tokio::test]
async fn a_patch_that_changes_nothing_on_a_restricted_person_stores_nothing() {
    let (service, _store) = setup();
    let person = create(&service).await;
    restrict(&service, person.id).await;

    let updated = service.update(&admin(), person.id, 1, br#"{"middleName": "Augusta"}"#).await.unwrap();

    assert!(!updated.changed);
    assert_eq!(updated.person.version_number, 1);
    assert_eq!(service.events(&admin(), 0, MAX_FEED_LIMIT).await.unwrap().entries.len(), 2);
}

#[tokio::test]
async fn set_restriction_makes_a_new_version_with_an_update_event_holding_only_processing_restricted() {
    let (service, store) = setup();
    let person = create(&service).await;

    let updated =
        service.set_restriction(&admin(), person.id, true, Some(0), Some("Art. 18".to_owned())).await.unwrap();

    assert!(updated.changed);
    assert_eq!(updated.person, Person { processing_restricted: true, version_number: 1, ..person.clone() });
    assert_eq!(store.get(person.id).await.unwrap(), Some(updated.person.clone()));
    let events = service.events(&admin(), 0, MAX_FEED_LIMIT).await.unwrap().entries;
    assert_eq!(events.len(), 2);
    let event = &events[1].event;
    assert_eq!(event.event_type, EventType::PersonUpdatedEvent);
    assert_eq!(event.correlation_id, "corr-admin-1");
    let keys = |data: &Value| data.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&event.event_data.old_data), vec!["processingRestricted"]);
    assert_eq!(keys(&event.event_data.new_data), vec!["processingRestricted"]);
    assert_eq!(event.event_data.new_data["processingRestricted"], json!(true));
    assert_ne!(event.event_data.old_data["processingRestricted"], json!(true));
    let history = service.history(&admin(), person.id).await.unwrap();
    assert_eq!(history[1].reason.as_deref(), Some("Art. 18"));
    assert_eq!(history[1].event_id, event.id);
    let restriction = audit_of(&store, person.id).await.into_iter().find(|e| e.action == AuditAction::PersonRestrict);
    let restriction = restriction.expect("the restriction is audited");
    assert_eq!((restriction.detail.as_deref(), restriction.outcome), (Some("restricted"), AuditOutcome::Success));
}

#[tokio::test]
async fn setting_the_restriction_it_already_has_changes_nothing() {
    let (service, store) = setup();
    let open = create(&service).await;
    let person = create(&service).await;
    restrict(&service, person.id).await;

    let again = service.set_restriction(&admin(), person.id, true, None, None).await.unwrap();
    let lift_open = service.set_restriction(&admin(), open.id, false, None, None).await.unwrap();

    assert!(!again.changed);
    assert_eq!(again.person.version_number, 1);
    assert!(!lift_open.changed);
    assert_eq!(lift_open.person, open);
    assert_eq!(service.events(&admin(), 0, MAX_FEED_LIMIT).await.unwrap().entries.len(), 3);
    let restrictions =
        audit_of(&store, person.id).await.iter().filter(|e| e.action == AuditAction::PersonRestrict).count();
    assert_eq!(restrictions, 1);
}

#[tokio::test]
async fn lifting_the_restriction_makes_the_person_readable_again() {
    let (service, _store) = setup();
    let person = create(&service).await;
    restrict(&service, person.id).await;

    let lifted = service.set_restriction(&admin(), person.id, false, Some(1), None).await.unwrap();

    assert!(lifted.changed);
    assert_eq!(lifted.person.version_number, 2);
    let read = service.get(&ctx(), person.id).await.unwrap();
    assert!(!read.processing_restricted);
}

#[tokio::test]
async fn set_restriction_with_a_stale_version_is_a_version_conflict() {
    let (service, _store) = setup();
    let person = create(&service).await;
    service.update(&ctx(), person.id, 0, br#"{"middleName": "Grace"}"#).await.unwrap();

    let result = service.set_restriction(&admin(), person.id, true, Some(0), None).await;

    assert!(matches!(result, Err(UpdatePersonError::VersionConflict { current: 1 })), "{result:?}");
    assert!(service.get(&ctx(), person.id).await.is_ok(), "still unrestricted");
}

#[tokio::test]
async fn the_feed_omits_a_restricted_persons_events_for_non_admins_and_moves_the_cursor_past_them() {
    let (service, _store) = setup();
    let open = create(&service).await;
    let hidden = create(&service).await;
    restrict(&service, hidden.id).await;

    let whole = service.events(&ctx(), 0, MAX_FEED_LIMIT).await.unwrap();
    let only_hidden = service.events(&ctx(), 1, 2).await.unwrap();

    assert_eq!(whole.entries.iter().map(|e| e.event.entity_id).collect::<Vec<_>>(), vec![open.id]);
    assert_eq!(whole.next_after, 3, "the cursor moves past the omitted events");
    assert!(only_hidden.entries.is_empty());
    assert_eq!(only_hidden.next_after, 3, "a page of omitted events still advances the cursor");
}

#[tokio::test]
async fn the_feed_shows_a_restricted_persons_events_to_admins() {
    let (service, _store) = setup();
    let open = create(&service).await;
    let hidden = create(&service).await;
    restrict(&service, hidden.id).await;

    let page = service.events(&admin(), 0, MAX_FEED_LIMIT).await.unwrap();

    let seen: Vec<(u64, PersonId)> = page.entries.iter().map(|e| (e.position, e.event.entity_id)).collect();
    assert_eq!(seen, vec![(1, open.id), (2, hidden.id), (3, hidden.id)]);
    assert_eq!(page.next_after, 3);
}

// ---------------------------------------------------------------------------------------------------------------
// the audit trail

#[tokio::test]
async fn a_read_is_audited_with_the_actor_correlation_id_and_purpose() {
    let (service, store) = setup();
    let person = create(&service).await;
    let caller = RequestContext { purpose: Some("tenancy check".to_owned()), ..ctx_for("reader-1") };

    service.get(&caller, person.id).await.unwrap();

    let entries = audit_of(&store, person.id).await;
    assert_eq!(entries.len(), 2, "the create and the read");
    let read = &entries[1];
    assert_eq!(read.action, AuditAction::PersonRead);
    assert_eq!(read.actor.subject, "reader-1");
    assert_eq!(read.correlation_id, "corr-reader-1");
    assert_eq!(read.purpose.as_deref(), Some("tenancy check"));
    assert_eq!(read.person_ids, vec![person.id]);
    assert_eq!(read.outcome, AuditOutcome::Success);
    assert_eq!(read.at, now());
    assert_eq!(entries[0].purpose, None, "the create declared no purpose");
}

#[tokio::test]
async fn reads_of_unknown_deleted_and_merged_persons_are_audited_as_not_found() {
    let (service, store) = setup();
    let deleted = create(&service).await;
    service.delete(&ctx(), deleted.id, None, None).await.unwrap();
    let survivor = create(&service).await;
    let merged = create(&service).await;
    merge_via_repository(&store, &merged, survivor.id).await;
    let unknown = unknown_id();

    assert!(service.get(&ctx(), unknown).await.is_err());
    assert!(service.history(&ctx(), unknown).await.is_err());
    assert!(service.get(&ctx(), deleted.id).await.is_err());
    assert!(service.get(&ctx(), merged.id).await.is_err());

    let outcomes = |entries: Vec<AuditEntry>| entries.into_iter().map(|e| (e.action, e.outcome)).collect::<Vec<_>>();
    assert_eq!(
        outcomes(audit_of(&store, unknown).await),
        vec![(AuditAction::PersonRead, AuditOutcome::NotFound), (AuditAction::HistoryRead, AuditOutcome::NotFound)]
    );
    assert_eq!(
        outcomes(audit_of(&store, deleted.id).await).last(),
        Some(&(AuditAction::PersonRead, AuditOutcome::NotFound))
    );
    assert_eq!(
        outcomes(audit_of(&store, merged.id).await).last(),
        Some(&(AuditAction::PersonRead, AuditOutcome::NotFound))
    );
}

#[tokio::test]
async fn refused_reads_of_a_restricted_person_are_audited_as_denied() {
    let (service, store) = setup();
    let person = create(&service).await;
    restrict(&service, person.id).await;
    let caller = everything_but_admin();

    let _ = service.get(&caller, person.id).await;
    let _ = service.history(&caller, person.id).await;
    let _ = service.equality(&caller, person.id).await;
    let _ = service.extended(&caller, person.id, &social_care()).await;

    let refused: Vec<(AuditAction, AuditOutcome, String)> = audit_of(&store, person.id)
        .await
        .into_iter()
        .filter(|e| e.actor.subject == "auditor-1")
        .map(|e| (e.action, e.outcome, e.correlation_id))
        .collect();
    let denied = |action| (action, AuditOutcome::Denied, "corr-auditor-1".to_owned());
    assert_eq!(
        refused,
        vec![
            denied(AuditAction::PersonRead),
            denied(AuditAction::HistoryRead),
            denied(AuditAction::EqualityRead),
            denied(AuditAction::ExtendedRead)
        ]
    );
}

#[tokio::test]
async fn history_equality_and_extended_reads_are_audited_with_their_action_and_outcome() {
    let (service, store) = setup();
    let person = create(&service).await;

    service.history(&ctx(), person.id).await.unwrap();
    let missing = service.equality(&equality_officer(), person.id).await;
    put_equality_as(&service, person.id, &equality_json()).await.unwrap();
    service.equality(&equality_officer(), person.id).await.unwrap();
    service.put_extended(&social_worker(), person.id, &social_care(), None, br#"{"plan": "weekly"}"#).await.unwrap();
    service.extended(&social_worker(), person.id, &social_care()).await.unwrap();

    assert!(matches!(missing, Err(DocumentError::NotFound)), "{missing:?}");
    let entries: Vec<(AuditAction, AuditOutcome, Option<String>, Option<String>)> = audit_of(&store, person.id)
        .await
        .into_iter()
        .skip(1)
        .map(|e| (e.action, e.outcome, e.detail, e.purpose))
        .collect();
    let area = Some("area=social-care".to_owned());
    let purpose = Some("equality monitoring".to_owned());
    assert_eq!(
        entries,
        vec![
            (AuditAction::HistoryRead, AuditOutcome::Success, None, None),
            (AuditAction::EqualityRead, AuditOutcome::NotFound, None, purpose.clone()),
            (AuditAction::EqualityWrite, AuditOutcome::Success, None, purpose.clone()),
            (AuditAction::EqualityRead, AuditOutcome::Success, None, purpose),
            (AuditAction::ExtendedWrite, AuditOutcome::Success, area.clone(), None),
            (AuditAction::ExtendedRead, AuditOutcome::Success, area, None),
        ]
    );
}

#[tokio::test]
async fn creates_updates_and_deletes_appear_in_the_access_log_with_their_actors() {
    let (service, _store) = setup();
    let person = service.create(&ctx_for("creator"), &body(), CreateOptions::default()).await.unwrap().person;
    service.update(&ctx_for("editor"), person.id, 0, br#"{"middleName": "Grace"}"#).await.unwrap();
    service.delete(&ctx_for("remover"), person.id, Some(1), None).await.unwrap();

    let log = service.access_log(&everything_but_admin(), person.id, 0, MAX_ACCESS_LOG_LIMIT).await.unwrap();

    let entries: Vec<(AuditAction, &str, &str, AuditOutcome)> = log
        .iter()
        .map(|r| (r.entry.action, r.entry.actor.subject.as_str(), r.entry.correlation_id.as_str(), r.entry.outcome))
        .collect();
    assert_eq!(
        entries,
        vec![
            (AuditAction::PersonCreate, "creator", "corr-creator", AuditOutcome::Success),
            (AuditAction::PersonUpdate, "editor", "corr-editor", AuditOutcome::Success),
            (AuditAction::PersonDelete, "remover", "corr-remover", AuditOutcome::Success),
        ]
    );
    assert!(log.windows(2).all(|w| w[0].position < w[1].position));
}

#[tokio::test]
async fn refused_changes_record_no_audit_entry() {
    let (service, store) = setup();
    let person = create(&service).await;

    let _ = service.update(&ctx(), person.id, 7, br#"{"middleName": "Grace"}"#).await;
    let _ = service.update(&ctx(), person.id, 0, br#"{"firstName": null}"#).await;
    let _ = service.update(&ctx(), person.id, 0, br#"{"middleName": "Augusta"}"#).await;
    let _ = service.delete(&ctx(), person.id, Some(3), None).await;

    let actions: Vec<AuditAction> = audit_of(&store, person.id).await.into_iter().map(|e| e.action).collect();
    assert_eq!(actions, vec![AuditAction::PersonCreate], "conflicts, invalid and empty patches change nothing");
}

#[tokio::test]
async fn record_denied_records_a_denied_entry_for_the_person() {
    let (service, store) = setup();
    let person = create(&service).await;
    let caller = RequestContext { purpose: Some("curious".to_owned()), ..ctx_for("housing-officer") };

    service
        .record_denied(&caller, AuditAction::ExtendedRead, Some(person.id), Some("area=social-care".to_owned()))
        .await
        .unwrap();
    service.record_denied(&caller, AuditAction::Search, None, None).await.unwrap();

    let entries = audit_of(&store, person.id).await;
    assert_eq!(entries.len(), 2, "the create and the refusal; the person-less refusal names nobody");
    let denied = &entries[1];
    assert_eq!((denied.action, denied.outcome), (AuditAction::ExtendedRead, AuditOutcome::Denied));
    assert_eq!(denied.actor.subject, "housing-officer");
    assert_eq!(denied.correlation_id, "corr-housing-officer");
    assert_eq!(denied.purpose.as_deref(), Some("curious"));
    assert_eq!(denied.detail.as_deref(), Some("area=social-care"));
}

#[tokio::test]
async fn the_access_log_pages_with_after_and_limit_and_records_only_first_page_reads() {
    let (service, _store) = setup();
    let person = create(&service).await;
    for _ in 0..3 {
        service.get(&ctx(), person.id).await.unwrap();
    }
    let auditor = everything_but_admin();

    let first = service.access_log(&auditor, person.id, 0, 2).await.unwrap();
    let second = service.access_log(&auditor, person.id, first[1].position, 2).await.unwrap();
    let rest = service.access_log(&auditor, person.id, second[1].position, MAX_ACCESS_LOG_LIMIT).await.unwrap();
    let one = service.access_log(&auditor, person.id, 0, 0).await.unwrap();

    let actions = |page: &[AuditRecord]| page.iter().map(|r| r.entry.action).collect::<Vec<_>>();
    assert_eq!(actions(&first), vec![AuditAction::PersonCreate, AuditAction::PersonRead]);
    assert_eq!(actions(&second), vec![AuditAction::PersonRead, AuditAction::PersonRead]);
    assert_eq!(actions(&rest), vec![AuditAction::AccessLogRead], "only the first page's read is recorded");
    assert!(first[1].position < second[0].position && second[1].position < rest[0].position);
    assert_eq!(rest[0].entry.actor.subject, "auditor-1");
    assert_eq!(one.len(), 1, "a limit of zero is clamped to one");
}

#[tokio::test]
async fn the_access_log_works_for_restricted_and_deleted_persons_but_not_unknown_ones() {
    let (service, store) = setup();
    let restricted = create(&service).await;
    restrict(&service, restricted.id).await;
    let _ = service.get(&ctx(), restricted.id).await;
    let deleted = create(&service).await;
    service.delete(&ctx(), deleted.id, None, None).await.unwrap();
    let auditor = everything_but_admin();
    let unknown = unknown_id();

    let restricted_log = service.access_log(&auditor, restricted.id, 0, MAX_ACCESS_LOG_LIMIT).await.unwrap();
    let deleted_log = service.access_log(&auditor, deleted.id, 0, MAX_ACCESS_LOG_LIMIT).await.unwrap();
    let unknown_log = service.access_log(&auditor, unknown, 0, MAX_ACCESS_LOG_LIMIT).await;

    let outcomes = |log: &[AuditRecord]| log.iter().map(|r| (r.entry.action, r.entry.outcome)).collect::<Vec<_>>();
    assert_eq!(
        outcomes(&restricted_log),
        vec![
            (AuditAction::PersonCreate, AuditOutcome::Success),
            (AuditAction::PersonRestrict, AuditOutcome::Success),
            (AuditAction::PersonRead, AuditOutcome::Denied),
        ]
    );
    assert_eq!(
        outcomes(&deleted_log),
        vec![(AuditAction::PersonCreate, AuditOutcome::Success), (AuditAction::PersonDelete, AuditOutcome::Success)]
    );
    assert!(matches!(unknown_log, Err(LookupError::NotFound)), "{unknown_log:?}");
    let unknown_entries = audit_of(&store, unknown).await;
    assert_eq!(unknown_entries.len(), 1);
    assert_eq!(
        (unknown_entries[0].action, unknown_entries[0].outcome),
        (AuditAction::AccessLogRead, AuditOutcome::NotFound)
    );
}

#[tokio::test]
async fn subject_access_returns_everything_held_with_the_full_disclosure_log() {
    let (service, store) = setup();
    let person = create(&service).await;
    service.update(&ctx_for("editor"), person.id, 0, br#"{"middleName": "Grace"}"#).await.unwrap();
    put_equality_as(&service, person.id, &equality_json()).await.unwrap();
    service.put_extended(&social_worker(), person.id, &social_care(), None, br#"{"plan": "weekly"}"#).await.unwrap();
    service.put_extended(&admin(), person.id, &housing_needs(), None, br#"{"band": "A"}"#).await.unwrap();
    service.get(&ctx_for("reader"), person.id).await.unwrap();
    let before = audit_of(&store, person.id).await;
    let auditor = RequestContext { purpose: Some("SAR 2026-17".to_owned()), ..everything_but_admin() };

    let export = service.subject_access(&auditor, person.id).await.unwrap();

    assert_eq!(export.person, store.get(person.id).await.unwrap().unwrap());
    assert_eq!(export.person.version_number, 1);
    let mut kinds: Vec<String> = export.documents.iter().map(|d| d.kind.key()).collect();
    kinds.sort();
    assert_eq!(kinds, vec!["equality", "extended:housing-needs", "extended:social-care"]);
    let equality = export.documents.iter().find(|d| d.kind == DocumentKind::Equality).unwrap();
    assert_eq!(equality_of(equality).national_insurance_number.as_deref(), Some("AB123456C"));
    assert_eq!(export.history.iter().map(|h| h.version_number).collect::<Vec<_>>(), vec![0, 1]);
    assert_eq!(export.disclosures.iter().map(|r| r.entry.clone()).collect::<Vec<_>>(), before);
    assert_eq!(before.len(), 6, "create, update, equality write, two extended writes, read");
    let after = audit_of(&store, person.id).await;
    assert_eq!(after.len(), before.len() + 1);
    let export_entry = after.last().unwrap();
    assert_eq!((export_entry.action, export_entry.outcome), (AuditAction::SubjectAccess, AuditOutcome::Success));
    assert_eq!(export_entry.actor.subject, "auditor-1");
    assert_eq!(export_entry.purpose.as_deref(), Some("SAR 2026-17"));
}

#[tokio::test]
async fn subject_access_covers_restricted_and_deleted_persons_and_refuses_unknown_ones() {
    let (service, store) = setup();
    let restricted = create(&service).await;
    restrict(&service, restricted.id).await;
    let deleted = create(&service).await;
    service.delete(&ctx(), deleted.id, None, None).await.unwrap();
    let unknown = unknown_id();

    let restricted_export = service.subject_access(&everything_but_admin(), restricted.id).await.unwrap();
    let deleted_export = service.subject_access(&everything_but_admin(), deleted.id).await.unwrap();
    let unknown_export = service.subject_access(&everything_but_admin(), unknown).await;

    assert!(restricted_export.person.processing_restricted);
    assert_eq!(deleted_export.person.status, PersonStatus::Deleted);
    assert_eq!(deleted_export.history.len(), 2);
    assert!(matches!(unknown_export, Err(LookupError::NotFound)), "{unknown_export:?}");
    let unknown_entries = audit_of(&store, unknown).await;
    assert_eq!(unknown_entries.len(), 1);
    assert_eq!(
        (unknown_entries[0].action, unknown_entries[0].outcome),
        (AuditAction::SubjectAccess, AuditOutcome::NotFound)
    );
}

// ---------------------------------------------------------------------------------------------------------------
// equality data

#[tokio::test]
async fn a_first_equality_put_without_if_match_creates_version_zero_normalised() {
    let (service, _store) = setup();
    let person = create(&service).await;

    let stored = put_equality_as(&service, person.id, &equality_json()).await.unwrap();

    assert_eq!((stored.person_id, stored.kind.clone(), stored.version), (person.id, DocumentKind::Equality, 0));
    assert_eq!((stored.updated_at, stored.updated_by.subject.as_str()), (now(), "equality-1"));
    let data = equality_of(&stored);
    assert_eq!(data.national_insurance_number.as_deref(), Some("AB123456C"));
    assert_eq!(data.nationalities, vec!["GB", "IE"]);
    assert_eq!(data.ethnicity.as_ref().and_then(|e| e.description.as_deref()), Some("Polish"));
    assert_eq!(service.equality(&equality_officer(), person.id).await.unwrap(), stored);
}

#[tokio::test]
async fn a_nino_typed_with_spaces_and_lower_case_is_stored_canonically() {
    let (service, _store) = setup();
    let person = create(&service).await;

    put_equality_as(&service, person.id, &json!({ "nationalInsuranceNumber": "ab 12 34 56 c" })).await.unwrap();

    let read = service.equality(&equality_officer(), person.id).await.unwrap();
    assert_eq!(equality_of(&read).national_insurance_number.as_deref(), Some("AB123456C"));
}

#[tokio::test]
async fn equality_writes_publish_no_event_and_leave_the_person_alone() {
    let (service, store) = setup();
    let person = create(&service).await;

    put_equality_as(&service, person.id, &equality_json()).await.unwrap();

    assert_eq!(store.get(person.id).await.unwrap().as_ref(), Some(&person));
    assert_eq!(all_events(&service).await.len(), 1, "equality data never reaches the feed");
    assert_eq!(service.history(&ctx(), person.id).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_second_equality_put_without_if_match_is_precondition_required() {
    let (service, _store) = setup();
    let person = create(&service).await;
    let first = put_equality_as(&service, person.id, &equality_json()).await.unwrap();

    let result = put_equality_as(&service, person.id, &json!({ "sexRegisteredAtBirth": "male" })).await;

    assert!(matches!(result, Err(DocumentError::PreconditionRequired)), "{result:?}");
    assert_eq!(service.equality(&equality_officer(), person.id).await.unwrap(), first);
}

#[tokio::test]
async fn an_equality_put_with_the_current_version_replaces_it_and_a_stale_one_conflicts() {
    let (service, _store) = setup();
    let person = create(&service).await;
    put_equality_as(&service, person.id, &equality_json()).await.unwrap();
    let officer = equality_officer();

    let replaced = service.put_equality(&officer, person.id, Some(0), br#"{"sexRegisteredAtBirth": "male"}"#).await;
    let stale = service.put_equality(&officer, person.id, Some(0), br#"{"sexRegisteredAtBirth": "female"}"#).await;

    let replaced = replaced.unwrap();
    assert_eq!(replaced.version, 1);
    assert_eq!(
        equality_of(&replaced),
        &EqualityData { sex_registered_at_birth: Some("male".to_owned()), ..EqualityData::default() }
    );
    assert!(matches!(stale, Err(DocumentError::VersionConflict { current: Some(1) })), "{stale:?}");
    assert_eq!(service.equality(&officer, person.id).await.unwrap(), replaced);
}

#[tokio::test]
async fn if_match_on_missing_equality_data_is_a_conflict_with_no_current_version() {
    let (service, store) = setup();
    let person = create(&service).await;

    let result = service.put_equality(&equality_officer(), person.id, Some(0), &equality_body()).await;

    assert!(matches!(result, Err(DocumentError::VersionConflict { current: None })), "{result:?}");
    assert!(store.list_documents(person.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn invalid_national_insurance_numbers_are_invalid_at_their_field_without_echoing_them() {
    let (service, store) = setup();
    let person = create(&service).await;

    for nino in ["BG123456A", "QQ12345", "AB123456E"] {
        let result = put_equality_as(&service, person.id, &json!({ "nationalInsuranceNumber": nino })).await;

        assert_eq!(invalid_fields(&result), vec![("/nationalInsuranceNumber".to_owned(), "invalid_nino".to_owned())]);
        let shown = format!("{result:?} {}", result.as_ref().err().map(ToString::to_string).unwrap_or_default());
        assert!(!shown.contains(nino), "{nino} echoed in {shown}");
    }
    assert!(store.list_documents(person.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_unknown_ethnicity_code_is_invalid_at_ethnicity_code() {
    let (service, _store) = setup();
    let person = create(&service).await;

    let result = put_equality_as(&service, person.id, &json!({ "ethnicity": { "code": "martian" } })).await;

    assert_eq!(invalid_fields(&result), vec![("/ethnicity/code".to_owned(), "unknown_code".to_owned())]);
}

#[tokio::test]
async fn an_unknown_equality_key_is_an_unknown_field() {
    let (service, _store) = setup();
    let person = create(&service).await;

    let top = put_equality_as(&service, person.id, &json!({ "favouriteColour": "blue" })).await;
    let nested =
        put_equality_as(&service, person.id, &json!({ "ethnicity": { "code": "white-irish", "colour": 1 } })).await;

    assert!(
        matches!(top, Err(DocumentError::Body(BodyError::UnknownField(ref k))) if k == "favouriteColour"),
        "{top:?}"
    );
    assert!(
        matches!(nested, Err(DocumentError::Body(BodyError::UnknownField(ref k))) if k == "ethnicity/colour"),
        "{nested:?}"
    );
}

#[tokio::test]
async fn a_wrongly_typed_equality_value_is_an_invalid_value_naming_the_field() {
    let (service, _store) = setup();
    let person = create(&service).await;

    let list = put_equality_as(&service, person.id, &json!({ "nationalities": "GB" })).await;
    let nested =
        put_equality_as(&service, person.id, &json!({ "languages": [{ "language": "Welsh", "isPrimary": "yes" }] }))
            .await;

    let Err(DocumentError::Body(BodyError::InvalidValue { field, reason })) = list else { panic!("{list:?}") };
    assert_eq!(field, "/nationalities");
    assert!(!reason.contains("GB"), "{reason}");
    let Err(DocumentError::Body(BodyError::InvalidValue { field, .. })) = nested else { panic!("{nested:?}") };
    assert_eq!(field, "/languages/0/isPrimary");
}

#[tokio::test]
async fn a_malformed_or_non_object_equality_body_is_a_body_error() {
    let (service, _store) = setup();
    let person = create(&service).await;

    for body in [&b"{not json"[..], b"[]", b"\"AB123456C\"", b"null"] {
        let result = service.put_equality(&equality_officer(), person.id, None, body).await;

        assert!(matches!(result, Err(DocumentError::Body(BodyError::Malformed(_)))), "{result:?}");
    }
}

#[tokio::test]
async fn equality_of_an_unknown_or_deleted_person_is_a_lookup_error() {
    let (service, _store) = setup();
    let deleted = create(&service).await;
    put_equality_as(&service, deleted.id, &equality_json()).await.unwrap();
    service.delete(&ctx(), deleted.id, None, None).await.unwrap();
    let officer = equality_officer();
    let unknown = unknown_id();

    let read_unknown = service.equality(&officer, unknown).await;
    let put_unknown = service.put_equality(&officer, unknown, None, &equality_body()).await;
    let read_deleted = service.equality(&officer, deleted.id).await;
    let put_deleted = service.put_equality(&officer, deleted.id, Some(0), &equality_body()).await;

    assert!(matches!(read_unknown, Err(DocumentError::Lookup(LookupError::NotFound))), "{read_unknown:?}");
    assert!(matches!(put_unknown, Err(DocumentError::Lookup(LookupError::NotFound))), "{put_unknown:?}");
    assert!(matches!(read_deleted, Err(DocumentError::Lookup(LookupError::Deleted))), "{read_deleted:?}");
    assert!(matches!(put_deleted, Err(DocumentError::Lookup(LookupError::Deleted))), "{put_deleted:?}");
}

// ---------------------------------------------------------------------------------------------------------------
// extended data

#[tokio::test]
async fn extended_data_is_put_read_replaced_and_deleted_per_area() {
    let (service, store) = setup();
    let person = create(&service).await;
    let worker = social_worker();
    let area = social_care();

    let first =
        service.put_extended(&worker, person.id, &area, None, br#"{"plan": {"visits": [1, 2]}}"#).await.unwrap();
    let read = service.extended(&worker, person.id, &area).await.unwrap();
    let second = service.put_extended(&worker, person.id, &area, Some(0), br#"{"plan": null}"#).await.unwrap();
    service.delete_extended(&worker, person.id, &area, Some(1)).await.unwrap();

    assert_eq!((first.version, first.kind.clone()), (0, DocumentKind::Extended(area.clone())));
    assert_eq!(extended_of(&first), json!({ "plan": { "visits": [1, 2] } }).as_object().unwrap());
    assert_eq!(read, first);
    assert_eq!(second.version, 1);
    assert_eq!(extended_of(&second), json!({ "plan": null }).as_object().unwrap());
    let gone = service.extended(&worker, person.id, &area).await;
    assert!(matches!(gone, Err(DocumentError::NotFound)), "{gone:?}");
    let actions: Vec<AuditAction> = audit_of(&store, person.id).await.into_iter().skip(1).map(|e| e.action).collect();
    assert_eq!(
        actions,
        vec![
            AuditAction::ExtendedWrite,
            AuditAction::ExtendedRead,
            AuditAction::ExtendedWrite,
            AuditAction::ExtendedDelete,
            AuditAction::ExtendedRead
        ]
    );
}

#[tokio::test]
async fn extended_areas_are_isolated_from_each_other() {
    let (service, _store) = setup();
    let person = create(&service).await;
    service.put_extended(&admin(), person.id, &social_care(), None, br#"{"care": true}"#).await.unwrap();
    service.put_extended(&admin(), person.id, &social_care(), Some(0), br#"{"care": false}"#).await.unwrap();

    let other_before = service.extended(&admin(), person.id, &housing_needs()).await;
    let housing = service.put_extended(&admin(), person.id, &housing_needs(), None, br#"{"band": "A"}"#).await.unwrap();
    service.delete_extended(&admin(), person.id, &social_care(), None).await.unwrap();

    assert!(matches!(other_before, Err(DocumentError::NotFound)), "{other_before:?}");
    assert_eq!(housing.version, 0, "each area has its own version");
    assert_eq!(service.extended(&admin(), person.id, &housing_needs()).await.unwrap(), housing);
    let equality = service.equality(&admin(), person.id).await;
    assert!(matches!(equality, Err(DocumentError::NotFound)), "extended data is not equality data: {equality:?}");
}

#[tokio::test]
async fn extended_writes_follow_if_match() {
    let (service, _store) = setup();
    let person = create(&service).await;
    let worker = social_worker();
    let area = social_care();
    service.put_extended(&worker, person.id, &area, None, br#"{"a": 1}"#).await.unwrap();

    let without = service.put_extended(&worker, person.id, &area, None, br#"{"a": 2}"#).await;
    let stale = service.put_extended(&worker, person.id, &area, Some(3), br#"{"a": 2}"#).await;
    let stale_delete = service.delete_extended(&worker, person.id, &area, Some(3)).await;
    let missing = service.put_extended(&worker, person.id, &housing_needs(), Some(0), br#"{"a": 2}"#).await;

    assert!(matches!(without, Err(DocumentError::PreconditionRequired)), "{without:?}");
    assert!(matches!(stale, Err(DocumentError::VersionConflict { current: Some(0) })), "{stale:?}");
    assert!(matches!(stale_delete, Err(DocumentError::VersionConflict { current: Some(0) })), "{stale_delete:?}");
    assert!(matches!(missing, Err(DocumentError::VersionConflict { current: None })), "{missing:?}");
    let kept = service.extended(&worker, person.id, &area).await.unwrap();
    assert_eq!((kept.version, extended_of(&kept)), (0, json!({ "a": 1 }).as_object().unwrap()));
}

#[tokio::test]
async fn a_non_object_extended_body_is_a_body_error() {
    let (service, store) = setup();
    let person = create(&service).await;

    for body in [&b"[1, 2]"[..], b"\"text\"", b"42", b"null", b"{not json", b""] {
        let result = service.put_extended(&social_worker(), person.id, &social_care(), None, body).await;

        assert!(matches!(result, Err(DocumentError::Body(BodyError::Malformed(_)))), "{result:?}");
    }
    assert!(store.list_documents(person.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_extended_document_over_64_kib_is_too_large_and_one_of_exactly_64_kib_is_accepted() {
    let (service, store) = setup();
    let person = create(&service).await;
    // `{"a":"…"}` is 8 bytes around the text.
    let sized = |bytes: usize| json!({ "a": "x".repeat(bytes - 8) }).to_string().into_bytes();
    assert_eq!(sized(MAX_EXTENDED_BYTES).len(), MAX_EXTENDED_BYTES);

    let too_large =
        service.put_extended(&admin(), person.id, &social_care(), None, &sized(MAX_EXTENDED_BYTES + 1)).await;
    let at_limit = service.put_extended(&admin(), person.id, &housing_needs(), None, &sized(MAX_EXTENDED_BYTES)).await;

    assert!(matches!(too_large, Err(DocumentError::TooLarge)), "{too_large:?}");
    assert!(at_limit.is_ok(), "{at_limit:?}");
    let kinds: Vec<String> = store.list_documents(person.id).await.unwrap().iter().map(|d| d.kind.key()).collect();
    assert_eq!(kinds, vec!["extended:housing-needs"]);
}

#[tokio::test]
async fn the_size_limit_counts_compact_json_not_the_submitted_whitespace() {
    let (service, _store) = setup();
    let person = create(&service).await;
    let padded = format!("{{ {} \"a\": 1 }}", " ".repeat(MAX_EXTENDED_BYTES));

    let result = service.put_extended(&admin(), person.id, &social_care(), None, padded.as_bytes()).await;

    assert!(result.is_ok(), "{result:?}");
}

#[tokio::test]
async fn deleting_a_missing_extended_document_is_not_found() {
    let (service, store) = setup();
    let person = create(&service).await;

    let result = service.delete_extended(&social_worker(), person.id, &social_care(), None).await;

    assert!(matches!(result, Err(DocumentError::NotFound)), "{result:?}");
    assert_eq!(audit_of(&store, person.id).await.len(), 1, "nothing was deleted, nothing recorded");
}

#[tokio::test]
async fn extended_data_of_an_unknown_or_deleted_person_is_a_lookup_error() {
    let (service, _store) = setup();
    let deleted = create(&service).await;
    service.put_extended(&social_worker(), deleted.id, &social_care(), None, br#"{"a": 1}"#).await.unwrap();
    service.delete(&ctx(), deleted.id, None, None).await.unwrap();
    let worker = social_worker();
    let area = social_care();

    for id in [unknown_id(), deleted.id] {
        let read = service.extended(&worker, id, &area).await;
        let put = service.put_extended(&worker, id, &area, None, br#"{"a": 2}"#).await;
        let delete = service.delete_extended(&worker, id, &area, None).await;

        let expected = |e: &LookupError| {
            if id == deleted.id { matches!(e, LookupError::Deleted) } else { matches!(e, LookupError::NotFound) }
        };
        assert!(matches!(&read, Err(DocumentError::Lookup(e)) if expected(e)), "{read:?}");
        assert!(matches!(&put, Err(DocumentError::Lookup(e)) if expected(e)), "{put:?}");
        assert!(matches!(&delete, Err(DocumentError::Lookup(e)) if expected(e)), "{delete:?}");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Debug output never shows personal data

#[test]
fn debug_output_of_documents_audit_entries_and_contexts_shows_no_personal_data() {
    let id = unknown_id();
    let actor = Actor {
        subject: "officer-9".to_owned(),
        name: "Olu Officer".to_owned(),
        email: "olu@hackney.gov.uk".to_owned(),
    };
    let equality = EqualityData {
        ethnicity: Some(crate::equality::CategoryAnswer {
            code: "white-other".to_owned(),
            description: Some("Polish".to_owned()),
        }),
        languages: vec![crate::equality::Language { language: "Kurdish".to_owned(), is_primary: true }],
        national_insurance_number: Some("AB123456C".to_owned()),
        ..EqualityData::default()
    };
    let document = |kind, body| StoredDocument {
        person_id: id,
        kind,
        version: 3,
        body,
        updated_at: now(),
        updated_by: actor.clone(),
    };
    let extended = json!({ "carer": "Ada Lovelace" }).as_object().unwrap().clone();
    let entry = AuditEntry {
        id: Uuid::new_v4(),
        at: now(),
        actor: actor.clone(),
        action: AuditAction::SubjectAccess,
        person_ids: vec![id],
        detail: Some("area=social-care".to_owned()),
        purpose: Some("SAR for Ada Lovelace".to_owned()),
        correlation_id: "corr-9".to_owned(),
        outcome: AuditOutcome::Success,
    };
    let context = RequestContext {
        purpose: Some("visit Ada Lovelace".to_owned()),
        ..RequestContext::new(actor.clone(), Permissions::all(), "corr-9")
    };

    let shown = format!(
        "{:?} {:?} {:?} {:?} {:?}",
        equality,
        document(DocumentKind::Equality, DocumentBody::Equality(equality.clone())),
        document(DocumentKind::Extended(social_care()), DocumentBody::Extended(extended)),
        entry,
        context,
    );

    for secret in ["AB123456C", "Polish", "Kurdish", "Ada", "Lovelace", "Olu Officer", "olu@hackney.gov.uk"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    for useful in ["officer-9", "SubjectAccess", "corr-9", "social-care", "version: 3"] {
        assert!(shown.contains(useful), "{useful} missing from {shown}");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Access control and audit over mocked ports

#[tokio::test]
async fn creates_hand_their_audit_entry_to_the_store_in_the_same_write() {
    let mut repo = MockPersonRepository::new();
    let seen = Arc::new(Mutex::new(None));
    let seen_in_mock = seen.clone();
    repo.expect_insert().times(1).returning(move |write| {
        let assigned = write.assign(PersonRef(3));
        *seen_in_mock.lock().unwrap() = Some(assigned.audit.clone());
        Ok(assigned.person)
    });
    let mut audit = MockAuditLog::new();
    audit.expect_append().never();

    let created = mocked_with(repo, MockDocumentRepository::new(), audit)
        .create(&ctx(), &body(), CreateOptions::default())
        .await
        .unwrap();

    let entry = seen.lock().unwrap().clone().expect("insert was called");
    assert_eq!((entry.action, entry.outcome), (AuditAction::PersonCreate, AuditOutcome::Success));
    assert_eq!(entry.person_ids, vec![created.person.id]);
    assert_eq!((entry.actor.subject.as_str(), entry.correlation_id.as_str()), ("officer-1", "corr-officer-1"));
}

#[tokio::test]
async fn updates_and_deletes_hand_their_audit_entry_to_the_store_in_the_same_write() {
    let person = live_person();
    let mut repo = MockPersonRepository::new();
    let current = person.clone();
    repo.expect_get().returning(move |_| Ok(Some(current.clone())));
    repo.expect_update()
        .times(1)
        .withf(|w| w.audit.action == AuditAction::PersonUpdate && w.audit.person_ids == vec![w.person.id])
        .returning(|_| Ok(()));
    repo.expect_update()
        .times(1)
        .withf(|w| w.audit.action == AuditAction::PersonDelete && w.audit.correlation_id == "corr-officer-1")
        .returning(|_| Ok(()));
    let mut audit = MockAuditLog::new();
    audit.expect_append().never();
    let service = mocked_with(repo, MockDocumentRepository::new(), audit);

    service.update(&ctx(), person.id, 4, br#"{"middleName": "Grace"}"#).await.unwrap();
    service.delete(&ctx(), person.id, None, None).await.unwrap();
}

#[tokio::test]
async fn a_read_that_cannot_be_audited_is_not_served() {
    let person = live_person();
    let mut repo = MockPersonRepository::new();
    let current = person.clone();
    repo.expect_get().returning(move |_| Ok(Some(current.clone())));
    let mut audit = MockAuditLog::new();
    audit.expect_append().times(1).returning(|_| Err(unavailable()));

    let result = mocked_with(repo, MockDocumentRepository::new(), audit).get(&ctx(), person.id).await;

    assert!(matches!(result, Err(LookupError::Store(StoreError::Unavailable(_)))), "{result:?}");
}

#[tokio::test]
async fn a_store_failure_reading_a_document_is_not_recorded_as_a_disclosure() {
    let person = live_person();
    let mut repo = MockPersonRepository::new();
    let current = person.clone();
    repo.expect_get().returning(move |_| Ok(Some(current.clone())));
    let mut documents = MockDocumentRepository::new();
    documents.expect_get_document().returning(|_, _| Err(unavailable()));
    let mut audit = MockAuditLog::new();
    audit.expect_append().never();

    let result = mocked_with(repo, documents, audit).equality(&equality_officer(), person.id).await;

    assert!(matches!(result, Err(DocumentError::Lookup(LookupError::Store(_)))), "{result:?}");
}

#[tokio::test]
async fn document_writes_hand_their_audit_entry_to_the_store_in_the_same_write() {
    let person = live_person();
    let mut repo = MockPersonRepository::new();
    let current = person.clone();
    repo.expect_get().returning(move |_| Ok(Some(current.clone())));
    let mut documents = MockDocumentRepository::new();
    documents.expect_get_document().returning(|_, _| Ok(None));
    documents
        .expect_write_document()
        .times(1)
        .withf(|w| {
            w.expected_version.is_none()
                && w.new.as_ref().is_some_and(|d| d.version == 0)
                && w.audit.action == AuditAction::EqualityWrite
                && w.audit.purpose.as_deref() == Some("equality monitoring")
        })
        .returning(|_| Ok(()));
    let mut audit = MockAuditLog::new();
    audit.expect_append().never();

    let stored =
        mocked_with(repo, documents, audit).put_equality(&equality_officer(), person.id, None, &equality_body()).await;

    assert_eq!(stored.unwrap().version, 0);
}

#[tokio::test]
async fn a_document_conflict_at_write_time_is_reported_with_the_stores_version() {
    let person = live_person();
    let mut repo = MockPersonRepository::new();
    let current = person.clone();
    repo.expect_get().returning(move |_| Ok(Some(current.clone())));
    let mut documents = MockDocumentRepository::new();
    documents.expect_get_document().returning(|_, _| Ok(None));
    documents.expect_write_document().returning(|_| Err(DocumentWriteError::VersionConflict { current: Some(0) }));

    let result = mocked_with(repo, documents, MockAuditLog::new())
        .put_extended(&social_worker(), person.id, &social_care(), None, br#"{"a": 1}"#)
        .await;

    assert!(matches!(result, Err(DocumentError::VersionConflict { current: Some(0) })), "{result:?}");
}

// ---------------------------------------------------------------------------------------------------------------
// Search, match, duplicate prevention and merge (SPEC §6)

fn person_json(first: &str, surname: &str, date_of_birth: &str) -> Value {
    json!({
        "title": "Mr",
        "firstName": first,
        "surname": surname,
        "dateOfBirth": date_of_birth,
        "personTypes": ["Tenant"],
        "reason": "New tenancy"
    })
}

fn with_tenure(mut person: Value, address: &str, postcode: &str) -> Value {
    person["tenures"] = json!([{
        "id": Uuid::new_v4(),
        "type": "Secure",
        "startDate": "2015-03-01",
        "assetFullAddress": address,
        "postcode": postcode
    }]);
    person
}

async fn create_json(service: &PersonService, person: &Value) -> Person {
    service.create(&ctx(), person.to_string().as_bytes(), CreateOptions::default()).await.unwrap().person
}

async fn create_named(service: &PersonService, first: &str, surname: &str, date_of_birth: &str) -> Person {
    create_json(service, &person_json(first, surname, date_of_birth)).await
}

fn query() -> SearchQuery {
    SearchQuery::default()
}

async fn search_ids(service: &PersonService, query: SearchQuery) -> Vec<PersonId> {
    service.search(&ctx(), query).await.unwrap().hits.into_iter().map(|h| h.person.id).collect()
}

fn some(text: &str) -> Option<String> {
    Some(text.to_owned())
}

fn merger() -> RequestContext {
    let permissions = [
        Permission::PersonsRead,
        Permission::PersonsWrite,
        Permission::PersonsMerge,
        Permission::EventsRead,
        Permission::EqualityRead,
    ]
    .into_iter()
    .collect();
    ctx_with("merger-1", permissions)
}

fn merge_body(duplicate: PersonId, reason: &str) -> Vec<u8> {
    json!({ "duplicateId": duplicate, "reason": reason }).to_string().into_bytes()
}

#[tokio::test]
async fn search_is_typo_tolerant_and_reads_names_in_either_order() {
    let (service, _store) = setup();
    let john = create_named(&service, "John", "Smith", "1980-03-04").await;
    let _other = create_named(&service, "Priya", "Patel", "1975-11-30").await;

    let misspelt = query();
    let misspelt = SearchQuery { first_name: some("Jon"), last_name: some("Smyth"), ..misspelt };
    assert_eq!(search_ids(&service, misspelt).await, vec![john.id]);
    assert_eq!(search_ids(&service, SearchQuery { q: some("Smith John"), ..query() }).await, vec![john.id]);
    assert_eq!(search_ids(&service, SearchQuery { q: some("jon smyth"), ..query() }).await, vec![john.id]);
}

#[tokio::test]
async fn search_finds_name_prefixes_accents_and_nicknames() {
    let (service, _store) = setup();
    let kimakhe = create_named(&service, "Kimakhe", "Dlamini", "1991-07-08").await;
    let zoe = create_named(&service, "Zoë", "Adeyemi", "1988-01-21").await;
    let william = create_named(&service, "William", "Turner", "1960-09-09").await;

    assert_eq!(search_ids(&service, SearchQuery { q: some("kimakhe"), ..query() }).await, vec![kimakhe.id]);
    assert_eq!(search_ids(&service, SearchQuery { first_name: some("Kim"), ..query() }).await, vec![kimakhe.id]);
    assert_eq!(search_ids(&service, SearchQuery { last_name: some("Dl"), ..query() }).await, vec![kimakhe.id]);
    let zoe_query = SearchQuery { first_name: some("Zoe"), last_name: some("Adeyemi"), ..query() };
    assert_eq!(search_ids(&service, zoe_query).await, vec![zoe.id]);
    assert_eq!(search_ids(&service, SearchQuery { q: some("Bill Turner"), ..query() }).await, vec![william.id]);
}

#[tokio::test]
async fn a_day_month_swapped_date_of_birth_finds_the_person_ranked_below_an_exact_match() {
    let (service, _store) = setup();
    let exact = create_named(&service, "Amina", "Hussain", "1990-03-07").await;
    let swapped = create_named(&service, "Amina", "Hussain", "1990-07-03").await;

    let page = service
        .search(&ctx(), SearchQuery { last_name: some("Hussain"), date_of_birth: some("07/03/1990"), ..query() })
        .await
        .unwrap();

    let ids: Vec<PersonId> = page.hits.iter().map(|h| h.person.id).collect();
    assert_eq!(ids, vec![exact.id, swapped.id]);
    assert!(page.hits[0].score > page.hits[1].score, "{:?}", page.hits);
    assert!(page.hits.iter().all(|h| (0.0..=1.0).contains(&h.score)));
}

#[tokio::test]
async fn search_by_postcode_ignores_its_spacing() {
    let (service, _store) = setup();
    let resident = create_json(
        &service,
        &with_tenure(person_json("Grace", "Okafor", "1970-02-02"), "1 Mare Street, London E8 1DY", "E8 1DY"),
    )
    .await;
    let _elsewhere = create_json(
        &service,
        &with_tenure(person_json("Tom", "Baker", "1971-02-02"), "9 High Street, London N16 0AA", "N16 0AA"),
    )
    .await;

    for postcode in ["E8 1DY", "e81dy", " E8  1DY "] {
        assert_eq!(search_ids(&service, SearchQuery { postcode: some(postcode), ..query() }).await, vec![resident.id]);
    }
    assert_eq!(search_ids(&service, SearchQuery { q: some("okafor e81dy"), ..query() }).await, vec![resident.id]);
}

#[tokio::test]
async fn search_by_ni_number_needs_equality_read_and_accepts_any_spacing() {
    let (service, _store) = setup();
    let person = create_named(&service, "Jan", "Kowalski", "1985-04-04").await;
    put_equality_as(&service, person.id, &equality_json()).await.unwrap();

    let by_nino = SearchQuery { nino: some("AB 12 34 56 C"), ..query() };
    let refused = service.search(&ctx(), by_nino.clone()).await;
    assert!(matches!(refused, Err(SearchError::Forbidden)), "{refused:?}");

    let page = service.search(&equality_officer(), by_nino).await.unwrap();
    assert_eq!(page.hits.iter().map(|h| h.person.id).collect::<Vec<_>>(), vec![person.id]);
    let lower = service.search(&equality_officer(), SearchQuery { nino: some("ab123456c"), ..query() }).await;
    assert_eq!(lower.unwrap().hits.len(), 1);
}

#[tokio::test]
async fn search_never_shows_deleted_merged_or_restricted_persons() {
    let (service, store) = setup();
    let shown = create_named(&service, "Ruth", "Abara", "1950-05-05").await;
    let deleted = create_named(&service, "Rachel", "Abara", "1951-05-05").await;
    let restricted = create_named(&service, "Rebecca", "Abara", "1952-05-05").await;
    let merged = create_named(&service, "Rose", "Abara", "1953-05-05").await;
    service.delete(&ctx(), deleted.id, None, None).await.unwrap();
    restrict(&service, restricted.id).await;
    merge_via_repository(&store, &merged, shown.id).await;

    assert_eq!(search_ids(&service, SearchQuery { last_name: some("Abara"), ..query() }).await, vec![shown.id]);
    let admin_page = service.search(&admin(), SearchQuery { last_name: some("Abara"), ..query() }).await.unwrap();
    assert_eq!(admin_page.hits.len(), 1, "restricted persons are hidden from search even for admins");
}

#[tokio::test]
async fn search_filters_by_person_type_and_pages_with_a_total_and_next_offset() {
    let (service, _store) = setup();
    let mut tenants = Vec::new();
    for (first, dob) in [("Alan", "1960-01-01"), ("Brenda", "1961-01-01"), ("Colin", "1962-01-01")] {
        tenants.push(create_named(&service, first, "Mensah", dob).await);
    }
    let mut leaseholder = person_json("Diana", "Mensah", "1963-01-01");
    leaseholder["personTypes"] = json!(["Leaseholder"]);
    let leaseholder = create_json(&service, &leaseholder).await;

    let all = service.search(&ctx(), SearchQuery { last_name: some("Mensah"), ..query() }).await.unwrap();
    assert_eq!(all.total, 4);
    let typed = SearchQuery { last_name: some("Mensah"), person_type: Some(PersonType::Tenant), ..query() };
    let first = service.search(&ctx(), SearchQuery { limit: 2, ..typed.clone() }).await.unwrap();
    assert_eq!((first.hits.len(), first.total, first.next_offset), (2, 3, Some(2)));
    let second = service.search(&ctx(), SearchQuery { limit: 2, offset: 2, ..typed }).await.unwrap();
    assert_eq!((second.hits.len(), second.total, second.next_offset), (1, 3, None));
    let mut seen: Vec<PersonId> = first.hits.iter().chain(&second.hits).map(|h| h.person.id).collect();
    seen.sort();
    let mut expected: Vec<PersonId> = tenants.iter().map(|p| p.id).collect();
    expected.sort();
    assert_eq!(seen, expected);
    assert!(!seen.contains(&leaseholder.id));
    // Equal scores are ordered by personRef, so pages never overlap or skip.
    let refs: Vec<i64> = first.hits.iter().chain(&second.hits).map(|h| h.person.person_ref.0).collect();
    let scores: Vec<f64> = first.hits.iter().chain(&second.hits).map(|h| h.score).collect();
    for i in 1..refs.len() {
        assert!(scores[i - 1] > scores[i] || (scores[i - 1] == scores[i] && refs[i - 1] < refs[i]));
    }
}

#[tokio::test]
async fn a_search_without_criteria_or_with_a_one_letter_prefix_is_invalid() {
    let (service, _store) = setup();
    for bad in [
        query(),
        SearchQuery { person_type: Some(PersonType::Tenant), ..query() },
        SearchQuery { first_name: some("J"), ..query() },
        SearchQuery { date_of_birth: some("not a date"), ..query() },
        SearchQuery { last_name: some("Smith"), limit: 201, ..query() },
    ] {
        let result = service.search(&ctx(), bad).await;
        assert!(matches!(result, Err(SearchError::Invalid(_))), "{result:?}");
    }
}

#[tokio::test]
async fn a_search_is_audited_with_the_ids_shown_and_never_the_criteria() {
    let (service, store) = setup();
    let person = create_named(&service, "Olumide", "Adebayo", "1982-12-12").await;

    service.search(&ctx(), SearchQuery { last_name: some("Adebayo"), ..query() }).await.unwrap();

    let entries = audit_of(&store, person.id).await;
    let search = entries.iter().find(|e| e.action == AuditAction::Search).expect("search audited");
    assert_eq!(search.person_ids, vec![person.id]);
    assert_eq!(search.detail.as_deref(), Some("results=1"));
    let text = serde_json::to_string(search).unwrap();
    assert!(!text.contains("Adebayo"), "{text}");
}

#[tokio::test]
async fn match_grades_an_identical_person_certain_and_explains_each_field() {
    let (service, store) = setup();
    let person = create_json(
        &service,
        &with_tenure(person_json("Fatima", "Begum", "1979-06-15"), "2 Dalston Lane, London E8 3AZ", "E8 3AZ"),
    )
    .await;
    let _twin = create_named(&service, "Ayesha", "Begum", "1979-06-15").await;

    let body = json!({ "firstName": "Fatima", "surname": "Begum", "dateOfBirth": "1979-06-15", "postcode": "e83az" });
    let matches = service.match_person(&ctx(), body.to_string().as_bytes()).await.unwrap();

    assert_eq!(matches[0].person.id, person.id);
    assert_eq!(matches[0].score.grade, Some(crate::matching::Grade::Certain));
    assert!(!matches[0].score.comparisons.is_empty());
    assert!(matches.iter().skip(1).all(|m| m.score.grade != Some(crate::matching::Grade::Certain)));
    let audited = audit_of(&store, person.id).await;
    assert!(
        audited
            .iter()
            .any(|e| e.action == AuditAction::Search && e.detail.as_deref().is_some_and(|d| d.starts_with("match")))
    );
}

#[tokio::test]
async fn match_refuses_unknown_keys_empty_bodies_bad_counts_and_unpermitted_ni_numbers() {
    let (service, _store) = setup();
    let unknown = service.match_person(&ctx(), br#"{"surname": "Begum", "colour": "blue"}"#).await;
    assert!(matches!(unknown, Err(MatchError::Body(BodyError::UnknownField(_)))), "{unknown:?}");
    let wrong_type = service.match_person(&ctx(), br#"{"surname": 3}"#).await;
    assert!(matches!(wrong_type, Err(MatchError::Body(_))), "{wrong_type:?}");
    let empty = service.match_person(&ctx(), br#"{"surname": "  ", "count": 5}"#).await;
    assert!(matches!(empty, Err(MatchError::Invalid(_))), "{empty:?}");
    let too_many = service.match_person(&ctx(), br#"{"surname": "Begum", "count": 51}"#).await;
    assert!(matches!(too_many, Err(MatchError::Invalid(_))), "{too_many:?}");
    let nino = service.match_person(&ctx(), br#"{"nationalInsuranceNumber": "AB123456C"}"#).await;
    assert!(matches!(nino, Err(MatchError::Forbidden)), "{nino:?}");
    let allowed = service.match_person(&equality_officer(), br#"{"nationalInsuranceNumber": "AB123456C"}"#).await;
    assert!(allowed.unwrap().is_empty());
}

#[tokio::test]
async fn match_answers_at_most_count_candidates() {
    let (service, _store) = setup();
    for (first, dob) in [("Ian", "1970-01-01"), ("Iain", "1970-01-02"), ("Ivan", "1970-01-03")] {
        create_named(&service, first, "Campbell", dob).await;
    }
    let body = br#"{"firstName": "Ian", "surname": "Campbell", "dateOfBirth": "1970-01-01", "count": 1}"#;
    let matches = service.match_person(&ctx(), body).await.unwrap();
    assert_eq!(matches.len(), 1);
}

#[tokio::test]
async fn creating_an_identical_person_is_refused_as_a_duplicate_naming_the_existing_one() {
    let (service, store) = setup();
    let existing = service.create(&ctx(), &body(), CreateOptions::default()).await.unwrap().person;

    let result = service.create(&ctx(), &body(), CreateOptions::default()).await;

    let Err(CreatePersonError::Duplicate { candidates }) = result else { panic!("expected Duplicate, got {result:?}") };
    assert_eq!(candidates.len(), 1);
    assert_eq!((candidates[0].id, candidates[0].person_ref), (existing.id, existing.person_ref));
    assert!(candidates[0].score > 0.9, "{candidates:?}");
    assert_eq!(all_events(&service).await.len(), 1, "nothing stored");
    let audited = audit_of(&store, existing.id).await;
    assert!(audited.iter().any(|e| e.action == AuditAction::Search), "the disclosure is audited");
}

#[tokio::test]
async fn allow_duplicate_creates_the_person_anyway() {
    let (service, _store) = setup();
    let first = service.create(&ctx(), &body(), CreateOptions::default()).await.unwrap().person;

    let second = service.create(&ctx(), &body(), allowing_duplicates()).await.unwrap().person;

    assert_ne!(first.id, second.id);
    // The allowed duplicate holds no dedup key, so it can be changed freely; the original still blocks creates.
    service.update(&ctx(), second.id, 0, br#"{"placeOfBirth": "Leeds"}"#).await.unwrap();
    let third = service.create(&ctx(), &body(), CreateOptions::default()).await;
    assert!(matches!(third, Err(CreatePersonError::Duplicate { .. })), "{third:?}");
}

#[tokio::test]
async fn a_twin_with_another_first_name_is_not_a_duplicate() {
    let (service, _store) = setup();
    let address = "5 Amhurst Road, London E8 2AA";
    create_json(&service, &with_tenure(person_json("Hassan", "Ali", "2001-02-03"), address, "E8 2AA")).await;

    let twin = with_tenure(person_json("Hussein", "Ali", "2001-02-03"), address, "E8 2AA");
    let result = service.create(&ctx(), twin.to_string().as_bytes(), CreateOptions::default()).await;

    assert!(result.is_ok(), "{result:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_creates_of_the_same_new_person_let_exactly_one_succeed() {
    let (service, _store) = setup();
    let tasks = (0..10).map(|_| {
        let service = service.clone();
        tokio::spawn(async move { service.create(&ctx(), &body(), CreateOptions::default()).await })
    });
    let results: Vec<_> = futures::future::join_all(tasks).await.into_iter().map(|r| r.unwrap()).collect();

    let created: Vec<&Created> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(created.len(), 1, "{results:?}");
    let winner = created[0].person.id;
    for result in &results {
        match result {
            Ok(_) => {}
            Err(CreatePersonError::Duplicate { candidates }) => {
                assert_eq!(candidates.iter().map(|c| c.id).collect::<Vec<_>>(), vec![winner]);
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(all_events(&service).await.len(), 1);
}

#[tokio::test]
async fn losing_a_dedup_race_in_the_store_answers_duplicate_with_the_winner() {
    let winner = live_person();
    let winner_id = winner.id;
    let mut repo = MockPersonRepository::new();
    repo.expect_insert().times(1).returning(move |_| Err(InsertError::DuplicatePerson { existing: winner_id }));
    repo.expect_get().returning(move |_| Ok(Some(winner.clone())));
    let mut audit = MockAuditLog::new();
    audit.expect_append().times(1).returning(|_| Ok(()));

    let result =
        mocked_with(repo, MockDocumentRepository::new(), audit).create(&ctx(), &body(), CreateOptions::default()).await;

    let Err(CreatePersonError::Duplicate { candidates }) = result else { panic!("expected Duplicate, got {result:?}") };
    assert_eq!(candidates.iter().map(|c| (c.id, c.person_ref)).collect::<Vec<_>>(), vec![(winner_id, PersonRef(12))]);
}

#[tokio::test]
async fn the_create_write_carries_the_persons_keys_and_dedup_key_unless_duplicates_are_allowed() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut repo = MockPersonRepository::new();
    let seen_in_mock = seen.clone();
    repo.expect_insert().times(2).returning(move |write| {
        seen_in_mock.lock().unwrap().push((write.search_keys().len(), write.dedup_key().map(str::to_owned)));
        Ok(write.assign(PersonRef(1)).person)
    });
    let service = mocked(repo);

    service.create(&ctx(), &body(), CreateOptions::default()).await.unwrap();
    service.create(&ctx(), &body(), allowing_duplicates()).await.unwrap();

    let seen = seen.lock().unwrap();
    assert!(seen[0].0 > 0 && seen[0].1.is_some(), "{seen:?}");
    assert!(seen[1].0 > 0 && seen[1].1.is_none(), "{seen:?}");
}

#[tokio::test]
async fn changing_a_person_into_an_exact_duplicate_of_another_is_refused() {
    let (service, _store) = setup();
    let ada = service.create(&ctx(), &body(), CreateOptions::default()).await.unwrap().person;
    let other = create_named(&service, "Augusta", "Byron", "1990-05-17").await;

    let result =
        service.update(&ctx(), other.id, 0, br#"{"firstName": "Ada", "surname": "Lovelace", "title": "Ms"}"#).await;

    let Err(UpdatePersonError::Duplicate { candidates }) = result else { panic!("expected Duplicate, got {result:?}") };
    assert_eq!(candidates.iter().map(|c| c.id).collect::<Vec<_>>(), vec![ada.id]);
    let unchanged = service.get(&ctx(), other.id).await.unwrap();
    assert_eq!(unchanged.version_number, 0);
}

#[tokio::test]
async fn equality_data_with_an_ni_number_makes_the_person_findable_by_it_and_removing_it_does_not() {
    let (service, _store) = setup();
    let person = create_named(&service, "Marta", "Nowak", "1984-08-08").await;
    let by_nino = SearchQuery { nino: some("AB123456C"), ..query() };
    assert!(service.search(&equality_officer(), by_nino.clone()).await.unwrap().hits.is_empty());

    let stored = put_equality_as(&service, person.id, &equality_json()).await.unwrap();
    assert_eq!(service.search(&equality_officer(), by_nino.clone()).await.unwrap().hits.len(), 1);

    let mut without = equality_json();
    without.as_object_mut().unwrap().remove("nationalInsuranceNumber");
    service
        .put_equality(&equality_officer(), person.id, Some(stored.version), without.to_string().as_bytes())
        .await
        .unwrap();
    assert!(service.search(&equality_officer(), by_nino).await.unwrap().hits.is_empty());
}

/// A survivor and a duplicate of it: the same person recorded twice (the second allowed as a duplicate), each
/// with a tenure; the duplicate also has equality and social-care data.
async fn survivor_and_duplicate(service: &PersonService) -> (Person, Person) {
    let survivor = create_json(
        service,
        &with_tenure(person_json("Kwame", "Mensah", "1977-07-07"), "1 Mare Street, London E8 1DY", "E8 1DY"),
    )
    .await;
    let mut duplicate =
        with_tenure(person_json("Kwame", "Mensah", "1977-07-07"), "3 Old Road, London N16 5AA", "N16 5AA");
    duplicate["middleName"] = json!("Kofi");
    duplicate["title"] = json!("Dr");
    duplicate["personTypes"] = json!(["HouseholdMember"]);
    let duplicate =
        service.create(&ctx(), duplicate.to_string().as_bytes(), allowing_duplicates()).await.unwrap().person;
    put_equality_as(service, duplicate.id, &equality_json()).await.unwrap();
    let care = json!({ "carer": "yes" }).to_string();
    service.put_extended(&social_worker(), duplicate.id, &social_care(), None, care.as_bytes()).await.unwrap();
    (survivor, duplicate)
}

#[tokio::test]
async fn merge_moves_tenures_and_documents_redirects_the_duplicate_and_keeps_both_histories() {
    let (service, store) = setup();
    let (survivor, duplicate) = survivor_and_duplicate(&service).await;
    let events_before = all_events(&service).await.len();

    let merged = service.merge(&merger(), survivor.id, 0, &merge_body(duplicate.id, "Same person")).await.unwrap();

    assert_eq!(merged.version_number, 1);
    assert_eq!(merged.tenures.len(), 2, "tenures moved");
    assert_eq!(merged.middle_name.as_ref().map(Name::as_str), Some("Kofi"), "a missing value gained");
    assert_eq!(merged.title, Some(Title::Mr), "its own values kept");
    assert_eq!(merged.person_types, vec![PersonType::Tenant, PersonType::HouseholdMember]);
    assert_eq!(service.get(&ctx(), survivor.id).await.unwrap(), merged);
    let gone = service.get(&ctx(), duplicate.id).await;
    assert!(matches!(gone, Err(LookupError::Merged { into }) if into == survivor.id), "{gone:?}");

    let equality = service.equality(&equality_officer(), survivor.id).await.unwrap();
    assert_eq!(equality_of(&equality).national_insurance_number.as_deref(), Some("AB123456C"));
    let care = service.extended(&social_worker(), survivor.id, &social_care()).await.unwrap();
    assert_eq!(extended_of(&care)["carer"], "yes");
    assert!(DocumentRepository::list_documents(&*store, duplicate.id).await.unwrap().is_empty());

    let events = all_events(&service).await;
    assert_eq!(events.len(), events_before + 1, "one event");
    let event = &events[events.len() - 1].event;
    assert_eq!((event.event_type, event.entity_id), (EventType::PersonMergedEvent, survivor.id));
    assert_eq!(event.event_data.new_data["mergedPersonId"], json!(duplicate.id));

    let survivor_history = service.history(&merger(), survivor.id).await.unwrap();
    assert_eq!(survivor_history.iter().map(|h| h.version_number).collect::<Vec<_>>(), vec![0, 1]);
    assert_eq!(survivor_history[1].reason.as_deref(), Some("Same person"));
    let duplicate_history = service.history(&merger(), duplicate.id).await.unwrap();
    assert_eq!(duplicate_history.iter().map(|h| h.version_number).collect::<Vec<_>>(), vec![0, 1]);
    assert_eq!(duplicate_history[1].event_type, EventType::PersonMergedEvent);
    assert_eq!(duplicate_history[1].new_data["mergedInto"], json!(survivor.id));

    // Search finds the survivor only, by its own details and by the NI number it gained.
    let by_name = SearchQuery { first_name: some("Kwame"), last_name: some("Mensah"), ..query() };
    assert_eq!(search_ids(&service, by_name).await, vec![survivor.id]);
    let by_nino = service.search(&equality_officer(), SearchQuery { nino: some("AB123456C"), ..query() }).await;
    assert_eq!(by_nino.unwrap().hits.iter().map(|h| h.person.id).collect::<Vec<_>>(), vec![survivor.id]);
    // And the person still cannot be created again.
    let again = with_tenure(person_json("Kwame", "Mensah", "1977-07-07"), "1 Mare Street, London E8 1DY", "E8 1DY");
    let again = service.create(&ctx(), again.to_string().as_bytes(), CreateOptions::default()).await;
    assert!(matches!(again, Err(CreatePersonError::Duplicate { .. })), "{again:?}");
}

#[tokio::test]
async fn merging_a_person_into_itself_is_refused() {
    let (service, _store) = setup();
    let person = create(&service).await;

    let result = service.merge(&merger(), person.id, 0, &merge_body(person.id, "Oops")).await;

    assert!(matches!(result, Err(MergeError::SelfMerge)), "{result:?}");
}

#[tokio::test]
async fn merged_and_deleted_persons_are_refused_on_either_side_so_no_cycle_can_form() {
    let (service, _store) = setup();
    let (survivor, duplicate) = survivor_and_duplicate(&service).await;
    service.merge(&merger(), survivor.id, 0, &merge_body(duplicate.id, "Same person")).await.unwrap();

    let again = service.merge(&merger(), survivor.id, 1, &merge_body(duplicate.id, "Again")).await;
    assert!(matches!(again, Err(MergeError::Duplicate(LookupError::Merged { into })) if into == survivor.id));
    let back = service.merge(&merger(), duplicate.id, 1, &merge_body(survivor.id, "Cycle")).await;
    assert!(matches!(back, Err(MergeError::Survivor(LookupError::Merged { .. }))), "{back:?}");

    let deleted = create_named(&service, "Yusuf", "Osman", "1999-09-19").await;
    service.delete(&ctx(), deleted.id, None, None).await.unwrap();
    let into_deleted = service.merge(&merger(), deleted.id, 1, &merge_body(survivor.id, "x")).await;
    assert!(matches!(into_deleted, Err(MergeError::Survivor(LookupError::Deleted))), "{into_deleted:?}");
    let from_deleted = service.merge(&merger(), survivor.id, 1, &merge_body(deleted.id, "x")).await;
    assert!(matches!(from_deleted, Err(MergeError::Duplicate(LookupError::Deleted))), "{from_deleted:?}");
    let unknown = service.merge(&merger(), survivor.id, 1, &merge_body(unknown_id(), "x")).await;
    assert!(matches!(unknown, Err(MergeError::Duplicate(LookupError::NotFound))), "{unknown:?}");
}

#[tokio::test]
async fn merge_with_a_stale_if_match_is_a_version_conflict_and_changes_nothing() {
    let (service, _store) = setup();
    let (survivor, duplicate) = survivor_and_duplicate(&service).await;

    let result = service.merge(&merger(), survivor.id, 7, &merge_body(duplicate.id, "Same person")).await;

    assert!(matches!(result, Err(MergeError::VersionConflict { current: 0 })), "{result:?}");
    assert!(service.get(&ctx(), duplicate.id).await.is_ok());
}

#[tokio::test]
async fn a_merge_body_without_a_reason_is_invalid() {
    let (service, _store) = setup();
    let (survivor, duplicate) = survivor_and_duplicate(&service).await;
    let body = json!({ "duplicateId": duplicate.id }).to_string();

    let result = service.merge(&merger(), survivor.id, 0, body.as_bytes()).await;

    assert!(matches!(result, Err(MergeError::Invalid(_))), "{result:?}");
}

#[tokio::test]
async fn a_merge_survives_a_survivor_becoming_identical_to_a_third_person() {
    let (service, _store) = setup();
    // The survivor lacks a date of birth (staff record); once merged it gains one and matches `third` exactly.
    let mut staff = person_json("Leon", "Hart", "1990-01-01");
    staff.as_object_mut().unwrap().remove("dateOfBirth");
    staff["personTypes"] = json!(["HousingOfficer"]);
    let survivor = create_json(&service, &staff).await;
    let third = create_named(&service, "Leon", "Hart", "1965-04-04").await;
    let mut duplicate = person_json("Leon", "Hart", "1965-04-04");
    duplicate["middleName"] = json!("Paul");
    let duplicate =
        service.create(&ctx(), duplicate.to_string().as_bytes(), allowing_duplicates()).await.unwrap().person;

    let merged = service.merge(&merger(), survivor.id, 0, &merge_body(duplicate.id, "Same person")).await.unwrap();

    assert_eq!(merged.date_of_birth, Some(date(1965, 4, 4)));
    assert!(service.get(&ctx(), third.id).await.is_ok());
}
