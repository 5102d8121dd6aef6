//! The explained Fellegi–Sunter style score: is the candidate the person the query describes?
//!
//! Each field is compared at one *level* (first name `exact`, `nickname`, `phonetic` …; date of birth `exact`,
//! `one-digit`, `day-month-swap` …). Each level has a weight, a log₂ likelihood ratio `log₂(m/u)` — how much
//! more often true matches than non-matches reach that level — listed in the one table [`WEIGHTS`]. The weights
//! of the five fields add up to the total weight `W`, which a logistic curve maps to a score in `0..=1`
//! ([`weight_to_score`]); the grade follows from the score and the thresholds [`CERTAIN`], [`PROBABLE`],
//! [`POSSIBLE`]. The explanation lists one [`Comparison`] per field with the weight it contributed.
//!
//! Two rules sit on top of the sum, because field agreements are not independent:
//! * **NI number veto**: two different NI numbers mean two people; the match is `vetoed` and never graded above
//!   `possible`.
//! * **Certain needs the first name**: `certain` needs the first names to agree (`exact`, `nickname`, `swap`,
//!   `phonetic`, `jaro-winkler-0.92`, or no first name on either side) or the NI numbers to agree. Otherwise
//!   the grade is at most `probable`. Members of one household share surname, address and — twins — date of
//!   birth, so those agreements prove little once the first names differ.
//!
//! The weights were estimated and calibrated on the labelled synthetic data set (`person-bench
//! evaluate-matching`); `docs/matching.md` records how, and the resulting precision and recall.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use super::prepared::{PreparedName, PreparedProfile, postcode_levels};
use super::{MatchProfile, Thresholds, nicknames};

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

impl Grade {
    /// The grade of a score under `thresholds` (`None` below `possible`).
    #[must_use]
    pub fn for_score(score: f64, thresholds: &Thresholds) -> Option<Self> {
        if score >= thresholds.certain {
            Some(Self::Certain)
        } else if score >= thresholds.probable {
            Some(Self::Probable)
        } else if score >= thresholds.possible {
            Some(Self::Possible)
        } else {
            None
        }
    }
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

/// Field name of the first-name comparison.
pub const FIRST_NAME: &str = "firstName";
/// Field name of the surname comparison.
pub const SURNAME: &str = "surname";
/// Field name of the date-of-birth comparison.
pub const DATE_OF_BIRTH: &str = "dateOfBirth";
/// Field name of the postcode comparison.
pub const POSTCODE: &str = "postcode";
/// Field name of the NI number comparison.
pub const NINO: &str = "nationalInsuranceNumber";

/// One row of the weight table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LevelWeight {
    /// The field (`firstName` …).
    pub field: &'static str,
    /// The level (`exact` …).
    pub level: &'static str,
    /// Its weight, a log₂ likelihood ratio (positive: evidence for a match).
    pub weight: f64,
    /// What the level means.
    pub meaning: &'static str,
}

const fn row(field: &'static str, level: &'static str, weight: f64, meaning: &'static str) -> LevelWeight {
    LevelWeight { field, level, weight, meaning }
}

/// THE weight table: every comparison level of every field and its weight. For each field the first level
/// (from the top) that the pair reaches is the one that counts. `docs/matching.md` is generated from the same
/// numbers.
pub const WEIGHTS: &[LevelWeight] = &[
    row(FIRST_NAME, "exact", 6.0, "same folded name (case, accents and punctuation ignored)"),
    row(FIRST_NAME, "nickname", 5.0, "variants in the given-name table (Bill / William, Siobhan / Shivaun)"),
    row(FIRST_NAME, "swap", 5.0, "forename and surname swapped (scored as the pair; see surname)"),
    row(FIRST_NAME, "gendered-pair", 3.0, "masculine and feminine forms (Paul / Paula): never certain"),
    row(FIRST_NAME, "phonetic", 4.0, "a Double Metaphone code in common and Jaro–Winkler ≥ 0.80"),
    row(FIRST_NAME, "jaro-winkler-0.92", 4.0, "Jaro–Winkler similarity ≥ 0.92 (a typo)"),
    row(FIRST_NAME, "jaro-winkler-0.85", 2.0, "Jaro–Winkler similarity ≥ 0.85"),
    row(FIRST_NAME, "middle-name-swap", 5.0, "first and middle names swapped (Isla Gillian / Gillian Isla)"),
    row(FIRST_NAME, "middle-name", 2.0, "one side's first name is the other's middle name"),
    row(FIRST_NAME, "part", 2.0, "a part of a multi-part first name is the other first name"),
    row(FIRST_NAME, "prefix", 1.0, "one is a prefix (≥ 2 letters) of the other (prefix search)"),
    row(FIRST_NAME, "initial", 0.0, "one side is an initial, the other starts with it"),
    row(FIRST_NAME, "disagree", -20.0, "different first names: outweighs surname + date of birth + postcode"),
    row(FIRST_NAME, "missing", 0.0, "no first name on one side"),
    row(SURNAME, "exact", 8.0, "same folded surname"),
    row(SURNAME, "swap", 7.0, "forename and surname swapped"),
    row(SURNAME, "part", 6.0, "a part of a hyphenated or double-barrelled surname is the other surname or part"),
    row(SURNAME, "phonetic", 5.5, "a Double Metaphone code in common (of the surname or of a part)"),
    row(SURNAME, "jaro-winkler-0.92", 5.0, "Jaro–Winkler similarity ≥ 0.92"),
    row(SURNAME, "jaro-winkler-0.85", 3.0, "Jaro–Winkler similarity ≥ 0.85"),
    row(SURNAME, "prefix", 1.0, "one is a prefix (≥ 2 letters) of the other (prefix search)"),
    row(SURNAME, "disagree", -6.0, "different surnames"),
    row(SURNAME, "missing", 0.0, "no surname on one side"),
    row(DATE_OF_BIRTH, "exact", 13.0, "same date"),
    row(DATE_OF_BIRTH, "day-month-swap", 7.0, "day and month swapped (05/11 for 11/05)"),
    row(DATE_OF_BIRTH, "one-digit", 5.0, "one digit of YYYYMMDD differs"),
    row(DATE_OF_BIRTH, "same-year", -3.0, "same year, otherwise different"),
    row(DATE_OF_BIRTH, "disagree", -10.0, "different dates"),
    row(DATE_OF_BIRTH, "missing", 0.0, "no date of birth on one side"),
    row(POSTCODE, "full", 5.0, "a postcode in common (household members share it too)"),
    row(POSTCODE, "sector", 1.5, "same postcode sector (E8 1)"),
    row(POSTCODE, "district", 0.5, "same postcode district (E8)"),
    row(POSTCODE, "disagree", -2.0, "different districts (people move: a weak signal)"),
    row(POSTCODE, "missing", 0.0, "no postcode on one side"),
    row(NINO, "agree", 18.0, "same NI number"),
    row(NINO, "disagree", -12.0, "different NI numbers: vetoes the match"),
    row(NINO, "missing", 0.0, "no NI number on one side"),
];

/// Lowest score graded `certain`.
pub const CERTAIN: f64 = 0.95;
/// Lowest score graded `probable`.
pub const PROBABLE: f64 = 0.75;
/// Lowest score graded `possible`.
pub const POSSIBLE: f64 = 0.40;
/// The grade thresholds.
pub const THRESHOLDS: Thresholds = Thresholds { certain: CERTAIN, probable: PROBABLE, possible: POSSIBLE };

/// The total weight at which the score is 0.5.
pub const MIDPOINT: f64 = 9.4;
/// How many units of weight make one unit of log-odds of the score.
pub const SCALE: f64 = 4.9;

/// First-name levels strong enough for `certain` (see the module documentation).
pub const CERTAIN_FIRST_NAME_LEVELS: &[&str] = &["exact", "nickname", "phonetic", "jaro-winkler-0.92", "swap"];

/// The weight of a level in [`WEIGHTS`] (0 for an unknown field or level).
#[must_use]
pub fn weight_of(field: &str, level: &str) -> f64 {
    WEIGHTS.iter().find(|w| w.field == field && w.level == level).map_or(0.0, |w| w.weight)
}

/// Maps a total weight to a score in `0..=1` (a logistic curve through [`MIDPOINT`] with slope 1/[`SCALE`]).
#[must_use]
pub fn weight_to_score(total: f64) -> f64 {
    1.0 / (1.0 + (-(total - MIDPOINT) / SCALE).exp())
}

/// The inverse of [`weight_to_score`]: the total weight that scores `score` (for documenting thresholds).
#[must_use]
pub fn score_to_weight(score: f64) -> f64 {
    MIDPOINT + SCALE * (score / (1.0 - score)).ln()
}

/// Scores `candidate` against `query`.
#[must_use]
pub fn score(query: &MatchProfile, candidate: &MatchProfile) -> MatchScore {
    score_prepared(&PreparedProfile::new(query), &PreparedProfile::new(candidate))
}

/// [`score`] on profiles prepared once ([`PreparedProfile::new`]): prepare the query once, then score each
/// candidate.
#[must_use]
pub fn score_prepared(query: &PreparedProfile, candidate: &PreparedProfile) -> MatchScore {
    let (first_level, surname_level) = compare_names(query, candidate);
    let dob_level = compare_dates(query.date_of_birth, candidate.date_of_birth);
    let postcode_level = compare_postcodes(&query.postcodes, &candidate.postcodes);
    let nino_level = match (&query.nino, &candidate.nino) {
        (Some(a), Some(b)) if a == b => "agree",
        (Some(_), Some(_)) => "disagree",
        _ => "missing",
    };
    let comparisons: Vec<Comparison> = [
        (FIRST_NAME, first_level),
        (SURNAME, surname_level),
        (DATE_OF_BIRTH, dob_level),
        (POSTCODE, postcode_level),
        (NINO, nino_level),
    ]
    .into_iter()
    .map(|(field, level)| Comparison {
        field: field.to_owned(),
        level: level.to_owned(),
        weight: weight_of(field, level),
    })
    .collect();
    let total: f64 = comparisons.iter().map(|c| c.weight).sum();
    let mut score = weight_to_score(total);
    let vetoed = nino_level == "disagree";
    let first_names_absent = query.first_names.is_empty() && candidate.first_names.is_empty();
    let certain_allowed =
        nino_level == "agree" || first_names_absent || CERTAIN_FIRST_NAME_LEVELS.contains(&first_level);
    if !certain_allowed {
        score = score.min(below(CERTAIN));
    }
    if vetoed {
        score = score.min(below(PROBABLE));
    }
    MatchScore { score, grade: Grade::for_score(score, &THRESHOLDS), comparisons, vetoed }
}

/// The largest score graded below `threshold`.
fn below(threshold: f64) -> f64 {
    threshold - 1e-4
}

/// Compares first names and surnames, directly or swapped (forename given as surname and vice versa),
/// whichever explains the pair better.
fn compare_names(query: &PreparedProfile, candidate: &PreparedProfile) -> (&'static str, &'static str) {
    let first = first_name_level(query, candidate);
    let surname = match (&query.surname, &candidate.surname) {
        (Some(a), Some(b)) => surname_level(a, b),
        _ => "missing",
    };
    if let (Some(qf), Some(qs), Some(cf), Some(cs)) =
        (query.first_name(), &query.surname, candidate.first_name(), &candidate.surname)
    {
        let strong = |level: &str| {
            matches!(
                level,
                "exact"
                    | "nickname"
                    | "gendered-pair"
                    | "phonetic"
                    | "jaro-winkler-0.92"
                    | "jaro-winkler-0.85"
                    | "part"
            )
        };
        // The query's surname field holds the first name and vice versa: compare each as what it is.
        let crossed_first = first_level(qs, cf);
        let crossed_surname = surname_level(qf, cs);
        let direct = weight_of(FIRST_NAME, first) + weight_of(SURNAME, surname);
        let swapped = weight_of(FIRST_NAME, "swap") + weight_of(SURNAME, "swap");
        if strong(crossed_first) && strong(crossed_surname) && swapped > direct {
            return ("swap", "swap");
        }
    }
    (first, surname)
}

/// The best first-name level over the first and preferred first names of both sides, including a first name
/// given as the other side's middle name.
fn first_name_level(query: &PreparedProfile, candidate: &PreparedProfile) -> &'static str {
    if query.first_names.is_empty() || candidate.first_names.is_empty() {
        return "missing";
    }
    let mut best = "disagree";
    for a in &query.first_names {
        for b in &candidate.first_names {
            best = better(FIRST_NAME, best, first_level(a, b));
        }
    }
    if weight_of(FIRST_NAME, best) < weight_of(FIRST_NAME, "middle-name-swap") {
        let known_by_middle = |firsts: &[PreparedName], middles: &[PreparedName]| {
            firsts.iter().any(|f| middles.iter().any(|m| matches!(first_level(f, m), "exact" | "nickname")))
        };
        let forward = known_by_middle(&query.first_names, &candidate.middle_names);
        let backward = known_by_middle(&candidate.first_names, &query.middle_names);
        let level = match (forward, backward) {
            (true, true) => "middle-name-swap",
            (true, false) | (false, true) => "middle-name",
            (false, false) => "disagree",
        };
        best = better(FIRST_NAME, best, level);
    }
    best
}

fn better(field: &str, a: &'static str, b: &'static str) -> &'static str {
    if weight_of(field, b) > weight_of(field, a) { b } else { a }
}

/// The level of two first names (the first of: exact, nickname, gendered pair, phonetic, Jaro–Winkler bands,
/// part, prefix, initial, else disagree).
fn first_level(a: &PreparedName, b: &PreparedName) -> &'static str {
    let (ja, jb) = (a.joined(), b.joined());
    if ja == jb {
        return "exact";
    }
    if nicknames::are_variants_folded(ja, jb) {
        return "nickname";
    }
    if nicknames::gendered_pair(ja, jb) {
        return "gendered-pair";
    }
    let jw = strsim::jaro_winkler(ja, jb);
    if jw >= 0.80 && a.codes.shares_code_with(&b.codes) {
        return "phonetic";
    }
    if jw >= 0.92 {
        return "jaro-winkler-0.92";
    }
    if jw >= 0.85 {
        return "jaro-winkler-0.85";
    }
    if a.forms().any(|x| b.forms().any(|y| x == y)) {
        return "part";
    }
    if is_prefix(ja, jb) {
        return "prefix";
    }
    let initial = |x: &str, y: &str| x.len() == 1 && y.starts_with(x);
    if initial(ja, jb) || initial(jb, ja) {
        return "initial";
    }
    "disagree"
}

/// The level of two surnames (the first of: exact, part, phonetic, Jaro–Winkler bands, prefix, else disagree).
/// A hyphenated or double-barrelled surname is compared by its joined form and by each part, so `Lowe-Bulter`
/// reaches `jaro-winkler-0.92` against `Butler` through its part `bulter`.
fn surname_level(a: &PreparedName, b: &PreparedName) -> &'static str {
    let (ja, jb) = (a.joined(), b.joined());
    if ja == jb {
        return "exact";
    }
    if a.forms().any(|x| b.forms().any(|y| x == y)) {
        return "part";
    }
    if a.all_codes().any(|x| b.all_codes().any(|y| x == y)) {
        return "phonetic";
    }
    let jw = a.forms().flat_map(|x| b.forms().map(move |y| strsim::jaro_winkler(x, y))).fold(0.0, f64::max);
    if jw >= 0.92 {
        return "jaro-winkler-0.92";
    }
    if jw >= 0.85 {
        return "jaro-winkler-0.85";
    }
    if is_prefix(ja, jb) {
        return "prefix";
    }
    "disagree"
}

/// One is a prefix of at least two letters of the other.
fn is_prefix(a: &str, b: &str) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    short.len() >= 2 && long.starts_with(short)
}

/// The level of two dates of birth.
fn compare_dates(a: Option<NaiveDate>, b: Option<NaiveDate>) -> &'static str {
    let (Some(a), Some(b)) = (a, b) else { return "missing" };
    if a == b {
        return "exact";
    }
    if a.year() == b.year() && a.day() == b.month() && a.month() == b.day() {
        return "day-month-swap";
    }
    let (da, db) = (a.format("%Y%m%d").to_string(), b.format("%Y%m%d").to_string());
    if da.len() == db.len() && da.bytes().zip(db.bytes()).filter(|(x, y)| x != y).count() == 1 {
        return "one-digit";
    }
    if a.year() == b.year() {
        return "same-year";
    }
    "disagree"
}

/// The best postcode level over both sides' postcodes.
fn compare_postcodes(a: &[String], b: &[String]) -> &'static str {
    if a.is_empty() || b.is_empty() {
        return "missing";
    }
    let mut best = "disagree";
    for x in a {
        for y in b {
            let level = if x == y {
                "full"
            } else {
                match (postcode_levels(x), postcode_levels(y)) {
                    (Some((dx, sx)), Some((dy, sy))) if sx == sy && dx == dy => "sector",
                    (Some((dx, _)), Some((dy, _))) if dx == dy => "district",
                    _ => "disagree",
                }
            };
            best = better(POSTCODE, best, level);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(y, m, d)
    }

    fn profile(first: &str, surname: &str, dob: Option<NaiveDate>, postcode: &str) -> MatchProfile {
        MatchProfile {
            first_name: (!first.is_empty()).then(|| first.to_owned()),
            surname: (!surname.is_empty()).then(|| surname.to_owned()),
            date_of_birth: dob,
            postcodes: if postcode.is_empty() { vec![] } else { vec![postcode.to_owned()] },
            ..MatchProfile::default()
        }
    }

    fn level(s: &MatchScore, field: &str) -> String {
        s.comparisons.iter().find(|c| c.field == field).map(|c| c.level.clone()).unwrap_or_default()
    }

    #[test]
    fn every_level_used_is_in_the_table_once() {
        for (i, a) in WEIGHTS.iter().enumerate() {
            for b in &WEIGHTS[i + 1..] {
                assert!(!(a.field == b.field && a.level == b.level), "{} {} twice", a.field, a.level);
            }
        }
        for field in [FIRST_NAME, SURNAME, DATE_OF_BIRTH, POSTCODE, NINO] {
            assert!(WEIGHTS.iter().any(|w| w.field == field && w.level == "missing"), "{field}");
        }
        for l in CERTAIN_FIRST_NAME_LEVELS {
            assert!(WEIGHTS.iter().any(|w| w.field == FIRST_NAME && w.level == *l), "{l}");
        }
    }

    #[test]
    fn identical_full_profiles_are_certain_and_explained_per_field() {
        let p = profile("John", "Smith", date(1980, 1, 2), "E8 1DY");
        let s = score(&p, &p);
        assert_eq!(s.grade, Some(Grade::Certain));
        assert!(s.score > CERTAIN && s.score <= 1.0);
        let fields: Vec<&str> = s.comparisons.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, [FIRST_NAME, SURNAME, DATE_OF_BIRTH, POSTCODE, NINO]);
        assert!(!s.vetoed);
    }

    #[test]
    fn jon_smyth_scores_at_least_possible_against_john_smith() {
        let s = score(&profile("Jon", "Smyth", None, ""), &profile("John", "Smith", date(1980, 1, 2), "E8 1DY"));
        assert!(s.grade >= Some(Grade::Possible), "{s:?}");
        assert_eq!(level(&s, SURNAME), "phonetic");
    }

    #[test]
    fn case_and_accents_do_not_matter() {
        let stored = profile("Zoë", "Kimakhe", date(1990, 5, 17), "E8 1DY");
        let s = score(&profile("zoe", "kimakhe", None, ""), &stored);
        assert_eq!(level(&s, FIRST_NAME), "exact");
        assert_eq!(level(&s, SURNAME), "exact");
    }

    #[test]
    fn nicknames_match_at_the_nickname_level() {
        let stored = profile("William", "Turner", date(1970, 3, 4), "N16 7AB");
        let s = score(&profile("Bill", "Turner", date(1970, 3, 4), ""), &stored);
        assert_eq!(level(&s, FIRST_NAME), "nickname");
        assert_eq!(s.grade, Some(Grade::Certain));
    }

    #[test]
    fn profiles_with_the_same_dedup_key_are_certain_even_after_a_move() {
        let stored = profile("William", "Turner", date(1970, 3, 4), "N16 7AB");
        let query = profile("Bill", "Turner", date(1970, 3, 4), "E8 1DY");
        assert_eq!(crate::matching::dedup_key(&query), crate::matching::dedup_key(&stored));
        assert_eq!(score(&query, &stored).grade, Some(Grade::Certain));
    }

    #[test]
    fn swapped_forename_and_surname_match() {
        let stored = profile("John", "Smith", date(1980, 1, 2), "E8 1DY");
        let s = score(&profile("Smith", "John", date(1980, 1, 2), "E8 1DY"), &stored);
        assert_eq!(level(&s, FIRST_NAME), "swap");
        assert_eq!(level(&s, SURNAME), "swap");
        assert!(s.grade >= Some(Grade::Probable), "{s:?}");
    }

    #[test]
    fn hyphenated_surnames_match_on_each_part() {
        let s = score(&profile("Aisha", "Khan", None, ""), &profile("Aisha", "Ali-Khan", date(1990, 1, 1), ""));
        assert_eq!(level(&s, SURNAME), "part");
        let s = score(&profile("", "Ali Khan", None, ""), &profile("", "Ali-Khan", None, ""));
        assert_eq!(level(&s, SURNAME), "exact");
    }

    #[test]
    fn a_day_month_swap_scores_below_the_exact_date() {
        let stored = profile("Ayşe", "Yılmaz", date(1985, 3, 11), "E5 0LL");
        let exact = score(&profile("Ayse", "Yilmaz", date(1985, 3, 11), ""), &stored);
        let swapped = score(&profile("Ayse", "Yilmaz", date(1985, 11, 3), ""), &stored);
        assert_eq!(level(&swapped, DATE_OF_BIRTH), "day-month-swap");
        assert!(swapped.score < exact.score);
        assert!(swapped.grade >= Some(Grade::Possible));
    }

    #[test]
    fn date_levels_are_recognised() {
        assert_eq!(compare_dates(date(1980, 1, 2), date(1980, 1, 3)), "one-digit");
        assert_eq!(compare_dates(date(1980, 1, 2), date(1981, 1, 2)), "one-digit");
        assert_eq!(compare_dates(date(1980, 1, 2), date(1980, 7, 20)), "same-year");
        assert_eq!(compare_dates(date(1980, 1, 2), date(1975, 7, 20)), "disagree");
        assert_eq!(compare_dates(date(1980, 1, 2), None), "missing");
        assert_eq!(compare_dates(date(1980, 5, 5), date(1980, 5, 5)), "exact");
    }

    #[test]
    fn postcodes_compare_with_or_without_the_space_at_three_levels() {
        let level = |a: &str, b: &str| {
            let pa = PreparedProfile::new(&profile("", "", None, a));
            let pb = PreparedProfile::new(&profile("", "", None, b));
            compare_postcodes(&pa.postcodes, &pb.postcodes)
        };
        assert_eq!(level("e81dy", "E8 1DY"), "full");
        assert_eq!(level("E8 1DY", "E8 1QQ"), "sector");
        assert_eq!(level("E8 1DY", "E8 3AB"), "district");
        assert_eq!(level("E8 1DY", "N16 7AB"), "disagree");
        assert_eq!(level("E8 1DY", ""), "missing");
    }

    #[test]
    fn ni_numbers_compare_in_any_spacing_and_a_disagreement_vetoes() {
        let mut stored = profile("Ann", "Lee", date(1960, 2, 3), "E9 5AA");
        stored.nino = Some("AB123456C".into());
        let mut query = stored.clone();
        query.nino = Some("ab 12 34 56 c".into());
        let s = score(&query, &stored);
        assert_eq!(level(&s, NINO), "agree");
        assert_eq!(s.grade, Some(Grade::Certain));
        query.nino = Some("CE 12 34 56 A".into());
        let s = score(&query, &stored);
        assert!(s.vetoed);
        assert!(s.grade < Some(Grade::Probable), "{s:?}");
    }

    #[test]
    fn twins_are_never_certain() {
        let a = profile("Hassan", "Ahmed", date(2010, 6, 1), "E8 2PQ");
        let b = profile("Yusuf", "Ahmed", date(2010, 6, 1), "E8 2PQ");
        let s = score(&a, &b);
        assert_eq!(level(&s, FIRST_NAME), "disagree");
        assert!(s.grade < Some(Grade::Probable), "{s:?}");
        // Even without a first name on one side, a shared household is not enough for certain.
        let s = score(&profile("", "Ahmed", date(2010, 6, 1), "E8 2PQ"), &b);
        assert!(s.grade < Some(Grade::Certain), "{s:?}");
    }

    #[test]
    fn brother_and_sister_twins_with_one_name_in_two_forms_are_not_certain() {
        for (a, b) in [("Paul", "Paula"), ("Daniel", "Danielle"), ("Louis", "Louise"), ("Francis", "Frances")] {
            let s =
                score(&profile(a, "Khan", date(2010, 6, 1), "E8 2PQ"), &profile(b, "Khan", date(2010, 6, 1), "E8 2PQ"));
            assert_eq!(level(&s, FIRST_NAME), "gendered-pair", "{a} / {b}");
            assert!(s.grade < Some(Grade::Certain), "{a} / {b}: {s:?}");
        }
    }

    #[test]
    fn namesakes_with_different_dates_of_birth_are_not_probable() {
        let father = profile("Mohammed", "Khan", date(1960, 4, 4), "E5 8QT");
        let son = profile("Mohammed", "Khan", date(1992, 9, 12), "E5 8QT");
        assert!(score(&father, &son).grade < Some(Grade::Probable));
    }

    #[test]
    fn scores_are_monotonic_in_weight_and_bounded() {
        assert!(weight_to_score(-100.0) >= 0.0);
        assert!(weight_to_score(100.0) <= 1.0);
        assert!(weight_to_score(10.0) < weight_to_score(11.0));
        for s in [CERTAIN, PROBABLE, POSSIBLE] {
            assert!((weight_to_score(score_to_weight(s)) - s).abs() < 1e-9);
        }
    }

    #[test]
    fn an_empty_query_matches_nothing() {
        let s = score(&MatchProfile::default(), &profile("John", "Smith", date(1980, 1, 2), "E8 1DY"));
        assert_eq!(s.grade, None);
    }
}
