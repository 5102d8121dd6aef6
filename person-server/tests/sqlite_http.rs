//! The HTTP API over a real socket on the real SQLite store (in-process server, one database file per test):
//! the concurrency guarantees that matter most — no lost update, no shared personRef.

#![expect(clippy::unwrap_used, reason = "test helpers fail the test loudly")]

mod common;

use std::collections::HashSet;

use common::{client, sqlite_url, tenant};
use futures::future::join_all;
use person_server::config::Config;
use serde_json::Value;

struct InProcessServer {
    base_url: String,
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl InProcessServer {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = Config { store: sqlite_url(dir.path()), ..Config::default() };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            person_server::serve(&config, listener, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Self { base_url, _dir: dir, stop: Some(stop), task: Some(task) }
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }
}

async fn create(base: &str, body: &Value) -> Value {
    let response = client().post(format!("{base}/api/v1/persons")).json(body).send().await.unwrap();
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_patches_with_the_same_if_match_let_exactly_one_win() {
    let server = InProcessServer::start().await;
    let person = create(&server.base_url, &tenant("Grace", "Hopper")).await;
    let id = person["id"].as_str().unwrap().to_owned();
    let http = client();
    let attempts = (0..20).map(|i| {
        http.patch(format!("{}/api/v1/persons/{id}", server.base_url))
            .header("If-Match", "\"0\"")
            .json(&serde_json::json!({ "middleName": format!("Writer {i}") }))
            .send()
    });
    let statuses: Vec<u16> = join_all(attempts).await.into_iter().map(|r| r.unwrap().status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 204).count(), 1, "statuses: {statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 19, "statuses: {statuses:?}");
    let read = http.get(format!("{}/api/v1/persons/{id}", server.base_url)).send().await.unwrap();
    assert_eq!(read.headers()["etag"], "\"1\"");
    let history: Value = http
        .get(format!("{}/api/v1/persons/{id}/history", server.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(history["results"].as_array().unwrap().len(), 2, "one create and exactly one update");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_creates_get_fifty_distinct_person_refs() {
    let server = InProcessServer::start().await;
    let http = client();
    let creates = (0..50).map(|i| {
        // Fifty look-alike persons (the names differ only by digits): allowed past duplicate prevention.
        http.post(format!("{}/api/v1/persons?allowDuplicate=true", server.base_url))
            .json(&tenant(&format!("Person{i}"), "Concurrent"))
            .send()
    });
    let mut refs = HashSet::new();
    for response in join_all(creates).await {
        let response = response.unwrap();
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        refs.insert(body["personRef"].as_i64().unwrap());
    }
    assert_eq!(refs.len(), 50, "every create must get its own personRef");
    let feed: Value =
        http.get(format!("{}/api/v1/events?limit=1000", server.base_url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(feed["results"].as_array().unwrap().len(), 50, "one event per create");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_invalid_create_stores_nothing_and_consumes_no_person_ref() {
    let server = InProcessServer::start().await;
    let http = client();
    let invalid = serde_json::json!({
        "firstName": "", "surname": "", "personTypes": [], "dateOfBirth": "2999-01-01", "reason": "test",
        "title": "Mr", "tenures": [{ "id": uuid::Uuid::new_v4(), "startDate": "asdwsad" }]
    });
    let response = http.post(format!("{}/api/v1/persons", server.base_url)).json(&invalid).send().await.unwrap();
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.unwrap();
    let codes: HashSet<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["code"].as_str().unwrap()).collect();
    for code in ["W15", "W16", "W14", "W10", "invalid_date"] {
        assert!(codes.contains(code), "missing {code} in {problem}");
    }
    let feed: Value =
        http.get(format!("{}/api/v1/events", server.base_url)).send().await.unwrap().json().await.unwrap();
    assert!(feed["results"].as_array().unwrap().is_empty(), "no event for a refused create");
    let person = create(&server.base_url, &tenant("First", "Valid")).await;
    assert_eq!(person["personRef"], 1, "the refused create consumed no personRef");
    server.stop().await;
}
