//! What a rollout would do on its clusters, judged from their inventories before it runs: its own
//! objects (version, mode, namespaces and the exclusions fixed with it) on each wave's clusters.
//! An `enforce` proposal that would deny running workloads needs its proposer's acknowledgement,
//! and the number is recorded with the proposal and again with each approval.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::service::load;
use crate::auth::{authorize, Action, Principal};
use crate::db::Db;
use crate::error::{AppError, ServerResult};
use crate::impact::ssr::progress::Progress;
use crate::impact::ssr::service::{judge_clusters, Subject};
use crate::impact::ClusterImpact;
use crate::model::Mode;
use crate::rollouts::{Rollout, RolloutImpact, RolloutKind, WaveImpact};

/// A wave as the impact groups it: position, name and the ids of its clusters.
pub type WaveClusters = (i64, String, Vec<String>);

/// Judge `objects` (what the steps apply, in `mode`) on each wave's clusters, counting into
/// `progress` as it goes.
pub async fn judge(
    db: &Db,
    policy_id: &str,
    mode: Mode,
    objects: Vec<Value>,
    waves: &[WaveClusters],
    now: i64,
    progress: Option<&Progress>,
) -> ServerResult<RolloutImpact> {
    let ids: Vec<String> = waves
        .iter()
        .flat_map(|(_, _, ids)| ids.iter().cloned())
        .collect();
    let judged = judge_clusters(
        db,
        policy_id,
        &Subject::Objects(objects),
        Some(&ids),
        now,
        progress,
    )
    .await?;
    let mut complete = true;
    let mut by_id: BTreeMap<String, ClusterImpact> = BTreeMap::new();
    for cluster in judged {
        complete &= cluster.complete();
        let impact = cluster.into_impact();
        by_id.insert(impact.cluster_id.clone(), impact);
    }
    // A cluster disabled since it was planned has no answer: the impact is not complete.
    complete &= ids.iter().all(|id| by_id.contains_key(id));
    Ok(group(mode, now, complete, waves, by_id))
}

/// The clusters' impacts in their waves. Pure.
fn group(
    mode: Mode,
    now: i64,
    complete: bool,
    waves: &[WaveClusters],
    mut by_id: BTreeMap<String, ClusterImpact>,
) -> RolloutImpact {
    let waves: Vec<WaveImpact> = waves
        .iter()
        .map(|(position, name, ids)| WaveImpact {
            position: *position,
            name: name.clone(),
            clusters: ids.iter().filter_map(|id| by_id.remove(id)).collect(),
        })
        .collect();
    RolloutImpact {
        computed_ms: now,
        mode,
        denied: waves.iter().flat_map(|w| &w.clusters).map(|c| c.deny).sum(),
        complete,
        waves,
    }
}

/// Why an `enforce` proposal is refused until acknowledged: it would deny running workloads.
/// Pure; `None` when nothing would be denied or the proposer acknowledged it.
pub fn refusal(impact: &RolloutImpact, version: i64, acknowledged: bool) -> Option<String> {
    if impact.denied == 0 || acknowledged {
        return None;
    }
    let per_cluster: Vec<String> = impact
        .waves
        .iter()
        .flat_map(|w| &w.clusters)
        .filter(|c| c.deny > 0)
        .map(|c| format!("{} on `{}`", c.deny, c.cluster_name))
        .collect();
    Some(format!(
        "acknowledge_denials: enforcing version {version} would deny {} running workload{} ({}); \
         review the impact, then acknowledge it to propose",
        impact.denied,
        if impact.denied == 1 { "" } else { "s" },
        per_cluster.join(", ")
    ))
}

/// What the audit log keeps of an impact: the total, whether it is complete, and per cluster.
pub fn on_record(impact: &RolloutImpact) -> Value {
    let clusters: BTreeMap<&str, i64> = impact
        .waves
        .iter()
        .flat_map(|w| &w.clusters)
        .map(|c| (c.cluster_name.as_str(), c.deny))
        .collect();
    json!({
        "denied": impact.denied,
        "complete": impact.complete,
        "clusters": clusters,
    })
}

/// What rollout `id` would do on each of its clusters now, for someone who may read it,
/// counting into `progress` as it goes.
pub async fn of_rollout(
    db: &Db,
    who: &Principal,
    now: i64,
    id: &str,
    progress: Option<&Progress>,
) -> ServerResult<RolloutImpact> {
    authorize(Some(who), Action::Read)?;
    let rollout = load(db, id).await?;
    of_waves(db, &rollout, None, now, progress).await
}

/// What `rollout` would do on the clusters of its waves (only wave `only`, when given).
pub async fn of_waves(
    db: &Db,
    rollout: &Rollout,
    only: Option<i64>,
    now: i64,
    progress: Option<&Progress>,
) -> ServerResult<RolloutImpact> {
    let summary = &rollout.summary;
    if summary.kind != RolloutKind::Apply {
        return undone(db, rollout, only, now, progress).await;
    }
    let objects = super::review::objects_of(db, rollout).await?;
    let waves: Vec<WaveClusters> = rollout
        .waves
        .iter()
        .filter(|w| only.is_none_or(|position| position == w.position))
        .map(|w| {
            let ids = rollout
                .steps
                .iter()
                .filter(|s| s.wave == w.position)
                .map(|s| s.cluster_id.clone())
                .collect();
            (w.position, w.name.clone(), ids)
        })
        .collect();
    judge(
        db,
        &summary.policy_id,
        summary.mode,
        objects,
        &waves,
        now,
        progress,
    )
    .await
}

/// What a rollback or removal would leave on each of its clusters: each step's stored plan (what
/// that cluster ran before, or nothing for a removal) judged on its own cluster, against what runs
/// there now (so a removal says how many workloads would no longer be denied).
async fn undone(
    db: &Db,
    rollout: &Rollout,
    only: Option<i64>,
    now: i64,
    progress: Option<&Progress>,
) -> ServerResult<RolloutImpact> {
    let summary = &rollout.summary;
    let plans = super::queries::step_plans(db.pool(), &summary.id).await?;
    let mut waves: Vec<WaveClusters> = Vec::new();
    let mut by_id: BTreeMap<String, ClusterImpact> = BTreeMap::new();
    let mut complete = true;
    for wave in rollout
        .waves
        .iter()
        .filter(|w| only.is_none_or(|position| position == w.position))
    {
        let mut ids = Vec::new();
        for step in rollout.steps.iter().filter(|s| s.wave == wave.position) {
            let stored = plans
                .iter()
                .find(|(id, _)| id == &step.id)
                .map(|(_, plan)| plan.as_str())
                .unwrap_or_default();
            let plan: super::plan::Plan = serde_json::from_str(stored)
                .map_err(|err| AppError::internal("reading a stored step plan", err))?;
            let only_this = [step.cluster_id.clone()];
            let judged = judge_clusters(
                db,
                &summary.policy_id,
                &Subject::Objects(plan.apply),
                Some(&only_this),
                now,
                progress,
            )
            .await?;
            // A cluster disabled since has no answer.
            complete &= !judged.is_empty();
            for cluster in judged {
                complete &= cluster.complete();
                let impact = cluster.into_impact();
                by_id.insert(impact.cluster_id.clone(), impact);
            }
            ids.push(step.cluster_id.clone());
        }
        waves.push((wave.position, wave.name.clone(), ids));
    }
    Ok(group(summary.mode, now, complete, &waves, by_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(name: &str, deny: i64) -> ClusterImpact {
        ClusterImpact::example(&format!("id-{name}"), name, deny, 1)
    }

    fn impact(denials: &[(&str, i64)]) -> RolloutImpact {
        let by_id = denials
            .iter()
            .map(|(name, deny)| (format!("id-{name}"), cluster(name, *deny)))
            .collect();
        let waves = vec![
            (0, "dev".to_owned(), vec!["id-a".to_owned()]),
            (
                1,
                "prod".to_owned(),
                vec!["id-b".to_owned(), "id-c".to_owned()],
            ),
        ];
        group(Mode::Enforce, 7, true, &waves, by_id)
    }

    #[test]
    fn clusters_fall_into_their_waves_and_the_denials_add_up() {
        let judged = impact(&[("a", 2), ("b", 0), ("c", 5)]);
        assert_eq!(judged.denied, 7);
        let names: Vec<Vec<&str>> = judged
            .waves
            .iter()
            .map(|w| w.clusters.iter().map(|c| c.cluster_name.as_str()).collect())
            .collect();
        assert_eq!(names, [vec!["a"], vec!["b", "c"]]);
        assert_eq!(
            on_record(&judged),
            json!({ "denied": 7, "complete": true, "clusters": { "a": 2, "b": 0, "c": 5 } })
        );
    }

    #[test]
    fn denials_need_an_acknowledgement_that_names_the_clusters() {
        let judged = impact(&[("a", 2), ("b", 0), ("c", 1)]);
        let why = refusal(&judged, 4, false).unwrap();
        assert!(why.starts_with("acknowledge_denials: "), "{why}");
        assert!(
            why.contains("version 4 would deny 3 running workloads"),
            "{why}"
        );
        assert!(why.contains("2 on `a`, 1 on `c`"), "{why}");
        assert!(!why.contains("`b`"), "{why}");
        assert_eq!(refusal(&judged, 4, true), None);
        assert_eq!(refusal(&impact(&[("a", 0)]), 4, false), None);
    }
}
