//! The Rego layer: regorus set up as Gatekeeper's OPA sets itself up, and the checks Gatekeeper's
//! admission of a ConstraintTemplate makes before it accepts the Rego.
//!
//! - [`engine`] is the one place an engine is made, for templates and for the OPA conformance test:
//!   every builtin group OPA has, builtin errors read as undefined (OPA's non-strict mode, which
//!   Gatekeeper uses), and the builtins Palisade never runs answered with an error that says so.
//! - [`BUILTINS`] is OPA's builtin table (name, arity, how Palisade answers a call). The save-time
//!   check reads it to refuse a call of an undefined function or with the wrong number of arguments,
//!   and to warn, naming the line, about a call that cannot be evaluated locally.
//! - [`check`] parses the modules as Gatekeeper would (Rego v0 unless the template says v1), and
//!   walks every call. Rule conflicts that OPA's compiler refuses (a function defined with two
//!   arities, a rule that is both a function and a value) are refused here too.

/// How Palisade answers a call of an OPA builtin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Evaluated with OPA's semantics.
    Evaluated,
    /// Never executed by Palisade: the reason is part of every message about it.
    NotLocal(&'static str),
}

use std::collections::BTreeMap;

use regorus::unstable::{Expr, Literal, Module, Query, Rule, RuleBody, RuleHead};

use super::normalise::{normalise, Rewrite, Rewrites};
use super::template::guarded;

/// The reasons a builtin is not run locally.
const NETWORK: &str = "it calls out over the network";
const RUNTIME: &str = "it reads the Gatekeeper process's own runtime";
const RANDOM: &str = "its result is random, so a local answer could not equal the cluster's";

/// OPA's builtins in the OPA release Gatekeeper embeds (v1.17.1, in Gatekeeper v3.23.1): name,
/// number of arguments, and how Palisade answers a call. Operators (`plus`, `eq`, …) are not listed: they are written
/// as infix and cannot be misnamed.
pub const BUILTINS: &[(&str, u8, Support)] = &[
    ("abs", 1, Support::Evaluated),
    ("all", 1, Support::Evaluated),
    ("any", 1, Support::Evaluated),
    ("array.concat", 2, Support::Evaluated),
    ("array.flatten", 1, Support::Evaluated),
    ("array.reverse", 1, Support::Evaluated),
    ("array.slice", 3, Support::Evaluated),
    ("base64.decode", 1, Support::Evaluated),
    ("base64.encode", 1, Support::Evaluated),
    ("base64.is_valid", 1, Support::Evaluated),
    ("base64url.decode", 1, Support::Evaluated),
    ("base64url.encode", 1, Support::Evaluated),
    ("base64url.encode_no_pad", 1, Support::Evaluated),
    ("bits.and", 2, Support::Evaluated),
    ("bits.lsh", 2, Support::Evaluated),
    ("bits.negate", 1, Support::Evaluated),
    ("bits.or", 2, Support::Evaluated),
    ("bits.rsh", 2, Support::Evaluated),
    ("bits.xor", 2, Support::Evaluated),
    ("cast_array", 1, Support::Evaluated),
    ("cast_boolean", 1, Support::Evaluated),
    ("cast_null", 1, Support::Evaluated),
    ("cast_object", 1, Support::Evaluated),
    ("cast_set", 1, Support::Evaluated),
    ("cast_string", 1, Support::Evaluated),
    ("ceil", 1, Support::Evaluated),
    ("concat", 2, Support::Evaluated),
    ("contains", 2, Support::Evaluated),
    ("count", 1, Support::Evaluated),
    ("crypto.hmac.equal", 2, Support::Evaluated),
    ("crypto.hmac.md5", 2, Support::Evaluated),
    ("crypto.hmac.sha1", 2, Support::Evaluated),
    ("crypto.hmac.sha256", 2, Support::Evaluated),
    ("crypto.hmac.sha512", 2, Support::Evaluated),
    ("crypto.md5", 1, Support::Evaluated),
    ("crypto.parse_private_keys", 1, Support::Evaluated),
    ("crypto.sha1", 1, Support::Evaluated),
    ("crypto.sha256", 1, Support::Evaluated),
    (
        "crypto.x509.parse_and_verify_certificates",
        1,
        Support::Evaluated,
    ),
    (
        "crypto.x509.parse_and_verify_certificates_with_options",
        2,
        Support::Evaluated,
    ),
    (
        "crypto.x509.parse_certificate_request",
        1,
        Support::Evaluated,
    ),
    ("crypto.x509.parse_certificates", 1, Support::Evaluated),
    ("crypto.x509.parse_keypair", 2, Support::Evaluated),
    ("crypto.x509.parse_rsa_private_key", 1, Support::Evaluated),
    ("endswith", 2, Support::Evaluated),
    ("floor", 1, Support::Evaluated),
    ("format_int", 2, Support::Evaluated),
    ("glob.match", 3, Support::Evaluated),
    ("glob.quote_meta", 1, Support::Evaluated),
    ("graph.reachable", 2, Support::Evaluated),
    ("graph.reachable_paths", 2, Support::Evaluated),
    ("graphql.is_valid", 2, Support::Evaluated),
    ("graphql.parse", 2, Support::Evaluated),
    ("graphql.parse_and_verify", 2, Support::Evaluated),
    ("graphql.parse_query", 1, Support::Evaluated),
    ("graphql.parse_schema", 1, Support::Evaluated),
    ("graphql.schema_is_valid", 1, Support::Evaluated),
    ("hex.decode", 1, Support::Evaluated),
    ("hex.encode", 1, Support::Evaluated),
    ("http.send", 1, Support::NotLocal(NETWORK)),
    ("indexof", 2, Support::Evaluated),
    ("indexof_n", 2, Support::Evaluated),
    ("intersection", 1, Support::Evaluated),
    ("io.jwt.decode", 1, Support::Evaluated),
    ("io.jwt.decode_verify", 2, Support::Evaluated),
    ("io.jwt.encode_sign", 3, Support::Evaluated),
    ("io.jwt.encode_sign_raw", 3, Support::Evaluated),
    ("io.jwt.verify_eddsa", 2, Support::Evaluated),
    ("io.jwt.verify_es256", 2, Support::Evaluated),
    ("io.jwt.verify_es384", 2, Support::Evaluated),
    ("io.jwt.verify_es512", 2, Support::Evaluated),
    ("io.jwt.verify_hs256", 2, Support::Evaluated),
    ("io.jwt.verify_hs384", 2, Support::Evaluated),
    ("io.jwt.verify_hs512", 2, Support::Evaluated),
    ("io.jwt.verify_ps256", 2, Support::Evaluated),
    ("io.jwt.verify_ps384", 2, Support::Evaluated),
    ("io.jwt.verify_ps512", 2, Support::Evaluated),
    ("io.jwt.verify_rs256", 2, Support::Evaluated),
    ("io.jwt.verify_rs384", 2, Support::Evaluated),
    ("io.jwt.verify_rs512", 2, Support::Evaluated),
    ("is_array", 1, Support::Evaluated),
    ("is_boolean", 1, Support::Evaluated),
    ("is_null", 1, Support::Evaluated),
    ("is_number", 1, Support::Evaluated),
    ("is_object", 1, Support::Evaluated),
    ("is_set", 1, Support::Evaluated),
    ("is_string", 1, Support::Evaluated),
    ("json.filter", 2, Support::Evaluated),
    ("json.is_valid", 1, Support::Evaluated),
    ("json.marshal", 1, Support::Evaluated),
    ("json.marshal_with_options", 2, Support::Evaluated),
    ("json.match_schema", 2, Support::Evaluated),
    ("json.patch", 2, Support::Evaluated),
    ("json.remove", 2, Support::Evaluated),
    ("json.unmarshal", 1, Support::Evaluated),
    ("json.verify_schema", 1, Support::Evaluated),
    ("lower", 1, Support::Evaluated),
    ("max", 1, Support::Evaluated),
    ("min", 1, Support::Evaluated),
    ("net.cidr_contains", 2, Support::Evaluated),
    ("net.cidr_contains_matches", 2, Support::Evaluated),
    ("net.cidr_expand", 1, Support::Evaluated),
    ("net.cidr_intersects", 2, Support::Evaluated),
    ("net.cidr_is_valid", 1, Support::Evaluated),
    ("net.cidr_merge", 1, Support::Evaluated),
    ("net.cidr_overlap", 2, Support::Evaluated),
    ("net.lookup_ip_addr", 1, Support::NotLocal(NETWORK)),
    ("numbers.range", 2, Support::Evaluated),
    ("numbers.range_step", 3, Support::Evaluated),
    ("object.filter", 2, Support::Evaluated),
    ("object.get", 3, Support::Evaluated),
    ("object.keys", 1, Support::Evaluated),
    ("object.remove", 2, Support::Evaluated),
    ("object.subset", 2, Support::Evaluated),
    ("object.union", 2, Support::Evaluated),
    ("object.union_n", 1, Support::Evaluated),
    ("opa.runtime", 0, Support::NotLocal(RUNTIME)),
    ("product", 1, Support::Evaluated),
    ("providers.aws.sign_req", 3, Support::Evaluated),
    ("rand.intn", 2, Support::NotLocal(RANDOM)),
    ("re_match", 2, Support::Evaluated),
    ("regex.find_all_string_submatch_n", 3, Support::Evaluated),
    ("regex.find_n", 3, Support::Evaluated),
    ("regex.globs_match", 2, Support::Evaluated),
    ("regex.is_valid", 1, Support::Evaluated),
    ("regex.match", 2, Support::Evaluated),
    ("regex.replace", 3, Support::Evaluated),
    ("regex.split", 2, Support::Evaluated),
    ("regex.template_match", 4, Support::Evaluated),
    ("rego.metadata.chain", 0, Support::Evaluated),
    ("rego.metadata.rule", 0, Support::Evaluated),
    ("rego.parse_module", 2, Support::Evaluated),
    ("replace", 3, Support::Evaluated),
    ("round", 1, Support::Evaluated),
    ("semver.compare", 2, Support::Evaluated),
    ("semver.is_valid", 1, Support::Evaluated),
    ("set_diff", 2, Support::Evaluated),
    ("sort", 1, Support::Evaluated),
    ("split", 2, Support::Evaluated),
    ("sprintf", 2, Support::Evaluated),
    ("startswith", 2, Support::Evaluated),
    ("strings.any_prefix_match", 2, Support::Evaluated),
    ("strings.any_suffix_match", 2, Support::Evaluated),
    ("strings.count", 2, Support::Evaluated),
    ("strings.render_template", 2, Support::Evaluated),
    ("strings.replace_n", 2, Support::Evaluated),
    ("strings.reverse", 1, Support::Evaluated),
    ("substring", 3, Support::Evaluated),
    ("sum", 1, Support::Evaluated),
    ("time.add_date", 4, Support::Evaluated),
    ("time.clock", 1, Support::Evaluated),
    ("time.date", 1, Support::Evaluated),
    ("time.diff", 2, Support::Evaluated),
    ("time.format", 1, Support::Evaluated),
    ("time.now_ns", 0, Support::Evaluated),
    ("time.parse_duration_ns", 1, Support::Evaluated),
    ("time.parse_ns", 2, Support::Evaluated),
    ("time.parse_rfc3339_ns", 1, Support::Evaluated),
    ("time.weekday", 1, Support::Evaluated),
    ("to_number", 1, Support::Evaluated),
    ("trace", 1, Support::Evaluated),
    ("trim", 2, Support::Evaluated),
    ("trim_left", 2, Support::Evaluated),
    ("trim_prefix", 2, Support::Evaluated),
    ("trim_right", 2, Support::Evaluated),
    ("trim_space", 1, Support::Evaluated),
    ("trim_suffix", 2, Support::Evaluated),
    ("type_name", 1, Support::Evaluated),
    ("union", 1, Support::Evaluated),
    ("units.parse", 1, Support::Evaluated),
    ("units.parse_bytes", 1, Support::Evaluated),
    ("upper", 1, Support::Evaluated),
    ("uri.is_valid", 1, Support::Evaluated),
    ("uri.parse", 1, Support::Evaluated),
    ("urlquery.decode", 1, Support::Evaluated),
    ("urlquery.decode_object", 1, Support::Evaluated),
    ("urlquery.encode", 1, Support::Evaluated),
    ("urlquery.encode_object", 1, Support::Evaluated),
    ("uuid.parse", 1, Support::Evaluated),
    ("uuid.rfc4122", 1, Support::Evaluated),
    ("walk", 1, Support::Evaluated),
    ("yaml.is_valid", 1, Support::Evaluated),
    ("yaml.marshal", 1, Support::Evaluated),
    ("yaml.unmarshal", 1, Support::Evaluated),
];

/// The entry of [`BUILTINS`] called `name`.
pub fn builtin(name: &str) -> Option<(u8, Support)> {
    BUILTINS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, arity, support)| (*arity, *support))
}

/// The message of an evaluation that reached a builtin Palisade never runs.
pub fn not_local_message(name: &str, reason: &str) -> String {
    format!("{name} is not evaluable locally: {reason}")
}

/// A regorus engine set up as Gatekeeper's OPA: Rego v0 unless `v1`, builtin errors read as
/// undefined, and every builtin Palisade never runs answered with an error naming it.
pub fn engine(v1: bool) -> regorus::Engine {
    engine_with(v1, false)
}

/// [`engine`], with builtin errors as evaluation errors when `strict` (OPA's `strict-builtin-errors`;
/// the conformance cases ask for it, Gatekeeper never does).
pub fn engine_with(v1: bool, strict: bool) -> regorus::Engine {
    let mut engine = regorus::Engine::new();
    engine.set_rego_v0(!v1);
    engine.set_strict_builtin_errors(strict);
    super::builtins::register(&mut engine, strict);
    for (name, arity, support) in BUILTINS {
        if let Support::NotLocal(reason) = support {
            let message = not_local_message(name, reason);
            // Registered on a fresh engine, so the name is free; an error here would only mean the
            // builtin keeps regorus's own answer, and `check` still refuses to evaluate it.
            let _ = engine.add_extension(
                (*name).to_owned(),
                *arity,
                Box::new(
                    move |_: Vec<regorus::Value>| -> anyhow::Result<regorus::Value> {
                        Err(anyhow::anyhow!(message.clone()))
                    },
                ),
            );
        }
    }
    engine
}

/// Add one module to `engine` after the source normalisation every template gets (see
/// [`super::normalise`]), returning its package path (`data.…`) and the rewrites applied.
pub fn add_module(engine: &mut regorus::Engine, name: &str, text: &str) -> Result<String, String> {
    add_module_with(engine, name, text, Rewrites::ALL).map(|(package, _)| package)
}

/// [`add_module`] with a chosen set of rewrites, also returning the rewrites applied.
pub fn add_module_with(
    engine: &mut regorus::Engine,
    name: &str,
    text: &str,
    enabled: Rewrites,
) -> Result<(String, Vec<Rewrite>), String> {
    let (normalised, applied) = normalise(text, enabled);
    let package = guarded(|| engine.add_policy(name.to_owned(), normalised))?;
    Ok((package, applied))
}

/// Where a finding of [`check`] is: the module (as named when added), 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub module: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// What [`check`] found in a template's modules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checked {
    /// What Gatekeeper refuses when the template is created: undefined functions, wrong arity,
    /// conflicting rules.
    pub errors: Vec<Finding>,
    /// Calls Gatekeeper accepts but Palisade cannot evaluate locally (network, runtime, or a builtin
    /// Palisade does not implement). A template with any of these is not evaluable locally.
    pub not_local: Vec<Finding>,
}

/// How Palisade answers a call of the builtin `name`, `None` when OPA has no such builtin.
pub fn support(name: &str) -> Option<(u8, Support)> {
    let (arity, support) = builtin(name)?;
    let implemented = regorus::unstable::BUILTINS.contains_key(name)
        || super::builtins::names().any(|own| own == name);
    Some(match support {
        Support::Evaluated if !implemented => (arity, Support::NotLocal(UNIMPLEMENTED)),
        other => (arity, other),
    })
}

/// The reason given for an OPA builtin Palisade has no implementation of.
const UNIMPLEMENTED: &str = "Palisade does not implement this builtin yet";

/// Check the modules of `engine` (added with [`add_module`]) as Gatekeeper's admission of a
/// ConstraintTemplate does: every called function exists (a builtin of Gatekeeper's OPA, or a
/// function defined in the modules) with that number of arguments, and no two rules conflict.
pub fn check(engine: &mut regorus::Engine) -> Checked {
    let modules = engine.get_modules().to_vec();
    let mut checked = Checked::default();
    let mut functions: BTreeMap<String, (usize, Finding)> = BTreeMap::new();
    let mut values: BTreeMap<String, Finding> = BTreeMap::new();
    for module in &modules {
        let Some(package) = path_of(&module.package.refr) else {
            continue;
        };
        let package = format!("data.{package}");
        for rule in &module.policy {
            let (refr, args) = match rule.as_ref() {
                Rule::Spec {
                    head: RuleHead::Func { refr, args, .. },
                    ..
                } => (refr, Some(args.len())),
                Rule::Spec {
                    head: RuleHead::Compr { refr, .. } | RuleHead::Set { refr, .. },
                    ..
                } => (refr, None),
                Rule::Default { refr, args, .. } => {
                    (refr, (!args.is_empty()).then_some(args.len()))
                }
            };
            let Some(name) = path_of(refr) else {
                continue;
            };
            let full = format!("{package}.{name}");
            let at = finding(module_name(module), refr.span(), String::new());
            match args {
                Some(arity) => {
                    if let Some(value) = values.get(&full) {
                        checked.errors.push(Finding {
                            message: format!(
                                "rule conflict: {full} is a function here and a value rule at line {}",
                                value.line
                            ),
                            ..at.clone()
                        });
                    }
                    match functions.get(&full) {
                        Some((known, first)) if *known != arity => {
                            checked.errors.push(Finding {
                                message: format!(
                                    "rule conflict: function {full} takes {arity} arguments here and {known} at line {}",
                                    first.line
                                ),
                                ..at.clone()
                            });
                        }
                        Some(_) => {}
                        None => {
                            functions.insert(full, (arity, at));
                        }
                    }
                }
                None => {
                    if let Some((_, function)) = functions.get(&full) {
                        checked.errors.push(Finding {
                            message: format!(
                                "rule conflict: {full} is a value rule here and a function at line {}",
                                function.line
                            ),
                            ..at.clone()
                        });
                    }
                    values.entry(full).or_insert(at);
                }
            }
        }
    }
    for module in &modules {
        let Some(package) = path_of(&module.package.refr) else {
            continue;
        };
        let scope = Scope {
            module: module_name(module),
            package: format!("data.{package}"),
            imports: module
                .imports
                .iter()
                .filter_map(|import| {
                    let path = path_of(&import.refr)?;
                    let alias = match &import.r#as {
                        Some(alias) => alias.text().to_owned(),
                        None => path.rsplit('.').next().unwrap_or(&path).to_owned(),
                    };
                    Some((alias, path))
                })
                .collect(),
            functions: &functions,
        };
        for rule in &module.policy {
            visit_rule(rule, &mut |expr| scope.call(expr, &mut checked));
        }
        if !module.rego_v1 {
            v0_keywords(module, &scope, &mut checked);
        }
    }
    checked
}

/// In Rego v0, `if`, `contains`, `in` and `every` are keywords only when imported from
/// `future.keywords` (or with `import rego.v1`); OPA refuses a v0 module that uses them otherwise,
/// where regorus reads them anyway.
fn v0_keywords(module: &Module, scope: &Scope<'_>, checked: &mut Checked) {
    let imported = |keyword: &str| {
        scope.imports.values().any(|path| {
            path == "future.keywords"
                || path == "rego.v1"
                || path.strip_prefix("future.keywords.") == Some(keyword)
                // `every x in xs` brings `in` with it.
                || (keyword == "in" && path == "future.keywords.every")
        })
    };
    let text = module.package.span.source.get_contents();
    for (keyword, line, column) in super::normalise::keyword_uses(text) {
        if !imported(keyword) {
            checked.errors.push(Finding {
                module: scope.module.clone(),
                line,
                column,
                message: format!(
                    "`{keyword}` is a keyword in Rego v0 only after `import future.keywords.{keyword}` \
                     (or `import rego.v1`); Gatekeeper refuses this template without it"
                ),
            });
        }
    }
}

/// What a call's name is resolved against.
struct Scope<'a> {
    module: String,
    package: String,
    /// Import alias → imported path (`data.lib.helpers`, `future.keywords.in` …).
    imports: BTreeMap<String, String>,
    functions: &'a BTreeMap<String, (usize, Finding)>,
}

impl Scope<'_> {
    fn call(&self, expr: &Expr, checked: &mut Checked) {
        let Expr::Call { fcn, params, .. } = expr else {
            return;
        };
        let Some(name) = path_of(fcn) else {
            return;
        };
        if name == "print" || name.starts_with("internal.") {
            return;
        }
        let span = leftmost(fcn).span();
        let at = |message: String| finding(self.module.clone(), span, message);
        let given = params.len();
        // A function of these modules: by its full path, relative to the package, or via an import.
        let (head, rest) = name
            .split_once('.')
            .map_or((name.as_str(), ""), |(h, r)| (h, r));
        let mut candidates = vec![format!("{}.{name}", self.package)];
        if name.starts_with("data.") {
            candidates.push(name.clone());
        }
        if let Some(imported) = self.imports.get(head) {
            candidates.push(if rest.is_empty() {
                imported.clone()
            } else {
                format!("{imported}.{rest}")
            });
        }
        if let Some((arity, _)) = candidates.iter().find_map(|c| self.functions.get(c)) {
            if given != *arity && given != arity + 1 {
                checked.errors.push(at(format!(
                    "function {name} takes {arity} argument{}, called with {given}",
                    if *arity == 1 { "" } else { "s" }
                )));
            }
            return;
        }
        match support(&name) {
            None => checked
                .errors
                .push(at(format!("undefined function {name}"))),
            Some((arity, support)) => {
                let arity = usize::from(arity);
                if given != arity && given != arity + 1 {
                    checked.errors.push(at(format!(
                        "{name} takes {arity} argument{}, called with {given} (arity mismatch)",
                        if arity == 1 { "" } else { "s" }
                    )));
                } else if let Support::NotLocal(reason) = support {
                    checked.not_local.push(at(not_local_message(&name, reason)));
                }
            }
        }
    }
}

/// The first name of a reference (`strings` in `strings.count`), where a call's text begins.
fn leftmost(mut expr: &Expr) -> &Expr {
    while let Expr::RefDot { refr, .. } | Expr::RefBrack { refr, .. } = expr {
        expr = refr;
    }
    expr
}

fn module_name(module: &Module) -> String {
    module.package.span.source.get_path().to_string()
}

fn finding(module: String, span: &regorus::unstable::Span, message: String) -> Finding {
    Finding {
        module,
        line: span.line as usize,
        column: span.col as usize,
        message,
    }
}

/// The dotted path of a reference made of names (`data.lib.f`, `strings.any_prefix_match`), or
/// `None` for anything else.
fn path_of(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Var { span, .. } => Some(span.text().to_owned()),
        Expr::RefDot { refr, field, .. } => Some(format!("{}.{}", path_of(refr)?, field.0.text())),
        Expr::RefBrack { refr, index, .. } => match index.as_ref() {
            Expr::String { value, .. } => {
                Some(format!("{}.{}", path_of(refr)?, value.as_string().ok()?))
            }
            _ => None,
        },
        _ => None,
    }
}

fn visit_rule(rule: &Rule, f: &mut dyn FnMut(&Expr)) {
    match rule {
        Rule::Spec { head, bodies, .. } => {
            match head {
                RuleHead::Compr { refr, assign, .. } => {
                    visit_expr(refr, f);
                    if let Some(assign) = assign {
                        visit_expr(&assign.value, f);
                    }
                }
                RuleHead::Set { refr, key, .. } => {
                    visit_expr(refr, f);
                    if let Some(key) = key {
                        visit_expr(key, f);
                    }
                }
                RuleHead::Func {
                    refr, args, assign, ..
                } => {
                    visit_expr(refr, f);
                    args.iter().for_each(|a| visit_expr(a, f));
                    if let Some(assign) = assign {
                        visit_expr(&assign.value, f);
                    }
                }
            }
            for body in bodies {
                visit_body(body, f);
            }
        }
        Rule::Default {
            refr, args, value, ..
        } => {
            visit_expr(refr, f);
            args.iter().for_each(|a| visit_expr(a, f));
            visit_expr(value, f);
        }
    }
}

fn visit_body(body: &RuleBody, f: &mut dyn FnMut(&Expr)) {
    if let Some(assign) = &body.assign {
        visit_expr(&assign.value, f);
    }
    visit_query(&body.query, f);
}

fn visit_query(query: &Query, f: &mut dyn FnMut(&Expr)) {
    for stmt in &query.stmts {
        match &stmt.literal {
            Literal::SomeVars { .. } => {}
            Literal::SomeIn {
                key,
                value,
                collection,
                ..
            } => {
                if let Some(key) = key {
                    visit_expr(key, f);
                }
                visit_expr(value, f);
                visit_expr(collection, f);
            }
            Literal::Expr { expr, .. } | Literal::NotExpr { expr, .. } => visit_expr(expr, f),
            Literal::Every { domain, query, .. } => {
                visit_expr(domain, f);
                visit_query(query, f);
            }
        }
        // `with f as g` names a function without calling it; only the replacement's calls count.
        for modifier in &stmt.with_mods {
            visit_expr(&modifier.r#as, f);
        }
    }
}

/// Visit `expr` and every expression inside it, outermost first. Written with an explicit stack,
/// so a deeply nested expression cannot overflow the thread's stack.
fn visit_expr(expr: &Expr, f: &mut dyn FnMut(&Expr)) {
    let mut stack: Vec<&Expr> = vec![expr];
    while let Some(expr) = stack.pop() {
        f(expr);
        match expr {
            Expr::String { .. }
            | Expr::RawString { .. }
            | Expr::Number { .. }
            | Expr::Bool { .. }
            | Expr::Null { .. }
            | Expr::Var { .. } => {}
            Expr::Array { items, .. } | Expr::Set { items, .. } => {
                stack.extend(items.iter().map(|i| i.as_ref()));
            }
            Expr::Object { fields, .. } => {
                for (_, key, value) in fields {
                    stack.push(key);
                    stack.push(value);
                }
            }
            Expr::ArrayCompr { term, query, .. } | Expr::SetCompr { term, query, .. } => {
                stack.push(term);
                visit_query(query, f);
            }
            Expr::ObjectCompr {
                key, value, query, ..
            } => {
                stack.push(key);
                stack.push(value);
                visit_query(query, f);
            }
            Expr::Call { fcn, params, .. } => {
                // The function's name is not an expression to check; a computed one would be.
                if !matches!(fcn.as_ref(), Expr::Var { .. } | Expr::RefDot { .. }) {
                    stack.push(fcn);
                }
                stack.extend(params.iter().map(|p| p.as_ref()));
            }
            Expr::UnaryExpr { expr, .. } => stack.push(expr),
            Expr::RefDot { refr, .. } => stack.push(refr),
            Expr::RefBrack { refr, index, .. } => {
                stack.push(refr);
                stack.push(index);
            }
            Expr::BinExpr { lhs, rhs, .. }
            | Expr::BoolExpr { lhs, rhs, .. }
            | Expr::ArithExpr { lhs, rhs, .. }
            | Expr::AssignExpr { lhs, rhs, .. } => {
                stack.push(lhs);
                stack.push(rhs);
            }
            Expr::Membership {
                key,
                value,
                collection,
                ..
            } => {
                if let Some(key) = key {
                    stack.push(key);
                }
                stack.push(value);
                stack.push(collection);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Check `modules` (Rego v0 unless `v1`) and return the findings as `module:line:column message`.
    fn findings(modules: &[&str], v1: bool) -> (Vec<String>, Vec<String>) {
        let mut engine = engine(v1);
        for (index, text) in modules.iter().enumerate() {
            add_module(&mut engine, &format!("m{index}.rego"), text)
                .unwrap_or_else(|e| panic!("module {index} does not parse: {e}"));
        }
        let checked = check(&mut engine);
        let show = |f: &Finding| format!("{}:{}:{} {}", f.module, f.line, f.column, f.message);
        (
            checked.errors.iter().map(show).collect(),
            checked.not_local.iter().map(show).collect(),
        )
    }

    #[test]
    fn every_builtin_regorus_has_is_in_the_table() {
        // The table is OPA's; regorus must not offer a builtin Gatekeeper's OPA lacks without the
        // table saying so (its two internal set helpers aside).
        for name in regorus::unstable::BUILTINS.keys() {
            assert!(
                name.starts_with("__builtin_")
                    || builtin(name).is_some()
                    || *name == "strings.split_n",
                "regorus has {name}, which the table does not list"
            );
        }
    }

    #[test]
    fn a_builtin_is_evaluated_not_local_or_unimplemented() {
        assert_eq!(support("count"), Some((1, Support::Evaluated)));
        assert_eq!(
            support("re_match"),
            Some((2, Support::Evaluated)),
            "our own builtin"
        );
        assert_eq!(support("http.send"), Some((1, Support::NotLocal(NETWORK))));
        assert_eq!(
            support("graphql.parse"),
            Some((2, Support::NotLocal(UNIMPLEMENTED)))
        );
        assert_eq!(
            support("strings.split_n"),
            None,
            "newer than Gatekeeper's OPA"
        );
        assert_eq!(support("no.such"), None);
    }

    #[test]
    fn an_undefined_function_is_refused_at_its_place() {
        let (errors, _) = findings(
            &["package t\n\nviolation[{\"msg\": m}] {\n  m := strings.no_such(input.x)\n}\n"],
            false,
        );
        assert_eq!(errors, ["m0.rego:4:8 undefined function strings.no_such"]);
    }

    #[test]
    fn a_wrong_arity_is_refused_for_builtins_and_own_functions() {
        let (errors, _) = findings(
            &[
                "package t\n\nf(a, b) = a\n\nviolation[{\"msg\": m}] {\n  m := sprintf(\"%v\")\n  f(1)\n}\n",
            ],
            false,
        );
        assert_eq!(
            errors,
            [
                "m0.rego:6:8 sprintf takes 2 arguments, called with 1 (arity mismatch)",
                "m0.rego:7:3 function f takes 2 arguments, called with 1",
            ]
        );
    }

    #[test]
    fn an_output_argument_is_not_an_arity_mismatch() {
        let (errors, _) = findings(&["package t\n\np { count([1], n); n == 1 }\n"], false);
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn functions_resolve_through_packages_and_imports() {
        let lib = "package lib.helpers\n\nname(o) = n { n := o.metadata.name }\n";
        let main = "package t\n\nimport data.lib.helpers\nimport data.lib.helpers.name as nm\n\n\
                    violation[{\"msg\": m}] {\n  m := helpers.name(input)\n  nm(input)\n  data.lib.helpers.name(input)\n}\n";
        let (errors, _) = findings(&[main, lib], false);
        assert!(errors.is_empty(), "{errors:?}");
        let missing = "package t\n\nimport data.lib.helpers\n\np { helpers.other(input) }\n";
        let (errors, _) = findings(&[missing, lib], false);
        assert_eq!(errors, ["m0.rego:5:5 undefined function helpers.other"]);
    }

    #[test]
    fn rule_conflicts_are_refused() {
        let (errors, _) = findings(
            &["package t\n\nf(a) = 1\nf(a, b) = 2\n\ng = 1\ng(x) = 2\n"],
            false,
        );
        assert_eq!(
            errors,
            [
                "m0.rego:4:1 rule conflict: function data.t.f takes 2 arguments here and 1 at line 3",
                "m0.rego:7:1 rule conflict: data.t.g is a function here and a value rule at line 6",
            ]
        );
    }

    #[test]
    fn network_and_runtime_calls_are_not_local_and_named() {
        let (errors, not_local) = findings(
            &["package t\n\nviolation[{\"msg\": \"x\"}] {\n  r := http.send({\"method\": \"get\"})\n  opa.runtime()\n}\n"],
            false,
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            not_local,
            [
                "m0.rego:4:8 http.send is not evaluable locally: it calls out over the network",
                "m0.rego:5:3 opa.runtime is not evaluable locally: it reads the Gatekeeper process's own runtime",
            ]
        );
    }

    #[test]
    fn a_not_local_builtin_fails_when_evaluated_anyway() {
        let mut engine = engine(true);
        add_module(&mut engine, "m.rego", "package t\n\np := http.send({})\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let error = engine
            .eval_rule("data.t.p".to_owned())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            error.contains("http.send is not evaluable locally"),
            "{error}"
        );
    }

    #[test]
    fn v0_and_v1_syntax_follow_the_template() {
        let v1_only = "package t\n\nviolation contains {\"msg\": \"x\"} if { input.a }\n";
        assert_eq!(findings(&[v1_only], true), (vec![], vec![]));
        // Rego v0 has these keywords only when imported.
        let (errors, _) = findings(&[v1_only], false);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].starts_with("m0.rego:3:11 `contains` is a keyword"),
            "{errors:?}"
        );
        assert!(
            errors[1].starts_with("m0.rego:3:33 `if` is a keyword"),
            "{errors:?}"
        );
        let imported = format!(
            "package t\nimport future.keywords.if\nimport future.keywords.contains\n{}",
            &v1_only[10..]
        );
        assert_eq!(findings(&[&imported], false), (vec![], vec![]));
        // `contains(…)` the builtin and `input.in` the field are not keywords.
        let names = "package t\n\np { contains(input.in, \"x\") }\n";
        assert_eq!(findings(&[names], false), (vec![], vec![]));
        // A v0 body in a v1 template is a syntax error at its place.
        let v0_only = "package t\n\nviolation[{\"msg\": \"x\"}] { input.a }\n";
        let v1 = add_module(&mut engine(true), "m.rego", v0_only)
            .err()
            .unwrap_or_default();
        assert!(v1.contains("m.rego:3:"), "{v1}");
    }
}
