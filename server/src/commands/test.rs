//! `palisade test PATH...`: run every test suite under the paths and print one line per case, then
//! `N passed, M failed` (and `, K skipped`). Exit 0 only when nothing failed.

use std::path::Path;

use palisade_engine::suite::{self, CaseResult, CaseStatus, Summary};
use serde::Serialize;

use super::inputs::{self, DirFiles};
use super::{Exit, OutputFormat};

/// The file names `palisade test` recognises when it walks a directory. A file given by path is read
/// whatever its name.
pub fn is_suite_file(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    matches!(
        name,
        "suite.yaml" | "kyverno-test.yaml" | "palisade-test.yaml"
    ) || name.ends_with(".palisade-test.yaml")
}

#[derive(Serialize)]
struct Report<'a> {
    cases: &'a [CaseResult],
    summary: Summary,
}

pub fn run(paths: &[String], format: OutputFormat) -> Exit {
    let mut suites = Vec::new();
    for path in paths {
        match inputs::walk(Path::new(path), &is_suite_file) {
            Ok(found) if found.is_empty() => {
                eprintln!("palisade: error: {path}: no test suites found (looked for suite.yaml, kyverno-test.yaml, palisade-test.yaml)");
                return Exit::BadInput;
            }
            Ok(found) => suites.extend(found),
            Err(err) => {
                eprintln!("palisade: error: {err}");
                return Exit::BadInput;
            }
        }
    }
    suites.dedup();

    let mut results = Vec::new();
    for path in &suites {
        let name = path.display().to_string();
        let cases = match inputs::read_file(path) {
            Ok(input) => {
                let files = DirFiles {
                    base: path.parent().map(Path::to_path_buf).unwrap_or_default(),
                };
                match suite::run_file(&name, &input.text, &files) {
                    Ok(cases) => cases,
                    Err(err) => vec![CaseResult {
                        suite: name.clone(),
                        name: "(suite)".into(),
                        status: CaseStatus::Failed(err.to_string()),
                    }],
                }
            }
            Err(err) => vec![CaseResult {
                suite: name.clone(),
                name: "(suite)".into(),
                status: CaseStatus::Failed(err.message),
            }],
        };
        if format == OutputFormat::Text {
            for case in &cases {
                println!("{case}");
            }
        }
        results.extend(cases);
    }

    let summary = Summary::of(&results);
    match format {
        OutputFormat::Text => println!("{summary}"),
        OutputFormat::Json => super::print_json(&Report {
            cases: &results,
            summary,
        }),
    }
    if summary.failed == 0 {
        Exit::Ok
    } else {
        Exit::Failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suite_files_are_recognised_by_name() {
        assert!(is_suite_file(Path::new("lib/general/x/suite.yaml")));
        assert!(is_suite_file(Path::new(".kyverno-test/kyverno-test.yaml")));
        assert!(is_suite_file(Path::new("p/palisade-test.yaml")));
        assert!(is_suite_file(Path::new("p/extra.palisade-test.yaml")));
        assert!(!is_suite_file(Path::new("p/policy.yaml")));
    }
}
