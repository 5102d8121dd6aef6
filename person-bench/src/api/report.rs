//! The report of an `api` run: the results table (with the SPEC §11 target and whether it is met on each line),
//! the machine it ran on, and the marked section of `docs/benchmarks.md` it replaces.
//!
//! `docs/benchmarks.md` holds one section between [`SECTION_START`] and [`SECTION_END`]; inside it, one block per
//! store (`<!-- person-bench api sqlite: start -->` …), so a PostgreSQL run never overwrites the SQLite one.
//! Text outside the blocks (the section's introduction) is written once and then left to the editors.

use std::fmt::Write as _;
use std::time::Duration;

use crate::api::workload::Run;
use crate::harness::Percentiles;

/// The start marker of the section `api` owns in `docs/benchmarks.md`.
pub(crate) const SECTION_START: &str = "<!-- person-bench api: start -->";
/// Its end marker.
pub(crate) const SECTION_END: &str = "<!-- person-bench api: end -->";

/// Whether a line meets its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Met {
    /// Met.
    Yes,
    /// Missed.
    No,
    /// No target, or nothing to judge.
    NotApplicable,
}

impl Met {
    /// Met when `ok`.
    pub(crate) fn when(ok: bool) -> Self {
        if ok { Self::Yes } else { Self::No }
    }

    fn cell(self) -> &'static str {
        match self {
            Self::Yes => "yes",
            Self::No => "**no**",
            Self::NotApplicable => "—",
        }
    }
}

/// One line of the results table.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    /// What was measured.
    pub(crate) what: String,
    /// Operations (or rows) done.
    pub(crate) done: String,
    /// Errors.
    pub(crate) errors: String,
    /// Throughput, with its unit.
    pub(crate) throughput: String,
    /// Latency percentiles, if any.
    pub(crate) latency: Option<Percentiles>,
    /// The server's peak resident memory meanwhile, if it ran.
    pub(crate) rss: Option<u64>,
    /// The target.
    pub(crate) target: String,
    /// Whether it is met.
    pub(crate) met: Met,
}

impl Line {
    /// A line of a measured workload: done, errors, ops/s and latency from `run`.
    pub(crate) fn of_run(what: &str, run: &Run, rss: Option<u64>, target: &str, met: Met) -> Self {
        let mut done = thousands(run.ok as u64);
        if run.cut_by_time {
            done.push_str(" (time bound)");
        }
        Self {
            what: what.to_owned(),
            done,
            errors: errors_cell(run),
            throughput: format!("{}/s", thousands(run.throughput().round() as u64)),
            latency: Some(run.latency),
            rss,
            target: target.to_owned(),
            met,
        }
    }

    /// A line without latencies (a figure such as a ratio or a time).
    pub(crate) fn figure(what: &str, value: &str, target: &str, met: Met) -> Self {
        Self {
            what: what.to_owned(),
            done: "—".to_owned(),
            errors: "—".to_owned(),
            throughput: value.to_owned(),
            latency: None,
            rss: None,
            target: target.to_owned(),
            met,
        }
    }
}

fn errors_cell(run: &Run) -> String {
    if run.errors == 0 {
        return "0".to_owned();
    }
    let kinds: Vec<String> = run.error_kinds.iter().map(|(kind, n)| format!("{n}× {kind}")).collect();
    format!("{} ({})", thousands(run.errors as u64), kinds.join(", "))
}

/// `1234567` → `1,234,567`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes as `34.6 MiB (36.3 MB)`.
pub(crate) fn memory(bytes: u64) -> String {
    format!("{:.1} MiB ({:.1} MB)", bytes as f64 / (1024.0 * 1024.0), bytes as f64 / 1e6)
}

/// A duration in ms with one decimal.
pub(crate) fn millis(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// The results table in Markdown.
pub(crate) fn table(lines: &[Line]) -> String {
    let mut out = String::from(
        "| Workload | Done | Errors | Throughput | p50 ms | p95 ms | p99 ms | Server peak RSS | Target (SPEC §11) | Met? \
         |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for line in lines {
        let (p50, p95, p99) = match &line.latency {
            Some(p) if p.count > 0 => (format!("{:.2}", p.p50), format!("{:.2}", p.p95), format!("{:.2}", p.p99)),
            _ => ("—".to_owned(), "—".to_owned(), "—".to_owned()),
        };
        let rss = line.rss.map_or_else(|| "—".to_owned(), memory);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {p50} | {p95} | {p99} | {rss} | {} | {} |",
            line.what,
            line.done,
            line.errors,
            line.throughput,
            line.target,
            line.met.cell()
        );
    }
    out
}

/// The machine, from `/proc` (and `rustc --version` when a toolchain is on the path).
#[derive(Debug, Clone)]
pub(crate) struct Machine {
    /// CPU model name.
    pub(crate) cpu: String,
    /// Cores available to this process.
    pub(crate) cores: usize,
    /// `MemTotal` in kB.
    pub(crate) memory_kb: u64,
    /// Kernel release.
    pub(crate) kernel: String,
    /// `rustc --version`, if available.
    pub(crate) rustc: Option<String>,
}

impl Machine {
    /// The machine this process runs on.
    pub(crate) fn this() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let cpu = field(&cpuinfo, "model name").unwrap_or_else(|| "unknown".to_owned());
        let memory_kb = field(&meminfo, "MemTotal")
            .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
            .unwrap_or(0);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| "unknown".to_owned(), |s| s.trim().to_owned());
        let rustc = std::process::Command::new("rustc")
            .arg("--version")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_owned());
        let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
        Self { cpu, cores, memory_kb, kernel, rustc }
    }
}

/// The value of the first `key: value` line of a `/proc` file.
fn field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k.trim() == key).then(|| v.trim().to_owned())
    })
}

/// The block of one store inside the section: its markers.
pub(crate) fn block_markers(store_key: &str) -> (String, String) {
    (format!("<!-- person-bench api {store_key}: start -->"), format!("<!-- person-bench api {store_key}: end -->"))
}

/// `doc` with the text between `start` and `end` (markers kept) replaced by `content`; when the markers are not
/// both there (in order), the marked content is inserted before `before` if given and present, else appended.
pub(crate) fn replace_between(doc: &str, start: &str, end: &str, content: &str, before: Option<&str>) -> String {
    let content = content.trim_matches('\n');
    if let Some(s) = doc.find(start)
        && let Some(e) = doc[s + start.len()..].find(end).map(|e| e + s + start.len())
    {
        return format!("{}{start}\n{content}\n{}", &doc[..s], &doc[e..]);
    }
    let block = format!("{start}\n{content}\n{end}\n");
    if let Some(at) = before.and_then(|b| doc.find(b)) {
        return format!("{}{block}{}", &doc[..at], &doc[at..]);
    }
    let mut out = doc.to_owned();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    if !out.is_empty() && !out.ends_with("\n\n") {
        out.push('\n');
    }
    out.push_str(&block);
    out
}

/// `doc` with the store's block of the `api` section replaced by `block`; the section (with `intro`) is appended
/// when missing, and the other stores' blocks and the introduction are kept.
pub(crate) fn update_doc(doc: &str, store_key: &str, intro: &str, block: &str) -> String {
    let doc = if doc.contains(SECTION_START) && doc.contains(SECTION_END) {
        doc.to_owned()
    } else {
        replace_between(doc, SECTION_START, SECTION_END, intro, None)
    };
    let (start, end) = block_markers(store_key);
    let Some(s) = doc.find(SECTION_START).map(|s| s + SECTION_START.len()) else { return doc };
    let Some(e) = doc[s..].find(SECTION_END).map(|e| e + s) else { return doc };
    let inner = &doc[s..e];
    let mut updated = replace_between(inner, &start, &end, block, None);
    if !updated.ends_with('\n') {
        updated.push('\n');
    }
    format!("{}{updated}{}", &doc[..s], &doc[e..])
}

/// The command line as typed, with any password in a URL replaced by `***`, each argument quoted for `sh` when
/// it needs to be.
pub(crate) fn command_line(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            let a = redact_url(a);
            let plain = !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c));
            if plain { a } else { format!("'{}'", a.replace('\'', r"'\''")) }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A URL with the password of its user info (`scheme://user:password@host`) replaced by `***`.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else { return url.to_owned() };
    let userinfo = &authority[..at];
    let Some((user, _)) = userinfo.split_once(':') else { return url.to_owned() };
    format!("{scheme}://{user}:***{}", &rest[at..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn a_missing_section_is_appended_with_its_intro_and_the_block() {
        let doc = "# Benchmarks\n\ntext";
        let out = update_doc(doc, "sqlite", "## API\n\nintro", "### SQLite\n\nrow 1");
        assert!(out.starts_with("# Benchmarks\n\ntext\n\n<!-- person-bench api: start -->\n## API\n\nintro\n"));
        assert!(out.contains(
            "<!-- person-bench api sqlite: start -->\n### SQLite\n\nrow 1\n<!-- person-bench api sqlite: end -->\n"
        ));
        assert!(out.trim_end().ends_with(SECTION_END));
    }

    #[test]
    fn a_store_block_is_replaced_and_the_others_and_the_edited_intro_are_kept() {
        let doc = "# B\n";
        let doc = update_doc(doc, "sqlite", "intro", "sqlite run 1");
        let doc = update_doc(&doc, "postgres", "intro", "postgres run 1");
        let edited = doc.replace("intro", "intro edited by hand");
        let doc = update_doc(&edited, "sqlite", "intro", "sqlite run 2");
        assert!(doc.contains("intro edited by hand"));
        assert!(doc.contains("sqlite run 2"));
        assert!(!doc.contains("sqlite run 1"));
        assert!(doc.contains("postgres run 1"));
        assert_eq!(doc.matches(SECTION_START).count(), 1);
        assert_eq!(doc.matches("<!-- person-bench api sqlite: start -->").count(), 1);
        // Both blocks lie inside the section.
        let end = doc.find(SECTION_END).unwrap();
        assert!(doc.find("postgres run 1").unwrap() < end);
        assert!(doc.find("sqlite run 2").unwrap() < end);
    }

    #[test]
    fn text_after_the_section_is_kept() {
        let doc = format!("# B\n{SECTION_START}\nintro\n{SECTION_END}\n\n## Later\n");
        let out = update_doc(&doc, "sqlite", "unused", "block");
        assert!(out.ends_with(&format!("{SECTION_END}\n\n## Later\n")));
        assert!(out.contains("intro\n\n<!-- person-bench api sqlite: start -->\nblock\n"));
        assert!(!out.contains("unused"));
    }

    #[test]
    fn passwords_in_urls_are_redacted_and_arguments_quoted() {
        assert_eq!(redact_url("postgres://u:secret@h:5432/db?schema=x"), "postgres://u:***@h:5432/db?schema=x");
        assert_eq!(redact_url("postgres://postgres@127.0.0.1:5432/test"), "postgres://postgres@127.0.0.1:5432/test");
        assert_eq!(redact_url("sqlite:///var/tmp/a.db"), "sqlite:///var/tmp/a.db");
        let line = command_line(&[
            "person-bench".to_owned(),
            "--store".to_owned(),
            "postgres://u:pw@h/db?schema=a&x=1".to_owned(),
            "--note".to_owned(),
            "it's".to_owned(),
        ]);
        assert_eq!(line, r"person-bench --store 'postgres://u:***@h/db?schema=a&x=1' --note 'it'\''s'");
    }

    #[test]
    fn the_table_marks_misses_and_missing_latencies() {
        let run = Run {
            ok: 1500,
            errors: 2,
            error_kinds: [("409 duplicate-person".to_owned(), 2)].into_iter().collect(),
            wall: Duration::from_secs(3),
            latency: Percentiles { count: 1500, p50: 1.0, p95: 2.0, p99: 3.0, max: 4.0 },
            cut_by_time: false,
        };
        let lines = [
            Line::of_run("create", &run, Some(50 * 1024 * 1024), "≥ 1,000/s", Met::No),
            Line::figure("start to ready", "120.0 ms", "≤ 1 s", Met::Yes),
        ];
        let text = table(&lines);
        assert!(
            text.contains("| create | 1,500 | 2 (2× 409 duplicate-person) | 500/s | 1.00 | 2.00 | 3.00 | 50.0 MiB")
        );
        assert!(text.contains("| ≥ 1,000/s | **no** |"));
        assert!(text.contains("| start to ready | — | — | 120.0 ms | — | — | — | — | ≤ 1 s | yes |"));
    }

    #[test]
    fn proc_fields_are_read() {
        assert_eq!(field("MemTotal:       24684084 kB\nMemFree: 1 kB\n", "MemTotal").as_deref(), Some("24684084 kB"));
        assert_eq!(field("processor\t: 0\nmodel name\t: AMD EPYC\n", "model name").as_deref(), Some("AMD EPYC"));
    }
}
