//! [`ReportingRepository`] for [`PostgresStore`]: bulk reads of `persons` for Qlik loads and CSV exports, one
//! bounded page per statement.
//!
//! A page is read in id order (UUID order is byte order, the order of the hyphenated lower-case text) by keyset
//! (`id > after`) and offset; its statement runs unprepared, so PostgreSQL plans each page with its own values: a
//! full load reads the primary key from `after`, an incremental load of few recent changes reads
//! `persons_report_idx` from `modified_since` and sorts only those. Counts read the columns every person write keeps
//! beside the document (`state`, `processing_restricted`, `tenure_count`, `reference_count`), never a document.
//! This module knows no domain rule: the service decides what a reported person shows.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use person_core::Person;
use person_core::ports::{ReportCounts, ReportQuery, ReportingRepository, StoreError};

use crate::PostgresStore;
use crate::error::failed;
use crate::queries;
use crate::recorded::{fetched, one};
use crate::rows::{DocumentText, ReportCountsRow};

#[async_trait]
impl ReportingRepository for PostgresStore {
    async fn report_persons(&self, query: &ReportQuery) -> Result<Vec<Person>, StoreError> {
        if query.limit == 0 {
            return Ok(Vec::new());
        }
        // Nothing lies beyond i64::MAX rows: a larger offset skips everything, as the largest one does.
        let offset = i64::try_from(query.offset).unwrap_or(i64::MAX);
        let statement = &queries::REPORT_PERSONS;
        let page = sqlx::query_as::<_, DocumentText>(statement.sql)
            // Unnamed, so planned with this page's values (a cached generic plan could not tell a full load from
            // an incremental one).
            .persistent(false)
            .bind(query.modified_since)
            .bind(query.after.map(|id| id.as_uuid()))
            .bind(offset)
            .bind(i64::from(query.limit))
            .fetch_all(&self.pool);
        self.queries
            .run_counted(statement, page, fetched)
            .await
            .map_err(failed(statement.name))?
            .into_iter()
            .map(DocumentText::into_person)
            .collect()
    }

    async fn report_counts(&self, modified_since: Option<DateTime<Utc>>) -> Result<ReportCounts, StoreError> {
        let statement = &queries::REPORT_COUNTS;
        let counts = sqlx::query_as::<_, ReportCountsRow>(statement.sql).bind(modified_since).fetch_one(&self.pool);
        self.queries.run_counted(statement, counts, one).await.map_err(failed(statement.name))?.into_counts()
    }
}
