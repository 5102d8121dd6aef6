//! The Person API's event relay (SPEC §9): it publishes the event feed — the outbox every store writes in the same
//! atomic write as the change — to a message broker (AWS SNS for Hackney), at least once, and resumes where it
//! stopped after a crash.
//!
//! * [`Publisher`] is the broker port: publish a batch of feed entries, say how many leading ones the broker
//!   acknowledged. [`SnsPublisher`] implements it with SNS `PublishBatch`.
//! * Feature `testkit` adds a topic and queue on a local SNS/SQS server (moto) for tests.
//! * [`Relay`] is the loop: it takes the relay lease of the store ([`person_core::ports::RelayRepository`]) so that
//!   of several server instances only one publishes, reads the feed after the stored position, publishes, and
//!   moves the stored position on only after the broker acknowledged. Publish failures are retried with
//!   exponential backoff and jitter; nothing is ever skipped.
//! * [`RelayMetrics`] are the relay's counters and gauges, cheap to read on every scrape.
//!
//! The relay knows the feed and the broker, not HTTP, not the storage backend, and never logs message bodies
//! (they hold personal data).

mod backoff;
mod metrics;
mod publisher;
mod relay;
mod sns;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use backoff::Backoff;
pub use metrics::{RelayMetrics, RelayMetricsSnapshot};
pub use publisher::{PublishError, Publisher};
pub use relay::{DEFAULT_RELAY_NAME, Relay, RelayConfig, RelayHandle};
pub use sns::{SnsOptions, SnsPublisher, SnsSetupError, topic_region as sns_topic_region};
