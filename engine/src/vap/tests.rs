//! One test per semantic rule of the apiserver's ValidatingAdmissionPolicy plugin.

use serde_json::{json, Value};

use super::*;
use crate::source::parse_documents;

thread_local! {
    /// Keep composited variables as deep copies (`cel::to_static`), as they once were, to compare
    /// with the values kept as computed.
    pub(super) static DEEP_COPY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn set(yaml: &str) -> PolicySet {
    let docs = parse_documents("p.yaml", yaml).unwrap();
    match PolicySet::from_documents("p.yaml", &docs) {
        Ok(set) => set,
        Err(errors) => panic!("{errors:?}"),
    }
}

fn errors(yaml: &str) -> Vec<SourceError> {
    let docs = parse_documents("p.yaml", yaml).unwrap();
    PolicySet::from_documents("p.yaml", &docs).unwrap_err()
}

fn deployment(name: &str, namespace: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {"replicas": replicas}
    })
}

fn eval(set: &PolicySet, object: Value) -> VapResult {
    eval_in(set, object, &EvalContext::default())
}

/// [`eval`] of the Deployment `web` (one replica) in namespace `n`.
fn eval_web(set: &PolicySet) -> VapResult {
    eval(set, deployment("web", "n", 1))
}

/// The result for `object`, held to be the result for only what the policies read of it (what
/// an impact reads of an object held as text).
fn eval_in(set: &PolicySet, object: Value, ctx: &EvalContext<'_>) -> VapResult {
    let projected = set.object_reads().read(&object.to_string()).unwrap();
    let result = set.evaluate(&AdmissionRequest::create(object).unwrap(), ctx);
    let of_projection = set.evaluate(&AdmissionRequest::create(projected).unwrap(), ctx);
    assert_eq!(of_projection, result, "the projection is judged otherwise");
    result
}

const HEAD: &str = "
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: p}
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: [apps], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [deployments]}
";

fn binding(actions: &str) -> String {
    binding_of("b", "p", actions, "")
}

/// The `admissionregistration.k8s.io/v1` document of `kind` named `name` whose spec is `spec`
/// (its lines); after a `---`, so documents written this way join into one stream.
fn admission(kind: &str, name: &str, spec: &str) -> String {
    format!(
        "---
apiVersion: admissionregistration.k8s.io/v1
kind: {kind}
metadata: {{name: {name}}}
spec:
{spec}"
    )
}

/// The binding `name` of the policy `policy` with `actions`, its spec going on with `rest`.
fn binding_of(name: &str, policy: &str, actions: &str, rest: &str) -> String {
    let spec = format!("  policyName: {policy}\n  validationActions: {actions}\n{rest}");
    admission("ValidatingAdmissionPolicyBinding", name, &spec)
}

/// The policy `name` on Deployment creates, its spec going on with `rest` (after
/// `matchConstraints`); with ConfigMaps for parameters when `params`.
fn declared(name: &str, params: bool, rest: &str) -> String {
    let param_kind = if params {
        "  paramKind: {apiVersion: v1, kind: ConfigMap}\n"
    } else {
        ""
    };
    let spec = format!(
        "{param_kind}  matchConstraints:
    resourceRules:
    - {{apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [deployments]}}
{rest}"
    );
    admission("ValidatingAdmissionPolicy", name, &spec)
}

fn policy(body: &str, actions: &str) -> PolicySet {
    set(&format!("{HEAD}{body}{}", binding(actions)))
}

#[test]
fn a_denial_is_worded_as_the_apiserver_words_it() {
    let set = policy(
        "  validations:\n  - expression: object.spec.replicas <= 5\n",
        "[Deny]",
    );
    let result = eval(&set, deployment("web", "team", 7));
    assert_eq!(
        result.denial_message(),
        Some("ValidatingAdmissionPolicy 'p' with binding 'b' denied request: failed expression: object.spec.replicas <= 5")
    );
    assert_eq!(result.denials[0].reason, "Invalid");
    assert!(eval(&set, deployment("web", "team", 5)).denials.is_empty());
    let verdict = result.into_verdict();
    assert_eq!(verdict.action(), Action::Deny);
    assert_eq!(verdict.findings[0].policy, "p/b");
}

#[test]
fn message_expression_then_message_then_the_expression() {
    let set = policy(
        "  validations:
  - expression: object.spec.replicas <= 5
    message: too many
    messageExpression: \"'replicas ' + string(object.spec.replicas) + ' > 5'\"
    reason: Forbidden
  - expression: object.spec.replicas <= 5
    message: '  too many  '
    messageExpression: \"object.spec.replicas\"
  - expression: object.spec.replicas <= 5
    messageExpression: \"'two\\\\nlines'\"
  - expression: object.spec.replicas <= 5
    messageExpression: \"object.nope\"
",
        "[Deny]",
    );
    let result = eval(&set, deployment("web", "team", 9));
    let messages: Vec<_> = result.denials.iter().map(|d| d.message.as_str()).collect();
    let prefix = "ValidatingAdmissionPolicy 'p' with binding 'b' denied request: ";
    assert_eq!(messages[0], format!("{prefix}replicas 9 > 5"));
    assert_eq!(result.denials[0].reason, "Forbidden");
    // A non-string message expression falls back to the (trimmed) message.
    assert_eq!(messages[1], format!("{prefix}too many"));
    // Multi-line and failing message expressions fall back to the expression.
    assert_eq!(
        messages[2],
        format!("{prefix}failed expression: object.spec.replicas <= 5")
    );
    assert_eq!(
        messages[3],
        format!("{prefix}failed expression: object.spec.replicas <= 5")
    );
}

#[test]
fn a_policy_that_does_not_match_is_not_evaluated() {
    let set = policy("  validations:\n  - expression: 'false'\n", "[Deny]");
    let pod =
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x", "namespace": "n"}});
    let result = eval(&set, pod);
    assert!(result.evaluations.is_empty());
    let mut delete =
        AdmissionRequest::for_object(Operation::Delete, deployment("web", "n", 1)).unwrap();
    delete.user_info.username = "u".into();
    assert!(set
        .evaluate(&delete, &EvalContext::default())
        .evaluations
        .is_empty());
}

#[test]
fn the_binding_narrows_the_policy_with_selectors_and_exclusions() {
    let set = set(&format!(
        "{HEAD}  validations:\n  - expression: 'false'\n---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {{name: b}}
spec:
  policyName: p
  validationActions: [Deny]
  matchResources:
    namespaceSelector:
      matchExpressions: [{{key: env, operator: In, values: [prod]}}]
    objectSelector:
      matchLabels: {{app: web}}
    excludeResourceRules:
    - {{apiGroups: [apps], apiVersions: [v1], operations: ['*'], resources: [deployments], resourceNames: [web-legacy]}}
"
    ));
    let prod = Namespaces::from(vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "labels": {"env": "prod"}}}),
    ]);
    let ctx = EvalContext {
        namespaces: &prod,
        ..EvalContext::default()
    };
    assert_eq!(
        eval_in(&set, deployment("web", "shop", 1), &ctx)
            .denials
            .len(),
        1
    );
    // Another namespace (unknown: only its name label), another app, an excluded name.
    assert!(eval_in(&set, deployment("web", "dev", 1), &ctx)
        .denials
        .is_empty());
    assert!(eval_in(&set, deployment("api", "shop", 1), &ctx)
        .denials
        .is_empty());
    let mut legacy = deployment("web-legacy", "shop", 1);
    legacy["metadata"]["labels"]["app"] = json!("web");
    assert!(eval_in(&set, legacy, &ctx).denials.is_empty());
}

#[test]
fn an_unknown_namespace_still_has_its_name_label_and_object() {
    let set = set(&format!(
        "{HEAD}  validations:\n  - expression: namespaceObject.metadata.name != 'default'\n---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {{name: b}}
spec:
  policyName: p
  validationActions: [Deny]
  matchResources:
    namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: default}}}}
"
    ));
    assert_eq!(eval(&set, deployment("web", "default", 1)).denials.len(), 1);
    assert!(eval(&set, deployment("web", "other", 1))
        .evaluations
        .is_empty());
}

fn param_set(param_ref: &str, params: &str) -> PolicySet {
    let policy = declared(
        "p",
        true,
        "  validations:
  - expression: object.spec.replicas <= int(params.data.max)
    messageExpression: \"'max ' + params.data.max\"
",
    );
    let binding = binding_of("b", "p", "[Deny]", &format!("  paramRef: {param_ref}\n"));
    set(&format!("{policy}{binding}{params}"))
}

const PARAMS: &str = "---
apiVersion: v1
kind: ConfigMap
metadata: {name: limits, namespace: team, labels: {tier: a}}
data: {max: '3'}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: strict, namespace: team, labels: {tier: a}}
data: {max: '1'}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: limits, namespace: other}
data: {max: '100'}
";

#[test]
fn params_by_name_in_the_request_namespace() {
    let set = param_set("{name: limits, parameterNotFoundAction: Deny}", PARAMS);
    let result = eval(&set, deployment("web", "team", 4));
    assert_eq!(result.evaluations.len(), 1);
    assert_eq!(result.evaluations[0].param.as_deref(), Some("team/limits"));
    assert!(result
        .denial_message()
        .unwrap()
        .ends_with("denied request: max 3"));
    assert!(eval(&set, deployment("web", "other", 4)).denials.is_empty());
}

#[test]
fn one_evaluation_per_param_a_selector_selects() {
    let set = param_set(
        "{selector: {matchLabels: {tier: a}}, parameterNotFoundAction: Allow}",
        PARAMS,
    );
    let result = eval(&set, deployment("web", "team", 2));
    assert_eq!(result.evaluations.len(), 2);
    assert_eq!(result.denials.len(), 1, "only `strict` (max 1) denies");
    assert!(result.denial_message().unwrap().ends_with("max 1"));
}

#[test]
fn params_not_found_follow_the_action() {
    let allow = param_set("{name: missing, parameterNotFoundAction: Allow}", PARAMS);
    let result = eval(&allow, deployment("web", "team", 100));
    assert!(result.evaluations.is_empty() && result.denials.is_empty());
    let deny = param_set("{name: missing, parameterNotFoundAction: Deny}", PARAMS);
    let result = eval(&deny, deployment("web", "team", 1));
    assert_eq!(
        result.denial_message(),
        Some("ValidatingAdmissionPolicy 'p' with binding 'b' denied request: failed to configure binding: no params found for policy binding with `Deny` parameterNotFoundAction")
    );
    // A namespaced parameter kind cannot be looked up for a cluster-scoped request.
    let node = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}, "spec": {"replicas": 1}});
    let message = eval(&deny, node).denial_message().unwrap().to_owned();
    assert!(
        message.contains("cannot use namespaced paramRef"),
        "{message}"
    );
}

#[test]
fn evaluation_errors_follow_the_failure_policy() {
    let fail = policy(
        "  validations:\n  - expression: object.spec.missing > 1\n",
        "[Deny]",
    );
    let result = eval_web(&fail);
    assert_eq!(
        result.denial_message(),
        Some("ValidatingAdmissionPolicy 'p' with binding 'b' denied request: expression 'object.spec.missing > 1' resulted in error: no such key: missing")
    );
    let ignore = policy(
        "  failurePolicy: Ignore\n  validations:\n  - expression: object.spec.missing > 1\n",
        "[Deny]",
    );
    let result = eval_web(&ignore);
    assert!(result.denials.is_empty());
    assert_eq!(result.evaluations.len(), 1);
}

#[test]
fn match_conditions_all_true_false_skips_errors_follow_the_failure_policy() {
    let body = |failure: &str, conditions: &str| {
        policy(
            &format!("  failurePolicy: {failure}\n  matchConditions:\n{conditions}  validations:\n  - expression: 'false'\n"),
            "[Deny]",
        )
    };
    let ok = "  - {name: a, expression: 'true'}\n";
    let no = "  - {name: b, expression: object.metadata.name == 'other'}\n";
    let err = "  - {name: c, expression: object.nope == 1}\n";
    assert_eq!(eval_web(&body("Fail", ok)).denials.len(), 1);
    let skipped = eval_web(&body("Fail", &format!("{ok}{no}")));
    assert_eq!(
        skipped.evaluations[0].outcome,
        EvaluationOutcome::ConditionsNotMet
    );
    // A false condition wins over an error.
    let skipped = eval_web(&body("Fail", &format!("{err}{no}")));
    assert_eq!(
        skipped.evaluations[0].outcome,
        EvaluationOutcome::ConditionsNotMet
    );
    let failed = eval_web(&body("Fail", &format!("{ok}{err}")));
    assert_eq!(
        failed.denial_message(),
        Some("ValidatingAdmissionPolicy 'p' with binding 'b' denied request: expression 'object.nope == 1' resulted in error: no such key: nope")
    );
    let ignored = eval_web(&body("Ignore", &format!("{ok}{err}")));
    assert!(ignored.denials.is_empty());
}

#[test]
fn match_conditions_see_no_namespace_object() {
    let body = |failure: &str, condition: &str| {
        policy(
            &format!(
                "  failurePolicy: {failure}
  variables:
  - {{name: ns, expression: namespaceObject}}
  matchConditions:
  - {{name: c, expression: \"{condition}\"}}
  validations:
  - expression: variables.ns.metadata.name == 'other'
    messageExpression: \"'in ' + variables.ns.metadata.name\"
"
            ),
            "[Deny]",
        )
    };
    // The apiserver gives match conditions no namespace (nor variables, refused when the policy
    // is read); the validations see it.
    let matched = eval_web(&body("Fail", "namespaceObject == null"));
    assert_eq!(
        matched.denial_message(),
        Some("ValidatingAdmissionPolicy 'p' with binding 'b' denied request: in n"),
        "{matched:?}"
    );
    // Reading a field of it is an error, which follows the failure policy.
    let read = "namespaceObject.metadata.name == 'n'";
    let failed = eval_web(&body("Fail", read));
    let message = failed.denial_message().unwrap_or_default().to_owned();
    assert!(
        message.contains("expression 'namespaceObject.metadata.name == 'n'' resulted in error"),
        "{failed:?}"
    );
    let ignored = eval_web(&body("Ignore", read));
    assert!(ignored.denials.is_empty(), "{ignored:?}");
    assert_eq!(
        ignored.evaluations[0].outcome,
        EvaluationOutcome::ConditionsNotMet
    );
}

#[test]
fn audit_annotations_see_the_namespace_as_stored() {
    let namespaces = Namespaces::from(vec![json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "n", "ownerReferences": [{"name": "team"}]},
    })]);
    let ctx = EvalContext {
        namespaces: &namespaces,
        ..EvalContext::default()
    };
    let set = policy(
        "  validations:
  - expression: \"!has(namespaceObject.metadata.ownerReferences)\"
  auditAnnotations:
  - {key: owner, valueExpression: \"namespaceObject.metadata.ownerReferences[0].name\"}
",
        "[Audit]",
    );
    let result = eval_in(&set, deployment("web", "n", 1), &ctx);
    assert!(result.audit_failures.is_empty(), "{result:?}");
    assert_eq!(
        result.audit_annotations.get("p/owner").map(String::as_str),
        Some("team"),
        "{result:?}"
    );
}

#[test]
fn variables_are_lazy_chained_and_errors_surface_where_used() {
    let set = policy(
        "  variables:
  - {name: broken, expression: object.spec.nope}
  - {name: replicas, expression: object.spec.replicas}
  - {name: double, expression: variables.replicas * 2}
  validations:
  - expression: variables.double <= 10
    messageExpression: \"'double is ' + string(variables.double)\"
  - expression: object.spec.replicas < 100 || variables.broken
",
        "[Deny]",
    );
    let result = eval(&set, deployment("web", "n", 6));
    let messages: Vec<_> = result.denials.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(messages[0].ends_with("denied request: double is 12"));
    let result = eval(&set, deployment("web", "n", 200));
    assert!(result.denials.iter().any(|d| d.message.ends_with(
        "expression 'object.spec.replicas < 100 || variables.broken' resulted in error: composited variable \"broken\" fails to evaluate: no such key: nope"
    )), "{:?}", result.denials);
}

/// An authorizer that allows everything and counts the checks it answers.
#[derive(Debug, Default)]
struct CountingAuthorizer(std::sync::atomic::AtomicUsize);

impl AuthorizerModel for CountingAuthorizer {
    fn authorize(
        &self,
        _: &crate::admission::UserInfo,
        _: &AuthorizationCheck,
    ) -> AuthorizationDecision {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        AuthorizationDecision {
            allowed: true,
            reason: String::new(),
        }
    }
}

#[test]
fn each_variable_is_computed_once_per_evaluation() {
    // The variable asks the authorizer once each time it is computed; three reads in two
    // validations and a message compute it once in the validations and once in the messages
    // (a phase of its own, as in the apiserver).
    let set = policy(
        "  variables:
  - {name: allowed, expression: \"authorizer.group('apps').resource('deployments').check('create').allowed()\"}
  - {name: n, expression: object.metadata.name}
  validations:
  - expression: variables.allowed && variables.allowed
  - expression: variables.allowed && variables.n == 'other'
    messageExpression: \"'not ' + variables.n\"
",
        "[Deny]",
    );
    let counter = Arc::new(CountingAuthorizer::default());
    let ctx = EvalContext {
        authorizer: Some(counter.clone()),
        ..EvalContext::default()
    };
    // Evaluated once (not through `eval_in`, which evaluates twice).
    let request = AdmissionRequest::create(deployment("web", "n", 1)).unwrap();
    let result = set.evaluate(&request, &ctx);
    assert_eq!(
        result.denial_message(),
        Some("ValidatingAdmissionPolicy 'p' with binding 'b' denied request: not web")
    );
    assert_eq!(
        counter.0.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the variable was computed again"
    );
}

#[test]
fn a_failing_variable_fails_every_validation_that_reads_it_with_the_same_message() {
    let set = policy(
        "  variables:
  - {name: broken, expression: object.spec.nope}
  - {name: chained, expression: variables.broken + 1}
  validations:
  - expression: variables.broken == 1
  - expression: object.spec.replicas > 0
  - expression: variables.broken == 2
  - expression: variables.chained == 2
",
        "[Deny]",
    );
    for deep_copy in [false, true] {
        DEEP_COPY.set(deep_copy);
        let result = eval_web(&set);
        DEEP_COPY.set(false);
        let messages: Vec<&str> = result.denials.iter().map(|d| d.message.as_str()).collect();
        let cause = "composited variable \"broken\" fails to evaluate: no such key: nope";
        assert_eq!(
            messages,
            [
                format!("ValidatingAdmissionPolicy 'p' with binding 'b' denied request: expression 'variables.broken == 1' resulted in error: {cause}"),
                format!("ValidatingAdmissionPolicy 'p' with binding 'b' denied request: expression 'variables.broken == 2' resulted in error: {cause}"),
                format!("ValidatingAdmissionPolicy 'p' with binding 'b' denied request: expression 'variables.chained == 2' resulted in error: composited variable \"chained\" fails to evaluate: {cause}"),
            ],
            "deep copy: {deep_copy}"
        );
    }
}

#[test]
fn a_request_only_variable_is_one_value_for_every_policy_of_a_request() {
    let declare = |name: &str| {
        declared(
            name,
            false,
            "  variables:
  - {name: spec, expression: object.spec}
  validations:
  - expression: variables.spec.replicas < 5
",
        )
    };
    let set = set(&format!("{}{}", declare("one"), declare("two")));
    let request = AdmissionRequest::create(deployment("web", "n", 1)).unwrap();
    let facts = RequestFacts::new(&request, &EvalContext::default());
    let values = Values::new(&facts);
    let resolvers = phase_resolvers(&values);
    let shared = SharedVariables::new(&set.policies, &resolvers);
    let value = |policy: usize, phase| {
        let value = shared.get(&set.policies[policy].variables[0], phase);
        let value = value.unwrap().unwrap();
        value as *const dyn Val
    };
    let first = value(0, Phase::Validate);
    assert!(std::ptr::addr_eq(first, value(1, Phase::Validate)));
    // It does not read the namespace, so every phase shares it too.
    assert!(std::ptr::addr_eq(first, value(1, Phase::Audit)));
}

#[test]
fn a_variable_may_hold_any_value() {
    // An authorization check has no plain-value form: the deep copies variables were once kept
    // as refused it, the apiserver does not.
    let set = policy(
        "  variables:
  - {name: check, expression: \"authorizer.group('apps').resource('deployments').check('create')\"}
  validations:
  - expression: variables.check.allowed()
",
        "[Deny]",
    );
    let ctx = EvalContext {
        authorizer: Some(Arc::new(CountingAuthorizer::default())),
        ..EvalContext::default()
    };
    assert_eq!(eval_in(&set, deployment("web", "n", 1), &ctx).denials, []);
    DEEP_COPY.set(true);
    let copied = eval_in(&set, deployment("web", "n", 1), &ctx);
    DEEP_COPY.set(false);
    assert_eq!(copied.denials.len(), 1, "{copied:?}");
}

#[test]
fn many_variables_evaluate_on_a_large_stack_within_the_calls_budget() {
    let chain = |count: usize, expression: &str| {
        let mut body = String::from("  variables:\n  - {name: v0, expression: '1'}\n");
        for i in 1..count {
            body.push_str(&format!(
                "  - {{name: v{i}, expression: \"variables.v{} + 1\"}}\n",
                i - 1
            ));
        }
        body.push_str(&format!(
            "  validations:\n  - expression: \"{expression}\"\n"
        ));
        policy(&body, "[Deny]")
    };
    // The most evaluated on the caller's stack, and more.
    for count in [INLINE_VARIABLES, INLINE_VARIABLES * 4] {
        let set = chain(count, &format!("variables.v{} == {count}", count - 1));
        assert_eq!(eval_web(&set).denials, []);
        let set = chain(count, &format!("variables.v{} == 0", count - 1));
        assert_eq!(eval_web(&set).denials.len(), 1);
    }

    // Each of these spends about 700,000 of the call's 10,000,000 (each its own expression, so
    // none is shared): the call runs out on the other thread as it would on this one.
    let mut body = String::from("  variables:\n");
    for i in 0..=INLINE_VARIABLES {
        body.push_str(&format!(
            "  - {{name: v{i}, expression: 'lists.range(100000).all(x, x + {i} >= 0)'}}\n"
        ));
    }
    let all = (0..=INLINE_VARIABLES)
        .map(|i| format!("variables.v{i}"))
        .collect::<Vec<_>>()
        .join(" && ");
    body.push_str(&format!("  validations:\n  - expression: \"{all}\"\n"));
    let result = eval_web(&policy(&body, "[Deny]"));
    assert_eq!(result.denials.len(), 1, "{result:?}");
    assert!(
        result.denials[0]
            .message
            .ends_with(celx::cost::OVER_CALL_BUDGET),
        "{result:?}"
    );
}

#[test]
fn variables_kept_as_computed_agree_with_deep_copies_on_the_library() {
    // The whole library against the 10,000 sample pods the benchmark uses, workloads, and
    // shapes whose variables fail: every evaluation, denial, warning and annotation is the same
    // whether variables are kept as computed or deep-copied (the way they were once kept).
    let mut set = PolicySet::default();
    for entry in crate::library::entries()
        .unwrap()
        .iter()
        .filter(|e| e.policy_file() == "policy.yaml")
    {
        let file = format!("library/{}/policy.yaml", entry.id);
        let docs = parse_documents(&file, entry.policy_yaml).unwrap();
        set.extend(PolicySet::from_documents(&file, &docs).unwrap());
    }
    let mut objects = crate::sample::pods(0x11b_0000_0001, 10_000);
    objects.extend(crate::sample::workloads(7, 1_000));
    let broken: Vec<Value> = objects
        .iter()
        .take(250)
        .enumerate()
        .map(|(i, object)| {
            let mut object = object.clone();
            match i % 5 {
                0 => object["spec"] = json!({}),
                1 => object["spec"]["containers"] = Value::Null,
                2 => object["spec"]["template"] = json!({}),
                3 => object["spec"]["containers"] = json!([{"name": 3}]),
                _ => object["spec"]["volumes"] = json!([{"name": "v", "hostPath": {"path": "/"}}]),
            }
            object
        })
        .collect();
    objects.extend(broken);
    let mut failing_variables = 0;
    for object in objects {
        let Ok(request) = AdmissionRequest::create(object) else {
            continue;
        };
        let kept = set.evaluate(&request, &EvalContext::default());
        DEEP_COPY.set(true);
        let copied = set.evaluate(&request, &EvalContext::default());
        DEEP_COPY.set(false);
        assert_eq!(kept, copied, "{request:?}");
        failing_variables += kept
            .denials
            .iter()
            .filter(|d| d.message.contains("fails to evaluate"))
            .count();
    }
    assert!(failing_variables > 100, "{failing_variables}");
}

#[test]
fn audit_annotations_are_published_omitted_or_errors() {
    let set = set(&format!(
        "{HEAD}  auditAnnotations:
  - {{key: high, valueExpression: \"object.spec.replicas > 50 ? 'set to ' + string(object.spec.replicas) : null\"}}
  - {{key: blank, valueExpression: \"'  '\"}}
{}{}",
        binding("[Audit]"),
        binding("[Audit]").replace("name: b}", "name: b2}")
    ));
    let result = eval(&set, deployment("web", "n", 128));
    assert_eq!(
        result.audit_annotations.get("p/high").map(String::as_str),
        Some("set to 128")
    );
    assert!(!result.audit_annotations.contains_key("p/blank"));
    assert!(eval(&set, deployment("web", "n", 3))
        .audit_annotations
        .is_empty());
    let wrong = policy(
        "  auditAnnotations:\n  - {key: k, valueExpression: object.spec.replicas}\n",
        "[Audit]",
    );
    let result = eval(&wrong, deployment("web", "n", 3));
    assert_eq!(
        result.denial_message(),
        Some("ValidatingAdmissionPolicy 'p' with binding 'b' denied request: valueExpression 'object.spec.replicas' resulted in unsupported return type: int. Return type must be either string or null.")
    );
}

#[test]
fn audit_annotation_values_of_several_params_are_joined() {
    let set = set(&format!(
        "{}{}{PARAMS}",
        declared(
            "p",
            true,
            "  auditAnnotations:\n  - {key: max, valueExpression: params.data.max}\n"
        ),
        binding_of(
            "b",
            "p",
            "[Audit]",
            "  paramRef: {selector: {matchLabels: {tier: a}}, parameterNotFoundAction: Allow}\n"
        )
    ));
    let result = eval(&set, deployment("web", "team", 1));
    assert_eq!(
        result.audit_annotations.get("p/max").map(String::as_str),
        Some("3, 1")
    );
}

#[test]
fn validation_actions_deny_warn_and_audit() {
    let body = "  validations:\n  - expression: object.spec.replicas <= 5\n    message: too many\n";
    let warn = eval(&policy(body, "[Warn, Audit]"), deployment("web", "n", 9));
    assert!(warn.denials.is_empty());
    assert_eq!(
        warn.warnings,
        ["Validation failed for ValidatingAdmissionPolicy 'p' with binding 'b': too many"]
    );
    assert_eq!(
        warn.audit_annotations[VALIDATION_FAILURE_KEY],
        r#"[{"message":"too many","policy":"p","binding":"b","expressionIndex":0,"validationActions":["Warn","Audit"]}]"#
    );
    let verdict = warn.into_verdict();
    assert_eq!(verdict.action(), Action::Warn);
    assert_eq!(verdict.findings.len(), 2);
    let audit = eval(&policy(body, "[Audit]"), deployment("web", "n", 9)).into_verdict();
    assert_eq!(audit.action(), Action::Audit);
    let deny = eval(&policy(body, "[Deny, Audit]"), deployment("web", "n", 9));
    assert_eq!(deny.denials.len(), 1);
    assert_eq!(deny.audit_failures.len(), 1);
}

#[test]
fn request_old_object_and_namespace_object_variables() {
    let set = policy(
        "  validations:
  - expression: oldObject == null && request.operation == 'CREATE' && request.namespace == 'n'
  - expression: \"!has(request.userInfo.username) && request.kind.kind == 'Deployment' && request.resource.resource == 'deployments'\"
  - expression: namespaceObject.metadata.name == 'n'
",
        "[Deny]",
    );
    let result = eval_web(&set);
    assert!(result.denials.is_empty(), "{:?}", result.denials);
    let mut request = AdmissionRequest::create(deployment("web", "n", 1)).unwrap();
    request.user_info.username = "alice".into();
    let result = set.evaluate(&request, &EvalContext::default());
    assert_eq!(result.denials.len(), 1);
    assert!(result.denials[0]
        .message
        .contains("has(request.userInfo.username)"));
}

#[test]
fn the_authorizer_without_a_model_is_not_evaluable() {
    let set = policy(
        "  validations:\n  - expression: authorizer.group('').resource('pods').check('create').allowed()\n",
        "[Deny]",
    );
    let result = eval_web(&set);
    assert!(result.denials.is_empty());
    assert_eq!(result.not_evaluable.len(), 1);
    assert!(result.not_evaluable[0].reason.contains("authorizer"));
    assert_eq!(result.into_verdict().not_evaluable.len(), 1);
}

#[test]
fn compile_errors_are_placed_in_the_file() {
    let errors = errors(&format!(
        "# leading comment\n{HEAD}  validations:\n  - expression: object.spec.replicas <=\n"
    ));
    assert_eq!(errors.len(), 1);
    let e = &errors[0];
    // Line 11 is `  - expression: object.spec.replicas <=`; the parser stops at the end of it.
    assert_eq!(
        (e.file.as_str(), e.line, e.column),
        ("p.yaml", 11, 40),
        "{e}"
    );
    assert!(
        e.message.contains(
            "spec.validations[0].expression: Invalid value: compilation failed: ERROR: <input>:1:"
        ),
        "{e}"
    );
    let errors = errors_of_variables();
    assert!(
        errors[0].message.contains("undefined field 'later'"),
        "{}",
        errors[0]
    );
    assert_eq!(errors[0].line, 10);
}

#[test]
fn compile_errors_in_folded_expressions_are_found_on_their_line() {
    let errors = errors(&format!(
        "{HEAD}  validations:\n  - expression: >-\n      object.spec.replicas <= 5 &&\n      object.spec.template.bad((\n    message: m\n"
    ));
    let e = &errors[0];
    // Line 12 is `      object.spec.template.bad((`.
    assert_eq!(e.line, 12, "{e}");
    assert!(e.column >= 7, "{e}");
}

fn errors_of_variables() -> Vec<SourceError> {
    errors(&format!(
        "{HEAD}  variables:\n  - {{name: early, expression: variables.later}}\n  - {{name: later, expression: '1'}}\n  validations:\n  - expression: 'true'\n"
    ))
}

#[test]
fn malformed_policies_and_bindings_say_what_and_where() {
    let wrong_type = errors(&format!("{HEAD}  validations:\n  - expression: 5\n"));
    assert!(
        wrong_type[0]
            .message
            .contains("invalid type: integer `5`, expected a string"),
        "{}",
        wrong_type[0]
    );
    assert_eq!(wrong_type[0].line, 10);
    let missing = errors("apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy\nmetadata: {name: p}\nspec:\n  validations: [{expression: 'true'}]\n");
    assert!(missing[0]
        .message
        .contains("spec.matchConstraints.resourceRules: Required value"));
    let both = errors(&format!(
        "{HEAD}  validations:\n  - expression: 'true'\n{}",
        binding("[Deny, Warn]")
    ));
    assert!(
        both[0]
            .message
            .contains("must not contain both Deny and Warn"),
        "{}",
        both[0]
    );
    let bad_action = errors(&format!(
        "{HEAD}  validations:\n  - expression: 'true'\n{}",
        binding("[Denyy]")
    ));
    assert!(
        bad_action[0].message.contains("unknown variant `Denyy`"),
        "{}",
        bad_action[0]
    );
    assert_eq!(bad_action[0].line, 17, "the `validationActions` line");
    let bad_selector = errors(&format!(
        "{HEAD}    objectSelector:\n      matchExpressions: [{{key: app, operator: Equals, values: [a]}}]\n  validations:\n  - expression: 'true'\n"
    ));
    assert!(
        bad_selector[0]
            .message
            .contains("Unsupported value: \"Equals\""),
        "{}",
        bad_selector[0]
    );
}

#[test]
fn the_authorizer_answers_from_an_rbac_model() {
    let rbac = parse_documents(
        "rbac.yaml",
        "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: deployer}
rules:
- {apiGroups: [apps], resources: [deployments, deployments/scale], verbs: [create, update]}
- {nonResourceURLs: ['/healthz*'], verbs: [get]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: deployers}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: deployer}
subjects: [{kind: Group, name: deployers}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: reader, namespace: n}
rules: [{apiGroups: [''], resources: [pods], verbs: [get]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: readers, namespace: n}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}
subjects: [{kind: ServiceAccount, name: bot}]
",
    )
    .unwrap();
    let model = RbacModel::from_objects(rbac.iter().map(|d| &d.value));
    let set = policy(
        "  validations:
  - expression: authorizer.requestResource.check('create').allowed()
    messageExpression: \"'not allowed to ' + request.operation\"
  - expression: \"!authorizer.requestResource.check('delete').allowed()\"
  - expression: authorizer.group('apps').resource('deployments').subresource('scale').namespace('x').check('update').allowed()
  - expression: authorizer.path('/healthz/ready').check('get').allowed()
  - expression: authorizer.serviceAccount('n', 'bot').group('').resource('pods').namespace('n').check('get').allowed()
  - expression: \"!authorizer.serviceAccount('n', 'bot').group('').resource('pods').namespace('other').check('get').allowed()\"
  - expression: \"authorizer.requestResource.check('create').reason().startsWith('RBAC: allowed by ClusterRoleBinding')\"
",
        "[Deny]",
    );
    let ctx = EvalContext {
        authorizer: Some(Arc::new(model)),
        ..EvalContext::default()
    };
    let mut request = AdmissionRequest::create(deployment("web", "n", 1)).unwrap();
    request.user_info.username = "alice".into();
    request.user_info.groups = vec!["deployers".into()];
    let result = set.evaluate(&request, &ctx);
    assert!(result.denials.is_empty(), "{:?}", result.denials);
    assert!(result.not_evaluable.is_empty());
    request.user_info.groups.clear();
    let result = set.evaluate(&request, &ctx);
    assert_eq!(
        result.denial_message(),
        Some(
            "ValidatingAdmissionPolicy 'p' with binding 'b' denied request: not allowed to CREATE"
        )
    );
}

#[test]
fn variables_reading_only_the_request_are_shared_and_others_are_not() {
    // Two policies declare the same request-only variable; a third variable reads params, so each
    // param gets its own value even though its source is the same.
    let policy = |name: &str| {
        let spec = format!(
            "  variables:
  - {{name: replicas, expression: object.spec.replicas}}
  - {{name: limit, expression: int(params.data.max)}}
  validations:
  - expression: variables.replicas <= variables.limit
    messageExpression: \"'{name}: ' + string(variables.replicas) + ' > ' + string(variables.limit)\"
"
        );
        let param_ref =
            "  paramRef: {selector: {matchLabels: {tier: a}}, parameterNotFoundAction: Deny}\n";
        declared(name, true, &spec) + &binding_of(name, name, "[Deny]", param_ref)
    };
    let set = set(&format!("{}{}{PARAMS}", policy("one"), policy("two")));
    let result = eval(&set, deployment("web", "team", 2));
    let mut messages: Vec<&str> = result.denials.iter().map(|d| d.message.as_str()).collect();
    messages.sort();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(messages[0].ends_with("one: 2 > 1"), "{messages:?}");
    assert!(messages[1].ends_with("two: 2 > 1"), "{messages:?}");
    assert_eq!(
        result.evaluations.len(),
        4,
        "two params for each of two policies"
    );
    // A second request gets its own values.
    assert!(eval(&set, deployment("web", "team", 1)).denials.is_empty());
}

#[test]
fn every_policy_pays_for_a_shared_variable_from_its_own_budget() {
    // `b` spends 9,100,000 of its call's 10,000,000 on variables of its own, and 900,001 on one it
    // shares with `a` (only `lists.range` is charged, its length): 1 over, whichever computes it.
    let policy = |name: &str, own: usize| {
        let mut variables =
            String::from("  - {name: shared, expression: 'lists.range(900001).size() > 0'}\n");
        let mut checks = vec!["variables.shared".to_owned()];
        for i in 0..own {
            variables.push_str(&format!(
                "  - {{name: v{i}, expression: 'lists.range(910000).size() > {i}'}}\n"
            ));
            checks.push(format!("variables.v{i}"));
        }
        let spec = format!(
            "  variables:\n{variables}  validations:\n  - expression: \"{}\"\n",
            checks.join(" && ")
        );
        declared(name, false, &spec) + &binding_of(name, name, "[Deny]", "")
    };
    let (a, b) = (policy("a", 0), policy("b", 10));
    for yaml in [b.clone(), format!("{a}{b}"), format!("{b}{a}")] {
        let result = eval(&set(&yaml), deployment("web", "team", 1));
        assert_eq!(result.denials.len(), 1, "{result:?}");
        let denial = &result.denials[0];
        assert_eq!(denial.policy, "b", "{result:?}");
        assert!(
            denial.message.ends_with(celx::cost::OVER_CALL_BUDGET),
            "{result:?}"
        );
    }
    assert!(eval(&set(&a), deployment("web", "team", 1))
        .denials
        .is_empty());
}

#[test]
fn expressions_are_type_checked_as_the_apiserver_checks_them_on_create() {
    let refused = |body: &str| -> String {
        let yaml = format!("{HEAD}{body}{}", binding("[Deny]"));
        let mut errors = errors(&yaml);
        assert_eq!(errors.len(), 1, "{errors:?}");
        let error = errors.remove(0);
        format!("{}:{}: {}", error.line, error.column, error.message)
    };
    // `params` exists only with a `paramKind`.
    assert_eq!(
        refused("  validations:\n  - expression: object.spec.replicas < params.max\n"),
        "10:40: ValidatingAdmissionPolicy 'p': spec.validations[0].expression: Invalid value: compilation failed: ERROR: <input>:1:24: undeclared reference to 'params' (in container '')"
    );
    // A function that does not exist, an overload that does not, a literal of two types.
    assert!(
        refused("  validations:\n  - expression: object.metadata.name.isUpper()\n")
            .ends_with("undeclared reference to 'isUpper' (in container '')")
    );
    assert!(
        refused("  validations:\n  - expression: \"size(object) + 'x' == 1\"\n")
            .ends_with("found no matching overload for '_+_' applied to '(int, string)'")
    );
    assert!(
        refused("  validations:\n  - expression: \"['a', 1].size() == 2\"\n")
            .ends_with("expected type 'string' but found 'int'")
    );
    // The result must be of the phase's type.
    assert!(
        refused("  validations:\n  - expression: size(object.metadata.name)\n").ends_with(
            "spec.validations[0].expression: Invalid value: must evaluate to bool but got int"
        )
    );
    assert!(refused(
        "  validations:\n  - expression: \"true\"\n    messageExpression: size(object.metadata.name) > 1\n"
    )
    .ends_with("messageExpression: Invalid value: must evaluate to string but got bool"));
    // Messages have no `authorizer`.
    assert!(refused(
        "  validations:\n  - expression: \"true\"\n    messageExpression: authorizer.path('/').check('get').reason()\n"
    )
    .ends_with("undeclared reference to 'authorizer' (in container '')"));
    // A variable's type carries into the expressions that use it.
    assert!(refused(
        "  variables:\n  - {name: n, expression: size(object.metadata.name)}\n  validations:\n  - expression: variables.n\n"
    )
    .ends_with("must evaluate to bool but got int"));
}
