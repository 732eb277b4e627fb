//! `yaml.unmarshal` and `yaml.is_valid` read with the alias budget of policy files.
//! `json.is_valid` and `yaml.is_valid`: OPA answers false for any argument that is not a valid
//! document in a string, where regorus fails on a non-string. `json.match_schema`: OPA answers
//! `[true, []]` for a match, regorus `[true, null]`.

use super::Builtin;
use regorus::Value;

pub(super) const BUILTINS: &[(&str, u8, Builtin)] = &[
    ("json.is_valid", 1, json_is_valid),
    ("yaml.is_valid", 1, yaml_is_valid),
    ("yaml.unmarshal", 1, yaml_unmarshal),
    ("json.match_schema", 2, match_schema),
];

fn match_schema(args: &[Value]) -> Result<Value, String> {
    let answer = super::regorus_builtin("json.match_schema", args)?;
    Ok(match &answer {
        Value::Array(pair)
            if pair.len() == 2 && matches!(pair.get(1), Some(Value::Null | Value::Undefined)) =>
        {
            Value::from(vec![pair[0].clone(), Value::new_array()])
        }
        _ => answer,
    })
}

fn json_is_valid(args: &[Value]) -> Result<Value, String> {
    Ok(Value::from(match args.first() {
        Some(Value::String(text)) => serde_json::from_str::<serde_json::Value>(text).is_ok(),
        _ => false,
    }))
}

/// YAML in a value is read with the same alias budget as policy files
/// ([`crate::source::read_yaml`]): an object's annotation cannot expand into gigabytes.
fn yaml_is_valid(args: &[Value]) -> Result<Value, String> {
    Ok(Value::from(match args.first() {
        Some(Value::String(text)) => crate::source::read_yaml(text).is_ok(),
        _ => false,
    }))
}

fn yaml_unmarshal(args: &[Value]) -> Result<Value, String> {
    let text = super::string_arg(args, 0)?;
    let value = crate::source::read_yaml(text).map_err(|error| {
        if error.contains("through aliases") {
            format!("{}yaml.unmarshal: {error}", super::OVER_BUDGET)
        } else {
            error
        }
    })?;
    let json = serde_json::to_string(&value).map_err(|e| e.to_string())?;
    Value::from_json_str(&json).map_err(|e| e.to_string())
}
