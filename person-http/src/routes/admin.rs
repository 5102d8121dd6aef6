//! Support endpoints for `admin`: the query catalogue with live statistics (SPEC §10, query visibility).

use axum::Json;
use axum::extract::State;
use person_core::api::ProblemDetails;
use serde::Serialize;
use utoipa::ToSchema;

use crate::query_stats::LatencyView;
use crate::state::AppState;

/// One named statement of the store: its text and how it has performed since the server started.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StatementView {
    /// Stable name (as in the request log's `statements` and in storage error messages).
    name: &'static str,
    /// The statement: SQL with bound parameters (never values), or the DynamoDB operation and key pattern.
    statement: &'static str,
    /// Live statistics (all zero until it first runs).
    #[serde(flatten)]
    stats: LatencyView,
}

/// One port-level storage operation (one call of the store by the service, which may run several statements).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OperationView {
    /// Stable name (as in the request log's `operations` and the `/metrics` `operation` label).
    name: &'static str,
    /// Live statistics; `errors` counts every outcome but `ok` (conflicts and refusals included).
    #[serde(flatten)]
    stats: LatencyView,
}

/// The query catalogue of the running store.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct QueryCatalogueResponse {
    /// Which store (`sqlite`, `postgres`, `dynamodb`, `memory`).
    store: &'static str,
    /// Every statement the store can run, in catalogue order, with statistics.
    statements: Vec<StatementView>,
    /// Every port-level operation that has run, by name, with statistics.
    operations: Vec<OperationView>,
    /// Statement names the store reported that its catalogue does not list (always empty unless the store has a
    /// bug; listed so that it is noticed).
    uncatalogued: Vec<&'static str>,
}

/// The query catalogue: every named statement of the store with its text and live statistics (count, errors,
/// mean, p95, max, last error time), and the port-level operations. Needs `admin`.
///
/// Statistics are per server process, since it started; the p95 is over each statement's most recent 1,024
/// executions. Statement texts never hold values.
#[utoipa::path(
    get,
    path = "/api/v1/admin/queries",
    tag = "admin",
    operation_id = "getQueryCatalogue",
    responses(
        (status = 200, description = "The catalogue with live statistics", body = QueryCatalogueResponse),
        (status = 403, description = "The caller is not `admin`", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn queries(State(state): State<AppState>) -> Json<QueryCatalogueResponse> {
    let catalogue = state.service.query_catalogue();
    let statements = catalogue
        .statements()
        .iter()
        .map(|query| StatementView {
            name: query.name,
            statement: query.sql,
            stats: state.query_stats.view(query.name),
        })
        .collect();
    let operations =
        state.store_metrics.views().into_iter().map(|(name, stats)| OperationView { name, stats }).collect();
    Json(QueryCatalogueResponse {
        store: catalogue.store_kind(),
        statements,
        operations,
        uncatalogued: state.query_stats.uncatalogued(catalogue.statements()),
    })
}
