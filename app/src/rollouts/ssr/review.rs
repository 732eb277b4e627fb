//! What an approver reviews: the manifests an `apply` rollout's steps will send, computed the way
//! the steps compute them (the rollout's version, mode, namespaces and the exclusions fixed when
//! it was proposed), and how they differ from what each of its clusters runs now. Never another
//! version's manifests: an author cannot show approvers one version and roll out another.
//! A rollback or removal shows each cluster's stored plan, fixed when it was asked for, the same
//! way: what runs there now against what its step will leave.

use serde_json::Value;

use super::plan;
use super::plan::Plan;
use super::queries;
use super::service::load;
use crate::auth::{authorize, Action, Principal};
use crate::db::Db;
use crate::error::{AppError, ServerResult};
use crate::policies::diff::diff_lines;
use crate::rollouts::{ClusterChange, ProposedChange, Rollout, RolloutKind, Step};

/// Lines of context around each change in a cluster's diff.
const CONTEXT: usize = 3;

/// The objects as one YAML stream, each headed by what it is.
pub fn to_yaml(objects: &[Value]) -> ServerResult<String> {
    let mut out = String::new();
    for object in objects {
        if !out.is_empty() {
            out.push_str("---\n");
        }
        out.push_str(&format!("# {}\n", plan::describe(object)));
        out.push_str(&serde_yaml_ng::to_string(object).map_err(|err| {
            AppError::Invalid(format!("a manifest cannot be written as YAML: {err}"))
        })?);
    }
    Ok(out)
}

/// The change rollout `id` proposes, for someone who may read it.
pub async fn proposed(db: &Db, who: &Principal, id: &str) -> ServerResult<ProposedChange> {
    authorize(Some(who), Action::Read)?;
    let rollout = load(db, id).await?;
    let summary = &rollout.summary;
    if summary.kind != RolloutKind::Apply {
        return undone(db, &rollout).await;
    }
    let objects = objects_of(db, &rollout).await?;
    let manifests = to_yaml(&objects)?;
    let mut clusters = Vec::new();
    for step in &rollout.steps {
        let wave = rollout
            .waves
            .iter()
            .find(|w| w.position == step.wave)
            .map(|w| w.name.clone())
            .unwrap_or_else(|| format!("wave {}", step.wave + 1));
        clusters.push(change_on(db, &summary.policy_id, step, wave, &manifests).await?);
    }
    Ok(ProposedChange {
        version: summary.version,
        mode: summary.mode,
        manifests,
        clusters,
    })
}

/// The objects an `apply` rollout's steps send: its version in its mode, its namespaces and the
/// exclusions fixed when it was proposed.
pub async fn objects_of(db: &Db, rollout: &Rollout) -> ServerResult<Vec<Value>> {
    let summary = &rollout.summary;
    let version = crate::policies::ssr::version_of(db, &summary.policy_id, summary.version).await?;
    let exclusions = crate::exceptions::ssr::rollout_exclusions(db, &summary.id).await?;
    crate::policies::ssr::render::desired_objects(
        &version.content,
        summary.mode,
        &rollout.namespaces,
        &exclusions,
    )
    .map_err(|err| {
        AppError::Invalid(format!(
            "version {} cannot be rendered: {err}",
            summary.version
        ))
        .into()
    })
}

/// What a rollback or removal does on each of its clusters: the diff from what runs there now to
/// what its step's stored plan leaves (nothing, for a removal). No common manifests: each cluster
/// goes back to its own earlier state.
async fn undone(db: &Db, rollout: &Rollout) -> ServerResult<ProposedChange> {
    let summary = &rollout.summary;
    let plans = queries::step_plans(db.pool(), &summary.id).await?;
    let mut clusters = Vec::new();
    for step in &rollout.steps {
        let stored = plans
            .iter()
            .find(|(id, _)| id == &step.id)
            .map(|(_, plan)| plan.as_str())
            .unwrap_or_default();
        let plan: Plan = serde_json::from_str(stored)
            .map_err(|err| AppError::internal("reading a stored step plan", err))?;
        let wave = summary.kind.as_str().to_owned();
        let target = to_yaml(&plan.apply)?;
        clusters.push(change_on(db, &summary.policy_id, step, wave, &target).await?);
    }
    Ok(ProposedChange {
        version: summary.version,
        mode: summary.mode,
        manifests: String::new(),
        clusters,
    })
}

/// One cluster's part of a change: what of `policy_id` runs on `step`'s cluster now, and the diff
/// from it to `target` (the manifests the step leaves there).
async fn change_on(
    db: &Db,
    policy_id: &str,
    step: &Step,
    wave: String,
    target: &str,
) -> ServerResult<ClusterChange> {
    let running = queries::deployment(db.pool(), &step.cluster_id, policy_id).await?;
    let now_text = match &running {
        Some(d) => to_yaml(&d.manifests)?,
        None => String::new(),
    };
    Ok(ClusterChange {
        cluster: step.cluster_name.clone(),
        wave,
        running: running.as_ref().map(|d| (d.version, d.mode)),
        diff: diff_lines(&step.cluster_name, &now_text, target, CONTEXT),
    })
}
