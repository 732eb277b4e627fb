//! Computing a framework's posture from the library's control tags, the policies adopted from it,
//! what is deployed where, and the open findings seen in the window, each weighed against the
//! specific checks of each control ([`control_checks`]).
pub mod controls;

use std::collections::{BTreeMap, HashMap};

use palisade_engine::library::{Control, Framework};
use sqlx::Row;

use super::{
    score, status_of, AssessedCell, Cell, ClusterScore, ControlRow, DeploymentRef,
    FrameworkSummary, PolicyRef, Posture, Status, WINDOW_DAYS,
};
use crate::db::Db;
use crate::error::{AppError, ServerResult};
use crate::model::Mode;
use crate::violations::ssr::findings;
use controls::{
    control_checks, control_key, control_title, failing_against, findings_against, framework_name,
    Finding, Serving,
};

fn parse_framework(text: &str) -> ServerResult<Framework> {
    Ok(Framework::parse(text).ok_or_else(|| {
        AppError::NotFound(format!(
            "framework {text:?}; there are {}",
            Framework::ALL
                .iter()
                .map(|f| f.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?)
}

/// What the postures of every framework are computed from, read from the database in one go.
pub struct Facts {
    /// Library entry → the policies adopted from it.
    policies_of: HashMap<String, Vec<String>>,
    /// Policy id → name.
    names: HashMap<String, String>,
    /// The enabled clusters, `(id, name)`, in the order the page shows them.
    clusters: Vec<(String, String)>,
    /// `(cluster, policy)` → the deployment there.
    deployed: HashMap<(String, String), DeploymentRef>,
    /// Cluster → the findings still open and seen in the window.
    open: HashMap<String, Vec<Finding>>,
    /// Cluster → its last posture assessment (the library judged against its inventory).
    assessed: HashMap<String, crate::posture::Assessment>,
}

/// The start of the window of open findings at `now_ms`: the first of the last [`WINDOW_DAYS`] UTC
/// days, today included.
pub fn window_start(now_ms: i64) -> i64 {
    now_ms - now_ms.rem_euclid(findings::DAY_MS) - (WINDOW_DAYS - 1) * findings::DAY_MS
}

/// Reads the [`Facts`] as they are at `now_ms`.
pub async fn facts(db: &Db, now_ms: i64) -> ServerResult<Facts> {
    let adopted = crate::policies::ssr::adopted(db).await?;
    let mut policies_of: HashMap<String, Vec<String>> = HashMap::new();
    for (origin, policy_id) in adopted {
        if let Some(entry) = origin.strip_prefix("library:") {
            policies_of
                .entry(entry.to_owned())
                .or_default()
                .push(policy_id);
        }
    }
    let names: HashMap<String, String> =
        sqlx::query_as::<_, (String, String)>("SELECT id, name FROM policies")
            .fetch_all(db.pool())
            .await?
            .into_iter()
            .collect();
    let clusters: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, name FROM clusters WHERE disabled = 0 ORDER BY environment, name",
    )
    .fetch_all(db.pool())
    .await?;
    let mut deployed: HashMap<(String, String), DeploymentRef> = HashMap::new();
    for row in sqlx::query(
        "SELECT cluster_id, policy_id, version, mode, applied_ms, rollout_id FROM deployments",
    )
    .fetch_all(db.pool())
    .await?
    {
        let read = || -> Result<(String, DeploymentRef), sqlx::Error> {
            let policy_id: String = row.try_get("policy_id")?;
            Ok((
                row.try_get("cluster_id")?,
                DeploymentRef {
                    policy_name: names.get(&policy_id).cloned().unwrap_or_default(),
                    policy_id,
                    version: row.try_get("version")?,
                    mode: row.try_get("mode")?,
                    applied_ms: row.try_get("applied_ms")?,
                    rollout_id: row.try_get("rollout_id")?,
                },
            ))
        };
        let (cluster, d) = read()?;
        deployed.insert((cluster, d.policy_id.clone()), d);
    }
    // Findings of Palisade's policies, and the apiserver's own Pod Security findings; the same
    // policy and message on one cluster is one finding with a count (many objects fail alike).
    let mut open: HashMap<String, Vec<Finding>> = HashMap::new();
    for found in findings::open_since(db, window_start(now_ms)).await? {
        open.entry(found.cluster_id).or_default().push(Finding {
            policy_id: found.policy_id,
            policy: found.policy,
            message: found.message,
            count: found.count,
        });
    }
    Ok(Facts {
        policies_of,
        names,
        clusters,
        deployed,
        open,
        assessed: crate::posture::ssr::all(db).await?,
    })
}

/// The [`Facts`] now, read once for all the requests that ask while the read runs (a burst of page
/// loads would otherwise each read every open violation of the window).
async fn shared_facts(db: &Db, now_ms: i64) -> ServerResult<std::sync::Arc<Facts>> {
    db.shared()
        .read("compliance.facts", || facts(db, now_ms))
        .await
}

/// The posture of `framework` now, computed once for all the requests that ask while it is
/// computed (every cell of every cluster: the page then shows a part of it).
pub async fn posture(
    db: &Db,
    framework: &str,
    now_ms: i64,
) -> ServerResult<std::sync::Arc<Posture>> {
    let framework = parse_framework(framework)?;
    let key = match framework {
        Framework::Cis => "compliance.posture.cis",
        Framework::NsaCisa => "compliance.posture.nsa-cisa",
        Framework::PciDss => "compliance.posture.pci-dss",
        Framework::Soc2 => "compliance.posture.soc2",
    };
    db.shared()
        .read(key, || async {
            posture_of(framework, &*shared_facts(db, now_ms).await?, now_ms)
        })
        .await
}

/// The posture of `framework` from `facts`: the library's controls of it, each with the policies
/// serving it and its status on every cluster.
pub fn posture_of(framework: Framework, facts: &Facts, now_ms: i64) -> ServerResult<Posture> {
    let Facts {
        policies_of,
        names,
        clusters,
        deployed,
        open,
        assessed,
    } = facts;
    let entries = crate::policies::ssr::library::entries()?;
    // Controls → the library entries tagged with them.
    let mut controls: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for entry in entries {
        for control in entry.controls.iter().filter(|c| c.framework == framework) {
            controls
                .entry(control.id.clone())
                .or_default()
                .push(entry.id);
        }
    }
    // Entry → how many controls of this framework it serves.
    let mut controls_per_entry: HashMap<&str, usize> = HashMap::new();
    for entry_ids in controls.values() {
        for entry in entry_ids {
            *controls_per_entry.entry(entry).or_default() += 1;
        }
    }

    let mut rows = Vec::new();
    for (id, entry_ids) in &controls {
        let control = Control {
            framework,
            id: id.clone(),
        };
        let pod_security = entry_ids.iter().any(|e| e.starts_with("pod-security-"));
        let policies: Vec<PolicyRef> = entry_ids
            .iter()
            .flat_map(|entry| {
                let adopted = policies_of.get(*entry).cloned().unwrap_or_default();
                if adopted.is_empty() {
                    vec![PolicyRef {
                        policy_id: String::new(),
                        name: (*entry).to_owned(),
                        library_entry: (*entry).to_owned(),
                    }]
                } else {
                    adopted
                        .into_iter()
                        .map(|policy_id| PolicyRef {
                            name: names.get(&policy_id).cloned().unwrap_or_default(),
                            policy_id,
                            library_entry: (*entry).to_owned(),
                        })
                        .collect()
                }
            })
            .collect();
        // Whether each serving policy serves other controls of this framework too.
        let shared = |policy_id: &str| {
            policies
                .iter()
                .find(|p| p.policy_id == policy_id)
                .is_some_and(|p| {
                    controls_per_entry
                        .get(p.library_entry.as_str())
                        .copied()
                        .unwrap_or(0)
                        > 1
                })
        };
        let cells = clusters
            .iter()
            .map(|(cluster_id, cluster_name)| -> ServerResult<Cell> {
                let deployments: Vec<DeploymentRef> = policies
                    .iter()
                    .filter(|p| !p.policy_id.is_empty())
                    .filter_map(|p| {
                        deployed
                            .get(&(cluster_id.clone(), p.policy_id.clone()))
                            .cloned()
                    })
                    .collect();
                let modes: Vec<Mode> = deployments
                    .iter()
                    .map(|d| Mode::decode(&d.mode))
                    .collect::<Result<_, _>>()?;
                let (by_check, whole): (Vec<String>, Vec<String>) = deployments
                    .iter()
                    .map(|d| d.policy_id.clone())
                    .partition(|id| shared(id));
                let serving = Serving {
                    whole,
                    by_check,
                    pod_security,
                };
                let violations = findings_against(
                    &control,
                    &serving,
                    open.get(cluster_id).map_or(&[][..], Vec::as_slice),
                );
                let mut status = status_of(&modes, violations);
                // Nothing covers it here: what the library, judged against the inventory, found.
                let assessed = match assessed.get(cluster_id) {
                    Some(assessment) if status == Status::NotCovered => {
                        // An entry serving only this control counts whole; one serving several
                        // counts by the control's checks.
                        let serving: Vec<(&str, &[&str])> = entry_ids
                            .iter()
                            .copied()
                            .filter(|e| assessment.entry(e).is_some())
                            .map(|e| {
                                let words: &[&str] =
                                    if controls_per_entry.get(e).copied().unwrap_or(0) <= 1 {
                                        &[]
                                    } else {
                                        control_checks(&control)
                                    };
                                (e, words)
                            })
                            .collect();
                        (!serving.is_empty()).then(|| {
                            status = Status::Assessed;
                            AssessedCell {
                                failing: failing_against(assessment, &serving),
                                assessed_ms: assessment.assessed_ms,
                                complete: assessment.complete,
                            }
                        })
                    }
                    _ => None,
                };
                Ok(Cell {
                    cluster_id: cluster_id.clone(),
                    cluster_name: cluster_name.clone(),
                    status,
                    violations,
                    deployments,
                    assessed,
                })
            })
            .collect::<ServerResult<_>>()?;
        rows.push(ControlRow {
            title: control_title(&control),
            id: id.clone(),
            policies,
            cells,
        });
    }
    rows.sort_by_key(|r| control_key(&r.id));
    let cluster_scores = clusters
        .iter()
        .enumerate()
        .map(|(i, (cluster_id, cluster_name))| ClusterScore {
            cluster_id: cluster_id.clone(),
            cluster_name: cluster_name.clone(),
            score: score(rows.iter().map(|r| r.cells[i].status)),
        })
        .collect();
    Ok(Posture {
        framework: framework.as_str().to_owned(),
        name: framework_name(framework).to_owned(),
        score: score(rows.iter().flat_map(|r| r.cells.iter().map(|c| c.status))),
        window_days: WINDOW_DAYS,
        generated_ms: now_ms,
        cluster_total: clusters.len(),
        cluster_from: 0,
        clusters: cluster_scores,
        controls: rows,
    })
}

/// Every framework with its score, computed once for all the requests that ask meanwhile.
pub async fn summaries(db: &Db, now_ms: i64) -> ServerResult<Vec<FrameworkSummary>> {
    let shared = db
        .shared()
        .read("compliance.summaries", || async {
            let facts = shared_facts(db, now_ms).await?;
            let mut out = Vec::new();
            for framework in Framework::ALL {
                let p = posture_of(framework, &facts, now_ms)?;
                out.push(FrameworkSummary {
                    framework: p.framework,
                    name: p.name,
                    score: p.score,
                    controls: p.controls.len(),
                });
            }
            Ok(out)
        })
        .await?;
    Ok((*shared).clone())
}
