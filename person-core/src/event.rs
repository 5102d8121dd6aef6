//! Events (the Hackney `EntityEventSns` envelope), history entries and the actor who caused them.
//!
//! The service builds these; stores persist them in the same atomic write as the change they describe (outbox),
//! and hand them back in commit order through the feed. Nothing here knows how they are stored or published.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::person::PersonId;

/// `sourceDomain` of every event.
pub const SOURCE_DOMAIN: &str = "Person";
/// `sourceSystem` of every event.
pub const SOURCE_SYSTEM: &str = "PersonAPI";

/// What happened to a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum EventType {
    /// A person was created.
    PersonCreatedEvent,
    /// A person's fields changed.
    PersonUpdatedEvent,
    /// A person was soft-deleted.
    PersonDeletedEvent,
    /// A duplicate was merged into a survivor.
    PersonMergedEvent,
}

impl EventType {
    /// The wire name, e.g. `PersonCreatedEvent`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PersonCreatedEvent => "PersonCreatedEvent",
            Self::PersonUpdatedEvent => "PersonUpdatedEvent",
            Self::PersonDeletedEvent => "PersonDeletedEvent",
            Self::PersonMergedEvent => "PersonMergedEvent",
        }
    }
}

/// The envelope version: `v1` from `/api/v1/persons`, `v2` from `/api/v2/persons` (Hackney listeners branch on
/// it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum EventVersion {
    /// `"v1"`.
    #[default]
    V1,
    /// `"v2"`.
    V2,
}

/// Who made a request: from the token, or the local developer in development mode.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Actor {
    /// Stable subject (token `sub`, or the consumer name of a service token).
    pub subject: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// E-mail address.
    #[serde(default)]
    pub email: String,
}

impl Actor {
    /// The actor of development mode (authentication off, loopback only).
    #[must_use]
    pub fn local_developer() -> Self {
        Self {
            subject: "local-developer".to_owned(),
            name: "Local Developer".to_owned(),
            email: "developer@localhost".to_owned(),
        }
    }
}

impl fmt::Debug for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Staff names and e-mail addresses are personal data too.
        f.debug_struct("Actor").field("subject", &self.subject).finish_non_exhaustive()
    }
}

/// `user` in the envelope.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventUser {
    /// Display name of the actor.
    pub name: String,
    /// E-mail of the actor.
    pub email: String,
}

impl fmt::Debug for EventUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EventUser(<redacted>)")
    }
}

/// `eventData`: for a create the whole person in `newData`; for an update only the changed keys.
#[derive(Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventData {
    /// Values before the change (changed keys only), or an empty object.
    pub old_data: serde_json::Value,
    /// Values after the change (changed keys only, or the whole person on create).
    pub new_data: serde_json::Value,
}

/// One event in the Hackney `EntityEventSns` envelope.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PersonEvent {
    /// Unique event id (consumers de-duplicate on it).
    pub id: Uuid,
    /// What happened.
    pub event_type: EventType,
    /// Always `Person`.
    pub source_domain: String,
    /// Always `PersonAPI`.
    pub source_system: String,
    /// `v1` or `v2`.
    pub version: EventVersion,
    /// The `x-correlation-id` of the request that caused it.
    pub correlation_id: String,
    /// When it happened.
    pub date_time: DateTime<Utc>,
    /// Who caused it.
    pub user: EventUser,
    /// The person it is about (the survivor, for a merge).
    pub entity_id: PersonId,
    /// Old and new values.
    pub event_data: EventData,
}

impl fmt::Debug for PersonEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PersonEvent")
            .field("id", &self.id)
            .field("event_type", &self.event_type)
            .field("entity_id", &self.entity_id)
            .finish_non_exhaustive()
    }
}

/// An event with its position in the feed (commit order, strictly increasing, starting at 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FeedEntry {
    /// Position in the feed; pass it as `after` to read on.
    pub position: u64,
    /// The event.
    pub event: PersonEvent,
}

/// One version of a person: who changed what, when and why.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistoryEntry {
    /// The person the entry belongs to.
    pub person_id: PersonId,
    /// The version this change produced.
    pub version_number: u64,
    /// What happened.
    pub event_type: EventType,
    /// Who did it.
    pub actor: Actor,
    /// When.
    pub at: DateTime<Utc>,
    /// Why (the creation reason, or the reason given with the change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Correlation id of the request.
    pub correlation_id: String,
    /// Values before (changed keys only).
    pub old_data: serde_json::Value,
    /// Values after (changed keys only; the whole person on create).
    pub new_data: serde_json::Value,
    /// The event published for this change.
    pub event_id: Uuid,
}

impl fmt::Debug for HistoryEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HistoryEntry")
            .field("person_id", &self.person_id)
            .field("version_number", &self.version_number)
            .field("event_type", &self.event_type)
            .finish_non_exhaustive()
    }
}
