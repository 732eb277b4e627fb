//! Conformance: every gator `suite.yaml` of the upstream gatekeeper-library, run through
//! `suite::gator`. The data is read from `$PALISADE_ORACLES/gatekeeper-library/library`.
//!
//! Besides the full run (all source rewrites on), each rewrite is turned off once to show what it is
//! worth: the count without it must be lower, so none of them is dead weight.

// Test code: a missing or unreadable oracle file should stop the test loudly.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use palisade_engine::gatekeeper::Rewrites;
use palisade_engine::suite::{gator, CaseResult, CaseStatus, Summary};

mod common;
use common::Dir;

/// The number of cases in the library's suites at the pinned commit (oracles/README.md).
const EXPECTED_CASES: usize = 270;

fn run_all(root: &Path, rewrites: Rewrites) -> Vec<CaseResult> {
    let paths = common::files_under(root, |path| {
        path.file_name().is_some_and(|n| n == "suite.yaml")
    });
    assert!(!paths.is_empty(), "no suite.yaml under {}", root.display());
    let mut results = Vec::new();
    for path in paths {
        let name = path.strip_prefix(root).unwrap().display().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        let files = Dir(path.parent().unwrap().to_path_buf());
        results.extend(gator::run_with(&name, &text, &files, rewrites));
    }
    results
}

#[test]
fn every_library_suite_passes() {
    let Some(root) = common::oracle_dir("gatekeeper-library/library") else {
        return;
    };
    let results = run_all(&root, Rewrites::ALL);
    for result in &results {
        if !matches!(result.status, CaseStatus::Passed) {
            println!("{result}");
        }
    }
    let summary = Summary::of(&results);
    println!("gatekeeper-library: {summary} (of {} cases)", results.len());
    assert_eq!(results.len(), EXPECTED_CASES, "case count changed");
    assert_eq!(summary.passed, EXPECTED_CASES, "{summary}");

    // Each rewrite, turned off on its own, costs cases: it is needed.
    let without = [
        (
            "call across newline",
            Rewrites {
                call_across_newline: false,
                ..Rewrites::ALL
            },
        ),
        (
            "multi-body rule",
            Rewrites {
                multi_body_rule: false,
                ..Rewrites::ALL
            },
        ),
        (
            "hoist negated operands",
            Rewrites {
                hoist_negated_operands: false,
                ..Rewrites::ALL
            },
        ),
        (
            "sprintf missing arguments",
            Rewrites {
                sprintf_missing_args: false,
                ..Rewrites::ALL
            },
        ),
        ("no rewrites", Rewrites::NONE),
    ];
    for (label, rewrites) in without {
        let results = run_all(&root, rewrites);
        let summary = Summary::of(&results);
        println!("without {label}: {summary}");
        for result in results
            .iter()
            .filter(|r| !matches!(r.status, CaseStatus::Passed))
        {
            println!("  {result}");
        }
        assert!(
            summary.passed < EXPECTED_CASES,
            "turning off {label} changed nothing"
        );
    }
}
