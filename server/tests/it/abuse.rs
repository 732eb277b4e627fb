//! What an attacker would try against a running server, each as real requests: every attempt is
//! refused or absorbed within its budget, and the server still answers afterwards.

use serde_json::{json, Value};

use crate::support::{request, Backend, People, TestServer};

const KEY: &str = "5b1f0c3e9a7d4e2f8c6b0a1d3e5f7a9b2c4d6e8f0a1b3c5d7e9f1a2b4c6d8e0f";

/// Made-up HTTP methods (any token is a valid method on the wire) share one `other` label, so
/// unauthenticated requests cannot grow `/metrics` without bound.
#[tokio::test]
async fn made_up_methods_cannot_grow_the_metrics() {
    let server = TestServer::start(Backend::Sqlite, &[]).await;
    let before = server.get("/metrics").await.body.len();
    for i in 0..1_000 {
        let method = format!("X{i:04}{}", "M".repeat(200));
        request(server.addr, &method, "/healthz", &[], "").await;
    }
    let metrics = server.get("/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.body.len() < before + 8_192,
        "/metrics grew from {before} to {} bytes",
        metrics.body.len()
    );
    assert!(
        !metrics.body.contains("X0001"),
        "a made-up method became a label"
    );
    let other = metrics
        .body
        .lines()
        .find(|l| l.starts_with("palisade_http_requests_total") && l.contains("method=\"other\""))
        .unwrap_or_else(|| panic!("no `other` series in\n{}", metrics.body));
    assert!(other.ends_with(" 1000"), "{other}");
    assert_eq!(server.get("/healthz").await.status, 200);
    server.stop().await;
}

/// What approvers review is what the steps apply: the proposed version's manifests, never the
/// policy's current version. An author saves a version 2 and then a version 3, proposes version
/// 2, and the review shows version 2.
#[tokio::test]
async fn the_review_shows_the_proposed_version_not_the_current_one() {
    let server = TestServer::start(Backend::Sqlite, &[("PALISADE__SECRETS__KEY", KEY)]).await;
    let People { admin, author, .. } = server.people().await;
    server
        .api(&admin)
        .register_unreachable("review-1", "dev")
        .await;
    let detail = server.api(&author).adopt("disallow-privileged").await;
    let path = "/api/v1/policies/disallow-privileged/versions";
    for (base, marker) in [(1, "proposed-two"), (2, "current-three")] {
        let mut content = serde_json::to_value(&detail.current.content).unwrap();
        content["source"] = json!(detail.current.content.source.replace(
            "message: privileged containers are not allowed",
            &format!("message: {marker} privileged containers are not allowed"),
        ));
        content["base_version"] = json!(base);
        content["note"] = json!(marker);
        let saved = server
            .call("POST", path, &author, &content.to_string())
            .await;
        assert_eq!(saved.status, 201, "{}", saved.body);
    }
    let rollout = server
        .api(&author)
        .propose(json!({
            "policy": "disallow-privileged", "version": 2, "mode": "audit",
            "waves": [{ "selector": {} }],
        }))
        .await;
    let reply = server
        .call(
            "POST",
            "/api/get_proposed_change",
            &admin,
            &json!({ "id": rollout.summary.id }).to_string(),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let change: Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(change["version"], 2);
    let manifests = change["manifests"].as_str().unwrap();
    assert!(manifests.contains("proposed-two"), "{manifests}");
    assert!(!manifests.contains("current-three"), "{manifests}");
    // Nothing runs there yet: the diff adds every line of what will be applied.
    let cluster = &change["clusters"][0];
    assert_eq!(cluster["cluster"], "review-1");
    assert!(cluster["running"].is_null());
    assert_eq!(cluster["diff"]["removed"], 0);
    assert_eq!(
        cluster["diff"]["added"].as_u64().unwrap() as usize,
        manifests.lines().count()
    );
    server.stop().await;
}

/// The peak resident memory of this process so far, in KiB (the server runs inside it).
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

/// Nested YAML aliases ("billion laughs"): a 200 KB document that would expand to a gigabyte is
/// refused by every path that reads policy YAML, naming the budget, without the memory.
#[tokio::test]
async fn yaml_alias_bombs_are_refused_without_expanding() {
    let server = TestServer::start(Backend::Sqlite, &[]).await;
    let People { author, .. } = server.people().await;
    let mut bomb = format!("pad: [{}]\n", vec!["x"; 100_000].join(","));
    bomb.push_str(&format!("a0: &a0 [\"{}\"]\n", "lol ".repeat(250)));
    for level in 1..=6 {
        let list = vec![format!("*a{}", level - 1); 10].join(", ");
        bomb.push_str(&format!("a{level}: &a{level} [{list}]\n"));
    }
    assert!(bomb.len() < 250_000, "{}", bomb.len());
    let before = peak_rss_kib();
    let check = server
        .call(
            "POST",
            "/api/v1/policies/check",
            &author,
            &json!({ "source": bomb }).to_string(),
        )
        .await;
    assert_eq!(check.status, 200, "{}", check.body);
    let check: Value = serde_json::from_str(&check.body).unwrap();
    assert_eq!(check["valid"], false);
    let problem = check["problems"][0]["message"].as_str().unwrap();
    assert!(problem.contains("YAML aliases"), "{problem}");
    let created = server
        .call(
            "POST",
            "/api/v1/policies",
            &author,
            &json!({ "from": "yaml", "source": bomb }).to_string(),
        )
        .await;
    assert_eq!(created.status, 400, "{}", created.body);
    assert!(created.body.contains("YAML aliases"), "{}", created.body);
    let grown_mib = peak_rss_kib().saturating_sub(before) / 1024;
    eprintln!("alias bomb: peak RSS grew by {grown_mib} MiB");
    assert!(grown_mib < 150, "peak RSS grew by {grown_mib} MiB");
    assert_eq!(server.get("/healthz").await.status, 200);
    server.stop().await;
}
