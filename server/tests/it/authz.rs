//! The authorization table: every documented `/api/v1` operation and every server function, called
//! as anonymous, viewer, author, approver and admin. Anonymous gets 401; a role below the required
//! one gets 403; the required role and above get neither (the call may still fail for other reasons,
//! such as a nonexistent id, which is fine: it got past authorization).

use std::collections::BTreeMap;

use palisade_app::auth::{Action, Role};
use serde_json::Value;

use crate::support::{on_each_database, request, Backend, TestServer};

/// Every server function: its path, the action it performs (`None`: public) and a valid body.
const SERVER_FUNCTIONS: &[(&str, Option<Action>, &str)] = &[
    ("/api/system_status", Some(Action::Read), ""),
    ("/api/overview_counts", Some(Action::Read), ""),
    ("/api/waiting_for_me", Some(Action::Read), ""),
    ("/api/sign_in_options", None, ""),
    ("/api/who_am_i", Some(Action::Read), ""),
    ("/api/list_my_tokens", Some(Action::ManageOwnTokens), ""),
    (
        "/api/create_my_token",
        Some(Action::ManageOwnTokens),
        "request[name]=ci&request[role]=viewer&request[expires_in_days]=7",
    ),
    (
        "/api/revoke_my_token",
        Some(Action::ManageOwnTokens),
        "id=nonexistent",
    ),
    ("/api/list_my_sessions", Some(Action::ManageOwnTokens), ""),
    (
        "/api/revoke_my_session",
        Some(Action::ManageOwnTokens),
        "id=nonexistent",
    ),
    ("/api/sign_in_settings", Some(Action::ManageSettings), ""),
    ("/api/list_people", Some(Action::ManageSettings), ""),
    (
        "/api/set_person_disabled",
        Some(Action::ManageSettings),
        "id=nonexistent&disabled=true",
    ),
    ("/api/list_clusters", Some(Action::Read), ""),
    ("/api/list_cluster_page", Some(Action::Read), ""),
    ("/api/get_cluster", Some(Action::Read), "id=nonexistent"),
    (
        "/api/policy_impact",
        Some(Action::Read),
        r#"{"policy_id":"nonexistent"}"#,
    ),
    ("/api/impact_progress", Some(Action::Read), "key=k-1"),
    (
        "/api/get_posture",
        Some(Action::Read),
        r#"{"cluster_id":"nonexistent"}"#,
    ),
    (
        "/api/assess_posture",
        Some(Action::EditPolicies),
        r#"{"cluster_id":"nonexistent"}"#,
    ),
    (
        "/api/pod_security_readiness",
        Some(Action::Read),
        "cluster_id=nonexistent",
    ),
    (
        "/api/get_inventory",
        Some(Action::Read),
        "cluster_id=nonexistent",
    ),
    ("/api/inventory_page", Some(Action::Read), ""),
    ("/api/cluster_names", Some(Action::Read), ""),
    (
        "/api/kubeconfig_contexts",
        Some(Action::ManageClusters),
        "kubeconfig=apiVersion%3A%20v1",
    ),
    (
        "/api/register_cluster",
        Some(Action::ManageClusters),
        "input[name]=c1&input[environment]=dev&input[credentials][kind]=token\
         &input[credentials][api_url]=https%3A%2F%2F203.0.113.10%3A6443\
         &input[credentials][ca_pem]=&input[credentials][token]=t",
    ),
    (
        "/api/update_cluster",
        Some(Action::ManageClusters),
        "id=nonexistent&change[disabled]=true",
    ),
    (
        "/api/remove_cluster",
        Some(Action::ManageClusters),
        "id=nonexistent",
    ),
    (
        "/api/check_cluster",
        Some(Action::ManageClusters),
        "id=nonexistent",
    ),
    (
        "/api/audit_entries",
        Some(Action::ReadAuditLog),
        "query[limit]=1",
    ),
    (
        "/api/list_violations",
        Some(Action::Read),
        r#"{"filter":{}}"#,
    ),
    (
        "/api/violation_charts",
        Some(Action::Read),
        r#"{"filter":{},"days":7}"#,
    ),
    (
        "/api/rollout_evidence",
        Some(Action::Read),
        r#"{"id":"nonexistent","days":7}"#,
    ),
    (
        "/api/scan_clusters",
        Some(Action::OperateRollout),
        r#"{"cluster_id":"nonexistent"}"#,
    ),
    ("/api/compliance_frameworks", Some(Action::Read), "{}"),
    (
        "/api/compliance_posture",
        Some(Action::Read),
        r#"{"framework":"cis"}"#,
    ),
    (
        "/api/rotate_ingest_token",
        Some(Action::ManageClusters),
        r#"{"cluster_id":"nonexistent"}"#,
    ),
    // The policies domain's server functions take JSON (their arguments are nested).
    ("/api/list_policies", Some(Action::Read), r#"{"filter":{}}"#),
    (
        "/api/get_policy",
        Some(Action::Read),
        r#"{"id":"nonexistent"}"#,
    ),
    (
        "/api/get_version",
        Some(Action::Read),
        r#"{"id":"nonexistent","number":1}"#,
    ),
    (
        "/api/check_policy",
        Some(Action::Read),
        r#"{"content":{"source":""}}"#,
    ),
    (
        "/api/create_policy",
        Some(Action::EditPolicies),
        r#"{"new":{"from":"library","entry":"nonexistent"}}"#,
    ),
    (
        "/api/save_version",
        Some(Action::EditPolicies),
        r#"{"id":"nonexistent","base_version":1,"content":{"source":"x"},"note":""}"#,
    ),
    (
        "/api/diff_versions",
        Some(Action::Read),
        r#"{"id":"nonexistent","from":1,"to":2}"#,
    ),
    (
        "/api/run_tests",
        Some(Action::EditPolicies),
        r#"{"id":"nonexistent","number":1}"#,
    ),
    (
        "/api/get_test_run",
        Some(Action::Read),
        r#"{"id":"nonexistent","number":1}"#,
    ),
    (
        "/api/get_staging",
        Some(Action::Read),
        r#"{"id":"nonexistent"}"#,
    ),
    (
        "/api/set_mode",
        Some(Action::EditPolicies),
        r#"{"id":"nonexistent","environment":"dev","mode":"audit"}"#,
    ),
    ("/api/list_library", Some(Action::Read), "{}"),
    // Rollouts (JSON arguments).
    (
        "/api/list_rollouts",
        Some(Action::Read),
        r#"{"policy":null}"#,
    ),
    ("/api/wave_targets", Some(Action::ProposeRollout), "{}"),
    (
        "/api/get_rollout",
        Some(Action::Read),
        r#"{"id":"nonexistent"}"#,
    ),
    (
        "/api/get_proposed_change",
        Some(Action::Read),
        r#"{"id":"nonexistent"}"#,
    ),
    (
        "/api/get_rollout_impact",
        Some(Action::Read),
        r#"{"id":"nonexistent"}"#,
    ),
    (
        "/api/proposal_impact",
        Some(Action::ProposeRollout),
        r#"{"input":{"policy":"nonexistent","mode":"enforce","waves":[{"selector":{}}]}}"#,
    ),
    (
        "/api/propose_rollout",
        Some(Action::ProposeRollout),
        r#"{"input":{"policy":"nonexistent","mode":"audit","waves":[{"selector":{}}]}}"#,
    ),
    (
        "/api/decide_rollout",
        Some(Action::Approve),
        r#"{"id":"nonexistent","approve":true,"comment":""}"#,
    ),
    (
        "/api/operate_rollout",
        Some(Action::OperateRollout),
        r#"{"id":"nonexistent","operation":"pause"}"#,
    ),
    (
        "/api/list_deployments",
        Some(Action::Read),
        r#"{"policy":null}"#,
    ),
    ("/api/check_drift", Some(Action::OperateRollout), "{}"),
    // Exceptions (JSON arguments).
    (
        "/api/list_exceptions",
        Some(Action::Read),
        r#"{"policy":null}"#,
    ),
    (
        "/api/get_exception",
        Some(Action::Read),
        r#"{"id":"nonexistent"}"#,
    ),
    (
        "/api/request_exception",
        Some(Action::RequestException),
        r#"{"input":{"policy":"nonexistent","scope":{"kind":"namespaces","namespaces":["a"]},"justification":"j","expires_ms":4102444800000}}"#,
    ),
    (
        "/api/decide_exception",
        Some(Action::Approve),
        r#"{"id":"nonexistent","approve":true,"comment":""}"#,
    ),
    (
        "/api/revoke_exception",
        Some(Action::Approve),
        r#"{"id":"nonexistent","comment":""}"#,
    ),
];

/// What a caller of `role` (None: anonymous) must get for an operation needing `needed`.
fn check(what: &str, role: Option<Role>, needed: Option<Role>, status: u16, body: &str) {
    match (role, needed) {
        (_, None) => assert!(
            status != 401 && status != 403,
            "{what} is public: {status} {body}"
        ),
        (None, Some(_)) => assert_eq!(status, 401, "{what} as anonymous: {body}"),
        (Some(role), Some(needed)) if role < needed => {
            assert_eq!(status, 403, "{what} as {role}: {body}")
        }
        (Some(role), Some(_)) => {
            assert!(
                status != 401 && status != 403,
                "{what} as {role}: {status} {body}"
            )
        }
    }
}

async fn every_route_as_every_role(backend: Backend) {
    let server = TestServer::start(backend, &[]).await;
    let mut tokens = BTreeMap::new();
    for role in Role::ALL {
        tokens.insert(role, server.login_token(role).await);
    }
    let callers: Vec<Option<Role>> = std::iter::once(None)
        .chain(Role::ALL.into_iter().map(Some))
        .collect();

    let document: Value =
        serde_json::from_str(&server.get("/api/v1/openapi.json").await.body).unwrap();
    let mut operations = 0;
    for (path, methods) in document["paths"].as_object().unwrap() {
        for (method, operation) in methods.as_object().unwrap() {
            let needed = operation["x-palisade-role"]
                .as_str()
                .map(|r| Role::parse(r).unwrap());
            let url = path
                .replace("{id}", "nonexistent")
                .replace("{number}", "1")
                .replace("{environment}", "dev")
                .replace("{mode}", "audit")
                .replace("{framework}", "cis");
            assert!(!url.contains('{'), "fill the parameters of {path}");
            let body = operation["requestBody"]["content"]["application/json"]["example"]
                .as_object()
                .map(|_| {
                    operation["requestBody"]["content"]["application/json"]["example"].to_string()
                })
                .unwrap_or_default();
            for caller in &callers {
                let reply = match caller {
                    Some(role) => {
                        server
                            .call(&method.to_ascii_uppercase(), &url, &tokens[role], &body)
                            .await
                    }
                    None => {
                        request(
                            server.addr,
                            &method.to_ascii_uppercase(),
                            &url,
                            &[("content-type", "application/json")],
                            &body,
                        )
                        .await
                    }
                };
                let what = format!("{} {path}", method.to_ascii_uppercase());
                if operation["x-palisade-auth"] == "cluster-ingest-token" {
                    // A person's session or token is never a cluster's ingest token.
                    assert_eq!(reply.status, 401, "{what} as {caller:?}: {}", reply.body);
                    continue;
                }
                check(&what, *caller, needed, reply.status, &reply.body);
            }
            operations += 1;
        }
    }
    assert!(operations >= 7, "only {operations} operations documented");

    // The table above lists exactly the registered server functions.
    let registered: std::collections::BTreeSet<String> = leptos::server_fn::axum::server_fn_paths()
        .map(|(path, _)| path.to_owned())
        .collect();
    let listed: std::collections::BTreeSet<String> = SERVER_FUNCTIONS
        .iter()
        .map(|(path, _, _)| (*path).to_owned())
        .collect();
    assert_eq!(
        registered, listed,
        "SERVER_FUNCTIONS must list every server function"
    );

    for (path, action, body) in SERVER_FUNCTIONS {
        let needed = action.map(Action::required_role);
        for caller in &callers {
            let content_type = if body.starts_with('{') {
                "application/json"
            } else {
                "application/x-www-form-urlencoded"
            };
            let mut headers = vec![
                ("content-type", content_type),
                ("accept", "application/json"),
            ];
            let bearer;
            if let Some(role) = caller {
                bearer = format!("Bearer {}", tokens[role]);
                headers.push(("authorization", bearer.as_str()));
            }
            let reply = request(server.addr, "POST", path, &headers, body).await;
            check(path, *caller, needed, reply.status, &reply.body);
        }
    }
    server.stop().await;
}

on_each_database!(
    every_route_as_every_role: sqlite_every_route_as_every_role, postgres_every_route_as_every_role
);

/// Server functions answer refusals and missing things with the same statuses as REST.
#[tokio::test]
async fn server_function_errors_keep_their_status() {
    let server = TestServer::start(Backend::Sqlite, &[]).await;
    let viewer = format!("Bearer {}", server.login_token(Role::Viewer).await);
    let headers = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("accept", "application/json"),
        ("authorization", viewer.as_str()),
    ];
    let higher = request(
        server.addr,
        "POST",
        "/api/create_my_token",
        &headers,
        "request[name]=x&request[role]=admin&request[expires_in_days]=1",
    )
    .await;
    assert_eq!(higher.status, 403, "{}", higher.body);
    let missing = request(
        server.addr,
        "POST",
        "/api/revoke_my_token",
        &headers,
        "id=nope",
    )
    .await;
    assert_eq!(missing.status, 404, "{}", missing.body);
    // Every domain's service errors get their status where they leave the server, not only the
    // functions that ask for it.
    let json = [
        ("content-type", "application/json"),
        ("accept", "application/json"),
        ("authorization", viewer.as_str()),
    ];
    let no_policy = request(
        server.addr,
        "POST",
        "/api/get_policy",
        &json,
        r#"{"id":"nope"}"#,
    )
    .await;
    no_policy.assert_says(404, "NotFound");
    server.stop().await;
}
