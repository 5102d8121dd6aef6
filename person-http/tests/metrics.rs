//! `GET /metrics` through a real listener, parsed with a strict Prometheus text-format parser
//! (`prom_text_format_parser`, which refuses malformed lines and families without samples): request counts by
//! route template and status, including the statuses other layers produce, latency histograms, and the link
//! metrics after them.

#[expect(
    dead_code,
    unused_macros,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "shared test helpers (this binary uses few of them); a failed unwrap is a failed test"
)]
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use person_core::access::Permission;
use person_http::links::{LinkRegistry, LinkService, ProbeThresholds};
use person_http::{AppState, HttpConfig};
use prom_text_format_parser::{Metric, Scrape, Type, ValueType};
use reqwest::StatusCode;
use uuid::Uuid;

use common::faults::{Fault, faulty_service};
use common::tokens::spawn_with_tokens;
use common::{Api, header, in_memory_service, spawn, spawn_in_memory, spawn_with};

const REQUESTS: &str = "person_api_http_requests_total";
const DURATION: &str = "person_api_http_request_duration_seconds";
const PERSON_ROUTE: &str = "/api/v1/persons/{id}";

/// `GET /metrics`, checked for status and media type, parsed; also the raw text.
async fn scrape(api: &Api) -> (Scrape, String) {
    let response = api.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "content-type"), "text/plain; version=0.0.4; charset=utf-8");
    let text = response.text().await.unwrap_or_else(|e| panic!("reading /metrics: {e}"));
    let scrape = Scrape::parse(&text).unwrap_or_else(|e| panic!("/metrics does not parse: {e:?}\n{text}"));
    (scrape, text)
}

fn metric<'a>(scrape: &'a Scrape, name: &str) -> &'a Metric {
    scrape.metrics.iter().find(|m| m.name == name).unwrap_or_else(|| panic!("no metric {name}"))
}

/// A sample's labels as a map (values as written, still escaped).
fn labels(sample: &prom_text_format_parser::Sample) -> BTreeMap<&str, &str> {
    sample.labels.iter().map(|l| (l.key.as_str(), l.value.as_str())).collect()
}

/// The value of `name`'s plain sample whose labels are exactly `wanted`, or `None`.
fn value(scrape: &Scrape, name: &str, wanted: &[(&str, &str)]) -> Option<f64> {
    let wanted: BTreeMap<&str, &str> = wanted.iter().copied().collect();
    metric(scrape, name)
        .samples
        .iter()
        .find(|s| s.value.value_type == ValueType::Sample && labels(s) == wanted)
        .map(|s| s.value.value.as_f64())
}

/// The request counter of `route`, `method` and `status` (0 when never counted).
fn requests(scrape: &Scrape, route: &str, method: &str, status: u16) -> f64 {
    let status = status.to_string();
    value(scrape, REQUESTS, &[("route", route), ("method", method), ("status", &status)]).unwrap_or(0.0)
}

/// One histogram series: its cumulative `(le, count)` buckets in the order written, its `_sum` and `_count`.
struct Histogram {
    buckets: Vec<(f64, f64)>,
    sum: f64,
    count: f64,
}

fn histograms(scrape: &Scrape) -> BTreeMap<(String, String), Histogram> {
    let family = metric(scrape, DURATION);
    assert_eq!(family.kind, Type::Histogram);
    let mut series: BTreeMap<(String, String), Histogram> = BTreeMap::new();
    for sample in &family.samples {
        let labels = labels(sample);
        let key = (labels["route"].to_owned(), labels["method"].to_owned());
        let entry = series.entry(key).or_insert(Histogram { buckets: Vec::new(), sum: f64::NAN, count: f64::NAN });
        let value = sample.value.value.as_f64();
        match sample.value.value_type {
            ValueType::Sample => {
                let le = labels["le"];
                let le =
                    if le == "+Inf" { f64::INFINITY } else { le.parse().unwrap_or_else(|e| panic!("le={le:?}: {e}")) };
                entry.buckets.push((le, value));
            }
            ValueType::Sum => entry.sum = value,
            ValueType::Count => entry.count = value,
        }
    }
    series
}

/// Whether `text` holds something shaped like a UUID (36 characters a UUID parser accepts).
fn holds_a_uuid(text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    chars.windows(36).any(|w| Uuid::try_parse(&w.iter().collect::<String>()).is_ok())
}

#[tokio::test]
async fn request_counts_are_by_route_template_method_and_status_and_parse_as_prometheus_text() {
    let api = spawn_in_memory().await;
    let id = api.create_tenant().await;
    let unknown = Uuid::new_v4();
    for _ in 0..2 {
        assert_eq!(api.get(&format!("/api/v1/persons/{id}")).await.status(), StatusCode::OK);
    }
    assert_eq!(api.get(&format!("/api/v1/persons/{unknown}")).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(api.get("/api/v1/persons/not-a-uuid").await.status(), StatusCode::BAD_REQUEST);
    assert_eq!(api.get(&format!("/no/such/{id}")).await.status(), StatusCode::NOT_FOUND);
    let wrong_method = api.client.put(api.url("/api/v1/persons")).send().await.unwrap();
    assert_eq!(wrong_method.status(), StatusCode::METHOD_NOT_ALLOWED);

    let (scrape, text) = scrape(&api).await;

    assert_eq!(metric(&scrape, REQUESTS).kind, Type::Counter);
    assert_eq!(requests(&scrape, "/api/v1/persons", "POST", 201), 1.0);
    assert_eq!(requests(&scrape, PERSON_ROUTE, "GET", 200), 2.0);
    assert_eq!(requests(&scrape, PERSON_ROUTE, "GET", 404), 1.0);
    assert_eq!(requests(&scrape, PERSON_ROUTE, "GET", 400), 1.0);
    assert_eq!(requests(&scrape, "unmatched", "GET", 404), 1.0);
    assert_eq!(requests(&scrape, "/api/v1/persons", "PUT", 405), 1.0);
    let in_flight = value(&scrape, "person_api_http_requests_in_flight", &[]);
    assert_eq!(in_flight, Some(1.0), "the scrape itself");
    let build = &metric(&scrape, "person_api_build_info").samples[0];
    assert_eq!(build.value.value.as_f64(), 1.0);
    assert!(labels(build).contains_key("version"));

    // No concrete path reaches a label: no id, no raw segment.
    for sample in scrape.metrics.iter().flat_map(|m| &m.samples) {
        for label in sample.labels.iter() {
            assert!(!holds_a_uuid(&label.value), "{}={:?} holds an id", label.key, label.value);
        }
    }
    assert!(!text.contains(&id) && !text.contains(&unknown.to_string()) && !text.contains("not-a-uuid"), "{text}");

    let histograms = histograms(&scrape);
    let person = &histograms[&(PERSON_ROUTE.to_owned(), "GET".to_owned())];
    assert_eq!(person.count, 4.0, "2 × 200, 404, 400");
    for ((route, method), h) in &histograms {
        let bounds: Vec<f64> = h.buckets.iter().map(|(le, _)| *le).collect();
        assert!(bounds.windows(2).all(|w| w[0] < w[1]), "{route} {method}: bounds ascend {bounds:?}");
        assert_eq!(bounds.last(), Some(&f64::INFINITY), "{route} {method}: +Inf bucket last");
        let counts: Vec<f64> = h.buckets.iter().map(|(_, n)| *n).collect();
        assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{route} {method}: cumulative {counts:?}");
        assert_eq!(counts.last(), Some(&h.count), "{route} {method}: +Inf bucket = _count");
        let answered: f64 = metric(&scrape, REQUESTS)
            .samples
            .iter()
            .filter(|s| labels(s)["route"] == route && labels(s)["method"] == method)
            .map(|s| s.value.value.as_f64())
            .sum();
        assert_eq!(h.count, answered, "{route} {method}: _count = requests counted");
        assert!(h.sum >= 0.0 && h.sum.is_finite(), "{route} {method}: _sum {}", h.sum);
    }
}

#[tokio::test]
async fn the_scrape_counts_itself_from_the_next_scrape_on() {
    let api = spawn_in_memory().await;

    let (first, _) = scrape(&api).await;
    let (second, _) = scrape(&api).await;

    assert!(first.metrics.iter().all(|m| m.name != REQUESTS), "nothing answered before the first scrape");
    assert_eq!(requests(&second, "/metrics", "GET", 200), 1.0);
}

#[tokio::test]
async fn statuses_produced_by_other_layers_are_counted_under_the_route_template() {
    let config = HttpConfig { request_timeout: Duration::from_millis(200), ..HttpConfig::default() };
    let stalls = spawn_with(faulty_service(Fault::Stalls), config).await;
    let panics = spawn(faulty_service(Fault::Panics)).await;
    let tokens = spawn_with_tokens(in_memory_service()).await;
    let plain = spawn_in_memory().await;
    let path = format!("/api/v1/persons/{}", Uuid::new_v4());

    assert_eq!(stalls.get(&path).await.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(panics.get(&path).await.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(tokens.get(&path).await.status(), StatusCode::UNAUTHORIZED);
    let large = "x".repeat(2 * 1024 * 1024);
    let too_large = plain.client.post(plain.url("/api/v1/persons")).body(large).send().await.unwrap();
    assert_eq!(too_large.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let preflight = plain
        .client
        .request(reqwest::Method::OPTIONS, plain.url("/api/v1/persons"))
        .header("origin", "https://app.example.gov.uk")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), StatusCode::OK);

    assert_eq!(requests(&scrape(&stalls).await.0, PERSON_ROUTE, "GET", 504), 1.0);
    assert_eq!(requests(&scrape(&panics).await.0, PERSON_ROUTE, "GET", 500), 1.0);
    assert_eq!(requests(&scrape(&tokens).await.0, PERSON_ROUTE, "GET", 401), 1.0);
    let (plain, _) = scrape(&plain).await;
    assert_eq!(requests(&plain, "/api/v1/persons", "POST", 413), 1.0);
    assert_eq!(requests(&plain, "/api/v1/persons", "OPTIONS", 200), 1.0, "CORS preflight");
}

#[tokio::test]
async fn link_metrics_follow_the_request_metrics_and_parse_too() {
    let notes = LinkService {
        rel: "notes".to_owned(),
        href: "https://notes.example/{personId}".to_owned(),
        permission: Permission::PersonsRead,
        system: None,
        link_type: "GET".to_owned(),
        health_url: None,
    };
    let registry = LinkRegistry::new(vec![notes], ProbeThresholds::default()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = person_http::router(AppState::new(in_memory_service(), HttpConfig::default()).with_links(registry));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let api = Api::new(format!("http://{address}"));
    api.get("/livez").await;

    let (scrape, text) = scrape(&api).await;

    assert_eq!(value(&scrape, "person_api_link_up", &[("rel", "notes")]), Some(1.0));
    assert_eq!(metric(&scrape, "person_api_link_up").kind, Type::Gauge);
    assert_eq!(value(&scrape, "person_api_link_probes_total", &[("rel", "notes"), ("outcome", "failure")]), Some(0.0));
    assert!(value(&scrape, "person_api_link_probe_duration_seconds", &[("rel", "notes")]).is_some());
    assert_eq!(requests(&scrape, "/livez", "GET", 200), 1.0);
    let requests_at = text.find(REQUESTS).unwrap();
    assert!(requests_at < text.find("person_api_link_up").unwrap(), "request metrics come first");
}
