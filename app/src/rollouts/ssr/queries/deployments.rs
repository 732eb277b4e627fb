//! The deployments: what each cluster runs of each policy, as last applied, and its drift.

use super::*;

/// A deployment's stored form: what was applied, as JSON.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Desired {
    pub version: i64,
    pub mode: Mode,
    pub manifests: Vec<serde_json::Value>,
    pub rollout_id: String,
}

pub async fn deployment<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    cluster_id: &str,
    policy_id: &str,
) -> Result<Option<Desired>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT version, mode, manifests, rollout_id FROM deployments \
         WHERE cluster_id = $1 AND policy_id = $2",
    )
    .bind(cluster_id)
    .bind(policy_id)
    .fetch_optional(executor)
    .await?;
    row.map(|row| {
        let mode: String = row.try_get("mode")?;
        let manifests: String = row.try_get("manifests")?;
        Ok(Desired {
            version: row.try_get("version")?,
            mode: Mode::decode(&mode)?,
            manifests: serde_json::from_str(&manifests)
                .map_err(|e| sqlx::Error::Decode(e.into()))?,
            rollout_id: row.try_get("rollout_id")?,
        })
    })
    .transpose()
}

pub async fn upsert_deployment<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    cluster_id: &str,
    policy_id: &str,
    desired: &Desired,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO deployments (cluster_id, policy_id, version, mode, manifests, rollout_id, \
         applied_ms, drift, drift_detail, checked_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, 'in_sync', '', $7) \
         ON CONFLICT (cluster_id, policy_id) DO UPDATE SET version = $3, mode = $4, manifests = $5, \
         rollout_id = $6, applied_ms = $7, drift = 'in_sync', drift_detail = '', checked_ms = $7",
    )
    .bind(cluster_id)
    .bind(policy_id)
    .bind(desired.version)
    .bind(desired.mode.as_str())
    .bind(serde_json::to_string(&desired.manifests).unwrap_or_else(|_| "[]".into()))
    .bind(&desired.rollout_id)
    .bind(now)
    .execute(executor)
    .await?;
    Ok(())
}

pub async fn delete_deployment<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    cluster_id: &str,
    policy_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM deployments WHERE cluster_id = $1 AND policy_id = $2")
        .bind(cluster_id)
        .bind(policy_id)
        .execute(executor)
        .await?;
    Ok(())
}

pub async fn set_drift<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    cluster_id: &str,
    policy_id: &str,
    drift: Drift,
    detail: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE deployments SET drift = $1, drift_detail = $2, checked_ms = $3 \
         WHERE cluster_id = $4 AND policy_id = $5",
    )
    .bind(drift.as_str())
    .bind(detail)
    .bind(now)
    .bind(cluster_id)
    .bind(policy_id)
    .execute(executor)
    .await?;
    Ok(())
}

pub async fn deployments<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    policy_id: Option<&str>,
) -> Result<Vec<Deployment>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT d.cluster_id, COALESCE(c.name, d.cluster_id) AS cluster_name, d.policy_id, \
         p.name AS policy_name, d.version, d.mode, d.rollout_id, d.applied_ms, d.drift, \
         d.drift_detail, d.checked_ms FROM deployments d \
         JOIN policies p ON p.id = d.policy_id LEFT JOIN clusters c ON c.id = d.cluster_id \
         WHERE ($1 = '' OR d.policy_id = $1) ORDER BY p.name, cluster_name",
    )
    .bind(policy_id.unwrap_or_default())
    .fetch_all(executor)
    .await?;
    rows.iter()
        .map(|row| {
            let mode: String = row.try_get("mode")?;
            let drift: String = row.try_get("drift")?;
            Ok(Deployment {
                cluster_id: row.try_get("cluster_id")?,
                cluster_name: row.try_get("cluster_name")?,
                policy_id: row.try_get("policy_id")?,
                policy_name: row.try_get("policy_name")?,
                version: row.try_get("version")?,
                mode: Mode::decode(&mode)?,
                rollout_id: row.try_get("rollout_id")?,
                applied_ms: row.try_get("applied_ms")?,
                drift: Drift::decode(&drift)?,
                drift_detail: row.try_get("drift_detail")?,
                checked_ms: row.try_get("checked_ms")?,
            })
        })
        .collect()
}

/// Every deployment with its stored manifests, for the drift check: (cluster, policy, desired, drift).
pub async fn all_desired<'e, E: Executor<'e, Database = Any>>(
    executor: E,
) -> Result<Vec<(String, String, Desired, Drift)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT cluster_id, policy_id, version, mode, manifests, rollout_id, drift FROM deployments \
         ORDER BY cluster_id, policy_id",
    )
    .fetch_all(executor)
    .await?;
    rows.iter()
        .map(|row| {
            let mode: String = row.try_get("mode")?;
            let manifests: String = row.try_get("manifests")?;
            let drift: String = row.try_get("drift")?;
            Ok((
                row.try_get("cluster_id")?,
                row.try_get("policy_id")?,
                Desired {
                    version: row.try_get("version")?,
                    mode: Mode::decode(&mode)?,
                    manifests: serde_json::from_str(&manifests)
                        .map_err(|e| sqlx::Error::Decode(e.into()))?,
                    rollout_id: row.try_get("rollout_id")?,
                },
                Drift::decode(&drift)?,
            ))
        })
        .collect()
}
