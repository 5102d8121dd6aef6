//! The SDK client, built once per store: behaviour version pinned, region and credentials from the URL or the
//! standard AWS chain, retries and timeouts from [`DynamoDbOptions`], and an interceptor that counts every SDK
//! operation the store sends (what the no-Scan test and operators read through
//! [`crate::DynamoDbStore::sdk_operations_sent`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, ConfigBag, Credentials, Intercept, Region, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;

use crate::error::DynamoStoreError;
use crate::location::TableLocation;
use crate::options::DynamoDbOptions;

/// The SDK behaviour version this store was written and tested against. Pinned, so that an SDK upgrade never
/// changes retry or timeout defaults behind our back.
fn behavior_version() -> BehaviorVersion {
    BehaviorVersion::v2026_01_12()
}

/// How many times each SDK operation (`GetItem`, `Query`, `TransactWriteItems` …) was sent.
#[derive(Debug, Default, Clone)]
pub(crate) struct OperationCounts(Arc<Mutex<BTreeMap<String, u64>>>);

impl OperationCounts {
    fn record(&self, operation: &str) {
        // A poisoned lock only means another thread panicked while counting; the counts are still usable.
        let mut counts = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *counts.entry(operation.to_owned()).or_default() += 1;
    }

    pub(crate) fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

/// Counts every operation once, before it is serialised (whatever its retries).
#[derive(Debug)]
struct CountOperations(OperationCounts);

impl Intercept for CountOperations {
    fn name(&self) -> &'static str {
        "PersonStoreCountOperations"
    }

    // Not `read_before_execution`: for a client-level interceptor that runs before the operation's configuration
    // (where its `Metadata` lives) is applied. Serialization happens once per operation, before any attempt.
    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg.load::<Metadata>().map_or("unknown", Metadata::name);
        self.0.record(operation);
        Ok(())
    }
}

/// Builds the client for `location`.
pub(crate) async fn build(
    location: &TableLocation,
    options: &DynamoDbOptions,
    counts: OperationCounts,
) -> Result<aws_sdk_dynamodb::Client, DynamoStoreError> {
    let mut loader = aws_config::defaults(behavior_version());
    if let Some(region) = &location.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(endpoint) = &location.endpoint {
        // A local DynamoDB-compatible server: it checks no signature, and the AWS chain must not be asked (it
        // could find real credentials and send them to a test server).
        loader = loader.endpoint_url(endpoint).credentials_provider(Credentials::new(
            "test",
            "test",
            None,
            None,
            "person-dynamodb-static",
        ));
    }
    let shared = loader.load().await;
    if shared.region().is_none() {
        return Err(DynamoStoreError::NoRegion);
    }
    let config = aws_sdk_dynamodb::config::Builder::from(&shared)
        .behavior_version(behavior_version())
        .retry_config(RetryConfig::standard().with_max_attempts(options.max_attempts.max(1)))
        .timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(options.operation_timeout)
                .operation_attempt_timeout(options.attempt_timeout)
                .connect_timeout(options.connect_timeout)
                .build(),
        )
        .interceptor(CountOperations(counts))
        .build();
    Ok(aws_sdk_dynamodb::Client::from_conf(config))
}
