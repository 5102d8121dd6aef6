//! Bulk import on PostgreSQL, beyond the store contract: the finish of an import into a new store rebuilds the
//! primary key, the person index and the foreign key of `search_keys` exactly as migration 0001 made them, and a small import into
//! a store holding more keys leaves them in place. Each test gets a fresh schema of the database named by
//! `PERSON_TEST_POSTGRES_URL` (skipped with a message when it is not set).

#![expect(clippy::expect_used, reason = "test code: a failed expectation is a failed test, with a message")]

use std::sync::{Arc, Mutex};

use person_core::audit::AuditAction;
use person_core::ports::{ImportOutcome, ImportRepository, ImportWrite, PersonRepository};
use person_core::service::PersonKeys;
use person_core::storage::{QueryExecution, QueryObserver, QueryRecorder};
use person_core::testkit::fixtures::{audit_entry, create_write, full_person, person_id};
use person_core::testkit::synthetic::{SyntheticConfig, generate};
use person_postgres::testing::{TEST_URL_VARIABLE, with_schema};
use person_postgres::{PostgresOptions, PostgresStore};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection as _, PgConnection};

/// Keeps the names of the statements reported to it.
#[derive(Default)]
struct Recording(Mutex<Vec<&'static str>>);

impl QueryObserver for Recording {
    fn executed(&self, execution: QueryExecution) {
        self.0.lock().expect("never poisoned").push(execution.query.name);
    }
}

impl Recording {
    fn take(&self) -> Vec<&'static str> {
        std::mem::take(&mut *self.0.lock().expect("never poisoned"))
    }
}

/// A store on a new schema, its statements reported to `recording`, a raw connection to the database and the
/// schema's name; `None` when no test database is configured.
async fn open(recording: &Arc<Recording>) -> Option<(PostgresStore, PgConnection, String)> {
    let Ok(base) = std::env::var(TEST_URL_VARIABLE) else {
        println!("skipped: set {TEST_URL_VARIABLE} (e.g. postgres://postgres@127.0.0.1:5432/test) to run this test");
        return None;
    };
    let schema = format!("person_test_{}", uuid::Uuid::new_v4().simple());
    let options =
        PostgresOptions { max_connections: 2, queries: QueryRecorder::new(recording.clone()), ..Default::default() };
    let store = PostgresStore::connect(&with_schema(&base, &schema), options).await.expect("store connects");
    let conn = PgConnection::connect(&base).await.expect("raw connection");
    Some((store, conn, schema))
}

/// The definitions of the indexes of `search_keys` (in name order) and of `search_keys_person_fkey` (with whether
/// it is validated).
async fn definitions(conn: &mut PgConnection, schema: &str) -> (Vec<String>, String, bool) {
    let index: Vec<String> = sqlx::query_scalar(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = 'search_keys' ORDER BY indexname",
    )
    .bind(schema)
    .fetch_all(&mut *conn)
    .await
    .expect("the indexes");
    assert_eq!(index.len(), 2, "the primary key and the person index: {index:?}");
    let (key, validated): (String, bool) = sqlx::query_as(
        "SELECT pg_get_constraintdef(c.oid), c.convalidated FROM pg_constraint c \
         JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = $1 AND c.conname = 'search_keys_person_fkey'",
    )
    .bind(schema)
    .fetch_one(&mut *conn)
    .await
    .expect("the foreign key exists");
    (index, key, validated)
}

fn register(persons: usize, seed: u64) -> Vec<ImportWrite> {
    let config = SyntheticConfig { persons, seed, duplicate_rate: 0.0, new_person_rate: 0.0, hard_negative_rate: 0.0 };
    generate(&config)
        .persons
        .into_iter()
        .map(|synthetic| {
            let person = synthetic.person;
            let keys = PersonKeys::of(&person, None);
            ImportWrite { person, assign_ref: false, search_keys: keys.person, dedup_key: keys.dedup }
        })
        .collect()
}

async fn import(store: &PostgresStore, batch: Vec<ImportWrite>) {
    let outcomes =
        store.import_persons(batch, audit_entry(AuditAction::PersonImport, Vec::new())).await.expect("import");
    assert!(outcomes.iter().all(|o| matches!(o, ImportOutcome::Imported { .. })), "{outcomes:?}");
}

#[tokio::test]
async fn an_import_into_a_new_store_rebuilds_the_person_index_and_foreign_key_as_migrated() {
    let recording = Arc::new(Recording::default());
    let Some((store, mut conn, schema)) = open(&recording).await else { return };
    let migrated = definitions(&mut conn, &schema).await;
    let writes = register(300, 5);
    import(&store, writes.clone()).await;

    recording.take();
    let indexed = store.finish_import().await.expect("finish");
    let finish = recording.take();
    assert!(
        finish.contains(&"import.drop_person_index") && finish.contains(&"import.rebuild_person_index"),
        "{finish:?}"
    );
    let keys: usize = writes.iter().map(|w| w.search_keys.len()).sum();
    assert_eq!(indexed, u64::try_from(keys).expect("small"));
    assert_eq!(definitions(&mut conn, &schema).await, migrated, "rebuilt exactly as migrated, and validated");
    for write in writes.iter().step_by(37) {
        let found = store.candidates(&write.search_keys, 50).await.expect("candidates");
        assert!(found.iter().any(|c| c.person.id == write.person.id), "{} is found by its keys", write.person.id);
    }
    // The schema name is this test's own (letters, digits and underscores).
    let orphan = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {schema}.search_keys (key, person_id, source) VALUES ('x:y', gen_random_uuid(), 'person')"
    )))
    .execute(&mut conn)
    .await;
    assert!(orphan.is_err(), "the rebuilt foreign key refuses a key of no person");
    conn.close().await.expect("closes");
    store.close().await;
}

#[tokio::test]
async fn a_small_import_into_a_store_holding_more_keys_leaves_the_index_and_foreign_key_in_place() {
    let recording = Arc::new(Recording::default());
    let Some((store, mut conn, schema)) = open(&recording).await else { return };
    let created = register(30, 6);
    for write in &created {
        let create = create_write(write.person.clone(), None).with_search_keys(write.search_keys.clone(), None);
        store.insert(create).await.expect("create");
    }
    let mut newcomer = register(1, 7);
    newcomer[0].person.person_ref = person_core::PersonRef(9_000_000);
    import(&store, newcomer.clone()).await;

    recording.take();
    store.finish_import().await.expect("finish");
    let finish = recording.take();
    assert!(finish.contains(&"import.stored_keys_up_to"), "{finish:?}");
    assert!(!finish.contains(&"import.drop_person_index"), "fewer keys wait than are stored: {finish:?}");
    let (_, _, validated) = definitions(&mut conn, &schema).await;
    assert!(validated);
    for write in [&newcomer[0], &created[0]] {
        let found = store.candidates(&write.search_keys, 50).await.expect("candidates");
        assert!(found.iter().any(|c| c.person.id == write.person.id), "{} is found by its keys", write.person.id);
    }
    conn.close().await.expect("closes");
    store.close().await;
}

/// An import interrupted before its finish under migration 0004 (one pending row per key) is finished after the
/// upgrade to 0005 (one row per person): its keys are carried over and indexed.
#[tokio::test]
async fn keys_pending_from_an_unfinished_import_survive_the_upgrade_to_one_row_per_person() {
    let Ok(base) = std::env::var(TEST_URL_VARIABLE) else {
        println!("skipped: set {TEST_URL_VARIABLE} to run the PostgreSQL tests");
        return;
    };
    // A schema as the fourth release left it: migrations 0001 to 0004 alone (copies of the released files).
    let schema = format!("person_test_{}", uuid::Uuid::new_v4().simple());
    let mut raw = PgConnection::connect(&base).await.expect("connects");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&mut raw).await.expect("schema");
    raw.close().await.expect("closes");
    let options = <PgConnectOptions as std::str::FromStr>::from_str(&base)
        .expect("test URL")
        .options([("search_path", schema.as_str())]);
    let mut raw = PgConnection::connect_with(&options).await.expect("connects");
    let migrations = tempfile_dir();
    for (name, text) in [
        ("0001_init.sql", include_str!("../migrations/0001_init.sql")),
        ("0002_references.sql", include_str!("../migrations/0002_references.sql")),
        ("0003_reporting_and_relays.sql", include_str!("../migrations/0003_reporting_and_relays.sql")),
        ("0004_import_pending_keys.sql", include_str!("../migrations/0004_import_pending_keys.sql")),
    ] {
        std::fs::write(migrations.join(name), text).expect("migration copied");
    }
    let migrator = sqlx::migrate::Migrator::new(migrations.as_path()).await.expect("migrations resolve");
    migrator.run(&mut raw).await.expect("migrations 0001 to 0004 apply");
    std::fs::remove_dir_all(&migrations).expect("removed");

    let person = full_person(person_id());
    let keys = PersonKeys::of(&person, None).person;
    assert!(keys.len() > 2, "the fixture person has several keys");
    sqlx::query(
        "INSERT INTO persons (id, person_ref, version_number, state, document, created_at, last_modified, \
         tenure_count, reference_count) VALUES ($1, 7, 0, 'active', $2::jsonb, $3, $3, 0, 0)",
    )
    .bind(person.id.as_uuid())
    .bind(serde_json::to_string(&person).expect("person serialises"))
    .bind(person.last_modified)
    .execute(&mut raw)
    .await
    .expect("imported person row");
    for key in &keys {
        sqlx::query("INSERT INTO import_pending_keys (person_id, version_number, key) VALUES ($1, 0, $2)")
            .bind(person.id.as_uuid())
            .bind(key.as_str())
            .execute(&mut raw)
            .await
            .expect("pending key row");
    }
    raw.close().await.expect("closes");

    let store = PostgresStore::connect(&with_schema(&base, &schema), PostgresOptions::default())
        .await
        .expect("store connects and migrates");
    let mut raw = PgConnection::connect_with(&options).await.expect("connects");
    let rows: Vec<(uuid::Uuid, i64, Vec<String>)> =
        sqlx::query_as("SELECT person_id, version_number, keys FROM import_pending_keys")
            .fetch_all(&mut raw)
            .await
            .expect("pending rows");
    let mut expected: Vec<String> = keys.iter().map(|k| k.as_str().to_owned()).collect();
    expected.sort();
    assert_eq!(rows, vec![(person.id.as_uuid(), 0, expected)], "one row per person, its keys carried over");
    raw.close().await.expect("closes");

    let indexed = store.finish_import().await.expect("finish succeeds");
    assert_eq!(indexed, u64::try_from(keys.len()).expect("small"));
    let found = store.candidates(&keys, 10).await.expect("candidates");
    assert_eq!(found.iter().map(|c| c.person.id).collect::<Vec<_>>(), vec![person.id]);
    store.close().await;
}

/// A new directory for migration files.
fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("person-migrations-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("directory");
    dir
}
