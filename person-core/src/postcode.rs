//! UK postcodes: recognising, normalising (`e81dy` → `E8 1DY`) and finding one inside a free-text address.
//!
//! The grammar is the Royal Mail one: an outward code of 2–4 characters (`A9`, `A99`, `AA9`, `AA99`, `A9A`,
//! `AA9A`) and an inward code `9AA`. Matching (district / sector levels) builds on the normalised form.

/// Normalises a UK postcode: upper case, one space before the inward code.
///
/// Returns `None` when the text is not a postcode.
#[must_use]
pub fn normalise(raw: &str) -> Option<String> {
    let compact: String = raw.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_uppercase();
    if !(5..=7).contains(&compact.len()) || !compact.is_ascii() {
        return None;
    }
    let (outward, inward) = compact.split_at(compact.len() - 3);
    (is_outward(outward) && is_inward(inward)).then(|| format!("{outward} {inward}"))
}

/// Finds the last postcode in a free-text address (`"1 Mare Street, London E8 1DY"` → `E8 1DY`).
#[must_use]
pub fn find_in_address(address: &str) -> Option<String> {
    let tokens: Vec<&str> = address.split(|c: char| c.is_whitespace() || c == ',').filter(|t| !t.is_empty()).collect();
    // Prefer "outward inward" written as two tokens, then a single token, scanning from the end.
    for i in (0..tokens.len()).rev() {
        if i > 0
            && let Some(found) = normalise(&format!("{}{}", tokens[i - 1], tokens[i]))
            && tokens[i].len() == 3
        {
            return Some(found);
        }
        if let Some(found) = normalise(tokens[i]) {
            return Some(found);
        }
    }
    None
}

fn is_inward(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 3 && b[0].is_ascii_digit() && b[1].is_ascii_alphabetic() && b[2].is_ascii_alphabetic()
}

fn is_outward(s: &str) -> bool {
    let shape: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_digit() {
                '9'
            } else if c.is_ascii_alphabetic() {
                'A'
            } else {
                '?'
            }
        })
        .collect();
    matches!(shape.as_str(), "A9" | "A99" | "AA9" | "AA99" | "A9A" | "AA9A")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postcodes_are_normalised_with_or_without_space() {
        assert_eq!(normalise("e81dy").as_deref(), Some("E8 1DY"));
        assert_eq!(normalise("E8 1DY").as_deref(), Some("E8 1DY"));
        assert_eq!(normalise(" n16 7ab ").as_deref(), Some("N16 7AB"));
        assert_eq!(normalise("EC1A1BB").as_deref(), Some("EC1A 1BB"));
        assert_eq!(normalise("W1A 0AX").as_deref(), Some("W1A 0AX"));
    }

    #[test]
    fn non_postcodes_are_refused() {
        for bad in ["", "12345", "HELLO", "E8 1D", "E8 1DYY", "8E 1DY"] {
            assert_eq!(normalise(bad), None, "{bad}");
        }
    }

    #[test]
    fn postcode_is_found_at_the_end_of_an_address() {
        assert_eq!(find_in_address("1 Mare Street, London E8 1DY").as_deref(), Some("E8 1DY"));
        assert_eq!(find_in_address("Flat 2, 10 Church St, N167AB").as_deref(), Some("N16 7AB"));
        assert_eq!(find_in_address("10 Downing Street"), None);
    }
}
