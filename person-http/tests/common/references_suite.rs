//! Cross-references through HTTP (SPEC §8), store-independent: run by `http_suite!` over every store.

use futures::future::join_all;
use person_core::api::problem_types as types;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Api, expect_problem, header, person};

fn references_path(id: &str) -> String {
    format!("/api/v1/persons/{id}/references")
}

async fn add(api: &Api, id: &str, system: &str, reference: &str) -> reqwest::Response {
    api.post(&references_path(id), &json!({ "system": system, "id": reference, "reason": "linked by test" })).await
}

async fn lookup(api: &Api, system: &str, reference: &str) -> Vec<String> {
    let query = format!("reference={system}:{}", urlencode(reference));
    let page = api.search(&query).await;
    page["results"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect()
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { char::from(b).to_string() } else { format!("%{b:02X}") })
        .collect()
}

async fn new_person(api: &Api, first_name: &str) -> String {
    let created = api.create(&person(first_name, "Referenced", "1971-03-04", "1 Mare Street, London E8 1DY")).await;
    created["id"].as_str().unwrap().to_owned()
}

pub(crate) async fn adding_a_reference_is_a_new_version_with_an_event_and_history_and_finds_the_person(api: &Api) {
    let id = new_person(api, "Adaeze").await;
    let tenure = Uuid::new_v4().to_string();

    let added = add(api, &id, "tenure", &tenure).await;

    assert_eq!(added.status(), StatusCode::CREATED);
    assert_eq!(header(&added, "etag"), "\"1\"");
    let body: Value = added.json().await.unwrap();
    assert_eq!(body["references"], json!([{ "system": "tenure", "id": tenure }]));
    assert_eq!(body["versionNumber"], 1);
    let read: Value = api.get(&format!("/api/v1/persons/{id}")).await.json().await.unwrap();
    assert_eq!(read["references"], json!([{ "system": "tenure", "id": tenure }]));
    assert_eq!(read["versionNumber"], 1);
    let listed = api.get(&references_path(&id)).await;
    assert_eq!(header(&listed, "etag"), "\"1\"");
    assert_eq!(listed.json::<Value>().await.unwrap()["references"][0]["id"], tenure.as_str());

    let page = api.search(&format!("reference=tenure:{tenure}")).await;
    assert_eq!(page["total"], 1);
    assert_eq!(page["results"][0]["id"], id.as_str());
    assert_eq!(page["results"][0]["references"][0]["system"], "tenure", "results say where the person is known");

    let events = api.events_of(&id).await;
    let last = events.last().unwrap();
    assert_eq!(last["eventType"], "PersonUpdatedEvent");
    assert_eq!(last["eventData"]["oldData"], json!({ "references": null }));
    assert_eq!(last["eventData"]["newData"], json!({ "references": [{ "system": "tenure", "id": tenure }] }));
    let history: Value = api.get(&format!("/api/v1/persons/{id}/history")).await.json().await.unwrap();
    let entry = &history["results"][1];
    assert_eq!(entry["versionNumber"], 1);
    assert_eq!(entry["reason"], "linked by test");

    let export: Value = api.get(&format!("/api/v1/persons/{id}/subject-access")).await.json().await.unwrap();
    assert_eq!(export["person"]["references"][0]["id"], tenure.as_str(), "subject access includes references");

    let again = add(api, &id, "tenure", &tenure).await;
    assert_eq!(again.status(), StatusCode::OK, "a reference already held changes nothing");
    assert_eq!(header(&again, "etag"), "\"1\"");
    assert_eq!(api.events_of(&id).await.len(), events.len(), "no event for no change");
}

pub(crate) async fn a_reference_held_by_another_person_is_a_409_naming_the_owner(api: &Api) {
    let owner = new_person(api, "Bolanle").await;
    let other = new_person(api, "Chidi").await;
    let tenure = Uuid::new_v4().to_string();
    assert_eq!(add(api, &owner, "tenure", &tenure).await.status(), StatusCode::CREATED);

    let problem = expect_problem(add(api, &other, "tenure", &tenure).await, 409, types::REFERENCE_TAKEN).await;

    assert_eq!(problem["owner"], owner.as_str());
    assert_eq!(problem["reference"], json!({ "system": "tenure", "id": tenure }));
    assert!(problem["detail"].as_str().unwrap().contains(&owner), "{problem}");
    let unchanged: Value = api.get(&format!("/api/v1/persons/{other}")).await.json().await.unwrap();
    assert_eq!(unchanged["versionNumber"], 0, "the refused claim wrote nothing");
    assert_eq!(lookup(api, "tenure", &tenure).await, vec![owner]);
}

pub(crate) async fn concurrent_claims_of_one_reference_over_http_have_exactly_one_winner(api: &Api) {
    let mut ids = Vec::new();
    for name in ["Dayo", "Ebere", "Folake", "Gbenga", "Halima"] {
        ids.push(new_person(api, name).await);
    }
    let contested = format!("HR/{}", Uuid::new_v4());
    let responses = join_all(ids.iter().map(|id| add(api, id, "housing-register", &contested))).await;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 4, "{statuses:?}");
    let winner = ids[statuses.iter().position(|s| *s == 201).unwrap()].clone();
    assert_eq!(lookup(api, "housing-register", &contested).await, vec![winner]);
}

pub(crate) async fn removing_a_reference_frees_it_for_another_person(api: &Api) {
    let first = new_person(api, "Ifeoma").await;
    let second = new_person(api, "Jide").await;
    let account = "RENT 0042/7#b".to_owned();
    assert_eq!(add(api, &first, "finance", &account).await.status(), StatusCode::CREATED);
    let path = format!("{}?system=finance&id={}&reason=moved", references_path(&first), urlencode(&account));

    let removed = api.delete(&path).await;

    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&removed, "etag"), "\"2\"");
    assert!(lookup(api, "finance", &account).await.is_empty());
    expect_problem(api.delete(&path).await, 404, types::NOT_FOUND).await;
    assert_eq!(add(api, &second, "finance", &account).await.status(), StatusCode::CREATED);
    assert_eq!(lookup(api, "finance", &account).await, vec![second]);
}

pub(crate) async fn a_deleted_persons_references_are_released(api: &Api) {
    let gone = new_person(api, "Kemi").await;
    let reference = Uuid::new_v4().to_string();
    assert_eq!(add(api, &gone, "tenure", &reference).await.status(), StatusCode::CREATED);
    assert_eq!(api.delete(&format!("/api/v1/persons/{gone}")).await.status(), StatusCode::NO_CONTENT);
    assert!(lookup(api, "tenure", &reference).await.is_empty());
    let heir = new_person(api, "Lanre").await;
    assert_eq!(add(api, &heir, "tenure", &reference).await.status(), StatusCode::CREATED);
}

pub(crate) async fn merging_moves_the_duplicates_references_to_the_survivor(api: &Api) {
    let survivor = api.create(&person("Mosun", "Okafor", "1966-06-06", "3 Mare Street, London E8 1DY")).await;
    let duplicate = api.create_anyway(&person("Mosun", "Okafor", "1966-06-06", "3 Mare Street, London E8 1DY")).await;
    let (s, d) = (survivor["id"].as_str().unwrap().to_owned(), duplicate["id"].as_str().unwrap().to_owned());
    let (mine, theirs) = (Uuid::new_v4().to_string(), Uuid::new_v4().to_string());
    assert_eq!(add(api, &s, "tenure", &mine).await.status(), StatusCode::CREATED);
    assert_eq!(add(api, &d, "tenure", &theirs).await.status(), StatusCode::CREATED);

    let merged = api.merge(&s, &d, Some("\"1\"")).await;

    assert_eq!(merged.status(), StatusCode::OK);
    let merged: Value = merged.json().await.unwrap();
    let mut expected = vec![json!({ "system": "tenure", "id": mine }), json!({ "system": "tenure", "id": theirs })];
    expected.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    assert_eq!(merged["references"], Value::Array(expected));
    assert_eq!(lookup(api, "tenure", &theirs).await, vec![s.clone()]);
    assert_eq!(lookup(api, "tenure", &mine).await, vec![s]);
}

pub(crate) async fn bad_references_are_refused_naming_the_field(api: &Api) {
    let id = new_person(api, "Nneka").await;
    let path = references_path(&id);
    let invalid =
        expect_problem(api.post(&path, &json!({ "system": "Tenure", "id": " padded" })).await, 422, types::VALIDATION)
            .await;
    let fields: Vec<&str> =
        invalid["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, vec!["/system", "/id"]);
    let missing = expect_problem(api.post(&path, &json!({})).await, 422, types::VALIDATION).await;
    assert_eq!(missing["errors"].as_array().unwrap().len(), 2);
    let unknown = expect_problem(
        api.post(&path, &json!({ "system": "t", "id": "1", "owner": "x" })).await,
        400,
        types::BAD_REQUEST,
    )
    .await;
    assert_eq!(unknown["errors"][0]["field"], "/owner");
    let no_system = expect_problem(api.delete(&format!("{path}?id=1")).await, 400, types::BAD_REQUEST).await;
    assert_eq!(no_system["errors"][0]["field"], "system");
    let patch = api.patch(&id, Some("\"0\""), &json!({ "references": [] })).await;
    let read_only = expect_problem(patch, 400, types::BAD_REQUEST).await;
    assert_eq!(read_only["errors"][0]["field"], "/references");
    let stale = api.client.post(api.url(&path)).header("If-Match", "\"7\"").json(&json!({ "system": "t", "id": "1" }));
    let stale = expect_problem(stale.send().await.unwrap(), 409, types::VERSION_CONFLICT).await;
    assert_eq!(stale["currentVersion"], 0);
    let unknown_person = format!("/api/v1/persons/{}/references", Uuid::new_v4());
    expect_problem(api.post(&unknown_person, &json!({ "system": "t", "id": "1" })).await, 404, types::NOT_FOUND).await;
}
