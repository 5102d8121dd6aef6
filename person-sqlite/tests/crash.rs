//! A write the store has answered survives the process being killed (SIGKILL), and a write cut off by the kill
//! leaves nothing half-done: no person without its event and history entry, nor the reverse.
//!
//! The test re-runs this test binary as a child process that creates persons in a loop, printing each id once
//! `insert` has returned; the parent kills it after a number of answered creates (most likely in the middle of
//! the next one), reopens the file and checks.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use person_core::PersonId;
use person_core::ports::PersonRepository;
use person_core::testkit::fixtures::{create_write, full_person, person_id};
use person_sqlite::{SqliteOptions, SqliteStore};
use sqlx::Connection as _;

const CHILD_DATABASE_VARIABLE: &str = "PERSON_SQLITE_CRASH_TEST_DATABASE";
const ANSWERED_BEFORE_KILL: usize = 25;
const CHILD_WRITE_LIMIT: usize = 2_000;

/// The child half: only does something when started by the parent test below.
#[tokio::test]
async fn child_writer_for_the_kill_test_does_nothing_when_run_directly() {
    let Ok(url) = std::env::var(CHILD_DATABASE_VARIABLE) else {
        return;
    };
    let store = SqliteStore::open(&url, SqliteOptions::default()).await.expect("child opens the store");
    for _ in 0..CHILD_WRITE_LIMIT {
        let person = store.insert(create_write(full_person(person_id()), None)).await.expect("insert succeeds");
        println!("ANSWERED {}", person.id);
    }
    // Bounded: wait for the kill (or for the parent to go away) instead of writing on.
    let _ = std::io::stdin().read_line(&mut String::new());
}

#[tokio::test]
async fn answered_creates_survive_a_killed_process_and_cut_off_ones_leave_no_trace() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("person.db");
    let url = format!("sqlite://{}", path.display());
    let mut child = Command::new(std::env::current_exe().expect("test binary path"))
        .args(["--exact", "child_writer_for_the_kill_test_does_nothing_when_run_directly", "--nocapture"])
        .env(CHILD_DATABASE_VARIABLE, &url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("child starts");
    let stdout = child.stdout.take().expect("child stdout");
    // Kept open until the child is killed, so the child is still writing (not failing on a closed pipe) then.
    let mut lines = BufReader::new(stdout).lines();
    let mut answered = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("child output reads");
        if let Some(id) = line.strip_prefix("ANSWERED ") {
            answered.push(PersonId::parse(id).expect("child prints person ids"));
            if answered.len() == ANSWERED_BEFORE_KILL {
                break;
            }
        }
    }
    child.kill().expect("child is killed"); // SIGKILL on Unix
    child.wait().expect("child is reaped");
    drop(lines);
    assert_eq!(answered.len(), ANSWERED_BEFORE_KILL, "the child stopped before answering enough creates");

    let store = SqliteStore::open(&url, SqliteOptions::default()).await.expect("store reopens after the kill");
    for id in &answered {
        assert!(store.get(*id).await.expect("get succeeds").is_some(), "an answered create was lost");
        assert_eq!(store.history(*id).await.expect("history reads").len(), 1);
    }
    store.close().await;
    let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("connects");
    let counts: (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM persons), (SELECT COUNT(*) FROM events), \
         (SELECT COUNT(*) FROM person_history), (SELECT value FROM counters WHERE name = 'person_ref')",
    )
    .fetch_one(&mut conn)
    .await
    .expect("counts read");
    let (persons, events, history, last_ref) = counts;
    assert!(persons >= ANSWERED_BEFORE_KILL as i64);
    assert_eq!((events, history, last_ref), (persons, persons, persons), "a create was stored only in part");
    conn.close().await.expect("closes");
}
