//! Search keys and dedup keys in SQLite: replacing a person's keys inside a write transaction, the dedup-key
//! check, candidate retrieval, and the backfill that computes keys for rows stored before migration 0003.
//!
//! Keys are opaque strings computed by `person-core` ([`PersonKeys`]); this module only stores and finds them.

use crate::SqliteStore;
use crate::error::{SQLITE_CONSTRAINT_UNIQUE, failed, out_of_range, sqlite_code};
use crate::execution::{WriteTx, counted};
use crate::queries;
use crate::repository::finish;
use crate::rows::{CandidateRow, PersonIdRow, PersonRow, key_list, source_text};
use person_core::PersonId;
use person_core::matching::{KeySource, SearchKey};
use person_core::ports::{Candidate, StoreError};
use person_core::service::PersonKeys;

/// Persons whose keys the backfill computes per transaction: small enough to keep the write lock briefly.
const BACKFILL_BATCH: i64 = 500;

/// The live person other than `except` holding the dedup key `key`.
pub(crate) async fn dedup_holder(tx: &mut WriteTx, key: &str, except: &str) -> Result<Option<PersonId>, StoreError> {
    let holder = &queries::PERSON_BY_DEDUP_KEY;
    let statement = sqlx::query_as::<_, PersonIdRow>(holder.sql).bind(key).bind(except).fetch_optional(&mut *tx.conn);
    counted(&tx.recorder, holder, statement).await.map_err(failed(holder.name))?.map(PersonIdRow::into_id).transpose()
}

/// True when `error` is a UNIQUE index violation (on `persons`: the dedup key, or `person_ref`).
pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    sqlite_code(error) == Some(SQLITE_CONSTRAINT_UNIQUE)
}

/// Replaces the keys of `source` of a person with `keys`.
pub(crate) async fn replace_keys(
    tx: &mut WriteTx,
    person_id: &str,
    source: KeySource,
    keys: &[SearchKey],
) -> Result<(), StoreError> {
    let source = source_text(source);
    let delete = &queries::DELETE_SEARCH_KEYS;
    let statement = sqlx::query(delete.sql).bind(person_id).bind(source).execute(&mut *tx.conn);
    counted(&tx.recorder, delete, statement).await.map_err(failed(delete.name))?;
    insert_keys(tx, person_id, source, keys).await
}

async fn insert_keys(
    tx: &mut WriteTx,
    person_id: &str,
    source: &'static str,
    keys: &[SearchKey],
) -> Result<(), StoreError> {
    if keys.is_empty() {
        return Ok(());
    }
    let insert = &queries::INSERT_SEARCH_KEYS;
    let statement = sqlx::query(insert.sql).bind(person_id).bind(source).bind(key_list(keys)?).execute(&mut *tx.conn);
    counted(&tx.recorder, insert, statement).await.map_err(failed(insert.name))?;
    Ok(())
}

/// Removes every key of a person (it is no longer live).
pub(crate) async fn drop_keys(tx: &mut WriteTx, person_id: &str) -> Result<(), StoreError> {
    let delete = &queries::DELETE_ALL_SEARCH_KEYS;
    let statement = sqlx::query(delete.sql).bind(person_id).execute(&mut *tx.conn);
    counted(&tx.recorder, delete, statement).await.map_err(failed(delete.name))?;
    Ok(())
}

/// Inserts the [`KeySource::Person`] keys of a person just created.
pub(crate) async fn insert_person_keys(
    tx: &mut WriteTx,
    person_id: &str,
    keys: &[SearchKey],
) -> Result<(), StoreError> {
    insert_keys(tx, person_id, source_text(KeySource::Person), keys).await
}

impl SqliteStore {
    /// Candidate retrieval, one indexed statement on a reader connection.
    pub(crate) async fn find_candidates(&self, keys: &[SearchKey], limit: u32) -> Result<Vec<Candidate>, StoreError> {
        if keys.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let search = &queries::CANDIDATES;
        let statement = sqlx::query_as::<_, CandidateRow>(search.sql)
            .bind(key_list(keys)?)
            .bind(i64::from(limit))
            .fetch_all(&self.readers);
        counted(&self.recorder, search, statement)
            .await
            .map_err(failed(search.name))?
            .into_iter()
            .map(CandidateRow::into_candidate)
            .collect()
    }

    /// Computes the keys of every person stored without them (rows from before migration 0003, or all rows after
    /// [`Self::recompute_search_keys`] marked them), in batches of one transaction each. Returns how many
    /// persons it indexed.
    ///
    /// Dedup keys are taken first come, first served in id order: should old data hold the same person twice,
    /// the second keeps no dedup key (an allowed duplicate, as if created with `allowDuplicate`), and staff merge
    /// them.
    pub(crate) async fn backfill_search_keys(&self) -> Result<u64, StoreError> {
        let mut indexed = 0_u64;
        loop {
            let mut tx = self.begin_write().await?;
            let outcome = backfill_batch(&mut tx).await;
            let count = finish(tx, outcome).await?;
            if count == 0 {
                if indexed > 0 {
                    tracing::info!(persons = indexed, "search keys computed for persons stored without them");
                }
                return Ok(indexed);
            }
            indexed += count;
        }
    }
}

/// One batch of the backfill, inside its transaction; the number of persons indexed (0: done).
async fn backfill_batch(tx: &mut WriteTx) -> Result<u64, StoreError> {
    let unindexed = &queries::UNINDEXED_PERSONS;
    let statement = sqlx::query_as::<_, PersonRow>(unindexed.sql).bind(BACKFILL_BATCH).fetch_all(&mut *tx.conn);
    let rows = counted(&tx.recorder, unindexed, statement).await.map_err(failed(unindexed.name))?;
    let count = u64::try_from(rows.len()).map_err(|_| out_of_range("backfill batch"))?;
    for row in rows {
        let person = row.into_person()?;
        let id = person.id.to_string();
        let equality = &queries::EQUALITY_NINO;
        let statement = sqlx::query_scalar::<_, Option<String>>(equality.sql).bind(&id).fetch_optional(&mut *tx.conn);
        let nino = counted(&tx.recorder, equality, statement).await.map_err(failed(equality.name))?.flatten();
        let keys = PersonKeys::of(&person, nino.as_deref());
        drop_keys(tx, &id).await?;
        insert_keys(tx, &id, source_text(KeySource::Person), &keys.person).await?;
        insert_keys(tx, &id, source_text(KeySource::Equality), &keys.equality).await?;
        let dedup = match keys.dedup {
            Some(key) if dedup_holder(tx, &key, &id).await?.is_none() => Some(key),
            _ => None,
        };
        let set = &queries::SET_PERSON_KEYS;
        let statement = sqlx::query(set.sql).bind(dedup).bind(&id).execute(&mut *tx.conn);
        counted(&tx.recorder, set, statement).await.map_err(failed(set.name))?;
    }
    Ok(count)
}
