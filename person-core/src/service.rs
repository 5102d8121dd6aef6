//! `PersonService`: the use cases, and the only place business rules run.
//!
//! It parses and validates input, assigns ids, versions, timestamps and events, and asks the repository for one
//! atomic write per change. It knows nothing of HTTP or of any particular store.

use std::sync::Arc;

use chrono::NaiveDate;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::event::{
    Actor, EventData, EventType, EventUser, EventVersion, FeedEntry, HistoryEntry, PersonEvent, SOURCE_DOMAIN,
    SOURCE_SYSTEM,
};
use crate::patch::{PatchError, apply_patch, changed_data};
use crate::person::{Person, PersonId, PersonRef, PersonStatus};
use crate::ports::{
    Clock, IdGenerator, IdempotencyKey, InsertError, NewPersonWrite, PersonRepository, PersonWrite, StoreError,
    UpdateError,
};
use crate::validate::{self, BodyError, ValidationErrors};

/// Longest accepted `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// Largest page of the event feed.
pub const MAX_FEED_LIMIT: u32 = 1000;

/// Who is asking, and the correlation id that ties logs, events and audit records together.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The caller.
    pub actor: Actor,
    /// The request's `x-correlation-id`.
    pub correlation_id: String,
}

/// Options of a create.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// `v1` or `v2` envelope (the endpoint used).
    pub event_version: EventVersion,
    /// The request's `Idempotency-Key` header.
    pub idempotency_key: Option<String>,
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
    repo: Arc<dyn PersonRepository>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
}

impl PersonService {
    /// Builds the service over a repository, a clock and an id generator.
    #[must_use]
    pub fn new(repo: Arc<dyn PersonRepository>, clock: Arc<dyn Clock>, ids: Arc<dyn IdGenerator>) -> Self {
        Self { repo, clock, ids }
    }

    /// Today's date (UTC), as the service sees it: computed values like `isAMinor` use it.
    #[must_use]
    pub fn today(&self) -> NaiveDate {
        self.clock.now().date_naive()
    }

    /// Creates a person from a JSON body.
    ///
    /// With an idempotency key, the same caller sending the same key and request again gets the original
    /// person back (`replayed`), and a different request under the same key is refused; exactly one person is
    /// created however many times the request is retried, concurrently or not.
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
        let id = match draft.id.and_then(PersonId::new) {
            Some(id) => id,
            None => self.new_person_id(),
        };
        let person = Person::from_fields(id, PersonRef(0), fields, 0, now);
        let reason = Some(person.reason.clone());
        let event = self.event(ctx, EventType::PersonCreatedEvent, options.event_version, id, Map::new(), Map::new());
        let history = history_entry(ctx, &event, 0, reason);
        let write = NewPersonWrite::new(person, event, history, idempotency.clone());
        match self.repo.insert(write).await {
            Ok(person) => Ok(Created { person, replayed: false }),
            Err(InsertError::DuplicateId) => Err(CreatePersonError::DuplicateId(id)),
            Err(InsertError::IdempotencyKeyTaken) => match &idempotency {
                // A concurrent retry with the same key won the race: answer as it did.
                Some(key) => self.replay(key).await?.ok_or_else(|| {
                    CreatePersonError::Store(StoreError::unexpected("idempotency key reported taken but not found"))
                }),
                None => Err(StoreError::unexpected("idempotency conflict without a key").into()),
            },
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
        match self.repo.find_idempotent_create(&key.key).await? {
            None => Ok(None),
            Some(record) if record.fingerprint == key.fingerprint => {
                Ok(Some(Created { person: record.person, replayed: true }))
            }
            Some(_) => Err(CreatePersonError::IdempotencyKeyReused),
        }
    }

    fn new_person_id(&self) -> PersonId {
        loop {
            if let Some(id) = PersonId::new(self.ids.new_id()) {
                return id;
            }
        }
    }

    /// Reads a live person.
    ///
    /// # Errors
    /// [`LookupError::NotFound`], [`LookupError::Deleted`], [`LookupError::Merged`] or a store failure.
    pub async fn get(&self, id: PersonId) -> Result<Person, LookupError> {
        let person = self.repo.get(id).await?.ok_or(LookupError::NotFound)?;
        match person.status {
            PersonStatus::Active => Ok(person),
            PersonStatus::Deleted => Err(LookupError::Deleted),
            PersonStatus::Merged { into } => Err(LookupError::Merged { into }),
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
        let current = self.get(id).await?;
        if current.version_number != expected_version {
            return Err(UpdatePersonError::VersionConflict { current: current.version_number });
        }
        let now = self.clock.now();
        let outcome = apply_patch(&current, body, now.date_naive())?;
        let mut fields = outcome.fields;
        fields.reason = current.reason.clone();
        let next = Person::from_fields(id, current.person_ref, fields, current.version_number + 1, current.created_at);
        let (old_data, new_data) = changed_data(&current, &next);
        if new_data.is_empty() {
            return Ok(Updated { person: current, changed: false });
        }
        let mut next = next;
        next.last_modified = now;
        let event = self.event(ctx, EventType::PersonUpdatedEvent, EventVersion::V1, id, old_data, new_data);
        let history = history_entry(ctx, &event, next.version_number, outcome.change_reason);
        self.write(next.clone(), expected_version, event, history).await?;
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
        let current = self.get(id).await?;
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
        self.write(next, current.version_number, event, history).await
    }

    async fn write(
        &self,
        person: Person,
        expected_version: u64,
        event: PersonEvent,
        history: HistoryEntry,
    ) -> Result<(), UpdatePersonError> {
        match self.repo.update(PersonWrite { person, expected_version, event, history }).await {
            Ok(()) => Ok(()),
            Err(UpdateError::NotFound) => Err(LookupError::NotFound.into()),
            Err(UpdateError::VersionConflict { current }) => Err(UpdatePersonError::VersionConflict { current }),
            Err(UpdateError::Store(e)) => Err(e.into()),
        }
    }

    /// Every version of a person (in any state), oldest first.
    ///
    /// # Errors
    /// [`LookupError::NotFound`] for an unknown id, or a store failure.
    pub async fn history(&self, id: PersonId) -> Result<Vec<HistoryEntry>, LookupError> {
        if self.repo.get(id).await?.is_none() {
            return Err(LookupError::NotFound);
        }
        Ok(self.repo.history(id).await?)
    }

    /// Events after position `after`, at most `limit` (clamped to 1..=[`MAX_FEED_LIMIT`]).
    ///
    /// # Errors
    /// A store failure.
    pub async fn events(&self, after: u64, limit: u32) -> Result<FeedPage, StoreError> {
        let entries = self.repo.events_after(after, limit.clamp(1, MAX_FEED_LIMIT)).await?;
        let next_after = entries.last().map_or(after, |e| e.position);
        Ok(FeedPage { entries, next_after })
    }

    /// Checks the store answers (readiness).
    ///
    /// # Errors
    /// The store's failure.
    pub async fn ready(&self) -> Result<(), StoreError> {
        self.repo.ping().await
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
