//! Rollouts: a policy version moved to a mode on a set of clusters, wave by wave, each wave behind
//! its gates (approvals from someone other than the proposer, a soak time, a violation threshold).
//!
//! The state machine lives in the database (`ssr::queries`), so a server killed mid-rollout picks
//! up where it stopped and replicas never run one step twice: the executor (`ssr::executor`) claims
//! a step with a compare-and-set and only the claim's holder may finish it. Every step lands in the
//! audit log. A rollout's kind is `apply` (what people propose), `rollback` (re-apply what each
//! cluster had before an apply) or `remove` (take the policy's objects off the clusters).

pub mod pages;
#[cfg(feature = "ssr")]
pub mod ssr;

use crate::wire::wire_enum;
use std::collections::BTreeMap;

use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use serde::{Deserialize, Serialize};

use crate::error::AppError;
pub use crate::model::{Drift, Mode};

wire_enum! {
    /// Where a rollout is in its life.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    pub enum RolloutState as "rollout state" {
        /// The current wave waits for approvals.
        PendingApproval = "pending_approval",
        /// The current wave is being applied or soaked.
        Applying = "applying",
        /// An operator paused it: nothing new starts; steps already sent finish.
        Paused = "paused",
        Applied = "applied",
        Failed = "failed",
        Rejected = "rejected",
        Aborted = "aborted",
        /// A rollback undid it.
        RolledBack = "rolled_back",
    }
}

impl RolloutState {
    /// Nothing more happens to a rollout in this state (a finished apply can still be rolled back).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            RolloutState::Applied
                | RolloutState::Failed
                | RolloutState::Rejected
                | RolloutState::Aborted
                | RolloutState::RolledBack
        )
    }
}

wire_enum! {
    /// What a rollout does on each cluster.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    pub enum RolloutKind as "rollout kind" {
        /// Apply a policy version in a mode.
        Apply = "apply",
        /// Put back what each cluster had before an apply (or remove what the apply added).
        Rollback = "rollback",
        /// Remove the policy's objects (Pod Security: its labels) from the clusters.
        Remove = "remove",
    }
}

wire_enum! {
    /// Where a wave is.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    pub enum WaveState as "wave state" {
        /// An earlier wave is not done yet.
        Waiting = "waiting",
        /// Waits for approvals.
        Approval = "approval",
        Applying = "applying",
        /// Applied; waiting out the soak time before the next wave.
        Soaking = "soaking",
        Done = "done",
        Failed = "failed",
        /// The rollout ended (rejected, aborted) before this wave ran.
        Skipped = "skipped",
    }
}

wire_enum! {
    /// Where one cluster of a wave is.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    pub enum StepState as "step state" {
        Pending = "pending",
        Running = "running",
        Applied = "applied",
        Failed = "failed",
        Skipped = "skipped",
    }
}

impl StepState {
    pub fn is_final(self) -> bool {
        matches!(
            self,
            StepState::Applied | StepState::Failed | StepState::Skipped
        )
    }
}

/// Which clusters a wave takes: those of an environment, those carrying all the labels, or both.
/// An empty selector takes every enabled cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct Selector {
    #[serde(default)]
    pub environment: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl Selector {
    pub fn matches(&self, environment: &str, labels: &BTreeMap<String, String>) -> bool {
        self.environment
            .as_deref()
            .is_none_or(|wanted| wanted == environment)
            && self
                .labels
                .iter()
                .all(|(key, value)| labels.get(key) == Some(value))
    }

    /// `environment=prod, tier=1` as people read it.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .environment
            .iter()
            .map(|env| format!("environment={env}"))
            .collect();
        parts.extend(self.labels.iter().map(|(k, v)| format!("{k}={v}")));
        if parts.is_empty() {
            "every cluster".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

/// Most waves a rollout may have.
pub const MAX_WAVES: usize = 10;

/// Most approvals one wave may require.
pub const MAX_APPROVALS: u32 = 5;

/// Longest wave name, in characters.
pub const MAX_WAVE_NAME: usize = 63;

/// A wave as it is proposed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct NewWave {
    /// e.g. `dev`, `staging`, `prod`; defaults to the environment or `wave N`.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub selector: Selector,
    /// Approvals needed before the wave starts (from people other than the proposer). The first
    /// wave needs at least one.
    #[serde(default = "one")]
    pub approvals: u32,
    /// Seconds to wait after the wave is applied before the next one may start.
    #[serde(default)]
    pub soak_secs: u64,
    /// Most violations of the policy its clusters may report during the soak; more fail the wave.
    #[serde(default)]
    pub violation_threshold: Option<u64>,
}

fn one() -> u32 {
    1
}

/// A proposal: move `policy`'s `version` (its current version when absent) to `mode`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct NewRollout {
    /// The policy's id or name.
    pub policy: String,
    #[serde(default)]
    pub version: Option<i64>,
    pub mode: Mode,
    pub waves: Vec<NewWave>,
    /// Pod Security policies: the namespaces that get the labels.
    #[serde(default)]
    pub namespaces: Vec<String>,
    #[serde(default)]
    pub note: String,
    /// An `enforce` rollout that would deny running workloads (judged from the inventory) is
    /// proposed only with this set: the proposer says they know.
    #[serde(default)]
    pub acknowledge_denials: bool,
}

/// One approval or rejection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct Decision {
    pub wave: i64,
    pub user_name: String,
    pub approve: bool,
    pub comment: String,
    pub at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct Wave {
    pub position: i64,
    pub name: String,
    pub selector: Selector,
    pub approvals_required: i64,
    pub soak_secs: i64,
    pub violation_threshold: Option<i64>,
    pub state: WaveState,
    pub started_ms: i64,
    pub finished_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct Step {
    pub id: String,
    pub wave: i64,
    pub cluster_id: String,
    pub cluster_name: String,
    pub state: StepState,
    pub attempts: i64,
    pub applies: i64,
    /// What happened last; the apiserver's own words when it refused.
    pub message: String,
    pub started_ms: i64,
    pub finished_ms: i64,
}

/// A rollout as lists show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct RolloutSummary {
    pub id: String,
    pub kind: RolloutKind,
    pub parent_id: String,
    pub policy_id: String,
    pub policy_name: String,
    pub version: i64,
    pub mode: Mode,
    pub state: RolloutState,
    pub current_wave: i64,
    pub proposer_id: String,
    pub proposer_name: String,
    pub note: String,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// Steps applied / all steps.
    pub applied: i64,
    pub steps: i64,
}

/// A rollout with its waves, decisions and per-cluster steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct Rollout {
    pub summary: RolloutSummary,
    pub namespaces: Vec<String>,
    /// For an `enforce` rollout: the workloads it would deny when proposed, which the proposer
    /// acknowledged (`None`: not enforce, or proposed before impact was known).
    pub acknowledged_denials: Option<i64>,
    pub waves: Vec<Wave>,
    pub decisions: Vec<Decision>,
    pub steps: Vec<Step>,
}

/// What a rollout would do on each of its clusters, judged from their inventories: exactly the
/// objects its steps apply, in its mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct RolloutImpact {
    pub computed_ms: i64,
    pub mode: Mode,
    /// Workloads denied on all its clusters together (what an exception covers left out).
    pub denied: i64,
    /// Every cluster's inventory was listed whole, readable and evaluated in time: when false,
    /// `denied` may be short of what would happen.
    pub complete: bool,
    pub waves: Vec<WaveImpact>,
}

/// One wave's part of a [`RolloutImpact`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct WaveImpact {
    pub position: i64,
    pub name: String,
    pub clusters: Vec<crate::impact::ClusterImpact>,
}

wire_enum! {
    /// What an operator can do to a running rollout.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    pub enum Operation as "operation" {
        Pause = "pause",
        Resume = "resume",
        Abort = "abort",
        /// Put back each cluster's previous deployment (a new rollout of kind `rollback`).
        Rollback = "rollback",
        /// Take the policy's objects off this rollout's clusters (a new rollout of kind `remove`).
        Remove = "remove",
    }
}

/// What is live where: the desired state of one policy on one cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct Deployment {
    pub cluster_id: String,
    pub cluster_name: String,
    pub policy_id: String,
    pub policy_name: String,
    pub version: i64,
    pub mode: Mode,
    pub rollout_id: String,
    pub applied_ms: i64,
    pub drift: Drift,
    /// Which object drifted and how ("… was deleted", "… spec.validationActions differs").
    pub drift_detail: String,
    pub checked_ms: i64,
}

/// How a deployment's drift is shown: the badge's classes and its words (`detail` says what
/// drifted).
pub fn drift_badge(drift: Drift, detail: &str) -> (&'static str, String) {
    match drift {
        Drift::InSync => ("badge good", "in sync".to_owned()),
        Drift::Drifted => ("badge bad", format!("drifted: {detail}")),
        Drift::Unknown => ("badge muted", "not checked yet".to_owned()),
    }
}

/// Rollouts, newest first; only those of one policy when `policy` is set.
#[server(endpoint = "list_rollouts", input = Json)]
pub async fn list_rollouts(policy: Option<String>) -> Result<Vec<RolloutSummary>, AppError> {
    let call = crate::state::authorized(crate::auth::Action::Read)?;
    Ok(ssr::service::list(&call.db, &call.who, policy.as_deref()).await?)
}

/// What an `apply` rollout will send, exactly as its steps will apply it, and how that differs
/// from what each of its clusters runs now: what approvers review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct ProposedChange {
    pub version: i64,
    pub mode: Mode,
    /// The manifests as one YAML stream.
    pub manifests: String,
    /// Per cluster of the rollout, in wave order.
    pub clusters: Vec<ClusterChange>,
}

/// One cluster's part of a [`ProposedChange`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct ClusterChange {
    pub cluster: String,
    pub wave: String,
    /// The version and mode of this policy the cluster runs now, if any.
    pub running: Option<(i64, Mode)>,
    /// From what runs there now to what this rollout applies.
    pub diff: crate::policies::FileDiff,
}

#[server(endpoint = "get_proposed_change", input = Json)]
pub async fn get_proposed_change(id: String) -> Result<ProposedChange, AppError> {
    let call = crate::state::authorized(crate::auth::Action::Read)?;
    Ok(ssr::review::proposed(&call.db, &call.who, &id).await?)
}

#[server(endpoint = "get_rollout", input = Json)]
pub async fn get_rollout(id: String) -> Result<Rollout, AppError> {
    let call = crate::state::authorized(crate::auth::Action::Read)?;
    Ok(ssr::service::get(&call.db, &call.who, &id).await?)
}

/// A registered cluster as the propose form's wave preview needs it: its name, environment,
/// labels and whether it is disabled; never its address, credentials or last error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaveTarget {
    pub name: String,
    pub environment: String,
    pub labels: BTreeMap<String, String>,
    pub disabled: bool,
}

/// Every registered cluster, as waves select them (for people who may propose).
#[server(endpoint = "wave_targets", input = Json)]
pub async fn wave_targets() -> Result<Vec<WaveTarget>, AppError> {
    let call = crate::state::authorized(crate::auth::Action::ProposeRollout)?;
    let clusters = crate::clusters::ssr::service::list(&call.db).await?;
    Ok(clusters
        .into_iter()
        .map(|c| WaveTarget {
            name: c.name,
            environment: c.environment,
            labels: c.labels,
            disabled: c.disabled,
        })
        .collect())
}

/// Propose a rollout; it waits for the first wave's approvals.
#[server(endpoint = "propose_rollout", input = Json)]
pub async fn propose_rollout(input: NewRollout) -> Result<Rollout, AppError> {
    let call = crate::state::authorized(crate::auth::Action::ProposeRollout)?;
    let rules = crate::state::current()?.rollout_rules;
    Ok(ssr::service::propose(&call.db, &call.who, call.now, rules, input).await?)
}

/// What the rollout the propose form describes would do on each of its clusters, per wave. With
/// `progress`, a key the browser chose, how far it has got can be asked meanwhile
/// ([`crate::impact::impact_progress`]).
#[server(endpoint = "proposal_impact", input = Json)]
pub async fn proposal_impact(
    input: NewRollout,
    progress: Option<String>,
) -> Result<RolloutImpact, AppError> {
    let call = crate::state::authorized(crate::auth::Action::ProposeRollout)?;
    let rules = crate::state::current()?.rollout_rules;
    let tracked = crate::impact::ssr::progress::track_asked(&call.db, &call.who, progress)?;
    let progress = tracked
        .as_ref()
        .map(crate::impact::ssr::progress::Tracked::progress);
    let impact =
        ssr::service::proposal_impact(&call.db, &call.who, call.now, rules, input, progress).await;
    crate::impact::ssr::progress::finish(tracked).await;
    Ok(impact?)
}

/// What rollout `id` would do on each of its clusters now, per wave; `progress` as for
/// [`proposal_impact`].
#[server(endpoint = "get_rollout_impact", input = Json)]
pub async fn get_rollout_impact(
    id: String,
    progress: Option<String>,
) -> Result<RolloutImpact, AppError> {
    let call = crate::state::authorized(crate::auth::Action::Read)?;
    let tracked = crate::impact::ssr::progress::track_asked(&call.db, &call.who, progress)?;
    let progress = tracked
        .as_ref()
        .map(crate::impact::ssr::progress::Tracked::progress);
    let impact = ssr::impact::of_rollout(&call.db, &call.who, call.now, &id, progress).await;
    crate::impact::ssr::progress::finish(tracked).await;
    Ok(impact?)
}

/// Approve (or reject) the wave that waits for approval, with a comment.
#[server(endpoint = "decide_rollout", input = Json)]
pub async fn decide_rollout(
    id: String,
    approve: bool,
    comment: String,
) -> Result<Rollout, AppError> {
    let call = crate::state::authorized(crate::auth::Action::Approve)?;
    Ok(ssr::service::decide(&call.db, &call.who, call.now, &id, approve, &comment).await?)
}

/// Pause, resume, abort, roll back or remove. Rollback and removal return the new rollout.
#[server(endpoint = "operate_rollout", input = Json)]
pub async fn operate_rollout(id: String, operation: Operation) -> Result<Rollout, AppError> {
    let call = crate::state::authorized(crate::auth::Action::OperateRollout)?;
    Ok(ssr::service::operate(&call.db, &call.who, call.now, &id, operation).await?)
}

/// What is live where, with drift; only one policy's when `policy` is set.
#[server(endpoint = "list_deployments", input = Json)]
pub async fn list_deployments(policy: Option<String>) -> Result<Vec<Deployment>, AppError> {
    let call = crate::state::authorized(crate::auth::Action::Read)?;
    Ok(ssr::service::deployments(&call.db, &call.who, policy.as_deref()).await?)
}

/// Compare every deployment with its cluster now (re-applying where the cluster reconciles);
/// returns how many were checked, drifted and re-applied.
#[server(endpoint = "check_drift", input = Json)]
pub async fn check_drift() -> Result<(usize, usize, usize), AppError> {
    crate::auth::ssr::require(crate::auth::Action::OperateRollout)?;
    let report = ssr::drift::check_now(&crate::state::current()?).await?;
    Ok((report.checked, report.drifted, report.reapplied))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_print_and_parse_back() {
        for state in RolloutState::ALL {
            assert_eq!(RolloutState::parse(state.as_str()), Some(state));
        }
        assert_eq!(RolloutState::parse("approved"), None);
        assert!(RolloutState::Applied.is_final() && !RolloutState::Paused.is_final());
        for kind in [
            RolloutKind::Apply,
            RolloutKind::Rollback,
            RolloutKind::Remove,
        ] {
            assert_eq!(RolloutKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(StepState::parse("running"), Some(StepState::Running));
        assert_eq!(WaveState::parse("soaking"), Some(WaveState::Soaking));
    }

    #[test]
    fn selectors_take_an_environment_and_every_label() {
        let labels: BTreeMap<String, String> = [
            ("tier".to_owned(), "1".to_owned()),
            ("team".to_owned(), "a".to_owned()),
        ]
        .into();
        let by_env = Selector {
            environment: Some("prod".into()),
            labels: BTreeMap::new(),
        };
        assert!(by_env.matches("prod", &labels));
        assert!(!by_env.matches("dev", &labels));
        let by_labels = Selector {
            environment: None,
            labels: [("tier".to_owned(), "1".to_owned())].into(),
        };
        assert!(by_labels.matches("dev", &labels));
        assert!(!by_labels.matches("dev", &BTreeMap::new()));
        assert!(Selector::default().matches("anything", &BTreeMap::new()));
        assert_eq!(Selector::default().describe(), "every cluster");
        assert_eq!(by_env.describe(), "environment=prod");
    }
}
