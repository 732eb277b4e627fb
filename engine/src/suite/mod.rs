//! Test suites: gator `Suite` files, Kyverno CLI `Test` files and Palisade's own format, all reduced
//! to a list of cases that passed, failed or were skipped (with the reason).
//!
//! The engine stays free of I/O: suites read the files they reference through [`Files`], which the
//! CLI implements on the file system and tests implement in memory.

pub mod gator;
pub mod kyverno;
pub mod palisade;

use std::fmt;

use serde::Serialize;

use crate::source::{parse_documents, type_meta, Document, SourceError};

/// Read access to the files a suite refers to. Paths are relative to the suite file's directory, as
/// written in the suite; implementations resolve them.
pub trait Files {
    /// The text of `path`, or a message saying why it cannot be read.
    fn read(&self, path: &str) -> Result<String, String>;
}

/// The documents of the file `path`, or why they cannot be read.
fn read_documents(files: &dyn Files, path: &str) -> Result<Vec<Document>, String> {
    let text = files.read(path)?;
    parse_documents(path, &text).map_err(|e| e.to_string())
}

/// The errors of loading policies, on one line.
fn one_line(errors: Vec<SourceError>) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Run the suite in `text` (the file `name`), whichever format it is: gator `Suite`, Kyverno CLI
/// `Test` or Palisade `PolicyTest`. `Err` when the file is not a suite at all or cannot be read as one.
pub fn run_file(name: &str, text: &str, files: &dyn Files) -> Result<Vec<CaseResult>, SourceError> {
    let documents = parse_documents(name, text)?;
    let Some(document) = documents.first() else {
        return Err(SourceError::new(name, 0, 0, "the file is empty"));
    };
    let (api_version, kind) = type_meta(&document.value);
    let group = api_version.split('/').next().unwrap_or_default();
    match (group, kind) {
        ("palisade.dev", "PolicyTest") => palisade::run(name, document, files),
        ("cli.kyverno.io", "Test") => Ok(kyverno::run(name, text, files)),
        ("test.gatekeeper.sh", "Suite") => Ok(gator::run(name, text, files)),
        _ => Err(SourceError::new(
            name,
            document.first_line,
            0,
            format!(
                "not a test suite: expected a gator Suite (test.gatekeeper.sh), a Kyverno Test \
                 (cli.kyverno.io) or a Palisade PolicyTest (palisade.dev), found {kind:?} of {api_version:?}"
            ),
        )),
    }
}

/// How one case ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "reason", rename_all = "lowercase")]
pub enum CaseStatus {
    Passed,
    /// What was expected and what happened.
    Failed(String),
    /// Why the case could not be run (never a silent skip).
    Skipped(String),
}

/// One case of one suite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseResult {
    /// The suite file, as the user named it.
    pub suite: String,
    /// The case's name, qualified by its test group where the format has one (`test/case`).
    pub name: String,
    #[serde(flatten)]
    pub status: CaseStatus,
}

impl fmt::Display for CaseResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.status {
            CaseStatus::Passed => write!(f, "PASS {} {}", self.suite, self.name),
            CaseStatus::Failed(why) => write!(f, "FAIL {} {}: {}", self.suite, self.name, why),
            CaseStatus::Skipped(why) => write!(f, "SKIP {} {}: {}", self.suite, self.name, why),
        }
    }
}

/// Counts over many cases; prints as `N passed, M failed` and `, K skipped` when there are skips.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

impl Summary {
    pub fn of<'a>(results: impl IntoIterator<Item = &'a CaseResult>) -> Self {
        let mut summary = Summary::default();
        for result in results {
            match result.status {
                CaseStatus::Passed => summary.passed += 1,
                CaseStatus::Failed(_) => summary.failed += 1,
                CaseStatus::Skipped(_) => summary.skipped += 1,
            }
        }
        summary
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} passed, {} failed", self.passed, self.failed)?;
        if self.skipped > 0 {
            write!(f, ", {} skipped", self.skipped)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_line_has_the_exact_form() {
        let case = |status| CaseResult {
            suite: "s".into(),
            name: "c".into(),
            status,
        };
        let results = [
            case(CaseStatus::Passed),
            case(CaseStatus::Passed),
            case(CaseStatus::Failed("x".into())),
        ];
        assert_eq!(Summary::of(&results).to_string(), "2 passed, 1 failed");
        let with_skip = [case(CaseStatus::Skipped("needs a cluster".into()))];
        assert_eq!(
            Summary::of(&with_skip).to_string(),
            "0 passed, 0 failed, 1 skipped"
        );
    }
}
