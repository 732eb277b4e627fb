//! Proofs that the test bed runs a real Gatekeeper that enforces: the gatekeeper-library
//! privileged-containers ConstraintTemplate, applied as published, with constraints in `deny`,
//! `warn` and `dryrun`, on every cluster that `e2e/clusters up --gatekeeper LIST` gave a
//! Gatekeeper (`TESTBED_GATEKEEPER_CLUSTERS`).
//!
//! Needs the clusters (`e2e/clusters up 1 --gatekeeper 1 && eval "$(e2e/clusters env)"`) and
//! the upstream library (`PALISADE_ORACLES`); without either the test fails and says so.
//! Each run gives the template a kind of its own (the library's kind plus a random suffix), and
//! each constraint matches only a namespace of its own, so nothing else on the cluster is judged.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, ensure, Context, Result};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, PostParams,
};
use kube::Client;
use palisade_testbed::{delete_namespace, unique_name, Cluster};
use serde_json::{json, Value};

/// The library entry, under `$PALISADE_ORACLES`.
const TEMPLATE: &str =
    "gatekeeper-library/library/pod-security-policy/privileged-containers/template.yaml";
/// How long Gatekeeper may take to pick up a template, a constraint or a deletion.
const GATEKEEPER: Duration = Duration::from_secs(60);
/// How long audit may take to report (it runs every 5 s in the test bed).
const AUDIT: Duration = Duration::from_secs(90);
/// The container the privileged Pods run, named in Gatekeeper's messages.
const BAD_CONTAINER: &str = "escalator";
/// The words both of the template's engines (CEL and Rego) start their message with.
const MESSAGE: &str = "Privileged container is not allowed";

fn template_path() -> PathBuf {
    let root = std::env::var("PALISADE_ORACLES").unwrap_or_else(|_| {
        panic!(
            "\n\n*** PALISADE_ORACLES IS NOT SET ***\nthe Gatekeeper proof applies the \
             gatekeeper-library template from $PALISADE_ORACLES/{TEMPLATE}; point it at the \
             shared oracles directory (scripts/test finds it by itself)\n\n"
        )
    });
    PathBuf::from(root).join(TEMPLATE)
}

/// The clusters that run Gatekeeper, or a loud failure saying how to start one.
fn gatekeeper_clusters() -> Vec<Cluster> {
    let clusters: Vec<Cluster> = testbed()
        .clusters
        .into_iter()
        .filter(|c| c.gatekeeper)
        .collect();
    assert!(
        !clusters.is_empty(),
        "\n\n*** NO GATEKEEPER IN THE TEST BED ***\nTESTBED_GATEKEEPER_CLUSTERS is {:?}: start \
         the clusters with Gatekeeper beside one of them, `e2e/clusters up 1 --gatekeeper 1`, \
         then `eval \"$(e2e/clusters env)\"` (see e2e/README.md)\n\n",
        std::env::var("TESTBED_GATEKEEPER_CLUSTERS").unwrap_or_default()
    );
    clusters
}

/// A Pod of this proof; a privileged one's container is [`BAD_CONTAINER`].
fn pod(name: &str, privileged: bool) -> Pod {
    let container = if privileged { BAD_CONTAINER } else { "app" };
    proof_pod("gatekeeper", name, container, privileged)
}

fn constraint_resource(kind: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("constraints.gatekeeper.sh", "v1beta1", kind),
        &kind.to_lowercase(),
    )
}

fn template_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("templates.gatekeeper.sh", "v1", "ConstraintTemplate"),
        "constrainttemplates",
    )
}

/// The library template as published, under a kind (and so a name) of this run's own.
fn template(kind: &str) -> Result<DynamicObject> {
    let path = template_path();
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading the gatekeeper-library template {}", path.display()))?;
    let mut doc: Value = serde_yaml_ng::from_str(&text).context("parsing the template")?;
    ensure!(
        doc.pointer("/spec/crd/spec/names/kind") == Some(&json!("K8sPSPPrivilegedContainer")),
        "{} no longer defines K8sPSPPrivilegedContainer",
        path.display()
    );
    doc["metadata"]["name"] = json!(kind.to_lowercase());
    doc["spec"]["crd"]["spec"]["names"]["kind"] = json!(kind);
    Ok(serde_json::from_value(doc)?)
}

fn constraint(kind: &str, name: &str, action: &str, namespace: &str) -> Result<DynamicObject> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "constraints.gatekeeper.sh/v1beta1",
        "kind": kind,
        "metadata": { "name": name, "labels": { TEST_LABEL: "gatekeeper" } },
        "spec": {
            "enforcementAction": action,
            "match": {
                "kinds": [{ "apiGroups": [""], "kinds": ["Pod"] }],
                "namespaces": [namespace]
            }
        }
    }))?)
}

/// True once Gatekeeper's status says every one of its processes enforces `obj`.
fn enforced(obj: &DynamicObject) -> bool {
    obj.data
        .pointer("/status/byPod")
        .and_then(Value::as_array)
        .is_some_and(|pods| {
            !pods.is_empty()
                && pods
                    .iter()
                    .all(|p| p.get("enforced").and_then(Value::as_bool) == Some(true))
        })
}

struct Names {
    kind: String,
    deny_ns: String,
    warn_ns: String,
    audit_ns: String,
}

async fn prove(cluster: Cluster) -> Result<()> {
    let client = cluster.admin_client().await?;
    // A kind is a CamelCase word: the library's, then ten hex digits in capitals.
    let suffix = unique_name("x")[2..].to_uppercase();
    let names = Names {
        kind: format!("K8sPSPPrivilegedContainer{suffix}"),
        deny_ns: unique_name("gk-deny"),
        warn_ns: unique_name("gk-warn"),
        audit_ns: unique_name("gk-audit"),
    };
    for ns in [&names.deny_ns, &names.warn_ns, &names.audit_ns] {
        create_namespace(&client, ns, json!({ TEST_LABEL: "gatekeeper" })).await?;
    }
    let result = run(&client, &names).await;
    // Whatever happened, leave nothing behind that could judge later tests.
    let tname = names.kind.to_lowercase();
    let _ = Api::<DynamicObject>::all_with(client.clone(), &template_resource())
        .delete(&tname, &DeleteParams::default())
        .await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let _ = delete_orphaned_crd(&crds, &format!("{tname}.constraints.gatekeeper.sh")).await;
    for ns in [&names.deny_ns, &names.warn_ns, &names.audit_ns] {
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        let _ = pods
            .delete_collection(&DeleteParams::default(), &ListParams::default())
            .await;
        let _ = delete_namespace(&client, ns).await;
    }
    result.map_err(|e| {
        anyhow!(
            "{e:#}{}",
            log_tail(&format!("TESTBED_GATEKEEPER_LOG_{}", cluster.index))
        )
    })
}

async fn run(client: &Client, n: &Names) -> Result<()> {
    // (c) needs a Pod that exists before any constraint: only audit can find it.
    let old = unique_name("old-privileged");
    let audit_pods = privileged_before_policies(client, &n.audit_ns, &pod(&old, true)).await?;

    // The template, then its CRD, made by Gatekeeper.
    let templates: Api<DynamicObject> = Api::all_with(client.clone(), &template_resource());
    let tname = n.kind.to_lowercase();
    templates
        .create(&PostParams::default(), &template(&n.kind)?)
        .await
        .context("creating the ConstraintTemplate")?;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd_name = format!("{tname}.constraints.gatekeeper.sh");
    eventually(
        &format!("Gatekeeper's CRD {crd_name} established"),
        GATEKEEPER,
        || async {
            let crd = crds.get_opt(&crd_name).await.map_err(|e| e.to_string())?;
            let Some(crd) = crd else {
                return Err("no CRD yet".into());
            };
            let established = crd
                .status
                .iter()
                .flat_map(|s| s.conditions.iter().flatten())
                .any(|c| c.type_ == "Established" && c.status == "True");
            Ok(established.then_some(()))
        },
    )
    .await?;
    eventually(
        &format!("template {tname} enforced by Gatekeeper"),
        GATEKEEPER,
        || async {
            let t = templates.get(&tname).await.map_err(|e| e.to_string())?;
            if t.data.pointer("/status/created") == Some(&json!(true)) {
                Ok(Some(()))
            } else {
                Err(format!(
                    "status {}",
                    t.data.get("status").unwrap_or(&Value::Null)
                ))
            }
        },
    )
    .await?;

    // One constraint per enforcement action, each matching Pods in its own namespace only.
    let constraints: Api<DynamicObject> =
        Api::all_with(client.clone(), &constraint_resource(&n.kind));
    let deny = unique_name("deny");
    let warn = unique_name("warn");
    let audit = unique_name("audit");
    for (name, action, ns) in [
        (&deny, "deny", &n.deny_ns),
        (&warn, "warn", &n.warn_ns),
        (&audit, "dryrun", &n.audit_ns),
    ] {
        let c = constraint(&n.kind, name, action, ns)?;
        // Gatekeeper's webhook refuses a constraint whose template it has not loaded yet.
        eventually(
            &format!("constraint {name} ({action}) accepted"),
            GATEKEEPER,
            || async {
                match constraints.create(&PostParams::default(), &c).await {
                    Ok(_) => Ok(Some(())),
                    Err(e) => Err(e.to_string()),
                }
            },
        )
        .await?;
        eventually(
            &format!("constraint {name} ({action}) enforced (status.byPod)"),
            GATEKEEPER,
            || async {
                let obj = constraints.get(name).await.map_err(|e| e.to_string())?;
                if enforced(&obj) {
                    Ok(Some(()))
                } else {
                    Err(format!(
                        "status {}",
                        obj.data.get("status").unwrap_or(&Value::Null)
                    ))
                }
            },
        )
        .await?;
    }

    // (a) deny: a privileged Pod is refused with Gatekeeper's message naming the container.
    let deny_pods: Api<Pod> = Api::namespaced(client.clone(), &n.deny_ns);
    let bad = pod(&unique_name("privileged"), true);
    let message = eventually(
        "a privileged Pod denied by the deny constraint",
        GATEKEEPER,
        || async {
            match try_create(&deny_pods, &dry_run(), &bad)
                .await
                .map_err(|e| e.to_string())?
            {
                Err(message) => Ok(Some(message)),
                Ok(_) => Err("admitted".into()),
            }
        },
    )
    .await?;
    let expected = format!("[{deny}] {MESSAGE}: {BAD_CONTAINER}");
    ensure!(
        message.contains("admission webhook \"validation.gatekeeper.sh\" denied the request")
            && message.contains(&expected),
        "deny message {message:?} lacks Gatekeeper's webhook or {expected:?}"
    );
    let good = try_create(
        &deny_pods,
        &PostParams::default(),
        &pod(&unique_name("good"), false),
    )
    .await?;
    ensure!(
        matches!(&good, Ok(w) if w.is_empty()),
        "a Pod without privileged containers was not admitted cleanly under deny: {good:?}"
    );

    // (b) warn: admitted, with Gatekeeper's message as a warning.
    let warn_pods: Api<Pod> = Api::namespaced(client.clone(), &n.warn_ns);
    let warnings = eventually("a warning from the warn constraint", GATEKEEPER, || async {
        let p = pod(&unique_name("privileged"), true);
        match try_create(&warn_pods, &PostParams::default(), &p)
            .await
            .map_err(|e| e.to_string())?
        {
            Ok(w) if !w.is_empty() => Ok(Some(w)),
            Ok(_) => Err("admitted without a warning".into()),
            Err(m) => Err(format!("denied under warn: {m}")),
        }
    })
    .await?;
    let expected = format!("[{warn}] {MESSAGE}: {BAD_CONTAINER}");
    ensure!(
        warnings.iter().any(|w| w.contains(&expected)),
        "warnings {warnings:?} lack {expected:?}"
    );

    // (c) dryrun: new Pods are admitted without a word; audit finds the Pod that was there first.
    let fresh = try_create(
        &audit_pods,
        &dry_run(),
        &pod(&unique_name("privileged"), true),
    )
    .await?;
    ensure!(
        matches!(&fresh, Ok(w) if w.is_empty()),
        "a privileged Pod under dryrun was not admitted silently: {fresh:?}"
    );
    let found = eventually(
        &format!("audit reporting Pod {old} in {audit}'s status"),
        AUDIT,
        || async {
            let obj = constraints.get(&audit).await.map_err(|e| e.to_string())?;
            let violations = obj
                .data
                .pointer("/status/violations")
                .and_then(Value::as_array);
            let hit = violations.into_iter().flatten().find(|v| {
                v.get("name") == Some(&json!(old))
                    && v.get("namespace") == Some(&json!(n.audit_ns))
                    && v.get("kind") == Some(&json!("Pod"))
            });
            match hit {
                Some(v) => Ok(Some((
                    v.clone(),
                    obj.data["status"]["totalViolations"].clone(),
                ))),
                None => Err(format!(
                    "status {}",
                    obj.data.get("status").unwrap_or(&Value::Null)
                )),
            }
        },
    )
    .await?;
    let (violation, total) = found;
    ensure!(
        violation["enforcementAction"] == json!("dryrun")
            && violation["message"]
                .as_str()
                .is_some_and(|m| m.contains(&format!("{MESSAGE}: {BAD_CONTAINER}"))),
        "audit violation {violation} is not the dryrun privileged-container finding"
    );
    ensure!(
        total.as_u64() == Some(1),
        "totalViolations {total} (expected exactly the old Pod)"
    );

    // (d) constraints and template gone: the privileged Pod is admitted again.
    for name in [&deny, &warn, &audit] {
        constraints
            .delete(name, &DeleteParams::default())
            .await
            .with_context(|| format!("deleting constraint {name}"))?;
    }
    templates
        .delete(&tname, &DeleteParams::default())
        .await
        .context("deleting the template")?;
    eventually(&format!("template {tname} deleted"), GATEKEEPER, || async {
        match templates.get_opt(&tname).await.map_err(|e| e.to_string())? {
            None => Ok(Some(())),
            Some(t) => Err(format!(
                "still there, finalizers {:?}",
                t.metadata.finalizers
            )),
        }
    })
    .await?;
    eventually(
        "the privileged Pod admitted once the policy is gone",
        GATEKEEPER,
        || async {
            match try_create(&deny_pods, &PostParams::default(), &bad)
                .await
                .map_err(|e| e.to_string())?
            {
                Ok(w) if w.is_empty() => Ok(Some(())),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await?;
    // Gatekeeper leaves removing the constraint CRD to the garbage collector (the CRD is owned by
    // the template); the test bed runs no controller-manager, so do what it would.
    delete_orphaned_crd(&crds, &crd_name).await
}

/// Deletes the constraint CRD Gatekeeper made for a template (see the end of `run`).
async fn delete_orphaned_crd(crds: &Api<CustomResourceDefinition>, name: &str) -> Result<()> {
    match crds.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(st)) if st.code == 404 => Ok(()),
        Err(e) => Err(e).with_context(|| format!("deleting CRD {name}")),
    }
}

#[tokio::test]
async fn gatekeeper_enforces_the_library_privileged_containers_template() {
    on_clusters(gatekeeper_clusters(), prove).await;
}
