//! The `person-api` binary driven from outside, as an operator runs it: `import`, `token` and `serve` as child
//! processes on loopback, the time from spawn to the first ready answer, and the server's resident memory.
//!
//! Knows nothing of the workloads; talks to the binary only through its command line, environment, `/readyz`
//! and `/proc/<pid>/status`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The token group of the benchmark's caller.
pub(crate) const GROUP: &str = "person-bench";
/// What [`GROUP`] may do: read and write persons, read equality data (so match bodies may carry an NI number) and
/// read the reporting tables. Not `admin`.
pub(crate) const PERMISSIONS: &str = "persons:read,persons:write,equality:read,reporting:read";

/// How the binary is run: which binary, on which store, with which token secret and log level.
#[derive(Debug, Clone)]
pub(crate) struct Binary {
    /// The `person-api` executable.
    pub(crate) path: PathBuf,
    /// `PERSON_API_STORE`.
    pub(crate) store: String,
    /// `PERSON_API_JWT_SECRET` (random per run).
    pub(crate) secret: String,
    /// `PERSON_API_LOG`.
    pub(crate) log_level: String,
}

impl Binary {
    /// A command for the binary with only the environment this benchmark sets: every inherited `PERSON_API_*`
    /// variable is removed, so the operator's own configuration cannot change what is measured.
    fn command(&self) -> Command {
        let mut command = Command::new(&self.path);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("PERSON_API_") {
                command.env_remove(key);
            }
        }
        command
            .env("PERSON_API_STORE", &self.store)
            .env("PERSON_API_JWT_SECRET", &self.secret)
            .env("PERSON_API_GROUPS", format!("{GROUP}={PERMISSIONS}"))
            .env("PERSON_API_LOG", &self.log_level)
            .stdin(Stdio::null());
        command
    }

    /// `person-api import FILE --report REPORT --no-progress`, its output shown as it runs; the wall time.
    ///
    /// # Errors
    /// The binary cannot be run or exits non-zero.
    pub(crate) fn import(&self, file: &Path, report: &Path) -> Result<Duration> {
        let started = Instant::now();
        let status = self
            .command()
            .arg("import")
            .arg(file)
            .arg("--report")
            .arg(report)
            .arg("--no-progress")
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .status()
            .with_context(|| format!("running {} import", self.path.display()))?;
        let elapsed = started.elapsed();
        if !status.success() {
            bail!(
                "`{} import` failed ({status}); if this build has no import sub-command, run with --loader api",
                self.path.display()
            );
        }
        Ok(elapsed)
    }

    /// A token for the benchmark's caller, minted by `person-api token` with the run's secret.
    ///
    /// # Errors
    /// The binary cannot be run, fails, or prints no token.
    pub(crate) fn token(&self) -> Result<String> {
        let output = self
            .command()
            .args(["token", "--sub", "person-bench", "--groups", GROUP, "--ttl", "12h", "--name", "Person Bench"])
            .output()
            .with_context(|| format!("running {} token", self.path.display()))?;
        if !output.status.success() {
            bail!("`person-api token` failed ({}): {}", output.status, String::from_utf8_lossy(&output.stderr).trim());
        }
        let token = String::from_utf8(output.stdout).context("the token is not text")?.trim().to_owned();
        if token.is_empty() {
            bail!("`person-api token` printed no token");
        }
        Ok(token)
    }

    /// Starts `person-api serve` on `127.0.0.1:<a free port>`, its output appended to `log`.
    ///
    /// # Errors
    /// No free port, the log file or the process cannot be created.
    pub(crate) fn serve(&self, log: &Path) -> Result<Server> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .context("finding a free port")?
            .port();
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening the server log {}", log.display()))?;
        let err = out.try_clone()?;
        let mut command = self.command();
        command.arg("serve").env("PERSON_API_BIND", format!("127.0.0.1:{port}")).stdout(out).stderr(err);
        let spawned = Instant::now();
        let child = command.spawn().with_context(|| format!("starting {} serve", self.path.display()))?;
        Ok(Server { pid: child.id(), child, base: format!("http://127.0.0.1:{port}"), spawned, log: log.to_path_buf() })
    }
}

/// A running `person-api serve`. Dropping it kills the process (an error path); [`Server::stop`] is the orderly
/// end.
pub(crate) struct Server {
    child: Child,
    /// Its process id.
    pub(crate) pid: u32,
    /// `http://127.0.0.1:<port>`.
    pub(crate) base: String,
    spawned: Instant,
    log: PathBuf,
}

impl Server {
    /// Polls `GET /readyz` every 2 ms until it answers 200; the time from spawn to that answer.
    ///
    /// # Errors
    /// The process exits, or is not ready within `limit`.
    pub(crate) async fn ready(&mut self, limit: Duration) -> Result<Duration> {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
        let url = format!("{}/readyz", self.base);
        loop {
            if let Ok(response) = client.get(&url).send().await
                && response.status() == reqwest::StatusCode::OK
            {
                return Ok(self.spawned.elapsed());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("person-api exited ({status}) before it was ready; its log:\n{}", self.log_tail());
            }
            if self.spawned.elapsed() > limit {
                bail!("person-api was not ready within {limit:?}; its log:\n{}", self.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Sends SIGTERM and waits (at most 60 s) for the process to exit: its exit status and how long it took.
    ///
    /// # Errors
    /// The signal cannot be sent, or the process does not exit in time (it is then killed).
    pub(crate) async fn stop(mut self) -> Result<(ExitStatus, Duration)> {
        let started = Instant::now();
        let sent = Command::new("kill").args(["-TERM", &self.pid.to_string()]).status().context("running kill")?;
        if !sent.success() {
            bail!("kill -TERM {} failed", self.pid);
        }
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok((status, started.elapsed()));
            }
            if started.elapsed() > Duration::from_secs(60) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!("person-api did not exit within 60 s of SIGTERM; killed");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The last lines of the server's log (for an error message).
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The server's resident memory, sampled every 100 ms from `/proc/<pid>/status` by a background task: the latest
/// sample, the peak since the last [`Rss::start_window`] and the peak of the whole run, in bytes.
#[derive(Debug, Default)]
pub(crate) struct Rss {
    current: AtomicU64,
    window: AtomicU64,
    overall: AtomicU64,
}

impl Rss {
    /// Starts sampling `pid`; the task ends when the process is gone.
    pub(crate) fn monitor(pid: u32) -> Arc<Self> {
        let rss = Arc::new(Self::default());
        rss.sample(pid);
        let sampler = rss.clone();
        tokio::spawn(async move {
            while sampler.sample(pid) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        rss
    }

    /// Takes one sample; false when the process is gone.
    fn sample(&self, pid: u32) -> bool {
        let Some(bytes) = std::fs::read_to_string(format!("/proc/{pid}/status")).ok().and_then(|s| vm_rss(&s)) else {
            return false;
        };
        self.current.store(bytes, Ordering::Relaxed);
        self.window.fetch_max(bytes, Ordering::Relaxed);
        self.overall.fetch_max(bytes, Ordering::Relaxed);
        true
    }

    /// The latest sample.
    pub(crate) fn current(&self) -> u64 {
        self.current.load(Ordering::Relaxed)
    }

    /// Starts a new window (a workload): its peak starts at the latest sample.
    pub(crate) fn start_window(&self) {
        self.window.store(self.current(), Ordering::Relaxed);
    }

    /// The peak since [`Self::start_window`].
    pub(crate) fn window_peak(&self) -> u64 {
        self.window.load(Ordering::Relaxed)
    }

    /// The peak of the whole run.
    pub(crate) fn overall_peak(&self) -> u64 {
        self.overall.load(Ordering::Relaxed)
    }
}

/// `VmRSS` of a `/proc/<pid>/status` text, in bytes.
pub(crate) fn vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut parts = line.split_whitespace().skip(1);
    let value: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") | None => Some(value * 1024),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_is_read_in_bytes_from_proc_status() {
        let status = "Name:\tperson-api\nVmPeak:\t  200000 kB\nVmRSS:\t   35432 kB\nRssAnon:\t 20000 kB\n";
        assert_eq!(vm_rss(status), Some(35_432 * 1024));
        assert_eq!(vm_rss("Name:\tx\n"), None);
    }

    #[test]
    fn this_process_has_a_resident_set() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        assert!(vm_rss(&status).unwrap() > 0);
    }
}
