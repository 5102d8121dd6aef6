//! Online backup (`SqliteStore::backup_to`) against real files: a backup taken while writes go on holds every
//! write acknowledged before it started, opens as a store (the restore), passes SQLite's integrity check and has
//! an intact event feed; and a backup never overwrites a file.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use person_core::PersonId;
use person_core::ports::PersonRepository;
use person_core::testkit::fixtures::{create_write, full_person, person_id};
use person_sqlite::{SqliteOptions, SqliteStore};
use sqlx::Connection as _;
use tokio::sync::Mutex;

fn url(path: &std::path::Path) -> String {
    format!("sqlite://{}", path.display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_during_writes_holds_every_acknowledged_write_and_restores_as_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&url(&dir.path().join("person.db")), SqliteOptions::default()).await.unwrap();
    let acknowledged: Arc<Mutex<Vec<PersonId>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, acknowledged, stop) = (store.clone(), acknowledged.clone(), stop.clone());
        tokio::spawn(async move {
            // Bounded: at most 2,000 creates, until told to stop.
            for _ in 0..2_000 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let created = store.insert(create_write(full_person(person_id()), None)).await.unwrap();
                acknowledged.lock().await.push(created.id);
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while acknowledged.lock().await.len() < 100 {
        assert!(Instant::now() < deadline, "the writer acknowledged 100 creates within 30 s");
        tokio::task::yield_now().await;
    }

    let before: Vec<PersonId> = acknowledged.lock().await.clone();
    let target = dir.path().join("backups").join("person-backup.db");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    let size = store.backup_to(&target).await.unwrap();
    let during = acknowledged.lock().await.len();
    stop.store(true, Ordering::SeqCst);
    writer.await.unwrap();
    let all = acknowledged.lock().await.clone();
    store.close().await;
    assert!(all.len() > during || all.len() == 2_000, "writes went on while the backup ran: {during} → {}", all.len());

    assert_eq!(size, std::fs::metadata(&target).unwrap().len());
    assert!(!dir.path().join("backups").join("person-backup.db.partial").exists(), "no partial file left");
    let mut raw = sqlx::SqliteConnection::connect(&url(&target)).await.unwrap();
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check").fetch_one(&mut raw).await.unwrap();
    assert_eq!(integrity, "ok");
    let orphans = sqlx::query("PRAGMA foreign_key_check").fetch_all(&mut raw).await.unwrap();
    assert!(orphans.is_empty(), "no row of the copy points at a missing person");
    raw.close().await.unwrap();

    // The restore: the copy opens as a store, as the server would open it.
    let restored = SqliteStore::open(&url(&target), SqliteOptions::default()).await.unwrap();
    for id in &before {
        assert!(restored.get(*id).await.unwrap().is_some(), "{id}, acknowledged before the backup, is in it");
    }
    let events = restored.events_after(0, 10_000).await.unwrap();
    let positions: Vec<u64> = events.iter().map(|e| e.position).collect();
    let expected: Vec<u64> = (1..=u64::try_from(positions.len()).unwrap()).collect();
    assert_eq!(positions, expected, "the copied feed has no gap");
    let mut in_copy = 0;
    for id in &all {
        if restored.get(*id).await.unwrap().is_some() {
            in_copy += 1;
        }
    }
    assert_eq!(in_copy, events.len(), "each person in the copy has its creation event, and no event is orphaned");
    assert!(in_copy >= before.len() && in_copy <= all.len());
    // The restored store takes writes again.
    restored.insert(create_write(full_person(person_id()), None)).await.unwrap();
    restored.close().await;
}

#[tokio::test]
async fn a_backup_never_overwrites_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&url(&dir.path().join("person.db")), SqliteOptions::default()).await.unwrap();
    let target = dir.path().join("existing.db");
    std::fs::write(&target, b"keep me").unwrap();
    let refused = store.backup_to(&target).await.unwrap_err();
    assert!(
        refused.to_string().contains("unexpected") || format!("{refused:?}").contains("BackupExists"),
        "{refused:?}"
    );
    assert_eq!(std::fs::read(&target).unwrap(), b"keep me");
    store.close().await;
}
