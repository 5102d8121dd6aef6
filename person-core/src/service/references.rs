//! Cross-references (SPEC §8): adding, removing, listing and looking persons up by a record in another system.
//!
//! A reference change is a change of the person: a new version, a `PersonUpdatedEvent` whose `oldData` and
//! `newData` hold the `references` before and after, and a history entry, all in the store's one atomic write.
//! The store's unique reference index refuses a reference that another live person holds; the service names
//! that person when the caller may see it.

use serde::Deserialize;
use serde_json::Value;

use super::{LookupError, PersonService, RequestContext, UpdatePersonError, Updated, history_entry, person_write};
use crate::audit::{AuditAction, AuditOutcome};
use crate::event::{EventType, EventVersion};
use crate::patch::changed_data;
use crate::person::{Person, PersonId};
use crate::ports::StoreError;
use crate::reference::{CrossReference, MAX_REFERENCES, ReferenceId, ReferenceSystem};
use crate::service::SearchHit;
use crate::service::search::SearchPage;
use crate::validate::{self, ValidationErrors, codes};

/// How often a reference change without `If-Match` is tried again when another change of the person commits
/// between its read and its write (adding or removing a reference commutes with every other change).
const REFERENCE_ATTEMPTS: usize = 5;

/// The body of `POST /persons/{id}/references`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReferenceBody {
    system: Option<String>,
    id: Option<String>,
    reason: Option<String>,
}

/// A reference body, validated: the reference and the reason for the change (kept in history).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceRequest {
    /// The reference to add.
    pub reference: CrossReference,
    /// Why (recorded in history), if given.
    pub reason: Option<String>,
}

impl ReferenceRequest {
    /// Parses `{"system", "id", "reason"?}`, reporting every invalid field at once.
    ///
    /// # Errors
    /// [`UpdatePersonError::Body`] for a malformed body or unknown key, [`UpdatePersonError::Invalid`] for a
    /// missing or invalid `system`, `id` or `reason`.
    pub fn parse(body: &[u8]) -> Result<Self, UpdatePersonError> {
        let object = validate::parse_object(body)?;
        let raw: ReferenceBody = serde_path_to_error::deserialize(Value::Object(object))
            .map_err(|e| validate::body_error_from_path(e.path(), &e.inner().to_string()))?;
        let mut errors = ValidationErrors::default();
        let system = match raw.system.as_deref().map(ReferenceSystem::parse) {
            None => {
                errors.push("/system", codes::REQUIRED, "system is required");
                None
            }
            Some(Err(e)) => {
                errors.push("/system", codes::INVALID_REFERENCE, e.to_string());
                None
            }
            Some(Ok(system)) => Some(system),
        };
        let id = match raw.id.as_deref().map(ReferenceId::parse) {
            None => {
                errors.push("/id", codes::REQUIRED, "id is required");
                None
            }
            Some(Err(e)) => {
                errors.push("/id", codes::INVALID_REFERENCE, e.to_string());
                None
            }
            Some(Ok(id)) => Some(id),
        };
        let reason = validate::optional_text(raw.reason.as_deref(), "/reason", &mut errors);
        match (system, id) {
            (Some(system), Some(id)) if errors.is_empty() => {
                Ok(Self { reference: CrossReference::new(system, id), reason })
            }
            _ => Err(UpdatePersonError::Invalid(errors)),
        }
    }
}

impl PersonService {
    /// A live person with its references (audited as a read of the person).
    ///
    /// # Errors
    /// As for [`Self::get`].
    pub async fn references(&self, ctx: &RequestContext, id: PersonId) -> Result<Person, LookupError> {
        let result = self.load(ctx, id).await;
        self.audit_lookup(ctx, AuditAction::PersonRead, id, Some("references".to_owned()), &result).await?;
        result
    }

    /// Adds a reference to a live person. Adding one the person already holds changes nothing.
    ///
    /// With `expected_version` (`If-Match`) the change applies to that version only; without, it applies to
    /// whatever version is current (tried again if another change commits meanwhile).
    ///
    /// # Errors
    /// Lookup errors; [`UpdatePersonError::VersionConflict`]; [`UpdatePersonError::Invalid`] when the person
    /// already holds [`MAX_REFERENCES`]; [`UpdatePersonError::ReferenceTaken`] when another live person holds
    /// the reference.
    pub async fn add_reference(
        &self,
        ctx: &RequestContext,
        id: PersonId,
        expected_version: Option<u64>,
        request: ReferenceRequest,
    ) -> Result<Updated, UpdatePersonError> {
        self.change_references(ctx, id, expected_version, request.reason, |references| {
            if references.contains(&request.reference) {
                return Ok(false);
            }
            if references.len() >= MAX_REFERENCES {
                let mut errors = ValidationErrors::default();
                errors.push(
                    "/references",
                    codes::TOO_MANY_REFERENCES,
                    format!("a person holds at most {MAX_REFERENCES} references"),
                );
                return Err(UpdatePersonError::Invalid(errors));
            }
            references.push(request.reference.clone());
            Ok(true)
        })
        .await
    }

    /// Removes a reference from a live person.
    ///
    /// # Errors
    /// As for [`Self::add_reference`]; [`UpdatePersonError::ReferenceNotHeld`] when the person does not hold it.
    pub async fn remove_reference(
        &self,
        ctx: &RequestContext,
        id: PersonId,
        expected_version: Option<u64>,
        reference: &CrossReference,
        reason: Option<String>,
    ) -> Result<Updated, UpdatePersonError> {
        self.change_references(ctx, id, expected_version, reason, |references| {
            let before = references.len();
            references.retain(|r| r != reference);
            if references.len() == before { Err(UpdatePersonError::ReferenceNotHeld) } else { Ok(true) }
        })
        .await
    }

    async fn change_references(
        &self,
        ctx: &RequestContext,
        id: PersonId,
        expected_version: Option<u64>,
        reason: Option<String>,
        change: impl Fn(&mut Vec<CrossReference>) -> Result<bool, UpdatePersonError>,
    ) -> Result<Updated, UpdatePersonError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let current = self.load(ctx, id).await?;
            if let Some(expected) = expected_version
                && expected != current.version_number
            {
                return Err(UpdatePersonError::VersionConflict { current: current.version_number });
            }
            let mut next = current.clone();
            if !change(&mut next.references)? {
                return Ok(Updated { person: current, changed: false });
            }
            next.references.sort();
            next.version_number += 1;
            next.last_modified = self.clock.now();
            let (old_data, new_data) = changed_data(&current, &next);
            let event = self.event(ctx, EventType::PersonUpdatedEvent, EventVersion::V1, id, old_data, new_data);
            let history = history_entry(ctx, &event, next.version_number, reason.clone());
            let detail = Some("references".to_owned());
            let audit = self.audit_entry(ctx, AuditAction::PersonUpdate, vec![id], detail, AuditOutcome::Success);
            let write = person_write(&current, next.clone(), event, history, audit);
            match self.write(ctx, &current, write).await {
                Ok(()) => return Ok(Updated { person: next, changed: true }),
                Err(UpdatePersonError::VersionConflict { .. })
                    if expected_version.is_none() && attempt < REFERENCE_ATTEMPTS => {}
                Err(UpdatePersonError::VersionConflict { .. }) if expected_version.is_none() => {
                    return Err(StoreError::Unavailable("the person kept changing; try again".into()).into());
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// `GET /persons?reference=system:id`: the live, unrestricted person holding `reference` (or, for `admin`,
    /// a restricted one), as a one-hit search page. Audited as a search disclosing that person.
    ///
    /// # Errors
    /// A store failure.
    pub async fn search_by_reference(
        &self,
        ctx: &RequestContext,
        reference: &CrossReference,
    ) -> Result<SearchPage, StoreError> {
        let owner = match self.repos.persons.find_by_reference(reference).await? {
            Some(id) => self.visible(ctx, id).await?,
            None => None,
        };
        // A restricted person is hidden from searches, even from `admin` (as every other search does).
        let owner = owner.filter(|p| !p.processing_restricted);
        let ids: Vec<PersonId> = owner.iter().map(|p| p.id).collect();
        self.audit_disclosure(ctx, ids, &format!("reference={} results={}", reference.system, owner.iter().count()))
            .await?;
        let hits: Vec<SearchHit> = owner.into_iter().map(|person| SearchHit { person, score: 1.0 }).collect();
        Ok(SearchPage { total: hits.len() as u64, hits, next_offset: None })
    }

    /// The live person `id` when the caller may see it, else `None` (gone, or restricted without `admin`).
    pub(super) async fn visible(&self, ctx: &RequestContext, id: PersonId) -> Result<Option<Person>, StoreError> {
        match self.load(ctx, id).await {
            Ok(person) => Ok(Some(person)),
            Err(LookupError::Store(e)) => Err(e),
            Err(_) => Ok(None),
        }
    }
}
