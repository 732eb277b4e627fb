//! ConstraintTemplates (`templates.gatekeeper.sh` v1, v1beta1, v1alpha1): the constraint kind they
//! define and their Rego, compiled once with regorus.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use regorus::rvm::vm::VmError;
use regorus::rvm::RegoVM;

use serde_json::Value;

use super::cel::{cel_source, CelProgram};
use super::constraint::find_key;
use super::normalise::{Rewrite, Rewrites};
use super::rego;
use crate::source::{string_items, Document, SourceError};

/// The only target Gatekeeper's admission templates use.
pub const TARGET: &str = "admission.k8s.gatekeeper.sh";

/// The file name regorus sees for a template's entry-point module and for its libraries.
const ENTRY_FILE: &str = "template.rego";

/// A compiled ConstraintTemplate.
#[derive(Clone)]
pub struct Template {
    /// `metadata.name`.
    pub name: String,
    /// `spec.crd.spec.names.kind`: the kind of this template's constraints.
    pub kind: String,
    /// `spec.targets[0].operations`: the admission operations the webhook evaluates this template
    /// for; empty means all.
    pub operations: Vec<String>,
    /// Source rewrites applied before compiling (see [`super::normalise`]), with the module they were
    /// applied to (`template.rego`, `lib_0.rego` …).
    pub rewrites: Vec<(String, Rewrite)>,
    /// The template carries `K8sNativeValidation` (CEL) code. Gatekeeper runs that rather than
    /// the Rego, and so does this engine (see [`super::cel`]).
    pub has_cel: bool,
    /// The compiled CEL code, or why it cannot be evaluated here; `None` without CEL code.
    pub(crate) cel: Option<Result<CelProgram, String>>,
    /// Calls Gatekeeper accepts but Palisade never evaluates locally (`http.send`, a builtin it does
    /// not implement …), each at its place in the document: warnings at save, and the reason the
    /// template is not evaluable.
    pub not_local: Vec<SourceError>,
    pub(crate) program: Result<Program, String>,
}

/// Which of regorus's two evaluators runs a template's Rego.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Evaluator {
    /// regorus's register VM for every template it runs as OPA does (see [`Program`]), the
    /// interpreter for the others.
    #[default]
    Vm,
    /// regorus's interpreter for every template: the reference the VM is held to.
    Interpreter,
}

impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Template")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("operations", &self.operations)
            .field("rewrites", &self.rewrites)
            .field("has_cel", &self.has_cel)
            .field("cel_evaluable", &self.cel.as_ref().map(Result::is_ok))
            .field("evaluable", &self.program.is_ok())
            .field("interpreted", &self.interpreted())
            .finish()
    }
}

/// A template's compiled Rego: a prepared regorus engine and the rule to evaluate,
/// `data.<package>.violation`, and that rule compiled for regorus's register VM when the template
/// runs there.
///
/// The VM (regorus's `rvm` feature) does not build a path string for every call as the interpreter
/// does: a review by the whole gatekeeper-library takes it about half the interpreter's time, a
/// review by one simple template about the same. It runs a template unless one of these holds, and
/// then the interpreter does (the reason is kept, see [`Template::interpreted`]):
///
/// - the template calls one of Palisade's own builtins (`super::builtins`): the VM calls only
///   regorus's, which answer differently from OPA where ours exist;
/// - regorus cannot compile the rule for the VM (`with`, for one);
/// - the Rego has a form the VM reads differently from OPA and that could not be rewritten into one
///   it reads as OPA does (`super::rego::vm_reading` says which forms, and how).
///
/// Evaluating needs a machine (or an interpreter engine) of its own, since both keep their
/// evaluation state in it. Machines and engines that have evaluated are kept in pools and reused:
/// regorus resets their state at the start of every evaluation, and only one whose evaluation
/// ended without error goes back to the pool. Both evaluators stop at the same budgets: the time
/// of [`super::rego::EVALUATION_BUDGET`] and the heap ceiling of [`super::rego::heap_ceiling`].
pub(crate) struct Program {
    pub engine: regorus::Engine,
    pub rule: String,
    /// The rule compiled for the VM, or why the interpreter evaluates this template.
    vm: Result<VmRule, String>,
    /// Engines prepared like `engine`, idle between evaluations.
    idle: Mutex<Vec<regorus::Engine>>,
    /// The engine prepared with the data of the last inventory it was used with (by inventory id),
    /// and its idle engines: adding data to a regorus engine makes it analyse the modules again, so
    /// an engine with the inventory is prepared once and then reused like the plain one.
    with_inventory: Mutex<Option<Prepared>>,
}

/// A rule compiled for regorus's VM, and idle machines loaded with it.
struct VmRule {
    /// The compiled policy the VM reads default rules from.
    policy: regorus::CompiledPolicy,
    code: Arc<regorus::rvm::program::Program>,
    idle: Mutex<Vec<RegoVM>>,
}

impl Clone for VmRule {
    fn clone(&self) -> Self {
        VmRule {
            policy: self.policy.clone(),
            code: Arc::clone(&self.code),
            idle: Mutex::new(Vec::new()),
        }
    }
}

/// An engine prepared with an inventory's data, and idle engines cloned from it.
struct Prepared {
    inventory: u64,
    engine: regorus::Engine,
    idle: Vec<regorus::Engine>,
}

/// At most this many idle engines (and machines) are kept per template (and per inventory): enough
/// for every thread of a scan, few enough that the evaluation tables they hold stay small.
const MAX_IDLE: usize = 32;

impl Clone for Program {
    fn clone(&self) -> Self {
        Program {
            engine: self.engine.clone(),
            rule: self.rule.clone(),
            vm: self.vm.clone(),
            idle: Mutex::new(Vec::new()),
            with_inventory: Mutex::new(None),
        }
    }
}

impl Program {
    /// The rule `rule` of `engine` (prepared with `compile_with_entrypoint`), evaluated by the VM
    /// when `vm` is `Ok`.
    fn new(engine: regorus::Engine, rule: String, vm: Result<VmRule, String>) -> Program {
        Program {
            engine,
            rule,
            vm,
            idle: Mutex::new(Vec::new()),
            with_inventory: Mutex::new(None),
        }
    }

    /// Why the interpreter evaluates this template rather than the VM, if it does.
    pub(crate) fn interpreted(&self) -> Option<&str> {
        self.vm.as_ref().err().map(String::as_str)
    }

    /// Evaluate the rule with `input`, and with `data` (`{"inventory": …}`, identified by `id`)
    /// when given.
    pub(crate) fn evaluate(
        &self,
        data: Option<(u64, &regorus::Value)>,
        input: regorus::Value,
    ) -> Result<regorus::Value, String> {
        if let Ok(vm) = &self.vm {
            return vm.evaluate(&self.rule, data.map(|(_, data)| data), input);
        }
        let mut engine = self.take(data)?;
        engine.set_input(input);
        let rule = self.rule.clone();
        let result = guarded(|| engine.eval_rule(rule));
        if result.is_ok() {
            // The pooled engine should not keep the review alive.
            engine.set_input(regorus::Value::Undefined);
            self.give_back(data.map(|(id, _)| id), engine);
        }
        result
    }

    /// An engine ready to evaluate: an idle one, or a clone of the prepared one.
    fn take(&self, data: Option<(u64, &regorus::Value)>) -> Result<regorus::Engine, String> {
        let Some((id, data)) = data else {
            let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
            return Ok(idle.unwrap_or_else(|| self.engine.clone()));
        };
        let mut slot = self.with_inventory.lock().ok();
        if let Some(Some(prepared)) = slot.as_deref_mut() {
            if prepared.inventory == id {
                return Ok(prepared
                    .idle
                    .pop()
                    .unwrap_or_else(|| prepared.engine.clone()));
            }
        }
        let mut engine = self.engine.clone();
        let entry: regorus::Rc<str> = self.rule.as_str().into();
        guarded(|| engine.add_data(data.clone()))?;
        guarded(|| engine.compile_with_entrypoint(&entry))?;
        if let Some(slot) = slot.as_deref_mut() {
            *slot = Some(Prepared {
                inventory: id,
                engine: engine.clone(),
                idle: Vec::new(),
            });
        }
        Ok(engine)
    }

    fn give_back(&self, inventory: Option<u64>, engine: regorus::Engine) {
        let Some(id) = inventory else {
            if let Ok(mut idle) = self.idle.lock() {
                if idle.len() < MAX_IDLE {
                    idle.push(engine);
                }
            }
            return;
        };
        if let Ok(mut slot) = self.with_inventory.lock() {
            if let Some(prepared) = slot.as_mut().filter(|p| p.inventory == id) {
                if prepared.idle.len() < MAX_IDLE {
                    prepared.idle.push(engine);
                }
            }
        }
    }
}

impl VmRule {
    /// `rule` of the template made of `modules` (Rego v1 when `v1`, with the `enabled` source
    /// rewrites) compiled for the VM, or why the interpreter evaluates it. `called` are the
    /// builtins the modules call. The VM gets an engine of its own, whose modules are also rewritten
    /// where the VM would read them differently from OPA (`rego::vm_reading`): the interpreter keeps
    /// the modules as they were.
    fn compile(
        v1: bool,
        modules: &[(String, &str)],
        enabled: Rewrites,
        rule: &str,
        called: &std::collections::BTreeSet<String>,
    ) -> Result<VmRule, String> {
        if let Some(own) = called
            .iter()
            .find(|name| super::builtins::arity(name).is_some())
        {
            return Err(format!(
                "it calls {own}, which Palisade evaluates as OPA does and the VM would not"
            ));
        }
        let mut engine = rego::template_engine(v1);
        for (module, text) in modules {
            let added = rego::add_module_with(&mut engine, module, text, enabled, Evaluator::Vm)?;
            if let Some(why) = added.vm_divergence {
                return Err(format!(
                    "the VM would read {module} differently from OPA: {why}"
                ));
            }
        }
        let entry: regorus::Rc<str> = rule.into();
        let policy = guarded(|| engine.compile_with_entrypoint(&entry))?;
        let code = catch_unwind(AssertUnwindSafe(|| {
            regorus::languages::rego::compiler::Compiler::compile_from_policy(&policy, &[rule])
        }))
        .map_err(|_| "regorus failed internally compiling it for the VM".to_owned())?
        .map_err(|error| {
            format!(
                "regorus cannot compile it for the VM: {}",
                error.to_string().trim()
            )
        })?;
        Ok(VmRule {
            policy,
            code,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// A machine loaded with the rule, its budgets set.
    fn machine(&self) -> RegoVM {
        let mut vm = RegoVM::new_with_policy(self.policy.clone());
        vm.load_program(Arc::clone(&self.code));
        vm.set_execution_timer_config(Some(rego::EVALUATION_BUDGET));
        // The time budget bounds an evaluation; regorus's default count of instructions would stop
        // an ordinary template on a large object.
        vm.set_max_instructions(usize::MAX);
        vm.set_strict_builtin_errors(false);
        vm
    }

    fn evaluate(
        &self,
        rule: &str,
        data: Option<&regorus::Value>,
        input: regorus::Value,
    ) -> Result<regorus::Value, String> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let mut vm = idle.unwrap_or_else(|| self.machine());
        let data = data.cloned().unwrap_or_else(regorus::Value::new_object);
        vm.set_data(data).map_err(|e| vm_error(&e))?;
        vm.set_input(input);
        let result = match catch_unwind(AssertUnwindSafe(|| vm.execute_entry_point_by_name(rule))) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(vm_error(&error)),
            Err(_) => Err("the Rego engine failed internally on this policy or input".to_owned()),
        };
        if result.is_ok() {
            // The pooled machine should not keep the review or the inventory alive.
            vm.set_input(regorus::Value::Undefined);
            if vm.set_data(regorus::Value::new_object()).is_ok() {
                if let Ok(mut idle) = self.idle.lock() {
                    if idle.len() < MAX_IDLE {
                        idle.push(vm);
                    }
                }
            }
        }
        result
    }
}

/// The message of a VM error: a budget in the words the interpreter's errors have.
fn vm_error(error: &VmError) -> String {
    let limit = match *error {
        VmError::TimeLimitExceeded { elapsed, limit, .. } => {
            regorus::LimitError::TimeLimitExceeded { elapsed, limit }
        }
        VmError::MemoryLimitExceeded { usage, limit, .. } => {
            regorus::LimitError::MemoryLimitExceeded { usage, limit }
        }
        VmError::RegexSizeLimitExceeded { limit, .. } => {
            regorus::LimitError::RegexSizeLimitExceeded { limit }
        }
        _ => return error.to_string(),
    };
    rego::over_budget(&limit)
}

/// Where a template keeps its Rego.
struct RegoSource<'a> {
    rego: &'a str,
    libs: Vec<&'a str>,
    v1: bool,
}

impl Template {
    /// Whether `value` looks like a ConstraintTemplate.
    pub fn is_template(value: &Value) -> bool {
        value.get("kind").and_then(Value::as_str) == Some("ConstraintTemplate")
            && value
                .get("apiVersion")
                .and_then(Value::as_str)
                .is_some_and(|v| v.starts_with("templates.gatekeeper.sh/"))
    }

    /// Read and compile a ConstraintTemplate document. Errors in the document's shape or in its Rego
    /// are returned with their place in `file`. A template without Rego (only CEL) is returned as not
    /// evaluable, not as an error: Gatekeeper accepts it.
    pub fn from_document(
        file: &str,
        document: &Document,
        enabled: Rewrites,
    ) -> Result<Template, Vec<SourceError>> {
        Template::from_document_with(file, document, enabled, Evaluator::Vm)
    }

    /// [`Template::from_document`], with the Rego evaluated by `evaluator`.
    pub fn from_document_with(
        file: &str,
        document: &Document,
        enabled: Rewrites,
        evaluator: Evaluator,
    ) -> Result<Template, Vec<SourceError>> {
        let value = &document.value;
        let error = |field: &str, message: &str| {
            let (line, column) = find_key(document, field);
            vec![SourceError::new(file, line, column, message)]
        };
        let name = value
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let kind = value
            .pointer("/spec/crd/spec/names/kind")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| error("names", "the template has no spec.crd.spec.names.kind"))?
            .to_owned();
        if !name.is_empty() && name != kind.to_lowercase() {
            return Err(error(
                "name",
                &format!(
                    "metadata.name {name:?} must be the lower-cased kind {:?}",
                    kind.to_lowercase()
                ),
            ));
        }
        let targets = value
            .pointer("/spec/targets")
            .and_then(Value::as_array)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| error("targets", "the template has no spec.targets"))?;
        if targets.len() != 1 {
            return Err(error("targets", "a template must have exactly one target"));
        }
        let target = &targets[0];
        let target_name = target.get("target").and_then(Value::as_str).unwrap_or("");
        if target_name != TARGET {
            return Err(error(
                "target",
                &format!("target {target_name:?} is not {TARGET:?}"),
            ));
        }
        let operations = string_items(target.get("operations"));
        let code = target
            .get("code")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let cel = cel_source(&code).map(|source| {
            CelProgram::compile(file, document, &kind, source).map_err(|errors| {
                errors
                    .into_iter()
                    .map(|e| e.message)
                    .collect::<Vec<_>>()
                    .join("; ")
            })
        });
        let has_cel = cel.is_some();

        let source = rego_source(target).map_err(|message| error("targets", &message))?;
        let mut not_local = Vec::new();
        let (program, rewrites) = match source {
            Some(source) => {
                let mut rewrites = Vec::new();
                let (program, calls) =
                    compile(file, document, &source, enabled, evaluator, &mut rewrites)?;
                not_local = calls;
                // Said, never guessed: a template that calls what Palisade does not run is not
                // evaluated at all, and says which call and where.
                let program = match not_local.first() {
                    None => Ok(program),
                    Some(call) => Err(format!(
                        "not evaluable locally: line {}, column {}: {}",
                        call.line, call.column, call.message
                    )),
                };
                (program, rewrites)
            }
            None => {
                let reason = if has_cel {
                    "the template has only K8sNativeValidation (CEL) code"
                } else {
                    "the template has no Rego code"
                };
                (Err(reason.to_owned()), Vec::new())
            }
        };
        Ok(Template {
            name,
            kind,
            operations,
            rewrites,
            has_cel,
            cel,
            not_local,
            program,
        })
    }

    /// Why this template cannot be evaluated, if it cannot: its CEL code when it has some (that
    /// is what Gatekeeper runs), else its Rego.
    pub fn not_evaluable(&self) -> Option<&str> {
        match &self.cel {
            Some(cel) => cel.as_ref().err().map(String::as_str),
            None => self.program.as_ref().err().map(String::as_str),
        }
    }

    /// Why regorus's interpreter evaluates this template's Rego rather than its VM (see
    /// [`Evaluator`]); `None` when the VM does, or when the Rego is not evaluated at all.
    pub fn interpreted(&self) -> Option<&str> {
        self.program.as_ref().ok().and_then(Program::interpreted)
    }

    /// Whether the webhook evaluates this template for `operation` (`spec.targets[0].operations`).
    pub fn applies_to_operation(&self, operation: &str) -> bool {
        self.operations.is_empty()
            || self
                .operations
                .iter()
                .any(|op| op == "*" || op == operation)
    }
}

fn libs_of(value: Option<&Value>) -> Result<Vec<&str>, String> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(libs)) => libs
            .iter()
            .map(|lib| {
                lib.as_str()
                    .ok_or_else(|| "libs must be strings".to_owned())
            })
            .collect(),
        Some(_) => Err("libs must be a list of strings".to_owned()),
    }
}

/// The Rego of a target: the legacy `rego` + `libs`, or the `code[]` entry with `engine: Rego`.
fn rego_source(target: &Value) -> Result<Option<RegoSource<'_>>, String> {
    if let Some(rego) = target
        .get("rego")
        .and_then(Value::as_str)
        .filter(|r| !r.trim().is_empty())
    {
        return Ok(Some(RegoSource {
            rego,
            libs: libs_of(target.get("libs"))?,
            v1: false,
        }));
    }
    let Some(code) = target.get("code").and_then(Value::as_array) else {
        return Ok(None);
    };
    for entry in code {
        if entry.get("engine").and_then(Value::as_str) != Some("Rego") {
            continue;
        }
        let source = entry.get("source").unwrap_or(&Value::Null);
        let rego = source
            .get("rego")
            .and_then(Value::as_str)
            .ok_or("the Rego code has no source.rego")?;
        return Ok(Some(RegoSource {
            rego,
            libs: libs_of(source.get("libs"))?,
            v1: source.get("version").and_then(Value::as_str) == Some("v1"),
        }));
    }
    Ok(None)
}

/// Run `f`, turning a panic inside regorus into an error: no template or input may bring the engine
/// down.
pub(crate) fn guarded<T>(f: impl FnOnce() -> anyhow::Result<T>) -> Result<T, String> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(match error.chain().find_map(|e| e.downcast_ref()) {
            Some(limit) => super::rego::over_budget(limit),
            None => error.to_string(),
        }),
        Err(_) => Err("the Rego engine failed internally on this policy or input".to_owned()),
    }
}

fn compile(
    file: &str,
    document: &Document,
    source: &RegoSource<'_>,
    enabled: Rewrites,
    evaluator: Evaluator,
    rewrites: &mut Vec<(String, Rewrite)>,
) -> Result<(Program, Vec<SourceError>), Vec<SourceError>> {
    let mut modules = vec![(ENTRY_FILE.to_owned(), source.rego)];
    for (index, lib) in source.libs.iter().enumerate() {
        modules.push((format!("lib_{index}.rego"), lib));
    }
    let place = |message: String| -> Vec<SourceError> {
        // regorus writes the place as `--> <file>:<line>:<col>`.
        for (module, text) in &modules {
            let marker = format!("--> {module}:");
            if let Some(at) = message.find(&marker) {
                let rest = &message[at + marker.len()..];
                let mut numbers = rest
                    .split(|c: char| !c.is_ascii_digit())
                    .filter(|s| !s.is_empty())
                    .map(|n| n.parse::<usize>().unwrap_or(0));
                let line = numbers.next().unwrap_or(0);
                let column = numbers.next().unwrap_or(0);
                let offset = byte_offset(text, line, column);
                let summary = message
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("")
                    .trim()
                    .trim_start_matches("error: ")
                    .to_owned();
                return vec![document.error_at(file, text, offset, format!("{module}: {summary}"))];
            }
        }
        let (line, column) = find_key(document, "rego");
        vec![SourceError::new(file, line, column, message.trim())]
    };

    let mut engine = rego::template_engine(source.v1);
    let mut package = String::new();
    for (index, (module, text)) in modules.iter().enumerate() {
        let added =
            rego::add_module_with(&mut engine, module, text, enabled, Evaluator::Interpreter)
                .map_err(&place)?;
        rewrites.extend(added.rewrites.into_iter().map(|r| (module.clone(), r)));
        if index == 0 {
            package = added.package;
        }
    }
    // What Gatekeeper refuses when the template is created is refused here, at its place.
    let checked = guarded(|| Ok(rego::check(&mut engine))).map_err(&place)?;
    if !checked.errors.is_empty() {
        return Err(checked
            .errors
            .iter()
            .map(|f| finding_error(file, document, &modules, f))
            .collect());
    }
    rego::register_called(&mut engine, &checked);
    let not_local: Vec<SourceError> = checked
        .not_local
        .iter()
        .map(|f| finding_error(file, document, &modules, f))
        .collect();
    let declares_violation =
        guarded(|| engine.has_declared_rule_rooted_at(ENTRY_FILE, "violation")).unwrap_or(false);
    if !declares_violation {
        let (line, column) = find_key(document, "rego");
        return Err(vec![SourceError::new(
            file,
            line,
            column,
            "the template's Rego has no `violation` rule",
        )]);
    }
    let rule = format!("{package}.violation");
    let entry: regorus::Rc<str> = rule.as_str().into();
    guarded(|| engine.compile_with_entrypoint(&entry)).map_err(&place)?;
    let vm = match evaluator {
        Evaluator::Interpreter => Err("the interpreter was chosen".to_owned()),
        // Such a template is not evaluated at all.
        Evaluator::Vm if !not_local.is_empty() => Err("it is not evaluable locally".to_owned()),
        Evaluator::Vm => VmRule::compile(source.v1, &modules, enabled, &rule, &checked.called),
    };
    Ok((Program::new(engine, rule, vm), not_local))
}

/// A finding of [`rego::check`] at its place in the template document.
fn finding_error(
    file: &str,
    document: &Document,
    modules: &[(String, &str)],
    finding: &rego::Finding,
) -> SourceError {
    match modules.iter().find(|(name, _)| *name == finding.module) {
        Some((name, text)) => {
            let offset = byte_offset(text, finding.line, finding.column);
            document.error_at(file, text, offset, format!("{name}: {}", finding.message))
        }
        None => {
            let (line, column) = find_key(document, "rego");
            SourceError::new(file, line, column, finding.message.clone())
        }
    }
}

/// The byte offset of 1-based `line`, `column` in `text` (clamped to the text).
fn byte_offset(text: &str, line: usize, column: usize) -> usize {
    let mut offset = 0;
    for (index, part) in text.split('\n').enumerate() {
        if index + 1 == line {
            return offset + column.saturating_sub(1).min(part.len());
        }
        offset += part.len() + 1;
    }
    text.len()
}
