//! Phonetic codes: Double Metaphone (Lawrence Philips, via `rphonetic`), primary and alternate codes of four
//! characters.
//!
//! Double Metaphone is used rather than Soundex because it encodes sounds, not letters, across English,
//! Germanic, Slavic, Romance and Asian spellings (`Smith`/`Smyth`/`Schmidt` share `SM0`/`XMT`), and its
//! alternate code covers the second common pronunciation. Input is folded first ([`super::normalise::fold`]),
//! so accents never change a code. Codes are what blocking keys and the `phonetic` comparison level use.

use std::sync::LazyLock;

use rphonetic::DoubleMetaphone;

use super::normalise;

static ENCODER: LazyLock<DoubleMetaphone> = LazyLock::new(DoubleMetaphone::default);

/// The Double Metaphone codes of one word.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct PhoneticCodes {
    /// The primary code (`SM0` for Smith); empty for a word without letters.
    pub primary: String,
    /// The alternate code when it differs from the primary one (`XMT` for Smith).
    pub alternate: Option<String>,
}

impl std::fmt::Debug for PhoneticCodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A code reveals little, but it is derived from a name: keep it out of logs like the name.
        f.write_str("PhoneticCodes(<redacted>)")
    }
}

impl PhoneticCodes {
    /// The primary code then the alternate one, if any (never empty codes).
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.primary.as_str()).chain(self.alternate.as_deref()).filter(|c| !c.is_empty())
    }

    /// True when any code of `self` equals any code of `other` (primary–primary, primary–alternate …).
    #[must_use]
    pub fn shares_code_with(&self, other: &Self) -> bool {
        self.iter().any(|a| other.iter().any(|b| a == b))
    }

    /// True when the word had no letters to encode.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.primary.is_empty()
    }
}

/// The Double Metaphone codes of a word (folded first: `Zoë` and `Zoe` have the same codes). Only the letters
/// are encoded; a word without letters has empty codes.
///
/// ```
/// use person_core::matching::phonetic::codes;
/// assert_eq!(codes("Smith").primary, "SM0");
/// assert!(codes("Smyth").shares_code_with(&codes("Smith")));
/// ```
#[must_use]
pub fn codes(word: &str) -> PhoneticCodes {
    let letters: String = normalise::fold(word).chars().filter(char::is_ascii_alphabetic).collect();
    codes_of_folded(&letters)
}

/// [`codes`] of a word that is already folded to lower-case ASCII letters (skips folding again).
#[must_use]
pub fn codes_of_folded(letters: &str) -> PhoneticCodes {
    if letters.is_empty() || !letters.bytes().all(|b| b.is_ascii_alphabetic()) {
        // The encoder indexes bytes: only ever give it ASCII letters.
        return PhoneticCodes::default();
    }
    let result = ENCODER.double_metaphone(letters);
    let primary = result.primary();
    let alternate = result.alternate();
    let alternate = (!alternate.is_empty() && alternate != primary).then_some(alternate);
    PhoneticCodes { primary, alternate }
}

/// True when two words share a Double Metaphone code.
#[must_use]
pub fn sounds_alike(a: &str, b: &str) -> bool {
    let (a, b) = (codes(a), codes(b));
    !a.is_empty() && a.shares_code_with(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spelling_variants_share_a_code() {
        // (Siobhan / Shivaun, SPN / XFN, and Sean / Shaun, SN / XN, do not: the given-name table relates them.)
        for (a, b) in [
            ("Smith", "Smyth"),
            ("Smith", "Schmidt"),
            ("Jon", "John"),
            ("Catherine", "Katherine"),
            ("Stephen", "Steven"),
            ("Mohammed", "Muhammad"),
            ("Thomson", "Tomson"),
        ] {
            assert!(sounds_alike(a, b), "{a} / {b}: {:?} {:?}", codes(a).primary, codes(b).primary);
        }
    }

    #[test]
    fn accents_and_case_do_not_change_codes() {
        assert_eq!(codes("Zoë"), codes("zoe"));
        assert_eq!(codes("ŁUKASZ"), codes("Lukasz"));
        assert_eq!(codes("kimakhe"), codes("Kimakhe"));
    }

    #[test]
    fn different_names_do_not_share_a_code() {
        for (a, b) in [("Smith", "Jones"), ("John", "Mary"), ("Khan", "Patel"), ("Oliver", "Harry")] {
            assert!(!sounds_alike(a, b), "{a} / {b}");
        }
    }

    #[test]
    fn words_without_letters_have_empty_codes() {
        assert!(codes("123").is_empty());
        assert!(codes("").iter().next().is_none());
        assert!(!sounds_alike("", ""));
    }
}
