//! Constraints (`constraints.gatekeeper.sh/*`): which objects one applies to (`spec.match`), with which
//! parameters, and what happens on a violation (`spec.enforcementAction`).
//!
//! Matching follows Gatekeeper's `pkg/mutation/match`: every criterion that is set must hold; an unset
//! criterion holds for everything. A request matches when its object or its old object matches.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::source::{string_list, Document, SourceError};
use crate::verdict::Action;

/// Where a review happens; `scoped` enforcement actions name the points they apply to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EnforcementPoint {
    /// The admission webhook (`validation.gatekeeper.sh`).
    Validation,
    /// The background audit (`audit.gatekeeper.sh`).
    Audit,
    /// The gator CLI (`gator.gatekeeper.sh`).
    Gator,
}

impl EnforcementPoint {
    pub fn as_str(self) -> &'static str {
        match self {
            EnforcementPoint::Validation => "validation.gatekeeper.sh",
            EnforcementPoint::Audit => "audit.gatekeeper.sh",
            EnforcementPoint::Gator => "gator.gatekeeper.sh",
        }
    }
}

/// `spec.enforcementAction`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnforcementAction {
    /// Reject (the default).
    Deny,
    /// Admit with a warning.
    Warn,
    /// Only record (audit).
    Dryrun,
    /// Per enforcement point (`spec.scopedEnforcementActions`): for each point name (or `*`), the
    /// actions taken there.
    Scoped(Vec<(String, Vec<String>)>),
}

impl EnforcementAction {
    fn action_of(word: &str) -> Option<Action> {
        match word {
            "deny" => Some(Action::Deny),
            "warn" => Some(Action::Warn),
            "dryrun" => Some(Action::Audit),
            _ => None,
        }
    }

    /// The action at `point`, or `None` when a scoped constraint does not apply there at all. Several
    /// scoped actions at one point resolve to the strictest.
    pub fn at(&self, point: EnforcementPoint) -> Option<Action> {
        match self {
            EnforcementAction::Deny => Some(Action::Deny),
            EnforcementAction::Warn => Some(Action::Warn),
            EnforcementAction::Dryrun => Some(Action::Audit),
            EnforcementAction::Scoped(scoped) => scoped
                .iter()
                .filter(|(_, points)| points.iter().any(|p| p == "*" || p == point.as_str()))
                .filter_map(|(action, _)| Self::action_of(action))
                .max(),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            EnforcementAction::Deny => "deny",
            EnforcementAction::Warn => "warn",
            EnforcementAction::Dryrun => "dryrun",
            EnforcementAction::Scoped(_) => "scoped",
        }
    }
}

/// A label selector (`matchLabels` and `matchExpressions`), as `metav1.LabelSelector`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    pub match_labels: BTreeMap<String, String>,
    pub match_expressions: Vec<Requirement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub operator: SelectorOperator,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectorOperator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

impl LabelSelector {
    fn parse(value: &Value, field: &str) -> Result<LabelSelector, String> {
        let object = value
            .as_object()
            .ok_or_else(|| format!("{field} must be an object"))?;
        let mut selector = LabelSelector::default();
        if let Some(labels) = object.get("matchLabels").filter(|v| !v.is_null()) {
            let labels = labels
                .as_object()
                .ok_or_else(|| format!("{field}.matchLabels must be an object"))?;
            for (key, value) in labels {
                let value = value
                    .as_str()
                    .ok_or_else(|| format!("{field}.matchLabels.{key} must be a string"))?;
                selector.match_labels.insert(key.clone(), value.to_owned());
            }
        }
        if let Some(expressions) = object.get("matchExpressions").filter(|v| !v.is_null()) {
            let expressions = expressions
                .as_array()
                .ok_or_else(|| format!("{field}.matchExpressions must be a list"))?;
            for (index, expression) in expressions.iter().enumerate() {
                let at = format!("{field}.matchExpressions[{index}]");
                let key = expression
                    .get("key")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("{at}.key must be a string"))?;
                let operator = match expression.get("operator").and_then(Value::as_str) {
                    Some("In") => SelectorOperator::In,
                    Some("NotIn") => SelectorOperator::NotIn,
                    Some("Exists") => SelectorOperator::Exists,
                    Some("DoesNotExist") => SelectorOperator::DoesNotExist,
                    other => {
                        return Err(format!(
                            "{at}.operator {other:?} is not one of In, NotIn, Exists, DoesNotExist"
                        ))
                    }
                };
                let values: Vec<String> = match expression.get("values") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(values)) => values
                        .iter()
                        .map(|v| {
                            v.as_str()
                                .map(str::to_owned)
                                .ok_or_else(|| format!("{at}.values must be strings"))
                        })
                        .collect::<Result<_, _>>()?,
                    Some(_) => return Err(format!("{at}.values must be a list")),
                };
                let needs_values =
                    matches!(operator, SelectorOperator::In | SelectorOperator::NotIn);
                if needs_values && values.is_empty() {
                    return Err(format!("{at}: operator {operator:?} needs values"));
                }
                if !needs_values && !values.is_empty() {
                    return Err(format!("{at}: operator {operator:?} takes no values"));
                }
                selector.match_expressions.push(Requirement {
                    key: key.to_owned(),
                    operator,
                    values,
                });
            }
        }
        Ok(selector)
    }

    /// Whether `labels` (an object's `metadata.labels`, possibly absent) satisfy this selector. An
    /// empty selector matches everything.
    pub fn matches(&self, labels: Option<&Value>) -> bool {
        let label = |key: &str| labels.and_then(|l| l.get(key)).and_then(Value::as_str);
        self.match_labels
            .iter()
            .all(|(key, value)| label(key) == Some(value.as_str()))
            && self.match_expressions.iter().all(|r| {
                let have = label(&r.key);
                match r.operator {
                    SelectorOperator::In => have.is_some_and(|h| r.values.iter().any(|v| v == h)),
                    SelectorOperator::NotIn => have.is_none_or(|h| r.values.iter().all(|v| v != h)),
                    SelectorOperator::Exists => have.is_some(),
                    SelectorOperator::DoesNotExist => have.is_none(),
                }
            })
    }
}

/// A Gatekeeper wildcard: `*` at the start, the end or both make a suffix, prefix or substring match.
pub fn wildcard_matches(pattern: &str, candidate: &str) -> bool {
    match (pattern.starts_with('*'), pattern.ends_with('*')) {
        (true, true) => candidate.contains(inner(pattern)),
        (true, false) => candidate.ends_with(&pattern[1..]),
        (false, true) => candidate.starts_with(&pattern[..pattern.len() - 1]),
        (false, false) => pattern == candidate,
    }
}

/// A `generateName` only matches a pattern that ends in `*` (the rest of the name is not known yet).
fn wildcard_matches_generate_name(pattern: &str, candidate: &str) -> bool {
    match (pattern.starts_with('*'), pattern.ends_with('*')) {
        (true, true) => candidate.contains(inner(pattern)),
        (false, true) => candidate.starts_with(&pattern[..pattern.len() - 1]),
        _ => false,
    }
}

/// `*x*` without its first `*` and (if one is left) its last one; `*` gives the empty string.
fn inner(pattern: &str) -> &str {
    let rest = &pattern[1..];
    rest.strip_suffix('*').unwrap_or(rest)
}

/// One entry of `spec.match.kinds`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KindSelector {
    pub api_groups: Vec<String>,
    pub kinds: Vec<String>,
}

impl KindSelector {
    /// Whether the entry names `kind`: it lists it or `*`, or lists no kinds.
    fn names_kind(&self, kind: &str) -> bool {
        self.kinds.is_empty() || self.kinds.iter().any(|x| x == "*" || x == kind)
    }
}

/// `spec.match`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Match {
    pub kinds: Vec<KindSelector>,
    /// `Cluster`, `Namespaced`, or anything else (`*`, unset, a typo) for both.
    pub scope: String,
    pub namespaces: Vec<String>,
    pub excluded_namespaces: Vec<String>,
    pub label_selector: Option<LabelSelector>,
    pub namespace_selector: Option<LabelSelector>,
    pub name: String,
    /// `All` (or unset), `Original` or `Generated`.
    pub source: String,
}

/// What matching is done against: one object of the request, and the namespace it lives in when
/// Gatekeeper would know it.
pub(crate) struct Matchable<'a> {
    pub object: &'a Value,
    pub namespace: Option<&'a Value>,
}

fn strings(value: Option<&Value>, field: &str) -> Result<Vec<String>, String> {
    string_list(value).ok_or_else(|| format!("{field} must be a list of strings"))
}

fn text<'a>(object: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .try_fold(object, |v, key| v.get(key))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn is_namespace(object: &Value) -> bool {
    let api_version = text(object, &["apiVersion"]);
    text(object, &["kind"]) == "Namespace" && !api_version.contains('/')
}

impl Match {
    pub fn parse(value: &Value) -> Result<Match, String> {
        if value.is_null() {
            return Ok(Match::default());
        }
        let object = value.as_object().ok_or("spec.match must be an object")?;
        let mut result = Match::default();
        if let Some(kinds) = object.get("kinds").filter(|v| !v.is_null()) {
            let kinds = kinds.as_array().ok_or("spec.match.kinds must be a list")?;
            for (index, entry) in kinds.iter().enumerate() {
                let at = format!("spec.match.kinds[{index}]");
                result.kinds.push(KindSelector {
                    api_groups: strings(entry.get("apiGroups"), &format!("{at}.apiGroups"))?,
                    kinds: strings(entry.get("kinds"), &format!("{at}.kinds"))?,
                });
            }
        }
        let string = |key: &str| -> Result<String, String> {
            match object.get(key) {
                None | Some(Value::Null) => Ok(String::new()),
                Some(Value::String(s)) => Ok(s.clone()),
                Some(_) => Err(format!("spec.match.{key} must be a string")),
            }
        };
        result.scope = string("scope")?;
        result.name = string("name")?;
        result.source = string("source")?;
        if !matches!(
            result.source.as_str(),
            "" | "All" | "Original" | "Generated"
        ) {
            return Err(format!(
                "spec.match.source {:?} is not one of All, Original, Generated",
                result.source
            ));
        }
        result.namespaces = strings(object.get("namespaces"), "spec.match.namespaces")?;
        result.excluded_namespaces = strings(
            object.get("excludedNamespaces"),
            "spec.match.excludedNamespaces",
        )?;
        if let Some(selector) = object.get("labelSelector").filter(|v| !v.is_null()) {
            result.label_selector =
                Some(LabelSelector::parse(selector, "spec.match.labelSelector")?);
        }
        if let Some(selector) = object.get("namespaceSelector").filter(|v| !v.is_null()) {
            result.namespace_selector = Some(LabelSelector::parse(
                selector,
                "spec.match.namespaceSelector",
            )?);
        }
        Ok(result)
    }

    /// Whether an object of `kind` (in any group) could match: `false` only when `kinds` names
    /// neither that kind nor `*`. Matching reads the kind first, so an object this refuses is not
    /// matched and cannot be an autorejection either.
    pub fn may_match_kind(&self, kind: &str) -> bool {
        self.kinds.is_empty() || self.kinds.iter().any(|k| k.names_kind(kind))
    }

    /// Whether `target` matches. An error is what Gatekeeper reports as an autorejection (it cannot
    /// tell, so the constraint counts as violated).
    pub(crate) fn matches(&self, target: &Matchable<'_>) -> Result<bool, String> {
        let object = target.object;
        let gvk_group = text(object, &["apiVersion"])
            .split_once('/')
            .map_or("", |(group, _)| group);
        let kind = text(object, &["kind"]);
        let object_namespace = text(object, &["metadata", "namespace"]);
        let known_namespace = target.namespace.map(|ns| text(ns, &["metadata", "name"]));
        let namespace_object = is_namespace(object);

        // kinds
        if !self.kinds.is_empty()
            && !self.kinds.iter().any(|k| {
                let kind_ok = k.names_kind(kind);
                let group_ok = k.api_groups.is_empty()
                    || k.api_groups.iter().any(|g| g == "*" || g == gvk_group);
                kind_ok && group_ok
            })
        {
            return Ok(false);
        }

        // scope
        let has_namespace = !object_namespace.is_empty() || target.namespace.is_some();
        let cluster_scoped = namespace_object || !has_namespace;
        match self.scope.as_str() {
            "Cluster" if !cluster_scoped => return Ok(false),
            "Namespaced" if cluster_scoped => return Ok(false),
            _ => {}
        }

        // The namespace the object is in, as far as namespaces / excludedNamespaces can tell.
        let namespace_name = if namespace_object {
            Some(text(object, &["metadata", "name"]))
        } else if let Some(name) = known_namespace {
            Some(name)
        } else if !object_namespace.is_empty() {
            Some(object_namespace)
        } else {
            None
        };
        if !self.namespaces.is_empty() {
            if let Some(name) = namespace_name {
                if !self.namespaces.iter().any(|n| wildcard_matches(n, name)) {
                    return Ok(false);
                }
            }
        }
        if let Some(name) = namespace_name {
            if self
                .excluded_namespaces
                .iter()
                .any(|n| wildcard_matches(n, name))
            {
                return Ok(false);
            }
        }

        if let Some(selector) = &self.label_selector {
            if !selector.matches(object.get("metadata").and_then(|m| m.get("labels"))) {
                return Ok(false);
            }
        }

        if let Some(selector) = &self.namespace_selector {
            if namespace_object {
                if !selector.matches(object.get("metadata").and_then(|m| m.get("labels"))) {
                    return Ok(false);
                }
            } else if target.namespace.is_none() && object_namespace.is_empty() {
                // A cluster-scoped object that is not a Namespace: the selector does not apply.
            } else {
                let Some(namespace) = target.namespace else {
                    return Err(
                        "namespace selector for namespace-scoped object but missing Namespace"
                            .to_owned(),
                    );
                };
                if !selector.matches(namespace.get("metadata").and_then(|m| m.get("labels"))) {
                    return Ok(false);
                }
            }
        }

        if !self.name.is_empty() {
            let name = text(object, &["metadata", "name"]);
            let generate_name = text(object, &["metadata", "generateName"]);
            if !wildcard_matches(&self.name, name)
                && !wildcard_matches_generate_name(&self.name, generate_name)
            {
                return Ok(false);
            }
        }

        // Everything Palisade reviews is an original object, never one generated by expansion.
        Ok(self.source != "Generated")
    }
}

/// A Constraint: an instance of a ConstraintTemplate's kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Constraint {
    /// The template kind (`K8sRequiredLabels`).
    pub kind: String,
    pub name: String,
    pub matcher: Match,
    /// `spec.parameters`, `{}` when absent.
    pub parameters: Value,
    pub enforcement_action: EnforcementAction,
    /// The constraint as written: a template's CEL code reads it as its parameter object.
    pub object: Value,
}

impl Constraint {
    /// Whether `value` looks like a constraint (its group is `constraints.gatekeeper.sh`).
    pub fn is_constraint(value: &Value) -> bool {
        value
            .get("apiVersion")
            .and_then(Value::as_str)
            .is_some_and(|v| v.starts_with("constraints.gatekeeper.sh/"))
    }

    pub fn from_document(file: &str, document: &Document) -> Result<Constraint, SourceError> {
        let value = &document.value;
        let error = |field: &str, message: String| {
            let (line, column) = find_key(document, field);
            SourceError::new(file, line, column, message)
        };
        let kind = value
            .get("kind")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| error("kind", "the constraint has no `kind`".to_owned()))?;
        let name = value
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                error(
                    "metadata",
                    "the constraint has no `metadata.name`".to_owned(),
                )
            })?;
        let spec = value.get("spec").cloned().unwrap_or(Value::Null);
        let matcher = Match::parse(spec.get("match").unwrap_or(&Value::Null))
            .map_err(|message| error("match", message))?;
        let parameters = match spec.get("parameters") {
            None | Some(Value::Null) => Value::Object(Default::default()),
            Some(parameters) => parameters.clone(),
        };
        let enforcement_action = match spec.get("enforcementAction") {
            None | Some(Value::Null) => EnforcementAction::Deny,
            Some(Value::String(action)) => match action.as_str() {
                "deny" => EnforcementAction::Deny,
                "warn" => EnforcementAction::Warn,
                "dryrun" => EnforcementAction::Dryrun,
                "scoped" => EnforcementAction::Scoped(
                    parse_scoped(spec.get("scopedEnforcementActions"))
                        .map_err(|message| error("scopedEnforcementActions", message))?,
                ),
                other => {
                    return Err(error(
                        "enforcementAction",
                        format!(
                            "enforcementAction {other:?} is not one of deny, warn, dryrun, scoped"
                        ),
                    ))
                }
            },
            Some(_) => {
                return Err(error(
                    "enforcementAction",
                    "spec.enforcementAction must be a string".to_owned(),
                ))
            }
        };
        Ok(Constraint {
            kind: kind.to_owned(),
            name: name.to_owned(),
            matcher,
            parameters,
            enforcement_action,
            object: value.clone(),
        })
    }
}

fn parse_scoped(value: Option<&Value>) -> Result<Vec<(String, Vec<String>)>, String> {
    const FORMAT: &str =
        "scopedEnforcementActions must be a list of {action: string, enforcementPoints: [{name: string}]}";
    let Some(Value::Array(entries)) = value else {
        return Err(format!("enforcementAction `scoped` needs spec.{FORMAT}"));
    };
    let mut result = Vec::new();
    for entry in entries {
        let action = entry
            .get("action")
            .and_then(Value::as_str)
            .ok_or(FORMAT)?
            .to_owned();
        if EnforcementAction::action_of(&action).is_none() {
            return Err(format!(
                "scoped action {action:?} is not one of deny, warn, dryrun"
            ));
        }
        let points = match entry.get("enforcementPoints") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(points)) => points
                .iter()
                .map(|p| {
                    p.get("name")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .ok_or(FORMAT)
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(FORMAT.to_owned()),
        };
        result.push((action, points));
    }
    Ok(result)
}

/// The line and column of the first `key:` in a document's text (for errors about a field); the
/// document's first line when the key is not found.
pub(crate) fn find_key(document: &Document, key: &str) -> (usize, usize) {
    let needle = format!("{key}:");
    for (index, line) in document.text.lines().enumerate() {
        let trimmed = line.trim_start().trim_start_matches("- ");
        if trimmed.starts_with(&needle) {
            let column = line.find(&needle).map_or(0, |c| c + 1);
            return (document.first_line + index, column);
        }
    }
    (document.first_line, 0)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn matches(spec: Value, object: Value, namespace: Option<Value>) -> Result<bool, String> {
        let m = Match::parse(&spec).unwrap();
        m.matches(&Matchable {
            object: &object,
            namespace: namespace.as_ref(),
        })
    }

    fn pod(namespace: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "web-1", "namespace": namespace, "labels": {"app": "web"}}})
    }

    #[test]
    fn wildcards_are_prefix_suffix_or_substring() {
        assert!(wildcard_matches("kube-*", "kube-system"));
        assert!(!wildcard_matches("kube-*", "my-kube"));
        assert!(wildcard_matches("*-system", "kube-system"));
        assert!(wildcard_matches("*ube*", "kube-system"));
        assert!(wildcard_matches("*", "anything"));
        assert!(wildcard_matches("**", "anything"));
        assert!(wildcard_matches("exact", "exact"));
        assert!(!wildcard_matches("exact", "exactly"));
        assert!(wildcard_matches_generate_name("web-*", "web-"));
        assert!(!wildcard_matches_generate_name("*-1", "web-"));
        assert!(wildcard_matches_generate_name("*", "web-"));
    }

    #[test]
    fn kinds_match_by_group_and_kind_with_wildcards() {
        let deployment =
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}});
        let spec = json!({"kinds": [{"apiGroups": [""], "kinds": ["Pod"]}]});
        assert_eq!(matches(spec.clone(), pod("a"), None), Ok(true));
        assert_eq!(matches(spec, deployment.clone(), None), Ok(false));
        let any_apps = json!({"kinds": [{"apiGroups": ["apps"], "kinds": ["*"]}]});
        assert_eq!(matches(any_apps, deployment.clone(), None), Ok(true));
        let no_groups = json!({"kinds": [{"kinds": ["Deployment"]}]});
        assert_eq!(matches(no_groups, deployment, None), Ok(true));
    }

    #[test]
    fn a_kind_may_match_unless_no_kinds_entry_names_it_or_a_wildcard() {
        let may = |spec: Value, kind: &str| Match::parse(&spec).unwrap().may_match_kind(kind);
        let pods = json!({"kinds": [{"apiGroups": [""], "kinds": ["Pod"]}]});
        assert!(may(pods.clone(), "Pod"));
        assert!(!may(pods.clone(), "Deployment"));
        // Groups are not looked at: a Pod of any group may match.
        let other_group = json!({"kinds": [{"apiGroups": ["example.com"], "kinds": ["Pod"]}]});
        assert!(may(other_group, "Pod"));
        for any in [
            json!({}),
            json!({"kinds": []}),
            json!({"kinds": [{"apiGroups": ["apps"]}]}),
            json!({"kinds": [{"apiGroups": ["apps"], "kinds": ["Pod", "*"]}]}),
        ] {
            assert!(may(any.clone(), "Role"), "{any}");
        }
    }

    #[test]
    fn namespaces_and_exclusions_use_the_objects_namespace_or_the_namespace_itself() {
        let spec = json!({"namespaces": ["prod-*"], "excludedNamespaces": ["prod-secret"]});
        assert_eq!(matches(spec.clone(), pod("prod-web"), None), Ok(true));
        assert_eq!(matches(spec.clone(), pod("dev"), None), Ok(false));
        assert_eq!(matches(spec.clone(), pod("prod-secret"), None), Ok(false));
        let ns =
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod-secret"}});
        assert_eq!(matches(spec.clone(), ns, None), Ok(false));
        // Cluster-scoped objects that are not namespaces are not disqualified.
        let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}});
        assert_eq!(matches(spec, node, None), Ok(true));
    }

    #[test]
    fn scope_separates_cluster_from_namespaced_objects() {
        let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}});
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}});
        let cluster = json!({"scope": "Cluster"});
        let namespaced = json!({"scope": "Namespaced"});
        assert_eq!(matches(cluster.clone(), node.clone(), None), Ok(true));
        assert_eq!(matches(cluster.clone(), ns.clone(), None), Ok(true));
        assert_eq!(matches(cluster, pod("a"), None), Ok(false));
        assert_eq!(matches(namespaced.clone(), pod("a"), None), Ok(true));
        assert_eq!(matches(namespaced.clone(), ns, None), Ok(false));
        assert_eq!(matches(namespaced, node.clone(), None), Ok(false));
        assert_eq!(matches(json!({"scope": "*"}), node, None), Ok(true));
    }

    #[test]
    fn label_selectors_support_every_operator() {
        let spec = |expr: Value| json!({"labelSelector": {"matchExpressions": [expr]}});
        let web = pod("a");
        let cases = [
            (
                json!({"key": "app", "operator": "In", "values": ["web", "api"]}),
                true,
            ),
            (
                json!({"key": "app", "operator": "In", "values": ["api"]}),
                false,
            ),
            (
                json!({"key": "app", "operator": "NotIn", "values": ["api"]}),
                true,
            ),
            (
                json!({"key": "tier", "operator": "NotIn", "values": ["x"]}),
                true,
            ),
            (json!({"key": "app", "operator": "Exists"}), true),
            (json!({"key": "app", "operator": "DoesNotExist"}), false),
        ];
        for (expr, want) in cases {
            assert_eq!(
                matches(spec(expr.clone()), web.clone(), None),
                Ok(want),
                "{expr}"
            );
        }
        let labels = json!({"labelSelector": {"matchLabels": {"app": "web"}}});
        assert_eq!(matches(labels, web.clone(), None), Ok(true));
        assert_eq!(matches(json!({"labelSelector": {}}), web, None), Ok(true));
        assert!(Match::parse(&spec(json!({"key": "a", "operator": "In"}))).is_err());
        assert!(Match::parse(&spec(json!({"key": "a", "operator": "Like"}))).is_err());
    }

    #[test]
    fn namespace_selectors_need_the_namespace_object() {
        let spec = json!({"namespaceSelector": {"matchLabels": {"env": "prod"}}});
        let prod = json!({"apiVersion": "v1", "kind": "Namespace",
                          "metadata": {"name": "a", "labels": {"env": "prod"}}});
        assert_eq!(
            matches(spec.clone(), pod("a"), Some(prod.clone())),
            Ok(true)
        );
        assert!(matches(spec.clone(), pod("a"), None).is_err());
        // A Namespace is judged by its own labels; other cluster-scoped objects always match.
        assert_eq!(matches(spec.clone(), prod, None), Ok(true));
        let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}});
        assert_eq!(matches(spec, node, None), Ok(true));
    }

    #[test]
    fn names_match_names_and_generate_names() {
        let spec = json!({"name": "web-*"});
        assert_eq!(matches(spec.clone(), pod("a"), None), Ok(true));
        let generated =
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "web-"}});
        assert_eq!(matches(spec, generated, None), Ok(true));
        assert_eq!(matches(json!({"name": "api"}), pod("a"), None), Ok(false));
    }

    #[test]
    fn generated_only_constraints_never_match_original_objects() {
        assert_eq!(
            matches(json!({"source": "Generated"}), pod("a"), None),
            Ok(false)
        );
        assert_eq!(
            matches(json!({"source": "Original"}), pod("a"), None),
            Ok(true)
        );
        assert!(Match::parse(&json!({"source": "Mutated"})).is_err());
    }

    #[test]
    fn scoped_actions_resolve_per_enforcement_point() {
        let action = EnforcementAction::Scoped(vec![
            ("warn".into(), vec!["validation.gatekeeper.sh".into()]),
            ("deny".into(), vec!["validation.gatekeeper.sh".into()]),
            ("dryrun".into(), vec!["*".into()]),
        ]);
        assert_eq!(action.at(EnforcementPoint::Validation), Some(Action::Deny));
        assert_eq!(action.at(EnforcementPoint::Gator), Some(Action::Audit));
        let only_audit =
            EnforcementAction::Scoped(vec![("deny".into(), vec!["audit.gatekeeper.sh".into()])]);
        assert_eq!(only_audit.at(EnforcementPoint::Gator), None);
        assert_eq!(
            EnforcementAction::Dryrun.at(EnforcementPoint::Gator),
            Some(Action::Audit)
        );
    }
}
