//! Information governance: a person's access log (who read or changed what, when, why) and the subject-access
//! export (everything held about the person).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use person_core::api::{PageLinks, PersonResponse, ProblemDetails};
use person_core::audit::AuditEntry;
use person_core::documents::{DocumentBody, DocumentKind};
use person_core::equality::EqualityData;
use person_core::event::HistoryEntry;
use person_core::ports::AuditRecord;
use person_core::service::MAX_ACCESS_LOG_LIMIT;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::events::PageQuery;
use crate::error::ApiError;
use crate::extract::{Caller, Params, PersonPath};
use crate::state::AppState;

/// One access-log entry with its position (pass the last position as `after` to read on).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AccessLogRecord {
    /// Position in the audit log (strictly increasing).
    position: u64,
    /// The entry: actor, action, person ids, purpose, correlation id, time, outcome.
    entry: AuditEntry,
}

impl From<AuditRecord> for AccessLogRecord {
    fn from(record: AuditRecord) -> Self {
        Self { position: record.position, entry: record.entry }
    }
}

/// A page of a person's access log.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AccessLogResponse {
    /// Entries naming the person, oldest first.
    results: Vec<AccessLogRecord>,
    /// The position of the last entry returned (or the given cursor when the page is empty).
    next_cursor: String,
    /// `next`: the URL of the next page.
    links: PageLinks,
}

/// One service area's extended-data document with its version.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ExtendedExport {
    /// The document.
    #[schema(value_type = Object)]
    document: Map<String, Value>,
    /// Its version (the `ETag` of `GET …/extended/{area}`).
    version: u64,
}

/// Everything held about a person (UK GDPR art. 15).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SubjectAccessResponse {
    /// The record, in whatever state it is (live, deleted, merged, restricted).
    person: PersonResponse,
    /// The equality data, or `null` when none is recorded.
    equality: Option<EqualityData>,
    /// Extended data by service area.
    extended: BTreeMap<String, ExtendedExport>,
    /// Every version of the record: who, when, why, old and new values.
    history: Vec<HistoryEntry>,
    /// The disclosure log: every audit entry naming the person, oldest first (this export's own entry is
    /// recorded after it is produced, so it appears in the next one).
    disclosure_log: Vec<AccessLogRecord>,
}

/// Read a person's access log: every recorded read, change, export and refusal concerning the person.
///
/// Works for persons in any state, restricted ones included. Reading the log is itself recorded.
#[utoipa::path(
    get,
    path = "/api/v1/persons/{id}/access-log",
    tag = "audit",
    operation_id = "getAccessLog",
    params(
        ("id" = uuid::Uuid, Path, description = "The person's id"),
        ("after" = Option<String>, Query, pattern = r"^[0-9]{1,19}$", description = "Cursor: the `nextCursor` of the previous page (default 0, the start)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "Page size, 1 to 1000 (default 100)"),
    ),
    responses(
        (status = 200, description = "A page of the access log", body = AccessLogResponse),
        (status = 400, description = "The id is not a UUID, or a bad cursor or limit", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No person ever had this id", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn access_log(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    PersonPath(id): PersonPath,
    Params(query): Params<PageQuery>,
) -> Result<Json<AccessLogResponse>, ApiError> {
    let request = query.parse(MAX_ACCESS_LOG_LIMIT)?;
    let records = state.service.access_log(&ctx, id, request.after, request.limit).await?;
    let next_after = records.last().map_or(request.after, |r| r.position);
    let next = format!(
        "{}/api/v1/persons/{id}/access-log?after={next_after}&limit={}",
        state.config.base_url(),
        request.limit
    );
    Ok(Json(AccessLogResponse {
        results: records.into_iter().map(AccessLogRecord::from).collect(),
        next_cursor: next_after.to_string(),
        links: PageLinks { next: Some(next) },
    }))
}

/// Export everything held about a person: the record, equality data, extended data of every area, history and
/// the disclosure log.
///
/// Works for persons in any state, restricted ones included. The export is itself recorded.
#[utoipa::path(
    get,
    path = "/api/v1/persons/{id}/subject-access",
    tag = "audit",
    operation_id = "getSubjectAccess",
    params(("id" = uuid::Uuid, Path, description = "The person's id")),
    responses(
        (status = 200, description = "Everything held about the person", body = SubjectAccessResponse),
        (status = 400, description = "The id is not a UUID", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No person ever had this id", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn subject_access(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    PersonPath(id): PersonPath,
) -> Result<Json<SubjectAccessResponse>, ApiError> {
    let export = state.service.subject_access(&ctx, id).await?;
    let mut equality = None;
    let mut extended = BTreeMap::new();
    for document in export.documents {
        match (document.kind, document.body) {
            (DocumentKind::Equality, DocumentBody::Equality(data)) => equality = Some(data),
            (DocumentKind::Extended(area), DocumentBody::Extended(object)) => {
                extended.insert(area.to_string(), ExtendedExport { document: object, version: document.version });
            }
            _ => {
                return Err(ApiError::internal(std::io::Error::other("a stored document's body is of another kind")));
            }
        }
    }
    Ok(Json(SubjectAccessResponse {
        person: state.show(&export.person, &ctx),
        equality,
        extended,
        history: export.history,
        disclosure_log: export.disclosures.into_iter().map(AccessLogRecord::from).collect(),
    }))
}
