//! Differential test of the Kyverno engine against the real Kyverno beside a test-bed cluster.
//!
//! The Kyverno policy library's Pod Security policies, both kinds (`pod-security/{baseline,
//! restricted}` ClusterPolicies and `pod-security-vpol/{baseline,restricted}` ValidatingPolicies,
//! read from `$PALISADE_ORACLES/kyverno-policies`), are renamed by kind (`cp-…`, `vp-…`), scoped
//! to a namespace of this run per kind (Kyverno answers the two kinds from two webhooks, and the
//! apiserver reports only the first that denies), rendered in `enforce` exactly as Palisade applies
//! them, and applied. Every object is sent to both namespaces.
//! Seeded objects from `palisade_engine::sample` (Pods, and every pod controller, which Kyverno
//! checks through its autogen rules) are sent with a server-side dry-run create, and for each the
//! engine (a `Bundle` of the same rendered manifests, judging the object's admission view, as
//! `palisade check` does) must agree with Kyverno: admitted or denied,
//! and, when denied, by exactly the policies Kyverno names.
//!
//! The seed is printed; set `PALISADE_SAMPLE_SEED` to replay one. Needs a cluster with Kyverno
//! (`e2e/clusters up 2 --kyverno 2 && eval "$(e2e/clusters env)"`) and `PALISADE_ORACLES`;
//! without either the test fails and says so. Everything created is deleted again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{ensure, Context as _, Result};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, DynamicObject, PostParams};
use kube::Client;
use palisade_engine::bundle::{Bundle, Context};
use palisade_engine::render::{render, to_yaml};
use palisade_engine::{EngineKind, Mode};
use palisade_testbed::{delete_namespace, unique_name, Cluster};
use serde_json::{json, Value};

const PODS: usize = 120;
const WORKLOADS: usize = 80;
const DEFAULT_SEED: u64 = 0x4b59_0001;
/// Where Kyverno's resource webhooks answer from (`validate.kyverno.svc-fail`,
/// `vpol.validate.kyverno.svc-fail`, …).
const KYVERNO_MARK: &str = "kyverno.svc";
/// The library directories compared, and the prefix their policies are renamed with.
const SUITES: &[(&str, &str)] = &[
    ("pod-security/baseline", "cp"),
    ("pod-security/restricted", "cp"),
    ("pod-security-vpol/baseline", "vp"),
    ("pod-security-vpol/restricted", "vp"),
];

fn library_root() -> PathBuf {
    let root = std::env::var("PALISADE_ORACLES").unwrap_or_else(|_| {
        panic!(
            "\n\n*** PALISADE_ORACLES IS NOT SET ***\nthe Kyverno differential reads the Kyverno \
             policy library from $PALISADE_ORACLES/kyverno-policies (scripts/test sets it)\n\n"
        )
    });
    PathBuf::from(root).join("kyverno-policies")
}

/// A library policy made this run's: renamed with `prefix`, matching only `namespace`.
fn scoped(mut policy: Value, prefix: &str, namespace: &str) -> Value {
    let name = policy["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    policy["metadata"]["name"] = json!(format!("{prefix}-{name}"));
    match policy["kind"].as_str() {
        Some("ValidatingPolicy") => {
            policy["spec"]["matchConstraints"]["namespaceSelector"] =
                json!({ "matchLabels": { "kubernetes.io/metadata.name": namespace } });
        }
        _ => {
            for rule in policy["spec"]["rules"].as_array_mut().into_iter().flatten() {
                for key in ["any", "all"] {
                    let filters = rule["match"].get_mut(key).and_then(Value::as_array_mut);
                    for filter in filters.into_iter().flatten() {
                        if let Some(resources) = filter.get_mut("resources") {
                            resources["namespaces"] = json!([namespace]);
                        }
                    }
                }
            }
        }
    }
    policy
}

/// Every compared policy, rendered in `enforce` as Palisade applies it: ClusterPolicies matching
/// `cp_ns`, ValidatingPolicies `vp_ns`.
fn manifests(cp_ns: &str, vp_ns: &str) -> Result<Vec<Value>> {
    let root = library_root();
    let mut out = Vec::new();
    for (suite, prefix) in SUITES {
        let dir = root.join(suite);
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        entries.sort();
        for entry in entries {
            let name = entry.file_name().unwrap().to_string_lossy().into_owned();
            let file = entry.join(format!("{name}.yaml"));
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let policy: Value = serde_yaml_ng::from_str(&text)
                .with_context(|| format!("parsing {}", file.display()))?;
            let namespace = if *prefix == "cp" { cp_ns } else { vp_ns };
            let source = serde_yaml_ng::to_string(&scoped(policy, prefix, namespace))?;
            let rendered = render(&file.display().to_string(), &source, Mode::Enforce)
                .map_err(|e| anyhow::anyhow!("rendering {}: {e:?}", file.display()))?;
            out.extend(rendered.into_iter().map(|m| m.object));
        }
    }
    ensure!(
        out.len() >= 30,
        "only {} policies found under {}",
        out.len(),
        root.display()
    );
    Ok(out)
}

/// The names among `policies` that `message` names (a name followed by something that cannot
/// continue it, so `cp-a` is not found in `cp-a-strict`).
fn named_in(message: &str, policies: &BTreeSet<String>) -> BTreeSet<String> {
    policies
        .iter()
        .filter(|p| {
            message.match_indices(p.as_str()).any(|(i, _)| {
                let after = message[i + p.len()..].chars().next();
                let before = message[..i].chars().next_back();
                !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
            })
        })
        .cloned()
        .collect()
}

async fn prove(cluster: Cluster) -> Result<()> {
    let client = cluster.admin_client().await?;
    let namespaces = [unique_name("kydiff-cp"), unique_name("kydiff-vp")];
    for name in &namespaces {
        let ns: Namespace = serde_json::from_value(json!({
            "metadata": { "name": name, "labels": { TEST_LABEL: "kyverno-differential" } }
        }))?;
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .with_context(|| format!("creating namespace {name}"))?;
    }
    let policies = manifests(&namespaces[0], &namespaces[1])?;
    let mut applied = Vec::new();
    let result = async {
        for policy in &policies {
            let resource = resource_of(&client, policy).await?;
            let api = Api::<DynamicObject>::all_with(client.clone(), &resource);
            let name = policy["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            api.create(
                &PostParams::default(),
                &serde_json::from_value(policy.clone())?,
            )
            .await
            .with_context(|| format!("creating {} {name}", resource.kind))?;
            applied.push((api, name));
        }
        compare(&client, &namespaces, &policies).await
    }
    .await;
    for (api, name) in &applied {
        let _ = api.delete(name, &DeleteParams::default()).await;
    }
    for name in &namespaces {
        let _ = delete_namespace(&client, name).await;
    }
    let i = cluster.index;
    result.map_err(|e| anyhow::anyhow!("{e:#}{}", log_tail(&format!("TESTBED_KYVERNO_LOG_{i}"))))
}

async fn compare(client: &Client, namespaces: &[String], policies: &[Value]) -> Result<()> {
    let mut bundle = Bundle::default();
    let manifests: Vec<palisade_engine::render::Manifest> = policies
        .iter()
        .map(|object| palisade_engine::render::Manifest {
            engine: EngineKind::Kyverno,
            kind: object["kind"].as_str().unwrap_or_default().to_owned(),
            name: object["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            object: object.clone(),
            note: None,
        })
        .collect();
    bundle
        .add_source("kyverno-differential.yaml", &to_yaml(&manifests))
        .map_err(|e| anyhow::anyhow!("the engine refused the applied policies: {e:?}"))?;
    let names: BTreeSet<String> = policies
        .iter()
        .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_owned))
        .collect();
    let context = Context {
        namespaces: namespaces
            .iter()
            .map(|name| {
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {
                    "name": name,
                    "labels": { "kubernetes.io/metadata.name": name, TEST_LABEL: "kyverno-differential" }
                }})
            })
            .collect(),
        ..Context::default()
    };

    // Every policy in force: a Pod that breaks nearly all of them is denied by each. Its hostPath
    // volume makes the wait cover the volume policies too: without it, the comparison could start
    // before Kyverno enforced restrict-volume-types (seen once, on a loaded machine).
    let mut probe: Value = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "probe"},
        "spec": {"hostPID": true, "hostNetwork": true, "containers": [{"name": "c", "image": "busybox",
            "securityContext": {"privileged": true, "capabilities": {"add": ["SYS_ADMIN"]}}}],
            "volumes": [{"name": "host", "hostPath": {"path": "/var/lib"}}]}});
    let pods = resource_of(client, &probe).await?;
    let engine_names = |object: &Value| -> Result<BTreeSet<String>> {
        Ok(
            webhook_denials(&bundle, &context, object, EngineKind::Kyverno)?
                .iter()
                .map(|f| f.policy.split('/').next().unwrap_or_default().to_owned())
                .collect(),
        )
    };
    for namespace in namespaces {
        probe["metadata"]["namespace"] = json!(namespace);
        let expected = engine_names(&probe)?;
        ensure!(
            !expected.is_empty(),
            "the probe breaks no policy in {namespace}"
        );
        let probe = &probe;
        let what = format!("every policy in force in {namespace}");
        eventually(&what, Duration::from_secs(90), || async {
            match dry_run_create(client, &pods, probe).await {
                Ok(Some(message)) if named_in(&message, &names) == expected => Ok(Some(())),
                Ok(Some(message)) => Err(format!(
                    "named {:?}, the engine {expected:?}",
                    named_in(&message, &names)
                )),
                Ok(None) => Err("admitted".into()),
                Err(e) => Err(e.to_string()),
            }
        })
        .await?;
    }

    let seed = seed_from("PALISADE_SAMPLE_SEED", DEFAULT_SEED);
    eprintln!("kyverno differential: seed {seed:#x} (PALISADE_SAMPLE_SEED), {WORKLOADS} workloads + {PODS} pods, {} policies", names.len());
    let objects = sample_objects(seed, WORKLOADS, PODS);

    let mut compared = Compared::default();
    let sent = objects
        .iter()
        .flat_map(|o| namespaces.iter().map(move |ns| (o.clone(), ns)));
    for (mut object, namespace) in sent {
        object["metadata"]["namespace"] = json!(namespace);
        let ours = engine_names(&object)?;
        let resource = resource_of(client, &object).await?;
        let theirs = match dry_run_create(client, &resource, &object).await? {
            None => BTreeSet::new(),
            Some(message) if message.contains(KYVERNO_MARK) => named_in(&message, &names),
            Some(message) => {
                compared.refused(&message, &object);
                continue;
            }
        };
        compared.judge(&ours, &theirs, ours.is_empty(), || {
            format!(
                "{} {namespace}/{}: Kyverno denies with {theirs:?}, the engine with {ours:?}\n{object:#}",
                object["kind"].as_str().unwrap_or_default(),
                object["metadata"]["name"].as_str().unwrap_or_default()
            )
        });
    }
    compared.finish("kyverno", seed, "", "Kyverno")?;
    let Compared {
        admitted, denied, ..
    } = compared;
    ensure!(
        admitted > 0 && denied > 0,
        "the objects are not varied enough: {admitted} admitted, {denied} denied"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_kyverno_engine_agrees_with_kyverno() {
    on_each_cluster_with(Beside::Kyverno, prove).await;
}

#[test]
fn a_policy_name_is_found_whole() {
    let names: BTreeSet<String> = ["cp-a", "cp-a-strict", "vp-a"].map(String::from).into();
    let found = named_in(
        "blocked:\n\ncp-a-strict:\n  rule: no\nPolicy vp-a failed",
        &names,
    );
    assert_eq!(found, ["cp-a-strict", "vp-a"].map(String::from).into());
}
