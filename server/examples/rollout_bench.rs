//! Rollout benchmark: the wall time to apply one policy (disallow-privileged, in enforce) to
//!
//! - 200 clusters simulated behind the cluster trait (each call waits `--latency-ms`, default 20),
//!   with the executor's concurrency limit checked against the most calls ever in flight; and
//! - the test bed's real clusters, when its variables are set (`eval "$(e2e/clusters env)"`).
//!
//! It also prints the process's peak resident memory. Run:
//! `cargo run --release -p palisade-server --example rollout_bench -- [--clusters N] [--latency-ms MS]`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use palisade_app::auth::{Principal, Role};
use palisade_app::clusters::ssr::{ClusterConnector, KubeConnector};
use palisade_app::clusters::NewCluster;
use palisade_app::db::{now_ms, Db};
use palisade_app::policies::Mode;
use palisade_app::rollouts::ssr::simulated::SimulatedFleet;
use palisade_app::rollouts::ssr::{service, Executor, Settings};
use palisade_app::rollouts::NewRollout;
use palisade_app::secrets::Sealer;

use support::arrange::{
    approved_rollout, bed_cluster, library_policy, register_all, to_every_cluster, token_cluster,
};
use support::{fresh_sqlite, num, peak_rss_mib};

const KEY: &str = "5b1f0c3e9a7d4e2f8c6b0a1d3e5f7a9b2c4d6e8f0a1b3c5d7e9f1a2b4c6d8e0f";

/// A fresh SQLite database with the policy and the given clusters; returns it and an approved
/// rollout of the policy to every cluster.
async fn arrange(
    connector: &dyn ClusterConnector,
    sealer: &Sealer,
    inputs: Vec<NewCluster>,
) -> (Db, String, std::path::PathBuf) {
    let name = format!("palisade-bench-{}-{}", std::process::id(), now_ms());
    let (db, dir) = fresh_sqlite(&name).await;
    let admin = Principal::new("admin", "Admin", Role::Admin);
    let author = Principal::new("author", "Author", Role::Author);
    let approver = Principal::new("approver", "Approver", Role::Approver);
    register_all(&db, sealer, connector, &admin, inputs).await;
    library_policy(&db, &author, "disallow-privileged").await;
    let rollout = NewRollout {
        note: "benchmark".into(),
        acknowledge_denials: true,
        ..to_every_cluster("disallow-privileged", Mode::Enforce)
    };
    let id = approved_rollout(&db, (&author, &approver), rollout, "").await;
    (db, id, dir)
}

/// Run the executor until the rollout is applied (every step applied); the wall time it took.
async fn execute(executor: &Executor, db: &Db, id: &str) -> Duration {
    let started = Instant::now();
    loop {
        executor.round(now_ms()).await.unwrap();
        let viewer = Principal::new("viewer", "Viewer", Role::Viewer);
        let rollout = service::get(db, &viewer, id).await.unwrap();
        match rollout.summary.state.as_str() {
            "applied" => {
                let took = started.elapsed();
                let not_applied: Vec<_> = rollout
                    .steps
                    .iter()
                    .filter(|s| s.state.as_str() != "applied")
                    .map(|s| (&s.cluster_name, s.state.as_str(), &s.message))
                    .collect();
                assert!(not_applied.is_empty(), "{not_applied:?}");
                return took;
            }
            "applying" | "pending_approval" => {}
            other => panic!("the rollout ended {other}"),
        }
    }
}

/// Delete every ValidatingAdmissionPolicy and binding Palisade manages on a test-bed cluster, as
/// its admin.
async fn remove_palisade_policies(cluster: &palisade_testbed::Cluster) {
    use k8s_openapi::api::admissionregistration::v1::{
        ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
    };
    use kube::api::{Api, DeleteParams, ListParams};

    let client = cluster.admin_client().await.unwrap();
    let (key, value) = palisade_engine::render::MANAGED_BY;
    let managed = ListParams::default().labels(&format!("{key}={value}"));
    let bindings: Api<ValidatingAdmissionPolicyBinding> = Api::all(client.clone());
    bindings
        .delete_collection(&DeleteParams::default(), &managed)
        .await
        .unwrap();
    let policies: Api<ValidatingAdmissionPolicy> = Api::all(client);
    policies
        .delete_collection(&DeleteParams::default(), &managed)
        .await
        .unwrap();
}

#[tokio::main]
async fn main() {
    let count = num("--clusters", 200);
    let latency = Duration::from_millis(num("--latency-ms", 20));
    let sealer = Arc::new(Sealer::from_hex(KEY).unwrap());
    let settings = Settings::default();

    let fleet = Arc::new(SimulatedFleet::new(latency));
    let inputs = (0..count)
        .map(|i| {
            let api_url = format!("https://sim-{i}.example:6443");
            token_cluster(format!("sim-{i}"), api_url, format!("token-{i}"))
        })
        .collect();
    let (db, id, dir) = arrange(fleet.as_ref(), &sealer, inputs).await;
    let executor = Executor::new(
        db.clone(),
        Some(sealer.clone()),
        fleet.clone(),
        settings.clone(),
    );
    let took = execute(&executor, &db, &id).await;
    let applies: usize = fleet.applies().values().sum();
    println!(
        "simulated: {count} clusters, {} ms per call, concurrency {}: applied in {:.2} s \
         ({applies} applies, peak {} calls in flight), peak RSS {:.1} MiB",
        latency.as_millis(),
        settings.concurrency,
        took.as_secs_f64(),
        fleet.peak_in_flight(),
        peak_rss_mib()
    );
    assert!(fleet.peak_in_flight() <= settings.concurrency);
    db.close().await;
    let _ = std::fs::remove_dir_all(dir);

    let Ok(testbed) = palisade_testbed::Testbed::from_env() else {
        println!("real clusters: skipped, the test bed's variables are not set (eval \"$(e2e/clusters env)\")");
        return;
    };
    let connector = Arc::new(KubeConnector::default());
    let inputs = testbed
        .clusters
        .iter()
        .map(|cluster| bed_cluster(format!("bench-{}", cluster.name), cluster))
        .collect();
    let (db, id, dir) = arrange(connector.as_ref(), &sealer, inputs).await;
    let executor = Executor::new(db.clone(), Some(sealer), connector, settings);
    let took = execute(&executor, &db, &id).await;
    println!(
        "real: {} test-bed clusters: applied and read back in {:.2} s",
        testbed.clusters.len(),
        took.as_secs_f64()
    );
    // The test bed is shared with the tests: take back what the benchmark enforced there.
    for cluster in &testbed.clusters {
        remove_palisade_policies(cluster).await;
    }
    db.close().await;
    let _ = std::fs::remove_dir_all(dir);
}
