//! [`PostgresOptions`]: the connection-pool and session settings of the PostgreSQL store, with defaults for a
//! few API processes sharing one database server.
//!
//! Plain values only, and the handle statement executions are reported to: the server maps its configuration
//! onto them, and nothing here knows about URLs or connections.

use std::time::Duration;

use person_core::storage::QueryRecorder;

/// Pool and session settings for [`crate::PostgresStore`], and where it reports its statements.
///
/// Two options are equal when their settings are; [`Self::queries`] is a reporting handle, not a setting, and is
/// not compared.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// Most connections this process opens (default 10). Size it so that every API process together stays below
    /// the server's `max_connections`.
    pub max_connections: u32,
    /// Connections kept open when idle (default 1).
    pub min_connections: u32,
    /// Longest a request waits for a free connection before it fails as unavailable (503) (default 5 s).
    pub acquire_timeout: Duration,
    /// Idle connections above `min_connections` are closed after this long (default 10 min).
    pub idle_timeout: Option<Duration>,
    /// Connections are replaced after this long, so server-side memory and fail-overs are picked up (default
    /// 30 min).
    pub max_lifetime: Option<Duration>,
    /// `statement_timeout` of every session: a statement running longer is cancelled and the request fails as
    /// unavailable (default 30 s, the default request timeout).
    pub statement_timeout: Duration,
    /// `lock_timeout` of every session: longest a statement waits for a row lock held by another writer (default
    /// 10 s).
    pub lock_timeout: Duration,
    /// `idle_in_transaction_session_timeout`: a session that stalls inside a transaction (a hung process) is
    /// ended after this long, releasing its locks, so it cannot block the event feed's counter for long (default
    /// 60 s).
    pub idle_in_transaction_timeout: Duration,
    /// Receives every statement execution (name, duration, row count, outcome) under its
    /// [`crate::queries::CATALOGUE`] name, for query visibility (SPEC §10). Default: reports nowhere.
    pub queries: QueryRecorder,
}

impl PartialEq for PostgresOptions {
    fn eq(&self, other: &Self) -> bool {
        // Destructured so that a new setting cannot be left out of the comparison.
        let Self {
            max_connections,
            min_connections,
            acquire_timeout,
            idle_timeout,
            max_lifetime,
            statement_timeout,
            lock_timeout,
            idle_in_transaction_timeout,
            queries: _,
        } = self;
        *max_connections == other.max_connections
            && *min_connections == other.min_connections
            && *acquire_timeout == other.acquire_timeout
            && *idle_timeout == other.idle_timeout
            && *max_lifetime == other.max_lifetime
            && *statement_timeout == other.statement_timeout
            && *lock_timeout == other.lock_timeout
            && *idle_in_transaction_timeout == other.idle_in_transaction_timeout
    }
}

impl Eq for PostgresOptions {}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            min_connections: 1,
            acquire_timeout: Duration::from_secs(5),
            idle_timeout: Some(Duration::from_secs(600)),
            max_lifetime: Some(Duration::from_secs(1800)),
            statement_timeout: Duration::from_secs(30),
            lock_timeout: Duration::from_secs(10),
            idle_in_transaction_timeout: Duration::from_secs(60),
            queries: QueryRecorder::none(),
        }
    }
}
