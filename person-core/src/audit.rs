//! The audit trail (SPEC §7): who read, changed or exported what, when, why and with what outcome.
//!
//! Entries are append-only. Changes write their entry in the same atomic write as the change; reads, searches
//! and exports append theirs after the fact. Entries hold identifiers, never personal data values.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::event::Actor;
use crate::person::PersonId;

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum AuditAction {
    /// A person was read.
    PersonRead,
    /// A person was created.
    PersonCreate,
    /// A person was changed.
    PersonUpdate,
    /// A person was soft-deleted.
    PersonDelete,
    /// A duplicate was merged into a survivor (the entry names both).
    PersonMerge,
    /// A person's processing restriction was set or lifted.
    PersonRestrict,
    /// A person's history was read.
    HistoryRead,
    /// Equality data was read.
    EqualityRead,
    /// Equality data was written.
    EqualityWrite,
    /// An extended-data document was read.
    ExtendedRead,
    /// An extended-data document was written.
    ExtendedWrite,
    /// An extended-data document was deleted.
    ExtendedDelete,
    /// The event feed was read (an export of changes).
    EventsRead,
    /// Persons were searched.
    Search,
    /// Data was exported (reporting).
    Export,
    /// A person's access log was read.
    AccessLogRead,
    /// A subject-access export of a person was produced.
    SubjectAccess,
    /// Support data about the service itself (the query catalogue) was read; never names a person.
    SupportRead,
    /// Persons were loaded by `person-api import` (one entry per batch, naming the persons stored).
    PersonImport,
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum AuditOutcome {
    /// Done.
    Success,
    /// Refused: the caller lacked the permission.
    Denied,
    /// Nothing to act on (unknown, deleted or merged person, no document).
    NotFound,
}

/// One audit record.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    /// Unique id.
    pub id: Uuid,
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub actor: Actor,
    /// What.
    pub action: AuditAction,
    /// The persons concerned (empty for a search with no result).
    pub person_ids: Vec<PersonId>,
    /// Extra identifiers of what was touched (the extended-data area, a result count …); never personal data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The purpose the caller declared in `x-purpose`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// The request's correlation id.
    pub correlation_id: String,
    /// How it ended.
    pub outcome: AuditOutcome,
}

impl fmt::Debug for AuditEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The purpose is free text from the caller (`x-purpose`) and may well name the person concerned.
        f.debug_struct("AuditEntry")
            .field("id", &self.id)
            .field("at", &self.at)
            .field("actor", &self.actor)
            .field("action", &self.action)
            .field("person_ids", &self.person_ids)
            .field("detail", &self.detail)
            .field("purpose", &self.purpose.as_ref().map(|_| "<redacted>"))
            .field("correlation_id", &self.correlation_id)
            .field("outcome", &self.outcome)
            .finish()
    }
}
