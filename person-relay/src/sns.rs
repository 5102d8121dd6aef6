//! [`SnsPublisher`]: the [`Publisher`] for AWS SNS, with `PublishBatch`.
//!
//! Each event becomes one message whose body is the event exactly as the feed serialises it (the Hackney
//! `EntityEventSns` envelope), with a string attribute `eventType` that subscribers can filter on. On a FIFO
//! topic (its ARN ends with `.fifo`) the message group is the person, so each person's events stay in order, and
//! the deduplication id is the event id, so SNS drops copies that a retry or a takeover sends within its
//! five-minute deduplication window. SDK types never leave this module.

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sns::config::retry::RetryConfig;
use aws_sdk_sns::config::timeout::TimeoutConfig;
use aws_sdk_sns::config::{BehaviorVersion, Region};
use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use person_core::FeedEntry;

use crate::publisher::{PublishError, Publisher};

/// The most messages SNS takes in one `PublishBatch`.
const SNS_MAX_BATCH: usize = 10;

/// The most bytes SNS takes in one message, and in one `PublishBatch` altogether (bodies and attributes).
const SNS_MAX_PAYLOAD: usize = 262_144;

/// The message attribute that carries the event type.
const EVENT_TYPE_ATTRIBUTE: &str = "eventType";

/// The attribute's data type.
const STRING_DATA_TYPE: &str = "String";

/// The SDK behaviour version this publisher was written and tested against. Pinned, so that an SDK upgrade never
/// changes retry or timeout defaults behind our back.
fn behavior_version() -> BehaviorVersion {
    BehaviorVersion::v2026_01_12()
}

/// Where and how to publish.
#[derive(Debug, Clone)]
pub struct SnsOptions {
    /// The topic's ARN (`arn:aws:sns:<region>:<account>:<name>`, ending with `.fifo` for a FIFO topic).
    pub topic_arn: String,
    /// The region; by default the topic ARN's region.
    pub region: Option<String>,
    /// Another endpoint than AWS's (a VPC endpoint, or a local test server).
    pub endpoint: Option<String>,
    /// The longest one `PublishBatch` may take, retries included.
    pub operation_timeout: Duration,
    /// Attempts per `PublishBatch` by the SDK (the relay retries on top of these, with its own backoff).
    pub max_attempts: u32,
}

impl SnsOptions {
    /// Options for `topic_arn` with the defaults: the ARN's region, AWS's endpoint, 10 s per call, 3 attempts.
    #[must_use]
    pub fn new(topic_arn: impl Into<String>) -> Self {
        Self {
            topic_arn: topic_arn.into(),
            region: None,
            endpoint: None,
            operation_timeout: Duration::from_secs(10),
            max_attempts: 3,
        }
    }
}

/// Why an [`SnsPublisher`] could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SnsSetupError {
    /// The topic ARN is not an SNS topic ARN.
    #[error("relay topic {0:?} is not an sns topic arn (arn:aws:sns:<region>:<account>:<name>)")]
    InvalidTopicArn(String),
}

/// Publishes feed entries to an SNS topic.
#[derive(Debug, Clone)]
pub struct SnsPublisher {
    client: aws_sdk_sns::Client,
    topic_arn: String,
    fifo: bool,
}

impl SnsPublisher {
    /// A publisher with a client built from `options` and the standard AWS chain (credentials from the
    /// environment, profile, container or instance role).
    ///
    /// # Errors
    /// [`SnsSetupError::InvalidTopicArn`] when `options.topic_arn` is not an SNS topic ARN.
    pub async fn connect(options: &SnsOptions) -> Result<Self, SnsSetupError> {
        let arn_region = topic_region(&options.topic_arn)
            .ok_or_else(|| SnsSetupError::InvalidTopicArn(options.topic_arn.clone()))?;
        let region = options.region.clone().unwrap_or_else(|| arn_region.to_owned());
        let mut loader = aws_config::defaults(behavior_version()).region(Region::new(region));
        if let Some(endpoint) = &options.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        let shared = loader.load().await;
        let config = aws_sdk_sns::config::Builder::from(&shared)
            .behavior_version(behavior_version())
            .retry_config(RetryConfig::standard().with_max_attempts(options.max_attempts.max(1)))
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_timeout(options.operation_timeout)
                    .connect_timeout(Duration::from_secs(3))
                    .build(),
            )
            .build();
        Ok(Self::new(aws_sdk_sns::Client::from_conf(config), options.topic_arn.clone()))
    }

    /// A publisher on a client the caller built (tests, or an application with its own AWS set-up).
    #[must_use]
    pub fn new(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> Self {
        let topic_arn = topic_arn.into();
        let fifo = topic_arn.ends_with(".fifo");
        Self { client, topic_arn, fifo }
    }

    /// The topic.
    #[must_use]
    pub fn topic_arn(&self) -> &str {
        &self.topic_arn
    }

    /// Whether the topic is a FIFO topic (messages carry group and deduplication ids).
    #[must_use]
    pub fn is_fifo(&self) -> bool {
        self.fifo
    }

    /// The batch entry of `entry`, numbered `index` within its batch, and its size as SNS counts it.
    fn batch_entry(&self, index: usize, entry: &FeedEntry) -> Result<(PublishBatchRequestEntry, usize), PublishError> {
        let event = &entry.event;
        let encode =
            |source: Box<dyn std::error::Error + Send + Sync>| PublishError::Encode { event_id: event.id, source };
        let body = serde_json::to_string(event).map_err(|e| encode(Box::new(e)))?;
        let event_type = event.event_type.as_str();
        let size = body.len() + EVENT_TYPE_ATTRIBUTE.len() + STRING_DATA_TYPE.len() + event_type.len();
        if size > SNS_MAX_PAYLOAD {
            return Err(PublishError::TooLarge { event_id: event.id, size, limit: SNS_MAX_PAYLOAD });
        }
        let attribute = MessageAttributeValue::builder()
            .data_type(STRING_DATA_TYPE)
            .string_value(event_type)
            .build()
            .map_err(|e| encode(Box::new(e)))?;
        let mut builder = PublishBatchRequestEntry::builder()
            .id(index.to_string())
            .message(body)
            .message_attributes(EVENT_TYPE_ATTRIBUTE, attribute);
        if self.fifo {
            builder =
                builder.message_group_id(event.entity_id.to_string()).message_deduplication_id(event.id.to_string());
        }
        Ok((builder.build().map_err(|e| encode(Box::new(e)))?, size))
    }
}

#[async_trait]
impl Publisher for SnsPublisher {
    fn max_batch(&self) -> usize {
        SNS_MAX_BATCH
    }

    async fn publish(&self, entries: &[FeedEntry]) -> Result<usize, PublishError> {
        // One call per publish: as many leading entries as fit in one `PublishBatch`; the relay sends the rest
        // in its next call.
        let mut batch = Vec::with_capacity(entries.len().min(SNS_MAX_BATCH));
        let mut payload = 0;
        for (index, entry) in entries.iter().take(SNS_MAX_BATCH).enumerate() {
            let (request, size) = match self.batch_entry(index, entry) {
                Ok(built) => built,
                Err(e) if batch.is_empty() => return Err(e),
                // Publish what comes before; the failing entry is first in the next call and reported there.
                Err(_) => break,
            };
            if payload + size > SNS_MAX_PAYLOAD {
                break;
            }
            payload += size;
            batch.push(request);
        }
        if batch.is_empty() {
            return Ok(0);
        }
        let sent = batch.len();
        let output = self
            .client
            .publish_batch()
            .topic_arn(&self.topic_arn)
            .set_publish_batch_request_entries(Some(batch))
            .send()
            .await
            .map_err(|e| PublishError::Broker(Box::new(e)))?;
        let acknowledged: HashSet<&str> = output.successful().iter().filter_map(|s| s.id()).collect();
        let prefix = (0..sent).take_while(|i| acknowledged.contains(i.to_string().as_str())).count();
        if prefix > 0 {
            return Ok(prefix);
        }
        let first = &entries[0];
        match output.failed().iter().find(|f| f.id() == "0") {
            Some(failure) => Err(PublishError::Refused {
                event_id: first.event.id,
                code: failure.code().to_owned(),
                sender_fault: failure.sender_fault(),
            }),
            None => Err(PublishError::NotAcknowledged),
        }
    }
}

/// The region of an SNS topic ARN (`arn:<partition>:sns:<region>:<account>:<name>`), `None` when it is not one
/// (what configuration checks a topic setting with).
#[must_use]
pub fn topic_region(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        ["arn", partition, "sns", region, account, name]
            if !partition.is_empty() && !region.is_empty() && !account.is_empty() && !name.is_empty() =>
        {
            Some(region)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_region_comes_from_a_topic_arn() {
        assert_eq!(topic_region("arn:aws:sns:eu-west-2:123456789012:person-events"), Some("eu-west-2"));
        assert_eq!(topic_region("arn:aws:sns:eu-west-2:123456789012:person-events.fifo"), Some("eu-west-2"));
    }

    #[test]
    fn strings_that_are_not_sns_topic_arns_are_refused() {
        for arn in
            ["", "person-events", "arn:aws:sqs:eu-west-2:123456789012:q", "arn:aws:sns::123:t", "arn:aws:sns:r:a"]
        {
            assert_eq!(topic_region(arn), None, "{arn}");
        }
    }
}
