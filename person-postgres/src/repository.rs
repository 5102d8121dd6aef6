//! [`PersonRepository`] for [`PostgresStore`]: every write is one transaction (the change, its search keys,
//! history entry, audit entry and, last, its event); every read is one statement on a pooled connection.
//!
//! Errors a caller must act on (`DuplicateId`, `IdempotencyKeyTaken`, `DuplicatePerson`, `NotFound`,
//! `VersionConflict`) are found by checks inside the write transaction. The dedup check is exact because the
//! transaction holds the advisory lock of the key; the id and idempotency-key checks are not locked, so a race
//! between two creates surfaces as a primary-key violation of the second, which is classified by constraint name.
//! `ReferenceTaken` comes last: the person's cross-references are claimed after its row is written (see
//! `references`), and a refusal rolls the transaction back.

use async_trait::async_trait;
use person_core::event::{FeedEntry, HistoryEntry, PersonEvent};
use person_core::matching::{KeySource, SearchKey};
use person_core::ports::{
    Candidate, IdempotencyRecord, InsertError, MergeWrite, MergeWriteError, NewPersonWrite, PersonRepository,
    PersonWrite, StoreError, UpdateError,
};
use person_core::reference::CrossReference;
use person_core::storage::QueryRecorder;
use person_core::{Person, PersonId, PersonRef};
use sqlx::{PgConnection, Postgres, Transaction};
use uuid::Uuid;

use crate::PostgresStore;
use crate::documents::insert_audit;
use crate::error::{PostgresStoreError, failed, violated_unique_constraint};
use crate::queries;
use crate::recorded::{affected, fetched, found, one};
use crate::references::{insert_references, rewrite_references};
use crate::rows::{
    AuditColumns, CandidateRow, DocumentText, IdempotencyRow, PersonColumns, PositionedRow, from_bigint, key_texts,
    person_id, source_text, to_bigint, to_document, uuids,
};

/// A write transaction.
pub(crate) type WriteTx = Transaction<'static, Postgres>;

impl PostgresStore {
    /// Starts a write transaction on a pooled connection.
    pub(crate) async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        self.queries.run(&queries::BEGIN, self.pool.begin()).await.map_err(failed(queries::BEGIN.name))
    }
}

/// Commits `tx` when `outcome` is a success, rolls it back otherwise.
pub(crate) async fn finish<T, E: From<StoreError>>(
    q: &QueryRecorder,
    tx: WriteTx,
    outcome: Result<T, E>,
) -> Result<T, E> {
    match outcome {
        Ok(value) => {
            q.run(&queries::COMMIT, tx.commit()).await.map_err(failed(queries::COMMIT.name))?;
            Ok(value)
        }
        Err(error) => {
            if let Err(rollback) = q.run(&queries::ROLLBACK, tx.rollback()).await {
                // The refusal is what the caller needs; sqlx discards a broken connection.
                let rollback = failed(queries::ROLLBACK.name)(rollback);
                tracing::warn!(error = &rollback as &dyn std::error::Error, "rollback after a refused write failed");
            }
            Err(error)
        }
    }
}

/// Takes the advisory lock of a dedup key until the transaction ends.
pub(crate) async fn lock_dedup_key(tx: &mut PgConnection, q: &QueryRecorder, key: &str) -> Result<(), StoreError> {
    let query = &queries::LOCK_DEDUP_KEY;
    q.run_counted(query, sqlx::query(query.sql).bind(key).execute(tx), affected).await.map_err(failed(query.name))?;
    Ok(())
}

/// The live person other than `except` holding the dedup key `key`.
pub(crate) async fn dedup_holder(
    tx: &mut PgConnection,
    q: &QueryRecorder,
    key: &str,
    except: Uuid,
) -> Result<Option<PersonId>, StoreError> {
    let query = &queries::PERSON_BY_DEDUP_KEY;
    let statement = sqlx::query_scalar::<_, Uuid>(query.sql).bind(key).bind(except).fetch_optional(tx);
    q.run_counted(query, statement, found).await.map_err(failed(query.name))?.map(person_id).transpose()
}

/// The dedup key a written person holds: none unless it is live.
pub(crate) fn live_dedup_key<'w>(person: &Person, key: Option<&'w str>) -> Option<&'w str> {
    if person.status.is_active() { key } else { None }
}

/// Whether a person (in any state) has the id.
async fn person_exists(tx: &mut PgConnection, q: &QueryRecorder, id: Uuid) -> Result<bool, StoreError> {
    let query = &queries::PERSON_EXISTS;
    let statement = sqlx::query_scalar::<_, bool>(query.sql).bind(id).fetch_one(tx);
    q.run_counted(query, statement, one).await.map_err(failed(query.name))
}

async fn insert_person_row(
    tx: &mut PgConnection,
    q: &QueryRecorder,
    person: &Person,
    dedup_key: Option<&str>,
) -> Result<(), InsertError> {
    let row = PersonColumns::new(person)?;
    let query = &queries::INSERT_PERSON;
    let statement = sqlx::query(query.sql)
        .bind(row.id)
        .bind(row.person_ref)
        .bind(row.version_number)
        .bind(row.state)
        .bind(row.merged_into)
        .bind(row.document)
        .bind(row.created_at)
        .bind(row.last_modified)
        .bind(row.processing_restricted)
        .bind(live_dedup_key(person, dedup_key))
        .bind(row.tenure_count)
        .bind(row.reference_count)
        .execute(tx);
    match q.run_counted(query, statement, affected).await {
        Ok(_) => Ok(()),
        // A concurrent create with the same client-supplied id committed first. (A violation of
        // `persons_dedup_key_key` cannot happen to a writer holding the key's advisory lock; should a writer that
        // bypasses the lock cause one, it stays unexpected.)
        Err(error) if violated_unique_constraint(&error) == Some("persons_pkey") => Err(InsertError::DuplicateId),
        Err(error) => Err(failed(query.name)(error).into()),
    }
}

async fn insert_idempotency_row(
    tx: &mut PgConnection,
    q: &QueryRecorder,
    record: &IdempotencyRecord,
) -> Result<(), InsertError> {
    let query = &queries::INSERT_IDEMPOTENCY;
    let statement = sqlx::query(query.sql)
        .bind(&record.key)
        .bind(&record.fingerprint)
        .bind(record.person.id.as_uuid())
        .bind(to_document(&record.person, "idempotent person")?)
        .bind(record.created_at)
        .execute(tx);
    match q.run_counted(query, statement, affected).await {
        Ok(_) => Ok(()),
        Err(error) if violated_unique_constraint(&error) == Some("idempotency_pkey") => {
            Err(InsertError::IdempotencyKeyTaken)
        }
        Err(error) => Err(failed(query.name)(error).into()),
    }
}

/// Appends an event to the feed: the last statement of every event-writing transaction (see `INSERT_EVENT`).
pub(crate) async fn insert_event_row(
    tx: &mut PgConnection,
    q: &QueryRecorder,
    event: &PersonEvent,
) -> Result<(), StoreError> {
    let query = &queries::INSERT_EVENT;
    let statement = sqlx::query(query.sql)
        .bind(event.id)
        .bind(event.entity_id.as_uuid())
        .bind(event.event_type.as_str())
        .bind(to_document(event, "event")?)
        .execute(tx);
    let inserted = q.run_counted(query, statement, affected).await.map_err(failed(query.name))?;
    if inserted.rows_affected() == 1 {
        Ok(())
    } else {
        Err(PostgresStoreError::MissingCounter("event_position").into())
    }
}

pub(crate) async fn insert_history_row(
    tx: &mut PgConnection,
    q: &QueryRecorder,
    entry: &HistoryEntry,
) -> Result<(), StoreError> {
    let query = &queries::INSERT_HISTORY;
    let statement = sqlx::query(query.sql)
        .bind(entry.person_id.as_uuid())
        .bind(to_bigint(entry.version_number, "history version")?)
        .bind(entry.event_id)
        .bind(to_document(entry, "history entry")?)
        .execute(tx);
    q.run_counted(query, statement, affected).await.map_err(failed(query.name))?;
    Ok(())
}

/// Replaces the keys of `source` of a person with `keys`.
pub(crate) async fn replace_keys(
    tx: &mut PgConnection,
    q: &QueryRecorder,
    person: Uuid,
    source: KeySource,
    keys: &[SearchKey],
) -> Result<(), StoreError> {
    let query = &queries::DELETE_SEARCH_KEYS;
    let statement = sqlx::query(query.sql).bind(person).bind(source_text(source)).execute(&mut *tx);
    q.run_counted(query, statement, affected).await.map_err(failed(query.name))?;
    insert_keys(tx, q, person, source, keys).await
}

async fn insert_keys(
    tx: &mut PgConnection,
    q: &QueryRecorder,
    person: Uuid,
    source: KeySource,
    keys: &[SearchKey],
) -> Result<(), StoreError> {
    if keys.is_empty() {
        return Ok(());
    }
    let query = &queries::INSERT_SEARCH_KEYS;
    let statement = sqlx::query(query.sql).bind(person).bind(source_text(source)).bind(key_texts(keys)).execute(tx);
    q.run_counted(query, statement, affected).await.map_err(failed(query.name))?;
    Ok(())
}

/// Replaces a written person's keys: its `person` keys when it is live, every key when it is not.
pub(crate) async fn rewrite_keys(
    tx: &mut PgConnection,
    q: &QueryRecorder,
    person: &Person,
    keys: &[SearchKey],
) -> Result<(), StoreError> {
    let id = person.id.as_uuid();
    if person.status.is_active() {
        replace_keys(tx, q, id, KeySource::Person, keys).await
    } else {
        let query = &queries::DELETE_ALL_SEARCH_KEYS;
        q.run_counted(query, sqlx::query(query.sql).bind(id).execute(tx), affected)
            .await
            .map_err(failed(query.name))?;
        Ok(())
    }
}

/// The body of a create, inside its transaction.
async fn create_in(tx: &mut PgConnection, q: &QueryRecorder, write: NewPersonWrite) -> Result<Person, InsertError> {
    let id = write.id().as_uuid();
    if let Some(key) = write.dedup_key() {
        lock_dedup_key(tx, q, key).await?;
    }
    if person_exists(tx, q, id).await? {
        return Err(InsertError::DuplicateId);
    }
    if let Some(key) = write.idempotency() {
        let query = &queries::IDEMPOTENCY_KEY_EXISTS;
        let statement = sqlx::query_scalar::<_, bool>(query.sql).bind(&key.key).fetch_one(&mut *tx);
        if q.run_counted(query, statement, one).await.map_err(failed(query.name))? {
            return Err(InsertError::IdempotencyKeyTaken);
        }
    }
    if let Some(key) = write.dedup_key()
        && let Some(existing) = dedup_holder(tx, q, key, id).await?
    {
        return Err(InsertError::DuplicatePerson { existing });
    }
    let query = &queries::NEXT_PERSON_REF;
    let person_ref = q
        .run_counted(query, sqlx::query_scalar::<_, i64>(query.sql).fetch_one(&mut *tx), one)
        .await
        .map_err(failed(query.name))?;
    let created = write.assign(PersonRef(person_ref));
    insert_person_row(tx, q, &created.person, created.dedup_key.as_deref()).await?;
    if created.person.status.is_active() {
        insert_keys(tx, q, id, KeySource::Person, &created.search_keys).await?;
    }
    if let Some((reference, owner)) = insert_references(tx, q, &created.person).await? {
        return Err(InsertError::ReferenceTaken { reference, owner });
    }
    insert_history_row(tx, q, &created.history).await?;
    if let Some(record) = &created.idempotency {
        insert_idempotency_row(tx, q, record).await?;
    }
    insert_audit(tx, q, &AuditColumns::new(&created.audit)?).await?;
    insert_event_row(tx, q, &created.event).await?;
    Ok(created.person)
}

/// The stored version of a person, `None` when there is none.
pub(crate) async fn stored_version(
    tx: &mut PgConnection,
    q: &QueryRecorder,
    id: Uuid,
) -> Result<Option<u64>, StoreError> {
    let query = &queries::PERSON_VERSION;
    q.run_counted(query, sqlx::query_scalar::<_, i64>(query.sql).bind(id).fetch_optional(tx), found)
        .await
        .map_err(failed(query.name))?
        .map(|version| from_bigint(version, "person version"))
        .transpose()
}

/// Why a compare-and-set on a person matched no row.
fn missed(current: Option<u64>) -> UpdateError {
    match current {
        None => UpdateError::NotFound,
        Some(current) => UpdateError::VersionConflict { current },
    }
}

/// The compare-and-set of a person (row and dedup key), without its keys, event or history. `Ok(false)`: the
/// stored version was not `expected` (or there is no such person).
pub(crate) async fn replace_person_row(
    tx: &mut PgConnection,
    q: &QueryRecorder,
    person: &Person,
    expected: u64,
    dedup_key: Option<&str>,
) -> Result<bool, StoreError> {
    let row = PersonColumns::new(person)?;
    let query = &queries::UPDATE_PERSON;
    let statement = sqlx::query(query.sql)
        .bind(row.version_number)
        .bind(row.state)
        .bind(row.merged_into)
        .bind(row.document)
        .bind(row.last_modified)
        .bind(row.processing_restricted)
        .bind(live_dedup_key(person, dedup_key))
        .bind(row.tenure_count)
        .bind(row.reference_count)
        .bind(row.id)
        .bind(to_bigint(expected, "expected version")?)
        .execute(tx);
    let done = q.run_counted(query, statement, affected).await.map_err(failed(query.name))?;
    Ok(done.rows_affected() == 1)
}

/// The body of an update, inside its transaction.
async fn update_in(tx: &mut PgConnection, q: &QueryRecorder, write: &PersonWrite) -> Result<(), UpdateError> {
    let id = write.person.id.as_uuid();
    let dedup_key = live_dedup_key(&write.person, write.dedup_key.as_deref());
    if let Some(key) = dedup_key {
        lock_dedup_key(tx, q, key).await?;
        // NotFound and VersionConflict come before DuplicatePerson (the port's order).
        if let Some(existing) = dedup_holder(tx, q, key, id).await? {
            return Err(match stored_version(tx, q, id).await? {
                Some(current) if current == write.expected_version => UpdateError::DuplicatePerson { existing },
                other => missed(other),
            });
        }
    }
    if !replace_person_row(tx, q, &write.person, write.expected_version, dedup_key).await? {
        return Err(missed(stored_version(tx, q, id).await?));
    }
    rewrite_keys(tx, q, &write.person, &write.search_keys).await?;
    // After the compare-and-set: NotFound, VersionConflict and DuplicatePerson come first (the port's order).
    if let Some((reference, owner)) = rewrite_references(tx, q, &write.person).await? {
        return Err(UpdateError::ReferenceTaken { reference, owner });
    }
    insert_history_row(tx, q, &write.history).await?;
    insert_audit(tx, q, &AuditColumns::new(&write.audit)?).await?;
    insert_event_row(tx, q, &write.event).await?;
    Ok(())
}

#[async_trait]
impl PersonRepository for PostgresStore {
    async fn close(&self) {
        PostgresStore::close(self).await;
    }

    async fn insert(&self, write: NewPersonWrite) -> Result<Person, InsertError> {
        let mut tx = self.begin_write().await?;
        let outcome = create_in(&mut tx, &self.queries, write).await;
        finish(&self.queries, tx, outcome).await
    }

    async fn get(&self, id: PersonId) -> Result<Option<Person>, StoreError> {
        let query = &queries::GET_PERSON;
        let statement = sqlx::query_as::<_, DocumentText>(query.sql).bind(id.as_uuid()).fetch_optional(&self.pool);
        self.queries
            .run_counted(query, statement, found)
            .await
            .map_err(failed(query.name))?
            .map(DocumentText::into_person)
            .transpose()
    }

    async fn update(&self, write: PersonWrite) -> Result<(), UpdateError> {
        let mut tx = self.begin_write().await?;
        let outcome = update_in(&mut tx, &self.queries, &write).await;
        finish(&self.queries, tx, outcome).await
    }

    async fn candidates(&self, keys: &[SearchKey], limit: u32) -> Result<Vec<Candidate>, StoreError> {
        if keys.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let query = &queries::CANDIDATES;
        let statement = sqlx::query_as::<_, CandidateRow>(query.sql)
            .bind(key_texts(keys))
            .bind(i64::from(limit))
            .fetch_all(&self.pool);
        self.queries
            .run_counted(query, statement, fetched)
            .await
            .map_err(failed(query.name))?
            .into_iter()
            .map(CandidateRow::into_candidate)
            .collect()
    }

    async fn merge(&self, write: MergeWrite) -> Result<(), MergeWriteError> {
        self.merge_persons(write).await
    }

    async fn find_by_reference(&self, reference: &CrossReference) -> Result<Option<PersonId>, StoreError> {
        self.reference_owner(reference).await
    }

    async fn history(&self, id: PersonId) -> Result<Vec<HistoryEntry>, StoreError> {
        let query = &queries::LIST_HISTORY;
        let statement = sqlx::query_as::<_, DocumentText>(query.sql).bind(id.as_uuid()).fetch_all(&self.pool);
        self.queries
            .run_counted(query, statement, fetched)
            .await
            .map_err(failed(query.name))?
            .into_iter()
            .map(DocumentText::into_history)
            .collect()
    }

    async fn events_after(&self, after: u64, limit: u32) -> Result<Vec<FeedEntry>, StoreError> {
        // Positions are bigints: nothing lies beyond i64::MAX.
        let Ok(after) = i64::try_from(after) else {
            return Ok(Vec::new());
        };
        let query = &queries::EVENTS_AFTER;
        let statement =
            sqlx::query_as::<_, PositionedRow>(query.sql).bind(after).bind(i64::from(limit)).fetch_all(&self.pool);
        self.queries
            .run_counted(query, statement, fetched)
            .await
            .map_err(failed(query.name))?
            .into_iter()
            .map(PositionedRow::into_feed_entry)
            .collect()
    }

    async fn find_idempotent_create(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        let query = &queries::GET_IDEMPOTENCY;
        let statement = sqlx::query_as::<_, IdempotencyRow>(query.sql).bind(key).fetch_optional(&self.pool);
        self.queries
            .run_counted(query, statement, found)
            .await
            .map_err(failed(query.name))?
            .map(IdempotencyRow::into_record)
            .transpose()
    }

    async fn restricted_among(&self, ids: &[PersonId]) -> Result<Vec<PersonId>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let query = &queries::RESTRICTED_AMONG;
        let statement = sqlx::query_scalar::<_, Uuid>(query.sql).bind(uuids(ids)).fetch_all(&self.pool);
        self.queries
            .run_counted(query, statement, fetched)
            .await
            .map_err(failed(query.name))?
            .into_iter()
            .map(person_id)
            .collect()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let query = &queries::PING;
        self.queries
            .run_counted(query, sqlx::query(query.sql).execute(&self.pool), affected)
            .await
            .map_err(failed(query.name))?;
        Ok(())
    }
}
