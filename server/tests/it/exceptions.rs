//! `/api/v1/exceptions` over HTTP with real API tokens, on both databases: request as an author,
//! field-by-field refusals, no self-approval, approval by another approver, the exclusion in the
//! manifests a rollout renders, expiry, revocation and the audit trail.

use palisade_app::auth::Role;
use palisade_app::exceptions::ssr::{active_for, exclusions, service};
use palisade_app::exceptions::{ExceptionState, DAY_MS};
use palisade_app::policies::ssr::render::desired_objects;
use palisade_app::policies::Mode;
use serde_json::{json, Value};

use crate::client::json_of as body;
use crate::support::{on_each_database, Backend, Reply, TestServer};

/// `POST /api/v1/exceptions/{id}/{action}` (`decision` or `revoke`) as the holder of `token`.
async fn act(server: &TestServer, token: &str, id: &str, action: &str, body: &str) -> Reply {
    let path = format!("/api/v1/exceptions/{id}/{action}");
    server.call("POST", &path, token, body).await
}

/// The actions of the audit entries about exception `id`.
async fn audited_actions(server: &TestServer, id: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT action FROM audit_entries WHERE target_kind = 'exception' AND target_id = $1",
    )
    .bind(id)
    .fetch_all(server.pool.pool())
    .await
    .unwrap()
}

async fn exceptions_over_rest(backend: Backend) {
    let server = TestServer::start(backend, &[]).await;
    let author = server.login_token(Role::Author).await;
    let viewer = server.login_token(Role::Viewer).await;
    let (approver, approver_token) = server.user_token(Role::Approver).await;
    let other_approver = server.login_token(Role::Approver).await;
    let privileged = server.api(&author).adopt_new("disallow-privileged").await;
    let baseline = server.api(&author).adopt_new("pod-security-baseline").await;
    let now = palisade_app::db::now_ms();
    let in_30_days = now + 30 * DAY_MS;

    let request = |policy: &str, scope: Value, justification: &str, expires_ms: i64| {
        json!({
            "policy": policy,
            "scope": scope,
            "justification": justification,
            "ticket": "SEC-42",
            "expires_ms": expires_ms,
        })
        .to_string()
    };
    let legacy = json!({ "kind": "namespaces", "namespaces": ["legacy"] });

    // Refusals name the field; viewers cannot request.
    for (input, field) in [
        (
            request(&privileged, legacy.clone(), " ", in_30_days),
            "justification",
        ),
        (
            request(&privileged, legacy.clone(), "j", now - 1),
            "expires_ms",
        ),
        (
            request(&privileged, legacy.clone(), "j", now + 400 * DAY_MS),
            "expires_ms",
        ),
        (
            request(
                &privileged,
                json!({ "kind": "namespaces", "namespaces": ["Bad_NS"] }),
                "j",
                in_30_days,
            ),
            "scope.namespaces",
        ),
        (
            request(
                &baseline,
                json!({ "kind": "selector", "labels": { "app": "x" } }),
                "j",
                in_30_days,
            ),
            "only a namespace",
        ),
    ] {
        let refused = server
            .call("POST", "/api/v1/exceptions", &author, &input)
            .await;
        assert_eq!(refused.status, 400, "{}", refused.body);
        assert!(refused.body.contains(field), "{field}: {}", refused.body);
    }
    let refused = server
        .call(
            "POST",
            "/api/v1/exceptions",
            &viewer,
            &request(&privileged, legacy.clone(), "j", in_30_days),
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);

    // An author requests; it waits.
    let created = server
        .call(
            "POST",
            "/api/v1/exceptions",
            &author,
            &request(
                "disallow-privileged",
                legacy.clone(),
                "node agent needs it",
                in_30_days,
            ),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let exception = body(&created);
    let id = exception["id"].as_str().unwrap().to_owned();
    assert_eq!(exception["state"], "requested");
    assert_eq!(exception["requester_name"], "Test author");
    assert!(active_for(&server.pool, &privileged, now)
        .await
        .unwrap()
        .is_empty());

    // Nobody approves their own request; authors do not approve at all.
    let own = server
        .call(
            "POST",
            "/api/v1/exceptions",
            &approver_token,
            &request(&privileged, json!({ "kind": "resource", "resource_kind": "Deployment", "namespace": "shop", "name": "web" }), "mine", in_30_days),
        )
        .await;
    assert_eq!(own.status, 201, "{}", own.body);
    let own_id = body(&own)["id"].as_str().unwrap().to_owned();
    // The Overview's "waiting for you": another's request, never one's own; nothing for an author.
    let waiting = |token: &str| {
        let token = token.to_owned();
        let server = &server;
        async move {
            let waiting: Value = server
                .api(&token)
                .send("POST", "/api/waiting_for_me", None, 200)
                .await;
            let ids: Vec<String> = waiting["exceptions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_owned())
                .collect();
            (waiting["approver"].as_bool().unwrap(), ids)
        }
    };
    assert_eq!(waiting(&approver_token).await, (true, vec![id.clone()]));
    let (_, for_other) = waiting(&other_approver).await;
    assert!(
        for_other.contains(&id) && for_other.contains(&own_id),
        "{for_other:?}"
    );
    assert_eq!(waiting(&author).await, (false, Vec::new()));
    let approve = json!({ "approve": true, "comment": "ok" }).to_string();
    let selfish = act(&server, &approver_token, &own_id, "decision", &approve).await;
    selfish.assert_says(403, "your own");
    let by_author = act(&server, &author, &id, "decision", &approve).await;
    assert_eq!(by_author.status, 403, "{}", by_author.body);
    let no_reason = act(
        &server,
        &other_approver,
        &own_id,
        "decision",
        &json!({ "approve": false }).to_string(),
    )
    .await;
    no_reason.assert_says(400, "comment");

    // A different approver approves it.
    let approved = act(&server, &approver_token, &id, "decision", &approve).await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    assert_eq!(body(&approved)["state"], "approved");
    assert_eq!(body(&approved)["decider_name"], "Test approver");
    let again = act(&server, &other_approver, &id, "decision", &approve).await;
    assert_eq!(again.status, 409, "{}", again.body);
    let listed = server
        .call(
            "GET",
            "/api/v1/exceptions?policy=disallow-privileged",
            &viewer,
            "",
        )
        .await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(body(&listed).as_array().unwrap().len(), 2);

    // The manifests a rollout renders now leave the namespace out of the binding.
    let active = exclusions(&server.pool, &privileged, now).await.unwrap();
    assert_eq!(active.len(), 1);
    let version = palisade_app::policies::ssr::queries::version(server.pool.pool(), &privileged, 1)
        .await
        .unwrap()
        .unwrap();
    let objects = desired_objects(&version.content, Mode::Enforce, &[], &active).unwrap();
    let binding = objects
        .iter()
        .find(|o| o["kind"] == "ValidatingAdmissionPolicyBinding")
        .unwrap();
    let terms = binding
        .pointer("/spec/matchResources/namespaceSelector/matchExpressions")
        .unwrap()
        .as_array()
        .unwrap();
    assert!(
        terms
            .iter()
            .any(|t| t["operator"] == "NotIn" && t["values"] == json!(["legacy"])),
        "{binding}"
    );
    let without = desired_objects(&version.content, Mode::Enforce, &[], &[]).unwrap();
    assert_ne!(objects, without);
    // The manifests the Staging tab and the rollout review show carry it too.
    let yaml = server
        .call(
            "GET",
            "/api/v1/policies/disallow-privileged/manifests/enforce",
            &viewer,
            "",
        )
        .await;
    yaml.assert_says(200, "- legacy");
    assert!(yaml.body.contains(&id), "{}", yaml.body);

    // Past its expiry it no longer applies, and reads as expired.
    let later = in_30_days + 1;
    assert!(exclusions(&server.pool, &privileged, later)
        .await
        .unwrap()
        .is_empty());
    let expired = service::get(&server.pool, &approver, later, &id)
        .await
        .unwrap();
    assert_eq!(expired.state, ExceptionState::Expired);

    // Revoked, it stops applying at once.
    let revoke = json!({ "comment": "agent upgraded" }).to_string();
    let revoked = act(&server, &other_approver, &id, "revoke", &revoke).await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert_eq!(body(&revoked)["state"], "revoked");
    assert!(exclusions(&server.pool, &privileged, now)
        .await
        .unwrap()
        .is_empty());
    let twice = act(&server, &other_approver, &id, "revoke", &revoke).await;
    assert_eq!(twice.status, 409, "{}", twice.body);
    let read = server
        .call("GET", &format!("/api/v1/exceptions/{id}"), &viewer, "")
        .await;
    assert_eq!(body(&read)["state"], "revoked");
    let missing = server
        .call("GET", "/api/v1/exceptions/nope", &viewer, "")
        .await;
    assert_eq!(missing.status, 404, "{}", missing.body);

    // The sweep records what expired (the approver's own request, still waiting), once.
    assert_eq!(
        service::sweep_expired(&server.pool, later).await.unwrap(),
        1
    );
    assert_eq!(
        service::sweep_expired(&server.pool, later).await.unwrap(),
        0
    );
    let swept = service::get(&server.pool, &approver, now, &own_id)
        .await
        .unwrap();
    assert_eq!(swept.state, ExceptionState::Expired);
    let expired_entries = audited_actions(&server, &own_id).await;
    assert!(
        expired_entries.contains(&"exception.expired".to_owned()),
        "{expired_entries:?}"
    );

    // Every change is in the audit log.
    let mut actions = audited_actions(&server, &id).await;
    actions.sort();
    assert_eq!(
        actions,
        [
            "exception.approved",
            "exception.requested",
            "exception.revoked"
        ]
    );
    server.stop().await;
}

on_each_database!(
    exceptions_over_rest: sqlite_exceptions_over_rest, postgres_exceptions_over_rest
);

/// On a real kube-apiserver, under enforce: the excepted namespace, the excepted named resource
/// and the excepted label set are admitted; the same privileged Deployment elsewhere is denied.
#[tokio::test]
async fn exceptions_reach_the_apiserver_under_enforce() {
    use std::time::{Duration, Instant};

    use k8s_openapi::api::apps::v1::Deployment;
    use kube::api::PostParams;
    use kube::Api;

    use crate::client::{
        approved_exception, create_namespace, privileged_deployment, propose_and_approve,
        rollout_server, state, until_applied, wait_for,
    };

    let testbed = crate::support::testbed().await;
    let cluster = &testbed.clusters[0];
    let (server, admin, author, approver) =
        rollout_server(&[("PALISADE__ROLLOUTS__DRIFT_INTERVAL_SECS", "0")]).await;
    let client = cluster.admin_client().await.unwrap();
    // Its binding takes only this test's namespaces, so tests sharing the clusters are not
    // affected by it.
    let policy = palisade_testbed::unique_name("exc-no-privileged");
    let excepted = palisade_testbed::unique_name("exc-legacy");
    let other = palisade_testbed::unique_name("exc-shop");
    for name in [&excepted, &other] {
        create_namespace(&client, name, json!({ "palisade-test": policy })).await;
    }
    server
        .api(&admin)
        .register_bed_cluster("exc", "exc", cluster)
        .await;
    // A policy of its own name: other tests roll out the library's `disallow-privileged` to the
    // same clusters at the same time, so this test judges only its own policy's verdicts.
    let source = r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: NAME
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - apiGroups: [apps]
      apiVersions: [v1]
      operations: [CREATE, UPDATE]
      resources: [deployments]
  validations:
  - expression: >-
      !object.spec.template.spec.containers.exists(c, has(c.securityContext) &&
      has(c.securityContext.privileged) && c.securityContext.privileged)
    message: no privileged containers
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: NAME
spec:
  policyName: NAME
  validationActions: [Deny]
  matchResources:
    namespaceSelector:
      matchLabels:
        palisade-test: NAME
"#
    .replace("NAME", &policy);
    server.api(&author).paste(&source).await;
    let mine = |result: &Result<Deployment, kube::Error>| matches!(result, Err(kube::Error::Api(status)) if status.message.contains(&policy));

    let in_30_days = palisade_app::db::now_ms() + 30 * DAY_MS;
    for scope in [
        json!({ "kind": "namespaces", "namespaces": [excepted] }),
        json!({ "kind": "resource", "resource_kind": "Deployment", "namespace": other, "name": "agent" }),
        json!({ "kind": "selector", "labels": { "team": "infra", "tier": "system" } }),
    ] {
        approved_exception(
            &server,
            (&author, &approver),
            json!({
                "policy": policy,
                "scope": scope,
                "justification": "node agent",
                "expires_ms": in_30_days,
            }),
        )
        .await;
    }

    let rollout = propose_and_approve(
        &server,
        (&author, &approver),
        json!({
            "policy": policy,
            "mode": "enforce",
            "waves": [{ "selector": { "environment": "exc" } }],
        }),
    )
    .await;
    wait_for(
        &server,
        &admin,
        &rollout,
        Duration::from_secs(60),
        "applied",
        |r| {
            assert_ne!(state(r), "failed", "the rollout is {r:#}");
            state(r) == "applied"
        },
    )
    .await;

    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let in_other: Api<Deployment> = Api::namespaced(client.clone(), &other);
    let in_excepted: Api<Deployment> = Api::namespaced(client.clone(), &excepted);
    // Wait until the apiserver enforces the policy where no exception applies. (Another test's
    // policy in enforce may deny first and hide ours for a while; keep asking.)
    async fn until_ours_denies(
        api: &Api<Deployment>,
        deployment: &Deployment,
        ours: &str,
        what: &str,
    ) {
        let dry_run = PostParams {
            dry_run: true,
            ..PostParams::default()
        };
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let result = api.create(&dry_run, deployment).await;
            if matches!(&result, Err(kube::Error::Api(s)) if s.message.contains(ours)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not denied by {ours}: {result:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    until_ours_denies(
        &in_other,
        &privileged_deployment("web", json!({})),
        &policy,
        "a privileged Deployment outside the exceptions",
    )
    .await;
    let result = in_excepted
        .create(&dry_run, &privileged_deployment("web", json!({})))
        .await;
    assert!(!mine(&result), "the excepted namespace: {result:?}");
    let result = in_other
        .create(&dry_run, &privileged_deployment("agent", json!({})))
        .await;
    assert!(!mine(&result), "the excepted named Deployment: {result:?}");
    let result = in_other
        .create(
            &dry_run,
            &privileged_deployment("infra", json!({ "team": "infra", "tier": "system" })),
        )
        .await;
    assert!(!mine(&result), "every excepted label: {result:?}");
    until_ours_denies(
        &in_other,
        &privileged_deployment("half", json!({ "team": "infra" })),
        &policy,
        "one of the two excepted labels is not enough",
    )
    .await;

    // Take the policy off the cluster again.
    let removal = server.api(&approver).remove(&rollout).await;
    // A removal waits for someone other than who asked.
    server.api(&admin).approve(&removal).await;
    until_applied(&server, &admin, &removal, Duration::from_secs(60)).await;
    for name in [&excepted, &other] {
        let _ = palisade_testbed::delete_namespace(&client, name).await;
    }
    server.stop().await;
}
