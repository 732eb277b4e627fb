//! The checks Gatekeeper's admission of a ConstraintTemplate makes on its Rego: every called
//! function exists with that number of arguments, no two rules conflict, and Rego v0 keywords are
//! imported before use.

use std::collections::BTreeMap;

use regorus::unstable::{Expr, Module, Rule, RuleHead};

use super::walk::{leftmost, path_of, visit_rule, Node};
use super::{builtin, not_local_message, Support};

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
    /// The builtins the modules call, by name.
    pub called: std::collections::BTreeSet<String>,
    /// Calls Gatekeeper accepts but Palisade cannot evaluate locally (network, runtime, or a builtin
    /// Palisade does not implement). A template with any of these is not evaluable locally.
    pub not_local: Vec<Finding>,
}

/// How Palisade answers a call of the builtin `name`, `None` when OPA has no such builtin.
pub fn support(name: &str) -> Option<(u8, Support)> {
    let (arity, support) = builtin(name)?;
    let implemented = regorus::unstable::BUILTINS.contains_key(name)
        || super::super::builtins::names().any(|own| own == name);
    Some(match support {
        Support::Evaluated if !implemented => (arity, Support::NotLocal(UNIMPLEMENTED)),
        other => (arity, other),
    })
}

/// The reason given for an OPA builtin Palisade has no implementation of.
pub(super) const UNIMPLEMENTED: &str = "Palisade does not implement this builtin yet";

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
            visit_rule(rule, &mut |node| {
                if let Node::Expr(expr) = node {
                    scope.call(expr, &mut checked);
                }
            });
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
    for (keyword, line, column) in super::super::normalise::keyword_uses(text) {
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
                checked.called.insert(name.clone());
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
