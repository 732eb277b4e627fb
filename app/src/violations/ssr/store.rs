//! Writing violations: one upsert per distinct violation and one per hourly count, many rows per
//! statement, inside the caller's transaction.

use std::collections::HashMap;

use sqlx::{AnyConnection, Row};

use super::findings;
use crate::db::Db;
use crate::violations::{Action, Source};

/// An hour, the width of a `violation_counts` bucket.
pub const HOUR_MS: i64 = 3_600_000;
/// A day, the width of a `violation_days` bucket.
pub const DAY_MS: i64 = 86_400_000;

/// One violation as a source reports it, before it is counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub policy_id: String,
    pub policy: String,
    pub resource: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub action: Action,
    pub source: Source,
    pub message: String,
    pub at_ms: i64,
}

/// The row key of a violation: a digest of what makes it distinct.
pub fn violation_id(cluster_id: &str, f: &Finding) -> String {
    let key = [
        cluster_id,
        &f.policy,
        &f.resource,
        &f.namespace,
        &f.name,
        f.action.as_str(),
        f.source.as_str(),
    ]
    .join("\u{0}");
    let digest = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    digest.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An hourly count that this write took across a threshold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crossing {
    pub bucket_ms: i64,
    pub policy: String,
    pub action: Action,
    pub count: i64,
}

/// What a write did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    /// Distinct violations touched.
    pub violations: usize,
    /// Of those, rows that did not exist before.
    pub opened: usize,
    /// Denials whose hourly count reached `deny_spike` with this write.
    pub spikes: Vec<Crossing>,
}

struct Aggregate<'a> {
    finding: &'a Finding,
    first_ms: i64,
    last_ms: i64,
    count: i64,
}

/// Rows per statement: well under SQLite's and PostgreSQL's limits on bound parameters.
const ROWS: usize = 400;

/// `(…),(…)` for `rows` rows of `columns` parameters. SQLite gets anonymous `?`: it looks a named
/// parameter up by a linear scan, which made a statement of thousands of `$N` quadratic.
fn placeholders(sqlite: bool, rows: usize, columns: usize) -> String {
    let mut out = String::with_capacity(rows * columns * 5);
    for r in 0..rows {
        if r > 0 {
            out.push(',');
        }
        out.push('(');
        for c in 0..columns {
            if c > 0 {
                out.push(',');
            }
            if sqlite {
                out.push('?');
            } else {
                out.push('$');
                out.push_str(&(r * columns + c + 1).to_string());
            }
        }
        out.push(')');
    }
    out
}

fn is_sqlite(conn: &AnyConnection) -> bool {
    conn.backend_name().eq_ignore_ascii_case("sqlite")
}

/// Counts `findings` on `cluster_id`: each distinct violation's row grows (or is opened, or
/// re-opened when it had been resolved), and the hourly counts of events (audit, report) and of new
/// scan findings grow. `deny_spike` (0: off) is the hourly denial count per policy that is
/// reported back in [`Written::spikes`] when this write reaches it.
pub async fn record(
    conn: &mut AnyConnection,
    cluster_id: &str,
    findings: &[Finding],
    deny_spike: i64,
) -> Result<Written, sqlx::Error> {
    let sqlite = is_sqlite(conn);
    let mut aggregates: HashMap<String, Aggregate> = HashMap::new();
    for f in findings {
        let id = violation_id(cluster_id, f);
        let entry = aggregates.entry(id).or_insert(Aggregate {
            finding: f,
            first_ms: f.at_ms,
            last_ms: f.at_ms,
            count: 0,
        });
        entry.count += 1;
        entry.first_ms = entry.first_ms.min(f.at_ms);
        if f.at_ms >= entry.last_ms {
            entry.last_ms = f.at_ms;
            entry.finding = f;
        }
    }
    // In key order, so concurrent writers (PostgreSQL) lock rows in the same order and never
    // deadlock each other.
    let mut rows: Vec<(String, Aggregate)> = aggregates.into_iter().collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let mut written = Written {
        violations: rows.len(),
        ..Written::default()
    };
    let mut buckets: HashMap<(i64, &str, &str, Action), i64> = HashMap::new();
    for chunk in rows.chunks(ROWS) {
        let sql = format!(
            "INSERT INTO violations (id, cluster_id, policy_id, policy, resource, namespace, name, \
             uid, action, source, message, first_ms, last_ms, count, resolved_ms) VALUES {} \
             ON CONFLICT (id) DO UPDATE SET count = violations.count + excluded.count, \
             last_ms = CASE WHEN excluded.last_ms > violations.last_ms THEN excluded.last_ms \
             ELSE violations.last_ms END, \
             message = CASE WHEN excluded.last_ms >= violations.last_ms THEN excluded.message \
             ELSE violations.message END, \
             policy_id = CASE WHEN excluded.policy_id <> '' THEN excluded.policy_id \
             ELSE violations.policy_id END, \
             resolved_ms = 0 \
             RETURNING id, count",
            placeholders(sqlite, chunk.len(), 15)
        );
        let mut query = sqlx::query(&sql);
        for (id, a) in chunk {
            let f = a.finding;
            query = query
                .bind(id.as_str())
                .bind(cluster_id)
                .bind(f.policy_id.as_str())
                .bind(f.policy.as_str())
                .bind(f.resource.as_str())
                .bind(f.namespace.as_str())
                .bind(f.name.as_str())
                .bind(f.uid.as_str())
                .bind(f.action.as_str())
                .bind(f.source.as_str())
                .bind(f.message.as_str())
                .bind(a.first_ms)
                .bind(a.last_ms)
                .bind(a.count)
                .bind(0_i64);
        }
        let returned = query.fetch_all(&mut *conn).await?;
        let mut new_ids = std::collections::HashSet::new();
        for row in returned {
            let id: String = row.try_get("id")?;
            let count: i64 = row.try_get("count")?;
            if let Some((_, a)) = chunk.iter().find(|(i, _)| *i == id) {
                if count == a.count {
                    written.opened += 1;
                    new_ids.insert(id);
                }
            }
        }
        for (id, a) in chunk {
            let f = a.finding;
            // A scan sees the same violation every pass: only a new one is an event.
            if f.source == Source::Scan && !new_ids.contains(id) {
                continue;
            }
            let per_event = if f.source == Source::Scan { 1 } else { a.count };
            *buckets
                .entry((
                    a.last_ms - a.last_ms.rem_euclid(HOUR_MS),
                    f.policy.as_str(),
                    f.policy_id.as_str(),
                    f.action,
                ))
                .or_default() += per_event;
        }
    }
    if !rows.is_empty() {
        findings::mark_written(&mut *conn, cluster_id).await?;
    }
    // One row per hour, policy and action (the table's key), whichever findings knew the
    // Palisade policy behind the name: two rows of one key in a statement are an error in
    // PostgreSQL.
    let mut merged: HashMap<(i64, &str, Action), (&str, i64)> = HashMap::new();
    for ((bucket, policy, policy_id, action), count) in buckets {
        let entry = merged.entry((bucket, policy, action)).or_insert(("", 0));
        if entry.0.is_empty() {
            entry.0 = policy_id;
        }
        entry.1 += count;
    }
    let mut buckets: Vec<_> = merged
        .into_iter()
        .map(|((bucket, policy, action), (policy_id, count))| {
            ((bucket, policy, policy_id, action), count)
        })
        .collect();
    buckets.sort_by(|a, b| a.0.cmp(&b.0));
    let mut days: HashMap<(i64, &str, Action), i64> = HashMap::new();
    for ((bucket, policy, _, action), count) in &buckets {
        *days
            .entry((bucket - bucket.rem_euclid(DAY_MS), *policy, *action))
            .or_default() += count;
    }
    let mut days: Vec<_> = days.into_iter().collect();
    days.sort_by(|a, b| a.0.cmp(&b.0));
    for chunk in days.chunks(ROWS) {
        let sql = format!(
            "INSERT INTO violation_days (day_ms, cluster_id, policy, action, count) VALUES {} \
             ON CONFLICT (day_ms, cluster_id, policy, action) DO UPDATE SET \
             count = violation_days.count + excluded.count",
            placeholders(sqlite, chunk.len(), 5)
        );
        let mut query = sqlx::query(&sql);
        for ((day, policy, action), count) in chunk {
            query = query
                .bind(*day)
                .bind(cluster_id)
                .bind(*policy)
                .bind(action.as_str())
                .bind(*count);
        }
        query.execute(&mut *conn).await?;
    }
    for chunk in buckets.chunks(ROWS) {
        let sql = format!(
            "INSERT INTO violation_counts (bucket_ms, cluster_id, policy_id, policy, action, count) \
             VALUES {} ON CONFLICT (bucket_ms, cluster_id, policy, action) DO UPDATE SET \
             count = violation_counts.count + excluded.count, \
             policy_id = CASE WHEN excluded.policy_id <> '' THEN excluded.policy_id \
             ELSE violation_counts.policy_id END \
             RETURNING bucket_ms, policy, action, count",
            placeholders(sqlite, chunk.len(), 6)
        );
        let mut query = sqlx::query(&sql);
        for ((bucket, policy, policy_id, action), count) in chunk {
            query = query
                .bind(*bucket)
                .bind(cluster_id)
                .bind(*policy_id)
                .bind(*policy)
                .bind(action.as_str())
                .bind(*count);
        }
        let returned = query.fetch_all(&mut *conn).await?;
        if deny_spike <= 0 {
            continue;
        }
        for row in returned {
            let action: String = row.try_get("action")?;
            if action != "deny" {
                continue;
            }
            let bucket: i64 = row.try_get("bucket_ms")?;
            let policy: String = row.try_get("policy")?;
            let total: i64 = row.try_get("count")?;
            let added = chunk
                .iter()
                .find(|((b, p, _, a), _)| *b == bucket && *p == policy && *a == Action::Deny)
                .map_or(0, |(_, c)| *c);
            if total >= deny_spike && total - added < deny_spike {
                written.spikes.push(Crossing {
                    bucket_ms: bucket,
                    policy,
                    action: Action::Deny,
                    count: total,
                });
            }
        }
    }
    Ok(written)
}

/// Marks open `source` violations on `cluster_id` that were not seen since `since_ms` (the start
/// of a complete scan) as resolved at `now_ms`; returns how many.
pub async fn resolve_unseen(
    conn: &mut AnyConnection,
    cluster_id: &str,
    source: Source,
    since_ms: i64,
    now_ms: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE violations SET resolved_ms = $1 WHERE cluster_id = $2 AND source = $3 \
         AND resolved_ms = 0 AND last_ms < $4",
    )
    .bind(now_ms)
    .bind(cluster_id)
    .bind(source.as_str())
    .bind(since_ms)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() > 0 {
        findings::mark_written(&mut *conn, cluster_id).await?;
    }
    Ok(done.rows_affected())
}

/// How stale a cluster's last noted report may grow before a new report moves it on.
const REPORT_EVERY_MS: i64 = 60_000;

/// Whether a report from `cluster_id` at `now_ms` would move its last noted report (a read, so
/// the many batches in between need no write).
pub async fn report_is_due(db: &Db, cluster_id: &str, now_ms: i64) -> Result<bool, sqlx::Error> {
    let last: Option<i64> = sqlx::query_scalar("SELECT reported_ms FROM clusters WHERE id = $1")
        .bind(cluster_id)
        .fetch_optional(db.pool())
        .await?;
    Ok(last.is_some_and(|last| last <= now_ms - REPORT_EVERY_MS))
}

/// Notes that `cluster_id` reported at `now_ms` (an accepted audit batch or a complete scan): its
/// first report stays, its last moves on. At most one write a minute per cluster, however many
/// batches arrive.
pub async fn mark_reported(
    conn: &mut AnyConnection,
    cluster_id: &str,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE clusters SET reported_ms = $1, reporting_since_ms = CASE \
         WHEN reporting_since_ms = 0 THEN $1 ELSE reporting_since_ms END \
         WHERE id = $2 AND reported_ms <= $3",
    )
    .bind(now_ms)
    .bind(cluster_id)
    .bind(now_ms - REPORT_EVERY_MS)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Of `audit_ids` (already prefixed with the cluster), the ones not counted before; they are
/// remembered from now on.
pub async fn first_sightings(
    conn: &mut AnyConnection,
    cluster_id: &str,
    audit_ids: &[String],
    now_ms: i64,
) -> Result<std::collections::HashSet<String>, sqlx::Error> {
    let sqlite = is_sqlite(conn);
    let mut fresh = std::collections::HashSet::new();
    for chunk in audit_ids.chunks(ROWS) {
        let sql = format!(
            "INSERT INTO ingested_events (audit_id, cluster_id, at_ms) VALUES {} \
             ON CONFLICT (audit_id) DO NOTHING RETURNING audit_id",
            placeholders(sqlite, chunk.len(), 3)
        );
        let mut query = sqlx::query(&sql);
        for id in chunk {
            query = query.bind(id.as_str()).bind(cluster_id).bind(now_ms);
        }
        for row in query.fetch_all(&mut *conn).await? {
            fresh.insert(row.try_get::<String, _>("audit_id")?);
        }
    }
    Ok(fresh)
}

/// Forgets audit IDs older than `before_ms` (a batch older than that is no longer re-sent).
pub async fn sweep_audit_ids(conn: &mut AnyConnection, before_ms: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM ingested_events WHERE at_ms < $1")
        .bind(before_ms)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn placeholders_number_every_parameter() {
        assert_eq!(placeholders(false, 2, 3), "($1,$2,$3),($4,$5,$6)");
        assert_eq!(placeholders(true, 2, 2), "(?,?),(?,?)");
    }

    #[test]
    fn ids_depend_on_what_makes_a_violation_distinct() {
        let f = Finding {
            policy_id: String::new(),
            policy: "p".into(),
            resource: "pods".into(),
            namespace: "ns".into(),
            name: "x".into(),
            uid: String::new(),
            action: Action::Audit,
            source: Source::Audit,
            message: "m".into(),
            at_ms: 1,
        };
        let later = Finding {
            message: "other".into(),
            at_ms: 9,
            ..f.clone()
        };
        assert_eq!(violation_id("c", &f), violation_id("c", &later));
        assert_eq!(violation_id("c", &f).len(), 32);
        assert_ne!(violation_id("c", &f), violation_id("d", &f));
        let denied = Finding {
            action: Action::Deny,
            ..f.clone()
        };
        assert_ne!(violation_id("c", &f), violation_id("c", &denied));
    }
}
