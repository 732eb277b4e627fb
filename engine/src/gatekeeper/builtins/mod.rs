//! Builtins that regorus 0.14.1 lacks or answers differently from OPA, written here with OPA's
//! semantics and registered on every engine as extensions (which regorus consults before its own
//! builtins).
//!
//! Each builtin is a plain function of its arguments. An `Err` is a builtin error: OPA (and so
//! Gatekeeper) reads it as undefined unless strict builtin errors are asked for, and so does
//! [`register`].

mod collections;
mod crypto;
mod deprecated;
mod encoding;
mod jwt;
mod net;
mod numbers;
mod strings;
mod time;
mod units;
mod uri;

use regorus::Value;

/// How a builtin's error starts when the call was over a budget: such an error ends the
/// evaluation in every mode (it never reads as an undefined value that lets a policy pass).
pub(crate) const OVER_BUDGET: &str = "evaluation exceeded its budget: ";

/// A builtin: its arguments in, its value or a builtin error out.
pub(crate) type Builtin = fn(&[Value]) -> Result<Value, String>;

/// Every builtin of this module: name, number of arguments, function.
fn all() -> impl Iterator<Item = &'static (&'static str, u8, Builtin)> {
    collections::BUILTINS
        .iter()
        .chain(crypto::BUILTINS)
        .chain(deprecated::BUILTINS)
        .chain(encoding::BUILTINS)
        .chain(jwt::BUILTINS)
        .chain(net::BUILTINS)
        .chain(numbers::BUILTINS)
        .chain(strings::BUILTINS)
        .chain(time::BUILTINS)
        .chain(units::BUILTINS)
        .chain(uri::BUILTINS)
}

/// The names of the builtins this module provides.
pub fn names() -> impl Iterator<Item = &'static str> {
    all().map(|(name, _, _)| *name)
}

/// The number of arguments of the builtin of this module called `name`.
pub fn arity(name: &str) -> Option<u8> {
    all()
        .find(|(n, _, _)| *n == name)
        .map(|(_, arity, _)| *arity)
}

/// Register the builtins of this module on `engine`: all of them, or only those `wanted` names.
/// Every extension an engine carries is copied each time the engine is cloned for an evaluation,
/// so a template's engine gets only the ones it calls. With `strict`, a builtin error is an
/// evaluation error; without, the call is undefined (OPA's default, and Gatekeeper's).
pub(crate) fn register(
    engine: &mut regorus::Engine,
    strict: bool,
    wanted: Option<&dyn Fn(&str) -> bool>,
) {
    for (name, arity, builtin) in all().filter(|(name, _, _)| wanted.is_none_or(|w| w(name))) {
        let (name, builtin) = (*name, *builtin);
        // A fresh engine has no extensions, so the name is free.
        let _ = engine.add_extension(
            name.to_owned(),
            *arity,
            Box::new(move |args: Vec<Value>| -> anyhow::Result<Value> {
                match builtin(&args) {
                    Ok(value) => Ok(value),
                    Err(message) if message.starts_with(OVER_BUDGET) => {
                        Err(anyhow::anyhow!("{message}"))
                    }
                    Err(message) if strict => Err(anyhow::anyhow!("{name}: {message}")),
                    Err(_) => Ok(Value::Undefined),
                }
            }),
        );
    }
}

/// Call regorus's own implementation of the builtin `name`, for a wrapper that only guards its input
/// or mends its output. A builtin error comes back as its message.
pub(crate) fn regorus_builtin(name: &str, args: &[Value]) -> Result<Value, String> {
    use regorus::unstable::{Expr, Ref, Span};
    let Some((builtin, _)) = regorus::unstable::BUILTINS.get(name) else {
        return Err(format!("{name} is not available"));
    };
    // regorus's builtins want the call's place for their messages; this one is synthetic.
    let source = regorus::Source::from_contents(name.to_owned(), String::new())
        .map_err(|e| e.to_string())?;
    let span = Span {
        source,
        line: 1,
        col: 1,
        start: 0,
        end: 0,
    };
    let params: Vec<Ref<Expr>> = args
        .iter()
        .map(|value| {
            Ref::new(Expr::String {
                span: span.clone(),
                value: value.clone(),
                eidx: 0,
            })
        })
        .collect();
    builtin(&span, &params, args, true).map_err(|e| {
        let message = e.to_string();
        message
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or(&message)
            .trim()
            .trim_start_matches("error: ")
            .to_owned()
    })
}

/// The argument at `index` as a string, or the error OPA gives for another type.
pub(crate) fn string_arg(args: &[Value], index: usize) -> Result<&str, String> {
    match args.get(index) {
        Some(Value::String(s)) => Ok(s.as_ref()),
        Some(other) => Err(format!(
            "operand {} must be string but got {}",
            index + 1,
            type_name(other)
        )),
        None => Err(format!("operand {} is missing", index + 1)),
    }
}

/// OPA's name for the type of `value`.
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Set(_) => "set",
        Value::Object(_) => "object",
        Value::Undefined => "undefined",
    }
}
