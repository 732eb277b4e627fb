//! Operating a rollout: pause, resume and abort; and its rollback or removal, asked for as a new
//! rollout that waits for another approver.

use serde_json::json;

use super::load;
use crate::audit::ssr::Event;
use crate::auth::{authorize, Action, Principal};
use crate::db::{new_id, Db};
use crate::error::{AppError, OrFault, ServerResult};
use crate::rollouts::ssr::plan::{self, Plan};
use crate::rollouts::ssr::queries::{self, NewRolloutRow, NewWaveRow};
use crate::rollouts::{Operation, Rollout, RolloutKind, RolloutState, Selector, WaveState};

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
    let action = match operation {
        Operation::Pause => "rollout.pause",
        Operation::Resume => "rollout.resume",
        _ => "rollout.abort",
    };
    Event::new(action, "rollout", id)
        .detail(json!({ "from": state.as_str() }))
        .record(&mut *tx, who, now)
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
    let action = if kind == RolloutKind::Rollback {
        "rollout.rollback"
    } else {
        "rollout.remove"
    };
    Event::new(action, "rollout", &new)
        .detail(json!({
            "of": summary.id,
            "policy": summary.policy_name,
            "clusters": plans.iter().map(|(_, name, _)| name.as_str()).collect::<Vec<_>>(),
        }))
        .record(&mut *tx, who, now)
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
