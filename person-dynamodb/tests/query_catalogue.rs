//! Query visibility (SPEC §10): every DynamoDB operation the store sends is reported to the store's
//! `QueryObserver` under a name of its catalogue, every catalogue entry is something the store really sends, and
//! executions that read or write items report how many. The whole contract suite runs against stores (each on a
//! table of its own) opened with a recording observer, then the paths the suite cannot reach: a merge too big
//! for one transaction, and the migration of a table from before the reporting index. Skipped unless
//! `PERSON_TEST_DYNAMODB_ENDPOINT` is set.

#[expect(dead_code, reason = "each test crate uses a different part of the shared helpers")]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};

use common::fresh_store_with;
use person_core::ports::{PersonRepository, QueryCatalogue, ReportingRepository};
use person_core::storage::{QueryExecution, QueryObserver, QueryRecorder};
use person_core::testkit::contract;
use person_core::testkit::fixtures::{full_person, keyed_create_write, merge_write, person_id};
use person_dynamodb::DynamoDbOptions;
use person_dynamodb::queries::CATALOGUE;

/// Catalogue entries no deterministic test provokes, with the reason.
const NOT_PROVOKED: &[(&str, &str)] = &[(
    "counter.claim",
    "sent only by a handle that loses the feed counter race to another process twice in a row; \
     tests/concurrency.rs makes such races, but when they happen is up to the scheduler",
)];

/// Operations on the table itself: they read or write no items, so they report no count.
const SCHEMA_OPERATIONS: &[&str] = &["table.describe", "table.create", "table.add_report_index"];

/// Every execution reported: name, item count, success.
#[derive(Default)]
struct Recorded(Mutex<Vec<(&'static str, Option<u64>, bool)>>);

impl QueryObserver for Recorded {
    fn executed(&self, execution: QueryExecution) {
        let mut executions = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        executions.push((execution.query.name, execution.rows, execution.succeeded));
    }
}

impl Recorded {
    fn executions(&self) -> Vec<(&'static str, Option<u64>, bool)> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

fn numbered(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix}:{i}")).collect()
}

fn refs(texts: &[String]) -> Vec<&str> {
    texts.iter().map(String::as_str).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_operation_sent_is_catalogued_every_catalogued_operation_is_sent_and_item_operations_report_counts() {
    if common::endpoint().is_none() {
        return;
    }
    let recorded = Arc::new(Recorded::default());
    let options = DynamoDbOptions { queries: QueryRecorder::new(recorded.clone()), ..DynamoDbOptions::default() };

    for (name, case) in contract::cases() {
        let table = fresh_store_with(options.clone()).await.expect("the server is configured");
        println!("contract case {name}");
        // The table (deleted when `table` drops) outlives the case's clone of the store.
        case(Arc::new(table.store.clone())).await;
    }

    // A merge whose duplicate's postings do not fit in its transaction: they follow it (search_keys.cleanup).
    let table = fresh_store_with(options.clone()).await.expect("the server is configured");
    let survivor = table
        .insert(keyed_create_write(full_person(person_id()), &refs(&numbered("s", 30)), Some("survivor")))
        .await
        .expect("insert succeeds");
    let duplicate = table
        .insert(keyed_create_write(full_person(person_id()), &refs(&numbered("d", 40)), Some("duplicate")))
        .await
        .expect("insert succeeds");
    let write = merge_write(&survivor, &duplicate, &refs(&numbered("n", 30)), Some("survivor"), Vec::new());
    table.merge(write).await.expect("merge succeeds");

    // A table from before the reporting index, reopened: the index is added and its persons backfilled.
    table.strip_reporting_index(&[survivor.id, duplicate.id]).await;
    let migrated = table.reopen(options.clone()).await;
    let counts = migrated.report_counts(None).await.expect("report_counts succeeds");
    assert_eq!(counts.persons, 2, "both persons are reported after the backfill");

    let executions = recorded.executions();
    let catalogue: BTreeSet<&str> = migrated.statements().iter().map(|q| q.name).collect();
    assert_eq!(catalogue, CATALOGUE.iter().map(|q| q.name).collect(), "statements() is the catalogue");
    let uncatalogued: BTreeSet<&str> = executions.iter().map(|e| e.0).filter(|n| !catalogue.contains(n)).collect();
    assert!(uncatalogued.is_empty(), "executed but not catalogued: {uncatalogued:?}");

    let executed: BTreeSet<&str> = executions.iter().map(|e| e.0).collect();
    let excused: BTreeSet<&str> = NOT_PROVOKED.iter().map(|(name, _)| *name).collect();
    let never: BTreeSet<&str> = catalogue.difference(&executed).copied().filter(|n| !excused.contains(n)).collect();
    assert!(never.is_empty(), "catalogued but never executed: {never:?}");

    let mut uncounted: BTreeMap<&str, usize> = BTreeMap::new();
    for (name, rows, succeeded) in &executions {
        if *succeeded && rows.is_none() && !SCHEMA_OPERATIONS.contains(name) {
            *uncounted.entry(name).or_default() += 1;
        }
    }
    assert!(uncounted.is_empty(), "successful item operations without an item count: {uncounted:?}");
    for reading in ["person.get", "events.after", "report.index_page", "report.persons_get", "report.counts"] {
        assert!(
            executions.iter().any(|(name, rows, _)| *name == reading && rows.is_some_and(|rows| rows > 0)),
            "{reading} reported the items it returned"
        );
    }
}
