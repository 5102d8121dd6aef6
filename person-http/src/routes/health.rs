//! Health endpoints: Hackney's ping, liveness and readiness (for orchestrators and load balancers).

use axum::Json;
use axum::extract::State;
use person_core::api::ProblemDetails;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::state::AppState;

/// Hackney's `healthcheck/ping` answer.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub(crate) struct PingResponse {
    /// Always true.
    success: bool,
}

/// A liveness or readiness answer.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub(crate) struct HealthStatus {
    /// `live` or `ready`.
    status: &'static str,
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
    Json(HealthStatus { status: "live" })
}

/// Readiness: the store answers (send traffic only when this succeeds).
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
    Ok(Json(HealthStatus { status: "ready" }))
}
