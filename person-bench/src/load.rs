//! `load`: fills an SQLite store with the synthetic register through the service, as clients would.
//!
//! Every person goes through [`PersonService::create`] with a JSON body (its own synthetic id, so the labelled
//! queries of `search-latency` know which stored person each one is), so validation, search keys, the
//! `PersonCreatedEvent`, the history entry and the audit entry are all written exactly as in production. By
//! default the create skips the duplicate check (`allowDuplicate`, the register holds no duplicates); with
//! `--check-duplicates` every create runs the full check first (the SPEC §11 "create with duplicate check"
//! path). A share of the persons with an NI number (`--equality-share`) also get their equality data through
//! [`PersonService::put_equality`], which adds the `ni:` key.
//!
//! The load is bounded in time (`--max-seconds`) and resumable (`--resume` skips the persons and equality
//! documents already stored).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use person_core::documents::DocumentKind;
use person_core::patch::draft_of;
use person_core::ports::{DocumentRepository, PersonRepository};
use person_core::service::{CreateOptions, CreatePersonError, DocumentError};
use person_core::testkit::synthetic::{SyntheticPerson, generate};
use person_sqlite::Synchronous;
use serde_json::json;

use crate::harness::{Bench, Op, Percentiles, Rng, caller, database_bytes, human_bytes};

/// Arguments of `load`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Persons on the generated register.
    #[arg(long)]
    persons: usize,
    /// The seed of the register (`search-latency` must be given the same one).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// The store: `sqlite:///absolute/path.db`.
    #[arg(long)]
    store: String,
    /// `PRAGMA synchronous` for the load: `full` (the server's default: every commit synced) or `normal`
    /// (commits not synced; the database stays consistent, a power cut may lose the last commits).
    #[arg(long, default_value = "full")]
    synchronous: Synchronous,
    /// Concurrent creates.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Share (0..=1) of the persons with an NI number whose equality data is written too.
    #[arg(long, default_value_t = 1.0)]
    equality_share: f64,
    /// Run the duplicate check of every create (no `allowDuplicate`).
    #[arg(long)]
    check_duplicates: bool,
    /// Skip persons (and equality documents) already stored: continue an interrupted load.
    #[arg(long)]
    resume: bool,
    /// Stop taking new persons after this many seconds (the load can then be resumed).
    #[arg(long, default_value_t = 3600)]
    max_seconds: u64,
    /// Seconds between progress lines.
    #[arg(long, default_value_t = 15)]
    progress_seconds: u64,
}

/// Counters shared by the loading tasks.
#[derive(Default)]
struct Progress {
    created: AtomicU64,
    skipped: AtomicU64,
    refused: AtomicU64,
    equality: AtomicU64,
    failed: AtomicU64,
    stop: AtomicBool,
}

/// Most failures tolerated before the load gives up.
const MAX_FAILURES: u64 = 100;

/// Whether person `index` gets equality data (deterministic for the seed).
fn with_equality(seed: u64, index: usize, share: f64) -> bool {
    let mut rng = Rng::new(seed ^ index as u64, 0xE9);
    (rng.next_u64() % 1_000_000) < (share.clamp(0.0, 1.0) * 1_000_000.0) as u64
}

/// The create body of a synthetic person: what a client would send, with the person's own id.
fn create_body(person: &SyntheticPerson) -> Result<Vec<u8>> {
    let mut draft = draft_of(&person.person);
    draft.id = Some(person.person.id.as_uuid());
    Ok(serde_json::to_vec(&draft)?)
}

/// Runs the load.
pub(crate) async fn run(args: &Args) -> Result<()> {
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let started = Instant::now();
    let data = generate(&crate::harness::register_config(args.persons, args.seed));
    let persons = Arc::new(data.persons);
    println!("generated {} persons (seed {}) in {:.1} s", persons.len(), args.seed, started.elapsed().as_secs_f64());

    let bench = Arc::new(Bench::open(&args.store, args.synchronous, 4, true, false).await?);
    println!(
        "store {} (synchronous={}), {} tasks, equality share {}, duplicate check {}",
        bench.path().display(),
        args.synchronous,
        args.concurrency,
        args.equality_share,
        if args.check_duplicates { "on" } else { "off (allowDuplicate)" }
    );

    let next = Arc::new(AtomicUsize::new(0));
    let progress = Arc::new(Progress::default());
    let deadline = Instant::now() + Duration::from_secs(args.max_seconds);
    let load_started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (bench, persons, next, progress) = (bench.clone(), persons.clone(), next.clone(), progress.clone());
        let (seed, share, resume, check) = (args.seed, args.equality_share, args.resume, args.check_duplicates);
        tasks.push(tokio::spawn(async move {
            let ctx = caller();
            while Instant::now() < deadline && !progress.stop.load(Ordering::Relaxed) {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(person) = persons.get(index) else { break };
                let equality = person.nino.as_deref().filter(|_| with_equality(seed, index, share));
                let outcome = load_one(&bench, &ctx, person, equality, resume, check, &progress).await;
                if let Err(e) = outcome {
                    let failures = progress.failed.fetch_add(1, Ordering::Relaxed) + 1;
                    if failures <= 5 {
                        eprintln!("person {index}: {e:#}");
                    }
                    if failures >= MAX_FAILURES {
                        progress.stop.store(true, Ordering::Relaxed);
                    }
                }
            }
        }));
    }

    let total = persons.len() as u64;
    let reporter = {
        let progress = progress.clone();
        let every = Duration::from_secs(args.progress_seconds.max(1));
        tokio::spawn(async move {
            let mut last = (Instant::now(), 0_u64);
            loop {
                tokio::time::sleep(every).await;
                let done = progress.created.load(Ordering::Relaxed) + progress.refused.load(Ordering::Relaxed);
                let skipped = progress.skipped.load(Ordering::Relaxed);
                let now = Instant::now();
                let recent = (done - last.1) as f64 / now.duration_since(last.0).as_secs_f64().max(1e-9);
                let overall = done as f64 / load_started.elapsed().as_secs_f64().max(1e-9);
                let left = total.saturating_sub(done + skipped);
                println!(
                    "  {:>7.0} s: {done} created ({skipped} skipped), {recent:.0}/s now, {overall:.0}/s overall, \
                     ~{:.0} s left",
                    load_started.elapsed().as_secs_f64(),
                    left as f64 / recent.max(1.0)
                );
                last = (now, done);
            }
        })
    };
    for task in tasks {
        task.await.context("a loading task panicked")?;
    }
    reporter.abort();
    let elapsed = load_started.elapsed();

    let created = progress.created.load(Ordering::Relaxed);
    let refused = progress.refused.load(Ordering::Relaxed);
    let skipped = progress.skipped.load(Ordering::Relaxed);
    let equality = progress.equality.load(Ordering::Relaxed);
    let failed = progress.failed.load(Ordering::Relaxed);
    let calls = bench.timed.take_calls();
    let of = |op: Op| calls.iter().filter(|c| c.op == op).map(|c| c.elapsed).collect::<Vec<_>>();
    let inserts = Percentiles::of(&of(Op::Insert));
    let documents = Percentiles::of(&of(Op::WriteDocument));
    let secs = elapsed.as_secs_f64().max(1e-9);
    bench.close().await;
    let (db, wal) = database_bytes(bench.path());

    println!("\n## Load ({} persons, seed {})\n", args.persons, args.seed);
    println!("| Measure | Value |\n|---|---|");
    println!("| Persons created | {created} ({refused} refused as duplicates, {skipped} already stored) |");
    println!("| Equality documents written | {equality} |");
    println!("| Failures | {failed} |");
    println!("| Wall time | {secs:.1} s |");
    println!("| Creates per second | {:.0} |", (created + refused) as f64 / secs);
    println!("| Store writes per second (creates + equality) | {:.0} |", (created + refused + equality) as f64 / secs);
    println!(
        "| Insert (writer) latency p50 / p99 / max | {:.2} / {:.2} / {:.1} ms |",
        inserts.p50, inserts.p99, inserts.max
    );
    println!(
        "| Equality write latency p50 / p99 / max | {:.2} / {:.2} / {:.1} ms |",
        documents.p50, documents.p99, documents.max
    );
    println!("| Database file (after close) | {} (WAL {}) |", human_bytes(db), human_bytes(wal));
    println!("| synchronous / tasks | {} / {} |", args.synchronous, args.concurrency);

    let stored = created + skipped;
    if stored + refused < total {
        println!(
            "\nStopped before the end: the store holds the first {} of the {total} persons. Run again with --resume \
             to continue, or measure them with `search-latency --prefix {}`.",
            stored + refused,
            stored + refused
        );
    }
    if failed > 0 {
        bail!("{failed} persons failed to load");
    }
    Ok(())
}

/// Loads one person (and its equality data).
async fn load_one(
    bench: &Bench,
    ctx: &person_core::RequestContext,
    person: &SyntheticPerson,
    nino: Option<&str>,
    resume: bool,
    check_duplicates: bool,
    progress: &Progress,
) -> Result<()> {
    let id = person.person.id;
    let repository: &dyn PersonRepository = bench.timed.as_ref();
    let present = resume && repository.get(id).await?.is_some();
    if present {
        progress.skipped.fetch_add(1, Ordering::Relaxed);
    } else {
        let body = create_body(person)?;
        let options = CreateOptions { allow_duplicate: !check_duplicates, ..CreateOptions::default() };
        match bench.service.create(ctx, &body, options).await {
            Ok(_) => {
                progress.created.fetch_add(1, Ordering::Relaxed);
            }
            Err(CreatePersonError::Duplicate { .. }) => {
                progress.refused.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            Err(CreatePersonError::DuplicateId(_)) => {
                progress.skipped.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => bail!("create failed: {e:?}"),
        }
    }
    let Some(nino) = nino else { return Ok(()) };
    let documents: &dyn DocumentRepository = bench.timed.as_ref();
    if resume && documents.get_document(id, &DocumentKind::Equality).await?.is_some() {
        return Ok(());
    }
    let body = serde_json::to_vec(&json!({ "nationalInsuranceNumber": nino }))?;
    match bench.service.put_equality(ctx, id, None, &body).await {
        Ok(_) => {
            progress.equality.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        // Written by an earlier, interrupted run.
        Err(DocumentError::PreconditionRequired) => Ok(()),
        Err(e) => bail!("equality write failed: {e:?}"),
    }
}

#[cfg(test)]
mod tests {
    use person_core::testkit::synthetic::SyntheticConfig;

    use super::*;

    #[test]
    fn a_synthetic_person_makes_a_valid_create_body_with_its_own_id() {
        let data = generate(&SyntheticConfig::new(50, 1));
        for person in &data.persons {
            let body = create_body(person).unwrap();
            let draft = person_core::validate::parse_draft(&body).unwrap();
            assert_eq!(draft.id, Some(person.person.id.as_uuid()));
            let today = chrono::NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
            assert!(person_core::validate::validate(&draft, today).is_ok());
        }
    }

    #[test]
    fn the_equality_share_is_deterministic_and_roughly_the_share() {
        let chosen = (0..10_000).filter(|&i| with_equality(42, i, 0.3)).count();
        assert!((2_700..3_300).contains(&chosen), "{chosen}");
        assert!((0..100).all(|i| with_equality(42, i, 0.3) == with_equality(42, i, 0.3)));
        assert!((0..100).all(|i| with_equality(42, i, 1.0)));
        assert!((0..100).all(|i| !with_equality(42, i, 0.0)));
    }
}
