//! Computing a framework's posture from the library's control tags, the policies adopted from it,
//! what is deployed where, and the open findings seen in the window, each weighed against the
//! specific checks of each control ([`control_checks`]).

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

/// The words a finding's message names when it concerns `control`, for the controls that one policy
/// serves together with others (Pod Security's levels serve a dozen CIS controls, the host
/// namespaces policy three): a finding counts against the control only when its message names one
/// of them, ignoring case. The messages are the engines' own (the apiserver's Pod Security reasons,
/// such as `host namespaces (hostPID=true)`, and the library policies' messages). Empty: every
/// finding of a serving policy counts.
pub fn control_checks(control: &Control) -> &'static [&'static str] {
    match (control.framework, control.id.as_str()) {
        (Framework::Cis, "5.2.2") => &["privileged"],
        (Framework::Cis, "5.2.3") => &["hostPID"],
        (Framework::Cis, "5.2.4") => &["hostIPC"],
        (Framework::Cis, "5.2.5") => &["hostNetwork"],
        (Framework::Cis, "5.2.6") => &["allowPrivilegeEscalation", "privilege escalation"],
        (Framework::Cis, "5.2.7") => &["runAsNonRoot", "runAsUser", "as root"],
        (Framework::Cis, "5.2.8") => &["capabilities", "NET_RAW"],
        (Framework::Cis, "5.2.9") => &["capabilities"],
        (Framework::Cis, "5.2.10") => &["capabilities"],
        (Framework::Cis, "5.2.11") => &["hostProcess"],
        (Framework::Cis, "5.2.12") => &["hostPath"],
        (Framework::Cis, "5.2.13") => &["hostPort"],
        (Framework::Cis, "5.7.2") => &["seccomp"],
        _ => &[],
    }
}

/// Does a finding with `message` concern a control whose checks are `words`?
pub fn concerns(words: &[&str], message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    words.is_empty()
        || words
            .iter()
            .any(|word| message.contains(&word.to_ascii_lowercase()))
}

/// An open finding on a cluster, as the posture weighs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The Palisade policy it is of; empty when Palisade did not deploy what reported it.
    pub policy_id: String,
    /// The name the engine reported (`pod-security:baseline` for Pod Security).
    pub policy: String,
    pub message: String,
    /// How many open violations read so (objects that fail alike).
    pub count: i64,
}

/// The policies deployed on a cluster that serve one control: those serving only this control of
/// the framework (`whole`: every finding of theirs counts) and those serving several (`by_check`:
/// a finding counts only when it names the control's checks).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Serving {
    pub whole: Vec<String>,
    pub by_check: Vec<String>,
    /// Pod Security serves the control: the apiserver's own Pod Security findings from namespaces
    /// labelled outside Palisade count too, by check.
    pub pod_security: bool,
}

/// How many of a cluster's open findings tell against one control. So nine findings of
/// `privileged` count against "privileged containers" and not against "host namespaces", and a
/// hostPID workload in a namespace Palisade never labelled still counts against "host process
/// namespace".
pub fn findings_against(control: &Control, serving: &Serving, findings: &[Finding]) -> i64 {
    let words = control_checks(control);
    findings
        .iter()
        .filter(|f| {
            serving.whole.contains(&f.policy_id)
                || ((serving.by_check.contains(&f.policy_id)
                    || (serving.pod_security
                        && f.policy_id.is_empty()
                        && f.policy.starts_with("pod-security:")))
                    && concerns(words, &f.message))
        })
        .map(|f| f.count)
        .sum()
}

/// How many workloads fail one control in `assessment`: those that `serving` entries found, each
/// `(entry, words)` counting only findings whose message concerns `words` (all of them when
/// `words` is empty), and each workload once however many entries found it. Past the workloads
/// kept per entry and namespace, an entry counted whole adds its exact count.
pub fn failing_against(
    assessment: &crate::posture::Assessment,
    serving: &[(&str, &[&str])],
) -> i64 {
    let mut seen: std::collections::BTreeSet<(&str, &str)> = std::collections::BTreeSet::new();
    let mut beyond = 0;
    for (id, words) in serving {
        let Some(entry) = assessment.entry(id) else {
            continue;
        };
        for namespace in &entry.namespaces {
            for failing in &namespace.failing {
                if concerns(words, &failing.message) {
                    seen.insert((namespace.namespace.as_str(), failing.workload.as_str()));
                }
            }
            if words.is_empty() {
                let kept = i64::try_from(namespace.failing.len()).unwrap_or(i64::MAX);
                beyond += (namespace.workloads - kept).max(0);
            }
        }
    }
    i64::try_from(seen.len()).unwrap_or(i64::MAX) + beyond
}

/// The framework's name as people say it.
pub fn framework_name(framework: Framework) -> &'static str {
    match framework {
        Framework::Cis => "CIS Kubernetes Benchmark",
        Framework::NsaCisa => "NSA/CISA Kubernetes Hardening Guide",
        Framework::PciDss => "PCI DSS",
        Framework::Soc2 => "SOC 2",
    }
}

/// A short title of a control, in our words; the id alone when we have none.
pub fn control_title(control: &Control) -> String {
    let title = match (control.framework, control.id.as_str()) {
        (Framework::Cis, "5.1.1") => "The cluster-admin role is used only where required",
        (Framework::Cis, "5.1.3") => "Wildcards in Roles and ClusterRoles are avoided",
        (Framework::Cis, "5.1.6") => "Service account tokens are mounted only where needed",
        (Framework::Cis, "5.2.1") => "An active policy control mechanism admits pods",
        (Framework::Cis, "5.2.2") => "Privileged containers are not admitted",
        (Framework::Cis, "5.2.3") => "Containers do not share the host's process namespace",
        (Framework::Cis, "5.2.4") => "Containers do not share the host's IPC namespace",
        (Framework::Cis, "5.2.5") => "Containers do not share the host's network namespace",
        (Framework::Cis, "5.2.6") => "Privilege escalation is not allowed",
        (Framework::Cis, "5.2.7") => "Containers do not run as root",
        (Framework::Cis, "5.2.8") => "The NET_RAW capability is not granted",
        (Framework::Cis, "5.2.9") => "No capabilities are added",
        (Framework::Cis, "5.2.10") => "Capabilities are dropped",
        (Framework::Cis, "5.2.11") => "Windows HostProcess containers are not admitted",
        (Framework::Cis, "5.2.12") => "HostPath volumes are not used",
        (Framework::Cis, "5.2.13") => "Host ports are not used",
        (Framework::Cis, "5.3.2") => "Every namespace has NetworkPolicies",
        (Framework::Cis, "5.4.1") => "Secrets are read as files, not environment variables",
        (Framework::Cis, "5.5.1") => "Image provenance is controlled",
        (Framework::Cis, "5.7.2") => "A seccomp profile is set",
        (Framework::Cis, "5.7.3") => "A security context is applied to pods and containers",
        (Framework::NsaCisa, "immutable-filesystems") => "Container filesystems are read-only",
        (Framework::NsaCisa, "network-policies") => "Network traffic is separated by policy",
        (Framework::NsaCisa, "non-root-containers") => "Containers run as non-root users",
        (Framework::NsaCisa, "pod-security-enforcement") => "Pod security is enforced",
        (Framework::NsaCisa, "rbac") => "Access follows least privilege",
        (Framework::NsaCisa, "resource-policies") => "Resource use is limited",
        (Framework::NsaCisa, "secrets") => "Secrets are protected",
        (Framework::NsaCisa, "secure-images") => "Images come from trusted sources",
        (Framework::NsaCisa, "service-account-tokens") => "Service account tokens are limited",
        (Framework::PciDss, "1.3.2") => "Outbound traffic from sensitive systems is restricted",
        (Framework::PciDss, "12.5.1") => "An inventory of system components is kept",
        (Framework::PciDss, "2.2.6") => "System security parameters prevent misuse",
        (Framework::PciDss, "7.2.2") => "Access is granted by job function",
        (Framework::PciDss, "7.2.5") => "System accounts have the least privilege needed",
        (Framework::PciDss, "8.6.2") => "No passwords are hard-coded in configuration",
        (Framework::Soc2, "A1.1") => "Capacity is managed",
        (Framework::Soc2, "CC6.1") => "Logical access to systems is secured",
        (Framework::Soc2, "CC6.3") => "Access is granted by role",
        (Framework::Soc2, "CC6.6") => "System boundaries are protected",
        (Framework::Soc2, "CC6.8") => "Unauthorised software is prevented",
        (Framework::Soc2, "CC8.1") => "Changes are authorised and tested",
        _ => "",
    };
    if title.is_empty() {
        control.to_string()
    } else {
        title.to_owned()
    }
}

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

/// Orders control ids numerically where they are numbers (`5.2.10` after `5.2.9`).
fn control_key(id: &str) -> Vec<(u64, String)> {
    id.split('.')
        .map(|part| match part.parse::<u64>() {
            Ok(n) => (n, String::new()),
            Err(_) => (u64::MAX, part.to_owned()),
        })
        .collect()
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
    let names: HashMap<String, String> = sqlx::query("SELECT id, name FROM policies")
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("name")?)))
        .collect::<Result<_, sqlx::Error>>()?;
    let clusters: Vec<(String, String)> =
        sqlx::query("SELECT id, name FROM clusters WHERE disabled = 0 ORDER BY environment, name")
            .fetch_all(db.pool())
            .await?
            .iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("name")?)))
            .collect::<Result<_, sqlx::Error>>()?;
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// A namespace of an entry's result: its name, failing workloads, and `(workload, message)`.
    type Namespace<'a> = (&'a str, i64, &'a [(&'a str, &'a str)]);

    fn assessed(entries: &[(&str, &[Namespace<'_>])]) -> crate::posture::Assessment {
        use crate::posture::{EntryPosture, Failing, NamespacePosture};
        crate::posture::Assessment {
            cluster_id: "c".to_owned(),
            cluster_name: "c".to_owned(),
            assessed_ms: 1,
            objects: 9,
            complete: true,
            entries: entries
                .iter()
                .map(|(entry, namespaces)| EntryPosture {
                    entry: (*entry).to_owned(),
                    title: String::new(),
                    controls: Vec::new(),
                    workloads: namespaces.iter().map(|n| n.1).sum(),
                    namespaces: namespaces
                        .iter()
                        .map(|(namespace, workloads, failing)| NamespacePosture {
                            namespace: (*namespace).to_owned(),
                            workloads: *workloads,
                            failing: failing
                                .iter()
                                .map(|(w, m)| Failing {
                                    workload: (*w).to_owned(),
                                    message: (*m).to_owned(),
                                })
                                .collect(),
                        })
                        .collect(),
                })
                .collect(),
            not_evaluable: Vec::new(),
        }
    }

    #[test]
    fn an_assessment_counts_against_a_control_by_its_checks_and_each_workload_once() {
        let assessment = assessed(&[
            (
                "disallow-privileged",
                &[("shop", 1, &[("Deployment/web", "privileged")])],
            ),
            (
                "pod-security-baseline",
                &[
                    (
                        "ops",
                        2,
                        &[
                            ("Pod/agent", "host namespaces (hostPID=true)"),
                            ("Pod/tool", "host namespaces (hostPID=true)"),
                        ],
                    ),
                    (
                        "shop",
                        1,
                        &[("Deployment/web", "privileged (container \"c\")")],
                    ),
                ],
            ),
            // More failing than kept: the rest is counted from the exact number.
            ("require-labels", &[("shop", 30, &[("Pod/a", "no labels")])]),
        ]);
        assert_eq!(
            failing_against(&assessment, &[("pod-security-baseline", &["hostPID"])]),
            2
        );
        // Privileged: the workload both entries found is one.
        assert_eq!(
            failing_against(
                &assessment,
                &[
                    ("disallow-privileged", &[]),
                    ("pod-security-baseline", &["privileged"])
                ]
            ),
            1
        );
        assert_eq!(
            failing_against(&assessment, &[("disallow-privileged", &[])]),
            1
        );
        assert_eq!(failing_against(&assessment, &[("require-labels", &[])]), 30);
        assert_eq!(failing_against(&assessment, &[("nothing-here", &[])]), 0);
    }

    fn finding(policy_id: &str, policy: &str, message: &str) -> Finding {
        Finding {
            policy_id: policy_id.into(),
            policy: policy.into(),
            message: message.into(),
            count: 1,
        }
    }

    fn cis(id: &str) -> Control {
        Control {
            framework: Framework::Cis,
            id: id.into(),
        }
    }

    #[test]
    fn findings_count_against_the_controls_whose_checks_they_name() {
        // Pod Security baseline (policy p-pss) serves many controls; nine findings, all of the
        // privileged check.
        let privileged = finding(
            "p-pss",
            "pod-security:baseline",
            "violates PodSecurity \"baseline:latest\": privileged (container \"app\" must not set securityContext.privileged=true)",
        );
        let nine = vec![privileged; 9];
        let pss = Serving {
            by_check: vec!["p-pss".into()],
            pod_security: true,
            ..Serving::default()
        };
        assert_eq!(findings_against(&cis("5.2.2"), &pss, &nine), 9);
        assert_eq!(findings_against(&cis("5.2.3"), &pss, &nine), 0);
        assert_eq!(findings_against(&cis("5.2.12"), &pss, &nine), 0);
        // 5.2.1 (a policy mechanism admits pods) is served as a whole: every finding counts.
        assert_eq!(findings_against(&cis("5.2.1"), &pss, &nine), 9);

        // A hostPID workload in a namespace Palisade never labelled (the apiserver reports it
        // under its own name): it tells against "host process namespace" wherever Pod Security
        // serves the control, even though Palisade's enforce deployment is clean.
        let elsewhere = vec![finding(
            "",
            "pod-security:baseline",
            "would violate PodSecurity \"baseline:latest\": host namespaces (hostPID=true)",
        )];
        assert_eq!(findings_against(&cis("5.2.3"), &pss, &elsewhere), 1);
        assert_eq!(findings_against(&cis("5.2.5"), &pss, &elsewhere), 0);
        let not_pss = Serving {
            by_check: vec!["p-hostns".into()],
            ..Serving::default()
        };
        assert_eq!(findings_against(&cis("5.2.3"), &not_pss, &elsewhere), 0);

        // A policy that serves one control counts every finding of its own, whatever it says.
        let single = Serving {
            whole: vec!["p-priv".into()],
            ..Serving::default()
        };
        let own = vec![finding("p-priv", "disallow-privileged", "not allowed")];
        assert_eq!(findings_against(&cis("5.2.2"), &single, &own), 1);
        // Findings of policies that do not serve the control never count.
        assert_eq!(findings_against(&cis("5.2.2"), &pss, &own), 0);
    }

    #[test]
    fn every_tagged_control_has_a_title_and_ids_sort_as_numbers() {
        for entry in crate::policies::ssr::library::entries().unwrap() {
            for control in &entry.controls {
                assert_ne!(
                    control_title(control),
                    control.to_string(),
                    "no title for {control}"
                );
            }
        }
        let mut ids = vec!["5.2.10", "5.2.9", "5.1.1", "A1.1", "CC6.1"];
        ids.sort_by_key(|id| control_key(id));
        assert_eq!(ids, ["5.1.1", "5.2.9", "5.2.10", "A1.1", "CC6.1"]);
    }
}
