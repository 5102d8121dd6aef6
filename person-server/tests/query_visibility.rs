//! Query visibility (SPEC §10) through the real binary on the embedded store: one request's JSON log line lists
//! every storage operation and statement it ran, under its correlation id; `GET /api/v1/admin/queries` lists
//! every statement of the store's catalogue with statistics that move when requests are made.

#![expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use std::collections::HashSet;

use common::{ServerProcess, client, sqlite_url, tenant};
use serde_json::Value;

/// The `count` of the entry called `name` in `list` of a catalogue response.
fn count(catalogue: &Value, list: &str, name: &str) -> u64 {
    catalogue[list].as_array().unwrap().iter().find(|e| e["name"] == name).map_or(0, |e| e["count"].as_u64().unwrap())
}

/// The names in a log field `name:ms:rows:outcome,…`.
fn names(field: &str) -> Vec<String> {
    field.split(',').filter(|s| !s.is_empty()).map(|s| s.split(':').next().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn a_requests_log_line_lists_its_operations_and_statements_and_the_catalogue_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&[("PERSON_API_STORE", sqlite_url(dir.path()))]);
    let http = client();
    let created: Value = http
        .post(format!("{}/api/v1/persons", server.base_url))
        .json(&tenant("Hieronymus", "Bosch"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    let catalogue_url = format!("{}/api/v1/admin/queries", server.base_url);
    let before: Value = http.get(&catalogue_url).send().await.unwrap().json().await.unwrap();

    let read = http
        .get(format!("{}/api/v1/persons/{id}", server.base_url))
        .header("x-correlation-id", "trace-queries-42")
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    let timing = read.headers().get("server-timing").unwrap().to_str().unwrap().to_owned();
    assert!(timing.starts_with("store;dur="), "{timing}");
    let after: Value = http.get(&catalogue_url).send().await.unwrap().json().await.unwrap();

    // The catalogue: exactly the SQLite store's statements, each with its text, and the read counted.
    assert_eq!(after["store"], "sqlite");
    let listed: Vec<&str> =
        after["statements"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    let catalogue: Vec<&str> = person_sqlite::queries::CATALOGUE.iter().map(|q| q.name).collect();
    assert_eq!(listed, catalogue, "every statement of the store, in catalogue order");
    for statement in after["statements"].as_array().unwrap() {
        let text = statement["statement"].as_str().unwrap();
        let expected = person_sqlite::queries::CATALOGUE.iter().find(|q| q.name == statement["name"]).unwrap();
        assert_eq!(text, expected.sql);
    }
    assert_eq!(after["uncatalogued"], serde_json::json!([]));
    assert_eq!(count(&after, "statements", "person.get"), count(&before, "statements", "person.get") + 1);
    assert_eq!(count(&after, "operations", "person.get"), count(&before, "operations", "person.get") + 1);
    let get = after["statements"].as_array().unwrap().iter().find(|s| s["name"] == "person.get").unwrap();
    assert!(get["maxMs"].as_f64().unwrap() >= get["meanMs"].as_f64().unwrap());

    // The request's one log line: its correlation id, the port operations and the statements, no values.
    let (_, logs) = server.terminate();
    let lines: Vec<Value> =
        logs.iter().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).unwrap()).collect();
    let line = lines
        .iter()
        .find(|l| l["target"] == "person_http::store" && l["correlation_id"] == "trace-queries-42")
        .unwrap_or_else(|| panic!("no store log line for the request in {logs:?}"));
    let operations = names(line["operations"].as_str().unwrap());
    assert!(operations.contains(&"person.get".to_owned()), "{line}");
    assert!(operations.contains(&"audit.append".to_owned()), "the read is audited: {line}");
    let statements = names(line["statements"].as_str().unwrap());
    assert!(statements.contains(&"person.get".to_owned()), "{line}");
    assert_eq!(line["statement_count"].as_u64().unwrap(), statements.len() as u64, "{line}");
    let known: HashSet<&str> = catalogue.iter().copied().collect();
    for statement in &statements {
        assert!(known.contains(statement.as_str()), "{statement} is catalogued");
    }
    let text = line.to_string();
    assert!(!text.contains("Hieronymus") && !text.contains("Bosch"), "no values in the line: {text}");
}
