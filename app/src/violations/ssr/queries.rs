//! Reading violations: the explorer's pages (keyset pagination, so page 1,000 costs what page 1
//! costs), its charts (from the hourly counts, never from the violations themselves) and counts for
//! promotion gates.

use std::collections::HashMap;

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
#[derive(Default, Clone)]
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

/// Series a chart draws by name; the rest are summed into "other".
const TOP_SERIES: usize = 6;

/// Daily counts over the last `days` days (1 to 90) per policy and per cluster. The filter's
/// cluster, policy and action apply; namespaces and sources are not in the rollup. Requests for
/// the same charts at the same time share one read (every visit to the explorer asks for them).
pub async fn charts(
    db: &Db,
    filter: &ViolationFilter,
    days: i64,
    now_ms: i64,
) -> ServerResult<Charts> {
    let days = days.clamp(1, 90);
    let key = format!(
        "violations.charts\u{1f}{days}\u{1f}{}\u{1f}{}\u{1f}{}",
        filter.cluster.trim(),
        filter.policy.trim(),
        filter.action.map_or("", Action::as_str)
    );
    let shared = db
        .shared()
        .read(key, || read_charts(db, filter, days, now_ms))
        .await?;
    Ok((*shared).clone())
}

/// The charts, read: each costs two small reads of the daily rollup, whatever the size of the
/// fleet: the top series by their total (with their names), then the days of those series with
/// everything else summed as one, so at most `days × 7` rows come back.
async fn read_charts(
    db: &Db,
    filter: &ViolationFilter,
    days: i64,
    now_ms: i64,
) -> ServerResult<Charts> {
    let first = now_ms - now_ms.rem_euclid(DAY_MS) - (days - 1) * DAY_MS;
    let mut c = Conditions::default();
    c.number("r.day_ms >= ?", first);
    c.number("r.day_ms < ?", first + days * DAY_MS);
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
    let buckets: Vec<i64> = (0..days).map(|d| first + d * DAY_MS).collect();
    let chart = |series| Chart {
        buckets: buckets.clone(),
        bucket_ms: DAY_MS,
        series,
    };
    Ok(Charts {
        by_policy: chart(chart_series(db, &c, "r.policy", "r.policy", "", first, days).await?),
        by_cluster: chart(
            chart_series(
                db,
                &c,
                "r.cluster_id",
                "COALESCE(k.name, r.cluster_id)",
                "LEFT JOIN clusters k ON k.id = r.cluster_id",
                first,
                days,
            )
            .await?,
        ),
    })
}

/// One chart's series: the `TOP_SERIES` keys (`key`, shown as `name`) with the most counts, most
/// first (ties by name), then "other" when there are more.
async fn chart_series(
    db: &Db,
    c: &Conditions,
    key: &str,
    name: &str,
    join: &str,
    first: i64,
    days: i64,
) -> ServerResult<Vec<Series>> {
    let top_sql = format!(
        "SELECT {key} AS series, {name} AS name, CAST(SUM(r.count) AS BIGINT) AS n \
         FROM violation_days r {join} {} GROUP BY {key}, {name} ORDER BY n DESC, name LIMIT {}",
        c.clause(),
        TOP_SERIES + 1
    );
    let mut top: Vec<(String, String, i64)> = Vec::new();
    for row in c.bind(sqlx::query(&top_sql)).fetch_all(db.pool()).await? {
        top.push((
            row.try_get("series")?,
            row.try_get("name")?,
            row.try_get("n")?,
        ));
    }
    let more = top.len() > TOP_SERIES;
    top.truncate(TOP_SERIES);
    // The order the reader sees, the same on every database (collations differ on ties).
    top.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.1.cmp(&b.1)));
    if top.is_empty() {
        return Ok(Vec::new());
    }
    let mut day_conditions = c.clone();
    let mut named = Vec::new();
    for (series, _, _) in &top {
        day_conditions.next += 1;
        named.push(format!("${}", day_conditions.next));
        day_conditions
            .text
            .push((day_conditions.next, series.clone()));
    }
    let bucket = format!("CASE WHEN {key} IN ({}) THEN {key} END", named.join(", "));
    let days_sql = format!(
        "SELECT (r.day_ms - {first}) / {DAY_MS} AS day, {bucket} AS series, \
         CAST(SUM(r.count) AS BIGINT) AS n FROM violation_days r {} GROUP BY day, series",
        c.clause()
    );
    let n = days as usize;
    let mut counts: HashMap<Option<String>, Vec<i64>> = HashMap::new();
    for row in day_conditions
        .bind(sqlx::query(&days_sql))
        .fetch_all(db.pool())
        .await?
    {
        let day: i64 = row.try_get("day")?;
        let series: Option<String> = row.try_get("series")?;
        let count: i64 = row.try_get("n")?;
        if let Some(day) = usize::try_from(day).ok().filter(|d| *d < n) {
            counts.entry(series).or_insert_with(|| vec![0; n])[day] += count;
        }
    }
    let mut out: Vec<Series> = top
        .into_iter()
        .map(|(series, name, _)| Series {
            name,
            counts: counts.remove(&Some(series)).unwrap_or_else(|| vec![0; n]),
        })
        .collect();
    if more {
        out.push(Series {
            name: "other".into(),
            counts: counts.remove(&None).unwrap_or_else(|| vec![0; n]),
        });
    }
    Ok(out)
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

    /// The charts as the whole rollup says they are: every series summed per day, the six with
    /// the most counts by name (most first, ties by name), the rest summed as "other".
    fn expected(
        rows: &[(i64, &str, &str, &str, i64)],
        names: &HashMap<&str, &str>,
        first: i64,
        days: usize,
        cluster_chart: bool,
    ) -> Vec<Series> {
        let mut totals: HashMap<String, Vec<i64>> = HashMap::new();
        for (day_ms, cluster, policy, _, count) in rows {
            let day = (day_ms - first) / DAY_MS;
            if day < 0 || day as usize >= days {
                continue;
            }
            let series = if cluster_chart {
                names.get(cluster).copied().unwrap_or(cluster).to_owned()
            } else {
                (*policy).to_owned()
            };
            totals.entry(series).or_insert_with(|| vec![0; days])[day as usize] += count;
        }
        let mut ranked: Vec<(String, Vec<i64>)> = totals.into_iter().collect();
        ranked.sort_by(|a, b| {
            let (sa, sb): (i64, i64) = (a.1.iter().sum(), b.1.iter().sum());
            sb.cmp(&sa).then_with(|| a.0.cmp(&b.0))
        });
        let mut out: Vec<Series> = Vec::new();
        let mut other: Option<Vec<i64>> = None;
        for (i, (name, counts)) in ranked.into_iter().enumerate() {
            if i < TOP_SERIES {
                out.push(Series { name, counts });
            } else {
                let sum = other.get_or_insert_with(|| vec![0; days]);
                for (s, c) in sum.iter_mut().zip(counts) {
                    *s += c;
                }
            }
        }
        if let Some(counts) = other {
            out.push(Series {
                name: "other".into(),
                counts,
            });
        }
        out
    }

    async fn charts_agree_with_the_whole_rollup(backend: crate::db::testing::Backend) {
        let db = crate::db::testing::database(backend).await;
        let now: i64 = 1_765_000_000_000 + 5 * 3_600_000;
        let days = 14usize;
        let first = now - now.rem_euclid(DAY_MS) - (days as i64 - 1) * DAY_MS;
        let clusters: Vec<(String, String)> = (0..11)
            .map(|i| (format!("id-{i:02}"), format!("cluster-{:02}", 10 - i)))
            .collect();
        for (id, name) in &clusters {
            sqlx::query(
                "INSERT INTO clusters (id, name, environment, api_url, credential_kind, \
                 credentials, created_ms, created_by, updated_ms) \
                 VALUES ($1, $2, 'dev', 'https://x', 'token', '', 0, 't', 0)",
            )
            .bind(id)
            .bind(name)
            .execute(db.pool())
            .await
            .unwrap();
        }
        let names: HashMap<&str, &str> = clusters
            .iter()
            .map(|(id, name)| (id.as_str(), name.as_str()))
            .collect();
        // Seeded rows: twelve clusters (one removed, so it shows by its id), nine policies,
        // two actions, days before, inside and after the window.
        let mut rows: Vec<(i64, &str, &str, &str, i64)> = Vec::new();
        let policies = [
            "p-a", "p-b", "p-c", "p-d", "p-e", "p-f", "p-g", "p-h", "p-i",
        ];
        let ids: Vec<&str> = clusters
            .iter()
            .map(|(id, _)| id.as_str())
            .chain(["gone"])
            .collect();
        let mut state = 0x5eed_u64;
        let mut next = |m: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            (state >> 33) % m
        };
        let mut seen = std::collections::HashSet::new();
        for _ in 0..400 {
            let day_ms = first + (next(17) as i64 - 2) * DAY_MS;
            let cluster = ids[next(ids.len() as u64) as usize];
            let policy = policies[next(policies.len() as u64) as usize];
            let action = ["audit", "deny"][next(2) as usize];
            if seen.insert((day_ms, cluster, policy, action)) {
                rows.push((day_ms, cluster, policy, action, 1 + next(50) as i64));
            }
        }
        for (day_ms, cluster, policy, action, count) in &rows {
            sqlx::query(
                "INSERT INTO violation_days (day_ms, cluster_id, policy, action, count) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(day_ms)
            .bind(*cluster)
            .bind(*policy)
            .bind(*action)
            .bind(count)
            .execute(db.pool())
            .await
            .unwrap();
        }
        // Both charts are what the seeded `rows` they count add up to.
        let agree = |got: &Charts, rows: &[(i64, &str, &str, &str, i64)]| {
            assert_eq!(
                got.by_policy.series,
                expected(rows, &names, first, days, false)
            );
            assert_eq!(
                got.by_cluster.series,
                expected(rows, &names, first, days, true)
            );
        };
        let got = charts(&db, &ViolationFilter::default(), days as i64, now)
            .await
            .unwrap();
        agree(&got, &rows);
        assert_eq!(got.by_cluster.series.len(), TOP_SERIES + 1);
        // A filter narrows both charts; one cluster has no "other".
        let one = ViolationFilter {
            cluster: "id-03".into(),
            action: Some(Action::Deny),
            ..ViolationFilter::default()
        };
        let kept: Vec<_> = rows
            .iter()
            .copied()
            .filter(|r| r.1 == "id-03" && r.3 == "deny")
            .collect();
        let got = charts(&db, &one, days as i64, now).await.unwrap();
        agree(&got, &kept);
        assert_eq!(got.by_cluster.series.len(), 1);
        // Nothing in the window: no series at all.
        let none = ViolationFilter {
            cluster: "no-such-cluster".into(),
            ..ViolationFilter::default()
        };
        let got = charts(&db, &none, days as i64, now).await.unwrap();
        assert!(got.by_policy.series.is_empty() && got.by_cluster.series.is_empty());
    }

    crate::db::testing::on_both_backends!(
        charts_agree_with_the_whole_rollup: sqlite_charts_agree_with_the_whole_rollup,
        postgres_charts_agree_with_the_whole_rollup
    );
}
