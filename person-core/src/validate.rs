//! Validation: turns a raw request draft into [`PersonFields`] or reports *every* field error at once.
//!
//! Request bodies deserialize into [`PersonDraft`], whose fields are loose on purpose (dates and names are plain
//! strings) so that one request with five mistakes gets one 422 listing all five, not five round trips. Only
//! structural problems (malformed JSON, a number where a string belongs, an unknown enum value, an unknown key)
//! stop earlier, as a [`BodyError`] (400). Hackney's error codes are kept where they apply (SPEC §4).

use std::collections::HashSet;
use std::fmt;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::person::{Name, NameError, PersonType, TenureSummary, Title, name::is_potentially_dangerous};
use crate::postcode;

/// Longest free-text value (reason, place of birth, addresses, references), in characters.
pub const MAX_FREE_TEXT: usize = 500;

/// The earliest acceptable date of birth.
pub const EARLIEST_BIRTH: NaiveDate = match NaiveDate::from_ymd_opt(1900, 1, 1) {
    Some(date) => date,
    None => panic!("1900-01-01 is a valid date"),
};

/// Error codes, stable for clients to match on. `W…` codes are Hackney's.
pub mod codes {
    /// Invalid date of birth (unparseable or before 1900-01-01).
    pub const INVALID_DATE_OF_BIRTH: &str = "W9";
    /// Date of birth in the future.
    pub const DATE_OF_BIRTH_IN_FUTURE: &str = "W10";
    /// `personTypes` missing or empty.
    pub const PERSON_TYPES_REQUIRED: &str = "W14";
    /// `firstName` missing or blank.
    pub const FIRST_NAME_REQUIRED: &str = "W15";
    /// `surname` missing or blank.
    pub const SURNAME_REQUIRED: &str = "W16";
    /// `reason` missing or blank.
    pub const REASON_REQUIRED: &str = "W17";
    /// Markup or character references in text.
    pub const DANGEROUS_CHARACTERS: &str = "W42";
    /// A required field is missing.
    pub const REQUIRED: &str = "required";
    /// Text longer than allowed.
    pub const TOO_LONG: &str = "too_long";
    /// Control characters in text.
    pub const CONTROL_CHARACTERS: &str = "control_characters";
    /// A date that cannot be read.
    pub const INVALID_DATE: &str = "invalid_date";
    /// A date in the future where that is impossible.
    pub const DATE_IN_FUTURE: &str = "date_in_future";
    /// A date before the one it must follow.
    pub const DATE_ORDER: &str = "date_order";
    /// An identifier that is missing, nil or repeated.
    pub const INVALID_ID: &str = "invalid_id";
    /// A UPRN that is not 1–12 digits.
    pub const INVALID_UPRN: &str = "invalid_uprn";
    /// A postcode that is not a UK postcode.
    pub const INVALID_POSTCODE: &str = "invalid_postcode";
    /// Fields that contradict each other (e.g. `singleName` with a `firstName`).
    pub const CONFLICT: &str = "conflicting_fields";
    /// A cross-reference system or id that breaks its rule.
    pub const INVALID_REFERENCE: &str = "invalid_reference";
    /// More cross-references than one person may hold.
    pub const TOO_MANY_REFERENCES: &str = "too_many_references";
}

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldError {
    /// JSON pointer to the field, e.g. `/tenures/0/startDate`.
    pub field: String,
    /// Stable code (`W15`, `invalid_date` …).
    pub code: String,
    /// Human-readable explanation (never echoes the submitted value).
    pub message: String,
}

/// Every field error found in one request. Never empty when returned as an error.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ValidationErrors(Vec<FieldError>);

impl ValidationErrors {
    /// Records an error.
    pub fn push(&mut self, field: impl Into<String>, code: &str, message: impl Into<String>) {
        self.0.push(FieldError { field: field.into(), code: code.to_owned(), message: message.into() });
    }

    /// The errors, in the order they were found.
    #[must_use]
    pub fn errors(&self) -> &[FieldError] {
        &self.0
    }

    /// True when no error was recorded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when some error carries `code`.
    #[must_use]
    pub fn has_code(&self, code: &str) -> bool {
        self.0.iter().any(|e| e.code == code)
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} validation error(s)", self.0.len())
    }
}

impl std::error::Error for ValidationErrors {}

/// A request body that could not be read as a person at all (→ 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// Not JSON, or not a JSON object.
    #[error("the body is not a valid JSON object: {0}")]
    Malformed(String),
    /// A key the resource does not have, as its JSON pointer without the leading `/` (`colour`,
    /// `tenures/1/colour`; a `/` or `~` in a key is escaped as `~1` or `~0`, RFC 6901).
    #[error("unknown field `{0}`")]
    UnknownField(String),
    /// A key that is computed or assigned by the server.
    #[error("field `{0}` is read-only")]
    ReadOnlyField(String),
    /// A value of the wrong type or an unknown enum value.
    #[error("field `{field}` is invalid: {reason}")]
    InvalidValue {
        /// JSON pointer to the field.
        field: String,
        /// What is wrong (from the deserializer; never the value itself).
        reason: String,
    },
}

impl BodyError {
    /// The JSON pointer of the offending field, when there is one.
    #[must_use]
    pub fn field(&self) -> Option<String> {
        match self {
            Self::Malformed(_) => None,
            Self::UnknownField(f) | Self::ReadOnlyField(f) => Some(format!("/{f}")),
            Self::InvalidValue { field, .. } => Some(field.clone()),
        }
    }
}

/// Keys a client may write.
pub const WRITABLE_KEYS: &[&str] = &[
    "title",
    "preferredTitle",
    "firstName",
    "middleName",
    "surname",
    "singleName",
    "preferredFirstName",
    "preferredMiddleName",
    "preferredSurname",
    "placeOfBirth",
    "dateOfBirth",
    "dateOfDeath",
    "personTypes",
    "tenures",
    "reason",
];

/// Keys the server computes or assigns; a client sending one gets a 400 naming it.
/// (`processingRestricted` changes only through the processing-restriction endpoint, which needs `admin`;
/// `references` only through `/persons/{id}/references`, which needs `references:write`.)
pub const READ_ONLY_KEYS: &[&str] = &[
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

/// A person as submitted: loose types, so that validation can report everything at once.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PersonDraft {
    /// Optional client-chosen id (create only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    /// Title; required unless the person is staff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<Title>,
    /// Preferred title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_title: Option<Title>,
    /// First name; required unless `singleName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    /// Middle name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub middle_name: Option<String>,
    /// Surname (the single name of a mononymous person).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surname: Option<String>,
    /// True for a person known by one name only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub single_name: Option<bool>,
    /// Preferred first name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_first_name: Option<String>,
    /// Preferred middle name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_middle_name: Option<String>,
    /// Preferred surname.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_surname: Option<String>,
    /// Place of birth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place_of_birth: Option<String>,
    /// Date of birth, `YYYY-MM-DD` (an ISO date-time is accepted and truncated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_of_birth: Option<String>,
    /// Date of death.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_of_death: Option<String>,
    /// Roles; at least one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person_types: Option<Vec<PersonType>>,
    /// Tenure summaries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenures: Option<Vec<TenureDraft>>,
    /// Why the record is created (required on create).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl fmt::Debug for PersonDraft {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PersonDraft").field("id", &self.id).finish_non_exhaustive()
    }
}

/// A tenure summary as submitted.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TenureDraft {
    /// The tenure's id (required, not nil).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    /// Tenure type, e.g. "Secure".
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub tenure_type: Option<String>,
    /// Start date; legacy free-form dates are accepted and normalised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<String>,
    /// End date; `1900-01-01` means "no end".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<String>,
    /// Full address of the property.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_full_address: Option<String>,
    /// Asset id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_id: Option<String>,
    /// UPRN, up to 12 digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uprn: Option<String>,
    /// UK postcode; derived from the address when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postcode: Option<String>,
    /// Payment reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_reference: Option<String>,
    /// Property reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property_reference: Option<String>,
    /// Computed by the server; accepted and ignored because front ends echo what they read.
    #[serde(default, skip_serializing)]
    pub is_active: Option<bool>,
}

/// The validated, writable fields of a person (everything but identity, version and timestamps).
#[derive(Clone, PartialEq, Eq)]
pub struct PersonFields {
    /// Title.
    pub title: Option<Title>,
    /// Preferred title.
    pub preferred_title: Option<Title>,
    /// First name.
    pub first_name: Option<Name>,
    /// Middle name.
    pub middle_name: Option<Name>,
    /// Surname.
    pub surname: Name,
    /// Known by one name only.
    pub single_name: bool,
    /// Preferred first name.
    pub preferred_first_name: Option<Name>,
    /// Preferred middle name.
    pub preferred_middle_name: Option<Name>,
    /// Preferred surname.
    pub preferred_surname: Option<Name>,
    /// Place of birth.
    pub place_of_birth: Option<String>,
    /// Date of birth.
    pub date_of_birth: Option<NaiveDate>,
    /// Date of death.
    pub date_of_death: Option<NaiveDate>,
    /// Roles (deduplicated, in submitted order).
    pub person_types: Vec<PersonType>,
    /// Tenures.
    pub tenures: Vec<TenureSummary>,
    /// Reason.
    pub reason: String,
}

impl fmt::Debug for PersonFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PersonFields").finish_non_exhaustive()
    }
}

/// Reads a JSON request body into a [`PersonDraft`], refusing read-only and unknown keys by name.
///
/// # Errors
/// [`BodyError`] for anything that is not structurally a person.
pub fn parse_draft(body: &[u8]) -> Result<PersonDraft, BodyError> {
    let map = parse_object(body)?;
    check_keys(&map, true)?;
    draft_from_map(map)
}

/// Parses a body as a JSON object.
///
/// # Errors
/// [`BodyError::Malformed`] when it is not JSON or not an object.
pub fn parse_object(body: &[u8]) -> Result<serde_json::Map<String, serde_json::Value>, BodyError> {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err(BodyError::Malformed("expected a JSON object".to_owned())),
        Err(e) => Err(BodyError::Malformed(describe_json_error(&e))),
    }
}

/// Refuses keys that are read-only or unknown (exact camelCase). `id` is allowed when `allow_id` (create).
///
/// # Errors
/// The first offending key, as [`BodyError::ReadOnlyField`] or [`BodyError::UnknownField`].
pub fn check_keys(map: &serde_json::Map<String, serde_json::Value>, allow_id: bool) -> Result<(), BodyError> {
    for key in map.keys() {
        if WRITABLE_KEYS.contains(&key.as_str()) || (allow_id && key == "id") {
            continue;
        }
        if READ_ONLY_KEYS.contains(&key.as_str()) {
            return Err(BodyError::ReadOnlyField(key.clone()));
        }
        return Err(BodyError::UnknownField(pointer_token(key)));
    }
    Ok(())
}

/// A key as a JSON pointer reference token (RFC 6901 §3): `~` becomes `~0` and `/` becomes `~1`, so that a key
/// holding them still names one field.
#[must_use]
pub fn pointer_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Deserializes a checked JSON object into a draft, naming the field on a type error.
///
/// # Errors
/// [`BodyError::InvalidValue`] (wrong type, unknown enum value) or [`BodyError::UnknownField`] (nested keys).
pub fn draft_from_map(map: serde_json::Map<String, serde_json::Value>) -> Result<PersonDraft, BodyError> {
    let value = serde_json::Value::Object(map);
    serde_path_to_error::deserialize::<_, PersonDraft>(value)
        .map_err(|e| body_error_from_path(e.path(), &e.inner().to_string()))
}

/// Turns a deserializer failure at `path` into a [`BodyError`] that names the field and never repeats the
/// submitted value.
#[must_use]
pub fn body_error_from_path(path: &serde_path_to_error::Path, message: &str) -> BodyError {
    let field = pointer_from_path(path);
    let reason = sanitise_serde_message(message);
    if reason.starts_with("unknown field `") {
        // The path already ends with the unknown key (`tenures/1/colour`).
        return BodyError::UnknownField(field.strip_prefix('/').unwrap_or(&field).to_owned());
    }
    BodyError::InvalidValue { field, reason }
}

/// The JSON pointer of a path (`tenures`, 0, `startDate` → `/tenures/0/startDate`; the root → ``), built from its
/// segments rather than from its text form, where a key holding `.` or `[` would read as several segments.
fn pointer_from_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Seq { index } => {
                out.push('/');
                out.push_str(&index.to_string());
            }
            Segment::Map { key } | Segment::Enum { variant: key } => {
                out.push('/');
                out.push_str(&pointer_token(key));
            }
            // Not tracked below this point: the pointer names the deepest known field.
            Segment::Unknown => break,
        }
    }
    out
}

/// Serde messages quote the offending value ("invalid value: string \"Sir\""); keep the expectation, drop the
/// value, so personal data sent in the wrong place never comes back in an error (or reaches a log).
///
/// The value sits between the prefix and the *last* `, expected `, and may itself contain commas, backticks or
/// `, expected `: only the text after the last one (which comes from our types) is kept.
fn sanitise_serde_message(message: &str) -> String {
    let without_position = strip_position(message);
    if let Some(rest) = without_position.strip_prefix("unknown variant `")
        && let Some((_, expected)) = rest.rsplit_once(", expected ")
    {
        return format!("unknown value, expected {expected}");
    }
    if let Some(rest) = without_position.strip_prefix("invalid type: ")
        && let Some((found, expected)) = rest.rsplit_once(", expected ")
    {
        let kind = found.split_whitespace().next().unwrap_or("value");
        return format!("invalid type: {kind}, expected {expected}");
    }
    if without_position.starts_with("UUID parsing failed") {
        // The uuid crate's message quotes the offending character.
        return "invalid value, expected a UUID".to_owned();
    }
    if without_position.starts_with("invalid value") || without_position.starts_with("invalid length") {
        return without_position.split(':').next().unwrap_or("invalid value").to_owned();
    }
    without_position.to_owned()
}

/// Drops a trailing ` at line N column M` (present when parsing text, absent when converting a `Value`).
fn strip_position(message: &str) -> &str {
    match message.rsplit_once(" at line ") {
        Some((head, tail))
            if tail.split_once(" column ").is_some_and(|(line, column)| {
                [line, column].iter().all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            }) =>
        {
            head
        }
        _ => message,
    }
}

fn describe_json_error(e: &serde_json::Error) -> String {
    format!("{} (line {}, column {})", classify(e), e.line(), e.column())
}

fn classify(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Eof => "unexpected end of input",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected data",
        serde_json::error::Category::Io => "could not read the body",
    }
}

/// Reads a date written as `YYYY-MM-DD`, an ISO 8601 date-time (with or without offset, date part kept), or the
/// legacy `DD/MM/YYYY`. Returns `None` for anything else.
#[must_use]
pub fn parse_lenient_date(raw: &str) -> Option<NaiveDate> {
    let text = raw.trim();
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Some(date);
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
        return Some(dt.date_naive());
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(text, format) {
            return Some(dt.date());
        }
    }
    NaiveDate::parse_from_str(text, "%d/%m/%Y").ok()
}

/// Validates a draft as it would be stored, on `today`; returns every error at once.
///
/// # Errors
/// [`ValidationErrors`] listing each problem with its field pointer and code.
pub fn validate(draft: &PersonDraft, today: NaiveDate) -> Result<PersonFields, ValidationErrors> {
    let mut errors = ValidationErrors::default();
    let person_types = dedup(draft.person_types.clone().unwrap_or_default());
    let is_staff = person_types.iter().any(|t| t.is_staff());
    let single_name = draft.single_name.unwrap_or(false);

    if person_types.is_empty() {
        errors.push("/personTypes", codes::PERSON_TYPES_REQUIRED, "at least one person type is required");
    }
    if draft.title.is_none() && !is_staff {
        errors.push("/title", codes::REQUIRED, "title is required unless the person is a housing officer");
    }

    let first_name = match (&draft.first_name, single_name) {
        (Some(_), true) => {
            errors.push("/firstName", codes::CONFLICT, "a person with singleName has no first name");
            None
        }
        (None, true) => None,
        (raw, false) => required_name(raw.as_deref(), "/firstName", codes::FIRST_NAME_REQUIRED, &mut errors),
    };
    let surname = required_name(draft.surname.as_deref(), "/surname", codes::SURNAME_REQUIRED, &mut errors);
    let middle_name = optional_name(draft.middle_name.as_deref(), "/middleName", &mut errors);
    let preferred_first_name = optional_name(draft.preferred_first_name.as_deref(), "/preferredFirstName", &mut errors);
    let preferred_middle_name =
        optional_name(draft.preferred_middle_name.as_deref(), "/preferredMiddleName", &mut errors);
    let preferred_surname = optional_name(draft.preferred_surname.as_deref(), "/preferredSurname", &mut errors);
    let place_of_birth = optional_text(draft.place_of_birth.as_deref(), "/placeOfBirth", &mut errors);

    let reason = match draft.reason.as_deref().map(str::trim) {
        None | Some("") => {
            errors.push("/reason", codes::REASON_REQUIRED, "a reason is required");
            None
        }
        Some(text) => optional_text(Some(text), "/reason", &mut errors),
    };

    let date_of_birth = match draft.date_of_birth.as_deref() {
        None if !is_staff => {
            errors.push(
                "/dateOfBirth",
                codes::REQUIRED,
                "date of birth is required unless the person is a housing officer",
            );
            None
        }
        None => None,
        Some(raw) => match parse_lenient_date(raw) {
            None => {
                errors.push("/dateOfBirth", codes::INVALID_DATE_OF_BIRTH, "date of birth must be a date (YYYY-MM-DD)");
                None
            }
            Some(d) if d > today => {
                errors.push("/dateOfBirth", codes::DATE_OF_BIRTH_IN_FUTURE, "date of birth must not be in the future");
                None
            }
            Some(d) if d < EARLIEST_BIRTH => {
                errors.push(
                    "/dateOfBirth",
                    codes::INVALID_DATE_OF_BIRTH,
                    "date of birth must not be before 1900-01-01",
                );
                None
            }
            Some(d) => Some(d),
        },
    };

    let date_of_death = match draft.date_of_death.as_deref() {
        None => None,
        Some(raw) => match parse_lenient_date(raw) {
            None => {
                errors.push("/dateOfDeath", codes::INVALID_DATE, "date of death must be a date (YYYY-MM-DD)");
                None
            }
            Some(d) if d > today => {
                errors.push("/dateOfDeath", codes::DATE_IN_FUTURE, "date of death must not be in the future");
                None
            }
            Some(d) if date_of_birth.is_some_and(|b| d < b) => {
                errors.push("/dateOfDeath", codes::DATE_ORDER, "date of death must not be before date of birth");
                None
            }
            Some(d) => Some(d),
        },
    };

    let tenures = validate_tenures(draft.tenures.as_deref().unwrap_or_default(), &mut errors);

    match (surname, reason) {
        (Some(surname), Some(reason)) if errors.is_empty() => Ok(PersonFields {
            title: draft.title,
            preferred_title: draft.preferred_title,
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
            tenures,
            reason,
        }),
        _ => Err(errors),
    }
}

fn dedup(types: Vec<PersonType>) -> Vec<PersonType> {
    let mut seen = HashSet::new();
    types.into_iter().filter(|t| seen.insert(*t)).collect()
}

fn required_name(raw: Option<&str>, field: &str, code: &str, errors: &mut ValidationErrors) -> Option<Name> {
    match raw {
        None => {
            errors.push(field, code, format!("{} is required", &field[1..]));
            None
        }
        Some(text) => match Name::parse(text) {
            Err(NameError::Blank) => {
                errors.push(field, code, format!("{} is required", &field[1..]));
                None
            }
            other => name_result(other, field, errors),
        },
    }
}

fn optional_name(raw: Option<&str>, field: &str, errors: &mut ValidationErrors) -> Option<Name> {
    match raw {
        None => None,
        // An empty optional name is treated as absent rather than refused: front ends send "" for blank inputs.
        Some(text) if text.trim().is_empty() => None,
        Some(text) => name_result(Name::parse(text), field, errors),
    }
}

fn name_result(result: Result<Name, NameError>, field: &str, errors: &mut ValidationErrors) -> Option<Name> {
    match result {
        Ok(name) => Some(name),
        Err(e) => {
            let code = match e {
                NameError::Blank => codes::REQUIRED,
                NameError::TooLong => codes::TOO_LONG,
                NameError::ControlCharacter => codes::CONTROL_CHARACTERS,
                NameError::Dangerous => codes::DANGEROUS_CHARACTERS,
            };
            errors.push(field, code, e.to_string());
            None
        }
    }
}

/// Free text: trimmed, at most [`MAX_FREE_TEXT`] characters, no markup, no control characters except new lines.
/// A blank text is `None`; a bad one is recorded in `errors` against `field`.
pub fn optional_text(raw: Option<&str>, field: &str, errors: &mut ValidationErrors) -> Option<String> {
    let text = raw?.trim();
    if text.is_empty() {
        return None;
    }
    if text.chars().count() > MAX_FREE_TEXT {
        errors.push(field, codes::TOO_LONG, format!("must be at most {MAX_FREE_TEXT} characters"));
        return None;
    }
    if text.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') {
        errors.push(field, codes::CONTROL_CHARACTERS, "must not contain control characters");
        return None;
    }
    if is_potentially_dangerous(text) {
        errors.push(field, codes::DANGEROUS_CHARACTERS, "contains potentially dangerous characters");
        return None;
    }
    Some(text.to_owned())
}

fn validate_tenures(drafts: &[TenureDraft], errors: &mut ValidationErrors) -> Vec<TenureSummary> {
    let mut seen = HashSet::new();
    let mut tenures = Vec::with_capacity(drafts.len());
    for (i, draft) in drafts.iter().enumerate() {
        let at = |name: &str| format!("/tenures/{i}/{name}");
        let before = errors.errors().len();
        let id = match draft.id {
            None => {
                errors.push(at("id"), codes::REQUIRED, "tenure id is required");
                None
            }
            Some(id) if id.is_nil() => {
                errors.push(at("id"), codes::INVALID_ID, "tenure id must not be the nil UUID");
                None
            }
            Some(id) if !seen.insert(id) => {
                errors.push(at("id"), codes::INVALID_ID, "the same tenure is listed twice");
                None
            }
            Some(id) => Some(id),
        };
        let start_date = tenure_date(draft.start_date.as_deref(), &at("startDate"), errors);
        let end_date = tenure_date(draft.end_date.as_deref(), &at("endDate"), errors);
        if let (Some(start), Some(end)) = (start_date, end_date)
            && end < start
            && end != crate::person::NO_END_SENTINEL
        {
            errors.push(at("endDate"), codes::DATE_ORDER, "end date must not be before start date");
        }
        let tenure_type = optional_text(draft.tenure_type.as_deref(), &at("type"), errors);
        let asset_full_address = optional_text(draft.asset_full_address.as_deref(), &at("assetFullAddress"), errors);
        let asset_id = optional_text(draft.asset_id.as_deref(), &at("assetId"), errors);
        let payment_reference = optional_text(draft.payment_reference.as_deref(), &at("paymentReference"), errors);
        let property_reference = optional_text(draft.property_reference.as_deref(), &at("propertyReference"), errors);
        let uprn = match draft.uprn.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(u) if (1..=12).contains(&u.len()) && u.bytes().all(|b| b.is_ascii_digit()) => Some(u.to_owned()),
            Some(_) => {
                errors.push(at("uprn"), codes::INVALID_UPRN, "uprn must be 1 to 12 digits");
                None
            }
        };
        let postcode = match draft.postcode.as_deref().map(str::trim) {
            None | Some("") => asset_full_address.as_deref().and_then(postcode::find_in_address),
            Some(p) => match postcode::normalise(p) {
                Some(p) => Some(p),
                None => {
                    errors.push(at("postcode"), codes::INVALID_POSTCODE, "postcode must be a UK postcode");
                    None
                }
            },
        };
        if errors.errors().len() == before
            && let Some(id) = id
        {
            tenures.push(TenureSummary {
                id,
                tenure_type,
                start_date,
                end_date,
                asset_full_address,
                asset_id,
                uprn,
                postcode,
                payment_reference,
                property_reference,
            });
        }
    }
    tenures
}

fn tenure_date(raw: Option<&str>, field: &str, errors: &mut ValidationErrors) -> Option<NaiveDate> {
    let text = raw?;
    if text.trim().is_empty() {
        return None;
    }
    let parsed = parse_lenient_date(text);
    if parsed.is_none() {
        errors.push(field, codes::INVALID_DATE, "must be a date (YYYY-MM-DD)");
    }
    parsed
}

#[cfg(test)]
mod tests;
