//! Page benchmark, against a real `palisade` server over real HTTP: every page a signed-in person
//! opens from the navigation, rendered on the server (the whole streamed answer), `--requests`
//! times each (200) with `--at-once` requests in flight (16), over a large store: `--clusters`
//! enabled clusters (200), the Pod Security levels and a few library policies adopted, and
//! `--violations` open violations (1,000,000) spread over the clusters and the last 14 days, a third
//! of them the apiserver's own Pod Security findings (which the compliance page weighs).
//! Prints p50 / p95 per page and the peak resident memory.
//!
//! SQLite by default (a fresh file); `--database postgres://…/postgres` runs the same on a fresh
//! database of that server; `--only /violations` measures one page. Run:
//! `cargo run --release -p palisade-server --example pages_bench -- [--database URL]`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use palisade_app::auth::{Principal, Role};
use palisade_app::db::{new_id, now_ms};
use palisade_app::policies::{NewPolicy, SaveOutcome};
use palisade_app::violations::ssr::store;
use palisade_app::violations::{Action, Source};
use support::{arg, backend, fresh_database, get, http, num, peak_rss_mib, percentile, start};

/// Every page a signed-in person opens from the navigation, and the form for a new policy; only
/// `only` when it is given (`--only /violations`).
fn pages(only: &str) -> Vec<&'static str> {
    palisade_app::sections::SECTIONS
        .iter()
        .map(|s| s.href)
        .chain(["/policies/new"])
        .filter(|page| only.is_empty() || *page == only)
        .collect()
}

/// What the seeded violations say: Pod Security's own reasons and library policies' messages.
const MESSAGES: [&str; 4] = [
    "privileged (container \"app\" must not set securityContext.privileged=true)",
    "host namespaces (hostPID=true)",
    "allowPrivilegeEscalation != false (container \"app\" must set securityContext.allowPrivilegeEscalation=false)",
    "containers must not run privileged",
];

#[tokio::main]
async fn main() {
    let database = fresh_database(&arg("--database", "")).await;
    let backend = backend(&database);
    let clusters = num("--clusters", 200) as usize;
    let violations = num("--violations", 1_000_000) as i64;
    let requests = num("--requests", 200) as usize;
    let at_once = num("--at-once", 16) as usize;
    let pages = pages(&arg("--only", ""));
    assert!(!pages.is_empty(), "--only names no page of the navigation");

    let server = start(&database, &[]).await;
    let addr = server.local_addr().unwrap();
    let db = server.auth().db.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    println!(
        "page benchmark on {backend}, {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    // The store: clusters, adopted policies, violations.
    let seeding = Instant::now();
    let now = now_ms();
    let mut cluster_ids = Vec::new();
    for i in 0..clusters {
        let id = new_id();
        let environment = ["dev", "staging", "prod"][i % 3];
        sqlx::query(
            "INSERT INTO clusters (id, name, environment, api_url, credential_kind, credentials, \
             created_ms, created_by, updated_ms) VALUES ($1, $2, $3, $4, 'token', '', $5, 'bench', $5)",
        )
        .bind(&id)
        .bind(format!("cluster-{i:03}"))
        .bind(environment)
        .bind(format!("https://cluster-{i}.example:6443"))
        .bind(now)
        .execute(db.pool())
        .await
        .unwrap();
        cluster_ids.push(id);
    }
    let author = Principal::new("bench-author", "Author", Role::Author);
    let mut policy_ids = Vec::new();
    for entry in [
        "pod-security-baseline",
        "pod-security-restricted",
        "disallow-privileged",
        "disallow-host-namespaces",
    ] {
        let saved = palisade_app::policies::ssr::create(
            &db,
            &author,
            now,
            NewPolicy::Library {
                entry: entry.to_owned(),
            },
        )
        .await
        .unwrap_or_else(|err| panic!("adopting {entry}: {err}"));
        let SaveOutcome::Saved { policy_id, .. } = saved else {
            panic!("adopting {entry}: {saved:?}");
        };
        policy_ids.push(policy_id);
    }
    let mut k = 0i64;
    while k < violations {
        let chunk = 5000.min(violations - k);
        // Each chunk goes to one cluster, as one cluster's batch would.
        let cluster = &cluster_ids[(k / 5000) as usize % cluster_ids.len()];
        let findings: Vec<store::Finding> = (0..chunk)
            .map(|i| {
                let n = k + i;
                let pod_security = n % 3 == 0;
                store::Finding {
                    policy_id: if pod_security {
                        String::new()
                    } else {
                        policy_ids[(n % 4) as usize].clone()
                    },
                    policy: if pod_security {
                        "pod-security:baseline".to_owned()
                    } else {
                        format!("palisade-policy-{}", n % 4)
                    },
                    resource: "pods".into(),
                    namespace: format!("team-{}", n % 200),
                    name: format!("workload-{n}"),
                    uid: String::new(),
                    action: [Action::Audit, Action::Warn, Action::Deny][(n % 3) as usize],
                    source: Source::Audit,
                    message: MESSAGES[(n % 4) as usize].to_owned(),
                    // Spread over the last 14 days.
                    at_ms: now - (n * 1_209_600_000 / violations.max(1)),
                }
            })
            .collect();
        let mut tx = db.pool().begin().await.unwrap();
        store::record(&mut tx, cluster, &findings, 0).await.unwrap();
        tx.commit().await.unwrap();
        k += chunk;
    }
    if backend == "PostgreSQL" {
        sqlx::query("ANALYZE").execute(db.pool()).await.unwrap();
    }
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM violations")
        .fetch_one(db.pool())
        .await
        .unwrap();
    println!(
        "seeded {clusters} clusters, {} policies, {stored} violations in {:.1} s",
        policy_ids.len(),
        seeding.elapsed().as_secs_f64()
    );

    let token = support::viewer_token(&db).await;
    let http = Arc::new(http());
    println!("{requests} requests per page, {at_once} at once:");
    println!(
        "  {:<16} {:>9} {:>9} {:>10}",
        "page", "p50 ms", "p95 ms", "bytes"
    );
    for page in pages {
        let url = format!("http://{addr}{page}");
        for _ in 0..3 {
            let (status, _, _) = get(&http, &url, &token).await;
            assert_eq!(status, 200, "GET {page}");
        }
        let next = Arc::new(AtomicUsize::new(0));
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..at_once {
            let (http, url, token, next) = (http.clone(), url.clone(), token.clone(), next.clone());
            workers.spawn(async move {
                let mut times = Vec::new();
                let mut bytes = 0;
                let mut failed = Vec::new();
                while next.fetch_add(1, Ordering::Relaxed) < requests {
                    let (status, body, took) = get(&http, &url, &token).await;
                    times.push(took);
                    if status == 200 {
                        bytes = body.len();
                    } else {
                        failed.push(format!("{status} {}", String::from_utf8_lossy(&body)));
                    }
                }
                (times, bytes, failed)
            });
        }
        let mut times = Vec::new();
        let mut bytes = 0;
        let mut failed = Vec::new();
        while let Some(done) = workers.join_next().await {
            let (t, b, f) = done.unwrap();
            times.extend(t);
            bytes = bytes.max(b);
            failed.extend(f);
        }
        times.sort();
        println!(
            "  {:<16} {:>9.1} {:>9.1} {:>10}{}",
            page,
            percentile(&times, 0.50).as_secs_f64() * 1000.0,
            percentile(&times, 0.95).as_secs_f64() * 1000.0,
            bytes,
            match failed.first() {
                None => String::new(),
                Some(first) => format!("  {} failed, first: {first:.200}", failed.len()),
            }
        );
    }
    println!("peak resident memory {:.0} MiB", peak_rss_mib());
    let _ = stop.send(());
    running.await.unwrap().unwrap();
}
