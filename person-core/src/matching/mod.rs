//! Matching: is this the same person? Normalisation, phonetic keys, name variants, blocking keys and an
//! explained Fellegi–Sunter style score (SPEC §6).
//!
//! Everything here is pure: stores persist the blocking keys computed here in the same atomic write as the
//! person, and look candidates up by key, so every store returns the same candidates and the service ranks
//! them with the same [`score`]. `docs/matching.md` documents the comparison levels, the weight table and how
//! the weights were calibrated.

pub mod keys;
pub mod nicknames;
pub mod normalise;
pub mod phonetic;
pub mod prepared;
pub mod score;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::person::Person;

pub use keys::{KeySource, SearchKey, dedup_key, free_text_keys, person_keys, query_keys};
pub use prepared::PreparedProfile;
pub use score::{Comparison, Grade, MatchScore, THRESHOLDS, score, score_prepared};

/// What is known about a person for matching, from a stored person (plus its NI number from the equality
/// data) or from a search or match request. Every field is optional; comparisons on missing fields are neutral.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct MatchProfile {
    /// First name as given.
    pub first_name: Option<String>,
    /// Middle name(s) as given.
    pub middle_name: Option<String>,
    /// Surname as given (may be hyphenated or double-barrelled).
    pub surname: Option<String>,
    /// Preferred first name, also compared against the query's first name.
    pub preferred_first_name: Option<String>,
    /// Date of birth.
    pub date_of_birth: Option<NaiveDate>,
    /// Normalised UK postcodes (`E8 1DY`) of the person's addresses (active tenures first).
    pub postcodes: Vec<String>,
    /// Free-text addresses.
    pub addresses: Vec<String>,
    /// Canonical NI number (`AB123456C`).
    pub nino: Option<String>,
}

impl std::fmt::Debug for MatchProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MatchProfile(<redacted>)")
    }
}

impl MatchProfile {
    /// The profile of a stored person; `nino` comes from its equality data when the caller may see it.
    #[must_use]
    pub fn from_person(person: &Person, nino: Option<&str>) -> Self {
        let name = |n: &Option<crate::person::Name>| n.as_ref().map(|n| n.as_str().to_owned());
        let mut postcodes = Vec::new();
        let mut addresses = Vec::new();
        for tenure in &person.tenures {
            if let Some(p) = &tenure.postcode
                && !postcodes.contains(p)
            {
                postcodes.push(p.clone());
            }
            if let Some(a) = &tenure.asset_full_address {
                addresses.push(a.clone());
            }
        }
        Self {
            first_name: name(&person.first_name),
            middle_name: name(&person.middle_name),
            surname: Some(person.surname.as_str().to_owned()),
            preferred_first_name: name(&person.preferred_first_name),
            date_of_birth: person.date_of_birth,
            postcodes,
            addresses,
            nino: nino.map(str::to_owned),
        }
    }
}

/// Serialisable summary of a grade threshold table entry (documentation and the evaluation report).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Lowest score graded `certain`.
    pub certain: f64,
    /// Lowest score graded `probable`.
    pub probable: f64,
    /// Lowest score graded `possible`.
    pub possible: f64,
}
