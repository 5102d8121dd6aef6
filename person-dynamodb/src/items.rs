//! Item shapes of the single table: the keys of every item type and the conversions between `person-core` types
//! and DynamoDB items (`docs/storage.md#dynamodb` describes them).
//!
//! Documents are serde_json of the domain types, stored in the `doc` attribute, and are the source of truth for
//! reads; the other attributes copy fields out of them for conditions and look-ups. An item that fails to convert
//! is [`StoreError::Unexpected`], never a panic. This module knows no SDK call and no connection.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use person_core::audit::AuditEntry;
use person_core::documents::{DocumentBody, DocumentKind, StoredDocument};
use person_core::event::{FeedEntry, HistoryEntry, PersonEvent};
use person_core::matching::{KeySource, SearchKey};
use person_core::ports::{AuditRecord, IdempotencyRecord, RelayLease, StoreError};
use person_core::reference::CrossReference;
use person_core::storage;
use person_core::{Person, PersonId, PersonRef, PersonStatus};

use crate::error::{DynamoStoreError, malformed};

/// A DynamoDB item (or key).
pub(crate) type Item = HashMap<String, AttributeValue>;

/// The partition key attribute.
pub(crate) const PK: &str = "PK";
/// The sort key attribute.
pub(crate) const SK: &str = "SK";
/// The JSON document of an item.
pub(crate) const DOC: &str = "doc";

/// Sort key of a person item.
pub(crate) const PERSON_SK: &str = "PERSON";
/// Sort key of a person's equality-keys item.
pub(crate) const EQUALITY_KEYS_SK: &str = "KEYS#equality";
/// Partition key of the feed.
pub(crate) const FEED_PK: &str = "FEED";
/// Partition key of the counters.
pub(crate) const COUNTER_PK: &str = "COUNTER";
/// Sort key of the feed counter (feed position and personRef).
pub(crate) const FEED_COUNTER_SK: &str = "FEED";
/// Sort key of the audit counter.
pub(crate) const AUDIT_COUNTER_SK: &str = "AUDIT";
/// Partition key of the audit log.
pub(crate) const AUDIT_PK: &str = "AUDIT";
/// Sort key of a dedup item.
pub(crate) const DEDUP_SK: &str = "DEDUP";
/// Sort key of an idempotency record.
pub(crate) const IDEMPOTENCY_SK: &str = "IDEMPOTENCY";
/// Sort key of a reference item.
pub(crate) const REFERENCE_SK: &str = "REF";
/// Sort key of a `personRef` claim item.
pub(crate) const PERSON_REF_SK: &str = "PERSONREF";

/// Prefix of history sort keys.
pub(crate) const HISTORY_PREFIX: &str = "HISTORY#";
/// Prefix of document sort keys.
pub(crate) const DOC_PREFIX: &str = "DOC#";
/// Prefix of a person's audit-index sort keys.
pub(crate) const AUDIT_PREFIX: &str = "AUDIT#";

/// A position or version as a sort key: 20 digits, zero-padded, so text order is number order for every `u64`.
pub(crate) fn padded(number: u64) -> String {
    format!("{number:020}")
}

/// Partition key of everything filed under a person.
pub(crate) fn person_pk(id: PersonId) -> String {
    format!("PERSON#{id}")
}

/// Sort key of a history entry.
pub(crate) fn history_sk(version: u64) -> String {
    format!("{HISTORY_PREFIX}{}", padded(version))
}

/// Sort key of a document.
pub(crate) fn document_sk(kind: &DocumentKind) -> String {
    format!("{DOC_PREFIX}{}", kind.key())
}

/// Sort key of a person's audit-index item.
pub(crate) fn person_audit_sk(position: u64) -> String {
    format!("{AUDIT_PREFIX}{}", padded(position))
}

/// Partition key of a search key's postings.
pub(crate) fn search_key_pk(key: &SearchKey) -> String {
    format!("KEY#{}", key.as_str())
}

/// Sort key of one posting: the person and the source that holds the key.
pub(crate) fn search_key_sk(id: PersonId, source: KeySource) -> String {
    let source = match source {
        KeySource::Person => "person",
        KeySource::Equality => "equality",
    };
    format!("{id}#{source}")
}

/// The person named by a posting's sort key.
pub(crate) fn person_of_posting(sk: &str) -> Result<PersonId, StoreError> {
    sk.split_once('#').and_then(|(id, _)| PersonId::parse(id).ok()).ok_or_else(|| malformed("search key", SK))
}

/// Partition key of a dedup item.
pub(crate) fn dedup_pk(key: &str) -> String {
    format!("DEDUP#{key}")
}

/// Partition key of the reference item of `reference`: `REF#<system>:<id>` (unambiguous: systems hold no colon,
/// and ids are kept verbatim, so distinct references never share an item).
pub(crate) fn reference_pk(reference: &CrossReference) -> String {
    format!("REF#{}", reference.key())
}

/// Partition key of the claim item of a `personRef`: `PERSONREF#<number>`.
pub(crate) fn person_ref_pk(person_ref: PersonRef) -> String {
    format!("PERSONREF#{}", person_ref.0)
}

/// Partition key of an idempotency record.
pub(crate) fn idempotency_pk(key: &str) -> String {
    format!("IDEMPOTENCY#{key}")
}

/// A key (or the start of an item): `PK` and `SK`.
pub(crate) fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([(PK.to_owned(), s(pk)), (SK.to_owned(), s(sk))])
}

/// A string attribute.
pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// A number attribute.
pub(crate) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// A list of strings (an empty list is allowed, unlike a string set).
fn list(values: &[SearchKey]) -> AttributeValue {
    AttributeValue::L(values.iter().map(|k| s(k.as_str())).collect())
}

fn to_document<T: serde::Serialize>(value: &T, what: &'static str) -> Result<String, StoreError> {
    storage::to_json(value, what)
}

fn from_document<T: serde::de::DeserializeOwned>(text: &str, what: &'static str) -> Result<T, StoreError> {
    storage::from_json(text, what)
}

/// A string attribute of a stored item.
pub(crate) fn get_s<'i>(item: &'i Item, attribute: &'static str, what: &'static str) -> Result<&'i str, StoreError> {
    match item.get(attribute) {
        Some(AttributeValue::S(value)) => Ok(value),
        _ => Err(malformed(what, attribute)),
    }
}

/// An optional string attribute of a stored item.
fn get_opt_s<'i>(item: &'i Item, attribute: &'static str, what: &'static str) -> Result<Option<&'i str>, StoreError> {
    match item.get(attribute) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::S(value)) => Ok(Some(value)),
        Some(_) => Err(malformed(what, attribute)),
    }
}

/// A non-negative number attribute of a stored item.
pub(crate) fn get_u64(item: &Item, attribute: &'static str, what: &'static str) -> Result<u64, StoreError> {
    match item.get(attribute) {
        Some(AttributeValue::N(value)) => value.parse().map_err(|_| malformed(what, attribute)),
        _ => Err(malformed(what, attribute)),
    }
}

/// An optional non-negative number attribute (absent: 0).
pub(crate) fn get_u64_or_zero(item: &Item, attribute: &'static str, what: &'static str) -> Result<u64, StoreError> {
    if item.contains_key(attribute) { get_u64(item, attribute, what) } else { Ok(0) }
}

fn get_keys(item: &Item, attribute: &'static str, what: &'static str) -> Result<Vec<SearchKey>, StoreError> {
    match item.get(attribute) {
        None => Ok(Vec::new()),
        Some(AttributeValue::L(values)) => values
            .iter()
            .map(|v| match v {
                AttributeValue::S(key) => Ok(SearchKey(key.clone())),
                _ => Err(malformed(what, attribute)),
            })
            .collect(),
        Some(_) => Err(malformed(what, attribute)),
    }
}

/// The same keys without repeats, in a stable order.
pub(crate) fn distinct(keys: &[SearchKey]) -> Vec<SearchKey> {
    let mut keys = keys.to_vec();
    keys.sort();
    keys.dedup();
    keys
}

// ------------------------------------------------------------------------------------------------------------
// Persons

/// Attribute names of a person item.
pub(crate) mod person_attr {
    /// `versionNumber` (N): the compare-and-set of every change.
    pub(crate) const VERSION: &str = "versionNumber";
    /// `personRef` (N).
    pub(crate) const PERSON_REF: &str = "personRef";
    /// `state` (S): active, deleted or merged.
    pub(crate) const STATE: &str = "state";
    /// `restricted` (BOOL): processing restricted.
    pub(crate) const RESTRICTED: &str = "restricted";
    /// `searchKeys` (L of S): the person's `person` search keys, so a write knows which postings to remove.
    pub(crate) const SEARCH_KEYS: &str = "searchKeys";
    /// `dedupKey` (S, absent when none): the dedup key the person holds.
    pub(crate) const DEDUP_KEY: &str = "dedupKey";
    /// `personId` (S): on dedup, reference, `personRef` claim and posting items, the person holding them.
    pub(crate) const PERSON_ID: &str = "personId";
}

/// A person item as read: the person and the keys it holds.
pub(crate) struct PersonItem {
    pub(crate) person: Person,
    pub(crate) search_keys: Vec<SearchKey>,
    pub(crate) dedup_key: Option<String>,
}

impl PersonItem {
    /// Builds the item storing `person` with its `person` search keys and dedup key (none unless live).
    pub(crate) fn to_item(
        person: &Person,
        search_keys: &[SearchKey],
        dedup_key: Option<&str>,
    ) -> Result<Item, StoreError> {
        let state = match person.status {
            PersonStatus::Active => "active",
            PersonStatus::Deleted => "deleted",
            PersonStatus::Merged { .. } => "merged",
        };
        let mut item = key(person_pk(person.id), PERSON_SK);
        item.insert("type".to_owned(), s("person"));
        item.insert(person_attr::VERSION.to_owned(), n(person.version_number));
        item.insert(person_attr::PERSON_REF.to_owned(), n(person.person_ref.0));
        item.insert(person_attr::STATE.to_owned(), s(state));
        item.insert(person_attr::RESTRICTED.to_owned(), AttributeValue::Bool(person.processing_restricted));
        item.insert(DOC.to_owned(), s(to_document(person, "person")?));
        item.extend(report_attributes(person).map(|(name, value)| (name.to_owned(), value)));
        if person.status.is_active() {
            item.insert(person_attr::SEARCH_KEYS.to_owned(), list(&distinct(search_keys)));
            if let Some(dedup) = dedup_key {
                item.insert(person_attr::DEDUP_KEY.to_owned(), s(dedup));
            }
        }
        Ok(item)
    }

    /// Reads a person item back.
    pub(crate) fn from_item(item: &Item) -> Result<Self, StoreError> {
        let person: Person = from_document(get_s(item, DOC, "person")?, "person")?;
        let version = get_u64(item, person_attr::VERSION, "person")?;
        if version != person.version_number || get_s(item, PK, "person")? != person_pk(person.id) {
            return Err(DynamoStoreError::Inconsistent { what: "person" }.into());
        }
        Ok(Self {
            search_keys: get_keys(item, person_attr::SEARCH_KEYS, "person")?,
            dedup_key: get_opt_s(item, person_attr::DEDUP_KEY, "person")?.map(str::to_owned),
            person,
        })
    }
}

// ------------------------------------------------------------------------------------------------------------
// Reporting

/// The global secondary index every person item is projected into, for reports in id order.
pub(crate) const REPORT_INDEX: &str = "GSI1";

/// Attribute names of the reporting index and of what it projects (written on every person item).
pub(crate) mod report_attr {
    /// `GSI1PK` (S): `REPORT#<first hex digit of the id>`, one of 16 shards.
    pub(crate) const SHARD: &str = "GSI1PK";
    /// `GSI1SK` (S): the id's canonical lowercase hyphenated text, so the index sorts a shard in id order.
    pub(crate) const ID: &str = "GSI1SK";
    /// `lastModified` (N): the person's `last_modified`, in nanoseconds since the Unix epoch.
    pub(crate) const LAST_MODIFIED: &str = "lastModified";
    /// `tenureCount` (N): how many tenures the person holds.
    pub(crate) const TENURES: &str = "tenureCount";
    /// `referenceCount` (N): how many cross-references the person holds.
    pub(crate) const REFERENCES: &str = "referenceCount";
    /// `reportable` (BOOL): live and not restricted (otherwise reported as a tombstone).
    pub(crate) const REPORTABLE: &str = "reportable";
}

/// The shards of the reporting index, in id order: the first hex digit of a person id.
pub(crate) const REPORT_SHARDS: &[u8; 16] = b"0123456789abcdef";

/// The reporting shard of a person id (`REPORT#<first hex digit>`).
pub(crate) fn report_shard_of(id: PersonId) -> String {
    let text = id.to_string();
    report_shard(text.as_bytes().first().copied().unwrap_or(b'0'))
}

/// The partition key of a reporting shard.
pub(crate) fn report_shard(digit: u8) -> String {
    format!("REPORT#{}", char::from(digit))
}

/// A timestamp as nanoseconds since the Unix epoch (exact for every `DateTime<Utc>`; DynamoDB numbers hold 38
/// digits, and compare exactly).
pub(crate) fn nanos(at: DateTime<Utc>) -> i128 {
    i128::from(at.timestamp()) * 1_000_000_000 + i128::from(at.timestamp_subsec_nanos())
}

/// A timestamp back from nanoseconds since the Unix epoch (`None` out of range).
pub(crate) fn from_nanos(nanos: i128) -> Option<DateTime<Utc>> {
    let seconds = i64::try_from(nanos.div_euclid(1_000_000_000)).ok()?;
    let subsec = u32::try_from(nanos.rem_euclid(1_000_000_000)).ok()?;
    DateTime::from_timestamp(seconds, subsec)
}

/// The reporting attributes of a person item: its index keys and what `report_counts` reads.
pub(crate) fn report_attributes(person: &Person) -> [(&'static str, AttributeValue); 6] {
    let reportable = person.status.is_active() && !person.processing_restricted;
    [
        (report_attr::SHARD, s(report_shard_of(person.id))),
        (report_attr::ID, s(person.id.to_string())),
        (report_attr::LAST_MODIFIED, n(nanos(person.last_modified))),
        (report_attr::TENURES, n(person.tenures.len())),
        (report_attr::REFERENCES, n(person.references.len())),
        (report_attr::REPORTABLE, AttributeValue::Bool(reportable)),
    ]
}

/// What `report_counts` reads of one projected index item.
pub(crate) struct ReportFigures {
    pub(crate) reportable: bool,
    pub(crate) tenures: u64,
    pub(crate) references: u64,
}

impl ReportFigures {
    /// Reads the projected attributes of an index item.
    pub(crate) fn from_item(item: &Item) -> Result<Self, StoreError> {
        let reportable = match item.get(report_attr::REPORTABLE) {
            Some(AttributeValue::Bool(reportable)) => *reportable,
            _ => return Err(malformed("report index", report_attr::REPORTABLE)),
        };
        Ok(Self {
            reportable,
            tenures: get_u64(item, report_attr::TENURES, "report index")?,
            references: get_u64(item, report_attr::REFERENCES, "report index")?,
        })
    }
}

/// The person id of an index item (its `GSI1SK`).
pub(crate) fn report_id_of(item: &Item) -> Result<PersonId, StoreError> {
    PersonId::parse(get_s(item, report_attr::ID, "report index")?)
        .map_err(|_| malformed("report index", report_attr::ID))
}

// ------------------------------------------------------------------------------------------------------------
// Relays

/// Sort key of a relay's lease item.
pub(crate) const RELAY_SK: &str = "RELAY";

/// Partition key of a relay's lease item.
pub(crate) fn relay_pk(relay: &str) -> String {
    format!("RELAY#{relay}")
}

/// Attribute names of a relay's lease item.
pub(crate) mod relay_attr {
    /// `holder` (S, absent after a release): the instance holding the lease.
    pub(crate) const HOLDER: &str = "holder";
    /// `position` (N): the feed position published up to.
    pub(crate) const POSITION: &str = "position";
    /// `expiresAt` (N): when the lease lapses, in nanoseconds since the Unix epoch.
    pub(crate) const EXPIRES_AT: &str = "expiresAt";
}

/// A relay's lease item read back.
pub(crate) fn relay_lease(item: &Item) -> Result<RelayLease, StoreError> {
    let expires_at = match item.get(relay_attr::EXPIRES_AT) {
        Some(AttributeValue::N(value)) => value.parse::<i128>().ok().and_then(from_nanos),
        _ => None,
    }
    .ok_or_else(|| malformed("relay", relay_attr::EXPIRES_AT))?;
    Ok(RelayLease {
        holder: get_opt_s(item, relay_attr::HOLDER, "relay")?.unwrap_or_default().to_owned(),
        position: get_u64_or_zero(item, relay_attr::POSITION, "relay")?,
        expires_at,
    })
}

/// The stored version in an item returned by a failed condition (`ReturnValuesOnConditionCheckFailure`).
pub(crate) fn version_in(
    item: Option<&Item>,
    attribute: &'static str,
    what: &'static str,
) -> Result<Option<u64>, StoreError> {
    item.map(|item| get_u64(item, attribute, what)).transpose()
}

/// The person holding a dedup item returned by a failed condition.
pub(crate) fn holder_in(item: Option<&Item>) -> Result<PersonId, StoreError> {
    let item = item.ok_or_else(|| malformed("dedup", person_attr::PERSON_ID))?;
    holder_of(item, "dedup")
}

/// The person named by the `personId` of a dedup or reference item (`what`).
pub(crate) fn holder_of(item: &Item, what: &'static str) -> Result<PersonId, StoreError> {
    PersonId::parse(get_s(item, person_attr::PERSON_ID, what)?).map_err(|_| malformed(what, person_attr::PERSON_ID))
}

/// The reference item giving `reference` to `holder`.
pub(crate) fn reference_item(reference: &CrossReference, holder: PersonId) -> Item {
    let mut item = self::key(reference_pk(reference), REFERENCE_SK);
    item.insert("type".to_owned(), s("reference"));
    item.insert(person_attr::PERSON_ID.to_owned(), s(holder.to_string()));
    item
}

/// The claim item giving `person_ref` to `holder` (any state: a number, once given, is never given again).
pub(crate) fn person_ref_item(person_ref: PersonRef, holder: PersonId) -> Item {
    let mut item = self::key(person_ref_pk(person_ref), PERSON_REF_SK);
    item.insert("type".to_owned(), s("person-ref"));
    item.insert(person_attr::PERSON_ID.to_owned(), s(holder.to_string()));
    item
}

/// The dedup item giving `key` to `holder`.
pub(crate) fn dedup_item(key: &str, holder: PersonId) -> Item {
    let mut item = self::key(dedup_pk(key), DEDUP_SK);
    item.insert("type".to_owned(), s("dedup"));
    item.insert(person_attr::PERSON_ID.to_owned(), s(holder.to_string()));
    item
}

/// The posting of `key` for a person through `source`.
pub(crate) fn posting_item(key: &SearchKey, id: PersonId, source: KeySource) -> Item {
    let mut item = self::key(search_key_pk(key), search_key_sk(id, source));
    item.insert("type".to_owned(), s("search-key"));
    item.insert(person_attr::PERSON_ID.to_owned(), s(id.to_string()));
    item
}

// ------------------------------------------------------------------------------------------------------------
// Equality keys

/// Attribute names of the equality-keys item.
pub(crate) mod keys_attr {
    /// `rev` (N): bumped on every write, the compare-and-set that keeps the key list and the postings in step.
    pub(crate) const REV: &str = "rev";
    /// `keys` (L of S): the person's `equality` search keys.
    pub(crate) const KEYS: &str = "keys";
}

/// A person's equality keys as read (`rev` `None`: no item).
pub(crate) struct EqualityKeys {
    pub(crate) rev: Option<u64>,
    pub(crate) keys: Vec<SearchKey>,
}

impl EqualityKeys {
    /// Reads the item back (`None`: no item, so no keys).
    pub(crate) fn from_item(item: Option<&Item>) -> Result<Self, StoreError> {
        match item {
            None => Ok(Self { rev: None, keys: Vec::new() }),
            Some(item) => Ok(Self {
                rev: Some(get_u64(item, keys_attr::REV, "equality keys")?),
                keys: get_keys(item, keys_attr::KEYS, "equality keys")?,
            }),
        }
    }

    /// The item holding `keys` at the next revision.
    pub(crate) fn next_item(&self, id: PersonId, keys: &[SearchKey]) -> Item {
        let mut item = key(person_pk(id), EQUALITY_KEYS_SK);
        item.insert("type".to_owned(), s("equality-keys"));
        item.insert(keys_attr::REV.to_owned(), n(self.rev.map_or(1, |rev| rev + 1)));
        item.insert(keys_attr::KEYS.to_owned(), list(keys));
        item
    }
}

// ------------------------------------------------------------------------------------------------------------
// Events, history, idempotency

/// The feed item of an event at `position`.
pub(crate) fn event_item(position: u64, event: &PersonEvent) -> Result<Item, StoreError> {
    let mut item = key(FEED_PK, padded(position));
    item.insert("type".to_owned(), s("event"));
    item.insert("position".to_owned(), n(position));
    item.insert("eventId".to_owned(), s(event.id.hyphenated().to_string()));
    item.insert(person_attr::PERSON_ID.to_owned(), s(event.entity_id.to_string()));
    item.insert(DOC.to_owned(), s(to_document(event, "event")?));
    Ok(item)
}

/// A feed item read back.
pub(crate) fn feed_entry(item: &Item) -> Result<FeedEntry, StoreError> {
    let position = get_u64(item, "position", "event")?;
    if get_s(item, SK, "event")? != padded(position) {
        return Err(DynamoStoreError::Inconsistent { what: "event" }.into());
    }
    Ok(FeedEntry { position, event: from_document(get_s(item, DOC, "event")?, "event")? })
}

/// The item of a history entry.
pub(crate) fn history_item(entry: &HistoryEntry) -> Result<Item, StoreError> {
    let mut item = key(person_pk(entry.person_id), history_sk(entry.version_number));
    item.insert("type".to_owned(), s("history"));
    item.insert("eventId".to_owned(), s(entry.event_id.hyphenated().to_string()));
    item.insert(DOC.to_owned(), s(to_document(entry, "history entry")?));
    Ok(item)
}

/// A history item read back.
pub(crate) fn history_entry(item: &Item) -> Result<HistoryEntry, StoreError> {
    from_document(get_s(item, DOC, "history entry")?, "history entry")
}

/// The item of an idempotency record.
pub(crate) fn idempotency_item(record: &IdempotencyRecord) -> Result<Item, StoreError> {
    let mut item = key(idempotency_pk(&record.key), IDEMPOTENCY_SK);
    item.insert("type".to_owned(), s("idempotency"));
    item.insert("key".to_owned(), s(&record.key));
    item.insert("fingerprint".to_owned(), s(&record.fingerprint));
    item.insert(person_attr::PERSON_ID.to_owned(), s(record.person.id.to_string()));
    item.insert("createdAt".to_owned(), s(timestamp(record.created_at)));
    item.insert(DOC.to_owned(), s(to_document(&record.person, "idempotent person")?));
    Ok(item)
}

/// An idempotency item read back.
pub(crate) fn idempotency_record(item: &Item) -> Result<IdempotencyRecord, StoreError> {
    let created_at = DateTime::parse_from_rfc3339(get_s(item, "createdAt", "idempotency")?)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|_| malformed("idempotency", "createdAt"))?;
    Ok(IdempotencyRecord {
        key: get_s(item, "key", "idempotency")?.to_owned(),
        fingerprint: get_s(item, "fingerprint", "idempotency")?.to_owned(),
        person: from_document(get_s(item, DOC, "idempotency")?, "idempotent person")?,
        created_at,
    })
}

fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

// ------------------------------------------------------------------------------------------------------------
// Documents

/// Attribute names of a document item.
pub(crate) mod document_attr {
    /// `version` (N): the compare-and-set of document writes.
    pub(crate) const VERSION: &str = "version";
}

/// The item storing `document` (under its own person and kind).
pub(crate) fn document_item(document: &StoredDocument) -> Result<Item, StoreError> {
    let mut item = key(person_pk(document.person_id), document_sk(&document.kind));
    item.insert("type".to_owned(), s("document"));
    item.insert(document_attr::VERSION.to_owned(), n(document.version));
    item.insert(DOC.to_owned(), s(storage::document_to_json(document)?));
    Ok(item)
}

/// A document item read back; its key, version attribute and document must agree.
pub(crate) fn stored_document(item: &Item) -> Result<StoredDocument, StoreError> {
    let stored = storage::document_from_json(get_s(item, DOC, "document")?)?;
    let agrees = get_s(item, PK, "document")? == person_pk(stored.person_id)
        && get_s(item, SK, "document")? == document_sk(&stored.kind)
        && get_u64(item, document_attr::VERSION, "document")? == stored.version;
    if !agrees {
        return Err(DynamoStoreError::Inconsistent { what: "document" }.into());
    }
    Ok(stored)
}

/// The NI number held by an equality document item.
pub(crate) fn nino_of(item: &Item) -> Result<Option<String>, StoreError> {
    match stored_document(item)?.body {
        DocumentBody::Equality(data) => Ok(data.national_insurance_number),
        DocumentBody::Extended(_) => Ok(None),
    }
}

// ------------------------------------------------------------------------------------------------------------
// Audit

/// The items of one audit entry at `position`: the log item, and one index item per person it names (each a full
/// copy, so a person's access log is one Query).
pub(crate) fn audit_items(position: u64, entry: &AuditEntry) -> Result<Vec<Item>, StoreError> {
    let doc = to_document(entry, "audit entry")?;
    let mut log = key(AUDIT_PK, padded(position));
    log.insert("type".to_owned(), s("audit"));
    log.insert("position".to_owned(), n(position));
    log.insert(DOC.to_owned(), s(doc.clone()));
    let mut persons = entry.person_ids.clone();
    persons.sort();
    persons.dedup();
    let mut items = vec![log];
    for person in persons {
        let mut index = key(person_pk(person), person_audit_sk(position));
        index.insert("type".to_owned(), s("audit-index"));
        index.insert("position".to_owned(), n(position));
        index.insert(DOC.to_owned(), s(doc.clone()));
        items.push(index);
    }
    Ok(items)
}

/// An audit index item read back.
pub(crate) fn audit_record(item: &Item) -> Result<AuditRecord, StoreError> {
    Ok(AuditRecord {
        position: get_u64(item, "position", "audit entry")?,
        entry: from_document(get_s(item, DOC, "audit entry")?, "audit entry")?,
    })
}

#[cfg(test)]
mod tests {
    use person_core::testkit::fixtures::{full_person, person_id};

    use super::*;

    #[test]
    fn padded_numbers_sort_as_text_for_every_u64() {
        assert_eq!(padded(7), "00000000000000000007");
        assert!(padded(9) < padded(10));
        assert_eq!(padded(u64::MAX).len(), 20);
        assert!(padded(u64::MAX - 1) < padded(u64::MAX));
    }

    #[test]
    fn a_person_item_round_trips_with_its_keys_and_dedup_key() {
        let person = full_person(person_id());
        let keys = vec![SearchKey("b".to_owned()), SearchKey("a".to_owned()), SearchKey("b".to_owned())];
        let item = PersonItem::to_item(&person, &keys, Some("dedup")).expect("serialisable");
        let read = PersonItem::from_item(&item).expect("readable");
        assert_eq!(read.person, person);
        assert_eq!(read.search_keys, vec![SearchKey("a".to_owned()), SearchKey("b".to_owned())]);
        assert_eq!(read.dedup_key.as_deref(), Some("dedup"));
    }

    #[test]
    fn a_tombstone_holds_no_keys() {
        let mut person = full_person(person_id());
        person.status = PersonStatus::Deleted;
        let item = PersonItem::to_item(&person, &[SearchKey("a".to_owned())], Some("dedup")).expect("serialisable");
        let read = PersonItem::from_item(&item).expect("readable");
        assert!(read.search_keys.is_empty());
        assert_eq!(read.dedup_key, None);
    }

    #[test]
    fn a_person_item_disagreeing_with_its_document_is_unexpected() {
        let person = full_person(person_id());
        let mut item = PersonItem::to_item(&person, &[], None).expect("serialisable");
        item.insert(person_attr::VERSION.to_owned(), n(9));
        assert!(matches!(PersonItem::from_item(&item), Err(StoreError::Unexpected(_))));
        item.remove(DOC);
        assert!(matches!(PersonItem::from_item(&item), Err(StoreError::Unexpected(_))));
    }

    #[test]
    fn timestamps_are_stored_as_exact_nanoseconds_and_keep_their_order() {
        let at = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.123456789Z").expect("valid").with_timezone(&Utc);
        assert_eq!(nanos(at), 1_767_323_045_123_456_789);
        for instant in [at, DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC, DateTime::<Utc>::UNIX_EPOCH] {
            assert_eq!(from_nanos(nanos(instant)), Some(instant));
        }
        assert!(nanos(DateTime::<Utc>::MIN_UTC) < nanos(at));
        assert!(nanos(DateTime::<Utc>::MAX_UTC).to_string().len() <= 38, "DynamoDB numbers hold 38 digits");
    }

    #[test]
    fn every_person_item_carries_its_reporting_shard_id_and_figures() {
        let mut person = full_person(person_id());
        let item = PersonItem::to_item(&person, &[], None).expect("serialisable");
        let text = person.id.to_string();
        assert_eq!(item.get(report_attr::SHARD), Some(&s(format!("REPORT#{}", &text[..1]))));
        assert_eq!(item.get(report_attr::ID), Some(&s(text)));
        assert_eq!(item.get(report_attr::LAST_MODIFIED), Some(&n(nanos(person.last_modified))));
        let figures = ReportFigures::from_item(&item).expect("readable");
        assert!(figures.reportable);
        assert_eq!(
            (figures.tenures, figures.references),
            (person.tenures.len() as u64, person.references.len() as u64)
        );
        person.processing_restricted = true;
        let restricted = PersonItem::to_item(&person, &[], None).expect("serialisable");
        assert!(!ReportFigures::from_item(&restricted).expect("readable").reportable);
        person.processing_restricted = false;
        person.status = PersonStatus::Deleted;
        let tombstone = PersonItem::to_item(&person, &[], None).expect("serialisable");
        assert!(!ReportFigures::from_item(&tombstone).expect("readable").reportable);
    }

    #[test]
    fn a_released_relay_lease_has_no_holder_and_keeps_its_position() {
        let mut item = key(relay_pk("sns"), RELAY_SK);
        item.insert(relay_attr::POSITION.to_owned(), n(5));
        item.insert(relay_attr::EXPIRES_AT.to_owned(), n(nanos(DateTime::<Utc>::MIN_UTC)));
        let lease = relay_lease(&item).expect("readable");
        assert_eq!((lease.holder.as_str(), lease.position, lease.expires_at), ("", 5, DateTime::<Utc>::MIN_UTC));
        item.remove(relay_attr::EXPIRES_AT);
        assert!(relay_lease(&item).is_err());
    }

    #[test]
    fn postings_name_their_person() {
        let id = person_id();
        assert_eq!(person_of_posting(&search_key_sk(id, KeySource::Equality)).expect("parses"), id);
        assert!(person_of_posting("garbage").is_err());
    }
}
