//! Server side of posture: the stored assessments, assessing on request, and the assessor that
//! assesses each newly registered cluster once its inventory is complete.

pub mod assess;

use std::time::Duration;

use sqlx::{Any, Executor, Row};

use crate::auth::{authorize, Action, Principal};
use crate::clusters::ssr::service as clusters;
use crate::db::Db;
use crate::error::ServerResult;
use crate::posture::Assessment;

/// The stored assessment of a cluster.
async fn stored<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    cluster_id: &str,
) -> Result<Option<Assessment>, sqlx::Error> {
    let row = sqlx::query("SELECT report FROM posture_assessments WHERE cluster_id = $1")
        .bind(cluster_id)
        .fetch_optional(executor)
        .await?;
    row.map(|row| {
        let report: String = row.try_get("report")?;
        crate::db::json_column("report", &report)
    })
    .transpose()
}

async fn store<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    assessment: &Assessment,
) -> Result<(), sqlx::Error> {
    let report =
        serde_json::to_string(assessment).map_err(|err| sqlx::Error::Encode(err.into()))?;
    sqlx::query(
        "INSERT INTO posture_assessments (cluster_id, assessed_ms, report) VALUES ($1, $2, $3) \
         ON CONFLICT (cluster_id) DO UPDATE SET assessed_ms = $2, report = $3",
    )
    .bind(&assessment.cluster_id)
    .bind(assessment.assessed_ms)
    .bind(report)
    .execute(executor)
    .await?;
    Ok(())
}

/// Every stored assessment of an enabled cluster, by cluster id.
pub async fn all(db: &Db) -> ServerResult<std::collections::HashMap<String, Assessment>> {
    let rows = sqlx::query(
        "SELECT a.cluster_id, a.report FROM posture_assessments a \
         JOIN clusters c ON c.id = a.cluster_id WHERE c.disabled = 0",
    )
    .fetch_all(db.pool())
    .await?;
    let mut out = std::collections::HashMap::new();
    for row in rows {
        let report: String = row.try_get("report")?;
        out.insert(
            row.try_get("cluster_id")?,
            crate::db::json_column("report", &report)?,
        );
    }
    Ok(out)
}

/// The last assessment of a cluster, for someone who may read it.
pub async fn latest(
    db: &Db,
    who: &Principal,
    cluster_id: &str,
) -> ServerResult<Option<Assessment>> {
    authorize(Some(who), Action::Read)?;
    // An unknown cluster is a 404, not "never assessed".
    clusters::get(db, cluster_id).await?;
    Ok(stored(db.pool(), cluster_id).await?)
}

/// Assess a cluster now and keep the report, recording who asked in the audit log.
pub async fn assess_now(
    db: &Db,
    who: &Principal,
    now: i64,
    cluster_id: &str,
) -> ServerResult<Assessment> {
    authorize(Some(who), Action::EditPolicies)?;
    let cluster = clusters::get(db, cluster_id).await?;
    let assessment = assess::assess(db, &cluster, now).await?;
    let mut tx = db.begin().await?;
    store(&mut *tx, &assessment).await?;
    crate::audit::ssr::Event::new("cluster.assess", "cluster", &cluster.id)
        .detail(serde_json::json!({
            "cluster": cluster.name,
            "objects": assessment.objects,
            "complete": assessment.complete,
            "failing_entries": assessment.entries.iter().filter(|e| e.workloads > 0).count(),
        }))
        .record(&mut *tx, who, now)
        .await?;
    tx.commit().await?;
    Ok(assessment)
}

/// Whether a cluster assessed at `assessed_ms` (`None`: never) is assessed again at `now_ms`.
pub fn is_due(assessed_ms: Option<i64>, now_ms: i64, reassess: Option<Duration>) -> bool {
    match (assessed_ms, reassess) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(at), Some(every)) => {
            now_ms.saturating_sub(at) >= i64::try_from(every.as_millis()).unwrap_or(i64::MAX)
        }
    }
}

/// The enabled clusters whose inventory this replica (`holder`) keeps, is complete, and whose
/// assessment is missing (registered since the last round) or older than `reassess`.
async fn due(
    db: &Db,
    holder: &str,
    now: i64,
    reassess: Option<Duration>,
) -> ServerResult<Vec<crate::clusters::Cluster>> {
    // When each cluster was assessed, without reading the reports: this runs every few seconds.
    let assessed: std::collections::HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
        "SELECT cluster_id, assessed_ms FROM posture_assessments",
    )
    .fetch_all(db.pool())
    .await?
    .into_iter()
    .collect();
    let mut out = Vec::new();
    for cluster in clusters::list(db).await? {
        if cluster.disabled || !is_due(assessed.get(&cluster.id).copied(), now, reassess) {
            continue;
        }
        let held = crate::inventory::ssr::queries::lease_of(db.pool(), &cluster.id).await?;
        if held.is_none_or(|(by, _)| by != holder) {
            continue;
        }
        if crate::inventory::ssr::service::of_cluster(db, &cluster.id)
            .await?
            .complete()
        {
            out.push(cluster);
        }
    }
    Ok(out)
}

/// Assess each cluster once its inventory is first complete, and again when its assessment is
/// older than `reassess`, looking every `every`, until `stop` (which also cuts an assessment
/// short). Only the replica that keeps a cluster's inventory assesses it.
pub async fn run(
    db: Db,
    holder: String,
    every: Duration,
    reassess: Option<Duration>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = round(&db, &holder, reassess) => {}
            _ = stop.changed() => return,
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Assess the clusters that are due; failures are logged and tried again next round.
async fn round(db: &Db, holder: &str, reassess: Option<Duration>) {
    let clusters = match due(db, holder, crate::db::now_ms(), reassess).await {
        Ok(clusters) => clusters,
        Err(err) => {
            tracing::warn!(error = %err, "finding clusters to assess failed");
            return;
        }
    };
    for cluster in clusters {
        let now = crate::db::now_ms();
        let done = match assess::assess(db, &cluster, now).await {
            Ok(assessment) => store(db.pool(), &assessment).await.map_err(Into::into),
            Err(err) => Err(err),
        };
        match done {
            Ok(()) => tracing::info!(cluster = %cluster.name, "assessed the cluster's posture"),
            Err(err) => {
                tracing::warn!(cluster = %cluster.name, error = %err, "assessing the cluster's posture failed")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_is_assessed_first_and_again_once_its_report_is_old() {
        let day = Some(Duration::from_secs(86_400));
        assert!(is_due(None, 0, None));
        assert!(is_due(None, 0, day));
        assert!(!is_due(Some(1_000), 10_000_000_000, None));
        assert!(!is_due(Some(1_000), 1_000 + 86_399_999, day));
        assert!(is_due(Some(1_000), 1_000 + 86_400_000, day));
    }
}
