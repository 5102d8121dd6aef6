//! [`AuditLog`] for [`SqliteStore`]: the append-only audit trail (`audit_log`, filed per person in
//! `audit_persons`).
//!
//! Entries written with a change (create, update, document write) are inserted by [`insert_audit_rows`] inside
//! that change's transaction; [`AuditLog::append`] (reads, searches, exports) is a write transaction of its own.
//! Positions are `AUTOINCREMENT` rowids allocated under the single writer, so they increase in commit order and
//! are never reused. Triggers in the schema refuse any UPDATE or DELETE of an audit row.

use async_trait::async_trait;
use person_core::PersonId;
use person_core::audit::AuditEntry;
use person_core::ports::{AuditLog, AuditRecord, StoreError};
use sqlx::SqliteConnection;

use crate::SqliteStore;
use crate::error::failed;
use crate::queries;
use crate::repository::finish;
use crate::rows::{AuditColumns, AuditRow};

/// Appends one audit entry and files it under every person it names, inside the caller's write transaction.
pub(crate) async fn insert_audit_rows(tx: &mut SqliteConnection, entry: &AuditColumns) -> Result<(), StoreError> {
    let position = sqlx::query_scalar::<_, i64>(queries::INSERT_AUDIT)
        .bind(&entry.id)
        .bind(&entry.at)
        .bind(&entry.action)
        .bind(&entry.document)
        .fetch_one(&mut *tx)
        .await
        .map_err(failed("audit.insert"))?;
    sqlx::query(queries::INSERT_AUDIT_PERSONS)
        .bind(position)
        .bind(&entry.person_ids)
        .execute(&mut *tx)
        .await
        .map_err(failed("audit.insert_persons"))?;
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
        sqlx::query_as::<_, AuditRow>(queries::AUDIT_FOR_PERSON)
            .bind(person.to_string())
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.readers)
            .await
            .map_err(failed("audit.for_person"))?
            .into_iter()
            .map(AuditRow::into_record)
            .collect()
    }
}
