//! [`DocumentRepository`] for [`DynamoDbStore`]: equality and extended documents as items `PERSON#<id>` /
//! `DOC#<kind>`, each with its own `version`.
//!
//! A write is one `TransactWriteItems`: the document put or deleted with a condition on its version (or on its
//! absence for a first write), the person's equality keys replaced when the write carries them (the
//! equality-keys item guarded by its revision, the postings added and removed), and the audit entry. A failed
//! document condition answers `VersionConflict { current }` from the item's old values; a lost race on the
//! equality-keys revision is retried.

use async_trait::async_trait;
use person_core::PersonId;
use person_core::documents::{DocumentKind, DocumentWrite, StoredDocument};
use person_core::ports::{DocumentRepository, DocumentWriteError, StoreError};

use crate::DynamoDbStore;
use crate::error::DynamoStoreError;
use crate::items::{self, DOC_PREFIX, PK, SK, document_attr, document_sk, key, person_pk, s};
use crate::queries;
use crate::repository::append_audit;
use crate::search::replace_equality_keys;
use crate::tx::{Backoff, Condition, Role, Slot, Tx, TxError};

/// The condition a document write checks: the stored version is `expected` (`None`: no document is stored).
fn expecting(expected: Option<u64>) -> Condition {
    match expected {
        Some(version) => Condition::new("#version = :expected")
            .name("#version", document_attr::VERSION)
            .value(":expected", items::n(version)),
        None => Condition::absent(),
    }
}

#[async_trait]
impl DocumentRepository for DynamoDbStore {
    async fn get_document(&self, person: PersonId, kind: &DocumentKind) -> Result<Option<StoredDocument>, StoreError> {
        self.get_item(&queries::DOCUMENT_GET, key(person_pk(person), document_sk(kind)))
            .await?
            .map(|item| items::stored_document(&item))
            .transpose()
    }

    async fn list_documents(&self, person: PersonId) -> Result<Vec<StoredDocument>, StoreError> {
        self.query(
            &queries::DOCUMENT_LIST,
            "#pk = :pk AND begins_with(#sk, :prefix)",
            &[("#pk", PK), ("#sk", SK)],
            vec![(":pk", s(person_pk(person))), (":prefix", s(DOC_PREFIX))],
            None,
            None,
        )
        .await?
        .iter()
        .map(items::stored_document)
        .collect()
    }

    async fn write_document(&self, write: DocumentWrite) -> Result<(), DocumentWriteError> {
        if let Some(document) = &write.new
            && (document.person_id != write.person_id || document.kind != write.kind)
        {
            return Err(StoreError::from(DynamoStoreError::MismatchedDocumentWrite).into());
        }
        let audit_position = self.next_audit_position().await?;
        let mut backoff = Backoff::new(&queries::DOCUMENT_WRITE, &self.options);
        loop {
            let stored_keys = match &write.search_keys {
                Some(_) => Some(self.read_equality_keys(write.person_id).await?),
                None => None,
            };
            let mut tx = Tx::new(&queries::DOCUMENT_WRITE, &self.table);
            let document_key = key(person_pk(write.person_id), document_sk(&write.kind));
            let condition = expecting(write.expected_version);
            match (&write.new, write.expected_version) {
                (Some(document), _) => tx.put(Role::Document, items::document_item(document)?, Some(condition))?,
                (None, Some(_)) => tx.delete(Role::Document, document_key, Some(condition))?,
                // Deleting a document expected not to exist: nothing to change, as long as none does.
                (None, None) => tx.check(Role::Document, document_key, condition)?,
            }
            if let (Some(keys), Some(stored)) = (&write.search_keys, &stored_keys) {
                replace_equality_keys(&mut tx, write.person_id, Slot::Subject, stored, keys)?;
            }
            append_audit(&mut tx, audit_position, &write.audit)?;

            match self.transact(tx).await {
                Ok(()) => return Ok(()),
                Err(TxError::Store(e)) => return Err(e.into()),
                Err(TxError::Cancelled(cancelled)) => {
                    if let Some(reason) = cancelled.failed(Role::Document) {
                        let current = items::version_in(reason.old.as_ref(), document_attr::VERSION, "document")?;
                        return Err(DocumentWriteError::VersionConflict { current });
                    }
                    if !cancelled.is_lost_race() {
                        return Err(cancelled.unexpected().into());
                    }
                    backoff.wait().await?;
                }
            }
        }
    }
}
