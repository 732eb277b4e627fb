//! `policies.kyverno.io` ValidatingPolicy and NamespacedValidatingPolicy (`v1alpha1`, `v1beta1`,
//! `v1`), and the CEL PolicyExceptions that name them.
//!
//! A ValidatingPolicy carries the fields of a ValidatingAdmissionPolicy (`matchConstraints`,
//! `matchConditions`, `variables`, `validations`, `auditAnnotations`, `failurePolicy`) plus Kyverno's
//! own (`validationActions`, `evaluation`, `autogen`, `webhookConfiguration`). It is evaluated by
//! building that ValidatingAdmissionPolicy, bound to everything, and running it through [`vap`], so
//! CEL, its Kubernetes libraries and its budgets are the apiserver's. What Kyverno does differently
//! is applied on top:
//!
//! - the answer is one result per policy: the first validation that fails (or errs) decides it, an
//!   error stays an error whatever the `failurePolicy` (which only decides what an erring match
//!   condition does), and a failed validation without a message gets Kyverno's default one;
//! - a policy written for Pods also answers the pod controllers (autogen: the controller's pod
//!   template seen as a Pod, [`autogen::pod_view`]), unless its matching rules out autogen or
//!   `spec.autogen.podControllers.controllers` names other controllers;
//! - a PolicyException naming the policy whose match conditions hold skips it (or passes it, with
//!   `reportResult: pass`); exceptions are judged on the object as sent, before the policy's own
//!   match conditions;
//! - `evaluation.mode: JSON` evaluates the object as plain JSON, with no matching.
//!
//! Kyverno's CEL libraries that reach outside the object (`resource.Get/List`, `http`,
//! `globalContext`, `image.GetMetadata`, `imagedata`, the clock) make the policy not evaluable
//! here, with the reason; so do its other libraries, which this engine does not have.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{autogen, lenient};
use super::{Context, FailureAction, Outcome, RuleResult};
use crate::admission::{AdmissionRequest, GroupVersionKind, Operation};
use crate::source::{Document, SourceError};
use crate::vap::types::{FailurePolicy, MatchResources, ValidationAction};
use crate::vap::{self, Binding, EvalContext, EvaluationOutcome, FailureSource};

const GROUP: &str = "policies.kyverno.io/";
const VERSIONS: [&str; 3] = ["v1alpha1", "v1beta1", "v1"];

/// How a ValidatingPolicy reads its input (`spec.evaluation.mode`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvaluationMode {
    /// Admission requests of Kubernetes objects (the default).
    Kubernetes,
    /// Any JSON document, as `object`; no matching, no request.
    Json,
    /// Payloads this engine does not evaluate (`Envoy`, `HTTP`: authorization requests).
    Other(String),
}

/// A ValidatingPolicy (or NamespacedValidatingPolicy), read and compiled.
#[derive(Debug, Clone)]
pub struct ValidatingPolicy {
    /// `name`, or `namespace/name` for a NamespacedValidatingPolicy.
    pub name: String,
    /// `ValidatingPolicy` or `NamespacedValidatingPolicy`, as PolicyExceptions name it.
    pub kind: String,
    /// The namespace of a NamespacedValidatingPolicy: it applies only there.
    pub namespace: Option<String>,
    /// The strictest of `validationActions` (`Deny` when none is given).
    pub action: FailureAction,
    /// `validationActions` as written (`[Deny]` when none is given).
    pub actions: Vec<ValidationAction>,
    /// `evaluation.background.enabled` (default true): whether background scans report on it.
    pub background: bool,
    /// `evaluation.admission.enabled` (default true): whether it judges admission requests.
    pub admission: bool,
    pub mode: EvaluationMode,
    /// The pod controller kinds autogen covers (empty when it does not apply).
    pub autogen: Vec<&'static str>,
    /// `failurePolicy: Ignore`: a match condition that errs skips the policy.
    ignore_failures: bool,
    /// The policy has no `matchConstraints` (in Kubernetes mode it then matches nothing).
    unmatched: bool,
    /// Per validation, whether it has a `message` or `messageExpression` of its own.
    has_message: Vec<bool>,
    body: Body,
}

#[derive(Debug, Clone)]
enum Body {
    /// The matching ValidatingAdmissionPolicy with an unrestricted binding.
    Compiled(Box<vap::PolicySet>),
    /// Why it cannot be evaluated here.
    NotEvaluable(String),
}

// ---------------------------------------------------------------------------------------------
// The documents as written.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PolicyDoc {
    #[allow(dead_code)]
    api_version: String,
    #[allow(dead_code)]
    kind: String,
    #[serde(default)]
    metadata: Meta,
    spec: Spec,
    #[serde(default)]
    #[allow(dead_code)]
    status: Option<Value>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Meta {
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: String,
}

/// A ValidatingPolicy's spec: the ValidatingAdmissionPolicy fields are kept as written (the
/// [`vap`] reader reads them, strictly, with their places), Kyverno's own are read here.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Spec {
    #[serde(default)]
    match_constraints: Option<Value>,
    #[serde(default)]
    validations: Option<Value>,
    #[serde(default)]
    failure_policy: Option<FailurePolicy>,
    #[serde(default)]
    audit_annotations: Option<Value>,
    #[serde(default)]
    match_conditions: Option<Value>,
    #[serde(default)]
    variables: Option<Value>,
    #[serde(default)]
    autogen: Option<AutogenConfig>,
    #[serde(default)]
    validation_actions: Vec<ValidationAction>,
    #[serde(default)]
    #[allow(dead_code)]
    webhook_configuration: Option<WebhookConfig>,
    #[serde(default)]
    evaluation: Option<EvaluationConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AutogenConfig {
    #[serde(default)]
    pod_controllers: Option<PodControllers>,
    #[serde(default)]
    #[allow(dead_code)]
    validating_admission_policy: Option<Enabled>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PodControllers {
    #[serde(default)]
    controllers: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Enabled {
    #[serde(default)]
    enabled: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct WebhookConfig {
    #[serde(default)]
    #[allow(dead_code)]
    timeout_seconds: Option<i32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EvaluationConfig {
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    admission: Option<Enabled>,
    #[serde(default)]
    background: Option<Enabled>,
}

/// A serde error at the token it names (in backquotes), when the document has it.
fn shape_error(
    file: &str,
    document: &Document,
    what: &str,
    error: &serde_json::Error,
) -> SourceError {
    let message = error.to_string();
    let token = message.split('`').nth(1).filter(|t| !t.is_empty());
    let (line, column) = match token {
        Some(token) => document.locate(token, 0),
        None => (document.first_line, 0),
    };
    SourceError::new(file, line, column, format!("{what}: {message}"))
}

/// `metadata.name` of `document`, `""` where it has none.
fn name_of(document: &Document) -> &str {
    document
        .value
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn name_error(file: &str, document: &Document, what: &str) -> SourceError {
    SourceError::new(
        file,
        document.first_line,
        1,
        format!("{what}: metadata.name: Required value"),
    )
}

/// `document` read strictly as `T`: its apiVersion one this module reads, no unknown or mistyped
/// field, and a name; each error worded for `what` and placed in the file.
fn read_strictly<T: serde::de::DeserializeOwned>(
    file: &str,
    document: &Document,
    what: &str,
) -> Result<T, Vec<SourceError>> {
    check_api_version(file, document, what)?;
    let parsed = serde_json::from_value(document.value.clone())
        .map_err(|e| vec![shape_error(file, document, what, &e)])?;
    if name_of(document).is_empty() {
        return Err(vec![name_error(file, document, what)]);
    }
    Ok(parsed)
}

fn check_api_version(file: &str, document: &Document, what: &str) -> Result<(), Vec<SourceError>> {
    let api_version = document
        .value
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let version = api_version.strip_prefix(GROUP).unwrap_or_default();
    if VERSIONS.contains(&version) {
        return Ok(());
    }
    let supported = VERSIONS.map(|v| format!("\"{GROUP}{v}\"")).join(", ");
    Err(vec![unsupported(
        file,
        document,
        what,
        "apiVersion",
        api_version,
        &supported,
    )])
}

/// The apiserver's error for a `value` of `field` that is none of the `supported` ones (each
/// quoted), worded for `what` and placed at the value in `document` of `file`.
fn unsupported(
    file: &str,
    document: &Document,
    what: &str,
    field: &str,
    value: &str,
    supported: &str,
) -> SourceError {
    document.error_at(
        file,
        value,
        0,
        format!("{what}: {field}: Unsupported value: \"{value}\": supported values: {supported}"),
    )
}

impl ValidatingPolicy {
    /// Read a ValidatingPolicy or NamespacedValidatingPolicy document. Unknown fields, wrong types
    /// and expressions that do not compile are errors, each at its place in `file`.
    pub fn from_document(
        file: &str,
        document: &Document,
    ) -> Result<ValidatingPolicy, Vec<SourceError>> {
        let kind = document
            .value
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("ValidatingPolicy")
            .to_owned();
        let what = format!("{kind} '{}'", name_of(document));
        let parsed: PolicyDoc = read_strictly(file, document, &what)?;
        let namespaced = kind == "NamespacedValidatingPolicy";
        let namespace = namespaced
            .then(|| parsed.metadata.namespace.clone())
            .filter(|ns| !ns.is_empty());
        let name = match &namespace {
            Some(ns) => format!("{ns}/{}", parsed.metadata.name),
            None => parsed.metadata.name.clone(),
        };
        let spec = parsed.spec;

        let evaluation = spec.evaluation.as_ref();
        let mode = match evaluation.and_then(|e| e.mode.as_deref()) {
            None | Some("") | Some("Kubernetes") => EvaluationMode::Kubernetes,
            Some("JSON") => EvaluationMode::Json,
            Some(other @ ("Envoy" | "HTTP")) => EvaluationMode::Other(other.to_owned()),
            Some(other) => {
                return Err(vec![unsupported(
                    file,
                    document,
                    &what,
                    "spec.evaluation.mode",
                    other,
                    "\"Kubernetes\", \"JSON\", \"Envoy\", \"HTTP\"",
                )]);
            }
        };
        let enabled = |pick: fn(&EvaluationConfig) -> Option<&Enabled>| {
            evaluation
                .and_then(pick)
                .and_then(|e| e.enabled)
                .unwrap_or(true)
        };
        let background = enabled(|e| e.background.as_ref());
        let admission = enabled(|e| e.admission.as_ref());

        let actions = if spec.validation_actions.is_empty() {
            vec![ValidationAction::Deny]
        } else {
            spec.validation_actions.clone()
        };
        let action = strictest(&actions);

        let match_constraints: Option<MatchResources> = match &spec.match_constraints {
            Some(value) => Some(serde_json::from_value(value.clone()).map_err(|e| {
                vec![shape_error(
                    file,
                    document,
                    &format!("{what}: spec.matchConstraints"),
                    &e,
                )]
            })?),
            None => None,
        };
        let autogen = match (&mode, &match_constraints) {
            (EvaluationMode::Kubernetes, Some(constraints)) => autogen_controllers(
                constraints,
                spec.autogen
                    .as_ref()
                    .and_then(|a| a.pod_controllers.as_ref())
                    .and_then(|p| p.controllers.as_deref()),
            ),
            _ => Vec::new(),
        };
        let has_message = spec
            .validations
            .as_ref()
            .and_then(Value::as_array)
            .map(|validations| {
                validations
                    .iter()
                    .map(|v| {
                        let text = |key: &str| {
                            v.get(key)
                                .and_then(Value::as_str)
                                .is_some_and(|s| !s.trim().is_empty())
                        };
                        text("message") || text("messageExpression")
                    })
                    .collect()
            })
            .unwrap_or_default();

        let body = match (&mode, outside_reason(&spec)) {
            (EvaluationMode::Other(mode), _) => Body::NotEvaluable(format!(
                "evaluation mode {mode} judges {mode} authorization requests, which this engine does not evaluate"
            )),
            (_, Some(reason)) => Body::NotEvaluable(reason),
            _ => Body::Compiled(Box::new(compile(file, document, &what, &spec, &mode)?)),
        };
        Ok(ValidatingPolicy {
            name,
            kind,
            namespace,
            action,
            actions,
            background,
            admission,
            mode,
            autogen,
            ignore_failures: spec.failure_policy == Some(FailurePolicy::Ignore),
            unmatched: spec.match_constraints.is_none(),
            has_message,
            body,
        })
    }

    /// This policy's answer for `request`: one result (a ValidatingPolicy has no rules), from the
    /// policy itself or, for a pod controller, from its autogen variant.
    pub fn evaluate(
        &self,
        request: &AdmissionRequest,
        ctx: &Context<'_>,
        exceptions: &[Exception],
    ) -> Vec<RuleResult> {
        let (autogen, outcome) = self.outcome(request, ctx, exceptions);
        vec![RuleResult {
            policy: self.name.clone(),
            rule: self.name.clone(),
            autogen,
            action: self.action,
            outcome,
        }]
    }

    /// Whether this policy could judge an object of `kind` (in any group): its match constraints
    /// name the kind's resource, or Pods' where autogen covers the kind. A policy that cannot be
    /// evaluated here says so for every object, and one in JSON mode judges payloads of any kind.
    pub fn may_judge_kind(&self, kind: &str) -> bool {
        let set = match &self.body {
            Body::Compiled(set) if self.mode == EvaluationMode::Kubernetes => set,
            _ => return true,
        };
        !self.unmatched
            && (set.may_match_kind(kind)
                || (self.autogen.contains(&kind) && set.may_match_kind("Pod")))
    }

    fn outcome(
        &self,
        request: &AdmissionRequest,
        ctx: &Context<'_>,
        exceptions: &[Exception],
    ) -> (bool, Outcome) {
        if let Some(namespace) = &self.namespace {
            if request.namespace != *namespace {
                return (
                    false,
                    Outcome::Skip(format!("outside the policy's namespace `{namespace}`")),
                );
            }
        }
        let set = match &self.body {
            Body::Compiled(set) => set,
            Body::NotEvaluable(reason) => return (false, Outcome::NotEvaluable(reason.clone())),
        };
        let vap_ctx = EvalContext {
            namespaces: ctx.namespaces,
            params: &[],
            authorizer: None,
        };
        if self.mode == EvaluationMode::Kubernetes && self.unmatched {
            return (
                false,
                Outcome::Skip("the policy has no matchConstraints".to_owned()),
            );
        }
        let json_request;
        let request = if self.mode == EvaluationMode::Json {
            json_request = json_payload_request(request);
            &json_request
        } else {
            request
        };
        // The policy as written, else its autogen variant for a pod controller.
        let mut evaluation = first_evaluation(set, request, &vap_ctx);
        let mut autogen = false;
        if evaluation.is_none() {
            if let Some(pod_request) = self.autogen_request(request) {
                evaluation = first_evaluation(set, &pod_request, &vap_ctx);
                autogen = evaluation.is_some();
            }
        }
        let Some(evaluation) = evaluation else {
            return (false, Outcome::Skip("not matched".to_owned()));
        };
        // Exceptions are judged on the object as sent, once the policy matched.
        for exception in exceptions.iter().filter(|e| e.names(self)) {
            match exception.applies(request, &vap_ctx) {
                Ok(false) => {}
                Ok(true) if exception.partial => {
                    return (
                        autogen,
                        Outcome::NotEvaluable(format!(
                            "PolicyException {} grants images or allowedValues, which the policy would read through `exceptions`: not supported",
                            exception.name
                        )),
                    )
                }
                Ok(true) if exception.report_pass => return (autogen, Outcome::Pass),
                Ok(true) => {
                    return (
                        autogen,
                        Outcome::Skip(format!("excepted by {}", exception.name)),
                    )
                }
                Err(error) => {
                    return (
                        autogen,
                        Outcome::Error(format!(
                            "PolicyException {}: match condition: {error}",
                            exception.name
                        )),
                    )
                }
            }
        }
        (autogen, self.map_outcome(evaluation))
    }

    /// The request autogen evaluates for a pod controller: its pod template as a Pod, by the same
    /// operation and user.
    fn autogen_request(&self, request: &AdmissionRequest) -> Option<AdmissionRequest> {
        let controller = self
            .autogen
            .iter()
            .find(|kind| **kind == request.kind.kind)?;
        let (group, version) = controller_group_version(controller)?;
        if request.kind.group != group || request.kind.version != version {
            return None;
        }
        let subject = request.subject()?;
        let pod = autogen::pod_view(subject)?;
        let mut pod_request = AdmissionRequest::for_object(request.operation, pod).ok()?;
        if let (Some(old), true) = (&request.old_object, request.object.is_some()) {
            pod_request.old_object = autogen::pod_view(old);
        }
        pod_request.user_info = request.user_info.clone();
        pod_request.name = request.name.clone();
        pod_request.namespace = request.namespace.clone();
        pod_request.dry_run = request.dry_run;
        Some(pod_request)
    }

    /// Kyverno's reading of one evaluation of the policy, in the words the author wrote.
    fn map_outcome(&self, evaluation: EvaluationOutcome) -> Outcome {
        match self.read_outcome(evaluation) {
            Outcome::Fail(message) => Outcome::Fail(lenient::as_written(&message)),
            Outcome::Error(message) => Outcome::Error(lenient::as_written(&message)),
            Outcome::Skip(message) => Outcome::Skip(lenient::as_written(&message)),
            other => other,
        }
    }

    fn read_outcome(&self, evaluation: EvaluationOutcome) -> Outcome {
        match evaluation {
            EvaluationOutcome::ConditionsNotMet => {
                Outcome::Skip("a match condition is false".to_owned())
            }
            EvaluationOutcome::NotEvaluable { reason } => Outcome::NotEvaluable(reason),
            EvaluationOutcome::ConfigurationError { message, .. } => Outcome::Error(message),
            EvaluationOutcome::Evaluated { failures, .. } => {
                let Some(first) = failures.into_iter().next() else {
                    return Outcome::Pass;
                };
                match first.source {
                    FailureSource::MatchConditions if self.ignore_failures => {
                        Outcome::Skip(format!("a match condition failed: {}", first.message))
                    }
                    FailureSource::MatchConditions => {
                        Outcome::Error(format!("match condition: {}", first.message))
                    }
                    FailureSource::AuditAnnotation(key) => Outcome::Error(format!(
                        "failed to evaluate auditAnnotation '{key}': {}",
                        first.message
                    )),
                    FailureSource::Validation(_) if first.error => Outcome::Error(first.message),
                    FailureSource::Validation(index) => {
                        if self.has_message.get(index).copied().unwrap_or(false) {
                            Outcome::Fail(first.message)
                        } else {
                            Outcome::Fail(format!(
                                "CEL expression validation failed at index {index}"
                            ))
                        }
                    }
                }
            }
        }
    }
}

/// The strictest of `actions`: Deny → Enforce, then Warn, then Audit.
fn strictest(actions: &[ValidationAction]) -> FailureAction {
    actions
        .iter()
        .map(|action| match action {
            ValidationAction::Deny => FailureAction::Enforce,
            ValidationAction::Warn => FailureAction::Warn,
            ValidationAction::Audit => FailureAction::Audit,
        })
        .max()
        .unwrap_or(FailureAction::Enforce)
}

/// The one evaluation of the set's one policy, if it matched.
fn first_evaluation(
    set: &vap::PolicySet,
    request: &AdmissionRequest,
    ctx: &EvalContext<'_>,
) -> Option<EvaluationOutcome> {
    set.evaluate(request, ctx)
        .evaluations
        .into_iter()
        .next()
        .map(|e| e.outcome)
}

/// A JSON payload (or an object read as one) as the request a JSON-mode policy sees: the whole
/// document is `object`.
fn json_payload_request(request: &AdmissionRequest) -> AdmissionRequest {
    AdmissionRequest {
        object: request.subject().cloned(),
        operation: Operation::Create,
        kind: GroupVersionKind::default(),
        ..AdmissionRequest::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Autogen.

/// The controllers autogen makes variants for by default, by the names
/// `spec.autogen.podControllers.controllers` uses, with their kinds.
const AUTOGEN_TARGETS: [(&str, &str); 6] = [
    ("daemonsets", "DaemonSet"),
    ("deployments", "Deployment"),
    ("replicasets", "ReplicaSet"),
    ("statefulsets", "StatefulSet"),
    ("jobs", "Job"),
    ("cronjobs", "CronJob"),
];

fn controller_group_version(kind: &str) -> Option<(&'static str, &'static str)> {
    match kind {
        "DaemonSet" | "Deployment" | "ReplicaSet" | "StatefulSet" => Some(("apps", "v1")),
        "Job" | "CronJob" => Some(("batch", "v1")),
        _ => None,
    }
}

/// The controller kinds a policy with these `matchConstraints` gets autogen variants for. Kyverno
/// generates them only for a policy that matches exactly core `v1` `pods` in one rule, without
/// resource names, exclusions or an object selector; `configured` (the policy's
/// `spec.autogen.podControllers.controllers`, when given) replaces the default set, by resource
/// name (`deployments`, `cronjobs` …; other names are ignored).
pub fn autogen_controllers(
    constraints: &MatchResources,
    configured: Option<&[String]>,
) -> Vec<&'static str> {
    let selects_objects = constraints
        .object_selector
        .as_ref()
        .is_some_and(|s| !s.match_labels.is_empty() || !s.match_expressions.is_empty());
    let only_pods = match constraints.resource_rules.as_slice() {
        [rule] => {
            rule.resource_names.is_empty()
                && rule.api_groups == [""]
                && rule.api_versions == ["v1"]
                && rule.resources == ["pods"]
        }
        _ => false,
    };
    if selects_objects || !constraints.exclude_resource_rules.is_empty() || !only_pods {
        return Vec::new();
    }
    AUTOGEN_TARGETS
        .iter()
        .filter(|(resource, _)| configured.is_none_or(|names| names.iter().any(|n| n == resource)))
        .map(|(_, kind)| *kind)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Kyverno's CEL libraries.

/// A call of a Kyverno library function: `receiver.function(` (receiver empty for a global).
fn library_calls(source: &str) -> Vec<(String, String)> {
    #[derive(PartialEq)]
    enum Token {
        Ident(String),
        Dot,
        Open,
        Other,
    }
    let mut tokens = Vec::new();
    let chars: Vec<char> = source.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' || c == '"' {
            // Skip a string literal (triple-quoted or not), honouring escapes.
            let triple = chars.get(i + 1) == Some(&c) && chars.get(i + 2) == Some(&c);
            i += if triple { 3 } else { 1 };
            while i < chars.len() {
                if chars[i] == '\\' {
                    i += 2;
                    continue;
                }
                if chars[i] == c
                    && (!triple || (chars.get(i + 1) == Some(&c) && chars.get(i + 2) == Some(&c)))
                {
                    i += if triple { 3 } else { 1 };
                    break;
                }
                i += 1;
            }
            tokens.push(Token::Other);
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(Token::Ident(chars[start..i].iter().collect()));
        } else if c.is_whitespace() {
            i += 1;
        } else {
            tokens.push(match c {
                '.' => Token::Dot,
                '(' => Token::Open,
                _ => Token::Other,
            });
            // `.?` (an optional field) is a dot too.
            i += if c == '.' && chars.get(i + 1) == Some(&'?') {
                2
            } else {
                1
            };
        }
    }
    let mut calls = Vec::new();
    for (at, token) in tokens.iter().enumerate() {
        let Token::Ident(name) = token else { continue };
        if at > 0 && tokens[at - 1] == Token::Dot {
            continue;
        }
        match (tokens.get(at + 1), tokens.get(at + 2), tokens.get(at + 3)) {
            (Some(Token::Dot), Some(Token::Ident(function)), Some(Token::Open)) => {
                calls.push((name.clone(), function.clone()));
            }
            (Some(Token::Open), _, _) => calls.push((String::new(), name.clone())),
            _ => {}
        }
    }
    calls
}

/// Why a call of a Kyverno library function cannot be evaluated here, if it is one.
fn library_reason(receiver: &str, function: &str) -> Option<String> {
    let outside = |what: &str| Some(format!("`{receiver}.{function}` {what}"));
    match (receiver, function) {
        ("resource", _) => outside("reads other resources from the cluster"),
        ("http", _) => outside("makes HTTP requests"),
        ("globalContext", _) => outside("reads Kyverno's global context"),
        ("image", "GetMetadata") | ("imagedata", _) => outside("reads image data from a registry"),
        ("time", "now") => outside("reads the clock"),
        ("envoy" | "jwt", _) => outside("belongs to Kyverno's Envoy library, not evaluated here"),
        ("json", "unmarshal" | "marshal")
        | ("yaml", "parse" | "unmarshal")
        | ("x509", "decode")
        | ("random", _) => outside("is a Kyverno CEL library function this engine does not have"),
        ("", name @ ("image" | "isImage" | "parseImageReference")) => Some(format!(
            "`{name}` is a Kyverno CEL library function this engine does not have"
        )),
        _ => None,
    }
}

/// Every CEL expression of a spec.
fn expressions(spec: &Spec) -> Vec<&str> {
    let mut out = Vec::new();
    let lists = [
        (&spec.match_conditions, &["expression"][..]),
        (&spec.variables, &["expression"][..]),
        (&spec.validations, &["expression", "messageExpression"][..]),
        (&spec.audit_annotations, &["valueExpression"][..]),
    ];
    for (list, keys) in lists {
        for item in list.iter().filter_map(Value::as_array).flatten() {
            for key in keys {
                if let Some(source) = item.get(*key).and_then(Value::as_str) {
                    out.push(source);
                }
            }
        }
    }
    out
}

/// Why the policy cannot be evaluated here, when one of its expressions calls a Kyverno library
/// this engine does not have.
fn outside_reason(spec: &Spec) -> Option<String> {
    expressions(spec).into_iter().find_map(|source| {
        library_calls(source)
            .iter()
            .find_map(|(receiver, function)| library_reason(receiver, function))
    })
}

// ---------------------------------------------------------------------------------------------
// The ValidatingAdmissionPolicy a ValidatingPolicy is evaluated as.

/// `matchConstraints` as the Kyverno CLI reads it: resource rules without `operations` match
/// every operation.
fn with_default_operations(mut constraints: Value) -> Value {
    for list in ["resourceRules", "excludeResourceRules"] {
        let rules = constraints.get_mut(list).and_then(Value::as_array_mut);
        for rule in rules.into_iter().flatten().filter_map(Value::as_object_mut) {
            rule.entry("operations").or_insert_with(|| json!(["*"]));
        }
    }
    constraints
}

/// The document of the ValidatingAdmissionPolicy named `name` with `spec`, keeping `document`'s
/// text so errors are placed in the file.
fn vap_document(document: &Document, name: &str, spec: Map<String, Value>) -> Document {
    vap::admission_document(
        "ValidatingAdmissionPolicy",
        name,
        Value::Object(spec),
        document.first_line,
        lenient::text(&document.text),
    )
}

/// Read the ValidatingAdmissionPolicy in `vap_document` as the one policy of a set, bound to
/// everything; errors are worded for `what`.
fn read_vap(
    file: &str,
    vap_document: &Document,
    what: &str,
) -> Result<vap::PolicySet, Vec<SourceError>> {
    let name = name_of(vap_document).to_owned();
    let mut set = vap::PolicySet::from_documents(file, std::slice::from_ref(vap_document))
        .map_err(|errors| {
            let prefix = format!("ValidatingAdmissionPolicy '{name}'");
            errors
                .into_iter()
                .map(|mut error| {
                    if let Some(rest) = error.message.strip_prefix(&prefix) {
                        error.message = format!("{what}{rest}");
                    }
                    lenient::unrewrite_error(vap_document, &mut error);
                    error
                })
                .collect::<Vec<_>>()
        })?;
    // Kyverno reads objects with their null fields present (`rules: null` is a field).
    set.keep_null_fields = true;
    set.bindings.push(Binding::unrestricted(
        &name,
        &name,
        &[ValidationAction::Deny],
    ));
    Ok(set)
}

fn compile(
    file: &str,
    document: &Document,
    what: &str,
    spec: &Spec,
    mode: &EvaluationMode,
) -> Result<vap::PolicySet, Vec<SourceError>> {
    let mut vap_spec = Map::new();
    let constraints = match (mode, &spec.match_constraints) {
        (EvaluationMode::Kubernetes, Some(constraints)) => {
            with_default_operations(constraints.clone())
        }
        // Never consulted: a Kubernetes-mode policy without constraints matches nothing (and a
        // JSON-mode policy does no matching).
        _ => vap::match_everything(),
    };
    vap_spec.insert("matchConstraints".to_owned(), constraints);
    for (key, value) in [
        ("matchConditions", &spec.match_conditions),
        ("variables", &spec.variables),
        ("validations", &spec.validations),
        ("auditAnnotations", &spec.audit_annotations),
    ] {
        if let Some(value) = value {
            vap_spec.insert(key.to_owned(), lenient::expressions(value));
        }
    }
    // Errors stay errors: Kyverno applies `failurePolicy` to match conditions only (see
    // `map_outcome`).
    vap_spec.insert("failurePolicy".to_owned(), json!("Fail"));
    read_vap(
        file,
        &vap_document(document, name_of(document), vap_spec),
        what,
    )
}

// ---------------------------------------------------------------------------------------------
// PolicyExceptions of `policies.kyverno.io`.

/// A `policies.kyverno.io` PolicyException: the policies it names (`policyRefs`) do not apply to
/// the objects its `matchConditions` all hold for.
#[derive(Debug, Clone)]
pub struct Exception {
    pub name: String,
    /// `(name, kind)` of each policy it names.
    pub policy_refs: Vec<(String, String)>,
    /// `reportResult: pass`: the policy is reported as passed rather than skipped.
    pub report_pass: bool,
    /// It grants `images` or `allowedValues` (a partial exemption the policy reads in CEL).
    pub partial: bool,
    /// The match conditions, as a policy that passes whenever they all hold.
    conditions: Option<Box<vap::PolicySet>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ExceptionDoc {
    #[allow(dead_code)]
    api_version: String,
    #[allow(dead_code)]
    kind: String,
    #[serde(default)]
    metadata: Meta,
    spec: ExceptionSpec,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ExceptionSpec {
    policy_refs: Vec<PolicyRef>,
    #[serde(default)]
    match_conditions: Option<Value>,
    #[serde(default)]
    images: Vec<String>,
    #[serde(default)]
    allowed_values: Vec<String>,
    #[serde(default)]
    report_result: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyRef {
    name: String,
    kind: String,
}

impl Exception {
    /// Read a `policies.kyverno.io` PolicyException document, strictly.
    pub fn from_document(file: &str, document: &Document) -> Result<Exception, Vec<SourceError>> {
        let what = format!("PolicyException '{}'", name_of(document));
        let parsed: ExceptionDoc = read_strictly(file, document, &what)?;
        let spec = parsed.spec;
        let report_pass = match spec.report_result.as_deref() {
            None | Some("" | "skip") => false,
            Some("pass") => true,
            Some(other) => {
                return Err(vec![unsupported(
                    file,
                    document,
                    &what,
                    "spec.reportResult",
                    other,
                    "\"skip\", \"pass\"",
                )]);
            }
        };
        let has_conditions = spec
            .match_conditions
            .as_ref()
            .and_then(Value::as_array)
            .is_some_and(|c| !c.is_empty());
        let conditions = if has_conditions {
            let mut vap_spec = Map::new();
            vap_spec.insert("matchConstraints".to_owned(), vap::match_everything());
            vap_spec.insert(
                "matchConditions".to_owned(),
                spec.match_conditions
                    .as_ref()
                    .map_or(Value::Null, lenient::expressions),
            );
            vap_spec.insert("validations".to_owned(), json!([{"expression": "true"}]));
            vap_spec.insert("failurePolicy".to_owned(), json!("Fail"));
            let vap_doc = vap_document(document, &parsed.metadata.name, vap_spec);
            Some(Box::new(read_vap(file, &vap_doc, &what)?))
        } else {
            None
        };
        Ok(Exception {
            name: parsed.metadata.name,
            policy_refs: spec
                .policy_refs
                .into_iter()
                .map(|r| (r.name, r.kind))
                .collect(),
            report_pass,
            partial: !spec.images.is_empty() || !spec.allowed_values.is_empty(),
            conditions,
        })
    }

    /// Whether it names `policy` (by name and kind).
    fn names(&self, policy: &ValidatingPolicy) -> bool {
        let bare = policy.name.rsplit('/').next().unwrap_or_default();
        self.policy_refs
            .iter()
            .any(|(name, kind)| name == bare && *kind == policy.kind)
    }

    /// Whether its match conditions all hold for `request`; an error when one cannot be decided.
    fn applies(&self, request: &AdmissionRequest, ctx: &EvalContext<'_>) -> Result<bool, String> {
        let Some(conditions) = &self.conditions else {
            return Ok(true);
        };
        match first_evaluation(conditions, request, ctx) {
            None | Some(EvaluationOutcome::ConditionsNotMet) => Ok(false),
            Some(EvaluationOutcome::Evaluated { failures, .. }) => match failures.first() {
                None => Ok(true),
                Some(failure) => Err(failure.message.clone()),
            },
            Some(EvaluationOutcome::NotEvaluable { reason }) => Err(reason),
            Some(EvaluationOutcome::ConfigurationError { message, .. }) => Err(message),
        }
    }
}

#[cfg(test)]
#[path = "validating_tests.rs"]
mod tests;
