//! [`DocumentRepository`] and [`AuditLog`] for [`PostgresStore`]: versioned documents (equality data, extended
//! data per service area) and the append-only audit trail.
//!
//! A document write is one transaction: when it replaces equality keys it first takes a share lock on the person
//! row (so a concurrent delete or merge cannot drop the person's keys between our delete and insert, and keys are
//! only written for a live person), then the conditional insert, update or delete on the document's version, the
//! keys, and the audit entry. An audit append is one statement (the entry and its per-person index rows), atomic
//! on its own; entries written with a change go into that change's transaction. Audit positions come from an
//! identity column: unique and increasing in the order entries are allocated (concurrent appends may commit in
//! another order; see docs/storage.md).

use async_trait::async_trait;
use person_core::PersonId;
use person_core::audit::AuditEntry;
use person_core::documents::{DocumentKind, DocumentWrite, StoredDocument};
use person_core::matching::KeySource;
use person_core::ports::{AuditLog, AuditRecord, DocumentRepository, DocumentWriteError, StoreError};
use sqlx::PgConnection;

use crate::PostgresStore;
use crate::error::failed;
use crate::queries;
use crate::repository::{finish, replace_keys};
use crate::rows::{AuditColumns, DocumentRow, DocumentWriteColumns, PositionedRow, from_bigint};

/// Appends one audit entry and files it under every person it names (one statement).
pub(crate) async fn insert_audit(tx: &mut PgConnection, entry: &AuditColumns) -> Result<(), StoreError> {
    sqlx::query(queries::INSERT_AUDIT)
        .bind(entry.id)
        .bind(entry.at)
        .bind(&entry.action)
        .bind(&entry.document)
        .bind(&entry.person_ids)
        .execute(tx)
        .await
        .map_err(failed("audit.insert"))?;
    Ok(())
}

async fn stored_version(tx: &mut PgConnection, write: &DocumentWriteColumns) -> Result<Option<u64>, StoreError> {
    sqlx::query_scalar::<_, i64>(queries::DOCUMENT_VERSION)
        .bind(write.person_id)
        .bind(&write.kind)
        .fetch_optional(tx)
        .await
        .map_err(failed("document.version"))?
        .map(|v| from_bigint(v, "document version"))
        .transpose()
}

/// The body of a document write, inside its transaction.
async fn write_in(
    tx: &mut PgConnection,
    write: &DocumentWriteColumns,
    audit: &AuditColumns,
) -> Result<(), DocumentWriteError> {
    // Lock order: the person row before its documents, as a merge does.
    let live = match &write.equality_keys {
        Some(_) => sqlx::query_scalar::<_, bool>(queries::LOCK_PERSON_SHARED)
            .bind(write.person_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(failed("person.lock_shared"))?
            .unwrap_or(false),
        None => false,
    };
    let matched = match (write.expected_version, &write.new) {
        (None, Some(new)) => {
            let inserted = sqlx::query(queries::INSERT_DOCUMENT)
                .bind(write.person_id)
                .bind(&write.kind)
                .bind(new.version)
                .bind(&new.document)
                .bind(new.updated_at)
                .execute(&mut *tx)
                .await
                .map_err(failed("document.insert"))?;
            inserted.rows_affected() == 1
        }
        (Some(expected), Some(new)) => {
            let replaced = sqlx::query(queries::REPLACE_DOCUMENT)
                .bind(new.version)
                .bind(&new.document)
                .bind(new.updated_at)
                .bind(write.person_id)
                .bind(&write.kind)
                .bind(expected)
                .execute(&mut *tx)
                .await
                .map_err(failed("document.replace"))?;
            replaced.rows_affected() == 1
        }
        (Some(expected), None) => {
            let deleted = sqlx::query(queries::DELETE_DOCUMENT)
                .bind(write.person_id)
                .bind(&write.kind)
                .bind(expected)
                .execute(&mut *tx)
                .await
                .map_err(failed("document.delete"))?;
            deleted.rows_affected() == 1
        }
        // Deleting a document expected not to exist: nothing to change, as long as none does.
        (None, None) => stored_version(tx, write).await?.is_none(),
    };
    if !matched {
        return Err(DocumentWriteError::VersionConflict { current: stored_version(tx, write).await? });
    }
    if let Some(keys) = &write.equality_keys
        && live
    {
        replace_keys(tx, write.person_id, KeySource::Equality, keys).await?;
    }
    insert_audit(tx, audit).await?;
    Ok(())
}

#[async_trait]
impl DocumentRepository for PostgresStore {
    async fn get_document(&self, person: PersonId, kind: &DocumentKind) -> Result<Option<StoredDocument>, StoreError> {
        sqlx::query_as::<_, DocumentRow>(queries::GET_DOCUMENT)
            .bind(person.as_uuid())
            .bind(kind.key())
            .fetch_optional(&self.pool)
            .await
            .map_err(failed("document.get"))?
            .map(DocumentRow::into_document)
            .transpose()
    }

    async fn list_documents(&self, person: PersonId) -> Result<Vec<StoredDocument>, StoreError> {
        sqlx::query_as::<_, DocumentRow>(queries::LIST_DOCUMENTS)
            .bind(person.as_uuid())
            .fetch_all(&self.pool)
            .await
            .map_err(failed("document.list"))?
            .into_iter()
            .map(DocumentRow::into_document)
            .collect()
    }

    async fn write_document(&self, write: DocumentWrite) -> Result<(), DocumentWriteError> {
        let columns = DocumentWriteColumns::new(&write)?;
        let audit = AuditColumns::new(&write.audit)?;
        let mut tx = self.begin_write().await?;
        let outcome = write_in(&mut tx, &columns, &audit).await;
        finish(tx, outcome).await
    }
}

#[async_trait]
impl AuditLog for PostgresStore {
    async fn append(&self, entry: AuditEntry) -> Result<(), StoreError> {
        let columns = AuditColumns::new(&entry)?;
        let mut connection = self.pool.acquire().await.map_err(failed("audit.insert"))?;
        insert_audit(&mut connection, &columns).await
    }

    async fn entries_for_person(
        &self,
        person: PersonId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let Ok(after) = i64::try_from(after) else {
            return Ok(Vec::new());
        };
        sqlx::query_as::<_, PositionedRow>(queries::AUDIT_FOR_PERSON)
            .bind(person.as_uuid())
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(failed("audit.for_person"))?
            .into_iter()
            .map(PositionedRow::into_audit_record)
            .collect()
    }
}
