//! The app's modules depend on each other one way, from the shell down to the shared basic types,
//! and no source file grows past a few hundred lines.
//!
//! This test reads every source file of `app/src` and fails when a module names one above it, so a
//! new import against the direction is caught when it is written. Pages (`pages.rs`,
//! `pages/`) are the UI on top of every domain and may call any domain's server functions; test
//! modules may reach anywhere.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Lowest first. A module may name modules of its own layer or below.
const LAYERS: &[&[&str]] = &[
    // Shared basic types and plumbing, and the table of the app's sections.
    &[
        "model", "wire", "error", "db", "secrets", "time", "ui", "sections",
    ],
    // Who is asking, and what they may do.
    &["auth"],
    // What every domain records or announces.
    &["audit", "notify"],
    // The domains, each on the ones before it.
    // With the server's shared state: it holds the cluster connector, and the server functions of
    // every domain from here up take their database from it.
    &["clusters", "state"],
    // What each cluster holds, kept by watching it.
    &["inventory"],
    // Users, tokens and sessions, and the Settings page's server functions.
    &["account"],
    &["policies"],
    &["exceptions"],
    &["violations"],
    // What a policy would do if enforced, from the inventory: the rollouts ask it before they
    // propose or approve.
    &["impact"],
    // What a cluster would fail under the whole library, assessed from its inventory.
    &["posture"],
    &["rollouts"],
    // Read models and use cases over several domains.
    &["compliance", "staging", "overview", "testruns"],
    // The shell: layout and the router.
    &["layout", "lib"],
];

/// Edges that still run against the direction, each with the reason and the way out. The test
/// also fails when one of them is gone, so this list stays true: delete the line then.
const KNOWN: &[(&str, &str, &str)] = &[];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("reading {}: {err}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn is_page(relative: &str) -> bool {
    relative.ends_with("/pages.rs") || relative.contains("/pages/")
}

/// The code of a file without comments and without its `#[cfg(test)]` module.
fn code(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]")
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod tests {"))
        {
            break;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The top-level modules a file names through `crate::`.
fn named_modules(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.insert(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

#[test]
fn modules_depend_on_each_other_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    assert!(
        all.len() > 40,
        "read only {} files under {}",
        all.len(),
        src.display()
    );

    let mut against = Vec::new();
    let mut seen_known = BTreeSet::new();
    for path in &all {
        let relative = path
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if is_page(&relative) || relative.ends_with("/tests.rs") {
            continue;
        }
        let module = relative
            .split('/')
            .next()
            .unwrap()
            .trim_end_matches(".rs")
            .to_owned();
        let Some(from) = layer_of(&module) else {
            panic!("app/src/{relative}: module `{module}` has no layer; add it to LAYERS");
        };
        let text = std::fs::read_to_string(path).unwrap();
        for named in named_modules(&code(&text)) {
            let Some(to) = layer_of(&named) else {
                panic!("app/src/{relative} names `crate::{named}`, which has no layer in LAYERS");
            };
            if to > from {
                if KNOWN.iter().any(|(f, t, _)| *f == relative && *t == named) {
                    seen_known.insert((relative.clone(), named));
                } else {
                    against.push(format!(
                        "app/src/{relative} (`{module}`) names `crate::{named}`, a layer above it"
                    ));
                }
            }
        }
    }
    assert!(
        against.is_empty(),
        "imports against the one-way order (see LAYERS in app/tests/layers.rs):\n{}",
        against.join("\n")
    );
    for (file, to, _) in KNOWN {
        assert!(
            seen_known.contains(&(file.to_string(), to.to_string())),
            "app/src/{file} no longer names `crate::{to}`: delete that line of KNOWN"
        );
    }
}

/// The most lines a source file of the app may have: past it, a file holds more than one thing
/// and is split by what it does (a page per file, a tab per file, a test group per file).
const MAX_LINES: usize = 700;

#[test]
fn no_source_file_is_longer_than_the_limit() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    assert!(all.len() > 40, "read only {} files", all.len());
    let long: Vec<String> = all
        .iter()
        .filter_map(|path| {
            let lines = std::fs::read_to_string(path).unwrap().lines().count();
            (lines > MAX_LINES).then(|| format!("{} ({lines} lines)", path.display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "longer than {MAX_LINES} lines, split by what each part does: {long:?}"
    );
}

#[test]
fn the_scanner_sees_grouped_and_plain_paths() {
    let code = code(
        "use crate::{clusters, exceptions::Exception};\n// crate::rollouts in a comment\nlet x = crate::policies::ssr::list();\n#[cfg(test)]\nmod tests {\n use crate::staging;\n}\n",
    );
    let named: Vec<_> = named_modules(&code).into_iter().collect();
    assert_eq!(named, ["clusters", "exceptions", "policies"]);
}
