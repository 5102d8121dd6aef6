//! Logging: structured `tracing` output to standard error, as text or JSON lines.
//!
//! Standard output is kept for the one "listening on …" line, so scripts and tests can find the address. What
//! is logged is decided by the code that logs: request spans carry the correlation id, method, route and status;
//! domain types redact personal data in their `Debug` output, so nothing here needs to filter.

use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat};

/// Installs the global subscriber. Calling it twice is harmless (the second call does nothing).
pub fn init(config: &Config) {
    let filter = EnvFilter::try_new(&config.log_filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = match config.log_format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    // A subscriber already installed (tests) is fine.
    drop(result);
}
