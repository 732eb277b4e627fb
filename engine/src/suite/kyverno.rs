//! Kyverno CLI `Test` files (`cli.kyverno.io/v1alpha1`, usually `kyverno-test.yaml`), run against
//! the native ValidatingAdmissionPolicies and the Kyverno policies ([`crate::kyverno`]) they contain.
//!
//! A test names policy files, resource files, parameter files (`paramResources`), a values file
//! (`variables`: the labels of namespaces, for `namespaceSelector` and `namespaceObject`) and a user
//! (`userinfo`). Each row of `results` expects `pass`, `fail` or `skip` for a policy on some
//! resources. For a native policy these mean, as in the Kyverno CLI: `fail`, some validation failed
//! for some binding; `skip`, no binding applied (not matched, or a match condition was false);
//! `pass`, it was evaluated and nothing failed. A policy without any binding is evaluated as if bound
//! to everything with `Deny`, which is what the Kyverno CLI does.
//!
//! Rows for Kyverno's own policy kinds (ClusterPolicy, Policy, ValidatingPolicy) compare the word
//! of the rule's (or policy's) outcome. A rule that needs something outside the object (API or HTTP
//! lookups) is skipped with the reason, never counted as passed.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::{one_line, read_documents, CaseResult, CaseStatus, Files};
use crate::admission::{AdmissionRequest, Operation, UserInfo};
use crate::kyverno::{self, Outcome};
use crate::namespaces::Namespaces;
use crate::source::{parse_documents, Document};
use crate::vap::{
    self, types::ValidationAction, Binding, EvalContext, EvaluationOutcome, PolicySet,
};

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct TestFile {
    #[serde(default)]
    policies: Vec<String>,
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    param_resources: Vec<String>,
    #[serde(default)]
    variables: Option<String>,
    #[serde(default)]
    userinfo: Option<String>,
    /// PolicyExceptions (`kyverno.io` or `policies.kyverno.io`).
    #[serde(default)]
    exceptions: Vec<String>,
    /// JSON documents for JSON-mode ValidatingPolicies; a row names them as its resources, or
    /// (naming none) means all of them.
    #[serde(default)]
    json_payloads: Vec<String>,
    /// Envoy and HTTP authorization requests: not evaluated here.
    #[serde(default)]
    envoy_payloads: Vec<String>,
    #[serde(default)]
    http_payloads: Vec<String>,
    #[serde(default)]
    results: Vec<ResultRow>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ResultRow {
    #[serde(default)]
    policy: String,
    #[serde(default)]
    rule: Option<String>,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    resources: Vec<String>,
    /// The older single-resource form.
    #[serde(default)]
    resource: Option<String>,
    #[serde(default)]
    result: String,
    #[serde(default)]
    is_validating_admission_policy: bool,
    #[serde(default)]
    is_validating_policy: bool,
    /// The admission operation to simulate (`CREATE` when absent).
    #[serde(default)]
    operation: Option<String>,
}

/// Run one Kyverno CLI test file. `suite_path` names it in the results; the files it refers to are
/// read through `files`, relative to its directory.
pub fn run(suite_path: &str, text: &str, files: &dyn Files) -> Vec<CaseResult> {
    let fail_all = |why: String| {
        vec![CaseResult {
            suite: suite_path.to_owned(),
            name: "(test file)".to_owned(),
            status: CaseStatus::Failed(why),
        }]
    };
    let docs = match parse_documents(suite_path, text) {
        Ok(docs) => docs,
        Err(error) => return fail_all(error.to_string()),
    };
    // A file may hold several tests, one per YAML document.
    let mut results = Vec::new();
    for doc in docs {
        let test: TestFile = match serde_json::from_value(doc.value) {
            Ok(test) => test,
            Err(error) => return fail_all(format!("not a Kyverno test: {error}")),
        };
        match Inputs::load(&test, files) {
            Ok(inputs) => results.extend(run_test(suite_path, &test, &inputs)),
            Err(why) => results.extend(fail_all(why)),
        }
    }
    results
}

fn run_test(suite_path: &str, test: &TestFile, inputs: &Inputs) -> Vec<CaseResult> {
    let mut results = Vec::new();
    for row in &test.results {
        let mut names = row.resources.clone();
        names.extend(row.resource.clone());
        if !inputs.payloads.is_empty() {
            if names.is_empty() {
                names = inputs
                    .payloads
                    .iter()
                    .map(|(name, _)| name.clone())
                    .collect();
            }
            for payload in names {
                results.push(CaseResult {
                    suite: suite_path.to_owned(),
                    name: format!("{} payload {payload}", row.policy),
                    status: inputs.check_payload(row, &payload),
                });
            }
            continue;
        }
        if names.is_empty() && !(test.envoy_payloads.is_empty() && test.http_payloads.is_empty()) {
            results.push(CaseResult {
                suite: suite_path.to_owned(),
                name: format!("{} (payloads)", row.policy),
                status: CaseStatus::Skipped(
                    "Envoy and HTTP authorization payloads are not evaluated here".to_owned(),
                ),
            });
            continue;
        }
        for resource in names {
            let name = match &row.rule {
                Some(rule) if !rule.is_empty() => {
                    format!("{}/{rule} {} {resource}", row.policy, row.kind)
                }
                _ => format!("{} {} {resource}", row.policy, row.kind),
            };
            let status = inputs.check(row, &resource);
            results.push(CaseResult {
                suite: suite_path.to_owned(),
                name,
                status,
            });
        }
    }
    results
}

/// Everything a test file refers to, loaded.
struct Inputs {
    set: PolicySet,
    /// Kyverno's own policy kinds.
    kyverno: kyverno::PolicySet,
    /// Policies of other kinds, by name, with their kind.
    other_policies: BTreeMap<String, String>,
    resources: Vec<Value>,
    /// JSON payloads, by file name.
    payloads: Vec<(String, Value)>,
    namespaces: Namespaces,
    user: UserInfo,
}

fn kind_of(value: &Value) -> &str {
    value
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn name_of(value: &Value) -> &str {
    value
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Give a namespaced built-in object without a namespace the `default` one, as `kubectl` would.
fn default_namespace(mut object: Value) -> Value {
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let namespaced =
        vap::is_builtin_api_version(&api_version) && !vap::is_cluster_scoped_kind(kind_of(&object));
    if namespaced {
        if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            let missing = metadata
                .get("namespace")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty);
            if missing {
                metadata.insert("namespace".to_owned(), Value::from("default"));
            }
        }
    }
    object
}

impl Inputs {
    fn load(test: &TestFile, files: &dyn Files) -> Result<Inputs, String> {
        let mut set = PolicySet::default();
        let mut kyverno_set = kyverno::PolicySet::default();
        let mut other_policies = BTreeMap::new();
        for path in &test.policies {
            let docs = read_documents(files, path)?;
            let (native, others): (Vec<Document>, Vec<Document>) =
                docs.into_iter().partition(|d| {
                    d.value
                        .get("apiVersion")
                        .and_then(Value::as_str)
                        .is_some_and(|v| v.starts_with("admissionregistration.k8s.io/"))
                });
            kyverno_set.add_documents(path, &others).map_err(one_line)?;
            for doc in &others {
                other_policies.insert(
                    name_of(&doc.value).to_owned(),
                    kind_of(&doc.value).to_owned(),
                );
                // A namespaced Policy answers as `namespace/name`; rows may use either.
                if kind_of(&doc.value) == "Policy" {
                    let namespace = doc
                        .value
                        .pointer("/metadata/namespace")
                        .and_then(Value::as_str)
                        .unwrap_or("default");
                    other_policies.insert(
                        format!("{namespace}/{}", name_of(&doc.value)),
                        "Policy".to_owned(),
                    );
                }
            }
            let native: Vec<Document> = native.into_iter().map(kyverno_defaults).collect();
            let read = PolicySet::from_documents(path, &native).map_err(one_line)?;
            set.extend(read);
        }
        for name in set.unbound_policies() {
            set.bindings.push(Binding::unrestricted(
                &name,
                &name,
                &[ValidationAction::Deny],
            ));
        }
        for path in &test.param_resources {
            for doc in read_documents(files, path)? {
                set.params.push(default_namespace(doc.value));
            }
        }
        for path in &test.exceptions {
            let docs = read_documents(files, path)?;
            kyverno_set.add_documents(path, &docs).map_err(one_line)?;
        }
        let mut resources = Vec::new();
        for path in &test.resources {
            for doc in read_documents(files, path)? {
                resources.push(default_namespace(doc.value));
            }
        }
        let mut payloads = Vec::new();
        for path in &test.json_payloads {
            let text = files.read(path)?;
            let value: Value =
                serde_json::from_str(&text).map_err(|e| format!("{path}: not JSON: {e}"))?;
            payloads.push((path.clone(), value));
        }
        let mut namespaces = Vec::new();
        if let Some(path) = &test.variables {
            for doc in read_documents(files, path)? {
                namespaces.extend(namespaces_from_values(&doc.value));
            }
        }
        let mut user = UserInfo::default();
        if let Some(path) = &test.userinfo {
            for doc in read_documents(files, path)? {
                let info = doc
                    .value
                    .get("userInfo")
                    .or_else(|| doc.value.get("requestInfo").and_then(|r| r.get("userInfo")))
                    .cloned()
                    .unwrap_or(Value::Null);
                if !info.is_null() {
                    user = serde_json::from_value(info)
                        .map_err(|e| format!("{path}: userInfo: {e}"))?;
                }
            }
        }
        Ok(Inputs {
            set,
            kyverno: kyverno_set,
            other_policies,
            resources,
            payloads,
            namespaces: namespaces.into(),
            user,
        })
    }

    /// The resource a row names (`name` or `namespace/name`) among the test's resources.
    fn resource(&self, row: &ResultRow, resource: &str) -> Option<&Value> {
        let (namespace, name) = match resource.split_once('/') {
            Some((ns, name)) => (Some(ns), name),
            None => (None, resource),
        };
        self.resources.iter().find(|r| {
            name_of(r) == name
                && (row.kind.is_empty() || kind_of(r) == row.kind)
                && namespace.is_none_or(|ns| {
                    r.get("metadata")
                        .and_then(|m| m.get("namespace"))
                        .and_then(Value::as_str)
                        == Some(ns)
                })
        })
    }

    /// The admission request the Kyverno CLI builds for a row's resource: a CREATE by the test's user.
    fn request(&self, row: &ResultRow, resource: &str) -> Result<AdmissionRequest, CaseStatus> {
        let Some(object) = self.resource(row, resource) else {
            return Err(CaseStatus::Failed(format!(
                "no {} resource named `{resource}`",
                row.kind
            )));
        };
        let operation = match row.operation.as_deref() {
            None | Some("" | "CREATE") => Operation::Create,
            Some("DELETE") => Operation::Delete,
            Some("UPDATE") => Operation::Update,
            Some(other) => {
                return Err(CaseStatus::Failed(format!(
                    "operation `{other}`: must be one of CREATE, UPDATE, DELETE"
                )))
            }
        };
        let mut request = AdmissionRequest::for_object(operation, object.clone())
            .map_err(|error| CaseStatus::Failed(format!("resource `{resource}`: {error}")))?;
        // An UPDATE of the object to itself, as the Kyverno CLI simulates it.
        if operation == Operation::Update {
            request.old_object = request.object.clone();
        }
        request.user_info = self.user.clone();
        Ok(request)
    }

    fn check(&self, row: &ResultRow, resource: &str) -> CaseStatus {
        let is_native = self.set.policies.iter().any(|p| p.name == row.policy);
        if !is_native {
            if self.other_policies.contains_key(&row.policy) {
                return self.check_kyverno(row, resource);
            }
            return CaseStatus::Failed(format!("no policy named `{}` in the test", row.policy));
        }
        if !row.is_validating_admission_policy && row.is_validating_policy {
            return CaseStatus::Failed(format!(
                "`{}` is a ValidatingAdmissionPolicy but the row says isValidatingPolicy",
                row.policy
            ));
        }
        let request = match self.request(row, resource) {
            Ok(request) => request,
            Err(status) => return status,
        };
        let ctx = EvalContext {
            namespaces: &self.namespaces,
            params: &[],
            authorizer: None,
        };
        let result = self.set.evaluate(&request, &ctx);
        let mine: Vec<_> = result
            .evaluations
            .iter()
            .filter(|e| e.policy == row.policy)
            .collect();
        let mut failed = false;
        let mut evaluated = false;
        let mut messages = Vec::new();
        for evaluation in &mine {
            match &evaluation.outcome {
                EvaluationOutcome::Evaluated { failures, .. } => {
                    evaluated = true;
                    if !failures.is_empty() {
                        failed = true;
                        messages.extend(failures.iter().map(|f| f.message.clone()));
                    }
                }
                EvaluationOutcome::ConfigurationError { message, enforced } => {
                    evaluated = true;
                    if *enforced {
                        failed = true;
                        messages.push(message.clone());
                    }
                }
                EvaluationOutcome::NotEvaluable { reason } => {
                    return CaseStatus::Skipped(format!("not evaluable: {reason}"))
                }
                EvaluationOutcome::ConditionsNotMet => {}
            }
        }
        let got = if failed {
            "fail"
        } else if evaluated {
            "pass"
        } else {
            "skip"
        };
        if got == row.result {
            CaseStatus::Passed
        } else {
            mismatch(&row.result, got, &messages)
        }
    }
}

impl Inputs {
    /// A row about a Kyverno policy: the words of its rules' outcomes (only the row's rule, when it
    /// names one; autogen rules answer to their Pod rule's name) reduced as the Kyverno CLI does:
    /// any failure is `fail`, else any error is `error`, else any pass is `pass`, else `skip`.
    fn check_kyverno(&self, row: &ResultRow, resource: &str) -> CaseStatus {
        match self.request(row, resource) {
            Ok(request) => self.judge_kyverno(row, &request),
            Err(status) => status,
        }
    }

    /// A row about a JSON payload: the payload is the request's object, with nothing else known.
    fn check_payload(&self, row: &ResultRow, payload: &str) -> CaseStatus {
        if !self.other_policies.contains_key(&row.policy) {
            return CaseStatus::Failed(format!("no policy named `{}` in the test", row.policy));
        }
        let Some((_, value)) = self.payloads.iter().find(|(name, _)| name == payload) else {
            return CaseStatus::Failed(format!("no JSON payload named `{payload}`"));
        };
        let request = AdmissionRequest {
            object: Some(value.clone()),
            ..AdmissionRequest::default()
        };
        self.judge_kyverno(row, &request)
    }

    fn judge_kyverno(&self, row: &ResultRow, request: &AdmissionRequest) -> CaseStatus {
        let ctx = kyverno::Context {
            namespaces: &self.namespaces,
        };
        let wanted_rule = row.rule.as_deref().filter(|r| !r.is_empty()).map(|rule| {
            rule.strip_prefix("autogen-cronjob-")
                .or_else(|| rule.strip_prefix("autogen-"))
                .unwrap_or(rule)
        });
        let results: Vec<_> = self
            .kyverno
            .evaluate(request, &ctx)
            .into_iter()
            .filter(|r| {
                let named = r.policy == row.policy
                    || r.policy
                        .split_once('/')
                        .is_some_and(|(_, n)| n == row.policy);
                named && wanted_rule.is_none_or(|rule| r.rule == rule)
            })
            .collect();
        if let Some(reason) = results.iter().find_map(|r| match &r.outcome {
            Outcome::NotEvaluable(reason) => Some(reason),
            _ => None,
        }) {
            return CaseStatus::Skipped(format!("not evaluable locally: {reason}"));
        }
        let any = |word: &str| results.iter().any(|r| r.outcome.word() == word);
        let got = ["fail", "error", "pass"]
            .into_iter()
            .find(|word| any(word))
            .unwrap_or("skip");
        if got == row.result {
            return CaseStatus::Passed;
        }
        let details: Vec<String> = results
            .iter()
            .filter_map(|r| match &r.outcome {
                Outcome::Fail(why) | Outcome::Error(why) | Outcome::Skip(why) => {
                    Some(format!("{}: {why}", r.rule))
                }
                _ => None,
            })
            .collect();
        mismatch(&row.result, got, &details)
    }
}

/// A row whose result was `expected` but came out `got`, with what the engine said.
fn mismatch(expected: &str, got: &str, details: &[String]) -> CaseStatus {
    if details.is_empty() {
        CaseStatus::Failed(format!("expected {expected}, got {got}"))
    } else {
        CaseStatus::Failed(format!(
            "expected {expected}, got {got}: {}",
            details.join("; ")
        ))
    }
}

/// The Kyverno CLI accepts policies the apiserver would refuse, and Kyverno's tests rely on it:
/// resource rules without `operations` (read as all operations), bindings without
/// `validationActions` (read as `[Deny]`) and a `paramRef` without `parameterNotFoundAction`
/// (read as `Deny`). The runner fills these in; [`PolicySet`] itself reads policies as the apiserver.
fn kyverno_defaults(mut doc: Document) -> Document {
    let is_binding = kind_of(&doc.value) == "ValidatingAdmissionPolicyBinding";
    let spec = doc.value.get_mut("spec");
    let Some(spec) = spec.and_then(Value::as_object_mut) else {
        return doc;
    };
    if is_binding {
        spec.entry("validationActions")
            .or_insert_with(|| serde_json::json!(["Deny"]));
        if let Some(param_ref) = spec.get_mut("paramRef").and_then(Value::as_object_mut) {
            param_ref
                .entry("parameterNotFoundAction")
                .or_insert_with(|| Value::from("Deny"));
        }
    }
    for criteria in ["matchConstraints", "matchResources"] {
        let Some(criteria) = spec.get_mut(criteria).and_then(Value::as_object_mut) else {
            continue;
        };
        for list in ["resourceRules", "excludeResourceRules"] {
            let Some(rules) = criteria.get_mut(list).and_then(Value::as_array_mut) else {
                continue;
            };
            for rule in rules.iter_mut().filter_map(Value::as_object_mut) {
                rule.entry("operations")
                    .or_insert_with(|| serde_json::json!(["*"]));
            }
        }
    }
    doc
}

/// Namespaces from a Kyverno values file: `namespaceSelector` entries (a name and labels) and
/// `namespaces` (whole Namespace objects).
fn namespaces_from_values(values: &Value) -> Vec<Value> {
    let mut namespaces = Vec::new();
    if let Some(entries) = values.get("namespaceSelector").and_then(Value::as_array) {
        for entry in entries {
            let name = entry.get("name").cloned().unwrap_or(Value::Null);
            let labels = entry
                .get("labels")
                .cloned()
                .unwrap_or_else(|| Value::Object(Default::default()));
            namespaces.push(serde_json::json!({
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": name, "labels": labels},
            }));
        }
    }
    if let Some(entries) = values.get("namespaces").and_then(Value::as_array) {
        namespaces.extend(entries.iter().cloned());
    }
    namespaces
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Memory(HashMap<&'static str, &'static str>);

    impl Files for Memory {
        fn read(&self, path: &str) -> Result<String, String> {
            self.0
                .get(path)
                .map(|s| s.to_string())
                .ok_or_else(|| format!("{path}: not found"))
        }
    }

    const POLICY: &str = "
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: max-replicas}
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [deployments]}
  validations:
  - expression: object.spec.replicas <= 2
---
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: kyverno-one}
spec:
  rules:
  - name: r
    match: {any: [{resources: {kinds: [Pod]}}]}
    validate: {message: needs a label, pattern: {metadata: {labels: {app: \"?*\"}}}}
";

    const RESOURCES: &str = "
apiVersion: apps/v1
kind: Deployment
metadata: {name: small}
spec: {replicas: 1}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: big}
spec: {replicas: 9}
---
apiVersion: v1
kind: Pod
metadata: {name: pod}
spec: {}
";

    #[test]
    fn rows_pass_fail_skip_and_other_kinds_are_skipped_with_a_reason() {
        let files = Memory(HashMap::from([
            ("policy.yaml", POLICY),
            ("resources.yaml", RESOURCES),
        ]));
        let test = "
apiVersion: cli.kyverno.io/v1alpha1
kind: Test
policies: [policy.yaml]
resources: [resources.yaml]
results:
- {policy: max-replicas, kind: Deployment, resources: [small], result: pass, isValidatingAdmissionPolicy: true}
- {policy: max-replicas, kind: Deployment, resources: [big], result: fail, isValidatingAdmissionPolicy: true}
- {policy: max-replicas, kind: Pod, resources: [pod], result: skip, isValidatingAdmissionPolicy: true}
- {policy: max-replicas, kind: Deployment, resources: [big], result: pass, isValidatingAdmissionPolicy: true}
- {policy: kyverno-one, rule: r, kind: Pod, resources: [pod], result: pass}
";
        let results = run("t/kyverno-test.yaml", test, &files);
        let statuses: Vec<_> = results.iter().map(|r| &r.status).collect();
        assert_eq!(statuses[0], &CaseStatus::Passed);
        assert_eq!(statuses[1], &CaseStatus::Passed);
        assert_eq!(statuses[2], &CaseStatus::Passed);
        match statuses[3] {
            CaseStatus::Failed(why) => assert!(why.contains("expected pass, got fail"), "{why}"),
            other => panic!("{other:?}"),
        }
        match statuses[4] {
            CaseStatus::Failed(why) => assert!(why.contains("expected pass, got fail"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_missing_file_fails_the_whole_test() {
        let files = Memory(HashMap::new());
        let results = run("t", "policies: [nope.yaml]\nresults: []\n", &files);
        assert_eq!(results.len(), 1);
        assert!(matches!(&results[0].status, CaseStatus::Failed(why) if why.contains("nope.yaml")));
    }
}
