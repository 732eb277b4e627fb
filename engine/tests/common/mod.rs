//! What the Kyverno oracle tests share: a suite's files read from its directory, and every
//! Kyverno CLI test file under a directory.

// Each test binary uses the part it needs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use palisade_engine::suite::Files;

/// The files a suite names, read relative to its directory.
pub struct Dir(pub PathBuf);

impl Files for Dir {
    fn read(&self, path: &str) -> Result<String, String> {
        std::fs::read_to_string(self.0.join(path)).map_err(|e| format!("{path}: {e}"))
    }
}

/// Every `kyverno-test.yaml` under `dir`, in path order.
pub fn kyverno_test_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    collect(dir, &mut out);
    out
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(&path, out);
        } else if path.file_name().is_some_and(|n| n == "kyverno-test.yaml") {
            out.push(path);
        }
    }
}
