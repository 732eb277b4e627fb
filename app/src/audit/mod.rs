//! The audit log: who did what, when, to what, and from where. Append-only: entries are inserted in
//! the same transaction as the change they describe and never updated or deleted.

use serde::{Deserialize, Serialize};

/// One recorded change, as the audit log page and its export show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct AuditEntry {
    pub id: String,
    /// Milliseconds since the epoch.
    pub at_ms: i64,
    /// The actor's stable user id.
    pub actor: String,
    /// The actor's display name at the time.
    pub actor_name: String,
    /// What was done, as `domain.verb`: `policy.create`, `rollout.approve`, `session.login`.
    pub action: String,
    /// What it was done to: `policy`, `rollout`, `cluster`, `token`, …
    pub target_kind: String,
    pub target_id: String,
    /// Details as JSON (never a secret).
    pub detail: String,
    /// The client address the request came from.
    pub from: String,
}

pub mod pages;

/// A filter over the audit log, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(default)]
pub struct AuditQuery {
    /// Only entries by this user id or display name.
    pub actor: Option<String>,
    /// Only entries whose action starts with this (`session.`, `token.create`).
    pub action: Option<String>,
    /// Only entries at or after this time (ms).
    pub since_ms: Option<i64>,
    /// Only entries before this time (ms).
    pub until_ms: Option<i64>,
    /// The `next` of the previous page; the first page without it.
    pub after: Option<String>,
    /// Entries per page (1 to 500; default 50).
    pub limit: Option<i64>,
}

/// One page of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// How many entries match the filter in all.
    pub total: i64,
    /// Pass as `after` for the next (older) page; `None` on the last one.
    pub next: Option<String>,
}

/// The most entries one export holds.
pub const EXPORT_LIMIT: i64 = 100_000;

/// One CSV field (RFC 4180 quoting). A leading `=`, `+`, `-` or `@` would be a formula in a
/// spreadsheet, and a leading tab or carriage return can hide one; such a field is prefixed with
/// `'` and stays text.
pub fn csv_field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// Entries as CSV (RFC 4180 quoting), with a header line.
pub fn to_csv(entries: &[AuditEntry]) -> String {
    use csv_field as field;
    let mut out =
        String::from("id,at_ms,actor,actor_name,action,target_kind,target_id,detail,from\r\n");
    for e in entries {
        let row = [
            field(&e.id),
            e.at_ms.to_string(),
            field(&e.actor),
            field(&e.actor_name),
            field(&e.action),
            field(&e.target_kind),
            field(&e.target_id),
            field(&e.detail),
            field(&e.from),
        ];
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    out
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use sqlx::{Any, Row};

    use super::{AuditEntry, AuditPage, AuditQuery};
    use crate::auth::Principal;
    use crate::db::cursor::{next_page, After};
    use crate::db::{new_id, Db};
    use crate::error::ServerResult;

    const FILTER: &str = "($1 = '' OR actor = $1 OR actor_name = $1) \
         AND ($2 = '' OR action LIKE $3 ESCAPE '!') AND at_ms >= $4 AND at_ms < $5";

    /// `text` as a LIKE prefix: its own `%`, `_` and `!` match themselves (`!` is the escape).
    fn like_prefix(text: &str) -> String {
        let mut escaped = String::with_capacity(text.len() + 1);
        for c in text.chars() {
            if matches!(c, '%' | '_' | '!') {
                escaped.push('!');
            }
            escaped.push(c);
        }
        escaped.push('%');
        escaped
    }

    /// Entries matching `query`, newest first, `limit` at most (capped at `max_limit`).
    pub async fn list(db: &Db, query: &AuditQuery, max_limit: i64) -> ServerResult<AuditPage> {
        let actor = query.actor.clone().unwrap_or_default();
        let action = query.action.clone().unwrap_or_default();
        let since = query.since_ms.unwrap_or(0);
        let until = query.until_ms.unwrap_or(i64::MAX);
        let limit = query.limit.unwrap_or(50).clamp(1, max_limit);
        let after = match query.after.as_deref().filter(|a| !a.is_empty()) {
            Some(text) => Some(After::parse("after", text)?),
            None => None,
        };
        let total: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM audit_entries WHERE {FILTER}"
        ))
        .bind(actor.trim())
        .bind(action.trim())
        .bind(like_prefix(action.trim()))
        .bind(since)
        .bind(until)
        .fetch_one(db.pool())
        .await?;
        // The first page starts after the end of time: every entry is older than that.
        let after = after.unwrap_or(After {
            ms: i64::MAX,
            id: String::new(),
        });
        let after_clause = After::condition("at_ms", "id", 7, 8);
        let rows = sqlx::query(&format!(
            "SELECT id, at_ms, actor, actor_name, action, target_kind, target_id, detail, remote_addr \
             FROM audit_entries WHERE {FILTER} AND {after_clause} \
             ORDER BY at_ms DESC, id DESC LIMIT $6"
        ))
        .bind(actor.trim())
        .bind(action.trim())
        .bind(like_prefix(action.trim()))
        .bind(since)
        .bind(until)
        .bind(limit + 1)
        .bind(after.ms)
        .bind(after.id)
        .fetch_all(db.pool())
        .await?;
        let mut entries: Vec<AuditEntry> = rows
            .iter()
            .map(|row| {
                Ok(AuditEntry {
                    id: row.try_get("id")?,
                    at_ms: row.try_get("at_ms")?,
                    actor: row.try_get("actor")?,
                    actor_name: row.try_get("actor_name")?,
                    action: row.try_get("action")?,
                    target_kind: row.try_get("target_kind")?,
                    target_id: row.try_get("target_id")?,
                    detail: row.try_get("detail")?,
                    from: row.try_get("remote_addr")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        let next = next_page(&mut entries, limit, |e| (e.at_ms, e.id.as_str()));
        Ok(AuditPage {
            entries,
            total,
            next,
        })
    }

    /// What happened, for [`Event::record`].
    #[derive(Debug, Clone)]
    pub struct Event<'a> {
        pub action: &'a str,
        pub target_kind: &'a str,
        pub target_id: &'a str,
        /// Details as JSON; never a secret.
        pub detail: serde_json::Value,
    }

    impl<'a> Event<'a> {
        /// `action` on the `target_kind` named `target_id`, with no details yet.
        pub fn new(action: &'a str, target_kind: &'a str, target_id: &'a str) -> Self {
            Event {
                action,
                target_kind,
                target_id,
                detail: serde_json::json!({}),
            }
        }

        /// The same event with these details (as JSON; never a secret).
        pub fn detail(self, detail: serde_json::Value) -> Self {
            Event { detail, ..self }
        }

        /// Append this event as one entry: `who` did it at `at_ms`. Pass the transaction of the
        /// change itself, so the change and its record commit together or not at all.
        pub async fn record<'e, E>(
            self,
            executor: E,
            who: &Principal,
            at_ms: i64,
        ) -> Result<(), sqlx::Error>
        where
            E: sqlx::Executor<'e, Database = Any>,
        {
            sqlx::query(
                "INSERT INTO audit_entries \
                 (id, at_ms, actor, actor_name, action, target_kind, target_id, detail, remote_addr) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(new_id())
            .bind(at_ms)
            .bind(&who.user_id)
            .bind(&who.display_name)
            .bind(self.action)
            .bind(self.target_kind)
            .bind(self.target_id)
            .bind(self.detail.to_string())
            .bind(&who.from)
            .execute(executor)
            .await?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod csv_tests {
    use super::csv_field;

    #[test]
    fn fields_that_a_spreadsheet_would_run_stay_text() {
        for (text, field) in [
            ("plain", "plain"),
            ("=1+2", "'=1+2"),
            ("+cmd", "'+cmd"),
            ("-2", "'-2"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1+2", "'\t=1+2"),
            ("\r=1+2", "\"'\r=1+2\""),
            ("a,b", "\"a,b\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
        ] {
            assert_eq!(csv_field(text), field, "{text:?}");
        }
    }
}
