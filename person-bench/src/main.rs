//! `person-bench`: benchmarks and evaluations of the Person API.
//!
//! * `person-bench evaluate-matching --persons 10000 --seed 42 [--seed 7 …] [--report report.md]` generates the
//!   labelled synthetic register (`person_core::testkit::synthetic`), indexes it by the blocking keys the stores
//!   keep, retrieves each query's candidates by its query keys, scores them and reports precision, recall and F1
//!   per grade, look-alike pairs graded `certain` (must be 0), candidates per query and timings. The report is
//!   the one `docs/matching.md` quotes.
//! * `person-bench load --persons N --seed S --store sqlite:///path.db [--synchronous normal]` stores the same
//!   register in an SQLite store through `PersonService::create` (and `put_equality`), reporting the load rate.
//! * `person-bench search-latency --store sqlite:///path.db --persons N --seed S [--queries 2000]` runs a mix
//!   of searches and matches in process against the loaded store and reports p50/p95/p99/max per kind, with
//!   the share of queries whose person was returned. `docs/benchmarks.md` quotes both.
//! * `person-bench api --persons N --seed S --store sqlite:///path.db|postgres://… --server target/release/person-api
//!   [--concurrency C --requests R --max-seconds T] [--write-doc docs/benchmarks.md] [--skip-import]` imports the
//!   register with `person-api import`, starts `person-api serve` on loopback and runs bounded HTTP workloads (GET by
//!   id, searches, match, create with duplicate check, PATCH, the CSV export) next to the store's raw point read,
//!   reporting throughput, p50/p95/p99, the API/raw ratio, start to ready and the server's memory against SPEC §11.

mod api;
mod evaluate_matching;
mod harness;
mod load;
mod search_latency;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Benchmarks and evaluations of the Person API.
#[derive(Debug, Parser)]
#[command(name = "person-bench", version, about)]
struct Cli {
    /// What to run.
    #[command(subcommand)]
    command: Command,
}

/// The sub-commands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Match quality (precision, recall, F1 per grade) on a labelled synthetic register.
    EvaluateMatching(evaluate_matching::Args),
    /// Store the synthetic register in an SQLite store through the service, and report the load rate.
    Load(load::Args),
    /// Search and match latency (p50, p95, p99, max per query kind) against a loaded SQLite store.
    SearchLatency(search_latency::Args),
    /// Workloads against a running `person-api` (imported register, loopback HTTP) next to the raw store reads.
    Api(api::Args),
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::EvaluateMatching(args) => evaluate_matching::run(&args),
        Command::Load(args) => runtime()?.block_on(load::run(&args)),
        Command::SearchLatency(args) => runtime()?.block_on(search_latency::run(&args)),
        Command::Api(args) => runtime()?.block_on(api::run(&args)),
    }
}

/// A multi-threaded runtime, one worker per core.
fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}
