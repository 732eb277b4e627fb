//! Every query of the clusters domain. Each takes an executor, so it runs inside or outside a
//! transaction as the service decides.

use std::collections::BTreeMap;

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
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

/// A JSON column as its type: stored text that does not read as one is an error, never a default.
fn json_column<T: serde::de::DeserializeOwned>(
    row: &AnyRow,
    column: &str,
) -> Result<T, sqlx::Error> {
    crate::db::json_column(column, &row.try_get::<String, _>(column)?)
}

/// The capabilities column: a cluster never probed holds `{}` (the column's default), which reads
/// as nothing detected; a key it does not know, or a value that is not a bool, is an error.
#[derive(Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct StoredCapabilities {
    validating_admission_policy: bool,
    gatekeeper: bool,
    kyverno: bool,
    policy_reports: bool,
}

impl From<StoredCapabilities> for Capabilities {
    fn from(stored: StoredCapabilities) -> Self {
        Capabilities {
            validating_admission_policy: stored.validating_admission_policy,
            gatekeeper: stored.gatekeeper,
            kyverno: stored.kyverno,
            policy_reports: stored.policy_reports,
        }
    }
}

fn from_row(row: &AnyRow) -> Result<Cluster, sqlx::Error> {
    Ok(Cluster {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        environment: row.try_get("environment")?,
        labels: json_column::<BTreeMap<String, String>>(row, "labels")?,
        api_url: row.try_get("api_url")?,
        credential_kind: row.try_get("credential_kind")?,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        reconcile: row.try_get::<i64, _>("reconcile")? != 0,
        health: Health::decode(&row.try_get::<String, _>("health")?)?,
        k8s_version: row.try_get("k8s_version")?,
        capabilities: json_column::<StoredCapabilities>(row, "capabilities")?.into(),
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

/// The `per_page` clusters after the one whose id is `after`, in list order (environment, then
/// name), read by key: a page costs its own rows, not the fleet's. The answer is what
/// [`crate::clusters::page_of`] says of the whole list (a test holds it to that).
pub async fn page(
    pool: &sqlx::Pool<Any>,
    after: Option<&str>,
    per_page: usize,
) -> Result<crate::clusters::ClusterPage, sqlx::Error> {
    let cursor: Option<(String, String)> = match after {
        Some(after) => sqlx::query("SELECT environment, name FROM clusters WHERE id = $1")
            .bind(after)
            .fetch_optional(pool)
            .await?
            .map(|row| Ok::<_, sqlx::Error>((row.try_get("environment")?, row.try_get("name")?)))
            .transpose()?,
        None => None,
    };
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM clusters")
        .fetch_one(pool)
        .await?;
    let limit = per_page + 1;
    let (rows, before) = match &cursor {
        Some((environment, name)) => {
            let rows = sqlx::query(&format!(
                "SELECT {COLUMNS} FROM clusters WHERE environment > $1 \
                 OR (environment = $1 AND name > $2) ORDER BY environment, name LIMIT {limit}"
            ))
            .bind(environment)
            .bind(name)
            .fetch_all(pool)
            .await?;
            let before: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM clusters WHERE environment < $1 \
                 OR (environment = $1 AND name <= $2)",
            )
            .bind(environment)
            .bind(name)
            .fetch_one(pool)
            .await?;
            (rows, before)
        }
        None => (
            sqlx::query(&format!(
                "SELECT {COLUMNS} FROM clusters ORDER BY environment, name LIMIT {limit}"
            ))
            .fetch_all(pool)
            .await?,
            0,
        ),
    };
    let mut clusters = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
    let more = clusters.len() > per_page;
    clusters.truncate(per_page);
    let next = if more {
        clusters.last().map(|c| c.id.clone())
    } else {
        None
    };
    Ok(crate::clusters::ClusterPage {
        first: usize::try_from(before).unwrap_or(0) + 1,
        total: usize::try_from(total).unwrap_or(0),
        clusters,
        next,
    })
}

/// Every cluster's id and name, in list order: a filter's choices.
pub async fn names<'e, E: sqlx::Executor<'e, Database = Any>>(
    executor: E,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query("SELECT id, name FROM clusters ORDER BY environment, name")
        .fetch_all(executor)
        .await?
        .iter()
        .map(|row| Ok((row.try_get("id")?, row.try_get("name")?)))
        .collect()
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

/// Bind what `insert` and `update` both write, in the order both list it: `environment` through
/// `last_checked_ms`, the sealed credentials in their place.
fn bind_state<'q>(
    query: Query<'q, Any, AnyArguments<'q>>,
    cluster: &'q Cluster,
    sealed: Option<&'q str>,
) -> Query<'q, Any, AnyArguments<'q>> {
    query
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
}

pub async fn insert<'e, E: sqlx::Executor<'e, Database = Any>>(
    executor: E,
    cluster: &Cluster,
    sealed: &str,
) -> Result<(), sqlx::Error> {
    let query = sqlx::query(
        "INSERT INTO clusters (id, name, environment, labels, api_url, credential_kind, credentials, \
         disabled, reconcile, health, k8s_version, capabilities, last_error, last_checked_ms, \
         created_ms, created_by, updated_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
    )
    .bind(&cluster.id)
    .bind(&cluster.name);
    bind_state(query, cluster, Some(sealed))
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
    let query = sqlx::query(
        "UPDATE clusters SET environment = $2, labels = $3, api_url = $4, credential_kind = $5, \
         credentials = COALESCE($6, credentials), disabled = $7, reconcile = $8, health = $9, \
         k8s_version = $10, capabilities = $11, last_error = $12, last_checked_ms = $13, \
         updated_ms = $14 WHERE id = $1",
    )
    .bind(&cluster.id);
    let result = bind_state(query, cluster, sealed)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    async fn pages_by_key_agree_with_the_whole_list(backend: crate::db::testing::Backend) {
        let db = crate::db::testing::database(backend).await;
        // Environments and names out of insertion order, so the order is the query's.
        for i in 0..9 {
            sqlx::query(
                "INSERT INTO clusters (id, name, environment, api_url, credential_kind, \
                 credentials, created_ms, created_by, updated_ms) \
                 VALUES ($1, $2, $3, 'https://x', 'token', '', 0, 't', 0)",
            )
            .bind(format!("id-{i}"))
            .bind(format!("c{}", (i * 5) % 9))
            .bind(["prod", "dev", "staging"][i % 3])
            .execute(db.pool())
            .await
            .unwrap();
        }
        let all = list(db.pool()).await.unwrap();
        let mut after: Option<String> = None;
        let mut seen = 0;
        loop {
            let got = page(db.pool(), after.as_deref(), 4).await.unwrap();
            assert_eq!(
                got,
                crate::clusters::page_of(all.clone(), after.as_deref(), 4)
            );
            seen += got.clusters.len();
            match got.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, 9);
        // A cursor naming a cluster that is gone starts over.
        let gone = page(db.pool(), Some("removed"), 4).await.unwrap();
        assert_eq!(gone, crate::clusters::page_of(all, Some("removed"), 4));
    }

    crate::db::testing::on_both_backends!(
        pages_by_key_agree_with_the_whole_list: sqlite_pages_by_key_agree_with_the_whole_list,
        postgres_pages_by_key_agree_with_the_whole_list
    );

    #[test]
    fn stored_capabilities_read_strictly() {
        let read =
            |text: &str| serde_json::from_str::<StoredCapabilities>(text).map(Capabilities::from);
        assert_eq!(read("{}").unwrap(), Capabilities::default());
        assert!(read(r#"{"gatekeeper": true}"#).unwrap().gatekeeper);
        assert!(read(r#"{"gatekeper": true}"#).is_err());
        assert!(read(r#"{"gatekeeper": "yes"}"#).is_err());
    }
}
