//! The event relay in the server (SPEC §9): built from `[relay]` over the opened store, run as a background task
//! while the server serves, and stopped at graceful shutdown before the store closes. Its metrics join `/metrics`
//! as `person_api_relay_*`.
//!
//! The relay itself (lease, batching, retries) lives in `person-relay`; this module only composes it.

use std::sync::Arc;

use person_core::ports::Repositories;
use person_http::metrics::{MetricFamily, MetricsSource};
use person_relay::{Relay, RelayConfig, RelayHandle, RelayMetrics, SnsOptions, SnsPublisher, SnsSetupError};

use crate::config::RelaySettings;

/// Starts the relay when `settings.enabled`, over `repos` (the store's feed and relay state).
///
/// # Errors
/// [`SnsSetupError`] when the topic cannot be used (configuration checks it first, so only for a `Config`
/// built by hand).
pub async fn start(settings: &RelaySettings, repos: &Repositories) -> Result<Option<RelayHandle>, SnsSetupError> {
    let Some(topic_arn) = settings.topic_arn.as_ref().filter(|_| settings.enabled) else {
        return Ok(None);
    };
    let options = SnsOptions {
        region: settings.region.clone(),
        endpoint: settings.endpoint.clone(),
        ..SnsOptions::new(topic_arn.clone())
    };
    let publisher = SnsPublisher::connect(&options).await?;
    let config = RelayConfig {
        batch_size: settings.batch_size,
        poll_interval: settings.poll_interval,
        lease_ttl: settings.lease_ttl,
        backoff_base: settings.backoff_base,
        backoff_max: settings.backoff_max,
        ..RelayConfig::default()
    };
    let relay = Relay::new(repos, Arc::new(publisher), config);
    tracing::info!(
        topic = %topic_arn,
        fifo = topic_arn.ends_with(".fifo"),
        holder = %relay.holder(),
        "event relay started"
    );
    Ok(Some(relay.spawn()))
}

/// The relay's metrics as `/metrics` families.
#[derive(Debug, Clone)]
pub struct RelayMetricsSource(pub RelayMetrics);

impl MetricsSource for RelayMetricsSource {
    fn write_metrics(&self, out: &mut String) {
        let m = self.0.snapshot();
        let gauge = |out: &mut String, name: &'static str, help: &str, value: u64| {
            MetricFamily::new(out, name, "gauge", help).sample(&[], value);
        };
        let counter = |out: &mut String, name: &'static str, help: &str, value: u64| {
            MetricFamily::new(out, name, "counter", help).sample(&[], value);
        };
        gauge(
            out,
            "person_api_relay_leader",
            "1 while this instance holds the relay lease and publishes the event feed",
            u64::from(m.leader),
        );
        gauge(
            out,
            "person_api_relay_position",
            "Feed position up to which the broker acknowledged every event",
            m.position,
        );
        gauge(out, "person_api_relay_feed_head", "Highest feed position this instance has read", m.feed_head);
        gauge(out, "person_api_relay_lag_events", "Events read from the feed but not yet acknowledged", m.lag_events);
        MetricFamily::new(
            out,
            "person_api_relay_lag_seconds",
            "gauge",
            "Age of the oldest event read from the feed but not yet acknowledged (0 when caught up)",
        )
        .sample_f64(&[], m.lag.as_secs_f64());
        counter(
            out,
            "person_api_relay_events_published_total",
            "Events the broker acknowledged (copies after a crash or a takeover included)",
            m.events_published,
        );
        counter(
            out,
            "person_api_relay_publish_failures_total",
            "Publish attempts that acknowledged nothing (each is retried with backoff)",
            m.publish_failures,
        );
        counter(
            out,
            "person_api_relay_lease_acquisitions_total",
            "Times this instance took the relay lease",
            m.lease_acquisitions,
        );
        counter(
            out,
            "person_api_relay_lease_losses_total",
            "Times this instance lost the relay lease while relaying",
            m.lease_losses,
        );
        if let Some(at) = m.last_success {
            #[expect(
                clippy::cast_precision_loss,
                reason = "milliseconds since 1970 fit an f64 exactly until year 287396"
            )]
            let seconds = at.timestamp_millis() as f64 / 1000.0;
            MetricFamily::new(
                out,
                "person_api_relay_last_success_timestamp_seconds",
                "gauge",
                "When the relay last published or found the feed caught up (Unix time)",
            )
            .sample_f64(&[], seconds);
        }
    }
}
