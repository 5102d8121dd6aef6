//! `evaluate-matching`: precision, recall and F1 of matching on the labelled synthetic register, per seed, as a
//! Markdown report (and optionally JSON).
//!
//! The evaluation is store-independent: it builds the same key → persons index every store keeps
//! (`person_keys`), looks candidates up by `query_keys` and ranks them with `score`, exactly as the service does.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use person_core::matching::PreparedProfile;
use person_core::matching::score::{self, CERTAIN, POSSIBLE, PROBABLE, WEIGHTS, score_prepared};
use person_core::testkit::synthetic::{
    BlockingIndex, Counts, Evaluation, SyntheticConfig, SyntheticDataSet, evaluate_with, generate,
};
use serde_json::json;

/// The targets of SPEC §11 for `certain`+`probable`.
const MIN_PRECISION: f64 = 0.99;
/// The recall target of SPEC §11 for `certain`+`probable`.
const MIN_RECALL: f64 = 0.97;

/// Arguments of `evaluate-matching`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Persons on the generated register.
    #[arg(long, default_value_t = 10_000)]
    persons: usize,
    /// Seeds to evaluate (repeat for several; the first is the main one). Default: 42.
    #[arg(long = "seed")]
    seeds: Vec<u64>,
    /// Also write the Markdown report to this file.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Also write the metrics as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Print up to this many misgraded pairs of the first seed with their explanations (synthetic data only).
    #[arg(long, default_value_t = 0)]
    show_errors: usize,
    /// Also print, for the first seed, precision and recall at other `certain` and `probable` thresholds
    /// (total weights), to choose the thresholds.
    #[arg(long)]
    sweep: bool,
    /// Exit with an error unless every seed meets the targets (precision ≥ 0.99, recall ≥ 0.97 for
    /// certain+probable, no look-alike pair graded certain).
    #[arg(long)]
    check: bool,
}

/// One seed's run.
struct Run {
    seed: u64,
    data: SyntheticDataSet,
    index: BlockingIndex,
    eval: Evaluation,
    generate: Duration,
    index_time: Duration,
    evaluate: Duration,
}

/// Runs the evaluation for every seed and prints (and writes) the report.
pub(crate) fn run(args: &Args) -> Result<()> {
    let seeds = if args.seeds.is_empty() { vec![42] } else { args.seeds.clone() };
    let mut runs = Vec::new();
    for seed in seeds {
        let started = Instant::now();
        let data = generate(&SyntheticConfig::new(args.persons, seed));
        let generated = started.elapsed();
        let started = Instant::now();
        let index = BlockingIndex::build(&data.persons);
        let indexed = started.elapsed();
        let started = Instant::now();
        let eval = evaluate_with(&data, &index);
        let evaluated = started.elapsed();
        runs.push(Run { seed, data, index, eval, generate: generated, index_time: indexed, evaluate: evaluated });
    }
    let report = report(args.persons, &runs);
    print!("{report}");
    if let Some(path) = &args.report {
        std::fs::write(path, &report).with_context(|| format!("writing the report to {}", path.display()))?;
    }
    if let Some(path) = &args.json {
        let value = json!(runs.iter().map(run_json).collect::<Vec<_>>());
        let text = serde_json::to_string_pretty(&value)?;
        std::fs::write(path, text).with_context(|| format!("writing the JSON to {}", path.display()))?;
    }
    if let Some(first) = runs.first()
        && args.show_errors > 0
    {
        print!("{}", errors(first, args.show_errors));
    }
    if let Some(first) = runs.first()
        && args.sweep
    {
        print!("{}", sweep(first));
    }
    if args.check {
        for run in &runs {
            let c = &run.eval.certain_or_probable;
            if c.precision() < MIN_PRECISION
                || c.recall() < MIN_RECALL
                || run.eval.hard_negative_pairs_graded_certain() > 0
            {
                bail!(
                    "seed {}: precision {:.4}, recall {:.4}, look-alike pairs graded certain {} — targets missed",
                    run.seed,
                    c.precision(),
                    c.recall(),
                    run.eval.hard_negative_pairs_graded_certain()
                );
            }
        }
    }
    Ok(())
}

fn counts_json(c: &Counts) -> serde_json::Value {
    json!({
        "truePositives": c.true_positives,
        "falsePositives": c.false_positives,
        "falseNegatives": c.false_negatives,
        "precision": c.precision(),
        "recall": c.recall(),
        "f1": c.f1(),
    })
}

fn run_json(run: &Run) -> serde_json::Value {
    let e = &run.eval;
    json!({
        "seed": run.seed,
        "persons": e.persons,
        "queries": e.queries,
        "duplicates": e.duplicates,
        "certain": counts_json(&e.certain),
        "certainOrProbable": counts_json(&e.certain_or_probable),
        "possibleOrBetter": counts_json(&e.possible_or_better),
        "retrievalRecall": e.retrieval_recall,
        "candidatesMean": e.candidates_mean,
        "candidatesMax": e.candidates_max,
        "keysPerPersonMean": e.keys_per_person_mean,
        "keysPerPersonMax": e.keys_per_person_max,
        "twinsGradedCertain": e.twins_graded_certain(),
        "lookAlikePairsGradedCertain": e.hard_negative_pairs_graded_certain(),
        "generateMs": run.generate.as_secs_f64() * 1e3,
        "indexMs": run.index_time.as_secs_f64() * 1e3,
        "evaluateMs": run.evaluate.as_secs_f64() * 1e3,
    })
}

fn pct(x: f64) -> String {
    format!("{:.2} %", x * 100.0)
}

/// The Markdown report.
fn report(persons: usize, runs: &[Run]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## Match quality on the synthetic register ({persons} persons)\n");
    let _ = writeln!(
        out,
        "`person-bench evaluate-matching --persons {persons}{}` (release build).\n",
        runs.iter().map(|r| format!(" --seed {}", r.seed)).collect::<String>()
    );
    let _ = writeln!(
        out,
        "| Seed | Queries (duplicates) | Grade | Precision | Recall | F1 | TP | FP | FN |\n|---|---|---|---|---|---|---|---|---|"
    );
    for run in runs {
        let e = &run.eval;
        for (label, c) in [
            ("certain", &e.certain),
            ("certain+probable", &e.certain_or_probable),
            ("possible+", &e.possible_or_better),
        ] {
            let _ = writeln!(
                out,
                "| {} | {} ({}) | {label} | {} | {} | {:.4} | {} | {} | {} |",
                run.seed,
                e.queries,
                e.duplicates,
                pct(c.precision()),
                pct(c.recall()),
                c.f1(),
                c.true_positives,
                c.false_positives,
                c.false_negatives
            );
        }
    }
    let _ = writeln!(
        out,
        "\n| Seed | Twin pairs graded certain | Look-alike pairs in the register (certain / probable) | True match retrieved | Candidates per query (mean / max) | Keys per person (mean / max) | Generate | Index | Evaluate (per query) |\n|---|---|---|---|---|---|---|---|---|"
    );
    for run in runs {
        let e = &run.eval;
        let pairs: u64 = e.hard_negative_pairs.values().map(|c| c.0).sum();
        let probable: u64 = e.hard_negative_pairs.values().map(|c| c.2).sum();
        let per_query = run.evaluate.as_secs_f64() * 1e6 / e.queries.max(1) as f64;
        let _ = writeln!(
            out,
            "| {} | {} | {} ({} / {}) | {} | {:.1} / {} | {:.1} / {} | {:.0} ms | {:.0} ms | {:.0} ms ({per_query:.0} µs) |",
            run.seed,
            e.twins_graded_certain(),
            pairs,
            e.hard_negative_pairs_graded_certain(),
            probable,
            pct(e.retrieval_recall),
            e.candidates_mean,
            e.candidates_max,
            e.keys_per_person_mean,
            e.keys_per_person_max,
            run.generate.as_secs_f64() * 1e3,
            run.index_time.as_secs_f64() * 1e3,
            run.evaluate.as_secs_f64() * 1e3,
        );
    }
    if let Some(first) = runs.first() {
        out.push_str(&details(first));
    }
    out
}

/// The per-kind, per-corruption and per-level breakdown of one run.
fn details(run: &Run) -> String {
    let e = &run.eval;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n### By query kind (seed {})\n\nDuplicates: share whose true match is graded at least the grade. Negatives: share with any candidate graded at least the grade.\n\n| Kind | Queries | certain | certain+probable |\n|---|---|---|---|",
        run.seed
    );
    for (kind, s) in &e.by_kind {
        let share = |n: u64| pct(n as f64 / s.queries.max(1) as f64);
        let _ = writeln!(out, "| {kind:?} | {} | {} | {} |", s.queries, share(s.certain), share(s.certain_or_probable));
    }
    let _ = writeln!(
        out,
        "\n### Look-alike pairs within the register (seed {})\n\n| Kind | Pairs | Graded certain | Graded probable |\n|---|---|---|---|",
        run.seed
    );
    for (kind, (pairs, certain, probable)) in &e.hard_negative_pairs {
        let _ = writeln!(out, "| {kind:?} | {pairs} | {certain} | {probable} |");
    }
    let _ = writeln!(
        out,
        "\n### Recall at certain+probable by corruption (seed {})\n\n| Corruption | Duplicates with it | Found |\n|---|---|---|",
        run.seed
    );
    for (corruption, (n, found)) in &e.by_corruption {
        let _ = writeln!(out, "| {corruption:?} | {n} | {} |", pct(*found as f64 / (*n).max(1) as f64));
    }
    let _ = writeln!(
        out,
        "\n### Comparison levels: estimated m and u (seed {})\n\nm = share of the true pairs (duplicate query, its person) at the level. u (random) = share of {RANDOM_PAIRS} random pairs of different registered persons at the level — the classical Fellegi–Sunter u; u (retrieved) = share of the retrieved non-matching candidate pairs, which blocking has already made alike. log₂(m/u) is the weight the data alone suggest (— when a count is 0).\n\n| Field | Level | Weight | m | u (random) | log₂(m/u random) | u (retrieved) | log₂(m/u retrieved) |\n|---|---|---|---|---|---|---|---|",
        run.seed
    );
    let random = random_pair_levels(run);
    let total = |field: &str, matches: bool| -> u64 {
        e.levels.iter().filter(|l| l.field == field).map(|l| if matches { l.matches } else { l.non_matches }).sum()
    };
    let ratio = |m: f64, u: f64| if m > 0.0 && u > 0.0 { format!("{:+.1}", (m / u).log2()) } else { "—".to_owned() };
    for row in WEIGHTS {
        let found = e.levels.iter().find(|l| l.field == row.field && l.level == row.level);
        let (m_n, u_n) = found.map_or((0, 0), |l| (l.matches, l.non_matches));
        let m = m_n as f64 / total(row.field, true).max(1) as f64;
        let u = u_n as f64 / total(row.field, false).max(1) as f64;
        let r = random.get(&(row.field, row.level)).copied().unwrap_or(0) as f64 / RANDOM_PAIRS as f64;
        let _ = writeln!(
            out,
            "| {} | {} | {:+.1} | {m:.4} | {r:.6} | {} | {u:.5} | {} |",
            row.field,
            row.level,
            row.weight,
            ratio(m, r),
            ratio(m, u)
        );
    }
    let _ = writeln!(
        out,
        "\nThresholds: certain ≥ {CERTAIN} (total weight ≥ {:.1}), probable ≥ {PROBABLE} (≥ {:.1}), possible ≥ {POSSIBLE} (≥ {:.1}).",
        score::score_to_weight(CERTAIN),
        score::score_to_weight(PROBABLE),
        score::score_to_weight(POSSIBLE)
    );
    out
}

/// How many random pairs of registered persons estimate u.
const RANDOM_PAIRS: u64 = 200_000;

/// Level counts over [`RANDOM_PAIRS`] random pairs of different registered persons (deterministic for the seed).
fn random_pair_levels(run: &Run) -> std::collections::HashMap<(&'static str, &'static str), u64> {
    let prepared: Vec<PreparedProfile> = run.data.persons.iter().map(|p| PreparedProfile::new(&p.profile())).collect();
    let mut counts = std::collections::HashMap::new();
    let n = prepared.len() as u64;
    if n < 2 {
        return counts;
    }
    let mut state = run.seed ^ 0xA5A5_5A5A_DEAD_BEEF;
    let mut next = || {
        // SplitMix64.
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut drawn = 0;
    while drawn < RANDOM_PAIRS {
        let (a, b) = ((next() % n) as usize, (next() % n) as usize);
        if a == b {
            continue;
        }
        drawn += 1;
        for c in score_prepared(&prepared[a], &prepared[b]).comparisons {
            if let Some(row) = WEIGHTS.iter().find(|w| w.field == c.field && w.level == c.level) {
                *counts.entry((row.field, row.level)).or_insert(0) += 1;
            }
        }
    }
    counts
}

/// Misgraded pairs with their explanations, for calibration.
fn errors(run: &Run, limit: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\n### Misgraded pairs (seed {}, first {limit})\n", run.seed);
    let person = |id| run.data.persons.iter().find(|p| p.person.id == id);
    for m in run.eval.misgraded.iter().take(limit) {
        let Some(query) = run.data.queries.get(m.query) else { continue };
        let q = &query.profile;
        let _ = writeln!(
            out,
            "* {} {:?} {:?}: query {:?} {:?} / {:?} {:?} {:?} {:?}",
            if m.false_positive { "FALSE POSITIVE" } else { "FALSE NEGATIVE" },
            query.kind,
            query.corruptions,
            q.first_name,
            q.middle_name,
            q.surname,
            q.date_of_birth,
            q.postcodes,
            q.nino
        );
        let shown = m.candidate.or(query.expected).and_then(person);
        if let Some(p) = shown {
            let c = p.profile();
            let _ = writeln!(
                out,
                "  candidate {:?} {:?} {:?} / {:?} {:?} {:?} {:?}",
                c.first_name, c.middle_name, c.preferred_first_name, c.surname, c.date_of_birth, c.postcodes, c.nino
            );
        }
        match &m.score {
            Some(s) => {
                let levels: Vec<String> =
                    s.comparisons.iter().map(|c| format!("{}={} ({:+.1})", c.field, c.level, c.weight)).collect();
                let _ = writeln!(out, "  score {:.4} {:?}: {}", s.score, s.grade, levels.join(", "));
            }
            None => {
                let _ = writeln!(out, "  not retrieved");
            }
        }
    }
    out
}

/// One retrieved pair for the sweep: total weight, whether `certain` is allowed, vetoed, and whether it is the
/// true match.
struct SweepPair {
    weight: f64,
    certain_allowed: bool,
    vetoed: bool,
    is_match: bool,
}

/// Precision and recall at a grid of thresholds (total weights), for the first seed.
fn sweep(run: &Run) -> String {
    let mut pairs = Vec::new();
    let mut duplicates = 0u64;
    for query in &run.data.queries {
        duplicates += u64::from(query.expected.is_some());
        for (id, s) in run.index.ranked(&query.profile) {
            let level = |field: &str| s.comparisons.iter().find(|c| c.field == field).map(|c| c.level.as_str());
            let certain_allowed = level(score::NINO) == Some("agree")
                || level(score::FIRST_NAME).is_some_and(|l| score::CERTAIN_FIRST_NAME_LEVELS.contains(&l));
            pairs.push(SweepPair {
                weight: s.comparisons.iter().map(|c| c.weight).sum(),
                certain_allowed,
                vetoed: s.vetoed,
                is_match: Some(id) == query.expected,
            });
        }
    }
    let at = |threshold: f64, certain: bool| -> (f64, f64) {
        let predicted = pairs
            .iter()
            .filter(|p| p.weight >= threshold && !p.vetoed && (!certain || p.certain_allowed))
            .fold((0u64, 0u64), |(tp, fp), p| if p.is_match { (tp + 1, fp) } else { (tp, fp + 1) });
        let precision = predicted.0 as f64 / (predicted.0 + predicted.1).max(1) as f64;
        (precision, predicted.0 as f64 / duplicates.max(1) as f64)
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n### Threshold sweep (seed {})\n\n| Total weight ≥ | certain: precision | certain: recall | probable: precision | probable: recall |\n|---|---|---|---|---|",
        run.seed
    );
    let mut threshold = 10.0;
    while threshold <= 30.0 {
        let (cp, cr) = at(threshold, true);
        let (pp, pr) = at(threshold, false);
        let _ = writeln!(out, "| {threshold:.1} | {} | {} | {} | {} |", pct(cp), pct(cr), pct(pp), pct(pr));
        threshold += 1.0;
    }
    out
}
