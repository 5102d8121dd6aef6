//! What survives closing and reopening the database file, what opening an existing file does, and how files
//! and URLs that cannot be used are refused.

use std::error::Error as _;
use std::path::Path;

use person_core::ports::{InsertError, PersonRepository, StoreError};
use person_core::testkit::fixtures::{create_write, full_person, person_id, rename_write};
use person_core::{Person, PersonStatus};
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
        "counters",
        "events",
        "events_id_key",
        "events_person_id_idx",
        "idempotency",
        "person_history",
        "persons",
        "persons_last_modified_idx",
        "persons_person_ref_key",
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
