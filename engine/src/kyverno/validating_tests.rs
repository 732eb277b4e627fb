use super::*;
use crate::kyverno::PolicySet;
use crate::source::parse_documents;

fn read(text: &str) -> Result<PolicySet, Vec<SourceError>> {
    let documents = parse_documents("p.yaml", text).expect("YAML");
    let mut set = PolicySet::default();
    set.add_documents("p.yaml", &documents)?;
    Ok(set)
}

fn results(text: &str, object: Value) -> Vec<RuleResult> {
    let set = read(text).expect("the policy reads");
    let request = AdmissionRequest::create(object).expect("a request");
    set.evaluate(&request, &Context::default())
}

fn outcome(text: &str, object: Value) -> Outcome {
    let mut results = results(text, object);
    assert_eq!(results.len(), 1, "{results:?}");
    results.remove(0).outcome
}

const PODS: &str = "
apiVersion: policies.kyverno.io/v1
kind: ValidatingPolicy
metadata: {name: no-latest}
spec:
  validationActions: [Audit, Warn]
  matchConstraints:
    resourceRules:
    - {apiGroups: [''], apiVersions: [v1], operations: [CREATE], resources: [pods]}
  validations:
  - expression: \"object.spec.containers.all(c, !c.image.endsWith(':latest'))\"
    message: no latest
";

fn pod(image: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "team"},
           "spec": {"containers": [{"name": "c", "image": image}]}})
}

fn deployment(image: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "team"},
           "spec": {"template": {"metadata": {"labels": {"app": "d"}},
                                 "spec": {"containers": [{"name": "c", "image": image}]}}}})
}

fn cronjob(image: &str) -> Value {
    json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "j", "namespace": "team"},
           "spec": {"jobTemplate": {"spec": {"template": {"metadata": null,
                                 "spec": {"containers": [{"name": "c", "image": image}]}}}}}})
}

#[test]
fn a_pod_passes_or_fails_with_the_message_and_the_strictest_action() {
    let result = &results(PODS, pod("nginx:1.27"))[0];
    assert_eq!(result.outcome, Outcome::Pass);
    assert_eq!(result.action, FailureAction::Warn);
    assert_eq!(result.rule, "no-latest");
    assert!(!result.autogen);
    assert_eq!(
        outcome(PODS, pod("nginx:latest")),
        Outcome::Fail("no latest".into())
    );
}

#[test]
fn validation_actions_map_to_the_strictest_failure_action() {
    use ValidationAction::*;
    assert_eq!(strictest(&[Audit]), FailureAction::Audit);
    assert_eq!(strictest(&[Audit, Warn]), FailureAction::Warn);
    assert_eq!(strictest(&[Warn, Deny, Audit]), FailureAction::Enforce);
    let policy = PODS.replace("  validationActions: [Audit, Warn]\n", "");
    let set = read(&policy).unwrap();
    assert_eq!(set.validating[0].action, FailureAction::Enforce);
    assert_eq!(set.validating[0].actions, vec![Deny]);
}

#[test]
fn pod_controllers_are_judged_by_their_pod_template_as_autogen() {
    for object in [deployment("nginx:latest"), cronjob("nginx:latest")] {
        let result = &results(PODS, object)[0];
        assert!(result.autogen, "{result:?}");
        assert_eq!(result.rule, "no-latest");
        assert_eq!(result.outcome, Outcome::Fail("no latest".into()));
    }
    let result = &results(PODS, deployment("nginx:1.27"))[0];
    assert_eq!((result.autogen, &result.outcome), (true, &Outcome::Pass));
    // A Service is neither a Pod nor a pod controller.
    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}});
    assert!(matches!(outcome(PODS, service), Outcome::Skip(_)));
}

#[test]
fn autogen_follows_the_configured_controllers() {
    let none = PODS.replace(
        "spec:\n",
        "spec:\n  autogen: {podControllers: {controllers: []}}\n",
    );
    assert!(matches!(
        outcome(&none, deployment("nginx:latest")),
        Outcome::Skip(_)
    ));
    let cronjobs = PODS.replace(
        "spec:\n",
        "spec:\n  autogen: {podControllers: {controllers: [cronjobs]}}\n",
    );
    assert!(matches!(
        outcome(&cronjobs, deployment("nginx:latest")),
        Outcome::Skip(_)
    ));
    assert!(matches!(
        outcome(&cronjobs, cronjob("nginx:latest")),
        Outcome::Fail(_)
    ));
}

#[test]
fn autogen_applies_only_to_policies_matching_exactly_pods() {
    let rule = |resources: &str| -> MatchResources {
        serde_json::from_value(json!({"resourceRules": [
            {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": [resources]}
        ]}))
        .unwrap()
    };
    assert_eq!(autogen_controllers(&rule("pods"), None).len(), 6);
    assert!(autogen_controllers(&rule("services"), None).is_empty());
    let mut selected = rule("pods");
    selected.object_selector =
        Some(serde_json::from_value(json!({"matchLabels": {"a": "b"}})).unwrap());
    assert!(autogen_controllers(&selected, None).is_empty());
    let mut excluded = rule("pods");
    excluded.exclude_resource_rules = rule("pods").resource_rules;
    assert!(autogen_controllers(&excluded, None).is_empty());
    let mut two = rule("pods");
    two.resource_rules.extend(rule("pods").resource_rules);
    assert!(autogen_controllers(&two, None).is_empty());
    let names = ["jobs".to_owned(), "Deployment".to_owned()];
    assert_eq!(
        autogen_controllers(&rule("pods"), Some(&names)),
        vec!["Job"]
    );
}

#[test]
fn a_validation_without_a_message_gets_kyvernos_default() {
    let policy = PODS.replace("    message: no latest\n", "");
    assert_eq!(
        outcome(&policy, pod("nginx:latest")),
        Outcome::Fail("CEL expression validation failed at index 0".into())
    );
}

#[test]
fn match_conditions_skip_and_their_errors_follow_the_failure_policy() {
    let with = |condition: &str, failure: &str| {
        PODS.replace(
            "  validations:",
            &format!("  failurePolicy: {failure}\n  matchConditions:\n  - {{name: c, expression: \"{condition}\"}}\n  validations:"),
        )
    };
    assert!(matches!(
        outcome(&with("false", "Fail"), pod("nginx:latest")),
        Outcome::Skip(_)
    ));
    assert!(matches!(
        outcome(&with("object.nope == 1", "Fail"), pod("nginx:latest")),
        Outcome::Error(_)
    ));
    assert!(matches!(
        outcome(&with("object.nope == 1", "Ignore"), pod("nginx:latest")),
        Outcome::Skip(_)
    ));
}

#[test]
fn an_erring_validation_is_an_error_whatever_the_failure_policy() {
    let policy = PODS
        .replace(
            "object.spec.containers.all(c, !c.image.endsWith(':latest'))",
            "object.nope == 1",
        )
        .replace("spec:\n", "spec:\n  failurePolicy: Ignore\n");
    assert!(matches!(outcome(&policy, pod("x")), Outcome::Error(e) if e.contains("nope")));
}

#[test]
fn exceptions_skip_or_pass_the_policies_they_name() {
    let exception = |extra: &str| {
        format!(
            "{PODS}---
apiVersion: policies.kyverno.io/v1alpha1
kind: PolicyException
metadata: {{name: team-ok}}
spec:
  policyRefs: [{{name: no-latest, kind: ValidatingPolicy}}]
  matchConditions:
  - {{name: team, expression: \"object.metadata.namespace == 'team'\"}}
{extra}"
        )
    };
    assert_eq!(
        outcome(&exception(""), pod("nginx:latest")),
        Outcome::Skip("excepted by team-ok".into())
    );
    assert_eq!(
        outcome(&exception("  reportResult: pass\n"), pod("nginx:latest")),
        Outcome::Pass
    );
    // The exception is judged on the controller itself, whose namespace is `team` too.
    assert_eq!(
        outcome(&exception(""), deployment("nginx:latest")),
        Outcome::Skip("excepted by team-ok".into())
    );
    let elsewhere = exception("").replace("'team'", "'other'");
    assert!(matches!(
        outcome(&elsewhere, pod("nginx:latest")),
        Outcome::Fail(_)
    ));
}

#[test]
fn policies_that_reach_outside_the_object_are_not_evaluable_with_the_reason() {
    let policy = PODS.replace(
        "object.spec.containers.all(c, !c.image.endsWith(':latest'))",
        "resource.Get('v1', 'configmaps', 'default', 'x').data.a == 'b'",
    );
    match outcome(&policy, pod("x")) {
        Outcome::NotEvaluable(why) => assert!(why.contains("resource.Get"), "{why}"),
        other => panic!("{other:?}"),
    }
    // A variable of the same name is not the library.
    let calls =
        library_calls("object.spec.rules.all(resource, resource.name != '') && 'http.Get(' != ''");
    assert!(
        calls.iter().all(|(r, f)| library_reason(r, f).is_none()),
        "{calls:?}"
    );
    let calls = library_calls("x.?user.orValue('') == '' && image.GetMetadata(y) != null");
    let reasons: Vec<_> = calls
        .iter()
        .filter_map(|(r, f)| library_reason(r, f))
        .collect();
    assert_eq!(reasons.len(), 1, "{reasons:?}");
}

#[test]
fn or_value_on_a_plain_value_keeps_it_as_kyverno_does() {
    let policy = PODS.replace(
        "object.spec.containers.all(c, !c.image.endsWith(':latest'))",
        "object.spec.containers.orValue([]).size() == 1 && object.spec.?volumes.orValue([]).size() == 0",
    );
    assert_eq!(outcome(&policy, pod("x")), Outcome::Pass);
    assert_eq!(
        super::lenient::or_value("a.orValue('.orValue(')"),
        "a.palisade_or_value('.orValue(')"
    );
}

#[test]
fn errors_are_placed_in_the_file() {
    let unknown = PODS.replace("  validationActions", "  validationActionz");
    let errors = read(&unknown).unwrap_err();
    assert!(
        errors[0].message.contains("validationActionz"),
        "{errors:?}"
    );
    assert_eq!(errors[0].line, 6);
    // A compile error at its column, past an `orValue` on the same line.
    let broken = PODS.replace(
        "\"object.spec.containers.all(c, !c.image.endsWith(':latest'))\"",
        "object.spec.?x.orValue(1) == 1 && object.spec.nope(",
    );
    let errors = read(&broken).unwrap_err();
    let error = &errors[0];
    assert!(
        error
            .message
            .starts_with("ValidatingPolicy 'no-latest': spec.validations[0].expression"),
        "{error}"
    );
    assert!(!error.message.contains("palisade_or_value"), "{error}");
    assert_eq!(error.line, 11, "{error}");
    let line = broken.lines().nth(10).unwrap();
    assert!(error.column > line.find("&&").unwrap(), "{error} in {line}");
    assert!(error.column <= line.len() + 1, "{error} in {line}");
    let version = PODS.replace("policies.kyverno.io/v1", "policies.kyverno.io/v2");
    assert!(read(&version).unwrap_err()[0]
        .message
        .contains("Unsupported value"));
}

#[test]
fn an_over_budget_policy_is_an_error_that_says_so() {
    let policy = PODS.replace(
        "object.spec.containers.all(c, !c.image.endsWith(':latest'))",
        "lists.range(5000000).all(i, i >= 0)",
    );
    match outcome(&policy, pod("x")) {
        Outcome::Error(why) => assert!(why.contains("cost"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_namespaced_policy_applies_in_its_namespace_only() {
    let policy = PODS
        .replace("kind: ValidatingPolicy", "kind: NamespacedValidatingPolicy")
        .replace(
            "metadata: {name: no-latest}",
            "metadata: {name: no-latest, namespace: team}",
        );
    let result = &results(&policy, pod("nginx:latest"))[0];
    assert_eq!(result.policy, "team/no-latest");
    assert!(matches!(result.outcome, Outcome::Fail(_)));
    let mut elsewhere = pod("nginx:latest");
    elsewhere["metadata"]["namespace"] = json!("other");
    assert!(matches!(outcome(&policy, elsewhere), Outcome::Skip(_)));
}

#[test]
fn a_json_mode_policy_judges_the_document_without_matching() {
    let policy = "
apiVersion: policies.kyverno.io/v1beta1
kind: ValidatingPolicy
metadata: {name: small}
spec:
  evaluation: {mode: JSON}
  validations:
  - {expression: 'object.value < 10', message: too big}
";
    let set = read(policy).unwrap();
    let request = |value: i64| AdmissionRequest {
        object: Some(json!({"value": value})),
        ..AdmissionRequest::default()
    };
    let judge = |value| {
        set.evaluate(&request(value), &Context::default())[0]
            .outcome
            .clone()
    };
    assert_eq!(judge(3), Outcome::Pass);
    assert_eq!(judge(30), Outcome::Fail("too big".into()));
    // A document of any kind may be judged.
    assert!(set.may_judge_kind("Role"));
    let envoy = policy.replace("mode: JSON", "mode: Envoy");
    assert!(matches!(
        read(&envoy).unwrap().validating[0].body,
        Body::NotEvaluable(_)
    ));
}

#[test]
fn parse_service_account_reads_a_service_account_user_as_kyverno_does() {
    let policy = PODS.replace(
        "\"object.spec.containers.all(c, !c.image.endsWith(':latest'))\"",
        "\"parseServiceAccount(request.userInfo.username).Namespace == 'team' && \
         user.parseServiceAccount(request.userInfo.username).Name == 'ci'\"",
    );
    let set = read(&policy).expect("the policy reads");
    let judge = |username: &str| {
        let mut request = AdmissionRequest::create(pod("x")).expect("a request");
        request.user_info.username = username.to_owned();
        let mut results = set.evaluate(&request, &Context::default());
        results.remove(0).outcome
    };
    assert_eq!(judge("system:serviceaccount:team:ci"), Outcome::Pass);
    assert!(matches!(
        judge("system:serviceaccount:team:other"),
        Outcome::Fail(_)
    ));
    // Not a service account: both fields are empty.
    assert!(matches!(judge("alice"), Outcome::Fail(_)));
    // Only the calls are rewritten: a method of that name, or the words in a string, stay.
    assert_eq!(
        super::lenient::or_value(
            "x.parseServiceAccount(a) + 'parseServiceAccount(' + parseServiceAccount(b)"
        ),
        "x.parseServiceAccount(a) + 'parseServiceAccount(' + palisade_parse_service_account(b)"
    );
    // An error names what the author wrote.
    let wrong = PODS.replace(
        "\"object.spec.containers.all(c, !c.image.endsWith(':latest'))\"",
        "\"parseServiceAccount(1).Name == ''\"",
    );
    match outcome(&wrong, pod("x")) {
        Outcome::Error(error) => {
            assert!(error.contains("parseServiceAccount"), "{error}");
            assert!(!error.contains("palisade_"), "{error}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_kinds_a_validating_policy_may_judge_are_its_resources_and_autogen_s_controllers() {
    let pods = read(PODS).unwrap();
    for (kind, judged) in [
        ("Pod", true),
        ("Deployment", true),
        ("CronJob", true),
        ("Role", false),
        ("Service", false),
    ] {
        assert_eq!(pods.may_judge_kind(kind), judged, "{kind}");
    }
    // Autogen switched off: only Pods.
    let no_autogen = read(&PODS.replace(
        "  validations:",
        "  autogen: {podControllers: {controllers: []}}\n  validations:",
    ))
    .unwrap();
    assert!(no_autogen.may_judge_kind("Pod"));
    assert!(!no_autogen.may_judge_kind("Deployment"));
    let roles = read(
        &PODS
            .replace(
                "apiGroups: [''], apiVersions: [v1]",
                "apiGroups: [rbac.authorization.k8s.io], apiVersions: [v1]",
            )
            .replace("resources: [pods]", "resources: [roles, \"*/status\"]"),
    )
    .unwrap();
    assert!(roles.may_judge_kind("Role"));
    assert!(
        roles.may_judge_kind("Service"),
        "`*/status` may be any resource's"
    );
    // Without match constraints nothing is matched.
    let unmatched = read(&PODS.replace(
        "  matchConstraints:\n    resourceRules:\n    - {apiGroups: [''], apiVersions: [v1], operations: [CREATE], resources: [pods]}\n",
        "",
    ))
    .unwrap();
    assert!(!unmatched.may_judge_kind("Pod"));
}
