//! PATCH semantics: JSON merge patch at the top level of a person (SPEC §3).
//!
//! A key that is absent leaves the field alone, `null` clears it, a value replaces it, and lists are replaced
//! whole. The patched person is validated as a whole with the same rules as a create, so a patch can never
//! store what a create would refuse (clearing `firstName` is a W15, not a silent blank). `reason` in a patch is
//! the reason for *this change*; the creation reason is kept.

use chrono::NaiveDate;
use serde_json::{Map, Value};

use crate::person::Person;
use crate::validate::{
    self, BodyError, PersonDraft, PersonFields, TenureDraft, ValidationErrors, check_keys, draft_from_map, parse_object,
};

/// Why a patch could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// The body is not a usable patch (→ 400).
    #[error(transparent)]
    Body(#[from] BodyError),
    /// The patched person would be invalid (→ 422).
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
}

/// A validated patch result.
#[derive(Debug, Clone)]
pub struct PatchOutcome {
    /// The person's fields after the patch.
    pub fields: PersonFields,
    /// The reason given for this change, if any.
    pub change_reason: Option<String>,
}

/// Applies a merge-patch body to `current` and validates the result as of `today`.
///
/// # Errors
/// [`PatchError::Body`] for malformed JSON, unknown or read-only keys and wrong types; [`PatchError::Invalid`]
/// with every field error of the patched person.
pub fn apply_patch(current: &Person, body: &[u8], today: NaiveDate) -> Result<PatchOutcome, PatchError> {
    let mut patch = parse_object(body)?;
    check_keys(&patch, false)?;
    let change_reason = match patch.remove("reason") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => change_reason(&text)?,
        Some(_) => {
            return Err(BodyError::InvalidValue {
                field: "/reason".to_owned(),
                reason: "invalid type, expected a string".to_owned(),
            }
            .into());
        }
    };

    let mut merged = draft_map_of(current);
    for (key, value) in patch {
        if value.is_null() {
            merged.remove(&key);
        } else {
            merged.insert(key, value);
        }
    }
    let draft = draft_from_map(merged)?;
    let fields = validate::validate(&draft, today)?;
    Ok(PatchOutcome { fields, change_reason })
}

/// The change reason is free text like the creation reason (same rules); a blank one is no reason.
fn change_reason(text: &str) -> Result<Option<String>, ValidationErrors> {
    let mut errors = ValidationErrors::default();
    let reason = validate::optional_text(Some(text), "/reason", &mut errors);
    if errors.is_empty() { Ok(reason) } else { Err(errors) }
}

/// The draft (loose, writable form) of a stored person: what a client would send to create it again.
#[must_use]
pub fn draft_of(person: &Person) -> PersonDraft {
    let name = |n: &Option<crate::person::Name>| n.as_ref().map(|n| n.as_str().to_owned());
    let date = |d: Option<NaiveDate>| d.map(|d| d.format("%Y-%m-%d").to_string());
    PersonDraft {
        id: None,
        title: person.title,
        preferred_title: person.preferred_title,
        first_name: name(&person.first_name),
        middle_name: name(&person.middle_name),
        surname: Some(person.surname.as_str().to_owned()),
        single_name: person.single_name.then_some(true),
        preferred_first_name: name(&person.preferred_first_name),
        preferred_middle_name: name(&person.preferred_middle_name),
        preferred_surname: name(&person.preferred_surname),
        place_of_birth: person.place_of_birth.clone(),
        date_of_birth: date(person.date_of_birth),
        date_of_death: date(person.date_of_death),
        person_types: Some(person.person_types.clone()),
        tenures: Some(
            person
                .tenures
                .iter()
                .map(|t| TenureDraft {
                    id: Some(t.id),
                    tenure_type: t.tenure_type.clone(),
                    start_date: date(t.start_date),
                    end_date: date(t.end_date),
                    asset_full_address: t.asset_full_address.clone(),
                    asset_id: t.asset_id.clone(),
                    uprn: t.uprn.clone(),
                    postcode: t.postcode.clone(),
                    payment_reference: t.payment_reference.clone(),
                    property_reference: t.property_reference.clone(),
                    is_active: None,
                })
                .collect(),
        ),
        reason: Some(person.reason.clone()),
    }
}

fn draft_map_of(person: &Person) -> Map<String, Value> {
    match serde_json::to_value(draft_of(person)) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

/// Keys of the stored person that are not part of a change comparison (identity, bookkeeping).
const BOOKKEEPING_KEYS: &[&str] =
    &["id", "personRef", "versionNumber", "createdAt", "lastModified", "status", "reason"];

/// The keys whose values differ between `old` and `new`, as `(oldData, newData)` objects; a key absent on one
/// side is `null` there. Empty objects mean nothing changed.
#[must_use]
pub fn changed_data(old: &Person, new: &Person) -> (Map<String, Value>, Map<String, Value>) {
    let as_map = |p: &Person| match serde_json::to_value(p) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let (old_map, new_map) = (as_map(old), as_map(new));
    let mut keys: Vec<&String> = old_map.keys().chain(new_map.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut old_data = Map::new();
    let mut new_data = Map::new();
    for key in keys {
        if BOOKKEEPING_KEYS.contains(&key.as_str()) {
            continue;
        }
        let before = old_map.get(key).cloned().unwrap_or(Value::Null);
        let after = new_map.get(key).cloned().unwrap_or(Value::Null);
        // `singleName: false` and an absent `singleName` mean the same thing.
        if before != after && !(key == "singleName" && is_falsy(&before) && is_falsy(&after)) {
            old_data.insert(key.clone(), before);
            new_data.insert(key.clone(), after);
        }
    }
    (old_data, new_data)
}

fn is_falsy(value: &Value) -> bool {
    matches!(value, Value::Null | Value::Bool(false))
}

#[cfg(test)]
mod tests;
