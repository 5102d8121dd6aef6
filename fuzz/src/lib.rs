//! What the fuzz targets share: the fixed "today", a valid stored person to patch, and the invariants checked
//! on every outcome (docs/fuzzing.md lists them per target).
//!
//! Invariants panic with a message; libFuzzer reports the panic as a crash and keeps the input.

use std::sync::OnceLock;

use chrono::{DateTime, NaiveDate, Utc};
use person_core::patch::draft_of;
use person_core::person::{Person, PersonId, PersonRef};
use person_core::validate::{self, BodyError, PersonFields, ValidationErrors};
use serde_json::Value;

/// The day validation runs on: fixed, so that a crash reproduces on any later day.
pub fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 6, 1).expect("a valid date")
}

/// A valid stored person with every kind of field set (names, preferred names, dates, two tenures), as the
/// service would have stored it after a create. Built once.
pub fn current_person() -> &'static Person {
    static PERSON: OnceLock<Person> = OnceLock::new();
    PERSON.get_or_init(build_current_person)
}

fn build_current_person() -> Person {
    let body = br#"{
        "title": "Ms", "preferredTitle": "Dr",
        "firstName": "Zo\u00eb", "middleName": "Anne-Marie", "surname": "O'Neill",
        "preferredFirstName": "Zo", "preferredSurname": "Neill",
        "placeOfBirth": "London", "dateOfBirth": "1980-02-29",
        "personTypes": ["Tenant", "HouseholdMember"],
        "tenures": [
            {"id": "0b4f6c1e-5d7a-4a3e-9f0e-2b8c1d3e4f5a", "type": "Secure", "startDate": "2010-04-01",
             "endDate": "1900-01-01", "assetFullAddress": "1 Mare Street, London E8 1DY", "uprn": "100021045678",
             "paymentReference": "228000123", "propertyReference": "00012345", "assetId": "A-1"},
            {"id": "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f", "type": "Introductory", "startDate": "2005-01-01",
             "endDate": "2009-12-31", "postcode": "n1 9gu"}
        ],
        "reason": "New tenancy"
    }"#;
    let draft = validate::parse_draft(body).expect("the fixture parses");
    let fields = validate::validate(&draft, today()).expect("the fixture is valid");
    let id = PersonId::parse("3f2504e0-4f89-41d3-9a0c-0305e82c3301").expect("a valid id");
    let created = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).expect("a valid instant");
    Person::from_fields(id, PersonRef(42), fields, 3, created)
}

/// Accepted fields are a fixed point: stored, read back as a draft (what a client sees and may send again) and
/// validated again, they are unchanged. A failure means a normalisation that is not idempotent (names, dates,
/// postcodes, free text) or a value accepted once and refused on the next write.
pub fn assert_fixed_point(fields: &PersonFields) {
    let person = current_person().with_fields(fields.clone());
    let draft = draft_of(&person);
    match validate::validate(&draft, today()) {
        Ok(again) => assert!(again == *fields, "validated fields changed when validated again"),
        Err(errors) => panic!("validated fields are refused when validated again: {:?}", codes(&errors)),
    }
    // The stored JSON form reads back to the same person (what a store keeps).
    let json = serde_json::to_vec(&person).expect("a person serialises");
    let read: Person = serde_json::from_slice(&json).expect("a stored person reads back");
    assert!(read == person, "a stored person reads back differently");
}

/// A refusal names at least one field, each with a JSON pointer, a code and a message.
pub fn assert_well_formed(errors: &ValidationErrors) {
    assert!(!errors.is_empty(), "a refusal without any error");
    for error in errors.errors() {
        assert!(error.field.starts_with('/'), "field `{}` is not a JSON pointer", error.field);
        assert!(!error.code.is_empty(), "error without a code at {}", error.field);
        assert!(!error.message.is_empty(), "error without a message at {}", error.field);
    }
}

/// A body error names a field by a JSON pointer that resolves in the body (the root for a body of the wrong
/// shape), when it names one.
pub fn assert_body_error_names_a_field(error: &BodyError, body: Option<&Value>) {
    let Some(field) = error.field() else { return };
    assert!(field.is_empty() || field.starts_with('/'), "body error field `{field}` is not a JSON pointer");
    if let Some(body) = body {
        assert!(body.pointer(&field).is_some(), "body error field `{field}` is not in the body");
    }
}

fn codes(errors: &ValidationErrors) -> Vec<(String, String)> {
    errors.errors().iter().map(|e| (e.field.clone(), e.code.clone())).collect()
}

/// Submitted values never come back in an error (they are personal data, and errors are logged): no string value
/// of the body appears in `message`. Keys may be named (``unknown field `colour` ``), so every key is blanked out of
/// the message first, as written and as a JSON pointer token, and values that are part of a key are not looked
/// for; a value is looked for when it is 12 characters or more and holds a non-ASCII character (the wording of
/// every message is ASCII, so such a value cannot be found there by coincidence).
pub fn assert_no_value_echoed(body: &Value, message: &str) {
    let mut keys = Vec::new();
    let mut values = Vec::new();
    collect_strings(body, &mut keys, &mut values);
    let mut names: Vec<String> = keys.iter().flat_map(|k| [k.clone(), validate::pointer_token(k)]).collect();
    names.retain(|k| !k.is_empty());
    names.sort_by_key(|k| std::cmp::Reverse(k.len()));
    let mut message = message.to_owned();
    for name in &names {
        message = message.replace(name.as_str(), "\u{1}");
    }
    for value in values {
        if value.chars().count() < 12 || value.is_ascii() || keys.iter().any(|k| k.contains(value.as_str())) {
            continue;
        }
        assert!(!message.contains(value.as_str()), "an error message repeats a submitted value");
    }
}

fn collect_strings(value: &Value, keys: &mut Vec<String>, values: &mut Vec<String>) {
    match value {
        Value::String(s) => values.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, keys, values)),
        Value::Object(map) => {
            for (k, v) in map {
                keys.push(k.clone());
                collect_strings(v, keys, values);
            }
        }
        _ => {}
    }
}

/// Every message of a validation refusal, joined (for [`assert_no_value_echoed`]).
pub fn messages(errors: &ValidationErrors) -> String {
    errors.errors().iter().map(|e| format!("{} {} {}\n", e.field, e.code, e.message)).collect()
}
