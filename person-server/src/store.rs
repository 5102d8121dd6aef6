//! Opening a store from its URL: the one place that knows which adapter serves which scheme.

use std::sync::Arc;

use person_core::ports::Store;
use person_sqlite::{SqliteOptions, SqliteStore};

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenStoreError {
    /// The URL's scheme is not one this build serves.
    #[error(
        "unsupported store URL scheme `{0}`: expected sqlite://path (postgres:// and dynamodb:// come with later releases)"
    )]
    UnsupportedScheme(String),
    /// The adapter failed to open or migrate the store.
    #[error("cannot open the store")]
    Open(#[source] person_core::StoreError),
}

fn scheme(url: &str) -> &str {
    url.split_once(':').map_or(url, |(scheme, _)| scheme)
}

/// Opens (creating and migrating when needed) the store named by `url`.
///
/// # Errors
/// [`OpenStoreError`] for an unknown scheme or a store that cannot be opened.
pub async fn open_repository(url: &str) -> Result<Arc<dyn Store>, OpenStoreError> {
    match scheme(url) {
        "sqlite" => {
            let store = SqliteStore::open(url, SqliteOptions::default()).await.map_err(OpenStoreError::Open)?;
            Ok(Arc::new(store))
        }
        other => Err(OpenStoreError::UnsupportedScheme(other.to_owned())),
    }
}

/// Applies the schema migrations of the store named by `url` and returns.
///
/// # Errors
/// [`OpenStoreError`] as for [`open_repository`].
pub async fn migrate(url: &str) -> Result<(), OpenStoreError> {
    match scheme(url) {
        "sqlite" => {
            // Opening applies the migrations; closing checkpoints the WAL so the file is complete on its own.
            let store = SqliteStore::open(url, SqliteOptions::default()).await.map_err(OpenStoreError::Open)?;
            store.close().await;
            Ok(())
        }
        other => Err(OpenStoreError::UnsupportedScheme(other.to_owned())),
    }
}
