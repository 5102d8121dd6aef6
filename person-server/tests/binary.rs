//! The `person-api` binary end to end: start-up, configuration errors, `migrate`, graceful shutdown, and data
//! surviving a restart. Each test runs the real binary against a SQLite file in its own temporary directory.

mod common;

use std::process::Command;

use common::{ServerProcess, client, sqlite_url, tenant};
use serde_json::Value;

#[tokio::test]
async fn the_server_starts_with_only_a_store_url_and_answers_ping() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&[("PERSON_API_STORE", sqlite_url(dir.path()))]);
    let response = client().get(format!("{}/api/v1/healthcheck/ping", server.base_url)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let ready = client().get(format!("{}/readyz", server.base_url)).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert!(dir.path().join("persons.db").exists(), "the SQLite file is created on start");
}

#[test]
fn a_bad_bind_address_exits_non_zero_naming_the_setting() {
    let output = Command::new(common::binary())
        .env("PERSON_API_BIND", "nonsense")
        .env_remove("PERSON_API_CONFIG")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("PERSON_API_BIND"), "stderr: {stderr}");
}

#[test]
fn an_unsupported_store_scheme_exits_non_zero_with_a_clear_message() {
    let output = Command::new(common::binary())
        .env("PERSON_API_BIND", "127.0.0.1:0")
        .env("PERSON_API_STORE", "mysql://localhost/persons")
        .env_remove("PERSON_API_CONFIG")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unsupported store URL scheme `mysql`"), "stderr: {stderr}");
}

#[test]
fn a_config_file_with_an_unknown_key_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("person-api.toml");
    std::fs::write(&file, "bnid = \"127.0.0.1:1\"\n").unwrap();
    let output = Command::new(common::binary()).arg("--config").arg(&file).arg("migrate").output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("invalid config file"), "stderr: {stderr}");
}

#[test]
fn migrate_creates_the_database_and_exits_zero_and_is_repeatable() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_url(&dir.path().join("nested"));
    for _ in 0..2 {
        let output = Command::new(common::binary())
            .arg("migrate")
            .env("PERSON_API_STORE", &store)
            .env_remove("PERSON_API_CONFIG")
            .output()
            .unwrap();
        assert!(output.status.success(), "stderr: {}", String::from_utf8_lossy(&output.stderr));
        assert!(String::from_utf8_lossy(&output.stdout).contains("migrations applied"));
    }
    assert!(dir.path().join("nested").join("persons.db").exists());
}

#[test]
fn the_config_file_is_read_from_person_api_config() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("person-api.toml");
    let store = sqlite_url(dir.path());
    std::fs::write(&file, format!("store = \"{store}\"\n")).unwrap();
    let output = Command::new(common::binary())
        .arg("migrate")
        .env("PERSON_API_CONFIG", &file)
        .env_remove("PERSON_API_STORE")
        .output()
        .unwrap();
    assert!(output.status.success(), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    assert!(dir.path().join("persons.db").exists());
}

#[tokio::test]
async fn sigterm_stops_the_server_cleanly_and_data_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let envs = [("PERSON_API_STORE", sqlite_url(dir.path()))];
    let server = ServerProcess::start(&envs);
    let http = client();
    let created: Value = http
        .post(format!("{}/api/v1/persons", server.base_url))
        .json(&tenant("Ada", "Lovelace"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let patched = http
        .patch(format!("{}/api/v1/persons/{id}", server.base_url))
        .header("If-Match", "\"0\"")
        .json(&serde_json::json!({ "middleName": "Augusta" }))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 204);

    let (status, logs) = server.terminate();
    assert!(status.success(), "exit status {status:?}; logs: {logs:?}");
    assert!(logs.iter().any(|l| l.contains("person-api stopped")), "logs: {logs:?}");

    let restarted = ServerProcess::start(&envs);
    let response = http.get(format!("{}/api/v1/persons/{id}", restarted.base_url)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["etag"], "\"1\"");
    let person: Value = response.json().await.unwrap();
    assert_eq!(person["middleName"], "Augusta");
    assert_eq!(person["personRef"], created["personRef"]);
    let feed: Value =
        http.get(format!("{}/api/v1/events", restarted.base_url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(feed["results"].as_array().unwrap().len(), 2, "both events survive the restart");
}

#[tokio::test]
async fn json_logs_carry_the_correlation_id_and_no_personal_data() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&[("PERSON_API_STORE", sqlite_url(dir.path()))]);
    let response = client()
        .post(format!("{}/api/v1/persons", server.base_url))
        .header("x-correlation-id", "trace-me-123")
        .json(&tenant("Hieronymus", "Bosch-Quartermaine"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let (_, logs) = server.terminate();
    let all = logs.join("\n");
    assert!(all.contains("trace-me-123"), "the request log line carries the correlation id: {all}");
    assert!(!all.contains("Hieronymus") && !all.contains("Bosch-Quartermaine"), "no names in logs: {all}");
    assert!(!all.contains("1990-04-12"), "no dates of birth in logs");
    for line in logs.iter().filter(|l| l.starts_with('{')) {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    }
}

#[test]
fn migrate_on_postgres_creates_the_schema_and_is_repeatable() {
    let Some(store) = person_postgres::testing::fresh_test_url() else { return };
    for _ in 0..2 {
        let output = Command::new(common::binary())
            .arg("migrate")
            .env("PERSON_API_STORE", &store)
            .env_remove("PERSON_API_CONFIG")
            .output()
            .unwrap();
        assert!(output.status.success(), "stderr: {}", String::from_utf8_lossy(&output.stderr));
        assert!(String::from_utf8_lossy(&output.stdout).contains("migrations applied"));
    }
}

#[test]
fn an_unreachable_postgres_server_stops_migrate_with_a_message_and_no_password() {
    let output = Command::new(common::binary())
        .arg("migrate")
        .env("PERSON_API_STORE", "postgres://person:s3cret-pass@127.0.0.1:1/person")
        .env("PERSON_API_POSTGRES_ACQUIRE_TIMEOUT_SECS", "2")
        .env_remove("PERSON_API_CONFIG")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot open the store"), "stderr: {stderr}");
    assert!(!stderr.contains("s3cret-pass"), "the password never appears: {stderr}");
}
