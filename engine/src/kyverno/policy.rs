//! `kyverno.io/v1` ClusterPolicy and Policy validate rules, and PolicyExceptions.
//!
//! Not yet evaluated: every rule answers "not evaluable".

use serde_json::Value;

use super::{Context, FailureAction, Outcome, RuleResult};
use crate::admission::AdmissionRequest;
use crate::source::{Document, SourceError};

/// A ClusterPolicy or Policy, read.
#[derive(Debug, Clone)]
pub struct Policy {
    /// `name`, or `namespace/name` for a Policy.
    pub name: String,
    pub rules: Vec<String>,
    pub action: FailureAction,
}

impl Policy {
    pub fn from_document(file: &str, document: &Document) -> Result<Policy, Vec<SourceError>> {
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
        let rules = document
            .value
            .pointer("/spec/rules")
            .and_then(Value::as_array)
            .map(|rules| {
                rules
                    .iter()
                    .filter_map(|r| r.get("name").and_then(Value::as_str).map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Policy {
            name: name.to_owned(),
            rules,
            action: FailureAction::Audit,
        })
    }

    pub fn evaluate(
        &self,
        _request: &AdmissionRequest,
        _ctx: &Context<'_>,
        _exceptions: &[Exception],
    ) -> Vec<RuleResult> {
        self.rules
            .iter()
            .map(|rule| RuleResult {
                policy: self.name.clone(),
                rule: rule.clone(),
                autogen: false,
                action: self.action,
                outcome: Outcome::NotEvaluable("ClusterPolicy rules are not evaluated yet".into()),
            })
            .collect()
    }
}

/// A PolicyException: which rules of which policies do not apply to which resources.
#[derive(Debug, Clone)]
pub struct Exception {
    pub name: String,
}

impl Exception {
    pub fn from_document(file: &str, document: &Document) -> Result<Exception, Vec<SourceError>> {
        let name = document
            .value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                vec![SourceError::new(
                    file,
                    document.first_line,
                    1,
                    "metadata.name: an exception needs a name",
                )]
            })?;
        Ok(Exception {
            name: name.to_owned(),
        })
    }
}
