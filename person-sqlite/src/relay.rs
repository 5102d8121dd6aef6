//! [`RelayRepository`] for [`SqliteStore`]: the lease and feed position of each event relay, one row of
//! `relay_leases` per relay.
//!
//! Every change is ONE conditional statement in a `BEGIN IMMEDIATE` transaction on the single writer connection:
//! taking the lease is an upsert whose `DO UPDATE … WHERE` applies only when the caller already holds the lease
//! or it expired (`RETURNING` the lease, no row when refused); advancing is an `UPDATE … WHERE holder = ? AND
//! expires_at > now` (no row changed: the lease is lost); releasing is an `UPDATE … WHERE holder = ?`. There is
//! no read before a write, so the outcome of concurrent acquisitions is decided by the database: exactly one of
//! them finds the lease free. Reading the state is one statement on a reader connection.
//!
//! Times are the callers' clocks, stored as RFC 3339 UTC text with nine fraction digits (text order is time
//! order, as everywhere in this schema).

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use person_core::ports::{RelayError, RelayLease, RelayRepository, StoreError};

use crate::SqliteStore;
use crate::error::{failed, out_of_range};
use crate::execution::{WriteTx, counted};
use crate::queries;
use crate::repository::finish;
use crate::rows::{RelayRow, timestamp, to_sql_integer};

/// When a lease taken or renewed at `now` for `ttl` lapses, as stored.
fn lease_end(now: DateTime<Utc>, ttl: TimeDelta) -> Result<String, StoreError> {
    now.checked_add_signed(ttl).map(timestamp).ok_or_else(|| out_of_range("relay lease expiry"))
}

/// The acquiring upsert, inside its transaction.
async fn acquire_in(
    tx: &mut WriteTx,
    relay: &str,
    holder: &str,
    now: &str,
    expires_at: &str,
) -> Result<Option<RelayLease>, StoreError> {
    let acquire = &queries::RELAY_ACQUIRE;
    let statement = sqlx::query_as::<_, RelayRow>(acquire.sql)
        .bind(relay)
        .bind(holder)
        .bind(expires_at)
        .bind(now)
        .fetch_optional(&mut *tx.conn);
    counted(&tx.recorder, acquire, statement).await.map_err(failed(acquire.name))?.map(RelayRow::into_lease).transpose()
}

/// The advancing update, inside its transaction.
async fn advance_in(
    tx: &mut WriteTx,
    relay: &str,
    holder: &str,
    position: i64,
    now: &str,
    expires_at: &str,
) -> Result<(), RelayError> {
    let advance = &queries::RELAY_ADVANCE;
    let statement = sqlx::query(advance.sql)
        .bind(position)
        .bind(expires_at)
        .bind(relay)
        .bind(holder)
        .bind(now)
        .execute(&mut *tx.conn);
    let advanced = counted(&tx.recorder, advance, statement).await.map_err(failed(advance.name))?;
    if advanced.rows_affected() == 1 { Ok(()) } else { Err(RelayError::LeaseLost) }
}

/// The releasing update, inside its transaction.
async fn release_in(tx: &mut WriteTx, relay: &str, holder: &str) -> Result<(), StoreError> {
    let release = &queries::RELAY_RELEASE;
    let statement = sqlx::query(release.sql).bind(relay).bind(holder).execute(&mut *tx.conn);
    counted(&tx.recorder, release, statement).await.map_err(failed(release.name))?;
    Ok(())
}

#[async_trait]
impl RelayRepository for SqliteStore {
    async fn acquire_relay_lease(
        &self,
        relay: &str,
        holder: &str,
        now: DateTime<Utc>,
        ttl: TimeDelta,
    ) -> Result<Option<RelayLease>, StoreError> {
        let expires_at = lease_end(now, ttl)?;
        let mut tx = self.begin_write().await?;
        let outcome = acquire_in(&mut tx, relay, holder, &timestamp(now), &expires_at).await;
        finish(tx, outcome).await
    }

    async fn advance_relay(
        &self,
        relay: &str,
        holder: &str,
        position: u64,
        now: DateTime<Utc>,
        ttl: TimeDelta,
    ) -> Result<(), RelayError> {
        let position = to_sql_integer(position, "relay position")?;
        let expires_at = lease_end(now, ttl)?;
        let mut tx = self.begin_write().await?;
        let outcome = advance_in(&mut tx, relay, holder, position, &timestamp(now), &expires_at).await;
        finish(tx, outcome).await
    }

    async fn release_relay_lease(&self, relay: &str, holder: &str) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let outcome = release_in(&mut tx, relay, holder).await;
        finish(tx, outcome).await
    }

    async fn relay_state(&self, relay: &str) -> Result<Option<RelayLease>, StoreError> {
        let state = &queries::RELAY_STATE;
        let statement = sqlx::query_as::<_, RelayRow>(state.sql).bind(relay).fetch_optional(&self.readers);
        counted(&self.recorder, state, statement)
            .await
            .map_err(failed(state.name))?
            .map(RelayRow::into_lease)
            .transpose()
    }
}
