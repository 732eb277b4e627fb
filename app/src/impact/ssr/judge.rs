//! What a policy would do to one cluster's objects, grouped by the workload that owns them. Pure:
//! the objects, the policies and the time come in; the caller keeps the time budget and says
//! whether the answer is partial.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use palisade_engine::bundle::Context;
use palisade_engine::pss::{CompactPod, POD_KINDS};
use palisade_engine::AdmissionRequest;
use serde_json::Value;

use crate::impact::findings::{Counts, ObjectFinding, OwnerRef};
use crate::impact::{Change, WorkloadImpact, WORKLOADS_SHOWN};
use crate::inventory::ssr::changes::Held;
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

/// One object's findings, kept until its owner is known: (namespace, uid, `Kind/name`).
type Seen = (String, String, String);

/// What is kept of one finding: the object, the action, whether an exception covers it, and the
/// policy (as the engine reports it); the message is the value.
type Found = (Seen, Action, bool, String);

/// How a finding names its object: (namespace, uid, `Kind/name`).
fn seen(object: &Value) -> Seen {
    let text = |pointer: &str| {
        object
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    (
        text("/metadata/namespace"),
        text("/metadata/uid"),
        format!("{}/{}", text("/kind"), text("/metadata/name")),
    )
}

/// [`judge`] one object at a time, so a cluster's objects can be read and dropped page by page:
/// only the objects with findings, and every object's owner, are kept.
pub struct Judge {
    proposed: Arc<Deployed>,
    running: Option<Arc<Deployed>>,
    /// Nothing but Pod Security labels is deployed, proposed or running: only the objects whose
    /// pod fails a level can have findings (see [`Judge::add_held`]).
    pod_security_only: bool,
    context: Context,
    owners: Owners,
    now_ms: i64,
    objects: i64,
    found: BTreeMap<Found, String>,
    denied_now: BTreeMap<Seen, String>,
    reasons: BTreeSet<String>,
}

impl Judge {
    /// For one cluster: the policy as it would be deployed, what runs there now, and the
    /// cluster's Namespace objects (their labels decide what namespace selectors match).
    pub fn new(
        proposed: Arc<Deployed>,
        running: Option<Arc<Deployed>>,
        namespaces: Vec<Value>,
        now_ms: i64,
    ) -> Judge {
        let pod_security_only = std::iter::once(&proposed)
            .chain(running.as_ref())
            .all(|d| d.bundle.is_empty() && d.constraints.is_empty());
        Judge {
            proposed,
            running,
            pod_security_only,
            context: Context {
                namespaces: namespaces.into(),
                ..Context::default()
            },
            owners: Owners::default(),
            now_ms,
            objects: 0,
            found: BTreeMap::new(),
            denied_now: BTreeMap::new(),
            reasons: BTreeSet::new(),
        }
    }

    /// Give Gatekeeper's referential templates the cluster's objects as `data.inventory` (what
    /// Gatekeeper replicates from the cluster for them).
    pub fn with_inventory(mut self, inventory: palisade_engine::gatekeeper::Inventory) -> Judge {
        self.context.inventory = inventory;
        self
    }

    /// Evaluate one object of the cluster. The object moves into one admission request that both
    /// the proposed and the running policies judge; nothing is copied for an object without
    /// findings but its owner.
    pub fn add(&mut self, object: Value) {
        self.objects += 1;
        self.owners.learn(&object);
        // What the engine cannot read as a request (no kind or apiVersion) has no findings.
        let Ok(request) = AdmissionRequest::create(object) else {
            return;
        };
        let judged = self
            .proposed
            .judge_request(&request, &self.context, self.now_ms);
        self.reasons.extend(judged.not_evaluable);
        let now = self.running.as_ref().and_then(|running| {
            running
                .judge_request(&request, &self.context, self.now_ms)
                .findings
                .into_iter()
                .find(|(f, excepted)| f.action == Action::Deny && !excepted)
        });
        if judged.findings.is_empty() && now.is_none() {
            return;
        }
        let seen = seen(request.object.as_ref().unwrap_or(&Value::Null));
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
            self.found
                .entry((seen.clone(), finding.action, excepted, finding.policy))
                .or_insert(finding.message);
        }
        if let Some((finding, _)) = now {
            self.denied_now.entry(seen).or_insert(finding.message);
        }
    }

    /// [`Judge::add`] from an object as the inventory holds it; text that is not JSON is an
    /// error.
    ///
    /// Where only Pod Security is deployed (proposed and running), an object without a pod, in a
    /// namespace without a level, or whose pod passes every level its namespace is labelled with,
    /// has no finding whatever the mode: it is counted and its owner learnt from the inventory's
    /// columns, and its text is read only in the compact Pod form (or, for the first two, not at
    /// all). Any other object, or text the compact reader refuses, takes the path of
    /// [`Judge::add`].
    pub fn add_held(&mut self, held: &Held) -> Result<(), serde_json::Error> {
        if self.pod_security_only && self.without_findings(held) {
            self.objects += 1;
            if !held.uid.is_empty() {
                self.owners.learn_held(held);
            }
            return Ok(());
        }
        self.add(serde_json::from_str(&held.object)?);
        Ok(())
    }

    /// Whether the object passes every Pod Security level its namespace has, proposed or
    /// running (so neither can find anything).
    fn without_findings(&self, held: &Held) -> bool {
        if !POD_KINDS.contains(&held.kind.as_str()) {
            return true;
        }
        let mut levels = std::iter::once(&self.proposed)
            .chain(self.running.as_ref())
            .filter_map(|d| d.pod_security.get(&held.namespace))
            .flatten()
            .peekable();
        if levels.peek().is_none() {
            return true;
        }
        match CompactPod::from_json(&held.object) {
            Ok(Some(pod)) => levels.all(|(lv, _)| pod.verdict(*lv).allowed()),
            Ok(None) => true,
            Err(_) => false,
        }
    }

    /// `policy: reason` for what the engine could not evaluate so far (the first few reasons).
    pub fn not_evaluable(&self) -> Vec<String> {
        self.reasons.iter().take(REASONS).cloned().collect()
    }

    /// Objects evaluated so far.
    pub fn objects(&self) -> i64 {
        self.objects
    }

    /// The top owner of an object seen: the object itself when nothing owns it (or its owner
    /// was never learnt).
    fn owner_of(&self, (namespace, uid, kind_name): &Seen) -> Workload {
        let owner = self.owners.top(uid).unwrap_or_else(|| {
            let (kind, name) = kind_name.split_once('/').unwrap_or((kind_name, ""));
            Owner {
                kind: kind.to_owned(),
                name: name.to_owned(),
            }
        });
        (namespace.clone(), owner)
    }

    /// Every finding, object by object: denials first, then warnings and audits, what an
    /// exception covers last; within each, by namespace, kind, name and policy. Owners are
    /// resolved here, once every object was added. At most `limit` are returned; the counts
    /// (denials, warnings and audits an exception does not cover) are of all of them.
    pub fn findings(&self, limit: usize) -> (Vec<ObjectFinding>, Counts) {
        let mut counts = Counts::default();
        let mut kept: Vec<(&Found, &String)> = Vec::with_capacity(self.found.len());
        for (found, message) in &self.found {
            let (_, action, excepted, _) = found;
            counts.total += 1;
            if !excepted {
                match action {
                    Action::Deny => counts.deny += 1,
                    Action::Warn => counts.warn += 1,
                    Action::Audit => counts.audit += 1,
                }
            }
            kept.push((found, message));
        }
        kept.sort_by_key(|((seen, action, excepted, policy), _)| {
            (
                *excepted,
                std::cmp::Reverse(*action),
                &seen.0,
                &seen.2,
                policy,
            )
        });
        let out = kept
            .into_iter()
            .take(limit)
            .map(|((seen, action, excepted, policy), message)| {
                let (_, owner) = self.owner_of(seen);
                let (kind, name) = seen.2.split_once('/').unwrap_or((&seen.2, ""));
                ObjectFinding {
                    kind: kind.to_owned(),
                    namespace: seen.0.clone(),
                    name: name.to_owned(),
                    owner: OwnerRef {
                        kind: owner.kind,
                        name: owner.name,
                    },
                    action: *action,
                    excepted: *excepted,
                    policy: policy.clone(),
                    message: message.clone(),
                }
            })
            .collect();
        (out, counts)
    }

    /// Group what was found by workload, and compare with what runs now.
    pub fn finish(self, partial: bool) -> Judgement {
        let owner_of = |seen: &Seen| self.owner_of(seen);
        let mut groups: BTreeMap<(Workload, Action, bool), Group> = BTreeMap::new();
        for ((seen, action, excepted, _), message) in &self.found {
            let group = groups
                .entry((owner_of(seen), *action, *excepted))
                .or_default();
            group.objects.insert(seen.2.clone());
            if group.message.is_empty() {
                group.message = message.clone();
            }
        }
        let mut denied_now: BTreeMap<Workload, Group> = BTreeMap::new();
        for (seen, message) in &self.denied_now {
            let group = denied_now.entry(owner_of(seen)).or_default();
            group.objects.insert(seen.2.clone());
            if group.message.is_empty() {
                group.message = message.clone();
            }
        }
        let mut out = Judgement {
            objects: self.objects,
            partial,
            ..Judgement::default()
        };
        let denied_next: BTreeSet<&Workload> = groups
            .keys()
            .filter(|(_, action, excepted)| *action == Action::Deny && !excepted)
            .map(|(workload, _, _)| workload)
            .collect();
        let row = |(namespace, owner): &Workload, action, excepted, change, group: &Group| {
            WorkloadImpact {
                namespace: namespace.clone(),
                owner_kind: owner.kind.clone(),
                owner_name: owner.name.clone(),
                action,
                excepted,
                change,
                objects: i64::try_from(group.objects.len()).unwrap_or(i64::MAX),
                examples: group.objects.iter().take(EXAMPLES).cloned().collect(),
                message: group.message.clone(),
            }
        };
        let mut workloads = Vec::new();
        for ((workload, action, excepted), group) in &groups {
            let change =
                if *action == Action::Deny && !excepted && !denied_now.contains_key(workload) {
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
            let key = |w: &WorkloadImpact| {
                (
                    w.excepted,
                    std::cmp::Reverse(w.action),
                    w.change,
                    w.namespace.clone(),
                    w.owner_kind.clone(),
                    w.owner_name.clone(),
                )
            };
            key(a).cmp(&key(b))
        });
        workloads.truncate(WORKLOADS_SHOWN);
        out.workloads = workloads;
        out.not_evaluable = self.reasons.into_iter().take(REASONS).collect();
        out
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::Mode;
    use crate::policies::Content;

    /// What `proposed` (the policy as it would be deployed) does to each of `objects` (one cluster's
    /// inventory, namespaces included), against what `running` (the version deployed there now, if
    /// any) does. `out_of_time` is asked now and then; once it says so, evaluation stops and the
    /// answer is marked partial.
    fn judge(
        proposed: Arc<Deployed>,
        running: Option<Arc<Deployed>>,
        objects: &[Value],
        now_ms: i64,
        out_of_time: &mut dyn FnMut() -> bool,
    ) -> Judgement {
        let namespaces = objects
            .iter()
            .filter(|o| o["kind"] == "Namespace")
            .cloned()
            .collect();
        let mut judge = Judge::new(proposed, running, namespaces, now_ms);
        // Owners are resolved at the end: an object's owner may come after it.
        for (i, object) in objects.iter().enumerate() {
            if i % 64 == 0 && out_of_time() {
                return judge.finish(true);
            }
            judge.add(object.clone());
        }
        judge.finish(false)
    }

    fn pod_security(level: &str) -> Arc<Deployed> {
        let content = Content {
            source: format!(
                "apiVersion: palisade.dev/v1alpha1\nkind: PodSecurityEntry\nmetadata: {{name: {level}}}\nspec: {{level: {level}, version: latest}}\n"
            ),
            ..Content::default()
        };
        let objects = crate::policies::ssr::render::desired_objects(
            &content,
            Mode::Enforce,
            &["team".to_owned()],
            &[],
        )
        .unwrap();
        let (deployed, errors) = Deployed::from_deployments(&[("p1".to_owned(), objects)]);
        assert!(errors.is_empty(), "{errors:?}");
        Arc::new(deployed)
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

    /// A template of our own that reads `data.inventory`: a Service whose selector another
    /// Service of its namespace already has.
    fn same_selector() -> Vec<Value> {
        let template: Value = serde_yaml_ng::from_str(
            r#"
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: k8ssameselector}
spec:
  crd: {spec: {names: {kind: K8sSameSelector}}}
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8ssameselector
        violation[{"msg": msg}] {
          svc := input.review.object
          other := data.inventory.namespace[svc.metadata.namespace]["v1"]["Service"][name]
          name != svc.metadata.name
          other.spec.selector == svc.spec.selector
          msg := sprintf("selector also used by %v", [name])
        }
"#,
        )
        .unwrap();
        let constraint = json!({"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sSameSelector",
            "metadata": {"name": "same"},
            "spec": {"enforcementAction": "deny", "match": {"kinds": [{"apiGroups": [""], "kinds": ["Service"]}]}}});
        vec![template, constraint]
    }

    #[test]
    fn referential_templates_see_the_inventory_as_data_inventory() {
        let manifests = same_selector();
        assert!(crate::impact::ssr::service::reads_inventory(&manifests));
        assert!(!crate::impact::ssr::service::reads_inventory(
            &manifests[1..]
        ));
        let (deployed, errors) = Deployed::from_deployments(&[("p1".to_owned(), manifests)]);
        assert!(errors.is_empty(), "{errors:?}");
        let deployed = Arc::new(deployed);
        let service = |name: &str, app: &str| {
            json!({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": name, "namespace": "team", "uid": format!("uid-{name}")},
                   "spec": {"selector": {"app": app}}})
        };
        let objects = vec![
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team", "uid": "ns"}}),
            service("web", "shop"),
            service("web-copy", "shop"),
            service("api", "api"),
        ];
        // Without the inventory nothing is known of other Services: nothing is found.
        let alone = judge(deployed.clone(), None, &objects, 1, &mut || false);
        assert_eq!(alone.deny, 0);
        // With it, the two Services that share a selector are each denied, naming the other.
        let mut judge = Judge::new(deployed, None, vec![objects[0].clone()], 1).with_inventory(
            palisade_engine::gatekeeper::Inventory::from_objects(&objects).unwrap(),
        );
        for object in &objects {
            judge.add(object.clone());
        }
        let found = judge.finish(false);
        assert_eq!(found.deny, 2, "{:?}", found.workloads);
        let messages: Vec<&str> = found.workloads.iter().map(|w| w.message.as_str()).collect();
        assert!(
            messages
                .iter()
                .any(|m| m.contains("selector also used by web-copy")),
            "{messages:?}"
        );
        assert!(
            messages
                .iter()
                .any(|m| m.contains("selector also used by web")),
            "{messages:?}"
        );
    }

    #[test]
    fn pods_are_denied_and_named_by_their_deployment_whose_template_is_warned() {
        let got = judge(pod_security("baseline"), None, &inventory(), 1, &mut || {
            false
        });
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
            pod_security("baseline"),
            Some(restricted),
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
    fn findings_name_each_object_its_workload_and_policy_and_count_past_the_limit() {
        let proposed = pod_security("baseline");
        let mut judge = Judge::new(proposed, None, Vec::new(), 1);
        // The Pods come before their owners: owners are resolved when findings are asked for.
        for object in inventory().into_iter().rev() {
            judge.add(object);
        }
        let (all, counts) = judge.findings(usize::MAX);
        // Two Pods denied (and audited); the Deployment and the ReplicaSet warned and audited.
        assert_eq!(
            (counts.deny, counts.warn, counts.audit, counts.total),
            (2, 2, 4, 8),
            "{all:#?}"
        );
        let first = &all[0];
        assert_eq!(
            (
                first.kind.as_str(),
                first.namespace.as_str(),
                first.name.as_str(),
                first.action
            ),
            ("Pod", "team", "web-1-a", Action::Deny)
        );
        assert_eq!(
            first.owner,
            OwnerRef {
                kind: "Deployment".into(),
                name: "web".into()
            }
        );
        assert_eq!(first.policy, "pod-security:baseline");
        assert!(first.message.contains("privileged"), "{}", first.message);
        assert!(!first.excepted);
        // Denials first, then warnings, then audits.
        let actions: Vec<Action> = all.iter().map(|f| f.action).collect();
        let mut sorted = actions.clone();
        sorted.sort_by_key(|a| std::cmp::Reverse(*a));
        assert_eq!(actions, sorted);
        // An object without an owner is its own workload.
        let deployment = all
            .iter()
            .find(|f| f.kind == "Deployment" && f.action == Action::Warn)
            .unwrap();
        assert_eq!(deployment.owner.name, "web");
        // A limit keeps the first findings; the counts stay exact.
        let (some, same) = judge.findings(3);
        assert_eq!(some, all[..3]);
        assert_eq!(same, counts);
        // Asking for findings changes nothing of the grouped answer.
        let grouped = judge.finish(false);
        assert_eq!((grouped.deny, grouped.warn, grouped.audit), (1, 1, 1));
    }

    /// The inventory of [`inventory`], the sample workloads of every kind (in `team` and in a
    /// system namespace) and odd objects.
    fn varied_inventory() -> Vec<Value> {
        let mut objects = inventory();
        for (i, mut object) in palisade_engine::sample::workloads(5, 400)
            .into_iter()
            .enumerate()
        {
            let namespace = if i % 10 == 0 { "kube-system" } else { "team" };
            object["metadata"]["namespace"] = json!(namespace);
            object["metadata"]["uid"] = json!(format!("sample-{i}"));
            objects.push(object);
        }
        let restricted = json!({"containers": [{"name": "c", "image": "i", "securityContext": {
            "runAsNonRoot": true, "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}}]});
        let mut injected = restricted.clone();
        injected["containers"][0]["securityContext"]["privileged"] = json!(true);
        objects.extend([
            owned("Deployment", "mesh", "md", None, restricted.clone()),
            owned("ReplicaSet", "mesh-1", "mr", Some(("Deployment", "mesh", "md")), restricted),
            owned("Pod", "mesh-1-a", "mp", Some(("ReplicaSet", "mesh-1", "mr")), injected),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "team", "uid": "c"}}),
            json!({"kind": "Pod", "metadata": {"name": "no-api-version", "namespace": "team", "uid": "x"}, "spec": {"hostPID": true}}),
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "odd", "namespace": "team", "uid": "y"}, "spec": {"containers": [null, 5, {"name": 3}]}}),
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": "m", "spec": {}}),
        ]);
        objects
    }

    #[test]
    fn from_text_the_judge_finds_exactly_what_it_finds_from_values() {
        let objects = varied_inventory();
        let namespaces: Vec<Value> = objects
            .iter()
            .filter(|o| o["kind"] == "Namespace")
            .cloned()
            .collect();
        let cases = [
            (pod_security("restricted"), None),
            (pod_security("baseline"), None),
            (pod_security("baseline"), Some(pod_security("restricted"))),
            (pod_security("restricted"), Some(pod_security("baseline"))),
        ];
        for (proposed, running) in cases {
            let new = || Judge::new(proposed.clone(), running.clone(), namespaces.clone(), 0);
            let (mut from_values, mut from_text) = (new(), new());
            assert!(from_text.pod_security_only);
            let mut passed_compact = 0;
            for object in &objects {
                let held = held_of(object);
                passed_compact += usize::from(from_text.without_findings(&held));
                from_values.add(object.clone());
                from_text.add_held(&held).unwrap();
            }
            assert!(passed_compact > 50, "{passed_compact}");
            assert!(passed_compact < objects.len(), "{passed_compact}");
            let (findings, counts) = from_values.findings(usize::MAX);
            assert_eq!((findings.clone(), counts), from_text.findings(usize::MAX));
            // A Pod unlike its template is named by the Deployment over its ReplicaSet, both of
            // which pass and so were learnt from the columns alone.
            let injected = findings.iter().find(|f| f.name == "mesh-1-a").unwrap();
            assert_eq!(
                (injected.owner.kind.as_str(), injected.owner.name.as_str()),
                ("Deployment", "mesh")
            );
            let (want, got) = (from_values.finish(false), from_text.finish(false));
            assert!(want.deny + want.warn > 0, "{want:?}");
            assert_eq!(want, got);
        }
        let mut judge = Judge::new(pod_security("restricted"), None, namespaces, 0);
        let text = |kind: &str, object: &str| Held {
            kind: kind.to_owned(),
            namespace: "team".to_owned(),
            object: object.to_owned(),
            ..held_of(&json!({}))
        };
        assert!(judge
            .add_held(&text("Pod", r#"{"kind": "Pod", "spec": {"#))
            .is_err());
        assert!(judge
            .add_held(&text("Pod", r#"{"kind": "Pod"} x"#))
            .is_err());
        // An object of a kind without a pod has no finding, and its text is not read.
        judge.add_held(&text("ConfigMap", "not read")).unwrap();
        assert_eq!(judge.objects(), 1);
    }

    /// `object` as the inventory holds it; one the keeper would not hold (no uid) as it is.
    fn held_of(object: &Value) -> Held {
        crate::inventory::ssr::changes::held(object.clone()).unwrap_or_else(|| Held {
            uid: String::new(),
            kind: object["kind"].as_str().unwrap_or_default().to_owned(),
            namespace: String::new(),
            name: String::new(),
            controller: None,
            object: object.to_string(),
        })
    }

    #[test]
    fn out_of_time_the_answer_is_partial() {
        let mut asked = 0;
        let got = judge(pod_security("baseline"), None, &inventory(), 1, &mut || {
            asked += 1;
            true
        });
        assert!(got.partial);
        assert_eq!(got.objects, 0);
        assert_eq!(asked, 1);
    }
}
