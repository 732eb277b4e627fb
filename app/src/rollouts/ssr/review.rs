//! What an approver reviews: the manifests an `apply` rollout's steps will send, computed the way
//! the steps compute them (the rollout's version, mode, namespaces and the exclusions fixed when
//! it was proposed), and how they differ from what each of its clusters runs now. Never another
//! version's manifests: an author cannot show approvers one version and roll out another.

use serde_json::Value;

use super::plan;
use super::queries;
use super::service::load;
use crate::auth::{authorize, Action, Principal};
use crate::db::Db;
use crate::error::{AppError, ServerResult};
use crate::policies::diff::diff_lines;
use crate::rollouts::{ClusterChange, ProposedChange, RolloutKind};

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
        return Err(AppError::Invalid(format!(
            "rollout {id} is a {}: it puts back or takes off what an earlier rollout applied",
            summary.kind.as_str()
        ))
        .into());
    }
    let version = crate::policies::ssr::version_of(db, &summary.policy_id, summary.version).await?;
    let exclusions = crate::exceptions::ssr::rollout_exclusions(db, id).await?;
    let objects = plan::desired_objects(
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
    })?;
    let manifests = to_yaml(&objects)?;
    let mut clusters = Vec::new();
    for step in &rollout.steps {
        let running = queries::deployment(db.pool(), &step.cluster_id, &summary.policy_id).await?;
        let (now_text, runs) = match &running {
            Some(d) => (to_yaml(&d.manifests)?, Some((d.version, d.mode))),
            None => (String::new(), None),
        };
        let wave = rollout
            .waves
            .iter()
            .find(|w| w.position == step.wave)
            .map(|w| w.name.clone())
            .unwrap_or_else(|| format!("wave {}", step.wave + 1));
        clusters.push(ClusterChange {
            cluster: step.cluster_name.clone(),
            wave,
            running: runs,
            diff: diff_lines(&step.cluster_name, &now_text, &manifests, CONTEXT),
        });
    }
    Ok(ProposedChange {
        version: summary.version,
        mode: summary.mode,
        manifests,
        clusters,
    })
}
