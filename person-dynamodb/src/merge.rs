//! [`PersonRepository::merge`](person_core::PersonRepository::merge) for [`DynamoDbStore`]: one
//! `TransactWriteItems` changing two persons.
//!
//! The transaction holds: both person items, each conditioned on its expected `versionNumber`; each moved
//! document deleted from the duplicate at its expected version and put for the survivor only if it has none of
//! that kind; the survivor's dedup item (free, or held by either person: the duplicate releases its key in the
//! same transaction, so the survivor may take it) and the release of the old ones; the reference items the
//! survivor takes (free, or held by either person: the duplicate's move over) and those released; the survivor's
//! postings replaced, the duplicate's all dropped (their equality keys guarded by revision); the feed counter and
//! the one event; both history entries; the audit entry. The failed item's role decides the error, in the port's
//! order: survivor, duplicate, documents, dedup key, reference.

use person_core::ports::{MergeWrite, MergeWriteError, StoreError};

use crate::DynamoDbStore;
use crate::error::DynamoStoreError;
use crate::items::{self, PersonItem, distinct, document_sk, key, person_attr, person_pk};
use crate::queries;
use crate::references::{ReferenceChanges, Refusal};
use crate::repository::{append_audit, append_event, at_version, live_dedup_key, rewrite_keys};
use crate::search::{drop_all_keys, move_dedup, replace_equality_keys};
use crate::tx::{Backoff, Condition, Role, Slot, Tx, TxError};

impl DynamoDbStore {
    pub(crate) async fn merge_persons(&self, write: &MergeWrite) -> Result<(), MergeWriteError> {
        let (survivor_id, duplicate_id) = (write.survivor.id, write.duplicate.id);
        // Storing a document under another person or kind than it names would misfile personal data.
        if write.documents.iter().any(|m| m.document.person_id != survivor_id || m.document.kind != m.kind) {
            return Err(StoreError::from(DynamoStoreError::MismatchedDocumentWrite).into());
        }
        let survivor_live = write.survivor.status.is_active();
        let mut audit_position = None;
        let mut backoff = Backoff::new(&queries::PERSON_MERGE, &self.options);
        loop {
            let survivor = self.read_person(survivor_id).await?;
            let current = survivor.as_ref().map(|s| s.person.version_number);
            let Some(survivor) = survivor.filter(|_| current == Some(write.survivor_expected_version)) else {
                return Err(MergeWriteError::SurvivorConflict { current });
            };
            let duplicate = self.read_person(duplicate_id).await?;
            let current = duplicate.as_ref().map(|d| d.person.version_number);
            let Some(duplicate) = duplicate.filter(|_| current == Some(write.duplicate_expected_version)) else {
                return Err(MergeWriteError::DuplicateConflict { current });
            };
            let survivor_equality = if !survivor_live || write.survivor_equality_keys.is_some() {
                Some(self.read_equality_keys(survivor_id).await?)
            } else {
                None
            };
            let duplicate_equality = self.read_equality_keys(duplicate_id).await?;
            let position = match audit_position {
                Some(position) => position,
                None => *audit_position.insert(self.next_audit_position().await?),
            };

            // The survivor takes the duplicate's references (and any new ones) and releases those it drops: one
            // operation per reference item, since a transaction touches an item once.
            let references =
                ReferenceChanges::between(Some(&survivor.person), Some(&duplicate.person), &write.survivor);
            let survivor_dedup = live_dedup_key(&write.survivor, write.survivor_dedup_key.as_deref());
            let survivor_keys = if survivor_live { distinct(&write.survivor_keys) } else { Vec::new() };
            let outcome = self
                .transact_with_event(&queries::PERSON_MERGE, false, |counter| {
                    let mut tx = Tx::new(&queries::PERSON_MERGE, &self.table);
                    let item = PersonItem::to_item(&write.survivor, &survivor_keys, survivor_dedup)?;
                    tx.put(Role::Person(Slot::Survivor), item, Some(at_version(write.survivor_expected_version)))?;
                    let item = PersonItem::to_item(&write.duplicate, &[], None)?;
                    tx.put(Role::Person(Slot::Duplicate), item, Some(at_version(write.duplicate_expected_version)))?;

                    for moved in &write.documents {
                        let expected = Condition::new("#version = :expected")
                            .name("#version", items::document_attr::VERSION)
                            .value(":expected", items::n(moved.expected_version));
                        tx.delete(
                            Role::Document,
                            key(person_pk(duplicate_id), document_sk(&moved.kind)),
                            Some(expected),
                        )?;
                        tx.put(
                            Role::DocumentTarget,
                            items::document_item(&moved.document)?,
                            Some(Condition::absent()),
                        )?;
                    }

                    let stored_dedup = survivor.dedup_key.as_deref();
                    let taken = if survivor_dedup == stored_dedup { None } else { survivor_dedup };
                    let released =
                        [stored_dedup.filter(|old| Some(*old) != survivor_dedup), duplicate.dedup_key.as_deref()];
                    move_dedup(&mut tx, survivor_id, &[survivor_id, duplicate_id], taken, &released)?;
                    references.write(&mut tx, survivor_id, &[survivor_id, duplicate_id])?;

                    rewrite_keys(
                        &mut tx,
                        Slot::Survivor,
                        &write.survivor,
                        &survivor,
                        &survivor_keys,
                        survivor_equality.as_ref(),
                    )?;
                    if survivor_live
                        && let (Some(keys), Some(stored)) = (&write.survivor_equality_keys, &survivor_equality)
                    {
                        replace_equality_keys(&mut tx, survivor_id, Slot::Survivor, stored, keys)?;
                    }
                    drop_all_keys(&mut tx, duplicate_id, Slot::Duplicate, &duplicate.search_keys, &duplicate_equality)?;

                    append_event(&mut tx, counter, None, &write.event)?;
                    tx.put(Role::Plain, items::history_item(&write.duplicate_history)?, None)?;
                    tx.put(Role::Plain, items::history_item(&write.survivor_history)?, None)?;
                    append_audit(&mut tx, position, &write.audit)?;
                    Ok((tx, ()))
                })
                .await;
            match outcome {
                Ok(()) => return Ok(()),
                Err(TxError::Store(e)) => return Err(e.into()),
                Err(TxError::Cancelled(cancelled)) => {
                    if let Some(reason) = cancelled.failed(Role::Person(Slot::Survivor)) {
                        let current = items::version_in(reason.old.as_ref(), person_attr::VERSION, "person")?;
                        return Err(MergeWriteError::SurvivorConflict { current });
                    }
                    if let Some(reason) = cancelled.failed(Role::Person(Slot::Duplicate)) {
                        let current = items::version_in(reason.old.as_ref(), person_attr::VERSION, "person")?;
                        return Err(MergeWriteError::DuplicateConflict { current });
                    }
                    if cancelled.failed_where(|r| matches!(r, Role::Document | Role::DocumentTarget)).is_some() {
                        return Err(MergeWriteError::DocumentConflict);
                    }
                    if let Some(reason) = cancelled.failed(Role::Dedup) {
                        let existing = items::holder_in(reason.old.as_ref())?;
                        return Err(MergeWriteError::DuplicatePerson { existing });
                    }
                    match self.refused_reference(&references, &cancelled, &[survivor_id, duplicate_id]).await? {
                        Some(Refusal::Taken { reference, owner }) => {
                            return Err(MergeWriteError::ReferenceTaken { reference, owner });
                        }
                        Some(Refusal::Freed) => {
                            backoff.wait().await?;
                            continue;
                        }
                        None => {}
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
