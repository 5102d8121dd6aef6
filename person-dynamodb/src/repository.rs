//! [`PersonRepository`] for [`DynamoDbStore`]: every write is ONE `TransactWriteItems` (the change, its event at
//! the next feed position, its history entry, its postings, dedup and reference items and audit entry); every
//! read is a consistent `GetItem`, `BatchGetItem` or single-partition `Query`.
//!
//! A write first reads what it must replace (the stored person with its keys and references, the feed counter)
//! and then commits a transaction whose conditions check that nothing it read has changed: the person's
//! `versionNumber`, the counter's position. Errors the caller must act on come from the item whose condition
//! failed: the person item (`NotFound`, `VersionConflict { current }` from its old values), the idempotency
//! record (`IdempotencyKeyTaken`), the dedup item (`DuplicatePerson { existing }` from its holder), a reference
//! item (`ReferenceTaken { reference, owner }` from its holder, see [`crate::references`]). A failure of the
//! counter alone means another writer took the position first: the write re-reads and retries
//! ([`crate::tx::Backoff`]).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use person_core::audit::AuditEntry;
use person_core::event::{FeedEntry, HistoryEntry, PersonEvent};
use person_core::matching::{KeySource, SearchKey};
use person_core::ports::{
    Candidate, IdempotencyRecord, InsertError, MergeWrite, MergeWriteError, NewPersonWrite, PersonRepository,
    PersonWrite, StoreError, UpdateError,
};
use person_core::reference::CrossReference;
use person_core::{Person, PersonId, PersonRef};

use crate::DynamoDbStore;
use crate::error::{DynamoStoreError, failed};
use crate::items::{
    self, COUNTER_PK, EqualityKeys, FEED_COUNTER_SK, FEED_PK, HISTORY_PREFIX, IDEMPOTENCY_SK, Item, PERSON_SK, PK,
    PersonItem, SK, distinct, key, n, padded, person_attr, person_pk, s,
};
use crate::queries::{self, NamedOperation};
use crate::references::{ReferenceChanges, Refusal};
use crate::search::{drop_all_keys, move_dedup, replace_postings};
use crate::tx::{Backoff, Condition, Role, Slot, Tx, TxError};

/// The feed counter as read before a write: the last position taken, the last `personRef` allocated, and the
/// turn another store handle may have claimed (see [`DynamoDbStore::transact_with_event`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Counter {
    pub(crate) position: u64,
    pub(crate) person_ref: i64,
    /// The handle holding a claim on the next turn, and until when (Unix milliseconds), if any.
    claim: Option<(u128, u64)>,
    /// Who is writing and when: set by `transact_with_event` before the transaction is built.
    turn: Turn,
}

/// The writing handle and the time of the attempt, for the claim condition of the counter's update.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Turn {
    me: u128,
    now_ms: u64,
}

/// Attribute of the counter naming the handle that claimed the next turn (hex), and its expiry.
const CLAIM: &str = "claim";
const CLAIM_UNTIL: &str = "claimUntil";

/// Consecutive counter races a handle loses before it claims the next turn.
const CLAIM_AFTER_LOSSES: u32 = 2;

/// How long a claim holds: long enough for one transaction, short enough that a claimer that died blocks
/// others only briefly.
const CLAIM_MILLIS: u64 = 250;

/// How long a writer waits before looking again while another handle holds the claim.
const CLAIM_POLL: Duration = Duration::from_millis(2);

fn now_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Counter {
    /// The position the next event takes.
    pub(crate) fn next_position(self) -> Result<u64, StoreError> {
        self.position.checked_add(1).ok_or_else(|| items_overflow("feed position"))
    }

    /// The `personRef` the next create takes.
    pub(crate) fn next_person_ref(self) -> Result<PersonRef, StoreError> {
        self.person_ref.checked_add(1).map(PersonRef).ok_or_else(|| items_overflow("personRef"))
    }

    /// True when a handle other than `me` holds an unexpired claim on the next turn.
    fn claimed_by_another(self, me: u128, now_ms: u64) -> bool {
        self.claim.is_some_and(|(holder, until)| holder != me && until >= now_ms)
    }

    /// The counter as an item holds it (absent attributes: nothing taken yet, no claim).
    fn from_item(item: &Item) -> Result<Self, StoreError> {
        let claim = match (item.get(CLAIM), item.get(CLAIM_UNTIL)) {
            (Some(AttributeValue::S(holder)), Some(AttributeValue::N(until))) => {
                match (u128::from_str_radix(holder, 16), until.parse::<u64>()) {
                    (Ok(holder), Ok(until)) => Some((holder, until)),
                    _ => return Err(DynamoStoreError::MalformedItem { what: "counter", attribute: CLAIM }.into()),
                }
            }
            _ => None,
        };
        Ok(Self {
            position: items::get_u64_or_zero(item, "position", "counter")?,
            person_ref: i64::try_from(items::get_u64_or_zero(item, person_attr::PERSON_REF, "counter")?)
                .map_err(|_| items_overflow("personRef"))?,
            claim,
            turn: Turn::default(),
        })
    }
}

fn items_overflow(what: &'static str) -> StoreError {
    DynamoStoreError::MalformedItem { what, attribute: "position" }.into()
}

impl DynamoDbStore {
    /// A consistent `GetItem`.
    pub(crate) async fn get_item(
        &self,
        operation: &'static NamedOperation,
        key: Item,
    ) -> Result<Option<Item>, StoreError> {
        let request = self.client()?.get_item().table_name(&self.table).set_key(Some(key)).consistent_read(true).send();
        let output = self
            .options
            .queries
            .run_counted(operation, request, |output| Some(u64::from(output.item.is_some())))
            .await
            .map_err(failed(operation.name))?;
        Ok(output.item)
    }

    /// A consistent `Query` on one partition, following pages until `limit` items (or the end).
    pub(crate) async fn query(
        &self,
        operation: &'static NamedOperation,
        key_condition: &'static str,
        names: &[(&'static str, &'static str)],
        values: Vec<(&'static str, AttributeValue)>,
        projection: Option<&'static str>,
        limit: Option<usize>,
    ) -> Result<Vec<Item>, StoreError> {
        let mut found: Vec<Item> = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let remaining = limit.map(|limit| limit.saturating_sub(found.len()));
            if remaining == Some(0) {
                return Ok(found);
            }
            let mut request = self
                .client()?
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .key_condition_expression(key_condition)
                .set_expression_attribute_names(Some(
                    names.iter().map(|(p, a)| ((*p).to_owned(), (*a).to_owned())).collect(),
                ))
                .set_expression_attribute_values(Some(
                    values.iter().map(|(p, v)| ((*p).to_owned(), v.clone())).collect(),
                ))
                .set_exclusive_start_key(start.take());
            if let Some(projection) = projection {
                request = request.projection_expression(projection);
            }
            if let Some(remaining) = remaining {
                request = request.limit(i32::try_from(remaining).unwrap_or(i32::MAX));
            }
            let output = self
                .options
                .queries
                .run_counted(operation, request.send(), |output| Some(output.items().len() as u64))
                .await
                .map_err(failed(operation.name))?;
            found.extend(output.items.unwrap_or_default());
            match output.last_evaluated_key {
                Some(last) if !last.is_empty() => start = Some(last),
                _ => return Ok(found),
            }
        }
    }

    /// A person item (any state), consistent.
    pub(crate) async fn read_person(&self, id: PersonId) -> Result<Option<PersonItem>, StoreError> {
        self.get_item(&queries::PERSON_GET, key(person_pk(id), PERSON_SK))
            .await?
            .map(|item| PersonItem::from_item(&item))
            .transpose()
    }

    /// The feed counter, consistent (absent: nothing written yet).
    pub(crate) async fn read_counter(&self) -> Result<Counter, StoreError> {
        let item = self.get_item(&queries::COUNTER_GET, key(COUNTER_PK, FEED_COUNTER_SK)).await?;
        item.map_or(Ok(Counter { position: 0, person_ref: 0, claim: None, turn: Turn::default() }), |item| {
            Counter::from_item(&item)
        })
    }

    /// Commits the transaction `build` makes for the feed counter's current value: an event-writing change.
    ///
    /// Writers of this process take turns (an async mutex held for one transaction), so they never race each
    /// other for the counter, and the counter's value is cached between turns (read with a `GetItem` only when
    /// unknown). When the counter's condition fails (a writer in another process took the position), the
    /// counter's current value comes back with the cancellation and the transaction is rebuilt for it and sent
    /// again at once.
    ///
    /// Racing alone is not fair: the process that just won learns so first and sends its next transaction before
    /// the loser's retry arrives, so a busy process can starve another indefinitely. A handle that loses
    /// [`CLAIM_AFTER_LOSSES`] races in a row therefore **claims the next turn**: a conditional `UpdateItem` sets
    /// `claim` (its handle id) and `claimUntil` (now + [`CLAIM_MILLIS`]) on the counter unless another unexpired
    /// claim is there. Every event-writing transaction's counter condition also requires "no claim, my claim, or
    /// an expired claim", and its update removes the claim; so while a claim holds, only its holder can take the
    /// next position, and others wait ([`CLAIM_POLL`]) until it has. A claimer that dies blocks the others for
    /// at most [`CLAIM_MILLIS`] (clock skew between hosts adds to that; it never affects correctness, which rests on
    /// the position condition alone). Retries are bounded by [`crate::DynamoDbOptions::max_contention_attempts`]
    /// and by the operation timeout. Any other cancellation is the caller's to explain (and to retry, after
    /// reading again, with backoff).
    pub(crate) async fn transact_with_event<T>(
        &self,
        operation: &'static NamedOperation,
        allocates_person_ref: bool,
        mut build: impl FnMut(Counter) -> Result<(Tx, T), StoreError>,
    ) -> Result<T, TxError> {
        let mut cached = self.feed.lock().await;
        let started = Instant::now();
        let mut attempts = 0_u32;
        let mut losses = 0_u32;
        loop {
            attempts += 1;
            let mut counter = match *cached {
                Some(counter) => counter,
                None => self.read_counter().await?,
            };
            counter.turn = Turn { me: self.handle_id, now_ms: now_millis() };
            let (tx, value) = build(counter)?;
            match self.transact(tx).await {
                Ok(()) => {
                    let person_ref =
                        if allocates_person_ref { counter.next_person_ref()?.0 } else { counter.person_ref };
                    *cached = Some(Counter {
                        position: counter.next_position()?,
                        person_ref,
                        claim: None,
                        turn: Turn::default(),
                    });
                    return Ok(value);
                }
                Err(TxError::Store(error)) => {
                    // The transaction may or may not have committed (a timeout): read the counter next time.
                    *cached = None;
                    return Err(TxError::Store(error));
                }
                Err(TxError::Cancelled(cancelled)) => {
                    let Some(reason) = cancelled.failed(Role::Counter) else {
                        // The counter's condition held (or was not evaluated, after a conflict: then read it anew).
                        *cached = if cancelled.has_conflict() { None } else { Some(counter) };
                        return Err(TxError::Cancelled(cancelled));
                    };
                    let current = reason.old.as_ref().map(Counter::from_item).transpose()?;
                    *cached = current;
                    if !cancelled.is_counter_race_only() {
                        return Err(TxError::Cancelled(cancelled));
                    }
                    let gave_up = attempts >= self.options.max_contention_attempts.max(1)
                        || started.elapsed() >= self.options.operation_timeout;
                    if gave_up {
                        return Err(TxError::Store(
                            DynamoStoreError::Contention { operation: operation.name, attempts }.into(),
                        ));
                    }
                    if current.is_some_and(|c| c.claimed_by_another(self.handle_id, now_millis())) {
                        // Another handle claimed this turn: let it take it (watching the counter, not racing it).
                        *cached = Some(self.wait_out_claim(operation, started, attempts).await?);
                        continue;
                    }
                    losses += 1;
                    if losses >= CLAIM_AFTER_LOSSES
                        && let Some(claimed) = self.claim_turn().await?
                    {
                        *cached = Some(claimed);
                    }
                }
            }
        }
    }

    /// Waits until no other handle holds an unexpired claim on the feed counter (it took its turn, or its claim
    /// expired) and returns the counter then; gives up at the operation timeout.
    async fn wait_out_claim(
        &self,
        operation: &'static NamedOperation,
        started: Instant,
        attempts: u32,
    ) -> Result<Counter, StoreError> {
        loop {
            tokio::time::sleep(CLAIM_POLL).await;
            let counter = self.read_counter().await?;
            if !counter.claimed_by_another(self.handle_id, now_millis()) {
                return Ok(counter);
            }
            if started.elapsed() >= self.options.operation_timeout {
                return Err(DynamoStoreError::Contention { operation: operation.name, attempts }.into());
            }
        }
    }

    /// Claims the next feed turn for this handle; the counter as it is now, or `None` when another handle holds
    /// an unexpired claim.
    async fn claim_turn(&self) -> Result<Option<Counter>, StoreError> {
        let now = now_millis();
        let request = self
            .client()?
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(COUNTER_PK, FEED_COUNTER_SK)))
            .update_expression("SET #claim = :me, #until = :until")
            .condition_expression("attribute_not_exists(#claim) OR #claim = :me OR #until < :now")
            .expression_attribute_names("#claim", CLAIM)
            .expression_attribute_names("#until", CLAIM_UNTIL)
            .expression_attribute_values(":me", s(format!("{:x}", self.handle_id)))
            .expression_attribute_values(":until", n(now.saturating_add(CLAIM_MILLIS)))
            .expression_attribute_values(":now", n(now))
            .return_values(ReturnValue::AllNew)
            .send();
        let result = self
            .options
            .queries
            .run_counted(&queries::COUNTER_CLAIM, request, |output| Some(u64::from(output.attributes.is_some())))
            .await;
        match result {
            Ok(output) => output.attributes.as_ref().map(Counter::from_item).transpose(),
            Err(error) if is_condition_failure(&error) => Ok(None),
            Err(error) => Err(failed(queries::COUNTER_CLAIM.name)(error)),
        }
    }
}

/// True when an `UpdateItem` failed only because its condition did not hold.
pub(crate) fn is_condition_failure(error: &SdkError<UpdateItemError, HttpResponse>) -> bool {
    matches!(error.as_service_error(), Some(UpdateItemError::ConditionalCheckFailedException(_)))
}

/// Adds to `tx` the counter's move from `counter.position` to `counter.position + 1` (and, for a create, the
/// `personRef` allocation), conditioned on the position read, and the event at the new position.
pub(crate) fn append_event(
    tx: &mut Tx,
    counter: Counter,
    person_ref: Option<PersonRef>,
    event: &PersonEvent,
) -> Result<(), StoreError> {
    let next = counter.next_position()?;
    // The position read, and no other handle's unexpired claim on this turn (see `transact_with_event`). A create
    // also requires the `personRef` read: an import raises it without moving the position (`crate::import`), and
    // a create that read the counter before must not set it back.
    let expression = match (counter.position == 0, person_ref.is_some()) {
        (true, false) => {
            "attribute_not_exists(#position) AND (attribute_not_exists(#claim) OR #claim = :me OR #claimUntil < :now)"
        }
        (false, false) => {
            "#position = :current AND (attribute_not_exists(#claim) OR #claim = :me OR #claimUntil < :now)"
        }
        (true, true) => {
            "attribute_not_exists(#position) AND (attribute_not_exists(#claim) OR #claim = :me OR #claimUntil < :now) \
             AND (attribute_not_exists(#personRef) OR #personRef = :readRef)"
        }
        (false, true) => {
            "#position = :current AND (attribute_not_exists(#claim) OR #claim = :me OR #claimUntil < :now) \
             AND (attribute_not_exists(#personRef) OR #personRef = :readRef)"
        }
    };
    let mut guard = Condition::new(expression)
        .name("#position", "position")
        .name("#claim", CLAIM)
        .name("#claimUntil", CLAIM_UNTIL)
        .value(":me", s(format!("{:x}", counter.turn.me)))
        .value(":now", n(counter.turn.now_ms))
        .value(":next", n(next));
    if counter.position != 0 {
        guard = guard.value(":current", n(counter.position));
    }
    match person_ref {
        Some(person_ref) => tx.update(
            Role::Counter,
            key(COUNTER_PK, FEED_COUNTER_SK),
            "SET #position = :next, #personRef = :ref REMOVE #claim, #claimUntil",
            guard
                .name("#personRef", person_attr::PERSON_REF)
                .value(":ref", n(person_ref.0))
                .value(":readRef", n(counter.person_ref)),
        )?,
        None => tx.update(
            Role::Counter,
            key(COUNTER_PK, FEED_COUNTER_SK),
            "SET #position = :next REMOVE #claim, #claimUntil",
            guard,
        )?,
    }
    tx.put(Role::FeedSlot, items::event_item(next, event)?, Some(Condition::absent()))
}

/// Adds the audit entry at `position` (allocated beforehand) to `tx`.
pub(crate) fn append_audit(tx: &mut Tx, position: u64, entry: &AuditEntry) -> Result<(), StoreError> {
    for item in items::audit_items(position, entry)? {
        tx.put(Role::Plain, item, None)?;
    }
    Ok(())
}

/// The compare-and-set of a person item: it must be stored at `expected`.
pub(crate) fn at_version(expected: u64) -> Condition {
    Condition::new("#version = :expected").name("#version", person_attr::VERSION).value(":expected", n(expected))
}

/// The dedup key a written person holds: none unless it is live.
pub(crate) fn live_dedup_key<'w>(person: &Person, key: Option<&'w str>) -> Option<&'w str> {
    if person.status.is_active() { key } else { None }
}

/// Why a compare-and-set on a person failed, from its old values (`None`: no such person).
fn missed(old: Option<&Item>) -> Result<UpdateError, StoreError> {
    Ok(match items::version_in(old, person_attr::VERSION, "person")? {
        None => UpdateError::NotFound,
        Some(current) => UpdateError::VersionConflict { current },
    })
}

/// Adds to `tx` the replacement of a written person's postings, dedup key and (when it stops being live) every
/// key it holds, from what was stored (`stored`) and read (`equality`).
pub(crate) fn rewrite_keys(
    tx: &mut Tx,
    slot: Slot,
    person: &Person,
    stored: &PersonItem,
    search_keys: &[SearchKey],
    equality: Option<&EqualityKeys>,
) -> Result<(), StoreError> {
    if person.status.is_active() {
        replace_postings(tx, person.id, KeySource::Person, &stored.search_keys, &distinct(search_keys))
    } else {
        let none = EqualityKeys { rev: None, keys: Vec::new() };
        drop_all_keys(tx, person.id, slot, &stored.search_keys, equality.unwrap_or(&none))
    }
}

impl DynamoDbStore {
    /// Allocates the next audit position (an atomic `ADD` on the audit counter).
    pub(crate) async fn next_audit_position(&self) -> Result<u64, StoreError> {
        let request = self
            .client()?
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(COUNTER_PK, items::AUDIT_COUNTER_SK)))
            .update_expression("ADD #position :one")
            .expression_attribute_names("#position", "position")
            .expression_attribute_values(":one", n(1))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send();
        let output = self
            .options
            .queries
            .run_counted(&queries::AUDIT_POSITION_NEXT, request, |_| Some(1))
            .await
            .map_err(failed(queries::AUDIT_POSITION_NEXT.name))?;
        items::get_u64(&output.attributes.unwrap_or_default(), "position", "audit counter")
    }

    async fn insert_person(&self, write: NewPersonWrite) -> Result<Person, InsertError> {
        let references = ReferenceChanges::between(None, None, write.person());
        let audit_position = self.next_audit_position().await?;
        let mut backoff = Backoff::new(&queries::PERSON_INSERT, &self.options);
        loop {
            let outcome = self
                .transact_with_event(&queries::PERSON_INSERT, true, |counter| {
                    let person_ref = counter.next_person_ref()?;
                    let created = write.clone().assign(person_ref);
                    let person = &created.person;
                    let live = person.status.is_active();
                    let dedup_key = live_dedup_key(person, created.dedup_key.as_deref());
                    let keys = if live { distinct(&created.search_keys) } else { Vec::new() };

                    let mut tx = Tx::new(&queries::PERSON_INSERT, &self.table);
                    let item = PersonItem::to_item(person, &keys, dedup_key)?;
                    tx.put(Role::Person(Slot::Subject), item, Some(Condition::absent()))?;
                    // The number's claim: what lets an import find who holds a `personRef` (`crate::import`).
                    let claim = items::person_ref_item(person_ref, person.id);
                    tx.put(Role::PersonRefClaim, claim, Some(Condition::absent()))?;
                    if let Some(record) = &created.idempotency {
                        tx.put(Role::Idempotency, items::idempotency_item(record)?, Some(Condition::absent()))?;
                    }
                    move_dedup(&mut tx, person.id, &[], dedup_key, &[])?;
                    references.write(&mut tx, person.id, &[])?;
                    append_event(&mut tx, counter, Some(person_ref), &created.event)?;
                    tx.put(Role::Plain, items::history_item(&created.history)?, None)?;
                    replace_postings(&mut tx, person.id, KeySource::Person, &[], &keys)?;
                    append_audit(&mut tx, audit_position, &created.audit)?;
                    Ok((tx, created.person))
                })
                .await;
            match outcome {
                Ok(person) => return Ok(person),
                Err(TxError::Store(e)) => return Err(e.into()),
                Err(TxError::Cancelled(cancelled)) => {
                    if cancelled.failed(Role::Person(Slot::Subject)).is_some() {
                        return Err(InsertError::DuplicateId);
                    }
                    if cancelled.failed(Role::Idempotency).is_some() {
                        return Err(InsertError::IdempotencyKeyTaken);
                    }
                    if let Some(reason) = cancelled.failed(Role::Dedup) {
                        return Err(InsertError::DuplicatePerson { existing: items::holder_in(reason.old.as_ref())? });
                    }
                    match self.refused_reference(&references, &cancelled, &[]).await? {
                        Some(Refusal::Taken { reference, owner }) => {
                            return Err(InsertError::ReferenceTaken { reference, owner });
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

    async fn update_person(&self, write: &PersonWrite) -> Result<(), UpdateError> {
        let id = write.person.id;
        let live = write.person.status.is_active();
        let dedup_key = live_dedup_key(&write.person, write.dedup_key.as_deref());
        let keys = if live { distinct(&write.search_keys) } else { Vec::new() };
        let mut audit_position = None;
        let mut backoff = Backoff::new(&queries::PERSON_UPDATE, &self.options);
        loop {
            let stored = self.read_person(id).await?.ok_or(UpdateError::NotFound)?;
            if stored.person.version_number != write.expected_version {
                return Err(UpdateError::VersionConflict { current: stored.person.version_number });
            }
            let equality = if live { None } else { Some(self.read_equality_keys(id).await?) };
            // The stored person's references are exactly those the index gives it: the version condition below
            // refuses the write if the person changed since this read.
            let references = ReferenceChanges::between(Some(&stored.person), None, &write.person);
            let position = match audit_position {
                Some(position) => position,
                None => *audit_position.insert(self.next_audit_position().await?),
            };
            let outcome = self
                .transact_with_event(&queries::PERSON_UPDATE, false, |counter| {
                    let mut tx = Tx::new(&queries::PERSON_UPDATE, &self.table);
                    let item = PersonItem::to_item(&write.person, &keys, dedup_key)?;
                    tx.put(Role::Person(Slot::Subject), item, Some(at_version(write.expected_version)))?;
                    let stored_dedup = stored.dedup_key.as_deref();
                    if dedup_key != stored_dedup {
                        move_dedup(&mut tx, id, &[id], dedup_key, &[stored_dedup])?;
                    }
                    rewrite_keys(&mut tx, Slot::Subject, &write.person, &stored, &keys, equality.as_ref())?;
                    references.write(&mut tx, id, &[id])?;
                    append_event(&mut tx, counter, None, &write.event)?;
                    tx.put(Role::Plain, items::history_item(&write.history)?, None)?;
                    append_audit(&mut tx, position, &write.audit)?;
                    Ok((tx, ()))
                })
                .await;
            match outcome {
                Ok(()) => return Ok(()),
                Err(TxError::Store(e)) => return Err(e.into()),
                Err(TxError::Cancelled(cancelled)) => {
                    if let Some(reason) = cancelled.failed(Role::Person(Slot::Subject)) {
                        return Err(missed(reason.old.as_ref())?);
                    }
                    if let Some(reason) = cancelled.failed(Role::Dedup) {
                        return Err(UpdateError::DuplicatePerson { existing: items::holder_in(reason.old.as_ref())? });
                    }
                    match self.refused_reference(&references, &cancelled, &[id]).await? {
                        Some(Refusal::Taken { reference, owner }) => {
                            return Err(UpdateError::ReferenceTaken { reference, owner });
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

#[async_trait]
impl PersonRepository for DynamoDbStore {
    async fn insert(&self, write: NewPersonWrite) -> Result<Person, InsertError> {
        self.insert_person(write).await
    }

    async fn get(&self, id: PersonId) -> Result<Option<Person>, StoreError> {
        Ok(self.read_person(id).await?.map(|item| item.person))
    }

    async fn update(&self, write: PersonWrite) -> Result<(), UpdateError> {
        self.update_person(&write).await
    }

    async fn candidates(&self, keys: &[SearchKey], limit: u32) -> Result<Vec<Candidate>, StoreError> {
        self.find_candidates(keys, limit).await
    }

    async fn merge(&self, write: MergeWrite) -> Result<(), MergeWriteError> {
        self.merge_persons(&write).await
    }

    async fn find_by_reference(&self, reference: &CrossReference) -> Result<Option<PersonId>, StoreError> {
        self.reference_owner(reference).await
    }

    async fn history(&self, id: PersonId) -> Result<Vec<HistoryEntry>, StoreError> {
        self.query(
            &queries::HISTORY_LIST,
            "#pk = :pk AND begins_with(#sk, :prefix)",
            &[("#pk", PK), ("#sk", SK)],
            vec![(":pk", s(person_pk(id))), (":prefix", s(HISTORY_PREFIX))],
            None,
            None,
        )
        .await?
        .iter()
        .map(items::history_entry)
        .collect()
    }

    async fn events_after(&self, after: u64, limit: u32) -> Result<Vec<FeedEntry>, StoreError> {
        if limit == 0 || after == u64::MAX {
            return Ok(Vec::new());
        }
        self.query(
            &queries::EVENTS_AFTER,
            "#pk = :pk AND #sk > :after",
            &[("#pk", PK), ("#sk", SK)],
            vec![(":pk", s(FEED_PK)), (":after", s(padded(after)))],
            None,
            Some(usize::try_from(limit).unwrap_or(usize::MAX)),
        )
        .await?
        .iter()
        .map(items::feed_entry)
        .collect()
    }

    async fn find_idempotent_create(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.get_item(&queries::IDEMPOTENCY_GET, items::key(items::idempotency_pk(key), IDEMPOTENCY_SK))
            .await?
            .map(|item| items::idempotency_record(&item))
            .transpose()
    }

    async fn restricted_among(&self, ids: &[PersonId]) -> Result<Vec<PersonId>, StoreError> {
        let mut ids = ids.to_vec();
        ids.sort();
        ids.dedup();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys = ids.iter().map(|id| key(person_pk(*id), PERSON_SK)).collect();
        let names = [("#pk", PK), ("#sk", SK), ("#restricted", person_attr::RESTRICTED)];
        let found =
            self.batch_get(&queries::PERSON_RESTRICTED_AMONG, keys, Some(("#pk, #sk, #restricted", &names))).await?;
        Ok(ids
            .into_iter()
            .filter(|id| {
                found
                    .get(&(person_pk(*id), PERSON_SK.to_owned()))
                    .is_some_and(|item| matches!(item.get(person_attr::RESTRICTED), Some(AttributeValue::Bool(true))))
            })
            .collect())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let request = self
            .client()?
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(COUNTER_PK, FEED_COUNTER_SK)))
            .projection_expression("#pk")
            .expression_attribute_names("#pk", PK)
            .send();
        self.options
            .queries
            .run_counted(&queries::STORE_PING, request, |output| Some(u64::from(output.item.is_some())))
            .await
            .map_err(failed(queries::STORE_PING.name))?;
        Ok(())
    }

    async fn close(&self) {
        DynamoDbStore::close(self).await;
    }
}
