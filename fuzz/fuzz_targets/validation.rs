//! Validation: structured drafts (every field of `PersonDraft`, values either arbitrary text or drawn from
//! realistic ones so that valid persons are reached) validated with `validate::validate`.
//!
//! Never panics; validation is deterministic; an accepted draft yields fields that are a fixed point of store →
//! read back → validate and that keep the draft's roles (deduplicated, in order); a refused draft names at least
//! one field, each a JSON pointer under a writable key; the draft serialises and parses back to itself.

#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use person_core::person::{PersonType, Title};
use person_core::validate::{self, PersonDraft, TenureDraft, WRITABLE_KEYS};
use person_fuzz::{assert_fixed_point, assert_well_formed, today};
use uuid::Uuid;

const TITLES: [Title; 10] = Title::ALL;

const PERSON_TYPES: [PersonType; 7] = PersonType::ALL;

const NAMES: [&str; 12] = [
    "Ada",
    "O'Neill",
    "Anne-Marie",
    "Zoë",
    "Zoe\u{0308}",
    "Łukasz",
    "王秀英",
    "de la Cruz",
    "  Smith  ",
    "a < b",
    "<b>",
    "&#60;",
];

const TEXTS: [&str; 8] = [
    "1 Mare Street, London E8 1DY",
    "Flat 2, 10 Upper Street N1 9GU",
    "Secure",
    "n19gu",
    "E8 1DY",
    "line one\nline two",
    "bell\u{0007}",
    "",
];

/// Text: arbitrary, or one of the realistic values above.
#[derive(Debug, Arbitrary)]
enum Text {
    Raw(String),
    Name(u8),
    Free(u8),
    Long(u8),
}

/// Lengths either side of the limits: 100 graphemes for a name, 500 characters for free text.
const LENGTHS: [usize; 6] = [99, 100, 101, 499, 500, 501];

/// One grapheme each: ASCII, precomposed, and a letter with a combining accent (two characters, one grapheme).
const UNITS: [&str; 3] = ["a", "é", "e\u{0301}"];

impl Text {
    fn value(&self) -> String {
        match self {
            Self::Raw(s) => s.clone(),
            Self::Name(i) => NAMES[usize::from(*i) % NAMES.len()].to_owned(),
            Self::Free(i) => TEXTS[usize::from(*i) % TEXTS.len()].to_owned(),
            Self::Long(n) => UNITS[usize::from(*n) % UNITS.len()].repeat(LENGTHS[usize::from(*n / 3) % LENGTHS.len()]),
        }
    }
}

/// A date: arbitrary text, or a date in one of the accepted notations (possibly out of range).
#[derive(Debug, Arbitrary)]
enum Date {
    Raw(String),
    Iso(i32, u8, u8),
    WithTime(i32, u8, u8, i8),
    Legacy(u8, u8, i32),
}

impl Date {
    fn value(&self) -> String {
        match self {
            Self::Raw(s) => s.clone(),
            Self::Iso(y, m, d) => format!("{:04}-{:02}-{:02}", 1890 + y.rem_euclid(160), m % 13, d % 32),
            Self::WithTime(y, m, d, h) => {
                format!("{:04}-{:02}-{:02}T10:00:00{:+03}:00", 1890 + y.rem_euclid(160), m % 13, d % 32, h % 15)
            }
            Self::Legacy(d, m, y) => format!("{:02}/{:02}/{:04}", d % 32, m % 13, 1890 + y.rem_euclid(160)),
        }
    }
}

#[derive(Debug, Arbitrary)]
struct Tenure {
    id: Option<u8>,
    tenure_type: Option<Text>,
    start_date: Option<Date>,
    end_date: Option<Date>,
    asset_full_address: Option<Text>,
    asset_id: Option<Text>,
    uprn: Option<Text>,
    postcode: Option<Text>,
    payment_reference: Option<Text>,
    property_reference: Option<Text>,
}

#[derive(Debug, Arbitrary)]
struct Draft {
    id: Option<u128>,
    title: Option<u8>,
    preferred_title: Option<u8>,
    first_name: Option<Text>,
    middle_name: Option<Text>,
    surname: Option<Text>,
    single_name: Option<bool>,
    preferred_first_name: Option<Text>,
    preferred_middle_name: Option<Text>,
    preferred_surname: Option<Text>,
    place_of_birth: Option<Text>,
    date_of_birth: Option<Date>,
    date_of_death: Option<Date>,
    person_types: Option<Vec<u8>>,
    tenures: Option<Vec<Tenure>>,
    reason: Option<Text>,
}

fn text(t: &Option<Text>) -> Option<String> {
    t.as_ref().map(Text::value)
}

impl Draft {
    fn draft(&self) -> PersonDraft {
        PersonDraft {
            id: self.id.map(Uuid::from_u128),
            title: self.title.map(|i| TITLES[usize::from(i) % TITLES.len()]),
            preferred_title: self.preferred_title.map(|i| TITLES[usize::from(i) % TITLES.len()]),
            first_name: text(&self.first_name),
            middle_name: text(&self.middle_name),
            surname: text(&self.surname),
            single_name: self.single_name,
            preferred_first_name: text(&self.preferred_first_name),
            preferred_middle_name: text(&self.preferred_middle_name),
            preferred_surname: text(&self.preferred_surname),
            place_of_birth: text(&self.place_of_birth),
            date_of_birth: self.date_of_birth.as_ref().map(Date::value),
            date_of_death: self.date_of_death.as_ref().map(Date::value),
            person_types: self
                .person_types
                .as_ref()
                .map(|types| types.iter().map(|i| PERSON_TYPES[usize::from(*i) % PERSON_TYPES.len()]).collect()),
            tenures: self.tenures.as_ref().map(|tenures| {
                // A few tenures reach every rule between them (repeats, order); more only slow each run down.
                tenures
                    .iter()
                    .take(4)
                    .map(|t| TenureDraft {
                        // A few ids (nil among them) so that repeated and nil ids are reached.
                        id: t.id.map(|i| Uuid::from_u128(u128::from(i % 4))),
                        tenure_type: text(&t.tenure_type),
                        start_date: t.start_date.as_ref().map(Date::value),
                        end_date: t.end_date.as_ref().map(Date::value),
                        asset_full_address: text(&t.asset_full_address),
                        asset_id: text(&t.asset_id),
                        uprn: text(&t.uprn),
                        postcode: text(&t.postcode),
                        payment_reference: text(&t.payment_reference),
                        property_reference: text(&t.property_reference),
                        is_active: None,
                    })
                    .collect()
            }),
            reason: text(&self.reason),
        }
    }
}

fuzz_target!(|input: Draft| {
    let draft = input.draft();

    let json = serde_json::to_vec(&draft).expect("a draft serialises");
    let parsed = validate::parse_draft(&json).expect("a serialised draft parses");
    assert!(parsed == draft, "a draft changed through serialisation");

    let result = validate::validate(&draft, today());
    assert!(result == validate::validate(&draft, today()), "validation is not deterministic");
    match result {
        Ok(fields) => {
            let mut expected_types: Vec<PersonType> = Vec::new();
            for t in draft.person_types.iter().flatten() {
                if !expected_types.contains(t) {
                    expected_types.push(*t);
                }
            }
            assert!(fields.person_types == expected_types, "roles not kept deduplicated in order");
            assert!(!fields.person_types.is_empty(), "a person without a role was accepted");
            assert_fixed_point(&fields);
        }
        Err(errors) => {
            assert_well_formed(&errors);
            for error in errors.errors() {
                let top = error.field.trim_start_matches('/').split('/').next().unwrap_or_default();
                assert!(WRITABLE_KEYS.contains(&top), "error at `{}`, not under a writable key", error.field);
            }
        }
    }
});
