//! Two real `person-api` processes on one PostgreSQL schema (as behind a load balancer): the multi-process
//! tests of `common::multi_process`, each on a fresh schema that both processes migrate at the same time.
//!
//! Run when `PERSON_TEST_POSTGRES_URL` is set (e.g. `postgres://postgres@127.0.0.1:5432/test`); otherwise each
//! test prints a `skipped:` line and passes.

#[macro_use]
mod common;

use common::multi_process::{PERSONS_PER_WRITER, SharedStore};

fn fresh_store() -> Option<SharedStore> {
    Some(SharedStore {
        url: person_postgres::testing::fresh_test_url()?,
        env: Vec::new(),
        feed_persons_per_writer: PERSONS_PER_WRITER,
    })
}

multi_process_tests!(fresh_store);
