//! The table's schema and its migrations: creating the table (string `PK`/`SK`, on-demand capacity) with its
//! reporting index `GSI1`, adding that index to a table created before it existed, and writing the reporting
//! attributes onto the person items stored before then.
//!
//! # The reporting index
//!
//! Every person item carries `GSI1PK = REPORT#<first hex digit of its id>` and `GSI1SK = <id>` (16 shards, each
//! sorted by id text, which is id byte order), and the few figures `report_counts` needs (`lastModified`,
//! `tenureCount`, `referenceCount`, `reportable`), projected into the index with its keys (`INCLUDE`), so reports
//! page in id order and counts are summed without reading a single person document. See [`crate::reporting`].
//!
//! # Backfill without a Scan
//!
//! DynamoDB builds a new index from the items that already hold its key attributes; person items written before
//! the index existed hold none, so they are given them here. They are found through the feed, which holds the
//! create event of every person ever stored (events are never deleted): the feed is read a page at a time
//! (`Query PK = FEED`), the persons it names read with `BatchGetItem`, and each one lacking the attributes
//! updated with a condition on the `versionNumber` read (a person rewritten meanwhile was rewritten by a writer
//! that sets them itself). Memory holds one page; the cost is one read of every event and of every person, once
//! per table: a marker item `MIGRATION` / `report-index-backfill` records completion, and `connect` checks it with
//! one `GetItem`. A process still running a version of the store from before the index rewrites persons without
//! the attributes (they vanish from reports until their next write): upgrade every instance before relying on
//! reports.
//!
//! This module must not know the domain's rules beyond what [`crate::items`] derives from a person.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::create_table::CreateTableError;
use aws_sdk_dynamodb::operation::describe_table::DescribeTableError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, CreateGlobalSecondaryIndexAction, GlobalSecondaryIndex,
    GlobalSecondaryIndexUpdate, IndexStatus, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TableDescription, TableStatus,
};
use person_core::PersonId;
use person_core::ports::StoreError;

use crate::DynamoDbStore;
use crate::error::{DynamoStoreError, build_failed, failed, malformed};
use crate::items::{
    self, FEED_PK, Item, PERSON_SK, PK, PersonItem, REPORT_INDEX, SK, key, n, padded, person_attr, person_pk,
    report_attr, s,
};
use crate::queries::{self, NamedOperation};
use crate::repository::is_condition_failure;

/// Partition key of the migration markers.
const MIGRATION_PK: &str = "MIGRATION";

/// Sort key of the marker recording that the reporting attributes were backfilled.
const REPORT_BACKFILL_SK: &str = "report-index-backfill";

/// Feed events read per page of the backfill (a `BatchGetItem` of their persons takes at most 100 keys).
const BACKFILL_PAGE: usize = 100;

/// The attributes the reporting index projects besides its keys.
const PROJECTED: [&str; 4] =
    [report_attr::LAST_MODIFIED, report_attr::TENURES, report_attr::REFERENCES, report_attr::REPORTABLE];

/// Whether the table has the reporting index.
enum ReportIndex {
    Missing,
    Present {
        /// Built and queryable.
        active: bool,
    },
}

impl DynamoDbStore {
    /// See [`DynamoDbStore::migrate`].
    pub(crate) async fn ensure_schema(&self) -> Result<(), StoreError> {
        let description = match self.describe_table().await? {
            Some(description) => description,
            None => {
                self.create_table().await?;
                self.wait_until(|table| table.table_status() == Some(&TableStatus::Active)).await?
            }
        };
        check_key_schema(&description)?;
        let description = if description.table_status() == Some(&TableStatus::Active) {
            description
        } else {
            self.wait_until(|table| table.table_status() == Some(&TableStatus::Active)).await?
        };
        let index = report_index(&description)?;
        if let ReportIndex::Missing = index {
            self.add_report_index().await?;
        }
        self.backfill_report_attributes_once().await?;
        if let ReportIndex::Present { active: true } = index { Ok(()) } else { self.wait_for_report_index().await }
    }

    async fn describe_table(&self) -> Result<Option<TableDescription>, StoreError> {
        let operation = &queries::TABLE_DESCRIBE;
        let request = self.client()?.describe_table().table_name(&self.table).send();
        match self.options.queries.run(operation, request).await {
            Ok(output) => Ok(output.table),
            Err(SdkError::ServiceError(e)) if matches!(e.err(), DescribeTableError::ResourceNotFoundException(_)) => {
                Ok(None)
            }
            Err(e) => Err(failed(operation.name)(e)),
        }
    }

    async fn create_table(&self) -> Result<(), StoreError> {
        let operation = &queries::TABLE_CREATE;
        let request = self
            .client()?
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .set_attribute_definitions(Some(attribute_definitions(operation)?))
            .key_schema(key_element(operation, PK, KeyType::Hash)?)
            .key_schema(key_element(operation, SK, KeyType::Range)?)
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(REPORT_INDEX)
                    .key_schema(key_element(operation, report_attr::SHARD, KeyType::Hash)?)
                    .key_schema(key_element(operation, report_attr::ID, KeyType::Range)?)
                    .projection(report_projection())
                    .build()
                    .map_err(build_failed(operation.name))?,
            )
            .send();
        match self.options.queries.run(operation, request).await {
            Ok(_) => {
                tracing::info!(table = %self.table, "dynamodb table created");
                Ok(())
            }
            // Another process is creating it at the same time: wait for it like for our own.
            Err(SdkError::ServiceError(e)) if matches!(e.err(), CreateTableError::ResourceInUseException(_)) => Ok(()),
            Err(e) => Err(failed(operation.name)(e)),
        }
    }

    /// Adds the reporting index to an existing table (DynamoDB builds it in the background; the table stays
    /// usable meanwhile). A concurrent migration that added it first is not an error.
    async fn add_report_index(&self) -> Result<(), StoreError> {
        let operation = &queries::TABLE_ADD_REPORT_INDEX;
        let create = CreateGlobalSecondaryIndexAction::builder()
            .index_name(REPORT_INDEX)
            .key_schema(key_element(operation, report_attr::SHARD, KeyType::Hash)?)
            .key_schema(key_element(operation, report_attr::ID, KeyType::Range)?)
            .projection(report_projection())
            .build()
            .map_err(build_failed(operation.name))?;
        let request = self
            .client()?
            .update_table()
            .table_name(&self.table)
            .set_attribute_definitions(Some(attribute_definitions(operation)?))
            .global_secondary_index_updates(GlobalSecondaryIndexUpdate::builder().create(create).build())
            .send();
        match self.options.queries.run(operation, request).await {
            Ok(_) => {
                tracing::info!(table = %self.table, index = REPORT_INDEX, "dynamodb reporting index added");
                Ok(())
            }
            Err(error) => {
                // Another process may have added it first (the table is then being updated, or has the index).
                let added = self.describe_table().await?.map(|table| report_index(&table)).transpose()?;
                if matches!(added, Some(ReportIndex::Present { .. })) {
                    Ok(())
                } else {
                    Err(failed(operation.name)(error))
                }
            }
        }
    }

    /// Waits (with a growing pause, up to [`crate::DynamoDbOptions::table_ready_timeout`]) until the table's
    /// description satisfies `ready`, and returns it.
    async fn wait_until(&self, ready: impl Fn(&TableDescription) -> bool) -> Result<TableDescription, StoreError> {
        self.wait_at_most(ready)
            .await?
            .ok_or_else(|| DynamoStoreError::NotActive { seconds: self.options.table_ready_timeout.as_secs() }.into())
    }

    /// As [`Self::wait_until`], `None` when the time is up.
    async fn wait_at_most(
        &self,
        ready: impl Fn(&TableDescription) -> bool,
    ) -> Result<Option<TableDescription>, StoreError> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(50);
        loop {
            if let Some(description) = self.describe_table().await?
                && ready(&description)
            {
                return Ok(Some(description));
            }
            if started.elapsed() >= self.options.table_ready_timeout {
                return Ok(None);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }

    /// Waits until the reporting index is ACTIVE. DynamoDB may take long to build it on a large table: past
    /// [`crate::DynamoDbOptions::table_ready_timeout`] the store opens anyway (every other operation works) and
    /// reports fail, naming `report.index_page` or `report.counts`, until the index is ACTIVE.
    async fn wait_for_report_index(&self) -> Result<(), StoreError> {
        let active = |table: &TableDescription| {
            table.table_status() == Some(&TableStatus::Active)
                && table.global_secondary_indexes().iter().any(|index| {
                    index.index_name() == Some(REPORT_INDEX) && index.index_status() == Some(&IndexStatus::Active)
                })
        };
        if self.wait_at_most(active).await?.is_none() {
            tracing::warn!(
                table = %self.table,
                index = REPORT_INDEX,
                "the dynamodb reporting index is still being built; reports fail until it is ACTIVE"
            );
        }
        Ok(())
    }

    /// Backfills the reporting attributes unless the marker says it was done, then sets the marker.
    async fn backfill_report_attributes_once(&self) -> Result<(), StoreError> {
        let marker = key(MIGRATION_PK, REPORT_BACKFILL_SK);
        if self.get_item(&queries::MIGRATION_GET, marker.clone()).await?.is_some() {
            return Ok(());
        }
        let updated = self.backfill_report_attributes().await?;
        if updated > 0 {
            tracing::info!(table = %self.table, persons = updated, "reporting attributes backfilled");
        }
        let operation = &queries::MIGRATION_DONE;
        let request = self
            .client()?
            .update_item()
            .table_name(&self.table)
            .set_key(Some(marker))
            .update_expression("SET #type = :type, #completedAt = :now")
            .expression_attribute_names("#type", "type")
            .expression_attribute_names("#completedAt", "completedAt")
            .expression_attribute_values(":type", s("migration"))
            .expression_attribute_values(":now", s(chrono::Utc::now().to_rfc3339()))
            .send();
        self.options.queries.run_counted(operation, request, |_| Some(1)).await.map_err(failed(operation.name))?;
        Ok(())
    }

    /// Writes the reporting attributes onto every person item lacking them, found through the feed; returns how
    /// many it updated.
    pub(crate) async fn backfill_report_attributes(&self) -> Result<u64, StoreError> {
        let mut after = 0_u64;
        let mut updated = 0_u64;
        loop {
            let page = self
                .query(
                    &queries::BACKFILL_FEED_PAGE,
                    "#pk = :pk AND #sk > :after",
                    &[("#pk", PK), ("#sk", SK), ("#person", person_attr::PERSON_ID)],
                    vec![(":pk", s(FEED_PK)), (":after", s(padded(after)))],
                    Some("#sk, #person"),
                    Some(BACKFILL_PAGE),
                )
                .await?;
            let Some(last) = page.last() else { return Ok(updated) };
            after = items::get_s(last, SK, "event")?.parse().map_err(|_| malformed("event", SK))?;
            let persons: BTreeSet<PersonId> =
                page.iter().map(|event| items::holder_of(event, "event")).collect::<Result<_, _>>()?;
            let keys = persons.iter().map(|id| key(person_pk(*id), PERSON_SK)).collect();
            let stored = self.batch_get(&queries::BACKFILL_PERSONS_GET, keys, None).await?;
            for item in stored.values().filter(|item| !item.contains_key(report_attr::SHARD)) {
                if self.backfill_person(item).await? {
                    updated += 1;
                }
            }
            if page.len() < BACKFILL_PAGE {
                return Ok(updated);
            }
        }
    }

    /// Writes the reporting attributes of one stored person item, unless it changed since it was read (then its
    /// writer wrote them). True when it wrote them.
    async fn backfill_person(&self, item: &Item) -> Result<bool, StoreError> {
        let operation = &queries::BACKFILL_PERSON;
        let person = PersonItem::from_item(item)?.person;
        let mut request = self
            .client()?
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(person_pk(person.id), PERSON_SK)))
            .condition_expression("#version = :read")
            .expression_attribute_names("#version", person_attr::VERSION)
            .expression_attribute_values(":read", n(person.version_number));
        let mut assignments = Vec::new();
        for (index, (attribute, value)) in items::report_attributes(&person).into_iter().enumerate() {
            assignments.push(format!("#a{index} = :a{index}"));
            request = request
                .expression_attribute_names(format!("#a{index}"), attribute)
                .expression_attribute_values(format!(":a{index}"), value);
        }
        let request = request.update_expression(format!("SET {}", assignments.join(", "))).send();
        match self.options.queries.run_counted(operation, request, |_| Some(1)).await {
            Ok(_) => Ok(true),
            Err(error) if is_condition_failure(&error) => Ok(false),
            Err(error) => Err(failed(operation.name)(error)),
        }
    }
}

/// The attribute definitions of the table's and the index's keys (all strings).
fn attribute_definitions(operation: &'static NamedOperation) -> Result<Vec<AttributeDefinition>, StoreError> {
    [PK, SK, report_attr::SHARD, report_attr::ID]
        .into_iter()
        .map(|attribute| {
            AttributeDefinition::builder()
                .attribute_name(attribute)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(build_failed(operation.name))
        })
        .collect()
}

fn key_element(
    operation: &'static NamedOperation,
    attribute: &str,
    key_type: KeyType,
) -> Result<KeySchemaElement, StoreError> {
    KeySchemaElement::builder()
        .attribute_name(attribute)
        .key_type(key_type)
        .build()
        .map_err(build_failed(operation.name))
}

/// The reporting index projects its keys and the figures `report_counts` sums (never the person document: a
/// report page reads the persons themselves, consistently, with `BatchGetItem`).
fn report_projection() -> Projection {
    Projection::builder()
        .projection_type(ProjectionType::Include)
        .set_non_key_attributes(Some(PROJECTED.iter().map(|attribute| (*attribute).to_owned()).collect()))
        .build()
}

/// Refuses a table whose keys are not the string `PK` (hash) and `SK` (range) this store writes.
fn check_key_schema(description: &TableDescription) -> Result<(), StoreError> {
    let has_key = |attribute: &str, key_type: KeyType| {
        description.key_schema().iter().any(|k| k.attribute_name() == attribute && k.key_type() == &key_type)
    };
    let is_string = |attribute: &str| {
        description
            .attribute_definitions()
            .iter()
            .any(|d| d.attribute_name() == attribute && d.attribute_type() == &ScalarAttributeType::S)
    };
    let usable = description.key_schema().len() == 2
        && has_key(PK, KeyType::Hash)
        && has_key(SK, KeyType::Range)
        && is_string(PK)
        && is_string(SK);
    if usable { Ok(()) } else { Err(DynamoStoreError::WrongKeySchema.into()) }
}

/// Whether the table has the reporting index; an index of that name with other keys is refused.
fn report_index(description: &TableDescription) -> Result<ReportIndex, StoreError> {
    let Some(index) = description.global_secondary_indexes().iter().find(|i| i.index_name() == Some(REPORT_INDEX))
    else {
        return Ok(ReportIndex::Missing);
    };
    let has_key = |attribute: &str, key_type: KeyType| {
        index.key_schema().iter().any(|k| k.attribute_name() == attribute && k.key_type() == &key_type)
    };
    let usable = index.key_schema().len() == 2
        && has_key(report_attr::SHARD, KeyType::Hash)
        && has_key(report_attr::ID, KeyType::Range);
    if !usable {
        return Err(DynamoStoreError::WrongIndexSchema.into());
    }
    Ok(ReportIndex::Present { active: index.index_status() == Some(&IndexStatus::Active) })
}
