//! A person's versioned documents: equality data (`/equality`) and each service area's extended data
//! (`/extended/{area}`).
//!
//! Each document has its own version, independent of the person's: `ETag` on every answer, `If-Match` optional
//! for the first write (which answers 201), required for every later one (428 without it, 409 when stale).
//! Equality values never leave through any other endpoint than these and subject access, and are never logged.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header;
use person_core::api::ProblemDetails;
use person_core::documents::{DocumentBody, StoredDocument};
use person_core::equality::EqualityData;
use person_core::person::PersonId;
use serde_json::{Map, Value};

use super::persons::etag;
use crate::error::ApiError;
use crate::extract::{AreaPath, Caller, IfMatch, JsonBody, PersonPath};
use crate::state::AppState;

/// An extended-data document: any JSON object (schema for the OpenAPI document).
pub(crate) type ExtendedObject = Map<String, Value>;

fn wrong_kind() -> ApiError {
    ApiError::internal(std::io::Error::other("the store returned a document of another kind"))
}

/// `200` (replaced) or `201` with `Location` (first write), with the document and its `ETag`.
fn written(location: String, version: u64, body: Value) -> Response {
    let tag = [(header::ETAG, etag(version))];
    if version == 0 {
        (StatusCode::CREATED, tag, [(header::LOCATION, location)], Json(body)).into_response()
    } else {
        (tag, Json(body)).into_response()
    }
}

fn equality_body(document: StoredDocument) -> Result<(u64, EqualityData), ApiError> {
    match document.body {
        DocumentBody::Equality(data) => Ok((document.version, data)),
        DocumentBody::Extended(_) => Err(wrong_kind()),
    }
}

fn extended_body(document: StoredDocument) -> Result<(u64, ExtendedObject), ApiError> {
    match document.body {
        DocumentBody::Extended(object) => Ok((document.version, object)),
        DocumentBody::Equality(_) => Err(wrong_kind()),
    }
}

fn equality_path(id: PersonId) -> String {
    format!("/api/v1/persons/{id}/equality")
}

/// Read a person's equality data.
///
/// Special-category data (SPEC §7): the read is recorded in the person's access log.
#[utoipa::path(
    get,
    path = "/api/v1/persons/{id}/equality",
    tag = "equality",
    operation_id = "getEquality",
    params(("id" = uuid::Uuid, Path, description = "The person's id")),
    responses(
        (status = 200, description = "The equality data", body = EqualityData, headers(("ETag" = String, description = "The document's version, e.g. \"0\""))),
        (status = 400, description = "The id is not a UUID", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such person, or no equality data recorded", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "The person was merged (`Location` names the survivor)", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 410, description = "The person was deleted", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn get_equality(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    PersonPath(id): PersonPath,
) -> Result<Response, ApiError> {
    let (version, data) = equality_body(state.service.equality(&ctx, id).await?)?;
    Ok(([(header::ETAG, etag(version))], Json(data)).into_response())
}

/// Record or replace a person's equality data.
///
/// Every field is optional; the document is replaced whole. Codes are validated (ONS 2021 categories, ISO
/// 3166-1 alpha-2 nationalities, HMRC National Insurance number rules) and stored normalised (`ab 12 34 56 c` →
/// `AB123456C`); every invalid field is listed in one 422. The first write needs no `If-Match` and answers 201;
/// later writes need the `ETag` they are based on.
#[utoipa::path(
    put,
    path = "/api/v1/persons/{id}/equality",
    tag = "equality",
    operation_id = "putEquality",
    params(
        ("id" = uuid::Uuid, Path, description = "The person's id"),
        ("If-Match" = Option<String>, Header, description = "The document version the write is based on; required once a document exists"),
    ),
    request_body(content = EqualityData, content_type = "application/json"),
    responses(
        (status = 200, description = "Replaced: the stored (normalised) data", body = EqualityData, headers(("ETag" = String))),
        (status = 201, description = "Recorded for the first time", body = EqualityData, headers(("ETag" = String, description = "\"0\""), ("Location" = String))),
        (status = 400, description = "Malformed body, unknown key, wrong type, bad If-Match", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such person", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "Stale If-Match (`currentVersion` holds the stored version), If-Match with nothing stored, or the person was merged", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 410, description = "The person was deleted", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "Invalid values (every field listed: `/nationalInsuranceNumber`, `/ethnicity/code` …)", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 428, description = "A document exists and If-Match is missing", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn put_equality(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    PersonPath(id): PersonPath,
    IfMatch(expected): IfMatch,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let (version, data) = equality_body(state.service.put_equality(&ctx, id, expected, &body).await?)?;
    let body = serde_json::to_value(&data).map_err(ApiError::internal)?;
    Ok(written(equality_path(id), version, body))
}

/// Read one service area's extended data for a person.
///
/// `{area}` is 1 to 64 lowercase letters, digits and single hyphens, starting with a letter (`social-care`); any
/// other name is a 400. The read is recorded in the person's access log.
#[utoipa::path(
    get,
    path = "/api/v1/persons/{id}/extended/{area}",
    tag = "extended",
    operation_id = "getExtended",
    params(
        ("id" = uuid::Uuid, Path, description = "The person's id"),
        ("area" = String, Path, description = "The service area, e.g. `social-care`"),
    ),
    responses(
        (status = 200, description = "The area's document (a JSON object)", body = Object, headers(("ETag" = String))),
        (status = 400, description = "The id is not a UUID, or the area name is invalid", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such person, or nothing stored for this area", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "The person was merged", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 410, description = "The person was deleted", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn get_extended(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    AreaPath(id, area): AreaPath,
) -> Result<Response, ApiError> {
    let (version, object) = extended_body(state.service.extended(&ctx, id, &area).await?)?;
    Ok(([(header::ETAG, etag(version))], Json(object)).into_response())
}

/// Store or replace one service area's extended data: any JSON object up to 64 KiB (compact JSON).
///
/// The first write needs no `If-Match` and answers 201; later writes need the `ETag` they are based on.
#[utoipa::path(
    put,
    path = "/api/v1/persons/{id}/extended/{area}",
    tag = "extended",
    operation_id = "putExtended",
    params(
        ("id" = uuid::Uuid, Path, description = "The person's id"),
        ("area" = String, Path, description = "The service area, e.g. `social-care`"),
        ("If-Match" = Option<String>, Header, description = "The document version the write is based on; required once a document exists"),
    ),
    request_body(content = Object, content_type = "application/json", description = "Any JSON object"),
    responses(
        (status = 200, description = "Replaced", body = Object, headers(("ETag" = String))),
        (status = 201, description = "Stored for the first time", body = Object, headers(("ETag" = String, description = "\"0\""), ("Location" = String))),
        (status = 400, description = "Not a JSON object, bad id, area or If-Match", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such person", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "Stale If-Match (`currentVersion`), If-Match with nothing stored, or the person was merged", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 410, description = "The person was deleted", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 413, description = "Document over 64 KiB", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 428, description = "A document exists and If-Match is missing", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn put_extended(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    AreaPath(id, area): AreaPath,
    IfMatch(expected): IfMatch,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let (version, object) = extended_body(state.service.put_extended(&ctx, id, &area, expected, &body).await?)?;
    Ok(written(format!("/api/v1/persons/{id}/extended/{area}"), version, Value::Object(object)))
}

/// Delete one service area's extended data (`If-Match` optional: when given, only that version is deleted).
#[utoipa::path(
    delete,
    path = "/api/v1/persons/{id}/extended/{area}",
    tag = "extended",
    operation_id = "deleteExtended",
    params(
        ("id" = uuid::Uuid, Path, description = "The person's id"),
        ("area" = String, Path, description = "The service area, e.g. `social-care`"),
        ("If-Match" = Option<String>, Header, description = "When given, the delete applies only to this version"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Bad id, area or If-Match", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such person, or nothing stored for this area", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "Stale If-Match (`currentVersion`), or the person was merged", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 410, description = "The person was deleted", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn delete_extended(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    AreaPath(id, area): AreaPath,
    IfMatch(expected): IfMatch,
) -> Result<StatusCode, ApiError> {
    state.service.delete_extended(&ctx, id, &area, expected).await?;
    Ok(StatusCode::NO_CONTENT)
}
