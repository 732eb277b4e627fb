//! Audit ingest: each cluster's token, and turning a posted batch into counted violations.
//!
//! A token is `pali_<cluster id>_<secret>`; only the SHA-256 of the secret is stored, on the
//! cluster's row, and it is compared in constant time. A batch is counted in one transaction: the
//! audit IDs first (a batch the apiserver sends again finds them and counts nothing twice), then
//! the violations and the hourly counts. When the answer is 200, the batch is committed.

use std::collections::HashMap;

use sqlx::Row;

use super::events::{self, Observed};
use super::store::{self, Finding, Written};
use crate::account::ssr::{constant_time_eq, random_hex, sha256_hex};
use crate::audit::ssr::Event;
use crate::auth::Principal;
use crate::db::Db;
use crate::error::{AppError, ServerResult};
use crate::violations::{IngestToken, Source};

/// Where clusters post.
pub const PATH: &str = "/api/v1/ingest/audit";
/// The prefix that tells an ingest token from an API token.
pub const TOKEN_PREFIX: &str = "pali_";

/// A new token for `cluster_id`; the previous one stops working at once.
pub async fn rotate(
    db: &Db,
    who: &Principal,
    cluster_id: &str,
    public_url: &str,
    now_ms: i64,
) -> ServerResult<IngestToken> {
    let secret = random_hex(32)?;
    let mut tx = db.begin().await?;
    let changed = sqlx::query(
        "UPDATE clusters SET ingest_token_hash = $1, ingest_token_ms = $2 WHERE id = $3",
    )
    .bind(sha256_hex(&secret))
    .bind(now_ms)
    .bind(cluster_id)
    .execute(&mut *tx)
    .await?;
    if changed.rows_affected() == 0 {
        return Err(AppError::NotFound(format!("cluster {cluster_id}")).into());
    }
    Event::new("cluster.ingest_token", "cluster", cluster_id)
        .record(&mut *tx, who, now_ms)
        .await?;
    tx.commit().await?;
    Ok(IngestToken {
        cluster_id: cluster_id.to_owned(),
        token: format!("{TOKEN_PREFIX}{cluster_id}_{secret}"),
        url: format!("{}{PATH}", public_url.trim_end_matches('/')),
    })
}

/// The cluster a Bearer ingest token belongs to, if it checks out (an enabled cluster whose current
/// token it is).
pub async fn authenticate(db: &Db, bearer: &str) -> ServerResult<Option<String>> {
    let Some((id, secret)) = bearer
        .strip_prefix(TOKEN_PREFIX)
        .and_then(|rest| rest.split_once('_'))
    else {
        return Ok(None);
    };
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let row = sqlx::query("SELECT ingest_token_hash, disabled FROM clusters WHERE id = $1")
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    let Some(row) = row else { return Ok(None) };
    let hash: String = row.try_get("ingest_token_hash")?;
    let disabled: i64 = row.try_get("disabled")?;
    let matches =
        !hash.is_empty() && constant_time_eq(sha256_hex(secret).as_bytes(), hash.as_bytes());
    Ok((matches && disabled == 0).then(|| id.to_owned()))
}

/// The Palisade policy behind each name the engines report on `cluster_id`, from what Palisade
/// deployed there: ValidatingAdmissionPolicies and Constraints by name, Pod Security by level.
pub async fn deployed_names(
    conn: &mut sqlx::AnyConnection,
    cluster_id: &str,
) -> Result<HashMap<String, String>, sqlx::Error> {
    let rows = sqlx::query("SELECT policy_id, manifests FROM deployments WHERE cluster_id = $1")
        .bind(cluster_id)
        .fetch_all(&mut *conn)
        .await?;
    let mut names = HashMap::new();
    for row in rows {
        let policy_id: String = row.try_get("policy_id")?;
        let manifests: String = row.try_get("manifests")?;
        let objects: Vec<serde_json::Value> = serde_json::from_str(&manifests).unwrap_or_default();
        for name in reported_names(&objects) {
            names.insert(name, policy_id.clone());
        }
    }
    Ok(names)
}

/// The names under which violations of these objects are reported.
pub fn reported_names(objects: &[serde_json::Value]) -> Vec<String> {
    let mut out = Vec::new();
    for object in objects {
        let kind = object["kind"].as_str().unwrap_or_default();
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        let kyverno =
            palisade_engine::kyverno::is_kyverno_document(object) && kind != "PolicyException";
        if kind == "ValidatingAdmissionPolicy"
            || api_version.starts_with("constraints.gatekeeper.sh/")
            || kyverno
        {
            out.push(name.to_owned());
            // Kyverno names a namespaced policy with its namespace in its reports.
            if let Some(namespace) = object["metadata"]["namespace"].as_str().filter(|_| kyverno) {
                out.push(format!("{namespace}/{name}"));
            }
        } else if kind == "Namespace" {
            if let Some(labels) = object["metadata"]["labels"].as_object() {
                for mode in ["enforce", "warn", "audit"] {
                    if let Some(level) = labels
                        .get(&format!("pod-security.kubernetes.io/{mode}"))
                        .and_then(|l| l.as_str())
                    {
                        out.push(format!("pod-security:{level}"));
                    }
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// What one batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct Accepted {
    /// Events in the batch.
    pub events: usize,
    /// Violations found in them.
    pub violations: usize,
    /// Of those, ones whose audit ID was counted before (a re-sent batch).
    pub duplicates: usize,
    #[serde(skip)]
    pub written: Written,
}

/// Counts one posted batch from `cluster_id`. A body that is not an EventList is refused whole.
pub async fn accept(
    db: &Db,
    cluster_id: &str,
    body: &[u8],
    now_ms: i64,
    deny_spike: i64,
) -> ServerResult<Accepted> {
    let (events, observed) =
        events::parse(body, now_ms).map_err(|e| AppError::Invalid(e.to_string()))?;
    let mut accepted = Accepted {
        events,
        violations: observed.len(),
        ..Accepted::default()
    };
    if observed.is_empty() {
        // Most batches hold nothing to count: they note the report without waiting for the write
        // turn, unless the last noted one is old enough to be moved on.
        if store::report_is_due(db, cluster_id, now_ms).await? {
            let _turn = db.write_turn().await;
            let mut conn = db.pool().acquire().await?;
            store::mark_reported(&mut conn, cluster_id, now_ms).await?;
        }
        return Ok(accepted);
    }
    let _turn = db.write_turn().await;
    let mut ids: Vec<String> = observed
        .iter()
        .map(|o| format!("{cluster_id}/{}", o.audit_id))
        .collect();
    ids.sort();
    ids.dedup();
    let mut tx = db.begin().await?;
    store::mark_reported(&mut tx, cluster_id, now_ms).await?;
    let fresh = store::first_sightings(&mut tx, cluster_id, &ids, now_ms).await?;
    let names = deployed_names(&mut tx, cluster_id).await?;
    let findings: Vec<Finding> = observed
        .into_iter()
        .filter(|o| fresh.contains(&format!("{cluster_id}/{}", o.audit_id)))
        .map(|o| finding(o, &names))
        .collect();
    accepted.duplicates = accepted.violations - findings.len();
    if !findings.is_empty() {
        accepted.written = store::record(&mut tx, cluster_id, &findings, deny_spike).await?;
    }
    for spike in &accepted.written.spikes {
        crate::notify::ssr::enqueue(
            &mut tx,
            now_ms,
            &crate::notify::Notice {
                kind: crate::notify::NoticeKind::DenySpike,
                title: format!("Deny spike: {}", spike.policy),
                text: format!(
                    "{} requests denied by {} on cluster {cluster_id} within the hour (threshold {deny_spike}).",
                    spike.count, spike.policy
                ),
                link: Some(format!("/violations?cluster={cluster_id}&action=deny&days=1")),
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(accepted)
}

fn finding(o: Observed, names: &HashMap<String, String>) -> Finding {
    Finding {
        policy_id: names.get(&o.policy).cloned().unwrap_or_default(),
        policy: o.policy,
        resource: o.resource,
        namespace: o.namespace,
        name: o.name,
        uid: o.uid,
        action: o.action,
        source: Source::Audit,
        message: o.message,
        at_ms: o.at_ms,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    #[test]
    fn names_come_from_what_was_deployed() {
        let objects = vec![
            json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy", "metadata": {"name": "no-privileged"}}),
            json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding", "metadata": {"name": "no-privileged-binding"}}),
            json!({"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sRequiredLabels", "metadata": {"name": "must-have-owner"}}),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a", "labels": {
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/audit": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest"}}}),
            json!({"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy", "metadata": {"name": "need-team"}}),
            json!({"apiVersion": "kyverno.io/v1", "kind": "Policy", "metadata": {"name": "local", "namespace": "shop"}}),
            json!({"apiVersion": "policies.kyverno.io/v1alpha1", "kind": "ValidatingPolicy", "metadata": {"name": "replicas"}}),
            json!({"apiVersion": "kyverno.io/v2", "kind": "PolicyException", "metadata": {"name": "palisade-need-team-e1", "namespace": "kyverno"}}),
        ];
        assert_eq!(
            reported_names(&objects),
            [
                "local",
                "must-have-owner",
                "need-team",
                "no-privileged",
                "pod-security:restricted",
                "replicas",
                "shop/local"
            ]
        );
    }
}
