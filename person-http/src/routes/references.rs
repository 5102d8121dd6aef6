//! Cross-reference endpoints (SPEC §8): list, add and remove the records in other systems that belong to a
//! person. Each change is a new version of the person (new `ETag`, a `PersonUpdatedEvent`, a history entry);
//! `If-Match` is optional: without it the change applies to whatever version is current, because adding or
//! removing one reference commutes with every other change.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header;
use person_core::api::ProblemDetails;
use person_core::person::{Person, PersonId};
use person_core::reference::{CrossReference, ReferenceId, ReferenceSystem};
use person_core::service::ReferenceRequest;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::persons::etag;
use crate::error::{ApiError, ReferenceTakenProblem};
use crate::extract::{Caller, IfMatch, JsonBody, Params, PersonPath};
use crate::state::AppState;

/// A person's references.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ReferencesResponse {
    /// The person.
    person_id: PersonId,
    /// The person's version (also the `ETag`).
    version_number: u64,
    /// The references, sorted by system then id.
    references: Vec<CrossReference>,
}

/// The body of `POST /api/v1/persons/{id}/references`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "the schema of the body the service parses")]
pub(crate) struct AddReferenceBody {
    /// The other system, e.g. `tenure`: 1–64 lowercase letters, digits, `-`, `_`, `.`, starting with a letter.
    system: String,
    /// The record's id in that system: 1–200 characters, kept exactly as given (no surrounding spaces, no
    /// control characters).
    id: String,
    /// Why (recorded in the person's history).
    reason: Option<String>,
}

fn answer(status: StatusCode, person: &Person) -> Response {
    let body = ReferencesResponse {
        person_id: person.id,
        version_number: person.version_number,
        references: person.references.clone(),
    };
    (status, [(header::ETAG, etag(person.version_number))], Json(body)).into_response()
}

/// The references a person holds: records in other systems that belong to it.
#[utoipa::path(
    get,
    path = "/api/v1/persons/{id}/references",
    tag = "references",
    operation_id = "getPersonReferences",
    params(("id" = uuid::Uuid, Path, description = "The person's id")),
    responses(
        (status = 200, description = "The references", body = ReferencesResponse, headers(("ETag" = String, description = "The person's version"))),
        (status = 308, description = "Merged into another person", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such person", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 410, description = "The person was deleted", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    PersonPath(id): PersonPath,
) -> Result<Response, ApiError> {
    let person = state.service.references(&ctx, id).await?;
    Ok(answer(StatusCode::OK, &person))
}

/// Add a reference: record that a record of another system belongs to this person.
///
/// One external record belongs to one person: a reference another live person holds is refused with 409
/// `reference-taken` naming the owner (merge the two persons if they are the same). Adding a reference the
/// person already holds changes nothing (200). A person holds at most 25 references.
#[utoipa::path(
    post,
    path = "/api/v1/persons/{id}/references",
    tag = "references",
    operation_id = "addPersonReference",
    params(
        ("id" = uuid::Uuid, Path, description = "The person's id"),
        ("If-Match" = Option<String>, Header, description = "When given, the change applies only to this version"),
    ),
    request_body(content = AddReferenceBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Added: a new version of the person", body = ReferencesResponse, headers(("ETag" = String, description = "The new version"))),
        (status = 200, description = "Already held: nothing changed", body = ReferencesResponse),
        (status = 400, description = "Malformed body or unknown key", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `references:write`", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such person", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "Another person holds the reference (`reference-taken`, naming the `owner`), a stale If-Match, or a merged person", body = ReferenceTakenProblem, content_type = "application/problem+json"),
        (status = 410, description = "The person was deleted", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "Missing or invalid `system`/`id`/`reason`, or 25 references already held", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn add(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    PersonPath(id): PersonPath,
    IfMatch(expected): IfMatch,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let request = ReferenceRequest::parse(&body)?;
    let updated = state.service.add_reference(&ctx, id, expected, request).await?;
    let status = if updated.changed { StatusCode::CREATED } else { StatusCode::OK };
    Ok(answer(status, &updated.person))
}

/// The query of `DELETE /api/v1/persons/{id}/references`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RemoveParams {
    system: Option<String>,
    id: Option<String>,
    reason: Option<String>,
}

impl RemoveParams {
    fn reference(&self) -> Result<CrossReference, ApiError> {
        let required = |name: &str| ApiError::bad_parameter(name, "required", "is required");
        let invalid = |name: &str, e: person_core::reference::InvalidReference| {
            ApiError::bad_parameter(name, "invalid_reference", e.to_string())
        };
        let system = self.system.as_deref().ok_or_else(|| required("system"))?;
        let id = self.id.as_deref().ok_or_else(|| required("id"))?;
        Ok(CrossReference::new(
            ReferenceSystem::parse(system).map_err(|e| invalid("system", e))?,
            ReferenceId::parse(id).map_err(|e| invalid("id", e))?,
        ))
    }
}

/// Remove a reference (the record no longer belongs to this person; another person may then claim it).
#[utoipa::path(
    delete,
    path = "/api/v1/persons/{id}/references",
    tag = "references",
    operation_id = "removePersonReference",
    params(
        ("id" = uuid::Uuid, Path, description = "The person's id"),
        ("system" = String, Query, description = "The reference's system"),
        ("id" = String, Query, description = "The reference's id (URL-encoded)"),
        ("reason" = Option<String>, Query, description = "Why (recorded in the person's history)"),
        ("If-Match" = Option<String>, Header, description = "When given, the change applies only to this version"),
    ),
    responses(
        (status = 204, description = "Removed: a new version of the person", headers(("ETag" = String, description = "The new version"))),
        (status = 400, description = "`system` or `id` missing or invalid", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `references:write`", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such person, or the person holds no such reference", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "Stale If-Match, or a merged person", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 410, description = "The person was deleted", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn remove(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    PersonPath(id): PersonPath,
    IfMatch(expected): IfMatch,
    Params(params): Params<RemoveParams>,
) -> Result<Response, ApiError> {
    let reference = params.reference()?;
    let reason = reason_of(params.reason)?;
    let updated = state.service.remove_reference(&ctx, id, expected, &reference, reason).await?;
    Ok((StatusCode::NO_CONTENT, [(header::ETAG, etag(updated.person.version_number))]).into_response())
}

/// A query-string reason, checked like a body's (free text, no markup); blank is none.
fn reason_of(reason: Option<String>) -> Result<Option<String>, ApiError> {
    let mut errors = person_core::ValidationErrors::default();
    let reason = person_core::validate::optional_text(reason.as_deref(), "reason", &mut errors);
    if errors.is_empty() { Ok(reason) } else { Err(ApiError::invalid_parameters(errors)) }
}
