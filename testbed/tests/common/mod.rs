//! What every test-bed proof starts with: the test bed from the environment (failing loudly when it
//! is not configured) and a way to run a check on every cluster at once.
#![allow(dead_code, clippy::panic)]

use std::future::Future;
use std::time::Duration;

use anyhow::Result;
use palisade_testbed::{Cluster, Testbed};

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
