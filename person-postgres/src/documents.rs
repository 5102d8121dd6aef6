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
use person_core::storage::QueryRecorder;
use sqlx::PgConnection;

use crate::PostgresStore;
use crate::error::failed;
use crate::queries;
use crate::recorded::{affected, fetched, found};
use crate::repository::{finish, replace_keys};
use crate::rows::{AuditColumns, DocumentRow, DocumentWriteColumns, PositionedRow, from_bigint};

/// Appends one audit entry and files it under every person it names (one statement).
pub(crate) async fn insert_audit(
    tx: &mut PgConnection,
    q: &QueryRecorder,
    entry: &AuditColumns,
) -> Result<(), StoreError> {
    let query = &queries::INSERT_AUDIT;
    let statement = sqlx::query(query.sql)
        .bind(entry.id)
        .bind(entry.at)
        .bind(&entry.action)
        .bind(&entry.document)
        .bind(&entry.person_ids)
        .execute(tx);
    q.run_counted(query, statement, affected).await.map_err(failed(query.name))?;
    Ok(())
}

async fn stored_version(
    tx: &mut PgConnection,
    q: &QueryRecorder,
    write: &DocumentWriteColumns,
) -> Result<Option<u64>, StoreError> {
    let query = &queries::DOCUMENT_VERSION;
    let statement = sqlx::query_scalar::<_, i64>(query.sql).bind(write.person_id).bind(&write.kind).fetch_optional(tx);
    q.run_counted(query, statement, found)
        .await
        .map_err(failed(query.name))?
        .map(|v| from_bigint(v, "document version"))
        .transpose()
}

/// The body of a document write, inside its transaction.
async fn write_in(
    tx: &mut PgConnection,
    q: &QueryRecorder,
    write: &DocumentWriteColumns,
    audit: &AuditColumns,
) -> Result<(), DocumentWriteError> {
    // Lock order: the person row before its documents, as a merge does.
    let live = match &write.equality_keys {
        Some(_) => {
            let query = &queries::LOCK_PERSON_SHARED;
            let statement = sqlx::query_scalar::<_, bool>(query.sql).bind(write.person_id).fetch_optional(&mut *tx);
            q.run_counted(query, statement, found).await.map_err(failed(query.name))?.unwrap_or(false)
        }
        None => false,
    };
    let matched = match (write.expected_version, &write.new) {
        (None, Some(new)) => {
            let query = &queries::INSERT_DOCUMENT;
            let statement = sqlx::query(query.sql)
                .bind(write.person_id)
                .bind(&write.kind)
                .bind(new.version)
                .bind(&new.document)
                .bind(new.updated_at)
                .execute(&mut *tx);
            let inserted = q.run_counted(query, statement, affected).await.map_err(failed(query.name))?;
            inserted.rows_affected() == 1
        }
        (Some(expected), Some(new)) => {
            let query = &queries::REPLACE_DOCUMENT;
            let statement = sqlx::query(query.sql)
                .bind(new.version)
                .bind(&new.document)
                .bind(new.updated_at)
                .bind(write.person_id)
                .bind(&write.kind)
                .bind(expected)
                .execute(&mut *tx);
            let replaced = q.run_counted(query, statement, affected).await.map_err(failed(query.name))?;
            replaced.rows_affected() == 1
        }
        (Some(expected), None) => {
            let query = &queries::DELETE_DOCUMENT;
            let statement =
                sqlx::query(query.sql).bind(write.person_id).bind(&write.kind).bind(expected).execute(&mut *tx);
            let deleted = q.run_counted(query, statement, affected).await.map_err(failed(query.name))?;
            deleted.rows_affected() == 1
        }
        // Deleting a document expected not to exist: nothing to change, as long as none does.
        (None, None) => stored_version(tx, q, write).await?.is_none(),
    };
    if !matched {
        return Err(DocumentWriteError::VersionConflict { current: stored_version(tx, q, write).await? });
    }
    if let Some(keys) = &write.equality_keys
        && live
    {
        replace_keys(tx, q, write.person_id, KeySource::Equality, keys).await?;
    }
    insert_audit(tx, q, audit).await?;
    Ok(())
}

#[async_trait]
impl DocumentRepository for PostgresStore {
    async fn get_document(&self, person: PersonId, kind: &DocumentKind) -> Result<Option<StoredDocument>, StoreError> {
        let query = &queries::GET_DOCUMENT;
        let statement = sqlx::query_as::<_, DocumentRow>(query.sql)
            .bind(person.as_uuid())
            .bind(kind.key())
            .fetch_optional(&self.pool);
        self.queries
            .run_counted(query, statement, found)
            .await
            .map_err(failed(query.name))?
            .map(DocumentRow::into_document)
            .transpose()
    }

    async fn list_documents(&self, person: PersonId) -> Result<Vec<StoredDocument>, StoreError> {
        let query = &queries::LIST_DOCUMENTS;
        let statement = sqlx::query_as::<_, DocumentRow>(query.sql).bind(person.as_uuid()).fetch_all(&self.pool);
        self.queries
            .run_counted(query, statement, fetched)
            .await
            .map_err(failed(query.name))?
            .into_iter()
            .map(DocumentRow::into_document)
            .collect()
    }

    async fn write_document(&self, write: DocumentWrite) -> Result<(), DocumentWriteError> {
        let columns = DocumentWriteColumns::new(&write)?;
        let audit = AuditColumns::new(&write.audit)?;
        let mut tx = self.begin_write().await?;
        let outcome = write_in(&mut tx, &self.queries, &columns, &audit).await;
        finish(&self.queries, tx, outcome).await
    }
}

#[async_trait]
impl AuditLog for PostgresStore {
    async fn append(&self, entry: AuditEntry) -> Result<(), StoreError> {
        let columns = AuditColumns::new(&entry)?;
        let mut connection = self.pool.acquire().await.map_err(failed(queries::INSERT_AUDIT.name))?;
        insert_audit(&mut connection, &self.queries, &columns).await
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
        let query = &queries::AUDIT_FOR_PERSON;
        let statement = sqlx::query_as::<_, PositionedRow>(query.sql)
            .bind(person.as_uuid())
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.pool);
        self.queries
            .run_counted(query, statement, fetched)
            .await
            .map_err(failed(query.name))?
            .into_iter()
            .map(PositionedRow::into_audit_record)
            .collect()
    }
}
