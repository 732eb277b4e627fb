//! Proof that Palisade's built-in policy library does on a real kube-apiserver exactly what its
//! test suites say: every case of every entry's `palisade-test.yaml` is sent to the test bed's
//! apiserver with server-side dry-run, and the apiserver's answer (rejected / admitted with a
//! warning / admitted) must equal the case's `expect`, with the message matching `message`.
//!
//! The library is read through `palisade_engine::library`, i.e. from the files compiled into
//! Palisade. Entries run one after another on each cluster (their bindings are cluster-wide, so
//! the system-namespace cases really exercise the exclusion); clusters run concurrently.
//!
//! Needs running clusters: `e2e/clusters up 1 && eval "$(e2e/clusters env)"`. Without them the
//! test fails and says so. Everything created is deleted again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

use std::collections::{BTreeMap, HashMap};

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, PostParams};
use kube::discovery::Scope;
use kube::Client;
use palisade_engine::library::{self, Entry, EntryKind, SYSTEM_NAMESPACES};
use palisade_engine::source::parse_documents;
use palisade_engine::suite::{CaseResult, CaseStatus, Files, Summary};
use palisade_engine::{Action, Mode};
use palisade_testbed::{delete_namespace, send_with_warnings, unique_name, Cluster};
use regex::Regex;
use serde_json::{json, Value};

#[tokio::test]
async fn every_library_case_holds_on_the_apiserver() {
    let tb = testbed();
    let entries = library::entries().unwrap_or_else(|e| panic!("{e}"));
    on_every_cluster(&tb, move |cluster| {
        let entries = entries.clone();
        async move { prove_library(&cluster, &entries).await }
    })
    .await;
}

async fn prove_library(cluster: &Cluster, entries: &[Entry]) -> Result<()> {
    let client = cluster.admin_client().await?;
    // The parameters live in palisade-system; the test bed does not have it by itself.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let made_palisade_system = namespaces.get_opt("palisade-system").await?.is_none();
    if made_palisade_system {
        create_namespace(&client, "palisade-system", json!({})).await?;
    }
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for entry in entries {
        let mut run = EntryRun::new(client.clone(), entry);
        let outcome = run.prove(&mut results).await;
        run.cleanup().await;
        if let Err(e) = outcome {
            errors.push(format!("{}: {e:#}", entry.id));
        }
    }
    if made_palisade_system {
        delete_namespace(&client, "palisade-system").await?;
    }
    let summary = Summary::of(&results);
    eprintln!("{}: library on the apiserver: {summary}", cluster.name);
    let failed: Vec<String> = results
        .iter()
        .filter(|r| r.status != CaseStatus::Passed)
        .map(ToString::to_string)
        .collect();
    ensure!(
        failed.is_empty() && errors.is_empty(),
        "{summary}\n{}\n{}",
        failed.join("\n"),
        errors.join("\n")
    );
    let expected: usize = entries.iter().map(case_count).sum();
    ensure!(
        summary.passed == expected,
        "{} cases passed, the library has {expected}",
        summary.passed
    );
    Ok(())
}

fn case_count(entry: &Entry) -> usize {
    suite_of(entry)
        .ok()
        .and_then(|s| s["cases"].as_array().map(Vec::len))
        .unwrap_or(0)
}

fn suite_of(entry: &Entry) -> Result<Value> {
    let docs = parse_documents(
        &format!("library/{}/palisade-test.yaml", entry.id),
        entry.test_yaml,
    )?;
    docs.into_iter()
        .next()
        .map(|d| d.value)
        .ok_or_else(|| anyhow!("empty suite"))
}

/// What the apiserver did with one request.
#[derive(Debug)]
enum Outcome {
    Rejected { code: u16, message: String },
    Admitted { warnings: Vec<String> },
}

/// One case, resolved: the request to send.
#[derive(Clone)]
struct Case {
    name: String,
    operation: String,
    /// A subresource such as `ephemeralcontainers`, or empty.
    sub_resource: String,
    object: Value,
    expect: Action,
    message: Option<Regex>,
}

/// Everything one entry's run created, so that it can be removed again.
struct EntryRun<'a> {
    client: Client,
    entry: &'a Entry,
    /// Suite namespace name → namespace created for this run.
    namespaces: HashMap<String, String>,
    created_namespaces: Vec<String>,
    /// (resource, name) of cluster-scoped objects and params created for real.
    created: Vec<(ApiResource, Option<String>, String)>,
    resources: HashMap<(String, String), (ApiResource, bool)>,
    /// A case the entry denies, to see when its policy is out of force again.
    probe: Option<Case>,
}

impl<'a> EntryRun<'a> {
    fn new(client: Client, entry: &'a Entry) -> Self {
        Self {
            client,
            entry,
            namespaces: HashMap::new(),
            created_namespaces: Vec::new(),
            created: Vec::new(),
            resources: HashMap::new(),
            probe: None,
        }
    }

    /// The API resource of an object and whether it is namespaced.
    async fn resource_of(&mut self, object: &Value) -> Result<(ApiResource, bool)> {
        let api_version = object["apiVersion"].as_str().unwrap_or_default().to_owned();
        let kind = object["kind"].as_str().unwrap_or_default().to_owned();
        let key = (api_version.clone(), kind.clone());
        if let Some(found) = self.resources.get(&key) {
            return Ok(found.clone());
        }
        let (resource, caps) = discover(&self.client, object).await?;
        let found = (resource, caps.scope == Scope::Namespaced);
        self.resources.insert(key, found.clone());
        Ok(found)
    }

    fn url(&self, resource: &ApiResource, namespace: Option<&str>) -> String {
        let api: Api<DynamicObject> = match namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, resource),
            None => Api::all_with(self.client.clone(), resource),
        };
        api.resource_url().to_owned()
    }

    /// Creates the namespace standing for the suite's `name` (labels from the suite, Pod Security
    /// labels when the suite has a level) and returns its real name.
    async fn namespace_for(&mut self, name: &str, suite: &Value, fresh: bool) -> Result<String> {
        if SYSTEM_NAMESPACES.contains(&name) {
            return Ok(name.to_owned());
        }
        if !fresh {
            if let Some(real) = self.namespaces.get(name) {
                return Ok(real.clone());
            }
        }
        let mut labels: BTreeMap<String, String> = suite["namespaces"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|ns| ns["metadata"]["name"] == name)
            .and_then(|ns| ns["metadata"]["labels"].as_object())
            .map(|labels| {
                labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        if let EntryKind::PodSecurity { level, version } = &self.entry.kind {
            for label in Mode::Enforce.psa_labels() {
                labels.insert(label.key().to_owned(), level.clone());
                labels.insert(format!("{}-version", label.key()), version.clone());
            }
        }
        let real = unique_name(&format!("lib-{}", &name[..name.len().min(30)]));
        labels.insert(TEST_LABEL.to_owned(), self.entry.id.to_owned());
        create_namespace(&self.client, &real, json!(labels)).await?;
        self.created_namespaces.push(real.clone());
        if !fresh {
            self.namespaces.insert(name.to_owned(), real.clone());
        }
        Ok(real)
    }

    /// Puts `object` into its real namespace (suite rule: a namespaced object without one is in
    /// `default`). Cluster-scoped objects are left alone.
    async fn place(&mut self, object: &mut Value, suite: &Value, fresh: bool) -> Result<()> {
        let (_, namespaced) = self.resource_of(object).await?;
        if !namespaced {
            return Ok(());
        }
        let name = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_owned();
        let real = self.namespace_for(&name, suite, fresh).await?;
        object["metadata"]["namespace"] = json!(real);
        Ok(())
    }

    async fn prove(&mut self, results: &mut Vec<CaseResult>) -> Result<()> {
        let entry = self.entry;
        let suite_name = format!("library/{}/palisade-test.yaml", entry.id);
        let suite = suite_of(entry)?;

        // Cases, with their objects placed in real namespaces. UPDATE and DELETE cases each get a
        // namespace of their own holding the stored old object, created before any policy exists.
        let mut cases = Vec::new();
        for raw in suite["cases"].as_array().into_iter().flatten() {
            let case = self.resolve_case(raw, &suite).await?;
            cases.push(case);
        }

        // Parameters, then policies and bindings.
        for param in suite["params"].as_array().into_iter().flatten() {
            self.create_for_real(param.clone(), "parameter").await?;
        }
        for file in suite["policies"].as_array().into_iter().flatten() {
            let file = file.as_str().unwrap_or_default();
            let text = entry.read(file).map_err(|e| anyhow!(e))?;
            let docs = parse_documents(&format!("library/{}/{file}", entry.id), &text)?;
            for doc in docs {
                let kind = doc.value["kind"].as_str().unwrap_or_default();
                if kind.starts_with("ValidatingAdmissionPolicy") {
                    self.create_for_real(doc.value, "policy").await?;
                }
            }
        }
        self.probe = cases.iter().find(|c| c.expect == Action::Deny).cloned();
        self.wait_until_effective(&cases).await?;

        for case in &cases {
            let outcome = self.send(case, true).await?;
            let status = judge(entry, case, &outcome);
            results.push(CaseResult {
                suite: suite_name.clone(),
                name: case.name.clone(),
                status,
            });
        }
        Ok(())
    }

    async fn resolve_case(&mut self, raw: &Value, suite: &Value) -> Result<Case> {
        let name = raw["name"].as_str().unwrap_or_default().to_owned();
        ensure!(
            raw.get("userInfo").is_none(),
            "case {name:?}: userInfo is not supported by the test-bed runner yet"
        );
        let mut operation = raw["operation"].as_str().unwrap_or("CREATE").to_owned();
        let (mut object, mut old_object) =
            (raw.get("object").cloned(), raw.get("oldObject").cloned());
        if let Some(file) = raw["file"].as_str() {
            let text = self.entry.read(file).map_err(|e| anyhow!(e))?;
            let docs = parse_documents(file, &text)?;
            let value = docs
                .into_iter()
                .next()
                .map(|d| d.value)
                .ok_or_else(|| anyhow!("case {name:?}: {file} is empty"))?;
            if value["kind"] == "AdmissionReview" {
                let request = &value["request"];
                if raw.get("operation").is_none() {
                    if let Some(op) = request["operation"].as_str() {
                        operation = op.to_owned();
                    }
                }
                object = object.or_else(|| request.get("object").cloned());
                old_object = old_object.or_else(|| request.get("oldObject").cloned());
            } else {
                object = Some(value);
            }
        }
        let expect = raw["expect"]
            .as_str()
            .and_then(Action::parse)
            .ok_or_else(|| anyhow!("case {name:?}: expect must be allow, audit, warn or deny"))?;
        let message = raw["message"]
            .as_str()
            .map(Regex::new)
            .transpose()
            .with_context(|| format!("case {name:?}: message"))?;
        let stored_first = matches!(operation.as_str(), "UPDATE" | "DELETE");
        let mut object = match (object, operation.as_str()) {
            (Some(object), _) => object,
            (None, "DELETE") => old_object
                .clone()
                .ok_or_else(|| anyhow!("case {name:?}: DELETE needs oldObject"))?,
            (None, _) => bail!("case {name:?}: no object"),
        };
        self.place(&mut object, suite, stored_first).await?;
        if stored_first {
            let mut old = old_object
                .clone()
                .ok_or_else(|| anyhow!("case {name:?}: {operation} needs oldObject"))?;
            // The old object lives where the new one is sent.
            if let Some(ns) = object["metadata"]["namespace"].as_str() {
                old["metadata"]["namespace"] = json!(ns);
            }
            self.create_for_real(old, "old object").await?;
        }
        let sub_resource = raw["subResource"].as_str().unwrap_or_default().to_owned();
        Ok(Case {
            name,
            operation,
            sub_resource,
            object,
            expect,
            message,
        })
    }

    /// Creates `object` for real (not dry-run), replacing a leftover of an earlier run.
    async fn create_for_real(&mut self, object: Value, what: &str) -> Result<()> {
        let (resource, namespaced) = self.resource_of(&object).await?;
        let namespace = namespaced
            .then(|| object["metadata"]["namespace"].as_str().map(str::to_owned))
            .flatten();
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let api: Api<DynamicObject> = match &namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &resource),
            None => Api::all_with(self.client.clone(), &resource),
        };
        let _ = api.delete(&name, &DeleteParams::default()).await;
        let typed: DynamicObject = serde_json::from_value(object)?;
        api.create(&PostParams::default(), &typed)
            .await
            .with_context(|| format!("creating the {what} {name}"))?;
        self.created.push((resource, namespace, name));
        Ok(())
    }

    /// Sends the case's request (dry-run unless `dry_run` is false) and reports what happened.
    async fn send(&mut self, case: &Case, dry_run: bool) -> Result<Outcome> {
        let (resource, namespaced) = self.resource_of(&case.object).await?;
        let namespace = namespaced
            .then(|| case.object["metadata"]["namespace"].as_str())
            .flatten();
        let url = self.url(&resource, namespace);
        let name = case.object["metadata"]["name"].as_str().unwrap_or_default();
        let pp = PostParams {
            dry_run,
            ..PostParams::default()
        };
        let request = kube::core::Request::new(url);
        let request = match case.operation.as_str() {
            "CREATE" if case.sub_resource.is_empty() => {
                request.create(&pp, serde_json::to_vec(&case.object)?)
            }
            "CREATE" => request.create_subresource(
                &case.sub_resource,
                name,
                &pp,
                serde_json::to_vec(&case.object)?,
            ),
            "UPDATE" => {
                let mut object = case.object.clone();
                let api: Api<DynamicObject> = match namespace {
                    Some(ns) => Api::namespaced_with(self.client.clone(), ns, &resource),
                    None => Api::all_with(self.client.clone(), &resource),
                };
                let stored = api
                    .get(name)
                    .await
                    .context("reading the stored old object")?;
                object["metadata"]["resourceVersion"] = json!(stored.metadata.resource_version);
                let body = serde_json::to_vec(&object)?;
                if case.sub_resource.is_empty() {
                    request.replace(name, &pp, body)
                } else {
                    request.replace_subresource(&case.sub_resource, name, &pp, body)
                }
            }
            "DELETE" => {
                let dp = DeleteParams {
                    dry_run,
                    ..DeleteParams::default()
                };
                request.delete(name, &dp)
            }
            other => bail!("case {:?}: operation {other} is not supported", case.name),
        }
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
        })
    }

    /// Polls until the policies (and their parameters, and namespace labels) are in force: the
    /// first deny case is rejected by them with its message, and the first allow case admitted.
    async fn wait_until_effective(&mut self, cases: &[Case]) -> Result<()> {
        let probe_deny = cases.iter().find(|c| c.expect == Action::Deny);
        let probe_allow = cases.iter().find(|c| c.expect == Action::Allow);
        let deadline = Instant::now() + PROPAGATION;
        loop {
            let mut ready = true;
            let mut last = String::new();
            if let Some(case) = probe_deny {
                let outcome = self.send(case, true).await?;
                if judge(self.entry, case, &outcome) != CaseStatus::Passed {
                    ready = false;
                    last = format!("{:?}: {outcome:?}", case.name);
                }
            }
            if let Some(case) = probe_allow {
                let outcome = self.send(case, true).await?;
                if judge(self.entry, case, &outcome) != CaseStatus::Passed {
                    ready = false;
                    last = format!("{:?}: {outcome:?}", case.name);
                }
            }
            if ready {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "not in force {PROPAGATION:?} after creation; last probe {last}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Removes everything the run created. Policies and bindings go first, and the next entry
    /// must not meet them: a deleted policy stays in force until the apiserver's informer sees the
    /// deletion, so we wait until the entry's deny probe is no longer rejected by it.
    async fn cleanup(&mut self) {
        let created = std::mem::take(&mut self.created);
        let (policies, others): (Vec<_>, Vec<_>) = created
            .into_iter()
            .rev()
            .partition(|(r, _, _)| r.kind.starts_with("ValidatingAdmissionPolicy"));
        for (resource, namespace, name) in policies.iter().chain(others.iter()) {
            let api: Api<DynamicObject> = match namespace {
                Some(ns) => Api::namespaced_with(self.client.clone(), ns, resource),
                None => Api::all_with(self.client.clone(), resource),
            };
            if let Err(e) = api.delete(name, &DeleteParams::default()).await {
                eprintln!("cleanup of {} {name}: {e}", resource.kind);
            }
            if resource.kind == "ValidatingAdmissionPolicy" {
                self.wait_until_out_of_force().await;
            }
        }
        for ns in &self.created_namespaces {
            if let Err(e) = delete_namespace(&self.client, ns).await {
                eprintln!("cleanup of namespace {ns}: {e}");
            }
        }
    }

    async fn wait_until_out_of_force(&mut self) {
        let Some(probe) = self.probe.clone() else {
            return;
        };
        let source = format!("ValidatingAdmissionPolicy '{}'", self.entry.id);
        let deadline = Instant::now() + PROPAGATION;
        while Instant::now() < deadline {
            match self.send(&probe, true).await {
                Ok(Outcome::Rejected { message, .. }) if message.contains(&source) => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                _ => return,
            }
        }
        eprintln!(
            "{}: still in force {PROPAGATION:?} after deletion",
            self.entry.id
        );
    }
}

/// Whether the apiserver's outcome is what the case expects.
fn judge(entry: &Entry, case: &Case, outcome: &Outcome) -> CaseStatus {
    let matches = |text: &str| case.message.as_ref().is_none_or(|re| re.is_match(text));
    let want = case.message.as_ref().map(Regex::as_str).unwrap_or("");
    match (case.expect, outcome) {
        (Action::Deny, Outcome::Rejected { code, message }) => {
            // The rejection must come from the entry itself, not from validation or another plugin.
            let source = match &entry.kind {
                EntryKind::Vap => format!(
                    "ValidatingAdmissionPolicy '{0}' with binding '{0}' denied request: ",
                    entry.id
                ),
                EntryKind::PodSecurity { level, version } => {
                    format!("violates PodSecurity \"{level}:{version}\"")
                }
            };
            if !message.contains(&source) {
                CaseStatus::Failed(format!(
                    "rejected ({code}), but not by {}: {message}",
                    entry.id
                ))
            } else if !matches(message) {
                CaseStatus::Failed(format!(
                    "rejected with {message:?}, which does not match /{want}/"
                ))
            } else {
                CaseStatus::Passed
            }
        }
        (Action::Warn, Outcome::Admitted { warnings }) if !warnings.is_empty() => {
            if warnings.iter().any(|w| matches(w)) {
                CaseStatus::Passed
            } else {
                CaseStatus::Failed(format!("warnings {warnings:?} do not match /{want}/"))
            }
        }
        // Audit results reach only the audit log; on the wire they look like an allow.
        (Action::Allow | Action::Audit, Outcome::Admitted { warnings }) if warnings.is_empty() => {
            CaseStatus::Passed
        }
        (expect, outcome) => CaseStatus::Failed(format!("expected {expect}, got {outcome:?}")),
    }
}
