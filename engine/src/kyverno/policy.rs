//! `kyverno.io/v1` ClusterPolicy and Policy validate rules, and PolicyExceptions.
//!
//! A rule is read once, strictly (errors at their line), into what it matches ([`Match`]), its
//! preconditions, its `context` variables and one kind of validation: `pattern`, `anyPattern`,
//! `deny`, `foreach`, `cel` (run by our ValidatingAdmissionPolicy evaluator) or `podSecurity`
//! (run by our Pod Security checks). A rule that matches only Pods also answers the pod
//! controllers through their pod template (autogen). What needs the cluster (API calls,
//! ConfigMaps, image registries) answers "not evaluable", with what it needs.

use serde_json::{json, Map, Value};

use super::conditions::{self, ConditionError, Conditions, Lookup};
use super::jmespath::{self, Ast, Budget};
use super::lenient;
use super::matching::{Match, Target};
use super::pattern::{self, Verdict};
use super::pod_security::{self, Exclusion, PodSecurity};
use super::{autogen, Context, FailureAction, Outcome, RuleResult};
use crate::admission::{AdmissionRequest, GroupVersionKind, GroupVersionResource};
use crate::source::{string_items, Document, SourceError};
use crate::vap;

/// The most elements a `foreach` list may have.
pub const MAX_FOREACH_ELEMENTS: usize = 10_000;
/// The deepest `foreach` nesting read.
pub const MAX_FOREACH_DEPTH: usize = 4;

const AUTOGEN_ANNOTATION: &str = "pod-policies.kyverno.io/autogen-controllers";

/// A ClusterPolicy or Policy, read.
#[derive(Debug, Clone)]
pub struct Policy {
    /// `name`, or `namespace/name` for a Policy.
    pub name: String,
    /// A Policy's namespace: it applies there only.
    pub namespace: Option<String>,
    pub rules: Vec<Rule>,
    /// `spec.validationFailureAction`.
    pub action: FailureAction,
    overrides: Vec<ActionOverride>,
    /// `spec.emitWarning`: an audited failure is also a warning to the client.
    pub emit_warning: bool,
}

#[derive(Debug, Clone)]
struct ActionOverride {
    action: FailureAction,
    namespaces: Vec<String>,
}

/// One rule of a policy.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    matches: Match,
    exclude: Match,
    preconditions: Conditions,
    /// `context` entries computed here (`variable`), by name.
    variables: Vec<(String, ContextVariable)>,
    /// Why the rule cannot be evaluated here, when it cannot.
    needs: Option<String>,
    validate: Validate,
    message: Option<String>,
    /// The rule's own `validate.failureAction`.
    pub action: Option<FailureAction>,
    /// The controller kinds autogen extends the rule to.
    autogen: Vec<&'static str>,
}

#[derive(Debug, Clone)]
struct ContextVariable {
    value: Option<Value>,
    jmes_path: Option<Ast>,
    default: Option<Value>,
}

#[derive(Debug, Clone)]
enum Validate {
    Pattern(Value),
    AnyPattern(Vec<Value>),
    Deny(Conditions),
    Foreach(Vec<Foreach>),
    Cel(Box<vap::PolicySet>),
    PodSecurity(PodSecurity),
    /// Not a validate rule this engine runs (mutate, generate, image verification, manifests).
    NotHere(String),
}

#[derive(Debug, Clone)]
struct Foreach {
    list: Ast,
    preconditions: Conditions,
    element_scope: Option<bool>,
    check: ForeachCheck,
}

#[derive(Debug, Clone)]
enum ForeachCheck {
    Pattern(Value),
    AnyPattern(Vec<Value>),
    Deny(Conditions),
    Nested(Vec<Foreach>),
}

/// Parse `Audit` / `Enforce` in any case.
fn parse_action(text: &str) -> Option<FailureAction> {
    match text.to_ascii_lowercase().as_str() {
        "audit" => Some(FailureAction::Audit),
        "enforce" => Some(FailureAction::Enforce),
        _ => None,
    }
}

/// Builds located errors for one document.
struct Reader<'a> {
    file: &'a str,
    document: &'a Document,
}

impl Reader<'_> {
    /// An error at the first place `snippet` appears (the document's start when it does not).
    fn error(&self, snippet: &str, message: impl Into<String>) -> SourceError {
        if snippet.is_empty() {
            return SourceError::new(self.file, self.document.first_line, 1, message);
        }
        self.document.error_at(self.file, snippet, 0, message)
    }
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

const RULE_FIELDS: [&str; 13] = [
    "name",
    "match",
    "exclude",
    "context",
    "preconditions",
    "validate",
    "mutate",
    "generate",
    "verifyImages",
    "imageExtractors",
    "celPreconditions",
    "skipBackgroundRequests",
    "reportProperties",
];

const VALIDATE_FIELDS: [&str; 12] = [
    "message",
    "failureAction",
    "failureActionOverrides",
    "allowExistingViolations",
    "pattern",
    "anyPattern",
    "deny",
    "foreach",
    "cel",
    "podSecurity",
    "manifests",
    "assert",
];

impl Policy {
    pub fn from_document(file: &str, document: &Document) -> Result<Policy, Vec<SourceError>> {
        let reader = Reader { file, document };
        let value = &document.value;
        let name = value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .ok_or_else(|| vec![reader.error("", "metadata.name: a policy needs a name")])?;
        let namespaced = value.get("kind").and_then(Value::as_str) == Some("Policy");
        let namespace = namespaced.then(|| {
            value
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .filter(|ns| !ns.is_empty())
                .unwrap_or("default")
                .to_owned()
        });
        let mut errors = Vec::new();
        let spec = value.get("spec").cloned().unwrap_or(Value::Null);
        let action = match spec.get("validationFailureAction") {
            None | Some(Value::Null) => FailureAction::Audit,
            Some(v) => match v.as_str().and_then(parse_action) {
                Some(action) => action,
                None => {
                    errors.push(reader.error(
                        "validationFailureAction",
                        format!(
                            "spec.validationFailureAction: `{}` is not Audit or Enforce",
                            text_of(v)
                        ),
                    ));
                    FailureAction::Audit
                }
            },
        };
        let mut overrides = Vec::new();
        if let Some(list) = spec
            .get("validationFailureActionOverrides")
            .and_then(Value::as_array)
        {
            for entry in list {
                let action = entry
                    .get("action")
                    .and_then(Value::as_str)
                    .and_then(parse_action);
                match action {
                    Some(action) => overrides.push(ActionOverride {
                        action,
                        namespaces: string_items(entry.get("namespaces")),
                    }),
                    None => errors.push(reader.error(
                        "validationFailureActionOverrides",
                        "spec.validationFailureActionOverrides: each needs an action of Audit or Enforce",
                    )),
                }
            }
        }
        let autogen_controllers = autogen_controllers(value);
        let mut rules = Vec::new();
        match spec.get("rules") {
            Some(Value::Array(list)) => {
                for (i, rule) in list.iter().enumerate() {
                    match read_rule(&reader, rule, i, &autogen_controllers) {
                        Ok(rule) => rules.push(rule),
                        Err(e) => errors.push(e),
                    }
                }
            }
            None | Some(Value::Null) => {}
            Some(_) => errors.push(reader.error("rules", "spec.rules: must be a list")),
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Policy {
            name: match &namespace {
                Some(ns) => format!("{ns}/{name}"),
                None => name.to_owned(),
            },
            namespace,
            rules,
            action,
            overrides,
            emit_warning: spec.get("emitWarning").and_then(Value::as_bool) == Some(true),
        })
    }

    /// The action for a resource in `namespace`: the rule's own, else an override that names the
    /// namespace, else the spec's; an audited failure warns the client too under `emitWarning`.
    fn action_in(&self, rule: &Rule, namespace: &str) -> FailureAction {
        let action = rule.action.unwrap_or_else(|| {
            self.overrides
                .iter()
                .find(|o| {
                    o.namespaces
                        .iter()
                        .any(|n| pattern::wildcard_match(n, namespace))
                })
                .map_or(self.action, |o| o.action)
        });
        match action {
            FailureAction::Audit if self.emit_warning => FailureAction::Warn,
            action => action,
        }
    }

    /// Whether some rule could match an object of `kind` (in any group).
    pub fn may_judge_kind(&self, kind: &str) -> bool {
        self.rules.iter().any(|rule| rule.may_judge_kind(kind))
    }

    pub fn evaluate(
        &self,
        request: &AdmissionRequest,
        ctx: &Context<'_>,
        exceptions: &[Exception],
    ) -> Vec<RuleResult> {
        let empty = Value::Null;
        let object = request.subject().unwrap_or(&empty);
        let bare_name = self
            .name
            .rsplit_once('/')
            .map_or(self.name.as_str(), |(_, n)| n);
        self.rules
            .iter()
            .map(|rule| {
                let (autogen, outcome) = match &self.namespace {
                    Some(ns) if request.namespace != *ns => (
                        false,
                        Outcome::Skip(format!("the Policy applies only in namespace {ns}")),
                    ),
                    _ => rule.evaluate(&self.name, bare_name, request, object, ctx, exceptions),
                };
                RuleResult {
                    policy: self.name.clone(),
                    rule: rule.name.clone(),
                    autogen,
                    action: self.action_in(rule, &request.namespace),
                    outcome,
                }
            })
            .collect()
    }
}

/// The controllers autogen covers for this policy (its annotation, or all of them).
fn autogen_controllers(policy: &Value) -> Vec<&'static str> {
    let all: Vec<&'static str> = autogen::CONTROLLERS.iter().map(|(k, _)| *k).collect();
    match policy
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(AUTOGEN_ANNOTATION))
        .and_then(Value::as_str)
    {
        None => all,
        Some(text) if text.trim().eq_ignore_ascii_case("none") => Vec::new(),
        Some(text) => all
            .into_iter()
            .filter(|kind| text.split(',').any(|k| k.trim() == *kind))
            .collect(),
    }
}

fn read_rule(
    reader: &Reader<'_>,
    rule: &Value,
    index: usize,
    autogen_controllers: &[&'static str],
) -> Result<Rule, SourceError> {
    let map = rule
        .as_object()
        .ok_or_else(|| reader.error("", format!("spec.rules[{index}]: must be an object")))?;
    let name = map
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| reader.error("rules", format!("spec.rules[{index}].name: required")))?
        .to_owned();
    let at = |field: &str| format!("spec.rules[{index}] ({name}).{field}");
    if let Some(other) = map.keys().find(|k| !RULE_FIELDS.contains(&k.as_str())) {
        return Err(reader.error(other, format!("{}: unknown field", at(other))));
    }
    let matches = match map.get("match") {
        Some(m) => {
            Match::read(m).map_err(|e| reader.error("match", format!("{}: {e}", at("match"))))?
        }
        None => return Err(reader.error(&name, format!("{}: required", at("match")))),
    };
    let exclude = match map.get("exclude") {
        Some(m) => Match::read(m)
            .map_err(|e| reader.error("exclude", format!("{}: {e}", at("exclude"))))?,
        None => Match::default(),
    };
    let preconditions = match map.get("preconditions") {
        Some(p) => Conditions::read(p)
            .map_err(|e| reader.error("preconditions", format!("{}: {e}", at("preconditions"))))?,
        None => Conditions::default(),
    };
    // Context entries: `variable` is computed here; the others need the cluster.
    let mut variables = Vec::new();
    let mut needs = None;
    if let Some(entries) = map.get("context") {
        let entries = entries
            .as_array()
            .ok_or_else(|| reader.error("context", format!("{}: must be a list", at("context"))))?;
        for entry in entries {
            let entry_name = entry.get("name").and_then(Value::as_str).ok_or_else(|| {
                reader.error("context", format!("{}: each needs a name", at("context")))
            })?;
            if let Some(variable) = entry.get("variable") {
                let jmes_path = match variable.get("jmesPath").and_then(Value::as_str) {
                    Some(text) => Some(jmespath::parse(text).map_err(|e| {
                        reader.error(text, format!("{}: {e}", at("context.variable.jmesPath")))
                    })?),
                    None => None,
                };
                variables.push((
                    entry_name.to_owned(),
                    ContextVariable {
                        value: variable.get("value").cloned(),
                        jmes_path,
                        default: variable.get("default").cloned(),
                    },
                ));
            } else {
                let source = ["apiCall", "configMap", "imageRegistry", "globalReference"]
                    .into_iter()
                    .find(|k| entry.get(k).is_some())
                    .unwrap_or("an unknown source");
                needs.get_or_insert_with(|| {
                    format!("the context entry `{entry_name}` needs {source} data from the cluster")
                });
            }
        }
    }
    let validate_value = map.get("validate");
    let mut message = None;
    let mut action = None;
    let validate = match validate_value {
        None => {
            let what = ["mutate", "generate", "verifyImages"]
                .into_iter()
                .find(|k| map.contains_key(*k))
                .unwrap_or("a rule without validate");
            Validate::NotHere(format!("{what} rules are not evaluated here"))
        }
        Some(v) => {
            let vmap = v.as_object().ok_or_else(|| {
                reader.error("validate", format!("{}: must be an object", at("validate")))
            })?;
            if let Some(other) = vmap.keys().find(|k| !VALIDATE_FIELDS.contains(&k.as_str())) {
                return Err(reader.error(
                    other,
                    format!("{}: unknown field", at(&format!("validate.{other}"))),
                ));
            }
            message = vmap.get("message").map(text_of);
            if let Some(a) = vmap.get("failureAction") {
                action = Some(a.as_str().and_then(parse_action).ok_or_else(|| {
                    reader.error(
                        "failureAction",
                        format!(
                            "{}: `{}` is not Audit or Enforce",
                            at("validate.failureAction"),
                            text_of(a)
                        ),
                    )
                })?);
            }
            read_validate(reader, vmap, map, &at, &name)?
        }
    };
    // Which variables the rule reads that nothing here provides.
    if needs.is_none() {
        let known: Vec<String> = variables.iter().map(|(n, _)| n.clone()).collect();
        let mut used = vec![preconditions.values()];
        if let Some(v) = validate_value {
            for key in ["pattern", "anyPattern", "deny", "foreach", "message"] {
                if let Some(part) = v.get(key) {
                    used.push(part.clone());
                }
            }
        }
        let foreign = conditions::foreign_roots(&Value::Array(used), &known);
        if let Some(root) = foreign.first() {
            needs = Some(format!(
                "the variable `{root}` is not available here (it needs cluster or image data)"
            ));
        }
    }
    let autogen = if matches.filters().next().is_some()
        && matches.filters().all(|f| {
            !f.kinds.is_empty() && f.kinds.iter().all(|k| k.is_pod()) && f.autogen_allowed()
        })
        && exclude.filters().all(|f| f.autogen_allowed())
    {
        autogen_controllers.to_vec()
    } else {
        Vec::new()
    };
    Ok(Rule {
        name,
        matches,
        exclude,
        preconditions,
        variables,
        needs,
        validate,
        message,
        action,
        autogen,
    })
}

fn read_validate(
    reader: &Reader<'_>,
    vmap: &Map<String, Value>,
    rule: &Map<String, Value>,
    at: &dyn Fn(&str) -> String,
    rule_name: &str,
) -> Result<Validate, SourceError> {
    let check_pattern = |p: &Value, field: &str| {
        pattern::check(p)
            .map_err(|(snippet, why)| reader.error(&snippet, format!("{}: {why}", at(field))))
    };
    if let Some(p) = vmap.get("pattern") {
        check_pattern(p, "validate.pattern")?;
        return Ok(Validate::Pattern(p.clone()));
    }
    if let Some(list) = vmap.get("anyPattern") {
        let list = list.as_array().ok_or_else(|| {
            reader.error(
                "anyPattern",
                format!("{}: must be a list", at("validate.anyPattern")),
            )
        })?;
        for p in list {
            check_pattern(p, "validate.anyPattern")?;
        }
        return Ok(Validate::AnyPattern(list.clone()));
    }
    if let Some(deny) = vmap.get("deny") {
        let conditions =
            Conditions::read(deny.get("conditions").unwrap_or(&Value::Null)).map_err(|e| {
                reader.error(
                    "conditions",
                    format!("{}: {e}", at("validate.deny.conditions")),
                )
            })?;
        return Ok(Validate::Deny(conditions));
    }
    if let Some(list) = vmap.get("foreach") {
        return Ok(Validate::Foreach(read_foreach(reader, list, at, 0)?));
    }
    if let Some(cel) = vmap.get("cel") {
        return read_cel(reader, cel, rule, at, rule_name).map(|set| Validate::Cel(Box::new(set)));
    }
    if let Some(ps) = vmap.get("podSecurity") {
        return PodSecurity::read(ps)
            .map(Validate::PodSecurity)
            .map_err(|e| reader.error("podSecurity", format!("{}: {e}", at("validate"))));
    }
    if vmap.contains_key("manifests") {
        return Ok(Validate::NotHere(
            "manifest signature checks are not evaluated here".into(),
        ));
    }
    if vmap.contains_key("assert") {
        return Ok(Validate::NotHere(
            "assertion trees are not evaluated here".into(),
        ));
    }
    Err(reader.error(
        "validate",
        format!(
            "{}: needs one of pattern, anyPattern, deny, foreach, cel or podSecurity",
            at("validate")
        ),
    ))
}

fn read_foreach(
    reader: &Reader<'_>,
    value: &Value,
    at: &dyn Fn(&str) -> String,
    depth: usize,
) -> Result<Vec<Foreach>, SourceError> {
    if depth >= MAX_FOREACH_DEPTH {
        return Err(reader.error(
            "foreach",
            format!(
                "{}: foreach nests deeper than {MAX_FOREACH_DEPTH}",
                at("validate.foreach")
            ),
        ));
    }
    let list = value.as_array().ok_or_else(|| {
        reader.error(
            "foreach",
            format!("{}: must be a list", at("validate.foreach")),
        )
    })?;
    let mut out = Vec::new();
    for entry in list {
        let text = entry.get("list").and_then(Value::as_str).ok_or_else(|| {
            reader.error(
                "foreach",
                format!("{}: each needs a list", at("validate.foreach")),
            )
        })?;
        let expression = text
            .trim()
            .trim_start_matches("{{")
            .trim_end_matches("}}")
            .trim();
        let list = jmespath::parse(expression)
            .map_err(|e| reader.error(text, format!("{}: {e}", at("validate.foreach.list"))))?;
        let preconditions = match entry.get("preconditions") {
            Some(p) => Conditions::read(p).map_err(|e| {
                reader.error(
                    "preconditions",
                    format!("{}: {e}", at("validate.foreach.preconditions")),
                )
            })?,
            None => Conditions::default(),
        };
        let check = if let Some(p) = entry.get("pattern") {
            pattern::check(p).map_err(|(s, why)| {
                reader.error(&s, format!("{}: {why}", at("validate.foreach.pattern")))
            })?;
            ForeachCheck::Pattern(p.clone())
        } else if let Some(Value::Array(ps)) = entry.get("anyPattern") {
            ForeachCheck::AnyPattern(ps.clone())
        } else if let Some(deny) = entry.get("deny") {
            ForeachCheck::Deny(
                Conditions::read(deny.get("conditions").unwrap_or(&Value::Null)).map_err(|e| {
                    reader.error(
                        "conditions",
                        format!("{}: {e}", at("validate.foreach.deny")),
                    )
                })?,
            )
        } else if let Some(nested) = entry.get("foreach") {
            ForeachCheck::Nested(read_foreach(reader, nested, at, depth + 1)?)
        } else {
            return Err(reader.error(
                "foreach",
                format!(
                    "{}: each needs pattern, anyPattern, deny or foreach",
                    at("validate.foreach")
                ),
            ));
        };
        out.push(Foreach {
            list,
            preconditions,
            element_scope: entry.get("elementScope").and_then(Value::as_bool),
            check,
        });
    }
    Ok(out)
}

/// A `validate.cel` rule as a ValidatingAdmissionPolicy bound to everything (its expressions as
/// validations, `celPreconditions` as match conditions), read by our VAP evaluator against the
/// policy's own text so that errors are placed in it.
fn read_cel(
    reader: &Reader<'_>,
    cel: &Value,
    rule: &Map<String, Value>,
    at: &dyn Fn(&str) -> String,
    rule_name: &str,
) -> Result<vap::PolicySet, SourceError> {
    let cel = cel
        .as_object()
        .ok_or_else(|| reader.error("cel", format!("{}: must be an object", at("validate.cel"))))?;
    let known = [
        "expressions",
        "variables",
        "paramKind",
        "paramRef",
        "auditAnnotations",
        "generate",
    ];
    if let Some(other) = cel.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(reader.error(
            other,
            format!("{}: unknown field", at(&format!("validate.cel.{other}"))),
        ));
    }
    let policy_name = format!("kyverno-rule-{rule_name}");
    let mut spec = json!({
        "failurePolicy": "Fail",
        "matchConstraints": vap::match_everything(),
        "validations": cel.get("expressions").map_or_else(|| json!([]), lenient::expressions),
    });
    for key in ["variables", "paramKind", "auditAnnotations"] {
        if let Some(v) = cel.get(key) {
            spec[key] = if key == "paramKind" {
                v.clone()
            } else {
                lenient::expressions(v)
            };
        }
    }
    if let Some(conditions) = rule.get("celPreconditions") {
        spec["matchConditions"] = lenient::expressions(conditions);
    }
    let mut documents = vec![vap::admission_document(
        "ValidatingAdmissionPolicy",
        &policy_name,
        spec,
        reader.document.first_line,
        lenient::text(&reader.document.text),
    )];
    if let Some(param_ref) = cel.get("paramRef") {
        documents.push(vap::admission_document(
            "ValidatingAdmissionPolicyBinding",
            &policy_name,
            json!({"policyName": policy_name, "paramRef": param_ref, "validationActions": ["Deny"]}),
            reader.document.first_line,
            reader.document.text.clone(),
        ));
    }
    let mut set = vap::PolicySet::from_documents(reader.file, &documents).map_err(|errors| {
        let first = errors.into_iter().next();
        match first {
            Some(mut e) => {
                lenient::unrewrite_error(&documents[0], &mut e);
                e.message = format!("{}: {}", at("validate.cel"), e.message);
                e
            }
            None => reader.error("cel", at("validate.cel")),
        }
    })?;
    // Kyverno reads the resource unstructured: a `null` field is there, and is null.
    set.keep_null_fields = true;
    if set.bindings.is_empty() {
        set.bindings.push(vap::Binding::unrestricted(
            &policy_name,
            &policy_name,
            &[vap::types::ValidationAction::Deny],
        ));
    }
    Ok(set)
}

/// The data `{{ }}` variables read.
fn variable_data(request: &AdmissionRequest, object: &Value) -> Value {
    let user = serde_json::to_value(&request.user_info).unwrap_or(Value::Null);
    let (sa_namespace, sa_name) = request
        .user_info
        .username
        .strip_prefix("system:serviceaccount:")
        .and_then(|rest| rest.split_once(':'))
        .map_or((String::new(), String::new()), |(ns, n)| {
            (ns.to_owned(), n.to_owned())
        });
    json!({
        "request": {
            "operation": request.operation.as_str(),
            "object": object,
            "oldObject": request.old_object.clone().unwrap_or(Value::Null),
            "userInfo": user,
            "namespace": request.namespace,
            "name": request.name,
            "kind": {"group": request.kind.group, "version": request.kind.version, "kind": request.kind.kind},
            "roles": [],
            "clusterRoles": [],
        },
        "serviceAccountName": sa_name,
        "serviceAccountNamespace": sa_namespace,
    })
}

fn condition_outcome(error: ConditionError) -> Outcome {
    match error {
        ConditionError::Invalid(m) => Outcome::Error(m),
        ConditionError::NotEvaluable(m) => Outcome::NotEvaluable(m),
    }
}

impl Rule {
    /// Whether the rule could match an object of `kind`: its `match` names the kind, or names
    /// Pods and autogen extends the rule to the kind.
    fn may_judge_kind(&self, kind: &str) -> bool {
        self.matches.may_select_kind(kind)
            || (self.autogen.contains(&kind) && self.matches.may_select_kind("Pod"))
    }

    /// The rule's answer for the request: directly, or through autogen for a pod controller.
    fn evaluate(
        &self,
        policy: &str,
        bare_policy: &str,
        request: &AdmissionRequest,
        object: &Value,
        ctx: &Context<'_>,
        exceptions: &[Exception],
    ) -> (bool, Outcome) {
        let target = Target::new(request, object, ctx);
        if self.matches.selects(&target) {
            if !self.exclude.is_empty() && self.exclude.selects(&target) {
                return (false, Outcome::Skip("excluded".into()));
            }
            let mut extra: &[Exclusion] = &[];
            if let Some(e) = excepted(exceptions, policy, bare_policy, &self.name, &target) {
                match self.exception_exclusions(e) {
                    Some(more) => extra = more,
                    None => return (false, Outcome::Skip(format!("excepted by {}", e.name))),
                }
            }
            return (false, self.run(request, object, ctx, None, extra));
        }
        let kind = request.kind.kind.as_str();
        if self.autogen.contains(&kind) {
            if let Some(view) = autogen::pod_view(object) {
                let mut pod_request = request.clone();
                pod_request.kind = GroupVersionKind {
                    group: String::new(),
                    version: "v1".into(),
                    kind: "Pod".into(),
                };
                pod_request.resource = GroupVersionResource {
                    group: String::new(),
                    version: "v1".into(),
                    resource: "pods".into(),
                };
                pod_request.object = Some(view.clone());
                if pod_request.old_object.is_some() {
                    pod_request.old_object =
                        request.old_object.as_ref().and_then(autogen::pod_view);
                }
                // Match on the controller's own metadata, as the Pod kind.
                let mut target = Target::new(request, object, ctx);
                target.kind = "Pod";
                target.group = "";
                target.version = "v1";
                if !self.matches.selects(&target) {
                    return (true, Outcome::Skip("not matched".into()));
                }
                if !self.exclude.is_empty() && self.exclude.selects(&target) {
                    return (true, Outcome::Skip("excluded".into()));
                }
                let real = Target::new(request, object, ctx);
                let mut extra: &[Exclusion] = &[];
                if let Some(e) = excepted(exceptions, policy, bare_policy, &self.name, &real) {
                    match self.exception_exclusions(e) {
                        Some(more) => extra = more,
                        None => return (true, Outcome::Skip(format!("excepted by {}", e.name))),
                    }
                }
                let prefix = autogen::template_path(kind)
                    .map(|p| format!("/{}", p.join("/")))
                    .unwrap_or_default();
                return (
                    true,
                    self.run(&pod_request, &view, ctx, Some(&prefix), extra),
                );
            }
        }
        (false, Outcome::Skip("not matched".into()))
    }

    /// Evaluate a matched rule on `object` (the resource, or a controller's pod view with the
    /// path `prefix` of its template).
    fn run(
        &self,
        request: &AdmissionRequest,
        object: &Value,
        ctx: &Context<'_>,
        prefix: Option<&str>,
        extra_exclusions: &[Exclusion],
    ) -> Outcome {
        if let Validate::NotHere(why) = &self.validate {
            return Outcome::NotEvaluable(why.clone());
        }
        if let Some(why) = &self.needs {
            return Outcome::NotEvaluable(why.clone());
        }
        let mut budget = Budget::default();
        let mut data = variable_data(request, object);
        for (name, variable) in &self.variables {
            let value = match self.context_variable(variable, &data, &mut budget) {
                Ok(v) => v,
                Err(e) => return condition_outcome(e),
            };
            if let Some(map) = data.as_object_mut() {
                map.insert(name.clone(), value);
            }
        }
        match self
            .preconditions
            .evaluate(&data, Lookup::NullOnError, &mut budget)
        {
            Ok((true, _)) => {}
            Ok((false, _)) => return Outcome::Skip("preconditions not met".into()),
            Err(e) => return condition_outcome(e),
        }
        let message = || {
            let text = self.message.clone().unwrap_or_default();
            match conditions::substitute(
                &Value::String(text.clone()),
                &data,
                Lookup::NullOnError,
                &mut Budget::default(),
            ) {
                Ok(Value::String(s)) => s,
                _ => text,
            }
        };
        let fail_at = |path: &str| {
            Outcome::Fail(format!(
                "validation error: {}. rule {} failed at path {}{}",
                message(),
                self.name,
                prefix.unwrap_or(""),
                path
            ))
        };
        match &self.validate {
            Validate::Pattern(p) => {
                let p = match conditions::substitute(p, &data, Lookup::Strict, &mut budget) {
                    Ok(p) => p,
                    Err(e) => return condition_outcome(e),
                };
                match pattern::validate(object, &p) {
                    Verdict::Pass => Outcome::Pass,
                    Verdict::Skip(why) => Outcome::Skip(format!("rule skipped: {why}")),
                    Verdict::Fail { path, .. } => fail_at(&path),
                }
            }
            Validate::AnyPattern(list) => match any_pattern(list, object, &data, &mut budget) {
                Ok(AnyVerdict::Pass) => Outcome::Pass,
                Ok(AnyVerdict::Skip) => {
                    Outcome::Skip("rule skipped: every pattern's conditions were unmet".into())
                }
                Ok(AnyVerdict::Fail(paths)) => Outcome::Fail(format!(
                    "validation error: {}. {}",
                    message(),
                    paths
                        .iter()
                        .enumerate()
                        .map(|(i, p)| format!(
                            "rule {}[{i}] failed at path {}{p}",
                            self.name,
                            prefix.unwrap_or("")
                        ))
                        .collect::<Vec<_>>()
                        .join(" ")
                )),
                Err(e) => condition_outcome(e),
            },
            Validate::Deny(conditions) => {
                match conditions.evaluate(&data, Lookup::Strict, &mut budget) {
                    Ok((true, _)) => Outcome::Fail(message()),
                    Ok((false, _)) => Outcome::Pass,
                    Err(e) => condition_outcome(e),
                }
            }
            Validate::Foreach(list) => match foreach(list, object, &data, &mut budget) {
                Ok(ForeachVerdict { applied: 0, .. }) => {
                    Outcome::Skip("rule skipped: no foreach element applied".into())
                }
                Ok(ForeachVerdict {
                    failed: Some(at), ..
                }) => Outcome::Fail(format!("validation failure: {}. {at}", message())),
                Ok(_) => Outcome::Pass,
                Err(e) => condition_outcome(e),
            },
            Validate::Cel(set) => cel_outcome(set, request, ctx),
            Validate::PodSecurity(rule) => match rule
                .with_exclusions(extra_exclusions)
                .evaluate(object, prefix.is_some())
            {
                None => Outcome::Pass,
                Some(why) => {
                    Outcome::Fail(format!("Validation rule '{}' failed. It {why}", self.name))
                }
            },
            Validate::NotHere(why) => Outcome::NotEvaluable(why.clone()),
        }
    }

    /// A PolicyException with `podSecurity` entries does not skip a podSecurity rule: it adds
    /// its entries to the rule's exclusions (`Some`). Any other exception skips it (`None`).
    fn exception_exclusions<'e>(&self, exception: &'e Exception) -> Option<&'e [Exclusion]> {
        match (&self.validate, exception.pod_security.is_empty()) {
            (Validate::PodSecurity(_), false) => Some(&exception.pod_security),
            _ => None,
        }
    }

    fn context_variable(
        &self,
        variable: &ContextVariable,
        data: &Value,
        budget: &mut Budget,
    ) -> Result<Value, ConditionError> {
        let value = match &variable.value {
            Some(v) => conditions::substitute(v, data, Lookup::Strict, budget)?,
            None => Value::Null,
        };
        let value = match &variable.jmes_path {
            Some(ast) => {
                let source = if variable.value.is_some() {
                    &value
                } else {
                    data
                };
                jmespath::evaluate(ast, source, budget)?
            }
            None => value,
        };
        Ok(if value.is_null() {
            variable.default.clone().unwrap_or(Value::Null)
        } else {
            value
        })
    }
}

enum AnyVerdict {
    Pass,
    Skip,
    Fail(Vec<String>),
}

fn any_pattern(
    list: &[Value],
    object: &Value,
    data: &Value,
    budget: &mut Budget,
) -> Result<AnyVerdict, ConditionError> {
    let mut failures = Vec::new();
    let mut skipped = 0;
    for p in list {
        let p = conditions::substitute(p, data, Lookup::Strict, budget)?;
        match pattern::validate(object, &p) {
            Verdict::Pass => return Ok(AnyVerdict::Pass),
            Verdict::Skip(_) => skipped += 1,
            Verdict::Fail { path, .. } => failures.push(path),
        }
    }
    if skipped == list.len() && !list.is_empty() {
        return Ok(AnyVerdict::Skip);
    }
    Ok(AnyVerdict::Fail(failures))
}

struct ForeachVerdict {
    applied: usize,
    failed: Option<String>,
}

fn foreach(
    list: &[Foreach],
    object: &Value,
    data: &Value,
    budget: &mut Budget,
) -> Result<ForeachVerdict, ConditionError> {
    let mut applied = 0;
    for entry in list {
        let elements = match jmespath::evaluate(&entry.list, data, budget)? {
            Value::Array(items) => items,
            Value::Null => Vec::new(),
            other => vec![other],
        };
        if elements.len() > MAX_FOREACH_ELEMENTS {
            return Err(ConditionError::Invalid(format!(
                "the foreach list has {} elements, more than the {MAX_FOREACH_ELEMENTS} allowed",
                elements.len()
            )));
        }
        for (index, element) in elements.iter().enumerate() {
            let mut scoped = data.clone();
            if let Some(map) = scoped.as_object_mut() {
                map.insert("element".into(), element.clone());
                map.insert("elementIndex".into(), json!(index));
            }
            let (holds, _) = entry
                .preconditions
                .evaluate(&scoped, Lookup::NullOnError, budget)?;
            if !holds {
                continue;
            }
            let subject = if entry.element_scope.unwrap_or(true) {
                element
            } else {
                object
            };
            let failed = match &entry.check {
                ForeachCheck::Pattern(p) => {
                    let p = conditions::substitute(p, &scoped, Lookup::Strict, budget)?;
                    match pattern::validate(subject, &p) {
                        Verdict::Pass => None,
                        Verdict::Skip(_) => continue,
                        Verdict::Fail { path, .. } => {
                            Some(format!("element {index} failed at path {path}"))
                        }
                    }
                }
                ForeachCheck::AnyPattern(ps) => match any_pattern(ps, subject, &scoped, budget)? {
                    AnyVerdict::Pass => None,
                    AnyVerdict::Skip => continue,
                    AnyVerdict::Fail(_) => Some(format!("element {index} matched no pattern")),
                },
                ForeachCheck::Deny(conditions) => {
                    let (deny, _) = conditions.evaluate(&scoped, Lookup::Strict, budget)?;
                    deny.then(|| format!("element {index} was denied"))
                }
                ForeachCheck::Nested(nested) => {
                    let verdict = foreach(nested, object, &scoped, budget)?;
                    if verdict.applied == 0 {
                        continue;
                    }
                    verdict.failed
                }
            };
            applied += 1;
            if let Some(why) = failed {
                return Ok(ForeachVerdict {
                    applied,
                    failed: Some(why),
                });
            }
        }
    }
    Ok(ForeachVerdict {
        applied,
        failed: None,
    })
}

fn cel_outcome(set: &vap::PolicySet, request: &AdmissionRequest, ctx: &Context<'_>) -> Outcome {
    let eval_ctx = vap::EvalContext {
        namespaces: ctx.namespaces,
        params: &[],
        authorizer: None,
    };
    let result = set.evaluate(request, &eval_ctx);
    let mut failures = Vec::new();
    let mut errors = Vec::new();
    let mut evaluated = false;
    for evaluation in &result.evaluations {
        match &evaluation.outcome {
            vap::EvaluationOutcome::ConditionsNotMet => {}
            vap::EvaluationOutcome::Evaluated { failures: f, .. } => {
                evaluated = true;
                for failure in f {
                    if failure.error {
                        errors.push(failure.message.clone());
                    } else {
                        failures.push(failure.message.clone());
                    }
                }
            }
            vap::EvaluationOutcome::ConfigurationError { message, .. } => {
                return Outcome::NotEvaluable(format!(
                    "the rule's parameters are not available here ({message})"
                ))
            }
            vap::EvaluationOutcome::NotEvaluable { reason } => {
                return Outcome::NotEvaluable(reason.clone())
            }
        }
    }
    // An expression that fails to evaluate denies, as the failure policy `Fail` Kyverno gives
    // these rules says.
    failures.extend(errors);
    if !failures.is_empty() {
        Outcome::Fail(failures.join("; "))
    } else if evaluated {
        Outcome::Pass
    } else {
        Outcome::Skip("celPreconditions not met".into())
    }
}

/// The name of an exception that covers the rule for this resource.
fn excepted<'e>(
    exceptions: &'e [Exception],
    policy: &str,
    bare_policy: &str,
    rule: &str,
    target: &Target<'_>,
) -> Option<&'e Exception> {
    exceptions
        .iter()
        .find(|e| e.covers(policy, bare_policy, rule) && e.applies_to(target))
}

/// A PolicyException: which rules of which policies do not apply to which resources.
#[derive(Debug, Clone)]
pub struct Exception {
    pub name: String,
    /// (policy name, rule names) pairs.
    pub exceptions: Vec<(String, Vec<String>)>,
    matches: Match,
    conditions: Conditions,
    /// `spec.podSecurity`: controls excluded from podSecurity rules instead of skipping them.
    pub pod_security: Vec<Exclusion>,
}

impl Exception {
    pub fn from_document(file: &str, document: &Document) -> Result<Exception, Vec<SourceError>> {
        let reader = Reader { file, document };
        let value = &document.value;
        let name = value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .ok_or_else(|| vec![reader.error("", "metadata.name: an exception needs a name")])?;
        let mut exceptions = Vec::new();
        let list = value.pointer("/spec/exceptions").and_then(Value::as_array);
        for entry in list.into_iter().flatten() {
            let policy = entry
                .get("policyName")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    vec![reader.error("exceptions", "spec.exceptions: each needs a policyName")]
                })?;
            let rules = string_items(entry.get("ruleNames"));
            exceptions.push((policy.to_owned(), rules));
        }
        let matches = match value.pointer("/spec/match") {
            Some(m) => Match::read(m)
                .map_err(|e| vec![reader.error("match", format!("spec.match: {e}"))])?,
            None => Match::default(),
        };
        let conditions = match value.pointer("/spec/conditions") {
            Some(c) => Conditions::read(c)
                .map_err(|e| vec![reader.error("conditions", format!("spec.conditions: {e}"))])?,
            None => Conditions::default(),
        };
        let pod_security = match value.pointer("/spec/podSecurity") {
            Some(entries) => pod_security::read_exclusions(entries, "spec.podSecurity")
                .map_err(|e| vec![reader.error("podSecurity", e)])?,
            None => Vec::new(),
        };
        Ok(Exception {
            name: name.to_owned(),
            exceptions,
            matches,
            conditions,
            pod_security,
        })
    }

    /// Whether it names `rule` of `policy` (autogen names count for the rule they came from).
    pub fn covers(&self, policy: &str, bare_policy: &str, rule: &str) -> bool {
        self.exceptions.iter().any(|(p, rules)| {
            (p == policy || p == bare_policy)
                && rules.iter().any(|r| {
                    let r = r
                        .strip_prefix("autogen-cronjob-")
                        .or_else(|| r.strip_prefix("autogen-"))
                        .unwrap_or(r);
                    r == rule || pattern::wildcard_match(r, rule)
                })
        })
    }

    /// Whether its `match` and `conditions` hold for the resource.
    pub fn applies_to(&self, target: &Target<'_>) -> bool {
        if !self.matches.selects(target) {
            return false;
        }
        if self.conditions.is_empty() {
            return true;
        }
        let data = variable_data(target.request, target.object);
        matches!(
            self.conditions
                .evaluate(&data, Lookup::NullOnError, &mut Budget::default()),
            Ok((true, _))
        )
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
