//! Bulk import (`person-api import`, a migration): records in this API's Person JSON (what `person-api export`
//! writes and `GET /persons/{id}` answers) become persons stored exactly as given: their own ids, `personRef`s,
//! versions, timestamps and state.
//!
//! Preparing a record ([`PersonService::prepare_import`]) is pure and synchronous, so a caller can prepare on
//! other threads while the store writes the previous batch; [`PersonService::import_prepared`] then stores a batch
//! in one atomic write through [`crate::ports::ImportRepository`]. The editable fields are validated exactly as a
//! create validates them, so an imported person is one the API could have created; the read-only fields are read
//! here. Nothing of a record reaches a log or an error message: errors name fields, never values.
//!
//! This module knows nothing of files, formats other than the Person JSON, or progress: that is the command's.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value};

use super::{PersonKeys, PersonService, RequestContext};
use crate::audit::{AuditAction, AuditOutcome};
use crate::person::{Person, PersonId, PersonRef, PersonStatus};
use crate::ports::{ImportOutcome, ImportWrite, StoreError};
use crate::reference::CrossReference;
use crate::validate::{self, BodyError, ValidationErrors};

/// Error codes of import-only problems (the editable fields use [`crate::validate::codes`], as a create does).
pub mod codes {
    /// The record is not JSON, or not a JSON object.
    pub const MALFORMED: &str = "malformed_json";
    /// A key the Person JSON does not have.
    pub const UNKNOWN_FIELD: &str = "unknown_field";
    /// A value of the wrong type, an unknown enum value or an out-of-range number.
    pub const INVALID_VALUE: &str = "invalid_value";
}

/// Keys of the Person JSON that only an import may set (identity, version, timestamps, state); a create refuses
/// them. Everything else is validated as a create's body.
pub const IMPORTED_READ_ONLY_KEYS: &[&str] =
    &["id", "personRef", "versionNumber", "createdAt", "lastModified", "status", "processingRestricted", "references"];

/// Keys of a person as shown (`GET /persons/{id}`) that are computed when shown: accepted and ignored.
pub const COMPUTED_KEYS: &[&str] = &["isAMinor", "links"];

/// One record, prepared for the store: the person to write, or why it cannot be.
#[derive(Debug, Clone)]
pub struct PreparedImport {
    id: Option<PersonId>,
    prepared: Result<ImportWrite, ValidationErrors>,
}

impl PreparedImport {
    /// A record that could not be read at all (not JSON, not an object, not mappable from its source format):
    /// reported with `errors`, never stored.
    #[must_use]
    pub fn invalid(id: Option<PersonId>, errors: ValidationErrors) -> Self {
        Self { id, prepared: Err(errors) }
    }

    /// The record's id, when it has a valid one.
    #[must_use]
    pub fn id(&self) -> Option<PersonId> {
        self.id
    }

    /// True when the record can be offered to the store.
    #[must_use]
    pub fn is_valid(&self) -> bool {
        self.prepared.is_ok()
    }

    /// True when the record is valid and carries no `personRef`, so the store will assign one. An importer that
    /// mixes such records with records keeping theirs imports these last: numbers are assigned above every number
    /// kept so far, and a record read later keeping a lower number would find it taken.
    #[must_use]
    pub fn assigns_person_ref(&self) -> bool {
        self.prepared.as_ref().is_ok_and(|write| write.assign_ref)
    }
}

/// What became of one record of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportResult {
    /// Stored, with this `personRef` (its own, or the one the store assigned).
    Imported {
        /// The person.
        id: PersonId,
        /// Its `personRef`.
        person_ref: PersonRef,
        /// A live person with the same identity (names and date of birth) is recorded: this one was stored all the
        /// same, without a dedup key, for staff to merge.
        duplicate_of: Option<PersonId>,
    },
    /// A person with this id is already stored, or came earlier in the batch: nothing written (what makes a
    /// resumed import write nothing twice).
    AlreadyStored {
        /// The person.
        id: PersonId,
    },
    /// The record is a merged person whose survivor is not stored yet: nothing written. Import it again once the
    /// survivor is in (`person-api import` does, after the rest of its input).
    SurvivorMissing {
        /// The record's id.
        id: PersonId,
        /// The person it was merged into.
        survivor: PersonId,
    },
    /// Another person has the record's `personRef`: nothing written.
    PersonRefTaken {
        /// The record's id.
        id: PersonId,
        /// The `personRef` it carried.
        person_ref: PersonRef,
        /// The person holding that `personRef`.
        owner: PersonId,
    },
    /// Another live person holds one of the record's references: nothing written.
    ReferenceTaken {
        /// The record's id.
        id: PersonId,
        /// The reference.
        reference: CrossReference,
        /// The live person holding it.
        owner: PersonId,
    },
    /// The record is not a person the API could have created: nothing written.
    Invalid {
        /// The record's id, when it had a valid one.
        id: Option<PersonId>,
        /// Every problem found (field pointer, code, message), as a create's 422 lists them.
        errors: ValidationErrors,
    },
}

impl ImportResult {
    /// The record's id, when known.
    #[must_use]
    pub fn id(&self) -> Option<PersonId> {
        match self {
            Self::Imported { id, .. }
            | Self::AlreadyStored { id }
            | Self::SurvivorMissing { id, .. }
            | Self::PersonRefTaken { id, .. }
            | Self::ReferenceTaken { id, .. } => Some(*id),
            Self::Invalid { id, .. } => *id,
        }
    }
}

impl PersonService {
    /// Prepares one record in this API's Person JSON for [`Self::import_prepared`]: validates it, builds the
    /// person as it is to be stored and computes its search and dedup keys. Pure and synchronous (it only reads
    /// the clock), so it can run on any thread.
    ///
    /// * `id` is required (a non-nil UUID); `personRef` is optional (a positive integer; absent → the store
    ///   assigns the next one, as a create would); `versionNumber` defaults to 0; `createdAt` and `lastModified`
    ///   (RFC 3339) default to each other, else to now; `status` (`{"state": "deleted"}`,
    ///   `{"state": "merged", "mergedInto": id}`) to live; `processingRestricted` to false; `references` to none.
    /// * `isAMinor`, `links` and tenures' `isActive` are computed and ignored.
    /// * Every other key is validated exactly as a create's body is (`W15`, `W42` …, unknown keys refused).
    #[must_use]
    pub fn prepare_import(&self, record: Map<String, Value>) -> PreparedImport {
        prepare(record, self.clock.now())
    }

    /// Stores a batch of prepared records in one atomic write (the valid ones; a batch of none writes nothing)
    /// with one [`AuditAction::PersonImport`] audit entry naming the persons stored, and says per record, in
    /// order, what became of it. No event and no history entry is written: an import is not a change made
    /// through the API.
    ///
    /// # Errors
    /// A store failure: then nothing of the batch was written.
    pub async fn import_prepared(
        &self,
        ctx: &RequestContext,
        records: Vec<PreparedImport>,
    ) -> Result<Vec<ImportResult>, StoreError> {
        let mut results: Vec<Option<ImportResult>> = Vec::with_capacity(records.len());
        let mut writes = Vec::new();
        let mut offered = Vec::new();
        for (index, record) in records.into_iter().enumerate() {
            match record.prepared {
                Ok(write) => {
                    offered.push((index, write.person.id, write.person.person_ref));
                    writes.push(write);
                    results.push(None);
                }
                Err(errors) => results.push(Some(ImportResult::Invalid { id: record.id, errors })),
            }
        }
        if !writes.is_empty() {
            let audit = self.audit_entry(ctx, AuditAction::PersonImport, Vec::new(), None, AuditOutcome::Success);
            let outcomes = self.repos.import.import_persons(writes, audit).await?;
            if outcomes.len() != offered.len() {
                return Err(StoreError::unexpected(format!(
                    "the store answered {} outcomes for {} persons",
                    outcomes.len(),
                    offered.len()
                )));
            }
            for ((index, id, own_ref), outcome) in offered.into_iter().zip(outcomes) {
                let result = match outcome {
                    ImportOutcome::Imported { person_ref, duplicate_of } => {
                        ImportResult::Imported { id, person_ref, duplicate_of }
                    }
                    ImportOutcome::AlreadyStored => ImportResult::AlreadyStored { id },
                    ImportOutcome::SurvivorMissing { survivor } => ImportResult::SurvivorMissing { id, survivor },
                    ImportOutcome::PersonRefTaken { owner } => {
                        ImportResult::PersonRefTaken { id, person_ref: own_ref, owner }
                    }
                    ImportOutcome::ReferenceTaken { reference, owner } => {
                        ImportResult::ReferenceTaken { id, reference, owner }
                    }
                };
                if let Some(slot) = results.get_mut(index) {
                    *slot = Some(result);
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.ok_or_else(|| StoreError::unexpected("a record of the batch got no outcome")))
            .collect()
    }

    /// Indexes the search keys of every person imported so far ([`crate::ports::ImportRepository::finish_import`]):
    /// call it once the batches are in. Returns how many keys were indexed (0 for stores that index them with each
    /// batch).
    ///
    /// # Errors
    /// A store failure: then nothing was indexed, and calling it again is safe.
    pub async fn finish_import(&self) -> Result<u64, StoreError> {
        self.repos.import.finish_import().await
    }

    /// Prepares and stores a batch of records in this API's Person JSON ([`Self::prepare_import`], then
    /// [`Self::import_prepared`]).
    ///
    /// # Errors
    /// A store failure: then nothing of the batch was written.
    pub async fn import(
        &self,
        ctx: &RequestContext,
        records: Vec<Map<String, Value>>,
    ) -> Result<Vec<ImportResult>, StoreError> {
        let prepared = records.into_iter().map(|record| self.prepare_import(record)).collect();
        self.import_prepared(ctx, prepared).await
    }
}

/// See [`PersonService::prepare_import`].
fn prepare(mut record: Map<String, Value>, now: DateTime<Utc>) -> PreparedImport {
    let mut errors = ValidationErrors::default();
    let id = read_id(record.remove("id"), &mut errors);
    let person_ref = read_person_ref(record.remove("personRef"), &mut errors);
    let version_number = read_version(record.remove("versionNumber"), &mut errors);
    let created_at = read_timestamp(record.remove("createdAt"), "/createdAt", &mut errors);
    let last_modified = read_timestamp(record.remove("lastModified"), "/lastModified", &mut errors);
    let status = read_status(record.remove("status"), id, &mut errors);
    let processing_restricted = read_flag(record.remove("processingRestricted"), &mut errors);
    let references = read_references(record.remove("references"), &mut errors);
    for key in COMPUTED_KEYS {
        record.remove(*key);
    }
    let (created_at, last_modified) = match (created_at, last_modified) {
        (Some(created), Some(modified)) if modified < created => {
            errors.push("/lastModified", validate::codes::DATE_ORDER, "lastModified must not be before createdAt");
            (created, modified)
        }
        (Some(created), Some(modified)) => (created, modified),
        (Some(at), None) | (None, Some(at)) => (at, at),
        (None, None) => (now, now),
    };
    let fields = match validate::draft_from_map(record) {
        Ok(draft) => match validate::validate(&draft, now.date_naive()) {
            Ok(fields) => Some(fields),
            Err(invalid) => {
                for e in invalid.errors() {
                    errors.push(e.field.clone(), &e.code, e.message.clone());
                }
                None
            }
        },
        Err(body) => {
            push_body_error(&body, &mut errors);
            None
        }
    };
    match (id, fields) {
        (Some(id), Some(fields)) if errors.is_empty() => {
            let mut person =
                Person::from_fields(id, person_ref.unwrap_or(PersonRef(0)), fields, version_number, created_at);
            person.last_modified = last_modified;
            person.status = status;
            person.processing_restricted = processing_restricted;
            person.references = references;
            // A person that is not live holds no keys (`PersonKeys::of` answers none for it).
            let keys = PersonKeys::of(&person, None);
            let write = ImportWrite {
                person,
                assign_ref: person_ref.is_none(),
                search_keys: keys.person,
                dedup_key: keys.dedup,
            };
            PreparedImport { id: Some(id), prepared: Ok(write) }
        }
        _ => PreparedImport::invalid(id, errors),
    }
}

/// A structural problem of the editable part, as a field error (a create answers these with a 400).
fn push_body_error(body: &BodyError, errors: &mut ValidationErrors) {
    let field = body.field().unwrap_or_default();
    match body {
        BodyError::Malformed(_) => errors.push(field, codes::MALFORMED, body.to_string()),
        BodyError::UnknownField(_) | BodyError::ReadOnlyField(_) => {
            errors.push(field, codes::UNKNOWN_FIELD, "unknown field");
        }
        BodyError::InvalidValue { reason, .. } => errors.push(field, codes::INVALID_VALUE, reason.clone()),
    }
}

/// `null` is read as absent, as for every optional field of a create.
fn present(value: Option<Value>) -> Option<Value> {
    value.filter(|v| !v.is_null())
}

fn read_id(value: Option<Value>, errors: &mut ValidationErrors) -> Option<PersonId> {
    match present(value) {
        None => {
            errors.push("/id", validate::codes::REQUIRED, "id is required: an import keeps each person's id");
            None
        }
        Some(Value::String(text)) => match PersonId::parse(&text) {
            Ok(id) => Some(id),
            Err(e) => {
                errors.push("/id", validate::codes::INVALID_ID, e.to_string());
                None
            }
        },
        Some(_) => {
            errors.push("/id", validate::codes::INVALID_ID, "id must be a UUID string");
            None
        }
    }
}

fn read_person_ref(value: Option<Value>, errors: &mut ValidationErrors) -> Option<PersonRef> {
    let value = present(value)?;
    match value.as_i64() {
        Some(n) if n > 0 => Some(PersonRef(n)),
        _ => {
            errors.push("/personRef", codes::INVALID_VALUE, "personRef must be a positive integer");
            None
        }
    }
}

fn read_version(value: Option<Value>, errors: &mut ValidationErrors) -> u64 {
    let Some(value) = present(value) else { return 0 };
    // Stores keep versions as signed 64-bit integers.
    match value.as_u64().filter(|n| i64::try_from(*n).is_ok()) {
        Some(n) => n,
        None => {
            errors.push("/versionNumber", codes::INVALID_VALUE, "versionNumber must be a non-negative integer");
            0
        }
    }
}

fn read_timestamp(value: Option<Value>, field: &str, errors: &mut ValidationErrors) -> Option<DateTime<Utc>> {
    let value = present(value)?;
    let parsed = value.as_str().and_then(parse_timestamp);
    if parsed.is_none() {
        errors.push(field, validate::codes::INVALID_DATE, "must be an RFC 3339 timestamp");
    }
    parsed
}

/// An RFC 3339 timestamp, or an ISO date-time without offset (read as UTC, as Hackney's .NET service wrote some).
#[must_use]
pub fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .map(|naive| naive.and_utc())
}

fn read_status(value: Option<Value>, id: Option<PersonId>, errors: &mut ValidationErrors) -> PersonStatus {
    let Some(value) = present(value) else { return PersonStatus::Active };
    match serde_json::from_value::<PersonStatus>(value) {
        Ok(PersonStatus::Merged { into }) if Some(into) == id => {
            errors.push("/status/mergedInto", codes::INVALID_VALUE, "a person cannot be merged into itself");
            PersonStatus::Active
        }
        Ok(status) => status,
        Err(_) => {
            errors.push(
                "/status",
                codes::INVALID_VALUE,
                "status must be {\"state\": \"active\" | \"deleted\"} or {\"state\": \"merged\", \"mergedInto\": id}",
            );
            PersonStatus::Active
        }
    }
}

fn read_flag(value: Option<Value>, errors: &mut ValidationErrors) -> bool {
    match present(value) {
        None => false,
        Some(Value::Bool(flag)) => flag,
        Some(_) => {
            errors.push("/processingRestricted", codes::INVALID_VALUE, "processingRestricted must be true or false");
            false
        }
    }
}

fn read_references(value: Option<Value>, errors: &mut ValidationErrors) -> Vec<CrossReference> {
    let items = match present(value) {
        None => return Vec::new(),
        Some(Value::Array(items)) => items,
        Some(_) => {
            errors.push("/references", codes::INVALID_VALUE, "references must be an array of {system, id}");
            return Vec::new();
        }
    };
    let mut references = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        match serde_json::from_value::<CrossReference>(item) {
            Ok(reference) => references.push(reference),
            Err(_) => errors.push(
                format!("/references/{i}"),
                validate::codes::INVALID_REFERENCE,
                "a reference is {\"system\", \"id\"} with a valid system name and id",
            ),
        }
    }
    // Stored sorted by system then id, each once (as the references endpoint keeps them).
    references.sort();
    references.dedup();
    references
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::{NaiveDate, TimeZone};
    use serde_json::json;
    use uuid::Uuid;

    use super::*;
    use crate::access::Permissions;
    use crate::api::PersonResponse;
    use crate::event::Actor;
    use crate::memory::InMemoryStore;
    use crate::ports::{AuditLog, FixedClock, PersonRepository, RandomIds, Repositories};
    use crate::service::CreateOptions;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 10, 9, 30, 0).unwrap()
    }

    fn setup() -> (PersonService, Arc<InMemoryStore>) {
        let store = Arc::new(InMemoryStore::new());
        let service = PersonService::new(
            Repositories::from_store(store.clone()),
            Arc::new(FixedClock(now())),
            Arc::new(RandomIds),
        );
        (service, store)
    }

    fn ctx() -> RequestContext {
        let actor = Actor {
            subject: "person-api import".to_owned(),
            name: "person-api import".to_owned(),
            email: String::new(),
        };
        RequestContext::new(actor, Permissions::all(), "import-test")
    }

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    /// A record as `person-api export` writes it.
    fn record(id: Uuid, person_ref: Option<i64>, first: &str) -> Map<String, Value> {
        let mut record = object(json!({
            "id": id,
            "title": "Ms",
            "firstName": first,
            "surname": "Lovelace",
            "singleName": false,
            "dateOfBirth": "1990-05-17",
            "personTypes": ["Tenant"],
            "tenures": [{
                "id": Uuid::new_v4(),
                "type": "Secure",
                "startDate": "2015-03-01",
                "assetFullAddress": "1 Mare Street, London E8 1DY",
                "postcode": "E8 1DY"
            }],
            "reason": "Migrated",
            "versionNumber": 4,
            "createdAt": "2021-03-04T10:11:12.123456Z",
            "lastModified": "2024-07-08T09:10:11Z",
            "processingRestricted": false
        }));
        if let Some(n) = person_ref {
            record.insert("personRef".to_owned(), json!(n));
        }
        record
    }

    fn errors_of(result: &ImportResult) -> Vec<(String, String)> {
        match result {
            ImportResult::Invalid { errors, .. } => {
                errors.errors().iter().map(|e| (e.field.clone(), e.code.clone())).collect()
            }
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn an_imported_person_keeps_its_id_ref_version_and_timestamps() {
        let (service, store) = setup();
        let id = Uuid::new_v4();
        let results = service.import(&ctx(), vec![record(id, Some(4242), "Ada")]).await.unwrap();
        let pid = PersonId::new(id).unwrap();
        assert_eq!(results, vec![ImportResult::Imported { id: pid, person_ref: PersonRef(4242), duplicate_of: None }]);
        let stored = store.get(pid).await.unwrap().unwrap();
        assert_eq!(stored.person_ref, PersonRef(4242));
        assert_eq!(stored.version_number, 4);
        assert_eq!(
            stored.created_at,
            Utc.with_ymd_and_hms(2021, 3, 4, 10, 11, 12).unwrap() + chrono::TimeDelta::microseconds(123_456)
        );
        assert_eq!(stored.last_modified, Utc.with_ymd_and_hms(2024, 7, 8, 9, 10, 11).unwrap());
        assert_eq!(stored.status, PersonStatus::Active);
        assert_eq!(stored.first_name.as_ref().map(|n| n.as_str()), Some("Ada"));
        assert_eq!(stored.tenures.len(), 1);
    }

    #[tokio::test]
    async fn a_record_without_person_ref_gets_the_next_one_after_every_kept_ref() {
        let (service, _store) = setup();
        let results = service
            .import(&ctx(), vec![record(Uuid::new_v4(), None, "Ada"), record(Uuid::new_v4(), Some(900), "Grace")])
            .await
            .unwrap();
        match &results[0] {
            ImportResult::Imported { person_ref, .. } => assert!(person_ref.0 > 900, "{person_ref:?}"),
            other => panic!("{other:?}"),
        }
        let created = service
            .create(
                &ctx(),
                json!({"title": "Mr", "firstName": "Alan", "surname": "Turing", "dateOfBirth": "1912-06-23",
                "personTypes": ["Tenant"], "reason": "New"})
                .to_string()
                .as_bytes(),
                CreateOptions::default(),
            )
            .await
            .unwrap();
        assert!(created.person.person_ref.0 > 901, "creates continue after imported numbers");
    }

    #[tokio::test]
    async fn defaults_fill_the_read_only_fields_a_record_leaves_out() {
        let (service, store) = setup();
        let id = Uuid::new_v4();
        let mut only_modified = record(id, Some(7), "Ada");
        for key in ["versionNumber", "createdAt", "processingRestricted"] {
            only_modified.remove(key);
        }
        let bare_id = Uuid::new_v4();
        let mut bare = record(bare_id, None, "Grace");
        for key in ["versionNumber", "createdAt", "lastModified", "processingRestricted"] {
            bare.remove(key);
        }
        service.import(&ctx(), vec![only_modified, bare]).await.unwrap();
        let stored = store.get(PersonId::new(id).unwrap()).await.unwrap().unwrap();
        assert_eq!(stored.version_number, 0);
        assert_eq!(stored.created_at, stored.last_modified, "createdAt defaults to lastModified");
        let bare = store.get(PersonId::new(bare_id).unwrap()).await.unwrap().unwrap();
        assert_eq!((bare.created_at, bare.last_modified), (now(), now()));
        assert!(!bare.processing_restricted);
    }

    #[tokio::test]
    async fn deleted_merged_restricted_and_referenced_persons_are_stored_in_their_state() {
        let (service, store) = setup();
        let survivor = Uuid::new_v4();
        let deleted = Uuid::new_v4();
        let merged = Uuid::new_v4();
        let restricted = Uuid::new_v4();
        let mut survivor_record = record(survivor, Some(1), "Ada");
        survivor_record.insert(
            "references".to_owned(),
            json!([{"system": "tenure", "id": "T-2"}, {"system": "housing-register", "id": "H-1"}]),
        );
        let mut deleted_record = record(deleted, Some(2), "Grace");
        deleted_record.insert("status".to_owned(), json!({"state": "deleted"}));
        let mut merged_record = record(merged, Some(3), "Ada");
        merged_record.insert("status".to_owned(), json!({"state": "merged", "mergedInto": survivor}));
        let mut restricted_record = record(restricted, Some(4), "Hedy");
        restricted_record.insert("processingRestricted".to_owned(), json!(true));
        let results = service
            .import(&ctx(), vec![survivor_record, deleted_record, merged_record, restricted_record])
            .await
            .unwrap();
        assert!(results.iter().all(|r| matches!(r, ImportResult::Imported { duplicate_of: None, .. })), "{results:?}");
        let get = |id: Uuid| {
            let store = store.clone();
            async move { store.get(PersonId::new(id).unwrap()).await.unwrap().unwrap() }
        };
        let stored = get(survivor).await;
        let systems: Vec<&str> = stored.references.iter().map(|r| r.system.as_str()).collect();
        assert_eq!(systems, vec!["housing-register", "tenure"], "references are kept sorted");
        assert_eq!(get(deleted).await.status, PersonStatus::Deleted);
        assert_eq!(get(merged).await.status, PersonStatus::Merged { into: PersonId::new(survivor).unwrap() });
        assert!(get(restricted).await.processing_restricted);
        let reference = CrossReference::parse("tenure:T-2").unwrap();
        assert_eq!(store.find_by_reference(&reference).await.unwrap(), Some(PersonId::new(survivor).unwrap()));
    }

    #[tokio::test]
    async fn editable_fields_are_validated_exactly_as_a_create_validates_them() {
        let (service, store) = setup();
        let id = Uuid::new_v4();
        let mut bad = record(id, Some(5), "<script>");
        bad.remove("reason");
        bad.insert("dateOfBirth".to_owned(), json!("2999-01-01"));
        let results = service.import(&ctx(), vec![bad.clone()]).await.unwrap();
        let mut create_body = bad.clone();
        for key in IMPORTED_READ_ONLY_KEYS {
            create_body.remove(*key);
        }
        let create_body = Value::Object(create_body).to_string();
        let create = service.create(&ctx(), create_body.as_bytes(), CreateOptions::default()).await;
        let Err(crate::service::CreatePersonError::Invalid(expected)) = create else { panic!("create refuses it") };
        let expected: Vec<(String, String)> =
            expected.errors().iter().map(|e| (e.field.clone(), e.code.clone())).collect();
        assert_eq!(errors_of(&results[0]), expected);
        assert!(expected.iter().any(|(_, code)| code == "W42") && expected.iter().any(|(_, code)| code == "W17"));
        assert_eq!(results[0].id(), PersonId::new(id), "the id is reported with the errors");
        assert_eq!(store.get(PersonId::new(id).unwrap()).await.unwrap(), None, "nothing is stored");
    }

    #[tokio::test]
    async fn read_only_fields_that_break_their_rules_are_reported_together() {
        let (service, _store) = setup();
        let mut bad = record(Uuid::new_v4(), None, "Ada");
        bad.insert("id".to_owned(), json!(Uuid::nil()));
        bad.insert("personRef".to_owned(), json!(0));
        bad.insert("versionNumber".to_owned(), json!(-1));
        bad.insert("createdAt".to_owned(), json!("yesterday"));
        bad.insert("status".to_owned(), json!({"state": "gone"}));
        bad.insert("processingRestricted".to_owned(), json!("no"));
        bad.insert("references".to_owned(), json!([{"system": "Tenure", "id": "1"}]));
        let mut no_id = record(Uuid::new_v4(), None, "Ada");
        no_id.remove("id");
        let mut unknown = record(Uuid::new_v4(), None, "Ada");
        unknown.insert("nickname".to_owned(), json!("Addy"));
        let mut wrong_type = record(Uuid::new_v4(), None, "Ada");
        wrong_type.insert("title".to_owned(), json!("Sir"));
        let mut backwards = record(Uuid::new_v4(), None, "Ada");
        backwards.insert("lastModified".to_owned(), json!("2020-01-01T00:00:00Z"));
        let results = service.import(&ctx(), vec![bad, no_id, unknown, wrong_type, backwards]).await.unwrap();
        let pairs = |v: &[(&str, &str)]| v.iter().map(|(f, c)| ((*f).to_owned(), (*c).to_owned())).collect::<Vec<_>>();
        assert_eq!(
            errors_of(&results[0]),
            pairs(&[
                ("/id", "invalid_id"),
                ("/personRef", "invalid_value"),
                ("/versionNumber", "invalid_value"),
                ("/createdAt", "invalid_date"),
                ("/status", "invalid_value"),
                ("/processingRestricted", "invalid_value"),
                ("/references/0", "invalid_reference"),
            ])
        );
        assert_eq!(results[0].id(), None);
        assert_eq!(errors_of(&results[1]), pairs(&[("/id", "required")]));
        assert_eq!(errors_of(&results[2]), pairs(&[("/nickname", "unknown_field")]));
        assert_eq!(errors_of(&results[3]), pairs(&[("/title", "invalid_value")]));
        assert_eq!(errors_of(&results[4]), pairs(&[("/lastModified", "date_order")]));
    }

    #[tokio::test]
    async fn error_messages_never_repeat_the_values_of_the_record() {
        let (service, _store) = setup();
        let mut bad = record(Uuid::new_v4(), None, "Ada");
        bad.insert("title".to_owned(), json!("Secretname"));
        bad.insert("createdAt".to_owned(), json!("Secretdate"));
        let results = service.import(&ctx(), vec![bad]).await.unwrap();
        let ImportResult::Invalid { errors, .. } = &results[0] else { panic!("invalid") };
        let text = serde_json::to_string(errors.errors()).unwrap();
        assert!(!text.contains("Secret"), "{text}");
    }

    #[tokio::test]
    async fn a_probable_duplicate_is_imported_without_its_dedup_key_and_named() {
        let (service, _store) = setup();
        let first = Uuid::new_v4();
        let twin = Uuid::new_v4();
        let results =
            service.import(&ctx(), vec![record(first, Some(1), "Ada"), record(twin, Some(2), "Ada")]).await.unwrap();
        assert_eq!(
            results[1],
            ImportResult::Imported {
                id: PersonId::new(twin).unwrap(),
                person_ref: PersonRef(2),
                duplicate_of: PersonId::new(first)
            }
        );
        // The first keeps the key: a create of the same person is still refused.
        let create = service
            .create(
                &ctx(),
                json!({"title": "Ms", "firstName": "Ada", "surname": "Lovelace", "dateOfBirth": "1990-05-17",
                    "personTypes": ["Tenant"], "reason": "New"})
                .to_string()
                .as_bytes(),
                CreateOptions::default(),
            )
            .await;
        assert!(matches!(create, Err(crate::service::CreatePersonError::Duplicate { .. })), "{create:?}");
    }

    #[tokio::test]
    async fn importing_again_writes_nothing_twice_and_refusals_name_the_owner() {
        let (service, _store) = setup();
        let first = Uuid::new_v4();
        let mut with_reference = record(first, Some(10), "Ada");
        with_reference.insert("references".to_owned(), json!([{"system": "tenure", "id": "T-1"}]));
        service.import(&ctx(), vec![with_reference.clone()]).await.unwrap();
        let same_ref = Uuid::new_v4();
        let claims = Uuid::new_v4();
        let mut claims_reference = record(claims, Some(11), "Grace");
        claims_reference.insert("references".to_owned(), json!([{"system": "tenure", "id": "T-1"}]));
        let results = service
            .import(&ctx(), vec![with_reference, record(same_ref, Some(10), "Hedy"), claims_reference])
            .await
            .unwrap();
        let owner = PersonId::new(first).unwrap();
        assert_eq!(
            results,
            vec![
                ImportResult::AlreadyStored { id: owner },
                ImportResult::PersonRefTaken { id: PersonId::new(same_ref).unwrap(), person_ref: PersonRef(10), owner },
                ImportResult::ReferenceTaken {
                    id: PersonId::new(claims).unwrap(),
                    reference: CrossReference::parse("tenure:T-1").unwrap(),
                    owner
                },
            ]
        );
    }

    #[tokio::test]
    async fn a_batch_is_audited_once_naming_the_persons_stored_and_writes_no_event() {
        let (service, store) = setup();
        let a = Uuid::new_v4();
        let mut invalid = record(Uuid::new_v4(), None, "Ada");
        invalid.remove("surname");
        service.import(&ctx(), vec![record(a, Some(1), "Ada"), invalid]).await.unwrap();
        let entries = store.entries_for_person(PersonId::new(a).unwrap(), 0, 10).await.unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].entry.action, AuditAction::PersonImport);
        assert_eq!(entries[0].entry.actor.subject, "person-api import");
        assert_eq!(entries[0].entry.person_ids, vec![PersonId::new(a).unwrap()]);
        assert!(store.events_after(0, 10).await.unwrap().is_empty());
        // A batch with nothing valid does not reach the store.
        let results = service.import(&ctx(), vec![Map::new()]).await.unwrap();
        assert!(matches!(results[0], ImportResult::Invalid { id: None, .. }));
    }

    #[tokio::test]
    async fn a_person_exported_or_read_through_the_api_imports_back_as_it_was() {
        let (service, _store) = setup();
        let body = json!({"title": "Mr", "firstName": "Łukasz", "middleName": "Jan", "surname": "O'Neill",
            "preferredFirstName": "Luke", "placeOfBirth": "Kraków", "dateOfBirth": "1985-02-03",
            "personTypes": ["Tenant", "Leaseholder"], "reason": "New tenancy",
            "tenures": [{"id": Uuid::new_v4(), "type": "Secure", "startDate": "2020-01-01",
                         "endDate": "1900-01-01", "assetFullAddress": "2 Mare Street, London E8 3RH",
                         "uprn": "100021045679", "paymentReference": "P1", "propertyReference": "R1"}]});
        let created = service.create(&ctx(), body.to_string().as_bytes(), CreateOptions::default()).await.unwrap();
        let person = created.person;
        let (target, target_store) = setup();
        // As `person-api export` writes it.
        let exported = object(serde_json::to_value(&person).unwrap());
        target.import(&ctx(), vec![exported]).await.unwrap();
        assert_eq!(target_store.get(person.id).await.unwrap().as_ref(), Some(&person));
        // As GET answers it (computed isAMinor, links and tenures' isActive are ignored).
        let (again, again_store) = setup();
        let shown = PersonResponse::new(&person, NaiveDate::from_ymd_opt(2026, 1, 10).unwrap(), Vec::new());
        let shown = object(serde_json::to_value(&shown).unwrap());
        assert!(shown.contains_key("isAMinor") && shown.contains_key("links"));
        let results = again.import(&ctx(), vec![shown]).await.unwrap();
        assert!(matches!(results[0], ImportResult::Imported { .. }), "{results:?}");
        assert_eq!(again_store.get(person.id).await.unwrap().as_ref(), Some(&person));
    }

    #[test]
    fn timestamps_are_rfc3339_or_iso_without_offset_read_as_utc() {
        let at = Utc.with_ymd_and_hms(2021, 9, 1, 10, 0, 0).unwrap();
        assert_eq!(parse_timestamp("2021-09-01T10:00:00Z"), Some(at));
        assert_eq!(parse_timestamp("2021-09-01T11:00:00+01:00"), Some(at));
        assert_eq!(parse_timestamp("2021-09-01T10:00:00.0000000Z"), Some(at));
        assert_eq!(parse_timestamp("2021-09-01T10:00:00"), Some(at));
        assert_eq!(parse_timestamp("2021-09-01"), None);
        assert_eq!(parse_timestamp("soon"), None);
    }
}
