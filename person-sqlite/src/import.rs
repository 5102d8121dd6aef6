//! [`ImportRepository`] for [`SqliteStore`]: bulk loading persons from another system, one `BEGIN IMMEDIATE`
//! transaction per batch.
//!
//! A batch runs a fixed set of statements whatever its size (never one per person): the whole batch's ids (with
//! its merged persons' survivors), `personRef`s, dedup keys and references are each bound as one JSON array,
//! expanded by `json_each`, and looked up in one indexed statement each; the records are then decided in Rust, in
//! batch order, against what is stored and against the records before them, by the rules every store applies
//! ([`person_core::import_plan`]); then the `personRef` sequence is raised and allocated in one statement, and the
//! persons, their search keys and their references are each inserted by one `INSERT … SELECT … FROM json_each(?)`,
//! followed by the batch's audit entry. The write lock is held from the first look-up to the commit, so what the
//! look-ups found stays true; a failing statement rolls the whole batch back.
//!
//! An import writes no event, history entry or idempotency record. This module knows nothing of how records are
//! validated or keyed (the service prepares [`ImportWrite`]s).

use std::collections::BTreeSet;

use async_trait::async_trait;
use person_core::PersonId;
use person_core::audit::AuditEntry;
use person_core::import_plan::{AcceptedImport, ImportHolders, ImportPlan};
use person_core::ports::{ImportOutcome, ImportRepository, ImportWrite, StoreError};
use person_core::reference::{CrossReference, ReferenceId, ReferenceSystem};
use person_core::storage::{out_of_range, to_json};

mod finish;

use crate::SqliteStore;
use crate::audit::insert_audit_rows;
use crate::error::{SqliteStoreError, failed};
use crate::execution::{WriteTx, counted};
use crate::queries;
use crate::repository::finish;
use crate::rows::{AuditColumns, PersonColumns, PersonIdRow};

/// The JSON arrays the look-ups bind, built from the batch before the write lock is taken.
struct Lookups {
    /// Every id of the batch.
    ids: String,
    /// The `personRef`s the batch keeps (`None`: it keeps none).
    person_refs: Option<String>,
    /// The dedup keys of the batch's live persons (`None`: there are none).
    dedup_keys: Option<String>,
    /// The references of the batch's live persons (`None`: there are none).
    references: Option<String>,
}

impl Lookups {
    fn of(batch: &[ImportWrite]) -> Result<Self, StoreError> {
        let ids: Vec<String> = ImportHolders::ids_to_read(batch).iter().map(ToString::to_string).collect();
        Ok(Self {
            ids: to_json(&ids, "import id list")?,
            person_refs: non_empty(&ImportHolders::kept_person_refs(batch), "import personRef list")?,
            dedup_keys: non_empty(&ImportHolders::live_dedup_keys(batch), "import dedup key list")?,
            references: non_empty(&ImportHolders::live_references(batch), "import reference list")?,
        })
    }
}

/// `values` as a JSON array, `None` when there are none (the look-up is then skipped).
fn non_empty<T: serde::Serialize>(values: &[T], what: &'static str) -> Result<Option<String>, StoreError> {
    if values.is_empty() { Ok(None) } else { to_json(values, what).map(Some) }
}

/// A `personRef` read back with the person having it.
#[derive(sqlx::FromRow)]
struct PersonRefRow {
    person_ref: i64,
    id: String,
}

/// A dedup key read back with the live person holding it.
#[derive(sqlx::FromRow)]
struct DedupRow {
    dedup_key: String,
    id: String,
}

/// A reference read back with the live person holding it.
#[derive(sqlx::FromRow)]
struct ReferenceRow {
    system: String,
    reference_id: String,
    id: String,
}

fn parse_id(id: &str) -> Result<PersonId, StoreError> {
    PersonId::parse(id).map_err(|_| out_of_range("person id"))
}

impl ReferenceRow {
    fn reference(&self) -> Result<CrossReference, StoreError> {
        let system = ReferenceSystem::parse(&self.system).map_err(|_| out_of_range("reference system"))?;
        let id = ReferenceId::parse(&self.reference_id).map_err(|_| out_of_range("reference id"))?;
        Ok(CrossReference::new(system, id))
    }
}

/// Reads, in one statement each, which of the batch's ids, `personRef`s, dedup keys and references are held.
async fn read_holders(tx: &mut WriteTx, lookups: &Lookups) -> Result<ImportHolders, StoreError> {
    let mut held = ImportHolders::default();

    let stored = &queries::IMPORT_STORED_IDS;
    let statement = sqlx::query_as::<_, PersonIdRow>(stored.sql).bind(&lookups.ids).fetch_all(&mut *tx.conn);
    for row in counted(&tx.recorder, stored, statement).await.map_err(failed(stored.name))? {
        held.ids.insert(row.into_id()?);
    }

    if let Some(person_refs) = &lookups.person_refs {
        let owners = &queries::IMPORT_PERSON_REF_OWNERS;
        let statement = sqlx::query_as::<_, PersonRefRow>(owners.sql).bind(person_refs).fetch_all(&mut *tx.conn);
        for row in counted(&tx.recorder, owners, statement).await.map_err(failed(owners.name))? {
            held.person_refs.insert(row.person_ref, parse_id(&row.id)?);
        }
    }

    if let Some(dedup_keys) = &lookups.dedup_keys {
        let holders = &queries::IMPORT_DEDUP_HOLDERS;
        let statement = sqlx::query_as::<_, DedupRow>(holders.sql).bind(dedup_keys).fetch_all(&mut *tx.conn);
        for row in counted(&tx.recorder, holders, statement).await.map_err(failed(holders.name))? {
            held.dedup_keys.insert(row.dedup_key, parse_id(&row.id)?);
        }
    }

    if let Some(references) = &lookups.references {
        let holders = &queries::IMPORT_REFERENCE_HOLDERS;
        let statement = sqlx::query_as::<_, ReferenceRow>(holders.sql).bind(references).fetch_all(&mut *tx.conn);
        for row in counted(&tx.recorder, holders, statement).await.map_err(failed(holders.name))? {
            held.references.insert(row.reference()?, parse_id(&row.id)?);
        }
    }
    Ok(held)
}

/// Raises the `personRef` sequence to the batch's largest kept number and gives the next numbers to the accepted
/// persons without one, in batch order.
async fn allocate_person_refs(tx: &mut WriteTx, plan: &mut ImportPlan) -> Result<(), StoreError> {
    if plan.largest_kept <= 0 && plan.to_assign == 0 {
        return Ok(());
    }
    let raise = &queries::IMPORT_RAISE_PERSON_REF;
    let statement = sqlx::query_scalar::<_, i64>(raise.sql)
        .bind(plan.largest_kept)
        .bind(plan.to_assign)
        .fetch_optional(&mut *tx.conn);
    let last = counted(&tx.recorder, raise, statement)
        .await
        .map_err(failed(raise.name))?
        .ok_or(StoreError::from(SqliteStoreError::MissingCounter))?;
    plan.assign_person_refs(last);
    Ok(())
}

/// One `persons` row as bound to `IMPORT_INSERT_PERSONS` (a JSON array per person, in the statement's column
/// order).
type PersonTuple<'a> =
    (&'a str, i64, i64, &'a str, Option<&'a str>, &'a str, &'a str, &'a str, i64, Option<&'a str>, i64, i64);

/// Inserts the accepted persons, their search keys and their references: one statement each.
async fn insert_accepted(tx: &mut WriteTx, accepted: &[AcceptedImport]) -> Result<(), StoreError> {
    let columns: Vec<(PersonColumns, Option<&str>)> = accepted
        .iter()
        .map(|a| PersonColumns::new(&a.person).map(|row| (row, a.dedup_key.as_deref())))
        .collect::<Result<_, _>>()?;
    // In id order, so the id indexes are written in order too.
    let mut rows: Vec<PersonTuple<'_>> = columns
        .iter()
        .map(|(row, dedup_key)| {
            (
                row.id.as_str(),
                row.person_ref,
                row.version_number,
                row.state,
                row.merged_into.as_deref(),
                row.document.as_str(),
                row.created_at.as_str(),
                row.last_modified.as_str(),
                row.processing_restricted,
                *dedup_key,
                row.tenure_count,
                row.reference_count,
            )
        })
        .collect();
    rows.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let insert = &queries::IMPORT_INSERT_PERSONS;
    let persons = to_json(&rows, "import person rows")?;
    let statement = sqlx::query(insert.sql).bind(persons).execute(&mut *tx.conn);
    counted(&tx.recorder, insert, statement).await.map_err(failed(insert.name))?;

    // Set aside, one row per person holding each of its keys once, for `finish_import` to index in key order (see
    // migrations 0006 and 0007).
    let keys: Vec<(&str, i64, BTreeSet<&str>)> = accepted
        .iter()
        .zip(&columns)
        .filter(|(a, _)| !a.search_keys.is_empty())
        .map(|(a, (row, _))| (row.id.as_str(), row.version_number, a.search_keys.iter().map(|k| k.as_str()).collect()))
        .collect();
    if !keys.is_empty() {
        let insert = &queries::IMPORT_INSERT_PENDING_KEYS;
        let statement = sqlx::query(insert.sql).bind(to_json(&keys, "import search keys")?).execute(&mut *tx.conn);
        counted(&tx.recorder, insert, statement).await.map_err(failed(insert.name))?;
    }

    // Only live persons hold references; the decisions refused any reference already held, so these are free
    // (a reference a person names twice is one row).
    let references: BTreeSet<(&str, &str, &str)> = accepted
        .iter()
        .zip(&columns)
        .filter(|(a, _)| a.person.status.is_active())
        .flat_map(|(a, (row, _))| {
            a.person.references.iter().map(|r| (r.system.as_str(), r.id.as_str(), row.id.as_str()))
        })
        .collect();
    if !references.is_empty() {
        let insert = &queries::IMPORT_INSERT_REFERENCES;
        let references: Vec<(&str, &str, &str)> = references.into_iter().collect();
        let references = to_json(&references, "import references")?;
        let statement = sqlx::query(insert.sql).bind(references).execute(&mut *tx.conn);
        counted(&tx.recorder, insert, statement).await.map_err(failed(insert.name))?;
    }
    Ok(())
}

/// The body of an import, inside its transaction.
async fn import_in(
    tx: &mut WriteTx,
    batch: Vec<ImportWrite>,
    mut audit: AuditEntry,
    lookups: &Lookups,
) -> Result<Vec<ImportOutcome>, StoreError> {
    let held = read_holders(tx, lookups).await?;
    let mut plan = ImportPlan::decide(batch, held);
    allocate_person_refs(tx, &mut plan).await?;
    if plan.accepted.is_empty() {
        return Ok(plan.outcomes);
    }
    insert_accepted(tx, &plan.accepted).await?;
    audit.person_ids = plan.accepted.iter().map(|a| a.person.id).collect();
    insert_audit_rows(tx, &AuditColumns::new(&audit)?).await?;
    Ok(plan.outcomes)
}

#[async_trait]
impl ImportRepository for SqliteStore {
    async fn import_persons(
        &self,
        batch: Vec<ImportWrite>,
        audit: AuditEntry,
    ) -> Result<Vec<ImportOutcome>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let lookups = Lookups::of(&batch)?;
        let mut tx = self.begin_write().await?;
        let outcome = import_in(&mut tx, batch, audit, &lookups).await;
        finish(tx, outcome).await
    }

    /// On the writer connection, taken out of its pool: `import.foreign_keys_off` and `import.sort_threads`, then
    /// one transaction (`import.pending_page` until every pending row is read, the keys sorted in Rust,
    /// `import.stored_keys_up_to`, then either `import.drop_person_index` or `import.cache_raise`, `import.finish_keys`
    /// per 100,000 sorted keys, `import.create_person_index` after a drop, and `import.clear_pending_keys`); then the
    /// connection is closed, which frees its cache and ends its settings, and the pool opens a fresh writer (see
    /// `finish.rs`). Writes meanwhile wait for the write lock up to the busy timeout, then fail as unavailable (503):
    /// the finish takes about a minute for a million persons.
    async fn finish_import(&self) -> Result<u64, StoreError> {
        let begin = &queries::BEGIN_IMMEDIATE;
        let mut conn = self.writer.acquire().await.map_err(failed(begin.name))?.detach();
        for setting in [&queries::IMPORT_FOREIGN_KEYS_OFF, &queries::IMPORT_SORT_THREADS] {
            let statement = sqlx::query(setting.sql).execute(&mut conn);
            counted(&self.recorder, setting, statement).await.map_err(failed(setting.name))?;
        }
        let statement = sqlx::query(begin.sql).execute(&mut conn);
        self.recorder.run(begin, statement).await.map_err(failed(begin.name))?;
        let finished = match finish::finish_keys(&mut conn, &self.recorder).await {
            Ok(indexed) => {
                let commit = &queries::COMMIT;
                let statement = sqlx::query(commit.sql).execute(&mut conn);
                self.recorder.run(commit, statement).await.map(|_| indexed).map_err(failed(commit.name))
            }
            Err(error) => {
                let rollback = &queries::ROLLBACK;
                let statement = sqlx::query(rollback.sql).execute(&mut conn);
                if let Err(e) = self.recorder.run(rollback, statement).await {
                    let e = failed(rollback.name)(e);
                    tracing::warn!(
                        error = &e as &dyn std::error::Error,
                        "rollback after a failed import finish failed"
                    );
                }
                Err(error)
            }
        };
        if let Err(e) = sqlx::Connection::close(conn).await {
            tracing::warn!(
                error = &e as &dyn std::error::Error,
                "closing the connection that finished an import failed"
            );
        }
        finished
    }
}
