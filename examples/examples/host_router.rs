//! Hosting the Person API inside another axum application: `person_http::router` is a plain `Router`, so it
//! can be nested under a prefix next to the host's own routes. Here it is served under `/person` over the
//! embedded SQLite store, beside a home page and a status route of the host.
//!
//! ```text
//! cargo run -p person-examples --example host_router -- 127.0.0.1:8080
//! curl http://127.0.0.1:8080/person/api/v1/healthcheck/ping
//! ```
//!
//! The address comes from the first argument, else `PERSON_EXAMPLE_BIND`, else `127.0.0.1:8080`; the store from
//! `PERSON_EXAMPLE_STORE`, else `sqlite://./data/host-router.db`. The router runs in development mode (no
//! tokens), which is only allowed on a loopback address: configure `HttpConfig::auth` for anything else.
//!
//! Clients reach the API under the prefix: `PersonClient::builder("http://127.0.0.1:8080/person")`. The API's
//! own path-relative links (`links.next`) do not know the prefix; `person-client` resolves them under its base
//! URL, other clients should do the same (or configure `HttpConfig::public_base_url` with the prefix).

use std::error::Error;
use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use person_core::ports::{RandomIds, SystemClock};
use person_core::{PersonService, Repositories};
use person_http::{AppState, HttpConfig};
use person_sqlite::{SqliteOptions, SqliteStore};
use tokio::net::TcpListener;

/// Where the Person API is mounted in the host application.
pub const PREFIX: &str = "/person";

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error + Send + Sync>> {
    let bind = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("PERSON_EXAMPLE_BIND").ok())
        .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let store = std::env::var("PERSON_EXAMPLE_STORE").unwrap_or_else(|_| "sqlite://./data/host-router.db".to_owned());
    let listener = TcpListener::bind(&bind).await?;
    println!("host application on http://{}, Person API under {PREFIX}", listener.local_addr()?);
    run(listener, &store, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}

/// Serves the host application with the Person API under [`PREFIX`] on `listener`, over the SQLite store at
/// `store_url`, until `shutdown` completes.
///
/// # Errors
/// A non-loopback address (development mode would be open to the network), a store that cannot be opened, or
/// a server failure.
pub async fn run(
    listener: TcpListener,
    store_url: &str,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn Error + Send + Sync>> {
    if !listener.local_addr()?.ip().is_loopback() {
        return Err("development mode (no tokens) is only allowed on a loopback address".into());
    }
    let store = Arc::new(SqliteStore::open(store_url, SqliteOptions::default()).await?);
    let service =
        PersonService::new(Repositories::from_store(store.clone()), Arc::new(SystemClock), Arc::new(RandomIds));
    let person_api = person_http::router(AppState::new(service, HttpConfig::default()));

    let app = Router::new()
        .route("/", get(|| async { "The host application: the Person API is under /person" }))
        .route("/status", get(|| async { "host ok" }))
        .nest(PREFIX, person_api);

    let served = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
    // In-flight requests are done: close the store (SQLite checkpoints its log) whether or not serving failed.
    store.close().await;
    Ok(served?)
}
