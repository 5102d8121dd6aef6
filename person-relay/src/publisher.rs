//! The broker port: what the relay needs from a message broker, whichever it is.
//!
//! It knows feed entries and acknowledgements only; the relay decides what to retry and when.

use async_trait::async_trait;
use person_core::FeedEntry;
use uuid::Uuid;

/// Publishes feed entries to a message broker.
#[async_trait]
pub trait Publisher: Send + Sync {
    /// The most entries [`Publisher::publish`] takes at once (the broker's batch limit, 10 for SNS). The relay
    /// records its position after every call, so this is also how many events at most are published again after
    /// a crash between a publish and the record of its acknowledgement.
    fn max_batch(&self) -> usize;

    /// Publishes `entries` (at most [`Publisher::max_batch`], in feed order) and returns how many *leading*
    /// entries the broker acknowledged: all of them, or a prefix when the broker refused one (the entries after
    /// the first refused one count as not published, even if the broker took them). The relay publishes the
    /// rest again; a publisher never reorders or skips entries.
    ///
    /// `Ok(0)` for a non-empty batch is treated like an error.
    ///
    /// # Errors
    /// [`PublishError`] when nothing was acknowledged: the broker could not be reached, refused the call, or
    /// refused the first entry.
    async fn publish(&self, entries: &[FeedEntry]) -> Result<usize, PublishError>;
}

/// Why a publish acknowledged nothing. Messages never include message bodies: they hold personal data.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The broker could not be reached, or refused the whole call (throttling, permissions, a missing topic …).
    #[error("the broker call failed")]
    Broker(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The broker refused the first entry of the batch.
    #[error("the broker refused event {event_id} ({code}{})", if *.sender_fault { ", a fault of the request" } else { "" })]
    Refused {
        /// The refused event.
        event_id: Uuid,
        /// The broker's error code (e.g. `InvalidParameter`, `Throttled`).
        code: String,
        /// True when the broker blames the request rather than itself (retrying the same message is unlikely to
        /// help; the relay still retries, because skipping an event would break at-least-once).
        sender_fault: bool,
    },
    /// The broker answered without acknowledging the first entry and without saying why.
    #[error("the broker acknowledged none of the batch")]
    NotAcknowledged,
    /// An event could not be turned into a broker message.
    #[error("event {event_id} could not be turned into a broker message")]
    Encode {
        /// The event.
        event_id: Uuid,
        /// What went wrong.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An event is larger than the broker takes.
    #[error("event {event_id} is {size} bytes, more than the broker takes ({limit} bytes)")]
    TooLarge {
        /// The event.
        event_id: Uuid,
        /// Its message size.
        size: usize,
        /// The broker's limit.
        limit: usize,
    },
}
