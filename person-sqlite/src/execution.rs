//! Query visibility: every statement the store runs goes through the store's [`QueryRecorder`] under its
//! catalogue entry (`crate::queries`), with the number of rows it returned (reads, `RETURNING`) or changed
//! (writes), and [`WriteTx`], a write transaction that carries the recorder to the statements run inside it.
//!
//! This module knows no SQL text and no domain type: callers pass the [`NamedQuery`] and the future executing
//! its text.

use std::future::Future;

use person_core::storage::{NamedQuery, QueryRecorder};
use sqlx::sqlite::SqliteQueryResult;
use sqlx::{Sqlite, Transaction};

/// A write transaction on the writer connection (`BEGIN IMMEDIATE` issued), with the recorder its statements,
/// commit and rollback are reported to.
pub(crate) struct WriteTx {
    /// The open transaction; `&mut *tx.conn` is the connection statements run on.
    pub(crate) conn: Transaction<'static, Sqlite>,
    /// Where the statements of the transaction are reported.
    pub(crate) recorder: QueryRecorder,
}

/// How many rows a statement's result holds or says it changed.
pub(crate) trait RowCount {
    /// The row count reported with the execution.
    fn row_count(&self) -> Option<u64>;
}

impl RowCount for SqliteQueryResult {
    fn row_count(&self) -> Option<u64> {
        Some(self.rows_affected())
    }
}

impl<T> RowCount for Option<T> {
    fn row_count(&self) -> Option<u64> {
        Some(u64::from(self.is_some()))
    }
}

impl<T> RowCount for Vec<T> {
    fn row_count(&self) -> Option<u64> {
        u64::try_from(self.len()).ok()
    }
}

/// Runs `statement` (the execution of `query`), reporting it with the rows its result holds or changed.
pub(crate) async fn counted<T: RowCount, E>(
    recorder: &QueryRecorder,
    query: &'static NamedQuery,
    statement: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    recorder.run_counted(query, statement, RowCount::row_count).await
}

/// Runs `statement` (the execution of `query`, fetching exactly one row), reporting it with one row.
pub(crate) async fn single<T, E>(
    recorder: &QueryRecorder,
    query: &'static NamedQuery,
    statement: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    recorder.run_counted(query, statement, |_| Some(1)).await
}
