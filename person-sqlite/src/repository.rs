//! [`PersonRepository`] for [`SqliteStore`]: every write is one `BEGIN IMMEDIATE` transaction on the single
//! writer connection (the change, its event, history entry and audit entry together); every read is one
//! statement on a reader connection.
//!
//! Errors a caller must act on (`DuplicateId`, `IdempotencyKeyTaken`, `DuplicatePerson`, `NotFound`,
//! `VersionConflict`) are found by checks inside the write transaction, which holds the write lock, so no other
//! write can slip in between a check and the insert. Should a UNIQUE/PRIMARY KEY violation happen anyway, it is
//! classified by the statement that failed and SQLite's extended result code, never by message text: a UNIQUE
//! violation on `persons` is the dedup key when a live person holds it (looked up), else unexpected. (SQLite's
//! result codes do not name the index; its message does, but messages are not an interface.)
//!
//! Each person write also replaces the person's search keys, dedup key and cross-references in the same
//! transaction. The references are written after the compare-and-set, so `ReferenceTaken` (the insert's PRIMARY
//! KEY violation, exact under the write lock; see `references`) comes after every other refusal, and rolls the
//! transaction back.

use async_trait::async_trait;
use person_core::event::{FeedEntry, HistoryEntry, PersonEvent};
use person_core::matching::{KeySource, SearchKey};
use person_core::ports::{
    Candidate, IdempotencyRecord, InsertError, MergeWrite, MergeWriteError, NewPersonWrite, PersonRepository,
    PersonWrite, StoreError, UpdateError,
};
use person_core::reference::CrossReference;
use person_core::{Person, PersonId, PersonRef};
use sqlx::{Sqlite, SqliteConnection, Transaction};

use crate::SqliteStore;
use crate::audit::insert_audit_rows;
use crate::error::{SQLITE_CONSTRAINT_PRIMARYKEY, SqliteStoreError, failed, out_of_range, sqlite_code};
use crate::keys::{dedup_holder, drop_keys, insert_person_keys, is_unique_violation, replace_keys};
use crate::queries;
use crate::references::{insert_references, rewrite_references};
use crate::rows::{
    AuditColumns, EventColumns, EventRow, HistoryColumns, HistoryRow, IdempotencyColumns, IdempotencyRow,
    PersonColumns, PersonIdRow, PersonRow, id_list, to_sql_integer,
};

/// A write transaction on the writer connection.
pub(crate) type WriteTx = Transaction<'static, Sqlite>;

impl SqliteStore {
    /// Waits for the writer connection and takes the database write lock.
    pub(crate) async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        self.writer.begin_with(queries::BEGIN_IMMEDIATE).await.map_err(failed("transaction.begin_immediate"))
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
                // The refusal is what the caller needs; the connection is discarded by sqlx if it is broken.
                let rollback = failed("transaction.rollback")(rollback);
                tracing::warn!(error = &rollback as &dyn std::error::Error, "rollback after a refused write failed");
            }
            Err(error)
        }
    }
}

async fn exists(
    tx: &mut SqliteConnection,
    sql: &'static str,
    name: &'static str,
    key: &str,
) -> Result<bool, StoreError> {
    sqlx::query_scalar::<_, bool>(sql).bind(key).fetch_one(tx).await.map_err(failed(name))
}

/// True when `error` is a PRIMARY KEY violation (the only kind the `persons` and `idempotency` inserts can hit
/// on a key the caller chose; a `person_ref` clash is a UNIQUE violation and stays unexpected).
fn is_primary_key_violation(error: &sqlx::Error) -> bool {
    sqlite_code(error) == Some(SQLITE_CONSTRAINT_PRIMARYKEY)
}

/// The dedup key a written person holds: none unless it is live.
fn live_dedup_key<'w>(person: &Person, key: Option<&'w str>) -> Option<&'w str> {
    if person.status.is_active() { key } else { None }
}

async fn insert_person_row(
    tx: &mut SqliteConnection,
    person: &Person,
    dedup_key: Option<&str>,
) -> Result<(), InsertError> {
    let row = PersonColumns::new(person)?;
    let dedup_key = live_dedup_key(person, dedup_key);
    let result = sqlx::query(queries::INSERT_PERSON)
        .bind(&row.id)
        .bind(row.person_ref)
        .bind(row.version_number)
        .bind(row.state)
        .bind(row.merged_into)
        .bind(row.document)
        .bind(row.created_at)
        .bind(row.last_modified)
        .bind(row.processing_restricted)
        .bind(dedup_key)
        .execute(&mut *tx)
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(error) if is_primary_key_violation(&error) => Err(InsertError::DuplicateId),
        Err(error) if is_unique_violation(&error) => match dedup_key {
            Some(key) => match dedup_holder(tx, key, &row.id).await? {
                Some(existing) => Err(InsertError::DuplicatePerson { existing }),
                None => Err(failed("person.insert")(error).into()),
            },
            None => Err(failed("person.insert")(error).into()),
        },
        Err(error) => Err(failed("person.insert")(error).into()),
    }
}

async fn insert_idempotency_row(tx: &mut SqliteConnection, record: &IdempotencyRecord) -> Result<(), InsertError> {
    let row = IdempotencyColumns::new(record)?;
    let result = sqlx::query(queries::INSERT_IDEMPOTENCY)
        .bind(row.key)
        .bind(row.fingerprint)
        .bind(row.person_id)
        .bind(row.document)
        .bind(row.created_at)
        .execute(tx)
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(error) if is_primary_key_violation(&error) => Err(InsertError::IdempotencyKeyTaken),
        Err(error) => Err(failed("idempotency.insert")(error).into()),
    }
}

pub(crate) async fn insert_event_row(tx: &mut SqliteConnection, event: &PersonEvent) -> Result<(), StoreError> {
    let row = EventColumns::new(event)?;
    sqlx::query(queries::INSERT_EVENT)
        .bind(row.id)
        .bind(row.person_id)
        .bind(row.event_type)
        .bind(row.document)
        .execute(tx)
        .await
        .map_err(failed("event.insert"))?;
    Ok(())
}

pub(crate) async fn insert_history_row(tx: &mut SqliteConnection, entry: &HistoryEntry) -> Result<(), StoreError> {
    let row = HistoryColumns::new(entry)?;
    sqlx::query(queries::INSERT_HISTORY)
        .bind(row.person_id)
        .bind(row.version_number)
        .bind(row.event_id)
        .bind(row.document)
        .execute(tx)
        .await
        .map_err(failed("history.insert"))?;
    Ok(())
}

/// The body of a create, inside its transaction.
async fn create_in(tx: &mut SqliteConnection, write: NewPersonWrite) -> Result<Person, InsertError> {
    if exists(tx, queries::PERSON_EXISTS, "person.exists", &write.id().to_string()).await? {
        return Err(InsertError::DuplicateId);
    }
    if let Some(key) = write.idempotency()
        && exists(tx, queries::IDEMPOTENCY_KEY_EXISTS, "idempotency.exists", &key.key).await?
    {
        return Err(InsertError::IdempotencyKeyTaken);
    }
    if let Some(key) = write.dedup_key()
        && let Some(existing) = dedup_holder(tx, key, &write.id().to_string()).await?
    {
        return Err(InsertError::DuplicatePerson { existing });
    }
    let person_ref = sqlx::query_scalar::<_, i64>(queries::NEXT_PERSON_REF)
        .fetch_optional(&mut *tx)
        .await
        .map_err(failed("person_ref.next"))?
        .ok_or(StoreError::from(SqliteStoreError::MissingCounter))?;
    let created = write.assign(PersonRef(person_ref));
    insert_person_row(tx, &created.person, created.dedup_key.as_deref()).await?;
    let id = created.person.id.to_string();
    if created.person.status.is_active() {
        insert_person_keys(tx, &id, &created.search_keys).await?;
    }
    if let Some((reference, owner)) = insert_references(tx, &created.person, &id).await? {
        return Err(InsertError::ReferenceTaken { reference, owner });
    }
    insert_event_row(tx, &created.event).await?;
    insert_history_row(tx, &created.history).await?;
    if let Some(record) = &created.idempotency {
        insert_idempotency_row(tx, record).await?;
    }
    insert_audit_rows(tx, &AuditColumns::new(&created.audit)?).await?;
    Ok(created.person)
}

/// The stored version of a person, `None` when there is none.
pub(crate) async fn stored_version(tx: &mut SqliteConnection, id: &str) -> Result<Option<u64>, StoreError> {
    sqlx::query_scalar::<_, i64>(queries::PERSON_VERSION)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(failed("person.version"))?
        .map(|version| u64::try_from(version).map_err(|_| out_of_range("person version")))
        .transpose()
}

/// Why a compare-and-set on a person matched no row.
fn missed(current: Option<u64>) -> UpdateError {
    match current {
        None => UpdateError::NotFound,
        Some(current) => UpdateError::VersionConflict { current },
    }
}

/// The compare-and-set of a person (row, dedup key), without its keys, event or history. `Ok(false)`: the
/// stored version was not `expected` (or there is no such person).
pub(crate) async fn replace_person_row(
    tx: &mut SqliteConnection,
    person: &Person,
    expected: u64,
    dedup_key: Option<&str>,
) -> Result<bool, UpdateError> {
    let row = PersonColumns::new(person)?;
    let expected = to_sql_integer(expected, "expected version")?;
    let dedup_key = live_dedup_key(person, dedup_key);
    let applied = sqlx::query(queries::UPDATE_PERSON)
        .bind(row.version_number)
        .bind(row.state)
        .bind(row.merged_into)
        .bind(row.document)
        .bind(row.last_modified)
        .bind(row.processing_restricted)
        .bind(dedup_key)
        .bind(&row.id)
        .bind(expected)
        .execute(&mut *tx)
        .await;
    match applied {
        Ok(done) => Ok(done.rows_affected() == 1),
        // The checks before the statement make this unreachable under the write lock; classified all the same.
        Err(error) if is_unique_violation(&error) => match dedup_key {
            Some(key) => match dedup_holder(tx, key, &row.id).await? {
                Some(existing) => Err(UpdateError::DuplicatePerson { existing }),
                None => Err(failed("person.update")(error).into()),
            },
            None => Err(failed("person.update")(error).into()),
        },
        Err(error) => Err(failed("person.update")(error).into()),
    }
}

/// Replaces a written person's keys: its `person` keys when it is live, every key when it is not.
pub(crate) async fn rewrite_keys(
    tx: &mut SqliteConnection,
    person: &Person,
    keys: &[SearchKey],
) -> Result<(), StoreError> {
    let id = person.id.to_string();
    if person.status.is_active() {
        replace_keys(tx, &id, KeySource::Person, keys).await
    } else {
        drop_keys(tx, &id).await
    }
}

/// The body of an update, inside its transaction.
async fn update_in(tx: &mut SqliteConnection, write: &PersonWrite) -> Result<(), UpdateError> {
    let id = write.person.id.to_string();
    let dedup_key = live_dedup_key(&write.person, write.dedup_key.as_deref());
    // NotFound and VersionConflict come before DuplicatePerson (the port's order).
    if let Some(key) = dedup_key
        && let Some(existing) = dedup_holder(tx, key, &id).await?
    {
        let current = stored_version(tx, &id).await?;
        return Err(match current {
            Some(current) if current == write.expected_version => UpdateError::DuplicatePerson { existing },
            other => missed(other),
        });
    }
    if !replace_person_row(tx, &write.person, write.expected_version, dedup_key).await? {
        return Err(missed(stored_version(tx, &id).await?));
    }
    rewrite_keys(tx, &write.person, &write.search_keys).await?;
    // After the compare-and-set: NotFound, VersionConflict and DuplicatePerson come first (the port's order).
    if let Some((reference, owner)) = rewrite_references(tx, &write.person).await? {
        return Err(UpdateError::ReferenceTaken { reference, owner });
    }
    insert_event_row(tx, &write.event).await?;
    insert_history_row(tx, &write.history).await?;
    insert_audit_rows(tx, &AuditColumns::new(&write.audit)?).await?;
    Ok(())
}

#[async_trait]
impl PersonRepository for SqliteStore {
    async fn close(&self) {
        SqliteStore::close(self).await;
    }

    async fn insert(&self, write: NewPersonWrite) -> Result<Person, InsertError> {
        let mut tx = self.begin_write().await?;
        let outcome = create_in(&mut tx, write).await;
        finish(tx, outcome).await
    }

    async fn get(&self, id: PersonId) -> Result<Option<Person>, StoreError> {
        sqlx::query_as::<_, PersonRow>(queries::GET_PERSON)
            .bind(id.to_string())
            .fetch_optional(&self.readers)
            .await
            .map_err(failed("person.get"))?
            .map(PersonRow::into_person)
            .transpose()
    }

    async fn update(&self, write: PersonWrite) -> Result<(), UpdateError> {
        let mut tx = self.begin_write().await?;
        let outcome = update_in(&mut tx, &write).await;
        finish(tx, outcome).await
    }

    async fn candidates(&self, keys: &[SearchKey], limit: u32) -> Result<Vec<Candidate>, StoreError> {
        self.find_candidates(keys, limit).await
    }

    async fn merge(&self, write: MergeWrite) -> Result<(), MergeWriteError> {
        self.merge_persons(write).await
    }

    async fn find_by_reference(&self, reference: &CrossReference) -> Result<Option<PersonId>, StoreError> {
        self.reference_owner(reference).await
    }

    async fn history(&self, id: PersonId) -> Result<Vec<HistoryEntry>, StoreError> {
        sqlx::query_as::<_, HistoryRow>(queries::LIST_HISTORY)
            .bind(id.to_string())
            .fetch_all(&self.readers)
            .await
            .map_err(failed("history.list"))?
            .into_iter()
            .map(HistoryRow::into_entry)
            .collect()
    }

    async fn events_after(&self, after: u64, limit: u32) -> Result<Vec<FeedEntry>, StoreError> {
        // Positions are SQLite integers: nothing lies beyond i64::MAX.
        let Ok(after) = i64::try_from(after) else {
            return Ok(Vec::new());
        };
        sqlx::query_as::<_, EventRow>(queries::EVENTS_AFTER)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.readers)
            .await
            .map_err(failed("events.after"))?
            .into_iter()
            .map(EventRow::into_entry)
            .collect()
    }

    async fn find_idempotent_create(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        sqlx::query_as::<_, IdempotencyRow>(queries::GET_IDEMPOTENCY)
            .bind(key)
            .fetch_optional(&self.readers)
            .await
            .map_err(failed("idempotency.get"))?
            .map(IdempotencyRow::into_record)
            .transpose()
    }

    async fn restricted_among(&self, ids: &[PersonId]) -> Result<Vec<PersonId>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        sqlx::query_as::<_, PersonIdRow>(queries::RESTRICTED_AMONG)
            .bind(id_list(ids)?)
            .fetch_all(&self.readers)
            .await
            .map_err(failed("person.restricted_among"))?
            .into_iter()
            .map(PersonIdRow::into_id)
            .collect()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query(queries::PING).execute(&self.readers).await.map_err(failed("store.ping"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use person_core::testkit::fixtures::{create_write, full_person, person_id};

    use super::*;
    use crate::SqliteOptions;

    async fn store_in(dir: &tempfile::TempDir) -> SqliteStore {
        let url = format!("sqlite://{}", dir.path().join("person.db").display());
        SqliteStore::open(&url, SqliteOptions::default()).await.unwrap()
    }

    fn stored(person_ref: i64, key: &str) -> (Person, IdempotencyRecord) {
        let created = create_write(full_person(person_id()), Some(key)).assign(PersonRef(person_ref));
        (created.person, created.idempotency.unwrap())
    }

    // The checks in `create_in` normally catch these first; this proves the constraint mapping behind them.
    #[tokio::test]
    async fn a_racing_duplicate_id_or_key_is_classified_by_result_code_not_message() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir).await;
        let mut tx = store.begin_write().await.unwrap();
        let (person, record) = stored(1, "key");
        insert_person_row(&mut tx, &person, None).await.unwrap();
        insert_idempotency_row(&mut tx, &record).await.unwrap();

        let mut same_id = person.clone();
        same_id.person_ref = PersonRef(2);
        let again = insert_person_row(&mut tx, &same_id, None).await;
        assert!(matches!(again, Err(InsertError::DuplicateId)), "got {again:?}");

        let again = insert_idempotency_row(&mut tx, &record).await;
        assert!(matches!(again, Err(InsertError::IdempotencyKeyTaken)), "got {again:?}");

        let (same_ref, _) = stored(1, "other");
        let clash = insert_person_row(&mut tx, &same_ref, None).await;
        assert!(matches!(clash, Err(InsertError::Store(StoreError::Unexpected(_)))), "got {clash:?}");
        tx.rollback().await.unwrap();
    }
}
