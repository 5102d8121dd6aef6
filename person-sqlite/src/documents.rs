//! [`DocumentRepository`] for [`SqliteStore`]: equality and extended documents in the `documents` table, one
//! row per person and kind.
//!
//! A write is one `BEGIN IMMEDIATE` transaction: a conditional statement that applies only when the stored
//! version is the expected one (`INSERT … ON CONFLICT DO NOTHING` for a first write, `UPDATE`/`DELETE … AND
//! version = ?` otherwise), then the audit entry. When the statement changes no row, the stored version is read
//! (still under the write lock) to answer `VersionConflict { current }`, and the transaction is rolled back.
//! An equality write also replaces the person's `equality` search keys (the NI number) in the same transaction.

use crate::SqliteStore;
use crate::audit::insert_audit_rows;
use crate::error::{failed, out_of_range};
use crate::execution::{WriteTx, counted};
use crate::keys::replace_keys;
use crate::queries;
use crate::repository::finish;
use crate::rows::{AuditColumns, DocumentRow, DocumentWriteColumns};
use async_trait::async_trait;
use person_core::PersonId;
use person_core::documents::{DocumentKind, DocumentWrite, StoredDocument};
use person_core::matching::KeySource;
use person_core::ports::{DocumentRepository, DocumentWriteError, StoreError};

/// The version of the stored document, `None` when there is none.
async fn stored_version(tx: &mut WriteTx, write: &DocumentWriteColumns) -> Result<Option<u64>, StoreError> {
    let version = &queries::DOCUMENT_VERSION;
    let statement = sqlx::query_scalar::<_, i64>(version.sql)
        .bind(&write.person_id)
        .bind(&write.kind)
        .fetch_optional(&mut *tx.conn);
    counted(&tx.recorder, version, statement)
        .await
        .map_err(failed(version.name))?
        .map(|version| u64::try_from(version).map_err(|_| out_of_range("document version")))
        .transpose()
}

/// The body of a document write, inside its transaction.
async fn write_in(
    tx: &mut WriteTx,
    write: &DocumentWriteColumns,
    audit: &AuditColumns,
) -> Result<(), DocumentWriteError> {
    let matched = match (write.expected_version, &write.new) {
        (None, Some(new)) => {
            let insert = &queries::INSERT_DOCUMENT;
            let statement = sqlx::query(insert.sql)
                .bind(&write.person_id)
                .bind(&write.kind)
                .bind(new.version)
                .bind(&new.document)
                .bind(&new.updated_at)
                .execute(&mut *tx.conn);
            let inserted = counted(&tx.recorder, insert, statement).await.map_err(failed(insert.name))?;
            inserted.rows_affected() == 1
        }
        (Some(expected), Some(new)) => {
            let replace = &queries::REPLACE_DOCUMENT;
            let statement = sqlx::query(replace.sql)
                .bind(new.version)
                .bind(&new.document)
                .bind(&new.updated_at)
                .bind(&write.person_id)
                .bind(&write.kind)
                .bind(expected)
                .execute(&mut *tx.conn);
            let replaced = counted(&tx.recorder, replace, statement).await.map_err(failed(replace.name))?;
            replaced.rows_affected() == 1
        }
        (Some(expected), None) => {
            let delete = &queries::DELETE_DOCUMENT;
            let statement =
                sqlx::query(delete.sql).bind(&write.person_id).bind(&write.kind).bind(expected).execute(&mut *tx.conn);
            let deleted = counted(&tx.recorder, delete, statement).await.map_err(failed(delete.name))?;
            deleted.rows_affected() == 1
        }
        // Deleting a document expected not to exist: nothing to change, as long as none does.
        (None, None) => stored_version(tx, write).await?.is_none(),
    };
    if !matched {
        return Err(DocumentWriteError::VersionConflict { current: stored_version(tx, write).await? });
    }
    if let Some(keys) = &write.equality_keys {
        replace_keys(tx, &write.person_id, KeySource::Equality, keys).await?;
    }
    insert_audit_rows(tx, audit).await?;
    Ok(())
}

#[async_trait]
impl DocumentRepository for SqliteStore {
    async fn get_document(&self, person: PersonId, kind: &DocumentKind) -> Result<Option<StoredDocument>, StoreError> {
        let get = &queries::GET_DOCUMENT;
        let statement = sqlx::query_as::<_, DocumentRow>(get.sql)
            .bind(person.to_string())
            .bind(kind.key())
            .fetch_optional(&self.readers);
        counted(&self.recorder, get, statement)
            .await
            .map_err(failed(get.name))?
            .map(DocumentRow::into_document)
            .transpose()
    }

    async fn list_documents(&self, person: PersonId) -> Result<Vec<StoredDocument>, StoreError> {
        let list = &queries::LIST_DOCUMENTS;
        let statement = sqlx::query_as::<_, DocumentRow>(list.sql).bind(person.to_string()).fetch_all(&self.readers);
        counted(&self.recorder, list, statement)
            .await
            .map_err(failed(list.name))?
            .into_iter()
            .map(DocumentRow::into_document)
            .collect()
    }

    async fn write_document(&self, write: DocumentWrite) -> Result<(), DocumentWriteError> {
        // Serialised before taking the write lock, so the lock is held only for the statements.
        let columns = DocumentWriteColumns::new(&write)?;
        let audit = AuditColumns::new(&write.audit)?;
        let mut tx = self.begin_write().await?;
        let outcome = write_in(&mut tx, &columns, &audit).await;
        finish(tx, outcome).await
    }
}
