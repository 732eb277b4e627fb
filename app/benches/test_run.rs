//! How long "Run tests" takes the engine for 100 cases of one policy (the issue asks for well under
//! a second). Cases are the library's own for two policies of different weight, repeated to 100.
//!
//! `cargo bench -p palisade-app --features ssr --bench test_run`

use criterion::{criterion_group, criterion_main, Criterion};
use palisade_app::policies::ssr::{library, validate};
use palisade_app::policies::Content;

fn hundred_cases(entry: &str) -> Content {
    let entry = palisade_engine::library::entry(entry)
        .ok()
        .flatten()
        .unwrap_or_else(|| std::process::exit(2));
    let mut content = library::content(&entry).unwrap_or_else(|_| std::process::exit(2));
    let cases = content.tests.clone();
    content.tests = (0..100)
        .map(|i| {
            let mut case = cases[i % cases.len()].clone();
            case.name = format!("{} #{i}", case.name);
            case
        })
        .collect();
    content
}

fn bench(c: &mut Criterion) {
    for entry in [
        "disallow-privileged",
        "allowed-registries",
        "pod-security-restricted",
    ] {
        let content = hundred_cases(entry);
        let ran = validate::run_cases(&content);
        assert_eq!(ran.results.len(), 100);
        assert!(ran.error.is_none());
        c.bench_function(&format!("run 100 cases of {entry}"), |b| {
            b.iter(|| validate::run_cases(std::hint::black_box(&content)))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
