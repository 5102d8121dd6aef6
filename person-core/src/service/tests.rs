//! Unit tests of the use cases: over [`InMemoryStore`] with a [`FixedClock`] for behaviour, and over the mockall
//! mocks of the ports to check how the service maps what a store answers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;
use uuid::Uuid;

use super::*;
use crate::api::PersonResponse;
use crate::event::EventData;
use crate::memory::InMemoryStore;
use crate::person::{Name, PersonType, TenureSummary, Title};
use crate::ports::{FixedClock, IdempotencyRecord, MockIdGenerator, MockPersonRepository, RandomIds};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 10, 9, 30, 0).unwrap()
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn service_at(store: &Arc<InMemoryStore>, at: DateTime<Utc>) -> PersonService {
    PersonService::new(store.clone(), Arc::new(FixedClock(at)), Arc::new(RandomIds))
}

fn setup() -> (PersonService, Arc<InMemoryStore>) {
    let store = Arc::new(InMemoryStore::new());
    (service_at(&store, now()), store)
}

fn ctx_for(subject: &str) -> RequestContext {
    RequestContext {
        actor: Actor {
            subject: subject.to_owned(),
            name: "Olu Officer".to_owned(),
            email: "olu@hackney.gov.uk".to_owned(),
        },
        correlation_id: format!("corr-{subject}"),
    }
}

fn ctx() -> RequestContext {
    ctx_for("officer-1")
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

async fn create(service: &PersonService) -> Person {
    service.create(&ctx(), &body(), CreateOptions::default()).await.unwrap().person
}

async fn all_events(service: &PersonService) -> Vec<FeedEntry> {
    service.events(0, MAX_FEED_LIMIT).await.unwrap().entries
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
    store.update(PersonWrite { person: next, expected_version: person.version_number, event, history }).await.unwrap();
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

    let history = service.history(person.id).await.unwrap();
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
    assert_eq!(service.get(person.id).await.unwrap(), person);
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

    let theirs = service.create(&ctx_for("bob"), &body(), with_key("shared-key")).await.unwrap();

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

    let result = service.get(PersonId::new(Uuid::new_v4()).unwrap()).await;

    assert!(matches!(result, Err(LookupError::NotFound)), "{result:?}");
}

#[tokio::test]
async fn get_of_a_deleted_person_is_deleted() {
    let (service, _store) = setup();
    let person = create(&service).await;
    service.delete(&ctx(), person.id, None, None).await.unwrap();

    let result = service.get(person.id).await;

    assert!(matches!(result, Err(LookupError::Deleted)), "{result:?}");
}

#[tokio::test]
async fn get_of_a_merged_person_names_the_survivor() {
    let (service, store) = setup();
    let survivor = create(&service).await;
    let duplicate = create(&service).await;
    merge_via_repository(&store, &duplicate, survivor.id).await;

    let result = service.get(duplicate.id).await;

    assert!(matches!(result, Err(LookupError::Merged { into }) if into == survivor.id), "{result:?}");
    assert_eq!(service.get(survivor.id).await.unwrap(), survivor);
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
    let read = service.get(person.id).await.unwrap();
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
    assert_eq!(service.get(person.id).await.unwrap(), expected);
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

    let history = service.history(person.id).await.unwrap();
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
    assert_eq!(service.get(person.id).await.unwrap().version_number, 0);
    assert_eq!(all_events(&service).await.len(), 1);
    assert_eq!(service.history(person.id).await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_invalid_patch_is_refused_and_stores_nothing() {
    let (service, _store) = setup();
    let person = create(&service).await;

    let result = service.update(&ctx(), person.id, 0, br#"{"firstName": null}"#).await;

    let Err(UpdatePersonError::Invalid(errors)) = result else { panic!("expected Invalid, got {result:?}") };
    assert!(errors.has_code("W15"));
    assert_eq!(service.get(person.id).await.unwrap(), person);
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

    assert!(matches!(service.get(person.id).await, Err(LookupError::Deleted)));
    let tombstone = store.get(person.id).await.unwrap().unwrap();
    assert_eq!((tombstone.status, tombstone.version_number), (PersonStatus::Deleted, 1));
    let events = all_events(&service).await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].event.event_type, EventType::PersonDeletedEvent);
    assert_eq!(events[1].event.entity_id, person.id);
    assert_eq!(events[1].event.event_data.old_data, serde_json::to_value(&person).unwrap());
    let history = service.history(person.id).await.unwrap();
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
    assert!(service.get(person.id).await.is_ok(), "the person is still live");
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

    let result = service.history(PersonId::new(Uuid::new_v4()).unwrap()).await;

    assert!(matches!(result, Err(LookupError::NotFound)), "{result:?}");
}

#[tokio::test]
async fn events_page_through_the_feed_with_next_after() {
    let (service, _store) = setup();
    let ids = [create(&service).await.id, create(&service).await.id, create(&service).await.id];

    let first = service.events(0, 2).await.unwrap();
    let second = service.events(first.next_after, 2).await.unwrap();
    let third = service.events(second.next_after, 2).await.unwrap();

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

    let page = service.events(0, 0).await.unwrap();

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

fn mocked(repo: MockPersonRepository) -> PersonService {
    PersonService::new(Arc::new(repo), Arc::new(FixedClock(now())), Arc::new(RandomIds))
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

    let result = mocked(repo).get(PersonId::new(Uuid::new_v4()).unwrap()).await;

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
    let service = PersonService::new(store, Arc::new(FixedClock(now())), Arc::new(ids));

    let person = service.create(&ctx(), &body(), CreateOptions::default()).await.unwrap().person;

    assert!(!person.id.as_uuid().is_nil());
}
