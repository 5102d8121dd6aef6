//! Cross-references beyond the contract suite: a claim racing another transaction that holds or releases the same
//! reference (made deterministic by holding that transaction open on a raw connection), and the upgrade of a
//! schema from before migration 0002, whose stored documents already name references.

#![expect(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]

use std::str::FromStr;
use std::time::{Duration, Instant};

use person_core::ports::{PersonRepository, UpdateError};
use person_core::testkit::fixtures::{create_write, full_person, person_id, reference, references_write};
use person_core::{Person, PersonStatus};
use person_postgres::testing::{TEST_URL_VARIABLE, with_schema};
use person_postgres::{PostgresOptions, PostgresStore};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection as _, PgConnection};
use uuid::Uuid;

/// A store on a fresh schema whose connections report a name of their own (to find them in `pg_stat_activity`),
/// a raw connection on the same schema, and that name.
async fn store_and_raw_connection() -> Option<(PostgresStore, PgConnection, String)> {
    let Ok(base) = std::env::var(TEST_URL_VARIABLE) else {
        println!("skipped: set {TEST_URL_VARIABLE} to run the PostgreSQL tests");
        return None;
    };
    let schema = format!("person_test_{}", Uuid::new_v4().simple());
    let name = format!("person-test-{}", Uuid::new_v4().simple());
    let url = format!("{}&application_name={name}", with_schema(&base, &schema));
    let store = PostgresStore::connect(&url, PostgresOptions::default()).await.unwrap();
    let raw = PgConnection::connect_with(&raw_options(&base, &schema)).await.unwrap();
    Some((store, raw, name))
}

fn raw_options(base: &str, schema: &str) -> PgConnectOptions {
    PgConnectOptions::from_str(base).unwrap().options([("search_path", schema)])
}

async fn create(store: &PostgresStore) -> Person {
    store.insert(create_write(full_person(person_id()), None)).await.unwrap()
}

/// Waits until a connection named `name` is blocked on a lock (polls with a deadline).
async fn blocked_on_a_lock(raw: &mut PgConnection, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'",
        )
        .bind(name)
        .fetch_one(&mut *raw)
        .await
        .unwrap();
        if waiting > 0 {
            return;
        }
        assert!(Instant::now() < deadline, "the claim never waited for the open transaction");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_racing_a_transaction_that_takes_the_reference_waits_and_names_its_holder() {
    let Some((store, mut raw, name)) = store_and_raw_connection().await else { return };
    let (holder, claimant) = (create(&store).await, create(&store).await);
    let contested = reference("tenure", "contested");

    // Another writer has claimed the reference for `holder` and not committed yet.
    let mut other = raw.begin().await.unwrap();
    sqlx::query("INSERT INTO person_references (system, reference_id, person_id) VALUES ('tenure', 'contested', $1)")
        .bind(holder.id.as_uuid())
        .execute(&mut *other)
        .await
        .unwrap();
    let claim = tokio::spawn({
        let (store, write) = (store.clone(), references_write(&claimant, std::slice::from_ref(&contested)));
        async move { store.update(write).await }
    });
    let mut watcher = PgConnection::connect(&std::env::var(TEST_URL_VARIABLE).unwrap()).await.unwrap();
    blocked_on_a_lock(&mut watcher, &name).await;
    other.commit().await.unwrap();

    let claim = claim.await.unwrap();
    let Err(UpdateError::ReferenceTaken { reference, owner }) = &claim else { panic!("got {claim:?}") };
    assert_eq!((reference, *owner), (&contested, holder.id), "the claimant is told who holds it");
    assert_eq!(store.get(claimant.id).await.unwrap().unwrap(), claimant, "the refused write changed nothing");
    assert_eq!(store.find_by_reference(&contested).await.unwrap(), Some(holder.id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_racing_a_transaction_that_releases_the_reference_waits_and_takes_it() {
    let Some((store, mut raw, name)) = store_and_raw_connection().await else { return };
    let (holder, claimant) = (create(&store).await, create(&store).await);
    let released = holder.references.first().unwrap().clone();

    // Another writer is releasing `holder`'s reference (as deleting the person does) and has not committed yet.
    let mut other = raw.begin().await.unwrap();
    sqlx::query("DELETE FROM person_references WHERE person_id = $1")
        .bind(holder.id.as_uuid())
        .execute(&mut *other)
        .await
        .unwrap();
    let claim = tokio::spawn({
        let mut references = claimant.references.clone();
        references.push(released.clone());
        let (store, write) = (store.clone(), references_write(&claimant, &references));
        async move { store.update(write).await }
    });
    let mut watcher = PgConnection::connect(&std::env::var(TEST_URL_VARIABLE).unwrap()).await.unwrap();
    blocked_on_a_lock(&mut watcher, &name).await;
    other.commit().await.unwrap();

    claim.await.unwrap().unwrap();
    assert_eq!(store.find_by_reference(&released).await.unwrap(), Some(claimant.id));
}

#[tokio::test]
async fn upgrading_indexes_the_references_of_live_persons_first_in_id_order_keeping_a_shared_one() {
    let Ok(base) = std::env::var(TEST_URL_VARIABLE) else {
        println!("skipped: set {TEST_URL_VARIABLE} to run the PostgreSQL tests");
        return;
    };
    // A schema as the first release left it: migration 0001 alone (a copy of the released file).
    let schema = format!("person_test_{}", Uuid::new_v4().simple());
    let mut raw = PgConnection::connect(&base).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&mut raw).await.unwrap();
    raw.close().await.unwrap();
    let mut raw = PgConnection::connect_with(&raw_options(&base, &schema)).await.unwrap();
    let migrations = std::env::temp_dir().join(format!("person-migrations-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&migrations).unwrap();
    std::fs::write(migrations.join("0001_init.sql"), include_str!("../migrations/0001_init.sql")).unwrap();
    let migrator = sqlx::migrate::Migrator::new(migrations.as_path()).await.unwrap();
    migrator.run(&mut raw).await.unwrap();
    std::fs::remove_dir_all(&migrations).unwrap();

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
    for (person_ref, (person, state)) in
        (1_i64..).zip([(&second, "active"), (&first, "active"), (&deleted, "deleted"), (&without, "active")])
    {
        sqlx::query(
            "INSERT INTO persons (id, person_ref, version_number, state, document, created_at, last_modified) \
             VALUES ($1, $2, 0, $3, $4::jsonb, now(), now())",
        )
        .bind(person.id.as_uuid())
        .bind(person_ref)
        .bind(state)
        .bind(serde_json::to_string(person).unwrap())
        .execute(&mut raw)
        .await
        .unwrap();
    }
    raw.close().await.unwrap();

    let store = PostgresStore::connect(&with_schema(&base, &schema), PostgresOptions::default()).await.unwrap();
    let owner = async |system: &str, id: &str| store.find_by_reference(&reference(system, id)).await.unwrap();
    assert_eq!(owner("tenure", "shared").await, Some(first.id), "the first in id order keeps it");
    assert_eq!(owner("repairs", &format!("r-{}", first.id)).await, Some(first.id));
    assert_eq!(owner("repairs", &format!("r-{}", second.id)).await, Some(second.id));
    assert_eq!(owner("tenure", &format!("t-{}", deleted.id)).await, None, "a deleted person holds none");
    assert_eq!(store.get(without.id).await.unwrap().as_ref(), Some(&without));

    // The person left without the shared reference keeps it in its document until staff resolve it: a write
    // that keeps it is refused, naming the holder; one that drops it succeeds.
    let kept = store.update(references_write(&second, &second.references)).await;
    assert!(matches!(&kept, Err(UpdateError::ReferenceTaken { owner, .. }) if *owner == first.id), "got {kept:?}");
    let own = reference("repairs", &format!("r-{}", second.id));
    store.update(references_write(&second, std::slice::from_ref(&own))).await.unwrap();
    assert_eq!(store.find_by_reference(&own).await.unwrap(), Some(second.id));
}
