//! Extractors: request parts turned into typed inputs, failing with [`ApiError`] (problem+json), never with
//! axum's plain-text rejections.
//!
//! They read HTTP (paths, headers, query strings, bodies) and nothing else: no business rule runs here. The
//! body is passed on as bytes because the domain parses it itself, so that it can report every field error of a
//! request at once.

use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName};
use http::request::Parts;
use http::{StatusCode, Uri};
use person_core::person::PersonId;
use person_core::{RequestContext, ServiceArea};
use serde::de::DeserializeOwned;

use crate::auth::Rejection;
use crate::error::ApiError;

/// The `Idempotency-Key` request header.
pub(crate) const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// The `Prefer` request header (RFC 7240).
pub(crate) const PREFER: HeaderName = HeaderName::from_static("prefer");

/// Who is calling, with which permissions, why (`x-purpose`) and under which correlation id, for the service.
///
/// The [`RequestContext`] comes from the request extensions, where the access middleware put it after
/// authenticating the caller and checking the endpoint's permission (`crate::permissions`); a request without
/// one is refused with 401 rather than run anonymously.
#[derive(Debug, Clone)]
pub(crate) struct Caller(pub(crate) RequestContext);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<RequestContext>().cloned().map(Self).ok_or(ApiError::Unauthorised(Rejection::Missing))
    }
}

/// The `{id}` of a person path, parsed (a non-UUID is a 400, not a 404).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PersonPath(pub(crate) PersonId);

impl<S: Send + Sync> FromRequestParts<S> for PersonPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| ApiError::bad_parameter("id", "invalid_id", rejection.body_text()))?;
        PersonId::parse(&raw)
            .map(Self)
            .map_err(|_| ApiError::bad_parameter("id", "invalid_id", "the person id must be a UUID (and not nil)"))
    }
}

/// The `{id}` and `{area}` of an extended-data path, parsed: a non-UUID id or an invalid area name (`Social`,
/// `a.b`, `..`) is a 400. (The access middleware has already refused a bad area; this is the handler's view.)
#[derive(Debug, Clone)]
pub(crate) struct AreaPath(pub(crate) PersonId, pub(crate) ServiceArea);

impl<S: Send + Sync> FromRequestParts<S> for AreaPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path((id, area)) = Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| ApiError::bad_parameter("id", "invalid_id", rejection.body_text()))?;
        let id = PersonId::parse(&id)
            .map_err(|_| ApiError::bad_parameter("id", "invalid_id", "the person id must be a UUID (and not nil)"))?;
        let area =
            ServiceArea::parse(&area).map_err(|e| ApiError::bad_parameter("area", "invalid_area", e.to_string()))?;
        Ok(Self(id, area))
    }
}

/// The version named by `If-Match`, if the header is present.
///
/// `"3"`, `3` and `W/"3"` all name version 3 (front ends send all three). Anything else, several values, or `*`
/// is a 400: every write names the one version it was based on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IfMatch(pub(crate) Option<u64>);

impl IfMatch {
    /// The version, or 428 when the header is missing.
    pub(crate) fn required(self) -> Result<u64, ApiError> {
        self.0.ok_or(ApiError::PreconditionRequired)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let mut values = parts.headers.get_all(header::IF_MATCH).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return if parts.headers.contains_key(header::IF_MATCH) { Err(invalid_if_match()) } else { Ok(Self(None)) };
        };
        value.to_str().ok().and_then(parse_version_tag).map(|v| Self(Some(v))).ok_or_else(invalid_if_match)
    }
}

fn invalid_if_match() -> ApiError {
    ApiError::bad_parameter("If-Match", "invalid_header", "must be one version as an entity tag, e.g. \"3\"")
}

/// `"3"`, `3`, `W/"3"` → 3.
pub(crate) fn parse_version_tag(raw: &str) -> Option<u64> {
    let text = raw.trim();
    let text = text.strip_prefix("W/").unwrap_or(text);
    let text = match text.strip_prefix('"') {
        Some(quoted) => quoted.strip_suffix('"')?,
        None => text,
    };
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The `Idempotency-Key` header, if present (its length is checked by the service).
#[derive(Debug, Clone)]
pub(crate) struct IdempotencyKey(pub(crate) Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match parts.headers.get(IDEMPOTENCY_KEY) {
            None => Ok(Self(None)),
            Some(value) => value.to_str().map(|key| Self(Some(key.to_owned()))).map_err(|_| {
                ApiError::bad_parameter("Idempotency-Key", "invalid_header", "must be visible ASCII characters")
            }),
        }
    }
}

/// Whether the request asked for the resource in the response (`Prefer: return=representation`, RFC 7240).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Prefer {
    /// `return=representation` was asked for.
    pub(crate) representation: bool,
}

impl<S: Send + Sync> FromRequestParts<S> for Prefer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self { representation: prefers_representation(&parts.headers) })
    }
}

fn prefers_representation(headers: &HeaderMap) -> bool {
    headers.get_all(PREFER).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(|preference| {
        let preference = preference.split(';').next().unwrap_or_default();
        let (name, value) = preference.split_once('=').unwrap_or((preference, ""));
        name.trim().eq_ignore_ascii_case("return")
            && value.trim().trim_matches('"').eq_ignore_ascii_case("representation")
    })
}

/// A JSON request body as bytes: the Content-Type is checked (415) and the size limit applied (413) here, and
/// the domain parses the bytes.
#[derive(Debug, Clone)]
pub(crate) struct JsonBody(pub(crate) Bytes);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        match Bytes::from_request(req, state).await {
            Ok(bytes) => Ok(Self(bytes)),
            // The body limit surfaces as a `LengthLimitError` while buffering, which axum reports as 413.
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::PayloadTooLarge),
            Err(rejection) => Err(ApiError::BadRequest {
                detail: format!("the request body could not be read: {}", rejection.body_text()),
                errors: Vec::new(),
            }),
        }
    }
}

/// `application/json`, or any `application/*+json` (`application/merge-patch+json` for PATCH), with any
/// parameters (`; charset=utf-8`).
fn is_json(headers: &HeaderMap) -> bool {
    let Some(content_type) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Query parameters deserialized into `T`; a malformed query string is a 400 problem.
#[derive(Debug, Clone)]
pub(crate) struct Params<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        query_params(&parts.uri).map(Self)
    }
}

/// The query string of `uri` deserialized into `T`, as [`Params`] reads it (axum's `Query`); a malformed query
/// string is a 400 problem.
pub(crate) fn query_params<T: DeserializeOwned>(uri: &Uri) -> Result<T, ApiError> {
    Query::<T>::try_from_uri(uri)
        .map(|Query(params)| params)
        .map_err(|rejection| ApiError::BadRequest { detail: rejection.body_text(), errors: Vec::new() })
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn version_tags_are_read_quoted_bare_or_weak() {
        assert_eq!(parse_version_tag("\"3\""), Some(3));
        assert_eq!(parse_version_tag("3"), Some(3));
        assert_eq!(parse_version_tag("W/\"3\""), Some(3));
        assert_eq!(parse_version_tag(" \"12\" "), Some(12));
    }

    #[test]
    fn anything_else_is_not_a_version_tag() {
        for raw in ["", "\"\"", "*", "\"3", "3\"", "\"-1\"", "\"3\", \"4\"", "abc", "W/3x", "99999999999999999999999"] {
            assert_eq!(parse_version_tag(raw), None, "{raw}");
        }
    }

    #[test]
    fn prefer_return_representation_is_recognised_among_other_preferences() {
        let mut headers = HeaderMap::new();
        assert!(!prefers_representation(&headers));
        headers.insert(PREFER, HeaderValue::from_static("respond-async, return=representation"));
        assert!(prefers_representation(&headers));
        headers.insert(PREFER, HeaderValue::from_static("return=minimal"));
        assert!(!prefers_representation(&headers));
    }

    #[test]
    fn json_and_json_suffix_media_types_are_accepted() {
        let mut headers = HeaderMap::new();
        assert!(!is_json(&headers));
        for (value, expected) in [
            ("application/json", true),
            ("application/json; charset=utf-8", true),
            ("Application/JSON", true),
            ("application/merge-patch+json", true),
            ("text/plain", false),
            ("application/x-www-form-urlencoded", false),
        ] {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
            assert_eq!(is_json(&headers), expected, "{value}");
        }
    }
}
