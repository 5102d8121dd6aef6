//! Request and response shapes of the API that `person_core` does not define: search criteria and pages,
//! Hackney's housing search, match queries and results, merge patches, versioned documents, a person's
//! cross-references, the access log and the subject-access export.
//!
//! Responses reuse `person_core` types wherever they exist ([`PersonResponse`], [`HistoryEntry`],
//! [`AuditEntry`], [`EqualityData`], [`person_core::api::FeedResponse`] …). Every type here that can hold
//! personal data has a redacted `Debug`.

use std::collections::BTreeMap;
use std::fmt;

use chrono::NaiveDate;
use person_core::api::{PageLinks, PersonResponse};
use person_core::audit::AuditEntry;
use person_core::equality::EqualityData;
use person_core::event::HistoryEntry;
use person_core::matching::{Comparison, Grade};
use person_core::person::{PersonId, PersonType, Title};
use person_core::reference::{CrossReference, ReferenceId, ReferenceSystem};
use person_core::validate::TenureDraft;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// An extended-data document: any JSON object (at most 64 KiB as compact JSON).
pub type ExtendedDocument = Map<String, Value>;

/// A versioned document (equality data, one area's extended data) with its own version, independent of the
/// person's: pass `version` back when writing it again.
#[derive(Clone, PartialEq)]
pub struct Document<T> {
    /// The document as stored (normalised by the server).
    pub body: T,
    /// Its version (the `ETag`): 0 after the first write, +1 per write.
    pub version: u64,
}

impl<T> fmt::Debug for Document<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Equality and extended data are special-category or service-private data.
        f.debug_struct("Document").field("version", &self.version).finish_non_exhaustive()
    }
}

/// The criteria of `GET /api/v1/persons` (at least one besides `person_type`). Values are sent as given; the
/// server trims them and treats blanks as absent.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SearchCriteria {
    /// First name (also preferred names, nicknames, prefixes of 2+ characters).
    pub first_name: Option<String>,
    /// Surname (each part of a hyphenated surname matches).
    pub last_name: Option<String>,
    /// Date of birth (`YYYY-MM-DD`, or `DD/MM/YYYY` …).
    pub date_of_birth: Option<String>,
    /// Free-text address.
    pub address: Option<String>,
    /// UK postcode in any case or spacing.
    pub postcode: Option<String>,
    /// National Insurance number (needs `equality:read` too).
    pub nino: Option<String>,
    /// Free text over names, postcode, date of birth.
    pub q: Option<String>,
    /// Only persons with this role.
    pub person_type: Option<PersonType>,
    /// Results per page, 1 to 200 (server default 20).
    pub limit: Option<u32>,
    /// Where the page starts: a cursor from [`SearchPage::next_cursor`] (opaque).
    pub cursor: Option<String>,
}

impl SearchCriteria {
    /// No criteria yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `firstName`.
    #[must_use]
    pub fn first_name(mut self, value: impl Into<String>) -> Self {
        self.first_name = Some(value.into());
        self
    }

    /// Sets `lastName`.
    #[must_use]
    pub fn last_name(mut self, value: impl Into<String>) -> Self {
        self.last_name = Some(value.into());
        self
    }

    /// Sets `dateOfBirth`.
    #[must_use]
    pub fn date_of_birth(mut self, value: NaiveDate) -> Self {
        self.date_of_birth = Some(value.format("%Y-%m-%d").to_string());
        self
    }

    /// Sets `address`.
    #[must_use]
    pub fn address(mut self, value: impl Into<String>) -> Self {
        self.address = Some(value.into());
        self
    }

    /// Sets `postcode`.
    #[must_use]
    pub fn postcode(mut self, value: impl Into<String>) -> Self {
        self.postcode = Some(value.into());
        self
    }

    /// Sets `nino`.
    #[must_use]
    pub fn nino(mut self, value: impl Into<String>) -> Self {
        self.nino = Some(value.into());
        self
    }

    /// Sets `q`, the free text.
    #[must_use]
    pub fn q(mut self, value: impl Into<String>) -> Self {
        self.q = Some(value.into());
        self
    }

    /// Sets `personType`.
    #[must_use]
    pub fn person_type(mut self, value: PersonType) -> Self {
        self.person_type = Some(value);
        self
    }

    /// Sets `limit`, the page size.
    #[must_use]
    pub fn limit(mut self, value: u32) -> Self {
        self.limit = Some(value);
        self
    }

    /// Sets `cursor`.
    #[must_use]
    pub fn cursor(mut self, value: impl Into<String>) -> Self {
        self.cursor = Some(value.into());
        self
    }

    /// The query parameters, in a stable order.
    pub(crate) fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        let text = [
            ("firstName", &self.first_name),
            ("lastName", &self.last_name),
            ("dateOfBirth", &self.date_of_birth),
            ("address", &self.address),
            ("postcode", &self.postcode),
            ("nino", &self.nino),
            ("q", &self.q),
        ];
        for (name, value) in text {
            if let Some(value) = value {
                pairs.push((name, value.clone()));
            }
        }
        if let Some(person_type) = self.person_type {
            pairs.push(("personType", person_type_name(person_type).to_owned()));
        }
        if let Some(limit) = self.limit {
            pairs.push(("limit", limit.to_string()));
        }
        if let Some(cursor) = &self.cursor {
            pairs.push(("cursor", cursor.clone()));
        }
        pairs
    }
}

impl fmt::Debug for SearchCriteria {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Criteria are personal data: show which are given, not their values.
        let given = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("SearchCriteria")
            .field("first_name", &given(&self.first_name))
            .field("last_name", &given(&self.last_name))
            .field("date_of_birth", &given(&self.date_of_birth))
            .field("address", &given(&self.address))
            .field("postcode", &given(&self.postcode))
            .field("nino", &given(&self.nino))
            .field("q", &given(&self.q))
            .field("person_type", &self.person_type)
            .field("limit", &self.limit)
            .field("cursor", &self.cursor)
            .finish()
    }
}

/// The wire name of a person type.
pub(crate) fn person_type_name(person_type: PersonType) -> &'static str {
    match person_type {
        PersonType::Tenant => "Tenant",
        PersonType::HouseholdMember => "HouseholdMember",
        PersonType::Leaseholder => "Leaseholder",
        PersonType::Freeholder => "Freeholder",
        PersonType::Occupant => "Occupant",
        PersonType::HousingOfficer => "HousingOfficer",
        PersonType::HousingAreaManager => "HousingAreaManager",
    }
}

/// One search result: the person and how well it matches.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchResult {
    /// The person, as `GET /api/v1/persons/{id}` shows it.
    #[serde(flatten)]
    pub person: PersonResponse,
    /// How well it matches, 0..1 (compare within one result list only).
    pub score: f64,
}

impl fmt::Debug for SearchResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SearchResult").field("person", &self.person).field("score", &self.score).finish()
    }
}

/// A page of search results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchPage {
    /// The persons found, best match first.
    pub results: Vec<SearchResult>,
    /// How many persons were ranked in all (every page together).
    pub total: u64,
    /// `next`: the next page's URL, absent on the last page.
    pub links: PageLinks,
}

impl SearchPage {
    /// The cursor of the next page (pass it as [`SearchCriteria::cursor`] with the same criteria), `None` on
    /// the last page.
    #[must_use]
    pub fn next_cursor(&self) -> Option<String> {
        let next = self.links.next.as_deref()?;
        let query = next.split_once('?')?.1;
        query.split('&').find_map(|pair| pair.strip_prefix("cursor=")).map(str::to_owned)
    }
}

/// The query of Hackney's housing search (`GET /api/v1/search/persons`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct HousingSearchQuery {
    /// Required, at least 2 characters: names in either order, a postcode, a date of birth.
    pub search_text: String,
    /// 1 to 200 (server default 12).
    pub page_size: Option<u32>,
    /// 1-based page number (server default 1).
    pub page: Option<u32>,
    /// Only persons with this role.
    pub person_type: Option<PersonType>,
}

impl HousingSearchQuery {
    /// A search for `text`, first page, default size.
    #[must_use]
    pub fn new(text: impl Into<String>) -> Self {
        Self { search_text: text.into(), ..Self::default() }
    }

    pub(crate) fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = vec![("searchText", self.search_text.clone())];
        if let Some(size) = self.page_size {
            pairs.push(("pageSize", size.to_string()));
        }
        if let Some(page) = self.page {
            pairs.push(("page", page.to_string()));
        }
        if let Some(person_type) = self.person_type {
            pairs.push(("personType", person_type_name(person_type).to_owned()));
        }
        pairs
    }
}

impl fmt::Debug for HousingSearchQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HousingSearchQuery")
            .field("page_size", &self.page_size)
            .field("page", &self.page)
            .field("person_type", &self.person_type)
            .finish_non_exhaustive()
    }
}

/// A page of Hackney's housing search.
#[derive(Debug, Clone, PartialEq)]
pub struct HousingSearchPage {
    /// The persons found, best match first.
    pub persons: Vec<HousingSearchPerson>,
    /// How many persons match in all.
    pub total: u64,
}

/// The wire shape of Hackney's housing search answer (`APIResponse<GetPersonListResponse>`).
#[derive(Deserialize)]
pub(crate) struct HousingSearchWire {
    results: HousingSearchResultsWire,
    total: u64,
}

#[derive(Deserialize)]
struct HousingSearchResultsWire {
    persons: Vec<HousingSearchPerson>,
}

impl From<HousingSearchWire> for HousingSearchPage {
    fn from(wire: HousingSearchWire) -> Self {
        Self { persons: wire.results.persons, total: wire.total }
    }
}

/// A person in Hackney's housing-search shape (its key spellings: `firstname`, `preferredFirstname`).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HousingSearchPerson {
    /// Id.
    pub id: PersonId,
    /// Title.
    #[serde(default)]
    pub title: Option<Title>,
    /// First name.
    #[serde(default)]
    pub firstname: Option<String>,
    /// Middle name.
    #[serde(default)]
    pub middle_name: Option<String>,
    /// Surname.
    pub surname: String,
    /// Preferred first name.
    #[serde(default)]
    pub preferred_firstname: Option<String>,
    /// Preferred surname.
    #[serde(default)]
    pub preferred_surname: Option<String>,
    /// Date of birth.
    #[serde(default)]
    pub date_of_birth: Option<NaiveDate>,
    /// Roles.
    #[serde(default)]
    pub person_types: Vec<PersonType>,
    /// Always false (alerts are held by the cautionary alerts service).
    #[serde(default)]
    pub is_person_cautionary_alert: bool,
    /// Always false (alerts are held by the cautionary alerts service).
    #[serde(default)]
    pub is_tenure_cautionary_alert: bool,
    /// Tenures: active first, then Secure, then latest start.
    #[serde(default)]
    pub tenures: Vec<HousingSearchTenure>,
}

impl fmt::Debug for HousingSearchPerson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HousingSearchPerson").field("id", &self.id).finish_non_exhaustive()
    }
}

/// A tenure in Hackney's housing-search shape (`postCode`).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HousingSearchTenure {
    /// Tenure id.
    pub id: uuid::Uuid,
    /// Tenure type, e.g. "Secure".
    #[serde(rename = "type", default)]
    pub tenure_type: Option<String>,
    /// Start date.
    #[serde(default)]
    pub start_date: Option<NaiveDate>,
    /// End date.
    #[serde(default)]
    pub end_date: Option<NaiveDate>,
    /// Full address.
    #[serde(default)]
    pub asset_full_address: Option<String>,
    /// Postcode.
    #[serde(default)]
    pub post_code: Option<String>,
    /// Payment reference.
    #[serde(default)]
    pub payment_reference: Option<String>,
    /// Whether the tenure is active.
    #[serde(default)]
    pub is_active: bool,
}

impl fmt::Debug for HousingSearchTenure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HousingSearchTenure").field("id", &self.id).finish_non_exhaustive()
    }
}

/// "Is this person already known?": any subset of a person (`POST /api/v1/persons/match`).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MatchQuery {
    /// First name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    /// Middle name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub middle_name: Option<String>,
    /// Surname.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surname: Option<String>,
    /// Date of birth (`YYYY-MM-DD`, also `DD/MM/YYYY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_of_birth: Option<String>,
    /// Free-text address (a postcode in it is used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Postcode, any spacing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postcode: Option<String>,
    /// NI number, any spacing (needs `equality:read`); a disagreeing one vetoes a candidate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub national_insurance_number: Option<String>,
    /// Most candidates to answer, 1 to 50 (server default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
}

impl MatchQuery {
    /// Matches on a name and a date of birth, the usual minimum.
    #[must_use]
    pub fn new(first_name: impl Into<String>, surname: impl Into<String>, date_of_birth: NaiveDate) -> Self {
        Self {
            first_name: Some(first_name.into()),
            surname: Some(surname.into()),
            date_of_birth: Some(date_of_birth.format("%Y-%m-%d").to_string()),
            ..Self::default()
        }
    }
}

impl fmt::Debug for MatchQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MatchQuery").field("count", &self.count).finish_non_exhaustive()
    }
}

/// One candidate of a match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchResult {
    /// The recorded person.
    pub person: PersonResponse,
    /// 0..1: how likely the candidate is the person described.
    pub score: f64,
    /// `certain` (a create of it would be refused as a duplicate), `probable` or `possible`.
    pub grade: Option<Grade>,
    /// Always false in answers (vetoed candidates are left out).
    #[serde(default)]
    pub vetoed: bool,
    /// Every field comparison: field, level reached, weight contributed.
    #[serde(default)]
    pub explanation: Vec<Comparison>,
}

/// The wire shape of a match answer.
#[derive(Deserialize)]
pub(crate) struct MatchWire {
    pub(crate) results: Vec<MatchResult>,
}

/// A change to a person: a JSON merge patch at the top level (RFC 7396).
///
/// A field not set is left unchanged; a `clear_…` sends `null` and clears an optional field; lists are replaced
/// whole. `reason` is the reason for *this* change (recorded in history). Build it with the setters:
///
/// ```
/// # use person_client::PersonPatch;
/// let patch = PersonPatch::new().first_name("Thandi").clear_place_of_birth().reason("Name corrected");
/// assert_eq!(patch.keys().collect::<Vec<_>>(), ["firstName", "placeOfBirth", "reason"]);
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PersonPatch(Map<String, Value>);

macro_rules! text_fields {
    ($($(#[$doc:meta])* $set:ident, $clear:ident => $key:literal;)*) => {
        $(
            $(#[$doc])*
            #[must_use]
            pub fn $set(self, value: impl Into<String>) -> Self {
                self.with($key, Value::String(value.into()))
            }

            #[doc = concat!("Clears `", $key, "` (sends `null`).")]
            #[must_use]
            pub fn $clear(self) -> Self {
                self.with($key, Value::Null)
            }
        )*
    };
}

impl PersonPatch {
    /// An empty patch (changes nothing).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A patch from a JSON object as is (for keys this type has no setter for).
    #[must_use]
    pub fn from_object(object: Map<String, Value>) -> Self {
        Self(object)
    }

    /// Sets `key` to `value` (`Value::Null` clears it).
    #[must_use]
    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.0.insert(key.to_owned(), value);
        self
    }

    /// The keys the patch changes.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// True when the patch changes nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The patch as a JSON object.
    #[must_use]
    pub fn as_object(&self) -> &Map<String, Value> {
        &self.0
    }

    text_fields! {
        /// Sets `firstName`.
        first_name, clear_first_name => "firstName";
        /// Sets `middleName`.
        middle_name, clear_middle_name => "middleName";
        /// Sets `surname`.
        surname, clear_surname => "surname";
        /// Sets `preferredFirstName`.
        preferred_first_name, clear_preferred_first_name => "preferredFirstName";
        /// Sets `preferredMiddleName`.
        preferred_middle_name, clear_preferred_middle_name => "preferredMiddleName";
        /// Sets `preferredSurname`.
        preferred_surname, clear_preferred_surname => "preferredSurname";
        /// Sets `placeOfBirth`.
        place_of_birth, clear_place_of_birth => "placeOfBirth";
    }

    /// Sets `title`.
    #[must_use]
    pub fn title(self, title: Title) -> Self {
        self.with("title", to_value(title))
    }

    /// Clears `title` (allowed for staff only).
    #[must_use]
    pub fn clear_title(self) -> Self {
        self.with("title", Value::Null)
    }

    /// Sets `preferredTitle`.
    #[must_use]
    pub fn preferred_title(self, title: Title) -> Self {
        self.with("preferredTitle", to_value(title))
    }

    /// Clears `preferredTitle`.
    #[must_use]
    pub fn clear_preferred_title(self) -> Self {
        self.with("preferredTitle", Value::Null)
    }

    /// Sets `singleName`.
    #[must_use]
    pub fn single_name(self, single: bool) -> Self {
        self.with("singleName", Value::Bool(single))
    }

    /// Sets `dateOfBirth`.
    #[must_use]
    pub fn date_of_birth(self, date: NaiveDate) -> Self {
        self.with("dateOfBirth", Value::String(date.format("%Y-%m-%d").to_string()))
    }

    /// Clears `dateOfBirth` (allowed for staff only).
    #[must_use]
    pub fn clear_date_of_birth(self) -> Self {
        self.with("dateOfBirth", Value::Null)
    }

    /// Sets `dateOfDeath`.
    #[must_use]
    pub fn date_of_death(self, date: NaiveDate) -> Self {
        self.with("dateOfDeath", Value::String(date.format("%Y-%m-%d").to_string()))
    }

    /// Clears `dateOfDeath`.
    #[must_use]
    pub fn clear_date_of_death(self) -> Self {
        self.with("dateOfDeath", Value::Null)
    }

    /// Replaces `personTypes` (at least one).
    #[must_use]
    pub fn person_types(self, types: &[PersonType]) -> Self {
        self.with("personTypes", to_value(types))
    }

    /// Replaces `tenures` whole.
    #[must_use]
    pub fn tenures(self, tenures: &[TenureDraft]) -> Self {
        self.with("tenures", to_value(tenures))
    }

    /// Why this change is made (recorded in the history entry).
    #[must_use]
    pub fn reason(self, reason: impl Into<String>) -> Self {
        self.with("reason", Value::String(reason.into()))
    }
}

/// Serialises a value of a type whose serialisation cannot fail (enums, dates, plain structs).
fn to_value(value: impl Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

impl fmt::Debug for PersonPatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PersonPatch").field(&self.0.keys().collect::<Vec<_>>()).finish()
    }
}

impl Serialize for PersonPatch {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// The body of `PUT …/processing-restriction`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Restriction {
    /// `true` restricts processing; `false` lifts the restriction.
    pub restricted: bool,
    /// Why (recorded in history), up to 500 characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The body of a merge.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MergeRequest<'a> {
    pub(crate) duplicate_id: PersonId,
    pub(crate) reason: &'a str,
}

/// A person's cross-references (`GET /api/v1/persons/{id}/references`): the records in other systems that
/// belong to it, at the person's version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct References {
    /// The person.
    pub person_id: PersonId,
    /// The person's version (also its `ETag`): a reference change makes a new version of the person.
    pub version_number: u64,
    /// The references, sorted by system, then id.
    pub references: Vec<CrossReference>,
}

/// The outcome of [`PersonApi::add_reference`](crate::PersonApi::add_reference): the person holds the reference
/// now, either because this call added it or because it already did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceChange {
    /// `true` when the server added it (201: a new version of the person); `false` when the person already held
    /// it (200: nothing changed). After a retry (`ResponseMeta::attempts` > 1) `false` can also mean that the
    /// reference was added by an earlier attempt whose response was lost.
    pub added: bool,
    /// The person's version now: the new version when added, else the current one.
    pub version_number: u64,
    /// Every reference the person holds now, sorted by system, then id.
    pub references: Vec<CrossReference>,
}

/// The body of `POST /api/v1/persons/{id}/references`.
#[derive(Serialize)]
pub(crate) struct AddReferenceRequest<'a> {
    pub(crate) system: &'a ReferenceSystem,
    pub(crate) id: &'a ReferenceId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<&'a str>,
}

/// One access-log entry with its position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessLogRecord {
    /// Position in the audit log (pass the last one as `after` to read on).
    pub position: u64,
    /// Who did what, when, why, with what outcome.
    pub entry: AuditEntry,
}

/// A page of a person's access log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessLogPage {
    /// Entries naming the person, oldest first.
    pub results: Vec<AccessLogRecord>,
    /// The position of the last entry returned (or the given cursor when the page is empty).
    pub next_cursor: String,
    /// `next`: the next page.
    pub links: PageLinks,
}

/// One service area's extended-data document in a subject-access export.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtendedExport {
    /// The document.
    pub document: ExtendedDocument,
    /// Its version.
    pub version: u64,
}

impl fmt::Debug for ExtendedExport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExtendedExport").field("version", &self.version).finish_non_exhaustive()
    }
}

/// Everything held about a person (UK GDPR art. 15).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubjectAccess {
    /// The record, in whatever state it is.
    pub person: PersonResponse,
    /// The equality data, or `None`.
    #[serde(default)]
    pub equality: Option<EqualityData>,
    /// Extended data by service area.
    #[serde(default)]
    pub extended: BTreeMap<String, ExtendedExport>,
    /// Every version of the record.
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
    /// The whole access log, oldest first.
    #[serde(default)]
    pub disclosure_log: Vec<AccessLogRecord>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_criteria_become_query_pairs_and_debug_hides_their_values() {
        let criteria = SearchCriteria::new().first_name("Kimakhe").person_type(PersonType::Tenant).limit(5);
        assert_eq!(
            criteria.pairs(),
            vec![("firstName", "Kimakhe".to_owned()), ("personType", "Tenant".to_owned()), ("limit", "5".to_owned())]
        );
        assert!(!format!("{criteria:?}").contains("Kimakhe"));
    }

    #[test]
    fn the_next_cursor_is_read_from_the_next_link() {
        let page = SearchPage {
            results: Vec::new(),
            total: 3,
            links: PageLinks { next: Some("/api/v1/persons?q=ab&limit=1&cursor=1".to_owned()) },
        };
        assert_eq!(page.next_cursor().as_deref(), Some("1"));
    }

    #[test]
    fn a_patch_sends_set_and_cleared_keys_and_debug_shows_only_keys() {
        let patch = PersonPatch::new().first_name("Thandi").clear_middle_name().title(Title::Ms);
        let json = serde_json::to_value(&patch).unwrap_or(Value::Null);
        assert_eq!(json, serde_json::json!({ "firstName": "Thandi", "middleName": null, "title": "Ms" }));
        assert!(!format!("{patch:?}").contains("Thandi"));
    }
}
