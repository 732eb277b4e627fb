//! The rollout executor: a loop in every server process that advances waves and runs steps.
//!
//! Durable by construction: every decision is a compare-and-set in the database, so the loop holds
//! no state a crash could lose. A worker claims a step by writing a fresh claim token and a lease;
//! it renews the lease while the step runs, and only the token's holder may finish the step. A
//! worker killed mid-step leaves a lease that runs out; the next claim is the step's next attempt,
//! and it first reads the cluster back: when the objects are already there as desired, the step is
//! finished without sending them again. Steps run with bounded concurrency, each apply is retried
//! with backoff on transient errors, and one cluster failing never stops the others of its wave
//! (the next wave does not start after a failed one).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use super::machine::{self, Transition};
use super::plan::{self, Plan};
use super::queries::{self, Desired};
use super::service::load;
use crate::audit::ssr::{record, Event};
use crate::auth::{Principal, Role};
use crate::clusters::ssr::{
    service as clusters, ClusterConnector, ClusterError, Context, Credentials,
};
use crate::db::{new_id, now_ms, Db, Tx};
use crate::error::{AppError, ServerError, ServerResult};
use crate::policies::ssr::queries as policy_queries;
use crate::rollouts::{RolloutKind, RolloutState, StepState, WaveState};
use crate::secrets::Sealer;

/// How the executor paces itself.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Steps running at once in this process.
    pub concurrency: usize,
    /// How often the loop looks for work.
    pub poll: Duration,
    /// How long a claim holds without renewal (a dead worker's steps are taken over after this).
    pub lease: Duration,
    /// Claims of one step before it is failed for good.
    pub max_attempts: i64,
    /// Tries of one call to a cluster on a transient error, and the first wait between them
    /// (doubled each time).
    pub retries: u32,
    pub backoff: Duration,
    /// How often deployments are compared with the live objects; `None` turns it off.
    pub drift_every: Option<Duration>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            concurrency: 8,
            poll: Duration::from_millis(500),
            lease: Duration::from_secs(15),
            max_attempts: 5,
            retries: 3,
            backoff: Duration::from_millis(250),
            drift_every: Some(Duration::from_secs(300)),
        }
    }
}

/// The executor of one server process.
pub struct Executor {
    pub(super) db: Db,
    pub(super) sealer: Option<Arc<Sealer>>,
    pub(super) connector: Arc<dyn ClusterConnector>,
    pub(super) settings: Settings,
    /// The claim tokens of the steps this process runs now (their leases are renewed).
    claims: Mutex<HashSet<String>>,
}

/// Who the audit log names for what the executor does.
pub(super) fn system() -> Principal {
    Principal::new("palisade", "Palisade (rollout executor)", Role::Admin)
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// A refusal worth trying again: the network, an overloaded or failing apiserver, a conflict.
fn transient(err: &ClusterError) -> bool {
    match err {
        ClusterError::Unreachable(_) => true,
        ClusterError::Api { code, .. } => *code >= 500 || *code == 429 || *code == 409,
        ClusterError::Unauthorized | ClusterError::Credentials(_) => false,
    }
}

impl Executor {
    pub fn new(
        db: Db,
        sealer: Option<Arc<Sealer>>,
        connector: Arc<dyn ClusterConnector>,
        settings: Settings,
    ) -> Executor {
        Executor {
            db,
            sealer,
            connector,
            settings,
            claims: Mutex::new(HashSet::new()),
        }
    }

    pub(super) fn context(&self) -> Context<'_> {
        Context {
            db: &self.db,
            sealer: self.sealer.as_deref(),
            connector: self.connector.as_ref(),
        }
    }

    /// Run until `stop` turns true: advance rollouts, keep up to `concurrency` steps running,
    /// renew their leases, and check drift every `drift_every`. Steps still running at the stop are
    /// dropped; their leases run out and a worker takes them over (reading back first).
    pub async fn run(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut running = tokio::task::JoinSet::new();
        let mut last_drift = now_ms();
        loop {
            if *stop.borrow() {
                break;
            }
            while running.try_join_next().is_some() {}
            let now = now_ms();
            if let Err(err) = self.renew(now).await {
                tracing::warn!(error = %err, "renewing step leases");
            }
            if let Err(err) = self.advance_all(now).await {
                tracing::warn!(error = %err, "advancing rollouts");
            }
            let free = self.settings.concurrency.saturating_sub(running.len());
            match self.claim(now, free).await {
                Ok(claimed) => {
                    for (id, claim) in claimed {
                        let me = self.clone();
                        running.spawn(async move { me.run_step(&id, &claim).await });
                    }
                }
                Err(err) => tracing::warn!(error = %err, "claiming steps"),
            }
            if let Some(every) = self.settings.drift_every {
                if now - last_drift >= millis(every) {
                    last_drift = now;
                    if let Err(err) = self.check_drift(now).await {
                        tracing::warn!(error = %err, "checking drift");
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.settings.poll) => {}
                _ = stop.changed() => {}
                Some(_) = running.join_next(), if !running.is_empty() => {}
            }
        }
        running.abort_all();
    }

    /// One round, waiting for the steps it starts: advance, claim up to `concurrency` steps and run
    /// them, advance again. Returns how many steps ran. For tests and benchmarks.
    pub async fn round(&self, now: i64) -> ServerResult<usize> {
        self.advance_all(now).await?;
        let claimed = self.claim(now, self.settings.concurrency).await?;
        let count = claimed.len();
        let semaphore = tokio::sync::Semaphore::new(self.settings.concurrency.max(1));
        let runs = claimed.iter().map(|(id, claim)| {
            let semaphore = &semaphore;
            async move {
                let _permit = semaphore.acquire().await;
                self.run_step(id, claim).await;
            }
        });
        futures_join_all(runs).await;
        self.advance_all(now_ms().max(now)).await?;
        Ok(count)
    }

    async fn renew(&self, now: i64) -> ServerResult<()> {
        let claims: Vec<String> = self
            .claims
            .lock()
            .map(|c| c.iter().cloned().collect())
            .unwrap_or_default();
        Ok(queries::renew(self.db.pool(), &claims, now + millis(self.settings.lease)).await?)
    }

    /// Claim up to `limit` steps; returns (step id, claim token) of each one won.
    async fn claim(&self, now: i64, limit: usize) -> ServerResult<Vec<(String, String)>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let candidates =
            queries::claimable(self.db.pool(), now, i64::try_from(limit).unwrap_or(64)).await?;
        let mut won = Vec::new();
        for id in candidates {
            let claim = new_id();
            if queries::claim(
                self.db.pool(),
                &id,
                &claim,
                now,
                now + millis(self.settings.lease),
            )
            .await?
            {
                if let Ok(mut claims) = self.claims.lock() {
                    claims.insert(claim.clone());
                }
                won.push((id, claim));
            }
        }
        Ok(won)
    }

    async fn advance_all(&self, now: i64) -> ServerResult<()> {
        let ids = queries::active_ids(self.db.pool()).await?;
        for id in ids {
            self.advance(&id, now).await?;
        }
        Ok(())
    }

    /// Move one applying rollout along, as [`machine::transition`] decides: a wave whose steps all
    /// finished soaks or fails; a soaked wave fails on its violation threshold or is done, and
    /// then the next one waits for approval (or starts when it needs none) or the rollout is
    /// applied. This function only applies the decision, with compare-and-set writes.
    async fn advance(&self, id: &str, now: i64) -> ServerResult<()> {
        let rollout = load(&self.db, id).await?;
        let violations = match machine::question(&rollout, now) {
            Some(question) => Some(
                crate::violations::ssr::queries::counts_since(
                    &self.db,
                    &rollout.summary.policy_id,
                    &question.cluster_ids,
                    question.since_ms,
                )
                .await?
                .values()
                .sum::<i64>(),
            ),
            None => None,
        };
        let transition = machine::transition(&rollout, now, violations);
        let summary = &rollout.summary;
        let wave_at = |position: i64| rollout.waves.iter().find(|w| w.position == position);
        let position = match &transition {
            Transition::Wait => return Ok(()),
            Transition::Soak { wave }
            | Transition::FailWave { wave, .. }
            | Transition::ExceedThreshold { wave, .. }
            | Transition::Done { wave, .. } => *wave,
        };
        let Some(wave) = wave_at(position) else {
            return Ok(());
        };
        let system = system();
        let mut tx = self.db.begin().await?;
        match transition {
            Transition::Wait => return Ok(()),
            Transition::Soak { .. } => {
                if !queries::set_wave_state(
                    &mut *tx,
                    id,
                    wave.position,
                    WaveState::Applying,
                    WaveState::Soaking,
                    None,
                    Some(now),
                )
                .await?
                {
                    return Ok(());
                }
                record(
                    &mut *tx,
                    &system,
                    now,
                    Event {
                        action: "rollout.wave_applied",
                        target_kind: "rollout",
                        target_id: id,
                        detail: json!({ "wave": wave.name, "soak_secs": wave.soak_secs }),
                    },
                )
                .await?;
            }
            Transition::FailWave {
                failed_clusters, ..
            } => {
                if !fail_wave(
                    &mut tx,
                    summary,
                    wave,
                    WaveState::Applying,
                    Some(now),
                    Failure {
                        skipped: "not started: an earlier wave failed",
                        detail: json!({ "wave": wave.name, "failed_clusters": failed_clusters }),
                        why: format!(
                            "wave {} failed on {}",
                            wave.name,
                            failed_clusters.join(", ")
                        ),
                    },
                    now,
                )
                .await?
                {
                    return Ok(());
                }
            }
            Transition::ExceedThreshold {
                seen, threshold, ..
            } => {
                let why = format!(
                    "{seen} violations during the soak, more than the threshold of {threshold}"
                );
                if !fail_wave(
                    &mut tx,
                    summary,
                    wave,
                    WaveState::Soaking,
                    None,
                    Failure {
                        skipped: "not started: an earlier wave exceeded its violation threshold",
                        detail: json!({ "wave": wave.name, "reason": why }),
                        why: format!("wave {}: {why}", wave.name),
                    },
                    now,
                )
                .await?
                {
                    return Ok(());
                }
            }
            Transition::Done { next, .. } => {
                if !queries::set_wave_state(
                    &mut *tx,
                    id,
                    wave.position,
                    WaveState::Soaking,
                    WaveState::Done,
                    None,
                    None,
                )
                .await?
                {
                    return Ok(());
                }
                match next.and_then(|n| wave_at(n.position).map(|w| (n, w))) {
                    Some((next, next_wave)) => {
                        self.start_next(&mut tx, &rollout, wave, next, next_wave, now)
                            .await?;
                    }
                    None => {
                        queries::set_state(
                            &mut *tx,
                            id,
                            &[RolloutState::Applying],
                            RolloutState::Applied,
                            None,
                            now,
                        )
                        .await?;
                        if summary.kind == RolloutKind::Rollback {
                            queries::set_state(
                                &mut *tx,
                                &summary.parent_id,
                                &[RolloutState::Applied, RolloutState::Failed],
                                RolloutState::RolledBack,
                                None,
                                now,
                            )
                            .await?;
                        }
                        record(
                            &mut *tx,
                            &system,
                            now,
                            Event {
                                action: "rollout.applied",
                                target_kind: "rollout",
                                target_id: id,
                                detail: json!({ "kind": summary.kind.as_str(), "steps": summary.steps }),
                            },
                        )
                        .await?;
                    }
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// After `wave` is done: the next wave waits for approval (and approvers are told) or starts.
    async fn start_next(
        &self,
        tx: &mut Tx,
        rollout: &crate::rollouts::Rollout,
        wave: &crate::rollouts::Wave,
        next: machine::Next,
        next_wave: &crate::rollouts::Wave,
        now: i64,
    ) -> ServerResult<()> {
        let summary = &rollout.summary;
        let id = summary.id.as_str();
        let needs_approval = next.needs_approval;
        queries::set_wave_state(
            &mut **tx,
            id,
            next.position,
            WaveState::Waiting,
            if needs_approval {
                WaveState::Approval
            } else {
                WaveState::Applying
            },
            (!needs_approval).then_some(now),
            None,
        )
        .await?;
        queries::set_state(
            &mut **tx,
            id,
            &[RolloutState::Applying],
            if needs_approval {
                RolloutState::PendingApproval
            } else {
                RolloutState::Applying
            },
            Some(next.position),
            now,
        )
        .await?;
        record(
            &mut **tx,
            &system(),
            now,
            Event {
                action: "rollout.wave_done",
                target_kind: "rollout",
                target_id: id,
                detail: json!({
                    "wave": wave.name,
                    "next": next_wave.name,
                    "next_needs_approval": needs_approval,
                }),
            },
        )
        .await?;
        if needs_approval {
            crate::notify::ssr::enqueue(
                tx,
                now,
                &crate::notify::Notice {
                    kind: crate::notify::NoticeKind::ApprovalRequested,
                    title: format!(
                        "Approval requested: {} to {}, wave {}",
                        summary.policy_name,
                        summary.mode.as_str(),
                        next_wave.name
                    ),
                    text: format!(
                        "Wave {} is done; wave {} waits for approval.",
                        wave.name, next_wave.name
                    ),
                    link: Some(format!("/rollouts/{id}")),
                },
            )
            .await?;
        }
        Ok(())
    }

    /// Run one claimed step to its end, then let go of the claim.
    async fn run_step(&self, id: &str, claim: &str) {
        if let Err(err) = self.try_step(id, claim).await {
            tracing::warn!(step = id, error = %err, "a rollout step could not be recorded");
        }
        if let Ok(mut claims) = self.claims.lock() {
            claims.remove(claim);
        }
    }

    async fn try_step(&self, id: &str, claim: &str) -> ServerResult<()> {
        let Some(work) = queries::claimed(self.db.pool(), id, claim).await? else {
            return Ok(());
        };
        let summary = queries::get(self.db.pool(), &work.rollout_id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("rollout {}", work.rollout_id)))?;
        let step = &work.step;
        let finish =
            |state, message: String| self.finish(id, claim, &summary, step, state, message, None);
        if step.attempts > self.settings.max_attempts {
            return finish(
                StepState::Failed,
                format!(
                    "gave up after {} attempts: each one was interrupted",
                    self.settings.max_attempts
                ),
            )
            .await;
        }
        let (_cluster, credentials) =
            match clusters::open_credentials(&self.context(), &step.cluster_id).await {
                Ok(found) => found,
                Err(ServerError::User(AppError::NotFound(_))) => {
                    return finish(StepState::Skipped, "the cluster was removed".into()).await
                }
                Err(ServerError::User(AppError::Conflict(message))) => {
                    return finish(StepState::Skipped, message).await
                }
                Err(err) => return Err(err),
            };
        let plan = match self.plan(&summary, &work).await {
            Ok(plan) => plan,
            Err(message) => return finish(StepState::Failed, message).await,
        };
        if step.attempts > 1 && self.in_place(&credentials, &plan).await.is_ok() {
            return self
                .finish(
                    id,
                    claim,
                    &summary,
                    step,
                    StepState::Applied,
                    "found in place after an interrupted attempt; not sent again".into(),
                    Some(&plan),
                )
                .await;
        }
        if !queries::count_apply(self.db.pool(), id, claim).await? {
            return Ok(());
        }
        if let Err(message) = self.send(&credentials, &plan).await {
            return finish(StepState::Failed, message).await;
        }
        if let Err(message) = self.in_place(&credentials, &plan).await {
            return finish(
                StepState::Failed,
                format!("read-back after apply: {message}"),
            )
            .await;
        }
        let message = format!(
            "applied {} object(s){}, read back as desired",
            plan.apply.len(),
            if plan.delete.is_empty() {
                String::new()
            } else {
                format!(", removed {}", plan.delete.len())
            }
        );
        self.finish(
            id,
            claim,
            &summary,
            step,
            StepState::Applied,
            message,
            Some(&plan),
        )
        .await
    }

    /// What the step does: fixed at proposal for rollbacks and removals; rendered from the version
    /// for an apply (objects the cluster's current deployment has and this one lacks are removed).
    async fn plan(
        &self,
        summary: &crate::rollouts::RolloutSummary,
        work: &queries::StepWork,
    ) -> Result<Plan, String> {
        if summary.kind != RolloutKind::Apply {
            return serde_json::from_str(&work.plan).map_err(|e| format!("unreadable plan: {e}"));
        }
        let internal = |e: sqlx::Error| {
            tracing::warn!(error = %e, "reading what a step applies");
            "the database could not be read; see the server log".to_owned()
        };
        let version = policy_queries::version(self.db.pool(), &summary.policy_id, summary.version)
            .await
            .map_err(internal)?
            .ok_or_else(|| format!("version {} of the policy is gone", summary.version))?;
        let namespaces = queries::namespaces(self.db.pool(), &summary.id)
            .await
            .map_err(internal)?;
        let exclusions: Vec<palisade_engine::exclusions::Exclusion> =
            match crate::exceptions::ssr::queries::rollout_exclusions(self.db.pool(), &summary.id)
                .await
                .map_err(internal)?
            {
                Some(text) => serde_json::from_str(&text)
                    .map_err(|e| format!("unreadable exclusions of the rollout: {e}"))?,
                None => Vec::new(),
            };
        let apply =
            plan::desired_objects(&version.content, summary.mode, &namespaces, &exclusions)?;
        let current =
            queries::deployment(self.db.pool(), &work.step.cluster_id, &summary.policy_id)
                .await
                .map_err(internal)?;
        let kept: Vec<String> = apply.iter().map(plan::identity).collect();
        let delete = current
            .map(|c| {
                c.manifests
                    .into_iter()
                    .filter(|m| !kept.contains(&plan::identity(m)))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Plan {
            apply,
            delete,
            leaves: Some((summary.version, summary.mode)),
        })
    }

    /// Try `call` up to `retries` times while it fails transiently, waiting longer each time.
    pub(super) async fn retry<T, F, Fut>(&self, mut call: F) -> Result<T, ClusterError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, ClusterError>>,
    {
        let mut wait = self.settings.backoff;
        let mut tries = 1;
        loop {
            match call().await {
                Err(err) if transient(&err) && tries < self.settings.retries.max(1) => {
                    tokio::time::sleep(wait).await;
                    wait = wait.saturating_mul(2);
                    tries += 1;
                }
                result => return result,
            }
        }
    }

    /// Send the plan: apply what it applies, then delete what it deletes (a Namespace is let go of,
    /// never deleted).
    pub(super) async fn send(&self, credentials: &Credentials, plan: &Plan) -> Result<(), String> {
        for object in &plan.apply {
            self.retry(|| self.connector.apply(credentials, object))
                .await
                .map_err(|err| format!("{}: {err}", plan::describe(object)))?;
        }
        for object in &plan.delete {
            let result = if plan::is_namespace(object) {
                let bare = plan::bare_namespace(object);
                self.retry(|| self.connector.apply(credentials, &bare))
                    .await
                    .map(|_| ())
            } else {
                self.retry(|| self.connector.delete(credentials, object))
                    .await
                    .map(|_| ())
            };
            result.map_err(|err| format!("removing {}: {err}", plan::describe(object)))?;
        }
        Ok(())
    }

    /// Whether the cluster holds the plan's outcome: every applied object as desired, every deleted
    /// one gone. The error says which object is not.
    pub(super) async fn in_place(
        &self,
        credentials: &Credentials,
        plan: &Plan,
    ) -> Result<(), String> {
        for object in &plan.apply {
            let live = self
                .retry(|| self.connector.get(credentials, object))
                .await
                .map_err(|err| format!("{}: {err}", plan::describe(object)))?;
            match live {
                None => return Err(format!("{} is missing", plan::describe(object))),
                Some(live) => {
                    if let Some(path) = plan::difference(object, &live) {
                        return Err(format!("{} differs at {path}", plan::describe(object)));
                    }
                }
            }
        }
        for object in plan.delete.iter().filter(|o| !plan::is_namespace(o)) {
            let live = self
                .retry(|| self.connector.get(credentials, object))
                .await
                .map_err(|err| format!("{}: {err}", plan::describe(object)))?;
            if live.is_some() {
                return Err(format!("{} is still there", plan::describe(object)));
            }
        }
        Ok(())
    }

    /// Record a step's end (for the claim's holder only), and on success the deployment it leaves,
    /// with the one it replaced kept on the step for a rollback; all in one transaction.
    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &self,
        id: &str,
        claim: &str,
        summary: &crate::rollouts::RolloutSummary,
        step: &crate::rollouts::Step,
        state: StepState,
        message: String,
        plan: Option<&Plan>,
    ) -> ServerResult<()> {
        let now = now_ms();
        let mut tx = self.db.pool().begin().await?;
        // The first statement writes, so on SQLite the transaction takes the write lock at once
        // (waiting its turn) instead of failing to upgrade a read lock another writer got first.
        if !queries::finish_step(&mut *tx, id, claim, state, &message, now).await? {
            tracing::warn!(
                step = id,
                "a step's claim was taken over before it finished"
            );
            return Ok(());
        }
        let previous = queries::deployment(&mut *tx, &step.cluster_id, &summary.policy_id).await?;
        if let Some(previous) = previous
            .as_ref()
            .and_then(|p| serde_json::to_string(p).ok())
        {
            queries::set_previous(&mut *tx, id, &previous).await?;
        }
        if let (StepState::Applied, Some(plan)) = (state, plan) {
            match plan.leaves {
                Some((version, mode)) => {
                    queries::upsert_deployment(
                        &mut *tx,
                        &step.cluster_id,
                        &summary.policy_id,
                        &Desired {
                            version,
                            mode,
                            manifests: plan.apply.clone(),
                            rollout_id: summary.id.clone(),
                        },
                        now,
                    )
                    .await?
                }
                None => {
                    queries::delete_deployment(&mut *tx, &step.cluster_id, &summary.policy_id)
                        .await?
                }
            }
        }
        record(
            &mut *tx,
            &system(),
            now,
            Event {
                action: match state {
                    StepState::Applied => "rollout.step_applied",
                    StepState::Skipped => "rollout.step_skipped",
                    _ => "rollout.step_failed",
                },
                target_kind: "rollout",
                target_id: &summary.id,
                detail: json!({
                    "cluster": step.cluster_name,
                    "wave": step.wave,
                    "attempt": step.attempts,
                    "message": message,
                }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Await every future, concurrently, on this task.
/// Why a wave failed: what skipped steps say, the audit entry's detail, and the notice's words.
struct Failure {
    skipped: &'static str,
    detail: serde_json::Value,
    why: String,
}

/// Fails `wave` (from state `from`) and its rollout, skips what was still to come, and records and
/// announces it, all in `tx`. `false` when another worker moved the wave first.
async fn fail_wave(
    tx: &mut sqlx::AnyConnection,
    summary: &crate::rollouts::RolloutSummary,
    wave: &crate::rollouts::Wave,
    from: WaveState,
    finished: Option<i64>,
    failure: Failure,
    now: i64,
) -> ServerResult<bool> {
    let id = summary.id.as_str();
    if !queries::set_wave_state(
        &mut *tx,
        id,
        wave.position,
        from,
        WaveState::Failed,
        None,
        finished,
    )
    .await?
    {
        return Ok(false);
    }
    queries::skip_open_waves(&mut *tx, id).await?;
    queries::skip_pending_steps(&mut *tx, id, failure.skipped, now).await?;
    queries::set_state(
        &mut *tx,
        id,
        &[RolloutState::Applying],
        RolloutState::Failed,
        None,
        now,
    )
    .await?;
    record(
        &mut *tx,
        &system(),
        now,
        Event {
            action: "rollout.failed",
            target_kind: "rollout",
            target_id: id,
            detail: failure.detail,
        },
    )
    .await?;
    notify_failed(tx, summary, &failure.why, now).await?;
    Ok(true)
}

/// Queue the notice that a rollout failed, in the transaction that fails it.
async fn notify_failed(
    tx: &mut sqlx::AnyConnection,
    summary: &crate::rollouts::RolloutSummary,
    why: &str,
    now: i64,
) -> ServerResult<()> {
    Ok(crate::notify::ssr::enqueue(
        tx,
        now,
        &crate::notify::Notice {
            kind: crate::notify::NoticeKind::RolloutFailed,
            title: format!(
                "Rollout failed: {} to {}",
                summary.policy_name,
                summary.mode.as_str()
            ),
            text: format!("{why}. Later waves will not start."),
            link: Some(format!("/rollouts/{}", summary.id)),
        },
    )
    .await?)
}

async fn futures_join_all<F: std::future::Future<Output = ()>>(futures: impl Iterator<Item = F>) {
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = futures.map(Box::pin).collect();
    std::future::poll_fn(|cx| {
        pinned.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        if pinned.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
}
