//! The `authorizer` variable of admission CEL: `authorizer.group('apps').resource('deployments')
//! .namespace('n').check('create').allowed()`, `authorizer.path('/healthz').check('get')`,
//! `authorizer.serviceAccount('ns', 'sa')…`, and `authorizer.requestResource` (a resource check
//! already filled in with the request's resource, namespace and name).
//!
//! Checks are answered by an [`AuthorizerModel`]: a local model of the cluster's authorization.
//! [`RbacModel`] reads Roles, ClusterRoles and their bindings, as the apiserver's RBAC authorizer.

use std::any::Any;
use std::sync::Arc;

use cel::common::types::{CelBool, CelString, Type};
use cel::common::value::{CowVal, StaticVal, Val};
use cel::extractors::IntoResolveResult;
use cel::functions::FunctionContext;
use cel::{Context, ExecutionError};
use serde_json::Value;

use crate::admission::UserInfo;

/// One authorization question, as the apiserver's authorizer receives it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizationCheck {
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    /// For a non-resource check (`authorizer.path(...)`): the URL path.
    pub path: Option<String>,
}

/// A decision and the reason for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationDecision {
    pub allowed: bool,
    pub reason: String,
}

/// A local model of the cluster's authorization.
pub trait AuthorizerModel: std::fmt::Debug + Send + Sync {
    fn authorize(&self, user: &UserInfo, check: &AuthorizationCheck) -> AuthorizationDecision;
}

static AUTHORIZER_TYPE: Type = Type::new_unspecified_type("kubernetes.authorization.Authorizer");
static PATH_CHECK_TYPE: Type = Type::new_unspecified_type("kubernetes.authorization.PathCheck");
static GROUP_CHECK_TYPE: Type = Type::new_unspecified_type("kubernetes.authorization.GroupCheck");
static RESOURCE_CHECK_TYPE: Type =
    Type::new_unspecified_type("kubernetes.authorization.ResourceCheck");
static DECISION_TYPE: Type = Type::new_unspecified_type("kubernetes.authorization.Decision");

#[derive(Debug, Clone)]
enum Stage {
    Authorizer,
    Path(String),
    Group(String),
    Resource(AuthorizationCheck),
    Decision(AuthorizationDecision),
}

/// A value of the authorizer library: the authorizer itself, a check being built, or a decision.
#[derive(Debug, Clone)]
pub struct AuthzVal {
    model: Arc<dyn AuthorizerModel>,
    user: Arc<UserInfo>,
    stage: Stage,
}

impl AuthzVal {
    /// `authorizer`, for `user`.
    pub fn authorizer(model: Arc<dyn AuthorizerModel>, user: Arc<UserInfo>) -> Self {
        AuthzVal {
            model,
            user,
            stage: Stage::Authorizer,
        }
    }

    /// `authorizer.requestResource`: a check of the request's own resource.
    pub fn request_resource(
        model: Arc<dyn AuthorizerModel>,
        user: Arc<UserInfo>,
        check: AuthorizationCheck,
    ) -> Self {
        AuthzVal {
            model,
            user,
            stage: Stage::Resource(check),
        }
    }

    fn with(&self, stage: Stage) -> AuthzVal {
        AuthzVal {
            model: Arc::clone(&self.model),
            user: Arc::clone(&self.user),
            stage,
        }
    }
}

impl Val for AuthzVal {
    fn get_type(&self) -> &Type {
        match self.stage {
            Stage::Authorizer => &AUTHORIZER_TYPE,
            Stage::Path(_) => &PATH_CHECK_TYPE,
            Stage::Group(_) => &GROUP_CHECK_TYPE,
            Stage::Resource(_) => &RESOURCE_CHECK_TYPE,
            Stage::Decision(_) => &DECISION_TYPE,
        }
    }

    fn cel_type() -> &'static Type {
        &AUTHORIZER_TYPE
    }

    fn clone_as_boxed<'v>(&self) -> Box<dyn Val + 'v> {
        Box::new(self.clone())
    }

    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }
}

impl StaticVal for AuthzVal {}

fn this<'a>(ftx: &'a FunctionContext<'_, '_>) -> Result<&'a AuthzVal, ExecutionError> {
    ftx.this
        .as_ref()
        .and_then(|t| t.downcast_ref::<AuthzVal>())
        .ok_or_else(|| ftx.error("expects an authorizer value as its target"))
}

fn string_arg(ftx: &FunctionContext<'_, '_>, index: usize) -> Result<String, ExecutionError> {
    ftx.args
        .get(index)
        .and_then(|a| a.downcast_ref::<CelString>())
        .map(|s| s.inner().to_owned())
        .ok_or_else(|| ftx.error(format!("argument {index} must be a string")))
}

enum AuthzOutput {
    Val(AuthzVal),
    Bool(bool),
    String(String),
}

/// What the library's functions return.
struct AuthzResult(Result<AuthzOutput, ExecutionError>);

impl<'context, 'call> IntoResolveResult<'context, 'call> for AuthzResult {
    fn into_resolve_result(self) -> Result<CowVal<'context, 'call>, ExecutionError> {
        self.0.map(|out| match out {
            AuthzOutput::Val(v) => CowVal::owned(v),
            AuthzOutput::Bool(b) => CowVal::owned(CelBool::from(b)),
            AuthzOutput::String(s) => CowVal::owned(CelString::from(s)),
        })
    }
}

type Method = fn(&FunctionContext<'_, '_>) -> Result<AuthzOutput, ExecutionError>;

/// Register the authorizer library's functions.
pub fn register(ctx: &mut Context<'static, 'static>) {
    let functions: [(&str, Method); 12] = [
        ("path", path),
        ("group", group),
        ("serviceAccount", service_account),
        ("resource", resource),
        ("subresource", |f| set_field(f, |c, v| c.subresource = v)),
        ("namespace", |f| set_field(f, |c, v| c.namespace = v)),
        ("name", |f| set_field(f, |c, v| c.name = v)),
        ("check", check),
        ("allowed", allowed),
        ("reason", reason),
        ("errored", |_| Ok(AuthzOutput::Bool(false))),
        ("error", |_| Ok(AuthzOutput::String(String::new()))),
    ];
    for (name, method) in functions {
        // These names are not the standard library's, so adding them cannot fail.
        let _ = ctx.add_function(name, move |ftx: &FunctionContext| AuthzResult(method(ftx)));
    }
}

fn path(ftx: &FunctionContext<'_, '_>) -> Result<AuthzOutput, ExecutionError> {
    let me = this(ftx)?;
    match me.stage {
        Stage::Authorizer => Ok(AuthzOutput::Val(me.with(Stage::Path(string_arg(ftx, 0)?)))),
        _ => Err(ftx.error("path() applies to an authorizer")),
    }
}

fn group(ftx: &FunctionContext<'_, '_>) -> Result<AuthzOutput, ExecutionError> {
    let me = this(ftx)?;
    match me.stage {
        Stage::Authorizer => Ok(AuthzOutput::Val(me.with(Stage::Group(string_arg(ftx, 0)?)))),
        _ => Err(ftx.error("group() applies to an authorizer")),
    }
}

fn service_account(ftx: &FunctionContext<'_, '_>) -> Result<AuthzOutput, ExecutionError> {
    let me = this(ftx)?;
    let namespace = string_arg(ftx, 0)?;
    let name = string_arg(ftx, 1)?;
    let user = UserInfo {
        username: format!("system:serviceaccount:{namespace}:{name}"),
        groups: vec![
            "system:serviceaccounts".to_owned(),
            format!("system:serviceaccounts:{namespace}"),
            "system:authenticated".to_owned(),
        ],
        ..UserInfo::default()
    };
    Ok(AuthzOutput::Val(AuthzVal {
        model: Arc::clone(&me.model),
        user: Arc::new(user),
        stage: Stage::Authorizer,
    }))
}

fn resource(ftx: &FunctionContext<'_, '_>) -> Result<AuthzOutput, ExecutionError> {
    let me = this(ftx)?;
    match &me.stage {
        Stage::Group(group) => Ok(AuthzOutput::Val(me.with(Stage::Resource(
            AuthorizationCheck {
                group: group.clone(),
                resource: string_arg(ftx, 0)?,
                ..AuthorizationCheck::default()
            },
        )))),
        _ => Err(ftx.error("resource() applies to a group check")),
    }
}

fn set_field(
    ftx: &FunctionContext<'_, '_>,
    set: fn(&mut AuthorizationCheck, String),
) -> Result<AuthzOutput, ExecutionError> {
    let me = this(ftx)?;
    match &me.stage {
        Stage::Resource(check) => {
            let mut check = check.clone();
            set(&mut check, string_arg(ftx, 0)?);
            Ok(AuthzOutput::Val(me.with(Stage::Resource(check))))
        }
        _ => Err(ftx.error("applies to a resource check")),
    }
}

fn check(ftx: &FunctionContext<'_, '_>) -> Result<AuthzOutput, ExecutionError> {
    let me = this(ftx)?;
    let verb = string_arg(ftx, 0)?;
    let question = match &me.stage {
        Stage::Path(path) => AuthorizationCheck {
            verb,
            path: Some(path.clone()),
            ..AuthorizationCheck::default()
        },
        Stage::Resource(check) => AuthorizationCheck {
            verb,
            ..check.clone()
        },
        _ => return Err(ftx.error("check() applies to a path or resource check")),
    };
    let decision = me.model.authorize(&me.user, &question);
    Ok(AuthzOutput::Val(me.with(Stage::Decision(decision))))
}

fn allowed(ftx: &FunctionContext<'_, '_>) -> Result<AuthzOutput, ExecutionError> {
    match &this(ftx)?.stage {
        Stage::Decision(decision) => Ok(AuthzOutput::Bool(decision.allowed)),
        _ => Err(ftx.error("allowed() applies to a decision")),
    }
}

fn reason(ftx: &FunctionContext<'_, '_>) -> Result<AuthzOutput, ExecutionError> {
    match &this(ftx)?.stage {
        Stage::Decision(decision) => Ok(AuthzOutput::String(decision.reason.clone())),
        _ => Err(ftx.error("reason() applies to a decision")),
    }
}

/// Kubernetes RBAC over a set of Role, ClusterRole, RoleBinding and ClusterRoleBinding objects.
#[derive(Debug, Clone, Default)]
pub struct RbacModel {
    roles: Vec<Value>,
    bindings: Vec<Value>,
}

impl RbacModel {
    /// Keep the RBAC objects among `objects`; others are ignored.
    pub fn from_objects<'a>(objects: impl IntoIterator<Item = &'a Value>) -> RbacModel {
        let mut model = RbacModel::default();
        for object in objects {
            let is_rbac = object.get("apiVersion").and_then(Value::as_str)
                == Some("rbac.authorization.k8s.io/v1");
            match object.get("kind").and_then(Value::as_str) {
                Some("Role" | "ClusterRole") if is_rbac => model.roles.push(object.clone()),
                Some("RoleBinding" | "ClusterRoleBinding") if is_rbac => {
                    model.bindings.push(object.clone())
                }
                _ => {}
            }
        }
        model
    }

    fn role(&self, kind: &str, name: &str, namespace: &str) -> Option<&Value> {
        self.roles.iter().find(|role| {
            text(role, &["kind"]) == kind
                && text(role, &["metadata", "name"]) == name
                && (kind == "ClusterRole" || text(role, &["metadata", "namespace"]) == namespace)
        })
    }
}

fn text<'v>(value: &'v Value, path: &[&str]) -> &'v str {
    let mut at = value;
    for key in path {
        match at.get(key) {
            Some(next) => at = next,
            None => return "",
        }
    }
    at.as_str().unwrap_or_default()
}

fn strings(value: &Value, key: &str) -> Vec<String> {
    value
        .get(key)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn subject_matches(subject: &Value, user: &UserInfo, binding_namespace: &str) -> bool {
    let name = text(subject, &["name"]);
    match text(subject, &["kind"]) {
        "User" => user.username == name,
        "Group" => user.groups.iter().any(|g| g == name),
        "ServiceAccount" => {
            let namespace = match text(subject, &["namespace"]) {
                "" => binding_namespace,
                ns => ns,
            };
            user.username == format!("system:serviceaccount:{namespace}:{name}")
        }
        _ => false,
    }
}

fn rule_allows(rule: &Value, check: &AuthorizationCheck) -> bool {
    let has = |key: &str, value: &str| strings(rule, key).iter().any(|v| v == "*" || v == value);
    if !has("verbs", &check.verb) {
        return false;
    }
    if let Some(path) = &check.path {
        return strings(rule, "nonResourceURLs").iter().any(|pattern| {
            pattern == "*"
                || pattern == path
                || pattern
                    .strip_suffix('*')
                    .is_some_and(|prefix| path.starts_with(prefix))
        });
    }
    let resource = if check.subresource.is_empty() {
        check.resource.clone()
    } else {
        format!("{}/{}", check.resource, check.subresource)
    };
    let resources = strings(rule, "resources");
    let resource_ok = resources.iter().any(|r| {
        r == "*" || *r == resource || (r.starts_with("*/") && check.subresource == r[2..])
    });
    let names = strings(rule, "resourceNames");
    has("apiGroups", &check.group)
        && resource_ok
        && (names.is_empty() || names.contains(&check.name))
}

impl AuthorizerModel for RbacModel {
    fn authorize(&self, user: &UserInfo, check: &AuthorizationCheck) -> AuthorizationDecision {
        for binding in &self.bindings {
            let binding_kind = text(binding, &["kind"]);
            let binding_namespace = text(binding, &["metadata", "namespace"]);
            // A RoleBinding grants only in its namespace, and nothing for non-resource URLs.
            if binding_kind == "RoleBinding"
                && (check.path.is_some() || check.namespace != binding_namespace)
            {
                continue;
            }
            let subjects = binding.get("subjects").and_then(Value::as_array);
            let Some(subject) = subjects.and_then(|subjects| {
                subjects
                    .iter()
                    .find(|s| subject_matches(s, user, binding_namespace))
            }) else {
                continue;
            };
            let role_kind = text(binding, &["roleRef", "kind"]);
            let role_name = text(binding, &["roleRef", "name"]);
            let Some(role) = self.role(role_kind, role_name, binding_namespace) else {
                continue;
            };
            let rules = role.get("rules").and_then(Value::as_array);
            if rules.is_some_and(|rules| rules.iter().any(|r| rule_allows(r, check))) {
                return AuthorizationDecision {
                    allowed: true,
                    reason: format!(
                        "RBAC: allowed by {binding_kind} \"{}{}\" of {role_kind} \"{role_name}\" to {} \"{}\"",
                        text(binding, &["metadata", "name"]),
                        if binding_namespace.is_empty() {
                            String::new()
                        } else {
                            format!("/{binding_namespace}")
                        },
                        text(subject, &["kind"]),
                        text(subject, &["name"]),
                    ),
                };
            }
        }
        AuthorizationDecision {
            allowed: false,
            reason: String::new(),
        }
    }
}
