//! Palisade's own suite format, `palisade-test.yaml` (`palisade.dev/v1alpha1`, kind `PolicyTest`):
//! policies (files of ValidatingAdmissionPolicies and bindings, Gatekeeper templates and constraints,
//! or a Pod Security level), the namespaces and parameter objects the cases need, and cases that each
//! expect the strictest action of all policies (allow / audit / warn / deny) and optionally a message.
//! The format is documented in `engine/library/README.md`.

use regex::Regex;
use serde::Deserialize;
use serde_json::Value;

use super::{read_documents, CaseResult, CaseStatus, Files};
use crate::admission::{AdmissionRequest, Operation, UserInfo};
use crate::apiview;
use crate::bundle::{Bundle, Context};
use crate::mode::Mode;
use crate::pss::LevelVersion;
use crate::source::{Document, SourceError};
use crate::verdict::Action;

pub const API_VERSION: &str = "palisade.dev/v1alpha1";
pub const KIND: &str = "PolicyTest";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PolicyTest {
    #[allow(dead_code)]
    api_version: String,
    #[allow(dead_code)]
    kind: String,
    #[serde(default)]
    #[allow(dead_code)]
    metadata: Option<Value>,
    #[serde(default)]
    policies: Vec<String>,
    #[serde(default)]
    pod_security: Option<PodSecurity>,
    #[serde(default)]
    namespaces: Vec<Value>,
    #[serde(default)]
    params: Vec<Value>,
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PodSecurity {
    level: String,
    #[serde(default)]
    version: Option<String>,
    /// The PSA mode the level is enforced in; `enforce` by default.
    #[serde(default)]
    mode: Option<Mode>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Case {
    name: String,
    #[serde(default)]
    object: Option<Value>,
    #[serde(default)]
    file: Option<String>,
    #[serde(default)]
    operation: Option<Operation>,
    #[serde(default)]
    old_object: Option<Value>,
    /// The request goes to this subresource (`ephemeralcontainers` for `kubectl debug`).
    #[serde(default)]
    sub_resource: Option<String>,
    #[serde(default)]
    user_info: Option<UserInfo>,
    expect: String,
    #[serde(default)]
    message: Option<String>,
}

/// What the engines said about one case's request: the strictest action and its messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub action: Action,
    /// The messages of the findings with that action (empty for `allow`).
    pub messages: Vec<String>,
}

/// Run one `palisade-test.yaml`. `Err` means the suite itself is unusable (bad YAML, a policy that
/// does not compile); individual cases that cannot be built fail on their own.
pub fn run(
    suite: &str,
    document: &Document,
    files: &dyn Files,
) -> Result<Vec<CaseResult>, SourceError> {
    Ok(run_observed(suite, document, files)?
        .into_iter()
        .map(|(result, _)| result)
        .collect())
}

/// [`run`], keeping what the engines said about each case (`None` when its request could not be
/// built), for callers that show the engine's message next to a passing case too.
pub fn run_observed(
    suite: &str,
    document: &Document,
    files: &dyn Files,
) -> Result<Vec<(CaseResult, Option<Observed>)>, SourceError> {
    let test: PolicyTest = serde_json::from_value(document.value.clone()).map_err(|err| {
        SourceError::new(
            suite,
            document.first_line,
            0,
            format!("not a valid PolicyTest: {err}"),
        )
    })?;

    let mut bundle = Bundle::default();
    for path in &test.policies {
        let text = files.read(path).map_err(|err| {
            SourceError::new(
                suite,
                document.first_line,
                0,
                format!("policy file {path}: {err}"),
            )
        })?;
        bundle
            .add_source(path, &text)
            .map_err(|errors| first_error(suite, errors))?;
    }
    if let Some(pod_security) = &test.pod_security {
        let spec = match &pod_security.version {
            Some(version) => format!("{}:{}", pod_security.level, version),
            None => pod_security.level.clone(),
        };
        let level: LevelVersion = spec.parse().map_err(|err| {
            SourceError::new(suite, document.first_line, 0, format!("podSecurity: {err}"))
        })?;
        bundle.add_pod_security(level, pod_security.mode.unwrap_or(Mode::Enforce));
    }
    if bundle.is_empty() {
        return Err(SourceError::new(
            suite,
            document.first_line,
            0,
            "the suite names no policies and no podSecurity level",
        ));
    }

    bundle.set_params(&test.params);
    let context = Context {
        namespaces: test.namespaces.iter().map(complete_namespace).collect(),
        ..Context::default()
    };

    Ok(test
        .cases
        .iter()
        .map(|case| {
            let (status, observed) = run_case(case, &bundle, &context, files);
            let result = CaseResult {
                suite: suite.to_owned(),
                name: case.name.clone(),
                status,
            };
            (result, observed)
        })
        .collect())
}

fn first_error(suite: &str, errors: Vec<SourceError>) -> SourceError {
    errors
        .into_iter()
        .next()
        .unwrap_or_else(|| SourceError::new(suite, 0, 0, "the policy could not be loaded"))
}

/// Namespaces in a suite may be written as just `metadata: {name: x}`; the apiserver always labels a
/// namespace with its own name, and policies select on that label.
fn complete_namespace(namespace: &Value) -> Value {
    let mut namespace = namespace.clone();
    if let Some(object) = namespace.as_object_mut() {
        object
            .entry("apiVersion")
            .or_insert_with(|| Value::from("v1"));
        object
            .entry("kind")
            .or_insert_with(|| Value::from("Namespace"));
        let name = object
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        if let (Some(name), Some(metadata)) = (
            name,
            object.get_mut("metadata").and_then(Value::as_object_mut),
        ) {
            let labels = metadata
                .entry("labels")
                .or_insert_with(|| Value::Object(Default::default()));
            if let Some(labels) = labels.as_object_mut() {
                labels
                    .entry("kubernetes.io/metadata.name")
                    .or_insert_with(|| Value::from(name));
            }
        }
    }
    namespace
}

fn run_case(
    case: &Case,
    bundle: &Bundle,
    context: &Context,
    files: &dyn Files,
) -> (CaseStatus, Option<Observed>) {
    let Some(expected) = Action::parse(&case.expect) else {
        let why = format!(
            "expect must be allow, audit, warn or deny, not {:?}",
            case.expect
        );
        return (CaseStatus::Failed(why), None);
    };
    let pattern = match case.message.as_deref().map(Regex::new).transpose() {
        Ok(pattern) => pattern,
        Err(err) => {
            let why = format!("message is not a valid regular expression: {err}");
            return (CaseStatus::Failed(why), None);
        }
    };
    let (request, notes) = match build_request(case, files) {
        Ok(built) => built,
        Err(why) => return (CaseStatus::Failed(why), None),
    };

    let verdict = bundle.evaluate(&request, context);
    let actual = verdict.action();
    let messages: Vec<&str> = verdict
        .findings
        .iter()
        .filter(|f| f.action == actual)
        .map(|f| f.message.as_str())
        .collect();
    let observed = Observed {
        action: actual,
        messages: messages.iter().map(|m| (*m).to_owned()).collect(),
    };
    let unknown: Vec<String> = verdict
        .not_evaluable
        .iter()
        .map(|n| format!("{}: {}", n.policy, n.reason))
        .collect();
    let status = match judge(expected, actual, &messages, &unknown, pattern.as_ref()) {
        CaseStatus::Failed(mut why) if !notes.is_empty() => {
            why.push_str(&format!(" (notes: {})", notes.join("; ")));
            CaseStatus::Failed(why)
        }
        status => status,
    };
    (status, Some(observed))
}

fn judge(
    expected: Action,
    actual: Action,
    messages: &[&str],
    unknown: &[String],
    pattern: Option<&Regex>,
) -> CaseStatus {
    if actual != expected {
        let mut why = format!("expected {expected}, got {actual}");
        if !messages.is_empty() {
            why.push_str(&format!(" ({})", messages.join("; ")));
        }
        if !unknown.is_empty() {
            why.push_str(&format!("; not evaluable locally: {}", unknown.join("; ")));
        }
        return CaseStatus::Failed(why);
    }
    if let Some(pattern) = pattern {
        if !messages.iter().any(|m| pattern.is_match(m)) {
            return CaseStatus::Failed(format!(
                "{actual} as expected, but no message matches /{}/: {:?}",
                pattern.as_str(),
                messages
            ));
        }
    }
    if !unknown.is_empty() && expected == Action::Allow {
        // "Allow" with a policy that could not be evaluated is not proof of anything.
        return CaseStatus::Failed(format!("not evaluable locally: {}", unknown.join("; ")));
    }
    CaseStatus::Passed
}

/// The case's request, and the notes of the admission views of its objects. Objects written as
/// manifests are evaluated as the apiserver's admission sees them ([`crate::apiview`]); an
/// AdmissionReview is taken as the apiserver sent it.
fn build_request(
    case: &Case,
    files: &dyn Files,
) -> Result<(AdmissionRequest, Vec<String>), String> {
    let object = match (&case.object, &case.file) {
        (Some(object), None) => object.clone(),
        (None, Some(path)) => {
            let mut documents = read_documents(files, path)?;
            if documents.len() != 1 {
                return Err(format!(
                    "{path}: expected one document, found {}",
                    documents.len()
                ));
            }
            documents.remove(0).value
        }
        (Some(_), Some(_)) => return Err("give either object or file, not both".into()),
        (None, None) if case.old_object.is_some() => Value::Null,
        (None, None) => return Err("the case has neither object nor file".into()),
    };

    let is_review = object.get("kind").and_then(Value::as_str) == Some("AdmissionReview");
    let mut notes = Vec::new();
    let operation = case
        .operation
        .unwrap_or(if case.old_object.is_some() && object.is_null() {
            Operation::Delete
        } else {
            Operation::Create
        });
    let given_old = case.old_object.clone();
    // Manifests are evaluated as the apiserver's admission sees them for the operation: a
    // create's object through the create view, an update's object and oldObject through the
    // update view (without an oldObject, an update that changes nothing), what a delete removes
    // as it was stored. A review is taken as sent, a subresource (`kubectl debug`'s ephemeral
    // containers, a scale) as written.
    let (object, old_object) = if is_review || case.sub_resource.is_some() {
        (object, given_old)
    } else {
        match operation {
            Operation::Create if !object.is_null() => {
                let view = apiview::into_admission_view(object).map_err(|err| err.to_string())?;
                notes.extend(view.notes);
                (view.object, given_old)
            }
            Operation::Update if !object.is_null() => {
                let old = given_old.clone().unwrap_or_else(|| object.clone());
                let view = apiview::into_update_view(object, old).map_err(|err| err.to_string())?;
                if given_old.is_some() {
                    notes.extend(view.notes);
                } else {
                    notes.extend(
                        view.notes
                            .into_iter()
                            .filter(|note| !note.starts_with("oldObject: ")),
                    );
                }
                (view.object, given_old.map(|_| view.old_object))
            }
            Operation::Delete if object.is_null() => match given_old {
                Some(old) => {
                    let view = apiview::into_stored_view(old).map_err(|err| err.to_string())?;
                    notes.extend(view.notes);
                    (object, Some(view.object))
                }
                None => (object, None),
            },
            // A delete whose case names the deleted object `object`: it is the stored one.
            Operation::Delete => {
                let view = apiview::into_stored_view(object).map_err(|err| err.to_string())?;
                notes.extend(view.notes);
                (view.object, given_old)
            }
            _ => (object, given_old),
        }
    };
    let mut request = if is_review {
        // The review supplies the request; the case's own fields override it.
        let mut request = AdmissionRequest::from_value(object).map_err(|err| err.to_string())?;
        if let Some(operation) = case.operation {
            request.operation = operation;
        }
        if old_object.is_some() {
            request.old_object = old_object;
        }
        request
    } else if object.is_null() {
        let old = old_object.unwrap_or(Value::Null);
        AdmissionRequest::for_object(Operation::Delete, old).map_err(|err| err.to_string())?
    } else {
        let mut request =
            AdmissionRequest::for_object(operation, object).map_err(|err| err.to_string())?;
        if operation != Operation::Delete {
            request.old_object = old_object;
        }
        request
    };
    if let Some(sub_resource) = &case.sub_resource {
        request.sub_resource = sub_resource.clone();
    }
    if let Some(user) = &case.user_info {
        request.user_info = user.clone();
    } else if request.user_info.username.is_empty() {
        request.user_info = UserInfo::tester();
    }
    if request.namespace.is_empty() && is_namespaced(&request.kind.kind) {
        // The apiserver takes the namespace from the request path and writes it into the object
        // before admission; `kubectl` sends `default` when none is given.
        request.namespace = "default".into();
        for object in [request.object.as_mut(), request.old_object.as_mut()]
            .into_iter()
            .flatten()
        {
            if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
                metadata
                    .entry("namespace")
                    .or_insert_with(|| Value::from("default"));
            }
        }
    }
    Ok((request, notes))
}

/// Namespaced kinds get the `default` namespace when a case leaves it out, as `kubectl` does.
fn is_namespaced(kind: &str) -> bool {
    !matches!(
        kind,
        "Namespace"
            | "Node"
            | "PersistentVolume"
            | "ClusterRole"
            | "ClusterRoleBinding"
            | "CustomResourceDefinition"
            | "StorageClass"
            | "PriorityClass"
            | "RuntimeClass"
            | "IngressClass"
            | "ValidatingAdmissionPolicy"
            | "ValidatingAdmissionPolicyBinding"
            | "ValidatingWebhookConfiguration"
            | "MutatingWebhookConfiguration"
            | "APIService"
            | "CertificateSigningRequest"
            | "ConstraintTemplate"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::parse_documents;

    struct Policy(&'static str);

    impl Files for Policy {
        fn read(&self, path: &str) -> Result<String, String> {
            match path {
                "policy.yaml" => Ok(self.0.to_owned()),
                other => Err(format!("no file {other}")),
            }
        }
    }

    fn run_suite(policy: &'static str, cases: &str) -> Vec<CaseResult> {
        let suite = format!(
            "apiVersion: palisade.dev/v1alpha1\nkind: PolicyTest\npolicies: [policy.yaml]\ncases:\n{cases}"
        );
        let documents = parse_documents("suite.yaml", &suite).unwrap();
        run("suite.yaml", &documents[0], &Policy(policy)).unwrap()
    }

    const POLICY: &str = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: checks}
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: ["", apps], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [pods, deployments]}
  validations:
  - expression: "object.kind != 'Deployment' || object.spec.replicas <= 3"
    message: at most three replicas
  - expression: "object.kind != 'Pod' || quantity(object.spec.containers[0].resources.limits.cpu).isLessThan(quantity('4'))"
    message: at most four cpus
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: checks}
spec:
  policyName: checks
  validationActions: [Deny]
"#;

    #[test]
    fn cases_are_evaluated_as_the_apiserver_admits_their_objects() {
        let results = run_suite(
            POLICY,
            r#"
- name: deployment without replicas
  expect: allow
  object:
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: d}
    spec:
      selector: {matchLabels: {a: b}}
      template:
        metadata: {labels: {a: b}}
        spec: {containers: [{name: c, image: nginx}]}
- name: cpu written as a number
  expect: deny
  message: four cpus
  object:
    apiVersion: v1
    kind: Pod
    metadata: {name: p}
    spec: {containers: [{name: c, image: nginx, resources: {limits: {cpu: 8}}}]}
- name: small cpu as a number
  expect: allow
  object:
    apiVersion: v1
    kind: Pod
    metadata: {name: p}
    spec: {containers: [{name: c, image: nginx, resources: {limits: {cpu: 0.5}}}]}
"#,
        );
        for result in &results {
            assert_eq!(result.status, CaseStatus::Passed, "{result}");
        }
    }

    #[test]
    fn an_object_the_apiserver_refuses_is_an_invalid_case_with_its_notes_on_failure() {
        let results = run_suite(
            POLICY,
            r#"
- name: request above limit
  expect: deny
  object:
    apiVersion: v1
    kind: Pod
    metadata: {name: p}
    spec: {containers: [{name: c, image: nginx, resources: {requests: {cpu: 2}, limits: {cpu: 1}}}]}
- name: unknown field
  expect: deny
  object:
    apiVersion: v1
    kind: Pod
    metadata: {name: p}
    spec: {hostNetwerk: true, containers: [{name: c, image: nginx, resources: {limits: {cpu: 1}}}]}
"#,
        );
        assert_eq!(
            results[0].status,
            CaseStatus::Failed(
                "invalid: spec.containers[0].resources.requests: Invalid value: \"2\": must be \
                 less than or equal to cpu limit of 1"
                    .into()
            )
        );
        assert_eq!(
            results[1].status,
            CaseStatus::Failed(
                "expected deny, got allow (notes: unknown field spec.hostNetwerk dropped, as the \
                 apiserver drops it)"
                    .into()
            )
        );
    }

    const UPDATES: &str = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: updates}
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: [apps], apiVersions: [v1], operations: [UPDATE, DELETE], resources: [deployments]}
  validations:
  - expression: "request.operation != 'UPDATE' || object.spec.replicas >= oldObject.spec.replicas"
    message: no scaling down
  - expression: "request.operation != 'UPDATE' || object.metadata.generation == oldObject.metadata.generation || object.spec.template.spec.terminationGracePeriodSeconds == 30"
    message: a changed spec keeps the default grace period
  - expression: "request.operation != 'DELETE' || object == null && oldObject.spec.replicas == 1"
    message: only a single replica may be deleted
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: updates}
spec:
  policyName: updates
  validationActions: [Deny]
"#;

    #[test]
    fn updates_and_deletes_see_their_objects_as_the_apiserver_admits_them() {
        let deployment = |extra: &str| {
            format!(
                "{{apiVersion: apps/v1, kind: Deployment, metadata: {{name: d}}, spec: {{{extra}selector: {{matchLabels: {{a: b}}}}, \
                 template: {{metadata: {{labels: {{a: b}}}}, spec: {{containers: [{{name: c, image: 'nginx:1'}}]}}}}}}}}"
            )
        };
        let cases = format!(
            r#"
- name: replicas left out on both sides
  expect: allow
  operation: UPDATE
  object: {none}
  oldObject: {none}
- name: scaled down to zero from the default
  expect: deny
  message: no scaling down
  operation: UPDATE
  object: {zero}
  oldObject: {none}
- name: deleting the defaulted single replica
  expect: allow
  operation: DELETE
  oldObject: {none}
- name: deleting two
  expect: deny
  operation: DELETE
  oldObject: {two}
- name: a changed selector
  expect: allow
  operation: UPDATE
  object: {moved}
  oldObject: {none}
"#,
            none = deployment(""),
            zero = deployment("replicas: 0, "),
            two = deployment("replicas: 2, "),
            moved = deployment("selector: {matchLabels: {a: c}}, ").replacen(
                "selector: {matchLabels: {a: b}}, ",
                "",
                1
            ),
        );
        let results = run_suite(UPDATES, &cases);
        for result in &results[..4] {
            assert_eq!(result.status, CaseStatus::Passed, "{result}");
        }
        assert_eq!(
            results[4].status,
            CaseStatus::Failed(
                "invalid: spec.selector: Invalid value: {…}: field is immutable".into()
            )
        );
    }

    fn request_of(case: Value) -> AdmissionRequest {
        let case: Case = serde_json::from_value(case).unwrap();
        build_request(&case, &Policy("")).unwrap().0
    }

    #[test]
    fn each_operation_gets_the_objects_admission_sees() {
        let deployment = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}}});
        let scaled = {
            let mut d = deployment.clone();
            d["spec"]["replicas"] = serde_json::json!(3);
            d
        };
        // An update: both objects defaulted, the generation bumped by the spec change.
        let update = request_of(serde_json::json!({"name": "u", "expect": "allow",
            "operation": "UPDATE", "object": scaled, "oldObject": deployment}));
        let (object, old) = (update.object.unwrap(), update.old_object.unwrap());
        assert_eq!(
            (&object["spec"]["replicas"], &old["spec"]["replicas"]),
            (&serde_json::json!(3), &serde_json::json!(1))
        );
        assert_eq!(object["metadata"]["generation"], 2);
        assert_eq!(old["metadata"]["namespace"], "default");
        // An update without an old object: the object defaulted, no old object made up.
        let update = request_of(serde_json::json!({"name": "u", "expect": "allow",
            "operation": "UPDATE", "object": deployment}));
        assert_eq!(update.object.unwrap()["spec"]["replicas"], 1);
        assert_eq!(update.old_object, None);
        // A delete, the deleted object given as oldObject or as object: stored, no object.
        for key in ["oldObject", "object"] {
            let delete = request_of(serde_json::json!({"name": "d", "expect": "allow",
                "operation": "DELETE", key: deployment}));
            assert_eq!(delete.object, None, "{key}");
            assert_eq!(delete.old_object.unwrap()["spec"]["replicas"], 1, "{key}");
        }
        // A subresource is taken as written.
        let debug = request_of(serde_json::json!({"name": "s", "expect": "allow",
            "operation": "UPDATE", "subResource": "scale", "object": scaled, "oldObject": deployment}));
        assert_eq!(debug.object.unwrap()["spec"].get("strategy"), None);
    }
}
