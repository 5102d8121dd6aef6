//! `Name`: one validated part of a person's name (first, middle, surname, preferred …).
//!
//! Names are free Unicode: apostrophes, hyphens, spaces and diacritics are all legitimate (O'Neill, Anne-Marie,
//! Zoë, Łukasz, 王秀英). What we refuse is what cannot be a name: control characters, markup (`W42`), blanks and
//! absurd lengths. The stored form is trimmed and in Unicode NFC so that "Zoë" typed on two keyboards is one
//! value. Length is counted in graphemes, because that is what a person counts.

use std::fmt;

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;
use unicode_segmentation::UnicodeSegmentation;

/// Longest name part accepted, in graphemes.
pub const MAX_NAME_GRAPHEMES: usize = 100;

/// A validated name part: trimmed, NFC, 1..=100 graphemes, no control characters, no markup.
///
/// `Debug` prints `<redacted>` so a name can never reach a log through `{:?}`.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Name(String);

/// Why a string is not a valid name part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Empty or only white space.
    #[error("must not be blank")]
    Blank,
    /// More than [`MAX_NAME_GRAPHEMES`] graphemes.
    #[error("must be at most {MAX_NAME_GRAPHEMES} characters")]
    TooLong,
    /// Contains a control character (including new lines and tabs).
    #[error("must not contain control characters")]
    ControlCharacter,
    /// Contains something that looks like markup or an HTML entity (Hackney's W42).
    #[error("contains potentially dangerous characters")]
    Dangerous,
}

impl Name {
    /// Parses a name part from user input.
    ///
    /// # Errors
    /// Returns the first [`NameError`] that applies.
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        let normalised: String = raw.trim().nfc().collect();
        if normalised.is_empty() {
            return Err(NameError::Blank);
        }
        if normalised.chars().any(char::is_control) {
            return Err(NameError::ControlCharacter);
        }
        if is_potentially_dangerous(&normalised) {
            return Err(NameError::Dangerous);
        }
        if normalised.graphemes(true).count() > MAX_NAME_GRAPHEMES {
            return Err(NameError::TooLong);
        }
        Ok(Self(normalised))
    }

    /// The stored (trimmed, NFC) text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Name {
    type Error = NameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Name> for String {
    fn from(value: Name) -> Self {
        value.0
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Name(<redacted>)")
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Hackney's W42 rule: a `<` followed by a letter, `!`, `/` or `?` (the start of a tag, comment or processing
/// instruction), or `&#` (a numeric character reference).
#[must_use]
pub fn is_potentially_dangerous(text: &str) -> bool {
    if text.contains("&#") {
        return true;
    }
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '<'
            && let Some(&next) = chars.peek()
            && (next.is_alphabetic() || matches!(next, '!' | '/' | '?'))
        {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_every_community_are_accepted() {
        for name in ["O'Neill", "Anne-Marie", "Zoë", "Łukasz", "王秀英", "de la Cruz", "Nguyễn"] {
            assert_eq!(Name::parse(name).map(|n| n.as_str().to_owned()), Ok(name.to_owned()));
        }
    }

    #[test]
    fn names_are_trimmed_and_stored_in_nfc() {
        let decomposed = "  Zoe\u{0308} ";
        let name = Name::parse(decomposed).unwrap();
        assert_eq!(name.as_str(), "Zo\u{00eb}");
    }

    #[test]
    fn blank_names_are_refused() {
        assert_eq!(Name::parse("   "), Err(NameError::Blank));
        assert_eq!(Name::parse(""), Err(NameError::Blank));
    }

    #[test]
    fn control_characters_are_refused() {
        assert_eq!(Name::parse("Ann\u{0007}"), Err(NameError::ControlCharacter));
        assert_eq!(Name::parse("Ann\nMarie"), Err(NameError::ControlCharacter));
    }

    #[test]
    fn markup_is_refused_with_w42() {
        for bad in ["<script>", "a<b", "<!--", "</x", "<?php", "&#60;"] {
            assert_eq!(Name::parse(bad), Err(NameError::Dangerous), "{bad}");
        }
        assert!(Name::parse("a < b").is_ok());
        assert!(Name::parse("Tom & Jerry").is_ok());
    }

    #[test]
    fn length_is_counted_in_graphemes() {
        let hundred_accented: String = "e\u{0301}".repeat(100);
        assert!(Name::parse(&hundred_accented).is_ok());
        let too_long = "a".repeat(101);
        assert_eq!(Name::parse(&too_long), Err(NameError::TooLong));
    }

    #[test]
    fn debug_output_is_redacted() {
        let name = Name::parse("Secret").unwrap();
        assert!(!format!("{name:?}").contains("Secret"));
    }
}
