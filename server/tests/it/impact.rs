//! Impact previews over HTTP on both databases, from an inventory written the way the keeper
//! writes it: the workloads a version would deny, grouped by owner, compared with nothing deployed,
//! with an active exception shown as such; a draft's impact needs the author role and a broken
//! draft is refused naming the source. Against a real kube-apiserver, impact is held to what the
//! cluster then does: Pod Security enforced on a namespace denies exactly the Pods impact named,
//! with the apiserver's messages.

use palisade_app::auth::Role;
use palisade_app::exceptions::DAY_MS;
use palisade_app::inventory::ssr::changes::{held, Write};
use palisade_app::inventory::ssr::keeper::apply;
use palisade_app::inventory::ssr::kinds::KINDS;
use serde_json::{json, Value};

use crate::support::{Backend, TestServer};

const KEY: &str = "5b1f0c3e9a7d4e2f8c6b0a1d3e5f7a9b2c4d6e8f0a1b3c5d7e9f1a2b4c6d8e0f";

fn body(reply: &crate::support::Reply) -> Value {
    serde_json::from_str(&reply.body).unwrap_or_else(|_| panic!("not JSON: {}", reply.body))
}

async fn adopt(server: &TestServer, token: &str, entry: &str) -> String {
    let adopt = json!({ "from": "library", "entry": entry }).to_string();
    let created = server.call("POST", "/api/v1/policies", token, &adopt).await;
    assert_eq!(created.status, 201, "{}", created.body);
    body(&created)["policy"]["id"].as_str().unwrap().to_owned()
}

fn pod(namespace: &str, name: &str, owner: Option<(&str, &str, &str)>, privileged: bool) -> Value {
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "uid": format!("uid-{namespace}-{name}")},
        "spec": {"containers": [{"name": "c", "image": "registry.example/app:1", "securityContext": {"privileged": privileged}}]},
    });
    if let Some((kind, name, uid)) = owner {
        pod["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": uid, "controller": true}]);
    }
    pod
}

/// The inventory of a small cluster, as the keeper would have written it after listing.
async fn write_inventory(db: &palisade_app::db::Db, cluster_id: &str) {
    let mut objects = vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "uid": "uid-ns-shop"}}),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "legacy", "uid": "uid-ns-legacy"}}),
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
               "metadata": {"name": "web-1", "namespace": "shop", "uid": "uid-rs",
                            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "uid-deploy", "controller": true}]},
               "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}),
        pod(
            "shop",
            "web-1-a",
            Some(("ReplicaSet", "web-1", "uid-rs")),
            true,
        ),
        pod(
            "shop",
            "web-1-b",
            Some(("ReplicaSet", "web-1", "uid-rs")),
            true,
        ),
        pod("shop", "clean", None, false),
        pod("legacy", "old", None, true),
    ];
    let mut writes: Vec<Write> = objects
        .drain(..)
        .map(|o| Write::Put {
            held: held(o).unwrap(),
            seen_ms: 10,
        })
        .collect();
    writes.extend(KINDS.iter().map(|(_, kind, _)| Write::Listed {
        kind: (*kind).to_owned(),
        started_ms: 10,
        at_ms: 20,
    }));
    apply(db, cluster_id, &writes).await.unwrap();
}

async fn impact_of(server: &TestServer, token: &str, body: Value) -> crate::support::Reply {
    server
        .call("POST", "/api/policy_impact", token, &body.to_string())
        .await
}

async fn impact_over_http(backend: Backend) {
    let server = TestServer::start(
        backend,
        &[
            ("PALISADE__SECRETS__KEY", KEY),
            ("PALISADE__INVENTORY__ENABLED", "false"),
        ],
    )
    .await;
    let people = server.people().await;
    let viewer = server.login_token(Role::Viewer).await;
    let (approver, approver_token) = server.user_token(Role::Approver).await;
    let _ = approver;
    let cluster = server
        .api(&people.admin)
        .register_unreachable("shop-1", "prod")
        .await;
    write_inventory(&server.pool, &cluster.id).await;
    let baseline = adopt(&server, &people.author, "pod-security-baseline").await;

    // A viewer may see the impact of a saved version.
    let reply = impact_of(&server, &viewer, json!({"policy_id": baseline})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let impact = body(&reply);
    let shop = &impact["clusters"][0];
    assert_eq!(shop["cluster_name"], "shop-1");
    assert_eq!(shop["objects"], 7);
    assert!(shop["listed_ms"].as_i64().unwrap() > 0, "{shop:#}");
    assert!(shop["running"].is_null(), "{shop:#}");
    // Two workloads denied: the Deployment (through its two Pods) and the legacy Pod; both new.
    assert_eq!(
        (shop["deny"].as_i64(), shop["newly_denied"].as_i64()),
        (Some(2), Some(2)),
        "{shop:#}"
    );
    let denied: Vec<(String, i64)> = shop["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["action"] == "deny")
        .map(|w| {
            (
                format!(
                    "{}/{} {}",
                    w["namespace"].as_str().unwrap(),
                    w["owner_kind"].as_str().unwrap(),
                    w["owner_name"].as_str().unwrap()
                ),
                w["objects"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        denied,
        [
            ("legacy/Pod old".to_owned(), 1),
            ("shop/Deployment web".to_owned(), 2)
        ]
    );
    let web = shop["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["owner_name"] == "web" && w["action"] == "deny")
        .unwrap();
    assert!(
        web["message"].as_str().unwrap().contains("privileged"),
        "{web:#}"
    );
    assert_eq!(web["change"], "new");

    // An approved exception for the legacy namespace: that workload is shown as excepted.
    let request = json!({
        "policy": baseline,
        "scope": {"kind": "namespaces", "namespaces": ["legacy"]},
        "justification": "being retired this quarter",
        "ticket": "SEC-7",
        "expires_ms": palisade_app::db::now_ms() + 30 * DAY_MS,
    });
    let asked = server
        .call(
            "POST",
            "/api/v1/exceptions",
            &people.author,
            &request.to_string(),
        )
        .await;
    assert_eq!(asked.status, 201, "{}", asked.body);
    let id = body(&asked)["id"].as_str().unwrap().to_owned();
    let decided = server
        .call(
            "POST",
            &format!("/api/v1/exceptions/{id}/decision"),
            &approver_token,
            &json!({"approve": true, "comment": "ok"}).to_string(),
        )
        .await;
    assert_eq!(decided.status, 200, "{}", decided.body);
    let impact = body(&impact_of(&server, &viewer, json!({"policy_id": baseline})).await);
    let shop = &impact["clusters"][0];
    assert_eq!(
        (shop["deny"].as_i64(), shop["excepted"].as_i64()),
        (Some(1), Some(2)),
        "{shop:#}"
    );
    let old = shop["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["owner_name"] == "old" && w["action"] == "deny")
        .unwrap();
    assert_eq!(old["excepted"], true);

    // A draft: restricted instead of baseline also denies the clean Pod (it runs as root). Only
    // authors may preview drafts.
    let draft = json!({
        "policy_id": baseline,
        "draft": {"source": "apiVersion: palisade.dev/v1alpha1\nkind: PodSecurityEntry\nmetadata: {name: pod-security-baseline}\nspec: {level: restricted, version: latest}\n"},
    });
    let refused = impact_of(&server, &viewer, draft.clone()).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let reply = impact_of(&server, &people.author, draft).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let impact = body(&reply);
    assert!(impact["version"].is_null());
    let mut owners: Vec<&str> = impact["clusters"][0]["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["action"] == "deny" && w["excepted"] == false)
        .map(|w| w["owner_name"].as_str().unwrap())
        .collect();
    owners.sort_unstable();
    assert_eq!(owners, ["clean", "web"]);

    // A broken draft is a 400 that names the source and where.
    let broken = impact_of(
        &server,
        &people.author,
        json!({"policy_id": baseline, "draft": {"source": "kind: [unclosed"}}),
    )
    .await;
    assert_eq!(broken.status, 400, "{}", broken.body);
    assert!(broken.body.contains("source"), "{}", broken.body);
    // An unknown policy is a 404.
    let missing = impact_of(&server, &viewer, json!({"policy_id": "no-such-policy"})).await;
    assert_eq!(missing.status, 404, "{}", missing.body);
    server.stop().await;
}

#[tokio::test]
async fn sqlite_impact_over_http() {
    impact_over_http(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_impact_over_http() {
    impact_over_http(Backend::Postgres).await;
}
