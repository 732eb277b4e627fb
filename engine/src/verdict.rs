//! What every engine's answer comes down to: for one admission request, which action each policy
//! takes and why. `palisade check`, Palisade test suites and (later) scans all speak this.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What happens to a request. Ordered from mildest to strictest, so the verdict of several findings
/// is their maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Nothing to say: the request is admitted silently.
    Allow,
    /// Admitted; the violation is only recorded (audit annotation, audit-violations, dryrun).
    Audit,
    /// Admitted with a warning returned to the client.
    Warn,
    /// Rejected.
    Deny,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Audit => "audit",
            Action::Warn => "warn",
            Action::Deny => "deny",
        }
    }

    pub fn parse(text: &str) -> Option<Action> {
        match text.to_ascii_lowercase().as_str() {
            "allow" | "pass" | "admit" => Some(Action::Allow),
            "audit" => Some(Action::Audit),
            "warn" => Some(Action::Warn),
            "deny" | "fail" | "reject" => Some(Action::Deny),
            _ => None,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which engine produced a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EngineKind {
    /// ValidatingAdmissionPolicy (CEL).
    Vap,
    /// Pod Security Standards.
    PodSecurity,
    /// Gatekeeper ConstraintTemplate + Constraint (Rego).
    Gatekeeper,
    /// Kyverno ClusterPolicy / Policy / ValidatingPolicy.
    Kyverno,
    /// Resource templates (NetworkPolicy, RBAC): applied as written, checked by scans.
    Resource,
}

impl EngineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::Vap => "vap",
            EngineKind::PodSecurity => "pod-security",
            EngineKind::Gatekeeper => "gatekeeper",
            EngineKind::Kyverno => "kyverno",
            EngineKind::Resource => "resource",
        }
    }
}

/// One policy's answer for one request, when it has something to say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub engine: EngineKind,
    /// The policy (and binding or constraint) name, as the cluster would name it.
    pub policy: String,
    pub action: Action,
    /// The message the client (or the audit log) would see.
    pub message: String,
}

/// A policy the engine could not evaluate locally, and why. Never treated as "allow".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotEvaluable {
    pub engine: EngineKind,
    pub policy: String,
    pub reason: String,
}

/// Everything the engines say about one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Verdict {
    pub findings: Vec<Finding>,
    pub not_evaluable: Vec<NotEvaluable>,
}

impl Verdict {
    /// The strictest action among the findings; `Allow` when there are none.
    pub fn action(&self) -> Action {
        self.findings
            .iter()
            .map(|f| f.action)
            .max()
            .unwrap_or(Action::Allow)
    }

    pub fn merge(&mut self, other: Verdict) {
        self.findings.extend(other.findings);
        self.not_evaluable.extend(other.not_evaluable);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_strictest_finding_wins() {
        let finding = |action| Finding {
            engine: EngineKind::Vap,
            policy: "p".into(),
            action,
            message: String::new(),
        };
        let mut verdict = Verdict::default();
        assert_eq!(verdict.action(), Action::Allow);
        verdict.findings.push(finding(Action::Warn));
        verdict.findings.push(finding(Action::Audit));
        assert_eq!(verdict.action(), Action::Warn);
        verdict.findings.push(finding(Action::Deny));
        assert_eq!(verdict.action(), Action::Deny);
    }

    #[test]
    fn actions_parse_from_the_words_suites_use() {
        assert_eq!(Action::parse("Deny"), Some(Action::Deny));
        assert_eq!(Action::parse("pass"), Some(Action::Allow));
        assert_eq!(Action::parse("fail"), Some(Action::Deny));
        assert_eq!(Action::parse("maybe"), None);
    }
}
