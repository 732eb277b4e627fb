//! The whole built-in library against 10,000 varied pods from `palisade_engine::sample`.
//!
//! How evaluations are counted: every policy of the bundle is considered for every object, so
//! "policy × object evaluations" = (policies in the bundle) × (objects). The whole library is
//! 20 policies: its 18 ValidatingAdmissionPolicies (each with its binding) and the two Pod
//! Security levels. Some of them never apply to a Pod (RBAC, NetworkPolicy) and some pods are in
//! `kube-system`, which every binding excludes: those cost only the match, and they still count,
//! because a real request pays for them too. The benchmark also prints how many (policy,
//! binding) pairs actually ran their validations.
//!
//! Groups: `library` (all 20), and `simple field checks` (disallow-privileged,
//! disallow-latest-tag, require-run-as-non-root, disallow-host-namespaces) to compare with the
//! target of 100,000 policy × object evaluations per second per core. Each on one core and on
//! every core (`std::thread::scope`); CPU time per evaluation is printed too, since the machine
//! may be shared.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use palisade_engine::bundle::{Bundle, Context};
use palisade_engine::library;
use palisade_engine::sample;
use palisade_engine::source::parse_documents;
use palisade_engine::vap::{EvalContext, PolicySet};
use palisade_engine::{Action, AdmissionRequest};

#[path = "support/cores.rs"]
mod cores;

const PODS: usize = 10_000;
const SEED: u64 = 0x11b_0000_0001;
const SIMPLE: &[&str] = &[
    "disallow-privileged",
    "disallow-latest-tag",
    "require-run-as-non-root",
    "disallow-host-namespaces",
];
const ROUNDS: usize = 3;

fn evaluate_all(bundle: &Bundle, requests: &[AdmissionRequest], context: &Context) -> usize {
    requests
        .iter()
        .filter(|request| bundle.evaluate(black_box(request), context).action() == Action::Deny)
        .count()
}

/// CPU time per evaluation on one thread, then on every core at once.
fn cpu_figures(label: &str, bundle: &Bundle, policies: usize, requests: &[AdmissionRequest]) {
    let context = Context::default();
    let evaluations = (ROUNDS * requests.len() * policies) as f64;
    let objects = (ROUNDS * requests.len()) as f64;
    if let Some(seconds) = cores::cpu_seconds(ROUNDS, || evaluate_all(bundle, requests, &context)) {
        eprintln!(
            "{label}: one core: {:.0} policy x object evaluations per CPU-second \
             ({:.2} us each), {:.0} objects per CPU-second",
            evaluations / seconds,
            seconds * 1e6 / evaluations,
            objects / seconds
        );
    }
    let threads = cores::threads();
    let wall = std::time::Instant::now();
    let cpu = cores::on_every_core(requests, |part| {
        cores::cpu_seconds(ROUNDS, || evaluate_all(bundle, part, &context))
    });
    let wall = wall.elapsed().as_secs_f64();
    if let Some(seconds) = cpu.into_iter().sum::<Option<f64>>() {
        eprintln!(
            "{label}: {threads} threads at once: {:.2} us of CPU per evaluation ({:.0} per \
             CPU-second per core); wall clock {:.0} evaluations/s, {:.0} objects/s",
            seconds * 1e6 / evaluations,
            evaluations / seconds,
            evaluations / wall,
            objects / wall
        );
    }
}

fn criterion_group_for(
    c: &mut Criterion,
    name: &str,
    bundle: &Bundle,
    policies: usize,
    requests: &[AdmissionRequest],
) {
    let context = Context::default();
    let threads = cores::threads();
    let mut group = c.benchmark_group(name);
    group.sample_size(10);
    group.throughput(Throughput::Elements((requests.len() * policies) as u64));
    group.bench_function(format!("one core: {policies} policies x 10k pods"), |b| {
        b.iter(|| evaluate_all(bundle, requests, &context))
    });
    group.bench_function(
        format!("{threads} threads: {policies} policies x 10k pods"),
        |b| {
            b.iter(|| {
                cores::on_every_core(requests, |part| evaluate_all(bundle, part, &context))
                    .into_iter()
                    .sum::<usize>()
            })
        },
    );
    group.finish();
}

fn bench(c: &mut Criterion) {
    let entries = library::entries().unwrap();
    let requests: Vec<AdmissionRequest> = sample::pods(SEED, PODS)
        .into_iter()
        .map(|pod| AdmissionRequest::create(pod).unwrap())
        .collect();

    let mut whole = Bundle::default();
    whole.add_library().unwrap();
    let whole_count = entries.len();

    let mut simple = Bundle::default();
    for id in SIMPLE {
        let entry = entries.iter().find(|e| e.id == *id).unwrap();
        simple.add_library_entry(entry).unwrap();
    }

    // Sanity, and the count of (policy, binding) pairs that really ran on these pods.
    let mut vap = PolicySet::default();
    for entry in entries.iter().filter(|e| e.policy_file() == "policy.yaml") {
        let file = format!("library/{}/policy.yaml", entry.id);
        let docs = parse_documents(&file, entry.policy_yaml).unwrap();
        vap.extend(PolicySet::from_documents(&file, &docs).unwrap());
    }
    let applied: usize = requests
        .iter()
        .map(|r| vap.evaluate(r, &EvalContext::default()).evaluations.len())
        .sum();
    let context = Context::default();
    let denied = evaluate_all(&whole, &requests, &context);
    let simple_denied = evaluate_all(&simple, &requests, &context);
    eprintln!(
        "library: {PODS} pods (seed {SEED:#x}), {whole_count} policies: {denied} denied; \
         {applied} (VAP, binding) evaluations ran their validations ({:.1} per pod); \
         simple field checks: {simple_denied} denied",
        applied as f64 / PODS as f64
    );
    assert!(denied > PODS / 2 && denied < PODS, "{denied}");
    assert!(
        simple_denied > PODS / 10 && simple_denied < PODS,
        "{simple_denied}"
    );

    cpu_figures("library (20 policies)", &whole, whole_count, &requests);
    cpu_figures(
        "simple field checks (4 policies)",
        &simple,
        SIMPLE.len(),
        &requests,
    );
    criterion_group_for(c, "library", &whole, whole_count, &requests);
    criterion_group_for(c, "simple field checks", &simple, SIMPLE.len(), &requests);
}

criterion_group!(benches, bench);
criterion_main!(benches);
