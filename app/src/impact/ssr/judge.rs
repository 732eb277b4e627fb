//! What a policy would do to one cluster's objects, grouped by the workload that owns them. Pure:
//! the objects, the policies and the time come in; the caller keeps the time budget and says
//! whether the answer is partial.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use palisade_engine::bundle::Context;
use palisade_engine::cel::projection::Projection;
use palisade_engine::pss::{CompactPod, POD_KINDS};
use palisade_engine::AdmissionRequest;
use serde_json::Value;

use crate::impact::findings::{Counts, ObjectFinding, OwnerRef};
use crate::impact::{Change, WorkloadImpact, WORKLOADS_SHOWN};
use crate::inventory::ssr::changes::Held;
use crate::inventory::ssr::owners::{Owner, Owners};
use crate::inventory::ssr::text_at;
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

/// What the proposed and running policies say about one object: each finding as (action,
/// whether an exception covers it, policy, message), the reasons some policy could not be
/// evaluated, and the message of what runs now if it denies the object.
struct Said {
    findings: Vec<(Action, bool, String, String)>,
    reasons: Vec<String>,
    denied_now: Option<String>,
}

/// How many bytes of keys a [`Judge`] keeps answers under: beyond this, new contents are judged
/// each time. A fleet-wide impact judges every cluster at once, so this bounds what the answers
/// add per cluster.
const SAID_BYTES: usize = 4 << 20;

/// The key an answer about `object` is kept under: its JSON text without `metadata.name` and
/// `metadata.uid`, and without `metadata.labels` too when `without_labels`. `None` for an object
/// without a namespace, whose name can place it (a Namespace is where exceptions by namespace
/// look) and whose labels namespace selectors read.
fn content_key(object: &mut Value, without_labels: bool) -> Option<String> {
    let metadata = object.get_mut("metadata")?.as_object_mut()?;
    if metadata
        .get("namespace")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return None;
    }
    let mut left_out = vec![
        ("name", metadata.remove("name")),
        ("uid", metadata.remove("uid")),
    ];
    if without_labels {
        left_out.push(("labels", metadata.remove("labels")));
    }
    let key = serde_json::to_string(object).ok();
    let metadata = object["metadata"].as_object_mut()?;
    for (field, value) in left_out {
        if let Some(value) = value {
            metadata.insert(field.to_owned(), value);
        }
    }
    key
}

/// How a finding names its object: (namespace, uid, `Kind/name`).
fn seen(object: &Value) -> Seen {
    let text = |pointer: &str| text_at(object, pointer).to_owned();
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
    /// What the proposed and running policies can read of an object: an object held as text is
    /// read only that far.
    reads: Projection,
    /// By kind, whether the proposed or running policies could find anything about an object of
    /// that kind (see [`Deployed::may_judge_kind`]), learnt as kinds come.
    judged_kinds: HashMap<String, bool>,
    /// When neither the proposed nor the running policies read which object they judge (see
    /// [`Deployed::reads_identity`]): what they said, by what an object holds but for its name
    /// and uid (see [`content_key`]). The copies of one pod template are judged once.
    said: Option<HashMap<String, Arc<Said>>>,
    /// Neither reads an object's labels either (see [`Deployed::reads_labels`]): they are left
    /// out of the key as well.
    said_without_labels: bool,
    /// The bytes of keys `said` may still take (at first [`SAID_BYTES`]).
    said_room: usize,
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
        let mut reads = proposed.object_reads();
        if let Some(running) = &running {
            reads.merge(&running.object_reads());
        }
        let deployed = || std::iter::once(&proposed).chain(running.as_ref());
        let by_content = deployed().all(|d| !d.reads_identity());
        let said_without_labels = deployed().all(|d| !d.reads_labels());
        Judge {
            proposed,
            running,
            pod_security_only,
            reads,
            judged_kinds: HashMap::new(),
            said: by_content.then(HashMap::new),
            said_without_labels,
            said_room: SAID_BYTES,
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
        self.evaluate(object);
    }

    /// Room for `objects` more objects' owners, learnt without growing as they arrive.
    pub fn reserve(&mut self, objects: usize) {
        self.owners.reserve(objects);
    }

    /// [`Judge::add`] once the object is counted and its owner learnt. Where the policies judge
    /// by content alone, an object that holds what one judged before (but for its name and uid)
    /// is told the same without being judged again.
    fn evaluate(&mut self, mut object: Value) {
        let key = if self.said.is_some() {
            content_key(&mut object, self.said_without_labels)
        } else {
            None
        };
        let known = key
            .as_ref()
            .and_then(|key| self.said.as_ref()?.get(key))
            .cloned();
        if let Some(said) = known {
            self.record(&object, &said);
            return;
        }
        // What the engine cannot read as a request (no kind or apiVersion) has no findings.
        let Ok(request) = AdmissionRequest::create(object) else {
            return;
        };
        let said = Arc::new(self.judge_request(&request));
        if let (Some(key), Some(said_before)) = (key, self.said.as_mut()) {
            if key.len() <= self.said_room {
                self.said_room -= key.len();
                said_before.insert(key, Arc::clone(&said));
            }
        }
        self.record(request.object.as_ref().unwrap_or(&Value::Null), &said);
    }

    /// What the proposed and running policies say about one request.
    fn judge_request(&self, request: &AdmissionRequest) -> Said {
        let judged = self
            .proposed
            .judge_request(request, &self.context, self.now_ms);
        let denied_now = self.running.as_ref().and_then(|running| {
            running
                .judge_request(request, &self.context, self.now_ms)
                .findings
                .into_iter()
                .find(|(f, excepted)| f.action == Action::Deny && !excepted)
                .map(|(f, _)| f.message)
        });
        // A request that is denied carries no warning of the same policy besides the denial.
        let denied: BTreeSet<&str> = judged
            .findings
            .iter()
            .filter(|(f, _)| f.action == Action::Deny)
            .map(|(f, _)| f.policy.as_str())
            .collect();
        let findings = judged
            .findings
            .iter()
            .filter(|(f, _)| !(f.action == Action::Warn && denied.contains(f.policy.as_str())))
            .map(|(f, excepted)| (f.action, *excepted, f.policy.clone(), f.message.clone()))
            .collect();
        Said {
            findings,
            reasons: judged.not_evaluable,
            denied_now,
        }
    }

    /// Keep what was said about `object`.
    fn record(&mut self, object: &Value, said: &Said) {
        self.reasons.extend(said.reasons.iter().cloned());
        if said.findings.is_empty() && said.denied_now.is_none() {
            return;
        }
        let seen = seen(object);
        for (action, excepted, policy, message) in &said.findings {
            self.found
                .entry((seen.clone(), *action, *excepted, policy.clone()))
                .or_insert_with(|| message.clone());
        }
        if let Some(message) = &said.denied_now {
            self.denied_now
                .entry(seen)
                .or_insert_with(|| message.clone());
        }
    }

    /// [`Judge::add`] from an object as the inventory holds it; text that is not JSON is an
    /// error. Its owner is learnt from the inventory's columns, not from its text.
    ///
    /// An object of a kind that none of the policies can match has no finding: it is only
    /// counted, and its text is not read. Where only Pod Security is deployed (proposed and
    /// running), an object without a pod, in a namespace without a level, or whose pod passes
    /// every level its namespace is labelled with, has no finding whatever the mode: it is only
    /// counted, and its text is read only in the compact Pod form (or, for the first two, not at
    /// all). Any other object, or text the compact reader refuses, is evaluated as [`Judge::add`]
    /// evaluates it, read only as far as the policies can read it (see
    /// [`Deployed::object_reads`]).
    pub fn add_held(&mut self, held: &Held) -> Result<(), serde_json::Error> {
        let object = if !self.may_judge_kind(&held.kind)
            || (self.pod_security_only && self.without_findings(held))
        {
            None
        } else {
            Some(self.reads.read(&held.object)?)
        };
        self.objects += 1;
        self.owners.learn_held(held);
        if let Some(object) = object {
            self.evaluate(object);
        }
        Ok(())
    }

    /// Whether the proposed or the running policies could find anything about an object of
    /// `kind`.
    fn may_judge_kind(&mut self, kind: &str) -> bool {
        if let Some(known) = self.judged_kinds.get(kind) {
            return *known;
        }
        let may = std::iter::once(&self.proposed)
            .chain(self.running.as_ref())
            .any(|deployed| deployed.may_judge_kind(kind));
        self.judged_kinds.insert(kind.to_owned(), may);
        may
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
mod tests;
