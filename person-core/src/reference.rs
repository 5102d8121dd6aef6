//! Cross-references (SPEC §8): which record in another council system belongs to a person.
//!
//! A [`CrossReference`] is `{ "system", "id" }`, e.g. `{"system": "tenure", "id": "…"}`. One external record
//! belongs to one person: stores keep a unique index from reference to its live holder, so a second person
//! claiming the same record is refused (naming the owner), and `GET /persons?reference=system:id` finds the owner
//! with one indexed look-up. References are part of the stored person: adding or removing one is a new version
//! with a `PersonUpdatedEvent` (`references` in `oldData`/`newData`) and a history entry, and a merge moves the
//! duplicate's references to the survivor in the same atomic write.
//!
//! This module knows nothing of links: which services a reference leads to, and whether they are up, is the
//! HTTP layer's link registry.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The most references one person may hold (a merge may exceed it: nothing is dropped).
///
/// Keeps one change of a person within a single DynamoDB transaction (100 items) even when a merge moves every
/// reference of the duplicate.
pub const MAX_REFERENCES: usize = 25;

/// The longest external record id, in characters.
pub const MAX_REFERENCE_ID_CHARS: usize = 200;

/// The name of another system (`tenure`, `housing-register`, `finance.accounts` …): 1–64 characters of lowercase
/// ASCII letters, digits and `-`, `_`, `.`, starting with a letter. No `:` (it separates system from id in
/// `reference=system:id`), no `/` or `#` (the names go into paths and storage keys).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String, example = "tenure"))]
pub struct ReferenceSystem(String);

/// The id of a record in another system: 1–200 characters, no control characters, no leading or trailing
/// white space. Kept exactly as given (ids are case-sensitive in most systems).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String))]
pub struct ReferenceId(String);

/// Why a reference cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidReference {
    /// The system name breaks the naming rule.
    #[error("a system is 1 to 64 lowercase letters, digits, '-', '_' or '.', starting with a letter (e.g. tenure)")]
    System,
    /// The id is empty, too long, padded with white space or holds control characters.
    #[error("a reference id is 1 to 200 characters without control characters or surrounding white space")]
    Id,
    /// `system:id` without the colon.
    #[error("expected system:id, e.g. tenure:0b4f6c1e-…")]
    Form,
}

impl ReferenceSystem {
    /// Parses a system name.
    ///
    /// # Errors
    /// [`InvalidReference::System`] when it breaks the naming rule.
    pub fn parse(text: &str) -> Result<Self, InvalidReference> {
        let valid = (1..=64).contains(&text.len())
            && text.starts_with(|c: char| c.is_ascii_lowercase())
            && text.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
        if valid { Ok(Self(text.to_owned())) } else { Err(InvalidReference::System) }
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl ReferenceId {
    /// Parses a record id.
    ///
    /// # Errors
    /// [`InvalidReference::Id`] when it is empty, over [`MAX_REFERENCE_ID_CHARS`], padded or holds control
    /// characters.
    pub fn parse(text: &str) -> Result<Self, InvalidReference> {
        let valid = !text.is_empty()
            && text.chars().count() <= MAX_REFERENCE_ID_CHARS
            && text.trim() == text
            && !text.chars().any(char::is_control);
        if valid { Ok(Self(text.to_owned())) } else { Err(InvalidReference::Id) }
    }

    /// The id.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! text_conversions {
    ($ty:ident) => {
        impl TryFrom<String> for $ty {
            type Error = InvalidReference;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl From<$ty> for String {
            fn from(value: $ty) -> Self {
                value.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($ty), self.0)
            }
        }
    };
}

text_conversions!(ReferenceSystem);
text_conversions!(ReferenceId);

/// One record in another system that belongs to a person.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CrossReference {
    /// The system holding the record.
    pub system: ReferenceSystem,
    /// The record's id in that system.
    pub id: ReferenceId,
}

impl CrossReference {
    /// A reference from its parts.
    #[must_use]
    pub fn new(system: ReferenceSystem, id: ReferenceId) -> Self {
        Self { system, id }
    }

    /// Parses the `system:id` form of `GET /persons?reference=` (split at the first colon: ids may hold colons).
    ///
    /// # Errors
    /// [`InvalidReference`] naming what is wrong.
    pub fn parse(text: &str) -> Result<Self, InvalidReference> {
        let (system, id) = text.split_once(':').ok_or(InvalidReference::Form)?;
        Ok(Self { system: ReferenceSystem::parse(system)?, id: ReferenceId::parse(id)? })
    }

    /// A store key for the unique index: `system` and `id` joined by a colon (unambiguous: systems hold no
    /// colon).
    #[must_use]
    pub fn key(&self) -> String {
        format!("{}:{}", self.system, self.id)
    }
}

impl fmt::Display for CrossReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.system, self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_id_form_splits_at_the_first_colon() {
        let r = CrossReference::parse("tenure:abc:123").unwrap();
        assert_eq!(r.system.as_str(), "tenure");
        assert_eq!(r.id.as_str(), "abc:123");
        assert_eq!(r.key(), "tenure:abc:123");
        assert_eq!(CrossReference::parse("tenure"), Err(InvalidReference::Form));
        assert_eq!(CrossReference::parse(":x"), Err(InvalidReference::System));
        assert_eq!(CrossReference::parse("tenure:"), Err(InvalidReference::Id));
    }

    #[test]
    fn system_names_are_lowercase_slugs() {
        for good in ["tenure", "housing-register", "finance.accounts", "a_1"] {
            assert!(ReferenceSystem::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "Tenure", "1tenure", "a:b", "a/b", "a#b", "a b", &"a".repeat(65)] {
            assert!(ReferenceSystem::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_are_kept_verbatim_but_not_padded_or_controlled() {
        assert_eq!(ReferenceId::parse("AbC-1/2#3 x").unwrap().as_str(), "AbC-1/2#3 x");
        assert!(ReferenceId::parse(&"é".repeat(200)).is_ok());
        for bad in ["", " x", "x ", "a\nb", "a\u{0}b", &"x".repeat(201)] {
            assert!(ReferenceId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn json_form_is_system_and_id_and_refuses_extra_keys() {
        let r: CrossReference = serde_json::from_str(r#"{"system":"tenure","id":"t-1"}"#).unwrap();
        assert_eq!(serde_json::to_string(&r).unwrap(), r#"{"system":"tenure","id":"t-1"}"#);
        assert!(serde_json::from_str::<CrossReference>(r#"{"system":"Tenure","id":"t-1"}"#).is_err());
        assert!(serde_json::from_str::<CrossReference>(r#"{"system":"t","id":"1","x":1}"#).is_err());
    }
}
