//! ClusterPolicy / Policy rules end to end: reading (with located errors), matching, autogen,
//! exceptions, actions and each kind of validation.

use serde_json::{json, Value};

use super::*;
use crate::kyverno::PolicySet;
use crate::source::parse_documents;

fn set(yaml: &str) -> PolicySet {
    let docs = parse_documents("p.yaml", yaml).unwrap();
    let mut set = PolicySet::default();
    set.add_documents("p.yaml", &docs).unwrap();
    set
}

/// The ClusterPolicy `p` with `rules` (YAML list items, indented under `spec.rules`).
fn cluster_policy_p(rules: &str) -> String {
    format!("apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {{name: p}}\nspec:\n  rules:{rules}")
}

fn errors(yaml: &str) -> Vec<SourceError> {
    let docs = parse_documents("p.yaml", yaml).unwrap();
    PolicySet::default()
        .add_documents("p.yaml", &docs)
        .unwrap_err()
}

fn outcomes(set: &PolicySet, object: Value) -> Vec<(String, bool, Outcome)> {
    let request = AdmissionRequest::create(object).unwrap();
    set.evaluate(&request, &Context::default())
        .into_iter()
        .map(|r| (r.rule, r.autogen, r.outcome))
        .collect()
}

fn pod(labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "team", "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
}

fn deployment(labels: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "team"},
        "spec": {"template": {"metadata": {"labels": labels},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
}

const LABELS: &str = "
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: require-app}
spec:
  validationFailureAction: enforce
  rules:
  - name: app-label
    match: {any: [{resources: {kinds: [Pod]}}]}
    validate:
      message: an app label is required
      pattern: {metadata: {labels: {app: \"?*\"}}}
";

#[test]
fn a_pattern_rule_passes_fails_and_answers_for_controllers() {
    let set = set(LABELS);
    assert_eq!(set.policies[0].action, FailureAction::Enforce);
    assert_eq!(
        outcomes(&set, pod(json!({"app": "x"}))),
        vec![("app-label".into(), false, Outcome::Pass)]
    );
    let failed = outcomes(&set, pod(json!({})));
    assert_eq!(
        failed[0].2,
        Outcome::Fail(
            "validation error: an app label is required. rule app-label failed at path /metadata/labels/app/"
                .into()
        )
    );
    let through_template = outcomes(&set, deployment(json!({})));
    assert!(
        matches!(&through_template[0], (rule, true, Outcome::Fail(m))
        if rule == "app-label" && m.contains("/spec/template/metadata/labels/app/"))
    );
    assert_eq!(
        outcomes(&set, deployment(json!({"app": "x"})))[0].2,
        Outcome::Pass
    );
    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}});
    assert!(matches!(outcomes(&set, service)[0].2, Outcome::Skip(_)));
}

#[test]
fn autogen_follows_the_annotation() {
    let none = LABELS.replace(
        "metadata: {name: require-app}",
        "metadata: {name: require-app, annotations: {pod-policies.kyverno.io/autogen-controllers: none}}",
    );
    assert!(matches!(
        outcomes(&set(&none), deployment(json!({})))[0].2,
        Outcome::Skip(_)
    ));
    let cron_only = LABELS.replace(
        "metadata: {name: require-app}",
        "metadata: {name: require-app, annotations: {pod-policies.kyverno.io/autogen-controllers: CronJob}}",
    );
    assert!(matches!(
        outcomes(&set(&cron_only), deployment(json!({})))[0].2,
        Outcome::Skip(_)
    ));
}

#[test]
fn a_namespaced_policy_answers_in_its_namespace_only() {
    let yaml = LABELS
        .replace("kind: ClusterPolicy", "kind: Policy")
        .replace(
            "metadata: {name: require-app}",
            "metadata: {name: require-app, namespace: team}",
        );
    let set = set(&yaml);
    assert_eq!(set.policies[0].name, "team/require-app");
    assert!(matches!(
        outcomes(&set, pod(json!({})))[0].2,
        Outcome::Fail(_)
    ));
    let mut elsewhere = pod(json!({}));
    elsewhere["metadata"]["namespace"] = json!("other");
    assert!(matches!(&outcomes(&set, elsewhere)[0].2, Outcome::Skip(why) if why.contains("team")));
}

#[test]
fn exceptions_skip_the_rules_they_name_for_what_they_match() {
    let yaml = format!(
        "{LABELS}---
apiVersion: kyverno.io/v2
kind: PolicyException
metadata: {{name: let-p-be, namespace: team}}
spec:
  exceptions: [{{policyName: require-app, ruleNames: [app-label, autogen-app-label]}}]
  match: {{any: [{{resources: {{kinds: [Pod, Deployment], names: [p, d]}}}}]}}
"
    );
    let set = set(&yaml);
    assert_eq!(
        outcomes(&set, pod(json!({})))[0].2,
        Outcome::Skip("excepted by let-p-be".into())
    );
    assert_eq!(
        outcomes(&set, deployment(json!({})))[0].2,
        Outcome::Skip("excepted by let-p-be".into())
    );
    let mut other = pod(json!({}));
    other["metadata"]["name"] = json!("q");
    assert!(matches!(outcomes(&set, other)[0].2, Outcome::Fail(_)));
}

#[test]
fn match_exclude_preconditions_and_deny() {
    let yaml = &cluster_policy_p(
        "
  - name: no-latest
    match: {any: [{resources: {kinds: [Pod], namespaces: [te*]}}]}
    exclude: {any: [{resources: {selector: {matchLabels: {skip: \"yes\"}}}}]}
    preconditions:
      all:
      - {key: \"{{ request.operation || 'BACKGROUND' }}\", operator: NotEquals, value: DELETE}
    validate:
      failureAction: Audit
      message: \"{{ request.object.metadata.name }} uses nginx\"
      deny:
        conditions:
          any:
          - key: \"{{ request.object.spec.containers[].image }}\"
            operator: AnyIn
            value: [\"nginx*\"]
",
    );
    let set = set(yaml);
    assert_eq!(set.policies[0].rules[0].action, Some(FailureAction::Audit));
    assert_eq!(
        outcomes(&set, pod(json!({})))[0].2,
        Outcome::Fail("p uses nginx".into())
    );
    assert_eq!(
        outcomes(&set, pod(json!({"skip": "yes"})))[0].2,
        Outcome::Skip("excluded".into())
    );
    let mut redis = pod(json!({}));
    redis["spec"]["containers"][0]["image"] = json!("redis");
    assert_eq!(outcomes(&set, redis)[0].2, Outcome::Pass);
}

#[test]
fn foreach_checks_each_element_and_its_list_has_a_budget() {
    let yaml = &cluster_policy_p("
  - name: drop-all
    match: {any: [{resources: {kinds: [Pod]}}]}
    validate:
      message: drop ALL
      foreach:
      - list: request.object.spec.containers
        deny:
          conditions:
            all:
            - {key: ALL, operator: AnyNotIn, value: \"{{ element.securityContext.capabilities.drop[] || `[]` }}\"}
");
    let set = set(yaml);
    assert!(matches!(
        outcomes(&set, pod(json!({})))[0].2,
        Outcome::Fail(_)
    ));
    let mut good = pod(json!({}));
    good["spec"]["containers"][0]["securityContext"] = json!({"capabilities": {"drop": ["ALL"]}});
    assert_eq!(outcomes(&set, good)[0].2, Outcome::Pass);
    let mut many = pod(json!({}));
    many["spec"]["containers"] = Value::Array(vec![json!({"name": "c"}); MAX_FOREACH_ELEMENTS + 1]);
    assert!(matches!(&outcomes(&set, many)[0].2, Outcome::Error(m) if m.contains("foreach list")));
}

#[test]
fn cel_and_pod_security_rules_run_through_their_engines() {
    let yaml = &cluster_policy_p(
        "
  - name: replicas
    match: {any: [{resources: {kinds: [Deployment]}}]}
    celPreconditions:
    - {name: not-system, expression: \"object.metadata.namespace != 'kube-system'\"}
    validate:
      cel:
        expressions:
        - {expression: \"object.spec.replicas <= 3\", message: too many}
  - name: baseline
    match: {any: [{resources: {kinds: [Pod]}}]}
    validate:
      podSecurity: {level: baseline, version: latest}
",
    );
    let set = set(yaml);
    let mut big = deployment(json!({}));
    big["spec"]["replicas"] = json!(9);
    let got = outcomes(&set, big.clone());
    assert_eq!(got[0].2, Outcome::Fail("too many".into()));
    big["metadata"]["namespace"] = json!("kube-system");
    assert!(matches!(outcomes(&set, big)[0].2, Outcome::Skip(_)));
    let mut privileged = pod(json!({}));
    privileged["spec"]["containers"][0]["securityContext"] = json!({"privileged": true});
    assert!(
        matches!(&outcomes(&set, privileged)[1].2, Outcome::Fail(m) if m.contains("privileged"))
    );
    assert_eq!(outcomes(&set, pod(json!({})))[1].2, Outcome::Pass);
}

#[test]
fn what_needs_the_cluster_is_not_evaluable() {
    let yaml = &cluster_policy_p(
        "
  - name: lookup
    match: {any: [{resources: {kinds: [Pod]}}]}
    context:
    - name: cm
      configMap: {name: c, namespace: n}
    validate:
      deny:
        conditions:
          all: [{key: \"{{ cm.data.x }}\", operator: Equals, value: a}]
  - name: images
    match: {any: [{resources: {kinds: [Pod]}}]}
    validate:
      deny:
        conditions:
          all: [{key: \"{{ images.containers.*.registry }}\", operator: AnyIn, value: [docker.io]}]
  - name: mutation
    match: {any: [{resources: {kinds: [Pod]}}]}
    mutate: {patchStrategicMerge: {metadata: {labels: {a: b}}}}
",
    );
    let got = outcomes(&set(yaml), pod(json!({})));
    assert!(matches!(&got[0].2, Outcome::NotEvaluable(m) if m.contains("configMap")));
    assert!(matches!(&got[1].2, Outcome::NotEvaluable(m) if m.contains("images")));
    assert!(matches!(&got[2].2, Outcome::NotEvaluable(m) if m.contains("mutate")));
}

#[test]
fn mistakes_are_reported_where_they_are() {
    let bad_action = "apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: p}
spec:
  validationFailureAction: Block
  rules: []
";
    let e = &errors(bad_action)[0];
    assert_eq!((e.line, e.column), (5, 3));
    assert!(e.message.contains("Block"), "{e}");

    let bad_anchor = "apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: p}
spec:
  rules:
  - name: r
    match: {any: [{resources: {kinds: [Pod]}}]}
    validate:
      pattern:
        spec:
          =(hostNetwork: false
";
    let e = &errors(bad_anchor)[0];
    assert_eq!(e.line, 11, "{e}");
    assert!(e.message.contains("anchor"), "{e}");

    let bad_operator = bad_anchor.replace(
        "      pattern:\n        spec:\n          =(hostNetwork: false\n",
        "      deny:\n        conditions:\n          all:\n          - {key: a, operator: Bigger, value: b}\n",
    );
    let e = &errors(&bad_operator)[0];
    assert!(e.message.contains("Bigger"), "{e}");
    assert_eq!(e.line, 10, "{e}");

    let bad_cel = bad_anchor.replace(
        "      pattern:\n        spec:\n          =(hostNetwork: false\n",
        "      cel:\n        expressions:\n        - expression: \"object.spec.(\"\n",
    );
    let e = &errors(&bad_cel)[0];
    assert_eq!(e.line, 11, "{e}");
    assert!(e.message.contains("validate.cel"), "{e}");

    let unknown_field = bad_anchor.replace("    match:", "    matches:");
    assert!(errors(&unknown_field)[0].message.contains("matches"));

    let bad_jmespath = bad_anchor.replace(
        "      pattern:\n        spec:\n          =(hostNetwork: false\n",
        "      foreach:\n      - list: \"request.object.spec.[\"\n        deny: {conditions: {all: []}}\n",
    );
    let e = &errors(&bad_jmespath)[0];
    assert_eq!(e.line, 10, "{e}");
    assert!(e.message.contains("JMESPath"), "{e}");
}

#[test]
fn a_pod_security_exception_excludes_controls_instead_of_skipping() {
    let yaml = "
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: psa}
spec:
  rules:
  - name: baseline
    match: {any: [{resources: {kinds: [Pod]}}]}
    validate:
      podSecurity: {level: baseline, version: latest}
---
apiVersion: kyverno.io/v2
kind: PolicyException
metadata: {name: allow-privileged-nginx}
spec:
  exceptions: [{policyName: psa, ruleNames: [baseline]}]
  match: {any: [{resources: {kinds: [Pod]}}]}
  podSecurity:
  - {controlName: Privileged Containers, images: [nginx*]}
";
    let set = set(yaml);
    let mut privileged = pod(json!({}));
    privileged["spec"]["containers"][0]["securityContext"] = json!({"privileged": true});
    assert_eq!(outcomes(&set, privileged.clone())[0].2, Outcome::Pass);
    privileged["spec"]["containers"][0]["image"] = json!("redis");
    assert!(matches!(outcomes(&set, privileged)[0].2, Outcome::Fail(_)));
}

#[test]
fn cel_rules_see_null_fields_as_kyverno_does() {
    let yaml = &cluster_policy_p(
        "
  - name: no-wildcards
    match: {any: [{resources: {kinds: [ClusterRole]}}]}
    validate:
      cel:
        expressions:
        - expression: \"object.rules == null || !object.rules.exists(r, '*' in r.verbs)\"
",
    );
    let role = |rules: Value| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "r"}, "rules": rules})
    };
    let set = set(yaml);
    assert_eq!(outcomes(&set, role(Value::Null))[0].2, Outcome::Pass);
    assert!(matches!(
        outcomes(&set, role(json!([{"verbs": ["*"]}])))[0].2,
        Outcome::Fail(_)
    ));
}

#[test]
fn the_kinds_a_rule_may_judge_are_its_match_kinds_and_autogen_s_controllers() {
    let rule = |kinds: &str| {
        cluster_policy_p(&format!(
            "\n  - name: r\n    match:\n      any:\n      - resources:\n          kinds: {kinds}\n    validate:\n      pattern:\n        metadata:\n          name: \"?*\"\n"
        ))
    };
    let pods = set(&rule("[Pod]"));
    for (kind, judged) in [
        ("Pod", true),
        ("Deployment", true),
        ("CronJob", true),
        ("Role", false),
        ("Service", false),
    ] {
        assert_eq!(pods.may_judge_kind(kind), judged, "Pod rule, {kind}");
    }
    // Autogen switched off: the controllers are not judged.
    let no_autogen = set(&rule("[Pod]").replace(
        "metadata: {name: p}",
        "metadata: {name: p, annotations: {pod-policies.kyverno.io/autogen-controllers: none}}",
    ));
    assert!(no_autogen.may_judge_kind("Pod"));
    assert!(!no_autogen.may_judge_kind("Deployment"));
    // Groups and versions are not looked at; wildcards and kindless filters may match anything.
    assert!(set(&rule("[rbac.authorization.k8s.io/v1/Role]")).may_judge_kind("Role"));
    assert!(!set(&rule("[rbac.authorization.k8s.io/v1/Role]")).may_judge_kind("Pod"));
    assert!(set(&rule("[\"*\"]")).may_judge_kind("Role"));
    assert!(set(&rule("[\"Cluster*\"]")).may_judge_kind("ClusterRole"));
    assert!(!set(&rule("[Pod/exec]")).may_judge_kind("Pod"));
    let kindless = set(&cluster_policy_p(
        "\n  - name: r\n    match:\n      any:\n      - resources:\n          names: [x]\n    validate:\n      pattern:\n        metadata:\n          name: \"?*\"\n",
    ));
    assert!(kindless.may_judge_kind("Role"));
    // `all` needs every filter to allow the kind.
    let both = set(&cluster_policy_p(
        "\n  - name: r\n    match:\n      all:\n      - resources:\n          kinds: [Pod]\n      - resources:\n          kinds: [Role]\n    validate:\n      pattern:\n        metadata:\n          name: \"?*\"\n",
    ));
    assert!(!both.may_judge_kind("Role"));
    assert!(!PolicySet::default().may_judge_kind("Pod"));
}
