//! Permissions: what a caller may do (SPEC §7), independent of how the caller proved who they are.
//!
//! Tokens carry groups; configuration maps groups to [`Permission`]s; the HTTP layer checks each endpoint's
//! permission and the service checks the rules that depend on the data (a restricted person needs `admin`).

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One permission. The wire form is the string in SPEC §7 (`persons:read`, `extended:social-care:write` …).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Permission {
    /// Read persons, their history.
    PersonsRead,
    /// Create and change persons.
    PersonsWrite,
    /// Soft-delete persons.
    PersonsDelete,
    /// Merge duplicates.
    PersonsMerge,
    /// Read equality data (and search by NI number).
    EqualityRead,
    /// Write equality data.
    EqualityWrite,
    /// Read one service area's extended data.
    ExtendedRead(ServiceArea),
    /// Write one service area's extended data.
    ExtendedWrite(ServiceArea),
    /// Add and remove cross-references.
    ReferencesWrite,
    /// Read the reporting tables.
    ReportingRead,
    /// Read the event feed.
    EventsRead,
    /// Read access logs and subject-access exports.
    AuditRead,
    /// Everything, including restricted persons and restriction itself.
    Admin,
}

impl Permission {
    /// Every fixed permission (the per-area ones are not enumerable).
    pub const FIXED: [Permission; 11] = [
        Self::PersonsRead,
        Self::PersonsWrite,
        Self::PersonsDelete,
        Self::PersonsMerge,
        Self::EqualityRead,
        Self::EqualityWrite,
        Self::ReferencesWrite,
        Self::ReportingRead,
        Self::EventsRead,
        Self::AuditRead,
        Self::Admin,
    ];
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PersonsRead => f.write_str("persons:read"),
            Self::PersonsWrite => f.write_str("persons:write"),
            Self::PersonsDelete => f.write_str("persons:delete"),
            Self::PersonsMerge => f.write_str("persons:merge"),
            Self::EqualityRead => f.write_str("equality:read"),
            Self::EqualityWrite => f.write_str("equality:write"),
            Self::ExtendedRead(area) => write!(f, "extended:{area}:read"),
            Self::ExtendedWrite(area) => write!(f, "extended:{area}:write"),
            Self::ReferencesWrite => f.write_str("references:write"),
            Self::ReportingRead => f.write_str("reporting:read"),
            Self::EventsRead => f.write_str("events:read"),
            Self::AuditRead => f.write_str("audit:read"),
            Self::Admin => f.write_str("admin"),
        }
    }
}

impl fmt::Debug for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The text is not a permission.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown permission `{0}`: expected e.g. persons:read, equality:write, extended:<area>:read, admin")]
pub struct UnknownPermission(pub String);

impl FromStr for Permission {
    type Err = UnknownPermission;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(fixed) = Self::FIXED.iter().find(|p| p.to_string() == s) {
            return Ok(fixed.clone());
        }
        let unknown = || UnknownPermission(s.to_owned());
        let rest = s.strip_prefix("extended:").ok_or_else(unknown)?;
        let (area, access) = rest.rsplit_once(':').ok_or_else(unknown)?;
        let area = ServiceArea::parse(area).map_err(|_| unknown())?;
        match access {
            "read" => Ok(Self::ExtendedRead(area)),
            "write" => Ok(Self::ExtendedWrite(area)),
            _ => Err(unknown()),
        }
    }
}

impl TryFrom<String> for Permission {
    type Error = UnknownPermission;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<Permission> for String {
    fn from(value: Permission) -> Self {
        value.to_string()
    }
}

/// A service area owning an extended-data document (`social-care`, `housing-needs` …): 1–64 characters of
/// lowercase ASCII letters, digits and single hyphens, starting with a letter. The rule also keeps area names
/// safe in paths, keys and permission strings (no `/`, `.`, `:`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String))]
pub struct ServiceArea(String);

/// The text is not a valid service area name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an area name is 1 to 64 lowercase letters, digits and single hyphens, starting with a letter")]
pub struct InvalidServiceArea;

impl ServiceArea {
    /// Parses an area name.
    ///
    /// # Errors
    /// [`InvalidServiceArea`] when it breaks the naming rule.
    pub fn parse(text: &str) -> Result<Self, InvalidServiceArea> {
        let valid = (1..=64).contains(&text.len())
            && text.starts_with(|c: char| c.is_ascii_lowercase())
            && !text.ends_with('-')
            && !text.contains("--")
            && text.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if valid { Ok(Self(text.to_owned())) } else { Err(InvalidServiceArea) }
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ServiceArea {
    type Error = InvalidServiceArea;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<ServiceArea> for String {
    fn from(value: ServiceArea) -> Self {
        value.0
    }
}

impl fmt::Display for ServiceArea {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ServiceArea {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServiceArea({})", self.0)
    }
}

/// The permissions a caller holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permissions(BTreeSet<Permission>);

impl Permissions {
    /// No permissions at all.
    #[must_use]
    pub fn none() -> Self {
        Self::default()
    }

    /// Every permission (`admin` implies all others).
    #[must_use]
    pub fn all() -> Self {
        Self(std::iter::once(Permission::Admin).collect())
    }

    /// Whether `permission` is held; `admin` holds every permission.
    #[must_use]
    pub fn allows(&self, permission: &Permission) -> bool {
        self.0.contains(&Permission::Admin) || self.0.contains(permission)
    }

    /// Whether `admin` is held.
    #[must_use]
    pub fn is_admin(&self) -> bool {
        self.0.contains(&Permission::Admin)
    }

    /// The permissions held, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &Permission> {
        self.0.iter()
    }
}

impl FromIterator<Permission> for Permissions {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl Extend<Permission> for Permissions {
    fn extend<I: IntoIterator<Item = Permission>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_round_trip_through_their_wire_form() {
        for text in ["persons:read", "equality:write", "extended:social-care:read", "extended:a1:write", "admin"] {
            let permission: Permission = text.parse().unwrap();
            assert_eq!(permission.to_string(), text);
        }
    }

    #[test]
    fn unknown_permissions_and_bad_areas_are_refused() {
        for text in ["persons:admin", "extended:Social:read", "extended:a/b:read", "extended:x:delete", "", "root"] {
            assert!(text.parse::<Permission>().is_err(), "{text}");
        }
    }

    #[test]
    fn area_names_are_lowercase_digits_and_single_hyphens() {
        assert!(ServiceArea::parse("social-care").is_ok());
        assert!(ServiceArea::parse("housing2").is_ok());
        for bad in ["", "-care", "care-", "so--cial", "Social", "../etc", "a.b", "a:b", &"a".repeat(65)] {
            assert!(ServiceArea::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn admin_allows_everything_and_others_only_what_they_hold() {
        let reader: Permissions = [Permission::PersonsRead].into_iter().collect();
        assert!(reader.allows(&Permission::PersonsRead));
        assert!(!reader.allows(&Permission::EqualityRead));
        let area = ServiceArea::parse("social-care").unwrap();
        assert!(Permissions::all().allows(&Permission::ExtendedWrite(area)));
    }
}
