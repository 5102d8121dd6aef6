//! Equality data (SPEC §7): special-category information held for equality monitoring, readable and writable
//! only with `equality:*` permissions, never in person responses, events, logs or reporting.
//!
//! Categories follow the ONS 2021 census questions for England and Wales; nationality is a list of ISO 3166-1
//! alpha-2 codes (dual nationals allowed); the National Insurance number is validated by HMRC's rules and stored
//! canonically (`AB123456C`). Every value is optional: a person may decline any question, and "prefer not to
//! say" is an answer in its own right.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::validate::ValidationErrors;

/// Most languages recorded for one person.
pub const MAX_LANGUAGES: usize = 10;
/// Most communication requirements recorded for one person.
pub const MAX_COMMUNICATION_REQUIREMENTS: usize = 20;
/// Longest write-in text (descriptions, language names, requirements), in characters.
pub const MAX_WRITE_IN: usize = 200;

/// ISO 3166-1 alpha-2 country codes (officially assigned), sorted.
pub const ISO_3166_ALPHA2: &[&str] = &[
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ", "BA", "BB", "BD",
    "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS", "BT", "BV", "BW", "BY", "BZ", "CA",
    "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN", "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE",
    "DJ", "DK", "DM", "DO", "DZ", "EC", "EE", "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA",
    "GB", "GD", "GE", "GF", "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK",
    "HM", "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM", "JO", "JP",
    "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC", "LI", "LK", "LR", "LS", "LT",
    "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK", "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS",
    "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA", "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ",
    "OM", "PA", "PE", "PF", "PG", "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS",
    "RU", "RW", "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS", "ST",
    "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO", "TR", "TT", "TV", "TW",
    "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI", "VN", "VU", "WF", "WS", "YE", "YT", "ZA",
    "ZM", "ZW",
];

/// A category answer with optional write-in text (required for the "other" categories' free description).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CategoryAnswer {
    /// The category code (see `docs/api.md` for each question's codes).
    pub code: String,
    /// Write-in text, allowed only for categories that invite it ("other …").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// One language a person uses.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Language {
    /// The language, e.g. "English", "Turkish", "British Sign Language".
    pub language: String,
    /// Exactly one language is primary.
    #[serde(default)]
    pub is_primary: bool,
}

/// A person's equality data, validated. Every field is optional.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EqualityData {
    /// Gender identity: `woman`, `man`, `non-binary`, `other` (with description), `prefer-not-to-say`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender: Option<CategoryAnswer>,
    /// Sex registered at birth: `female`, `male`, `intersex`, `prefer-not-to-say`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sex_registered_at_birth: Option<String>,
    /// Nationalities as ISO 3166-1 alpha-2 codes (upper case, no repeats).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nationalities: Vec<String>,
    /// Ethnic group (ONS 2021 categories).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ethnicity: Option<CategoryAnswer>,
    /// Religion (ONS 2021 categories).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub religion: Option<CategoryAnswer>,
    /// Sexual orientation (ONS 2021 categories).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sexual_orientation: Option<CategoryAnswer>,
    /// Languages: at most 10, exactly one primary when any are given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub languages: Vec<Language>,
    /// Communication requirements (e.g. "Interpreter", "Large print"): at most 20.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub communication_requirements: Vec<String>,
    /// National Insurance number, canonical (`AB123456C`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub national_insurance_number: Option<String>,
}

impl fmt::Debug for EqualityData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EqualityData(<redacted>)")
    }
}

impl fmt::Debug for CategoryAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CategoryAnswer(<redacted>)")
    }
}

impl fmt::Debug for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Language(<redacted>)")
    }
}

/// A question's categories: `(code, accepts write-in text)`.
type Categories = &'static [(&'static str, bool)];

/// Gender identity categories.
pub const GENDER_CODES: Categories =
    &[("woman", false), ("man", false), ("non-binary", false), ("other", true), ("prefer-not-to-say", false)];

/// Sex registered at birth.
pub const SEX_AT_BIRTH_CODES: &[&str] = &["female", "male", "intersex", "prefer-not-to-say"];

/// ONS 2021 ethnic group categories (England and Wales), with "prefer not to say".
pub const ETHNICITY_CODES: Categories = &[
    ("asian-bangladeshi", false),
    ("asian-chinese", false),
    ("asian-indian", false),
    ("asian-pakistani", false),
    ("asian-other", true),
    ("black-african", false),
    ("black-caribbean", false),
    ("black-other", true),
    ("mixed-white-and-asian", false),
    ("mixed-white-and-black-african", false),
    ("mixed-white-and-black-caribbean", false),
    ("mixed-other", true),
    ("white-british", false),
    ("white-irish", false),
    ("white-gypsy-or-irish-traveller", false),
    ("white-roma", false),
    ("white-other", true),
    ("other-arab", false),
    ("other-any", true),
    ("prefer-not-to-say", false),
];

/// ONS 2021 religion categories, with "prefer not to say".
pub const RELIGION_CODES: Categories = &[
    ("no-religion", false),
    ("christian", false),
    ("buddhist", false),
    ("hindu", false),
    ("jewish", false),
    ("muslim", false),
    ("sikh", false),
    ("other", true),
    ("prefer-not-to-say", false),
];

/// ONS 2021 sexual orientation categories, with "prefer not to say".
pub const SEXUAL_ORIENTATION_CODES: Categories = &[
    ("straight-or-heterosexual", false),
    ("gay-or-lesbian", false),
    ("bisexual", false),
    ("other", true),
    ("prefer-not-to-say", false),
];

/// Error code for a value outside a question's categories.
pub const UNKNOWN_CODE: &str = "unknown_code";
/// Error code for an invalid National Insurance number.
pub const INVALID_NINO: &str = "invalid_nino";
/// Error code for an unknown country code.
pub const INVALID_COUNTRY: &str = "invalid_country";
/// Error code for a languages list without exactly one primary, or too long.
pub const INVALID_LANGUAGES: &str = "invalid_languages";

/// Validates and normalises submitted equality data; reports every error at once.
///
/// # Errors
/// [`ValidationErrors`] naming each field (`/nationalInsuranceNumber`, `/ethnicity/code`, `/languages` …).
pub fn validate_equality(draft: EqualityData) -> Result<EqualityData, ValidationErrors> {
    let mut errors = ValidationErrors::default();
    let gender = category(draft.gender, "/gender", GENDER_CODES, &mut errors);
    let ethnicity = category(draft.ethnicity, "/ethnicity", ETHNICITY_CODES, &mut errors);
    let religion = category(draft.religion, "/religion", RELIGION_CODES, &mut errors);
    let sexual_orientation =
        category(draft.sexual_orientation, "/sexualOrientation", SEXUAL_ORIENTATION_CODES, &mut errors);
    let sex_registered_at_birth = draft.sex_registered_at_birth.and_then(|sex| {
        let sex = sex.trim().to_ascii_lowercase();
        if SEX_AT_BIRTH_CODES.contains(&sex.as_str()) {
            Some(sex)
        } else {
            errors.push(
                "/sexRegisteredAtBirth",
                UNKNOWN_CODE,
                format!("expected one of {}", SEX_AT_BIRTH_CODES.join(", ")),
            );
            None
        }
    });

    let mut nationalities = Vec::new();
    for (i, raw) in draft.nationalities.iter().enumerate() {
        let code = raw.trim().to_ascii_uppercase();
        if ISO_3166_ALPHA2.binary_search(&code.as_str()).is_err() {
            errors.push(format!("/nationalities/{i}"), INVALID_COUNTRY, "expected an ISO 3166-1 alpha-2 country code");
        } else if !nationalities.contains(&code) {
            nationalities.push(code);
        }
    }

    let languages = draft.languages;
    if languages.len() > MAX_LANGUAGES {
        errors.push("/languages", INVALID_LANGUAGES, format!("at most {MAX_LANGUAGES} languages"));
    } else if !languages.is_empty() && languages.iter().filter(|l| l.is_primary).count() != 1 {
        errors.push("/languages", INVALID_LANGUAGES, "exactly one language must be primary");
    }
    let languages: Vec<Language> = languages
        .into_iter()
        .enumerate()
        .filter_map(|(i, l)| {
            write_in(&l.language, &format!("/languages/{i}/language"), true, &mut errors)
                .map(|language| Language { language, is_primary: l.is_primary })
        })
        .collect();

    if draft.communication_requirements.len() > MAX_COMMUNICATION_REQUIREMENTS {
        errors.push(
            "/communicationRequirements",
            crate::validate::codes::TOO_LONG,
            format!("at most {MAX_COMMUNICATION_REQUIREMENTS} requirements"),
        );
    }
    let communication_requirements = draft
        .communication_requirements
        .iter()
        .enumerate()
        .filter_map(|(i, r)| write_in(r, &format!("/communicationRequirements/{i}"), true, &mut errors))
        .collect();

    let national_insurance_number = draft.national_insurance_number.and_then(|raw| match normalise_nino(&raw) {
        Some(nino) => Some(nino),
        None => {
            errors.push(
                "/nationalInsuranceNumber",
                INVALID_NINO,
                "expected a National Insurance number: two prefix letters, six digits and a suffix A to D",
            );
            None
        }
    });

    if errors.is_empty() {
        Ok(EqualityData {
            gender,
            sex_registered_at_birth,
            nationalities,
            ethnicity,
            religion,
            sexual_orientation,
            languages,
            communication_requirements,
            national_insurance_number,
        })
    } else {
        Err(errors)
    }
}

fn category(
    answer: Option<CategoryAnswer>,
    field: &str,
    categories: Categories,
    errors: &mut ValidationErrors,
) -> Option<CategoryAnswer> {
    let answer = answer?;
    let code = answer.code.trim().to_ascii_lowercase();
    let Some((_, write_in_allowed)) = categories.iter().find(|(c, _)| *c == code) else {
        let expected: Vec<&str> = categories.iter().map(|(c, _)| *c).collect();
        errors.push(format!("{field}/code"), UNKNOWN_CODE, format!("expected one of {}", expected.join(", ")));
        return None;
    };
    let description = match answer.description {
        None => None,
        Some(_) if !write_in_allowed => {
            errors.push(
                format!("{field}/description"),
                crate::validate::codes::CONFLICT,
                "a description is only allowed with an \"other\" category",
            );
            return None;
        }
        Some(text) => write_in(&text, &format!("{field}/description"), false, errors),
    };
    Some(CategoryAnswer { code, description })
}

/// Free write-in text: trimmed, 1..=200 characters, no control characters, no markup.
fn write_in(raw: &str, field: &str, required: bool, errors: &mut ValidationErrors) -> Option<String> {
    let text = raw.trim();
    if text.is_empty() {
        if required {
            errors.push(field, crate::validate::codes::REQUIRED, "must not be blank");
        }
        return None;
    }
    if text.chars().count() > MAX_WRITE_IN {
        errors.push(field, crate::validate::codes::TOO_LONG, format!("must be at most {MAX_WRITE_IN} characters"));
        return None;
    }
    if text.chars().any(char::is_control) {
        errors.push(field, crate::validate::codes::CONTROL_CHARACTERS, "must not contain control characters");
        return None;
    }
    if crate::person::name::is_potentially_dangerous(text) {
        errors.push(field, crate::validate::codes::DANGEROUS_CHARACTERS, "contains potentially dangerous characters");
        return None;
    }
    Some(text.to_owned())
}

/// Prefixes HMRC never allocates.
const INVALID_NINO_PREFIXES: &[&str] = &["BG", "GB", "KN", "NK", "NT", "TN", "ZZ"];

/// Normalises a National Insurance number to `AB123456C`, or `None` when it breaks HMRC's rules: two prefix
/// letters (neither D, F, I, Q, U or V; the second not O; not BG, GB, KN, NK, NT, TN or ZZ), six digits and a
/// suffix A–D. Spaces and case are ignored.
#[must_use]
pub fn normalise_nino(raw: &str) -> Option<String> {
    let compact: String = raw.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_uppercase();
    let bytes = compact.as_bytes();
    if bytes.len() != 9 || !compact.is_ascii() {
        return None;
    }
    let (first, second) = (bytes[0], bytes[1]);
    let forbidden = |b: u8| matches!(b, b'D' | b'F' | b'I' | b'Q' | b'U' | b'V');
    let prefix_ok = first.is_ascii_uppercase()
        && second.is_ascii_uppercase()
        && !forbidden(first)
        && !forbidden(second)
        && second != b'O'
        && !INVALID_NINO_PREFIXES.contains(&&compact[..2]);
    let digits_ok = bytes[2..8].iter().all(u8::is_ascii_digit);
    let suffix_ok = matches!(bytes[8], b'A'..=b'D');
    (prefix_ok && digits_ok && suffix_ok).then_some(compact)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn country_list_is_sorted_for_binary_search() {
        assert!(ISO_3166_ALPHA2.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(ISO_3166_ALPHA2.len(), 249);
    }

    #[test]
    fn national_insurance_numbers_follow_hmrc_rules() {
        assert_eq!(normalise_nino("ab 12 34 56 c").as_deref(), Some("AB123456C"));
        assert_eq!(normalise_nino("AB123456D").as_deref(), Some("AB123456D"));
        for bad in ["BG123456A", "QQ12345", "AB123456E", "DA123456A", "AO123456A", "ZZ123456A", "AB12345CC", ""] {
            assert_eq!(normalise_nino(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_full_answer_set_is_normalised() {
        let data = EqualityData {
            gender: Some(CategoryAnswer { code: "Woman".into(), description: None }),
            sex_registered_at_birth: Some("FEMALE".into()),
            nationalities: vec!["gb".into(), "IE".into(), "GB".into()],
            ethnicity: Some(CategoryAnswer { code: "white-other".into(), description: Some(" Polish ".into()) }),
            religion: Some(CategoryAnswer { code: "prefer-not-to-say".into(), description: None }),
            sexual_orientation: None,
            languages: vec![
                Language { language: "Polish".into(), is_primary: true },
                Language { language: "English".into(), is_primary: false },
            ],
            communication_requirements: vec!["Interpreter".into()],
            national_insurance_number: Some("ab 12 34 56 c".into()),
        };
        let valid = validate_equality(data).unwrap();
        assert_eq!(valid.gender.unwrap().code, "woman");
        assert_eq!(valid.nationalities, vec!["GB", "IE"]);
        assert_eq!(valid.ethnicity.unwrap().description.as_deref(), Some("Polish"));
        assert_eq!(valid.national_insurance_number.as_deref(), Some("AB123456C"));
    }

    #[test]
    fn every_problem_is_reported_with_its_field() {
        let data = EqualityData {
            ethnicity: Some(CategoryAnswer { code: "martian".into(), description: None }),
            religion: Some(CategoryAnswer { code: "christian".into(), description: Some("x".into()) }),
            nationalities: vec!["XX".into()],
            languages: vec![Language { language: "English".into(), is_primary: false }],
            national_insurance_number: Some("BG123456A".into()),
            ..EqualityData::default()
        };
        let errors = validate_equality(data).unwrap_err();
        let fields: Vec<&str> = errors.errors().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "/ethnicity/code",
                "/religion/description",
                "/nationalities/0",
                "/languages",
                "/nationalInsuranceNumber"
            ]
        );
    }

    #[test]
    fn languages_need_exactly_one_primary_and_at_most_ten() {
        let two_primary = EqualityData {
            languages: vec![
                Language { language: "A".into(), is_primary: true },
                Language { language: "B".into(), is_primary: true },
            ],
            ..EqualityData::default()
        };
        assert!(validate_equality(two_primary).is_err());
        let eleven = EqualityData {
            languages: (0..11).map(|i| Language { language: format!("L{i}"), is_primary: i == 0 }).collect(),
            ..EqualityData::default()
        };
        assert!(validate_equality(eleven).is_err());
    }

    #[test]
    fn debug_output_is_redacted() {
        let data = EqualityData { national_insurance_number: Some("AB123456C".into()), ..EqualityData::default() };
        assert!(!format!("{data:?}").contains("AB123456C"));
    }
}
