//! [`PersonApi`]: every operation of the Person API as one trait, so that code using the API can be written
//! against `&dyn PersonApi` (or `A: PersonApi`) and tested with `MockPersonApi` (feature `mocks`).

use async_trait::async_trait;
use futures::stream::BoxStream;
use person_core::api::{FeedResponse, PersonResponse};
use person_core::equality::EqualityData;
use person_core::event::{FeedEntry, HistoryEntry};
use person_core::person::PersonId;
use person_core::reference::CrossReference;
use person_core::validate::PersonDraft;

use crate::error::ClientError;
use crate::model::{
    AccessLogPage, Document, ExtendedDocument, HousingSearchPage, HousingSearchQuery, MatchQuery, MatchResult,
    PersonPatch, ReferenceChange, References, Restriction, SearchCriteria, SearchPage, SearchResult, SubjectAccess,
};
use crate::options::{CreateOptions, FollowOptions};

/// The Person API, as a typed async interface. [`PersonClient`](crate::PersonClient) implements it over HTTP.
///
/// Every method documents the errors it can return beyond those every call can return:
/// [`ClientError::Unauthorised`], [`ClientError::Forbidden`], [`ClientError::TooManyRequests`],
/// [`ClientError::Server`], [`ClientError::Transport`], [`ClientError::Decode`] and
/// [`ClientError::Credentials`].
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PersonApi: Send + Sync {
    /// Reads a person (`GET /api/v1/persons/{id}`); its `versionNumber` is what [`PersonApi::update`] needs.
    ///
    /// # Errors
    /// [`ClientError::NotFound`]; [`ClientError::Gone`] (deleted); [`ClientError::Moved`] (merged into
    /// another person: read `to`); [`ClientError::Forbidden`] also when the person's processing is restricted.
    async fn get(&self, id: PersonId) -> Result<PersonResponse, ClientError>;

    /// Creates a person (`POST /api/v1/persons`) and returns it as stored (with its `personRef`, version 0).
    ///
    /// Sends an `Idempotency-Key` (generated, or [`CreateOptions::idempotency_key`]) reused by every retry,
    /// so that a retry after a lost response returns the person created by the first attempt instead of
    /// creating a second one.
    ///
    /// # Errors
    /// [`ClientError::Duplicate`] (already recorded: use a candidate, or set
    /// [`CreateOptions::allow_duplicate`]); [`ClientError::Invalid`] (every field error);
    /// [`ClientError::BadRequest`]; [`ClientError::DuplicateId`]; [`ClientError::IdempotencyKeyReused`].
    async fn create(&self, person: &PersonDraft, options: &CreateOptions) -> Result<PersonResponse, ClientError>;

    /// Creates a person through `POST /api/v2/persons`: identical to [`PersonApi::create`], except that the
    /// `PersonCreatedEvent` carries `version: "v2"` (for Hackney listeners that branch on it).
    ///
    /// # Errors
    /// As [`PersonApi::create`].
    async fn create_v2(&self, person: &PersonDraft, options: &CreateOptions) -> Result<PersonResponse, ClientError>;

    /// Changes a person (`PATCH`, JSON merge patch) on the condition that it is still at `version` (sent as
    /// `If-Match`), and returns it as changed. A patch that changes nothing returns the person unchanged.
    /// Never retried automatically: after a lost response, re-read.
    ///
    /// # Errors
    /// [`ClientError::VersionConflict`] (someone changed it since `version`: re-read, re-apply, retry);
    /// [`ClientError::Invalid`]; [`ClientError::BadRequest`] (an unknown or read-only key);
    /// [`ClientError::Duplicate`] (the change would duplicate another person); [`ClientError::NotFound`];
    /// [`ClientError::Gone`]; [`ClientError::Moved`].
    async fn update(&self, id: PersonId, version: u64, patch: &PersonPatch) -> Result<PersonResponse, ClientError>;

    /// Soft-deletes a person (`DELETE`): reads answer [`ClientError::Gone`] afterwards, history is kept.
    /// `version`, when given, makes the delete conditional; `reason` is recorded in history.
    ///
    /// # Errors
    /// [`ClientError::NotFound`]; [`ClientError::Gone`] (already deleted — also what a retry sees when the
    /// first attempt's response was lost); [`ClientError::VersionConflict`]; [`ClientError::Moved`].
    async fn delete(&self, id: PersonId, version: Option<u64>, reason: Option<String>) -> Result<(), ClientError>;

    /// Every version of a person, oldest first: who, when, why, old and new values.
    ///
    /// # Errors
    /// [`ClientError::NotFound`].
    async fn history(&self, id: PersonId) -> Result<Vec<HistoryEntry>, ClientError>;

    /// One page of ranked search results (`GET /api/v1/persons`); [`SearchPage::next_cursor`] gives the next.
    ///
    /// # Errors
    /// [`ClientError::BadRequest`] (no criterion, a bad parameter — `errors` names it).
    async fn search_page(&self, criteria: &SearchCriteria) -> Result<SearchPage, ClientError>;

    /// Every search result, best first, as a stream that reads the pages one after the other by following
    /// `links.next`. The stream ends after the last result, or after yielding an error.
    fn search(&self, criteria: &SearchCriteria) -> BoxStream<'static, Result<SearchResult, ClientError>>;

    /// Hackney's housing-search compatible person search (`GET /api/v1/search/persons`).
    ///
    /// # Errors
    /// [`ClientError::BadRequest`] (`searchText` under 2 characters, a bad page size).
    async fn housing_search(&self, query: &HousingSearchQuery) -> Result<HousingSearchPage, ClientError>;

    /// "Is this person already known?" (`POST /api/v1/persons/match`): candidates graded at least `possible`,
    /// most likely first, each with its explanation. A read: retried like `GET`.
    ///
    /// # Errors
    /// [`ClientError::Invalid`] (nothing to match on, an unreadable value); [`ClientError::BadRequest`].
    async fn match_person(&self, query: &MatchQuery) -> Result<Vec<MatchResult>, ClientError>;

    /// Merges `duplicate` into `survivor` (which must still be at `survivor_version`) and returns the survivor
    /// as merged. Never retried automatically.
    ///
    /// # Errors
    /// [`ClientError::Invalid`] (`self_merge`, `unknown_person`, `deleted_person`, `merged_person` on
    /// `/duplicateId`); [`ClientError::VersionConflict`]; [`ClientError::NotFound`]; [`ClientError::Gone`];
    /// [`ClientError::Moved`] (the survivor itself was merged away).
    async fn merge(
        &self,
        survivor: PersonId,
        survivor_version: u64,
        duplicate: PersonId,
        reason: &str,
    ) -> Result<PersonResponse, ClientError>;

    /// Reads a person's equality data with its own version.
    ///
    /// # Errors
    /// [`ClientError::NotFound`] (no such person, or none recorded); [`ClientError::Gone`];
    /// [`ClientError::Moved`].
    async fn equality(&self, id: PersonId) -> Result<Document<EqualityData>, ClientError>;

    /// Records or replaces a person's equality data: `version` `None` for the first write, else the version
    /// read. Returns the data as stored (normalised) and its new version.
    ///
    /// # Errors
    /// [`ClientError::PreconditionRequired`] (data exists and `version` is `None`);
    /// [`ClientError::VersionConflict`]; [`ClientError::Invalid`]; [`ClientError::NotFound`];
    /// [`ClientError::Gone`]; [`ClientError::Moved`].
    async fn put_equality(
        &self,
        id: PersonId,
        version: Option<u64>,
        data: &EqualityData,
    ) -> Result<Document<EqualityData>, ClientError>;

    /// Reads one service area's extended data (`area`: e.g. `social-care`).
    ///
    /// # Errors
    /// [`ClientError::NotFound`] (no such person, or nothing stored for the area);
    /// [`ClientError::BadRequest`] (an invalid area name); [`ClientError::Gone`]; [`ClientError::Moved`].
    async fn extended(&self, id: PersonId, area: &str) -> Result<Document<ExtendedDocument>, ClientError>;

    /// Stores or replaces one service area's extended data: `version` `None` for the first write.
    ///
    /// # Errors
    /// As [`PersonApi::put_equality`]; [`ClientError::Rejected`] with status 413 for a document over 64 KiB.
    async fn put_extended(
        &self,
        id: PersonId,
        area: &str,
        version: Option<u64>,
        document: &ExtendedDocument,
    ) -> Result<Document<ExtendedDocument>, ClientError>;

    /// Deletes one service area's extended data (conditionally when `version` is given).
    ///
    /// # Errors
    /// [`ClientError::NotFound`]; [`ClientError::VersionConflict`]; [`ClientError::Gone`];
    /// [`ClientError::Moved`].
    async fn delete_extended(&self, id: PersonId, area: &str, version: Option<u64>) -> Result<(), ClientError>;

    /// Restricts a person's processing, or lifts the restriction (needs `admin`); conditional when `version`
    /// is given. Returns the person as changed.
    ///
    /// # Errors
    /// [`ClientError::VersionConflict`]; [`ClientError::Invalid`]; [`ClientError::NotFound`];
    /// [`ClientError::Gone`]; [`ClientError::Moved`].
    async fn set_restriction(
        &self,
        id: PersonId,
        version: Option<u64>,
        restriction: &Restriction,
    ) -> Result<PersonResponse, ClientError>;

    /// The records in other systems that belong to a person (`GET /api/v1/persons/{id}/references`), with the
    /// person's version (needs `persons:read`).
    ///
    /// # Errors
    /// [`ClientError::NotFound`]; [`ClientError::Gone`]; [`ClientError::Moved`].
    async fn references(&self, id: PersonId) -> Result<References, ClientError>;

    /// Records that `reference` belongs to a person (`POST /api/v1/persons/{id}/references`; needs
    /// `references:write`). A reference change is a new version of the person, with an event and a history
    /// entry (`reason`). `version`, when given, is sent as `If-Match`: the change applies to that version only.
    /// Without it the change applies to whatever version is current (adding a reference commutes with every
    /// other change), which is what most callers want.
    ///
    /// Adding a reference the person already holds changes nothing ([`ReferenceChange::added`] is `false`), so
    /// the call is idempotent and is retried like `PUT`: after a lost response, an unconditional retry answers
    /// `added: false`, and a conditional one [`ClientError::VersionConflict`] (its version was used up by the
    /// first attempt; re-read to see the outcome).
    ///
    /// # Errors
    /// [`ClientError::ReferenceTaken`] (another person holds it: `owner`); [`ClientError::VersionConflict`];
    /// [`ClientError::Invalid`] (`/system`, `/id` or `/reason` invalid, or `/references`: the person already
    /// holds 25); [`ClientError::NotFound`]; [`ClientError::Gone`]; [`ClientError::Moved`].
    async fn add_reference(
        &self,
        id: PersonId,
        version: Option<u64>,
        reference: &CrossReference,
        reason: Option<String>,
    ) -> Result<ReferenceChange, ClientError>;

    /// Records that `reference` no longer belongs to a person (`DELETE /api/v1/persons/{id}/references?system=…
    /// &id=…`; needs `references:write`); another person may then claim it. Returns the person's new version.
    /// `version`, when given, makes the removal conditional (`If-Match`); `reason` is recorded in history.
    ///
    /// Retried like every `DELETE`, so a retry whose first attempt was applied but whose response was lost
    /// answers [`ClientError::NotFound`] (unconditional: the person no longer holds the reference) or
    /// [`ClientError::VersionConflict`] (conditional: its version was used up by the first attempt), as
    /// [`PersonApi::delete`] answers `Gone`. A caller whose goal is "not held" may take `NotFound` for done;
    /// [`PersonApi::references`] shows the outcome and the current version.
    ///
    /// # Errors
    /// [`ClientError::NotFound`] (no such person, or the person does not hold the reference);
    /// [`ClientError::VersionConflict`]; [`ClientError::BadRequest`] (an invalid `reason`);
    /// [`ClientError::Gone`]; [`ClientError::Moved`].
    async fn remove_reference(
        &self,
        id: PersonId,
        version: Option<u64>,
        reference: &CrossReference,
        reason: Option<String>,
    ) -> Result<u64, ClientError>;

    /// The person a record of another system belongs to (`GET /api/v1/persons?reference=system:id`, one indexed
    /// look-up; needs `persons:read`), or `None` when no live person holds it or the holder's processing is
    /// restricted (restricted persons are hidden from every search).
    ///
    /// # Errors
    /// Only those every call can return.
    async fn find_by_reference(&self, reference: &CrossReference) -> Result<Option<PersonResponse>, ClientError>;

    /// One page of a person's access log (needs `audit:read`), after position `after` (0: the start). Reading
    /// the first page is itself recorded.
    ///
    /// # Errors
    /// [`ClientError::NotFound`]; [`ClientError::BadRequest`] (a bad limit).
    async fn access_log(&self, id: PersonId, after: u64, limit: Option<u32>) -> Result<AccessLogPage, ClientError>;

    /// Everything held about a person (needs `audit:read`).
    ///
    /// # Errors
    /// [`ClientError::NotFound`].
    async fn subject_access(&self, id: PersonId) -> Result<SubjectAccess, ClientError>;

    /// One page of the event feed after position `after` (0: the start), in commit order.
    ///
    /// # Errors
    /// [`ClientError::BadRequest`] (a bad limit).
    async fn feed_page(&self, after: u64, limit: Option<u32>) -> Result<FeedResponse, ClientError>;

    /// Follows the event feed from position `after` (0: the start; else the position of the last event you
    /// processed), forever: every committed event once, in commit order, each with its `position` — persist
    /// it after processing the event and pass it here after a restart. When caught up, the stream polls again
    /// every `options.poll_interval`.
    ///
    /// An error (after the retry policy's attempts) is yielded and the stream carries on after the poll
    /// interval from the same position; stop on errors you consider fatal by dropping the stream.
    fn follow_feed(&self, after: u64, options: FollowOptions) -> BoxStream<'static, Result<FeedEntry, ClientError>>;

    /// Hackney's ping (`GET /api/v1/healthcheck/ping`): the service answers.
    ///
    /// # Errors
    /// Any error: the service does not answer properly.
    async fn ping(&self) -> Result<(), ClientError>;

    /// Liveness (`GET /livez`).
    ///
    /// # Errors
    /// Any error: the process does not answer properly.
    async fn live(&self) -> Result<(), ClientError>;

    /// Readiness (`GET /readyz`): `true` when the service and its store answer, `false` on 503. Not retried.
    ///
    /// # Errors
    /// Transport errors and any other status.
    async fn ready(&self) -> Result<bool, ClientError>;
}
