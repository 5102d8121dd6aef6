//! Unit tests of PATCH semantics (SPEC §3): absent / null / value per key, whole-list replacement, refused keys,
//! the change reason, `changed_data` and the `draft_of` round trip.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;
use uuid::Uuid;

use super::*;
use crate::person::{Name, PersonId, PersonRef, PersonStatus, PersonType, TenureSummary, Title};
use crate::validate::READ_ONLY_KEYS;

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn today() -> NaiveDate {
    date(2026, 1, 10)
}

fn instant() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap()
}

fn name(text: &str) -> Name {
    Name::parse(text).unwrap()
}

fn secure_tenure() -> TenureSummary {
    TenureSummary {
        id: Uuid::new_v4(),
        tenure_type: Some("Secure".to_owned()),
        start_date: Some(date(2015, 3, 1)),
        end_date: None,
        asset_full_address: Some("1 Mare Street, London E8 1DY".to_owned()),
        asset_id: Some("asset-1".to_owned()),
        uprn: Some("100021045678".to_owned()),
        postcode: Some("E8 1DY".to_owned()),
        payment_reference: Some("PR123".to_owned()),
        property_reference: Some("00012345".to_owned()),
    }
}

/// A stored person with most optional fields set, at version 3.
fn stored() -> Person {
    Person {
        id: PersonId::new(Uuid::new_v4()).unwrap(),
        person_ref: PersonRef(7),
        title: Some(Title::Ms),
        preferred_title: Some(Title::Mx),
        first_name: Some(name("Ada")),
        middle_name: Some(name("Augusta")),
        surname: name("Lovelace"),
        single_name: false,
        preferred_first_name: Some(name("Addie")),
        preferred_middle_name: None,
        preferred_surname: None,
        place_of_birth: Some("London".to_owned()),
        date_of_birth: Some(date(1990, 5, 17)),
        date_of_death: None,
        person_types: vec![PersonType::Tenant, PersonType::HouseholdMember],
        tenures: vec![secure_tenure()],
        reason: "New tenancy".to_owned(),
        version_number: 3,
        created_at: instant(),
        last_modified: instant(),
        status: PersonStatus::Active,
        processing_restricted: false,
        references: Vec::new(),
    }
}

/// The writable fields of a stored person, as validation would produce them.
fn fields_of(person: &Person) -> PersonFields {
    PersonFields {
        title: person.title,
        preferred_title: person.preferred_title,
        first_name: person.first_name.clone(),
        middle_name: person.middle_name.clone(),
        surname: person.surname.clone(),
        single_name: person.single_name,
        preferred_first_name: person.preferred_first_name.clone(),
        preferred_middle_name: person.preferred_middle_name.clone(),
        preferred_surname: person.preferred_surname.clone(),
        place_of_birth: person.place_of_birth.clone(),
        date_of_birth: person.date_of_birth,
        date_of_death: person.date_of_death,
        person_types: person.person_types.clone(),
        tenures: person.tenures.clone(),
        reason: person.reason.clone(),
    }
}

fn apply(person: &Person, patch: &Value) -> Result<PatchOutcome, PatchError> {
    apply_patch(person, patch.to_string().as_bytes(), today())
}

fn applied(person: &Person, patch: &Value) -> PatchOutcome {
    match apply(person, patch) {
        Ok(outcome) => outcome,
        Err(e) => panic!("expected the patch to apply, got {e:?}"),
    }
}

/// `(field, code)` of every validation error of a refused patch.
fn invalid(person: &Person, patch: &Value) -> Vec<(String, String)> {
    match apply(person, patch) {
        Err(PatchError::Invalid(errors)) => errors.errors().iter().map(|e| (e.field.clone(), e.code.clone())).collect(),
        other => panic!("expected PatchError::Invalid, got {other:?}"),
    }
}

fn body_error(person: &Person, patch: &Value) -> BodyError {
    match apply(person, patch) {
        Err(PatchError::Body(e)) => e,
        other => panic!("expected PatchError::Body, got {other:?}"),
    }
}

fn pair(field: &str, code: &str) -> (String, String) {
    (field.to_owned(), code.to_owned())
}

// ---------------------------------------------------------------------------------------------------------------
// absent / null / value

#[test]
fn an_empty_patch_leaves_every_field_unchanged() {
    let person = stored();

    let outcome = applied(&person, &json!({}));

    assert_eq!(outcome.fields, fields_of(&person));
    assert_eq!(outcome.change_reason, None);
}

#[test]
fn absent_keys_leave_their_fields_unchanged() {
    let person = stored();

    let outcome = applied(&person, &json!({ "middleName": "Grace" }));

    let expected = PersonFields { middle_name: Some(name("Grace")), ..fields_of(&person) };
    assert_eq!(outcome.fields, expected);
}

#[test]
fn null_clears_an_optional_field() {
    let person = stored();

    let outcome = applied(&person, &json!({ "middleName": null, "placeOfBirth": null, "preferredTitle": null }));

    assert_eq!(outcome.fields.middle_name, None);
    assert_eq!(outcome.fields.place_of_birth, None);
    assert_eq!(outcome.fields.preferred_title, None);
    assert_eq!(outcome.fields.first_name, person.first_name, "other fields are untouched");
}

#[test]
fn null_clears_the_date_of_death() {
    let mut person = stored();
    person.date_of_death = Some(date(2025, 1, 1));

    let outcome = applied(&person, &json!({ "dateOfDeath": null }));

    assert_eq!(outcome.fields.date_of_death, None);
}

#[test]
fn a_value_replaces_the_field_and_is_validated_like_a_create() {
    let person = stored();

    let outcome = applied(&person, &json!({ "surname": "  Byron ", "title": "Dr", "dateOfBirth": "1991-01-02" }));

    assert_eq!(outcome.fields.surname.as_str(), "Byron");
    assert_eq!(outcome.fields.title, Some(Title::Dr));
    assert_eq!(outcome.fields.date_of_birth, Some(date(1991, 1, 2)));
    assert_eq!(invalid(&person, &json!({ "dateOfBirth": "2099-01-01" })), vec![pair("/dateOfBirth", "W10")]);
}

#[test]
fn a_patched_date_of_birth_before_1900_is_w9() {
    let person = stored();

    assert_eq!(invalid(&person, &json!({ "dateOfBirth": "1815-12-10" })), vec![pair("/dateOfBirth", "W9")]);
}

#[test]
fn tenures_are_replaced_whole() {
    let person = stored();
    let new_id = Uuid::new_v4();

    let outcome =
        applied(&person, &json!({ "tenures": [{ "id": new_id, "type": "Introductory", "startDate": "01/02/2024" }] }));

    assert_eq!(outcome.fields.tenures.len(), 1, "the old tenure is not kept");
    assert_eq!(outcome.fields.tenures[0].id, new_id);
    assert_eq!(outcome.fields.tenures[0].start_date, Some(date(2024, 2, 1)));
    assert_eq!(outcome.fields.tenures[0].postcode, None);
}

#[test]
fn an_empty_tenure_list_removes_every_tenure() {
    let outcome = applied(&stored(), &json!({ "tenures": [] }));

    assert!(outcome.fields.tenures.is_empty());
}

#[test]
fn null_tenures_removes_every_tenure() {
    let outcome = applied(&stored(), &json!({ "tenures": null }));

    assert!(outcome.fields.tenures.is_empty());
}

#[test]
fn person_types_are_replaced_whole() {
    let person = stored();

    let outcome = applied(&person, &json!({ "personTypes": ["Leaseholder"] }));

    assert_eq!(outcome.fields.person_types, vec![PersonType::Leaseholder]);
}

// ---------------------------------------------------------------------------------------------------------------
// Clearing required fields

#[test]
fn null_first_name_is_w15() {
    assert_eq!(invalid(&stored(), &json!({ "firstName": null })), vec![pair("/firstName", "W15")]);
}

#[test]
fn a_blank_first_name_is_w15() {
    assert_eq!(invalid(&stored(), &json!({ "firstName": "   " })), vec![pair("/firstName", "W15")]);
}

#[test]
fn null_surname_is_w16() {
    assert_eq!(invalid(&stored(), &json!({ "surname": null })), vec![pair("/surname", "W16")]);
}

#[test]
fn null_person_types_is_w14() {
    assert_eq!(invalid(&stored(), &json!({ "personTypes": null })), vec![pair("/personTypes", "W14")]);
}

#[test]
fn empty_person_types_is_w14() {
    assert_eq!(invalid(&stored(), &json!({ "personTypes": [] })), vec![pair("/personTypes", "W14")]);
}

#[test]
fn null_title_of_a_resident_is_required() {
    assert_eq!(invalid(&stored(), &json!({ "title": null })), vec![pair("/title", "required")]);
}

#[test]
fn every_error_of_the_patched_person_is_reported_together() {
    let errors = invalid(&stored(), &json!({ "firstName": null, "surname": "", "personTypes": [] }));

    assert_eq!(errors.len(), 3, "{errors:?}");
    for expected in [pair("/firstName", "W15"), pair("/surname", "W16"), pair("/personTypes", "W14")] {
        assert!(errors.contains(&expected), "{expected:?} missing from {errors:?}");
    }
}

#[test]
fn becoming_a_single_name_person_needs_the_first_name_cleared_too() {
    let person = stored();

    assert_eq!(invalid(&person, &json!({ "singleName": true })), vec![pair("/firstName", "conflicting_fields")]);
    let outcome = applied(&person, &json!({ "singleName": true, "firstName": null }));
    assert!(outcome.fields.single_name);
    assert_eq!(outcome.fields.first_name, None);
}

// ---------------------------------------------------------------------------------------------------------------
// Refused keys and bodies

#[test]
fn an_unknown_key_is_a_body_error_naming_it() {
    assert_eq!(body_error(&stored(), &json!({ "colour": "blue" })), BodyError::UnknownField("colour".to_owned()));
}

#[test]
fn a_key_in_the_wrong_case_is_an_unknown_field() {
    assert_eq!(body_error(&stored(), &json!({ "FirstName": "Ada" })), BodyError::UnknownField("FirstName".to_owned()));
}

#[test]
fn every_read_only_key_is_a_body_error_naming_it() {
    let keys = [
        "id",
        "personRef",
        "versionNumber",
        "createdAt",
        "lastModified",
        "isAMinor",
        "links",
        "processingRestricted",
        "references",
    ];
    assert_eq!(READ_ONLY_KEYS.len(), keys.len());
    for key in keys {
        let mut patch = Map::new();
        patch.insert(key.to_owned(), json!(null));

        assert_eq!(body_error(&stored(), &Value::Object(patch)), BodyError::ReadOnlyField(key.to_owned()), "{key}");
    }
}

#[test]
fn a_wrong_type_is_an_invalid_value_at_its_pointer() {
    let error = body_error(&stored(), &json!({ "firstName": 42 }));

    assert!(matches!(error, BodyError::InvalidValue { ref field, .. } if field == "/firstName"), "{error:?}");
}

#[test]
fn an_unknown_enum_value_is_an_invalid_value() {
    let error = body_error(&stored(), &json!({ "personTypes": ["Landlord"] }));

    assert_eq!(error.field().as_deref(), Some("/personTypes/0"));
}

#[test]
fn a_malformed_body_is_malformed() {
    let result = apply_patch(&stored(), b"{\"firstName\": ", today());

    assert!(matches!(result, Err(PatchError::Body(BodyError::Malformed(_)))), "{result:?}");
}

#[test]
fn a_body_that_is_not_an_object_is_malformed() {
    let result = apply_patch(&stored(), b"[{\"firstName\": \"Ada\"}]", today());

    assert!(matches!(result, Err(PatchError::Body(BodyError::Malformed(_)))), "{result:?}");
}

// ---------------------------------------------------------------------------------------------------------------
// The change reason

#[test]
fn reason_is_the_change_reason_and_not_applied_to_the_fields() {
    let person = stored();

    let outcome = applied(&person, &json!({ "reason": "  Married ", "surname": "Byron" }));

    assert_eq!(outcome.change_reason.as_deref(), Some("Married"));
    assert_eq!(outcome.fields.reason, "New tenancy", "the creation reason is kept");
}

#[test]
fn a_patch_with_only_a_reason_changes_no_field() {
    let person = stored();

    let outcome = applied(&person, &json!({ "reason": "Checked with the tenant" }));

    assert_eq!(outcome.fields, fields_of(&person));
    assert_eq!(outcome.change_reason.as_deref(), Some("Checked with the tenant"));
}

#[test]
fn a_null_or_blank_reason_is_no_reason() {
    assert_eq!(applied(&stored(), &json!({ "reason": null })).change_reason, None);
    assert_eq!(applied(&stored(), &json!({ "reason": "   " })).change_reason, None);
}

#[test]
fn a_reason_of_the_wrong_type_is_a_400() {
    for reason in [json!(42), json!(["a"]), json!({ "why": "x" }), json!(true)] {
        let error = body_error(&stored(), &json!({ "reason": reason }));

        assert!(matches!(error, BodyError::InvalidValue { ref field, .. } if field == "/reason"), "{error:?}");
    }
}

#[test]
fn a_change_reason_follows_the_free_text_rules() {
    assert_eq!(invalid(&stored(), &json!({ "reason": "x".repeat(501) })), vec![pair("/reason", "too_long")]);
    assert_eq!(invalid(&stored(), &json!({ "reason": "<script>" })), vec![pair("/reason", "W42")]);
    assert_eq!(invalid(&stored(), &json!({ "reason": "bell\u{0007}" })), vec![pair("/reason", "control_characters")]);
    assert_eq!(applied(&stored(), &json!({ "reason": "x".repeat(500) })).change_reason.map(|r| r.len()), Some(500));
}

// ---------------------------------------------------------------------------------------------------------------
// changed_data

#[test]
fn changed_data_lists_exactly_the_changed_keys_with_old_and_new_values() {
    let old = stored();
    let new = old.with_fields(applied(&old, &json!({ "middleName": "Grace", "title": "Dr" })).fields);

    let (old_data, new_data) = changed_data(&old, &new);

    assert_eq!(Value::Object(old_data), json!({ "middleName": "Augusta", "title": "Ms" }));
    assert_eq!(Value::Object(new_data), json!({ "middleName": "Grace", "title": "Dr" }));
}

#[test]
fn changed_data_shows_a_cleared_field_as_null() {
    let old = stored();
    let new = old.with_fields(applied(&old, &json!({ "placeOfBirth": null })).fields);

    let (old_data, new_data) = changed_data(&old, &new);

    assert_eq!(Value::Object(old_data), json!({ "placeOfBirth": "London" }));
    assert_eq!(Value::Object(new_data), json!({ "placeOfBirth": null }));
}

#[test]
fn changed_data_shows_a_newly_set_field_as_null_before() {
    let old = stored();
    let new = old.with_fields(applied(&old, &json!({ "dateOfDeath": "2025-12-01" })).fields);

    let (old_data, new_data) = changed_data(&old, &new);

    assert_eq!(Value::Object(old_data), json!({ "dateOfDeath": null }));
    assert_eq!(Value::Object(new_data), json!({ "dateOfDeath": "2025-12-01" }));
}

#[test]
fn changed_data_shows_replaced_lists_whole() {
    let old = stored();
    let new = old.with_fields(applied(&old, &json!({ "personTypes": ["Tenant"] })).fields);

    let (old_data, new_data) = changed_data(&old, &new);

    assert_eq!(Value::Object(old_data), json!({ "personTypes": ["Tenant", "HouseholdMember"] }));
    assert_eq!(Value::Object(new_data), json!({ "personTypes": ["Tenant"] }));
}

#[test]
fn an_identical_patch_gives_empty_changed_data() {
    let old = stored();
    let patch = json!({
        "firstName": "Ada",
        "middleName": " Augusta ",
        "title": "Ms",
        "personTypes": ["Tenant", "HouseholdMember"],
        "dateOfBirth": "1990-05-17T00:00:00Z",
        "singleName": false,
    });
    let new = old.with_fields(applied(&old, &patch).fields);

    let (old_data, new_data) = changed_data(&old, &new);

    assert!(old_data.is_empty() && new_data.is_empty(), "{old_data:?} → {new_data:?}");
}

#[test]
fn changed_data_ignores_bookkeeping_fields() {
    let old = stored();
    let mut new = old.clone();
    new.version_number += 1;
    new.last_modified = Utc.with_ymd_and_hms(2026, 1, 10, 9, 0, 0).unwrap();
    new.status = PersonStatus::Deleted;
    new.reason = "another reason".to_owned();

    let (old_data, new_data) = changed_data(&old, &new);

    assert!(old_data.is_empty() && new_data.is_empty(), "{new_data:?}");
}

// ---------------------------------------------------------------------------------------------------------------
// draft_of

#[test]
fn draft_of_round_trips_through_validation() {
    let mut person = stored();
    person.tenures.push(TenureSummary {
        id: Uuid::new_v4(),
        tenure_type: Some("Introductory".to_owned()),
        start_date: Some(date(2010, 1, 1)),
        end_date: Some(crate::person::NO_END_SENTINEL),
        asset_full_address: None,
        asset_id: None,
        uprn: None,
        postcode: None,
        payment_reference: None,
        property_reference: None,
    });
    person.date_of_death = Some(date(2025, 12, 24));

    let fields = validate::validate(&draft_of(&person), today()).unwrap();

    assert_eq!(fields, fields_of(&person));
    assert_eq!(person.with_fields(fields), person);
}

#[test]
fn draft_of_a_single_name_staff_member_round_trips() {
    let person = Person {
        title: None,
        preferred_title: None,
        first_name: None,
        middle_name: None,
        surname: name("Teller"),
        single_name: true,
        preferred_first_name: None,
        date_of_birth: None,
        place_of_birth: None,
        person_types: vec![PersonType::HousingOfficer],
        tenures: vec![],
        ..stored()
    };

    let draft = draft_of(&person);
    let fields = validate::validate(&draft, today()).unwrap();

    assert_eq!(draft.single_name, Some(true));
    assert_eq!(draft.id, None, "a draft never carries the id");
    assert_eq!(fields, fields_of(&person));
}
