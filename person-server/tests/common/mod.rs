//! Helpers for driving the real `person-api` binary: start it on a free port with a store in a temporary
//! directory, wait for its "listening" line (with a deadline, never a sleep), stop it by signal.

// `allow`, not `expect`: each test crate compiles this module and uses a different subset of it, so in some of
// them nothing is dead and an `expect` would itself fail.
#![allow(dead_code, reason = "each test file uses a different subset of the helpers")]
#![expect(clippy::expect_used, reason = "a test helper fails the test loudly, with a message")]

#[macro_use]
pub(crate) mod multi_process;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long the server may take to print its address.
pub(crate) const START_DEADLINE: Duration = Duration::from_secs(60);

/// A running `person-api` process.
pub(crate) struct ServerProcess {
    pub(crate) child: Child,
    pub(crate) base_url: String,
    stderr_lines: mpsc::Receiver<String>,
}

/// The path of the binary under test.
pub(crate) fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_person-api"))
}

/// The SQLite store URL for a file in `dir`.
pub(crate) fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("persons.db").display())
}

impl ServerProcess {
    /// Starts `person-api serve` on 127.0.0.1 with an OS-chosen port and the given environment.
    #[expect(clippy::zombie_processes, reason = "the child is owned by ServerProcess, whose Drop reaps it")]
    pub(crate) fn start(envs: &[(&str, String)]) -> Self {
        let mut command = Command::new(binary());
        command
            .arg("serve")
            .env_remove("PERSON_API_CONFIG")
            .env("PERSON_API_BIND", "127.0.0.1:0")
            .env("PERSON_API_LOG_FORMAT", "json")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null());
        for (key, value) in envs {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("person-api starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (line_tx, line_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (err_tx, err_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if err_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match line_rx.recv_timeout(remaining) {
                Ok(line) => {
                    if let Some(url) = line.strip_prefix("person-api listening on ") {
                        return Self { child, base_url: url.trim().to_owned(), stderr_lines: err_rx };
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let logs: Vec<String> = err_rx.try_iter().collect();
                    panic!("person-api did not report its address in time; stderr:\n{}", logs.join("\n"));
                }
            }
        }
    }

    /// Sends SIGTERM and waits (with a deadline) for the process to exit.
    pub(crate) fn terminate(mut self) -> (ExitStatus, Vec<String>) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
        assert!(status.success(), "kill -TERM failed");
        let exit = wait_with_deadline(&mut self.child, Duration::from_secs(30));
        let logs = self.stderr_lines.try_iter().collect();
        (exit, logs)
    }

    /// Kills the process with SIGKILL (no chance to clean up) and reaps it.
    pub(crate) fn kill(mut self) {
        self.child.kill().expect("SIGKILL is delivered");
        let _ = self.child.wait();
    }

    /// Everything written to stderr so far.
    pub(crate) fn stderr_so_far(&self) -> Vec<String> {
        self.stderr_lines.try_iter().collect()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for `child` to exit, polling until `deadline`; panics when it does not.
pub(crate) fn wait_with_deadline(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait works") {
            return status;
        }
        assert!(Instant::now() < deadline, "process did not exit in time");
        std::thread::yield_now();
        std::thread::park_timeout(Duration::from_millis(20));
    }
}

/// A valid tenant create body with the given names.
pub(crate) fn tenant(first: &str, surname: &str) -> serde_json::Value {
    serde_json::json!({
        "title": "Mr",
        "firstName": first,
        "surname": surname,
        "dateOfBirth": "1990-04-12",
        "personTypes": ["Tenant"],
        "reason": "New tenancy",
        "tenures": [{ "id": uuid::Uuid::new_v4(), "type": "Secure", "startDate": "2020-01-01" }]
    })
}

/// Creates one tenant per `(first name, surname)` through `POST /api/v1/persons` on the server at `base_url`; the
/// created persons as answered.
pub(crate) async fn create_tenants(
    http: &reqwest::Client,
    base_url: &str,
    names: &[(&str, &str)],
) -> Vec<serde_json::Value> {
    let mut created = Vec::new();
    for (first, surname) in names {
        let response = http.post(format!("{base_url}/api/v1/persons")).json(&tenant(first, surname)).send();
        let response = response.await.expect("the create answers");
        assert_eq!(response.status(), 201, "{first} {surname} is created");
        created.push(response.json().await.expect("a person body"));
    }
    created
}

/// An HTTP client for the tests.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client builds")
}

/// A token for `sub` in `groups` (comma-separated), signed by the binary's `token` sub-command with `secret`.
pub(crate) fn token(secret: &str, sub: &str, groups: &str) -> String {
    let output = Command::new(binary())
        .args(["token", "--sub", sub, "--groups", groups, "--ttl", "10m", "--name", "Test User"])
        .env("PERSON_API_JWT_SECRET", secret)
        .env_remove("PERSON_API_CONFIG")
        .output()
        .expect("the token command runs");
    assert!(output.status.success(), "token failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("a token is text").trim().to_owned()
}
