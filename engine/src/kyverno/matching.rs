//! A rule's `match` and `exclude` (and a PolicyException's `match`): `any` / `all` of resource
//! filters, each of kinds, names, namespaces, annotations, label and namespace selectors,
//! operations, and who sends the request (subjects, roles, cluster roles).

use std::collections::BTreeMap;

use serde_json::Value;

use super::pattern::wildcard_match;
use super::Context;
use crate::admission::AdmissionRequest;
use crate::source::{string_items, string_list};

/// `group/version/Kind[/subresource]`, each part possibly a wildcard; a missing group or version
/// matches any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindSelector {
    pub group: Option<String>,
    pub version: Option<String>,
    pub kind: String,
    pub subresource: Option<String>,
}

impl KindSelector {
    pub fn parse(text: &str) -> Result<KindSelector, String> {
        let parts: Vec<&str> = text.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(format!("`{text}` is not a kind (group/version/Kind)"));
        }
        // The kind is the first part that starts with a capital (or the last `*`).
        let at = parts
            .iter()
            .position(|p| p.starts_with(|c: char| c.is_ascii_uppercase()))
            .or_else(|| (parts.len() <= 3).then(|| parts.len() - 1))
            .ok_or_else(|| format!("`{text}` is not a kind (group/version/Kind)"))?;
        let (group, version) = match at {
            0 => (None, None),
            1 => (None, Some(parts[0].to_owned())),
            2 => (Some(parts[0].to_owned()), Some(parts[1].to_owned())),
            _ => return Err(format!("`{text}` is not a kind (group/version/Kind)")),
        };
        let subresource = match parts.len() - at {
            1 => None,
            2 => Some(parts[at + 1].to_owned()),
            _ => return Err(format!("`{text}` is not a kind (group/version/Kind)")),
        };
        Ok(KindSelector {
            group,
            version,
            kind: parts[at].to_owned(),
            subresource,
        })
    }

    /// Requests here are about whole objects, never a subresource.
    fn matches(&self, target: &Target<'_>) -> bool {
        self.may_name(target.kind)
            && self
                .group
                .as_deref()
                .is_none_or(|g| wildcard_match(g, target.group))
            && self
                .version
                .as_deref()
                .is_none_or(|v| wildcard_match(v, target.version))
    }

    /// Whether this could name objects of `kind`, in some group and version.
    fn may_name(&self, kind: &str) -> bool {
        self.subresource.is_none() && wildcard_match(&self.kind, kind)
    }

    /// Whether this names Pods only (what autogen needs).
    pub fn is_pod(&self) -> bool {
        self.kind == "Pod"
            && self.subresource.is_none()
            && self
                .group
                .as_deref()
                .is_none_or(|g| g.is_empty() || g == "*")
    }
}

/// A label selector with Kyverno's wildcards in `matchLabels`.
#[derive(Debug, Clone, Default)]
pub struct Selector {
    pub match_labels: BTreeMap<String, String>,
    pub match_expressions: Vec<(String, String, Vec<String>)>,
}

impl Selector {
    pub fn read(value: &Value) -> Result<Selector, String> {
        let map = value.as_object().ok_or("a selector must be an object")?;
        let mut selector = Selector::default();
        for (key, v) in map {
            match key.as_str() {
                "matchLabels" => {
                    for (k, v) in v.as_object().ok_or("matchLabels must be an object")? {
                        let v = v.as_str().ok_or("matchLabels values must be strings")?;
                        selector.match_labels.insert(k.clone(), v.to_owned());
                    }
                }
                "matchExpressions" => {
                    for e in v.as_array().ok_or("matchExpressions must be a list")? {
                        let key = e
                            .get("key")
                            .and_then(Value::as_str)
                            .ok_or("key: required")?;
                        let op = e
                            .get("operator")
                            .and_then(Value::as_str)
                            .ok_or("operator: required")?;
                        if !matches!(op, "In" | "NotIn" | "Exists" | "DoesNotExist") {
                            return Err(format!("operator: unknown selector operator `{op}`"));
                        }
                        let values = string_items(e.get("values"));
                        selector
                            .match_expressions
                            .push((key.to_owned(), op.to_owned(), values));
                    }
                }
                other => return Err(format!("unknown selector field `{other}`")),
            }
        }
        Ok(selector)
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels.iter().all(|(k, v)| {
            labels
                .iter()
                .any(|(lk, lv)| wildcard_match(k, lk) && wildcard_match(v, lv))
        }) && self.match_expressions.iter().all(|(key, op, values)| {
            let value = labels.get(key);
            match op.as_str() {
                "In" => value.is_some_and(|v| values.contains(v)),
                "NotIn" => value.is_none_or(|v| !values.contains(v)),
                "Exists" => value.is_some(),
                _ => value.is_none(),
            }
        })
    }
}

/// `subjects` entry.
#[derive(Debug, Clone)]
pub struct Subject {
    pub kind: String,
    pub name: String,
    pub namespace: String,
}

/// One resource filter.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub kinds: Vec<KindSelector>,
    pub names: Vec<String>,
    pub namespaces: Vec<String>,
    pub annotations: BTreeMap<String, String>,
    pub selector: Option<Selector>,
    pub namespace_selector: Option<Selector>,
    pub operations: Vec<String>,
    pub subjects: Vec<Subject>,
    pub roles: Vec<String>,
    pub cluster_roles: Vec<String>,
}

/// `any` / `all` of filters.
#[derive(Debug, Clone, Default)]
pub struct Match {
    pub any: Vec<Filter>,
    pub all: Vec<Filter>,
}

fn strings(value: Option<&Value>, field: &str) -> Result<Vec<String>, String> {
    string_list(value).ok_or_else(|| format!("{field}: must be a list of strings"))
}

impl Filter {
    fn read(value: &Value) -> Result<Filter, String> {
        let map = value.as_object().ok_or("a filter must be an object")?;
        let mut filter = Filter::default();
        for (key, v) in map {
            match key.as_str() {
                "resources" => filter
                    .read_resources(v)
                    .map_err(|e| format!("resources.{e}"))?,
                "subjects" => {
                    for s in v.as_array().ok_or("subjects: must be a list")? {
                        let text = |k: &str| {
                            s.get(k)
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_owned()
                        };
                        filter.subjects.push(Subject {
                            kind: text("kind"),
                            name: text("name"),
                            namespace: text("namespace"),
                        });
                    }
                }
                "roles" => filter.roles = strings(Some(v), "roles")?,
                "clusterRoles" => filter.cluster_roles = strings(Some(v), "clusterRoles")?,
                other => return Err(format!("unknown field `{other}`")),
            }
        }
        Ok(filter)
    }

    fn read_resources(&mut self, value: &Value) -> Result<(), String> {
        let map = value.as_object().ok_or("must be an object")?;
        for (key, v) in map {
            match key.as_str() {
                "kinds" => {
                    for kind in strings(Some(v), "kinds")? {
                        self.kinds
                            .push(KindSelector::parse(&kind).map_err(|e| format!("kinds: {e}"))?);
                    }
                }
                "name" => {
                    if let Some(name) = v.as_str() {
                        self.names.push(name.to_owned());
                    }
                }
                "names" => self.names.extend(strings(Some(v), "names")?),
                "namespaces" => self.namespaces = strings(Some(v), "namespaces")?,
                "operations" => self.operations = strings(Some(v), "operations")?,
                "annotations" => {
                    for (k, a) in v.as_object().ok_or("annotations: must be an object")? {
                        let a = a.as_str().ok_or("annotations: values must be strings")?;
                        self.annotations.insert(k.clone(), a.to_owned());
                    }
                }
                "selector" => {
                    self.selector = Some(Selector::read(v).map_err(|e| format!("selector: {e}"))?)
                }
                "namespaceSelector" => {
                    self.namespace_selector =
                        Some(Selector::read(v).map_err(|e| format!("namespaceSelector: {e}"))?)
                }
                other => return Err(format!("unknown field `{other}`")),
            }
        }
        Ok(())
    }

    /// Whether autogen may rewrite this filter for pod controllers.
    pub fn autogen_allowed(&self) -> bool {
        self.names.is_empty() && self.selector.is_none() && self.annotations.is_empty()
    }
}

impl Match {
    /// Read `{any, all}` or the older single filter (`{resources, subjects, ...}`).
    pub fn read(value: &Value) -> Result<Match, String> {
        let map = value.as_object().ok_or("must be an object")?;
        let list = |v: &Value, field: &str| -> Result<Vec<Filter>, String> {
            v.as_array()
                .ok_or_else(|| format!("{field}: must be a list"))?
                .iter()
                .enumerate()
                .map(|(i, f)| Filter::read(f).map_err(|e| format!("{field}[{i}].{e}")))
                .collect()
        };
        if map.contains_key("any") || map.contains_key("all") {
            if let Some(other) = map.keys().find(|k| *k != "any" && *k != "all") {
                return Err(format!("`{other}` cannot sit beside any/all"));
            }
            Ok(Match {
                any: map
                    .get("any")
                    .map(|v| list(v, "any"))
                    .transpose()?
                    .unwrap_or_default(),
                all: map
                    .get("all")
                    .map(|v| list(v, "all"))
                    .transpose()?
                    .unwrap_or_default(),
            })
        } else if map.is_empty() {
            Ok(Match::default())
        } else {
            Ok(Match {
                any: Vec::new(),
                all: vec![Filter::read(value)?],
            })
        }
    }

    pub fn is_empty(&self) -> bool {
        self.any.is_empty() && self.all.is_empty()
    }

    pub fn filters(&self) -> impl Iterator<Item = &Filter> {
        self.any.iter().chain(&self.all)
    }

    /// Whether [`Match::selects`] could hold for some object of `kind`, whatever else it is: only
    /// the filters' kinds are looked at (a filter without kinds may select any).
    pub fn may_select_kind(&self, kind: &str) -> bool {
        let may = |filter: &Filter| {
            filter.kinds.is_empty() || filter.kinds.iter().any(|k| k.may_name(kind))
        };
        (self.any.is_empty() || self.any.iter().any(may)) && self.all.iter().all(may)
    }

    /// For `match`: some `any` filter (when there are any) and every `all` filter hold.
    pub fn selects(&self, target: &Target<'_>) -> bool {
        (self.any.is_empty() || self.any.iter().any(|f| target.satisfies(f)))
            && self.all.iter().all(|f| target.satisfies(f))
    }
}

/// What the filters look at: the request and its object, with the kind autogen may stand in.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub kind: &'a str,
    pub group: &'a str,
    pub version: &'a str,
    pub object: &'a Value,
    pub request: &'a AdmissionRequest,
    pub ctx: &'a Context<'a>,
}

impl<'a> Target<'a> {
    pub fn new(request: &'a AdmissionRequest, object: &'a Value, ctx: &'a Context<'a>) -> Self {
        Target {
            kind: &request.kind.kind,
            group: &request.kind.group,
            version: &request.kind.version,
            object,
            request,
            ctx,
        }
    }

    fn metadata(&self, key: &str) -> &'a str {
        self.object
            .get("metadata")
            .and_then(|m| m.get(key))
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    fn string_map(&self, key: &str) -> BTreeMap<String, String> {
        self.object
            .get("metadata")
            .and_then(|m| m.get(key))
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The namespace a filter's `namespaces` compares (a Namespace's own name).
    fn namespace(&self) -> &'a str {
        if self.request.kind.kind == "Namespace" {
            self.metadata("name")
        } else {
            self.metadata("namespace")
        }
    }

    fn namespace_labels(&self) -> BTreeMap<String, String> {
        let name = self.namespace();
        if name.is_empty() {
            return BTreeMap::new();
        }
        let found = self.ctx.namespaces.get(name);
        let mut labels: BTreeMap<String, String> = found
            .and_then(|ns| ns.get("metadata"))
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        labels
            .entry("kubernetes.io/metadata.name".to_owned())
            .or_insert_with(|| name.to_owned());
        labels
    }

    /// Whether one filter holds: every part it sets.
    pub fn satisfies(&self, filter: &Filter) -> bool {
        if !filter.kinds.is_empty() && !filter.kinds.iter().any(|k| k.matches(self)) {
            return false;
        }
        if !filter.names.is_empty() {
            let name = self.metadata("name");
            if !filter.names.iter().any(|n| wildcard_match(n, name)) {
                return false;
            }
        }
        if !filter.namespaces.is_empty() {
            let namespace = self.namespace();
            if !filter
                .namespaces
                .iter()
                .any(|n| wildcard_match(n, namespace))
            {
                return false;
            }
        }
        if !filter.operations.is_empty()
            && !filter
                .operations
                .iter()
                .any(|op| op == self.request.operation.as_str())
        {
            return false;
        }
        if !filter.annotations.is_empty() {
            let annotations = self.string_map("annotations");
            let all = filter.annotations.iter().all(|(k, v)| {
                annotations
                    .iter()
                    .any(|(ak, av)| wildcard_match(k, ak) && wildcard_match(v, av))
            });
            if !all {
                return false;
            }
        }
        if let Some(selector) = &filter.selector {
            if !selector.matches(&self.string_map("labels")) {
                return false;
            }
        }
        if let Some(selector) = &filter.namespace_selector {
            if !selector.matches(&self.namespace_labels()) {
                return false;
            }
        }
        let user = &self.request.user_info;
        if !filter.subjects.is_empty() {
            let any = filter.subjects.iter().any(|s| match s.kind.as_str() {
                "User" => wildcard_match(&s.name, &user.username),
                "Group" => user.groups.iter().any(|g| wildcard_match(&s.name, g)),
                "ServiceAccount" => {
                    user.username == format!("system:serviceaccount:{}:{}", s.namespace, s.name)
                }
                _ => false,
            });
            if !any {
                return false;
            }
        }
        // Roles come from the cluster's role bindings, which requests here do not carry: a
        // filter that needs one matches no request.
        if !filter.roles.is_empty() || !filter.cluster_roles.is_empty() {
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::namespaces::Namespaces;
    use serde_json::json;

    #[test]
    fn kind_selectors_read_every_form() {
        let k = |t: &str| KindSelector::parse(t);
        assert_eq!(k("Pod").map(|s| s.kind), Ok("Pod".into()));
        assert_eq!(k("v1/Pod").map(|s| s.version), Ok(Some("v1".into())));
        let s = k("batch/*/CronJob").unwrap();
        assert_eq!(
            (s.group.as_deref(), s.version.as_deref(), s.kind.as_str()),
            (Some("batch"), Some("*"), "CronJob")
        );
        assert_eq!(
            k("Pod/exec").map(|s| s.subresource),
            Ok(Some("exec".into()))
        );
        assert_eq!(k("*").map(|s| s.kind), Ok("*".into()));
        assert!(k("a//b").is_err());
    }

    fn target_matches(m: Value, object: Value) -> bool {
        let ns = Namespaces::from(vec![
            json!({"metadata": {"name": "prod", "labels": {"env": "prod"}}}),
        ]);
        let ctx = Context { namespaces: &ns };
        let Ok(request) = AdmissionRequest::create(object.clone()) else {
            return false;
        };
        let Ok(m) = Match::read(&m) else { return false };
        m.selects(&Target::new(&request, &object, &ctx))
    }

    #[test]
    fn filters_match_as_kyverno() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": "web-1", "namespace": "prod", "labels": {"app": "web"},
            "annotations": {"team": "a"}}});
        let cases: &[(Value, bool)] = &[
            (json!({"any": [{"resources": {"kinds": ["Pod"]}}]}), true),
            (
                json!({"any": [{"resources": {"kinds": ["Deployment"]}}]}),
                false,
            ),
            (json!({"any": [{"resources": {"kinds": ["v1/Pod"]}}]}), true),
            (
                json!({"any": [{"resources": {"kinds": ["apps/v1/Pod"]}}]}),
                false,
            ),
            (json!({"any": [{"resources": {"kinds": ["*"]}}]}), true),
            (json!({"any": [{"resources": {"names": ["web-?"]}}]}), true),
            (json!({"any": [{"resources": {"names": ["db*"]}}]}), false),
            (
                json!({"any": [{"resources": {"namespaces": ["pro*"]}}]}),
                true,
            ),
            (
                json!({"any": [{"resources": {"operations": ["UPDATE"]}}]}),
                false,
            ),
            (
                json!({"any": [{"resources": {"annotations": {"team": "?"}}}]}),
                true,
            ),
            (
                json!({"any": [{"resources": {"selector": {"matchLabels": {"app": "w*"}}}}]}),
                true,
            ),
            (
                json!({"any": [{"resources": {"selector": {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]}}}]}),
                false,
            ),
            (
                json!({"any": [{"resources": {"namespaceSelector": {"matchLabels": {"env": "prod"}}}}]}),
                true,
            ),
            (
                json!({"any": [{"resources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "prod"}}}}]}),
                true,
            ),
            (
                json!({"all": [{"resources": {"kinds": ["Pod"]}}, {"resources": {"names": ["x"]}}]}),
                false,
            ),
            (
                json!({"any": [{"resources": {"names": ["x"]}}, {"resources": {"kinds": ["Pod"]}}]}),
                true,
            ),
            (json!({"resources": {"kinds": ["Pod"]}}), true),
            (
                json!({"any": [{"subjects": [{"kind": "User", "name": "alice"}]}]}),
                false,
            ),
            (json!({"any": [{"clusterRoles": ["cluster-admin"]}]}), false),
        ];
        for (m, want) in cases {
            assert_eq!(target_matches(m.clone(), pod.clone()), *want, "{m}");
        }
    }
}
