//! The explained Fellegi–Sunter style score.
//!
//! SKELETON: signatures fixed by the lead; bodies to be written (helper task).

use serde::{Deserialize, Serialize};

use super::MatchProfile;

/// How sure a match is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Grade {
    /// Below `probable`, above `possible`.
    Possible,
    /// Very likely the same person.
    Probable,
    /// The same person beyond reasonable doubt.
    Certain,
}

/// One field comparison and what it contributed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Comparison {
    /// The field compared (`firstName`, `surname`, `dateOfBirth`, `postcode`, `nationalInsuranceNumber` …).
    pub field: String,
    /// The comparison level reached (`exact`, `phonetic`, `jaro-winkler-0.92`, `nickname`, `swap`,
    /// `day-month-swap`, `sector`, `disagree`, `missing` …).
    pub level: String,
    /// The log-likelihood weight it contributed.
    pub weight: f64,
}

/// A score with its grade and explanation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MatchScore {
    /// 0..=1.
    pub score: f64,
    /// `None` below the `possible` threshold.
    pub grade: Option<Grade>,
    /// Every field comparison.
    pub comparisons: Vec<Comparison>,
    /// True when a disagreeing identifier vetoed the match.
    pub vetoed: bool,
}

/// Scores `candidate` against `query`.
#[must_use]
pub fn score(query: &MatchProfile, candidate: &MatchProfile) -> MatchScore {
    let _ = (query, candidate);
    unimplemented!("helper task")
}
