//! The endpoints, one module per resource, and the fallbacks for unknown paths and methods.

pub(crate) mod admin;
pub(crate) mod audit;
pub(crate) mod documents;
pub(crate) mod events;
pub(crate) mod health;
pub(crate) mod persons;
pub(crate) mod references;
pub(crate) mod reporting;
pub(crate) mod search;

use person_core::person::PersonId;

use crate::error::ApiError;

/// The path of a person resource, as used in `Location` headers (path-relative, RFC 9110 §10.2.2).
pub(crate) fn person_location(id: PersonId) -> String {
    format!("/api/v1/persons/{id}")
}

/// Unknown paths: a 404 problem rather than an empty body.
pub(crate) async fn not_found() -> ApiError {
    ApiError::NotFound { detail: "there is no resource at this path".to_owned() }
}

/// Known paths with another method: a 405 problem.
pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
