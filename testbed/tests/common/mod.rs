//! What every test-bed proof starts with: the test bed from the environment (failing loudly when it
//! is not configured) and a way to run a check on every cluster at once.
#![allow(dead_code, clippy::panic)]

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context as _, Result};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::{pinned_kind, ApiCapabilities};
use kube::Client;
use palisade_engine::apiview::into_admission_view;
use palisade_engine::bundle::{Bundle, Context};
use palisade_engine::sample::{self, Rng};
use palisade_engine::{Action, AdmissionRequest, EngineKind, Finding};
use palisade_testbed::{create_with_warnings, send_with_warnings, Cluster, Testbed};
use serde_json::{json, Value};

/// How long a new policy, binding, parameter or namespace label may take to reach admission.
pub const PROPAGATION: Duration = Duration::from_secs(45);
/// Marks what a test created, so it can be found and cleaned up.
pub const TEST_LABEL: &str = "palisade-testbed/test";

/// The test bed described by `TESTBED_*`, or a loud failure saying how to start it.
pub fn testbed() -> Testbed {
    Testbed::from_env()
        .unwrap_or_else(|e| panic!("\n\n*** CLUSTER TEST BED NOT CONFIGURED ***\n{e}\n\n"))
}

/// Runs `check` on every cluster at once and fails with every cluster's error.
pub async fn on_every_cluster<F, Fut>(tb: &Testbed, check: F)
where
    F: Fn(Cluster) -> Fut,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    on_clusters(tb.clusters.clone(), check).await;
}

/// Runs `check` on each of `clusters` at once and fails with every cluster's error.
pub async fn on_clusters<F, Fut>(clusters: Vec<Cluster>, check: F)
where
    F: Fn(Cluster) -> Fut,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    for cluster in clusters {
        let name = cluster.name.clone();
        let fut = check(cluster);
        set.spawn(async move { (name, fut.await) });
    }
    let mut failures = Vec::new();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((_, Ok(()))) => {}
            Ok((name, Err(e))) => failures.push(format!("{name}: {e:#}")),
            Err(e) => failures.push(format!("task failed: {e}")),
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

/// Polls `probe` until it returns `Some`, for at most `limit`; the error names `what` and the
/// last thing seen.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, String>>,
{
    let deadline = Instant::now() + limit;
    let mut last = String::from("nothing yet");
    loop {
        match probe().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(seen) => last = seen,
        }
        if Instant::now() >= deadline {
            bail!("{what}: not seen within {limit:?}; last seen: {last}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

pub fn dry_run() -> PostParams {
    PostParams {
        dry_run: true,
        ..PostParams::default()
    }
}

/// The outcome of creating a Pod: admitted with these warnings, or denied with this message.
pub async fn try_create(
    api: &Api<Pod>,
    pp: &PostParams,
    pod: &Pod,
) -> Result<Result<Vec<String>, String>> {
    match create_with_warnings(api, pp, pod).await {
        Ok(created) => Ok(Ok(created.warnings)),
        Err(palisade_testbed::Error::Kube(kube::Error::Api(st))) => Ok(Err(st.message.clone())),
        Err(e) => Err(e.into()),
    }
}

/// The last lines of the log file named by the environment variable `var` (one the test bed
/// exports, such as `TESTBED_GATEKEEPER_LOG_1`), for failure messages.
pub fn log_tail(var: &str) -> String {
    let Ok(path) = std::env::var(var) else {
        return String::new();
    };
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(15)..].join("\n");
    format!("\n--- last lines of {path} ---\n{tail}")
}

/// The objects a differential proof sends: `workloads` sample workloads (`w-0`, …), then `pods`
/// sample pods (`pod-0`, …), all generated from `seed`.
pub fn sample_objects(seed: u64, workloads: usize, pods: usize) -> Vec<Value> {
    let mut rng = Rng::new(seed);
    let mut objects: Vec<Value> = (0..workloads)
        .map(|i| sample::workload(&mut rng, &format!("w-{i}")))
        .collect();
    objects.extend((0..pods).map(|i| sample::pod(&mut rng, &format!("pod-{i}"))));
    objects
}

/// Print what a differential proof found wrong: each verdict that differs from the other side's,
/// then each generated object the apiserver itself refused.
pub fn print_findings(mismatches: &[String], invalid: &[String]) {
    for m in mismatches {
        eprintln!("MISMATCH {m}\n");
    }
    for m in invalid {
        eprintln!("INVALID {m}\n");
    }
}

/// A Pod labelled as made by the proof `proof` (`gatekeeper`, `kyverno`), with one container
/// named `container`, privileged or not.
pub fn proof_pod(proof: &str, name: &str, container: &str, privileged: bool) -> Pod {
    serde_json::from_value(json!({
        "metadata": { "name": name, "labels": { TEST_LABEL: proof } },
        "spec": { "containers": [{
            "name": container,
            "image": "registry.example/app:1.0",
            "securityContext": { "privileged": privileged }
        }]}
    }))
    .expect("a valid Pod")
}

/// Create the privileged Pod `pod` in `namespace` before any policy of the proof is there, so
/// only an audit or a background scan can find it; the Pods of that namespace.
pub async fn privileged_before_policies(
    client: &Client,
    namespace: &str,
    pod: &Pod,
) -> Result<Api<Pod>> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    pods.create(&PostParams::default(), pod)
        .await
        .context("creating the privileged Pod before any policy")?;
    Ok(pods)
}

/// The denials by `engine`'s policies in `bundle`'s verdict on `object` as an admission webhook
/// receives it (decoded and defaulted by the apiserver); an error when any policy could not be
/// evaluated.
pub fn webhook_denials(
    bundle: &Bundle,
    context: &Context,
    object: &Value,
    engine: EngineKind,
) -> Result<Vec<Finding>> {
    let view = into_admission_view(object.clone())
        .map_err(|e| anyhow!("the admission view refuses the object: {e}"))?;
    let verdict = bundle.evaluate(&AdmissionRequest::create(view.object)?, context);
    ensure!(
        verdict.not_evaluable.is_empty(),
        "the engine could not evaluate: {:?}",
        verdict.not_evaluable
    );
    Ok(verdict
        .findings
        .into_iter()
        .filter(|f| f.engine == engine && f.action == Action::Deny)
        .collect())
}

/// How a differential proof's engine and the other side (an admission webhook) judged the objects
/// sent to both: alike (admitted or denied), otherwise, or not at all (the apiserver itself
/// refused the object).
#[derive(Debug, Default)]
pub struct Compared {
    pub admitted: usize,
    pub denied: usize,
    /// Each object judged otherwise, described.
    pub mismatches: Vec<String>,
    /// Each object the apiserver refused for itself, with its message.
    pub invalid: Vec<String>,
}

impl Compared {
    /// Count an object judged by both sides, `ours` and `theirs` being their denials (`admitted`
    /// when ours are none): whether they agree. When not, `mismatch` describes the object.
    pub fn judge<T: PartialEq>(
        &mut self,
        ours: &T,
        theirs: &T,
        admitted: bool,
        mismatch: impl FnOnce() -> String,
    ) -> bool {
        if ours != theirs {
            self.mismatches.push(mismatch());
            return false;
        }
        if admitted {
            self.admitted += 1;
        } else {
            self.denied += 1;
        }
        true
    }

    /// An object the apiserver refused for itself, not the other side: a generator bug.
    pub fn refused(&mut self, message: &str, object: &Value) {
        self.invalid.push(format!("{message}\n{object:#}"));
    }

    /// Print what differs and the summary of the `proof` differential run with `seed` (`more`
    /// ends its line), then fail on any object the apiserver refused or any verdict that differs
    /// from `other`'s.
    pub fn finish(&self, proof: &str, seed: u64, more: &str, other: &str) -> Result<()> {
        print_findings(&self.mismatches, &self.invalid);
        eprintln!(
            "{proof} differential (seed {seed:#x}): {} admitted and {} denied alike, {} differ, \
             {} invalid{more}",
            self.admitted,
            self.denied,
            self.mismatches.len(),
            self.invalid.len()
        );
        ensure!(
            self.invalid.is_empty(),
            "{} generated objects were refused by the apiserver itself (printed above): a \
             generator bug",
            self.invalid.len()
        );
        ensure!(
            self.mismatches.is_empty(),
            "{} verdicts differ from {other}'s (printed above)",
            self.mismatches.len()
        );
        Ok(())
    }
}

/// The seed of a seeded test: `var` in the environment (decimal or `0x` hex), else `default`. A
/// value that is not a number fails loudly rather than quietly testing something else.
pub fn seed_from(var: &str, default: u64) -> u64 {
    let Ok(text) = std::env::var(var) else {
        return default;
    };
    let text = text.trim();
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.unwrap_or_else(|_| panic!("{var}={text} is not a number"))
}

/// The API resource of `object`'s apiVersion and kind, found by discovery.
pub async fn resource_of(client: &Client, object: &Value) -> Result<ApiResource> {
    Ok(discover(client, object).await?.0)
}

/// The API resource and capabilities (such as its scope) of `object`'s apiVersion and kind,
/// found by discovery.
pub async fn discover(client: &Client, object: &Value) -> Result<(ApiResource, ApiCapabilities)> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    pinned_kind(client, &GroupVersionKind::gvk(group, version, kind))
        .await
        .with_context(|| format!("discovering {api_version} {kind}"))
}

/// Creates the namespace `name` with `labels` (a JSON object of strings).
pub async fn create_namespace(client: &Client, name: &str, labels: Value) -> Result<()> {
    let ns: Namespace = serde_json::from_value(json!({
        "metadata": { "name": name, "labels": labels }
    }))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .with_context(|| format!("creating namespace {name}"))?;
    Ok(())
}

/// The answer to a server-side dry-run create of the namespaced `object`: `None` admitted,
/// `Some(message)` refused.
pub async fn dry_run_create(
    client: &Client,
    resource: &ApiResource,
    object: &Value,
) -> Result<Option<String>> {
    let ns = object["metadata"]["namespace"].as_str().unwrap_or_default();
    let url = Api::<DynamicObject>::namespaced_with(client.clone(), ns, resource)
        .resource_url()
        .to_owned();
    let request = kube::core::Request::new(url)
        .create(&dry_run(), serde_json::to_vec(object)?)
        .map_err(kube::Error::BuildRequest)?;
    let reply = send_with_warnings(client, request).await?;
    Ok((!reply.status.is_success()).then(|| reply.message()))
}

/// The engines the test bed can run beside a cluster (`e2e/clusters up --gatekeeper/--kyverno`).
#[derive(Clone, Copy)]
pub enum Beside {
    Gatekeeper,
    Kyverno,
}

/// Runs `check` on each cluster that has `engine` beside it, one after another, and fails with
/// every cluster's error; fails loudly, saying how to start one, when no cluster has it.
pub async fn on_each_cluster_with<F, Fut>(engine: Beside, check: F)
where
    F: Fn(Cluster) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let (has, name, var, option): (fn(&Cluster) -> bool, _, _, _) = match engine {
        Beside::Gatekeeper => (
            |c| c.gatekeeper,
            "GATEKEEPER",
            "TESTBED_GATEKEEPER_CLUSTERS",
            "--gatekeeper 1",
        ),
        Beside::Kyverno => (
            |c| c.kyverno,
            "KYVERNO",
            "TESTBED_KYVERNO_CLUSTERS",
            "--kyverno 1",
        ),
    };
    let clusters: Vec<Cluster> = testbed().clusters.into_iter().filter(has).collect();
    assert!(
        !clusters.is_empty(),
        "\n\n*** NO {name} IN THE TEST BED ***\n{var} is {:?}: start the clusters with it beside \
         one of them, `e2e/clusters up 1 {option}`, then `eval \"$(e2e/clusters env)\"` (see \
         e2e/README.md)\n\n",
        std::env::var(var).unwrap_or_default()
    );
    let mut failures = Vec::new();
    for cluster in clusters {
        let label = cluster.name.clone();
        if let Err(e) = check(cluster).await {
            failures.push(format!("{label}: {e:#}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}
