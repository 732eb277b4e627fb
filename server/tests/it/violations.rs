//! Violation telemetry: audit batches posted with a cluster's ingest token become violations,
//! counted once per audit ID, on both databases; a busy server answers 429 and loses nothing; and
//! the test bed's real apiservers report what their admission chain audited and denied.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::PostParams;
use kube::Api;
use palisade_app::auth::Role;
use palisade_testbed::AuditReceiver;
use serde_json::{json, Value};

use crate::client::{create_namespace, json_of, privileged, propose_and_approve};
use crate::support::{on_each_database, request, Backend, Reply, TestServer, KEY};

const INGEST: &str = "/api/v1/ingest/audit";

async fn post_batch(server: &TestServer, token: &str, body: &str) -> Reply {
    let bearer = format!("Bearer {token}");
    let mut headers = vec![("content-type", "application/json")];
    if !token.is_empty() {
        headers.push(("authorization", bearer.as_str()));
    }
    request(server.addr, "POST", INGEST, &headers, body).await
}

/// A cluster (unreachable: ingest does not need to reach it) and its ingest token.
async fn cluster_with_token(server: &TestServer, admin: &str, name: &str) -> (String, String) {
    let id = server.api(admin).register_unreachable(name, "dev").await.id;
    let token = server.api(admin).ingest_token(&id).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(token.starts_with("pali_"), "{token}");
    (id, token)
}

fn event(id: &str, namespace: &str, annotations: Value, status: Value) -> Value {
    json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
        "auditID": id, "stage": "ResponseComplete", "verb": "create",
        "objectRef": {"resource": "deployments", "namespace": namespace, "name": format!("web-{id}"),
                      "apiGroup": "apps", "apiVersion": "v1"},
        "responseStatus": status,
        "stageTimestamp": "2026-12-02T21:00:00.250000Z",
        "annotations": annotations,
    })
}

fn sample_batch() -> String {
    let vap = json!([{"message": "privileged containers are not allowed", "policy": "disallow-privileged",
                      "binding": "disallow-privileged-binding", "expressionIndex": 0,
                      "validationActions": ["Audit"]}])
    .to_string();
    json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [
        event("e1", "team-a", json!({"validation.policy.admission.k8s.io/validation_failure": vap}), json!({"code": 201})),
        event("e2", "team-a", json!({"pod-security.kubernetes.io/audit-violations": "would violate PodSecurity \"restricted:latest\": runAsNonRoot != true"}), json!({"code": 201})),
        event("e3", "team-b", json!({}), json!({"code": 403, "message": "admission webhook \"validation.gatekeeper.sh\" denied the request: [must-have-owner] missing label owner"})),
        event("e4", "team-b", json!({"authorization.k8s.io/decision": "allow"}), json!({"code": 201})),
        event("e5", "team-b", json!({}), json!({"code": 403, "message": "pods \"x\" is forbidden: violates PodSecurity \"baseline:latest\": privileged"})),
    ]})
    .to_string()
}

async fn ingest_counts_each_audit_id_once(backend: Backend) {
    let server = TestServer::start(backend, &[("PALISADE__SECRETS__KEY", KEY)]).await;
    let admin = server.login_token(Role::Admin).await;
    let viewer = server.login_token(Role::Viewer).await;
    let (cluster, token) = cluster_with_token(&server, &admin, "ingest-1").await;

    // Only the cluster's own current token is let in.
    assert_eq!(post_batch(&server, "", &sample_batch()).await.status, 401);
    assert_eq!(
        post_batch(&server, &viewer, &sample_batch()).await.status,
        401
    );
    let forged = format!("pali_{cluster}_{}", "0".repeat(64));
    assert_eq!(
        post_batch(&server, &forged, &sample_batch()).await.status,
        401
    );
    let bad = post_batch(&server, &token, "{\"kind\":\"Pod\"}").await;
    bad.assert_says(400, "EventList");
    let reported = || async {
        sqlx::query_as::<_, (i64, i64)>(
            "SELECT reporting_since_ms, reported_ms FROM clusters WHERE id = $1",
        )
        .bind(&cluster)
        .fetch_one(server.pool.pool())
        .await
        .unwrap()
    };
    // Refused batches are not reports.
    assert_eq!(reported().await, (0, 0));

    let first = post_batch(&server, &token, &sample_batch()).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(
        json_of(&first),
        json!({"events": 5, "violations": 4, "duplicates": 0})
    );
    // An accepted batch is the cluster reporting: evidence can count on it from now on.
    let (since, last) = reported().await;
    assert!(since > 0 && last == since, "{since} {last}");
    // The apiserver sends a batch again when it did not hear back: nothing counts twice.
    let again = post_batch(&server, &token, &sample_batch()).await;
    assert_eq!(
        json_of(&again),
        json!({"events": 5, "violations": 4, "duplicates": 4})
    );

    let list = server.api(&viewer).get::<Value>("/api/v1/violations").await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 4, "{list:#}");
    assert!(items
        .iter()
        .all(|v| v["count"] == 1 && v["cluster_name"] == "ingest-1"));
    let by = |policy: &str| {
        items
            .iter()
            .find(|v| v["policy"] == policy)
            .unwrap_or_else(|| panic!("no {policy} in {list:#}"))
    };
    assert_eq!(by("disallow-privileged")["action"], "audit");
    assert_eq!(by("disallow-privileged")["resource"], "apps/deployments");
    assert_eq!(
        by("pod-security:restricted")["message"],
        "runAsNonRoot != true"
    );
    assert_eq!(by("must-have-owner")["action"], "deny");
    assert_eq!(by("pod-security:baseline")["action"], "deny");

    // Filters and pages by key.
    let denied = server
        .api(&viewer)
        .get::<Value>("/api/v1/violations?action=deny&namespace=team-b")
        .await;
    assert_eq!(denied["items"].as_array().unwrap().len(), 2, "{denied:#}");
    let bad_filter = server
        .call("GET", "/api/v1/violations?action=allow", &viewer, "")
        .await;
    bad_filter.assert_says(400, "action");
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let page = server
            .api(&viewer)
            .get::<Value>(&format!("/api/v1/violations?limit=3&after={after}"))
            .await;
        for v in page["items"].as_array().unwrap() {
            seen.push(v["id"].as_str().unwrap().to_owned());
        }
        match page["next"].as_str() {
            Some(next) => after = next.to_owned(),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (4, 4), "{seen:?}");

    // CSV export and the daily charts.
    let csv = server
        .call("GET", "/api/v1/violations/export?format=csv", &viewer, "")
        .await;
    assert_eq!(csv.status, 200);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    assert_eq!(csv.body.lines().count(), 5, "{}", csv.body);
    assert!(
        csv.body.starts_with("id,cluster,policy_id,policy,"),
        "{}",
        csv.body
    );
    let charts = server
        .api(&viewer)
        .get::<Value>("/api/v1/violations/charts?days=90")
        .await;
    let total: i64 = charts["by_policy"]["series"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| {
            s["counts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_i64().unwrap())
        })
        .sum();
    // The sample is dated 2026-12-02; within 90 days of the test's clock.
    assert_eq!(total, 4, "{charts:#}");

    // The explorer page renders the same rows on the server.
    let page = server
        .call("GET", "/violations?action=deny", &viewer, "")
        .await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("must-have-owner"), "{}", page.body);
    assert!(!page.body.contains("runAsNonRoot != true"), "filtered out");

    // A new token retires the old one; every rotation is audited.
    let fresh = server.api(&admin).ingest_token(&cluster).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        post_batch(&server, &token, &sample_batch()).await.status,
        401
    );
    assert_eq!(
        post_batch(&server, &fresh, &sample_batch()).await.status,
        200
    );
    let audit = server
        .api(&admin)
        .get::<Value>("/api/v1/audit?action=cluster.ingest_token")
        .await;
    assert_eq!(audit["total"], 2, "{audit:#}");
    server.stop().await;
}

/// The ingest address handed out is Palisade's own public address, ready for the apiserver's
/// webhook kubeconfig; without one set, it is the path alone (the page says what to put first).
#[tokio::test]
async fn the_ingest_address_is_palisades_public_url() {
    for (public_url, expected) in [
        (
            "https://palisade.example.test/",
            "https://palisade.example.test/api/v1/ingest/audit",
        ),
        ("", "/api/v1/ingest/audit"),
    ] {
        let server = TestServer::with_key(&[("PALISADE__HTTP__PUBLIC_URL", public_url)]).await;
        let admin = server.login_token(Role::Admin).await;
        let id = server
            .api(&admin)
            .register_unreachable("edge", "dev")
            .await
            .id;
        let issued = server.api(&admin).ingest_token(&id).await;
        assert_eq!(issued["url"], expected, "public URL {public_url:?}");
        server.stop().await;
    }
}

on_each_database!(
    ingest_counts_each_audit_id_once:
    sqlite_ingest_counts_each_audit_id_once,
    postgres_ingest_counts_each_audit_id_once
);

/// One batch of `n` PSA audit events with ids `<prefix>-<i>`.
fn big_batch(prefix: &str, n: usize) -> String {
    let items: Vec<Value> = (0..n)
        .map(|i| {
            event(
                &format!("{prefix}-{i}"),
                "load",
                json!({"pod-security.kubernetes.io/audit-violations": "would violate PodSecurity \"restricted:latest\": x"}),
                json!({"code": 201}),
            )
        })
        .collect();
    json!({"kind": "EventList", "items": items}).to_string()
}

#[tokio::test]
async fn a_busy_server_answers_429_with_retry_after_and_loses_nothing() {
    let server = TestServer::with_key(&[
        ("PALISADE__INGEST__MAX_IN_FLIGHT", "1"),
        ("PALISADE__INGEST__WAIT_MS", "0"),
        ("PALISADE__INGEST__RETRY_AFTER_SECS", "1"),
    ])
    .await;
    let admin = server.login_token(Role::Admin).await;
    let (_, token) = cluster_with_token(&server, &admin, "busy").await;
    let batches = 12;
    let per_batch = 400;
    let mut senders = Vec::new();
    for b in 0..batches {
        let body = big_batch(&format!("b{b}"), per_batch);
        let token = token.clone();
        let addr = server.addr;
        senders.push(tokio::spawn(async move {
            // What the apiserver's webhook backend does: send again after a refusal.
            let mut refusals = Vec::new();
            loop {
                let bearer = format!("Bearer {token}");
                let reply = request(
                    addr,
                    "POST",
                    INGEST,
                    &[
                        ("content-type", "application/json"),
                        ("authorization", &bearer),
                    ],
                    &body,
                )
                .await;
                match reply.status {
                    200 => return refusals,
                    429 => {
                        refusals.push(reply.header("retry-after").map(str::to_owned));
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    other => panic!("batch {b}: {other} {}", reply.body),
                }
            }
        }));
    }
    let mut refusals = Vec::new();
    for sender in senders {
        refusals.extend(sender.await.unwrap());
    }
    assert!(
        !refusals.is_empty(),
        "12 concurrent batches with one slot and no wait: some must be refused"
    );
    assert!(
        refusals.iter().all(|r| r.as_deref() == Some("1")),
        "{refusals:?}"
    );
    // Every event of every batch was counted exactly once.
    let mut rows = 0;
    let mut after = String::new();
    loop {
        let page = server
            .api(&admin)
            .get::<Value>(&format!("/api/v1/violations?limit=500&after={after}"))
            .await;
        let items = page["items"].as_array().unwrap();
        assert!(items.iter().all(|v| v["count"] == 1), "{page:#}");
        rows += items.len();
        match page["next"].as_str() {
            Some(next) => after = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(rows, batches * per_batch, "one violation per deployment");
    server.stop().await;
}

/// Polls the violations list until `pred` holds for one, or fails with the last list.
async fn wait_for_violation(
    server: &TestServer,
    token: &str,
    query: &str,
    within: Duration,
    mut poke: impl FnMut(),
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let list = server
            .api(token)
            .get::<Value>(&format!("/api/v1/violations?{query}"))
            .await;
        if let Some(hit) = list["items"].as_array().unwrap().iter().find(|v| pred(v)) {
            return hit.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no matching violation for {query} within {within:?}: {list:#}"
        );
        poke();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn the_test_beds_apiservers_report_audits_and_denials() {
    let testbed = crate::support::testbed().await;
    let receiver = AuditReceiver::shared(&testbed)
        .unwrap_or_else(|e| panic!("cannot receive the test bed's audit events: {e}"));
    let server = TestServer::with_key(&[]).await;
    let admin = server.login_token(Role::Admin).await;
    let cluster = &testbed.clusters[0];
    let id = server
        .api(&admin)
        .register_bed_cluster("ingest-real", "dev", cluster)
        .await
        .id;
    let token = server.api(&admin).ingest_token(&id).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    // The apiserver's webhook posts to the shared receiver (over http, where client-go sends no
    // token); the receiver relays each batch as it came, with the cluster's ingest token, and
    // answers the apiserver with Palisade's status.
    let relay = receiver.forward(
        &cluster.audit_path(),
        server.addr,
        INGEST,
        &format!("Bearer {token}"),
    );

    // A namespace that audits `restricted` and enforces `baseline`.
    let namespace = palisade_testbed::unique_name("ingest-it");
    let client = cluster.admin_client().await.unwrap();
    let labels = json!({
        "pod-security.kubernetes.io/audit": "restricted",
        "pod-security.kubernetes.io/enforce": "baseline",
    });
    create_namespace(&client, &namespace, labels).await;

    // A Deployment that baseline admits but restricted audits.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
    let plain: Deployment = serde_json::from_value(json!({
        "metadata": { "name": "plain" },
        "spec": { "selector": { "matchLabels": { "app": "plain" } },
                  "template": { "metadata": { "labels": { "app": "plain" } },
                                "spec": { "containers": [{ "name": "app", "image": "registry.example.com/app:1.0" }] } } },
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &plain)
        .await
        .unwrap();
    // A privileged Pod that baseline denies.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let denied = pods
        .create(&PostParams::default(), &privileged("root"))
        .await;
    assert!(denied.is_err(), "baseline must deny a privileged pod");

    let query = format!("namespace={namespace}&cluster={id}");
    let audited = wait_for_violation(
        &server,
        &admin,
        &query,
        Duration::from_secs(60),
        || {},
        |v| {
            v["policy"] == "pod-security:restricted"
                && v["action"] == "audit"
                && v["resource"] == "apps/deployments"
        },
    )
    .await;
    assert_eq!(audited["resource"], "apps/deployments");
    assert_eq!(audited["name"], "plain");
    assert_eq!(audited["source"], "audit");
    assert!(
        audited["message"]
            .as_str()
            .unwrap()
            .contains("runAsNonRoot"),
        "{audited:#}"
    );
    let refused = wait_for_violation(
        &server,
        &admin,
        &query,
        Duration::from_secs(60),
        || {},
        |v| v["policy"] == "pod-security:baseline" && v["action"] == "deny",
    )
    .await;
    assert_eq!(refused["resource"], "pods");
    assert_eq!(refused["name"], "root");
    assert!(
        refused["message"].as_str().unwrap().contains("privileged"),
        "{refused:#}"
    );
    // The scan: what Palisade deployed here (a `restricted` Pod Security level for the namespace)
    // against the live workloads, page by page.
    let labels = json!([{ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": namespace, "labels": {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest" } } }]);
    sqlx::query(
        "INSERT INTO deployments (cluster_id, policy_id, version, mode, manifests, rollout_id, applied_ms) \
         VALUES ($1, 'psa-scan-test', 1, 'enforce', $2, '', $3)",
    )
    .bind(&id)
    .bind(labels.to_string())
    .bind(palisade_app::db::now_ms())
    .execute(server.pool.pool())
    .await
    .unwrap();
    let approver = server.login_token(Role::Approver).await;
    let viewer = server.login_token(Role::Viewer).await;
    let refused = server
        .call("POST", &format!("/api/v1/clusters/{id}/scan"), &viewer, "")
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let scan = server.api(&approver).scan(&id).await;
    assert_eq!(scan["errors"], json!([]), "{scan:#}");
    assert!(scan["objects"].as_u64().unwrap() >= 1, "{scan:#}");
    let scanned = server
        .api(&viewer)
        .get::<Value>(&format!("/api/v1/violations?{query}&source=scan"))
        .await;
    let found = scanned["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "plain")
        .unwrap_or_else(|| panic!("the scan did not find the plain Deployment: {scanned:#}"))
        .clone();
    assert_eq!(found["policy"], "pod-security:restricted");
    assert_eq!(found["policy_id"], "psa-scan-test");
    assert_eq!(found["resource"], "apps/deployments");
    assert_eq!(found["resolved_ms"], 0);
    // Fixed in the cluster: the next scan resolves it.
    deployments
        .delete("plain", &kube::api::DeleteParams::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let scan = server.api(&approver).scan(&id).await;
    assert!(scan["resolved"].as_u64().unwrap() >= 1, "{scan:#}");
    let open = server
        .api(&viewer)
        .get::<Value>(&format!("/api/v1/violations?{query}&source=scan&open=true"))
        .await;
    assert!(
        open["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["name"] != "plain"),
        "{open:#}"
    );

    let statuses = relay.statuses();
    assert!(
        !statuses.is_empty() && statuses.iter().all(|s| *s == 200),
        "every relayed batch is accepted: {statuses:?}"
    );
    drop(relay);
    server.stop().await;
}

async fn wave_state(server: &TestServer, id: &str, position: i64) -> String {
    sqlx::query_scalar("SELECT state FROM rollout_waves WHERE rollout_id = $1 AND position = $2")
        .bind(id)
        .bind(position)
        .fetch_one(server.pool.pool())
        .await
        .unwrap()
}

/// A wave whose clusters report more violations during the soak than its threshold fails the
/// rollout; the evidence names the cluster and the workload.
#[tokio::test]
async fn a_soak_with_too_many_violations_fails_the_rollout_and_the_evidence_says_why() {
    use palisade_app::rollouts::ssr::{Executor, Settings};
    use palisade_app::violations::ssr::ingest;

    use crate::simulated::{with_idle_executor, Simulated};

    // The server's own executor sleeps: the test drives one with its own clock.
    let server = with_idle_executor(Backend::Sqlite).await;
    let simulated = Simulated::new(&server, Duration::from_millis(1)).await;
    let author = server.login_token(Role::Author).await;
    let approver = server.login_token(Role::Approver).await;
    let (admin, sealer, fleet) = (
        &simulated.admin,
        simulated.sealer.clone(),
        simulated.fleet.clone(),
    );
    let mut ids = Vec::new();
    for env in ["dev", "stage"] {
        let now = palisade_app::db::now_ms();
        let cluster = simulated
            .register(&server, &format!("gate-{env}"), env, now)
            .await;
        ids.push(cluster.id);
    }
    server.api(&author).adopt("disallow-privileged").await;
    let proposal = json!({ "policy": "disallow-privileged", "mode": "audit", "waves": [
        { "name": "dev", "selector": { "environment": "dev" }, "approvals": 1,
          "soak_secs": 60, "violation_threshold": 0 },
        { "name": "stage", "selector": { "environment": "stage" }, "approvals": 0 },
    ] });
    let id = propose_and_approve(&server, (&author, &approver), proposal).await;

    let executor = Executor::new(
        server.pool.clone(),
        Some(sealer.clone()),
        fleet.clone(),
        Settings {
            drift_every: None,
            ..Settings::default()
        },
    );
    let t0 = palisade_app::db::now_ms();
    for _ in 0..50 {
        executor.round(t0).await.unwrap();
        if wave_state(&server, &id, 0).await == "soaking" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(wave_state(&server, &id, 0).await, "soaking");
    let read_evidence = || async {
        server
            .api(&approver)
            .get::<Value>(&format!("/api/v1/rollouts/{id}/evidence"))
            .await
    };
    // Nothing has reported from the dev cluster yet: no violations is not evidence of none.
    let evidence = read_evidence().await;
    assert_eq!(evidence["clean"], false, "{evidence:#}");
    assert!(
        evidence["summary"]
            .as_str()
            .unwrap()
            .starts_with("No evidence yet"),
        "{evidence:#}"
    );
    // The dev cluster has been reporting for longer than the period, and still is; the stage
    // cluster never has: the summary says both, and it is not clean.
    let reporting = |id: String| {
        let pool = server.pool.pool().clone();
        async move {
            sqlx::query(
                "UPDATE clusters SET reporting_since_ms = $1, reported_ms = $2 \
                 WHERE $3 = '' OR id = $3",
            )
            .bind(t0 - 8 * 86_400_000)
            .bind(t0)
            .bind(id)
            .execute(&pool)
            .await
            .unwrap();
        }
    };
    reporting(ids[0].clone()).await;
    let evidence = read_evidence().await;
    assert_eq!(evidence["clean"], false, "{evidence:#}");
    assert_eq!(
        evidence["summary"],
        "No new violations for 7 days on gate-dev. No evidence from gate-stage: not yet \
         reported (audit events or a scan).",
        "{evidence:#}"
    );
    // Both reporting over the whole period: clean.
    reporting(String::new()).await;
    let evidence = read_evidence().await;
    assert_eq!(evidence["clean"], true, "{evidence:#}");
    assert_eq!(
        evidence["summary"], "No new violations for 7 days on gate-dev, gate-stage.",
        "{evidence:#}"
    );

    // The dev cluster's apiserver audits a privileged Deployment under the rolled-out policy.
    let token = ingest::rotate(&server.pool, admin, &ids[0], "", t0)
        .await
        .unwrap()
        .token;
    let vap = json!([{ "message": "privileged containers are not allowed", "policy": "disallow-privileged",
                       "validationActions": ["Audit"] }])
    .to_string();
    let mut e = event(
        "gate-1",
        "shop",
        json!({ "validation.policy.admission.k8s.io/validation_failure": vap }),
        json!({"code": 201}),
    );
    e["stageTimestamp"] = json!(null);
    let batch = json!({ "kind": "EventList", "items": [e] }).to_string();
    let reply = post_batch(&server, &token, &batch).await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    // The soak ends: the gate counts 1 > 0, the rollout fails, the next wave never starts.
    executor.round(t0 + 61_000).await.unwrap();
    assert_eq!(wave_state(&server, &id, 0).await, "failed");
    assert_eq!(wave_state(&server, &id, 1).await, "skipped");
    let rollout = server
        .api(&approver)
        .get::<Value>(&format!("/api/v1/rollouts/{id}"))
        .await;
    assert_eq!(rollout["summary"]["state"], "failed", "{rollout:#}");
    let evidence = read_evidence().await;
    assert_eq!(evidence["clean"], false, "{evidence:#}");
    assert_eq!(evidence["clusters"][0]["cluster_name"], "gate-dev");
    assert_eq!(evidence["clusters"][0]["violations"], 1);
    let workload = &evidence["workloads"][0];
    assert_eq!(workload["name"], "web-gate-1");
    assert_eq!(workload["namespace"], "shop");
    // The reported name was matched to the Palisade policy deployed on that cluster.
    assert_eq!(workload["policy_id"], evidence["policy_id"], "{evidence:#}");
    let audit = server
        .api(&admin_token(&server).await)
        .get::<Value>("/api/v1/audit?action=rollout.failed")
        .await;
    assert!(
        audit.to_string().contains("more than the threshold of 0"),
        "{audit:#}"
    );
    server.stop().await;
}

async fn admin_token(server: &TestServer) -> String {
    server.login_token(Role::Admin).await
}

/// Of two servers running the timed scan at the same moment, one scans each cluster; the next
/// interval it is due again.
async fn a_timed_scan_is_claimed_once(backend: Backend) {
    use palisade_app::violations::ssr::scan;

    use crate::simulated::Simulated;

    let server = TestServer::start(backend, &[("PALISADE__SECRETS__KEY", KEY)]).await;
    let simulated = Simulated::new(&server, Duration::from_millis(1)).await;
    let (sealer, fleet) = (simulated.sealer.clone(), simulated.fleet.clone());
    let now = palisade_app::db::now_ms();
    let cluster = simulated.register(&server, "timed", "prod", now).await;
    sqlx::query("INSERT INTO deployments (cluster_id, policy_id, version, mode, manifests, rollout_id, applied_ms) VALUES ($1, 'p', 1, 'audit', '[]', '', $2)")
        .bind(&cluster.id)
        .bind(now)
        .execute(server.pool.pool())
        .await
        .unwrap();
    let every = 900_000;
    let (a, b) = tokio::join!(
        scan::scan_due(&server.pool, Some(&sealer), fleet.as_ref(), now, every),
        scan::scan_due(&server.pool, Some(&sealer), fleet.as_ref(), now, every),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        a.len() + b.len(),
        1,
        "one of the two scans the cluster: {a:?} {b:?}"
    );
    assert!(a
        .iter()
        .chain(&b)
        .all(|s| s.errors.is_empty() && s.cluster_name == "timed"));
    let early = scan::scan_due(
        &server.pool,
        Some(&sealer),
        fleet.as_ref(),
        now + every - 1,
        every,
    )
    .await
    .unwrap();
    assert!(early.is_empty(), "not due yet: {early:?}");
    let later = scan::scan_due(
        &server.pool,
        Some(&sealer),
        fleet.as_ref(),
        now + every,
        every,
    )
    .await
    .unwrap();
    assert_eq!(later.len(), 1);
    server.stop().await;
}

on_each_database!(
    a_timed_scan_is_claimed_once:
    sqlite_a_timed_scan_is_claimed_once,
    postgres_a_timed_scan_is_claimed_once
);
