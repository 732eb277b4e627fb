//! The rollouts service: propose, decide, operate, read. Every function takes the principal,
//! authorizes again, owns its transaction and records the audit entry inside it.

use serde_json::json;

use super::plan::{self, Plan};
use super::queries::{self, NewRolloutRow, NewWaveRow};
use crate::audit::ssr::{record, Event};
use crate::auth::{authorize, ensure_not_own, Action, Principal};
use crate::clusters::validate_name;
use crate::db::{new_id, Db};
use crate::error::{AppError, OrFault, ServerResult};
use crate::policies::ssr as policies;
use crate::rollouts::{
    Deployment, NewRollout, Operation, Rollout, RolloutKind, RolloutState, RolloutSummary,
    Selector, WaveState, MAX_APPROVALS, MAX_WAVES, MAX_WAVE_NAME,
};

/// The id of the policy a filter names (by id or name); `None` when the filter is empty.
async fn policy_filter(db: &Db, policy: Option<&str>) -> ServerResult<Option<String>> {
    let Some(key) = policy.map(str::trim).filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    Ok(Some(policies::find(db, key).await?.id))
}

pub async fn list(
    db: &Db,
    who: &Principal,
    policy: Option<&str>,
) -> ServerResult<Vec<RolloutSummary>> {
    authorize(Some(who), Action::Read)?;
    let policy_id = policy_filter(db, policy).await?;
    Ok(queries::list(db.pool(), policy_id.as_deref()).await?)
}

/// The rollouts waiting for `who`'s decision: pending approval, not asked for by them, not of a
/// version they wrote, and not yet decided by them on the wave that waits. Empty for a role that
/// may not approve.
pub async fn awaiting(db: &Db, who: &Principal) -> ServerResult<Vec<RolloutSummary>> {
    authorize(Some(who), Action::Read)?;
    if authorize(Some(who), Action::Approve).is_err() {
        return Ok(Vec::new());
    }
    let mut waiting = Vec::new();
    for summary in queries::list(db.pool(), None).await? {
        if summary.state != RolloutState::PendingApproval || summary.proposer_id == who.user_id {
            continue;
        }
        if summary.kind == RolloutKind::Apply {
            let version = policies::version_of(db, &summary.policy_id, summary.version).await?;
            if version.author_id == who.user_id {
                continue;
            }
        }
        let decided = queries::decisions(db.pool(), &summary.id).await?;
        if decided
            .iter()
            .any(|(user, d)| user == &who.user_id && d.wave == summary.current_wave)
        {
            continue;
        }
        waiting.push(summary);
    }
    Ok(waiting)
}

pub async fn get(db: &Db, who: &Principal, id: &str) -> ServerResult<Rollout> {
    authorize(Some(who), Action::Read)?;
    load(db, id).await
}

pub(super) async fn load(db: &Db, id: &str) -> ServerResult<Rollout> {
    let summary = queries::get(db.pool(), id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no rollout {id:?}")))?;
    let pool = db.pool();
    Ok(Rollout {
        namespaces: queries::namespaces(pool, id).await?,
        acknowledged_denials: queries::acknowledged_denials(pool, id).await?,
        waves: queries::waves(pool, id).await?,
        decisions: queries::decisions(pool, id)
            .await?
            .into_iter()
            .map(|(_, d)| d)
            .collect(),
        steps: queries::steps(pool, id).await?,
        summary,
    })
}

pub async fn deployments(
    db: &Db,
    who: &Principal,
    policy: Option<&str>,
) -> ServerResult<Vec<Deployment>> {
    authorize(Some(who), Action::Read)?;
    let policy_id = policy_filter(db, policy).await?;
    Ok(queries::deployments(db.pool(), policy_id.as_deref()).await?)
}

/// Whether a cluster is production by its environment's name or its `environment` / `env`
/// label (`prod`, `production`, any case): no change reaches one without an approval.
pub fn is_production(
    environment: &str,
    labels: &std::collections::BTreeMap<String, String>,
) -> bool {
    let named = |text: &str| {
        let text = text.trim();
        text.eq_ignore_ascii_case("prod") || text.eq_ignore_ascii_case("production")
    };
    named(environment)
        || ["environment", "env"]
            .iter()
            .any(|key| labels.get(*key).is_some_and(|value| named(value)))
}

pub use crate::state::RolloutRules as Rules;

/// Propose moving a policy version to a mode, in waves. The clusters of each wave are chosen now
/// (a cluster belongs to the first wave that selects it), so approvers see exactly where it goes;
/// the manifests are rendered now too, so a policy that cannot render is refused here.
/// A proposal checked and planned, before anything is written: the policy and version, the
/// objects every step will apply, and each wave's clusters.
struct Planned<'a> {
    policy: crate::policies::ssr::queries::PolicyRow,
    number: i64,
    namespaces: Vec<String>,
    exclusions: Vec<palisade_engine::exclusions::Exclusion>,
    objects: Vec<serde_json::Value>,
    waves: Vec<PlannedWave<'a>>,
}

/// A planned wave: its name, what was asked, and the clusters it takes.
type PlannedWave<'a> = (
    String,
    &'a crate::rollouts::NewWave,
    Vec<crate::clusters::Cluster>,
);

/// Each wave's position, name and cluster ids, as the impact groups them.
fn wave_clusters(waves: &[PlannedWave<'_>]) -> Vec<super::impact::WaveClusters> {
    waves
        .iter()
        .enumerate()
        .map(|(position, (name, _, members))| {
            (
                i64::try_from(position).unwrap_or(i64::MAX),
                name.clone(),
                members.iter().map(|c| c.id.clone()).collect(),
            )
        })
        .collect()
}

/// What the rollout `input` describes would do on each of its clusters, judged from their
/// inventories, before it is proposed (the propose form shows it per wave).
pub async fn proposal_impact(
    db: &Db,
    who: &Principal,
    now: i64,
    rules: Rules,
    input: NewRollout,
) -> ServerResult<crate::rollouts::RolloutImpact> {
    authorize(Some(who), Action::ProposeRollout)?;
    let planned = plan_proposal(db, now, rules, &input).await?;
    super::impact::judge(
        db,
        &planned.policy.id,
        input.mode,
        planned.objects.clone(),
        &wave_clusters(&planned.waves),
        now,
    )
    .await
}

pub async fn propose(
    db: &Db,
    who: &Principal,
    now: i64,
    rules: Rules,
    input: NewRollout,
) -> ServerResult<Rollout> {
    authorize(Some(who), Action::ProposeRollout)?;
    let Planned {
        policy,
        number,
        namespaces,
        exclusions,
        objects,
        waves,
    } = plan_proposal(db, now, rules, &input).await?;
    // Enforcing what would deny running workloads needs the proposer to say they know, and the
    // number goes on record with the proposal.
    let impact = if input.mode == crate::model::Mode::Enforce {
        let impact = super::impact::judge(
            db,
            &policy.id,
            input.mode,
            objects,
            &wave_clusters(&waves),
            now,
        )
        .await?;
        if let Some(why) = super::impact::refusal(&impact, number, input.acknowledge_denials) {
            return Err(AppError::Invalid(why).into());
        }
        Some(impact)
    } else {
        None
    };
    let mut tx = db.begin().await?;
    let id = new_id();
    queries::insert(
        &mut *tx,
        &NewRolloutRow {
            id: &id,
            kind: RolloutKind::Apply,
            parent_id: "",
            policy_id: &policy.id,
            version: number,
            mode: input.mode,
            namespaces: &namespaces,
            state: RolloutState::PendingApproval,
            proposer_id: &who.user_id,
            proposer_name: &who.display_name,
            note: input.note.trim(),
            now,
            acknowledged_denials: impact.as_ref().map(|i| i.denied),
        },
    )
    .await?;
    // Checked after the insert, in the same transaction: the insert takes the write lock first.
    if let Some(other) = queries::unfinished_of_policy(&mut *tx, &policy.id, &id).await? {
        return Err(AppError::Conflict(format!(
            "rollout {other} of policy `{}` has not finished: let it finish, or abort or reject it first",
            policy.name
        )).into());
    }
    crate::exceptions::ssr::save_rollout_exclusions(&mut tx, &id, &exclusions).await?;
    for (position, (name, wave, members)) in waves.iter().enumerate() {
        let position = i64::try_from(position).unwrap_or(i64::MAX);
        queries::insert_wave(
            &mut *tx,
            &id,
            &NewWaveRow {
                position,
                name,
                selector: &wave.selector,
                approvals_required: i64::from(wave.approvals),
                soak_secs: i64::try_from(wave.soak_secs).unwrap_or(i64::MAX),
                violation_threshold: wave
                    .violation_threshold
                    .map(|t| i64::try_from(t).unwrap_or(i64::MAX)),
                state: if position == 0 {
                    WaveState::Approval
                } else {
                    WaveState::Waiting
                },
                started_ms: 0,
            },
        )
        .await?;
        for cluster in members {
            queries::insert_step(
                &mut *tx,
                &new_id(),
                &id,
                position,
                &cluster.id,
                &cluster.name,
                "",
            )
            .await?;
        }
    }
    record(
        &mut *tx,
        who,
        now,
        Event {
            action: "rollout.propose",
            target_kind: "rollout",
            target_id: &id,
            detail: json!({
                "policy": policy.name,
                "version": number,
                "mode": input.mode.as_str(),
                "exceptions": exclusions.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
                "waves": waves.iter().map(|(name, wave, members)| json!({
                    "name": name,
                    "selector": wave.selector.describe(),
                    "approvals": wave.approvals,
                    "clusters": members.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
                "impact": impact.as_ref().map(super::impact::on_record),
            }),
        },
    )
    .await?;
    let first = waves.first().map_or("", |(name, _, _)| name.as_str());
    crate::notify::ssr::enqueue(
        &mut tx,
        now,
        &crate::notify::Notice {
            kind: crate::notify::NoticeKind::ApprovalRequested,
            title: format!(
                "Approval requested: {} to {}",
                policy.name,
                input.mode.as_str()
            ),
            text: format!(
                "{} proposed version {number} of {} in {} mode; wave {first} waits for approval.",
                who.display_name,
                policy.name,
                input.mode.as_str()
            ),
            link: Some(format!("/rollouts/{id}")),
        },
    )
    .await?;
    tx.commit().await?;
    load(db, &id).await
}

/// Approve or reject the wave waiting for approval. Nobody decides on their own rollout, and each
/// person decides once per wave. Enough approvals start the wave; one rejection ends the rollout.
pub async fn decide(
    db: &Db,
    who: &Principal,
    now: i64,
    id: &str,
    approve: bool,
    comment: &str,
) -> ServerResult<Rollout> {
    authorize(Some(who), Action::Approve)?;
    let rollout = load(db, id).await?;
    let summary = &rollout.summary;
    ensure_not_own(who, &summary.proposer_id, "rollout")?;
    if summary.kind == RolloutKind::Apply {
        // Four eyes on the change itself: whoever wrote the version cannot approve rolling it out,
        // even when someone else proposed it.
        let version = policies::version_of(db, &summary.policy_id, summary.version).await?;
        if version.author_id == who.user_id {
            return Err(AppError::Forbidden(format!(
                "you wrote version {} of this policy; another approver must approve rolling it out",
                summary.version
            ))
            .into());
        }
    }
    if summary.state != RolloutState::PendingApproval {
        return Err(AppError::Conflict(format!(
            "this rollout is {}, not waiting for approval",
            summary.state.as_str()
        ))
        .into());
    }
    let comment = comment.trim();
    if !approve && comment.is_empty() {
        return Err(
            AppError::Invalid("say why in a comment when you reject a rollout".into()).into(),
        );
    }
    let wave = rollout
        .waves
        .iter()
        .find(|w| w.position == summary.current_wave && w.state == WaveState::Approval)
        .ok_or_else(|| AppError::Conflict("no wave of this rollout waits for approval".into()))?;
    let decided = queries::decisions(db.pool(), id).await?;
    if decided
        .iter()
        .any(|(user, d)| user == &who.user_id && d.wave == wave.position)
    {
        return Err(
            AppError::Conflict(format!("you already decided on wave `{}`", wave.name)).into(),
        );
    }
    let approvals = decided
        .iter()
        .filter(|(_, d)| d.wave == wave.position && d.approve)
        .count()
        + usize::from(approve);

    // An approver of an `enforce` wave approves knowing what it would deny now: the number,
    // judged from the wave's inventories, is recorded with the approval.
    // A rollback or removal records it too: what it leaves may deny, or stop denying.
    let impact = if approve
        && (summary.kind != RolloutKind::Apply || summary.mode == crate::model::Mode::Enforce)
    {
        Some(super::impact::of_waves(db, &rollout, Some(wave.position), now).await?)
    } else {
        None
    };
    let mut tx = db.begin().await?;
    queries::insert_decision(&mut *tx, id, wave.position, who, approve, comment, now)
        .await
        .map_err(|err| match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                AppError::Conflict(format!("you already decided on wave `{}`", wave.name))
            }
            _ => AppError::internal("saving a decision", err),
        })?;
    let changed = if !approve {
        queries::set_wave_state(
            &mut *tx,
            id,
            wave.position,
            WaveState::Approval,
            WaveState::Skipped,
            None,
            Some(now),
        )
        .await?;
        queries::skip_open_waves(&mut *tx, id).await?;
        queries::skip_pending_steps(&mut *tx, id, "the rollout was rejected", now).await?;
        queries::set_state(
            &mut *tx,
            id,
            &[RolloutState::PendingApproval],
            RolloutState::Rejected,
            None,
            now,
        )
        .await?
    } else if i64::try_from(approvals).unwrap_or(i64::MAX) >= wave.approvals_required {
        queries::set_wave_state(
            &mut *tx,
            id,
            wave.position,
            WaveState::Approval,
            WaveState::Applying,
            Some(now),
            None,
        )
        .await?
            && queries::set_state(
                &mut *tx,
                id,
                &[RolloutState::PendingApproval],
                RolloutState::Applying,
                None,
                now,
            )
            .await?
    } else {
        true
    };
    if !changed {
        return Err(AppError::Conflict(
            "the rollout changed meanwhile; reload and decide again".into(),
        )
        .into());
    }
    record(
        &mut *tx,
        who,
        now,
        Event {
            action: if approve {
                "rollout.approve"
            } else {
                "rollout.reject"
            },
            target_kind: "rollout",
            target_id: id,
            detail: json!({
                "wave": wave.name,
                "comment": comment,
                "approvals": approvals,
                "required": wave.approvals_required,
                "impact": impact.as_ref().map(super::impact::on_record),
                "acknowledged_denials": rollout.acknowledged_denials,
            }),
        },
    )
    .await?;
    tx.commit().await?;
    load(db, id).await
}

/// Pause, resume or abort a rollout; or ask for a rollback or removal of an applied (or failed)
/// one, a new rollout of one wave that waits for someone else's approval.
pub async fn operate(
    db: &Db,
    who: &Principal,
    now: i64,
    id: &str,
    operation: Operation,
) -> ServerResult<Rollout> {
    authorize(Some(who), Action::OperateRollout)?;
    let rollout = load(db, id).await?;
    let state = rollout.summary.state;
    let (from, to): (&[RolloutState], RolloutState) = match operation {
        Operation::Pause => (&[RolloutState::Applying], RolloutState::Paused),
        Operation::Resume => (&[RolloutState::Paused], RolloutState::Applying),
        Operation::Abort => (
            &[
                RolloutState::PendingApproval,
                RolloutState::Applying,
                RolloutState::Paused,
            ],
            RolloutState::Aborted,
        ),
        Operation::Rollback | Operation::Remove => {
            return undo(db, who, now, &rollout, operation).await;
        }
    };
    if !from.contains(&state) {
        return Err(AppError::Conflict(format!(
            "a rollout that is {} cannot be {}d",
            state.as_str(),
            operation.as_str()
        ))
        .into());
    }
    let mut tx = db.begin().await?;
    if !queries::set_state(&mut *tx, id, from, to, None, now).await? {
        return Err(AppError::Conflict(
            "the rollout changed meanwhile; reload and try again".into(),
        )
        .into());
    }
    if operation == Operation::Abort {
        queries::skip_open_waves(&mut *tx, id).await?;
        queries::skip_pending_steps(&mut *tx, id, "the rollout was aborted", now).await?;
    }
    record(
        &mut *tx,
        who,
        now,
        Event {
            action: match operation {
                Operation::Pause => "rollout.pause",
                Operation::Resume => "rollout.resume",
                _ => "rollout.abort",
            },
            target_kind: "rollout",
            target_id: id,
            detail: json!({ "from": state.as_str() }),
        },
    )
    .await?;
    tx.commit().await?;
    load(db, id).await
}

/// A rollback (each cluster back to what it had before `rollout`) or a removal (the policy's
/// objects off `rollout`'s clusters), as a new rollout. Undoing changes clusters as much as
/// applying does, so it waits for one approval from someone other than who asked, like any change;
/// the plans are fixed now, so the approver reviews exactly what will run.
async fn undo(
    db: &Db,
    who: &Principal,
    now: i64,
    rollout: &Rollout,
    operation: Operation,
) -> ServerResult<Rollout> {
    let summary = &rollout.summary;
    if !matches!(summary.state, RolloutState::Applied | RolloutState::Failed) {
        return Err(AppError::Conflict(format!(
            "only an applied or failed rollout can be {}; this one is {}",
            if operation == Operation::Rollback {
                "rolled back"
            } else {
                "removed"
            },
            summary.state.as_str()
        ))
        .into());
    }
    if summary.kind != RolloutKind::Apply {
        return Err(AppError::Conflict(
            "a rollback or removal is undone by a new rollout, not by another rollback".into(),
        )
        .into());
    }
    let steps = queries::applied_steps(db.pool(), &summary.id).await?;
    if steps.is_empty() {
        return Err(AppError::Conflict(
            "no cluster of this rollout was applied, so there is nothing to undo".into(),
        )
        .into());
    }
    let mut plans = Vec::new();
    for (cluster_id, cluster_name, previous) in steps {
        let current = queries::deployment(db.pool(), &cluster_id, &summary.policy_id).await?;
        let plan: Plan = if operation == Operation::Rollback {
            let previous: Option<queries::Desired> = if previous.is_empty() {
                None
            } else {
                Some(serde_json::from_str(&previous).or_fault()?)
            };
            plan::rollback(current.as_ref(), previous.as_ref())
        } else {
            plan::removal(current.as_ref())
        };
        plans.push((cluster_id, cluster_name, plan));
    }
    let kind = if operation == Operation::Rollback {
        RolloutKind::Rollback
    } else {
        RolloutKind::Remove
    };

    let mut tx = db.begin().await?;
    let new = new_id();
    queries::insert(
        &mut *tx,
        &NewRolloutRow {
            id: &new,
            kind,
            parent_id: &summary.id,
            policy_id: &summary.policy_id,
            version: summary.version,
            mode: summary.mode,
            namespaces: &rollout.namespaces,
            state: RolloutState::PendingApproval,
            proposer_id: &who.user_id,
            proposer_name: &who.display_name,
            note: &format!("{} of rollout {}", kind.as_str(), summary.id),
            now,
            acknowledged_denials: None,
        },
    )
    .await?;
    if let Some(other) = queries::unfinished_of_policy(&mut *tx, &summary.policy_id, &new).await? {
        return Err(AppError::Conflict(format!(
            "rollout {other} of this policy has not finished: let it finish, or abort it first"
        ))
        .into());
    }
    queries::insert_wave(
        &mut *tx,
        &new,
        &NewWaveRow {
            position: 0,
            name: kind.as_str(),
            selector: &Selector::default(),
            approvals_required: 1,
            soak_secs: 0,
            violation_threshold: None,
            state: WaveState::Approval,
            started_ms: 0,
        },
    )
    .await?;
    for (cluster_id, cluster_name, plan) in &plans {
        let plan = serde_json::to_string(plan).or_fault()?;
        queries::insert_step(
            &mut *tx,
            &new_id(),
            &new,
            0,
            cluster_id,
            cluster_name,
            &plan,
        )
        .await?;
    }
    record(
        &mut *tx,
        who,
        now,
        Event {
            action: if kind == RolloutKind::Rollback {
                "rollout.rollback"
            } else {
                "rollout.remove"
            },
            target_kind: "rollout",
            target_id: &new,
            detail: json!({
                "of": summary.id,
                "policy": summary.policy_name,
                "clusters": plans.iter().map(|(_, name, _)| name.as_str()).collect::<Vec<_>>(),
            }),
        },
    )
    .await?;
    crate::notify::ssr::enqueue(
        &mut tx,
        now,
        &crate::notify::Notice {
            kind: crate::notify::NoticeKind::ApprovalRequested,
            title: format!(
                "Approval requested: {} of {}",
                kind.as_str(),
                summary.policy_name
            ),
            text: format!(
                "{} asked for a {} of rollout {} of {}; it waits for another approver.",
                who.display_name,
                kind.as_str(),
                summary.id,
                summary.policy_name
            ),
            link: Some(format!("/rollouts/{new}")),
        },
    )
    .await?;
    tx.commit().await?;
    load(db, &new).await
}

/// Check a proposal and plan it: the version renders, every wave takes at least one enabled
/// cluster, production is approved, Gatekeeper is there where needed.
async fn plan_proposal<'a>(
    db: &Db,
    now: i64,
    rules: Rules,
    input: &'a NewRollout,
) -> ServerResult<Planned<'a>> {
    let policy = policies::find(db, input.policy.trim()).await?;
    let number = input.version.unwrap_or(policy.current_version);
    let version = policies::version_of(db, &policy.id, number).await?;
    if input.waves.is_empty() || input.waves.len() > MAX_WAVES {
        return Err(AppError::Invalid(format!(
            "a rollout has 1 to {MAX_WAVES} waves; this one has {}",
            input.waves.len()
        ))
        .into());
    }
    let mut namespaces: Vec<String> = input
        .namespaces
        .iter()
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .collect();
    namespaces.sort();
    namespaces.dedup();
    for namespace in &namespaces {
        validate_name("namespace", namespace)?;
    }
    // The policy's active exceptions are fixed now, with the rollout, so every step applies
    // exactly the exclusions the approvers saw.
    let exclusions = crate::exceptions::ssr::exclusions(db, &policy.id, now).await?;
    let objects = crate::policies::ssr::render::desired_objects(
        &version.content,
        input.mode,
        &namespaces,
        &exclusions,
    )
    .map_err(|err| AppError::Invalid(format!("version {number} cannot be rolled out: {err}")))?;
    let needs = |suffix: &str| {
        objects.iter().any(|o| {
            o.get("apiVersion")
                .and_then(serde_json::Value::as_str)
                .and_then(|v| v.split_once('/'))
                .is_some_and(|(group, _)| group.ends_with(suffix))
        })
    };
    let needs_gatekeeper = needs("gatekeeper.sh");
    let needs_kyverno = needs("kyverno.io");

    let clusters = crate::clusters::ssr::service::list(db).await?;
    let mut taken: Vec<String> = Vec::new();
    let mut waves = Vec::new();
    for (position, wave) in input.waves.iter().enumerate() {
        let name = match wave.name.trim() {
            "" => wave
                .selector
                .environment
                .clone()
                .unwrap_or_else(|| format!("wave {}", position + 1)),
            name => name.to_owned(),
        };
        if position == 0 && wave.approvals == 0 {
            return Err(
                AppError::Invalid("the first wave needs at least one approval".into()).into(),
            );
        }
        if wave.approvals > MAX_APPROVALS {
            return Err(AppError::Invalid(format!(
                "wave `{name}`: at most {MAX_APPROVALS} approvals can be required"
            ))
            .into());
        }
        if name.chars().count() > MAX_WAVE_NAME {
            return Err(AppError::Invalid(format!(
                "waves[{position}].name: at most {MAX_WAVE_NAME} characters"
            ))
            .into());
        }
        if let Some(earlier) = waves
            .iter()
            .position(|(taken_name, _, _)| *taken_name == name)
        {
            return Err(AppError::Invalid(format!(
                "wave `{name}`: wave {} already has this name; give each wave its own name",
                earlier + 1
            ))
            .into());
        }
        let members: Vec<_> = clusters
            .iter()
            .filter(|c| !c.disabled && !taken.contains(&c.id))
            .filter(|c| wave.selector.matches(&c.environment, &c.labels))
            .cloned()
            .collect();
        if members.is_empty() {
            return Err(AppError::Invalid(format!(
                "wave `{name}` ({}) selects no enabled cluster that an earlier wave does not already take",
                wave.selector.describe()
            )).into());
        }
        if wave.approvals == 0 && rules.production_needs_approval {
            if let Some(production) = members
                .iter()
                .find(|c| is_production(&c.environment, &c.labels))
            {
                return Err(AppError::Invalid(format!(
                    "wave `{name}` reaches production cluster `{}`: it needs at least one approval",
                    production.name
                ))
                .into());
            }
        }
        if needs_gatekeeper {
            if let Some(without) = members.iter().find(|c| !c.capabilities.gatekeeper) {
                return Err(AppError::Invalid(format!(
                    "cluster `{}` has no Gatekeeper, which this policy needs",
                    without.name
                ))
                .into());
            }
        }
        if needs_kyverno {
            if let Some(without) = members.iter().find(|c| !c.capabilities.kyverno) {
                return Err(AppError::Invalid(format!(
                    "cluster `{}` has no Kyverno, which this policy needs",
                    without.name
                ))
                .into());
            }
        }
        taken.extend(members.iter().map(|c| c.id.clone()));
        waves.push((name, wave, members));
    }

    Ok(Planned {
        policy,
        number,
        namespaces,
        exclusions,
        objects,
        waves,
    })
}

#[cfg(test)]
mod tests {
    use super::is_production;

    #[test]
    fn production_is_told_by_environment_or_label() {
        let labels = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert!(is_production("prod", &labels(&[])));
        assert!(is_production("production", &labels(&[])));
        assert!(is_production("edge", &labels(&[("env", "PROD")])));
        assert!(is_production(
            "edge",
            &labels(&[("environment", "Production")])
        ));
        assert!(!is_production("dev", &labels(&[("tier", "prod")])));
        assert!(!is_production("preprod", &labels(&[])));
    }
}
