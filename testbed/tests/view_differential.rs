//! Differential test of the engine's admission view (`palisade_engine::apiview`) against real
//! kube-apiservers: seeded, varied objects of every kind the view knows are sent with a server-side
//! dry-run create (`dryRun=All`), and the object the apiserver answers with — decoded, defaulted,
//! prepared and mutated by its default admission plugins, exactly what a validating policy sees —
//! is compared field by field with the view. What the view documents as the cluster's own choice
//! (system metadata, a Service's allocated IPs) is left out of the comparison, nothing else.
//!
//! Needs running clusters: `e2e/clusters up && eval "$(e2e/clusters env)"`. Without them the test
//! fails and says so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use kube::Client;
use palisade_engine::apiview::{admission_view, ViewError};
use palisade_engine::sample::{self, Rng};
use palisade_testbed::{delete_namespace, unique_name};
use serde_json::{json, Value};

/// Objects generated per kind and run.
const PER_KIND: usize = 60;
/// The seed of the run; the note of each failure names it with the object's index.
const SEED: u64 = 0x0016_a1e1_d000;

/// Where a kind is created: its collection path under the namespace (or the cluster).
fn collection(kind: &str, namespace: &str) -> String {
    let namespaced = |group: &str, resource: &str| {
        if group.is_empty() {
            format!("/api/v1/namespaces/{namespace}/{resource}")
        } else {
            format!("/apis/{group}/namespaces/{namespace}/{resource}")
        }
    };
    match kind {
        "Pod" => namespaced("", "pods"),
        "Service" => namespaced("", "services"),
        "ConfigMap" => namespaced("", "configmaps"),
        "Secret" => namespaced("", "secrets"),
        "ServiceAccount" => namespaced("", "serviceaccounts"),
        "PersistentVolumeClaim" => namespaced("", "persistentvolumeclaims"),
        "Namespace" => "/api/v1/namespaces".to_owned(),
        "Deployment" => namespaced("apps/v1", "deployments"),
        "ReplicaSet" => namespaced("apps/v1", "replicasets"),
        "StatefulSet" => namespaced("apps/v1", "statefulsets"),
        "DaemonSet" => namespaced("apps/v1", "daemonsets"),
        "Job" => namespaced("batch/v1", "jobs"),
        "CronJob" => namespaced("batch/v1", "cronjobs"),
        "NetworkPolicy" => namespaced("networking.k8s.io/v1", "networkpolicies"),
        "Ingress" => namespaced("networking.k8s.io/v1", "ingresses"),
        "Role" => namespaced("rbac.authorization.k8s.io/v1", "roles"),
        "RoleBinding" => namespaced("rbac.authorization.k8s.io/v1", "rolebindings"),
        "ClusterRole" => "/apis/rbac.authorization.k8s.io/v1/clusterroles".to_owned(),
        "ClusterRoleBinding" => "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings".to_owned(),
        "PodDisruptionBudget" => namespaced("policy/v1", "poddisruptionbudgets"),
        other => panic!("no collection for {other}"),
    }
}

/// A quantity written the ways people write them: a number, a plain string, a suffixed one.
fn quantity(rng: &mut Rng, memory: bool) -> Value {
    if memory {
        match rng.below(6) {
            0 => json!(134_217_728),
            1 => json!("128Mi"),
            2 => json!("1.5Gi"),
            3 => json!("100M"),
            4 => json!("1e3"),
            _ => json!("0.5Gi"),
        }
    } else {
        match rng.below(7) {
            0 => json!(2),
            1 => json!(0.5),
            2 => json!("250m"),
            3 => json!("1000m"),
            4 => json!("0.1"),
            5 => json!("1"),
            _ => json!(1.5),
        }
    }
}

/// A container with some fields left out and quantities written in every form.
fn container(rng: &mut Rng, name: &str) -> Value {
    let image = rng.pick(&[
        "nginx",
        "nginx:latest",
        "nginx:1.27",
        "registry.example.com/team/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "busybox:1.36",
    ]);
    let mut c = json!({"name": name, "image": image});
    if rng.chance(60) {
        let cpu = quantity(rng, false);
        let memory = quantity(rng, true);
        let mut resources = json!({});
        if rng.chance(70) {
            resources["limits"] = json!({"cpu": cpu.clone(), "memory": memory.clone()});
        }
        if rng.chance(50) {
            resources["requests"] = json!({"cpu": cpu, "memory": memory});
        }
        c["resources"] = resources;
    }
    if rng.chance(50) {
        let mut port = json!({"containerPort": 8080 + rng.below(10)});
        if rng.chance(50) {
            port["name"] = json!("http");
        }
        if rng.chance(30) {
            port["protocol"] = json!("UDP");
        }
        c["ports"] = json!([port]);
    }
    if rng.chance(30) {
        c["imagePullPolicy"] = json!(rng.pick(&["Always", "IfNotPresent", "Never"]));
    }
    if rng.chance(30) {
        let mut probe = json!({"httpGet": {"path": "/healthz", "port": rng.pick(&[json!(8080), json!("http")])}});
        if rng.chance(50) {
            probe["periodSeconds"] = json!(5);
        }
        c[rng.pick(&["livenessProbe", "readinessProbe", "startupProbe"])] = probe;
    }
    if rng.chance(25) {
        c["securityContext"] = json!({"runAsNonRoot": true, "allowPrivilegeEscalation": false});
    }
    if rng.chance(20) {
        c["env"] = json!([{"name": "A", "value": "1"}, {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]);
    }
    if rng.chance(15) {
        c["volumeMounts"] = json!([{"name": "data", "mountPath": "/data"}]);
    }
    c
}

/// A pod spec: the engine's varied sample pods, plus the fields defaulting touches.
fn pod_spec(rng: &mut Rng, name: &str) -> Value {
    let mut spec = sample::pod(rng, name)["spec"].clone();
    let containers = 1 + rng.below(2) as usize;
    spec["containers"] = Value::Array(
        (0..containers)
            .map(|i| container(rng, &format!("c{i}")))
            .collect(),
    );
    if rng.chance(20) {
        spec["initContainers"] = json!([container(rng, "init")]);
    }
    let mounts = spec["containers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c.get("volumeMounts").is_some());
    if mounts || rng.chance(30) {
        let volume = match rng.below(5) {
            0 => json!({"name": "data", "emptyDir": {}}),
            1 => json!({"name": "data", "emptyDir": {"sizeLimit": quantity(rng, true)}}),
            2 => json!({"name": "data", "hostPath": {"path": "/var/data"}}),
            3 => json!({"name": "data", "secret": {"secretName": "s"}}),
            _ => json!({"name": "data", "configMap": {"name": "c"}}),
        };
        spec["volumes"] = json!([volume]);
    }
    if rng.chance(20) {
        spec["restartPolicy"] = json!("OnFailure");
    }
    if rng.chance(15) {
        spec["terminationGracePeriodSeconds"] = json!(10);
    }
    if rng.chance(15) {
        spec["tolerations"] = json!([{"key": "dedicated", "operator": "Exists"}]);
    }
    spec
}

fn labels(rng: &mut Rng, app: &str) -> Value {
    let mut labels = json!({"app": app});
    if rng.chance(30) {
        labels["tier"] = json!(rng.pick(&["web", "db", "cache"]));
    }
    labels
}

fn template(rng: &mut Rng, app: &str, restart: Option<&str>) -> Value {
    let mut spec = pod_spec(rng, app);
    match restart {
        Some(policy) => spec["restartPolicy"] = json!(policy),
        None => {
            if let Some(map) = spec.as_object_mut() {
                map.remove("restartPolicy");
            }
        }
    }
    json!({"metadata": {"labels": labels(rng, app)}, "spec": spec})
}

/// One object of `kind`, named `name`.
fn object(rng: &mut Rng, kind: &str, name: &str) -> Value {
    let meta = |rng: &mut Rng| {
        let mut meta = json!({"name": name});
        if rng.chance(40) {
            meta["labels"] = labels(rng, name);
        }
        if rng.chance(20) {
            meta["annotations"] = json!({"team": "payments"});
        }
        meta
    };
    let selector = |app: &str| json!({"matchLabels": {"app": app}});
    match kind {
        "Pod" => {
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta(rng), "spec": pod_spec(rng, name)})
        }
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" => {
            let mut spec =
                json!({"selector": selector(name), "template": template(rng, name, None)});
            if kind != "DaemonSet" && rng.chance(50) {
                spec["replicas"] = json!(rng.below(5));
            }
            if kind == "StatefulSet" && rng.chance(50) {
                spec["serviceName"] = json!(name);
            }
            if kind == "Deployment" && rng.chance(30) {
                spec["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": rng.pick(&[json!(1), json!("50%")])}});
            }
            json!({"apiVersion": "apps/v1", "kind": kind, "metadata": meta(rng), "spec": spec})
        }
        "Job" => {
            let restart = rng.pick(&["Never", "OnFailure"]);
            let mut spec = json!({"template": template(rng, name, Some(restart))});
            if rng.chance(40) {
                spec["backoffLimit"] = json!(2);
            }
            if rng.chance(30) {
                spec["completions"] = json!(3);
                spec["parallelism"] = json!(2);
            }
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": meta(rng), "spec": spec})
        }
        "CronJob" => {
            let job = json!({"template": template(rng, name, Some("OnFailure"))});
            let mut spec = json!({"schedule": "*/5 * * * *", "jobTemplate": {"spec": job}});
            if rng.chance(30) {
                spec["concurrencyPolicy"] = json!("Forbid");
            }
            json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta(rng), "spec": spec})
        }
        "Service" => {
            let mut port = json!({"port": 80 + rng.below(3)});
            match rng.below(3) {
                0 => port["targetPort"] = json!(8080),
                1 => port["targetPort"] = json!("http"),
                _ => {}
            }
            if rng.chance(30) {
                port["name"] = json!("web");
            }
            let mut spec = json!({"selector": {"app": name}, "ports": [port]});
            if rng.chance(25) {
                spec["type"] = json!("NodePort");
            }
            json!({"apiVersion": "v1", "kind": "Service", "metadata": meta(rng), "spec": spec})
        }
        "ConfigMap" => {
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(rng), "data": {"key": "value"}})
        }
        "Secret" => {
            let mut secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": meta(rng)});
            if rng.chance(50) {
                secret["stringData"] = json!({"password": "hunter2"});
            } else {
                secret["data"] = json!({"password": "aHVudGVyMg=="});
            }
            if rng.chance(30) {
                secret["type"] = json!("kubernetes.io/basic-auth");
                secret["stringData"] = json!({"username": "u", "password": "p"});
            }
            secret
        }
        "ServiceAccount" => {
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(rng)})
        }
        "PersistentVolumeClaim" => {
            let storage = quantity(rng, true);
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta(rng),
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": storage}}}})
        }
        "Namespace" => json!({"apiVersion": "v1", "kind": "Namespace", "metadata": meta(rng)}),
        "NetworkPolicy" => {
            let mut spec = json!({"podSelector": selector(name)});
            if rng.chance(60) {
                spec["ingress"] =
                    json!([{"ports": [{"port": rng.pick(&[json!(443), json!("https")])}]}]);
            }
            if rng.chance(30) {
                spec["egress"] = json!([{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}]);
            }
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta(rng), "spec": spec})
        }
        "Ingress" => {
            let backend = json!({"service": {"name": "web", "port": {"number": 80}}});
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta(rng),
                "spec": {"rules": [{"host": "a.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}]}})
        }
        "Role" | "ClusterRole" => {
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta(rng),
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]})
        }
        "RoleBinding" | "ClusterRoleBinding" => {
            let mut subject = json!({"kind": "User", "name": "alice"});
            if rng.chance(50) {
                subject =
                    json!({"kind": "ServiceAccount", "name": "default", "namespace": "default"});
            }
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta(rng),
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
                "subjects": [subject]})
        }
        "PodDisruptionBudget" => {
            let mut spec = json!({"selector": selector(name)});
            if rng.chance(50) {
                spec["minAvailable"] = rng.pick(&[json!(1), json!("50%")]);
            }
            json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": meta(rng), "spec": spec})
        }
        other => panic!("no generator for {other}"),
    }
}

/// Leave out what the cluster itself decides (see the view's documentation): system metadata, a
/// Service's allocated addresses, and the UID in a Job's generated selector and labels (the view
/// writes a placeholder there; every place that holds the UID is compared with it).
fn without_cluster_choices(kind: &str, object: &mut Value) {
    let uid = object["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if !uid.is_empty() {
        replace_text(object, &uid, palisade_engine::apiview::JOB_UID_PLACEHOLDER);
    }
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in [
            "uid",
            "creationTimestamp",
            "resourceVersion",
            "managedFields",
        ] {
            meta.remove(key);
        }
    }
    if kind == "Service" {
        if let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) {
            for key in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
                spec.remove(key);
            }
            if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                for port in ports {
                    if let Some(port) = port.as_object_mut() {
                        port.remove("nodePort");
                    }
                }
            }
        }
    }
}

/// Replace every string equal to `from` by `to`.
fn replace_text(value: &mut Value, from: &str, to: &str) {
    match value {
        Value::String(text) if text == from => *text = to.to_owned(),
        Value::Array(items) => items.iter_mut().for_each(|v| replace_text(v, from, to)),
        Value::Object(map) => map.values_mut().for_each(|v| replace_text(v, from, to)),
        _ => {}
    }
}

/// Every path where `a` and `b` differ, with both values.
fn differences(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for key in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                let (left, right) = (
                    x.get(key).unwrap_or(&Value::Null),
                    y.get(key).unwrap_or(&Value::Null),
                );
                differences(&format!("{path}.{key}"), left, right, out);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (left, right)) in x.iter().zip(y).enumerate() {
                differences(&format!("{path}[{i}]"), left, right, out);
            }
        }
        _ if a == b => {}
        // A dry run answers with the object as it would be stored: written in the storage's
        // protobuf and read back, which makes an empty list a missing one. Admission (and so the
        // view) still has the empty list.
        (Value::Null, Value::Array(items)) if items.is_empty() => {}
        _ => out.push(format!("{path}: apiserver {a}, view {b}")),
    }
}

/// What the apiserver made of `object` on a dry-run create: the object, or its refusal.
async fn dry_run(client: &Client, path: &str, object: &Value) -> Result<Result<Value, String>> {
    let request = http::Request::post(format!("{path}?dryRun=All"))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(object)?)?;
    let reply = palisade_testbed::send_with_warnings(client, request).await?;
    Ok(if reply.status.is_success() {
        Ok(serde_json::from_slice(&reply.body).context("JSON answer")?)
    } else {
        Err(format!("{} {}", reply.status.as_u16(), reply.message()))
    })
}

const KINDS: &[&str] = &[
    "Pod",
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "CronJob",
    "Service",
    "ConfigMap",
    "Secret",
    "ServiceAccount",
    "PersistentVolumeClaim",
    "Namespace",
    "NetworkPolicy",
    "Ingress",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "PodDisruptionBudget",
];

#[tokio::test(flavor = "multi_thread")]
async fn the_admission_view_is_what_the_apiserver_admits() {
    let tb = testbed();
    let cluster = tb.clusters[0].clone();
    let client = cluster.admin_client().await.unwrap();
    let namespace = unique_name("view");
    let created = dry_run_free_namespace(&client, &namespace).await;
    created.unwrap();

    let mut rng = Rng::new(SEED);
    let mut disagreements: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut compared = 0usize;
    for kind in KINDS {
        for index in 0..PER_KIND {
            let name = format!("{}-{index:03}", kind.to_lowercase());
            let mut sent = object(&mut rng, kind, &name);
            if !matches!(*kind, "Namespace" | "ClusterRole" | "ClusterRoleBinding") {
                sent["metadata"]["namespace"] = json!(namespace);
            }
            let answer = dry_run(&client, &collection(kind, &namespace), &sent)
                .await
                .unwrap();
            let view = admission_view(&sent);
            compared += 1;
            let found = match (answer, view) {
                (Ok(mut admitted), Ok(view)) => {
                    let mut ours = view.object;
                    without_cluster_choices(kind, &mut admitted);
                    without_cluster_choices(kind, &mut ours);
                    let mut out = Vec::new();
                    differences("", &admitted, &ours, &mut out);
                    out
                }
                (Err(refusal), Err(ViewError::Invalid(_))) if refusal.starts_with("422") => {
                    Vec::new()
                }
                (Err(refusal), Ok(_)) => vec![format!(
                    "the apiserver refused it ({refusal}), the view did not"
                )],
                (Ok(_), Err(error)) => vec![format!(
                    "the view refused it ({error}), the apiserver did not"
                )],
                (Err(refusal), Err(error)) => vec![format!(
                    "both refused, differently: apiserver {refusal}; view {error}"
                )],
            };
            if !found.is_empty() {
                disagreements.entry(kind).or_default().push(format!(
                    "seed {SEED:#x} {name}: sent {sent}\n      {}",
                    found.join("\n      ")
                ));
            }
        }
    }
    let _ = delete_namespace(&client, &namespace).await;
    let mut report = String::new();
    let mut failed = 0;
    for (kind, found) in &disagreements {
        failed += found.len();
        report.push_str(&format!(
            "\n== {kind}: {} of {PER_KIND} disagree\n",
            found.len()
        ));
        for line in found.iter().take(3) {
            report.push_str(&format!("  {line}\n"));
        }
    }
    report.push_str("\n== every kind of difference, with how many objects show it\n");
    for (class, count) in classes(&disagreements) {
        report.push_str(&format!("  {count:4}  {class}\n"));
    }
    eprintln!(
        "admission view: {compared} objects of {} kinds compared, {failed} disagree",
        KINDS.len()
    );
    assert!(disagreements.is_empty(), "{report}");
}

/// The differences of every object, each written without its object's indexes and values (the
/// path and which side has what), counted once per object.
fn classes(disagreements: &BTreeMap<&str, Vec<String>>) -> BTreeMap<String, usize> {
    let mut classes = BTreeMap::new();
    for (kind, found) in disagreements {
        for object in found {
            let mut seen = std::collections::BTreeSet::new();
            for line in object.lines().skip(1) {
                let line = line.trim();
                let class = match line.split_once(": apiserver ") {
                    Some((path, values)) => {
                        let path: String = path
                            .split('[')
                            .map(|part| part.split_once(']').map_or(part, |(_, rest)| rest))
                            .collect::<Vec<_>>()
                            .join("[]");
                        let (ours, theirs) = values.split_once(", view ").unwrap_or((values, ""));
                        let shape = |v: &str| match v {
                            "null" => "absent",
                            _ => "present",
                        };
                        format!(
                            "{kind} {path}: apiserver {}, view {}",
                            shape(ours),
                            shape(theirs)
                        )
                    }
                    None => format!("{kind} {}", line.chars().take(160).collect::<String>()),
                };
                seen.insert(class);
            }
            for class in seen {
                *classes.entry(class).or_insert(0) += 1;
            }
        }
    }
    classes
}

/// A namespace for the dry runs (created for real: dry runs need it to exist).
async fn dry_run_free_namespace(client: &Client, name: &str) -> Result<()> {
    let request = http::Request::post("/api/v1/namespaces")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
        )?)?;
    let reply = palisade_testbed::send_with_warnings(client, request).await?;
    anyhow::ensure!(
        reply.status.is_success(),
        "creating namespace {name}: {}",
        reply.message()
    );
    Ok(())
}
