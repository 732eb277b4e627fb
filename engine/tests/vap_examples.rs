//! The official Kubernetes ValidatingAdmissionPolicy examples (kubernetes/website), read from
//! `$PALISADE_ORACLES/k8s-vap-examples`, with the outcomes its README takes from the documentation.

// Test helpers outside `#[test]` functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use palisade_engine::admission::{AdmissionRequest, Operation};
use palisade_engine::namespaces::Namespaces;
use palisade_engine::source::{parse_documents, Document};
use palisade_engine::vap::{EvalContext, EvaluationOutcome, PolicySet};
use serde_json::{json, Value};

mod common;

fn examples() -> Option<PathBuf> {
    common::oracle_dir("k8s-vap-examples/examples")
}

fn docs(dir: &Path, files: &[&str]) -> Vec<Document> {
    let mut all = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        all.extend(parse_documents(file, &text).unwrap());
    }
    all
}

fn load(dir: &Path, files: &[&str]) -> PolicySet {
    match PolicySet::from_documents("examples", &docs(dir, files)) {
        Ok(set) => set,
        Err(errors) => panic!("{errors:?}"),
    }
}

fn yaml(text: &str) -> Vec<Document> {
    parse_documents("test.yaml", text).unwrap()
}

/// What `kubectl create deployment <name> --image=<image> --replicas=<n> -n <ns>` sends.
fn deployment(name: &str, namespace: &str, image: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "nginx", "image": image, "resources": {}}]}
            }
        }
    })
}

fn namespace(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})
}

fn create(object: Value) -> AdmissionRequest {
    AdmissionRequest::create(object).unwrap()
}

#[test]
fn basic_example_denies_more_than_five_replicas_in_test_namespaces() {
    let Some(dir) = examples() else { return };
    let set = load(
        &dir,
        &[
            "validatingadmissionpolicy/basic-example-policy.yaml",
            "validatingadmissionpolicy/basic-example-binding.yaml",
        ],
    );
    let namespaces = Namespaces::from(vec![
        namespace("test-ns", json!({"environment": "test"})),
        namespace("prod-ns", json!({"environment": "prod"})),
    ]);
    let ctx = EvalContext {
        namespaces: &namespaces,
        ..EvalContext::default()
    };
    let denied = set.evaluate(&create(deployment("web", "test-ns", "nginx", 6)), &ctx);
    assert_eq!(
        denied.denial_message(),
        Some("ValidatingAdmissionPolicy 'demo-policy.example.com' with binding 'demo-binding-test.example.com' denied request: failed expression: object.spec.replicas <= 5")
    );
    let small = set.evaluate(&create(deployment("web", "test-ns", "nginx", 5)), &ctx);
    assert!(small.denials.is_empty());
    assert_eq!(small.evaluations.len(), 1);
    let elsewhere = set.evaluate(&create(deployment("web", "prod-ns", "nginx", 50)), &ctx);
    assert!(elsewhere.denials.is_empty() && elsewhere.evaluations.is_empty());
}

#[test]
fn policy_with_param_denies_above_the_replica_limit() {
    let Some(dir) = examples() else { return };
    let mut docs = docs(
        &dir,
        &[
            "validatingadmissionpolicy/policy-with-param.yaml",
            "validatingadmissionpolicy/binding-with-param.yaml",
            "validatingadmissionpolicy/replicalimit-param.yaml",
        ],
    );
    // The example's parameter misspells `namespace`; `kubectl apply` puts it in `default`, the
    // namespace the binding names.
    for doc in &mut docs {
        if doc.value["kind"] == "ReplicaLimit" {
            doc.value["metadata"]["namespace"] = json!("default");
        }
    }
    let set = PolicySet::from_documents("examples", &docs).unwrap();
    let namespaces = Namespaces::from(vec![namespace("test-ns", json!({"environment": "test"}))]);
    let ctx = EvalContext {
        namespaces: &namespaces,
        ..EvalContext::default()
    };
    let denied = set.evaluate(&create(deployment("web", "test-ns", "nginx", 4)), &ctx);
    assert_eq!(
        denied.denial_message(),
        Some("ValidatingAdmissionPolicy 'replicalimit-policy.example.com' with binding 'replicalimit-binding-test.example.com' denied request: failed expression: object.spec.replicas <= params.maxReplicas")
    );
    assert_eq!(denied.denials[0].reason, "Invalid");
    let allowed = set.evaluate(&create(deployment("web", "test-ns", "nginx", 3)), &ctx);
    assert!(allowed.denials.is_empty());
    assert_eq!(
        allowed.evaluations[0].param.as_deref(),
        Some("default/replica-limit-test.example.com")
    );
    // Without the parameter, `parameterNotFoundAction: Deny` denies.
    let without: Vec<Document> = docs
        .into_iter()
        .filter(|d| d.value["kind"] != "ReplicaLimit")
        .collect();
    let set = PolicySet::from_documents("examples", &without).unwrap();
    let denied = set.evaluate(&create(deployment("web", "test-ns", "nginx", 1)), &ctx);
    assert!(denied
        .denial_message()
        .unwrap()
        .ends_with("denied request: failed to configure binding: no params found for policy binding with `Deny` parameterNotFoundAction"));
}

#[test]
fn message_expression_names_the_limit() {
    let Some(dir) = examples() else { return };
    let mut docs = docs(&dir, &["access/deployment-replicas-policy.yaml"]);
    // As written (v1alpha1 with `group`/`version` in paramKind) the policy has no paramKind
    // apiVersion, which the apiserver refuses; we say where.
    let errors = PolicySet::from_documents("deployment-replicas-policy.yaml", &docs).unwrap_err();
    assert!(
        errors[0].message.contains("spec.paramKind"),
        "{}",
        errors[0]
    );
    assert_eq!(errors[0].line, 6, "{}", errors[0]);
    docs[0].value["spec"]["paramKind"] =
        json!({"apiVersion": "rules.example.com/v1", "kind": "ReplicaLimit"});
    docs.extend(yaml(
        "apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: deploy-replica-binding}
spec:
  policyName: deploy-replica-policy.example.com
  validationActions: [Deny]
  paramRef: {name: limit, parameterNotFoundAction: Deny}
---
apiVersion: rules.example.com/v1
kind: ReplicaLimit
metadata: {name: limit, namespace: default}
maxReplicas: 3
",
    ));
    let set = PolicySet::from_documents("examples", &docs).unwrap();
    let result = set.evaluate(
        &create(deployment("nginx", "default", "nginx", 5)),
        &EvalContext::default(),
    );
    assert_eq!(
        result.denial_message(),
        Some("ValidatingAdmissionPolicy 'deploy-replica-policy.example.com' with binding 'deploy-replica-binding' denied request: object.spec.replicas must be no greater than 3")
    );
}

#[test]
fn variables_and_namespace_object_check_image_environments() {
    let Some(dir) = examples() else { return };
    let mut docs = docs(
        &dir,
        &["access/image-matches-namespace-environment.policy.yaml"],
    );
    docs.extend(yaml(
        "apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: image-binding}
spec:
  policyName: image-matches-namespace-environment.policy.example.com
  validationActions: [Deny]
",
    ));
    let set = PolicySet::from_documents("examples", &docs).unwrap();
    let namespaces = Namespaces::from(vec![namespace("default", json!({"environment": "prod"}))]);
    let ctx = EvalContext {
        namespaces: &namespaces,
        ..EvalContext::default()
    };
    let denied = set.evaluate(
        &create(deployment("invalid", "default", "dev.example.com/nginx", 1)),
        &ctx,
    );
    assert_eq!(
        denied.denial_message(),
        Some("ValidatingAdmissionPolicy 'image-matches-namespace-environment.policy.example.com' with binding 'image-binding' denied request: only prod images are allowed in namespace default")
    );
    let prod = set.evaluate(
        &create(deployment("valid", "default", "prod.example.com/nginx", 1)),
        &ctx,
    );
    assert!(prod.denials.is_empty(), "{:?}", prod.denials);
    let mut exempt = deployment("exempt", "default", "dev.example.com/nginx", 1);
    exempt["metadata"]["labels"]["exempt"] = json!("true");
    assert!(set.evaluate(&create(exempt), &ctx).denials.is_empty());
    let elsewhere = set.evaluate(&create(deployment("other", "default", "nginx", 1)), &ctx);
    assert!(
        elsewhere.denials.is_empty(),
        "images outside example.com are not checked"
    );
}

#[test]
fn audit_annotations_record_the_replica_count() {
    let Some(dir) = examples() else { return };
    let mut docs = docs(
        &dir,
        &["access/validating-admission-policy-audit-annotation.yaml"],
    );
    docs.extend(yaml(
        "apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: demo-binding}
spec:
  policyName: demo-policy.example.com
  validationActions: [Audit]
",
    ));
    let set = PolicySet::from_documents("examples", &docs).unwrap();
    let result = set.evaluate(
        &create(deployment("web", "default", "nginx", 128)),
        &EvalContext::default(),
    );
    assert!(result.denials.is_empty());
    assert_eq!(
        result
            .audit_annotations
            .get("demo-policy.example.com/high-replica-count")
            .map(String::as_str),
        Some("Deployment spec.replicas set to 128")
    );
    // The validation (`replicas > 50`) passed, so no validation failure was recorded.
    assert!(result.audit_failures.is_empty());
    let few = set.evaluate(
        &create(deployment("web", "default", "nginx", 3)),
        &EvalContext::default(),
    );
    assert_eq!(
        few.audit_failures.len(),
        1,
        "an Audit binding records the failure"
    );
    assert!(few.audit_failures[0].contains("\"message\":\"Deployment spec.replicas set to 3\""));
}

#[test]
fn a_field_that_does_not_exist_is_an_evaluation_error_under_fail() {
    let Some(dir) = examples() else { return };
    let mut docs = docs(&dir, &["validatingadmissionpolicy/typechecking.yaml"]);
    docs.extend(yaml(
        "apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: b}
spec: {policyName: deploy-replica-policy.example.com, validationActions: [Deny]}
",
    ));
    let set = PolicySet::from_documents("examples", &docs).unwrap();
    let result = set.evaluate(
        &create(deployment("web", "default", "nginx", 3)),
        &EvalContext::default(),
    );
    assert_eq!(
        result.denial_message(),
        Some("ValidatingAdmissionPolicy 'deploy-replica-policy.example.com' with binding 'b' denied request: expression 'object.replicas > 1' resulted in error: no such key: replicas")
    );
}

#[test]
fn match_conditions_skip_leases_kubelets_and_rbac() {
    let Some(dir) = examples() else { return };
    let file = "access/validating-admission-policy-match-conditions.yaml";
    // The example's validation calls `startWith` (for `startsWith`): the apiserver's type check
    // refuses the policy when it is created, and so does Palisade's, at the place of the call.
    let refused = PolicySet::from_documents("examples", &docs(&dir, &[file])).unwrap_err();
    assert!(
        refused[0]
            .message
            .ends_with("undeclared reference to 'startWith' (in container '')"),
        "{refused:?}"
    );
    let text = std::fs::read_to_string(dir.join(file))
        .unwrap()
        .replace("startWith(", "startsWith(");
    let mut docs = parse_documents(file, &text).unwrap();
    docs.extend(yaml(
        "apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: b}
spec: {policyName: demo-policy.example.com, validationActions: [Deny]}
",
    ));
    let set = PolicySet::from_documents("examples", &docs).unwrap();
    let ctx = EvalContext::default();
    let lease = create(json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "node-1", "namespace": "kube-node-lease"}
    }));
    let mut by_kubelet = create(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "mirror", "namespace": "kube-system"}
    }));
    by_kubelet.user_info.username = "system:node:node-1".into();
    by_kubelet.user_info.groups = vec!["system:nodes".into(), "system:authenticated".into()];
    let role = create(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "r", "namespace": "default"}
    }));
    for request in [lease, by_kubelet, role] {
        let result = set.evaluate(&request, &ctx);
        assert_eq!(
            result.evaluations[0].outcome,
            EvaluationOutcome::ConditionsNotMet,
            "{:?}",
            request.kind
        );
    }
    // Anything else reaches the validation.
    let mut config = create(json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "demo-x", "namespace": "default"}
    }));
    config.operation = Operation::Create;
    // A real request always carries groups (`system:authenticated` at least); without them the
    // second condition is itself an error (`no such key: groups`), as in the apiserver.
    config.user_info.username = "alice".into();
    config.user_info.groups = vec!["system:authenticated".into()];
    let result = set.evaluate(&config, &ctx);
    assert!(result.denials.is_empty(), "{:?}", result.denials);
    let mut other = config.clone();
    if let Some(object) = other.object.as_mut() {
        object["metadata"]["name"] = json!("other");
    }
    let result = set.evaluate(&other, &ctx);
    assert_eq!(result.denials.len(), 1, "{result:?}");
}
