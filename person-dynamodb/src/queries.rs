//! Every DynamoDB operation the store issues, with a stable name, and [`CATALOGUE`], the list the query catalogue
//! (`GET /admin/queries`, SPEC §10) shows.
//!
//! A "statement" here is the DynamoDB API call and its key pattern (`Query PK = KEY#<key>`): it names item
//! shapes, never values, so it is safe to log and publish. `docs/storage.md#dynamodb` explains each item type.
//! No operation is a `Scan`: every access pattern is a `GetItem`, `BatchGetItem`, `Query` on one partition (of
//! the table or of its reporting index `GSI1`), or a write. This module knows nothing about items or domain types.

/// A DynamoDB operation with its stable name: `sql` holds the DynamoDB API call and key pattern, e.g.
/// `GetItem PK = PERSON#<id>, SK = PERSON` (the catalogue type every store shares).
pub use person_core::storage::NamedQuery as NamedOperation;

person_core::named_queries! {
    /// Reads one person (any state).
    PERSON_GET = "person.get" => "GetItem PK = PERSON#<id>, SK = PERSON (consistent)";
    /// Reads the person items of candidates and their equality documents, up to 100 keys per call.
    PERSON_BATCH_GET = "person.batch_get" =>
        "BatchGetItem {PK = PERSON#<id>, SK = PERSON} and {PK = PERSON#<id>, SK = DOC#equality} (consistent)";
    /// Which of the given persons are restricted, up to 100 ids per call.
    PERSON_RESTRICTED_AMONG = "person.restricted_among" =>
        "BatchGetItem PK = PERSON#<id>, SK = PERSON projecting restricted (consistent)";
    /// Creates a person: person (attribute_not_exists), its personRef's claim item (attribute_not_exists),
    /// idempotency record (attribute_not_exists), dedup item (attribute_not_exists), reference items
    /// (attribute_not_exists), feed counter (compare-and-set on position and personRef, allocating the personRef),
    /// event, history, search keys, audit entry.
    PERSON_INSERT = "person.insert" =>
        "TransactWriteItems Put PERSON#<id>/PERSON if not exists, Put PERSONREF#<ref>/PERSONREF if not exists, \
         Put IDEMPOTENCY#<key> if not exists, Put DEDUP#<key> if not exists, Put REF#<system>:<id>/REF if not exists, \
         Update COUNTER/FEED if position = :expected AND personRef = :read, Put FEED/<position>, \
         Put PERSON#<id>/HISTORY#<version>, Put KEY#<key>/<id>#person, Put AUDIT/<position>, \
         Put PERSON#<id>/AUDIT#<position>";
    /// Updates a person: compare-and-set on versionNumber, feed counter, event, history, search-key items added
    /// and removed, dedup items moved, reference items taken and released (only those that change), audit entry.
    PERSON_UPDATE = "person.update" =>
        "TransactWriteItems Put PERSON#<id>/PERSON if versionNumber = :expected, Update COUNTER/FEED if position = \
         :expected, Put FEED/<position>, Put PERSON#<id>/HISTORY#<version>, Put|Delete KEY#<key>/<id>#<source>, \
         Put DEDUP#<key> if free or held by <id>, Delete DEDUP#<old key>, \
         Put|Delete REF#<system>:<id>/REF if free or held by <id>, \
         Delete PERSON#<id>/KEYS#equality if rev = :rev, Put AUDIT/<position>, Put PERSON#<id>/AUDIT#<position>";
    /// Merges two persons in one transaction.
    PERSON_MERGE = "person.merge" =>
        "TransactWriteItems Put PERSON#<survivor>/PERSON and PERSON#<duplicate>/PERSON if versionNumber = \
         :expected, Delete PERSON#<duplicate>/DOC#<kind> if version = :expected, Put PERSON#<survivor>/DOC#<kind> \
         if not exists, Put|Delete KEY#<key>/<id>#<source>, Put DEDUP#<key> if free or held by either, \
         Put|Delete REF#<system>:<id>/REF if free or held by either, \
         Update COUNTER/FEED if position = :expected, Put FEED/<position>, Put HISTORY of both, audit entry";
    /// The live person holding a cross-reference (also read when a cancelled write's reason lacks the holder).
    REFERENCE_FIND = "person.find_by_reference" => "GetItem PK = REF#<system>:<id>, SK = REF (consistent)";
    /// Reads the feed counter before a write that appends an event.
    COUNTER_GET = "counter.get" => "GetItem PK = COUNTER, SK = FEED (consistent)";
    /// Claims the next feed turn for a handle that keeps losing the counter race (fairness between processes).
    COUNTER_CLAIM = "counter.claim" =>
        "UpdateItem PK = COUNTER, SK = FEED SET claim, claimUntil if no unexpired claim of another handle";
    /// Allocates the next audit position.
    AUDIT_POSITION_NEXT = "audit.next_position" =>
        "UpdateItem PK = COUNTER, SK = AUDIT ADD position 1 RETURNING UPDATED_NEW";
    /// Appends an audit entry and files it under each person it names (an import's entry, naming up to a batch of
    /// persons, in transactions of at most 3.5 MB too: each item holds the whole entry).
    AUDIT_APPEND = "audit.append" =>
        "TransactWriteItems Put AUDIT/<position>, Put PERSON#<id>/AUDIT#<position> per person (chunks of 100)";
    /// A page of the audit entries naming a person.
    AUDIT_FOR_PERSON = "audit.for_person" =>
        "Query PK = PERSON#<id>, SK BETWEEN AUDIT#<after + 1> AND AUDIT#<max> (consistent, limit)";
    /// A page of the feed.
    EVENTS_AFTER = "events.after" => "Query PK = FEED, SK > <after> (consistent, limit)";
    /// Every history entry of a person.
    HISTORY_LIST = "history.list" => "Query PK = PERSON#<id>, SK BEGINS_WITH HISTORY# (consistent)";
    /// Reads an idempotency record.
    IDEMPOTENCY_GET = "idempotency.get" => "GetItem PK = IDEMPOTENCY#<key>, SK = IDEMPOTENCY (consistent)";
    /// Candidate retrieval, one Query per distinct search key.
    SEARCH_KEY_QUERY = "person.search_candidates" =>
        "Query PK = KEY#<key> projecting SK (consistent), then BatchGetItem of the ranked persons";
    /// Reads a person's equality keys before a write replaces or drops them.
    EQUALITY_KEYS_GET = "search_keys.equality_get" => "GetItem PK = PERSON#<id>, SK = KEYS#equality (consistent)";
    /// Reads one document.
    DOCUMENT_GET = "document.get" => "GetItem PK = PERSON#<id>, SK = DOC#<kind> (consistent)";
    /// Every document of a person.
    DOCUMENT_LIST = "document.list" => "Query PK = PERSON#<id>, SK BEGINS_WITH DOC# (consistent)";
    /// Puts or deletes a document (compare-and-set on its version) with its equality keys and audit entry.
    DOCUMENT_WRITE = "document.write" =>
        "TransactWriteItems Put|Delete|ConditionCheck PERSON#<id>/DOC#<kind> if version = :expected (or not \
         exists), Put PERSON#<id>/KEYS#equality if rev = :rev, Put|Delete KEY#<key>/<id>#equality, \
         Put AUDIT/<position>, Put PERSON#<id>/AUDIT#<position>";
    /// Deletes the postings of a person no longer live that its transaction had no room for (a merge of two
    /// persons with many keys), right after the transaction commits.
    POSTINGS_CLEANUP = "search_keys.cleanup" =>
        "BatchWriteItem Delete KEY#<key>/<id>#<source> (25 per call)";
    /// Checks that the table answers.
    STORE_PING = "store.ping" => "GetItem PK = COUNTER, SK = FEED projecting PK (eventually consistent)";
    /// One page of the ids a report reads, from one shard of the reporting index, in id order.
    REPORT_INDEX_PAGE = "report.index_page" =>
        "Query INDEX GSI1 GSI1PK = REPORT#<hex digit>, GSI1SK > <after id> [FILTER lastModified >= :since] \
         projecting GSI1SK (limit)";
    /// The persons of one report page, by id.
    REPORT_PERSONS_GET = "report.persons_get" => "BatchGetItem PK = PERSON#<id>, SK = PERSON (consistent)";
    /// The counts of a report, read from one shard of the reporting index (every page of it).
    REPORT_COUNTS = "report.counts" =>
        "Query INDEX GSI1 GSI1PK = REPORT#<hex digit> [FILTER lastModified >= :since] \
         projecting tenureCount, referenceCount, reportable";
    /// Takes a relay's lease: free, expired, or already held by the caller (a renewal).
    RELAY_ACQUIRE = "relay.acquire" =>
        "UpdateItem PK = RELAY#<name>, SK = RELAY SET holder, expiresAt, position if absent \
         if not exists OR expiresAt <= :now OR holder = :holder RETURNING ALL_NEW";
    /// Advances a relay's position and renews its lease, while the caller holds it and the position grows.
    RELAY_ADVANCE = "relay.advance" =>
        "UpdateItem PK = RELAY#<name>, SK = RELAY SET position, expiresAt \
         if holder = :holder AND expiresAt > :now AND position <= :position";
    /// Renews a relay's lease keeping its (higher) stored position, after `relay.advance` was refused.
    RELAY_RENEW = "relay.renew" =>
        "UpdateItem PK = RELAY#<name>, SK = RELAY SET expiresAt \
         if holder = :holder AND expiresAt > :now AND position > :position";
    /// Gives a relay's lease up, keeping its position.
    RELAY_RELEASE = "relay.release" =>
        "UpdateItem PK = RELAY#<name>, SK = RELAY SET holder = '', expiresAt = <min> if holder = :holder";
    /// Reads a relay's lease and position.
    RELAY_STATE = "relay.state" => "GetItem PK = RELAY#<name>, SK = RELAY (consistent)";
    /// Import: what the store already holds of a batch (its persons, the claims of its kept personRefs, its
    /// references and dedup keys), up to 100 keys per call.
    IMPORT_READ = "import.read_existing" =>
        "BatchGetItem {PK = PERSON#<id>, SK = PERSON}, {PK = PERSONREF#<ref>, SK = PERSONREF}, \
         {PK = REF#<system>:<id>, SK = REF}, {PK = DEDUP#<key>, SK = DEDUP} projecting PK, SK, personId (consistent)";
    /// Import: raises the personRef sequence to the largest personRef a batch keeps (never lowers it).
    IMPORT_RAISE_PERSON_REF = "import.raise_person_ref" =>
        "UpdateItem PK = COUNTER, SK = FEED SET personRef = :largest \
         if attribute_not_exists(personRef) OR personRef < :largest";
    /// Import: allocates the personRefs of a batch's records that carry none.
    IMPORT_ALLOCATE_PERSON_REFS = "import.allocate_person_refs" =>
        "UpdateItem PK = COUNTER, SK = FEED ADD personRef :count RETURNING UPDATED_NEW";
    /// Import: stores one person (no event, history or idempotency record).
    IMPORT_PERSON = "import.person" =>
        "TransactWriteItems Put PERSON#<id>/PERSON if not exists, Put PERSONREF#<ref>/PERSONREF if not exists, \
         Put REF#<system>:<id>/REF if not exists, Put DEDUP#<key> if not exists, Put KEY#<key>/<id>#person";
    /// Reads the table's status, key schema and indexes (`connect`, `migrate`).
    TABLE_DESCRIBE = "table.describe" => "DescribeTable <table>";
    /// Creates the table (on-demand capacity, PK and SK strings) with its reporting index.
    TABLE_CREATE = "table.create" =>
        "CreateTable <table> KEY (PK HASH, SK RANGE) PAY_PER_REQUEST, \
         GSI GSI1 KEY (GSI1PK HASH, GSI1SK RANGE) INCLUDE (lastModified, tenureCount, referenceCount, reportable)";
    /// Adds the reporting index to a table created before it existed.
    TABLE_ADD_REPORT_INDEX = "table.add_report_index" =>
        "UpdateTable <table> CREATE GSI GSI1 KEY (GSI1PK HASH, GSI1SK RANGE) \
         INCLUDE (lastModified, tenureCount, referenceCount, reportable)";
    /// Whether the reporting attributes of the persons stored before the index existed have been written.
    MIGRATION_GET = "migration.get" => "GetItem PK = MIGRATION, SK = <migration> (consistent)";
    /// Records that a migration completed.
    MIGRATION_DONE = "migration.done" => "UpdateItem PK = MIGRATION, SK = <migration> SET completedAt";
    /// Backfill: one page of the feed, for the ids of the persons stored before the reporting index existed.
    BACKFILL_FEED_PAGE = "migration.backfill_feed_page" =>
        "Query PK = FEED, SK > <after> projecting SK, personId (consistent, limit 100)";
    /// Backfill: the person items of one feed page.
    BACKFILL_PERSONS_GET = "migration.backfill_persons_get" =>
        "BatchGetItem PK = PERSON#<id>, SK = PERSON (consistent)";
    /// Backfill: writes the reporting attributes of one person stored before the reporting index existed.
    BACKFILL_PERSON = "migration.backfill_person" =>
        "UpdateItem PK = PERSON#<id>, SK = PERSON SET GSI1PK, GSI1SK, lastModified, tenureCount, referenceCount, \
         reportable if versionNumber = :read";
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::CATALOGUE;

    #[test]
    fn catalogue_names_are_unique() {
        let names: HashSet<_> = CATALOGUE.iter().map(|q| q.name).collect();
        assert_eq!(names.len(), CATALOGUE.len());
    }

    #[test]
    fn no_catalogued_operation_is_a_scan() {
        for operation in CATALOGUE {
            let api = operation.sql.split_whitespace().next().unwrap_or_default();
            assert_ne!(api, "Scan", "{} must not scan", operation.name);
            assert!(!operation.sql.contains("Scan"), "{} mentions a Scan", operation.name);
            assert!(
                [
                    "GetItem",
                    "BatchGetItem",
                    "Query",
                    "TransactWriteItems",
                    "UpdateItem",
                    "BatchWriteItem",
                    "DescribeTable",
                    "CreateTable",
                    "UpdateTable"
                ]
                .contains(&api),
                "{} uses an unexpected API {api}",
                operation.name
            );
        }
    }
}
