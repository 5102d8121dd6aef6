//! [`PersonRepository`] for [`SqliteStore`]: every write is one `BEGIN IMMEDIATE` transaction on the single
//! writer connection (the change, its event, history entry and audit entry together); every read is one
//! statement on a reader connection.
//!
//! Errors a caller must act on (`DuplicateId`, `IdempotencyKeyTaken`, `NotFound`, `VersionConflict`) are found
//! by checks inside the write transaction, which holds the write lock, so no other write can slip in between a
//! check and the insert. Should a UNIQUE/PRIMARY KEY violation happen anyway, it is classified by the statement
//! that failed and SQLite's extended result code, never by message text.

use async_trait::async_trait;
use person_core::event::{FeedEntry, HistoryEntry, PersonEvent};
use person_core::ports::{
    IdempotencyRecord, InsertError, NewPersonWrite, PersonRepository, PersonWrite, StoreError, UpdateError,
};
use person_core::{Person, PersonId, PersonRef};
use sqlx::{Sqlite, SqliteConnection, Transaction};

use crate::SqliteStore;
use crate::audit::insert_audit_rows;
use crate::error::{SQLITE_CONSTRAINT_PRIMARYKEY, SqliteStoreError, failed, out_of_range, sqlite_code};
use crate::queries;
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

async fn insert_person_row(tx: &mut SqliteConnection, person: &Person) -> Result<(), InsertError> {
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
        .execute(tx)
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(error) if is_primary_key_violation(&error) => Err(InsertError::DuplicateId),
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

async fn insert_event_row(tx: &mut SqliteConnection, event: &PersonEvent) -> Result<(), StoreError> {
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

async fn insert_history_row(tx: &mut SqliteConnection, entry: &HistoryEntry) -> Result<(), StoreError> {
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
    let person_ref = sqlx::query_scalar::<_, i64>(queries::NEXT_PERSON_REF)
        .fetch_optional(&mut *tx)
        .await
        .map_err(failed("person_ref.next"))?
        .ok_or(StoreError::from(SqliteStoreError::MissingCounter))?;
    let created = write.assign(PersonRef(person_ref));
    insert_person_row(tx, &created.person).await?;
    insert_event_row(tx, &created.event).await?;
    insert_history_row(tx, &created.history).await?;
    if let Some(record) = &created.idempotency {
        insert_idempotency_row(tx, record).await?;
    }
    insert_audit_rows(tx, &AuditColumns::new(&created.audit)?).await?;
    Ok(created.person)
}

/// The body of an update, inside its transaction.
async fn update_in(tx: &mut SqliteConnection, write: &PersonWrite) -> Result<(), UpdateError> {
    let row = PersonColumns::new(&write.person)?;
    let expected = to_sql_integer(write.expected_version, "expected version")?;
    let applied = sqlx::query(queries::UPDATE_PERSON)
        .bind(row.version_number)
        .bind(row.state)
        .bind(row.merged_into)
        .bind(row.document)
        .bind(row.last_modified)
        .bind(row.processing_restricted)
        .bind(&row.id)
        .bind(expected)
        .execute(&mut *tx)
        .await
        .map_err(failed("person.update"))?;
    if applied.rows_affected() == 0 {
        let current = sqlx::query_scalar::<_, i64>(queries::PERSON_VERSION)
            .bind(&row.id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(failed("person.version"))?;
        return Err(match current {
            None => UpdateError::NotFound,
            Some(version) => UpdateError::VersionConflict {
                current: u64::try_from(version).map_err(|_| out_of_range("person version"))?,
            },
        });
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
        insert_person_row(&mut tx, &person).await.unwrap();
        insert_idempotency_row(&mut tx, &record).await.unwrap();

        let mut same_id = person.clone();
        same_id.person_ref = PersonRef(2);
        let again = insert_person_row(&mut tx, &same_id).await;
        assert!(matches!(again, Err(InsertError::DuplicateId)), "got {again:?}");

        let again = insert_idempotency_row(&mut tx, &record).await;
        assert!(matches!(again, Err(InsertError::IdempotencyKeyTaken)), "got {again:?}");

        let (same_ref, _) = stored(1, "other");
        let clash = insert_person_row(&mut tx, &same_ref).await;
        assert!(matches!(clash, Err(InsertError::Store(StoreError::Unexpected(_)))), "got {clash:?}");
        tx.rollback().await.unwrap();
    }
}
