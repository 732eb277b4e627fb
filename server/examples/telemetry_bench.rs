//! Telemetry benchmark, against a real `palisade` server over real HTTP:
//!
//! 1. ingest throughput: `--events` audit events (every one a violation: the worst case), in
//!    batches of `--batch`, from `--senders` concurrent senders, counted end to end (committed);
//! 2. ingest latency at a steady `--rate` events per second for `--secs` seconds: p50 / p99 / max
//!    of each batch's request;
//! 3. the violations explorer rendered on the server (`GET /violations`, the whole streamed page)
//!    with `--violations` stored violations: p50 / p95 over 50 requests, unfiltered, filtered and
//!    deep in the pages.
//!
//! SQLite by default (a fresh file); `--database postgres://…/postgres` runs the same on a fresh
//! database of that server. Prints peak resident memory. Run:
//! `cargo run --release -p palisade-server --example telemetry_bench -- [--database URL]`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use palisade_app::auth::{Principal, Role};
use palisade_app::db::now_ms;
use palisade_app::violations::ssr::{ingest, store};
use palisade_app::violations::{Action, Source};
use serde_json::json;
use support::{
    arg, backend, fresh_database, get, http, num, peak_rss_mib, percentile, start, viewer_token,
    Http,
};

fn batch(prefix: &str, n: usize, offset: usize) -> String {
    let items: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let k = offset + i;
            // 5,000 workloads in 50 namespaces under 10 policies: most events grow an existing row.
            let vap = json!([{ "message": "privileged containers are not allowed",
                               "policy": format!("policy-{}", k % 10),
                               "validationActions": ["Audit"] }])
            .to_string();
            json!({
                "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
                "auditID": format!("{prefix}-{k}"), "stage": "ResponseComplete", "verb": "create",
                "objectRef": { "resource": "deployments", "apiGroup": "apps", "apiVersion": "v1",
                               "namespace": format!("ns-{}", k % 50), "name": format!("w-{}", k % 5000) },
                "responseStatus": { "code": 201 },
                "requestReceivedTimestamp": "2026-12-02T21:00:00.000000Z",
                "annotations": { "validation.policy.admission.k8s.io/validation_failure": vap },
            })
        })
        .collect();
    json!({ "kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items }).to_string()
}

async fn post(http: &Http, url: &str, token: &str, body: String) -> (u16, Duration) {
    let started = Instant::now();
    loop {
        let request = hyper::Request::post(url)
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {token}"))
            .body(Full::new(Bytes::from(body.clone())))
            .unwrap();
        let reply = http.request(request).await.unwrap();
        let status = reply.status().as_u16();
        let _ = reply.into_body().collect().await;
        if status == 429 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        return (status, started.elapsed());
    }
}

#[tokio::main]
async fn main() {
    let database = fresh_database(&arg("--database", "")).await;
    let backend = backend(&database);
    let server = start(
        &database,
        &[
            ("PALISADE__HTTP__MAX_BODY_BYTES", "8388608"),
            ("PALISADE__INGEST__DENY_SPIKE_PER_HOUR", "0"),
        ],
    )
    .await;
    let addr = server.local_addr().unwrap();
    let db = server.auth().db.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));

    // A cluster and its ingest token; a viewer's API token for the pages.
    let cluster_id = palisade_app::db::new_id();
    sqlx::query(
        "INSERT INTO clusters (id, name, environment, api_url, credential_kind, credentials, \
         created_ms, created_by, updated_ms) VALUES ($1, 'bench', 'prod', 'https://bench:6443', \
         'token', '', $2, 'bench', $2)",
    )
    .bind(&cluster_id)
    .bind(now_ms())
    .execute(db.pool())
    .await
    .unwrap();
    let admin = Principal::new("bench", "Bench", Role::Admin);
    let token = ingest::rotate(&db, &admin, &cluster_id, "", now_ms())
        .await
        .unwrap()
        .token;
    let page_token = viewer_token(&db).await;

    let http = http();
    let url = format!("http://{addr}{}", ingest::PATH);
    println!(
        "telemetry benchmark on {backend}, {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    // 0. Where the time of one batch goes, without HTTP.
    {
        let body = batch("p", 400, 0);
        let t = Instant::now();
        let (_, observed) =
            palisade_app::violations::ssr::events::parse(body.as_bytes(), now_ms()).unwrap();
        let parse = t.elapsed();
        let ids: Vec<String> = observed
            .iter()
            .map(|o| format!("x/{}", o.audit_id))
            .collect();
        let mut tx = db.pool().begin().await.unwrap();
        let t = Instant::now();
        store::first_sightings(&mut tx, &cluster_id, &ids, now_ms())
            .await
            .unwrap();
        let sightings = t.elapsed();
        let findings: Vec<store::Finding> = observed
            .iter()
            .map(|o| store::Finding {
                policy_id: String::new(),
                policy: o.policy.clone(),
                resource: o.resource.clone(),
                namespace: o.namespace.clone(),
                name: o.name.clone(),
                uid: String::new(),
                action: o.action,
                source: Source::Audit,
                message: o.message.clone(),
                at_ms: o.at_ms,
            })
            .collect();
        let t = Instant::now();
        store::record(&mut tx, &cluster_id, &findings, 0)
            .await
            .unwrap();
        let record = t.elapsed();
        let t = Instant::now();
        tx.rollback().await.unwrap();
        println!(
            "one batch of 400 without HTTP: parse {:.1} ms, audit ids {:.1} ms, violations {:.1} ms, rollback {:.1} ms",
            parse.as_secs_f64() * 1e3,
            sightings.as_secs_f64() * 1e3,
            record.as_secs_f64() * 1e3,
            t.elapsed().as_secs_f64() * 1e3
        );
    }

    // 1. Throughput.
    let events = num("--events", 400_000) as usize;
    let per_batch = num("--batch", 400) as usize;
    let senders = num("--senders", 4) as usize;
    let batches = events.div_ceil(per_batch);
    let bodies: Arc<Vec<String>> = Arc::new(
        (0..batches)
            .map(|b| batch("t", per_batch, b * per_batch))
            .collect(),
    );
    let started = Instant::now();
    let mut tasks = Vec::new();
    for s in 0..senders {
        let (http, url, token, bodies) = (http.clone(), url.clone(), token.clone(), bodies.clone());
        tasks.push(tokio::spawn(async move {
            let mut b = s;
            while b < bodies.len() {
                let (status, _) = post(&http, &url, &token, bodies[b].clone()).await;
                assert_eq!(status, 200, "batch {b}");
                b += senders;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let wall = started.elapsed();
    let counted: i64 = sqlx::query_scalar("SELECT CAST(SUM(count) AS BIGINT) FROM violations")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(
        counted as usize,
        batches * per_batch,
        "every event counted once"
    );
    println!(
        "ingest throughput: {} events in {} batches of {per_batch} from {senders} senders: {:.2} s, {:.0} events/s (all committed: {counted} counted)",
        batches * per_batch,
        batches,
        wall.as_secs_f64(),
        (batches * per_batch) as f64 / wall.as_secs_f64()
    );

    // 2. Latency at a steady rate.
    let rate = num("--rate", 5000);
    let secs = num("--secs", 10);
    let small = 100usize;
    let interval = Duration::from_micros(small as u64 * 1_000_000 / rate);
    let total = (rate * secs) as usize / small;
    let mut ticker = tokio::time::interval(interval);
    let mut latencies = Vec::with_capacity(total);
    let mut pending = Vec::with_capacity(total);
    let started = Instant::now();
    for b in 0..total {
        ticker.tick().await;
        let body = batch("l", small, b * small);
        let (http, url, token) = (http.clone(), url.clone(), token.clone());
        pending.push(tokio::spawn(async move {
            post(&http, &url, &token, body).await
        }));
    }
    for p in pending {
        let (status, took) = p.await.unwrap();
        assert_eq!(status, 200);
        latencies.push(took);
    }
    let wall = started.elapsed();
    latencies.sort();
    println!(
        "ingest latency at {rate} events/s ({total} batches of {small} over {:.1} s): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        wall.as_secs_f64(),
        percentile(&latencies, 0.50).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1000.0,
    );

    // 3. The explorer over a million violations.
    let wanted = num("--violations", 1_000_000) as i64;
    let have: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM violations")
        .fetch_one(db.pool())
        .await
        .unwrap();
    let seeding = Instant::now();
    let now = now_ms();
    let mut k = 0i64;
    while have + k < wanted {
        let chunk = 5000.min(wanted - have - k);
        let findings: Vec<store::Finding> = (0..chunk)
            .map(|i| {
                let n = k + i;
                store::Finding {
                    policy_id: String::new(),
                    policy: format!("seed-policy-{}", n % 25),
                    resource: "apps/deployments".into(),
                    namespace: format!("team-{}", n % 200),
                    name: format!("workload-{n}"),
                    uid: String::new(),
                    action: [Action::Audit, Action::Warn, Action::Deny][(n % 3) as usize],
                    source: Source::Audit,
                    message: "containers must not run privileged".into(),
                    // Spread over the last 14 days.
                    at_ms: now - (n * 1_209_600_000 / wanted.max(1)),
                }
            })
            .collect();
        let mut tx = db.pool().begin().await.unwrap();
        store::record(&mut tx, &cluster_id, &findings, 0)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        k += chunk;
    }
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM violations")
        .fetch_one(db.pool())
        .await
        .unwrap();
    println!(
        "seeded {k} violations in {:.1} s; {stored} stored",
        seeding.elapsed().as_secs_f64()
    );
    if backend == "PostgreSQL" {
        sqlx::query("ANALYZE").execute(db.pool()).await.unwrap();
    }
    let second_page = {
        let page = palisade_app::violations::ssr::queries::list(
            &db,
            &palisade_app::violations::ViolationFilter::default(),
            now_ms(),
        )
        .await
        .unwrap();
        page.next.unwrap()
    };
    for (label, path) in [
        ("unfiltered", "/violations".to_owned()),
        (
            "filtered (cluster, action deny, namespace)",
            format!("/violations?cluster={cluster_id}&action=deny&namespace=team-7"),
        ),
        (
            "filtered (policy, last 7 days)",
            "/violations?policy=seed-policy-3&days=7".to_owned(),
        ),
        ("second page", format!("/violations?after={second_page}")),
    ] {
        let page_url = format!("http://{addr}{path}");
        for _ in 0..5 {
            get(&http, &page_url, &page_token).await;
        }
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..50 {
            let (status, body, took) = get(&http, &page_url, &page_token).await;
            assert_eq!(status, 200, "{path}");
            bytes = body.len();
            times.push(took);
        }
        times.sort();
        println!(
            "explorer SSR, {label}: p50 {:.1} ms, p95 {:.1} ms ({bytes} bytes)",
            percentile(&times, 0.50).as_secs_f64() * 1000.0,
            percentile(&times, 0.95).as_secs_f64() * 1000.0,
        );
    }
    println!("peak RSS of the whole process: {:.1} MiB", peak_rss_mib());
    let _ = stop.send(());
    let _ = running.await;
}
