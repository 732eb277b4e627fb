//! Compliance posture on both databases: what is deployed where and what was reported decide each
//! control's status per cluster, the score follows, and the evidence exports (audited) say the same.

use palisade_app::auth::Role;
use palisade_app::violations::ssr::store;
use palisade_app::violations::{Action, Source};
use serde_json::Value;

use crate::support::{on_each_database, Backend, TestServer, KEY};

/// The CIS evidence for auditors, as CSV, read by `viewer`.
pub async fn cis_evidence_csv(server: &TestServer, viewer: &str) -> crate::support::Reply {
    let path = "/api/v1/compliance/cis/evidence?format=csv";
    server.call("GET", path, viewer, "").await
}

async fn posture_follows_deployments_and_violations(backend: Backend) {
    let server = TestServer::start(backend, &[("PALISADE__SECRETS__KEY", KEY)]).await;
    let admin = server.login_token(Role::Admin).await;
    let author = server.login_token(Role::Author).await;
    let viewer = server.login_token(Role::Viewer).await;
    let mut clusters = Vec::new();
    for name in ["comp-a", "comp-b"] {
        clusters.push(
            server
                .api(&admin)
                .register_unreachable(name, "prod")
                .await
                .id,
        );
    }
    let policy = server
        .api(&author)
        .adopt("disallow-privileged")
        .await
        .policy
        .id;

    // Before anything is deployed, every cell is not covered and the score is 0.
    let before = server
        .api(&viewer)
        .get::<Value>("/api/v1/compliance/cis")
        .await;
    assert_eq!(before["score"], 0, "{before:#}");
    let row = |p: &Value, id: &str| {
        p["controls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no control {id}: {p:#}"))
    };
    let c522 = row(&before, "5.2.2");
    assert_eq!(c522["title"], "Privileged containers are not admitted");
    assert!(c522["policies"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["policy_id"] == policy.as_str()));
    assert!(c522["cells"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["status"] == "not_covered"));

    // Enforced on comp-a; audited on comp-b, where three findings of it are open.
    let now = palisade_app::db::now_ms();
    for (cluster, mode) in [(&clusters[0], "enforce"), (&clusters[1], "audit")] {
        sqlx::query("INSERT INTO deployments (cluster_id, policy_id, version, mode, manifests, rollout_id, applied_ms) VALUES ($1, $2, 1, $3, '[]', 'r-1', $4)")
            .bind(cluster).bind(&policy).bind(mode).bind(now)
            .execute(server.pool.pool()).await.unwrap();
    }
    // Written as a scan writes them (the compliance counts follow every write of violations).
    let finding = |name: String, at_ms: i64| store::Finding {
        policy_id: policy.clone(),
        policy: "disallow-privileged".into(),
        resource: "pods".into(),
        namespace: "shop".into(),
        name,
        uid: String::new(),
        action: Action::Audit,
        source: Source::Scan,
        message: "privileged containers are not allowed".into(),
        at_ms,
    };
    let mut tx = server.pool.begin().await.unwrap();
    let open: Vec<_> = (0..3).map(|n| finding(format!("web-{n}"), now)).collect();
    store::record(&mut tx, &clusters[1], &open, 0)
        .await
        .unwrap();
    // A resolved finding (the workload was fixed: the next scan did not see it) tells against
    // nothing.
    store::record(
        &mut tx,
        &clusters[0],
        &[finding("fixed".into(), now - 1)],
        0,
    )
    .await
    .unwrap();
    store::resolve_unseen(&mut tx, &clusters[0], Source::Scan, now, now)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let after = server
        .api(&viewer)
        .get::<Value>("/api/v1/compliance/cis")
        .await;
    let cells = row(&after, "5.2.2")["cells"].as_array().unwrap().clone();
    let cell = |name: &str| {
        cells
            .iter()
            .find(|c| c["cluster_name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(cell("comp-a")["status"], "enforced", "{cells:#?}");
    assert_eq!(cell("comp-a")["deployments"][0]["mode"], "enforce");
    assert_eq!(cell("comp-b")["status"], "violations");
    assert_eq!(cell("comp-b")["violations"], 3);
    // The score is the share of passing cells.
    let all: Vec<&Value> = after["controls"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["cells"].as_array().unwrap())
        .collect();
    let passing = all
        .iter()
        .filter(|c| c["status"] == "enforced" || c["status"] == "audited_clean")
        .count();
    assert_eq!(
        after["score"].as_u64().unwrap() as usize,
        passing * 100 / all.len()
    );
    assert!(passing >= 1);
    let summaries = server.api(&viewer).get::<Value>("/api/v1/compliance").await;
    assert_eq!(summaries.as_array().unwrap().len(), 4, "{summaries:#}");
    assert!(summaries
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["framework"] == "soc2" && f["score"].as_u64().unwrap() > 0));

    // Evidence for auditors, each export in the audit log.
    let csv = cis_evidence_csv(&server, &viewer).await;
    assert_eq!(csv.status, 200);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(lines.len(), 1 + all.len(), "{}", csv.body);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("cis,5.2.2,") && l.contains(",comp-a,enforced,0,")),
        "{}",
        csv.body
    );
    let evidence = server
        .api(&viewer)
        .get::<Value>("/api/v1/compliance/pci-dss/evidence")
        .await;
    assert_eq!(evidence["framework"], "pci-dss");
    assert_eq!(evidence["window_days"], 7);
    let audit = server
        .api(&admin)
        .get::<Value>("/api/v1/audit?action=compliance.export")
        .await;
    assert_eq!(audit["total"], 2, "{audit:#}");
    let unknown = server
        .call("GET", "/api/v1/compliance/iso-27001", &viewer, "")
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);

    // The page shows the matrix.
    let page = server
        .call("GET", "/compliance?framework=cis", &viewer, "")
        .await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("data-status=\"enforced\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("Privileged containers are not admitted"));
    server.stop().await;
}

on_each_database!(
    posture_follows_deployments_and_violations:
    sqlite_posture_follows_deployments_and_violations,
    postgres_posture_follows_deployments_and_violations
);

/// With more clusters than the page shows at once, the page draws twelve cluster columns and pages
/// through the rest; the REST posture keeps every cluster.
#[tokio::test]
async fn the_page_shows_twelve_clusters_at_a_time() {
    let server = TestServer::with_key(&[]).await;
    let admin = server.login_token(Role::Admin).await;
    let viewer = server.login_token(Role::Viewer).await;
    for n in 0..14 {
        server
            .api(&admin)
            .register_unreachable(&format!("fleet-{n:02}"), "prod")
            .await;
    }
    let columns = |body: &str| body.matches("<th scope=\"col\">fleet-").count();
    let first = server
        .call("GET", "/compliance?framework=cis", &viewer, "")
        .await;
    assert_eq!(first.status, 200);
    assert_eq!(columns(&first.body), 12, "{}", first.body);
    assert!(first.body.contains("Clusters 1–12 of 14"), "{}", first.body);
    assert!(
        first
            .body
            .contains("href=\"/compliance?framework=cis&amp;after=12\""),
        "{}",
        first.body
    );
    let next = server
        .call("GET", "/compliance?framework=cis&after=12", &viewer, "")
        .await;
    assert_eq!(columns(&next.body), 2, "{}", next.body);
    assert!(next.body.contains("Clusters 13–14 of 14"), "{}", next.body);
    assert!(next.body.contains("fleet-13") && !next.body.contains(">fleet-00<"));
    let all = server
        .api(&viewer)
        .get::<Value>("/api/v1/compliance/cis")
        .await;
    assert_eq!(all["clusters"].as_array().unwrap().len(), 14);
    assert_eq!(all["cluster_total"], 14);
    server.stop().await;
}
