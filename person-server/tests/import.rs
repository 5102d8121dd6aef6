//! `person-api import`: NDJSON of the Person JSON and Hackney's DynamoDB JSON export, through the real binary:
//! ids and `personRef`s kept, every field of a Hackney item mapped, invalid and duplicate records reported while
//! the load goes on, and an interrupted import resumed without writing anyone twice.

#![expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{ServerProcess, client, sqlite_url, tenant};
use serde_json::{Value, json};
use uuid::Uuid;

/// Runs `person-api <args>` on the store at `url`.
fn person_api(url: &str, args: &[&str]) -> Output {
    Command::new(common::binary())
        .args(args)
        .env("PERSON_API_STORE", url)
        .env_remove("PERSON_API_CONFIG")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Runs `person-api import` and checks it succeeded; its standard error.
fn import(url: &str, file: &Path, args: &[&str]) -> String {
    let mut all = vec!["import", file.to_str().unwrap(), "--no-progress"];
    all.extend_from_slice(args);
    let output = person_api(url, &all);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "import failed: {stderr}");
    stderr
}

/// Every person of the store, as `person-api export` writes them.
fn export(url: &str) -> String {
    let output = person_api(url, &["export"]);
    assert!(output.status.success(), "export failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

fn report(file: &Path) -> Vec<Value> {
    let mut name = file.file_name().unwrap().to_os_string();
    name.push(".report.ndjson");
    std::fs::read_to_string(file.with_file_name(name))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn outcomes(report: &[Value]) -> Vec<(u64, String)> {
    report.iter().map(|l| (l["line"].as_u64().unwrap(), l["outcome"].as_str().unwrap().to_owned())).collect()
}

/// `i` in letters (`a`, `b`, … `ba` …): names keep no digits when they are matched.
fn letters(mut i: usize) -> String {
    let mut text = Vec::new();
    loop {
        text.push(b'a' + u8::try_from(i % 26).unwrap());
        i /= 26;
        if i == 0 {
            break;
        }
    }
    text.reverse();
    String::from_utf8(text).unwrap()
}

/// A valid Person JSON line (no `personRef`), a different person for each `i`.
fn person_line(i: usize) -> Value {
    let first = ["Ada", "Grace", "Hedy", "Alan", "Katherine", "Tim", "Barbara", "Edsger"][i % 8];
    json!({
        "id": Uuid::new_v4(),
        "title": "Mx",
        "firstName": first,
        "surname": format!("Person{}", letters(i)),
        "dateOfBirth": format!("19{:02}-{:02}-{:02}", 30 + i % 70, 1 + i % 12, 1 + i % 28),
        "personTypes": ["Tenant"],
        "reason": "Migrated",
        "tenures": [{"id": Uuid::new_v4(), "type": "Secure", "startDate": "2015-03-01",
                     "assetFullAddress": format!("{} Mare Street, London E8 1DY", 1 + i)}]
    })
}

fn write_lines(path: &Path, lines: impl IntoIterator<Item = String>) {
    let mut text = lines.into_iter().collect::<Vec<_>>().join("\n");
    text.push('\n');
    std::fs::write(path, text).unwrap();
}

#[tokio::test]
async fn an_export_imported_into_a_fresh_store_exports_the_same_lines_and_keeps_person_refs() {
    let dir = tempfile::tempdir().unwrap();
    let source = sqlite_url(dir.path());
    let server = ServerProcess::start(&[("PERSON_API_STORE", source.clone())]);
    let http = client();
    let mut ids = Vec::new();
    for (first, surname) in [("Ada", "Lovelace"), ("Grace", "Hopper"), ("Alan", "Turing")] {
        let response = http.post(format!("{}/api/v1/persons", server.base_url)).json(&tenant(first, surname)).send();
        let created: Value = response.await.unwrap().json().await.unwrap();
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    let deleted = http.delete(format!("{}/api/v1/persons/{}", server.base_url, ids[1])).header("If-Match", "\"0\"");
    assert_eq!(deleted.send().await.unwrap().status(), 204);
    let reference = json!({ "system": "tenure", "id": "T-1", "reason": "Tenancy" });
    let added = http.post(format!("{}/api/v1/persons/{}/references", server.base_url, ids[0])).json(&reference);
    assert_eq!(added.send().await.unwrap().status(), 201);
    assert!(server.terminate().0.success());
    let exported = export(&source);
    let file = dir.path().join("persons.ndjson");
    std::fs::write(&file, &exported).unwrap();

    let target_dir = tempfile::tempdir().unwrap();
    let target = sqlite_url(target_dir.path());
    let stderr = import(&target, &file, &[]);
    assert!(stderr.contains("3 read, 3 imported (0 probable duplicates), 0 invalid"), "{stderr}");
    assert!(report(&file).is_empty(), "nothing to report");
    assert_eq!(export(&target), exported, "the same persons, field for field, personRefs included");

    let max_ref =
        exported.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["personRef"].as_i64().unwrap()).max();
    let server = ServerProcess::start(&[("PERSON_API_STORE", target.clone())]);
    let response = http.post(format!("{}/api/v1/persons", server.base_url)).json(&tenant("Hedy", "Lamarr")).send();
    let created: Value = response.await.unwrap().json().await.unwrap();
    assert!(created["personRef"].as_i64() > max_ref, "creates continue after the imported numbers: {created}");
    let restored = http.get(format!("{}/api/v1/persons/{}", server.base_url, ids[0])).send().await.unwrap();
    assert_eq!(restored.status(), 200);
    let gone = http.get(format!("{}/api/v1/persons/{}", server.base_url, ids[1])).send().await.unwrap();
    assert_eq!(gone.status(), 410, "a deleted person is imported as its tombstone");
    let by_reference = http.get(format!("{}/api/v1/persons?reference=tenure:T-1", server.base_url)).send();
    let found: Value = by_reference.await.unwrap().json().await.unwrap();
    assert_eq!(found["results"][0]["id"], json!(ids[0]), "references are indexed: {found}");
}

/// An item of Hackney's `Persons` table with every attribute set, in the AWS "Export to S3" DynamoDB JSON format.
fn full_hackney_item(id: Uuid, tenure: Uuid) -> Value {
    json!({"Item": {
        "id": {"S": id},
        "title": {"S": "Dr"},
        "preferredTitle": {"S": "Mx"},
        "preferredFirstName": {"S": "Kim"},
        "preferredMiddleName": {"S": "Jo"},
        "preferredSurname": {"S": "Akhe"},
        "firstName": {"S": "Kimakhe"},
        "middleName": {"S": "Zoë"},
        "surname": {"S": "O'Neill-Łukasiewicz"},
        "placeOfBirth": {"S": "Hackney"},
        "dateOfBirth": {"S": "1950-05-17T00:00:00.0000000Z"},
        "dateOfDeath": {"S": "2020-01-02T00:00:00.0000000Z"},
        "personTypes": {"L": [{"S": "Tenant"}, {"S": "HouseholdMember"}]},
        "reason": {"S": "Tenancy sign-up"},
        "tenures": {"L": [{"M": {
            "id": {"S": tenure},
            "type": {"S": "Secure"},
            "startDate": {"S": "2001-02-03"},
            "endDate": {"S": "1900-01-01"},
            "assetFullAddress": {"S": "1 Mare Street, London E8 1DY"},
            "assetId": {"S": "a1b2c3"},
            "uprn": {"S": "100021045678"},
            "paymentReference": {"S": "PAY-1"},
            "propertyReference": {"S": "00012345"},
            "postcode": {"S": "e81dy"},
            "isActive": {"BOOL": true}
        }}]},
        "versionNumber": {"N": "3"},
        "lastModified": {"S": "2021-09-01T10:11:12.0000000Z"},
        "personRef": {"N": "4321"}
    }})
}

#[tokio::test]
async fn a_hackney_dynamodb_export_imports_with_every_field_mapped() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let (full, minimal, tenure) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let minimal_item = json!({"Item": {
        "id": {"S": minimal},
        "title": {"S": "Mr"},
        "firstName": {"S": "Alan"},
        "surname": {"S": "Turing"},
        "dateOfBirth": {"S": "1970-06-23T00:00:00"},
        "personTypes": {"L": [{"S": "Leaseholder"}]},
        "tenures": {"L": []},
        "dateOfDeath": {"NULL": true},
        "versionNumber": {"NULL": true},
        "personRef": {"N": "0"}
    }});
    let file = dir.path().join("Persons.json");
    write_lines(&file, [full_hackney_item(full, tenure).to_string(), minimal_item.to_string()]);
    let stderr = import(&url, &file, &["--format", "hackney-dynamodb"]);
    assert!(stderr.contains("2 read, 2 imported"), "{stderr}");

    let server = ServerProcess::start(&[("PERSON_API_STORE", url.clone())]);
    let http = client();
    let get = |id: Uuid| {
        let request = http.get(format!("{}/api/v1/persons/{id}", server.base_url));
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let person = get(full).await;
    let expected = json!({
        "id": full,
        "personRef": 4321,
        "title": "Dr",
        "preferredTitle": "Mx",
        "preferredFirstName": "Kim",
        "preferredMiddleName": "Jo",
        "preferredSurname": "Akhe",
        "firstName": "Kimakhe",
        "middleName": "Zoë",
        "surname": "O'Neill-Łukasiewicz",
        "singleName": false,
        "placeOfBirth": "Hackney",
        "dateOfBirth": "1950-05-17",
        "dateOfDeath": "2020-01-02",
        "personTypes": ["Tenant", "HouseholdMember"],
        "reason": "Tenancy sign-up",
        "versionNumber": 3,
        "lastModified": "2021-09-01T10:11:12Z",
        "createdAt": "2021-09-01T10:11:12Z",
        "processingRestricted": false,
        "isAMinor": false,
        "references": [],
    });
    for (key, value) in expected.as_object().unwrap() {
        assert_eq!(&person[key], value, "{key}: {person}");
    }
    assert_eq!(
        person["tenures"],
        json!([{
            "id": tenure,
            "type": "Secure",
            "startDate": "2001-02-03",
            "endDate": "1900-01-01",
            "assetFullAddress": "1 Mare Street, London E8 1DY",
            "assetId": "a1b2c3",
            "uprn": "100021045678",
            "postcode": "E8 1DY",
            "paymentReference": "PAY-1",
            "propertyReference": "00012345",
            "isActive": true
        }])
    );

    let person = get(minimal).await;
    assert_eq!(person["firstName"], "Alan");
    assert_eq!(person["dateOfBirth"], "1970-06-23");
    assert_eq!(person["personTypes"], json!(["Leaseholder"]));
    assert_eq!(person["reason"], "Migrated from Hackney person-api", "items without a reason get this one");
    assert_eq!(person["versionNumber"], 0);
    assert!(person["personRef"].as_i64().unwrap() > 4321, "personRef 0 means none: one is assigned: {person}");
    assert_eq!(person["dateOfDeath"], Value::Null);
    assert_eq!(person["tenures"], json!([]));
}

#[tokio::test]
async fn invalid_refused_and_duplicate_records_are_reported_while_the_rest_is_imported() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let first = person_line(0);
    let mut twin = first.clone();
    twin["id"] = json!(Uuid::new_v4());
    let mut with_ref = person_line(1);
    with_ref["personRef"] = json!(50);
    let mut same_ref = person_line(2);
    same_ref["personRef"] = json!(50);
    let mut no_surname = person_line(3);
    no_surname.as_object_mut().unwrap().remove("surname");
    let mut unknown_key = person_line(4);
    unknown_key["favouriteColour"] = json!("green");
    let lines = [
        first.to_string(),
        "this is not JSON, Lovelace".to_owned(),
        twin.to_string(),
        String::new(),
        with_ref.to_string(),
        same_ref.to_string(),
        no_surname.to_string(),
        unknown_key.to_string(),
        first.to_string(),
    ];
    let file = dir.path().join("persons.ndjson");
    write_lines(&file, lines);
    let stderr = import(&url, &file, &["--batch", "3"]);
    assert!(
        stderr.contains("8 read, 3 imported (1 probable duplicates), 3 invalid, 1 refused, 1 already stored"),
        "{stderr}"
    );
    // Records without a personRef are imported (and reported) after the others: in line order here.
    let mut report = report(&file);
    report.sort_by_key(|line| line["line"].as_u64());
    let expected: Vec<(u64, String)> = [
        (2, "invalid"),
        (3, "duplicate"),
        (6, "person-ref-taken"),
        (7, "invalid"),
        (8, "invalid"),
        (9, "already-stored"),
    ]
    .into_iter()
    .map(|(line, outcome)| (line, outcome.to_owned()))
    .collect();
    assert_eq!(outcomes(&report), expected);
    assert_eq!(report[0]["id"], Value::Null);
    assert_eq!(report[0]["errors"][0]["code"], "malformed_json");
    assert_eq!(report[1]["id"], twin["id"]);
    assert_eq!(report[1]["duplicateOf"], first["id"]);
    assert_eq!(report[2]["owner"], with_ref["id"]);
    assert_eq!(report[3]["errors"], json!([{"field": "/surname", "code": "W16", "message": "surname is required"}]));
    assert_eq!(report[4]["errors"][0]["field"], "/favouriteColour");
    let text = serde_json::to_string(&report).unwrap();
    for name in ["Ada", "Person", "Lovelace", "Mare Street"] {
        assert!(!text.contains(name), "no personal data in the report: {text}");
    }
    assert_eq!(export(&url).lines().count(), 3, "the duplicate is imported, the refused and invalid are not");
}

/// Polls until `path` holds a checkpoint past its first batch.
fn wait_for_checkpoint(path: &Path, child: &mut std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && let Ok(state) = serde_json::from_str::<Value>(&text)
            && state["line"].as_u64() > Some(0)
        {
            return;
        }
        assert!(child.try_wait().unwrap().is_none(), "the import ended before it could be interrupted");
        assert!(Instant::now() < deadline, "no checkpoint was written in time");
        std::thread::park_timeout(Duration::from_millis(10));
    }
}

#[test]
fn an_interrupted_import_resumes_where_it_stopped_and_stores_everyone_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let count = 5_000;
    let records: Vec<Value> = (0..count).map(person_line).collect();
    let file = dir.path().join("persons.ndjson");
    write_lines(&file, records.iter().map(Value::to_string));
    let state_path: PathBuf = dir.path().join("persons.ndjson.import-state");

    let mut child = Command::new(common::binary())
        .args(["import", file.to_str().unwrap(), "--no-progress", "--batch", "50"])
        .env("PERSON_API_STORE", &url)
        .env_remove("PERSON_API_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_checkpoint(&state_path, &mut child);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(state_path.exists(), "the checkpoint outlives the killed import");
    let stored_before = export(&url).lines().count();
    assert!(stored_before < count, "interrupted mid-way: {stored_before} of {count}");

    let stderr = import(&url, &file, &["--batch", "50"]);
    assert!(stderr.contains("resuming after line"), "{stderr}");
    assert!(stderr.contains(&format!("{count} read")), "counts span both runs: {stderr}");
    assert!(!state_path.exists(), "the checkpoint is removed when the load completes");
    let exported = export(&url);
    let ids: Vec<String> = exported
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), count, "everyone stored");
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), count, "no one twice");
    let expected: HashSet<String> = records.iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.into_iter().collect::<HashSet<_>>(), expected);
    // At most the batch committed after the last checkpoint is met again, as "already stored".
    let reported = report(&file);
    assert!(reported.len() <= 50, "{} reported", reported.len());
    assert!(reported.iter().all(|l| l["outcome"] == "already-stored"), "{:?}", reported.first());

    // Starting over reads everyone again and writes no one twice.
    let stderr = import(&url, &file, &["--restart"]);
    assert!(
        stderr.contains(&format!("0 imported (0 probable duplicates), 0 invalid, 0 refused, {count} already stored")),
        "{stderr}"
    );
    assert_eq!(export(&url).lines().count(), count);
}

#[tokio::test]
async fn postgres_imports_keep_every_field_and_merges_and_a_second_import_writes_nothing() {
    let Some(url) = person_postgres::testing::fresh_test_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let count = 500;
    let file = dir.path().join("persons.ndjson");
    let mut records: Vec<Value> = (0..count).map(person_line).collect();
    records[7]["status"] = json!({"state": "deleted"});
    records[8]["references"] = json!([{"system": "tenure", "id": "T-8"}]);
    records[9]["personRef"] = json!(100_000);
    // Merged persons whose survivor comes in a later batch, through a chain, or never.
    records[10]["status"] = json!({"state": "merged", "mergedInto": records[400]["id"]});
    records[11]["status"] = json!({"state": "merged", "mergedInto": records[10]["id"]});
    records[12]["status"] = json!({"state": "merged", "mergedInto": Uuid::new_v4()});
    write_lines(&file, records.iter().map(Value::to_string));
    let stderr = import(&url, &file, &["--batch", "64"]);
    let stored = count - 1;
    assert!(stderr.contains(&format!("{count} read, {stored} imported")), "{stderr}");
    assert_eq!(outcomes(&report(&file)), vec![(13, "survivor-missing".to_owned())]);
    let exported = export(&url);
    assert_eq!(exported.lines().count(), stored);

    // The PostgreSQL export imported into SQLite exports the same lines.
    let copy = dir.path().join("copy.ndjson");
    std::fs::write(&copy, &exported).unwrap();
    let sqlite = sqlite_url(dir.path());
    import(&sqlite, &copy, &[]);
    assert_eq!(export(&sqlite), exported);

    let stderr = import(&url, &file, &[]);
    assert!(
        stderr.contains(&format!(
            "0 imported (0 probable duplicates), 0 invalid, 0 refused, {stored} already stored, 1 merged into a \
             person missing"
        )),
        "{stderr}"
    );
    let server = ServerProcess::start(&[("PERSON_API_STORE", url.clone())]);
    let response = client().post(format!("{}/api/v1/persons", server.base_url)).json(&tenant("Hedy", "Lamarr")).send();
    let created: Value = response.await.unwrap().json().await.unwrap();
    assert!(created["personRef"].as_i64() > Some(100_000), "{created}");
}
