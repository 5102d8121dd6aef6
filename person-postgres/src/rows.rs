//! Storage shapes: the columns written for a person, event, history entry, idempotency record, document or audit
//! entry, and the rows read back, with their conversions to and from `person-core` types.
//!
//! Documents are serde_json of the domain types (stored as jsonb, read back as text and parsed here) and are the
//! source of truth for reads; the other columns copy fields out of them for constraints and look-ups. A row that
//! fails to convert is [`StoreError::Unexpected`], never a panic. This module knows no SQL and no connection.

use chrono::{DateTime, Utc};
use person_core::audit::AuditEntry;
use person_core::documents::{DocumentBody, DocumentKind, DocumentWrite, StoredDocument};
use person_core::event::{Actor, FeedEntry, HistoryEntry};
use person_core::matching::{KeySource, SearchKey};
use person_core::ports::{AuditRecord, Candidate, IdempotencyRecord, StoreError};
use person_core::{Person, PersonId, PersonStatus};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{PostgresStoreError, corrupt, out_of_range, unserialisable};

/// A domain count (`versionNumber`) as a PostgreSQL bigint.
pub(crate) fn to_bigint(value: u64, what: &'static str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| out_of_range(what))
}

/// A bigint read back as a domain count.
pub(crate) fn from_bigint(value: i64, what: &'static str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| out_of_range(what))
}

/// A value as the JSON text bound to a `$n::jsonb` parameter.
pub(crate) fn to_document<T: Serialize + ?Sized>(value: &T, what: &'static str) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| unserialisable(what, &e))
}

fn from_document<T: DeserializeOwned>(text: &str, what: &'static str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| corrupt(what, &e))
}

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

/// The `document` column of a `documents` row: the [`StoredDocument`] with its kind as the storage key.
///
/// [`DocumentBody`] is untagged (its JSON is just the body), and an equality body with every answer omitted is
/// `{}`, indistinguishable from an empty extended object; so the body is rebuilt by `kind`, never guessed.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DocumentOut<'a> {
    person_id: PersonId,
    kind: &'a str,
    version: u64,
    body: &'a DocumentBody,
    updated_at: DateTime<Utc>,
    updated_by: &'a Actor,
}

/// [`DocumentOut`] read back, the body still untyped until the kind is known.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DocumentIn {
    person_id: PersonId,
    kind: String,
    version: u64,
    body: serde_json::Value,
    updated_at: DateTime<Utc>,
    updated_by: Actor,
}

/// The columns of a `documents` row (its person and kind are the row's key, bound separately).
pub(crate) struct DocumentColumns {
    pub(crate) version: i64,
    pub(crate) document: String,
    pub(crate) updated_at: DateTime<Utc>,
}

impl DocumentColumns {
    pub(crate) fn new(document: &StoredDocument) -> Result<Self, StoreError> {
        let kind = document.kind.key();
        let out = DocumentOut {
            person_id: document.person_id,
            kind: &kind,
            version: document.version,
            body: &document.body,
            updated_at: document.updated_at,
            updated_by: &document.updated_by,
        };
        Ok(Self {
            version: to_bigint(document.version, "document version")?,
            document: to_document(&out, "document")?,
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
                    return Err(PostgresStoreError::MismatchedDocumentWrite.into());
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
        let stored: DocumentIn = from_document(&self.document, "document")?;
        let columns_agree = stored.kind == self.kind
            && stored.person_id.as_uuid() == self.person_id
            && i64::try_from(stored.version).is_ok_and(|v| v == self.version);
        if !columns_agree {
            return Err(PostgresStoreError::InconsistentRow { table: "documents" }.into());
        }
        let kind = DocumentKind::from_key(&stored.kind).ok_or_else(|| out_of_range("document kind"))?;
        let body = DocumentBody::from_json(&kind, stored.body).map_err(|_| out_of_range("document body"))?;
        Ok(StoredDocument {
            person_id: stored.person_id,
            kind,
            version: stored.version,
            body,
            updated_at: stored.updated_at,
            updated_by: stored.updated_by,
        })
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
        // The action's wire name (`person-read` …), the same text the document holds.
        let action = match serde_json::to_value(entry.action) {
            Ok(serde_json::Value::String(action)) => action,
            Ok(_) => return Err(out_of_range("audit action")),
            Err(e) => return Err(unserialisable("audit action", &e)),
        };
        Ok(Self {
            id: entry.id,
            at: entry.at,
            action,
            document: to_document(entry, "audit entry")?,
            person_ids: uuids(&entry.person_ids),
        })
    }
}

#[cfg(test)]
mod tests {
    use person_core::equality::EqualityData;

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
    fn an_empty_body_is_rebuilt_by_its_kind() {
        let equality = stored_row("equality", serde_json::json!({})).into_document().unwrap();
        assert_eq!(equality.body, DocumentBody::Equality(EqualityData::default()));
        let extended = stored_row("extended:social-care", serde_json::json!({})).into_document().unwrap();
        assert_eq!(extended.body, DocumentBody::Extended(serde_json::Map::new()));
    }

    #[test]
    fn a_document_disagreeing_with_its_columns_or_kind_is_unexpected() {
        let mut row = stored_row("equality", serde_json::json!({}));
        row.version = 4;
        assert!(matches!(row.into_document(), Err(StoreError::Unexpected(_))));
        let not_equality = stored_row("equality", serde_json::json!({ "secret": "Zoë" }));
        assert!(matches!(not_equality.into_document(), Err(StoreError::Unexpected(_))));
    }

    #[test]
    fn a_negative_position_is_out_of_range_not_a_panic() {
        let row = PositionedRow { position: -1, document: "{}".to_owned() };
        assert!(matches!(row.into_feed_entry(), Err(StoreError::Unexpected(_))));
    }
}
