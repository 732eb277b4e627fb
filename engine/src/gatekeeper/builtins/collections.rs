//! `array.flatten`.

use super::{type_name, Builtin};
use regorus::Value;

pub(super) const BUILTINS: &[(&str, u8, Builtin)] = &[("array.flatten", 1, flatten)];

/// One level of nesting removed: every array element that is itself an array is spliced in.
fn flatten(args: &[Value]) -> Result<Value, String> {
    let Some(Value::Array(items)) = args.first() else {
        return Err(format!(
            "operand 1 must be array but got {}",
            args.first().map_or("nothing", type_name)
        ));
    };
    let mut flat = Vec::with_capacity(items.len());
    for item in items.iter() {
        match item {
            Value::Array(inner) => flat.extend(inner.iter().cloned()),
            other => flat.push(other.clone()),
        }
    }
    Ok(Value::from(flat))
}
