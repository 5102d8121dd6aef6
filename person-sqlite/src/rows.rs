//! Storage shapes: the columns written for a person, event, history entry or idempotency record, and the rows
//! read back, with their conversions to and from `person-core` types.
//!
//! Documents are serde_json of the domain types and are the source of truth for reads; the other columns copy
//! fields out of them for constraints and lookups. A row that fails to convert is [`StoreError::Unexpected`],
//! never a panic. This module knows no SQL and no connection.

use chrono::{DateTime, SecondsFormat, Utc};
use person_core::event::{FeedEntry, HistoryEntry, PersonEvent};
use person_core::ports::{IdempotencyRecord, StoreError};
use person_core::{Person, PersonStatus};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{corrupt, out_of_range, unserialisable};

/// A timestamp as stored: RFC 3339 UTC with nine fraction digits, so that text order is time order.
pub(crate) fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn parse_timestamp(text: &str, what: &'static str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text).map(|at| at.with_timezone(&Utc)).map_err(|_| out_of_range(what))
}

/// A domain count (`versionNumber`) as an SQLite integer.
pub(crate) fn to_sql_integer(value: u64, what: &'static str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| out_of_range(what))
}

fn to_document<T: Serialize>(value: &T, what: &'static str) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| unserialisable(what, &e))
}

fn from_document<T: DeserializeOwned>(text: &str, what: &'static str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| corrupt(what, &e))
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
}
