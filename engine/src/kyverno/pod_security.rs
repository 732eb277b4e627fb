//! `validate.podSecurity`: the Pod Security Standards of a level and version, run by our [`pss`]
//! module, less the findings of the controls the rule's `exclude` names (for the whole pod, or
//! only for containers whose image matches, or only for listed values of a field).
//!
//! [`pss`]: crate::pss

use serde_json::Value;

use super::jmespath;
use super::pattern::wildcard_match;
use crate::pss::{self, Level, LevelVersion, Version};
use crate::source::string_items;

/// Kyverno's control names and the check ids of our [`pss`](crate::pss) module they cover.
const CONTROLS: [(&str, &[&str]); 17] = [
    ("HostProcess", &["windowsHostProcess"]),
    ("Host Namespaces", &["hostNamespaces"]),
    ("Privileged Containers", &["privileged"]),
    (
        "Capabilities",
        &["capabilities_baseline", "capabilities_restricted"],
    ),
    ("HostPath Volumes", &["hostPathVolumes"]),
    ("Host Ports", &["hostPorts"]),
    ("AppArmor", &["appArmorProfile"]),
    ("SELinux", &["seLinuxOptions"]),
    ("/proc Mount Type", &["procMount", "procMount_restricted"]),
    (
        "Seccomp",
        &["seccompProfile_baseline", "seccompProfile_restricted"],
    ),
    ("Sysctls", &["sysctls"]),
    ("Volume Types", &["restrictedVolumes"]),
    ("Privilege Escalation", &["allowPrivilegeEscalation"]),
    ("Running as Non-root", &["runAsNonRoot"]),
    ("Running as Non-root user", &["runAsUser"]),
    (
        "Host Probes / Lifecycle Hooks",
        &["hostProbesAndHostLifecycle"],
    ),
    ("Host Probes", &["hostProbesAndHostLifecycle"]),
];

/// One `exclude` entry.
#[derive(Debug, Clone)]
pub struct Exclusion {
    pub control: String,
    checks: &'static [&'static str],
    pub images: Vec<String>,
    pub restricted_field: Option<String>,
    pub values: Vec<String>,
}

/// A `podSecurity` rule, read.
#[derive(Debug, Clone)]
pub struct PodSecurity {
    pub level_version: LevelVersion,
    pub exclude: Vec<Exclusion>,
}

impl PodSecurity {
    /// Read `{level, version, exclude}`; errors name the field.
    pub fn read(value: &Value) -> Result<PodSecurity, String> {
        let map = value.as_object().ok_or("podSecurity: must be an object")?;
        let level: Level = map
            .get("level")
            .and_then(Value::as_str)
            .ok_or("podSecurity.level: required")?
            .parse()
            .map_err(|e| format!("podSecurity.level: {e}"))?;
        let version: Version = match map.get("version").and_then(Value::as_str) {
            None => Version::Latest,
            Some(v) => v.parse().map_err(|e| format!("podSecurity.version: {e}"))?,
        };
        let exclude = match map.get("exclude") {
            Some(entries) => read_exclusions(entries, "podSecurity.exclude")?,
            None => Vec::new(),
        };
        Ok(PodSecurity {
            level_version: LevelVersion::new(level, version),
            exclude,
        })
    }

    /// The failures left on a pod (`template`: a controller's pod template), worded; `None`
    /// when it passes.
    pub fn evaluate(&self, pod: &Value, template: bool) -> Option<String> {
        let lv = self.level_version;
        let run = |spec: &Value| {
            let metadata = pod.get("metadata").unwrap_or(&Value::Null);
            if template {
                pss::check_template(lv, metadata, spec)
            } else {
                pss::check_pod(lv, metadata, spec)
            }
        };
        let spec = pod.get("spec").cloned().unwrap_or(Value::Null);
        let mut result = run(&spec);
        result.forbidden.retain(|finding| {
            let entries: Vec<&Exclusion> = self
                .exclude
                .iter()
                .filter(|e| e.checks.contains(&finding.check_id) && e.field_allows(pod))
                .collect();
            if entries.is_empty() {
                return true;
            }
            let pod_level = entries.iter().any(|e| e.images.is_empty());
            let images: Vec<&String> = entries.iter().flat_map(|e| &e.images).collect();
            if images.is_empty() {
                return !pod_level;
            }
            // Take the excluded containers out and check again.
            let mut reduced = spec.clone();
            let mut left = 0;
            for list in ["containers", "initContainers", "ephemeralContainers"] {
                if let Some(items) = reduced.get_mut(list).and_then(Value::as_array_mut) {
                    items.retain(|c| {
                        let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
                        !images.iter().any(|p| wildcard_match(p, image))
                    });
                    left += items.len();
                }
            }
            if pod_level && left == 0 {
                return false;
            }
            run(&reduced)
                .forbidden
                .iter()
                .any(|f| f.check_id == finding.check_id)
        });
        result.warning(lv).map(|text| {
            text.strip_prefix("would violate")
                .map_or(text.clone(), |rest| format!("violates{rest}"))
        })
    }
}

/// Read a list of `{controlName, images, restrictedField, values}` (a rule's `exclude`, or a
/// PolicyException's `podSecurity`); errors name `field`.
pub fn read_exclusions(entries: &Value, field: &str) -> Result<Vec<Exclusion>, String> {
    let entries = entries
        .as_array()
        .ok_or_else(|| format!("{field}: must be a list"))?;
    let mut exclude = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let control = entry
            .get("controlName")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{field}[{i}].controlName: required"))?;
        let checks = CONTROLS
            .iter()
            .find(|(name, _)| *name == control)
            .map(|(_, checks)| *checks)
            .ok_or_else(|| format!("{field}[{i}].controlName: unknown control `{control}`"))?;
        let list = |key: &str| string_items(entry.get(key));
        exclude.push(Exclusion {
            control: control.to_owned(),
            checks,
            images: list("images"),
            restricted_field: entry
                .get("restrictedField")
                .and_then(Value::as_str)
                .map(str::to_owned),
            values: list("values"),
        });
    }
    Ok(exclude)
}

impl PodSecurity {
    /// The same rule with more exclusions (a PolicyException's `podSecurity`).
    pub fn with_exclusions(&self, more: &[Exclusion]) -> PodSecurity {
        let mut rule = self.clone();
        rule.exclude.extend(more.iter().cloned());
        rule
    }
}

impl Exclusion {
    /// With `restrictedField` and `values`, an entry excludes only when every value the field
    /// has in the pod is listed.
    fn field_allows(&self, pod: &Value) -> bool {
        let Some(field) = &self.restricted_field else {
            return true;
        };
        let Ok(found) = jmespath::search(field, pod) else {
            return false;
        };
        let mut values = Vec::new();
        flatten(&found, &mut values);
        values
            .iter()
            .all(|v| self.values.iter().any(|want| wildcard_match(want, v)))
    }
}

fn flatten(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Array(items) => items.iter().for_each(|i| flatten(i, out)),
        Value::Null => {}
        other => out.push(jmespath::to_text(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(exclude: Value) -> PodSecurity {
        PodSecurity::read(&json!({"level": "restricted", "version": "latest", "exclude": exclude}))
            .unwrap()
    }

    fn pod(image: &str) -> Value {
        json!({"metadata": {"name": "p"}, "spec": {
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "c", "image": image, "securityContext": {
                "allowPrivilegeEscalation": false,
                "capabilities": {"drop": ["ALL"], "add": ["NET_ADMIN"]}}}]}})
    }

    #[test]
    fn exclusions_remove_their_controls() {
        assert!(rule(json!([])).evaluate(&pod("nginx"), false).is_some());
        let by_image = rule(json!([{"controlName": "Capabilities", "images": ["ngin*"]}]));
        assert_eq!(by_image.evaluate(&pod("nginx"), false), None);
        assert!(by_image.evaluate(&pod("redis"), false).is_some());
        let by_value = rule(json!([{"controlName": "Capabilities", "images": ["*"],
            "restrictedField": "spec.containers[*].securityContext.capabilities.add", "values": ["NET_ADMIN"]}]));
        assert_eq!(by_value.evaluate(&pod("x"), false), None);
        let wrong_value = rule(json!([{"controlName": "Capabilities", "images": ["*"],
            "restrictedField": "spec.containers[*].securityContext.capabilities.add", "values": ["CHOWN"]}]));
        assert!(wrong_value.evaluate(&pod("x"), false).is_some());
    }

    #[test]
    fn unknown_controls_and_levels_are_errors() {
        assert!(PodSecurity::read(&json!({"level": "strict"})).is_err());
        assert!(PodSecurity::read(
            &json!({"level": "baseline", "exclude": [{"controlName": "Nope"}]})
        )
        .is_err_and(|e| e.contains("Nope")));
    }
}
