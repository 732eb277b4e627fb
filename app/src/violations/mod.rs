//! Violations: what the clusters report back. Their apiservers post audit events to
//! `POST /api/v1/ingest/audit` (each cluster with its own token); `ssr::events` reads them into
//! violations and `ssr::store` counts them, once per audit ID, with hourly rollups for the charts and
//! the promotion evidence. The explorer (`pages`) filters, pages (by key, never by offset), charts and
//! exports them.

pub mod pages;
#[cfg(feature = "ssr")]
pub mod ssr;

use crate::wire::wire_enum;
use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

wire_enum! {
    /// What the cluster did about it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
    pub enum Action as "action" {
        Audit = "audit",
        Warn = "warn",
        Deny = "deny",
    }
}

wire_enum! {
    /// Where Palisade learnt of it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum Source as "source" {
        /// The apiserver's audit webhook.
        Audit = "audit",
        /// Palisade's own scan of the cluster's objects.
        Scan = "scan",
        /// A PolicyReport or Gatekeeper's constraint status.
        Report = "report",
    }
}

/// One distinct violation: a policy, a resource, an action and a source on one cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct Violation {
    pub id: String,
    pub cluster_id: String,
    pub cluster_name: String,
    /// The Palisade policy, when the reported name is one Palisade deployed there.
    pub policy_id: String,
    /// The name as reported (a ValidatingAdmissionPolicy, a constraint, `pod-security:<level>`).
    pub policy: String,
    pub resource: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub action: Action,
    pub source: Source,
    pub message: String,
    pub first_ms: i64,
    pub last_ms: i64,
    pub count: i64,
    /// 0 while open.
    pub resolved_ms: i64,
}

/// Which violations to show. Empty strings and `None` mean "any".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct ViolationFilter {
    #[serde(default)]
    pub cluster: String,
    #[serde(default)]
    pub namespace: String,
    /// A reported policy name or a Palisade policy id.
    #[serde(default)]
    pub policy: String,
    #[serde(default)]
    pub action: Option<Action>,
    #[serde(default)]
    pub source: Option<Source>,
    /// Seen at or after (ms).
    #[serde(default)]
    pub since_ms: Option<i64>,
    /// Seen within the last this many days (the server's clock).
    #[serde(default)]
    pub within_days: Option<i64>,
    /// Seen before (ms).
    #[serde(default)]
    pub until_ms: Option<i64>,
    /// Only the ones still open.
    #[serde(default)]
    pub open: bool,
    /// The `next` of the previous page.
    #[serde(default)]
    pub after: Option<String>,
    /// Rows per page (1 to 500; default 50).
    #[serde(default)]
    pub limit: Option<i64>,
}

/// One page of violations, most recently seen first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct ViolationPage {
    pub items: Vec<Violation>,
    /// Pass as `after` for the next page; `None` on the last one.
    pub next: Option<String>,
}

/// Counts over time, one line per series.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct Chart {
    /// The start of each bucket (ms).
    pub buckets: Vec<i64>,
    pub bucket_ms: i64,
    pub series: Vec<Series>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct Series {
    pub name: String,
    /// One count per bucket.
    pub counts: Vec<i64>,
}

/// The explorer's two charts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct Charts {
    pub by_policy: Chart,
    pub by_cluster: Chart,
}

/// A cluster's new ingest token: shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct IngestToken {
    pub cluster_id: String,
    pub token: String,
    /// Where the cluster's apiserver posts (`--audit-webhook-config-file` server): absolute from
    /// `http.public_url`, or only the path when that is not set.
    pub url: String,
}

/// One cluster's part of the evidence for a promotion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct ClusterEvidence {
    pub cluster_id: String,
    pub cluster_name: String,
    /// Violations of the policy counted on this cluster in the period.
    pub violations: i64,
    /// When the cluster first reported anything (an audit batch or a complete scan); 0 if it
    /// never has, in which case its zero violations prove nothing.
    pub reporting_since_ms: i64,
    /// When it last reported; 0 if never.
    pub reported_ms: i64,
}

/// How long a cluster may stay silent and still count as reporting (audit batches come only when
/// there is something to audit; scans run on their own period).
pub const REPORTING_GAP_MS: i64 = crate::time::DAY_MS;

impl ClusterEvidence {
    /// Whether the cluster reported over the whole period from `since_ms` to `until_ms`.
    pub fn covers(&self, since_ms: i64, until_ms: i64) -> bool {
        self.reporting_since_ms > 0
            && self.reporting_since_ms <= since_ms
            && self.reported_ms >= until_ms - REPORTING_GAP_MS
    }
}

/// Whether a policy ran clean on a rollout's clusters: the evidence to promote it, or the
/// workloads still in the way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct Evidence {
    pub policy_id: String,
    pub days: i64,
    pub since_ms: i64,
    pub clusters: Vec<ClusterEvidence>,
    /// The most recent violations of the period (at most 50), newest first.
    pub workloads: Vec<Violation>,
}

impl Evidence {
    /// No violations, and every cluster reported over the whole period: the claim a promotion
    /// can rest on. Silence from a cluster that never reported is not clean.
    pub fn clean(&self) -> bool {
        !self.clusters.is_empty()
            && self
                .clusters
                .iter()
                .all(|c| c.violations == 0 && c.covers(self.since_ms, self.until_ms()))
    }

    /// The end of the period (when the evidence was read).
    pub fn until_ms(&self) -> i64 {
        self.since_ms + self.days * crate::time::DAY_MS
    }

    /// What the evidence shows, in sentences that claim no more than was measured.
    pub fn summary(&self) -> String {
        let names = |pick: &dyn Fn(&ClusterEvidence) -> bool| -> Vec<&str> {
            self.clusters
                .iter()
                .filter(|c| pick(c))
                .map(|c| c.cluster_name.as_str())
                .collect()
        };
        let days = if self.days == 1 {
            "1 day".to_owned()
        } else {
            format!("{} days", self.days)
        };
        let silent = names(&|c| c.reporting_since_ms == 0);
        if self.clusters.is_empty() || silent.len() == self.clusters.len() {
            return "No evidence yet: none of these clusters has sent audit events or been \
                    scanned, so no violations does not mean clean."
                .to_owned();
        }
        let mut sentences = Vec::new();
        let total: i64 = self.clusters.iter().map(|c| c.violations).sum();
        if total == 0 {
            let whole = names(&|c| c.covers(self.since_ms, self.until_ms()));
            if !whole.is_empty() {
                sentences.push(format!(
                    "No new violations for {days} on {}.",
                    whole.join(", ")
                ));
            }
            for c in &self.clusters {
                if c.reporting_since_ms == 0 || c.covers(self.since_ms, self.until_ms()) {
                    continue;
                }
                let from = c.reporting_since_ms.max(self.since_ms);
                sentences.push(format!(
                    "No violations on {} from {} to {}, while it reported.",
                    c.cluster_name,
                    crate::time::format_date(from),
                    crate::time::format_date(c.reported_ms)
                ));
            }
        } else {
            let dirty = self.clusters.iter().filter(|c| c.violations > 0).count();
            sentences.push(format!(
                "{total} violations in the last {days} on {dirty} of {} clusters.",
                self.clusters.len()
            ));
        }
        if !silent.is_empty() {
            sentences.push(format!(
                "No evidence from {}: not yet reported (audit events or a scan).",
                silent.join(", ")
            ));
        }
        sentences.join(" ")
    }
}

/// What a scan reports, shared by the browser and the server.
pub mod ssr_types {
    use serde::{Deserialize, Serialize};

    /// What one cluster's scan did.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
    pub struct ClusterScan {
        pub cluster_id: String,
        pub cluster_name: String,
        /// Objects evaluated.
        pub objects: usize,
        /// Violations found (scan and reports).
        pub findings: usize,
        /// Of those, new ones.
        pub opened: usize,
        /// Earlier findings no longer there.
        pub resolved: u64,
        /// What could not be read; a scan with errors resolves nothing.
        pub errors: Vec<String>,
    }
}

/// The most rows one export holds.
pub const EXPORT_LIMIT: i64 = 100_000;

/// Violations as CSV (RFC 4180 quoting), with a header line.
pub fn to_csv(items: &[Violation]) -> String {
    use crate::audit::csv_field as field;
    let mut out = String::from(
        "id,cluster,policy_id,policy,resource,namespace,name,uid,action,source,message,first_ms,last_ms,count,resolved_ms\r\n",
    );
    for v in items {
        let row = [
            field(&v.id),
            field(&v.cluster_name),
            field(&v.policy_id),
            field(&v.policy),
            field(&v.resource),
            field(&v.namespace),
            field(&v.name),
            field(&v.uid),
            v.action.as_str().to_owned(),
            v.source.as_str().to_owned(),
            field(&v.message),
            v.first_ms.to_string(),
            v.last_ms.to_string(),
            v.count.to_string(),
            v.resolved_ms.to_string(),
        ];
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    out
}

/// One page of violations.
#[server(endpoint = "list_violations", input = Json)]
pub async fn list_violations(filter: ViolationFilter) -> Result<ViolationPage, AppError> {
    crate::auth::ssr::require(crate::auth::Action::Read)?;
    Ok(ssr::queries::list(&crate::state::current()?.db, &filter, crate::db::now_ms()).await?)
}

/// Counts per day over the last `days` (1 to 90) per policy and per cluster, with the filter's
/// cluster, namespace-free dimensions (policy, action) applied.
#[server(endpoint = "violation_charts", input = Json)]
pub async fn violation_charts(filter: ViolationFilter, days: i64) -> Result<Charts, AppError> {
    crate::auth::ssr::require(crate::auth::Action::Read)?;
    Ok(ssr::queries::charts(
        &crate::state::current()?.db,
        &filter,
        days,
        crate::db::now_ms(),
    )
    .await?)
}

/// The evidence for promoting a rollout's policy on its clusters: violations over the last
/// `days` (1 to 90).
#[server(endpoint = "rollout_evidence", input = Json)]
pub async fn rollout_evidence(id: String, days: i64) -> Result<Evidence, AppError> {
    crate::auth::ssr::require(crate::auth::Action::Read)?;
    Ok(
        ssr::queries::evidence(&crate::state::current()?.db, &id, days, crate::db::now_ms())
            .await?,
    )
}

/// Scan one cluster (or every cluster with deployments) now: its workloads against what Palisade
/// deployed there, and its PolicyReports.
#[server(endpoint = "scan_clusters", input = Json)]
pub async fn scan_clusters(
    cluster_id: Option<String>,
) -> Result<Vec<ssr_types::ClusterScan>, AppError> {
    crate::auth::ssr::require(crate::auth::Action::OperateRollout)?;
    let state = crate::state::current()?;
    let now = crate::db::now_ms();
    match cluster_id {
        Some(id) => Ok(vec![
            ssr::scan::scan_cluster(
                &state.db,
                state.sealer.as_deref(),
                state.clusters.as_ref(),
                &id,
                now,
            )
            .await?,
        ]),
        None => Ok(ssr::scan::scan_all(
            &state.db,
            state.sealer.as_deref(),
            state.clusters.as_ref(),
            now,
        )
        .await?),
    }
}

/// A new ingest token for a cluster (the old one stops working).
#[server(endpoint = "rotate_ingest_token", input = Json)]
pub async fn rotate_ingest_token(cluster_id: String) -> Result<IngestToken, AppError> {
    let call = crate::state::authorized(crate::auth::Action::ManageClusters)?;
    let public_url = crate::state::current()?.public_url;
    Ok(ssr::ingest::rotate(&call.db, &call.who, &cluster_id, &public_url, call.now).await?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn names_print_and_parse_back() {
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(a));
        }
        for s in Source::ALL {
            assert_eq!(Source::parse(s.as_str()), Some(s));
        }
        assert_eq!(Action::parse("allow"), None);
        assert!(Action::Deny > Action::Warn && Action::Warn > Action::Audit);
    }

    /// Clusters as (name, violations, first reported on day, last reported on day); the period
    /// runs from day 10 to day 17.
    fn evidence(clusters: &[(&str, i64, i64, i64)]) -> Evidence {
        const DAY: i64 = 86_400_000;
        Evidence {
            policy_id: "p".into(),
            days: 7,
            since_ms: 10 * DAY,
            clusters: clusters
                .iter()
                .map(|(name, violations, first, last)| ClusterEvidence {
                    cluster_id: format!("id-{name}"),
                    cluster_name: (*name).into(),
                    violations: *violations,
                    reporting_since_ms: first * DAY,
                    reported_ms: last * DAY,
                })
                .collect(),
            workloads: Vec::new(),
        }
    }

    #[test]
    fn evidence_claims_only_what_was_measured() {
        // Nothing ever reported: silence is not clean.
        let none = evidence(&[("dev-1", 0, 0, 0), ("dev-2", 0, 0, 0)]);
        assert!(!none.clean());
        assert!(
            none.summary().starts_with("No evidence yet"),
            "{}",
            none.summary()
        );
        // Reporting over the whole period, no violations: the claim holds.
        let full = evidence(&[("dev-1", 0, 3, 17), ("dev-2", 0, 10, 16)]);
        assert!(full.clean());
        assert_eq!(
            full.summary(),
            "No new violations for 7 days on dev-1, dev-2."
        );
        // One began reporting inside the period, one fell silent, one never reported: each
        // said as such, and not clean.
        let partial = evidence(&[
            ("dev-1", 0, 3, 17),
            ("dev-2", 0, 12, 17),
            ("dev-3", 0, 3, 13),
            ("dev-4", 0, 0, 0),
        ]);
        assert!(!partial.clean());
        assert_eq!(
            partial.summary(),
            "No new violations for 7 days on dev-1. No violations on dev-2 from 1970-01-13 to \
             1970-01-18, while it reported. No violations on dev-3 from 1970-01-11 to 1970-01-14, \
             while it reported. No evidence from dev-4: not yet reported (audit events or a scan)."
        );
        // Violations are counted whatever the coverage.
        let dirty = evidence(&[("dev-1", 4, 3, 17), ("dev-2", 0, 3, 17)]);
        assert!(!dirty.clean());
        assert_eq!(
            dirty.summary(),
            "4 violations in the last 7 days on 1 of 2 clusters."
        );
        assert!(!evidence(&[]).clean());
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let v = Violation {
            id: "i".into(),
            cluster_id: "c".into(),
            cluster_name: "prod-1".into(),
            policy_id: String::new(),
            policy: "p".into(),
            resource: "pods".into(),
            namespace: "ns".into(),
            name: "=cmd".into(),
            uid: String::new(),
            action: Action::Deny,
            source: Source::Audit,
            message: "a, \"b\"".into(),
            first_ms: 1,
            last_ms: 2,
            count: 3,
            resolved_ms: 0,
        };
        let csv = to_csv(&[v]);
        let line = csv.lines().nth(1).unwrap();
        assert!(line.contains(",'=cmd,"), "{line}");
        assert!(line.contains(",\"a, \"\"b\"\"\","), "{line}");
        assert!(line.contains(",deny,audit,"), "{line}");
    }
}
