//! Open findings counted per cluster, policy and message by the day each was last seen
//! (`finding_days`): what the compliance page reads instead of every open violation, so it costs
//! the same with a million violations as with a hundred.
//!
//! Every write of violations moves its cluster's `written` count (`finding_clusters`, inside the
//! writer's transaction); a read first recomputes, from `violations`, the rows of each cluster whose
//! `written` moved past `computed`. The counts are so always what `violations` says, as of the
//! read, and a read costs the clusters that changed since the last one.

use sqlx::{AnyConnection, Row};

use crate::db::Db;

/// A day: the width of a `finding_days` bucket.
pub const DAY_MS: i64 = 86_400_000;

/// Note that violations of `cluster_id` changed (in the writer's transaction).
pub async fn mark_written(conn: &mut AnyConnection, cluster_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO finding_clusters (cluster_id, written, computed) VALUES ($1, 1, 0) \
         ON CONFLICT (cluster_id) DO UPDATE SET written = finding_clusters.written + 1",
    )
    .bind(cluster_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Open findings alike on one cluster: the same policy and message, `count` objects.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct OpenFinding {
    pub cluster_id: String,
    pub policy_id: String,
    pub policy: String,
    pub message: String,
    pub count: i64,
}

/// The open findings of Palisade's policies and of the apiserver's own Pod Security, last seen on
/// `since_day_ms` (the start of a UTC day) or later.
pub async fn open_since(db: &Db, since_day_ms: i64) -> Result<Vec<OpenFinding>, sqlx::Error> {
    refresh(db).await?;
    sqlx::query(
        "SELECT cluster_id, policy_id, policy, message, CAST(SUM(open) AS BIGINT) AS n \
         FROM finding_days \
         WHERE day_ms >= $1 GROUP BY cluster_id, policy_id, policy, message",
    )
    .bind(since_day_ms)
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(|row| {
        Ok(OpenFinding {
            cluster_id: row.try_get("cluster_id")?,
            policy_id: row.try_get("policy_id")?,
            policy: row.try_get("policy")?,
            message: row.try_get("message")?,
            count: row.try_get("n")?,
        })
    })
    .collect()
}

/// Recompute the rows of every cluster written since it was last computed.
async fn refresh(db: &Db) -> Result<(), sqlx::Error> {
    let stale: Vec<String> =
        sqlx::query_scalar("SELECT cluster_id FROM finding_clusters WHERE written <> computed")
            .fetch_all(db.pool())
            .await?;
    for cluster_id in stale {
        recompute(db, &cluster_id).await?;
    }
    Ok(())
}

/// Replace `cluster_id`'s rows by what its open violations say now.
async fn recompute(db: &Db, cluster_id: &str) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    // A write first: it holds the cluster's row (PostgreSQL) or the database (SQLite), so two
    // recomputations of one cluster run one after the other and the second sees the first's rows.
    sqlx::query("UPDATE finding_clusters SET computed = computed WHERE cluster_id = $1")
        .bind(cluster_id)
        .execute(&mut *tx)
        .await?;
    let row = sqlx::query("SELECT written, computed FROM finding_clusters WHERE cluster_id = $1")
        .bind(cluster_id)
        .fetch_one(&mut *tx)
        .await?;
    let (written, computed): (i64, i64) = (row.try_get("written")?, row.try_get("computed")?);
    if written == computed {
        return tx.commit().await;
    }
    sqlx::query("DELETE FROM finding_days WHERE cluster_id = $1")
        .bind(cluster_id)
        .execute(&mut *tx)
        .await?;
    // A write that commits after `written` was read may or may not be counted here; either way
    // it moved `written` past what is recorded below, so the next read recomputes again.
    sqlx::query(
        "INSERT INTO finding_days (cluster_id, day_ms, policy_id, policy, message, open) \
         SELECT cluster_id, last_ms - (last_ms % 86400000), policy_id, policy, message, COUNT(*) \
         FROM violations WHERE cluster_id = $1 AND resolved_ms = 0 \
         AND (policy_id <> '' OR policy LIKE 'pod-security:%') \
         GROUP BY cluster_id, last_ms - (last_ms % 86400000), policy_id, policy, message",
    )
    .bind(cluster_id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE finding_clusters SET computed = $1 WHERE cluster_id = $2")
        .bind(written)
        .bind(cluster_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::db::testing::{database, on_both_backends, Backend};
    use crate::violations::ssr::store::{self, Finding};
    use crate::violations::{Action, Source};

    /// What `open_since` must say: the open violations grouped straight from `violations`.
    async fn straight(db: &Db, since_day_ms: i64) -> Vec<OpenFinding> {
        let mut found: Vec<OpenFinding> = sqlx::query(
            "SELECT cluster_id, policy_id, policy, message, COUNT(*) AS n FROM violations \
             WHERE last_ms >= $1 AND resolved_ms = 0 \
             AND (policy_id <> '' OR policy LIKE 'pod-security:%') \
             GROUP BY cluster_id, policy_id, policy, message",
        )
        .bind(since_day_ms)
        .fetch_all(db.pool())
        .await
        .unwrap()
        .iter()
        .map(|row| OpenFinding {
            cluster_id: row.try_get("cluster_id").unwrap(),
            policy_id: row.try_get("policy_id").unwrap(),
            policy: row.try_get("policy").unwrap(),
            message: row.try_get("message").unwrap(),
            count: row.try_get("n").unwrap(),
        })
        .collect();
        found.sort();
        found
    }

    async fn counted(db: &Db, since_day_ms: i64) -> Vec<OpenFinding> {
        let mut found: Vec<OpenFinding> = open_since(db, since_day_ms)
            .await
            .unwrap()
            .into_iter()
            .filter(|f| f.count > 0)
            .collect();
        found.sort();
        found
    }

    /// Seeded writes, scans that resolve, messages that change and violations that age: after every
    /// step the day counts agree with the violations themselves.
    async fn counts_follow_every_write(backend: Backend) {
        let db = database(backend).await;
        let mut rng = palisade_engine::sample::Rng::new(0x0f1d_0001);
        let day0 = 20_000 * DAY_MS;
        let mut now = day0;
        for step in 0..40 {
            now += rng.below(DAY_MS as u64 / 2) as i64;
            let cluster = format!("c{}", rng.below(3));
            let findings: Vec<Finding> = (0..rng.below(30))
                .map(|_| {
                    let pod_security = rng.chance(30);
                    Finding {
                        policy_id: if pod_security || rng.chance(10) {
                            String::new()
                        } else {
                            format!("p{}", rng.below(3))
                        },
                        policy: if pod_security {
                            "pod-security:baseline".to_owned()
                        } else {
                            format!("policy-{}", rng.below(3))
                        },
                        resource: "pods".into(),
                        namespace: "team".into(),
                        name: format!("w{}", rng.below(20)),
                        uid: String::new(),
                        action: Action::Audit,
                        source: if rng.chance(50) {
                            Source::Scan
                        } else {
                            Source::Audit
                        },
                        message: format!("message {}", rng.below(3)),
                        at_ms: now - rng.below(3 * DAY_MS as u64) as i64,
                    }
                })
                .collect();
            let mut tx = db.begin().await.unwrap();
            store::record(&mut tx, &cluster, &findings, 0)
                .await
                .unwrap();
            if rng.chance(30) {
                let since = now - rng.below(2 * DAY_MS as u64) as i64;
                store::resolve_unseen(&mut tx, &cluster, Source::Scan, since, now)
                    .await
                    .unwrap();
            }
            tx.commit().await.unwrap();
            if step % 3 == 0 {
                let since = now - now.rem_euclid(DAY_MS) - 6 * DAY_MS;
                assert_eq!(
                    counted(&db, since).await,
                    straight(&db, since).await,
                    "{backend:?} step {step}"
                );
            }
        }
        let since = now - now.rem_euclid(DAY_MS) - 6 * DAY_MS;
        let open = straight(&db, since).await;
        assert!(
            open.len() > 5,
            "the run should leave findings open: {open:?}"
        );
        assert_eq!(counted(&db, since).await, open);
        // Nothing written since: a read recomputes nothing.
        let stale: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM finding_clusters WHERE written <> computed")
                .fetch_one(db.pool())
                .await
                .unwrap();
        assert_eq!(stale, 0);
    }

    on_both_backends!(
        counts_follow_every_write: sqlite_counts_follow_every_write,
        postgres_counts_follow_every_write
    );
}
