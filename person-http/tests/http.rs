//! The HTTP API end to end, through a real listener: the store-independent suite over the in-memory store,
//! then what only a particular configuration or a failing store can show (timeouts, store outages, panics,
//! absolute links).

#[macro_use]
#[expect(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers and suite functions are test code: a failed unwrap is a failed test; the token helpers \
              serve the auth tests"
)]
mod common;

use std::sync::Arc;
use std::time::Duration;

use person_core::api::problem_types as types;
use person_core::ports::{PersonRepository, RandomIds, SystemClock};
use person_core::{PersonService, Repositories};
use person_http::HttpConfig;
use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use common::faults::{Fault, faulty_service};
use common::{expect_problem, header, in_memory_service, spawn, spawn_in_memory, spawn_with};

mod in_memory {
    use super::*;

    http_suite!(spawn_in_memory());

    #[tokio::test]
    async fn a_reporting_table_larger_than_one_internal_read_pages_and_streams_the_same_rows() {
        let api = spawn_in_memory().await;
        common::reporting_suite::a_table_larger_than_one_internal_read_pages_and_streams_the_same_rows(&api).await;
    }
}

fn person_path() -> String {
    format!("/api/v1/persons/{}", Uuid::new_v4())
}

#[tokio::test]
async fn a_request_that_outlasts_the_timeout_is_a_504_problem() {
    let config = HttpConfig { request_timeout: Duration::from_millis(200), ..HttpConfig::default() };
    let api = spawn_with(faulty_service(Fault::Stalls), config).await;

    let response = api.get(&person_path()).await;

    expect_problem(response, 504, types::TIMEOUT).await;
}

#[tokio::test]
async fn an_unavailable_store_is_a_503_problem_with_retry_after() {
    let api = spawn(faulty_service(Fault::Unavailable)).await;

    let response = api.get(&person_path()).await;

    assert_eq!(header(&response, "retry-after"), "5");
    let problem = expect_problem(response, 503, types::UNAVAILABLE).await;
    assert!(!problem.to_string().contains("SECRET"), "{problem}");
}

#[tokio::test]
async fn an_unexpected_store_failure_is_an_opaque_500_problem() {
    let api = spawn(faulty_service(Fault::Broken)).await;

    for response in [api.get(&person_path()).await, api.post("/api/v1/persons", &common::tenant()).await] {
        let problem = expect_problem(response, 500, types::INTERNAL).await;
        let text = problem.to_string();
        assert!(!text.contains("SECRET") && !text.contains("store"), "the cause is not leaked: {problem}");
    }
}

#[tokio::test]
async fn a_panic_is_an_opaque_500_problem_and_the_server_keeps_serving() {
    let api = spawn(faulty_service(Fault::Panics)).await;

    let response = api.get(&person_path()).await;

    let problem = expect_problem(response, 500, types::INTERNAL).await;
    assert!(!problem.to_string().contains("panicked"), "{problem}");
    assert_eq!(api.get("/livez").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn readiness_is_a_503_problem_when_the_store_does_not_answer() {
    for fault in [Fault::Unavailable, Fault::Broken] {
        let api = spawn(faulty_service(fault)).await;

        expect_problem(api.get("/readyz").await, 503, types::UNAVAILABLE).await;
        assert_eq!(api.get("/livez").await.status(), StatusCode::OK, "liveness does not depend on the store");
        assert_eq!(api.get("/api/v1/healthcheck/ping").await.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn feed_links_are_absolute_when_a_public_base_url_is_configured() {
    let config =
        HttpConfig { public_base_url: Some("https://person-api.example.gov.uk/".to_owned()), ..HttpConfig::default() };
    let api = spawn_with(in_memory_service(), config).await;
    api.create_tenant().await;

    let page: Value = api.get("/api/v1/events?limit=5").await.json().await.unwrap();

    assert_eq!(page["links"]["next"], "https://person-api.example.gov.uk/api/v1/events?after=1&limit=5");
    let doc: Value = api.get("/swagger/v1/swagger.json").await.json().await.unwrap();
    assert_eq!(doc["servers"][0]["url"], "https://person-api.example.gov.uk");
}

#[tokio::test]
async fn the_body_limit_is_configurable() {
    let config = HttpConfig { body_limit: 64, ..HttpConfig::default() };
    let api = spawn_with(in_memory_service(), config).await;

    let response = api.post("/api/v1/persons", &common::tenant()).await;

    expect_problem(response, 413, types::PAYLOAD_TOO_LARGE).await;
}

#[tokio::test]
async fn an_oversized_idempotency_key_is_a_400_naming_the_header() {
    let api = spawn_in_memory().await;

    let response = api
        .client
        .post(api.url("/api/v1/persons"))
        .header("Idempotency-Key", "k".repeat(256))
        .json(&common::tenant())
        .send()
        .await
        .unwrap();

    let problem = expect_problem(response, 400, types::BAD_REQUEST).await;
    assert_eq!(problem["errors"][0]["field"], "Idempotency-Key");
}

#[tokio::test]
async fn a_merged_person_answers_308_to_the_survivor() {
    use person_core::testkit::fixtures::{create_write, full_person, person_id, status_write};
    use person_core::{InMemoryStore, PersonStatus};

    let store = Arc::new(InMemoryStore::new());
    let survivor = store.insert(create_write(full_person(person_id()), None)).await.unwrap();
    let duplicate = store.insert(create_write(full_person(person_id()), None)).await.unwrap();
    let merged = PersonStatus::Merged { into: survivor.id };
    store.update(status_write(&duplicate, merged)).await.unwrap();
    let service = PersonService::new(Repositories::from_store(store), Arc::new(SystemClock), Arc::new(RandomIds));
    let api = spawn(service).await;
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();

    let response = no_redirects.get(api.url(&format!("/api/v1/persons/{}", duplicate.id))).send().await.unwrap();

    assert_eq!(header(&response, "location"), format!("/api/v1/persons/{}", survivor.id));
    let problem = expect_problem(response, 308, types::MERGED).await;
    assert!(problem["detail"].as_str().unwrap().contains(&survivor.id.to_string()));
    let followed = api.get(&format!("/api/v1/persons/{}", duplicate.id)).await;
    assert_eq!(followed.status(), StatusCode::OK);
    let person: Value = followed.json().await.unwrap();
    assert_eq!(person["id"], survivor.id.to_string());

    // Writes are not redirected: the duplicate's If-Match means nothing on the survivor.
    let patch = no_redirects
        .patch(api.url(&format!("/api/v1/persons/{}", duplicate.id)))
        .header("If-Match", "\"1\"")
        .json(&serde_json::json!({ "middleName": "Nope" }))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&patch, "location"), format!("/api/v1/persons/{}", survivor.id));
    expect_problem(patch, 409, types::MERGED).await;
    let delete = no_redirects.delete(api.url(&format!("/api/v1/persons/{}", duplicate.id))).send().await.unwrap();
    expect_problem(delete, 409, types::MERGED).await;
}
