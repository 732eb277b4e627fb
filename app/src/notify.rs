//! Notifications to people: approval requests, failed rollouts and deny spikes, posted to a
//! Slack-compatible webhook. Domain code only enqueues (`ssr::enqueue`, inside its own transaction);
//! the server's delivery worker sends.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    ApprovalRequested,
    RolloutFailed,
    DenySpike,
}

impl NoticeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::ApprovalRequested => "approval_requested",
            NoticeKind::RolloutFailed => "rollout_failed",
            NoticeKind::DenySpike => "deny_spike",
        }
    }
}

/// What to tell people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub kind: NoticeKind,
    pub title: String,
    pub text: String,
    /// A path in Palisade (`/rollouts/…`), made absolute with `http.public_url` when sent.
    pub link: Option<String>,
}

/// Names and messages as Slack shows them literally: `&`, `<` and `>` are its control characters
/// (`<!channel>` pings everyone, `<url|text>` disguises a link), so they are written as entities.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The webhook body: Slack's incoming-webhook shape, whose `text` alone carries the whole message
/// (for receivers that read nothing else), plus a block with the same words and the link.
pub fn slack_payload(notice: &Notice, public_url: &str) -> serde_json::Value {
    let link = notice.link.as_ref().map(|path| {
        let base = public_url.trim_end_matches('/');
        if base.is_empty() {
            path.clone()
        } else {
            format!("{base}{path}")
        }
    });
    let mut text = format!(
        "*{}*\n{}",
        slack_escape(&notice.title),
        slack_escape(&notice.text)
    );
    if let Some(link) = &link {
        text.push_str(&format!("\n<{link}>"));
    }
    serde_json::json!({
        "text": text,
        "blocks": [{ "type": "section", "text": { "type": "mrkdwn", "text": text } }],
        "palisade": { "kind": notice.kind.as_str(), "link": link },
    })
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use sqlx::{AnyConnection, Row};

    use super::{Notice, NoticeKind};
    use crate::db::{new_id, Db};

    /// Queue `notice`; it is sent once the surrounding transaction commits.
    pub async fn enqueue(
        conn: &mut AnyConnection,
        now_ms: i64,
        notice: &Notice,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO notifications (id, kind, title, text, link, created_ms, next_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(new_id())
        .bind(notice.kind.as_str())
        .bind(&notice.title)
        .bind(&notice.text)
        .bind(notice.link.clone().unwrap_or_default())
        .bind(now_ms)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// A claimed notice.
    #[derive(Debug, Clone)]
    pub struct Pending {
        pub id: String,
        pub claim: String,
        pub attempts: i64,
        pub notice: Notice,
    }

    /// Claims up to `limit` due notices for `lease_ms`.
    pub async fn claim_due(
        db: &Db,
        now_ms: i64,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<Pending>, sqlx::Error> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM notifications WHERE sent_ms = 0 AND failed_ms = 0 AND next_ms <= $1 \
             AND lease_ms <= $1 ORDER BY created_ms LIMIT $2",
        )
        .bind(now_ms)
        .bind(limit)
        .fetch_all(db.pool())
        .await?;
        let mut out = Vec::new();
        for id in ids {
            let claim = new_id();
            let won = sqlx::query(
                "UPDATE notifications SET claim = $1, lease_ms = $2, attempts = attempts + 1 \
                 WHERE id = $3 AND sent_ms = 0 AND failed_ms = 0 AND lease_ms <= $4",
            )
            .bind(&claim)
            .bind(now_ms + lease_ms)
            .bind(&id)
            .bind(now_ms)
            .execute(db.pool())
            .await?
            .rows_affected()
                == 1;
            if !won {
                continue;
            }
            let row = sqlx::query(
                "SELECT kind, title, text, link, attempts FROM notifications WHERE id = $1",
            )
            .bind(&id)
            .fetch_one(db.pool())
            .await?;
            let kind: String = row.try_get("kind")?;
            let link: String = row.try_get("link")?;
            out.push(Pending {
                id,
                claim,
                attempts: row.try_get("attempts")?,
                notice: Notice {
                    kind: match kind.as_str() {
                        "approval_requested" => NoticeKind::ApprovalRequested,
                        "rollout_failed" => NoticeKind::RolloutFailed,
                        _ => NoticeKind::DenySpike,
                    },
                    title: row.try_get("title")?,
                    text: row.try_get("text")?,
                    link: (!link.is_empty()).then_some(link),
                },
            });
        }
        Ok(out)
    }

    /// Delivered.
    pub async fn mark_sent(db: &Db, p: &Pending, now_ms: i64) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE notifications SET sent_ms = $1, lease_ms = 0, last_error = '' \
             WHERE id = $2 AND claim = $3",
        )
        .bind(now_ms)
        .bind(&p.id)
        .bind(&p.claim)
        .execute(db.pool())
        .await?;
        Ok(())
    }

    /// Not delivered: try again at `retry_at_ms`, or give up when `None`.
    pub async fn mark_failed(
        db: &Db,
        p: &Pending,
        now_ms: i64,
        error: &str,
        retry_at_ms: Option<i64>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE notifications SET lease_ms = 0, last_error = $1, next_ms = $2, failed_ms = $3 \
             WHERE id = $4 AND claim = $5",
        )
        .bind(error)
        .bind(retry_at_ms.unwrap_or(now_ms))
        .bind(if retry_at_ms.is_some() { 0 } else { now_ms })
        .bind(&p.id)
        .bind(&p.claim)
        .execute(db.pool())
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// A notice of a failed rollout, linking to `/rollouts/abc`.
    fn rollout_failed(title: &str, text: &str) -> Notice {
        Notice {
            kind: NoticeKind::RolloutFailed,
            title: title.into(),
            text: text.into(),
            link: Some("/rollouts/abc".into()),
        }
    }

    #[test]
    fn names_cannot_ping_everyone_or_disguise_links() {
        let notice = rollout_failed(
            "<!channel> & friends",
            "policy <https://evil.example|click here> failed",
        );
        let text = slack_payload(&notice, "https://palisade.example.com")["text"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(text.contains("&lt;!channel&gt; &amp; friends"), "{text}");
        assert!(
            text.contains("&lt;https://evil.example|click here&gt;"),
            "{text}"
        );
        assert!(
            !text.contains("<!channel>") && !text.contains("<https://evil"),
            "{text}"
        );
        assert!(
            text.ends_with("<https://palisade.example.com/rollouts/abc>"),
            "{text}"
        );
    }

    #[test]
    fn the_payload_is_slack_shaped_and_text_carries_everything() {
        let notice = rollout_failed(
            "Rollout failed",
            "disallow-privileged to enforce: prod-1 failed",
        );
        let body = slack_payload(&notice, "https://palisade.example.com/");
        let text = body["text"].as_str().unwrap();
        assert!(
            text.contains("Rollout failed") && text.contains("prod-1 failed"),
            "{text}"
        );
        assert!(
            text.contains("<https://palisade.example.com/rollouts/abc>"),
            "{text}"
        );
        assert_eq!(body["blocks"][0]["text"]["text"], text);
        assert_eq!(body["palisade"]["kind"], "rollout_failed");
        assert!(slack_payload(&notice, "")["text"]
            .as_str()
            .unwrap()
            .contains("</rollouts/abc>"));
    }
}
