//! Posture on day one: the whole library judged against a cluster's inventory, nothing deployed.
//! On request over REST on both databases (from a seeded inventory), shown on the compliance page
//! as "assessed, not enforced"; and on its own once a real cluster's inventory is first complete.

use std::time::Duration;

use serde_json::Value;

use crate::client::{audited, json_of};
use crate::impact::{shop, Shop};
use crate::support::{on_each_database, Backend, TestServer};

/// The entry `id` of an assessment.
fn entry<'a>(assessment: &'a Value, id: &str) -> &'a Value {
    assessment["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["entry"] == id)
        .unwrap_or_else(|| panic!("no entry {id}: {assessment:#}"))
}

/// The cell of `control` on `cluster` in a compliance posture.
fn cell<'a>(posture: &'a Value, control: &str, cluster: &str) -> &'a Value {
    posture["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == control)
        .unwrap_or_else(|| panic!("no control {control}"))["cells"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["cluster_name"] == cluster)
        .unwrap()
}

async fn posture_over_http(backend: Backend) {
    let Shop {
        server,
        people,
        viewer,
        cluster,
    } = shop(backend).await;
    let path = format!("/api/v1/clusters/{}/posture", cluster.id);

    // Never assessed: null, not an error. Viewers read it; assessing needs an author.
    let none = server.call("GET", &path, &viewer, "").await;
    assert_eq!((none.status, none.body.trim()), (200, "null"));
    let refused = server.call("POST", &path, &viewer, "").await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let missing = server
        .call(
            "POST",
            "/api/v1/clusters/no-such-cluster/posture",
            &people.author,
            "",
        )
        .await;
    assert_eq!(missing.status, 404, "{}", missing.body);

    let assessed = server.call("POST", &path, &people.author, "").await;
    assert_eq!(assessed.status, 200, "{}", assessed.body);
    let assessment = json_of(&assessed);
    assert_eq!(assessment["objects"], 7, "{assessment:#}");
    assert_eq!(assessment["complete"], true);
    // The privileged Deployment `web` (through its Pods) and the legacy Pod fail both the
    // privileged entry and baseline; restricted also fails the clean Pod (it runs as root).
    let privileged = entry(&assessment, "disallow-privileged");
    assert_eq!(privileged["workloads"], 2, "{privileged:#}");
    let baseline = entry(&assessment, "pod-security-baseline");
    assert_eq!(baseline["workloads"], 2, "{baseline:#}");
    let namespaces: Vec<(&str, i64)> = baseline["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["namespace"].as_str().unwrap(),
                n["workloads"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(namespaces, [("legacy", 1), ("shop", 1)]);
    assert_eq!(
        baseline["namespaces"][1]["failing"][0]["workload"],
        "Deployment/web"
    );
    assert!(
        baseline["namespaces"][1]["failing"][0]["message"]
            .as_str()
            .unwrap()
            .contains("privileged"),
        "{baseline:#}"
    );
    assert_eq!(
        entry(&assessment, "pod-security-restricted")["workloads"],
        3
    );
    assert_eq!(
        entry(&assessment, "disallow-host-namespaces")["workloads"],
        0
    );
    // Failing entries first.
    assert!(assessment["entries"][0]["workloads"].as_i64().unwrap() > 0);
    let again = server.api(&viewer).get::<Value>(&path).await;
    assert_eq!(again, assessment);

    // Compliance: nothing is deployed, so the controls read "assessed": privileged containers
    // fail on two workloads, the host PID namespace passes.
    let posture = server
        .api(&viewer)
        .get::<Value>("/api/v1/compliance/cis")
        .await;
    let privileged = cell(&posture, "5.2.2", "shop-1");
    assert_eq!(privileged["status"], "assessed", "{privileged:#}");
    assert_eq!(privileged["assessed"]["failing"], 2, "{privileged:#}");
    let host_pid = cell(&posture, "5.2.3", "shop-1");
    assert_eq!(host_pid["status"], "assessed", "{host_pid:#}");
    assert_eq!(host_pid["assessed"]["failing"], 0, "{host_pid:#}");
    // Assessed is not passing: the score does not move.
    assert_eq!(posture["score"], 0, "{posture:#}");
    let csv = crate::compliance::cis_evidence_csv(&server, &viewer).await;
    assert!(
        csv.body.lines().any(|l| l.starts_with("cis,5.2.2,")
            && l.contains(",assessed,")
            && l.trim_end().ends_with(",2")),
        "{}",
        csv.body
    );

    // Who assessed, in the audit log.
    let detail = audited(&server, &people.admin, "cluster.assess").await;
    assert_eq!(detail["cluster"], "shop-1");
    assert_eq!(detail["objects"], 7);
    server.stop().await;
}

on_each_database!(posture_over_http: sqlite_posture_over_http, postgres_posture_over_http);

/// A cluster registered with the inventory on is assessed on its own once every kind is listed.
#[tokio::test]
async fn a_new_cluster_is_assessed_once_its_inventory_is_whole() {
    let testbed = crate::support::testbed().await;
    let cluster = &testbed.clusters[1];
    let server = TestServer::with_key(&[("PALISADE__INVENTORY__LEASE_SECS", "3")]).await;
    let people = server.people().await;
    let registered = server
        .api(&people.admin)
        .register_bed_cluster("posture-2", "staging", cluster)
        .await;
    let path = format!("/api/v1/clusters/{}/posture", registered.id);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let assessment = loop {
        let found: Value = server.api(&people.author).get(&path).await;
        if !found.is_null() {
            break found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new cluster was not assessed within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(assessment["cluster_name"], "posture-2");
    assert_eq!(assessment["complete"], true, "{assessment:#}");
    assert!(
        assessment["objects"].as_i64().unwrap() > 0,
        "{assessment:#}"
    );
    let library = server
        .api(&people.author)
        .get::<Value>("/api/v1/library")
        .await;
    assert_eq!(
        assessment["entries"].as_array().unwrap().len(),
        library
            .as_array()
            .map_or_else(|| library["entries"].as_array().unwrap().len(), Vec::len),
        "every library entry is assessed"
    );
    // Nothing was deployed to assess it.
    let deployments = server
        .api(&people.author)
        .get::<Value>("/api/v1/deployments")
        .await;
    assert_eq!(deployments, serde_json::json!([]));
    server.stop().await;
}
