//! Reading violations: the explorer's pages (keyset pagination, so page 1,000 costs what page 1
//! costs), its charts (from the hourly counts, never from the violations themselves) and counts for
//! promotion gates.

use std::collections::{BTreeMap, HashMap};

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::db::cursor::{next_page, After};
use crate::db::Db;
use crate::error::{AppError, ServerResult};
use crate::violations::{
    Action, Chart, Charts, ClusterEvidence, Evidence, Series, Source, Violation, ViolationFilter,
    ViolationPage,
};

use crate::time::DAY_MS;

/// A WHERE clause built from the conditions a filter sets, with its parameters in order.
#[derive(Default)]
struct Conditions {
    sql: Vec<String>,
    text: Vec<(usize, String)>,
    numbers: Vec<(usize, i64)>,
    next: usize,
}

impl Conditions {
    fn text(&mut self, template: &str, value: &str) {
        self.next += 1;
        self.sql
            .push(template.replace('?', &format!("${}", self.next)));
        self.text.push((self.next, value.to_owned()));
    }

    fn number(&mut self, template: &str, value: i64) {
        self.next += 1;
        self.sql
            .push(template.replace('?', &format!("${}", self.next)));
        self.numbers.push((self.next, value));
    }

    fn clause(&self) -> String {
        if self.sql.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.sql.join(" AND "))
        }
    }

    fn bind<'q>(
        &'q self,
        mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        for i in 1..=self.next {
            if let Some((_, t)) = self.text.iter().find(|(n, _)| *n == i) {
                query = query.bind(t.as_str());
            } else if let Some((_, n)) = self.numbers.iter().find(|(n, _)| *n == i) {
                query = query.bind(*n);
            }
        }
        query
    }
}

fn conditions(filter: &ViolationFilter, alias: &str, now_ms: i64) -> Conditions {
    let mut c = Conditions::default();
    let col = |name: &str| format!("{alias}{name}");
    if !filter.cluster.trim().is_empty() {
        c.text(&format!("{} = ?", col("cluster_id")), filter.cluster.trim());
    }
    if !filter.namespace.trim().is_empty() {
        c.text(
            &format!("{} = ?", col("namespace")),
            filter.namespace.trim(),
        );
    }
    if !filter.policy.trim().is_empty() {
        // A Palisade policy id is 32 hex digits; anything else is a reported name.
        let policy = filter.policy.trim();
        if policy.len() == 32 && policy.bytes().all(|b| b.is_ascii_hexdigit()) {
            c.text(&format!("{} = ?", col("policy_id")), policy);
        } else {
            c.text(&format!("{} = ?", col("policy")), policy);
        }
    }
    if let Some(action) = filter.action {
        c.text(&format!("{} = ?", col("action")), action.as_str());
    }
    if let Some(source) = filter.source {
        c.text(&format!("{} = ?", col("source")), source.as_str());
    }
    let within = filter
        .within_days
        .map(|days| now_ms - days.clamp(1, 3650) * DAY_MS);
    if let Some(since) = filter.since_ms.max(within) {
        c.number(&format!("{} >= ?", col("last_ms")), since);
    }
    if let Some(until) = filter.until_ms {
        c.number(&format!("{} < ?", col("last_ms")), until);
    }
    if filter.open {
        c.sql.push(format!("{} = 0", col("resolved_ms")));
    }
    c
}

fn from_row(row: &AnyRow) -> Result<Violation, sqlx::Error> {
    let text = |name: &str| row.try_get::<String, _>(name);
    let action: String = text("action")?;
    let source: String = text("source")?;
    Ok(Violation {
        id: text("id")?,
        cluster_id: text("cluster_id")?,
        cluster_name: row
            .try_get::<Option<String>, _>("cluster_name")?
            .unwrap_or_default(),
        policy_id: text("policy_id")?,
        policy: text("policy")?,
        resource: text("resource")?,
        namespace: text("namespace")?,
        name: text("name")?,
        uid: text("uid")?,
        action: Action::decode(&action)?,
        source: Source::decode(&source)?,
        message: text("message")?,
        first_ms: row.try_get("first_ms")?,
        last_ms: row.try_get("last_ms")?,
        count: row.try_get("count")?,
        resolved_ms: row.try_get("resolved_ms")?,
    })
}

/// One page, most recently seen first. `limit` is capped at `max_limit`.
pub async fn page(
    db: &Db,
    filter: &ViolationFilter,
    max_limit: i64,
    now_ms: i64,
) -> ServerResult<ViolationPage> {
    let limit = filter.limit.unwrap_or(50).clamp(1, max_limit);
    let mut c = conditions(filter, "v.", now_ms);
    if let Some(after) = filter.after.as_deref().filter(|a| !a.is_empty()) {
        let after = After::parse("after", after)?;
        c.next += 1;
        let ms_param = c.next;
        c.numbers.push((ms_param, after.ms));
        c.next += 1;
        let id_param = c.next;
        c.text.push((id_param, after.id));
        c.sql
            .push(After::condition("v.last_ms", "v.id", ms_param, id_param));
    }
    let sql = format!(
        "SELECT v.id, v.cluster_id, c.name AS cluster_name, v.policy_id, v.policy, v.resource, \
         v.namespace, v.name, v.uid, v.action, v.source, v.message, v.first_ms, v.last_ms, \
         v.count, v.resolved_ms FROM violations v LEFT JOIN clusters c ON c.id = v.cluster_id \
         {} ORDER BY v.last_ms DESC, v.id DESC LIMIT {}",
        c.clause(),
        limit + 1
    );
    let rows = c.bind(sqlx::query(&sql)).fetch_all(db.pool()).await?;
    let mut items = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
    let next = next_page(&mut items, limit, |v| (v.last_ms, v.id.as_str()));
    Ok(ViolationPage { items, next })
}

/// The explorer's page size limit.
pub async fn list(db: &Db, filter: &ViolationFilter, now_ms: i64) -> ServerResult<ViolationPage> {
    page(db, filter, 500, now_ms).await
}

/// The `top` series with the most counts, the rest summed into "other".
fn top_series(mut totals: BTreeMap<String, Vec<i64>>, top: usize) -> Vec<Series> {
    let mut ranked: Vec<(String, Vec<i64>)> = std::mem::take(&mut totals).into_iter().collect();
    ranked.sort_by(|a, b| {
        let (sa, sb): (i64, i64) = (a.1.iter().sum(), b.1.iter().sum());
        sb.cmp(&sa).then_with(|| a.0.cmp(&b.0))
    });
    let mut series: Vec<Series> = Vec::new();
    let mut other: Option<Vec<i64>> = None;
    for (i, (name, counts)) in ranked.into_iter().enumerate() {
        if i < top {
            series.push(Series { name, counts });
        } else {
            let sum = other.get_or_insert_with(|| vec![0; counts.len()]);
            for (s, c) in sum.iter_mut().zip(counts) {
                *s += c;
            }
        }
    }
    if let Some(counts) = other {
        series.push(Series {
            name: "other".into(),
            counts,
        });
    }
    series
}

/// Daily counts over the last `days` days (1 to 90) per policy and per cluster. The filter's
/// cluster, policy and action apply; namespaces and sources are not in the rollup.
pub async fn charts(
    db: &Db,
    filter: &ViolationFilter,
    days: i64,
    now_ms: i64,
) -> ServerResult<Charts> {
    let days = days.clamp(1, 90);
    let first = now_ms - now_ms.rem_euclid(DAY_MS) - (days - 1) * DAY_MS;
    let mut c = Conditions::default();
    c.number("r.day_ms >= ?", first);
    if !filter.cluster.trim().is_empty() {
        c.text("r.cluster_id = ?", filter.cluster.trim());
    }
    if !filter.policy.trim().is_empty() {
        let policy = filter.policy.trim();
        if policy.len() == 32 && policy.bytes().all(|b| b.is_ascii_hexdigit()) {
            // A Palisade policy: the names it was reported under.
            c.sql.push(format!(
                "r.policy IN (SELECT DISTINCT policy FROM violation_counts WHERE policy_id = ${})",
                c.next + 1
            ));
            c.next += 1;
            c.text.push((c.next, policy.to_owned()));
        } else {
            c.text("r.policy = ?", policy);
        }
    }
    if let Some(action) = filter.action {
        c.text("r.action = ?", action.as_str());
    }
    // Two small aggregations of the daily rollup (no join), one per chart.
    let n = days as usize;
    let mut by_policy: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut by_cluster: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let names: HashMap<String, String> = sqlx::query("SELECT id, name FROM clusters")
        .fetch_all(db.pool())
        .await?
        .iter()
        .filter_map(|row| Some((row.try_get("id").ok()?, row.try_get("name").ok()?)))
        .collect();
    for (column, into) in [
        ("r.policy", &mut by_policy),
        ("r.cluster_id", &mut by_cluster),
    ] {
        let sql = format!(
            "SELECT (r.day_ms - {first}) / {DAY_MS} AS day, {column} AS series, \
             CAST(SUM(r.count) AS BIGINT) AS n FROM violation_days r {} \
             GROUP BY r.day_ms, {column}",
            c.clause()
        );
        let rows = c.bind(sqlx::query(&sql)).fetch_all(db.pool()).await?;
        for row in rows {
            let read = || -> Result<(i64, String, i64), sqlx::Error> {
                Ok((
                    row.try_get("day")?,
                    row.try_get("series")?,
                    row.try_get("n")?,
                ))
            };
            let (day, series, count) = read()?;
            let Ok(day) = usize::try_from(day) else {
                continue;
            };
            if day >= n {
                continue;
            }
            let series = if column == "r.cluster_id" {
                names.get(&series).cloned().unwrap_or(series)
            } else {
                series
            };
            into.entry(series).or_insert_with(|| vec![0; n])[day] += count;
        }
    }
    let buckets: Vec<i64> = (0..days).map(|d| first + d * DAY_MS).collect();
    let chart = |series| Chart {
        buckets: buckets.clone(),
        bucket_ms: DAY_MS,
        series,
    };
    Ok(Charts {
        by_policy: chart(top_series(by_policy, 6)),
        by_cluster: chart(top_series(by_cluster, 6)),
    })
}

/// Audited (or warned) violations of `policy_id` per cluster since `since_ms`, from the hourly
/// counts: the evidence a promotion rests on.
pub async fn counts_since(
    db: &Db,
    policy_id: &str,
    cluster_ids: &[String],
    since_ms: i64,
) -> ServerResult<HashMap<String, i64>> {
    let rows = sqlx::query(
        "SELECT cluster_id, CAST(SUM(count) AS BIGINT) AS n FROM violation_counts \
         WHERE policy_id = $1 AND bucket_ms >= $2 GROUP BY cluster_id",
    )
    .bind(policy_id)
    .bind(since_ms - since_ms.rem_euclid(super::store::HOUR_MS))
    .fetch_all(db.pool())
    .await?;
    let mut out: HashMap<String, i64> = cluster_ids.iter().map(|c| (c.clone(), 0)).collect();
    for row in rows {
        let cluster: String = row.try_get("cluster_id")?;
        let n: i64 = row.try_get("n")?;
        if let Some(slot) = out.get_mut(&cluster) {
            *slot = n;
        }
    }
    Ok(out)
}

/// The evidence for rollout `id`: its policy's violations on its clusters over the last `days`.
pub async fn evidence(db: &Db, id: &str, days: i64, now_ms: i64) -> ServerResult<Evidence> {
    let days = days.clamp(1, 90);
    let since_ms = now_ms - days * DAY_MS;
    let policy_id: String = sqlx::query_scalar("SELECT policy_id FROM rollouts WHERE id = $1")
        .bind(id)
        .fetch_optional(db.pool())
        .await?
        .ok_or_else(|| AppError::NotFound(format!("rollout {id}")))?;
    // A cluster removed since the rollout has no reports: it reads as never having reported.
    let steps = sqlx::query(
        "SELECT s.cluster_id, s.cluster_name, COALESCE(c.reporting_since_ms, 0) AS since_ms, \
         COALESCE(c.reported_ms, 0) AS last_ms FROM rollout_steps s \
         LEFT JOIN clusters c ON c.id = s.cluster_id WHERE s.rollout_id = $1 \
         ORDER BY s.wave, s.cluster_name",
    )
    .bind(id)
    .fetch_all(db.pool())
    .await?;
    let mut clusters = Vec::new();
    for row in steps {
        clusters.push(ClusterEvidence {
            cluster_id: row.try_get("cluster_id")?,
            cluster_name: row.try_get("cluster_name")?,
            violations: 0,
            reporting_since_ms: row.try_get("since_ms")?,
            reported_ms: row.try_get("last_ms")?,
        });
    }
    let ids: Vec<String> = clusters.iter().map(|c| c.cluster_id.clone()).collect();
    let counts = counts_since(db, &policy_id, &ids, since_ms).await?;
    let rows = sqlx::query(
        "SELECT v.id, v.cluster_id, c.name AS cluster_name, v.policy_id, v.policy, v.resource, \
         v.namespace, v.name, v.uid, v.action, v.source, v.message, v.first_ms, v.last_ms, \
         v.count, v.resolved_ms FROM violations v LEFT JOIN clusters c ON c.id = v.cluster_id \
         WHERE v.policy_id = $1 AND v.last_ms >= $2 ORDER BY v.last_ms DESC, v.id DESC LIMIT 500",
    )
    .bind(&policy_id)
    .bind(since_ms)
    .fetch_all(db.pool())
    .await?;
    let mut workloads = Vec::new();
    for row in &rows {
        let v = from_row(row)?;
        if ids.contains(&v.cluster_id) && workloads.len() < 50 {
            workloads.push(v);
        }
    }
    Ok(Evidence {
        policy_id,
        days,
        since_ms,
        clusters: clusters
            .into_iter()
            .map(|c| ClusterEvidence {
                violations: counts.get(&c.cluster_id).copied().unwrap_or(0),
                ..c
            })
            .collect(),
        workloads,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn filters_become_numbered_conditions() {
        let filter = ViolationFilter {
            cluster: "c1".into(),
            policy: "no-privileged".into(),
            action: Some(Action::Deny),
            since_ms: Some(5),
            open: true,
            ..ViolationFilter::default()
        };
        let c = conditions(&filter, "v.", 0);
        assert_eq!(
            c.clause(),
            "WHERE v.cluster_id = $1 AND v.policy = $2 AND v.action = $3 AND v.last_ms >= $4 AND v.resolved_ms = 0"
        );
        let by_id = ViolationFilter {
            policy: "0123456789abcdef0123456789abcdef".into(),
            ..ViolationFilter::default()
        };
        assert_eq!(conditions(&by_id, "", 0).clause(), "WHERE policy_id = $1");
        assert_eq!(conditions(&ViolationFilter::default(), "", 0).clause(), "");
    }

    #[test]
    fn small_series_fold_into_other() {
        let mut totals = BTreeMap::new();
        for (name, n) in [("a", 5), ("b", 1), ("c", 3), ("d", 1)] {
            totals.insert(name.to_owned(), vec![n, 0]);
        }
        let series = top_series(totals, 2);
        let names: Vec<_> = series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["a", "c", "other"]);
        assert_eq!(series[2].counts, [2, 0]);
    }
}
