//! Conformance of the Pod Security port with upstream's fixture pods:
//! `$PALISADE_ORACLES/pod-security-admission/test/testdata/<level>/v1.<minor>/<pass|fail>/*.yaml`.
//! A pod under `pass/` must be allowed at that level and version, one under `fail/` denied.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use palisade_engine::pss::{self, Level, LevelVersion, Version};
use palisade_engine::source::parse_documents;

mod common;

fn testdata() -> Option<PathBuf> {
    common::oracle_dir("pod-security-admission/test/testdata")
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    entries
}

#[test]
fn upstream_fixtures_pass_and_fail_as_upstream_says() {
    let Some(root) = testdata() else {
        return;
    };
    let mut passed = 0usize;
    let mut counts = [[0usize; 2]; 2]; // [level][pass/fail]
    let mut failures = Vec::new();
    for (li, level) in [Level::Baseline, Level::Restricted].into_iter().enumerate() {
        for version_dir in sorted_entries(&root.join(level.as_str())) {
            let version_name = version_dir
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let version: Version = version_name
                .parse()
                .unwrap_or_else(|e| panic!("{}: {e}", version_dir.display()));
            let lv = LevelVersion::new(level, version);
            for (oi, outcome) in ["pass", "fail"].into_iter().enumerate() {
                let dir = version_dir.join(outcome);
                if !dir.is_dir() {
                    continue;
                }
                for file in sorted_entries(&dir) {
                    if file.extension().and_then(|e| e.to_str()) != Some("yaml") {
                        continue;
                    }
                    let name = file.display().to_string();
                    let text = std::fs::read_to_string(&file).unwrap();
                    let docs = parse_documents(&name, &text).unwrap_or_else(|e| panic!("{e}"));
                    assert_eq!(docs.len(), 1, "{name}: expected one pod");
                    let result = pss::check_object(lv, &docs[0].value)
                        .unwrap_or_else(|| panic!("{name}: not a pod"));
                    counts[li][oi] += 1;
                    // The allocation-free verdict names exactly the checks the full result words.
                    let verdict = pss::verdict_object(lv, &docs[0].value).unwrap();
                    assert!(
                        verdict
                            .failed_checks()
                            .eq(result.forbidden.iter().map(|f| f.check_id)),
                        "{name}: verdict {:?} disagrees with {:?}",
                        verdict.failed_checks().collect::<Vec<_>>(),
                        result.forbidden
                    );
                    let want_allowed = outcome == "pass";
                    if result.allowed() == want_allowed {
                        passed += 1;
                    } else {
                        failures.push(format!(
                            "{name}: expected {}, got {}",
                            if want_allowed { "allowed" } else { "denied" },
                            result.message(lv).unwrap_or_else(|| "allowed".to_owned())
                        ));
                    }
                }
            }
        }
    }
    let total: usize = counts.iter().flatten().sum();
    eprintln!(
        "PSS fixtures: {passed}/{total} agree (baseline {} pass + {} fail, restricted {} pass + {} fail files)",
        counts[0][0], counts[0][1], counts[1][0], counts[1][1]
    );
    assert!(
        total >= 4537,
        "expected the 4,537 upstream fixtures, found {total}"
    );
    assert!(
        failures.is_empty(),
        "{} of {total} fixtures disagree:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The fail fixtures name the check they exercise (`<checkid><n>.yaml`); the denial must come
/// from that check (or, for restricted, from the restricted check that replaces it).
#[test]
fn fail_fixtures_are_denied_by_the_check_they_exercise() {
    let Some(root) = testdata() else {
        return;
    };
    let mut checked = 0usize;
    let mut failures = Vec::new();
    for level in [Level::Baseline, Level::Restricted] {
        for version_dir in sorted_entries(&root.join(level.as_str())) {
            let version: Version = version_dir
                .file_name()
                .unwrap()
                .to_string_lossy()
                .parse()
                .unwrap();
            let lv = LevelVersion::new(level, version);
            let dir = version_dir.join("fail");
            if !dir.is_dir() {
                continue;
            }
            for file in sorted_entries(&dir) {
                let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
                let check = stem.trim_end_matches(|c: char| c.is_ascii_digit());
                let text = std::fs::read_to_string(&file).unwrap();
                let docs = parse_documents(&file.display().to_string(), &text).unwrap();
                let result = pss::check_object(lv, &docs[0].value).unwrap();
                checked += 1;
                let ids: Vec<String> = result
                    .forbidden
                    .iter()
                    .map(|f| f.check_id.to_ascii_lowercase())
                    .collect();
                // At restricted, some baseline checks are replaced by a stricter one.
                let replacement = match check {
                    "hostpathvolumes" => "restrictedvolumes",
                    "capabilities_baseline" => "capabilities_restricted",
                    "seccompprofile_baseline" => "seccompprofile_restricted",
                    "procmount" => "procmount_restricted",
                    other => other,
                };
                let hit = ids.iter().any(|id| id == check || id == replacement);
                if !hit {
                    failures.push(format!("{}: denied by {ids:?}", file.display()));
                }
            }
        }
    }
    eprintln!("PSS fail fixtures attributed to their check: {checked}");
    assert!(checked > 3000, "only {checked} fail fixtures found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
