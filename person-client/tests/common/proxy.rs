//! A fault-injecting HTTP/1.1 proxy on 127.0.0.1, in front of a real server.
//!
//! One request per client connection (the upstream is asked to close, and its `connection: close` reaches
//! the client). Each request is matched against the rules in order; the first rule with uses left decides:
//! answer with a canned response, forward and relay, or forward, wait for the whole upstream response (the
//! server has committed) and then drop the client's connection without relaying it — a response lost on the
//! way back. Requests no rule matches are forwarded. Every request's method and path are logged.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What to do with a matching request.
#[derive(Debug, Clone)]
pub(crate) enum Action {
    /// Answer this without contacting the upstream.
    Respond { status: u16, headers: Vec<(String, String)>, body: String },
    /// Forward it, let the upstream answer in full, then close the client connection without a byte.
    ForwardThenDrop,
}

#[derive(Debug)]
struct Rule {
    method: String,
    path_prefix: String,
    action: Action,
    uses: usize,
}

/// A running proxy.
#[derive(Clone)]
pub(crate) struct FaultProxy {
    pub(crate) base_url: String,
    rules: Arc<Mutex<Vec<Rule>>>,
    log: Arc<Mutex<Vec<(String, String)>>>,
}

impl FaultProxy {
    /// Starts a proxy in front of `upstream` (`http://127.0.0.1:port`).
    pub(crate) async fn start(upstream: &str) -> Self {
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Self {
            base_url: format!("http://{}", listener.local_addr().unwrap()),
            rules: Arc::default(),
            log: Arc::default(),
        };
        let handle = proxy.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let handle = handle.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move { handle.serve(client, &upstream).await });
            }
        });
        proxy
    }

    /// Applies `action` to the next `uses` requests with this method whose path starts with `path_prefix`.
    pub(crate) fn on(&self, method: &str, path_prefix: &str, uses: usize, action: Action) {
        self.rules.lock().unwrap().push(Rule {
            method: method.to_owned(),
            path_prefix: path_prefix.to_owned(),
            action,
            uses,
        });
    }

    /// How many requests with this method and exact path (query excluded) the proxy received.
    pub(crate) fn count(&self, method: &str, path: &str) -> usize {
        self.log.lock().unwrap().iter().filter(|(m, p)| m == method && p.split('?').next() == Some(path)).count()
    }

    fn action_for(&self, method: &str, path: &str) -> Option<Action> {
        let mut rules = self.rules.lock().unwrap();
        let rule =
            rules.iter_mut().find(|r| r.uses > 0 && r.method == method && path.starts_with(r.path_prefix.as_str()))?;
        rule.uses -= 1;
        Some(rule.action.clone())
    }

    async fn serve(&self, mut client: TcpStream, upstream: &str) {
        let Some((head, body)) = read_request(&mut client).await else { return };
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or_default().to_owned();
        let mut parts = request_line.split(' ');
        let method = parts.next().unwrap_or_default().to_owned();
        let path = parts.next().unwrap_or_default().to_owned();
        self.log.lock().unwrap().push((method.clone(), path.clone()));
        let action = self.action_for(&method, &path);
        if let Some(Action::Respond { status, headers, body }) = &action {
            let mut response = format!("HTTP/1.1 {status} Injected\r\n");
            for (name, value) in headers {
                response.push_str(&format!("{name}: {value}\r\n"));
            }
            response.push_str(&format!("content-length: {}\r\nconnection: close\r\n\r\n{body}", body.len()));
            let _ = client.write_all(response.as_bytes()).await;
            let _ = client.shutdown().await;
            return;
        }
        // Forward with `connection: close`, so that the upstream's response ends at end of stream.
        let mut forwarded = format!("{request_line}\r\n");
        for line in lines.filter(|l| !l.is_empty() && !l.to_ascii_lowercase().starts_with("connection:")) {
            forwarded.push_str(line);
            forwarded.push_str("\r\n");
        }
        forwarded.push_str("connection: close\r\n\r\n");
        let mut server = TcpStream::connect(upstream).await.unwrap();
        server.write_all(forwarded.as_bytes()).await.unwrap();
        server.write_all(&body).await.unwrap();
        let mut response = Vec::new();
        server.read_to_end(&mut response).await.unwrap();
        if matches!(action, Some(Action::ForwardThenDrop)) {
            // The server has answered in full (so it has committed); the client never hears of it.
            drop(client);
            return;
        }
        let _ = client.write_all(&response).await;
        let _ = client.shutdown().await;
    }
}

/// Reads one request: the head (up to the blank line, as text) and a body of `content-length` bytes.
async fn read_request(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let length = head
        .split("\r\n")
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = buffer[head_end + 4..].to_vec();
    while body.len() < length {
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..read]);
    }
    Some((head, body))
}
