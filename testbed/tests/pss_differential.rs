//! Differential test of Palisade's Pod Security port against real kube-apiservers.
//!
//! Namespaces enforce `baseline` and `restricted` at `latest` (and two older versions); a few
//! hundred seeded, varied Pods are sent to each with a server-side dry-run create. The engine
//! must allow exactly the pods the apiserver admits, and for each denial produce the
//! apiserver's message word for word. Deployments made from some of the pods must draw the same
//! Pod Security warning (or none) from the apiserver as from the engine.
//!
//! Needs running clusters: `e2e/clusters up && eval "$(e2e/clusters env)"`. Without them the
//! test fails and says so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use kube::Client;
use palisade_engine::pss::{self, Level, LevelVersion, Version};
use palisade_engine::{sample, Action, AdmissionRequest, Mode};
use palisade_testbed::{create_with_warnings, delete_namespace, unique_name};
use serde_json::{json, Value};

/// Pods generated per run; each is sent to both namespaces.
const PODS: usize = 600;
/// Of those, how many are also sent as Deployments.
const DEPLOYMENTS: usize = 200;

/// The labels that make Pod Security enforce `lv` in a namespace.
fn enforce_labels(lv: LevelVersion) -> Value {
    json!({
        "pod-security.kubernetes.io/enforce": lv.level.as_str(),
        "pod-security.kubernetes.io/enforce-version": lv.version.to_string()
    })
}

/// What the apiserver did with a dry-run create.
enum Outcome {
    Admitted,
    Forbidden(String),
    Invalid(String),
}

async fn dry_run(client: &Client, ns: &str, pod: &Value) -> Result<Outcome> {
    let typed: Pod = serde_json::from_value(pod.clone()).context("the pod matches the Pod type")?;
    let pp = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    match Api::<Pod>::namespaced(client.clone(), ns)
        .create(&pp, &typed)
        .await
    {
        Ok(_) => Ok(Outcome::Admitted),
        Err(kube::Error::Api(st)) if st.code == 403 => Ok(Outcome::Forbidden(st.message)),
        Err(kube::Error::Api(st)) if st.code == 422 => Ok(Outcome::Invalid(st.message)),
        Err(e) => Err(e).context("dry-run create"),
    }
}

/// Waits until Pod Security Admission enforces the namespace's labels.
async fn wait_for_enforcement(client: &Client, ns: &str) -> Result<()> {
    let probe = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probe"},
        "spec": {"hostPID": true, "containers": [{"name": "c", "image": "busybox:1"}]}});
    let deadline = Instant::now() + PROPAGATION;
    loop {
        if let Outcome::Forbidden(_) = dry_run(client, ns, &probe).await? {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "namespace {ns} did not enforce Pod Security within {PROPAGATION:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn engine_agrees_with_the_apiserver_on_pod_security() {
    let tb = testbed();
    on_every_cluster(&tb, |cluster| async move {
        let client = cluster.admin_client().await?;
        // `latest` as the brief of this test; two older versions to prove the per-version
        // behaviour against the apiserver's own (restricted before the Windows exemptions and
        // the newer sysctls; baseline before the probe-host check).
        let namespaces = [
            (
                LevelVersion::latest(Level::Baseline),
                unique_name("pss-baseline"),
            ),
            (
                LevelVersion::latest(Level::Restricted),
                unique_name("pss-restricted"),
            ),
            (
                LevelVersion::new(Level::Restricted, Version::Minor(24)),
                unique_name("pss-restricted-124"),
            ),
            (
                LevelVersion::new(Level::Baseline, Version::Minor(33)),
                unique_name("pss-baseline-133"),
            ),
        ];
        for (lv, ns) in &namespaces {
            create_namespace(&client, ns, enforce_labels(*lv)).await?;
        }
        let result = compare(&client, &namespaces).await;
        for (_, ns) in &namespaces {
            delete_namespace(&client, ns).await?;
        }
        result
    })
    .await;
}

async fn compare(client: &Client, namespaces: &[(LevelVersion, String)]) -> Result<()> {
    for (_, ns) in namespaces {
        wait_for_enforcement(client, ns).await?;
    }
    // The shared generator of varied, valid Pods; the namespace is chosen by the test, not the sample.
    let mut rng = sample::Rng::new(0x0070_d5ec_0001);
    let pods: Vec<Value> = (0..PODS)
        .map(|i| {
            let mut pod = sample::pod(&mut rng, &format!("pod-{i:03}"));
            if let Some(metadata) = pod["metadata"].as_object_mut() {
                metadata.remove("namespace");
            }
            pod
        })
        .collect();
    let (mut allowed, mut denied) = (0usize, 0usize);
    let mut mismatches = Vec::new();
    let mut invalid = Vec::new();
    for pod in &pods {
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        for (lv, ns) in namespaces {
            let lv = *lv;
            let mut object = pod.clone();
            object["metadata"]["namespace"] = json!(ns);
            let request = AdmissionRequest::create(object)?;
            let verdict = pss::evaluate(lv, Mode::Enforce, &request);
            let engine = (verdict.action() == Action::Deny).then(|| {
                format!(
                    "pods \"{name}\" is forbidden: {}",
                    verdict.findings[0].message
                )
            });
            let describe = || serde_json::to_string_pretty(pod).unwrap_or_default();
            match (dry_run(client, ns, pod).await?, engine) {
                (Outcome::Invalid(message), _) => {
                    invalid.push(format!("{lv} {name}: {message}\n{}", describe()));
                }
                (Outcome::Admitted, None) => allowed += 1,
                (Outcome::Forbidden(server), Some(ours)) if server == ours => denied += 1,
                (server, ours) => {
                    let server = match server {
                        Outcome::Admitted => "admitted".to_owned(),
                        Outcome::Forbidden(m) | Outcome::Invalid(m) => m,
                    };
                    let ours = ours.unwrap_or_else(|| "admitted".to_owned());
                    mismatches.push(format!(
                        "{lv} {name}:\n  apiserver: {server}\n  engine:    {ours}\n{}",
                        describe()
                    ));
                }
            }
        }
    }
    let compared = allowed + denied + mismatches.len();
    eprintln!(
        "PSS differential, Pods: {compared} dry-run creates compared ({PODS} pods x {} policies): \
         {} agree ({allowed} admitted, {denied} denied with the same message), {} differ, \
         {} invalid pods skipped",
        namespaces.len(),
        allowed + denied,
        mismatches.len(),
        invalid.len()
    );
    let (warned, quiet, template_mismatches) = compare_templates(client, namespaces, &pods).await?;
    eprintln!(
        "PSS differential, Deployments: {} dry-run creates: {} agree ({warned} warned with the \
         same text, {quiet} without a warning), {} differ",
        warned + quiet + template_mismatches.len(),
        warned + quiet,
        template_mismatches.len()
    );
    mismatches.extend(template_mismatches);
    print_findings(&mismatches, &invalid);
    if !mismatches.is_empty() {
        bail!(
            "{} of {compared} verdicts differ from the apiserver (printed above)",
            mismatches.len()
        );
    }
    ensure!(
        invalid.is_empty(),
        "{} generated pods were invalid (printed above); the generator must only make valid pods",
        invalid.len()
    );
    ensure!(
        allowed > PODS / 10 && denied > PODS / 2 && warned > 0 && quiet > 0,
        "the pods are not varied enough: {allowed} admitted, {denied} denied, \
         {warned} Deployments warned, {quiet} not"
    );
    Ok(())
}

/// Deployments made from the first pods: enforce does not apply to templates, but the warn
/// level (which follows enforce) does, and the template sees no Pod defaulting.
async fn compare_templates(
    client: &Client,
    namespaces: &[(LevelVersion, String)],
    pods: &[Value],
) -> Result<(usize, usize, Vec<String>)> {
    let (mut warned, mut quiet) = (0usize, 0usize);
    let mut mismatches = Vec::new();
    let pp = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    for pod in pods.iter().take(DEPLOYMENTS) {
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        let mut template_metadata = pod["metadata"].clone();
        if let Some(m) = template_metadata.as_object_mut() {
            m.remove("name");
        }
        template_metadata["labels"] = json!({"app": name});
        let deployment = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": template_metadata, "spec": pod["spec"]}
            }
        });
        for (lv, ns) in namespaces {
            let mut object = deployment.clone();
            object["metadata"]["namespace"] = json!(ns);
            let verdict = pss::evaluate(*lv, Mode::Enforce, &AdmissionRequest::create(object)?);
            let ours = verdict
                .findings
                .iter()
                .find(|f| f.action == Action::Warn)
                .map(|f| f.message.clone());
            ensure!(
                verdict.action() != Action::Deny,
                "enforce must not deny a Deployment: {verdict:?}"
            );
            let typed: Deployment = serde_json::from_value(deployment.clone())?;
            let api = Api::<Deployment>::namespaced(client.clone(), ns);
            let created = create_with_warnings(&api, &pp, &typed)
                .await
                .with_context(|| format!("dry-run create of Deployment {name} in {ns}"))?;
            let server: Vec<&String> = created
                .warnings
                .iter()
                .filter(|w| w.contains("PodSecurity"))
                .collect();
            match (server.as_slice(), &ours) {
                ([], None) => quiet += 1,
                ([theirs], Some(ours)) if *theirs == ours => warned += 1,
                _ => mismatches.push(format!(
                    "{lv} Deployment {name}:\n  apiserver: {server:?}\n  engine:    {ours:?}\n{}",
                    serde_json::to_string_pretty(&deployment).unwrap_or_default()
                )),
            }
        }
    }
    Ok((warned, quiet, mismatches))
}
