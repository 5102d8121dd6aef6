//! `search-latency`: latency of search and match against a loaded SQLite store, in process (no HTTP).
//!
//! The register is regenerated from the same `--persons` and `--seed` as `load`, so every query knows which
//! stored person it is after. A bounded, deterministic mix of queries runs against
//! [`PersonService::search`](person_core::PersonService::search) and
//! [`PersonService::match_person`](person_core::PersonService::match_person):
//!
//! | Kind | Query |
//! |---|---|
//! | `name` | `firstName` + `lastName` of a registered person |
//! | `name+dob` | the same with `dateOfBirth` |
//! | `typo-name` | `firstName` + `lastName` of a labelled duplicate with a typo in a name |
//! | `postcode` | a registered person's postcode (every other one without its space) |
//! | `q` | free text: `first surname`, `first surname postcode` or `surname first DD/MM/YYYY` |
//! | `match` | `POST /persons/match` body of a labelled duplicate (its names, date of birth, address, NI number) |
//!
//! Each operation is timed end to end (parsing, the candidate query, scoring, ranking and the audit append of
//! the disclosure, which is a write on the single writer connection). The store's ports are timed too, so the
//! report splits the latency into the candidate query and the audit append. With `--explain`, the keys of the
//! slowest candidate queries are looked up (rows per key) and the plan of the candidate query is printed.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use person_core::PersonId;
use person_core::ports::PersonRepository;
use person_core::service::{MIN_PREFIX_CHARS, SearchQuery};
use person_core::testkit::synthetic::{Corruption, QueryKind, SyntheticDataSet, SyntheticPerson, generate};
use person_sqlite::Synchronous;
use serde_json::{Map, Value};
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

use crate::harness::{Bench, Call, LABEL, Op, Percentiles, Rng, caller, database_bytes, human_bytes};

/// The SPEC §11 search targets at 1,000,000 persons, in ms.
const TARGET_P50_MS: f64 = 10.0;
/// The p99 target.
const TARGET_P99_MS: f64 = 50.0;

/// Arguments of `search-latency`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The store `load` filled: `sqlite:///absolute/path.db`.
    #[arg(long)]
    store: String,
    /// Persons on the register (as given to `load`).
    #[arg(long)]
    persons: usize,
    /// The seed of the register (as given to `load`).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Only the first this many persons of the register are stored (a load stopped by `--max-seconds` stores
    /// a prefix of the register): queries are drawn from them only, and the report is for this many persons.
    #[arg(long)]
    prefix: Option<usize>,
    /// Measured operations (spread evenly over the six kinds).
    #[arg(long, default_value_t = 2000)]
    queries: usize,
    /// Unmeasured operations first, to warm the caches.
    #[arg(long, default_value_t = 120)]
    warmup: usize,
    /// Operations in flight at once.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Reader connections of the store.
    #[arg(long, default_value_t = 4)]
    readers: u32,
    /// `PRAGMA synchronous` of the store: `full` (the server's default) or `normal`. Searches write an audit
    /// entry, so this matters.
    #[arg(long, default_value = "full")]
    synchronous: Synchronous,
    /// Stop measuring after this many seconds.
    #[arg(long, default_value_t = 900)]
    max_seconds: u64,
    /// Also count the rows of each key of the slowest candidate queries and print the candidate query's plan.
    #[arg(long)]
    explain: bool,
    /// Also write the Markdown report to this file.
    #[arg(long)]
    report: Option<PathBuf>,
}

/// The kinds of operation, in the order they are interleaved.
const KINDS: [&str; 6] = ["name", "name+dob", "typo-name", "postcode", "q", "match"];

/// What an operation does.
pub(crate) enum Operation {
    /// A search with these criteria.
    Search(SearchQuery),
    /// A `POST /persons/match` body.
    Match(Vec<u8>),
}

/// One planned operation.
pub(crate) struct Planned {
    /// Its kind (one of [`KINDS`]).
    pub(crate) kind: &'static str,
    /// What it does.
    pub(crate) operation: Operation,
    /// The registered person the query is after.
    pub(crate) expected: Option<PersonId>,
}

/// One measured operation.
struct Outcome {
    kind: &'static str,
    elapsed: Duration,
    /// The expected person is among the results (first page of a search, the candidates of a match).
    found: bool,
    /// The expected person is the first result.
    first: bool,
    /// Results answered.
    results: usize,
}

fn iso(date: chrono::NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

fn search(build: impl FnOnce(&mut SearchQuery)) -> Operation {
    let mut query = SearchQuery::default();
    build(&mut query);
    Operation::Search(query)
}

/// The deterministic mix of `count` operations on the register (also replayed over HTTP by `api`).
pub(crate) fn plan(data: &SyntheticDataSet, seed: u64, count: usize, purpose: u64) -> Vec<Planned> {
    let mut rng = Rng::new(seed, purpose);
    let duplicates: Vec<usize> = (0..data.queries.len())
        .filter(|&i| data.queries[i].kind == QueryKind::Duplicate && data.queries[i].expected.is_some())
        .collect();
    let typos: Vec<usize> = duplicates
        .iter()
        .copied()
        .filter(|&i| {
            let q = &data.queries[i];
            q.corruptions.iter().any(|c| matches!(c, Corruption::FirstNameTypo | Corruption::SurnameTypo))
                && [&q.profile.first_name, &q.profile.surname]
                    .iter()
                    .all(|n| n.as_ref().is_some_and(|n| n.trim().chars().count() >= MIN_PREFIX_CHARS))
        })
        .collect();
    let mut planned = Vec::with_capacity(count);
    for i in 0..count {
        let kind = KINDS[i % KINDS.len()];
        let variant = i / KINDS.len();
        // A person with every field the queries use (at 1,000,000 persons the generator runs out of postcode units
        // and leaves some persons without one).
        let usable = |p: &SyntheticPerson| {
            let profile = p.profile();
            let long = |n: &Option<String>| n.as_ref().is_some_and(|n| n.trim().chars().count() >= MIN_PREFIX_CHARS);
            long(&profile.first_name)
                && long(&profile.surname)
                && profile.date_of_birth.is_some()
                && profile.postcodes.first().is_some_and(|p| !p.trim().is_empty())
        };
        let Some(person) = (0..100).map(|_| &data.persons[rng.below(data.persons.len())]).find(|p| usable(p)) else {
            continue;
        };
        let profile = person.profile();
        let id = Some(person.person.id);
        let first = profile.first_name.clone();
        let surname = profile.surname.clone();
        let postcode = profile.postcodes.first().cloned();
        let item = match kind {
            "name" => Planned {
                kind,
                operation: search(|q| {
                    q.first_name = first;
                    q.last_name = surname;
                }),
                expected: id,
            },
            "name+dob" => Planned {
                kind,
                operation: search(|q| {
                    q.first_name = first;
                    q.last_name = surname;
                    q.date_of_birth = profile.date_of_birth.map(iso);
                }),
                expected: id,
            },
            "typo-name" => {
                let Some(query) = typos.get(rng.below(typos.len())).map(|&i| &data.queries[i]) else { continue };
                Planned {
                    kind,
                    operation: search(|q| {
                        q.first_name = query.profile.first_name.clone();
                        q.last_name = query.profile.surname.clone();
                    }),
                    expected: query.expected,
                }
            }
            "postcode" => Planned {
                kind,
                operation: search(|q| {
                    q.postcode =
                        if variant.is_multiple_of(2) { postcode } else { postcode.map(|p| p.replace(' ', "")) };
                }),
                expected: id,
            },
            "q" => {
                let (f, s) = (first.unwrap_or_default(), surname.unwrap_or_default());
                let text = match variant % 3 {
                    0 => format!("{f} {s}"),
                    1 => format!("{f} {s} {}", postcode.unwrap_or_default()),
                    _ => {
                        let dob = profile.date_of_birth.map(|d| d.format("%d/%m/%Y").to_string());
                        format!("{s} {f} {}", dob.unwrap_or_default())
                    }
                };
                Planned { kind, operation: search(|q| q.q = Some(text.trim().to_owned())), expected: id }
            }
            _ => {
                let Some(query) = duplicates.get(rng.below(duplicates.len())).map(|&i| &data.queries[i]) else {
                    continue;
                };
                Planned { kind, operation: Operation::Match(match_body(&query.profile)), expected: query.expected }
            }
        };
        planned.push(item);
    }
    planned
}

/// The `POST /persons/match` body of a profile.
fn match_body(profile: &person_core::matching::MatchProfile) -> Vec<u8> {
    let mut body = Map::new();
    let mut put = |key: &str, value: Option<String>| {
        if let Some(value) = value {
            body.insert(key.to_owned(), Value::String(value));
        }
    };
    put("firstName", profile.first_name.clone());
    put("middleName", profile.middle_name.clone());
    put("surname", profile.surname.clone());
    put("dateOfBirth", profile.date_of_birth.map(iso));
    put("postcode", profile.postcodes.first().cloned());
    put("address", profile.addresses.first().cloned());
    put("nationalInsuranceNumber", profile.nino.clone());
    serde_json::to_vec(&Value::Object(body)).unwrap_or_default()
}

/// Runs one operation and judges its result.
async fn execute(bench: &Bench, ctx: &person_core::RequestContext, planned: &Planned) -> Result<Outcome> {
    let started = Instant::now();
    let ids: Vec<PersonId> = match &planned.operation {
        Operation::Search(query) => {
            let page = bench.service.search(ctx, query.clone()).await.map_err(|e| {
                // Synthetic data only: the criteria may be printed.
                anyhow::anyhow!(
                    "{} search {:?} {:?} {:?} {:?} {:?} failed: {e:?}",
                    planned.kind,
                    query.first_name,
                    query.last_name,
                    query.date_of_birth,
                    query.postcode,
                    query.q
                )
            })?;
            page.hits.iter().map(|h| h.person.id).collect()
        }
        Operation::Match(body) => {
            let found = bench
                .service
                .match_person(ctx, body)
                .await
                .map_err(|e| anyhow::anyhow!("match {} failed: {e:?}", String::from_utf8_lossy(body)))?;
            found.iter().map(|c| c.person.id).collect()
        }
    };
    let elapsed = started.elapsed();
    let found = planned.expected.is_some_and(|e| ids.contains(&e));
    let first = planned.expected.is_some_and(|e| ids.first() == Some(&e));
    Ok(Outcome { kind: planned.kind, elapsed, found, first, results: ids.len() })
}

/// Runs `planned` with `concurrency` operations in flight, until done or `deadline`.
async fn run_all(
    bench: &Arc<Bench>,
    planned: Arc<Vec<Planned>>,
    concurrency: usize,
    deadline: Instant,
) -> Result<Vec<Outcome>> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (bench, planned, next) = (bench.clone(), planned.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let ctx = caller();
            let mut outcomes = Vec::new();
            while Instant::now() < deadline {
                let Some(item) = planned.get(next.fetch_add(1, Ordering::Relaxed)) else { break };
                outcomes.push(LABEL.scope(item.kind, execute(&bench, &ctx, item)).await?);
            }
            anyhow::Ok(outcomes)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.context("a query task panicked")??);
    }
    Ok(all)
}

/// Runs the benchmark.
pub(crate) async fn run(args: &Args) -> Result<()> {
    let started = Instant::now();
    let mut data = generate(&crate::harness::register_config(args.persons, args.seed));
    if let Some(prefix) = args.prefix {
        data.persons.truncate(prefix);
        let stored: HashSet<PersonId> = data.persons.iter().map(|p| p.person.id).collect();
        data.queries.retain(|q| q.expected.is_some_and(|e| stored.contains(&e)));
    }
    println!(
        "generated {} persons and {} labelled queries (seed {}) in {:.1} s",
        data.persons.len(),
        data.queries.len(),
        args.seed,
        started.elapsed().as_secs_f64()
    );
    let bench = Arc::new(Bench::open(&args.store, args.synchronous, args.readers, true, true).await?);
    check_loaded(&bench, &data).await?;

    let warmup = Arc::new(plan(&data, args.seed, args.warmup, 2));
    let planned = Arc::new(plan(&data, args.seed, args.queries, 1));
    let stored = data.persons.len();
    drop(data);
    let deadline = Instant::now() + Duration::from_secs(args.max_seconds);
    run_all(&bench, warmup, args.concurrency, deadline).await?;
    bench.timed.take_calls();
    let measured_started = Instant::now();
    let outcomes = run_all(&bench, planned, args.concurrency, deadline).await?;
    let wall = measured_started.elapsed();
    let calls = bench.timed.take_calls();

    let mut report = report(args, &bench, &outcomes, &calls, wall, stored);
    if args.explain {
        report.push_str(&explain(&bench, &calls).await?);
    }
    bench.close().await;
    print!("{report}");
    if let Some(path) = &args.report {
        std::fs::write(path, &report).with_context(|| format!("writing the report to {}", path.display()))?;
    }
    Ok(())
}

/// Fails unless the store holds the register (a sample of its persons, across the whole register).
async fn check_loaded(bench: &Bench, data: &SyntheticDataSet) -> Result<()> {
    let repository: &dyn PersonRepository = bench.timed.as_ref();
    let n = data.persons.len();
    let mut missing = 0;
    for i in 0..50 {
        let index = (i * n / 50).min(n.saturating_sub(1));
        let Some(person) = data.persons.get(index) else { continue };
        if repository.get(person.person.id).await.map_err(|e| anyhow::anyhow!("{e:?}"))?.is_none() {
            missing += 1;
        }
    }
    if missing > 0 {
        bail!(
            "{missing} of 50 sampled persons are not in the store: load it with `person-bench load` and the same \
             --persons and --seed (or finish the load with --resume)"
        );
    }
    Ok(())
}

fn ms(p: &Percentiles) -> String {
    format!("{:.2} | {:.2} | {:.2} | {:.1}", p.p50, p.p95, p.p99, p.max)
}

fn pct(n: usize, of: usize) -> String {
    format!("{:.1} %", n as f64 * 100.0 / of.max(1) as f64)
}

/// The Markdown report.
fn report(args: &Args, bench: &Bench, outcomes: &[Outcome], calls: &[Call], wall: Duration, stored: usize) -> String {
    let mut out = String::new();
    let (db, wal) = database_bytes(bench.path());
    let register = if stored == args.persons {
        format!("{stored} persons, seed {}", args.seed)
    } else {
        format!("{stored} persons: the first {stored} of the {}-person register of seed {}", args.persons, args.seed)
    };
    let _ = writeln!(
        out,
        "\n## Search and match latency ({register}, SQLite)\n\n{} operations in {:.1} s ({:.0}/s), \
         concurrency {}, {} readers, synchronous={}, database {} (WAL {}).\n",
        outcomes.len(),
        wall.as_secs_f64(),
        outcomes.len() as f64 / wall.as_secs_f64().max(1e-9),
        args.concurrency,
        args.readers,
        args.synchronous,
        human_bytes(db),
        human_bytes(wal)
    );
    let _ = writeln!(
        out,
        "| Kind | Count | p50 ms | p95 ms | p99 ms | max ms | Target met (p50 ≤ {TARGET_P50_MS}, p99 ≤ {TARGET_P99_MS}) \
         | Expected person returned | … ranked first | Results (mean) |\n|---|---|---|---|---|---|---|---|---|---|"
    );
    let mut rows: Vec<(&str, Vec<&Outcome>)> =
        KINDS.iter().map(|k| (*k, outcomes.iter().filter(|o| o.kind == *k).collect())).collect();
    rows.push(("all searches", outcomes.iter().filter(|o| o.kind != "match").collect()));
    for (kind, list) in &rows {
        let p = Percentiles::of(&list.iter().map(|o| o.elapsed).collect::<Vec<_>>());
        let met = if p.p50 <= TARGET_P50_MS && p.p99 <= TARGET_P99_MS { "yes" } else { "**no**" };
        let found = list.iter().filter(|o| o.found).count();
        let first = list.iter().filter(|o| o.first).count();
        let results = list.iter().map(|o| o.results).sum::<usize>() as f64 / list.len().max(1) as f64;
        let _ = writeln!(
            out,
            "| {kind} | {} | {} | {met} | {} | {} | {results:.1} |",
            p.count,
            ms(&p),
            pct(found, list.len()),
            pct(first, list.len())
        );
    }
    let _ = writeln!(
        out,
        "\nWhere the time goes (store calls timed at the port, per kind): the candidate query (`candidates`, rows \
         answered and keys asked) and the audit append of the disclosure (a write).\n\n\
         | Kind | candidates p50 ms | candidates p99 ms | candidates max ms | rows (mean / max) | keys (mean / max) \
         | audit append p50 ms | audit append p99 ms |\n|---|---|---|---|---|---|---|---|"
    );
    let mut by_kind: BTreeMap<usize, (&str, Vec<&Call>)> = BTreeMap::new();
    for (i, kind) in KINDS.iter().enumerate() {
        by_kind.insert(i, (kind, calls.iter().filter(|c| c.label == Some(kind)).collect()));
    }
    for (kind, list) in by_kind.values() {
        let of = |op: Op| list.iter().filter(|c| c.op == op).map(|c| c.elapsed).collect::<Vec<_>>();
        let candidates: Vec<&&Call> = list.iter().filter(|c| c.op == Op::Candidates).collect();
        let c = Percentiles::of(&of(Op::Candidates));
        let a = Percentiles::of(&of(Op::AuditAppend));
        let rows_mean = candidates.iter().map(|c| c.rows).sum::<usize>() as f64 / candidates.len().max(1) as f64;
        let rows_max = candidates.iter().map(|c| c.rows).max().unwrap_or(0);
        let keys_mean = candidates.iter().map(|c| c.keys.len()).sum::<usize>() as f64 / candidates.len().max(1) as f64;
        let keys_max = candidates.iter().map(|c| c.keys.len()).max().unwrap_or(0);
        let _ = writeln!(
            out,
            "| {kind} | {:.2} | {:.2} | {:.1} | {rows_mean:.0} / {rows_max} | {keys_mean:.1} / {keys_max} | {:.2} | {:.2} |",
            c.p50, c.p99, c.max, a.p50, a.p99
        );
    }
    out
}

/// Rows per key of the slowest candidate queries, how the work they do relates to their time, and the plan.
async fn explain(bench: &Bench, calls: &[Call]) -> Result<String> {
    let options = SqliteConnectOptions::new().filename(bench.path()).read_only(true);
    let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await?;
    let mut out = String::new();
    let mut postings: BTreeMap<String, i64> = BTreeMap::new();
    let candidates: Vec<&Call> = calls.iter().filter(|c| c.op == Op::Candidates).collect();
    // Rows per key, for every key asked (bounded by the number of measured operations).
    for call in &candidates {
        for key in &call.keys {
            if !postings.contains_key(key) {
                let count: i64 = sqlx::query_scalar("SELECT count(*) FROM search_keys WHERE key = ?")
                    .bind(key)
                    .fetch_one(&pool)
                    .await?;
                postings.insert(key.clone(), count);
            }
        }
    }
    let scanned = |call: &Call| call.keys.iter().map(|k| postings.get(k).copied().unwrap_or(0)).sum::<i64>();
    let _ = writeln!(
        out,
        "\n### Work of the candidate query\n\nKey rows read = the `search_keys` rows of every key asked (each joined to \
         its person and grouped), which the query must read before it can keep the best `limit`.\n\n\
         | Kind | key rows read p50 | p99 | max | candidates ms p50 | ms p99 |\n|---|---|---|---|---|---|"
    );
    for kind in KINDS {
        let list: Vec<&&Call> = candidates.iter().filter(|c| c.label == Some(kind)).collect();
        let mut work: Vec<i64> = list.iter().map(|c| scanned(c)).collect();
        work.sort_unstable();
        let at = |q: f64| -> i64 {
            let rank = ((q * work.len() as f64).ceil() as usize).clamp(1, work.len().max(1));
            work.get(rank - 1).copied().unwrap_or(0)
        };
        let p = Percentiles::of(&list.iter().map(|c| c.elapsed).collect::<Vec<_>>());
        let _ = writeln!(out, "| {kind} | {} | {} | {} | {:.2} | {:.2} |", at(0.5), at(0.99), at(1.0), p.p50, p.p99);
    }
    let _ = writeln!(
        out,
        "\nCandidate-query time by key rows read (all kinds):\n\n| Key rows read | Queries | ms p50 | ms p99 |\n|---|---|---|---|"
    );
    let buckets: [(i64, i64); 6] =
        [(0, 1_000), (1_000, 3_000), (3_000, 10_000), (10_000, 30_000), (30_000, 100_000), (100_000, i64::MAX)];
    for (lo, hi) in buckets {
        let list: Vec<Duration> =
            candidates.iter().filter(|c| (lo..hi).contains(&scanned(c))).map(|c| c.elapsed).collect();
        if list.is_empty() {
            continue;
        }
        let p = Percentiles::of(&list);
        let label = if hi == i64::MAX { format!("≥ {lo}") } else { format!("{lo}–{hi}") };
        let _ = writeln!(out, "| {label} | {} | {:.2} | {:.2} |", p.count, p.p50, p.p99);
    }
    let _ = writeln!(out, "\n### The slowest candidate queries\n");
    let mut slowest: Vec<&&Call> = candidates.iter().collect();
    slowest.sort_by_key(|c| std::cmp::Reverse(c.elapsed));
    for call in slowest.iter().take(5) {
        let mut keys: Vec<(&String, i64)> =
            call.keys.iter().map(|k| (k, postings.get(k).copied().unwrap_or(0))).collect();
        keys.sort_by_key(|k| std::cmp::Reverse(k.1));
        let listed: Vec<String> = keys.iter().take(6).map(|(k, n)| format!("`{k}` {n}")).collect();
        let _ = writeln!(
            out,
            "* {} — {:.1} ms, {} keys, {} key rows read, {} candidates (limit {}); largest keys: {}",
            call.label.unwrap_or("?"),
            call.elapsed.as_secs_f64() * 1e3,
            call.keys.len(),
            scanned(call),
            call.rows,
            call.limit,
            listed.join(", ")
        );
    }
    let _ = writeln!(out, "\nKeys with the most rows among those asked:\n\n| Key | Rows |\n|---|---|");
    let mut broad: Vec<(&String, &i64)> = postings.iter().collect();
    broad.sort_by_key(|k| std::cmp::Reverse(*k.1));
    for (key, rows) in broad.iter().take(12) {
        let _ = writeln!(out, "| `{key}` | {rows} |");
    }
    if let Some(call) = slowest.first() {
        let keys = serde_json::to_string(&call.keys)?;
        // Both parts are constants of this program.
        let statement = format!("EXPLAIN QUERY PLAN {}", person_sqlite::queries::CANDIDATES.sql);
        let plan = sqlx::query(sqlx::AssertSqlSafe(statement))
            .bind(&keys)
            .bind(i64::from(call.limit))
            .fetch_all(&pool)
            .await?;
        let _ = writeln!(out, "\n`EXPLAIN QUERY PLAN` of the candidate query (`person.search_candidates`):\n\n```");
        for row in plan {
            let detail: String = row.try_get("detail").unwrap_or_default();
            let id: i64 = row.try_get("id").unwrap_or_default();
            let parent: i64 = row.try_get("parent").unwrap_or_default();
            let _ = writeln!(out, "{id:>3} {parent:>3}  {detail}");
        }
        let _ = writeln!(out, "```");
        // The same statement again, alone, to separate the database's time from the pool and decoding.
        let started = Instant::now();
        let rows = sqlx::query(person_sqlite::queries::CANDIDATES.sql)
            .bind(&keys)
            .bind(i64::from(call.limit))
            .fetch_all(&pool)
            .await?
            .len();
        let _ = writeln!(
            out,
            "\nThe slowest candidate query re-run alone on a fresh connection: {:.1} ms, {rows} rows.",
            started.elapsed().as_secs_f64() * 1e3
        );
    }
    pool.close().await;
    Ok(out)
}
