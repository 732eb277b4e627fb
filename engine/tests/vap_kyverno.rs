//! Kyverno's own CLI tests of native ValidatingAdmissionPolicies (kyverno/kyverno `test/cli`), read
//! from `$PALISADE_ORACLES/kyverno-engine-tests/test/`: every row about a native policy must pass.

// Test helpers outside `#[test]` functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use palisade_engine::suite::{kyverno, CaseStatus, Summary};

mod common;
use common::Dir;

#[test]
fn every_native_vap_row_of_kyvernos_cli_tests_passes() {
    let Some(root) = common::oracle_dir("kyverno-engine-tests/test") else {
        return;
    };
    let files = common::kyverno_test_files(&root);
    let mut native_rows = 0;
    let mut native_files = 0;
    let mut all = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let has_native_vap = text.contains("isValidatingAdmissionPolicy: true");
        let dir = Dir(file.parent().unwrap().to_path_buf());
        let name = file.strip_prefix(&root).unwrap().display().to_string();
        let results = kyverno::run(&name, &text, &dir);
        if has_native_vap {
            native_files += 1;
            native_rows += results.len();
            for result in &results {
                assert_eq!(result.status, CaseStatus::Passed, "{result}");
            }
        }
        all.extend(results);
    }
    let summary = Summary::of(&all);
    eprintln!(
        "kyverno CLI tests: {} files, {native_files} with native VAPs ({native_rows} rows); all rows: {summary}",
        files.len()
    );
    assert!(
        native_files >= 10,
        "only {native_files} test files with native VAPs"
    );
    assert!(native_rows >= 28, "only {native_rows} native VAP rows");
    // Every other row is about a Kyverno policy kind: passed, or skipped with a reason, never
    // failed.
    for result in &all {
        assert!(!matches!(result.status, CaseStatus::Failed(_)), "{result}");
    }
    // Rows about ValidatingPolicies pass too (tests/kyverno_validating_policy.rs holds them).
    assert!(summary.passed >= native_rows, "{summary}");
}
