//! The link registry (SPEC §8): which other services a person response links to, for whom, and only while they
//! are up.
//!
//! Each [`LinkService`] names a `rel`, an href template (`{personId}`, `{referenceId}`), the permission a caller
//! needs to see the link, optionally the reference `system` it applies to, and a health URL. A person response's
//! `links` holds, for every service the caller may see and that is available, one link (or one per reference of
//! the service's system when the template uses `{referenceId}`).
//!
//! Availability is decided in the background: a prober (the server's `links` task, or any code of a host
//! application) calls [`Availability::record`] with each health-check outcome, and requests only read the cached
//! state. A request never waits on a probe. The state starts `unknown` (links hidden), the first probe decides
//! it, and after that a service goes `down` after `unhealthy_threshold` consecutive failures and back `up` after
//! `healthy_threshold` consecutive successes, so one lost probe does not make links flicker. A service without a
//! health URL is always available.
//!
//! This module knows nothing of HTTP clients: probing is the composition root's business.

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use person_core::access::{Permission, Permissions};
use person_core::api::Link;
use person_core::person::Person;
use person_core::reference::ReferenceSystem;
use serde::Serialize;
use utoipa::ToSchema;

use crate::metrics::MetricFamily;

/// The placeholder of the person's id in an href template.
pub const PERSON_ID_PLACEHOLDER: &str = "{personId}";

/// The placeholder of a reference's id in an href template.
pub const REFERENCE_ID_PLACEHOLDER: &str = "{referenceId}";

/// One registered service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkService {
    /// The link relation (`tenure`, `notes` …): 1–64 characters of lowercase letters, digits, `-`, `_`, `.`;
    /// unique in the registry.
    pub rel: String,
    /// Absolute `http(s)` URL template; `{personId}` and `{referenceId}` are replaced (percent-encoded).
    pub href: String,
    /// What a caller must hold to see the link.
    pub permission: Permission,
    /// The reference system the service holds records of: the link is shown only for persons holding a
    /// reference of it. Required when `href` uses `{referenceId}`.
    pub system: Option<ReferenceSystem>,
    /// The link's `type` (Hackney clients expect the HTTP method, `GET`).
    pub link_type: String,
    /// The URL whose `2xx` answer means the service is up; `None`: always considered up.
    pub health_url: Option<String>,
}

/// A registry entry that cannot be used (refused at start, naming the entry).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkConfigError {
    /// The rel breaks the naming rule.
    #[error("link rel `{0}`: a rel is 1 to 64 lowercase letters, digits, '-', '_' or '.'")]
    Rel(String),
    /// Two entries share a rel.
    #[error("link rel `{0}` is registered twice")]
    DuplicateRel(String),
    /// The href or health URL is not an absolute http(s) URL, or has an unknown `{placeholder}`.
    #[error("link `{rel}`: {problem}")]
    Url {
        /// The entry.
        rel: String,
        /// What is wrong.
        problem: String,
    },
    /// `{referenceId}` without a `system` to take the references from.
    #[error("link `{0}`: an href using {{referenceId}} needs a `system`")]
    MissingSystem(String),
    /// A threshold or interval of zero.
    #[error("link probes: {0} must be at least 1")]
    Threshold(&'static str),
}

impl LinkService {
    fn validate(&self) -> Result<(), LinkConfigError> {
        let rel_ok = (1..=64).contains(&self.rel.len())
            && self.rel.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
        if !rel_ok {
            return Err(LinkConfigError::Rel(self.rel.clone()));
        }
        let url_error = |problem: String| LinkConfigError::Url { rel: self.rel.clone(), problem };
        check_absolute(&self.href).map_err(|p| url_error(format!("href {p}")))?;
        let mut rest = self.href.as_str();
        while let Some(start) = rest.find('{') {
            let end = rest[start..].find('}').ok_or_else(|| url_error("href has an unclosed `{`".to_owned()))?;
            let placeholder = &rest[start..start + end + 1];
            if placeholder != PERSON_ID_PLACEHOLDER && placeholder != REFERENCE_ID_PLACEHOLDER {
                return Err(url_error(format!(
                    "href has an unknown placeholder {placeholder}: use {PERSON_ID_PLACEHOLDER} or \
                     {REFERENCE_ID_PLACEHOLDER}"
                )));
            }
            rest = &rest[start + end + 1..];
        }
        if self.href.contains(REFERENCE_ID_PLACEHOLDER) && self.system.is_none() {
            return Err(LinkConfigError::MissingSystem(self.rel.clone()));
        }
        if let Some(health) = &self.health_url {
            check_absolute(health).map_err(|p| url_error(format!("health URL {p}")))?;
        }
        Ok(())
    }

    /// The links of this service for `person` (permission and availability not considered).
    fn links_for(&self, person: &Person) -> Vec<Link> {
        let link = |href: String| Link { rel: self.rel.clone(), href, link_type: self.link_type.clone() };
        let with_person = self.href.replace(PERSON_ID_PLACEHOLDER, &person.id.to_string());
        let Some(system) = &self.system else { return vec![link(with_person)] };
        let mut held = person.references.iter().filter(|r| r.system == *system).peekable();
        if !self.href.contains(REFERENCE_ID_PLACEHOLDER) {
            return if held.peek().is_some() { vec![link(with_person)] } else { Vec::new() };
        }
        held.map(|r| link(with_person.replace(REFERENCE_ID_PLACEHOLDER, &percent_encode(r.id.as_str())))).collect()
    }
}

fn check_absolute(url: &str) -> Result<(), String> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') && !url.chars().any(char::is_whitespace) => Ok(()),
        _ => Err("must be an absolute http:// or https:// URL without spaces".to_owned()),
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so a value (a reference id may hold `/`, `#`,
/// `?` or spaces; a search criterion anything) stays one path segment or query component.
pub(crate) fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// When a service changes state: consecutive probe outcomes needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeThresholds {
    /// Consecutive successes that bring a `down` service back `up`.
    pub healthy: u32,
    /// Consecutive failures that take an `up` service `down`.
    pub unhealthy: u32,
}

impl Default for ProbeThresholds {
    fn default() -> Self {
        Self { healthy: 2, unhealthy: 3 }
    }
}

/// A service's availability as last decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LinkState {
    /// Not probed yet (links hidden).
    Unknown,
    /// Available (links shown).
    Up,
    /// Unavailable (links hidden).
    Down,
}

const UNKNOWN: u8 = 0;
const UP: u8 = 1;
const DOWN: u8 = 2;

#[derive(Debug, Default)]
struct ProbeHistory {
    consecutive_successes: u32,
    consecutive_failures: u32,
    last_checked: Option<DateTime<Utc>>,
    last_failure: Option<String>,
}

#[derive(Debug)]
struct AvailabilityInner {
    thresholds: ProbeThresholds,
    /// Read by every request without locking.
    state: AtomicU8,
    successes: AtomicU64,
    failures: AtomicU64,
    /// Microseconds of the last probe.
    last_probe_micros: AtomicU64,
    history: Mutex<ProbeHistory>,
}

/// The shared, cached availability of one service: written by its prober, read by requests.
#[derive(Debug, Clone)]
pub struct Availability(Arc<AvailabilityInner>);

impl Availability {
    fn new(thresholds: ProbeThresholds, state: u8) -> Self {
        Self(Arc::new(AvailabilityInner {
            thresholds,
            state: AtomicU8::new(state),
            successes: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            last_probe_micros: AtomicU64::new(0),
            history: Mutex::new(ProbeHistory::default()),
        }))
    }

    /// The state now.
    #[must_use]
    pub fn state(&self) -> LinkState {
        match self.0.state.load(Ordering::Acquire) {
            UP => LinkState::Up,
            DOWN => LinkState::Down,
            _ => LinkState::Unknown,
        }
    }

    /// Records one probe: `Ok(())` for a healthy answer, `Err(why)` otherwise (`why` is shown on `/readyz`; it
    /// must not hold secrets). Applies the thresholds; the first probe decides an `unknown` state at once.
    pub fn record(&self, outcome: Result<(), String>, took: Duration, at: DateTime<Utc>) {
        let inner = &self.0;
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        inner.last_probe_micros.store(micros, Ordering::Relaxed);
        let Ok(mut history) = inner.history.lock() else { return };
        history.last_checked = Some(at);
        let current = inner.state.load(Ordering::Acquire);
        let next = match outcome {
            Ok(()) => {
                inner.successes.fetch_add(1, Ordering::Relaxed);
                history.consecutive_successes = history.consecutive_successes.saturating_add(1);
                history.consecutive_failures = 0;
                match current {
                    DOWN if history.consecutive_successes < inner.thresholds.healthy => DOWN,
                    _ => UP,
                }
            }
            Err(why) => {
                inner.failures.fetch_add(1, Ordering::Relaxed);
                history.consecutive_failures = history.consecutive_failures.saturating_add(1);
                history.consecutive_successes = 0;
                history.last_failure = Some(why);
                match current {
                    UP if history.consecutive_failures < inner.thresholds.unhealthy => UP,
                    _ => DOWN,
                }
            }
        };
        if next != current {
            inner.state.store(next, Ordering::Release);
        }
    }

    fn is_up(&self) -> bool {
        self.0.state.load(Ordering::Acquire) == UP
    }
}

/// A registered service with its availability.
#[derive(Debug, Clone)]
pub struct RegisteredLink {
    /// The service.
    pub service: LinkService,
    /// Its cached availability (feed it with [`Availability::record`]).
    pub availability: Availability,
}

/// One service's state as `/readyz` shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LinkStatus {
    /// The service's rel.
    pub rel: String,
    /// `unknown`, `up` or `down`.
    pub state: LinkState,
    /// Whether the service is probed (it has a health URL).
    pub probed: bool,
    /// When it was last probed.
    pub last_checked: Option<DateTime<Utc>>,
    /// Why the last failed probe failed (status code, timeout, connection refused).
    pub last_failure: Option<String>,
}

/// The registered services; cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct LinkRegistry {
    entries: Arc<[RegisteredLink]>,
}

impl LinkRegistry {
    /// A registry of `services`, each starting `unknown` (or `up` when it has no health URL).
    ///
    /// # Errors
    /// [`LinkConfigError`] for the first entry that cannot be used.
    pub fn new(services: Vec<LinkService>, thresholds: ProbeThresholds) -> Result<Self, LinkConfigError> {
        if thresholds.healthy == 0 {
            return Err(LinkConfigError::Threshold("healthy_threshold"));
        }
        if thresholds.unhealthy == 0 {
            return Err(LinkConfigError::Threshold("unhealthy_threshold"));
        }
        let mut entries: Vec<RegisteredLink> = Vec::with_capacity(services.len());
        for service in services {
            service.validate()?;
            if entries.iter().any(|e| e.service.rel == service.rel) {
                return Err(LinkConfigError::DuplicateRel(service.rel));
            }
            let initial = if service.health_url.is_some() { UNKNOWN } else { UP };
            entries.push(RegisteredLink { availability: Availability::new(thresholds, initial), service });
        }
        Ok(Self { entries: entries.into() })
    }

    /// Every registered service (what a prober probes).
    #[must_use]
    pub fn entries(&self) -> &[RegisteredLink] {
        &self.entries
    }

    /// The links `person` shows to a caller holding `permissions`: services the caller may see, that are up,
    /// and that apply to the person. Reads cached state only.
    #[must_use]
    pub fn links_for(&self, person: &Person, permissions: &Permissions) -> Vec<Link> {
        self.entries
            .iter()
            .filter(|e| permissions.allows(&e.service.permission) && e.availability.is_up())
            .flat_map(|e| e.service.links_for(person))
            .collect()
    }

    /// Each service's state, for `/readyz`.
    #[must_use]
    pub fn statuses(&self) -> Vec<LinkStatus> {
        self.entries
            .iter()
            .map(|e| {
                let (last_checked, last_failure) = match e.availability.0.history.lock() {
                    Ok(h) => (h.last_checked, h.last_failure.clone()),
                    Err(_) => (None, None),
                };
                LinkStatus {
                    rel: e.service.rel.clone(),
                    state: e.availability.state(),
                    probed: e.service.health_url.is_some(),
                    last_checked,
                    last_failure,
                }
            })
            .collect()
    }

    /// Appends the probe metrics in Prometheus text format: `person_api_link_up`,
    /// `person_api_link_probes_total{outcome}` and `person_api_link_probe_duration_seconds` (last probe).
    pub fn write_metrics(&self, out: &mut String) {
        if self.entries.is_empty() {
            return;
        }
        let mut gauge = MetricFamily::new(out, "person_api_link_up", "gauge", "1 when the linked service is up");
        for e in self.entries.iter() {
            gauge.sample(&[("rel", &e.service.rel)], u64::from(e.availability.is_up()));
        }
        let mut probes = MetricFamily::new(out, "person_api_link_probes_total", "counter", "Health probes by outcome");
        for e in self.entries.iter() {
            let inner = &e.availability.0;
            probes.sample(&[("rel", &e.service.rel), ("outcome", "success")], inner.successes.load(Ordering::Relaxed));
            probes.sample(&[("rel", &e.service.rel), ("outcome", "failure")], inner.failures.load(Ordering::Relaxed));
        }
        let help = "Duration of the last health probe";
        let mut duration = MetricFamily::new(out, "person_api_link_probe_duration_seconds", "gauge", help);
        for e in self.entries.iter() {
            let micros = e.availability.0.last_probe_micros.load(Ordering::Relaxed);
            duration.sample_f64(&[("rel", &e.service.rel)], Duration::from_micros(micros).as_secs_f64());
        }
    }
}

impl fmt::Display for LinkState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unknown => "unknown",
            Self::Up => "up",
            Self::Down => "down",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use person_core::reference::CrossReference;
    use person_core::testkit::fixtures::{full_person, person_id, reference};

    fn service(rel: &str, href: &str, system: Option<&str>) -> LinkService {
        LinkService {
            rel: rel.to_owned(),
            href: href.to_owned(),
            permission: Permission::PersonsRead,
            system: system.map(|s| ReferenceSystem::parse(s).unwrap()),
            link_type: "GET".to_owned(),
            health_url: Some("http://127.0.0.1:1/health".to_owned()),
        }
    }

    fn readers() -> Permissions {
        [Permission::PersonsRead].into_iter().collect()
    }

    fn now() -> DateTime<Utc> {
        Utc::now()
    }

    #[test]
    fn first_probe_decides_then_thresholds_hold_the_state() {
        let registry = LinkRegistry::new(
            vec![service("notes", "https://notes.example/{personId}", None)],
            ProbeThresholds { healthy: 2, unhealthy: 3 },
        )
        .unwrap();
        let a = &registry.entries()[0].availability;
        assert_eq!(a.state(), LinkState::Unknown);
        a.record(Ok(()), Duration::from_millis(3), now());
        assert_eq!(a.state(), LinkState::Up);
        a.record(Err("500".into()), Duration::ZERO, now());
        a.record(Err("500".into()), Duration::ZERO, now());
        assert_eq!(a.state(), LinkState::Up, "two failures are below the unhealthy threshold");
        a.record(Err("500".into()), Duration::ZERO, now());
        assert_eq!(a.state(), LinkState::Down);
        a.record(Ok(()), Duration::ZERO, now());
        assert_eq!(a.state(), LinkState::Down, "one success is below the healthy threshold");
        a.record(Ok(()), Duration::ZERO, now());
        assert_eq!(a.state(), LinkState::Up);
        let status = &registry.statuses()[0];
        assert_eq!(status.last_failure.as_deref(), Some("500"));
        assert!(status.probed);
    }

    #[test]
    fn links_need_the_permission_an_up_service_and_a_reference_of_the_system() {
        let registry = LinkRegistry::new(
            vec![
                service("tenure", "https://tenure.example/api/v1/tenures/{referenceId}", Some("tenure")),
                LinkService {
                    permission: Permission::EqualityRead,
                    ..service("notes", "https://notes.example/notes?targetId={personId}", None)
                },
                service("repairs", "https://repairs.example/persons/{personId}", Some("repairs")),
            ],
            ProbeThresholds::default(),
        )
        .unwrap();
        let mut person = full_person(person_id());
        person.references.push(CrossReference::parse("tenure:a/b c").unwrap());
        person.references.sort();
        assert!(registry.links_for(&person, &Permissions::all()).is_empty(), "unknown services show no links");
        for entry in registry.entries() {
            entry.availability.record(Ok(()), Duration::ZERO, now());
        }
        let links = registry.links_for(&person, &readers());
        let hrefs: Vec<&str> = links.iter().map(|l| l.href.as_str()).collect();
        assert_eq!(
            hrefs,
            vec![
                format!("https://tenure.example/api/v1/tenures/a%2Fb%20c"),
                format!("https://tenure.example/api/v1/tenures/t-{}", person.id),
            ],
            "one tenure link per tenure reference, encoded; no notes link without equality:read; no repairs \
             link without a repairs reference"
        );
        assert!(links.iter().all(|l| l.rel == "tenure" && l.link_type == "GET"));
        let admin_links = registry.links_for(&person, &Permissions::all());
        assert!(admin_links.iter().any(|l| l.href == format!("https://notes.example/notes?targetId={}", person.id)));
        person.references.push(reference("repairs", "r1"));
        assert!(registry.links_for(&person, &readers()).iter().any(|l| l.rel == "repairs"));
    }

    #[test]
    fn bad_entries_are_refused_naming_the_problem() {
        let bad = |s: LinkService| LinkRegistry::new(vec![s], ProbeThresholds::default()).unwrap_err();
        assert!(matches!(bad(service("Tenure", "https://x", None)), LinkConfigError::Rel(_)));
        assert!(matches!(bad(service("t", "/relative/{personId}", None)), LinkConfigError::Url { .. }));
        assert!(matches!(bad(service("t", "https://x/{id}", None)), LinkConfigError::Url { .. }));
        assert!(matches!(bad(service("t", "https://x/{referenceId}", None)), LinkConfigError::MissingSystem(_)));
        let twice = vec![service("t", "https://x", None), service("t", "https://y", None)];
        assert!(matches!(LinkRegistry::new(twice, ProbeThresholds::default()), Err(LinkConfigError::DuplicateRel(_))));
        let zero = ProbeThresholds { healthy: 0, unhealthy: 1 };
        assert!(LinkRegistry::new(Vec::new(), zero).is_err());
    }

    #[test]
    fn a_service_without_health_url_is_always_up_and_metrics_are_prometheus_text() {
        let mut s = service("notes", "https://notes.example/{personId}", None);
        s.health_url = None;
        let registry = LinkRegistry::new(vec![s], ProbeThresholds::default()).unwrap();
        assert_eq!(registry.links_for(&full_person(person_id()), &readers()).len(), 1);
        let mut text = String::new();
        registry.write_metrics(&mut text);
        assert!(text.contains("# TYPE person_api_link_up gauge\nperson_api_link_up{rel=\"notes\"} 1\n"), "{text}");
        assert!(text.contains("person_api_link_probes_total{rel=\"notes\",outcome=\"failure\"} 0"), "{text}");
    }
}
