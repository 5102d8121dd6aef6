//! Store-independent tests with two real `person-api` processes serving one shared store, as councils run the
//! service behind a load balancer: the guarantees of a single process must hold across processes too.
//!
//! Each test takes the storage URL both processes share (an empty store), starts the two processes itself and
//! spreads its requests over both. A test file per store instantiates them all with
//! `multi_process_tests!(fresh_store_fn)` (see `postgres_processes.rs`, `dynamodb_processes.rs`).

#![allow(
    unused_macros,
    reason = "only the multi-process test files use multi_process_tests!, and every test file compiles this module"
)]
#![expect(clippy::unwrap_used, reason = "test helpers fail the test loudly")]

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use futures::future::join_all;
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};

use super::{ServerProcess, client, tenant};

const VERSION_CONFLICT: &str = "https://person-api.hackney.gov.uk/problems/version-conflict";
const DUPLICATE_PERSON: &str = "https://person-api.hackney.gov.uk/problems/duplicate-person";
const PROBLEM_JSON: &str = "application/problem+json";

/// Writers of the feed test, and what each writes: `PERSONS_PER_WRITER` persons (unless the store asks for fewer,
/// see [`SharedStore::feed_persons_per_writer`]), each created and then patched `PATCHES_PER_PERSON` times
/// (16 × 25 × (1 + 4) = 2,000 writes: 400 creates and 1,600 patches).
const FEED_WRITERS: usize = 16;
pub(crate) const PERSONS_PER_WRITER: usize = 25;
const PATCHES_PER_PERSON: usize = 4;
/// The feed reader's page size (the largest the API allows).
const FEED_PAGE: usize = 1000;
/// How long the feed reader may wait for the next event between polls while the writers are still writing (a
/// poll interval, cut short as soon as the writers finish).
const FEED_POLL: Duration = Duration::from_millis(50);
/// Longest the feed test may run before the reader gives up (a hang guard, not a timed assertion).
const FEED_DEADLINE: Duration = Duration::from_secs(600);

/// The store both processes share: its URL and any settings the processes need for it (e.g. longer timeouts
/// for a slow local test server).
pub(crate) struct SharedStore {
    /// The storage URL (`PERSON_API_STORE`) of an empty store.
    pub(crate) url: String,
    /// Extra environment of both processes.
    pub(crate) env: Vec<(&'static str, String)>,
    /// Persons each of the feed test's 16 writers creates and patches 4 times: [`PERSONS_PER_WRITER`] (2,000
    /// writes), or fewer for a test server too slow for that many within the test's deadline.
    pub(crate) feed_persons_per_writer: usize,
}

/// Two `person-api` processes on one store.
pub(crate) struct TwoProcesses {
    /// Process A.
    pub(crate) a: ServerProcess,
    /// Process B.
    pub(crate) b: ServerProcess,
}

impl TwoProcesses {
    /// Starts two processes on `store` at the same time (so both migrate the empty store concurrently) and waits
    /// until both listen.
    pub(crate) async fn start(store: &SharedStore) -> Self {
        let mut env = store.env.clone();
        env.push(("PERSON_API_STORE", store.url.clone()));
        let start = |env: Vec<(&'static str, String)>| tokio::task::spawn_blocking(move || ServerProcess::start(&env));
        let (a, b) = tokio::join!(start(env.clone()), start(env));
        let started = |result: Result<ServerProcess, tokio::task::JoinError>| match result {
            Ok(process) => process,
            Err(error) => std::panic::resume_unwind(error.into_panic()),
        };
        Self { a: started(a), b: started(b) }
    }

    /// The base URL of process A (`0`, and every even number) or B (odd numbers): alternates with `i`.
    pub(crate) fn base(&self, i: usize) -> &str {
        if i.is_multiple_of(2) { &self.a.base_url } else { &self.b.base_url }
    }

    /// Both base URLs, A first.
    pub(crate) fn bases(&self) -> [String; 2] {
        [self.a.base_url.clone(), self.b.base_url.clone()]
    }

    /// Error and warning lines either process logged so far (a 500 is logged as an `ERROR`, a 503 as a `WARN`
    /// naming its cause), each prefixed with the process; the development-mode notice is left out.
    pub(crate) fn logged_errors(&self) -> Vec<String> {
        let mut errors = Vec::new();
        for (name, process) in [("A", &self.a), ("B", &self.b)] {
            errors.extend(
                process
                    .stderr_so_far()
                    .into_iter()
                    .filter(|line| {
                        line.contains("\"ERROR\"")
                            || line.contains("panicked")
                            || (line.contains("\"WARN\"") && !line.contains("DEVELOPMENT MODE"))
                    })
                    .map(|line| format!("{name}: {line}")),
            );
        }
        errors
    }

    /// Asserts that neither process logged an error (an unexpected failure, a panic).
    pub(crate) fn assert_no_logged_errors(&self) {
        let errors = self.logged_errors();
        assert!(errors.is_empty(), "the servers logged errors:\n{}", errors.join("\n"));
    }
}

/// 20 PATCHes with `If-Match: "0"` and different middle names, sent at once, alternating between the two
/// processes: exactly one wins, the other 19 are `version-conflict`s naming version 1, and only the winner's
/// change is stored, in the history and in the feed.
pub(crate) async fn twenty_concurrent_patches_with_the_same_if_match_across_two_processes_have_exactly_one_winner(
    store: &SharedStore,
) {
    let servers = TwoProcesses::start(store).await;
    let http = client();
    let person = create(&http, servers.base(0), &tenant("Grace", "Hopper")).await;
    let id = person["id"].as_str().unwrap().to_owned();

    let attempts = (0..20).map(|i| {
        let (http, url) = (http.clone(), format!("{}/api/v1/persons/{id}", servers.base(i)));
        tokio::spawn(async move {
            let middle_name = format!("Writer {i}");
            let response = http
                .patch(url)
                .header("If-Match", "\"0\"")
                .json(&json!({ "middleName": middle_name }))
                .send()
                .await
                .unwrap();
            (middle_name, response)
        })
    });
    let mut winners = Vec::new();
    let mut conflicts = 0;
    for (middle_name, response) in join_all(attempts).await.into_iter().map(Result::unwrap) {
        match response.status() {
            StatusCode::NO_CONTENT => {
                assert_eq!(response.headers()["etag"], "\"1\"", "the winner's new version");
                winners.push(middle_name);
            }
            StatusCode::CONFLICT => {
                let problem = problem(response, VERSION_CONFLICT).await;
                assert_eq!(problem["currentVersion"], 1, "a loser is told the winner's version: {problem}");
                conflicts += 1;
            }
            status => panic!(
                "unexpected {status}: {}\nserver errors: {:?}",
                response.text().await.unwrap_or_default(),
                servers.logged_errors()
            ),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one winner: {winners:?}");
    assert_eq!(conflicts, 19, "nineteen version conflicts");

    for i in 0..2 {
        let read = http.get(format!("{}/api/v1/persons/{id}", servers.base(i))).send().await.unwrap();
        assert_eq!(read.status(), StatusCode::OK);
        assert_eq!(read.headers()["etag"], "\"1\"", "process {i} reads version 1");
        let body: Value = read.json().await.unwrap();
        assert_eq!(body["middleName"], winners[0].as_str(), "process {i} reads the winner's change");
    }
    let history: Value = get_json(&http, &format!("{}/api/v1/persons/{id}/history", servers.base(1))).await;
    assert_eq!(history["results"].as_array().unwrap().len(), 2, "one create and exactly one update: {history}");
    let events = read_whole_feed(&http, servers.base(1)).await;
    let updates: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"]["eventType"] == "PersonUpdatedEvent" && e["event"]["entityId"] == id.as_str())
        .collect();
    assert_eq!(updates.len(), 1, "exactly one update event: {updates:?}");
    assert_eq!(updates[0]["event"]["eventData"]["newData"]["middleName"], winners[0].as_str());
    servers.assert_no_logged_errors();
}

/// 100 different persons created at once, alternating between the two processes: all are 201s with 100
/// different ids and `personRef`s, and each process reads every person created through the other.
pub(crate) async fn a_hundred_concurrent_creates_across_two_processes_get_a_hundred_distinct_person_refs(
    store: &SharedStore,
) {
    const FIRST_NAMES: [&str; 10] =
        ["Amara", "Bogdan", "Chiara", "Dmitri", "Efua", "Fionnuala", "Gareth", "Hiroshi", "Ingrid", "Jamal"];
    const SURNAMES: [&str; 10] = [
        "Adeyemi",
        "Brennan",
        "Castellano",
        "Dubois",
        "Eriksen",
        "Fitzgerald",
        "Gonzaga",
        "Holloway",
        "Iqbal",
        "Jankowski",
    ];
    let servers = TwoProcesses::start(store).await;
    let http = client();

    // Different people (no two share a forename, a surname and a date of birth), so duplicate prevention runs
    // for every create and refuses none.
    let creates = (0..100).map(|i| {
        let (http, url) = (http.clone(), format!("{}/api/v1/persons", servers.base(i)));
        let mut body = tenant(FIRST_NAMES[i % 10], SURNAMES[i / 10]);
        body["dateOfBirth"] = json!(format!("19{:02}-{:02}-{:02}", 40 + i / 2, 1 + i % 12, 1 + i % 28));
        tokio::spawn(async move { (i, http.post(url).json(&body).send().await.unwrap()) })
    });
    let mut created = Vec::new();
    for (i, response) in join_all(creates).await.into_iter().map(Result::unwrap) {
        let status = response.status();
        let body = response.text().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "create {i}: {body}\nserver errors: {:?}", servers.logged_errors());
        let person: Value = serde_json::from_str(&body).unwrap();
        created.push((i, person["id"].as_str().unwrap().to_owned(), person["personRef"].as_i64().unwrap()));
    }

    let ids: HashSet<&str> = created.iter().map(|(_, id, _)| id.as_str()).collect();
    let refs: HashSet<i64> = created.iter().map(|(_, _, person_ref)| *person_ref).collect();
    assert_eq!(ids.len(), 100, "every create gets its own id");
    assert_eq!(refs.len(), 100, "every create gets its own personRef: {created:?}");
    let reads = created.iter().map(|(i, id, person_ref)| {
        // Read through the process that did not create it.
        let (http, url) = (http.clone(), format!("{}/api/v1/persons/{id}", servers.base(i + 1)));
        let (id, person_ref) = (id.clone(), *person_ref);
        tokio::spawn(async move {
            let response = http.get(url).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{id} is readable from the other process");
            let person: Value = response.json().await.unwrap();
            assert_eq!(person["id"], id.as_str());
            assert_eq!(person["personRef"], person_ref, "both processes read the same personRef");
        })
    });
    for read in join_all(reads).await {
        read.unwrap();
    }
    let events = read_whole_feed(&http, servers.base(0)).await;
    assert_eq!(events.len(), 100, "one event per create");
    servers.assert_no_logged_errors();
}

/// The same new person created ten times at once (no idempotency key), alternating between the two processes:
/// exactly one 201; the nine others are `duplicate-person` 409s naming the person created, and only one event
/// is published.
pub(crate) async fn ten_concurrent_creates_of_the_same_person_across_two_processes_have_exactly_one_201(
    store: &SharedStore,
) {
    let servers = TwoProcesses::start(store).await;
    let http = client();
    let mut body = tenant("Tendai", "Moyo");
    body["dateOfBirth"] = json!("1977-07-17");

    let creates = (0..10).map(|i| {
        let (http, url, body) = (http.clone(), format!("{}/api/v1/persons", servers.base(i)), body.clone());
        tokio::spawn(async move { http.post(url).json(&body).send().await.unwrap() })
    });
    let mut winners = Vec::new();
    let mut named = Vec::new();
    for response in join_all(creates).await.into_iter().map(Result::unwrap) {
        match response.status() {
            StatusCode::CREATED => {
                let person: Value = response.json().await.unwrap();
                winners.push(person["id"].as_str().unwrap().to_owned());
            }
            StatusCode::CONFLICT => {
                let problem = problem(response, DUPLICATE_PERSON).await;
                let candidates = problem["candidates"].as_array().unwrap();
                assert_eq!(candidates.len(), 1, "only one person is recorded: {problem}");
                named.push(candidates[0]["id"].as_str().unwrap().to_owned());
            }
            status => panic!(
                "unexpected {status}: {}\nserver errors: {:?}",
                response.text().await.unwrap_or_default(),
                servers.logged_errors()
            ),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one 201: {winners:?}");
    assert_eq!(named.len(), 9, "nine duplicate-person 409s");
    assert!(named.iter().all(|id| *id == winners[0]), "every 409 names the person created: {named:?} {winners:?}");

    for i in 0..2 {
        let events = read_whole_feed(&http, servers.base(i)).await;
        assert_eq!(events.len(), 1, "one event, for the one create (process {i}): {events:?}");
        assert_eq!(events[0]["event"]["eventType"], "PersonCreatedEvent");
        assert_eq!(events[0]["event"]["entityId"], winners[0].as_str());
    }
    servers.assert_no_logged_errors();
}

/// What an event says happened to a person, as the writers of the feed test know it: `created`, or the middle
/// name a PATCH set (each PATCH of a person sets a different one).
fn event_label(event: &Value) -> String {
    match event["eventType"].as_str().unwrap() {
        "PersonCreatedEvent" => "created".to_owned(),
        "PersonUpdatedEvent" => event["eventData"]["newData"]["middleName"].as_str().unwrap_or("?").to_owned(),
        other => other.to_owned(),
    }
}

/// A feed reader follows the feed on process A while 16 writers (alternating between A and B request by
/// request) create 400 persons and patch each 4 times with the right `If-Match`: when the writers are done and
/// the reader has caught up, it has seen every one of the 2,000 events (see [`SharedStore`]) exactly once, positions only ever
/// increase, and each person's events come in the order of its versions. Process B serves the same feed.
pub(crate) async fn a_feed_reader_sees_every_event_of_concurrent_writes_on_two_processes_exactly_once_in_version_order(
    store: &SharedStore,
) {
    let servers = TwoProcesses::start(store).await;
    let bases = servers.bases();
    let started = Instant::now();
    let (done_tx, done_rx) = tokio::sync::watch::channel(false);

    let reader = {
        let (http, base) = (client(), bases[0].clone());
        tokio::spawn(follow_feed(http, base, done_rx))
    };
    let writers: Vec<_> = (0..FEED_WRITERS)
        .map(|w| {
            let (http, bases) = (client(), bases.clone());
            let persons = store.feed_persons_per_writer;
            tokio::spawn(async move { write_persons(&http, &bases, w, persons).await })
        })
        .collect();
    let mut expected: HashMap<String, Vec<String>> = HashMap::new();
    for writer in join_all(writers).await {
        expected.extend(writer.unwrap());
    }
    let writes: usize = expected.values().map(Vec::len).sum();
    done_tx.send(true).unwrap();
    let writes_done = started.elapsed();
    let (read, read_while_writing) = reader.await.unwrap();
    eprintln!(
        "{writes} writes in {writes_done:?}; the reader saw {read_while_writing} events while they ran and all {} \
         after {:?}",
        read.len(),
        started.elapsed()
    );

    let persons = FEED_WRITERS * store.feed_persons_per_writer;
    assert_eq!(expected.len(), persons);
    assert_eq!(writes, persons * (1 + PATCHES_PER_PERSON), "every write was acknowledged");
    let mut positions = Vec::new();
    let mut event_ids = HashSet::new();
    let mut seen: HashMap<String, Vec<String>> = HashMap::new();
    for entry in &read {
        positions.push(entry["position"].as_u64().unwrap());
        let event = &entry["event"];
        let event_id = event["id"].as_str().unwrap();
        assert!(event_ids.insert(event_id.to_owned()), "event {event_id} was read twice: {entry}");
        seen.entry(event["entityId"].as_str().unwrap().to_owned()).or_default().push(event_label(event));
    }
    assert!(positions.is_sorted_by(|a, b| a < b), "feed positions only ever increase");
    let unknown: Vec<&String> = seen.keys().filter(|id| !expected.contains_key(*id)).collect();
    assert!(unknown.is_empty(), "events about persons nobody wrote: {unknown:?}");
    for (id, labels) in &expected {
        let got = seen.get(id).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(got, labels.as_slice(), "the events of {id}, in feed order");
    }
    assert_eq!(read.len(), writes, "one event per committed write, no more");

    // The other process serves the same feed: the same events at the same positions.
    let from_b = read_whole_feed(&client(), &bases[1]).await;
    let key = |e: &Value| (e["position"].as_u64().unwrap(), e["event"]["id"].as_str().unwrap().to_owned());
    assert!(from_b.iter().map(key).eq(read.iter().map(key)), "process B reads the feed process A served");
    servers.assert_no_logged_errors();
}

/// One writer of the feed test: creates its persons and patches each in turn, alternating processes request by
/// request. Answers, per person id, the labels of the events its writes must have published, in version order.
async fn write_persons(
    http: &Client,
    bases: &[String; 2],
    writer: usize,
    persons: usize,
) -> Vec<(String, Vec<String>)> {
    let mut written = Vec::new();
    let mut request = writer;
    let mut next_base = || {
        request += 1;
        bases[request % 2].clone()
    };
    for n in 0..persons {
        // Look-alike persons: let them past duplicate prevention (this test is about the feed).
        let body = tenant(&format!("Writer{writer}"), &format!("Feed{n}"));
        let response =
            http.post(format!("{}/api/v1/persons?allowDuplicate=true", next_base())).json(&body).send().await.unwrap();
        let (status, etag) = (response.status(), etag_of(&response));
        let text = response.text().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "writer {writer}, create {n}: {text}");
        assert_eq!(etag.as_deref(), Some("\"0\""));
        let person: Value = serde_json::from_str(&text).unwrap();
        let id = person["id"].as_str().unwrap().to_owned();
        let mut labels = vec!["created".to_owned()];
        let mut etag = etag.unwrap();
        for round in 1..=PATCHES_PER_PERSON {
            let middle_name = format!("Round {round}");
            let response = http
                .patch(format!("{}/api/v1/persons/{id}", next_base()))
                .header("If-Match", &etag)
                .json(&json!({ "middleName": middle_name }))
                .send()
                .await
                .unwrap();
            let status = response.status();
            let new_etag = etag_of(&response);
            assert_eq!(
                status,
                StatusCode::NO_CONTENT,
                "writer {writer}, person {id}, round {round}: {}",
                response.text().await.unwrap_or_default()
            );
            assert_eq!(new_etag, Some(format!("\"{round}\"")), "each PATCH makes the next version");
            etag = new_etag.unwrap();
            labels.push(middle_name);
        }
        written.push((id, labels));
    }
    written
}

/// Follows the feed from the start by its `links.next` until the writers are done (`done` turns true) and a page
/// read after that is empty. Answers every entry read, and how many were read before the writers were done.
async fn follow_feed(http: Client, base: String, mut done: tokio::sync::watch::Receiver<bool>) -> (Vec<Value>, usize) {
    let deadline = Instant::now() + FEED_DEADLINE;
    let mut next = format!("/api/v1/events?after=0&limit={FEED_PAGE}");
    let mut last_position = 0;
    let mut entries = Vec::new();
    let mut read_while_writing = None;
    loop {
        // Read the flag before the page: an empty page read after the writers were done means caught up.
        let writers_done = *done.borrow_and_update();
        if writers_done && read_while_writing.is_none() {
            read_while_writing = Some(entries.len());
        }
        let page = get_json(&http, &format!("{base}{next}")).await;
        let results = page["results"].as_array().unwrap();
        if let Some(last) = results.last() {
            last_position = last["position"].as_u64().unwrap();
        }
        assert_eq!(page["nextCursor"], last_position.to_string(), "nextCursor is the last position read: {page}");
        let link = page["links"]["next"].as_str().unwrap();
        assert_eq!(link, format!("/api/v1/events?after={last_position}&limit={FEED_PAGE}"), "links.next");
        link.clone_into(&mut next);
        entries.extend(results.iter().cloned());
        if results.is_empty() {
            if writers_done {
                return (entries, read_while_writing.unwrap_or_default());
            }
            assert!(Instant::now() < deadline, "the writers did not finish in time");
            // Wait for the next poll, or less if the writers finish meanwhile.
            let _ = tokio::time::timeout(FEED_POLL, done.changed()).await;
        }
    }
}

/// Every entry of the feed of the server at `base`, read page by page from the start until an empty page.
async fn read_whole_feed(http: &Client, base: &str) -> Vec<Value> {
    let mut entries = Vec::new();
    let mut after = "0".to_owned();
    loop {
        let page = get_json(http, &format!("{base}/api/v1/events?after={after}&limit={FEED_PAGE}")).await;
        let results = page["results"].as_array().unwrap();
        if results.is_empty() {
            return entries;
        }
        entries.extend(results.iter().cloned());
        page["nextCursor"].as_str().unwrap().clone_into(&mut after);
    }
}

/// Creates `body` on the server at `base` and answers the person, asserting a 201.
async fn create(http: &Client, base: &str, body: &Value) -> Value {
    let response = http.post(format!("{base}/api/v1/persons")).json(body).send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{text}");
    serde_json::from_str(&text).unwrap()
}

/// GETs `url`, asserting a 200, and answers the JSON body.
async fn get_json(http: &Client, url: &str) -> Value {
    let response = http.get(url).send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "GET {url}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// The problem body of `response`, asserting its media type and problem `type`.
async fn problem(response: Response, problem_type: &str) -> Value {
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with(PROBLEM_JSON), "a problem, not {content_type}");
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["type"], problem_type, "{problem}");
    problem
}

/// The `ETag` header of `response`, if any.
fn etag_of(response: &Response) -> Option<String> {
    response.headers().get("etag").and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// Generates the multi-process tests for a store: `$fresh_store` is a `fn() -> Option<SharedStore>` giving a new,
/// empty store both processes share (`None`, after a `skipped:` line, when the backend is not configured).
macro_rules! multi_process_tests {
    ($fresh_store:path) => {
        multi_process_tests!(@cases $fresh_store;
            twenty_concurrent_patches_with_the_same_if_match_across_two_processes_have_exactly_one_winner,
            a_hundred_concurrent_creates_across_two_processes_get_a_hundred_distinct_person_refs,
            ten_concurrent_creates_of_the_same_person_across_two_processes_have_exactly_one_201,
            a_feed_reader_sees_every_event_of_concurrent_writes_on_two_processes_exactly_once_in_version_order,
        );
    };
    (@cases $fresh_store:path; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let Some(store) = $fresh_store() else { return };
                crate::common::multi_process::$case(&store).await;
            }
        )+
    };
}
