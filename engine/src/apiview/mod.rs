//! The object as the kube-apiserver's admission chain sees it on CREATE: decoded into its typed
//! form, defaulted, and prepared by its registry strategy — what users write in a manifest is not
//! what a policy sees in the cluster.
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
//! What is applied: the scheme's defaulting (`SetObjectDefaults_*`, pod templates included),
//! quantities written as the apiserver writes them back ([`quantity`]), the registry strategy's
//! `PrepareForCreate` (status reset, `generation: 1`, a Pod's phase and QoS class, a Job's
//! generated selector, a Namespace's finalizer), `stringData` of a Secret merged into `data`, and
//! fields the typed decoder does not know dropped — at the top of each kind, in `metadata`, and in
//! pod specs, their containers and the workload specs around them — each with a note (the
//! apiserver's default `fieldValidation` for such requests is `Warn`: it drops and warns). A `null`
//! field is dropped as the typed decoder drops it.
//!
//! What is refused, as the apiserver refuses it before admission ([`ViewError::Invalid`]): a label
//! or annotation value that is not a string, an invalid label value, a quantity that does not
//! parse or is negative, a container request above its limit (or, for extended resources and huge
//! pages, different from it or without one), a container without a name or an image, two
//! containers with the same name, a negative replica count, a replica count that is not an integer.
//! Only these common cases: the rest of the apiserver's validation is not here.
//!
//! Not here: what the cluster decides (a Service's cluster IP and IP families, allocated as it is
//! stored), system metadata (`uid`, `creationTimestamp`, `managedFields`), the Job controller's UID
//! in its generated labels (a fixed placeholder, [`JOB_UID_PLACEHOLDER`]), the `PodScheduled`
//! condition of a Pod with scheduling gates (it carries the time), fields dropped because their
//! feature gate is off, pod-level resource defaulting, and mutating admission plugins
//! (ServiceAccount, DefaultTolerationSeconds, Priority, LimitRanger …).
//!
//! Every other object (custom resources, other kinds and versions) passes through unchanged.

mod apps;
mod batch;
mod core;
mod other;
pub mod quantity;

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
        kind.apply(map, &mut cx)?;
    }
    Ok(AdmissionView {
        object,
        notes: cx.notes,
    })
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
    fn apply(self, object: &mut Map<String, Value>, cx: &mut Cx) -> Result<(), ViewError> {
        const WITH_SPEC: &[&str] = &["apiVersion", "kind", "metadata", "spec", "status"];
        let top: &[&str] = match self {
            Kind::ConfigMap => &[
                "apiVersion",
                "kind",
                "metadata",
                "immutable",
                "data",
                "binaryData",
            ],
            Kind::Secret => &[
                "apiVersion",
                "kind",
                "metadata",
                "immutable",
                "data",
                "stringData",
                "type",
            ],
            Kind::ServiceAccount => &[
                "apiVersion",
                "kind",
                "metadata",
                "secrets",
                "imagePullSecrets",
                "automountServiceAccountToken",
            ],
            Kind::Role => &["apiVersion", "kind", "metadata", "rules"],
            Kind::ClusterRole => &["apiVersion", "kind", "metadata", "rules", "aggregationRule"],
            Kind::RoleBinding | Kind::ClusterRoleBinding => {
                &["apiVersion", "kind", "metadata", "subjects", "roleRef"]
            }
            Kind::NetworkPolicy => &["apiVersion", "kind", "metadata", "spec"],
            _ => WITH_SPEC,
        };
        cx.prune(object, top, "");
        metadata(object, "metadata", cx)?;
        match self {
            Kind::Pod => core::pod(object, cx),
            Kind::Service => core::service(object, cx),
            Kind::ConfigMap => Ok(()),
            Kind::Secret => core::secret(object),
            Kind::Namespace => core::namespace(object),
            Kind::ServiceAccount => Ok(()),
            Kind::PersistentVolumeClaim => core::persistent_volume_claim(object, cx, "", false),
            Kind::Deployment => apps::deployment(object, cx),
            Kind::ReplicaSet => apps::replica_set(object, cx),
            Kind::StatefulSet => apps::stateful_set(object, cx),
            Kind::DaemonSet => apps::daemon_set(object, cx),
            Kind::Job => batch::job(object, cx),
            Kind::CronJob => batch::cron_job(object, cx),
            Kind::NetworkPolicy => other::network_policy(object),
            Kind::Ingress => other::ingress(object),
            Kind::Role | Kind::ClusterRole => Ok(()),
            Kind::RoleBinding | Kind::ClusterRoleBinding => other::binding(object),
            Kind::PodDisruptionBudget => other::pod_disruption_budget(object),
        }
    }
}

/// What the view collects on its way: the notes.
#[derive(Debug, Default)]
struct Cx {
    notes: Vec<String>,
}

impl Cx {
    /// Drops the fields of `map` the typed decoder does not know, with a note each.
    fn prune(&mut self, map: &mut Map<String, Value>, known: &[&str], path: &str) {
        if map.keys().all(|k| known.contains(&k.as_str())) {
            return;
        }
        let unknown: Vec<String> = map
            .keys()
            .filter(|k| !known.contains(&k.as_str()))
            .cloned()
            .collect();
        for key in unknown {
            map.remove(&key);
            self.notes.push(format!(
                "unknown field {} dropped, as the apiserver drops it",
                join(path, &key)
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

const OBJECT_META: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

/// `metadata` at `key` (if present): unknown fields dropped, labels and annotations checked.
fn metadata(parent: &mut Map<String, Value>, path: &str, cx: &mut Cx) -> Result<(), ViewError> {
    let key = path.rsplit('.').next().unwrap_or(path);
    let Some(meta) = parent.get_mut(key).and_then(Value::as_object_mut) else {
        return Ok(());
    };
    cx.prune(meta, OBJECT_META, path);
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
