//! Blocking keys: short strings computed from a profile, stored with the person and looked up by queries, so
//! that candidate retrieval is an indexed lookup whose cost does not grow with the table.
//!
//! Every key starts with a namespace, so keys of different kinds never collide:
//!
//! | Key | Made of | Finds |
//! |---|---|---|
//! | `ni:AB123456C` | NI number (source [`KeySource::Equality`]) | the person by NI number, in any spacing |
//! | `pd:E81DY\|1990-05-17` | postcode + date of birth | the person at an address, whatever the name says |
//! | `fd:JN\|1990-05-17` | first-name phonetic code + date of birth | surname changed, misspelt or swapped |
//! | `db:1990-05-17` | date of birth | the person by date of birth (and its day/month swap) |
//! | `sy:SM0\|1990` | surname (and surname part) phonetic code + birth year | a date of birth with a wrong day or month |
//! | `nk:william\|TRNR` | canonical first name + surname phonetic code | nicknames, a wrong or missing date of birth |
//! | `fs:ALNR\|HNTR` | first-name + surname phonetic codes | a misspelt first name and a wrong date of birth |
//! | `pc:E81DY` | postcode | the residents of an address |
//! | `sn:SM0` | surname (and each surname part) phonetic code | name-only searches (`lastName=Smyth`) |
//! | `sx:smi` | surname-part prefix of 2, 3 and 4 letters | prefix searches (`lastName=Sm`) |
//! | `fx:jo` | first-name prefix of 2, 3 and 4 letters | prefix searches (`firstName=Jo`) |
//!
//! Names are folded first ([`super::normalise`]), so case, accents and punctuation never change a key;
//! phonetic codes are Double Metaphone's primary and alternate codes ([`super::phonetic`]). A stored person has
//! about 15 keys (a few more with a hyphenated surname or a second address).
//!
//! [`query_keys`] chooses the keys a query looks up, most selective first. Names are looked up combined with the
//! date of birth (`fd:`, `sy:`) or with each other (`nk:`, `fs:`); the broad one-name keys (`sn:`, `sx:`, `fx:`)
//! only when there is nothing narrower: no date of birth, and a single name or two names without a postcode.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use super::MatchProfile;
use super::nicknames;
use super::normalise::FreeText;
use super::prepared::{PreparedName, PreparedProfile};

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

impl SearchKey {
    /// The key text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The namespace of the key (`sy`, `ni`, …), the text before the first `:`.
    #[must_use]
    pub fn namespace(&self) -> &str {
        self.0.split_once(':').map_or("", |(ns, _)| ns)
    }
}

/// The longest name prefix stored as a key; a longer query prefix looks up its first four letters.
pub const MAX_PREFIX: usize = 4;
/// The shortest name prefix searched.
pub const MIN_PREFIX: usize = 2;
/// How many of a person's postcodes (active tenures first) get keys.
pub const MAX_POSTCODES: usize = 2;

/// Collects keys in order, without duplicates.
#[derive(Default)]
struct Keys(Vec<SearchKey>);

impl Keys {
    fn push(&mut self, namespace: &str, value: &str) {
        if value.is_empty() {
            return;
        }
        let key = SearchKey(format!("{namespace}:{value}"));
        if !self.0.contains(&key) {
            self.0.push(key);
        }
    }
}

fn iso(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

fn compact(postcode: &str) -> String {
    postcode.chars().filter(|c| !c.is_whitespace()).collect()
}

/// The surname codes used in keys: of the joined surname and of each significant part.
fn surname_codes(surname: &PreparedName) -> Vec<&str> {
    let mut codes: Vec<&str> = Vec::new();
    for code in surname.all_codes() {
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    codes
}

/// The primary codes of a surname (joined and parts), for the `nk:` keys.
fn surname_primaries(surname: &PreparedName) -> Vec<&str> {
    let mut codes: Vec<&str> = std::iter::once(surname.codes.primary.as_str())
        .chain(surname.parts.iter().map(|(_, c)| c.primary.as_str()))
        .filter(|c| !c.is_empty())
        .collect();
    codes.dedup();
    codes
}

/// The prefixes of `word` of [`MIN_PREFIX`]..=[`MAX_PREFIX`] letters.
fn prefixes(word: &str) -> impl Iterator<Item = &str> {
    (MIN_PREFIX..=MAX_PREFIX.min(word.len())).filter_map(move |n| word.get(..n))
}

/// The longest stored prefix of a query word (its first [`MAX_PREFIX`] letters), if it has at least
/// [`MIN_PREFIX`].
fn query_prefix(word: &str) -> Option<&str> {
    (word.len() >= MIN_PREFIX).then(|| word.get(..word.len().min(MAX_PREFIX))).flatten()
}

/// Every key a stored person is found by (source [`KeySource::Person`]: names, date of birth, postcodes;
/// [`KeySource::Equality`]: the NI number).
#[must_use]
pub fn person_keys(profile: &MatchProfile, source: KeySource) -> Vec<SearchKey> {
    let p = PreparedProfile::new(profile);
    let mut keys = Keys::default();
    match source {
        KeySource::Equality => {
            if let Some(nino) = &p.nino {
                keys.push("ni", nino);
            }
        }
        KeySource::Person => {
            let dob = p.date_of_birth.map(iso);
            let year = p.date_of_birth.map(|d| d.year().to_string());
            let postcodes: Vec<String> = p.postcodes.iter().take(MAX_POSTCODES).map(|pc| compact(pc)).collect();
            if let Some(dob) = &dob {
                for pc in &postcodes {
                    keys.push("pd", &format!("{pc}|{dob}"));
                }
            }
            for first in &p.first_names {
                if let Some(dob) = &dob {
                    for code in first.codes.iter() {
                        keys.push("fd", &format!("{code}|{dob}"));
                    }
                }
            }
            if let Some(dob) = &dob {
                keys.push("db", dob);
            }
            if let Some(surname) = &p.surname {
                if let Some(year) = &year {
                    // Both codes of the whole surname, the primary code of each part.
                    let codes = surname.codes.iter().chain(surname_primaries(surname));
                    for code in codes {
                        keys.push("sy", &format!("{code}|{year}"));
                    }
                }
                // The first name with every surname code; a preferred first name only with the whole surname's.
                for (i, first) in p.first_names.iter().enumerate() {
                    let canonical = nicknames::canonical(first.joined());
                    let primaries = surname_primaries(surname);
                    for code in primaries.iter().take(if i == 0 { usize::MAX } else { 1 }) {
                        keys.push("nk", &format!("{canonical}|{code}"));
                        if i == 0 && !first.codes.primary.is_empty() {
                            keys.push("fs", &format!("{}|{code}", first.codes.primary));
                        }
                    }
                }
            }
            for pc in &postcodes {
                keys.push("pc", pc);
            }
            if let Some(surname) = &p.surname {
                for code in surname_codes(surname) {
                    keys.push("sn", code);
                }
                // Particles (de, al, van …) get no prefix keys, unless the surname is nothing else.
                let mut parts: Vec<&str> = surname.name.significant_parts().collect();
                if parts.is_empty() {
                    parts = surname.name.parts.iter().map(String::as_str).collect();
                }
                for part in parts.into_iter().filter(|p| p.len() >= MIN_PREFIX) {
                    for prefix in prefixes(part) {
                        keys.push("sx", prefix);
                    }
                }
            }
            if let Some(first) = p.first_name() {
                for prefix in prefixes(first.joined()) {
                    keys.push("fx", prefix);
                }
            }
        }
    }
    keys.0
}

/// The keys to look up for a query profile (including name variants and forename/surname swaps).
///
/// Most selective first: NI number, postcode + date of birth, first name + date of birth, date of birth and
/// its day/month swap, surname + birth year, canonical first name + surname, first name + surname codes,
/// postcode; then — only for a query
/// without a date of birth — surname codes and name prefixes. Each name is also tried in the other field, so a
/// forename/surname swap finds the person.
#[must_use]
pub fn query_keys(profile: &MatchProfile) -> Vec<SearchKey> {
    let p = PreparedProfile::new(profile);
    let mut keys = Keys::default();
    if let Some(nino) = &p.nino {
        keys.push("ni", nino);
    }
    let dates: Vec<NaiveDate> = p.date_of_birth.into_iter().chain(p.date_of_birth.and_then(day_month_swap)).collect();
    let postcodes: Vec<String> = p.postcodes.iter().map(|pc| compact(pc)).collect();
    for date in &dates {
        for pc in &postcodes {
            keys.push("pd", &format!("{pc}|{}", iso(*date)));
        }
    }
    // Names as given, then swapped (the first name tried as a surname and the surname as a first name).
    let firsts: Vec<&PreparedName> = p.first_names.iter().collect();
    let surnames: Vec<&PreparedName> = p.surname.iter().collect();
    let pairs = [(firsts.clone(), surnames.clone()), (surnames, firsts)];
    for date in &dates {
        for (firsts, _) in &pairs {
            for first in firsts {
                for code in first.codes.iter() {
                    keys.push("fd", &format!("{code}|{}", iso(*date)));
                }
            }
        }
    }
    for date in &dates {
        keys.push("db", &iso(*date));
    }
    if let Some(year) = p.date_of_birth.map(|d| d.year()) {
        for (_, surnames) in &pairs {
            for surname in surnames {
                for code in surname_codes(surname) {
                    keys.push("sy", &format!("{code}|{year}"));
                }
            }
        }
    }
    for (firsts, surnames) in &pairs {
        for first in firsts {
            for surname in surnames {
                for code in surname_primaries(surname) {
                    for canonical in canonicals_or_self(first.joined()) {
                        keys.push("nk", &format!("{canonical}|{code}"));
                    }
                    if !first.codes.primary.is_empty() {
                        keys.push("fs", &format!("{}|{code}", first.codes.primary));
                    }
                }
            }
        }
    }
    for pc in &postcodes {
        keys.push("pc", pc);
    }
    // The broad one-name keys only when there is nothing narrower to look up: no date of birth, and one name
    // alone or two names without a postcode. (`sn:L` or `fx:mo` can bring in a large part of the register.)
    let both = p.surname.is_some() && !p.first_names.is_empty();
    if p.date_of_birth.is_none() && (!both || p.postcodes.is_empty()) {
        for name in p.surname.iter().chain(&p.first_names) {
            // With both names given, a long first name is not a prefix search.
            name_only_keys(&mut keys, name, !both || name.joined().len() <= MAX_PREFIX);
        }
    }
    keys.0
}

/// Every canonical form of a first name, or the name itself (`chris` → `christopher`, `christine`).
fn canonicals_or_self(name: &str) -> Vec<&str> {
    let canonicals = nicknames::canonicals(name);
    if canonicals.is_empty() { vec![name] } else { canonicals }
}

/// The name-only keys of a query word, which may be a first name or a surname: surname codes and prefixes of
/// each part, and (when `first_prefix`) the first-name prefix.
fn name_only_keys(keys: &mut Keys, name: &PreparedName, first_prefix: bool) {
    for code in surname_codes(name) {
        keys.push("sn", code);
    }
    for part in &name.name.parts {
        if let Some(prefix) = query_prefix(part) {
            keys.push("sx", prefix);
        }
    }
    if first_prefix && let Some(prefix) = query_prefix(name.joined()) {
        keys.push("fx", prefix);
    }
}

/// The date with day and month swapped, when that is another valid date.
fn day_month_swap(date: NaiveDate) -> Option<NaiveDate> {
    (date.day() != date.month()).then(|| NaiveDate::from_ymd_opt(date.year(), date.day(), date.month())).flatten()
}

/// The keys to look up for a free-text query (`q`): each name word as a first name or a surname (codes and
/// prefixes), each postcode, NI number and date recognised in the text ([`FreeText`]).
#[must_use]
pub fn free_text_keys(text: &str) -> Vec<SearchKey> {
    let parsed = FreeText::parse(text);
    let mut keys = Keys::default();
    for nino in &parsed.ninos {
        keys.push("ni", nino);
    }
    for date in &parsed.dates {
        keys.push("db", &iso(*date));
        if let Some(swapped) = day_month_swap(*date) {
            keys.push("db", &iso(swapped));
        }
    }
    for pc in &parsed.postcodes {
        keys.push("pc", &compact(pc));
    }
    for word in &parsed.names {
        if let Some(name) = PreparedName::new(word) {
            name_only_keys(&mut keys, &name, true);
        }
    }
    keys.0
}

/// The duplicate-prevention key of a profile: two profiles with the same key are the same person beyond
/// reasonable doubt (same canonical forename, surname and date of birth). `None` when the profile lacks any of
/// them. Stores keep it unique among live persons, which makes duplicate prevention race-safe.
#[must_use]
pub fn dedup_key(profile: &MatchProfile) -> Option<String> {
    let first = PreparedName::new(profile.first_name.as_deref()?)?;
    let surname = PreparedName::new(profile.surname.as_deref()?)?;
    let dob = profile.date_of_birth?;
    Some(format!("{}|{}|{}", nicknames::canonical(first.joined()), surname.joined(), iso(dob)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(y, m, d)
    }

    fn person(first: &str, surname: &str, dob: Option<NaiveDate>, postcode: &str) -> MatchProfile {
        MatchProfile {
            first_name: (!first.is_empty()).then(|| first.to_owned()),
            surname: (!surname.is_empty()).then(|| surname.to_owned()),
            date_of_birth: dob,
            postcodes: if postcode.is_empty() { vec![] } else { vec![postcode.to_owned()] },
            ..MatchProfile::default()
        }
    }

    fn shares_key(query: &MatchProfile, stored: &MatchProfile) -> bool {
        let stored_keys = person_keys(stored, KeySource::Person);
        query_keys(query).iter().any(|k| stored_keys.contains(k))
    }

    fn keys(list: &[SearchKey]) -> Vec<&str> {
        list.iter().map(SearchKey::as_str).collect()
    }

    #[test]
    fn a_person_has_namespaced_keys_of_every_kind() {
        let p = person("John", "Smith", date(1990, 5, 17), "E8 1DY");
        let k = person_keys(&p, KeySource::Person);
        for expected in [
            "pd:E81DY|1990-05-17",
            "fd:JN|1990-05-17",
            "db:1990-05-17",
            "sy:SM0|1990",
            "sy:XMT|1990",
            "nk:john|SM0",
            "pc:E81DY",
            "sn:SM0",
            "sx:sm",
            "sx:smi",
            "sx:smit",
            "fx:jo",
            "fx:joh",
            "fx:john",
        ] {
            assert!(keys(&k).contains(&expected), "{expected} not in {:?}", keys(&k));
        }
        assert!(k.len() <= 25, "{}", k.len());
        let namespaces = ["pd", "fd", "db", "sy", "nk", "fs", "pc", "sn", "sx", "fx"];
        assert!(k.iter().all(|key| namespaces.contains(&key.namespace())));
    }

    #[test]
    fn key_counts_stay_modest_for_long_hyphenated_names_and_two_addresses() {
        let mut p = person("Anne-Marie", "O'Neill-Łukasiewicz", date(1990, 5, 17), "E8 1DY");
        p.preferred_first_name = Some("Annie".into());
        p.postcodes.push("N16 7AB".into());
        p.postcodes.push("E9 5AA".into());
        let k = person_keys(&p, KeySource::Person);
        assert!(k.len() <= 32, "{} keys", k.len());
    }

    #[test]
    fn the_equality_source_has_only_the_ni_number_in_any_spacing() {
        let p = MatchProfile { nino: Some("ab 12 34 56 c".into()), ..person("John", "Smith", None, "") };
        assert_eq!(keys(&person_keys(&p, KeySource::Equality)), ["ni:AB123456C"]);
        assert!(person_keys(&p, KeySource::Person).iter().all(|k| k.namespace() != "ni"));
        let q = MatchProfile { nino: Some("AB123456C".into()), ..MatchProfile::default() };
        assert_eq!(keys(&query_keys(&q)), ["ni:AB123456C"]);
    }

    #[test]
    fn jon_smyth_shares_a_key_with_john_smith() {
        let stored = person("John", "Smith", date(1980, 1, 2), "E8 1DY");
        assert!(shares_key(&person("Jon", "Smyth", None, ""), &stored));
        assert!(shares_key(&person("Jon", "Smyth", date(1980, 1, 2), ""), &stored));
    }

    #[test]
    fn case_and_accents_do_not_change_keys() {
        assert!(shares_key(&person("", "kimakhe", None, ""), &person("Thandiwe", "Kimakhe", date(1990, 1, 1), "")));
        assert!(shares_key(&person("Zoe", "", None, ""), &person("Zoë", "Adams", date(1990, 1, 1), "")));
        assert_eq!(
            person_keys(&person("Zoë", "Łukasz", date(1990, 1, 1), ""), KeySource::Person),
            person_keys(&person("ZOE", "lukasz", date(1990, 1, 1), ""), KeySource::Person)
        );
    }

    #[test]
    fn nicknames_share_a_key() {
        let stored = person("William", "Turner", date(1970, 3, 4), "N16 7AB");
        let query = person("Bill", "Turner", None, "");
        assert!(query_keys(&query).iter().any(|k| k.as_str() == "nk:william|TRNR"));
        assert!(shares_key(&query, &stored));
        // With a wrong date of birth too.
        assert!(shares_key(&person("Bill", "Turner", date(1971, 3, 4), ""), &stored));
    }

    #[test]
    fn a_forename_surname_swap_shares_a_key() {
        let stored = person("John", "Smith", date(1980, 1, 2), "E8 1DY");
        assert!(shares_key(&person("Smith", "John", None, ""), &stored));
        assert!(shares_key(&person("Smith", "John", date(1980, 1, 2), ""), &stored));
        assert!(shares_key(&person("Smith", "John", date(1981, 1, 2), ""), &stored));
    }

    #[test]
    fn hyphenated_surnames_share_a_key_with_each_part() {
        let double = person("Aisha", "Ali-Khan", date(1990, 1, 1), "");
        let single = person("Aisha", "Khan", date(1990, 1, 1), "");
        assert!(shares_key(&person("", "Ali-Khan", None, ""), &double));
        assert!(shares_key(&person("", "Ali-Khan", None, ""), &single));
        assert!(shares_key(&person("", "Khan", None, ""), &double));
        assert!(shares_key(&person("", "Alikhan", None, ""), &double));
        assert!(shares_key(&person("Aisha", "Khan", date(1990, 1, 1), ""), &double));
    }

    #[test]
    fn a_day_month_swapped_date_of_birth_shares_a_key() {
        let stored = person("Ayse", "Yilmaz", date(1985, 3, 11), "");
        let query = MatchProfile { date_of_birth: date(1985, 11, 3), ..MatchProfile::default() };
        assert_eq!(keys(&query_keys(&query)), ["db:1985-11-03", "db:1985-03-11"]);
        assert!(shares_key(&query, &stored));
    }

    #[test]
    fn postcodes_share_a_key_with_or_without_the_space() {
        let stored = person("John", "Smith", date(1980, 1, 2), "E8 1DY");
        let query = MatchProfile { postcodes: vec!["e81dy".into()], ..MatchProfile::default() };
        assert!(shares_key(&query, &stored));
    }

    #[test]
    fn prefixes_of_two_or_more_letters_share_a_key() {
        let stored = person("Thandiwe", "Kimakhe", date(1990, 1, 1), "");
        for q in ["Ki", "Kim", "Kima", "Kimak", "KIMAKHE"] {
            assert!(shares_key(&person("", q, None, ""), &stored), "{q}");
        }
        assert!(shares_key(&person("Th", "", None, ""), &stored));
        assert!(!shares_key(&person("", "K", None, ""), &stored));
    }

    #[test]
    fn a_query_with_a_date_of_birth_skips_the_broad_name_keys() {
        let q = query_keys(&person("John", "Smith", date(1980, 1, 2), ""));
        assert!(q.iter().all(|k| !matches!(k.namespace(), "sn" | "sx" | "fx")), "{:?}", keys(&q));
        let q = query_keys(&person("John", "Smith", None, ""));
        assert!(q.iter().any(|k| k.namespace() == "sn"));
    }

    #[test]
    fn free_text_finds_names_postcodes_ninos_and_dates() {
        let k = free_text_keys("Mr Smith E8 1DY ab123456c 02/01/1980");
        for expected in ["ni:AB123456C", "db:1980-01-02", "db:1980-02-01", "pc:E81DY", "sn:SM0", "sx:smit", "fx:smit"] {
            assert!(keys(&k).contains(&expected), "{expected} not in {:?}", keys(&k));
        }
        assert!(!keys(&k).iter().any(|key| key.contains("mr")));
    }

    #[test]
    fn the_dedup_key_uses_the_canonical_forename_and_needs_every_part() {
        let a = dedup_key(&person("Bill", "Turner", date(1970, 3, 4), "E8 1DY"));
        let b = dedup_key(&person("WILLIAM", "turner", date(1970, 3, 4), "N16 7AB"));
        assert_eq!(a.as_deref(), Some("william|turner|1970-03-04"));
        assert_eq!(a, b);
        assert_ne!(a, dedup_key(&person("Ben", "Turner", date(1970, 3, 4), "")));
        assert_eq!(dedup_key(&person("Bill", "Turner", None, "")), None);
        assert_eq!(dedup_key(&person("", "Turner", date(1970, 3, 4), "")), None);
    }
}
