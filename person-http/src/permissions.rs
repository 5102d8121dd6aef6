//! Authorisation: the permission every endpoint needs, in one table ([`RULES`]), and the middleware that
//! authenticates each request, checks it against the table and hands the service a [`RequestContext`].
//!
//! Data-dependent rules stay in the service: a person whose processing is restricted needs `admin` whatever the
//! endpoint. The OpenAPI document is annotated from this same table (security requirement, required permission
//! in each operation's description), so the two cannot drift.

use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderMap, HeaderName, Method};
use person_core::audit::AuditAction;
use person_core::{Permission, PersonId, RequestContext, ServiceArea};

use crate::error::ApiError;
use crate::middleware::CorrelationId;
use crate::state::AppState;

/// What an endpoint needs.
#[derive(Debug, Clone)]
pub(crate) enum Needs {
    /// One fixed permission.
    Fixed(Permission),
    /// `extended:{area}:read`, the area taken from the path.
    ExtendedRead,
    /// `extended:{area}:write`, the area taken from the path.
    ExtendedWrite,
}

/// One endpoint: method, route template, the permission it needs and the audit action a refusal is recorded as.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    /// The HTTP method.
    pub(crate) method: Method,
    /// The route template, as in the router and the OpenAPI document.
    pub(crate) route: &'static str,
    /// The permission needed.
    pub(crate) needs: Needs,
    /// What a refused request is recorded as in the audit trail.
    pub(crate) action: AuditAction,
}

const fn rule(method: Method, route: &'static str, needs: Needs, action: AuditAction) -> Rule {
    Rule { method, route, needs, action }
}

use AuditAction as A;
use Needs::{ExtendedRead, ExtendedWrite, Fixed};
use Permission as P;

/// **The permission table.** Every endpoint that needs a token is listed here, and nowhere else decides what it
/// needs. `admin` holds every permission; `HEAD` needs what `GET` needs; a route missing from the table is
/// admin-only.
pub(crate) const RULES: &[Rule] = &[
    rule(Method::GET, "/api/v1/persons", Fixed(P::PersonsRead), A::Search),
    rule(Method::GET, "/api/v1/search/persons", Fixed(P::PersonsRead), A::Search),
    rule(Method::POST, "/api/v1/persons/match", Fixed(P::PersonsRead), A::Search),
    rule(Method::POST, "/api/v1/persons", Fixed(P::PersonsWrite), A::PersonCreate),
    rule(Method::POST, "/api/v2/persons", Fixed(P::PersonsWrite), A::PersonCreate),
    rule(Method::GET, "/api/v1/persons/{id}", Fixed(P::PersonsRead), A::PersonRead),
    rule(Method::PATCH, "/api/v1/persons/{id}", Fixed(P::PersonsWrite), A::PersonUpdate),
    rule(Method::DELETE, "/api/v1/persons/{id}", Fixed(P::PersonsDelete), A::PersonDelete),
    rule(Method::POST, "/api/v1/persons/{id}/merge", Fixed(P::PersonsMerge), A::PersonMerge),
    rule(Method::GET, "/api/v1/persons/{id}/history", Fixed(P::PersonsRead), A::HistoryRead),
    rule(Method::GET, "/api/v1/persons/{id}/equality", Fixed(P::EqualityRead), A::EqualityRead),
    rule(Method::PUT, "/api/v1/persons/{id}/equality", Fixed(P::EqualityWrite), A::EqualityWrite),
    rule(Method::GET, "/api/v1/persons/{id}/extended/{area}", ExtendedRead, A::ExtendedRead),
    rule(Method::PUT, "/api/v1/persons/{id}/extended/{area}", ExtendedWrite, A::ExtendedWrite),
    rule(Method::DELETE, "/api/v1/persons/{id}/extended/{area}", ExtendedWrite, A::ExtendedDelete),
    rule(Method::PUT, "/api/v1/persons/{id}/processing-restriction", Fixed(P::Admin), A::PersonRestrict),
    rule(Method::GET, "/api/v1/persons/{id}/references", Fixed(P::PersonsRead), A::PersonRead),
    rule(Method::POST, "/api/v1/persons/{id}/references", Fixed(P::ReferencesWrite), A::PersonUpdate),
    rule(Method::DELETE, "/api/v1/persons/{id}/references", Fixed(P::ReferencesWrite), A::PersonUpdate),
    rule(Method::GET, "/api/v1/persons/{id}/access-log", Fixed(P::AuditRead), A::AccessLogRead),
    rule(Method::GET, "/api/v1/persons/{id}/subject-access", Fixed(P::AuditRead), A::SubjectAccess),
    rule(Method::GET, "/api/v1/events", Fixed(P::EventsRead), A::EventsRead),
    rule(Method::GET, "/api/v1/reporting/persons", Fixed(P::ReportingRead), A::Export),
    rule(Method::GET, "/api/v1/reporting/person-tenures", Fixed(P::ReportingRead), A::Export),
    rule(Method::GET, "/api/v1/reporting/person-references", Fixed(P::ReportingRead), A::Export),
    rule(Method::GET, "/api/v1/admin/queries", Fixed(P::Admin), A::SupportRead),
];

/// Paths anyone may call without a token: health probes, metrics (no personal data), the OpenAPI document and
/// the Swagger UI.
pub(crate) fn is_public(path: &str) -> bool {
    matches!(path, "/api/v1/healthcheck/ping" | "/livez" | "/readyz" | "/metrics" | "/swagger")
        || path.starts_with("/swagger/")
}

/// The rule of a method and route template.
pub(crate) fn rule_for(method: &Method, route: &str) -> Option<&'static Rule> {
    RULES.iter().find(|rule| rule.method == *method && rule.route == route)
}

impl Needs {
    /// The permission, for the area of the path when it depends on one.
    fn permission(&self, area: Option<&ServiceArea>) -> Option<Permission> {
        match (self, area) {
            (Self::Fixed(permission), _) => Some(permission.clone()),
            (Self::ExtendedRead, Some(area)) => Some(Permission::ExtendedRead(area.clone())),
            (Self::ExtendedWrite, Some(area)) => Some(Permission::ExtendedWrite(area.clone())),
            (Self::ExtendedRead | Self::ExtendedWrite, None) => None,
        }
    }

    /// How the permission reads in documentation (`extended:{area}:read`).
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Fixed(permission) => permission.to_string(),
            Self::ExtendedRead => "extended:{area}:read".to_owned(),
            Self::ExtendedWrite => "extended:{area}:write".to_owned(),
        }
    }
}

/// The `x-purpose` request header: why the caller is acting, recorded in the audit trail.
pub(crate) const X_PURPOSE: HeaderName = HeaderName::from_static("x-purpose");

/// Longest accepted `x-purpose`, in characters.
const MAX_PURPOSE_LEN: usize = 200;

/// Authenticates (401), reads `x-purpose` (400), validates the `{area}` of extended-data paths (400), checks
/// the table (403, recorded in the audit trail) and puts the [`RequestContext`] in the request extensions for
/// the handlers. Public paths pass untouched.
pub(crate) async fn access(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if is_public(request.uri().path()) {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    match admit(&state, &mut parts).await {
        Ok(ctx) => {
            parts.extensions.insert(ctx);
            next.run(Request::from_parts(parts, body)).await
        }
        Err(error) => error.into_response(),
    }
}

async fn admit(state: &AppState, parts: &mut Parts) -> Result<RequestContext, ApiError> {
    let identity = state.auth.authenticate(&parts.headers).map_err(|rejection| {
        // Never the token: only why it was refused.
        tracing::info!(reason = rejection.code(), "request not authenticated");
        ApiError::Unauthorised(rejection)
    })?;
    if let Some(limiter) = &state.rate_limiter {
        limiter.check(&identity.actor.subject, std::time::Instant::now()).map_err(|retry_after| {
            // The subject identifies a caller (a user or a service), not a person: it may be logged.
            tracing::info!(caller = %identity.actor.subject, retry_after, "request over the caller's rate limit");
            ApiError::TooManyRequests { retry_after }
        })?;
    }
    let purpose = purpose(&parts.headers)?;
    let correlation_id =
        parts.extensions.get::<CorrelationId>().cloned().unwrap_or_else(CorrelationId::generate).into_string();
    let ctx = RequestContext { actor: identity.actor, permissions: identity.permissions, correlation_id, purpose };

    // Unknown paths answer 404 (to authenticated callers only).
    let Some(route) = parts.extensions.get::<MatchedPath>().map(|m| m.as_str().to_owned()) else {
        return Ok(ctx);
    };
    // axum answers HEAD with the GET handler: it needs what GET needs.
    let method = if parts.method == Method::HEAD { Method::GET } else { parts.method.clone() };
    let Some(rule) = rule_for(&method, &route) else {
        // A known path with another method answers 405. A route missing from the table is refused to all but
        // admin, so that forgetting the table fails closed (a unit test keeps the table and the routes in step).
        if ctx.permissions.is_admin() || RULES.iter().any(|rule| rule.route == route) {
            return Ok(ctx);
        }
        return Err(ApiError::Forbidden { detail: "this endpoint is restricted to admin".to_owned() });
    };
    let params = RawPathParams::from_request_parts(parts, &()).await.ok();
    let param = |name: &str| params.as_ref().and_then(|p| p.iter().find(|(key, _)| *key == name).map(|(_, v)| v));
    let area = match param("area") {
        None => None,
        Some(raw) => {
            Some(ServiceArea::parse(raw).map_err(|e| ApiError::bad_parameter("area", "invalid_area", e.to_string()))?)
        }
    };
    let permission = rule.needs.permission(area.as_ref()).ok_or_else(|| {
        ApiError::internal(std::io::Error::other(format!("the route {} has no {{area}} parameter", rule.route)))
    })?;
    if ctx.permissions.allows(&permission) {
        return Ok(ctx);
    }
    let person = param("id").and_then(|raw| PersonId::parse(raw).ok());
    let detail = match &area {
        Some(area) => format!("area={area}; needs {permission}"),
        None => format!("needs {permission}"),
    };
    if let Err(error) = state.service.record_denied(&ctx, rule.action, person, Some(detail)).await {
        // The refusal stands either way; only its record is missing.
        tracing::warn!(correlation_id = ctx.correlation_id, %error, "a refused request could not be recorded");
    }
    tracing::info!(permission = %permission, "request refused: permission missing");
    Err(ApiError::Forbidden { detail: format!("this needs the permission `{permission}`, which the caller lacks") })
}

/// `x-purpose`: absent, or 1 to 200 printable ASCII characters (spaces allowed inside; trimmed).
fn purpose(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let mut values = headers.get_all(X_PURPOSE).iter();
    let value = match (values.next(), values.next()) {
        (None, _) => return Ok(None),
        (Some(value), None) => value,
        (Some(_), Some(_)) => return Err(invalid_purpose()),
    };
    let text = std::str::from_utf8(value.as_bytes()).map_err(|_| invalid_purpose())?.trim();
    let printable = text.bytes().all(|b| (0x20..=0x7e).contains(&b));
    if text.is_empty() || text.len() > MAX_PURPOSE_LEN || !printable {
        return Err(invalid_purpose());
    }
    Ok(Some(text.to_owned()))
}

fn invalid_purpose() -> ApiError {
    ApiError::bad_parameter(
        "x-purpose",
        "invalid_header",
        format!("must be one value of 1 to {MAX_PURPOSE_LEN} printable ASCII characters"),
    )
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn every_documented_operation_but_the_public_ones_has_a_rule_and_every_rule_is_documented() {
        let doc = crate::openapi::openapi();
        let mut documented = Vec::new();
        for (path, item) in &doc.paths.paths {
            let operations = [
                (Method::GET, &item.get),
                (Method::POST, &item.post),
                (Method::PUT, &item.put),
                (Method::PATCH, &item.patch),
                (Method::DELETE, &item.delete),
            ];
            for (method, operation) in operations {
                if operation.is_some() {
                    documented.push((method, path.clone()));
                }
            }
        }
        for (method, path) in &documented {
            assert!(is_public(path) || rule_for(method, path).is_some(), "{method} {path} has no permission rule");
        }
        for rule in RULES {
            assert!(
                documented.iter().any(|(method, path)| *method == rule.method && path == rule.route),
                "{} {} is not documented",
                rule.method,
                rule.route
            );
        }
    }

    #[test]
    fn health_and_the_openapi_document_are_public_and_nothing_else() {
        for path in ["/api/v1/healthcheck/ping", "/livez", "/readyz", "/swagger", "/swagger/v1/swagger.json"] {
            assert!(is_public(path), "{path}");
        }
        for path in ["/api/v1/persons", "/swaggerx", "/api/v1/events", "/livez/x", "/"] {
            assert!(!is_public(path), "{path}");
        }
    }

    #[test]
    fn extended_rules_need_the_area_of_the_path() {
        let area = ServiceArea::parse("social-care").unwrap();
        let read = rule_for(&Method::GET, "/api/v1/persons/{id}/extended/{area}").unwrap();
        assert_eq!(read.needs.permission(Some(&area)), Some(Permission::ExtendedRead(area.clone())));
        let delete = rule_for(&Method::DELETE, "/api/v1/persons/{id}/extended/{area}").unwrap();
        assert_eq!(delete.needs.permission(Some(&area)), Some(Permission::ExtendedWrite(area)));
        assert_eq!(delete.needs.describe(), "extended:{area}:write");
    }

    #[test]
    fn purposes_are_short_printable_text() {
        let mut headers = HeaderMap::new();
        assert!(purpose(&headers).unwrap().is_none());
        headers.insert(X_PURPOSE, HeaderValue::from_static(" Tenancy audit 2026 "));
        assert_eq!(purpose(&headers).unwrap().as_deref(), Some("Tenancy audit 2026"));
        for bad in [String::new(), "   ".to_owned(), "x".repeat(201)] {
            headers.insert(X_PURPOSE, HeaderValue::from_str(&bad).unwrap());
            assert!(purpose(&headers).is_err(), "{bad:?}");
        }
        headers.insert(X_PURPOSE, HeaderValue::from_bytes("caf\u{e9}".as_bytes()).unwrap());
        assert!(purpose(&headers).is_err());
    }
}
