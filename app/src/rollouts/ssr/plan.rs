//! What a step does to a cluster, and whether a cluster holds what Palisade applied. Pure: no I/O.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::queries::Desired;
use crate::inventory::ssr::text_at;
use crate::model::Mode;

/// What one step applies and deletes, and the deployment it leaves behind (`None`: the policy is
/// no longer deployed there).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub apply: Vec<Value>,
    pub delete: Vec<Value>,
    pub leaves: Option<(i64, Mode)>,
}

/// `apiVersion kind namespace/name`: how an object is told apart from another.
pub fn identity(object: &Value) -> String {
    let text = |pointer: &str| text_at(object, pointer);
    let namespace = text("/metadata/namespace");
    let name = text("/metadata/name");
    let place = if namespace.is_empty() {
        name.to_owned()
    } else {
        format!("{namespace}/{name}")
    };
    format!("{} {} {place}", text("/apiVersion"), text("/kind"))
}

/// `Kind name`, for messages.
pub fn describe(object: &Value) -> String {
    format!(
        "{} {}",
        text_at(object, "/kind"),
        text_at(object, "/metadata/name")
    )
}

/// A Namespace is never deleted: removing a Pod Security policy applies the bare namespace with
/// Palisade's field manager, which lets go of the labels Palisade set and nothing else.
pub fn is_namespace(object: &Value) -> bool {
    object.get("kind").and_then(Value::as_str) == Some("Namespace")
}

pub fn bare_namespace(object: &Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": { "name": object.pointer("/metadata/name").cloned().unwrap_or(Value::Null) },
    })
}

/// The plan that takes a cluster from `current` (what is deployed now) back to `previous`.
pub fn rollback(current: Option<&Desired>, previous: Option<&Desired>) -> Plan {
    let apply = previous.map(|p| p.manifests.clone()).unwrap_or_default();
    let kept: Vec<String> = apply.iter().map(identity).collect();
    let delete = current
        .map(|c| {
            c.manifests
                .iter()
                .filter(|m| !kept.contains(&identity(m)))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    Plan {
        apply,
        delete,
        leaves: previous.map(|p| (p.version, p.mode)),
    }
}

/// The plan that removes what `current` deployed.
pub fn removal(current: Option<&Desired>) -> Plan {
    Plan {
        apply: Vec::new(),
        delete: current.map(|c| c.manifests.clone()).unwrap_or_default(),
        leaves: None,
    }
}

/// Where `live` differs from `desired`, as a path (`spec.validationActions`), or `None` when every
/// field Palisade set holds the value it set. Fields the server added are not differences; of
/// `metadata`, only labels and annotations are compared.
pub fn difference(desired: &Value, live: &Value) -> Option<String> {
    fn walk(desired: &Value, live: &Value, path: &str) -> Option<String> {
        match (desired, live) {
            (Value::Object(want), Value::Object(have)) => want.iter().find_map(|(key, value)| {
                if path.is_empty() && key == "metadata" {
                    let meta = |part: &str| value.get(part).cloned().unwrap_or(json!({}));
                    let live_meta = |part: &str| {
                        have.get("metadata")
                            .and_then(|m| m.get(part))
                            .cloned()
                            .unwrap_or(json!({}))
                    };
                    return ["labels", "annotations"].iter().find_map(|part| {
                        walk(&meta(part), &live_meta(part), &format!("metadata.{part}"))
                    });
                }
                let here = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match have.get(key) {
                    Some(theirs) => walk(value, theirs, &here),
                    None if value.is_null() => None,
                    None => Some(here),
                }
            }),
            (Value::Array(want), Value::Array(have)) => {
                if want.len() != have.len() {
                    return Some(path.to_owned());
                }
                want.iter()
                    .zip(have)
                    .enumerate()
                    .find_map(|(i, (w, h))| walk(w, h, &format!("{path}[{i}]")))
            }
            (Value::Number(a), Value::Number(b)) => {
                (a.as_f64() != b.as_f64()).then(|| path.to_owned())
            }
            (a, b) => (a != b).then(|| path.to_owned()),
        }
    }
    walk(desired, live, "")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policies::ssr::render::desired_objects;
    use crate::policies::Content;
    use palisade_engine::exclusions::Exclusion;

    fn binding(actions: Value) -> Value {
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": { "name": "b", "labels": { "app.kubernetes.io/managed-by": "palisade" } },
            "spec": { "policyName": "p", "validationActions": actions },
        })
    }

    #[test]
    fn server_added_fields_are_not_drift_but_changed_ones_are() {
        let desired = binding(json!(["Deny", "Audit"]));
        let mut live = desired.clone();
        live["metadata"]["uid"] = json!("123");
        live["metadata"]["labels"]["other"] = json!("x");
        live["spec"]["matchResources"] = json!({ "matchPolicy": "Equivalent" });
        live["status"] = json!({});
        assert_eq!(difference(&desired, &live), None);
        live["spec"]["validationActions"] = json!(["Audit"]);
        assert_eq!(
            difference(&desired, &live).as_deref(),
            Some("spec.validationActions")
        );
        let mut unlabelled = desired.clone();
        unlabelled["metadata"]["labels"] = json!({});
        assert_eq!(
            difference(&desired, &unlabelled).as_deref(),
            Some("metadata.labels.app.kubernetes.io/managed-by")
        );
    }

    #[test]
    fn rollback_puts_back_the_previous_objects_and_deletes_the_new_ones() {
        let policy = json!({ "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy", "metadata": { "name": "p" } });
        let extra = json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "params", "namespace": "x" } });
        let previous = Desired {
            version: 1,
            mode: Mode::Audit,
            manifests: vec![policy.clone(), binding(json!(["Audit"]))],
            rollout_id: "r1".into(),
        };
        let current = Desired {
            version: 2,
            mode: Mode::Enforce,
            manifests: vec![
                policy.clone(),
                binding(json!(["Deny", "Audit"])),
                extra.clone(),
            ],
            rollout_id: "r2".into(),
        };
        let plan = rollback(Some(&current), Some(&previous));
        assert_eq!(plan.apply, previous.manifests);
        assert_eq!(plan.delete, vec![extra]);
        assert_eq!(plan.leaves, Some((1, Mode::Audit)));
        let first = rollback(Some(&current), None);
        assert!(first.apply.is_empty());
        assert_eq!(first.delete.len(), 3);
        assert_eq!(first.leaves, None);
        assert_eq!(removal(Some(&current)).delete.len(), 3);
        assert_eq!(identity(&current.manifests[2]), "v1 ConfigMap x/params");
    }

    #[test]
    fn pod_security_patches_go_to_every_namespace_and_need_one() {
        let content = Content {
            source: "apiVersion: palisade.dev/v1alpha1\nkind: PodSecurityEntry\nmetadata:\n  name: restricted\nspec:\n  level: restricted\n  version: v1.30\n".into(),
            ..Content::default()
        };
        let objects =
            desired_objects(&content, Mode::Warn, &["a".into(), "b".into()], &[]).unwrap();
        let names: Vec<&str> = objects
            .iter()
            .filter_map(|o| o.pointer("/metadata/name").and_then(Value::as_str))
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(
            objects[0]["metadata"]["labels"]["pod-security.kubernetes.io/warn"],
            "restricted"
        );
        let err = desired_objects(&content, Mode::Warn, &[], &[]).unwrap_err();
        assert!(err.contains("namespace"), "{err}");
        assert_eq!(bare_namespace(&objects[1])["metadata"]["name"], "b");
        assert!(is_namespace(&objects[0]));
    }

    #[test]
    fn an_excepted_namespace_is_left_unlabelled() {
        let content = Content {
            source: "apiVersion: palisade.dev/v1alpha1\nkind: PodSecurityEntry\nmetadata:\n  name: restricted\nspec:\n  level: restricted\n  version: v1.30\n".into(),
            ..Content::default()
        };
        let exclusions = [Exclusion {
            id: "e1".into(),
            scope: palisade_engine::exclusions::Scope::Namespaces {
                namespaces: vec!["b".into()],
            },
        }];
        let objects = desired_objects(
            &content,
            Mode::Enforce,
            &["a".into(), "b".into()],
            &exclusions,
        )
        .unwrap();
        let names: Vec<&str> = objects
            .iter()
            .filter_map(|o| o.pointer("/metadata/name").and_then(Value::as_str))
            .collect();
        assert_eq!(names, ["a"]);
    }
}
