//! `Bundle::may_judge_kind` held to the evaluator over real policies: every Kyverno policy of the
//! kyverno-policies oracle, every gatekeeper-library template with its sample constraints, and
//! the built-in library, each judged alone on varied objects of every kind the inventory keeps.
//! Where the bundle says an object's kind cannot be judged (so an impact skips reading it), the
//! evaluator must find nothing and have nothing it cannot evaluate.

mod common;

use std::path::Path;

use palisade_engine::bundle::{Bundle, Context};
use palisade_engine::{sample, AdmissionRequest};
use serde_json::{json, Value};

/// Varied workloads of every kind, Pods, and one or two objects of each other kind the
/// inventory keeps (and a ConfigMap, which it does not).
fn objects() -> Vec<Value> {
    let mut objects = sample::workloads(0x6b1d_0001, 120);
    objects.extend(sample::pods(0x6b1d_0002, 60));
    let meta = |name: &str| json!({"name": name, "namespace": "team", "labels": {"app": name}});
    let rule = json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]);
    objects.extend([
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team", "labels": {"team": "a"}}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": meta("lb"),
               "spec": {"type": "LoadBalancer", "externalIPs": ["1.2.3.4"], "selector": {"app": "x"},
                        "ports": [{"port": 80, "nodePort": 30080}]}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": meta("np"),
               "spec": {"type": "NodePort", "ports": [{"port": 80}]}}),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta("web"),
               "spec": {"rules": [{"host": "*.example.com"}]}}),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta("all"),
               "spec": {"podSelector": {}}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta("default"),
               "automountServiceAccountToken": true}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta("all"),
               "rules": rule}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": {"name": "all"}, "rules": rule}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta("admin"),
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
               "subjects": [{"kind": "Group", "name": "system:anonymous"}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": "admin"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
               "subjects": [{"kind": "User", "name": "system:anonymous"}]}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("settings"), "data": {"a": "b"}}),
    ]);
    objects
}

/// Tallies over one bundle: (objects skipped, skipped objects with a finding or a reason,
/// objects judged with a finding).
fn judge(
    name: &str,
    bundle: &Bundle,
    objects: &[Value],
    wrong: &mut Vec<String>,
) -> (usize, usize) {
    let context = Context::default();
    let (mut skipped, mut found) = (0, 0);
    for object in objects {
        let kind = object["kind"].as_str().unwrap_or_default();
        let Ok(request) = AdmissionRequest::create(object.clone()) else {
            continue;
        };
        let verdict = bundle.evaluate(&request, &context);
        if bundle.may_judge_kind(kind) {
            found += usize::from(!verdict.findings.is_empty());
            continue;
        }
        skipped += 1;
        if !verdict.findings.is_empty() || !verdict.not_evaluable.is_empty() {
            wrong.push(format!(
                "{name}: a {kind} would be skipped, but: {:?} {:?}",
                verdict.findings, verdict.not_evaluable
            ));
        }
    }
    (skipped, found)
}

fn yaml_files(dir: &Path) -> Vec<std::path::PathBuf> {
    common::files_under(dir, |path| {
        path.extension().is_some_and(|e| e == "yaml")
            && !path.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                n.starts_with("kyverno-test") || n.contains("resource") || n.starts_with("chainsaw")
            })
    })
}

#[test]
fn what_an_impact_skips_by_kind_the_evaluator_finds_nothing_about() {
    let objects = objects();
    let mut wrong = Vec::new();
    let mut bundles = 0;
    let (mut skipped, mut found) = (0, 0);
    let mut tally = |(s, f): (usize, usize)| {
        skipped += s;
        found += f;
    };

    let mut library = Bundle::default();
    library.add_library().unwrap();
    tally(judge("built-in library", &library, &objects, &mut wrong));
    bundles += 1;

    if let Some(dir) = common::oracle_dir("kyverno-policies") {
        for path in yaml_files(&dir) {
            let text = std::fs::read_to_string(&path).unwrap();
            if !text.contains("kind: ClusterPolicy") && !text.contains("kind: ValidatingPolicy") {
                continue;
            }
            let mut bundle = Bundle::default();
            let name = path.display().to_string();
            if bundle.add_source(&name, &text).is_err() || bundle.is_empty() {
                continue;
            }
            tally(judge(&name, &bundle, &objects, &mut wrong));
            bundles += 1;
        }
    }

    if let Some(dir) = common::oracle_dir("gatekeeper-library/library") {
        for (name, bundle) in common::gatekeeper_library_bundles(&dir) {
            tally(judge(&name, &bundle, &objects, &mut wrong));
            bundles += 1;
        }
    }

    eprintln!(
        "{bundles} bundles × {} objects: {skipped} skipped by kind, {found} judged objects with findings",
        objects.len()
    );
    assert!(
        wrong.is_empty(),
        "{} objects skipped wrongly, the first:\n{}",
        wrong.len(),
        wrong[..wrong.len().min(10)].join("\n")
    );
    assert!(
        skipped > 1_000 && found > 1_000,
        "{skipped} skipped, {found} found"
    );
}
