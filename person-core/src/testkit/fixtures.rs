//! Fixtures: persons and writes built the way the service builds them, for exercising stores directly.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::audit::{AuditAction, AuditEntry, AuditOutcome};
use crate::documents::{DocumentBody, DocumentKind, DocumentWrite, StoredDocument};
use crate::equality::{CategoryAnswer, EqualityData, Language};
use crate::event::{Actor, EventData, EventType, EventUser, EventVersion, HistoryEntry, PersonEvent};
use crate::matching::SearchKey;
use crate::person::{Name, Person, PersonId, PersonRef, PersonStatus, PersonType, TenureSummary, Title};
use crate::ports::{DocumentMove, IdempotencyKey, MergeWrite, NewPersonWrite, PersonWrite};
use crate::reference::{CrossReference, ReferenceId, ReferenceSystem};

/// A fixed instant used by fixtures.
#[must_use]
pub fn instant() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).single().unwrap_or_default()
}

/// A new random person id.
#[must_use]
pub fn person_id() -> PersonId {
    PersonId::new(Uuid::new_v4()).unwrap_or_else(person_id)
}

#[expect(clippy::expect_used, reason = "fixture names are literals known to be valid")]
fn name(text: &str) -> Name {
    Name::parse(text).expect("fixture name is valid")
}

/// A cross-reference from literals.
#[must_use]
#[expect(clippy::expect_used, reason = "fixture references are literals or ids known to be valid")]
pub fn reference(system: &str, id: &str) -> CrossReference {
    CrossReference::new(
        ReferenceSystem::parse(system).expect("fixture system is valid"),
        ReferenceId::parse(id).expect("fixture reference id is valid"),
    )
}

/// A fully populated person (every optional field set, Unicode names, two tenures, a `tenure` reference named
/// after its id so that every fixture person holds its own), version 0.
#[must_use]
pub fn full_person(id: PersonId) -> Person {
    let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d);
    Person {
        id,
        person_ref: PersonRef(0),
        title: Some(Title::Ms),
        preferred_title: Some(Title::Mx),
        first_name: Some(name("Zoë")),
        middle_name: Some(name("Anne-Marie")),
        surname: name("O'Neill-Łukasiewicz"),
        single_name: false,
        preferred_first_name: Some(name("Zo")),
        preferred_middle_name: Some(name("Annie")),
        preferred_surname: Some(name("王秀英")),
        place_of_birth: Some("Hackney, London".to_owned()),
        date_of_birth: date(1990, 5, 17),
        date_of_death: None,
        person_types: vec![PersonType::Tenant, PersonType::HouseholdMember],
        tenures: vec![
            TenureSummary {
                id: Uuid::new_v4(),
                tenure_type: Some("Secure".to_owned()),
                start_date: date(2015, 3, 1),
                end_date: None,
                asset_full_address: Some("1 Mare Street, London E8 1DY".to_owned()),
                asset_id: Some("asset-1".to_owned()),
                uprn: Some("100021045678".to_owned()),
                postcode: Some("E8 1DY".to_owned()),
                payment_reference: Some("PR123".to_owned()),
                property_reference: Some("00012345".to_owned()),
            },
            TenureSummary {
                id: Uuid::new_v4(),
                tenure_type: Some("Introductory".to_owned()),
                start_date: date(2010, 1, 1),
                end_date: date(2014, 12, 31),
                asset_full_address: None,
                asset_id: None,
                uprn: None,
                postcode: None,
                payment_reference: None,
                property_reference: None,
            },
        ],
        reason: "New tenancy".to_owned(),
        version_number: 0,
        created_at: instant(),
        last_modified: instant(),
        status: PersonStatus::Active,
        processing_restricted: false,
        references: vec![reference("tenure", &format!("t-{id}"))],
    }
}

fn actor() -> Actor {
    Actor {
        subject: "contract-suite".to_owned(),
        name: "Contract Suite".to_owned(),
        email: "suite@example.org".to_owned(),
    }
}

fn event(entity_id: PersonId, event_type: EventType, old: Value, new: Value) -> PersonEvent {
    PersonEvent {
        id: Uuid::new_v4(),
        event_type,
        source_domain: crate::event::SOURCE_DOMAIN.to_owned(),
        source_system: crate::event::SOURCE_SYSTEM.to_owned(),
        version: EventVersion::V1,
        correlation_id: format!("corr-{}", Uuid::new_v4()),
        date_time: instant(),
        user: EventUser { name: "Contract Suite".to_owned(), email: "suite@example.org".to_owned() },
        entity_id,
        event_data: EventData { old_data: old, new_data: new },
    }
}

fn history(event: &PersonEvent, version: u64) -> HistoryEntry {
    HistoryEntry {
        person_id: event.entity_id,
        version_number: version,
        event_type: event.event_type,
        actor: actor(),
        at: event.date_time,
        reason: Some(format!("reason for version {version}")),
        correlation_id: event.correlation_id.clone(),
        old_data: event.event_data.old_data.clone(),
        new_data: event.event_data.new_data.clone(),
        event_id: event.id,
    }
}

/// An audit entry for `action` on `persons`, as the service would record it.
#[must_use]
pub fn audit_entry(action: AuditAction, persons: Vec<PersonId>) -> AuditEntry {
    AuditEntry {
        id: Uuid::new_v4(),
        at: instant(),
        actor: actor(),
        action,
        person_ids: persons,
        detail: None,
        purpose: Some("contract test".to_owned()),
        correlation_id: format!("corr-{}", Uuid::new_v4()),
        outcome: AuditOutcome::Success,
    }
}

/// The write of a create of `person`, optionally with an idempotency key.
#[must_use]
pub fn create_write(person: Person, idempotency_key: Option<&str>) -> NewPersonWrite {
    let event = event(person.id, EventType::PersonCreatedEvent, Value::Object(Map::new()), Value::Null);
    let history = history(&event, 0);
    let key = idempotency_key.map(|k| IdempotencyKey { key: k.to_owned(), fingerprint: format!("fp-{k}") });
    let audit = audit_entry(AuditAction::PersonCreate, vec![person.id]);
    NewPersonWrite::new(person, event, history, audit, key)
}

/// The write that renames `current`'s middle name to `middle` (version + 1).
#[must_use]
pub fn rename_write(current: &Person, middle: &str) -> PersonWrite {
    let mut next = current.clone();
    next.middle_name = Some(name(middle));
    let old = json!({ "middleName": current.middle_name.as_ref().map(Name::as_str) });
    update_write(current, next, old, json!({ "middleName": middle }))
}

/// The write that gives `current` exactly `references` (sorted), version + 1, as the service writes a reference
/// change.
#[must_use]
pub fn references_write(current: &Person, references: &[CrossReference]) -> PersonWrite {
    let mut next = current.clone();
    next.references = references.to_vec();
    next.references.sort();
    let (old, new) = (json!({ "references": current.references }), json!({ "references": next.references }));
    update_write(current, next, old, new)
}

/// The `PersonUpdatedEvent` write replacing `current` by `next` (whose version it sets to `current`'s + 1).
fn update_write(current: &Person, mut next: Person, old: Value, new: Value) -> PersonWrite {
    next.version_number = current.version_number + 1;
    let event = event(current.id, EventType::PersonUpdatedEvent, old, new);
    let history = history(&event, next.version_number);
    let audit = audit_entry(AuditAction::PersonUpdate, vec![current.id]);
    PersonWrite {
        person: next,
        expected_version: current.version_number,
        event,
        history,
        audit,
        search_keys: Vec::new(),
        dedup_key: None,
    }
}

/// The write that changes `current`'s status (delete or merge), version + 1.
#[must_use]
pub fn status_write(current: &Person, status: PersonStatus) -> PersonWrite {
    let mut next = current.clone();
    next.status = status;
    next.version_number += 1;
    let event_type = match status {
        PersonStatus::Merged { .. } => EventType::PersonMergedEvent,
        _ => EventType::PersonDeletedEvent,
    };
    let event = event(current.id, event_type, Value::Object(Map::new()), Value::Object(Map::new()));
    let history = history(&event, next.version_number);
    let audit = audit_entry(AuditAction::PersonDelete, vec![current.id]);
    PersonWrite {
        person: next,
        expected_version: current.version_number,
        event,
        history,
        audit,
        search_keys: Vec::new(),
        dedup_key: None,
    }
}

/// The write that sets `current`'s processing restriction (version + 1).
#[must_use]
pub fn restriction_write(current: &Person, restricted: bool) -> PersonWrite {
    let mut write = status_write(current, current.status);
    write.person.processing_restricted = restricted;
    write.event.event_type = EventType::PersonUpdatedEvent;
    write.audit.action = AuditAction::PersonRestrict;
    write
}

/// A document write: `new` content at `version` (or a delete when `None`), expecting `expected`.
#[must_use]
pub fn document_write(
    person: PersonId,
    kind: DocumentKind,
    expected: Option<u64>,
    new: Option<(u64, DocumentBody)>,
) -> DocumentWrite {
    let action = match (&kind, &new) {
        (DocumentKind::Equality, _) => AuditAction::EqualityWrite,
        (DocumentKind::Extended(_), Some(_)) => AuditAction::ExtendedWrite,
        (DocumentKind::Extended(_), None) => AuditAction::ExtendedDelete,
    };
    DocumentWrite {
        person_id: person,
        kind: kind.clone(),
        expected_version: expected,
        new: new.map(|(version, body)| StoredDocument {
            person_id: person,
            kind,
            version,
            body,
            updated_at: instant(),
            updated_by: actor(),
        }),
        audit: audit_entry(action, vec![person]),
        search_keys: None,
    }
}

/// Equality data with every answer given.
#[must_use]
pub fn equality_body() -> DocumentBody {
    DocumentBody::Equality(EqualityData {
        gender: Some(CategoryAnswer { code: "woman".to_owned(), description: None }),
        sex_registered_at_birth: Some("female".to_owned()),
        nationalities: vec!["GB".to_owned(), "IE".to_owned()],
        ethnicity: Some(CategoryAnswer { code: "white-other".to_owned(), description: Some("Polish".to_owned()) }),
        religion: Some(CategoryAnswer { code: "no-religion".to_owned(), description: None }),
        sexual_orientation: Some(CategoryAnswer { code: "prefer-not-to-say".to_owned(), description: None }),
        languages: vec![Language { language: "Polish".to_owned(), is_primary: true }],
        communication_requirements: vec!["Interpreter".to_owned()],
        national_insurance_number: Some("AB123456C".to_owned()),
    })
}

/// An extended-data body.
#[must_use]
pub fn extended_body(marker: &str) -> DocumentBody {
    match json!({ "marker": marker, "nested": { "list": [1, 2, 3] }, "unicode": "Zoë 王" }) {
        Value::Object(map) => DocumentBody::Extended(map),
        _ => DocumentBody::Extended(Map::new()),
    }
}

/// Search keys from literals (stores treat keys as opaque strings).
#[must_use]
pub fn keys(texts: &[&str]) -> Vec<SearchKey> {
    texts.iter().map(|t| SearchKey((*t).to_owned())).collect()
}

/// The write of a create of `person` carrying `search_keys` (source `Person`) and a dedup key.
#[must_use]
pub fn keyed_create_write(person: Person, search_keys: &[&str], dedup_key: Option<&str>) -> NewPersonWrite {
    create_write(person, None).with_search_keys(keys(search_keys), dedup_key.map(str::to_owned))
}

/// `write` carrying `search_keys` (source `Person`) and a dedup key instead of none.
#[must_use]
pub fn with_keys(mut write: PersonWrite, search_keys: &[&str], dedup_key: Option<&str>) -> PersonWrite {
    write.search_keys = keys(search_keys);
    write.dedup_key = dedup_key.map(str::to_owned);
    write
}

/// Equality data holding `nino` (and nothing else).
#[must_use]
pub fn equality_body_with_nino(nino: &str) -> DocumentBody {
    DocumentBody::Equality(EqualityData { national_insurance_number: Some(nino.to_owned()), ..EqualityData::default() })
}

/// A first write of equality data holding `nino`, carrying `equality_keys` (source `Equality`).
#[must_use]
pub fn equality_write(person: PersonId, nino: &str, equality_keys: &[&str]) -> DocumentWrite {
    let mut write = document_write(person, DocumentKind::Equality, None, Some((0, equality_body_with_nino(nino))));
    write.search_keys = Some(keys(equality_keys));
    write
}

/// The merge of `duplicate` into `survivor`: the survivor gains the duplicate's tenures and a middle name
/// `Merged` (version + 1) and takes `survivor_keys` and `survivor_dedup`; the duplicate becomes a tombstone;
/// `documents` are moved (each from the duplicate's version given, arriving at version 0).
#[must_use]
pub fn merge_write(
    survivor: &Person,
    duplicate: &Person,
    survivor_keys: &[&str],
    survivor_dedup: Option<&str>,
    documents: Vec<(DocumentKind, u64, DocumentBody)>,
) -> MergeWrite {
    let mut next = survivor.clone();
    next.version_number += 1;
    next.middle_name = Some(name("Merged"));
    next.tenures.extend(duplicate.tenures.iter().cloned());
    next.references.extend(duplicate.references.iter().filter(|r| !survivor.references.contains(r)).cloned());
    next.references.sort();
    let mut gone = duplicate.clone();
    gone.version_number += 1;
    gone.status = PersonStatus::Merged { into: survivor.id };
    let event = event(
        survivor.id,
        EventType::PersonMergedEvent,
        json!({ "middleName": survivor.middle_name.as_ref().map(Name::as_str) }),
        json!({ "middleName": "Merged", "mergedPersonId": duplicate.id }),
    );
    let survivor_history = history(&event, next.version_number);
    let mut duplicate_history = history(&event, gone.version_number);
    duplicate_history.person_id = duplicate.id;
    let audit = audit_entry(AuditAction::PersonUpdate, vec![survivor.id, duplicate.id]);
    let documents = documents
        .into_iter()
        .map(|(kind, expected_version, body)| DocumentMove {
            kind: kind.clone(),
            expected_version,
            document: StoredDocument {
                person_id: survivor.id,
                kind,
                version: 0,
                body,
                updated_at: instant(),
                updated_by: actor(),
            },
        })
        .collect();
    MergeWrite {
        survivor: next,
        survivor_expected_version: survivor.version_number,
        survivor_keys: keys(survivor_keys),
        survivor_equality_keys: None,
        survivor_dedup_key: survivor_dedup.map(str::to_owned),
        duplicate: gone,
        duplicate_expected_version: duplicate.version_number,
        documents,
        event,
        survivor_history,
        duplicate_history,
        audit,
    }
}
