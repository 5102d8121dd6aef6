//! `api`: the Person API under load, end to end, against the real `person-api` binary on loopback.
//!
//! One run: generate the synthetic register (`harness::register_config`), write it as NDJSON (this API's Person
//! JSON, one per line, with its id, `personRef`, version 0 and timestamps) and load it with `person-api import`
//! (timed); start `person-api serve` and time spawn → first 200 from `/readyz`; sample its resident memory every
//! 100 ms; then run bounded workloads with `--concurrency` keep-alive HTTP clients:
//!
//! | Workload | Request | Expected |
//! |---|---|---|
//! | `get` | `GET /api/v1/persons/{id}` of random registered persons | 200 |
//! | `search-name` | `GET /api/v1/persons?firstName=…&lastName=…` (the `name` kind of `search-latency`) | 200 |
//! | `search-name-dob` | the same with `dateOfBirth` (the `name+dob` kind) | 200 |
//! | `match` | `POST /api/v1/persons/match` with a labelled duplicate (the `match` kind) | 200 |
//! | `create` | `POST /api/v1/persons` of new, distinct generated persons, duplicate check on | 201 |
//! | `patch` | `PATCH /api/v1/persons/{id}` with `If-Match` on distinct persons (ETags read first, unmeasured) | 204 |
//! | `export` | `GET /api/v1/reporting/persons?format=csv`, streamed once, rows counted | 200 |
//!
//! and, in the same run with the same concurrency and id sample, the raw baselines of a point read: (a) the
//! store's `PersonRepository::get` called in this process, (b) the store's point-read statement alone through
//! sqlx. Prints the results table (with SPEC §11's targets) and, with `--write-doc`, writes it with the machine,
//! the command and the date into the marked section of `docs/benchmarks.md`.

mod profile;
mod report;
mod server;
mod workload;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use person_core::PersonId;
use person_core::patch::draft_of;
use person_core::ports::PersonRepository;
use person_core::testkit::synthetic::{SyntheticDataSet, SyntheticPerson, generate};
use reqwest::StatusCode;
use serde_json::json;

use self::profile::{Profile, Scrape};
use self::report::{Line, Machine, Met, memory, millis, thousands};
use self::server::{Binary, Rss, Server};
use self::workload::{Bounds, Http, PatchItem, RawPool, Run};
use crate::harness::{Rng, register_config};
use crate::search_latency::{Operation, plan};

/// SPEC §11: `GET /persons/{id}` throughput at least this share of the raw point read's.
const TARGET_GET_SHARE: f64 = 0.5;
/// SPEC §11: search p50 (ms).
const TARGET_SEARCH_P50_MS: f64 = 10.0;
/// SPEC §11: search p99 (ms).
const TARGET_SEARCH_P99_MS: f64 = 50.0;
/// SPEC §11: creates with duplicate check per second.
const TARGET_CREATES_PER_S: f64 = 1_000.0;
/// SPEC §11: CSV export rows per second.
const TARGET_EXPORT_ROWS_PER_S: f64 = 100_000.0;
/// SPEC §11: server resident memory under load (100 MB).
const TARGET_RSS_BYTES: u64 = 100_000_000;
/// SPEC §11: start to ready.
const TARGET_READY: Duration = Duration::from_secs(1);
/// How many times over the raw baselines read the id sample.
const RAW_REPEAT: usize = 10;
/// The import issue: 1,000,000 persons in under 100 s.
const TARGET_IMPORT_PER_S: f64 = 10_000.0;

/// How the register gets into the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Loader {
    /// `person-api import` of the NDJSON file (the measured bulk load).
    Import,
    /// `POST /api/v1/persons?allowDuplicate=true` of each person with its own id, through a server started for it
    /// (for builds without the import sub-command; slow).
    Api,
}

/// A workload (`--workloads`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Workload {
    /// `GET /api/v1/persons/{id}`.
    Get,
    /// The raw point reads (a) and (b).
    Raw,
    /// Search by name.
    SearchName,
    /// Search by name and date of birth.
    SearchNameDob,
    /// `POST /api/v1/persons/match`.
    Match,
    /// Create with duplicate check.
    Create,
    /// `PATCH /api/v1/persons/{id}`.
    Patch,
    /// The persons CSV export.
    Export,
}

/// Arguments of `api`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Persons on the generated register.
    #[arg(long)]
    persons: usize,
    /// The seed of the register.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// The store, as the server takes it: `sqlite:///absolute/path.db` or `postgres://user@host:port/db`
    /// (`?schema=…` allowed).
    #[arg(long)]
    store: String,
    /// The `person-api` binary (a release build for figures worth quoting).
    #[arg(long, default_value = "target/release/person-api")]
    server: PathBuf,
    /// Operations in flight at once (one keep-alive connection each).
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Measured operations per workload (each also bounded by --max-seconds).
    #[arg(long, default_value_t = 5000)]
    requests: usize,
    /// Unmeasured operations before each workload.
    #[arg(long, default_value_t = 200)]
    warmup: usize,
    /// Longest each workload's warm-up, and then its measured part, may take.
    #[arg(long, default_value_t = 30)]
    max_seconds: u64,
    /// Longest the CSV export is read.
    #[arg(long, default_value_t = 120)]
    export_seconds: u64,
    /// Replace this run's block of the `person-bench api` section of this file (docs/benchmarks.md).
    #[arg(long)]
    write_doc: Option<PathBuf>,
    /// The store already holds this register (same --persons and --seed): do not load it.
    #[arg(long)]
    skip_import: bool,
    /// How the register is loaded.
    #[arg(long, value_enum, default_value = "import")]
    loader: Loader,
    /// Where the NDJSON file, the import report and the server log go (default: the SQLite file's directory, or
    /// the temporary directory).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Keep the NDJSON file after the import.
    #[arg(long)]
    keep_ndjson: bool,
    /// Seed of the persons the `create` workload creates (default: drawn from the clock, so that a rerun on the
    /// same store creates new persons, not duplicates of the last run's).
    #[arg(long)]
    create_seed: Option<u64>,
    /// The server's log filter (`PERSON_API_LOG`); `info` logs one line per request, as in production.
    #[arg(long, default_value = "info")]
    server_log: String,
    /// The workloads to run (comma-separated).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "get,raw,search-name,search-name-dob,match,create,patch,export"
    )]
    workloads: Vec<Workload>,
}

/// Which store the URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreKind {
    Sqlite,
    Postgres,
}

impl StoreKind {
    fn of(url: &str) -> Result<Self> {
        let scheme = url.split_once(':').map_or("", |(s, _)| s).to_ascii_lowercase();
        match scheme.as_str() {
            "sqlite" => Ok(Self::Sqlite),
            "postgres" | "postgresql" => Ok(Self::Postgres),
            _ => bail!("--store must be sqlite://… or postgres://… (the raw baselines are written for those two)"),
        }
    }

    fn key(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        }
    }
}

/// One line of the register as `person-api import` reads it: the person's JSON as this API serialises it.
fn ndjson_line(person: &SyntheticPerson) -> Result<String> {
    Ok(serde_json::to_string(&person.person)?)
}

/// The create body of a new person: what a client sends (no id, no `allowDuplicate`).
fn create_body(person: &SyntheticPerson) -> Result<Vec<u8>> {
    Ok(serde_json::to_vec(&draft_of(&person.person))?)
}

/// The load body of a registered person (`--loader api`): its create body with its own id.
fn load_body(person: &SyntheticPerson) -> Result<Vec<u8>> {
    let mut draft = draft_of(&person.person);
    draft.id = Some(person.person.id.as_uuid());
    Ok(serde_json::to_vec(&draft)?)
}

/// `count` distinct indices below `n` (all of them when `count >= n`), deterministic for `rng`.
fn distinct_indices(rng: &mut Rng, n: usize, count: usize) -> Vec<usize> {
    let mut indices: Vec<usize> = (0..n).collect();
    let take = count.min(n);
    for i in 0..take {
        let j = i + rng.below(n - i);
        indices.swap(i, j);
    }
    indices.truncate(take);
    indices
}

/// A search URL of the API for a planned search.
fn search_url(base: &str, query: &person_core::service::SearchQuery) -> Result<String> {
    let mut params: Vec<(&str, &str)> = Vec::new();
    let fields = [
        ("firstName", &query.first_name),
        ("lastName", &query.last_name),
        ("dateOfBirth", &query.date_of_birth),
        ("address", &query.address),
        ("postcode", &query.postcode),
        ("nino", &query.nino),
        ("q", &query.q),
    ];
    for (name, value) in &fields {
        if let Some(value) = value {
            params.push((name, value));
        }
    }
    Ok(reqwest::Url::parse_with_params(&format!("{base}/api/v1/persons"), &params)?.to_string())
}

/// The work directory (created).
fn work_dir(args: &Args, kind: StoreKind) -> Result<PathBuf> {
    let dir = match (&args.work_dir, kind) {
        (Some(dir), _) => dir.clone(),
        (None, StoreKind::Sqlite) => sqlite_path(&args.store)?
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(std::env::temp_dir),
        (None, StoreKind::Postgres) => std::env::temp_dir(),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// The file of an `sqlite://` URL.
fn sqlite_path(url: &str) -> Result<PathBuf> {
    let lower = url.to_ascii_lowercase();
    let skip = if lower.starts_with("sqlite://") {
        "sqlite://".len()
    } else if lower.starts_with("sqlite:") {
        "sqlite:".len()
    } else {
        bail!("not an sqlite: URL");
    };
    Ok(PathBuf::from(url.get(skip..).unwrap_or_default()))
}

/// A random secret for the run's tokens (256 bits from two v4 UUIDs).
fn random_secret() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

/// What the load did: its line of the table.
async fn load(
    args: &Args,
    binary: &Binary,
    data: &SyntheticDataSet,
    dir: &Path,
    kind: StoreKind,
    concurrency: usize,
) -> Result<Line> {
    if kind == StoreKind::Sqlite && sqlite_path(&args.store)?.exists() {
        bail!(
            "{} exists: an import needs an empty store. Delete it (and its -wal/-shm files), or pass --skip-import \
             if it already holds this register",
            args.store
        );
    }
    if kind == StoreKind::Postgres && postgres_holds_persons(&args.store).await? {
        bail!(
            "the PostgreSQL store already holds persons: an import needs an empty store. Use a fresh database or \
             `?schema=`, or pass --skip-import if it already holds this register"
        );
    }
    match args.loader {
        Loader::Import => {
            let file = dir.join(format!("persons-{}-seed{}.ndjson", args.persons, args.seed));
            let report = dir.join(format!("persons-{}-seed{}.import-report.ndjson", args.persons, args.seed));
            write_ndjson(&file, data)?;
            let mut state = file.as_os_str().to_owned();
            state.push(".import-state");
            let _ = std::fs::remove_file(&state);
            let _ = std::fs::remove_file(&report);
            println!("importing {} persons with `{} import` …", data.persons.len(), binary.path.display());
            let elapsed = binary.import(&file, &report);
            if !args.keep_ndjson {
                let _ = std::fs::remove_file(&file);
            }
            let elapsed = elapsed?;
            let reported = std::fs::read_to_string(&report).map(|t| t.lines().count()).unwrap_or(0);
            let rate = data.persons.len() as f64 / elapsed.as_secs_f64().max(1e-9);
            println!(
                "imported in {:.1} s ({rate:.0} persons/s), {reported} records reported in {}",
                elapsed.as_secs_f64(),
                report.display()
            );
            Ok(Line {
                what: format!("Import (`person-api import`, NDJSON, {:.1} s)", elapsed.as_secs_f64()),
                done: thousands(data.persons.len() as u64),
                errors: format!("{reported} reported"),
                throughput: format!("{}/s", thousands(rate.round() as u64)),
                latency: None,
                rss: None,
                target: "≥ 10,000/s (import issue: 1,000,000 in < 100 s)".to_owned(),
                met: Met::when(rate >= TARGET_IMPORT_PER_S && reported == 0),
            })
        }
        Loader::Api => {
            let mut server = binary.serve(&dir.join(format!("person-api-{}-load.log", kind.key())))?;
            server.ready(Duration::from_secs(120)).await?;
            let http = Arc::new(Http::new(&server.base, binary.token()?, concurrency)?);
            let bodies = Arc::new(data.persons.iter().map(load_body).collect::<Result<Vec<_>>>()?);
            println!("loading {} persons through POST /api/v1/persons?allowDuplicate=true …", bodies.len());
            let bounds = Bounds { concurrency, warmup: 0, requests: bodies.len(), max: Duration::from_secs(24 * 3600) };
            let run =
                workload::post_bodies(http, "/api/v1/persons?allowDuplicate=true", bodies, StatusCode::CREATED, bounds)
                    .await?;
            server.stop().await?;
            println!("loaded {} persons in {:.1} s ({:.0}/s)", run.ok, run.wall.as_secs_f64(), run.throughput());
            if run.errors > 0 {
                bail!("{} persons failed to load: {:?}", run.errors, run.error_kinds);
            }
            Ok(Line::of_run("Load through the API (`POST`, allowDuplicate)", &run, None, "—", Met::NotApplicable))
        }
    }
}

/// Writes the register as NDJSON.
fn write_ndjson(file: &Path, data: &SyntheticDataSet) -> Result<()> {
    use std::io::Write as _;
    let out = std::fs::File::create(file).with_context(|| format!("creating {}", file.display()))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, out);
    for person in &data.persons {
        out.write_all(ndjson_line(person)?.as_bytes())?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

/// Fails unless the server holds a sample of the register (for `--skip-import`).
async fn check_loaded(http: &Arc<Http>, ids: &[PersonId]) -> Result<()> {
    let sample: Vec<PersonId> = ids.iter().step_by((ids.len() / 20).max(1)).copied().collect();
    let bounds = Bounds { concurrency: 1, warmup: 0, requests: sample.len(), max: Duration::from_secs(60) };
    let run = workload::get_by_id(http.clone(), Arc::new(sample), bounds).await?;
    if run.errors > 0 {
        bail!(
            "{} of {} sampled persons cannot be read ({:?}): the store does not hold this register (same --persons \
             and --seed); run without --skip-import",
            run.errors,
            run.errors + run.ok,
            run.error_kinds
        );
    }
    Ok(())
}

/// The raw baselines' connections: the store opened in process, and a plain pool on its database.
struct Raw {
    store: Arc<dyn PersonRepository>,
    pool: RawPool,
}

impl Raw {
    async fn open(url: &str, kind: StoreKind, connections: u32) -> Result<Self> {
        match kind {
            StoreKind::Sqlite => {
                let store = person_sqlite::SqliteStore::open(url, person_sqlite::SqliteOptions::default())
                    .await
                    .map_err(|e| anyhow::anyhow!("opening {url}: {e:?}"))?;
                let options = sqlx::sqlite::SqliteConnectOptions::new().filename(store.path()).read_only(true);
                let pool =
                    sqlx::sqlite::SqlitePoolOptions::new().max_connections(connections).connect_with(options).await?;
                Ok(Self { store: Arc::new(store), pool: RawPool::Sqlite(pool) })
            }
            StoreKind::Postgres => {
                let store = person_postgres::PostgresStore::connect(url, person_postgres::PostgresOptions::default())
                    .await
                    .map_err(|e| anyhow::anyhow!("connecting to the store: {e:?}"))?;
                let pool = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(connections)
                    .connect_with(pg_options(url)?)
                    .await?;
                Ok(Self { store: Arc::new(store), pool: RawPool::Postgres(pool) })
            }
        }
    }

    async fn close(self) {
        self.store.close().await;
        match self.pool {
            RawPool::Sqlite(pool) => pool.close().await,
            RawPool::Postgres(pool) => pool.close().await,
        }
    }
}

/// Whether the store's `persons` table exists and has a row.
async fn postgres_holds_persons(url: &str) -> Result<bool> {
    let mut connection = <sqlx::PgConnection as sqlx::Connection>::connect_with(&pg_options(url)?)
        .await
        .context("connecting to PostgreSQL")?;
    let exists: Option<bool> =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM persons)").fetch_one(&mut connection).await.ok();
    let _ = sqlx::Connection::close(connection).await;
    Ok(exists == Some(true))
}

/// Connect options of a `postgres://` URL as the store reads it: its `schema` parameter becomes the
/// `search_path`.
fn pg_options(url: &str) -> Result<sqlx::postgres::PgConnectOptions> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut schema = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("schema", value)) => schema = Some(value.to_owned()),
            _ => kept.push(pair),
        }
    }
    let rebuilt = if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) };
    let options = sqlx::postgres::PgConnectOptions::from_str(&rebuilt)?;
    Ok(match schema {
        Some(schema) => options.options([("search_path", schema)]),
        None => options,
    })
}

/// Everything the workloads send, prepared before any clock starts.
struct Prepared {
    /// Registered persons to read (random, with repetition): `GET` and the raw baselines.
    ids: Arc<Vec<PersonId>>,
    /// Searches by name, and by name and date of birth (the `search-latency` mix).
    by_name: Vec<person_core::service::SearchQuery>,
    by_name_dob: Vec<person_core::service::SearchQuery>,
    /// Match bodies of labelled duplicates.
    matches: Arc<Vec<Vec<u8>>>,
    /// Create bodies of new, distinct persons.
    creates: Arc<Vec<Vec<u8>>>,
    /// The seed they were generated with.
    create_seed: u64,
    /// Distinct registered persons to patch.
    patch_ids: Vec<PersonId>,
}

impl Prepared {
    fn new(args: &Args, data: &SyntheticDataSet, bounds: Bounds) -> Result<Self> {
        let items = bounds.items();
        let mut rng = Rng::new(args.seed, 0xA1);
        let ids = (0..items).map(|_| data.persons[rng.below(data.persons.len())].person.id).collect();
        let planned = plan(data, args.seed, items * 6, 1);
        let searches = |kind: &str| -> Vec<person_core::service::SearchQuery> {
            planned
                .iter()
                .filter(|p| p.kind == kind)
                .filter_map(|p| match &p.operation {
                    Operation::Search(query) => Some(query.clone()),
                    Operation::Match(_) => None,
                })
                .collect()
        };
        let matches = planned
            .iter()
            .filter_map(|p| match &p.operation {
                Operation::Match(body) => Some(body.clone()),
                Operation::Search(_) => None,
            })
            .collect();
        let create_seed = args.create_seed.unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(7, |d| d.as_nanos() as u64)
        });
        let creates = if args.workloads.contains(&Workload::Create) {
            let fresh = generate(&register_config(items, create_seed));
            fresh.persons.iter().map(create_body).collect::<Result<Vec<_>>>()?
        } else {
            Vec::new()
        };
        let patch_ids = if args.workloads.contains(&Workload::Patch) {
            let mut rng = Rng::new(args.seed, 0xA5);
            distinct_indices(&mut rng, data.persons.len(), items)
                .into_iter()
                .map(|i| data.persons[i].person.id)
                .collect()
        } else {
            Vec::new()
        };
        Ok(Self {
            ids: Arc::new(ids),
            by_name: searches("name"),
            by_name_dob: searches("name+dob"),
            matches: Arc::new(matches),
            creates: Arc::new(creates),
            create_seed,
            patch_ids,
        })
    }
}

/// The running server and what is measured against it.
struct Session {
    http: Arc<Http>,
    rss: Arc<Rss>,
    base: String,
    /// For the `/metrics` scrapes.
    scraper: reqwest::Client,
    bounds: Bounds,
    lines: Vec<Line>,
    profiles: Vec<(String, Profile)>,
}

impl Session {
    /// Runs one workload inside an RSS window and between two `/metrics` scrapes; prints its outcome.
    async fn measure<F>(&mut self, what: &str, work: F) -> Result<(Run, u64)>
    where
        F: Future<Output = Result<Run>>,
    {
        println!("{what} …");
        let before = Scrape::of(&self.scraper, &self.base).await;
        self.rss.start_window();
        let run = work.await?;
        let peak = self.rss.window_peak();
        let profile = Profile::between(&before, &Scrape::of(&self.scraper, &self.base).await);
        println!(
            "  {} ok, {} errors in {:.1} s: {:.0}/s, p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms; server peak RSS {}",
            run.ok,
            run.errors,
            run.wall.as_secs_f64(),
            run.throughput(),
            run.latency.p50,
            run.latency.p95,
            run.latency.p99,
            memory(peak)
        );
        for (kind, n) in &run.error_kinds {
            println!("    {n}× {kind}");
        }
        if profile.requests > 0.0 {
            println!("  {}", profile.summary());
            self.profiles.push((what.to_owned(), profile));
        }
        Ok((run, peak))
    }

    /// A search workload and its line.
    async fn search(&mut self, what: &str, queries: &[person_core::service::SearchQuery]) -> Result<()> {
        let urls = queries.iter().map(|q| search_url(&self.base, q)).collect::<Result<Vec<_>>>()?;
        let work = workload::get_urls(self.http.clone(), Arc::new(urls), self.bounds);
        let (run, peak) = self.measure(what, work).await?;
        self.lines.push(Line::of_run(what, &run, Some(peak), &search_target(), search_met(&run)));
        Ok(())
    }
}

fn search_target() -> String {
    format!("p50 ≤ {TARGET_SEARCH_P50_MS} ms, p99 ≤ {TARGET_SEARCH_P99_MS} ms")
}

fn search_met(run: &Run) -> Met {
    if run.ok == 0 {
        return Met::NotApplicable;
    }
    Met::when(run.latency.p50 <= TARGET_SEARCH_P50_MS && run.latency.p99 <= TARGET_SEARCH_P99_MS)
}

/// Runs the benchmark.
pub(crate) async fn run(args: &Args) -> Result<()> {
    if args.concurrency == 0 || args.persons == 0 || args.requests == 0 {
        bail!("--persons, --requests and --concurrency must be at least 1");
    }
    let kind = StoreKind::of(&args.store)?;
    let machine = Machine::this();
    let date = chrono::Utc::now();
    let command = report::command_line(&std::env::args().collect::<Vec<_>>());
    let dir = work_dir(args, kind)?;
    let bounds = Bounds {
        concurrency: args.concurrency,
        warmup: args.warmup,
        requests: args.requests,
        max: Duration::from_secs(args.max_seconds),
    };

    let started = Instant::now();
    let data = generate(&register_config(args.persons, args.seed));
    println!(
        "generated {} persons (seed {}) in {:.1} s",
        data.persons.len(),
        args.seed,
        started.elapsed().as_secs_f64()
    );
    let binary = Binary {
        path: args.server.clone(),
        store: args.store.clone(),
        secret: random_secret(),
        log_level: args.server_log.clone(),
    };
    let mut lines = Vec::new();
    if !args.skip_import {
        lines.push(load(args, &binary, &data, &dir, kind, args.concurrency).await?);
    }
    let prepared = Prepared::new(args, &data, bounds)?;
    drop(data);

    // The server, as an operator starts it.
    let log = dir.join(format!("person-api-{}.log", kind.key()));
    let token = binary.token()?;
    let mut server: Server = binary.serve(&log)?;
    let ready = server.ready(Duration::from_secs(300)).await?;
    let rss = Rss::monitor(server.pid);
    let idle = rss.current();
    println!(
        "server ready in {} (pid {}, {} resident); log: {}",
        millis(ready),
        server.pid,
        memory(idle),
        log.display()
    );
    lines.push(Line::figure(
        "Start to ready (spawn → first 200 from `/readyz`)",
        &millis(ready),
        "≤ 1 s",
        Met::when(ready <= TARGET_READY),
    ));
    let http = Arc::new(Http::new(&server.base, token, args.concurrency)?);
    if args.skip_import {
        check_loaded(&http, &prepared.ids).await?;
    }
    let scraper = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let mut session =
        Session { http, rss: rss.clone(), base: server.base.clone(), scraper, bounds, lines, profiles: Vec::new() };
    let outcome = workloads(args, kind, &prepared, &mut session).await;
    let overall = rss.overall_peak();
    let (status, took) = server.stop().await?;
    println!("server stopped by SIGTERM in {} ({status})", millis(took));
    outcome?;
    let Session { mut lines, profiles, .. } = session;
    lines.push(Line {
        what: "Server resident memory, whole run".to_owned(),
        done: "—".to_owned(),
        errors: "—".to_owned(),
        throughput: format!("idle after start {}", memory(idle)),
        latency: None,
        rss: Some(overall),
        target: "≤ 100 MB under load".to_owned(),
        met: Met::when(overall <= TARGET_RSS_BYTES),
    });

    let table = format!("{}\n{}", report::table(&lines), profile::table(&profiles));
    println!("\n{table}");
    if let Some(path) = &args.write_doc {
        let run = DocRun { args, kind, machine: &machine, command: &command, date, create_seed: prepared.create_seed };
        let block = doc_block(&run, &table, status.success());
        let doc = std::fs::read_to_string(path).unwrap_or_default();
        let updated = report::update_doc(&doc, kind.key(), &doc_intro(), &block);
        std::fs::write(path, updated).with_context(|| format!("writing {}", path.display()))?;
        println!("wrote the {} block of {}", kind.title(), path.display());
    }
    if !status.success() {
        bail!("the server exited with {status} after SIGTERM");
    }
    Ok(())
}

/// The workloads, in order, against the running server (which the caller stops whatever happens here).
async fn workloads(args: &Args, kind: StoreKind, prepared: &Prepared, session: &mut Session) -> Result<()> {
    let enabled = |w: Workload| args.workloads.contains(&w);
    let bounds = session.bounds;
    let ids = &prepared.ids;

    // Raw connections first: the id sample is read once through them (unmeasured), so that the API and the raw
    // reads all find the same pages in the cache.
    let raw = if enabled(Workload::Raw) || enabled(Workload::Get) {
        let connections = u32::try_from(args.concurrency).unwrap_or(u32::MAX);
        let raw = Raw::open(&args.store, kind, connections).await?;
        let warm = Bounds { warmup: 0, requests: ids.len(), max: Duration::from_secs(600), ..bounds };
        let pre = workload::raw_sql_get(raw.pool.clone(), ids.clone(), warm).await?;
        if pre.errors > 0 {
            bail!("{} of the sampled persons are not in the store: {:?}", pre.errors, pre.error_kinds);
        }
        println!("pre-read the {} sampled ids through raw SQL in {:.1} s", ids.len(), pre.wall.as_secs_f64());
        Some(raw)
    } else {
        None
    };
    let mut get: Option<Run> = None;
    if enabled(Workload::Get) {
        let what = "`GET /api/v1/persons/{id}`";
        let (run, peak) = session.measure(what, workload::get_by_id(session.http.clone(), ids.clone(), bounds)).await?;
        session.lines.push(Line::of_run(what, &run, Some(peak), "see the ratio below", Met::NotApplicable));
        get = Some(run);
    }
    if let (Some(raw), true) = (&raw, enabled(Workload::Raw)) {
        // A raw read is one to two orders of magnitude faster than a request: the raw baselines read the same
        // sample RAW_REPEAT times over, so that they last long enough to be measured.
        let bounds = Bounds { requests: bounds.requests * RAW_REPEAT, ..bounds };
        let statement = match kind {
            StoreKind::Sqlite => person_sqlite::queries::GET_PERSON.sql,
            StoreKind::Postgres => person_postgres::queries::GET_PERSON.sql,
        };
        let a_what = "Raw point read (a): the store's `PersonRepository::get`, in process";
        let (a, _) = session.measure(a_what, workload::store_get(raw.store.clone(), ids.clone(), bounds)).await?;
        let b_what = format!("Raw point read (b): `{statement}` through sqlx, in process");
        let (b, _) = session.measure(&b_what, workload::raw_sql_get(raw.pool.clone(), ids.clone(), bounds)).await?;
        session.lines.push(Line::of_run(a_what, &a, None, "baseline", Met::NotApplicable));
        session.lines.push(Line::of_run(&b_what, &b, None, "baseline", Met::NotApplicable));
        if let Some(get) = &get {
            let share_a = get.throughput() / a.throughput().max(1e-9);
            let share_b = get.throughput() / b.throughput().max(1e-9);
            session.lines.push(Line::figure(
                "API/raw: `GET` ÷ raw point read (a)",
                &format!("{:.1} %", share_a * 100.0),
                "≥ 50 %",
                Met::when(share_a >= TARGET_GET_SHARE),
            ));
            session.lines.push(Line::figure(
                "API/raw: `GET` ÷ raw SQL (b)",
                &format!("{:.1} %", share_b * 100.0),
                "(for reference)",
                Met::NotApplicable,
            ));
        }
    }
    if let Some(raw) = raw {
        raw.close().await;
    }
    if enabled(Workload::SearchName) {
        session.search("Search by name (`firstName`, `lastName`)", &prepared.by_name).await?;
    }
    if enabled(Workload::SearchNameDob) {
        session.search("Search by name + date of birth", &prepared.by_name_dob).await?;
    }
    if enabled(Workload::Match) {
        let what = "`POST /api/v1/persons/match` (labelled duplicates)";
        let work = workload::post_bodies(
            session.http.clone(),
            "/api/v1/persons/match",
            prepared.matches.clone(),
            StatusCode::OK,
            bounds,
        );
        let (run, peak) = session.measure(what, work).await?;
        let target = format!("none of its own (search's: {})", search_target());
        session.lines.push(Line::of_run(what, &run, Some(peak), &target, search_met(&run)));
    }
    if enabled(Workload::Create) {
        println!("creating persons of seed {}", prepared.create_seed);
        let what = "Create with duplicate check (`POST /api/v1/persons`)";
        let work = workload::post_bodies(
            session.http.clone(),
            "/api/v1/persons",
            prepared.creates.clone(),
            StatusCode::CREATED,
            bounds,
        );
        let (run, peak) = session.measure(what, work).await?;
        let met = Met::when(run.throughput() >= TARGET_CREATES_PER_S);
        session.lines.push(Line::of_run(what, &run, Some(peak), "≥ 1,000/s", met));
    }
    if enabled(Workload::Patch) {
        let found = workload::etags(session.http.clone(), prepared.patch_ids.clone(), args.concurrency).await?;
        let items: Vec<PatchItem> = found
            .into_iter()
            .enumerate()
            .map(|(i, (id, etag))| {
                let place = format!("Bench {} {i}", prepared.create_seed);
                let body = json!({ "placeOfBirth": place, "reason": "person-bench api" });
                Ok(PatchItem { id, etag, body: serde_json::to_vec(&body)? })
            })
            .collect::<Result<_>>()?;
        let what = "`PATCH /api/v1/persons/{id}` (`If-Match`)";
        let (run, peak) = session.measure(what, workload::patch(session.http.clone(), Arc::new(items), bounds)).await?;
        session.lines.push(Line::of_run(what, &run, Some(peak), "—", Met::NotApplicable));
    }
    if enabled(Workload::Export) {
        export(session, Duration::from_secs(args.export_seconds)).await?;
    }
    Ok(())
}

/// The CSV export and its line.
async fn export(session: &mut Session, max: Duration) -> Result<()> {
    println!("GET /api/v1/reporting/persons?format=csv …");
    let before = Scrape::of(&session.scraper, &session.base).await;
    session.rss.start_window();
    let export = workload::csv_export(&session.http, max).await?;
    let peak = session.rss.window_peak();
    let profile = Profile::between(&before, &Scrape::of(&session.scraper, &session.base).await);
    println!(
        "  {} rows, {} bytes in {:.1} s ({:.0} rows/s, first byte after {}){}; server peak RSS {}",
        export.rows,
        export.bytes,
        export.wall.as_secs_f64(),
        export.rows_per_second(),
        millis(export.first_byte),
        if export.complete { "" } else { ", cut by --export-seconds" },
        memory(peak)
    );
    let what = format!(
        "Reporting CSV export (`persons`, {:.1} s, {:.1} MB{})",
        export.wall.as_secs_f64(),
        export.bytes as f64 / 1e6,
        if export.complete { "" } else { ", cut by the time bound" }
    );
    if profile.requests > 0.0 {
        println!("  {}", profile.summary());
        session.profiles.push((what.clone(), profile));
    }
    session.lines.push(Line {
        what,
        done: format!("{} rows", thousands(export.rows)),
        errors: "0".to_owned(),
        throughput: format!("{} rows/s", thousands(export.rows_per_second().round() as u64)),
        latency: None,
        rss: Some(peak),
        target: "≥ 100,000 rows/s".to_owned(),
        met: Met::when(export.rows_per_second() >= TARGET_EXPORT_ROWS_PER_S),
    });
    Ok(())
}

/// The section's introduction (written once, when the section is missing).
fn doc_intro() -> String {
    "## Results: the API under load (`person-bench api`)

`person-bench api` measures the API end to end against the real `person-api` binary on loopback: it generates the
synthetic register, writes it as NDJSON and loads it with `person-api import` (timed), starts `person-api serve`
(timed from spawn to the first 200 from `/readyz`), samples the server's resident memory (`VmRSS`) every 100 ms,
and runs bounded workloads with concurrent keep-alive HTTP clients: `GET` by id, search by name, search by name +
date of birth, match, create with the duplicate check, `PATCH`, and the `persons` CSV export. In the same run, with
the same concurrency and the same id sample, it measures the raw point read the `GET` is compared with: (a) the
store's own `PersonRepository::get`, called in the bench process, and (b) the store's point-read statement alone
through sqlx (pgbench-style). The sampled ids are read once through (b) before the `GET` workload, so all three
read the same cached pages.

**The server and the bench share the machine's cores** (2 here): every HTTP figure includes the HTTP client
competing with the server for CPU, while the raw baselines run without an HTTP client or server in the way. Every
request is authenticated (HS256 token), and every `GET`, search and match writes its audit entry, as in
production; the server logs each request (`PERSON_API_LOG=info`).

The second table of each block is the server's own account of the time (the difference of two scrapes of its
`/metrics`, before and after each workload): its mean time per request, and per request which store calls it made
(`person.get`, `audit.append`, `person.candidates`, `person.insert` …) and their mean duration. That is the first
profile of any missed target.

Reproduce (release builds; one command per store, each replacing its own block below):

```sh
cargo build --release -p person-server -p person-bench
DIR=/var/tmp/person-bench; mkdir -p $DIR; rm -f $DIR/api-1m.db*
./target/release/person-bench api --persons 1000000 --seed 42 --store sqlite://$DIR/api-1m.db \\
    --server target/release/person-api --concurrency 4 --requests 5000 --max-seconds 30 --write-doc docs/benchmarks.md
psql postgres://postgres@127.0.0.1:5432/test -c 'DROP SCHEMA IF EXISTS person_bench CASCADE'
./target/release/person-bench api --persons 1000000 --seed 42 \\
    --store 'postgres://postgres@127.0.0.1:5432/test?schema=person_bench' --work-dir $DIR \\
    --server target/release/person-api --concurrency 4 --requests 5000 --max-seconds 30 --write-doc docs/benchmarks.md
```

Each block below gives the exact command, the machine and the date of its run. `person-bench api --help` lists the
options (`--workloads` to run a subset, `--skip-import` to rerun on a loaded store, `--loader api` for a build
without `import`).
"
    .to_owned()
}

/// What the doc block says about the run.
struct DocRun<'a> {
    args: &'a Args,
    kind: StoreKind,
    machine: &'a Machine,
    command: &'a str,
    date: chrono::DateTime<chrono::Utc>,
    create_seed: u64,
}

/// This run's block of the section.
fn doc_block(run: &DocRun<'_>, table: &str, clean_stop: bool) -> String {
    let DocRun { args, kind, machine, command, date, create_seed } = *run;
    let store = match kind {
        StoreKind::Sqlite => format!("SQLite file `{}`", report::redact_url(&args.store)),
        StoreKind::Postgres => format!("PostgreSQL `{}`", report::redact_url(&args.store)),
    };
    let rustc = machine.rustc.clone().unwrap_or_else(|| "unknown".to_owned());
    let debug = if args.server.components().any(|c| c.as_os_str() == "debug") {
        "\n**Debug build of the server**: these figures only show that the harness works.\n"
    } else {
        ""
    };
    let scale = if args.persons == 1_000_000 {
        String::new()
    } else {
        format!(
            "\n**{} persons, not 1,000,000**: SPEC §11's targets are stated for 1,000,000 persons; this run checks the \
             harness, its figures are not the ones the targets are judged on.\n",
            thousands(args.persons as u64)
        )
    };
    format!(
        "### {title}, {persons} persons ({day})
{scale}{debug}
| | |
|---|---|
| Machine | {cpu}, `nproc` = {cores}, `MemTotal` {mem} kB, Linux {kernel} |
| Toolchain | `{rustc}` |
| Server | `{server}`, `PERSON_API_LOG={log}`; stopped by SIGTERM {stop} |
| Store | {store} |
| Register | {persons} persons, seed {seed}, loaded {loaded}; created persons of seed {create_seed} |
| Load | {concurrency} concurrent clients, one keep-alive connection each, sharing the machine's {cores} cores with the server |
| Bounds | per workload {warmup} unmeasured requests, then at most {requests} measured requests or {max} s (the raw baselines: {raw} reads, the sample {repeat} times over); the CSV export at most {export} s |
| Date | {date} |

```sh
{command}
```

{table}",
        title = kind.title(),
        persons = thousands(args.persons as u64),
        day = date.format("%Y-%m-%d"),
        cpu = machine.cpu,
        cores = machine.cores,
        mem = thousands(machine.memory_kb),
        kernel = machine.kernel,
        server = args.server.display(),
        log = args.server_log,
        stop = if clean_stop { "(exit 0)" } else { "(**failed**)" },
        seed = args.seed,
        loaded = if args.skip_import { "before this run" } else { "by this run" },
        concurrency = args.concurrency,
        warmup = args.warmup,
        requests = thousands(args.requests as u64),
        raw = thousands((args.requests * RAW_REPEAT) as u64),
        repeat = RAW_REPEAT,
        max = args.max_seconds,
        export = args.export_seconds,
        date = date.format("%Y-%m-%d %H:%M UTC"),
    )
}

#[cfg(test)]
mod tests {
    use person_core::Person;
    use person_core::testkit::synthetic::SyntheticConfig;

    use super::*;

    #[test]
    fn every_ndjson_line_is_a_person_of_this_api_with_its_id_ref_version_and_timestamps() {
        let data = generate(&SyntheticConfig::new(200, 3));
        for synthetic in &data.persons {
            let line = ndjson_line(synthetic).unwrap();
            assert!(!line.contains('\n'));
            let person: Person = serde_json::from_str(&line).unwrap();
            assert_eq!(person.id, synthetic.person.id);
            assert_eq!(person.person_ref, synthetic.person.person_ref);
            assert_eq!(person.version_number, 0);
            assert_eq!(person.created_at, synthetic.person.created_at);
            assert_eq!(person.last_modified, synthetic.person.last_modified);
            assert_eq!(serde_json::to_string(&person).unwrap(), line);
        }
    }

    #[test]
    fn create_bodies_are_valid_creates_without_an_id() {
        let today = chrono::NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
        let data = generate(&register_config(100, 5));
        for person in &data.persons {
            let draft = person_core::validate::parse_draft(&create_body(person).unwrap()).unwrap();
            assert_eq!(draft.id, None);
            assert!(person_core::validate::validate(&draft, today).is_ok());
            let with_id = person_core::validate::parse_draft(&load_body(person).unwrap()).unwrap();
            assert_eq!(with_id.id, Some(person.person.id.as_uuid()));
        }
    }

    #[test]
    fn distinct_indices_are_distinct_and_bounded() {
        let mut rng = Rng::new(1, 2);
        let picked = distinct_indices(&mut rng, 1000, 300);
        assert_eq!(picked.len(), 300);
        let unique: std::collections::HashSet<_> = picked.iter().collect();
        assert_eq!(unique.len(), 300);
        assert!(picked.iter().all(|&i| i < 1000));
        assert_eq!(distinct_indices(&mut rng, 5, 10).len(), 5);
    }

    #[test]
    fn search_urls_carry_the_criteria_encoded() {
        let query = person_core::service::SearchQuery {
            first_name: Some("Zoë".to_owned()),
            last_name: Some("O'Neill-Ndlovu".to_owned()),
            date_of_birth: Some("1996-11-27".to_owned()),
            ..Default::default()
        };
        let url = search_url("http://127.0.0.1:9", &query).unwrap();
        assert_eq!(
            url,
            "http://127.0.0.1:9/api/v1/persons?firstName=Zo%C3%AB&lastName=O%27Neill-Ndlovu&dateOfBirth=1996-11-27"
        );
    }

    #[test]
    fn postgres_options_take_the_schema_as_search_path() {
        let options = pg_options("postgres://u@h:5433/db?schema=bench&sslmode=disable").unwrap();
        assert_eq!(options.get_database(), Some("db"));
        assert_eq!(options.get_port(), 5433);
        assert_eq!(options.get_options(), Some("-c search_path=bench"));
    }

    #[test]
    fn store_kinds_and_sqlite_paths_are_read_from_the_url() {
        assert_eq!(StoreKind::of("sqlite:///var/tmp/a.db").unwrap(), StoreKind::Sqlite);
        assert_eq!(StoreKind::of("postgresql://u@h/db").unwrap(), StoreKind::Postgres);
        assert!(StoreKind::of("dynamodb://t").is_err());
        assert_eq!(sqlite_path("sqlite:///var/tmp/a.db").unwrap(), PathBuf::from("/var/tmp/a.db"));
        assert_eq!(sqlite_path("sqlite:rel.db").unwrap(), PathBuf::from("rel.db"));
    }
}
