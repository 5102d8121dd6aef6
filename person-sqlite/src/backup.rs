//! Online backup of an SQLite store ([`SqliteStore::backup_to`]): `VACUUM INTO` a new file on its own connection.
//!
//! `VACUUM INTO` reads the database inside one read transaction, so the copy is the database as of one instant:
//! every transaction committed before it started, none after. In WAL mode a reader blocks no writer, so the server
//! keeps serving reads and writes meanwhile; the copy is also compacted (no free pages) and needs no WAL file.
//! The copy is written to `<target>.partial`, synced, then renamed to `target` (and the directory synced), so a
//! file with the target's name is always a complete backup.

use std::path::{Path, PathBuf};

use person_core::ports::StoreError;
use sqlx::Connection as _;
use sqlx::sqlite::SqliteConnectOptions;

use crate::SqliteStore;
use crate::error::{SqliteStoreError, failed};
use crate::execution::counted;
use crate::queries;

/// `<target>.partial`: where the copy is written before it is complete.
fn partial_path(target: &Path) -> PathBuf {
    let mut name = target.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

fn file_error(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| SqliteStoreError::BackupFile { path: path.to_owned(), source }.into()
}

/// Syncs `path` (a file, or a directory after a rename in it) to stable storage.
fn sync(path: &Path) -> Result<(), StoreError> {
    std::fs::File::open(path).and_then(|f| f.sync_all()).map_err(file_error(path))
}

impl SqliteStore {
    /// Writes a consistent copy of the whole database to `target` while the store keeps serving, and returns its
    /// size in bytes. The copy is an SQLite database file a store opens as it is: to restore, stop the server and
    /// put the copy in place of the database file (removing its `-wal` and `-shm` files), or point
    /// `PERSON_API_STORE` at it. See docs/reliability.md.
    ///
    /// # Errors
    /// [`StoreError::Unexpected`] when `target` exists (a backup never overwrites a file), its path is not UTF-8, or
    /// the copy cannot be written, synced or renamed; [`StoreError::Unavailable`] when the database cannot be read.
    pub async fn backup_to(&self, target: &Path) -> Result<u64, StoreError> {
        if target.exists() {
            return Err(SqliteStoreError::BackupExists(target.to_owned()).into());
        }
        let partial = partial_path(target);
        let partial_text = partial.to_str().ok_or_else(|| SqliteStoreError::BackupPath(target.to_owned()))?.to_owned();
        // Left by an interrupted backup: never a complete one (that one was renamed).
        match std::fs::remove_file(&partial) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(file_error(&partial)(e)),
            _ => {}
        }
        let backup = &queries::BACKUP_VACUUM_INTO;
        // Its own connection: the readers are `query_only`, and the writer must stay free for writes meanwhile.
        let options = SqliteConnectOptions::new().filename(&self.path).busy_timeout(std::time::Duration::from_secs(5));
        let mut conn = sqlx::SqliteConnection::connect_with(&options).await.map_err(failed(backup.name))?;
        let statement = sqlx::query(backup.sql).bind(partial_text).execute(&mut conn);
        let copied = counted(&self.recorder, backup, statement).await.map_err(failed(backup.name));
        if let Err(e) = conn.close().await {
            tracing::warn!(error = &e as &dyn std::error::Error, "closing the backup connection failed");
        }
        if let Err(e) = copied {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
        sync(&partial)?;
        std::fs::rename(&partial, target).map_err(file_error(target))?;
        if let Some(directory) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
            sync(directory)?;
        }
        let size = std::fs::metadata(target).map_err(file_error(target))?.len();
        tracing::info!(bytes = size, "sqlite backup written");
        Ok(size)
    }
}
