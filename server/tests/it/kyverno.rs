//! Kyverno policies through the server: pasted and detected as Kyverno, checked where they would
//! act with Kyverno's own rights, and refused for clusters that have no Kyverno.

use serde_json::{json, Value};

use crate::support::{Backend, People, TestServer, KEY};

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

fn body(reply: &crate::support::Reply) -> Value {
    serde_json::from_str(&reply.body).unwrap_or_else(|e| panic!("{e}: {}", reply.body))
}

#[tokio::test]
async fn a_pasted_kyverno_policy_is_kyverno_and_needs_kyverno_on_every_cluster() {
    let server = TestServer::start(Backend::Sqlite, &[("PALISADE__SECRETS__KEY", KEY)]).await;
    let People { admin, author, .. } = server.people().await;

    let paste = json!({ "from": "yaml", "source": CLUSTER_POLICY }).to_string();
    let created = server
        .call("POST", "/api/v1/policies", &author, &paste)
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(body(&created)["policy"]["engine"], "kyverno");
    assert_eq!(body(&created)["policy"]["name"], "need-owner");

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
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("a `generate` rule acts with Kyverno's own rights"),
        "{}",
        refused.body
    );

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
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(
        reply
            .body
            .contains("cluster `no-kyverno` has no Kyverno, which this policy needs"),
        "{}",
        reply.body
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
    let reply = server
        .call(
            "POST",
            "/api/v1/impact",
            &people.author,
            &json!({ "source": NO_PRIVILEGED, "clusters": [cluster.id] }).to_string(),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let found = body(&reply);
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
