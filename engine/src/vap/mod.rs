//! ValidatingAdmissionPolicy, evaluated locally exactly as the apiserver's admission plugin does.
//!
//! [`PolicySet::from_documents`] reads policies, bindings and parameter objects (any other object in
//! the documents) and compiles every CEL expression once. [`PolicySet::evaluate`] takes one admission
//! request and decides, for every (policy, binding, parameter) that applies, what the apiserver would
//! do: deny with its exact message, warn, record an audit annotation, or admit.
//!
//! The order of work follows the apiserver: the policy's `matchConstraints`, then each binding's
//! `matchResources`, then the parameters of the binding (`paramRef`: by name or selector, with
//! `parameterNotFoundAction`), then per parameter the `matchConditions`, the `validations` (with
//! `variables` computed on first use, once per evaluation), and the `auditAnnotations`. Failed
//! validations are then dealt out by the binding's `validationActions`.

pub mod matching;
pub mod types;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use cel::common::traits::{Container, Indexer};
use cel::common::types::{CelString, Type, MAP_TYPE};
use cel::common::value::{CowVal, Val};
use cel::ExecutionError;
use serde::Serialize;
use serde_json::{json, Value};

use crate::admission::{AdmissionRequest, Operation};
use crate::cel::authz::AuthzVal;
pub use crate::cel::authz::{
    AuthorizationCheck, AuthorizationDecision, AuthorizerModel, RbacModel,
};
use crate::cel::check::{Declarations, Ty};
use crate::cel::projection::{PolicyReads, Projection};
use crate::cel::{self as celx, EvalError, Outcome, Program};
use crate::namespaces::Namespaces;
use crate::source::{Document, SourceError};
use crate::verdict::{Action, EngineKind, Finding, NotEvaluable, Verdict};
use cel::context::VariableResolver;
use matching::NamespaceInfo;
use types::{
    BindingDoc, FailurePolicy, LabelSelector, MatchResources, ParamKind, ParamRef,
    ParameterNotFoundAction, PolicyDoc, ValidationAction,
};

const API_GROUP: &str = "admissionregistration.k8s.io/";
/// The longest message a `messageExpression` may produce; longer ones are dropped (as the
/// apiserver's `MaxEvaluatedMessageExpressionSizeBytes`).
const MAX_MESSAGE_BYTES: usize = 5 * 1024;
const MAX_AUDIT_VALUE_BYTES: usize = 10 * 1024;
/// The fields of an object the evaluation reads besides its policies' expressions: its type, name
/// and namespace (the request's) and its labels (object selectors).
const OBJECT_FIELDS_READ: [&[&str]; 5] = [
    &["apiVersion"],
    &["kind"],
    &["metadata", "name"],
    &["metadata", "namespace"],
    &["metadata", "labels"],
];
const VALIDATION_FAILURE_KEY: &str = "validation.policy.admission.k8s.io/validation_failure";

/// One CEL expression of a policy, compiled, with what it needs.
#[derive(Debug, Clone)]
struct Expr {
    source: String,
    program: Arc<Program>,
    /// Indices of the policy's variables this expression needs, directly or through other
    /// variables, in declaration order.
    variables: Vec<usize>,
    needs_authorizer: bool,
    /// Its type, as the checker found it when the policy was read.
    ty: Ty,
}

/// What an expression must evaluate to, by where it is in the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// A composited variable: anything.
    Any,
    /// A validation or a match condition.
    Bool,
    /// A message expression.
    String,
    /// An audit annotation's value.
    StringOrNull,
}

impl Want {
    /// Does `ty` do? Only a type the checker knows can be wrong.
    fn accepts(self, ty: &Ty) -> bool {
        match (self, ty) {
            (Want::Any, _) | (_, Ty::Dyn | Ty::Param(_)) => true,
            (Want::Bool, ty) => *ty == Ty::Bool,
            (Want::String, ty) => *ty == Ty::String,
            (Want::StringOrNull, ty) => matches!(ty, Ty::String | Ty::Null),
        }
    }

    fn words(self) -> &'static str {
        match self {
            Want::Any => "any type",
            Want::Bool => "bool",
            Want::String => "string",
            Want::StringOrNull => "one of [string null_type]",
        }
    }
}

#[derive(Debug, Clone)]
struct CompiledValidation {
    expr: Expr,
    message: Option<String>,
    message_expression: Option<Expr>,
    reason: Option<String>,
}

/// A ValidatingAdmissionPolicy, ready to evaluate.
#[derive(Debug, Clone)]
pub struct Policy {
    pub name: String,
    failure_policy: FailurePolicy,
    param_kind: Option<ParamKind>,
    match_constraints: MatchResources,
    match_conditions: Vec<(String, Expr)>,
    variable_names: Vec<String>,
    variables: Vec<Expr>,
    validations: Vec<CompiledValidation>,
    audit_annotations: Vec<(String, Expr)>,
}

/// A ValidatingAdmissionPolicyBinding.
#[derive(Debug, Clone)]
pub struct Binding {
    pub name: String,
    pub policy_name: String,
    param_ref: Option<ParamRef>,
    match_resources: Option<MatchResources>,
    pub validation_actions: Vec<ValidationAction>,
}

impl Binding {
    /// A binding of `policy` to everything it matches, with `actions`: what `kubectl` users write
    /// when they bind a policy without further restriction.
    pub fn unrestricted(name: &str, policy: &str, actions: &[ValidationAction]) -> Binding {
        Binding {
            name: name.to_owned(),
            policy_name: policy.to_owned(),
            param_ref: None,
            match_resources: None,
            validation_actions: actions.to_vec(),
        }
    }
}

impl Policy {
    /// What its expressions read of an object, its variables followed.
    fn reads(&self) -> PolicyReads {
        let mut reads = PolicyReads::default();
        for (name, variable) in self.variable_names.iter().zip(&self.variables) {
            reads.add_variable(name, variable.program.object_summary());
        }
        let conditions = self.match_conditions.iter().map(|(_, e)| e);
        let validations = self
            .validations
            .iter()
            .flat_map(|v| std::iter::once(&v.expr).chain(&v.message_expression));
        let annotations = self.audit_annotations.iter().map(|(_, e)| e);
        for expr in conditions.chain(validations).chain(annotations) {
            reads.add_expression(expr.program.object_summary());
        }
        reads
    }
}

/// Policies, bindings and parameter objects.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    pub policies: Vec<Policy>,
    pub bindings: Vec<Binding>,
    /// Objects that are neither policies nor bindings: candidate parameters.
    pub params: Vec<Value>,
    /// Whether `object` and `oldObject` keep their `null` fields (as Kyverno's CEL reads an
    /// unstructured object) instead of reading them as absent (the apiserver's typed objects).
    /// Off for ValidatingAdmissionPolicies; Kyverno's `validate.cel` rules turn it on.
    pub keep_null_fields: bool,
}

/// What the evaluation knows about the cluster beyond the request.
#[derive(Debug, Clone, Default)]
pub struct EvalContext<'a> {
    /// Namespace objects, for `namespaceSelector` and `namespaceObject`.
    pub namespaces: &'a Namespaces,
    /// Parameter objects besides those of the policy set.
    pub params: &'a [Value],
    /// Answers `authorizer` checks (for example an [`RbacModel`]). Without it, a policy that uses
    /// `authorizer` is not evaluable.
    pub authorizer: Option<Arc<dyn AuthorizerModel>>,
}

/// A failed validation (or an error the failure policy turns into one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub source: FailureSource,
    pub message: String,
    /// The reason the apiserver would put in the status (`Invalid` unless the validation says).
    pub reason: String,
    /// Whether this comes from an evaluation error rather than a false validation.
    pub error: bool,
}

/// Which part of the policy a [`Failure`] comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum FailureSource {
    /// `spec.validations[i]`.
    Validation(usize),
    /// An error in the match conditions.
    MatchConditions,
    /// An error in `spec.auditAnnotations` (by key): these deny whatever the binding's actions.
    AuditAnnotation(String),
}

/// What happened for one (policy, binding, parameter).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum EvaluationOutcome {
    /// A match condition was false (or failed under `failurePolicy: Ignore`): nothing evaluated.
    ConditionsNotMet,
    /// The validations ran; `failures` is empty when the request passed them all.
    Evaluated {
        failures: Vec<Failure>,
        audit_annotations: Vec<(String, String)>,
    },
    /// The binding could not be configured (parameters): the message, when the failure policy
    /// makes it a denial.
    ConfigurationError { message: String, enforced: bool },
    /// Not decidable locally.
    NotEvaluable { reason: String },
}

/// One (policy, binding, parameter) that applied to the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evaluation {
    pub policy: String,
    pub binding: String,
    /// The parameter object (`namespace/name` or `name`), when the policy has parameters.
    pub param: Option<String>,
    #[serde(flatten)]
    pub outcome: EvaluationOutcome,
}

/// A denial, worded as the apiserver words it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Denial {
    pub policy: String,
    pub binding: String,
    pub message: String,
    pub reason: String,
}

/// Everything the policies say about one request.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct VapResult {
    pub evaluations: Vec<Evaluation>,
    /// In the order this engine finds them (policies, then their bindings, as loaded). The
    /// apiserver reports just one of several: the first in its policy cache, whose order is not
    /// predictable (it changed between two runs of testbed/tests/library_differential.rs with
    /// the same policies recreated), so a client may see any of them.
    pub denials: Vec<Denial>,
    /// Warnings returned to the client.
    pub warnings: Vec<String>,
    /// Audit annotations, by key (`<policy>/<key>` and the validation-failure annotation).
    pub audit_annotations: BTreeMap<String, String>,
    /// Failures recorded by `Audit` actions (the value of the validation-failure annotation each).
    pub audit_failures: Vec<String>,
    pub not_evaluable: Vec<NotEvaluable>,
    #[serde(skip)]
    findings: Vec<Finding>,
}

impl VapResult {
    /// The apiserver's answer to the client when the request is denied (with several denials,
    /// the apiserver may report another of [`denials`](Self::denials)).
    pub fn denial_message(&self) -> Option<&str> {
        self.denials.first().map(|d| d.message.as_str())
    }

    /// The findings: one per denial, warning and audited failure, in the order they were made.
    pub fn into_verdict(self) -> Verdict {
        Verdict {
            findings: self.findings,
            not_evaluable: self.not_evaluable,
        }
    }
}

impl PolicySet {
    /// Whether some policy could match an object of `kind` (in any group; see
    /// [`matching::may_match_resource`]).
    pub fn may_match_kind(&self, kind: &str) -> bool {
        let resource = crate::admission::resource_for_kind(kind);
        self.policies
            .iter()
            .any(|policy| matching::may_match_resource(&policy.match_constraints, &resource))
    }

    /// What evaluating these policies can read of a request's object: what their expressions
    /// read (their variables followed), and [`OBJECT_FIELDS_READ`].
    pub fn object_reads(&self) -> Projection {
        let mut projection = Projection::default();
        for path in OBJECT_FIELDS_READ {
            projection.add_path(path);
        }
        for policy in &self.policies {
            projection.merge(&policy.reads().into_projection());
        }
        projection
    }

    /// Whether what these policies say about an object may depend on which object it is, not
    /// only on what it holds (see [`PolicyReads::reads_identity`]): a policy or binding matches
    /// by resource name, or an expression reads the name, the uid or the request where it names
    /// the object. When not, two objects that differ only in `metadata.name` and `metadata.uid`
    /// get the same findings, messages and reasons.
    pub fn reads_identity(&self) -> bool {
        let names = |m: &MatchResources| {
            m.resource_rules
                .iter()
                .chain(&m.exclude_resource_rules)
                .any(|rule| !rule.resource_names.is_empty())
        };
        self.bindings
            .iter()
            .filter_map(|b| b.match_resources.as_ref())
            .any(names)
            || self
                .policies
                .iter()
                .any(|p| names(&p.match_constraints) || p.reads().reads_identity())
    }

    /// Whether what these policies say about an object may depend on its labels: a policy or
    /// binding selects objects by label, or an expression reads them. When not, two objects that
    /// differ only in `metadata.labels` get the same findings, messages and reasons (a Namespace
    /// object apart: namespace selectors read its labels).
    pub fn reads_labels(&self) -> bool {
        self.bindings
            .iter()
            .filter_map(|b| b.match_resources.as_ref())
            .any(|m| m.object_selector.is_some())
            || self
                .policies
                .iter()
                .any(|p| p.match_constraints.object_selector.is_some() || p.reads().reads_labels())
    }

    /// Read policies, bindings and parameter objects from `docs` (of the file `file`). Every
    /// problem is reported, each at its place.
    pub fn from_documents(file: &str, docs: &[Document]) -> Result<PolicySet, Vec<SourceError>> {
        let mut set = PolicySet::default();
        let mut errors = Vec::new();
        for doc in docs {
            match read_document(file, doc) {
                Ok(Read::Policy(policy)) => set.policies.push(policy),
                Ok(Read::Binding(binding)) => set.bindings.push(binding),
                Ok(Read::Other) => set.params.push(doc.value.clone()),
                Err(mut e) => errors.append(&mut e),
            }
        }
        if errors.is_empty() {
            Ok(set)
        } else {
            Err(errors)
        }
    }

    /// Add the policies, bindings and parameters of `other`.
    pub fn extend(&mut self, other: PolicySet) {
        self.policies.extend(other.policies);
        self.bindings.extend(other.bindings);
        self.params.extend(other.params);
    }

    /// The policies no binding refers to.
    pub fn unbound_policies(&self) -> Vec<String> {
        self.policies
            .iter()
            .filter(|p| !self.bindings.iter().any(|b| b.policy_name == p.name))
            .map(|p| p.name.clone())
            .collect()
    }

    /// Evaluate every policy against `request`.
    pub fn evaluate(&self, request: &AdmissionRequest, ctx: &EvalContext<'_>) -> VapResult {
        let mut result = VapResult::default();
        let mut facts = RequestFacts::new(request, ctx);
        facts.keep_nulls = self.keep_null_fields;
        let labels = || facts.namespace_labels();
        let namespace_info = NamespaceInfo { labels: &labels };
        let values = Values::new(&facts);
        let resolvers = phase_resolvers(&values);
        let shared = SharedVariables::new(&self.policies, &resolvers);
        for policy in &self.policies {
            if !matching::matches(&policy.match_constraints, request, &namespace_info) {
                continue;
            }
            let mut annotations: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for binding in self
                .bindings
                .iter()
                .filter(|b| b.policy_name == policy.name)
            {
                if let Some(criteria) = &binding.match_resources {
                    if !matching::matches(criteria, request, &namespace_info) {
                        continue;
                    }
                }
                let params = match collect_params(policy, binding, request, &self.params, ctx) {
                    Ok(params) => params,
                    Err(message) => {
                        let message = format!("failed to configure binding: {message}");
                        let enforced = policy.failure_policy == FailurePolicy::Fail;
                        if enforced {
                            result.denials.push(Denial {
                                policy: policy.name.clone(),
                                binding: binding.name.clone(),
                                message: deny_message(&policy.name, &binding.name, &message),
                                reason: "Invalid".to_owned(),
                            });
                        }
                        result.evaluations.push(Evaluation {
                            policy: policy.name.clone(),
                            binding: binding.name.clone(),
                            param: None,
                            outcome: EvaluationOutcome::ConfigurationError { message, enforced },
                        });
                        continue;
                    }
                };
                for param in params {
                    let outcome = evaluate_unit(policy, &values, &shared, param);
                    dispatch(policy, binding, &outcome, &mut result, &mut annotations);
                    if let EvaluationOutcome::NotEvaluable { reason } = &outcome {
                        result.not_evaluable.push(NotEvaluable {
                            engine: EngineKind::Vap,
                            policy: format!("{}/{}", policy.name, binding.name),
                            reason: reason.clone(),
                        });
                    }
                    result.evaluations.push(Evaluation {
                        policy: policy.name.clone(),
                        binding: binding.name.clone(),
                        param: param.map(param_name),
                        outcome,
                    });
                }
            }
            for (key, values) in annotations {
                result
                    .audit_annotations
                    .insert(format!("{}/{key}", policy.name), values.join(", "));
            }
        }
        result
    }
}

fn deny_message(policy: &str, binding: &str, message: &str) -> String {
    format!(
        "ValidatingAdmissionPolicy '{policy}' with binding '{binding}' denied request: {message}"
    )
}

/// Deal the failures of one evaluation out by the binding's actions, as the apiserver's dispatcher.
fn dispatch(
    policy: &Policy,
    binding: &Binding,
    outcome: &EvaluationOutcome,
    result: &mut VapResult,
    annotations: &mut BTreeMap<String, Vec<String>>,
) {
    let EvaluationOutcome::Evaluated {
        failures,
        audit_annotations,
    } = outcome
    else {
        return;
    };
    for failure in failures {
        let owner = format!("{}/{}", policy.name, binding.name);
        // Audit annotation errors deny whatever the actions are.
        // The denial of `failure` with `reason`, and its finding.
        let deny = |result: &mut VapResult, reason: &str| {
            let message = deny_message(&policy.name, &binding.name, &failure.message);
            result
                .findings
                .push(finding(&owner, Action::Deny, &message));
            result.denials.push(Denial {
                policy: policy.name.clone(),
                binding: binding.name.clone(),
                message,
                reason: reason.to_owned(),
            });
        };
        if let FailureSource::AuditAnnotation(_) = failure.source {
            deny(result, "Invalid");
            continue;
        }
        for action in &binding.validation_actions {
            match action {
                ValidationAction::Deny => deny(result, &failure.reason),
                ValidationAction::Warn => {
                    let message = format!(
                        "Validation failed for ValidatingAdmissionPolicy '{}' with binding '{}': {}",
                        policy.name, binding.name, failure.message
                    );
                    result
                        .findings
                        .push(finding(&owner, Action::Warn, &message));
                    result.warnings.push(message);
                }
                ValidationAction::Audit => {
                    // Field order as the apiserver writes it.
                    let value = serde_json::to_string(&[ValidationFailureValue {
                        message: &failure.message,
                        policy: &binding.policy_name,
                        binding: &binding.name,
                        expression_index: match failure.source {
                            FailureSource::Validation(index) => index,
                            _ => 0,
                        },
                        validation_actions: &binding.validation_actions,
                    }])
                    .unwrap_or_default();
                    // The apiserver keeps the first value set for an annotation key.
                    result
                        .audit_annotations
                        .entry(VALIDATION_FAILURE_KEY.to_owned())
                        .or_insert_with(|| value.clone());
                    result
                        .findings
                        .push(finding(&owner, Action::Audit, &failure.message));
                    result.audit_failures.push(value);
                }
            }
        }
    }
    for (key, value) in audit_annotations {
        let values = annotations.entry(key.clone()).or_default();
        if !values.contains(value) {
            values.push(value.clone());
        }
    }
}

/// The value of the validation-failure audit annotation (one element of its list).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ValidationFailureValue<'a> {
    message: &'a str,
    policy: &'a str,
    binding: &'a str,
    expression_index: usize,
    validation_actions: &'a [ValidationAction],
}

fn finding(policy: &str, action: Action, message: &str) -> Finding {
    Finding {
        engine: EngineKind::Vap,
        policy: policy.to_owned(),
        action,
        message: message.to_owned(),
    }
}

fn param_name(param: &Value) -> String {
    let meta = param.get("metadata");
    let text = |k: &str| {
        meta.and_then(|m| m.get(k))
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    if text("namespace").is_empty() {
        text("name").to_owned()
    } else {
        format!("{}/{}", text("namespace"), text("name"))
    }
}

/// Kinds of the core API groups that are cluster-scoped; every other built-in kind is namespaced.
const CLUSTER_SCOPED_KINDS: &[&str] = &[
    "Namespace",
    "Node",
    "PersistentVolume",
    "ClusterRole",
    "ClusterRoleBinding",
    "StorageClass",
    "CSIDriver",
    "CSINode",
    "VolumeAttachment",
    "PriorityClass",
    "RuntimeClass",
    "IngressClass",
    "CustomResourceDefinition",
    "APIService",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionPolicyBinding",
    "CertificateSigningRequest",
    "FlowSchema",
    "PriorityLevelConfiguration",
    "ComponentStatus",
];

/// Whether `kind` is one of the built-in cluster-scoped kinds.
pub fn is_cluster_scoped_kind(kind: &str) -> bool {
    CLUSTER_SCOPED_KINDS.contains(&kind)
}

/// Whether `api_version` belongs to a built-in API group (core, `apps`, `*.k8s.io`, …) rather than a
/// custom resource.
pub fn is_builtin_api_version(api_version: &str) -> bool {
    is_builtin_group(api_version)
}

/// `matchConstraints` matching every request (a policy made from another engine's code, whose
/// matching is done before it is asked).
pub(crate) fn match_everything() -> Value {
    json!({"resourceRules": [{
        "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"], "operations": ["*"]
    }]})
}

/// The `admissionregistration.k8s.io/v1` document of `kind` named `name` with `spec`, made from
/// another engine's document that begins at `first_line` with `text`, so errors are placed in
/// that file: a ValidatingAdmissionPolicy that engine's CEL is evaluated as, or its binding.
pub(crate) fn admission_document(
    kind: &str,
    name: &str,
    spec: Value,
    first_line: usize,
    text: String,
) -> Document {
    Document {
        value: json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": kind,
            "metadata": {"name": name},
            "spec": spec,
        }),
        first_line,
        text,
    }
}

fn is_builtin_group(api_version: &str) -> bool {
    match api_version.split_once('/') {
        None => true,
        Some((group, _)) => !group.contains('.') || group.ends_with(".k8s.io"),
    }
}

fn object_namespace(object: &Value) -> &str {
    object
        .get("metadata")
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The parameters one binding evaluates its policy with (the apiserver's `CollectParams`): `None`
/// stands for "no parameter" (`params` is null).
fn collect_params<'p>(
    policy: &Policy,
    binding: &Binding,
    request: &AdmissionRequest,
    set_params: &'p [Value],
    ctx: &EvalContext<'p>,
) -> Result<Vec<Option<&'p Value>>, String> {
    let (Some(kind), Some(param_ref)) = (&policy.param_kind, &binding.param_ref) else {
        return Ok(vec![None]);
    };
    let candidates: Vec<&'p Value> = set_params
        .iter()
        .chain(ctx.params.iter())
        .filter(|p| {
            p.get("apiVersion").and_then(Value::as_str) == Some(kind.api_version.as_str())
                && p.get("kind").and_then(Value::as_str) == Some(kind.kind.as_str())
        })
        .collect();
    // Whether the parameter kind is namespaced: known for built-in kinds; for custom resources,
    // read from the parameter objects at hand, or, when there are none, from the binding.
    let namespaced = if is_builtin_group(&kind.api_version) {
        !CLUSTER_SCOPED_KINDS.contains(&kind.kind.as_str())
    } else if candidates.is_empty() {
        !param_ref.namespace.is_empty()
    } else {
        candidates.iter().any(|p| !object_namespace(p).is_empty())
    };
    let mut namespace = "";
    if namespaced {
        namespace = if !param_ref.namespace.is_empty() {
            &param_ref.namespace
        } else if !request.namespace.is_empty() {
            &request.namespace
        } else {
            return Err(
                "cannot use namespaced paramRef in policy binding that matches cluster-scoped resources"
                    .to_owned(),
            );
        };
    } else if !param_ref.namespace.is_empty() {
        return Err(
            "paramRef.namespace must not be provided for a cluster-scoped `paramKind`".to_owned(),
        );
    }
    let in_scope = candidates
        .into_iter()
        .filter(|p| !namespaced || object_namespace(p) == namespace);
    let params: Vec<Option<&'p Value>> = if !param_ref.name.is_empty() {
        in_scope
            .filter(|p| {
                p.get("metadata")
                    .and_then(|m| m.get("name"))
                    .and_then(Value::as_str)
                    == Some(param_ref.name.as_str())
            })
            .take(1)
            .map(Some)
            .collect()
    } else if let Some(selector) = &param_ref.selector {
        in_scope
            .filter(|p| matching::selector_matches(selector, &matching::labels_of(p)))
            .map(Some)
            .collect()
    } else {
        return Err("one of name or selector must be provided".to_owned());
    };
    if params.is_empty()
        && param_ref.parameter_not_found_action == Some(ParameterNotFoundAction::Deny)
    {
        return Err(
            "no params found for policy binding with `Deny` parameterNotFoundAction".to_owned(),
        );
    }
    Ok(params)
}

/// What is known about the request besides the request itself: its namespace, and the JSON of the
/// `request` and `namespaceObject` variables. Each is worked out when first needed: most policies
/// read neither.
struct RequestFacts<'r> {
    request: &'r AdmissionRequest,
    namespaces: &'r Namespaces,
    authorizer: Option<Arc<dyn AuthorizerModel>>,
    namespace_labels: OnceLock<Option<BTreeMap<String, String>>>,
    /// `namespaceObject`: `None` for cluster-scoped requests (and Namespaces themselves).
    namespace_object: OnceLock<Option<Value>>,
    request_json: OnceLock<Value>,
    /// See [`PolicySet::keep_null_fields`].
    keep_nulls: bool,
}

impl<'r> RequestFacts<'r> {
    fn new(request: &'r AdmissionRequest, ctx: &EvalContext<'r>) -> Self {
        RequestFacts {
            request,
            namespaces: ctx.namespaces,
            authorizer: ctx.authorizer.clone(),
            namespace_labels: OnceLock::new(),
            namespace_object: OnceLock::new(),
            request_json: OnceLock::new(),
            keep_nulls: false,
        }
    }

    fn is_namespace(&self) -> bool {
        self.request.resource.resource == "namespaces" && self.request.resource.group.is_empty()
    }

    fn find_namespace(&self, name: &str) -> Option<&'r Value> {
        self.namespaces.get(name)
    }

    /// The labels the namespace selector reads: for a Namespace being created or updated, its own;
    /// otherwise those of the request's namespace.
    fn namespace_labels(&self) -> Option<&BTreeMap<String, String>> {
        self.namespace_labels
            .get_or_init(|| {
                let request = self.request;
                let selector_namespace = if self.is_namespace() {
                    request
                        .subject()
                        .and_then(|o| o.get("metadata"))
                        .and_then(|m| m.get("name"))
                        .and_then(Value::as_str)
                        .unwrap_or(&request.name)
                } else {
                    &request.namespace
                };
                if selector_namespace.is_empty() {
                    None
                } else if self.is_namespace()
                    && request.sub_resource.is_empty()
                    && matches!(request.operation, Operation::Create | Operation::Update)
                {
                    request.object.as_ref().map(matching::labels_of)
                } else {
                    let mut labels = self
                        .find_namespace(selector_namespace)
                        .map(matching::labels_of)
                        .unwrap_or_default();
                    labels
                        .entry("kubernetes.io/metadata.name".to_owned())
                        .or_insert_with(|| selector_namespace.to_owned());
                    Some(labels)
                }
            })
            .as_ref()
    }

    fn namespace_object(&self) -> Option<&Value> {
        self.namespace_object
            .get_or_init(|| {
                let name = &self.request.namespace;
                if self.is_namespace() || name.is_empty() {
                    return None;
                }
                Some(match self.find_namespace(name) {
                    Some(ns) => namespace_for_cel(ns),
                    None => json!({
                        "metadata": {
                            "name": name,
                            "labels": {"kubernetes.io/metadata.name": name},
                        },
                        "spec": {"finalizers": ["kubernetes"]},
                        "status": {"phase": "Active"},
                    }),
                })
            })
            .as_ref()
    }

    fn request_json(&self) -> &Value {
        self.request_json
            .get_or_init(|| request_for_cel(self.request))
    }
}

/// The namespace as the apiserver shows it to CEL: selected metadata fields, spec and status.
fn namespace_for_cel(namespace: &Value) -> Value {
    const KEPT: &[&str] = &[
        "name",
        "generateName",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "finalizers",
    ];
    let mut metadata = serde_json::Map::new();
    if let Some(meta) = namespace.get("metadata").and_then(Value::as_object) {
        for (key, value) in meta {
            if KEPT.contains(&key.as_str()) {
                metadata.insert(key.clone(), value.clone());
            }
        }
    }
    let mut out = serde_json::Map::new();
    out.insert("metadata".to_owned(), Value::Object(metadata));
    for key in ["spec", "status"] {
        if let Some(value) = namespace.get(key) {
            out.insert(key.to_owned(), value.clone());
        }
    }
    Value::Object(out)
}

/// The `request` variable: the admission request without its objects, fields left out when empty
/// as the apiserver's conversion leaves out empty `omitempty` fields.
fn request_for_cel(request: &AdmissionRequest) -> Value {
    let gvk = |g: &crate::admission::GroupVersionKind| json!({"group": g.group, "version": g.version, "kind": g.kind});
    let gvr = |g: &crate::admission::GroupVersionResource| json!({"group": g.group, "version": g.version, "resource": g.resource});
    let mut out = serde_json::Map::new();
    out.insert("uid".into(), json!(request.uid));
    out.insert("kind".into(), gvk(&request.kind));
    out.insert("resource".into(), gvr(&request.resource));
    if !request.sub_resource.is_empty() {
        out.insert("subResource".into(), json!(request.sub_resource));
    }
    out.insert(
        "requestKind".into(),
        gvk(request.request_kind.as_ref().unwrap_or(&request.kind)),
    );
    out.insert(
        "requestResource".into(),
        gvr(request
            .request_resource
            .as_ref()
            .unwrap_or(&request.resource)),
    );
    let request_sub = if request.request_sub_resource.is_empty() {
        &request.sub_resource
    } else {
        &request.request_sub_resource
    };
    if !request_sub.is_empty() {
        out.insert("requestSubResource".into(), json!(request_sub));
    }
    if !request.name.is_empty() {
        out.insert("name".into(), json!(request.name));
    }
    if !request.namespace.is_empty() {
        out.insert("namespace".into(), json!(request.namespace));
    }
    out.insert("operation".into(), json!(request.operation.as_str()));
    let user = &request.user_info;
    let mut user_info = serde_json::Map::new();
    if !user.username.is_empty() {
        user_info.insert("username".into(), json!(user.username));
    }
    if !user.uid.is_empty() {
        user_info.insert("uid".into(), json!(user.uid));
    }
    if !user.groups.is_empty() {
        user_info.insert("groups".into(), json!(user.groups));
    }
    if !user.extra.is_empty() {
        user_info.insert("extra".into(), Value::Object(user.extra.clone()));
    }
    out.insert("userInfo".into(), Value::Object(user_info));
    out.insert("dryRun".into(), json!(request.dry_run));
    if let Some(options) = &request.options {
        out.insert("options".into(), options.clone());
    }
    Value::Object(out)
}

/// The request's objects as CEL values, each converted on first use and shared by every policy.
struct Values<'r> {
    facts: &'r RequestFacts<'r>,
    object: OnceLock<Box<dyn Val + 'r>>,
    old_object: OnceLock<Box<dyn Val + 'r>>,
    request: OnceLock<Box<dyn Val + 'r>>,
    namespace_object: OnceLock<Box<dyn Val + 'r>>,
    /// The namespace as stored (audit annotations see it so).
    namespace_stored: OnceLock<Box<dyn Val + 'r>>,
    /// What a variable the phase does not bind reads: null.
    null: Box<dyn Val + 'r>,
    authorizer: OnceLock<Option<(AuthzVal, AuthzVal)>>,
}

impl<'r> Values<'r> {
    fn new(facts: &'r RequestFacts<'r>) -> Self {
        Values {
            facts,
            object: OnceLock::new(),
            old_object: OnceLock::new(),
            request: OnceLock::new(),
            namespace_object: OnceLock::new(),
            namespace_stored: OnceLock::new(),
            null: celx::from_optional_json(None),
            authorizer: OnceLock::new(),
        }
    }

    /// `authorizer` and `authorizer.requestResource`, when there is an authorization model.
    fn authorizer(&self) -> Option<&(AuthzVal, AuthzVal)> {
        self.authorizer
            .get_or_init(|| {
                let model = self.facts.authorizer.clone()?;
                let request = self.facts.request;
                let user = Arc::new(request.user_info.clone());
                let check = AuthorizationCheck {
                    group: request.resource.group.clone(),
                    resource: request.resource.resource.clone(),
                    subresource: request.sub_resource.clone(),
                    namespace: request.namespace.clone(),
                    name: request.name.clone(),
                    ..AuthorizationCheck::default()
                };
                Some((
                    AuthzVal::authorizer(Arc::clone(&model), Arc::clone(&user)),
                    AuthzVal::request_resource(model, user, check),
                ))
            })
            .as_ref()
    }

    fn get(&self, name: &str, phase: Phase) -> Option<&(dyn Val + 'r)> {
        let facts = self.facts;
        let value = match (name, phase) {
            ("namespaceObject", Phase::Match) => &self.null,
            ("namespaceObject", Phase::Audit) => self.namespace_stored.get_or_init(|| {
                let stored = (!facts.is_namespace() && !facts.request.namespace.is_empty())
                    .then(|| facts.find_namespace(&facts.request.namespace))
                    .flatten();
                match stored {
                    Some(namespace) => celx::from_json(namespace),
                    None => celx::from_optional_json(facts.namespace_object()),
                }
            }),
            ("authorizer" | "authorizer.requestResource", Phase::Message | Phase::Audit) => {
                return None
            }
            (name, _) => return self.get_bound(name),
        };
        Some(value.as_ref())
    }

    /// A variable as the validations see it.
    fn get_bound(&self, name: &str) -> Option<&(dyn Val + 'r)> {
        let facts = self.facts;
        let value = match name {
            "object" => self.object.get_or_init(|| {
                celx::from_optional_json_with(facts.request.object.as_ref(), facts.keep_nulls)
            }),
            "oldObject" => self.old_object.get_or_init(|| {
                celx::from_optional_json_with(facts.request.old_object.as_ref(), facts.keep_nulls)
            }),
            "request" => self
                .request
                .get_or_init(|| celx::from_json(facts.request_json())),
            "namespaceObject" => self
                .namespace_object
                .get_or_init(|| celx::from_optional_json(facts.namespace_object())),
            "authorizer" => return self.authorizer().map(|(a, _)| a as &dyn Val),
            "authorizer.requestResource" => return self.authorizer().map(|(_, r)| r as &dyn Val),
            _ => return None,
        };
        Some(value.as_ref())
    }
}

/// A composited variable's value once computed (or why it could not be), living for `'a`.
type VariableValue<'a> = Result<Box<dyn Val + 'a>, EvalError>;

/// The variables an expression that reads only the request sees in `phase`: what the values of
/// [`SharedVariables`] are computed with.
struct PhaseResolver<'u, 'r> {
    values: &'u Values<'r>,
    phase: Phase,
}

impl VariableResolver for PhaseResolver<'_, '_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        celx::resolve_path(variable, |name| self.values.get(name, self.phase))
    }
}

/// One [`PhaseResolver`] per phase, indexed by `Phase as usize`.
type PhaseResolvers<'u, 'r> = [PhaseResolver<'u, 'r>; 4];

fn phase_resolvers<'u, 'r>(values: &'u Values<'r>) -> PhaseResolvers<'u, 'r> {
    [Phase::Match, Phase::Validate, Phase::Message, Phase::Audit]
        .map(|phase| PhaseResolver { values, phase })
}

/// Composited variables whose expression reads only the request, by program: policies of one
/// request that declare the same variable (the library's `spec`) compute it once instead of once
/// each, and every policy reads the one value, uncopied. The error is kept without the variable's
/// name. A value lives as long as the request's values (`'s`), not one evaluation.
struct SharedVariables<'s, 'r> {
    policies: &'s [Policy],
    resolvers: &'s PhaseResolvers<'s, 'r>,
    /// Made when the first shared variable is needed.
    table: OnceLock<SharedTable<'s>>,
}

/// The slots of [`SharedVariables`]: `keys` sorted, `values[i]` the value of `keys[i]` and the
/// cost it took to compute.
struct SharedTable<'s> {
    keys: Vec<(usize, u8)>,
    values: Vec<OnceLock<(VariableValue<'s>, u64)>>,
}

impl<'s, 'r> SharedVariables<'s, 'r> {
    fn new(policies: &'s [Policy], resolvers: &'s PhaseResolvers<'s, 'r>) -> Self {
        SharedVariables {
            policies,
            resolvers,
            table: OnceLock::new(),
        }
    }

    /// Where `expr`'s value is kept in `phase`, when it reads only the request: the program, and
    /// the phase when it reads `namespaceObject` (which differs between phases; nothing else a
    /// request-only value reads does).
    fn key(expr: &Expr, phase: Phase) -> Option<(usize, u8)> {
        let references = expr.program.references();
        if !references.request_only() {
            return None;
        }
        let program = Arc::as_ptr(&expr.program) as usize;
        Some((
            program,
            if references.namespace_object {
                phase as u8
            } else {
                0
            },
        ))
    }

    fn table(&self) -> &SharedTable<'s> {
        self.table.get_or_init(|| {
            let mut keys: Vec<(usize, u8)> = self
                .policies
                .iter()
                .flat_map(|policy| &policy.variables)
                .flat_map(|expr| {
                    [Phase::Match, Phase::Validate, Phase::Message, Phase::Audit]
                        .map(|phase| Self::key(expr, phase))
                })
                .flatten()
                .collect();
            keys.sort_unstable();
            keys.dedup();
            let values = keys.iter().map(|_| OnceLock::new()).collect();
            SharedTable { keys, values }
        })
    }

    /// The value of the variable `expr` in `phase`, computed on first use; `None` when it is not
    /// shared (it reads more than the request).
    ///
    /// Each validation call pays the variable's cost from its own budget, as it would computing it:
    /// the first by computing it, the others when they read the kept value. A value that ran out
    /// of the first call's budget is not kept, since another call may have enough left.
    fn get(&self, expr: &Expr, phase: Phase) -> Option<Result<&(dyn Val + 's), EvalError>> {
        let key = Self::key(expr, phase)?;
        let table = self.table();
        let slot = &table.values[table.keys.binary_search(&key).ok()?];
        let value = match slot.get() {
            Some((value, used)) => {
                if let Err(message) = celx::cost::charge_call(*used) {
                    return Some(Err(EvalError {
                        message: message.to_owned(),
                    }));
                }
                value
            }
            None => {
                let resolvers: &'s PhaseResolvers<'s, 'r> = self.resolvers;
                let before = celx::cost::call_left();
                let value = kept(celx::evaluate_value(
                    &expr.program,
                    &resolvers[phase as usize],
                ));
                let used = before
                    .zip(celx::cost::call_left())
                    .map_or(0, |(before, after)| before.saturating_sub(after));
                if let Err(error) = &value {
                    if error.message.contains(celx::cost::OVER_CALL_BUDGET) {
                        return Some(Err(error.clone()));
                    }
                }
                &slot.get_or_init(|| (value, used)).0
            }
        };
        Some(value.as_ref().map(AsRef::as_ref).map_err(Clone::clone))
    }
}

/// A variable's value as it is kept: as computed. Tests can ask for the deep copy that values
/// were once kept as, to compare the two ([`tests::DEEP_COPY`]).
fn kept(value: VariableValue<'_>) -> VariableValue<'_> {
    #[cfg(test)]
    if tests::DEEP_COPY.get() {
        return value.and_then(|value| celx::to_static(value.as_ref()).map_err(EvalError::from));
    }
    value
}

/// One computed composited variable of an evaluation, in front of those computed before it.
/// Each is kept in a frame of the call that computed it ([`Unit::walk`]), so a value may borrow
/// from the request's values and the variables before it for as long as the evaluation lasts.
#[derive(Debug)]
struct Frame<'k> {
    index: usize,
    value: Result<CowVal<'k, 'k>, EvalError>,
    before: Option<&'k Frame<'k>>,
}

impl<'k> Frame<'k> {
    fn find(mut frame: Option<&'k Frame<'k>>, index: usize) -> Option<&'k Frame<'k>> {
        while let Some(found) = frame {
            if found.index == index {
                return Some(found);
            }
            frame = found.before;
        }
        None
    }
}

/// `variables`, as expressions see it: the computed variables, by name.
#[derive(Debug, Clone, Copy)]
struct VariablesView<'k> {
    names: &'k [String],
    frames: Option<&'k Frame<'k>>,
}

impl Val for VariablesView<'_> {
    fn get_type(&self) -> &Type {
        &MAP_TYPE
    }

    fn cel_type() -> &'static Type {
        &MAP_TYPE
    }

    fn as_indexer<'b, 'v>(&'b self) -> Option<&'b (dyn Indexer + 'v)>
    where
        Self: 'v,
    {
        Some(self)
    }

    fn as_container(&self) -> Option<&dyn Container> {
        Some(self)
    }

    fn clone_as_boxed<'v>(&self) -> Box<dyn Val + 'v>
    where
        Self: 'v,
    {
        Box::new(*self)
    }
}

impl<'k> VariablesView<'k> {
    fn lookup(&self, idx: &dyn Val) -> Result<&'k (dyn Val + 'k), ExecutionError> {
        let name = idx
            .downcast_ref::<CelString>()
            .map(|s| s.inner())
            .unwrap_or_default();
        let index = self.names.iter().position(|n| n == name);
        match index.and_then(|i| Frame::find(self.frames, i)) {
            Some(Frame {
                value: Ok(value), ..
            }) => Ok(value.as_ref()),
            Some(Frame {
                value: Err(error), ..
            }) => Err(ExecutionError::function_error(
                celx::RAW_ERROR,
                &error.message,
            )),
            None => Err(ExecutionError::no_such_key(name)),
        }
    }
}

impl Indexer for VariablesView<'_> {
    fn get<'b, 'v>(&'b self, idx: &dyn Val) -> Result<CowVal<'b, 'v>, ExecutionError>
    where
        Self: 'v,
    {
        self.lookup(idx).map(CowVal::Borrowed)
    }

    fn steal<'v>(self: Box<Self>, idx: &dyn Val) -> Result<Box<dyn Val + 'v>, ExecutionError>
    where
        Self: 'v,
    {
        self.lookup(idx).map(|v| v.clone_as_boxed())
    }
}

impl Container for VariablesView<'_> {
    fn contains(&self, value: &dyn Val) -> Result<bool, ExecutionError> {
        Ok(value
            .downcast_ref::<CelString>()
            .is_some_and(|s| self.names.iter().any(|n| n == s.inner())))
    }
}

/// The variables of one evaluation, as CEL looks them up.
struct UnitResolver<'k, 'r> {
    values: &'k Values<'r>,
    phase: Phase,
    params: &'k (dyn Val + 'k),
    variables: VariablesView<'k>,
}

impl VariableResolver for UnitResolver<'_, '_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        celx::resolve_path(variable, |name| match name {
            "params" => Some(self.params),
            "variables" if !self.variables.names.is_empty() => Some(&self.variables),
            _ => self.values.get(name, self.phase),
        })
    }
}

/// The phases of one policy's evaluation, which the apiserver runs apart: each sees its own
/// variables, computes the composited `variables` afresh and has its own cost budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// `matchConditions`: no `namespaceObject` (null), 2,500,000 of cost.
    Match,
    /// `validations`: everything bound, the call's 10,000,000 of cost.
    Validate,
    /// `messageExpression`s: no `authorizer`, what the validations left of the budget.
    Message,
    /// `auditAnnotations`: no `authorizer`, the namespace as stored, a budget of their own.
    Audit,
}

/// Policies with more composited variables than this evaluate a phase on a thread with a large
/// stack: [`Unit::walk`] nests one call per variable it computes.
const INLINE_VARIABLES: usize = 64;

/// The result of one expression of a phase, errors worded as the apiserver words them.
type ExprOutcome = Result<Outcome, String>;

/// One phase of the evaluation of a policy, with a parameter, against the request's values.
struct Unit<'u, 's, 'r> {
    policy: &'u Policy,
    values: &'u Values<'r>,
    shared: &'u SharedVariables<'s, 'r>,
    params: &'u (dyn Val + 'u),
    phase: Phase,
}

impl<'r> Unit<'_, '_, 'r> {
    /// Evaluate `exprs` in order, each after the variables it needs (closed under their own needs,
    /// computed in declaration order, each at most once in the phase); stop after the first
    /// outcome `stop` accepts. The outcomes, in order.
    fn outcomes(
        &self,
        exprs: &[&Expr],
        stop: &(dyn Fn(&ExprOutcome) -> bool + Sync),
    ) -> Vec<ExprOutcome> {
        let walk = || {
            let mut out = Vec::with_capacity(exprs.len());
            self.walk(None, exprs, &mut out, stop);
            out
        };
        if self.policy.variables.len() <= INLINE_VARIABLES {
            return walk();
        }
        // On another thread, as part of this thread's validation call: its budget goes along and
        // what is left comes back.
        let left = celx::cost::call_left();
        celx::on_large_stack(|| {
            let (out, left) = celx::cost::with_optional_budget(left, walk);
            (out, left)
        })
        .map(|(out, left)| {
            celx::cost::set_call_left(left);
            out
        })
        .unwrap_or_else(walk)
    }

    /// Evaluate what is left of `exprs` (those past `out`) with the variables of `frames`,
    /// computing a missing variable into a frame of a nested call, which then goes on.
    fn walk<'k>(
        &self,
        frames: Option<&'k Frame<'k>>,
        exprs: &[&Expr],
        out: &mut Vec<ExprOutcome>,
        stop: &(dyn Fn(&ExprOutcome) -> bool + Sync),
    ) {
        while let Some(expr) = exprs.get(out.len()) {
            let missing = expr
                .variables
                .iter()
                .copied()
                .find(|&index| Frame::find(frames, index).is_none());
            let resolver = self.resolver(frames);
            let Some(index) = missing else {
                let outcome =
                    celx::evaluate_with(&expr.program, &resolver, Outcome::of).map_err(|error| {
                        format!(
                            "expression '{}' resulted in error: {}",
                            expr.source, error.message
                        )
                    });
                let done = stop(&outcome);
                out.push(outcome);
                if done {
                    return;
                }
                continue;
            };
            let variable = &self.policy.variables[index];
            let value = match self.shared.get(variable, self.phase) {
                Some(Ok(value)) => Ok(CowVal::Borrowed(value)),
                Some(Err(error)) => Err(error),
                None => kept(celx::evaluate_value(&variable.program, &resolver)).map(CowVal::Owned),
            };
            let frame = Frame {
                index,
                value: value.map_err(|error| EvalError {
                    message: format!(
                        "composited variable \"{}\" fails to evaluate: {}",
                        self.policy.variable_names[index], error.message
                    ),
                }),
                before: frames,
            };
            return self.walk(Some(&frame), exprs, out, stop);
        }
    }

    fn resolver<'k>(&'k self, frames: Option<&'k Frame<'k>>) -> UnitResolver<'k, 'r> {
        UnitResolver {
            values: self.values,
            phase: self.phase,
            params: self.params,
            variables: VariablesView {
                names: &self.policy.variable_names,
                frames,
            },
        }
    }

    /// Evaluate every one of `exprs`.
    fn all(&self, exprs: &[&Expr]) -> Vec<ExprOutcome> {
        self.outcomes(exprs, &|_| false)
    }
}

/// Evaluate one policy with one parameter (the apiserver's validator), phase by phase.
fn evaluate_unit<'r>(
    policy: &Policy,
    values: &Values<'r>,
    shared: &SharedVariables<'_, 'r>,
    param: Option<&Value>,
) -> EvaluationOutcome {
    if values.facts.authorizer.is_none() && policy_needs_authorizer(policy) {
        return EvaluationOutcome::NotEvaluable {
            reason: "the policy uses `authorizer` and no authorization model was given".to_owned(),
        };
    }
    let params = celx::from_optional_json(param);
    let params = params.as_ref();
    let fail = policy.failure_policy == FailurePolicy::Fail;
    let unit = |phase| Unit {
        policy,
        values,
        shared,
        params,
        phase,
    };

    // Match conditions: any false skips; errors follow the failure policy.
    if !policy.match_conditions.is_empty() {
        let exprs: Vec<&Expr> = policy.match_conditions.iter().map(|(_, e)| e).collect();
        let (conditions, _) = celx::cost::with_budget(celx::cost::MATCH_CONDITIONS_BUDGET, || {
            let outcomes =
                unit(Phase::Match).outcomes(&exprs, &|o| matches!(o, Ok(Outcome::Bool(false))));
            let mut errors = Vec::new();
            for outcome in outcomes {
                match outcome {
                    Ok(Outcome::Bool(false)) => return Err(()),
                    Ok(_) => {}
                    Err(error) => errors.push(error),
                }
            }
            Ok(errors)
        });
        let Ok(mut errors) = conditions else {
            return EvaluationOutcome::ConditionsNotMet;
        };
        if !errors.is_empty() {
            if !fail {
                return EvaluationOutcome::ConditionsNotMet;
            }
            let message = if errors.len() == 1 {
                errors.remove(0)
            } else {
                format!("[{}]", errors.join(", "))
            };
            return EvaluationOutcome::Evaluated {
                failures: vec![Failure {
                    source: FailureSource::MatchConditions,
                    message,
                    reason: "Invalid".to_owned(),
                    error: true,
                }],
                audit_annotations: Vec::new(),
            };
        }
    }

    // Validations, then the messages of those that failed with what is left of the budget.
    let exprs: Vec<&Expr> = policy.validations.iter().map(|v| &v.expr).collect();
    let (outcomes, left) = celx::cost::with_budget(celx::cost::CALL_COST_BUDGET, || {
        unit(Phase::Validate).all(&exprs)
    });
    let (messages, _) = celx::cost::with_budget(left, || {
        // The message expressions of the validations that failed, evaluated in one phase.
        let failed: Vec<&CompiledValidation> = policy
            .validations
            .iter()
            .zip(&outcomes)
            .filter(|(_, outcome)| !matches!(outcome, Ok(Outcome::Bool(true)) | Err(_)))
            .map(|(validation, _)| validation)
            .collect();
        let exprs: Vec<&Expr> = failed
            .iter()
            .filter_map(|v| v.message_expression.as_ref())
            .collect();
        let mut evaluated = unit(Phase::Message).all(&exprs).into_iter();
        policy
            .validations
            .iter()
            .zip(&outcomes)
            .map(|(validation, outcome)| match outcome {
                Ok(Outcome::Bool(true)) | Err(_) => Ok(None),
                Ok(_) => {
                    let evaluated = validation
                        .message_expression
                        .as_ref()
                        .and_then(|_| evaluated.next());
                    failure_message(validation, evaluated).map(Some)
                }
            })
            .collect::<Vec<_>>()
    });
    // Running out of budget in a message fails every validation that did not fail on its own.
    let out_of_budget = messages.iter().find_map(|m| m.as_ref().err());
    let mut failures = Vec::new();
    for (index, (validation, (outcome, message))) in policy
        .validations
        .iter()
        .zip(outcomes.into_iter().zip(messages.iter()))
        .enumerate()
    {
        let error = |message: String| Failure {
            source: FailureSource::Validation(index),
            message,
            reason: "Invalid".to_owned(),
            error: true,
        };
        match (outcome, out_of_budget) {
            (Err(message), _) => {
                if fail {
                    failures.push(error(message));
                }
            }
            (Ok(_), Some(budget)) => {
                if fail {
                    failures.push(error(format!("failed messageExpression: {budget}")));
                }
            }
            (Ok(Outcome::Bool(true)), None) => {}
            (Ok(_), None) => failures.push(Failure {
                source: FailureSource::Validation(index),
                message: message.clone().ok().flatten().unwrap_or_default(),
                reason: validation
                    .reason
                    .clone()
                    .unwrap_or_else(|| "Invalid".to_owned()),
                error: false,
            }),
        }
    }

    let (audit_annotations, annotation_failures) =
        celx::cost::with_call_budget(|| audit_annotations(&unit(Phase::Audit), policy, fail));
    failures.extend(annotation_failures);
    EvaluationOutcome::Evaluated {
        failures,
        audit_annotations,
    }
}

/// The audit annotations of one evaluation, and the failures of those that could not be worked out.
fn audit_annotations(
    unit: &Unit<'_, '_, '_>,
    policy: &Policy,
    fail: bool,
) -> (Vec<(String, String)>, Vec<Failure>) {
    let mut audit_annotations = Vec::new();
    let mut failures = Vec::new();
    let exprs: Vec<&Expr> = policy.audit_annotations.iter().map(|(_, e)| e).collect();
    let outcomes = unit.all(&exprs);
    for ((key, expr), outcome) in policy.audit_annotations.iter().zip(outcomes) {
        match outcome {
            Ok(Outcome::String(value)) => {
                let mut value = value.trim().to_owned();
                if !value.is_empty() {
                    if value.len() > MAX_AUDIT_VALUE_BYTES {
                        let mut end = MAX_AUDIT_VALUE_BYTES;
                        while !value.is_char_boundary(end) {
                            end -= 1;
                        }
                        value.truncate(end);
                    }
                    audit_annotations.push((key.clone(), value));
                }
            }
            Ok(Outcome::Null) => {}
            Ok(Outcome::Bool(_)) => failures.push(annotation_type_error(key, expr, "bool")),
            Ok(Outcome::Other(kind)) => failures.push(annotation_type_error(key, expr, &kind)),
            Err(message) => {
                if fail {
                    failures.push(Failure {
                        source: FailureSource::AuditAnnotation(key.clone()),
                        message,
                        reason: "Invalid".to_owned(),
                        error: true,
                    });
                }
            }
        }
    }
    (audit_annotations, failures)
}

fn annotation_type_error(key: &str, expr: &Expr, kind: &str) -> Failure {
    Failure {
        source: FailureSource::AuditAnnotation(key.to_owned()),
        message: format!(
            "valueExpression '{}' resulted in unsupported return type: {kind}. Return type must be either string or null.",
            expr.source
        ),
        reason: "Invalid".to_owned(),
        error: true,
    }
}

/// The message of a failed validation: the `messageExpression`'s, else `message`, else the
/// expression itself. An error only when the message ran out of the call's cost budget (the
/// apiserver then fails the validations instead).
/// `evaluated` is the outcome of the `messageExpression`, when there is one.
fn failure_message(
    validation: &CompiledValidation,
    evaluated: Option<ExprOutcome>,
) -> Result<String, String> {
    if let Some(outcome) = evaluated {
        match outcome {
            Ok(Outcome::String(message)) => {
                let message = message.trim();
                if !message.is_empty()
                    && message.len() <= MAX_MESSAGE_BYTES
                    && !message.contains('\n')
                {
                    return Ok(message.to_owned());
                }
            }
            Err(error) if error.contains(celx::cost::OVER_CALL_BUDGET) => {
                return Err(celx::cost::OVER_CALL_BUDGET.to_owned())
            }
            _ => {}
        }
    }
    if let Some(message) = &validation.message {
        let message = message.trim();
        if !message.is_empty() {
            return Ok(message.to_owned());
        }
    }
    Ok(format!(
        "failed expression: {}",
        validation.expr.source.trim()
    ))
}

fn policy_needs_authorizer(policy: &Policy) -> bool {
    policy
        .match_conditions
        .iter()
        .any(|(_, e)| e.needs_authorizer)
        || policy.validations.iter().any(|v| v.expr.needs_authorizer)
        || policy
            .audit_annotations
            .iter()
            .any(|(_, e)| e.needs_authorizer)
}

// ---------------------------------------------------------------------------------------------
// Reading policies and bindings.

enum Read {
    Policy(Policy),
    Binding(Binding),
    Other,
}

fn read_document(file: &str, doc: &Document) -> Result<Read, Vec<SourceError>> {
    let value = &doc.value;
    let api_version = value
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = value
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !api_version.starts_with(API_GROUP) {
        return Ok(Read::Other);
    }
    match kind {
        "ValidatingAdmissionPolicy" => read_policy(file, doc).map(Read::Policy),
        "ValidatingAdmissionPolicyBinding" => read_binding(file, doc).map(Read::Binding),
        _ => Ok(Read::Other),
    }
}

/// A serde error placed at the token it names, when it names one.
fn shape_error(file: &str, doc: &Document, what: &str, error: &serde_json::Error) -> SourceError {
    let message = error.to_string();
    let token = message
        .split('`')
        .nth(1)
        .filter(|t| !t.is_empty())
        .unwrap_or("");
    let (line, column) = if token.is_empty() {
        (doc.first_line, 0)
    } else {
        doc.locate(token, 0)
    };
    SourceError::new(file, line, column, format!("{what}: {message}"))
}

/// Where byte `offset` of the expression `source` is in the file. Expressions written as YAML
/// folded scalars (`expression: >-`) are not in the file verbatim (their lines are joined with
/// spaces): then the expression's first line is found, and the word at `offset` is looked for from
/// there.
fn locate_in_expression(doc: &Document, source: &str, offset: usize) -> (usize, usize) {
    let (line, column) = doc.locate(source, offset);
    if column > 0 {
        return (line, column);
    }
    let trimmed = source.trim_start();
    let lines: Vec<&str> = doc.text.lines().collect();
    let start = [40, 20, 10].iter().find_map(|&n| {
        let head: String = trimmed.chars().take(n).collect();
        lines.iter().position(|l| l.contains(head.as_str()))
    });
    let Some(start) = start else {
        return (line, column);
    };
    // The word around `offset` (the one before it when `offset` is at a space or the end).
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let is_space = |c: char| c.is_whitespace();
    let mut word_start = source[..offset].rfind(is_space).map_or(0, |at| at + 1);
    let mut word_end = source[offset..]
        .find(is_space)
        .map_or(source.len(), |at| offset + at);
    if word_start >= word_end {
        let before = source[..offset].trim_end();
        word_end = before.len();
        word_start = before.rfind(is_space).map_or(0, |at| at + 1);
    }
    let word = &source[word_start..word_end];
    if !word.is_empty() {
        for (index, text) in lines.iter().enumerate().skip(start) {
            if let Some(at) = text.find(word) {
                let within = offset.saturating_sub(word_start);
                return (doc.first_line + index, at + within + 1);
            }
        }
    }
    let column = lines[start].find(|c: char| !c.is_whitespace()).unwrap_or(0) + 1;
    (doc.first_line + start, column)
}

struct PolicyReader<'d> {
    file: &'d str,
    doc: &'d Document,
    what: String,
    errors: Vec<SourceError>,
    variable_names: Vec<String>,
    variable_needs: Vec<(Vec<usize>, bool)>,
    /// The type of each variable read so far.
    variable_types: Vec<Ty>,
    /// The policy has a `paramKind`, so its expressions may use `params`.
    has_params: bool,
}

impl PolicyReader<'_> {
    fn error(&mut self, snippet: &str, message: String) {
        let (line, column) = if snippet.is_empty() {
            (self.doc.first_line, 0)
        } else {
            self.doc.locate(snippet, 0)
        };
        self.errors.push(SourceError::new(
            self.file,
            line,
            column,
            format!("{}: {message}", self.what),
        ));
    }

    /// An expression that does not compile (or type-check), placed in the file.
    fn compile_error(&mut self, path: &str, source: &str, error: &celx::CompileError) {
        let (line, column) = locate_in_expression(self.doc, source, error.offset);
        self.errors.push(SourceError::new(
            self.file,
            line,
            column,
            format!(
                "{}: {path}: Invalid value: compilation failed: {error}",
                self.what
            ),
        ));
    }

    /// Compile `source` (at `path`); `variables_before` is how many variables it may refer to,
    /// `want` what it must evaluate to.
    fn compile(
        &mut self,
        path: &str,
        source: &str,
        variables_before: usize,
        want: Want,
    ) -> Option<Expr> {
        if source.trim().is_empty() {
            self.error("", format!("{path}: Required value: expression is empty"));
            return None;
        }
        let program = match celx::compile(source) {
            Ok(program) => program,
            Err(error) => {
                self.compile_error(path, source, &error);
                return None;
            }
        };
        let refs = program.references().clone();
        let mut needed = BTreeSet::new();
        let mut needs_authorizer = refs.authorizer;
        let direct: Vec<usize> = if refs.all_variables {
            (0..variables_before).collect()
        } else {
            let mut direct = Vec::new();
            for name in &refs.variables {
                match self.variable_names[..variables_before]
                    .iter()
                    .position(|n| n == name)
                {
                    Some(index) => direct.push(index),
                    None => {
                        let offset = source.find(name.as_str()).unwrap_or(0);
                        let (line, column) = locate_in_expression(self.doc, source, offset);
                        self.errors.push(SourceError::new(
                            self.file,
                            line,
                            column,
                            format!(
                                "{}: {path}: Invalid value: compilation failed: undefined field '{name}'",
                                self.what
                            ),
                        ));
                        return None;
                    }
                }
            }
            direct
        };
        for index in direct {
            needed.insert(index);
            let (deps, auth) = &self.variable_needs[index];
            needed.extend(deps.iter().copied());
            needs_authorizer |= auth;
        }
        // Type-check as the apiserver does when the policy is created: messages have no
        // `authorizer`, only a policy with a `paramKind` has `params`.
        let mut declarations =
            Declarations::admission(self.has_params, !path.ends_with("messageExpression"));
        declarations.composited = Some(
            self.variable_names[..variables_before]
                .iter()
                .cloned()
                .zip(self.variable_types.iter().cloned())
                .collect(),
        );
        let ty = match program.type_check(&declarations) {
            Ok(ty) if want.accepts(&ty) => ty,
            Ok(ty) => {
                self.error(
                    source,
                    format!(
                        "{path}: Invalid value: must evaluate to {} but got {ty}",
                        want.words()
                    ),
                );
                return None;
            }
            Err(error) => {
                self.compile_error(path, source, &error);
                return None;
            }
        };
        Some(Expr {
            source: source.to_owned(),
            program,
            variables: needed.into_iter().collect(),
            needs_authorizer,
            ty,
        })
    }
}

/// The name, the typed document and a reader for errors, for a policy or binding document. The
/// name is required; its absence is reported like the apiserver does and reading goes on.
fn start_reading<'d, T: serde::de::DeserializeOwned>(
    file: &'d str,
    doc: &'d Document,
    kind: &str,
) -> Result<(String, T, PolicyReader<'d>), Vec<SourceError>> {
    let name = doc
        .value
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let what = format!("{kind} '{name}'");
    let parsed: T = serde_json::from_value(doc.value.clone())
        .map_err(|e| vec![shape_error(file, doc, &what, &e)])?;
    let mut reader = PolicyReader {
        file,
        doc,
        what,
        errors: Vec::new(),
        variable_names: Vec::new(),
        variable_needs: Vec::new(),
        variable_types: Vec::new(),
        has_params: false,
    };
    if name.is_empty() {
        reader.error("", "metadata.name: Required value".to_owned());
    }
    Ok((name, parsed, reader))
}

fn read_policy(file: &str, doc: &Document) -> Result<Policy, Vec<SourceError>> {
    let (name, parsed, mut reader) =
        start_reading::<PolicyDoc>(file, doc, "ValidatingAdmissionPolicy")?;
    let spec = parsed.spec;
    let match_constraints = match spec.match_constraints {
        Some(m) if !m.resource_rules.is_empty() => m,
        _ => {
            reader.error(
                "",
                "spec.matchConstraints.resourceRules: Required value".to_owned(),
            );
            MatchResources::default()
        }
    };
    check_match_resources(&mut reader, "spec.matchConstraints", &match_constraints);
    if spec.validations.is_empty() && spec.audit_annotations.is_empty() {
        reader.error(
            "",
            "spec.validations: Required value: validations or auditAnnotations must contain at least one item"
                .to_owned(),
        );
    }
    if let Some(kind) = &spec.param_kind {
        if kind.api_version.is_empty() || kind.kind.is_empty() {
            reader.error(
                "paramKind",
                "spec.paramKind: Required value: apiVersion and kind are required".to_owned(),
            );
        }
    }
    reader.has_params = spec.param_kind.is_some();
    let mut variables = Vec::new();
    for (index, variable) in spec.variables.iter().enumerate() {
        let path = format!("spec.variables[{index}].expression");
        if reader.variable_names.contains(&variable.name) {
            reader.error(
                &variable.name,
                format!(
                    "spec.variables[{index}].name: Duplicate value: \"{}\"",
                    variable.name
                ),
            );
        }
        let compiled = reader.compile(&path, &variable.expression, index, Want::Any);
        reader.variable_names.push(variable.name.clone());
        reader.variable_types.push(
            compiled
                .as_ref()
                .map_or(Ty::Dyn, |expr: &Expr| expr.ty.clone()),
        );
        match compiled {
            Some(expr) => {
                reader
                    .variable_needs
                    .push((expr.variables.clone(), expr.needs_authorizer));
                variables.push(expr);
            }
            None => reader.variable_needs.push((Vec::new(), false)),
        }
    }
    let all = reader.variable_names.len();
    let mut match_conditions = Vec::new();
    for (index, condition) in spec.match_conditions.iter().enumerate() {
        let path = format!("spec.matchConditions[{index}].expression");
        // Match conditions cannot use composited variables.
        if let Some(expr) = reader.compile(&path, &condition.expression, 0, Want::Bool) {
            match_conditions.push((condition.name.clone(), expr));
        }
    }
    let mut validations = Vec::new();
    for (index, validation) in spec.validations.iter().enumerate() {
        let expr = reader.compile(
            &format!("spec.validations[{index}].expression"),
            &validation.expression,
            all,
            Want::Bool,
        );
        let message_expression = match &validation.message_expression {
            Some(source) => reader.compile(
                &format!("spec.validations[{index}].messageExpression"),
                source,
                all,
                Want::String,
            ),
            None => None,
        };
        if let Some(expr) = expr {
            validations.push(CompiledValidation {
                expr,
                message: validation.message.clone(),
                message_expression,
                reason: validation.reason.clone(),
            });
        }
    }
    let mut audit_annotations = Vec::new();
    for (index, annotation) in spec.audit_annotations.iter().enumerate() {
        if annotation.key.is_empty() {
            reader.error(
                "",
                format!("spec.auditAnnotations[{index}].key: Required value"),
            );
        }
        if let Some(expr) = reader.compile(
            &format!("spec.auditAnnotations[{index}].valueExpression"),
            &annotation.value_expression,
            all,
            Want::StringOrNull,
        ) {
            audit_annotations.push((annotation.key.clone(), expr));
        }
    }
    if !reader.errors.is_empty() {
        return Err(reader.errors);
    }
    Ok(Policy {
        name,
        failure_policy: spec.failure_policy.unwrap_or_default(),
        param_kind: spec.param_kind,
        match_constraints,
        match_conditions,
        variable_names: reader.variable_names,
        variables,
        validations,
        audit_annotations,
    })
}

fn check_selector(reader: &mut PolicyReader<'_>, path: &str, selector: Option<&LabelSelector>) {
    if let Some(selector) = selector {
        if let Err(message) = matching::validate_selector(selector) {
            let at = selector
                .match_expressions
                .first()
                .map(|r| r.key.clone())
                .unwrap_or_default();
            reader.error(&at, format!("{path}: {message}"));
        }
    }
}

fn check_match_resources(reader: &mut PolicyReader<'_>, path: &str, criteria: &MatchResources) {
    check_selector(
        reader,
        &format!("{path}.namespaceSelector"),
        criteria.namespace_selector.as_ref(),
    );
    check_selector(
        reader,
        &format!("{path}.objectSelector"),
        criteria.object_selector.as_ref(),
    );
    let rules = criteria
        .resource_rules
        .iter()
        .map(|r| ("resourceRules", r))
        .chain(
            criteria
                .exclude_resource_rules
                .iter()
                .map(|r| ("excludeResourceRules", r)),
        );
    for (list, rule) in rules {
        for (field, values) in [
            ("operations", &rule.operations),
            ("apiGroups", &rule.api_groups),
            ("apiVersions", &rule.api_versions),
            ("resources", &rule.resources),
        ] {
            if values.is_empty() {
                reader.error("", format!("{path}.{list}: {field}: Required value"));
            }
        }
        for operation in &rule.operations {
            if !matching::known_operation(operation) {
                reader.error(
                    operation,
                    format!(
                        "{path}: operations: Unsupported value: \"{operation}\": supported values: \"*\", \"CONNECT\", \"CREATE\", \"DELETE\", \"UPDATE\""
                    ),
                );
            }
        }
    }
}

fn read_binding(file: &str, doc: &Document) -> Result<Binding, Vec<SourceError>> {
    let (name, parsed, mut reader) =
        start_reading::<BindingDoc>(file, doc, "ValidatingAdmissionPolicyBinding")?;
    let spec = parsed.spec;
    if spec.policy_name.is_empty() {
        reader.error("", "spec.policyName: Required value".to_owned());
    }
    let actions = &spec.validation_actions;
    if actions.is_empty() {
        reader.error("", "spec.validationActions: Required value".to_owned());
    }
    if actions.contains(&ValidationAction::Deny) && actions.contains(&ValidationAction::Warn) {
        reader.error(
            "Warn",
            "spec.validationActions: Invalid value: must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)".to_owned(),
        );
    }
    let distinct: std::collections::HashSet<&ValidationAction> = actions.iter().collect();
    if distinct.len() != actions.len() {
        reader.error("", "spec.validationActions: Duplicate value".to_owned());
    }
    if let Some(param_ref) = &spec.param_ref {
        if param_ref.name.is_empty() == param_ref.selector.is_none() {
            reader.error(
                "paramRef",
                "spec.paramRef: Invalid value: one of name or selector must be set".to_owned(),
            );
        }
        if param_ref.parameter_not_found_action.is_none() {
            reader.error(
                "paramRef",
                "spec.paramRef.parameterNotFoundAction: Required value".to_owned(),
            );
        }
        check_selector(
            &mut reader,
            "spec.paramRef.selector",
            param_ref.selector.as_ref(),
        );
    }
    if let Some(criteria) = &spec.match_resources {
        check_match_resources(&mut reader, "spec.matchResources", criteria);
    }
    if !reader.errors.is_empty() {
        return Err(reader.errors);
    }
    Ok(Binding {
        name,
        policy_name: spec.policy_name,
        param_ref: spec.param_ref,
        match_resources: spec.match_resources,
        validation_actions: spec.validation_actions,
    })
}
