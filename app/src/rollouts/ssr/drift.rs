//! Drift: the periodic comparison of what Palisade applied (a deployment) with what the cluster
//! holds. An object deleted or edited in the cluster is drift; it is shown on the deployment and,
//! on a cluster set to reconcile, applied again. Every change of drift state is audited.

use serde_json::json;

use super::executor::{system, Executor};
use super::plan::{self, Plan};
use super::queries;
use crate::audit::ssr::Event;
use crate::clusters::ssr::service as clusters;
use crate::error::{AppError, ServerError, ServerResult};
use crate::rollouts::Drift;

/// What one check found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct DriftReport {
    /// Deployments compared with their clusters.
    pub checked: usize,
    /// Of those, how many differ from what was applied.
    pub drifted: usize,
    /// Of those, how many were applied again (their cluster is set to reconcile).
    pub reapplied: usize,
}

/// Check drift now, on request (the server function and the REST handler), with the server's
/// database, key and connector.
pub async fn check_now(state: &crate::state::AppState) -> ServerResult<DriftReport> {
    Executor::new(
        state.db.clone(),
        state.sealer.clone(),
        state.clusters.clone(),
        super::Settings::default(),
    )
    .check_drift(crate::db::now_ms())
    .await
}

impl Executor {
    /// Compare every deployment with its cluster now.
    pub async fn check_drift(&self, now: i64) -> ServerResult<DriftReport> {
        let deployments = queries::all_desired(self.db.pool()).await?;
        let mut report = DriftReport::default();
        for (cluster_id, policy_id, desired, before) in deployments {
            let (cluster, credentials) =
                match clusters::open_credentials(&self.context(), &cluster_id).await {
                    Ok(found) => found,
                    // Disabled or removed clusters, or no key: nothing to compare with.
                    Err(ServerError::User(AppError::NotFound(_) | AppError::Conflict(_))) => {
                        continue
                    }
                    Err(err) => return Err(err),
                };
            report.checked += 1;
            let plan = Plan {
                apply: desired.manifests.clone(),
                delete: Vec::new(),
                leaves: Some((desired.version, desired.mode)),
            };
            let found = self.in_place(&credentials, &plan).await.err();
            let (drift, detail, action) = match found {
                None => (Drift::InSync, String::new(), None),
                Some(detail) if cluster.reconcile => {
                    report.drifted += 1;
                    match self.send(&credentials, &plan).await {
                        Ok(_warnings) => {
                            report.reapplied += 1;
                            (
                                Drift::InSync,
                                format!("re-applied after drift: {detail}"),
                                Some("deployment.reconcile"),
                            )
                        }
                        Err(err) => (
                            Drift::Drifted,
                            format!("{detail}; re-applying failed: {err}"),
                            Some("deployment.drift"),
                        ),
                    }
                }
                Some(detail) => {
                    report.drifted += 1;
                    (Drift::Drifted, detail, Some("deployment.drift"))
                }
            };
            let mut tx = self.db.begin().await?;
            queries::set_drift(&mut *tx, &cluster_id, &policy_id, drift, &detail, now).await?;
            let news = action == Some("deployment.reconcile") || before != drift;
            if let (Some(action), true) = (action, news) {
                Event::new(action, "deployment", &format!("{cluster_id}/{policy_id}"))
                    .detail(json!({
                        "cluster": cluster.name,
                        "detail": detail,
                        "objects": desired.manifests.iter().map(plan::describe).collect::<Vec<_>>(),
                    }))
                    .record(&mut *tx, &system(), now)
                    .await?;
            }
            tx.commit().await?;
        }
        Ok(report)
    }
}
