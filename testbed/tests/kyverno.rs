//! Proofs that the test bed runs a real Kyverno that enforces and reports, on every cluster that
//! `e2e/clusters up --kyverno LIST` gave one (`TESTBED_KYVERNO_CLUSTERS`):
//! - a `kyverno.io/v1` ClusterPolicy with `failureAction: Enforce` denies a privileged Pod with
//!   the rule's message and admits a plain one;
//! - a `policies.kyverno.io/v1` ValidatingPolicy with `validationActions: [Deny]` does the same
//!   with its own message;
//! - a ClusterPolicy with `failureAction: Audit` admits the Pod, and the background scan (every
//!   10 s in the test bed) writes a PolicyReport that fails the Pod that existed before it;
//! - a PolicyException in Kyverno's namespace lets an excepted Pod through an enforcing policy.
//!
//! Needs the clusters (`e2e/clusters up 1 --kyverno 1 && eval "$(e2e/clusters env)"`); without
//! them the test fails and says so. Every policy matches only namespaces of this run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

use std::time::Duration;

use anyhow::{anyhow, ensure, Context, Result};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, PostParams,
};
use kube::Client;
use palisade_testbed::{delete_namespace, unique_name, Cluster};
use serde_json::{json, Value};

/// How long Kyverno may take to pick up a policy (its webhook configuration is rewritten).
const KYVERNO: Duration = Duration::from_secs(60);
/// How long the background scan may take to report (every 10 s in the test bed).
const REPORTS: Duration = Duration::from_secs(120);
const RULE_MESSAGE: &str = "Privileged mode is disallowed by this test rule";
const VPOL_MESSAGE: &str = "Privileged containers are refused by this test ValidatingPolicy";

fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

fn cluster_policies() -> ApiResource {
    resource("kyverno.io", "v1", "ClusterPolicy", "clusterpolicies")
}

fn validating_policies() -> ApiResource {
    resource(
        "policies.kyverno.io",
        "v1",
        "ValidatingPolicy",
        "validatingpolicies",
    )
}

fn exceptions() -> ApiResource {
    resource("kyverno.io", "v2", "PolicyException", "policyexceptions")
}

fn reports() -> ApiResource {
    resource(
        "wgpolicyk8s.io",
        "v1alpha2",
        "PolicyReport",
        "policyreports",
    )
}

fn pod(name: &str, privileged: bool) -> Pod {
    proof_pod("kyverno", name, "app", privileged)
}

/// A ClusterPolicy refusing privileged containers in Pods of `namespace`.
fn cluster_policy(name: &str, action: &str, namespace: &str) -> Result<DynamicObject> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "kyverno.io/v1",
        "kind": "ClusterPolicy",
        "metadata": { "name": name, "labels": { TEST_LABEL: "kyverno" } },
        "spec": {
            "background": true,
            "rules": [{
                "name": "privileged-containers",
                "match": { "any": [{ "resources": { "kinds": ["Pod"], "namespaces": [namespace] } }] },
                "validate": {
                    "failureAction": action,
                    "message": RULE_MESSAGE,
                    "pattern": { "spec": { "containers": [{
                        "=(securityContext)": { "=(privileged)": "false" }
                    }]}}
                }
            }]
        }
    }))?)
}

/// A ValidatingPolicy refusing privileged containers in Pods of `namespace`.
fn validating_policy(name: &str, namespace: &str) -> Result<DynamicObject> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "policies.kyverno.io/v1",
        "kind": "ValidatingPolicy",
        "metadata": { "name": name, "labels": { TEST_LABEL: "kyverno" } },
        "spec": {
            "validationActions": ["Deny"],
            "matchConstraints": {
                "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": namespace } },
                "resourceRules": [{
                    "apiGroups": [""], "apiVersions": ["v1"],
                    "operations": ["CREATE", "UPDATE"], "resources": ["pods"]
                }]
            },
            "validations": [{
                "expression": "object.spec.containers.all(c, !has(c.securityContext) || \
                               !has(c.securityContext.privileged) || !c.securityContext.privileged)",
                "message": VPOL_MESSAGE
            }]
        }
    }))?)
}

/// A PolicyException, in Kyverno's namespace, for Pods named `pod` in `namespace`.
fn exception(name: &str, policy: &str, namespace: &str, pod: &str) -> Result<DynamicObject> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "kyverno.io/v2",
        "kind": "PolicyException",
        "metadata": { "name": name, "namespace": "kyverno", "labels": { TEST_LABEL: "kyverno" } },
        "spec": {
            "exceptions": [{ "policyName": policy, "ruleNames": ["privileged-containers"] }],
            "match": { "any": [{ "resources": {
                "kinds": ["Pod"], "namespaces": [namespace], "names": [pod]
            }}]}
        }
    }))?)
}

struct Names {
    enforce_ns: String,
    audit_ns: String,
    vpol_ns: String,
    enforce: String,
    audit: String,
    vpol: String,
    exception: String,
}

async fn prove(cluster: Cluster) -> Result<()> {
    let client = cluster.admin_client().await?;
    let n = Names {
        enforce_ns: unique_name("ky-enforce"),
        audit_ns: unique_name("ky-audit"),
        vpol_ns: unique_name("ky-vpol"),
        enforce: unique_name("ky-enforce"),
        audit: unique_name("ky-audit"),
        vpol: unique_name("ky-vpol"),
        exception: unique_name("ky-except"),
    };
    for ns in [&n.enforce_ns, &n.audit_ns, &n.vpol_ns] {
        let obj: Namespace = serde_json::from_value(json!({
            "metadata": { "name": ns, "labels": { TEST_LABEL: "kyverno" } }
        }))?;
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &obj)
            .await
            .with_context(|| format!("creating namespace {ns}"))?;
    }
    let result = run(&client, &n).await;
    // Whatever happened, leave nothing behind that could judge later tests.
    let dp = DeleteParams::default();
    let _ = Api::<DynamicObject>::all_with(client.clone(), &cluster_policies())
        .delete(&n.enforce, &dp)
        .await;
    let _ = Api::<DynamicObject>::all_with(client.clone(), &cluster_policies())
        .delete(&n.audit, &dp)
        .await;
    let _ = Api::<DynamicObject>::all_with(client.clone(), &validating_policies())
        .delete(&n.vpol, &dp)
        .await;
    let _ = Api::<DynamicObject>::namespaced_with(client.clone(), "kyverno", &exceptions())
        .delete(&n.exception, &dp)
        .await;
    for ns in [&n.enforce_ns, &n.audit_ns, &n.vpol_ns] {
        let _ = Api::<Pod>::namespaced(client.clone(), ns)
            .delete_collection(&dp, &ListParams::default())
            .await;
        let _ = delete_namespace(&client, ns).await;
    }
    let i = cluster.index;
    result.map_err(|e| {
        anyhow!(
            "{e:#}{}{}",
            log_tail(&format!("TESTBED_KYVERNO_LOG_{i}")),
            log_tail(&format!("TESTBED_KYVERNO_REPORTS_LOG_{i}"))
        )
    })
}

/// Waits until a dry-run create of a privileged Pod in `ns` is denied, and returns the message.
async fn denied_in(client: &Client, ns: &str, what: &str) -> Result<String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let probe = pod(&unique_name("probe"), true);
    eventually(what, KYVERNO, || async {
        match try_create(&pods, &dry_run(), &probe).await {
            Ok(Err(message)) => Ok(Some(message)),
            Ok(Ok(_)) => Err("the privileged Pod was admitted".into()),
            Err(e) => Err(e.to_string()),
        }
    })
    .await
}

async fn run(client: &Client, n: &Names) -> Result<()> {
    // Before any policy: a privileged Pod that only the background scan can find.
    let old = unique_name("old-privileged");
    let audit_pods = privileged_before_policies(client, &n.audit_ns, &pod(&old, true)).await?;

    let policies: Api<DynamicObject> = Api::all_with(client.clone(), &cluster_policies());
    let pp = PostParams::default();
    policies
        .create(&pp, &cluster_policy(&n.enforce, "Enforce", &n.enforce_ns)?)
        .await
        .context("creating the enforcing ClusterPolicy")?;
    policies
        .create(&pp, &cluster_policy(&n.audit, "Audit", &n.audit_ns)?)
        .await
        .context("creating the auditing ClusterPolicy")?;
    Api::<DynamicObject>::all_with(client.clone(), &validating_policies())
        .create(&pp, &validating_policy(&n.vpol, &n.vpol_ns)?)
        .await
        .context("creating the ValidatingPolicy")?;

    // Enforce: denied with the rule's message, naming policy and rule.
    let message = denied_in(client, &n.enforce_ns, "the ClusterPolicy denying").await?;
    for part in [RULE_MESSAGE, n.enforce.as_str(), "privileged-containers"] {
        ensure!(
            message.contains(part),
            "Kyverno's denial {message:?} does not name {part:?}"
        );
    }
    let enforce_pods: Api<Pod> = Api::namespaced(client.clone(), &n.enforce_ns);
    let plain = try_create(&enforce_pods, &pp, &pod(&unique_name("plain"), false)).await?;
    ensure!(plain.is_ok(), "a plain Pod was refused: {plain:?}");

    // The ValidatingPolicy denies with its own message.
    let message = denied_in(client, &n.vpol_ns, "the ValidatingPolicy denying").await?;
    ensure!(
        message.contains(VPOL_MESSAGE),
        "ValidatingPolicy denial {message:?}"
    );

    // A PolicyException in Kyverno's namespace lets one named Pod through.
    let excepted = unique_name("excepted");
    Api::<DynamicObject>::namespaced_with(client.clone(), "kyverno", &exceptions())
        .create(
            &pp,
            &exception(&n.exception, &n.enforce, &n.enforce_ns, &excepted)?,
        )
        .await
        .context("creating the PolicyException")?;
    let through = pod(&excepted, true);
    eventually("the excepted Pod admitted", KYVERNO, || async {
        match try_create(&enforce_pods, &dry_run(), &through).await {
            Ok(Ok(_)) => Ok(Some(())),
            Ok(Err(message)) => Err(format!("denied: {message}")),
            Err(e) => Err(e.to_string()),
        }
    })
    .await?;

    // Audit: admitted; the background scan fails the Pod that was there before.
    let fresh = try_create(&audit_pods, &dry_run(), &pod(&unique_name("new"), true)).await?;
    ensure!(
        fresh.is_ok(),
        "the auditing policy refused a Pod: {fresh:?}"
    );
    let reports: Api<DynamicObject> = Api::namespaced_with(client.clone(), &n.audit_ns, &reports());
    let audit = n.audit.clone();
    let found = eventually("a PolicyReport failing the old Pod", REPORTS, || async {
        let list = reports
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?;
        // Kyverno keeps one report per resource, naming it in `scope`; older layouts name it
        // in each result's `resources`.
        let results: Vec<(Value, Value)> = list
            .items
            .iter()
            .flat_map(|r| {
                let scope = r.data["scope"]["name"].clone();
                let rows = r.data["results"].as_array().cloned().unwrap_or_default();
                rows.into_iter().map(move |row| {
                    let name = row["resources"][0]["name"].clone();
                    (if name.is_null() { scope.clone() } else { name }, row)
                })
            })
            .collect();
        let fail = results.iter().find(|(name, r)| {
            r["policy"] == json!(audit) && r["result"] == json!("fail") && *name == json!(old)
        });
        match fail {
            Some((_, r)) => Ok(Some(r.clone())),
            None => Err(format!(
                "{} report(s), results {results:?}",
                list.items.len()
            )),
        }
    })
    .await?;
    ensure!(
        found["message"]
            .as_str()
            .is_some_and(|m| m.contains(RULE_MESSAGE)),
        "the report's result {found} lacks the rule's message"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn kyverno_enforces_excepts_and_reports() {
    on_each_cluster_with(Beside::Kyverno, prove).await;
}
