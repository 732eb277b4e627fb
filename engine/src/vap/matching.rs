//! Which requests a policy's `matchConstraints` (or a binding's `matchResources`) select: resource
//! rules with operations, groups, versions, resources and subresources, resource names, exclusions,
//! the namespace and object label selectors, as the apiserver's matcher decides them.

use std::collections::BTreeMap;

use serde_json::Value;

use super::types::{LabelSelector, MatchPolicy, MatchResources, NamedRule};
use crate::admission::{AdmissionRequest, Operation};

/// A label selector that was checked when the policy was read.
pub fn validate_selector(selector: &LabelSelector) -> Result<(), String> {
    for requirement in &selector.match_expressions {
        match requirement.operator.as_str() {
            "In" | "NotIn" => {
                if requirement.values.is_empty() {
                    return Err(format!(
                        "values: Required value: must be specified when `operator` is 'In' or 'NotIn' (key `{}`)",
                        requirement.key
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !requirement.values.is_empty() {
                    return Err(format!(
                        "values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist' (key `{}`)",
                        requirement.key
                    ));
                }
            }
            other => {
                return Err(format!(
                    "operator: Unsupported value: \"{other}\": supported values: \"In\", \"NotIn\", \"Exists\", \"DoesNotExist\""
                ))
            }
        }
    }
    Ok(())
}

/// Whether `labels` satisfy `selector`. An empty selector selects everything.
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    selector
        .match_labels
        .iter()
        .all(|(key, value)| labels.get(key) == Some(value))
        && selector.match_expressions.iter().all(|requirement| {
            let value = labels.get(&requirement.key);
            match requirement.operator.as_str() {
                "In" => value.is_some_and(|v| requirement.values.contains(v)),
                "NotIn" => value.is_none_or(|v| !requirement.values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        })
}

fn is_empty_selector(selector: Option<&LabelSelector>) -> bool {
    selector.is_none_or(|s| s.match_labels.is_empty() && s.match_expressions.is_empty())
}

/// The labels of a Kubernetes object (`metadata.labels`), ignoring values that are not strings.
pub fn labels_of(object: &Value) -> BTreeMap<String, String> {
    object
        .get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// What the matcher needs to know about the request's namespace.
pub struct NamespaceInfo<'a> {
    /// The namespace's labels, when the request is namespaced (or is about a Namespace); asked for
    /// only when a namespace selector needs them.
    pub labels: &'a dyn Fn() -> Option<&'a BTreeMap<String, String>>,
}

/// Whether `criteria` select `request`. `namespace_labels` are the labels of the request's namespace
/// (the apiserver reads them from its namespace lister; for a Namespace being created or updated,
/// from the object itself).
pub fn matches(
    criteria: &MatchResources,
    request: &AdmissionRequest,
    namespace: &NamespaceInfo<'_>,
) -> bool {
    // The namespace selector never excludes a cluster-scoped object other than a Namespace.
    let cluster_scoped = request.namespace.is_empty() && request.resource.resource != "namespaces";
    if !cluster_scoped && !is_empty_selector(criteria.namespace_selector.as_ref()) {
        let empty = BTreeMap::new();
        let labels = (namespace.labels)().unwrap_or(&empty);
        if let Some(selector) = &criteria.namespace_selector {
            if !selector_matches(selector, labels) {
                return false;
            }
        }
    }
    if let Some(selector) = &criteria.object_selector {
        if !is_empty_selector(Some(selector)) {
            let matches_object = |object: Option<&Value>| {
                object.is_some_and(|object| selector_matches(selector, &labels_of(object)))
            };
            if !matches_object(request.object.as_ref())
                && !matches_object(request.old_object.as_ref())
            {
                return false;
            }
        }
    }
    let policy = criteria.match_policy.unwrap_or_default();
    if rules_match(&criteria.exclude_resource_rules, policy, request) {
        return false;
    }
    criteria.resource_rules.is_empty() || rules_match(&criteria.resource_rules, policy, request)
}

/// Whether `criteria` could match some object whose resource (of any group and version) is
/// `resource`, whatever its namespace, name and labels: `false` only when no resource rule names
/// that resource or `*`. A caller may skip reading objects of a resource it cannot match.
pub fn may_match_resource(criteria: &MatchResources, resource: &str) -> bool {
    criteria.resource_rules.is_empty()
        || criteria.resource_rules.iter().any(|rule| {
            rule.resources.iter().any(|pattern| {
                split_resource(pattern)
                    .0
                    .is_none_or(|main| main == resource)
            })
        })
}

fn rules_match(rules: &[NamedRule], policy: MatchPolicy, request: &AdmissionRequest) -> bool {
    let named = |rule: &NamedRule| {
        rule.resource_names.is_empty() || rule.resource_names.contains(&request.name)
    };
    if rules
        .iter()
        .any(|rule| rule_matches(rule, request, true) && named(rule))
    {
        return true;
    }
    // `Equivalent`: the same group and resource under another version (a CRD served at several
    // versions) also matches; the apiserver would convert the object to the rule's version first.
    policy == MatchPolicy::Equivalent
        && rules
            .iter()
            .any(|rule| rule_matches(rule, request, false) && named(rule))
}

/// One rule against the request; `exact_version` false accepts any version the rule names.
fn rule_matches(rule: &NamedRule, request: &AdmissionRequest, exact_version: bool) -> bool {
    let any = |list: &[String], value: &str| list.iter().any(|item| item == "*" || item == value);
    let operation = request.operation.as_str();
    if !any(&rule.operations, operation) {
        return false;
    }
    let resource = &request.resource;
    if !any(&rule.api_groups, &resource.group) {
        return false;
    }
    if exact_version && !any(&rule.api_versions, &resource.version) {
        return false;
    }
    if !exact_version && rule.api_versions.is_empty() {
        return false;
    }
    if !scope_matches(rule.scope.as_deref(), request) {
        return false;
    }
    rule.resources.iter().any(|pattern| {
        let (res, sub) = split_resource(pattern);
        res.is_none_or(|res| res == resource.resource)
            && sub.is_none_or(|sub| sub == request.sub_resource)
    })
}

/// A rule's `resources` entry as its resource and its subresource (`pods/status`), each `None`
/// where it is `*`; an entry without a slash names no subresource (`Some("")`).
fn split_resource(pattern: &str) -> (Option<&str>, Option<&str>) {
    let (res, sub) = pattern.split_once('/').unwrap_or((pattern, ""));
    ((res != "*").then_some(res), (sub != "*").then_some(sub))
}

fn scope_matches(scope: Option<&str>, request: &AdmissionRequest) -> bool {
    let is_namespace =
        request.resource.resource == "namespaces" && request.resource.group.is_empty();
    match scope {
        Some("Namespaced") => !is_namespace && !request.namespace.is_empty(),
        Some("Cluster") => is_namespace || request.namespace.is_empty(),
        _ => true,
    }
}

/// Operations as the apiserver names them, for rules that list them.
pub fn known_operation(name: &str) -> bool {
    matches!(name, "*" | "CREATE" | "UPDATE" | "DELETE" | "CONNECT")
}

/// The operations the admission request can have, for completeness checks in tests.
pub const OPERATIONS: [Operation; 4] = [
    Operation::Create,
    Operation::Update,
    Operation::Delete,
    Operation::Connect,
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::AdmissionRequest;
    use serde_json::json;

    fn selector(value: Value) -> LabelSelector {
        serde_json::from_value(value).unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_resource_may_match_unless_no_rule_names_it_or_a_wildcard() {
        let rules = |resources: Value| -> MatchResources {
            serde_json::from_value(json!({"resourceRules": [
                {"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["*"], "resources": resources}
            ]}))
            .unwrap()
        };
        let pods = rules(json!(["pods", "deployments/scale"]));
        assert!(may_match_resource(&pods, "pods"));
        assert!(may_match_resource(&pods, "deployments"));
        assert!(!may_match_resource(&pods, "roles"));
        assert!(may_match_resource(&rules(json!(["*"])), "roles"));
        assert!(may_match_resource(&rules(json!(["*/status"])), "roles"));
        assert!(!may_match_resource(&rules(json!([])), "roles"));
        // No rules at all match everything (see `matches`).
        assert!(may_match_resource(&MatchResources::default(), "roles"));
    }

    #[test]
    fn label_selectors_follow_kubernetes_semantics() {
        let s = selector(json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod", "staging"]},
                {"key": "tier", "operator": "NotIn", "values": ["db"]},
                {"key": "team", "operator": "Exists"},
                {"key": "legacy", "operator": "DoesNotExist"}
            ]
        }));
        assert!(selector_matches(
            &s,
            &labels(&[("app", "web"), ("env", "prod"), ("team", "a")])
        ));
        // NotIn is satisfied by a missing key, but not by a listed value.
        assert!(!selector_matches(
            &s,
            &labels(&[
                ("app", "web"),
                ("env", "prod"),
                ("team", "a"),
                ("tier", "db")
            ])
        ));
        assert!(!selector_matches(
            &s,
            &labels(&[("app", "web"), ("env", "dev"), ("team", "a")])
        ));
        assert!(!selector_matches(
            &s,
            &labels(&[
                ("app", "web"),
                ("env", "prod"),
                ("team", "a"),
                ("legacy", "")
            ])
        ));
        assert!(selector_matches(&LabelSelector::default(), &labels(&[])));
        let bad = selector(json!({"matchExpressions": [{"key": "a", "operator": "In"}]}));
        assert!(validate_selector(&bad).is_err());
        let bad = selector(json!({"matchExpressions": [{"key": "a", "operator": "Equals"}]}));
        assert!(validate_selector(&bad)
            .unwrap_err()
            .contains("Unsupported value"));
    }

    fn rules(value: Value) -> MatchResources {
        serde_json::from_value(value).unwrap()
    }

    fn pod(name: &str, namespace: &str) -> AdmissionRequest {
        AdmissionRequest::create(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": {"app": "web"}}
        }))
        .unwrap()
    }

    fn no_labels() -> Option<&'static BTreeMap<String, String>> {
        None
    }

    const NO_NS: NamespaceInfo<'static> = NamespaceInfo { labels: &no_labels };

    #[test]
    fn resource_rules_with_wildcards_and_subresources() {
        let criteria = rules(json!({"resourceRules": [
            {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}
        ]}));
        let mut request = pod("a", "team");
        assert!(matches(&criteria, &request, &NO_NS));
        request.sub_resource = "status".into();
        assert!(
            !matches(&criteria, &request, &NO_NS),
            "pods does not cover pods/status"
        );
        let sub = rules(json!({"resourceRules": [
            {"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["*"], "resources": ["pods/status"]}
        ]}));
        assert!(matches(&sub, &request, &NO_NS));
        let all = rules(json!({"resourceRules": [
            {"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["*"], "resources": ["*"]}
        ]}));
        assert!(
            !matches(&all, &request, &NO_NS),
            "* does not cover subresources"
        );
        let everything = rules(json!({"resourceRules": [
            {"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["*"], "resources": ["*/*"]}
        ]}));
        assert!(matches(&everything, &request, &NO_NS));
        request.sub_resource.clear();
        request.operation = Operation::Update;
        assert!(
            !matches(&criteria, &request, &NO_NS),
            "UPDATE is not listed"
        );
    }

    #[test]
    fn resource_names_exclusions_and_scope() {
        let criteria = rules(json!({
            "resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                               "resources": ["pods"], "resourceNames": ["a"]}]
        }));
        assert!(matches(&criteria, &pod("a", "team"), &NO_NS));
        assert!(!matches(&criteria, &pod("b", "team"), &NO_NS));
        let excluding = rules(json!({
            "resourceRules": [{"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["*"], "resources": ["*"]}],
            "excludeResourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["*"],
                                      "resources": ["pods"], "resourceNames": ["b"]}]
        }));
        assert!(matches(&excluding, &pod("a", "team"), &NO_NS));
        assert!(!matches(&excluding, &pod("b", "team"), &NO_NS));
        let cluster = rules(json!({"resourceRules": [
            {"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["*"], "resources": ["*"], "scope": "Cluster"}
        ]}));
        assert!(!matches(&cluster, &pod("a", "team"), &NO_NS));
    }

    #[test]
    fn equivalent_versions_match_unless_exact() {
        let mut request = pod("a", "team");
        request.resource.version = "v2".into();
        let exact = rules(json!({"matchPolicy": "Exact", "resourceRules": [
            {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["*"], "resources": ["pods"]}
        ]}));
        assert!(!matches(&exact, &request, &NO_NS));
        let equivalent = rules(json!({"resourceRules": [
            {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["*"], "resources": ["pods"]}
        ]}));
        assert!(matches(&equivalent, &request, &NO_NS));
    }

    #[test]
    fn namespace_and_object_selectors() {
        let criteria = rules(json!({
            "namespaceSelector": {"matchLabels": {"env": "prod"}},
            "objectSelector": {"matchLabels": {"app": "web"}}
        }));
        let prod = labels(&[("env", "prod")]);
        let dev = labels(&[("env", "dev")]);
        let prod_labels = || Some(&prod);
        let dev_labels = || Some(&dev);
        let in_prod = NamespaceInfo {
            labels: &prod_labels,
        };
        let in_dev = NamespaceInfo {
            labels: &dev_labels,
        };
        assert!(matches(&criteria, &pod("a", "team"), &in_prod));
        assert!(!matches(&criteria, &pod("a", "team"), &in_dev));
        // A cluster-scoped object is never excluded by the namespace selector.
        let node = AdmissionRequest::create(json!({
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": "n", "labels": {"app": "web"}}
        }))
        .unwrap();
        assert!(matches(&criteria, &node, &in_dev));
        let other = AdmissionRequest::create(json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "team"}
        }))
        .unwrap();
        assert!(!matches(&criteria, &other, &in_prod));
        assert!(OPERATIONS.iter().all(|op| known_operation(op.as_str())));
    }
}
