//! The relay when things go wrong, against a real SNS/SQS-compatible server (moto): a relay that dies is
//! resumed by another without losing events, two instances never relay at once, and a failing broker is
//! retried without skipping anything.

#[expect(dead_code, reason = "each test crate uses a different part of the shared helpers")]
mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use common::{PATIENCE, World, eventually, quick_config};
use person_core::FeedEntry;
use person_relay::testkit::{self, Received, TestBroker};
use person_relay::{PublishError, Publisher, Relay, RelayConfig, RelayMetrics, SnsPublisher};
use tokio::sync::Semaphore;

/// Publishes only as many times as the test allows (one permit per call).
struct Gated {
    inner: Arc<dyn Publisher>,
    permits: Arc<Semaphore>,
}

#[async_trait]
impl Publisher for Gated {
    fn max_batch(&self) -> usize {
        self.inner.max_batch()
    }

    async fn publish(&self, entries: &[FeedEntry]) -> Result<usize, PublishError> {
        let permit = self.permits.acquire().await.map_err(|e| PublishError::Broker(Box::new(e)))?;
        permit.forget();
        self.inner.publish(entries).await
    }
}

/// Fails its first `failures` calls, then acknowledges only half of the next `short` batches, then behaves.
struct Flaky {
    inner: Arc<dyn Publisher>,
    calls: AtomicUsize,
    failures: usize,
    short: usize,
}

#[async_trait]
impl Publisher for Flaky {
    fn max_batch(&self) -> usize {
        self.inner.max_batch()
    }

    async fn publish(&self, entries: &[FeedEntry]) -> Result<usize, PublishError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        if call < self.failures {
            return Err(PublishError::Broker("injected failure".into()));
        }
        if call < self.failures + self.short {
            return self.inner.publish(&entries[..entries.len().div_ceil(2)]).await;
        }
        self.inner.publish(entries).await
    }
}

/// The distinct event ids among `received`.
fn ids(received: &[Received]) -> HashSet<String> {
    received.iter().filter_map(Received::event_id).collect()
}

/// The event ids of `feed`.
fn feed_ids(feed: &[FeedEntry]) -> HashSet<String> {
    feed.iter().map(|entry| entry.event.id.to_string()).collect()
}

/// Receives until every id of `wanted` arrived; returns everything received.
async fn receive_all(broker: &TestBroker, wanted: &HashSet<String>) -> Vec<Received> {
    broker.receive_until(PATIENCE, |received| wanted.is_subset(&ids(received))).await
}

#[tokio::test]
async fn a_new_relay_resumes_where_an_aborted_one_stopped_and_loses_nothing() {
    let Some(endpoint) = testkit::endpoint() else { return };
    let broker = TestBroker::create(&endpoint, false).await;
    let world = World::new();
    world.create_many(80).await;
    let feed = world.feed().await;

    // Three publishes go through; the fourth waits for a permit that never comes, and the relay dies there.
    let permits = Arc::new(Semaphore::new(3));
    let gated = Gated { inner: Arc::new(broker.publisher()), permits };
    let config = RelayConfig { batch_size: 100, ..quick_config("sns") };
    let first = Relay::new(&world.repos, Arc::new(gated), config).spawn();
    let metrics = first.metrics();
    assert!(eventually(async || metrics.snapshot().events_published == 30).await, "three batches published");
    first.abort();
    let stopped_at = world.relay_state("sns").await.expect("the relay ran").position;
    assert_eq!(stopped_at, feed[29].position, "the position of the last acknowledged event is recorded");

    let second = Relay::new(&world.repos, Arc::new(broker.publisher()), quick_config("sns")).spawn();
    let received = receive_all(&broker, &feed_ids(&feed)).await;
    let head = feed.last().unwrap().position;
    let resumed = second.metrics();
    assert!(eventually(async || resumed.snapshot().position == head).await, "the new relay reaches the head");
    second.shutdown().await;

    assert!(feed_ids(&feed).is_subset(&ids(&received)), "every event arrived at least once");
    assert!(
        received.len() <= feed.len() + 10,
        "the new relay resumed at the stored position, not at the start: {} messages for {} events",
        received.len(),
        feed.len()
    );
    assert_eq!(world.relay_state("sns").await.unwrap().position, head);
}

/// Samples two relays' leadership until told to stop: (samples taken, samples where both led).
fn sample_leaders(a: RelayMetrics, b: RelayMetrics, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<(u64, u64)> {
    tokio::spawn(async move {
        let (mut samples, mut both) = (0, 0);
        let mut ticks = tokio::time::interval(Duration::from_millis(2));
        while !stop.load(Ordering::SeqCst) {
            ticks.tick().await;
            samples += 1;
            if a.snapshot().leader && b.snapshot().leader {
                both += 1;
            }
        }
        (samples, both)
    })
}

#[tokio::test]
async fn of_two_relays_on_one_store_one_leads_and_the_other_takes_over_when_it_dies() {
    let Some(endpoint) = testkit::endpoint() else { return };
    let broker = TestBroker::create(&endpoint, false).await;
    let world = World::new();
    let start = || Some(Relay::new(&world.repos, Arc::new(broker.publisher()), quick_config("sns")).spawn());
    let mut relays = [start(), start()];
    let metrics: Vec<RelayMetrics> = relays.iter().flatten().map(|relay| relay.metrics()).collect();
    let stop_sampling = Arc::new(AtomicBool::new(false));
    let sampler = sample_leaders(metrics[0].clone(), metrics[1].clone(), stop_sampling.clone());

    world.create_many(20).await;
    let before = world.feed().await;
    receive_all(&broker, &feed_ids(&before)).await;
    assert!(
        eventually(async || metrics[0].snapshot().leader != metrics[1].snapshot().leader).await,
        "exactly one relay leads"
    );
    let leader = usize::from(metrics[1].snapshot().leader);
    let standby = 1 - leader;
    relays[leader].take().unwrap().abort();

    for n in 20..40 {
        world.create(n).await;
    }
    let feed = world.feed().await;
    let after: HashSet<String> = feed_ids(&feed).difference(&feed_ids(&before)).cloned().collect();
    let received = receive_all(&broker, &after).await;
    assert!(after.is_subset(&ids(&received)), "the events written after the leader died arrived");
    let head = feed.last().unwrap().position;
    assert!(
        eventually(async || metrics[standby].snapshot().leader && metrics[standby].snapshot().position == head).await,
        "the standby took over and reached the head"
    );

    stop_sampling.store(true, Ordering::SeqCst);
    let (samples, both) = sampler.await.unwrap();
    assert!(samples > 0);
    assert_eq!(both, 0, "both relays reported themselves leader in {both} of {samples} samples");
    assert!(metrics[standby].snapshot().lease_acquisitions >= 1);
    relays[standby].take().unwrap().shutdown().await;
}

#[tokio::test]
async fn publish_failures_are_counted_and_retried_and_nothing_is_skipped() {
    let Some(endpoint) = testkit::endpoint() else { return };
    let broker = TestBroker::create(&endpoint, false).await;
    let world = World::new();
    world.create_many(25).await;
    let feed = world.feed().await;

    let flaky = Flaky { inner: Arc::new(broker.publisher()), calls: AtomicUsize::new(0), failures: 3, short: 2 };
    let relay = Relay::new(&world.repos, Arc::new(flaky), quick_config("sns")).spawn();
    let metrics = relay.metrics();
    let received = receive_all(&broker, &feed_ids(&feed)).await;
    let head = feed.last().unwrap().position;
    assert!(eventually(async || metrics.snapshot().position == head).await, "the relay reaches the head");
    relay.shutdown().await;

    assert_eq!(received.len(), feed.len(), "every event exactly once: only acknowledged prefixes advanced");
    assert_eq!(ids(&received), feed_ids(&feed));
    let snapshot = metrics.snapshot();
    assert_eq!(snapshot.publish_failures, 3);
    assert_eq!(snapshot.events_published, 25);
}

#[tokio::test]
async fn a_publisher_on_a_closed_port_fails_without_moving_the_position_and_a_later_relay_publishes_everything() {
    let Some(endpoint) = testkit::endpoint() else { return };
    let broker = TestBroker::create(&endpoint, false).await;
    let world = World::new();
    world.create_many(10).await;
    let feed = world.feed().await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let nowhere = SnsPublisher::new(testkit::sns_client(&format!("http://127.0.0.1:{closed}"), 1), &broker.topic_arn);

    let failing = Relay::new(&world.repos, Arc::new(nowhere), quick_config("sns")).spawn();
    let metrics = failing.metrics();
    assert!(eventually(async || metrics.snapshot().publish_failures >= 3).await, "failures are counted");
    let snapshot = metrics.snapshot();
    assert!(snapshot.leader);
    assert_eq!((snapshot.position, snapshot.events_published), (0, 0));
    assert_eq!(snapshot.lag_events, feed.last().unwrap().position, "everything read is waiting");
    failing.shutdown().await;
    assert_eq!(world.relay_state("sns").await.unwrap().position, 0, "nothing was recorded as published");

    let working = Relay::new(&world.repos, Arc::new(broker.publisher()), quick_config("sns")).spawn();
    let received = receive_all(&broker, &feed_ids(&feed)).await;
    working.shutdown().await;
    assert_eq!(ids(&received), feed_ids(&feed));
}
