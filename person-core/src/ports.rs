//! Ports: what the domain needs from the outside world, each documented as a contract.
//!
//! Every store implements [`PersonRepository`]; `crate::testkit` (feature `testkit`) is the executable form of
//! these contracts, and a store is done when it passes. Stores persist exactly what they are given: the service
//! assigns ids, versions, timestamps, events and search keys. The one value a store generates is `personRef`,
//! because only the store can allocate a sequence atomically.
//!
//! # Search keys and duplicate prevention
//!
//! Every write of a person carries the person's blocking keys ([`SearchKey`], computed by
//! [`crate::matching`]) and its duplicate-prevention key (`dedup_key`). Keys belong to a [`KeySource`]: the
//! person record ([`KeySource::Person`]: names, date of birth, postcodes) or its equality data
//! ([`KeySource::Equality`]: the NI number). A write replaces the keys of its own source for that person, in the
//! same atomic write as the change, so a store never answers [`PersonRepository::candidates`] from keys that
//! disagree with the data. Keys are opaque strings to stores.
//!
//! The dedup key is UNIQUE among live persons: a create or update whose dedup key another live person holds is
//! refused (`DuplicatePerson`) and writes nothing. That constraint, enforced inside the store's atomic write, is
//! what makes duplicate prevention race-safe: of ten concurrent creates of the same person exactly one succeeds,
//! whatever the service's match saw before writing.
//!
//! # Cross-references
//!
//! A live person's [`Person::references`] are held in a unique index (reference → person), replaced by every
//! write of the person (create, update, merge) in the same atomic write; a person that is not live (deleted,
//! merged) holds none, so its references are free to be claimed again. A write whose person holds a reference
//! that another live person holds is refused with `ReferenceTaken` naming that person and writes nothing; of
//! concurrent writes claiming one reference for different persons exactly one succeeds. A merge releases the
//! duplicate's references and gives them to the survivor in one write.

use std::error::Error as StdError;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::audit::AuditEntry;
use crate::documents::{DocumentKind, DocumentWrite, StoredDocument};
use crate::event::{FeedEntry, HistoryEntry, PersonEvent};
#[cfg(doc)]
use crate::matching::KeySource;
use crate::matching::SearchKey;
use crate::person::{Person, PersonId, PersonRef};
use crate::reference::CrossReference;

/// A boxed error from a driver, kept as a source (never stringified).
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// A failure of the storage system itself, not of the request.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached or is overloaded; retrying later may succeed (→ 503).
    #[error("store unavailable")]
    Unavailable(#[source] BoxError),
    /// Anything else: corrupt data, a bug, a constraint the service should have prevented (→ 500).
    #[error("unexpected store failure")]
    Unexpected(#[source] BoxError),
}

impl StoreError {
    /// Wraps any error as [`StoreError::Unexpected`].
    pub fn unexpected(e: impl Into<BoxError>) -> Self {
        Self::Unexpected(e.into())
    }
}

/// A create as the service prepared it, waiting for the store to allocate its `personRef`.
///
/// The store calls [`NewPersonWrite::assign`] *inside* its atomic write, once it holds the reference, so the
/// person, its event and its history entry all carry the same `personRef` and a failed write stores none of them.
#[derive(Debug, Clone)]
pub struct NewPersonWrite {
    person: Person,
    event: PersonEvent,
    history: HistoryEntry,
    audit: AuditEntry,
    idempotency: Option<IdempotencyKey>,
    search_keys: Vec<SearchKey>,
    dedup_key: Option<String>,
}

/// The idempotency key and request fingerprint of a create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// The caller-scoped key (`<subject>:<Idempotency-Key>`).
    pub key: String,
    /// SHA-256 of the canonical request (path and body).
    pub fingerprint: String,
}

/// A stored idempotent create: replayed when the same key comes again with the same request.
#[derive(Debug, Clone, PartialEq)]
pub struct IdempotencyRecord {
    /// The caller-scoped key.
    pub key: String,
    /// Fingerprint of the original request.
    pub fingerprint: String,
    /// The person exactly as the original create answered it.
    pub person: Person,
    /// When the original create happened.
    pub created_at: DateTime<Utc>,
}

/// Everything a store writes for one create, with the `personRef` assigned.
#[derive(Debug, Clone)]
pub struct AssignedCreate {
    /// The person, version 0.
    pub person: Person,
    /// Its `PersonCreatedEvent`.
    pub event: PersonEvent,
    /// Its first history entry.
    pub history: HistoryEntry,
    /// Its audit entry.
    pub audit: AuditEntry,
    /// The idempotency record to store, when the request carried a key.
    pub idempotency: Option<IdempotencyRecord>,
    /// The person's [`KeySource::Person`] search keys.
    pub search_keys: Vec<SearchKey>,
    /// The person's duplicate-prevention key, unique among live persons; `None`: not checked.
    pub dedup_key: Option<String>,
}

impl NewPersonWrite {
    /// Built by the service only. `person.person_ref` is a placeholder until [`Self::assign`].
    #[must_use]
    pub fn new(
        person: Person,
        event: PersonEvent,
        history: HistoryEntry,
        audit: AuditEntry,
        idempotency: Option<IdempotencyKey>,
    ) -> Self {
        Self { person, event, history, audit, idempotency, search_keys: Vec::new(), dedup_key: None }
    }

    /// The same write carrying the person's [`KeySource::Person`] search keys and its dedup key (`None` when
    /// the create is an allowed duplicate, or the person lacks what the key is made of).
    #[must_use]
    pub fn with_search_keys(mut self, search_keys: Vec<SearchKey>, dedup_key: Option<String>) -> Self {
        self.search_keys = search_keys;
        self.dedup_key = dedup_key;
        self
    }

    /// The person's [`KeySource::Person`] search keys.
    #[must_use]
    pub fn search_keys(&self) -> &[SearchKey] {
        &self.search_keys
    }

    /// The person's dedup key, if it is to be checked and held.
    #[must_use]
    pub fn dedup_key(&self) -> Option<&str> {
        self.dedup_key.as_deref()
    }

    /// The person to create (its `personRef` a placeholder).
    #[must_use]
    pub fn person(&self) -> &Person {
        &self.person
    }

    /// The id of the person to create.
    #[must_use]
    pub fn id(&self) -> PersonId {
        self.person.id
    }

    /// The idempotency key of the request, if any.
    #[must_use]
    pub fn idempotency(&self) -> Option<&IdempotencyKey> {
        self.idempotency.as_ref()
    }

    /// Fixes the `personRef` everywhere it appears (person, event `newData`, history `newData`, idempotency
    /// record).
    #[must_use]
    pub fn assign(self, person_ref: PersonRef) -> AssignedCreate {
        let mut person = self.person;
        person.person_ref = person_ref;
        let snapshot = serde_json::to_value(&person).unwrap_or(serde_json::Value::Null);
        let mut event = self.event;
        event.event_data.new_data = snapshot.clone();
        let mut history = self.history;
        history.new_data = snapshot;
        let idempotency = self.idempotency.map(|k| IdempotencyRecord {
            key: k.key,
            fingerprint: k.fingerprint,
            person: person.clone(),
            created_at: person.created_at,
        });
        AssignedCreate {
            person,
            event,
            history,
            audit: self.audit,
            idempotency,
            search_keys: self.search_keys,
            dedup_key: self.dedup_key,
        }
    }
}

/// A change to an existing person: the new state, the version it must replace, its event and history entry.
#[derive(Debug, Clone)]
pub struct PersonWrite {
    /// The person after the change (`version_number` = `expected_version + 1`).
    pub person: Person,
    /// The version the stored person must have for the write to apply.
    pub expected_version: u64,
    /// The event describing the change.
    pub event: PersonEvent,
    /// The history entry describing the change.
    pub history: HistoryEntry,
    /// The audit entry recorded with the change.
    pub audit: AuditEntry,
    /// The person's [`KeySource::Person`] search keys after the change; they replace the stored ones. Empty for
    /// a person that is no longer live (stores then drop every key of the person, equality keys included).
    pub search_keys: Vec<SearchKey>,
    /// The person's dedup key after the change: `None` for a deleted or merged person, an allowed duplicate, or
    /// a person lacking what the key is made of.
    pub dedup_key: Option<String>,
}

/// Why a create was not stored.
#[derive(Debug, thiserror::Error)]
pub enum InsertError {
    /// A person (in any state) already has this id.
    #[error("a person with this id already exists")]
    DuplicateId,
    /// Another create already stored this idempotency key (a concurrent retry): read it with
    /// [`PersonRepository::find_idempotent_create`].
    #[error("idempotency key already used")]
    IdempotencyKeyTaken,
    /// Another live person holds the write's dedup key: the same person beyond reasonable doubt.
    #[error("the person already exists as {existing}")]
    DuplicatePerson {
        /// The live person holding the dedup key.
        existing: PersonId,
    },
    /// Another live person holds one of the written person's references.
    #[error("the reference {reference} belongs to {owner}")]
    ReferenceTaken {
        /// The reference.
        reference: CrossReference,
        /// The live person holding it.
        owner: PersonId,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a change was not stored.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// No person has this id.
    #[error("person not found")]
    NotFound,
    /// The stored version is not the expected one.
    #[error("version conflict: current version is {current}")]
    VersionConflict {
        /// The version currently stored.
        current: u64,
    },
    /// Another live person holds the write's dedup key.
    #[error("the change would duplicate {existing}")]
    DuplicatePerson {
        /// The live person holding the dedup key.
        existing: PersonId,
    },
    /// Another live person holds one of the written person's references.
    #[error("the reference {reference} belongs to {owner}")]
    ReferenceTaken {
        /// The reference.
        reference: CrossReference,
        /// The live person holding it.
        owner: PersonId,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A person found by [`PersonRepository::candidates`], with what matching needs besides the person.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The person (live, not restricted).
    pub person: Person,
    /// The NI number from the person's equality data, if recorded. The service uses it only for callers allowed
    /// to see it.
    pub nino: Option<String>,
    /// How many distinct keys of the query the person has (from any source).
    pub matched_keys: u32,
}

/// An equality or extended-data document moved from the duplicate to the survivor by a merge.
#[derive(Debug, Clone)]
pub struct DocumentMove {
    /// Which document.
    pub kind: DocumentKind,
    /// The version the duplicate's document must have; it is deleted from the duplicate.
    pub expected_version: u64,
    /// The document as it is stored for the survivor (which MUST hold none of this kind), with the same kind.
    pub document: StoredDocument,
}

/// A merge as the service prepared it: one atomic write changing two persons.
#[derive(Debug, Clone)]
pub struct MergeWrite {
    /// The survivor after the merge (`version_number` = `survivor_expected_version + 1`): its own values plus
    /// the duplicate's missing ones and tenures.
    pub survivor: Person,
    /// The version the stored survivor must have.
    pub survivor_expected_version: u64,
    /// The survivor's [`KeySource::Person`] keys after the merge; they replace the stored ones.
    pub survivor_keys: Vec<SearchKey>,
    /// The survivor's [`KeySource::Equality`] keys when the merge moves the equality data to it; `None` leaves
    /// them as they are.
    pub survivor_equality_keys: Option<Vec<SearchKey>>,
    /// The survivor's dedup key after the merge.
    pub survivor_dedup_key: Option<String>,
    /// The duplicate after the merge: status `Merged { into: survivor }`, version + 1.
    pub duplicate: Person,
    /// The version the stored duplicate must have.
    pub duplicate_expected_version: u64,
    /// Documents moved from the duplicate to the survivor.
    pub documents: Vec<DocumentMove>,
    /// The one `PersonMergedEvent` (its `entityId` is the survivor).
    pub event: PersonEvent,
    /// The survivor's history entry.
    pub survivor_history: HistoryEntry,
    /// The duplicate's history entry (same event id).
    pub duplicate_history: HistoryEntry,
    /// The audit entry, naming both persons.
    pub audit: AuditEntry,
}

/// Why a merge was not stored (nothing was written).
#[derive(Debug, thiserror::Error)]
pub enum MergeWriteError {
    /// The stored survivor does not have the expected version (`None`: no such person).
    #[error("survivor version conflict")]
    SurvivorConflict {
        /// The survivor's stored version.
        current: Option<u64>,
    },
    /// The stored duplicate does not have the expected version (`None`: no such person).
    #[error("duplicate version conflict")]
    DuplicateConflict {
        /// The duplicate's stored version.
        current: Option<u64>,
    },
    /// A document to move is not stored on the duplicate at the expected version, or the survivor already holds
    /// one of that kind.
    #[error("document conflict")]
    DocumentConflict,
    /// A live person other than the two merged holds the survivor's new dedup key.
    #[error("the merged survivor would duplicate {existing}")]
    DuplicatePerson {
        /// The live person holding the dedup key.
        existing: PersonId,
    },
    /// A live person other than the two merged holds one of the survivor's references.
    #[error("the reference {reference} belongs to {owner}")]
    ReferenceTaken {
        /// The reference.
        reference: CrossReference,
        /// The live person holding it.
        owner: PersonId,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Storage of persons, their events (outbox), history and idempotency records.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PersonRepository: Send + Sync {
    /// Stores a new person with its event, history entry, audit entry and idempotency record in **one atomic
    /// write**, after
    /// allocating the next `personRef` and calling [`NewPersonWrite::assign`] with it. Returns the stored person.
    ///
    /// `personRef`s MUST be unique across all persons ever created, even under concurrent creates, and increase
    /// with each create (gaps after failed creates are allowed); a create that
    /// fails MUST NOT leave a person, event, history entry or idempotency record behind. The event MUST appear
    /// in the feed after every event committed before it.
    ///
    /// The person's search keys ([`NewPersonWrite::search_keys`], source [`KeySource::Person`]) and its dedup key
    /// are stored in the same atomic write.
    ///
    /// # Errors
    /// MUST return, checked in this order, [`InsertError::DuplicateId`] when any person (live, deleted or
    /// merged) has the id, [`InsertError::IdempotencyKeyTaken`] when the idempotency key is already stored, and
    /// [`InsertError::DuplicatePerson`] when another live person holds the dedup key, and
    /// [`InsertError::ReferenceTaken`] when another live person holds one of the person's references; nothing
    /// is written then. Of N concurrent inserts with the same dedup key exactly one MUST succeed.
    async fn insert(&self, write: NewPersonWrite) -> Result<Person, InsertError>;

    /// Reads a person in any state (live, deleted, merged), or `None` when the id was never stored.
    ///
    /// # Errors
    /// [`StoreError`] only for store failures.
    async fn get(&self, id: PersonId) -> Result<Option<Person>, StoreError>;

    /// Replaces a person, appending its event, history entry and audit entry, in **one atomic compare-and-set**: the write
    /// applies only if the stored `versionNumber` equals `write.expected_version`. Of N concurrent writes with
    /// the same expected version exactly one MUST succeed.
    ///
    /// The service never changes `id`, `personRef` or `createdAt` in an update; stores may rely on that (and
    /// keep them in indexed columns).
    ///
    /// The person's [`KeySource::Person`] keys are replaced by `write.search_keys` and its dedup key by
    /// `write.dedup_key`, in the same atomic write. When the written person is not live (deleted, merged) the
    /// store MUST drop every key of the person (both sources) and its dedup key, whatever the write carries.
    ///
    /// # Errors
    /// MUST return, checked in this order, [`UpdateError::NotFound`] when the id is unknown,
    /// [`UpdateError::VersionConflict`] with the stored version when it differs, and
    /// [`UpdateError::DuplicatePerson`] when another live person holds the dedup key, and
    /// [`UpdateError::ReferenceTaken`] when another live person holds one of the person's references; nothing
    /// is written then. Of concurrent updates of different persons claiming the same reference exactly one MUST
    /// succeed.
    async fn update(&self, write: PersonWrite) -> Result<(), UpdateError>;

    /// Up to `limit` live, non-restricted persons having at least one of `keys` (from any source), with their NI
    /// number (from the equality data) and the number of distinct `keys` each has.
    ///
    /// Ordered by that number, descending, then by person id ascending (UUID byte order, which is the order of
    /// the hyphenated lower-case text), so every store returns the same candidates in the same order for the
    /// same data. Repeated keys in `keys` count once. Cost MUST NOT grow with the number of stored persons
    /// beyond the persons having the keys (an indexed look-up, not a scan).
    ///
    /// # Errors
    /// [`StoreError`] only for store failures.
    async fn candidates(&self, keys: &[SearchKey], limit: u32) -> Result<Vec<Candidate>, StoreError>;

    /// Merges a duplicate into a survivor in **one atomic write**: a compare-and-set on both persons' versions,
    /// the survivor replaced by `write.survivor` (keys and dedup key replaced; equality keys too when
    /// `survivor_equality_keys` is given), the duplicate replaced by `write.duplicate` (a `Merged` tombstone: every
    /// key and its dedup key dropped, so the survivor may take the same dedup key in the same write), each
    /// [`DocumentMove`] deleted from the duplicate and inserted for the survivor, the one event appended to the
    /// feed, a history entry for each person, and the audit entry.
    ///
    /// # Errors
    /// MUST return, checked in this order, [`MergeWriteError::SurvivorConflict`] or
    /// [`MergeWriteError::DuplicateConflict`] when a stored version differs (or the person is unknown),
    /// [`MergeWriteError::DocumentConflict`] when a document to move is not on the duplicate at its expected
    /// version or the survivor already has one of its kind, and [`MergeWriteError::DuplicatePerson`] when a
    /// third live person holds the survivor's new dedup key, and [`MergeWriteError::ReferenceTaken`] when a third
    /// live person holds one of the survivor's references. Nothing is written then.
    async fn merge(&self, write: MergeWrite) -> Result<(), MergeWriteError>;

    /// The live person holding `reference` (see the module documentation), or `None`. An indexed look-up: its
    /// cost MUST NOT grow with the number of stored persons.
    ///
    /// # Errors
    /// [`StoreError`] only for store failures.
    async fn find_by_reference(&self, reference: &CrossReference) -> Result<Option<PersonId>, StoreError>;

    /// Every history entry of a person, oldest first (by version).
    ///
    /// # Errors
    /// [`StoreError`] only for store failures. An unknown id yields an empty list.
    async fn history(&self, id: PersonId) -> Result<Vec<HistoryEntry>, StoreError>;

    /// Up to `limit` events with a position greater than `after`, in commit order.
    ///
    /// A reader that follows the feed MUST see every committed event exactly once, in an order consistent with
    /// each person's versions, even while writers commit concurrently: an event MUST NOT become visible at a
    /// position lower than one already returned.
    ///
    /// # Errors
    /// [`StoreError`] only for store failures.
    async fn events_after(&self, after: u64, limit: u32) -> Result<Vec<FeedEntry>, StoreError>;

    /// The idempotency record stored under `key`, if any.
    ///
    /// # Errors
    /// [`StoreError`] only for store failures.
    async fn find_idempotent_create(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError>;

    /// Which of `ids` are persons whose processing is restricted (`processing_restricted`), each at most once,
    /// in any order.
    ///
    /// # Errors
    /// [`StoreError`] only for store failures. Unknown ids are simply not returned.
    async fn restricted_among(&self, ids: &[PersonId]) -> Result<Vec<PersonId>, StoreError>;

    /// Checks that the store answers (for `/readyz`).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when it does not.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Releases the store's resources at graceful shutdown, after the last request: waits for operations in
    /// progress, flushes what needs flushing, closes connections. Operations after it MAY fail with
    /// [`StoreError::Unavailable`]. The default does nothing (nothing to release).
    async fn close(&self) {}
}

/// Why a document write was not stored.
#[derive(Debug, thiserror::Error)]
pub enum DocumentWriteError {
    /// The stored version is not the expected one (`None`: no document exists; or one exists where none was
    /// expected).
    #[error("document version conflict")]
    VersionConflict {
        /// The version stored now, `None` when there is no document.
        current: Option<u64>,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Storage of the versioned documents attached to persons: equality data and extended data per service area.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait DocumentRepository: Send + Sync {
    /// The document of `kind` for `person`, if one is stored.
    ///
    /// # Errors
    /// [`StoreError`] only for store failures.
    async fn get_document(&self, person: PersonId, kind: &DocumentKind) -> Result<Option<StoredDocument>, StoreError>;

    /// Every document stored for `person` (subject access, merge), in any order.
    ///
    /// # Errors
    /// [`StoreError`] only for store failures.
    async fn list_documents(&self, person: PersonId) -> Result<Vec<StoredDocument>, StoreError>;

    /// Puts or deletes a document and appends its audit entry, in **one atomic compare-and-set**: it applies only
    /// when the stored version equals `write.expected_version` (`None`: no document stored). Of concurrent writes
    /// expecting the same version exactly one MUST succeed. When `write.search_keys` is given (equality data),
    /// the person's [`KeySource::Equality`] keys are replaced by it in the same atomic write.
    ///
    /// # Errors
    /// MUST return [`DocumentWriteError::VersionConflict`] with the stored version when the expectation fails;
    /// nothing is written then.
    async fn write_document(&self, write: DocumentWrite) -> Result<(), DocumentWriteError>;
}

/// An audit entry with its position in the audit log (append order, strictly increasing, from 1).
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// Position in the log.
    pub position: u64,
    /// The entry.
    pub entry: AuditEntry,
}

/// The append-only audit trail.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends one entry. Entries are never changed or removed.
    ///
    /// # Errors
    /// [`StoreError`] only for store failures; the caller then fails the audited request.
    async fn append(&self, entry: AuditEntry) -> Result<(), StoreError>;

    /// Up to `limit` entries naming `person` with a position greater than `after`, oldest first. Entries
    /// written with person changes and documents (in their atomic writes) are included.
    ///
    /// # Errors
    /// [`StoreError`] only for store failures.
    async fn entries_for_person(
        &self,
        person: PersonId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError>;
}

/// What [`ReportingRepository::report_persons`] reads: one page of persons in id order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportQuery {
    /// Only persons whose `last_modified` is at or after this instant (incremental loads); `None`: all.
    pub modified_since: Option<DateTime<Utc>>,
    /// Only persons whose id is greater than this one (keyset paging); `None`: from the first.
    pub after: Option<PersonId>,
    /// How many of the matching persons (after `after`) to skip before the page starts (offset paging).
    pub offset: u64,
    /// At most this many persons.
    pub limit: u32,
}

/// Counts over the persons a [`ReportQuery`]'s `modified_since` selects (every state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportCounts {
    /// Persons in any state (live, deleted, merged; restricted or not).
    pub persons: u64,
    /// Persons that are not live or whose processing is restricted (reported as tombstones).
    pub withheld: u64,
    /// The sum of `tenures.len()` over live, unrestricted persons.
    pub tenures: u64,
    /// The sum of `references.len()` over live, unrestricted persons.
    pub references: u64,
}

/// Bulk reads for reporting (SPEC §10): every person in a stable order, for Qlik loads and CSV exports.
///
/// The order is the person id's ascending byte order (which is also the order of the ids' canonical lowercase
/// hyphenated text), so a page boundary never moves when persons change and keyset paging (`after`) is exact.
/// The service decides what a row shows (tombstones, restriction); stores return persons as stored.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ReportingRepository: Send + Sync {
    /// Up to `query.limit` persons in any state (live, deleted, merged; restricted included) whose
    /// `last_modified >= query.modified_since` (when given) and whose id is greater than `query.after` (when
    /// given), in ascending id order, skipping the first `query.offset` of them. Reading a page MUST NOT hold
    /// the whole table in memory: a caller streams the table by following `after` with bounded pages.
    ///
    /// # Errors
    /// [`StoreError`] only for store failures.
    async fn report_persons(&self, query: &ReportQuery) -> Result<Vec<Person>, StoreError>;

    /// [`ReportCounts`] over the persons with `last_modified >= modified_since` (all persons when `None`).
    ///
    /// # Errors
    /// [`StoreError`] only for store failures.
    async fn report_counts(&self, modified_since: Option<DateTime<Utc>>) -> Result<ReportCounts, StoreError>;
}

/// The state of a relay's lease and position, as [`RelayRepository`] stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayLease {
    /// The instance holding the lease; empty after a release.
    pub holder: String,
    /// The feed position up to which (inclusive) the relay has published; 0 before the first event.
    pub position: u64,
    /// When the lease lapses unless renewed.
    pub expires_at: DateTime<Utc>,
}

/// Why a relay's position was not advanced.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The caller does not hold the lease (it expired and another instance took it, or it was never taken).
    #[error("the relay lease is not held by this instance")]
    LeaseLost,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The durable state of an event relay (SPEC §9): its position in the feed and a lease, so that of several server
/// instances only one relays at a time and a new one takes over when the holder dies.
///
/// Times are the callers' clocks: a lease is held while `now < expires_at`. Every method is one atomic
/// conditional write (or read) in the store; no read-then-write.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait RelayRepository: Send + Sync {
    /// Takes the lease of relay `relay` for `holder` until `now + ttl` when no one holds it, when the holder's
    /// lease expired at `now`, or when `holder` already holds it (a renewal), and returns the lease with the
    /// relay's stored position (0 when never advanced). Of concurrent acquisitions of a free lease exactly one
    /// MUST succeed.
    ///
    /// # Errors
    /// `Ok(None)` when another holder's lease has not expired at `now`; [`StoreError`] only for store failures.
    async fn acquire_relay_lease(
        &self,
        relay: &str,
        holder: &str,
        now: DateTime<Utc>,
        ttl: chrono::TimeDelta,
    ) -> Result<Option<RelayLease>, StoreError>;

    /// Stores `position` as the relay's position and renews the lease until `now + ttl`, only while `holder`
    /// holds the lease unexpired at `now`. The stored position never decreases: a lower `position` renews the
    /// lease and keeps the stored one.
    ///
    /// # Errors
    /// MUST return [`RelayError::LeaseLost`] (writing nothing) when `holder` does not hold an unexpired lease.
    async fn advance_relay(
        &self,
        relay: &str,
        holder: &str,
        position: u64,
        now: DateTime<Utc>,
        ttl: chrono::TimeDelta,
    ) -> Result<(), RelayError>;

    /// Gives the lease up when `holder` holds it (graceful shutdown), so another instance can take over at once;
    /// the position is kept. Does nothing otherwise.
    ///
    /// # Errors
    /// [`StoreError`] only for store failures.
    async fn release_relay_lease(&self, relay: &str, holder: &str) -> Result<(), StoreError>;

    /// The relay's stored lease and position, `None` when it never ran (for metrics and `/readyz`).
    ///
    /// # Errors
    /// [`StoreError`] only for store failures.
    async fn relay_state(&self, relay: &str) -> Result<Option<RelayLease>, StoreError>;
}

/// One person for [`ImportRepository::import_persons`], prepared (validated, keys computed) by the service.
#[derive(Debug, Clone)]
pub struct ImportWrite {
    /// The person exactly as it is to be stored (its own id, version, timestamps and state). Its `person_ref` is
    /// kept, unless `assign_ref`.
    pub person: Person,
    /// True when the record carried no `personRef`: the store assigns the next one, as a create would.
    pub assign_ref: bool,
    /// The person's [`KeySource::Person`] search keys (empty for a person that is not live).
    pub search_keys: Vec<SearchKey>,
    /// The person's duplicate-prevention key (`None` for a person that is not live or lacks what it is made of).
    pub dedup_key: Option<String>,
}

/// What [`ImportRepository::import_persons`] did with one [`ImportWrite`], in the order of the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportOutcome {
    /// Stored with this `personRef`. `duplicate_of`: another live person (stored, or earlier in the batch) held its
    /// dedup key, so it was stored **without** one (an allowed duplicate, for staff to merge).
    Imported {
        /// The stored `personRef` (the record's own, or the one assigned).
        person_ref: PersonRef,
        /// The live person holding the same dedup key, if any.
        duplicate_of: Option<PersonId>,
    },
    /// A person with this id is already stored (in any state), or appears earlier in the batch: nothing written.
    /// This is what makes a resumed import write nothing twice.
    AlreadyStored,
    /// A merged person whose survivor (`mergedInto`) is neither stored nor stored earlier in the batch: nothing
    /// written (a merged person always points at a stored person). Import it again once its survivor is in.
    SurvivorMissing {
        /// The person it was merged into.
        survivor: PersonId,
    },
    /// Another person (stored, or earlier in the batch) has this `personRef`: nothing written for this one.
    PersonRefTaken {
        /// The person holding it.
        owner: PersonId,
    },
    /// Another live person (stored, or earlier in the batch) holds one of its references: nothing written.
    ReferenceTaken {
        /// The reference.
        reference: CrossReference,
        /// The live person holding it.
        owner: PersonId,
    },
}

/// Bulk loading of persons from another system (`person-api import`, a migration): persons keep their ids,
/// `personRef`s, versions and timestamps.
///
/// An import is not a change made through the API: it writes no event, no history entry and no idempotency
/// record (the systems listening to events already know these persons; a million `PersonCreatedEvent`s would make
/// them create them again). It writes one audit entry per batch naming the persons stored.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ImportRepository: Send + Sync {
    /// Stores the persons of `batch` that can be stored, in **one atomic write**, and says per person what
    /// happened ([`ImportOutcome`], one per write, same order). Records are taken in order, each checked against
    /// the store and the records before it in the batch ([`crate::import_plan`], the rules every store applies): an
    /// id already present → `AlreadyStored`; a merged person whose survivor is not stored → `SurvivorMissing`; a
    /// `personRef` held by another person → `PersonRefTaken`; a reference held by another live person →
    /// `ReferenceTaken`; a dedup key held by another live person → stored without it
    /// (`Imported { duplicate_of: Some(..) }`).
    ///
    /// The store raises its `personRef` sequence to at least the largest kept `personRef` of the batch, then
    /// assigns the next ones to the writes with `assign_ref`, so later creates never reuse an imported number.
    /// Keys, dedup keys and references are stored as a create stores them (live persons only). `audit` is
    /// appended with `person_ids` set to the persons stored (nothing is appended when none was).
    ///
    /// Stores that cannot write a batch atomically (DynamoDB) write each person atomically (the person with its
    /// keys, dedup key, references and `personRef`), deciding the batch in the same order; a failure part-way
    /// leaves some of the batch's persons stored, each whole, and no audit entry for them. Running the batch again
    /// reports those as `AlreadyStored` and stores the rest, so a resumed import never writes a person twice.
    ///
    /// # Errors
    /// [`StoreError`] only for store failures; then nothing of the batch is written (a store writing each person
    /// atomically: some of its persons may be, see above).
    async fn import_persons(
        &self,
        batch: Vec<ImportWrite>,
        audit: AuditEntry,
    ) -> Result<Vec<ImportOutcome>, StoreError>;

    /// Makes the search keys of every person imported so far findable, and returns how many keys it indexed. A
    /// store may index an imported person's keys with the person (then this does nothing and returns 0) or, to
    /// load faster, keep them aside and index them all here at once, in key order (SQLite, PostgreSQL): until
    /// then imported persons are read, updated and found by reference and dedup key, but not by search. Keys of a
    /// person changed since its import are not indexed (the change indexed its own). Idempotent; an importer
    /// calls it once its batches are in, and again after an interrupted import.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails; then nothing was indexed and calling it again is safe.
    async fn finish_import(&self) -> Result<u64, StoreError>;
}

/// The named statements a store runs (SPEC §10 query visibility), for `GET /admin/queries`.
pub trait QueryCatalogue: Send + Sync {
    /// Which kind of store (`sqlite`, `postgres`, `dynamodb`, `memory`).
    fn store_kind(&self) -> &'static str;

    /// Every statement the store can run, each under a stable name; executions are reported to the
    /// [`crate::storage::QueryObserver`] the store was opened with, under the same names.
    fn statements(&self) -> &'static [crate::storage::NamedQuery];
}

/// A store that implements every port (what the contract suite and [`Repositories::from_store`] take).
pub trait Store:
    PersonRepository
    + DocumentRepository
    + AuditLog
    + ReportingRepository
    + RelayRepository
    + ImportRepository
    + QueryCatalogue
{
}

impl<
    S: PersonRepository
        + DocumentRepository
        + AuditLog
        + ReportingRepository
        + RelayRepository
        + ImportRepository
        + QueryCatalogue
        + ?Sized,
> Store for S
{
}

/// Everything a store provides, as shared trait objects; built once by the composition root.
#[derive(Clone)]
pub struct Repositories {
    /// Persons, events, history, idempotency.
    pub persons: Arc<dyn PersonRepository>,
    /// Equality and extended documents.
    pub documents: Arc<dyn DocumentRepository>,
    /// The audit trail.
    pub audit: Arc<dyn AuditLog>,
    /// Bulk reads for reporting.
    pub reporting: Arc<dyn ReportingRepository>,
    /// The event relay's lease and position.
    pub relay: Arc<dyn RelayRepository>,
    /// Bulk import (migrations).
    pub import: Arc<dyn ImportRepository>,
    /// The store's named statements.
    pub catalogue: Arc<dyn QueryCatalogue>,
}

impl Repositories {
    /// All ports from one store that implements them all.
    pub fn from_store<S: Store + 'static>(store: Arc<S>) -> Self {
        Self {
            persons: store.clone(),
            documents: store.clone(),
            audit: store.clone(),
            reporting: store.clone(),
            relay: store.clone(),
            import: store.clone(),
            catalogue: store,
        }
    }

    /// All ports from a store already behind a trait object.
    #[must_use]
    pub fn from_dyn(store: Arc<dyn Store>) -> Self {
        Self {
            persons: upcast_persons(store.clone()),
            documents: upcast_documents(store.clone()),
            audit: upcast_audit(store.clone()),
            reporting: upcast_reporting(store.clone()),
            relay: upcast_relay(store.clone()),
            import: upcast_import(store.clone()),
            catalogue: upcast_catalogue(store),
        }
    }
}

fn upcast_persons(store: Arc<dyn Store>) -> Arc<dyn PersonRepository> {
    store
}

fn upcast_documents(store: Arc<dyn Store>) -> Arc<dyn DocumentRepository> {
    store
}

fn upcast_audit(store: Arc<dyn Store>) -> Arc<dyn AuditLog> {
    store
}

fn upcast_reporting(store: Arc<dyn Store>) -> Arc<dyn ReportingRepository> {
    store
}

fn upcast_relay(store: Arc<dyn Store>) -> Arc<dyn RelayRepository> {
    store
}

fn upcast_import(store: Arc<dyn Store>) -> Arc<dyn ImportRepository> {
    store
}

fn upcast_catalogue(store: Arc<dyn Store>) -> Arc<dyn QueryCatalogue> {
    store
}

impl std::fmt::Debug for Repositories {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repositories").finish_non_exhaustive()
    }
}

/// The current time (injected so tests can fix it).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Clock: Send + Sync {
    /// Now, in UTC.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock fixed at one instant (tests, examples).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// New unique identifiers for persons and events.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait IdGenerator: Send + Sync {
    /// A new, never-nil UUID.
    fn new_id(&self) -> Uuid;
}

/// Random version-4 UUIDs.
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomIds;

impl IdGenerator for RandomIds {
    fn new_id(&self) -> Uuid {
        Uuid::new_v4()
    }
}

/// A shared repository handle.
pub type SharedRepository = Arc<dyn PersonRepository>;
