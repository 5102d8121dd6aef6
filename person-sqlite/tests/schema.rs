//! What the schema itself guarantees, whoever writes to the file: the audit trail is append-only, every
//! catalogued statement is valid against the migrated schema, and the access-control look-ups are index reads.

use std::path::Path;

use person_core::audit::AuditAction;
use person_core::ports::{AuditLog, PersonRepository};
use person_core::testkit::fixtures::{audit_entry, create_write, full_person, person_id};
use person_sqlite::queries::CATALOGUE;
use person_sqlite::{SqliteOptions, SqliteStore};
use sqlx::{AssertSqlSafe, Connection as _, Executor as _, SqlSafeStr as _, SqliteConnection};

fn url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// A migrated database holding one person and two audit entries, and a raw connection to it (as the sqlite3
/// shell or a script would have).
#[expect(clippy::expect_used, reason = "a test helper fails the test loudly, with a message")]
async fn database_with_audit_entries(path: &Path) -> SqliteConnection {
    let store = SqliteStore::open(&url(path), SqliteOptions::default()).await.expect("store opens");
    let person = store.insert(create_write(full_person(person_id()), None)).await.expect("insert succeeds");
    store.append(audit_entry(AuditAction::PersonRead, vec![person.id])).await.expect("append succeeds");
    store.close().await;
    SqliteConnection::connect(&url(path)).await.expect("connects")
}

#[expect(clippy::expect_used, reason = "a test helper fails the test loudly, with a message")]
async fn audit_rows(conn: &mut SqliteConnection) -> (i64, i64) {
    let log = sqlx::query_scalar("SELECT count(*) FROM audit_log").fetch_one(&mut *conn).await.expect("count");
    let persons = sqlx::query_scalar("SELECT count(*) FROM audit_persons").fetch_one(&mut *conn).await.expect("count");
    (log, persons)
}

#[tokio::test]
async fn audit_rows_cannot_be_changed_or_removed_by_any_connection() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut conn = database_with_audit_entries(&dir.path().join("person.db")).await;
    assert_eq!(audit_rows(&mut conn).await, (2, 2));

    for statement in [
        "UPDATE audit_log SET action = 'person-update'",
        "UPDATE audit_log SET document = '{}' WHERE position = 1",
        "DELETE FROM audit_log",
        "DELETE FROM audit_log WHERE position = 2",
        "INSERT OR REPLACE INTO audit_log (position, id, at, action, document) VALUES (1, 'x', 'x', 'x', '{}')",
        "REPLACE INTO audit_log (id, at, action, document) SELECT id, at, 'x', '{}' FROM audit_log",
        "UPDATE audit_persons SET person_id = 'someone-else'",
        "DELETE FROM audit_persons",
        "INSERT OR REPLACE INTO audit_persons (position, person_id) SELECT position, person_id FROM audit_persons",
    ] {
        let refused = sqlx::query(statement).execute(&mut conn).await;
        let Err(sqlx::Error::Database(error)) = refused else { panic!("{statement} must be refused, got {refused:?}") };
        assert!(error.message().contains("append-only"), "{statement}: {}", error.message());
    }
    assert_eq!(audit_rows(&mut conn).await, (2, 2), "nothing changed");
    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_log ORDER BY position").fetch_all(&mut conn).await.expect("reads");
    assert_eq!(actions, ["person-create", "person-read"]);

    // Appending is still allowed.
    sqlx::query("INSERT INTO audit_log (id, at, action, document) VALUES ('manual', 'at', 'person-read', '{}')")
        .execute(&mut conn)
        .await
        .expect("appending is allowed");
    assert_eq!(audit_rows(&mut conn).await, (3, 2));
    conn.close().await.expect("closes");
}

#[tokio::test]
async fn every_catalogued_statement_is_valid_against_the_migrated_schema() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("person.db");
    SqliteStore::open(&url(&path), SqliteOptions::default()).await.expect("store opens").close().await;
    let mut conn = SqliteConnection::connect(&url(&path)).await.expect("connects");
    for query in CATALOGUE.iter().filter(|q| !q.name.starts_with("transaction.")) {
        // The rebuild of an index prepares only where the import finish runs it: after the index was dropped.
        let rebuild = query.name == "import.create_person_index";
        if rebuild {
            sqlx::raw_sql("BEGIN; DROP INDEX search_keys_person_id_idx").execute(&mut conn).await.expect("drops");
        }
        if let Err(error) = conn.prepare(query.sql.into_sql_str()).await {
            panic!("{} does not prepare: {error}", query.name);
        }
        if rebuild {
            sqlx::raw_sql("ROLLBACK").execute(&mut conn).await.expect("rolls back");
        }
    }
    conn.close().await.expect("closes");
}

#[tokio::test]
async fn restriction_and_access_log_look_ups_read_indexes_not_tables() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut conn = database_with_audit_entries(&dir.path().join("person.db")).await;
    for (name, expected) in
        [("person.restricted_among", "SEARCH persons USING"), ("audit.for_person", "SEARCH p USING PRIMARY KEY")]
    {
        let query = CATALOGUE.iter().find(|q| q.name == name).expect("catalogued");
        // The statement text is a constant of the catalogue, prefixed with a constant.
        let plan: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(AssertSqlSafe(format!("EXPLAIN QUERY PLAN {}", query.sql)))
                .bind("[]")
                .bind(0_i64)
                .bind(10_i64)
                .fetch_all(&mut conn)
                .await
                .expect("plan");
        let details: Vec<&str> = plan.iter().map(|(_, _, _, detail)| detail.as_str()).collect();
        assert!(details.iter().any(|d| d.starts_with(expected)), "{name}: {details:?}");
        assert!(
            !details
                .iter()
                .any(|d| d.starts_with("SCAN persons") || d.starts_with("SCAN p") || d.starts_with("SCAN l")),
            "{name} scans a table: {details:?}"
        );
    }
    conn.close().await.expect("closes");
}

#[tokio::test]
async fn candidate_retrieval_and_the_dedup_check_read_indexes_not_tables() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut conn = database_with_audit_entries(&dir.path().join("person.db")).await;
    let plan_of = |name: &str| CATALOGUE.iter().find(|q| q.name == name).expect("catalogued").sql;

    let candidates: Vec<(i64, i64, i64, String)> =
        sqlx::query_as(AssertSqlSafe(format!("EXPLAIN QUERY PLAN {}", plan_of("person.search_candidates"))))
            .bind(r#"["sn:SM0","db:1990-05-17"]"#)
            .bind(500_i64)
            .fetch_all(&mut conn)
            .await
            .expect("plan");
    let details: Vec<&str> = candidates.iter().map(|(_, _, _, detail)| detail.as_str()).collect();
    assert!(details.iter().any(|d| d.starts_with("SEARCH k USING PRIMARY KEY (key=?)")), "{details:?}");
    // The one scan allowed: the partial index of restricted persons (read once per statement, as small as the
    // number of restricted persons).
    let restricted = "SCAN persons USING COVERING INDEX persons_processing_restricted_idx";
    assert!(details.contains(&restricted), "restricted persons come from their partial index: {details:?}");
    assert!(
        !details.iter().any(
            |d| *d != restricted && (d.starts_with("SCAN k") || d.starts_with("SCAN p") || d.starts_with("SCAN q"))
        ),
        "candidate retrieval scans a table: {details:?}"
    );

    let dedup: Vec<(i64, i64, i64, String)> =
        sqlx::query_as(AssertSqlSafe(format!("EXPLAIN QUERY PLAN {}", plan_of("person.by_dedup_key"))))
            .bind("ada|lovelace|1990-05-17")
            .bind("id")
            .fetch_all(&mut conn)
            .await
            .expect("plan");
    let details: Vec<&str> = dedup.iter().map(|(_, _, _, detail)| detail.as_str()).collect();
    assert!(details.iter().any(|d| d.contains("USING INDEX persons_dedup_key_key")), "{details:?}");
    conn.close().await.expect("closes");
}

#[tokio::test]
async fn reference_look_ups_and_replacements_read_indexes_not_tables() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut conn = database_with_audit_entries(&dir.path().join("person.db")).await;
    let references = r#"[{"system":"tenure","id":"t-1"},{"system":"repairs","id":"r-1"}]"#;
    for (name, binds, expected) in [
        ("person.find_by_reference", vec!["tenure", "t-1"], "SEARCH person_references USING PRIMARY KEY"),
        ("person_references.holder", vec![references, "id"], "SEARCH r USING PRIMARY KEY"),
        (
            "person_references.delete",
            vec!["id"],
            "SEARCH person_references USING COVERING INDEX person_references_person_id_idx",
        ),
    ] {
        let query = CATALOGUE.iter().find(|q| q.name == name).expect("catalogued");
        // The statement text is a constant of the catalogue, prefixed with a constant.
        let mut explain = sqlx::query_as(AssertSqlSafe(format!("EXPLAIN QUERY PLAN {}", query.sql)));
        for bind in binds {
            explain = explain.bind(bind);
        }
        let plan: Vec<(i64, i64, i64, String)> = explain.fetch_all(&mut conn).await.expect("plan");
        let details: Vec<&str> = plan.iter().map(|(_, _, _, detail)| detail.as_str()).collect();
        assert!(details.iter().any(|d| d.starts_with(expected)), "{name}: {details:?}");
        assert!(
            !details.iter().any(|d| d.starts_with("SCAN person_references") || d.starts_with("SCAN r")),
            "{name} scans a table: {details:?}"
        );
    }
    conn.close().await.expect("closes");
}

/// The `EXPLAIN QUERY PLAN` details of the catalogued statement `name`, with `binds` bound in order.
#[expect(clippy::expect_used, reason = "a test helper fails the test loudly, with a message")]
async fn plan(conn: &mut SqliteConnection, name: &str, binds: &[&str]) -> Vec<String> {
    let query = CATALOGUE.iter().find(|q| q.name == name).expect("catalogued");
    // The statement text is a constant of the catalogue, prefixed with a constant.
    let mut explain = sqlx::query_as(AssertSqlSafe(format!("EXPLAIN QUERY PLAN {}", query.sql)));
    for bind in binds {
        explain = explain.bind(*bind);
    }
    let plan: Vec<(i64, i64, i64, String)> = explain.fetch_all(&mut *conn).await.expect("plan");
    plan.into_iter().map(|(_, _, _, detail)| detail).collect()
}

#[tokio::test]
async fn reporting_pages_read_the_id_order_index_and_counts_read_only_their_covering_index() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut conn = database_with_audit_entries(&dir.path().join("person.db")).await;

    for (after, since) in [("", ""), ("00000000-0000-4000-8000-000000000000", "2026-01-02T03:04:05.000000000Z")] {
        let details = plan(&mut conn, "report.persons", &[after, since, "100", "0"]).await;
        assert!(
            details.iter().any(|d| d.starts_with("SEARCH persons USING INDEX persons_report_idx (id>?)")),
            "keyset pages are an index range read from the position: {details:?}"
        );
        // The page (at most `limit` rows, read in id order) is joined into one JSON array in id order; the table is
        // never sorted.
        assert!(
            !details.iter().any(|d| d.contains("TEMP B-TREE") && !d.contains("group_concat(ORDER BY)")),
            "pages are never sorted: {details:?}"
        );
    }
    for since in ["", "2026-01-02T03:04:05.000000000Z"] {
        let details = plan(&mut conn, "report.counts", &[since]).await;
        assert!(
            details.iter().any(|d| d.contains("USING COVERING INDEX persons_report_counts_idx")),
            "counts never read a document: {details:?}"
        );
    }
    conn.close().await.expect("closes");
}

#[tokio::test]
async fn relay_statements_read_one_row_by_primary_key() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut conn = database_with_audit_entries(&dir.path().join("person.db")).await;
    let now = "2026-01-02T03:04:05.000000000Z";
    for (name, binds) in [
        ("relay.advance", vec!["5", now, "sns", "a", now]),
        ("relay.release", vec!["sns", "a"]),
        ("relay.state", vec!["sns"]),
    ] {
        let details = plan(&mut conn, name, &binds).await;
        assert!(details.iter().any(|d| d.contains("USING PRIMARY KEY (relay=?)")), "{name}: {details:?}");
        assert!(!details.iter().any(|d| d.starts_with("SCAN")), "{name} scans a table: {details:?}");
    }
    conn.close().await.expect("closes");
}
