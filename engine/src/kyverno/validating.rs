//! `policies.kyverno.io` ValidatingPolicy (and its namespaced form).
//!
//! Not yet evaluated: every policy answers "not evaluable".

use serde_json::Value;

use super::policy::Exception;
use super::{Context, FailureAction, Outcome, RuleResult};
use crate::admission::AdmissionRequest;
use crate::source::{Document, SourceError};

/// A ValidatingPolicy, read.
#[derive(Debug, Clone)]
pub struct ValidatingPolicy {
    pub name: String,
    pub action: FailureAction,
}

impl ValidatingPolicy {
    pub fn from_document(
        file: &str,
        document: &Document,
    ) -> Result<ValidatingPolicy, Vec<SourceError>> {
        let name = document
            .value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                vec![SourceError::new(
                    file,
                    document.first_line,
                    1,
                    "metadata.name: a policy needs a name",
                )]
            })?;
        Ok(ValidatingPolicy {
            name: name.to_owned(),
            action: FailureAction::Audit,
        })
    }

    pub fn evaluate(
        &self,
        _request: &AdmissionRequest,
        _ctx: &Context<'_>,
        _exceptions: &[Exception],
    ) -> Vec<RuleResult> {
        vec![RuleResult {
            policy: self.name.clone(),
            rule: self.name.clone(),
            autogen: false,
            action: self.action,
            outcome: Outcome::NotEvaluable("ValidatingPolicies are not evaluated yet".into()),
        }]
    }
}
