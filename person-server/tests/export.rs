//! `person-api export`: every person of the store, in any state, as NDJSON of the Person JSON, read back exactly.

#![expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use std::process::Command;

use common::{ServerProcess, client, sqlite_url};
use person_core::{Person, PersonStatus};
use serde_json::{Value, json};

/// Runs `person-api export` with `args` on the store at `url`; its standard output and error.
fn export(url: &str, args: &[&str]) -> (String, String) {
    let output = Command::new(common::binary())
        .arg("export")
        .args(args)
        .env("PERSON_API_STORE", url)
        .env_remove("PERSON_API_CONFIG")
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "export failed: {stderr}");
    (String::from_utf8(output.stdout).unwrap(), stderr)
}

fn persons(ndjson: &str) -> Vec<Person> {
    ndjson.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

#[tokio::test]
async fn export_writes_every_person_in_any_state_as_ndjson_in_id_order_to_a_file_or_standard_output() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let server = ServerProcess::start(&[("PERSON_API_STORE", url.clone())]);
    let http = client();
    let names = [("Ada", "Lovelace"), ("Grace", "Hopper"), ("Alan", "Turing")];
    let created: Vec<Value> = common::create_tenants(&http, &server.base_url, &names).await;
    let ids: Vec<&str> = created.iter().map(|p| p["id"].as_str().unwrap()).collect();
    let deleted = http.delete(format!("{}/api/v1/persons/{}", server.base_url, ids[1])).header("If-Match", "\"0\"");
    assert_eq!(deleted.send().await.unwrap().status(), 204);
    let reference = json!({ "system": "tenure", "id": "T-1", "reason": "Tenancy" });
    let added = http.post(format!("{}/api/v1/persons/{}/references", server.base_url, ids[0])).json(&reference);
    assert_eq!(added.send().await.unwrap().status(), 201);
    let (status, _) = server.terminate();
    assert!(status.success());

    let file = dir.path().join("persons.ndjson");
    let (stdout, stderr) = export(&url, &["--output", file.to_str().unwrap()]);
    assert_eq!(stdout, "", "with --output nothing goes to standard output");
    assert!(stderr.contains("3 persons written"), "{stderr}");
    assert!(!dir.path().join("persons.ndjson.partial").exists(), "the partial file was renamed");
    let text = std::fs::read_to_string(&file).unwrap();
    let exported = persons(&text);

    let mut expected: Vec<&str> = ids.clone();
    expected.sort_unstable();
    let exported_ids: Vec<String> = exported.iter().map(|p| p.id.to_string()).collect();
    assert_eq!(exported_ids, expected, "every person once, in id order");
    for (person, original) in
        exported.iter().filter_map(|p| created.iter().find(|c| c["id"] == p.id.to_string()).map(|c| (p, c)))
    {
        assert_eq!(person.surname.as_str(), original["surname"].as_str().unwrap());
        assert_eq!(json!(person.person_ref.0), original["personRef"]);
    }
    let by_id = |id: &str| exported.iter().find(|p| p.id.to_string() == id).unwrap();
    assert_eq!(by_id(ids[1]).status, PersonStatus::Deleted, "a deleted person is exported as its tombstone");
    assert_eq!(by_id(ids[0]).version_number, 1);
    assert_eq!(by_id(ids[0]).references.len(), 1, "references travel with the person");

    let (to_stdout, _) = export(&url, &[]);
    assert_eq!(to_stdout, text, "standard output gets the same lines");
}
