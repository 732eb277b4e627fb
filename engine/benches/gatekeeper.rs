//! Gatekeeper reviews per second on one core: library templates (privileged containers, allowed
//! repos, required labels, host namespaces) from `$PALISADE_ORACLES/gatekeeper-library`, with
//! constraints written here, against 10,000 varied pods from `palisade_engine::sample`.
//!
//! Many constraints: every template of the gatekeeper-library with every sample constraint beside
//! it (`<template dir>/samples/*/constraint.yaml`), as a scan of a cluster with the whole library
//! installed runs them.
//!
//! From text: what `palisade check` does per resource, from each pod's YAML text (read, admission
//! view, review), with one constraint and with four.
//!
//! Also measured: compiling a template (what a fresh engine per evaluation would cost, against the
//! prepared engine cloned per evaluation that the library uses), and a review with an inventory
//! (each evaluation then merges the inventory into the engine's data, which re-prepares it).

// Benchmark setup: a missing oracle file or a broken template should stop the run loudly.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use palisade_engine::gatekeeper::{EnforcementPoint, Inventory, Library, Rewrites, Template};
use palisade_engine::source::parse_documents;
use palisade_engine::{apiview, sample, AdmissionRequest};
use serde_json::Value;

const TEMPLATES: &[&str] = &[
    "pod-security-policy/privileged-containers/template.yaml",
    "general/allowedrepos/template.yaml",
    "general/requiredlabels/template.yaml",
    "pod-security-policy/host-namespaces/template.yaml",
];

const CONSTRAINTS: &str = r#"
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sPSPPrivilegedContainer
metadata:
  name: no-privileged
spec:
  match:
    kinds: [{apiGroups: [""], kinds: ["Pod"]}]
    excludedNamespaces: ["kube-system"]
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sAllowedRepos
metadata:
  name: trusted-registries
spec:
  enforcementAction: warn
  match:
    kinds: [{apiGroups: [""], kinds: ["Pod"]}]
    excludedNamespaces: ["kube-*"]
  parameters:
    repos: ["registry.example.com/", "ghcr.io/example-org/"]
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sRequiredLabels
metadata:
  name: owner-and-app
spec:
  enforcementAction: dryrun
  match:
    kinds: [{apiGroups: [""], kinds: ["Pod"]}]
  parameters:
    labels:
    - key: owner
    - key: app
      allowedRegex: "^[a-z][a-z0-9-]*$"
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sPSPHostNamespace
metadata:
  name: no-host-namespaces
spec:
  match:
    kinds: [{apiGroups: [""], kinds: ["Pod"]}]
"#;

fn library_dir() -> Option<PathBuf> {
    let Some(oracles) = std::env::var_os("PALISADE_ORACLES") else {
        eprintln!(
            "!!! PALISADE_ORACLES is not set: the Gatekeeper benchmark needs the gatekeeper-library \
             templates and was NOT run. Set PALISADE_ORACLES=/work/shared/oracles."
        );
        return None;
    };
    Some(PathBuf::from(oracles).join("gatekeeper-library/library"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn library(dir: &Path) -> Library {
    let mut library = Library::new();
    for template in TEMPLATES {
        let path = dir.join(template);
        let documents = parse_documents(template, &read(&path)).unwrap();
        library.add_documents(template, &documents).unwrap();
    }
    let documents = parse_documents("constraints.yaml", CONSTRAINTS).unwrap();
    library
        .add_documents("constraints.yaml", &documents)
        .unwrap();
    library
}

/// Varied pods from `palisade_engine::sample` (namespaces, labels, images and registries,
/// container counts, security settings, host namespaces), so every rule body is exercised both
/// ways.
fn pods(count: usize) -> Vec<Value> {
    sample::pods(0x6a7e_0001, count)
}

/// Every template of the library and every sample constraint, in a stable order.
fn whole_library(dir: &Path) -> Library {
    let mut templates = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.file_name().is_some_and(|n| n == "template.yaml") {
                templates.push(path);
            }
        }
    }
    templates.sort();
    let mut library = Library::new();
    for template in &templates {
        let name = template.display().to_string();
        library
            .add_documents(&name, &parse_documents(&name, &read(template)).unwrap())
            .unwrap();
        let Some(samples) = template.parent().map(|d| d.join("samples")) else {
            continue;
        };
        let Ok(entries) = std::fs::read_dir(&samples) else {
            continue;
        };
        let mut constraints: Vec<PathBuf> = entries
            .map(|e| e.unwrap().path().join("constraint.yaml"))
            .filter(|p| p.is_file())
            .collect();
        constraints.sort();
        for constraint in constraints {
            let name = constraint.display().to_string();
            library
                .add_documents(&name, &parse_documents(&name, &read(&constraint)).unwrap())
                .unwrap();
        }
    }
    library
}

/// One template of `TEMPLATES` with its constraint from `CONSTRAINTS`.
fn single_library(dir: &Path, template: &str) -> Library {
    let mut single = Library::new();
    let path = dir.join(template);
    single
        .add_documents(template, &parse_documents(template, &read(&path)).unwrap())
        .unwrap();
    let kind = single.templates().next().unwrap().kind.clone();
    let constraint: Vec<_> = parse_documents("constraints.yaml", CONSTRAINTS)
        .unwrap()
        .into_iter()
        .filter(|d| d.value["kind"] == kind.as_str())
        .collect();
    single
        .add_documents("constraints.yaml", &constraint)
        .unwrap();
    single
}

/// A manifest's text read, seen as admission sees it on create, and reviewed.
fn check_text(library: &Library, text: &str) -> usize {
    let document = parse_documents("pod.yaml", text).unwrap().pop().unwrap();
    let view = apiview::into_admission_view(document.value).unwrap();
    let request = AdmissionRequest::create(view.object).unwrap();
    library
        .review(&request, &Inventory::empty())
        .unwrap()
        .violations
        .len()
}

/// Every pod's creation reviewed at admission, each review kept from being optimised away. The
/// requests are made once, before, as a scan or an impact makes one per object for all of its
/// engines.
fn review_all(library: &Library, requests: &[AdmissionRequest], inventory: &Inventory) {
    for request in requests {
        black_box(library.review(black_box(request), inventory).unwrap());
    }
}

fn reviews(c: &mut Criterion) {
    let Some(dir) = library_dir() else {
        return;
    };
    let library = library(&dir);
    let pods = pods(10_000);
    let requests: Vec<AdmissionRequest> = pods
        .iter()
        .map(|pod| AdmissionRequest::create(pod.clone()).unwrap())
        .collect();
    let empty = Inventory::empty();

    // Sanity: the mix really produces violations of every action, and not for every pod.
    let mut violations = 0;
    for pod in &pods {
        violations += library
            .review_object(pod, &empty, EnforcementPoint::Validation)
            .unwrap()
            .violations
            .len();
    }
    eprintln!(
        "10,000 pods, {} constraints: {violations} violations",
        library.constraints().count()
    );
    assert!(violations > 1_000 && violations < 40_000);

    let mut group = c.benchmark_group("gatekeeper");
    group.sample_size(10);
    group.throughput(Throughput::Elements(pods.len() as u64));
    group.bench_function("review 10k pods, 4 constraints", |b| {
        b.iter(|| review_all(&library, &requests, &empty))
    });
    for template in TEMPLATES {
        let single = single_library(&dir, template);
        let kind = single.templates().next().unwrap().kind.clone();
        group.bench_function(format!("review 10k pods, {kind}"), |b| {
            b.iter(|| review_all(&single, &requests, &empty))
        });
    }
    group.finish();

    // From each pod's text, as `palisade check` reviews a manifest.
    let texts: Vec<String> = pods[..1_000]
        .iter()
        .map(|pod| serde_yaml_ng::to_string(pod).unwrap())
        .collect();
    let privileged = single_library(&dir, TEMPLATES[0]);
    let mut group = c.benchmark_group("gatekeeper from text");
    group.sample_size(10);
    group.throughput(Throughput::Elements(texts.len() as u64));
    for (name, chosen) in [("1 constraint", &privileged), ("4 constraints", &library)] {
        group.bench_function(format!("check 1k pod texts, {name}"), |b| {
            b.iter(|| {
                for text in &texts {
                    black_box(check_text(chosen, black_box(text)));
                }
            })
        });
    }
    group.finish();

    // The whole library: every template with its sample constraints.
    let whole = whole_library(&dir);
    let count = whole.constraints().count();
    eprintln!(
        "whole library: {} templates, {count} constraints",
        whole.templates().count()
    );
    let mut group = c.benchmark_group("gatekeeper library");
    group.sample_size(10);
    group.throughput(Throughput::Elements(1_000));
    group.bench_function(format!("review 1k pods, {count} constraints"), |b| {
        b.iter(|| {
            for pod in &pods[..1_000] {
                black_box(
                    whole
                        .review_object(black_box(pod), &empty, EnforcementPoint::Validation)
                        .unwrap(),
                );
            }
        })
    });
    group.finish();

    // A fresh compile per evaluation against the clone of a prepared engine.
    let mut group = c.benchmark_group("gatekeeper compile");
    group.sample_size(20);
    let path = dir.join(TEMPLATES[0]);
    let documents = parse_documents(TEMPLATES[0], &read(&path)).unwrap();
    group.bench_function("compile privileged-containers template", |b| {
        b.iter(|| {
            black_box(Template::from_document("t.yaml", &documents[0], Rewrites::ALL).unwrap())
        })
    });
    let one_pod = &pods[7];
    group.bench_function("review one pod, 4 constraints", |b| {
        b.iter(|| {
            black_box(
                library
                    .review_object(one_pod, &empty, EnforcementPoint::Validation)
                    .unwrap(),
            )
        })
    });
    group.finish();

    // With an inventory of 200 objects, each evaluation merges it into the engine's data.
    let inventory = Inventory::from_objects(&pods[..200]).unwrap();
    let mut group = c.benchmark_group("gatekeeper inventory");
    group.sample_size(10);
    group.throughput(Throughput::Elements(1_000));
    group.bench_function("review 1k pods, 4 constraints, 200-object inventory", |b| {
        b.iter_batched(
            || (),
            |()| {
                for pod in &pods[..1_000] {
                    black_box(
                        library
                            .review_object(pod, &inventory, EnforcementPoint::Validation)
                            .unwrap(),
                    );
                }
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, reviews);
criterion_main!(benches);
