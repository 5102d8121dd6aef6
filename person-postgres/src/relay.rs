//! [`RelayRepository`] for [`PostgresStore`]: the event relay's lease and feed position, one `relays` row per
//! relay.
//!
//! Every method is one statement on the row's primary key, atomic on its own (no read-then-write): acquiring is an
//! `INSERT … ON CONFLICT ON CONSTRAINT relays_pkey DO UPDATE … WHERE <free, expired or ours> RETURNING …`, so
//! concurrent acquirers queue on the row and each re-checks the condition on the row the previous one committed
//! (of acquisitions of a free lease exactly one returns it); advancing and releasing are `UPDATE`s conditional on
//! the holder (and, for advancing, on the lease being unexpired at the caller's `now`). Times are the callers'
//! clocks, never the database's.

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use person_core::ports::{RelayError, RelayLease, RelayRepository, StoreError};
use person_core::storage::out_of_range;

use crate::PostgresStore;
use crate::error::failed;
use crate::queries;
use crate::recorded::{affected, found};
use crate::rows::{RelayRow, to_bigint};

/// When a lease taken or renewed at `now` for `ttl` lapses.
fn lease_end(now: DateTime<Utc>, ttl: TimeDelta) -> Result<DateTime<Utc>, StoreError> {
    now.checked_add_signed(ttl).ok_or_else(|| out_of_range("relay lease expiry"))
}

#[async_trait]
impl RelayRepository for PostgresStore {
    async fn acquire_relay_lease(
        &self,
        relay: &str,
        holder: &str,
        now: DateTime<Utc>,
        ttl: TimeDelta,
    ) -> Result<Option<RelayLease>, StoreError> {
        let expires_at = lease_end(now, ttl)?;
        let query = &queries::RELAY_ACQUIRE;
        let statement = sqlx::query_as::<_, RelayRow>(query.sql)
            .bind(relay)
            .bind(holder)
            .bind(now)
            .bind(expires_at)
            .fetch_optional(&self.pool);
        self.queries
            .run_counted(query, statement, found)
            .await
            .map_err(failed(query.name))?
            .map(RelayRow::into_lease)
            .transpose()
    }

    async fn advance_relay(
        &self,
        relay: &str,
        holder: &str,
        position: u64,
        now: DateTime<Utc>,
        ttl: TimeDelta,
    ) -> Result<(), RelayError> {
        let expires_at = lease_end(now, ttl)?;
        let query = &queries::RELAY_ADVANCE;
        let statement = sqlx::query(query.sql)
            .bind(relay)
            .bind(holder)
            .bind(to_bigint(position, "relay position")?)
            .bind(now)
            .bind(expires_at)
            .execute(&self.pool);
        let advanced = self.queries.run_counted(query, statement, affected).await.map_err(failed(query.name))?;
        if advanced.rows_affected() == 1 { Ok(()) } else { Err(RelayError::LeaseLost) }
    }

    async fn release_relay_lease(&self, relay: &str, holder: &str) -> Result<(), StoreError> {
        let query = &queries::RELAY_RELEASE;
        let statement = sqlx::query(query.sql).bind(relay).bind(holder).execute(&self.pool);
        self.queries.run_counted(query, statement, affected).await.map_err(failed(query.name))?;
        Ok(())
    }

    async fn relay_state(&self, relay: &str) -> Result<Option<RelayLease>, StoreError> {
        let query = &queries::RELAY_STATE;
        let statement = sqlx::query_as::<_, RelayRow>(query.sql).bind(relay).fetch_optional(&self.pool);
        self.queries
            .run_counted(query, statement, found)
            .await
            .map_err(failed(query.name))?
            .map(RelayRow::into_lease)
            .transpose()
    }
}
