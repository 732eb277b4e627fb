//! What a policy would do to one cluster's objects, grouped by the workload that owns them. Pure:
//! the objects, the policies and the time come in; the clock for the time budget is a function.

use std::collections::{BTreeMap, BTreeSet};

use palisade_engine::bundle::Context;
use serde_json::Value;

use crate::impact::{Change, WorkloadImpact, WORKLOADS_SHOWN};
use crate::inventory::ssr::owners::{Owner, Owners};
use crate::violations::ssr::scan::Deployed;
use crate::violations::Action;

/// What [`judge`] found on one cluster.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Judgement {
    pub objects: i64,
    pub deny: i64,
    pub warn: i64,
    pub audit: i64,
    pub excepted: i64,
    pub newly_denied: i64,
    pub no_longer_denied: i64,
    pub not_evaluable: Vec<String>,
    pub workloads: Vec<WorkloadImpact>,
    pub partial: bool,
}

/// Where a workload stands: its namespace and top owner.
type Workload = (String, Owner);

/// The objects of a workload a policy concerns, and the first message about them.
#[derive(Default)]
struct Group {
    objects: BTreeSet<String>,
    message: String,
}

/// How many distinct reasons for "not evaluable" are kept.
const REASONS: usize = 20;
/// Examples named per workload.
const EXAMPLES: usize = 3;

/// What `proposed` (the policy as it would be deployed) does to each of `objects` (one cluster's
/// inventory, namespaces included), against what `running` (the version deployed there now, if
/// any) does. `out_of_time` is asked now and then; once it says so, evaluation stops and the
/// answer is marked partial.
pub fn judge(
    proposed: &Deployed,
    running: Option<&Deployed>,
    objects: &[Value],
    now_ms: i64,
    out_of_time: &mut dyn FnMut() -> bool,
) -> Judgement {
    let context = Context {
        namespaces: objects
            .iter()
            .filter(|o| o["kind"] == "Namespace")
            .cloned()
            .collect(),
        ..Context::default()
    };
    let mut owners = Owners::default();
    for object in objects {
        owners.learn(object);
    }
    let mut out = Judgement::default();
    let mut groups: BTreeMap<(Workload, Action, bool), Group> = BTreeMap::new();
    let mut denied_now: BTreeMap<Workload, Group> = BTreeMap::new();
    let mut reasons = BTreeSet::new();
    for (i, object) in objects.iter().enumerate() {
        if i % 64 == 0 && out_of_time() {
            out.partial = true;
            break;
        }
        out.objects += 1;
        let text = |pointer: &str| {
            object
                .pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let (kind, name) = (text("/kind"), text("/metadata/name"));
        let namespace = text("/metadata/namespace");
        let owner = owners.top(&text("/metadata/uid")).unwrap_or_else(|| Owner {
            kind: kind.clone(),
            name: name.clone(),
        });
        let workload: Workload = (namespace, owner);
        let judged = proposed.judge(object.clone(), &context, now_ms);
        reasons.extend(judged.not_evaluable);
        // A request that is denied carries no warning of the same policy besides the denial.
        let denied: BTreeSet<String> = judged
            .findings
            .iter()
            .filter(|(f, _)| f.action == Action::Deny)
            .map(|(f, _)| f.policy.clone())
            .collect();
        for (finding, excepted) in judged.findings {
            if finding.action == Action::Warn && denied.contains(&finding.policy) {
                continue;
            }
            let group = groups
                .entry((workload.clone(), finding.action, excepted))
                .or_default();
            group.objects.insert(format!("{kind}/{name}"));
            if group.message.is_empty() {
                group.message = finding.message;
            }
        }
        if let Some(running) = running {
            for (finding, excepted) in running.judge(object.clone(), &context, now_ms).findings {
                if finding.action == Action::Deny && !excepted {
                    let group = denied_now.entry(workload.clone()).or_default();
                    group.objects.insert(format!("{kind}/{name}"));
                    if group.message.is_empty() {
                        group.message = finding.message;
                    }
                }
            }
        }
    }
    let denied_next: BTreeSet<&Workload> = groups
        .keys()
        .filter(|(_, action, excepted)| *action == Action::Deny && !excepted)
        .map(|(workload, _, _)| workload)
        .collect();
    let row =
        |(namespace, owner): &Workload, action, excepted, change, group: &Group| WorkloadImpact {
            namespace: namespace.clone(),
            owner_kind: owner.kind.clone(),
            owner_name: owner.name.clone(),
            action,
            excepted,
            change,
            objects: i64::try_from(group.objects.len()).unwrap_or(i64::MAX),
            examples: group.objects.iter().take(EXAMPLES).cloned().collect(),
            message: group.message.clone(),
        };
    let mut workloads = Vec::new();
    for ((workload, action, excepted), group) in &groups {
        let change = if *action == Action::Deny && !excepted && !denied_now.contains_key(workload) {
            Change::New
        } else {
            Change::Same
        };
        match (action, excepted) {
            (_, true) => out.excepted += 1,
            (Action::Deny, false) => out.deny += 1,
            (Action::Warn, false) => out.warn += 1,
            (Action::Audit, false) => out.audit += 1,
        }
        if change == Change::New {
            out.newly_denied += 1;
        }
        workloads.push(row(workload, *action, *excepted, change, group));
    }
    for (workload, group) in &denied_now {
        if !denied_next.contains(workload) {
            out.no_longer_denied += 1;
            workloads.push(row(workload, Action::Deny, false, Change::Stops, group));
        }
    }
    // Denials first, then warnings and audits; what an exception covers last.
    workloads.sort_by(|a, b| {
        (
            a.excepted,
            std::cmp::Reverse(a.action),
            a.change,
            &a.namespace,
            &a.owner_kind,
            &a.owner_name,
        )
            .cmp(&(
                b.excepted,
                std::cmp::Reverse(b.action),
                b.change,
                &b.namespace,
                &b.owner_kind,
                &b.owner_name,
            ))
    });
    workloads.truncate(WORKLOADS_SHOWN);
    out.workloads = workloads;
    out.not_evaluable = reasons.into_iter().take(REASONS).collect();
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::Mode;
    use crate::policies::Content;

    fn pod_security(level: &str) -> Deployed {
        let content = Content {
            source: format!(
                "apiVersion: palisade.dev/v1alpha1\nkind: PodSecurityEntry\nmetadata: {{name: {level}}}\nspec: {{level: {level}, version: latest}}\n"
            ),
            ..Content::default()
        };
        let objects = crate::rollouts::ssr::plan::desired_objects(
            &content,
            Mode::Enforce,
            &["team".to_owned()],
            &[],
        )
        .unwrap();
        let (deployed, errors) = Deployed::from_deployments(&[("p1".to_owned(), objects)]);
        assert!(errors.is_empty(), "{errors:?}");
        deployed
    }

    fn owned(
        kind: &str,
        name: &str,
        uid: &str,
        owner: Option<(&str, &str, &str)>,
        spec: Value,
    ) -> Value {
        let mut object = json!({
            "apiVersion": if kind == "Pod" { "v1" } else { "apps/v1" },
            "kind": kind,
            "metadata": {"name": name, "namespace": "team", "uid": uid},
        });
        if let Some((kind, name, uid)) = owner {
            object["metadata"]["ownerReferences"] =
                json!([{"kind": kind, "name": name, "uid": uid, "controller": true}]);
        }
        if kind == "Pod" {
            object["spec"] = spec;
        } else {
            object["spec"] = json!({"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}, "spec": spec}});
        }
        object
    }

    fn inventory() -> Vec<Value> {
        let privileged = json!({"containers": [{"name": "c", "image": "i", "securityContext": {"privileged": true}}]});
        let root = json!({"containers": [{"name": "c", "image": "i"}]});
        vec![
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team", "uid": "ns"}}),
            owned("Deployment", "web", "d1", None, privileged.clone()),
            owned(
                "ReplicaSet",
                "web-1",
                "r1",
                Some(("Deployment", "web", "d1")),
                privileged.clone(),
            ),
            owned(
                "Pod",
                "web-1-a",
                "p1",
                Some(("ReplicaSet", "web-1", "r1")),
                privileged.clone(),
            ),
            owned(
                "Pod",
                "web-1-b",
                "p2",
                Some(("ReplicaSet", "web-1", "r1")),
                privileged,
            ),
            owned("Pod", "tool", "p3", None, root),
        ]
    }

    #[test]
    fn pods_are_denied_and_named_by_their_deployment_whose_template_is_warned() {
        let got = judge(
            &pod_security("baseline"),
            None,
            &inventory(),
            1,
            &mut || false,
        );
        assert_eq!(got.objects, 6);
        assert!(!got.partial);
        // Pod Security enforce denies the two Pods; both belong to one workload.
        let denied: Vec<_> = got
            .workloads
            .iter()
            .filter(|w| w.action == Action::Deny)
            .collect();
        assert_eq!(denied.len(), 1, "{:#?}", got.workloads);
        let web = denied[0];
        assert_eq!(
            (web.owner_kind.as_str(), web.owner_name.as_str()),
            ("Deployment", "web")
        );
        assert_eq!(web.objects, 2);
        assert_eq!(web.examples, ["Pod/web-1-a", "Pod/web-1-b"]);
        assert_eq!(web.change, Change::New);
        assert!(web.message.contains("privileged"), "{}", web.message);
        // Enforce includes warn: the Deployment's and the ReplicaSet's templates are warned of,
        // not denied; a denied Pod is not warned of again for the same policy.
        let warned = got
            .workloads
            .iter()
            .find(|w| w.action == Action::Warn)
            .unwrap();
        assert_eq!(warned.owner_name, "web");
        assert_eq!(warned.examples, ["Deployment/web", "ReplicaSet/web-1"]);
        // Audit records everything it sees, denied or not.
        let audited = got
            .workloads
            .iter()
            .find(|w| w.action == Action::Audit)
            .unwrap();
        assert_eq!(audited.objects, 4);
        assert_eq!(
            (got.deny, got.newly_denied, got.no_longer_denied),
            (1, 1, 0)
        );
        // The root Pod passes baseline.
        assert!(got.workloads.iter().all(|w| w.owner_name != "tool"));
    }

    #[test]
    fn against_what_runs_now_it_says_what_it_would_stop_denying() {
        // Restricted runs now and denies both workloads; baseline would deny only `web`.
        let restricted = pod_security("restricted");
        let got = judge(
            &pod_security("baseline"),
            Some(&restricted),
            &inventory(),
            1,
            &mut || false,
        );
        assert_eq!(
            (got.newly_denied, got.no_longer_denied),
            (0, 1),
            "{:#?}",
            got.workloads
        );
        let web = got
            .workloads
            .iter()
            .find(|w| w.action == Action::Deny && w.owner_name == "web")
            .unwrap();
        assert_eq!(web.change, Change::Same);
        let tool = got
            .workloads
            .iter()
            .find(|w| w.owner_name == "tool")
            .unwrap();
        assert_eq!((tool.action, tool.change), (Action::Deny, Change::Stops));
    }

    #[test]
    fn out_of_time_the_answer_is_partial() {
        let mut asked = 0;
        let got = judge(
            &pod_security("baseline"),
            None,
            &inventory(),
            1,
            &mut || {
                asked += 1;
                true
            },
        );
        assert!(got.partial);
        assert_eq!(got.objects, 0);
        assert_eq!(asked, 1);
    }
}
