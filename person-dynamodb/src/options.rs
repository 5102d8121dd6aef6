//! [`DynamoDbOptions`]: the tunables of the DynamoDB store, with defaults for a service answering people.
//!
//! Plain values only (and the query observer handle): the server maps its configuration onto them, and nothing
//! here knows about the SDK.

use std::time::Duration;

use person_core::storage::QueryRecorder;

/// Options of [`crate::DynamoDbStore::connect`].
#[derive(Debug, Clone)]
pub struct DynamoDbOptions {
    /// Longest time one SDK operation may take, retries included (then [`person_core::StoreError::Unavailable`]).
    /// Default 10 s.
    pub operation_timeout: Duration,
    /// Longest time one attempt of an SDK operation may take before it is retried. Default 3 s.
    pub attempt_timeout: Duration,
    /// Longest time to open a connection. Default 3 s.
    pub connect_timeout: Duration,
    /// Attempts per SDK operation, the first included, for throttling and transient failures (the SDK's standard
    /// retry strategy with exponential backoff and jitter). At least 1. Default 3.
    pub max_attempts: u32,
    /// Attempts of a write that loses the race for the feed counter to writers in other processes (retried at
    /// once with the counter's new value), and separately of a write that loses a race for another guard item or
    /// meets a conflicting transaction (retried after reading again, with backoff), before it gives up with
    /// [`person_core::StoreError::Unavailable`]. At least 1. Default 100.
    pub max_contention_attempts: u32,
    /// First backoff after a lost race; doubled per attempt (with full jitter) up to
    /// [`Self::max_contention_backoff`]. Default 5 ms.
    pub contention_backoff: Duration,
    /// Longest backoff between two attempts of a contended write. Default 200 ms.
    pub max_contention_backoff: Duration,
    /// How long `connect`/`migrate` wait for a new table, or a new index of an existing one, to become ACTIVE.
    /// Default 60 s.
    pub table_ready_timeout: Duration,
    /// Where every DynamoDB operation the store sends is reported (query visibility, SPEC §10): its catalogue
    /// name ([`crate::queries::CATALOGUE`]), duration, item count and outcome. Each attempt of an operation
    /// retried by the store (a lost race, unprocessed keys) is one execution; the SDK's own retries of one call
    /// are not. Default: reports nowhere.
    pub queries: QueryRecorder,
}

impl Default for DynamoDbOptions {
    fn default() -> Self {
        Self {
            operation_timeout: Duration::from_secs(10),
            attempt_timeout: Duration::from_secs(3),
            connect_timeout: Duration::from_secs(3),
            max_attempts: 3,
            max_contention_attempts: 100,
            contention_backoff: Duration::from_millis(5),
            max_contention_backoff: Duration::from_millis(200),
            table_ready_timeout: Duration::from_secs(60),
            queries: QueryRecorder::none(),
        }
    }
}

/// Compares the tunables only: [`DynamoDbOptions::queries`] is where executions are reported, not a setting
/// (and an observer has no equality), so two options differing only in their observer are equal.
impl PartialEq for DynamoDbOptions {
    fn eq(&self, other: &Self) -> bool {
        let Self {
            operation_timeout,
            attempt_timeout,
            connect_timeout,
            max_attempts,
            max_contention_attempts,
            contention_backoff,
            max_contention_backoff,
            table_ready_timeout,
            queries: _,
        } = self;
        *operation_timeout == other.operation_timeout
            && *attempt_timeout == other.attempt_timeout
            && *connect_timeout == other.connect_timeout
            && *max_attempts == other.max_attempts
            && *max_contention_attempts == other.max_contention_attempts
            && *contention_backoff == other.contention_backoff
            && *max_contention_backoff == other.max_contention_backoff
            && *table_ready_timeout == other.table_ready_timeout
    }
}

impl Eq for DynamoDbOptions {}
