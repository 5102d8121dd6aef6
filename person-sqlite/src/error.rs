//! Failures of this adapter and their mapping onto the port's [`StoreError`].
//!
//! `sqlx` errors are wrapped as the source of a [`StoreError`] (kept, never stringified) together with the
//! stable name of the statement that failed, so the chain reads "storage operation person.insert failed: …".
//! Messages never carry values: SQLite's own messages name tables and columns only, and a document that fails
//! to parse is reported by position and category, never with serde's text (which may quote personal data).
//!
//! Stored data that cannot be read is reported by `person_core::storage` (by position, never by content).
//!
//! Classification uses SQLite's numeric result codes, not message text: busy, locked, I/O, full-disk and
//! cannot-open are [`StoreError::Unavailable`] (retrying later may succeed), everything else is
//! [`StoreError::Unexpected`].

use person_core::ports::StoreError;
pub(crate) use person_core::storage::out_of_range;

// SQLite primary result codes (https://www.sqlite.org/rescode.html). The extended code of an error carries
// the primary code in its low byte.
const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;
const SQLITE_NOMEM: i32 = 7;
const SQLITE_IOERR: i32 = 10;
const SQLITE_FULL: i32 = 13;
const SQLITE_CANTOPEN: i32 = 14;
const SQLITE_PROTOCOL: i32 = 15;
const SQLITE_NOTADB: i32 = 26;

/// Extended result code of a PRIMARY KEY violation.
pub(crate) const SQLITE_CONSTRAINT_PRIMARYKEY: i32 = 1555;

/// Extended result code of a UNIQUE index violation.
pub(crate) const SQLITE_CONSTRAINT_UNIQUE: i32 = 2067;

/// What went wrong inside the adapter; always wrapped in a [`StoreError`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum SqliteStoreError {
    /// The storage URL does not use the `sqlite:` scheme.
    #[error("not an SQLite storage URL: expected sqlite://path/to/file.db or sqlite:path/to/file.db")]
    NotSqliteUrl,
    /// The URL names an in-memory database, which this store does not support.
    #[error("in-memory SQLite databases are not supported: give a database file path")]
    InMemory,
    /// The URL has no file path.
    #[error("the SQLite storage URL names no database file")]
    MissingPath,
    /// The URL carries query parameters.
    #[error("query parameters in the SQLite storage URL are not supported: use the store options instead")]
    Parameters,
    /// `sqlx` could not interpret the URL.
    #[error("invalid SQLite storage URL")]
    InvalidUrl(#[source] sqlx::Error),
    /// The database file's directory could not be created.
    #[error("cannot create the directory of the database file")]
    CreateDirectory(#[source] std::io::Error),
    /// The file exists but is not an SQLite database.
    #[error("the database file is not an SQLite database (or it is encrypted)")]
    NotADatabase(#[source] sqlx::Error),
    /// Applying the schema migrations failed for a reason other than the database itself.
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
    /// A backup would overwrite an existing file.
    #[error("the backup file {} exists: choose a new file name", .0.display())]
    BackupExists(std::path::PathBuf),
    /// A backup file could not be written, synced or moved into place.
    #[error("cannot write the backup file {}", .path.display())]
    BackupFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A backup path that SQLite cannot be given (not UTF-8).
    #[error("the backup path {} is not valid UTF-8", .0.display())]
    BackupPath(std::path::PathBuf),
    /// The `person_ref` counter row is missing (the schema was tampered with).
    #[error("the person_ref counter is missing")]
    MissingCounter,
}

impl From<SqliteStoreError> for StoreError {
    fn from(error: SqliteStoreError) -> Self {
        let unavailable = match &error {
            SqliteStoreError::Operation { source, .. } => is_transient(source),
            SqliteStoreError::CreateDirectory(_) => true,
            SqliteStoreError::Migrate(sqlx::migrate::MigrateError::Execute(source)) => is_transient(source),
            _ => false,
        };
        if unavailable { StoreError::Unavailable(Box::new(error)) } else { StoreError::Unexpected(Box::new(error)) }
    }
}

/// Wraps a failure of the statement named `operation` as a [`StoreError`].
pub(crate) fn failed(operation: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| SqliteStoreError::Operation { operation, source }.into()
}

/// SQLite's extended result code of a database error, if it is one.
pub(crate) fn sqlite_code(error: &sqlx::Error) -> Option<i32> {
    match error {
        sqlx::Error::Database(db) => db.code()?.parse().ok(),
        _ => None,
    }
}

/// True when `error` says the file is not an SQLite database.
pub(crate) fn is_not_a_database(error: &sqlx::Error) -> bool {
    sqlite_code(error).is_some_and(|code| code & 0xff == SQLITE_NOTADB)
}

/// True for failures that retrying later may cure: pool exhaustion, I/O, a busy or locked database, a full disk.
fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(_) => sqlite_code(error).is_some_and(|code| {
            matches!(
                code & 0xff,
                SQLITE_BUSY
                    | SQLITE_LOCKED
                    | SQLITE_NOMEM
                    | SQLITE_IOERR
                    | SQLITE_FULL
                    | SQLITE_CANTOPEN
                    | SQLITE_PROTOCOL
            )
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
        for source in
            [sqlx::Error::PoolTimedOut, sqlx::Error::PoolClosed, sqlx::Error::Io(std::io::Error::other("disk gone"))]
        {
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
