//! Crash safety: SIGKILL the server in the middle of a burst of writes, restart it on the same store (an SQLite
//! file, or a PostgreSQL schema), and check that every write that was answered 2xx is there, with its event, and
//! that the store opens cleanly.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "the shared body of the tests: a failed unwrap is a failed test"
)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::{ServerProcess, client, sqlite_url, tenant};
use serde_json::Value;
use tokio::sync::Mutex;

/// Writers per burst and the most writes each may attempt (bounded load).
const WRITERS: usize = 8;
const MAX_WRITES_PER_WRITER: usize = 400;
/// Kill the server once this many writes have been acknowledged.
const KILL_AFTER_ACKS: usize = 150;

#[derive(Default)]
struct Acknowledged {
    /// id → highest version acknowledged for it.
    versions: HashMap<String, u64>,
    count: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acknowledged_write_survives_a_sigkill_mid_burst_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    sigkill_mid_burst(&[("PERSON_API_STORE", sqlite_url(dir.path()))]).await;
}

/// The same on PostgreSQL (a fresh schema of `PERSON_TEST_POSTGRES_URL`; skipped with a message when unset): the
/// server process dies, the database server does not, so what is tested is that no acknowledged transaction is
/// lost or half-applied by the client side dying.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acknowledged_write_survives_a_sigkill_mid_burst_on_postgresql() {
    let Some(url) = person_postgres::testing::fresh_test_url() else { return };
    sigkill_mid_burst(&[("PERSON_API_STORE", url)]).await;
}

/// Starts a server with `envs`, kills it with SIGKILL in the middle of a burst of writes, restarts it and checks
/// every acknowledged write and its events.
async fn sigkill_mid_burst(envs: &[(&str, String)]) {
    let server = ServerProcess::start(envs);
    let base = server.base_url.clone();
    let acked = Arc::new(Mutex::new(Acknowledged::default()));
    let (enough_tx, mut enough_rx) = tokio::sync::watch::channel(false);
    let enough_tx = Arc::new(enough_tx);

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (base, acked, enough_tx) = (base.clone(), acked.clone(), enough_tx.clone());
            let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
            tokio::spawn(async move {
                let mut mine: Option<(String, u64)> = None;
                for i in 0..MAX_WRITES_PER_WRITER {
                    let result = match &mine {
                        Some((id, version)) if i % 2 == 1 => http
                            .patch(format!("{base}/api/v1/persons/{id}"))
                            .header("If-Match", format!("\"{version}\""))
                            .json(&serde_json::json!({ "middleName": format!("Write {i}") }))
                            .send()
                            .await
                            .map(|r| (r, Some((id.clone(), version + 1)))),
                        _ => http
                            // The burst writes look-alike persons on purpose: allow them past duplicate prevention.
                            .post(format!("{base}/api/v1/persons?allowDuplicate=true"))
                            .json(&tenant(&format!("Writer{w}"), &format!("Burst{i}")))
                            .send()
                            .await
                            .map(|r| (r, None)),
                    };
                    let Ok((response, patched)) = result else { return };
                    if !response.status().is_success() {
                        return;
                    }
                    let (id, version) = match patched {
                        Some(done) => done,
                        None => {
                            let Ok(body) = response.json::<Value>().await else { return };
                            let Some(id) = body["id"].as_str() else { return };
                            (id.to_owned(), 0)
                        }
                    };
                    let mut acked = acked.lock().await;
                    acked.versions.insert(id.clone(), version);
                    acked.count += 1;
                    if acked.count >= KILL_AFTER_ACKS {
                        let _ = enough_tx.send(true);
                    }
                    drop(acked);
                    mine = Some((id, version));
                }
            })
        })
        .collect();

    // Wait until enough writes are acknowledged (or all writers gave up), then kill without warning.
    tokio::time::timeout(Duration::from_secs(120), enough_rx.wait_for(|enough| *enough))
        .await
        .expect("enough writes acknowledged before the deadline")
        .unwrap();
    server.kill();
    for writer in writers {
        writer.await.unwrap();
    }

    let acked = acked.lock().await;
    assert!(acked.count >= KILL_AFTER_ACKS);
    let restarted = ServerProcess::start(envs);
    let http = client();
    let mut stored_versions = HashMap::new();
    for (id, version) in &acked.versions {
        let response = http.get(format!("{}/api/v1/persons/{id}", restarted.base_url)).send().await.unwrap();
        assert_eq!(response.status(), 200, "acknowledged person {id} must survive");
        let stored: u64 = response.headers()["etag"].to_str().unwrap().trim_matches('"').parse().unwrap();
        assert!(stored >= *version, "person {id}: acknowledged version {version}, stored {stored}");
        stored_versions.insert(id.clone(), stored);
    }
    // Every stored version has its event: count events per person and compare with the stored versions.
    let mut events_per_person: HashMap<String, u64> = HashMap::new();
    let mut after = 0u64;
    loop {
        let page: Value = http
            .get(format!("{}/api/v1/events?after={after}&limit=1000", restarted.base_url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let results = page["results"].as_array().unwrap();
        if results.is_empty() {
            break;
        }
        for entry in results {
            let id = entry["event"]["entityId"].as_str().unwrap().to_owned();
            *events_per_person.entry(id).or_default() += 1;
            after = entry["position"].as_u64().unwrap();
        }
    }
    for (id, stored) in &stored_versions {
        let events = events_per_person.get(id).copied().unwrap_or(0);
        assert_eq!(
            events,
            stored + 1,
            "person {id}: stored at version {stored} must have exactly one event per version"
        );
    }
    let ready = http.get(format!("{}/readyz", restarted.base_url)).send().await.unwrap();
    assert_eq!(ready.status(), 200, "the store opens cleanly after the crash");
}
