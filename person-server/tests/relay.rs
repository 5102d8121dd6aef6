//! The event relay in the real binary (SPEC §9): an SQLite store, the relay publishing to an SNS topic on a local
//! SNS/SQS-compatible server (moto) with a queue subscribed to it. What arrives on the queue is the event feed;
//! a SIGKILL loses nothing; of two processes on one file only one relays, and the other takes over when it dies.
//!
//! Runs when `PERSON_TEST_DYNAMODB_ENDPOINT` names the moto server (CI's serves SNS and SQS too).

#![expect(clippy::unwrap_used, reason = "test helpers fail the test loudly")]

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use common::{ServerProcess, client, sqlite_url, tenant};
use person_relay::testkit::{self, Received, TestBroker};
use prom_text_format_parser::Scrape;
use serde_json::{Value, json};
use tokio::time::Instant;

/// How long a test waits for something before it fails (a hang guard, not a timed assertion).
const PATIENCE: Duration = Duration::from_secs(90);

/// The environment of a server relaying `dir`'s SQLite file to `broker`, with a short lease.
fn relay_env(dir: &Path, broker: &TestBroker) -> Vec<(&'static str, String)> {
    vec![
        ("PERSON_API_STORE", sqlite_url(dir)),
        ("PERSON_API_RELAY_ENABLED", "true".to_owned()),
        ("PERSON_API_RELAY_TOPIC_ARN", broker.topic_arn.clone()),
        ("PERSON_API_RELAY_ENDPOINT", broker.endpoint().to_owned()),
        ("PERSON_API_RELAY_POLL_INTERVAL_MS", "50".to_owned()),
        ("PERSON_API_RELAY_LEASE_TTL_SECS", "2".to_owned()),
        ("PERSON_API_RELAY_BACKOFF_BASE_MS", "50".to_owned()),
        ("PERSON_API_RELAY_BACKOFF_MAX_MS", "500".to_owned()),
        // The standard AWS chain finds these first; a local test server checks no signature.
        ("AWS_ACCESS_KEY_ID", "test".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
    ]
}

/// The whole event feed, as `GET /api/v1/events` serves it (development mode: every event).
async fn feed(base: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut after = "0".to_owned();
    loop {
        let page: Value = client()
            .get(format!("{base}/api/v1/events?after={after}&limit=1000"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let results = page["results"].as_array().unwrap();
        if results.is_empty() {
            return events;
        }
        events.extend(results.iter().map(|entry| entry["event"].clone()));
        after = page["nextCursor"].as_str().unwrap().to_owned();
    }
}

fn event_ids(events: &[Value]) -> HashSet<String> {
    events.iter().map(|event| event["id"].as_str().unwrap().to_owned()).collect()
}

fn received_ids(received: &[Received]) -> HashSet<String> {
    received.iter().filter_map(Received::event_id).collect()
}

/// Receives until every id of `wanted` arrived.
async fn receive_all(broker: &TestBroker, wanted: &HashSet<String>) -> Vec<Received> {
    let received = broker.receive_until(PATIENCE, |received| wanted.is_subset(&received_ids(received))).await;
    let arrived = received_ids(&received);
    let missing: Vec<&String> = wanted.difference(&arrived).collect();
    assert!(missing.is_empty(), "{} events never arrived: {missing:?}", missing.len());
    received
}

/// The value of the unlabelled sample of `name` on `base`'s `/metrics`, `None` when the server does not answer
/// or has no such sample.
async fn metric(base: &str, name: &str) -> Option<f64> {
    let text = client().get(format!("{base}/metrics")).send().await.ok()?.text().await.ok()?;
    let scrape = Scrape::parse(&text).unwrap_or_else(|e| panic!("/metrics does not parse: {e:?}\n{text}"));
    let family = scrape.metrics.iter().find(|m| m.name == name)?;
    family.samples.iter().find(|s| s.labels.is_empty()).map(|s| s.value.value.as_f64())
}

async fn leads(base: &str) -> bool {
    metric(base, "person_api_relay_leader").await == Some(1.0)
}

/// Polls `check` until it holds, failing with `what` after `PATIENCE`.
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !check().await {
        assert!(Instant::now() < deadline, "gave up waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn create(base: &str, first: &str, surname: &str) -> Value {
    let response = client()
        .post(format!("{base}/api/v1/persons?allowDuplicate=true"))
        .json(&tenant(first, surname))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

#[tokio::test]
async fn created_updated_merged_and_deleted_persons_arrive_on_the_queue_exactly_as_the_event_feed_serves_them() {
    let Some(endpoint) = testkit::endpoint() else { return };
    let broker = TestBroker::create(&endpoint, false).await;
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&relay_env(dir.path(), &broker));
    let base = server.base_url.clone();
    let http = client();

    let survivor = create(&base, "Ada", "Lovelace").await["id"].as_str().unwrap().to_owned();
    let duplicate = create(&base, "Augusta", "King").await["id"].as_str().unwrap().to_owned();
    let patched = http
        .patch(format!("{base}/api/v1/persons/{survivor}"))
        .header("If-Match", "\"0\"")
        .json(&json!({ "middleName": "Grace" }))
        .send()
        .await
        .unwrap();
    assert!(patched.status().is_success(), "patch: {}", patched.status());
    let merged = http
        .post(format!("{base}/api/v1/persons/{survivor}/merge"))
        .header("If-Match", "\"1\"")
        .json(&json!({ "duplicateId": duplicate, "reason": "Same person" }))
        .send()
        .await
        .unwrap();
    assert!(merged.status().is_success(), "merge: {}", merged.status());
    let deleted = http.delete(format!("{base}/api/v1/persons/{survivor}")).send().await.unwrap();
    assert!(deleted.status().is_success(), "delete: {}", deleted.status());

    let events = feed(&base).await;
    let received = receive_all(&broker, &event_ids(&events)).await;
    let types: HashSet<&str> = events.iter().map(|e| e["eventType"].as_str().unwrap()).collect();
    for wanted in ["PersonCreatedEvent", "PersonUpdatedEvent", "PersonMergedEvent", "PersonDeletedEvent"] {
        assert!(types.contains(wanted), "the feed holds a {wanted}: {types:?}");
    }
    assert_eq!(received.len(), events.len(), "one message per event");
    for event in &events {
        let id = event["id"].as_str().unwrap();
        let message = received.iter().find(|r| r.event_id().as_deref() == Some(id)).unwrap();
        assert_eq!(&message.json(), event, "the message body is the feed's event");
        assert_eq!(message.event_type.as_deref(), event["eventType"].as_str());
    }
    let head = events.len() as f64;
    eventually("the relay reports the head as its position", async || {
        metric(&base, "person_api_relay_position").await == Some(head)
    })
    .await;
    assert!(leads(&base).await);
    assert_eq!(metric(&base, "person_api_relay_lag_events").await, Some(0.0));
    assert_eq!(metric(&base, "person_api_relay_events_published_total").await, Some(head));
    assert_eq!(metric(&base, "person_api_relay_publish_failures_total").await, Some(0.0));

    let (status, logs) = server.terminate();
    assert!(status.success(), "graceful shutdown: {status}");
    assert!(
        logs.iter().any(|line| line.contains("relay lease released")),
        "the lease is released:\n{}",
        logs.join("\n")
    );
    for line in &logs {
        assert!(!line.contains("Lovelace") && !line.contains("Augusta"), "no personal data in logs: {line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_event_arrives_at_least_once_when_the_server_is_killed_while_relaying_a_burst() {
    let Some(endpoint) = testkit::endpoint() else { return };
    let broker = TestBroker::create(&endpoint, false).await;
    let dir = tempfile::tempdir().unwrap();
    let env = relay_env(dir.path(), &broker);
    let server = ServerProcess::start(&env);
    let base = server.base_url.clone();

    // 8 writers create 25 persons each; the server is killed once the relay has published 50 events.
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let base = base.clone();
            tokio::spawn(async move {
                let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
                for i in 0..25 {
                    let sent = http
                        .post(format!("{base}/api/v1/persons?allowDuplicate=true"))
                        .json(&tenant(&format!("Writer{}", char::from(b'a' + w)), &format!("Burst{i}")))
                        .send()
                        .await;
                    if sent.is_err() {
                        return;
                    }
                }
            })
        })
        .collect();
    eventually("the relay publishes part of the burst", async || {
        metric(&base, "person_api_relay_events_published_total").await.is_some_and(|n| n >= 50.0)
    })
    .await;
    server.kill();
    for writer in writers {
        writer.await.unwrap();
    }

    // The restarted server takes the lease over once the killed one's expires, and relays the rest.
    let restarted = ServerProcess::start(&env);
    let events = feed(&restarted.base_url).await;
    assert!(events.len() >= 50, "the burst was written: {} events", events.len());
    let received = receive_all(&broker, &event_ids(&events)).await;
    println!("{} events, {} messages received", events.len(), received.len());
    let head = events.len() as f64;
    eventually("the restarted relay reaches the head", async || {
        metric(&restarted.base_url, "person_api_relay_position").await == Some(head)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_two_servers_on_one_sqlite_file_one_relays_and_the_other_takes_over_when_it_is_killed() {
    let Some(endpoint) = testkit::endpoint() else { return };
    let broker = TestBroker::create(&endpoint, false).await;
    let dir = tempfile::tempdir().unwrap();
    let env = relay_env(dir.path(), &broker);
    let mut servers = [Some(ServerProcess::start(&env)), Some(ServerProcess::start(&env))];
    let bases: Vec<String> = servers.iter().flatten().map(|s| s.base_url.clone()).collect();

    // Samples A, B, A: both lead at once only if B led while A held a lease that was still valid after.
    let sampler = {
        let bases = bases.clone();
        tokio::spawn(async move {
            let (mut samples, mut both) = (0_u32, 0_u32);
            loop {
                let (Some(a1), Some(b), Some(a2)) = (
                    metric(&bases[0], "person_api_relay_leader").await,
                    metric(&bases[1], "person_api_relay_leader").await,
                    metric(&bases[0], "person_api_relay_leader").await,
                ) else {
                    // A process stopped answering: it was killed; sampling is over.
                    return (samples, both);
                };
                samples += 1;
                if a1 == 1.0 && b == 1.0 && a2 == 1.0 {
                    both += 1;
                }
                let (Some(b1), Some(a), Some(b2)) = (
                    metric(&bases[1], "person_api_relay_leader").await,
                    metric(&bases[0], "person_api_relay_leader").await,
                    metric(&bases[1], "person_api_relay_leader").await,
                ) else {
                    return (samples, both);
                };
                samples += 1;
                if b1 == 1.0 && a == 1.0 && b2 == 1.0 {
                    both += 1;
                }
            }
        })
    };

    for i in 0..20 {
        create(&bases[i % 2], &format!("Before{}", char::from(b'a' + i as u8)), "Twin").await;
    }
    let before = feed(&bases[0]).await;
    receive_all(&broker, &event_ids(&before)).await;
    let mut leader = None;
    eventually("exactly one server leads", async || {
        let (a, b) = (leads(&bases[0]).await, leads(&bases[1]).await);
        leader = Some(usize::from(b));
        a != b
    })
    .await;
    let leader = leader.unwrap();
    let survivor = 1 - leader;
    servers[leader].take().unwrap().kill();
    let (samples, both) = sampler.await.unwrap();
    assert!(samples > 0, "leadership was sampled");
    assert_eq!(both, 0, "both servers led at once in {both} of {samples} samples");

    for i in 0..20 {
        create(&bases[survivor], &format!("After{}", char::from(b'a' + i as u8)), "Twin").await;
    }
    let events = feed(&bases[survivor]).await;
    let after: HashSet<String> = event_ids(&events).difference(&event_ids(&before)).cloned().collect();
    assert_eq!(after.len(), 20);
    receive_all(&broker, &after).await;
    eventually("the survivor took the lease over", async || leads(&bases[survivor]).await).await;
    assert!(metric(&bases[survivor], "person_api_relay_lease_acquisitions_total").await >= Some(1.0));
}
