//! [`RelayRepository`] for [`DynamoDbStore`]: one item per relay, `RELAY#<name>` / `RELAY`, holding `holder`,
//! `position` and `expiresAt` (nanoseconds since the Unix epoch, compared exactly by DynamoDB).
//!
//! Every change is one conditional `UpdateItem`, so DynamoDB decides races: taking the lease requires the item to
//! be absent, its lease expired at the caller's `now`, or held by the caller; of concurrent acquisitions of a free
//! lease exactly one passes its condition and the others fail theirs (`ConditionalCheckFailed`, answered as "held
//! by another"). Advancing requires the caller to hold the unexpired lease and the position not to decrease; when
//! the stored position is higher (a relay re-publishing), a second conditional `UpdateItem` renews the lease alone
//! (DynamoDB has no `max`), so the stored position never decreases and a lease lost in between is still reported.
//! Times are the callers' clocks, as the port says.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;
use chrono::{DateTime, TimeDelta, Utc};
use person_core::ports::{RelayError, RelayLease, RelayRepository, StoreError};
use person_core::storage::out_of_range;

use crate::DynamoDbStore;
use crate::error::failed;
use crate::items::{self, RELAY_SK, key, n, nanos, relay_attr, relay_pk, s};
use crate::queries;
use crate::repository::is_condition_failure;

/// `now + ttl`, as stored.
fn expiry(now: DateTime<Utc>, ttl: TimeDelta) -> Result<i128, StoreError> {
    now.checked_add_signed(ttl).map(nanos).ok_or_else(|| out_of_range("relay lease expiry"))
}

#[async_trait]
impl RelayRepository for DynamoDbStore {
    async fn acquire_relay_lease(
        &self,
        relay: &str,
        holder: &str,
        now: DateTime<Utc>,
        ttl: TimeDelta,
    ) -> Result<Option<RelayLease>, StoreError> {
        let operation = &queries::RELAY_ACQUIRE;
        let request = self
            .client()?
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(relay_pk(relay), RELAY_SK)))
            .update_expression(
                "SET #type = :type, #holder = :holder, #expires = :expires, \
                 #position = if_not_exists(#position, :zero)",
            )
            .condition_expression("attribute_not_exists(#pk) OR #expires <= :now OR #holder = :holder")
            .expression_attribute_names("#pk", items::PK)
            .expression_attribute_names("#type", "type")
            .expression_attribute_names("#holder", relay_attr::HOLDER)
            .expression_attribute_names("#expires", relay_attr::EXPIRES_AT)
            .expression_attribute_names("#position", relay_attr::POSITION)
            .expression_attribute_values(":type", s("relay"))
            .expression_attribute_values(":holder", s(holder))
            .expression_attribute_values(":expires", n(expiry(now, ttl)?))
            .expression_attribute_values(":now", n(nanos(now)))
            .expression_attribute_values(":zero", n(0))
            .return_values(ReturnValue::AllNew)
            .send();
        match self
            .options
            .queries
            .run_counted(operation, request, |output| Some(u64::from(output.attributes.is_some())))
            .await
        {
            Ok(output) => items::relay_lease(&output.attributes.unwrap_or_default()).map(Some),
            Err(error) if is_condition_failure(&error) => Ok(None),
            Err(error) => Err(failed(operation.name)(error)),
        }
    }

    async fn advance_relay(
        &self,
        relay: &str,
        holder: &str,
        position: u64,
        now: DateTime<Utc>,
        ttl: TimeDelta,
    ) -> Result<(), RelayError> {
        let expires = expiry(now, ttl)?;
        let update =
            |operation: &'static queries::NamedOperation, expression: &'static str, condition: &'static str| {
                let request = self.client().map(|client| {
                    client
                        .update_item()
                        .table_name(&self.table)
                        .set_key(Some(key(relay_pk(relay), RELAY_SK)))
                        .update_expression(expression)
                        .condition_expression(condition)
                        .expression_attribute_names("#holder", relay_attr::HOLDER)
                        .expression_attribute_names("#expires", relay_attr::EXPIRES_AT)
                        .expression_attribute_names("#position", relay_attr::POSITION)
                        .expression_attribute_values(":holder", s(holder))
                        .expression_attribute_values(":expires", n(expires))
                        .expression_attribute_values(":now", n(nanos(now)))
                        .expression_attribute_values(":position", n(position))
                        .send()
                });
                async move {
                    match self.options.queries.run_counted(operation, request?, |_| Some(1)).await {
                        Ok(_) => Ok(true),
                        Err(error) if is_condition_failure(&error) => Ok(false),
                        Err(error) => Err(failed(operation.name)(error)),
                    }
                }
            };
        let advanced = update(
            &queries::RELAY_ADVANCE,
            "SET #position = :position, #expires = :expires",
            "#holder = :holder AND #expires > :now AND #position <= :position",
        )
        .await?;
        if advanced {
            return Ok(());
        }
        // Refused: the lease is lost, or the stored position is higher (then the lease is renewed alone).
        let renewed = update(
            &queries::RELAY_RENEW,
            "SET #expires = :expires",
            "#holder = :holder AND #expires > :now AND #position > :position",
        )
        .await?;
        if renewed { Ok(()) } else { Err(RelayError::LeaseLost) }
    }

    async fn release_relay_lease(&self, relay: &str, holder: &str) -> Result<(), StoreError> {
        let operation = &queries::RELAY_RELEASE;
        let request = self
            .client()?
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(relay_pk(relay), RELAY_SK)))
            .update_expression("SET #expires = :released REMOVE #holder")
            .condition_expression("#holder = :holder")
            .expression_attribute_names("#holder", relay_attr::HOLDER)
            .expression_attribute_names("#expires", relay_attr::EXPIRES_AT)
            .expression_attribute_values(":holder", s(holder))
            .expression_attribute_values(":released", n(nanos(DateTime::<Utc>::MIN_UTC)))
            .send();
        match self.options.queries.run_counted(operation, request, |_| Some(1)).await {
            // Not held by `holder` (or never taken): nothing to give up.
            Err(error) if is_condition_failure(&error) => Ok(()),
            Err(error) => Err(failed(operation.name)(error)),
            Ok(_) => Ok(()),
        }
    }

    async fn relay_state(&self, relay: &str) -> Result<Option<RelayLease>, StoreError> {
        self.get_item(&queries::RELAY_STATE, key(relay_pk(relay), RELAY_SK))
            .await?
            .map(|item| items::relay_lease(&item))
            .transpose()
    }
}
