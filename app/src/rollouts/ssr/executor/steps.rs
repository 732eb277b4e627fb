//! Running one step: claim it, plan it against what the cluster holds, apply with retries, and
//! record how it ended.

use super::*;

impl Executor {
    /// Run one claimed step to its end, then let go of the claim.
    pub(super) async fn run_step(&self, id: &str, claim: &str) {
        if let Err(err) = self.try_step(id, claim).await {
            tracing::warn!(step = id, error = %err, "a rollout step could not be recorded");
        }
        if let Ok(mut claims) = self.claims.lock() {
            claims.remove(claim);
        }
    }

    pub(super) async fn try_step(&self, id: &str, claim: &str) -> ServerResult<()> {
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
        let warnings = match self.send(&credentials, &plan).await {
            Ok(warnings) => warnings,
            Err(message) => return finish(StepState::Failed, message).await,
        };
        if let Err(message) = self.in_place(&credentials, &plan).await {
            return finish(
                StepState::Failed,
                format!("read-back after apply: {message}"),
            )
            .await;
        }
        let mut message = format!(
            "applied {} object(s){}, read back as desired",
            plan.apply.len(),
            if plan.delete.is_empty() {
                String::new()
            } else {
                format!(", removed {}", plan.delete.len())
            }
        );
        // What the apiserver warned of is part of what happened (for example: existing pods
        // already violate the Pod Security level just enforced).
        for warning in &warnings {
            message.push_str(&format!("; the apiserver warned: {warning}"));
        }
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
    pub(super) async fn plan(
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
        let version =
            crate::policies::ssr::version_of(&self.db, &summary.policy_id, summary.version)
                .await
                .map_err(|e| match e {
                    ServerError::User(AppError::NotFound(_)) => {
                        format!("version {} of the policy is gone", summary.version)
                    }
                    fault => {
                        tracing::warn!(error = %fault, "reading the version a step applies");
                        "the database could not be read; see the server log".to_owned()
                    }
                })?;
        let namespaces = queries::namespaces(self.db.pool(), &summary.id)
            .await
            .map_err(internal)?;
        let exclusions = crate::exceptions::ssr::rollout_exclusions(&self.db, &summary.id)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "reading the exclusions a step applies");
                "the exclusions of the rollout could not be read; see the server log".to_owned()
            })?;
        let apply = crate::policies::ssr::render::desired_objects(
            &version.content,
            summary.mode,
            &namespaces,
            &exclusions,
        )?;
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
    pub(in crate::rollouts::ssr) async fn retry<T, F, Fut>(
        &self,
        mut call: F,
    ) -> Result<T, ClusterError>
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
    /// never deleted). Returns the apiserver's warnings, each with the object it came from.
    pub(in crate::rollouts::ssr) async fn send(
        &self,
        credentials: &Credentials,
        plan: &Plan,
    ) -> Result<Vec<String>, String> {
        let mut warnings = Vec::new();
        for (index, object) in plan.apply.iter().enumerate() {
            let waits = defined_by(object, &plan.apply[..index]);
            let deadline = tokio::time::Instant::now() + KIND_WAIT;
            let applied = loop {
                match self
                    .retry(|| self.connector.apply(credentials, object))
                    .await
                {
                    Err(ClusterError::Api { code: 404, .. })
                        if waits && tokio::time::Instant::now() < deadline =>
                    {
                        tokio::time::sleep(KIND_POLL).await;
                    }
                    result => break result,
                }
            }
            .map_err(|err| format!("{}: {err}", plan::describe(object)))?;
            for warning in applied.warnings {
                warnings.push(format!("{}: {warning}", plan::describe(object)));
            }
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
        Ok(warnings)
    }

    /// Whether the cluster holds the plan's outcome: every applied object as desired, every deleted
    /// one gone. The error says which object is not.
    pub(in crate::rollouts::ssr) async fn in_place(
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
    pub(super) async fn finish(
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
        // On SQLite the transaction takes the write lock at once (see `Db::begin`).
        let mut tx = self.db.begin().await?;
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
        let action = match state {
            StepState::Applied => "rollout.step_applied",
            StepState::Skipped => "rollout.step_skipped",
            _ => "rollout.step_failed",
        };
        Event::new(action, "rollout", &summary.id)
            .detail(json!({
                "cluster": step.cluster_name,
                "wave": step.wave,
                "attempt": step.attempts,
                "message": message,
            }))
            .record(&mut *tx, &system(), now)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// How long a Gatekeeper constraint waits for its kind, when the template that defines it was
/// applied just before in the same step: Gatekeeper makes the kind's CRD only once it has seen the
/// template, so the apiserver answers 404 for a moment.
const KIND_WAIT: std::time::Duration = std::time::Duration::from_secs(60);
const KIND_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// Whether `object` is a Gatekeeper constraint whose kind a ConstraintTemplate among `before`
/// defines.
fn defined_by(object: &serde_json::Value, before: &[serde_json::Value]) -> bool {
    let text = |value: &serde_json::Value, pointer: &str| {
        value
            .pointer(pointer)
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let is_constraint = text(object, "/apiVersion").starts_with("constraints.gatekeeper.sh/");
    let kind = text(object, "/kind");
    is_constraint
        && before.iter().any(|template| {
            text(template, "/apiVersion").starts_with("templates.gatekeeper.sh/")
                && text(template, "/kind") == "ConstraintTemplate"
                && text(template, "/spec/crd/spec/names/kind") == kind
        })
}

#[cfg(test)]
mod tests {
    use super::defined_by;
    use serde_json::json;

    #[test]
    fn a_constraint_waits_only_for_a_kind_its_step_defines() {
        let template = json!({
            "apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate",
            "spec": {"crd": {"spec": {"names": {"kind": "K8sNoPrivileged"}}}},
        });
        let constraint =
            json!({"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sNoPrivileged"});
        let other = json!({"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sOther"});
        let binding =
            json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "K8sNoPrivileged"});
        assert!(defined_by(&constraint, std::slice::from_ref(&template)));
        assert!(
            !defined_by(&constraint, &[]),
            "nothing before it defines the kind"
        );
        assert!(!defined_by(&other, std::slice::from_ref(&template)));
        assert!(!defined_by(&binding, std::slice::from_ref(&template)));
    }
}
