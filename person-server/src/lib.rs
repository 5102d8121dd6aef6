//! The Person API server: configuration, composition root and sub-commands of the `person-api` binary.
//!
//! `main.rs` only parses the command line and calls into here, so the same start-up path is exercised by the
//! integration tests.

pub mod config;
pub mod export;
pub mod import;
pub mod links;
pub mod relay;
pub mod serving;
pub mod store;
pub mod telemetry;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use person_core::PersonService;
use person_core::ports::{RandomIds, Repositories, SystemClock};
use person_core::storage::QueryRecorder;
use person_http::auth::{AuthConfig, AuthError, AuthMode, TokenKeys};
use person_http::{AppState, HttpConfig, QueryStats, StoreMetrics, store_timing};
use tokio::net::TcpListener;

use crate::config::{AuthSettings, Config};

/// Why the server refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// No token key is configured and the address is not loopback: the API would be open to the network.
    #[error(
        "refusing to serve on {0} without authentication: configure PERSON_API_JWT_SECRET (or \
         PERSON_API_JWT_SECRET_FILE) or PERSON_API_JWT_PUBLIC_KEY_FILE, or bind to a loopback address for \
         development mode"
    )]
    OpenToTheNetwork(SocketAddr),
    /// A configured key cannot be used.
    #[error("invalid token key configuration")]
    InvalidKey(#[source] AuthError),
}

/// The HTTP layer's authentication settings for serving on `addr`.
///
/// # Errors
/// [`StartError::OpenToTheNetwork`] for development mode on a non-loopback address, [`StartError::InvalidKey`]
/// for a key that does not parse.
pub fn auth_config(settings: &AuthSettings, addr: SocketAddr) -> Result<AuthConfig, StartError> {
    let mode = if settings.is_development() {
        if !addr.ip().is_loopback() {
            return Err(StartError::OpenToTheNetwork(addr));
        }
        AuthMode::Development
    } else {
        let keys = TokenKeys {
            hs256_secret: settings.hs256_secret.as_ref().map(|s| s.expose().to_vec()),
            public_key_pem: settings.public_key_pem.clone(),
        };
        keys.validate().map_err(StartError::InvalidKey)?;
        AuthMode::Tokens(keys)
    };
    Ok(AuthConfig { mode, group_permissions: settings.groups.clone() })
}

/// Serves the API on `listener` until `shutdown` completes, then lets in-flight requests finish.
///
/// # Errors
/// The store cannot be opened, or the server fails.
pub async fn serve(
    config: &Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    let auth = auth_config(&config.auth, addr)?;
    if matches!(auth.mode, AuthMode::Development) {
        let warning = "DEVELOPMENT MODE: authentication is OFF; every caller acts as the local developer with \
                       every permission. Serving on loopback only. Configure a token key before any real use.";
        tracing::warn!("{warning}");
        eprintln!("person-api: WARNING: {warning}");
    } else if config.auth.groups.is_empty() {
        tracing::warn!("no group permissions are configured: every token will be refused with 403");
    }
    // Every statement the store runs is reported to `query_stats` (`GET /admin/queries`, and the `statements` of
    // the per-request log line).
    let query_stats = QueryStats::default();
    let queries = QueryRecorder::new(Arc::new(query_stats.clone()));
    let store = store::open_repository(&config.store, &config.store_options, queries).await?;
    // Every store call is timed at the port boundary: `Server-Timing`, the per-request operation log line and the
    // store metrics on `/metrics` (which `store_metrics` carries to the router).
    let store_metrics = StoreMetrics::default();
    let repositories = Repositories::from_dyn(store_timing::timed(store.clone(), &store_metrics));
    let service = PersonService::new(repositories, Arc::new(SystemClock), Arc::new(RandomIds));
    let http = HttpConfig {
        request_timeout: config.request_timeout,
        public_base_url: config.public_base_url.clone(),
        auth,
        rate_limit: config.rate_limit,
        ..HttpConfig::default()
    };
    let registry = config.link_registry()?;
    let mut probes = links::start(&registry, config.link_probes)?;
    // The event relay (when enabled) reads the feed outside any request, so it uses the store untimed.
    let event_relay = relay::start(&config.relay, &Repositories::from_dyn(store.clone())).await?;
    let state = AppState::new(service, http)
        .with_links(registry)
        .with_store_metrics(store_metrics)
        .with_query_stats(query_stats);
    let state = match &event_relay {
        Some(running) => state.with_metrics_source(Arc::new(relay::RelayMetricsSource(running.metrics()))),
        None => state,
    };
    let app = person_http::router(state);
    tracing::info!(%addr, store = store_kind(&config.store), links = config.links.len(), "person-api ready");
    println!("person-api listening on http://{addr}");
    let served = serving::serve(listener, app, config.connection_limits, shutdown).await;
    // In-flight requests have finished; stop probing, then flush and close the store whether or not serving
    // failed.
    probes.stop();
    // The relay stops before the store closes: it records its position and releases its lease.
    if let Some(running) = event_relay {
        running.shutdown().await;
    }
    store.close().await;
    served?;
    tracing::info!("person-api stopped");
    Ok(())
}

/// Parses a token lifetime such as `90s`, `15m`, `1h` or `7d` (at most 366 days).
#[must_use]
pub fn parse_ttl(text: &str) -> Option<std::time::Duration> {
    let text = text.trim();
    let unit = text.chars().last()?;
    let number: u64 = text[..text.len() - unit.len_utf8()].parse().ok()?;
    let seconds = match unit {
        's' => number,
        'm' => number.checked_mul(60)?,
        'h' => number.checked_mul(3600)?,
        'd' => number.checked_mul(86_400)?,
        _ => return None,
    };
    (1..=366 * 86_400).contains(&seconds).then(|| std::time::Duration::from_secs(seconds))
}

/// The scheme of a store URL, safe to log (a URL may carry credentials; the scheme never does).
fn store_kind(url: &str) -> &str {
    url.split_once(':').map_or("unknown", |(scheme, _)| scheme)
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_lifetimes_parse_with_units_and_bounds() {
        assert_eq!(parse_ttl("90s"), Some(std::time::Duration::from_secs(90)));
        assert_eq!(parse_ttl("15m"), Some(std::time::Duration::from_secs(900)));
        assert_eq!(parse_ttl("1h"), Some(std::time::Duration::from_secs(3600)));
        assert_eq!(parse_ttl("7d"), Some(std::time::Duration::from_secs(7 * 86_400)));
        for bad in ["", "h", "0s", "10", "1y", "-1h", "400d", "1.5h"] {
            assert_eq!(parse_ttl(bad), None, "{bad}");
        }
    }

    #[test]
    fn development_mode_is_refused_off_loopback_and_allowed_on_it() {
        let dev = AuthSettings::default();
        assert!(matches!(auth_config(&dev, "0.0.0.0:8080".parse().unwrap()), Err(StartError::OpenToTheNetwork(_))));
        assert!(matches!(auth_config(&dev, "127.0.0.1:8080".parse().unwrap()).unwrap().mode, AuthMode::Development));
        assert!(auth_config(&dev, "[::1]:8080".parse().unwrap()).is_ok());
    }
}
