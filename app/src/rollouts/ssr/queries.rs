//! Every SQL statement of rollouts and deployments. Each takes an executor, so the service runs
//! them inside its transactions. Transitions are compare-and-set updates (`WHERE state = $old`): of
//! two replicas racing for the same transition, exactly one sees a row change.

mod deployments;

pub use deployments::*;
use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Row};

use crate::model::Mode;
use crate::rollouts::{
    Decision, Deployment, Drift, RolloutKind, RolloutState, RolloutSummary, Selector, Step,
    StepState, Wave, WaveState,
};

const SUMMARY_COLUMNS: &str = "r.id, r.kind, r.parent_id, r.policy_id, p.name AS policy_name, \
     r.version, r.mode, r.state, r.current_wave, r.proposer_id, r.proposer_name, r.note, \
     r.created_ms, r.updated_ms, \
     (SELECT COUNT(*) FROM rollout_steps s WHERE s.rollout_id = r.id AND s.state = 'applied') AS applied, \
     (SELECT COUNT(*) FROM rollout_steps s WHERE s.rollout_id = r.id) AS steps";

fn summary(row: &AnyRow) -> Result<RolloutSummary, sqlx::Error> {
    let kind: String = row.try_get("kind")?;
    let mode: String = row.try_get("mode")?;
    let state: String = row.try_get("state")?;
    Ok(RolloutSummary {
        id: row.try_get("id")?,
        kind: RolloutKind::decode(&kind)?,
        parent_id: row.try_get("parent_id")?,
        policy_id: row.try_get("policy_id")?,
        policy_name: row.try_get("policy_name")?,
        version: row.try_get("version")?,
        mode: Mode::decode(&mode)?,
        state: RolloutState::decode(&state)?,
        current_wave: row.try_get("current_wave")?,
        proposer_id: row.try_get("proposer_id")?,
        proposer_name: row.try_get("proposer_name")?,
        note: row.try_get("note")?,
        created_ms: row.try_get("created_ms")?,
        updated_ms: row.try_get("updated_ms")?,
        applied: row.try_get("applied")?,
        steps: row.try_get("steps")?,
    })
}

pub async fn list<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    policy_id: Option<&str>,
) -> Result<Vec<RolloutSummary>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {SUMMARY_COLUMNS} FROM rollouts r JOIN policies p ON p.id = r.policy_id \
         WHERE ($1 = '' OR r.policy_id = $1) ORDER BY r.created_ms DESC, r.id LIMIT 500"
    ))
    .bind(policy_id.unwrap_or_default())
    .fetch_all(executor)
    .await?;
    rows.iter().map(summary).collect()
}

pub async fn get<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    id: &str,
) -> Result<Option<RolloutSummary>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {SUMMARY_COLUMNS} FROM rollouts r JOIN policies p ON p.id = r.policy_id WHERE r.id = $1"
    ))
    .bind(id)
    .fetch_optional(executor)
    .await?;
    row.as_ref().map(summary).transpose()
}

/// Rollouts the executor has to look at: applying ones (waves to advance, steps to run).
pub async fn active_ids<'e, E: Executor<'e, Database = Any>>(
    executor: E,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM rollouts WHERE state = 'applying' ORDER BY created_ms")
        .fetch_all(executor)
        .await
}

/// A rollout of `policy_id` other than `except` that has not finished, if any.
pub async fn unfinished_of_policy<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    policy_id: &str,
    except: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM rollouts WHERE policy_id = $1 AND id <> $2 \
         AND state IN ('pending_approval', 'applying', 'paused') LIMIT 1",
    )
    .bind(policy_id)
    .bind(except)
    .fetch_optional(executor)
    .await
}

/// The workloads an `enforce` rollout's proposer acknowledged it would deny.
pub async fn acknowledged_denials<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    id: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT acknowledged_denials FROM rollouts WHERE id = $1")
        .bind(id)
        .fetch_one(executor)
        .await
}

/// The namespaces of a rollout (JSON array).
pub async fn namespaces<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    id: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let text: String = sqlx::query_scalar("SELECT namespaces FROM rollouts WHERE id = $1")
        .bind(id)
        .fetch_one(executor)
        .await?;
    serde_json::from_str(&text).map_err(|e| sqlx::Error::Decode(e.into()))
}

pub struct NewRolloutRow<'a> {
    pub id: &'a str,
    pub kind: RolloutKind,
    pub parent_id: &'a str,
    pub policy_id: &'a str,
    pub version: i64,
    pub mode: Mode,
    pub namespaces: &'a [String],
    pub state: RolloutState,
    pub proposer_id: &'a str,
    pub proposer_name: &'a str,
    pub note: &'a str,
    pub now: i64,
    /// Workloads an `enforce` proposal would deny, as acknowledged by its proposer.
    pub acknowledged_denials: Option<i64>,
}

pub async fn insert<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    row: &NewRolloutRow<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO rollouts (id, kind, parent_id, policy_id, version, mode, namespaces, state, \
         current_wave, proposer_id, proposer_name, note, created_ms, updated_ms, \
         acknowledged_denials) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $10, $11, $12, $12, $13)",
    )
    .bind(row.id)
    .bind(row.kind.as_str())
    .bind(row.parent_id)
    .bind(row.policy_id)
    .bind(row.version)
    .bind(row.mode.as_str())
    .bind(serde_json::to_string(row.namespaces).unwrap_or_else(|_| "[]".into()))
    .bind(row.state.as_str())
    .bind(row.proposer_id)
    .bind(row.proposer_name)
    .bind(row.note)
    .bind(row.now)
    .bind(row.acknowledged_denials)
    .execute(executor)
    .await?;
    Ok(())
}

/// Move a rollout from `from` (any of them) to `to`; false when it was in none of them.
pub async fn set_state<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    id: &str,
    from: &[RolloutState],
    to: RolloutState,
    current_wave: Option<i64>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let from: Vec<String> = from.iter().map(|s| format!("'{}'", s.as_str())).collect();
    let done = sqlx::query(&format!(
        "UPDATE rollouts SET state = $1, updated_ms = $2, \
         current_wave = CASE WHEN $3 < 0 THEN current_wave ELSE $3 END \
         WHERE id = $4 AND state IN ({})",
        from.join(", ")
    ))
    .bind(to.as_str())
    .bind(now)
    .bind(current_wave.unwrap_or(-1))
    .bind(id)
    .execute(executor)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub struct NewWaveRow<'a> {
    pub position: i64,
    pub name: &'a str,
    pub selector: &'a Selector,
    pub approvals_required: i64,
    pub soak_secs: i64,
    pub violation_threshold: Option<i64>,
    pub state: WaveState,
    pub started_ms: i64,
}

pub async fn insert_wave<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    rollout_id: &str,
    wave: &NewWaveRow<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO rollout_waves (rollout_id, position, name, selector, approvals_required, \
         soak_secs, violation_threshold, state, started_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(rollout_id)
    .bind(wave.position)
    .bind(wave.name)
    .bind(serde_json::to_string(wave.selector).unwrap_or_else(|_| "{}".into()))
    .bind(wave.approvals_required)
    .bind(wave.soak_secs)
    .bind(wave.violation_threshold)
    .bind(wave.state.as_str())
    .bind(wave.started_ms)
    .execute(executor)
    .await?;
    Ok(())
}

pub async fn waves<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    rollout_id: &str,
) -> Result<Vec<Wave>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT position, name, selector, approvals_required, soak_secs, violation_threshold, \
         state, started_ms, finished_ms FROM rollout_waves WHERE rollout_id = $1 ORDER BY position",
    )
    .bind(rollout_id)
    .fetch_all(executor)
    .await?;
    rows.iter()
        .map(|row| {
            let selector: String = row.try_get("selector")?;
            let state: String = row.try_get("state")?;
            Ok(Wave {
                position: row.try_get("position")?,
                name: row.try_get("name")?,
                selector: serde_json::from_str(&selector)
                    .map_err(|e| sqlx::Error::Decode(e.into()))?,
                approvals_required: row.try_get("approvals_required")?,
                soak_secs: row.try_get("soak_secs")?,
                violation_threshold: row.try_get("violation_threshold")?,
                state: WaveState::decode(&state)?,
                started_ms: row.try_get("started_ms")?,
                finished_ms: row.try_get("finished_ms")?,
            })
        })
        .collect()
}

/// Move a wave from `from` to `to`, stamping `started_ms` or `finished_ms` when given.
pub async fn set_wave_state<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    rollout_id: &str,
    position: i64,
    from: WaveState,
    to: WaveState,
    started_ms: Option<i64>,
    finished_ms: Option<i64>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE rollout_waves SET state = $1, \
         started_ms = CASE WHEN $2 < 0 THEN started_ms ELSE $2 END, \
         finished_ms = CASE WHEN $3 < 0 THEN finished_ms ELSE $3 END \
         WHERE rollout_id = $4 AND position = $5 AND state = $6",
    )
    .bind(to.as_str())
    .bind(started_ms.unwrap_or(-1))
    .bind(finished_ms.unwrap_or(-1))
    .bind(rollout_id)
    .bind(position)
    .bind(from.as_str())
    .execute(executor)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Every wave not yet started or finished becomes `skipped` (the rollout ended).
pub async fn skip_open_waves<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    rollout_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE rollout_waves SET state = 'skipped' WHERE rollout_id = $1 \
         AND state IN ('waiting', 'approval')",
    )
    .bind(rollout_id)
    .execute(executor)
    .await?;
    Ok(())
}

pub async fn insert_decision<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    rollout_id: &str,
    wave: i64,
    who: &crate::auth::Principal,
    approve: bool,
    comment: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO rollout_decisions (rollout_id, wave, user_id, user_name, decision, comment, at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(rollout_id)
    .bind(wave)
    .bind(&who.user_id)
    .bind(&who.display_name)
    .bind(if approve { "approve" } else { "reject" })
    .bind(comment)
    .bind(now)
    .execute(executor)
    .await?;
    Ok(())
}

pub async fn decisions<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    rollout_id: &str,
) -> Result<Vec<(String, Decision)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT wave, user_id, user_name, decision, comment, at_ms FROM rollout_decisions \
         WHERE rollout_id = $1 ORDER BY at_ms, user_name",
    )
    .bind(rollout_id)
    .fetch_all(executor)
    .await?;
    rows.iter()
        .map(|row| {
            let decision: String = row.try_get("decision")?;
            Ok((
                row.try_get("user_id")?,
                Decision {
                    wave: row.try_get("wave")?,
                    user_name: row.try_get("user_name")?,
                    approve: decision == "approve",
                    comment: row.try_get("comment")?,
                    at_ms: row.try_get("at_ms")?,
                },
            ))
        })
        .collect()
}

pub async fn insert_step<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    id: &str,
    rollout_id: &str,
    wave: i64,
    cluster_id: &str,
    cluster_name: &str,
    plan: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO rollout_steps (id, rollout_id, wave, cluster_id, cluster_name, state, plan) \
         VALUES ($1, $2, $3, $4, $5, 'pending', $6)",
    )
    .bind(id)
    .bind(rollout_id)
    .bind(wave)
    .bind(cluster_id)
    .bind(cluster_name)
    .bind(plan)
    .execute(executor)
    .await?;
    Ok(())
}

const STEP_COLUMNS: &str =
    "id, wave, cluster_id, cluster_name, state, attempts, applies, message, \
     started_ms, finished_ms";

fn step(row: &AnyRow) -> Result<Step, sqlx::Error> {
    let state: String = row.try_get("state")?;
    Ok(Step {
        id: row.try_get("id")?,
        wave: row.try_get("wave")?,
        cluster_id: row.try_get("cluster_id")?,
        cluster_name: row.try_get("cluster_name")?,
        state: StepState::decode(&state)?,
        attempts: row.try_get("attempts")?,
        applies: row.try_get("applies")?,
        message: row.try_get("message")?,
        started_ms: row.try_get("started_ms")?,
        finished_ms: row.try_get("finished_ms")?,
    })
}

pub async fn steps<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    rollout_id: &str,
) -> Result<Vec<Step>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {STEP_COLUMNS} FROM rollout_steps WHERE rollout_id = $1 ORDER BY wave, cluster_name"
    ))
    .bind(rollout_id)
    .fetch_all(executor)
    .await?;
    rows.iter().map(step).collect()
}

/// A step as the executor needs it: the step, its rollout and its stored plan and previous state.
pub struct StepWork {
    pub step: Step,
    pub rollout_id: String,
    pub plan: String,
}

/// Steps that may be claimed now: pending, or running with a lease that ran out (its worker died),
/// in applying waves of applying rollouts. Oldest rollout first.
pub async fn claimable<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    now: i64,
    limit: i64,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT s.id FROM rollout_steps s \
         JOIN rollouts r ON r.id = s.rollout_id \
         JOIN rollout_waves w ON w.rollout_id = s.rollout_id AND w.position = s.wave \
         WHERE r.state = 'applying' AND w.state = 'applying' \
         AND (s.state = 'pending' OR (s.state = 'running' AND s.lease_ms < $1)) \
         ORDER BY r.created_ms, s.wave, s.cluster_name LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(executor)
    .await
}

/// Claim a step for `claim` until `lease_ms`: true for exactly one of any number of racing workers.
pub async fn claim<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    id: &str,
    claim: &str,
    now: i64,
    lease_ms: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE rollout_steps SET state = 'running', claim = $1, lease_ms = $2, \
         attempts = attempts + 1, started_ms = CASE WHEN started_ms = 0 THEN $3 ELSE started_ms END \
         WHERE id = $4 AND (state = 'pending' OR (state = 'running' AND lease_ms < $3))",
    )
    .bind(claim)
    .bind(lease_ms)
    .bind(now)
    .bind(id)
    .execute(executor)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn claimed<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    id: &str,
    claim: &str,
) -> Result<Option<StepWork>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {STEP_COLUMNS}, rollout_id, plan FROM rollout_steps WHERE id = $1 AND claim = $2 \
         AND state = 'running'"
    ))
    .bind(id)
    .bind(claim)
    .fetch_optional(executor)
    .await?;
    row.map(|row| {
        Ok(StepWork {
            step: step(&row)?,
            rollout_id: row.try_get("rollout_id")?,
            plan: row.try_get("plan")?,
        })
    })
    .transpose()
}

/// Extend the leases of the steps this worker holds.
pub async fn renew<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    claims: &[String],
    lease_ms: i64,
) -> Result<(), sqlx::Error> {
    if claims.is_empty() {
        return Ok(());
    }
    let placeholders: Vec<String> = (0..claims.len()).map(|i| format!("${}", i + 2)).collect();
    let sql = format!(
        "UPDATE rollout_steps SET lease_ms = $1 WHERE state = 'running' AND claim IN ({})",
        placeholders.join(", ")
    );
    let mut query = sqlx::query(&sql).bind(lease_ms);
    for claim in claims {
        query = query.bind(claim);
    }
    query.execute(executor).await?;
    Ok(())
}

/// Count one more send of the manifests, for the holder of `claim` only.
pub async fn count_apply<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    id: &str,
    claim: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE rollout_steps SET applies = applies + 1 WHERE id = $1 AND claim = $2 AND state = 'running'",
    )
    .bind(id)
    .bind(claim)
    .execute(executor)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Finish a step the holder of `claim` ran; false when the claim was lost meanwhile.
pub async fn finish_step<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    id: &str,
    claim: &str,
    state: StepState,
    message: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE rollout_steps SET state = $1, message = $2, finished_ms = $3, \
         lease_ms = 0 WHERE id = $4 AND claim = $5 AND state = 'running'",
    )
    .bind(state.as_str())
    .bind(message)
    .bind(now)
    .bind(id)
    .bind(claim)
    .execute(executor)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Keep on a finished step the deployment it replaced (JSON), for a rollback.
pub async fn set_previous<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    id: &str,
    previous: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE rollout_steps SET previous = $1 WHERE id = $2")
        .bind(previous)
        .bind(id)
        .execute(executor)
        .await?;
    Ok(())
}

/// Every step not yet run becomes `skipped`, with why.
pub async fn skip_pending_steps<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    rollout_id: &str,
    message: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE rollout_steps SET state = 'skipped', message = $1, finished_ms = $2 \
         WHERE rollout_id = $3 AND state = 'pending'",
    )
    .bind(message)
    .bind(now)
    .bind(rollout_id)
    .execute(executor)
    .await?;
    Ok(())
}

/// The steps of an applied rollout with what they replaced: (cluster id, cluster name, previous).
/// The stored plan of each step of a rollback or removal, by step id (empty for an `apply`).
pub async fn step_plans<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    rollout_id: &str,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let rows = sqlx::query("SELECT id, plan FROM rollout_steps WHERE rollout_id = $1")
        .bind(rollout_id)
        .fetch_all(executor)
        .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("id")?, row.try_get("plan")?)))
        .collect()
}

pub async fn applied_steps<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    rollout_id: &str,
) -> Result<Vec<(String, String, String)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT cluster_id, cluster_name, previous FROM rollout_steps \
         WHERE rollout_id = $1 AND state = 'applied' ORDER BY cluster_name",
    )
    .bind(rollout_id)
    .fetch_all(executor)
    .await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get("cluster_id")?,
                row.try_get("cluster_name")?,
                row.try_get("previous")?,
            ))
        })
        .collect()
}
