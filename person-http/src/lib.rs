//! The Person API's HTTP adapter: the axum [`router`], problem+json errors, and the OpenAPI document.
//!
//! A driving adapter around [`person_core::PersonService`]: it turns requests into use-case calls and results
//! into responses, keeping Hackney's wire contract (SPEC §2–§5, §9). It depends on no store: the composition
//! root builds the service over a store and passes it in through [`AppState`].
//!
//! Callers are authenticated by bearer tokens, or all act as the local developer in development mode (see
//! [`auth`]); what each endpoint needs is the permission table of the `permissions` module.
//!
//! The composition root may wrap the store in a [`TimedStore`] ([`store_timing::timed`]) and hand its
//! [`StoreMetrics`] to [`AppState::with_store_metrics`]: responses then carry `Server-Timing`, each request logs
//! its storage operations, and `/metrics` shows their latencies.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use std::sync::Arc;
//! use person_core::{InMemoryStore, PersonService, Repositories};
//! use person_core::ports::{RandomIds, SystemClock};
//! use person_http::{AppState, HttpConfig};
//!
//! let store = Arc::new(InMemoryStore::new());
//! let service = PersonService::new(Repositories::from_store(store), Arc::new(SystemClock), Arc::new(RandomIds));
//! // Development mode (the default): no tokens, every caller is the local developer. Loopback only.
//! let app = person_http::router(AppState::new(service, HttpConfig::default()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await
//! # }
//! ```

pub mod auth;
mod error;
mod extract;
#[doc(hidden)]
pub mod fuzzing;
pub mod links;
pub mod metrics;
mod middleware;
mod openapi;
mod permissions;
pub mod query_stats;
pub mod rate_limit;
mod routes;
mod state;
pub mod store_timing;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use http::StatusCode;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use openapi::openapi;
pub use query_stats::QueryStats;
pub use rate_limit::RateLimitConfig;
pub use state::{AppState, DEFAULT_BODY_LIMIT, DEFAULT_REQUEST_TIMEOUT, HttpConfig};
pub use store_timing::{StoreMetrics, TimedStore};

use routes::{admin, audit, documents, events, health, persons, references, reporting, search};

/// The whole API as an axum router, ready to serve (`axum::serve`) or to nest in another application.
///
/// Routes: `GET|POST /api/v1/persons` (search, create), `POST /api/v2/persons`, `POST /api/v1/persons/match`,
/// `GET /api/v1/search/persons` (Hackney's housing search), `GET|PATCH|DELETE /api/v1/persons/{id}`,
/// `POST /api/v1/persons/{id}/merge`, `GET /api/v1/persons/{id}/history`, `GET|PUT /api/v1/persons/{id}/equality`,
/// `GET|PUT|DELETE /api/v1/persons/{id}/extended/{area}`, `PUT /api/v1/persons/{id}/processing-restriction`,
/// `GET|POST|DELETE /api/v1/persons/{id}/references`, `GET /api/v1/persons/{id}/access-log`,
/// `GET /api/v1/persons/{id}/subject-access`, `GET /api/v1/events`,
/// `GET /api/v1/reporting/{persons|person-tenures|person-references}`, `GET /api/v1/healthcheck/ping`, `GET /livez`,
/// `GET /readyz`, `GET /metrics`, `GET /swagger/v1/swagger.json` and the Swagger UI under `/swagger`. Unknown paths answer a 404 problem and known paths with another method a 405 problem.
///
/// Middleware, outermost first: request metrics (route template, method, final status and latency of every
/// response, for `/metrics`), correlation id (accepted or generated, echoed on every response), store operation
/// collection (`Server-Timing` and one log line for requests that used a [`store_timing::TimedStore`]), the
/// request span, CORS, gzip compression, problem rendering (every error is `application/problem+json`), panic catching
/// (500 problem), the request timeout (504 problem), access (authentication 401, the caller's rate limit 429 when
/// configured, `x-purpose`, the permission table 403; health and OpenAPI routes are public) and the body limit (413
/// problem).
pub fn router(state: AppState) -> Router {
    let config = state.config.clone();
    let middleware = ServiceBuilder::new()
        // Outermost, so that the status it counts is the one the caller gets, whichever layer produced it (CORS
        // preflights, 401/403, 413, 504, panics' 500). `Router::layer` wraps every route and the fallbacks
        // after routing, so the matched route template is known here.
        .layer(axum::middleware::from_fn_with_state(state.metrics.clone(), metrics::track))
        .layer(axum::middleware::from_fn(middleware::correlate))
        // Inside the correlation id (which it logs), outside everything that may use the store.
        .layer(axum::middleware::from_fn(store_timing::collect))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(middleware::RequestSpan)
                .on_request(())
                .on_response(middleware::RecordStatus)
                // Failures are logged once, with their cause, by `finalize_problems`.
                .on_failure(()),
        )
        .layer(middleware::cors())
        .layer(CompressionLayer::new())
        .layer(axum::middleware::from_fn(middleware::finalize_problems))
        .layer(CatchPanicLayer::custom(middleware::panic_response))
        .layer(TimeoutLayer::with_status_code(StatusCode::GATEWAY_TIMEOUT, config.request_timeout))
        .layer(axum::middleware::from_fn_with_state(state.clone(), permissions::access))
        // Content-Length over the limit is refused before the handler runs; a chunked body over it fails
        // while being read (axum's limit, the same number).
        .layer(RequestBodyLimitLayer::new(config.body_limit))
        .layer(DefaultBodyLimit::max(config.body_limit));

    Router::new()
        .route("/api/v1/persons", get(search::search_persons).post(persons::create_v1))
        .route("/api/v1/persons/match", post(search::match_person))
        .route("/api/v1/search/persons", get(search::housing_search))
        .route("/api/v2/persons", post(persons::create_v2))
        .route(
            "/api/v1/persons/{id}",
            get(persons::get_person).patch(persons::update_person).delete(persons::delete_person),
        )
        .route("/api/v1/persons/{id}/history", get(persons::history))
        .route("/api/v1/persons/{id}/merge", post(persons::merge))
        .route("/api/v1/persons/{id}/equality", get(documents::get_equality).put(documents::put_equality))
        .route(
            "/api/v1/persons/{id}/extended/{area}",
            get(documents::get_extended).put(documents::put_extended).delete(documents::delete_extended),
        )
        .route("/api/v1/persons/{id}/processing-restriction", put(persons::set_restriction))
        .route(
            "/api/v1/persons/{id}/references",
            get(references::list).post(references::add).delete(references::remove),
        )
        .route("/api/v1/persons/{id}/access-log", get(audit::access_log))
        .route("/api/v1/persons/{id}/subject-access", get(audit::subject_access))
        .route("/api/v1/events", get(events::feed))
        .route("/api/v1/reporting/persons", get(reporting::persons))
        .route("/api/v1/reporting/person-tenures", get(reporting::person_tenures))
        .route("/api/v1/reporting/person-references", get(reporting::person_references))
        .route("/api/v1/admin/queries", get(admin::queries))
        .route("/api/v1/healthcheck/ping", get(health::ping))
        .route("/livez", get(health::livez))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .with_state(state)
        .merge(openapi::swagger_ui(config.base_url()))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(middleware)
}
