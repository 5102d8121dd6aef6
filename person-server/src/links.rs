//! The health prober of the link registry: one background task per linked service with a health URL, probing it
//! every `interval` with a `timeout` and recording each outcome in the registry's cached availability.
//!
//! Requests never wait on this: they read the cached state (`person_http::links`). A probe counts as healthy on
//! any `2xx` answer; any other status, a connection failure or the timeout counts as a failure. State changes are
//! logged (rel and state only: health URLs may hold tokens and are never logged).

use std::time::{Duration, Instant};

use person_http::links::{Availability, LinkRegistry, LinkState};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::config::LinkProbes;

/// The running probe tasks; dropping it (or [`Probes::stop`]) stops them.
#[derive(Debug, Default)]
pub struct Probes {
    tasks: Vec<JoinHandle<()>>,
}

impl Probes {
    /// Stops every probe task (at shutdown).
    pub fn stop(&mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }
}

impl Drop for Probes {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts one probe task per service of `registry` that has a health URL.
///
/// # Errors
/// The HTTP client cannot be built (TLS set-up).
pub fn start(registry: &LinkRegistry, settings: LinkProbes) -> Result<Probes, reqwest::Error> {
    let client = reqwest::Client::builder()
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout)
        .user_agent(concat!("person-api/", env!("CARGO_PKG_VERSION"), " link-probe"))
        .build()?;
    let mut probes = Probes::default();
    for entry in registry.entries() {
        let Some(url) = entry.service.health_url.clone() else { continue };
        let (client, availability, rel) = (client.clone(), entry.availability.clone(), entry.service.rel.clone());
        probes.tasks.push(tokio::spawn(probe_forever(client, url, availability, rel, settings)));
    }
    Ok(probes)
}

async fn probe_forever(
    client: reqwest::Client,
    url: String,
    availability: Availability,
    rel: String,
    settings: LinkProbes,
) {
    let mut ticks = tokio::time::interval(settings.interval);
    // A probe slower than the interval delays the next one instead of firing a burst to catch up.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let before = availability.state();
        let started = Instant::now();
        let outcome = probe(&client, &url, settings.timeout).await;
        let took = started.elapsed();
        let failure = outcome.as_ref().err().cloned();
        availability.record(outcome, took, chrono::Utc::now());
        let after = availability.state();
        if after != before {
            match after {
                LinkState::Up => tracing::info!(rel, state = %after, "linked service is available"),
                _ => tracing::warn!(rel, state = %after, failure, "linked service is unavailable"),
            }
        }
    }
}

/// One health check: `Ok` on a `2xx` answer within `timeout`, else why not (no URL, no body: they may hold
/// secrets or personal data).
async fn probe(client: &reqwest::Client, url: &str, timeout: Duration) -> Result<(), String> {
    match tokio::time::timeout(timeout, client.get(url).send()).await {
        Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
        Ok(Err(e)) if e.is_timeout() => Err(format!("no answer within {} ms", timeout.as_millis())),
        Ok(Err(e)) if e.is_connect() => Err("connection failed".to_owned()),
        Ok(Err(_)) => Err("request failed".to_owned()),
        Ok(Ok(response)) if response.status().is_success() => Ok(()),
        Ok(Ok(response)) => Err(format!("status {}", response.status().as_u16())),
    }
}
