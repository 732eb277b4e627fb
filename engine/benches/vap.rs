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

const POLICIES: &str = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: no-privileged}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [pods]}]
  validations:
  - expression: >-
      object.spec.containers.all(c, !has(c.securityContext) ||
        !has(c.securityContext.privileged) || c.securityContext.privileged == false)
    message: privileged containers are not allowed
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: run-as-non-root}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [pods]}]
  validations:
  - expression: >-
      (has(object.spec.securityContext) && has(object.spec.securityContext.runAsNonRoot) &&
        object.spec.securityContext.runAsNonRoot == true) ||
      object.spec.containers.all(c, has(c.securityContext) &&
        has(c.securityContext.runAsNonRoot) && c.securityContext.runAsNonRoot == true)
    message: containers must run as non-root
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: no-latest}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [pods]}]
  validations:
  - expression: "object.spec.containers.all(c, c.image.contains(':') && !c.image.endsWith(':latest'))"
    message: images must be pinned to a tag other than latest
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: require-owner}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [pods]}]
  validations:
  - expression: "has(object.metadata.labels) && 'owner' in object.metadata.labels"
    message: pods need an owner label
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: no-privileged}
spec: {policyName: no-privileged, validationActions: [Deny]}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: run-as-non-root}
spec: {policyName: run-as-non-root, validationActions: [Deny]}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: no-latest}
spec: {policyName: no-latest, validationActions: [Warn]}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: require-owner}
spec: {policyName: require-owner, validationActions: [Audit]}
"#;

const POLICY_COUNT: usize = 4;
const PODS: usize = 10_000;

fn setup() -> (PolicySet, Vec<AdmissionRequest>) {
    let docs = parse_documents("bench.yaml", POLICIES).unwrap();
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

/// This thread's CPU time so far (Linux), to report a figure that other processes on a shared
/// machine do not distort; `None` elsewhere.
fn thread_cpu_time() -> Option<std::time::Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(std::time::Duration::from_nanos(nanos))
}

fn bench(c: &mut Criterion) {
    let (set, requests) = setup();
    if let Some(start) = thread_cpu_time() {
        let rounds = 5;
        for _ in 0..rounds {
            black_box(evaluate_all(&set, &requests));
        }
        if let Some(end) = thread_cpu_time() {
            let evaluations = (rounds * PODS * POLICY_COUNT) as f64;
            let seconds = (end - start).as_secs_f64();
            eprintln!(
                "vap: {:.0} policy x object evaluations per CPU-second on one core ({:.2} us each)",
                evaluations / seconds,
                seconds * 1e6 / evaluations
            );
        }
    }
    // The same on every core at once: CPU time per evaluation shows whether threads slow each
    // other down (shared state), whatever else the machine runs.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = requests.len().div_ceil(threads);
    let cpu: Vec<Option<f64>> = std::thread::scope(|scope| {
        let handles: Vec<_> = requests
            .chunks(chunk)
            .map(|part| {
                let set = &set;
                scope.spawn(move || {
                    let start = thread_cpu_time()?;
                    for _ in 0..5 {
                        black_box(evaluate_all(set, part));
                    }
                    Some((thread_cpu_time()? - start).as_secs_f64())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    if let Some(seconds) = cpu.into_iter().sum::<Option<f64>>() {
        let evaluations = (5 * PODS * POLICY_COUNT) as f64;
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
            let chunk = requests.len().div_ceil(threads);
            std::thread::scope(|scope| {
                let handles: Vec<_> = requests
                    .chunks(chunk)
                    .map(|part| scope.spawn(|| evaluate_all(&set, part)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap())
                    .sum::<usize>()
            })
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
