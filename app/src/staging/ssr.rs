//! Building the staging view from the domains' services.

use crate::auth::Principal;
use crate::db::Db;
use crate::error::{AppError, ServerResult};
use crate::model::Mode;
use crate::policies::ssr::{self as policies, render};
use crate::staging::{LiveDeployment, RenderedMode, Staging};
use crate::{clusters, exceptions, rollouts};

/// Intended modes, what is live where, and the rendered manifests of the current version with the
/// exceptions active at `now`.
pub async fn view(db: &Db, who: &Principal, key: &str, now: i64) -> ServerResult<Staging> {
    let intent = policies::intent(db, who, key).await?;
    let exclusions = exceptions::ssr::exclusions(db, &intent.policy_id, now).await?;
    let manifests = Mode::ALL
        .into_iter()
        .map(|mode| RenderedMode {
            mode,
            yaml: render::manifests_excluding(&intent.current.content, mode, &exclusions),
        })
        .collect();
    let clusters = clusters::ssr::service::list(db).await?;
    let live = rollouts::ssr::service::deployments(db, who, Some(&intent.policy_id))
        .await?
        .into_iter()
        .map(|d| LiveDeployment {
            environment: clusters
                .iter()
                .find(|c| c.id == d.cluster_id)
                .map(|c| c.environment.clone())
                .unwrap_or_default(),
            cluster: d.cluster_name,
            version: d.version,
            mode: d.mode,
            drift: d.drift,
            drift_detail: d.drift_detail,
            checked_ms: d.checked_ms,
        })
        .collect();
    Ok(Staging {
        policy_id: intent.policy_id,
        version: intent.current.number,
        modes: intent.modes,
        live,
        manifests,
    })
}

/// The manifests of the current version in `mode` with the exceptions active at `now`, as one
/// YAML stream: what the next rollout would carry.
pub async fn manifests(
    db: &Db,
    who: &Principal,
    key: &str,
    mode: Mode,
    now: i64,
) -> ServerResult<String> {
    let intent = policies::intent(db, who, key).await?;
    let exclusions = exceptions::ssr::exclusions(db, &intent.policy_id, now).await?;
    Ok(
        render::manifests_excluding(&intent.current.content, mode, &exclusions)
            .map_err(AppError::Invalid)?,
    )
}
