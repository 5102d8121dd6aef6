//! Blocking keys: short strings computed from a profile, stored with the person and looked up by queries, so
//! that candidate retrieval is an indexed lookup whose cost does not grow with the table.
//!
//! SKELETON: signatures fixed by the lead; bodies to be written (helper task).

use serde::{Deserialize, Serialize};

use super::MatchProfile;

/// Which write owns a key: the person record or its equality data (NI number). Each write replaces only the
/// keys of its own source, atomically with the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeySource {
    /// Keys from names, date of birth, postcodes.
    Person,
    /// Keys from the equality data (the NI number).
    Equality,
}

/// One blocking key, e.g. `sn:SM0|1990` (phonetic surname + birth year). Opaque to stores.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SearchKey(pub String);

/// Every key a stored person is found by (source [`KeySource::Person`]: names, date of birth, postcodes;
/// [`KeySource::Equality`]: the NI number).
#[must_use]
pub fn person_keys(profile: &MatchProfile, source: KeySource) -> Vec<SearchKey> {
    let _ = (profile, source);
    unimplemented!("helper task")
}

/// The keys to look up for a query profile (including name variants and forename/surname swaps).
#[must_use]
pub fn query_keys(profile: &MatchProfile) -> Vec<SearchKey> {
    let _ = profile;
    unimplemented!("helper task")
}

/// The duplicate-prevention key of a profile: two profiles with the same key are the same person beyond
/// reasonable doubt (same canonical forename, surname and date of birth). `None` when the profile lacks any of
/// them. Stores keep it unique among live persons, which makes duplicate prevention race-safe.
#[must_use]
pub fn dedup_key(profile: &MatchProfile) -> Option<String> {
    let _ = profile;
    unimplemented!("helper task")
}
