//! `PersonService`: the use cases, and the only place business rules run.
//!
//! It parses and validates input, assigns ids, versions, timestamps, events and search keys, and asks the
//! repository for one atomic write per change. It knows nothing of HTTP or of any particular store.
//!
//! Search, match, duplicate prevention and merge (SPEC §6) live in the `search` and `merge` submodules.

use std::sync::Arc;

use chrono::NaiveDate;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::access::{Permissions, ServiceArea};
use crate::audit::{AuditAction, AuditEntry, AuditOutcome};
use crate::documents::{DocumentBody, DocumentKind, DocumentWrite, MAX_EXTENDED_BYTES, StoredDocument};
use crate::equality::{EqualityData, validate_equality};
use crate::event::{
    Actor, EventData, EventType, EventUser, EventVersion, FeedEntry, HistoryEntry, PersonEvent, SOURCE_DOMAIN,
    SOURCE_SYSTEM,
};
use crate::matching::{KeySource, MatchProfile, person_keys};
use crate::patch::{PatchError, apply_patch, changed_data};
use crate::person::{Person, PersonId, PersonRef, PersonStatus};
use crate::ports::{
    AuditRecord, Clock, DocumentWriteError, IdGenerator, IdempotencyKey, InsertError, NewPersonWrite, PersonWrite,
    Repositories, StoreError, UpdateError,
};
use crate::validate::{self, BodyError, ValidationErrors};

pub mod import;
mod merge;
mod references;
pub mod reporting;
mod search;

pub use import::{ImportResult, PreparedImport};
pub use merge::MergeError;
pub use references::ReferenceRequest;
pub use search::{
    DEFAULT_MATCH_COUNT, DEFAULT_SEARCH_LIMIT, DuplicateCandidate, MAX_MATCH_COUNT, MAX_SEARCH_LIMIT, MIN_PREFIX_CHARS,
    MatchCandidate, MatchError, PersonKeys, SearchError, SearchHit, SearchPage, SearchQuery, codes as search_codes,
};

/// Longest accepted `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// Largest page of the event feed.
pub const MAX_FEED_LIMIT: u32 = 1000;

/// Largest page of an access log.
pub const MAX_ACCESS_LOG_LIMIT: u32 = 1000;

/// Who is asking, with what permissions and why, and the correlation id that ties logs, events and audit
/// records together.
#[derive(Clone)]
pub struct RequestContext {
    /// The caller.
    pub actor: Actor,
    /// What the caller may do.
    pub permissions: Permissions,
    /// The request's `x-correlation-id`.
    pub correlation_id: String,
    /// The purpose declared in `x-purpose`, recorded in the audit trail.
    pub purpose: Option<String>,
}

impl RequestContext {
    /// A context with no declared purpose.
    #[must_use]
    pub fn new(actor: Actor, permissions: Permissions, correlation_id: impl Into<String>) -> Self {
        Self { actor, permissions, correlation_id: correlation_id.into(), purpose: None }
    }
}

impl std::fmt::Debug for RequestContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The purpose is free text from the caller and may name the person concerned.
        f.debug_struct("RequestContext")
            .field("actor", &self.actor)
            .field("permissions", &self.permissions)
            .field("correlation_id", &self.correlation_id)
            .field("purpose", &self.purpose.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Options of a create.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// `v1` or `v2` envelope (the endpoint used).
    pub event_version: EventVersion,
    /// The request's `Idempotency-Key` header.
    pub idempotency_key: Option<String>,
    /// `?allowDuplicate=true`: create the person even when a `certain` match is recorded (the body's `reason`
    /// says why). The person then holds no dedup key.
    pub allow_duplicate: bool,
}

/// The result of a create.
#[derive(Debug, Clone)]
pub struct Created {
    /// The person as created.
    pub person: Person,
    /// True when this answer replays an earlier create with the same idempotency key.
    pub replayed: bool,
}

/// Why a create failed.
#[derive(Debug, thiserror::Error)]
pub enum CreatePersonError {
    /// Not a usable body (→ 400).
    #[error(transparent)]
    Body(#[from] BodyError),
    /// Invalid fields (→ 422).
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    /// The client-supplied id is taken (→ 409).
    #[error("a person with id {0} already exists")]
    DuplicateId(PersonId),
    /// The idempotency key was used with a different request (→ 422).
    #[error("the idempotency key was already used with a different request")]
    IdempotencyKeyReused,
    /// The idempotency key is empty or too long (→ 400).
    #[error("the idempotency key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} characters")]
    InvalidIdempotencyKey,
    /// The person is already recorded: a `certain` match, or a concurrent create of the same person won the race
    /// (→ 409 `duplicate-person`). Retry with `allow_duplicate` if it really is another person.
    #[error("the person is already recorded")]
    Duplicate {
        /// The persons it duplicates, most likely first (empty when the only one is restricted and the caller
        /// may not see it).
        candidates: Vec<DuplicateCandidate>,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a person cannot be read or changed in its current state.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// Never existed (→ 404).
    #[error("person not found")]
    NotFound,
    /// Soft-deleted (→ 410).
    #[error("person was deleted")]
    Deleted,
    /// Merged into another person (→ 308 to the survivor).
    #[error("person was merged into {into}")]
    Merged {
        /// The survivor.
        into: PersonId,
    },
    /// Processing of the person's data is restricted and the caller is not `admin` (→ 403).
    #[error("processing of this person's data is restricted")]
    Restricted,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why an update failed.
#[derive(Debug, thiserror::Error)]
pub enum UpdatePersonError {
    /// The person cannot be changed in its current state.
    #[error(transparent)]
    Lookup(#[from] LookupError),
    /// `If-Match` names another version (→ 409).
    #[error("version conflict: current version is {current}")]
    VersionConflict {
        /// The version currently stored.
        current: u64,
    },
    /// Not a usable patch (→ 400).
    #[error(transparent)]
    Body(#[from] BodyError),
    /// The patched person would be invalid (→ 422).
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    /// The change would make the person an exact duplicate of another live person (→ 409 `duplicate-person`).
    #[error("the change would duplicate another person")]
    Duplicate {
        /// The person(s) it would duplicate.
        candidates: Vec<DuplicateCandidate>,
    },
    /// Another live person holds the reference (→ 409 `reference-taken`).
    #[error("the reference {reference} belongs to another person")]
    ReferenceTaken {
        /// The reference.
        reference: crate::reference::CrossReference,
        /// Its owner, when the caller may see that person (`None`: restricted).
        owner: Option<PersonId>,
    },
    /// The person does not hold the reference to remove (→ 404).
    #[error("the person holds no such reference")]
    ReferenceNotHeld,
}

impl From<StoreError> for UpdatePersonError {
    fn from(e: StoreError) -> Self {
        Self::Lookup(LookupError::Store(e))
    }
}

impl From<PatchError> for UpdatePersonError {
    fn from(e: PatchError) -> Self {
        match e {
            PatchError::Body(b) => Self::Body(b),
            PatchError::Invalid(v) => Self::Invalid(v),
        }
    }
}

/// The result of an update.
#[derive(Debug, Clone)]
pub struct Updated {
    /// The person after the update (unchanged when `changed` is false).
    pub person: Person,
    /// False when the patch changed nothing (no new version, no event).
    pub changed: bool,
}

/// A page of the event feed.
#[derive(Debug, Clone)]
pub struct FeedPage {
    /// Events in commit order.
    pub entries: Vec<FeedEntry>,
    /// The position to pass as `after` to read on (the last position returned, or the given one).
    pub next_after: u64,
}

/// The person use cases.
#[derive(Clone)]
pub struct PersonService {
    repos: Repositories,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
}

impl PersonService {
    /// Builds the service over the store's ports, a clock and an id generator.
    #[must_use]
    pub fn new(repos: Repositories, clock: Arc<dyn Clock>, ids: Arc<dyn IdGenerator>) -> Self {
        Self { repos, clock, ids }
    }

    /// Today's date (UTC), as the service sees it: computed values like `isAMinor` use it.
    #[must_use]
    pub fn today(&self) -> NaiveDate {
        self.clock.now().date_naive()
    }

    /// The store's named statements (query visibility, SPEC §10): which store it is and what it can run.
    #[must_use]
    pub fn query_catalogue(&self) -> &dyn crate::ports::QueryCatalogue {
        self.repos.catalogue.as_ref()
    }

    /// Creates a person from a JSON body.
    ///
    /// With an idempotency key, the same caller sending the same key and request again gets the original
    /// person back (`replayed`), and a different request under the same key is refused; exactly one person is
    /// created however many times the request is retried, concurrently or not.
    ///
    /// Unless `options.allow_duplicate`, the person is matched against those recorded first, and a `certain`
    /// match is refused as [`CreatePersonError::Duplicate`]. The check is race-safe: the write carries the
    /// person's dedup key, which the store keeps unique among live persons, so of concurrent creates of the same
    /// person exactly one succeeds and the others are `Duplicate` naming it.
    ///
    /// # Errors
    /// See [`CreatePersonError`].
    pub async fn create(
        &self,
        ctx: &RequestContext,
        body: &[u8],
        options: CreateOptions,
    ) -> Result<Created, CreatePersonError> {
        let idempotency = match &options.idempotency_key {
            None => None,
            Some(key) => Some(self.idempotency_key(ctx, key, body, options.event_version)?),
        };
        if let Some(key) = &idempotency
            && let Some(replay) = self.replay(key).await?
        {
            return Ok(replay);
        }

        let draft = validate::parse_draft(body)?;
        let now = self.clock.now();
        // A nil id is a field error like any other, reported together with the rest (SPEC §4).
        let fields = match (validate::validate(&draft, now.date_naive()), draft.id.is_some_and(|id| id.is_nil())) {
            (Ok(fields), false) => fields,
            (result, nil_id) => {
                let mut errors = result.err().unwrap_or_default();
                if nil_id {
                    errors.push("/id", validate::codes::INVALID_ID, "id must not be the nil UUID");
                }
                return Err(errors.into());
            }
        };
        let supplied_id = draft.id.and_then(PersonId::new);
        let id = supplied_id.unwrap_or_else(|| self.new_person_id());
        let person = Person::from_fields(id, PersonRef(0), fields, 0, now);
        let profile = MatchProfile::from_person(&person, None);
        if !options.allow_duplicate {
            let candidates = self.certain_duplicates(&profile, None).await?;
            // Resending a create with its own id is answered as such, not as a duplicate of itself.
            if supplied_id.is_some_and(|id| candidates.iter().any(|c| c.id == id)) {
                return Err(CreatePersonError::DuplicateId(id));
            }
            if !candidates.is_empty() {
                return self.refuse_duplicate_create(ctx, idempotency.as_ref(), candidates).await;
            }
        }
        let keys = PersonKeys::of(&person, None);
        let dedup = if options.allow_duplicate { None } else { keys.dedup };
        let reason = Some(person.reason.clone());
        let event = self.event(ctx, EventType::PersonCreatedEvent, options.event_version, id, Map::new(), Map::new());
        let history = history_entry(ctx, &event, 0, reason);
        let audit = self.audit_entry(ctx, AuditAction::PersonCreate, vec![id], None, AuditOutcome::Success);
        let write = NewPersonWrite::new(person, event, history, audit, idempotency.clone())
            .with_search_keys(keys.person, dedup);
        match self.repos.persons.insert(write).await {
            Ok(person) => Ok(Created { person, replayed: false }),
            Err(InsertError::DuplicateId) => Err(CreatePersonError::DuplicateId(id)),
            Err(InsertError::DuplicatePerson { existing }) => {
                // A concurrent create of the same person committed first.
                let candidates = self.duplicate_of(ctx, &profile, existing).await?;
                self.refuse_duplicate_create(ctx, idempotency.as_ref(), candidates).await
            }
            Err(InsertError::IdempotencyKeyTaken) => match &idempotency {
                // A concurrent retry with the same key won the race: answer as it did.
                Some(key) => self.replay(key).await?.ok_or_else(|| {
                    CreatePersonError::Store(StoreError::unexpected("idempotency key reported taken but not found"))
                }),
                None => Err(StoreError::unexpected("idempotency conflict without a key").into()),
            },
            // A create carries no references (they are added through `/references`).
            Err(InsertError::ReferenceTaken { .. }) => {
                Err(StoreError::unexpected("a create without references was refused for a reference").into())
            }
            Err(InsertError::Store(e)) => Err(e.into()),
        }
    }

    fn idempotency_key(
        &self,
        ctx: &RequestContext,
        key: &str,
        body: &[u8],
        version: EventVersion,
    ) -> Result<IdempotencyKey, CreatePersonError> {
        if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LEN {
            return Err(CreatePersonError::InvalidIdempotencyKey);
        }
        // The fingerprint is over the canonical JSON (object keys sorted) so that a retry serialising its keys
        // in another order is still "the same request"; a body that is not JSON is hashed as bytes.
        let canonical =
            serde_json::from_slice::<Value>(body).map_or_else(|_| body.to_vec(), |v| v.to_string().into_bytes());
        let mut hasher = Sha256::new();
        hasher.update(format!("{version:?}\n").as_bytes());
        hasher.update(&canonical);
        let fingerprint = hex(&hasher.finalize());
        Ok(IdempotencyKey { key: format!("{}:{key}", ctx.actor.subject), fingerprint })
    }

    async fn replay(&self, key: &IdempotencyKey) -> Result<Option<Created>, CreatePersonError> {
        match self.repos.persons.find_idempotent_create(&key.key).await? {
            None => Ok(None),
            Some(record) if record.fingerprint == key.fingerprint => {
                Ok(Some(Created { person: record.person, replayed: true }))
            }
            Some(_) => Err(CreatePersonError::IdempotencyKeyReused),
        }
    }

    /// Answers a create that duplicates recorded persons: a retry of a create that went through under the same
    /// idempotency key replays it; otherwise the refusal (which discloses the candidates) is audited.
    async fn refuse_duplicate_create(
        &self,
        ctx: &RequestContext,
        idempotency: Option<&IdempotencyKey>,
        candidates: Vec<DuplicateCandidate>,
    ) -> Result<Created, CreatePersonError> {
        if let Some(key) = idempotency
            && let Some(replay) = self.replay(key).await?
        {
            return Ok(replay);
        }
        self.audit_disclosure(ctx, candidates.iter().map(|c| c.id).collect(), "duplicate-check").await?;
        Err(CreatePersonError::Duplicate { candidates })
    }

    fn new_person_id(&self) -> PersonId {
        loop {
            if let Some(id) = PersonId::new(self.ids.new_id()) {
                return id;
            }
        }
    }

    /// Reads a live person, and records the read in the audit trail.
    ///
    /// # Errors
    /// [`LookupError::NotFound`], [`LookupError::Deleted`], [`LookupError::Merged`], [`LookupError::Restricted`]
    /// or a store failure (including failing to record the read: an unaudited read is not served).
    pub async fn get(&self, ctx: &RequestContext, id: PersonId) -> Result<Person, LookupError> {
        let result = self.load(ctx, id).await;
        self.audit_lookup(ctx, AuditAction::PersonRead, id, None, &result).await?;
        result
    }

    /// A live person the caller may act on (restricted persons only for `admin`); not audited.
    async fn load(&self, ctx: &RequestContext, id: PersonId) -> Result<Person, LookupError> {
        let person = self.repos.persons.get(id).await?.ok_or(LookupError::NotFound)?;
        match person.status {
            PersonStatus::Active if person.processing_restricted && !ctx.permissions.is_admin() => {
                Err(LookupError::Restricted)
            }
            PersonStatus::Active => Ok(person),
            PersonStatus::Deleted => Err(LookupError::Deleted),
            PersonStatus::Merged { into } => Err(LookupError::Merged { into }),
        }
    }

    /// Records the outcome of an audited action on one person; returns the store failure to fail the request.
    async fn audit_lookup<T>(
        &self,
        ctx: &RequestContext,
        action: AuditAction,
        id: PersonId,
        detail: Option<String>,
        result: &Result<T, LookupError>,
    ) -> Result<(), LookupError> {
        let outcome = match result {
            Ok(_) => AuditOutcome::Success,
            Err(LookupError::Restricted) => AuditOutcome::Denied,
            Err(LookupError::Store(_)) => return Ok(()),
            Err(_) => AuditOutcome::NotFound,
        };
        let entry = self.audit_entry(ctx, action, vec![id], detail, outcome);
        self.repos.audit.append(entry).await.map_err(LookupError::Store)
    }

    /// Records that the caller was refused an action on a person for lack of permission (the HTTP layer checks
    /// endpoint permissions; this keeps the refusal in the person's access log).
    ///
    /// # Errors
    /// A store failure.
    pub async fn record_denied(
        &self,
        ctx: &RequestContext,
        action: AuditAction,
        id: Option<PersonId>,
        detail: Option<String>,
    ) -> Result<(), StoreError> {
        let entry = self.audit_entry(ctx, action, id.into_iter().collect(), detail, AuditOutcome::Denied);
        self.repos.audit.append(entry).await
    }

    fn audit_entry(
        &self,
        ctx: &RequestContext,
        action: AuditAction,
        person_ids: Vec<PersonId>,
        detail: Option<String>,
        outcome: AuditOutcome,
    ) -> AuditEntry {
        AuditEntry {
            id: self.ids.new_id(),
            at: self.clock.now(),
            actor: ctx.actor.clone(),
            action,
            person_ids,
            detail,
            purpose: ctx.purpose.clone(),
            correlation_id: ctx.correlation_id.clone(),
            outcome,
        }
    }

    /// Applies a merge patch to a live person whose version is `expected_version`.
    ///
    /// A patch that changes nothing stores nothing and publishes nothing.
    ///
    /// # Errors
    /// See [`UpdatePersonError`]; of concurrent updates with the same expected version exactly one succeeds.
    pub async fn update(
        &self,
        ctx: &RequestContext,
        id: PersonId,
        expected_version: u64,
        body: &[u8],
    ) -> Result<Updated, UpdatePersonError> {
        let current = self.load(ctx, id).await?;
        if current.version_number != expected_version {
            return Err(UpdatePersonError::VersionConflict { current: current.version_number });
        }
        let now = self.clock.now();
        let outcome = apply_patch(&current, body, now.date_naive())?;
        let mut fields = outcome.fields;
        fields.reason = current.reason.clone();
        // `with_fields` keeps what a patch cannot change (status, the processing restriction …).
        let next = Person { version_number: current.version_number + 1, ..current.with_fields(fields) };
        let (old_data, new_data) = changed_data(&current, &next);
        if new_data.is_empty() {
            return Ok(Updated { person: current, changed: false });
        }
        let mut next = next;
        next.last_modified = now;
        let event = self.event(ctx, EventType::PersonUpdatedEvent, EventVersion::V1, id, old_data, new_data);
        let history = history_entry(ctx, &event, next.version_number, outcome.change_reason);
        let audit = self.audit_entry(ctx, AuditAction::PersonUpdate, vec![id], None, AuditOutcome::Success);
        let write = person_write(&current, next.clone(), event, history, audit);
        self.write(ctx, &current, write).await?;
        Ok(Updated { person: next, changed: true })
    }

    /// Soft-deletes a live person (a tombstone: reads answer 410, history is kept).
    ///
    /// # Errors
    /// Lookup errors, [`UpdatePersonError::VersionConflict`] when `expected_version` is given and stale.
    pub async fn delete(
        &self,
        ctx: &RequestContext,
        id: PersonId,
        expected_version: Option<u64>,
        reason: Option<String>,
    ) -> Result<(), UpdatePersonError> {
        let current = self.load(ctx, id).await?;
        if let Some(expected) = expected_version
            && expected != current.version_number
        {
            return Err(UpdatePersonError::VersionConflict { current: current.version_number });
        }
        let mut next = current.clone();
        next.status = PersonStatus::Deleted;
        next.version_number += 1;
        next.last_modified = self.clock.now();
        let old_data = to_map(&current);
        let event = self.event(ctx, EventType::PersonDeletedEvent, EventVersion::V1, id, old_data, Map::new());
        let history = history_entry(ctx, &event, next.version_number, reason);
        let audit = self.audit_entry(ctx, AuditAction::PersonDelete, vec![id], None, AuditOutcome::Success);
        let write = person_write(&current, next, event, history, audit);
        self.write(ctx, &current, write).await
    }

    /// Stores a change of `current` (built by [`person_write`]).
    ///
    /// A change that leaves the person's identity (its dedup key) as it was never fails as a duplicate: when the
    /// store finds that key held by another person, this person was created as an allowed duplicate of it (or
    /// before keys existed), so it is written again without a dedup key, as it was stored.
    async fn write(&self, ctx: &RequestContext, current: &Person, write: PersonWrite) -> Result<(), UpdatePersonError> {
        let identity_kept = write.dedup_key.is_some() && write.dedup_key == PersonKeys::of(current, None).dedup;
        let mut result = self.repos.persons.update(write.clone()).await;
        if identity_kept && matches!(result, Err(UpdateError::DuplicatePerson { .. })) {
            result = self.repos.persons.update(PersonWrite { dedup_key: None, ..write.clone() }).await;
        }
        match result {
            Ok(()) => Ok(()),
            Err(UpdateError::NotFound) => Err(LookupError::NotFound.into()),
            Err(UpdateError::VersionConflict { current }) => Err(UpdatePersonError::VersionConflict { current }),
            Err(UpdateError::DuplicatePerson { existing }) => {
                let profile = MatchProfile::from_person(&write.person, None);
                let candidates = self.duplicate_of(ctx, &profile, existing).await?;
                self.audit_disclosure(ctx, candidates.iter().map(|c| c.id).collect(), "duplicate-check").await?;
                Err(UpdatePersonError::Duplicate { candidates })
            }
            Err(UpdateError::ReferenceTaken { reference, owner }) => {
                let owner = self.visible(ctx, owner).await?.map(|p| p.id);
                self.audit_disclosure(ctx, owner.into_iter().collect(), "reference-check").await?;
                Err(UpdatePersonError::ReferenceTaken { reference, owner })
            }
            Err(UpdateError::Store(e)) => Err(e.into()),
        }
    }

    /// Every version of a person (in any state), oldest first; the read is audited.
    ///
    /// # Errors
    /// [`LookupError::NotFound`] for an unknown id, [`LookupError::Restricted`] for a restricted person and a
    /// caller without `admin`, or a store failure.
    pub async fn history(&self, ctx: &RequestContext, id: PersonId) -> Result<Vec<HistoryEntry>, LookupError> {
        let result = match self.repos.persons.get(id).await? {
            None => Err(LookupError::NotFound),
            Some(p) if p.processing_restricted && !ctx.permissions.is_admin() => Err(LookupError::Restricted),
            Some(_) => self.repos.persons.history(id).await.map_err(LookupError::Store),
        };
        self.audit_lookup(ctx, AuditAction::HistoryRead, id, None, &result).await?;
        result
    }

    /// Events after position `after`, at most `limit` (clamped to 1..=[`MAX_FEED_LIMIT`]).
    ///
    /// Events about persons whose processing is restricted are left out unless the caller is `admin`; the
    /// cursor still moves past them, so followers never re-read a page. Feed reads are not audited one by one:
    /// the feed is read continuously by machines, and every change in it was audited when it was made.
    ///
    /// # Errors
    /// A store failure.
    pub async fn events(&self, ctx: &RequestContext, after: u64, limit: u32) -> Result<FeedPage, StoreError> {
        let mut entries = self.repos.persons.events_after(after, limit.clamp(1, MAX_FEED_LIMIT)).await?;
        let next_after = entries.last().map_or(after, |e| e.position);
        if !ctx.permissions.is_admin() && !entries.is_empty() {
            let mut ids: Vec<PersonId> = entries.iter().map(|e| e.event.entity_id).collect();
            ids.sort();
            ids.dedup();
            let restricted = self.repos.persons.restricted_among(&ids).await?;
            if !restricted.is_empty() {
                entries.retain(|e| !restricted.contains(&e.event.entity_id));
            }
        }
        Ok(FeedPage { entries, next_after })
    }

    /// Sets or lifts the restriction of processing of a person (`admin` only: the HTTP layer checks it), as a
    /// new version with a `PersonUpdatedEvent`. Setting the value it already has changes nothing.
    ///
    /// # Errors
    /// As for [`Self::update`].
    pub async fn set_restriction(
        &self,
        ctx: &RequestContext,
        id: PersonId,
        restricted: bool,
        expected_version: Option<u64>,
        reason: Option<String>,
    ) -> Result<Updated, UpdatePersonError> {
        let current = self.load(ctx, id).await?;
        if let Some(expected) = expected_version
            && expected != current.version_number
        {
            return Err(UpdatePersonError::VersionConflict { current: current.version_number });
        }
        if current.processing_restricted == restricted {
            return Ok(Updated { person: current, changed: false });
        }
        let mut next = current.clone();
        next.processing_restricted = restricted;
        next.version_number += 1;
        next.last_modified = self.clock.now();
        let (old_data, new_data) = changed_data(&current, &next);
        let event = self.event(ctx, EventType::PersonUpdatedEvent, EventVersion::V1, id, old_data, new_data);
        let history = history_entry(ctx, &event, next.version_number, reason);
        let detail = Some(if restricted { "restricted" } else { "unrestricted" }.to_owned());
        let audit = self.audit_entry(ctx, AuditAction::PersonRestrict, vec![id], detail, AuditOutcome::Success);
        let write = person_write(&current, next.clone(), event, history, audit);
        self.write(ctx, &current, write).await?;
        Ok(Updated { person: next, changed: true })
    }

    /// Reads a person's equality data (audited).
    ///
    /// # Errors
    /// See [`DocumentError`]; [`DocumentError::NotFound`] when none is recorded.
    pub async fn equality(&self, ctx: &RequestContext, id: PersonId) -> Result<StoredDocument, DocumentError> {
        self.read_document(ctx, id, DocumentKind::Equality, AuditAction::EqualityRead).await
    }

    /// Replaces a person's equality data (audited, versioned).
    ///
    /// `expected_version` is the `If-Match`: required once a document exists; without one the write only
    /// succeeds when none exists yet.
    ///
    /// # Errors
    /// See [`DocumentError`].
    pub async fn put_equality(
        &self,
        ctx: &RequestContext,
        id: PersonId,
        expected_version: Option<u64>,
        body: &[u8],
    ) -> Result<StoredDocument, DocumentError> {
        let draft: EqualityData = parse_document(body)?;
        let data = validate_equality(draft)?;
        let kind = DocumentKind::Equality;
        self.write_document(
            ctx,
            id,
            kind,
            expected_version,
            Some(DocumentBody::Equality(data)),
            AuditAction::EqualityWrite,
        )
        .await?
        .ok_or(DocumentError::NotFound)
    }

    /// Reads one service area's extended data for a person (audited).
    ///
    /// # Errors
    /// See [`DocumentError`]; [`DocumentError::NotFound`] when the area holds nothing for the person.
    pub async fn extended(
        &self,
        ctx: &RequestContext,
        id: PersonId,
        area: &ServiceArea,
    ) -> Result<StoredDocument, DocumentError> {
        self.read_document(ctx, id, DocumentKind::Extended(area.clone()), AuditAction::ExtendedRead).await
    }

    /// Replaces one service area's extended data: any JSON object up to 64 KiB (audited, versioned; `If-Match`
    /// as for [`Self::put_equality`]).
    ///
    /// # Errors
    /// See [`DocumentError`].
    pub async fn put_extended(
        &self,
        ctx: &RequestContext,
        id: PersonId,
        area: &ServiceArea,
        expected_version: Option<u64>,
        body: &[u8],
    ) -> Result<StoredDocument, DocumentError> {
        let object = match crate::validate::parse_object(body) {
            Ok(object) => object,
            Err(e) => return Err(DocumentError::Body(e)),
        };
        let size = serde_json::to_vec(&object).map_or(usize::MAX, |v| v.len());
        if size > MAX_EXTENDED_BYTES {
            return Err(DocumentError::TooLarge);
        }
        let kind = DocumentKind::Extended(area.clone());
        self.write_document(
            ctx,
            id,
            kind,
            expected_version,
            Some(DocumentBody::Extended(object)),
            AuditAction::ExtendedWrite,
        )
        .await?
        .ok_or(DocumentError::NotFound)
    }

    /// Deletes one service area's extended data (audited); `If-Match` optional.
    ///
    /// # Errors
    /// See [`DocumentError`]; [`DocumentError::NotFound`] when there is nothing to delete.
    pub async fn delete_extended(
        &self,
        ctx: &RequestContext,
        id: PersonId,
        area: &ServiceArea,
        expected_version: Option<u64>,
    ) -> Result<(), DocumentError> {
        // The person first: an unknown, deleted or restricted person answers as for every other operation, and
        // whether a restricted person holds a document is not revealed.
        self.load(ctx, id).await?;
        let kind = DocumentKind::Extended(area.clone());
        let stored = self.repos.documents.get_document(id, &kind).await?.ok_or(DocumentError::NotFound)?;
        let expected = Some(expected_version.unwrap_or(stored.version));
        self.write_document(ctx, id, kind, expected, None, AuditAction::ExtendedDelete).await.map(|_| ())
    }

    async fn read_document(
        &self,
        ctx: &RequestContext,
        id: PersonId,
        kind: DocumentKind,
        action: AuditAction,
    ) -> Result<StoredDocument, DocumentError> {
        let detail = document_detail(&kind);
        let result = match self.load(ctx, id).await {
            Ok(_) => self.repos.documents.get_document(id, &kind).await.map_err(LookupError::Store),
            Err(e) => Err(e),
        };
        // A store failure is not an outcome of the read (as in `audit_lookup`): nothing is recorded.
        let result = match result {
            Err(LookupError::Store(e)) => return Err(e.into()),
            other => other,
        };
        let found = match &result {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(LookupError::NotFound),
            Err(LookupError::Restricted) => Err(LookupError::Restricted),
            Err(_) => Err(LookupError::NotFound),
        };
        self.audit_lookup(ctx, action, id, detail, &found).await?;
        result?.ok_or(DocumentError::NotFound)
    }

    async fn write_document(
        &self,
        ctx: &RequestContext,
        id: PersonId,
        kind: DocumentKind,
        expected_version: Option<u64>,
        body: Option<DocumentBody>,
        action: AuditAction,
    ) -> Result<Option<StoredDocument>, DocumentError> {
        let person = self.load(ctx, id).await?;
        let current = self.repos.documents.get_document(id, &kind).await?;
        match (&current, expected_version) {
            (Some(_), None) if body.is_some() => return Err(DocumentError::PreconditionRequired),
            (Some(stored), Some(expected)) if stored.version != expected => {
                return Err(DocumentError::VersionConflict { current: Some(stored.version) });
            }
            (None, Some(_)) => return Err(DocumentError::VersionConflict { current: None }),
            _ => {}
        }
        let version = current.as_ref().map_or(0, |c| c.version + 1);
        let new = body.map(|body| StoredDocument {
            person_id: id,
            kind: kind.clone(),
            version,
            body,
            updated_at: self.clock.now(),
            updated_by: ctx.actor.clone(),
        });
        let audit = self.audit_entry(ctx, action, vec![id], document_detail(&kind), AuditOutcome::Success);
        // Equality data carries the NI number, which the person is found by: its keys change with the document.
        let search_keys = match (&kind, &new) {
            (DocumentKind::Equality, Some(StoredDocument { body: DocumentBody::Equality(data), .. })) => {
                Some(equality_keys(&person, data.national_insurance_number.as_deref()))
            }
            (DocumentKind::Equality, _) => Some(Vec::new()),
            (DocumentKind::Extended(_), _) => None,
        };
        let write = DocumentWrite {
            person_id: id,
            kind,
            expected_version: current.as_ref().map(|c| c.version),
            new: new.clone(),
            audit,
            search_keys,
        };
        match self.repos.documents.write_document(write).await {
            Ok(()) => Ok(new),
            Err(DocumentWriteError::VersionConflict { current }) => Err(DocumentError::VersionConflict { current }),
            Err(DocumentWriteError::Store(e)) => Err(e.into()),
        }
    }

    /// The audit entries naming a person, oldest first, after position `after`. Reading the first page
    /// (`after == 0`) is itself audited; later pages are not, so a reader can follow the log to its end.
    /// Works for persons in any state, restricted ones included: information governance needs it most there.
    ///
    /// # Errors
    /// [`LookupError::NotFound`] for an id never stored, or a store failure.
    pub async fn access_log(
        &self,
        ctx: &RequestContext,
        id: PersonId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, LookupError> {
        let result = match self.repos.persons.get(id).await? {
            None => Err(LookupError::NotFound),
            Some(_) => self
                .repos
                .audit
                .entries_for_person(id, after, limit.clamp(1, MAX_ACCESS_LOG_LIMIT))
                .await
                .map_err(LookupError::Store),
        };
        // Only the first page's read is recorded: recording every page would append to the very log being paged,
        // and a reader following it to the end would never get there.
        if after == 0 {
            self.audit_lookup(ctx, AuditAction::AccessLogRead, id, None, &result).await?;
        }
        result
    }

    /// Everything held about a person, for a subject-access request: the record (in any state), its equality
    /// and extended documents, its history and its whole disclosure log. The export itself is audited.
    ///
    /// # Errors
    /// [`LookupError::NotFound`] for an id never stored, or a store failure.
    pub async fn subject_access(&self, ctx: &RequestContext, id: PersonId) -> Result<SubjectAccess, LookupError> {
        let Some(person) = self.repos.persons.get(id).await? else {
            let result: Result<(), LookupError> = Err(LookupError::NotFound);
            self.audit_lookup(ctx, AuditAction::SubjectAccess, id, None, &result).await?;
            return Err(LookupError::NotFound);
        };
        let documents = self.repos.documents.list_documents(id).await?;
        let history = self.repos.persons.history(id).await?;
        let mut disclosures = Vec::new();
        let mut after = 0;
        loop {
            let page = self.repos.audit.entries_for_person(id, after, MAX_ACCESS_LOG_LIMIT).await?;
            let Some(last) = page.last() else { break };
            after = last.position;
            disclosures.extend(page);
        }
        let export = SubjectAccess { person, documents, history, disclosures };
        self.audit_lookup(ctx, AuditAction::SubjectAccess, id, None, &Ok::<_, LookupError>(())).await?;
        Ok(export)
    }

    /// Checks the store answers (readiness).
    ///
    /// # Errors
    /// The store's failure.
    pub async fn ready(&self) -> Result<(), StoreError> {
        self.repos.persons.ping().await
    }

    fn event(
        &self,
        ctx: &RequestContext,
        event_type: EventType,
        version: EventVersion,
        entity_id: PersonId,
        old_data: Map<String, Value>,
        new_data: Map<String, Value>,
    ) -> PersonEvent {
        PersonEvent {
            id: self.ids.new_id(),
            event_type,
            source_domain: SOURCE_DOMAIN.to_owned(),
            source_system: SOURCE_SYSTEM.to_owned(),
            version,
            correlation_id: ctx.correlation_id.clone(),
            date_time: self.clock.now(),
            user: EventUser { name: ctx.actor.name.clone(), email: ctx.actor.email.clone() },
            entity_id,
            event_data: EventData { old_data: Value::Object(old_data), new_data: Value::Object(new_data) },
        }
    }
}

/// Everything held about one person (subject access).
#[derive(Debug, Clone)]
pub struct SubjectAccess {
    /// The record, in whatever state it is.
    pub person: Person,
    /// Equality and extended documents.
    pub documents: Vec<StoredDocument>,
    /// Every version.
    pub history: Vec<HistoryEntry>,
    /// Every audit entry naming the person (its disclosure log).
    pub disclosures: Vec<AuditRecord>,
}

/// Why reading or writing an equality or extended document failed.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// The person cannot be read or changed (404, 410, 308/409, 403).
    #[error(transparent)]
    Lookup(#[from] LookupError),
    /// The person holds no such document (→ 404).
    #[error("no such document")]
    NotFound,
    /// A document exists and the write carried no `If-Match` (→ 428).
    #[error("If-Match is required to replace an existing document")]
    PreconditionRequired,
    /// `If-Match` names another version, or there is no document to match (→ 409).
    #[error("document version conflict")]
    VersionConflict {
        /// The stored version, `None` when there is no document.
        current: Option<u64>,
    },
    /// Not a usable body (→ 400).
    #[error(transparent)]
    Body(#[from] BodyError),
    /// Invalid values (→ 422).
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    /// Over the document size limit (→ 413).
    #[error("the document is larger than {MAX_EXTENDED_BYTES} bytes")]
    TooLarge,
}

impl From<StoreError> for DocumentError {
    fn from(e: StoreError) -> Self {
        Self::Lookup(LookupError::Store(e))
    }
}

/// Parses a JSON document body, naming the field on a type error or unknown key.
fn parse_document<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, DocumentError> {
    let object = crate::validate::parse_object(body)?;
    serde_path_to_error::deserialize::<_, T>(serde_json::Value::Object(object))
        .map_err(|e| DocumentError::Body(crate::validate::body_error_from_path(e.path(), &e.inner().to_string())))
}

fn document_detail(kind: &DocumentKind) -> Option<String> {
    match kind {
        DocumentKind::Equality => None,
        DocumentKind::Extended(area) => Some(format!("area={area}")),
    }
}

fn history_entry(ctx: &RequestContext, event: &PersonEvent, version: u64, reason: Option<String>) -> HistoryEntry {
    HistoryEntry {
        person_id: event.entity_id,
        version_number: version,
        event_type: event.event_type,
        actor: ctx.actor.clone(),
        at: event.date_time,
        reason,
        correlation_id: ctx.correlation_id.clone(),
        old_data: event.event_data.old_data.clone(),
        new_data: event.event_data.new_data.clone(),
        event_id: event.id,
    }
}

/// The write replacing `current` by `next`, with `next`'s search keys (none for a person no longer live).
fn person_write(
    current: &Person,
    next: Person,
    event: PersonEvent,
    history: HistoryEntry,
    audit: AuditEntry,
) -> PersonWrite {
    let keys = PersonKeys::of(&next, None);
    PersonWrite {
        expected_version: current.version_number,
        person: next,
        event,
        history,
        audit,
        search_keys: keys.person,
        dedup_key: keys.dedup,
    }
}

/// The `KeySource::Equality` keys of `person` holding `nino` (none without one).
fn equality_keys(person: &Person, nino: Option<&str>) -> Vec<crate::matching::SearchKey> {
    match nino {
        Some(nino) => person_keys(&MatchProfile::from_person(person, Some(nino)), KeySource::Equality),
        None => Vec::new(),
    }
}

fn to_map(person: &Person) -> Map<String, Value> {
    match serde_json::to_value(person) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests;
