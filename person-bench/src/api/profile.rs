//! Where the server's time goes during a workload, from its own `GET /metrics` (no token; no personal data):
//! the difference of two scrapes, one before and one after the workload, of the request histogram
//! (`person_api_http_request_duration_seconds`) and of the store-call histogram
//! (`person_api_store_operation_duration_seconds{operation}`, one series per port operation such as `person.get`
//! or `audit.append`). Mean time per request on the server, and per request which store calls it made and how
//! long each took on average: the first profile of a missed target.
//!
//! Knows only the metric names of `docs/operations.md`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One scrape: every sample, by its series (`name{labels}`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Scrape(BTreeMap<String, f64>);

impl Scrape {
    /// Parses the Prometheus text format (comments and unreadable lines skipped).
    pub(crate) fn parse(text: &str) -> Self {
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| {
                let (series, value) = l.trim().rsplit_once(' ')?;
                Some((series.trim().to_owned(), value.parse::<f64>().ok()?))
            })
            .collect();
        Self(samples)
    }

    /// Reads the server's metrics; an empty scrape when it cannot (the profile is then empty, never an error).
    pub(crate) async fn of(client: &reqwest::Client, base: &str) -> Self {
        let text = match client.get(format!("{base}/metrics")).send().await {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        Self::parse(&text)
    }
}

/// The server's work during one workload.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Profile {
    /// Requests the server answered (every route but `/metrics`).
    pub(crate) requests: f64,
    /// Their total time on the server, in seconds.
    pub(crate) request_seconds: f64,
    /// Per store operation: calls and their total time in seconds.
    pub(crate) operations: BTreeMap<String, (f64, f64)>,
}

impl Profile {
    /// The difference between two scrapes.
    pub(crate) fn between(before: &Scrape, after: &Scrape) -> Self {
        let delta =
            |series: &str| after.0.get(series).copied().unwrap_or(0.0) - before.0.get(series).copied().unwrap_or(0.0);
        let mut profile = Self::default();
        for series in after.0.keys() {
            if let Some(labels) = series.strip_prefix("person_api_http_request_duration_seconds_count") {
                if labels.contains("route=\"/metrics\"") {
                    continue;
                }
                profile.requests += delta(series);
                profile.request_seconds += delta(&format!("person_api_http_request_duration_seconds_sum{labels}"));
            } else if let Some(labels) = series.strip_prefix("person_api_store_operation_duration_seconds_count") {
                let Some(operation) = label(labels, "operation") else { continue };
                let calls = delta(series);
                if calls > 0.0 {
                    let seconds = delta(&format!("person_api_store_operation_duration_seconds_sum{labels}"));
                    profile.operations.insert(operation.to_owned(), (calls, seconds));
                }
            }
        }
        profile
    }

    /// `server 3.10 ms/request; store per request: audit.append 1.00 × 2.50 ms, person.get 1.00 × 0.20 ms`.
    pub(crate) fn summary(&self) -> String {
        if self.requests <= 0.0 {
            return "no server metrics".to_owned();
        }
        let mut out = format!("server {:.2} ms/request", self.request_seconds * 1e3 / self.requests);
        let mut operations: Vec<(&String, &(f64, f64))> = self.operations.iter().collect();
        // The costliest first.
        operations.sort_by(|a, b| b.1.1.total_cmp(&a.1.1));
        if !operations.is_empty() {
            out.push_str("; store calls per request: ");
            let parts: Vec<String> = operations
                .iter()
                .map(|(name, (calls, seconds))| {
                    format!("`{name}` {:.2} × {:.2} ms", calls / self.requests, seconds * 1e3 / calls.max(1e-9))
                })
                .collect();
            out.push_str(&parts.join(", "));
        }
        out
    }
}

/// The value of `name` in a label set `{a="x",b="y"}`.
fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    let start = labels.find(&format!("{name}=\""))? + name.len() + 2;
    let end = labels[start..].find('"')? + start;
    labels.get(start..end)
}

/// The profiles as a Markdown table.
pub(crate) fn table(rows: &[(String, Profile)]) -> String {
    let mut out = String::from("| Workload | Where the server's time goes (from `/metrics`, means) |\n|---|---|\n");
    for (what, profile) in rows {
        let _ = writeln!(out, "| {what} | {} |", profile.summary());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "# HELP x\n\
        person_api_http_request_duration_seconds_sum{route=\"/api/v1/persons/{id}\",method=\"GET\"} 1.0\n\
        person_api_http_request_duration_seconds_count{route=\"/api/v1/persons/{id}\",method=\"GET\"} 100\n\
        person_api_http_request_duration_seconds_sum{route=\"/metrics\",method=\"GET\"} 0.5\n\
        person_api_http_request_duration_seconds_count{route=\"/metrics\",method=\"GET\"} 3\n\
        person_api_store_operation_duration_seconds_sum{operation=\"person.get\"} 0.1\n\
        person_api_store_operation_duration_seconds_count{operation=\"person.get\"} 100\n";

    const AFTER: &str = "person_api_http_request_duration_seconds_sum{route=\"/api/v1/persons/{id}\",method=\"GET\"} 4.0\n\
        person_api_http_request_duration_seconds_count{route=\"/api/v1/persons/{id}\",method=\"GET\"} 1100\n\
        person_api_http_request_duration_seconds_bucket{route=\"/api/v1/persons/{id}\",method=\"GET\",le=\"+Inf\"} 1100\n\
        person_api_http_request_duration_seconds_sum{route=\"/metrics\",method=\"GET\"} 0.9\n\
        person_api_http_request_duration_seconds_count{route=\"/metrics\",method=\"GET\"} 4\n\
        person_api_store_operation_duration_seconds_sum{operation=\"person.get\"} 0.3\n\
        person_api_store_operation_duration_seconds_count{operation=\"person.get\"} 1100\n\
        person_api_store_operation_duration_seconds_sum{operation=\"audit.append\"} 2.5\n\
        person_api_store_operation_duration_seconds_count{operation=\"audit.append\"} 1000\n";

    #[test]
    fn the_profile_is_the_difference_of_two_scrapes_without_the_scrapes_themselves() {
        let profile = Profile::between(&Scrape::parse(BEFORE), &Scrape::parse(AFTER));
        assert!((profile.requests - 1000.0).abs() < 1e-9);
        assert!((profile.request_seconds - 3.0).abs() < 1e-9);
        assert_eq!(profile.operations.len(), 2);
        let summary = profile.summary();
        assert_eq!(
            summary,
            "server 3.00 ms/request; store calls per request: `audit.append` 1.00 × 2.50 ms, `person.get` 1.00 × 0.20 ms"
        );
    }

    #[test]
    fn no_metrics_make_an_empty_profile() {
        let profile = Profile::between(&Scrape::default(), &Scrape::default());
        assert_eq!(profile.summary(), "no server metrics");
    }
}
