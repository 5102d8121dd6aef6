//! The main statements are index look-ups, never scans of the big tables: each is EXPLAINed (with real
//! parameters) on a fresh schema holding enough rows that a sequential scan would be the planner's choice if no
//! usable index existed. The plans are noted in docs/storage.md.

#![expect(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]

use std::str::FromStr;

use chrono::{DateTime, TimeDelta, Utc};
use person_postgres::queries;
use person_postgres::testing::{TEST_URL_VARIABLE, with_schema};
use person_postgres::{PostgresOptions, PostgresStore};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row};
use uuid::Uuid;

const PERSONS: i64 = 20_000;

/// A migrated fresh schema filled with synthetic rows, and a pool on it.
async fn filled_schema() -> Option<PgPool> {
    let Ok(base) = std::env::var(TEST_URL_VARIABLE) else {
        println!("skipped: set {TEST_URL_VARIABLE} to run the PostgreSQL tests");
        return None;
    };
    let schema = format!("person_test_{}", Uuid::new_v4().simple());
    let store = PostgresStore::connect(&with_schema(&base, &schema), PostgresOptions::default()).await.unwrap();
    store.close().await;
    let options = PgConnectOptions::from_str(&base).unwrap().options([("search_path", schema.as_str())]);
    let pool = PgPoolOptions::new().max_connections(1).connect_with(options).await.unwrap();
    let fill = [
        "INSERT INTO persons (id, person_ref, version_number, state, document, created_at, last_modified, \
           processing_restricted, dedup_key, tenure_count, reference_count) \
         SELECT gen_random_uuid(), g, 0, CASE WHEN g % 50 = 0 THEN 'deleted' ELSE 'active' END, '{}'::jsonb, now(), \
           now() - g * interval '1 minute', g % 1000 = 0, CASE WHEN g % 50 = 0 THEN NULL ELSE 'dk' || g END, \
           g % 3, g % 2 FROM generate_series(1, $1) g",
        "INSERT INTO search_keys (key, person_id, source) SELECT k, id, 'person' FROM persons, LATERAL (VALUES \
           ('sn:' || (person_ref % 2000)), ('fn:' || (person_ref % 300)), ('dob:' || (person_ref % 3000)), \
           ('pc:' || (person_ref % 10000))) v(k) WHERE state = 'active' AND $1 > 0",
        "INSERT INTO events (position, id, person_id, event_type, document) \
         SELECT person_ref, gen_random_uuid(), id, 'PersonCreatedEvent', '{}'::jsonb FROM persons WHERE $1 > 0",
        "INSERT INTO person_history SELECT id, 0, gen_random_uuid(), '{}'::jsonb FROM persons WHERE $1 > 0",
        "INSERT INTO documents SELECT id, 'equality', 0, '{}'::jsonb, now() FROM persons WHERE person_ref % 10 = 0 \
           AND $1 > 0",
        "INSERT INTO idempotency SELECT 'k' || person_ref, 'f', id, '{}'::jsonb, now() FROM persons WHERE $1 > 0",
        "INSERT INTO audit_log (id, at, action, document) \
         SELECT gen_random_uuid(), now(), 'person-read', '{}'::jsonb FROM generate_series(1, $1)",
        "INSERT INTO audit_persons (position, person_id) \
         SELECT l.position, p.id FROM audit_log l JOIN persons p ON p.person_ref = l.position WHERE $1 > 0",
        "INSERT INTO person_references (system, reference_id, person_id) \
         SELECT 'tenure', 't-' || person_ref, id FROM persons WHERE state = 'active' AND $1 > 0",
    ];
    for statement in fill {
        sqlx::query(statement).bind(PERSONS).execute(&pool).await.unwrap();
    }
    sqlx::query("ANALYZE").execute(&pool).await.unwrap();
    Some(pool)
}

/// The plan of `sql` with `binds` applied, as text.
async fn plan(pool: &PgPool, sql: &'static str, binds: Vec<Bind>) -> String {
    let explain = format!("EXPLAIN (COSTS OFF) {sql}");
    let mut query = sqlx::query(sqlx::AssertSqlSafe(explain));
    for bind in binds {
        query = match bind {
            Bind::Id(id) => query.bind(id),
            Bind::Ids(ids) => query.bind(ids),
            Bind::Text(text) => query.bind(text),
            Bind::Texts(texts) => query.bind(texts),
            Bind::Int(n) => query.bind(n),
            Bind::MaybeId(id) => query.bind(id),
            Bind::Since(since) => query.bind(since),
        };
    }
    let rows = query.fetch_all(pool).await.unwrap();
    rows.iter().map(|row| row.get::<String, _>(0)).collect::<Vec<_>>().join("\n")
}

enum Bind {
    Id(Uuid),
    Ids(Vec<Uuid>),
    Text(&'static str),
    Texts(Vec<String>),
    Int(i64),
    MaybeId(Option<Uuid>),
    Since(Option<DateTime<Utc>>),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_main_statements_use_their_indexes_and_never_scan_a_big_table() {
    let Some(pool) = filled_schema().await else { return };
    let id: Uuid = sqlx::query_scalar("SELECT id FROM persons WHERE person_ref = 4242").fetch_one(&pool).await.unwrap();
    let keys = vec!["sn:123".to_owned(), "fn:45".to_owned(), "dob:777".to_owned(), "pc:4242".to_owned()];
    let recent = Utc::now() - TimeDelta::minutes(30);
    let references = (vec!["tenure".to_owned(), "repairs".to_owned()], vec!["t-4242".to_owned(), "r-1".to_owned()]);
    let cases: Vec<(&str, &'static str, Vec<Bind>, &[&str])> = vec![
        (
            "person.search_candidates",
            queries::CANDIDATES.sql,
            vec![Bind::Texts(keys), Bind::Int(500)],
            &["search_keys_pkey", "persons_pkey", "documents_pkey"],
        ),
        ("person.get", queries::GET_PERSON.sql, vec![Bind::Id(id)], &["persons_pkey"]),
        ("events.after", queries::EVENTS_AFTER.sql, vec![Bind::Int(19_000), Bind::Int(100)], &["events_pkey"]),
        (
            "person.by_dedup_key",
            queries::PERSON_BY_DEDUP_KEY.sql,
            vec![Bind::Text("dk77"), Bind::Id(id)],
            &["persons_dedup_key_key"],
        ),
        (
            "audit.for_person",
            queries::AUDIT_FOR_PERSON.sql,
            vec![Bind::Id(id), Bind::Int(0), Bind::Int(100)],
            &["audit_persons_pkey", "audit_log_pkey"],
        ),
        (
            "person.restricted_among",
            queries::RESTRICTED_AMONG.sql,
            vec![Bind::Ids(vec![id, Uuid::new_v4()])],
            &["persons_processing_restricted_idx"],
        ),
        ("history.list", queries::LIST_HISTORY.sql, vec![Bind::Id(id)], &["person_history_pkey"]),
        ("document.get", queries::GET_DOCUMENT.sql, vec![Bind::Id(id), Bind::Text("equality")], &["documents_pkey"]),
        ("idempotency.get", queries::GET_IDEMPOTENCY.sql, vec![Bind::Text("k4242")], &["idempotency_pkey"]),
        (
            "person.find_by_reference",
            queries::FIND_BY_REFERENCE.sql,
            vec![Bind::Text("tenure"), Bind::Text("t-4242")],
            &["person_references_pkey"],
        ),
        (
            "person_references.holder",
            queries::REFERENCE_HOLDER.sql,
            vec![Bind::Texts(references.0.clone()), Bind::Texts(references.1.clone()), Bind::Id(id)],
            &["person_references_pkey"],
        ),
        (
            "person_references.delete",
            queries::DELETE_REFERENCES.sql,
            vec![Bind::Id(id)],
            &["person_references_person_id_idx"],
        ),
        (
            "person_references.insert",
            queries::INSERT_REFERENCES.sql,
            vec![Bind::Id(id), Bind::Texts(references.0), Bind::Texts(references.1)],
            &["person_references_pkey"],
        ),
        (
            "search_keys.delete",
            queries::DELETE_SEARCH_KEYS.sql,
            vec![Bind::Id(id), Bind::Text("person")],
            &["search_keys_person_id_idx"],
        ),
        (
            "person.report_page (incremental: the last half hour of 20 000 minutes)",
            queries::REPORT_PERSONS.sql,
            vec![Bind::Since(Some(recent)), Bind::MaybeId(None), Bind::Int(0), Bind::Int(100)],
            &["persons_report_idx"],
        ),
        (
            "person.report_counts (incremental)",
            queries::REPORT_COUNTS.sql,
            vec![Bind::Since(Some(recent))],
            &["persons_report_idx"],
        ),
        (
            "relay.acquire",
            queries::RELAY_ACQUIRE.sql,
            vec![Bind::Text("sns"), Bind::Text("a"), Bind::Since(Some(recent)), Bind::Since(Some(recent))],
            &["relays_pkey"],
        ),
    ];
    for (name, sql, binds, indexes) in cases {
        let plan = plan(&pool, sql, binds).await;
        assert!(!plan.contains("Seq Scan"), "{name} scans a table:\n{plan}");
        for index in indexes {
            assert!(plan.contains(index), "{name} does not use {index}:\n{plan}");
        }
    }

    // A full load's page (keyset from the middle of the table) walks the primary key from `after` in id order and
    // stops at the limit: no sort of the table, whatever its size.
    let middle: Uuid =
        sqlx::query_scalar("SELECT id FROM persons ORDER BY id OFFSET 10000 LIMIT 1").fetch_one(&pool).await.unwrap();
    let binds = vec![Bind::Since(None), Bind::MaybeId(Some(middle)), Bind::Int(0), Bind::Int(100)];
    let page = plan(&pool, queries::REPORT_PERSONS.sql, binds).await;
    assert!(page.contains("persons_pkey"), "person.report_page does not read persons_pkey:\n{page}");
    assert!(!page.contains("Sort") && !page.contains("Seq Scan"), "person.report_page sorts or scans:\n{page}");
}
