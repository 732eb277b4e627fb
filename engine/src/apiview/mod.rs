//! The object as the kube-apiserver's admission chain sees it on CREATE (and, below, on UPDATE
//! and DELETE): decoded into its typed form, defaulted, and prepared by its registry strategy —
//! what users write in a manifest is not what a policy sees in the cluster.
//!
//! For the built-in kinds below this follows Kubernetes v1.37.2 with its feature gates at their
//! defaults:
//!
//! - `v1`: Pod, Service, ConfigMap, Secret, Namespace, ServiceAccount, PersistentVolumeClaim;
//! - `apps/v1`: Deployment, ReplicaSet, StatefulSet, DaemonSet;
//! - `batch/v1`: Job, CronJob;
//! - `networking.k8s.io/v1`: NetworkPolicy, Ingress;
//! - `rbac.authorization.k8s.io/v1`: Role, ClusterRole, RoleBinding, ClusterRoleBinding;
//! - `policy/v1`: PodDisruptionBudget.
//!
//! What is applied:
//!
//! - decoding into the typed object (module `schema`, from the v1.37.2 types in `types.txt`):
//!   fields the type does not know are dropped at every depth, each with a note (the apiserver's
//!   default `fieldValidation` for such requests is `Warn`: it drops and warns), and a `null`
//!   field is dropped as the decoder drops it;
//! - the scheme's defaulting (`SetObjectDefaults_*`, pod templates included), quantities written
//!   as the apiserver writes them back ([`quantity`]), and `stringData` of a Secret merged into
//!   `data`;
//! - the registry strategy's `PrepareForCreate` (status reset, `generation: 1`, a Pod's phase and
//!   QoS class, a Job's generated selector, a DaemonSet's template generation annotation, a
//!   Namespace's finalizer);
//! - the mutating admission plugins on by default that change these kinds without reading the
//!   cluster: `Priority` on Pods (priority 0 and `PreemptLowerPriority` without a class, the
//!   value of a built-in `system-*-critical` class), `DefaultTolerationSeconds` on Pods (300 s
//!   for the `not-ready` and `unreachable` taints), `StorageObjectInUseProtection` on claims (the
//!   `kubernetes.io/pvc-protection` finalizer) — pod templates are not Pods and keep neither;
//! - encoding back as Go's `encoding/json` writes the typed object: an omitempty field at its
//!   zero value left out (`hostIPC: false`, `env: []`), a struct and a field without omitempty
//!   written even when empty (`resources: {}`, a StatefulSet's `serviceName: ""`), a pointer
//!   kept whatever its value (`automountServiceAccountToken: false`).
//!
//! What is refused, as the apiserver refuses it before admission ([`ViewError::Invalid`]): a label
//! or annotation value that is not a string, an invalid label value, a quantity that does not
//! parse or is negative, a container request above its limit (or, for extended resources and huge
//! pages, different from it or without one), a container without a name or an image, two
//! containers with the same name, probes or lifecycle hooks on an init container that is not a
//! sidecar, a volume mount naming no volume of the pod, Linux-only fields in a Windows pod,
//! HostProcess containers mixed with others or without the host network, a `sleep` hook longer
//! than the grace period, ephemeral containers on create, `activeDeadlineSeconds` or a restart
//! policy other than `Always` in a Deployment's, ReplicaSet's, StatefulSet's or DaemonSet's
//! template, a negative replica count, a replica count that is not an integer, a
//! PodDisruptionBudget with both `minAvailable` and `maxUnavailable`, a Service without ports
//! (unless headless or an ExternalName), an ExternalName Service with a cluster IP, a headless
//! NodePort or LoadBalancer Service; and, as the
//! `Priority` plugin refuses it, a Pod's `priority` that is not its class's. Only these common
//! cases: the rest of the apiserver's validation is not here.
//!
//! Not here: what the cluster decides (a Service's cluster IP and IP families, allocated as it is
//! stored), system metadata (`uid`, `creationTimestamp`, `managedFields`), the Job controller's UID
//! in its generated labels (a fixed placeholder, [`JOB_UID_PLACEHOLDER`]), the `PodScheduled`
//! condition of a Pod with scheduling gates (it carries the time), fields dropped because their
//! feature gate is off, pod-level resource defaulting, and admission that reads the cluster: a
//! priority class that is not built in or is the global default, `LimitRanger` (defaults from the
//! namespace's LimitRanges), `DefaultStorageClass`, `DefaultIngressClass`, `RuntimeClass`
//! (overhead), mutating webhooks and policies. A production cluster also runs `ServiceAccount`,
//! which the test bed this view is checked against turns off: it sets a Pod's
//! `serviceAccountName: default` and adds a projected token volume (`kube-api-access-<random>`)
//! mounted in every container; policies on Pods see those too.
//!
//! Every other object (custom resources, other kinds and versions) passes through unchanged.
//!
//! # Update and delete
//!
//! On UPDATE ([`update_view`]) admission sees the stored object as `oldObject` and the new one as
//! `object`. The stored object is taken to be the old manifest as the create view above made it
//! ([`into_stored_view`]; what the cluster chose when it stored it — UID, creation time, a
//! Service's allocated addresses — is not known, as on create). The new manifest is decoded,
//! defaulted and normalised as on create, with the update's preparation instead of the create's
//! (`BeforeUpdate` and each strategy's `PrepareForUpdate`):
//!
//! - the status is the stored one, whatever the manifest says;
//! - `metadata.generation` is the stored one, plus one when the spec changes (for Pods,
//!   workloads, Jobs, CronJobs, Ingresses, NetworkPolicies and PodDisruptionBudgets; a
//!   Deployment's annotations count too); a DaemonSet's template generation annotation is the
//!   stored one, plus one when its template changes;
//! - the UID and creation time are the stored object's; a Namespace keeps its finalizers; a
//!   Service keeps the cluster IP the old manifest gives it when the new one leaves it out; a Pod
//!   keeps its priority and preemption policy (`Priority`) and gets the default tolerations again
//!   (`DefaultTolerationSeconds`);
//! - what only a create does is not done: no `generation: 1`, no status reset, no protection
//!   finalizer on a claim (a manifest without it removes it), no create-only refusals (ephemeral
//!   containers, a priority given with its class);
//! - a Job's generated selector and template labels (they hold its UID, which no manifest knows)
//!   are the stored Job's when the new manifest leaves them out, as `kubectl apply`, `edit` and a
//!   `replace` of a fetched object send them back; a bare PUT of a manifest without them is
//!   refused by the apiserver (the selector and template are immutable).
//!
//! And the update refusals a user commonly meets ([`ViewError::Invalid`]): a Pod's spec beyond
//! its images, `activeDeadlineSeconds` (set or lowered), added tolerations, removed scheduling
//! gates (containers neither added nor removed); a Job's selector, template (a suspended Job that
//! never started may change its scheduling directives, template metadata and containers'
//! resources), completions (unless indexed, then only with its parallelism), completion mode and
//! failure and success policies; a Deployment's,
//! ReplicaSet's, DaemonSet's and StatefulSet's selector, a StatefulSet's claim templates, service
//! name and pod management policy; a Service's cluster IP (one the old manifest leaves out was
//! allocated: any address the new one gives is a change); a claim's spec but for a first volume
//! name or storage class (and, once bound, its storage request and attributes class); the data of
//! a ConfigMap or Secret stored `immutable`, and `immutable` itself; a Secret's type; a binding's
//! `roleRef`; the name. An old manifest the apiserver would not have created is refused with
//! `oldObject: ` before its message; it may leave out `apiVersion` and `kind` (they are the new
//! object's) but may not name another kind. Defaulting applies to the new manifest as written:
//! an image changed from `nginx` to `nginx:1.27` changes its defaulted pull policy too, which a
//! Pod may not change (the apiserver refuses it the same way); a Job given `parallelism` but no
//! `completions` no longer gets `completions: 1`. Not modelled on update: the node selector and
//! affinity a Pod with scheduling gates may add, and the allocated node ports a Service keeps.
//!
//! On DELETE admission sees no object and the stored one as `oldObject` ([`into_stored_view`]).
//!
//! Subresources (`pods/ephemeralcontainers` from `kubectl debug`, `status`, `scale`, …) are not
//! modelled: a request to one is evaluated as written.

mod apps;
mod batch;
mod core;
mod other;
pub mod quantity;
mod schema;
mod update;

use std::fmt;

use serde_json::{Map, Value};

/// The value written where a Job's UID goes in its generated selector and labels.
pub const JOB_UID_PLACEHOLDER: &str = "00000000-0000-0000-0000-000000000000";

/// The object as the apiserver's admission chain sees it after decoding and defaulting.
#[derive(Debug, Clone, PartialEq)]
pub struct AdmissionView {
    pub object: Value,
    /// What changed that a user would not expect (dropped fields), one sentence each.
    pub notes: Vec<String>,
}

/// Why the apiserver would refuse the object before admission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewError {
    /// `<field path>: <why>`, in the apiserver's words where it has them.
    Invalid(String),
}

impl fmt::Display for ViewError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ViewError::Invalid(why) => write!(f, "invalid: {why}"),
        }
    }
}

impl std::error::Error for ViewError {}

/// The admission view of `object` (see the module documentation).
///
/// # Errors
///
/// [`ViewError::Invalid`] when the apiserver would refuse the object before admission.
pub fn admission_view(object: &Value) -> Result<AdmissionView, ViewError> {
    if kind_of(object).is_none() {
        return Ok(AdmissionView {
            object: object.clone(),
            notes: Vec::new(),
        });
    }
    into_admission_view(object.clone())
}

/// [`admission_view`] of an object the caller gives away (no copy is made).
///
/// # Errors
///
/// As [`admission_view`].
pub fn into_admission_view(mut object: Value) -> Result<AdmissionView, ViewError> {
    let Some(kind) = kind_of(&object) else {
        return Ok(AdmissionView {
            object,
            notes: Vec::new(),
        });
    };
    let mut cx = Cx::default();
    if let Some(map) = object.as_object_mut() {
        strip_nulls(map);
        kind.apply(map, &mut cx, Op::Create)?;
    }
    Ok(AdmissionView {
        object,
        notes: cx.notes,
    })
}

/// What admission sees on an UPDATE: the new object as the apiserver prepares it for the update,
/// and the stored object it replaces.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateView {
    /// The new object (`object` of the admission request).
    pub object: Value,
    /// The stored object (`oldObject`).
    pub old_object: Value,
    /// What changed that a user would not expect, one sentence each (those of the stored object
    /// start with `oldObject: `).
    pub notes: Vec<String>,
}

/// The admission view of an update of `old_object` (a manifest, as it was created) by `object`
/// (the new manifest); see the module documentation.
///
/// # Errors
///
/// [`ViewError::Invalid`] when the apiserver would refuse the update before admission, or would
/// have refused to create `old_object` (then the message starts with `oldObject: `).
pub fn update_view(object: &Value, old_object: &Value) -> Result<UpdateView, ViewError> {
    into_update_view(object.clone(), old_object.clone())
}

/// [`update_view`] of objects the caller gives away.
///
/// # Errors
///
/// As [`update_view`].
pub fn into_update_view(object: Value, old_object: Value) -> Result<UpdateView, ViewError> {
    update::view(object, old_object)
}

/// The stored form of `object` (a manifest, as it was created): what admission sees as
/// `oldObject` on an UPDATE or a DELETE. It is the create view of the manifest, with a refusal
/// naming `oldObject`.
///
/// # Errors
///
/// [`ViewError::Invalid`] when the apiserver would have refused to create it.
pub fn into_stored_view(object: Value) -> Result<AdmissionView, ViewError> {
    let view = into_admission_view(object)
        .map_err(|ViewError::Invalid(why)| ViewError::Invalid(format!("oldObject: {why}")))?;
    Ok(AdmissionView {
        object: view.object,
        notes: view
            .notes
            .into_iter()
            .map(|note| format!("oldObject: {note}"))
            .collect(),
    })
}

/// Which write the object is prepared for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Create,
    Update,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Pod,
    Service,
    ConfigMap,
    Secret,
    Namespace,
    ServiceAccount,
    PersistentVolumeClaim,
    Deployment,
    ReplicaSet,
    StatefulSet,
    DaemonSet,
    Job,
    CronJob,
    NetworkPolicy,
    Ingress,
    Role,
    ClusterRole,
    RoleBinding,
    ClusterRoleBinding,
    PodDisruptionBudget,
}

fn kind_of(object: &Value) -> Option<Kind> {
    let api_version = object.get("apiVersion")?.as_str()?;
    let kind = object.get("kind")?.as_str()?;
    Some(match (api_version, kind) {
        ("v1", "Pod") => Kind::Pod,
        ("v1", "Service") => Kind::Service,
        ("v1", "ConfigMap") => Kind::ConfigMap,
        ("v1", "Secret") => Kind::Secret,
        ("v1", "Namespace") => Kind::Namespace,
        ("v1", "ServiceAccount") => Kind::ServiceAccount,
        ("v1", "PersistentVolumeClaim") => Kind::PersistentVolumeClaim,
        ("apps/v1", "Deployment") => Kind::Deployment,
        ("apps/v1", "ReplicaSet") => Kind::ReplicaSet,
        ("apps/v1", "StatefulSet") => Kind::StatefulSet,
        ("apps/v1", "DaemonSet") => Kind::DaemonSet,
        ("batch/v1", "Job") => Kind::Job,
        ("batch/v1", "CronJob") => Kind::CronJob,
        ("networking.k8s.io/v1", "NetworkPolicy") => Kind::NetworkPolicy,
        ("networking.k8s.io/v1", "Ingress") => Kind::Ingress,
        ("rbac.authorization.k8s.io/v1", "Role") => Kind::Role,
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => Kind::ClusterRole,
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => Kind::RoleBinding,
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => Kind::ClusterRoleBinding,
        ("policy/v1", "PodDisruptionBudget") => Kind::PodDisruptionBudget,
        _ => return None,
    })
}

impl Kind {
    /// The Go type of the kind (each is named as its kind).
    fn type_name(self) -> &'static str {
        match self {
            Kind::Pod => "Pod",
            Kind::Service => "Service",
            Kind::ConfigMap => "ConfigMap",
            Kind::Secret => "Secret",
            Kind::Namespace => "Namespace",
            Kind::ServiceAccount => "ServiceAccount",
            Kind::PersistentVolumeClaim => "PersistentVolumeClaim",
            Kind::Deployment => "Deployment",
            Kind::ReplicaSet => "ReplicaSet",
            Kind::StatefulSet => "StatefulSet",
            Kind::DaemonSet => "DaemonSet",
            Kind::Job => "Job",
            Kind::CronJob => "CronJob",
            Kind::NetworkPolicy => "NetworkPolicy",
            Kind::Ingress => "Ingress",
            Kind::Role => "Role",
            Kind::ClusterRole => "ClusterRole",
            Kind::RoleBinding => "RoleBinding",
            Kind::ClusterRoleBinding => "ClusterRoleBinding",
            Kind::PodDisruptionBudget => "PodDisruptionBudget",
        }
    }

    /// Decodes, defaults and prepares `object` for `op` (on an update, what the update keeps of
    /// the stored object is the caller's: see [`update`]).
    fn apply(self, object: &mut Map<String, Value>, cx: &mut Cx, op: Op) -> Result<(), ViewError> {
        schema::decode(object, self.type_name(), cx);
        metadata(object, "metadata")?;
        match self {
            Kind::Pod => core::pod(object, op),
            Kind::Service => core::service(object, op),
            Kind::ConfigMap => Ok(()),
            Kind::Secret => core::secret(object),
            Kind::Namespace => core::namespace(object),
            Kind::ServiceAccount => Ok(()),
            Kind::PersistentVolumeClaim => {
                let claim = match op {
                    Op::Create => core::Claim::Created,
                    Op::Update => core::Claim::Updated,
                };
                core::persistent_volume_claim(object, "", claim)
            }
            Kind::Deployment => apps::deployment(object),
            Kind::ReplicaSet => apps::replica_set(object),
            Kind::StatefulSet => apps::stateful_set(object),
            Kind::DaemonSet => apps::daemon_set(object),
            Kind::Job => batch::job(object, op),
            Kind::CronJob => batch::cron_job(object),
            Kind::NetworkPolicy => other::network_policy(object),
            Kind::Ingress => other::ingress(object),
            Kind::Role | Kind::ClusterRole => Ok(()),
            Kind::RoleBinding | Kind::ClusterRoleBinding => other::binding(object),
            Kind::PodDisruptionBudget => other::pod_disruption_budget(object),
        }?;
        schema::encode(object, self.type_name());
        Ok(())
    }
}

/// What the view collects on its way: the notes.
#[derive(Debug, Default)]
struct Cx {
    notes: Vec<String>,
}

impl Cx {
    /// Drops the fields of `map` the typed decoder does not know, with a note each (`path` is
    /// where `map` is, written as `a.b[0]`, nothing at the top).
    fn prune(
        &mut self,
        map: &mut Map<String, Value>,
        known: impl Fn(&str) -> bool,
        path: &dyn fmt::Display,
    ) {
        if map.keys().all(|k| known(k)) {
            return;
        }
        let unknown: Vec<String> = map.keys().filter(|k| !known(k)).cloned().collect();
        let path = path.to_string();
        for key in unknown {
            map.remove(&key);
            self.notes.push(format!(
                "unknown field {} dropped, as the apiserver drops it",
                join(&path, &key)
            ));
        }
    }
}

/// `path.key`, or `key` at the top.
fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn invalid(path: &str, why: impl fmt::Display) -> ViewError {
    ViewError::Invalid(format!("{path}: {why}"))
}

/// Removes `null` members, at every depth: the typed decoder reads them as absent.
fn strip_nulls(map: &mut Map<String, Value>) {
    if map.values().any(Value::is_null) {
        map.retain(|_, v| !v.is_null());
    }
    for value in map.values_mut() {
        strip_nulls_in(value);
    }
}

fn strip_nulls_in(value: &mut Value) {
    match value {
        Value::Object(map) => strip_nulls(map),
        Value::Array(items) => items.iter_mut().for_each(strip_nulls_in),
        _ => {}
    }
}

/// The object under `key`, created empty when absent (a non-object is left alone: `None`).
fn object_at<'a>(map: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Map<String, Value>> {
    map.entry(key)
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
}

/// Sets `key` when it is absent (the pointer was nil).
fn or_set(map: &mut Map<String, Value>, key: &str, value: impl Into<Value>) {
    if !map.contains_key(key) {
        map.insert(key.to_owned(), value.into());
    }
}

/// Sets `key` when it is absent or the empty string (a string field at its zero value).
fn or_set_str(map: &mut Map<String, Value>, key: &str, value: &str) {
    if map.get(key).is_none_or(|v| v.as_str() == Some("")) {
        map.insert(key.to_owned(), Value::from(value));
    }
}

/// Sets `key` when it is absent or zero (an integer field at its zero value).
fn or_set_int(map: &mut Map<String, Value>, key: &str, value: i64) {
    if map.get(key).is_none_or(|v| v.as_i64() == Some(0)) {
        map.insert(key.to_owned(), Value::from(value));
    }
}

/// Each object in the array at `key`.
fn each<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
) -> impl Iterator<Item = (usize, &'a mut Map<String, Value>)> {
    map.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, v)| v.as_object_mut().map(|m| (i, m)))
}

/// `metadata` at `key` (if present): unknown fields dropped, labels and annotations checked.
fn metadata(parent: &mut Map<String, Value>, path: &str) -> Result<(), ViewError> {
    let key = path.rsplit('.').next().unwrap_or(path);
    let Some(meta) = parent.get_mut(key).and_then(Value::as_object_mut) else {
        return Ok(());
    };
    for field in ["labels", "annotations"] {
        let Some(values) = meta.get(field).and_then(Value::as_object) else {
            continue;
        };
        for (name, value) in values {
            let Some(text) = value.as_str() else {
                return Err(invalid(
                    &format!("{path}.{field}.{name}"),
                    format!(
                        "cannot unmarshal {} into a string: {field} values must be strings (quote {value})",
                        json_type(value)
                    ),
                ));
            };
            if field == "labels" && !is_label_value(text) {
                return Err(invalid(
                    &format!("{path}.{field}"),
                    format!(
                        "Invalid value: {text:?}: a valid label must be an empty string or consist of \
                         alphanumeric characters, '-', '_' or '.', and must start and end with an \
                         alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used \
                         for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn is_label_value(text: &str) -> bool {
    if text.is_empty() {
        return true;
    }
    let bytes = text.as_bytes();
    text.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// `spec.replicas` (or another count) if present: an integer, not negative.
fn count(map: &Map<String, Value>, key: &str, path: &str) -> Result<(), ViewError> {
    let Some(value) = map.get(key) else {
        return Ok(());
    };
    let field = join(path, key);
    match value.as_i64() {
        Some(n) if n < 0 => Err(invalid(
            &field,
            format!("Invalid value: {n}: must be greater than or equal to 0"),
        )),
        Some(n) if i32::try_from(n).is_ok() => Ok(()),
        _ => Err(invalid(
            &field,
            format!(
                "cannot unmarshal {} {value} into an int32",
                json_type(value)
            ),
        )),
    }
}

/// The status a registry strategy leaves on create: these fields at zero, the rest cleared.
fn reset_status(object: &mut Map<String, Value>, zeros: &[&str]) {
    let status: Map<String, Value> = zeros
        .iter()
        .map(|k| ((*k).to_owned(), Value::from(0)))
        .collect();
    object.insert("status".into(), Value::Object(status));
}

fn set_generation(object: &mut Map<String, Value>) {
    if let Some(meta) = object_at(object, "metadata") {
        meta.insert("generation".into(), Value::from(1));
    }
}

#[cfg(test)]
mod tests;
