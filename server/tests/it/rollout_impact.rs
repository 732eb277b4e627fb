//! A rollout judges its impact before it runs: an `enforce` proposal that would deny running
//! workloads is refused until the proposer acknowledges it, and the numbers go to the audit log
//! with the proposal and with each approval. On both databases, from a seeded inventory.

use serde_json::{json, Value};

use crate::client::audited;
use crate::client::json_of;
use crate::impact::{shop, Shop};
use crate::support::{on_each_database, Backend};

fn proposal(mode: &str, namespaces: &[&str], acknowledge: bool) -> String {
    json!({
        "policy": "pod-security-baseline",
        "mode": mode,
        "namespaces": namespaces,
        "waves": [{ "name": "prod", "selector": {}, "approvals": 2 }],
        "acknowledge_denials": acknowledge,
    })
    .to_string()
}

async fn enforce_needs_an_acknowledgement(backend: Backend) {
    let Shop {
        server,
        people,
        viewer,
        cluster,
    } = shop(backend).await;
    server
        .api(&people.author)
        .adopt_new("pod-security-baseline")
        .await;

    // Enforcing baseline on both namespaces would deny the Deployment `web` (its privileged Pods)
    // and the legacy Pod: refused, naming the field, the number and the cluster.
    let refused = server
        .call(
            "POST",
            "/api/v1/rollouts",
            &people.author,
            &proposal("enforce", &["shop", "legacy"], false),
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused.body.contains("acknowledge_denials")
            && refused.body.contains("would deny 2 running workloads")
            && refused.body.contains("2 on `shop-1`"),
        "{}",
        refused.body
    );
    // Only the namespaces the rollout labels count: `shop` alone holds one denied workload.
    let one = server
        .call(
            "POST",
            "/api/v1/rollouts",
            &people.author,
            &proposal("enforce", &["shop"], false),
        )
        .await;
    one.assert_says(400, "would deny 1 running workload ");

    // The form's preview: per wave and cluster, in the rollout's mode; authors only.
    let input: Value =
        serde_json::from_str(&proposal("enforce", &["shop", "legacy"], false)).unwrap();
    let preview: Value = server
        .api(&people.author)
        .send(
            "POST",
            "/api/proposal_impact",
            Some(json!({ "input": input })),
            200,
        )
        .await;
    assert_eq!(preview["denied"], 2, "{preview:#}");
    assert_eq!(preview["complete"], true, "{preview:#}");
    assert_eq!(preview["waves"][0]["name"], "prod");
    assert_eq!(preview["waves"][0]["clusters"][0]["cluster_name"], "shop-1");
    let forbidden = server
        .call(
            "POST",
            "/api/proposal_impact",
            &viewer,
            &json!({ "input": input }).to_string(),
        )
        .await;
    assert_eq!(forbidden.status, 403, "{}", forbidden.body);
    // The form names its impact with a key to ask how far it has got: held to its budget before
    // anything is evaluated, and gone once the preview answered.
    let long = "k".repeat(palisade_app::impact::ssr::progress::KEY_LIMIT + 1);
    server
        .call(
            "POST",
            "/api/proposal_impact",
            &people.author,
            &json!({ "input": input, "progress": long }).to_string(),
        )
        .await
        .assert_says(400, "progress");
    let tracked = server
        .call(
            "POST",
            "/api/proposal_impact",
            &people.author,
            &json!({ "input": input, "progress": "form-1" }).to_string(),
        )
        .await;
    assert_eq!(tracked.status, 200, "{}", tracked.body);
    assert_eq!(json_of(&tracked)["denied"], 2);
    let after = server
        .call("POST", "/api/impact_progress", &people.author, "key=form-1")
        .await;
    assert_eq!((after.status, after.body.as_str()), (200, "null"));
    // Audit mode denies nothing: the same rollout's preview records instead.
    let audit_input: Value =
        serde_json::from_str(&proposal("audit", &["shop", "legacy"], false)).unwrap();
    let audit = json_of(
        &server
            .call(
                "POST",
                "/api/proposal_impact",
                &people.author,
                &json!({ "input": audit_input }).to_string(),
            )
            .await,
    );
    assert_eq!(audit["denied"], 0, "{audit:#}");
    assert_eq!(audit["waves"][0]["clusters"][0]["audit"], 2, "{audit:#}");

    // Acknowledged, it is proposed, and the number is on record.
    let proposed = server
        .call(
            "POST",
            "/api/v1/rollouts",
            &people.author,
            &proposal("enforce", &["shop", "legacy"], true),
        )
        .await;
    assert_eq!(proposed.status, 201, "{}", proposed.body);
    let rollout = json_of(&proposed);
    assert_eq!(rollout["acknowledged_denials"], 2, "{rollout:#}");
    let id = rollout["summary"]["id"].as_str().unwrap().to_owned();
    let on_record = audited(&server, &people.admin, "rollout.propose").await;
    assert_eq!(
        on_record["impact"],
        json!({ "denied": 2, "complete": true, "clusters": { "shop-1": 2 } }),
        "{on_record:#}"
    );

    // Anyone who may read it sees the rollout's impact now.
    let now = server
        .call(
            "POST",
            "/api/get_rollout_impact",
            &viewer,
            &json!({ "id": id }).to_string(),
        )
        .await;
    assert_eq!(now.status, 200, "{}", now.body);
    assert_eq!(json_of(&now)["denied"], 2);
    let keyed = server
        .call(
            "POST",
            "/api/get_rollout_impact",
            &viewer,
            &json!({ "id": id, "progress": "review-1" }).to_string(),
        )
        .await;
    assert_eq!(json_of(&keyed)["denied"], 2, "{}", keyed.body);
    server
        .call(
            "POST",
            "/api/get_rollout_impact",
            &viewer,
            &json!({ "id": id, "progress": "not a key" }).to_string(),
        )
        .await
        .assert_says(400, "progress");
    let rest = server
        .call("GET", &format!("/api/v1/rollouts/{id}/impact"), &viewer, "")
        .await;
    assert_eq!(rest.status, 200, "{}", rest.body);
    assert_eq!(json_of(&rest)["waves"][0]["clusters"][0]["deny"], 2);

    // The inventory changes: the legacy Pod goes. The approval records what the wave would deny
    // now, beside what was acknowledged.
    palisade_app::inventory::ssr::keeper::apply(
        &server.pool,
        &cluster.id,
        &[palisade_app::inventory::ssr::changes::Write::Remove {
            uid: "uid-legacy-old".to_owned(),
        }],
    )
    .await
    .unwrap();
    let approved = server
        .call(
            "POST",
            &format!("/api/v1/rollouts/{id}/approve"),
            &people.approver,
            &json!({ "comment": "known" }).to_string(),
        )
        .await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    let on_record = audited(&server, &people.admin, "rollout.approve").await;
    assert_eq!(on_record["acknowledged_denials"], 2, "{on_record:#}");
    assert_eq!(
        on_record["impact"],
        json!({ "denied": 1, "complete": true, "clusters": { "shop-1": 1 } }),
        "{on_record:#}"
    );
    server.stop().await;
}

on_each_database!(
    enforce_needs_an_acknowledgement:
    sqlite_enforce_needs_an_acknowledgement,
    postgres_enforce_needs_an_acknowledgement
);
