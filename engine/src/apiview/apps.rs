//! `apps/v1`: Deployment, ReplicaSet, StatefulSet, DaemonSet.

use serde_json::{Map, Value};

use super::core::{persistent_volume_claim, pod_template, Claim};
use super::{
    count, each, invalid, object_at, or_set, or_set_str, reset_status, set_generation, ViewError,
};

fn spec(object: &mut Map<String, Value>) -> Result<&mut Map<String, Value>, ViewError> {
    let spec = object_at(object, "spec").ok_or_else(|| invalid("spec", "must be an object"))?;
    count(spec, "replicas", "spec")?;
    Ok(spec)
}

pub(super) fn deployment(object: &mut Map<String, Value>) -> Result<(), ViewError> {
    let spec = spec(object)?;
    or_set(spec, "replicas", 1);
    let strategy =
        object_at(spec, "strategy").ok_or_else(|| invalid("spec.strategy", "must be an object"))?;
    or_set_str(strategy, "type", "RollingUpdate");
    if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
        let rolling = object_at(strategy, "rollingUpdate")
            .ok_or_else(|| invalid("spec.strategy.rollingUpdate", "must be an object"))?;
        or_set(rolling, "maxUnavailable", "25%");
        or_set(rolling, "maxSurge", "25%");
    }
    or_set(spec, "revisionHistoryLimit", 10);
    or_set(spec, "progressDeadlineSeconds", 600);
    long_running_template(spec, "ReplicaSet")?;
    pod_template(spec, "template", "spec.template")?;
    reset_status(object, &[]);
    set_generation(object);
    Ok(())
}

pub(super) fn replica_set(object: &mut Map<String, Value>) -> Result<(), ViewError> {
    let spec = spec(object)?;
    or_set(spec, "replicas", 1);
    long_running_template(spec, "ReplicaSet")?;
    pod_template(spec, "template", "spec.template")?;
    reset_status(object, &["replicas"]);
    set_generation(object);
    Ok(())
}

pub(super) fn stateful_set(object: &mut Map<String, Value>) -> Result<(), ViewError> {
    let spec = spec(object)?;
    or_set_str(spec, "podManagementPolicy", "OrderedReady");
    let strategy = object_at(spec, "updateStrategy")
        .ok_or_else(|| invalid("spec.updateStrategy", "must be an object"))?;
    if strategy.get("type").is_none_or(|t| t.as_str() == Some("")) {
        strategy.insert("type".into(), Value::from("RollingUpdate"));
        or_set(strategy, "rollingUpdate", Map::new());
    }
    if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
        if let Some(rolling) = strategy
            .get_mut("rollingUpdate")
            .and_then(Value::as_object_mut)
        {
            or_set(rolling, "partition", 0);
            // MaxUnavailableStatefulSet is on by default in v1.37.
            or_set(rolling, "maxUnavailable", 1);
        }
    }
    let retention = object_at(spec, "persistentVolumeClaimRetentionPolicy").ok_or_else(|| {
        invalid(
            "spec.persistentVolumeClaimRetentionPolicy",
            "must be an object",
        )
    })?;
    or_set_str(retention, "whenDeleted", "Retain");
    or_set_str(retention, "whenScaled", "Retain");
    or_set(spec, "replicas", 1);
    or_set(spec, "revisionHistoryLimit", 10);
    long_running_template(spec, "StatefulSet")?;
    pod_template(spec, "template", "spec.template")?;
    for (i, claim) in each(spec, "volumeClaimTemplates") {
        // Written back in `apps/v1` with their type, whatever the manifest had.
        claim.insert("apiVersion".into(), Value::from("v1"));
        claim.insert("kind".into(), Value::from("PersistentVolumeClaim"));
        or_set(claim, "metadata", Map::new());
        persistent_volume_claim(
            claim,
            &format!("spec.volumeClaimTemplates[{i}]"),
            Claim::Template,
        )?;
    }
    reset_status(object, &["replicas", "availableReplicas"]);
    set_generation(object);
    Ok(())
}

pub(super) fn daemon_set(object: &mut Map<String, Value>) -> Result<(), ViewError> {
    let spec = spec(object)?;
    let strategy = object_at(spec, "updateStrategy")
        .ok_or_else(|| invalid("spec.updateStrategy", "must be an object"))?;
    or_set_str(strategy, "type", "RollingUpdate");
    if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
        let rolling = object_at(strategy, "rollingUpdate")
            .ok_or_else(|| invalid("spec.updateStrategy.rollingUpdate", "must be an object"))?;
        or_set(rolling, "maxUnavailable", 1);
        or_set(rolling, "maxSurge", 0);
    }
    or_set(spec, "revisionHistoryLimit", 10);
    long_running_template(spec, "DaemonSet")?;
    pod_template(spec, "template", "spec.template")?;
    template_generation(object)?;
    reset_status(
        object,
        &[
            "currentNumberScheduled",
            "numberMisscheduled",
            "desiredNumberScheduled",
            "numberReady",
        ],
    );
    set_generation(object);
    Ok(())
}

/// A DaemonSet's template generation: kept in its internal spec, written back in `apps/v1` as the
/// annotation `deprecated.daemonset.template.generation`; the strategy makes it at least 1 on
/// create. A value the manifest gives there is read as the generation (an integer, or refused).
fn template_generation(object: &mut Map<String, Value>) -> Result<(), ViewError> {
    const KEY: &str = "deprecated.daemonset.template.generation";
    let Some(annotations) = object_at(object, "metadata").and_then(|m| object_at(m, "annotations"))
    else {
        return Ok(());
    };
    let given = match annotations.get(KEY).and_then(Value::as_str) {
        Some(text) => text.parse::<i64>().map_err(|_| {
            invalid(
                &format!("metadata.annotations.{KEY}"),
                format!("strconv.ParseInt: parsing {text:?}: invalid syntax"),
            )
        })?,
        None => 0,
    };
    annotations.insert(KEY.into(), Value::from(given.max(1).to_string()));
    Ok(())
}

/// The pod template of a workload whose pods run until deleted: no `activeDeadlineSeconds`, and
/// `restartPolicy: Always` (the default). `kind` is the kind the apiserver's message names (a
/// Deployment's template is checked as its ReplicaSet's).
fn long_running_template(spec: &Map<String, Value>, kind: &str) -> Result<(), ViewError> {
    let Some(pod) = spec
        .get("template")
        .and_then(|t| t.get("spec"))
        .and_then(Value::as_object)
    else {
        return Ok(());
    };
    if pod.contains_key("activeDeadlineSeconds") {
        return Err(invalid(
            "spec.template.spec.activeDeadlineSeconds",
            format!("Forbidden: activeDeadlineSeconds in {kind} is not Supported"),
        ));
    }
    match pod.get("restartPolicy").and_then(Value::as_str) {
        None | Some("" | "Always") => Ok(()),
        Some(other) => Err(invalid(
            "spec.template.spec.restartPolicy",
            format!("Unsupported value: {other:?}: supported values: \"Always\""),
        )),
    }
}
