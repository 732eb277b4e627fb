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

mod steps;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use super::machine::{self, Transition};
use super::plan::{self, Plan};
use super::queries::{self, Desired};
use super::service::load;
use crate::audit::ssr::Event;
use crate::auth::{Principal, Role};
use crate::clusters::ssr::{
    service as clusters, ClusterConnector, ClusterError, Context, Credentials,
};
use crate::db::{new_id, now_ms, Db, Tx};
use crate::error::{AppError, ServerError, ServerResult};
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
                crate::violations::ssr::counts_since(
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
                Event::new("rollout.wave_applied", "rollout", id)
                    .detail(json!({ "wave": wave.name, "soak_secs": wave.soak_secs }))
                    .record(&mut *tx, &system, now)
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
                        Event::new("rollout.applied", "rollout", id)
                            .detail(
                                json!({ "kind": summary.kind.as_str(), "steps": summary.steps }),
                            )
                            .record(&mut *tx, &system, now)
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
        Event::new("rollout.wave_done", "rollout", id)
            .detail(json!({
                "wave": wave.name,
                "next": next_wave.name,
                "next_needs_approval": needs_approval,
            }))
            .record(&mut **tx, &system(), now)
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
}

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
    Event::new("rollout.failed", "rollout", id)
        .detail(failure.detail)
        .record(&mut *tx, &system(), now)
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

/// Await every future, concurrently, on this task.
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
