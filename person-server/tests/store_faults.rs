//! Fault injection: the store becomes unreachable while the server runs. The server reaches its store through a TCP
//! proxy in this test; cutting the proxy (closing every connection through it and every new one) is what a dead
//! database server or a network partition looks like to it. Then requests answer a 503 `unavailable` problem with
//! `Retry-After` within the request timeout, `/readyz` answers 503, nothing panics; and once the proxy forwards
//! again the server serves again by itself, with every write acknowledged before the cut still there.
//! PostgreSQL (`PERSON_TEST_POSTGRES_URL`) and DynamoDB (`PERSON_TEST_DYNAMODB_ENDPOINT`, a moto server); each test
//! is skipped with a message when its variable is unset.

#![expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{ServerProcess, client, tenant};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::AbortHandle;

/// A TCP proxy to `upstream` that can be cut and restored.
struct Proxy {
    address: String,
    up: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let up = Arc::new(AtomicBool::new(true));
        let connections: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let (accept_up, accept_connections) = (up.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !accept_up.load(Ordering::SeqCst) {
                    drop(inbound); // closed at once: what a dead server's port looks like to a client
                    continue;
                }
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                accept_connections.lock().await.push(task.abort_handle());
            }
        });
        Self { address, up, connections }
    }

    /// Refuses new connections and drops every open one.
    async fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for connection in self.connections.lock().await.drain(..) {
            connection.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// `host:port` of an `http://` or `postgres://` URL.
fn authority(url: &str) -> String {
    let parsed = reqwest::Url::parse(url).unwrap();
    format!("{}:{}", parsed.host_str().unwrap(), parsed.port().unwrap())
}

/// Polls `path` until it answers `status` (deadline 60 s); the time it took.
async fn until_status(base: &str, path: &str, status: u16) -> Duration {
    let http = client();
    let started = Instant::now();
    loop {
        if let Ok(response) = http.get(format!("{base}{path}")).send().await
            && response.status().as_u16() == status
        {
            return started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{path} did not answer {status} within 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The store named by `url` (whose server is at `upstream`) behind a proxy, with `envs`: cut, then restored.
async fn store_goes_away_and_comes_back(url: &str, upstream: &str, envs: &[(&str, &str)]) {
    let proxy = Proxy::start(upstream.to_owned()).await;
    let proxied = url.replacen(upstream, &proxy.address, 1);
    let mut env: Vec<(&str, String)> =
        vec![("PERSON_API_STORE", proxied), ("PERSON_API_REQUEST_TIMEOUT_SECS", "20".to_owned())];
    env.extend(envs.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let server = ServerProcess::start(&env);
    let base = server.base_url.clone();
    let http = client();
    let created = common::create_tenants(&http, &base, &[("Before", "Outage")]).await;
    let id = created[0]["id"].as_str().unwrap().to_owned();

    proxy.cut().await;
    for path in [format!("/api/v1/persons/{id}"), "/api/v1/persons?firstName=Before&lastName=Outage".to_owned()] {
        let started = Instant::now();
        let response = http.get(format!("{base}{path}")).send().await.unwrap();
        let took = started.elapsed();
        let status = response.status();
        assert_eq!(status, 503, "{path} while the store is away; server log: {:?}", server.stderr_so_far());
        assert!(took < Duration::from_secs(20), "{path}: answered within the request timeout ({took:?})");
        assert_eq!(response.headers()["content-type"], "application/problem+json");
        let retry_after: u32 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!(retry_after >= 1);
    }
    let create = http.post(format!("{base}/api/v1/persons")).json(&tenant("During", "Outage")).send().await.unwrap();
    assert_eq!(create.status(), 503, "a write while the store is away is refused, not half-done");
    until_status(&base, "/readyz", 503).await;
    assert_eq!(http.get(format!("{base}/livez")).send().await.unwrap().status(), 200, "alive all the same");

    proxy.restore();
    let recovered = until_status(&base, "/readyz", 200).await;
    println!("ready again {recovered:?} after the store came back");
    let read = http.get(format!("{base}/api/v1/persons/{id}")).send().await.unwrap();
    assert_eq!(read.status(), 200, "the write acknowledged before the cut is there");
    let after = http.post(format!("{base}/api/v1/persons")).json(&tenant("After", "Outage")).send().await.unwrap();
    assert_eq!(after.status(), 201, "writes are served again without a restart");
    let search: Value = http
        .get(format!("{base}/api/v1/persons?firstName=During&lastName=Outage"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        !search.to_string().contains(&id) && !search.to_string().contains("\"During\""),
        "the refused write left nothing"
    );
    let (status, logs) = server.terminate();
    assert!(status.success());
    assert!(!logs.iter().any(|line| line.contains("panicked")), "no panic logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_going_away_answers_503_and_service_resumes_by_itself() {
    let Some(url) = person_postgres::testing::fresh_test_url() else { return };
    let upstream = authority(&std::env::var(person_postgres::testing::TEST_URL_VARIABLE).unwrap());
    let envs = [("PERSON_API_POSTGRES_ACQUIRE_TIMEOUT_SECS", "3"), ("PERSON_API_POSTGRES_STATEMENT_TIMEOUT_SECS", "5")];
    store_goes_away_and_comes_back(&url, &upstream, &envs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_going_away_answers_503_and_service_resumes_by_itself() {
    let Some(url) = person_dynamodb::testing::fresh_test_url() else { return };
    let upstream = authority(&std::env::var(person_dynamodb::testing::TEST_ENDPOINT_VARIABLE).unwrap());
    let envs = [
        ("PERSON_API_DYNAMODB_ATTEMPT_TIMEOUT_SECS", "3"),
        ("PERSON_API_DYNAMODB_OPERATION_TIMEOUT_SECS", "10"),
        ("PERSON_API_DYNAMODB_MAX_ATTEMPTS", "2"),
    ];
    store_goes_away_and_comes_back(&url, &upstream, &envs).await;
}
