//! A [`MatchProfile`] normalised once: folded names with their parts and phonetic codes, normalised postcodes
//! and NI number. Keys and scores are computed from this form; preparing a query once and scoring many
//! candidates against it ([`super::score::score_prepared`]) avoids folding the query again for each candidate.

use chrono::NaiveDate;

use super::MatchProfile;
use super::normalise::{self, NormalisedName};
use super::phonetic::{self, PhoneticCodes};

/// One name field, normalised, with its phonetic codes.
#[derive(Clone, PartialEq, Eq)]
pub struct PreparedName {
    /// The folded name: joined form and parts.
    pub(super) name: NormalisedName,
    /// Double Metaphone codes of the joined form.
    pub(super) codes: PhoneticCodes,
    /// Each significant part (≥ 2 letters, not a particle) with its codes, in order.
    pub(super) parts: Vec<(String, PhoneticCodes)>,
}

impl PreparedName {
    /// Normalises a name field; `None` when it has no letters.
    #[must_use]
    pub fn new(raw: &str) -> Option<Self> {
        let name = normalise::name(raw);
        if name.is_empty() {
            return None;
        }
        let codes = phonetic::codes_of_folded(&name.joined);
        let parts = if name.parts.len() > 1 {
            name.significant_parts().map(|p| (p.to_owned(), phonetic::codes_of_folded(p))).collect()
        } else {
            Vec::new()
        };
        Some(Self { name, codes, parts })
    }

    /// The joined folded form (`alikhan`).
    #[must_use]
    pub fn joined(&self) -> &str {
        &self.name.joined
    }

    /// Every phonetic code of the name: of the joined form, then of each significant part.
    pub(super) fn all_codes(&self) -> impl Iterator<Item = &str> {
        self.codes.iter().chain(self.parts.iter().flat_map(|(_, c)| c.iter()))
    }

    /// The joined form and every significant part (`alikhan`, `ali`, `khan`).
    pub(super) fn forms(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.joined()).chain(self.parts.iter().map(|(p, _)| p.as_str()))
    }
}

impl std::fmt::Debug for PreparedName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PreparedName(<redacted>)")
    }
}

/// A profile ready for keys and scoring.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct PreparedProfile {
    /// The first name, then the preferred first name when it differs.
    pub(super) first_names: Vec<PreparedName>,
    /// Each word of the middle name(s).
    pub(super) middle_names: Vec<PreparedName>,
    /// The surname.
    pub(super) surname: Option<PreparedName>,
    /// Date of birth.
    pub(super) date_of_birth: Option<NaiveDate>,
    /// Normalised postcodes (`E8 1DY`), from the profile's postcodes or, failing those, its addresses.
    pub(super) postcodes: Vec<String>,
    /// Canonical NI number (`AB123456C`).
    pub(super) nino: Option<String>,
}

impl std::fmt::Debug for PreparedProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PreparedProfile(<redacted>)")
    }
}

impl PreparedProfile {
    /// Normalises a profile. Postcodes and the NI number are normalised again (any case and spacing); a
    /// postcode that is not one is kept compacted and upper-cased so that it still compares equal to itself.
    #[must_use]
    pub fn new(profile: &MatchProfile) -> Self {
        let mut first_names = Vec::new();
        for raw in [&profile.first_name, &profile.preferred_first_name].into_iter().flatten() {
            if let Some(name) = PreparedName::new(raw)
                && !first_names.iter().any(|n: &PreparedName| n.joined() == name.joined())
            {
                first_names.push(name);
            }
        }
        let middle_names =
            profile.middle_name.iter().flat_map(|m| m.split_whitespace()).filter_map(PreparedName::new).collect();
        let mut postcodes: Vec<String> = Vec::new();
        let derived = profile.addresses.iter().filter_map(|a| crate::postcode::find_in_address(a));
        let given = profile.postcodes.iter().map(|p| {
            crate::postcode::normalise(p)
                .unwrap_or_else(|| p.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_uppercase())
        });
        let all: Vec<String> = if profile.postcodes.is_empty() { derived.collect() } else { given.collect() };
        for pc in all {
            if !pc.is_empty() && !postcodes.contains(&pc) {
                postcodes.push(pc);
            }
        }
        let nino = profile.nino.as_deref().and_then(|n| {
            crate::equality::normalise_nino(n).or_else(|| {
                let compact: String = n.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>();
                (!compact.is_empty()).then(|| compact.to_ascii_uppercase())
            })
        });
        Self {
            first_names,
            middle_names,
            surname: profile.surname.as_deref().and_then(PreparedName::new),
            date_of_birth: profile.date_of_birth,
            postcodes,
            nino,
        }
    }

    /// The first name (not the preferred one), if any.
    pub(super) fn first_name(&self) -> Option<&PreparedName> {
        self.first_names.first()
    }
}

/// A postcode's district (`E8`) and sector (`E8 1`); `None` for a value that is not a normalised postcode.
pub(super) fn postcode_levels(postcode: &str) -> Option<(&str, &str)> {
    let (outward, inward) = postcode.split_once(' ')?;
    if inward.len() != 3 {
        return None;
    }
    Some((outward, postcode.get(..outward.len() + 2)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_normalise_postcodes_ninos_and_names() {
        let profile = MatchProfile {
            first_name: Some("Zoë".into()),
            preferred_first_name: Some("zoe".into()),
            surname: Some("Ali-Khan".into()),
            postcodes: vec!["e81dy".into()],
            nino: Some("ab 12 34 56 c".into()),
            ..MatchProfile::default()
        };
        let p = PreparedProfile::new(&profile);
        assert_eq!(p.first_names.len(), 1);
        assert_eq!(p.first_names[0].joined(), "zoe");
        assert_eq!(p.surname.as_ref().map(|s| s.forms().collect::<Vec<_>>()), Some(vec!["alikhan", "ali", "khan"]));
        assert_eq!(p.postcodes, ["E8 1DY"]);
        assert_eq!(p.nino.as_deref(), Some("AB123456C"));
    }

    #[test]
    fn postcodes_come_from_addresses_when_none_are_given() {
        let profile =
            MatchProfile { addresses: vec!["1 Mare Street, London E8 1DY".into()], ..MatchProfile::default() };
        assert_eq!(PreparedProfile::new(&profile).postcodes, ["E8 1DY"]);
    }

    #[test]
    fn postcode_levels_are_district_and_sector() {
        assert_eq!(postcode_levels("E8 1DY"), Some(("E8", "E8 1")));
        assert_eq!(postcode_levels("N16 7AB"), Some(("N16", "N16 7")));
        assert_eq!(postcode_levels("E81DY"), None);
    }
}
