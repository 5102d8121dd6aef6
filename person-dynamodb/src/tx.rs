//! One `TransactWriteItems` as the store builds it: every item tagged with the [`Role`] it plays, so that a
//! cancellation is explained by *which* item's condition failed (its position in the transaction and its code,
//! never message text), with the item's old values (`ReturnValuesOnConditionCheckFailure::AllOld`) for the
//! version or holder the domain error reports.
//!
//! Also the bounded, jittered backoff of writes that lose the race for a guard item (the feed counter, a
//! person's equality-keys revision) to concurrent writers.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, DeleteRequest, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
    Update, WriteRequest,
};
use person_core::ports::StoreError;

use crate::DynamoDbStore;
use crate::error::{DynamoStoreError, build_failed, sdk_error};
use crate::items::Item;
use crate::options::DynamoDbOptions;
use crate::queries::NamedOperation;

/// DynamoDB's limit of items in one transaction.
pub(crate) const MAX_TRANSACTION_ITEMS: usize = 100;

/// Which person of a write an item belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// The person of a create or update.
    Subject,
    /// The survivor of a merge.
    Survivor,
    /// The duplicate of a merge.
    Duplicate,
}

/// What an item of a transaction is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// A person item with a condition (absent, or at the expected version).
    Person(Slot),
    /// The idempotency record (absent).
    Idempotency,
    /// The claim item of the written person's `personRef` (absent).
    PersonRefClaim,
    /// The dedup item (free, or held by the writer).
    Dedup,
    /// The feed counter (at the position read).
    Counter,
    /// The event at the position taken (absent): taken already only when the counter moved on too.
    FeedSlot,
    /// A person's equality-keys item (at the revision read): a guard, lost races are retried.
    EqualityKeys(Slot),
    /// A document at its expected version (or absent).
    Document,
    /// A document's new home in a merge (absent).
    DocumentTarget,
    /// The reference item of a reference the written person takes (free, or held by the writer), by its index
    /// among the references the write takes ([`crate::references::ReferenceChanges`]).
    Reference(usize),
    /// The reference item of a reference the write releases (held by the writer): a failure means the index
    /// disagrees with the person, which retrying cannot cure.
    ReleasedReference,
    /// An unconditional write.
    Plain,
}

/// A condition expression with its placeholders.
pub(crate) struct Condition {
    expression: &'static str,
    names: Vec<(&'static str, &'static str)>,
    values: Vec<(&'static str, AttributeValue)>,
}

impl Condition {
    /// `expression` with `#name` and `:value` placeholders.
    pub(crate) fn new(expression: &'static str) -> Self {
        Self { expression, names: Vec::new(), values: Vec::new() }
    }

    /// Binds `#placeholder` to an attribute name.
    pub(crate) fn name(mut self, placeholder: &'static str, attribute: &'static str) -> Self {
        self.names.push((placeholder, attribute));
        self
    }

    /// Binds `:placeholder` to a value.
    pub(crate) fn value(mut self, placeholder: &'static str, value: AttributeValue) -> Self {
        self.values.push((placeholder, value));
        self
    }

    /// The item must not exist.
    pub(crate) fn absent() -> Self {
        Self::new("attribute_not_exists(#pk)").name("#pk", crate::items::PK)
    }

    fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.iter().map(|(p, a)| ((*p).to_owned(), (*a).to_owned())).collect())
    }

    fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.iter().map(|(p, v)| ((*p).to_owned(), v.clone())).collect())
    }
}

/// A transaction being built.
pub(crate) struct Tx {
    operation: &'static NamedOperation,
    table: String,
    items: Vec<TransactWriteItem>,
    roles: Vec<Role>,
    /// Unconditional deletes that may follow the transaction when it has no room for them.
    when_room: Vec<Item>,
}

impl Tx {
    pub(crate) fn new(operation: &'static NamedOperation, table: &str) -> Self {
        Self { operation, table: table.to_owned(), items: Vec::new(), roles: Vec::new(), when_room: Vec::new() }
    }

    /// Deletes the item at `key` in the transaction if it has room (DynamoDB takes 100 items), or else right after
    /// it commits. Only for items whose late removal no reader can observe: the postings of a person that is no
    /// longer live (candidate retrieval reads the person and leaves it out whatever its postings say).
    pub(crate) fn delete_when_room(&mut self, key: Item) {
        self.when_room.push(key);
    }

    /// Puts `item`, if `condition` holds.
    pub(crate) fn put(&mut self, role: Role, item: Item, condition: Option<Condition>) -> Result<(), StoreError> {
        let mut put = Put::builder().table_name(&self.table).set_item(Some(item));
        if let Some(condition) = condition {
            put = put
                .condition_expression(condition.expression)
                .set_expression_attribute_names(condition.names())
                .set_expression_attribute_values(condition.values())
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        }
        let put = put.build().map_err(build_failed(self.operation.name))?;
        self.push(role, TransactWriteItem::builder().put(put).build());
        Ok(())
    }

    /// Deletes the item at `key`, if `condition` holds.
    pub(crate) fn delete(&mut self, role: Role, key: Item, condition: Option<Condition>) -> Result<(), StoreError> {
        let mut delete = Delete::builder().table_name(&self.table).set_key(Some(key));
        if let Some(condition) = condition {
            delete = delete
                .condition_expression(condition.expression)
                .set_expression_attribute_names(condition.names())
                .set_expression_attribute_values(condition.values())
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        }
        let delete = delete.build().map_err(build_failed(self.operation.name))?;
        self.push(role, TransactWriteItem::builder().delete(delete).build());
        Ok(())
    }

    /// Checks `condition` on the item at `key` without writing it.
    pub(crate) fn check(&mut self, role: Role, key: Item, condition: Condition) -> Result<(), StoreError> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .condition_expression(condition.expression)
            .set_expression_attribute_names(condition.names())
            .set_expression_attribute_values(condition.values())
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(build_failed(self.operation.name))?;
        self.push(role, TransactWriteItem::builder().condition_check(check).build());
        Ok(())
    }

    /// Applies `update` (an `UpdateExpression` using the condition's placeholders) to the item at `key`, if
    /// `condition` holds.
    pub(crate) fn update(
        &mut self,
        role: Role,
        key: Item,
        update: &'static str,
        condition: Condition,
    ) -> Result<(), StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression(update)
            .condition_expression(condition.expression)
            .set_expression_attribute_names(condition.names())
            .set_expression_attribute_values(condition.values())
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(build_failed(self.operation.name))?;
        self.push(role, TransactWriteItem::builder().update(update).build());
        Ok(())
    }

    fn push(&mut self, role: Role, item: TransactWriteItem) {
        self.items.push(item);
        self.roles.push(role);
    }
}

/// Why one item of a cancelled transaction failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Code {
    /// It did not fail (another item did).
    None,
    /// Its condition was false.
    ConditionFailed,
    /// Another transaction was writing it at the same time.
    Conflict,
    /// Throttled.
    Throttled,
    /// Anything else (validation, size limits …).
    Other,
}

impl Code {
    fn parse(code: Option<&str>) -> Self {
        match code {
            None | Some("None") => Self::None,
            Some("ConditionalCheckFailed") => Self::ConditionFailed,
            Some("TransactionConflict") => Self::Conflict,
            Some("ProvisionedThroughputExceeded" | "ThrottlingError" | "RequestLimitExceeded") => Self::Throttled,
            Some(_) => Self::Other,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::None => "None",
            Self::ConditionFailed => "ConditionalCheckFailed",
            Self::Conflict => "TransactionConflict",
            Self::Throttled => "Throttled",
            Self::Other => "Other",
        }
    }
}

/// One item's cancellation reason, with its role and (for a failed condition) its old values.
pub(crate) struct Reason {
    pub(crate) role: Role,
    pub(crate) code: Code,
    pub(crate) old: Option<Item>,
}

/// A cancelled transaction, item by item.
pub(crate) struct Cancelled {
    operation: &'static NamedOperation,
    reasons: Vec<Reason>,
}

impl Cancelled {
    /// The first item playing `role` whose condition failed.
    pub(crate) fn failed(&self, role: Role) -> Option<&Reason> {
        self.reasons.iter().find(|r| r.role == role && r.code == Code::ConditionFailed)
    }

    /// The first item whose role satisfies `matches` and whose condition failed.
    pub(crate) fn failed_where(&self, matches: impl Fn(Role) -> bool) -> Option<&Reason> {
        self.reasons.iter().find(|r| matches(r.role) && r.code == Code::ConditionFailed)
    }

    /// True when trying again may succeed: a guard lost a race (the feed counter or an equality-keys revision
    /// moved on), or DynamoDB reported a conflict with a concurrent transaction or throttling; and no item
    /// failed for a reason retrying cannot cure.
    pub(crate) fn is_lost_race(&self) -> bool {
        let guard_failed = self.reasons.iter().any(|r| match r.code {
            Code::Conflict | Code::Throttled => true,
            Code::ConditionFailed => matches!(r.role, Role::Counter | Role::EqualityKeys(_)),
            Code::None | Code::Other => false,
        });
        // A taken feed slot (or `personRef` claim, for a create) is explained by a counter that moved on; with the
        // counter unchanged it would mean a corrupt counter, which retrying cannot cure.
        let counter_moved = self.failed(Role::Counter).is_some();
        let hopeless = self.reasons.iter().any(|r| match r.code {
            Code::Other => true,
            Code::ConditionFailed => match r.role {
                Role::Counter | Role::EqualityKeys(_) => false,
                Role::FeedSlot | Role::PersonRefClaim => !counter_moved,
                _ => true,
            },
            _ => false,
        });
        guard_failed && !hopeless
    }

    /// True when the feed counter's condition failed and nothing else did, but the event's slot and the
    /// `personRef`'s claim being taken (which follow from it: the winner took that position and number): the
    /// transaction can be rebuilt for the counter's new value as it is.
    pub(crate) fn is_counter_race_only(&self) -> bool {
        self.failed(Role::Counter).is_some()
            && self.reasons.iter().all(|r| match r.code {
                Code::None => true,
                Code::ConditionFailed => matches!(r.role, Role::Counter | Role::FeedSlot | Role::PersonRefClaim),
                _ => false,
            })
    }

    /// True when an item conflicted with a concurrent transaction.
    pub(crate) fn has_conflict(&self) -> bool {
        self.reasons.iter().any(|r| r.code == Code::Conflict)
    }

    /// The cancellation as an unexpected store failure (codes only: the old items may hold personal data).
    pub(crate) fn unexpected(&self) -> StoreError {
        let codes = self.reasons.iter().map(|r| r.code.as_str()).collect::<Vec<_>>().join(", ");
        let transient = self.reasons.iter().any(|r| matches!(r.code, Code::Conflict | Code::Throttled));
        DynamoStoreError::Cancelled { operation: self.operation.name, codes, transient }.into()
    }
}

/// How a transaction failed.
pub(crate) enum TxError {
    /// DynamoDB cancelled it; see the reasons.
    Cancelled(Cancelled),
    /// The call itself failed.
    Store(StoreError),
}

impl From<StoreError> for TxError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl DynamoDbStore {
    /// Runs `tx` as one `TransactWriteItems` (then the deletes it had no room for, see [`Tx::delete_when_room`]).
    pub(crate) async fn transact(&self, mut tx: Tx) -> Result<(), TxError> {
        let mut deferred = Vec::new();
        if tx.items.len() + tx.when_room.len() <= MAX_TRANSACTION_ITEMS {
            for key in std::mem::take(&mut tx.when_room) {
                tx.delete(Role::Plain, key, None)?;
            }
        } else {
            deferred = std::mem::take(&mut tx.when_room);
        }
        if tx.items.is_empty() {
            return Ok(());
        }
        if tx.items.len() > MAX_TRANSACTION_ITEMS {
            let error = DynamoStoreError::TooManyItems { operation: tx.operation.name, items: tx.items.len() };
            return Err(TxError::Store(error.into()));
        }
        let written = tx.items.len() as u64;
        let request = self.client()?.transact_write_items().set_transact_items(Some(tx.items)).send();
        let result = self.options.queries.run_counted(tx.operation, request, |_| Some(written)).await;
        match result {
            Ok(_) => {
                if !deferred.is_empty() {
                    self.delete_postings_after_commit(deferred).await;
                }
                Ok(())
            }
            Err(SdkError::ServiceError(service)) => match service.into_err() {
                TransactWriteItemsError::TransactionCanceledException(cancelled) => {
                    let reasons = cancelled.cancellation_reasons();
                    let reasons = tx
                        .roles
                        .iter()
                        .enumerate()
                        .map(|(i, role)| {
                            let reason = reasons.get(i);
                            Reason {
                                role: *role,
                                code: Code::parse(reason.and_then(|r| r.code())),
                                old: reason.and_then(|r| r.item()).cloned(),
                            }
                        })
                        .collect();
                    Err(TxError::Cancelled(Cancelled { operation: tx.operation, reasons }))
                }
                other => {
                    let error = SdkError::<_, ()>::service_error(other, ());
                    Err(TxError::Store(sdk_error(tx.operation.name, error).into()))
                }
            },
            Err(other) => Err(TxError::Store(sdk_error(tx.operation.name, other).into())),
        }
    }

    /// Deletes the postings a committed transaction had no room for, 25 per `BatchWriteItem`. Best effort: the
    /// change is committed whatever happens here, and a posting left behind only costs candidate retrieval a read
    /// (its person is not live). Failures are logged with counts, never keys (they hold personal data).
    async fn delete_postings_after_commit(&self, keys: Vec<Item>) {
        let operation = &crate::queries::POSTINGS_CLEANUP;
        let mut left = 0_usize;
        for chunk in keys.chunks(25) {
            let requests: Result<Vec<WriteRequest>, _> = chunk
                .iter()
                .map(|key| {
                    DeleteRequest::builder()
                        .set_key(Some(key.clone()))
                        .build()
                        .map(|delete| WriteRequest::builder().delete_request(delete).build())
                })
                .collect();
            let Ok(requests) = requests else {
                left += chunk.len();
                continue;
            };
            let mut pending = Some(HashMap::from([(self.table.clone(), requests)]));
            let mut backoff = Backoff::new(operation, &self.options);
            while let Some(request) = pending.take() {
                let Ok(client) = self.client() else { break };
                let sent: usize = request.values().map(Vec::len).sum();
                let call = client.batch_write_item().set_request_items(Some(request)).send();
                let result = self
                    .options
                    .queries
                    .run_counted(operation, call, |output| {
                        let left = output.unprocessed_items().map_or(0, |items| items.values().map(Vec::len).sum());
                        Some(sent.saturating_sub(left) as u64)
                    })
                    .await;
                match result {
                    Ok(output) => {
                        pending = output.unprocessed_items.filter(|items| items.values().any(|v| !v.is_empty()));
                        if pending.is_some() && backoff.wait().await.is_err() {
                            left += pending.take().map_or(0, |p| p.values().map(Vec::len).sum());
                        }
                    }
                    Err(error) => {
                        let error = sdk_error(operation.name, error);
                        tracing::warn!(error = %error, "postings of a person no longer live were not all deleted");
                        left += chunk.len();
                    }
                }
            }
        }
        if left > 0 {
            tracing::warn!(left, "postings of a person no longer live were left behind; they only cost reads");
        }
    }
}

/// The bounded, jittered exponential backoff of a write that lost a race.
pub(crate) struct Backoff {
    operation: &'static str,
    attempt: u32,
    max_attempts: u32,
    base: Duration,
    cap: Duration,
}

impl Backoff {
    pub(crate) fn new(operation: &'static NamedOperation, options: &DynamoDbOptions) -> Self {
        Self {
            operation: operation.name,
            attempt: 1,
            max_attempts: options.max_contention_attempts.max(1),
            base: options.contention_backoff,
            cap: options.max_contention_backoff,
        }
    }

    /// Waits before the next attempt, or gives up with [`StoreError::Unavailable`] when the budget is spent.
    pub(crate) async fn wait(&mut self) -> Result<(), StoreError> {
        if self.attempt >= self.max_attempts {
            return Err(DynamoStoreError::Contention { operation: self.operation, attempts: self.attempt }.into());
        }
        let exponent = self.attempt.saturating_sub(1).min(16);
        let ceiling = self.base.saturating_mul(1 << exponent).min(self.cap);
        // Full jitter: concurrent losers spread out instead of colliding again in lock-step.
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        let delay = Duration::from_nanos(if nanos == 0 { 0 } else { random() % nanos });
        self.attempt += 1;
        tokio::time::sleep(delay).await;
        Ok(())
    }
}

/// A random number for jitter (no cryptographic quality needed).
fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queries;

    fn cancelled(reasons: &[(Role, Code)]) -> Cancelled {
        Cancelled {
            operation: &queries::PERSON_UPDATE,
            reasons: reasons.iter().map(|(role, code)| Reason { role: *role, code: *code, old: None }).collect(),
        }
    }

    #[test]
    fn a_lost_counter_race_is_retried_but_a_failed_version_check_is_not() {
        let counter = cancelled(&[(Role::Person(Slot::Subject), Code::None), (Role::Counter, Code::ConditionFailed)]);
        assert!(counter.is_lost_race());
        let both =
            cancelled(&[(Role::Person(Slot::Subject), Code::ConditionFailed), (Role::Counter, Code::ConditionFailed)]);
        assert!(!both.is_lost_race());
        assert!(both.failed(Role::Person(Slot::Subject)).is_some());
        let conflict = cancelled(&[(Role::Person(Slot::Subject), Code::Conflict), (Role::Counter, Code::None)]);
        assert!(conflict.is_lost_race());
        let invalid = cancelled(&[(Role::Plain, Code::Other), (Role::Counter, Code::ConditionFailed)]);
        assert!(!invalid.is_lost_race());
        let slot_taken = cancelled(&[(Role::Counter, Code::ConditionFailed), (Role::FeedSlot, Code::ConditionFailed)]);
        assert!(slot_taken.is_lost_race(), "the counter moved on and the slot is taken: a lost race");
        let corrupt = cancelled(&[(Role::Counter, Code::None), (Role::FeedSlot, Code::ConditionFailed)]);
        assert!(!corrupt.is_lost_race(), "a taken slot with the counter unchanged is not cured by retrying");
    }

    #[test]
    fn a_taken_person_ref_claim_is_a_lost_race_only_when_the_counter_moved_on() {
        let create = cancelled(&[
            (Role::Person(Slot::Subject), Code::None),
            (Role::PersonRefClaim, Code::ConditionFailed),
            (Role::Counter, Code::ConditionFailed),
            (Role::FeedSlot, Code::ConditionFailed),
        ]);
        assert!(create.is_counter_race_only() && create.is_lost_race(), "another create took the number first");
        let held = cancelled(&[(Role::PersonRefClaim, Code::ConditionFailed), (Role::Counter, Code::None)]);
        assert!(!held.is_counter_race_only() && !held.is_lost_race(), "a number held with the counter unchanged");
    }

    #[test]
    fn codes_are_read_from_the_reason_code_not_the_message() {
        assert_eq!(Code::parse(Some("ConditionalCheckFailed")), Code::ConditionFailed);
        assert_eq!(Code::parse(Some("None")), Code::None);
        assert_eq!(Code::parse(Some("TransactionConflict")), Code::Conflict);
        assert_eq!(Code::parse(Some("ValidationError")), Code::Other);
    }

    #[tokio::test]
    async fn backoff_gives_up_as_unavailable_after_its_budget() {
        let options =
            DynamoDbOptions { max_contention_attempts: 3, contention_backoff: Duration::ZERO, ..Default::default() };
        let mut backoff = Backoff::new(&queries::PERSON_UPDATE, &options);
        assert!(backoff.wait().await.is_ok());
        assert!(backoff.wait().await.is_ok());
        assert!(matches!(backoff.wait().await, Err(StoreError::Unavailable(_))));
    }
}
