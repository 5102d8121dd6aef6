//! The embedded default store of the Person API: [`SqliteStore`], an implementation of every storage port
//! ([`person_core::ports::Store`]: [`person_core::PersonRepository`], [`person_core::DocumentRepository`],
//! [`person_core::AuditLog`], [`person_core::ports::ReportingRepository`], [`person_core::ports::RelayRepository`],
//! [`person_core::ports::ImportRepository`] and [`person_core::ports::QueryCatalogue`]) on one SQLite database
//! file (sqlx, SQLite bundled), chosen with a `sqlite://path/to/file.db` storage URL (SPEC §10).
//!
//! # Concurrency design
//!
//! SQLite allows one writer at a time per database file. Instead of letting many connections race for the
//! write lock (and fail with `SQLITE_BUSY`, or spin in the busy handler), the store holds **one writer
//! connection** in a pool of exactly one: write transactions queue for it inside the process, in FIFO order,
//! bounded by [`SqliteOptions::acquire_timeout`]. Every write transaction starts with `BEGIN IMMEDIATE`, which
//! takes the write lock up front, so the checks a transaction makes (id free, idempotency key free, expected
//! version) stay true until it commits, even against another process using the same file; such a process is
//! the only thing [`SqliteOptions::busy_timeout`] waits for.
//!
//! Reads use a separate **pool of reader connections** ([`SqliteOptions::readers`], `PRAGMA query_only`).
//! The database is in WAL mode, so readers never block the writer nor each other, and each read sees the last
//! committed state.
//!
//! Because writes are serialised, feed positions (`events.position`, `AUTOINCREMENT`) are allocated in commit
//! order: a reader following the feed can never see a position appear below one it has already read.
//!
//! # Atomic writes
//!
//! A create is one transaction: check the id, idempotency key and dedup key, allocate the `personRef`
//! (`UPDATE counters … RETURNING value`), then insert the person, its search keys, its cross-references, its event
//! (the outbox), its history entry, its idempotency record and its audit entry. An update is one transaction: a
//! compare-and-set `UPDATE … WHERE id = ? AND version_number = ?` (with the dedup key), then the search keys,
//! cross-references, event, history entry and audit entry. A document write is one transaction: a conditional
//! insert, update or delete on the document's version, the equality search keys, then its audit entry. A merge is
//! one transaction over both persons and the documents it moves. A failure rolls everything back, including the
//! `personRef` increment.
//!
//! # Search keys and duplicate prevention
//!
//! Blocking keys live in `search_keys` (primary key `(key, person_id, source)`), so candidate retrieval is one
//! indexed statement whose cost depends on the persons having the keys, not on the table. The dedup key is a
//! column of `persons` under a partial UNIQUE index over live persons: with the write lock held by `BEGIN
//! IMMEDIATE`, the check before the insert is exact, and the index is the backstop. Keys are computed by
//! `person-core`; persons stored before migration 0003 get theirs computed in Rust when the store opens (and in
//! [`SqliteStore::migrate`]), see [`SqliteStore::recompute_search_keys`].
//!
//! The audit log is append-only in the database itself: triggers refuse any UPDATE or DELETE of its rows.
//!
//! # Cross-references
//!
//! The references of live persons live in `person_references` (primary key `(system, reference_id)`, the
//! uniqueness rule and the look-up of [`person_core::PersonRepository::find_by_reference`]). Every write of a
//! person releases its rows and inserts its current ones (none unless it is live); under the write lock the
//! insert's PRIMARY KEY violation is exact, and is reported as `ReferenceTaken` with the holder read in the same
//! transaction. Migration 0004 indexes the references already in the stored documents.
//!
//! # Reporting and the event relay
//!
//! Reporting pages are one statement on a reader connection, in ascending id order (the byte order of the
//! canonical lower-case id text, which is the UUIDs' byte order): a range read of `persons_report_idx (id,
//! last_modified)` from the keyset position, never the whole table in memory. Counts sum columns every person
//! write keeps with its document (`tenure_count`, `reference_count`, `state`, `processing_restricted`; migration
//! 0005 backfills them) in an index-only read. Each relay's lease and feed position is one `relay_leases` row,
//! changed by one conditional statement per call in a write transaction, so concurrent acquisitions have exactly
//! one winner.
//!
//! # Bulk import
//!
//! An import batch is one write transaction running a fixed set of statements whatever its size: the batch's
//! ids, `personRef`s, dedup keys and references are each bound as one JSON array (`json_each`) and looked up in one
//! indexed statement each, the records are decided in Rust in batch order, and the persons, search keys and
//! references are each inserted by one `INSERT … SELECT`, with one audit entry. No event or history entry is
//! written.
//!
//! # Query visibility
//!
//! Every statement runs through the [`person_core::storage::QueryRecorder`] of [`SqliteOptions::queries`], under
//! its name in [`queries::CATALOGUE`] (what [`person_core::ports::QueryCatalogue::statements`] lists), with the
//! rows it returned or changed.
//!
//! # Durability
//!
//! `PRAGMA synchronous` defaults to `FULL` ([`Synchronous`]): in WAL mode a commit is synced to disk before
//! it is answered, so a write answered 2xx survives a killed process and a power loss.
//!
//! The schema lives in `migrations/` (embedded in the binary) and is applied on [`SqliteStore::open`] and by
//! [`SqliteStore::migrate`]. `docs/storage.md` describes the tables. Driver types never leave this crate:
//! every failure is a [`person_core::StoreError`].

mod audit;
mod backup;
mod documents;
mod error;
mod execution;
mod import;
mod keys;
mod merge;
pub mod options;
pub mod queries;
mod references;
mod relay;
mod reporting;
mod repository;
mod rows;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use person_core::ports::{QueryCatalogue, StoreError};
use person_core::storage::{NamedQuery, QueryRecorder};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

pub use options::{DEFAULT_WRITER_CACHE_MIB, IMPORT_WRITER_CACHE_MIB, InvalidSynchronous, SqliteOptions, Synchronous};

use crate::error::{SqliteStoreError, failed, is_not_a_database};

/// The schema migrations, embedded at build time.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The embedded SQLite store; see the crate documentation for its design.
///
/// Cheap to clone: clones share the same connections.
#[derive(Clone)]
pub struct SqliteStore {
    path: PathBuf,
    /// Exactly one connection, used only for write transactions and migrations.
    writer: SqlitePool,
    /// Query-only connections for every read.
    readers: SqlitePool,
    /// Where every statement execution is reported ([`SqliteOptions::queries`]).
    recorder: QueryRecorder,
    /// Audit entries of reads waiting to be written together (group commit, see `audit`).
    audit_queue: std::sync::Arc<audit::AuditQueue>,
}

impl SqliteStore {
    /// Opens (creating if missing) the database file named by `url`, applies the schema migrations, and
    /// returns a store ready to serve.
    ///
    /// `url` is `sqlite://path/to/file.db` or `sqlite:path/to/file.db`; a relative path is relative to the
    /// working directory, and `sqlite:///abs/path.db` (three slashes) is absolute. Missing parent directories
    /// are created. In-memory databases and URL query parameters are refused: use [`SqliteOptions`].
    ///
    /// # Errors
    /// [`StoreError::Unexpected`] for a URL that is not a usable SQLite file URL, a file that is not an SQLite
    /// database, or a schema that cannot be migrated (e.g. written by a newer version);
    /// [`StoreError::Unavailable`] when the directory or file cannot be created or opened, or the database
    /// stays locked by another process beyond the busy timeout.
    pub async fn open(url: &str, options: SqliteOptions) -> Result<Self, StoreError> {
        let path = database_path(url)?;
        if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(SqliteStoreError::CreateDirectory)?;
        }
        let synchronous = match options.synchronous {
            Synchronous::Normal => SqliteSynchronous::Normal,
            Synchronous::Full => SqliteSynchronous::Full,
            Synchronous::Extra => SqliteSynchronous::Extra,
        };
        let connection = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .foreign_keys(true)
            .synchronous(synchronous)
            .busy_timeout(options.busy_timeout);
        // WAL is a property of the file: the writer sets it (first, before any reader exists); readers inherit it
        // and must not try to change the journal mode.
        // A larger page cache for the writer (SQLite's default is 2 MiB): a write transaction keeps every page it
        // changes in the cache until it commits, and an import batch of 1,000 persons changes thousands of index
        // pages; with the default cache they are spilled to the WAL mid-transaction and written again (measured:
        // 774 → 1,060 persons/s importing 50,000). Pages are allocated only as they are used, but stay allocated:
        // the server keeps it small (`writer_cache_mib`), the import raises it. In KiB when negative.
        // Statement journals and temporary b-trees in memory, not in temporary files: an `INSERT … SELECT` of a
        // whole import batch keeps a statement journal (to undo just that statement), which in a file cost 16 % of
        // import time at 350,000 persons (measured: 1,265–1,339 → 1,522–1,582 persons/s at 200,000).
        let writer_connection = connection
            .clone()
            .journal_mode(SqliteJournalMode::Wal)
            .pragma("cache_size", format!("-{}", u64::from(options.writer_cache_mib.max(1)) * 1024))
            .pragma("temp_store", "MEMORY");
        let reader_connection = connection.pragma("query_only", "ON");

        // Local connections do not go stale like network ones, so they are not pinged before each use, and the
        // writer is kept open for the life of the store (it also keeps the WAL files in place for readers).
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .test_before_acquire(false)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(writer_connection)
            .await
            .map_err(open_failed)?;
        run_migrations(&writer).await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(options.readers.max(1))
            .test_before_acquire(false)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(reader_connection)
            .await
            .map_err(open_failed)?;
        let store = Self { path, writer, readers, recorder: options.queries.clone(), audit_queue: Default::default() };
        store.backfill_search_keys().await?;
        store.warn_of_pending_import_keys().await?;
        tracing::info!(
            path = %store.path.display(),
            readers = options.readers.max(1),
            synchronous = %options.synchronous,
            "sqlite store opened"
        );
        Ok(store)
    }

    /// Applies any schema migration not yet applied (for the `migrate` sub-command), then computes the search
    /// keys of persons stored without them (rows from before migration 0003); a no-op when both are current.
    /// [`Self::open`] already does this.
    ///
    /// # Errors
    /// [`StoreError::Unexpected`] when a migration fails or the database has a migration this build does not
    /// know; [`StoreError::Unavailable`] when the database cannot be reached.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        run_migrations(&self.writer).await?;
        self.backfill_search_keys().await.map(|_| ())
    }

    /// Recomputes the search keys and dedup keys of every person (after an upgrade that changed how keys are
    /// computed); returns how many persons were indexed. Run it while the store is not serving (e.g. from the
    /// `migrate` sub-command): between its batches, dedup keys not yet recomputed do not block duplicates.
    ///
    /// Where stored data holds the same person twice, the first in id order keeps the dedup key and the other is
    /// kept as an allowed duplicate.
    ///
    /// # Errors
    /// [`StoreError`] when the database fails.
    pub async fn recompute_search_keys(&self) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let mark = &queries::MARK_ALL_UNINDEXED;
        let statement = sqlx::query(mark.sql).execute(&mut *tx.conn);
        let marked =
            execution::counted(&tx.recorder, mark, statement).await.map(|_| ()).map_err(error::failed(mark.name));
        repository::finish(tx, marked).await?;
        self.backfill_search_keys().await
    }

    /// Logs a warning when an import stored persons whose search keys are not indexed yet (it was interrupted, or
    /// is running): search does not find them until `person-api import` finishes.
    async fn warn_of_pending_import_keys(&self) -> Result<(), StoreError> {
        let exist = &queries::IMPORT_PENDING_KEYS_EXIST;
        let statement = sqlx::query_scalar::<_, bool>(exist.sql).fetch_one(&self.readers);
        if execution::single(&self.recorder, exist, statement).await.map_err(error::failed(exist.name))? {
            tracing::warn!(
                "an import's search keys are not indexed yet (the import is running, or was interrupted: run the \
                 same `person-api import` again to finish it); search does not find the persons it stored until then"
            );
        }
        Ok(())
    }

    /// The database file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes every connection, waiting for operations in progress to finish; later operations fail as
    /// [`StoreError::Unavailable`]. The writer closes last, so SQLite checkpoints the WAL into the main file.
    pub async fn close(&self) {
        self.readers.close().await;
        self.writer.close().await;
    }
}

impl QueryCatalogue for SqliteStore {
    fn store_kind(&self) -> &'static str {
        "sqlite"
    }

    fn statements(&self) -> &'static [NamedQuery] {
        queries::CATALOGUE
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.path).finish_non_exhaustive()
    }
}

async fn run_migrations(writer: &SqlitePool) -> Result<(), StoreError> {
    MIGRATOR.run(writer).await.map_err(|error| match error {
        sqlx::migrate::MigrateError::Execute(source) if is_not_a_database(&source) => {
            SqliteStoreError::NotADatabase(source).into()
        }
        other => SqliteStoreError::Migrate(other).into(),
    })
}

fn open_failed(error: sqlx::Error) -> StoreError {
    if is_not_a_database(&error) { SqliteStoreError::NotADatabase(error).into() } else { failed("store.open")(error) }
}

/// The database file named by a `sqlite:` URL.
fn database_path(url: &str) -> Result<PathBuf, SqliteStoreError> {
    let rest = strip_scheme(url, "sqlite://")
        .or_else(|| strip_scheme(url, "sqlite:"))
        .ok_or(SqliteStoreError::NotSqliteUrl)?;
    if rest.contains('?') {
        return Err(SqliteStoreError::Parameters);
    }
    if rest == ":memory:" {
        return Err(SqliteStoreError::InMemory);
    }
    if rest.is_empty() {
        return Err(SqliteStoreError::MissingPath);
    }
    // sqlx decodes percent-escapes (`%3F` for `?` in a file name).
    let parsed = SqliteConnectOptions::from_str(&format!("sqlite:{rest}")).map_err(SqliteStoreError::InvalidUrl)?;
    Ok(parsed.get_filename().to_path_buf())
}

fn strip_scheme<'u>(url: &'u str, scheme: &str) -> Option<&'u str> {
    let head = url.get(..scheme.len())?;
    if head.eq_ignore_ascii_case(scheme) { url.get(scheme.len()..) } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_url_forms_name_the_file() {
        assert_eq!(database_path("sqlite://data/person.db").unwrap(), PathBuf::from("data/person.db"));
        assert_eq!(database_path("sqlite:person.db").unwrap(), PathBuf::from("person.db"));
        assert_eq!(database_path("sqlite:///var/lib/person.db").unwrap(), PathBuf::from("/var/lib/person.db"));
        assert_eq!(database_path("SQLite://a%20b.db").unwrap(), PathBuf::from("a b.db"));
    }

    #[test]
    fn unusable_urls_are_refused_with_a_reason() {
        assert!(matches!(database_path("postgres://localhost/person"), Err(SqliteStoreError::NotSqliteUrl)));
        assert!(matches!(database_path("sqlite::memory:"), Err(SqliteStoreError::InMemory)));
        assert!(matches!(database_path("sqlite://"), Err(SqliteStoreError::MissingPath)));
        assert!(matches!(database_path("sqlite://x.db?mode=ro"), Err(SqliteStoreError::Parameters)));
    }
}
