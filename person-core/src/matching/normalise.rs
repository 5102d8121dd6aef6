//! Text normalisation for matching: one folded, comparable form of a name or a free-text query.
//!
//! Folding is: Unicode NFKD with combining marks dropped, then transliteration to ASCII (`deunicode`), so that
//! letters without a decomposition fold too (`ł`→`l`, `ø`→`o`, `æ`→`ae`, `ß`→`ss`; `Łukasz`→`lukasz`,
//! `Zoë`→`zoe`), then lower case. Apostrophes join (`O'Neill`→`oneill`), hyphens separate the parts of a
//! hyphenated or double-barrelled name and every other punctuation mark is a space; runs of spaces collapse.
//!
//! Nothing here knows about persons, keys or stores: the functions map text to text and are pure.

use chrono::NaiveDate;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Titles and honorifics stripped from free text (they are never part of a name a person is found by).
pub const TITLES: &[&str] = &[
    "mr",
    "mrs",
    "ms",
    "miss",
    "mx",
    "master",
    "dr",
    "doctor",
    "prof",
    "professor",
    "rev",
    "revd",
    "reverend",
    "fr",
    "father",
    "sr",
    "sister",
    "sir",
    "dame",
    "lord",
    "lady",
    "rabbi",
    "imam",
    "sheikh",
    "pastor",
    "cllr",
];

/// Surname particles that are not searched on their own (`de la Cruz` is found by `cruz`, `Al-Hassan` by
/// `hassan`): as a key of their own they would match a large part of the register.
pub const PARTICLES: &[&str] = &[
    "al", "el", "ul", "de", "da", "di", "du", "del", "della", "der", "den", "la", "le", "van", "von", "bin", "bint",
    "ben", "ibn", "abu", "ap", "mac", "mc", "o", "st",
];

/// A name in folded form: the joined form (all parts concatenated) and each part.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct NormalisedName {
    /// All parts joined without separators (`Ali-Khan` → `alikhan`, `de la Cruz` → `delacruz`).
    pub joined: String,
    /// The parts in order (`Ali-Khan` → `ali`, `khan`).
    pub parts: Vec<String>,
}

impl std::fmt::Debug for NormalisedName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NormalisedName(<redacted>)")
    }
}

impl NormalisedName {
    /// The parts that identify the name on their own: at least two letters and not a particle.
    pub fn significant_parts(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().map(String::as_str).filter(|p| p.len() >= 2 && !PARTICLES.contains(p))
    }

    /// True when the name had no letters at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.joined.is_empty()
    }
}

/// Folds text: NFKD without combining marks, transliterated to ASCII, lower case, apostrophes removed, hyphens
/// kept between words, any other non-alphanumeric character a single space, trimmed.
///
/// ```
/// use person_core::matching::normalise::fold;
/// assert_eq!(fold("  Łukasz  O’Brien-Żak "), "lukasz obrien-zak");
/// assert_eq!(fold("Zoë, Søren & Æsa"), "zoe soren aesa");
/// ```
#[must_use]
pub fn fold(text: &str) -> String {
    let decomposed: String = text.nfkd().filter(|c| !is_combining_mark(*c)).collect();
    let ascii = if decomposed.is_ascii() { decomposed } else { deunicode::deunicode(&decomposed) };
    let mut out = String::with_capacity(ascii.len());
    // What separates the previous word from the next one: nothing yet, a space or a hyphen.
    let mut pending: Option<char> = None;
    for c in ascii.chars() {
        if c.is_ascii_alphanumeric() {
            if let Some(sep) = pending.take()
                && !out.is_empty()
            {
                out.push(sep);
            }
            out.push(c.to_ascii_lowercase());
        } else if matches!(c, '\'' | '`' | '^' | '"') {
            // Apostrophes join: O'Neill and ONeill are one name. (deunicode maps ’ and ‘ to ').
        } else if c == '-' {
            if pending.is_none() {
                pending = Some('-');
            }
        } else {
            pending = Some(' ');
        }
    }
    out
}

/// Normalises one name field (first name, surname …): folded, digits dropped, split into parts on spaces and
/// hyphens, with the joined form kept.
///
/// ```
/// use person_core::matching::normalise::name;
/// let n = name("Ali-Khan");
/// assert_eq!(n.joined, "alikhan");
/// assert_eq!(n.parts, ["ali", "khan"]);
/// ```
#[must_use]
pub fn name(raw: &str) -> NormalisedName {
    let folded = fold(raw);
    let parts: Vec<String> = folded
        .split([' ', '-'])
        .map(|p| p.chars().filter(char::is_ascii_alphabetic).collect::<String>())
        .filter(|p| !p.is_empty())
        .collect();
    NormalisedName { joined: parts.concat(), parts }
}

/// True for a title or honorific (`Mr`, `dr.`, `Revd` …), compared folded.
#[must_use]
pub fn is_title(word: &str) -> bool {
    let folded = fold(word);
    TITLES.contains(&folded.as_str())
}

/// Tokenises free text (the search `q`): folded words with titles removed. A hyphenated word yields its parts
/// and its joined form (`Ali-Khan` → `ali`, `khan`, `alikhan`).
///
/// ```
/// use person_core::matching::normalise::tokenise;
/// assert_eq!(tokenise("Mrs Zoë Ali-Khan, E8"), ["zoe", "ali", "khan", "alikhan", "e8"]);
/// ```
#[must_use]
pub fn tokenise(text: &str) -> Vec<String> {
    let folded = fold(text);
    let mut tokens = Vec::new();
    for word in folded.split(' ').filter(|w| !w.is_empty()) {
        if TITLES.contains(&word) {
            continue;
        }
        if word.contains('-') {
            let parts: Vec<&str> = word.split('-').filter(|p| !p.is_empty()).collect();
            tokens.extend(parts.iter().map(|p| (*p).to_owned()));
            tokens.push(parts.concat());
        } else {
            tokens.push(word.to_owned());
        }
    }
    tokens
}

/// Removes titles from free text and returns the rest folded (`"Dr. John Smith"` → `"john smith"`).
#[must_use]
pub fn strip_titles(text: &str) -> String {
    fold(text).split(' ').filter(|w| !w.is_empty() && !TITLES.contains(w)).collect::<Vec<_>>().join(" ")
}

/// What a free-text query (`q`) contains: postcodes, NI numbers and dates recognised in it, and the remaining
/// name words (folded, titles removed).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct FreeText {
    /// Name-like words, folded (`zoe`, `alikhan` …); hyphenated words also give their parts.
    pub names: Vec<String>,
    /// Normalised postcodes (`E8 1DY`), written with or without the space.
    pub postcodes: Vec<String>,
    /// Canonical NI numbers (`AB123456C`), written in any spacing.
    pub ninos: Vec<String>,
    /// Dates (`1990-05-17`, `17/05/1990`, `17.05.1990`).
    pub dates: Vec<NaiveDate>,
}

impl std::fmt::Debug for FreeText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FreeText(<redacted>)")
    }
}

impl FreeText {
    /// Reads a free-text query. Postcodes and NI numbers may span adjacent words (`E8 1DY`, `AB 12 34 56 C`);
    /// words used by one of them are not names. Pure numbers (house numbers) are dropped.
    #[must_use]
    pub fn parse(text: &str) -> Self {
        let raw: Vec<&str> =
            text.split(|c: char| c.is_whitespace() || c == ',' || c == ';').filter(|w| !w.is_empty()).collect();
        let mut used = vec![false; raw.len()];
        let mut found = Self::default();
        // NI numbers first (longest spans), then postcodes, then dates.
        for len in (1..=5).rev() {
            for start in 0..raw.len().saturating_sub(len - 1) {
                if used[start..start + len].iter().any(|u| *u) {
                    continue;
                }
                let joined: String = raw[start..start + len].concat();
                if let Some(nino) = crate::equality::normalise_nino(&joined) {
                    used[start..start + len].iter_mut().for_each(|u| *u = true);
                    found.ninos.push(nino);
                }
            }
        }
        for len in [2, 1] {
            for start in 0..raw.len().saturating_sub(len - 1) {
                if used[start..start + len].iter().any(|u| *u) {
                    continue;
                }
                let joined: String = raw[start..start + len].concat();
                // A two-word postcode has an inward code of exactly three characters.
                let shaped = len == 1 || raw[start + 1].len() == 3;
                if shaped && let Some(pc) = crate::postcode::normalise(&joined) {
                    used[start..start + len].iter_mut().for_each(|u| *u = true);
                    found.postcodes.push(pc);
                }
            }
        }
        for (i, word) in raw.iter().enumerate() {
            if used[i] {
                continue;
            }
            if let Some(date) = parse_date(word) {
                used[i] = true;
                found.dates.push(date);
            }
        }
        for (i, word) in raw.iter().enumerate() {
            if used[i] {
                continue;
            }
            found.names.extend(tokenise(word).into_iter().filter(|t| t.chars().any(|c| c.is_ascii_alphabetic())));
        }
        found
    }
}

const DATE_FORMATS: [&str; 4] = ["%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y", "%d-%m-%Y"];

/// Parses a date as written in a query: ISO `1990-05-17`, or British `17/05/1990`, `17.05.1990`, `17-05-1990`.
#[must_use]
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    DATE_FORMATS.iter().find_map(|f| NaiveDate::parse_from_str(text.trim(), f).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_without_a_decomposition_fold_too() {
        assert_eq!(fold("Łukasz"), "lukasz");
        assert_eq!(fold("Zoë"), "zoe");
        assert_eq!(fold("Zoe\u{0308}"), "zoe");
        assert_eq!(fold("Søren"), "soren");
        assert_eq!(fold("Æthelred"), "aethelred");
        assert_eq!(fold("Straße"), "strasse");
        assert_eq!(fold("Nguyễn"), "nguyen");
        assert_eq!(fold("Şahin Öztürk"), "sahin ozturk");
        assert_eq!(fold("Yılmaz"), "yilmaz");
        assert_eq!(fold("Siobhán Ó Briain"), "siobhan o briain");
    }

    #[test]
    fn case_and_compatibility_forms_fold() {
        assert_eq!(fold("KIMAKHE"), "kimakhe");
        assert_eq!(fold("ｋｉｍ"), "kim");
        assert_eq!(fold("ﬁona"), "fiona");
    }

    #[test]
    fn apostrophes_join_and_punctuation_separates() {
        assert_eq!(fold("O'Neill"), "oneill");
        assert_eq!(fold("O’Neill"), "oneill");
        assert_eq!(fold("Smith,  John."), "smith john");
        assert_eq!(fold("  -Anne--Marie- "), "anne-marie");
        assert_eq!(fold("Anne - Marie"), "anne marie");
    }

    #[test]
    fn hyphenated_names_split_into_parts_and_keep_the_joined_form() {
        let n = name("Ali-Khan");
        assert_eq!(n.joined, "alikhan");
        assert_eq!(n.parts, ["ali", "khan"]);
        let n = name("de la Cruz");
        assert_eq!(n.joined, "delacruz");
        assert_eq!(n.significant_parts().collect::<Vec<_>>(), ["cruz"]);
        let n = name("O'Neill-Łukasiewicz");
        assert_eq!(n.parts, ["oneill", "lukasiewicz"]);
        assert!(name("123 !").is_empty());
    }

    #[test]
    fn titles_are_stripped_from_free_text() {
        assert_eq!(strip_titles("Dr. John  Smith"), "john smith");
        assert_eq!(strip_titles("MRS zoë ali-khan"), "zoe ali-khan");
        assert!(is_title("Revd."));
        assert!(!is_title("Smith"));
        assert_eq!(tokenise("Mr Smith-Jones"), ["smith", "jones", "smithjones"]);
    }

    #[test]
    fn free_text_recognises_postcodes_ninos_dates_and_names() {
        let q = FreeText::parse("Mr John Smith 12 Mare St e8 1dy ab 12 34 56 c 17/05/1990");
        assert_eq!(q.names, ["john", "smith", "mare", "st"]);
        assert_eq!(q.postcodes, ["E8 1DY"]);
        assert_eq!(q.ninos, ["AB123456C"]);
        assert_eq!(q.dates, [NaiveDate::from_ymd_opt(1990, 5, 17).unwrap()]);
        let q = FreeText::parse("kimakhe N167AB");
        assert_eq!(q.names, ["kimakhe"]);
        assert_eq!(q.postcodes, ["N16 7AB"]);
    }

    #[test]
    fn dates_parse_in_iso_and_british_forms() {
        let d = NaiveDate::from_ymd_opt(1990, 5, 17);
        assert_eq!(parse_date("1990-05-17"), d);
        assert_eq!(parse_date("17/05/1990"), d);
        assert_eq!(parse_date("17.05.1990"), d);
        assert_eq!(parse_date("17-05-1990"), d);
        assert_eq!(parse_date("1990"), None);
    }
}
