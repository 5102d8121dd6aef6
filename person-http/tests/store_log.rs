//! The per-request store operation log line: one INFO event (target `person_http::store`) per request that used
//! the store, with the correlation id and the operations as `name:duration_ms:rows:outcome`, never a value. A
//! binary with a single test, like `logging.rs`, because the captured subscriber is thread-local.

#[expect(
    dead_code,
    unused_macros,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "shared test helpers: this binary uses only the spawn helpers and fixtures"
)]
mod common;

use reqwest::StatusCode;
use serde_json::Value;

use common::logs::CapturedLogs;
use common::spawn_in_memory;

/// The store lines among `lines`.
fn store_lines(lines: &[Value]) -> Vec<&Value> {
    lines.iter().filter(|l| l["target"] == "person_http::store").collect()
}

#[tokio::test]
async fn each_request_using_the_store_logs_its_operations_with_the_correlation_id_and_no_values() {
    let logs = CapturedLogs::default();
    let _guard = logs.start();
    let api = spawn_in_memory().await;

    let response = api
        .client
        .post(api.url("/api/v1/persons"))
        .header("x-correlation-id", "trace-store-create")
        .json(&common::tenant())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let person: Value = response.json().await.unwrap();
    let id = person["id"].as_str().unwrap().to_owned();
    let response = api
        .client
        .get(api.url(&format!("/api/v1/persons/{id}")))
        .header("x-correlation-id", "trace-store-read")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let livez = api.client.get(api.url("/livez")).header("x-correlation-id", "trace-livez").send().await.unwrap();
    assert_eq!(livez.status(), StatusCode::OK);

    let lines = logs.take();
    let store = store_lines(&lines);
    let line_of = |correlation_id: &str| {
        let found: Vec<&&Value> = store.iter().filter(|l| l["fields"]["correlation_id"] == correlation_id).collect();
        assert_eq!(found.len(), 1, "one store line for {correlation_id} in {store:?}");
        (*found[0]).clone()
    };
    let created = line_of("trace-store-create");
    assert_eq!(created["level"], "INFO");
    let operations = created["fields"]["operations"].as_str().expect("operations as text");
    assert!(operations.contains("person.insert:"), "{operations}");
    let read = line_of("trace-store-read");
    let operations = read["fields"]["operations"].as_str().expect("operations as text");
    let get = operations.split(',').find(|op| op.starts_with("person.get:")).expect("a person.get");
    let parts: Vec<&str> = get.split(':').collect();
    assert_eq!(parts.len(), 4, "name:duration_ms:rows:outcome in {get}");
    assert!(parts[1].parse::<f64>().is_ok_and(|ms| ms >= 0.0), "{get}");
    assert_eq!(&parts[2..], ["1", "ok"], "{get}");
    let count = read["fields"]["count"].as_u64().expect("a count");
    assert_eq!(count, u64::try_from(operations.split(',').count()).unwrap());
    assert!(store.iter().all(|l| l["fields"]["correlation_id"] != "trace-livez"), "no store use, no line");

    let text = format!("{store:?}");
    for value in ["Kimakhe", "O'Neill", "Mare Street", "PR123", id.as_str()] {
        assert!(!text.contains(value), "{value} logged: {text}");
    }
}
