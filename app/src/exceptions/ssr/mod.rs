//! Server-side exceptions: the queries, the service behind the server functions and REST
//! handlers, and what other domains ask: [`active_for`] (rollouts render these, the scan skips
//! what they cover) and [`exclusions`] (the same, in the engine's terms).

pub mod cases;
pub mod queries;
pub mod service;

use crate::db::Db;
use crate::error::{OrFault, ServerResult};
use crate::exceptions::{Exception, Scope};

/// The exceptions of `policy_id` that are active at `now_ms` (approved, not expired).
pub async fn active_for(db: &Db, policy_id: &str, now_ms: i64) -> ServerResult<Vec<Exception>> {
    let rows = queries::active_for(db.pool(), policy_id, now_ms)
        .await
        .or_fault()?;
    Ok(rows.into_iter().filter(|e| e.is_active(now_ms)).collect())
}

/// A scope in the engine's terms.
pub fn engine_scope(scope: &Scope) -> palisade_engine::exclusions::Scope {
    use palisade_engine::exclusions::Scope as Engine;
    match scope {
        Scope::Namespaces { namespaces } => Engine::Namespaces {
            namespaces: namespaces.clone(),
        },
        Scope::Selector { labels } => Engine::Selector {
            labels: labels.clone(),
        },
        Scope::Resource {
            resource_kind,
            namespace,
            name,
        } => Engine::Resource {
            kind: resource_kind.clone(),
            namespace: namespace.clone(),
            name: name.clone(),
        },
    }
}

/// An exception as the engine's renderer takes it.
pub fn exclusion(exception: &Exception) -> palisade_engine::exclusions::Exclusion {
    palisade_engine::exclusions::Exclusion {
        id: exception.id.clone(),
        scope: engine_scope(&exception.scope),
    }
}

/// The active exceptions of `policy_id` in the engine's terms.
pub async fn exclusions(
    db: &Db,
    policy_id: &str,
    now_ms: i64,
) -> ServerResult<Vec<palisade_engine::exclusions::Exclusion>> {
    Ok(active_for(db, policy_id, now_ms)
        .await?
        .iter()
        .map(exclusion)
        .collect())
}

/// The exclusions a rollout was proposed with (none when it had none), read strictly: stored text
/// that does not decode is an error, never an empty list.
pub async fn rollout_exclusions(
    db: &Db,
    rollout_id: &str,
) -> ServerResult<Vec<palisade_engine::exclusions::Exclusion>> {
    match queries::rollout_exclusions(db.pool(), rollout_id).await? {
        Some(text) => Ok(serde_json::from_str(&text)?),
        None => Ok(Vec::new()),
    }
}

/// Keep, in the rollout's own transaction, the exclusions a rollout was proposed with, so every
/// step applies exactly what its approvers saw.
pub async fn save_rollout_exclusions(
    tx: &mut crate::db::Tx,
    rollout_id: &str,
    exclusions: &[palisade_engine::exclusions::Exclusion],
) -> ServerResult<()> {
    if exclusions.is_empty() {
        return Ok(());
    }
    let text = serde_json::to_string(exclusions)?;
    queries::save_rollout_exclusions(&mut **tx, rollout_id, &text).await?;
    Ok(())
}
