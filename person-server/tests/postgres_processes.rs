//! Two real `person-api` processes on one PostgreSQL schema (as behind a load balancer): the multi-process
//! tests of `common::multi_process`, each on a fresh schema that both processes migrate at the same time.
//!
//! Run when `PERSON_TEST_POSTGRES_URL` is set (e.g. `postgres://postgres@127.0.0.1:5432/test`); otherwise each
//! test prints a `skipped:` line and passes.

mod common;

use common::multi_process;
use person_postgres::testing::fresh_test_url;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_patches_with_the_same_if_match_across_two_processes_have_exactly_one_winner() {
    let Some(url) = fresh_test_url() else { return };
    multi_process::twenty_concurrent_patches_with_the_same_if_match_across_two_processes_have_exactly_one_winner(&url)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_creates_across_two_processes_get_a_hundred_distinct_person_refs() {
    let Some(url) = fresh_test_url() else { return };
    multi_process::a_hundred_concurrent_creates_across_two_processes_get_a_hundred_distinct_person_refs(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_creates_of_the_same_person_across_two_processes_have_exactly_one_201() {
    let Some(url) = fresh_test_url() else { return };
    multi_process::ten_concurrent_creates_of_the_same_person_across_two_processes_have_exactly_one_201(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_feed_reader_sees_every_event_of_two_thousand_concurrent_writes_exactly_once_in_version_order() {
    let Some(url) = fresh_test_url() else { return };
    multi_process::a_feed_reader_sees_every_event_of_two_thousand_concurrent_writes_exactly_once_in_version_order(&url)
        .await;
}
