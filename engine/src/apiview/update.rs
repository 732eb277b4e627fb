//! UPDATE: the new manifest decoded and defaulted as on create, then prepared by the registry's
//! update path against the stored object (the old manifest's create view) — `BeforeUpdate` and
//! each strategy's `PrepareForUpdate` — and checked by the update validation a user commonly
//! meets (immutable fields).

use serde_json::{Map, Value};

use super::{
    into_stored_view, invalid, join, kind_of, object_at, strip_nulls, Cx, Kind, Op, UpdateView,
    ViewError,
};

/// The template labels the Job strategy generates on create (two of them carry the Job's UID).
const JOB_GENERATED_LABELS: &[&str] = &[
    "job-name",
    "batch.kubernetes.io/job-name",
    "controller-uid",
    "batch.kubernetes.io/controller-uid",
];

pub(super) fn view(mut object: Value, mut old: Value) -> Result<UpdateView, ViewError> {
    let Some(kind) = kind_of(&object) else {
        return Ok(UpdateView {
            object,
            old_object: old,
            notes: Vec::new(),
        });
    };
    // A test case's old object may leave out its type: it is the new object's.
    if let Some(map) = old.as_object_mut() {
        for key in ["apiVersion", "kind"] {
            if !map.contains_key(key) {
                map.insert(key.to_owned(), object[key].clone());
            }
        }
    }
    if kind_of(&old) != Some(kind) {
        return Err(invalid(
            "oldObject",
            format!(
                "is a {} {}, the object a {} {}: an update keeps the kind",
                old["apiVersion"].as_str().unwrap_or("?"),
                old["kind"].as_str().unwrap_or("?"),
                object["apiVersion"].as_str().unwrap_or_default(),
                object["kind"].as_str().unwrap_or_default()
            ),
        ));
    }
    let stored = into_stored_view(old)?;
    let mut notes = stored.notes;
    let (Some(map), Some(old_map)) = (object.as_object_mut(), stored.object.as_object()) else {
        return Err(invalid("object", "must be an object"));
    };
    strip_nulls(map);
    carry_generated(kind, map, old_map);
    let mut cx = Cx::default();
    kind.apply(map, &mut cx, Op::Update)?;
    prepare(kind, map, old_map);
    validate(kind, map, old_map)?;
    notes.extend(cx.notes);
    Ok(UpdateView {
        object,
        old_object: stored.object,
        notes,
    })
}

/// What a client sends back of what the apiserver generated and a manifest cannot know: a Job's
/// generated selector and template labels (they hold its UID), when the manifest leaves them out
/// and does not choose its own selector. A PUT without them is refused (the selector and the
/// template are immutable); `kubectl apply`, `edit` and `replace` of a fetched object send them.
fn carry_generated(kind: Kind, new: &mut Map<String, Value>, old: &Map<String, Value>) {
    if kind != Kind::Job {
        return;
    }
    let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if spec.get("manualSelector").and_then(Value::as_bool) == Some(true) {
        return;
    }
    let old_spec = old.get("spec");
    if !spec.contains_key("selector") {
        if let Some(selector) = old_spec.and_then(|s| s.get("selector")) {
            spec.insert("selector".into(), selector.clone());
        }
    }
    let old_labels = old_spec
        .and_then(|s| s.pointer("/template/metadata/labels"))
        .and_then(Value::as_object);
    let Some(old_labels) = old_labels else {
        return;
    };
    let Some(labels) = object_at(spec, "template")
        .and_then(|t| object_at(t, "metadata"))
        .and_then(|m| object_at(m, "labels"))
    else {
        return;
    };
    for key in JOB_GENERATED_LABELS {
        if let (false, Some(value)) = (labels.contains_key(*key), old_labels.get(*key)) {
            labels.insert((*key).to_owned(), value.clone());
        }
    }
}

/// The kinds whose status an update cannot set (the strategy keeps the stored one).
fn keeps_status(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Pod
            | Kind::Service
            | Kind::Namespace
            | Kind::PersistentVolumeClaim
            | Kind::Deployment
            | Kind::ReplicaSet
            | Kind::StatefulSet
            | Kind::DaemonSet
            | Kind::Job
            | Kind::CronJob
            | Kind::Ingress
            | Kind::PodDisruptionBudget
    )
}

/// `BeforeUpdate` and the strategies' `PrepareForUpdate` (with the mutating admission that reads
/// the stored object: `Priority` keeps a Pod's priority).
fn prepare(kind: Kind, new: &mut Map<String, Value>, old: &Map<String, Value>) {
    let old_meta = old.get("metadata").and_then(Value::as_object);
    let old_field = |key: &str| old_meta.and_then(|m| m.get(key)).cloned();
    let generation = old_field("generation")
        .and_then(|g| g.as_i64())
        .unwrap_or(0);
    if let Some(meta) = object_at(new, "metadata") {
        if let (false, Some(uid)) = (meta.contains_key("uid"), old_field("uid")) {
            meta.insert("uid".into(), uid);
        }
        match old_field("creationTimestamp") {
            Some(time) => meta.insert("creationTimestamp".into(), time),
            None => meta.remove("creationTimestamp"),
        };
    }

    let old_spec = old.get("spec").and_then(Value::as_object);
    if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
        match kind {
            Kind::Pod => {
                for key in ["priority", "preemptionPolicy"] {
                    if let (false, Some(value)) =
                        (spec.contains_key(key), old_spec.and_then(|s| s.get(key)))
                    {
                        spec.insert(key.to_owned(), value.clone());
                    }
                }
            }
            Kind::Namespace => {
                match old_spec.and_then(|s| s.get("finalizers")) {
                    Some(finalizers) => spec.insert("finalizers".into(), finalizers.clone()),
                    None => spec.remove("finalizers"),
                };
            }
            Kind::Service => {
                if let Some(old_spec) = old_spec {
                    service_fields(spec, old_spec);
                }
            }
            _ => {}
        }
    }

    if keeps_status(kind) {
        match old.get("status") {
            Some(status) => new.insert("status".into(), status.clone()),
            None => new.remove("status"),
        };
    }

    let spec_changed = !same(new.get("spec"), old.get("spec"));
    let bumped = match kind {
        Kind::Pod
        | Kind::ReplicaSet
        | Kind::StatefulSet
        | Kind::Job
        | Kind::CronJob
        | Kind::Ingress
        | Kind::NetworkPolicy
        | Kind::PodDisruptionBudget => spec_changed,
        Kind::Deployment => {
            let annotations =
                |o: &Map<String, Value>| o.get("metadata")?.get("annotations").cloned();
            spec_changed || !same(annotations(new).as_ref(), annotations(old).as_ref())
        }
        Kind::DaemonSet => {
            let template_changed = !same(
                new.get("spec").and_then(|s| s.get("template")),
                old.get("spec").and_then(|s| s.get("template")),
            );
            daemon_set_template_generation(new, old, template_changed);
            spec_changed
        }
        _ => false,
    };
    if let Some(meta) = object_at(new, "metadata") {
        let generation = generation + i64::from(bumped);
        if generation == 0 {
            meta.remove("generation");
        } else {
            meta.insert("generation".into(), Value::from(generation));
        }
    }
}

/// A DaemonSet's template generation (its `deprecated.daemonset.template.generation`
/// annotation) is the stored one, plus one when the template changes: what the manifest writes
/// there is not taken.
fn daemon_set_template_generation(
    new: &mut Map<String, Value>,
    old: &Map<String, Value>,
    template_changed: bool,
) {
    const KEY: &str = "deprecated.daemonset.template.generation";
    let stored = old
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(KEY))
        .and_then(Value::as_str)
        .and_then(|g| g.parse::<i64>().ok())
        .unwrap_or(0);
    let generation = stored + i64::from(template_changed);
    if let Some(annotations) = object_at(new, "metadata").and_then(|m| object_at(m, "annotations"))
    {
        annotations.insert(KEY.into(), Value::from(generation.to_string()));
    }
}

/// What a Service's update keeps of the stored one and what it drops with a change of type: the
/// cluster IP the new manifest leaves out is kept (the registry patches allocated values back);
/// the fields of the old type that the new one has no use for are dropped when the manifest
/// leaves them as they were (a cluster IP for an ExternalName, `allocateLoadBalancerNodePorts`
/// and `loadBalancerClass` off a LoadBalancer, `externalTrafficPolicy` when no longer reachable
/// from outside).
fn service_fields(spec: &mut Map<String, Value>, old: &Map<String, Value>) {
    let kind = |s: &Map<String, Value>| {
        s.get("type")
            .and_then(Value::as_str)
            .unwrap_or("ClusterIP")
            .to_owned()
    };
    let (new_kind, old_kind) = (kind(spec), kind(old));
    let external = |s: &Map<String, Value>, kind: &str| {
        matches!(kind, "LoadBalancer" | "NodePort")
            || (kind == "ClusterIP"
                && s.get("externalIPs")
                    .and_then(Value::as_array)
                    .is_some_and(|ips| !ips.is_empty()))
    };
    let drop_if_same = |spec: &mut Map<String, Value>, keys: &[&str]| {
        if keys.iter().all(|k| same(spec.get(*k), old.get(*k))) {
            for key in keys {
                spec.remove(*key);
            }
        }
    };
    if needs_cluster_ip(spec) && needs_cluster_ip(old) {
        for key in ["clusterIP", "clusterIPs"] {
            let unset = spec.get(key).is_none_or(is_empty);
            if let (true, Some(value)) = (unset, old.get(key)) {
                spec.insert(key.to_owned(), value.clone());
            }
        }
    }
    if needs_cluster_ip(old) && !needs_cluster_ip(spec) {
        drop_if_same(spec, &["clusterIP", "clusterIPs"]);
        drop_if_same(spec, &["ipFamilies"]);
        drop_if_same(spec, &["ipFamilyPolicy"]);
    }
    if old_kind == "LoadBalancer" && new_kind != "LoadBalancer" {
        let both = spec.contains_key("allocateLoadBalancerNodePorts")
            && old.contains_key("allocateLoadBalancerNodePorts");
        if both {
            drop_if_same(spec, &["allocateLoadBalancerNodePorts"]);
        }
        drop_if_same(spec, &["loadBalancerClass"]);
    }
    if external(old, &old_kind) && !external(spec, &new_kind) {
        drop_if_same(spec, &["externalTrafficPolicy"]);
    }
}

fn needs_cluster_ip(spec: &Map<String, Value>) -> bool {
    spec.get("type").and_then(Value::as_str) != Some("ExternalName")
}

/// The update validation a user commonly meets.
fn validate(
    kind: Kind,
    new: &Map<String, Value>,
    old: &Map<String, Value>,
) -> Result<(), ViewError> {
    let name = |o: &Map<String, Value>| o.get("metadata")?.get("name").cloned();
    if let (Some(new_name), Some(old_name)) = (name(new), name(old)) {
        if new_name != old_name {
            return Err(immutable("metadata.name", &new_name));
        }
    }
    let empty = Map::new();
    let spec = |o: &'_ Map<String, Value>| -> Map<String, Value> {
        o.get("spec")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_else(|| empty.clone())
    };
    let (new_spec, old_spec) = (spec(new), spec(old));
    let fixed =
        |fields: &[&str], path: &str, new: &Map<String, Value>, old: &Map<String, Value>| {
            for field in fields {
                if !same(new.get(*field), old.get(*field)) {
                    let value = new.get(*field).cloned().unwrap_or(Value::Null);
                    return Err(immutable(&join(path, field), &value));
                }
            }
            Ok(())
        };
    match kind {
        Kind::Pod => pod(&new_spec, &old_spec),
        Kind::Deployment | Kind::ReplicaSet | Kind::DaemonSet => {
            fixed(&["selector"], "spec", &new_spec, &old_spec)
        }
        Kind::StatefulSet => fixed(
            &[
                "selector",
                "volumeClaimTemplates",
                "serviceName",
                "podManagementPolicy",
            ],
            "spec",
            &new_spec,
            &old_spec,
        ),
        Kind::Job => job(&new_spec, &old_spec),
        Kind::Service => {
            super::core::check_service(&new_spec)?;
            service(&new_spec, &old_spec)
        }
        Kind::PersistentVolumeClaim => claim(new, old),
        Kind::ConfigMap => frozen(new, old, &["data", "binaryData"]),
        Kind::Secret => {
            fixed(&["type"], "", new, old)?;
            frozen(new, old, &["data"])
        }
        Kind::RoleBinding | Kind::ClusterRoleBinding => {
            if same(new.get("roleRef"), old.get("roleRef")) {
                Ok(())
            } else {
                let value = new.get("roleRef").cloned().unwrap_or(Value::Null);
                Err(immutable("roleRef", &value))
            }
        }
        _ => Ok(()),
    }
}

fn immutable(path: &str, value: &Value) -> ViewError {
    invalid(
        path,
        format!("Invalid value: {}: field is immutable", shown(value)),
    )
}

/// A value in a message: scalars as they are, lists and objects abbreviated.
fn shown(value: &Value) -> String {
    match value {
        Value::Array(_) => "[…]".into(),
        Value::Object(_) => "{…}".into(),
        other => other.to_string(),
    }
}

/// The fields of a Pod's spec an update may change: the images, `activeDeadlineSeconds` (set, or
/// lowered), tolerations (added, or their `tolerationSeconds` changed), scheduling gates
/// (removed), and a negative grace period set to 1. Every other change is refused.
fn pod(new: &Map<String, Value>, old: &Map<String, Value>) -> Result<(), ViewError> {
    const UPDATABLE: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,\
        `spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),\
        `spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";
    let list = |spec: &Map<String, Value>, key: &str| -> Vec<Value> {
        spec.get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    for key in ["containers", "initContainers"] {
        if list(new, key).len() != list(old, key).len() {
            return Err(invalid(
                &format!("spec.{key}"),
                "Forbidden: pod updates may not add or remove containers",
            ));
        }
    }
    let deadline = |spec: &Map<String, Value>| spec.get("activeDeadlineSeconds")?.as_i64();
    match (deadline(new), deadline(old)) {
        (Some(n), _) if n < 0 => {
            return Err(invalid(
                "spec.activeDeadlineSeconds",
                format!("Invalid value: {n}: must be between 0 and 2147483647, inclusive"),
            ))
        }
        (Some(n), Some(o)) if o < n => {
            return Err(invalid(
                "spec.activeDeadlineSeconds",
                format!("Invalid value: {n}: must be less than or equal to previous value"),
            ))
        }
        (None, Some(_)) => {
            return Err(invalid(
                "spec.activeDeadlineSeconds",
                "Invalid value: \"null\": must not update from a positive integer to nil value",
            ))
        }
        _ => {}
    }
    let without_seconds = |t: &Value| {
        let mut t = t.clone();
        if let Some(map) = t.as_object_mut() {
            map.remove("tolerationSeconds");
        }
        t
    };
    let new_tolerations: Vec<Value> = list(new, "tolerations")
        .iter()
        .map(without_seconds)
        .collect();
    for toleration in list(old, "tolerations") {
        if !new_tolerations.contains(&without_seconds(&toleration)) {
            return Err(invalid(
                "spec.tolerations",
                "Forbidden: existing toleration can not be modified except its tolerationSeconds",
            ));
        }
    }
    let gate_name = |g: &Value| g.get("name").and_then(Value::as_str).map(str::to_owned);
    let old_gates: Vec<String> = list(old, "schedulingGates")
        .iter()
        .filter_map(gate_name)
        .collect();
    for (i, gate) in list(new, "schedulingGates").iter().enumerate() {
        let name = gate_name(gate).unwrap_or_default();
        if !old_gates.contains(&name) {
            return Err(invalid(
                &format!("spec.schedulingGates[{i}].name"),
                format!(
                    "Forbidden: only deletion is allowed, but found new scheduling gate '{name}'"
                ),
            ));
        }
    }

    let mut munged = new.clone();
    for key in ["containers", "initContainers"] {
        let old_list = list(old, key);
        if let Some(items) = munged.get_mut(key).and_then(Value::as_array_mut) {
            for (item, old_item) in items.iter_mut().zip(&old_list) {
                if let (Some(item), Some(image)) = (item.as_object_mut(), old_item.get("image")) {
                    item.insert("image".into(), image.clone());
                }
            }
        }
    }
    for key in ["activeDeadlineSeconds", "schedulingGates", "tolerations"] {
        match old.get(key) {
            Some(value) => munged.insert(key.to_owned(), value.clone()),
            None => munged.remove(key),
        };
    }
    let grace = |spec: &Map<String, Value>| spec.get("terminationGracePeriodSeconds")?.as_i64();
    if grace(old).is_some_and(|g| g < 0) && grace(&munged) == Some(1) {
        if let Some(value) = old.get("terminationGracePeriodSeconds") {
            munged.insert("terminationGracePeriodSeconds".into(), value.clone());
        }
    }
    if same(
        Some(&Value::Object(munged)),
        Some(&Value::Object(old.clone())),
    ) {
        Ok(())
    } else {
        Err(invalid(
            "spec",
            format!("Forbidden: pod updates may not change fields other than {UPDATABLE}"),
        ))
    }
}

/// A Job's selector, pod template (a suspended Job that never started may change its scheduling
/// directives, the template's labels and annotations and its containers' resources), completions (unless indexed: then
/// only with parallelism), completion mode and failure and success policies are immutable.
fn job(new: &Map<String, Value>, old: &Map<String, Value>) -> Result<(), ViewError> {
    let changed = |key: &str| !same(new.get(key), old.get(key));
    let value = |key: &str| new.get(key).cloned().unwrap_or(Value::Null);
    if changed("selector") {
        return Err(immutable("spec.selector", &value("selector")));
    }
    let mut old_template = old.get("template").cloned().unwrap_or(Value::Null);
    let new_template = new.get("template").cloned().unwrap_or(Value::Null);
    // Suspended and never started (the stored status says nothing of a start): the scheduling
    // directives, the template's labels and annotations and the containers' resources may change
    // (`MutableSchedulingDirectivesForSuspendedJobs`, `MutablePodResourcesForSuspendedJobs`, on
    // by default), and then only the template's spec is compared.
    let suspended = old.get("suspend").and_then(Value::as_bool) == Some(true);
    if !suspended {
        if !same(new.get("template"), Some(&old_template)) {
            return Err(immutable("spec.template", &value("template")));
        }
    } else {
        if let Some(spec) = old_template.get_mut("spec").and_then(Value::as_object_mut) {
            let new_spec = new_template.get("spec");
            for key in ["nodeSelector", "tolerations", "schedulingGates"] {
                match new_spec.and_then(|s| s.get(key)) {
                    Some(value) => spec.insert(key.to_owned(), value.clone()),
                    None => spec.remove(key),
                };
            }
            let node_affinity = new_spec
                .and_then(|s| s.get("affinity"))
                .and_then(|a| a.get("nodeAffinity"))
                .cloned();
            if let Some(affinity) = object_at(spec, "affinity") {
                match node_affinity {
                    Some(value) => affinity.insert("nodeAffinity".into(), value),
                    None => affinity.remove("nodeAffinity"),
                };
            }
            for list in ["containers", "initContainers"] {
                let new_list = new_spec
                    .and_then(|s| s.get(list))
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let Some(old_list) = spec.get_mut(list).and_then(Value::as_array_mut) else {
                    continue;
                };
                if old_list.len() != new_list.len() {
                    continue;
                }
                for (old_item, new_item) in old_list.iter_mut().zip(&new_list) {
                    let Some(old_item) = old_item.as_object_mut() else {
                        continue;
                    };
                    if old_item.get("name") != new_item.get("name") {
                        continue;
                    }
                    match new_item.get("resources") {
                        Some(value) => old_item.insert("resources".into(), value.clone()),
                        None => old_item.remove("resources"),
                    };
                }
            }
        }
        if !same(new_template.get("spec"), old_template.get("spec")) {
            let spec = new_template.get("spec").cloned().unwrap_or(Value::Null);
            return Err(immutable("spec.template.spec", &spec));
        }
    }
    let indexed = new.get("completionMode").and_then(Value::as_str) == Some("Indexed");
    if changed("completions") {
        if !indexed {
            return Err(immutable("spec.completions", &value("completions")));
        }
        if new.get("completions") != new.get("parallelism") {
            return Err(invalid(
                "spec.completions",
                format!(
                    "Invalid value: {}: can only be modified in tandem with spec.parallelism",
                    value("completions")
                ),
            ));
        }
    }
    for key in [
        "completionMode",
        "podFailurePolicy",
        "backoffLimitPerIndex",
        "managedBy",
        "successPolicy",
    ] {
        if changed(key) {
            return Err(immutable(&format!("spec.{key}"), &value(key)));
        }
    }
    Ok(())
}

/// A Service's cluster IP may not change once set. One the manifest of the stored Service leaves
/// out was allocated by the cluster: any address the new manifest gives is a change.
fn service(new: &Map<String, Value>, old: &Map<String, Value>) -> Result<(), ViewError> {
    if !needs_cluster_ip(new) || !needs_cluster_ip(old) {
        return Ok(());
    }
    let ip = |spec: &Map<String, Value>| {
        spec.get("clusterIP")
            .and_then(Value::as_str)
            .filter(|ip| !ip.is_empty())
            .map(str::to_owned)
    };
    match (ip(new), ip(old)) {
        (Some(new_ip), old_ip) if Some(&new_ip) != old_ip.as_ref() => Err(invalid(
            "spec.clusterIPs[0]",
            format!("Invalid value: {new_ip:?}: may not change once set"),
        )),
        _ => Ok(()),
    }
}

/// A claim's spec is immutable, but for its volume name (set once), a storage class set where
/// there was none, and, once bound, its storage request and volume attributes class.
fn claim(new: &Map<String, Value>, old: &Map<String, Value>) -> Result<(), ViewError> {
    let mut new_spec = new
        .get("spec")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let old_spec = old
        .get("spec")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let take_old = |key: &str, spec: &mut Map<String, Value>| match old_spec.get(key) {
        Some(value) => spec.insert(key.to_owned(), value.clone()),
        None => spec.remove(key),
    };
    if old_spec.get("volumeName").is_none_or(is_empty) {
        take_old("volumeName", &mut new_spec);
    }
    let annotated = old
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get("volume.beta.kubernetes.io/storage-class"))
        .is_some();
    let class_set = new_spec
        .get("storageClassName")
        .and_then(Value::as_str)
        .is_some_and(|c| !c.is_empty());
    if !annotated && !old_spec.contains_key("storageClassName") && class_set {
        take_old("storageClassName", &mut new_spec);
    }
    let bound = old
        .get("status")
        .and_then(|s| s.get("phase"))
        .and_then(Value::as_str)
        == Some("Bound");
    if bound {
        take_old("volumeAttributesClassName", &mut new_spec);
        let old_storage = old_spec
            .get("resources")
            .and_then(|r| r.get("requests"))
            .and_then(|r| r.get("storage"))
            .cloned();
        if let Some(requests) = new_spec
            .get_mut("resources")
            .and_then(|r| r.get_mut("requests"))
            .and_then(Value::as_object_mut)
        {
            match old_storage {
                Some(storage) => requests.insert("storage".into(), storage),
                None => requests.remove("storage"),
            };
        }
    }
    if same(
        Some(&Value::Object(new_spec)),
        Some(&Value::Object(old_spec)),
    ) {
        Ok(())
    } else {
        Err(invalid(
            "spec",
            "Forbidden: spec is immutable after creation except resources.requests and \
             volumeAttributesClassName for bound claims",
        ))
    }
}

/// A ConfigMap or Secret stored with `immutable: true` keeps it and its data (an empty map and
/// none are the same here, as the apiserver finds them).
fn frozen(
    new: &Map<String, Value>,
    old: &Map<String, Value>,
    fields: &[&str],
) -> Result<(), ViewError> {
    let is_frozen =
        |o: &Map<String, Value>| o.get("immutable").and_then(Value::as_bool) == Some(true);
    if !is_frozen(old) {
        return Ok(());
    }
    const WHY: &str = "Forbidden: field is immutable when `immutable` is set";
    if !is_frozen(new) {
        return Err(invalid("immutable", WHY));
    }
    for field in fields {
        if !same(new.get(*field), old.get(*field)) {
            return Err(invalid(field, WHY));
        }
    }
    Ok(())
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        _ => false,
    }
}

/// Equal as the apiserver's semantic comparison sees the typed objects: an absent field, `null`
/// and an empty list or map are the same (encoded objects leave out zero values already).
fn same(a: Option<&Value>, b: Option<&Value>) -> bool {
    let absent = |v: Option<&Value>| {
        v.is_none_or(|v| {
            matches!(v, Value::Null)
                || v.as_array().is_some_and(Vec::is_empty)
                || v.as_object().is_some_and(Map::is_empty)
        })
    };
    if absent(a) && absent(b) {
        return true;
    }
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            x.keys().chain(y.keys()).all(|k| same(x.get(k), y.get(k)))
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(Some(p), Some(q)))
        }
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}
