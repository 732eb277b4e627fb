//! Impact preview: what a policy version (or an unsaved draft) would deny, warn of or audit on
//! each cluster if it were enforced there, computed from the inventory, grouped by cluster →
//! namespace → owning workload, with active exceptions applied and shown, and compared with the
//! version each cluster runs now.

pub mod findings;
#[cfg(feature = "ssr")]
pub mod ssr;
pub mod watch;

use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use serde::{Deserialize, Serialize};

use crate::error::AppError;
use crate::model::Mode;
use crate::policies::Content;
use crate::violations::Action;
use crate::wire::wire_enum;

wire_enum! {
    /// How a workload's verdict compares with the version the cluster runs now.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
    pub enum Change as "change" {
        /// Denied by this version, not by what runs now.
        New = "new",
        /// The same action as what runs now.
        Same = "same",
        /// Denied by what runs now, no longer by this version.
        Stops = "stops",
    }
}

/// One workload (the top owner of the objects concerned) and what the policy would do to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct WorkloadImpact {
    pub namespace: String,
    /// The owner's kind and name: `Deployment` `web` for the Pods of its ReplicaSets.
    pub owner_kind: String,
    pub owner_name: String,
    pub action: Action,
    /// An active exception covers it: reported, but the policy would leave it alone.
    pub excepted: bool,
    pub change: Change,
    /// Objects of this workload concerned (the Deployment, its ReplicaSets, its Pods).
    pub objects: i64,
    /// A few of them, `Kind/name`.
    pub examples: Vec<String>,
    /// The engine's message (for the first object).
    pub message: String,
}

/// The version a cluster runs now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct Running {
    pub version: i64,
    pub mode: Mode,
}

/// What the policy would do on one cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct ClusterImpact {
    pub cluster_id: String,
    pub cluster_name: String,
    pub environment: String,
    /// Objects of the inventory evaluated.
    pub objects: i64,
    /// When the inventory's stalest kind was last listed (0: some kind never was): how current
    /// this answer is.
    pub listed_ms: i64,
    /// Kinds the inventory cannot read on this cluster: what they hold is not in this answer.
    pub unreadable: Vec<String>,
    /// What runs there now; `None` when the policy is not deployed there.
    pub running: Option<Running>,
    /// Workloads that would be denied, warned, audited (active exceptions left out), and those
    /// an exception covers.
    pub deny: i64,
    pub warn: i64,
    pub audit: i64,
    pub excepted: i64,
    /// Workloads this version would deny that what runs now does not, and the reverse.
    pub newly_denied: i64,
    pub no_longer_denied: i64,
    /// `policy: reason` for what the engine cannot evaluate here (never guessed).
    pub not_evaluable: Vec<String>,
    /// The workloads, denied first; at most [`WORKLOADS_SHOWN`] (the counts are exact).
    pub workloads: Vec<WorkloadImpact>,
    /// True when evaluation stopped at its time budget: counts cover only what was evaluated.
    pub partial: bool,
}

#[cfg(test)]
impl ClusterImpact {
    /// A cluster's impact for the tests: `deny` workloads denied (none of them today), nothing
    /// else found, from an inventory of ten objects listed at `listed_ms`.
    pub(crate) fn example(id: &str, name: &str, deny: i64, listed_ms: i64) -> ClusterImpact {
        ClusterImpact {
            cluster_id: id.to_owned(),
            cluster_name: name.to_owned(),
            environment: "dev".to_owned(),
            objects: 10,
            listed_ms,
            unreadable: Vec::new(),
            running: None,
            deny,
            warn: 0,
            audit: 0,
            excepted: 0,
            newly_denied: deny,
            no_longer_denied: 0,
            not_evaluable: Vec::new(),
            workloads: Vec::new(),
            partial: false,
        }
    }
}

/// Workloads listed per cluster at most.
pub const WORKLOADS_SHOWN: usize = 2_000;

/// How far an impact being computed has got: objects evaluated, of the objects the inventories
/// it reads hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImpactSoFar {
    pub done: i64,
    pub total: i64,
}

/// The impact of one version (or draft) of a policy on every enabled cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct Impact {
    pub policy_id: String,
    pub policy_name: String,
    /// The version previewed; `None` for an unsaved draft.
    pub version: Option<i64>,
    /// The mode previewed: what enforcing would do (with what audit and warn would record).
    pub mode: Mode,
    pub computed_ms: i64,
    pub clusters: Vec<ClusterImpact>,
}

impl Impact {
    /// Workloads denied on every cluster together.
    pub fn denied(&self) -> i64 {
        self.clusters.iter().map(|c| c.deny).sum()
    }

    /// Every workload of every cluster as CSV (RFC 4180 quoting), one row each.
    pub fn to_csv(&self) -> String {
        use crate::audit::csv_field as field;
        let mut out = String::from(
            "cluster,environment,namespace,owner_kind,owner_name,action,excepted,change,objects,examples,message\r\n",
        );
        for cluster in &self.clusters {
            for w in &cluster.workloads {
                let row = [
                    field(&cluster.cluster_name),
                    field(&cluster.environment),
                    field(&w.namespace),
                    field(&w.owner_kind),
                    field(&w.owner_name),
                    w.action.as_str().to_owned(),
                    w.excepted.to_string(),
                    w.change.as_str().to_owned(),
                    w.objects.to_string(),
                    field(&w.examples.join(" ")),
                    field(&w.message),
                ];
                out.push_str(&row.join(","));
                out.push_str("\r\n");
            }
        }
        out
    }
}

/// A workload that keeps a namespace from the next Pod Security level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct Blocker {
    pub owner_kind: String,
    pub owner_name: String,
    /// Its objects that fail (the workload's template, its Pods).
    pub objects: i64,
    /// What fails, in Pod Security's words: `privileged (container "c" must not set …)`.
    pub checks: Vec<String>,
}

/// How far a namespace could go with Pod Security today.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct NamespaceReadiness {
    pub namespace: String,
    /// The strictest level (at `latest`) it could enforce with nothing denied: `privileged`,
    /// `baseline` or `restricted`.
    pub ready: String,
    /// The next level up; empty when it is ready for `restricted`.
    pub next: String,
    /// The newest Pod Security version (`v1.25`) at which `next` would deny nothing here, so
    /// `enforce-version` could be pinned there today; empty when none (or no next level).
    pub next_version: String,
    /// Workloads (top owners) with a pod template in it.
    pub workloads: i64,
    /// Workloads that fail the next level; the first of them in `blockers`.
    pub blocking: i64,
    pub blockers: Vec<Blocker>,
}

/// Pod Security readiness of every namespace of a cluster, from its inventory.
#[server(endpoint = "pod_security_readiness")]
pub async fn pod_security_readiness(
    cluster_id: String,
) -> Result<Vec<NamespaceReadiness>, AppError> {
    let call = crate::state::authorized(crate::auth::Action::Read)?;
    Ok(ssr::service::readiness(&call.db, &call.who, &cluster_id).await?)
}

/// The impact of enforcing a saved version (`version`), or the unsaved `draft` when given. With
/// `progress`, a key the browser chose, how far it has got can be asked meanwhile
/// ([`impact_progress`]).
#[server(endpoint = "policy_impact", input = Json)]
pub async fn policy_impact(
    policy_id: String,
    version: Option<i64>,
    draft: Option<Content>,
    progress: Option<String>,
) -> Result<Impact, AppError> {
    let action = if draft.is_some() {
        crate::auth::Action::EditPolicies
    } else {
        crate::auth::Action::Read
    };
    let call = crate::state::authorized(action)?;
    let tracked = ssr::progress::track_asked(&call.db, &call.who, progress)?;
    let progress = tracked.as_ref().map(ssr::progress::Tracked::progress);
    let impact = ssr::service::impact(
        &call.db, &call.who, call.now, &policy_id, version, draft, progress,
    )
    .await;
    ssr::progress::finish(tracked).await;
    Ok(impact?)
}

/// How far the impact this person asked for under `key` has got, on whichever replica computes
/// it; `None` when none runs.
#[server(endpoint = "impact_progress")]
pub async fn impact_progress(key: String) -> Result<Option<ImpactSoFar>, AppError> {
    let call = crate::state::authorized(crate::auth::Action::Read)?;
    Ok(ssr::progress::read_anywhere(&call.db, &call.who, &key, call.now).await?)
}
