//! [`ImportRepository`] for [`PostgresStore`]: bulk loading of persons that keep their ids, `personRef`s,
//! versions and timestamps (`person-api import`, migrations).
//!
//! A batch is one transaction of a fixed number of statements, whatever its size: every value travels as an array
//! parameter (`unnest`, `= ANY`), never as a statement per person.
//!
//! 1. **The import lock,** exclusively. Creates hold it shared from allocating their `personRef`, and every write
//!    that sets a dedup key from taking that key's lock, until they end. So the batch waits for those in progress
//!    and those that start later wait for it to commit: no create is ever handed a number the batch keeps, no
//!    writer sets a dedup key the batch found free, and imports run one at a time.
//! 2. **Look-ups.** The stored persons with the batch's ids (and its merged persons' survivors), with its kept `personRef`s, the live persons holding
//!    its dedup keys and the live persons holding its cross-references: one index-probing statement each.
//! 3. **Decisions,** in Rust, record by record in batch order, against the stored persons and the records before
//!    it, by the rules every store applies ([`person_core::import_plan`], a pure function).
//! 4. **`personRef`s.** One `setval` raises the sequence past the largest kept `personRef` and reserves the numbers
//!    the batch assigns.
//! 5. **Writes.** The persons, their search keys (set aside in `import_pending_keys`, see migration 0004), their
//!    cross-references and one audit entry naming them: one statement each. No event, history entry or idempotency
//!    record (see the port).
//!
//! [`ImportRepository::finish_import`] then indexes every key set aside, in one statement in key order, under the
//! import lock.
//!
//! A write that sets no dedup key (a document write, an update of a person lacking one) takes no import lock: one
//! that claims a cross-reference of the batch after the look-up makes the batch's claim insert fewer rows than
//! expected, and the batch then fails as unavailable (nothing written; a retry reports the holder). This module
//! knows nothing of events or history.

use std::collections::BTreeMap;

use async_trait::async_trait;
use person_core::audit::AuditEntry;
use person_core::import_plan::{AcceptedImport, ImportHolders, ImportPlan};
use person_core::matching::SearchKey;
use person_core::ports::{ImportOutcome, ImportRepository, ImportWrite, StoreError};
use person_core::reference::CrossReference;
use person_core::storage::{NamedQuery, QueryRecorder, out_of_range};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::PostgresStore;
use crate::documents::insert_audit;
use crate::error::failed;
use crate::queries;
use crate::recorded::{affected, fetched, one};
use crate::repository::finish;
use crate::rows::{AuditColumns, PersonColumns, person_id};

/// A cross-reference of the batch was claimed by a concurrent update or merge between the batch's look-up and its
/// claim: the batch is rolled back, and retrying it reports the holder.
#[derive(Debug, thiserror::Error)]
#[error("a cross-reference of the import batch was claimed by a concurrent write")]
struct ReferenceClaimedConcurrently;

/// Reads what the batch's records are checked against (four look-ups, each skipped when it has nothing to ask).
async fn holders(tx: &mut PgConnection, q: &QueryRecorder, batch: &[ImportWrite]) -> Result<ImportHolders, StoreError> {
    let mut held = ImportHolders::default();

    let ids: Vec<Uuid> = ImportHolders::ids_to_read(batch).iter().map(|id| id.as_uuid()).collect();
    if !ids.is_empty() {
        let query = &queries::IMPORT_IDS_PRESENT;
        let statement = sqlx::query_scalar::<_, Uuid>(query.sql).bind(&ids).fetch_all(&mut *tx);
        for id in q.run_counted(query, statement, fetched).await.map_err(failed(query.name))? {
            held.ids.insert(person_id(id)?);
        }
    }

    let kept = ImportHolders::kept_person_refs(batch);
    if !kept.is_empty() {
        let query = &queries::IMPORT_PERSON_REFS_TAKEN;
        let statement = sqlx::query_as::<_, (i64, Uuid)>(query.sql).bind(&kept).fetch_all(&mut *tx);
        for (person_ref, id) in q.run_counted(query, statement, fetched).await.map_err(failed(query.name))? {
            held.person_refs.insert(person_ref, person_id(id)?);
        }
    }

    let dedup_keys = ImportHolders::live_dedup_keys(batch);
    if !dedup_keys.is_empty() {
        let query = &queries::IMPORT_DEDUP_HOLDERS;
        let statement = sqlx::query_as::<_, (String, Uuid)>(query.sql).bind(&dedup_keys).fetch_all(&mut *tx);
        for (key, id) in q.run_counted(query, statement, fetched).await.map_err(failed(query.name))? {
            held.dedup_keys.insert(key, person_id(id)?);
        }
    }

    // Only live persons claim references; each is asked once.
    let references = ImportHolders::live_references(batch);
    if !references.is_empty() {
        let (systems, reference_ids): (Vec<&str>, Vec<&str>) =
            references.iter().map(|r| (r.system.as_str(), r.id.as_str())).unzip();
        let query = &queries::IMPORT_REFERENCE_HOLDERS;
        let statement =
            sqlx::query_as::<_, (i64, Uuid)>(query.sql).bind(&systems).bind(&reference_ids).fetch_all(&mut *tx);
        for (position, id) in q.run_counted(query, statement, fetched).await.map_err(failed(query.name))? {
            // Positions count from 1 (`WITH ORDINALITY`).
            let reference = position
                .checked_sub(1)
                .and_then(|index| usize::try_from(index).ok())
                .and_then(|index| references.get(index))
                .ok_or_else(|| out_of_range("reference position"))?;
            held.references.insert((*reference).clone(), person_id(id)?);
        }
    }
    Ok(held)
}

/// Takes the import lock (see the module documentation).
async fn lock(tx: &mut PgConnection, q: &QueryRecorder) -> Result<(), StoreError> {
    let query = &queries::IMPORT_LOCK;
    q.run_counted(query, sqlx::query(query.sql).execute(&mut *tx), affected).await.map_err(failed(query.name))?;
    Ok(())
}

/// Raises the sequence past the batch's kept `personRef`s and reserves the ones it assigns; returns the last.
async fn reserve_person_refs(tx: &mut PgConnection, q: &QueryRecorder, plan: &ImportPlan) -> Result<i64, StoreError> {
    let query = &queries::IMPORT_RESERVE_PERSON_REFS;
    let statement =
        sqlx::query_scalar::<_, i64>(query.sql).bind(plan.largest_kept).bind(plan.to_assign).fetch_one(&mut *tx);
    q.run_counted(query, statement, one).await.map_err(failed(query.name))
}

/// The `persons` rows of the stored records, one array per column.
#[derive(Default)]
struct PersonArrays {
    id: Vec<Uuid>,
    person_ref: Vec<i64>,
    version_number: Vec<i64>,
    state: Vec<&'static str>,
    merged_into: Vec<Option<Uuid>>,
    document: Vec<String>,
    created_at: Vec<chrono::DateTime<chrono::Utc>>,
    last_modified: Vec<chrono::DateTime<chrono::Utc>>,
    processing_restricted: Vec<bool>,
    dedup_key: Vec<Option<String>>,
    tenure_count: Vec<i32>,
    reference_count: Vec<i32>,
}

impl PersonArrays {
    fn push(&mut self, stored: &AcceptedImport) -> Result<(), StoreError> {
        let row = PersonColumns::new(&stored.person)?;
        self.id.push(row.id);
        self.person_ref.push(row.person_ref);
        self.version_number.push(row.version_number);
        self.state.push(row.state);
        self.merged_into.push(row.merged_into);
        self.document.push(row.document);
        self.created_at.push(row.created_at);
        self.last_modified.push(row.last_modified);
        self.processing_restricted.push(row.processing_restricted);
        self.dedup_key.push(stored.dedup_key.clone());
        self.tenure_count.push(row.tenure_count);
        self.reference_count.push(row.reference_count);
        Ok(())
    }
}

/// Writes the stored records: persons, search keys, cross-references (three statements).
async fn write(tx: &mut PgConnection, q: &QueryRecorder, stored: &[AcceptedImport]) -> Result<(), StoreError> {
    let mut persons = PersonArrays::default();
    for record in stored {
        persons.push(record)?;
    }
    let query = &queries::IMPORT_INSERT_PERSONS;
    let statement = sqlx::query(query.sql)
        .bind(&persons.id)
        .bind(&persons.person_ref)
        .bind(&persons.version_number)
        .bind(&persons.state)
        .bind(&persons.merged_into)
        .bind(&persons.document)
        .bind(&persons.created_at)
        .bind(&persons.last_modified)
        .bind(&persons.processing_restricted)
        .bind(&persons.dedup_key)
        .bind(&persons.tenure_count)
        .bind(&persons.reference_count)
        .execute(&mut *tx);
    q.run_counted(query, statement, affected).await.map_err(failed(query.name))?;

    // Each key once per person, set aside for `finish_import` to index in key order (see migrations 0004 and 0005).
    let mut owners = Vec::new();
    let mut versions = Vec::new();
    let mut keys = Vec::new();
    for (record, version) in stored.iter().zip(&persons.version_number) {
        let mut own: Vec<&str> = record.search_keys.iter().map(SearchKey::as_str).collect();
        own.sort_unstable();
        own.dedup();
        owners.extend(std::iter::repeat_n(record.person.id.as_uuid(), own.len()));
        versions.extend(std::iter::repeat_n(*version, own.len()));
        keys.extend(own);
    }
    if !keys.is_empty() {
        let query = &queries::IMPORT_INSERT_PENDING_KEYS;
        let statement = sqlx::query(query.sql).bind(&owners).bind(&versions).bind(&keys).execute(&mut *tx);
        q.run_counted(query, statement, affected).await.map_err(failed(query.name))?;
    }

    // The plan gave each reference to one live person at most; a person naming one twice claims it once.
    let claims: BTreeMap<&CrossReference, Uuid> = stored
        .iter()
        .filter(|s| s.person.status.is_active())
        .flat_map(|s| s.person.references.iter().map(|r| (r, s.person.id.as_uuid())))
        .collect();
    if !claims.is_empty() {
        let mut systems = Vec::with_capacity(claims.len());
        let mut reference_ids = Vec::with_capacity(claims.len());
        let mut owners = Vec::with_capacity(claims.len());
        for (reference, owner) in &claims {
            systems.push(reference.system.as_str());
            reference_ids.push(reference.id.as_str());
            owners.push(*owner);
        }
        let query = &queries::IMPORT_INSERT_REFERENCES;
        let statement = sqlx::query(query.sql).bind(&systems).bind(&reference_ids).bind(&owners).execute(&mut *tx);
        let claimed = q.run_counted(query, statement, affected).await.map_err(failed(query.name))?.rows_affected();
        if u64::try_from(claims.len()).ok() != Some(claimed) {
            return Err(StoreError::Unavailable(Box::new(ReferenceClaimedConcurrently)));
        }
    }
    Ok(())
}

/// The body of an import, inside its transaction.
async fn import_in(
    tx: &mut PgConnection,
    q: &QueryRecorder,
    batch: Vec<ImportWrite>,
    mut audit: AuditEntry,
) -> Result<Vec<ImportOutcome>, StoreError> {
    lock(tx, q).await?;
    let held = holders(tx, q, &batch).await?;
    let mut plan = ImportPlan::decide(batch, held);
    if plan.largest_kept > 0 || plan.to_assign > 0 {
        let last = reserve_person_refs(tx, q, &plan).await?;
        if last < plan.largest_kept.saturating_add(plan.to_assign) {
            return Err(out_of_range("reserved personRef"));
        }
        plan.assign_person_refs(last);
    }
    if plan.accepted.is_empty() {
        return Ok(plan.outcomes);
    }
    write(tx, q, &plan.accepted).await?;
    audit.person_ids = plan.accepted.iter().map(|s| s.person.id).collect();
    insert_audit(tx, q, &AuditColumns::new(&audit)?).await?;
    Ok(plan.outcomes)
}

#[async_trait]
impl ImportRepository for PostgresStore {
    async fn import_persons(
        &self,
        batch: Vec<ImportWrite>,
        audit: AuditEntry,
    ) -> Result<Vec<ImportOutcome>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin_write().await?;
        let outcome = import_in(&mut tx, &self.queries, batch, audit).await;
        finish(&self.queries, tx, outcome).await
    }

    /// One transaction: `import.lock` (exclusively: no batch adds keys meanwhile), `import.sort_memory`,
    /// `import.finish_keys`, `import.clear_pending_keys`, `import.analyze`.
    async fn finish_import(&self) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let outcome = finish_keys(&mut tx, &self.queries).await;
        finish(&self.queries, tx, outcome).await
    }
}

/// Runs a statement binding nothing and returning no rows.
async fn run(tx: &mut PgConnection, q: &QueryRecorder, query: &'static NamedQuery) -> Result<u64, StoreError> {
    let statement = sqlx::raw_sql(query.sql).execute(&mut *tx);
    Ok(q.run_counted(query, statement, affected).await.map_err(failed(query.name))?.rows_affected())
}

/// The body of [`ImportRepository::finish_import`], inside its transaction: the number of keys indexed. When fewer
/// keys are stored than wait (an import into a new store), the person index and the foreign key of `search_keys`
/// are dropped and rebuilt around the insert.
async fn finish_keys(tx: &mut PgConnection, q: &QueryRecorder) -> Result<u64, StoreError> {
    lock(tx, q).await?;
    let query = &queries::IMPORT_SORT_MEMORY;
    let statement = sqlx::query(query.sql).fetch_one(&mut *tx);
    q.run_counted(query, statement, one).await.map_err(failed(query.name))?;
    let query = &queries::IMPORT_PENDING_COUNT;
    let statement = sqlx::query_scalar::<_, i64>(query.sql).fetch_one(&mut *tx);
    let waiting = q.run_counted(query, statement, one).await.map_err(failed(query.name))?;
    let query = &queries::IMPORT_STORED_KEYS_UP_TO;
    let statement = sqlx::query_scalar::<_, i64>(query.sql).bind(waiting).fetch_one(&mut *tx);
    let rebuild = q.run_counted(query, statement, one).await.map_err(failed(query.name))? < waiting;
    if rebuild {
        run(tx, q, &queries::IMPORT_DROP_PERSON_INDEX).await?;
    }
    let indexed = run(tx, q, &queries::IMPORT_FINISH_KEYS).await?;
    if rebuild {
        run(tx, q, &queries::IMPORT_REBUILD_PERSON_INDEX).await?;
    }
    let query = &queries::IMPORT_CLEAR_PENDING_KEYS;
    q.run_counted(query, sqlx::query(query.sql).execute(&mut *tx), affected).await.map_err(failed(query.name))?;
    let query = &queries::IMPORT_ANALYZE;
    q.run_counted(query, sqlx::query(query.sql).execute(&mut *tx), affected).await.map_err(failed(query.name))?;
    Ok(indexed)
}
