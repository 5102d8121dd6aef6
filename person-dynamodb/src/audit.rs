//! [`AuditLog`] for [`DynamoDbStore`]: the append-only audit trail.
//!
//! Each entry is an item `AUDIT` / `<position>` (the log) plus one copy per person it names, `PERSON#<id>` /
//! `AUDIT#<position>` (the index a person's access log is read from with one `Query`). Positions come from an
//! atomic counter (`UpdateItem ADD` on `COUNTER` / `AUDIT`), so they are unique and increase in allocation
//! order; a refused change leaves its position unused (a gap). Entries written with a change are put in that
//! change's transaction ([`crate::repository::append_audit`]); [`AuditLog::append`] (reads, searches, exports)
//! writes its items in one transaction (in transactions of 100 items for an entry naming more than 99 persons,
//! the log item first). The store never updates or deletes an audit item.

use async_trait::async_trait;
use person_core::PersonId;
use person_core::audit::AuditEntry;
use person_core::ports::{AuditLog, AuditRecord, StoreError};

use crate::DynamoDbStore;
use crate::items::{self, PK, SK, person_audit_sk, person_pk, s};
use crate::queries;
use crate::tx::{MAX_TRANSACTION_ITEMS, Role, Tx, TxError};

#[async_trait]
impl AuditLog for DynamoDbStore {
    async fn append(&self, entry: AuditEntry) -> Result<(), StoreError> {
        let position = self.next_audit_position().await?;
        let items = items::audit_items(position, &entry)?;
        for chunk in items.chunks(MAX_TRANSACTION_ITEMS) {
            let mut tx = Tx::new(&queries::AUDIT_APPEND, &self.table);
            for item in chunk {
                tx.put(Role::Plain, item.clone(), None)?;
            }
            match self.transact(tx).await {
                Ok(()) => {}
                Err(TxError::Store(e)) => return Err(e),
                // Unconditional puts are cancelled only by conflicts or throttling.
                Err(TxError::Cancelled(cancelled)) => return Err(cancelled.unexpected()),
            }
        }
        Ok(())
    }

    async fn entries_for_person(
        &self,
        person: PersonId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        if limit == 0 || after == u64::MAX {
            return Ok(Vec::new());
        }
        self.query(
            &queries::AUDIT_FOR_PERSON,
            "#pk = :pk AND #sk BETWEEN :from AND :to",
            &[("#pk", PK), ("#sk", SK)],
            vec![
                (":pk", s(person_pk(person))),
                (":from", s(person_audit_sk(after + 1))),
                (":to", s(person_audit_sk(u64::MAX))),
            ],
            None,
            Some(usize::try_from(limit).unwrap_or(usize::MAX)),
        )
        .await?
        .iter()
        .map(items::audit_record)
        .collect()
    }
}
