//! Log capture for the tests that check what the API logs: a JSON `tracing` subscriber writing into memory.
//!
//! The subscriber is thread-local (`set_default`), so a test using it runs on a current-thread runtime, alone in
//! its binary: tracing caches per-callsite interest process-wide, and concurrent tests logging without a
//! subscriber would make the capture flaky.

use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;

/// Log lines written while the guard lives (on this thread: the test runs on a current-thread runtime, so the
/// server's tasks log here too).
#[derive(Clone, Default)]
pub(crate) struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    pub(crate) fn start(&self) -> tracing::subscriber::DefaultGuard {
        let logs = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || logs.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    /// The JSON lines written so far, then forgets them.
    pub(crate) fn take(&self) -> Vec<Value> {
        let bytes = std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner));
        String::from_utf8_lossy(&bytes).lines().filter_map(|line| serde_json::from_str(line).ok()).collect()
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
