//! CEL as the Kubernetes apiserver evaluates it, on the `cel` crate.
//!
//! - One environment for every expression: [`environment`] (what the parser knows: macros, optional
//!   syntax, and the Kubernetes function libraries of [`k8s`]) and [`root_context`].
//! - Compile once, evaluate many: [`compile`] keeps every program it compiled, keyed by its source,
//!   and hands out shared [`Program`]s.
//! - Objects are `serde_json::Value`s converted by [`value::from_json`] (strings borrowed, not
//!   copied); the variables an expression sees are given by an [`Activation`].
//! - Nothing here panics on any input: compile errors are [`CompileError`]s with the line and
//!   column inside the expression, evaluation errors are [`EvalError`]s worded as cel-go words them
//!   where we know the wording, and a panic inside the interpreter is caught and reported as an error.

pub mod authz;
pub mod cache;
pub mod check;
pub mod cost;
pub mod k8s;
pub mod projection;
pub mod value;

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, LazyLock};

use cel::common::ast::{EntryExpr, Expr, LiteralValue, SourceInfo};
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use cel::parser::Expression;
use cel::{Context, Env, ExecutionError};

pub use value::{
    from_json, from_json_keeping_nulls, from_optional_json, from_optional_json_with, resolve_path,
    to_json, to_static, K8sNull,
};

/// The parse-time environment: the standard library's macros and optional syntax (`a.?b`,
/// `orValue`), which Kubernetes enables too.
pub fn environment() -> Env {
    // The declarations are fixed at build time and a unit test (`the_kubernetes_environment_builds`)
    // proves they are consistent, so the fallback to the bare standard library is never taken.
    k8s::environment()
        .and_then(|mut env| cost::register(&mut env).map(|()| env))
        .unwrap_or_else(|_| Env::stdlib())
}

/// The root context every evaluation runs in a child scope of: the standard functions, and the
/// Kubernetes libraries.
pub fn root_context() -> Context<'static, 'static> {
    // The Kubernetes libraries are declared on the environment (see [`k8s::register`]); the
    // `authorizer` library and the cached `matches` are functions of the context.
    let mut ctx = Context::with_env(Arc::clone(&ENV));
    authz::register(&mut ctx);
    let _ = ctx.add_function(CACHED_MATCHES, cached_matches);
    let _ = ctx.add_function(PRESENCE, presence);
    let _ = ctx.add_function(OR_VALUE_LENIENT, or_value_lenient);
    let _ = ctx.add_function(PARSE_SERVICE_ACCOUNT, parse_service_account);
    let _ = ctx.add_function(USER_PARSE_SERVICE_ACCOUNT, parse_service_account);
    ctx
}

static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| Arc::new(environment()));
static ROOT: LazyLock<Context<'static, 'static>> = LazyLock::new(root_context);

/// Programs compiled so far, by source, within 64 MiB (a program is charged 32 bytes per byte of
/// source, about what its syntax tree holds, plus 1 KiB).
static CACHE: LazyLock<cache::Bounded<Arc<Program>>> =
    LazyLock::new(|| cache::Bounded::new(64 << 20, |source| source.len() * 32 + 1024));

/// A compiled expression.
#[derive(Debug)]
pub struct Program {
    source: String,
    expr: Expression,
    references: References,
    /// What the expression does with `object` and `oldObject`.
    object_summary: projection::Summary,
    /// How deeply the expression nests: the interpreter recurses that deep.
    depth: usize,
    /// Where each node of `expr` is in the source, for type errors.
    source_info: SourceInfo,
}

/// What an expression refers to among the variables that need care: composited `variables` and
/// the `authorizer`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct References {
    /// The names `variables.<name>` (or `variables['<name>']`) used, in order of first use.
    pub variables: Vec<String>,
    /// `variables` is used otherwise (passed around whole), so any variable may be needed.
    pub all_variables: bool,
    /// `authorizer` is used.
    pub authorizer: bool,
    /// `params` is used.
    pub params: bool,
    /// `namespaceObject` is used (what it holds depends on the phase of evaluation).
    pub namespace_object: bool,
}

impl References {
    /// Does the value depend only on the request (`object`, `oldObject`, `request`,
    /// `namespaceObject`), so that every policy evaluating the same expression on the same request
    /// gets the same value?
    pub fn request_only(&self) -> bool {
        self.variables.is_empty() && !self.all_variables && !self.authorizer && !self.params
    }
}

impl Program {
    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn references(&self) -> &References {
        &self.references
    }

    /// What the expression does with `object` and `oldObject` (see [`projection`]).
    pub fn object_summary(&self) -> &projection::Summary {
        &self.object_summary
    }

    /// Type-check the expression against what it may refer to (see [`check`]): its type, or the
    /// first type error, placed in the source.
    pub fn type_check(
        &self,
        declarations: &check::Declarations,
    ) -> Result<check::Ty, CompileError> {
        check::type_of(&self.expr, declarations).map_err(|error| {
            let offset = self
                .source_info
                .offset_for(error.id)
                .map_or(0, |(start, _)| start as usize)
                .min(self.source.len());
            let (line, column) = line_column(&self.source, offset);
            CompileError {
                message: error.message,
                line,
                column,
                offset,
            }
        })
    }
}

/// The 1-based line and column of byte `offset` in `source`.
fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let before = source.get(..offset).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// A program that did not compile, with the place inside the expression (1-based; `0` when unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    pub message: String,
    pub line: usize,
    pub column: usize,
    /// The byte offset in the expression of (`line`, `column`).
    pub offset: usize,
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The apiserver's wording: "compilation failed: ERROR: <input>:1:7: message".
        write!(
            f,
            "ERROR: <input>:{}:{}: {}",
            self.line, self.column, self.message
        )
    }
}

/// A failed evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalError {
    pub message: String,
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<ExecutionError> for EvalError {
    fn from(error: ExecutionError) -> Self {
        EvalError {
            message: go_wording(&error),
        }
    }
}

/// cel-go's words for the runtime errors the apiserver reports most (`no such key: x`), so messages
/// built from them match; the rest keep the crate's wording.
fn go_wording(error: &ExecutionError) -> String {
    match error {
        ExecutionError::NoSuchKey(key) => format!("no such key: {key}"),
        ExecutionError::UndeclaredReference(name) => {
            format!("undeclared reference to '{name}' (in container '')")
        }
        ExecutionError::DivisionByZero(_) => "division by zero".to_owned(),
        ExecutionError::RemainderByZero(_) => "modulus by zero".to_owned(),
        ExecutionError::Overflow(..) => "integer overflow".to_owned(),
        ExecutionError::NoSuchOverload(_) => "no such overload".to_owned(),
        ExecutionError::FunctionError { function, message } if function == RAW_ERROR => {
            message.clone()
        }
        other => other.to_string(),
    }
}

/// The function name of an [`ExecutionError::FunctionError`] whose message is to be reported as it
/// is (a composited variable's error, raised where the variable is used).
pub const RAW_ERROR: &str = "\u{0}palisade";

/// Compile `source`, or take it from the cache.
pub fn compile(source: &str) -> Result<Arc<Program>, CompileError> {
    if let Some(program) = CACHE.get(source) {
        return Ok(program);
    }
    let program = Arc::new(compile_uncached(source)?);
    CACHE.insert(source, Arc::clone(&program));
    Ok(program)
}

/// The deepest expression accepted. cel-go's parser stops at 250 levels; the `cel` crate's
/// interpreter recurses once per level with large stack frames, so we stop earlier.
pub const MAX_DEPTH: usize = 200;

/// Programs nested deeper than this are evaluated on a thread of their own with a large stack
/// (unoptimised builds use far more stack per level).
const INLINE_DEPTH: usize = if cfg!(debug_assertions) { 12 } else { 64 };
const LARGE_STACK: usize = 256 << 20;

/// Run `work` on a thread with a large stack; `None` if no thread could be started (as in a
/// browser) or `work` panicked.
pub(crate) fn on_large_stack<R: Send>(work: impl FnOnce() -> R + Send) -> Option<R> {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .stack_size(LARGE_STACK)
            .spawn_scoped(scope, work)
            .ok()?
            .join()
            .ok()
    })
}

/// How deeply `expr` nests, counted without recursion.
fn depth_of<'e>(expr: &'e Expression) -> usize {
    let mut deepest = 0;
    let mut stack: Vec<(&'e Expression, usize)> = vec![(expr, 1)];
    while let Some((expr, depth)) = stack.pop() {
        deepest = deepest.max(depth);
        let mut push = |child: &'e Expression| stack.push((child, depth + 1));
        match &expr.expr {
            Expr::Call(call) => {
                if let Some(target) = &call.target {
                    push(target);
                }
                call.args.iter().for_each(&mut push);
            }
            Expr::Comprehension(c) => {
                for child in [
                    &c.iter_range,
                    &c.accu_init,
                    &c.loop_cond,
                    &c.loop_step,
                    &c.result,
                ] {
                    push(child);
                }
            }
            Expr::Select(select) => push(&select.operand),
            Expr::List(list) => list.elements.iter().for_each(&mut push),
            Expr::Map(map) => {
                for entry in &map.entries {
                    if let EntryExpr::MapEntry(entry) = &entry.expr {
                        push(&entry.key);
                        push(&entry.value);
                    }
                }
            }
            Expr::Struct(structure) => {
                for entry in &structure.entries {
                    if let EntryExpr::StructField(field) = &entry.expr {
                        push(&field.value);
                    }
                }
            }
            Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
        }
    }
    deepest
}

/// Parsing recurses once per level too: it runs on a large stack (compiling is done once per
/// expression, so the thread costs little).
fn compile_uncached(source: &str) -> Result<Program, CompileError> {
    on_large_stack(|| compile_here(source)).unwrap_or_else(|| compile_here(source))
}

fn compile_here(source: &str) -> Result<Program, CompileError> {
    let parsed = catch_unwind(AssertUnwindSafe(|| {
        ENV.parser().parse_with_source_info(source)
    }));
    let (expr, source_info) = match parsed {
        Ok(Ok(parsed)) => parsed,
        Ok(Err(errors)) => {
            let first = errors.errors.first();
            let (line, column) = first
                .map(|e| (e.pos.0.max(0) as usize, e.pos.1.max(0) as usize))
                .unwrap_or((0, 0));
            let message = first
                .map(|e| e.msg.clone())
                .unwrap_or_else(|| "syntax error".to_owned());
            return Err(CompileError {
                message,
                line,
                column,
                offset: offset_of(source, line, column),
            });
        }
        Err(_) => {
            return Err(CompileError {
                message: "the CEL parser failed on this expression".to_owned(),
                line: 0,
                column: 0,
                offset: 0,
            })
        }
    };
    let depth = depth_of(&expr);
    if depth > MAX_DEPTH {
        return Err(CompileError {
            message: format!("expression nested more than {MAX_DEPTH} levels deep"),
            line: 1,
            column: 1,
            offset: 0,
        });
    }
    let mut expr = expr;
    if let Err((message, id)) = precompile_regexes(&mut expr) {
        let offset = source_info
            .offset_for(id)
            .map_or(0, |(start, _)| start as usize)
            .min(source.len());
        let (line, column) = line_column(source, offset);
        return Err(CompileError {
            message,
            line,
            column,
            offset,
        });
    }
    // Read before presence tests and charging rewrite the field selections.
    let object_summary = projection::summarise(&expr);
    rewrite_presence(&mut expr);
    cost::instrument(&mut expr);
    let mut references = References::default();
    collect_references(&expr, &mut references);
    Ok(Program {
        source: source.to_owned(),
        // Charging wraps each comprehension's range in one more call.
        depth: depth_of(&expr),
        expr,
        references,
        object_summary,
        source_info,
    })
}

/// The function `matches` calls are rewritten to, when their pattern is a literal: it takes the
/// compiled regex from the cache instead of compiling the pattern at every call.
const CACHED_MATCHES: &str = "palisade_matches";

/// A pattern compiled once, from the regex cache the Kubernetes regex library shares.
fn cached_regex(pattern: &str) -> Result<Arc<regex::Regex>, String> {
    crate::patterns::CEL
        .compiled(pattern)
        .map_err(|e| e.to_string())
}

/// Point every `matches` call with a literal pattern at the cached-regex function, compiling the
/// pattern now: an invalid literal pattern is a compile error, as in cel-go.
fn precompile_regexes(expr: &mut Expression) -> Result<(), (String, u64)> {
    let id = expr.id;
    match &mut expr.expr {
        Expr::Call(call) => {
            let pattern = match (call.func_name.as_str(), &call.target, call.args.as_slice()) {
                ("matches", Some(_), [pattern]) | ("matches", None, [_, pattern]) => {
                    match &pattern.expr {
                        Expr::Literal(LiteralValue::String(p)) => Some(p.inner().to_owned()),
                        _ => None,
                    }
                }
                _ => None,
            };
            if let Some(pattern) = pattern {
                cached_regex(&pattern)
                    .map_err(|e| (format!("invalid matches argument: {pattern}: {e}"), id))?;
                if call.target.is_none() {
                    // `matches(s, p)` becomes `s.palisade_matches(p)`.
                    let subject = call.args.remove(0);
                    call.target = Some(Box::new(subject));
                }
                call.func_name = CACHED_MATCHES.to_owned();
            }
            if let Some(target) = &mut call.target {
                precompile_regexes(target)?;
            }
            for arg in &mut call.args {
                precompile_regexes(arg)?;
            }
        }
        Expr::Comprehension(c) => {
            precompile_regexes(&mut c.iter_range)?;
            precompile_regexes(&mut c.accu_init)?;
            precompile_regexes(&mut c.loop_cond)?;
            precompile_regexes(&mut c.loop_step)?;
            precompile_regexes(&mut c.result)?;
        }
        Expr::Select(select) => precompile_regexes(&mut select.operand)?,
        Expr::List(list) => {
            for element in &mut list.elements {
                precompile_regexes(element)?;
            }
        }
        Expr::Map(map) => {
            for entry in &mut map.entries {
                if let EntryExpr::MapEntry(entry) = &mut entry.expr {
                    precompile_regexes(&mut entry.key)?;
                    precompile_regexes(&mut entry.value)?;
                }
            }
        }
        Expr::Struct(structure) => {
            for entry in &mut structure.entries {
                if let EntryExpr::StructField(field) = &mut entry.expr {
                    precompile_regexes(&mut field.value)?;
                }
            }
        }
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
    }
    Ok(())
}

/// `s.palisade_matches(pattern)`: `s.matches(pattern)` with the regex compiled once.
fn cached_matches(ftx: &cel::FunctionContext) -> Result<bool, ExecutionError> {
    let subject = ftx
        .this
        .as_ref()
        .and_then(|t| t.downcast_ref::<cel::common::types::CelString>())
        .ok_or_else(|| ExecutionError::no_such_overload("matches", vec![]))?;
    let pattern = ftx
        .args
        .first()
        .and_then(|p| p.downcast_ref::<cel::common::types::CelString>())
        .ok_or_else(|| ExecutionError::no_such_overload("matches", vec![]))?;
    let regex = cached_regex(pattern.inner()).map_err(|e| ftx.error(e))?;
    Ok(regex.is_match(subject.inner()))
}

/// The function `has(e.f)` is rewritten to (`e.palisade_has('f')`): a presence test as the
/// apiserver's cel-go answers it, built without `EnableErrorOnBadPresenceTest` — false on a string,
/// number or bool, where the `cel` crate (following the cel-spec conformance mode) raises an error.
pub(crate) const PRESENCE: &str = "palisade_has";

/// `e.palisade_has('f')`.
fn presence(ftx: &cel::FunctionContext) -> Result<bool, ExecutionError> {
    let value = ftx
        .this
        .as_ref()
        .ok_or_else(|| ExecutionError::no_such_overload("has", vec![]))?;
    let field = ftx
        .args
        .first()
        .and_then(|f| f.downcast_ref::<cel::common::types::CelString>())
        .ok_or_else(|| ExecutionError::no_such_overload("has", vec![]))?;
    let key = cel::common::types::CelString::from(field.inner().to_owned());
    match value.as_indexer() {
        // Not a container: cel-go's presence test is false.
        None => Ok(false),
        Some(indexer) => match indexer.get(&key) {
            Ok(_) => Ok(true),
            Err(ExecutionError::NoSuchKey(_)) => Ok(false),
            Err(error) => Err(error),
        },
    }
}

/// `x.orValue(d)` as cel-go answered it before v0.28, which Kyverno's ValidatingPolicies keep (its
/// `__orValueCompat__`): the value of an optional `x` (else `d`), and a non-optional `x` itself
/// where the current cel-go (and the `cel` crate) raise "no such overload". Only the Kyverno
/// module writes calls to it (`x.palisade_or_value(d)`); errors in `x` propagate.
pub const OR_VALUE_LENIENT: &str = "palisade_or_value";

fn or_value_lenient(ftx: &cel::FunctionContext) -> Result<cel::Value, ExecutionError> {
    let this = ftx
        .this
        .as_ref()
        .ok_or_else(|| ExecutionError::no_such_overload("orValue", vec![]))?;
    let default = ftx
        .args
        .first()
        .ok_or_else(|| ExecutionError::no_such_overload("orValue", vec![]))?;
    let chosen: &dyn Val = match this.downcast_ref::<cel::common::types::CelOptional>() {
        Some(optional) => optional.option().unwrap_or(default.as_ref()),
        None => this.as_ref(),
    };
    cel::Value::try_from(chosen)
}

/// Kyverno's `parseServiceAccount(username)` (also `user.parseServiceAccount`): for
/// `system:serviceaccount:<namespace>:<name>`, `{Namespace, Name}` (the fields of Kyverno's Go type,
/// as its CEL reads them); for any other user, both empty. Only the Kyverno module writes calls to
/// it, in place of Kyverno's name.
pub const PARSE_SERVICE_ACCOUNT: &str = "palisade_parse_service_account";
/// The same, standing for `user.parseServiceAccount` (a name of its own, so errors can name what
/// the author wrote).
pub const USER_PARSE_SERVICE_ACCOUNT: &str = "palisade_user_parse_service_account";

fn parse_service_account(ftx: &cel::FunctionContext) -> Result<cel::Value, ExecutionError> {
    let user = match ftx
        .args
        .first()
        .map(|arg| cel::Value::try_from(arg.as_ref()))
    {
        Some(Ok(cel::Value::String(user))) => user,
        _ => {
            return Err(ExecutionError::no_such_overload(
                "parseServiceAccount",
                vec![],
            ))
        }
    };
    let (namespace, name) = user
        .strip_prefix("system:serviceaccount:")
        .and_then(|rest| rest.split_once(':'))
        .unwrap_or(("", ""));
    let account: std::collections::HashMap<String, cel::Value> = [
        (
            "Namespace".to_owned(),
            cel::Value::String(Arc::new(namespace.to_owned())),
        ),
        (
            "Name".to_owned(),
            cel::Value::String(Arc::new(name.to_owned())),
        ),
    ]
    .into_iter()
    .collect();
    Ok(cel::Value::from(account))
}

/// Does `expr` use optional syntax (`a.?b`, `a[?b]`)? A presence test over it keeps the crate's
/// meaning, which unwraps optionals.
fn uses_optionals(expr: &Expression) -> bool {
    match &expr.expr {
        Expr::Call(call) => {
            call.func_name == "_?._"
                || call.func_name == "_[?_]"
                || call.target.as_deref().is_some_and(uses_optionals)
                || call.args.iter().any(uses_optionals)
        }
        Expr::Select(select) => uses_optionals(&select.operand),
        _ => false,
    }
}

/// Rewrite every `has(e.f)` into the apiserver's presence test ([`PRESENCE`]), except on
/// `variables` (whose fields are resolved by name) and over optional syntax.
fn rewrite_presence(expr: &mut Expression) {
    match &mut expr.expr {
        Expr::Select(select) => {
            rewrite_presence(&mut select.operand);
            let on_variables =
                matches!(&select.operand.expr, Expr::Ident(name) if name == "variables");
            if select.test && !on_variables && !uses_optionals(&select.operand) {
                let operand = std::mem::take(&mut select.operand);
                let field = std::mem::take(&mut select.field);
                expr.expr = Expr::Call(cel::common::ast::CallExpr {
                    func_name: PRESENCE.to_owned(),
                    target: Some(operand),
                    args: vec![Expression {
                        id: expr.id,
                        expr: Expr::Literal(LiteralValue::String(field.into())),
                    }],
                });
            }
        }
        Expr::Call(call) => {
            if let Some(target) = &mut call.target {
                rewrite_presence(target);
            }
            for arg in &mut call.args {
                rewrite_presence(arg);
            }
        }
        Expr::Comprehension(c) => {
            for part in [
                &mut c.iter_range,
                &mut c.accu_init,
                &mut c.loop_cond,
                &mut c.loop_step,
                &mut c.result,
            ] {
                rewrite_presence(part);
            }
        }
        Expr::List(list) => list.elements.iter_mut().for_each(rewrite_presence),
        Expr::Map(map) => {
            for entry in &mut map.entries {
                if let EntryExpr::MapEntry(entry) = &mut entry.expr {
                    rewrite_presence(&mut entry.key);
                    rewrite_presence(&mut entry.value);
                }
            }
        }
        Expr::Struct(s) => {
            for entry in &mut s.entries {
                if let EntryExpr::StructField(field) = &mut entry.expr {
                    rewrite_presence(&mut field.value);
                }
            }
        }
        Expr::Unspecified | Expr::Ident(_) | Expr::Literal(_) => {}
    }
}

/// The byte offset of a 1-based (line, column in characters) place in `source`.
fn offset_of(source: &str, line: usize, column: usize) -> usize {
    if line == 0 {
        return 0;
    }
    let mut offset = 0;
    for (index, text) in source.split_inclusive('\n').enumerate() {
        if index + 1 == line {
            let chars = column.saturating_sub(1);
            return offset
                + text
                    .char_indices()
                    .nth(chars)
                    .map(|(at, _)| at)
                    .unwrap_or(text.len());
        }
        offset += text.len();
    }
    source.len()
}

fn collect_references(expr: &Expression, refs: &mut References) {
    match &expr.expr {
        Expr::Ident(name) => match name.as_str() {
            "variables" => refs.all_variables = true,
            "authorizer" => refs.authorizer = true,
            "params" => refs.params = true,
            "namespaceObject" => refs.namespace_object = true,
            _ => {}
        },
        Expr::Select(select) => {
            if let Expr::Ident(name) = &select.operand.expr {
                if name == "variables" {
                    push_unique(&mut refs.variables, &select.field);
                    return;
                }
            }
            collect_references(&select.operand, refs);
        }
        Expr::Call(call) => {
            if call.func_name == "_[_]" && call.target.is_none() && call.args.len() == 2 {
                if let (Expr::Ident(name), Expr::Literal(LiteralValue::String(field))) =
                    (&call.args[0].expr, &call.args[1].expr)
                {
                    if name == "variables" {
                        push_unique(&mut refs.variables, field.inner());
                        return;
                    }
                }
            }
            if let Some(target) = &call.target {
                collect_references(target, refs);
            }
            for arg in &call.args {
                collect_references(arg, refs);
            }
        }
        Expr::Comprehension(comprehension) => {
            collect_references(&comprehension.iter_range, refs);
            collect_references(&comprehension.accu_init, refs);
            collect_references(&comprehension.loop_cond, refs);
            collect_references(&comprehension.loop_step, refs);
            collect_references(&comprehension.result, refs);
        }
        Expr::List(list) => {
            for element in &list.elements {
                collect_references(element, refs);
            }
        }
        Expr::Map(map) => {
            for entry in &map.entries {
                if let EntryExpr::MapEntry(entry) = &entry.expr {
                    collect_references(&entry.key, refs);
                    collect_references(&entry.value, refs);
                }
            }
        }
        Expr::Struct(structure) => {
            for entry in &structure.entries {
                if let EntryExpr::StructField(field) = &entry.expr {
                    collect_references(&field.value, refs);
                }
            }
        }
        Expr::Literal(_) | Expr::Unspecified => {}
    }
}

fn push_unique(names: &mut Vec<String>, name: &str) {
    if !names.iter().any(|n| n == name) {
        names.push(name.to_owned());
    }
}

/// The variables of one evaluation, as the admission plugins bind them. Every value is borrowed:
/// the caller converts an object once and shares it between all the policies of a request.
pub struct Activation<'a> {
    pub object: &'a (dyn Val + 'a),
    pub old_object: &'a (dyn Val + 'a),
    pub request: &'a (dyn Val + 'a),
    pub namespace_object: &'a (dyn Val + 'a),
    pub params: &'a (dyn Val + 'a),
    /// The composited variables, when the policy has any.
    pub variables: Option<&'a (dyn Val + 'a)>,
    /// `authorizer`, when one is available.
    pub authorizer: Option<&'a (dyn Val + 'a)>,
}

#[cfg(test)]
impl<'a> Activation<'a> {
    /// `object` alone, every other variable `null` (a CREATE without parameters), for tests.
    pub(crate) fn of_object(object: &'a (dyn Val + 'a), null: &'a K8sNull) -> Self {
        Activation {
            object,
            old_object: null,
            request: null,
            namespace_object: null,
            params: null,
            variables: None,
            authorizer: None,
        }
    }
}

impl VariableResolver for Activation<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        resolve_path(variable, |name| match name {
            "object" => Some(self.object),
            "oldObject" => Some(self.old_object),
            "request" => Some(self.request),
            "namespaceObject" => Some(self.namespace_object),
            "params" => Some(self.params),
            "variables" => self.variables,
            "authorizer" => self.authorizer,
            _ => None,
        })
    }
}

/// Evaluate `program` with the variables `resolver` gives (an [`Activation`], or a resolver that
/// converts each variable on first use) and hand the result to `inspect`, which reads what it needs
/// from it (a bool, a string) without the result being copied.
pub fn evaluate_with<R: Send>(
    program: &Program,
    activation: &dyn VariableResolver,
    inspect: impl FnOnce(&dyn Val) -> R + Send,
) -> Result<R, EvalError> {
    evaluate_cow(program, activation, |value| inspect(value.as_ref()))
}

/// Evaluate `program` to a value that lives as long as the variables `activation` gives: a value
/// the evaluation made is moved out, one it only borrows (`object.spec`) is cloned, which for the
/// parts of a JSON object is a shared handle, not a copy. What a composited variable's value is
/// kept as between the expressions of one evaluation.
pub fn evaluate_value<'a>(
    program: &Program,
    activation: &'a dyn VariableResolver,
) -> Result<Box<dyn Val + 'a>, EvalError> {
    evaluate_cow(program, activation, |value| value.into_owned())
}

fn evaluate_cow<'a, R: Send>(
    program: &Program,
    activation: &'a dyn VariableResolver,
    inspect: impl for<'e> FnOnce(CowVal<'e, 'a>) -> R + Send,
) -> Result<R, EvalError> {
    let meter = cost::Meter::start();
    let work = || {
        let saved = meter.enter();
        let result = catch_unwind(AssertUnwindSafe(|| {
            let root: &Context<'_, 'a> = &ROOT;
            let mut ctx = root.new_inner_scope();
            ctx.set_variable_resolver(activation);
            cel::Value::resolve_val(&program.expr, &ctx)
                .map(inspect)
                .map_err(EvalError::from)
        }))
        .unwrap_or_else(|_| Err(internal_error()));
        (result, cost::Meter::leave(saved))
    };
    let (result, used) = if program.depth <= INLINE_DEPTH {
        work()
    } else {
        on_large_stack(work).unwrap_or_else(|| {
            let message = "expression too deeply nested to evaluate here".to_owned();
            (Err(EvalError { message }), 0)
        })
    };
    meter.finish(used);
    result
}

fn internal_error() -> EvalError {
    EvalError {
        message: "internal error in the CEL interpreter".to_owned(),
    }
}

/// Evaluate `program` to a value that borrows nothing: a deep copy ([`to_static`]), for a value
/// that must outlive the variables it was computed from.
pub fn evaluate(
    program: &Program,
    activation: &dyn VariableResolver,
) -> Result<Box<dyn Val>, EvalError> {
    evaluate_with(program, activation, |value| {
        to_static(value).map_err(EvalError::from)
    })
    .and_then(|result| result)
}

/// What an expression's result is, as the admission plugins read results.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Bool(bool),
    String(String),
    Null,
    /// Any other type, by name.
    Other(String),
}

impl Outcome {
    pub fn of(value: &dyn Val) -> Outcome {
        if let Some(b) = value.downcast_ref::<cel::common::types::CelBool>() {
            return Outcome::Bool(*b.inner());
        }
        if let Some(s) = value.downcast_ref::<cel::common::types::CelString>() {
            return Outcome::String(s.inner().to_owned());
        }
        if value.get_type() == &cel::common::types::NULL_TYPE {
            return Outcome::Null;
        }
        Outcome::Other(value.get_type().name().to_owned())
    }
}

/// Evaluate `program` and read its result as an [`Outcome`].
pub fn evaluate_outcome(
    program: &Program,
    activation: &dyn VariableResolver,
) -> Result<Outcome, EvalError> {
    evaluate_with(program, activation, Outcome::of)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct NoVariables;

    impl VariableResolver for NoVariables {
        fn resolve<'b>(&'b self, _: &str) -> Option<CowVal<'b, 'b>> {
            None
        }
    }

    const NO_VARIABLES: NoVariables = NoVariables;

    fn run(expr: &str, object: serde_json::Value) -> Result<Outcome, EvalError> {
        let program = compile(expr).unwrap();
        let object = from_json(&object);
        let null = K8sNull;
        evaluate_outcome(&program, &Activation::of_object(object.as_ref(), &null))
    }

    #[test]
    fn the_kubernetes_environment_builds() {
        assert!(k8s::environment().is_ok());
        let outcome = run(
            "quantity('1Gi').isGreaterThan(quantity('512Mi')) && ip('10.0.0.1').family() == 4",
            json!({}),
        )
        .unwrap();
        assert!(matches!(outcome, Outcome::Bool(true)), "{outcome:?}");
    }

    #[test]
    fn presence_tests_on_primitives_are_false_as_in_cel_go() {
        // The apiserver's cel-go (without EnableErrorOnBadPresenceTest) answers a presence test on
        // a string, number or bool with false, not an error; on a map as usual.
        let pod = json!({"metadata": {"name": "web", "labels": {"a": "1"}}, "spec": {"replicas": 3, "paused": true}});
        for expr in [
            "has(object.metadata.name.first)",
            "has(object.spec.replicas.value)",
            "has(object.spec.paused.really)",
            "has(object.metadata.labels.b)",
            "[object.metadata].exists(m, has(m.name.x))",
        ] {
            assert_eq!(run(expr, pod.clone()), Ok(Outcome::Bool(false)), "{expr}");
        }
        for expr in [
            "has(object.metadata.labels.a)",
            "has(object.metadata)",
            "object.?metadata.?name.hasValue() && has(object.?metadata.name)",
        ] {
            assert_eq!(run(expr, pod.clone()), Ok(Outcome::Bool(true)), "{expr}");
        }
        // Only the last field is tested: a missing one before it is still an error.
        assert!(run("has(object.nope.name)", pod).is_err());
    }

    #[test]
    fn presence_tests_on_null_are_false_as_in_cel_go() {
        let pod = json!({"spec": {"securityContext": null, "list": [null]}});
        assert_eq!(
            run("has(object.spec.securityContext)", pod.clone()),
            Ok(Outcome::Bool(false))
        );
        assert_eq!(
            run("has(object.spec.list[0].runAsNonRoot)", pod.clone()),
            Ok(Outcome::Bool(false))
        );
        assert_eq!(
            run("object.spec.list[0] == null", pod.clone()),
            Ok(Outcome::Bool(true))
        );
        assert_eq!(
            run("has(oldObject.metadata)", pod.clone()),
            Ok(Outcome::Bool(false))
        );
        assert_eq!(
            run("oldObject == null", pod.clone()),
            Ok(Outcome::Bool(true))
        );
        assert_eq!(
            run("null == oldObject", pod.clone()),
            Ok(Outcome::Bool(true))
        );

        assert_eq!(
            run("type(params) == null_type", pod.clone()),
            Ok(Outcome::Bool(true))
        );
        assert_eq!(
            run("params.maxReplicas", pod).unwrap_err().message,
            "no such key: maxReplicas"
        );
    }

    #[test]
    fn numbers_are_ints_strings_compare() {
        let deploy = json!({"spec": {"replicas": 3}, "metadata": {"name": "web"}});
        assert_eq!(
            run(
                "object.spec.replicas <= 5 && object.metadata.name.startsWith('w')",
                deploy.clone()
            ),
            Ok(Outcome::Bool(true))
        );
        assert_eq!(
            run("'n: ' + string(object.spec.replicas)", deploy.clone()),
            Ok(Outcome::String("n: 3".into()))
        );
        assert_eq!(
            run("object.spec.missing", deploy.clone())
                .unwrap_err()
                .message,
            "no such key: missing"
        );
        assert_eq!(
            run("object.?spec.?missing.orValue(7) == 7", deploy),
            Ok(Outcome::Bool(true))
        );
    }

    #[test]
    fn compile_errors_carry_their_place() {
        let error = compile("object.spec.replicas <=").unwrap_err();
        assert_eq!(error.line, 1);
        assert!(error.column > 0, "{error:?}");
        let error = compile("a &&\n  b +").unwrap_err();
        assert_eq!(error.line, 2, "{error:?}");
        assert_eq!(&"a &&\n  b +"[..error.offset].lines().count(), &2);
    }

    #[test]
    fn literal_regexes_are_compiled_once_and_checked_at_compile_time() {
        let object = json!({"metadata": {"name": "web-1"}});
        assert_eq!(
            run(
                "object.metadata.name.matches('^web-[0-9]+$')",
                object.clone()
            ),
            Ok(Outcome::Bool(true))
        );
        assert_eq!(
            run("matches(object.metadata.name, '^api')", object.clone()),
            Ok(Outcome::Bool(false))
        );
        assert_eq!(
            run(
                "[object.metadata.name].exists(n, n.matches('1$'))",
                object.clone()
            ),
            Ok(Outcome::Bool(true))
        );
        // A pattern that is not a literal is compiled when it is used.
        assert_eq!(
            run("object.metadata.name.matches(object.metadata.name)", object),
            Ok(Outcome::Bool(true))
        );
        let error = compile("true && object.metadata.name.matches('(')").unwrap_err();
        assert!(
            error.message.contains("invalid matches argument"),
            "{error:?}"
        );
        assert_eq!(error.line, 1);
        assert!(error.column > 8, "{error:?}");
    }

    #[test]
    fn hostile_expressions_are_errors_not_panics() {
        let object = json!({"x": "(", "n": 9223372036854775807_i64});
        for expr in [
            "1 / 0 == 1",
            "object.n + 1 > 0",
            "'é'.matches(object.x)",
            "[1, 2][5] == 1",
            "{'a': 1}['b'] == 1",
            "object.x.size() > object",
            "int('nope') == 1",
            "object.x.y",
            "dyn(object).x.y.z",
        ] {
            assert!(run(expr, object.clone()).is_err(), "{expr}");
        }
        for depth in [20, 60, 100, 5000] {
            let deep = format!("{}1{}", "(".repeat(depth), ")".repeat(depth));
            let list = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
            for source in [deep, list] {
                if let Ok(program) = compile(&source) {
                    assert!(evaluate_outcome(&program, &NO_VARIABLES).is_ok());
                }
            }
        }
        for terms in [10, 100, 199, 400] {
            let sum = vec!["1"; terms].join(" + ") + " > 0";
            match compile(&sum) {
                Ok(program) => assert_eq!(
                    evaluate_outcome(&program, &NO_VARIABLES),
                    Ok(Outcome::Bool(true))
                ),
                Err(error) => {
                    assert!(terms > MAX_DEPTH, "{terms}: {error}");
                    assert!(error.message.contains("nested"), "{error}");
                }
            }
        }
        let conditions = vec!["true"; 2000].join(" && ");
        let program = compile(&conditions).unwrap();
        assert_eq!(
            evaluate_outcome(&program, &NO_VARIABLES),
            Ok(Outcome::Bool(true))
        );
        let _ = object;
    }

    #[test]
    fn runaway_work_is_stopped_at_the_apiservers_cost_limit() {
        let started = std::time::Instant::now();
        // A million-step nested loop, and a list of huge lists: each stops with the apiserver's
        // words long before it could pin a CPU or fill memory.
        for expr in [
            "lists.range(2000).all(x, lists.range(2000).all(y, x + y >= 0))",
            "lists.range(100000).map(x, lists.range(100000)).size() > 0",
            "lists.range(1000).exists(x, lists.range(1000).exists(y, lists.range(1000).exists(z, x + y + z < 0)))",
        ] {
            let err = run(expr, json!({})).unwrap_err();
            assert_eq!(err.message, cost::OVER_EXPRESSION_LIMIT, "{expr}");
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "stopping took {:?}",
            started.elapsed()
        );
        // Ordinary loops are nowhere near it.
        assert_eq!(
            run("lists.range(1000).all(x, x >= 0)", json!({})),
            Ok(Outcome::Bool(true))
        );
        assert_eq!(
            run(
                "object.items.map(i, i * 2).filter(i, i > 2).size() == 2",
                json!({"items": [1, 2, 3]})
            ),
            Ok(Outcome::Bool(true))
        );
    }

    #[test]
    fn one_validation_call_shares_one_budget() {
        // Each expression spends about 700,000 of its 1,000,000: alone each is fine, but a
        // validation call has 10,000,000 for all of them.
        let expr = "lists.range(100000).all(x, x >= 0)";
        assert_eq!(run(expr, json!({})), Ok(Outcome::Bool(true)));
        let results: Vec<_> =
            cost::with_call_budget(|| (0..20).map(|_| run(expr, json!({}))).collect());
        let first_refused = results
            .iter()
            .position(Result::is_err)
            .expect("the budget runs out");
        assert!(
            (10..20).contains(&first_refused),
            "refused at {first_refused}"
        );
        assert_eq!(
            results[first_refused].as_ref().unwrap_err().message,
            cost::OVER_CALL_BUDGET
        );
        // Outside a call, the budget is back.
        assert_eq!(run(expr, json!({})), Ok(Outcome::Bool(true)));
    }

    #[test]
    fn programs_are_cached_by_source() {
        let a = compile("1 + 1 == 2").unwrap();
        let b = compile("1 + 1 == 2").unwrap();
        assert!(Arc::ptr_eq(&a, &b));
    }

    #[test]
    fn references_find_variables_and_the_authorizer() {
        let program =
            compile("variables.a && has(variables.b) && variables['c'] && authorizer.group('').check('get').allowed()")
                .unwrap();
        let refs = program.references();
        assert_eq!(refs.variables, ["a", "b", "c"]);
        assert!(!refs.all_variables);
        assert!(refs.authorizer);
    }
}
