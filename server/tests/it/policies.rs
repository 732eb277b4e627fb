//! `/api/v1/policies` and `/api/v1/library` over HTTP with real API tokens, on both databases:
//! create from the library and from YAML, refusals at their line, versions, diff, test runs,
//! staging and the manifests download; viewers read but do not write.

use palisade_app::auth::Role;
use serde_json::{json, Value};

use crate::support::{on_each_database, Backend, TestServer};

fn body(reply: &crate::support::Reply) -> Value {
    serde_json::from_str(&reply.body).unwrap_or_else(|_| panic!("not JSON: {}", reply.body))
}

async fn policies_over_rest(backend: Backend) {
    let server = TestServer::start(backend, &[]).await;
    let author = server.login_token(Role::Author).await;
    let viewer = server.login_token(Role::Viewer).await;

    // The library, and adopting an entry.
    let library = server.call("GET", "/api/v1/library", &viewer, "").await;
    assert_eq!(library.status, 200, "{}", library.body);
    let entries = body(&library);
    assert!(entries.as_array().unwrap().len() >= 18);
    let adopt = json!({ "from": "library", "entry": "disallow-latest-tag" }).to_string();
    let refused = server
        .call("POST", "/api/v1/policies", &viewer, &adopt)
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let created = server
        .call("POST", "/api/v1/policies", &author, &adopt)
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let detail = body(&created);
    let id = detail["policy"]["id"].as_str().unwrap().to_owned();
    assert_eq!(detail["policy"]["name"], "disallow-latest-tag");
    assert_eq!(detail["current"]["number"], 1);
    let again = server
        .call("POST", "/api/v1/policies", &author, &adopt)
        .await;
    assert_eq!(again.status, 409, "{}", again.body);

    // Broken YAML is refused with its line; nothing is created.
    let broken = json!({ "from": "yaml", "source": "apiVersion: v1\nkind: [\n" }).to_string();
    let refused = server
        .call("POST", "/api/v1/policies", &author, &broken)
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        body(&refused)["Invalid"]
            .as_str()
            .unwrap()
            .starts_with("policy:"),
        "{}",
        refused.body
    );
    let check = server
        .call(
            "POST",
            "/api/v1/policies/check",
            &viewer,
            &json!({ "source": "apiVersion: v1\nkind: [\n" }).to_string(),
        )
        .await;
    assert_eq!(check.status, 200);
    assert_eq!(body(&check)["valid"], false);
    assert!(body(&check)["problems"][0]["line"].as_u64().unwrap() >= 2);

    // A new version through the API, by name; a stale base is a conflict.
    let mut content = detail["current"].clone();
    content["remediation"] = json!("Pin a version tag.");
    content["base_version"] = json!(1);
    content["note"] = json!("clearer");
    let path = "/api/v1/policies/disallow-latest-tag/versions";
    let saved = server
        .call("POST", path, &author, &content.to_string())
        .await;
    assert_eq!(saved.status, 201, "{}", saved.body);
    assert_eq!(body(&saved)["number"], 2);
    assert_eq!(body(&saved)["author_name"], "Test author");
    let stale = server
        .call("POST", path, &author, &content.to_string())
        .await;
    assert_eq!(stale.status, 409, "{}", stale.body);
    let versions = server.call("GET", path, &viewer, "").await;
    assert_eq!(body(&versions).as_array().unwrap().len(), 2);

    let diff = server
        .call(
            "GET",
            &format!("/api/v1/policies/{id}/diff?from=1&to=2"),
            &viewer,
            "",
        )
        .await;
    assert_eq!(diff.status, 200, "{}", diff.body);
    assert_eq!(body(&diff)["files"][0]["name"], "remediation");

    // Test runs: authors run, everyone reads the stored result.
    let runs = format!("/api/v1/policies/{id}/versions/2/test-runs");
    assert_eq!(server.call("POST", &runs, &viewer, "").await.status, 403);
    let run: Value = server.api(&author).send("POST", &runs, None, 201).await;
    assert_eq!(run["failed"], 0, "{run}");
    assert!(run["passed"].as_u64().unwrap() >= 3);
    let latest = server
        .call("GET", &format!("{runs}/latest"), &viewer, "")
        .await;
    assert_eq!(body(&latest)["id"], run["id"]);
    let never = server
        .call(
            "GET",
            &format!("/api/v1/policies/{id}/versions/1/test-runs/latest"),
            &viewer,
            "",
        )
        .await;
    assert_eq!(never.status, 404);

    // Staging: modes per environment, manifests per mode as a YAML download.
    let mode = format!("/api/v1/policies/{id}/modes/staging");
    assert_eq!(
        server
            .call("PUT", &mode, &viewer, r#"{"mode":"warn"}"#)
            .await
            .status,
        403
    );
    let staging: Value = server
        .api(&author)
        .send("PUT", &mode, Some(json!({"mode": "warn"})), 200)
        .await;
    assert_eq!(staging["modes"][1]["environment"], "staging");
    assert_eq!(staging["modes"][1]["mode"], "warn");
    assert_eq!(staging["live"], json!([]));
    // The list's mode is what is live, not what is intended: warn is only intended so far.
    let listed = |query: &'static str| {
        let (server, viewer) = (&server, &viewer);
        async move {
            let reply = server
                .call("GET", &format!("/api/v1/policies?{query}"), viewer, "")
                .await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            body(&reply)
        }
    };
    assert_eq!(listed("mode=warn").await, json!([]));
    let undeployed = listed("mode=none").await;
    assert_eq!(undeployed.as_array().unwrap().len(), 1, "{undeployed:#}");
    assert_eq!(undeployed[0]["live"], json!([]));
    // Once a cluster runs it in enforce (as a rollout records it), that is what the list says.
    sqlx::query(
        "INSERT INTO deployments (cluster_id, policy_id, version, mode, manifests, rollout_id, \
         applied_ms) VALUES ('c-1', $1, 1, 'enforce', '[]', 'r-1', 1)",
    )
    .bind(&id)
    .execute(server.pool.pool())
    .await
    .unwrap();
    let enforced = listed("mode=enforce").await;
    assert_eq!(
        enforced[0]["live"],
        json!([{ "mode": "enforce", "clusters": 1 }])
    );
    assert_eq!(listed("mode=warn").await, json!([]));
    assert_eq!(listed("mode=none").await, json!([]));
    let yaml = server
        .call(
            "GET",
            &format!("/api/v1/policies/{id}/manifests/warn"),
            &viewer,
            "",
        )
        .await;
    assert_eq!(yaml.status, 200, "{}", yaml.body);
    assert!(yaml
        .header("content-type")
        .unwrap()
        .starts_with("application/yaml"));
    assert!(yaml
        .header("content-disposition")
        .unwrap()
        .contains("disallow-latest-tag-v2-warn.yaml"));
    assert!(
        yaml.body.contains("- Warn") && yaml.body.contains("- Audit"),
        "{}",
        yaml.body
    );

    // Every change is in the audit log.
    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_entries WHERE target_kind = 'policy' ORDER BY at_ms",
    )
    .fetch_all(server.pool.pool())
    .await
    .unwrap();
    assert_eq!(
        actions,
        [
            "policy.create",
            "policy.save",
            "policy.run_tests",
            "policy.set_mode"
        ]
    );
    server.stop().await;
}

on_each_database!(policies_over_rest: sqlite_policies_over_rest, postgres_policies_over_rest);
