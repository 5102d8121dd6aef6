//! `person-bench`: benchmarks and evaluations of the Person API.
//!
//! `person-bench evaluate-matching --persons 10000 --seed 42 [--seed 7 …] [--report report.md]` generates the
//! labelled synthetic register (`person_core::testkit::synthetic`), indexes it by the blocking keys the stores
//! keep, retrieves each query's candidates by its query keys, scores them and reports precision, recall and F1
//! per grade, look-alike pairs graded `certain` (must be 0), candidates per query and timings. The report is the
//! one `docs/matching.md` quotes.

mod evaluate_matching;

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
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::EvaluateMatching(args) => evaluate_matching::run(&args),
    }
}
