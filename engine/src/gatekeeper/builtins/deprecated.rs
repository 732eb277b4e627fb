//! Builtins OPA deprecated but still runs for Rego v0 modules, which is what most Gatekeeper
//! templates are: `re_match`, `set_diff`, `all`, `any` and the `cast_*` family.

use std::collections::BTreeSet;

use super::{string_arg, type_name, Builtin};
use crate::gatekeeper::rego::over_budget;
use regorus::value::Set;
use regorus::{LimitError, Value};

pub(super) const BUILTINS: &[(&str, u8, Builtin)] = &[
    ("re_match", 2, re_match),
    ("set_diff", 2, set_diff),
    ("all", 1, all),
    ("any", 1, any),
    ("cast_array", 1, cast_array),
    ("cast_set", 1, cast_set),
    ("cast_string", 1, cast_string),
    ("cast_boolean", 1, cast_boolean),
    ("cast_null", 1, cast_null),
    ("cast_object", 1, cast_object),
];

/// `regex.match` under its old name, with the same budget: a pattern that compiles past
/// regorus's limit for `regex.match` ends the evaluation in every mode, an invalid one is a
/// builtin error (undefined unless strict). Each pattern is compiled once per process.
fn re_match(args: &[Value]) -> Result<Value, String> {
    let pattern = string_arg(args, 0)?;
    let value = string_arg(args, 1)?;
    let regex = crate::patterns::REGO
        .compiled(pattern)
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(limit) => {
                over_budget(&LimitError::RegexSizeLimitExceeded { limit })
            }
            e => format!("invalid pattern: {e}"),
        })?;
    Ok(Value::from(regex.is_match(value)))
}

fn set_of(args: &[Value], index: usize) -> Result<&Set, String> {
    match args.get(index) {
        Some(Value::Set(set)) => Ok(set.as_ref()),
        other => Err(format!(
            "operand {} must be set but got {}",
            index + 1,
            other.map_or("nothing", type_name)
        )),
    }
}

/// `a - b` for sets.
fn set_diff(args: &[Value]) -> Result<Value, String> {
    let (a, b) = (set_of(args, 0)?, set_of(args, 1)?);
    Ok(a.difference(b).into_value())
}

/// The elements of an array or set.
fn elements(args: &[Value]) -> Result<Vec<&Value>, String> {
    match args.first() {
        Some(Value::Array(items)) => Ok(items.iter().collect()),
        Some(Value::Set(items)) => Ok(items.iter().collect()),
        other => Err(format!(
            "operand 1 must be one of {{array, set}} but got {}",
            other.map_or("nothing", type_name)
        )),
    }
}

/// Every element is `true`.
fn all(args: &[Value]) -> Result<Value, String> {
    Ok(Value::from(
        elements(args)?.iter().all(|v| **v == Value::Bool(true)),
    ))
}

/// Some element is `true`.
fn any(args: &[Value]) -> Result<Value, String> {
    Ok(Value::from(
        elements(args)?.iter().any(|v| **v == Value::Bool(true)),
    ))
}

fn cast_array(args: &[Value]) -> Result<Value, String> {
    match args.first() {
        Some(v @ Value::Array(_)) => Ok(v.clone()),
        Some(Value::Set(items)) => Ok(Value::from(items.iter().cloned().collect::<Vec<_>>())),
        other => Err(format!(
            "operand 1 must be one of {{array, set}} but got {}",
            other.map_or("nothing", type_name)
        )),
    }
}

fn cast_set(args: &[Value]) -> Result<Value, String> {
    match args.first() {
        Some(v @ Value::Set(_)) => Ok(v.clone()),
        Some(Value::Array(items)) => {
            Ok(Value::from(items.iter().cloned().collect::<BTreeSet<_>>()))
        }
        other => Err(format!(
            "operand 1 must be one of {{array, set}} but got {}",
            other.map_or("nothing", type_name)
        )),
    }
}

/// The argument itself when it has the wanted type, else a type error.
fn same_type(args: &[Value], wanted: &str) -> Result<Value, String> {
    match args.first() {
        Some(v) if type_name(v) == wanted => Ok(v.clone()),
        other => Err(format!(
            "operand 1 must be {wanted} but got {}",
            other.map_or("nothing", type_name)
        )),
    }
}

fn cast_string(args: &[Value]) -> Result<Value, String> {
    same_type(args, "string")
}

fn cast_boolean(args: &[Value]) -> Result<Value, String> {
    same_type(args, "boolean")
}

fn cast_null(args: &[Value]) -> Result<Value, String> {
    same_type(args, "null")
}

fn cast_object(args: &[Value]) -> Result<Value, String> {
    same_type(args, "object")
}

#[cfg(test)]
mod tests {
    use super::super::OVER_BUDGET;
    use super::*;

    #[test]
    fn re_match_has_the_budget_of_regex_match() {
        let call = |pattern: &str| re_match(&[Value::from(pattern), Value::from("abc")]);
        assert_eq!(call("^a"), Ok(Value::from(true)));
        assert_eq!(call("^b"), Ok(Value::from(false)));
        let over = call(r"\w{10}").unwrap_err();
        assert!(over.starts_with(OVER_BUDGET), "{over}");
        assert!(over.ends_with("more than 102400 bytes"), "{over}");
        let invalid = call("(").unwrap_err();
        assert!(invalid.starts_with("invalid pattern"), "{invalid}");
    }
}
