//! Entry points for the `cargo fuzz` targets in `fuzz/` (see `docs/fuzzing.md`); not part of the API.
//!
//! The request parsers of this crate are crate-private: the query strings of `GET /api/v1/persons` and
//! `GET /api/v1/search/persons`, the `If-Match` version tag, and the bearer token check. These wrappers run
//! exactly the code a request runs (the same query-string decoding as the server's extractor, the same
//! [`crate::auth`] authenticator) without a runtime, a store or a socket, and hand back what the caller would
//! get: the parsed value, or the refusal rendered as the problem+json response the server sends. They add no
//! rule of their own and change no behaviour.

use std::collections::BTreeMap;

use axum::response::IntoResponse;
use http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, StatusCode, Uri};
use person_core::api::ProblemDetails;
use person_core::reference::CrossReference;
use person_core::service::SearchQuery;
use person_core::{Actor, Permission, Permissions};

use crate::auth::{AuthConfig, AuthMode, Authenticator, Rejection, TokenKeys};
use crate::error::ApiError;
use crate::extract::{parse_version_tag, query_params};
use crate::routes::search::{HousingSearchParams, SearchRequest};

/// A refused request as its caller receives it: status, the headers that matter, and the problem+json body.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// The response status.
    pub status: StatusCode,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The `WWW-Authenticate` header, if any (401s).
    pub www_authenticate: Option<String>,
    /// The body as sent.
    pub body: Vec<u8>,
    /// The body read as [`ProblemDetails`]; `None` when it is not one.
    pub problem: Option<Box<ProblemDetails>>,
}

impl Refusal {
    fn from_error(error: ApiError) -> Self {
        let (parts, body) = error.into_response().into_parts();
        // The body of a problem is one in-memory buffer: it is ready at the first poll, so no runtime is needed.
        let body = futures::executor::block_on(axum::body::to_bytes(body, usize::MAX))
            .map(|bytes| bytes.to_vec())
            .unwrap_or_default();
        let header = |name| parts.headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok()).map(str::to_owned);
        Self {
            status: parts.status,
            content_type: header(CONTENT_TYPE),
            www_authenticate: header(WWW_AUTHENTICATE),
            problem: serde_json::from_slice(&body).ok(),
            body,
        }
    }
}

/// The request target `path?query`, as the server would receive it; `None` when no request could carry it (the
/// HTTP server refuses such a request line before any handler runs).
fn request_uri(path: &str, query: &[u8]) -> Option<Uri> {
    let mut target = Vec::with_capacity(path.len() + 1 + query.len());
    target.extend_from_slice(path.as_bytes());
    target.push(b'?');
    target.extend_from_slice(query);
    Uri::try_from(target).ok()
}

/// What `GET /api/v1/persons` understood of a query string.
#[derive(Clone, PartialEq, Eq)]
pub struct PersonSearch {
    /// The ranked search the service would run (criteria, `limit`, `cursor` as an offset).
    pub query: SearchQuery,
    /// `reference=system:id`: a look-up of the one person holding it instead of a ranked search.
    pub reference: Option<CrossReference>,
}

impl std::fmt::Debug for PersonSearch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Search criteria are personal data; the fuzzer prints failing inputs itself.
        f.debug_struct("PersonSearch").field("reference", &self.reference.is_some()).finish_non_exhaustive()
    }
}

/// Reads the query string (the bytes after `?`) of `GET /api/v1/persons` as the route does: decoded into
/// name/value pairs by the server's query extractor, then checked by the route's parser.
///
/// `None` when the bytes cannot form a request target at all.
pub fn search_persons(raw_query: &[u8]) -> Option<Result<PersonSearch, Refusal>> {
    let uri = request_uri("/api/v1/persons", raw_query)?;
    let parsed = query_params::<Vec<(String, String)>>(&uri).and_then(|pairs| SearchRequest::parse(&pairs));
    Some(
        parsed
            .map(|request| PersonSearch { query: request.query, reference: request.reference })
            .map_err(Refusal::from_error),
    )
}

/// Reads the query string of `GET /api/v1/search/persons` (Hackney's housing search) as the route does.
///
/// `None` when the bytes cannot form a request target at all.
pub fn housing_search(raw_query: &[u8]) -> Option<Result<SearchQuery, Refusal>> {
    let uri = request_uri("/api/v1/search/persons", raw_query)?;
    let parsed = query_params::<HousingSearchParams>(&uri).and_then(|params| params.query());
    Some(parsed.map_err(Refusal::from_error))
}

/// Percent-encodes a query component as the API does when it writes `links.next`.
#[must_use]
pub fn encode_query_component(value: &str) -> String {
    crate::links::percent_encode(value)
}

/// The version an `If-Match` header value names (`"3"`, `3`, `W/"3"`), as the `If-Match` extractor reads it.
#[must_use]
pub fn version_tag(raw: &str) -> Option<u64> {
    parse_version_tag(raw)
}

/// The HS256 secret [`TokenCheck`] verifies with (test data: 44 bytes, over the 32-byte minimum).
pub const TOKEN_SECRET: &[u8] = b"fuzzing secret, long enough for HS256 tokens";

/// Groups [`TokenCheck`] grants permissions to, and what each grants.
pub const TOKEN_GROUPS: [(&str, Permission); 3] = [
    ("readers", Permission::PersonsRead),
    ("writers", Permission::PersonsWrite),
    ("consumer:repairs-hub", Permission::EventsRead),
];

/// The server's authenticator in token mode, with [`TOKEN_SECRET`] and [`TOKEN_GROUPS`]; built once, used for
/// many headers.
#[derive(Debug)]
pub struct TokenCheck {
    authenticator: Authenticator,
}

impl Default for TokenCheck {
    fn default() -> Self {
        Self::new()
    }
}

impl TokenCheck {
    /// The authenticator, configured as a server with an HS256 secret and [`TOKEN_GROUPS`] is.
    #[must_use]
    pub fn new() -> Self {
        let mut group_permissions: BTreeMap<String, Vec<Permission>> = BTreeMap::new();
        for (group, permission) in TOKEN_GROUPS {
            group_permissions.entry(group.to_owned()).or_default().push(permission);
        }
        let keys = TokenKeys { hs256_secret: Some(TOKEN_SECRET.to_vec()), public_key_pem: None };
        Self { authenticator: Authenticator::new(&AuthConfig { mode: AuthMode::Tokens(keys), group_permissions }) }
    }

    /// Authenticates a request carrying one `Authorization` header with these bytes; `None` when the bytes are
    /// not a header value (no request could carry them).
    #[must_use]
    pub fn authorization(&self, value: &[u8]) -> Option<Result<(Actor, Permissions), Refusal>> {
        let value = HeaderValue::from_bytes(value).ok()?;
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, value);
        Some(self.headers(&headers))
    }

    /// Every 401 body the authenticator can answer, one per reason for refusing a token. A refusal's body is
    /// always one of these: it depends on why the token was refused, never on the token itself.
    #[must_use]
    pub fn refusal_bodies() -> Vec<Vec<u8>> {
        REJECTIONS.into_iter().map(|rejection| Refusal::from_error(ApiError::Unauthorised(rejection)).body).collect()
    }

    /// Authenticates a request with these headers: the caller and its permissions, or the 401 it gets.
    ///
    /// # Errors
    /// The 401 problem the server answers.
    pub fn headers(&self, headers: &HeaderMap) -> Result<(Actor, Permissions), Refusal> {
        self.authenticator
            .authenticate(headers)
            .map(|identity| (identity.actor, identity.permissions))
            .map_err(|rejection| Refusal::from_error(ApiError::Unauthorised(rejection)))
    }
}

/// Every reason for a 401.
const REJECTIONS: [Rejection; 7] = [
    Rejection::Missing,
    Rejection::Malformed,
    Rejection::Algorithm,
    Rejection::Signature,
    Rejection::Expired,
    Rejection::NotYetValid,
    Rejection::Claims,
];

/// Fails to compile when a reason is added to [`Rejection`], until it is listed in [`REJECTIONS`] too.
const _: fn(Rejection) = |rejection| match rejection {
    Rejection::Missing
    | Rejection::Malformed
    | Rejection::Algorithm
    | Rejection::Signature
    | Rejection::Expired
    | Rejection::NotYetValid
    | Rejection::Claims => {}
};
