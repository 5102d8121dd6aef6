//! [`AuditLog`] for [`SqliteStore`]: the append-only audit trail (`audit_log`, filed per person in
//! `audit_persons`).
//!
//! Entries written with a change (create, update, document write) are inserted by [`insert_audit_rows`] inside
//! that change's transaction. [`AuditLog::append`] (reads, searches, exports) needs a write transaction of its own,
//! and with one durable commit per read the single writer capped reads at one commit each: so appends are
//! **group-committed**. Each append joins a queue; whoever then holds the queue's leader lock writes every entry
//! queued so far in one transaction and tells each waiting caller the outcome. An append still returns only after
//! its entry is committed (nothing a caller was told is audited can be lost), but concurrent reads share a commit.
//! Positions are `AUTOINCREMENT` rowids allocated under the single writer, so they increase in commit order and
//! are never reused. Triggers in the schema refuse any UPDATE or DELETE of an audit row.

use crate::SqliteStore;
use crate::error::failed;
use crate::execution::{WriteTx, counted, single};
use crate::queries;
use crate::repository::finish;
use crate::rows::{AuditColumns, AuditRow};
use async_trait::async_trait;
use person_core::PersonId;
use person_core::audit::AuditEntry;
use person_core::ports::{AuditLog, AuditRecord, StoreError};

/// Appends one audit entry and files it under every person it names, inside the caller's write transaction.
pub(crate) async fn insert_audit_rows(tx: &mut WriteTx, entry: &AuditColumns) -> Result<(), StoreError> {
    let insert = &queries::INSERT_AUDIT;
    let statement = sqlx::query_scalar::<_, i64>(insert.sql)
        .bind(&entry.id)
        .bind(&entry.at)
        .bind(&entry.action)
        .bind(&entry.document)
        .fetch_one(&mut *tx.conn);
    let position = single(&tx.recorder, insert, statement).await.map_err(failed(insert.name))?;
    let file = &queries::INSERT_AUDIT_PERSONS;
    let statement = sqlx::query(file.sql).bind(position).bind(&entry.person_ids).execute(&mut *tx.conn);
    counted(&tx.recorder, file, statement).await.map_err(failed(file.name))?;
    Ok(())
}

/// Appends waiting to be group-committed, and the lock that makes one caller at a time the writer of the queue.
#[derive(Default)]
pub(crate) struct AuditQueue {
    pending: std::sync::Mutex<Vec<Waiting>>,
    leader: tokio::sync::Mutex<()>,
}

/// An entry and where its outcome goes.
type Waiting = (AuditColumns, tokio::sync::oneshot::Sender<Result<(), StoreError>>);

/// At most this many entries per group commit, so one transaction stays short.
const GROUP_COMMIT_MAX: usize = 512;

/// One waiting caller's copy of a failure shared by the whole group (a [`StoreError`] is not `Clone`); keeps
/// whether retrying may help.
fn shared_failure(error: &StoreError) -> StoreError {
    let text = format!("group-committed audit append failed: {error}");
    match error {
        StoreError::Unavailable(_) => StoreError::Unavailable(text.into()),
        StoreError::Unexpected(_) => StoreError::Unexpected(text.into()),
    }
}

/// The outcome of a queued append, once a leader decided it. A leader abandoned mid-commit (its request was
/// cancelled) drops the batch's replies: the entry may not be stored, so the append fails (retryable).
fn answered(outcome: &mut tokio::sync::oneshot::Receiver<Result<(), StoreError>>) -> Option<Result<(), StoreError>> {
    match outcome.try_recv() {
        Ok(result) => Some(result),
        Err(tokio::sync::oneshot::error::TryRecvError::Empty) => None,
        Err(tokio::sync::oneshot::error::TryRecvError::Closed) => {
            Some(Err(StoreError::Unavailable("the audit group commit writing this entry was abandoned".into())))
        }
    }
}

impl SqliteStore {
    /// Writes the entries queued so far (up to [`GROUP_COMMIT_MAX`]) in one transaction and answers their callers.
    async fn commit_queued(&self) {
        let batch: Vec<Waiting> = {
            let mut pending = self.audit_queue.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let take = pending.len().min(GROUP_COMMIT_MAX);
            pending.drain(..take).collect()
        };
        if batch.is_empty() {
            return;
        }
        let outcome = match self.begin_write().await {
            Ok(mut tx) => {
                let mut written = Ok(());
                for (columns, _) in &batch {
                    written = insert_audit_rows(&mut tx, columns).await;
                    if written.is_err() {
                        break;
                    }
                }
                finish(tx, written).await
            }
            Err(error) => Err(error),
        };
        match outcome {
            Ok(()) => batch.into_iter().for_each(|(_, reply)| drop(reply.send(Ok(())))),
            Err(error) => batch.into_iter().for_each(|(_, reply)| drop(reply.send(Err(shared_failure(&error))))),
        }
    }
}

#[async_trait]
impl AuditLog for SqliteStore {
    async fn append(&self, entry: AuditEntry) -> Result<(), StoreError> {
        let columns = AuditColumns::new(&entry)?;
        let (reply, mut outcome) = tokio::sync::oneshot::channel();
        self.audit_queue.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((columns, reply));
        loop {
            let leader = self.audit_queue.leader.lock().await;
            // A previous leader may have written this entry while we waited for the lock.
            if let Some(result) = answered(&mut outcome) {
                return result;
            }
            self.commit_queued().await;
            drop(leader);
            if let Some(result) = answered(&mut outcome) {
                return result;
            }
            // More than GROUP_COMMIT_MAX were queued ahead of this entry: lead again.
        }
    }

    async fn entries_for_person(
        &self,
        person: PersonId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        // Positions are SQLite integers: nothing lies beyond i64::MAX.
        let Ok(after) = i64::try_from(after) else {
            return Ok(Vec::new());
        };
        let page = &queries::AUDIT_FOR_PERSON;
        let statement = sqlx::query_as::<_, AuditRow>(page.sql)
            .bind(person.to_string())
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.readers);
        counted(&self.recorder, page, statement)
            .await
            .map_err(failed(page.name))?
            .into_iter()
            .map(AuditRow::into_record)
            .collect()
    }
}
