//! Accepting and serving connections, with the limits `axum::serve` does not offer: at most
//! [`ConnectionLimits::max_connections`] open connections (further ones wait in the listen backlog until one
//! closes), and a client must send a request's whole head within [`ConnectionLimits::header_read_timeout`] or its
//! connection is closed, so clients sending slowly (or idling on a keep-alive connection) cannot hold connections
//! forever. HTTP/1.1 and HTTP/2 (prior knowledge) are served; request heads over hyper's buffer (about 400 KiB) are
//! refused by hyper. Graceful shutdown: no new connection is accepted, each open one finishes its request in
//! progress, then the function returns.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Default [`ConnectionLimits::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 1_000;

/// Default [`ConnectionLimits::header_read_timeout`] in seconds.
pub const DEFAULT_HEADER_READ_TIMEOUT_SECS: u64 = 30;

/// Limits on the connections a server holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Open connections at most; further ones are accepted when one closes.
    pub max_connections: usize,
    /// Longest a client may take to send a request's head (and longest a keep-alive connection may idle).
    pub header_read_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_read_timeout: Duration::from_secs(DEFAULT_HEADER_READ_TIMEOUT_SECS),
        }
    }
}

/// Serves `app` on `listener` within `limits` until `shutdown` completes, then shuts down gracefully.
///
/// # Errors
/// None today (accept errors, such as running out of file descriptors, are logged and retried after a pause); the
/// `Result` keeps the signature of a server that can fail.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    let mut shutdown = pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break, // the semaphore is never closed
            },
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    // EMFILE and the like: wait for connections to close rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(app.clone()))
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                // A client going away, or the header read timeout: routine, not an error of the server.
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
