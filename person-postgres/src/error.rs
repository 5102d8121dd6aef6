//! Failures of this adapter and their mapping onto the port's [`StoreError`].
//!
//! `sqlx` errors are wrapped as the source of a [`StoreError`] (kept, never stringified) together with the stable
//! name of the statement that failed, so the chain reads "storage operation person.insert failed: …". Messages
//! never carry values: a document that fails to parse is reported by position and category, never with serde's
//! text (which may quote personal data).
//!
//! Classification uses SQLSTATE codes and constraint names, never message text: connection failures, resource
//! exhaustion, server shutdown, cancelled statements (timeouts), lock timeouts, deadlocks and serialisation
//! failures are [`StoreError::Unavailable`] (retrying later may succeed), and so is a reference released while it
//! was being claimed; everything else is [`StoreError::Unexpected`]. Stored data that cannot be read is reported
//! by `person_core::storage`.

use person_core::ports::StoreError;

/// SQLSTATE of a unique or primary key violation.
pub(crate) const UNIQUE_VIOLATION: &str = "23505";

/// SQLSTATE of `CREATE SCHEMA` racing another process creating the same schema.
const DUPLICATE_SCHEMA: &str = "42P06";

/// What went wrong inside the adapter; always wrapped in a [`StoreError`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum PostgresStoreError {
    /// The storage URL does not use the `postgres:` or `postgresql:` scheme.
    #[error("not a PostgreSQL storage URL: expected postgres://user@host:port/database")]
    NotPostgresUrl,
    /// `sqlx` could not interpret the URL.
    #[error("invalid PostgreSQL storage URL")]
    InvalidUrl(#[source] sqlx::Error),
    /// The `schema` parameter is not a plain lower-case identifier.
    #[error("invalid schema name in the storage URL: use 1 to 63 of a-z, 0-9 and _, not starting with a digit")]
    InvalidSchema,
    /// Applying the schema migrations failed.
    #[error("applying the schema migrations failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// A statement failed.
    #[error("storage operation {operation} failed")]
    Operation {
        /// Stable name of the statement (see `queries::CATALOGUE`).
        operation: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A counter row is missing (the schema was tampered with).
    #[error("the {0} counter is missing")]
    MissingCounter(&'static str),
    /// A reference the write could not claim was released by its holder before the holder could be named (a
    /// race between three writers; retrying the write claims it).
    #[error("a reference held by another person was released while it was being claimed")]
    ReferenceReleased,
}

impl From<PostgresStoreError> for StoreError {
    fn from(error: PostgresStoreError) -> Self {
        let unavailable = match &error {
            PostgresStoreError::Operation { source, .. } => is_transient(source),
            PostgresStoreError::Migrate(sqlx::migrate::MigrateError::Execute(source)) => is_transient(source),
            PostgresStoreError::ReferenceReleased => true,
            _ => false,
        };
        if unavailable { StoreError::Unavailable(Box::new(error)) } else { StoreError::Unexpected(Box::new(error)) }
    }
}

/// Wraps a failure of the statement named `operation` as a [`StoreError`].
pub(crate) fn failed(operation: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| PostgresStoreError::Operation { operation, source }.into()
}

/// The SQLSTATE of a database error, if it is one.
fn sqlstate(error: &sqlx::Error) -> Option<String> {
    match error {
        sqlx::Error::Database(db) => db.code().map(|code| code.into_owned()),
        _ => None,
    }
}

/// The constraint a unique violation hit, when `error` is one.
pub(crate) fn violated_unique_constraint(error: &sqlx::Error) -> Option<&str> {
    match error {
        sqlx::Error::Database(db) if db.code().as_deref() == Some(UNIQUE_VIOLATION) => db.constraint(),
        _ => None,
    }
}

/// True when `CREATE SCHEMA IF NOT EXISTS` lost a race with another process creating the same schema (the
/// schema exists: what was wanted).
pub(crate) fn is_schema_creation_race(error: &sqlx::Error) -> bool {
    matches!(sqlstate(error).as_deref(), Some(DUPLICATE_SCHEMA | UNIQUE_VIOLATION))
}

/// True for failures that retrying later may cure.
fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        // `Protocol`: a server (or a proxy or load balancer before it) that accepts the connection and closes it
        // during the start-up exchange reads as "unexpected response from SSLRequest: 0x00" — a store going away,
        // found by `tests/store_faults.rs` in person-server; a genuine protocol fault would persist and still be
        // logged with its cause.
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(_) => sqlstate(error).is_some_and(|code| {
            // 08: connection exception; 53: insufficient resources; 57P01-57P03: server shutting down or
            // starting; 57014: statement cancelled (statement_timeout); 55P03: lock_timeout; 40001/40P01:
            // serialisation failure, deadlock (the transaction was rolled back and may be retried).
            code.starts_with("08")
                || code.starts_with("53")
                || matches!(code.as_str(), "57P01" | "57P02" | "57P03" | "57014" | "55P03" | "40001" | "40P01")
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn pool_timeouts_and_io_failures_are_unavailable() {
        for source in [
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
            sqlx::Error::Io(std::io::Error::other("gone")),
            sqlx::Error::Protocol("unexpected response from SSLRequest: 0x00".to_owned()),
        ] {
            let error = failed("person.get")(source);
            assert!(matches!(error, StoreError::Unavailable(_)), "got {error:?}");
        }
    }

    #[test]
    fn other_driver_failures_are_unexpected_and_name_the_operation() {
        let error = failed("person.get")(sqlx::Error::RowNotFound);
        assert!(matches!(error, StoreError::Unexpected(_)), "got {error:?}");
        let source = error.source().map(ToString::to_string).unwrap_or_default();
        assert_eq!(source, "storage operation person.get failed");
    }
}
