//! [`ClientError`]: every way a call can fail, typed, built from the HTTP status and the problem `type` URI of
//! the response (never from its human-readable text).
//!
//! Error values never carry personal data or tokens: the server's problem details never echo submitted values,
//! transport errors are stripped of their URL (a search URL carries names and dates of birth in its query), and
//! decoding errors keep the position of a problem in the body, never the offending text.

use std::fmt;
use std::time::Duration;

use person_core::api::{ProblemDetails, problem_types};
use person_core::person::PersonId;
use person_core::reference::CrossReference;
use person_core::service::DuplicateCandidate;
use person_core::validate::FieldError;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, RETRY_AFTER};
use serde::Deserialize;
use serde_json::Value;

/// A boxed error from outside this crate (a [`TokenProvider`](crate::TokenProvider)'s failure).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a call failed.
///
/// Match on the variants: they are derived from the problem `type` URI the server sends
/// ([`person_core::api::problem_types`]) and the HTTP status, so they are stable across server versions and
/// wordings. `Display` is a short lowercase sentence, safe to log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// 404 `not-found`: no person ever had this id, or (documents) nothing is stored.
    #[error("not found")]
    NotFound,
    /// 410 `gone`: the person was deleted.
    #[error("the person was deleted")]
    Gone,
    /// The person was merged into `to`: a `GET` answered 308 (the client does not follow it, see the crate
    /// documentation), or a write answered 409 `merged`. Read `to` instead, and replace the id you hold.
    #[error("the person was merged into {to}")]
    Moved {
        /// The survivor the person was merged into.
        to: PersonId,
    },
    /// 409 `version-conflict`: the version sent in `If-Match` is not the stored one. Re-read and retry.
    #[error("version conflict: the resource changed since it was read")]
    VersionConflict {
        /// The stored version; `None` when a document write named a version but nothing is stored yet.
        current: Option<u64>,
    },
    /// 428 `precondition-required`: the write needs the version it is based on (a document exists: pass its
    /// version).
    #[error("the write needs the version it is based on (If-Match)")]
    PreconditionRequired,
    /// 409 `duplicate-person`: the person is already recorded. Use one of the candidates (most likely first), or
    /// create with [`CreateOptions::allow_duplicate`](crate::CreateOptions) when it really is someone else.
    /// `candidates` can be empty: the match is a person whose processing is restricted, which the caller may
    /// not see.
    #[error("the person is already recorded ({} candidate(s))", candidates.len())]
    Duplicate {
        /// The recorded persons, most likely first.
        candidates: Vec<DuplicateCandidate>,
    },
    /// 409 `duplicate-id`: a person (live, deleted or merged) already has the id the draft supplied.
    #[error("a person with the supplied id already exists")]
    DuplicateId,
    /// 409 `reference-taken`: another live person holds the cross-reference (one external record belongs to one
    /// person). Remove it from `owner` first, or merge the two persons if they are the same.
    #[error("the {} record belongs to another person", reference.system)]
    ReferenceTaken {
        /// The reference asked for.
        reference: CrossReference,
        /// The person holding it; `None` when the caller may not see that person (its processing is
        /// restricted).
        owner: Option<PersonId>,
    },
    /// 422 `validation`: every invalid field, each with its JSON pointer, code (`W15`, `invalid_date` …) and
    /// message.
    #[error("{} invalid field(s)", .0.len())]
    Invalid(Vec<FieldError>),
    /// 422 `idempotency-key-reused`: the `Idempotency-Key` was used before with a different body.
    #[error("the idempotency key was already used with a different request")]
    IdempotencyKeyReused,
    /// 400 `bad-request`: a malformed request (a bad parameter, an unknown key, a bad area name …). `errors`
    /// names the offending field, parameter or header when there is one.
    #[error("bad request: {detail}")]
    BadRequest {
        /// The server's explanation (it never echoes submitted values).
        detail: String,
        /// The offending fields, parameters or headers.
        errors: Vec<FieldError>,
    },
    /// 401 `unauthorised`: no token, or one the server refuses (expired, badly signed …).
    #[error("unauthorised: the token is missing or was refused")]
    Unauthorised,
    /// 403 `forbidden`: the token lacks the permission (named in `detail`), or the person's processing is
    /// restricted and the caller is not `admin`.
    #[error("forbidden: {detail}")]
    Forbidden {
        /// What is missing (a permission name; never personal data).
        detail: String,
    },
    /// 429: the caller is rate limited and the retry policy gave up (or `Retry-After` asked for a longer wait
    /// than the policy's `max_delay`).
    #[error("too many requests")]
    TooManyRequests {
        /// How long the server asked to wait, when it said (`Retry-After` in seconds).
        retry_after: Option<Duration>,
    },
    /// Any other 4xx (405, 413, 415, or a status this client does not know), or a 3xx other than a merge.
    #[error("the request was refused with status {status}")]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The problem details, when the body was one.
        problem: Option<Box<ProblemDetails>>,
    },
    /// A 5xx: the server failed (500 `internal`), its store is unavailable (503 `unavailable`), it timed out
    /// (504 `timeout`), or a gateway failed (502), after the retries the policy allows. Quote
    /// `problem.correlation_id` when reporting it.
    #[error("server error {status}")]
    Server {
        /// The HTTP status.
        status: u16,
        /// The problem details, when the body was one.
        problem: Option<Box<ProblemDetails>>,
    },
    /// The request could not be sent or its response not read (connection refused or dropped, timeout, TLS),
    /// after the retries the policy allows.
    #[error("transport error: {0}")]
    Transport(#[source] TransportError),
    /// The response did not have the expected shape.
    #[error("the response could not be decoded: {0}")]
    Decode(#[source] DecodeError),
    /// The [`TokenProvider`](crate::TokenProvider) could not supply a token.
    #[error("no token: the token provider failed")]
    Credentials(#[source] BoxError),
    /// The client was configured with an unusable value (a base URL that is not `http(s)://…`, a header
    /// value with control characters …).
    #[error("invalid client configuration: {0}")]
    Config(String),
}

impl ClientError {
    /// The problem details the server sent, for the variants that keep them ([`ClientError::Server`],
    /// [`ClientError::Rejected`]).
    #[must_use]
    pub fn problem(&self) -> Option<&ProblemDetails> {
        match self {
            Self::Server { problem, .. } | Self::Rejected { problem, .. } => problem.as_deref(),
            _ => None,
        }
    }
}

/// The request could not be sent or its response not read.
///
/// Its source chain explains the cause (connection refused, reset, timed out …); it never includes the URL.
pub struct TransportError(reqwest::Error);

impl TransportError {
    pub(crate) fn new(error: reqwest::Error) -> Self {
        // The URL can hold search criteria (names, dates of birth) in its query string.
        Self(error.without_url())
    }

    /// True when the request or the connection timed out.
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        self.0.is_timeout()
    }

    /// True when no connection could be established.
    #[must_use]
    pub fn is_connect(&self) -> bool {
        self.0.is_connect()
    }
}

impl fmt::Debug for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TransportError").field(&self.0).finish()
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_timeout() {
            f.write_str("the request timed out")
        } else if self.0.is_connect() {
            f.write_str("could not connect to the server")
        } else {
            f.write_str("the connection failed before the response was complete")
        }
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// The response did not have the expected shape: a body that is not the expected JSON, or a missing header.
///
/// Only the position of the problem is kept, never the offending text (it could be personal data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    status: u16,
    what: DecodeFailure,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum DecodeFailure {
    Body { category: &'static str, line: usize, column: usize },
    MissingHeader(&'static str),
    BadLink,
}

impl DecodeError {
    pub(crate) fn body(status: StatusCode, error: &serde_json::Error) -> Self {
        let category = match error.classify() {
            serde_json::error::Category::Io => "i/o",
            serde_json::error::Category::Syntax => "syntax",
            serde_json::error::Category::Data => "data",
            serde_json::error::Category::Eof => "unexpected end",
        };
        Self {
            status: status.as_u16(),
            what: DecodeFailure::Body { category, line: error.line(), column: error.column() },
        }
    }

    pub(crate) fn missing_header(status: StatusCode, header: &'static str) -> Self {
        Self { status: status.as_u16(), what: DecodeFailure::MissingHeader(header) }
    }

    pub(crate) fn bad_link(status: StatusCode) -> Self {
        Self { status: status.as_u16(), what: DecodeFailure::BadLink }
    }

    /// The HTTP status of the response that could not be decoded.
    #[must_use]
    pub fn status(&self) -> u16 {
        self.status
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.what {
            DecodeFailure::Body { category, line, column } => write!(
                f,
                "the body of a {} response is not the expected JSON ({category} error at line {line}, column \
                 {column})",
                self.status
            ),
            DecodeFailure::MissingHeader(header) => {
                write!(f, "a {} response lacks a readable `{header}` header", self.status)
            }
            DecodeFailure::BadLink => write!(f, "a {} response has a `links.next` that is not a URL", self.status),
        }
    }
}

impl std::error::Error for DecodeError {}

/// A problem body read leniently: a proxy or gateway may send a partial one.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LooseProblem {
    #[serde(rename = "type", default)]
    problem_type: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    detail: Option<String>,
    #[serde(default)]
    instance: Option<String>,
    #[serde(default)]
    correlation_id: Option<String>,
    #[serde(default)]
    errors: Option<Vec<FieldError>>,
    #[serde(default)]
    current_version: Option<u64>,
    #[serde(default)]
    candidates: Option<Vec<DuplicateCandidate>>,
}

impl LooseProblem {
    fn details(&self, status: StatusCode) -> ProblemDetails {
        ProblemDetails {
            problem_type: self.problem_type.clone().unwrap_or_else(|| "about:blank".to_owned()),
            title: self.title.clone().unwrap_or_default(),
            status: status.as_u16(),
            detail: self.detail.clone().unwrap_or_default(),
            instance: self.instance.clone().unwrap_or_default(),
            correlation_id: self.correlation_id.clone().unwrap_or_default(),
            errors: self.errors.clone(),
            current_version: self.current_version,
        }
    }
}

/// The extension members of a `reference-taken` problem (RFC 9457 §3.2); the other members are ignored.
#[derive(Deserialize)]
struct ReferenceTakenMembers {
    reference: CrossReference,
    #[serde(default)]
    owner: Option<PersonId>,
}

/// `Retry-After` in delta-seconds (the form this API and most gateways send). An HTTP-date is not read: the
/// retry policy's own backoff applies then.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The survivor named by the `Location` of a merged person (`/api/v1/persons/{id}`, relative or absolute).
fn survivor(headers: &HeaderMap) -> Option<PersonId> {
    let location = headers.get(LOCATION)?.to_str().ok()?;
    let path = location.split(['?', '#']).next()?;
    PersonId::parse(path.trim_end_matches('/').rsplit('/').next()?).ok()
}

/// The error for a non-2xx response: by problem `type` first, then by status for bodies that are not problems
/// (a gateway's 502, a proxy's 429).
pub(crate) fn from_response(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ClientError {
    use problem_types as t;
    let loose: Option<LooseProblem> =
        serde_json::from_slice::<Value>(body).ok().and_then(|value| serde_json::from_value(value).ok());
    let problem_type = loose.as_ref().and_then(|p| p.problem_type.clone()).unwrap_or_default();
    let details = |p: &Option<LooseProblem>| p.as_ref().map(|p| Box::new(p.details(status)));
    let field_errors = |p: &Option<LooseProblem>| p.as_ref().and_then(|p| p.errors.clone()).unwrap_or_default();
    let detail = |p: &Option<LooseProblem>| p.as_ref().and_then(|p| p.detail.clone()).unwrap_or_default();

    match problem_type.as_str() {
        t::MERGED => match survivor(headers) {
            Some(to) => ClientError::Moved { to },
            None => ClientError::Decode(DecodeError::missing_header(status, "Location")),
        },
        t::NOT_FOUND => ClientError::NotFound,
        t::GONE => ClientError::Gone,
        t::VERSION_CONFLICT => ClientError::VersionConflict { current: loose.as_ref().and_then(|p| p.current_version) },
        t::PRECONDITION_REQUIRED => ClientError::PreconditionRequired,
        t::DUPLICATE_PERSON => {
            ClientError::Duplicate { candidates: loose.as_ref().and_then(|p| p.candidates.clone()).unwrap_or_default() }
        }
        t::DUPLICATE_ID => ClientError::DuplicateId,
        t::REFERENCE_TAKEN => match serde_json::from_slice::<ReferenceTakenMembers>(body) {
            Ok(members) => ClientError::ReferenceTaken { reference: members.reference, owner: members.owner },
            Err(error) => ClientError::Decode(DecodeError::body(status, &error)),
        },
        t::VALIDATION => ClientError::Invalid(field_errors(&loose)),
        t::IDEMPOTENCY_KEY_REUSED => ClientError::IdempotencyKeyReused,
        t::BAD_REQUEST => ClientError::BadRequest { detail: detail(&loose), errors: field_errors(&loose) },
        t::UNAUTHORISED => ClientError::Unauthorised,
        t::FORBIDDEN => ClientError::Forbidden { detail: detail(&loose) },
        _ => match status {
            StatusCode::UNAUTHORIZED => ClientError::Unauthorised,
            StatusCode::FORBIDDEN => ClientError::Forbidden { detail: detail(&loose) },
            StatusCode::NOT_FOUND => ClientError::NotFound,
            StatusCode::GONE => ClientError::Gone,
            StatusCode::PRECONDITION_REQUIRED => ClientError::PreconditionRequired,
            StatusCode::TOO_MANY_REQUESTS => ClientError::TooManyRequests { retry_after: retry_after(headers) },
            s if s.is_server_error() => ClientError::Server { status: s.as_u16(), problem: details(&loose) },
            s => ClientError::Rejected { status: s.as_u16(), problem: details(&loose) },
        },
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn problem(problem_type: &str, extra: Value) -> Vec<u8> {
        let mut body = serde_json::json!({
            "type": problem_type, "title": "t", "status": 409, "detail": "d", "instance": "/i",
            "correlationId": "c",
        });
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        serde_json::to_vec(&body).unwrap()
    }

    #[test]
    fn errors_are_chosen_by_problem_type_not_by_status_or_text() {
        let headers = HeaderMap::new();
        let conflict = problem(problem_types::VERSION_CONFLICT, serde_json::json!({ "currentVersion": 3 }));
        assert!(matches!(
            from_response(StatusCode::CONFLICT, &headers, &conflict),
            ClientError::VersionConflict { current: Some(3) }
        ));
        let duplicate = problem(
            problem_types::DUPLICATE_PERSON,
            serde_json::json!({ "candidates": [
                { "id": "ee665227-b493-4b3b-bd64-b4f6d9f05f32", "personRef": 1, "score": 0.99 }
            ] }),
        );
        match from_response(StatusCode::CONFLICT, &headers, &duplicate) {
            ClientError::Duplicate { candidates } => assert_eq!(candidates.len(), 1),
            other => panic!("not a duplicate: {other:?}"),
        }
        let id = problem(problem_types::DUPLICATE_ID, Value::Null);
        assert!(matches!(from_response(StatusCode::CONFLICT, &headers, &id), ClientError::DuplicateId));
    }

    #[test]
    fn a_taken_reference_names_the_reference_and_its_owner_when_given() {
        let headers = HeaderMap::new();
        let reference = serde_json::json!({ "system": "tenure", "id": "T/1 #2:3" });
        let owned = problem(
            problem_types::REFERENCE_TAKEN,
            serde_json::json!({ "reference": reference, "owner": "ee665227-b493-4b3b-bd64-b4f6d9f05f32" }),
        );
        match from_response(StatusCode::CONFLICT, &headers, &owned) {
            ClientError::ReferenceTaken { reference, owner } => {
                assert_eq!(reference.to_string(), "tenure:T/1 #2:3");
                assert_eq!(owner.map(|o| o.to_string()).as_deref(), Some("ee665227-b493-4b3b-bd64-b4f6d9f05f32"));
            }
            other => panic!("not reference-taken: {other:?}"),
        }
        let hidden = problem(problem_types::REFERENCE_TAKEN, serde_json::json!({ "reference": reference }));
        assert!(matches!(
            from_response(StatusCode::CONFLICT, &headers, &hidden),
            ClientError::ReferenceTaken { owner: None, .. }
        ));
        let shown = from_response(StatusCode::CONFLICT, &headers, &hidden).to_string();
        assert_eq!(shown, "the tenure record belongs to another person", "the record id is not displayed");
        let truncated = problem(problem_types::REFERENCE_TAKEN, Value::Null);
        assert!(matches!(from_response(StatusCode::CONFLICT, &headers, &truncated), ClientError::Decode(_)));
    }

    #[test]
    fn a_merged_problem_names_the_survivor_from_its_location() {
        let mut headers = HeaderMap::new();
        headers.insert(LOCATION, HeaderValue::from_static("/api/v1/persons/ee665227-b493-4b3b-bd64-b4f6d9f05f32"));
        let body = problem(problem_types::MERGED, Value::Null);
        match from_response(StatusCode::PERMANENT_REDIRECT, &headers, &body) {
            ClientError::Moved { to } => assert_eq!(to.to_string(), "ee665227-b493-4b3b-bd64-b4f6d9f05f32"),
            other => panic!("not moved: {other:?}"),
        }
        assert!(matches!(
            from_response(StatusCode::PERMANENT_REDIRECT, &HeaderMap::new(), &body),
            ClientError::Decode(_)
        ));
    }

    #[test]
    fn bodies_that_are_not_problems_are_mapped_by_status() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert!(matches!(
            from_response(StatusCode::TOO_MANY_REQUESTS, &headers, b"slow down"),
            ClientError::TooManyRequests { retry_after: Some(d) } if d == Duration::from_secs(7)
        ));
        assert!(matches!(
            from_response(StatusCode::BAD_GATEWAY, &headers, b"<html>"),
            ClientError::Server { status: 502, problem: None }
        ));
        assert!(matches!(
            from_response(StatusCode::METHOD_NOT_ALLOWED, &headers, b""),
            ClientError::Rejected { status: 405, problem: None }
        ));
    }

    #[test]
    fn a_decode_error_keeps_the_position_but_never_the_text() {
        let error = serde_json::from_str::<u64>("\"Kimakhe O'Neill\"").unwrap_err();
        let decode = DecodeError::body(StatusCode::OK, &error);
        let shown = format!("{decode} {decode:?}");
        assert!(!shown.contains("Kimakhe"), "{shown}");
        assert!(shown.contains("line 1"), "{shown}");
    }
}
