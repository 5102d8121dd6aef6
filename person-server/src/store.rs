//! Opening a store from its URL: the one place that knows which adapter serves which scheme.

use std::sync::Arc;

use person_core::ports::Store;
use person_core::storage::QueryRecorder;
use person_dynamodb::{DynamoDbOptions, DynamoDbStore};
use person_postgres::{PostgresOptions, PostgresStore};
use person_sqlite::{SqliteOptions, SqliteStore};

/// Settings of the storage backends, beyond their URL (`[postgres]` in the config file).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreOptions {
    /// Pool and session settings of a `postgres://` store.
    pub postgres: PostgresOptions,
    /// Timeouts and retries of a `dynamodb://` store.
    pub dynamodb: DynamoDbOptions,
    /// The page cache of a `sqlite://` store's writer connection, in MiB; `None`: the store's default
    /// ([`person_sqlite::DEFAULT_WRITER_CACHE_MIB`]). `person-api import` asks for more.
    pub sqlite_writer_cache_mib: Option<u32>,
}

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenStoreError {
    /// The URL's scheme is not one this build serves.
    #[error(
        "unsupported store URL scheme `{0}`: expected sqlite://path, postgres://user@host:port/database or \
         dynamodb://table?region=…"
    )]
    UnsupportedScheme(String),
    /// The adapter failed to open or migrate the store.
    #[error("cannot open the store")]
    Open(#[source] person_core::StoreError),
}

/// The backends this build serves, by URL scheme.
enum Backend {
    Sqlite,
    Postgres,
    DynamoDb,
}

fn backend(url: &str) -> Result<Backend, OpenStoreError> {
    let scheme = url.split_once(':').map_or(url, |(scheme, _)| scheme);
    match scheme.to_ascii_lowercase().as_str() {
        "sqlite" => Ok(Backend::Sqlite),
        "postgres" | "postgresql" => Ok(Backend::Postgres),
        "dynamodb" => Ok(Backend::DynamoDb),
        _ => Err(OpenStoreError::UnsupportedScheme(scheme.to_owned())),
    }
}

/// A `--batch` larger than the store takes.
#[derive(Debug, thiserror::Error)]
#[error("--batch {requested} is too large for this store: at most {largest} records per write")]
pub struct BatchTooLarge {
    /// The batch asked for.
    pub requested: usize,
    /// The store's largest.
    pub largest: usize,
}

/// Records per store write of `person-api import` into the store named by `url`: `requested`, or when `None` the
/// store's default, [`crate::import::SQL_DEFAULT_BATCH`] on SQLite and PostgreSQL (each commit rewrites the index
/// pages its batch touched, so fewer, larger batches write less: measured in docs/import.md) and
/// [`crate::import::DEFAULT_BATCH`] on DynamoDB.
///
/// # Errors
/// [`BatchTooLarge`] above [`crate::import::MAX_DYNAMODB_BATCH`] on DynamoDB (a batch's audit entry is stored as
/// items that grow with the batch) or [`crate::import::MAX_BATCH`] elsewhere.
pub fn import_batch(url: &str, requested: Option<usize>) -> Result<usize, BatchTooLarge> {
    let backend = backend(url).ok();
    let largest = match backend {
        Some(Backend::DynamoDb) => crate::import::MAX_DYNAMODB_BATCH,
        _ => crate::import::MAX_BATCH,
    };
    match requested {
        None if matches!(backend, Some(Backend::Sqlite | Backend::Postgres)) => Ok(crate::import::SQL_DEFAULT_BATCH),
        None => Ok(crate::import::DEFAULT_BATCH),
        Some(requested) if requested > largest => Err(BatchTooLarge { requested, largest }),
        Some(requested) => Ok(requested),
    }
}

/// Opens (creating and migrating when needed) the store named by `url`, reporting every statement it runs to
/// `queries` (query visibility: `GET /admin/queries` and the per-request log line).
///
/// # Errors
/// [`OpenStoreError`] for an unknown scheme or a store that cannot be opened.
pub async fn open_repository(
    url: &str,
    options: &StoreOptions,
    queries: QueryRecorder,
) -> Result<Arc<dyn Store>, OpenStoreError> {
    match backend(url)? {
        Backend::Sqlite => {
            let defaults = SqliteOptions::default();
            let writer_cache_mib = options.sqlite_writer_cache_mib.unwrap_or(defaults.writer_cache_mib);
            let options = SqliteOptions { queries, writer_cache_mib, ..defaults };
            let store = SqliteStore::open(url, options).await.map_err(OpenStoreError::Open)?;
            Ok(Arc::new(store))
        }
        Backend::Postgres => {
            let options = PostgresOptions { queries, ..options.postgres.clone() };
            let store = PostgresStore::connect(url, options).await.map_err(OpenStoreError::Open)?;
            Ok(Arc::new(store))
        }
        Backend::DynamoDb => {
            let options = DynamoDbOptions { queries, ..options.dynamodb.clone() };
            let store = DynamoDbStore::connect(url, options).await.map_err(OpenStoreError::Open)?;
            Ok(Arc::new(store))
        }
    }
}

/// Why `person-api backup` could not write its copy.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The store is not SQLite: its server has its own backups.
    #[error(
        "person-api backup copies an SQLite store; back up PostgreSQL with pg_dump or continuous archiving, and \
         DynamoDB with point-in-time recovery (docs/reliability.md)"
    )]
    NotSqlite,
    /// The store could not be opened.
    #[error(transparent)]
    Open(#[from] OpenStoreError),
    /// The copy could not be written.
    #[error("the backup failed")]
    Failed(#[source] person_core::StoreError),
}

/// Whether `url` names an SQLite store (the one `person-api backup` copies).
#[must_use]
pub fn is_sqlite(url: &str) -> bool {
    matches!(backend(url), Ok(Backend::Sqlite))
}

/// Writes a consistent copy of the SQLite store named by `url` to the new file `output`, while servers using the
/// store keep serving (see [`SqliteStore::backup_to`]); returns its size in bytes.
///
/// # Errors
/// [`BackupError`] for a store that is not SQLite, cannot be opened, or cannot be copied to `output` (which must
/// not exist).
pub async fn backup(url: &str, output: &std::path::Path) -> Result<u64, BackupError> {
    if !is_sqlite(url) {
        return Err(BackupError::NotSqlite);
    }
    let store = SqliteStore::open(url, SqliteOptions::default()).await.map_err(OpenStoreError::Open)?;
    let copied = store.backup_to(output).await.map_err(BackupError::Failed);
    store.close().await;
    copied
}

/// Applies the schema migrations of the store named by `url` and returns.
///
/// # Errors
/// [`OpenStoreError`] as for [`open_repository`].
pub async fn migrate(url: &str, options: &StoreOptions) -> Result<(), OpenStoreError> {
    match backend(url)? {
        Backend::Sqlite => {
            // Opening applies the migrations; closing checkpoints the WAL so the file is complete on its own.
            let store = SqliteStore::open(url, SqliteOptions::default()).await.map_err(OpenStoreError::Open)?;
            store.close().await;
        }
        Backend::Postgres => {
            // Connecting creates the schema and applies the migrations (serialised across processes by sqlx).
            let store = PostgresStore::connect(url, options.postgres.clone()).await.map_err(OpenStoreError::Open)?;
            store.close().await;
        }
        Backend::DynamoDb => {
            // Connecting creates the table when it is missing and waits until it is active.
            let store = DynamoDbStore::connect(url, options.dynamodb.clone()).await.map_err(OpenStoreError::Open)?;
            store.close().await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::import_batch;
    use crate::import::{DEFAULT_BATCH, MAX_BATCH, MAX_DYNAMODB_BATCH, SQL_DEFAULT_BATCH};

    #[test]
    fn an_import_batch_defaults_per_store_and_is_refused_above_the_stores_largest() {
        assert_eq!(import_batch("sqlite:///tmp/p.db", None).unwrap(), SQL_DEFAULT_BATCH);
        assert_eq!(import_batch("postgres://u@h:5432/d", None).unwrap(), SQL_DEFAULT_BATCH);
        assert_eq!(import_batch("dynamodb://persons?region=eu-west-2", None).unwrap(), DEFAULT_BATCH);
        assert_eq!(import_batch("sqlite:///tmp/p.db", Some(MAX_BATCH)).unwrap(), MAX_BATCH);
        assert_eq!(import_batch("dynamodb://persons", Some(MAX_DYNAMODB_BATCH)).unwrap(), MAX_DYNAMODB_BATCH);
        let refused = import_batch("dynamodb://persons", Some(MAX_DYNAMODB_BATCH + 1)).unwrap_err();
        assert_eq!(refused.to_string(), "--batch 10001 is too large for this store: at most 10000 records per write");
        assert!(import_batch("postgres://u@h/d", Some(MAX_BATCH + 1)).is_err());
    }
}
