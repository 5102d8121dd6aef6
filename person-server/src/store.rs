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
