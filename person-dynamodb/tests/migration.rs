//! Opening a table created before the reporting index: the store adds the index (`UpdateTable`) and writes the
//! reporting attributes onto the persons stored before, found through the feed (never a Scan), once. Skipped
//! unless `PERSON_TEST_DYNAMODB_ENDPOINT` is set.

#[expect(dead_code, reason = "each test crate uses a different part of the shared helpers")]
mod common;

use common::fresh_store;
use person_core::PersonStatus;
use person_core::ports::{PersonRepository, ReportCounts, ReportQuery, ReportingRepository};
use person_core::testkit::fixtures::{create_write, full_person, person_id, restriction_write, status_write};
use person_dynamodb::DynamoDbOptions;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_a_table_from_before_the_reporting_index_adds_it_and_backfills_every_person() {
    let Some(table) = fresh_store().await else { return };
    // More persons than one page of the feed (100 events), some of them changed since their creation.
    let mut persons = Vec::new();
    for _ in 0..105 {
        persons.push(table.insert(create_write(full_person(person_id()), None)).await.expect("insert succeeds"));
    }
    table.update(status_write(&persons[0], PersonStatus::Deleted)).await.expect("delete succeeds");
    table.update(restriction_write(&persons[1], true)).await.expect("restriction succeeds");
    let mut ids: Vec<_> = persons.iter().map(|p| p.id).collect();
    ids.sort();
    table.strip_reporting_index(&ids).await;

    let reopened = table.reopen(DynamoDbOptions::default()).await;

    let (tenures, references) = (persons[2].tenures.len() as u64, persons[2].references.len() as u64);
    let counts = reopened.report_counts(None).await.expect("report_counts succeeds");
    assert_eq!(
        counts,
        ReportCounts { persons: 105, withheld: 2, tenures: 103 * tenures, references: 103 * references }
    );
    let everything = ReportQuery { modified_since: None, after: None, offset: 0, limit: 1000 };
    let reported = reopened.report_persons(&everything).await.expect("report_persons succeeds");
    assert_eq!(reported.iter().map(|p| p.id).collect::<Vec<_>>(), ids, "every person, in id order");
    let sent = reopened.sdk_operations_sent();
    assert_eq!(sent.get("UpdateTable"), Some(&1), "the index is added: {sent:?}");
    assert!(!sent.contains_key("Scan"), "the backfill reads the feed, never scans: {sent:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopening_a_migrated_table_reads_one_marker_and_writes_nothing() {
    let Some(table) = fresh_store().await else { return };
    table.insert(create_write(full_person(person_id()), None)).await.expect("insert succeeds");

    let reopened = table.reopen(DynamoDbOptions::default()).await;

    let sent = reopened.sdk_operations_sent();
    let expected = [("DescribeTable".to_owned(), 1), ("GetItem".to_owned(), 1)].into_iter().collect();
    assert_eq!(sent, expected, "the table's description and the backfill marker");
}
