//! Kyverno policies through the server: pasted and detected as Kyverno, checked where they would
//! act with Kyverno's own rights, and refused for clusters that have no Kyverno.

use serde_json::{json, Value};

use crate::client::json_of;
use crate::support::{Backend, People, TestServer};

const CLUSTER_POLICY: &str = "\
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: need-owner
spec:
  validationFailureAction: Enforce
  rules:
  - name: owner-label
    match:
      any:
      - resources:
          kinds: [Pod]
    validate:
      message: every pod needs an owner label
      pattern:
        metadata:
          labels:
            owner: \"?*\"
";

#[tokio::test]
async fn a_pasted_kyverno_policy_is_kyverno_and_needs_kyverno_on_every_cluster() {
    let server = TestServer::with_key(&[]).await;
    let People { admin, author, .. } = server.people().await;

    let paste = json!({ "from": "yaml", "source": CLUSTER_POLICY }).to_string();
    let created = server
        .call("POST", "/api/v1/policies", &author, &paste)
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(json_of(&created)["policy"]["engine"], "kyverno");
    assert_eq!(json_of(&created)["policy"]["name"], "need-owner");

    // A generate rule would act with Kyverno's rights: refused, with where.
    let generate = CLUSTER_POLICY
        .replace("need-owner", "grant-admin")
        .replace(
            "    validate:\n      message: every pod needs an owner label\n      pattern:\n        metadata:\n          labels:\n            owner: \"?*\"\n",
            "    generate:\n      kind: RoleBinding\n      apiVersion: rbac.authorization.k8s.io/v1\n      name: admin\n",
        );
    assert!(generate.contains("generate:"), "{generate}");
    let refused = server
        .call(
            "POST",
            "/api/v1/policies",
            &author,
            &json!({ "from": "yaml", "source": generate }).to_string(),
        )
        .await;
    refused.assert_says(400, "a `generate` rule acts with Kyverno's own rights");

    // The only cluster has no Kyverno (it was never reached), so no rollout can start there.
    server
        .api(&admin)
        .register_unreachable("no-kyverno", "dev")
        .await;
    let proposal = json!({
        "policy": "need-owner", "version": 1, "mode": "audit",
        "waves": [{ "selector": {}, "approvals": 1 }],
    });
    let reply = server
        .call("POST", "/api/v1/rollouts", &author, &proposal.to_string())
        .await;
    reply.assert_says(
        400,
        "cluster `no-kyverno` has no Kyverno, which this policy needs",
    );
    server.stop().await;
}

const NO_PRIVILEGED: &str = "\
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: no-privileged
spec:
  validationFailureAction: Enforce
  rules:
  - name: privileged-containers
    match:
      any:
      - resources:
          kinds: [Pod]
    validate:
      message: privileged containers are not allowed
      pattern:
        spec:
          containers:
          - =(securityContext):
              =(privileged): \"false\"
";

/// What a Kyverno policy would deny on a cluster, from its inventory: the privileged Pods, named
/// by the workload that owns them, with Kyverno's message; the clean Pod and the ReplicaSet's
/// template (checked by autogen) pass.
#[tokio::test]
async fn a_kyverno_policys_impact_names_what_it_would_deny() {
    let crate::impact::Shop {
        server,
        people,
        cluster,
        ..
    } = crate::impact::shop(Backend::Sqlite).await;
    let found: Value = server
        .api(&people.author)
        .send(
            "POST",
            "/api/v1/impact",
            Some(json!({ "source": NO_PRIVILEGED, "clusters": [cluster.id] })),
            200,
        )
        .await;
    let here = &found["clusters"][0];
    assert_eq!(here["complete"], true, "{here:#}");
    let mut denied: Vec<String> = here["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["action"] == "deny")
        .map(|f| {
            assert_eq!(f["policy"], "no-privileged", "{f:#}");
            assert!(
                f["message"]
                    .as_str()
                    .unwrap()
                    .contains("privileged containers are not allowed"),
                "{f:#}"
            );
            format!(
                "{}/{} ({}/{})",
                f["namespace"].as_str().unwrap(),
                f["name"].as_str().unwrap(),
                f["owner"]["kind"].as_str().unwrap(),
                f["owner"]["name"].as_str().unwrap()
            )
        })
        .collect();
    denied.sort();
    assert_eq!(
        denied,
        [
            "legacy/old (Pod/old)",
            "shop/web-1-a (Deployment/web)",
            "shop/web-1-b (Deployment/web)"
        ],
        "{here:#}"
    );
    server.stop().await;
}

/// A policy of each Kyverno kind, refusing privileged containers in two namespaces, with the
/// words it refuses them with.
fn real_policy(kind: &str, name: &str, namespace: &str, second: &str) -> (String, &'static str) {
    match kind {
        "ClusterPolicy" => (
            format!(
                "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: {name}\nspec:\n  \
                 background: true\n  rules:\n  - name: privileged-containers\n    match:\n      any:\n      \
                 - resources:\n          kinds: [Pod]\n          namespaces: [{namespace}, {second}]\n    validate:\n      \
                 message: privileged containers are refused here\n      pattern:\n        spec:\n          \
                 containers:\n          - =(securityContext):\n              =(privileged): \"false\"\n"
            ),
            "privileged containers are refused here",
        ),
        _ => (
            format!(
                "apiVersion: policies.kyverno.io/v1\nkind: ValidatingPolicy\nmetadata:\n  name: {name}\n\
                 spec:\n  validationActions: [Deny]\n  matchConstraints:\n    namespaceSelector:\n      \
                 matchExpressions:\n      - key: kubernetes.io/metadata.name\n        operator: In\n        \
                 values: [{namespace}, {second}]\n    resourceRules:\n    \
                 - apiGroups: [\"\"]\n      apiVersions: [v1]\n      operations: [CREATE, UPDATE]\n      \
                 resources: [pods]\n  validations:\n  - expression: >-\n      object.spec.containers.all(c, \
                 !has(c.securityContext) || !has(c.securityContext.privileged) || \
                 !c.securityContext.privileged)\n    message: no privileged containers in this namespace\n"
            ),
            "no privileged containers in this namespace",
        ),
    }
}

/// A Kyverno policy rolled out by Palisade onto the test bed's real Kyverno (`e2e/clusters up
/// --kyverno`): in audit, Kyverno's background scan reports a Pod that was there before and
/// Palisade's scan reads the PolicyReport back as a violation of the policy; in warn the client is
/// warned and in enforce refused, with Kyverno's own message, except in a namespace an approved
/// Palisade exception covers (applied as a PolicyException); the removal leaves nothing behind.
async fn a_kyverno_policy_goes_audit_warn_enforce_and_away(kind: &str, plural: &str) {
    use crate::client::{
        admission_in, admitted_again, approved_exception, assert_reported_by, bed_cluster_with,
        create_namespace, engine_rollout_server, one_wave, paste_of, privileged, propose_and_apply,
        remove_and_wait, until_admission, until_reported,
    };
    use k8s_openapi::api::core::v1::{Namespace, Pod};
    use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, PostParams};
    use std::time::Duration;

    let testbed = crate::support::testbed().await;
    let cluster = bed_cluster_with(
        &testbed,
        |c| c.kyverno,
        "no test bed cluster runs Kyverno (TESTBED_KYVERNO_CLUSTERS is empty): start it with \
         `e2e/clusters up 3 --gatekeeper 1 --kyverno 2`, as scripts/test does",
    );
    let namespace = palisade_testbed::unique_name("ky-rollout");
    let excepted = palisade_testbed::unique_name("ky-excepted");
    let name = palisade_testbed::unique_name("no-privileged");
    let (source, words) = real_policy(kind, &name, &namespace, &excepted);
    let (group, version) = match kind {
        "ClusterPolicy" => ("kyverno.io", "v1"),
        _ => ("policies.kyverno.io", "v1"),
    };
    let live: Api<DynamicObject> = Api::all_with(
        cluster.admin_client().await.unwrap(),
        &ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural),
    );

    let (server, author, approver, viewer, cluster_id) = engine_rollout_server(cluster, "ky").await;

    let client = cluster.admin_client().await.unwrap();
    for name in [&namespace, &excepted] {
        create_namespace(&client, name, Value::Null).await;
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let excepted_pods: Api<Pod> = Api::namespaced(client.clone(), &excepted);
    // Running before any policy: only the background scan can find it.
    pods.create(&PostParams::default(), &privileged("before"))
        .await
        .unwrap();

    let policy_id = paste_of(&server, &author, &source, "kyverno").await;

    // An exception for the second namespace, approved before the rollouts, goes with each of them.
    let exception = approved_exception(
        &server,
        (&author, &approver),
        json!({
            "policy": name,
            "scope": { "kind": "namespaces", "namespaces": [excepted] },
            "justification": "a node agent runs there",
            "expires_ms": palisade_app::db::now_ms() + 30 * 86_400_000,
        }),
    )
    .await;
    let exceptions: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "kyverno",
        &if kind == "ClusterPolicy" {
            ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk("kyverno.io", "v2", "PolicyException"),
                "policyexceptions",
            )
        } else {
            ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk("policies.kyverno.io", "v1alpha1", "PolicyException"),
                "policyexceptions",
            )
        },
    );
    let ours = |list: &kube::api::ObjectList<DynamicObject>| -> usize {
        list.items
            .iter()
            .filter(|e| {
                e.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get("palisade.dev/exception"))
                    == Some(&exception)
            })
            .count()
    };

    let mut last = String::new();
    for mode in ["audit", "warn", "enforce"] {
        let id = propose_and_apply(&server, (&author, &approver), one_wave(&name, mode)).await;
        let applied = live.get(&name).await.unwrap();
        match kind {
            "ClusterPolicy" => {
                let action = if mode == "enforce" {
                    "Enforce"
                } else {
                    "Audit"
                };
                let rule = &applied.data["spec"]["rules"][0]["validate"];
                assert_eq!(rule["failureAction"], action, "{mode}: {applied:?}");
                assert_eq!(
                    applied.data["spec"]["emitWarning"],
                    mode == "warn",
                    "{mode}"
                );
            }
            _ => {
                let actions = &applied.data["spec"]["validationActions"];
                let first = match mode {
                    "audit" => "Audit",
                    "warn" => "Warn",
                    _ => "Deny",
                };
                assert_eq!(actions[0], first, "{mode}: {actions}");
            }
        }
        if mode == "audit" {
            // Kyverno's background scan reports the Pod that was there first; Palisade reads it.
            let found = until_reported(
                &server,
                (&approver, &viewer),
                &cluster_id,
                &namespace,
                "before",
                Duration::from_secs(120),
            )
            .await;
            assert_reported_by(&found, &name, &policy_id, words);
        }
        if let Some(message) = admission_in(&pods, mode, words).await {
            assert!(message.contains(&name));
            // The exception went along as a PolicyException, and Kyverno honours it.
            let listed = exceptions.list(&Default::default()).await.unwrap();
            assert_eq!(ours(&listed), 1, "{:?}", listed.items);
            let _ = until_admission(
                &excepted_pods,
                "excepted",
                "admit in the excepted namespace",
                |o| o.is_ok(),
            )
            .await;
        }
        last = id;
    }

    // The removal: asked, approved by a second approver, applied; nothing of the policy stays.
    remove_and_wait(&server, &approver, &last).await;
    assert!(
        live.get_opt(&name).await.unwrap().is_none(),
        "the policy stayed"
    );
    let listed = exceptions.list(&Default::default()).await.unwrap();
    assert_eq!(
        ours(&listed),
        0,
        "the PolicyException stayed: {:?}",
        listed.items
    );
    admitted_again(&pods).await;
    let _ = pods
        .delete_collection(&DeleteParams::default(), &Default::default())
        .await;
    for name in [&namespace, &excepted] {
        let _ = Api::<Namespace>::all(client.clone())
            .delete(name, &DeleteParams::default())
            .await;
    }
    server.stop().await;
}

#[tokio::test]
async fn a_cluster_policy_goes_audit_warn_enforce_and_away_through_palisade() {
    a_kyverno_policy_goes_audit_warn_enforce_and_away("ClusterPolicy", "clusterpolicies").await;
}

#[tokio::test]
async fn a_validating_policy_goes_audit_warn_enforce_and_away_through_palisade() {
    a_kyverno_policy_goes_audit_warn_enforce_and_away("ValidatingPolicy", "validatingpolicies")
        .await;
}
