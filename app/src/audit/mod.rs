//! The audit log: who did what, when, to what, and from where. Append-only: entries are inserted in
//! the same transaction as the change they describe and never updated or deleted.

use serde::{Deserialize, Serialize};

/// One recorded change, as the audit log page and its export show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

#[cfg(feature = "ssr")]
pub mod ssr {
    use sqlx::Any;

    use crate::auth::Principal;
    use crate::db::new_id;

    /// What happened, for [`record`].
    #[derive(Debug, Clone)]
    pub struct Event<'a> {
        pub action: &'a str,
        pub target_kind: &'a str,
        pub target_id: &'a str,
        /// Details as JSON; never a secret.
        pub detail: serde_json::Value,
    }

    /// Append one entry. Pass the transaction of the change itself, so the change and its record
    /// commit together or not at all.
    pub async fn record<'e, E>(
        executor: E,
        who: &Principal,
        at_ms: i64,
        event: Event<'_>,
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
        .bind(event.action)
        .bind(event.target_kind)
        .bind(event.target_id)
        .bind(event.detail.to_string())
        .bind(&who.from)
        .execute(executor)
        .await?;
        Ok(())
    }
}
