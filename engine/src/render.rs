//! What each engine receives in each mode: a policy's source rendered into the exact manifests a
//! cluster gets when the policy runs there in `audit`, `warn` or `enforce` (see [`crate::mode`]).
//!
//! - ValidatingAdmissionPolicy: the policy as written; every binding gets the mode's
//!   `validationActions`; a policy without a binding gets one. Parameter objects go along.
//! - Gatekeeper: the ConstraintTemplate as written; every Constraint gets the mode's
//!   `enforcementAction` (`dryrun`, `warn`, `deny`).
//! - Pod Security (`PodSecurityEntry`): the Pod Security Admission labels of the mode, as a
//!   Namespace patch applied to each target namespace ([`pod_security_labels`]).
//! - Kyverno ClusterPolicy / Policy: every rule's `validate.failureAction` (and the policy's
//!   `validationFailureAction`) is the mode's: `Audit` in audit, `Audit` with `emitWarning: true`
//!   in warn (Kyverno's way to warn a client), `Enforce` in enforce; per-namespace overrides are
//!   dropped, so the mode is the whole story. Only `validate` rules are applied ([`kyverno_refusal`]).
//! - Kyverno ValidatingPolicy: `validationActions` as a ValidatingAdmissionPolicyBinding's.
//! - Resource templates (NetworkPolicy, Role, RoleBinding): applied as written in `enforce` only;
//!   in `audit` and `warn` nothing is applied and scans report where they are missing.
//!
//! Nothing else is applied ([`refusal`]): a ClusterRoleBinding, a RoleBinding to a ClusterRole, a
//! Role granting `*`, or an object no policy declares as its parameter is an error at its line,
//! so a policy cannot use Palisade's cluster credentials to grant itself rights.
//!
//! Unless a document opts out with the annotation `palisade.dev/include-system-namespaces: "true"`,
//! every binding and constraint excludes the system namespaces ([`SYSTEM_NAMESPACES`]), so a policy
//! never blocks the control plane. Objects Palisade owns carry `app.kubernetes.io/managed-by:
//! palisade`. Server-set metadata (uid, resourceVersion, managedFields, status, …) is dropped.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::bundle::{pod_security_entry, Bundle};
use crate::gatekeeper::{Constraint, Template};
use crate::kyverno;
use crate::library::{excludes_system_namespaces, SYSTEM_NAMESPACES};
use crate::mode::{Mode, VapAction};
use crate::pss::LevelVersion;
use crate::source::{parse_documents, SourceError};
use crate::verdict::EngineKind;

/// The label every object Palisade owns in a cluster carries.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "palisade");

/// The annotation that keeps a binding or constraint from excluding the system namespaces.
pub const INCLUDE_SYSTEM_NAMESPACES: &str = "palisade.dev/include-system-namespaces";

/// The name a Pod Security Namespace patch carries until it is applied to a real namespace.
pub const EACH_NAMESPACE: &str = "<each target namespace>";

/// Resource kinds applied as they are (in `enforce`).
/// The resource templates a policy may carry (applied in enforce only), all namespaced: nothing a
/// policy applies with Palisade's credentials can grant cluster-wide rights.
const RESOURCE_KINDS: [&str; 3] = ["NetworkPolicy", "Role", "RoleBinding"];

/// Why a resource template is not something a policy may apply, if it is not: a Role that grants
/// `*`, or a RoleBinding to anything but a Role (a ClusterRole such as `cluster-admin` would grant
/// its rights in the namespace).
fn refused_resource(kind: &str, value: &Value) -> Option<String> {
    match kind {
        "Role" => {
            let rules = value.get("rules").and_then(Value::as_array)?;
            let wildcard = rules.iter().any(|rule| {
                ["verbs", "resources", "apiGroups"].iter().any(|field| {
                    rule.get(*field)
                        .and_then(Value::as_array)
                        .is_some_and(|items| items.iter().any(|i| i.as_str() == Some("*")))
                })
            });
            wildcard.then(|| {
                "a Role in a policy cannot grant `*` (verbs, resources or API groups): name them"
                    .to_owned()
            })
        }
        "RoleBinding" => {
            let role_kind = value.pointer("/roleRef/kind").and_then(Value::as_str);
            (role_kind != Some("Role")).then(|| {
                format!(
                    "a RoleBinding in a policy can bind only a Role, not {}",
                    match (
                        role_kind,
                        value.pointer("/roleRef/name").and_then(Value::as_str)
                    ) {
                        (Some(kind), Some(name)) => format!("the {kind} `{name}`"),
                        _ => "a missing roleRef".to_owned(),
                    }
                )
            })
        }
        _ => None,
    }
}

/// Why a policy may not apply `value`, if it may not: everything but ValidatingAdmissionPolicies
/// and their bindings, the parameter objects they declare (`params`, from [`param_kinds`]),
/// Gatekeeper templates and constraints, Pod Security entries, and the namespaced resource
/// templates (with [`refused_resource`]'s limits) is refused, so nothing a policy carries is
/// applied with Palisade's cluster credentials unless it is one of these.
pub fn refusal(value: &Value, params: &[(String, String)]) -> Option<String> {
    let text = |key: &str| value.get(key).and_then(Value::as_str).unwrap_or_default();
    let (api_version, kind) = (text("apiVersion"), text("kind"));
    let group = api_version.split_once('/').map_or("", |(group, _)| group);
    match (group, kind) {
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy")
        | ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding")
        | ("palisade.dev", "PodSecurityEntry") => None,
        _ if Template::is_template(value) || Constraint::is_constraint(value) => None,
        _ if kyverno::is_kyverno_document(value) => kyverno_refusal(value),
        _ if RESOURCE_KINDS.contains(&kind) => refused_resource(kind, value),
        _ if params
            .iter()
            .any(|(v, k)| v.as_str() == api_version && k.as_str() == kind) =>
        {
            None
        }
        _ => Some(format!(
            "`{api_version} {kind}` is not something a policy may apply: a policy applies \
             ValidatingAdmissionPolicies with their bindings and the parameter objects they \
             declare (spec.paramKind), Gatekeeper templates and constraints, Kyverno policies, \
             Pod Security entries, and NetworkPolicy, Role and RoleBinding templates"
        )),
    }
}

/// Why a Kyverno document may not be applied, if it may not. A PolicyException written by hand
/// would switch policies off without an approved exception (Palisade renders exceptions itself);
/// `mutate`, `generate` and `verifyImages` rules act with Kyverno's own rights (a generate rule can
/// create RoleBindings), so only `validate` rules are staged.
pub fn kyverno_refusal(value: &Value) -> Option<String> {
    let kind = value
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if kind == "PolicyException" {
        return Some(
            "a PolicyException cannot be part of a policy: request an exception in Palisade, \
             which renders it as a PolicyException once approved"
                .to_owned(),
        );
    }
    let rules = value.pointer("/spec/rules").and_then(Value::as_array)?;
    rules.iter().enumerate().find_map(|(index, rule)| {
        let acting = ["mutate", "generate", "verifyImages"]
            .into_iter()
            .find(|key| rule.get(*key).is_some())?;
        let name = rule.get("name").and_then(Value::as_str).unwrap_or("?");
        Some(format!(
            "spec.rules[{index}] (`{name}`): a `{acting}` rule acts with Kyverno's own rights; \
             Palisade stages validate rules only"
        ))
    })
}

/// The kinds of parameter objects the policy's ValidatingAdmissionPolicies declare
/// (`spec.paramKind`), as `(apiVersion, kind)`.
pub fn param_kinds(documents: &[crate::source::Document]) -> Vec<(String, String)> {
    documents
        .iter()
        .filter(|d| {
            d.value.get("kind").and_then(Value::as_str) == Some("ValidatingAdmissionPolicy")
        })
        .filter_map(|d| {
            let field = |name: &str| {
                d.value
                    .pointer(&format!("/spec/paramKind/{name}"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            Some((field("apiVersion")?, field("kind")?))
        })
        .collect()
}

/// One object as a cluster receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub engine: EngineKind,
    pub kind: String,
    pub name: String,
    pub object: Value,
    /// What a reader should know about how this manifest is applied.
    pub note: Option<String>,
}

/// Render `source` (one policy: a YAML stream) for `mode`. The source is validated by the engine
/// first; errors carry file, line and column.
pub fn render(file: &str, source: &str, mode: Mode) -> Result<Vec<Manifest>, Vec<SourceError>> {
    let documents = parse_documents(file, source).map_err(|e| vec![e])?;
    Bundle::default().add_documents(file, &documents)?;
    let params = param_kinds(&documents);
    let mut manifests = Vec::new();
    let mut policies = Vec::new();
    let mut bound = Vec::new();
    let mut errors = Vec::new();
    for document in &documents {
        let value = &document.value;
        let kind = value
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let api_version = value
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let group = api_version.split_once('/').map_or("", |(group, _)| group);
        let name = value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let manifest = |engine, object, note: Option<String>| Manifest {
            engine,
            kind: kind.to_owned(),
            name: name.clone(),
            object,
            note,
        };
        match (group, kind) {
            ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy") => {
                policies.push(name.clone());
                manifests.push(manifest(EngineKind::Vap, owned(value), None));
            }
            ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding") => {
                if let Some(policy) = value.pointer("/spec/policyName").and_then(Value::as_str) {
                    bound.push(policy.to_owned());
                }
                let object = vap_binding(owned(value), mode);
                manifests.push(manifest(EngineKind::Vap, object, None));
            }
            _ if Template::is_template(value) => {
                manifests.push(manifest(EngineKind::Gatekeeper, owned(value), None));
            }
            _ if Constraint::is_constraint(value) => {
                let object = constraint(owned(value), mode);
                manifests.push(manifest(EngineKind::Gatekeeper, object, None));
            }
            _ if kyverno::is_kyverno_document(value) => {
                if let Some(why) = kyverno_refusal(value) {
                    errors.push(SourceError::new(file, document.first_line, 0, why));
                } else if group == "kyverno.io" {
                    let object = kyverno_policy(owned(value), mode);
                    manifests.push(manifest(EngineKind::Kyverno, object, None));
                } else {
                    let object = validating_policy(owned(value), mode);
                    manifests.push(manifest(EngineKind::Kyverno, object, None));
                }
            }
            ("palisade.dev", "PodSecurityEntry") => match pod_security_entry(value) {
                Ok(level) => manifests.push(Manifest {
                    engine: EngineKind::PodSecurity,
                    kind: "Namespace".to_owned(),
                    name: EACH_NAMESPACE.to_owned(),
                    object: pod_security_patch(EACH_NAMESPACE, level, mode),
                    note: Some(format!(
                        "Pod Security Admission reads these labels: Palisade sets them with \
                         server-side apply on every target namespace except {}, and changes no \
                         other field of the namespace.",
                        SYSTEM_NAMESPACES.join(", ")
                    )),
                }),
                Err(message) => {
                    errors.push(SourceError::new(file, document.first_line, 0, message))
                }
            },
            (_, kind) if RESOURCE_KINDS.contains(&kind) => {
                if let Some(why) = refusal(value, &params) {
                    errors.push(SourceError::new(file, document.first_line, 0, why));
                } else if mode == Mode::Enforce {
                    manifests.push(manifest(EngineKind::Resource, owned(value), None));
                } else {
                    manifests.push(manifest(
                        EngineKind::Resource,
                        Value::Null,
                        Some(format!(
                            "In {mode} mode this {kind} is not applied; scans report where it is \
                             missing. It is applied in enforce mode."
                        )),
                    ));
                }
            }
            _ => match refusal(value, &params) {
                None => manifests.push(manifest(
                    EngineKind::Vap,
                    owned(value),
                    Some("A parameter object of the policy, applied with it.".to_owned()),
                )),
                Some(why) => errors.push(SourceError::new(file, document.first_line, 0, why)),
            },
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    for policy in policies.iter().filter(|p| !bound.contains(p)) {
        let object = vap_binding(
            json!({
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingAdmissionPolicyBinding",
                "metadata": { "name": policy, "labels": { MANAGED_BY.0: MANAGED_BY.1 } },
                "spec": { "policyName": policy },
            }),
            mode,
        );
        manifests.push(Manifest {
            engine: EngineKind::Vap,
            kind: "ValidatingAdmissionPolicyBinding".to_owned(),
            name: policy.clone(),
            object,
            note: Some(
                "The source has no binding for this policy: Palisade binds it to every namespace \
                 except the system ones."
                    .to_owned(),
            ),
        });
    }
    Ok(manifests)
}

/// The Pod Security Admission labels of `level` in `mode`: `<mode>` and `<mode>-version` for the
/// mode and every milder one it includes.
pub fn pod_security_labels(level: LevelVersion, mode: Mode) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    for label in mode.psa_labels() {
        labels.insert(label.key().to_owned(), level.level.as_str().to_owned());
        labels.insert(
            format!("{}-version", label.key()),
            level.version.to_string(),
        );
    }
    labels
}

/// The Namespace patch that puts `level` in `mode` on namespace `name`, for server-side apply.
pub fn pod_security_patch(name: &str, level: LevelVersion, mode: Mode) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": { "name": name, "labels": pod_security_labels(level, mode) },
    })
}

/// The manifests as one YAML stream, each preceded by its note as a comment. Manifests that are
/// not applied in this mode appear only as their note.
pub fn to_yaml(manifests: &[Manifest]) -> String {
    let mut out = String::new();
    for manifest in manifests {
        if !out.is_empty() {
            out.push_str("---\n");
        }
        out.push_str(&format!(
            "# {} {} ({})\n",
            manifest.kind,
            manifest.name,
            manifest.engine.as_str()
        ));
        if let Some(note) = &manifest.note {
            out.push_str(&format!("# {note}\n"));
        }
        if !manifest.object.is_null() {
            match serde_yaml_ng::to_string(&manifest.object) {
                Ok(yaml) => out.push_str(&yaml),
                // A JSON value always serialises; keep the stream valid if it ever does not.
                Err(err) => out.push_str(&format!("# cannot render: {err}\n")),
            }
        }
    }
    out
}

/// A copy of `value` as it is applied: server-set metadata and status dropped, managed-by label on.
fn owned(value: &Value) -> Value {
    let mut object = value.clone();
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
    }
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in [
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "managedFields",
            "selfLink",
        ] {
            metadata.remove(key);
        }
        let labels = metadata
            .entry("labels")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(labels) = labels.as_object_mut() {
            labels.insert(MANAGED_BY.0.to_owned(), MANAGED_BY.1.into());
        }
    }
    object
}

fn includes_system_namespaces(object: &Value) -> bool {
    object
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(INCLUDE_SYSTEM_NAMESPACES))
        .and_then(Value::as_str)
        == Some("true")
}

/// A binding with the mode's actions and, unless opted out, a namespace selector term that leaves
/// the system namespaces out (terms are ANDed, so the author's own selector still applies).
fn vap_binding(mut object: Value, mode: Mode) -> Value {
    let actions = validation_actions(mode);
    let exclude = !includes_system_namespaces(&object);
    let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) else {
        return object;
    };
    spec.insert("validationActions".to_owned(), json!(actions));
    if exclude {
        if let Some(expressions) = namespace_expressions(spec, "matchResources") {
            if !expressions.iter().any(excludes_system_namespaces) {
                expressions.push(system_namespaces_term());
            }
        }
    }
    object
}

/// `<match>.namespaceSelector.matchExpressions` of a policy's or binding's `spec`, made where it
/// is missing; `None` where something on the way is of another type.
fn namespace_expressions<'a>(
    spec: &'a mut Map<String, Value>,
    match_field: &str,
) -> Option<&'a mut Vec<Value>> {
    spec.entry(match_field)
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .map(|m| m.entry("namespaceSelector").or_insert_with(|| json!({})))
        .and_then(Value::as_object_mut)
        .map(|s| s.entry("matchExpressions").or_insert_with(|| json!([])))
        .and_then(Value::as_array_mut)
}

/// The namespace selector term that leaves out the [`SYSTEM_NAMESPACES`].
fn system_namespaces_term() -> Value {
    json!({
        "key": "kubernetes.io/metadata.name",
        "operator": "NotIn",
        "values": SYSTEM_NAMESPACES,
    })
}

/// The names of `mode`'s `validationActions` (a ValidatingAdmissionPolicyBinding's, and a Kyverno
/// ValidatingPolicy's).
fn validation_actions(mode: Mode) -> Vec<&'static str> {
    mode.vap_actions()
        .iter()
        .map(|action| match action {
            VapAction::Deny => "Deny",
            VapAction::Warn => "Warn",
            VapAction::Audit => "Audit",
        })
        .collect()
}

/// A Kyverno ClusterPolicy or Policy in `mode`: see the module's list. Unless the policy opts in,
/// each rule also gets a precondition that leaves the system namespaces alone (a precondition, not
/// an `exclude` entry, because it composes with every form `exclude` can take).
fn kyverno_policy(mut object: Value, mode: Mode) -> Value {
    let action = match mode {
        Mode::Audit | Mode::Warn => "Audit",
        Mode::Enforce => "Enforce",
    };
    let exclude = !includes_system_namespaces(&object);
    let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) else {
        return object;
    };
    spec.insert("validationFailureAction".to_owned(), action.into());
    spec.remove("validationFailureActionOverrides");
    spec.insert("emitWarning".to_owned(), (mode == Mode::Warn).into());
    let Some(rules) = spec.get_mut("rules").and_then(Value::as_array_mut) else {
        return object;
    };
    for rule in rules.iter_mut().filter_map(Value::as_object_mut) {
        if let Some(validate) = rule.get_mut("validate").and_then(Value::as_object_mut) {
            validate.insert("failureAction".to_owned(), action.into());
            validate.remove("failureActionOverrides");
        }
        if exclude {
            let system = json!({
                "key": "{{ request.namespace }}",
                "operator": "AnyNotIn",
                "value": SYSTEM_NAMESPACES,
            });
            let preconditions = rule.entry("preconditions").or_insert_with(|| json!({}));
            // The old form is a plain list, all of which must hold.
            if let Value::Array(all) = preconditions {
                *preconditions = json!({ "all": std::mem::take(all) });
            }
            if let Some(all) = preconditions
                .as_object_mut()
                .map(|p| p.entry("all").or_insert_with(|| json!([])))
                .and_then(Value::as_array_mut)
            {
                if !all.contains(&system) {
                    all.push(system);
                }
            }
        }
    }
    object
}

/// A Kyverno ValidatingPolicy in `mode`: its `validationActions`, and the system namespaces left
/// out by its namespace selector unless it opts in.
fn validating_policy(mut object: Value, mode: Mode) -> Value {
    let exclude = !includes_system_namespaces(&object);
    let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) else {
        return object;
    };
    spec.insert(
        "validationActions".to_owned(),
        json!(validation_actions(mode)),
    );
    if exclude {
        if let Some(expressions) = namespace_expressions(spec, "matchConstraints") {
            let term = system_namespaces_term();
            if !expressions.contains(&term) {
                expressions.push(term);
            }
        }
    }
    object
}

/// A Constraint with the mode's `enforcementAction` and the system namespaces excluded.
fn constraint(mut object: Value, mode: Mode) -> Value {
    let action = match mode {
        Mode::Audit => "dryrun",
        Mode::Warn => "warn",
        Mode::Enforce => "deny",
    };
    let exclude = !includes_system_namespaces(&object);
    let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) else {
        return object;
    };
    spec.insert("enforcementAction".to_owned(), action.into());
    if exclude {
        let excluded = spec
            .entry("match")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .map(|m| m.entry("excludedNamespaces").or_insert_with(|| json!([])))
            .and_then(Value::as_array_mut);
        if let Some(excluded) = excluded {
            for ns in SYSTEM_NAMESPACES {
                if !excluded.contains(&ns.into()) {
                    excluded.push(ns.into());
                }
            }
        }
    }
    object
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::library;

    const LONE_VAP: &str = "\
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: no-latest
  uid: 1234
  resourceVersion: \"99\"
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: [\"\"], apiVersions: [v1], operations: [CREATE], resources: [pods]}
  validations:
  - expression: \"object.spec.containers.all(c, !c.image.endsWith(':latest'))\"
status: {typeChecking: {}}
";

    #[test]
    fn a_policy_applies_only_what_its_engines_need() {
        let value = |yaml: &str| -> Value { serde_yaml_ng::from_str(yaml).unwrap() };
        let configmap = ("v1".to_owned(), "ConfigMap".to_owned());
        let refused = |yaml: &str, params: &[(String, String)]| refusal(&value(yaml), params);
        // Cluster-wide rights are never a policy's to grant.
        let crb = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: x}\nroleRef: {kind: ClusterRole, name: cluster-admin}\n";
        assert!(refused(crb, &[]).unwrap().contains("ClusterRoleBinding"));
        let to_cluster_role = "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: x}\nroleRef: {kind: ClusterRole, name: cluster-admin}\n";
        assert!(refused(to_cluster_role, &[])
            .unwrap()
            .contains("`cluster-admin`"));
        let star = "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: x}\nrules: [{apiGroups: [''], resources: ['*'], verbs: [get]}]\n";
        assert!(refused(star, &[]).unwrap().contains("`*`"));
        // What the engines need is applied.
        let role = "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: x}\nrules: [{apiGroups: [''], resources: [pods], verbs: [get]}]\n";
        assert_eq!(refused(role, &[]), None);
        let binding = "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: x}\nroleRef: {kind: Role, name: x}\n";
        assert_eq!(refused(binding, &[]), None);
        let netpol = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: x}\n";
        assert_eq!(refused(netpol, &[]), None);
        // A parameter object only of a kind a policy declares.
        let params = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: p}\n";
        assert!(refused(params, &[]).is_some());
        assert_eq!(refused(params, std::slice::from_ref(&configmap)), None);
        let secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: p}\n";
        assert!(refused(secret, &[configmap])
            .unwrap()
            .contains("`v1 Secret`"));
    }

    #[test]
    fn a_lone_policy_gets_a_binding_with_the_modes_actions_and_no_system_namespaces() {
        for (mode, actions) in [
            (Mode::Audit, json!(["Audit"])),
            (Mode::Warn, json!(["Warn", "Audit"])),
            (Mode::Enforce, json!(["Deny", "Audit"])),
        ] {
            let manifests = render("p.yaml", LONE_VAP, mode).unwrap();
            assert_eq!(manifests.len(), 2);
            let policy = &manifests[0].object;
            assert_eq!(policy["metadata"].get("uid"), None);
            assert_eq!(policy.get("status"), None);
            assert_eq!(policy["metadata"]["labels"][MANAGED_BY.0], "palisade");
            let binding = &manifests[1];
            assert_eq!(binding.kind, "ValidatingAdmissionPolicyBinding");
            assert!(binding.note.is_some());
            assert_eq!(binding.object["spec"]["policyName"], "no-latest");
            assert_eq!(binding.object["spec"]["validationActions"], actions);
            let selector = &binding.object["spec"]["matchResources"]["namespaceSelector"];
            assert_eq!(
                selector["matchExpressions"][0]["values"],
                json!(SYSTEM_NAMESPACES)
            );
        }
    }

    #[test]
    fn every_library_entry_renders_in_every_mode_and_bindings_keep_one_exclusion() {
        for entry in library::entries().unwrap() {
            let source = entry.policy_yaml;
            for mode in Mode::ALL {
                let manifests = render(entry.id, source, mode)
                    .unwrap_or_else(|e| panic!("{}: {e:?}", entry.id));
                assert!(!manifests.is_empty(), "{}", entry.id);
                for manifest in &manifests {
                    if manifest.kind == "ValidatingAdmissionPolicyBinding" {
                        let expressions = manifest.object["spec"]["matchResources"]
                            ["namespaceSelector"]["matchExpressions"]
                            .as_array()
                            .unwrap();
                        let exclusions = expressions
                            .iter()
                            .filter(|e| e["key"] == "kubernetes.io/metadata.name")
                            .count();
                        assert_eq!(exclusions, 1, "{} in {mode}", entry.id);
                    }
                }
                // The rendered stream is valid YAML that loads back into the engine.
                let yaml = to_yaml(&manifests);
                if manifests
                    .iter()
                    .all(|m| m.engine != EngineKind::PodSecurity)
                {
                    Bundle::default()
                        .add_source("rendered.yaml", &yaml)
                        .unwrap_or_else(|e| panic!("{}: {e:?}\n{yaml}", entry.id));
                }
            }
        }
    }

    #[test]
    fn pod_security_renders_the_labels_of_the_mode_and_the_milder_ones() {
        let source = "apiVersion: palisade.dev/v1alpha1\nkind: PodSecurityEntry\n\
                      metadata: {name: restricted}\nspec: {level: restricted, version: v1.30}\n";
        let warn = render("pss.yaml", source, Mode::Warn).unwrap();
        assert_eq!(warn.len(), 1);
        assert_eq!(
            warn[0].object["metadata"]["labels"],
            json!({
                "pod-security.kubernetes.io/audit": "restricted",
                "pod-security.kubernetes.io/audit-version": "v1.30",
                "pod-security.kubernetes.io/warn": "restricted",
                "pod-security.kubernetes.io/warn-version": "v1.30",
            })
        );
        let enforce = render("pss.yaml", source, Mode::Enforce).unwrap();
        assert_eq!(
            enforce[0].object["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
            "restricted"
        );
        let patch = pod_security_patch("team-a", "baseline".parse().unwrap(), Mode::Audit);
        assert_eq!(patch["metadata"]["name"], "team-a");
        assert_eq!(
            patch["metadata"]["labels"]["pod-security.kubernetes.io/audit-version"],
            "latest"
        );
    }

    #[test]
    fn constraints_get_the_modes_enforcement_action() {
        let source = "\
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: k8srequiredlabels}
spec:
  crd: {spec: {names: {kind: K8sRequiredLabels}}}
  targets:
  - target: admission.k8s.gatekeeper.sh
    rego: |
      package k8srequiredlabels
      violation[{\"msg\": \"no owner\"}] { not input.review.object.metadata.labels.owner }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sRequiredLabels
metadata: {name: need-owner}
spec:
  match:
    excludedNamespaces: [kube-system]
";
        for (mode, action) in [
            (Mode::Audit, "dryrun"),
            (Mode::Warn, "warn"),
            (Mode::Enforce, "deny"),
        ] {
            let manifests = render("gk.yaml", source, mode).unwrap();
            assert_eq!(manifests.len(), 2);
            assert_eq!(manifests[0].kind, "ConstraintTemplate");
            let constraint = &manifests[1].object;
            assert_eq!(constraint["spec"]["enforcementAction"], action);
            assert_eq!(
                constraint["spec"]["match"]["excludedNamespaces"],
                json!(SYSTEM_NAMESPACES)
            );
        }
    }

    #[test]
    fn a_binding_that_opts_in_to_system_namespaces_is_left_alone() {
        let source = format!(
            "{LONE_VAP}---\napiVersion: admissionregistration.k8s.io/v1\n\
             kind: ValidatingAdmissionPolicyBinding\nmetadata:\n  name: everywhere\n  \
             annotations: {{{INCLUDE_SYSTEM_NAMESPACES}: \"true\"}}\n\
             spec: {{policyName: no-latest, validationActions: [Deny]}}\n"
        );
        let manifests = render("p.yaml", &source, Mode::Audit).unwrap();
        assert_eq!(manifests.len(), 2, "the author's binding is used");
        assert_eq!(
            manifests[1].object["spec"]["validationActions"],
            json!(["Audit"])
        );
        assert_eq!(manifests[1].object["spec"].get("matchResources"), None);
    }

    #[test]
    fn resource_templates_are_applied_only_in_enforce() {
        let source = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n\
                      metadata: {name: default-deny}\nspec: {podSelector: {}, policyTypes: [Ingress]}\n";
        let audit = render("np.yaml", source, Mode::Audit).unwrap();
        assert!(audit[0].object.is_null());
        assert!(to_yaml(&audit).contains("is not applied"));
        let enforce = render("np.yaml", source, Mode::Enforce).unwrap();
        assert_eq!(enforce[0].object["kind"], "NetworkPolicy");
    }

    #[test]
    fn invalid_sources_are_refused_with_their_position() {
        let broken = LONE_VAP.replace("endsWith(':latest'))", "endsWith(");
        let errors = render("p.yaml", &broken, Mode::Enforce).unwrap_err();
        // Line 12 holds the broken expression.
        assert_eq!(errors[0].line, 12, "{errors:?}");
    }

    const KYVERNO: &str = "\
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: need-team}
spec:
  validationFailureAction: Enforce
  validationFailureActionOverrides: [{action: Audit, namespaces: [dev]}]
  rules:
  - name: team-label
    match: {any: [{resources: {kinds: [Pod]}}]}
    preconditions: [{key: \"{{ request.operation }}\", operator: Equals, value: CREATE}]
    validate:
      failureAction: Enforce
      message: needs a team
      pattern: {metadata: {labels: {team: \"?*\"}}}
";

    #[test]
    fn kyverno_rules_take_the_modes_action_and_leave_the_system_namespaces_alone() {
        for (mode, action, warn) in [
            (Mode::Audit, "Audit", false),
            (Mode::Warn, "Audit", true),
            (Mode::Enforce, "Enforce", false),
        ] {
            let manifests = render("k.yaml", KYVERNO, mode).unwrap();
            assert_eq!(manifests.len(), 1);
            assert_eq!(manifests[0].engine, EngineKind::Kyverno);
            let spec = &manifests[0].object["spec"];
            assert_eq!(spec["validationFailureAction"], action, "{mode}");
            assert_eq!(spec["emitWarning"], warn, "{mode}");
            assert!(spec.get("validationFailureActionOverrides").is_none());
            let rule = &spec["rules"][0];
            assert_eq!(rule["validate"]["failureAction"], action, "{mode}");
            // The old list form of preconditions became `all`, with the system namespaces after it.
            let all = rule["preconditions"]["all"].as_array().unwrap();
            assert_eq!(all.len(), 2);
            assert_eq!(all[0]["key"], "{{ request.operation }}");
            assert_eq!(all[1]["operator"], "AnyNotIn");
            assert_eq!(all[1]["value"], json!(SYSTEM_NAMESPACES));
            assert_eq!(
                manifests[0].object["metadata"]["labels"][MANAGED_BY.0],
                MANAGED_BY.1
            );
        }
    }

    #[test]
    fn a_validating_policy_gets_the_modes_actions_like_a_binding() {
        let source = "\
apiVersion: policies.kyverno.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: replicas}
spec:
  validationActions: [Deny]
  matchConstraints:
    resourceRules:
    - {apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [deployments]}
  validations:
  - expression: object.spec.replicas <= 5
";
        let manifests = render("v.yaml", source, Mode::Warn).unwrap();
        let spec = &manifests[0].object["spec"];
        assert_eq!(spec["validationActions"], json!(["Warn", "Audit"]));
        assert_eq!(
            spec["matchConstraints"]["namespaceSelector"]["matchExpressions"][0]["values"],
            json!(SYSTEM_NAMESPACES)
        );
        let enforce = render("v.yaml", source, Mode::Enforce).unwrap();
        assert_eq!(
            enforce[0].object["spec"]["validationActions"],
            json!(["Deny", "Audit"])
        );
    }

    #[test]
    fn kyverno_rules_that_act_and_hand_written_exceptions_are_refused_at_their_line() {
        let generate = "\
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: grant}
spec:
  rules:
  - name: bind-admin
    match: {any: [{resources: {kinds: [Namespace]}}]}
    generate: {kind: RoleBinding, apiVersion: rbac.authorization.k8s.io/v1, name: x}
";
        let errors = render("g.yaml", generate, Mode::Enforce).unwrap_err();
        assert!(
            errors[0]
                .message
                .contains("spec.rules[0] (`bind-admin`): a `generate` rule"),
            "{}",
            errors[0]
        );
        let exception = "\
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: p}
spec: {rules: []}
---
apiVersion: kyverno.io/v2
kind: PolicyException
metadata: {name: everything, namespace: kyverno}
spec:
  exceptions: [{policyName: p, ruleNames: [\"*\"]}]
  match: {any: [{resources: {kinds: [\"*\"]}}]}
";
        let errors = render("e.yaml", exception, Mode::Enforce).unwrap_err();
        assert_eq!(errors[0].line, 6, "{}", errors[0]);
        assert!(errors[0]
            .message
            .contains("request an exception in Palisade"));
    }

    #[test]
    fn a_rendered_kyverno_policy_answers_with_its_modes_action() {
        let pod = crate::admission::AdmissionRequest::create(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
        }))
        .unwrap();
        for (mode, action) in [
            (Mode::Audit, crate::verdict::Action::Audit),
            (Mode::Warn, crate::verdict::Action::Warn),
            (Mode::Enforce, crate::verdict::Action::Deny),
        ] {
            let manifests = render("k.yaml", KYVERNO, mode).unwrap();
            let mut bundle = Bundle::default();
            bundle
                .add_source("rendered.yaml", &to_yaml(&manifests))
                .unwrap();
            let verdict = bundle.evaluate(&pod, &crate::bundle::Context::default());
            assert_eq!(verdict.action(), action, "{mode}: {verdict:?}");
            assert_eq!(verdict.findings[0].policy, "need-team/team-label");
            assert!(verdict.findings[0].message.contains("needs a team"));
            // The system namespaces are left alone in every mode.
            let mut system = pod.clone();
            system.namespace = "kube-system".into();
            if let Some(meta) = system.object.as_mut().and_then(|o| o.get_mut("metadata")) {
                meta["namespace"] = json!("kube-system");
            }
            let quiet = bundle.evaluate(&system, &crate::bundle::Context::default());
            assert_eq!(
                quiet.action(),
                crate::verdict::Action::Allow,
                "{mode}: {quiet:?}"
            );
        }
    }
}
