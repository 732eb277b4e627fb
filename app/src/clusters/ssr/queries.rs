//! Every query of the clusters domain. Each takes an executor, so it runs inside or outside a
//! transaction as the service decides.

use std::collections::BTreeMap;

use sqlx::any::AnyRow;
use sqlx::{Any, Row};

use crate::clusters::{Capabilities, Cluster, Health};

const COLUMNS: &str =
    "id, name, environment, labels, api_url, credential_kind, disabled, reconcile, \
     health, k8s_version, capabilities, last_error, last_checked_ms, created_ms, created_by";

/// A cluster row with its sealed credentials, for the service only.
#[derive(Debug, Clone)]
pub struct Stored {
    pub cluster: Cluster,
    pub sealed: String,
}

fn from_row(row: &AnyRow) -> Result<Cluster, sqlx::Error> {
    let labels: String = row.try_get("labels")?;
    let capabilities: String = row.try_get("capabilities")?;
    Ok(Cluster {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        environment: row.try_get("environment")?,
        labels: serde_json::from_str::<BTreeMap<String, String>>(&labels).unwrap_or_default(),
        api_url: row.try_get("api_url")?,
        credential_kind: row.try_get("credential_kind")?,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        reconcile: row.try_get::<i64, _>("reconcile")? != 0,
        health: Health::decode(&row.try_get::<String, _>("health")?)?,
        k8s_version: row.try_get("k8s_version")?,
        capabilities: serde_json::from_str::<Capabilities>(&capabilities).unwrap_or_default(),
        last_error: row.try_get("last_error")?,
        last_checked_ms: row.try_get("last_checked_ms")?,
        created_ms: row.try_get("created_ms")?,
        created_by: row.try_get("created_by")?,
    })
}

pub async fn list<'e, E: sqlx::Executor<'e, Database = Any>>(
    executor: E,
) -> Result<Vec<Cluster>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM clusters ORDER BY environment, name"
    ))
    .fetch_all(executor)
    .await?;
    rows.iter().map(from_row).collect()
}

pub async fn get<'e, E: sqlx::Executor<'e, Database = Any>>(
    executor: E,
    id: &str,
) -> Result<Option<Stored>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS}, credentials FROM clusters WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(executor)
    .await?;
    row.map(|row| {
        Ok(Stored {
            cluster: from_row(&row)?,
            sealed: row.try_get("credentials")?,
        })
    })
    .transpose()
}

pub async fn name_taken<'e, E: sqlx::Executor<'e, Database = Any>>(
    executor: E,
    name: &str,
) -> Result<bool, sqlx::Error> {
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM clusters WHERE name = $1")
        .bind(name)
        .fetch_one(executor)
        .await?;
    Ok(count > 0)
}

/// Every cluster's id, name and sealed credentials: for the start-up key check.
pub async fn all_sealed<'e, E: sqlx::Executor<'e, Database = Any>>(
    executor: E,
) -> Result<Vec<(String, String, String)>, sqlx::Error> {
    sqlx::query_as("SELECT id, name, credentials FROM clusters ORDER BY name")
        .fetch_all(executor)
        .await
}

pub async fn insert<'e, E: sqlx::Executor<'e, Database = Any>>(
    executor: E,
    cluster: &Cluster,
    sealed: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO clusters (id, name, environment, labels, api_url, credential_kind, credentials, \
         disabled, reconcile, health, k8s_version, capabilities, last_error, last_checked_ms, \
         created_ms, created_by, updated_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
    )
    .bind(&cluster.id)
    .bind(&cluster.name)
    .bind(&cluster.environment)
    .bind(json(&cluster.labels))
    .bind(&cluster.api_url)
    .bind(&cluster.credential_kind)
    .bind(sealed)
    .bind(i64::from(cluster.disabled))
    .bind(i64::from(cluster.reconcile))
    .bind(cluster.health.as_str())
    .bind(&cluster.k8s_version)
    .bind(json(&cluster.capabilities))
    .bind(&cluster.last_error)
    .bind(cluster.last_checked_ms)
    .bind(cluster.created_ms)
    .bind(&cluster.created_by)
    .bind(cluster.created_ms)
    .execute(executor)
    .await?;
    Ok(())
}

/// Write every changeable field of `cluster` (and the credentials when given).
pub async fn update<'e, E: sqlx::Executor<'e, Database = Any>>(
    executor: E,
    cluster: &Cluster,
    sealed: Option<&str>,
    now: i64,
) -> Result<u64, sqlx::Error> {
    let result = sqlx::query(
        "UPDATE clusters SET environment = $2, labels = $3, api_url = $4, credential_kind = $5, \
         credentials = COALESCE($6, credentials), disabled = $7, reconcile = $8, health = $9, \
         k8s_version = $10, capabilities = $11, last_error = $12, last_checked_ms = $13, \
         updated_ms = $14 WHERE id = $1",
    )
    .bind(&cluster.id)
    .bind(&cluster.environment)
    .bind(json(&cluster.labels))
    .bind(&cluster.api_url)
    .bind(&cluster.credential_kind)
    .bind(sealed)
    .bind(i64::from(cluster.disabled))
    .bind(i64::from(cluster.reconcile))
    .bind(cluster.health.as_str())
    .bind(&cluster.k8s_version)
    .bind(json(&cluster.capabilities))
    .bind(&cluster.last_error)
    .bind(cluster.last_checked_ms)
    .bind(now)
    .execute(executor)
    .await?;
    Ok(result.rows_affected())
}

pub async fn delete<'e, E: sqlx::Executor<'e, Database = Any>>(
    executor: E,
    id: &str,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM clusters WHERE id = $1")
        .bind(id)
        .execute(executor)
        .await?
        .rows_affected())
}

fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "{}".to_owned())
}
