//! ValidatingAdmissionPolicy throughput: four simple field-check policies (privileged containers,
//! runAsNonRoot, `:latest` images, a required label) against 10,000 varied pods from
//! `palisade_engine::sample`. The figure that matters is policy × object evaluations per second,
//! on one core and on all cores.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use palisade_engine::admission::AdmissionRequest;
use palisade_engine::sample;
use palisade_engine::source::parse_documents;
use palisade_engine::vap::{EvalContext, PolicySet};

#[path = "support/cores.rs"]
mod cores;

/// Each policy: its name, the action its binding takes, its expression and its message.
const POLICIES: [(&str, &str, &str, &str); 4] = [
    (
        "no-privileged",
        "Deny",
        "object.spec.containers.all(c, !has(c.securityContext) ||
        !has(c.securityContext.privileged) || c.securityContext.privileged == false)",
        "privileged containers are not allowed",
    ),
    (
        "run-as-non-root",
        "Deny",
        "(has(object.spec.securityContext) && has(object.spec.securityContext.runAsNonRoot) &&
        object.spec.securityContext.runAsNonRoot == true) ||
      object.spec.containers.all(c, has(c.securityContext) &&
        has(c.securityContext.runAsNonRoot) && c.securityContext.runAsNonRoot == true)",
        "containers must run as non-root",
    ),
    (
        "no-latest",
        "Warn",
        "object.spec.containers.all(c, c.image.contains(':') && !c.image.endsWith(':latest'))",
        "images must be pinned to a tag other than latest",
    ),
    (
        "require-owner",
        "Audit",
        "has(object.metadata.labels) && 'owner' in object.metadata.labels",
        "pods need an owner label",
    ),
];

/// [`POLICIES`] as documents: each a policy on pod creates and updates and its binding.
fn policies_yaml() -> String {
    POLICIES
        .iter()
        .map(|(name, action, expression, message)| {
            format!(
                r#"---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {{name: {name}}}
spec:
  matchConstraints:
    resourceRules: [{{apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [pods]}}]
  validations:
  - expression: >-
      {expression}
    message: {message}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {{name: {name}}}
spec: {{policyName: {name}, validationActions: [{action}]}}
"#
            )
        })
        .collect()
}

const POLICY_COUNT: usize = POLICIES.len();
const PODS: usize = 10_000;
/// How many times the CPU-time figures evaluate every pod.
const ROUNDS: usize = 5;

fn setup() -> (PolicySet, Vec<AdmissionRequest>) {
    let docs = parse_documents("bench.yaml", &policies_yaml()).unwrap();
    let set = PolicySet::from_documents("bench.yaml", &docs).unwrap();
    let requests = sample::pods(42, PODS)
        .into_iter()
        .map(|pod| AdmissionRequest::create(pod).unwrap())
        .collect();
    (set, requests)
}

fn evaluate_all(set: &PolicySet, requests: &[AdmissionRequest]) -> usize {
    let ctx = EvalContext::default();
    requests
        .iter()
        .map(|request| set.evaluate(black_box(request), &ctx).evaluations.len())
        .sum()
}

fn bench(c: &mut Criterion) {
    let (set, requests) = setup();
    let evaluations = (ROUNDS * PODS * POLICY_COUNT) as f64;
    if let Some(seconds) = cores::cpu_seconds(ROUNDS, || evaluate_all(&set, &requests)) {
        eprintln!(
            "vap: {:.0} policy x object evaluations per CPU-second on one core ({:.2} us each)",
            evaluations / seconds,
            seconds * 1e6 / evaluations
        );
    }
    // The same on every core at once: CPU time per evaluation shows whether threads slow each
    // other down (shared state), whatever else the machine runs.
    let threads = cores::threads();
    let cpu = cores::on_every_core(&requests, |part| {
        cores::cpu_seconds(ROUNDS, || evaluate_all(&set, part))
    });
    if let Some(seconds) = cpu.into_iter().sum::<Option<f64>>() {
        eprintln!(
            "vap: on {threads} threads at once, {:.2} us of CPU per evaluation ({:.0} per CPU-second per core)",
            seconds * 1e6 / evaluations,
            evaluations / seconds
        );
    }

    let mut group = c.benchmark_group("vap");
    group.sample_size(10);
    group.throughput(Throughput::Elements((PODS * POLICY_COUNT) as u64));
    group.bench_function("one core: 4 policies x 10k pods", |b| {
        b.iter(|| evaluate_all(&set, &requests))
    });
    group.bench_function(format!("{threads} threads: 4 policies x 10k pods"), |b| {
        b.iter(|| {
            cores::on_every_core(&requests, |part| evaluate_all(&set, part))
                .into_iter()
                .sum::<usize>()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
