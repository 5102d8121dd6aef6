//! Storage-operation timing through a real listener: the `Server-Timing` entry of requests that used the store
//! (and its absence on those that did not), and the store operation metrics on `/metrics`, parsed with a strict
//! Prometheus text-format parser. (The operation log line is `store_log.rs`'s: log capture needs a binary of its
//! own.)

#[expect(
    dead_code,
    unused_macros,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "shared test helpers (this binary uses few of them); a failed unwrap is a failed test"
)]
mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use person_core::ports::{RandomIds, SystemClock};
use person_core::{PersonService, Repositories};
use person_http::{AppState, HttpConfig, StoreMetrics};
use prom_text_format_parser::{Scrape, Type, ValueType};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use uuid::Uuid;

use common::faults::{Fault, FaultyStore};
use common::{Api, header, spawn_state, timed_in_memory_service};

const OPERATIONS: &str = "person_api_store_operations_total";
const DURATION: &str = "person_api_store_operation_duration_seconds";

/// A server over a timed in-memory store whose metrics `/metrics` shows.
async fn spawn_timed() -> Api {
    let (service, metrics) = timed_in_memory_service();
    spawn_state(AppState::new(service, HttpConfig::default()).with_store_metrics(metrics)).await
}

/// A server over a timed store that fails with `fault`, with `config`.
async fn spawn_faulty(fault: Fault, config: HttpConfig) -> Api {
    let metrics = StoreMetrics::default();
    let store = person_http::store_timing::timed(Arc::new(FaultyStore(fault)), &metrics);
    let service = PersonService::new(Repositories::from_dyn(store), Arc::new(SystemClock), Arc::new(RandomIds));
    spawn_state(AppState::new(service, config).with_store_metrics(metrics)).await
}

/// The `store` entry of the `Server-Timing` header(s): its `dur` (ms) and the operation count its `desc` states,
/// or `None` when there is no such entry. Parsed by the W3C syntax: entries separated by commas, parameters by
/// semicolons, `desc` a quoted string.
fn store_timing(headers: &HeaderMap) -> Option<(f64, u64)> {
    let entries =
        headers.get_all("server-timing").iter().flat_map(|v| v.to_str().unwrap_or_else(|e| panic!("{e}")).split(','));
    let entry = entries.map(str::trim).find(|e| e.split(';').next().map(str::trim) == Some("store"))?;
    let params: BTreeMap<&str, &str> = entry
        .split(';')
        .skip(1)
        .map(|p| p.trim().split_once('=').unwrap_or_else(|| panic!("a parameter in {entry:?}")))
        .collect();
    let dur: f64 = params["dur"].parse().unwrap_or_else(|e| panic!("dur in {entry:?}: {e}"));
    let (_, decimals) = params["dur"].split_once('.').unwrap_or_else(|| panic!("one decimal in {entry:?}"));
    assert_eq!(decimals.len(), 1, "{entry:?}");
    let desc = params["desc"].strip_prefix('"').and_then(|d| d.strip_suffix('"'));
    let desc = desc.unwrap_or_else(|| panic!("a quoted desc in {entry:?}"));
    let (count, noun) = desc.split_once(' ').unwrap_or_else(|| panic!("<n> operations in {entry:?}"));
    let count: u64 = count.parse().unwrap_or_else(|e| panic!("count in {entry:?}: {e}"));
    assert_eq!(noun, if count == 1 { "operation" } else { "operations" }, "{entry:?}");
    Some((dur, count))
}

async fn scrape(api: &Api) -> Scrape {
    let response = api.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap_or_else(|e| panic!("reading /metrics: {e}"));
    Scrape::parse(&text).unwrap_or_else(|e| panic!("/metrics does not parse: {e:?}\n{text}"))
}

/// The store operation counter of `operation` and `outcome` (0 when never counted).
fn operations(scrape: &Scrape, operation: &str, outcome: &str) -> f64 {
    let Some(family) = scrape.metrics.iter().find(|m| m.name == OPERATIONS) else { return 0.0 };
    assert_eq!(family.kind, Type::Counter);
    family
        .samples
        .iter()
        .find(|s| {
            let labels: BTreeMap<&str, &str> = s.labels.iter().map(|l| (l.key.as_str(), l.value.as_str())).collect();
            labels == BTreeMap::from([("operation", operation), ("outcome", outcome)])
        })
        .map_or(0.0, |s| s.value.value.as_f64())
}

#[tokio::test]
async fn a_read_answers_a_server_timing_entry_for_its_store_operations() {
    let api = spawn_timed().await;
    let id = api.create_tenant().await;

    let response = api
        .client
        .get(api.url(&format!("/api/v1/persons/{id}")))
        .header("origin", "https://app.example.gov.uk")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    let (dur, count) = store_timing(response.headers()).expect("a store entry");
    assert!(count >= 1, "at least the person.get");
    assert!(dur >= 0.0 && dur.is_finite(), "{dur}");
    let exposed = header(&response, "access-control-expose-headers").to_ascii_lowercase();
    assert!(exposed.contains("server-timing"), "scripts may read it: {exposed:?}");
}

#[tokio::test]
async fn requests_that_use_no_store_have_no_server_timing() {
    let api = spawn_timed().await;

    for path in ["/no/such/path", "/livez", "/metrics", "/api/v1/persons/not-a-uuid"] {
        let response = api.get(path).await;
        assert!(response.headers().get("server-timing").is_none(), "{path}: {:?}", response.headers());
    }
    // A 404 for an unknown person did use the store: it says so.
    let response = api.get(&format!("/api/v1/persons/{}", Uuid::new_v4())).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(store_timing(response.headers()).is_some_and(|(_, count)| count >= 1));
}

#[tokio::test]
async fn store_operations_are_counted_by_name_and_outcome_with_latency_histograms() {
    let api = spawn_timed().await;
    let id = api.create_tenant().await;
    let before = scrape(&api).await;
    assert!(operations(&before, "person.insert", "ok") >= 1.0);

    for _ in 0..2 {
        assert_eq!(api.get(&format!("/api/v1/persons/{id}")).await.status(), StatusCode::OK);
    }
    assert_eq!(api.get(&format!("/api/v1/persons/{}", Uuid::new_v4())).await.status(), StatusCode::NOT_FOUND);

    let after = scrape(&api).await;
    let reads = operations(&after, "person.get", "ok") - operations(&before, "person.get", "ok");
    assert_eq!(reads, 3.0, "two found, one not found: all ok");

    let family = after.metrics.iter().find(|m| m.name == DURATION).expect("the duration histogram");
    assert_eq!(family.kind, Type::Histogram);
    let count = family
        .samples
        .iter()
        .find(|s| s.value.value_type == ValueType::Count && s.labels.iter().any(|l| l.value == "person.get"))
        .map(|s| s.value.value.as_f64())
        .expect("person.get's _count");
    let counted: f64 =
        ["ok", "unavailable", "unexpected", "cancelled"].iter().map(|o| operations(&after, "person.get", o)).sum();
    assert_eq!(count, counted, "_count = calls counted");
    for sample in after.metrics.iter().flat_map(|m| &m.samples) {
        for label in sample.labels.iter() {
            assert!(!label.value.contains(&id), "{}={:?} holds an id", label.key, label.value);
        }
    }
}

#[tokio::test]
async fn failing_and_abandoned_store_calls_are_timed_with_their_outcome() {
    let broken = spawn_faulty(Fault::Broken, HttpConfig::default()).await;
    let config = HttpConfig { request_timeout: Duration::from_millis(200), ..HttpConfig::default() };
    let stalls = spawn_faulty(Fault::Stalls, config).await;
    let path = format!("/api/v1/persons/{}", Uuid::new_v4());

    let response = broken.get(&path).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(store_timing(response.headers()).is_some(), "a 500 still says what the store did");
    let response = stalls.get(&path).await;
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    let (dur, _) = store_timing(response.headers()).expect("a 504 says how long the store took");
    assert!(dur >= 150.0, "the stalled call lasted until the timeout: {dur}");

    assert_eq!(operations(&scrape(&broken).await, "person.get", "unexpected"), 1.0);
    assert_eq!(operations(&scrape(&stalls).await, "person.get", "cancelled"), 1.0);
}
