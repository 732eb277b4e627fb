//! Conformance: every gator `suite.yaml` of the upstream gatekeeper-library, run through
//! `suite::gator`. The data is read from `$PALISADE_ORACLES/gatekeeper-library/library`.
//!
//! Besides the full run (all source rewrites on), each rewrite is turned off once to show what it is
//! worth: the count without it must be lower, so none of them is dead weight.

// Test code: a missing or unreadable oracle file should stop the test loudly.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};

use palisade_engine::gatekeeper::Rewrites;
use palisade_engine::suite::{gator, CaseResult, CaseStatus, Files, Summary};

/// The number of cases in the library's suites at the pinned commit (oracles/README.md).
const EXPECTED_CASES: usize = 270;

struct Directory(PathBuf);

impl Files for Directory {
    fn read(&self, path: &str) -> Result<String, String> {
        std::fs::read_to_string(self.0.join(path)).map_err(|e| format!("{path}: {e}"))
    }
}

fn library_root() -> Option<PathBuf> {
    let Some(oracles) = std::env::var_os("PALISADE_ORACLES") else {
        // Written to stderr directly, past the test harness's capture, so it is seen.
        let _ = writeln!(
            std::io::stderr(),
            "!!! PALISADE_ORACLES is not set: the gatekeeper-library conformance data was NOT checked. \
             Set PALISADE_ORACLES=/work/shared/oracles to run it."
        );
        return None;
    };
    let root = Path::new(&oracles).join("gatekeeper-library/library");
    assert!(
        root.is_dir(),
        "PALISADE_ORACLES is set but {} is missing",
        root.display()
    );
    Some(root)
}

fn suites(dir: &Path, found: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            suites(&path, found);
        } else if path.file_name().is_some_and(|n| n == "suite.yaml") {
            found.push(path);
        }
    }
}

fn run_all(root: &Path, rewrites: Rewrites) -> Vec<CaseResult> {
    let mut paths = Vec::new();
    suites(root, &mut paths);
    assert!(!paths.is_empty(), "no suite.yaml under {}", root.display());
    let mut results = Vec::new();
    for path in paths {
        let name = path.strip_prefix(root).unwrap().display().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        let files = Directory(path.parent().unwrap().to_path_buf());
        results.extend(gator::run_with(&name, &text, &files, rewrites));
    }
    results
}

#[test]
fn every_library_suite_passes() {
    let Some(root) = library_root() else {
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
