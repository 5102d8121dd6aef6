//! Test support (feature `testing`): a storage URL naming a new, uniquely named table on the local
//! DynamoDB-compatible server of `PERSON_TEST_DYNAMODB_ENDPOINT`, so that every test gets an empty store while
//! tests run in parallel. The store creates the table when it connects; tests leave it behind (the test server
//! keeps tables in memory and is stopped at the end of the run).

/// The environment variable naming the test server (e.g. `http://127.0.0.1:5011`).
pub const TEST_ENDPOINT_VARIABLE: &str = "PERSON_TEST_DYNAMODB_ENDPOINT";

/// The region test tables are created in.
pub const TEST_REGION: &str = "eu-west-2";

/// A `dynamodb://person-test-<random>?region=…&endpoint=…` URL, or `None` (after printing a `skipped:` line) when
/// `PERSON_TEST_DYNAMODB_ENDPOINT` is not set.
#[must_use]
pub fn fresh_test_url() -> Option<String> {
    match std::env::var(TEST_ENDPOINT_VARIABLE) {
        Ok(endpoint) if !endpoint.trim().is_empty() => Some(format!(
            "dynamodb://person-test-{}?region={TEST_REGION}&endpoint={}",
            uuid::Uuid::new_v4(),
            endpoint.trim()
        )),
        _ => {
            println!(
                "skipped: set {TEST_ENDPOINT_VARIABLE} (e.g. http://127.0.0.1:5011, a moto_server) to run the DynamoDB tests"
            );
            None
        }
    }
}
