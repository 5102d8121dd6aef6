//! Storage shapes: the columns written for a person, event, history entry, idempotency record, document or
//! audit entry, and the rows read back, with their conversions to and from `person-core` types.
//!
//! Documents are serde_json of the domain types and are the source of truth for reads; the other columns copy
//! fields out of them for constraints and lookups. A row that fails to convert is [`StoreError::Unexpected`],
//! never a panic. This module knows no SQL and no connection.

use chrono::{DateTime, SecondsFormat, Utc};
use person_core::audit::AuditEntry;
use person_core::documents::{DocumentWrite, StoredDocument};
use person_core::event::{FeedEntry, HistoryEntry, PersonEvent};
use person_core::matching::{KeySource, SearchKey};
use person_core::ports::{AuditRecord, Candidate, IdempotencyRecord, RelayLease, ReportCounts, StoreError};
pub(crate) use person_core::storage::to_i64 as to_sql_integer;
use person_core::storage::{
    StoredDataError, audit_action_name, document_from_json, document_to_json, from_json as from_document, out_of_range,
    to_json as to_document, to_u64,
};
use person_core::{Person, PersonId, PersonStatus};

/// A timestamp as stored: RFC 3339 UTC with nine fraction digits, so that text order is time order.
pub(crate) fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn parse_timestamp(text: &str, what: &'static str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text).map(|at| at.with_timezone(&Utc)).map_err(|_| out_of_range(what))
}

/// The columns of a `persons` row, built from the person they store.
pub(crate) struct PersonColumns {
    pub(crate) id: String,
    pub(crate) person_ref: i64,
    pub(crate) version_number: i64,
    pub(crate) state: &'static str,
    pub(crate) merged_into: Option<String>,
    pub(crate) document: String,
    pub(crate) created_at: String,
    pub(crate) last_modified: String,
    /// `processingRestricted` as 0 or 1.
    pub(crate) processing_restricted: i64,
    /// `tenures.len()`, for reporting counts.
    pub(crate) tenure_count: i64,
    /// `references.len()`, for reporting counts.
    pub(crate) reference_count: i64,
}

impl PersonColumns {
    pub(crate) fn new(person: &Person) -> Result<Self, StoreError> {
        let (state, merged_into) = match person.status {
            PersonStatus::Active => ("active", None),
            PersonStatus::Deleted => ("deleted", None),
            PersonStatus::Merged { into } => ("merged", Some(into.to_string())),
        };
        Ok(Self {
            id: person.id.to_string(),
            person_ref: person.person_ref.0,
            version_number: to_sql_integer(person.version_number, "person version")?,
            state,
            merged_into,
            document: to_document(person, "person")?,
            created_at: timestamp(person.created_at),
            last_modified: timestamp(person.last_modified),
            processing_restricted: i64::from(person.processing_restricted),
            tenure_count: i64::try_from(person.tenures.len()).map_err(|_| out_of_range("tenure count"))?,
            reference_count: i64::try_from(person.references.len()).map_err(|_| out_of_range("reference count"))?,
        })
    }
}

/// The columns of an `events` row.
pub(crate) struct EventColumns {
    pub(crate) id: String,
    pub(crate) person_id: String,
    pub(crate) event_type: &'static str,
    pub(crate) document: String,
}

impl EventColumns {
    pub(crate) fn new(event: &PersonEvent) -> Result<Self, StoreError> {
        Ok(Self {
            id: event.id.hyphenated().to_string(),
            person_id: event.entity_id.to_string(),
            event_type: event.event_type.as_str(),
            document: to_document(event, "event")?,
        })
    }
}

/// The columns of a `person_history` row.
pub(crate) struct HistoryColumns {
    pub(crate) person_id: String,
    pub(crate) version_number: i64,
    pub(crate) event_id: String,
    pub(crate) document: String,
}

impl HistoryColumns {
    pub(crate) fn new(entry: &HistoryEntry) -> Result<Self, StoreError> {
        Ok(Self {
            person_id: entry.person_id.to_string(),
            version_number: to_sql_integer(entry.version_number, "history version")?,
            event_id: entry.event_id.hyphenated().to_string(),
            document: to_document(entry, "history entry")?,
        })
    }
}

/// The columns of an `idempotency` row.
pub(crate) struct IdempotencyColumns {
    pub(crate) key: String,
    pub(crate) fingerprint: String,
    pub(crate) person_id: String,
    pub(crate) document: String,
    pub(crate) created_at: String,
}

impl IdempotencyColumns {
    pub(crate) fn new(record: &IdempotencyRecord) -> Result<Self, StoreError> {
        Ok(Self {
            key: record.key.clone(),
            fingerprint: record.fingerprint.clone(),
            person_id: record.person.id.to_string(),
            document: to_document(&record.person, "idempotent person")?,
            created_at: timestamp(record.created_at),
        })
    }
}

/// A person read back.
#[derive(sqlx::FromRow)]
pub(crate) struct PersonRow {
    document: String,
}

impl PersonRow {
    pub(crate) fn into_person(self) -> Result<Person, StoreError> {
        from_document(&self.document, "person")
    }
}

/// An event read back from the feed.
#[derive(sqlx::FromRow)]
pub(crate) struct EventRow {
    position: i64,
    document: String,
}

impl EventRow {
    pub(crate) fn into_entry(self) -> Result<FeedEntry, StoreError> {
        let position = u64::try_from(self.position).map_err(|_| out_of_range("event position"))?;
        Ok(FeedEntry { position, event: from_document(&self.document, "event")? })
    }
}

/// A history entry read back.
#[derive(sqlx::FromRow)]
pub(crate) struct HistoryRow {
    document: String,
}

impl HistoryRow {
    pub(crate) fn into_entry(self) -> Result<HistoryEntry, StoreError> {
        from_document(&self.document, "history entry")
    }
}

/// An idempotency record read back.
#[derive(sqlx::FromRow)]
pub(crate) struct IdempotencyRow {
    key: String,
    fingerprint: String,
    document: String,
    created_at: String,
}

impl IdempotencyRow {
    pub(crate) fn into_record(self) -> Result<IdempotencyRecord, StoreError> {
        Ok(IdempotencyRecord {
            person: from_document(&self.document, "idempotent person")?,
            created_at: parse_timestamp(&self.created_at, "idempotency timestamp")?,
            key: self.key,
            fingerprint: self.fingerprint,
        })
    }
}

/// A JSON array of person ids, bound as one parameter and expanded by SQLite's `json_each`.
pub(crate) fn id_list(ids: &[PersonId]) -> Result<String, StoreError> {
    to_document(&ids, "person id list")
}

/// A JSON array of search keys, bound as one parameter and expanded by `json_each`.
pub(crate) fn key_list(keys: &[SearchKey]) -> Result<String, StoreError> {
    to_document(&keys, "search key list")
}

/// The `source` column of a `search_keys` row.
pub(crate) fn source_text(source: KeySource) -> &'static str {
    match source {
        KeySource::Person => "person",
        KeySource::Equality => "equality",
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

/// A person id read back from an `id` column.
#[derive(sqlx::FromRow)]
pub(crate) struct PersonIdRow {
    id: String,
}

impl PersonIdRow {
    pub(crate) fn into_id(self) -> Result<PersonId, StoreError> {
        PersonId::parse(&self.id).map_err(|_| out_of_range("person id"))
    }
}

/// The columns of a `documents` row.
pub(crate) struct DocumentColumns {
    pub(crate) version: i64,
    pub(crate) document: String,
    pub(crate) updated_at: String,
}

impl DocumentColumns {
    /// The row storing `document` (its person and kind are the row's key, bound separately).
    pub(crate) fn new(document: &StoredDocument) -> Result<Self, StoreError> {
        Ok(Self {
            version: to_sql_integer(document.version, "document version")?,
            document: document_to_json(document)?,
            updated_at: timestamp(document.updated_at),
        })
    }
}

/// Everything a document write binds: the row's key, the version it expects and the row it leaves (`None`:
/// delete), and the equality keys it replaces (`None`: keys untouched).
pub(crate) struct DocumentWriteColumns {
    pub(crate) person_id: String,
    pub(crate) kind: String,
    pub(crate) expected_version: Option<i64>,
    pub(crate) new: Option<DocumentColumns>,
    pub(crate) equality_keys: Option<Vec<SearchKey>>,
}

impl DocumentWriteColumns {
    /// Refuses a write whose new document belongs to another person or kind than the row it is written to (a bug
    /// in the caller: storing it would file one person's data under another).
    pub(crate) fn new(write: &DocumentWrite) -> Result<Self, StoreError> {
        let kind = write.kind.key();
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
            person_id: write.person_id.to_string(),
            expected_version: write
                .expected_version
                .map(|v| to_sql_integer(v, "expected document version"))
                .transpose()?,
            kind,
            new,
            equality_keys: write.search_keys.clone(),
        })
    }
}

/// A `documents` row read back.
#[derive(sqlx::FromRow)]
pub(crate) struct DocumentRow {
    person_id: String,
    kind: String,
    version: i64,
    document: String,
}

impl DocumentRow {
    pub(crate) fn into_document(self) -> Result<StoredDocument, StoreError> {
        let document = document_from_json(&self.document)?;
        let columns_agree = document.kind.key() == self.kind
            && document.person_id.to_string() == self.person_id
            && i64::try_from(document.version).is_ok_and(|v| v == self.version);
        if columns_agree { Ok(document) } else { Err(StoredDataError::Inconsistent { table: "documents" }.into()) }
    }
}

/// The columns of an `audit_log` row, and the ids of the persons it names for `audit_persons`.
pub(crate) struct AuditColumns {
    pub(crate) id: String,
    pub(crate) at: String,
    pub(crate) action: String,
    pub(crate) document: String,
    /// A JSON array of the person ids (expanded by `json_each`).
    pub(crate) person_ids: String,
}

impl AuditColumns {
    pub(crate) fn new(entry: &AuditEntry) -> Result<Self, StoreError> {
        Ok(Self {
            id: entry.id.hyphenated().to_string(),
            at: timestamp(entry.at),
            action: audit_action_name(entry.action)?,
            document: to_document(entry, "audit entry")?,
            person_ids: id_list(&entry.person_ids)?,
        })
    }
}

/// An audit entry read back with its position.
#[derive(sqlx::FromRow)]
pub(crate) struct AuditRow {
    position: i64,
    document: String,
}

impl AuditRow {
    pub(crate) fn into_record(self) -> Result<AuditRecord, StoreError> {
        let position = u64::try_from(self.position).map_err(|_| out_of_range("audit position"))?;
        Ok(AuditRecord { position, entry: from_document(&self.document, "audit entry")? })
    }
}

/// The reporting counts read back (sums over the columns every person write keeps).
#[derive(sqlx::FromRow)]
pub(crate) struct ReportCountsRow {
    persons: i64,
    withheld: i64,
    tenures: i64,
    reference_total: i64,
}

impl ReportCountsRow {
    pub(crate) fn into_counts(self) -> Result<ReportCounts, StoreError> {
        Ok(ReportCounts {
            persons: to_u64(self.persons, "person count")?,
            withheld: to_u64(self.withheld, "withheld count")?,
            tenures: to_u64(self.tenures, "tenure count")?,
            references: to_u64(self.reference_total, "reference count")?,
        })
    }
}

/// A `relay_leases` row read back (or returned by the acquiring upsert).
#[derive(sqlx::FromRow)]
pub(crate) struct RelayRow {
    holder: String,
    position: i64,
    expires_at: String,
}

impl RelayRow {
    pub(crate) fn into_lease(self) -> Result<RelayLease, StoreError> {
        Ok(RelayLease {
            holder: self.holder,
            position: to_u64(self.position, "relay position")?,
            expires_at: parse_timestamp(&self.expires_at, "relay lease expiry")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn timestamps_keep_every_digit_and_sort_as_text() {
        let whole = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        let later = whole + chrono::Duration::nanoseconds(500);
        assert_eq!(timestamp(whole), "2026-01-02T03:04:05.000000000Z");
        assert!(timestamp(whole) < timestamp(later));
        assert_eq!(parse_timestamp(&timestamp(later), "t").unwrap(), later);
    }

    #[test]
    fn a_negative_position_is_out_of_range_not_a_panic() {
        let row = EventRow { position: -1, document: "{}".to_owned() };
        assert!(matches!(row.into_entry(), Err(StoreError::Unexpected(_))));
    }

    fn stored_row(kind: &str, body: serde_json::Value) -> DocumentRow {
        let person = person_core::testkit::fixtures::person_id();
        let document = serde_json::json!({
            "personId": person, "kind": kind, "version": 3, "body": body,
            "updatedAt": "2026-01-02T03:04:05Z", "updatedBy": { "subject": "s" },
        });
        DocumentRow { person_id: person.to_string(), kind: kind.to_owned(), version: 3, document: document.to_string() }
    }

    #[test]
    fn a_document_disagreeing_with_its_columns_or_kind_is_unexpected() {
        let mut row = stored_row("equality", serde_json::json!({}));
        row.version = 4;
        assert!(matches!(row.into_document(), Err(StoreError::Unexpected(_))));
        let not_equality = stored_row("equality", serde_json::json!({ "secret": "Zoë" }));
        assert!(matches!(not_equality.into_document(), Err(StoreError::Unexpected(_))));
        let not_an_object = stored_row("extended:social-care", serde_json::json!([1]));
        assert!(matches!(not_an_object.into_document(), Err(StoreError::Unexpected(_))));
    }
}
