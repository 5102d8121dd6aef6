//! The client against the real server, in-process on the embedded SQLite store: every method, every error
//! variant provoked for real, the retry protocol (a lost create response never duplicates a person), tokens.
//!
//! Where the server cannot produce a condition itself (it has no rate limiting, so no 429; it never answers
//! 502), a fault-injecting proxy in front of it does; 500 and 503 come from the real router over a failing
//! store.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use common::faulty::{Fault, serve_failing};
use common::proxy::{Action, FaultProxy};
use common::{TestServer, client, draft, fast_retries, token};
use futures::StreamExt;
use person_client::{
    AccessToken, BoxError, CallOptions, ClientError, CreateOptions, CrossReference, FollowOptions, HousingSearchQuery,
    MatchQuery, MetaCapture, PersonApi, PersonClient, PersonPatch, Restriction, SearchCriteria, TokenProvider,
};
use person_core::api::problem_types;
use person_core::audit::AuditAction;
use person_core::equality::{CategoryAnswer, EqualityData};
use person_core::event::{EventType, EventVersion};
use person_core::matching::Grade;
use person_core::{PersonId, PersonType};
use serde_json::json;

/// Generous bound for a stream to produce what the test awaits; never reached when things work.
const DEADLINE: Duration = Duration::from_secs(20);

fn unknown_id() -> PersonId {
    PersonId::new(uuid::Uuid::new_v4()).unwrap()
}

fn reference(text: &str) -> CrossReference {
    CrossReference::parse(text).unwrap()
}

// ---------------------------------------------------------------------------------------------------------
// Every method
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn create_then_get_returns_the_stored_person_with_its_version_and_etag() {
    let server = TestServer::start().await;
    let api = client(&server.base_url);
    let created = api.create(&draft("Kimakhe", "Ndlovu"), &CreateOptions::default()).await.unwrap();
    assert_eq!(created.version_number, 0);
    assert_eq!(created.first_name.as_deref(), Some("Kimakhe"));
    let meta = MetaCapture::new();
    let read = api.with_options(CallOptions::new().capture(&meta)).get(created.id).await.unwrap();
    assert_eq!(read, created);
    let meta = meta.get().unwrap();
    assert_eq!((meta.status, meta.etag.as_deref(), meta.attempts), (200, Some("\"0\""), 1));
    assert!(meta.correlation_id.is_some(), "a generated correlation id is echoed");
    let timing = meta.server_timing.as_deref().unwrap_or_default();
    assert!(timing.starts_with("store;dur=") && timing.contains("operation"), "Server-Timing: {timing}");
    assert_eq!(api.last_meta().unwrap().status, 200);
}

#[tokio::test]
async fn create_v2_creates_a_person_whose_event_carries_version_v2() {
    let server = TestServer::start().await;
    let api = client(&server.base_url);
    let created = api.create_v2(&draft("Lwazi", "Dube"), &CreateOptions::default()).await.unwrap();
    let page = api.feed_page(0, Some(10)).await.unwrap();
    let event = &page.results.iter().find(|e| e.event.entity_id == created.id).unwrap().event;
    assert_eq!((event.event_type, event.version), (EventType::PersonCreatedEvent, EventVersion::V2));
}

#[tokio::test]
async fn update_sends_the_version_read_and_returns_the_changed_person_with_its_history() {
    let server = TestServer::start().await;
    let api = client(&server.base_url);
    let person = api.create(&draft("Thandi", "Mokoena"), &CreateOptions::default()).await.unwrap();
    let patch = PersonPatch::new().middle_name("Naledi").clear_place_of_birth().reason("Marriage certificate seen");
    let changed = api.update(person.id, person.version_number, &patch).await.unwrap();
    assert_eq!(changed.version_number, 1);
    assert_eq!(changed.middle_name.as_deref(), Some("Naledi"));
    assert_eq!(changed.place_of_birth, None);
    let history = api.history(person.id).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[1].reason.as_deref(), Some("Marriage certificate seen"));
    let unchanged = api.update(person.id, 1, &PersonPatch::new().middle_name("Naledi")).await.unwrap();
    assert_eq!(unchanged.version_number, 1, "a patch that changes nothing creates no version");
}

#[tokio::test]
async fn a_caller_correlation_id_reaches_the_history_and_comes_back_in_the_metadata() {
    let server = TestServer::start().await;
    let api = client(&server.base_url);
    let person = api.create(&draft("Amara", "Okafor"), &CreateOptions::default()).await.unwrap();
    let meta = MetaCapture::new();
    let traced = api.with_options(CallOptions::new().correlation_id("complaint-4711").capture(&meta));
    traced.update(person.id, 0, &PersonPatch::new().middle_name("Ifeoma")).await.unwrap();
    assert_eq!(meta.get().unwrap().correlation_id.as_deref(), Some("complaint-4711"));
    let history = api.history(person.id).await.unwrap();
    assert_eq!(history[1].correlation_id, "complaint-4711");
}

#[tokio::test]
async fn delete_makes_later_reads_answer_gone() {
    let server = TestServer::start().await;
    let api = client(&server.base_url);
    let person = api.create(&draft("Gideon", "Asante"), &CreateOptions::default()).await.unwrap();
    api.delete(person.id, Some(0), Some("Created in error".to_owned())).await.unwrap();
    assert!(matches!(api.get(person.id).await, Err(ClientError::Gone)));
    assert!(matches!(api.delete(person.id, None, None).await, Err(ClientError::Gone)));
    let history = api.history(person.id).await.unwrap();
    assert_eq!(history.last().unwrap().reason.as_deref(), Some("Created in error"));
}

#[tokio::test]
async fn search_streams_every_result_across_pages_by_following_links_next() {
    let server = TestServer::start().await;
    let api = client(&server.base_url);
    for first in ["Chidi", "Ngozi", "Emeka"] {
        api.create(&draft(first, "Okonkwo"), &CreateOptions::default()).await.unwrap();
    }
    let criteria = SearchCriteria::new().last_name("Okonkwo").limit(1);
    let first_page = api.search_page(&criteria).await.unwrap();
    assert_eq!((first_page.results.len(), first_page.total), (1, 3));
    let cursor = first_page.next_cursor().unwrap();
    let second_page = api.search_page(&criteria.clone().cursor(cursor)).await.unwrap();
    assert_ne!(second_page.results[0].person.id, first_page.results[0].person.id);

    let all: Vec<_> = api.search(&criteria).collect().await;
    let names: Vec<String> =
        all.into_iter().map(|r| r.unwrap().person.first_name.unwrap_or_default()).collect::<Vec<_>>();
    assert_eq!(names.len(), 3, "{names:?}");
    for first in ["Chidi", "Ngozi", "Emeka"] {
        assert!(names.iter().any(|n| n == first), "{names:?}");
    }
}

#[tokio::test]
async fn a_search_stream_ends_with_the_error_of_a_refused_search() {
    let server = TestServer::start().await;
    let api = client(&server.base_url);
    let results: Vec<_> = api.search(&SearchCriteria::new().person_type(PersonType::Tenant)).collect().await;
    assert_eq!(results.len(), 1);
    assert!(matches!(results[0], Err(ClientError::BadRequest { .. })));
}

#[tokio::test]
async fn housing_search_answers_in_hackneys_shape() {
    let server = TestServer::start().await;
    let api = client(&server.base_url);
    let person = api.create(&draft("Folake", "Adeyemi"), &CreateOptions::default()).await.unwrap();
    let page = api.housing_search(&HousingSearchQuery::new("Folake Adeyemi")).await.unwrap();
    assert_eq!(page.total, 1);
    assert_eq!(page.persons[0].id, person.id);
    assert_eq!(page.persons[0].firstname.as_deref(), Some("Folake"));
    assert_eq!(page.persons[0].tenures[0].post_code.as_deref(), Some("E8 1DY"));
}

#[tokio::test]
async fn match_finds_a_recorded_person_with_its_grade_and_explanation() {
    let server = TestServer::start().await;
    let api = client(&server.base_url);
    let person = api.create(&draft("Margaret", "Okonkwo"), &CreateOptions::default()).await.unwrap();
    let date = chrono::NaiveDate::from_ymd_opt(1986, 5, 17).unwrap();
    let results = api.match_person(&MatchQuery::new("Peggy", "Okonkwo", date)).await.unwrap();
    assert_eq!(results[0].person.id, person.id);
    assert!(results[0].grade.is_some());
    assert!(results[0].explanation.iter().any(|c| c.field == "firstName"), "{:?}", results[0].explanation);
    let exact = api.match_person(&MatchQuery::new("Margaret", "Okonkwo", date)).await.unwrap();
    assert_eq!(exact[0].grade, Some(Grade::Certain));
}

#[tokio::test]
async fn merge_folds_a_duplicate_into_the_survivor_and_the_duplicate_then_reads_as_moved() {
    let server = TestServer::start().await;
    let api = client(&server.base_url);
    let survivor = api.create(&draft("Kwame", "Mensah"), &CreateOptions::default()).await.unwrap();
    let allow = CreateOptions { allow_duplicate: true, ..CreateOptions::default() };
    let duplicate = api.create(&draft("Kwame", "Mensah"), &allow).await.unwrap();
    let merged = api.merge(survivor.id, 0, duplicate.id, "Recorded twice").await.unwrap();
    assert_eq!((merged.id, merged.version_number), (survivor.id, 1));
    // GET answers 308: surfaced, not followed.
    match api.get(duplicate.id).await {
        Err(ClientError::Moved { to }) => assert_eq!(to, survivor.id),
        other => panic!("expected Moved, got {other:?}"),
    }
    // Writes answer 409 `merged`: the same variant.
    match api.update(duplicate.id, 0, &PersonPatch::new().middle_name("Kofi")).await {
        Err(ClientError::Moved { to }) => assert_eq!(to, survivor.id),
        other => panic!("expected Moved, got {other:?}"),
    }
    match api.merge(survivor.id, 1, survivor.id, "Self").await {
        Err(ClientError::Invalid(errors)) => assert_eq!(errors[0].code, "self_merge"),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[tokio::test]
async fn equality_data_is_written_read_and_rewritten_with_its_own_version() {
    let server = TestServer::start().await;
    let api = client(&server.base_url);
    let person = api.create(&draft("Zoë", "Kowalski"), &CreateOptions::default()).await.unwrap();
    let data = EqualityData {
        national_insurance_number: Some("ab 12 34 56 c".to_owned()),
        nationalities: vec!["pl".to_owned()],
        ..EqualityData::default()
    };
    let first = api.put_equality(person.id, None, &data).await.unwrap();
    assert_eq!(first.version, 0);
    assert_eq!(first.body.national_insurance_number.as_deref(), Some("AB123456C"), "stored normalised");
    let read = api.equality(person.id).await.unwrap();
    assert_eq!(read, first);
    let more = EqualityData {
        religion: Some(CategoryAnswer { code: "prefer-not-to-say".to_owned(), description: None }),
        ..first.body.clone()
    };
    let second = api.put_equality(person.id, Some(read.version), &more).await.unwrap();
    assert_eq!(second.version, 1);
    assert_eq!(api.get(person.id).await.unwrap().version_number, 0, "the person's own version is untouched");
}

#[tokio::test]
async fn extended_data_is_stored_per_area_replaced_and_deleted() {
    let server = TestServer::start().await;
    let api = client(&server.base_url);
    let person = api.create(&draft("Siobhan", "Byrne"), &CreateOptions::default()).await.unwrap();
    let document = json!({ "caseId": "SC-1042" }).as_object().unwrap().clone();
    let stored = api.put_extended(person.id, "social-care", None, &document).await.unwrap();
    assert_eq!(stored.version, 0);
    let mut changed = stored.body.clone();
    changed.insert("allocatedWorker".to_owned(), json!("team-3"));
    let replaced = api.put_extended(person.id, "social-care", Some(0), &changed).await.unwrap();
    assert_eq!((replaced.version, replaced.body.len()), (1, 2));
    assert_eq!(api.extended(person.id, "social-care").await.unwrap(), replaced);
    api.delete_extended(person.id, "social-care", Some(1)).await.unwrap();
    assert!(matches!(api.extended(person.id, "social-care").await, Err(ClientError::NotFound)));
}

#[tokio::test]
async fn restriction_of_processing_is_set_and_lifted() {
    let server = TestServer::start().await;
    let api = client(&server.base_url);
    let person = api.create(&draft("Oluwaseun", "Bello"), &CreateOptions::default()).await.unwrap();
    let restriction = Restriction { restricted: true, reason: Some("Data subject request DSR-17".to_owned()) };
    let restricted = api.set_restriction(person.id, Some(0), &restriction).await.unwrap();
    assert!(restricted.processing_restricted);
    assert_eq!(restricted.version_number, 1);
    let lifted = api.set_restriction(person.id, None, &Restriction { restricted: false, reason: None }).await.unwrap();
    assert!(!lifted.processing_restricted);
}

#[tokio::test]
async fn a_declared_purpose_is_recorded_in_the_access_log_and_the_subject_access_export() {
    let server = TestServer::start().await;
    let api = client(&server.base_url);
    let person = api.create(&draft("Priya", "Sharma"), &CreateOptions::default()).await.unwrap();
    api.with_options(CallOptions::new().purpose("Tenancy audit 2026")).get(person.id).await.unwrap();
    api.put_extended(person.id, "housing-needs", None, &json!({ "band": "A" }).as_object().unwrap().clone())
        .await
        .unwrap();
    let log = api.access_log(person.id, 0, Some(100)).await.unwrap();
    let read = log.results.iter().find(|r| r.entry.action == AuditAction::PersonRead).unwrap();
    assert_eq!(read.entry.purpose.as_deref(), Some("Tenancy audit 2026"));
    // Reading the first page is itself recorded, after it was served: the next page holds that entry only.
    let later = api.access_log(person.id, log.next_cursor.parse().unwrap(), None).await.unwrap();
    let actions: Vec<AuditAction> = later.results.iter().map(|r| r.entry.action).collect();
    assert_eq!(actions, [AuditAction::AccessLogRead]);
    let end = api.access_log(person.id, later.next_cursor.parse().unwrap(), None).await.unwrap();
    assert!(end.results.is_empty());

    let export = api.subject_access(person.id).await.unwrap();
    assert_eq!(export.person.id, person.id);
    assert_eq!(export.history.len(), 1);
    assert_eq!(export.extended["housing-needs"].version, 0);
    assert!(export.equality.is_none());
    assert!(export.disclosure_log.iter().any(|r| r.entry.action == AuditAction::AccessLogRead));
}

#[tokio::test]
async fn follow_feed_yields_every_event_with_its_position_and_then_waits_for_new_ones() {
    let server = TestServer::start().await;
    let api = client(&server.base_url);
    let first = api.create(&draft("Ama", "Boateng"), &CreateOptions::default()).await.unwrap();
    api.update(first.id, 0, &PersonPatch::new().middle_name("Serwaa")).await.unwrap();
    let options = FollowOptions { page_size: Some(1), poll_interval: Duration::from_millis(20) };
    let mut feed = api.follow_feed(0, options);
    let mut positions = Vec::new();
    for _ in 0..2 {
        let entry = tokio::time::timeout(DEADLINE, feed.next()).await.unwrap().unwrap().unwrap();
        positions.push(entry.position);
    }
    assert!(positions[0] < positions[1], "{positions:?}");

    // Caught up: the stream polls until something new is committed.
    let writer = api.clone();
    let second =
        tokio::spawn(async move { writer.create(&draft("Kojo", "Boateng"), &CreateOptions::default()).await.unwrap() });
    let entry = tokio::time::timeout(DEADLINE, feed.next()).await.unwrap().unwrap().unwrap();
    let second = second.await.unwrap();
    assert_eq!((entry.event.entity_id, entry.event.event_type), (second.id, EventType::PersonCreatedEvent));
    assert!(entry.position > positions[1]);

    // Resuming from a persisted position yields only what came after it.
    let mut resumed = api.follow_feed(positions[1], options);
    let next = tokio::time::timeout(DEADLINE, resumed.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(next.position, entry.position);
}

#[tokio::test]
async fn health_probes_answer_on_a_working_server() {
    let server = TestServer::start().await;
    let api = client(&server.base_url);
    api.ping().await.unwrap();
    api.live().await.unwrap();
    assert!(api.ready().await.unwrap());
}

// ---------------------------------------------------------------------------------------------------------
// Cross-references
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn adding_a_reference_makes_a_new_version_and_adding_it_again_changes_nothing() {
    let server = TestServer::start().await;
    let api = client(&server.base_url);
    let person = api.create(&draft("Abena", "Asare"), &CreateOptions::default()).await.unwrap();
    let tenure = reference("tenure:0b4f6c1e-2d1a-4e8b-9f00-5a7c3e2b1d90");
    let meta = MetaCapture::new();
    let traced = api.with_options(CallOptions::new().capture(&meta));

    let added = traced.add_reference(person.id, None, &tenure, Some("Tenancy signed".to_owned())).await.unwrap();

    assert!(added.added);
    assert_eq!((added.version_number, added.references.clone()), (1, vec![tenure.clone()]));
    let seen = meta.get().unwrap();
    assert_eq!((seen.status, seen.etag.as_deref()), (201, Some("\"1\"")));
    let listed = api.references(person.id).await.unwrap();
    assert_eq!((listed.person_id, listed.version_number, listed.references), (person.id, 1, vec![tenure.clone()]));
    assert_eq!(api.get(person.id).await.unwrap().references, vec![tenure.clone()]);
    assert_eq!(api.history(person.id).await.unwrap()[1].reason.as_deref(), Some("Tenancy signed"));

    let again = traced.add_reference(person.id, Some(1), &tenure, None).await.unwrap();

    assert!(!again.added, "the person already holds it");
    assert_eq!((again.version_number, again.references), (1, vec![tenure]));
    assert_eq!(meta.get().unwrap().status, 200);
    assert_eq!(api.history(person.id).await.unwrap().len(), 2, "no new version");
}

#[tokio::test]
async fn a_reference_another_person_holds_is_reference_taken_naming_the_owner() {
    let server = TestServer::start().await;
    let api = client(&server.base_url);
    let first = api.create(&draft("Kofi", "Annan"), &CreateOptions::default()).await.unwrap();
    let second = api.create(&draft("Efua", "Sutherland"), &CreateOptions::default()).await.unwrap();
    let tenure = reference("tenure:T-1042");
    api.add_reference(first.id, None, &tenure, None).await.unwrap();

    let taken = api.add_reference(second.id, None, &tenure, None).await;

    match taken {
        Err(ClientError::ReferenceTaken { reference, owner }) => {
            assert_eq!(reference, tenure);
            assert_eq!(owner, Some(first.id));
        }
        other => panic!("expected ReferenceTaken, got {other:?}"),
    }
    assert!(api.references(second.id).await.unwrap().references.is_empty());
    assert_eq!(api.get(second.id).await.unwrap().version_number, 0, "the refused add changed nothing");
}

#[tokio::test]
async fn find_by_reference_answers_the_holder_and_none_for_a_reference_nobody_holds() {
    let server = TestServer::start().await;
    let api = client(&server.base_url);
    let holder = api.create(&draft("Ama", "Ata Aidoo"), &CreateOptions::default()).await.unwrap();
    let register = reference("housing-register:HR-2026-0042");
    api.add_reference(holder.id, None, &register, None).await.unwrap();

    let found = api.find_by_reference(&register).await.unwrap().unwrap();

    assert_eq!((found.id, found.version_number), (holder.id, 1));
    assert_eq!(found.references, vec![register]);
    assert_eq!(api.find_by_reference(&reference("housing-register:HR-2026-0043")).await.unwrap(), None);
    assert_eq!(api.find_by_reference(&reference("tenure:HR-2026-0042")).await.unwrap(), None, "the system counts");
}

#[tokio::test]
async fn an_id_with_slash_hash_space_colon_and_query_characters_round_trips_through_add_find_and_remove() {
    let server = TestServer::start().await;
    let api = client(&server.base_url);
    let person = api.create(&draft("Yaa", "Asantewaa"), &CreateOptions::default()).await.unwrap();
    let awkward = reference("finance.accounts:acc/2026 #7:b+c&d=e%20f?g");
    assert_eq!(awkward.id.as_str(), "acc/2026 #7:b+c&d=e%20f?g");

    let added = api.add_reference(person.id, None, &awkward, None).await.unwrap();
    assert_eq!(added.references, vec![awkward.clone()], "stored exactly as given");
    let found = api.find_by_reference(&awkward).await.unwrap().unwrap();
    assert_eq!(found.id, person.id);
    let version = api.remove_reference(person.id, None, &awkward, Some("Account closed".to_owned())).await.unwrap();

    assert_eq!(version, 2);
    assert!(api.references(person.id).await.unwrap().references.is_empty());
    assert_eq!(api.find_by_reference(&awkward).await.unwrap(), None);
    assert_eq!(api.history(person.id).await.unwrap()[2].reason.as_deref(), Some("Account closed"));
}

#[tokio::test]
async fn removing_a_reference_makes_a_new_version_frees_it_and_removing_it_again_is_not_found() {
    let server = TestServer::start().await;
    let api = client(&server.base_url);
    let first = api.create(&draft("Kwesi", "Brew"), &CreateOptions::default()).await.unwrap();
    let second = api.create(&draft("Esi", "Brew"), &CreateOptions::default()).await.unwrap();
    let tenure = reference("tenure:T-77");
    api.add_reference(first.id, None, &tenure, None).await.unwrap();
    let meta = MetaCapture::new();

    let version =
        api.with_options(CallOptions::new().capture(&meta)).remove_reference(first.id, Some(1), &tenure, None).await;

    assert_eq!(version.unwrap(), 2);
    let seen = meta.get().unwrap();
    assert_eq!((seen.status, seen.etag.as_deref()), (204, Some("\"2\"")));
    assert!(matches!(api.remove_reference(first.id, None, &tenure, None).await, Err(ClientError::NotFound)));
    assert!(matches!(api.remove_reference(unknown_id(), None, &tenure, None).await, Err(ClientError::NotFound)));
    let claimed = api.add_reference(second.id, None, &tenure, None).await.unwrap();
    assert!(claimed.added, "a removed reference may be claimed by another person");
    assert_eq!(api.find_by_reference(&tenure).await.unwrap().map(|p| p.id), Some(second.id));
}

#[tokio::test]
async fn a_stale_version_on_a_reference_change_is_a_version_conflict() {
    let server = TestServer::start().await;
    let api = client(&server.base_url);
    let person = api.create(&draft("Nana", "Oforiatta"), &CreateOptions::default()).await.unwrap();
    let tenure = reference("tenure:T-9");
    api.add_reference(person.id, Some(0), &tenure, None).await.unwrap();

    let stale_add = api.add_reference(person.id, Some(0), &reference("tenure:T-10"), None).await;
    let stale_remove = api.remove_reference(person.id, Some(0), &tenure, None).await;

    assert!(matches!(stale_add, Err(ClientError::VersionConflict { current: Some(1) })), "{stale_add:?}");
    assert!(matches!(stale_remove, Err(ClientError::VersionConflict { current: Some(1) })), "{stale_remove:?}");
    assert_eq!(api.references(person.id).await.unwrap().references, vec![tenure]);
}

#[tokio::test]
async fn reference_calls_on_unknown_deleted_and_merged_persons_answer_like_every_person_endpoint() {
    let server = TestServer::start().await;
    let api = client(&server.base_url);
    let tenure = reference("tenure:T-5");
    assert!(matches!(api.references(unknown_id()).await, Err(ClientError::NotFound)));
    assert!(matches!(api.add_reference(unknown_id(), None, &tenure, None).await, Err(ClientError::NotFound)));
    let deleted = api.create(&draft("Adjoa", "Mensima"), &CreateOptions::default()).await.unwrap();
    api.delete(deleted.id, None, None).await.unwrap();
    assert!(matches!(api.references(deleted.id).await, Err(ClientError::Gone)));
    assert!(matches!(api.add_reference(deleted.id, None, &tenure, None).await, Err(ClientError::Gone)));
    let survivor = api.create(&draft("Kojo", "Antwi"), &CreateOptions::default()).await.unwrap();
    let allow = CreateOptions { allow_duplicate: true, ..CreateOptions::default() };
    let duplicate = api.create(&draft("Kojo", "Antwi"), &allow).await.unwrap();
    api.add_reference(duplicate.id, None, &tenure, None).await.unwrap();
    api.merge(survivor.id, 0, duplicate.id, "Recorded twice").await.unwrap();
    assert!(matches!(api.references(duplicate.id).await, Err(ClientError::Moved { to }) if to == survivor.id));
    assert!(matches!(
        api.add_reference(duplicate.id, None, &reference("tenure:T-6"), None).await,
        Err(ClientError::Moved { to }) if to == survivor.id
    ));
    assert_eq!(api.references(survivor.id).await.unwrap().references, vec![tenure.clone()], "moved by the merge");
    assert_eq!(api.find_by_reference(&tenure).await.unwrap().map(|p| p.id), Some(survivor.id));
}

#[tokio::test]
async fn changing_references_needs_references_write_and_reading_them_persons_read() {
    let server = TestServer::start_with_tokens().await;
    let officer = PersonClient::builder(&server.base_url).token(token("officer-3", &["officers"])).build().unwrap();
    let person = officer.create(&draft("Akua", "Donkor"), &CreateOptions::default()).await.unwrap();
    match officer.add_reference(person.id, None, &reference("tenure:T-1"), None).await {
        Err(ClientError::Forbidden { detail }) => assert!(detail.contains("references:write"), "{detail}"),
        other => panic!("expected Forbidden, got {other:?}"),
    }
    let reader = PersonClient::builder(&server.base_url).token(token("reader-3", &["readers"])).build().unwrap();
    assert!(reader.references(person.id).await.unwrap().references.is_empty());
    assert_eq!(reader.find_by_reference(&reference("tenure:T-1")).await.unwrap(), None);
}

// ---------------------------------------------------------------------------------------------------------
// Every error variant, provoked for real
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_unknown_id_is_not_found() {
    let server = TestServer::start().await;
    assert!(matches!(client(&server.base_url).get(unknown_id()).await, Err(ClientError::NotFound)));
}

#[tokio::test]
async fn a_stale_version_is_a_conflict_naming_the_current_version() {
    let server = TestServer::start().await;
    let api = client(&server.base_url);
    let person = api.create(&draft("Yaw", "Owusu"), &CreateOptions::default()).await.unwrap();
    api.update(person.id, 0, &PersonPatch::new().middle_name("Kofi")).await.unwrap();
    let stale = api.update(person.id, 0, &PersonPatch::new().middle_name("Kwabena")).await;
    assert!(matches!(stale, Err(ClientError::VersionConflict { current: Some(1) })), "{stale:?}");
}

#[tokio::test]
async fn rewriting_a_document_without_its_version_is_precondition_required() {
    let server = TestServer::start().await;
    let api = client(&server.base_url);
    let person = api.create(&draft("Ewa", "Nowak"), &CreateOptions::default()).await.unwrap();
    let data = EqualityData { nationalities: vec!["PL".to_owned()], ..EqualityData::default() };
    api.put_equality(person.id, None, &data).await.unwrap();
    assert!(matches!(api.put_equality(person.id, None, &data).await, Err(ClientError::PreconditionRequired)));
    assert!(matches!(
        api.put_extended(person.id, "social-care", Some(4), &serde_json::Map::new()).await,
        Err(ClientError::VersionConflict { current: None })
    ));
}

#[tokio::test]
async fn creating_a_recorded_person_again_is_a_duplicate_listing_the_candidates() {
    let server = TestServer::start().await;
    let api = client(&server.base_url);
    let recorded = api.create(&draft("Femi", "Adebayo"), &CreateOptions::default()).await.unwrap();
    match api.create(&draft("Femi", "Adebayo"), &CreateOptions::default()).await {
        Err(ClientError::Duplicate { candidates }) => {
            assert_eq!(candidates[0].id, recorded.id);
            assert_eq!(candidates[0].person_ref, recorded.person_ref);
        }
        other => panic!("expected Duplicate, got {other:?}"),
    }
}

#[tokio::test]
async fn a_taken_id_is_a_duplicate_id() {
    let server = TestServer::start().await;
    let api = client(&server.base_url);
    let recorded = api.create(&draft("Bola", "Ade"), &CreateOptions::default()).await.unwrap();
    let mut other = draft("Tunde", "Bakare");
    other.id = Some(recorded.id.as_uuid());
    assert!(matches!(api.create(&other, &CreateOptions::default()).await, Err(ClientError::DuplicateId)));
}

#[tokio::test]
async fn an_invalid_person_is_refused_with_every_field_error() {
    let server = TestServer::start().await;
    let api = client(&server.base_url);
    let mut invalid = draft("x", "y");
    invalid.first_name = None;
    invalid.surname = None;
    invalid.date_of_birth = Some("2999-01-01".to_owned());
    match api.create(&invalid, &CreateOptions::default()).await {
        Err(ClientError::Invalid(errors)) => {
            let codes: Vec<&str> = errors.iter().map(|e| e.code.as_str()).collect();
            for code in ["W15", "W16", "W10"] {
                assert!(codes.contains(&code), "{codes:?}");
            }
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[tokio::test]
async fn an_idempotency_key_reused_with_another_body_is_refused() {
    let server = TestServer::start().await;
    let api = client(&server.base_url);
    let keyed = CreateOptions { idempotency_key: Some("order-77".to_owned()), ..CreateOptions::default() };
    let body = draft("Ike", "Eze");
    let first = api.create(&body, &keyed).await.unwrap();
    let replay = api.create(&body, &keyed).await.unwrap();
    assert_eq!(replay.id, first.id, "the same key and body replays the create");
    assert!(api.last_meta().unwrap().idempotent_replayed);
    let reused = api.create(&draft("Obi", "Eze"), &keyed).await;
    assert!(matches!(reused, Err(ClientError::IdempotencyKeyReused)), "{reused:?}");
}

#[tokio::test]
async fn malformed_requests_are_bad_requests_naming_the_parameter() {
    let server = TestServer::start().await;
    let api = client(&server.base_url);
    match api.search_page(&SearchCriteria::new().q("ab").limit(500)).await {
        Err(ClientError::BadRequest { errors, .. }) => assert_eq!(errors[0].field, "limit"),
        other => panic!("expected BadRequest, got {other:?}"),
    }
    match api.extended(unknown_id(), "Social_Care").await {
        Err(ClientError::BadRequest { errors, .. }) => assert_eq!(errors[0].field, "area"),
        other => panic!("expected BadRequest, got {other:?}"),
    }
}

#[tokio::test]
async fn an_oversized_document_is_rejected_with_its_status() {
    let server = TestServer::start().await;
    let api = client(&server.base_url);
    let person = api.create(&draft("Nia", "Campbell"), &CreateOptions::default()).await.unwrap();
    let big = json!({ "notes": "x".repeat(70 * 1024) }).as_object().unwrap().clone();
    match api.put_extended(person.id, "social-care", None, &big).await {
        Err(ClientError::Rejected { status: 413, problem }) => {
            assert_eq!(problem.unwrap().problem_type, problem_types::PAYLOAD_TOO_LARGE);
        }
        other => panic!("expected Rejected 413, got {other:?}"),
    }
}

#[tokio::test]
async fn without_a_token_a_secured_server_answers_unauthorised() {
    let server = TestServer::start_with_tokens().await;
    assert!(matches!(client(&server.base_url).get(unknown_id()).await, Err(ClientError::Unauthorised)));
    let expired = PersonClient::builder(&server.base_url).token("not.a.jwt").build().unwrap();
    assert!(matches!(expired.get(unknown_id()).await, Err(ClientError::Unauthorised)));
}

#[tokio::test]
async fn a_token_lacking_the_permission_is_forbidden_naming_it() {
    let server = TestServer::start_with_tokens().await;
    let reader = PersonClient::builder(&server.base_url).token(token("reader-1", &["readers"])).build().unwrap();
    match reader.create(&draft("Ada", "Obi"), &CreateOptions::default()).await {
        Err(ClientError::Forbidden { detail }) => assert!(detail.contains("persons:write"), "{detail}"),
        other => panic!("expected Forbidden, got {other:?}"),
    }
    let officer = PersonClient::builder(&server.base_url).token(token("officer-1", &["officers"])).build().unwrap();
    let person = officer.create(&draft("Ada", "Obi"), &CreateOptions::default()).await.unwrap();
    assert_eq!(reader.get(person.id).await.unwrap().id, person.id);
}

/// Hands out a refused token until the client reports it refused, then a valid one.
struct RotatingProvider {
    valid: String,
    invalidated: AtomicUsize,
    asked: AtomicUsize,
}

#[async_trait]
impl TokenProvider for RotatingProvider {
    async fn token(&self) -> Result<AccessToken, BoxError> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        if self.invalidated.load(Ordering::SeqCst) == 0 {
            Ok(AccessToken::new("stale.token.value"))
        } else {
            Ok(AccessToken::new(self.valid.clone()))
        }
    }

    fn invalidate(&self) {
        self.invalidated.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_refused_token_from_a_provider_is_refreshed_once_and_the_call_succeeds() {
    let server = TestServer::start_with_tokens().await;
    let provider = Arc::new(RotatingProvider {
        valid: token("officer-2", &["officers"]),
        invalidated: AtomicUsize::new(0),
        asked: AtomicUsize::new(0),
    });
    let api = PersonClient::builder(&server.base_url)
        .token_provider(provider.clone())
        .retry(fast_retries(1))
        .build()
        .unwrap();
    // Retries are off, yet the refused token is refreshed once: a 401 means nothing was processed.
    let person = api.create(&draft("Kemi", "Ojo"), &CreateOptions::default()).await.unwrap();
    assert_eq!(person.version_number, 0);
    assert_eq!(provider.invalidated.load(Ordering::SeqCst), 1);
    assert_eq!(provider.asked.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_provider_that_fails_is_a_credentials_error() {
    struct Broken;
    #[async_trait]
    impl TokenProvider for Broken {
        async fn token(&self) -> Result<AccessToken, BoxError> {
            Err("the identity provider is down".into())
        }
    }
    let server = TestServer::start_with_tokens().await;
    let api = PersonClient::builder(&server.base_url).token_provider(Arc::new(Broken)).build().unwrap();
    assert!(matches!(api.ping().await, Err(ClientError::Credentials(_))));
}

#[tokio::test]
async fn a_429_with_a_short_retry_after_is_retried_and_the_call_succeeds() {
    // The server has no rate limiting (yet): the proxy answers the first read with 429.
    let server = TestServer::start().await;
    let proxy = FaultProxy::start(&server.base_url).await;
    let api = client(&proxy.base_url);
    let person = api.create(&draft("Ngozi", "Eze"), &CreateOptions::default()).await.unwrap();
    let path = format!("/api/v1/persons/{}", person.id);
    let too_many =
        Action::Respond { status: 429, headers: vec![("retry-after".to_owned(), "0".to_owned())], body: String::new() };
    proxy.on("GET", &path, 1, too_many);
    let meta = MetaCapture::new();
    let read = api.with_options(CallOptions::new().capture(&meta)).get(person.id).await.unwrap();
    assert_eq!(read.id, person.id);
    assert_eq!(meta.get().unwrap().attempts, 2);
    assert_eq!(proxy.count("GET", &path), 2);
}

#[tokio::test]
async fn a_429_asking_for_longer_than_the_policy_allows_is_too_many_requests_at_once() {
    let server = TestServer::start().await;
    let proxy = FaultProxy::start(&server.base_url).await;
    let too_many = Action::Respond {
        status: 429,
        headers: vec![("retry-after".to_owned(), "120".to_owned())],
        body: String::new(),
    };
    proxy.on("GET", "/api/v1/persons/", 1, too_many);
    let id = unknown_id();
    let result = client(&proxy.base_url).get(id).await;
    assert!(
        matches!(result, Err(ClientError::TooManyRequests { retry_after: Some(d) }) if d == Duration::from_secs(120)),
        "{result:?}"
    );
    assert_eq!(proxy.count("GET", &format!("/api/v1/persons/{id}")), 1, "no retry before the server's time");
}

#[tokio::test]
async fn a_store_outage_is_a_server_error_503_and_not_ready() {
    let base_url = serve_failing(Fault::Unavailable).await;
    let api = client(&base_url);
    let meta = MetaCapture::new();
    // The server asks for 5 s (`Retry-After: 5`), more than this policy's 50 ms: the client gives up at once.
    match api.with_options(CallOptions::new().capture(&meta)).get(unknown_id()).await {
        Err(ClientError::Server { status: 503, problem }) => {
            let problem = problem.unwrap();
            assert_eq!(problem.problem_type, problem_types::UNAVAILABLE);
            assert_eq!(Some(problem.correlation_id), meta.get().unwrap().correlation_id);
        }
        other => panic!("expected Server 503, got {other:?}"),
    }
    assert_eq!(meta.get().unwrap().attempts, 1);
    assert!(!api.ready().await.unwrap());
}

#[tokio::test]
async fn an_internal_error_is_a_server_error_500_and_is_not_retried() {
    let base_url = serve_failing(Fault::Broken).await;
    let meta = MetaCapture::new();
    let api = client(&base_url).with_options(CallOptions::new().capture(&meta));
    match api.get(unknown_id()).await {
        Err(ClientError::Server { status: 500, problem }) => {
            assert_eq!(problem.unwrap().problem_type, problem_types::INTERNAL);
        }
        other => panic!("expected Server 500, got {other:?}"),
    }
    assert_eq!(meta.get().unwrap().attempts, 1);
}

#[tokio::test]
async fn bad_gateways_are_retried_up_to_the_policy_then_a_server_error() {
    let server = TestServer::start().await;
    let proxy = FaultProxy::start(&server.base_url).await;
    let bad_gateway = Action::Respond { status: 502, headers: Vec::new(), body: "<html>bad gateway</html>".to_owned() };
    proxy.on("GET", "/livez", 10, bad_gateway);
    let result = client(&proxy.base_url).live().await;
    assert!(matches!(result, Err(ClientError::Server { status: 502, problem: None })), "{result:?}");
    assert_eq!(proxy.count("GET", "/livez"), 3, "three attempts");
}

#[tokio::test]
async fn a_passing_503_is_retried_transparently() {
    let server = TestServer::start().await;
    let proxy = FaultProxy::start(&server.base_url).await;
    let unavailable =
        Action::Respond { status: 503, headers: vec![("retry-after".to_owned(), "0".to_owned())], body: String::new() };
    proxy.on("POST", "/api/v1/persons/match", 2, unavailable);
    let date = chrono::NaiveDate::from_ymd_opt(1986, 5, 17).unwrap();
    let results = client(&proxy.base_url).match_person(&MatchQuery::new("Nobody", "Known", date)).await.unwrap();
    assert!(results.is_empty());
    assert_eq!(proxy.count("POST", "/api/v1/persons/match"), 3);
}

#[tokio::test]
async fn an_unreachable_server_is_a_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let result = client(&format!("http://{address}")).ping().await;
    match result {
        Err(ClientError::Transport(error)) => assert!(error.is_connect(), "{error:?}"),
        other => panic!("expected Transport, got {other:?}"),
    }
}

#[tokio::test]
async fn a_malformed_body_is_a_decode_error() {
    let server = TestServer::start().await;
    let proxy = FaultProxy::start(&server.base_url).await;
    let malformed = Action::Respond {
        status: 200,
        headers: vec![("content-type".to_owned(), "application/json".to_owned())],
        body: r#"{"id": 42, "surname": "Leaked Name"}"#.to_owned(),
    };
    proxy.on("GET", "/api/v1/persons/", 1, malformed);
    match client(&proxy.base_url).get(unknown_id()).await {
        Err(ClientError::Decode(error)) => {
            assert_eq!(error.status(), 200);
            assert!(!format!("{error} {error:?}").contains("Leaked"), "no body text in the error");
        }
        other => panic!("expected Decode, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------------------
// The retry protocol
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_create_whose_response_is_lost_is_retried_with_its_key_and_creates_exactly_one_person() {
    let server = TestServer::start().await;
    let proxy = FaultProxy::start(&server.base_url).await;
    // The first create reaches the server, which commits and answers; the proxy then drops the connection.
    proxy.on("POST", "/api/v1/persons", 1, Action::ForwardThenDrop);
    let meta = MetaCapture::new();
    let api = client(&proxy.base_url).with_options(CallOptions::new().capture(&meta));

    let person = api.create(&draft("Chiamaka", "Nwosu"), &CreateOptions::default()).await.unwrap();

    assert_eq!(proxy.count("POST", "/api/v1/persons"), 2, "the client retried");
    let meta = meta.get().unwrap();
    assert!(meta.idempotent_replayed, "the retry was answered from the first create");
    assert_eq!(meta.attempts, 2);
    let direct = client(&server.base_url);
    assert_eq!(direct.get(person.id).await.unwrap(), person);
    let events = direct.feed_page(0, Some(1000)).await.unwrap().results;
    let creates: Vec<_> = events.iter().filter(|e| e.event.event_type == EventType::PersonCreatedEvent).collect();
    assert_eq!(creates.len(), 1, "exactly one person was created");
    assert_eq!(creates[0].event.entity_id, person.id);
    let found = direct.search_page(&SearchCriteria::new().first_name("Chiamaka").last_name("Nwosu")).await.unwrap();
    assert_eq!(found.total, 1);
}

#[tokio::test]
async fn an_update_whose_response_is_lost_is_not_retried() {
    let server = TestServer::start().await;
    let proxy = FaultProxy::start(&server.base_url).await;
    let api = client(&proxy.base_url);
    let person = api.create(&draft("Adaeze", "Okoro"), &CreateOptions::default()).await.unwrap();
    let path = format!("/api/v1/persons/{}", person.id);
    proxy.on("PATCH", &path, 1, Action::ForwardThenDrop);

    let lost = api.update(person.id, 0, &PersonPatch::new().middle_name("Chioma")).await;

    assert!(matches!(lost, Err(ClientError::Transport(_))), "{lost:?}");
    assert_eq!(proxy.count("PATCH", &path), 1, "a PATCH is never repeated blindly");
    assert_eq!(api.get(person.id).await.unwrap().version_number, 1, "re-reading shows it was applied");
}

#[tokio::test]
async fn an_add_whose_response_is_lost_is_retried_and_reports_the_reference_as_held() {
    let server = TestServer::start().await;
    let proxy = FaultProxy::start(&server.base_url).await;
    let api = client(&proxy.base_url);
    let person = api.create(&draft("Ekow", "Quansah"), &CreateOptions::default()).await.unwrap();
    let path = format!("/api/v1/persons/{}/references", person.id);
    proxy.on("POST", &path, 1, Action::ForwardThenDrop);
    let meta = MetaCapture::new();
    let traced = api.with_options(CallOptions::new().capture(&meta));
    let tenure = reference("tenure:T-3");

    let change = traced.add_reference(person.id, None, &tenure, None).await.unwrap();

    assert_eq!(proxy.count("POST", &path), 2, "the client retried");
    assert_eq!(meta.get().unwrap().attempts, 2);
    assert!(!change.added, "the retry found the reference the first attempt added");
    assert_eq!(change.version_number, 1, "exactly one new version");
    assert_eq!(api.history(person.id).await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_remove_whose_response_is_lost_is_retried_and_answers_not_found() {
    let server = TestServer::start().await;
    let proxy = FaultProxy::start(&server.base_url).await;
    let api = client(&proxy.base_url);
    let person = api.create(&draft("Abla", "Dzifa"), &CreateOptions::default()).await.unwrap();
    let tenure = reference("tenure:T-4");
    api.add_reference(person.id, None, &tenure, None).await.unwrap();
    let path = format!("/api/v1/persons/{}/references", person.id);
    proxy.on("DELETE", &path, 1, Action::ForwardThenDrop);

    let lost = api.remove_reference(person.id, None, &tenure, None).await;

    assert!(matches!(lost, Err(ClientError::NotFound)), "{lost:?}");
    assert_eq!(proxy.count("DELETE", &path), 2, "the client retried");
    let now = api.references(person.id).await.unwrap();
    assert_eq!((now.version_number, now.references.len()), (2, 0), "the first attempt removed it");
}
