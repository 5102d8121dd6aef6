//! Match quality on the labelled synthetic register (SPEC §11): precision ≥ 0.99 and recall ≥ 0.97 for
//! `certain`+`probable`, and no twin or other look-alike pair within the register graded `certain`.
//!
//! The register is small enough for a debug build; `person-bench evaluate-matching` runs the same evaluation at
//! 10,000 persons and reports it in `docs/matching.md`.

use std::sync::LazyLock;

use person_core::testkit::synthetic::{Evaluation, HardNegativeKind, SyntheticConfig, evaluate, generate};

/// 2,500 persons, about 950 labelled queries; generated and evaluated once for all tests.
static EVALUATION: LazyLock<Evaluation> = LazyLock::new(|| evaluate(&generate(&SyntheticConfig::new(2_500, 2026))));

#[test]
fn certain_or_probable_matches_are_precise_and_complete_on_the_synthetic_register() {
    let eval = &*EVALUATION;
    let c = eval.certain_or_probable;
    assert!(eval.duplicates >= 600, "{} duplicates", eval.duplicates);
    assert!(c.precision() >= 0.99, "precision {:.4} ({c:?})", c.precision());
    assert!(c.recall() >= 0.97, "recall {:.4} ({c:?})", c.recall());
}

#[test]
fn no_twin_or_household_look_alike_is_graded_certain() {
    let eval = &*EVALUATION;
    let twins = eval.hard_negative_pairs.get(&HardNegativeKind::Twins).copied().unwrap_or_default();
    assert!(twins.0 > 0, "the register has twins");
    assert_eq!(eval.twins_graded_certain(), 0);
    assert_eq!(eval.hard_negative_pairs_graded_certain(), 0, "{:?}", eval.hard_negative_pairs);
}

#[test]
fn certain_is_never_wrong_on_the_synthetic_register() {
    let eval = &*EVALUATION;
    assert_eq!(eval.certain.false_positives, 0, "{:?}", eval.certain);
}
