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
use person_core::storage::NamedQuery;
use person_core::{Person, PersonId, PersonRef};

use crate::SqliteStore;
use crate::audit::insert_audit_rows;
use crate::error::{SQLITE_CONSTRAINT_PRIMARYKEY, SqliteStoreError, failed, out_of_range, sqlite_code};
use crate::execution::{WriteTx, counted, single};
use crate::keys::{dedup_holder, drop_keys, insert_person_keys, is_unique_violation, replace_keys};
use crate::queries;
use crate::references::{insert_references, rewrite_references};
use crate::rows::{
    AuditColumns, EventColumns, EventRow, HistoryColumns, HistoryRow, IdempotencyColumns, IdempotencyRow,
    PersonColumns, PersonIdRow, PersonRow, id_list, to_sql_integer,
};

impl SqliteStore {
    /// Waits for the writer connection and takes the database write lock. The execution reported for `BEGIN
    /// IMMEDIATE` is timed from asking for the writer, so it includes the wait behind writes queued in this
    /// process (and behind another process holding the lock).
    pub(crate) async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        let begin = &queries::BEGIN_IMMEDIATE;
        let conn = self.recorder.run(begin, self.writer.begin_with(begin.sql)).await.map_err(failed(begin.name))?;
        Ok(WriteTx { conn, recorder: self.recorder.clone() })
    }
}

/// Commits `tx` when `outcome` is a success, rolls it back otherwise.
pub(crate) async fn finish<T, E: From<StoreError>>(tx: WriteTx, outcome: Result<T, E>) -> Result<T, E> {
    let WriteTx { conn, recorder } = tx;
    match outcome {
        Ok(value) => {
            recorder.run(&queries::COMMIT, conn.commit()).await.map_err(failed(queries::COMMIT.name))?;
            Ok(value)
        }
        Err(error) => {
            if let Err(rollback) = recorder.run(&queries::ROLLBACK, conn.rollback()).await {
                // The refusal is what the caller needs; the connection is discarded by sqlx if it is broken.
                let rollback = failed(queries::ROLLBACK.name)(rollback);
                tracing::warn!(error = &rollback as &dyn std::error::Error, "rollback after a refused write failed");
            }
            Err(error)
        }
    }
}

/// Runs one of the `SELECT EXISTS` statements, binding `key`.
async fn exists(tx: &mut WriteTx, query: &'static NamedQuery, key: &str) -> Result<bool, StoreError> {
    let statement = sqlx::query_scalar::<_, bool>(query.sql).bind(key).fetch_one(&mut *tx.conn);
    single(&tx.recorder, query, statement).await.map_err(failed(query.name))
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

async fn insert_person_row(tx: &mut WriteTx, person: &Person, dedup_key: Option<&str>) -> Result<(), InsertError> {
    let row = PersonColumns::new(person)?;
    let dedup_key = live_dedup_key(person, dedup_key);
    let insert = &queries::INSERT_PERSON;
    let statement = sqlx::query(insert.sql)
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
        .bind(row.tenure_count)
        .bind(row.reference_count)
        .execute(&mut *tx.conn);
    match counted(&tx.recorder, insert, statement).await {
        Ok(_) => Ok(()),
        Err(error) if is_primary_key_violation(&error) => Err(InsertError::DuplicateId),
        Err(error) if is_unique_violation(&error) => match dedup_key {
            Some(key) => match dedup_holder(tx, key, &row.id).await? {
                Some(existing) => Err(InsertError::DuplicatePerson { existing }),
                None => Err(failed(insert.name)(error).into()),
            },
            None => Err(failed(insert.name)(error).into()),
        },
        Err(error) => Err(failed(insert.name)(error).into()),
    }
}

async fn insert_idempotency_row(tx: &mut WriteTx, record: &IdempotencyRecord) -> Result<(), InsertError> {
    let row = IdempotencyColumns::new(record)?;
    let insert = &queries::INSERT_IDEMPOTENCY;
    let statement = sqlx::query(insert.sql)
        .bind(row.key)
        .bind(row.fingerprint)
        .bind(row.person_id)
        .bind(row.document)
        .bind(row.created_at)
        .execute(&mut *tx.conn);
    match counted(&tx.recorder, insert, statement).await {
        Ok(_) => Ok(()),
        Err(error) if is_primary_key_violation(&error) => Err(InsertError::IdempotencyKeyTaken),
        Err(error) => Err(failed(insert.name)(error).into()),
    }
}

pub(crate) async fn insert_event_row(tx: &mut WriteTx, event: &PersonEvent) -> Result<(), StoreError> {
    let row = EventColumns::new(event)?;
    let insert = &queries::INSERT_EVENT;
    let statement = sqlx::query(insert.sql)
        .bind(row.id)
        .bind(row.person_id)
        .bind(row.event_type)
        .bind(row.document)
        .execute(&mut *tx.conn);
    counted(&tx.recorder, insert, statement).await.map_err(failed(insert.name))?;
    Ok(())
}

pub(crate) async fn insert_history_row(tx: &mut WriteTx, entry: &HistoryEntry) -> Result<(), StoreError> {
    let row = HistoryColumns::new(entry)?;
    let insert = &queries::INSERT_HISTORY;
    let statement = sqlx::query(insert.sql)
        .bind(row.person_id)
        .bind(row.version_number)
        .bind(row.event_id)
        .bind(row.document)
        .execute(&mut *tx.conn);
    counted(&tx.recorder, insert, statement).await.map_err(failed(insert.name))?;
    Ok(())
}

/// The body of a create, inside its transaction.
async fn create_in(tx: &mut WriteTx, write: NewPersonWrite) -> Result<Person, InsertError> {
    if exists(tx, &queries::PERSON_EXISTS, &write.id().to_string()).await? {
        return Err(InsertError::DuplicateId);
    }
    if let Some(key) = write.idempotency()
        && exists(tx, &queries::IDEMPOTENCY_KEY_EXISTS, &key.key).await?
    {
        return Err(InsertError::IdempotencyKeyTaken);
    }
    if let Some(key) = write.dedup_key()
        && let Some(existing) = dedup_holder(tx, key, &write.id().to_string()).await?
    {
        return Err(InsertError::DuplicatePerson { existing });
    }
    let next = &queries::NEXT_PERSON_REF;
    let statement = sqlx::query_scalar::<_, i64>(next.sql).fetch_optional(&mut *tx.conn);
    let person_ref = counted(&tx.recorder, next, statement)
        .await
        .map_err(failed(next.name))?
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
pub(crate) async fn stored_version(tx: &mut WriteTx, id: &str) -> Result<Option<u64>, StoreError> {
    let version = &queries::PERSON_VERSION;
    let statement = sqlx::query_scalar::<_, i64>(version.sql).bind(id).fetch_optional(&mut *tx.conn);
    counted(&tx.recorder, version, statement)
        .await
        .map_err(failed(version.name))?
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
    tx: &mut WriteTx,
    person: &Person,
    expected: u64,
    dedup_key: Option<&str>,
) -> Result<bool, UpdateError> {
    let row = PersonColumns::new(person)?;
    let expected = to_sql_integer(expected, "expected version")?;
    let dedup_key = live_dedup_key(person, dedup_key);
    let update = &queries::UPDATE_PERSON;
    let statement = sqlx::query(update.sql)
        .bind(row.version_number)
        .bind(row.state)
        .bind(row.merged_into)
        .bind(row.document)
        .bind(row.last_modified)
        .bind(row.processing_restricted)
        .bind(dedup_key)
        .bind(row.tenure_count)
        .bind(row.reference_count)
        .bind(&row.id)
        .bind(expected)
        .execute(&mut *tx.conn);
    match counted(&tx.recorder, update, statement).await {
        Ok(done) => Ok(done.rows_affected() == 1),
        // The checks before the statement make this unreachable under the write lock; classified all the same.
        Err(error) if is_unique_violation(&error) => match dedup_key {
            Some(key) => match dedup_holder(tx, key, &row.id).await? {
                Some(existing) => Err(UpdateError::DuplicatePerson { existing }),
                None => Err(failed(update.name)(error).into()),
            },
            None => Err(failed(update.name)(error).into()),
        },
        Err(error) => Err(failed(update.name)(error).into()),
    }
}

/// Replaces a written person's keys: its `person` keys when it is live, every key when it is not.
pub(crate) async fn rewrite_keys(tx: &mut WriteTx, person: &Person, keys: &[SearchKey]) -> Result<(), StoreError> {
    let id = person.id.to_string();
    if person.status.is_active() {
        replace_keys(tx, &id, KeySource::Person, keys).await
    } else {
        drop_keys(tx, &id).await
    }
}

/// The body of an update, inside its transaction.
async fn update_in(tx: &mut WriteTx, write: &PersonWrite) -> Result<(), UpdateError> {
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
        let get = &queries::GET_PERSON;
        let statement = sqlx::query_as::<_, PersonRow>(get.sql).bind(id.to_string()).fetch_optional(&self.readers);
        counted(&self.recorder, get, statement).await.map_err(failed(get.name))?.map(PersonRow::into_person).transpose()
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
        let list = &queries::LIST_HISTORY;
        let statement = sqlx::query_as::<_, HistoryRow>(list.sql).bind(id.to_string()).fetch_all(&self.readers);
        counted(&self.recorder, list, statement)
            .await
            .map_err(failed(list.name))?
            .into_iter()
            .map(HistoryRow::into_entry)
            .collect()
    }

    async fn events_after(&self, after: u64, limit: u32) -> Result<Vec<FeedEntry>, StoreError> {
        // Positions are SQLite integers: nothing lies beyond i64::MAX.
        let Ok(after) = i64::try_from(after) else {
            return Ok(Vec::new());
        };
        let page = &queries::EVENTS_AFTER;
        let statement =
            sqlx::query_as::<_, EventRow>(page.sql).bind(after).bind(i64::from(limit)).fetch_all(&self.readers);
        counted(&self.recorder, page, statement)
            .await
            .map_err(failed(page.name))?
            .into_iter()
            .map(EventRow::into_entry)
            .collect()
    }

    async fn find_idempotent_create(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        let get = &queries::GET_IDEMPOTENCY;
        let statement = sqlx::query_as::<_, IdempotencyRow>(get.sql).bind(key).fetch_optional(&self.readers);
        counted(&self.recorder, get, statement)
            .await
            .map_err(failed(get.name))?
            .map(IdempotencyRow::into_record)
            .transpose()
    }

    async fn restricted_among(&self, ids: &[PersonId]) -> Result<Vec<PersonId>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let restricted = &queries::RESTRICTED_AMONG;
        let statement = sqlx::query_as::<_, PersonIdRow>(restricted.sql).bind(id_list(ids)?).fetch_all(&self.readers);
        counted(&self.recorder, restricted, statement)
            .await
            .map_err(failed(restricted.name))?
            .into_iter()
            .map(PersonIdRow::into_id)
            .collect()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let ping = &queries::PING;
        let statement = sqlx::query_scalar::<_, i64>(ping.sql).fetch_one(&self.readers);
        single(&self.recorder, ping, statement).await.map_err(failed(ping.name))?;
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
        tx.conn.rollback().await.unwrap();
    }
}
