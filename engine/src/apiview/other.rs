//! `networking.k8s.io/v1` NetworkPolicy and Ingress, `rbac.authorization.k8s.io/v1` bindings,
//! `policy/v1` PodDisruptionBudget.

use serde_json::{Map, Value};

use super::{
    each, invalid, object_at, or_set, or_set_str, reset_status, set_generation, ViewError,
};

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

pub(super) fn network_policy(object: &mut Map<String, Value>) -> Result<(), ViewError> {
    let spec = object_at(object, "spec").ok_or_else(|| invalid("spec", "must be an object"))?;
    or_set(spec, "podSelector", Map::new());
    for direction in ["ingress", "egress"] {
        for (_, rule) in each(spec, direction) {
            for (_, port) in each(rule, "ports") {
                or_set(port, "protocol", "TCP");
            }
        }
    }
    let unset = spec
        .get("policyTypes")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty);
    if unset {
        let mut types = vec![Value::from("Ingress")];
        let egress = spec
            .get("egress")
            .and_then(Value::as_array)
            .is_some_and(|e| !e.is_empty());
        if egress {
            types.push(Value::from("Egress"));
        }
        spec.insert("policyTypes".into(), Value::Array(types));
    }
    set_generation(object);
    Ok(())
}

pub(super) fn ingress(object: &mut Map<String, Value>) -> Result<(), ViewError> {
    object_at(object, "spec").ok_or_else(|| invalid("spec", "must be an object"))?;
    object.insert("status".into(), serde_json::json!({"loadBalancer": {}}));
    set_generation(object);
    Ok(())
}

/// A RoleBinding or ClusterRoleBinding: the RBAC group on its role and on users and groups.
pub(super) fn binding(object: &mut Map<String, Value>) -> Result<(), ViewError> {
    let role =
        object_at(object, "roleRef").ok_or_else(|| invalid("roleRef", "must be an object"))?;
    or_set_str(role, "apiGroup", RBAC_GROUP);
    for (_, subject) in each(object, "subjects") {
        let kind = subject
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if matches!(kind, "User" | "Group") {
            or_set_str(subject, "apiGroup", RBAC_GROUP);
        }
    }
    Ok(())
}

pub(super) fn pod_disruption_budget(object: &mut Map<String, Value>) -> Result<(), ViewError> {
    let spec = object_at(object, "spec").ok_or_else(|| invalid("spec", "must be an object"))?;
    if spec.contains_key("minAvailable") && spec.contains_key("maxUnavailable") {
        return Err(invalid(
            "spec",
            "Invalid value: {…}: minAvailable and maxUnavailable cannot be both set",
        ));
    }
    reset_status(
        object,
        &[
            "disruptionsAllowed",
            "currentHealthy",
            "desiredHealthy",
            "expectedPods",
        ],
    );
    set_generation(object);
    Ok(())
}
