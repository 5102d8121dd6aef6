//! [`ImportRepository`] for [`DynamoDbStore`]: bulk loading of persons that keep their ids, `personRef`s, versions
//! and timestamps (a migration from another system).
//!
//! # Each person atomically, not the batch
//!
//! DynamoDB cannot write a batch of 1,000 persons atomically (a `TransactWriteItems` takes 100 items), so each
//! person is ONE transaction of its own: the person item, the claim item of its `personRef`, its reference items
//! and dedup item, each put only if absent, and its postings. A store failure part-way through a batch leaves some
//! of its persons stored, each whole; running the batch again reports those as `AlreadyStored` and stores the
//! rest. The batch's audit entry is appended after its persons, naming those stored: persons stored before such a
//! failure are named by no entry.
//!
//! # Batch order
//!
//! What the store already holds of the batch (its persons and its merged persons' survivors, the claims of its kept
//! `personRef`s, its references and dedup keys) is read first (consistent `BatchGetItem`s), and the batch is then
//! decided in order by the rules every store applies ([`person_core::import_plan`]), each record checked against
//! the store and the records before it. The persons to
//! store then hold no id, `personRef`, reference or dedup key in common, so their transactions are independent and
//! a few are sent at once. Each transaction's conditions check again what was read: a concurrent writer that took
//! a reference (say) in between makes that person's outcome `ReferenceTaken` from the cancellation, never a second
//! holder. (A record refused because of an earlier record of the batch that such a writer then stopped is reported
//! against that record; running the batch again decides it anew.)
//!
//! A merged person whose survivor is accepted in the same batch is written in a later wave than its survivor (the
//! batch's persons are written in waves, one after the other), so it never points at a person not yet stored; if
//! a concurrent writer made the store refuse the survivor after all, the merged person is `SurvivorMissing`.
//!
//! # `personRef`
//!
//! The sequence lives on the feed counter (`COUNTER`/`FEED`, see [`crate::repository`]). It is raised to the
//! largest `personRef` the batch keeps (a conditional `UpdateItem` that never lowers it), then the numbers of the
//! records without one are allocated with one `ADD`. A create's counter update is conditioned on the `personRef`
//! it read as well as the position, so a create that read the counter before the raise is cancelled and rebuilt
//! instead of setting it back; creates therefore never take an imported number.
//!
//! The counter alone cannot say who holds a number, so every person written with a `personRef` (a create, an
//! import) also puts a claim item `PERSONREF#<number>` / `PERSONREF` naming it, if absent, in the same
//! transaction. It is never deleted (a tombstone keeps its number), which makes `personRef`s unique across every
//! state and lets an import name the holder of a kept number (`PersonRefTaken`) with one read. Persons created
//! before claim items existed have none: a kept number equal to one of theirs is not detected.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use futures::stream::{self, StreamExt, TryStreamExt};
use person_core::audit::AuditEntry;
use person_core::import_plan::{AcceptedImport, ImportHolders, ImportPlan};
use person_core::matching::KeySource;
use person_core::ports::{ImportOutcome, ImportRepository, ImportWrite, StoreError};
use person_core::reference::CrossReference;
use person_core::{PersonId, PersonRef, PersonStatus};

use crate::DynamoDbStore;
use crate::error::{DynamoStoreError, failed, malformed};
use crate::items::{
    self, COUNTER_PK, DEDUP_SK, FEED_COUNTER_SK, Item, PERSON_REF_SK, PERSON_SK, PK, PersonItem, REFERENCE_SK, SK,
    dedup_item, dedup_pk, distinct, key, n, person_attr, person_pk, person_ref_item, person_ref_pk, reference_pk,
};
use crate::queries;
use crate::references::{ReferenceChanges, Refusal};
use crate::repository::is_condition_failure;
use crate::search::{BATCH_GET_LIMIT, replace_postings};
use crate::tx::{Backoff, Condition, MAX_TRANSACTION_ITEMS, Role, Slot, Tx, TxError};

/// Persons of a batch written at once (each its own transaction).
const WRITES_IN_FLIGHT: usize = 8;

/// `BatchGetItem` calls of the first read sent at once.
const READS_IN_FLIGHT: usize = 4;

/// The most bytes of audit items put in one transaction. DynamoDB takes 4 MB per `TransactWriteItems`, and every
/// item of an entry holds the whole entry: one naming 1,000 persons is some 40 KB, so 100 of them would not fit.
const AUDIT_TRANSACTION_BYTES: usize = 3_500_000;

/// The attributes the first read projects.
const READ_NAMES: &[(&str, &str)] = &[("#pk", PK), ("#sk", SK), ("#holder", person_attr::PERSON_ID)];

/// What a record of the batch is looked up by: which partition key answers which question.
enum Asked {
    Person(PersonId),
    PersonRef(i64),
    Reference(CrossReference),
    Dedup(String),
}

/// The items the batch's decisions depend on, by partition key (`BatchGetItem` refuses repeats; the prefixes of
/// the four kinds never collide).
fn keys_to_read(batch: &[ImportWrite]) -> HashMap<String, (&'static str, Asked)> {
    let mut asked = HashMap::new();
    for id in ImportHolders::ids_to_read(batch) {
        asked.insert(person_pk(id), (PERSON_SK, Asked::Person(id)));
    }
    for number in ImportHolders::kept_person_refs(batch) {
        asked.insert(person_ref_pk(PersonRef(number)), (PERSON_REF_SK, Asked::PersonRef(number)));
    }
    for reference in ImportHolders::live_references(batch) {
        asked.insert(reference_pk(reference), (REFERENCE_SK, Asked::Reference(reference.clone())));
    }
    for dedup in ImportHolders::live_dedup_keys(batch) {
        asked.insert(dedup_pk(dedup), (DEDUP_SK, Asked::Dedup(dedup.to_owned())));
    }
    asked
}

/// The wave each accepted record is written in: 0, unless it is a merged person whose survivor is accepted in the
/// same batch, then one after its survivor's wave. Waves are written one after the other, so a survivor is always
/// stored before the persons merged into it.
fn waves(plan: &ImportPlan) -> Vec<usize> {
    let position_of: HashMap<PersonId, usize> =
        plan.accepted.iter().enumerate().map(|(index, a)| (a.person.id, index)).collect();
    let mut wave: Vec<usize> = Vec::with_capacity(plan.accepted.len());
    for accepted in &plan.accepted {
        // The plan accepts a merged person only after its survivor, so the survivor's wave is known.
        let after = match accepted.person.status {
            PersonStatus::Merged { into } => position_of.get(&into).and_then(|&i| wave.get(i)).map(|w| w + 1),
            PersonStatus::Active | PersonStatus::Deleted => None,
        };
        wave.push(after.unwrap_or(0));
    }
    wave
}

/// The approximate size DynamoDB counts for an item (names and values), for sizing transactions.
fn approximate_size(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| {
            name.len()
                + match value {
                    AttributeValue::S(text) | AttributeValue::N(text) => text.len(),
                    _ => 8,
                }
        })
        .sum()
}

impl DynamoDbStore {
    /// What the store holds of the batch: its persons (and its merged persons' survivors), and the holders of its
    /// kept `personRef`s, references and dedup keys (consistent reads, 100 keys a call, a few calls at once).
    async fn read_holders(&self, batch: &[ImportWrite]) -> Result<ImportHolders, StoreError> {
        let mut asked = keys_to_read(batch);
        let keys: Vec<Item> = asked.iter().map(|(pk, (sk, _))| key(pk.clone(), *sk)).collect();
        let chunks: Vec<Vec<Item>> = keys.chunks(BATCH_GET_LIMIT).map(<[Item]>::to_vec).collect();
        let found: Vec<HashMap<(String, String), Item>> = stream::iter(chunks)
            .map(|chunk| self.batch_get(&queries::IMPORT_READ, chunk, Some(("#pk, #sk, #holder", READ_NAMES))))
            .buffer_unordered(READS_IN_FLIGHT)
            .try_collect()
            .await?;
        let mut held = ImportHolders::default();
        for ((pk, _), item) in found.into_iter().flatten() {
            let Some((_, question)) = asked.remove(&pk) else { continue };
            let holder = || items::holder_of(&item, "claim, reference or dedup item");
            match question {
                Asked::Person(id) => {
                    held.ids.insert(id);
                }
                Asked::PersonRef(number) => {
                    held.person_refs.insert(number, holder()?);
                }
                Asked::Reference(reference) => {
                    held.references.insert(reference, holder()?);
                }
                Asked::Dedup(dedup) => {
                    held.dedup_keys.insert(dedup, holder()?);
                }
            }
        }
        Ok(held)
    }

    /// Raises the `personRef` sequence to `largest_kept` (never lowering it), then allocates `to_assign` numbers
    /// and returns the first. Holds this process's turn on the feed counter meanwhile, and drops its cached value:
    /// creates of other processes that read the counter before are cancelled by their `personRef` condition.
    async fn reserve_person_refs(&self, largest_kept: Option<i64>, to_assign: usize) -> Result<i64, StoreError> {
        let mut cached = self.feed.lock().await;
        *cached = None;
        let counter = key(COUNTER_PK, FEED_COUNTER_SK);
        if let Some(largest) = largest_kept.filter(|largest| *largest > 0) {
            let operation = &queries::IMPORT_RAISE_PERSON_REF;
            let request = self
                .client()?
                .update_item()
                .table_name(&self.table)
                .set_key(Some(counter.clone()))
                .update_expression("SET #ref = :largest")
                .condition_expression("attribute_not_exists(#ref) OR #ref < :largest")
                .expression_attribute_names("#ref", person_attr::PERSON_REF)
                .expression_attribute_values(":largest", n(largest))
                .send();
            match self.options.queries.run_counted(operation, request, |_| Some(1)).await {
                // A failed condition: the sequence is already at least there.
                Ok(_) => {}
                Err(error) if is_condition_failure(&error) => {}
                Err(error) => return Err(failed(operation.name)(error)),
            }
        }
        if to_assign == 0 {
            return Ok(0);
        }
        let operation = &queries::IMPORT_ALLOCATE_PERSON_REFS;
        let request = self
            .client()?
            .update_item()
            .table_name(&self.table)
            .set_key(Some(counter))
            .update_expression("ADD #ref :count")
            .expression_attribute_names("#ref", person_attr::PERSON_REF)
            .expression_attribute_values(":count", n(to_assign))
            .return_values(ReturnValue::UpdatedNew)
            .send();
        let output =
            self.options.queries.run_counted(operation, request, |_| Some(1)).await.map_err(failed(operation.name))?;
        let last = items::get_u64(&output.attributes.unwrap_or_default(), person_attr::PERSON_REF, "counter")?;
        let count = u64::try_from(to_assign).map_err(|_| overflow())?;
        last.checked_sub(count)
            .and_then(|before| i64::try_from(before).ok())
            .and_then(|before| before.checked_add(1))
            .ok_or_else(overflow)
    }

    /// Stores one decided record in its own transaction, conditioned on what was read: the outcome, from the
    /// cancellation when a concurrent writer took something since (a dedup key taken meanwhile: stored without it).
    async fn store_planned(&self, planned: AcceptedImport) -> Result<ImportOutcome, StoreError> {
        let AcceptedImport { person, search_keys, mut dedup_key, mut duplicate_of, .. } = planned;
        let keys = distinct(&search_keys);
        let id = person.id;
        let references = ReferenceChanges::between(None, None, &person);
        let mut backoff = Backoff::new(&queries::IMPORT_PERSON, &self.options);
        loop {
            let mut tx = Tx::new(&queries::IMPORT_PERSON, &self.table);
            let item = PersonItem::to_item(&person, &keys, dedup_key.as_deref())?;
            tx.put(Role::Person(Slot::Subject), item, Some(Condition::absent()))?;
            tx.put(Role::PersonRefClaim, person_ref_item(person.person_ref, id), Some(Condition::absent()))?;
            references.write(&mut tx, id, &[])?;
            if let Some(dedup) = &dedup_key {
                tx.put(Role::Dedup, dedup_item(dedup, id), Some(Condition::absent()))?;
            }
            replace_postings(&mut tx, id, KeySource::Person, &[], &keys)?;
            let cancelled = match self.transact(tx).await {
                Ok(()) => return Ok(ImportOutcome::Imported { person_ref: person.person_ref, duplicate_of }),
                Err(TxError::Store(error)) => return Err(error),
                Err(TxError::Cancelled(cancelled)) => cancelled,
            };
            // In the in-memory reference's order of checks.
            if cancelled.failed(Role::Person(Slot::Subject)).is_some() {
                return Ok(ImportOutcome::AlreadyStored);
            }
            if let Some(reason) = cancelled.failed(Role::PersonRefClaim) {
                let old = reason.old.as_ref().ok_or_else(|| malformed("personRef claim", person_attr::PERSON_ID))?;
                return Ok(ImportOutcome::PersonRefTaken { owner: items::holder_of(old, "personRef claim")? });
            }
            match self.refused_reference(&references, &cancelled, &[]).await? {
                Some(Refusal::Taken { reference, owner }) => {
                    return Ok(ImportOutcome::ReferenceTaken { reference, owner });
                }
                Some(Refusal::Freed) => {
                    backoff.wait().await?;
                    continue;
                }
                None => {}
            }
            if let Some(reason) = cancelled.failed(Role::Dedup) {
                duplicate_of = Some(items::holder_in(reason.old.as_ref())?);
                dedup_key = None;
                continue;
            }
            if !cancelled.is_lost_race() {
                return Err(cancelled.unexpected());
            }
            backoff.wait().await?;
        }
    }

    /// Appends the batch's audit entry: the log item first, then one index item per person, in transactions of at
    /// most 100 items and [`AUDIT_TRANSACTION_BYTES`].
    async fn append_import_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let position = self.next_audit_position().await?;
        let mut chunks: Vec<Vec<Item>> = Vec::new();
        let mut bytes = 0;
        for item in items::audit_items(position, entry)? {
            let size = approximate_size(&item);
            match chunks.last_mut() {
                Some(chunk) if chunk.len() < MAX_TRANSACTION_ITEMS && bytes + size <= AUDIT_TRANSACTION_BYTES => {
                    bytes += size;
                    chunk.push(item);
                }
                _ => {
                    bytes = size;
                    chunks.push(vec![item]);
                }
            }
        }
        for chunk in chunks {
            let mut tx = Tx::new(&queries::AUDIT_APPEND, &self.table);
            for item in chunk {
                tx.put(Role::Plain, item, None)?;
            }
            match self.transact(tx).await {
                Ok(()) => {}
                Err(TxError::Store(error)) => return Err(error),
                // Unconditional puts are cancelled only by conflicts or throttling.
                Err(TxError::Cancelled(cancelled)) => return Err(cancelled.unexpected()),
            }
        }
        Ok(())
    }
}

fn overflow() -> StoreError {
    DynamoStoreError::MalformedItem { what: "counter", attribute: person_attr::PERSON_REF }.into()
}

#[async_trait]
impl ImportRepository for DynamoDbStore {
    async fn import_persons(
        &self,
        batch: Vec<ImportWrite>,
        mut audit: AuditEntry,
    ) -> Result<Vec<ImportOutcome>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let held = self.read_holders(&batch).await?;
        let ids: Vec<PersonId> = batch.iter().map(|w| w.person.id).collect();
        let mut plan = ImportPlan::decide(batch, held);
        let largest_kept = Some(plan.largest_kept).filter(|largest| *largest > 0);
        let to_assign = usize::try_from(plan.to_assign).map_err(|_| overflow())?;
        let first = self.reserve_person_refs(largest_kept, to_assign).await?;
        plan.assign_person_refs(first.saturating_add(plan.to_assign).saturating_sub(1));

        let waves = waves(&plan);
        let mut outcomes = plan.outcomes;
        let mut pending: Vec<(usize, usize, AcceptedImport)> =
            plan.accepted.into_iter().zip(waves).map(|(accepted, wave)| (wave, accepted.position, accepted)).collect();
        // Accepted persons of earlier waves that a concurrent writer made the store refuse after all.
        let mut refused: HashSet<PersonId> = HashSet::new();
        let mut wave = 0;
        while !pending.is_empty() {
            let (now, later): (Vec<_>, Vec<_>) = pending.into_iter().partition(|(w, ..)| *w == wave);
            pending = later;
            let refused_before = &refused;
            let written: Vec<(usize, PersonId, ImportOutcome)> = stream::iter(now)
                .map(|(_, position, accepted)| async move {
                    let id = accepted.person.id;
                    // A survivor written in an earlier wave may have been refused by a concurrent writer since.
                    if let PersonStatus::Merged { into } = accepted.person.status
                        && refused_before.contains(&into)
                    {
                        return Ok((position, id, ImportOutcome::SurvivorMissing { survivor: into }));
                    }
                    self.store_planned(accepted).await.map(|outcome| (position, id, outcome))
                })
                .buffered(WRITES_IN_FLIGHT)
                .try_collect()
                .await?;
            for (position, id, outcome) in written {
                if !matches!(outcome, ImportOutcome::Imported { .. }) {
                    refused.insert(id);
                }
                if let Some(slot) = outcomes.get_mut(position) {
                    *slot = outcome;
                }
            }
            wave += 1;
        }

        audit.person_ids = ids
            .into_iter()
            .zip(&outcomes)
            .filter(|(_, outcome)| matches!(outcome, ImportOutcome::Imported { .. }))
            .map(|(id, _)| id)
            .collect();
        if !audit.person_ids.is_empty() {
            self.append_import_audit(&audit).await?;
        }
        Ok(outcomes)
    }

    /// Postings are written with each imported person: nothing waits.
    async fn finish_import(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
}
