//! [`ReportingRepository`] for [`DynamoDbStore`]: bulk reads for Qlik loads and CSV exports through the
//! reporting index `GSI1` (see [`crate::schema`] for its keys and projection), never a Scan.
//!
//! Ascending id order is the 16 shards `REPORT#0` … `REPORT#f` in turn, each a `Query` in `GSI1SK` (id text)
//! order. A page starts in the shard of `after` with `GSI1SK > after`, skips `offset` matching index items client
//! side, takes `limit` ids, following `LastEvaluatedKey` page by page (never more than one index page in memory),
//! then reads those persons with a consistent `BatchGetItem`, so a report returns persons exactly as stored.
//! `modified_since` is a filter on the projected `lastModified` (filtered items are read and paid for, not
//! returned). `report_counts` queries the 16 shards concurrently and sums the projected figures of every index
//! item selected: it reads the whole index (about 100 bytes an item), never a person document.
//!
//! Index reads are eventually consistent (DynamoDB offers nothing else on a global index): a person written in
//! the last moment (typically well under a second) may be missing from, or selected by its previous
//! `lastModified` in, a report. Reports are bulk extracts, followed by `after`; the next load picks it up.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::future::try_join_all;
use person_core::ports::{ReportCounts, ReportQuery, ReportingRepository, StoreError};
use person_core::{Person, PersonId};

use crate::DynamoDbStore;
use crate::error::failed;
use crate::items::{
    self, Item, PERSON_SK, PersonItem, REPORT_INDEX, REPORT_SHARDS, ReportFigures, key, n, nanos, person_pk,
    report_attr, report_shard, s,
};
use crate::queries::{self, NamedOperation};

/// Most index items one `Query` of a report page evaluates (DynamoDB also stops at 1 MB).
const INDEX_PAGE: u64 = 1000;

/// One `Query` of a reporting shard, as [`DynamoDbStore::query_shard`] sends it.
struct ShardQuery {
    operation: &'static NamedOperation,
    shard: u8,
    after: Option<String>,
    modified_since: Option<DateTime<Utc>>,
    /// The attributes read, as `(placeholder, attribute)`.
    projection: &'static [(&'static str, &'static str)],
    limit: Option<u64>,
}

impl DynamoDbStore {
    /// One page of one shard of the reporting index: its items and where the next page starts (`None`: the
    /// shard is done).
    async fn query_shard(
        &self,
        query: &ShardQuery,
        start: Option<Item>,
    ) -> Result<(Vec<Item>, Option<Item>), StoreError> {
        let operation = query.operation;
        let mut names = vec![("#shard", report_attr::SHARD)];
        names.extend_from_slice(query.projection);
        let mut request = self
            .client()?
            .query()
            .table_name(&self.table)
            .index_name(REPORT_INDEX)
            .expression_attribute_values(":shard", s(report_shard(query.shard)))
            .projection_expression(
                query.projection.iter().map(|(placeholder, _)| *placeholder).collect::<Vec<_>>().join(", "),
            )
            .set_exclusive_start_key(start);
        request = match &query.after {
            Some(after) => {
                names.push(("#after_id", report_attr::ID));
                request
                    .key_condition_expression("#shard = :shard AND #after_id > :after")
                    .expression_attribute_values(":after", s(after.clone()))
            }
            None => request.key_condition_expression("#shard = :shard"),
        };
        if let Some(since) = query.modified_since {
            names.push(("#since_modified", report_attr::LAST_MODIFIED));
            request = request
                .filter_expression("#since_modified >= :since")
                .expression_attribute_values(":since", n(nanos(since)));
        }
        for (placeholder, attribute) in names {
            request = request.expression_attribute_names(placeholder, attribute);
        }
        if let Some(limit) = query.limit {
            request = request.limit(i32::try_from(limit.clamp(1, INDEX_PAGE)).unwrap_or(1));
        }
        let output = self
            .options
            .queries
            .run_counted(operation, request.send(), |output| Some(output.items().len() as u64))
            .await
            .map_err(failed(operation.name))?;
        let next = output.last_evaluated_key.filter(|last| !last.is_empty());
        Ok((output.items.unwrap_or_default(), next))
    }

    /// The ids of one report page, in id order.
    async fn report_ids(&self, query: &ReportQuery) -> Result<Vec<PersonId>, StoreError> {
        let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
        let after = query.after.map(|id| id.to_string());
        let first_shard = after.as_ref().and_then(|text| text.as_bytes().first().copied()).unwrap_or(b'0');
        let mut to_skip = query.offset;
        let mut ids = Vec::new();
        for &shard in REPORT_SHARDS.iter().filter(|&&digit| digit >= first_shard) {
            let mut shard_query = ShardQuery {
                operation: &queries::REPORT_INDEX_PAGE,
                shard,
                after: after.clone().filter(|_| shard == first_shard),
                modified_since: query.modified_since,
                projection: &[("#id", report_attr::ID)],
                limit: None,
            };
            let mut start = None;
            loop {
                let wanted = (limit - ids.len()) as u64;
                shard_query.limit = Some(to_skip.saturating_add(wanted));
                let (page, next) = self.query_shard(&shard_query, start).await?;
                for item in &page {
                    if to_skip > 0 {
                        to_skip -= 1;
                        continue;
                    }
                    ids.push(items::report_id_of(item)?);
                    if ids.len() >= limit {
                        return Ok(ids);
                    }
                }
                match next {
                    Some(next) => start = Some(next),
                    None => break,
                }
            }
        }
        Ok(ids)
    }

    /// The figures of one shard, summed over every index item `modified_since` selects.
    async fn shard_counts(&self, shard: u8, modified_since: Option<DateTime<Utc>>) -> Result<ReportCounts, StoreError> {
        let query = ShardQuery {
            operation: &queries::REPORT_COUNTS,
            shard,
            after: None,
            modified_since,
            projection: &[
                ("#tenures", report_attr::TENURES),
                ("#references", report_attr::REFERENCES),
                ("#reportable", report_attr::REPORTABLE),
            ],
            limit: None,
        };
        let mut counts = ReportCounts::default();
        let mut start = None;
        loop {
            let (page, next) = self.query_shard(&query, start).await?;
            for item in &page {
                let figures = ReportFigures::from_item(item)?;
                counts.persons += 1;
                if figures.reportable {
                    counts.tenures += figures.tenures;
                    counts.references += figures.references;
                } else {
                    counts.withheld += 1;
                }
            }
            match next {
                Some(next) => start = Some(next),
                None => return Ok(counts),
            }
        }
    }
}

#[async_trait]
impl ReportingRepository for DynamoDbStore {
    async fn report_persons(&self, query: &ReportQuery) -> Result<Vec<Person>, StoreError> {
        if query.limit == 0 {
            return Ok(Vec::new());
        }
        let ids = self.report_ids(query).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys = ids.iter().map(|id| key(person_pk(*id), PERSON_SK)).collect();
        let mut stored = self.batch_get(&queries::REPORT_PERSONS_GET, keys, None).await?;
        let mut persons = Vec::with_capacity(ids.len());
        for id in ids {
            // Persons are never removed from the table; an id without its item is an index entry of a person
            // whose item vanished (edited by hand): nothing to report.
            if let Some(item) = stored.remove(&(person_pk(id), PERSON_SK.to_owned())) {
                persons.push(PersonItem::from_item(&item)?.person);
            }
        }
        Ok(persons)
    }

    async fn report_counts(&self, modified_since: Option<DateTime<Utc>>) -> Result<ReportCounts, StoreError> {
        let shards = try_join_all(REPORT_SHARDS.iter().map(|&shard| self.shard_counts(shard, modified_since))).await?;
        Ok(shards.into_iter().fold(ReportCounts::default(), |total, shard| ReportCounts {
            persons: total.persons + shard.persons,
            withheld: total.withheld + shard.withheld,
            tenures: total.tenures + shard.tenures,
            references: total.references + shard.references,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_follow_the_order_of_id_text() {
        let mut sorted = REPORT_SHARDS.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, REPORT_SHARDS.to_vec());
        let id = PersonId::parse("0a1b2c3d-0000-4000-8000-000000000000").expect("a valid id");
        assert_eq!(items::report_shard_of(id), "REPORT#0");
    }
}
