//! Delivering queued notices to `notifications.webhook_url` (Slack-compatible JSON), with retries.
//! The URL is a secret (for Slack it is the credential): only its host is ever logged.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use palisade_app::db::{now_ms, Db};
use palisade_app::notify::{slack_payload, ssr};

use crate::auth::oidc::{https_client, HttpsClient};

/// How the worker behaves.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Empty: notices are marked as given up at once ("no webhook configured").
    pub webhook_url: String,
    pub public_url: String,
    pub max_attempts: i64,
    pub poll: Duration,
    pub timeout: Duration,
}

/// The host of a URL, for logs.
fn host_of(url: &str) -> &str {
    url.split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split(['/', '?'])
        .next()
        .unwrap_or_default()
}

async fn post(http: &HttpsClient, settings: &Settings, body: String) -> Result<(), String> {
    let request = hyper::Request::post(&settings.webhook_url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|_| "the webhook URL is not a valid URI".to_owned())?;
    let reply = tokio::time::timeout(settings.timeout, http.request(request))
        .await
        .map_err(|_| format!("no answer within {:?}", settings.timeout))?
        .map_err(|err| format!("cannot reach {}: {err}", host_of(&settings.webhook_url)))?;
    let status = reply.status();
    let _ = reply.into_body().collect().await;
    if status.is_success() {
        Ok(())
    } else {
        Err(format!(
            "{} answered {status}",
            host_of(&settings.webhook_url)
        ))
    }
}

/// One pass: claim what is due and send it. Returns how many were sent.
pub async fn deliver_due(db: &Db, http: &HttpsClient, settings: &Settings) -> usize {
    let now = now_ms();
    let due = match ssr::claim_due(db, now, 60_000, 20).await {
        Ok(due) => due,
        Err(err) => {
            tracing::warn!(error = %err, "cannot read queued notifications");
            return 0;
        }
    };
    let mut sent = 0;
    for pending in due {
        let result = if settings.webhook_url.is_empty() {
            Err("notifications.webhook_url is not set".to_owned())
        } else {
            let body = slack_payload(&pending.notice, &settings.public_url).to_string();
            post(http, settings, body).await
        };
        let now = now_ms();
        let written = match result {
            Ok(()) => {
                sent += 1;
                ssr::mark_sent(db, &pending, now).await
            }
            Err(error) => {
                let give_up =
                    settings.webhook_url.is_empty() || pending.attempts >= settings.max_attempts;
                // 1 s, 2 s, 4 s … up to 5 minutes.
                let backoff = 1000i64 << pending.attempts.clamp(0, 8);
                tracing::warn!(kind = pending.notice.kind.as_str(), attempt = pending.attempts, give_up, %error, "notification not delivered");
                ssr::mark_failed(
                    db,
                    &pending,
                    now,
                    &error,
                    (!give_up).then_some(now + backoff.min(300_000)),
                )
                .await
            }
        };
        if let Err(err) = written {
            tracing::warn!(error = %err, "cannot record a notification's delivery");
        }
    }
    sent
}

/// Delivers until aborted.
pub async fn run(db: Db, settings: Settings) {
    let http = match https_client() {
        Ok(http) => http,
        Err(err) => {
            tracing::error!(error = %err, "notifications are off: no HTTP client");
            return;
        }
    };
    if !settings.webhook_url.is_empty() {
        tracing::info!(
            host = host_of(&settings.webhook_url),
            "notifications go to a webhook"
        );
    }
    loop {
        deliver_due(&db, &http, &settings).await;
        tokio::time::sleep(settings.poll).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_host_is_shown() {
        assert_eq!(
            host_of("https://hooks.slack.com/services/T/B/secret"),
            "hooks.slack.com"
        );
        assert_eq!(host_of("http://127.0.0.1:9/x?y"), "127.0.0.1:9");
    }
}
