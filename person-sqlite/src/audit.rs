//! [`AuditLog`] for [`SqliteStore`]: the append-only audit trail (`audit_log`, filed per person in
//! `audit_persons`).
//!
//! Entries written with a change (create, update, document write) are inserted by [`insert_audit_rows`] inside
//! that change's transaction; [`AuditLog::append`] (reads, searches, exports) is a write transaction of its own.
//! Positions are `AUTOINCREMENT` rowids allocated under the single writer, so they increase in commit order and
//! are never reused. Triggers in the schema refuse any UPDATE or DELETE of an audit row.

use crate::SqliteStore;
use crate::error::failed;
use crate::execution::{WriteTx, counted, single};
use crate::queries;
use crate::repository::finish;
use crate::rows::{AuditColumns, AuditRow};
use async_trait::async_trait;
use person_core::PersonId;
use person_core::audit::AuditEntry;
use person_core::ports::{AuditLog, AuditRecord, StoreError};

/// Appends one audit entry and files it under every person it names, inside the caller's write transaction.
pub(crate) async fn insert_audit_rows(tx: &mut WriteTx, entry: &AuditColumns) -> Result<(), StoreError> {
    let insert = &queries::INSERT_AUDIT;
    let statement = sqlx::query_scalar::<_, i64>(insert.sql)
        .bind(&entry.id)
        .bind(&entry.at)
        .bind(&entry.action)
        .bind(&entry.document)
        .fetch_one(&mut *tx.conn);
    let position = single(&tx.recorder, insert, statement).await.map_err(failed(insert.name))?;
    let file = &queries::INSERT_AUDIT_PERSONS;
    let statement = sqlx::query(file.sql).bind(position).bind(&entry.person_ids).execute(&mut *tx.conn);
    counted(&tx.recorder, file, statement).await.map_err(failed(file.name))?;
    Ok(())
}

#[async_trait]
impl AuditLog for SqliteStore {
    async fn append(&self, entry: AuditEntry) -> Result<(), StoreError> {
        let columns = AuditColumns::new(&entry)?;
        let mut tx = self.begin_write().await?;
        let outcome = insert_audit_rows(&mut tx, &columns).await;
        finish(tx, outcome).await
    }

    async fn entries_for_person(
        &self,
        person: PersonId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        // Positions are SQLite integers: nothing lies beyond i64::MAX.
        let Ok(after) = i64::try_from(after) else {
            return Ok(Vec::new());
        };
        let page = &queries::AUDIT_FOR_PERSON;
        let statement = sqlx::query_as::<_, AuditRow>(page.sql)
            .bind(person.to_string())
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.readers);
        counted(&self.recorder, page, statement)
            .await
            .map_err(failed(page.name))?
            .into_iter()
            .map(AuditRow::into_record)
            .collect()
    }
}
