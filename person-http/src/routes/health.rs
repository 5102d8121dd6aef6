//! Health endpoints: Hackney's ping, liveness and readiness (for orchestrators and load balancers).

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use http::header;
use person_core::api::ProblemDetails;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::links::LinkStatus;
use crate::state::AppState;

/// Hackney's `healthcheck/ping` answer.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub(crate) struct PingResponse {
    /// Always true.
    success: bool,
}

/// A liveness or readiness answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct HealthStatus {
    /// `live` or `ready`.
    status: &'static str,
    /// Readiness only: the availability of each linked service (informational: a service that is down hides
    /// its links but never makes this service unready).
    #[serde(skip_serializing_if = "Option::is_none")]
    links: Option<Vec<LinkStatus>>,
}

/// Hackney-compatible ping: the process answers HTTP.
#[utoipa::path(
    get,
    path = "/api/v1/healthcheck/ping",
    tag = "health",
    operation_id = "ping",
    responses((status = 200, description = "Up", body = PingResponse))
)]
pub(crate) async fn ping() -> Json<PingResponse> {
    Json(PingResponse { success: true })
}

/// Liveness: the process answers HTTP (restart it when this fails). Checks no dependency.
#[utoipa::path(
    get,
    path = "/livez",
    tag = "health",
    operation_id = "livez",
    responses((status = 200, description = "Live", body = HealthStatus))
)]
pub(crate) async fn livez() -> Json<HealthStatus> {
    Json(HealthStatus { status: "live", links: None })
}

/// Readiness: the store answers (send traffic only when this succeeds). Also shows each linked service's
/// availability, without failing for it.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    operation_id = "readyz",
    responses(
        (status = 200, description = "Ready", body = HealthStatus),
        (status = 503, description = "The store does not answer", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn readyz(State(state): State<AppState>) -> Result<Json<HealthStatus>, ApiError> {
    // Whatever the store's failure, the service is not ready: always 503, never 500.
    state.service.ready().await.map_err(|e| ApiError::Unavailable(Some(std::sync::Arc::new(e))))?;
    Ok(Json(HealthStatus { status: "ready", links: Some(state.links.statuses()) }))
}

/// Prometheus metrics (text exposition format 0.0.4): requests by route, method and status, latency histograms,
/// requests in flight, storage operations by name and outcome with their latencies, and the linked services'
/// availability and health probes.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    operation_id = "metrics",
    responses((status = 200, description = "Metrics in Prometheus text format", body = String, content_type = "text/plain; version=0.0.4"))
)]
pub(crate) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut text = String::new();
    state.metrics.write(&mut text);
    state.store_metrics.write(&mut text);
    state.links.write_metrics(&mut text);
    for source in &state.metrics_sources {
        source.write_metrics(&mut text);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text)
}
