//! The Person API server: configuration, composition root and sub-commands of the `person-api` binary.
//!
//! `main.rs` only parses the command line and calls into here, so the same start-up path is exercised by the
//! integration tests.

pub mod config;
pub mod store;
pub mod telemetry;

use std::future::Future;
use std::sync::Arc;

use person_core::PersonService;
use person_core::ports::{RandomIds, SystemClock};
use person_http::{AppState, HttpConfig};
use tokio::net::TcpListener;

use crate::config::Config;

/// Serves the API on `listener` until `shutdown` completes, then lets in-flight requests finish.
///
/// # Errors
/// The store cannot be opened, or the server fails.
pub async fn serve(
    config: &Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let repository = store::open_repository(&config.store).await?;
    let service = PersonService::new(repository.clone(), Arc::new(SystemClock), Arc::new(RandomIds));
    let http = HttpConfig {
        request_timeout: config.request_timeout,
        public_base_url: config.public_base_url.clone(),
        ..HttpConfig::default()
    };
    let app = person_http::router(AppState::new(service, http));
    let addr = listener.local_addr()?;
    tracing::info!(%addr, store = store_kind(&config.store), "person-api ready");
    println!("person-api listening on http://{addr}");
    let served = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
    // In-flight requests have finished; flush and close the store whether or not serving failed.
    repository.close().await;
    served?;
    tracing::info!("person-api stopped");
    Ok(())
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
