//! Exceptions rendered into each engine's own exclusion mechanism. Pure: the caller hands in the
//! objects [`crate::render`] produced (JSON, as a cluster receives them) and the active exceptions of
//! the policy; [`apply`] returns the objects with the exclusions written in.
//!
//! What each engine gets, per scope:
//!
//! | scope | ValidatingAdmissionPolicy | Gatekeeper Constraint | Pod Security |
//! |---|---|---|---|
//! | namespaces | binding `matchResources.namespaceSelector`: a `NotIn` term on `kubernetes.io/metadata.name` | `spec.match.excludedNamespaces` | the namespace is not labelled |
//! | label selector, one key | binding `matchResources.objectSelector`: a `NotIn` term | `spec.match.labelSelector`: a `NotIn` term | refused |
//! | label selector, several keys | a `matchConditions` entry on the policy (CEL) | refused | refused |
//! | named resource | a `matchConditions` entry on the policy (CEL) | refused | refused |
//!
//! Kyverno has its own object for this, so every scope becomes a PolicyException beside the
//! policy, in the [`KYVERNO_EXCEPTION_NAMESPACE`]: for a ClusterPolicy or Policy a `kyverno.io/v2`
//! one naming each rule (and its autogen forms) with a `match` of the namespaces, the labels (one
//! selector: all of them) or the kind, namespace and name; for a ValidatingPolicy a
//! `policies.kyverno.io` one with the CEL condition that selects what is left out.
//!
//! Why CEL for several keys and for a named resource: selector terms are ANDed, so "not (a=1 and
//! b=2)" cannot be written as terms (a `NotIn` per key would leave out every object carrying
//! either label). `excludeResourceRules` can name a resource but cannot say in which namespace,
//! so it would leave out same-named objects in every namespace; a match condition on
//! `request.kind`, `request.namespace` and `request.name` leaves out exactly the one object.
//! Gatekeeper's match has no "exclude this name" and its label selector has the same AND problem,
//! so those scopes are refused there with a message ([`supported`]), as they are for Pod Security,
//! whose only unit is the namespace.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// What an exception leaves out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Scope {
    /// Every object in these namespaces.
    Namespaces { namespaces: Vec<String> },
    /// Every object carrying all these labels.
    Selector { labels: BTreeMap<String, String> },
    /// One object: its kind (`Deployment`), namespace (empty for cluster-scoped) and name.
    Resource {
        #[serde(rename = "resource_kind")]
        kind: String,
        namespace: String,
        name: String,
    },
}

/// One exception as the renderer needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exclusion {
    /// The exception's id; names the match condition it becomes, so a reader can trace it.
    pub id: String,
    pub scope: Scope,
}

/// The engines an exclusion can be written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Vap,
    Gatekeeper,
    PodSecurity,
    Kyverno,
}

/// Where Palisade puts the PolicyExceptions it renders: the namespace Kyverno is installed in by
/// default, which is also the usual one its `exceptionNamespace` setting names.
pub const KYVERNO_EXCEPTION_NAMESPACE: &str = "kyverno";

/// Whether `scope` can be written into `target`'s exclusion; `Err` says why not, in words for the
/// person requesting the exception.
pub fn supported(target: Target, scope: &Scope) -> Result<(), String> {
    match (target, scope) {
        (_, Scope::Namespaces { .. }) | (Target::Vap | Target::Kyverno, _) => Ok(()),
        (Target::Gatekeeper, Scope::Selector { labels }) if labels.len() == 1 => Ok(()),
        (Target::Gatekeeper, Scope::Selector { .. }) => Err(
            "a Gatekeeper constraint can leave out objects by one label only (its label selector \
             cannot say \"not all of these\"); request one exception per label, or a namespace"
                .to_owned(),
        ),
        (Target::Gatekeeper, Scope::Resource { .. }) => Err(
            "a Gatekeeper constraint cannot leave out one named resource; request a namespace or \
             a single-label exception instead"
                .to_owned(),
        ),
        (Target::PodSecurity, _) => Err(
            "Pod Security works per namespace (the namespace's labels): only a namespace \
             exception can be honoured"
                .to_owned(),
        ),
    }
}

/// The objects with `exclusions` written in: bindings and policies (VAP), constraints
/// (Gatekeeper), Pod Security namespace patches (dropped for excepted namespaces). Other objects
/// pass unchanged. An exclusion the object's engine cannot express is an error.
pub fn apply(objects: Vec<Value>, exclusions: &[Exclusion]) -> Result<Vec<Value>, String> {
    if exclusions.is_empty() {
        return Ok(objects);
    }
    let excepted_namespaces: Vec<&str> = exclusions
        .iter()
        .filter_map(|e| match &e.scope {
            Scope::Namespaces { namespaces } => Some(namespaces.iter().map(String::as_str)),
            _ => None,
        })
        .flatten()
        .collect();
    let mut out = Vec::with_capacity(objects.len());
    for mut object in objects {
        let kind = object
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let group = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .and_then(|v| v.split_once('/'))
            .map_or("", |(group, _)| group)
            .to_owned();
        match (group.as_str(), kind.as_str()) {
            ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding") => {
                vap_binding(&mut object, exclusions);
            }
            ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy") => {
                vap_policy(&mut object, exclusions);
            }
            ("constraints.gatekeeper.sh", _) => constraint(&mut object, exclusions)?,
            ("kyverno.io", "ClusterPolicy" | "Policy")
            | ("policies.kyverno.io", "ValidatingPolicy" | "NamespacedValidatingPolicy") => {
                let exceptions = kyverno_exceptions(&object, exclusions);
                out.push(object);
                out.extend(exceptions);
                continue;
            }
            ("", "Namespace") if is_pod_security_patch(&object) => {
                for exclusion in exclusions {
                    supported(Target::PodSecurity, &exclusion.scope)?;
                }
                let name = object
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if excepted_namespaces.contains(&name) {
                    continue;
                }
            }
            _ => {}
        }
        out.push(object);
    }
    Ok(out)
}

fn is_pod_security_patch(object: &Value) -> bool {
    object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .is_some_and(|labels| {
            labels
                .keys()
                .any(|k| k.starts_with("pod-security.kubernetes.io/"))
        })
}

/// `spec.<path...>` as a mutable array, created empty when missing.
fn array_at<'a>(object: &'a mut Value, path: &[&str]) -> Option<&'a mut Vec<Value>> {
    let mut at = object;
    for (index, key) in path.iter().enumerate() {
        let last = index + 1 == path.len();
        let map = at.as_object_mut()?;
        at = map.entry((*key).to_owned()).or_insert_with(
            || {
                if last {
                    json!([])
                } else {
                    json!({})
                }
            },
        );
    }
    at.as_array_mut()
}

fn not_in(key: &str, values: &[&str]) -> Value {
    json!({ "key": key, "operator": "NotIn", "values": values })
}

fn vap_binding(object: &mut Value, exclusions: &[Exclusion]) {
    for exclusion in exclusions {
        match &exclusion.scope {
            Scope::Namespaces { namespaces } => {
                let names: Vec<&str> = namespaces.iter().map(String::as_str).collect();
                if let Some(terms) = array_at(
                    object,
                    &[
                        "spec",
                        "matchResources",
                        "namespaceSelector",
                        "matchExpressions",
                    ],
                ) {
                    terms.push(not_in("kubernetes.io/metadata.name", &names));
                }
            }
            Scope::Selector { labels } if labels.len() == 1 => {
                if let Some(terms) = array_at(
                    object,
                    &[
                        "spec",
                        "matchResources",
                        "objectSelector",
                        "matchExpressions",
                    ],
                ) {
                    for (key, value) in labels {
                        terms.push(not_in(key, &[value]));
                    }
                }
            }
            // Several labels and named resources go on the policy (see the module's table).
            Scope::Selector { .. } | Scope::Resource { .. } => {}
        }
    }
}

/// A CEL string literal.
fn cel_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// The CEL match condition that is false (the request is left out) for what `scope` names; `None`
/// when the scope is written into the binding instead.
pub fn match_condition(scope: &Scope) -> Option<String> {
    match scope {
        Scope::Selector { labels } if labels.len() > 1 => Some(format!("!({})", selects(scope))),
        Scope::Resource { .. } => Some(format!("!{}", selects(scope))),
        _ => None,
    }
}

/// A CEL expression that is true for what `scope` names.
fn selects(scope: &Scope) -> String {
    match scope {
        Scope::Namespaces { namespaces } => {
            let list: Vec<String> = namespaces.iter().map(|n| cel_string(n)).collect();
            format!("request.namespace in [{}]", list.join(", "))
        }
        Scope::Selector { labels } => {
            let all = labels
                .iter()
                .map(|(key, value)| {
                    let key = cel_string(key);
                    format!(
                        "{key} in object.metadata.labels && object.metadata.labels[{key}] == {}",
                        cel_string(value)
                    )
                })
                .collect::<Vec<_>>()
                .join(" && ");
            format!("object != null && has(object.metadata.labels) && {all}")
        }
        Scope::Resource {
            kind,
            namespace,
            name,
        } => format!(
            "(request.kind.kind == {} && request.namespace == {} && request.name == {})",
            cel_string(kind),
            cel_string(namespace),
            cel_string(name)
        ),
    }
}

/// The longest name Kyverno can carry: it labels each report with `polex.kyverno.io/<name>`, and
/// the name part of a label key is at most 63 characters (a longer one made Kyverno fail to write
/// every report of the cluster, seen against the real Kyverno in the test bed).
const MAX_EXCEPTION_NAME: usize = 63;

/// The name of the PolicyException for exception `id` of `policy`: `palisade-<policy>-<id>`, the
/// policy's name shortened as needed so that the whole fits [`MAX_EXCEPTION_NAME`] (the id keeps
/// it unique).
fn exception_name(policy: &str, id: &str) -> String {
    let id = id.to_ascii_lowercase();
    let full = format!("palisade-{policy}-{id}");
    if full.len() <= MAX_EXCEPTION_NAME {
        return full;
    }
    let room = MAX_EXCEPTION_NAME.saturating_sub("palisade-".len() + 1 + id.len());
    let short = policy
        .get(..room.min(policy.len()))
        .unwrap_or_default()
        .trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    let name = if short.is_empty() {
        format!("palisade-{id}")
    } else {
        format!("palisade-{short}-{id}")
    };
    name.chars().take(MAX_EXCEPTION_NAME).collect()
}

/// The PolicyExceptions that leave `exclusions` out of a Kyverno policy (see the module's notes).
fn kyverno_exceptions(policy: &Value, exclusions: &[Exclusion]) -> Vec<Value> {
    let text = |pointer: &str| {
        policy
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let (api_version, kind, name) = (text("/apiVersion"), text("/kind"), text("/metadata/name"));
    let policy_name = match text("/metadata/namespace") {
        "" => name.to_owned(),
        namespace => format!("{namespace}/{name}"),
    };
    let is_rule_policy = api_version.starts_with("kyverno.io/");
    let rules: Vec<String> = policy
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|rule| rule.get("name").and_then(Value::as_str))
        .flat_map(|rule| {
            [
                rule.to_owned(),
                format!("autogen-{rule}"),
                format!("autogen-cronjob-{rule}"),
            ]
        })
        .collect();
    exclusions
        .iter()
        .map(|exclusion| {
            let metadata = json!({
                "name": exception_name(name, &exclusion.id),
                "namespace": KYVERNO_EXCEPTION_NAMESPACE,
                "labels": { "app.kubernetes.io/managed-by": "palisade" },
                "annotations": { "palisade.dev/exception": exclusion.id },
            });
            if is_rule_policy {
                let resources = match &exclusion.scope {
                    Scope::Namespaces { namespaces } => json!({ "namespaces": namespaces }),
                    Scope::Selector { labels } => json!({ "selector": { "matchLabels": labels } }),
                    Scope::Resource {
                        kind,
                        namespace,
                        name,
                    } if namespace.is_empty() => json!({ "kinds": [kind], "names": [name] }),
                    Scope::Resource {
                        kind,
                        namespace,
                        name,
                    } => json!({ "kinds": [kind], "namespaces": [namespace], "names": [name] }),
                };
                json!({
                    "apiVersion": "kyverno.io/v2",
                    "kind": "PolicyException",
                    "metadata": metadata,
                    "spec": {
                        "exceptions": [{ "policyName": policy_name, "ruleNames": rules }],
                        "match": { "any": [{ "resources": resources }] },
                    },
                })
            } else {
                json!({
                    "apiVersion": "policies.kyverno.io/v1alpha1",
                    "kind": "PolicyException",
                    "metadata": metadata,
                    "spec": {
                        "policyRefs": [{ "name": name, "kind": kind }],
                        "matchConditions": [{
                            "name": format!("palisade-exception-{}", exclusion.id.to_ascii_lowercase()),
                            "expression": selects(&exclusion.scope),
                        }],
                    },
                })
            }
        })
        .collect()
}

fn vap_policy(object: &mut Value, exclusions: &[Exclusion]) {
    for exclusion in exclusions {
        if let Some(expression) = match_condition(&exclusion.scope) {
            if let Some(conditions) = array_at(object, &["spec", "matchConditions"]) {
                conditions.push(json!({
                    "name": format!("palisade-exception-{}", exclusion.id.to_ascii_lowercase()),
                    "expression": expression,
                }));
            }
        }
    }
}

fn constraint(object: &mut Value, exclusions: &[Exclusion]) -> Result<(), String> {
    for exclusion in exclusions {
        supported(Target::Gatekeeper, &exclusion.scope)?;
        match &exclusion.scope {
            Scope::Namespaces { namespaces } => {
                if let Some(excluded) = array_at(object, &["spec", "match", "excludedNamespaces"]) {
                    for namespace in namespaces {
                        let namespace = Value::from(namespace.as_str());
                        if !excluded.contains(&namespace) {
                            excluded.push(namespace);
                        }
                    }
                }
            }
            Scope::Selector { labels } => {
                if let Some(terms) = array_at(
                    object,
                    &["spec", "match", "labelSelector", "matchExpressions"],
                ) {
                    for (key, value) in labels {
                        terms.push(not_in(key, &[value]));
                    }
                }
            }
            // Refused by `supported` above.
            Scope::Resource { .. } => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_policy_exception_name_fits_a_kyverno_report_label() {
        let id = "0f7c3d2a-6b1e-4c8f-9a0d-5e2b7c1f4a93";
        assert_eq!(exception_name("need-team", "E1"), "palisade-need-team-e1");
        let long = exception_name("no-privileged-containers-anywhere-at-all", id);
        assert!(long.len() <= 63, "{long}");
        assert_eq!(long, format!("palisade-no-privileged-con-{id}"));
        // Different exceptions of one policy keep different names.
        let other = exception_name(
            "no-privileged-containers-anywhere-at-all",
            &id.replace('0', "1"),
        );
        assert_ne!(long, other);
        let name = exception_name(&"x".repeat(200), &"e".repeat(80));
        assert!(name.len() <= 63 && name.starts_with("palisade-"), "{name}");
    }

    use super::*;

    fn exclusion(id: &str, scope: Scope) -> Exclusion {
        Exclusion {
            id: id.to_owned(),
            scope,
        }
    }

    fn namespaces(names: &[&str]) -> Scope {
        Scope::Namespaces {
            namespaces: names.iter().map(|n| (*n).to_owned()).collect(),
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> Scope {
        Scope::Selector {
            labels: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    fn binding() -> Value {
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": { "name": "p" },
            "spec": {
                "policyName": "p",
                "validationActions": ["Deny", "Audit"],
                "matchResources": { "namespaceSelector": { "matchExpressions": [
                    { "key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system"] }
                ] } }
            }
        })
    }

    fn policy() -> Value {
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": { "name": "p" },
            "spec": { "validations": [{ "expression": "true" }] }
        })
    }

    fn gatekeeper_constraint() -> Value {
        json!({
            "apiVersion": "constraints.gatekeeper.sh/v1beta1",
            "kind": "K8sPSPPrivilegedContainer",
            "metadata": { "name": "c" },
            "spec": { "enforcementAction": "deny", "match": { "excludedNamespaces": ["kube-system"] } }
        })
    }

    #[test]
    fn no_exclusions_change_nothing() {
        let objects = vec![binding(), policy(), gatekeeper_constraint()];
        assert_eq!(apply(objects.clone(), &[]), Ok(objects));
    }

    #[test]
    fn a_vap_binding_leaves_out_namespaces_next_to_the_system_ones() {
        let out = apply(
            vec![binding()],
            &[exclusion("e1", namespaces(&["team-a", "team-b"]))],
        )
        .unwrap();
        let terms = out[0]
            .pointer("/spec/matchResources/namespaceSelector/matchExpressions")
            .unwrap();
        assert_eq!(
            terms,
            &json!([
                { "key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system"] },
                { "key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["team-a", "team-b"] }
            ])
        );
    }

    #[test]
    fn a_single_label_goes_to_the_object_selector_and_several_to_a_match_condition() {
        let out = apply(
            vec![binding(), policy()],
            &[
                exclusion("E1", labels(&[("legacy", "true")])),
                exclusion("E2", labels(&[("app", "db"), ("tier", "data")])),
            ],
        )
        .unwrap();
        assert_eq!(
            out[0]
                .pointer("/spec/matchResources/objectSelector/matchExpressions")
                .unwrap(),
            &json!([{ "key": "legacy", "operator": "NotIn", "values": ["true"] }])
        );
        let conditions = out[1].pointer("/spec/matchConditions").unwrap();
        assert_eq!(conditions.as_array().unwrap().len(), 1);
        assert_eq!(conditions[0]["name"], "palisade-exception-e2");
        assert_eq!(
            conditions[0]["expression"],
            "!(object != null && has(object.metadata.labels) && 'app' in object.metadata.labels \
             && object.metadata.labels['app'] == 'db' && 'tier' in object.metadata.labels \
             && object.metadata.labels['tier'] == 'data')"
        );
    }

    #[test]
    fn a_named_resource_becomes_an_exact_match_condition_on_the_policy() {
        let scope = Scope::Resource {
            kind: "Deployment".into(),
            namespace: "shop".into(),
            name: "it's".into(),
        };
        let out = apply(vec![binding(), policy()], &[exclusion("e3", scope)]).unwrap();
        assert_eq!(out[0], binding(), "the binding is unchanged");
        assert_eq!(
            out[1].pointer("/spec/matchConditions/0/expression").unwrap(),
            "!(request.kind.kind == 'Deployment' && request.namespace == 'shop' && request.name == 'it\\'s')"
        );
    }

    #[test]
    fn a_constraint_gets_excluded_namespaces_and_a_label_term() {
        let out = apply(
            vec![gatekeeper_constraint()],
            &[
                exclusion("e1", namespaces(&["team-a", "kube-system"])),
                exclusion("e2", labels(&[("legacy", "true")])),
            ],
        )
        .unwrap();
        assert_eq!(
            out[0].pointer("/spec/match/excludedNamespaces").unwrap(),
            &json!(["kube-system", "team-a"])
        );
        assert_eq!(
            out[0]
                .pointer("/spec/match/labelSelector/matchExpressions")
                .unwrap(),
            &json!([{ "key": "legacy", "operator": "NotIn", "values": ["true"] }])
        );
    }

    #[test]
    fn a_constraint_refuses_what_it_cannot_express() {
        let named = Scope::Resource {
            kind: "Pod".into(),
            namespace: "a".into(),
            name: "b".into(),
        };
        let err = apply(vec![gatekeeper_constraint()], &[exclusion("e", named)]).unwrap_err();
        assert!(err.contains("named resource"), "{err}");
        let two = labels(&[("a", "1"), ("b", "2")]);
        let err = apply(vec![gatekeeper_constraint()], &[exclusion("e", two)]).unwrap_err();
        assert!(err.contains("one label"), "{err}");
    }

    #[test]
    fn pod_security_leaves_an_excepted_namespace_unlabelled_and_refuses_other_scopes() {
        let patch = |name: &str| {
            json!({
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": { "name": name, "labels": { "pod-security.kubernetes.io/enforce": "restricted" } }
            })
        };
        let out = apply(
            vec![patch("a"), patch("b")],
            &[exclusion("e", namespaces(&["b"]))],
        )
        .unwrap();
        assert_eq!(out, vec![patch("a")]);
        let err = apply(vec![patch("a")], &[exclusion("e", labels(&[("x", "y")]))]).unwrap_err();
        assert!(err.contains("only a namespace"), "{err}");
        assert!(supported(Target::PodSecurity, &namespaces(&["a"])).is_ok());
        assert!(supported(Target::Vap, &labels(&[("a", "1"), ("b", "2")])).is_ok());
    }

    #[test]
    fn kyverno_policies_get_one_policy_exception_per_exclusion_for_every_scope() {
        let policy = json!({
            "apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy",
            "metadata": {"name": "need-team"},
            "spec": {"rules": [{"name": "team-label"}]},
        });
        let out = apply(
            vec![policy.clone()],
            &[
                exclusion("E1", namespaces(&["legacy"])),
                exclusion("E2", labels(&[("a", "1"), ("b", "2")])),
                exclusion(
                    "E3",
                    Scope::Resource {
                        kind: "Deployment".into(),
                        namespace: "team".into(),
                        name: "web".into(),
                    },
                ),
            ],
        )
        .unwrap();
        assert_eq!(out.len(), 4);
        assert_eq!(out[0], policy, "the policy itself is unchanged");
        for exception in &out[1..] {
            assert_eq!(exception["kind"], "PolicyException");
            assert_eq!(
                exception["metadata"]["namespace"],
                KYVERNO_EXCEPTION_NAMESPACE
            );
            assert_eq!(
                exception["spec"]["exceptions"][0],
                json!({"policyName": "need-team", "ruleNames": [
                    "team-label", "autogen-team-label", "autogen-cronjob-team-label"]})
            );
        }
        assert_eq!(out[1]["metadata"]["name"], "palisade-need-team-e1");
        let filter = |i: usize| &out[i]["spec"]["match"]["any"][0]["resources"];
        assert_eq!(filter(1), &json!({"namespaces": ["legacy"]}));
        assert_eq!(
            filter(2),
            &json!({"selector": {"matchLabels": {"a": "1", "b": "2"}}})
        );
        assert_eq!(
            filter(3),
            &json!({"kinds": ["Deployment"], "namespaces": ["team"], "names": ["web"]})
        );
    }

    #[test]
    fn a_validating_policy_gets_a_cel_policy_exception() {
        let policy = json!({
            "apiVersion": "policies.kyverno.io/v1alpha1", "kind": "ValidatingPolicy",
            "metadata": {"name": "replicas"}, "spec": {},
        });
        let out = apply(vec![policy], &[exclusion("E9", namespaces(&["a", "b'c"]))]).unwrap();
        assert_eq!(out[1]["apiVersion"], "policies.kyverno.io/v1alpha1");
        assert_eq!(
            out[1]["spec"]["policyRefs"],
            json!([{"name": "replicas", "kind": "ValidatingPolicy"}])
        );
        assert_eq!(
            out[1]["spec"]["matchConditions"][0]["expression"],
            "request.namespace in ['a', 'b\\'c']"
        );
        for scope in [labels(&[("x", "1")]), namespaces(&["n"])] {
            assert_eq!(supported(Target::Kyverno, &scope), Ok(()));
        }
    }
}
