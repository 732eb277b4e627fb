//! Gatekeeper: ConstraintTemplates (Rego, run with regorus) and their Constraints, evaluated the way
//! Gatekeeper's validation webhook, audit and `gator` CLI evaluate them.
//!
//! - A [`Library`] holds templates and constraints read from YAML documents. Each template's Rego is
//!   compiled once, for regorus's register VM where the VM reads it as OPA does, else for regorus's
//!   interpreter (see [`Evaluator`] and `template::Program`); an evaluation takes an idle machine or
//!   engine prepared with it and sets the input.
//! - [`Library::review`] takes an [`AdmissionRequest`]; [`Library::review_object`] takes a bare
//!   object, built into a review exactly as `gator` builds one (no operation, no user).
//! - The Rego input is what Gatekeeper's Rego driver passes: `input.review` (the AdmissionRequest as
//!   the apiserver serialises it, with `object` set to `oldObject` on DELETE and
//!   `namespaceObject`), `input.parameters` (`spec.parameters`, `{}` when absent), and
//!   `data.inventory` (from an [`Inventory`]).
//! - Each violation is reported with the constraint's enforcement action at the enforcement point
//!   (deny → [`Action::Deny`], warn → [`Action::Warn`], dryrun → [`Action::Audit`]). As in
//!   Gatekeeper, a constraint that cannot be matched (for example a `namespaceSelector` on a
//!   namespaced object whose Namespace is unknown) or whose Rego fails at run time counts as
//!   violated, with the error as its message.
//!
//! Before compiling, [`normalise`] rewrites four Rego v0 forms that regorus 0.14.1 reads differently
//! from OPA; each rewrite keeps lines in place and is listed in [`Template::rewrites`].
//!
//! The Rego goes through [`rego`]: the engine set up as Gatekeeper's OPA, and the checks Gatekeeper
//! makes when a template is created (undefined functions, arity, rule conflicts, v0 keywords).
//!
//! Not covered: schema validation of `spec.parameters` against the template's openAPIV3Schema,
//! `external_data`, expansion templates, and Gatekeeper's restriction of `data.*` references to
//! `data.lib.*` and `data.inventory`.
//!
//! A template with `K8sNativeValidation` (CEL) code is judged by that code, as Gatekeeper's CEL
//! driver (first in its driver order) judges it, and its Rego is only checked at load ([`cel`]).

mod builtins;
mod cel;
pub mod constraint;
mod input;
pub mod normalise;
pub mod rego;
pub mod template;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde_json::{json, Value};

use crate::admission::{gvk_of, AdmissionRequest, GroupVersionKind, Operation};
use crate::namespaces::Namespaces;
use crate::source::{Document, SourceError};
use crate::verdict::{Action, EngineKind, Finding, NotEvaluable, Verdict};

pub use constraint::{Constraint, EnforcementAction, EnforcementPoint, LabelSelector, Match};
pub use normalise::{Rewrite, Rewrites};
pub use template::{Evaluator, Template};

use cel::CelProgram;
use constraint::Matchable;

/// Objects that Rego sees as `data.inventory` (Gatekeeper's replicated cluster state), and the
/// Namespaces among them, which `namespaceSelector` needs.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// `{"inventory": {"namespace": …, "cluster": …}}`, or `None` when there are no objects.
    data: Option<regorus::Value>,
    /// `v1` Namespaces by name.
    namespaces: BTreeMap<String, Value>,
    len: usize,
    /// Tells inventories apart, so a template can keep an engine prepared with this one's data.
    id: u64,
}

/// The next [`Inventory::id`].
static NEXT_INVENTORY: AtomicU64 = AtomicU64::new(1);

impl Inventory {
    pub fn empty() -> Inventory {
        Inventory::default()
    }

    /// Build the inventory from cluster objects. Namespaced objects go to
    /// `data.inventory.namespace[<ns>][<apiVersion>][<kind>][<name>]`, cluster-scoped ones to
    /// `data.inventory.cluster[<apiVersion>][<kind>][<name>]`. An object without `apiVersion` or
    /// `kind` is refused, as Gatekeeper refuses it.
    pub fn from_objects(objects: &[Value]) -> Result<Inventory, String> {
        let mut tree = serde_json::Map::new();
        let mut namespaces = BTreeMap::new();
        for object in objects {
            let api_version = object
                .get("apiVersion")
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty() && !v.ends_with('/'))
                .ok_or("an inventory object has no apiVersion")?;
            let kind = object
                .get("kind")
                .and_then(Value::as_str)
                .filter(|k| !k.is_empty())
                .ok_or("an inventory object has no kind")?;
            let metadata = object.get("metadata");
            let field = |key: &str| {
                metadata
                    .and_then(|m| m.get(key))
                    .and_then(Value::as_str)
                    .unwrap_or("")
            };
            let (name, namespace) = (field("name"), field("namespace"));
            let path: Vec<&str> = if namespace.is_empty() {
                vec!["cluster", api_version, kind, name]
            } else {
                vec!["namespace", namespace, api_version, kind, name]
            };
            let mut node = &mut tree;
            for key in &path[..path.len() - 1] {
                let entry = node
                    .entry((*key).to_owned())
                    .or_insert_with(|| Value::Object(serde_json::Map::new()));
                if !entry.is_object() {
                    *entry = Value::Object(serde_json::Map::new());
                }
                let Value::Object(next) = entry else {
                    return Err("inventory path is not an object".to_owned());
                };
                node = next;
            }
            node.insert(name.to_owned(), object.clone());
            if kind == "Namespace" && api_version == "v1" && namespace.is_empty() {
                namespaces.insert(name.to_owned(), object.clone());
            }
        }
        let data = (!objects.is_empty())
            .then(|| regorus::Value::from(json!({ "inventory": Value::Object(tree) })));
        Ok(Inventory {
            data,
            namespaces,
            len: objects.len(),
            id: NEXT_INVENTORY.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// The `v1` Namespace called `name`, if the inventory has it.
    pub fn namespace(&self, name: &str) -> Option<&Value> {
        self.namespaces.get(name)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// One violation of one constraint.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Violation {
    /// The constraint's kind (its template's `spec.crd.spec.names.kind`).
    pub kind: String,
    /// The constraint's `metadata.name`.
    pub constraint: String,
    /// The Rego result's `msg` (or the error, for a constraint that could not be matched or run).
    pub message: String,
    /// The Rego result's `details`, `{}` when absent.
    pub details: Value,
    /// What happens at the enforcement point of the review.
    pub action: Action,
    /// `spec.enforcementAction` as written (`deny`, `warn`, `dryrun`, `scoped`).
    pub enforcement_action: String,
}

/// The outcome of reviewing one request against a library.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Review {
    pub violations: Vec<Violation>,
    /// Constraints whose template has no Rego this engine can run.
    pub not_evaluable: Vec<NotEvaluable>,
}

impl Review {
    /// As a [`Verdict`]: one finding per violation, named `<Kind>/<constraint>`, with the message as
    /// Gatekeeper's webhook words it (`[<constraint>] <msg>`).
    pub fn into_verdict(self) -> Verdict {
        Verdict {
            findings: self
                .violations
                .into_iter()
                .map(|v| Finding {
                    engine: EngineKind::Gatekeeper,
                    policy: format!("{}/{}", v.kind, v.constraint),
                    action: v.action,
                    message: format!("[{}] {}", v.constraint, v.message),
                })
                .collect(),
            not_evaluable: self.not_evaluable,
        }
    }
}

/// A reason a request could not be reviewed at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReviewError(pub String);

/// ConstraintTemplates and Constraints.
#[derive(Debug, Clone, Default)]
pub struct Library {
    /// By kind.
    templates: BTreeMap<String, Template>,
    constraints: Vec<(Constraint, regorus::Value)>,
    rewrites: Rewrites,
    evaluator: Evaluator,
}

/// What a review is about, in the two shapes Gatekeeper accepts.
#[derive(Clone, Copy)]
enum Subject<'a> {
    /// A bare object, reviewed as `gator` reviews one.
    Object(&'a Value),
    /// An admission request.
    Request(&'a AdmissionRequest),
}

impl Library {
    pub fn new() -> Library {
        Library::default()
    }

    /// A library that compiles templates with only the given source rewrites (see [`normalise`]);
    /// [`Library::new`] applies all of them.
    pub fn with_rewrites(rewrites: Rewrites) -> Library {
        Library {
            rewrites,
            ..Library::default()
        }
    }

    /// This library, compiling the templates added from now on for `evaluator` (the VM where it
    /// can, unless told otherwise).
    pub fn with_evaluator(mut self, evaluator: Evaluator) -> Library {
        self.evaluator = evaluator;
        self
    }

    /// Read templates and constraints from `documents` (other documents are ignored).
    pub fn from_documents(file: &str, documents: &[Document]) -> Result<Library, Vec<SourceError>> {
        let mut library = Library::new();
        library.add_documents(file, documents)?;
        Ok(library)
    }

    /// Add the templates and constraints among `documents`. Templates are read first, so a file may
    /// hold a template and its constraints; a constraint whose kind no loaded template defines is an
    /// error (the cluster would have no such kind). On error nothing is added.
    pub fn add_documents(
        &mut self,
        file: &str,
        documents: &[Document],
    ) -> Result<(), Vec<SourceError>> {
        let mut errors = Vec::new();
        let mut templates = Vec::new();
        for document in documents.iter().filter(|d| Template::is_template(&d.value)) {
            match Template::from_document_with(file, document, self.rewrites, self.evaluator) {
                Ok(template) => templates.push(template),
                Err(e) => errors.extend(e),
            }
        }
        let mut constraints = Vec::new();
        for document in documents
            .iter()
            .filter(|d| Constraint::is_constraint(&d.value))
        {
            match Constraint::from_document(file, document) {
                Ok(constraint) => {
                    let known = self.templates.contains_key(&constraint.kind)
                        || templates.iter().any(|t| t.kind == constraint.kind);
                    if known {
                        let parameters = regorus::Value::from(constraint.parameters.clone());
                        constraints.push((constraint, parameters));
                    } else {
                        errors.push(SourceError::new(
                            file,
                            document.first_line,
                            0,
                            format!(
                                "no ConstraintTemplate defines the kind {:?} of constraint {:?}",
                                constraint.kind, constraint.name
                            ),
                        ));
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        for template in templates {
            self.templates.insert(template.kind.clone(), template);
        }
        for (constraint, parameters) in constraints {
            self.constraints
                .retain(|(c, _)| !(c.kind == constraint.kind && c.name == constraint.name));
            self.constraints.push((constraint, parameters));
        }
        Ok(())
    }

    pub fn templates(&self) -> impl Iterator<Item = &Template> {
        self.templates.values()
    }

    pub fn constraints(&self) -> impl Iterator<Item = &Constraint> {
        self.constraints.iter().map(|(c, _)| c)
    }

    /// What reviewing an object can read of it, when every constraint's template is judged by CEL
    /// code that compiled (its policy's reads, see [`crate::vap::PolicySet::object_reads`], with
    /// what matching reads: the object's type, name, namespace and labels). `None` when a
    /// constraint is judged by Rego, whose reads are not followed, or has no usable template:
    /// then it may read anything.
    pub fn object_reads(&self) -> Option<crate::cel::projection::Projection> {
        let mut reads = crate::cel::projection::Projection::default();
        for constraint in self.constraints() {
            reads.merge(&self.cel_of(constraint)?.object_reads());
        }
        Some(reads)
    }

    /// Whether a review's answer may depend on which object it is about beyond what the object
    /// holds: a constraint matches by name, or is judged by Rego (whose reads are not followed),
    /// or its template's CEL code reads the object's name or uid (see
    /// [`crate::vap::PolicySet::reads_identity`]). When not, two objects that differ only in
    /// `metadata.name` and `metadata.uid` get the same answer.
    pub fn reads_identity(&self) -> bool {
        self.constraints().any(|constraint| {
            !constraint.matcher.name.is_empty()
                || self
                    .cel_of(constraint)
                    .is_none_or(CelProgram::reads_identity)
        })
    }

    /// Whether a review's answer may depend on the object's labels: a constraint selects by
    /// label, or is judged by Rego, or its template's CEL code reads them (a Namespace object
    /// apart: namespace selectors read its labels).
    pub fn reads_labels(&self) -> bool {
        self.constraints().any(|constraint| {
            constraint.matcher.label_selector.is_some()
                || self.cel_of(constraint).is_none_or(CelProgram::reads_labels)
        })
    }

    /// The CEL code that judges `constraint`: its template's, when it has CEL code that compiled
    /// (Gatekeeper then runs it in preference to the Rego). `None` when Rego judges it or it has no
    /// usable template.
    fn cel_of(&self, constraint: &Constraint) -> Option<&CelProgram> {
        match &self.templates.get(&constraint.kind)?.cel {
            Some(Ok(cel)) => Some(cel),
            _ => None,
        }
    }

    /// Whether some constraint could match an object of `kind` (see [`Match::may_match_kind`]).
    pub fn may_match_kind(&self, kind: &str) -> bool {
        self.constraints
            .iter()
            .any(|(constraint, _)| constraint.matcher.may_match_kind(kind))
    }

    /// Review an admission request as Gatekeeper's validation webhook does.
    pub fn review(
        &self,
        request: &AdmissionRequest,
        inventory: &Inventory,
    ) -> Result<Review, ReviewError> {
        self.review_subject(
            Subject::Request(request),
            inventory,
            EnforcementPoint::Validation,
        )
    }

    /// Review an admission request at a given enforcement point (which decides `scoped` actions;
    /// only the webhook honours a template's `operations`).
    pub fn review_at(
        &self,
        request: &AdmissionRequest,
        inventory: &Inventory,
        point: EnforcementPoint,
    ) -> Result<Review, ReviewError> {
        self.review_subject(Subject::Request(request), inventory, point)
    }

    /// Review a bare object as `gator` does: the review carries only the object's kind, name and
    /// namespace, with no operation and no user.
    pub fn review_object(
        &self,
        object: &Value,
        inventory: &Inventory,
        point: EnforcementPoint,
    ) -> Result<Review, ReviewError> {
        self.review_subject(Subject::Object(object), inventory, point)
    }

    fn review_subject(
        &self,
        subject: Subject<'_>,
        inventory: &Inventory,
        point: EnforcementPoint,
    ) -> Result<Review, ReviewError> {
        let (operation, request_namespace) = match &subject {
            Subject::Object(object) => (None, text(object, &["metadata", "namespace"])),
            Subject::Request(request) => (Some(request.operation), request.namespace.as_str()),
        };
        let namespace = (!request_namespace.is_empty())
            .then(|| inventory.namespace(request_namespace))
            .flatten();
        // Gatekeeper's driver adds the namespace it was given; gator gives none.
        let namespace_object = match point {
            EnforcementPoint::Gator => None,
            _ => namespace,
        };
        // A template's CEL code reads the request as a ValidatingAdmissionPolicy does; `gator`
        // hands it a bare object as a creation, made when the first such template needs it.
        let mut cel_request: Option<Option<Cow<'_, AdmissionRequest>>> = None;
        let cel_request_of = || match subject {
            Subject::Object(object) => AdmissionRequest::create(object.clone())
                .ok()
                .map(Cow::Owned),
            Subject::Request(request) => Some(Cow::Borrowed(request)),
        };
        let mut cel_namespaces: Option<Namespaces> = None;
        let review = match subject {
            Subject::Object(object) => object_review(object, namespace_object)?,
            Subject::Request(request) => request_review(request, namespace_object)?,
        };
        let objects = review.objects();
        // Built into Rego values when the first constraint needs it, then shared by the others.
        let mut review_value = None;

        let mut result = Review::default();
        for (constraint, parameters) in &self.constraints {
            let Some(template) = self.templates.get(&constraint.kind) else {
                continue;
            };
            if point == EnforcementPoint::Validation {
                if let Some(operation) = operation {
                    if !template.applies_to_operation(operation.as_str()) {
                        continue;
                    }
                }
            }
            let Some(action) = constraint.enforcement_action.at(point) else {
                continue;
            };
            let violation = |message: String, details: Value| Violation {
                kind: constraint.kind.clone(),
                constraint: constraint.name.clone(),
                message,
                details,
                action,
                enforcement_action: constraint.enforcement_action.as_str().to_owned(),
            };
            match match_any(&constraint.matcher, &objects, namespace) {
                Ok(false) => continue,
                Ok(true) => {}
                Err(error) => {
                    result.violations.push(violation(
                        format!("unable to match constraints: {error}"),
                        json!({}),
                    ));
                    continue;
                }
            }
            if let Some(cel) = &template.cel {
                let cel_request = cel_request.get_or_insert_with(cel_request_of);
                let cel_namespaces = cel_namespaces
                    .get_or_insert_with(|| namespace_object.into_iter().cloned().collect());
                let outcome = match (cel, cel_request.as_deref()) {
                    (Ok(cel), Some(request)) => {
                        cel.evaluate(request, &constraint.object, cel_namespaces)
                    }
                    (Ok(_), None) => Err("the object is not a Kubernetes object".to_owned()),
                    (Err(reason), _) => Err(reason.clone()),
                };
                match outcome {
                    Ok(messages) => result.violations.extend(
                        messages
                            .into_iter()
                            .map(|message| violation(message, json!({}))),
                    ),
                    Err(reason) => result.not_evaluable.push(NotEvaluable {
                        engine: EngineKind::Gatekeeper,
                        policy: format!("{}/{}", constraint.kind, constraint.name),
                        reason,
                    }),
                }
                continue;
            }
            let program = match &template.program {
                Ok(program) => program,
                Err(reason) => {
                    result.not_evaluable.push(NotEvaluable {
                        engine: EngineKind::Gatekeeper,
                        policy: format!("{}/{}", constraint.kind, constraint.name),
                        reason: reason.clone(),
                    });
                    continue;
                }
            };
            let review_value = review_value.get_or_insert_with(|| review.to_rego());
            match evaluate(program, review_value, parameters, inventory) {
                Ok(found) => result.violations.extend(
                    found
                        .into_iter()
                        .map(|(message, details)| violation(message, details)),
                ),
                Err(error) => result.violations.push(violation(error, json!({}))),
            }
        }
        Ok(result)
    }
}

fn text<'a>(object: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .try_fold(object, |v, key| v.get(key))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// A request matches when its object or its old object matches; Gatekeeper refuses a request with
/// neither.
fn match_any(
    matcher: &Match,
    objects: &[&Value],
    namespace: Option<&Value>,
) -> Result<bool, String> {
    if objects.is_empty() {
        return Err("neither object nor old object are defined".to_owned());
    }
    for object in objects {
        if matcher.matches(&Matchable { object, namespace })? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A review before it becomes Rego input: what it is about, and the objects it concerns,
/// borrowed until [`ReviewInput::to_rego`] reads them. Its small fields are written only then, so a
/// review that no Rego reads (every constraint judged by CEL, or none matching) costs no JSON.
struct ReviewInput<'a> {
    head: Head<'a>,
    object: Option<&'a Value>,
    old_object: Option<&'a Value>,
    namespace_object: Option<&'a Value>,
}

/// Where a review's fields other than `object`, `oldObject` and `namespaceObject` come from.
enum Head<'a> {
    /// A bare object of this type, as `gator` reviews it.
    Object(GroupVersionKind, &'a Value),
    Request(&'a AdmissionRequest),
}

impl<'a> ReviewInput<'a> {
    /// The objects constraints match against: `object` and `oldObject`, where they are objects.
    fn objects(&self) -> Vec<&'a Value> {
        [self.object, self.old_object]
            .into_iter()
            .flatten()
            .filter(|v| v.is_object())
            .collect()
    }

    /// `input.review`.
    fn to_rego(&self) -> regorus::Value {
        let head = match &self.head {
            Head::Object(gvk, object) => object_head(gvk, object),
            Head::Request(request) => request_head(request),
        };
        let mut entries: Vec<(&str, regorus::Value)> = head
            .as_object()
            .map(|map| {
                map.iter()
                    .map(|(key, value)| (key.as_str(), input::to_rego(value)))
                    .collect()
            })
            .unwrap_or_default();
        let rego_or_null =
            |value: Option<&Value>| value.map_or(regorus::Value::Null, input::to_rego);
        entries.push(("object", rego_or_null(self.object)));
        entries.push(("oldObject", rego_or_null(self.old_object)));
        entries.push(("namespaceObject", rego_or_null(self.namespace_object)));
        input::object(entries)
    }
}

/// The review `gator` builds for a bare object: kind, name, namespace and object; every other field
/// as the apiserver's JSON encoding writes an empty AdmissionRequest. `namespaceObject` is the
/// request namespace's object, null without one.
fn object_review<'a>(
    object: &'a Value,
    namespace_object: Option<&'a Value>,
) -> Result<ReviewInput<'a>, ReviewError> {
    let gvk = gvk_of(object).map_err(|e| ReviewError(e.to_string()))?;
    if gvk.version.is_empty() {
        return Err(ReviewError("the object has no version".to_owned()));
    }
    Ok(ReviewInput {
        head: Head::Object(gvk, object),
        object: Some(object),
        old_object: None,
        namespace_object,
    })
}

/// The fields of [`object_review`]'s review besides the objects.
fn object_head(gvk: &GroupVersionKind, object: &Value) -> Value {
    let mut head = json!({
        "uid": "",
        "kind": {"group": gvk.group, "version": gvk.version, "kind": gvk.kind},
        "resource": {"group": "", "version": "", "resource": ""},
        "operation": "",
        "userInfo": {},
        "options": null,
    });
    for key in ["name", "namespace"] {
        let value = text(object, &["metadata", key]);
        if !value.is_empty() {
            head[key] = json!(value);
        }
    }
    head
}

/// An AdmissionRequest as `admission.k8s.io/v1` JSON (Go's `omitempty` rules), with `object` set to
/// `oldObject` on DELETE as Gatekeeper does, and `namespaceObject`.
fn request_review<'a>(
    request: &'a AdmissionRequest,
    namespace_object: Option<&'a Value>,
) -> Result<ReviewInput<'a>, ReviewError> {
    let mut object = request.object.as_ref();
    if request.operation == Operation::Delete {
        if request.old_object.is_none() {
            return Err(ReviewError(
                "oldObject cannot be nil for DELETE operations".to_owned(),
            ));
        }
        object = request.old_object.as_ref();
    }
    Ok(ReviewInput {
        head: Head::Request(request),
        object,
        old_object: request.old_object.as_ref(),
        namespace_object,
    })
}

/// The fields of [`request_review`]'s review besides the objects.
fn request_head(request: &AdmissionRequest) -> Value {
    let mut user = serde_json::Map::new();
    let info = &request.user_info;
    if !info.username.is_empty() {
        user.insert("username".into(), json!(info.username));
    }
    if !info.uid.is_empty() {
        user.insert("uid".into(), json!(info.uid));
    }
    if !info.groups.is_empty() {
        user.insert("groups".into(), json!(info.groups));
    }
    if !info.extra.is_empty() {
        user.insert("extra".into(), Value::Object(info.extra.clone()));
    }
    let mut head = json!({
        "uid": request.uid,
        "kind": request.kind,
        "resource": request.resource,
        "operation": request.operation.as_str(),
        "userInfo": user,
        "options": request.options,
    });
    let map = head.as_object_mut();
    if let Some(map) = map {
        let mut put = |key: &str, value: Value| {
            map.insert(key.to_owned(), value);
        };
        if !request.sub_resource.is_empty() {
            put("subResource", json!(request.sub_resource));
        }
        if let Some(kind) = &request.request_kind {
            put("requestKind", json!(kind));
        }
        if let Some(resource) = &request.request_resource {
            put("requestResource", json!(resource));
        }
        if !request.request_sub_resource.is_empty() {
            put("requestSubResource", json!(request.request_sub_resource));
        }
        if !request.name.is_empty() {
            put("name", json!(request.name));
        }
        if !request.namespace.is_empty() {
            put("namespace", json!(request.namespace));
        }
        if request.dry_run {
            put("dryRun", json!(true));
        }
    }
    head
}

/// Run a template's `violation` rule for one constraint. Each result with a `msg` is a violation
/// (Gatekeeper drops results without one); `details` defaults to `{}`.
fn evaluate(
    program: &template::Program,
    review: &regorus::Value,
    parameters: &regorus::Value,
    inventory: &Inventory,
) -> Result<Vec<(String, Value)>, String> {
    let input = input::constraint_input(review, parameters);
    let data = inventory.data.as_ref().map(|d| (inventory.id, d));
    let results = program.evaluate(data, input)?;
    let items: Vec<&regorus::Value> = match &results {
        regorus::Value::Set(set) => set.iter().collect(),
        regorus::Value::Array(array) => array.iter().collect(),
        _ => Vec::new(),
    };
    let mut violations = Vec::new();
    for item in items {
        let message = match &item[&regorus::Value::from("msg")] {
            regorus::Value::Undefined => continue,
            regorus::Value::String(s) => s.to_string(),
            other => other.to_json_str().unwrap_or_default(),
        };
        let details = match &item[&regorus::Value::from("details")] {
            regorus::Value::Undefined => json!({}),
            other => serde_json::to_value(other).unwrap_or(Value::Null),
        };
        violations.push((message, details));
    }
    Ok(violations)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::source::parse_documents;

    /// `text`, the file `file`, read as a library.
    fn read(file: &str, text: &str) -> Result<Library, Vec<SourceError>> {
        Library::from_documents(file, &parse_documents(file, text).unwrap())
    }

    /// The gator review of `object`, against an empty inventory.
    fn gator(lib: &Library, object: &Value) -> Review {
        lib.review_object(object, &Inventory::empty(), EnforcementPoint::Gator)
            .unwrap()
    }

    const TEMPLATE: &str = r#"apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: k8sdemo
spec:
  crd:
    spec:
      names:
        kind: K8sDemo
  targets:
    - target: admission.k8s.gatekeeper.sh
      operations: ["CREATE", "UPDATE"]
      rego: |
        package k8sdemo

        import data.lib.helpers.describe

        violation[{"msg": msg, "details": {"op": input.review.operation}}] {
          input.parameters.forbidden[_] == input.review.object.metadata.name
          msg := describe(input.review)
        }

        violation[{"msg": msg}] {
          input.parameters.echoNamespace
          msg := sprintf("namespace object: %v", [input.review.namespaceObject.metadata.name])
        }

        violation[{"msg": msg}] {
          input.parameters.inventoryKinds
          other := data.inventory.namespace[ns][_]["ConfigMap"][name]
          msg := sprintf("inventory has %v/%v", [ns, name])
        }

        violation[{"msg": msg}] {
          input.parameters.crash
          msg := twice(1)
        }

        violation[{"msg": msg}] {
          input.parameters.range
          count(numbers.range(0, input.parameters.range)) > 0
          msg := sprintf("a range of %v", [count(numbers.range(1, 3))])
        }

        violation[{"msg": msg}] {
          input.parameters.yaml
          doc := yaml.unmarshal(input.parameters.yaml)
          msg := sprintf("yaml has %v keys", [count(doc)])
        }

        violation[{"msg": msg}] {
          input.parameters.spin
          n := count([x | some i, j; numbers.range(1, 3000)[i]; numbers.range(1, 3000)[j]; x := i * j])
          msg := sprintf("spun %v", [n])
        }

        twice(x) = "one" { x == 1 }
        twice(x) = "two" { x == 1 }

        violation[{"msg": msg}] {
          input.parameters.user
          msg := sprintf("user %v groups %v", [input.review.userInfo.username, input.review.userInfo.groups])
        }
      libs:
        - |
          package lib.helpers

          describe(review) = msg {
            msg := sprintf("%v %v is forbidden", [review.kind.kind, review.object.metadata.name])
          }
"#;

    fn library(constraints: &str) -> Library {
        let text = format!("{TEMPLATE}---\n{constraints}");
        read("demo.yaml", &text).unwrap()
    }

    fn constraint(name: &str, spec: Value) -> String {
        let value = json!({
            "apiVersion": "constraints.gatekeeper.sh/v1beta1",
            "kind": "K8sDemo",
            "metadata": {"name": name},
            "spec": spec,
        });
        serde_json::to_string(&value).unwrap()
    }

    fn pod(name: &str, namespace: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace}})
    }

    /// A template with neither Palisade's own builtins nor `with`: regorus's VM evaluates it.
    const VM_TEMPLATE: &str = r#"apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: k8svm
spec:
  crd:
    spec:
      names:
        kind: K8sVm
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8svm

        violation[{"msg": msg}] {
          input.parameters.undefinedBinding
          name := input.review.object.metadata.missing
          not startswith(name, "a")
          msg := "an undefined binding passed"
        }

        violation[{"msg": msg}] {
          input.parameters.bodiless
          allowed("RunAsAny", input.review.object.metadata.name)
          msg := "a function without body is true"
        }

        allowed("RunAsAny", _)

        violation[{"msg": msg}] {
          input.parameters.spin
          xs := [x | x := input.parameters.spin[_]]
          n := count([1 | xs[i]; xs[j]; xs[k]; i + j + k < 0])
          msg := sprintf("spun %v", [n])
        }

        violation[{"msg": msg}] {
          input.parameters.inventory
          other := data.inventory.namespace[ns][_]["ConfigMap"][name]
          msg := sprintf("inventory has %v/%v", [ns, name])
        }
"#;

    fn vm_review(spec: Value, inventory: &Inventory) -> Vec<String> {
        let value = json!({
            "apiVersion": "constraints.gatekeeper.sh/v1beta1",
            "kind": "K8sVm",
            "metadata": {"name": "vm"},
            "spec": spec,
        });
        let lib = read("vm.yaml", &format!("{VM_TEMPLATE}---\n{value}")).unwrap();
        let template = lib.templates().next().unwrap();
        assert_eq!(template.interpreted(), None, "{template:?}");
        lib.review_object(&pod("p", "a"), inventory, EnforcementPoint::Gator)
            .unwrap()
            .violations
            .into_iter()
            .map(|v| v.message)
            .collect()
    }

    #[test]
    fn the_vm_reads_undefined_bindings_and_bodiless_functions_as_opa() {
        let none = Inventory::empty();
        let undefined = vm_review(json!({"parameters": {"undefinedBinding": true}}), &none);
        assert!(undefined.is_empty(), "{undefined:?}");
        let bodiless = vm_review(json!({"parameters": {"bodiless": true}}), &none);
        assert_eq!(bodiless, ["a function without body is true"]);
        // The interpreter gives the same answers.
        let interpreted = |spec: Value| {
            let value = json!({
                "apiVersion": "constraints.gatekeeper.sh/v1beta1",
                "kind": "K8sVm",
                "metadata": {"name": "vm"},
                "spec": spec,
            });
            let text = format!("{VM_TEMPLATE}---\n{value}");
            let mut lib = Library::new().with_evaluator(Evaluator::Interpreter);
            lib.add_documents("vm.yaml", &parse_documents("vm.yaml", &text).unwrap())
                .unwrap();
            lib.review_object(&pod("p", "a"), &none, EnforcementPoint::Gator)
                .unwrap()
                .violations
                .len()
        };
        assert_eq!(
            interpreted(json!({"parameters": {"undefinedBinding": true}})),
            0
        );
        assert_eq!(interpreted(json!({"parameters": {"bodiless": true}})), 1);
    }

    #[test]
    fn the_vm_reads_the_inventory() {
        let inventory = Inventory::from_objects(&[json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": "team-a"},
        })])
        .unwrap();
        let found = vm_review(json!({"parameters": {"inventory": true}}), &inventory);
        assert_eq!(found, ["inventory has team-a/settings"]);
        let empty = vm_review(
            json!({"parameters": {"inventory": true}}),
            &Inventory::empty(),
        );
        assert!(empty.is_empty(), "{empty:?}");
    }

    #[test]
    fn the_vm_stops_at_the_time_budget() {
        // A hundred and twenty-five million iterations run into the wall-clock budget.
        let started = std::time::Instant::now();
        let spun = vm_review(
            json!({"parameters": {"spin": vec![0; 500]}}),
            &Inventory::empty(),
        );
        assert_eq!(spun.len(), 1, "{spun:?}");
        assert!(
            spun[0].contains("exceeded its budget of 2000 ms of time"),
            "{spun:?}"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn ranges_and_time_have_a_budget() {
        let review = |spec: Value| {
            library(&constraint("budget", spec))
                .review_object(&pod("p", "a"), &Inventory::empty(), EnforcementPoint::Gator)
                .unwrap()
                .violations
        };
        let small = review(json!({"parameters": {"range": 5}}));
        assert_eq!(small.len(), 1, "{small:?}");
        assert_eq!(small[0].message, "a range of 3");
        // A hundred billion elements would be asked for at once: refused before, as an error.
        let huge = review(json!({"parameters": {"range": 100_000_000_000_i64}}));
        assert_eq!(huge.len(), 1, "{huge:?}");
        assert!(
            huge[0].message.contains("over the budget of 1000000"),
            "{huge:?}"
        );
        // YAML inside values has the alias budget of policy files.
        let small = review(json!({"parameters": {"yaml": "a: 1\nb: [x, y]\n"}}));
        assert_eq!(small[0].message, "yaml has 2 keys", "{small:?}");
        let mut bomb = format!("pad: [{}]\n", vec!["x"; 50_000].join(","));
        bomb.push_str("a0: &a0 [\"lol lol lol lol lol lol lol lol\"]\n");
        for level in 1..=6 {
            let list = vec![format!("*a{}", level - 1); 10].join(", ");
            bomb.push_str(&format!("a{level}: &a{level} [{list}]\n"));
        }
        let refused = review(json!({"parameters": {"yaml": bomb}}));
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert!(
            refused[0].message.contains("through aliases"),
            "{refused:?}"
        );
        // Nine million iterations run into the wall-clock budget instead of holding a CPU.
        let started = std::time::Instant::now();
        let spun = review(json!({"parameters": {"spin": true}}));
        assert_eq!(spun.len(), 1, "{spun:?}");
        assert!(spun[0].message.contains("time"), "{spun:?}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn a_violation_carries_message_details_and_action() {
        let lib = library(&constraint(
            "no-bad",
            json!({"enforcementAction": "warn", "parameters": {"forbidden": ["bad"]}}),
        ));
        let review = gator(&lib, &pod("bad", "a"));
        assert_eq!(
            review.violations,
            [Violation {
                kind: "K8sDemo".into(),
                constraint: "no-bad".into(),
                message: "Pod bad is forbidden".into(),
                details: json!({"op": ""}),
                action: Action::Warn,
                enforcement_action: "warn".into(),
            }]
        );
        let fine = gator(&lib, &pod("good", "a"));
        assert!(fine.violations.is_empty());
        let verdict = review.into_verdict();
        assert_eq!(verdict.action(), Action::Warn);
        assert_eq!(verdict.findings[0].policy, "K8sDemo/no-bad");
        assert_eq!(verdict.findings[0].message, "[no-bad] Pod bad is forbidden");
        assert_eq!(verdict.findings[0].engine, EngineKind::Gatekeeper);
    }

    #[test]
    fn a_request_is_reviewed_with_its_operation_and_user_and_delete_reviews_the_old_object() {
        let lib = library(&format!(
            "{}\n---\n{}",
            constraint("no-bad", json!({"parameters": {"forbidden": ["bad"]}})),
            constraint(
                "who",
                json!({"enforcementAction": "dryrun", "parameters": {"user": true}})
            )
        ));
        let mut request = AdmissionRequest::create(pod("bad", "a")).unwrap();
        request.user_info.username = "alice".into();
        request.user_info.groups = vec!["dev".into()];
        let review = lib.review(&request, &Inventory::empty()).unwrap();
        let messages: Vec<(&str, Action)> = review
            .violations
            .iter()
            .map(|v| (v.message.as_str(), v.action))
            .collect();
        assert_eq!(
            messages,
            [
                ("Pod bad is forbidden", Action::Deny),
                ("user alice groups [\"dev\"]", Action::Audit)
            ]
        );
        assert_eq!(review.violations[0].details, json!({"op": "CREATE"}));

        // The template only runs for CREATE and UPDATE at the webhook; gator ignores operations.
        let delete = AdmissionRequest::for_object(Operation::Delete, pod("bad", "a")).unwrap();
        assert!(lib
            .review(&delete, &Inventory::empty())
            .unwrap()
            .violations
            .is_empty());
        let at_gator = lib
            .review_at(&delete, &Inventory::empty(), EnforcementPoint::Gator)
            .unwrap();
        assert_eq!(at_gator.violations[0].message, "Pod bad is forbidden");
        assert_eq!(at_gator.violations[0].details, json!({"op": "DELETE"}));
    }

    #[test]
    fn the_inventory_is_data_inventory_and_supplies_namespaces() {
        let lib = library(&format!(
            "{}\n---\n{}",
            constraint("inv", json!({"parameters": {"inventoryKinds": true}})),
            constraint(
                "ns",
                json!({"parameters": {"echoNamespace": true},
                       "match": {"namespaceSelector": {"matchLabels": {"env": "prod"}}}})
            )
        ));
        let inventory = Inventory::from_objects(&[
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "a"}}),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a", "labels": {"env": "prod"}}}),
        ])
        .unwrap();
        let request = AdmissionRequest::create(pod("p", "a")).unwrap();
        let review = lib.review(&request, &inventory).unwrap();
        let messages: Vec<&str> = review
            .violations
            .iter()
            .map(|v| v.message.as_str())
            .collect();
        assert_eq!(messages, ["inventory has a/cm", "namespace object: a"]);

        // Without the Namespace, the selector cannot be decided: Gatekeeper counts that as violated.
        let review = lib.review(&request, &Inventory::empty()).unwrap();
        assert_eq!(review.violations.len(), 1);
        assert!(review.violations[0]
            .message
            .contains("namespace selector for namespace-scoped object but missing Namespace"));
        assert!(Inventory::from_objects(&[json!({"kind": "Pod"})]).is_err());
    }

    #[test]
    fn a_runtime_error_is_a_violation_with_the_error() {
        let lib = library(&constraint("crash", json!({"parameters": {"crash": true}})));
        let review = gator(&lib, &pod("p", "a"));
        assert_eq!(review.violations.len(), 1, "{review:?}");
        assert!(review.violations[0].message.contains("twice"), "{review:?}");
    }

    #[test]
    fn scoped_constraints_only_act_where_they_are_scoped() {
        let lib = library(&constraint(
            "scoped",
            json!({"enforcementAction": "scoped",
                   "scopedEnforcementActions": [{"action": "warn", "enforcementPoints": [{"name": "validation.gatekeeper.sh"}]}],
                   "parameters": {"forbidden": ["bad"]}}),
        ));
        let object = pod("bad", "a");
        let at = |point| {
            lib.review_object(&object, &Inventory::empty(), point)
                .unwrap()
                .violations
                .iter()
                .map(|v| v.action)
                .collect::<Vec<_>>()
        };
        assert_eq!(at(EnforcementPoint::Validation), [Action::Warn]);
        assert!(at(EnforcementPoint::Gator).is_empty());
    }

    #[test]
    fn rego_errors_point_into_the_yaml_file() {
        let broken = TEMPLATE.replace(
            "          msg := describe(input.review)\n",
            "          msg := describe(input.review\n",
        );
        let errors = read("broken.yaml", &broken).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        let error = &errors[0];
        assert_eq!(error.file, "broken.yaml");
        // The parser notices at the next line; either way the place is inside the rego block.
        let line = broken.lines().nth(error.line - 1).unwrap();
        assert!(error.line >= 20 && error.line <= 22, "{error}: {line}");
        assert!(error.message.starts_with("template.rego: "), "{error}");

        // An error in a library is placed in the library's lines.
        let broken_lib = TEMPLATE.replace(
            "          describe(review) = msg {",
            "          describe(review) = msg {{",
        );
        let errors = read("lib.yaml", &broken_lib).unwrap_err();
        let lib_starts = broken_lib
            .lines()
            .position(|l| l.contains("package lib.helpers"))
            .unwrap();
        let line = broken_lib.lines().nth(errors[0].line - 1).unwrap();
        assert!(
            errors[0].message.starts_with("lib_0.rego: "),
            "{}",
            errors[0]
        );
        assert!(errors[0].line > lib_starts + 1, "{}", errors[0]);
        assert!(
            line.contains("describe") || line.contains("msg :="),
            "{}: {line}",
            errors[0]
        );
        assert!(errors[0].column > 0, "{}", errors[0]);
    }

    #[test]
    fn templates_and_constraints_are_checked() {
        let no_violation = TEMPLATE.replace("violation[", "deny[");
        let errors = read("t.yaml", &no_violation).unwrap_err();
        assert!(
            errors[0].message.contains("no `violation` rule"),
            "{errors:?}"
        );

        let orphan = constraint("x", json!({}));
        let errors = read("c.yaml", &orphan).unwrap_err();
        assert!(
            errors[0].message.contains("no ConstraintTemplate defines"),
            "{errors:?}"
        );

        let text = format!(
            "{TEMPLATE}---\n{}",
            constraint("x", json!({"enforcementAction": "block"}))
        );
        let errors = read("c.yaml", &text).unwrap_err();
        assert!(
            errors[0].message.contains("enforcementAction"),
            "{errors:?}"
        );
        assert!(errors[0].line > 1, "{errors:?}");
    }

    /// A template with CEL code and Rego that disagree, as Gatekeeper's CEL driver sees it: the
    /// constraint's parameters are `variables.params`, the object `variables.anyObject`.
    const CEL_AND_REGO: &str = r#"apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: k8scel
spec:
  crd:
    spec:
      names:
        kind: K8sCel
  targets:
    - target: admission.k8s.gatekeeper.sh
      code:
      - engine: K8sNativeValidation
        source:
          variables:
          - name: forbidden
            expression: 'has(variables.params.names) ? variables.params.names : []'
          validations:
          - expression: '!(variables.anyObject.metadata.name in variables.forbidden)'
            messageExpression: '"CEL refuses " + variables.anyObject.metadata.name'
      - engine: Rego
        source:
          rego: |
            package k8scel
            violation[{"msg": "Rego refuses"}] { input.review.object.metadata.name == "other" }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sCel
metadata:
  name: c
spec:
  parameters:
    names: [bad]
"#;

    #[test]
    fn a_template_with_cel_code_is_judged_by_it_as_gatekeeper_does() {
        let lib = read("cel.yaml", CEL_AND_REGO).unwrap();
        assert!(lib.templates().next().unwrap().has_cel);
        let messages = |name: &str| -> Vec<String> {
            let review = gator(&lib, &pod(name, "a"));
            assert!(review.not_evaluable.is_empty(), "{review:?}");
            review.violations.into_iter().map(|v| v.message).collect()
        };
        assert_eq!(messages("bad"), ["CEL refuses bad"]);
        // The Rego would refuse this one; Gatekeeper never runs it.
        assert!(messages("other").is_empty());
        assert!(messages("good").is_empty());

        // Only CEL: judged the same way.
        let cel_only = CEL_AND_REGO.replace(
            "      - engine: Rego\n        source:\n          rego: |\n            package k8scel\n            violation[{\"msg\": \"Rego refuses\"}] { input.review.object.metadata.name == \"other\" }\n",
            "",
        );
        assert!(!cel_only.contains("Rego"), "{cel_only}");
        let lib = read("cel.yaml", &cel_only).unwrap();
        let review = gator(&lib, &pod("bad", "a"));
        assert_eq!(review.violations.len(), 1, "{review:?}");
    }

    /// The gatekeeper-library's way of asking for a field (read-only-root-filesystem's Rego): as
    /// OPA evaluates it, `not x.missing == true` holds when the field is missing.
    #[test]
    fn a_negated_equality_on_a_missing_field_holds_as_in_opa() {
        let rego_only = r#"apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: k8sreadonly
spec:
  crd:
    spec:
      names:
        kind: K8sReadOnly
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8sreadonly
        violation[{"msg": msg}] {
          c := input.review.object.spec.containers[_]
          not c.securityContext.readOnlyRootFilesystem == true
          msg := sprintf("not read-only: %v", [c.name])
        }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sReadOnly
metadata:
  name: c
"#;
        let lib = read("ro.yaml", rego_only).unwrap();
        let mut object = pod("p", "a");
        object["spec"] = json!({"containers": [
            {"name": "bare", "securityContext": {}},
            {"name": "no", "securityContext": {"readOnlyRootFilesystem": false}},
            {"name": "yes", "securityContext": {"readOnlyRootFilesystem": true}},
        ]});
        let review = gator(&lib, &object);
        let mut messages: Vec<String> = review.violations.into_iter().map(|v| v.message).collect();
        messages.sort();
        assert_eq!(messages, ["not read-only: bare", "not read-only: no"]);
    }

    #[test]
    fn cel_code_this_engine_cannot_compile_is_not_evaluable_rather_than_wrong() {
        let broken = CEL_AND_REGO.replace(
            "'!(variables.anyObject.metadata.name in variables.forbidden)'",
            "'variables.anyObject.metadata.name.noSuchFunction()'",
        );
        let lib = read("cel.yaml", &broken).unwrap();
        let template = lib.templates().next().unwrap();
        assert!(template.not_evaluable().is_some());
        let review = gator(&lib, &pod("bad", "a"));
        assert!(review.violations.is_empty());
        assert_eq!(review.not_evaluable.len(), 1);
        assert_eq!(review.not_evaluable[0].policy, "K8sCel/c");
        assert!(
            review.not_evaluable[0]
                .reason
                .contains("K8sNativeValidation code"),
            "{:?}",
            review.not_evaluable
        );
    }

    #[test]
    fn the_gator_review_of_a_bare_object_has_no_operation_or_user() {
        let review =
            serde_json::to_value(object_review(&pod("p", "n"), None).unwrap().to_rego()).unwrap();
        assert_eq!(review["operation"], "");
        assert_eq!(review["userInfo"], json!({}));
        assert_eq!(
            review["kind"],
            json!({"group": "", "version": "v1", "kind": "Pod"})
        );
        assert_eq!(review["name"], "p");
        assert_eq!(review["namespace"], "n");
        assert_eq!(review["oldObject"], Value::Null);
        let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "x"}});
        let node_review =
            serde_json::to_value(object_review(&node, None).unwrap().to_rego()).unwrap();
        assert!(node_review.get("namespace").is_none());
        assert_eq!(node_review["namespaceObject"], Value::Null);
        assert!(object_review(&json!({"kind": "Pod"}), None).is_err());
    }

    /// A library is shared between request handlers: it must be usable from many threads at once.
    #[test]
    fn a_library_can_be_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<Library>();
        shared::<Inventory>();
    }

    /// regorus 0.14.1 panics on a `sprintf` width written with a non-ASCII digit (`%²v`); the panic
    /// is caught and becomes the constraint's error, as any runtime error does.
    #[test]
    fn a_panic_inside_the_rego_engine_is_an_error_not_a_crash() {
        let template = TEMPLATE.replace(
            "msg := describe(input.review)",
            "msg := sprintf(\"%\u{b2}v\", [input.review.object.metadata.name])",
        );
        let text = format!(
            "{template}---\n{}",
            constraint("boom", json!({"parameters": {"forbidden": ["bad"]}}))
        );
        let lib = read("boom.yaml", &text).unwrap();
        let review = gator(&lib, &pod("bad", "a"));
        assert_eq!(review.violations.len(), 1, "{review:?}");
        assert!(
            review.violations[0].message.contains("failed internally"),
            "{review:?}"
        );
    }

    /// A template of one's own in Rego v1, with a Constraint matching Pods.
    fn own_template(rego: &str) -> Library {
        own_template_in("v1", rego)
    }

    /// [`own_template`] in Rego `version`.
    fn own_template_in(version: &str, rego: &str) -> Library {
        let indented: String = rego.lines().map(|l| format!("            {l}\n")).collect();
        let text = format!(
            "apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: k8sown
spec:
  crd:
    spec:
      names:
        kind: K8sOwn
  targets:
    - target: admission.k8s.gatekeeper.sh
      code:
      - engine: Rego
        source:
          version: {version}
          rego: |
{indented}---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sOwn
metadata:
  name: own
spec: {{}}
"
        );
        read("own.yaml", &text).unwrap()
    }

    fn annotated_pod(expires: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "p", "namespace": "a", "annotations": {"expires": expires}}})
    }

    #[test]
    fn time_builtins_evaluate_as_in_gatekeeper() {
        // Before: "could not find function time.parse_rfc3339_ns" made every Pod a violation.
        let lib = own_template(
            "package k8sown\n\nviolation contains {\"msg\": \"expired\"} if {\n  \
             expires := time.parse_rfc3339_ns(input.review.object.metadata.annotations.expires)\n  \
             expires < time.parse_rfc3339_ns(\"2026-01-01T00:00:00Z\")\n}\n",
        );
        let review = |expires: &str| gator(&lib, &annotated_pod(expires));
        assert!(review("2030-06-01T00:00:00Z").violations.is_empty());
        let expired = review("2020-06-01T00:00:00+02:00");
        assert_eq!(expired.violations.len(), 1, "{expired:?}");
        assert_eq!(expired.violations[0].message, "expired");
        assert!(expired.not_evaluable.is_empty());
    }

    #[test]
    fn a_template_calling_the_network_is_not_evaluable_and_says_where() {
        let lib = own_template(
            "package k8sown\n\nviolation contains {\"msg\": \"x\"} if {\n  \
             r := http.send({\"method\": \"get\", \"url\": \"https://example.com\"})\n  r.status_code != 200\n}\n",
        );
        let template = lib.templates().next().unwrap();
        assert_eq!(template.not_local.len(), 1);
        // The Rego starts on line 17 of the file; the call is on its fourth line.
        let at = (template.not_local[0].line, template.not_local[0].column);
        assert_eq!(at, (20, 20), "{:?}", template.not_local);
        let review = gator(&lib, &annotated_pod("x"));
        assert!(review.violations.is_empty(), "never guessed: {review:?}");
        assert_eq!(review.not_evaluable.len(), 1);
        assert!(
            review.not_evaluable[0]
                .reason
                .contains("http.send is not evaluable locally"),
            "{review:?}"
        );
    }

    #[test]
    fn an_undefined_function_is_refused_when_the_template_loads() {
        let text = TEMPLATE.replace(
            "          input.parameters.user\n",
            "          strings.no_such(input.parameters.user)\n",
        );
        assert_ne!(text, TEMPLATE);
        let errors = read("demo.yaml", &text).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0]
                .message
                .contains("undefined function strings.no_such"),
            "{errors:?}"
        );
        assert!(errors[0].line > 1 && errors[0].column > 1, "{errors:?}");
    }

    #[test]
    fn builtins_palisade_supplies_evaluate_in_a_template() {
        // net.cidr_intersects is one of the engine's own builtins, registered only where called.
        let lib = own_template(
            "package k8sown\n\nviolation contains {\"msg\": \"inside\"} if {\n  \
             net.cidr_intersects(input.review.object.metadata.annotations.expires, \"10.0.0.0/8\")\n}\n",
        );
        let review = |cidr: &str| gator(&lib, &annotated_pod(cidr)).violations.len();
        assert_eq!(review("10.1.0.0/16"), 1);
        assert_eq!(review("192.168.0.0/16"), 0);
        // A builtin error is undefined, as in OPA: no violation, no error.
        assert_eq!(review("not a cidr"), 0);
    }

    #[test]
    fn a_pattern_past_its_budget_ends_the_evaluation_by_either_name() {
        // Ten Unicode word classes compile past regorus's 100 KiB: `not` must not read the refusal
        // as a failed match, which would turn it into a pass. `re_match` is the engine's own
        // builtin (the interpreter runs it), `regex.match` regorus's (the VM runs it).
        for call in ["re_match", "regex.match"] {
            let lib = own_template_in(
                "v0",
                &format!(
                    "package k8sown\n\nviolation[{{\"msg\": \"no match\"}}] {{\n  \
                     not {call}(\"\\\\w{{10}}\", input.review.object.metadata.name)\n}}\n"
                ),
            );
            let review = gator(&lib, &pod("p", "a"));
            assert_eq!(review.violations.len(), 1, "{call}: {review:?}");
            assert!(
                review.violations[0]
                    .message
                    .contains("a regular expression compiles to more than 102400 bytes"),
                "{call}: {review:?}"
            );
            // A pattern within the budget matches as usual.
            let lib = own_template_in(
                "v0",
                &format!(
                    "package k8sown\n\nviolation[{{\"msg\": \"no match\"}}] {{\n  \
                     not {call}(\"^[a-z]+$\", input.review.object.metadata.name)\n}}\n"
                ),
            );
            assert!(gator(&lib, &pod("p", "a")).violations.is_empty(), "{call}");
            assert_eq!(gator(&lib, &pod("p-1", "a")).violations.len(), 1, "{call}");
        }
    }
}
