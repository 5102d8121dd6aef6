//! Person endpoints: create (v1 and v2, with duplicate prevention), read, merge-patch update, soft delete,
//! history, restriction of processing, and merging a duplicate into a survivor.
//!
//! Each handler extracts, calls one [`PersonService`](person_core::PersonService) use case and maps the result
//! to a response; validation, versions and events are the service's business.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::{self, HeaderName};
use person_core::EventVersion;
use person_core::RequestContext;
use person_core::ValidationErrors;
use person_core::api::{HistoryResponse, PersonResponse, ProblemDetails};
use person_core::person::Person;
use person_core::service::CreateOptions;
use person_core::validate::BodyError;
use person_core::validate::{MAX_FREE_TEXT, PersonDraft, codes, parse_object};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::person_location;
use crate::error::{ApiError, DuplicatePersonProblem};
use crate::extract::{Caller, IdempotencyKey, IfMatch, JsonBody, Params, PersonPath, Prefer};
use crate::state::AppState;

/// Set on a 201 that replays an earlier create with the same `Idempotency-Key`.
const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// RFC 7240: says which preference was honoured.
const PREFERENCE_APPLIED: HeaderName = HeaderName::from_static("preference-applied");

/// `ETag` of a version: a strong tag holding the version number.
pub(crate) fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

fn show(state: &AppState, ctx: &RequestContext, person: &Person) -> Json<PersonResponse> {
    Json(state.show(person, ctx))
}

/// Create a person.
///
/// Duplicate prevention: a person already recorded beyond reasonable doubt (a `certain` match) is refused with
/// a 409 `duplicate-person` problem listing the candidates, unless `?allowDuplicate=true`. Race-safe: of
/// concurrent creates of the same person exactly one succeeds.
///
/// Honours `Idempotency-Key`: the same key with the same body answers the original 201 again (with
/// `Idempotent-Replayed: true`) and creates nothing; the same key with another body is a 422.
#[utoipa::path(
    post,
    path = "/api/v1/persons",
    tag = "persons",
    operation_id = "createPerson",
    params(
        ("allowDuplicate" = Option<bool>, Query, description = "`true` creates the person even when it matches a recorded one (the body's `reason` says why)"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: 1 to 255 characters, unique per intended create"),
        ("x-correlation-id" = Option<String>, Header, description = "Correlation id (generated when absent), echoed back"),
    ),
    request_body(content = PersonDraft, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = PersonResponse, headers(
            ("Location" = String, description = "/api/v1/persons/{id}"),
            ("ETag" = String, description = "\"0\""),
        )),
        (status = 400, description = "Malformed body, wrong type, unknown or read-only key; `allowDuplicate` not true or false", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "A person with the supplied id exists (`duplicate-id`), or the person is already recorded (`duplicate-person`, with `candidates`)", body = DuplicatePersonProblem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 1 MiB", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields (all listed), or an idempotency key reused with another body", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn create_v1(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    IdempotencyKey(key): IdempotencyKey,
    Params(params): Params<CreateParams>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    create(&state, &ctx, key, params.allow_duplicate()?, &body, EventVersion::V1).await
}

/// Create a person, publishing a `v2` event (Hackney listener compatibility); otherwise identical to v1.
#[utoipa::path(
    post,
    path = "/api/v2/persons",
    tag = "persons",
    operation_id = "createPersonV2",
    params(
        ("allowDuplicate" = Option<bool>, Query, description = "`true` creates the person even when it matches a recorded one"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe"),
    ),
    request_body(content = PersonDraft, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = PersonResponse, headers(
            ("Location" = String, description = "/api/v1/persons/{id}"),
            ("ETag" = String, description = "\"0\""),
        )),
        (status = 400, description = "Malformed body", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "The id is taken (`duplicate-id`), or the person is already recorded (`duplicate-person`, with `candidates`)", body = DuplicatePersonProblem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn create_v2(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    IdempotencyKey(key): IdempotencyKey,
    Params(params): Params<CreateParams>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    create(&state, &ctx, key, params.allow_duplicate()?, &body, EventVersion::V2).await
}

/// Query parameters of a create.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateParams {
    /// `true` skips duplicate prevention.
    allow_duplicate: Option<String>,
}

impl CreateParams {
    /// `allowDuplicate`: absent or `false` (the default), or `true`; anything else is a 400 naming it.
    fn allow_duplicate(&self) -> Result<bool, ApiError> {
        match self.allow_duplicate.as_deref().map(str::trim) {
            None => Ok(false),
            Some(raw) if raw.eq_ignore_ascii_case("true") => Ok(true),
            Some(raw) if raw.eq_ignore_ascii_case("false") => Ok(false),
            Some(_) => Err(ApiError::bad_parameter("allowDuplicate", "invalid_value", "must be true or false")),
        }
    }
}

async fn create(
    state: &AppState,
    ctx: &person_core::RequestContext,
    idempotency_key: Option<String>,
    allow_duplicate: bool,
    body: &[u8],
    event_version: EventVersion,
) -> Result<Response, ApiError> {
    let options = CreateOptions { event_version, idempotency_key, allow_duplicate };
    let created = state.service.create(ctx, body, options).await?;
    let person = &created.person;
    let headers = [(header::LOCATION, person_location(person.id)), (header::ETAG, etag(person.version_number))];
    let mut response = (StatusCode::CREATED, headers, show(state, ctx, person)).into_response();
    if created.replayed {
        response.headers_mut().insert(IDEMPOTENT_REPLAYED, http::HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// Read a person.
#[utoipa::path(
    get,
    path = "/api/v1/persons/{id}",
    tag = "persons",
    operation_id = "getPerson",
    params(("id" = uuid::Uuid, Path, description = "The person's id")),
    responses(
        (status = 200, description = "The person", body = PersonResponse, headers(("ETag" = String, description = "The version, e.g. \"3\""))),
        (status = 308, description = "Merged into another person: `Location` names the survivor", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 400, description = "The id is not a UUID", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such person", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 410, description = "The person was deleted", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn get_person(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    PersonPath(id): PersonPath,
) -> Result<Response, ApiError> {
    let person = state.service.get(&ctx, id).await?;
    Ok(([(header::ETAG, etag(person.version_number))], show(&state, &ctx, &person)).into_response())
}

/// Change a person with a JSON merge patch.
///
/// Absent keys are unchanged, `null` clears, lists are replaced whole; `reason` is the reason for this change.
/// A patch that changes nothing answers 204 with the unchanged `ETag` and creates no version or event.
#[utoipa::path(
    patch,
    path = "/api/v1/persons/{id}",
    tag = "persons",
    operation_id = "updatePerson",
    params(
        ("id" = uuid::Uuid, Path, description = "The person's id"),
        ("If-Match" = String, Header, description = "The version the change is based on: \"3\", 3 or W/\"3\""),
        ("Prefer" = Option<String>, Header, description = "`return=representation` to get the person back (200)"),
    ),
    request_body(content(
        (PersonDraft = "application/merge-patch+json"),
        (PersonDraft = "application/json"),
    )),
    responses(
        (status = 200, description = "Changed (Prefer: return=representation)", body = PersonResponse, headers(("ETag" = String))),
        (status = 204, description = "Changed, or nothing to change", headers(("ETag" = String, description = "The version now stored"))),
        (status = 400, description = "Malformed patch, unknown or read-only key, bad If-Match", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such person", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "Stale If-Match (`version-conflict`, `currentVersion` holds the stored version), the person was merged (`merged`, `Location` names the survivor), or the change would make the person a duplicate of another (`duplicate-person`, with `candidates`)", body = DuplicatePersonProblem, content_type = "application/problem+json"),
        (status = 410, description = "The person was deleted", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "The patched person would be invalid", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 428, description = "If-Match is missing", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn update_person(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    PersonPath(id): PersonPath,
    if_match: IfMatch,
    prefer: Prefer,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let expected = if_match.required()?;
    let updated = state.service.update(&ctx, id, expected, &body).await?;
    let tag = [(header::ETAG, etag(updated.person.version_number))];
    if prefer.representation {
        let applied = [(PREFERENCE_APPLIED, "return=representation")];
        Ok((tag, applied, show(&state, &ctx, &updated.person)).into_response())
    } else {
        Ok((StatusCode::NO_CONTENT, tag).into_response())
    }
}

/// Query parameters of a delete.
#[derive(Debug, Deserialize)]
pub(crate) struct DeleteParams {
    /// Why the person is deleted (recorded in history).
    reason: Option<String>,
}

/// Soft-delete a person: reads answer 410 afterwards; history is kept.
#[utoipa::path(
    delete,
    path = "/api/v1/persons/{id}",
    tag = "persons",
    operation_id = "deletePerson",
    params(
        ("id" = uuid::Uuid, Path, description = "The person's id"),
        ("reason" = Option<String>, Query, description = "Why the person is deleted (recorded in history)"),
        ("If-Match" = Option<String>, Header, description = "When given, the delete applies only to this version"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such person", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "Stale If-Match, or the person was merged (`Location` names the survivor)", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 410, description = "Already deleted", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn delete_person(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    PersonPath(id): PersonPath,
    IfMatch(expected): IfMatch,
    Params(params): Params<DeleteParams>,
) -> Result<StatusCode, ApiError> {
    state.service.delete(&ctx, id, expected, params.reason).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every version of a person (in any state), oldest first: who, when, why, old and new values.
#[utoipa::path(
    get,
    path = "/api/v1/persons/{id}/history",
    tag = "persons",
    operation_id = "getPersonHistory",
    params(("id" = uuid::Uuid, Path, description = "The person's id")),
    responses(
        (status = 200, description = "The history", body = HistoryResponse),
        (status = 400, description = "The id is not a UUID", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such person", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn history(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    PersonPath(id): PersonPath,
) -> Result<Json<HistoryResponse>, ApiError> {
    let results = state.service.history(&ctx, id).await?;
    Ok(Json(HistoryResponse { results }))
}

/// The body of `PUT /api/v1/persons/{id}/processing-restriction`.
#[derive(Debug, Clone, PartialEq, Eq, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RestrictionRequest {
    /// `true` restricts processing (the person disappears from listings and reads need `admin`); `false` lifts
    /// the restriction.
    restricted: bool,
    /// Why (recorded in the person's history), up to 500 characters.
    reason: Option<String>,
}

impl RestrictionRequest {
    /// Reads the body: unknown keys and wrong types are a 400 naming the field, a missing `restricted` or an
    /// over-long `reason` a 422. Values are never echoed.
    fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let map = parse_object(body)?;
        if let Some(key) = map.keys().find(|key| !matches!(key.as_str(), "restricted" | "reason")) {
            return Err(BodyError::UnknownField(person_core::validate::pointer_token(key)).into());
        }
        let invalid = |field: &str, expected: &str| BodyError::InvalidValue {
            field: field.to_owned(),
            reason: expected.to_owned(),
        };
        let mut errors = ValidationErrors::default();
        let restricted = match map.get("restricted") {
            Some(Value::Bool(restricted)) => *restricted,
            None | Some(Value::Null) => {
                errors.push("/restricted", codes::REQUIRED, "restricted (true or false) is required");
                false
            }
            Some(_) => return Err(invalid("/restricted", "invalid type, expected a boolean").into()),
        };
        let reason = match map.get("reason") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => {
                let text = text.trim();
                if text.chars().count() > MAX_FREE_TEXT {
                    errors.push("/reason", codes::TOO_LONG, format!("must be at most {MAX_FREE_TEXT} characters"));
                } else if text.chars().any(char::is_control) {
                    errors.push("/reason", codes::CONTROL_CHARACTERS, "must not contain control characters");
                }
                (!text.is_empty()).then(|| text.to_owned())
            }
            Some(_) => return Err(invalid("/reason", "invalid type, expected a string").into()),
        };
        if errors.is_empty() { Ok(Self { restricted, reason }) } else { Err(errors.into()) }
    }
}

/// Restrict (or lift the restriction of) the processing of a person's data (UK GDPR art. 18).
///
/// A restricted person is hidden from the event feed and every listing for callers without `admin`, and reading
/// or changing it needs `admin`. The change is a new version of the person (history, `PersonUpdatedEvent`);
/// setting the value it already has changes nothing. Answers the person with its new `ETag`.
#[utoipa::path(
    put,
    path = "/api/v1/persons/{id}/processing-restriction",
    tag = "persons",
    operation_id = "setProcessingRestriction",
    params(
        ("id" = uuid::Uuid, Path, description = "The person's id"),
        ("If-Match" = Option<String>, Header, description = "When given, the change applies only to this version of the person"),
    ),
    request_body(content = RestrictionRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The person after the change", body = PersonResponse, headers(("ETag" = String, description = "The person's version now stored"))),
        (status = 400, description = "Malformed body, unknown key, wrong type, bad If-Match", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such person", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "Stale If-Match (`currentVersion`), or the person was merged", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 410, description = "The person was deleted", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "`restricted` missing, or `reason` too long", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn set_restriction(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    PersonPath(id): PersonPath,
    IfMatch(expected): IfMatch,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let request = RestrictionRequest::parse(&body)?;
    let updated = state.service.set_restriction(&ctx, id, request.restricted, expected, request.reason).await?;
    let tag = [(header::ETAG, etag(updated.person.version_number))];
    Ok((tag, show(&state, &ctx, &updated.person)).into_response())
}

/// The body of `POST /api/v1/persons/{id}/merge` (schema for the OpenAPI document; the service reads the body).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[expect(dead_code, reason = "documents the body in the OpenAPI document; the service parses the bytes itself")]
pub(crate) struct MergeRequest {
    /// The person to merge into the survivor of the path; it becomes a tombstone answering 308.
    duplicate_id: uuid::Uuid,
    /// Why (recorded in both persons' history and the event), up to 500 characters.
    reason: String,
}

/// Merge a duplicate into this person (the survivor).
///
/// Atomically: the survivor keeps its values and gains those it lacks from the duplicate, and the duplicate's
/// tenures, equality data and extended data (where the survivor has none for that area); the duplicate becomes
/// a tombstone merged into the survivor (reads answer 308 with `Location` of the survivor, writes 409
/// `merged`); one `PersonMergedEvent` is published; both histories are kept. `If-Match` names the survivor's
/// version. Answers the survivor as it now is, with its new `ETag`.
#[utoipa::path(
    post,
    path = "/api/v1/persons/{id}/merge",
    tag = "persons",
    operation_id = "mergePerson",
    params(
        ("id" = uuid::Uuid, Path, description = "The survivor's id"),
        ("If-Match" = String, Header, description = "The survivor's version the merge is based on"),
    ),
    request_body(content = MergeRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Merged: the survivor", body = PersonResponse, headers(("ETag" = String, description = "The survivor's new version"))),
        (status = 400, description = "Malformed body, unknown key, wrong type, bad If-Match, the id is not a UUID", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such survivor", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "Stale If-Match (`version-conflict`, `currentVersion`), or the survivor itself was merged (`merged`, `Location` names its survivor)", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 410, description = "The survivor was deleted", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body; or `duplicateId` is the survivor itself (`self_merge`), names no person (`unknown_person`), a deleted one (`deleted_person`) or one already merged (`merged_person`)", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 428, description = "If-Match is missing", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn merge(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    PersonPath(survivor): PersonPath,
    if_match: IfMatch,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let expected = if_match.required()?;
    let person = state.service.merge(&ctx, survivor, expected, &body).await?;
    Ok(([(header::ETAG, etag(person.version_number))], show(&state, &ctx, &person)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_duplicate_is_true_false_or_absent() {
        let params = |raw: Option<&str>| CreateParams { allow_duplicate: raw.map(str::to_owned) };
        assert!(!params(None).allow_duplicate().unwrap());
        assert!(params(Some("true")).allow_duplicate().unwrap());
        assert!(params(Some("TRUE")).allow_duplicate().unwrap());
        assert!(!params(Some("false")).allow_duplicate().unwrap());
        for bad in ["", "yes", "1"] {
            assert!(params(Some(bad)).allow_duplicate().is_err(), "{bad}");
        }
    }
}
