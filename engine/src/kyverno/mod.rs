//! Kyverno policies, evaluated locally: `kyverno.io/v1` ClusterPolicy and Policy validate rules
//! ([`policy`]), `policies.kyverno.io` ValidatingPolicy ([`validating`]) and PolicyExceptions.
//!
//! Every rule (or ValidatingPolicy) answers one resource with a [`RuleResult`]: pass, fail, skip
//! (it did not apply), error, or not evaluable here (it needs something outside the object, such as
//! an API lookup or an HTTP call; said, never guessed). Rules written for Pods also answer the pod
//! controllers, as Kyverno's autogen does ([`autogen`]).

pub mod autogen;
pub mod conditions;
pub mod jmespath;
pub mod lenient;
pub mod matching;
pub mod pattern;
pub mod pod_security;
pub mod policy;
pub mod validating;

use serde::Serialize;
use serde_json::Value;

use crate::namespaces::Namespaces;

use crate::admission::AdmissionRequest;
use crate::source::{type_meta, Document, SourceError};

/// What Kyverno does when a rule fails: its `validationFailureAction` (ClusterPolicy) or
/// `validationActions` (ValidatingPolicy), reduced to the mode model's three steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureAction {
    /// Recorded in a policy report; admitted.
    Audit,
    /// Admitted with a warning to the client.
    Warn,
    /// Denied.
    Enforce,
}

/// How one rule answered one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", content = "detail", rename_all = "camelCase")]
pub enum Outcome {
    /// Evaluated; nothing failed.
    Pass,
    /// Evaluated and failed, with Kyverno's message.
    Fail(String),
    /// The rule did not apply (not matched, excluded, a precondition or match condition false, or
    /// an exception covers it), with why.
    Skip(String),
    /// The rule could not be evaluated on this object (an expression error), with the error.
    Error(String),
    /// The rule needs something this engine does not have (API lookups, HTTP, image data), with
    /// what. Never read as a pass.
    NotEvaluable(String),
}

impl Outcome {
    /// The word Kyverno's CLI `Test` files use for it.
    pub fn word(&self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail(_) => "fail",
            Outcome::Skip(_) => "skip",
            Outcome::Error(_) => "error",
            Outcome::NotEvaluable(_) => "not evaluable",
        }
    }
}

/// One rule's answer for one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleResult {
    /// The policy's name (`namespace/name` for a namespaced Policy).
    pub policy: String,
    /// The rule's name as written in the policy, also for autogen results (a ValidatingPolicy has
    /// no rules: its own name).
    pub rule: String,
    /// Whether this result came from a rule generated for a pod controller.
    pub autogen: bool,
    /// What a failure does.
    pub action: FailureAction,
    pub outcome: Outcome,
}

/// What evaluation knows about the cluster beyond the request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    /// Namespace objects (labels matter for `namespaceSelector` and `namespaceObject`). A namespace
    /// that is not here exists with only its `kubernetes.io/metadata.name` label.
    pub namespaces: &'a Namespaces,
}

/// Kyverno policies of every kind, with the PolicyExceptions that apply to them.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    pub policies: Vec<policy::Policy>,
    pub validating: Vec<validating::ValidatingPolicy>,
    pub exceptions: Vec<policy::Exception>,
    /// `policies.kyverno.io` PolicyExceptions (CEL match conditions), for ValidatingPolicies.
    pub cel_exceptions: Vec<validating::Exception>,
}

/// Whether a document is one of the kinds this module reads.
pub fn is_kyverno_document(value: &Value) -> bool {
    let (api_version, kind) = type_meta(value);
    let group = api_version.split_once('/').map_or("", |(group, _)| group);
    matches!(
        (group, kind),
        ("kyverno.io", "ClusterPolicy" | "Policy" | "PolicyException")
            | (
                "policies.kyverno.io",
                "ValidatingPolicy" | "NamespacedValidatingPolicy" | "PolicyException"
            )
    )
}

/// Whether a document is of the `policies.kyverno.io` group (CEL policies and exceptions).
fn is_cel_group(value: &Value) -> bool {
    value
        .get("apiVersion")
        .and_then(Value::as_str)
        .is_some_and(|v| v.starts_with("policies.kyverno.io/"))
}

impl PolicySet {
    /// Read the Kyverno documents of `file` (others are ignored). Nothing is added unless all of
    /// them read; every error is reported at its place.
    pub fn add_documents(
        &mut self,
        file: &str,
        documents: &[Document],
    ) -> Result<(), Vec<SourceError>> {
        let mut errors = Vec::new();
        let mut read = PolicySet::default();
        for document in documents {
            if !is_kyverno_document(&document.value) {
                continue;
            }
            let kind = document
                .value
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let result = match kind {
                "ClusterPolicy" | "Policy" => {
                    policy::Policy::from_document(file, document).map(|p| read.policies.push(p))
                }
                "PolicyException" if is_cel_group(&document.value) => {
                    validating::Exception::from_document(file, document)
                        .map(|e| read.cel_exceptions.push(e))
                }
                "PolicyException" => policy::Exception::from_document(file, document)
                    .map(|e| read.exceptions.push(e)),
                _ => validating::ValidatingPolicy::from_document(file, document)
                    .map(|p| read.validating.push(p)),
            };
            if let Err(mut found) = result {
                errors.append(&mut found);
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        self.append(&mut read);
        Ok(())
    }

    /// Move everything `other` holds (policies of both kinds and exceptions of both groups) into
    /// this set.
    pub fn append(&mut self, other: &mut PolicySet) {
        self.policies.append(&mut other.policies);
        self.validating.append(&mut other.validating);
        self.exceptions.append(&mut other.exceptions);
        self.cel_exceptions.append(&mut other.cel_exceptions);
    }

    pub fn is_empty(&self) -> bool {
        self.policies.is_empty() && self.validating.is_empty()
    }

    /// Whether some policy could judge an object of `kind` (in any group): a ClusterPolicy or
    /// Policy rule whose `match` names the kind, or a ValidatingPolicy whose match constraints
    /// name its resource; either also where it names Pods and autogen extends it to the kind.
    pub fn may_judge_kind(&self, kind: &str) -> bool {
        self.policies.iter().any(|p| p.may_judge_kind(kind))
            || self.validating.iter().any(|p| p.may_judge_kind(kind))
    }

    /// Every rule's answer for `request`, policies in the order they were read.
    pub fn evaluate(&self, request: &AdmissionRequest, ctx: &Context<'_>) -> Vec<RuleResult> {
        let mut results = Vec::new();
        for policy in &self.policies {
            results.extend(policy.evaluate(request, ctx, &self.exceptions));
        }
        for policy in &self.validating {
            results.extend(policy.evaluate(request, ctx, &self.cel_exceptions));
        }
        results
    }
}
