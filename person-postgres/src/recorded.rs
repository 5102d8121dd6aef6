//! The row counts statement executions report to the store's [`QueryRecorder`](person_core::storage::QueryRecorder):
//! rows affected by a write, rows fetched by a read. Pure functions of a result; no SQL, no connection.

use sqlx::postgres::PgQueryResult;

/// The rows a write inserted, updated or deleted.
pub(crate) fn affected(result: &PgQueryResult) -> Option<u64> {
    Some(result.rows_affected())
}

/// The rows a read fetched.
#[expect(clippy::ptr_arg, reason = "the shape `QueryRecorder::run_counted` takes for `fetch_all`")]
pub(crate) fn fetched<T>(rows: &Vec<T>) -> Option<u64> {
    u64::try_from(rows.len()).ok()
}

/// The row a read of at most one row fetched (0 or 1).
pub(crate) fn found<T>(row: &Option<T>) -> Option<u64> {
    Some(u64::from(row.is_some()))
}

/// The one row a `fetch_one` read fetched.
pub(crate) fn one<T>(_: &T) -> Option<u64> {
    Some(1)
}
