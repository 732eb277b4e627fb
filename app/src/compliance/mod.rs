//! Compliance posture: frameworks (CIS Kubernetes Benchmark, NSA/CISA hardening guide, PCI DSS,
//! SOC 2) → controls → the policies that serve them (library entries carry their controls) → a
//! status per cluster, from what is deployed where (`deployments`) and the findings still open
//! there in the window (`violations`), each counted only against the controls whose checks it
//! names. A score per framework and per cluster, and an evidence export.

pub mod pages;
#[cfg(feature = "ssr")]
pub mod ssr;

use crate::wire::wire_enum;
use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

wire_enum! {
    /// Where one control stands on one cluster.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    pub enum Status as "status" {
        /// A covering policy is enforced there and nothing open on that cluster violates the
        /// control's checks.
        Enforced = "enforced",
        /// Covering policies run there in audit or warn only, and nothing was reported in the window.
        AuditedClean = "audited_clean",
        /// Findings open there in the window violate the control's checks.
        Violations = "violations",
        /// No covering policy is deployed there, but the library was judged against the
        /// cluster's inventory: `assessed` says how many workloads would fail the control.
        Assessed = "assessed",
        /// No covering policy is deployed there.
        NotCovered = "not_covered",
    }
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Enforced => "enforced",
            Status::AuditedClean => "audited, clean",
            Status::Violations => "violations",
            Status::Assessed => "assessed, not enforced",
            Status::NotCovered => "not covered",
        }
    }

    /// Whether it counts towards the score.
    pub fn passing(self) -> bool {
        matches!(self, Status::Enforced | Status::AuditedClean)
    }
}

/// The status of a control on a cluster, from the modes its covering policies run in there and the
/// violations they reported in the window.
pub fn status_of(modes: &[crate::model::Mode], violations: i64) -> Status {
    use crate::model::Mode;
    if modes.is_empty() {
        Status::NotCovered
    } else if violations > 0 {
        Status::Violations
    } else if modes.contains(&Mode::Enforce) {
        Status::Enforced
    } else {
        Status::AuditedClean
    }
}

/// Passing cells as a whole percentage of all cells (0 when there are none).
pub fn score(statuses: impl IntoIterator<Item = Status>) -> i64 {
    let (mut passing, mut all) = (0i64, 0i64);
    for s in statuses {
        all += 1;
        passing += i64::from(s.passing());
    }
    if all == 0 {
        0
    } else {
        passing * 100 / all
    }
}

/// A policy serving a control.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct PolicyRef {
    /// Empty when the library entry was not adopted as a policy yet.
    pub policy_id: String,
    pub name: String,
    pub library_entry: String,
}

/// One cell: a control on a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct Cell {
    pub cluster_id: String,
    pub cluster_name: String,
    pub status: Status,
    pub violations: i64,
    /// The covering deployments there: `policy name vN mode`, with when and by which rollout.
    pub deployments: Vec<DeploymentRef>,
    /// Where nothing covers the control there: what the cluster's posture assessment found.
    #[serde(default)]
    pub assessed: Option<AssessedCell>,
}

/// A control on a cluster as assessed from its inventory (nothing deployed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct AssessedCell {
    /// Workloads that would fail the control if its library entries were enforced.
    pub failing: i64,
    pub assessed_ms: i64,
    /// The inventory was whole and judged in time.
    pub complete: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct DeploymentRef {
    pub policy_id: String,
    pub policy_name: String,
    pub version: i64,
    pub mode: String,
    pub applied_ms: i64,
    pub rollout_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct ControlRow {
    /// e.g. `5.2.2`
    pub id: String,
    pub title: String,
    pub policies: Vec<PolicyRef>,
    pub cells: Vec<Cell>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct ClusterScore {
    pub cluster_id: String,
    pub cluster_name: String,
    pub score: i64,
}

/// A framework's posture across every enabled cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct Posture {
    /// `cis`, `nsa-cisa`, `pci-dss`, `soc2`
    pub framework: String,
    pub name: String,
    pub score: i64,
    pub window_days: i64,
    pub generated_ms: i64,
    pub clusters: Vec<ClusterScore>,
    pub controls: Vec<ControlRow>,
    /// How many clusters there are in all; `clusters` (and each row's cells) may be a part of them,
    /// starting at `cluster_from`.
    #[serde(default)]
    pub cluster_total: usize,
    #[serde(default)]
    pub cluster_from: usize,
}

/// Cluster columns the compliance page shows at once.
pub const CLUSTER_COLUMNS: usize = 12;

impl Posture {
    /// The same posture with only the cluster columns `from .. from + count` (the scores stay
    /// those of every cluster). A `from` past the end shows the last columns.
    pub fn columns(&self, from: usize, count: usize) -> Posture {
        let total = self.clusters.len();
        let from = from.min(total.saturating_sub(1) / count.max(1) * count.max(1));
        let keep = |len: usize| from.min(len)..(from + count).min(len);
        Posture {
            framework: self.framework.clone(),
            name: self.name.clone(),
            score: self.score,
            window_days: self.window_days,
            generated_ms: self.generated_ms,
            clusters: self.clusters[keep(total)].to_vec(),
            controls: self
                .controls
                .iter()
                .map(|row| ControlRow {
                    id: row.id.clone(),
                    title: row.title.clone(),
                    policies: row.policies.clone(),
                    cells: row.cells[keep(row.cells.len())].to_vec(),
                })
                .collect(),
            cluster_total: total,
            cluster_from: from,
        }
    }
}

/// One framework in the overview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct FrameworkSummary {
    pub framework: String,
    pub name: String,
    pub score: i64,
    pub controls: usize,
}

/// The window violations are counted over: those last seen on one of the last seven UTC days
/// (today included) and not resolved are open.
pub const WINDOW_DAYS: i64 = 7;

/// Evidence as CSV (RFC 4180), one row per control and cluster.
pub fn to_csv(posture: &Posture) -> String {
    use crate::audit::csv_field as field;
    let mut out = String::from(
        "framework,control,title,cluster,status,violations,policies,deployments,generated_ms,assessed_failing\r\n",
    );
    for control in &posture.controls {
        let policies = control
            .policies
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        for cell in &control.cells {
            let deployments = cell
                .deployments
                .iter()
                .map(|d| {
                    format!(
                        "{} v{} {} (rollout {}, applied {})",
                        d.policy_name, d.version, d.mode, d.rollout_id, d.applied_ms
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            let row = [
                field(&posture.framework),
                field(&control.id),
                field(&control.title),
                field(&cell.cluster_name),
                cell.status.as_str().to_owned(),
                cell.violations.to_string(),
                field(&policies),
                field(&deployments),
                posture.generated_ms.to_string(),
                cell.assessed
                    .as_ref()
                    .map(|a| a.failing.to_string())
                    .unwrap_or_default(),
            ];
            out.push_str(&row.join(","));
            out.push_str("\r\n");
        }
    }
    out
}

/// Every framework with its score.
#[server(endpoint = "compliance_frameworks", input = Json)]
pub async fn compliance_frameworks() -> Result<Vec<FrameworkSummary>, AppError> {
    crate::auth::ssr::require(crate::auth::Action::Read)?;
    Ok(ssr::summaries(&crate::state::current()?.db, crate::db::now_ms()).await?)
}

/// One framework's controls × clusters, [`CLUSTER_COLUMNS`] clusters from `from` (0 when absent).
#[server(endpoint = "compliance_posture", input = Json)]
pub async fn compliance_posture(
    framework: String,
    #[server(default)] from: Option<usize>,
) -> Result<Posture, AppError> {
    crate::auth::ssr::require(crate::auth::Action::Read)?;
    let posture = ssr::posture(
        &crate::state::current()?.db,
        &framework,
        crate::db::now_ms(),
    )
    .await?;
    Ok(posture.columns(from.unwrap_or(0), CLUSTER_COLUMNS))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::model::Mode;

    #[test]
    fn statuses_follow_modes_and_violations() {
        let cases = [
            (vec![], 0, Status::NotCovered),
            (vec![], 5, Status::NotCovered),
            (vec![Mode::Enforce], 0, Status::Enforced),
            (vec![Mode::Audit, Mode::Enforce], 0, Status::Enforced),
            (vec![Mode::Audit], 0, Status::AuditedClean),
            (vec![Mode::Warn], 0, Status::AuditedClean),
            (vec![Mode::Enforce], 1, Status::Violations),
            (vec![Mode::Audit], 3, Status::Violations),
        ];
        for (modes, violations, expected) in cases {
            assert_eq!(
                status_of(&modes, violations),
                expected,
                "{modes:?} {violations}"
            );
        }
    }

    #[test]
    fn a_part_of_the_clusters_keeps_every_row_in_step() {
        let cluster = |n: usize| ClusterScore {
            cluster_id: format!("c{n}"),
            cluster_name: format!("cluster {n}"),
            score: n as i64,
        };
        let cell = |n: usize| Cell {
            cluster_id: format!("c{n}"),
            cluster_name: format!("cluster {n}"),
            status: Status::NotCovered,
            violations: 0,
            deployments: Vec::new(),
            assessed: None,
        };
        let posture = Posture {
            framework: "cis".into(),
            name: "CIS".into(),
            score: 40,
            window_days: WINDOW_DAYS,
            generated_ms: 1,
            clusters: (0..30).map(cluster).collect(),
            controls: vec![ControlRow {
                id: "5.2.2".into(),
                title: "t".into(),
                policies: Vec::new(),
                cells: (0..30).map(cell).collect(),
            }],
            cluster_total: 0,
            cluster_from: 0,
        };
        let names = |p: &Posture| {
            (
                p.clusters
                    .iter()
                    .map(|c| c.cluster_id.clone())
                    .collect::<Vec<_>>(),
                p.controls[0]
                    .cells
                    .iter()
                    .map(|c| c.cluster_id.clone())
                    .collect::<Vec<_>>(),
            )
        };
        let second = posture.columns(12, 12);
        let (clusters, cells) = names(&second);
        assert_eq!(
            clusters,
            (12..24).map(|n| format!("c{n}")).collect::<Vec<_>>()
        );
        assert_eq!(cells, clusters);
        assert_eq!(
            (second.cluster_from, second.cluster_total, second.score),
            (12, 30, 40)
        );
        let last = posture.columns(24, 12);
        assert_eq!(names(&last).0.len(), 6);
        // Past the end: the last columns.
        let past = posture.columns(500, 12);
        assert_eq!((past.cluster_from, past.clusters.len()), (24, 6));
    }

    #[test]
    fn the_score_is_the_share_of_passing_cells() {
        use Status::*;
        assert_eq!(score([]), 0);
        assert_eq!(score([Enforced, AuditedClean, Violations, NotCovered]), 50);
        assert_eq!(score([Enforced, Enforced, NotCovered]), 66);
        assert_eq!(score([Enforced]), 100);
    }
}
