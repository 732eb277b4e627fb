//! The Kyverno policy library's own CLI tests (kyverno/policies, every `.kyverno-test/kyverno-test.yaml`),
//! read from `$PALISADE_ORACLES/kyverno-policies`, run through the Kyverno engine.
//!
//! Per top directory it prints how many rows passed, failed and were skipped (with the reasons for
//! skips, counted), and holds the passes to a ratchet (`kyverno_policies.ratchet` beside this file):
//! no directory may pass fewer rows than it once did. Run with `KYVERNO_RATCHET_WRITE=1` to raise it.

// Test helpers outside `#[test]` functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use palisade_engine::suite::{kyverno, CaseStatus};

mod common;
use common::Dir;

#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
    skipped: usize,
}

fn ratchet_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kyverno_policies.ratchet")
}

fn read_ratchet() -> BTreeMap<String, usize> {
    let text = std::fs::read_to_string(ratchet_path()).expect("the ratchet file");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (dir, count) = l.rsplit_once(' ').expect("`dir count` lines");
            (dir.to_owned(), count.parse().expect("a count"))
        })
        .collect()
}

#[test]
fn kyverno_policy_library_tests_per_directory() {
    let oracles = std::env::var("PALISADE_ORACLES").expect(
        "PALISADE_ORACLES must point at the oracle data (the README's test command sets it)",
    );
    let root = Path::new(&oracles).join("kyverno-policies");
    assert!(root.is_dir(), "{} is missing", root.display());
    let files = common::kyverno_test_files(&root);
    assert!(files.len() >= 250, "only {} test files", files.len());
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    let mut skip_reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&root).unwrap();
        let top = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(file).unwrap();
        let dir = Dir(file.parent().unwrap().to_path_buf());
        let name = relative.display().to_string();
        let tally = tallies.entry(top).or_default();
        for result in kyverno::run(&name, &text, &dir) {
            match &result.status {
                CaseStatus::Passed => tally.passed += 1,
                CaseStatus::Failed(_) => {
                    tally.failed += 1;
                    failures.push(result.to_string());
                }
                CaseStatus::Skipped(why) => {
                    tally.skipped += 1;
                    let short: String = why.chars().take(100).collect();
                    *skip_reasons.entry(short).or_default() += 1;
                }
            }
        }
    }
    println!("kyverno-policies: passed / failed / skipped per directory");
    for (dir, t) in &tallies {
        println!("  {dir:24} {:5} {:5} {:5}", t.passed, t.failed, t.skipped);
    }
    let mut reasons: Vec<_> = skip_reasons.into_iter().collect();
    reasons.sort_by_key(|r| std::cmp::Reverse(r.1));
    println!("skip reasons (most common first):");
    for (why, count) in reasons.iter().take(25) {
        println!("  {count:5}  {why}");
    }
    println!("failures ({}):", failures.len());
    for failure in failures.iter().take(60) {
        println!("  {failure}");
    }
    if std::env::var_os("KYVERNO_RATCHET_WRITE").is_some() {
        let mut text = String::from(
            "# Kyverno policy library tests (tests/kyverno_policies.rs): the fewest rows each directory\n\
             # may pass. Written with KYVERNO_RATCHET_WRITE=1; raise it when more pass, never lower it.\n",
        );
        for (dir, t) in &tallies {
            text.push_str(&format!("{dir} {}\n", t.passed));
        }
        std::fs::write(ratchet_path(), text).unwrap();
    }
    let ratchet = read_ratchet();
    for (dir, floor) in &ratchet {
        let passed = tallies.get(dir).map_or(0, |t| t.passed);
        assert!(
            passed >= *floor,
            "{dir}: {passed} rows pass, the ratchet says at least {floor}"
        );
    }
    for dir in tallies.keys() {
        assert!(
            ratchet.contains_key(dir),
            "{dir} is not in the ratchet: run with KYVERNO_RATCHET_WRITE=1"
        );
    }
}
