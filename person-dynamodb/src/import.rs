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
//! What the store already holds of the batch (its persons, the claims of its kept `personRef`s, its references and
//! dedup keys) is read first (consistent `BatchGetItem`s), and the batch is then decided in order exactly as the
//! in-memory reference does, each record checked against the store and the records before it. The persons to
//! store then hold no id, `personRef`, reference or dedup key in common, so their transactions are independent and
//! a few are sent at once. Each transaction's conditions check again what was read: a concurrent writer that took
//! a reference (say) in between makes that person's outcome `ReferenceTaken` from the cancellation, never a second
//! holder. (A record refused because of an earlier record of the batch that such a writer then stopped is reported
//! against that record; running the batch again decides it anew.)
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

use std::collections::{BTreeSet, HashMap, HashSet};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use futures::stream::{self, StreamExt, TryStreamExt};
use person_core::audit::AuditEntry;
use person_core::matching::{KeySource, SearchKey};
use person_core::ports::{ImportOutcome, ImportRepository, ImportWrite, StoreError};
use person_core::{Person, PersonId, PersonRef};

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

/// What the store held of a batch when it was read, and (as the batch is decided) what its earlier records take.
#[derive(Default)]
struct Taken {
    /// Partition keys of the persons stored (`PERSON#<id>`).
    persons: HashSet<String>,
    /// Holder of each claim, reference and dedup item, by partition key (their prefixes never collide).
    holders: HashMap<String, PersonId>,
}

/// A record of the batch the store is to write.
struct Planned {
    person: Person,
    assign_ref: bool,
    /// Its `person` search keys (none unless live).
    keys: Vec<SearchKey>,
    /// The dedup key it takes (none unless live and free).
    dedup_key: Option<String>,
    /// The live person holding its dedup key, when it is stored without it.
    duplicate_of: Option<PersonId>,
}

/// What the batch's order decides for one record.
enum Plan {
    Refused(ImportOutcome),
    Store(Box<Planned>),
}

/// The keys of every item the batch's decisions depend on, each once (`BatchGetItem` refuses repeats).
fn keys_to_read(batch: &[ImportWrite]) -> Vec<Item> {
    let mut keys: BTreeSet<(String, &'static str)> = BTreeSet::new();
    for write in batch {
        let person = &write.person;
        keys.insert((person_pk(person.id), PERSON_SK));
        if !write.assign_ref {
            keys.insert((person_ref_pk(person.person_ref), PERSON_REF_SK));
        }
        if person.status.is_active() {
            keys.extend(person.references.iter().map(|reference| (reference_pk(reference), REFERENCE_SK)));
            if let Some(dedup) = &write.dedup_key {
                keys.insert((dedup_pk(dedup), DEDUP_SK));
            }
        }
    }
    keys.into_iter().map(|(pk, sk)| key(pk, sk)).collect()
}

/// Decides the batch in order, as the in-memory reference does: an id stored (or stored earlier in the batch) →
/// `AlreadyStored`; a kept `personRef` another person has → `PersonRefTaken`; a reference another live person
/// holds → `ReferenceTaken`; otherwise stored, without its dedup key when another live person holds it.
fn plan(batch: Vec<ImportWrite>, mut taken: Taken) -> Vec<Plan> {
    let mut plans = Vec::with_capacity(batch.len());
    for write in batch {
        let ImportWrite { person, assign_ref, search_keys, dedup_key } = write;
        let pk = person_pk(person.id);
        if taken.persons.contains(&pk) {
            plans.push(Plan::Refused(ImportOutcome::AlreadyStored));
            continue;
        }
        let ref_pk = person_ref_pk(person.person_ref);
        if !assign_ref && let Some(owner) = taken.holders.get(&ref_pk) {
            plans.push(Plan::Refused(ImportOutcome::PersonRefTaken { owner: *owner }));
            continue;
        }
        let live = person.status.is_active();
        let held_reference = live
            .then(|| {
                person.references.iter().find_map(|reference| {
                    taken.holders.get(&reference_pk(reference)).map(|owner| (reference.clone(), *owner))
                })
            })
            .flatten();
        if let Some((reference, owner)) = held_reference {
            plans.push(Plan::Refused(ImportOutcome::ReferenceTaken { reference, owner }));
            continue;
        }
        taken.persons.insert(pk);
        if !assign_ref {
            taken.holders.insert(ref_pk, person.id);
        }
        let mut duplicate_of = None;
        let mut dedup = None;
        if live {
            for reference in &person.references {
                taken.holders.insert(reference_pk(reference), person.id);
            }
            if let Some(key) = dedup_key {
                match taken.holders.get(&dedup_pk(&key)) {
                    Some(holder) => duplicate_of = Some(*holder),
                    None => {
                        taken.holders.insert(dedup_pk(&key), person.id);
                        dedup = Some(key);
                    }
                }
            }
        }
        let keys = if live { distinct(&search_keys) } else { Vec::new() };
        plans.push(Plan::Store(Box::new(Planned { person, assign_ref, keys, dedup_key: dedup, duplicate_of })));
    }
    plans
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
    /// What the store holds of the batch: its persons, and the holders of its kept `personRef`s, references and
    /// dedup keys (consistent reads, 100 keys a call, a few calls at once).
    async fn read_taken(&self, batch: &[ImportWrite]) -> Result<Taken, StoreError> {
        let chunks: Vec<Vec<Item>> = keys_to_read(batch).chunks(BATCH_GET_LIMIT).map(<[Item]>::to_vec).collect();
        let found: Vec<HashMap<(String, String), Item>> = stream::iter(chunks)
            .map(|chunk| self.batch_get(&queries::IMPORT_READ, chunk, Some(("#pk, #sk, #holder", READ_NAMES))))
            .buffer_unordered(READS_IN_FLIGHT)
            .try_collect()
            .await?;
        let mut taken = Taken::default();
        for ((pk, sk), item) in found.into_iter().flatten() {
            if sk == PERSON_SK {
                taken.persons.insert(pk);
            } else {
                let holder = items::holder_of(&item, "claim, reference or dedup item")?;
                taken.holders.insert(pk, holder);
            }
        }
        Ok(taken)
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
    async fn store_planned(&self, planned: Planned) -> Result<ImportOutcome, StoreError> {
        let Planned { person, keys, mut dedup_key, mut duplicate_of, .. } = planned;
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
        let taken = self.read_taken(&batch).await?;
        let largest_kept = batch.iter().filter(|w| !w.assign_ref).map(|w| w.person.person_ref.0).max();
        let ids: Vec<PersonId> = batch.iter().map(|w| w.person.id).collect();
        let mut plans = plan(batch, taken);

        let to_assign = plans.iter().filter(|p| matches!(p, Plan::Store(planned) if planned.assign_ref)).count();
        let mut next = self.reserve_person_refs(largest_kept, to_assign).await?;
        for plan in &mut plans {
            if let Plan::Store(planned) = plan
                && planned.assign_ref
            {
                planned.person.person_ref = PersonRef(next);
                next = next.checked_add(1).ok_or_else(overflow)?;
            }
        }

        let outcomes: Vec<ImportOutcome> = stream::iter(plans)
            .map(|plan| async move {
                match plan {
                    Plan::Refused(outcome) => Ok(outcome),
                    Plan::Store(planned) => self.store_planned(*planned).await,
                }
            })
            .buffered(WRITES_IN_FLIGHT)
            .try_collect()
            .await?;

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
}
