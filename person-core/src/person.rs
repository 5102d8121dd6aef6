//! The Person resource as the domain holds it: identifiers, enums, tenure summaries and the stored record.
//!
//! Field names, enum values and date formats follow the Hackney contract (SPEC §2). Computed values
//! (`isAMinor`, tenure `isActive`, `links`) are not stored: they depend on "today" and on the caller, so they are
//! added by [`crate::api::PersonResponse`] when a person is shown.

pub mod name;

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use name::{Name, NameError};

/// The server-side identity of a person (a UUID; never nil).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = uuid::Uuid))]
#[serde(transparent)]
pub struct PersonId(Uuid);

impl PersonId {
    /// Wraps a UUID; the nil UUID is refused because Hackney clients treat it as "absent".
    #[must_use]
    pub fn new(id: Uuid) -> Option<Self> {
        (!id.is_nil()).then_some(Self(id))
    }

    /// Parses the textual form of a UUID.
    ///
    /// # Errors
    /// Returns [`InvalidPersonId`] when the text is not a UUID or is the nil UUID.
    pub fn parse(text: &str) -> Result<Self, InvalidPersonId> {
        Uuid::parse_str(text).ok().and_then(Self::new).ok_or(InvalidPersonId)
    }

    /// The UUID.
    #[must_use]
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for PersonId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// The text is not a person id (not a UUID, or the nil UUID).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a valid person id: expected a non-nil UUID")]
pub struct InvalidPersonId;

/// The human-friendly sequential reference of a person, allocated by the store (unique, never reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = i64))]
#[serde(transparent)]
pub struct PersonRef(pub i64);

/// A person's title (Hackney's enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[expect(missing_docs, reason = "the variants are the titles themselves")]
pub enum Title {
    Dr,
    Master,
    Miss,
    Mr,
    Mrs,
    Ms,
    Mx,
    Other,
    Rabbi,
    Reverend,
}

/// The roles a person has towards the council (Hackney's enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[expect(missing_docs, reason = "the variants are the roles themselves")]
pub enum PersonType {
    Tenant,
    HouseholdMember,
    Leaseholder,
    Freeholder,
    Occupant,
    HousingOfficer,
    HousingAreaManager,
}

impl Title {
    /// Every title, in declaration order.
    pub const ALL: [Self; 10] = [
        Self::Dr,
        Self::Master,
        Self::Miss,
        Self::Mr,
        Self::Mrs,
        Self::Ms,
        Self::Mx,
        Self::Other,
        Self::Rabbi,
        Self::Reverend,
    ];
}

impl PersonType {
    /// Every person type, in declaration order.
    pub const ALL: [Self; 7] = [
        Self::Tenant,
        Self::HouseholdMember,
        Self::Leaseholder,
        Self::Freeholder,
        Self::Occupant,
        Self::HousingOfficer,
        Self::HousingAreaManager,
    ];

    /// Staff roles: for these, `title` and `dateOfBirth` are optional (SPEC §4).
    #[must_use]
    pub fn is_staff(self) -> bool {
        matches!(self, Self::HousingOfficer | Self::HousingAreaManager)
    }
}

/// Hackney's legacy "no end date" sentinel for tenures.
pub const NO_END_SENTINEL: NaiveDate = match NaiveDate::from_ymd_opt(1900, 1, 1) {
    Some(date) => date,
    None => panic!("1900-01-01 is a valid date"),
};

/// A summary of one tenure the person holds or held, as stored (no computed fields).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenureSummary {
    /// The tenure's id in the tenure service (never nil).
    pub id: Uuid,
    /// The tenure type, e.g. "Secure".
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub tenure_type: Option<String>,
    /// Start of the tenure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<NaiveDate>,
    /// End of the tenure; `None` or the 1900-01-01 sentinel mean "no end".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<NaiveDate>,
    /// The property's full address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_full_address: Option<String>,
    /// The property's id in the asset service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_id: Option<String>,
    /// Unique property reference number (up to 12 digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uprn: Option<String>,
    /// Normalised UK postcode (`E8 1DY`), given or derived from the address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postcode: Option<String>,
    /// Rent account payment reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_reference: Option<String>,
    /// Legacy property reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property_reference: Option<String>,
}

impl TenureSummary {
    /// Active when there is no end date, the end date is the 1900-01-01 sentinel, or it is today or later.
    #[must_use]
    pub fn is_active(&self, today: NaiveDate) -> bool {
        match self.end_date {
            None => true,
            Some(end) => end == NO_END_SENTINEL || end >= today,
        }
    }
}

impl fmt::Debug for TenureSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Addresses are personal data; only identifiers are printed.
        f.debug_struct("TenureSummary").field("id", &self.id).finish_non_exhaustive()
    }
}

/// Orders tenures for display: active first, then `Secure` first, then the latest start first.
pub fn sort_tenures(tenures: &mut [TenureSummary], today: NaiveDate) {
    tenures.sort_by(|a, b| {
        b.is_active(today)
            .cmp(&a.is_active(today))
            .then_with(|| is_secure(b).cmp(&is_secure(a)))
            .then_with(|| b.start_date.cmp(&a.start_date))
    });
}

fn is_secure(tenure: &TenureSummary) -> bool {
    tenure.tenure_type.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("secure"))
}

/// Whether the record is live, soft-deleted, or merged into another person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum PersonStatus {
    /// A normal, visible record.
    #[default]
    Active,
    /// Soft-deleted: kept for history, reads answer 410, hidden from search.
    Deleted,
    /// Merged into another person: reads answer 308 to the survivor.
    Merged {
        /// The surviving person.
        #[serde(rename = "mergedInto")]
        into: PersonId,
    },
}

impl PersonStatus {
    /// True for a live record.
    #[must_use]
    pub fn is_active(&self) -> bool {
        matches!(self, Self::Active)
    }
}

/// A person as stored: every field of SPEC §2 except the computed ones.
///
/// Built only by [`crate::validate`] (for new values) and by stores (when reading back what they were given).
/// `Debug` prints identifiers only: names and dates of birth never reach a log.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Person {
    /// Server-assigned (or client-supplied on create) id.
    pub id: PersonId,
    /// Sequential human-friendly reference.
    pub person_ref: PersonRef,
    /// Title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<Title>,
    /// Preferred title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_title: Option<Title>,
    /// First name; absent only for a person known by a single name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<Name>,
    /// Middle name(s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub middle_name: Option<Name>,
    /// Surname (or the single name of a mononymous person).
    pub surname: Name,
    /// True for a person known by one name only.
    #[serde(default)]
    pub single_name: bool,
    /// Preferred first name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_first_name: Option<Name>,
    /// Preferred middle name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_middle_name: Option<Name>,
    /// Preferred surname.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_surname: Option<Name>,
    /// Place of birth (free text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place_of_birth: Option<String>,
    /// Date of birth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_of_birth: Option<NaiveDate>,
    /// Date of death.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_of_death: Option<NaiveDate>,
    /// Roles; at least one.
    pub person_types: Vec<PersonType>,
    /// Tenure summaries, stored in display order.
    #[serde(default)]
    pub tenures: Vec<TenureSummary>,
    /// Why the record was created.
    pub reason: String,
    /// 0 after create, +1 per change.
    pub version_number: u64,
    /// When the record was created.
    pub created_at: DateTime<Utc>,
    /// When the record last changed.
    pub last_modified: DateTime<Utc>,
    /// Live, deleted or merged.
    #[serde(default, skip_serializing_if = "PersonStatus::is_active")]
    pub status: PersonStatus,
    /// Restriction of processing (GDPR art. 18): hidden from listings, readable only by `admin`.
    #[serde(default)]
    pub processing_restricted: bool,
    /// Records in other systems that belong to this person (SPEC §8), sorted by system then id, each unique
    /// among live persons. Changed only through `/persons/{id}/references` and merges.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<crate::reference::CrossReference>,
}

impl Person {
    /// A live person at `version_number`, created (and last modified) at `created_at`, with validated `fields`.
    #[must_use]
    pub fn from_fields(
        id: PersonId,
        person_ref: PersonRef,
        fields: crate::validate::PersonFields,
        version_number: u64,
        created_at: DateTime<Utc>,
    ) -> Self {
        let crate::validate::PersonFields {
            title,
            preferred_title,
            first_name,
            middle_name,
            surname,
            single_name,
            preferred_first_name,
            preferred_middle_name,
            preferred_surname,
            place_of_birth,
            date_of_birth,
            date_of_death,
            person_types,
            tenures,
            reason,
        } = fields;
        Self {
            id,
            person_ref,
            title,
            preferred_title,
            first_name,
            middle_name,
            surname,
            single_name,
            preferred_first_name,
            preferred_middle_name,
            preferred_surname,
            place_of_birth,
            date_of_birth,
            date_of_death,
            person_types,
            tenures,
            reason,
            version_number,
            created_at,
            last_modified: created_at,
            status: PersonStatus::Active,
            processing_restricted: false,
            references: Vec::new(),
        }
    }

    /// This person with its writable fields replaced by `fields`; identity, version, timestamps and status kept.
    #[must_use]
    pub fn with_fields(&self, fields: crate::validate::PersonFields) -> Self {
        Self {
            last_modified: self.last_modified,
            status: self.status,
            processing_restricted: self.processing_restricted,
            references: self.references.clone(),
            ..Self::from_fields(self.id, self.person_ref, fields, self.version_number, self.created_at)
        }
    }

    /// `None` without a date of birth, else whether the person is under 18 on `today`.
    #[must_use]
    pub fn is_a_minor(&self, today: NaiveDate) -> Option<bool> {
        self.date_of_birth.map(|dob| age_on(dob, today) < 18)
    }
}

impl fmt::Debug for Person {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Person")
            .field("id", &self.id)
            .field("person_ref", &self.person_ref)
            .field("version_number", &self.version_number)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// Whole years between `born` and `today` (0 for a date in the future).
#[must_use]
pub fn age_on(born: NaiveDate, today: NaiveDate) -> i32 {
    let mut years = today.year() - born.year();
    if (today.month(), today.day()) < (born.month(), born.day()) {
        years -= 1;
    }
    years.max(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn tenure(kind: &str, start: Option<NaiveDate>, end: Option<NaiveDate>) -> TenureSummary {
        TenureSummary {
            id: Uuid::new_v4(),
            tenure_type: Some(kind.to_owned()),
            start_date: start,
            end_date: end,
            asset_full_address: None,
            asset_id: None,
            uprn: None,
            postcode: None,
            payment_reference: None,
            property_reference: None,
        }
    }

    #[test]
    fn nil_uuid_is_not_a_person_id() {
        assert!(PersonId::new(Uuid::nil()).is_none());
        assert_eq!(PersonId::parse("12345667890"), Err(InvalidPersonId));
        assert!(PersonId::parse("6d9f1a54-6c5e-4b0b-9b5d-0c7c1d0b9d11").is_ok());
    }

    #[test]
    fn age_counts_whole_years_with_birthdays() {
        assert_eq!(age_on(date(2000, 6, 15), date(2018, 6, 14)), 17);
        assert_eq!(age_on(date(2000, 6, 15), date(2018, 6, 15)), 18);
        assert_eq!(age_on(date(2000, 2, 29), date(2018, 2, 28)), 17);
        assert_eq!(age_on(date(2000, 2, 29), date(2018, 3, 1)), 18);
    }

    #[test]
    fn tenure_is_active_without_end_with_sentinel_or_future_end() {
        let today = date(2026, 1, 10);
        assert!(tenure("Secure", None, None).is_active(today));
        assert!(tenure("Secure", None, Some(NO_END_SENTINEL)).is_active(today));
        assert!(tenure("Secure", None, Some(today)).is_active(today));
        assert!(!tenure("Secure", None, Some(date(2026, 1, 9))).is_active(today));
    }

    #[test]
    fn tenures_sort_active_then_secure_then_latest_start() {
        let today = date(2026, 1, 10);
        let ended = tenure("Secure", Some(date(2020, 1, 1)), Some(date(2021, 1, 1)));
        let old_secure = tenure("Secure", Some(date(2010, 1, 1)), None);
        let new_secure = tenure("Secure", Some(date(2015, 1, 1)), None);
        let temp = tenure("Introductory", Some(date(2024, 1, 1)), None);
        let mut tenures = vec![ended.clone(), temp.clone(), old_secure.clone(), new_secure.clone()];
        sort_tenures(&mut tenures, today);
        let ids: Vec<Uuid> = tenures.iter().map(|t| t.id).collect();
        assert_eq!(ids, vec![new_secure.id, old_secure.id, temp.id, ended.id]);
    }
}
