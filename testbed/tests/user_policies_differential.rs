//! Differential test of policies written the way users write them — reading defaulted fields,
//! quantities written as numbers, optionals, regexes, URLs, the namespace in validations and in
//! match conditions, message expressions, a presence test on a number — against a real
//! kube-apiserver.
//!
//! Each policy is bound alone: its binding selects one namespace of its own, so every object sent
//! there meets that policy and no other. Seeded objects (the engine's sample Pods and workloads,
//! with resources written as numbers) are sent with a server-side dry-run create, and the engine,
//! evaluating the object's admission view (`apiview`) with the same namespace, must admit exactly
//! what the apiserver admits and deny the rest with the apiserver's message.
//!
//! Needs a running cluster: `e2e/clusters up && eval "$(e2e/clusters env)"`. Without it the test
//! fails and says so. Everything created is deleted again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _, Result};
use kube::Client;
use palisade_engine::apiview::admission_view;
use palisade_engine::namespaces::Namespaces;
use palisade_engine::sample::{self, Rng};
use palisade_engine::source::parse_documents;
use palisade_engine::vap::{EvalContext, PolicySet};
use palisade_engine::AdmissionRequest;
use palisade_testbed::{delete_namespace, send_with_warnings, unique_name};
use serde_json::{json, Value};

const SEED: u64 = 0x0016_0001_0000;
/// Objects sent to each policy's namespace.
const OBJECTS: usize = 80;

/// A policy as a user writes it: its name, the kinds it matches, its spec below `matchConstraints`.
struct UserPolicy {
    name: &'static str,
    resource: &'static str,
    body: &'static str,
}

const POLICIES: &[UserPolicy] = &[
    UserPolicy {
        name: "replicas-at-most-three",
        resource: "deployments",
        body: "  validations:
  - expression: object.spec.replicas <= 3
    messageExpression: \"'replicas must be at most 3, not ' + string(object.spec.replicas)\"
",
    },
    UserPolicy {
        name: "presence-on-a-number",
        resource: "deployments",
        body: "  validations:
  - expression: has(object.spec.replicas.value) || object.spec.replicas <= 4
",
    },
    UserPolicy {
        name: "short-grace-period",
        resource: "deployments",
        body: "  validations:
  - expression: object.spec.template.spec.terminationGracePeriodSeconds <= 20
    message: pods must stop within 20 seconds
",
    },
    UserPolicy {
        name: "always-pull",
        resource: "pods",
        body: "  validations:
  - expression: object.spec.containers.all(c, c.imagePullPolicy == 'Always')
    messageExpression: \"'images must always be pulled: ' + object.spec.containers.filter(c, c.imagePullPolicy != 'Always').map(c, c.name).join(', ')\"
",
    },
    UserPolicy {
        name: "tcp-only",
        resource: "pods",
        body: "  validations:
  - expression: object.spec.containers.all(c, !has(c.ports) || c.ports.all(p, p.protocol == 'TCP'))
",
    },
    UserPolicy {
        name: "cpu-below-two",
        resource: "pods",
        body: "  variables:
  - name: limited
    expression: object.spec.containers.filter(c, has(c.resources.limits) && 'cpu' in c.resources.limits)
  validations:
  - expression: variables.limited.all(c, quantity(c.resources.limits.cpu).isLessThan(quantity('2')))
    messageExpression: \"'cpu limits must be below 2: ' + variables.limited.map(c, c.resources.limits.cpu).join(', ')\"
",
    },
    UserPolicy {
        name: "memory-requested",
        resource: "pods",
        body: "  validations:
  - expression: object.spec.containers.all(c, has(c.resources.requests) && 'memory' in c.resources.requests)
    message: every container requests memory
",
    },
    UserPolicy {
        name: "non-root-optional",
        resource: "pods",
        body: "  validations:
  - expression: object.spec.?securityContext.?runAsNonRoot.orValue(false) || object.spec.containers.all(c, c.?securityContext.?runAsNonRoot.orValue(false))
",
    },
    UserPolicy {
        name: "registry-regex",
        resource: "pods",
        body: "  validations:
  - expression: object.spec.containers.all(c, c.image.matches('^(registry[.]example[.]com|ghcr[.]io)/'))
    messageExpression: \"'images come from our registries, not ' + object.spec.containers.map(c, c.image.split('/')[0]).join(', ')\"
",
    },
    UserPolicy {
        name: "docs-url",
        resource: "deployments",
        body: "  validations:
  - expression: \"!has(object.metadata.annotations) || !('docs' in object.metadata.annotations) || isURL(object.metadata.annotations.docs)\"
  - expression: object.spec.template.spec.dnsPolicy == 'ClusterFirst' && object.spec.template.spec.schedulerName == 'default-scheduler'
",
    },
    UserPolicy {
        name: "namespace-owned",
        resource: "pods",
        body: "  validations:
  - expression: \"'team' in namespaceObject.metadata.labels && namespaceObject.metadata.labels.team == object.metadata.?labels.?team.orValue('')\"
    messageExpression: \"'namespace ' + namespaceObject.metadata.name + ' belongs to ' + namespaceObject.metadata.labels.team\"
",
    },
    UserPolicy {
        name: "namespace-in-match-condition",
        resource: "pods",
        body: "  matchConditions:
  - name: not-system
    expression: namespaceObject.metadata.name != 'kube-system'
  validations:
  - expression: \"true\"
",
    },
    UserPolicy {
        name: "no-host-path-type",
        resource: "pods",
        body: "  validations:
  - expression: \"!has(object.spec.volumes) || object.spec.volumes.all(v, !has(v.hostPath) || v.hostPath.type == '')\"
  - expression: object.spec.restartPolicy == 'Always' && object.spec.enableServiceLinks
",
    },
];

/// Fields the apiserver defaults on a Pod (or adds through its default admission plugins), with
/// values a policy might compare them with.
const DEFAULTED: &[(&str, &[&str])] = &[
    ("object.spec.dnsPolicy", &["'ClusterFirst'", "'Default'"]),
    ("object.spec.restartPolicy", &["'Always'", "'Never'"]),
    (
        "object.spec.schedulerName",
        &["'default-scheduler'", "'custom'"],
    ),
    ("object.spec.terminationGracePeriodSeconds", &["30", "10"]),
    ("object.spec.enableServiceLinks", &["true", "false"]),
    ("object.spec.priority", &["0", "1000"]),
    (
        "object.spec.preemptionPolicy",
        &["'PreemptLowerPriority'", "'Never'"],
    ),
    ("size(object.spec.tolerations)", &["2", "3"]),
    (
        "object.spec.containers[0].imagePullPolicy",
        &["'Always'", "'IfNotPresent'"],
    ),
    (
        "object.spec.containers[0].terminationMessagePath",
        &["'/dev/termination-log'", "'/tmp/x'"],
    ),
    (
        "object.spec.containers[0].terminationMessagePolicy",
        &["'File'"],
    ),
    ("object.spec.containers[0].resources", &["{}"]),
];

/// Policies generated from [`DEFAULTED`], so that nobody chose which ones pass: one or two
/// comparisons each, over Pods whose name does not end in 7 (those are always denied, so every
/// policy denies something and its binding can be seen taking effect).
fn generated(count: usize) -> Vec<UserPolicy> {
    let mut rng = Rng::new(SEED ^ 0x9e);
    (0..count)
        .map(|i| {
            let clauses: Vec<String> = (0..1 + rng.below(2))
                .map(|_| {
                    let (field, values) = rng.pick(DEFAULTED);
                    let op = rng.pick(&["==", "!="]);
                    format!("{field} {op} {}", rng.pick(values))
                })
                .collect();
            let joined = clauses.join(if rng.chance(50) { " && " } else { " || " });
            UserPolicy {
                name: format!("generated-{i}").leak(),
                resource: "pods",
                body: format!(
                    "  validations:\n  - expression: \"!object.metadata.name.endsWith('7') && ({joined})\"\n"
                )
                .leak(),
            }
        })
        .collect()
}

/// The written policies and the generated ones.
fn policies() -> Vec<UserPolicy> {
    let mut all: Vec<UserPolicy> = POLICIES
        .iter()
        .map(|p| UserPolicy {
            name: p.name,
            resource: p.resource,
            body: p.body,
        })
        .collect();
    all.extend(generated(GENERATED));
    all
}

/// Policies generated per run.
const GENERATED: usize = 12;

fn policy_documents(policy: &UserPolicy, label: &str) -> String {
    format!(
        "apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: {name}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - apiGroups: [\"\", apps]
      apiVersions: [v1]
      operations: [CREATE]
      resources: [{resource}]
{body}---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: {name}
spec:
  policyName: {name}
  validationActions: [Deny]
  matchResources:
    namespaceSelector:
      matchLabels:
        palisade-differential: {label}
",
        name = policy.name,
        resource = policy.resource,
        body = policy.body,
    )
}

/// Objects for one policy: Pods or Deployments from the engine's samples, some with resources
/// written as bare numbers and some with a team label.
fn objects(rng: &mut Rng, policy: &UserPolicy, namespace: &str) -> Vec<Value> {
    (0..OBJECTS)
        .map(|i| {
            let name = format!("{}-{i:03}", policy.resource.trim_end_matches('s'));
            let mut object = if policy.resource == "pods" {
                sample::pod(rng, &name)
            } else {
                let mut workload = sample::workload(rng, &name);
                while workload["kind"] != "Deployment" {
                    workload = sample::workload(rng, &name);
                }
                if rng.chance(50) {
                    workload["spec"]["replicas"] = json!(rng.below(6));
                } else if let Some(spec) = workload["spec"].as_object_mut() {
                    spec.remove("replicas");
                }
                if rng.chance(30) {
                    workload["metadata"]["annotations"] =
                        json!({"docs": rng.pick(&["https://wiki.example.com/app", "not a url"])});
                }
                workload
            };
            object["metadata"]["namespace"] = json!(namespace);
            if rng.chance(50) {
                object["metadata"]["labels"]["team"] = json!(rng.pick(&["payments", "search"]));
            }
            let spec = if policy.resource == "pods" {
                &mut object["spec"]
            } else {
                &mut object["spec"]["template"]["spec"]
            };
            if let Some(containers) = spec["containers"].as_array_mut() {
                for (index, container) in containers.iter_mut().enumerate() {
                    if rng.chance(40) {
                        container["resources"] = json!({"limits": {
                            "cpu": rng.pick(&[json!(1), json!(2), json!(0.5), json!("1500m")]),
                            "memory": rng.pick(&[json!(268_435_456), json!("256Mi")]),
                        }});
                    }
                    if rng.chance(30) {
                        // One port per container: with hostNetwork the host ports default
                        // to these and must differ.
                        let mut port = json!({"containerPort": 8080 + index});
                        if rng.chance(40) {
                            port["protocol"] = json!("UDP");
                        }
                        container["ports"] = json!([port]);
                    }
                }
            }
            object
        })
        .collect()
}

/// The apiserver's answer to a dry-run create: admitted, or rejected with its message.
async fn dry_run(client: &Client, object: &Value) -> Result<Result<(), String>> {
    let namespace = object["metadata"]["namespace"].as_str().unwrap_or_default();
    let path = if object["kind"] == "Pod" {
        format!("/api/v1/namespaces/{namespace}/pods?dryRun=All")
    } else {
        format!("/apis/apps/v1/namespaces/{namespace}/deployments?dryRun=All")
    };
    let request = http::Request::post(path)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(object)?)?;
    let reply = send_with_warnings(client, request).await?;
    Ok(if reply.status.is_success() {
        Ok(())
    } else {
        Err(reply.message())
    })
}

async fn post(client: &Client, path: &str, object: &Value) -> Result<()> {
    let request = http::Request::post(path)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(object)?)?;
    let reply = send_with_warnings(client, request).await?;
    ensure!(
        reply.status.is_success(),
        "POST {path}: {}",
        reply.message()
    );
    Ok(())
}

async fn delete(client: &Client, path: &str) {
    if let Ok(request) = http::Request::delete(path).body(Vec::new()) {
        let _ = send_with_warnings(client, request).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn policies_as_users_write_them_agree_with_the_apiserver() {
    let tb = testbed();
    let client = tb.clusters[0].admin_client().await.unwrap();
    let run = unique_name("userpol");
    let result = compare(&client, &run).await;
    for policy in &policies() {
        let name = format!("{run}-{}", policy.name);
        delete(
            &client,
            &format!(
                "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings/{name}"
            ),
        )
        .await;
        delete(
            &client,
            &format!("/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/{name}"),
        )
        .await;
        let _ = delete_namespace(&client, &name).await;
    }
    result.unwrap();
}

async fn compare(client: &Client, run: &str) -> Result<()> {
    let mut rng = Rng::new(SEED);
    let mut sets = Vec::new();
    let all = policies();
    for policy in &all {
        let name = format!("{run}-{}", policy.name);
        let mut labels = json!({"palisade-differential": name});
        if rng.chance(50) {
            labels["team"] = json!("payments");
        }
        let namespace = json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": labels}});
        post(client, "/api/v1/namespaces", &namespace).await?;
        let text = policy_documents(policy, &name).replace(
            &format!("name: {}\n", policy.name),
            &format!("name: {name}\n"),
        );
        let text = text.replace(
            &format!("policyName: {}\n", policy.name),
            &format!("policyName: {name}\n"),
        );
        let documents = parse_documents(&format!("{}.yaml", policy.name), &text)
            .with_context(|| policy.name.to_owned())?;
        for document in &documents {
            let plural = if document.value["kind"] == "ValidatingAdmissionPolicy" {
                "validatingadmissionpolicies"
            } else {
                "validatingadmissionpolicybindings"
            };
            post(
                client,
                &format!("/apis/admissionregistration.k8s.io/v1/{plural}"),
                &document.value,
            )
            .await
            .with_context(|| policy.name.to_owned())?;
        }
        let set = PolicySet::from_documents(policy.name, &documents)
            .map_err(|errors| anyhow::anyhow!("{}: {errors:?}", policy.name))?;
        // The namespace as the apiserver stores it (with its name label).
        let mut stored = namespace.clone();
        stored["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
        sets.push((policy, name, set, stored));
    }
    // Wait until every binding is in force: an object the policy denies must be denied.
    let deadline = Instant::now() + PROPAGATION;
    for (policy, name, set, stored) in &sets {
        let namespaces = Namespaces::from(vec![stored.clone()]);
        let ctx = EvalContext {
            namespaces: &namespaces,
            ..EvalContext::default()
        };
        let probe = objects(&mut Rng::new(SEED ^ 0xff), policy, name)
            .into_iter()
            .find(|object| {
                let view = admission_view(object).unwrap().object;
                let request = AdmissionRequest::create(view).unwrap();
                !set.evaluate(&request, &ctx).denials.is_empty()
            })
            .with_context(|| format!("{}: no object the policy denies", policy.name))?;
        loop {
            if dry_run(client, &probe).await?.is_err() {
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "{}: not in force {PROPAGATION:?} after creation",
                policy.name
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    let mut problems = Vec::new();
    let (mut compared, mut denied) = (0usize, 0usize);
    for (policy, name, set, stored) in &sets {
        let namespaces = Namespaces::from(vec![stored.clone()]);
        let ctx = EvalContext {
            namespaces: &namespaces,
            ..EvalContext::default()
        };
        for object in objects(&mut rng, policy, name) {
            let apiserver = dry_run(client, &object).await?;
            compared += 1;
            // An object the apiserver finds invalid never reaches the policy: the view must
            // refuse it too.
            let ours = match admission_view(&object) {
                Ok(view) => {
                    let request = AdmissionRequest::create(view.object)?;
                    set.evaluate(&request, &ctx)
                        .denial_message()
                        .map(str::to_owned)
                }
                Err(invalid) => Some(invalid.to_string()),
            };
            let agree = match (&apiserver, &ours) {
                (Ok(()), None) => true,
                (Err(message), Some(ours)) if ours.starts_with("invalid: ") => {
                    message.contains(" is invalid: ")
                }
                (Err(message), Some(ours)) => {
                    denied += 1;
                    message.ends_with(ours.as_str())
                }
                _ => false,
            };
            if !agree {
                problems.push(format!(
                    "{}: {}\n    apiserver: {apiserver:?}\n    palisade:  {ours:?}",
                    policy.name, object["metadata"]["name"],
                ));
            }
        }
    }
    eprintln!(
        "user policies: {} policies, {compared} objects, {denied} denied by both, {} disagree (seed {SEED:#x})",
        all.len(),
        problems.len()
    );
    ensure!(
        problems.is_empty(),
        "{} of {compared} verdicts disagree:\n{}",
        problems.len(),
        problems.join("\n")
    );
    Ok(())
}
