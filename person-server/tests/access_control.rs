//! Access control through the real binary: development mode only on loopback, the `token` sub-command, tokens
//! and group permissions end to end, and a log capture that must hold no personal data and no token.

mod common;

use std::process::Command;

use common::{ServerProcess, client, sqlite_url, tenant};
use serde_json::{Value, json};

const SECRET: &str = "a-test-secret-that-is-long-enough-for-hs256";
const GROUPS: &str = "housing-officer=persons:read,persons:write;equality-team=persons:read,equality:read,equality:write;\
                      auditors=audit:read";

fn token(sub: &str, groups: &str) -> String {
    common::token(SECRET, sub, groups)
}

#[test]
fn binding_a_public_address_without_a_token_key_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(common::binary())
        .env("PERSON_API_BIND", "0.0.0.0:0")
        .env("PERSON_API_STORE", sqlite_url(dir.path()))
        .env_remove("PERSON_API_CONFIG")
        .env_remove("PERSON_API_JWT_SECRET")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("refusing to serve on 0.0.0.0"), "stderr: {stderr}");
    assert!(stderr.contains("PERSON_API_JWT_SECRET"), "the message says how to fix it: {stderr}");
}

#[tokio::test]
async fn on_loopback_without_a_key_the_server_starts_in_development_mode_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&[("PERSON_API_STORE", sqlite_url(dir.path()))]);
    let response = client().get(format!("{}/api/v1/events", server.base_url)).send().await.unwrap();
    assert_eq!(response.status(), 200, "development mode grants every permission");
    let (_, logs) = server.terminate();
    assert!(logs.iter().any(|l| l.contains("DEVELOPMENT MODE")), "logs: {logs:?}");
}

#[test]
fn the_token_command_needs_a_secret_and_a_valid_ttl() {
    let no_secret = Command::new(common::binary())
        .args(["token", "--sub", "alice"])
        .env_remove("PERSON_API_JWT_SECRET")
        .env_remove("PERSON_API_CONFIG")
        .output()
        .unwrap();
    assert!(!no_secret.status.success());
    assert!(String::from_utf8_lossy(&no_secret.stderr).contains("PERSON_API_JWT_SECRET"));
    let bad_ttl = Command::new(common::binary())
        .args(["token", "--sub", "alice", "--ttl", "forever"])
        .env("PERSON_API_JWT_SECRET", SECRET)
        .env_remove("PERSON_API_CONFIG")
        .output()
        .unwrap();
    assert!(!bad_ttl.status.success());
    assert!(String::from_utf8_lossy(&bad_ttl.stderr).contains("--ttl"));
}

#[tokio::test]
async fn minted_tokens_grant_their_groups_permissions_and_logs_hold_no_personal_data_or_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&[
        ("PERSON_API_STORE", sqlite_url(dir.path())),
        ("PERSON_API_JWT_SECRET", SECRET.to_owned()),
        ("PERSON_API_GROUPS", GROUPS.to_owned()),
        ("PERSON_API_LOG", "debug".to_owned()),
    ]);
    let http = client();
    let base = &server.base_url;
    let officer = token("officer-1", "housing-officer");
    let equality = token("equality-1", "equality-team");
    let auditor = token("auditor-1", "auditors");

    let anonymous =
        http.post(format!("{base}/api/v1/persons")).json(&tenant("Marguerite", "Quillfeather")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);

    let created = http
        .post(format!("{base}/api/v1/persons"))
        .bearer_auth(&officer)
        .header("x-correlation-id", "log-capture-1")
        .json(&tenant("Marguerite", "Quillfeather"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let person: Value = created.json().await.unwrap();
    let id = person["id"].as_str().unwrap().to_owned();

    let forbidden =
        http.get(format!("{base}/api/v1/persons/{id}/equality")).bearer_auth(&officer).send().await.unwrap();
    assert_eq!(forbidden.status(), 403);
    let put = http
        .put(format!("{base}/api/v1/persons/{id}/equality"))
        .bearer_auth(&equality)
        .json(&json!({ "nationalInsuranceNumber": "ab 12 34 56 c", "ethnicity": { "code": "white-irish" } }))
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "equality write: {}", put.status());
    let stored: Value = http
        .get(format!("{base}/api/v1/persons/{id}/equality"))
        .bearer_auth(&equality)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stored["nationalInsuranceNumber"], "AB123456C");
    let log = http.get(format!("{base}/api/v1/persons/{id}/access-log")).bearer_auth(&auditor).send().await.unwrap();
    assert_eq!(log.status(), 200);
    let log: Value = log.json().await.unwrap();
    let actors: Vec<&str> =
        log["results"].as_array().unwrap().iter().map(|r| r["entry"]["actor"]["subject"].as_str().unwrap()).collect();
    assert!(actors.contains(&"officer-1") && actors.contains(&"equality-1"), "actors: {actors:?}");

    let (_, logs) = server.terminate();
    let all = logs.join("\n");
    assert!(all.contains("log-capture-1"), "request logs carry the correlation id");
    for secret in [
        "Marguerite",
        "Quillfeather",
        "1990-04-12",
        "AB123456C",
        "ab 12 34 56 c",
        officer.as_str(),
        equality.as_str(),
        auditor.as_str(),
        SECRET,
    ] {
        assert!(!all.contains(secret), "the log must not contain {secret:?}");
    }
}
