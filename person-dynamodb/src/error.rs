//! Failures of this adapter and their mapping onto the port's [`StoreError`].
//!
//! SDK errors are classified here and nowhere else: throttling, timeouts, connection failures and server-side
//! faults are [`StoreError::Unavailable`] (retrying later may succeed), everything else is
//! [`StoreError::Unexpected`]. Classification uses the SDK's error kinds and DynamoDB's error *codes* (part of the
//! API contract), never message text.
//!
//! Each failure names the stable operation that failed (`storage operation person.get failed`, see
//! [`crate::queries::CATALOGUE`]). The SDK error is kept as the source, except where it may carry stored values:
//! a cancelled transaction's reasons hold the items' old values (personal data), so only their codes are kept.
//! `Debug` of these errors prints kinds and codes, never items or raw responses.

use std::error::Error as StdError;
use std::fmt;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use person_core::ports::StoreError;

/// DynamoDB error codes that mean "overloaded or briefly unable; retry later".
const TRANSIENT_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "ThrottlingException",
    "Throttling",
    "InternalServerError",
    "InternalFailure",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "LimitExceededException",
    "TransactionInProgressException",
    "TransactionConflictException",
    "ReplicatedWriteConflictException",
];

/// What went wrong inside the adapter; always wrapped in a [`StoreError`].
#[derive(thiserror::Error)]
pub(crate) enum DynamoStoreError {
    /// The storage URL is not a usable `dynamodb://` URL.
    #[error("invalid DynamoDB storage URL: {reason}")]
    InvalidUrl {
        /// What is wrong with it (never the URL itself, which may carry credentials in a proxy endpoint).
        reason: &'static str,
    },
    /// No region was given in the URL nor found in the AWS configuration chain.
    #[error("no AWS region: add ?region=<region> to the DynamoDB storage URL or set AWS_REGION")]
    NoRegion,
    /// An SDK call failed.
    #[error("storage operation {operation} failed ({kind})")]
    Operation {
        /// Stable name of the operation (see `queries::CATALOGUE`).
        operation: &'static str,
        /// What kind of failure (`timeout`, `dispatch`, the service error code …).
        kind: String,
        /// Whether retrying later may succeed.
        transient: bool,
        /// The SDK's error.
        #[source]
        source: Option<Box<dyn StdError + Send + Sync + 'static>>,
    },
    /// A transaction was cancelled for reasons the operation does not expect.
    #[error("storage operation {operation} failed: transaction cancelled with reasons [{codes}]")]
    Cancelled {
        /// Stable name of the operation.
        operation: &'static str,
        /// The cancellation reason codes, in item order.
        codes: String,
        /// Whether retrying later may succeed (throttling, conflicts).
        transient: bool,
    },
    /// A write kept losing the race for the feed counter (or another guard item) beyond the retry budget.
    #[error("storage operation {operation} gave up after {attempts} attempts lost to concurrent writers")]
    Contention {
        /// Stable name of the operation.
        operation: &'static str,
        /// Attempts made.
        attempts: u32,
    },
    /// A request could not be built (a bug: a required field was left out).
    #[error("storage operation {operation} could not be built")]
    Build {
        /// Stable name of the operation.
        operation: &'static str,
        /// The SDK's builder error.
        #[source]
        source: aws_sdk_dynamodb::error::BuildError,
    },
    /// A write needs more items than one `TransactWriteItems` accepts.
    #[error("storage operation {operation} needs {items} items, more than DynamoDB's limit of 100 per transaction")]
    TooManyItems {
        /// Stable name of the operation.
        operation: &'static str,
        /// Items the write needs.
        items: usize,
    },
    /// A stored item lacks an attribute or has one of the wrong type.
    #[error("stored {what} item has a missing or malformed attribute {attribute}")]
    MalformedItem {
        /// Which kind of item.
        what: &'static str,
        /// The attribute.
        attribute: &'static str,
    },
    /// A stored value disagrees with its key or with the item it was read for.
    #[error("a stored {what} item disagrees with its key")]
    Inconsistent {
        /// Which kind of item.
        what: &'static str,
    },
    /// A document write's new document names another person or kind than the item it would be written to.
    #[error("a document write names a different person or kind than its document")]
    MismatchedDocumentWrite,
    /// The table exists with a key schema this store cannot use.
    #[error("the DynamoDB table exists with a different key schema (expected string PK and SK)")]
    WrongKeySchema,
    /// The table has an index named `GSI1` whose keys are not the reporting index's.
    #[error(
        "the DynamoDB table has an index GSI1 with a different key schema (expected string GSI1PK and GSI1SK): \
         delete that index (UpdateTable) and run `person-api migrate` to add the reporting index"
    )]
    WrongIndexSchema,
    /// The table did not become ACTIVE in time.
    #[error("the DynamoDB table did not become ACTIVE within {seconds} s")]
    NotActive {
        /// How long the store waited.
        seconds: u64,
    },
    /// The store was closed.
    #[error("the DynamoDB store is closed")]
    Closed,
}

impl fmt::Debug for DynamoStoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The Display text names operations, kinds and codes only; the SDK source is left out of Debug because
        // its Debug prints raw responses (which may hold stored values).
        write!(f, "DynamoStoreError({self})")
    }
}

impl DynamoStoreError {
    fn transient(&self) -> bool {
        match self {
            Self::Operation { transient, .. } | Self::Cancelled { transient, .. } => *transient,
            Self::Contention { .. } | Self::NotActive { .. } | Self::Closed => true,
            _ => false,
        }
    }
}

impl From<DynamoStoreError> for StoreError {
    fn from(error: DynamoStoreError) -> Self {
        if error.transient() {
            StoreError::Unavailable(Box::new(error))
        } else {
            StoreError::Unexpected(Box::new(error))
        }
    }
}

/// Wraps a failed SDK call of the operation named `operation` as a [`StoreError`].
pub(crate) fn failed<E, R>(operation: &'static str) -> impl FnOnce(SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    R: fmt::Debug + Send + Sync + 'static,
{
    move |error| sdk_error(operation, error).into()
}

/// Classifies an SDK error (without consuming more of it than its kind, code and source).
pub(crate) fn sdk_error<E, R>(operation: &'static str, error: SdkError<E, R>) -> DynamoStoreError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    R: fmt::Debug + Send + Sync + 'static,
{
    let (kind, transient) = match &error {
        SdkError::ConstructionFailure(_) => ("construction failure".to_owned(), false),
        SdkError::TimeoutError(_) => ("timeout".to_owned(), true),
        SdkError::DispatchFailure(_) => ("dispatch failure".to_owned(), true),
        SdkError::ResponseError(_) => ("unreadable response".to_owned(), true),
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("unknown service error").to_owned();
            let transient = TRANSIENT_CODES.contains(&code.as_str());
            (code, transient)
        }
        _ => ("unknown".to_owned(), false),
    };
    let source: Option<Box<dyn StdError + Send + Sync>> = match error {
        // A service error's own source is its typed error (message text from DynamoDB: names, never values).
        SdkError::ServiceError(service) => Some(Box::new(service.into_err())),
        other => Some(Box::new(other)),
    };
    DynamoStoreError::Operation { operation, kind, transient, source }
}

/// A request builder's failure (a bug), as a [`StoreError`].
pub(crate) fn build_failed(operation: &'static str) -> impl FnOnce(aws_sdk_dynamodb::error::BuildError) -> StoreError {
    move |source| DynamoStoreError::Build { operation, source }.into()
}

/// A stored item with a missing or malformed attribute.
pub(crate) fn malformed(what: &'static str, attribute: &'static str) -> StoreError {
    DynamoStoreError::MalformedItem { what, attribute }.into()
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use aws_sdk_dynamodb::operation::get_item::GetItemError;
    use aws_sdk_dynamodb::types::error::ProvisionedThroughputExceededException;

    use super::*;

    fn service_error(code: &str) -> SdkError<GetItemError, ()> {
        let meta = aws_sdk_dynamodb::error::ErrorMetadata::builder().code(code).message("Zoë Secret").build();
        let err = GetItemError::ProvisionedThroughputExceededException(
            ProvisionedThroughputExceededException::builder().meta(meta).build(),
        );
        SdkError::service_error(err, ())
    }

    #[test]
    fn throttling_and_timeouts_are_unavailable() {
        let error = failed("person.get")(service_error("ProvisionedThroughputExceededException"));
        assert!(matches!(error, StoreError::Unavailable(_)), "got {error:?}");
        let timeout: SdkError<GetItemError, ()> = SdkError::timeout_error("slow");
        assert!(matches!(failed("person.get")(timeout), StoreError::Unavailable(_)));
    }

    #[test]
    fn other_service_errors_are_unexpected_and_name_the_operation_not_the_values() {
        let error = failed("person.get")(service_error("ValidationException"));
        assert!(matches!(error, StoreError::Unexpected(_)), "got {error:?}");
        let text = error.source().map(ToString::to_string).unwrap_or_default();
        assert_eq!(text, "storage operation person.get failed (ValidationException)");
        assert!(!format!("{error:?}").contains("Secret"), "Debug must not print SDK messages or items");
    }
}
