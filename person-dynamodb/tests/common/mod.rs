//! Shared by the DynamoDB integration tests: a store on a fresh table of the local DynamoDB-compatible server
//! named by `PERSON_TEST_DYNAMODB_ENDPOINT`, deleted again when the store is dropped.

use std::ops::Deref;

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use person_dynamodb::{DynamoDbOptions, DynamoDbStore};

/// The variable naming the local server (e.g. `http://127.0.0.1:5011`).
pub(crate) const ENDPOINT_VARIABLE: &str = "PERSON_TEST_DYNAMODB_ENDPOINT";

/// The region the tests use.
pub(crate) const REGION: &str = "eu-west-2";

/// A store on its own table, which is deleted when this is dropped.
pub(crate) struct TestStore {
    pub(crate) store: DynamoDbStore,
    endpoint: String,
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
    Some(TestStore { store, endpoint })
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

/// A store with default options on a new table.
pub(crate) async fn fresh_store() -> Option<TestStore> {
    fresh_store_with(DynamoDbOptions::default()).await
}

impl Drop for TestStore {
    fn drop(&mut self) {
        // The local server keeps every table in memory for its lifetime: delete this one. Drop cannot await, and
        // may run inside the test's runtime, so the deletion runs on a thread of its own with its own runtime.
        let (endpoint, table) = (self.endpoint.clone(), self.store.table().to_owned());
        let deleted = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async move {
                let config = aws_sdk_dynamodb::Config::builder()
                    .behavior_version(BehaviorVersion::v2026_01_12())
                    .region(Region::new(REGION))
                    .endpoint_url(endpoint)
                    .credentials_provider(Credentials::new("test", "test", None, None, "test"))
                    .build();
                aws_sdk_dynamodb::Client::from_conf(config).delete_table().table_name(table).send().await.ok()
            })
        });
        // A table left behind only costs the test server memory.
        let _ = deleted.join();
    }
}
