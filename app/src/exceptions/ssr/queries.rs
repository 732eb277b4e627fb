//! Every SQL statement of exceptions. Each takes an executor, so the service runs them inside its
//! transactions. Decisions are compare-and-set updates (`WHERE state = $old`).

use std::collections::BTreeMap;

use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Row};

use crate::exceptions::{Exception, ExceptionState, Scope};

/// Every column of an exception with its policy's name, for a `WHERE` to follow.
const SELECT: &str = "SELECT e.id, e.policy_id, p.name AS policy_name, e.scope_kind, \
     e.namespaces, e.labels, e.resource_kind, e.resource_ns, e.resource_name, e.justification, \
     e.ticket, e.expires_ms, e.state, e.requester_id, e.requester_name, e.decider_id, \
     e.decider_name, e.decision_comment, e.decided_ms, e.created_ms, e.updated_ms \
     FROM policy_exceptions e JOIN policies p ON p.id = e.policy_id";

fn decode_error(what: &str, text: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("unreadable {what} `{text}`").into())
}

/// A row as stored; `state` is the stored one (expiry is derived by the caller).
fn exception(row: &AnyRow) -> Result<Exception, sqlx::Error> {
    let kind: String = row.try_get("scope_kind")?;
    let scope = match kind.as_str() {
        "namespaces" => {
            let text: String = row.try_get("namespaces")?;
            Scope::Namespaces {
                namespaces: serde_json::from_str(&text)
                    .map_err(|_| decode_error("namespaces", &text))?,
            }
        }
        "selector" => {
            let text: String = row.try_get("labels")?;
            Scope::Selector {
                labels: serde_json::from_str::<BTreeMap<String, String>>(&text)
                    .map_err(|_| decode_error("labels", &text))?,
            }
        }
        "resource" => Scope::Resource {
            resource_kind: row.try_get("resource_kind")?,
            namespace: row.try_get("resource_ns")?,
            name: row.try_get("resource_name")?,
        },
        other => return Err(decode_error("scope kind", other)),
    };
    let state: String = row.try_get("state")?;
    Ok(Exception {
        id: row.try_get("id")?,
        policy_id: row.try_get("policy_id")?,
        policy_name: row.try_get("policy_name")?,
        scope,
        justification: row.try_get("justification")?,
        ticket: row.try_get("ticket")?,
        expires_ms: row.try_get("expires_ms")?,
        state: ExceptionState::decode(&state)?,
        requester_id: row.try_get("requester_id")?,
        requester_name: row.try_get("requester_name")?,
        decider_id: row.try_get("decider_id")?,
        decider_name: row.try_get("decider_name")?,
        decision_comment: row.try_get("decision_comment")?,
        decided_ms: row.try_get("decided_ms")?,
        created_ms: row.try_get("created_ms")?,
        updated_ms: row.try_get("updated_ms")?,
    })
}

pub async fn list<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    policy_id: Option<&str>,
) -> Result<Vec<Exception>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "{SELECT} WHERE ($1 = '' OR e.policy_id = $1) ORDER BY e.created_ms DESC, e.id LIMIT 1000"
    ))
    .bind(policy_id.unwrap_or_default())
    .fetch_all(executor)
    .await?;
    rows.iter().map(exception).collect()
}

pub async fn get<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    id: &str,
) -> Result<Option<Exception>, sqlx::Error> {
    let row = sqlx::query(&format!("{SELECT} WHERE e.id = $1"))
        .bind(id)
        .fetch_optional(executor)
        .await?;
    row.as_ref().map(exception).transpose()
}

pub async fn active_for<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    policy_id: &str,
    now_ms: i64,
) -> Result<Vec<Exception>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "{SELECT} WHERE e.policy_id = $1 AND e.state = 'approved' AND e.expires_ms > $2 \
         ORDER BY e.created_ms, e.id"
    ))
    .bind(policy_id)
    .bind(now_ms)
    .fetch_all(executor)
    .await?;
    rows.iter().map(exception).collect()
}

pub async fn insert<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    e: &Exception,
) -> Result<(), sqlx::Error> {
    let (namespaces, labels, kind, ns, name) = match &e.scope {
        Scope::Namespaces { namespaces } => (
            serde_json::to_string(namespaces).unwrap_or_default(),
            String::new(),
            "",
            "",
            "",
        ),
        Scope::Selector { labels } => (
            String::new(),
            serde_json::to_string(labels).unwrap_or_default(),
            "",
            "",
            "",
        ),
        Scope::Resource {
            resource_kind,
            namespace,
            name,
        } => (
            String::new(),
            String::new(),
            resource_kind.as_str(),
            namespace.as_str(),
            name.as_str(),
        ),
    };
    sqlx::query(
        "INSERT INTO policy_exceptions (id, policy_id, scope_kind, namespaces, labels, \
         resource_kind, resource_ns, resource_name, justification, ticket, expires_ms, state, \
         requester_id, requester_name, created_ms, updated_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(&e.id)
    .bind(&e.policy_id)
    .bind(e.scope.kind())
    .bind(namespaces)
    .bind(labels)
    .bind(kind)
    .bind(ns)
    .bind(name)
    .bind(&e.justification)
    .bind(&e.ticket)
    .bind(e.expires_ms)
    .bind(e.state.as_str())
    .bind(&e.requester_id)
    .bind(&e.requester_name)
    .bind(e.created_ms)
    .bind(e.updated_ms)
    .execute(executor)
    .await?;
    Ok(())
}

/// Move an exception from `from` to `to`, recording who and why; false when it was not in `from`
/// any more (someone else got there first).
pub async fn transition<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    id: &str,
    from: ExceptionState,
    to: ExceptionState,
    who: (&str, &str),
    comment: &str,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE policy_exceptions SET state = $1, decider_id = $2, decider_name = $3, \
         decision_comment = $4, decided_ms = $5, updated_ms = $5 WHERE id = $6 AND state = $7",
    )
    .bind(to.as_str())
    .bind(who.0)
    .bind(who.1)
    .bind(comment)
    .bind(now_ms)
    .bind(id)
    .bind(from.as_str())
    .execute(executor)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The exclusions a rollout rendered, as JSON.
pub async fn save_rollout_exclusions<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    rollout_id: &str,
    exclusions: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO rollout_exclusions (rollout_id, exclusions) VALUES ($1, $2)")
        .bind(rollout_id)
        .bind(exclusions)
        .execute(executor)
        .await?;
    Ok(())
}

pub async fn rollout_exclusions<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    rollout_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT exclusions FROM rollout_exclusions WHERE rollout_id = $1")
        .bind(rollout_id)
        .fetch_optional(executor)
        .await
}

/// Requested or approved exceptions whose expiry has passed at `now_ms`, with their stored state.
pub async fn due_to_expire<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    now_ms: i64,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, state FROM policy_exceptions \
         WHERE state IN ('requested', 'approved') AND expires_ms <= $1 ORDER BY expires_ms LIMIT 500",
    )
    .bind(now_ms)
    .fetch_all(executor)
    .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("id")?, row.try_get("state")?)))
        .collect()
}

/// Record that an exception expired (keeping who decided it); false when it changed meanwhile.
pub async fn mark_expired<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    id: &str,
    from: &str,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE policy_exceptions SET state = 'expired', updated_ms = $1 WHERE id = $2 AND state = $3",
    )
    .bind(now_ms)
    .bind(id)
    .bind(from)
    .execute(executor)
    .await?;
    Ok(done.rows_affected() == 1)
}
