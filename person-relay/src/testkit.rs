//! Feature `testkit`: a real topic and queue on a local SNS/SQS-compatible server (moto) for tests of the relay
//! and of the server that runs it. Each [`TestBroker`] has its own topic and a queue subscribed to it with raw
//! message delivery, so a test reads back exactly the messages the relay published.
//!
//! The server is named by `PERSON_TEST_DYNAMODB_ENDPOINT` (CI's moto server serves DynamoDB, SNS and SQS alike).

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_sns::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName};
use tokio::time::Instant;
use uuid::Uuid;

use crate::sns::SnsPublisher;

/// The variable naming the local server (e.g. `http://127.0.0.1:5011`).
pub const ENDPOINT_VARIABLE: &str = "PERSON_TEST_DYNAMODB_ENDPOINT";

/// The region the tests use.
pub const REGION: &str = "eu-west-2";

/// The endpoint of the local server, or `None` after printing why the test is skipped.
#[must_use]
pub fn endpoint() -> Option<String> {
    match std::env::var(ENDPOINT_VARIABLE) {
        Ok(endpoint) if !endpoint.trim().is_empty() => Some(endpoint),
        _ => {
            println!(
                "skipped: set {ENDPOINT_VARIABLE} (e.g. http://127.0.0.1:5011, a moto_server) to run the relay tests"
            );
            None
        }
    }
}

/// One message as the queue delivered it.
#[derive(Debug, Clone)]
pub struct Received {
    /// The message body (the event JSON).
    pub body: String,
    /// The `eventType` message attribute.
    pub event_type: Option<String>,
    /// The FIFO message group id.
    pub group_id: Option<String>,
    /// The FIFO deduplication id.
    pub deduplication_id: Option<String>,
}

impl Received {
    /// The body as JSON (`Null` when it is not JSON).
    #[must_use]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The event id in the body.
    #[must_use]
    pub fn event_id(&self) -> Option<String> {
        self.json().get("id").and_then(serde_json::Value::as_str).map(str::to_owned)
    }
}

/// A topic with a queue subscribed to it (raw message delivery), on the local server.
#[derive(Debug, Clone)]
pub struct TestBroker {
    sns: aws_sdk_sns::Client,
    sqs: aws_sdk_sqs::Client,
    endpoint: String,
    /// The topic's ARN.
    pub topic_arn: String,
    /// The queue's URL.
    pub queue_url: String,
}

fn credentials() -> Credentials {
    Credentials::new("test", "test", None, None, "person-relay-testkit")
}

/// An SNS client on `endpoint` with test credentials and `max_attempts` attempts per call.
#[must_use]
pub fn sns_client(endpoint: &str, max_attempts: u32) -> aws_sdk_sns::Client {
    let config = aws_sdk_sns::Config::builder()
        .behavior_version(BehaviorVersion::v2026_01_12())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(credentials())
        .retry_config(aws_sdk_sns::config::retry::RetryConfig::standard().with_max_attempts(max_attempts.max(1)))
        .build();
    aws_sdk_sns::Client::from_conf(config)
}

fn sqs_client(endpoint: &str) -> aws_sdk_sqs::Client {
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(aws_sdk_sqs::config::BehaviorVersion::v2026_01_12())
        .region(aws_sdk_sqs::config::Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_sqs::config::Credentials::new("test", "test", None, None, "person-relay-testkit"))
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

#[expect(clippy::expect_used, reason = "a test helper fails the test loudly, with a message")]
impl TestBroker {
    /// A new topic and queue with unique names (FIFO ones when `fifo`), the queue subscribed with raw delivery.
    ///
    /// # Panics
    /// When the server refuses to create them.
    pub async fn create(endpoint: &str, fifo: bool) -> Self {
        let sns = sns_client(endpoint, 3);
        let sqs = sqs_client(endpoint);
        let suffix = if fifo { ".fifo" } else { "" };
        let name = format!("person-relay-test-{}", Uuid::new_v4().simple());
        let mut topic = sns.create_topic().name(format!("{name}{suffix}"));
        if fifo {
            topic = topic.attributes("FifoTopic", "true");
        }
        let topic_arn =
            topic.send().await.expect("the test server creates a topic").topic_arn.expect("a created topic has an arn");
        let mut queue = sqs
            .create_queue()
            .queue_name(format!("{name}{suffix}"))
            .attributes(QueueAttributeName::VisibilityTimeout, "300");
        if fifo {
            queue = queue.attributes(QueueAttributeName::FifoQueue, "true");
        }
        let queue_url =
            queue.send().await.expect("the test server creates a queue").queue_url.expect("a created queue has a url");
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("the test server describes the queue");
        let queue_arn = attributes
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .expect("the queue has an arn")
            .clone();
        sns.subscribe()
            .topic_arn(&topic_arn)
            .protocol("sqs")
            .endpoint(queue_arn)
            .attributes("RawMessageDelivery", "true")
            .send()
            .await
            .expect("the test server subscribes the queue to the topic");
        Self { sns, sqs, endpoint: endpoint.to_owned(), topic_arn, queue_url }
    }

    /// The local server's endpoint.
    #[must_use]
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// A publisher to this broker's topic.
    #[must_use]
    pub fn publisher(&self) -> SnsPublisher {
        SnsPublisher::new(self.sns.clone(), self.topic_arn.clone())
    }

    /// Receives (and deletes) messages until `done` says the messages received so far are enough, or `within`
    /// has passed; returns every message received, in order of receipt.
    ///
    /// # Panics
    /// When the server refuses a receive or a delete.
    pub async fn receive_until(&self, within: Duration, mut done: impl FnMut(&[Received]) -> bool) -> Vec<Received> {
        let deadline = Instant::now() + within;
        let mut received = Vec::new();
        while !done(&received) && Instant::now() < deadline {
            let output = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .message_attribute_names("All")
                .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
                .message_system_attribute_names(MessageSystemAttributeName::MessageDeduplicationId)
                .send()
                .await
                .expect("the test server receives messages");
            let messages = output.messages();
            if messages.is_empty() {
                continue;
            }
            let mut deletes = Vec::new();
            for (index, message) in messages.iter().enumerate() {
                let system: HashMap<MessageSystemAttributeName, String> =
                    message.attributes().cloned().unwrap_or_default();
                received.push(Received {
                    body: message.body().unwrap_or_default().to_owned(),
                    event_type: message
                        .message_attributes()
                        .and_then(|a| a.get("eventType"))
                        .and_then(|v| v.string_value())
                        .map(str::to_owned),
                    group_id: system.get(&MessageSystemAttributeName::MessageGroupId).cloned(),
                    deduplication_id: system.get(&MessageSystemAttributeName::MessageDeduplicationId).cloned(),
                });
                if let Some(handle) = message.receipt_handle() {
                    deletes.push(
                        DeleteMessageBatchRequestEntry::builder()
                            .id(index.to_string())
                            .receipt_handle(handle)
                            .build()
                            .expect("a delete entry has an id and a receipt handle"),
                    );
                }
            }
            if !deletes.is_empty() {
                self.sqs
                    .delete_message_batch()
                    .queue_url(&self.queue_url)
                    .set_entries(Some(deletes))
                    .send()
                    .await
                    .expect("the test server deletes received messages");
            }
        }
        received
    }
}
