//! Impact object by object, for automation: `POST /api/v1/impact` and `palisade impact` answer
//! with every object a policy would deny, warn of or audit on each cluster, and the workload that
//! owns it. The Impact tab's grouped view is [`super::Impact`].

use serde::{Deserialize, Serialize};

use crate::violations::Action;

/// Findings listed per cluster at most; the counts stay exact past it.
pub const FINDINGS_SHOWN: usize = 10_000;

/// The largest policy source (with its parameters) an impact request may carry, in bytes.
pub const MAX_SOURCE_BYTES: usize = 256 * 1024;

/// Clusters one request may name at most.
pub const MAX_CLUSTERS: usize = 200;

/// What to judge: a stored policy (its current version, or `version`), or a policy `source`
/// that need not be stored. Exactly one of `policy` and `source`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ImpactRequest {
    /// A stored policy, by id or name.
    #[serde(default)]
    pub policy: Option<String>,
    /// The stored policy's version; its current one when absent.
    #[serde(default)]
    pub version: Option<i64>,
    /// A policy's YAML (VAP + binding, ConstraintTemplate + Constraint, or a PodSecurityEntry),
    /// judged as if enforced; nothing is saved.
    #[serde(default)]
    pub source: Option<String>,
    /// Parameter objects for the source (a YAML stream).
    #[serde(default)]
    pub params: Option<String>,
    /// Cluster ids to judge; every enabled cluster when absent.
    #[serde(default)]
    pub clusters: Option<Vec<String>>,
}

/// The workload an object belongs to: its top owner, or the object itself when nothing owns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct OwnerRef {
    pub kind: String,
    pub name: String,
}

/// One thing the policy would do to one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct ObjectFinding {
    pub kind: String,
    /// Empty for a cluster-scoped object.
    pub namespace: String,
    pub name: String,
    pub owner: OwnerRef,
    pub action: Action,
    /// An active exception covers it: reported, but the policy would leave it alone.
    pub excepted: bool,
    /// The policy as the engine names it (`pod-security:baseline`, a VAP's or constraint's name).
    pub policy: String,
    /// The engine's message.
    pub message: String,
}

/// Findings an exception does not cover, by action, and every finding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub deny: i64,
    pub warn: i64,
    pub audit: i64,
    pub total: i64,
}

/// What the policy would do on one cluster, object by object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct ClusterFindings {
    /// The cluster's id (for `palisade impact`, the kubeconfig context).
    pub cluster: String,
    /// Objects evaluated.
    pub objects: i64,
    /// Every kind was read and every object evaluated: nothing is missing from this answer.
    pub complete: bool,
    /// Evaluation stopped at its time budget: the findings cover only what was evaluated.
    pub partial: bool,
    /// Kinds that could not be read: what they hold is not in this answer.
    pub unreadable: Vec<String>,
    /// Findings an exception does not cover, by action (exact even when `truncated`).
    pub deny: i64,
    pub warn: i64,
    pub audit: i64,
    /// More findings than [`FINDINGS_SHOWN`]: only the first are listed, denials first.
    pub truncated: bool,
    pub findings: Vec<ObjectFinding>,
}

impl ClusterFindings {
    /// A cluster's answer from what its judge found (at most [`FINDINGS_SHOWN`] listed).
    pub fn new(cluster: String, objects: i64, found: (Vec<ObjectFinding>, Counts)) -> Self {
        let (findings, counts) = found;
        ClusterFindings {
            cluster,
            objects,
            complete: true,
            partial: false,
            unreadable: Vec::new(),
            deny: counts.deny,
            warn: counts.warn,
            audit: counts.audit,
            truncated: i64::try_from(findings.len()).unwrap_or(i64::MAX) < counts.total,
            findings,
        }
    }
}

/// The answer of `POST /api/v1/impact`: one entry per cluster judged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct ImpactFindings {
    pub clusters: Vec<ClusterFindings>,
}

impl ImpactFindings {
    /// Denials on every cluster together.
    pub fn denied(&self) -> i64 {
        self.clusters.iter().map(|c| c.deny).sum()
    }
}
