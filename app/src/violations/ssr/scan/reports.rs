//! What other engines report on a cluster, read by the scan as findings: the failed and warned
//! results of PolicyReports (`wgpolicyk8s.io/v1alpha2`, Kyverno's among others) and the violations
//! in the status of the Gatekeeper constraints Palisade deployed (Gatekeeper's audit).

use serde_json::Value;

use super::store::Finding;
use crate::violations::{Action, Source};

/// Violations a PolicyReport (or ClusterPolicyReport) lists: its failed and warned results.
pub fn report_findings(report: &Value, now_ms: i64) -> Vec<Finding> {
    let report_ns = report["metadata"]["namespace"].as_str().unwrap_or_default();
    let scope = &report["scope"];
    let mut out = Vec::new();
    for result in report["results"].as_array().into_iter().flatten() {
        let action = match result["result"].as_str() {
            Some("fail") | Some("error") => Action::Audit,
            Some("warn") => Action::Warn,
            _ => continue,
        };
        let policy = result["policy"]
            .as_str()
            .unwrap_or("policy-report")
            .to_owned();
        let message = result["message"].as_str().unwrap_or_default().to_owned();
        let resources: Vec<&Value> = match result["resources"].as_array() {
            Some(list) if !list.is_empty() => list.iter().collect(),
            _ if scope.is_object() => vec![scope],
            _ => Vec::new(),
        };
        for r in resources {
            let kind = r["kind"].as_str().unwrap_or_default();
            let api_version = r["apiVersion"].as_str().unwrap_or("v1");
            let group = api_version.split_once('/').map_or("", |(g, _)| g);
            out.push(Finding {
                policy_id: String::new(),
                policy: policy.clone(),
                resource: resource_of(group, kind),
                namespace: r["namespace"].as_str().unwrap_or(report_ns).to_owned(),
                name: r["name"].as_str().unwrap_or_default().to_owned(),
                uid: r["uid"].as_str().unwrap_or_default().to_owned(),
                action,
                source: Source::Report,
                message: message.clone(),
                at_ms: now_ms,
            });
        }
    }
    out
}

/// A finding's `resource` for an object of `kind` in API `group`: `group/plural`, or the plural
/// alone for the core group (as the apiserver's audit events name it).
fn resource_of(group: &str, kind: &str) -> String {
    let plural = palisade_engine::admission::resource_for_kind(kind);
    if group.is_empty() {
        plural
    } else {
        format!("{group}/{plural}")
    }
}

/// Violations a Gatekeeper constraint's status lists (its audit's findings).
pub fn constraint_findings(constraint: &Value, now_ms: i64) -> Vec<Finding> {
    let name = constraint["metadata"]["name"].as_str().unwrap_or_default();
    let mut out = Vec::new();
    for v in constraint["status"]["violations"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let action = match v["enforcementAction"].as_str() {
            Some("deny") => Action::Deny,
            Some("warn") => Action::Warn,
            _ => Action::Audit,
        };
        let kind = v["kind"].as_str().unwrap_or_default();
        let group = v["group"].as_str().unwrap_or_default();
        out.push(Finding {
            policy_id: String::new(),
            policy: name.to_owned(),
            resource: resource_of(group, kind),
            namespace: v["namespace"].as_str().unwrap_or_default().to_owned(),
            name: v["name"].as_str().unwrap_or_default().to_owned(),
            uid: String::new(),
            action,
            source: Source::Report,
            message: v["message"].as_str().unwrap_or_default().to_owned(),
            at_ms: now_ms,
        });
    }
    out
}
