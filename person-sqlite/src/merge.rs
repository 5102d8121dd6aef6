//! [`PersonRepository::merge`](person_core::PersonRepository::merge) for [`SqliteStore`]: one `BEGIN
//! IMMEDIATE` transaction changing two persons.
//!
//! Order inside the transaction: the survivor's version is checked (under the write lock it cannot change
//! until commit); the duplicate's compare-and-set turns it into a tombstone and drops its keys, dedup key and
//! references; each moved document is deleted from the duplicate at its expected version and inserted for the
//! survivor (which must hold none of that kind); the survivor's new dedup key is checked (the duplicate's is
//! already released, so the survivor may take it); the survivor's compare-and-set, its keys and its references
//! (the duplicate's are already released, so the survivor takes them; one a third live person holds refuses the
//! merge); then the one event, both history entries and the audit entry. Any refusal rolls everything back.

use crate::SqliteStore;
use crate::audit::insert_audit_rows;
use crate::error::failed;
use crate::execution::{WriteTx, counted};
use crate::keys::{dedup_holder, replace_keys};
use crate::queries;
use crate::references::rewrite_references;
use crate::repository::{
    finish, insert_event_row, insert_history_row, replace_person_row, rewrite_keys, stored_version,
};
use crate::rows::{AuditColumns, DocumentColumns, to_sql_integer};
use person_core::matching::KeySource;
use person_core::ports::{MergeWrite, MergeWriteError, StoreError, UpdateError};
use person_core::storage::StoredDataError;

/// A refusal of one of the merge's compare-and-sets, as a merge refusal.
fn refused(error: UpdateError) -> MergeWriteError {
    match error {
        UpdateError::DuplicatePerson { existing } => MergeWriteError::DuplicatePerson { existing },
        UpdateError::ReferenceTaken { reference, owner } => MergeWriteError::ReferenceTaken { reference, owner },
        UpdateError::Store(e) => MergeWriteError::Store(e),
        // `replace_person_row` reports a missed version as `Ok(false)`; map these honestly all the same.
        UpdateError::NotFound => MergeWriteError::SurvivorConflict { current: None },
        UpdateError::VersionConflict { current } => MergeWriteError::SurvivorConflict { current: Some(current) },
    }
}

impl SqliteStore {
    pub(crate) async fn merge_persons(&self, write: MergeWrite) -> Result<(), MergeWriteError> {
        // Serialised before taking the write lock, so the lock is held only for the statements.
        let audit = AuditColumns::new(&write.audit)?;
        let documents = write
            .documents
            .iter()
            .map(|m| {
                // Storing a document under another person or kind than it names would misfile personal data.
                if m.document.person_id != write.survivor.id || m.document.kind != m.kind {
                    return Err(StoredDataError::MismatchedDocumentWrite.into());
                }
                let expected = to_sql_integer(m.expected_version, "document version")?;
                Ok((m.kind.key(), expected, DocumentColumns::new(&m.document)?))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let mut tx = self.begin_write().await?;
        let outcome = merge_in(&mut tx, &write, &documents, &audit).await;
        finish(tx, outcome).await
    }
}

async fn merge_in(
    tx: &mut WriteTx,
    write: &MergeWrite,
    documents: &[(String, i64, DocumentColumns)],
    audit: &AuditColumns,
) -> Result<(), MergeWriteError> {
    let survivor = write.survivor.id.to_string();
    let duplicate = write.duplicate.id.to_string();

    let current = stored_version(tx, &survivor).await?;
    if current != Some(write.survivor_expected_version) {
        return Err(MergeWriteError::SurvivorConflict { current });
    }
    if !replace_person_row(tx, &write.duplicate, write.duplicate_expected_version, None).await.map_err(refused)? {
        return Err(MergeWriteError::DuplicateConflict { current: stored_version(tx, &duplicate).await? });
    }
    rewrite_keys(tx, &write.duplicate, &[]).await?;
    // A tombstone holds no references: the duplicate's are released here, before the survivor claims its own.
    rewrite_references(tx, &write.duplicate).await?;

    for (kind, expected, document) in documents {
        let delete = &queries::DELETE_DOCUMENT;
        let statement = sqlx::query(delete.sql).bind(&duplicate).bind(kind).bind(expected).execute(&mut *tx.conn);
        let deleted = counted(&tx.recorder, delete, statement).await.map_err(failed(delete.name))?;
        let insert = &queries::INSERT_DOCUMENT;
        let statement = sqlx::query(insert.sql)
            .bind(&survivor)
            .bind(kind)
            .bind(document.version)
            .bind(&document.document)
            .bind(&document.updated_at)
            .execute(&mut *tx.conn);
        let inserted = counted(&tx.recorder, insert, statement).await.map_err(failed(insert.name))?;
        if deleted.rows_affected() != 1 || inserted.rows_affected() != 1 {
            return Err(MergeWriteError::DocumentConflict);
        }
    }

    let dedup_key = if write.survivor.status.is_active() { write.survivor_dedup_key.as_deref() } else { None };
    if let Some(key) = dedup_key
        && let Some(existing) = dedup_holder(tx, key, &survivor).await?
    {
        return Err(MergeWriteError::DuplicatePerson { existing });
    }
    if !replace_person_row(tx, &write.survivor, write.survivor_expected_version, dedup_key).await.map_err(refused)? {
        return Err(MergeWriteError::SurvivorConflict { current: stored_version(tx, &survivor).await? });
    }
    rewrite_keys(tx, &write.survivor, &write.survivor_keys).await?;
    if let Some(keys) = &write.survivor_equality_keys
        && write.survivor.status.is_active()
    {
        replace_keys(tx, &survivor, KeySource::Equality, keys).await?;
    }
    if let Some((reference, owner)) = rewrite_references(tx, &write.survivor).await? {
        return Err(MergeWriteError::ReferenceTaken { reference, owner });
    }

    insert_event_row(tx, &write.event).await?;
    insert_history_row(tx, &write.duplicate_history).await?;
    insert_history_row(tx, &write.survivor_history).await?;
    insert_audit_rows(tx, audit).await?;
    Ok(())
}
