//! The HTTP test suite of `person-http` (its `tests/common`, included unchanged) run over every real store,
//! each opened exactly as `PERSON_API_STORE` opens it (`person_server::store::open_repository`), one fresh store
//! per test: SQLite on a file in a temporary directory, PostgreSQL on a fresh schema of the database named by
//! `PERSON_TEST_POSTGRES_URL`, DynamoDB on a fresh table of the server named by `PERSON_TEST_DYNAMODB_ENDPOINT`
//! (each skipped with a message when its variable is unset).

#[macro_use]
#[path = "../../person-http/tests/common/mod.rs"]
#[expect(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "the suite's helpers are test code (a failed unwrap is a failed test); this file uses part of them"
)]
mod common;

use std::sync::Arc;

use person_core::ports::{RandomIds, SystemClock};
use person_core::storage::QueryRecorder;
use person_core::{PersonService, Repositories};
use person_http::{AppState, HttpConfig, QueryStats, StoreMetrics};
use person_server::store::{StoreOptions, open_repository};

/// A server over the store named by `url`.
#[expect(clippy::expect_used, reason = "a test helper fails the test loudly, with a message")]
async fn spawn_on(url: &str) -> common::Api {
    // Opened and served as `person-api serve` does: statements reported to the query statistics, every port call
    // timed.
    let stats = QueryStats::default();
    let queries = QueryRecorder::new(Arc::new(stats.clone()));
    let store = open_repository(url, &StoreOptions::default(), queries).await.expect("the store opens");
    let metrics = StoreMetrics::default();
    let repositories = Repositories::from_dyn(person_http::store_timing::timed(store, &metrics));
    let service = PersonService::new(repositories, Arc::new(SystemClock), Arc::new(RandomIds));
    let state = AppState::new(service, HttpConfig::default()).with_store_metrics(metrics).with_query_stats(stats);
    common::spawn_state(state).await
}

mod sqlite {
    #[expect(clippy::expect_used, reason = "a test helper fails the test loudly, with a message")]
    async fn spawn_sqlite() -> crate::common::Api {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}", dir.path().join("persons.db").display());
        super::spawn_on(&url).await.keeping(dir)
    }

    http_suite!(spawn_sqlite());

    #[tokio::test]
    async fn a_reporting_table_larger_than_one_internal_read_pages_and_streams_the_same_rows() {
        let api = spawn_sqlite().await;
        crate::common::reporting_suite::a_table_larger_than_one_internal_read_pages_and_streams_the_same_rows(&api)
            .await;
    }
}

mod postgres {
    async fn spawn_postgres() -> Option<crate::common::Api> {
        let url = person_postgres::testing::fresh_test_url()?;
        Some(super::spawn_on(&url).await)
    }

    http_suite!(optional spawn_postgres());

    #[tokio::test]
    async fn a_reporting_table_larger_than_one_internal_read_pages_and_streams_the_same_rows() {
        let Some(api) = spawn_postgres().await else { return };
        crate::common::reporting_suite::a_table_larger_than_one_internal_read_pages_and_streams_the_same_rows(&api)
            .await;
    }
}

mod dynamodb {
    async fn spawn_dynamodb() -> Option<crate::common::Api> {
        let url = person_dynamodb::testing::fresh_test_url()?;
        Some(super::spawn_on(&url).await)
    }

    http_suite!(optional spawn_dynamodb());
}
