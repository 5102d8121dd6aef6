//! The person domain of the Person API: the Person resource (SPEC §2), its validation (§4), PATCH semantics
//! (§3), events and history (§9), the ports every store implements, and [`PersonService`], the use cases.
//!
//! This crate does no I/O and knows no runtime, database, HTTP or AWS crate: storage and transport are adapters
//! around it (`person-sqlite`, `person-http`, …). Feature `testkit` adds the store contract suite, `mocks` the
//! mockall mocks of the ports, `openapi` the OpenAPI schemas of the wire types.

pub mod access;
pub mod api;
pub mod audit;
pub mod documents;
pub mod equality;
pub mod event;
pub mod import_plan;
pub mod matching;
pub mod memory;
pub mod patch;
pub mod person;
pub mod ports;
pub mod postcode;
pub mod reference;
pub mod service;
pub mod storage;
pub mod validate;

#[cfg(feature = "testkit")]
#[expect(clippy::expect_used, reason = "the contract suite fails the test loudly with a message")]
pub mod testkit;

pub use access::{Permission, Permissions, ServiceArea};
pub use event::{Actor, EventType, EventVersion, FeedEntry, HistoryEntry, PersonEvent};
pub use memory::InMemoryStore;
pub use person::{Name, Person, PersonId, PersonRef, PersonStatus, PersonType, TenureSummary, Title};
pub use ports::{AuditLog, DocumentRepository, PersonRepository, Repositories, StoreError};
pub use reference::{CrossReference, ReferenceId, ReferenceSystem};
pub use service::{PersonService, RequestContext};
pub use validate::{FieldError, ValidationErrors};
