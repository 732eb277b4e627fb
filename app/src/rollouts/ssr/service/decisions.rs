//! Deciding on a rollout: the approvals and the rejection of the wave waiting for approval.

use serde_json::json;

use super::load;
use crate::audit::ssr::Event;
use crate::auth::{authorize, decision_comment, ensure_not_own, Action, Principal};
use crate::db::{conflict_if_unique, Db};
use crate::error::{AppError, ServerResult};
use crate::policies::ssr as policies;
use crate::rollouts::ssr::impact;
use crate::rollouts::ssr::queries;
use crate::rollouts::{Rollout, RolloutKind, RolloutState, WaveState};

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
    let comment = decision_comment(
        approve,
        comment,
        "say why in a comment when you reject a rollout",
    )?;
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
        Some(impact::of_waves(db, &rollout, Some(wave.position), now, None).await?)
    } else {
        None
    };
    let mut tx = db.begin().await?;
    queries::insert_decision(&mut *tx, id, wave.position, who, approve, comment, now)
        .await
        .map_err(conflict_if_unique(
            "saving a decision",
            format!("you already decided on wave `{}`", wave.name),
        ))?;
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
    let action = if approve {
        "rollout.approve"
    } else {
        "rollout.reject"
    };
    Event::new(action, "rollout", id)
        .detail(json!({
            "wave": wave.name,
            "comment": comment,
            "approvals": approvals,
            "required": wave.approvals_required,
            "impact": impact.as_ref().map(impact::on_record),
            "acknowledged_denials": rollout.acknowledged_denials,
        }))
        .record(&mut *tx, who, now)
        .await?;
    tx.commit().await?;
    load(db, id).await
}
