//! Hackney's DynamoDB `Persons` table, as the AWS "Export to S3" DynamoDB JSON format writes it (one
//! `{"Item": {"id": {"S": "…"}, …}}` per line), mapped to this API's Person JSON (docs/import.md has the table).
//!
//! Attribute names are matched without regard to case (the .NET service wrote lower camel case; its first
//! versions wrote `firstname`, and old tenure maps Pascal case). Every attribute of the table is mapped, or dropped
//! for a documented reason; any other attribute makes the record invalid rather than being lost silently. Values
//! are never put in an error message.

use person_core::service::import::codes;
use person_core::{PersonId, ValidationErrors};
use serde_json::{Map, Number, Value};

/// The reason recorded for a Hackney person whose item has none (items written before `reason` existed).
pub const DEFAULT_REASON: &str = "Migrated from Hackney person-api";

/// Hackney's attributes (lower-cased) and the Person JSON key each one becomes.
const ATTRIBUTES: &[(&str, &str)] = &[
    ("id", "id"),
    ("title", "title"),
    ("preferredtitle", "preferredTitle"),
    ("firstname", "firstName"),
    ("middlename", "middleName"),
    ("surname", "surname"),
    ("preferredfirstname", "preferredFirstName"),
    ("preferredmiddlename", "preferredMiddleName"),
    ("preferredsurname", "preferredSurname"),
    ("placeofbirth", "placeOfBirth"),
    ("dateofbirth", "dateOfBirth"),
    ("dateofdeath", "dateOfDeath"),
    ("persontypes", "personTypes"),
    ("tenures", "tenures"),
    ("reason", "reason"),
    ("versionnumber", "versionNumber"),
    ("lastmodified", "lastModified"),
    ("personref", "personRef"),
    // Not written by Hackney's service, but this API's own fields are accepted too.
    ("singlename", "singleName"),
    ("createdat", "createdAt"),
];

/// Attributes that are read and dropped: `isAMinor` is computed when a person is shown; the others are the
/// equality data of the table's first version, which this API keeps apart (`/equality`, validated ISO and ONS
/// codes Hackney's free text cannot be mapped to automatically).
const DROPPED: &[&str] =
    &["isaminor", "gender", "ethnicity", "nationality", "identifications", "languages", "communicationrequirements"];

/// The keys of a tenure map (lower-cased) and the tenure summary key each one becomes.
const TENURE_KEYS: &[(&str, &str)] = &[
    ("id", "id"),
    ("type", "type"),
    ("startdate", "startDate"),
    ("enddate", "endDate"),
    ("assetfulladdress", "assetFullAddress"),
    ("assetid", "assetId"),
    ("uprn", "uprn"),
    ("postcode", "postcode"),
    ("paymentreference", "paymentReference"),
    ("propertyreference", "propertyReference"),
];

/// Tenure keys read and dropped: `isActive` is computed from the end date.
const TENURE_DROPPED: &[&str] = &["isactive"];

/// Maps one line of the export (its JSON object) to a Person JSON record.
///
/// # Errors
/// Every attribute that is not a DynamoDB attribute value or not an attribute of the table, as field errors (the
/// pointer names the attribute).
pub fn to_person_json(line: Map<String, Value>) -> Result<Map<String, Value>, ValidationErrors> {
    let item = item_of(line)?;
    let mut errors = ValidationErrors::default();
    let mut record = Map::with_capacity(item.len());
    for (name, attribute) in item {
        let lower = name.to_ascii_lowercase();
        let at = format!("/{name}");
        if DROPPED.contains(&lower.as_str()) {
            continue;
        }
        let Some(&(_, key)) = ATTRIBUTES.iter().find(|(attr, _)| *attr == lower) else {
            errors.push(at, codes::UNKNOWN_FIELD, "not an attribute of Hackney's Persons table");
            continue;
        };
        let value = match attribute_value(attribute, &at, &mut errors) {
            Some(Value::Null) | None => continue,
            Some(value) => value,
        };
        let value = match key {
            "tenures" => tenures(value, &at, &mut errors),
            // Hackney's `int PersonRef` is 0 for persons given no reference: this API assigns one.
            "personRef" if value.as_i64() == Some(0) => continue,
            _ => value,
        };
        record.insert(key.to_owned(), value);
    }
    if !record.contains_key("reason") {
        record.insert("reason".to_owned(), Value::String(DEFAULT_REASON.to_owned()));
    }
    if errors.is_empty() { Ok(record) } else { Err(errors) }
}

/// The item of an export line: `{"Item": {…}}` (AWS "Export to S3"), or the item itself.
fn item_of(mut line: Map<String, Value>) -> Result<Map<String, Value>, ValidationErrors> {
    match line.remove("Item") {
        Some(Value::Object(item)) if line.is_empty() => Ok(item),
        Some(_) => {
            let mut errors = ValidationErrors::default();
            errors.push("/Item", codes::INVALID_VALUE, "Item must be the only key and a map of attributes");
            Err(errors)
        }
        None => Ok(line),
    }
}

/// The id of an export line, when it has a valid one (to name the record in the report).
#[must_use]
pub fn id_of(line: &Map<String, Value>) -> Option<PersonId> {
    let item = match line.get("Item") {
        Some(Value::Object(item)) => item,
        _ => line,
    };
    let attribute = item.iter().find(|(name, _)| name.eq_ignore_ascii_case("id")).map(|(_, v)| v)?;
    PersonId::parse(attribute.get("S")?.as_str()?).ok()
}

/// A DynamoDB attribute value (`{"S": …}`, `{"N": …}`, `BOOL`, `NULL`, `L`, `M`, `SS`, `NS`) as plain JSON;
/// `NULL` is `Value::Null`. `None` (with an error recorded) for anything else, binary types included.
fn attribute_value(attribute: Value, at: &str, errors: &mut ValidationErrors) -> Option<Value> {
    let Value::Object(mut typed) = attribute else {
        errors.push(at, codes::INVALID_VALUE, "not a DynamoDB attribute value");
        return None;
    };
    let (Some(kind), 1) = (typed.keys().next().cloned(), typed.len()) else {
        errors.push(at, codes::INVALID_VALUE, "a DynamoDB attribute value has exactly one type key");
        return None;
    };
    let value = typed.remove(&kind)?;
    match (kind.as_str(), value) {
        ("S", Value::String(s)) => Some(Value::String(s)),
        ("N", Value::String(n)) => number(&n, at, errors),
        ("BOOL", Value::Bool(b)) => Some(Value::Bool(b)),
        ("NULL", Value::Bool(true)) => Some(Value::Null),
        ("L", Value::Array(items)) => {
            let mut list = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                list.push(attribute_value(item, &format!("{at}/{i}"), errors)?);
            }
            Some(Value::Array(list))
        }
        ("M", Value::Object(entries)) => {
            let mut map = Map::with_capacity(entries.len());
            for (key, item) in entries {
                match attribute_value(item, &format!("{at}/{key}"), errors)? {
                    Value::Null => {}
                    value => {
                        map.insert(key, value);
                    }
                }
            }
            Some(Value::Object(map))
        }
        ("SS", Value::Array(items)) if items.iter().all(Value::is_string) => Some(Value::Array(items)),
        ("NS", Value::Array(items)) => {
            let mut list = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                let Value::String(n) = item else {
                    errors.push(format!("{at}/{i}"), codes::INVALID_VALUE, "NS holds numbers written as strings");
                    return None;
                };
                list.push(number(&n, &format!("{at}/{i}"), errors)?);
            }
            Some(Value::Array(list))
        }
        ("B" | "BS", _) => {
            errors.push(at, codes::INVALID_VALUE, "binary attributes are not part of a person");
            None
        }
        _ => {
            errors.push(
                at,
                codes::INVALID_VALUE,
                "not a DynamoDB attribute value of type S, N, BOOL, NULL, L, M, SS or NS",
            );
            None
        }
    }
}

/// A DynamoDB number (a decimal string) as a JSON number.
fn number(text: &str, at: &str, errors: &mut ValidationErrors) -> Option<Value> {
    let text = text.trim();
    let parsed = text
        .parse::<i64>()
        .map(Number::from)
        .ok()
        .or_else(|| text.parse::<u64>().ok().map(Number::from))
        .or_else(|| text.parse::<f64>().ok().and_then(Number::from_f64));
    if parsed.is_none() {
        errors.push(at, codes::INVALID_VALUE, "not a number");
    }
    parsed.map(Value::Number)
}

/// Hackney's tenure maps with this API's keys; other keys are kept for the validator to refuse by name.
fn tenures(value: Value, at: &str, errors: &mut ValidationErrors) -> Value {
    let Value::Array(items) = value else {
        errors.push(at, codes::INVALID_VALUE, "tenures must be a list (L) of maps (M)");
        return Value::Null;
    };
    let mapped = items
        .into_iter()
        .map(|item| match item {
            Value::Object(tenure) => {
                let mut out = Map::with_capacity(tenure.len());
                for (key, value) in tenure {
                    let lower = key.to_ascii_lowercase();
                    if TENURE_DROPPED.contains(&lower.as_str()) {
                        continue;
                    }
                    let key = TENURE_KEYS.iter().find(|(k, _)| *k == lower).map_or(key, |(_, to)| (*to).to_owned());
                    out.insert(key, value);
                }
                Value::Object(out)
            }
            other => other,
        })
        .collect();
    Value::Array(mapped)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    fn fields(errors: &ValidationErrors) -> Vec<(&str, &str)> {
        errors.errors().iter().map(|e| (e.field.as_str(), e.code.as_str())).collect()
    }

    #[test]
    fn every_attribute_type_is_read_as_plain_json() {
        let line = object(json!({"Item": {
            "id": {"S": "6d9f1a54-6c5e-4b0b-9b5d-0c7c1d0b9d11"},
            "personRef": {"N": "123"},
            "versionNumber": {"N": "2"},
            "personTypes": {"SS": ["Tenant", "Leaseholder"]},
            "surname": {"S": "Smith"},
            "dateOfDeath": {"NULL": true},
            "tenures": {"L": [{"M": {
                "Id": {"S": "0b4f6c1e-0000-4000-8000-000000000001"},
                "IsActive": {"BOOL": true},
                "endDate": {"NULL": true},
                "uprn": {"S": "100021045678"}
            }}]}
        }}));
        let record = to_person_json(line).unwrap();
        assert_eq!(
            Value::Object(record),
            json!({
                "id": "6d9f1a54-6c5e-4b0b-9b5d-0c7c1d0b9d11",
                "personRef": 123,
                "versionNumber": 2,
                "personTypes": ["Tenant", "Leaseholder"],
                "surname": "Smith",
                "tenures": [{"id": "0b4f6c1e-0000-4000-8000-000000000001", "uprn": "100021045678"}],
                "reason": DEFAULT_REASON
            })
        );
    }

    #[test]
    fn names_match_without_case_and_legacy_equality_attributes_are_dropped() {
        let line = object(json!({
            "id": {"S": "6d9f1a54-6c5e-4b0b-9b5d-0c7c1d0b9d11"},
            "firstname": {"S": "Ada"},
            "PreferredFirstname": {"S": "Addy"},
            "gender": {"S": "F"},
            "isAMinor": {"BOOL": false},
            "personRef": {"N": "0"},
            "reason": {"S": "Tenancy"}
        }));
        let record = to_person_json(line).unwrap();
        assert_eq!(
            Value::Object(record),
            json!({
                "id": "6d9f1a54-6c5e-4b0b-9b5d-0c7c1d0b9d11",
                "firstName": "Ada",
                "preferredFirstName": "Addy",
                "reason": "Tenancy"
            }),
            "personRef 0 (Hackney's default) means none"
        );
    }

    #[test]
    fn unknown_attributes_and_bad_values_are_reported_by_name_without_values() {
        let line = object(json!({"Item": {
            "id": {"S": "6d9f1a54-6c5e-4b0b-9b5d-0c7c1d0b9d11"},
            "shoeSize": {"N": "9"},
            "surname": "Secret",
            "firstName": {"B": "U2VjcmV0"},
            "personRef": {"N": "Secret"},
            "title": {"S": "Mr", "N": "1"}
        }}));
        let errors = to_person_json(line).unwrap_err();
        let mut found = fields(&errors);
        found.sort_unstable();
        assert_eq!(
            found,
            vec![
                ("/firstName", "invalid_value"),
                ("/personRef", "invalid_value"),
                ("/shoeSize", "unknown_field"),
                ("/surname", "invalid_value"),
                ("/title", "invalid_value"),
            ]
        );
        assert!(!serde_json::to_string(errors.errors()).unwrap().contains("Secret"));
    }

    #[test]
    fn the_id_is_found_for_the_report_even_in_an_invalid_item() {
        let line = object(json!({"Item": {"Id": {"S": "6d9f1a54-6c5e-4b0b-9b5d-0c7c1d0b9d11"}, "x": {"S": "y"}}}));
        assert_eq!(id_of(&line).map(|id| id.to_string()).as_deref(), Some("6d9f1a54-6c5e-4b0b-9b5d-0c7c1d0b9d11"));
        assert_eq!(id_of(&object(json!({"Item": {"id": {"S": "nope"}}}))), None);
    }
}
