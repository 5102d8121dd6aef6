//! The typed async Rust client of the Person API, for the council services that read and write persons.
//!
//! [`PersonApi`] is every operation of the API as one trait; [`PersonClient`] implements it over HTTP
//! (reqwest with rustls, no OpenSSL). Write your code against `&dyn PersonApi` or `A: PersonApi` and test it
//! with `MockPersonApi` (feature `mocks`). Responses are `person_core` types ([`PersonResponse`],
//! [`HistoryEntry`], [`FeedEntry`], [`EqualityData`] …) or the shapes in this crate's [`model`]; failures are
//! a typed [`ClientError`] chosen by the problem `type` URI of the response, never by its text.
//!
//! The client handles the protocol for its caller:
//!
//! * **Versions.** [`PersonApi::update`], [`PersonApi::merge`] and document writes take the version you read
//!   and send it as `If-Match`; a stale one is [`ClientError::VersionConflict`] (re-read and retry).
//! * **Safe retries.** Every create sends an `Idempotency-Key` (a UUID per call, reused by its retries), so a
//!   retry after a lost response returns the person the first attempt created instead of creating a second
//!   one. `GET`, `PUT`, `DELETE`, match, creates and reference adds are retried on transport errors, 502, 503,
//!   504 and 429, with exponential backoff and jitter, honouring `Retry-After`, within the [`RetryPolicy`].
//!   `PATCH` and merge are never retried.
//! * **Redirects.** A merged person's `GET` answers 308 to the survivor. The client does not follow it: it
//!   returns [`ClientError::Moved`] `{ to }`, so that the caller learns that the id it holds is obsolete and
//!   can replace it (a silent redirect would hand back a person with another id, unnoticed). Read `to` next.
//! * **Tracing.** Every call sends an `x-correlation-id` (yours, through [`CallOptions::correlation_id`], or a
//!   generated UUID, the same for all attempts of a call) and optionally an `x-purpose` for the audit trail.
//!   The correlation id the server echoed, the `ETag`, `Server-Timing` and the number of attempts of each
//!   response are kept as a [`ResponseMeta`]: in a [`MetaCapture`] you pass with [`CallOptions::capture`], and
//!   in [`PersonClient::last_meta`].
//! * **Paging.** [`PersonApi::search`] streams every result of a search across pages, and
//!   [`PersonApi::follow_feed`] streams the event feed forever from a cursor you persist.
//! * **Cross-references.** [`PersonApi::references`], [`PersonApi::add_reference`],
//!   [`PersonApi::remove_reference`] and [`PersonApi::find_by_reference`] link a person to records in other
//!   council systems ([`CrossReference`] `{ system, id }`). Adding a held reference changes nothing, so adds
//!   are retried like `PUT`; a reference another person holds is [`ClientError::ReferenceTaken`] `{ owner }`.
//!
//! Not yet covered, because the API does not have it yet: reporting (`/reporting/{table}`); it comes with the
//! issue that adds it to the server.
//!
//! ```no_run
//! # async fn run() -> Result<(), person_client::ClientError> {
//! use person_client::{ClientError, CreateOptions, PersonApi, PersonClient, PersonPatch};
//! use person_core::validate::PersonDraft;
//! use person_core::{PersonType, Title};
//!
//! let client = PersonClient::builder("http://127.0.0.1:8080").token("eyJ…").build()?;
//! let draft = PersonDraft {
//!     title: Some(Title::Ms),
//!     first_name: Some("Thandi".into()),
//!     surname: Some("Mokoena".into()),
//!     date_of_birth: Some("1990-04-12".into()),
//!     person_types: Some(vec![PersonType::Tenant]),
//!     reason: Some("New tenancy".into()),
//!     ..PersonDraft::default()
//! };
//! let person = match client.create(&draft, &CreateOptions::default()).await {
//!     Ok(person) => person,
//!     Err(ClientError::Duplicate { candidates }) if !candidates.is_empty() => client.get(candidates[0].id).await?,
//!     Err(other) => return Err(other),
//! };
//! let patch = PersonPatch::new().middle_name("Naledi").reason("Middle name added");
//! let changed = client.update(person.id, person.version_number, &patch).await?;
//! assert_eq!(changed.version_number, person.version_number + 1);
//! # Ok(()) }
//! ```

mod api;
mod auth;
mod client;
mod error;
pub mod model;
mod options;

#[cfg(any(test, feature = "mocks"))]
pub use api::MockPersonApi;
pub use api::PersonApi;
pub use auth::{AccessToken, TokenProvider};
pub use client::{DEFAULT_TIMEOUT, PersonClient, PersonClientBuilder};
pub use error::{BoxError, ClientError, DecodeError, TransportError};
pub use model::{
    AccessLogPage, AccessLogRecord, Document, ExtendedDocument, ExtendedExport, HousingSearchPage, HousingSearchPerson,
    HousingSearchQuery, HousingSearchTenure, MatchQuery, MatchResult, PersonPatch, ReferenceChange, References,
    Restriction, SearchCriteria, SearchPage, SearchResult, SubjectAccess,
};
pub use options::{CallOptions, CreateOptions, FollowOptions, MetaCapture, ResponseMeta, RetryPolicy};

// The types responses are made of, so that users need not depend on `person-core` for the basics.
pub use person_core::api::{FeedResponse, PersonResponse, ProblemDetails};
pub use person_core::equality::EqualityData;
pub use person_core::event::{FeedEntry, HistoryEntry, PersonEvent};
pub use person_core::person::PersonId;
pub use person_core::reference::{CrossReference, InvalidReference, ReferenceId, ReferenceSystem};
pub use person_core::service::DuplicateCandidate;
pub use person_core::validate::{FieldError, PersonDraft};
