//! Finding persons (SPEC §6): the ranked search `GET /api/v1/persons`, Hackney's housing-search compatible
//! `GET /api/v1/search/persons`, and "is this person already known?" `POST /api/v1/persons/match`.
//!
//! The handlers read the query string (unknown, repeated or malformed parameters are 400s naming the parameter)
//! and shape the answers. What matches, how it is scored and what a caller may search by are the service's and
//! the matching model's business (`docs/matching.md`); no ranking happens here.

use axum::Json;
use axum::extract::State;
use chrono::NaiveDate;
use person_core::RequestContext;
use person_core::api::{PageLinks, PersonResponse, ProblemDetails};
use person_core::matching::{Comparison, Grade};
use person_core::person::{PersonId, PersonType, Title};
use person_core::reference::CrossReference;
use person_core::service::{
    DEFAULT_SEARCH_LIMIT, MAX_SEARCH_LIMIT, MIN_PREFIX_CHARS, MatchCandidate, SearchError, SearchHit, SearchQuery,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::extract::{Caller, JsonBody, Params};
use crate::links::percent_encode;
use crate::state::AppState;

/// Hackney's default `pageSize` (housing-search-api `GetPersonListRequest`).
pub(crate) const DEFAULT_HOUSING_SEARCH_PAGE_SIZE: u32 = 12;

/// The last page number a housing search accepts: far beyond any result (a search ranks a bounded number of
/// candidates), small enough that page × pageSize never overflows, and one fixed rule the OpenAPI document can
/// state (7 digits).
const MAX_HOUSING_SEARCH_PAGE: u32 = 9_999_999;

/// Shortest `searchText` (Hackney's validator, and the service's shortest name prefix: two characters).
const MIN_SEARCH_TEXT_CHARS: usize = MIN_PREFIX_CHARS;

/// The search criteria of `GET /api/v1/persons`, in the order they are echoed in `links.next`.
const CRITERIA: [&str; 10] =
    ["firstName", "lastName", "surname", "dateOfBirth", "address", "postcode", "nino", "reference", "q", "personType"];

/// Every person type, for reading `personType` (case-insensitively) and listing the choices in a 400.
const PERSON_TYPES: [PersonType; 7] = PersonType::ALL;

/// The wire name of a person type (exhaustive: a new variant must be named here).
const fn person_type_name(person_type: PersonType) -> &'static str {
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

fn parse_person_type(raw: &str) -> Result<PersonType, ApiError> {
    PERSON_TYPES.into_iter().find(|t| person_type_name(*t).eq_ignore_ascii_case(raw.trim())).ok_or_else(|| {
        let names: Vec<&str> = PERSON_TYPES.into_iter().map(person_type_name).collect();
        ApiError::bad_parameter("personType", "invalid_value", format!("must be one of {}", names.join(", ")))
    })
}

/// A non-negative decimal without sign or spaces.
fn decimal(raw: &str) -> Option<u32> {
    (!raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit())).then(|| raw.parse().ok()).flatten()
}

/// A checked `GET /api/v1/persons` request: the service query, and the criteria to repeat in `links.next`.
#[derive(Debug, Clone)]
pub(crate) struct SearchRequest {
    pub(crate) query: SearchQuery,
    /// The non-blank criteria as sent (names in [`CRITERIA`] order), for the next page's link.
    criteria: Vec<(&'static str, String)>,
    /// `reference=system:id`: a look-up of the one person holding it, instead of a ranked search.
    pub(crate) reference: Option<CrossReference>,
}

impl SearchRequest {
    /// Reads the query string. Blank criteria count as absent (forms send empty fields); unknown or repeated
    /// parameters, `lastName` together with `surname`, a bad `personType`, `limit` or `cursor`, a `reference`
    /// that is not `system:id` or comes with other criteria, and no criterion at all are 400s naming the
    /// parameter.
    pub(crate) fn parse(pairs: &[(String, String)]) -> Result<Self, ApiError> {
        let mut criteria: Vec<(&'static str, String)> = Vec::new();
        let (mut limit, mut cursor) = (None, None);
        let mut seen: Vec<&str> = Vec::new();
        for (key, value) in pairs {
            if seen.contains(&key.as_str()) {
                return Err(ApiError::bad_parameter(key, "repeated_parameter", "must be given at most once"));
            }
            seen.push(key);
            match key.as_str() {
                "limit" => {
                    let parsed = decimal(value.trim()).filter(|n| (1..=MAX_SEARCH_LIMIT).contains(n));
                    limit = Some(parsed.ok_or_else(|| {
                        ApiError::bad_parameter(
                            "limit",
                            "invalid_limit",
                            format!("must be a number from 1 to {MAX_SEARCH_LIMIT}"),
                        )
                    })?);
                }
                "cursor" => cursor = Some(parse_cursor(value)?),
                name => {
                    let Some(name) = CRITERIA.iter().copied().find(|c| *c == name) else {
                        return Err(unknown_parameter(name));
                    };
                    if !value.trim().is_empty() {
                        criteria.push((name, value.trim().to_owned()));
                    }
                }
            }
        }
        criteria.sort_by_key(|(name, _)| CRITERIA.iter().position(|c| c == name));
        if seen.contains(&"lastName") && seen.contains(&"surname") {
            return Err(ApiError::bad_parameter(
                "surname",
                "repeated_parameter",
                "lastName and surname are the same criterion: send one of them",
            ));
        }
        let reference = match criteria.iter().find(|(name, _)| *name == "reference") {
            None => None,
            Some(_) if criteria.len() > 1 => {
                return Err(ApiError::bad_parameter(
                    "reference",
                    "conflicting_parameters",
                    "a reference identifies one person: send it without other criteria",
                ));
            }
            Some((_, value)) => Some(CrossReference::parse(value).map_err(|e| {
                ApiError::bad_parameter("reference", "invalid_reference", format!("must be system:id ({e})"))
            })?),
        };
        // `personType` filters; it finds nobody on its own.
        if criteria.iter().all(|(name, _)| *name == "personType") {
            return Err(ApiError::BadRequest {
                detail: "give at least one search criterion: firstName, lastName (or surname), dateOfBirth, \
                         address, postcode, nino or q (personType only narrows a search)"
                    .to_owned(),
                errors: Vec::new(),
            });
        }
        let value =
            |names: &[&str]| criteria.iter().find(|(name, _)| names.contains(name)).map(|(_, value)| value.clone());
        let person_type = value(&["personType"]).as_deref().map(parse_person_type).transpose()?;
        let query = SearchQuery {
            first_name: value(&["firstName"]),
            last_name: value(&["lastName", "surname"]),
            date_of_birth: value(&["dateOfBirth"]),
            address: value(&["address"]),
            postcode: value(&["postcode"]),
            nino: value(&["nino"]),
            q: value(&["q"]),
            person_type,
            limit: limit.unwrap_or(DEFAULT_SEARCH_LIMIT),
            offset: cursor.unwrap_or(0),
        };
        Ok(Self { query, criteria, reference })
    }

    /// The error of a search the service refused. Its field errors name the parameters as the caller sent
    /// them (`surname` when that alias was used).
    fn refused(&self, error: SearchError) -> ApiError {
        let SearchError::Invalid(errors) = error else { return error.into() };
        let alias = self.criteria.iter().any(|(name, _)| *name == "surname");
        let mut renamed = person_core::ValidationErrors::default();
        for e in errors.errors() {
            let field = e.field.trim_start_matches('/');
            let field = if alias && field == "lastName" { "surname" } else { field };
            renamed.push(field, &e.code, e.message.clone());
        }
        ApiError::invalid_parameters(renamed)
    }

    /// The URL of the page starting at `offset`: the same criteria and limit, with a cursor.
    fn page_link(&self, base_url: &str, offset: u32) -> String {
        let mut link = format!("{base_url}/api/v1/persons?");
        for (name, value) in &self.criteria {
            link.push_str(&format!("{name}={}&", percent_encode(value)));
        }
        link.push_str(&format!("limit={}&cursor={}", self.query.limit, cursor_for(offset)));
        link
    }
}

fn unknown_parameter(name: &str) -> ApiError {
    ApiError::bad_parameter(
        name,
        "unknown_parameter",
        format!("is not a search parameter; use {}, limit or cursor (names are case-sensitive)", CRITERIA.join(", ")),
    )
}

/// The cursor of a page: opaque to clients (they follow `links.next`); today the offset into the ranked
/// results, which is why a cursor is only meaningful with the criteria it came with.
fn cursor_for(offset: u32) -> String {
    offset.to_string()
}

fn parse_cursor(raw: &str) -> Result<u32, ApiError> {
    decimal(raw.trim()).ok_or_else(|| {
        ApiError::bad_parameter("cursor", "invalid_cursor", "must be a cursor from a previous page's links.next")
    })
}

/// One search result: the person, and how well it matches the criteria.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SearchResult {
    /// The person, as `GET /api/v1/persons/{id}` shows it.
    #[serde(flatten)]
    person: PersonResponse,
    /// How well the person matches, 0..1 (1: every criterion matches exactly). Results are sorted by it,
    /// highest first.
    score: f64,
}

impl SearchResult {
    fn new(state: &AppState, ctx: &RequestContext, hit: &SearchHit) -> Self {
        Self { person: state.show(&hit.person, ctx), score: hit.score }
    }
}

/// A page of search results.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SearchResponse {
    /// The persons found, best match first.
    results: Vec<SearchResult>,
    /// How many persons match in all (every page).
    total: u64,
    /// `next`: the URL of the next page, absent on the last one.
    links: PageLinks,
}

/// Search persons by name, date of birth, address, postcode, NI number or free text, ranked by match score.
///
/// Typo-, case- and accent-tolerant: "Jon Smyth" finds John Smith, "Zoe" finds Zoë, nicknames (Bill ↔
/// William) and forename/surname swaps match, hyphenated surnames match on each part, a date of birth also
/// matches its day/month swap (with a lower score), postcodes and NI numbers match in any spacing or case.
/// Deleted, merged-away and processing-restricted persons never appear (not even to `admin`). Follow
/// `links.next` for the next page; searching by `nino` also needs `equality:read`.
#[utoipa::path(
    get,
    path = "/api/v1/persons",
    tag = "search",
    operation_id = "searchPersons",
    params(
        ("firstName" = Option<String>, Query, description = "First name (also matches preferred first names and nicknames; a prefix of 2+ characters works)"),
        ("lastName" = Option<String>, Query, description = "Surname; each part of a hyphenated or double-barrelled surname matches"),
        ("surname" = Option<String>, Query, description = "Alias of lastName (send one of them)"),
        ("dateOfBirth" = Option<String>, Query, pattern = r"^[ \t\n\r]*(\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{4})?[ \t\n\r]*$", description = "YYYY-MM-DD (or DD/MM/YYYY); a day/month swap also matches, with a lower score"),
        ("address" = Option<String>, Query, description = "Free text over tenure addresses"),
        ("postcode" = Option<String>, Query, description = "UK postcode, any case, with or without the space"),
        ("nino" = Option<String>, Query, description = "National Insurance number in any spacing or case; needs `equality:read` too"),
        ("q" = Option<String>, Query, description = "Free text over names (in any order), address and personRef"),
        ("personType" = Option<String>, Query, pattern = r"^[ \t\n\r]*(Tenant|HouseholdMember|Leaseholder|Freeholder|Occupant|HousingOfficer|HousingAreaManager)?[ \t\n\r]*$", description = "Only persons of this type (Tenant, HouseholdMember, Leaseholder, Freeholder, Occupant, HousingOfficer, HousingAreaManager)"),
        ("reference" = Option<String>, Query, pattern = r"^[ \t\n\r]*$|^[ \t\n\r]*[a-z][a-z0-9._-]{0,63}:\S", description = "`system:id` of a cross-reference (e.g. `tenure:9f3c…`; split at the first colon): finds the one live person holding it (0 or 1 result); no other criterion may be given"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Results per page, 1 to 200 (default 20)"),
        ("cursor" = Option<String>, Query, pattern = r"^[ \t\n\r]*[0-9]{1,9}[ \t\n\r]*$", description = "Opaque: the cursor of a previous page's `links.next`"),
    ),
    responses(
        (status = 200, description = "A page of ranked results", body = SearchResponse),
        (status = 400, description = "No criterion; an unknown, repeated or invalid parameter; `limit` over 200; a bad cursor; a `reference` that is not `system:id` or comes with other criteria", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `persons:read`, or searches by `nino` without `equality:read`", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn search_persons(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Params(pairs): Params<Vec<(String, String)>>,
) -> Result<Json<SearchResponse>, ApiError> {
    let request = SearchRequest::parse(&pairs)?;
    let page = match &request.reference {
        Some(reference) => state.service.search_by_reference(&ctx, reference).await?,
        None => state.service.search(&ctx, request.query.clone()).await.map_err(|e| request.refused(e))?,
    };
    let results = page.hits.iter().map(|hit| SearchResult::new(&state, &ctx, hit)).collect();
    let next = page.next_offset.map(|offset| request.page_link(state.config.base_url(), offset));
    Ok(Json(SearchResponse { results, total: page.total, links: PageLinks { next } }))
}

/// The query string of Hackney's person search. Unknown parameters are ignored, as by the .NET API.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HousingSearchParams {
    search_text: Option<String>,
    page_size: Option<String>,
    page: Option<String>,
    person_type: Option<String>,
    /// Accepted for compatibility and ignored: results are always ranked by match score.
    #[expect(dead_code, reason = "accepted for Hackney compatibility; results are always ranked by score")]
    sort_by: Option<String>,
    /// Accepted for compatibility and ignored.
    #[expect(dead_code, reason = "accepted for Hackney compatibility; results are always ranked by score")]
    is_desc: Option<String>,
}

impl HousingSearchParams {
    pub(crate) fn query(&self) -> Result<SearchQuery, ApiError> {
        let text = self.search_text.as_deref().map(str::trim).unwrap_or_default();
        if text.chars().count() < MIN_SEARCH_TEXT_CHARS {
            return Err(ApiError::bad_parameter(
                "searchText",
                "invalid_value",
                format!("is required: at least {MIN_SEARCH_TEXT_CHARS} characters"),
            ));
        }
        let page_size = match self.page_size.as_deref().map(str::trim) {
            None | Some("") => DEFAULT_HOUSING_SEARCH_PAGE_SIZE,
            Some(raw) => decimal(raw).filter(|n| (1..=MAX_SEARCH_LIMIT).contains(n)).ok_or_else(|| {
                ApiError::bad_parameter(
                    "pageSize",
                    "invalid_limit",
                    format!("must be a number from 1 to {MAX_SEARCH_LIMIT}"),
                )
            })?,
        };
        // 1-based; 0 (the .NET default when `page` is absent) is the first page too.
        let page = match self.page.as_deref().map(str::trim) {
            None | Some("") => 1,
            Some(raw) => decimal(raw).filter(|page| *page <= MAX_HOUSING_SEARCH_PAGE).ok_or_else(|| {
                ApiError::bad_parameter(
                    "page",
                    "invalid_value",
                    format!("must be a page number from 1 to {MAX_HOUSING_SEARCH_PAGE}"),
                )
            })?,
        }
        .max(1);
        let offset = (page - 1)
            .checked_mul(page_size)
            .ok_or_else(|| ApiError::bad_parameter("page", "invalid_value", "is beyond the last possible page"))?;
        let person_type =
            self.person_type.as_deref().filter(|t| !t.trim().is_empty()).map(parse_person_type).transpose()?;
        Ok(SearchQuery {
            first_name: None,
            last_name: None,
            date_of_birth: None,
            address: None,
            postcode: None,
            nino: None,
            q: Some(text.to_owned()),
            person_type,
            limit: page_size,
            offset,
        })
    }
}

/// A tenure in Hackney's person search shape. Balances are the finance service's data and are not included.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HousingSearchTenure {
    /// Tenure id.
    id: uuid::Uuid,
    /// Tenure type, e.g. "Secure".
    #[serde(rename = "type")]
    tenure_type: Option<String>,
    /// Start date.
    start_date: Option<NaiveDate>,
    /// End date.
    end_date: Option<NaiveDate>,
    /// Full address.
    asset_full_address: Option<String>,
    /// Postcode (Hackney's spelling of the key).
    post_code: Option<String>,
    /// Payment reference.
    payment_reference: Option<String>,
    /// No end date, the 1900-01-01 sentinel, or an end date today or later.
    is_active: bool,
}

/// A person in Hackney's housing-search person shape (`Hackney.Shared.HousingSearch.Domain.Person.Person`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HousingSearchPerson {
    /// Id.
    #[schema(value_type = uuid::Uuid)]
    id: PersonId,
    /// Title.
    title: Option<Title>,
    /// First name (Hackney's spelling of the key).
    firstname: Option<String>,
    /// Middle name.
    middle_name: Option<String>,
    /// Surname.
    surname: String,
    /// Preferred first name.
    preferred_firstname: Option<String>,
    /// Preferred surname.
    preferred_surname: Option<String>,
    /// Date of birth.
    date_of_birth: Option<NaiveDate>,
    /// Roles.
    person_types: Vec<PersonType>,
    /// Always false: cautionary alerts are held by the cautionary alerts service.
    is_person_cautionary_alert: bool,
    /// Always false: cautionary alerts are held by the cautionary alerts service.
    is_tenure_cautionary_alert: bool,
    /// Tenures: active first, then Secure, then latest start.
    tenures: Vec<HousingSearchTenure>,
}

impl HousingSearchPerson {
    fn new(hit: &SearchHit, today: NaiveDate) -> Self {
        let person = PersonResponse::new(&hit.person, today, Vec::new());
        let tenures = person
            .tenures
            .into_iter()
            .map(|t| HousingSearchTenure {
                id: t.id,
                tenure_type: t.tenure_type,
                start_date: t.start_date,
                end_date: t.end_date,
                asset_full_address: t.asset_full_address,
                post_code: t.postcode,
                payment_reference: t.payment_reference,
                is_active: t.is_active,
            })
            .collect();
        Self {
            id: person.id,
            title: person.title,
            firstname: person.first_name,
            middle_name: person.middle_name,
            surname: person.surname,
            preferred_firstname: person.preferred_first_name,
            preferred_surname: person.preferred_surname,
            date_of_birth: person.date_of_birth,
            person_types: person.person_types,
            is_person_cautionary_alert: false,
            is_tenure_cautionary_alert: false,
            tenures,
        }
    }
}

/// `results` of Hackney's person search.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct HousingSearchResults {
    /// The persons found, best match first.
    persons: Vec<HousingSearchPerson>,
}

/// Hackney's person search answer (`APIResponse<GetPersonListResponse>`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct HousingSearchResponse {
    /// The page.
    results: HousingSearchResults,
    /// How many persons match in all.
    total: u64,
}

/// Hackney housing-search compatible person search: free text over names, address and personRef.
///
/// For front ends written against Hackney's `housing-search-api` (`GET /api/v1/search/persons`): the same
/// parameters and response shape, with this API's ranked, typo-tolerant matching behind it. `page` is 1-based
/// (0 or absent is the first page); `sortBy` and `isDesc` are accepted and ignored (results are ranked by match
/// score); other unknown parameters are ignored as by the .NET API.
#[utoipa::path(
    get,
    path = "/api/v1/search/persons",
    tag = "search",
    operation_id = "housingSearchPersons",
    params(
        ("searchText" = String, Query, pattern = r"\S[\s\S]*\S", description = "Free text, at least 2 characters: names in any order, address, personRef"),
        ("pageSize" = Option<String>, Query, pattern = r"^[ \t\n\r]*(0*([1-9]|[1-9][0-9]|1[0-9][0-9]|200))?[ \t\n\r]*$", description = "Results per page, 1 to 200 (default 12, as Hackney's; empty is the default)"),
        ("page" = Option<String>, Query, pattern = r"^[ \t\n\r]*([0-9]{1,7})?[ \t\n\r]*$", description = "1-based page number up to 9999999 (default 1; 0 and empty are the first page, as the .NET API's default)"),
        ("personType" = Option<String>, Query, pattern = r"^[ \t\n\r]*(Tenant|HouseholdMember|Leaseholder|Freeholder|Occupant|HousingOfficer|HousingAreaManager)?[ \t\n\r]*$", description = "Only persons of this type (Tenant, Leaseholder, …), case-insensitive; empty means any"),
        ("sortBy" = Option<String>, Query, description = "Accepted for compatibility, ignored (any value)"),
        ("isDesc" = Option<String>, Query, description = "Accepted for compatibility, ignored (any value)"),
    ),
    responses(
        (status = 200, description = "A page of persons, best match first", body = HousingSearchResponse),
        (status = 400, description = "`searchText` missing or under 2 characters; a bad `pageSize`, `page` or `personType`", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn housing_search(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Params(params): Params<HousingSearchParams>,
) -> Result<Json<HousingSearchResponse>, ApiError> {
    let query = params.query()?;
    let page = state.service.search(&ctx, query).await?;
    let today = state.service.today();
    let persons = page.hits.iter().map(|hit| HousingSearchPerson::new(hit, today)).collect();
    Ok(Json(HousingSearchResponse { results: HousingSearchResults { persons }, total: page.total }))
}

/// A match request: any subset of a person (schema for the OpenAPI document; the service reads the body).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[expect(dead_code, reason = "documents the body in the OpenAPI document; the service parses the bytes itself")]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct MatchRequest {
    /// First name.
    first_name: Option<String>,
    /// Middle name.
    middle_name: Option<String>,
    /// Surname.
    surname: Option<String>,
    /// Date of birth: `YYYY-MM-DD` (also `DD/MM/YYYY`).
    date_of_birth: Option<String>,
    /// Free-text address (a postcode in it is matched as one).
    address: Option<String>,
    /// UK postcode, with or without its space.
    postcode: Option<String>,
    /// National Insurance number in any spacing (needs `equality:read`).
    national_insurance_number: Option<String>,
    /// Most candidates to answer, 1 to 50 (default 10).
    #[schema(minimum = 1, maximum = 50)]
    count: Option<u32>,
}

/// One candidate of a match: the person, its score, grade and the comparisons that produced them.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MatchResult {
    /// The candidate.
    person: PersonResponse,
    /// 0..1: how likely the candidate is the person described.
    score: f64,
    /// `certain`, `probable` or `possible`.
    grade: Option<Grade>,
    /// True when a disagreeing identifier (the NI number) vetoed the match.
    vetoed: bool,
    /// Every field comparison: the field, the level reached and the weight it contributed.
    explanation: Vec<Comparison>,
}

impl MatchResult {
    fn new(state: &AppState, ctx: &RequestContext, candidate: MatchCandidate) -> Self {
        let score = candidate.score;
        Self {
            person: state.show(&candidate.person, ctx),
            score: score.score,
            grade: score.grade,
            vetoed: score.vetoed,
            explanation: score.comparisons,
        }
    }
}

/// The answer of a match.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct MatchResponse {
    /// The candidates, most likely first.
    results: Vec<MatchResult>,
}

/// Is this person already known? Ranked candidates with grade and explanation.
///
/// The body is any subset of a person. Each candidate comes with its `score` (0..1), `grade` (`certain`,
/// `probable`, `possible`) and an explanation listing each field comparison, the level it reached and the
/// weight it contributed (the model is documented in `docs/matching.md`). Deleted, merged-away and
/// processing-restricted persons are never candidates; matching on `nationalInsuranceNumber` also needs `equality:read`.
#[utoipa::path(
    post,
    path = "/api/v1/persons/match",
    tag = "search",
    operation_id = "matchPerson",
    request_body(content = MatchRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The candidates, most likely first", body = MatchResponse),
        (status = 400, description = "Malformed body, unknown key, wrong type", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `persons:read`, or matches on `nationalInsuranceNumber` without `equality:read`", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "Invalid values (every field listed), `count` not 1 to 50, or nothing to match on", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn match_person(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    JsonBody(body): JsonBody,
) -> Result<Json<MatchResponse>, ApiError> {
    let candidates = state.service.match_person(&ctx, &body).await?;
    Ok(Json(MatchResponse { results: candidates.into_iter().map(|c| MatchResult::new(&state, &ctx, c)).collect() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(query: &[(&str, &str)]) -> Vec<(String, String)> {
        query.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn field_of(error: ApiError) -> String {
        match error {
            ApiError::BadRequest { errors, .. } => errors.first().map(|e| e.field.clone()).unwrap_or_default(),
            other => panic!("not a 400: {other:?}"),
        }
    }

    #[test]
    fn criteria_limit_and_cursor_are_read() {
        let request = SearchRequest::parse(&pairs(&[
            ("surname", "Smith"),
            ("firstName", " John "),
            ("postcode", ""),
            ("limit", "5"),
            ("cursor", "10"),
            ("personType", "tenant"),
        ]))
        .unwrap();
        assert_eq!(request.query.first_name.as_deref(), Some("John"));
        assert_eq!(request.query.last_name.as_deref(), Some("Smith"));
        assert_eq!(request.query.postcode, None, "blank is absent");
        assert_eq!(request.query.person_type, Some(PersonType::Tenant));
        assert_eq!((request.query.limit, request.query.offset), (5, 10));
        assert_eq!(
            request.page_link("", 15),
            "/api/v1/persons?firstName=John&surname=Smith&personType=tenant&limit=5&cursor=15"
        );
    }

    #[test]
    fn defaults_are_the_first_page_of_twenty() {
        let request = SearchRequest::parse(&pairs(&[("q", "Zoë O'Neill")])).unwrap();
        assert_eq!((request.query.limit, request.query.offset), (DEFAULT_SEARCH_LIMIT, 0));
        assert_eq!(
            request.page_link("https://api.example", 20),
            "https://api.example/api/v1/persons?q=Zo%C3%AB%20O%27Neill&limit=20&cursor=20"
        );
    }

    #[test]
    fn bad_parameters_are_400s_naming_the_parameter() {
        for (query, field) in [
            (vec![("q", "x"), ("limit", "201")], "limit"),
            (vec![("q", "x"), ("limit", "0")], "limit"),
            (vec![("q", "x"), ("limit", "ten")], "limit"),
            (vec![("q", "x"), ("cursor", "-1")], "cursor"),
            (vec![("q", "x"), ("cursor", "abc")], "cursor"),
            (vec![("q", "x"), ("firstname", "John")], "firstname"),
            (vec![("q", "x"), ("q", "y")], "q"),
            (vec![("lastName", "x"), ("surname", "y")], "surname"),
            (vec![("reference", "housing-register")], "reference"),
            (vec![("reference", "Tenure:1")], "reference"),
            (vec![("reference", "tenure:1"), ("firstName", "Ada")], "reference"),
            (vec![("q", "x"), ("personType", "Landlord")], "personType"),
        ] {
            let error = SearchRequest::parse(&pairs(&query)).unwrap_err();
            assert_eq!(field_of(error), field, "{query:?}");
        }
    }

    #[test]
    fn a_reference_is_split_at_its_first_colon() {
        let request = SearchRequest::parse(&pairs(&[("reference", "tenure:a:b")])).unwrap();
        let reference = request.reference.unwrap();
        assert_eq!((reference.system.as_str(), reference.id.as_str()), ("tenure", "a:b"));
    }

    #[test]
    fn no_criterion_is_a_400() {
        for query in [vec![], vec![("limit", "5")], vec![("firstName", "  ")]] {
            assert!(matches!(SearchRequest::parse(&pairs(&query)), Err(ApiError::BadRequest { .. })), "{query:?}");
        }
    }

    #[test]
    fn every_person_type_is_named_as_it_is_serialised() {
        for person_type in PERSON_TYPES {
            assert_eq!(serde_json::to_value(person_type).unwrap(), person_type_name(person_type));
        }
    }

    fn housing(search_text: Option<&str>, page_size: Option<&str>, page: Option<&str>) -> HousingSearchParams {
        HousingSearchParams {
            search_text: search_text.map(str::to_owned),
            page_size: page_size.map(str::to_owned),
            page: page.map(str::to_owned),
            person_type: None,
            sort_by: None,
            is_desc: None,
        }
    }

    #[test]
    fn housing_search_pages_are_1_based_with_hackneys_default_size() {
        let query = housing(Some("smith"), None, None).query().unwrap();
        assert_eq!((query.limit, query.offset), (DEFAULT_HOUSING_SEARCH_PAGE_SIZE, 0));
        assert_eq!(query.q.as_deref(), Some("smith"));
        let query = housing(Some("smith"), Some("5"), Some("3")).query().unwrap();
        assert_eq!((query.limit, query.offset), (5, 10));
        let query = housing(Some("smith"), Some("5"), Some("0")).query().unwrap();
        assert_eq!(query.offset, 0);
    }

    #[test]
    fn housing_search_needs_two_characters_and_a_sane_page_size() {
        for params in [
            housing(None, None, None),
            housing(Some(" a "), None, None),
            housing(Some("smith"), Some("0"), None),
            housing(Some("smith"), Some("201"), None),
            housing(Some("smith"), None, Some("-1")),
            housing(Some("smith"), None, Some("10000000")),
            housing(Some("smith"), None, Some("4294967296")),
        ] {
            assert!(params.query().is_err(), "{params:?}");
        }
        let last = housing(Some("smith"), Some("200"), Some("9999999")).query().unwrap();
        assert_eq!(last.offset, 9_999_998 * 200, "the last page's offset fits");
    }
}
