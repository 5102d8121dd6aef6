//! Audit appends of reads are group-committed (`person-sqlite` `audit`): concurrent appends share write
//! transactions, and every entry is still stored exactly once, in its own position, before its append returns.

use std::sync::{Arc, Mutex, PoisonError};

use futures::future::join_all;
use person_core::audit::AuditAction;
use person_core::ports::AuditLog;
use person_core::storage::{QueryExecution, QueryObserver, QueryRecorder};
use person_core::testkit::fixtures::{audit_entry, person_id};
use person_sqlite::{SqliteOptions, SqliteStore};

/// Counts the commits the store runs.
#[derive(Default)]
struct Commits(Mutex<u64>);

impl QueryObserver for Commits {
    fn executed(&self, execution: QueryExecution) {
        if execution.query.name == "transaction.commit" && execution.succeeded {
            *self.0.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        }
    }
}

#[tokio::test]
async fn concurrent_appends_share_commits_and_every_entry_is_stored_once() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("person.db").display());
    let commits = Arc::new(Commits::default());
    let options = SqliteOptions { queries: QueryRecorder::new(commits.clone()), ..SqliteOptions::default() };
    let store = SqliteStore::open(&url, options).await.expect("store opens");
    let before = *commits.0.lock().unwrap_or_else(PoisonError::into_inner);

    let person = person_id();
    let entries: Vec<_> = (0..300).map(|_| audit_entry(AuditAction::PersonRead, vec![person])).collect();
    let ids: Vec<_> = entries.iter().map(|e| e.id).collect();
    let results = join_all(entries.into_iter().map(|entry| store.append(entry))).await;
    assert!(results.iter().all(Result::is_ok), "every append succeeds: {results:?}");

    let commits = *commits.0.lock().unwrap_or_else(PoisonError::into_inner) - before;
    assert!(commits < 300 / 10, "300 concurrent appends share commits: {commits} commits");
    let stored = store.entries_for_person(person, 0, 1000).await.expect("audit reads");
    let mut stored_ids: Vec<_> = stored.iter().map(|r| r.entry.id).collect();
    let mut expected = ids;
    stored_ids.sort();
    expected.sort();
    assert_eq!(stored_ids, expected, "each entry stored exactly once");
    let mut positions: Vec<_> = stored.iter().map(|r| r.position).collect();
    positions.dedup();
    assert_eq!(positions.len(), 300, "each entry has its own position");
    store.close().await;
}
