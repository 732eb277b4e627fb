//! What every test-bed proof starts with: the test bed from the environment (failing loudly when it
//! is not configured) and a way to run a check on every cluster at once.
#![allow(dead_code, clippy::panic)]

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use palisade_testbed::{create_with_warnings, Cluster, Testbed};

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
    let mut set = tokio::task::JoinSet::new();
    for cluster in tb.clusters.clone() {
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
