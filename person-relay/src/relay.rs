//! [`Relay`]: the loop that moves the event feed to the broker, at least once, one instance at a time.
//!
//! The relay's durable state is a lease and a position in the store ([`RelayRepository`]). An instance relays only
//! while it holds an unexpired lease; it reads the feed after the stored position, publishes, and records the
//! position of the last acknowledged event only after the broker acknowledged it. A crash between a publish and
//! that record makes the next holder publish those events again (at least once, never lost; consumers
//! de-duplicate on the event id). The lease is renewed every third of its time to live, also while a publish or a
//! backoff is under way; an instance that cannot renew it stops publishing before it lapses, so that two
//! instances never relay at once (given clocks that agree to well within the time to live).
//!
//! The relay knows the ports and the broker port only: no storage backend, no HTTP, no message bodies in logs.

use std::convert::Infallible;
use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use person_core::FeedEntry;
use person_core::ports::{PersonRepository, RelayError, RelayRepository, Repositories};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, sleep_until};
use uuid::Uuid;

use crate::backoff::Backoff;
use crate::metrics::RelayMetrics;
use crate::publisher::{PublishError, Publisher};

/// The name under which the SNS relay keeps its lease and position in the store.
pub const DEFAULT_RELAY_NAME: &str = "sns";

/// The shortest lease time to live the relay accepts (a shorter one is raised to it).
const MIN_LEASE_TTL: Duration = Duration::from_millis(300);

/// How the relay paces itself.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The relay's name in the store: relays with different names keep separate leases and positions (one per
    /// broker destination).
    pub name: String,
    /// How many events one feed read returns at most.
    pub batch_size: u32,
    /// How long to wait before reading the feed again when it had nothing new.
    pub poll_interval: Duration,
    /// How long a lease lasts without renewal: after a crash, another instance takes over within about this
    /// long. It is renewed every third of it.
    pub lease_ttl: Duration,
    /// The first delay before retrying a failed publish or feed read.
    pub backoff_base: Duration,
    /// The longest delay between retries.
    pub backoff_max: Duration,
    /// At shutdown, how long an in-flight publish may still take before it is abandoned (its events are then
    /// published again by the next holder).
    pub shutdown_grace: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            name: DEFAULT_RELAY_NAME.to_owned(),
            batch_size: 100,
            poll_interval: Duration::from_secs(1),
            lease_ttl: Duration::from_secs(30),
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// The event relay of one server instance. Build it, then [`Relay::spawn`] it (or `run` it on a task of your
/// own), and stop it with the [`RelayHandle`] at shutdown.
pub struct Relay {
    store: Arc<dyn RelayRepository>,
    feed: Arc<dyn PersonRepository>,
    publisher: Arc<dyn Publisher>,
    config: RelayConfig,
    ttl: TimeDelta,
    holder: String,
    metrics: RelayMetrics,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay").field("config", &self.config).field("holder", &self.holder).finish_non_exhaustive()
    }
}

/// Why an instance stopped relaying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The lease expired or another instance holds it: go back to standby.
    Lost,
    /// Shutdown was asked for.
    Stopped,
}

/// The lease as this instance holds it.
#[derive(Debug)]
struct Held {
    /// The position up to which the broker acknowledged every event (what the store is told).
    position: u64,
    /// When the lease lapses unless renewed (the time given to the store).
    valid_until: DateTime<Utc>,
    /// When to renew it next.
    renew_at: Instant,
}

impl Held {
    /// When the lease lapses, on the monotonic clock the timers use.
    fn deadline(&self) -> Instant {
        let left = (self.valid_until - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        Instant::now() + left
    }
}

/// The shutdown signal: `true` sent, or the sender gone.
#[derive(Debug, Clone)]
struct Stop(watch::Receiver<bool>);

impl Stop {
    fn requested(&self) -> bool {
        *self.0.borrow() || self.0.has_changed().is_err()
    }

    async fn wait(&self) {
        let mut receiver = self.0.clone();
        // An error means the sender is gone: nobody can ask any more, so that counts as asked.
        let _ = receiver.wait_for(|stop| *stop).await;
    }
}

impl Relay {
    /// A relay over the store's feed and relay state, publishing with `publisher`. Its holder id (how the lease
    /// names it) is unique to this instance.
    #[must_use]
    pub fn new(repos: &Repositories, publisher: Arc<dyn Publisher>, config: RelayConfig) -> Self {
        let mut config = config;
        config.lease_ttl = config.lease_ttl.max(MIN_LEASE_TTL);
        config.batch_size = config.batch_size.max(1);
        config.backoff_max = config.backoff_max.max(config.backoff_base);
        let ttl = TimeDelta::from_std(config.lease_ttl).unwrap_or(TimeDelta::days(1));
        let host = std::env::var("HOSTNAME").ok().filter(|h| !h.trim().is_empty());
        let holder = format!(
            "{}{}-{}",
            host.map(|h| format!("{h}-")).unwrap_or_default(),
            std::process::id(),
            Uuid::new_v4().simple()
        );
        Self {
            store: repos.relay.clone(),
            feed: repos.persons.clone(),
            publisher,
            config,
            ttl,
            holder,
            metrics: RelayMetrics::default(),
        }
    }

    /// How this instance is named in the lease.
    #[must_use]
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// The relay's metrics (a handle: it keeps counting after the relay is spawned).
    #[must_use]
    pub fn metrics(&self) -> RelayMetrics {
        self.metrics.clone()
    }

    /// Runs the relay on a new task; the handle stops it.
    #[must_use]
    pub fn spawn(self) -> RelayHandle {
        let (stop, receiver) = watch::channel(false);
        let metrics = self.metrics();
        let task = tokio::spawn(self.run(receiver));
        RelayHandle { stop, task, metrics }
    }

    /// Relays until `stop` turns `true` (or its sender is dropped): takes the lease when it is free, relays
    /// while holding it, goes back to standby when it is lost. On stop, waits up to
    /// [`RelayConfig::shutdown_grace`] for an in-flight publish, records the position, releases the lease (so
    /// another instance takes over at once) and returns.
    pub async fn run(self, stop: watch::Receiver<bool>) {
        let stop = Stop(stop);
        let standby = self.renew_interval();
        loop {
            if stop.requested() {
                return;
            }
            match self.acquire().await {
                Ok(Some(held)) => {
                    if self.lead(held, &stop).await == End::Stopped {
                        return;
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(relay = %self.config.name, error = %chain(&e), "taking the relay lease failed");
                }
            }
            tokio::select! {
                () = sleep(standby) => {}
                () = stop.wait() => return,
            }
        }
    }

    fn renew_interval(&self) -> Duration {
        self.config.lease_ttl / 3
    }

    async fn acquire(&self) -> Result<Option<Held>, person_core::StoreError> {
        let now = Utc::now();
        let Some(lease) = self.store.acquire_relay_lease(&self.config.name, &self.holder, now, self.ttl).await? else {
            return Ok(None);
        };
        self.metrics.lease_taken(lease.position, lease.expires_at);
        tracing::info!(
            relay = %self.config.name,
            holder = %self.holder,
            position = lease.position,
            "relay lease taken"
        );
        Ok(Some(Held {
            position: lease.position,
            valid_until: lease.expires_at,
            renew_at: Instant::now() + self.renew_interval(),
        }))
    }

    /// Relays while holding the lease; says why it stopped, after releasing the lease on shutdown.
    async fn lead(&self, mut held: Held, stop: &Stop) -> End {
        let Err(end) = self.relay_while_leader(&mut held, stop).await;
        match end {
            End::Lost => {
                self.metrics.lease_ended(true);
                tracing::info!(
                    relay = %self.config.name,
                    holder = %self.holder,
                    position = held.position,
                    "relay lease lost; standing by"
                );
            }
            End::Stopped => {
                // Best effort: the position is normally recorded already, unless the last record failed.
                let _ = self.renew(&mut held).await;
                match self.store.release_relay_lease(&self.config.name, &self.holder).await {
                    Ok(()) => tracing::info!(
                        relay = %self.config.name,
                        holder = %self.holder,
                        position = held.position,
                        "relay lease released"
                    ),
                    Err(e) => tracing::warn!(
                        relay = %self.config.name,
                        error = %chain(&e),
                        "releasing the relay lease failed; another instance takes over when it expires"
                    ),
                }
                self.metrics.lease_ended(false);
            }
        }
        end
    }

    async fn relay_while_leader(&self, held: &mut Held, stop: &Stop) -> Result<Infallible, End> {
        let mut backoff = Backoff::new(self.config.backoff_base, self.config.backoff_max);
        let max_batch = self.publisher.max_batch().max(1);
        loop {
            if stop.requested() {
                return Err(End::Stopped);
            }
            if Instant::now() >= held.renew_at {
                self.renew(held).await?;
            }
            let read = tokio::select! {
                read = self.feed.events_after(held.position, self.config.batch_size) => read,
                () = stop.wait() => return Err(End::Stopped),
            };
            let batch = match read {
                Ok(batch) => batch,
                Err(e) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(
                        relay = %self.config.name,
                        after = held.position,
                        retry_in_ms = delay.as_millis(),
                        error = %chain(&e),
                        "reading the event feed failed; retrying"
                    );
                    self.pause(held, delay, stop).await?;
                    continue;
                }
            };
            let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
                backoff.reset();
                self.metrics.caught_up();
                self.pause(held, self.config.poll_interval, stop).await?;
                continue;
            };
            self.metrics.read(last.position, first.event.date_time);
            self.publish_all(held, &batch, max_batch, &mut backoff, stop).await?;
        }
    }

    /// Publishes `batch` in calls of at most `max_batch`, recording the position after each acknowledgement and
    /// retrying what was not acknowledged until it is (or the lease is lost, or shutdown is asked for).
    async fn publish_all(
        &self,
        held: &mut Held,
        batch: &[FeedEntry],
        max_batch: usize,
        backoff: &mut Backoff,
        stop: &Stop,
    ) -> Result<(), End> {
        let mut done = 0;
        while done < batch.len() {
            if stop.requested() {
                return Err(End::Stopped);
            }
            let chunk = &batch[done..(done + max_batch).min(batch.len())];
            match self.publish_guarded(held, chunk, stop).await? {
                Ok(acknowledged) if acknowledged > 0 => {
                    done += acknowledged.min(chunk.len());
                    held.position = batch[done - 1].position;
                    let next = batch.get(done).map(|entry| entry.event.date_time);
                    self.metrics.published(acknowledged.min(chunk.len()), held.position, next);
                    backoff.reset();
                    self.renew(held).await?;
                }
                outcome => {
                    self.metrics.publish_failed();
                    let delay = backoff.next_delay();
                    let error = match outcome {
                        Err(e) => chain(&e),
                        Ok(_) => chain(&PublishError::NotAcknowledged),
                    };
                    tracing::warn!(
                        relay = %self.config.name,
                        events = chunk.len(),
                        first_position = chunk[0].position,
                        failures_in_a_row = backoff.failures(),
                        retry_in_ms = delay.as_millis(),
                        error = %error,
                        "publishing events failed; retrying"
                    );
                    self.pause(held, delay, stop).await?;
                }
            }
        }
        Ok(())
    }

    /// One publish, while keeping the lease renewed. Abandoned when the lease lapses (it could not be renewed)
    /// or [`RelayConfig::shutdown_grace`] after shutdown was asked for.
    async fn publish_guarded(
        &self,
        held: &mut Held,
        chunk: &[FeedEntry],
        stop: &Stop,
    ) -> Result<Result<usize, PublishError>, End> {
        let publish = self.publisher.publish(chunk);
        tokio::pin!(publish);
        let mut abandon_at: Option<Instant> = None;
        loop {
            let deadline = held.deadline();
            tokio::select! {
                result = &mut publish => return Ok(result),
                () = sleep_until(held.renew_at) => self.renew(held).await?,
                () = sleep_until(deadline) => return Err(End::Lost),
                () = stop.wait(), if abandon_at.is_none() => {
                    abandon_at = Some(Instant::now() + self.config.shutdown_grace);
                }
                () = sleep_until(abandon_at.unwrap_or(deadline)), if abandon_at.is_some() => {
                    tracing::info!(
                        relay = %self.config.name,
                        events = chunk.len(),
                        "abandoning an unacknowledged publish at shutdown; the next holder publishes it again"
                    );
                    return Err(End::Stopped);
                }
            }
        }
    }

    /// Waits `delay`, renewing the lease when due; returns early on shutdown.
    async fn pause(&self, held: &mut Held, delay: Duration, stop: &Stop) -> Result<(), End> {
        let until = Instant::now() + delay;
        loop {
            tokio::select! {
                () = sleep_until(until.min(held.renew_at)) => {}
                () = stop.wait() => return Err(End::Stopped),
            }
            if Instant::now() >= held.renew_at {
                self.renew(held).await?;
            }
            if Instant::now() >= until {
                return Ok(());
            }
        }
    }

    /// Records the position and renews the lease. A store failure is retried soon, until the lease lapses.
    async fn renew(&self, held: &mut Held) -> Result<(), End> {
        let now = Utc::now();
        match self.store.advance_relay(&self.config.name, &self.holder, held.position, now, self.ttl).await {
            Ok(()) => {
                held.valid_until = now + self.ttl;
                held.renew_at = Instant::now() + self.renew_interval();
                self.metrics.lease_renewed(held.valid_until);
                Ok(())
            }
            Err(RelayError::LeaseLost) => Err(End::Lost),
            Err(RelayError::Store(e)) => {
                if Utc::now() >= held.valid_until {
                    tracing::warn!(
                        relay = %self.config.name,
                        error = %chain(&e),
                        "renewing the relay lease failed until it lapsed"
                    );
                    return Err(End::Lost);
                }
                tracing::warn!(
                    relay = %self.config.name,
                    error = %chain(&e),
                    "recording the relay position failed; retrying"
                );
                held.renew_at = Instant::now() + self.config.lease_ttl / 10;
                Ok(())
            }
        }
    }
}

/// A running relay: its metrics, and the way to stop it.
#[derive(Debug)]
pub struct RelayHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    metrics: RelayMetrics,
}

impl RelayHandle {
    /// The running relay's metrics.
    #[must_use]
    pub fn metrics(&self) -> RelayMetrics {
        self.metrics.clone()
    }

    /// Stops the relay cleanly (see [`Relay::run`]) and waits until it has.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the event relay task failed");
        }
    }

    /// Stops the relay at once, without releasing its lease — what a crash does (tests use it).
    pub fn abort(self) {
        self.task.abort();
    }
}

/// An error and its sources, as one line for a log (`Display` only: never a `Debug` dump that could hold a
/// request).
fn chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
