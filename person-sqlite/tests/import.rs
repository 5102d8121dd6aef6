//! Bulk import on SQLite, beyond the store contract: a batch is one transaction whose statements do not depend on
//! its size, its look-ups read indexes, a batch that stores nobody leaves no trace, a failing batch writes
//! nothing, and persons imported across batches are found and numbered like created ones.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use person_core::audit::AuditAction;
use person_core::ports::{ImportOutcome, ImportRepository, ImportWrite, PersonRepository};
use person_core::service::PersonKeys;
use person_core::storage::{QueryExecution, QueryObserver, QueryRecorder};
use person_core::testkit::fixtures::{audit_entry, create_write, full_person, person_id, reference};
use person_core::testkit::synthetic::{SyntheticConfig, generate};
use person_core::{Person, PersonRef};
use person_sqlite::queries::CATALOGUE;
use person_sqlite::{SqliteOptions, SqliteStore};
use sqlx::{AssertSqlSafe, Connection as _, SqliteConnection};
use tempfile::TempDir;

/// Keeps the names of the statements reported to it.
#[derive(Default)]
struct Recording(Mutex<Vec<&'static str>>);

impl QueryObserver for Recording {
    fn executed(&self, execution: QueryExecution) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push(execution.query.name);
    }
}

impl Recording {
    /// The statements reported since the last call.
    fn take(&self) -> Vec<&'static str> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

fn url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// A store on a new database file, reporting its statements to `recorder`.
#[expect(clippy::expect_used, reason = "a test helper fails the test loudly, with a message")]
async fn open(recorder: QueryRecorder) -> (SqliteStore, TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let options = SqliteOptions { queries: recorder, ..SqliteOptions::default() };
    let store = SqliteStore::open(&url(&dir.path().join("person.db")), options).await.expect("store opens");
    (store, dir)
}

/// A raw connection to the store's file, to count rows as the sqlite3 shell would.
#[expect(clippy::expect_used, reason = "a test helper fails the test loudly, with a message")]
async fn raw(dir: &TempDir) -> SqliteConnection {
    SqliteConnection::connect(&url(&dir.path().join("person.db"))).await.expect("connects")
}

#[expect(clippy::expect_used, reason = "a test helper fails the test loudly, with a message")]
async fn count(conn: &mut SqliteConnection, table: &str) -> i64 {
    // The table name is one of this file's constants.
    let statement = AssertSqlSafe(format!("SELECT count(*) FROM {table}"));
    sqlx::query_scalar(statement).fetch_one(&mut *conn).await.expect("count")
}

/// The synthetic register of `persons` persons, each with its keys, its own `personRef` and one reference.
fn register(persons: usize, seed: u64) -> Vec<ImportWrite> {
    let config = SyntheticConfig { persons, seed, duplicate_rate: 0.0, new_person_rate: 0.0, hard_negative_rate: 0.0 };
    generate(&config)
        .persons
        .into_iter()
        .enumerate()
        .map(|(i, synthetic)| {
            let mut person = synthetic.person;
            person.references.push(reference("legacy", &format!("L{seed}-{i}")));
            let keys = PersonKeys::of(&person, None);
            ImportWrite { person, assign_ref: false, search_keys: keys.person, dedup_key: keys.dedup }
        })
        .collect()
}

fn imported(outcome: &ImportOutcome) -> bool {
    matches!(outcome, ImportOutcome::Imported { .. })
}

#[tokio::test]
async fn a_batch_runs_the_same_statements_whatever_its_size() {
    let recording = Arc::new(Recording::default());
    let (store, _dir) = open(QueryRecorder::new(recording.clone())).await;
    let mut writes = register(1_010, 1);
    let large = writes.split_off(10);
    recording.take(); // what opening the store ran

    let outcomes = store.import_persons(writes, audit_entry(AuditAction::PersonImport, Vec::new())).await.unwrap();
    assert!(outcomes.iter().all(imported), "{outcomes:?}");
    let small_batch = recording.take();
    let outcomes = store.import_persons(large, audit_entry(AuditAction::PersonImport, Vec::new())).await.unwrap();
    assert!(outcomes.iter().all(imported));
    let large_batch = recording.take();

    assert_eq!(small_batch, large_batch, "1,000 persons run the statements 10 do");
    assert_eq!(
        large_batch,
        [
            "transaction.begin_immediate",
            "import.stored_ids",
            "import.person_ref_owners",
            "import.dedup_holders",
            "import.reference_holders",
            "import.person_ref_raise",
            "import.insert_persons",
            "import.insert_pending_keys",
            "import.insert_references",
            "audit.insert",
            "audit.insert_persons",
            "transaction.commit",
        ]
    );
    store.close().await;
}

#[tokio::test]
async fn a_batch_that_stores_nobody_writes_no_audit_entry_and_no_person() {
    let (store, dir) = open(QueryRecorder::default()).await;
    let mut first = full_person(person_id());
    first.person_ref = PersonRef(10);
    let write = |person: Person| ImportWrite { person, assign_ref: false, search_keys: Vec::new(), dedup_key: None };
    store.import_persons(vec![write(first.clone())], audit_entry(AuditAction::PersonImport, Vec::new())).await.unwrap();

    let mut same_ref = full_person(person_id());
    same_ref.person_ref = first.person_ref;
    let mut same_reference = full_person(person_id());
    same_reference.person_ref = PersonRef(first.person_ref.0 + 1);
    same_reference.references = first.references.clone();
    let batch = vec![write(first.clone()), write(same_ref.clone()), write(same_reference.clone())];
    let outcomes = store.import_persons(batch, audit_entry(AuditAction::PersonImport, Vec::new())).await.unwrap();

    assert_eq!(
        outcomes,
        [
            ImportOutcome::AlreadyStored,
            ImportOutcome::PersonRefTaken { owner: first.id },
            ImportOutcome::ReferenceTaken { reference: first.references[0].clone(), owner: first.id },
        ]
    );
    let mut conn = raw(&dir).await;
    assert_eq!(count(&mut conn, "audit_log").await, 1, "only the first batch is audited");
    assert_eq!(count(&mut conn, "persons").await, 1);
    assert_eq!(count(&mut conn, "person_references").await, i64::try_from(first.references.len()).unwrap());
    conn.close().await.unwrap();
    store.close().await;
}

#[tokio::test]
async fn a_batch_failing_in_the_store_writes_nothing_of_it() {
    let (store, dir) = open(QueryRecorder::default()).await;
    let mut good = full_person(person_id());
    good.person_ref = PersonRef(5);
    let keys = PersonKeys::of(&good, None);
    let mut impossible = full_person(person_id());
    // The schema refuses it (CHECK person_ref > 0): the insert statement fails, after the look-ups and the
    // allocation of the assigned number.
    impossible.person_ref = PersonRef(-1);
    let no_keys =
        |person: Person, assign_ref| ImportWrite { person, assign_ref, search_keys: Vec::new(), dedup_key: None };
    let failing = vec![
        ImportWrite { person: good.clone(), assign_ref: false, search_keys: keys.person, dedup_key: keys.dedup },
        no_keys(full_person(person_id()), true),
        no_keys(impossible, false),
    ];

    let failed = store.import_persons(failing, audit_entry(AuditAction::PersonImport, Vec::new())).await;
    assert!(failed.is_err(), "{failed:?}");

    assert_eq!(store.get(good.id).await.unwrap(), None);
    let mut conn = raw(&dir).await;
    for table in ["persons", "search_keys", "person_references", "audit_log", "audit_persons"] {
        assert_eq!(count(&mut conn, table).await, 0, "{table} is untouched");
    }
    let sequence: i64 =
        sqlx::query_scalar("SELECT value FROM counters WHERE name = 'person_ref'").fetch_one(&mut conn).await.unwrap();
    assert_eq!(sequence, 0, "the personRef sequence is rolled back too");
    conn.close().await.unwrap();
    store.close().await;
}

/// The definition of `search_keys_person_id_idx` as SQLite keeps it.
#[expect(clippy::expect_used, reason = "a test helper fails the test loudly, with a message")]
async fn person_index_sql(conn: &mut SqliteConnection) -> String {
    sqlx::query_scalar("SELECT sql FROM sqlite_schema WHERE type = 'index' AND name = 'search_keys_person_id_idx'")
        .fetch_one(&mut *conn)
        .await
        .expect("the index exists")
}

/// Rows breaking a foreign key of `search_keys` (none expected).
#[expect(clippy::expect_used, reason = "a test helper fails the test loudly, with a message")]
async fn search_key_orphans(conn: &mut SqliteConnection) -> usize {
    sqlx::query("PRAGMA foreign_key_check(search_keys)").fetch_all(&mut *conn).await.expect("foreign_key_check").len()
}

#[tokio::test]
async fn persons_imported_across_batches_are_found_and_creates_are_numbered_after_them() {
    let recording = Arc::new(Recording::default());
    let (store, dir) = open(QueryRecorder::new(recording.clone())).await;
    let writes = register(2_500, 2);
    let largest = writes.iter().map(|w| w.person.person_ref.0).max().unwrap();
    let sample: Vec<ImportWrite> = writes.iter().step_by(97).cloned().collect();

    let mut rest = writes;
    let mut stored = 0;
    while !rest.is_empty() {
        let tail = rest.split_off(rest.len().min(1_000));
        let batch = std::mem::replace(&mut rest, tail);
        let outcomes = store.import_persons(batch, audit_entry(AuditAction::PersonImport, Vec::new())).await.unwrap();
        stored += outcomes.iter().filter(|o| imported(o)).count();
    }
    assert_eq!(stored, 2_500, "a register of distinct persons is stored whole");
    let mut conn = raw(&dir).await;
    assert_eq!(count(&mut conn, "search_keys").await, 0, "keys wait until the import is finished");
    let migrated_index = person_index_sql(&mut conn).await;
    recording.take();
    let indexed = store.finish_import().await.unwrap();
    let finish = recording.take();
    assert!(
        finish.contains(&"import.drop_person_index") && finish.contains(&"import.create_person_index"),
        "an import into a new store rebuilds the person index: {finish:?}"
    );
    assert_eq!(i64::try_from(indexed).unwrap(), count(&mut conn, "search_keys").await);
    assert_eq!(count(&mut conn, "import_pending_keys").await, 0, "nothing is left pending");
    assert_eq!(person_index_sql(&mut conn).await, migrated_index, "rebuilt exactly as migration 0003 made it");
    assert_eq!(search_key_orphans(&mut conn).await, 0, "every key's person exists, though checks were off");
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check").fetch_one(&mut conn).await.unwrap();
    assert_eq!(integrity, "ok", "the rebuilt index holds every key row");
    conn.close().await.unwrap();

    for write in &sample {
        let found = store.candidates(&write.search_keys, 50).await.unwrap();
        assert!(found.iter().any(|c| c.person == write.person), "{} is a candidate for its own keys", write.person.id);
        let reference = &write.person.references[0];
        assert_eq!(store.find_by_reference(reference).await.unwrap(), Some(write.person.id));
    }
    let mut conn = raw(&dir).await;
    assert_eq!(count(&mut conn, "audit_log").await, 3, "one audit entry per batch");
    assert_eq!(count(&mut conn, "audit_persons").await, 2_500);
    conn.close().await.unwrap();

    let created = store.insert(create_write(full_person(person_id()), None)).await.unwrap();
    assert_eq!(created.person_ref, PersonRef(largest + 1), "creates continue after the imported numbers");
    store.close().await;
}

#[tokio::test]
async fn the_import_look_ups_read_indexes_not_tables() {
    let (store, dir) = open(QueryRecorder::default()).await;
    store.close().await;
    let mut conn = raw(&dir).await;
    for (name, bind, expected) in [
        ("import.stored_ids", r#"["a","b"]"#, "SEARCH persons USING COVERING INDEX sqlite_autoindex_persons_1 (id=?)"),
        ("import.person_ref_owners", "[1,2]", "SEARCH persons USING INDEX persons_person_ref_key (person_ref=?)"),
        ("import.dedup_holders", r#"["a"]"#, "SEARCH persons USING INDEX persons_dedup_key_key (dedup_key=?)"),
        (
            "import.reference_holders",
            r#"[{"system":"tenure","id":"t-1"}]"#,
            "SEARCH r USING PRIMARY KEY (system=? AND reference_id=?)",
        ),
    ] {
        let query = CATALOGUE.iter().find(|q| q.name == name).unwrap();
        // The statement text is a constant of the catalogue, prefixed with a constant.
        let explain = AssertSqlSafe(format!("EXPLAIN QUERY PLAN {}", query.sql));
        let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(explain).bind(bind).fetch_all(&mut conn).await.unwrap();
        let details: Vec<&str> = plan.iter().map(|(_, _, _, detail)| detail.as_str()).collect();
        assert!(details.iter().any(|d| d.starts_with(expected)), "{name}: {details:?}");
        assert!(
            !details.iter().any(|d| d.starts_with("SCAN persons") || d.starts_with("SCAN r")),
            "{name}: {details:?}"
        );
    }
    conn.close().await.unwrap();
}

#[tokio::test]
async fn a_small_import_into_a_store_holding_more_keys_updates_the_person_index_in_place() {
    let recording = Arc::new(Recording::default());
    let (store, dir) = open(QueryRecorder::new(recording.clone())).await;
    let mut created = Vec::new();
    for write in register(40, 3) {
        let create = create_write(write.person.clone(), None).with_search_keys(write.search_keys.clone(), None);
        store.insert(create).await.unwrap();
        created.push(write);
    }
    let mut conn = raw(&dir).await;
    let stored_keys = count(&mut conn, "search_keys").await;
    assert!(stored_keys > 40, "the created persons' keys are stored: {stored_keys}");
    let mut newcomer = register(1, 4).remove(0);
    newcomer.person.person_ref = PersonRef(9_000_000);
    let outcomes =
        store.import_persons(vec![newcomer.clone()], audit_entry(AuditAction::PersonImport, Vec::new())).await.unwrap();
    assert!(outcomes.iter().all(imported), "{outcomes:?}");

    recording.take();
    let indexed = store.finish_import().await.unwrap();
    let finish = recording.take();
    assert!(finish.contains(&"import.stored_keys_up_to"), "{finish:?}");
    assert!(
        !finish.contains(&"import.drop_person_index") && !finish.contains(&"import.create_person_index"),
        "fewer keys wait than are stored: the index is updated, not rebuilt: {finish:?}"
    );
    assert_eq!(i64::try_from(indexed).unwrap(), i64::try_from(newcomer.search_keys.len()).unwrap());
    assert_eq!(count(&mut conn, "search_keys").await, stored_keys + i64::try_from(indexed).unwrap());
    assert_eq!(search_key_orphans(&mut conn).await, 0);
    conn.close().await.unwrap();

    let found = store.candidates(&newcomer.search_keys, 50).await.unwrap();
    assert!(found.iter().any(|c| c.person.id == newcomer.person.id), "the imported person is found by its keys");
    let first = &created[0];
    let found = store.candidates(&first.search_keys, 50).await.unwrap();
    assert!(found.iter().any(|c| c.person.id == first.person.id), "a created person is still found by its keys");
    store.close().await;
}
