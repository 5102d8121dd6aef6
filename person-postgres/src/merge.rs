//! [`PersonRepository::merge`](person_core::PersonRepository::merge) for [`PostgresStore`]: one transaction
//! changing two persons.
//!
//! Order inside the transaction (which is also the lock order, so merges and updates never deadlock): the
//! advisory lock of the survivor's new dedup key; both person rows locked `FOR UPDATE` in id order and their
//! versions checked; the duplicate turned into a tombstone with its keys, dedup key and references dropped; each
//! moved document deleted from the duplicate at its expected version and inserted for the survivor (which must hold
//! none of that kind); the survivor's new dedup key checked (the duplicate's is already released, so the survivor
//! may take it); the survivor's compare-and-set, keys and references (the duplicate's are already released, so the
//! survivor takes them; one a third live person holds refuses the merge); both history entries, the audit entry,
//! and last the one event. Any refusal rolls everything back.

use std::collections::HashMap;

use person_core::matching::KeySource;
use person_core::ports::{MergeWrite, MergeWriteError, StoreError};
use person_core::storage::{QueryRecorder, StoredDataError};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::PostgresStore;
use crate::documents::insert_audit;
use crate::error::failed;
use crate::queries;
use crate::recorded::{affected, fetched};
use crate::references::rewrite_references;
use crate::repository::{
    dedup_holder, finish, insert_event_row, insert_history_row, live_dedup_key, lock_dedup_key, replace_keys,
    replace_person_row, rewrite_keys,
};
use crate::rows::{AuditColumns, DocumentColumns, from_bigint, to_bigint};

/// A document to move, ready to bind: kind key, expected version on the duplicate, the survivor's row.
struct Move {
    kind: String,
    expected: i64,
    document: DocumentColumns,
}

impl PostgresStore {
    pub(crate) async fn merge_persons(&self, write: MergeWrite) -> Result<(), MergeWriteError> {
        let audit = AuditColumns::new(&write.audit)?;
        let moves = write
            .documents
            .iter()
            .map(|m| {
                // Storing a document under another person or kind than it names would misfile personal data.
                if m.document.person_id != write.survivor.id || m.document.kind != m.kind {
                    return Err(StoredDataError::MismatchedDocumentWrite.into());
                }
                Ok(Move {
                    kind: m.kind.key(),
                    expected: to_bigint(m.expected_version, "document version")?,
                    document: DocumentColumns::new(&m.document)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let mut tx = self.begin_write().await?;
        let outcome = merge_in(&mut tx, &self.queries, &write, &moves, &audit).await;
        finish(&self.queries, tx, outcome).await
    }
}

/// Locks both persons in id order and returns their stored versions.
async fn lock_pair(tx: &mut PgConnection, q: &QueryRecorder, ids: [Uuid; 2]) -> Result<HashMap<Uuid, u64>, StoreError> {
    let query = &queries::LOCK_PERSONS;
    let statement = sqlx::query_as::<_, (Uuid, i64)>(query.sql).bind(ids.to_vec()).fetch_all(tx);
    q.run_counted(query, statement, fetched)
        .await
        .map_err(failed(query.name))?
        .into_iter()
        .map(|(id, version)| Ok((id, from_bigint(version, "person version")?)))
        .collect()
}

async fn merge_in(
    tx: &mut PgConnection,
    q: &QueryRecorder,
    write: &MergeWrite,
    moves: &[Move],
    audit: &AuditColumns,
) -> Result<(), MergeWriteError> {
    let survivor = write.survivor.id.as_uuid();
    let duplicate = write.duplicate.id.as_uuid();
    let dedup_key = live_dedup_key(&write.survivor, write.survivor_dedup_key.as_deref());
    if let Some(key) = dedup_key {
        lock_dedup_key(tx, q, key).await?;
    }

    let versions = lock_pair(tx, q, [survivor, duplicate]).await?;
    let current = versions.get(&survivor).copied();
    if current != Some(write.survivor_expected_version) {
        return Err(MergeWriteError::SurvivorConflict { current });
    }
    let current = versions.get(&duplicate).copied();
    if current != Some(write.duplicate_expected_version) {
        return Err(MergeWriteError::DuplicateConflict { current });
    }
    // Both rows are locked at the expected versions: the compare-and-sets below cannot miss.
    if !replace_person_row(tx, q, &write.duplicate, write.duplicate_expected_version, None).await? {
        return Err(MergeWriteError::DuplicateConflict { current });
    }
    rewrite_keys(tx, q, &write.duplicate, &[]).await?;
    // A tombstone holds no references: the duplicate's are released here, before the survivor claims its own.
    rewrite_references(tx, q, &write.duplicate).await?;

    for document in moves {
        let query = &queries::DELETE_DOCUMENT;
        let statement =
            sqlx::query(query.sql).bind(duplicate).bind(&document.kind).bind(document.expected).execute(&mut *tx);
        let deleted = q.run_counted(query, statement, affected).await.map_err(failed(query.name))?;
        let query = &queries::INSERT_DOCUMENT;
        let statement = sqlx::query(query.sql)
            .bind(survivor)
            .bind(&document.kind)
            .bind(document.document.version)
            .bind(&document.document.document)
            .bind(document.document.updated_at)
            .execute(&mut *tx);
        let inserted = q.run_counted(query, statement, affected).await.map_err(failed(query.name))?;
        if deleted.rows_affected() != 1 || inserted.rows_affected() != 1 {
            return Err(MergeWriteError::DocumentConflict);
        }
    }

    if let Some(key) = dedup_key
        && let Some(existing) = dedup_holder(tx, q, key, survivor).await?
    {
        return Err(MergeWriteError::DuplicatePerson { existing });
    }
    if !replace_person_row(tx, q, &write.survivor, write.survivor_expected_version, dedup_key).await? {
        return Err(MergeWriteError::SurvivorConflict { current: Some(write.survivor_expected_version) });
    }
    rewrite_keys(tx, q, &write.survivor, &write.survivor_keys).await?;
    if let Some(keys) = &write.survivor_equality_keys
        && write.survivor.status.is_active()
    {
        replace_keys(tx, q, survivor, KeySource::Equality, keys).await?;
    }
    if let Some((reference, owner)) = rewrite_references(tx, q, &write.survivor).await? {
        return Err(MergeWriteError::ReferenceTaken { reference, owner });
    }

    insert_history_row(tx, q, &write.duplicate_history).await?;
    insert_history_row(tx, q, &write.survivor_history).await?;
    insert_audit(tx, q, audit).await?;
    insert_event_row(tx, q, &write.event).await?;
    Ok(())
}
