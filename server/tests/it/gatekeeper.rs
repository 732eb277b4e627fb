//! A Gatekeeper policy rolled out by Palisade onto the test bed's real Gatekeeper (the cluster
//! `e2e/clusters up --gatekeeper` runs it beside): in audit, Gatekeeper's audit finds a Pod that
//! was there before, and Palisade's scan reads it back as a violation of the policy; in warn the
//! client is warned and in enforce refused, with Gatekeeper's own message; the removal leaves no
//! template or constraint behind, and the Pod is admitted again.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{DeleteParams, PostParams};
use kube::core::{DynamicObject, GroupVersionKind};
use kube::discovery::ApiResource;
use kube::Api;
use serde_json::Value;

use crate::client::{
    admission_in, admitted_again, assert_reported_by, bed_cluster_with, create_namespace,
    engine_rollout_server, one_wave, paste_of, privileged, propose_and_apply, remove_and_wait,
    until_reported,
};

/// Gatekeeper's words for a privileged container, in the template's code.
const DENIED: &str = "Privileged container is not allowed";

fn dynamic(client: kube::Client, group: &str, version: &str, kind: &str) -> Api<DynamicObject> {
    Api::all_with(
        client,
        &ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind)),
    )
}

#[tokio::test]
async fn a_gatekeeper_policy_goes_audit_warn_enforce_and_away_through_palisade() {
    let testbed = crate::support::testbed().await;
    let cluster = bed_cluster_with(
        &testbed,
        |c| c.gatekeeper,
        "no test bed cluster runs Gatekeeper (TESTBED_GATEKEEPER_CLUSTERS is empty): start it \
         with `e2e/clusters up 3 --gatekeeper 1`, as scripts/test does",
    );
    let oracles = std::env::var("PALISADE_ORACLES")
        .expect("PALISADE_ORACLES must point at the oracle data (scripts/test sets it)");
    let template = std::fs::read_to_string(format!(
        "{oracles}/gatekeeper-library/library/pod-security-policy/privileged-containers/template.yaml"
    ))
    .unwrap();
    // A kind of its own, so nothing else on the cluster shares its constraints' CRD.
    let suffix: String = palisade_testbed::unique_name("p")
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    let kind = format!("K8sPSPPrivilegedContainer{}", suffix.to_ascii_uppercase());
    let template = template
        .replace("K8sPSPPrivilegedContainer", &kind)
        .replace("k8spspprivilegedcontainer", &kind.to_ascii_lowercase());
    let policy_name = kind.to_ascii_lowercase();
    let namespace = palisade_testbed::unique_name("gk-rollout");
    let constraint = format!("no-privileged-{suffix}");
    let source = format!(
        "{template}\n---\napiVersion: constraints.gatekeeper.sh/v1beta1\nkind: {kind}\n\
         metadata:\n  name: {constraint}\nspec:\n  match:\n    kinds:\n    - apiGroups: [\"\"]\n      \
         kinds: [Pod]\n    namespaces: [{namespace}]\n"
    );

    let (server, author, approver, viewer, cluster_id) = engine_rollout_server(cluster, "gk").await;

    let client = cluster.admin_client().await.unwrap();
    create_namespace(&client, &namespace, Value::Null).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    // Running before any policy: only an audit can find it.
    pods.create(&PostParams::default(), &privileged("before"))
        .await
        .unwrap();

    let policy_id = paste_of(&server, &author, &source, "gatekeeper").await;

    // Gatekeeper names a constraint kind's resource by the kind in lower case, with no plural `s`.
    let constraints: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("constraints.gatekeeper.sh", "v1beta1", &kind),
            &kind.to_ascii_lowercase(),
        ),
    );
    let templates = dynamic(
        client.clone(),
        "templates.gatekeeper.sh",
        "v1",
        "ConstraintTemplate",
    );
    let mut last = String::new();
    for mode in ["audit", "warn", "enforce"] {
        let id =
            propose_and_apply(&server, (&author, &approver), one_wave(&policy_name, mode)).await;
        // The apiserver may take a moment to serve a kind whose CRD Gatekeeper just made.
        let deadline = Instant::now() + Duration::from_secs(30);
        let live = loop {
            match constraints.get(&constraint).await {
                Ok(live) => break live,
                Err(err) => assert!(
                    Instant::now() < deadline,
                    "the applied constraint {} cannot be read: {err}",
                    constraints.resource_url()
                ),
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        };
        let expected = match mode {
            "audit" => "dryrun",
            "warn" => "warn",
            _ => "deny",
        };
        assert_eq!(live.data["spec"]["enforcementAction"], expected, "{mode}");
        if mode == "audit" {
            // Gatekeeper's audit lists the Pod that was there first; Palisade's scan reads it.
            let found = until_reported(
                &server,
                (&approver, &viewer),
                &cluster_id,
                &namespace,
                "before",
                Duration::from_secs(90),
            )
            .await;
            assert_reported_by(&found, &constraint, &policy_id, DENIED);
        }
        // A new privileged Pod: admitted without a word in audit, warned in warn, refused in
        // enforce by the constraint.
        if let Some(message) = admission_in(&pods, mode, DENIED).await {
            assert!(message.contains(&constraint), "{message}");
        }
        last = id;
    }

    // The removal: asked, approved by a second approver, applied; nothing of the policy stays.
    remove_and_wait(&server, &approver, &last).await;
    assert!(
        constraints.get_opt(&constraint).await.unwrap().is_none(),
        "the constraint stayed"
    );
    assert!(
        templates.get_opt(&policy_name).await.unwrap().is_none(),
        "the template stayed"
    );
    admitted_again(&pods).await;
    // No garbage collector runs in the test bed: the CRD Gatekeeper made for the template goes too.
    let crds = dynamic(
        client.clone(),
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
    );
    let _ = crds
        .delete(
            &format!("{}.constraints.gatekeeper.sh", kind.to_ascii_lowercase()),
            &DeleteParams::default(),
        )
        .await;
    let _ = Api::<Namespace>::all(client)
        .delete(&namespace, &DeleteParams::default())
        .await;
    server.stop().await;
}
