//! A template's `K8sNativeValidation` (CEL) code, run as Gatekeeper's CEL driver runs it.
//!
//! Gatekeeper (and `gator`) evaluate a template with the first of its drivers that the template
//! has code for, and the CEL driver comes first: a template that carries both CEL and Rego is
//! judged by its CEL, with the CEL's messages. The driver turns the code into a
//! ValidatingAdmissionPolicy whose parameter is the constraint itself, with two variables of its
//! own in front of the template's: `anyObject` (the old object on DELETE, else the object) and
//! `params` (the constraint's `spec.parameters`, null when absent). Matching stays Gatekeeper's
//! (the constraint's `match`), so the policy matches everything. We build the same policy and
//! evaluate it with our ValidatingAdmissionPolicy evaluator; each failed validation is a violation
//! with the validator's message (`message`, `messageExpression`, or `failed expression: …`).

use serde_json::{json, Map, Value};

use crate::admission::AdmissionRequest;
use crate::namespaces::Namespaces;
use crate::source::{Document, SourceError};
use crate::vap::{self, EvalContext, EvaluationOutcome, PolicySet};

/// The `code[].engine` of CEL code.
pub const ENGINE: &str = "K8sNativeValidation";

/// What the driver binds before the template's own variables (Gatekeeper's `anyObject` and
/// `params`; a template may not declare either).
fn driver_variables() -> Vec<Value> {
    vec![
        json!({
            "name": "anyObject",
            "expression": "has(request.operation) && request.operation == \"DELETE\" && object == null ? oldObject : object",
        }),
        json!({
            "name": "params",
            "expression": "!has(params.spec) ? null : !has(params.spec.parameters) ? null: params.spec.parameters",
        }),
    ]
}

/// A template's CEL code, compiled into a policy and the binding that hands it the constraint.
#[derive(Debug, Clone)]
pub(crate) struct CelProgram {
    set: PolicySet,
}

/// The CEL entry of a template's `code`, if it has one.
pub(crate) fn cel_source(code: &[Value]) -> Option<&Value> {
    code.iter()
        .find(|c| c.get("engine").and_then(Value::as_str) == Some(ENGINE))
        .map(|c| c.get("source").unwrap_or(&Value::Null))
}

impl CelProgram {
    /// What its policy can read of an object (matching included: the engine's own reads of
    /// type, name, namespace and labels come with it).
    pub(crate) fn object_reads(&self) -> crate::cel::projection::Projection {
        self.set.object_reads()
    }

    /// Whether its answer may depend on which object it reviews beyond what the object holds
    /// (see [`crate::vap::PolicySet::reads_identity`]).
    pub(crate) fn reads_identity(&self) -> bool {
        self.set.reads_identity()
    }

    /// Whether its answer may depend on the object's labels (see
    /// [`crate::vap::PolicySet::reads_labels`]).
    pub(crate) fn reads_labels(&self) -> bool {
        self.set.reads_labels()
    }

    /// Compile `source` (a `code[]` entry's `source`) of the template defining `kind`. Errors are
    /// placed in `document` as our ValidatingAdmissionPolicy reader places them.
    pub(crate) fn compile(
        file: &str,
        document: &Document,
        kind: &str,
        source: &Value,
    ) -> Result<CelProgram, Vec<SourceError>> {
        let at = |message: String| vec![SourceError::new(file, document.first_line, 0, message)];
        let Some(source) = source.as_object() else {
            return Err(at(format!("the {ENGINE} code has no source")));
        };
        let own_variables = source
            .get("variables")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for variable in &own_variables {
            let name = variable.get("name").and_then(Value::as_str).unwrap_or("");
            if name == "anyObject" || name == "params" {
                return Err(at(format!(
                    "the {ENGINE} code declares the variable {name:?}, which Gatekeeper reserves"
                )));
            }
        }
        let mut variables = driver_variables();
        variables.extend(own_variables);
        let name = kind.to_lowercase();
        let mut spec = Map::new();
        spec.insert(
            "paramKind".into(),
            json!({"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": kind}),
        );
        spec.insert("matchConstraints".into(), vap::match_everything());
        spec.insert("variables".into(), Value::Array(variables));
        for key in ["failurePolicy", "matchConditions", "validations"] {
            if let Some(value) = source.get(key) {
                spec.insert(key.into(), value.clone());
            }
        }
        let policy = vap::admission_document(
            "ValidatingAdmissionPolicy",
            &name,
            Value::Object(spec),
            document.first_line,
            document.text.clone(),
        );
        // Every constraint of the kind is a parameter; each evaluation is handed exactly one.
        let binding = vap::admission_document(
            "ValidatingAdmissionPolicyBinding",
            &name,
            json!({
                "policyName": name,
                "paramRef": {"selector": {}, "parameterNotFoundAction": "Deny"},
                "validationActions": ["Deny"],
            }),
            document.first_line,
            document.text.clone(),
        );
        let set = PolicySet::from_documents(file, &[policy, binding]).map_err(|errors| {
            errors
                .into_iter()
                .map(|mut e| {
                    e.message = format!("{ENGINE} code: {}", e.message);
                    e
                })
                .collect::<Vec<_>>()
        })?;
        Ok(CelProgram { set })
    }

    /// The messages of the validations `constraint` (the constraint object as written) fails for
    /// `request`; `Err` when the code cannot be evaluated here.
    pub(crate) fn evaluate(
        &self,
        request: &AdmissionRequest,
        constraint: &Value,
        namespaces: &Namespaces,
    ) -> Result<Vec<String>, String> {
        let ctx = EvalContext {
            namespaces,
            params: std::slice::from_ref(constraint),
            authorizer: None,
        };
        let result = self.set.evaluate(request, &ctx);
        if let Some(not_evaluable) = result.not_evaluable.first() {
            return Err(not_evaluable.reason.clone());
        }
        let mut messages = Vec::new();
        for evaluation in result.evaluations {
            match evaluation.outcome {
                EvaluationOutcome::ConditionsNotMet => {}
                EvaluationOutcome::Evaluated { failures, .. } => {
                    messages.extend(failures.into_iter().map(|f| f.message));
                }
                EvaluationOutcome::ConfigurationError { message, enforced } => {
                    if enforced {
                        messages.push(message);
                    }
                }
                EvaluationOutcome::NotEvaluable { reason } => return Err(reason),
            }
        }
        Ok(messages)
    }
}
