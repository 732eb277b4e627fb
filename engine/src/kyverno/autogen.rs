//! Kyverno's autogen: a rule written for Pods also applies to the controllers that make Pods, by
//! looking at their pod template.

use serde_json::{json, Value};

/// The pod controllers autogen covers by default, with where each keeps its pod template.
pub const CONTROLLERS: [(&str, &[&str]); 7] = [
    ("Deployment", &["spec", "template"]),
    ("ReplicaSet", &["spec", "template"]),
    ("StatefulSet", &["spec", "template"]),
    ("DaemonSet", &["spec", "template"]),
    ("Job", &["spec", "template"]),
    ("ReplicationController", &["spec", "template"]),
    ("CronJob", &["spec", "jobTemplate", "spec", "template"]),
];

/// Where `kind` keeps its pod template, when it is a pod controller.
pub fn template_path(kind: &str) -> Option<&'static [&'static str]> {
    CONTROLLERS
        .iter()
        .find(|(controller, _)| *controller == kind)
        .map(|(_, path)| *path)
}

/// A pod controller's pod template as a Pod (`apiVersion: v1`, `kind: Pod`, the template's
/// metadata with the controller's namespace, and its spec), or `None` when `object` is not a pod
/// controller or has no template.
pub fn pod_view(object: &Value) -> Option<Value> {
    let kind = object.get("kind").and_then(Value::as_str)?;
    let path = template_path(kind)?;
    let template = path.iter().try_fold(object, |at, key| at.get(key))?;
    let mut metadata = template
        .get("metadata")
        .filter(|m| m.is_object())
        .cloned()
        .unwrap_or_else(|| json!({}));
    if let (Some(metadata), Some(namespace)) = (
        metadata.as_object_mut(),
        object.pointer("/metadata/namespace").cloned(),
    ) {
        metadata.entry("namespace").or_insert(namespace);
    }
    Some(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": template.get("spec").cloned().unwrap_or_else(|| json!({})),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cronjob_is_seen_as_its_pod_template_in_its_namespace() {
        let cron = json!({
            "apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "c", "namespace": "team"},
            "spec": {"jobTemplate": {"spec": {"template": {
                "metadata": {"labels": {"app": "x"}},
                "spec": {"containers": [{"name": "a", "image": "i"}]}
            }}}}
        });
        let pod = pod_view(&cron).expect("a pod view");
        assert_eq!(pod["kind"], "Pod");
        assert_eq!(pod["metadata"]["namespace"], "team");
        assert_eq!(pod["metadata"]["labels"]["app"], "x");
        assert_eq!(pod["spec"]["containers"][0]["name"], "a");
    }

    #[test]
    fn a_pod_or_service_has_no_pod_view() {
        assert!(pod_view(&json!({"kind": "Pod", "spec": {}})).is_none());
        assert!(pod_view(&json!({"kind": "Service", "spec": {}})).is_none());
    }
}
