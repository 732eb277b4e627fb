#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use super::*;
use serde_json::json;

#[test]
fn names_match_what_the_apiserver_reports() {
    assert_eq!(
        reported(EngineKind::PodSecurity, "restricted:latest"),
        "pod-security:restricted"
    );
    assert_eq!(
        reported(EngineKind::Gatekeeper, "K8sRequiredLabels/must-have-owner"),
        "must-have-owner"
    );
    assert_eq!(
        reported(EngineKind::Vap, "no-privileged/no-privileged-binding"),
        "no-privileged"
    );
}

#[test]
fn deployed_policies_find_violations_and_owned_objects_are_skipped() {
    let psa = vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "labels": {
        "pod-security.kubernetes.io/enforce": "baseline", "pod-security.kubernetes.io/enforce-version": "latest"}}}),
    ];
    let (deployed, errors) = Deployed::from_deployments(&[("p1".into(), psa)]);
    assert!(errors.is_empty(), "{errors:?}");
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "root", "namespace": "shop", "uid": "u1"},
        "spec": {"containers": [{"name": "c", "image": "i", "securityContext": {"privileged": true}}]}});
    let found = deployed.evaluate(pod.clone(), &Context::default(), 7);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].policy, "pod-security:baseline");
    assert_eq!(found[0].policy_id, "p1");
    assert_eq!(found[0].action, Action::Deny);
    assert_eq!(
        (
            found[0].resource.as_str(),
            found[0].uid.as_str(),
            found[0].at_ms
        ),
        ("pods", "u1", 7)
    );
    // Another namespace is not labelled: nothing to say.
    let mut elsewhere = pod.clone();
    elsewhere["metadata"]["namespace"] = json!("other");
    assert!(deployed
        .evaluate(elsewhere, &Context::default(), 7)
        .is_empty());
    // An approved exception for the namespace leaves the pod out while it lasts.
    let mut excepted = Deployed::from_deployments(&[("p1".into(), vec![json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "shop", "labels": {"pod-security.kubernetes.io/enforce": "baseline"}}})])]).0;
    excepted.now_ms = 7;
    excepted.exceptions.insert(
        "p1".into(),
        vec![crate::exceptions::Exception::example(
            "e1",
            "p1",
            crate::exceptions::Scope::Namespaces {
                namespaces: vec!["shop".into()],
            },
            crate::exceptions::ExceptionState::Approved,
            10,
        )],
    );
    assert!(excepted
        .evaluate(pod.clone(), &Context::default(), 7)
        .is_empty());
    excepted.now_ms = 11;
    assert_eq!(
        excepted
            .evaluate(pod.clone(), &Context::default(), 11)
            .len(),
        1,
        "expired"
    );
    let mut child = pod;
    child["metadata"]["ownerReferences"] =
        json!([{"kind": "ReplicaSet", "name": "r", "controller": true}]);
    assert!(owned(&child));
}

#[test]
fn policy_reports_and_constraint_status_become_findings() {
    let report = json!({"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "PolicyReport",
    "metadata": {"name": "r", "namespace": "shop"},
    "results": [
        {"policy": "require-labels", "result": "fail", "message": "label team is required",
         "resources": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "namespace": "shop", "uid": "u"}]},
        {"policy": "ok-policy", "result": "pass", "resources": [{"kind": "Pod", "name": "x"}]},
        {"policy": "warn-policy", "result": "warn", "message": "w", "resources": [{"kind": "Pod", "name": "p"}]},
    ]});
    let found = report_findings(&report, 1);
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].resource, "apps/deployments");
    assert_eq!(found[0].source, Source::Report);
    assert_eq!(found[1].action, Action::Warn);
    assert_eq!(found[1].namespace, "shop");
    let constraint = json!({"metadata": {"name": "must-have-owner"}, "status": {"violations": [
        {"enforcementAction": "dryrun", "kind": "Namespace", "name": "team-a", "message": "you must provide owner"},
        {"enforcementAction": "deny", "group": "apps", "kind": "Deployment", "namespace": "a", "name": "d", "message": "m"},
    ]}});
    let found = constraint_findings(&constraint, 1);
    assert_eq!(found.len(), 2);
    assert_eq!(
        (found[0].action, found[0].resource.as_str()),
        (Action::Audit, "namespaces")
    );
    assert_eq!(
        (found[1].action, found[1].resource.as_str()),
        (Action::Deny, "apps/deployments")
    );
}
