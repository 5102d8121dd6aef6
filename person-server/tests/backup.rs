//! `person-api backup`: a consistent copy of an SQLite store taken while its server runs, which a server then
//! serves (the restore); an existing file is never overwritten; other stores are pointed at their own backups.

#![expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use std::process::{Command, Output};

use common::{ServerProcess, client, sqlite_url, tenant};
use serde_json::Value;

/// Runs `person-api backup --output <output>` on the store at `url`.
fn backup(url: &str, output: &std::path::Path) -> Output {
    Command::new(common::binary())
        .args(["backup", "--output", output.to_str().unwrap()])
        .env("PERSON_API_STORE", url)
        .env_remove("PERSON_API_CONFIG")
        .output()
        .unwrap()
}

#[tokio::test]
async fn a_backup_taken_while_the_server_runs_is_served_after_a_restore() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let server = ServerProcess::start(&[("PERSON_API_STORE", url.clone())]);
    let http = client();
    let names = [("Ada", "Lovelace"), ("Grace", "Hopper"), ("Alan", "Turing")];
    let created: Vec<Value> = common::create_tenants(&http, &server.base_url, &names).await;

    let copy = dir.path().join("persons-backup.db");
    let done = backup(&url, &copy);
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "backup failed: {stderr}");
    assert!(stderr.contains("bytes written to"), "{stderr}");
    // The server kept serving meanwhile, and still does.
    let after = http.post(format!("{}/api/v1/persons", server.base_url)).json(&tenant("Katherine", "Johnson"));
    assert_eq!(after.send().await.unwrap().status(), 201);
    let (status, _) = server.terminate();
    assert!(status.success());

    let restored = ServerProcess::start(&[("PERSON_API_STORE", format!("sqlite://{}", copy.display()))]);
    for person in &created {
        let url = format!("{}/api/v1/persons/{}", restored.base_url, person["id"].as_str().unwrap());
        let response = http.get(url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["firstName"], person["firstName"]);
        assert_eq!(body["personRef"], person["personRef"]);
    }
    let (status, _) = restored.terminate();
    assert!(status.success());

    let again = backup(&url, &copy);
    assert_eq!(again.status.code(), Some(1), "an existing file is never overwritten");
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"), "{}", String::from_utf8_lossy(&again.stderr));
}

#[test]
fn other_stores_are_pointed_at_their_own_backups() {
    let dir = tempfile::tempdir().unwrap();
    let refused = backup("postgres://postgres@127.0.0.1:5432/test", &dir.path().join("x.db"));
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("pg_dump") && stderr.contains("docs/reliability.md"), "{stderr}");
    assert!(!dir.path().join("x.db").exists());
}
