//! Request metrics for `GET /metrics` (SPEC §10), and the Prometheus text-format writer every metric of this
//! crate is rendered with.
//!
//! [`RequestMetrics`] counts requests by route, method and status, keeps a latency histogram by route and method,
//! and tracks the requests in flight. It is fed by [`track`], a middleware layer placed outermost in
//! `crate::router` so that it sees the final status of every response, including the problems other layers
//! produce (401/403 from access, 404/405 fallbacks, 413, 504 timeouts, 500 panics).
//!
//! Labels never hold a concrete path: `route` is the matched route template (`/api/v1/persons/{id}`), or
//! `unmatched` for paths no route matches, so ids (personal data, and an unbounded number of series) never reach
//! a label. `method` is one of the standard methods or `other`, for the same reason.
//!
//! [`MetricFamily`] and [`MetricsSource`] are public so that other components (the event relay) can add their
//! families to the same scrape.
//!
//! This module knows nothing of persons or stores.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::Method;

/// The `route` label of requests no route matched (the 404 fallback).
pub(crate) const UNMATCHED_ROUTE: &str = "unmatched";

/// Upper bounds (seconds, inclusive) of the latency histogram's buckets; `+Inf` follows. From 1 ms (a cached
/// read) to 10 s (well past any target; the request timeout answers 504 after 30 s by default).
pub(crate) const LATENCY_BUCKETS: [f64; 13] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Request counts and latencies of one router; cheap to clone (shared).
///
/// Recording takes one short lock (two hash look-ups, a bucket search and a few additions).
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestMetrics(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    in_flight: AtomicI64,
    /// By route template, then by method.
    routes: Mutex<HashMap<Box<str>, HashMap<&'static str, Series>>>,
}

/// What is known of one route and method.
#[derive(Debug, Clone, PartialEq)]
struct Series {
    /// Responses by status code.
    statuses: BTreeMap<u16, u64>,
    /// Latencies, seconds.
    latency: Histogram,
}

impl Default for Series {
    fn default() -> Self {
        Self { statuses: BTreeMap::new(), latency: Histogram::new(&LATENCY_BUCKETS) }
    }
}

impl Series {
    fn observe(&mut self, status: u16, seconds: f64) {
        *self.statuses.entry(status).or_insert(0) += 1;
        self.latency.observe(seconds);
    }
}

/// A histogram of durations (seconds) over fixed bucket bounds, as Prometheus renders it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Histogram {
    /// Upper bounds (inclusive), ascending; `+Inf` follows.
    bounds: &'static [f64],
    /// Observations per bucket, one per bound plus `+Inf`, not cumulative (cumulated when rendered).
    buckets: Vec<u64>,
    /// Sum of the observations.
    sum: f64,
    count: u64,
}

impl Histogram {
    /// An empty histogram over `bounds` (ascending, finite).
    pub(crate) fn new(bounds: &'static [f64]) -> Self {
        Self { bounds, buckets: vec![0; bounds.len() + 1], sum: 0.0, count: 0 }
    }

    /// Counts one observation in the first bucket whose bound is at least `seconds` (`le` is inclusive), or in
    /// `+Inf`.
    pub(crate) fn observe(&mut self, seconds: f64) {
        let slot = slot_of(self.bounds, seconds);
        if let Some(bucket) = self.buckets.get_mut(slot) {
            *bucket += 1;
        }
        self.sum += seconds;
        self.count += 1;
    }

    /// `(le, cumulative count)` for every bucket, `+Inf` last.
    fn cumulative_buckets(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        self.bounds.iter().copied().chain([f64::INFINITY]).zip(self.buckets.iter().scan(0_u64, |total, n| {
            *total += n;
            Some(*total)
        }))
    }

    /// Writes the `_bucket` (with `le` after `labels`), `_sum` and `_count` series of this histogram.
    pub(crate) fn write(&self, family: &mut MetricFamily<'_>, labels: &[(&str, &str)]) {
        for (le, count) in self.cumulative_buckets() {
            let le = format_float(le);
            let mut with_le = labels.to_vec();
            with_le.push(("le", &le));
            family.sample_suffixed("_bucket", &with_le, count);
        }
        family.sample_suffixed_f64("_sum", labels, self.sum);
        family.sample_suffixed("_count", labels, self.count);
    }
}

/// The histogram slot of a latency: the first bucket whose bound is at least `seconds` (`le` is inclusive), or
/// the `+Inf` slot.
fn slot_of(bounds: &[f64], seconds: f64) -> usize {
    bounds.iter().position(|&bound| seconds <= bound).unwrap_or(bounds.len())
}

/// The `method` label: standard methods by name, anything else `other` (methods are caller-chosen tokens).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

impl RequestMetrics {
    /// Records one answered request.
    fn record(&self, route: &str, method: &'static str, status: u16, seconds: f64) {
        // A panic elsewhere while holding the lock leaves the numbers usable: keep counting.
        let mut routes = self.0.routes.lock().unwrap_or_else(PoisonError::into_inner);
        let methods = match routes.get_mut(route) {
            Some(methods) => methods,
            None => routes.entry(route.into()).or_default(),
        };
        methods.entry(method).or_default().observe(status, seconds);
    }

    /// The series by route and method, sorted, copied out of the lock.
    fn snapshot(&self) -> Vec<(String, &'static str, Series)> {
        let routes = self.0.routes.lock().unwrap_or_else(PoisonError::into_inner);
        let mut series: Vec<_> = routes
            .iter()
            .flat_map(|(route, methods)| methods.iter().map(|(method, s)| (route.to_string(), *method, s.clone())))
            .collect();
        drop(routes);
        series.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        series
    }

    /// Appends the request metrics in Prometheus text format: `person_api_build_info`,
    /// `person_api_http_requests_in_flight`, `person_api_http_requests_total{route,method,status}` and
    /// `person_api_http_request_duration_seconds{route,method}`.
    pub(crate) fn write(&self, out: &mut String) {
        let mut build = MetricFamily::new(out, "person_api_build_info", "gauge", "The running version (always 1)");
        build.sample(&[("version", env!("CARGO_PKG_VERSION"))], 1);

        let help = "Requests being answered now";
        let mut in_flight = MetricFamily::new(out, "person_api_http_requests_in_flight", "gauge", help);
        in_flight.sample_i64(&[], self.0.in_flight.load(Ordering::Relaxed));

        let series = self.snapshot();
        let help = "Answered requests by route template, method and status";
        let mut total = MetricFamily::new(out, "person_api_http_requests_total", "counter", help);
        for (route, method, s) in &series {
            for (status, count) in &s.statuses {
                total.sample(&[("route", route), ("method", method), ("status", &status.to_string())], *count);
            }
        }

        let help = "Time to answer a request (until the response head), by route template and method";
        let mut duration = MetricFamily::new(out, "person_api_http_request_duration_seconds", "histogram", help);
        for (route, method, s) in &series {
            s.latency.write(&mut duration, &[("route", route), ("method", method)]);
        }
    }
}

/// Counts the request in flight until dropped, so that a request abandoned by its caller (its future dropped)
/// leaves the gauge too.
struct InFlight(Arc<Inner>);

impl InFlight {
    fn start(metrics: &RequestMetrics) -> Self {
        metrics.0.in_flight.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(&metrics.0))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The middleware: records every answered request's route, method, status and latency (until the response
/// head; a streamed body's transfer is not included). A request abandoned before it is answered has no status
/// and is not counted, but leaves the in-flight gauge.
pub(crate) async fn track(State(metrics): State<RequestMetrics>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let _in_flight = InFlight::start(&metrics);
    // `MatchedPath` shares its text: cloning it copies no string.
    let route = request.extensions().get::<MatchedPath>().cloned();
    let method = method_label(request.method());
    let response = next.run(request).await;
    let route = route.as_ref().map_or(UNMATCHED_ROUTE, MatchedPath::as_str);
    metrics.record(route, method, response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}

/// More metrics for `/metrics` from outside this crate (the event relay, for one): given to
/// [`crate::AppState::with_metrics_source`], asked to append its families on every scrape.
pub trait MetricsSource: Send + Sync {
    /// Appends this source's metric families to `out` in the Prometheus text format (with [`MetricFamily`]).
    /// Called on every scrape: it must be cheap and never block.
    fn write_metrics(&self, out: &mut String);
}

/// Writes one metric family in the Prometheus text exposition format (0.0.4). The `# HELP` and `# TYPE` lines
/// are written with the first sample, so a family without samples writes nothing (strict parsers refuse a family
/// without samples).
pub struct MetricFamily<'a> {
    out: &'a mut String,
    name: &'static str,
    header: Option<(&'static str, &'a str)>,
}

impl<'a> MetricFamily<'a> {
    /// A family `name` of type `kind` (`counter`, `gauge`, `histogram`), described by `help`.
    pub fn new(out: &'a mut String, name: &'static str, kind: &'static str, help: &'a str) -> Self {
        Self { out, name, header: Some((kind, help)) }
    }

    fn start_line(&mut self, suffix: &str, labels: &[(&str, &str)]) {
        if let Some((kind, help)) = self.header.take() {
            let name = self.name;
            let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
            let _ = writeln!(self.out, "# TYPE {name} {kind}");
        }
        self.out.push_str(self.name);
        self.out.push_str(suffix);
        if labels.is_empty() {
            return;
        }
        self.out.push('{');
        for (i, (key, value)) in labels.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            let _ = write!(self.out, "{key}=\"{}\"", escape_label_value(value));
        }
        self.out.push('}');
    }

    /// One sample with an integer value.
    pub fn sample(&mut self, labels: &[(&str, &str)], value: u64) {
        self.sample_suffixed("", labels, value);
    }

    /// One sample with a signed integer value (a gauge that may go down).
    pub fn sample_i64(&mut self, labels: &[(&str, &str)], value: i64) {
        self.start_line("", labels);
        let _ = writeln!(self.out, " {value}");
    }

    /// One sample with a real value.
    pub fn sample_f64(&mut self, labels: &[(&str, &str)], value: f64) {
        self.sample_suffixed_f64("", labels, value);
    }

    /// One sample of the family's `suffix` series (`_bucket`, `_sum`, `_count` of a histogram).
    fn sample_suffixed(&mut self, suffix: &str, labels: &[(&str, &str)], value: u64) {
        self.start_line(suffix, labels);
        let _ = writeln!(self.out, " {value}");
    }

    fn sample_suffixed_f64(&mut self, suffix: &str, labels: &[(&str, &str)], value: f64) {
        self.start_line(suffix, labels);
        let _ = writeln!(self.out, " {}", format_float(value));
    }
}

/// A label value as the exposition format quotes it: backslash, double quote and line feed escaped.
pub(crate) fn escape_label_value(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// A `# HELP` text: backslash and line feed escaped.
fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A float as the exposition format writes it: `+Inf`, `-Inf` and `NaN` by those names, others in decimal.
fn format_float(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value == f64::INFINITY {
        "+Inf".to_owned()
    } else if value == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_escape_backslash_quote_and_line_feed_only() {
        assert_eq!(escape_label_value(r"C:\dir"), r"C:\\dir");
        assert_eq!(escape_label_value(r#"say "hi""#), r#"say \"hi\""#);
        assert_eq!(escape_label_value("two\nlines"), r"two\nlines");
        assert_eq!(escape_label_value("/api/v1/persons/{id} é\t"), "/api/v1/persons/{id} é\t");
    }

    #[test]
    fn escaped_label_values_are_written_inside_quotes() {
        let mut text = String::new();
        MetricFamily::new(&mut text, "m", "gauge", "a \\ help\ntext").sample(&[("k", "a\"b\\c\nd")], 1);
        assert_eq!(text, "# HELP m a \\\\ help\\ntext\n# TYPE m gauge\nm{k=\"a\\\"b\\\\c\\nd\"} 1\n");
    }

    #[test]
    fn a_family_without_samples_writes_nothing() {
        let mut text = String::new();
        let _ = MetricFamily::new(&mut text, "m", "counter", "nothing yet");
        assert_eq!(text, "");
    }

    #[test]
    fn a_latency_falls_in_the_first_bucket_whose_bound_is_at_least_it() {
        let slot_of = |seconds| slot_of(&LATENCY_BUCKETS, seconds);
        assert_eq!(slot_of(0.0), 0);
        assert_eq!(slot_of(0.001), 0, "le is inclusive");
        assert_eq!(slot_of(0.0011), 1);
        assert_eq!(slot_of(0.3), 8);
        assert_eq!(slot_of(10.0), LATENCY_BUCKETS.len() - 1);
        assert_eq!(slot_of(10.5), LATENCY_BUCKETS.len(), "+Inf");
        assert_eq!(slot_of(f64::NAN), LATENCY_BUCKETS.len(), "never out of range");
    }

    #[test]
    fn buckets_are_rendered_cumulative_ending_with_inf_equal_to_the_count() {
        let metrics = RequestMetrics::default();
        for seconds in [0.0005, 0.002, 0.002, 0.3, 42.0] {
            metrics.record("/r/{id}", "GET", 200, seconds);
        }
        metrics.record("/r/{id}", "GET", 404, 0.0005);
        let mut text = String::new();
        metrics.write(&mut text);
        let bucket = |le: &str| {
            let line = format!(
                "person_api_http_request_duration_seconds_bucket{{route=\"/r/{{id}}\",method=\"GET\",le=\"{le}\"}} "
            );
            let start = text.find(&line).map(|at| at + line.len()).unwrap_or_else(|| panic!("no {line} in {text}"));
            text[start..].lines().next().unwrap().parse::<u64>().unwrap()
        };
        assert_eq!(bucket("0.001"), 2);
        assert_eq!(bucket("0.0025"), 4);
        assert_eq!(bucket("0.25"), 4);
        assert_eq!(bucket("0.5"), 5);
        assert_eq!(bucket("10"), 5);
        assert_eq!(bucket("+Inf"), 6);
        assert!(text.contains("person_api_http_request_duration_seconds_count{route=\"/r/{id}\",method=\"GET\"} 6\n"));
        assert!(text.contains("person_api_http_requests_total{route=\"/r/{id}\",method=\"GET\",status=\"200\"} 5\n"));
        assert!(text.contains("person_api_http_requests_total{route=\"/r/{id}\",method=\"GET\",status=\"404\"} 1\n"));
        let sum_line = text.lines().find(|l| l.starts_with("person_api_http_request_duration_seconds_sum")).unwrap();
        let sum: f64 = sum_line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!((sum - 42.305).abs() < 1e-9, "{sum_line}");
    }

    #[test]
    fn every_bucket_bound_is_written_as_prometheus_writes_it() {
        let written: Vec<String> = LATENCY_BUCKETS.iter().map(|b| format_float(*b)).collect();
        assert_eq!(
            written,
            ["0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10"]
        );
        assert_eq!(format_float(f64::INFINITY), "+Inf");
        assert_eq!(format_float(f64::NAN), "NaN");
    }

    #[test]
    fn only_standard_methods_become_labels() {
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
    }

    #[test]
    fn before_any_request_only_build_info_and_in_flight_are_written() {
        let mut text = String::new();
        RequestMetrics::default().write(&mut text);
        assert!(text.contains("person_api_build_info{version=\""), "{text}");
        assert!(text.contains("person_api_http_requests_in_flight 0\n"), "{text}");
        assert!(!text.contains("requests_total"), "{text}");
        assert!(!text.contains("duration_seconds"), "{text}");
    }
}
