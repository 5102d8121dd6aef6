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
use person_core::{Person, PersonId, PersonRef};
use sqlx::{PgConnection, Postgres, Transaction};
use uuid::Uuid;

use crate::PostgresStore;
use crate::documents::insert_audit;
use crate::error::{PostgresStoreError, failed, violated_unique_constraint};
use crate::queries;
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
        self.pool.begin().await.map_err(failed("transaction.begin"))
    }
}

/// Commits `tx` when `outcome` is a success, rolls it back otherwise.
pub(crate) async fn finish<T, E: From<StoreError>>(tx: WriteTx, outcome: Result<T, E>) -> Result<T, E> {
    match outcome {
        Ok(value) => {
            tx.commit().await.map_err(failed("transaction.commit"))?;
            Ok(value)
        }
        Err(error) => {
            if let Err(rollback) = tx.rollback().await {
                // The refusal is what the caller needs; sqlx discards a broken connection.
                let rollback = failed("transaction.rollback")(rollback);
                tracing::warn!(error = &rollback as &dyn std::error::Error, "rollback after a refused write failed");
            }
            Err(error)
        }
    }
}

/// Takes the advisory lock of a dedup key until the transaction ends.
pub(crate) async fn lock_dedup_key(tx: &mut PgConnection, key: &str) -> Result<(), StoreError> {
    sqlx::query(queries::LOCK_DEDUP_KEY).bind(key).execute(tx).await.map_err(failed("person.lock_dedup_key"))?;
    Ok(())
}

/// The live person other than `except` holding the dedup key `key`.
pub(crate) async fn dedup_holder(
    tx: &mut PgConnection,
    key: &str,
    except: Uuid,
) -> Result<Option<PersonId>, StoreError> {
    sqlx::query_scalar::<_, Uuid>(queries::PERSON_BY_DEDUP_KEY)
        .bind(key)
        .bind(except)
        .fetch_optional(tx)
        .await
        .map_err(failed("person.by_dedup_key"))?
        .map(person_id)
        .transpose()
}

/// The dedup key a written person holds: none unless it is live.
pub(crate) fn live_dedup_key<'w>(person: &Person, key: Option<&'w str>) -> Option<&'w str> {
    if person.status.is_active() { key } else { None }
}

async fn exists(tx: &mut PgConnection, sql: &'static str, name: &'static str, key: Uuid) -> Result<bool, StoreError> {
    sqlx::query_scalar::<_, bool>(sql).bind(key).fetch_one(tx).await.map_err(failed(name))
}

async fn insert_person_row(tx: &mut PgConnection, person: &Person, dedup_key: Option<&str>) -> Result<(), InsertError> {
    let row = PersonColumns::new(person)?;
    let result = sqlx::query(queries::INSERT_PERSON)
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
        .execute(tx)
        .await;
    match result {
        Ok(_) => Ok(()),
        // A concurrent create with the same client-supplied id committed first. (A violation of
        // `persons_dedup_key_key` cannot happen to a writer holding the key's advisory lock; should a writer that
        // bypasses the lock cause one, it stays unexpected.)
        Err(error) if violated_unique_constraint(&error) == Some("persons_pkey") => Err(InsertError::DuplicateId),
        Err(error) => Err(failed("person.insert")(error).into()),
    }
}

async fn insert_idempotency_row(tx: &mut PgConnection, record: &IdempotencyRecord) -> Result<(), InsertError> {
    let result = sqlx::query(queries::INSERT_IDEMPOTENCY)
        .bind(&record.key)
        .bind(&record.fingerprint)
        .bind(record.person.id.as_uuid())
        .bind(to_document(&record.person, "idempotent person")?)
        .bind(record.created_at)
        .execute(tx)
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(error) if violated_unique_constraint(&error) == Some("idempotency_pkey") => {
            Err(InsertError::IdempotencyKeyTaken)
        }
        Err(error) => Err(failed("idempotency.insert")(error).into()),
    }
}

/// Appends an event to the feed: the last statement of every event-writing transaction (see `INSERT_EVENT`).
pub(crate) async fn insert_event_row(tx: &mut PgConnection, event: &PersonEvent) -> Result<(), StoreError> {
    let inserted = sqlx::query(queries::INSERT_EVENT)
        .bind(event.id)
        .bind(event.entity_id.as_uuid())
        .bind(event.event_type.as_str())
        .bind(to_document(event, "event")?)
        .execute(tx)
        .await
        .map_err(failed("event.insert"))?;
    if inserted.rows_affected() == 1 {
        Ok(())
    } else {
        Err(PostgresStoreError::MissingCounter("event_position").into())
    }
}

pub(crate) async fn insert_history_row(tx: &mut PgConnection, entry: &HistoryEntry) -> Result<(), StoreError> {
    sqlx::query(queries::INSERT_HISTORY)
        .bind(entry.person_id.as_uuid())
        .bind(to_bigint(entry.version_number, "history version")?)
        .bind(entry.event_id)
        .bind(to_document(entry, "history entry")?)
        .execute(tx)
        .await
        .map_err(failed("history.insert"))?;
    Ok(())
}

/// Replaces the keys of `source` of a person with `keys`.
pub(crate) async fn replace_keys(
    tx: &mut PgConnection,
    person: Uuid,
    source: KeySource,
    keys: &[SearchKey],
) -> Result<(), StoreError> {
    sqlx::query(queries::DELETE_SEARCH_KEYS)
        .bind(person)
        .bind(source_text(source))
        .execute(&mut *tx)
        .await
        .map_err(failed("search_keys.delete"))?;
    insert_keys(tx, person, source, keys).await
}

async fn insert_keys(
    tx: &mut PgConnection,
    person: Uuid,
    source: KeySource,
    keys: &[SearchKey],
) -> Result<(), StoreError> {
    if keys.is_empty() {
        return Ok(());
    }
    sqlx::query(queries::INSERT_SEARCH_KEYS)
        .bind(person)
        .bind(source_text(source))
        .bind(key_texts(keys))
        .execute(tx)
        .await
        .map_err(failed("search_keys.insert"))?;
    Ok(())
}

/// Replaces a written person's keys: its `person` keys when it is live, every key when it is not.
pub(crate) async fn rewrite_keys(tx: &mut PgConnection, person: &Person, keys: &[SearchKey]) -> Result<(), StoreError> {
    let id = person.id.as_uuid();
    if person.status.is_active() {
        replace_keys(tx, id, KeySource::Person, keys).await
    } else {
        sqlx::query(queries::DELETE_ALL_SEARCH_KEYS)
            .bind(id)
            .execute(tx)
            .await
            .map_err(failed("search_keys.delete_all"))?;
        Ok(())
    }
}

/// The body of a create, inside its transaction.
async fn create_in(tx: &mut PgConnection, write: NewPersonWrite) -> Result<Person, InsertError> {
    let id = write.id().as_uuid();
    if let Some(key) = write.dedup_key() {
        lock_dedup_key(tx, key).await?;
    }
    if exists(tx, queries::PERSON_EXISTS, "person.exists", id).await? {
        return Err(InsertError::DuplicateId);
    }
    if let Some(key) = write.idempotency() {
        let taken = sqlx::query_scalar::<_, bool>(queries::IDEMPOTENCY_KEY_EXISTS)
            .bind(&key.key)
            .fetch_one(&mut *tx)
            .await
            .map_err(failed("idempotency.exists"))?;
        if taken {
            return Err(InsertError::IdempotencyKeyTaken);
        }
    }
    if let Some(key) = write.dedup_key()
        && let Some(existing) = dedup_holder(tx, key, id).await?
    {
        return Err(InsertError::DuplicatePerson { existing });
    }
    let person_ref = sqlx::query_scalar::<_, i64>(queries::NEXT_PERSON_REF)
        .fetch_one(&mut *tx)
        .await
        .map_err(failed("person_ref.next"))?;
    let created = write.assign(PersonRef(person_ref));
    insert_person_row(tx, &created.person, created.dedup_key.as_deref()).await?;
    if created.person.status.is_active() {
        insert_keys(tx, id, KeySource::Person, &created.search_keys).await?;
    }
    if let Some((reference, owner)) = insert_references(tx, &created.person).await? {
        return Err(InsertError::ReferenceTaken { reference, owner });
    }
    insert_history_row(tx, &created.history).await?;
    if let Some(record) = &created.idempotency {
        insert_idempotency_row(tx, record).await?;
    }
    insert_audit(tx, &AuditColumns::new(&created.audit)?).await?;
    insert_event_row(tx, &created.event).await?;
    Ok(created.person)
}

/// The stored version of a person, `None` when there is none.
pub(crate) async fn stored_version(tx: &mut PgConnection, id: Uuid) -> Result<Option<u64>, StoreError> {
    sqlx::query_scalar::<_, i64>(queries::PERSON_VERSION)
        .bind(id)
        .fetch_optional(tx)
        .await
        .map_err(failed("person.version"))?
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
    person: &Person,
    expected: u64,
    dedup_key: Option<&str>,
) -> Result<bool, StoreError> {
    let row = PersonColumns::new(person)?;
    let done = sqlx::query(queries::UPDATE_PERSON)
        .bind(row.version_number)
        .bind(row.state)
        .bind(row.merged_into)
        .bind(row.document)
        .bind(row.last_modified)
        .bind(row.processing_restricted)
        .bind(live_dedup_key(person, dedup_key))
        .bind(row.id)
        .bind(to_bigint(expected, "expected version")?)
        .execute(tx)
        .await
        .map_err(failed("person.update"))?;
    Ok(done.rows_affected() == 1)
}

/// The body of an update, inside its transaction.
async fn update_in(tx: &mut PgConnection, write: &PersonWrite) -> Result<(), UpdateError> {
    let id = write.person.id.as_uuid();
    let dedup_key = live_dedup_key(&write.person, write.dedup_key.as_deref());
    if let Some(key) = dedup_key {
        lock_dedup_key(tx, key).await?;
        // NotFound and VersionConflict come before DuplicatePerson (the port's order).
        if let Some(existing) = dedup_holder(tx, key, id).await? {
            return Err(match stored_version(tx, id).await? {
                Some(current) if current == write.expected_version => UpdateError::DuplicatePerson { existing },
                other => missed(other),
            });
        }
    }
    if !replace_person_row(tx, &write.person, write.expected_version, dedup_key).await? {
        return Err(missed(stored_version(tx, id).await?));
    }
    rewrite_keys(tx, &write.person, &write.search_keys).await?;
    // After the compare-and-set: NotFound, VersionConflict and DuplicatePerson come first (the port's order).
    if let Some((reference, owner)) = rewrite_references(tx, &write.person).await? {
        return Err(UpdateError::ReferenceTaken { reference, owner });
    }
    insert_history_row(tx, &write.history).await?;
    insert_audit(tx, &AuditColumns::new(&write.audit)?).await?;
    insert_event_row(tx, &write.event).await?;
    Ok(())
}

#[async_trait]
impl PersonRepository for PostgresStore {
    async fn close(&self) {
        PostgresStore::close(self).await;
    }

    async fn insert(&self, write: NewPersonWrite) -> Result<Person, InsertError> {
        let mut tx = self.begin_write().await?;
        let outcome = create_in(&mut tx, write).await;
        finish(tx, outcome).await
    }

    async fn get(&self, id: PersonId) -> Result<Option<Person>, StoreError> {
        sqlx::query_as::<_, DocumentText>(queries::GET_PERSON)
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(failed("person.get"))?
            .map(DocumentText::into_person)
            .transpose()
    }

    async fn update(&self, write: PersonWrite) -> Result<(), UpdateError> {
        let mut tx = self.begin_write().await?;
        let outcome = update_in(&mut tx, &write).await;
        finish(tx, outcome).await
    }

    async fn candidates(&self, keys: &[SearchKey], limit: u32) -> Result<Vec<Candidate>, StoreError> {
        if keys.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        sqlx::query_as::<_, CandidateRow>(queries::CANDIDATES)
            .bind(key_texts(keys))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(failed("person.search_candidates"))?
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
        sqlx::query_as::<_, DocumentText>(queries::LIST_HISTORY)
            .bind(id.as_uuid())
            .fetch_all(&self.pool)
            .await
            .map_err(failed("history.list"))?
            .into_iter()
            .map(DocumentText::into_history)
            .collect()
    }

    async fn events_after(&self, after: u64, limit: u32) -> Result<Vec<FeedEntry>, StoreError> {
        // Positions are bigints: nothing lies beyond i64::MAX.
        let Ok(after) = i64::try_from(after) else {
            return Ok(Vec::new());
        };
        sqlx::query_as::<_, PositionedRow>(queries::EVENTS_AFTER)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(failed("events.after"))?
            .into_iter()
            .map(PositionedRow::into_feed_entry)
            .collect()
    }

    async fn find_idempotent_create(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        sqlx::query_as::<_, IdempotencyRow>(queries::GET_IDEMPOTENCY)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(failed("idempotency.get"))?
            .map(IdempotencyRow::into_record)
            .transpose()
    }

    async fn restricted_among(&self, ids: &[PersonId]) -> Result<Vec<PersonId>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        sqlx::query_scalar::<_, Uuid>(queries::RESTRICTED_AMONG)
            .bind(uuids(ids))
            .fetch_all(&self.pool)
            .await
            .map_err(failed("person.restricted_among"))?
            .into_iter()
            .map(person_id)
            .collect()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query(queries::PING).execute(&self.pool).await.map_err(failed("store.ping"))?;
        Ok(())
    }
}
