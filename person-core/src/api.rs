//! Wire shapes shared by the server and the client: the person response, problem details, pages.
//!
//! These are the JSON documents of the HTTP contract (camelCase, Hackney field names). They carry computed
//! values (`isAMinor`, `isActive`, `links`) that the stored [`Person`] does not.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::event::{FeedEntry, HistoryEntry};
use crate::person::{Person, PersonId, PersonRef, PersonType, TenureSummary, Title, sort_tenures};
use crate::validate::FieldError;

/// Problem `type` URIs: stable, clients match on them.
pub mod problem_types {
    /// Base of every problem type URI.
    pub const BASE: &str = "https://person-api.hackney.gov.uk/problems/";
    /// 422: field validation failed (`errors` lists each field).
    pub const VALIDATION: &str = "https://person-api.hackney.gov.uk/problems/validation";
    /// 400: the request is malformed (bad JSON, wrong type, unknown or read-only key, bad parameter).
    pub const BAD_REQUEST: &str = "https://person-api.hackney.gov.uk/problems/bad-request";
    /// 404: no such resource.
    pub const NOT_FOUND: &str = "https://person-api.hackney.gov.uk/problems/not-found";
    /// 410: the person was deleted.
    pub const GONE: &str = "https://person-api.hackney.gov.uk/problems/gone";
    /// 308: the person was merged into another one (`Location` names the survivor).
    pub const MERGED: &str = "https://person-api.hackney.gov.uk/problems/merged";
    /// 409: `If-Match` is stale (`currentVersion` says the stored one).
    pub const VERSION_CONFLICT: &str = "https://person-api.hackney.gov.uk/problems/version-conflict";
    /// 409: a person with this id already exists.
    pub const DUPLICATE_ID: &str = "https://person-api.hackney.gov.uk/problems/duplicate-id";
    /// 409: the person is already known (duplicate prevention).
    pub const DUPLICATE_PERSON: &str = "https://person-api.hackney.gov.uk/problems/duplicate-person";
    /// 409: another person holds the cross-reference (`owner` names it when the caller may see it).
    pub const REFERENCE_TAKEN: &str = "https://person-api.hackney.gov.uk/problems/reference-taken";
    /// 422: the idempotency key was used with a different request.
    pub const IDEMPOTENCY_KEY_REUSED: &str = "https://person-api.hackney.gov.uk/problems/idempotency-key-reused";
    /// 428: `If-Match` is required.
    pub const PRECONDITION_REQUIRED: &str = "https://person-api.hackney.gov.uk/problems/precondition-required";
    /// 413: body over the limit.
    pub const PAYLOAD_TOO_LARGE: &str = "https://person-api.hackney.gov.uk/problems/payload-too-large";
    /// 415: body is not JSON.
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "https://person-api.hackney.gov.uk/problems/unsupported-media-type";
    /// 405: method not allowed on this path.
    pub const METHOD_NOT_ALLOWED: &str = "https://person-api.hackney.gov.uk/problems/method-not-allowed";
    /// 401: missing or invalid credentials.
    pub const UNAUTHORISED: &str = "https://person-api.hackney.gov.uk/problems/unauthorised";
    /// 403: authenticated but not permitted.
    pub const FORBIDDEN: &str = "https://person-api.hackney.gov.uk/problems/forbidden";
    /// 503: the store is unavailable; retry later.
    pub const UNAVAILABLE: &str = "https://person-api.hackney.gov.uk/problems/unavailable";
    /// 429: the caller sent more requests than its rate limit allows; `Retry-After` says when to retry.
    pub const TOO_MANY_REQUESTS: &str = "https://person-api.hackney.gov.uk/problems/too-many-requests";
    /// 504: the request took too long.
    pub const TIMEOUT: &str = "https://person-api.hackney.gov.uk/problems/timeout";
    /// 500: something went wrong on the server (details are in its log under the correlation id).
    pub const INTERNAL: &str = "https://person-api.hackney.gov.uk/problems/internal";
}

/// RFC 9457 problem details, the body of every error response (`application/problem+json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProblemDetails {
    /// Stable URI of the kind of problem.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// Short summary of the kind.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// What went wrong in this case.
    pub detail: String,
    /// The request path.
    pub instance: String,
    /// The request's correlation id.
    pub correlation_id: String,
    /// Field errors (validation problems and 400s that concern one field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
    /// The stored version (version conflicts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_version: Option<u64>,
}

/// A link to related data in another service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Link {
    /// Relation name, e.g. `tenure`.
    pub rel: String,
    /// Absolute URL.
    pub href: String,
    /// HTTP method or media type hint (Hackney: `GET`).
    #[serde(rename = "type")]
    pub link_type: String,
}

/// A tenure as shown: the stored summary plus `isActive`. Absent values are `null`, as in the person itself
/// (the Hackney contract serialises nulls).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TenureResponse {
    /// Tenure id.
    pub id: Uuid,
    /// Tenure type.
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
    /// Asset id.
    #[serde(default)]
    pub asset_id: Option<String>,
    /// UPRN.
    #[serde(default)]
    pub uprn: Option<String>,
    /// Normalised postcode.
    #[serde(default)]
    pub postcode: Option<String>,
    /// Payment reference.
    #[serde(default)]
    pub payment_reference: Option<String>,
    /// Property reference.
    #[serde(default)]
    pub property_reference: Option<String>,
    /// No end date, the 1900-01-01 sentinel, or an end date today or later.
    pub is_active: bool,
}

impl TenureResponse {
    fn from_summary(t: &TenureSummary, today: NaiveDate) -> Self {
        Self {
            id: t.id,
            tenure_type: t.tenure_type.clone(),
            start_date: t.start_date,
            end_date: t.end_date,
            asset_full_address: t.asset_full_address.clone(),
            asset_id: t.asset_id.clone(),
            uprn: t.uprn.clone(),
            postcode: t.postcode.clone(),
            payment_reference: t.payment_reference.clone(),
            property_reference: t.property_reference.clone(),
            is_active: t.is_active(today),
        }
    }
}

/// A person as shown to clients (SPEC §2), with computed values.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PersonResponse {
    /// Id.
    pub id: PersonId,
    /// Sequential reference.
    pub person_ref: PersonRef,
    /// Title.
    pub title: Option<Title>,
    /// Preferred title.
    pub preferred_title: Option<Title>,
    /// First name (absent for a single-name person).
    pub first_name: Option<String>,
    /// Middle name.
    pub middle_name: Option<String>,
    /// Surname.
    pub surname: String,
    /// Known by one name only.
    pub single_name: bool,
    /// Preferred first name.
    pub preferred_first_name: Option<String>,
    /// Preferred middle name.
    pub preferred_middle_name: Option<String>,
    /// Preferred surname.
    pub preferred_surname: Option<String>,
    /// Place of birth.
    pub place_of_birth: Option<String>,
    /// Date of birth.
    pub date_of_birth: Option<NaiveDate>,
    /// Date of death.
    pub date_of_death: Option<NaiveDate>,
    /// Null without a date of birth, else under 18 today.
    pub is_a_minor: Option<bool>,
    /// Roles.
    pub person_types: Vec<PersonType>,
    /// Tenures: active first, then Secure, then latest start.
    pub tenures: Vec<TenureResponse>,
    /// Why the record was created.
    pub reason: String,
    /// Links to related data in other services: only those the caller may follow, to services that are up.
    pub links: Vec<Link>,
    /// Records in other systems that belong to the person (`system`, `id`), sorted.
    #[serde(default)]
    pub references: Vec<crate::reference::CrossReference>,
    /// Version (also the `ETag`).
    pub version_number: u64,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub last_modified: DateTime<Utc>,
    /// Processing is restricted (only `admin` can see such a person, so others always see `false`).
    pub processing_restricted: bool,
}

impl std::fmt::Debug for PersonResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersonResponse")
            .field("id", &self.id)
            .field("person_ref", &self.person_ref)
            .field("version_number", &self.version_number)
            .finish_non_exhaustive()
    }
}

impl PersonResponse {
    /// Shows `person` as of `today`, with `links`.
    #[must_use]
    pub fn new(person: &Person, today: NaiveDate, links: Vec<Link>) -> Self {
        let name = |n: &Option<crate::person::Name>| n.as_ref().map(|n| n.as_str().to_owned());
        let mut tenures = person.tenures.clone();
        sort_tenures(&mut tenures, today);
        Self {
            id: person.id,
            person_ref: person.person_ref,
            title: person.title,
            preferred_title: person.preferred_title,
            first_name: name(&person.first_name),
            middle_name: name(&person.middle_name),
            surname: person.surname.as_str().to_owned(),
            single_name: person.single_name,
            preferred_first_name: name(&person.preferred_first_name),
            preferred_middle_name: name(&person.preferred_middle_name),
            preferred_surname: name(&person.preferred_surname),
            place_of_birth: person.place_of_birth.clone(),
            date_of_birth: person.date_of_birth,
            date_of_death: person.date_of_death,
            is_a_minor: person.is_a_minor(today),
            person_types: person.person_types.clone(),
            tenures: tenures.iter().map(|t| TenureResponse::from_summary(t, today)).collect(),
            reason: person.reason.clone(),
            links,
            references: person.references.clone(),
            version_number: person.version_number,
            created_at: person.created_at,
            last_modified: person.last_modified,
            processing_restricted: person.processing_restricted,
        }
    }
}

/// `GET /persons/{id}/history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistoryResponse {
    /// Every version, oldest first.
    pub results: Vec<HistoryEntry>,
}

/// Links of a page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PageLinks {
    /// The next page (for the feed: where to poll next, even when this page was empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// `GET /events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FeedResponse {
    /// Events in commit order.
    pub results: Vec<FeedEntry>,
    /// The cursor to pass as `after` for the next page (the last position returned, or the one given).
    pub next_cursor: String,
    /// The next page's URL.
    pub links: PageLinks,
}

/// A row of a reporting table (SPEC §10): flat, every key always present (`null` when empty), so that a JSON page
/// and a CSV export have the same columns.
pub trait ReportRow: Serialize {
    /// The row's JSON keys, in column order: the CSV header.
    const COLUMNS: &'static [&'static str];
}

/// A row of `GET /api/v1/reporting/persons`: one per person.
///
/// A person that is deleted, merged or whose processing is restricted is a *tombstone*: only `personId`,
/// `lastModified`, `versionNumber`, `deleted: true` and (merged persons) `mergedInto` are given, every other value is
/// `null`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PersonReportRow {
    /// The person's id: the key of every reporting table.
    pub person_id: PersonId,
    /// Sequential reference.
    pub person_ref: Option<PersonRef>,
    /// Title.
    pub title: Option<Title>,
    /// Preferred title.
    pub preferred_title: Option<Title>,
    /// First name.
    pub first_name: Option<String>,
    /// Middle name.
    pub middle_name: Option<String>,
    /// Surname.
    pub surname: Option<String>,
    /// Preferred first name.
    pub preferred_first_name: Option<String>,
    /// Preferred middle name.
    pub preferred_middle_name: Option<String>,
    /// Preferred surname.
    pub preferred_surname: Option<String>,
    /// Place of birth.
    pub place_of_birth: Option<String>,
    /// Date of birth.
    pub date_of_birth: Option<NaiveDate>,
    /// Date of death.
    pub date_of_death: Option<NaiveDate>,
    /// The person's types joined with `;` (`Tenant;Leaseholder`), so that the row stays flat.
    pub person_types: Option<String>,
    /// Null without a date of birth, else under 18 on the day the report was generated.
    pub is_a_minor: Option<bool>,
    /// Creation time.
    pub created_at: Option<DateTime<Utc>>,
    /// Last change (also of a tombstone: when it was deleted, merged or restricted).
    pub last_modified: DateTime<Utc>,
    /// Version.
    pub version_number: u64,
    /// True for a tombstone: remove the person and its rows in every table.
    pub deleted: bool,
    /// The survivor a merged person was merged into; null otherwise.
    pub merged_into: Option<PersonId>,
}

impl ReportRow for PersonReportRow {
    const COLUMNS: &'static [&'static str] = &[
        "personId",
        "personRef",
        "title",
        "preferredTitle",
        "firstName",
        "middleName",
        "surname",
        "preferredFirstName",
        "preferredMiddleName",
        "preferredSurname",
        "placeOfBirth",
        "dateOfBirth",
        "dateOfDeath",
        "personTypes",
        "isAMinor",
        "createdAt",
        "lastModified",
        "versionNumber",
        "deleted",
        "mergedInto",
    ];
}

impl std::fmt::Debug for PersonReportRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersonReportRow")
            .field("person_id", &self.person_id)
            .field("version_number", &self.version_number)
            .field("deleted", &self.deleted)
            .finish_non_exhaustive()
    }
}

/// A row of `GET /api/v1/reporting/person-tenures`: one per tenure of a live person, in the order the person
/// holds them; a tombstone (`deleted: true`, every other value but `personId` null) for a deleted, merged or
/// restricted person.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TenureReportRow {
    /// The person's id.
    pub person_id: PersonId,
    /// The tenure's id.
    pub tenure_id: Option<Uuid>,
    /// The tenure type, e.g. `Secure` (`type` in a person's tenure).
    pub tenure_type: Option<String>,
    /// Start date.
    pub start_date: Option<NaiveDate>,
    /// End date.
    pub end_date: Option<NaiveDate>,
    /// Full address.
    pub asset_full_address: Option<String>,
    /// Asset id.
    pub asset_id: Option<String>,
    /// UPRN.
    pub uprn: Option<String>,
    /// Normalised postcode.
    pub postcode: Option<String>,
    /// Payment reference.
    pub payment_reference: Option<String>,
    /// Property reference.
    pub property_reference: Option<String>,
    /// No end date, the 1900-01-01 sentinel, or an end date on or after the day the report was generated.
    pub is_active: Option<bool>,
    /// True for a tombstone.
    pub deleted: bool,
}

impl ReportRow for TenureReportRow {
    const COLUMNS: &'static [&'static str] = &[
        "personId",
        "tenureId",
        "tenureType",
        "startDate",
        "endDate",
        "assetFullAddress",
        "assetId",
        "uprn",
        "postcode",
        "paymentReference",
        "propertyReference",
        "isActive",
        "deleted",
    ];
}

impl std::fmt::Debug for TenureReportRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Addresses are personal data; only identifiers are printed.
        f.debug_struct("TenureReportRow")
            .field("person_id", &self.person_id)
            .field("tenure_id", &self.tenure_id)
            .field("deleted", &self.deleted)
            .finish_non_exhaustive()
    }
}

/// A row of `GET /api/v1/reporting/person-references`: one per cross-reference of a live person, in the order the
/// person holds them (by system, then id); a tombstone for a deleted, merged or restricted person.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReferenceReportRow {
    /// The person's id.
    pub person_id: PersonId,
    /// The other system, e.g. `tenure`.
    pub system: Option<String>,
    /// The record's id in that system.
    pub reference_id: Option<String>,
    /// True for a tombstone.
    pub deleted: bool,
}

impl ReportRow for ReferenceReportRow {
    const COLUMNS: &'static [&'static str] = &["personId", "system", "referenceId", "deleted"];
}

impl std::fmt::Debug for ReferenceReportRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReferenceReportRow")
            .field("person_id", &self.person_id)
            .field("system", &self.system)
            .field("deleted", &self.deleted)
            .finish_non_exhaustive()
    }
}

/// Links of a reporting page: `next` is always present, `null` on the last page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReportLinks {
    /// The absolute URL of the next page (same `modifiedSince` and `limit`, with a `cursor`), or null.
    pub next: Option<String>,
}

/// A page of a reporting table (`GET /api/v1/reporting/…` as JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReportResponse<R> {
    /// The rows, by `personId`, then in the order the person holds them.
    pub results: Vec<R>,
    /// How many rows the whole table has (with the same `modifiedSince`), tombstones included.
    pub total: u64,
    /// The number of rows before this page.
    pub offset: u64,
    /// The page size asked for.
    pub limit: u32,
    /// Where the next incremental load starts (its `modifiedSince`): when the server started answering, less a
    /// five-minute margin for writes that commit after their timestamp.
    pub generated_at: DateTime<Utc>,
    /// The next page.
    pub links: ReportLinks,
}
