//! What every storage adapter needs besides the ports: the stored (JSON) form of the domain's documents, errors
//! about stored data that never quote it, and the named statements of the query catalogue. No I/O.
//!
//! Stores keep each person, event, history entry, idempotency record, document and audit entry as the JSON of the
//! domain type (the source of truth for reads) and copy a few fields into columns or attributes for look-ups.
//! These helpers make that encoding identical in every store, and turn every failure into a
//! [`StoreError::Unexpected`] whose message names the kind of data and the position of the fault — never its
//! content, which may be personal data (serde's own messages quote the offending value).

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::audit::AuditAction;
use crate::documents::{DocumentBody, DocumentKind, StoredDocument};
use crate::event::Actor;
use crate::person::PersonId;
use crate::ports::StoreError;

/// A statement (SQL text, or a DynamoDB operation and key pattern) with its stable operation name, as listed in
/// the query catalogue (`GET /admin/queries`, SPEC §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamedQuery {
    /// Stable operation name, e.g. `person.get`.
    pub name: &'static str,
    /// The statement text: values are always bound as parameters, so the text never holds one.
    pub sql: &'static str,
}

/// Declares a store's statements: `named_queries! { /// doc  CONST = "stable.name" => "statement text"; … }`
/// makes one `pub const CONST: NamedQuery` per statement and `pub const CATALOGUE: &[NamedQuery]` listing them
/// all, so a statement cannot exist without being in the catalogue (`QueryCatalogue::statements`).
#[macro_export]
macro_rules! named_queries {
    ($($(#[$doc:meta])* $constant:ident = $name:literal => $text:literal;)+) => {
        $(
            $(#[$doc])*
            pub const $constant: $crate::storage::NamedQuery = $crate::storage::NamedQuery { name: $name, sql: $text };
        )+

        /// Every statement with its stable name, for the query catalogue.
        pub const CATALOGUE: &[$crate::storage::NamedQuery] = &[$($constant),+];
    };
}

/// One execution of a named statement, as a store reports it to its [`QueryObserver`]. Never holds values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryExecution {
    /// The statement (its catalogue entry).
    pub query: &'static NamedQuery,
    /// How long it took, from sending it to having its result.
    pub elapsed: std::time::Duration,
    /// Rows (or items) it returned or changed, when the store knows.
    pub rows: Option<u64>,
    /// False when it failed (including a refused conditional write).
    pub succeeded: bool,
}

/// Receives every statement execution of a store (query visibility, SPEC §10). Called on the task that ran the
/// statement, so an implementation can attribute it to the request being served; it MUST be cheap and never
/// block.
pub trait QueryObserver: Send + Sync {
    /// One statement ran.
    fn executed(&self, execution: QueryExecution);
}

/// The handle stores keep to report executions: cheap to clone, does nothing when no observer was given.
#[derive(Clone, Default)]
pub struct QueryRecorder(Option<std::sync::Arc<dyn QueryObserver>>);

impl QueryRecorder {
    /// Reports to `observer`.
    #[must_use]
    pub fn new(observer: std::sync::Arc<dyn QueryObserver>) -> Self {
        Self(Some(observer))
    }

    /// Reports nowhere.
    #[must_use]
    pub fn none() -> Self {
        Self(None)
    }

    /// Runs `statement` (the future executing `query`), reporting its duration, outcome and no row count.
    ///
    /// # Errors
    /// The statement's own error, unchanged.
    pub async fn run<T, E>(
        &self,
        query: &'static NamedQuery,
        statement: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        self.run_counted(query, statement, |_| None).await
    }

    /// Runs `statement`, reporting its duration, outcome and the row count `rows` reads from its result.
    ///
    /// # Errors
    /// The statement's own error, unchanged.
    pub async fn run_counted<T, E>(
        &self,
        query: &'static NamedQuery,
        statement: impl std::future::Future<Output = Result<T, E>>,
        rows: impl FnOnce(&T) -> Option<u64>,
    ) -> Result<T, E> {
        let Some(observer) = &self.0 else { return statement.await };
        let started = std::time::Instant::now();
        let result = statement.await;
        let elapsed = started.elapsed();
        let (rows, succeeded) = match &result {
            Ok(value) => (rows(value), true),
            Err(_) => (None, false),
        };
        observer.executed(QueryExecution { query, elapsed, rows, succeeded });
        result
    }

    /// Reports an execution the store timed itself (e.g. a statement inside a retry loop).
    pub fn record(&self, execution: QueryExecution) {
        if let Some(observer) = &self.0 {
            observer.executed(execution);
        }
    }
}

impl std::fmt::Debug for QueryRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("QueryRecorder").field(&self.0.is_some()).finish()
    }
}

/// Stored data that cannot be read or written as the domain expects; always [`StoreError::Unexpected`].
#[derive(Debug, thiserror::Error)]
pub enum StoredDataError {
    /// A stored document is not valid JSON of the expected shape.
    #[error("stored {what} document cannot be parsed ({category} error at line {line}, column {column})")]
    Corrupt {
        /// Which kind of document.
        what: &'static str,
        /// serde_json's error category.
        category: &'static str,
        /// Line of the error in the document.
        line: usize,
        /// Column of the error in the document.
        column: usize,
    },
    /// A value could not be serialised for storage.
    #[error("{what} cannot be serialised for storage ({category} error)")]
    Unserialisable {
        /// Which kind of document.
        what: &'static str,
        /// serde_json's error category.
        category: &'static str,
    },
    /// A stored number, identifier, kind or timestamp is outside the domain's range.
    #[error("stored {what} is out of range or malformed")]
    OutOfRange {
        /// Which value.
        what: &'static str,
    },
    /// A stored document disagrees with the columns copied out of it (edited by hand, or a bug).
    #[error("a stored {table} row disagrees with its document")]
    Inconsistent {
        /// The table (or item type).
        table: &'static str,
    },
    /// A document write's new document names another person or kind than the row it would be written to.
    #[error("a document write names a different person or kind than its document")]
    MismatchedDocumentWrite,
}

impl From<StoredDataError> for StoreError {
    fn from(error: StoredDataError) -> Self {
        StoreError::Unexpected(Box::new(error))
    }
}

fn category(error: &serde_json::Error) -> &'static str {
    match error.classify() {
        serde_json::error::Category::Io => "io",
        serde_json::error::Category::Syntax => "syntax",
        serde_json::error::Category::Data => "data",
        serde_json::error::Category::Eof => "end of input",
    }
}

/// Describes a document that failed to parse without quoting any of it.
#[must_use]
pub fn corrupt(what: &'static str, error: &serde_json::Error) -> StoreError {
    StoredDataError::Corrupt { what, category: category(error), line: error.line(), column: error.column() }.into()
}

/// Describes a value that failed to serialise without quoting any of it.
#[must_use]
pub fn unserialisable(what: &'static str, error: &serde_json::Error) -> StoreError {
    StoredDataError::Unserialisable { what, category: category(error) }.into()
}

/// A stored value outside the domain's range.
#[must_use]
pub fn out_of_range(what: &'static str) -> StoreError {
    StoredDataError::OutOfRange { what }.into()
}

/// A domain value as the JSON text a store keeps.
///
/// # Errors
/// [`StoredDataError::Unserialisable`] (as a [`StoreError`]).
pub fn to_json<T: Serialize + ?Sized>(value: &T, what: &'static str) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| unserialisable(what, &e))
}

/// A domain value read back from the JSON text a store kept.
///
/// # Errors
/// [`StoredDataError::Corrupt`] (as a [`StoreError`]), naming `what` and the position, never the content.
pub fn from_json<T: DeserializeOwned>(text: &str, what: &'static str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| corrupt(what, &e))
}

/// A count (`versionNumber`, a position) as a signed 64-bit database integer.
///
/// # Errors
/// [`StoredDataError::OutOfRange`] beyond `i64::MAX`.
pub fn to_i64(value: u64, what: &'static str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| out_of_range(what))
}

/// A signed database integer read back as a count.
///
/// # Errors
/// [`StoredDataError::OutOfRange`] when negative.
pub fn to_u64(value: i64, what: &'static str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| out_of_range(what))
}

/// The wire name of an audit action (`person-read` …), as stores keep it in a column next to the entry.
///
/// # Errors
/// [`StoredDataError`] (as a [`StoreError`]) if the action does not serialise to a string (a bug).
pub fn audit_action_name(action: AuditAction) -> Result<String, StoreError> {
    match serde_json::to_value(action) {
        Ok(serde_json::Value::String(name)) => Ok(name),
        Ok(_) => Err(out_of_range("audit action")),
        Err(e) => Err(unserialisable("audit action", &e)),
    }
}

/// The stored form of a [`StoredDocument`]: its kind as the storage key (`equality`, `extended:<area>`).
///
/// [`DocumentBody`] is untagged (its JSON is just the body), and an equality body with every answer omitted is
/// `{}`, indistinguishable from an empty extended object; so the body is rebuilt by `kind`, never guessed.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DocumentOut<'a> {
    person_id: PersonId,
    kind: &'a str,
    version: u64,
    body: &'a DocumentBody,
    updated_at: DateTime<Utc>,
    updated_by: &'a Actor,
}

/// [`DocumentOut`] read back, the body still untyped until the kind is known.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DocumentIn {
    person_id: PersonId,
    kind: String,
    version: u64,
    body: serde_json::Value,
    updated_at: DateTime<Utc>,
    updated_by: Actor,
}

/// The JSON text a store keeps for a document.
///
/// # Errors
/// [`StoredDataError::Unserialisable`] (as a [`StoreError`]).
pub fn document_to_json(document: &StoredDocument) -> Result<String, StoreError> {
    let kind = document.kind.key();
    to_json(
        &DocumentOut {
            person_id: document.person_id,
            kind: &kind,
            version: document.version,
            body: &document.body,
            updated_at: document.updated_at,
            updated_by: &document.updated_by,
        },
        "document",
    )
}

/// A document read back from the JSON text a store kept; the caller checks it against its key columns.
///
/// # Errors
/// [`StoredDataError`] (as a [`StoreError`]) when the text is not a stored document, names an unknown kind, or
/// holds a body that does not fit its kind.
pub fn document_from_json(text: &str) -> Result<StoredDocument, StoreError> {
    let stored: DocumentIn = from_json(text, "document")?;
    let kind = DocumentKind::from_key(&stored.kind).ok_or_else(|| out_of_range("document kind"))?;
    let body = DocumentBody::from_json(&kind, stored.body).map_err(|_| out_of_range("document body"))?;
    Ok(StoredDocument {
        person_id: stored.person_id,
        kind,
        version: stored.version,
        body,
        updated_at: stored.updated_at,
        updated_by: stored.updated_by,
    })
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use chrono::TimeZone;

    use super::*;
    use crate::access::ServiceArea;
    use crate::equality::EqualityData;

    fn stored(kind: &str, body: serde_json::Value) -> String {
        serde_json::json!({
            "personId": "6f1c6a52-5a57-4f61-9c64-2b3f6c1c9d10", "kind": kind, "version": 3, "body": body,
            "updatedAt": "2026-01-02T03:04:05Z", "updatedBy": { "subject": "s" },
        })
        .to_string()
    }

    #[test]
    fn an_empty_body_is_rebuilt_by_its_kind() {
        let equality = document_from_json(&stored("equality", serde_json::json!({}))).unwrap();
        assert_eq!(equality.body, DocumentBody::Equality(EqualityData::default()));
        let extended = document_from_json(&stored("extended:social-care", serde_json::json!({}))).unwrap();
        assert_eq!(extended.body, DocumentBody::Extended(serde_json::Map::new()));
    }

    #[test]
    fn unknown_kinds_and_bodies_that_do_not_fit_are_unexpected() {
        for (kind, body) in [
            ("extended:", serde_json::json!({})),
            ("other", serde_json::json!({})),
            ("equality", serde_json::json!({ "secret": "Zoë" })),
            ("extended:social-care", serde_json::json!([1])),
        ] {
            let result = document_from_json(&stored(kind, body));
            assert!(matches!(result, Err(StoreError::Unexpected(_))), "{kind}");
        }
    }

    #[test]
    fn documents_round_trip_through_their_stored_form() {
        let document = StoredDocument {
            person_id: PersonId::parse("6f1c6a52-5a57-4f61-9c64-2b3f6c1c9d10").unwrap(),
            kind: DocumentKind::Extended(ServiceArea::parse("social-care").unwrap()),
            version: 7,
            body: DocumentBody::Extended(serde_json::Map::from_iter([("a".to_owned(), serde_json::json!(1))])),
            updated_at: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
            updated_by: Actor { subject: "s".to_owned(), name: "n".to_owned(), email: "e@x".to_owned() },
        };
        assert_eq!(document_from_json(&document_to_json(&document).unwrap()).unwrap(), document);
    }

    #[test]
    fn a_corrupt_document_is_unexpected_and_quotes_none_of_it() {
        let error = from_json::<crate::Person>(r#"{"firstName": "Zoë Secret"}"#, "person").unwrap_err();
        assert!(matches!(error, StoreError::Unexpected(_)));
        let text = error.source().map(ToString::to_string).unwrap_or_default();
        assert!(text.starts_with("stored person document cannot be parsed"), "{text}");
        assert!(!text.contains("Secret"), "{text}");
    }

    #[test]
    fn counts_outside_the_integer_range_are_unexpected_not_a_panic() {
        assert!(matches!(to_u64(-1, "position"), Err(StoreError::Unexpected(_))));
        assert!(matches!(to_i64(u64::MAX, "version"), Err(StoreError::Unexpected(_))));
        assert_eq!(to_i64(5, "version").unwrap(), 5);
    }
}
