//! Load and slow clients (bounded, loopback only): 500 keep-alive connections send requests for 60 s while 50
//! clients trickle a request head one byte every 500 ms. Every one of the 500 connections is served throughout
//! (no error, no reset), a fresh connection is served within the request timeout every second, and the server
//! closes each slow client's connection once the header read timeout has passed, so slow clients cannot hold
//! connections (or the file descriptors behind them) for longer than that.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed expectation is a failed test, with a message"
)]

mod common;

use std::time::{Duration, Instant};

use common::{ServerProcess, client, sqlite_url};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

const CONNECTIONS: usize = 500;
const SLOW_CLIENTS: usize = 50;
const LOAD: Duration = Duration::from_secs(60);
/// Requests per connection at most (the load is bounded in count as well as time).
const MAX_REQUESTS_PER_CONNECTION: usize = 2_000;
const HEADER_READ_TIMEOUT_SECS: u64 = 5;

/// One keep-alive connection sending `GET path` until the load ends: requests answered 200, or the first failure.
async fn keep_alive_client(address: String, path: String, deadline: Instant) -> Result<usize, String> {
    let stream = TcpStream::connect(&address).await.map_err(|e| format!("connect: {e}"))?;
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\n\r\n");
    let mut served = 0;
    while Instant::now() < deadline && served < MAX_REQUESTS_PER_CONNECTION {
        write.write_all(request.as_bytes()).await.map_err(|e| format!("after {served}: write: {e}"))?;
        let mut status_line = String::new();
        read.read_line(&mut status_line).await.map_err(|e| format!("after {served}: read: {e}"))?;
        if !status_line.starts_with("HTTP/1.1 200") {
            return Err(format!("after {served}: {status_line:?}"));
        }
        let mut length = 0_usize;
        loop {
            let mut line = String::new();
            read.read_line(&mut line).await.map_err(|e| format!("after {served}: header: {e}"))?;
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().map_err(|_| format!("bad length {line:?}"))?;
            }
        }
        let mut body = vec![0_u8; length];
        read.read_exact(&mut body).await.map_err(|e| format!("after {served}: body: {e}"))?;
        served += 1;
    }
    Ok(served)
}

/// A client sending a request head one byte every 500 ms: how long until the server closed the connection
/// (`None`: still open when the load ended).
async fn slow_client(address: String, deadline: Instant) -> Option<Duration> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(&address).await.expect("connects");
    stream.write_all(format!("GET /livez HTTP/1.1\r\nHost: {address}\r\nX-Slow: ").as_bytes()).await.ok()?;
    let mut buffer = [0_u8; 256];
    while Instant::now() < deadline {
        if stream.write_all(b"a").await.is_err() {
            return Some(started.elapsed());
        }
        // The server answers a timed-out head with 408 or just closes: either way the read ends.
        match tokio::time::timeout(Duration::from_millis(500), stream.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {
                let _ = stream.read(&mut buffer).await;
                return Some(started.elapsed());
            }
            Err(_) => {}
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_connections_and_slow_clients_leave_every_other_client_served() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&[
        ("PERSON_API_STORE", sqlite_url(dir.path())),
        ("PERSON_API_HEADER_READ_TIMEOUT_SECS", HEADER_READ_TIMEOUT_SECS.to_string()),
    ]);
    let base = server.base_url.clone();
    let address = base.trim_start_matches("http://").to_owned();
    let http = client();
    let created = common::create_tenants(&http, &base, &[("Load", "Test")]).await;
    let path = format!("/api/v1/persons/{}", created[0]["id"].as_str().unwrap());

    let deadline = Instant::now() + LOAD;
    let slow: Vec<_> = (0..SLOW_CLIENTS).map(|_| tokio::spawn(slow_client(address.clone(), deadline))).collect();
    let loaded: Vec<_> = (0..CONNECTIONS)
        .map(|i| {
            // Half read a person (store work and an audit entry), half the readiness probe.
            let path = if i % 2 == 0 { path.clone() } else { "/readyz".to_owned() };
            tokio::spawn(keep_alive_client(address.clone(), path, deadline))
        })
        .collect();

    // A newcomer is served within the request timeout every second of the load.
    let mut probes = 0;
    while Instant::now() < deadline {
        let fresh = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        let ready = fresh.get(format!("{base}/readyz")).send().await.expect("a new connection is served");
        assert_eq!(ready.status(), 200);
        probes += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    let mut served = Vec::with_capacity(CONNECTIONS);
    for (i, task) in loaded.into_iter().enumerate() {
        match task.await.unwrap() {
            Ok(count) => served.push(count),
            Err(failure) => panic!("connection {i} failed under load: {failure}"),
        }
    }
    let closed: Vec<Option<Duration>> = futures_join(slow).await;
    let total: usize = served.iter().sum();
    let least = served.iter().min().copied().unwrap_or(0);
    let slowest_close = closed.iter().flatten().max().copied();
    println!(
        "{CONNECTIONS} connections: {total} requests served in {LOAD:?} (fewest on one connection: {least}); \
         {probes} probes from new connections; {SLOW_CLIENTS} slow clients closed by the server after at most {slowest_close:?}"
    );
    assert!(least >= 1, "every connection was served");
    assert!(closed.iter().all(Option::is_some), "the server closed every slow client: {closed:?}");
    let limit = Duration::from_secs(HEADER_READ_TIMEOUT_SECS + 10);
    assert!(
        slowest_close.is_some_and(|d| d <= limit),
        "within the header read timeout (and a margin): {slowest_close:?}"
    );
    let (status, logs) = server.terminate();
    assert!(status.success());
    assert!(!logs.iter().any(|line| line.contains("panicked")));
}

/// Awaits every task, in order.
async fn futures_join<T>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}
