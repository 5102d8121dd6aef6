//! Availability-aware links (SPEC §8) through the real binary: fake downstream services on real sockets, a
//! `[[links]]` registry in a config file, tokens with and without a link's permission.

#![expect(clippy::unwrap_used, reason = "test helpers fail the test loudly")]

mod common;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use common::{ServerProcess, client, sqlite_url, tenant};
use serde_json::{Value, json};

const SECRET: &str = "a-test-secret-that-is-long-enough-for-hs256";
const GROUPS: &str = "officer=persons:read,persons:write,references:write;finance=persons:read,extended:finance:read";

/// A downstream service whose health endpoint answers what the test says, or never answers.
#[derive(Clone)]
struct FakeService {
    base: String,
    status: Arc<AtomicU16>,
    hang: Arc<AtomicBool>,
    /// Health requests received.
    probes: Arc<AtomicU64>,
}

impl FakeService {
    async fn start(status: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fake = Self {
            base: format!("http://{}", listener.local_addr().unwrap()),
            status: Arc::new(AtomicU16::new(status)),
            hang: Arc::new(AtomicBool::new(false)),
            probes: Arc::new(AtomicU64::new(0)),
        };
        let app = Router::new().route("/health", get(health)).with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        fake
    }

    fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }
}

async fn health(State(fake): State<FakeService>) -> StatusCode {
    fake.probes.fetch_add(1, Ordering::SeqCst);
    if fake.hang.load(Ordering::SeqCst) {
        std::future::pending::<()>().await;
    }
    StatusCode::from_u16(fake.status.load(Ordering::SeqCst)).unwrap()
}

/// Polls `check` until it returns `Some`, failing after `limit`.
async fn eventually<T, F: Future<Output = Option<T>>>(what: &str, limit: Duration, mut check: impl FnMut() -> F) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "gave up waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Server {
    process: ServerProcess,
    _dir: tempfile::TempDir,
}

fn start(config: &str) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("person-api.toml");
    std::fs::write(&file, config).unwrap();
    let process = ServerProcess::start(&[
        ("PERSON_API_STORE", sqlite_url(dir.path())),
        ("PERSON_API_CONFIG", file.display().to_string()),
        ("PERSON_API_JWT_SECRET", SECRET.to_owned()),
        ("PERSON_API_GROUPS", GROUPS.to_owned()),
    ]);
    Server { process, _dir: dir }
}

struct Caller {
    base: String,
    token: String,
}

impl Caller {
    fn new(server: &Server, groups: &str) -> Self {
        Self { base: server.process.base_url.clone(), token: common::token(SECRET, "tester", groups) }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        client().get(format!("{}{path}", self.base)).bearer_auth(&self.token).send().await.unwrap()
    }

    async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        client().post(format!("{}{path}", self.base)).bearer_auth(&self.token).json(body).send().await.unwrap()
    }

    /// The `rel`s of the person's links as this caller sees them.
    async fn rels(&self, id: &str) -> Vec<String> {
        let person: Value = self.get(&format!("/api/v1/persons/{id}")).await.json().await.unwrap();
        person["links"].as_array().unwrap().iter().map(|l| l["rel"].as_str().unwrap().to_owned()).collect()
    }

    async fn person_with_references(&self, references: &[(&str, &str)]) -> String {
        let created: Value = self.post("/api/v1/persons", &tenant("Links", "Tester")).await.json().await.unwrap();
        let id = created["id"].as_str().unwrap().to_owned();
        for (system, reference) in references {
            let body = json!({ "system": system, "id": reference });
            let added = self.post(&format!("/api/v1/persons/{id}/references"), &body).await;
            assert_eq!(added.status(), 201);
        }
        id
    }
}

fn link(rel: &str, href: &str, permission: &str, system: &str, health: &FakeService) -> String {
    format!(
        "[[links]]\nrel = \"{rel}\"\nhref = \"{href}\"\npermission = \"{permission}\"\nsystem = \"{system}\"\n\
         health_url = \"{}/health\"\n\n",
        health.base
    )
}

const FAST_PROBES: &str =
    "[link_probes]\ninterval_secs = 1\ntimeout_secs = 1\nhealthy_threshold = 1\nunhealthy_threshold = 1\n\n";

/// How long a state change may take to show: the interval (1 s) times the threshold (1), plus slack for a
/// loaded CI machine. A deadline for polling, not a speed assertion.
const WITHIN_THE_INTERVAL: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_available_services_the_caller_may_see_are_linked_and_a_recovered_one_comes_back() {
    let tenure = FakeService::start(200).await;
    let repairs = FakeService::start(500).await;
    let finance = FakeService::start(200).await;
    let config = format!(
        "{FAST_PROBES}{}{}{}",
        link("tenure", &format!("{}/api/v1/tenures/{{referenceId}}", tenure.base), "persons:read", "tenure", &tenure),
        link("repairs", &format!("{}/persons/{{personId}}", repairs.base), "persons:read", "repairs", &repairs),
        link(
            "finance",
            &format!("{}/accounts/{{referenceId}}", finance.base),
            "extended:finance:read",
            "finance",
            &finance
        ),
    );
    let server = start(&config);
    let officer = Caller::new(&server, "officer");
    let accountant = Caller::new(&server, "finance");
    let id = officer.person_with_references(&[("tenure", "T/1"), ("repairs", "R1"), ("finance", "F1")]).await;

    // The healthy service's link appears once its first probe succeeded; the failing one's never does, and the
    // finance link is not for an officer.
    let rels = eventually("the tenure link", WITHIN_THE_INTERVAL, || async {
        let rels = officer.rels(&id).await;
        rels.contains(&"tenure".to_owned()).then_some(rels)
    })
    .await;
    assert_eq!(rels, vec!["tenure"]);
    let person: Value = officer.get(&format!("/api/v1/persons/{id}")).await.json().await.unwrap();
    assert_eq!(
        person["links"],
        json!([{ "rel": "tenure", "href": format!("{}/api/v1/tenures/T%2F1", tenure.base), "type": "GET" }])
    );
    let seen = eventually("the finance link", WITHIN_THE_INTERVAL, || async {
        let rels = accountant.rels(&id).await;
        rels.contains(&"finance".to_owned()).then_some(rels)
    })
    .await;
    assert_eq!(seen, vec!["tenure", "finance"], "a holder of extended:finance:read sees the finance link");
    assert!(repairs.probes.load(Ordering::SeqCst) >= 1, "the failing service is probed");
    assert_eq!(officer.rels(&id).await, vec!["tenure"], "the failing service stays hidden");

    // /readyz shows the states (and stays ready); /metrics exports them.
    let ready: Value =
        client().get(format!("{}/readyz", server.process.base_url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    let repairs_status = ready["links"].as_array().unwrap().iter().find(|l| l["rel"] == "repairs").unwrap();
    assert_eq!(repairs_status["state"], "down");
    assert_eq!(repairs_status["lastFailure"], "status 500");
    let metrics =
        client().get(format!("{}/metrics", server.process.base_url)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("person_api_link_up{rel=\"repairs\"} 0"), "{metrics}");
    assert!(metrics.contains("person_api_link_up{rel=\"tenure\"} 1"), "{metrics}");

    // Recovery: the link comes back within the interval; failure again: it goes.
    repairs.answer(200);
    eventually("the recovered repairs link", WITHIN_THE_INTERVAL, || async {
        officer.rels(&id).await.contains(&"repairs".to_owned()).then_some(())
    })
    .await;
    let person: Value = officer.get(&format!("/api/v1/persons/{id}")).await.json().await.unwrap();
    let repairs_link = person["links"].as_array().unwrap().iter().find(|l| l["rel"] == "repairs").unwrap().clone();
    assert_eq!(repairs_link["href"], format!("{}/persons/{id}", repairs.base));
    assert!(!accountant.rels(&id).await.is_empty());
    tenure.answer(503);
    eventually("the tenure link to disappear", WITHIN_THE_INTERVAL, || async {
        (!officer.rels(&id).await.contains(&"tenure".to_owned())).then_some(())
    })
    .await;
    assert_eq!(officer.rels(&id).await, vec!["repairs"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_health_url_never_delays_a_read() {
    let hanging = FakeService::start(200).await;
    hanging.hang.store(true, Ordering::SeqCst);
    // The probe may wait 300 s: a read that waited on it would run into the 30 s request timeout (504).
    let config = format!(
        "[link_probes]\ninterval_secs = 1\ntimeout_secs = 300\n\n{}",
        link("tenure", &format!("{}/tenures/{{referenceId}}", hanging.base), "persons:read", "tenure", &hanging)
    );
    let server = start(&config);
    let officer = Caller::new(&server, "officer");
    let id = officer.person_with_references(&[("tenure", "T1")]).await;
    eventually("a probe hanging on the health URL", WITHIN_THE_INTERVAL, || async {
        (hanging.probes.load(Ordering::SeqCst) >= 1).then_some(())
    })
    .await;

    // While the probe hangs, reads answer from the cached state: `unknown`, so no link.
    let read = tokio::time::timeout(Duration::from_secs(20), officer.get(&format!("/api/v1/persons/{id}"))).await;
    let read = read.expect("the read answered while the probe hung");
    assert_eq!(read.status(), 200);
    let person: Value = read.json().await.unwrap();
    assert_eq!(person["links"], json!([]), "a service never confirmed up is not linked");
    assert_eq!(person["references"], json!([{ "system": "tenure", "id": "T1" }]));
    let ready = tokio::time::timeout(
        Duration::from_secs(20),
        client().get(format!("{}/readyz", server.process.base_url)).send(),
    )
    .await
    .expect("readiness answered while the probe hung")
    .unwrap();
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["links"][0]["state"], "unknown");
}

#[test]
fn a_bad_link_registry_is_refused_at_start_naming_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("person-api.toml");
    std::fs::write(
        &file,
        "[[links]]\nrel = \"tenure\"\nhref = \"https://t.example/{referenceId}\"\npermission = \"persons:read\"\n",
    )
    .unwrap();
    let output = std::process::Command::new(common::binary())
        .arg("serve")
        .env("PERSON_API_CONFIG", &file)
        .env("PERSON_API_STORE", sqlite_url(dir.path()))
        .env("PERSON_API_BIND", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("links") && stderr.contains("system"), "{stderr}");
}
