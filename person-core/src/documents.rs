//! Versioned documents attached to a person: equality data and per-service-area extended data.
//!
//! Each has its own version (ETag), independent of the person's, so that a housing officer editing a person and
//! a social worker editing social-care data never conflict with each other.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::access::ServiceArea;
use crate::audit::AuditEntry;
use crate::equality::EqualityData;
use crate::event::Actor;
use crate::matching::SearchKey;
use crate::person::PersonId;

/// Largest extended-data document, in bytes of compact JSON.
pub const MAX_EXTENDED_BYTES: usize = 64 * 1024;

/// Which document of a person.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DocumentKind {
    /// The equality data.
    Equality,
    /// One service area's extended data.
    Extended(ServiceArea),
}

impl DocumentKind {
    /// A stable key for storage: `equality` or `extended:<area>`.
    #[must_use]
    pub fn key(&self) -> String {
        match self {
            Self::Equality => "equality".to_owned(),
            Self::Extended(area) => format!("extended:{area}"),
        }
    }

    /// The kind named by a storage key (the inverse of [`Self::key`]).
    #[must_use]
    pub fn from_key(key: &str) -> Option<Self> {
        if key == "equality" {
            return Some(Self::Equality);
        }
        key.strip_prefix("extended:").and_then(|area| ServiceArea::parse(area).ok()).map(Self::Extended)
    }
}

/// The body of a document. Its JSON is the bare body, so reading one back needs its kind: use
/// [`DocumentBody::from_json`] (there is deliberately no `Deserialize`: `{}` would be ambiguous).
#[derive(Clone, PartialEq, Serialize)]
#[serde(untagged)]
#[expect(
    clippy::large_enum_variant,
    reason = "one document at a time, never in bulk collections; boxing would only complicate construction"
)]
pub enum DocumentBody {
    /// Equality data.
    Equality(EqualityData),
    /// An arbitrary JSON object.
    Extended(serde_json::Map<String, serde_json::Value>),
}

/// Stored JSON that is not a valid body for its kind.
#[derive(Debug, thiserror::Error)]
#[error("stored {kind} document body does not match its kind")]
pub struct InvalidDocumentBody {
    /// The kind key.
    pub kind: String,
}

impl DocumentBody {
    /// Rebuilds a body of `kind` from its stored JSON; every store decodes documents through this.
    ///
    /// # Errors
    /// [`InvalidDocumentBody`] when the JSON is not equality data (for `equality`) or not an object
    /// (for extended data).
    pub fn from_json(kind: &DocumentKind, value: serde_json::Value) -> Result<Self, InvalidDocumentBody> {
        let invalid = || InvalidDocumentBody { kind: kind.key() };
        match kind {
            DocumentKind::Equality => serde_json::from_value(value).map(Self::Equality).map_err(|_| invalid()),
            DocumentKind::Extended(_) => match value {
                serde_json::Value::Object(object) => Ok(Self::Extended(object)),
                _ => Err(invalid()),
            },
        }
    }
}

impl fmt::Debug for DocumentBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DocumentBody(<redacted>)")
    }
}

/// A stored document with its version and provenance.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDocument {
    /// The person it belongs to.
    pub person_id: PersonId,
    /// Which document.
    pub kind: DocumentKind,
    /// 0 after the first write, +1 per write.
    pub version: u64,
    /// The content.
    pub body: DocumentBody,
    /// Last write time.
    pub updated_at: DateTime<Utc>,
    /// Last writer.
    pub updated_by: Actor,
}

/// A write (put or delete) of a document, with its audit entry, applied atomically.
///
/// Built by the service, which guarantees that `new` (when present) names the same person and kind as the
/// write, and has version `expected_version + 1` (or 0 when `expected_version` is `None`).
#[derive(Debug, Clone)]
pub struct DocumentWrite {
    /// The person.
    pub person_id: PersonId,
    /// Which document.
    pub kind: DocumentKind,
    /// `None`: the document must not exist yet (first write); `Some(v)`: the stored version must be `v`.
    pub expected_version: Option<u64>,
    /// The new content and version, or `None` to delete the document.
    pub new: Option<StoredDocument>,
    /// The audit entry recorded with the write.
    pub audit: AuditEntry,
    /// For equality data: the person's `KeySource::Equality` search keys after the write (the NI number; empty
    /// when it is removed or the document deleted), which replace the stored ones in the same atomic write.
    /// `None` (extended data) leaves the keys alone.
    pub search_keys: Option<Vec<SearchKey>>,
}
