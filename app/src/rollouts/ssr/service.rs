//! The rollouts service: propose, decide, operate, read. Every function takes the principal,
//! authorizes again, owns its transaction and records the audit entry inside it.

mod decisions;
mod operations;
mod proposals;

pub use decisions::decide;
pub use operations::operate;
pub use proposals::{proposal_impact, propose};

use super::queries;
use crate::auth::{authorize, Action, Principal};
use crate::db::Db;
use crate::error::{AppError, ServerResult};
use crate::policies::ssr as policies;
use crate::rollouts::{Deployment, Rollout, RolloutKind, RolloutState, RolloutSummary};

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
