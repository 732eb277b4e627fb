//! Conformance: every gator `suite.yaml` of the upstream gatekeeper-library, run through
//! `suite::gator`. The data is read from `$PALISADE_ORACLES/gatekeeper-library/library`.
//!
//! Besides the full run (all source rewrites on), each rewrite is turned off once to show what it is
//! worth: the count without it must be lower, so none of them is dead weight.
//!
//! regorus's register VM, which evaluates the library's templates, is held to regorus's interpreter:
//! both must give the same reviews (violations, messages, details) on every case and on varied Pods.

// Test code: a missing or unreadable oracle file should stop the test loudly.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use palisade_engine::gatekeeper::{EnforcementPoint, Evaluator, Inventory, Library, Rewrites};
use palisade_engine::sample;
use palisade_engine::source::parse_documents;
use palisade_engine::suite::{gator, CaseResult, CaseStatus, Summary};

mod common;
use common::Dir;

/// The number of cases in the library's suites at the pinned commit (oracles/README.md).
const EXPECTED_CASES: usize = 270;

fn run_all(root: &Path, rewrites: Rewrites, evaluator: Evaluator) -> Vec<CaseResult> {
    let base = Library::with_rewrites(rewrites).with_evaluator(evaluator);
    let paths = common::files_under(root, |path| {
        path.file_name().is_some_and(|n| n == "suite.yaml")
    });
    assert!(!paths.is_empty(), "no suite.yaml under {}", root.display());
    let mut results = Vec::new();
    for path in paths {
        let name = path.strip_prefix(root).unwrap().display().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        let files = Dir(path.parent().unwrap().to_path_buf());
        results.extend(gator::run_with(&name, &text, &files, &base));
    }
    results
}

#[test]
fn every_library_suite_passes() {
    let Some(root) = common::oracle_dir("gatekeeper-library/library") else {
        return;
    };
    let results = run_all(&root, Rewrites::ALL, Evaluator::Vm);
    for result in &results {
        if !matches!(result.status, CaseStatus::Passed) {
            println!("{result}");
        }
    }
    let summary = Summary::of(&results);
    println!("gatekeeper-library: {summary} (of {} cases)", results.len());
    assert_eq!(results.len(), EXPECTED_CASES, "case count changed");
    assert_eq!(summary.passed, EXPECTED_CASES, "{summary}");

    // Each rewrite, turned off on its own, costs cases of the interpreter: it is needed. They are
    // measured there because the interpreter is what they were written for, and it still evaluates
    // any template the VM does not (on the VM, turning off the hoisting of negated operands costs
    // no case of the library).
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
        let results = run_all(&root, rewrites, Evaluator::Interpreter);
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

/// Every template of the library, with every sample constraint beside it, compiled for
/// `evaluator`.
fn whole_library(root: &Path, evaluator: Evaluator) -> Library {
    let mut library = Library::new().with_evaluator(evaluator);
    let templates = common::files_under(root, |p| {
        p.file_name().is_some_and(|n| n == "template.yaml")
    });
    for template in &templates {
        let name = template.display().to_string();
        let text = std::fs::read_to_string(template).unwrap();
        library
            .add_documents(&name, &parse_documents(&name, &text).unwrap())
            .unwrap();
        let samples = template.parent().unwrap().join("samples");
        if !samples.is_dir() {
            continue;
        }
        for constraint in common::files_under(&samples, |p| {
            p.file_name().is_some_and(|n| n == "constraint.yaml")
        }) {
            let name = constraint.display().to_string();
            let text = std::fs::read_to_string(&constraint).unwrap();
            library
                .add_documents(&name, &parse_documents(&name, &text).unwrap())
                .unwrap();
        }
    }
    library
}

/// regorus's VM, which evaluates the library's templates, answers every case of the library as
/// its interpreter does: the same violations, messages and details, inventory cases included.
#[test]
fn the_vm_answers_every_case_as_the_interpreter() {
    let Some(root) = common::oracle_dir("gatekeeper-library/library") else {
        return;
    };
    let vm = Library::new();
    let interpreter = Library::new().with_evaluator(Evaluator::Interpreter);
    let mut compared = 0;
    for path in common::files_under(&root, |p| p.file_name().is_some_and(|n| n == "suite.yaml")) {
        let name = path.strip_prefix(&root).unwrap().display().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        let files = Dir(path.parent().unwrap().to_path_buf());
        let on_vm = gator::reviews(&name, &text, &files, &vm).unwrap();
        let interpreted = gator::reviews(&name, &text, &files, &interpreter).unwrap();
        assert_eq!(on_vm.len(), interpreted.len(), "{name}");
        for ((case, a), (_, b)) in on_vm.iter().zip(&interpreted) {
            assert_eq!(
                a, b,
                "{name} {case}: the VM's review, then the interpreter's"
            );
        }
        compared += on_vm.len();
    }
    println!("{compared} cases reviewed alike by the VM and the interpreter");
    assert!(compared > EXPECTED_CASES / 2, "{compared}");

    // The VM did the reviewing: every template with Rego runs on it.
    let library = whole_library(&root, Evaluator::Vm);
    let interpreted: Vec<String> = library
        .templates()
        .filter_map(|t| t.interpreted().map(|why| format!("{}: {why}", t.kind)))
        .collect();
    assert!(interpreted.is_empty(), "{interpreted:#?}");
}

/// The same over varied Pods, for every template of the library with its sample constraints.
#[test]
fn the_vm_answers_varied_pods_as_the_interpreter() {
    let Some(root) = common::oracle_dir("gatekeeper-library/library") else {
        return;
    };
    let on_vm = whole_library(&root, Evaluator::Vm);
    let interpreted = whole_library(&root, Evaluator::Interpreter);
    let mut violations = 0;
    for pod in sample::pods(0x6a7e_0001, 300) {
        let a = on_vm
            .review_object(&pod, &Inventory::empty(), EnforcementPoint::Gator)
            .unwrap();
        let b = interpreted
            .review_object(&pod, &Inventory::empty(), EnforcementPoint::Gator)
            .unwrap();
        assert_eq!(a, b, "{pod}: the VM's review, then the interpreter's");
        violations += a.violations.len();
    }
    assert!(violations > 300, "{violations}");
}
