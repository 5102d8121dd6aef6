//! Reporting beyond the contract suite: the upgrade of a schema from before migration 0003, whose stored persons
//! must be counted from their documents once (the backfill) and from the columns every write keeps afterwards.

use std::str::FromStr;

use person_core::PersonStatus;
use person_core::ports::{PersonRepository, ReportCounts, ReportQuery, ReportingRepository};
use person_core::testkit::fixtures::{full_person, person_id, reference, references_write};
use person_postgres::testing::{TEST_URL_VARIABLE, with_schema};
use person_postgres::{PostgresOptions, PostgresStore};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection as _, PgConnection};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrading_a_schema_counts_the_tenures_and_references_its_documents_already_hold() {
    let Ok(base) = std::env::var(TEST_URL_VARIABLE) else {
        println!("skipped: set {TEST_URL_VARIABLE} to run the PostgreSQL tests");
        return;
    };
    // A schema as the second release left it: migrations 0001 and 0002 alone (copies of the released files).
    let schema = format!("person_test_{}", Uuid::new_v4().simple());
    let mut raw = PgConnection::connect(&base).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&mut raw).await.unwrap();
    raw.close().await.unwrap();
    let options = PgConnectOptions::from_str(&base).unwrap().options([("search_path", schema.as_str())]);
    let mut raw = PgConnection::connect_with(&options).await.unwrap();
    let migrations = std::env::temp_dir().join(format!("person-migrations-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&migrations).unwrap();
    std::fs::write(migrations.join("0001_init.sql"), include_str!("../migrations/0001_init.sql")).unwrap();
    std::fs::write(migrations.join("0002_references.sql"), include_str!("../migrations/0002_references.sql")).unwrap();
    let migrator = sqlx::migrate::Migrator::new(migrations.as_path()).await.unwrap();
    migrator.run(&mut raw).await.unwrap();
    std::fs::remove_dir_all(&migrations).unwrap();

    let live = full_person(person_id());
    let mut restricted = full_person(person_id());
    restricted.processing_restricted = true;
    let mut deleted = full_person(person_id());
    deleted.status = PersonStatus::Deleted;
    let mut bare = full_person(person_id());
    bare.tenures.clear();
    bare.references.clear();
    let persons = [(&live, "active"), (&restricted, "active"), (&deleted, "deleted"), (&bare, "active")];
    for (person_ref, (person, state)) in (1_i64..).zip(persons) {
        sqlx::query(
            "INSERT INTO persons (id, person_ref, version_number, state, document, created_at, last_modified, \
             processing_restricted) VALUES ($1, $2, 0, $3, $4::jsonb, $5, $5, $6)",
        )
        .bind(person.id.as_uuid())
        .bind(person_ref)
        .bind(state)
        .bind(serde_json::to_string(person).unwrap())
        .bind(person.last_modified)
        .bind(person.processing_restricted)
        .execute(&mut raw)
        .await
        .unwrap();
    }
    raw.close().await.unwrap();

    let store = PostgresStore::connect(&with_schema(&base, &schema), PostgresOptions::default()).await.unwrap();
    let tenures = live.tenures.len() as u64;
    let references = live.references.len() as u64;
    assert!(tenures > 0 && references > 0, "the fixture holds tenures and references");
    let counts = store.report_counts(None).await.unwrap();
    assert_eq!(counts, ReportCounts { persons: 4, withheld: 2, tenures, references });
    let everything = ReportQuery { modified_since: None, after: None, offset: 0, limit: 10 };
    assert_eq!(store.report_persons(&everything).await.unwrap().len(), 4);

    // Writes after the upgrade keep the columns: a second reference is counted without reading a document.
    let stored = store.get(live.id).await.unwrap().unwrap();
    let mut more = stored.references.clone();
    more.push(reference("repairs", &format!("r-{}", live.id)));
    store.update(references_write(&stored, &more)).await.unwrap();
    let counts = store.report_counts(None).await.unwrap();
    assert_eq!(counts, ReportCounts { persons: 4, withheld: 2, tenures, references: references + 1 });
}
