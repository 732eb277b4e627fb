//! What the oracle tests share: the oracle data's directories, a suite's files read from its
//! directory, and the files of a kind under a directory.

// Each test binary uses the part it needs.
#![allow(dead_code)]
// A test helper that meets unreadable oracle data stops the test loudly.
#![allow(clippy::panic)]

use std::io::Write;
use std::path::{Path, PathBuf};

use palisade_engine::suite::Files;

/// `$PALISADE_ORACLES/<path>`, which must be a directory; `None` when the variable is not set,
/// said on stderr (straight, past the test harness's capture, so it is seen).
pub fn oracle_dir(path: &str) -> Option<PathBuf> {
    let Some(oracles) = std::env::var_os("PALISADE_ORACLES") else {
        let _ = writeln!(
            std::io::stderr(),
            "!!! PALISADE_ORACLES is not set: the oracle data in {path} was NOT checked. \
             Set PALISADE_ORACLES=/work/shared/oracles to run it."
        );
        return None;
    };
    let dir = Path::new(&oracles).join(path);
    assert!(
        dir.is_dir(),
        "PALISADE_ORACLES is set but {} is missing",
        dir.display()
    );
    Some(dir)
}

/// The files a suite names, read relative to its directory.
pub struct Dir(pub PathBuf);

impl Files for Dir {
    fn read(&self, path: &str) -> Result<String, String> {
        std::fs::read_to_string(self.0.join(path)).map_err(|e| format!("{path}: {e}"))
    }
}

/// Every `kyverno-test.yaml` under `dir`, in path order.
pub fn kyverno_test_files(dir: &Path) -> Vec<PathBuf> {
    files_under(dir, |path| {
        path.file_name().is_some_and(|n| n == "kyverno-test.yaml")
    })
}

/// Every file under `dir` (at any depth) that `keep` accepts, in path order; a directory that
/// cannot be read stops the test.
pub fn files_under(dir: &Path, keep: impl Fn(&Path) -> bool + Copy) -> Vec<PathBuf> {
    let mut out = Vec::new();
    collect(dir, keep, &mut out);
    out.sort();
    out
}

fn collect(dir: &Path, keep: impl Fn(&Path) -> bool + Copy, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .path();
        if path.is_dir() {
            collect(&path, keep, out);
        } else if keep(&path) {
            out.push(path);
        }
    }
}

/// Each gatekeeper-library template under `dir` (its `template.yaml`) that has sample constraints,
/// loaded into a bundle of its own with all of them: (the template's path, the bundle). A template
/// whose files do not all load is left out.
pub fn gatekeeper_library_bundles(dir: &Path) -> Vec<(String, palisade_engine::bundle::Bundle)> {
    let templates = files_under(dir, |p| p.file_name().is_some_and(|n| n == "template.yaml"));
    let mut out = Vec::new();
    for template in templates {
        let Some(samples) = template.parent().map(|d| d.join("samples")) else {
            continue;
        };
        let constraints = if samples.is_dir() {
            files_under(&samples, |p| {
                p.file_name().is_some_and(|n| n == "constraint.yaml")
            })
        } else {
            Vec::new()
        };
        if constraints.is_empty() {
            continue;
        }
        let mut bundle = palisade_engine::bundle::Bundle::default();
        let loaded = std::iter::once(&template).chain(&constraints).all(|file| {
            let text =
                std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            bundle
                .add_source(&file.display().to_string(), &text)
                .is_ok()
        });
        if loaded {
            out.push((template.display().to_string(), bundle));
        }
    }
    out
}
