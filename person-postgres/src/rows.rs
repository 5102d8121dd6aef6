//! Storage shapes: the columns written for a person, event, history entry, idempotency record, document or audit
//! entry, and the rows read back (reporting counts and relay leases too), with their conversions to and from
//! `person-core` types.
//!
//! Documents are serde_json of the domain types (stored as jsonb, read back as text and parsed here) and are the
//! source of truth for reads; the other columns copy fields out of them for constraints and look-ups. A row that
//! fails to convert is [`StoreError::Unexpected`], never a panic. This module knows no SQL and no connection.

use chrono::{DateTime, Utc};
use person_core::audit::AuditEntry;
use person_core::documents::{DocumentWrite, StoredDocument};
use person_core::event::{FeedEntry, HistoryEntry};
use person_core::matching::{KeySource, SearchKey};
use person_core::ports::{AuditRecord, Candidate, IdempotencyRecord, RelayLease, ReportCounts, StoreError};
use person_core::storage::{
    StoredDataError, audit_action_name, document_from_json, document_to_json, from_json as from_document, out_of_range,
};
pub(crate) use person_core::storage::{to_i64 as to_bigint, to_json as to_document, to_u64 as from_bigint};
use person_core::{Person, PersonId, PersonStatus};
use uuid::Uuid;

/// A person id read back from a `uuid` column.
pub(crate) fn person_id(id: Uuid) -> Result<PersonId, StoreError> {
    PersonId::new(id).ok_or_else(|| out_of_range("person id"))
}

/// The ids of `ids`, bound as one `uuid[]` parameter.
pub(crate) fn uuids(ids: &[PersonId]) -> Vec<Uuid> {
    ids.iter().map(PersonId::as_uuid).collect()
}

/// The texts of `keys`, bound as one `text[]` parameter.
pub(crate) fn key_texts(keys: &[SearchKey]) -> Vec<String> {
    keys.iter().map(|k| k.as_str().to_owned()).collect()
}

/// The `source` column of a `search_keys` row.
pub(crate) fn source_text(source: KeySource) -> &'static str {
    match source {
        KeySource::Person => "person",
        KeySource::Equality => "equality",
    }
}

/// The columns of a `persons` row, built from the person they store.
pub(crate) struct PersonColumns {
    pub(crate) id: Uuid,
    pub(crate) person_ref: i64,
    pub(crate) version_number: i64,
    pub(crate) state: &'static str,
    pub(crate) merged_into: Option<Uuid>,
    pub(crate) document: String,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) last_modified: DateTime<Utc>,
    pub(crate) processing_restricted: bool,
    /// How many tenures the document holds (for reporting counts).
    pub(crate) tenure_count: i32,
    /// How many cross-references the document holds (for reporting counts).
    pub(crate) reference_count: i32,
}

impl PersonColumns {
    pub(crate) fn new(person: &Person) -> Result<Self, StoreError> {
        let (state, merged_into) = match person.status {
            PersonStatus::Active => ("active", None),
            PersonStatus::Deleted => ("deleted", None),
            PersonStatus::Merged { into } => ("merged", Some(into.as_uuid())),
        };
        Ok(Self {
            id: person.id.as_uuid(),
            person_ref: person.person_ref.0,
            version_number: to_bigint(person.version_number, "person version")?,
            state,
            merged_into,
            document: to_document(person, "person")?,
            created_at: person.created_at,
            last_modified: person.last_modified,
            processing_restricted: person.processing_restricted,
            tenure_count: i32::try_from(person.tenures.len()).map_err(|_| out_of_range("tenure count"))?,
            reference_count: i32::try_from(person.references.len()).map_err(|_| out_of_range("reference count"))?,
        })
    }
}

/// A row holding one JSON document read back as text (persons, history entries).
#[derive(sqlx::FromRow)]
pub(crate) struct DocumentText {
    document: String,
}

impl DocumentText {
    pub(crate) fn into_person(self) -> Result<Person, StoreError> {
        from_document(&self.document, "person")
    }

    pub(crate) fn into_history(self) -> Result<HistoryEntry, StoreError> {
        from_document(&self.document, "history entry")
    }
}

/// A document with its position (the feed, the audit log).
#[derive(sqlx::FromRow)]
pub(crate) struct PositionedRow {
    position: i64,
    document: String,
}

impl PositionedRow {
    pub(crate) fn into_feed_entry(self) -> Result<FeedEntry, StoreError> {
        Ok(FeedEntry {
            position: from_bigint(self.position, "event position")?,
            event: from_document(&self.document, "event")?,
        })
    }

    pub(crate) fn into_audit_record(self) -> Result<AuditRecord, StoreError> {
        Ok(AuditRecord {
            position: from_bigint(self.position, "audit position")?,
            entry: from_document(&self.document, "audit entry")?,
        })
    }
}

/// The reporting counts read back (sums of `integer` columns are `bigint`).
#[derive(sqlx::FromRow)]
pub(crate) struct ReportCountsRow {
    persons: i64,
    withheld: i64,
    tenures: i64,
    references: i64,
}

impl ReportCountsRow {
    pub(crate) fn into_counts(self) -> Result<ReportCounts, StoreError> {
        Ok(ReportCounts {
            persons: from_bigint(self.persons, "person count")?,
            withheld: from_bigint(self.withheld, "withheld count")?,
            tenures: from_bigint(self.tenures, "tenure count")?,
            references: from_bigint(self.references, "reference count")?,
        })
    }
}

/// A `relays` row read back.
#[derive(sqlx::FromRow)]
pub(crate) struct RelayRow {
    holder: String,
    position: i64,
    expires_at: DateTime<Utc>,
}

impl RelayRow {
    pub(crate) fn into_lease(self) -> Result<RelayLease, StoreError> {
        Ok(RelayLease {
            holder: self.holder,
            position: from_bigint(self.position, "relay position")?,
            expires_at: self.expires_at,
        })
    }
}

/// An idempotency record read back.
#[derive(sqlx::FromRow)]
pub(crate) struct IdempotencyRow {
    key: String,
    fingerprint: String,
    document: String,
    created_at: DateTime<Utc>,
}

impl IdempotencyRow {
    pub(crate) fn into_record(self) -> Result<IdempotencyRecord, StoreError> {
        Ok(IdempotencyRecord {
            person: from_document(&self.document, "idempotent person")?,
            created_at: self.created_at,
            key: self.key,
            fingerprint: self.fingerprint,
        })
    }
}

/// A candidate read back: the person, the number of keys it matched and its NI number.
#[derive(sqlx::FromRow)]
pub(crate) struct CandidateRow {
    document: String,
    matched: i64,
    nino: Option<String>,
}

impl CandidateRow {
    pub(crate) fn into_candidate(self) -> Result<Candidate, StoreError> {
        Ok(Candidate {
            person: from_document(&self.document, "person")?,
            nino: self.nino,
            matched_keys: u32::try_from(self.matched).map_err(|_| out_of_range("matched key count"))?,
        })
    }
}

/// The columns of a `documents` row (its person and kind are the row's key, bound separately).
pub(crate) struct DocumentColumns {
    pub(crate) version: i64,
    pub(crate) document: String,
    pub(crate) updated_at: DateTime<Utc>,
}

impl DocumentColumns {
    pub(crate) fn new(document: &StoredDocument) -> Result<Self, StoreError> {
        Ok(Self {
            version: to_bigint(document.version, "document version")?,
            document: document_to_json(document)?,
            updated_at: document.updated_at,
        })
    }
}

/// Everything a document write binds: the row's key, the version it expects and the row it leaves (`None`:
/// delete), and the equality keys it replaces (`None`: keys untouched).
pub(crate) struct DocumentWriteColumns {
    pub(crate) person_id: Uuid,
    pub(crate) kind: String,
    pub(crate) expected_version: Option<i64>,
    pub(crate) new: Option<DocumentColumns>,
    pub(crate) equality_keys: Option<Vec<SearchKey>>,
}

impl DocumentWriteColumns {
    /// Refuses a write whose new document belongs to another person or kind than the row it is written to (a bug
    /// in the caller: storing it would file one person's data under another).
    pub(crate) fn new(write: &DocumentWrite) -> Result<Self, StoreError> {
        let new = match &write.new {
            None => None,
            Some(document) => {
                if document.person_id != write.person_id || document.kind != write.kind {
                    return Err(StoredDataError::MismatchedDocumentWrite.into());
                }
                Some(DocumentColumns::new(document)?)
            }
        };
        Ok(Self {
            person_id: write.person_id.as_uuid(),
            kind: write.kind.key(),
            expected_version: write.expected_version.map(|v| to_bigint(v, "expected document version")).transpose()?,
            new,
            equality_keys: write.search_keys.clone(),
        })
    }
}

/// A `documents` row read back.
#[derive(sqlx::FromRow)]
pub(crate) struct DocumentRow {
    person_id: Uuid,
    kind: String,
    version: i64,
    document: String,
}

impl DocumentRow {
    pub(crate) fn into_document(self) -> Result<StoredDocument, StoreError> {
        let document = document_from_json(&self.document)?;
        let columns_agree = document.kind.key() == self.kind
            && document.person_id.as_uuid() == self.person_id
            && i64::try_from(document.version).is_ok_and(|v| v == self.version);
        if columns_agree { Ok(document) } else { Err(StoredDataError::Inconsistent { table: "documents" }.into()) }
    }
}

/// The columns of an `audit_log` row, and the ids of the persons it names for `audit_persons`.
pub(crate) struct AuditColumns {
    pub(crate) id: Uuid,
    pub(crate) at: DateTime<Utc>,
    pub(crate) action: String,
    pub(crate) document: String,
    pub(crate) person_ids: Vec<Uuid>,
}

impl AuditColumns {
    pub(crate) fn new(entry: &AuditEntry) -> Result<Self, StoreError> {
        Ok(Self {
            id: entry.id,
            at: entry.at,
            action: audit_action_name(entry.action)?,
            document: to_document(entry, "audit entry")?,
            person_ids: uuids(&entry.person_ids),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored_row(kind: &str, body: serde_json::Value) -> DocumentRow {
        let person = person_core::testkit::fixtures::person_id();
        let document = serde_json::json!({
            "personId": person, "kind": kind, "version": 3, "body": body,
            "updatedAt": "2026-01-02T03:04:05Z", "updatedBy": { "subject": "s" },
        });
        DocumentRow { person_id: person.as_uuid(), kind: kind.to_owned(), version: 3, document: document.to_string() }
    }

    #[test]
    fn a_document_disagreeing_with_its_columns_is_unexpected() {
        assert!(stored_row("equality", serde_json::json!({})).into_document().is_ok());
        let mut row = stored_row("equality", serde_json::json!({}));
        row.version = 4;
        assert!(matches!(row.into_document(), Err(StoreError::Unexpected(_))));
        let mut row = stored_row("equality", serde_json::json!({}));
        row.kind = "extended:social-care".to_owned();
        assert!(matches!(row.into_document(), Err(StoreError::Unexpected(_))));
    }

    #[test]
    fn a_negative_position_is_out_of_range_not_a_panic() {
        let row = PositionedRow { position: -1, document: "{}".to_owned() };
        assert!(matches!(row.into_feed_entry(), Err(StoreError::Unexpected(_))));
    }
}
