//! Property tests of the domain's round trips and invariants: name and postcode normalisation are idempotent,
//! stored persons survive JSON, a person compared with itself has no changes, re-submitting a current value
//! changes nothing, and validation never panics (and is stable) whatever strings it is given. The same for
//! equality data: National Insurance numbers normalise idempotently to the canonical shape, and equality
//! validation never panics, accepts its own output unchanged and survives JSON.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use person_core::equality::{
    CategoryAnswer, ETHNICITY_CODES, EqualityData, GENDER_CODES, ISO_3166_ALPHA2, Language, RELIGION_CODES,
    SEX_AT_BIRTH_CODES, SEXUAL_ORIENTATION_CODES, normalise_nino, validate_equality,
};
use person_core::patch::{apply_patch, changed_data, draft_of};
use person_core::person::NO_END_SENTINEL;
use person_core::postcode;
use person_core::validate::{PersonDraft, PersonFields, TenureDraft, parse_draft, validate};
use person_core::{Name, Person, PersonId, PersonRef, PersonStatus, PersonType, TenureSummary, Title};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Value};
use uuid::Uuid;

const TITLES: [Title; 10] = Title::ALL;

const PERSON_TYPES: [PersonType; 7] = PersonType::ALL;

/// The fixed "today" of these properties.
fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 10).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------------------------
// Strategies

/// Name text that is already valid and stored as typed: precomposed letters, apostrophes, hyphens, inner spaces.
fn valid_name_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-zÀ-ÖØ-öø-ÿĀ-ž]([A-Za-zÀ-ÖØ-öø-ÿĀ-ž' -]{0,60}[A-Za-zÀ-ÖØ-öø-ÿĀ-ž])?",
        "[一-龥]{1,8}",
        "O'[A-Z][a-z]{1,10}(-[A-Z][a-z]{1,10})?",
    ]
}

fn name() -> impl Strategy<Value = Name> {
    valid_name_text().prop_filter_map("a valid name", |text| Name::parse(&text).ok())
}

/// Free text that passes the free-text rules: trimmed, no markup, no control characters.
fn free_text() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9 ,.'()/-]{0,40}".prop_map(|text| text.trim().to_owned())
}

fn date_between(from: NaiveDate, to: NaiveDate) -> impl Strategy<Value = NaiveDate> {
    (from.num_days_from_ce()..=to.num_days_from_ce())
        .prop_filter_map("a calendar date", NaiveDate::from_num_days_from_ce_opt)
}

fn any_date() -> impl Strategy<Value = NaiveDate> {
    date_between(
        NaiveDate::from_ymd_opt(1950, 1, 1).unwrap_or_default(),
        NaiveDate::from_ymd_opt(2040, 12, 31).unwrap_or_default(),
    )
}

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    (0_i64..4_102_444_800, 0_u32..1_000_000_000)
        .prop_filter_map("a valid instant", |(secs, nanos)| Utc.timestamp_opt(secs, nanos).single())
}

fn person_id() -> impl Strategy<Value = PersonId> {
    any::<u128>().prop_filter_map("a non-nil id", |n| PersonId::new(Uuid::from_u128(n)))
}

/// The outward and inward codes of a valid UK postcode.
fn postcode_parts() -> impl Strategy<Value = (String, String)> {
    let outward = prop_oneof![
        "[A-Z][0-9]",
        "[A-Z][0-9]{2}",
        "[A-Z]{2}[0-9]",
        "[A-Z]{2}[0-9]{2}",
        "[A-Z][0-9][A-Z]",
        "[A-Z]{2}[0-9][A-Z]"
    ];
    (outward, "[0-9][A-Z]{2}")
}

fn normalised_postcode() -> impl Strategy<Value = String> {
    postcode_parts().prop_map(|(outward, inward)| format!("{outward} {inward}"))
}

/// A tenure as validation stores it: dates in order (or the no-end sentinel), a postcode derived from the
/// address when none is given.
fn tenure() -> impl Strategy<Value = TenureSummary> {
    (
        any::<u128>().prop_filter_map("a non-nil id", |n| Some(Uuid::from_u128(n)).filter(|id| !id.is_nil())),
        option::of(free_text()),
        option::of(any_date()),
        prop_oneof![Just(None), Just(Some(None)), (0_i64..5000).prop_map(|days| Some(Some(days)))],
        option::of(free_text()),
        option::of(free_text()),
        option::of("[0-9]{1,12}"),
        option::of(normalised_postcode()),
        option::of(free_text()),
        option::of(free_text()),
    )
        .prop_map(|(id, tenure_type, start_date, end, address, asset_id, uprn, postcode, payment, property)| {
            let end_date = match end {
                None => None,
                Some(None) => Some(NO_END_SENTINEL),
                Some(Some(days)) => Some(start_date.unwrap_or(NO_END_SENTINEL) + chrono::Duration::days(days)),
            };
            let postcode = postcode.or_else(|| address.as_deref().and_then(postcode::find_in_address));
            TenureSummary {
                id,
                tenure_type,
                start_date,
                end_date,
                asset_full_address: address,
                asset_id,
                uprn,
                postcode,
                payment_reference: payment,
                property_reference: property,
            }
        })
}

fn status() -> impl Strategy<Value = PersonStatus> {
    prop_oneof![
        Just(PersonStatus::Active),
        Just(PersonStatus::Deleted),
        person_id().prop_map(|into| PersonStatus::Merged { into }),
    ]
}

/// A person as the service would store it: every value passes validation as of [`today`].
fn person() -> impl Strategy<Value = Person> {
    let names = (
        option::of(name()),
        option::of(name()),
        name(),
        any::<bool>(),
        option::of(name()),
        option::of(name()),
        option::of(name()),
    );
    let dates = (
        option::of(date_between(NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or_default(), today())),
        option::of(0_i64..40_000),
    );
    let roles = (
        option::of(select(&TITLES[..])),
        option::of(select(&TITLES[..])),
        vec(select(&PERSON_TYPES[..]), 1..4),
        vec(tenure(), 0..4),
        option::of(free_text()),
        free_text(),
    );
    let bookkeeping = (person_id(), 1_i64..i64::MAX, any::<u64>(), instant(), instant(), status(), any::<bool>());
    (names, dates, roles, bookkeeping).prop_map(
        |(
            (first, middle, surname, single_name, preferred_first, preferred_middle, preferred_surname),
            (date_of_birth, death_after_days),
            (title, preferred_title, mut person_types, mut tenures, place_of_birth, reason),
            (id, person_ref, version_number, created_at, last_modified, status, processing_restricted),
        )| {
            let mut seen = std::collections::HashSet::new();
            person_types.retain(|t| seen.insert(*t));
            let mut tenure_ids = std::collections::HashSet::new();
            tenures.retain(|t| tenure_ids.insert(t.id));
            let is_staff = person_types.iter().any(|t| t.is_staff());
            let date_of_birth = if is_staff { date_of_birth } else { date_of_birth.or(Some(today())) };
            let date_of_death = death_after_days.map(|days| {
                let from = date_of_birth.unwrap_or(today());
                (from + chrono::Duration::days(days)).min(today())
            });
            Person {
                id,
                person_ref: PersonRef(person_ref),
                title: if is_staff { title } else { title.or(Some(Title::Mx)) },
                preferred_title,
                first_name: if single_name { None } else { Some(first.unwrap_or_else(|| surname.clone())) },
                middle_name: middle,
                surname,
                single_name,
                preferred_first_name: preferred_first,
                preferred_middle_name: preferred_middle,
                preferred_surname,
                place_of_birth,
                date_of_birth,
                date_of_death,
                person_types,
                tenures,
                reason,
                version_number,
                created_at,
                last_modified,
                status,
                processing_restricted,
                references: Vec::new(),
            }
        },
    )
}

/// Any string, with a bias towards shapes the validator branches on (dates, postcodes, markup, blanks).
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "\\PC{0,30}",
        "[0-9]{1,4}[-/][0-9]{1,2}[-/][0-9]{1,4}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(Z|[+-][0-9]{2}:[0-9]{2})?)?",
        "[A-Za-z0-9 ]{0,10}",
        "[ \t\n]{0,3}(<[a-z!/?]|&#)?[ \t\n]{0,3}",
        Just(String::new()),
        "[a-z]{0,3}".prop_map(|s| s.repeat(200)),
    ]
}

/// The loose fields of a tenure draft (`TenureDraft` has no `Debug`, which proptest needs to report a case).
#[derive(Debug, Clone)]
struct RawTenure {
    id: Option<Uuid>,
    texts: [Option<String>; 8],
    is_active: Option<bool>,
}

impl RawTenure {
    fn into_draft(self) -> TenureDraft {
        let [tenure_type, start_date, end_date, asset_full_address, asset_id, uprn, postcode, payment_reference] =
            self.texts;
        TenureDraft {
            id: self.id,
            tenure_type,
            start_date,
            end_date,
            asset_full_address,
            asset_id,
            uprn,
            postcode,
            payment_reference,
            property_reference: None,
            is_active: self.is_active,
        }
    }
}

fn raw_tenure() -> impl Strategy<Value = RawTenure> {
    (
        option::of(prop_oneof![Just(Uuid::nil()), any::<u128>().prop_map(Uuid::from_u128)]),
        [
            option::of(any_text()),
            option::of(any_text()),
            option::of(any_text()),
            option::of(any_text()),
            option::of(any_text()),
            option::of(any_text()),
            option::of(any_text()),
            option::of(any_text()),
        ],
        option::of(any::<bool>()),
    )
        .prop_map(|(id, texts, is_active)| RawTenure { id, texts, is_active })
}

/// A draft with arbitrary strings in every string field.
fn arbitrary_draft() -> impl Strategy<Value = PersonDraft> {
    (
        option::of(any::<u128>().prop_map(Uuid::from_u128)),
        option::of(select(&TITLES[..])),
        [option::of(any_text()), option::of(any_text()), option::of(any_text()), option::of(any_text())],
        [option::of(any_text()), option::of(any_text()), option::of(any_text()), option::of(any_text())],
        [option::of(any_text()), option::of(any_text())],
        option::of(any::<bool>()),
        option::of(vec(select(&PERSON_TYPES[..]), 0..4)),
        option::of(vec(raw_tenure(), 0..3)),
    )
        .prop_map(
            |(
                id,
                title,
                [first_name, middle_name, surname, preferred_first_name],
                [preferred_middle_name, preferred_surname, place_of_birth, reason],
                [date_of_birth, date_of_death],
                single_name,
                person_types,
                tenures,
            )| PersonDraft {
                id,
                title,
                preferred_title: None,
                first_name,
                middle_name,
                surname,
                single_name,
                preferred_first_name,
                preferred_middle_name,
                preferred_surname,
                place_of_birth,
                date_of_birth,
                date_of_death,
                person_types,
                tenures: tenures.map(|raw| raw.into_iter().map(RawTenure::into_draft).collect()),
                reason,
            },
        )
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers

/// A placeholder person to hold validated fields (identity and bookkeeping do not matter to the callers).
fn holder(fields: PersonFields) -> Person {
    let id = PersonId::new(Uuid::from_u128(1)).unwrap_or_else(|| unreachable!("1 is not the nil UUID"));
    Person::from_fields(id, PersonRef(1), fields, 0, DateTime::<Utc>::UNIX_EPOCH)
}

/// The writable keys a patch may set as fields (`reason` is the change's reason, not a field).
fn patchable_keys() -> Vec<&'static str> {
    person_core::validate::WRITABLE_KEYS.iter().copied().filter(|k| *k != "reason").collect()
}

// ---------------------------------------------------------------------------------------------------------------
// Properties

proptest! {
    #[test]
    fn name_parse_is_idempotent(raw in any_text()) {
        if let Ok(name) = Name::parse(&raw) {
            prop_assert_eq!(Name::parse(name.as_str()), Ok(name.clone()));
        }
    }

    #[test]
    fn a_valid_name_is_stored_exactly_as_typed(text in valid_name_text()) {
        let name = Name::parse(&text);

        prop_assert_eq!(name.as_ref().map(Name::as_str), Ok(text.as_str()));
        let again = name.as_ref().ok().map(|n| Name::parse(n.as_str()));
        prop_assert_eq!(again, Some(name.clone()));
    }

    #[test]
    fn postcode_normalise_is_idempotent_on_any_text(raw in any_text()) {
        if let Some(normalised) = postcode::normalise(&raw) {
            prop_assert_eq!(postcode::normalise(&normalised), Some(normalised.clone()));
        }
    }

    #[test]
    fn any_spelling_of_a_postcode_normalises_to_one_canonical_form(
        (outward, inward) in postcode_parts(),
        lower in any::<bool>(),
        gap in "[ ]{0,2}",
    ) {
        let canonical = format!("{outward} {inward}");
        let typed = format!("{outward}{gap}{inward}");
        let typed = if lower { typed.to_lowercase() } else { typed };

        prop_assert_eq!(postcode::normalise(&typed), Some(canonical.clone()));
        prop_assert_eq!(postcode::normalise(&canonical), Some(canonical.clone()));
    }

    #[test]
    fn a_person_survives_a_json_round_trip(person in person()) {
        let json = serde_json::to_string(&person);
        prop_assert!(json.is_ok());
        let back: Result<Person, _> = serde_json::from_str(&json.unwrap_or_default());

        prop_assert_eq!(back.ok(), Some(person));
    }

    #[test]
    fn a_person_compared_with_itself_has_no_changed_data(person in person()) {
        let (old_data, new_data) = changed_data(&person, &person.clone());

        prop_assert!(old_data.is_empty());
        prop_assert!(new_data.is_empty());
    }

    #[test]
    fn draft_of_a_stored_person_validates_back_to_the_same_person(person in person()) {
        let fields = validate(&draft_of(&person), today());

        prop_assert!(fields.is_ok(), "{:?}", fields.as_ref().err());
        let rebuilt = fields.map(|f| person.with_fields(f)).ok();
        prop_assert_eq!(rebuilt, Some(person));
    }

    #[test]
    fn patching_a_field_to_its_current_value_changes_nothing(
        person in person(),
        key in select(patchable_keys()),
    ) {
        let current = match serde_json::to_value(draft_of(&person)) {
            Ok(Value::Object(map)) => map.get(key).cloned().unwrap_or(Value::Null),
            other => panic!("a draft serialises to an object, got {other:?}"),
        };
        let mut patch = Map::new();
        patch.insert(key.to_owned(), current);
        let body = Value::Object(patch).to_string();

        let outcome = apply_patch(&person, body.as_bytes(), today());

        prop_assert!(outcome.is_ok(), "{key}: {:?}", outcome.as_ref().err());
        let patched = outcome.map(|o| person.with_fields(o.fields)).ok();
        prop_assert_eq!(patched.as_ref(), Some(&person));
        let (old_data, new_data) = changed_data(&person, patched.as_ref().unwrap_or(&person));
        prop_assert!(old_data.is_empty() && new_data.is_empty());
    }

    #[test]
    fn validation_never_panics_and_what_it_accepts_is_stable(draft in arbitrary_draft()) {
        if let Ok(fields) = validate(&draft, today()) {
            let stored = holder(fields.clone());
            let again = validate(&draft_of(&stored), today());

            prop_assert_eq!(again.ok(), Some(fields));
        }
    }

    #[test]
    fn a_stored_person_with_one_text_field_replaced_validates_stably(
        person in person(),
        field in 0_usize..15,
        text in any_text(),
    ) {
        let mut draft = draft_of(&person);
        let tenure = draft.tenures.as_mut().and_then(|t| t.first_mut());
        let slot = match (field, tenure) {
            (0, _) => &mut draft.first_name,
            (1, _) => &mut draft.middle_name,
            (2, _) => &mut draft.surname,
            (3, _) => &mut draft.preferred_first_name,
            (4, _) => &mut draft.place_of_birth,
            (5, _) => &mut draft.date_of_birth,
            (6, _) => &mut draft.date_of_death,
            (7, _) => &mut draft.reason,
            (8, Some(t)) => &mut t.start_date,
            (9, Some(t)) => &mut t.end_date,
            (10, Some(t)) => &mut t.asset_full_address,
            (11, Some(t)) => &mut t.uprn,
            (12, Some(t)) => &mut t.postcode,
            (13, Some(t)) => &mut t.tenure_type,
            _ => &mut draft.preferred_surname,
        };
        *slot = Some(text);

        if let Ok(fields) = validate(&draft, today()) {
            let again = validate(&draft_of(&holder(fields.clone())), today());

            prop_assert_eq!(again.ok(), Some(fields));
        }
    }

    #[test]
    fn parsing_never_panics_on_arbitrary_bytes(body in vec(any::<u8>(), 0..200)) {
        let _ = parse_draft(&body);
    }

    #[test]
    fn parsing_and_validating_never_panic_on_arbitrary_strings_in_any_key(
        values in vec((select(patchable_keys()), any_text()), 0..8),
        person in person(),
    ) {
        let object: Map<String, Value> = values.into_iter().map(|(k, v)| (k.to_owned(), Value::String(v))).collect();
        let body = Value::Object(object).to_string();

        if let Ok(draft) = parse_draft(body.as_bytes()) {
            let _ = validate(&draft, today());
        }
        let _ = apply_patch(&person, body.as_bytes(), today());
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Equality data

/// Letters HMRC allows first in a NINO prefix, and second (also not O).
const NINO_FIRST: &str = "ABCEGHJKLMNOPRSTWXYZ";
const NINO_SECOND: &str = "ABCEGHJKLMNPRSTWXYZ";
const NINO_REFUSED_PREFIXES: [&str; 7] = ["BG", "GB", "KN", "NK", "NT", "TN", "ZZ"];

/// Whether `text` is `^[A-Z]{2}[0-9]{6}[A-D]$`.
fn has_canonical_nino_shape(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 9
        && bytes[..2].iter().all(u8::is_ascii_uppercase)
        && bytes[2..8].iter().all(u8::is_ascii_digit)
        && (b'A'..=b'D').contains(&bytes[8])
}

/// A valid NINO in canonical form.
fn valid_nino() -> impl Strategy<Value = String> {
    let letters = |set: &str| select(set.chars().collect::<Vec<char>>());
    (letters(NINO_FIRST), letters(NINO_SECOND), "[0-9]{6}", select(vec!['A', 'B', 'C', 'D']))
        .prop_map(|(first, second, digits, suffix)| format!("{first}{second}{digits}{suffix}"))
        .prop_filter("an allocatable prefix", |nino| !NINO_REFUSED_PREFIXES.contains(&&nino[..2]))
}

/// Text shaped like a NINO (any letters, optional spaces, either case), valid ones, and anything at all.
fn nino_like() -> impl Strategy<Value = String> {
    prop_oneof!["[A-Za-z]{2} ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-Za-z]", valid_nino(), "[A-Z0-9 ]{7,11}", any_text(),]
}

/// `code` as typed: sometimes upper case, sometimes padded.
fn as_typed(code: String, upper: bool, pad: bool) -> String {
    let code = if upper { code.to_uppercase() } else { code };
    if pad { format!(" {code} ") } else { code }
}

/// A code of `codes` (mostly, in any case and padding) or any text.
fn code_text(codes: Vec<&'static str>) -> impl Strategy<Value = String> {
    let known = (select(codes), any::<bool>(), any::<bool>())
        .prop_map(|(code, upper, pad)| as_typed(code.to_owned(), upper, pad));
    prop_oneof![4 => known, 1 => any_text()]
}

/// Optional write-in text: mostly usable, sometimes anything.
fn write_in() -> impl Strategy<Value = String> {
    prop_oneof![3 => free_text(), 1 => any_text()]
}

fn category_answer(codes: &'static [(&'static str, bool)]) -> impl Strategy<Value = Option<CategoryAnswer>> {
    let all: Vec<&'static str> = codes.iter().map(|(code, _)| *code).collect();
    option::of((code_text(all), prop_oneof![3 => Just(None), 1 => write_in().prop_map(Some)]))
        .prop_map(|answer| answer.map(|(code, description)| CategoryAnswer { code, description }))
}

/// Submitted equality data: mostly plausible, with arbitrary text mixed into every field.
fn arbitrary_equality() -> impl Strategy<Value = EqualityData> {
    let categories = (
        category_answer(GENDER_CODES),
        category_answer(ETHNICITY_CODES),
        category_answer(RELIGION_CODES),
        category_answer(SEXUAL_ORIENTATION_CODES),
        option::of(code_text(SEX_AT_BIRTH_CODES.to_vec())),
    );
    let lists = (
        vec(code_text(ISO_3166_ALPHA2.to_vec()), 0..4),
        prop_oneof![
            4 => (write_in(), 0_usize..3)
                .prop_map(|(language, n)| (0..n).map(|i| (format!("{language}{i}"), i == 0)).collect::<Vec<_>>()),
            1 => vec((write_in(), any::<bool>()), 0..12),
        ],
        vec(write_in(), 0..3),
        option::of(prop_oneof![2 => valid_nino(), 1 => nino_like()]),
    );
    (categories, lists).prop_map(
        |(
            (gender, ethnicity, religion, sexual_orientation, sex_registered_at_birth),
            (nationalities, languages, communication_requirements, national_insurance_number),
        )| EqualityData {
            gender,
            sex_registered_at_birth,
            nationalities,
            ethnicity,
            religion,
            sexual_orientation,
            languages: languages.into_iter().map(|(language, is_primary)| Language { language, is_primary }).collect(),
            communication_requirements,
            national_insurance_number,
        },
    )
}

proptest! {
    #[test]
    fn normalise_nino_is_idempotent_and_accepts_only_the_canonical_shape(raw in nino_like()) {
        if let Some(nino) = normalise_nino(&raw) {
            prop_assert!(has_canonical_nino_shape(&nino), "{nino:?} from {raw:?}");
            prop_assert_eq!(normalise_nino(&nino), Some(nino.clone()));
        }
    }

    #[test]
    fn every_valid_nino_in_any_case_and_spacing_normalises_to_its_canonical_form(
        nino in valid_nino(),
        lower in any::<bool>(),
        spaced in any::<bool>(),
    ) {
        let typed = if lower { nino.to_lowercase() } else { nino.clone() };
        let typed = if spaced {
            format!("{} {} {} {} {}", &typed[..2], &typed[2..4], &typed[4..6], &typed[6..8], &typed[8..])
        } else {
            typed
        };

        prop_assert_eq!(normalise_nino(&typed), Some(nino));
    }

    #[test]
    fn equality_validation_never_panics_and_its_output_validates_to_itself(draft in arbitrary_equality()) {
        if let Ok(valid) = validate_equality(draft) {
            prop_assert_eq!(validate_equality(valid.clone()), Ok(valid.clone()));
            let json = serde_json::to_string(&valid);
            prop_assert!(json.is_ok());
            let back: Result<EqualityData, _> = serde_json::from_str(&json.unwrap_or_default());
            prop_assert_eq!(back.ok(), Some(valid));
        }
    }
}
