//! The PostgreSQL store of the Person API: [`PostgresStore`], an implementation of every storage port
//! ([`person_core::ports::Store`]) on one PostgreSQL database that any number of API processes share, chosen
//! with a `postgres://user@host:port/database` storage URL (SPEC §10).
//!
//! # Concurrency design
//!
//! Every write is one READ COMMITTED transaction on a pooled connection; correctness across processes comes from
//! the database, never from in-process locks:
//!
//! * **Compare-and-set.** An update is `UPDATE persons … WHERE id = $id AND version_number = $expected`. A
//!   concurrent writer of the same row waits for the first to commit and then re-checks the condition on the new
//!   row version, so of N writers expecting the same version exactly one matches a row.
//! * **personRef** comes from the sequence `persons_person_ref_seq`: never the same number twice. A create that
//!   fails after `nextval` leaves a gap (numbers are unique and increasing, not dense).
//! * **Duplicate prevention.** A write that sets a dedup key first takes a transaction-scoped advisory lock on
//!   that key (`pg_advisory_xact_lock`), so writers of the same key queue until the holder commits and the dedup
//!   check that follows is exact; the partial unique index `persons_dedup_key_key` is the backstop, and a
//!   violation of it is mapped by constraint name.
//! * **Cross-references.** `person_references` (primary key `(system, reference_id)`) holds the references of
//!   live persons. A write claims its person's references with `INSERT … ON CONFLICT ON CONSTRAINT
//!   person_references_pkey DO NOTHING`: a claim racing another writer of the same reference waits for that
//!   transaction to end, so of concurrent claims exactly one inserts its row; a claim that inserts fewer rows
//!   than it has references reads the holder (a new statement, which sees the winner's commit) and is refused
//!   with `ReferenceTaken` naming it.
//! * **The event feed.** Each event takes its position from the `event_position` counter row as the last
//!   statement before COMMIT; the row lock is held until the commit, so positions are allocated and committed in
//!   the same order and a reader can never see a position appear below one it has already read (the outbox
//!   sequence-gap problem). The cost is one short serialisation point per event-writing transaction: the counter
//!   update, the event insert and the commit. `docs/storage.md` explains the choice.
//! * **Lock order.** Dedup advisory lock, then person rows (a merge locks its two persons in id order), then
//!   reference rows (claimed in (system, id) order) and documents, then the feed counter: every transaction takes
//!   locks in this order, so writers never deadlock on the dedup key, the persons or the feed. (A write releases
//!   its person's reference rows before claiming them again, so two writes each claiming, at the same instant, a
//!   reference the other's person holds can deadlock; PostgreSQL then aborts one, which fails as unavailable, and
//!   the other is refused with `ReferenceTaken` as usual.)
//!
//! # Atomic writes
//!
//! A create is one transaction: check the id, idempotency key and dedup key, allocate the `personRef`, insert the
//! person, its search keys, its cross-references, its history entry, its idempotency record, its audit entry and
//! its event. An update is the compare-and-set, then the search keys, cross-references, history entry, audit entry
//! and event. A document write is a conditional insert, update or delete on the document's version, the equality
//! search keys and the audit entry. A merge is one transaction over both persons and the documents it moves. A
//! failure rolls everything back.
//! Races that slip past a check surface as constraint violations, which are mapped by constraint name
//! (`persons_pkey` → duplicate id, `idempotency_pkey` → idempotency key taken, `persons_dedup_key_key` →
//! duplicate person), never by message text.
//!
//! # Reporting and the event relay
//!
//! Report pages read `persons` in id order by keyset (`id > after`) on the primary key, or from
//! `persons_report_idx` when `modifiedSince` selects few persons; report counts read only columns that every person
//! write keeps beside the document (`tenure_count`, `reference_count`, `state`, `processing_restricted`), which
//! that index covers. The relay's lease and position are one `relays` row per relay, and every relay method is one
//! conditional statement on its primary key (see `relay`).
//!
//! # Query visibility
//!
//! Every statement the store runs is a named constant of [`queries`] and runs through the [`QueryRecorder`] of
//! [`PostgresOptions::queries`], which reports its name, duration, outcome and row count (rows fetched or
//! affected); [`queries::CATALOGUE`] lists them all ([`person_core::ports::QueryCatalogue`]). `transaction.begin`
//! includes the wait for a pooled connection; `schema.migrate` is the whole migrator run.
//!
//! # Schema
//!
//! The schema lives in `migrations/` (embedded in the binary) and is applied on [`PostgresStore::connect`] and
//! by [`PostgresStore::migrate`] (sqlx serialises concurrent migrators with an advisory lock, so several
//! processes may start at once). The storage URL's optional `schema` parameter (`…/db?schema=person_api`) puts the
//! tables in their own schema, created when missing. Driver types never leave this crate: every failure is a
//! [`person_core::StoreError`].

mod documents;
mod error;
mod import;
mod merge;
pub mod options;
pub mod queries;
mod recorded;
mod references;
mod relay;
mod reporting;
mod repository;
mod rows;
#[cfg(feature = "testing")]
pub mod testing;

use std::fmt;
use std::str::FromStr;

use person_core::ports::{QueryCatalogue, StoreError};
use person_core::storage::{NamedQuery, QueryRecorder};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

pub use options::PostgresOptions;

use crate::error::{PostgresStoreError, failed, is_schema_creation_race};

/// The schema migrations, embedded at build time.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The application name every connection reports (`pg_stat_activity.application_name`), unless the URL sets one.
pub const APPLICATION_NAME: &str = "person-api";

/// The PostgreSQL store; see the crate documentation for its design.
///
/// Cheap to clone: clones share the same pool and report to the same [`QueryRecorder`].
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    schema: Option<String>,
    queries: QueryRecorder,
}

impl PostgresStore {
    /// Connects to the database named by `url`, creates the URL's `schema` when it is missing, applies the schema
    /// migrations, and returns a store ready to serve.
    ///
    /// `url` is a libpq-style URL, `postgres://user:password@host:port/database?sslmode=require&schema=name`
    /// (`postgresql://` too); every parameter sqlx understands is honoured, and `schema` (1 to 63 of `a-z`,
    /// `0-9`, `_`) is this store's own.
    ///
    /// # Errors
    /// [`StoreError::Unexpected`] for a URL that is not a usable PostgreSQL URL or a schema that cannot be
    /// migrated (e.g. written by a newer version); [`StoreError::Unavailable`] when the server cannot be reached.
    pub async fn connect(url: &str, options: PostgresOptions) -> Result<Self, StoreError> {
        let (connect, schema) = connect_options(url)?;
        let mut session = vec![
            ("statement_timeout", millis(options.statement_timeout)),
            ("lock_timeout", millis(options.lock_timeout)),
            ("idle_in_transaction_session_timeout", millis(options.idle_in_transaction_timeout)),
        ];
        if let Some(schema) = &schema {
            session.push(("search_path", schema.clone()));
        }
        let connect = connect.options(session);
        // One direct connection first: the pool retries failed connects until its acquire timeout and then
        // reports only "timed out", while this reports why (refused, unknown host, authentication, TLS).
        let probe = connect.connect().await.map_err(failed("store.connect"))?;
        if let Err(error) = probe.close().await {
            tracing::debug!(error = &error as &dyn std::error::Error, "closing the first connection failed");
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .min_connections(options.min_connections.min(options.max_connections.max(1)))
            .acquire_timeout(options.acquire_timeout)
            .idle_timeout(options.idle_timeout)
            .max_lifetime(options.max_lifetime)
            .connect_with(connect)
            .await
            .map_err(failed("store.connect"))?;
        let store = Self { pool, schema, queries: options.queries };
        store.migrate().await?;
        tracing::info!(
            schema = store.schema.as_deref().unwrap_or("(search_path)"),
            max_connections = options.max_connections.max(1),
            "postgres store connected"
        );
        Ok(store)
    }

    /// Creates the URL's schema when it is missing and applies any schema migration not yet applied (for the
    /// `migrate` sub-command; [`Self::connect`] already does this). Safe to run from several processes at once.
    ///
    /// # Errors
    /// [`StoreError::Unexpected`] when a migration fails or the database has a migration this build does not
    /// know; [`StoreError::Unavailable`] when the database cannot be reached.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        if let Some(schema) = &self.schema {
            // The name was validated as a plain identifier; it cannot be bound as a parameter.
            let statement = format!("{} {schema}", queries::CREATE_SCHEMA.sql);
            let created = sqlx::raw_sql(sqlx::AssertSqlSafe(statement)).execute(&self.pool);
            match self.queries.run(&queries::CREATE_SCHEMA, created).await {
                Ok(_) => {}
                Err(error) if is_schema_creation_race(&error) => {}
                Err(error) => return Err(failed(queries::CREATE_SCHEMA.name)(error)),
            }
        }
        self.queries
            .run(&queries::MIGRATE, MIGRATOR.run(&self.pool))
            .await
            .map_err(|error| PostgresStoreError::Migrate(error).into())
    }

    /// The schema the tables live in, when the URL named one.
    #[must_use]
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// Closes every connection, waiting for operations in progress to finish; later operations fail as
    /// [`StoreError::Unavailable`].
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the URL: it may hold a password.
        f.debug_struct("PostgresStore").field("schema", &self.schema).finish_non_exhaustive()
    }
}

impl QueryCatalogue for PostgresStore {
    fn store_kind(&self) -> &'static str {
        "postgres"
    }

    fn statements(&self) -> &'static [NamedQuery] {
        queries::CATALOGUE
    }
}

fn millis(duration: std::time::Duration) -> String {
    duration.as_millis().to_string()
}

/// The connect options and schema named by a storage URL.
fn connect_options(url: &str) -> Result<(PgConnectOptions, Option<String>), StoreError> {
    let scheme_ok = ["postgres://", "postgresql://"]
        .iter()
        .any(|scheme| url.get(..scheme.len()).is_some_and(|head| head.eq_ignore_ascii_case(scheme)));
    if !scheme_ok {
        return Err(PostgresStoreError::NotPostgresUrl.into());
    }
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut schema = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        match pair.split_once('=') {
            Some(("schema", value)) => schema = Some(valid_schema(value)?),
            _ => kept.push(pair),
        }
    }
    let rebuilt = if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) };
    let mut options = PgConnectOptions::from_str(&rebuilt).map_err(PostgresStoreError::InvalidUrl)?;
    if options.get_application_name().is_none() {
        options = options.application_name(APPLICATION_NAME);
    }
    Ok((options, schema))
}

/// A schema name safe to put into DDL unquoted: a plain lower-case identifier.
fn valid_schema(name: &str) -> Result<String, PostgresStoreError> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if first_ok && rest_ok && name.len() <= 63 { Ok(name.to_owned()) } else { Err(PostgresStoreError::InvalidSchema) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_parameter_is_taken_out_and_the_rest_kept() {
        let (options, schema) =
            connect_options("postgres://u@db.example:5433/person?schema=person_api&sslmode=disable").unwrap();
        assert_eq!(schema.as_deref(), Some("person_api"));
        assert_eq!(options.get_port(), 5433);
        assert_eq!(options.get_database(), Some("person"));
        assert_eq!(options.get_application_name(), Some(APPLICATION_NAME));
        let (options, schema) = connect_options("postgresql://u@h/db?application_name=mine").unwrap();
        assert_eq!(schema, None);
        assert_eq!(options.get_application_name(), Some("mine"));
    }

    #[test]
    fn unusable_urls_and_schema_names_are_refused() {
        for url in ["sqlite://x.db", "postgres:/nohost", "mysql://h/db"] {
            if let Ok((_, _)) = connect_options(url) {
                assert!(url.starts_with("postgres:/"), "{url} should be refused");
            }
        }
        for bad in ["", "Person", "1abc", "a-b", "a;drop table persons", "a\"b"] {
            let url = format!("postgres://u@h/db?schema={bad}");
            assert!(matches!(connect_options(&url), Err(StoreError::Unexpected(_))), "{bad}");
        }
    }
}
