//! Differential test of the whole built-in library against a real kube-apiserver.
//!
//! Every ValidatingAdmissionPolicy of the library is installed with its binding (`[Deny]`) and its
//! sample parameters; Pod Security `restricted` is enforced (enforce, warn and audit labels, as
//! Palisade's `enforce` mode renders it) on some namespaces and `baseline` on another, one has no
//! level. A few hundred seeded objects from `palisade_engine::sample` (Pods and every workload
//! kind) are sent with a server-side dry-run create, and for each the engine (a `Bundle` with the
//! same policies and levels, and the namespaces in its `Context`) must agree with the apiserver:
//! admitted or denied; for a denial, the policy the apiserver names must be one the engine denies
//! with, with the same message; and the Pod Security warnings must be the same.
//!
//! The seed is printed; set `PALISADE_SAMPLE_SEED` to replay one.
//!
//! Needs a running cluster: `e2e/clusters up 1 && eval "$(e2e/clusters env)"`. Without it the test
//! fails and says so. Everything created is deleted again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

use std::collections::{BTreeMap, HashMap};

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, PostParams};
use kube::Client;
use palisade_engine::bundle::{Bundle, Context};
use palisade_engine::library::{self, EntryKind};
use palisade_engine::pss::{Level, LevelVersion};
use palisade_engine::sample;
use palisade_engine::source::parse_documents;
use palisade_engine::{Action, AdmissionRequest, EngineKind, Mode, Verdict};
use palisade_testbed::{delete_namespace, send_with_warnings, unique_name};
use serde_json::{json, Value};

/// Objects per run: workloads of every kind, then Pods.
const WORKLOADS: usize = 400;
const PODS: usize = 200;
const DEFAULT_SEED: u64 = 0x11b_d1ff_0001;
const VAP_MARK: &str = "ValidatingAdmissionPolicy '";

/// One namespace of the run: the generator's name for it, its real name, its labels and the
/// Pod Security level it enforces.
#[derive(Clone)]
struct Ns {
    real: String,
    labels: BTreeMap<String, String>,
    level: Option<LevelVersion>,
    created: bool,
}

/// The generator's namespaces, made real: `team-a` and `payments` enforce restricted, `team-b`
/// baseline, `default` nothing (but carries a label), `kube-system` is the real one.
fn plan_namespaces() -> HashMap<&'static str, Ns> {
    let mut plan = HashMap::new();
    for name in sample::NAMESPACES {
        let level = match *name {
            "team-a" | "payments" => Some(LevelVersion::latest(Level::Restricted)),
            "team-b" => Some(LevelVersion::latest(Level::Baseline)),
            _ => None,
        };
        if *name == "kube-system" {
            plan.insert(
                *name,
                Ns {
                    real: (*name).to_owned(),
                    labels: BTreeMap::new(),
                    level: None,
                    created: false,
                },
            );
            continue;
        }
        let mut labels = BTreeMap::new();
        labels.insert(
            "palisade-testbed/test".to_owned(),
            "library-differential".to_owned(),
        );
        labels.insert("env".to_owned(), (*name).to_owned());
        if let Some(lv) = level {
            for label in Mode::Enforce.psa_labels() {
                labels.insert(label.key().to_owned(), lv.level.as_str().to_owned());
                labels.insert(format!("{}-version", label.key()), lv.version.to_string());
            }
        }
        plan.insert(
            *name,
            Ns {
                real: unique_name(&format!("ldiff-{name}")),
                labels,
                level,
                created: true,
            },
        );
    }
    plan
}

/// The library's VAP documents (policies, bindings) and the sample parameters.
fn library_documents() -> (Vec<Value>, Vec<Value>) {
    let mut policies = Vec::new();
    let mut params = Vec::new();
    for entry in library::entries().unwrap() {
        if entry.kind != EntryKind::Vap {
            continue;
        }
        let docs = parse_documents(
            &format!("library/{}/policy.yaml", entry.id),
            entry.policy_yaml,
        )
        .unwrap();
        for doc in docs {
            let kind = doc.value["kind"].as_str().unwrap_or_default();
            if kind.starts_with("ValidatingAdmissionPolicy") {
                policies.push(doc.value);
            } else {
                params.push(doc.value);
            }
        }
    }
    (policies, params)
}

/// The engine's view of one namespace: every library VAP and the namespace's Pod Security level.
fn bundle_for(ns: &Ns) -> Bundle {
    let mut bundle = Bundle::default();
    for entry in library::entries().unwrap() {
        if entry.kind == EntryKind::Vap {
            bundle.add_library_entry(&entry).unwrap();
        }
    }
    if let Some(lv) = ns.level {
        bundle.add_pod_security(lv, Mode::Enforce);
    }
    bundle
}

/// What the apiserver did with one dry-run create.
#[derive(Debug)]
enum Outcome {
    Rejected {
        code: u16,
        message: String,
        warnings: Vec<String>,
    },
    Admitted {
        warnings: Vec<String>,
    },
}

struct Run {
    client: Client,
    resources: HashMap<String, ApiResource>,
    /// (resource, namespace, name) of everything created for real, in order.
    created: Vec<(ApiResource, Option<String>, String)>,
}

impl Run {
    async fn resource_of(&mut self, object: &Value) -> Result<ApiResource> {
        let api_version = object["apiVersion"].as_str().unwrap_or_default().to_owned();
        let kind = object["kind"].as_str().unwrap_or_default().to_owned();
        let key = format!("{api_version}/{kind}");
        if let Some(found) = self.resources.get(&key) {
            return Ok(found.clone());
        }
        let (resource, _) = discover(&self.client, object).await?;
        self.resources.insert(key, resource.clone());
        Ok(resource)
    }

    fn api(&self, resource: &ApiResource, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, resource),
            None => Api::all_with(self.client.clone(), resource),
        }
    }

    /// Creates `object` for real, replacing a leftover of an earlier run.
    async fn create_for_real(&mut self, object: Value) -> Result<()> {
        let resource = self.resource_of(&object).await?;
        let namespace = object["metadata"]["namespace"].as_str().map(str::to_owned);
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let api = self.api(&resource, namespace.as_deref());
        let _ = api.delete(&name, &DeleteParams::default()).await;
        let typed: DynamicObject = serde_json::from_value(object)?;
        api.create(&PostParams::default(), &typed)
            .await
            .with_context(|| format!("creating {} {name}", resource.kind))?;
        self.created.push((resource, namespace, name));
        Ok(())
    }

    async fn dry_run(&mut self, object: &Value) -> Result<Outcome> {
        let resource = self.resource_of(object).await?;
        let namespace = object["metadata"]["namespace"].as_str();
        let url = self.api(&resource, namespace).resource_url().to_owned();
        let pp = PostParams {
            dry_run: true,
            ..PostParams::default()
        };
        let request = kube::core::Request::new(url)
            .create(&pp, serde_json::to_vec(object)?)
            .map_err(kube::Error::BuildRequest)?;
        let reply = send_with_warnings(&self.client, request).await?;
        if reply.status.is_success() {
            return Ok(Outcome::Admitted {
                warnings: reply.warnings,
            });
        }
        Ok(Outcome::Rejected {
            code: reply.status.as_u16(),
            message: reply.message(),
            warnings: reply.warnings,
        })
    }

    async fn cleanup(&mut self, namespaces: &HashMap<&'static str, Ns>) {
        let created = std::mem::take(&mut self.created);
        for (resource, namespace, name) in created.iter().rev() {
            let api = self.api(resource, namespace.as_deref());
            if let Err(e) = api.delete(name, &DeleteParams::default()).await {
                eprintln!("cleanup of {} {name}: {e}", resource.kind);
            }
        }
        // A deleted policy stays in force until the apiserver sees the deletion; wait for that,
        // so that tests run after this one do not meet the library.
        let probe = probe_pod(&namespaces["default"].real);
        let deadline = Instant::now() + PROPAGATION;
        while Instant::now() < deadline {
            match self.dry_run(&probe).await {
                Ok(Outcome::Rejected { message, .. }) if message.contains(VAP_MARK) => {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                _ => break,
            }
        }
        for ns in namespaces.values().filter(|ns| ns.created) {
            if let Err(e) = delete_namespace(&self.client, &ns.real).await {
                eprintln!("cleanup of namespace {}: {e}", ns.real);
            }
        }
    }
}

/// A Pod that breaks nearly every library policy (and Pod Security baseline).
fn probe_pod(namespace: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "probe", "namespace": namespace},
        "spec": {"hostPID": true, "containers": [{"name": "c", "image": "busybox:latest",
            "securityContext": {"privileged": true}}]}})
}

#[tokio::test]
async fn the_library_agrees_with_the_apiserver() {
    let tb = testbed();
    on_every_cluster(&tb, |cluster| async move {
        let client = cluster.admin_client().await?;
        let namespaces = plan_namespaces();
        let made_palisade_system = Api::<Namespace>::all(client.clone())
            .get_opt("palisade-system")
            .await?
            .is_none();
        if made_palisade_system {
            create_namespace(&client, "palisade-system", json!({})).await?;
        }
        let mut run = Run {
            client: client.clone(),
            resources: HashMap::new(),
            created: Vec::new(),
        };
        let result = async {
            for ns in namespaces.values().filter(|ns| ns.created) {
                create_namespace(&client, &ns.real, json!(ns.labels)).await?;
            }
            compare(&mut run, &namespaces).await
        }
        .await;
        run.cleanup(&namespaces).await;
        if made_palisade_system {
            delete_namespace(&client, "palisade-system").await?;
        }
        result
    })
    .await;
}

async fn compare(run: &mut Run, namespaces: &HashMap<&'static str, Ns>) -> Result<()> {
    let (policies, params) = library_documents();
    for param in &params {
        run.create_for_real(param.clone()).await?;
    }
    for policy in &policies {
        run.create_for_real(policy.clone()).await?;
    }
    wait_until_effective(run, namespaces).await?;

    // The engine, one bundle per namespace (its Pod Security level), with every namespace known.
    let context = Context {
        namespaces: namespaces
            .values()
            .filter(|ns| ns.created)
            .map(|ns| {
                let mut labels = ns.labels.clone();
                labels.insert("kubernetes.io/metadata.name".into(), ns.real.clone());
                json!({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": ns.real, "labels": labels}})
            })
            .collect(),
        ..Context::default()
    };
    let bundles: HashMap<&str, Bundle> = namespaces
        .iter()
        .map(|(name, ns)| (*name, bundle_for(ns)))
        .collect();

    let seed = seed_from("PALISADE_SAMPLE_SEED", DEFAULT_SEED);
    eprintln!("library differential: seed {seed:#x} (PALISADE_SAMPLE_SEED), {WORKLOADS} workloads + {PODS} pods");
    let objects = sample_objects(seed, WORKLOADS, PODS);

    let mut tally = Tally::default();
    let mut mismatches = Vec::new();
    let mut invalid = Vec::new();
    for object in &objects {
        let generated_ns = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default");
        let ns = &namespaces[generated_ns];
        let mut object = object.clone();
        object["metadata"]["namespace"] = json!(ns.real);
        let request = AdmissionRequest::create(object.clone())?;
        let verdict = bundles[generated_ns].evaluate(&request, &context);
        let outcome = run.dry_run(&object).await?;
        // Policies deny with 422 (reason Invalid) unless they say otherwise, Pod Security with
        // 403; anything else is the apiserver's own validation: a generator bug.
        if let Outcome::Rejected { code, message, .. } = &outcome {
            let by_policy = message.contains(VAP_MARK) || message.contains("violates PodSecurity");
            if !by_policy || !matches!(code, 403 | 422) {
                invalid.push(format!("{code} {message}\n{}", pretty(&object)));
                continue;
            }
        }
        let problems = judge(&object, &verdict, &outcome, &mut tally);
        if !problems.is_empty() {
            mismatches.push((object, verdict, outcome, problems));
        }
    }

    // A disagreement could be a policy that reached admission late: send those once more.
    let mut confirmed = Vec::new();
    for (object, verdict, first, problems) in mismatches {
        let again = run.dry_run(&object).await?;
        let mut scratch = Tally::default();
        if judge(&object, &verdict, &again, &mut scratch).is_empty() {
            eprintln!(
                "library differential: {} agreed only when sent again (first: {first:?})",
                object["metadata"]["name"]
            );
            continue;
        }
        confirmed.push(format!(
            "{} {}/{}:\n  {}\n  apiserver: {again:?}\n  engine:    {:?}\n{}",
            object["kind"].as_str().unwrap_or_default(),
            object["metadata"]["namespace"].as_str().unwrap_or_default(),
            object["metadata"]["name"].as_str().unwrap_or_default(),
            problems.join("\n  "),
            verdict.findings,
            pretty(&object)
        ));
    }
    print_findings(&confirmed, &invalid);
    let compared = objects.len() - invalid.len();
    eprintln!(
        "library differential (seed {seed:#x}): {compared} objects compared, {} agree \
         ({} admitted, {} denied by a VAP, {} denied by Pod Security, {} with Pod Security \
         warnings), {} differ, {} invalid",
        compared - confirmed.len(),
        tally.admitted,
        tally.denied_vap,
        tally.denied_pss,
        tally.pss_warned,
        confirmed.len(),
        invalid.len()
    );
    eprintln!(
        "library differential: denials by what the apiserver named: {:?}",
        tally.named
    );
    ensure!(
        invalid.is_empty(),
        "{} generated objects were invalid for the apiserver (printed above): a generator bug",
        invalid.len()
    );
    if !confirmed.is_empty() {
        bail!(
            "{} of {compared} verdicts differ from the apiserver (printed above)",
            confirmed.len()
        );
    }
    ensure!(
        tally.admitted > 0 && tally.denied_vap > 0 && tally.denied_pss > 0 && tally.pss_warned > 0,
        "the objects are not varied enough: {tally:?}"
    );
    Ok(())
}

#[derive(Debug, Default)]
struct Tally {
    /// How often the apiserver named each policy (or Pod Security level) in a denial.
    named: BTreeMap<String, usize>,
    admitted: usize,
    denied_vap: usize,
    denied_pss: usize,
    pss_warned: usize,
}

fn pretty(object: &Value) -> String {
    serde_json::to_string_pretty(object).unwrap_or_default()
}

/// The policies a VAP rejection names: each `ValidatingAdmissionPolicy '<policy>' with binding
/// '<binding>' denied request: <message>` part of the apiserver's message, however several are
/// joined.
fn vap_denials(message: &str) -> Vec<&str> {
    let starts: Vec<usize> = message.match_indices(VAP_MARK).map(|(i, _)| i).collect();
    starts
        .iter()
        .enumerate()
        .map(|(n, start)| {
            let end = starts.get(n + 1).copied().unwrap_or(message.len());
            message[*start..end].trim_end_matches([',', ';', ' ', '\n', ']', '['])
        })
        .collect()
}

/// Every way the engine's verdict differs from the apiserver's outcome (empty: they agree).
fn judge(object: &Value, verdict: &Verdict, outcome: &Outcome, tally: &mut Tally) -> Vec<String> {
    let mut problems = Vec::new();
    let denials = |engine: EngineKind| -> Vec<&str> {
        verdict
            .findings
            .iter()
            .filter(|f| f.engine == engine && f.action == Action::Deny)
            .map(|f| f.message.as_str())
            .collect()
    };
    let engine_vap = denials(EngineKind::Vap);
    let engine_pss = denials(EngineKind::PodSecurity);
    let engine_warnings: Vec<&str> = verdict
        .findings
        .iter()
        .filter(|f| f.engine == EngineKind::PodSecurity && f.action == Action::Warn)
        .map(|f| f.message.as_str())
        .collect();
    if !verdict.not_evaluable.is_empty() {
        problems.push(format!(
            "engine could not evaluate: {:?}",
            verdict.not_evaluable
        ));
    }
    let warnings = match outcome {
        Outcome::Admitted { warnings } => {
            if verdict.action() == Action::Deny {
                problems.push("the apiserver admitted it, the engine denies it".into());
            } else {
                tally.admitted += 1;
            }
            warnings
        }
        Outcome::Rejected {
            message, warnings, ..
        } => {
            if verdict.action() != Action::Deny {
                problems.push("the apiserver denied it, the engine admits it".into());
            }
            if message.contains("violates PodSecurity") {
                // Pod Security Admission runs before the policies and is the one reported.
                let name = object["metadata"]["name"].as_str().unwrap_or_default();
                let ours: Vec<String> = engine_pss
                    .iter()
                    .map(|m| format!("pods \"{name}\" is forbidden: {m}"))
                    .collect();
                if ours.iter().any(|m| m == message) {
                    tally.denied_pss += 1;
                    let level = message.split('"').nth(3).unwrap_or_default();
                    *tally
                        .named
                        .entry(format!("PodSecurity {level}"))
                        .or_default() += 1;
                } else {
                    problems.push(format!(
                        "Pod Security denial differs:\n    apiserver: {message}\n    engine:    {ours:?}"
                    ));
                }
            } else {
                let theirs = vap_denials(message);
                if theirs.is_empty() {
                    problems.push(format!(
                        "rejected by neither a policy nor Pod Security: {message}"
                    ));
                }
                if !engine_pss.is_empty() {
                    problems.push(format!(
                        "the engine denies by Pod Security ({engine_pss:?}), which the apiserver would report first"
                    ));
                }
                // Which of several denying policies the apiserver reports is not predictable: it
                // takes the first in its policy cache, whose order changes whenever policies are
                // (re)created (seen across two runs of this test). So the named one must be among
                // the engine's denials, not necessarily its first.
                let missing: Vec<&&str> =
                    theirs.iter().filter(|t| !engine_vap.contains(t)).collect();
                if missing.is_empty() && !theirs.is_empty() {
                    tally.denied_vap += 1;
                    for denial in &theirs {
                        let policy = denial[VAP_MARK.len()..]
                            .split('\'')
                            .next()
                            .unwrap_or_default();
                        *tally.named.entry(policy.to_owned()).or_default() += 1;
                    }
                } else if !missing.is_empty() {
                    problems.push(format!(
                        "the apiserver denies with {missing:?}, the engine's denials are {engine_vap:?}"
                    ));
                }
            }
            warnings
        }
    };
    let mut theirs: Vec<&str> = warnings
        .iter()
        .map(String::as_str)
        .filter(|w| w.contains("PodSecurity"))
        .collect();
    let mut ours = engine_warnings.clone();
    theirs.sort_unstable();
    ours.sort_unstable();
    if theirs != ours {
        problems.push(format!(
            "Pod Security warnings differ:\n    apiserver: {theirs:?}\n    engine:    {ours:?}"
        ));
    } else if !theirs.is_empty() {
        tally.pss_warned += 1;
    }
    problems
}

/// Waits until the policies, their parameters and the namespace labels are in force: the probe
/// Pod is rejected by Pod Security in the labelled namespaces and by a policy in the others.
async fn wait_until_effective(run: &mut Run, namespaces: &HashMap<&'static str, Ns>) -> Result<()> {
    let deadline = Instant::now() + PROPAGATION;
    for (name, ns) in namespaces {
        if ns.real == "kube-system" {
            continue;
        }
        let want = if ns.level.is_some() {
            "violates PodSecurity"
        } else {
            VAP_MARK
        };
        loop {
            let outcome = run.dry_run(&probe_pod(&ns.real)).await?;
            if matches!(&outcome, Outcome::Rejected { message, .. } if message.contains(want)) {
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "{name}: not in force {PROPAGATION:?} after creation; last probe {outcome:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    // Every policy was created at once; give the slowest a moment to follow the first.
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(())
}

#[test]
fn several_vap_denials_are_split_apart() {
    let message = "pods \"p\" is forbidden: ValidatingAdmissionPolicy 'a' with binding 'a' denied \
                   request: one, ValidatingAdmissionPolicy 'b' with binding 'b' denied request: two";
    assert_eq!(
        vap_denials(message),
        [
            "ValidatingAdmissionPolicy 'a' with binding 'a' denied request: one",
            "ValidatingAdmissionPolicy 'b' with binding 'b' denied request: two"
        ]
    );
    assert!(vap_denials("pods \"p\" is forbidden: something else").is_empty());
}
