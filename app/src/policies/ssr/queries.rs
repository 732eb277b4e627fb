//! Every SQL statement of the policies domain. Each takes an executor (the pool, or a transaction
//! through `&mut *tx`), so the service decides what runs inside a transaction.

use std::collections::HashMap;

use sqlx::{Any, AnyConnection, Executor, FromRow};

use super::validate::Ran;
use crate::auth::Principal;
use crate::db::json_column;
use crate::policies::{
    CaseResult, CaseStatus, Content, Engine, EnvironmentMode, Expect, LiveMode, Mode, PolicyFilter,
    PolicySummary, RunSummary, TestCase, TestRun, Version, VersionInfo,
};

const POLICY_COLUMNS: &str = "p.id, p.name, p.title, p.engine, p.category, p.origin, \
     p.current_version, p.created_ms, p.updated_ms, v.id AS version_id, v.controls, v.tests";

/// A policy joined with its current version's tags and cases.
#[derive(Debug, Clone, FromRow)]
pub struct PolicyRow {
    pub id: String,
    pub name: String,
    pub title: String,
    pub engine: Engine,
    pub category: String,
    pub origin: String,
    pub current_version: i64,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub version_id: String,
    pub controls: String,
    pub tests: String,
}

impl PolicyRow {
    pub fn into_summary(
        self,
        modes: Vec<EnvironmentMode>,
        live: Vec<LiveMode>,
        last_run: Option<RunSummary>,
    ) -> Result<PolicySummary, sqlx::Error> {
        let engine = self.engine;
        let tests: Vec<TestCase> = json_column("tests", &self.tests)?;
        Ok(PolicySummary {
            id: self.id,
            name: self.name,
            title: self.title,
            engine,
            category: self.category,
            origin: self.origin,
            current_version: self.current_version,
            created_ms: self.created_ms,
            updated_ms: self.updated_ms,
            controls: json_column("controls", &self.controls)?,
            test_count: tests.len(),
            last_run,
            modes,
            live,
        })
    }
}

/// `%text%` for LIKE, with LIKE's own wildcards escaped (`ESCAPE '\'`).
fn like_pattern(text: &str) -> String {
    let mut pattern = String::from("%");
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

pub async fn list_policies<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    filter: &PolicyFilter,
) -> Result<Vec<PolicyRow>, sqlx::Error> {
    let mut sql = format!(
        "SELECT {POLICY_COLUMNS} FROM policies p \
         JOIN policy_versions v ON v.policy_id = p.id AND v.number = p.current_version WHERE 1 = 1"
    );
    let mut binds: Vec<String> = Vec::new();
    let next = |binds: &mut Vec<String>, value: String| {
        binds.push(value);
        format!("${}", binds.len())
    };
    let q = filter.q.trim().to_lowercase();
    if !q.is_empty() {
        let p = next(&mut binds, like_pattern(&q));
        sql.push_str(&format!(
            " AND (LOWER(p.name) LIKE {p} ESCAPE '\\' OR LOWER(p.title) LIKE {p} ESCAPE '\\' \
             OR LOWER(v.description) LIKE {p} ESCAPE '\\')"
        ));
    }
    if !filter.engine.is_empty() {
        let p = next(&mut binds, filter.engine.clone());
        sql.push_str(&format!(" AND p.engine = {p}"));
    }
    if !filter.category.is_empty() {
        let p = next(&mut binds, filter.category.clone());
        sql.push_str(&format!(" AND p.category = {p}"));
    }
    if !filter.framework.is_empty() {
        let p = next(
            &mut binds,
            like_pattern(&format!("\"{}:", filter.framework)),
        );
        sql.push_str(&format!(" AND v.controls LIKE {p} ESCAPE '\\'"));
    }
    // The mode filter is about what is live (deployments), not what is intended.
    match filter.mode.as_str() {
        "" => {}
        "none" => {
            sql.push_str(" AND NOT EXISTS (SELECT 1 FROM deployments d WHERE d.policy_id = p.id)")
        }
        mode => {
            let p = next(&mut binds, mode.to_owned());
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM deployments d WHERE d.policy_id = p.id AND d.mode = {p})"
            ));
        }
    }
    sql.push_str(" ORDER BY p.name");
    let mut query = sqlx::query_as::<_, PolicyRow>(&sql);
    for value in binds {
        query = query.bind(value);
    }
    query.fetch_all(executor).await
}

/// Per policy, how many clusters run it in each mode, strictest mode first; `policy_id` narrows it
/// to one policy.
pub async fn live_modes<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    policy_id: Option<&str>,
) -> Result<HashMap<String, Vec<LiveMode>>, sqlx::Error> {
    let rows: Vec<(String, Mode, i64)> = sqlx::query_as(
        "SELECT policy_id, mode, COUNT(*) FROM deployments WHERE $1 = '' OR policy_id = $1 \
         GROUP BY policy_id, mode",
    )
    .bind(policy_id.unwrap_or_default())
    .fetch_all(executor)
    .await?;
    let mut out: HashMap<String, Vec<LiveMode>> = HashMap::new();
    for (policy_id, mode, clusters) in rows {
        out.entry(policy_id)
            .or_default()
            .push(LiveMode { mode, clusters });
    }
    for live in out.values_mut() {
        live.sort_by_key(|l| std::cmp::Reverse(l.mode));
    }
    Ok(out)
}

/// The policy whose id, or else name, is `key`.
pub async fn find_policy<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    key: &str,
) -> Result<Option<PolicyRow>, sqlx::Error> {
    sqlx::query_as::<_, PolicyRow>(&format!(
        "SELECT {POLICY_COLUMNS} FROM policies p \
         JOIN policy_versions v ON v.policy_id = p.id AND v.number = p.current_version \
         WHERE p.id = $1 OR p.name = $1 ORDER BY CASE WHEN p.id = $1 THEN 0 ELSE 1 END"
    ))
    .bind(key)
    .fetch_optional(executor)
    .await
}

#[derive(Debug, Clone, FromRow)]
pub struct ModeRow {
    pub policy_id: String,
    pub environment: String,
    pub mode: Mode,
    pub updated_ms: i64,
    pub updated_by_name: String,
}

const MODE_COLUMNS: &str = "policy_id, environment, mode, updated_ms, updated_by_name";

pub async fn all_modes<'e, E: Executor<'e, Database = Any>>(
    executor: E,
) -> Result<Vec<ModeRow>, sqlx::Error> {
    sqlx::query_as::<_, ModeRow>(&format!(
        "SELECT {MODE_COLUMNS} FROM policy_modes ORDER BY environment"
    ))
    .fetch_all(executor)
    .await
}

pub async fn modes_of_policy<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    policy_id: &str,
) -> Result<Vec<ModeRow>, sqlx::Error> {
    sqlx::query_as::<_, ModeRow>(&format!(
        "SELECT {MODE_COLUMNS} FROM policy_modes WHERE policy_id = $1 ORDER BY environment"
    ))
    .bind(policy_id)
    .fetch_all(executor)
    .await
}

pub async fn mode_of<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    policy_id: &str,
    environment: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT mode FROM policy_modes WHERE policy_id = $1 AND environment = $2")
        .bind(policy_id)
        .bind(environment)
        .fetch_optional(executor)
        .await
}

pub async fn set_mode(
    conn: &mut AnyConnection,
    policy_id: &str,
    environment: &str,
    mode: Option<Mode>,
    who: &Principal,
    now: i64,
) -> Result<(), sqlx::Error> {
    match mode {
        None => {
            sqlx::query("DELETE FROM policy_modes WHERE policy_id = $1 AND environment = $2")
                .bind(policy_id)
                .bind(environment)
                .execute(&mut *conn)
                .await?;
        }
        Some(mode) => {
            sqlx::query(
                "INSERT INTO policy_modes (policy_id, environment, mode, updated_ms, updated_by_name) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (policy_id, environment) DO UPDATE SET mode = excluded.mode, \
                 updated_ms = excluded.updated_ms, updated_by_name = excluded.updated_by_name",
            )
            .bind(policy_id)
            .bind(environment)
            .bind(mode.as_str())
            .bind(now)
            .bind(&who.display_name)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

pub struct NewPolicyRow<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub title: &'a str,
    pub engine: Engine,
    pub category: &'a str,
    pub origin: &'a str,
    pub now: i64,
}

pub async fn insert_policy<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    row: &NewPolicyRow<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO policies \
         (id, name, title, engine, category, origin, created_ms, updated_ms, current_version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7, 1)",
    )
    .bind(row.id)
    .bind(row.name)
    .bind(row.title)
    .bind(row.engine.as_str())
    .bind(row.category)
    .bind(row.origin)
    .bind(row.now)
    .execute(executor)
    .await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub async fn insert_version<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    policy_id: &str,
    number: i64,
    content: &Content,
    note: &str,
    who: &Principal,
    now: i64,
    hash: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO policy_versions (id, policy_id, number, source, params, description, \
         remediation, controls, tests, note, author_id, author_name, created_ms, content_hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(crate::db::new_id())
    .bind(policy_id)
    .bind(number)
    .bind(&content.source)
    .bind(&content.params)
    .bind(&content.description)
    .bind(&content.remediation)
    .bind(to_json(&content.controls))
    .bind(to_json(&content.tests))
    .bind(note)
    .bind(&who.user_id)
    .bind(&who.display_name)
    .bind(now)
    .bind(hash)
    .execute(executor)
    .await?;
    Ok(())
}

/// JSON text of our own types, which always serialize.
fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "[]".to_owned())
}

/// Move the policy from version `from` to `to`; false when it is no longer at `from`.
pub async fn advance_policy<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    policy_id: &str,
    from: i64,
    to: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "UPDATE policies SET current_version = $1, updated_ms = $2 \
         WHERE id = $3 AND current_version = $4",
    )
    .bind(to)
    .bind(now)
    .bind(policy_id)
    .bind(from)
    .execute(executor)
    .await?;
    Ok(result.rows_affected() == 1)
}

#[derive(Debug, Clone, FromRow)]
struct VersionRow {
    number: i64,
    source: String,
    params: String,
    description: String,
    remediation: String,
    controls: String,
    tests: String,
    note: String,
    author_id: String,
    author_name: String,
    created_ms: i64,
    content_hash: String,
}

pub async fn version<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    policy_id: &str,
    number: i64,
) -> Result<Option<Version>, sqlx::Error> {
    let row = sqlx::query_as::<_, VersionRow>(
        "SELECT number, source, params, description, remediation, controls, tests, note, \
         author_id, author_name, created_ms, content_hash \
         FROM policy_versions WHERE policy_id = $1 AND number = $2",
    )
    .bind(policy_id)
    .bind(number)
    .fetch_optional(executor)
    .await?;
    row.map(|row| {
        Ok(Version {
            number: row.number,
            content: Content {
                source: row.source,
                params: row.params,
                description: row.description,
                remediation: row.remediation,
                controls: json_column("controls", &row.controls)?,
                tests: json_column("tests", &row.tests)?,
            },
            note: row.note,
            author_id: row.author_id,
            author_name: row.author_name,
            created_ms: row.created_ms,
            content_hash: row.content_hash,
        })
    })
    .transpose()
}

pub async fn version_id<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    policy_id: &str,
    number: i64,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM policy_versions WHERE policy_id = $1 AND number = $2")
        .bind(policy_id)
        .bind(number)
        .fetch_optional(executor)
        .await
}

#[derive(Debug, Clone, FromRow)]
struct RunRow {
    id: String,
    version_id: String,
    number: i64,
    run_ms: i64,
    run_by_name: String,
    passed: i64,
    failed: i64,
    skipped: i64,
    duration_us: i64,
    error: String,
}

impl RunRow {
    fn summary(&self) -> RunSummary {
        let count = |n: i64| usize::try_from(n).unwrap_or(0);
        RunSummary {
            version: self.number,
            run_ms: self.run_ms,
            passed: count(self.passed),
            failed: count(self.failed),
            skipped: count(self.skipped),
            duration_us: self.duration_us,
        }
    }
}

const RUN_COLUMNS: &str = "r.id, r.version_id, v.number, r.run_ms, r.run_by_name, r.passed, \
     r.failed, r.skipped, r.duration_us, r.error";

/// The newest run of every policy's current version, by version id.
pub async fn latest_runs_of_current_versions<'e, E: Executor<'e, Database = Any>>(
    executor: E,
) -> Result<HashMap<String, RunSummary>, sqlx::Error> {
    let rows = sqlx::query_as::<_, RunRow>(&format!(
        "SELECT {RUN_COLUMNS} FROM policy_test_runs r \
         JOIN policy_versions v ON v.id = r.version_id \
         JOIN policies p ON p.id = v.policy_id AND p.current_version = v.number \
         ORDER BY r.run_ms, r.id"
    ))
    .fetch_all(executor)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| (row.version_id.clone(), row.summary()))
        .collect())
}

/// Every version of a policy, newest first, each with its newest run.
pub async fn version_infos(
    pool: &sqlx::AnyPool,
    policy_id: &str,
) -> Result<Vec<VersionInfo>, sqlx::Error> {
    let rows: Vec<(String, i64, String, String, i64, String, String)> = sqlx::query_as(
        "SELECT id, number, note, author_name, created_ms, content_hash, tests \
         FROM policy_versions WHERE policy_id = $1 ORDER BY number DESC",
    )
    .bind(policy_id)
    .fetch_all(pool)
    .await?;
    let runs = sqlx::query_as::<_, RunRow>(&format!(
        "SELECT {RUN_COLUMNS} FROM policy_test_runs r \
         JOIN policy_versions v ON v.id = r.version_id WHERE v.policy_id = $1 \
         ORDER BY r.run_ms, r.id"
    ))
    .bind(policy_id)
    .fetch_all(pool)
    .await?;
    let latest: HashMap<String, RunSummary> = runs
        .into_iter()
        .map(|row| (row.version_id.clone(), row.summary()))
        .collect();
    Ok(rows
        .into_iter()
        .map(
            |(id, number, note, author_name, created_ms, content_hash, tests)| VersionInfo {
                number,
                note,
                author_name,
                created_ms,
                content_hash,
                test_count: serde_json::from_str::<Vec<TestCase>>(&tests).map_or(0, |t| t.len()),
                last_run: latest.get(&id).cloned(),
            },
        )
        .collect())
}

/// A finished run, ready to store.
pub struct NewRun<'a> {
    pub id: String,
    pub version_id: String,
    pub number: i64,
    pub now: i64,
    pub who: &'a Principal,
    pub ran: Ran,
}

impl NewRun<'_> {
    fn count(&self, status: CaseStatus) -> usize {
        self.ran
            .results
            .iter()
            .filter(|r| r.status == status)
            .count()
    }

    pub fn into_test_run(self) -> TestRun {
        let summary = RunSummary {
            version: self.number,
            run_ms: self.now,
            passed: self.count(CaseStatus::Passed),
            failed: self.count(CaseStatus::Failed),
            skipped: self.count(CaseStatus::Skipped),
            duration_us: self.ran.duration_us,
        };
        TestRun {
            id: self.id,
            summary,
            run_by_name: self.who.display_name.clone(),
            error: self.ran.error,
            results: self.ran.results,
        }
    }
}

pub async fn insert_run(conn: &mut AnyConnection, run: &NewRun<'_>) -> Result<(), sqlx::Error> {
    let count = |status| i64::try_from(run.count(status)).unwrap_or(i64::MAX);
    sqlx::query(
        "INSERT INTO policy_test_runs (id, version_id, run_ms, run_by, run_by_name, passed, \
         failed, skipped, duration_us, error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&run.id)
    .bind(&run.version_id)
    .bind(run.now)
    .bind(&run.who.user_id)
    .bind(&run.who.display_name)
    .bind(count(CaseStatus::Passed))
    .bind(count(CaseStatus::Failed))
    .bind(count(CaseStatus::Skipped))
    .bind(run.ran.duration_us)
    .bind(run.ran.error.clone().unwrap_or_default())
    .execute(&mut *conn)
    .await?;
    for (position, result) in run.ran.results.iter().enumerate() {
        sqlx::query(
            "INSERT INTO policy_test_results (run_id, position, name, expected, actual, status, \
             reason, messages) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&run.id)
        .bind(i64::try_from(position).unwrap_or(i64::MAX))
        .bind(&result.name)
        .bind(result.expected.as_str())
        .bind(result.actual.clone().unwrap_or_default())
        .bind(result.status.as_str())
        .bind(&result.reason)
        .bind(serde_json::to_string(&result.messages).unwrap_or_else(|_| "[]".into()))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The newest run of version `number` of the policy, with its per-case results.
pub async fn latest_run(
    pool: &sqlx::AnyPool,
    policy_id: &str,
    number: i64,
) -> Result<Option<TestRun>, sqlx::Error> {
    let Some(row) = sqlx::query_as::<_, RunRow>(&format!(
        "SELECT {RUN_COLUMNS} FROM policy_test_runs r \
         JOIN policy_versions v ON v.id = r.version_id \
         WHERE v.policy_id = $1 AND v.number = $2 ORDER BY r.run_ms DESC, r.id DESC"
    ))
    .bind(policy_id)
    .bind(number)
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let results: Vec<(String, String, String, String, String, String)> = sqlx::query_as(
        "SELECT name, expected, actual, status, reason, messages FROM policy_test_results \
         WHERE run_id = $1 ORDER BY position",
    )
    .bind(&row.id)
    .fetch_all(pool)
    .await?;
    Ok(Some(TestRun {
        id: row.id.clone(),
        summary: row.summary(),
        run_by_name: row.run_by_name.clone(),
        error: Some(row.error.clone()).filter(|e| !e.is_empty()),
        results: results
            .into_iter()
            .map(|(name, expected, actual, status, reason, messages)| {
                Ok(CaseResult {
                    name,
                    expected: Expect::decode(&expected)?,
                    actual: Some(actual).filter(|a| !a.is_empty()),
                    status: CaseStatus::decode(&status)?,
                    reason,
                    messages: json_column("messages", &messages)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?,
    }))
}

/// (origin, policy id) of every policy adopted from the library.
pub async fn adopted<'e, E: Executor<'e, Database = Any>>(
    executor: E,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as("SELECT origin, id FROM policies WHERE origin LIKE 'library:%'")
        .fetch_all(executor)
        .await
}
