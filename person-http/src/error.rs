//! [`ApiError`]: the one place where a failure becomes an HTTP status, a problem type URI and a message.
//!
//! Handlers and extractors return `ApiError`; the domain's error enums (`CreatePersonError`, `LookupError`,
//! `UpdatePersonError`, `DocumentError`, `SearchError`, `MatchError`, `MergeError`, `BodyError`,
//! `ValidationErrors`, `StoreError`) convert into it with `?`. Rendering happens
//! in two steps: `IntoResponse` attaches a [`Problem`] to the response, and the `finalize_problems` middleware
//! (see `crate::middleware`) writes the RFC 9457 body with what only the request knows (`instance`,
//! `correlationId`) and logs the cause of a 5xx exactly once. Responses that middleware or the framework produce
//! without an `ApiError` (a 413 from the body limit, a 504 from the timeout) are mapped here too, by status.
//!
//! This module knows the domain's errors and the wire shape of a problem; it knows no handler and no store.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::header::{self, HeaderValue};
use http::{HeaderMap, StatusCode};
use person_core::api::{ProblemDetails, problem_types};
use person_core::documents::MAX_EXTENDED_BYTES;
use person_core::person::PersonId;
use person_core::reference::CrossReference;
use person_core::service::{
    CreatePersonError, DocumentError, DuplicateCandidate, LookupError, MAX_IDEMPOTENCY_KEY_LEN, MatchError, MergeError,
    SearchError, UpdatePersonError,
};
use person_core::validate::BodyError;
use person_core::{FieldError, StoreError, ValidationErrors};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Rejection;

/// The media type of every error body.
pub(crate) const PROBLEM_JSON: &str = "application/problem+json";

/// Seconds a client is asked to wait before retrying when the store is unavailable.
const RETRY_AFTER_SECONDS: u32 = 5;

/// The cause of a server-side failure, kept (with its `source()` chain) for the log, never for the response.
pub(crate) type Cause = Arc<dyn StdError + Send + Sync + 'static>;

/// The 409 `duplicate-person` problem: the usual problem members plus `candidates`, the persons already recorded
/// (an RFC 9457 extension member).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DuplicatePersonProblem {
    /// `type`, `title`, `status`, `detail`, `instance`, `correlationId`.
    #[serde(flatten)]
    pub(crate) problem: ProblemDetails,
    /// The persons already recorded, most likely first.
    pub(crate) candidates: Vec<DuplicateCandidate>,
}

/// The 409 `reference-taken` problem: the usual members plus the `reference` asked for and its `owner` (absent
/// when the caller may not see that person).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ReferenceTakenProblem {
    /// `type`, `title`, `status`, `detail`, `instance`, `correlationId`.
    #[serde(flatten)]
    pub(crate) problem: ProblemDetails,
    /// The reference.
    pub(crate) reference: CrossReference,
    /// The person holding it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) owner: Option<PersonId>,
}

/// Every way a request can fail, as the HTTP layer sees it.
#[derive(Debug)]
pub(crate) enum ApiError {
    /// Field validation failed (422, every field listed).
    Invalid(ValidationErrors),
    /// The body is not structurally a person or a patch (400, naming the field when there is one).
    Body(BodyError),
    /// A malformed request outside the body: a path, query parameter or header (400).
    BadRequest {
        /// What is wrong.
        detail: String,
        /// The offending parameter or header, when there is one.
        errors: Vec<FieldError>,
    },
    /// No caller identity was established: no token, or one that does not verify (401 with `WWW-Authenticate`).
    Unauthorised(Rejection),
    /// The caller is known but lacks the permission, or the person's processing is restricted (403).
    Forbidden {
        /// What is missing (never the token, never personal data).
        detail: String,
    },
    /// No such resource (404).
    NotFound {
        /// What was not found.
        detail: String,
    },
    /// The path exists but not with this method (405).
    MethodNotAllowed,
    /// The person was deleted (410).
    Gone,
    /// The person was merged into another (308 to the survivor).
    Merged {
        /// The survivor.
        into: PersonId,
    },
    /// A write to a person that was merged into another (409, `Location` names the survivor). Not a redirect:
    /// re-sending a PATCH or DELETE to the survivor with the duplicate's `If-Match` would be wrong.
    MergedWrite {
        /// The survivor.
        into: PersonId,
    },
    /// `If-Match` names another version (409 with `currentVersion`), or a version of a document that does not
    /// exist (409 without it).
    VersionConflict {
        /// The stored version; `None` when nothing is stored.
        current: Option<u64>,
    },
    /// A client-supplied id is taken (409).
    DuplicateId(PersonId),
    /// The person is already known (409 `duplicate-person` listing the candidates): a create, or a change that
    /// would make the person a duplicate of another.
    DuplicatePerson {
        /// The persons it duplicates, most likely first.
        candidates: Vec<DuplicateCandidate>,
    },
    /// Another person holds the cross-reference (409 `reference-taken`).
    ReferenceTaken {
        /// The reference.
        reference: CrossReference,
        /// Its owner, when the caller may see it.
        owner: Option<PersonId>,
    },
    /// An idempotency key was reused with a different request (422).
    IdempotencyKeyReused,
    /// `If-Match` is required and missing (428).
    PreconditionRequired,
    /// The body is over the limit (413).
    PayloadTooLarge,
    /// An extended-data document is over its own limit (413).
    DocumentTooLarge,
    /// The body is not JSON (415).
    UnsupportedMediaType,
    /// The caller is over its rate limit (429 with `Retry-After`).
    TooManyRequests {
        /// Seconds until a request will be accepted.
        retry_after: u32,
    },
    /// The request took longer than the configured timeout (504).
    Timeout,
    /// A dependency (the store) is unavailable; retry later (503 with `Retry-After`).
    Unavailable(Option<Cause>),
    /// Anything unexpected (500, opaque; the cause is logged once with the correlation id).
    Internal(Option<Cause>),
    /// Any other error status produced without an `ApiError` (shown as an `about:blank` problem).
    Other(StatusCode),
}

impl ApiError {
    /// Wraps an unexpected error as a 500.
    pub(crate) fn internal(cause: impl StdError + Send + Sync + 'static) -> Self {
        Self::Internal(Some(Arc::new(cause)))
    }

    /// A 400 about one named request parameter or header.
    pub(crate) fn bad_parameter(name: &str, code: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::BadRequest {
            detail: format!("{name}: {message}"),
            errors: vec![FieldError { field: name.to_owned(), code: code.to_owned(), message }],
        }
    }

    /// A 400 listing query parameters the service found invalid (`errors[].field` is the parameter's name; an
    /// error about no parameter in particular is in `detail` only).
    pub(crate) fn invalid_parameters(errors: ValidationErrors) -> Self {
        let detail = errors
            .errors()
            .iter()
            .map(|e| match e.field.trim_start_matches('/') {
                "" => e.message.clone(),
                field => format!("{field}: {}", e.message),
            })
            .collect::<Vec<_>>()
            .join("; ");
        let errors = errors
            .errors()
            .iter()
            .filter(|e| !e.field.trim_start_matches('/').is_empty())
            .map(|e| FieldError {
                field: e.field.trim_start_matches('/').to_owned(),
                code: e.code.clone(),
                message: e.message.clone(),
            })
            .collect();
        Self::BadRequest { detail, errors }
    }

    /// The error for a response that carries only an error status (framework and middleware responses).
    pub(crate) fn from_status(status: StatusCode) -> Self {
        match status {
            StatusCode::UNAUTHORIZED => Self::Unauthorised(Rejection::Missing),
            StatusCode::NOT_FOUND => Self::NotFound { detail: "there is no resource at this path".to_owned() },
            StatusCode::METHOD_NOT_ALLOWED => Self::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType,
            StatusCode::GATEWAY_TIMEOUT => Self::Timeout,
            StatusCode::TOO_MANY_REQUESTS => Self::TooManyRequests { retry_after: 1 },
            StatusCode::SERVICE_UNAVAILABLE => Self::Unavailable(None),
            StatusCode::INTERNAL_SERVER_ERROR => Self::Internal(None),
            other => Self::Other(other),
        }
    }

    /// The problem this error is shown as: the single status / type / title mapping of the API.
    pub(crate) fn into_problem(self) -> Problem {
        use problem_types as t;
        let p = Problem::new;
        match self {
            Self::Invalid(errors) => {
                let fields: Vec<&str> = errors.errors().iter().map(|e| e.field.as_str()).collect();
                let detail = format!("{} invalid field(s): {}", fields.len(), fields.join(", "));
                let mut problem = p(StatusCode::UNPROCESSABLE_ENTITY, t::VALIDATION, "Validation failed", detail);
                problem.errors = Some(errors.errors().to_vec());
                problem
            }
            Self::Body(error) => {
                let detail = error.to_string();
                let code = match &error {
                    BodyError::Malformed(_) => "malformed_json",
                    BodyError::UnknownField(_) => "unknown_field",
                    BodyError::ReadOnlyField(_) => "read_only_field",
                    BodyError::InvalidValue { .. } => "invalid_value",
                };
                let mut problem = p(StatusCode::BAD_REQUEST, t::BAD_REQUEST, "Bad request", detail.clone());
                problem.errors =
                    error.field().map(|field| vec![FieldError { field, code: code.to_owned(), message: detail }]);
                problem
            }
            Self::BadRequest { detail, errors } => {
                let mut problem = p(StatusCode::BAD_REQUEST, t::BAD_REQUEST, "Bad request", detail);
                problem.errors = (!errors.is_empty()).then_some(errors);
                problem
            }
            Self::Unauthorised(rejection) => {
                let mut problem =
                    p(StatusCode::UNAUTHORIZED, t::UNAUTHORISED, "Unauthorised", rejection.detail().to_owned());
                problem.www_authenticate = Some(rejection.challenge());
                problem
            }
            Self::Forbidden { detail } => p(StatusCode::FORBIDDEN, t::FORBIDDEN, "Forbidden", detail),
            Self::NotFound { detail } => p(StatusCode::NOT_FOUND, t::NOT_FOUND, "Not found", detail),
            Self::MethodNotAllowed => p(
                StatusCode::METHOD_NOT_ALLOWED,
                t::METHOD_NOT_ALLOWED,
                "Method not allowed",
                "this path does not support this method".to_owned(),
            ),
            Self::Gone => p(StatusCode::GONE, t::GONE, "Gone", "the person was deleted".to_owned()),
            Self::Merged { into } => {
                let mut problem = p(
                    StatusCode::PERMANENT_REDIRECT,
                    t::MERGED,
                    "Merged",
                    format!("the person was merged into {into}"),
                );
                problem.location = Some(crate::routes::person_location(into));
                problem
            }
            Self::MergedWrite { into } => {
                let mut problem = p(
                    StatusCode::CONFLICT,
                    t::MERGED,
                    "Merged",
                    format!("the person was merged into {into}; change the survivor instead"),
                );
                problem.location = Some(crate::routes::person_location(into));
                problem
            }
            Self::VersionConflict { current } => {
                let detail = match current {
                    Some(current) => format!("If-Match does not name the current version, which is {current}"),
                    None => {
                        "If-Match names a version, but nothing is stored yet: send the first write without If-Match"
                            .to_owned()
                    }
                };
                let mut problem = p(StatusCode::CONFLICT, t::VERSION_CONFLICT, "Version conflict", detail);
                problem.current_version = current;
                problem
            }
            Self::DuplicateId(id) => p(
                StatusCode::CONFLICT,
                t::DUPLICATE_ID,
                "Duplicate id",
                format!("a person with id {id} already exists"),
            ),
            Self::DuplicatePerson { candidates } => {
                let detail = match candidates.as_slice() {
                    // The only match is a person whose processing is restricted, which the caller may not see.
                    [] => "this person is already recorded; ask an administrator, or send ?allowDuplicate=true \
                           with a reason if this really is another person"
                        .to_owned(),
                    [one] => format!(
                        "this person is already recorded as {} (personRef {}); update that record, or send \
                         ?allowDuplicate=true with a reason if this really is another person",
                        one.id, one.person_ref.0
                    ),
                    many => format!(
                        "this person is already recorded ({} candidates); update the right record, or send \
                         ?allowDuplicate=true with a reason if this really is another person",
                        many.len()
                    ),
                };
                let mut problem = p(StatusCode::CONFLICT, t::DUPLICATE_PERSON, "Duplicate person", detail);
                problem.candidates = Some(candidates);
                problem
            }
            Self::ReferenceTaken { reference, owner } => {
                let detail = match owner {
                    Some(owner) => format!(
                        "the {} record {} belongs to person {owner}; remove it there first, or merge the two \
                         persons if they are the same",
                        reference.system, reference.id
                    ),
                    None => format!(
                        "the {} record {} belongs to another person whose processing is restricted; ask an \
                         administrator",
                        reference.system, reference.id
                    ),
                };
                let mut problem = p(StatusCode::CONFLICT, t::REFERENCE_TAKEN, "Reference taken", detail);
                problem.reference_owner = Some((reference, owner));
                problem
            }
            Self::IdempotencyKeyReused => p(
                StatusCode::UNPROCESSABLE_ENTITY,
                t::IDEMPOTENCY_KEY_REUSED,
                "Idempotency key reused",
                "the Idempotency-Key was already used with a different request".to_owned(),
            ),
            Self::PreconditionRequired => p(
                StatusCode::PRECONDITION_REQUIRED,
                t::PRECONDITION_REQUIRED,
                "Precondition required",
                "send If-Match with the version you read (the ETag of a GET of this resource)".to_owned(),
            ),
            Self::PayloadTooLarge => p(
                StatusCode::PAYLOAD_TOO_LARGE,
                t::PAYLOAD_TOO_LARGE,
                "Payload too large",
                "the request body is over the size limit".to_owned(),
            ),
            Self::DocumentTooLarge => p(
                StatusCode::PAYLOAD_TOO_LARGE,
                t::PAYLOAD_TOO_LARGE,
                "Payload too large",
                format!("an extended-data document is at most {MAX_EXTENDED_BYTES} bytes of compact JSON"),
            ),
            Self::UnsupportedMediaType => p(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                t::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported media type",
                "the body must be JSON: Content-Type application/json (or application/merge-patch+json for PATCH)"
                    .to_owned(),
            ),
            Self::TooManyRequests { retry_after } => {
                let mut problem = p(
                    StatusCode::TOO_MANY_REQUESTS,
                    t::TOO_MANY_REQUESTS,
                    "Too many requests",
                    format!("this caller sent more requests than its rate limit allows; retry in {retry_after} s"),
                );
                problem.retry_after = Some(retry_after);
                problem
            }
            Self::Timeout => p(
                StatusCode::GATEWAY_TIMEOUT,
                t::TIMEOUT,
                "Request timed out",
                "the request did not complete in time; it may or may not have taken effect".to_owned(),
            ),
            Self::Unavailable(cause) => {
                let mut problem = p(
                    StatusCode::SERVICE_UNAVAILABLE,
                    t::UNAVAILABLE,
                    "Service unavailable",
                    "the service cannot reach its store; retry later".to_owned(),
                );
                problem.retry_after = Some(RETRY_AFTER_SECONDS);
                problem.cause = cause;
                problem
            }
            Self::Internal(cause) => {
                let mut problem = p(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    t::INTERNAL,
                    "Internal server error",
                    "something went wrong on the server; quote the correlation id when reporting it".to_owned(),
                );
                problem.cause = cause;
                problem
            }
            Self::Other(status) => {
                let title = status.canonical_reason().unwrap_or("Error");
                p(status, "about:blank", title, title.to_lowercase())
            }
        }
    }
}

impl From<ValidationErrors> for ApiError {
    fn from(e: ValidationErrors) -> Self {
        Self::Invalid(e)
    }
}

impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> Self {
        Self::Body(e)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => Self::Unavailable(Some(Arc::new(e))),
            StoreError::Unexpected(_) => Self::Internal(Some(Arc::new(e))),
        }
    }
}

impl From<CreatePersonError> for ApiError {
    fn from(e: CreatePersonError) -> Self {
        match e {
            CreatePersonError::Body(b) => b.into(),
            CreatePersonError::Invalid(v) => v.into(),
            CreatePersonError::DuplicateId(id) => Self::DuplicateId(id),
            CreatePersonError::Duplicate { candidates } => Self::DuplicatePerson { candidates },
            CreatePersonError::IdempotencyKeyReused => Self::IdempotencyKeyReused,
            CreatePersonError::InvalidIdempotencyKey => Self::bad_parameter(
                "Idempotency-Key",
                "invalid_header",
                format!("must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} characters"),
            ),
            CreatePersonError::Store(s) => s.into(),
        }
    }
}

impl From<SearchError> for ApiError {
    fn from(e: SearchError) -> Self {
        match e {
            // Search criteria travel in the query string: a bad one is a 400 naming the parameter, like any other
            // query parameter, not a 422 about a body that was never sent.
            SearchError::Invalid(errors) => Self::invalid_parameters(errors),
            SearchError::Forbidden => Self::Forbidden {
                detail: "searching by National Insurance number needs the permission `equality:read`, which the \
                         caller lacks"
                    .to_owned(),
            },
            SearchError::Store(s) => s.into(),
        }
    }
}

impl From<MatchError> for ApiError {
    fn from(e: MatchError) -> Self {
        match e {
            MatchError::Body(b) => b.into(),
            MatchError::Invalid(v) => v.into(),
            MatchError::Forbidden => Self::Forbidden {
                detail: "matching on a National Insurance number needs the permission `equality:read`, which the \
                         caller lacks"
                    .to_owned(),
            },
            MatchError::Store(s) => s.into(),
        }
    }
}

impl From<MergeError> for ApiError {
    fn from(e: MergeError) -> Self {
        match e {
            MergeError::Body(b) => b.into(),
            MergeError::Invalid(v) => v.into(),
            // The survivor is the resource of the path: answered as any other write to it.
            MergeError::Survivor(LookupError::Merged { into }) => Self::MergedWrite { into },
            MergeError::Survivor(l) => l.into(),
            // The duplicate is named in the body: a state that forbids merging it is a field error.
            MergeError::Duplicate(LookupError::NotFound) => {
                duplicate_id_error(codes::UNKNOWN_PERSON, "no person has this id".to_owned())
            }
            MergeError::Duplicate(LookupError::Deleted) => {
                duplicate_id_error(codes::DELETED_PERSON, "this person was deleted and cannot be merged".to_owned())
            }
            MergeError::Duplicate(LookupError::Merged { into }) => {
                duplicate_id_error(codes::MERGED_PERSON, format!("this person was already merged into {into}"))
            }
            MergeError::Duplicate(LookupError::Restricted) => Self::Forbidden {
                detail: "processing of the duplicate's data is restricted: only admin may merge it".to_owned(),
            },
            MergeError::Duplicate(LookupError::Store(s)) => s.into(),
            MergeError::SelfMerge => {
                duplicate_id_error(codes::SELF_MERGE, "a person cannot be merged into itself".to_owned())
            }
            MergeError::VersionConflict { current } => Self::VersionConflict { current: Some(current) },
            MergeError::Store(s) => s.into(),
        }
    }
}

/// Error codes of the merge refusals (in `errors[].code` of a 422 about `/duplicateId`).
pub(crate) mod codes {
    /// `duplicateId` names no person.
    pub(crate) const UNKNOWN_PERSON: &str = "unknown_person";
    /// `duplicateId` names a deleted person.
    pub(crate) const DELETED_PERSON: &str = "deleted_person";
    /// `duplicateId` names a person already merged into another.
    pub(crate) const MERGED_PERSON: &str = "merged_person";
    /// `duplicateId` names the survivor itself.
    pub(crate) const SELF_MERGE: &str = "self_merge";
}

fn duplicate_id_error(code: &str, message: String) -> ApiError {
    let mut errors = ValidationErrors::default();
    errors.push("/duplicateId", code, message);
    ApiError::Invalid(errors)
}

impl From<LookupError> for ApiError {
    fn from(e: LookupError) -> Self {
        match e {
            LookupError::NotFound => Self::NotFound { detail: "no person has this id".to_owned() },
            LookupError::Deleted => Self::Gone,
            LookupError::Merged { into } => Self::Merged { into },
            LookupError::Restricted => Self::Forbidden {
                detail: "processing of this person's data is restricted: only admin may act on it".to_owned(),
            },
            LookupError::Store(s) => s.into(),
        }
    }
}

impl From<UpdatePersonError> for ApiError {
    fn from(e: UpdatePersonError) -> Self {
        match e {
            UpdatePersonError::Lookup(LookupError::Merged { into }) => Self::MergedWrite { into },
            UpdatePersonError::Lookup(l) => l.into(),
            UpdatePersonError::VersionConflict { current } => Self::VersionConflict { current: Some(current) },
            UpdatePersonError::Duplicate { candidates } => Self::DuplicatePerson { candidates },
            UpdatePersonError::ReferenceTaken { reference, owner } => Self::ReferenceTaken { reference, owner },
            UpdatePersonError::ReferenceNotHeld => {
                Self::NotFound { detail: "the person holds no such reference".to_owned() }
            }
            UpdatePersonError::Body(b) => b.into(),
            UpdatePersonError::Invalid(v) => v.into(),
        }
    }
}

impl From<DocumentError> for ApiError {
    fn from(e: DocumentError) -> Self {
        match e {
            // No redirect for documents: the survivor's documents are another resource, and merge may combine them.
            DocumentError::Lookup(LookupError::Merged { into }) => Self::MergedWrite { into },
            DocumentError::Lookup(l) => l.into(),
            DocumentError::NotFound => Self::NotFound { detail: "nothing is stored here for this person".to_owned() },
            DocumentError::PreconditionRequired => Self::PreconditionRequired,
            DocumentError::VersionConflict { current } => Self::VersionConflict { current },
            DocumentError::Body(b) => b.into(),
            DocumentError::Invalid(v) => v.into(),
            DocumentError::TooLarge => Self::DocumentTooLarge,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Rendered without request context here; `finalize_problems` re-renders it with `instance` and
        // `correlationId` and logs the cause, so an `ApiError` is never logged twice.
        Arc::new(self.into_problem()).into_response_with(HeaderMap::new(), "", "")
    }
}

/// A problem waiting to be rendered: everything but the request's path and correlation id.
#[derive(Clone)]
pub(crate) struct Problem {
    status: StatusCode,
    problem_type: &'static str,
    title: &'static str,
    detail: String,
    errors: Option<Vec<FieldError>>,
    current_version: Option<u64>,
    candidates: Option<Vec<DuplicateCandidate>>,
    reference_owner: Option<(CrossReference, Option<PersonId>)>,
    location: Option<String>,
    retry_after: Option<u32>,
    www_authenticate: Option<&'static str>,
    cause: Option<Cause>,
}

impl fmt::Debug for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Problem")
            .field("status", &self.status)
            .field("type", &self.problem_type)
            .finish_non_exhaustive()
    }
}

impl Problem {
    fn new(status: StatusCode, problem_type: &'static str, title: &'static str, detail: String) -> Self {
        Self {
            status,
            problem_type,
            title,
            detail,
            errors: None,
            current_version: None,
            candidates: None,
            reference_owner: None,
            location: None,
            retry_after: None,
            www_authenticate: None,
            cause: None,
        }
    }

    /// Logs the server-side cause, if any: 500s at error level, 503s at warn level, with the whole `source()`
    /// chain and the correlation id. Called once per response, by `finalize_problems`.
    pub(crate) fn log_cause(&self, correlation_id: &str) {
        let status = self.status.as_u16();
        match (&self.cause, self.status.is_server_error()) {
            (Some(cause), true) if self.status == StatusCode::INTERNAL_SERVER_ERROR => {
                tracing::error!(correlation_id, status, error = %error_chain(cause.as_ref()), "request failed unexpectedly");
            }
            (Some(cause), _) => {
                tracing::warn!(correlation_id, status, error = %error_chain(cause.as_ref()), "request failed");
            }
            (None, true) if self.status == StatusCode::INTERNAL_SERVER_ERROR => {
                tracing::error!(correlation_id, status, "request failed unexpectedly (no cause recorded)");
            }
            (None, _) => {}
        }
    }

    /// The RFC 9457 members of the problem, for the request at `instance` with `correlation_id`.
    fn details(&self, instance: &str, correlation_id: &str) -> ProblemDetails {
        ProblemDetails {
            problem_type: self.problem_type.to_owned(),
            title: self.title.to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            instance: instance.to_owned(),
            correlation_id: correlation_id.to_owned(),
            errors: self.errors.clone(),
            current_version: self.current_version,
        }
    }

    /// The response: `headers` kept (minus body headers), the problem as the body.
    pub(crate) fn into_response_with(
        self: Arc<Self>,
        mut headers: HeaderMap,
        instance: &str,
        correlation_id: &str,
    ) -> Response {
        let body = render(&self.details(instance, correlation_id), &self).unwrap_or_else(|_| {
            format!(r#"{{"type":"{}","status":{}}}"#, self.problem_type, self.status.as_u16()).into_bytes()
        });
        for name in [header::CONTENT_TYPE, header::CONTENT_LENGTH, header::CONTENT_ENCODING, header::TRANSFER_ENCODING]
        {
            headers.remove(name);
        }
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(location) = self.location.as_deref().and_then(|l| HeaderValue::from_str(l).ok()) {
            headers.insert(header::LOCATION, location);
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(challenge) = self.www_authenticate {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = self.status;
        *response.headers_mut() = headers;
        response.extensions_mut().insert(self);
        response
    }
}

/// The problem as JSON: [`ProblemDetails`] plus the extension members of its kind (RFC 9457 §3.2): `candidates`
/// for a duplicate person ([`DuplicatePersonProblem`]), `reference` and `owner` for a taken reference
/// ([`ReferenceTakenProblem`]).
fn render(details: &ProblemDetails, problem: &Problem) -> serde_json::Result<Vec<u8>> {
    if let Some(candidates) = &problem.candidates {
        return serde_json::to_vec(&DuplicatePersonProblem {
            problem: details.clone(),
            candidates: candidates.clone(),
        });
    }
    if let Some((reference, owner)) = &problem.reference_owner {
        return serde_json::to_vec(&ReferenceTakenProblem {
            problem: details.clone(),
            reference: reference.clone(),
            owner: *owner,
        });
    }
    serde_json::to_vec(details)
}

/// `outer: inner: innermost`, following `source()`.
fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Leaf;
    impl fmt::Display for Leaf {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("disk on fire")
        }
    }
    impl StdError for Leaf {}

    #[test]
    fn error_chain_follows_sources() {
        let error = StoreError::unexpected(Leaf);
        assert_eq!(error_chain(&error), "unexpected store failure: disk on fire");
    }

    #[test]
    fn internal_errors_never_show_their_cause() {
        let problem = ApiError::from(StoreError::unexpected(Leaf)).into_problem();
        assert_eq!(problem.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!problem.detail.contains("disk"));
        assert!(problem.cause.is_some());
    }

    #[test]
    fn unavailable_store_asks_to_retry_later() {
        let problem = ApiError::from(StoreError::Unavailable(Box::new(Leaf))).into_problem();
        assert_eq!(problem.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(problem.retry_after, Some(RETRY_AFTER_SECONDS));
    }

    #[test]
    fn body_errors_name_the_field_in_detail_and_errors() {
        let problem = ApiError::from(BodyError::UnknownField("FirstName".to_owned())).into_problem();
        assert_eq!(problem.status, StatusCode::BAD_REQUEST);
        assert!(problem.detail.contains("FirstName"));
        let errors = problem.errors.unwrap_or_default();
        assert_eq!(errors[0].field, "/FirstName");
        assert_eq!(errors[0].code, "unknown_field");
    }

    /// The status and JSON body an error is rendered as, for a request to `/p` with correlation id `c-1`.
    fn body_of(error: ApiError) -> (StatusCode, serde_json::Value) {
        let problem = error.into_problem();
        let body = render(&problem.details("/p", "c-1"), &problem).unwrap();
        (problem.status, serde_json::from_slice(&body).unwrap())
    }

    #[test]
    fn a_duplicate_person_is_a_409_listing_the_candidates_beside_the_usual_members() {
        let id = PersonId::parse("0b6f5c1e-6a43-4c1e-9d8a-2f6c4a3b9e10").unwrap();
        let candidate = DuplicateCandidate { id, person_ref: person_core::PersonRef(42), score: 0.98 };
        let error = ApiError::from(CreatePersonError::Duplicate { candidates: vec![candidate] });

        let (status, body) = body_of(error);

        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body["type"], problem_types::DUPLICATE_PERSON);
        assert_eq!(body["instance"], "/p");
        assert_eq!(body["correlationId"], "c-1");
        assert_eq!(body["candidates"], serde_json::json!([{ "id": id.to_string(), "personRef": 42, "score": 0.98 }]));
        assert!(body["detail"].as_str().unwrap().contains("personRef 42"), "{body}");
        let hidden = ApiError::from(UpdatePersonError::Duplicate { candidates: Vec::new() });
        let (status, body) = body_of(hidden);
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body["candidates"], serde_json::json!([]));
    }

    #[test]
    fn other_problems_have_no_candidates_member() {
        let (_, body) = body_of(ApiError::Gone);
        assert!(body.get("candidates").is_none(), "{body}");
    }

    #[test]
    fn merge_refusals_about_the_duplicate_are_422s_naming_duplicate_id() {
        let into = PersonId::parse("0b6f5c1e-6a43-4c1e-9d8a-2f6c4a3b9e10").unwrap();
        for (error, code) in [
            (MergeError::SelfMerge, codes::SELF_MERGE),
            (MergeError::Duplicate(LookupError::NotFound), codes::UNKNOWN_PERSON),
            (MergeError::Duplicate(LookupError::Deleted), codes::DELETED_PERSON),
            (MergeError::Duplicate(LookupError::Merged { into }), codes::MERGED_PERSON),
        ] {
            let problem = ApiError::from(error).into_problem();
            assert_eq!(problem.status, StatusCode::UNPROCESSABLE_ENTITY, "{code}");
            let errors = problem.errors.unwrap_or_default();
            assert_eq!((errors[0].field.as_str(), errors[0].code.as_str()), ("/duplicateId", code));
        }
        let survivor_merged = ApiError::from(MergeError::Survivor(LookupError::Merged { into })).into_problem();
        assert_eq!(survivor_merged.status, StatusCode::CONFLICT);
        assert_eq!(survivor_merged.location, Some(crate::routes::person_location(into)));
        let restricted = ApiError::from(MergeError::Duplicate(LookupError::Restricted)).into_problem();
        assert_eq!(restricted.status, StatusCode::FORBIDDEN);
    }

    #[test]
    fn search_field_errors_name_parameters_and_keep_general_errors_in_the_detail() {
        let mut errors = ValidationErrors::default();
        errors.push("", "required", "give at least one criterion");
        errors.push("/dateOfBirth", "W9", "not a date");
        let problem = ApiError::invalid_parameters(errors).into_problem();
        assert_eq!(problem.status, StatusCode::BAD_REQUEST);
        assert!(problem.detail.contains("give at least one criterion") && problem.detail.contains("dateOfBirth"));
        let errors = problem.errors.unwrap_or_default();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "dateOfBirth");
    }

    #[test]
    fn statuses_without_an_error_map_to_their_problem_types() {
        let cases = [
            (StatusCode::PAYLOAD_TOO_LARGE, problem_types::PAYLOAD_TOO_LARGE),
            (StatusCode::GATEWAY_TIMEOUT, problem_types::TIMEOUT),
            (StatusCode::TOO_MANY_REQUESTS, problem_types::TOO_MANY_REQUESTS),
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, problem_types::UNSUPPORTED_MEDIA_TYPE),
            (StatusCode::METHOD_NOT_ALLOWED, problem_types::METHOD_NOT_ALLOWED),
            (StatusCode::IM_A_TEAPOT, "about:blank"),
        ];
        for (status, expected) in cases {
            assert_eq!(ApiError::from_status(status).into_problem().problem_type, expected, "{status}");
        }
    }
}
