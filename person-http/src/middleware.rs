//! Cross-cutting request handling: correlation ids, the request span, problem rendering, panics and CORS. (The
//! caller's identity and permissions are `crate::permissions`' business.)
//!
//! The layers are assembled in `crate::router`; each one here does one job and knows nothing of persons. Logs
//! carry the correlation id, method, matched route and status, never bodies, query strings, names or tokens.

use std::any::Any;
use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::Method;
use http::header::{self, HeaderName, HeaderValue};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::{MakeSpan, OnResponse};
use tracing::Span;
use uuid::Uuid;

use crate::error::{ApiError, PROBLEM_JSON, Problem};
use crate::extract::{IDEMPOTENCY_KEY, PREFER};
use crate::permissions::X_PURPOSE;

/// The correlation id header, accepted from the caller or generated, and echoed on every response.
pub(crate) const X_CORRELATION_ID: HeaderName = HeaderName::from_static("x-correlation-id");

/// Longest accepted incoming correlation id.
const MAX_CORRELATION_ID_LEN: usize = 128;

/// The correlation id of the current request (a request extension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CorrelationId(String);

impl CorrelationId {
    /// The caller's id when it is 1 to 128 visible ASCII characters; anything else is replaced rather than
    /// refused, so that a bad header never costs a request, and never reaches a log or an event unchecked.
    fn from_header(value: &HeaderValue) -> Option<Self> {
        let bytes = value.as_bytes();
        let visible = bytes.iter().all(|b| (0x21..=0x7e).contains(b));
        ((1..=MAX_CORRELATION_ID_LEN).contains(&bytes.len()) && visible)
            .then(|| Self(String::from_utf8_lossy(bytes).into_owned()))
    }

    /// A fresh random id.
    pub(crate) fn generate() -> Self {
        Self(Uuid::new_v4().to_string())
    }

    /// The id.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The id, owned.
    pub(crate) fn into_string(self) -> String {
        self.0
    }
}

/// Accepts or generates the correlation id, stores it in the request extensions and echoes it on the response
/// (every response, including problems, timeouts and panics, because this is the outermost layer).
pub(crate) async fn correlate(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(X_CORRELATION_ID)
        .and_then(CorrelationId::from_header)
        .unwrap_or_else(CorrelationId::generate);
    let echoed = HeaderValue::from_str(id.as_str()).ok();
    request.extensions_mut().insert(id);
    let mut response = next.run(request).await;
    if let Some(value) = echoed {
        response.headers_mut().insert(X_CORRELATION_ID, value);
    }
    response
}

/// Renders every error response as `application/problem+json` with the request's path and correlation id, and
/// logs the cause of a server error once.
///
/// Responses from [`ApiError`] carry their [`Problem`]; error responses produced without one (the body limit's
/// 413, the timeout's 504, a framework rejection) are mapped by status, so no plain-text error escapes.
pub(crate) async fn finalize_problems(request: Request, next: Next) -> Response {
    let instance = request.uri().path().to_owned();
    let correlation_id =
        request.extensions().get::<CorrelationId>().map(|id| id.as_str().to_owned()).unwrap_or_default();
    let mut response = next.run(request).await;
    let problem = match response.extensions_mut().remove::<Arc<Problem>>() {
        Some(problem) => problem,
        None if is_unrendered_error(&response) => Arc::new(ApiError::from_status(response.status()).into_problem()),
        None => return response,
    };
    problem.log_cause(&correlation_id);
    let (parts, _body) = response.into_parts();
    problem.into_response_with(parts.headers, &instance, &correlation_id)
}

fn is_unrendered_error(response: &Response) -> bool {
    let status = response.status();
    let is_problem =
        response.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes() == PROBLEM_JSON.as_bytes());
    (status.is_client_error() || status.is_server_error()) && !is_problem
}

/// A handler panicked (the payload message, when it is text).
#[derive(Debug)]
struct Panicked(String);

impl fmt::Display for Panicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a request handler panicked: {}", self.0)
    }
}

impl StdError for Panicked {}

/// The response to a caught panic: an opaque 500 problem; the panic message goes to the log with the
/// correlation id (through [`finalize_problems`]).
pub(crate) fn panic_response(payload: Box<dyn Any + Send + 'static>) -> Response {
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "<non-text panic payload>".to_owned());
    ApiError::internal(Panicked(message)).into_response()
}

/// The request span: correlation id, method, matched route (the template, never the concrete path or query)
/// and, once known, the status.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, request: &http::Request<B>) -> Span {
        let route = request.extensions().get::<MatchedPath>().map_or("<unmatched>", MatchedPath::as_str);
        let correlation_id = request.extensions().get::<CorrelationId>().map_or("", CorrelationId::as_str);
        tracing::info_span!(
            "request",
            correlation_id,
            method = %request.method(),
            route,
            status = tracing::field::Empty,
        )
    }
}

/// Records the status on the request span and logs one line per request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordStatus;

impl<B> OnResponse<B> for RecordStatus {
    fn on_response(self, response: &http::Response<B>, latency: Duration, span: &Span) {
        let status = response.status().as_u16();
        span.record("status", status);
        let latency_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        tracing::info!(parent: span, status, latency_ms, "request completed");
    }
}

/// CORS for browser front ends: any origin (the API uses bearer tokens, never cookies, so no credentials are
/// allowed), the methods and headers of the API, and the response headers clients need to read.
pub(crate) fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::any())
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            PREFER,
            IDEMPOTENCY_KEY,
            X_CORRELATION_ID,
            X_PURPOSE,
        ])
        .expose_headers([
            header::ETAG,
            header::LOCATION,
            header::RETRY_AFTER,
            X_CORRELATION_ID,
            HeaderName::from_static("idempotent-replayed"),
            HeaderName::from_static("preference-applied"),
            crate::store_timing::SERVER_TIMING,
        ])
        .max_age(Duration::from_secs(600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlation_ids_of_visible_ascii_up_to_128_characters_are_accepted() {
        let accepted = ["a", "abc-123_XYZ.~!", &"x".repeat(128)];
        for raw in accepted {
            let value = HeaderValue::from_str(raw).unwrap();
            assert_eq!(CorrelationId::from_header(&value).map(CorrelationId::into_string), Some(raw.to_owned()));
        }
    }

    #[test]
    fn other_correlation_ids_are_replaced() {
        let refused = [String::new(), "has space".to_owned(), "x".repeat(129), "tab\there".to_owned()];
        for raw in refused {
            let value = HeaderValue::from_str(&raw).unwrap();
            assert_eq!(CorrelationId::from_header(&value), None, "{raw:?}");
        }
        let non_ascii = HeaderValue::from_bytes("caf\u{e9}".as_bytes()).unwrap();
        assert_eq!(CorrelationId::from_header(&non_ascii), None);
    }
}
