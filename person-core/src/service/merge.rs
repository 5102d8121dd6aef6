//! Merge (`POST /persons/{survivorId}/merge`, SPEC §6): a duplicate folded into a survivor in one atomic write.
//!
//! The survivor keeps its own values and gains the duplicate's missing ones, its roles and tenures, and the
//! equality and extended documents it lacks; the duplicate becomes a tombstone `mergedInto` the survivor (reads
//! answer 308), its keys and dedup key dropped. One `PersonMergedEvent` is published; both histories gain an
//! entry. A person cannot be merged into itself, and merged or deleted persons are refused on either side, which
//! also makes cycles impossible: a person merged away can never become a survivor, so no chain of merges can
//! lead back to it. The duplicate's cross-references move to the survivor. Documents the survivor already holds
//! stay with the duplicate's tombstone (subject access still finds them).

use serde::Deserialize;
use serde_json::Value;

use super::{LookupError, PersonKeys, PersonService, RequestContext, equality_keys, history_entry};
use crate::audit::{AuditAction, AuditOutcome};
use crate::documents::{DocumentBody, DocumentKind, StoredDocument};
use crate::event::{EventType, EventVersion, HistoryEntry};
use crate::patch::changed_data;
use crate::person::name::is_potentially_dangerous;
use crate::person::{Person, PersonId, PersonStatus, sort_tenures};
use crate::ports::{DocumentMove, MergeWrite, MergeWriteError, StoreError};
use crate::validate::{self, BodyError, ValidationErrors, codes};

/// How often a merge is prepared again when the duplicate or its documents changed while it was prepared.
const MERGE_ATTEMPTS: usize = 3;

/// Why a merge failed.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// Not a usable body: malformed, wrong type, unknown key, `duplicateId` not a person id (→ 400).
    #[error(transparent)]
    Body(#[from] BodyError),
    /// `duplicateId` or `reason` missing, or `reason` unusable (→ 422).
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    /// The survivor cannot take a merge: unknown, deleted, merged or restricted (→ 404/410/409/403).
    #[error("the survivor cannot be merged into")]
    Survivor(#[source] LookupError),
    /// The duplicate cannot be merged: unknown, deleted, already merged or restricted (→ 422/409/403).
    #[error("the duplicate cannot be merged")]
    Duplicate(#[source] LookupError),
    /// The duplicate is the survivor (→ 409/422).
    #[error("a person cannot be merged into itself")]
    SelfMerge,
    /// `If-Match` names another version of the survivor (→ 409).
    #[error("version conflict: current version is {current}")]
    VersionConflict {
        /// The survivor's stored version.
        current: u64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The body as sent.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MergeBody {
    duplicate_id: Option<String>,
    reason: Option<String>,
}

/// A merge body, validated.
struct MergeRequest {
    duplicate: PersonId,
    reason: String,
}

impl MergeRequest {
    fn parse(body: &[u8]) -> Result<Self, MergeError> {
        let object = validate::parse_object(body)?;
        let raw: MergeBody = serde_path_to_error::deserialize(Value::Object(object))
            .map_err(|e| validate::body_error_from_path(e.path(), &e.inner().to_string()))?;
        let duplicate = match raw.duplicate_id.as_deref().map(PersonId::parse) {
            Some(Err(_)) => {
                return Err(BodyError::InvalidValue {
                    field: "/duplicateId".to_owned(),
                    reason: "not a person id: expected a non-nil UUID".to_owned(),
                }
                .into());
            }
            Some(Ok(id)) => Some(id),
            None => None,
        };
        let mut errors = ValidationErrors::default();
        if duplicate.is_none() {
            errors.push("/duplicateId", codes::REQUIRED, "duplicateId is required");
        }
        let reason = raw.reason.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty());
        match &reason {
            None => errors.push("/reason", codes::REASON_REQUIRED, "reason is required"),
            Some(r) if r.chars().count() > validate::MAX_FREE_TEXT => {
                errors.push("/reason", codes::TOO_LONG, format!("at most {} characters", validate::MAX_FREE_TEXT));
            }
            Some(r) if is_potentially_dangerous(r) => {
                errors.push("/reason", codes::DANGEROUS_CHARACTERS, "reason contains potentially dangerous characters");
            }
            Some(r) if r.chars().any(char::is_control) => {
                errors.push("/reason", codes::CONTROL_CHARACTERS, "reason contains control characters");
            }
            Some(_) => {}
        }
        match (duplicate, reason) {
            (Some(duplicate), Some(reason)) if errors.is_empty() => Ok(Self { duplicate, reason }),
            _ => Err(errors.into()),
        }
    }
}

impl PersonService {
    /// Merges the person named by the body's `duplicateId` into `survivor`, whose version must be
    /// `expected_version` (`If-Match`), for the body's `reason`; returns the survivor as merged.
    ///
    /// One atomic write: the survivor gains the duplicate's missing values, roles, tenures and the documents it
    /// lacks; the duplicate becomes a tombstone merged into the survivor; one `PersonMergedEvent`; a history
    /// entry for each. Should the merged survivor become identical to a third recorded person, the merge still
    /// goes ahead and the survivor is kept as an allowed duplicate of it (staff merge that one next).
    ///
    /// # Errors
    /// See [`MergeError`]; a person merged away is refused on either side, so cycles cannot arise.
    pub async fn merge(
        &self,
        ctx: &RequestContext,
        survivor: PersonId,
        expected_version: u64,
        body: &[u8],
    ) -> Result<Person, MergeError> {
        let request = MergeRequest::parse(body)?;
        if request.duplicate == survivor {
            return Err(MergeError::SelfMerge);
        }
        let mut keep_dedup_key = true;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let current = self.load(ctx, survivor).await.map_err(MergeError::Survivor)?;
            if current.version_number != expected_version {
                return Err(MergeError::VersionConflict { current: current.version_number });
            }
            let duplicate = self.load(ctx, request.duplicate).await.map_err(MergeError::Duplicate)?;
            let write = self.merge_write(ctx, &current, &duplicate, &request.reason, keep_dedup_key).await?;
            let merged = write.survivor.clone();
            match self.repos.persons.merge(write).await {
                Ok(()) => return Ok(merged),
                Err(MergeWriteError::SurvivorConflict { current: Some(current) }) => {
                    return Err(MergeError::VersionConflict { current });
                }
                Err(MergeWriteError::SurvivorConflict { current: None }) => {
                    return Err(MergeError::Survivor(LookupError::NotFound));
                }
                Err(MergeWriteError::DuplicatePerson { .. }) if keep_dedup_key => keep_dedup_key = false,
                // The duplicate or its documents changed while the merge was prepared: prepare it again.
                // (A third person holding one of the duplicate's references means the duplicate lost it meanwhile.)
                Err(
                    MergeWriteError::DuplicateConflict { .. }
                    | MergeWriteError::DocumentConflict
                    | MergeWriteError::ReferenceTaken { .. },
                ) if attempt < MERGE_ATTEMPTS => {}
                Err(
                    MergeWriteError::DuplicateConflict { .. }
                    | MergeWriteError::DocumentConflict
                    | MergeWriteError::DuplicatePerson { .. }
                    | MergeWriteError::ReferenceTaken { .. },
                ) => {
                    return Err(StoreError::Unavailable("the duplicate kept changing during the merge".into()).into());
                }
                Err(MergeWriteError::Store(e)) => return Err(e.into()),
            }
        }
    }

    async fn merge_write(
        &self,
        ctx: &RequestContext,
        survivor: &Person,
        duplicate: &Person,
        reason: &str,
        keep_dedup_key: bool,
    ) -> Result<MergeWrite, StoreError> {
        let now = self.clock.now();
        let next = absorb(survivor, duplicate, now.date_naive(), now);

        let held = self.repos.documents.list_documents(survivor.id).await?;
        let documents: Vec<DocumentMove> = self
            .repos
            .documents
            .list_documents(duplicate.id)
            .await?
            .into_iter()
            .filter(|d| !held.iter().any(|h| h.kind == d.kind))
            .map(|d| DocumentMove {
                kind: d.kind.clone(),
                expected_version: d.version,
                document: StoredDocument {
                    person_id: survivor.id,
                    kind: d.kind,
                    version: 0,
                    body: d.body,
                    updated_at: now,
                    updated_by: ctx.actor.clone(),
                },
            })
            .collect();
        let survivor_equality_keys = documents.iter().find(|m| m.kind == DocumentKind::Equality).map(|m| {
            let nino = match &m.document.body {
                DocumentBody::Equality(data) => data.national_insurance_number.as_deref(),
                DocumentBody::Extended(_) => None,
            };
            equality_keys(&next, nino)
        });
        let keys = PersonKeys::of(&next, None);

        let mut gone = duplicate.clone();
        gone.status = PersonStatus::Merged { into: survivor.id };
        gone.version_number += 1;
        gone.last_modified = now;

        let (old_data, mut new_data) = changed_data(survivor, &next);
        new_data.insert("mergedPersonId".to_owned(), Value::String(duplicate.id.to_string()));
        let event = self.event(ctx, EventType::PersonMergedEvent, EventVersion::V1, survivor.id, old_data, new_data);
        let survivor_history = history_entry(ctx, &event, next.version_number, Some(reason.to_owned()));
        let duplicate_history = HistoryEntry {
            person_id: duplicate.id,
            version_number: gone.version_number,
            old_data: Value::Object(serde_json::Map::new()),
            new_data: serde_json::json!({ "mergedInto": survivor.id }),
            ..history_entry(ctx, &event, gone.version_number, Some(reason.to_owned()))
        };
        let detail = format!("merge duplicate={} survivor={}", duplicate.id, survivor.id);
        let audit = self.audit_entry(
            ctx,
            AuditAction::PersonMerge,
            vec![survivor.id, duplicate.id],
            Some(detail),
            AuditOutcome::Success,
        );
        Ok(MergeWrite {
            survivor: next,
            survivor_expected_version: survivor.version_number,
            survivor_keys: keys.person,
            survivor_equality_keys,
            survivor_dedup_key: if keep_dedup_key { keys.dedup } else { None },
            duplicate: gone,
            duplicate_expected_version: duplicate.version_number,
            documents,
            event,
            survivor_history,
            duplicate_history,
            audit,
        })
    }
}

/// The survivor after absorbing the duplicate: its own values kept, the duplicate's filling what it lacks, roles
/// and tenures added, restricted if either was; version + 1.
fn absorb(
    survivor: &Person,
    duplicate: &Person,
    today: chrono::NaiveDate,
    now: chrono::DateTime<chrono::Utc>,
) -> Person {
    let mut next = survivor.clone();
    fill(&mut next.title, &duplicate.title);
    fill(&mut next.preferred_title, &duplicate.preferred_title);
    // A person known by one name only stays so: a first name would contradict `singleName`.
    if !next.single_name {
        fill(&mut next.first_name, &duplicate.first_name);
    }
    fill(&mut next.middle_name, &duplicate.middle_name);
    fill(&mut next.preferred_first_name, &duplicate.preferred_first_name);
    fill(&mut next.preferred_middle_name, &duplicate.preferred_middle_name);
    fill(&mut next.preferred_surname, &duplicate.preferred_surname);
    fill(&mut next.place_of_birth, &duplicate.place_of_birth);
    // Dates are taken only when they keep birth before death.
    if next.date_of_birth.is_none()
        && duplicate.date_of_birth.is_some_and(|b| next.date_of_death.is_none_or(|d| b <= d))
    {
        next.date_of_birth = duplicate.date_of_birth;
    }
    if next.date_of_death.is_none()
        && duplicate.date_of_death.is_some_and(|d| next.date_of_birth.is_none_or(|b| b <= d))
    {
        next.date_of_death = duplicate.date_of_death;
    }
    for role in &duplicate.person_types {
        if !next.person_types.contains(role) {
            next.person_types.push(*role);
        }
    }
    for tenure in &duplicate.tenures {
        if !next.tenures.iter().any(|t| t.id == tenure.id) {
            next.tenures.push(tenure.clone());
        }
    }
    sort_tenures(&mut next.tenures, today);
    // The duplicate's references move to the survivor (the store releases and re-claims them in one write).
    for reference in &duplicate.references {
        if !next.references.contains(reference) {
            next.references.push(reference.clone());
        }
    }
    next.references.sort();
    next.processing_restricted = survivor.processing_restricted || duplicate.processing_restricted;
    next.version_number += 1;
    next.last_modified = now;
    next
}

/// Takes `theirs` where `mine` is missing.
fn fill<T: Clone>(mine: &mut Option<T>, theirs: &Option<T>) {
    if mine.is_none() {
        mine.clone_from(theirs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(body: &str) -> Vec<(String, String)> {
        match MergeRequest::parse(body.as_bytes()) {
            Err(MergeError::Invalid(errors)) => {
                errors.errors().iter().map(|e| (e.field.clone(), e.code.clone())).collect()
            }
            Err(other) => panic!("expected invalid, got {other:?}"),
            Ok(_) => panic!("expected invalid, got a request"),
        }
    }

    #[test]
    fn duplicate_id_and_reason_are_required_together() {
        assert_eq!(
            invalid("{}"),
            vec![("/duplicateId".to_owned(), "required".to_owned()), ("/reason".to_owned(), "W17".to_owned())]
        );
        let id = uuid::Uuid::new_v4();
        assert_eq!(
            invalid(&format!(r#"{{"duplicateId":"{id}","reason":"  "}}"#)),
            vec![("/reason".to_owned(), "W17".to_owned())]
        );
    }

    #[test]
    fn unknown_keys_and_non_ids_are_body_errors() {
        let id = uuid::Uuid::new_v4();
        let unknown = MergeRequest::parse(format!(r#"{{"duplicateId":"{id}","reason":"x","into":1}}"#).as_bytes());
        assert!(matches!(unknown, Err(MergeError::Body(BodyError::UnknownField(f))) if f == "into"));
        let not_an_id = MergeRequest::parse(br#"{"duplicateId":"12","reason":"x"}"#);
        assert!(
            matches!(not_an_id, Err(MergeError::Body(BodyError::InvalidValue { field, .. })) if field == "/duplicateId")
        );
        let malformed = MergeRequest::parse(b"[1]");
        assert!(matches!(malformed, Err(MergeError::Body(BodyError::Malformed(_)))));
    }
}
