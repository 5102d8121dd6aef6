//! [`ReportingRepository`] for [`SqliteStore`]: bulk reads for Qlik loads and CSV exports, each one statement on
//! a reader connection, so a long export never holds the write lock.
//!
//! Pages are in ascending id order: ids are stored as the canonical lower-case hyphenated text of the UUID
//! (`PersonId`'s `Display`), whose BINARY (byte) order is the UUIDs' byte order, so `WHERE id > ?` on the text is
//! exact keyset paging. A page is one range read of `persons_report_idx (id, last_modified)` from the keyset
//! position; `modifiedSince` is tested in the index, so only the selected persons' rows (documents) are read. An
//! `offset` is skipped by stepping the index (cost grows with the offset; keyset paging does not). Counts sum the
//! columns every person write keeps (`state`, `processing_restricted`, `tenure_count`, `reference_count`) in an
//! index-only read of `persons_report_counts_idx`, never parsing a document. This module knows no SQL text.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use person_core::Person;
use person_core::ports::{ReportCounts, ReportQuery, ReportingRepository, StoreError};

use crate::SqliteStore;
use crate::error::failed;
use crate::execution::single;
use crate::queries;
use crate::rows::{ReportCountsRow, timestamp};
use person_core::storage::from_json;

/// Sorts before every stored id and timestamp: binding it leaves a `>`/`>=` bound open.
const NO_BOUND: &str = "";

/// The stored text `modified_since` compares with (inclusive), or no bound.
fn since_bound(modified_since: Option<DateTime<Utc>>) -> String {
    modified_since.map(timestamp).unwrap_or_else(|| NO_BOUND.to_owned())
}

#[async_trait]
impl ReportingRepository for SqliteStore {
    async fn report_persons(&self, query: &ReportQuery) -> Result<Vec<Person>, StoreError> {
        let after = query.after.map_or_else(|| NO_BOUND.to_owned(), |id| id.to_string());
        // SQLite's OFFSET is a signed 64-bit integer: no table holds more rows than it can skip.
        let offset = i64::try_from(query.offset).unwrap_or(i64::MAX);
        let page = &queries::REPORT_PERSONS;
        let statement = sqlx::query_scalar::<_, String>(page.sql)
            .bind(after)
            .bind(since_bound(query.modified_since))
            .bind(i64::from(query.limit))
            .bind(offset)
            .fetch_one(&self.readers);
        // Parsed inside the recorded execution, so the catalogue counts persons, not the one row.
        let page_of_persons = async {
            let documents = statement.await.map_err(failed(page.name))?;
            from_json::<Vec<Person>>(&documents, "report page")
        };
        self.recorder.run_counted(page, page_of_persons, |persons| u64::try_from(persons.len()).ok()).await
    }

    async fn report_counts(&self, modified_since: Option<DateTime<Utc>>) -> Result<ReportCounts, StoreError> {
        let counts = &queries::REPORT_COUNTS;
        let statement =
            sqlx::query_as::<_, ReportCountsRow>(counts.sql).bind(since_bound(modified_since)).fetch_one(&self.readers);
        single(&self.recorder, counts, statement).await.map_err(failed(counts.name))?.into_counts()
    }
}
