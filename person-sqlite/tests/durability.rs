//! What survives closing and reopening the database file, what opening an existing file does (including
//! upgrading a database written by an earlier version), and how files and URLs that cannot be used are refused.

use std::error::Error as _;
use std::path::Path;

use chrono::SecondsFormat;
use person_core::audit::AuditAction;
use person_core::documents::DocumentKind;
use person_core::ports::{
    AuditLog, DocumentRepository, ImportRepository, InsertError, PersonRepository, ReportCounts, ReportQuery,
    ReportingRepository, StoreError, UpdateError,
};
use person_core::service::PersonKeys;
use person_core::testkit::fixtures::{
    audit_entry, create_write, document_write, equality_body, extended_body, full_person, person_id, reference,
    references_write, rename_write, restriction_write,
};
use person_core::{Person, PersonRef, PersonStatus, ServiceArea};
use person_sqlite::{SqliteOptions, SqliteStore};
use sqlx::Connection as _;

fn url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

#[expect(clippy::expect_used, reason = "a test helper fails the test loudly, with a message")]
async fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(&url(path), SqliteOptions::default()).await.expect("store opens")
}

#[expect(clippy::expect_used, reason = "a test helper fails the test loudly, with a message")]
async fn create(store: &SqliteStore, key: Option<&str>) -> Person {
    store.insert(create_write(full_person(person_id()), key)).await.expect("insert succeeds")
}

/// The whole chain of an error, for asserting on what an operator would read.
fn chain(error: &StoreError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[tokio::test]
async fn persons_events_history_and_idempotency_records_survive_closing_and_reopening() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("person.db");
    let store = open(&path).await;
    let first = create(&store, Some("caller:key-1")).await;
    let second = create(&store, None).await;
    let rename = rename_write(&second, "Grace");
    let renamed = rename.person.clone();
    store.update(rename).await.expect("update succeeds");
    let deleted = create(&store, None).await;
    let delete = person_core::testkit::fixtures::status_write(&deleted, PersonStatus::Deleted);
    let tombstone = delete.person.clone();
    store.update(delete).await.expect("delete succeeds");
    let events_before = store.events_after(0, 100).await.expect("feed reads");
    let history_before = store.history(second.id).await.expect("history reads");
    store.close().await;
    drop(store);

    let store = open(&path).await;
    assert_eq!(store.get(first.id).await.expect("get").as_ref(), Some(&first));
    assert_eq!(store.get(second.id).await.expect("get").as_ref(), Some(&renamed));
    assert_eq!(store.get(deleted.id).await.expect("get").as_ref(), Some(&tombstone));
    assert_eq!(store.events_after(0, 100).await.expect("feed reads"), events_before);
    assert_eq!(events_before.len(), 5);
    assert_eq!(store.history(second.id).await.expect("history reads"), history_before);
    assert_eq!(history_before.len(), 2);
    let record = store.find_idempotent_create("caller:key-1").await.expect("lookup").expect("record kept");
    assert_eq!(record.person, first);
    assert_eq!(record.fingerprint, "fp-caller:key-1");
}

#[expect(clippy::expect_used, reason = "a test helper fails the test loudly, with a message")]
fn social_care() -> DocumentKind {
    DocumentKind::Extended(ServiceArea::parse("social-care").expect("valid area"))
}

#[tokio::test]
async fn documents_audit_entries_and_restrictions_survive_closing_and_reopening() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("person.db");
    let store = open(&path).await;
    let person = create(&store, None).await;
    let other = create(&store, None).await;
    let restrict = restriction_write(&person, true);
    let restricted = restrict.person.clone();
    store.update(restrict).await.expect("restriction succeeds");
    let equality = document_write(person.id, DocumentKind::Equality, None, Some((0, equality_body())));
    store.write_document(equality).await.expect("equality write succeeds");
    store
        .write_document(document_write(person.id, social_care(), None, Some((0, extended_body("first")))))
        .await
        .expect("extended write succeeds");
    store.append(audit_entry(AuditAction::Search, vec![person.id, other.id])).await.expect("append succeeds");
    let documents_before = store.list_documents(person.id).await.expect("documents list");
    let audit_before = store.entries_for_person(person.id, 0, 100).await.expect("audit reads");
    assert_eq!(documents_before.len(), 2);
    assert_eq!(audit_before.len(), 5, "create, restrict, two document writes, search");
    store.close().await;
    drop(store);

    let store = open(&path).await;
    assert_eq!(store.get(person.id).await.expect("get").as_ref(), Some(&restricted));
    assert_eq!(store.restricted_among(&[person.id, other.id]).await.expect("query"), vec![person.id]);
    assert_eq!(store.list_documents(person.id).await.expect("documents list"), documents_before);
    let equality = store.get_document(person.id, &DocumentKind::Equality).await.expect("read").expect("kept");
    assert_eq!(equality.body, equality_body());
    assert_eq!(store.entries_for_person(person.id, 0, 100).await.expect("audit reads"), audit_before);
    let for_other = store.entries_for_person(other.id, 0, 100).await.expect("audit reads");
    assert_eq!(
        for_other.iter().map(|r| r.entry.action).collect::<Vec<_>>(),
        [AuditAction::PersonCreate, AuditAction::Search]
    );

    // Versions and positions carry on where they were.
    store
        .write_document(document_write(person.id, social_care(), Some(0), Some((1, extended_body("second")))))
        .await
        .expect("the stored version is still the expected one");
    store.append(audit_entry(AuditAction::PersonRead, vec![person.id])).await.expect("append succeeds");
    let after = store.entries_for_person(person.id, audit_before[4].position, 100).await.expect("audit reads");
    assert_eq!(
        after.iter().map(|r| r.entry.action).collect::<Vec<_>>(),
        [AuditAction::ExtendedWrite, AuditAction::PersonRead]
    );
    assert!(after[0].position > audit_before[4].position);
}

/// A database as version 1 of the store left it: only migration 0001 applied, with the persons it wrote.
struct V1Database {
    plain: Person,
    flagged: Person,
}

/// Applies migration 0001 alone (from a copy of the released file, so its checksum is the one version 1
/// recorded) and writes two persons the way version 1 did: rows in persons, events, person_history,
/// idempotency and the counter. `flagged`'s document says `processingRestricted: true`, which version 1 never
/// wrote, to show the upgrade derives the new column from the documents.
#[expect(clippy::expect_used, reason = "a test helper fails the test loudly, with a message")]
async fn create_v1_database(path: &Path) -> V1Database {
    let mut conn = database_at_migration(path, 1).await;

    let mut persons = Vec::new();
    for (person_ref, key) in [(1, Some("caller:v1")), (2, None)] {
        let mut person = full_person(person_id());
        person.processing_restricted = person_ref == 2;
        let created = create_write(person, key).assign(PersonRef(person_ref));
        let document = serde_json::to_string(&created.person).expect("person serialises");
        let at = created.person.created_at.to_rfc3339_opts(SecondsFormat::Nanos, true);
        sqlx::query(
            "INSERT INTO persons (id, person_ref, version_number, state, merged_into, document, created_at, \
             last_modified) VALUES (?, ?, 0, 'active', NULL, ?, ?, ?)",
        )
        .bind(created.person.id.to_string())
        .bind(person_ref)
        .bind(&document)
        .bind(&at)
        .bind(&at)
        .execute(&mut conn)
        .await
        .expect("v1 person row");
        sqlx::query("INSERT INTO events (id, person_id, event_type, document) VALUES (?, ?, ?, ?)")
            .bind(created.event.id.to_string())
            .bind(created.person.id.to_string())
            .bind(created.event.event_type.as_str())
            .bind(serde_json::to_string(&created.event).expect("event serialises"))
            .execute(&mut conn)
            .await
            .expect("v1 event row");
        sqlx::query("INSERT INTO person_history (person_id, version_number, event_id, document) VALUES (?, 0, ?, ?)")
            .bind(created.person.id.to_string())
            .bind(created.event.id.to_string())
            .bind(serde_json::to_string(&created.history).expect("history serialises"))
            .execute(&mut conn)
            .await
            .expect("v1 history row");
        if let Some(record) = &created.idempotency {
            sqlx::query(
                "INSERT INTO idempotency (key, fingerprint, person_id, document, created_at) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(&record.key)
            .bind(&record.fingerprint)
            .bind(created.person.id.to_string())
            .bind(&document)
            .bind(&at)
            .execute(&mut conn)
            .await
            .expect("v1 idempotency row");
        }
        sqlx::query("UPDATE counters SET value = ? WHERE name = 'person_ref'")
            .bind(person_ref)
            .execute(&mut conn)
            .await
            .expect("v1 counter");
        persons.push(created.person);
    }
    conn.close().await.expect("closes");
    let flagged = persons.pop().expect("two persons");
    let plain = persons.pop().expect("two persons");
    V1Database { plain, flagged }
}

#[tokio::test]
async fn a_version_1_database_upgrades_in_place_keeping_its_data() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("person.db");
    let V1Database { plain, flagged } = create_v1_database(&path).await;

    let store = open(&path).await;
    assert_eq!(store.get(plain.id).await.expect("get").as_ref(), Some(&plain));
    assert!(!plain.processing_restricted);
    assert_eq!(store.get(flagged.id).await.expect("get").as_ref(), Some(&flagged));
    assert_eq!(store.events_after(0, 100).await.expect("feed reads").len(), 2);
    assert_eq!(store.history(plain.id).await.expect("history reads").len(), 1);
    let record = store.find_idempotent_create("caller:v1").await.expect("lookup").expect("record kept");
    assert_eq!(record.person, plain);
    assert_eq!(
        store.restricted_among(&[plain.id, flagged.id]).await.expect("query"),
        vec![flagged.id],
        "the new column is derived from the stored documents"
    );
    assert!(store.entries_for_person(plain.id, 0, 100).await.expect("audit reads").is_empty());
    assert!(store.list_documents(plain.id).await.expect("documents list").is_empty());

    // Migration 0003: the persons stored before it got their search keys and dedup key computed on open, so they
    // are found by key and a create of the same person is refused.
    let keys = PersonKeys::of(&plain, None);
    assert!(!keys.person.is_empty() && keys.dedup.is_some(), "the fixture person has keys");
    let found = store.candidates(&keys.person, 10).await.expect("candidates");
    assert_eq!(found.iter().map(|c| c.person.id).collect::<Vec<_>>(), vec![plain.id], "the restricted one is hidden");
    let again = create_write(full_person(person_id()), None).with_search_keys(keys.person.clone(), keys.dedup.clone());
    let refused = store.insert(again).await;
    // `plain` and `flagged` are the same person: the first in id order holds the dedup key.
    let holder = plain.id.min(flagged.id);
    assert!(matches!(refused, Err(InsertError::DuplicatePerson { existing }) if existing == holder), "got {refused:?}");

    // Migration 0004: the references the documents hold are indexed.
    for person in [&plain, &flagged] {
        let own = person.references.first().expect("the fixture person holds a reference");
        assert_eq!(store.find_by_reference(own).await.expect("look-up"), Some(person.id));
    }

    // The upgraded database takes every kind of write.
    store.update(restriction_write(&plain, true)).await.expect("restriction succeeds");
    let mut restricted = store.restricted_among(&[plain.id, flagged.id]).await.expect("query");
    restricted.sort();
    let mut expected = vec![plain.id, flagged.id];
    expected.sort();
    assert_eq!(restricted, expected);
    store
        .write_document(document_write(plain.id, DocumentKind::Equality, None, Some((0, equality_body()))))
        .await
        .expect("document write succeeds");
    assert_eq!(create(&store, None).await.person_ref.0, 3, "personRefs continue after the upgrade");
    let actions: Vec<AuditAction> = store
        .entries_for_person(plain.id, 0, 100)
        .await
        .expect("audit reads")
        .into_iter()
        .map(|r| r.entry.action)
        .collect();
    assert_eq!(actions, [AuditAction::PersonRestrict, AuditAction::EqualityWrite]);
    store.close().await;

    let mut conn = sqlx::SqliteConnection::connect(&url(&path)).await.expect("connects");
    let versions: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
        .fetch_all(&mut conn)
        .await
        .expect("migrations read");
    assert_eq!(versions, [1, 2, 3, 4, 5, 6, 7]);
    let unindexed: i64 = sqlx::query_scalar("SELECT count(*) FROM persons WHERE keys_indexed = 0")
        .fetch_one(&mut conn)
        .await
        .expect("count");
    assert_eq!(unindexed, 0, "every person has its keys");
    conn.close().await.expect("closes");
}

#[tokio::test]
async fn person_refs_continue_after_reopening_and_are_never_reused() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("person.db");
    let store = open(&path).await;
    let first = create(&store, None).await;
    let second = create(&store, None).await;
    let refused = store.insert(create_write(full_person(second.id), None)).await;
    assert!(matches!(refused, Err(InsertError::DuplicateId)), "got {refused:?}");
    store.close().await;
    drop(store);

    let store = open(&path).await;
    let third = create(&store, None).await;
    assert_eq!((first.person_ref.0, second.person_ref.0, third.person_ref.0), (1, 2, 3));
    let feed = store.events_after(0, 100).await.expect("feed reads");
    let positions: Vec<u64> = feed.iter().map(|entry| entry.position).collect();
    assert_eq!(positions, vec![1, 2, 3], "feed positions continue after reopening too");
}

#[tokio::test]
async fn opening_an_existing_database_reruns_migrations_harmlessly() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("person.db");
    let store = open(&path).await;
    let person = create(&store, None).await;
    store.migrate().await.expect("migrating a current schema is a no-op");
    store.close().await;
    drop(store);

    let store = open(&path).await;
    store.migrate().await.expect("migrate succeeds again");
    store.ping().await.expect("ping succeeds");
    assert_eq!(store.get(person.id).await.expect("get").as_ref(), Some(&person));
    assert_eq!(create(&store, None).await.person_ref.0, 2, "the seeded counter is not reset");
}

#[tokio::test]
async fn missing_parent_directories_are_created_for_both_url_forms() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let nested = dir.path().join("a").join("b").join("person.db");
    let store = SqliteStore::open(&url(&nested), SqliteOptions::default()).await.expect("store opens");
    create(&store, None).await;
    assert!(nested.is_file());
    assert_eq!(store.path(), nested);

    let other = dir.path().join("c").join("person.db");
    let store =
        SqliteStore::open(&format!("sqlite:{}", other.display()), SqliteOptions::default()).await.expect("store opens");
    create(&store, None).await;
    assert!(other.is_file());
}

#[tokio::test]
async fn the_database_is_in_wal_mode_with_the_documented_schema() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("person.db");
    let store = open(&path).await;
    create(&store, None).await;

    let mut conn = sqlx::SqliteConnection::connect(&url(&path)).await.expect("connects");
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut conn).await.expect("pragma");
    assert_eq!(mode, "wal");
    let names: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' ORDER BY name")
            .fetch_all(&mut conn)
            .await
            .expect("schema reads");
    for expected in [
        "audit_log",
        "audit_log_id_key",
        "audit_log_no_delete",
        "audit_log_no_replace",
        "audit_log_no_update",
        "audit_persons",
        "audit_persons_no_delete",
        "audit_persons_no_replace",
        "audit_persons_no_update",
        "counters",
        "documents",
        "events",
        "events_id_key",
        "events_person_id_idx",
        "idempotency",
        "person_history",
        "persons",
        "persons_last_modified_idx",
        "persons_person_ref_key",
        "persons_processing_restricted_idx",
        "persons_report_counts_idx",
        "persons_report_idx",
        "person_references",
        "person_references_person_id_idx",
        "relay_leases",
    ] {
        assert!(names.iter().any(|name| name == expected), "{expected} missing from {names:?}");
    }
    let counter: i64 = sqlx::query_scalar("SELECT value FROM counters WHERE name = 'person_ref'")
        .fetch_one(&mut conn)
        .await
        .expect("counter reads");
    assert_eq!(counter, 1);
    conn.close().await.expect("closes");
}

#[tokio::test]
async fn a_file_that_is_not_sqlite_is_refused_with_a_clear_error_and_left_untouched() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("notes.db");
    let content = b"Dear diary, this is not a database. ".repeat(100);
    std::fs::write(&path, &content).expect("file written");

    let result = SqliteStore::open(&url(&path), SqliteOptions::default()).await;

    let Err(error) = result else { panic!("opening a non-database file must fail") };
    assert!(matches!(error, StoreError::Unexpected(_)), "got {error:?}");
    let text = chain(&error);
    assert!(text.contains("not an SQLite database"), "{text}");
    assert_eq!(std::fs::read(&path).expect("file reads"), content, "the file must not be modified");
}

#[tokio::test]
async fn a_database_migrated_by_a_newer_version_is_refused_clearly() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("person.db");
    open(&path).await.close().await;
    let mut conn = sqlx::SqliteConnection::connect(&url(&path)).await.expect("connects");
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from the future', 1, x'00', 0)",
    )
    .execute(&mut conn)
    .await
    .expect("row inserted");
    conn.close().await.expect("closes");

    let Err(error) = SqliteStore::open(&url(&path), SqliteOptions::default()).await else {
        panic!("an unknown applied migration must be refused")
    };
    assert!(matches!(error, StoreError::Unexpected(_)), "got {error:?}");
    assert!(chain(&error).contains("migrations"), "{}", chain(&error));
}

#[tokio::test]
async fn urls_that_name_no_usable_file_are_refused_with_a_reason() {
    for (bad, reason) in [
        ("postgres://localhost/person", "not an SQLite storage URL"),
        ("sqlite::memory:", "in-memory"),
        ("sqlite://", "names no database file"),
        ("sqlite://person.db?mode=ro", "query parameters"),
    ] {
        let Err(error) = SqliteStore::open(bad, SqliteOptions::default()).await else {
            panic!("{bad} must be refused")
        };
        assert!(matches!(error, StoreError::Unexpected(_)), "{bad}: got {error:?}");
        assert!(chain(&error).contains(reason), "{bad}: {}", chain(&error));
    }
}

#[tokio::test]
async fn operations_after_close_are_unavailable_not_a_panic() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = open(&dir.path().join("person.db")).await;
    store.close().await;
    let read = store.get(person_id()).await;
    assert!(matches!(read, Err(StoreError::Unavailable(_))), "got {read:?}");
    let write = store.insert(create_write(full_person(person_id()), None)).await;
    assert!(matches!(write, Err(InsertError::Store(StoreError::Unavailable(_)))), "got {write:?}");
    assert!(matches!(store.ping().await, Err(StoreError::Unavailable(_))));
}

#[tokio::test]
async fn recomputing_search_keys_indexes_every_person_and_keeps_dedup_keys_unique() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("person.db");
    let store = open(&path).await;
    // Stored without keys (as a write from before keys existed would be), the same person twice.
    let first = create(&store, None).await;
    let second = create(&store, None).await;
    let keys = PersonKeys::of(&first, None);
    assert!(store.candidates(&keys.person, 10).await.expect("candidates").is_empty());

    assert_eq!(store.recompute_search_keys().await.expect("recompute succeeds"), 2);

    let mut found: Vec<_> =
        store.candidates(&keys.person, 10).await.expect("candidates").into_iter().map(|c| c.person.id).collect();
    found.sort();
    let mut expected = vec![first.id, second.id];
    expected.sort();
    assert_eq!(found, expected);
    let again = create_write(full_person(person_id()), None).with_search_keys(keys.person, keys.dedup);
    let refused = store.insert(again).await;
    assert!(
        matches!(refused, Err(InsertError::DuplicatePerson { existing }) if existing == expected[0]),
        "the first in id order holds the dedup key: {refused:?}"
    );
    assert_eq!(store.recompute_search_keys().await.expect("recompute is repeatable"), 2);
}

/// Applies migrations 0001 to 0003 alone (copies of the released files) and stores `persons` as rows the way
/// the store did before migration 0004: documents only, no reference rows.
/// The migrations of releases before 0007, in order: (file name, text).
const EARLIER_MIGRATIONS: [(&str, &str); 6] = [
    ("0001_init.sql", include_str!("../migrations/0001_init.sql")),
    ("0002_access_control.sql", include_str!("../migrations/0002_access_control.sql")),
    ("0003_search_keys.sql", include_str!("../migrations/0003_search_keys.sql")),
    ("0004_references.sql", include_str!("../migrations/0004_references.sql")),
    ("0005_reporting_and_relay.sql", include_str!("../migrations/0005_reporting_and_relay.sql")),
    ("0006_import_pending_keys.sql", include_str!("../migrations/0006_import_pending_keys.sql")),
];

/// A new database at `path` with only the first `count` migrations applied (as an earlier release left it), and a
/// connection to it.
#[expect(clippy::expect_used, reason = "a test helper fails the test loudly, with a message")]
async fn database_at_migration(path: &Path, count: usize) -> sqlx::SqliteConnection {
    let migrations = tempfile::tempdir().expect("temporary directory");
    for (name, text) in &EARLIER_MIGRATIONS[..count] {
        std::fs::write(migrations.path().join(name), text).expect("migration copied");
    }
    let migrator = sqlx::migrate::Migrator::new(migrations.path()).await.expect("migrations resolve");
    let mut conn =
        sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", path.display())).await.expect("connects");
    migrator.run(&mut conn).await.expect("the earlier migrations apply");
    conn
}

#[expect(clippy::expect_used, reason = "a test helper fails the test loudly, with a message")]
async fn create_v3_database(path: &Path, persons: &[Person]) {
    let mut conn = database_at_migration(path, 3).await;
    for (person_ref, person) in (1_i64..).zip(persons) {
        let at = person.created_at.to_rfc3339_opts(SecondsFormat::Nanos, true);
        let state = if person.status.is_active() { "active" } else { "deleted" };
        sqlx::query(
            "INSERT INTO persons (id, person_ref, version_number, state, merged_into, document, created_at, \
             last_modified) VALUES (?, ?, 0, ?, NULL, ?, ?, ?)",
        )
        .bind(person.id.to_string())
        .bind(person_ref)
        .bind(state)
        .bind(serde_json::to_string(person).expect("person serialises"))
        .bind(&at)
        .bind(&at)
        .execute(&mut conn)
        .await
        .expect("v3 person row");
    }
    conn.close().await.expect("closes");
}

#[tokio::test]
async fn upgrading_indexes_the_references_of_live_persons_first_in_id_order_keeping_a_shared_one() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("person.db");
    let mut ids = [person_id(), person_id()];
    ids.sort();
    let [first, second] = ids.map(|id| {
        let mut person = full_person(id);
        person.references = vec![reference("repairs", &format!("r-{id}")), reference("tenure", "shared")];
        person
    });
    let mut deleted = full_person(person_id());
    deleted.status = PersonStatus::Deleted;
    let mut without = full_person(person_id());
    without.references.clear();
    create_v3_database(&path, &[second.clone(), first.clone(), deleted.clone(), without.clone()]).await;

    let store = open(&path).await;
    let owner = |system: &'static str, id: String| {
        let store = store.clone();
        async move { store.find_by_reference(&reference(system, &id)).await.expect("look-up") }
    };
    assert_eq!(owner("tenure", "shared".to_owned()).await, Some(first.id), "the first in id order keeps it");
    assert_eq!(owner("repairs", format!("r-{}", first.id)).await, Some(first.id));
    assert_eq!(owner("repairs", format!("r-{}", second.id)).await, Some(second.id));
    assert_eq!(owner("tenure", format!("t-{}", deleted.id)).await, None, "a deleted person holds none");
    assert_eq!(store.get(without.id).await.expect("get").as_ref(), Some(&without));

    // The person left without the shared reference keeps it in its document until staff resolve it: a write
    // that keeps it is refused, naming the holder; one that drops it succeeds.
    let kept = store.update(references_write(&second, &second.references)).await;
    assert!(matches!(&kept, Err(UpdateError::ReferenceTaken { owner, .. }) if *owner == first.id), "got {kept:?}");
    let own = reference("repairs", &format!("r-{}", second.id));
    store.update(references_write(&second, std::slice::from_ref(&own))).await.expect("dropping it succeeds");
    assert_eq!(store.find_by_reference(&own).await.expect("look-up"), Some(second.id));
}

#[tokio::test]
async fn upgrading_counts_the_tenures_and_references_of_stored_documents_for_reporting() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("person.db");
    let live = full_person(person_id());
    let mut without = full_person(person_id());
    without.tenures.clear();
    without.references.clear();
    let mut deleted = full_person(person_id());
    deleted.status = PersonStatus::Deleted;
    create_v3_database(&path, &[live.clone(), without.clone(), deleted.clone()]).await;

    let store = open(&path).await;
    let counts = store.report_counts(None).await.expect("counts succeed");
    let tenures = u64::try_from(live.tenures.len()).expect("small");
    let references = u64::try_from(live.references.len()).expect("small");
    assert!(tenures > 0 && references > 0, "the fixture holds tenures and references");
    assert_eq!(counts, ReportCounts { persons: 3, withheld: 1, tenures, references });

    let everything = ReportQuery { modified_since: None, after: None, offset: 0, limit: 10 };
    let mut expected = vec![live.id, without.id, deleted.id];
    expected.sort();
    let reported: Vec<_> =
        store.report_persons(&everything).await.expect("report succeeds").into_iter().map(|p| p.id).collect();
    assert_eq!(reported, expected, "every stored person, in id order");
}

/// An import interrupted before its finish under migration 0006 (one pending row per key) is finished after the
/// upgrade to 0007 (one row per person): its keys are carried over and indexed.
#[tokio::test]
async fn keys_pending_from_an_unfinished_import_survive_the_upgrade_to_one_row_per_person() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("person.db");
    let mut conn = database_at_migration(&path, 6).await;

    let person = full_person(person_id());
    let keys = PersonKeys::of(&person, None).person;
    assert!(keys.len() > 2, "the fixture person has several keys");
    let at = person.created_at.to_rfc3339_opts(SecondsFormat::Nanos, true);
    sqlx::query(
        "INSERT INTO persons (id, person_ref, version_number, state, document, created_at, last_modified, \
         keys_indexed) VALUES (?, 7, 0, 'active', ?, ?, ?, 1)",
    )
    .bind(person.id.to_string())
    .bind(serde_json::to_string(&person).expect("person serialises"))
    .bind(&at)
    .bind(&at)
    .execute(&mut conn)
    .await
    .expect("imported person row");
    for key in &keys {
        sqlx::query("INSERT INTO import_pending_keys (person_id, version_number, key) VALUES (?, 0, ?)")
            .bind(person.id.to_string())
            .bind(key.as_str())
            .execute(&mut conn)
            .await
            .expect("pending key row");
    }
    conn.close().await.expect("closes");

    let store = open(&path).await;
    assert!(store.candidates(&keys, 10).await.expect("candidates").is_empty(), "not found before the finish");
    let mut conn = sqlx::SqliteConnection::connect(&url(&path)).await.expect("connects");
    let rows: Vec<(String, i64, String)> =
        sqlx::query_as("SELECT person_id, version_number, keys FROM import_pending_keys")
            .fetch_all(&mut conn)
            .await
            .expect("pending rows");
    assert_eq!(rows.len(), 1, "one row per person");
    let mut carried: Vec<String> = serde_json::from_str(&rows[0].2).expect("a JSON array of keys");
    carried.sort();
    let mut expected: Vec<String> = keys.iter().map(|k| k.as_str().to_owned()).collect();
    expected.sort();
    assert_eq!((rows[0].0.as_str(), rows[0].1, carried), (person.id.to_string().as_str(), 0, expected));
    conn.close().await.expect("closes");

    let indexed = store.finish_import().await.expect("finish succeeds");
    assert_eq!(indexed, u64::try_from(keys.len()).expect("small"));
    let found = store.candidates(&keys, 10).await.expect("candidates");
    assert_eq!(found.iter().map(|c| c.person.id).collect::<Vec<_>>(), vec![person.id]);
    store.close().await;
}
