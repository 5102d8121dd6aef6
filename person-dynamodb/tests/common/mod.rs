//! Shared by the DynamoDB integration tests: a store on a fresh table of the local DynamoDB-compatible server
//! named by `PERSON_TEST_DYNAMODB_ENDPOINT`, deleted again when the store is dropped.

use std::ops::Deref;

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::types::{AttributeValue, DeleteGlobalSecondaryIndexAction, GlobalSecondaryIndexUpdate};
use person_core::PersonId;
use person_dynamodb::{DynamoDbOptions, DynamoDbStore};

/// The variable naming the local server (e.g. `http://127.0.0.1:5011`).
pub(crate) const ENDPOINT_VARIABLE: &str = "PERSON_TEST_DYNAMODB_ENDPOINT";

/// The region the tests use.
pub(crate) const REGION: &str = "eu-west-2";

/// A store on its own table, which is deleted when this is dropped.
pub(crate) struct TestStore {
    pub(crate) store: DynamoDbStore,
    endpoint: String,
    /// False once [`TestStore::keep_table`] handed the store out without its guard.
    delete_on_drop: bool,
}

impl Deref for TestStore {
    type Target = DynamoDbStore;

    fn deref(&self) -> &DynamoDbStore {
        &self.store
    }
}

/// The endpoint, or `None` after printing why the test is skipped.
pub(crate) fn endpoint() -> Option<String> {
    match std::env::var(ENDPOINT_VARIABLE) {
        Ok(endpoint) if !endpoint.trim().is_empty() => Some(endpoint),
        _ => {
            println!(
                "skipped: set {ENDPOINT_VARIABLE} (e.g. http://127.0.0.1:5011, a moto_server) to run the DynamoDB tests"
            );
            None
        }
    }
}

/// A store on a new table `person-test-<uuid>`, or `None` when no server is configured.
#[expect(clippy::expect_used, reason = "a test helper fails the test loudly, with a message")]
pub(crate) async fn fresh_store_with(options: DynamoDbOptions) -> Option<TestStore> {
    let endpoint = endpoint()?;
    let table = format!("person-test-{}", uuid::Uuid::new_v4());
    let url = format!("dynamodb://{table}?region={REGION}&endpoint={endpoint}");
    let store = DynamoDbStore::connect(&url, options).await.expect("store connects and creates its table");
    Some(TestStore { store, endpoint, delete_on_drop: true })
}

impl TestStore {
    /// Another store on the same table, as another process would hold: it shares no client, lock or cache with
    /// this one, so races between the two are decided by DynamoDB's conditions alone.
    #[expect(clippy::expect_used, reason = "a test helper fails the test loudly, with a message")]
    pub(crate) async fn another_handle(&self) -> DynamoDbStore {
        let url = format!("dynamodb://{}?region={REGION}&endpoint={}", self.store.table(), self.endpoint);
        DynamoDbStore::connect(&url, DynamoDbOptions::default()).await.expect("second handle connects")
    }
}

/// A client of the test server, outside any store (to shape a table as an older version of the store left it).
pub(crate) fn raw_client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::v2026_01_12())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

impl TestStore {
    /// Another store on the same table, opened with `options` (connecting migrates the table).
    #[expect(clippy::expect_used, reason = "a test helper fails the test loudly, with a message")]
    pub(crate) async fn reopen(&self, options: DynamoDbOptions) -> DynamoDbStore {
        let url = format!("dynamodb://{}?region={REGION}&endpoint={}", self.store.table(), self.endpoint);
        DynamoDbStore::connect(&url, options).await.expect("the store reopens")
    }

    /// Turns the table into one an older version of the store left: no reporting index, no migration marker,
    /// and the items of `persons` without their reporting attributes.
    #[expect(clippy::expect_used, reason = "a test helper fails the test loudly, with a message")]
    pub(crate) async fn strip_reporting_index(&self, persons: &[PersonId]) {
        let client = raw_client(&self.endpoint);
        let table = self.store.table();
        let delete = DeleteGlobalSecondaryIndexAction::builder().index_name("GSI1").build().expect("valid action");
        client
            .update_table()
            .table_name(table)
            .global_secondary_index_updates(GlobalSecondaryIndexUpdate::builder().delete(delete).build())
            .send()
            .await
            .expect("the index is deleted");
        let key = |pk: String, sk: &str| {
            [("PK".to_owned(), AttributeValue::S(pk)), ("SK".to_owned(), AttributeValue::S(sk.to_owned()))].into()
        };
        client
            .delete_item()
            .table_name(table)
            .set_key(Some(key("MIGRATION".to_owned(), "report-index-backfill")))
            .send()
            .await
            .expect("the marker is deleted");
        for id in persons {
            client
                .update_item()
                .table_name(table)
                .set_key(Some(key(format!("PERSON#{id}"), "PERSON")))
                .update_expression("REMOVE GSI1PK, GSI1SK, lastModified, tenureCount, referenceCount, reportable")
                .send()
                .await
                .expect("the reporting attributes are removed");
        }
    }

    /// The store alone, its table left to the test server (which keeps tables in memory and is stopped at the
    /// end of the run): for callers that cannot keep this guard alive as long as the store, such as the
    /// contract suite's factory, which hands the store to the case and sees it no more.
    pub(crate) fn keep_table(mut self) -> DynamoDbStore {
        self.delete_on_drop = false;
        self.store.clone()
    }
}

/// A store with default options on a new table.
pub(crate) async fn fresh_store() -> Option<TestStore> {
    fresh_store_with(DynamoDbOptions::default()).await
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if !self.delete_on_drop {
            return;
        }
        // The local server keeps every table in memory for its lifetime: delete this one. Drop cannot await, and
        // may run inside the test's runtime, so the deletion runs on a thread of its own with its own runtime.
        let (endpoint, table) = (self.endpoint.clone(), self.store.table().to_owned());
        let deleted = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async move { raw_client(&endpoint).delete_table().table_name(table).send().await.ok() })
        });
        // A table left behind only costs the test server memory.
        let _ = deleted.join();
    }
}
