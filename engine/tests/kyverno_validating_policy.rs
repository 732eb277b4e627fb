//! Kyverno's own CLI tests of ValidatingPolicies (kyverno/kyverno `test/cli/test-validating-policy`),
//! read from `$PALISADE_ORACLES/kyverno-engine-tests/test/cli/test-validating-policy`: no row may
//! fail; a row this engine cannot decide (a policy that reads the cluster, a registry or an Envoy
//! request) is skipped with the reason, and at least as many rows pass as once did.

// Test helpers outside `#[test]` functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use palisade_engine::suite::{kyverno, CaseStatus, Summary};

mod common;
use common::Dir;

/// The fewest rows that must pass (raise it when more do).
const PASSING_FLOOR: usize = 23;

#[test]
fn every_validating_policy_row_of_kyvernos_cli_tests_passes_or_is_skipped_with_a_reason() {
    let Some(root) = common::oracle_dir("kyverno-engine-tests/test/cli/test-validating-policy")
    else {
        return;
    };
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("kyverno-test.yaml").is_file())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 18, "only {} test directories", dirs.len());
    let mut all = Vec::new();
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for dir in &dirs {
        let file = dir.join("kyverno-test.yaml");
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.strip_prefix(&root).unwrap().display().to_string();
        for result in kyverno::run(&name, &text, &Dir(dir.clone())) {
            match &result.status {
                CaseStatus::Skipped(why) => *reasons.entry(why.clone()).or_default() += 1,
                CaseStatus::Failed(_) => eprintln!("  {result}"),
                CaseStatus::Passed => {}
            }
            all.push(result);
        }
    }
    let summary = Summary::of(&all);
    eprintln!("kyverno ValidatingPolicy CLI tests: {summary}");
    for (why, count) in &reasons {
        eprintln!("  skipped {count}: {why}");
    }
    for result in &all {
        assert!(!matches!(result.status, CaseStatus::Failed(_)), "{result}");
    }
    assert!(
        summary.passed >= PASSING_FLOOR,
        "{} rows pass, at least {PASSING_FLOOR} did",
        summary.passed
    );
}
