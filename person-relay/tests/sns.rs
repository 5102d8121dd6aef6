//! The relay against a real SNS/SQS-compatible server (moto): what arrives on a subscribed queue is exactly the
//! feed, event by event, with the attributes and FIFO ids subscribers rely on.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use common::{PATIENCE, World, quick_config};
use person_core::EventType;
use person_relay::testkit::{self, Received, TestBroker};
use person_relay::{Relay, RelayHandle};

/// Starts a relay from `world`'s store to `broker`'s topic.
fn start(world: &World, broker: &TestBroker) -> RelayHandle {
    Relay::new(&world.repos, Arc::new(broker.publisher()), quick_config("sns")).spawn()
}

/// Receives until every event id of `world`'s feed arrived.
async fn receive_feed(world: &World, broker: &TestBroker) -> Vec<Received> {
    let expected = world.feed().await.len();
    broker
        .receive_until(PATIENCE, |received| {
            let mut ids: Vec<_> = received.iter().filter_map(Received::event_id).collect();
            ids.sort();
            ids.dedup();
            ids.len() >= expected
        })
        .await
}

#[tokio::test]
async fn created_updated_merged_and_deleted_events_arrive_exactly_as_the_feed_serialises_them() {
    let Some(endpoint) = testkit::endpoint() else { return };
    let broker = TestBroker::create(&endpoint, false).await;
    let world = World::new();
    let survivor = world.create(1).await;
    let duplicate = world.create(2).await;
    world.update(survivor, "Grace").await;
    world.merge(survivor, duplicate).await;
    world.delete(survivor).await;

    let relay = start(&world, &broker);
    let received = receive_feed(&world, &broker).await;
    relay.shutdown().await;

    let feed = world.feed().await;
    let types: Vec<EventType> = feed.iter().map(|entry| entry.event.event_type).collect();
    for wanted in [
        EventType::PersonCreatedEvent,
        EventType::PersonUpdatedEvent,
        EventType::PersonMergedEvent,
        EventType::PersonDeletedEvent,
    ] {
        assert!(types.contains(&wanted), "the feed holds a {wanted:?}: {types:?}");
    }
    let by_id: HashMap<String, &Received> = received.iter().filter_map(|r| Some((r.event_id()?, r))).collect();
    assert_eq!(by_id.len(), feed.len(), "one message per event");
    for entry in &feed {
        let message = by_id.get(&entry.event.id.to_string()).expect("every event of the feed arrived");
        assert_eq!(message.body, serde_json::to_string(&entry.event).unwrap(), "the body is the feed's event JSON");
        assert_eq!(message.event_type.as_deref(), Some(entry.event.event_type.as_str()));
        assert_eq!(message.group_id, None, "a standard topic has no message groups");
    }
}

#[tokio::test]
async fn a_fifo_topic_gets_the_person_as_message_group_and_the_event_as_deduplication_id() {
    let Some(endpoint) = testkit::endpoint() else { return };
    let broker = TestBroker::create(&endpoint, true).await;
    let world = World::new();
    let first = world.create(1).await;
    world.create(2).await;
    world.update(first, "Grace").await;
    world.update(first, "Augusta").await;

    let relay = start(&world, &broker);
    let received = receive_feed(&world, &broker).await;
    relay.shutdown().await;

    let feed = world.feed().await;
    assert_eq!(received.len(), feed.len(), "each event once (FIFO de-duplicates)");
    for entry in &feed {
        let id = entry.event.id.to_string();
        let message = received.iter().find(|r| r.event_id().as_deref() == Some(&id)).expect("the event arrived");
        assert_eq!(message.group_id.as_deref(), Some(entry.event.entity_id.to_string().as_str()));
        assert_eq!(message.deduplication_id.as_deref(), Some(id.as_str()));
        assert_eq!(message.body, serde_json::to_string(&entry.event).unwrap());
    }
    let first_person: Vec<String> = received
        .iter()
        .filter(|r| r.group_id.as_deref() == Some(first.to_string().as_str()))
        .filter_map(Received::event_id)
        .collect();
    let in_feed_order: Vec<String> =
        feed.iter().filter(|entry| entry.event.entity_id == first).map(|entry| entry.event.id.to_string()).collect();
    assert_eq!(first_person, in_feed_order, "a person's events arrive in their order");
}

#[tokio::test]
async fn a_relay_that_is_shut_down_records_its_position_and_releases_the_lease() {
    let Some(endpoint) = testkit::endpoint() else { return };
    let broker = TestBroker::create(&endpoint, false).await;
    let world = World::new();
    world.create_many(12).await;

    let relay = start(&world, &broker);
    let metrics = relay.metrics();
    receive_feed(&world, &broker).await;
    let head = world.feed().await.last().unwrap().position;
    assert!(common::eventually(async || metrics.snapshot().position == head).await, "the relay reaches the head");
    relay.shutdown().await;

    let state = world.relay_state("sns").await.expect("the relay ran");
    assert_eq!(state.position, head);
    assert_eq!(state.holder, "", "the lease is released at shutdown");
    let snapshot = metrics.snapshot();
    assert!(!snapshot.leader);
    assert_eq!(snapshot.events_published, 12);
    assert_eq!((snapshot.lease_acquisitions, snapshot.lease_losses, snapshot.publish_failures), (1, 0, 0));
    assert!(snapshot.last_success.is_some());
}
