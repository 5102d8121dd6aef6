//! What the handlers share: the person service, the HTTP configuration, the link registry, the request metrics
//! and the store operation metrics.
//!
//! The state holds the domain service only, never a store: the composition root (`person-server`, or a test)
//! builds the service over whichever store it chose and hands it in.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use person_core::PersonService;

use person_core::RequestContext;
use person_core::api::PersonResponse;
use person_core::person::Person;

use crate::auth::{AuthConfig, Authenticator};
use crate::links::LinkRegistry;
use crate::metrics::RequestMetrics;
use crate::store_timing::StoreMetrics;

/// Default largest request body: 1 MiB (SPEC §4).
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// Default time a request may take before it is answered with 504.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings of the HTTP layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Longest time a request may take, body included; after it the request is abandoned with a 504 problem.
    pub request_timeout: Duration,
    /// Largest accepted request body in bytes; larger bodies are refused with a 413 problem.
    pub body_limit: usize,
    /// The externally visible base URL (`https://person-api.example.gov.uk`, no trailing slash needed), used to
    /// build absolute `links.next` URLs and the OpenAPI `servers` entry. Without it links are path-relative.
    pub public_base_url: Option<String>,
    /// How callers are authenticated and what their groups may do (default: development mode, no groups).
    pub auth: AuthConfig,
    /// Per-caller rate limit (429 with `Retry-After` beyond it); `None` (the default): no limit.
    pub rate_limit: Option<crate::rate_limit::RateLimitConfig>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            body_limit: DEFAULT_BODY_LIMIT,
            public_base_url: None,
            auth: AuthConfig::default(),
            rate_limit: None,
        }
    }
}

impl HttpConfig {
    /// The base URL without a trailing slash, or `""` (path-relative links).
    pub(crate) fn base_url(&self) -> &str {
        self.public_base_url.as_deref().map_or("", |url| url.trim_end_matches('/'))
    }
}

/// The router's shared state: cheap to clone (everything inside is shared).
#[derive(Clone)]
pub struct AppState {
    pub(crate) service: PersonService,
    pub(crate) config: Arc<HttpConfig>,
    pub(crate) auth: Arc<Authenticator>,
    pub(crate) links: LinkRegistry,
    /// Request counts and latencies, fed by the router's metrics layer and shown on `/metrics`.
    pub(crate) metrics: RequestMetrics,
    /// Store operation counts and latencies, fed by the [`crate::TimedStore`] the service was built over (if
    /// any) and shown on `/metrics`.
    pub(crate) store_metrics: StoreMetrics,
    /// Statement statistics reported by the store, shown by `GET /admin/queries`.
    pub(crate) query_stats: crate::query_stats::QueryStats,
    /// Further metric families shown on `/metrics` (the event relay's).
    pub(crate) metrics_sources: Vec<Arc<dyn crate::metrics::MetricsSource>>,
    /// The callers' buckets, when a rate limit is configured.
    pub(crate) rate_limiter: Option<Arc<crate::rate_limit::RateLimiter>>,
}

impl AppState {
    /// The state of a router serving `service` with `config`. Token keys are parsed here, once; invalid keys
    /// (which [`crate::auth::TokenKeys::validate`] reports at start) make every token fail, never open access.
    #[must_use]
    pub fn new(service: PersonService, config: HttpConfig) -> Self {
        let auth = Arc::new(Authenticator::new(&config.auth));
        let rate_limiter = config.rate_limit.map(|limit| Arc::new(crate::rate_limit::RateLimiter::new(limit)));
        Self {
            service,
            config: Arc::new(config),
            auth,
            links: LinkRegistry::default(),
            metrics: RequestMetrics::default(),
            store_metrics: StoreMetrics::default(),
            metrics_sources: Vec::new(),
            query_stats: crate::query_stats::QueryStats::default(),
            rate_limiter,
        }
    }

    /// The same state with `links`: person responses then carry the links of the registered services the caller
    /// may see and that are up (SPEC §8). Without it, `links` are always empty.
    #[must_use]
    pub fn with_links(mut self, links: LinkRegistry) -> Self {
        self.links = links;
        self
    }

    /// The same state showing `metrics` on `/metrics`: those of the [`crate::TimedStore`] the service was built
    /// over ([`crate::store_timing::timed`]). Without it `/metrics` has no store operation metrics (the
    /// `Server-Timing` header and the operation log need nothing here).
    #[must_use]
    pub fn with_store_metrics(mut self, metrics: StoreMetrics) -> Self {
        self.store_metrics = metrics;
        self
    }

    /// The same state showing `stats` on `GET /admin/queries`: the [`crate::QueryStats`] the store was opened
    /// with (as its `QueryRecorder`'s observer). Without it every statement shows zero executions.
    #[must_use]
    pub fn with_query_stats(mut self, stats: crate::query_stats::QueryStats) -> Self {
        self.query_stats = stats;
        self
    }

    /// The same state also showing `source`'s metric families on `/metrics`.
    #[must_use]
    pub fn with_metrics_source(mut self, source: Arc<dyn crate::metrics::MetricsSource>) -> Self {
        self.metrics_sources.push(source);
        self
    }

    /// `person` as shown to the caller of `ctx`: computed values as of today, and the caller's links.
    pub(crate) fn show(&self, person: &Person, ctx: &RequestContext) -> PersonResponse {
        PersonResponse::new(person, self.service.today(), self.links.links_for(person, &ctx.permissions))
    }

    /// The HTTP configuration.
    #[must_use]
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState").field("config", &self.config).finish_non_exhaustive()
    }
}
