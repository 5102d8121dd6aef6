//! Unit tests of validation: every rule and error code of SPEC §4, and the structural (400) errors of
//! [`parse_draft`].

use serde_json::json;

use super::*;

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// The fixed "today" of these tests.
fn today() -> NaiveDate {
    date(2026, 1, 10)
}

/// A draft that passes every rule: tests change one thing and look at what that did.
fn valid_draft() -> PersonDraft {
    PersonDraft {
        title: Some(Title::Ms),
        first_name: Some("Ada".to_owned()),
        surname: Some("Lovelace".to_owned()),
        date_of_birth: Some("1990-05-17".to_owned()),
        person_types: Some(vec![PersonType::Tenant]),
        reason: Some("New tenancy".to_owned()),
        ..PersonDraft::default()
    }
}

fn staff_draft() -> PersonDraft {
    PersonDraft {
        title: None,
        date_of_birth: None,
        person_types: Some(vec![PersonType::HousingOfficer]),
        ..valid_draft()
    }
}

fn tenure() -> TenureDraft {
    TenureDraft { id: Some(Uuid::new_v4()), ..TenureDraft::default() }
}

fn with_tenures(tenures: Vec<TenureDraft>) -> PersonDraft {
    PersonDraft { tenures: Some(tenures), ..valid_draft() }
}

fn valid(draft: &PersonDraft) -> PersonFields {
    match validate(draft, today()) {
        Ok(fields) => fields,
        Err(errors) => panic!("expected the draft to be valid, got {:?}", errors.errors()),
    }
}

fn invalid(draft: &PersonDraft) -> ValidationErrors {
    match validate(draft, today()) {
        Ok(_) => panic!("expected validation errors"),
        Err(errors) => errors,
    }
}

/// `(field, code)` of every error, in order.
fn pairs(errors: &ValidationErrors) -> Vec<(&str, &str)> {
    errors.errors().iter().map(|e| (e.field.as_str(), e.code.as_str())).collect()
}

/// Asserts that validation fails with exactly one error, `code` at `field`.
fn assert_only_error(draft: &PersonDraft, field: &str, code: &str) {
    let errors = invalid(draft);
    assert_eq!(pairs(&errors), vec![(field, code)]);
}

fn parse(value: &serde_json::Value) -> Result<PersonDraft, BodyError> {
    parse_draft(value.to_string().as_bytes())
}

fn valid_body() -> serde_json::Value {
    json!({
        "title": "Ms",
        "firstName": "Ada",
        "surname": "Lovelace",
        "dateOfBirth": "1990-05-17",
        "personTypes": ["Tenant"],
        "reason": "New tenancy"
    })
}

fn body_with(key: &str, value: serde_json::Value) -> serde_json::Value {
    let mut body = valid_body();
    body[key] = value;
    body
}

// ---------------------------------------------------------------------------------------------------------------
// A valid draft

#[test]
fn a_complete_draft_becomes_fields_with_trimmed_nfc_names() {
    let draft = PersonDraft {
        first_name: Some("  Zoe\u{0308} ".to_owned()),
        middle_name: Some("Anne-Marie".to_owned()),
        surname: Some(" O'Neill ".to_owned()),
        preferred_surname: Some("王秀英".to_owned()),
        place_of_birth: Some("  Hackney, London ".to_owned()),
        reason: Some("  New tenancy  ".to_owned()),
        ..valid_draft()
    };

    let fields = valid(&draft);

    assert_eq!(fields.first_name.as_ref().map(Name::as_str), Some("Zo\u{00eb}"));
    assert_eq!(fields.middle_name.as_ref().map(Name::as_str), Some("Anne-Marie"));
    assert_eq!(fields.surname.as_str(), "O'Neill");
    assert_eq!(fields.preferred_surname.as_ref().map(Name::as_str), Some("王秀英"));
    assert_eq!(fields.place_of_birth.as_deref(), Some("Hackney, London"));
    assert_eq!(fields.reason, "New tenancy");
    assert_eq!(fields.title, Some(Title::Ms));
    assert_eq!(fields.date_of_birth, Some(date(1990, 5, 17)));
    assert_eq!(fields.person_types, vec![PersonType::Tenant]);
    assert!(!fields.single_name);
}

#[test]
fn an_empty_optional_name_is_treated_as_absent() {
    let draft = PersonDraft { middle_name: Some("   ".to_owned()), ..valid_draft() };

    let fields = valid(&draft);

    assert_eq!(fields.middle_name, None);
}

// ---------------------------------------------------------------------------------------------------------------
// W9 / W10: date of birth

#[test]
fn an_unparseable_date_of_birth_is_w9() {
    let draft = PersonDraft { date_of_birth: Some("17th of May".to_owned()), ..valid_draft() };

    assert_only_error(&draft, "/dateOfBirth", codes::INVALID_DATE_OF_BIRTH);
}

#[test]
fn an_impossible_calendar_date_of_birth_is_w9() {
    let draft = PersonDraft { date_of_birth: Some("1990-02-30".to_owned()), ..valid_draft() };

    assert_only_error(&draft, "/dateOfBirth", "W9");
}

#[test]
fn a_date_of_birth_before_1900_is_w9() {
    let draft = PersonDraft { date_of_birth: Some("1899-12-31".to_owned()), ..valid_draft() };

    assert_only_error(&draft, "/dateOfBirth", "W9");
}

#[test]
fn a_date_of_birth_on_1900_01_01_is_accepted() {
    let draft = PersonDraft { date_of_birth: Some("1900-01-01".to_owned()), ..valid_draft() };

    assert_eq!(valid(&draft).date_of_birth, Some(EARLIEST_BIRTH));
}

#[test]
fn a_date_of_birth_in_the_future_is_w10() {
    let draft = PersonDraft { date_of_birth: Some("2026-01-11".to_owned()), ..valid_draft() };

    assert_only_error(&draft, "/dateOfBirth", codes::DATE_OF_BIRTH_IN_FUTURE);
}

#[test]
fn a_date_of_birth_of_today_is_accepted() {
    let draft = PersonDraft { date_of_birth: Some("2026-01-10".to_owned()), ..valid_draft() };

    assert_eq!(valid(&draft).date_of_birth, Some(today()));
}

#[test]
fn an_iso_date_time_date_of_birth_is_accepted_as_its_date() {
    for raw in ["1990-05-17T00:00:00", "1990-05-17T00:00:00Z", "1990-05-17T00:00:00.000Z", "1990-05-17T10:30:00+01:00"]
    {
        let draft = PersonDraft { date_of_birth: Some(raw.to_owned()), ..valid_draft() };

        assert_eq!(valid(&draft).date_of_birth, Some(date(1990, 5, 17)), "{raw}");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// W14: person types

#[test]
fn missing_person_types_is_w14() {
    let draft = PersonDraft { person_types: None, ..valid_draft() };

    assert_only_error(&draft, "/personTypes", codes::PERSON_TYPES_REQUIRED);
}

#[test]
fn empty_person_types_is_w14() {
    let draft = PersonDraft { person_types: Some(vec![]), ..valid_draft() };

    assert_only_error(&draft, "/personTypes", "W14");
}

#[test]
fn repeated_person_types_are_deduplicated_in_submitted_order() {
    let draft = PersonDraft {
        person_types: Some(vec![
            PersonType::Leaseholder,
            PersonType::Tenant,
            PersonType::Leaseholder,
            PersonType::Tenant,
            PersonType::Occupant,
        ]),
        ..valid_draft()
    };

    let fields = valid(&draft);

    assert_eq!(fields.person_types, vec![PersonType::Leaseholder, PersonType::Tenant, PersonType::Occupant]);
}

// ---------------------------------------------------------------------------------------------------------------
// W15 / W16 / W17: required names and reason

#[test]
fn a_missing_first_name_is_w15() {
    let draft = PersonDraft { first_name: None, ..valid_draft() };

    assert_only_error(&draft, "/firstName", codes::FIRST_NAME_REQUIRED);
}

#[test]
fn an_empty_first_name_is_w15() {
    let draft = PersonDraft { first_name: Some(String::new()), ..valid_draft() };

    assert_only_error(&draft, "/firstName", "W15");
}

#[test]
fn a_whitespace_first_name_is_w15() {
    let draft = PersonDraft { first_name: Some(" \t\u{00a0} ".to_owned()), ..valid_draft() };

    assert_only_error(&draft, "/firstName", "W15");
}

#[test]
fn single_name_false_still_requires_a_first_name() {
    let draft = PersonDraft { first_name: None, single_name: Some(false), ..valid_draft() };

    assert_only_error(&draft, "/firstName", "W15");
}

#[test]
fn a_single_name_person_needs_no_first_name() {
    let draft =
        PersonDraft { first_name: None, surname: Some("Teller".to_owned()), single_name: Some(true), ..valid_draft() };

    let fields = valid(&draft);

    assert!(fields.single_name);
    assert_eq!(fields.first_name, None);
    assert_eq!(fields.surname.as_str(), "Teller");
}

#[test]
fn single_name_with_a_first_name_is_conflicting_fields() {
    let draft = PersonDraft { single_name: Some(true), ..valid_draft() };

    assert_only_error(&draft, "/firstName", codes::CONFLICT);
    assert_eq!(codes::CONFLICT, "conflicting_fields");
}

#[test]
fn a_missing_surname_is_w16() {
    let draft = PersonDraft { surname: None, ..valid_draft() };

    assert_only_error(&draft, "/surname", codes::SURNAME_REQUIRED);
}

#[test]
fn a_blank_surname_is_w16() {
    let draft = PersonDraft { surname: Some("   ".to_owned()), ..valid_draft() };

    assert_only_error(&draft, "/surname", "W16");
}

#[test]
fn a_single_name_person_still_needs_a_surname() {
    let draft = PersonDraft { first_name: None, surname: None, single_name: Some(true), ..valid_draft() };

    assert_only_error(&draft, "/surname", "W16");
}

#[test]
fn a_missing_reason_is_w17() {
    let draft = PersonDraft { reason: None, ..valid_draft() };

    assert_only_error(&draft, "/reason", codes::REASON_REQUIRED);
}

#[test]
fn a_blank_reason_is_w17() {
    let draft = PersonDraft { reason: Some(" \n ".to_owned()), ..valid_draft() };

    assert_only_error(&draft, "/reason", "W17");
}

// ---------------------------------------------------------------------------------------------------------------
// W42: potentially dangerous characters

/// Sets one name field of a draft.
type SetName = fn(&mut PersonDraft, String);

#[test]
fn markup_in_any_name_field_is_w42() {
    let cases: [(&str, SetName); 6] = [
        ("/firstName", |d, v| d.first_name = Some(v)),
        ("/middleName", |d, v| d.middle_name = Some(v)),
        ("/surname", |d, v| d.surname = Some(v)),
        ("/preferredFirstName", |d, v| d.preferred_first_name = Some(v)),
        ("/preferredMiddleName", |d, v| d.preferred_middle_name = Some(v)),
        ("/preferredSurname", |d, v| d.preferred_surname = Some(v)),
    ];
    for (field, set) in cases {
        for bad in ["<script>alert(1)</script>", "Ann<b", "<!--x", "a</i", "<?php", "&#60;"] {
            let mut draft = valid_draft();
            set(&mut draft, bad.to_owned());

            assert_only_error(&draft, field, codes::DANGEROUS_CHARACTERS);
        }
    }
}

#[test]
fn a_less_than_sign_or_ampersand_that_is_not_markup_is_accepted() {
    let draft = PersonDraft {
        place_of_birth: Some("a < b & c".to_owned()),
        reason: Some("Rent < 100 & arrears".to_owned()),
        ..valid_draft()
    };

    let fields = valid(&draft);

    assert_eq!(fields.place_of_birth.as_deref(), Some("a < b & c"));
}

#[test]
fn markup_in_the_reason_is_w42() {
    let draft = PersonDraft { reason: Some("<img src=x onerror=alert(1)>".to_owned()), ..valid_draft() };

    assert_only_error(&draft, "/reason", "W42");
}

#[test]
fn a_character_reference_in_the_place_of_birth_is_w42() {
    let draft = PersonDraft { place_of_birth: Some("Hackney &#x3C;".to_owned()), ..valid_draft() };

    assert_only_error(&draft, "/placeOfBirth", "W42");
}

#[test]
fn markup_in_a_tenure_address_is_w42() {
    let draft =
        with_tenures(vec![TenureDraft { asset_full_address: Some("1 Mare Street <script>".to_owned()), ..tenure() }]);

    assert_only_error(&draft, "/tenures/0/assetFullAddress", "W42");
}

// ---------------------------------------------------------------------------------------------------------------
// title and dateOfBirth, required unless staff

#[test]
fn title_is_required_for_a_resident() {
    let draft = PersonDraft { title: None, ..valid_draft() };

    assert_only_error(&draft, "/title", codes::REQUIRED);
}

#[test]
fn date_of_birth_is_required_for_a_resident() {
    let draft = PersonDraft { date_of_birth: None, ..valid_draft() };

    assert_only_error(&draft, "/dateOfBirth", codes::REQUIRED);
}

#[test]
fn a_housing_officer_needs_neither_title_nor_date_of_birth() {
    let fields = valid(&staff_draft());

    assert_eq!(fields.title, None);
    assert_eq!(fields.date_of_birth, None);
}

#[test]
fn a_housing_area_manager_needs_neither_title_nor_date_of_birth() {
    let draft = PersonDraft { person_types: Some(vec![PersonType::HousingAreaManager]), ..staff_draft() };

    let fields = valid(&draft);

    assert_eq!(fields.person_types, vec![PersonType::HousingAreaManager]);
}

#[test]
fn a_staff_role_alongside_a_resident_role_still_waives_title_and_date_of_birth() {
    let draft =
        PersonDraft { person_types: Some(vec![PersonType::Tenant, PersonType::HousingOfficer]), ..staff_draft() };

    assert!(validate(&draft, today()).is_ok());
}

#[test]
fn a_staff_date_of_birth_when_given_is_still_checked() {
    let draft = PersonDraft { date_of_birth: Some("2030-01-01".to_owned()), ..staff_draft() };

    assert_only_error(&draft, "/dateOfBirth", "W10");
}

// ---------------------------------------------------------------------------------------------------------------
// Names: length, control characters

#[test]
fn a_name_of_100_graphemes_is_accepted() {
    let hundred = "e\u{0301}".repeat(99) + "a";
    let draft = PersonDraft { first_name: Some(hundred), surname: Some("a".repeat(100)), ..valid_draft() };

    let fields = valid(&draft);

    assert_eq!(fields.surname.as_str().len(), 100);
}

#[test]
fn a_name_of_101_graphemes_is_too_long() {
    let draft = PersonDraft { surname: Some("a".repeat(101)), ..valid_draft() };

    assert_only_error(&draft, "/surname", codes::TOO_LONG);
}

#[test]
fn an_optional_name_of_101_graphemes_is_too_long() {
    let draft = PersonDraft { preferred_middle_name: Some("Ł".repeat(101)), ..valid_draft() };

    assert_only_error(&draft, "/preferredMiddleName", "too_long");
}

#[test]
fn control_characters_in_a_name_are_refused() {
    for bad in ["Ann\u{0007}", "Ann\nMarie", "Ann\tMarie", "Ann\u{0000}"] {
        let draft = PersonDraft { first_name: Some(bad.to_owned()), ..valid_draft() };

        assert_only_error(&draft, "/firstName", codes::CONTROL_CHARACTERS);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Free text

#[test]
fn free_text_of_500_characters_is_accepted() {
    let draft = PersonDraft { reason: Some("é".repeat(500)), place_of_birth: Some("x".repeat(500)), ..valid_draft() };

    let fields = valid(&draft);

    assert_eq!(fields.reason.chars().count(), 500);
}

#[test]
fn free_text_over_500_characters_is_too_long() {
    let draft = PersonDraft { reason: Some("x".repeat(501)), place_of_birth: Some("é".repeat(501)), ..valid_draft() };

    let errors = invalid(&draft);

    assert_eq!(pairs(&errors), vec![("/placeOfBirth", "too_long"), ("/reason", "too_long")]);
}

#[test]
fn a_tenure_address_over_500_characters_is_too_long() {
    let draft = with_tenures(vec![TenureDraft { asset_full_address: Some("a".repeat(501)), ..tenure() }]);

    assert_only_error(&draft, "/tenures/0/assetFullAddress", "too_long");
}

#[test]
fn control_characters_in_free_text_are_refused() {
    let draft = PersonDraft { reason: Some("New\u{0007}tenancy".to_owned()), ..valid_draft() };

    assert_only_error(&draft, "/reason", codes::CONTROL_CHARACTERS);
}

#[test]
fn new_lines_in_free_text_are_kept() {
    let draft = PersonDraft { place_of_birth: Some("Hackney\nLondon".to_owned()), ..valid_draft() };

    assert_eq!(valid(&draft).place_of_birth.as_deref(), Some("Hackney\nLondon"));
}

// ---------------------------------------------------------------------------------------------------------------
// Date of death

#[test]
fn a_date_of_death_in_the_future_is_refused() {
    let draft = PersonDraft { date_of_death: Some("2026-01-11".to_owned()), ..valid_draft() };

    assert_only_error(&draft, "/dateOfDeath", codes::DATE_IN_FUTURE);
}

#[test]
fn a_date_of_death_before_the_date_of_birth_is_refused() {
    let draft = PersonDraft { date_of_death: Some("1990-05-16".to_owned()), ..valid_draft() };

    assert_only_error(&draft, "/dateOfDeath", codes::DATE_ORDER);
}

#[test]
fn an_unparseable_date_of_death_is_invalid_date() {
    let draft = PersonDraft { date_of_death: Some("yesterday".to_owned()), ..valid_draft() };

    assert_only_error(&draft, "/dateOfDeath", codes::INVALID_DATE);
}

#[test]
fn a_date_of_death_on_the_day_of_birth_is_accepted() {
    let draft = PersonDraft { date_of_death: Some("1990-05-17".to_owned()), ..valid_draft() };

    assert_eq!(valid(&draft).date_of_death, Some(date(1990, 5, 17)));
}

// ---------------------------------------------------------------------------------------------------------------
// All errors at once

#[test]
fn every_error_is_reported_together_with_its_json_pointer() {
    let draft = PersonDraft {
        title: None,
        first_name: None,
        surname: Some("  ".to_owned()),
        middle_name: Some("<b>".to_owned()),
        date_of_birth: Some("not a date".to_owned()),
        date_of_death: Some("2099-01-01".to_owned()),
        person_types: Some(vec![]),
        reason: None,
        tenures: Some(vec![
            TenureDraft { start_date: Some("asdwsad".to_owned()), ..tenure() },
            TenureDraft { id: None, uprn: Some("ABC".to_owned()), ..TenureDraft::default() },
        ]),
        ..valid_draft()
    };

    let errors = invalid(&draft);

    let mut found = pairs(&errors);
    found.sort_unstable();
    let mut expected = vec![
        ("/personTypes", "W14"),
        ("/title", "required"),
        ("/firstName", "W15"),
        ("/surname", "W16"),
        ("/middleName", "W42"),
        ("/reason", "W17"),
        ("/dateOfBirth", "W9"),
        ("/dateOfDeath", "date_in_future"),
        ("/tenures/0/startDate", "invalid_date"),
        ("/tenures/1/id", "required"),
        ("/tenures/1/uprn", "invalid_uprn"),
    ];
    expected.sort_unstable();
    assert_eq!(found, expected);
}

#[test]
fn error_messages_never_echo_the_submitted_values() {
    let draft = PersonDraft {
        first_name: Some("Secretfirst\u{0007}".to_owned()),
        surname: Some("Secretsurname".repeat(10)),
        middle_name: Some("<b>Secretmiddle".to_owned()),
        place_of_birth: Some("Secretplace&#1;".to_owned()),
        date_of_birth: Some("Secretdob".to_owned()),
        date_of_death: Some("Secretdod".to_owned()),
        tenures: Some(vec![TenureDraft {
            start_date: Some("Secretstart".to_owned()),
            uprn: Some("Secretuprn".to_owned()),
            postcode: Some("Secretpostcode".to_owned()),
            ..tenure()
        }]),
        ..valid_draft()
    };

    let errors = invalid(&draft);

    assert!(errors.errors().len() >= 9, "{:?}", errors.errors());
    for error in errors.errors() {
        assert!(!error.message.contains("Secret"), "{} echoes the value: {}", error.field, error.message);
        assert!(!error.message.is_empty());
    }
}

#[test]
fn validation_errors_display_counts_the_errors_without_details() {
    let draft = PersonDraft { first_name: None, surname: None, ..valid_draft() };

    let errors = invalid(&draft);

    assert_eq!(errors.to_string(), "2 validation error(s)");
    assert!(errors.has_code("W15") && errors.has_code("W16") && !errors.has_code("W17"));
}

// ---------------------------------------------------------------------------------------------------------------
// Tenures

#[test]
fn a_tenure_without_an_id_is_refused() {
    let draft = with_tenures(vec![TenureDraft { id: None, ..TenureDraft::default() }]);

    assert_only_error(&draft, "/tenures/0/id", codes::REQUIRED);
}

#[test]
fn a_tenure_with_the_nil_id_is_refused() {
    let draft = with_tenures(vec![TenureDraft { id: Some(Uuid::nil()), ..TenureDraft::default() }]);

    assert_only_error(&draft, "/tenures/0/id", codes::INVALID_ID);
}

#[test]
fn the_same_tenure_listed_twice_is_refused_at_the_second() {
    let first = tenure();
    let draft = with_tenures(vec![first.clone(), tenure(), first]);

    assert_only_error(&draft, "/tenures/2/id", codes::INVALID_ID);
}

#[test]
fn legacy_tenure_dates_are_normalised() {
    for raw in ["2021-03-04", "2021-03-04T00:00:00", "2021-03-04T00:00:00Z", "04/03/2021", " 2021-03-04 "] {
        let draft = with_tenures(vec![TenureDraft {
            start_date: Some(raw.to_owned()),
            end_date: Some(raw.to_owned()),
            ..tenure()
        }]);

        let fields = valid(&draft);

        assert_eq!(fields.tenures[0].start_date, Some(date(2021, 3, 4)), "{raw}");
        assert_eq!(fields.tenures[0].end_date, Some(date(2021, 3, 4)), "{raw}");
    }
}

#[test]
fn an_unreadable_tenure_start_date_is_invalid_date() {
    let draft = with_tenures(vec![TenureDraft { start_date: Some("asdwsad".to_owned()), ..tenure() }]);

    assert_only_error(&draft, "/tenures/0/startDate", codes::INVALID_DATE);
}

#[test]
fn an_unreadable_tenure_end_date_is_invalid_date() {
    let draft = with_tenures(vec![tenure(), TenureDraft { end_date: Some("31/02/2021".to_owned()), ..tenure() }]);

    assert_only_error(&draft, "/tenures/1/endDate", "invalid_date");
}

#[test]
fn blank_tenure_dates_are_absent() {
    let draft = with_tenures(vec![TenureDraft {
        start_date: Some(String::new()),
        end_date: Some("  ".to_owned()),
        ..tenure()
    }]);

    let fields = valid(&draft);

    assert_eq!((fields.tenures[0].start_date, fields.tenures[0].end_date), (None, None));
}

#[test]
fn a_tenure_ending_before_it_starts_is_refused() {
    let draft = with_tenures(vec![TenureDraft {
        start_date: Some("2021-03-04".to_owned()),
        end_date: Some("2021-03-03".to_owned()),
        ..tenure()
    }]);

    assert_only_error(&draft, "/tenures/0/endDate", codes::DATE_ORDER);
}

#[test]
fn the_1900_01_01_no_end_sentinel_is_accepted_after_any_start() {
    let draft = with_tenures(vec![TenureDraft {
        start_date: Some("2021-03-04".to_owned()),
        end_date: Some("1900-01-01".to_owned()),
        ..tenure()
    }]);

    let fields = valid(&draft);

    assert_eq!(fields.tenures[0].end_date, Some(crate::person::NO_END_SENTINEL));
    assert!(fields.tenures[0].is_active(today()));
}

#[test]
fn a_uprn_of_up_to_12_digits_is_accepted() {
    for uprn in ["1", "100021045678"] {
        let draft = with_tenures(vec![TenureDraft { uprn: Some(uprn.to_owned()), ..tenure() }]);

        assert_eq!(valid(&draft).tenures[0].uprn.as_deref(), Some(uprn));
    }
}

#[test]
fn a_uprn_of_13_digits_or_with_letters_is_refused() {
    for uprn in ["1000210456789", "10002104567A", "12 34", "-1", "١٢٣"] {
        let draft = with_tenures(vec![TenureDraft { uprn: Some(uprn.to_owned()), ..tenure() }]);

        assert_only_error(&draft, "/tenures/0/uprn", codes::INVALID_UPRN);
    }
}

#[test]
fn a_tenure_postcode_is_normalised() {
    let draft = with_tenures(vec![TenureDraft { postcode: Some(" e81dy ".to_owned()), ..tenure() }]);

    assert_eq!(valid(&draft).tenures[0].postcode.as_deref(), Some("E8 1DY"));
}

#[test]
fn a_missing_tenure_postcode_is_derived_from_the_address() {
    let draft = with_tenures(vec![TenureDraft {
        asset_full_address: Some("Flat 2, 10 Church St, London n16 7ab".to_owned()),
        ..tenure()
    }]);

    assert_eq!(valid(&draft).tenures[0].postcode.as_deref(), Some("N16 7AB"));
}

#[test]
fn a_given_tenure_postcode_wins_over_the_address() {
    let draft = with_tenures(vec![TenureDraft {
        asset_full_address: Some("1 Mare Street, London E8 1DY".to_owned()),
        postcode: Some("N16 7AB".to_owned()),
        ..tenure()
    }]);

    assert_eq!(valid(&draft).tenures[0].postcode.as_deref(), Some("N16 7AB"));
}

#[test]
fn an_invalid_tenure_postcode_is_refused() {
    let draft = with_tenures(vec![TenureDraft { postcode: Some("HELLO".to_owned()), ..tenure() }]);

    assert_only_error(&draft, "/tenures/0/postcode", codes::INVALID_POSTCODE);
}

#[test]
fn a_valid_tenure_keeps_every_field() {
    let id = Uuid::new_v4();
    let draft = with_tenures(vec![TenureDraft {
        id: Some(id),
        tenure_type: Some(" Secure ".to_owned()),
        start_date: Some("2015-03-01".to_owned()),
        end_date: None,
        asset_full_address: Some("1 Mare Street, London E8 1DY".to_owned()),
        asset_id: Some("asset-1".to_owned()),
        uprn: Some("100021045678".to_owned()),
        postcode: None,
        payment_reference: Some("PR123".to_owned()),
        property_reference: Some("00012345".to_owned()),
        is_active: Some(false),
    }]);

    let fields = valid(&draft);

    let expected = TenureSummary {
        id,
        tenure_type: Some("Secure".to_owned()),
        start_date: Some(date(2015, 3, 1)),
        end_date: None,
        asset_full_address: Some("1 Mare Street, London E8 1DY".to_owned()),
        asset_id: Some("asset-1".to_owned()),
        uprn: Some("100021045678".to_owned()),
        postcode: Some("E8 1DY".to_owned()),
        payment_reference: Some("PR123".to_owned()),
        property_reference: Some("00012345".to_owned()),
    };
    assert_eq!(fields.tenures, vec![expected]);
}

// ---------------------------------------------------------------------------------------------------------------
// parse_lenient_date

#[test]
fn lenient_dates_accept_the_documented_forms_only() {
    let expected = Some(date(2021, 3, 4));
    assert_eq!(parse_lenient_date("2021-03-04"), expected);
    assert_eq!(parse_lenient_date("2021-03-04T23:59:59.123"), expected);
    assert_eq!(parse_lenient_date("2021-03-04 12:00:00"), expected);
    assert_eq!(parse_lenient_date("2021-03-04T00:00:00+05:00"), expected);
    assert_eq!(parse_lenient_date("04/03/2021"), expected);
    for bad in ["", "asdwsad", "2021-13-01", "32/01/2021", "2021/03/04", "03-04-2021"] {
        assert_eq!(parse_lenient_date(bad), None, "{bad}");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// parse_draft: structural (400) errors

#[test]
fn a_valid_body_parses_into_a_draft() {
    let draft = parse(&valid_body()).unwrap();

    assert_eq!(draft, valid_draft());
}

#[test]
fn malformed_json_is_malformed() {
    for body in [&b"{"[..], b"{\"firstName\": }", b"", b"not json", b"{\"a\":1}}"] {
        let result = parse_draft(body);

        assert!(matches!(result, Err(BodyError::Malformed(_))), "{:?}: {result:?}", String::from_utf8_lossy(body));
    }
}

#[test]
fn a_json_value_that_is_not_an_object_is_malformed() {
    for body in ["[]", "\"Ada\"", "42", "null", "true"] {
        let result = parse_draft(body.as_bytes());

        assert_eq!(result, Err(BodyError::Malformed("expected a JSON object".to_owned())), "{body}");
    }
}

#[test]
fn malformed_json_errors_have_no_field_and_do_not_echo_the_body() {
    let error = parse_draft(b"{\"firstName\": Secret}").unwrap_err();

    assert_eq!(error.field(), None);
    assert!(!error.to_string().contains("Secret"), "{error}");
}

#[test]
fn an_id_is_allowed_on_create() {
    let id = Uuid::new_v4();

    let draft = parse(&body_with("id", json!(id))).unwrap();

    assert_eq!(draft.id, Some(id));
}

#[test]
fn every_other_read_only_key_is_refused_by_name() {
    for key in READ_ONLY_KEYS.iter().filter(|k| **k != "id") {
        let result = parse(&body_with(key, json!(1)));

        assert_eq!(result, Err(BodyError::ReadOnlyField((*key).to_owned())), "{key}");
    }
}

#[test]
fn read_only_keys_include_the_computed_and_assigned_fields() {
    for key in ["personRef", "versionNumber", "isAMinor", "links", "createdAt", "lastModified", "id"] {
        assert!(READ_ONLY_KEYS.contains(&key), "{key}");
    }
}

#[test]
fn a_read_only_key_error_points_at_the_key() {
    let error = parse(&body_with("isAMinor", json!(true))).unwrap_err();

    assert_eq!(error.field().as_deref(), Some("/isAMinor"));
    assert_eq!(error.to_string(), "field `isAMinor` is read-only");
}

#[test]
fn an_unknown_key_is_refused_by_name() {
    let result = parse(&body_with("favouriteColour", json!("blue")));

    assert_eq!(result, Err(BodyError::UnknownField("favouriteColour".to_owned())));
}

#[test]
fn a_key_in_the_wrong_case_is_an_unknown_field_naming_it() {
    let mut body = valid_body();
    body.as_object_mut().unwrap().remove("firstName");
    body["FirstName"] = json!("Ada");

    let result = parse(&body);

    assert_eq!(result, Err(BodyError::UnknownField("FirstName".to_owned())));
}

#[test]
fn a_snake_case_key_is_an_unknown_field() {
    let result = parse(&body_with("first_name", json!("Ada")));

    assert_eq!(result, Err(BodyError::UnknownField("first_name".to_owned())));
}

#[test]
fn a_number_for_first_name_is_an_invalid_value_at_first_name() {
    let result = parse(&body_with("firstName", json!(12345)));

    match result {
        Err(BodyError::InvalidValue { field, reason }) => {
            assert_eq!(field, "/firstName");
            assert!(reason.contains("expected a string"), "{reason}");
            assert!(!reason.contains("12345"), "{reason}");
        }
        other => panic!("expected InvalidValue, got {other:?}"),
    }
}

#[test]
fn an_unknown_title_is_an_invalid_value_that_does_not_echo_it() {
    let result = parse(&body_with("title", json!("Sir")));

    match result {
        Err(error @ BodyError::InvalidValue { .. }) => {
            assert_eq!(error.field().as_deref(), Some("/title"));
            let message = error.to_string();
            assert!(!message.contains("Sir"), "{message}");
            assert!(message.contains("Mr"), "the message lists the accepted values: {message}");
        }
        other => panic!("expected InvalidValue, got {other:?}"),
    }
}

#[test]
fn an_unknown_person_type_points_at_its_array_element() {
    let result = parse(&body_with("personTypes", json!(["Tenant", "Landlord"])));

    match result {
        Err(BodyError::InvalidValue { field, reason }) => {
            assert_eq!(field, "/personTypes/1");
            assert!(!reason.contains("Landlord"), "{reason}");
        }
        other => panic!("expected InvalidValue, got {other:?}"),
    }
}

#[test]
fn a_string_for_person_types_is_an_invalid_value() {
    let result = parse(&body_with("personTypes", json!("Tenant")));

    assert!(matches!(result, Err(BodyError::InvalidValue { ref field, .. }) if field == "/personTypes"), "{result:?}");
}

#[test]
fn a_wrongly_typed_value_is_not_echoed_even_when_it_contains_commas() {
    let result = parse(&body_with("singleName", json!("Lovelace, Ada, expected Secret")));

    match result {
        Err(error @ BodyError::InvalidValue { .. }) => {
            assert_eq!(error.field().as_deref(), Some("/singleName"));
            let message = error.to_string();
            for part in ["Lovelace", "Ada", "Secret"] {
                assert!(!message.contains(part), "{message}");
            }
            assert!(message.contains("expected a boolean"), "{message}");
        }
        other => panic!("expected InvalidValue, got {other:?}"),
    }
}

#[test]
fn an_unknown_enum_value_is_not_echoed_even_when_it_contains_backticks() {
    let result = parse(&body_with("title", json!("Lord`, Secret")));

    let message = result.unwrap_err().to_string();
    assert!(!message.contains("Secret") && !message.contains("Lord"), "{message}");
}

#[test]
fn an_invalid_tenure_id_points_at_it_and_is_not_echoed() {
    let result = parse(&body_with("tenures", json!([{ "id": "zzzzzzzz-0000-0000-0000-000000000000" }])));

    match result {
        Err(error @ BodyError::InvalidValue { .. }) => {
            assert_eq!(error.field().as_deref(), Some("/tenures/0/id"));
            let message = error.to_string();
            assert!(!message.contains("zz") && !message.contains("`z`"), "{message}");
        }
        other => panic!("expected InvalidValue, got {other:?}"),
    }
}

#[test]
fn an_unknown_key_inside_a_tenure_is_an_unknown_field_with_its_path() {
    let result =
        parse(&body_with("tenures", json!([{ "id": Uuid::new_v4() }, { "id": Uuid::new_v4(), "colour": "red" }])));

    let error = result.unwrap_err();
    assert_eq!(error, BodyError::UnknownField("tenures/1/colour".to_owned()));
    assert_eq!(error.field().as_deref(), Some("/tenures/1/colour"));
}

// Found by the `request_body` fuzz target: the pointer was parsed back out of serde_path_to_error's text form,
// so a key holding `.` read as two segments and the error named a field that does not exist.
#[test]
fn an_unknown_key_holding_dots_slashes_or_tildes_is_named_by_a_pointer_that_resolves() {
    let body = body_with("tenures", json!([{ "id": Uuid::new_v4(), "a.b[0]/c~d": "red" }]));

    let error = parse(&body).unwrap_err();

    assert_eq!(error, BodyError::UnknownField("tenures/0/a.b[0]~1c~0d".to_owned()));
    let pointer = error.field().unwrap();
    assert_eq!(body.pointer(&pointer), Some(&json!("red")), "{pointer}");
}

#[test]
fn an_unknown_top_level_key_holding_a_slash_is_named_by_a_pointer_that_resolves() {
    let body = body_with("a/b~c", json!(1));

    let error = parse(&body).unwrap_err();

    assert_eq!(error, BodyError::UnknownField("a~1b~0c".to_owned()));
    assert_eq!(body.pointer(&error.field().unwrap()), Some(&json!(1)));
}

#[test]
fn is_active_inside_a_tenure_is_accepted_and_ignored() {
    let id = Uuid::new_v4();
    let body = body_with("tenures", json!([{ "id": id, "isActive": false, "endDate": null }]));

    let draft = parse(&body).unwrap();
    let fields = valid(&draft);

    assert_eq!(fields.tenures.len(), 1);
    assert!(fields.tenures[0].is_active(today()), "isActive is computed, not taken from the body");
    let reserialised = serde_json::to_value(&draft).unwrap();
    assert_eq!(reserialised["tenures"][0].get("isActive"), None);
}

#[test]
fn null_values_in_a_create_body_mean_absent() {
    let draft = parse(&body_with("middleName", json!(null))).unwrap();

    assert_eq!(draft.middle_name, None);
}

#[test]
fn check_keys_refuses_id_when_not_allowed() {
    let map = parse_object(br#"{"id": "x"}"#).unwrap();

    assert_eq!(check_keys(&map, false), Err(BodyError::ReadOnlyField("id".to_owned())));
    assert_eq!(check_keys(&map, true), Ok(()));
}

#[test]
fn debug_of_a_draft_prints_no_personal_data() {
    let draft = PersonDraft { first_name: Some("Secretname".to_owned()), ..valid_draft() };

    assert!(!format!("{draft:?}").contains("Secretname"));
    assert!(!format!("{:?}", valid(&draft)).contains("Secretname"));
}
