//! Differential test of the Gatekeeper engine against the real Gatekeeper beside a test-bed
//! cluster.
//!
//! Every gatekeeper-library template (from `$PALISADE_ORACLES/gatekeeper-library/library`) whose
//! sample constraints match Pods or pod controllers is applied with those constraints, each
//! renamed (`g<n>-…`, so no two share a name) and matching only a namespace of this run, rendered in
//! `enforce` exactly as Palisade applies them. Seeded objects from `palisade_engine::sample` are
//! sent with a server-side dry-run create, and for each the engine (a `Bundle` of the same rendered
//! manifests, judging the object's admission view, as `palisade check` does) must agree with
//! Gatekeeper: admitted or denied, by exactly the constraints Gatekeeper names, with its messages.
//!
//! The seed is printed; set `PALISADE_SAMPLE_SEED` to replay one. Needs a cluster with Gatekeeper
//! (`e2e/clusters up 1 --gatekeeper 1 && eval "$(e2e/clusters env)"`) and `PALISADE_ORACLES`;
//! without either the test fails and says so. Everything created is deleted again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, ensure, Context as _, Result};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, PostParams};
use kube::Client;
use palisade_engine::bundle::{Bundle, Context};
use palisade_engine::render::{render, to_yaml, Manifest};
use palisade_engine::{EngineKind, Mode};
use palisade_testbed::{delete_namespace, unique_name, Cluster};
use serde_json::{json, Value};

const PODS: usize = 150;
const WORKLOADS: usize = 60;
const DEFAULT_SEED: u64 = 0x6a7e_0001;
/// The kinds the sample objects have; a template is compared when a sample constraint matches one.
const SAMPLE_KINDS: &[&str] = &[
    "Pod",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
    "CronJob",
    "ReplicationController",
];
/// Where Gatekeeper's denials start, after the apiserver's words.
const DENIED: &str = "denied the request: ";

fn library_root() -> PathBuf {
    let root = std::env::var("PALISADE_ORACLES").unwrap_or_else(|_| {
        panic!(
            "\n\n*** PALISADE_ORACLES IS NOT SET ***\nthe Gatekeeper differential reads the \
             gatekeeper-library from $PALISADE_ORACLES/gatekeeper-library (scripts/test sets it)\n\n"
        )
    });
    PathBuf::from(root).join("gatekeeper-library/library")
}

fn yaml(path: &std::path::Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_yaml_ng::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn files_under(dir: &std::path::Path, name: &str, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, name, out);
        } else if path.file_name().is_some_and(|n| n == name) {
            out.push(path);
        }
    }
}

/// Whether a constraint's `match.kinds` names a kind the sample objects have.
fn matches_samples(constraint: &Value) -> bool {
    constraint["spec"]["match"]["kinds"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|k| k["kinds"].as_array().cloned().unwrap_or_default())
        .any(|k| k.as_str().is_some_and(|k| SAMPLE_KINDS.contains(&k)))
}

/// Every compared template with its sample constraints (renamed, matching only `namespace`),
/// rendered in `enforce` as Palisade applies them: templates first, then constraints.
fn manifests(namespace: &str) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut templates = Vec::new();
    files_under(&library_root(), "template.yaml", &mut templates);
    templates.sort();
    let (mut kept_templates, mut kept_constraints) = (Vec::new(), Vec::new());
    let mut n = 0;
    for path in templates {
        let dir = path.parent().unwrap();
        let mut constraint_files = Vec::new();
        files_under(
            &dir.join("samples"),
            "constraint.yaml",
            &mut constraint_files,
        );
        constraint_files.sort();
        let mut constraints = Vec::new();
        for file in constraint_files {
            let mut constraint = yaml(&file)?;
            if !matches_samples(&constraint) {
                continue;
            }
            n += 1;
            let name = constraint["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            constraint["metadata"]["name"] = json!(format!("g{n}-{name}"));
            let spec_match = &mut constraint["spec"]["match"];
            spec_match["namespaces"] = json!([namespace]);
            if let Some(m) = spec_match.as_object_mut() {
                m.remove("namespaceSelector");
                m.remove("excludedNamespaces");
            }
            constraints.push(constraint);
        }
        if constraints.is_empty() {
            continue;
        }
        let mut docs = vec![yaml(&path)?];
        docs.extend(constraints);
        let source = docs
            .iter()
            .map(serde_yaml_ng::to_string)
            .collect::<Result<Vec<_>, _>>()?
            .join("---\n");
        let rendered = render(&path.display().to_string(), &source, Mode::Enforce)
            .map_err(|e| anyhow!("rendering {}: {e:?}", path.display()))?;
        for manifest in rendered {
            if manifest.kind == "ConstraintTemplate" {
                kept_templates.push(manifest.object);
            } else {
                kept_constraints.push(manifest.object);
            }
        }
    }
    ensure!(
        kept_templates.len() >= 20,
        "only {} templates found under {}",
        kept_templates.len(),
        library_root().display()
    );
    Ok((kept_templates, kept_constraints))
}

/// Each denial in Gatekeeper's answer, `[constraint] message`, as (constraint, message) in order
/// (a constraint whose template fails several validations is named once per failure).
type Denials = BTreeSet<(String, String)>;

fn denials(message: &str) -> Denials {
    let Some((_, listed)) = message.split_once(DENIED) else {
        return Denials::new();
    };
    listed
        .split("\n[")
        .map(|p| p.trim_start_matches('['))
        .filter_map(|part| part.split_once("] "))
        .map(|(name, words)| (name.to_owned(), words.trim_end().to_owned()))
        .collect()
}

fn name_of(object: &Value) -> String {
    object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn prove(cluster: Cluster) -> Result<()> {
    let client = cluster.admin_client().await?;
    let namespace = unique_name("gkdiff");
    let ns: Namespace = serde_json::from_value(json!({
        "metadata": { "name": namespace, "labels": { TEST_LABEL: "gatekeeper-differential" } }
    }))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .context("creating the namespace")?;
    let (templates, constraints) = manifests(&namespace)?;
    let result = run(&client, &namespace, &templates, &constraints).await;
    // Whatever happened, leave nothing behind: constraints, templates, the CRDs Gatekeeper made
    // for them (no garbage collector runs here), the namespace.
    for object in constraints.iter().chain(&templates) {
        if let Ok(resource) = resource_of(&client, object).await {
            let _ = Api::<DynamicObject>::all_with(client.clone(), &resource)
                .delete(&name_of(object), &DeleteParams::default())
                .await;
        }
    }
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for template in &templates {
        let kind = template["spec"]["crd"]["spec"]["names"]["kind"]
            .as_str()
            .unwrap_or_default();
        let _ = crds
            .delete(
                &format!("{}.constraints.gatekeeper.sh", kind.to_lowercase()),
                &DeleteParams::default(),
            )
            .await;
    }
    let _ = delete_namespace(&client, &namespace).await;
    let i = cluster.index;
    result.map_err(|e| anyhow!("{e:#}{}", log_tail(&format!("TESTBED_GATEKEEPER_LOG_{i}"))))
}

/// True once Gatekeeper's status says every one of its processes enforces `object`.
fn enforced(object: &DynamicObject) -> bool {
    object.data["status"]["byPod"]
        .as_array()
        .is_some_and(|pods| !pods.is_empty() && pods.iter().all(|p| p["enforced"] == json!(true)))
}

async fn apply(client: &Client, templates: &[Value], constraints: &[Value]) -> Result<()> {
    let pp = PostParams::default();
    let mut template_apis = Vec::new();
    for template in templates {
        let resource = resource_of(client, template).await?;
        let api = Api::<DynamicObject>::all_with(client.clone(), &resource);
        let _ = api
            .delete(&name_of(template), &DeleteParams::default())
            .await;
        api.create(&pp, &serde_json::from_value(template.clone())?)
            .await
            .with_context(|| format!("creating template {}", name_of(template)))?;
        template_apis.push((api, name_of(template)));
    }
    for (api, name) in &template_apis {
        eventually(
            &format!("template {name} created by Gatekeeper"),
            Duration::from_secs(120),
            || async {
                let t = api.get(name).await.map_err(|e| e.to_string())?;
                if t.data["status"]["created"] == json!(true) {
                    Ok(Some(()))
                } else {
                    Err(format!("status {}", t.data["status"]))
                }
            },
        )
        .await?;
    }
    let mut constraint_apis = Vec::new();
    for constraint in constraints {
        // The apiserver may take a moment to serve a kind whose CRD Gatekeeper just made.
        let what = format!("constraint kind {} served", constraint["kind"]);
        let resource = eventually(&what, Duration::from_secs(60), || async {
            resource_of(client, constraint)
                .await
                .map(Some)
                .map_err(|e| format!("{e:#}"))
        })
        .await?;
        let api = Api::<DynamicObject>::all_with(client.clone(), &resource);
        api.create(&pp, &serde_json::from_value(constraint.clone())?)
            .await
            .with_context(|| format!("creating constraint {}", name_of(constraint)))?;
        constraint_apis.push((api, name_of(constraint)));
    }
    for (api, name) in &constraint_apis {
        eventually(
            &format!("constraint {name} enforced"),
            Duration::from_secs(120),
            || async {
                let c = api.get(name).await.map_err(|e| e.to_string())?;
                if enforced(&c) {
                    Ok(Some(()))
                } else {
                    Err(format!("status {}", c.data["status"]))
                }
            },
        )
        .await?;
    }
    Ok(())
}

async fn run(
    client: &Client,
    namespace: &str,
    templates: &[Value],
    constraints: &[Value],
) -> Result<()> {
    apply(client, templates, constraints).await?;
    let manifests: Vec<Manifest> = templates
        .iter()
        .chain(constraints)
        .map(|object| Manifest {
            engine: EngineKind::Gatekeeper,
            kind: object["kind"].as_str().unwrap_or_default().to_owned(),
            name: name_of(object),
            object: object.clone(),
            note: None,
        })
        .collect();
    let mut bundle = Bundle::default();
    bundle
        .add_source("gatekeeper-differential.yaml", &to_yaml(&manifests))
        .map_err(|e| anyhow!("the engine refused the applied templates: {e:?}"))?;
    let context = Context::default();
    let engine = |object: &Value| -> Result<Denials> {
        Ok(
            webhook_denials(&bundle, &context, object, EngineKind::Gatekeeper)?
                .iter()
                .flat_map(|f| denials(&format!("{DENIED}{}", f.message)))
                .collect(),
        )
    };

    let seed = seed_from("PALISADE_SAMPLE_SEED", DEFAULT_SEED);
    eprintln!(
        "gatekeeper differential: seed {seed:#x} (PALISADE_SAMPLE_SEED), {WORKLOADS} workloads + \
         {PODS} pods, {} templates, {} constraints",
        templates.len(),
        constraints.len()
    );
    let objects = sample_objects(seed, WORKLOADS, PODS);

    let mut compared = Compared::default();
    let mut named: BTreeMap<String, usize> = BTreeMap::new();
    for mut object in objects {
        object["metadata"]["namespace"] = json!(namespace);
        let ours = engine(&object)?;
        let resource = resource_of(client, &object).await?;
        let theirs = match dry_run_create(client, &resource, &object).await? {
            None => Denials::new(),
            Some(message) if message.contains("validation.gatekeeper.sh") => denials(&message),
            Some(message) => {
                compared.refused(&message, &object);
                continue;
            }
        };
        let ours_names: BTreeSet<&String> = ours.iter().map(|(name, _)| name).collect();
        let agree = compared.judge(&ours, &theirs, ours.is_empty(), || {
            let theirs_names: BTreeSet<&String> = theirs.iter().map(|(name, _)| name).collect();
            format!(
                "{} {}: {}\n  Gatekeeper: {theirs:#?}\n  engine:     {ours:#?}\n{object:#}",
                object["kind"].as_str().unwrap_or_default(),
                name_of(&object),
                if ours_names == theirs_names {
                    "same constraints, other words"
                } else {
                    "other constraints"
                },
            )
        });
        if agree {
            for name in ours_names {
                *named.entry(name.clone()).or_default() += 1;
            }
        }
    }
    compared.finish(
        "gatekeeper",
        seed,
        &format!("; denials by constraint: {named:?}"),
        "Gatekeeper",
    )?;
    let Compared {
        admitted, denied, ..
    } = compared;
    ensure!(
        admitted > 0 && denied > 0 && named.len() >= 10,
        "the objects are not varied enough: {admitted} admitted, {denied} denied, {} constraints denied",
        named.len()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gatekeeper_engine_agrees_with_gatekeeper() {
    on_each_cluster_with(Beside::Gatekeeper, prove).await;
}

#[test]
fn gatekeepers_denials_are_split_by_constraint() {
    let message = "admission webhook \"validation.gatekeeper.sh\" denied the request: [g1-a] no \
                   root\n[g2-b] image `x` has no [digest]";
    let found: Vec<(String, String)> = denials(message).into_iter().collect();
    assert_eq!(
        found,
        [
            ("g1-a".to_owned(), "no root".to_owned()),
            ("g2-b".to_owned(), "image `x` has no [digest]".to_owned())
        ]
    );
}
