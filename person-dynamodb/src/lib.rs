//! The DynamoDB store of the Person API: [`DynamoDbStore`], an implementation of every storage port
//! ([`person_core::ports::Store`]: [`person_core::PersonRepository`], [`person_core::DocumentRepository`],
//! [`person_core::AuditLog`], [`person_core::ports::ReportingRepository`], [`person_core::ports::RelayRepository`]
//! and [`person_core::ports::QueryCatalogue`]) on one DynamoDB table, chosen with a
//! `dynamodb://<table>?region=<region>&endpoint=<URL>` storage URL (SPEC §10).
//!
//! # Single-table design
//!
//! Every item lives in one table keyed by two strings, `PK` and `SK` (`docs/storage.md#dynamodb` lists each
//! item type and maps every access pattern to a `GetItem`, `BatchGetItem` or single-partition `Query`; nothing
//! scans). A person and everything filed under it (history, documents, equality keys, audit index) share the
//! partition `PERSON#<id>`; search keys are postings `KEY#<key>` → `<id>#<source>`; the dedup key of each live
//! person is an item `DEDUP#<key>` holding its id, and so is each of its cross-references (`REF#<system>:<id>`);
//! events live in one ordered partition `FEED`; each event relay's lease and position is an item `RELAY#<name>`.
//!
//! One global secondary index, `GSI1`, serves reports: every person item is in it, in 16 shards by the first hex
//! digit of its id (`GSI1PK = REPORT#<digit>`, `GSI1SK = <id>`), with the few figures `report_counts` sums
//! projected alongside its keys (see `src/schema.rs` and `src/reporting.rs`).
//!
//! Every operation sent is reported, under its name in [`queries::CATALOGUE`], to the
//! [`DynamoDbOptions::queries`] observer.
//!
//! # Atomic writes
//!
//! Every change is ONE `TransactWriteItems`: the person item with a condition on `versionNumber`
//! (compare-and-set; `attribute_not_exists` for a create), the idempotency record, dedup item and reference items
//! with conditions that make duplicates impossible, the feed counter, the event, the history entry, the search-key
//! postings added and removed, and the audit entry. A cancelled transaction is explained by its cancellation
//! reasons, item by item (position and code, with the item's old values for the version or holder to report),
//! never by message text. Reads that prepare a write (the person's stored keys, the counter) are validated by
//! the transaction's own conditions, so nothing is read-then-written unguarded.
//!
//! # The feed
//!
//! Positions are serialised through one counter item (`COUNTER`/`FEED`): each event-writing transaction moves
//! it from the position it read to the next with a condition on the value read, and writes its event at that
//! position. Two writers can never take the same position, and position `p + 1` can only be taken after the
//! transaction holding `p` committed, so positions become visible in order with no gaps: a reader following
//! `events_after` sees every event exactly once and never finds one appear below a position it has passed.
//!
//! Writers of one process queue for the counter in process (an async mutex held for one `TransactWriteItems`,
//! with the counter's value cached between them), so they never race each other at DynamoDB; writers of other
//! processes are detected by the counter's condition, whose failure returns the counter's current value, and
//! the write is retried at once, then with jittered backoff (bounded by
//! [`DynamoDbOptions::max_contention_attempts`], then [`person_core::StoreError::Unavailable`]). The cost:
//! event-writing changes are serialised table-wide, one transaction latency each (documented with numbers in
//! `docs/storage.md#dynamodb`).
//! The same counter item allocates `personRef`s inside the create's transaction, so a refused create
//! consumes none.
//!
//! Driver types never leave this crate: every failure is a [`person_core::StoreError`].

mod audit;
mod client;
mod documents;
mod error;
mod import;
mod items;
mod location;
mod merge;
pub mod options;
pub mod queries;
mod references;
mod relay;
mod reporting;
mod repository;
mod schema;
mod search;
#[cfg(feature = "testing")]
pub mod testing;
mod tx;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use person_core::ports::{QueryCatalogue, StoreError};
use person_core::storage::NamedQuery;

pub use options::DynamoDbOptions;

use crate::client::OperationCounts;
use crate::error::DynamoStoreError;
use crate::location::TableLocation;

/// The DynamoDB store; see the crate documentation for its design.
///
/// Cheap to clone: clones share the SDK client (and its connection pool).
#[derive(Clone)]
pub struct DynamoDbStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
    options: DynamoDbOptions,
    counts: OperationCounts,
    closed: Arc<AtomicBool>,
    /// Serialises this process's event-writing transactions and caches the feed counter between them (see
    /// [`DynamoDbStore::transact_with_event`]).
    feed: Arc<tokio::sync::Mutex<Option<repository::Counter>>>,
    /// This handle's identity when it claims a turn of the feed counter (random per `connect`).
    handle_id: u128,
}

impl DynamoDbStore {
    /// Connects to the table named by `url`, creating it (and waiting until it is ACTIVE) when it is missing.
    ///
    /// `url` is `dynamodb://<table>?region=<region>&endpoint=<URL>`. Without `region` the standard AWS chain
    /// (`AWS_REGION`, profile) is asked. With `endpoint` (a local DynamoDB-compatible server) the client uses
    /// static test credentials; otherwise credentials come from the standard AWS chain (environment, profile,
    /// web identity, container or instance role).
    ///
    /// # Errors
    /// [`StoreError::Unexpected`] for a URL that is not a usable DynamoDB URL, no region, or a table with a
    /// different key schema; [`StoreError::Unavailable`] when DynamoDB cannot be reached or the table does not
    /// become ACTIVE within [`DynamoDbOptions::table_ready_timeout`].
    pub async fn connect(url: &str, options: DynamoDbOptions) -> Result<Self, StoreError> {
        let location = TableLocation::parse(url)?;
        let counts = OperationCounts::default();
        let client = client::build(&location, &options, counts.clone()).await?;
        let store = Self {
            client,
            table: location.table,
            options,
            counts,
            closed: Arc::new(AtomicBool::new(false)),
            feed: Arc::new(tokio::sync::Mutex::new(None)),
            handle_id: uuid::Uuid::new_v4().as_u128(),
        };
        store.migrate().await?;
        tracing::info!(
            table = %store.table,
            region = location.region.as_deref().unwrap_or("<from the AWS chain>"),
            local_endpoint = location.endpoint.is_some(),
            "dynamodb store connected"
        );
        Ok(store)
    }

    /// Brings the table to the schema this store needs (for the `migrate` sub-command; [`Self::connect`] already
    /// does this): creates it with its reporting index when it is missing and waits until it is ACTIVE; adds the
    /// reporting index (`UpdateTable`) to a table created before it existed; and, once per table, writes the
    /// reporting attributes onto the person items stored before (found through the feed, never by a Scan; a
    /// marker item records that it was done). Idempotent: an existing table with the expected keys and index is
    /// left as it is, and a concurrent migration by another process is waited for or repeated harmlessly. A new
    /// index on a large table may take DynamoDB long to build: past [`DynamoDbOptions::table_ready_timeout`] this
    /// returns anyway (with a warning) and reports fail until the index is ACTIVE.
    ///
    /// # Errors
    /// As [`Self::connect`]; also [`StoreError::Unexpected`] for a table whose index `GSI1` has other keys.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.ensure_schema().await
    }

    /// The table name.
    #[must_use]
    pub fn table(&self) -> &str {
        &self.table
    }

    /// How many times each DynamoDB API operation (`GetItem`, `Query`, `TransactWriteItems` …) has been sent by
    /// this store (and its clones) since it was connected. Retries of one operation count once.
    #[must_use]
    pub fn sdk_operations_sent(&self) -> BTreeMap<String, u64> {
        self.counts.snapshot()
    }

    /// Marks the store closed: later operations fail with [`StoreError::Unavailable`]. The SDK client holds no
    /// server-side resources; its connections close when the last clone of the store is dropped.
    pub async fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    /// The client, unless the store is closed.
    pub(crate) fn client(&self) -> Result<&aws_sdk_dynamodb::Client, StoreError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(DynamoStoreError::Closed.into());
        }
        Ok(&self.client)
    }
}

impl fmt::Debug for DynamoDbStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamoDbStore").field("table", &self.table).finish_non_exhaustive()
    }
}

impl QueryCatalogue for DynamoDbStore {
    fn store_kind(&self) -> &'static str {
        "dynamodb"
    }

    /// Every DynamoDB operation the store sends, each under the name its executions are reported with.
    fn statements(&self) -> &'static [NamedQuery] {
        queries::CATALOGUE
    }
}
