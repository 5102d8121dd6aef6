//! The bounded workloads: a driver that keeps `concurrency` operations in flight over a list of prepared items
//! (an unmeasured warm-up first, then at most `requests` measured operations or `max` seconds), the HTTP
//! operations against the server, the raw point reads against the store, and the streamed CSV export.
//!
//! Every item (URL, body, id) is prepared before the clock starts, so the bench measures the server, not its own
//! request building. Knows nothing of how the server was started or how results are reported.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use person_core::PersonId;
use person_core::ports::PersonRepository;
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;

use crate::harness::Percentiles;

/// How a workload is bounded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    /// Operations in flight at once (one keep-alive connection each).
    pub(crate) concurrency: usize,
    /// Unmeasured operations first.
    pub(crate) warmup: usize,
    /// Most measured operations.
    pub(crate) requests: usize,
    /// Longest the warm-up, and then the measured part, may take.
    pub(crate) max: Duration,
}

impl Bounds {
    /// Items a workload needs: one per operation, warm-up included (items are never reused).
    pub(crate) fn items(&self) -> usize {
        self.warmup + self.requests
    }
}

/// What a measured workload did.
#[derive(Debug, Clone, Default)]
pub(crate) struct Run {
    /// Operations that answered as expected.
    pub(crate) ok: usize,
    /// Operations that did not (an unexpected status or a transport failure).
    pub(crate) errors: usize,
    /// Errors by kind (`409 duplicate-person`, `transport: …`).
    pub(crate) error_kinds: BTreeMap<String, usize>,
    /// Wall time of the measured part.
    pub(crate) wall: Duration,
    /// Latency of the operations that answered as expected.
    pub(crate) latency: Percentiles,
    /// True when `max` ended it before `requests` were done.
    pub(crate) cut_by_time: bool,
}

impl Run {
    /// Successful operations per second.
    pub(crate) fn throughput(&self) -> f64 {
        self.ok as f64 / self.wall.as_secs_f64().max(1e-9)
    }
}

/// Runs `op(task, item)` over items `0..bounds.warmup` (unmeasured), then `warmup..warmup + requests` (measured),
/// with `bounds.concurrency` tasks each taking the next item; each phase stops at `bounds.max`.
pub(crate) async fn drive<F, Fut>(bounds: Bounds, op: F) -> Result<Run>
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let op = Arc::new(op);
    phase(&op, bounds, 0, bounds.warmup).await?;
    phase(&op, bounds, bounds.warmup, bounds.items()).await
}

async fn phase<F, Fut>(op: &Arc<F>, bounds: Bounds, from: usize, to: usize) -> Result<Run>
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let next = Arc::new(AtomicUsize::new(from));
    let started = Instant::now();
    let deadline = started + bounds.max;
    let mut tasks = Vec::new();
    for task in 0..bounds.concurrency.max(1) {
        let (op, next) = (op.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors: BTreeMap<String, usize> = BTreeMap::new();
            let mut cut = false;
            loop {
                if Instant::now() >= deadline {
                    cut = true;
                    break;
                }
                let item = next.fetch_add(1, Ordering::Relaxed);
                if item >= to {
                    break;
                }
                let begun = Instant::now();
                match op(task, item).await {
                    Ok(()) => latencies.push(begun.elapsed()),
                    Err(kind) => *errors.entry(kind).or_default() += 1,
                }
            }
            (latencies, errors, cut)
        }));
    }
    let mut latencies = Vec::new();
    let mut run = Run::default();
    for task in tasks {
        let (mut done, errors, cut) = task.await.context("a workload task panicked")?;
        latencies.append(&mut done);
        for (kind, n) in errors {
            run.errors += n;
            *run.error_kinds.entry(kind).or_default() += n;
        }
        run.cut_by_time |= cut && next.load(Ordering::Relaxed) < to;
    }
    run.wall = started.elapsed();
    run.ok = latencies.len();
    run.latency = Percentiles::of(&latencies);
    Ok(run)
}

/// The server as the workloads see it: its base URL, the caller's token and one HTTP client (one keep-alive
/// connection) per task.
pub(crate) struct Http {
    base: String,
    token: String,
    clients: Vec<reqwest::Client>,
}

impl Http {
    /// Clients for `concurrency` tasks.
    ///
    /// # Errors
    /// A client cannot be built.
    pub(crate) fn new(base: &str, token: String, concurrency: usize) -> Result<Self> {
        let clients = (0..concurrency.max(1))
            .map(|_| {
                reqwest::Client::builder()
                    .timeout(Duration::from_secs(120))
                    .pool_max_idle_per_host(1)
                    .tcp_nodelay(true)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { base: base.to_owned(), token, clients })
    }

    fn client(&self, task: usize) -> &reqwest::Client {
        &self.clients[task % self.clients.len()]
    }

    fn get(&self, task: usize, url: &str) -> reqwest::RequestBuilder {
        self.client(task).get(url).bearer_auth(&self.token)
    }

    fn post_json(&self, task: usize, url: &str, body: Vec<u8>) -> reqwest::RequestBuilder {
        self.client(task).post(url).bearer_auth(&self.token).header(CONTENT_TYPE, "application/json").body(body)
    }
}

/// Sends `request`; Ok when it answers `expected` (the body is read to the end either way), else the error kind:
/// the status and the problem type, or the transport failure.
pub(crate) async fn expect(request: reqwest::RequestBuilder, expected: StatusCode) -> Result<(), String> {
    let response = request.send().await.map_err(|e| format!("transport: {}", e.without_url()))?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| format!("transport (body): {}", e.without_url()))?;
    if status == expected {
        return Ok(());
    }
    let problem = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(|t| t.rsplit('/').next().unwrap_or(t).to_owned()))
        .unwrap_or_default();
    Err(format!("{} {problem}", status.as_u16()).trim().to_owned())
}

/// `GET /api/v1/persons/{id}` of each id (200).
pub(crate) async fn get_by_id(http: Arc<Http>, ids: Arc<Vec<PersonId>>, bounds: Bounds) -> Result<Run> {
    let urls: Arc<Vec<String>> = Arc::new(ids.iter().map(|id| format!("{}/api/v1/persons/{id}", http.base)).collect());
    get_urls(http, urls, bounds).await
}

/// `GET` of each prepared URL (200): searches.
pub(crate) async fn get_urls(http: Arc<Http>, urls: Arc<Vec<String>>, bounds: Bounds) -> Result<Run> {
    drive(bounds, move |task, item| {
        let request = urls.get(item % urls.len().max(1)).map(|url| http.get(task, url));
        async move {
            match request {
                Some(request) => expect(request, StatusCode::OK).await,
                None => Err("no item".to_owned()),
            }
        }
    })
    .await
}

/// `POST` of each prepared JSON body to `path`, expecting `expected` (200 for match, 201 for create).
pub(crate) async fn post_bodies(
    http: Arc<Http>,
    path: &str,
    bodies: Arc<Vec<Vec<u8>>>,
    expected: StatusCode,
    bounds: Bounds,
) -> Result<Run> {
    let url = format!("{}{path}", http.base);
    drive(bounds, move |task, item| {
        let request = bodies.get(item % bodies.len().max(1)).map(|body| http.post_json(task, &url, body.clone()));
        async move {
            match request {
                Some(request) => expect(request, expected).await,
                None => Err("no item".to_owned()),
            }
        }
    })
    .await
}

/// One PATCH: the person, the `ETag` it was read with, and the merge patch.
pub(crate) struct PatchItem {
    /// The person.
    pub(crate) id: PersonId,
    /// Its current `ETag` (quoted).
    pub(crate) etag: String,
    /// The merge patch.
    pub(crate) body: Vec<u8>,
}

/// Reads the current `ETag` of each person (unmeasured preparation of the PATCH workload).
pub(crate) async fn etags(http: Arc<Http>, ids: Vec<PersonId>, concurrency: usize) -> Result<Vec<(PersonId, String)>> {
    let ids = Arc::new(ids);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for task in 0..concurrency.max(1) {
        let (http, ids, next) = (http.clone(), ids.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut found = Vec::new();
            while let Some(id) = ids.get(next.fetch_add(1, Ordering::Relaxed)).copied() {
                let url = format!("{}/api/v1/persons/{id}", http.base);
                let response = http.get(task, &url).send().await?;
                if response.status() != StatusCode::OK {
                    anyhow::bail!("reading a person to patch answered {}", response.status());
                }
                let etag = response
                    .headers()
                    .get(reqwest::header::ETAG)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
                    .context("a person was answered without an ETag")?;
                found.push((id, etag));
            }
            anyhow::Ok(found)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.context("a preparation task panicked")??);
    }
    Ok(all)
}

/// `PATCH /api/v1/persons/{id}` with `If-Match` of each item (204).
pub(crate) async fn patch(http: Arc<Http>, items: Arc<Vec<PatchItem>>, bounds: Bounds) -> Result<Run> {
    drive(bounds, move |task, item| {
        let request = items.get(item).map(|p| {
            http.client(task)
                .patch(format!("{}/api/v1/persons/{}", http.base, p.id))
                .bearer_auth(&http.token)
                .header(CONTENT_TYPE, "application/merge-patch+json")
                .header(reqwest::header::IF_MATCH, &p.etag)
                .body(p.body.clone())
        });
        async move {
            match request {
                Some(request) => expect(request, StatusCode::NO_CONTENT).await,
                None => Err("no item".to_owned()),
            }
        }
    })
    .await
}

/// What the CSV export did.
#[derive(Debug, Clone, Default)]
pub(crate) struct Export {
    /// Data rows received (the header excluded).
    pub(crate) rows: u64,
    /// Bytes received.
    pub(crate) bytes: u64,
    /// From sending the request to the last byte read.
    pub(crate) wall: Duration,
    /// From sending the request to the first body byte.
    pub(crate) first_byte: Duration,
    /// True when the whole file was read (not cut by the time bound).
    pub(crate) complete: bool,
}

impl Export {
    /// Rows per second.
    pub(crate) fn rows_per_second(&self) -> f64 {
        self.rows as f64 / self.wall.as_secs_f64().max(1e-9)
    }
}

/// `GET /api/v1/reporting/persons?format=csv`, streamed and counted, stopped after `max`.
///
/// # Errors
/// The export is refused or the transfer fails.
pub(crate) async fn csv_export(http: &Http, max: Duration) -> Result<Export> {
    let started = Instant::now();
    let url = format!("{}/api/v1/reporting/persons?format=csv", http.base);
    let mut response = http.get(0, &url).send().await?;
    if response.status() != StatusCode::OK {
        anyhow::bail!("the CSV export answered {}", response.status());
    }
    let mut counter = CsvRecords::default();
    let mut export = Export::default();
    let mut first = true;
    loop {
        let remaining = max.saturating_sub(started.elapsed());
        let chunk = match tokio::time::timeout(remaining, response.chunk()).await {
            Err(_) => break,
            Ok(chunk) => chunk.context("reading the CSV export")?,
        };
        let Some(chunk) = chunk else {
            export.complete = true;
            break;
        };
        if first {
            export.first_byte = started.elapsed();
            first = false;
        }
        export.bytes += chunk.len() as u64;
        counter.feed(&chunk);
    }
    export.wall = started.elapsed();
    export.rows = counter.records().saturating_sub(1);
    Ok(export)
}

/// Counts RFC 4180 records (CRLF-terminated, a CR or LF inside a quoted field not ending one) over a stream of
/// chunks.
#[derive(Debug, Default)]
pub(crate) struct CsvRecords {
    records: u64,
    quoted: bool,
    after_cr: bool,
}

impl CsvRecords {
    /// Takes the next bytes.
    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            match b {
                // A doubled quote inside a quoted field toggles twice: net unchanged.
                b'"' => self.quoted = !self.quoted,
                b'\n' if self.after_cr && !self.quoted => self.records += 1,
                _ => {}
            }
            self.after_cr = b == b'\r';
        }
    }

    /// Records completed so far (the header included).
    pub(crate) fn records(&self) -> u64 {
        self.records
    }
}

/// The store's own point read, in process: `PersonRepository::get` of each id (found), cycling through `ids`.
pub(crate) async fn store_get(
    store: Arc<dyn PersonRepository>,
    ids: Arc<Vec<PersonId>>,
    bounds: Bounds,
) -> Result<Run> {
    drive(bounds, move |_, item| {
        let (store, id) = (store.clone(), ids.get(item % ids.len().max(1)).copied());
        async move {
            let Some(id) = id else { return Err("no item".to_owned()) };
            match store.get(id).await {
                Ok(Some(_)) => Ok(()),
                Ok(None) => Err("not found".to_owned()),
                Err(e) => Err(format!("store: {e}")),
            }
        }
    })
    .await
}

/// A raw SQL connection pool on the store's database.
#[derive(Clone)]
pub(crate) enum RawPool {
    /// SQLite, read-only connections on the file.
    Sqlite(sqlx::SqlitePool),
    /// PostgreSQL, in the store's schema.
    Postgres(sqlx::PgPool),
}

/// The store's point-read statement alone (`SELECT document FROM persons WHERE id = …`), through sqlx with no
/// decoding beyond the document text: the pgbench-style floor of a point read. Cycles through `ids`.
pub(crate) async fn raw_sql_get(pool: RawPool, ids: Arc<Vec<PersonId>>, bounds: Bounds) -> Result<Run> {
    drive(bounds, move |_, item| {
        let (pool, id) = (pool.clone(), ids.get(item % ids.len().max(1)).copied());
        async move {
            let Some(id) = id else { return Err("no item".to_owned()) };
            let document: Option<String> = match &pool {
                RawPool::Sqlite(pool) => sqlx::query_scalar(person_sqlite::queries::GET_PERSON.sql)
                    .bind(id.to_string())
                    .fetch_optional(pool)
                    .await
                    .map_err(|e| format!("sql: {e}"))?,
                RawPool::Postgres(pool) => sqlx::query_scalar(person_postgres::queries::GET_PERSON.sql)
                    .bind(id.as_uuid())
                    .fetch_optional(pool)
                    .await
                    .map_err(|e| format!("sql: {e}"))?,
            };
            match document {
                Some(d) if !d.is_empty() => Ok(()),
                _ => Err("not found".to_owned()),
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_records_end_at_crlf_outside_quotes_across_chunks() {
        let text = "personId,firstName\r\n1,\"Ann\r\nMarie\"\r\n2,\"O\"\"Neill, Jo\"\r\n3,";
        let mut whole = CsvRecords::default();
        whole.feed(text.as_bytes());
        assert_eq!(whole.records(), 3);
        // Split everywhere, including between CR and LF.
        for cut in 0..text.len() {
            let mut parts = CsvRecords::default();
            parts.feed(&text.as_bytes()[..cut]);
            parts.feed(&text.as_bytes()[cut..]);
            assert_eq!(parts.records(), 3, "cut at {cut}");
        }
    }

    #[tokio::test]
    async fn the_driver_warms_up_then_measures_at_most_the_requests() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        let bounds = Bounds { concurrency: 3, warmup: 5, requests: 20, max: Duration::from_secs(30) };
        let run = drive(bounds, move |_, item| {
            log.lock().unwrap().push(item);
            async move { if item % 10 == 9 { Err("409 duplicate-person".to_owned()) } else { Ok(()) } }
        })
        .await
        .unwrap();
        let mut items = seen.lock().unwrap().clone();
        items.sort_unstable();
        assert_eq!(items, (0..25).collect::<Vec<_>>());
        // The warm-up is items 0..5; 9 and 19 fail among the measured ones.
        assert_eq!(run.errors, 2);
        assert_eq!(run.error_kinds.get("409 duplicate-person"), Some(&2));
        assert_eq!(run.ok, 18);
        assert_eq!(run.latency.count, 18);
        assert!(!run.cut_by_time);
    }

    #[tokio::test]
    async fn the_driver_stops_at_the_time_bound() {
        let bounds = Bounds { concurrency: 2, warmup: 0, requests: 1_000_000, max: Duration::from_millis(50) };
        let run = drive(bounds, |_, _| async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            Ok(())
        })
        .await
        .unwrap();
        assert!(run.cut_by_time);
        assert!(run.ok > 0 && run.ok < 1_000_000);
    }
}
