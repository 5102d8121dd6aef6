//! Runs every example against a real local server (in-process, on a temporary SQLite store), so that the
//! examples are not only built in CI but shown to work. Each example's logic is its `pub async fn run`.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

#[expect(dead_code, unreachable_pub, reason = "the example is a binary: its `main` and `pub` items are used there")]
#[path = "../examples/client_quickstart.rs"]
mod client_quickstart;

#[expect(dead_code, unreachable_pub, reason = "the example is a binary: its `main` and `pub` items are used there")]
#[path = "../examples/custom_store.rs"]
mod custom_store;

#[expect(dead_code, unreachable_pub, reason = "the example is a binary: its `main` and `pub` items are used there")]
#[path = "../examples/follow_feed.rs"]
mod follow_feed;

#[expect(dead_code, unreachable_pub, reason = "the example is a binary: its `main` and `pub` items are used there")]
#[path = "../examples/host_router.rs"]
mod host_router;

use std::time::Duration;

use futures::StreamExt;
use person_client::{CreateOptions, PersonApi, PersonClient, PersonDraft, PersonPatch, SearchCriteria};
use person_core::{PersonType, Title};
use person_server::config::Config;

/// A person-api server in this process, on a fresh SQLite file, in development mode.
struct LocalServer {
    base_url: String,
    dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl LocalServer {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config =
            Config { store: format!("sqlite://{}", dir.path().join("persons.db").display()), ..Config::default() };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            person_server::serve(&config, listener, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Self { base_url, dir, stop: Some(stop) }
    }

    fn client(&self) -> PersonClient {
        PersonClient::builder(&self.base_url).build().unwrap()
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn tenant(first_name: &str, surname: &str) -> PersonDraft {
    PersonDraft {
        title: Some(Title::Mr),
        first_name: Some(first_name.to_owned()),
        surname: Some(surname.to_owned()),
        date_of_birth: Some("1979-02-11".to_owned()),
        person_types: Some(vec![PersonType::Tenant]),
        reason: Some("New tenancy".to_owned()),
        ..PersonDraft::default()
    }
}

#[tokio::test]
async fn the_quickstart_creates_the_person_once_and_finds_it_on_the_next_run() {
    let server = LocalServer::start().await;

    let first = client_quickstart::run(&server.base_url, None).await.unwrap();
    let second = client_quickstart::run(&server.base_url, None).await.unwrap();

    assert_eq!(second.id, first.id, "the second run finds the person by matching");
    assert_eq!(first.preferred_first_name.as_deref(), Some("Thandi"));
    assert_eq!(first.version_number, 1);
    assert_eq!(second.version_number, 1, "re-applying the same change creates no version");
}

#[tokio::test]
async fn the_quickstart_update_re_reads_and_retries_after_a_version_conflict() {
    let server = LocalServer::start().await;
    let client = server.client();
    let stale = client.create(&tenant("Sipho", "Zulu"), &CreateOptions::default()).await.unwrap();
    client.update(stale.id, 0, &PersonPatch::new().middle_name("Bongani")).await.unwrap();

    // `stale` is version 0; the person is at version 1 now.
    let updated =
        client_quickstart::update_with_retry(&client, stale, |_| PersonPatch::new().preferred_first_name("Sips"))
            .await
            .unwrap();

    assert_eq!(updated.version_number, 2);
    assert_eq!(updated.middle_name.as_deref(), Some("Bongani"), "the other writer's change is kept");
    assert_eq!(updated.preferred_first_name.as_deref(), Some("Sips"));
}

#[tokio::test]
async fn concurrent_quickstarts_record_the_person_once() {
    let server = LocalServer::start().await;
    let client = server.client();
    let draft = client_quickstart::example_person();
    // Both may find nothing by matching and create: the server lets one win, and the other's duplicate error
    // names the winner, which it then reads.
    let (a, b) = tokio::join!(
        client_quickstart::find_or_create(&client, &draft),
        client_quickstart::find_or_create(&client, &draft)
    );
    assert_eq!(a.unwrap().id, b.unwrap().id);
}

#[tokio::test]
async fn the_host_application_serves_its_own_routes_and_the_person_api_under_its_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("host.db").display());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let host = tokio::spawn(async move {
        host_router::run(listener, &store, async {
            let _ = stopped.await;
        })
        .await
    });

    let home = reqwest::get(format!("http://{address}/")).await.unwrap();
    assert_eq!(home.status(), 200);
    assert!(home.text().await.unwrap().contains("host application"));

    let api = PersonClient::builder(format!("http://{address}{}", host_router::PREFIX)).build().unwrap();
    api.ping().await.unwrap();
    for first in ["Andile", "Bheki", "Lindiwe"] {
        api.create(&tenant(first, "Nkosi"), &CreateOptions::default()).await.unwrap();
    }
    // Two pages: the second is reached through the API's path-relative link, under the host's prefix.
    let found: Vec<_> = api.search(&SearchCriteria::new().last_name("Nkosi").limit(2)).collect().await;
    assert_eq!(found.len(), 3);
    assert!(found.iter().all(Result::is_ok), "{found:?}");

    stop.send(()).unwrap();
    host.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_custom_store_passes_every_contract_case() {
    let report = custom_store::run(false).await;
    assert!(report.failed.is_empty(), "failed: {:?}", report.failed);
    assert!(report.passed.len() >= 30, "{} cases", report.passed.len());
    assert!(report.operations > 0);
}

// The contract suite as a store crate would run it: one test per case.
async fn fresh_logging_store() -> Option<custom_store::LoggingStore> {
    Some(custom_store::LoggingStore::new(false))
}

mod logging_store_contract {
    use super::fresh_logging_store;
    person_core::store_contract_tests!(fresh_logging_store);
}

#[tokio::test]
async fn the_feed_follower_resumes_from_its_persisted_cursor_after_a_restart() {
    let server = LocalServer::start().await;
    let client = server.client();
    for first in ["Musa", "Nandi", "Themba"] {
        client.create(&tenant(first, "Mthembu"), &CreateOptions::default()).await.unwrap();
    }
    let events = client.feed_page(0, Some(10)).await.unwrap().results;
    assert_eq!(events.len(), 3);
    let cursor = server.dir.path().join("feed.cursor");
    let stop_after = |n| follow_feed::Stop { max_events: Some(n), deadline: None };

    let handled = follow_feed::run(&server.base_url, None, &cursor, stop_after(2)).await.unwrap();
    assert_eq!(handled, 2);
    assert_eq!(std::fs::read_to_string(&cursor).unwrap(), events[1].position.to_string());

    // "Restarted": it picks up after the second event, not from the start.
    let handled = follow_feed::run(&server.base_url, None, &cursor, stop_after(1)).await.unwrap();
    assert_eq!(handled, 1);
    assert_eq!(std::fs::read_to_string(&cursor).unwrap(), events[2].position.to_string());

    // Caught up: nothing more until the deadline.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
    let stop = follow_feed::Stop { max_events: None, deadline: Some(deadline) };
    assert_eq!(follow_feed::run(&server.base_url, None, &cursor, stop).await.unwrap(), 0);
}
