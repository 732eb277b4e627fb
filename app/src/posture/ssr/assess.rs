//! Judging the whole library against one cluster's inventory in one pass, and summing up what
//! failed per entry and namespace. The summing up is pure.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use crate::db::Db;
use crate::error::{AppError, ServerResult};
use crate::impact::findings::ObjectFinding;
use crate::impact::ssr::judge::Judge;
use crate::impact::ssr::service::feed;
use crate::inventory::ssr::service as inventory;
use crate::model::Mode;
use crate::posture::{Assessment, EntryPosture, Failing, NamespacePosture, FAILING_KEPT};
use crate::violations::ssr::scan::Deployed;
use crate::violations::Action;

/// The policy id an entry is judged under: no stored policy has it.
fn policy_id(entry: &str) -> String {
    format!("library:{entry}")
}

/// Judge every library entry, as it would be enforced on every namespace, against the inventory
/// of `cluster`.
pub async fn assess(
    db: &Db,
    cluster: &crate::clusters::Cluster,
    now: i64,
) -> ServerResult<Assessment> {
    let held = inventory::of_cluster(db, &cluster.id).await?;
    let namespaces = inventory::namespaces(db, &cluster.id).await?;
    let names = inventory::labelled_names(&namespaces);
    let entries = crate::policies::ssr::library::entries()?;
    let mut deployments = Vec::new();
    for entry in entries {
        let content = crate::policies::ssr::library::content(entry)?;
        // Pod Security labels need a namespace; a cluster without one yet has nothing to label.
        let objects = if names.is_empty() {
            crate::policies::ssr::render::objects(&content, Mode::Enforce).map(|objects| {
                objects
                    .into_iter()
                    .filter(|o| o["metadata"]["name"] != palisade_engine::render::EACH_NAMESPACE)
                    .collect()
            })
        } else {
            crate::policies::ssr::render::desired_objects(&content, Mode::Enforce, &names, &[])
        }
        .map_err(|why| AppError::internal("rendering a library entry", why))?;
        deployments.push((policy_id(entry.id), objects));
    }
    let (deployed, errors) = Deployed::from_deployments(&deployments);
    if let Some(error) = errors.first() {
        return Err(AppError::internal("loading the library", error).into());
    }
    // Engine name (`pod-security:baseline`, a VAP's name) → entry.
    let entry_of: HashMap<String, String> = deployed
        .names
        .iter()
        .filter_map(|(name, id)| Some((name.clone(), id.strip_prefix("library:")?.to_owned())))
        .collect();
    let judge = Judge::new(Arc::new(deployed), None, namespaces, now);
    let (judge, partial) = feed(db, &cluster.id, judge, Instant::now(), None).await?;
    let objects = judge.objects();
    let not_evaluable = judge.not_evaluable();
    let (findings, _) = judge.findings(usize::MAX);
    let described: Vec<(String, String, Vec<String>)> = entries
        .iter()
        .map(|e| {
            (
                e.id.to_owned(),
                e.title.clone(),
                e.controls.iter().map(ToString::to_string).collect(),
            )
        })
        .collect();
    Ok(Assessment {
        cluster_id: cluster.id.clone(),
        cluster_name: cluster.name.clone(),
        assessed_ms: now,
        objects,
        complete: !partial && held.complete(),
        entries: summarize(&described, &entry_of, &findings),
        not_evaluable,
    })
}

/// Per entry (`(id, title, controls)`) and namespace, the workloads `findings` say would be denied
/// or warned of (an audit alone is no failure). Entries with failing workloads first, then by id;
/// namespaces with the most first.
pub fn summarize(
    entries: &[(String, String, Vec<String>)],
    entry_of: &HashMap<String, String>,
    findings: &[ObjectFinding],
) -> Vec<EntryPosture> {
    // entry → namespace → workload → the first message.
    let mut failing: BTreeMap<&str, BTreeMap<&str, BTreeMap<String, &str>>> = BTreeMap::new();
    for finding in findings {
        if finding.excepted || finding.action == Action::Audit {
            continue;
        }
        let Some(entry) = entry_of.get(&finding.policy) else {
            continue;
        };
        failing
            .entry(entry.as_str())
            .or_default()
            .entry(finding.namespace.as_str())
            .or_default()
            .entry(format!("{}/{}", finding.owner.kind, finding.owner.name))
            .or_insert(finding.message.as_str());
    }
    let mut out: Vec<EntryPosture> = entries
        .iter()
        .map(|(id, title, controls)| {
            let mut namespaces: Vec<NamespacePosture> = failing
                .get(id.as_str())
                .into_iter()
                .flatten()
                .map(|(namespace, workloads)| NamespacePosture {
                    namespace: (*namespace).to_owned(),
                    workloads: count(workloads.len()),
                    failing: workloads
                        .iter()
                        .take(FAILING_KEPT)
                        .map(|(workload, message)| Failing {
                            workload: workload.clone(),
                            message: (*message).to_owned(),
                        })
                        .collect(),
                })
                .collect();
            namespaces.sort_by(|a, b| {
                b.workloads
                    .cmp(&a.workloads)
                    .then_with(|| a.namespace.cmp(&b.namespace))
            });
            EntryPosture {
                entry: id.clone(),
                title: title.clone(),
                controls: controls.clone(),
                workloads: namespaces.iter().map(|n| n.workloads).sum(),
                namespaces,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        (a.workloads == 0)
            .cmp(&(b.workloads == 0))
            .then_with(|| a.entry.cmp(&b.entry))
    });
    out
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::impact::findings::OwnerRef;

    fn finding(
        policy: &str,
        namespace: &str,
        owner: &str,
        action: Action,
        message: &str,
    ) -> ObjectFinding {
        let (kind, name) = owner.split_once('/').unwrap();
        ObjectFinding {
            kind: "Pod".to_owned(),
            namespace: namespace.to_owned(),
            name: format!("{name}-pod"),
            owner: OwnerRef {
                kind: kind.to_owned(),
                name: name.to_owned(),
            },
            action,
            excepted: false,
            policy: policy.to_owned(),
            message: message.to_owned(),
        }
    }

    #[test]
    fn failures_are_counted_per_entry_namespace_and_workload() {
        let entries = vec![
            (
                "disallow-privileged".to_owned(),
                "No privileged".to_owned(),
                vec!["cis:5.2.2".to_owned()],
            ),
            (
                "pod-security-baseline".to_owned(),
                "Baseline".to_owned(),
                vec!["cis:5.2.2".to_owned(), "cis:5.2.3".to_owned()],
            ),
            ("require-labels".to_owned(), "Labels".to_owned(), vec![]),
        ];
        let entry_of: HashMap<String, String> = [
            ("disallow-privileged", "disallow-privileged"),
            ("pod-security:baseline", "pod-security-baseline"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect();
        let web = finding(
            "disallow-privileged",
            "shop",
            "Deployment/web",
            Action::Deny,
            "privileged",
        );
        let findings = vec![
            // Two Pods of one Deployment: one workload.
            web.clone(),
            web,
            finding(
                "pod-security:baseline",
                "shop",
                "Deployment/web",
                Action::Deny,
                "privileged (container \"c\")",
            ),
            finding(
                "pod-security:baseline",
                "ops",
                "Pod/agent",
                Action::Warn,
                "host namespaces (hostPID=true)",
            ),
            finding(
                "pod-security:baseline",
                "ops",
                "Pod/tool",
                Action::Deny,
                "host namespaces (hostPID=true)",
            ),
            // An audit alone, and an engine name no entry has: neither is a failure here.
            finding(
                "pod-security:baseline",
                "misc",
                "Pod/quiet",
                Action::Audit,
                "privileged",
            ),
            finding("someone-elses", "shop", "Pod/x", Action::Deny, "no"),
        ];
        let out = summarize(&entries, &entry_of, &findings);
        let shown: Vec<(&str, i64)> = out
            .iter()
            .map(|e| (e.entry.as_str(), e.workloads))
            .collect();
        assert_eq!(
            shown,
            [
                ("disallow-privileged", 1),
                ("pod-security-baseline", 3),
                ("require-labels", 0)
            ]
        );
        let baseline = &out[1];
        assert_eq!(baseline.namespaces[0].namespace, "ops");
        assert_eq!(baseline.namespaces[0].workloads, 2);
        assert_eq!(baseline.namespaces[1].failing[0].workload, "Deployment/web");
    }
}
