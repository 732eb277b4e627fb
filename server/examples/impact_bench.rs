//! Impact benchmark: one policy's impact over an inventory of `--objects` (default 100,000)
//! objects spread over `--clusters` (default 3) clusters, stored as the keeper stores them in a
//! SQLite file: the wall time of whole impact requests (p50, p95 over `--runs`), for a Pod
//! Security level, a ValidatingAdmissionPolicy and a Gatekeeper template (the gatekeeper-library's
//! privileged-containers, read from `$PALISADE_ORACLES`), and the process's peak resident memory.
//!
//! A cluster's objects are Deployments, each with one ReplicaSet and three Pods, one workload in
//! ten privileged, one in seven running as root with host namespaces. Run:
//! `cargo run --release -p palisade-server --example impact_bench -- [--objects N] [--clusters N] [--runs N]
//! [--only ENTRY] [--namespaces N]` (`pod-security-restricted`, `disallow-privileged` or
//! `gatekeeper-privileged-containers` alone; the workloads spread over N namespaces, 40 by default)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use palisade_app::auth::{Principal, Role};
use palisade_app::clusters::ssr::KubeConnector;
use palisade_app::db::now_ms;
use palisade_app::impact::ssr::progress::Progress;
use palisade_app::inventory::ssr::changes::{held, Write};
use palisade_app::inventory::ssr::keeper::apply;
use palisade_app::inventory::ssr::kinds::KINDS;
use palisade_app::secrets::Sealer;
use serde_json::{json, Value};

use support::arrange::{library_policy, register_all, token_cluster};
use support::{cpu_secs, fresh_sqlite, num, peak_rss_mib, percentile};

/// The gatekeeper-library's privileged-containers template with its sample constraint, from
/// `$PALISADE_ORACLES`, saved as a policy of its own: its id.
async fn gatekeeper_policy(db: &palisade_app::db::Db, author: &Principal) -> String {
    let oracles = std::env::var("PALISADE_ORACLES").expect(
        "PALISADE_ORACLES names the oracles directory (for the gatekeeper-library template)",
    );
    let dir = std::path::Path::new(&oracles)
        .join("gatekeeper-library/library/pod-security-policy/privileged-containers");
    let read = |path: std::path::PathBuf| {
        std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
    };
    let source = format!(
        "{}\n---\n{}",
        read(dir.join("template.yaml")),
        read(dir.join("samples/psp-privileged-container/constraint.yaml"))
    );
    let saved = palisade_app::policies::ssr::create(
        db,
        author,
        now_ms(),
        palisade_app::policies::NewPolicy::Yaml {
            source,
            params: String::new(),
        },
    )
    .await
    .unwrap();
    match saved {
        palisade_app::policies::SaveOutcome::Saved { policy_id, .. } => policy_id,
        refused => panic!("the gatekeeper policy was refused: {refused:?}"),
    }
}

const KEY: &str = "5b1f0c3e9a7d4e2f8c6b0a1d3e5f7a9b2c4d6e8f0a1b3c5d7e9f1a2b4c6d8e0f";

/// Workload `i` of a cluster: a Deployment, its ReplicaSet and three Pods (five objects).
fn workload(cluster: usize, i: usize, namespaces: usize) -> Vec<Value> {
    let namespace = format!("team-{}", i % namespaces);
    let name = format!("app-{i}");
    let uid = |what: &str| format!("c{cluster}-{what}-{i}");
    let mut security = json!({"runAsNonRoot": true, "runAsUser": 1000, "allowPrivilegeEscalation": false,
        "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}});
    let mut spec = json!({"containers": [{"name": "app", "image": format!("registry.example/{name}:1.{i}"),
        "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}}}],
        "serviceAccountName": "default", "restartPolicy": "Always", "dnsPolicy": "ClusterFirst"});
    if i.is_multiple_of(10) {
        security["privileged"] = json!(true);
    }
    if i.is_multiple_of(7) {
        security = json!({});
        spec["hostPID"] = json!(true);
    }
    spec["containers"][0]["securityContext"] = security;
    let labels = json!({"app": name, "team": namespace});
    let template = json!({"metadata": {"labels": labels}, "spec": spec});
    let meta = |kind: &str, what: &str, own: Option<(&str, &str, String)>| {
        let mut m = json!({"name": format!("{name}{what}"), "namespace": namespace, "uid": uid(kind),
            "labels": labels, "resourceVersion": "1234", "creationTimestamp": "2026-12-01T00:00:00Z"});
        if let Some((kind, name, uid)) = own {
            m["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": uid, "controller": true}]);
        }
        m
    };
    let mut out = vec![
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("d", "", None),
               "spec": {"replicas": 3, "selector": {"matchLabels": labels}, "template": template}}),
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
               "metadata": meta("rs", "-1", Some(("Deployment", &name, uid("d")))),
               "spec": {"replicas": 3, "selector": {"matchLabels": labels}, "template": template}}),
    ];
    for p in 0..3 {
        let mut pod_meta = meta(
            &format!("p{p}"),
            &format!("-1-{p}"),
            Some(("ReplicaSet", &format!("{name}-1"), uid("rs"))),
        );
        pod_meta["uid"] = json!(uid(&format!("p{p}")));
        out.push(
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": spec,
            "status": {"phase": "Running", "podIP": "10.0.0.1"}}),
        );
    }
    out
}

#[tokio::main]
async fn main() {
    let objects = num("--objects", 100_000) as usize;
    let cluster_count = num("--clusters", 3) as usize;
    let runs = num("--runs", 10) as usize;
    let namespace_count = num("--namespaces", 40) as usize;
    let (db, dir) = fresh_sqlite(&format!("palisade-impact-bench-{}", std::process::id())).await;
    let sealer = Sealer::from_hex(KEY).unwrap();
    let admin = Principal::new("admin", "Admin", Role::Admin);
    let author = Principal::new("author", "Author", Role::Author);
    let started = Instant::now();
    let mut written_total = 0;
    let inputs = (0..cluster_count)
        .map(|c| {
            token_cluster(
                format!("bench-{c}"),
                "https://127.0.0.1:9".into(),
                "t".into(),
            )
        })
        .collect();
    let registered = register_all(&db, &sealer, &KubeConnector::default(), &admin, inputs).await;
    for (c, cluster) in registered.iter().enumerate() {
        let per_cluster = objects / cluster_count;
        let mut writes: Vec<Write> = (0..namespace_count)
            .map(|n| Write::Put {
                held: held(json!({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": format!("team-{n}"), "uid": format!("c{c}-ns-{n}")}}))
                .unwrap(),
                seen_ms: 1,
            })
            .collect();
        let mut i = 0;
        let mut written = namespace_count;
        while written < per_cluster {
            for object in workload(c, i, namespace_count) {
                writes.push(Write::Put {
                    held: held(object).unwrap(),
                    seen_ms: 1,
                });
                written += 1;
            }
            i += 1;
            if writes.len() >= 5_000 {
                apply(&db, &cluster.id, &writes).await.unwrap();
                writes.clear();
            }
        }
        written_total += i64::try_from(written).unwrap();
        writes.extend(KINDS.iter().map(|(_, kind, _)| Write::Listed {
            kind: (*kind).to_owned(),
            started_ms: 1,
            at_ms: 2,
        }));
        apply(&db, &cluster.id, &writes).await.unwrap();
    }
    println!(
        "{objects} objects on {cluster_count} clusters stored in {:.1} s; peak RSS so far {:.0} MiB",
        started.elapsed().as_secs_f64(),
        peak_rss_mib()
    );
    let only = support::arg("--only", "");
    for entry in [
        "pod-security-restricted",
        "disallow-privileged",
        "gatekeeper-privileged-containers",
    ] {
        if !only.is_empty() && only != entry {
            continue;
        }
        let policy = if entry == "gatekeeper-privileged-containers" {
            gatekeeper_policy(&db, &author).await
        } else {
            library_policy(&db, &author, entry).await;
            entry.to_owned()
        };
        let mut times = Vec::new();
        let mut cpu = Vec::new();
        let mut denied = 0;
        for _ in 0..runs {
            let started = Instant::now();
            let cpu_started = cpu_secs();
            let progress = Progress::default();
            let impact = palisade_app::impact::ssr::service::impact(
                &db,
                &author,
                now_ms(),
                &policy,
                None,
                None,
                Some(&progress),
            )
            .await
            .unwrap();
            times.push(started.elapsed());
            cpu.push(Duration::from_secs_f64(cpu_secs() - cpu_started));
            assert!(impact.clusters.iter().all(|c| !c.partial));
            // What the browser is told along the way ends at every object, counted once.
            let told = progress.read();
            assert_eq!((told.done, told.total), (written_total, written_total));
            denied = impact.denied();
        }
        times.sort();
        cpu.sort();
        println!(
            "{entry}: {denied} workloads denied; impact p50 {:.0} ms, p95 {:.0} ms over {runs} runs \
             (CPU of all threads per impact: p50 {:.0} ms, p95 {:.0} ms); peak RSS {:.0} MiB",
            percentile(&times, 0.50).as_secs_f64() * 1e3,
            percentile(&times, 0.95).as_secs_f64() * 1e3,
            percentile(&cpu, 0.50).as_secs_f64() * 1e3,
            percentile(&cpu, 0.95).as_secs_f64() * 1e3,
            peak_rss_mib()
        );
    }
    db.close().await;
    std::fs::remove_dir_all(&dir).ok();
}
