//! Shared by the relay's integration tests: a person service over an in-memory store to make events with, the
//! relay's pacing for tests, and polling with a deadline.

#![expect(clippy::unwrap_used, reason = "a test helper fails the test loudly")]

use std::sync::Arc;
use std::time::Duration;

use person_core::Permissions;
use person_core::ports::{RandomIds, RelayLease, RelayRepository, SystemClock};
use person_core::service::CreateOptions;
use person_core::{
    Actor, FeedEntry, InMemoryStore, PersonId, PersonRepository, PersonService, Repositories, RequestContext,
};
use person_relay::RelayConfig;
use serde_json::json;
use tokio::time::Instant;

/// How long a test waits for something before it fails.
pub(crate) const PATIENCE: Duration = Duration::from_secs(60);

/// A store with a service that writes persons (and so events) into it.
pub(crate) struct World {
    pub(crate) store: Arc<InMemoryStore>,
    pub(crate) repos: Repositories,
    pub(crate) service: PersonService,
}

impl World {
    pub(crate) fn new() -> Self {
        let store = Arc::new(InMemoryStore::new());
        let repos = Repositories::from_store(store.clone());
        let service = PersonService::new(repos.clone(), Arc::new(SystemClock), Arc::new(RandomIds));
        Self { store, repos, service }
    }

    /// Creates a person named after `n` (never a duplicate of another).
    pub(crate) async fn create(&self, n: usize) -> PersonId {
        let body = json!({
            "title": "Ms",
            "firstName": format!("Ada{}", letters(n)),
            "surname": "Lovelace",
            "dateOfBirth": "1990-05-17",
            "personTypes": ["Tenant"],
            "reason": "New tenancy"
        });
        let options = CreateOptions { allow_duplicate: true, ..CreateOptions::default() };
        self.service.create(&ctx(), body.to_string().as_bytes(), options).await.unwrap().person.id
    }

    /// Creates `count` persons.
    pub(crate) async fn create_many(&self, count: usize) {
        for n in 0..count {
            self.create(n).await;
        }
    }

    /// Changes a person's middle name.
    pub(crate) async fn update(&self, id: PersonId, middle_name: &str) {
        let version = self.version(id).await;
        let body = json!({ "middleName": middle_name }).to_string();
        self.service.update(&ctx(), id, version, body.as_bytes()).await.unwrap();
    }

    /// Merges `duplicate` into `survivor`.
    pub(crate) async fn merge(&self, survivor: PersonId, duplicate: PersonId) {
        let version = self.version(survivor).await;
        let body = json!({ "duplicateId": duplicate, "reason": "Same person" }).to_string();
        self.service.merge(&ctx(), survivor, version, body.as_bytes()).await.unwrap();
    }

    /// Deletes a person.
    pub(crate) async fn delete(&self, id: PersonId) {
        self.service.delete(&ctx(), id, None, Some("Left".to_owned())).await.unwrap();
    }

    async fn version(&self, id: PersonId) -> u64 {
        self.store.get(id).await.unwrap().unwrap().version_number
    }

    /// The whole feed.
    pub(crate) async fn feed(&self) -> Vec<FeedEntry> {
        self.store.events_after(0, u32::MAX).await.unwrap()
    }

    /// The stored lease and position of the relay `name`.
    pub(crate) async fn relay_state(&self, name: &str) -> Option<RelayLease> {
        self.store.relay_state(name).await.unwrap()
    }
}

/// An administrator's request context.
pub(crate) fn ctx() -> RequestContext {
    let actor = Actor {
        subject: "relay-test".to_owned(),
        name: "Relay Test".to_owned(),
        email: "relay@example.org".to_owned(),
    };
    RequestContext::new(actor, Permissions::all(), "relay-test")
}

/// `n` spelt in letters (names take no digits).
fn letters(mut n: usize) -> String {
    let mut text = String::new();
    loop {
        text.push(char::from(b'a' + u8::try_from(n % 26).unwrap()));
        n /= 26;
        if n == 0 {
            return text;
        }
    }
}

/// A relay paced for tests: quick polls, quick retries, a short lease.
pub(crate) fn quick_config(name: &str) -> RelayConfig {
    RelayConfig {
        name: name.to_owned(),
        batch_size: 25,
        poll_interval: Duration::from_millis(20),
        lease_ttl: Duration::from_secs(1),
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(100),
        shutdown_grace: Duration::from_secs(5),
    }
}

/// Polls `condition` until it holds; false when `PATIENCE` ran out first.
pub(crate) async fn eventually(mut condition: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if condition().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
