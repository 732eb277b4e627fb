//! `numbers.range` and `numbers.range_step`, with a budget: a range is built in memory whole, so a
//! policy asking for `numbers.range(0, 100000000000)` would ask for terabytes at once (an
//! allocation failure ends the process, it cannot be caught). Ranges up to [`MAX_ELEMENTS`] are
//! regorus's own; a larger one is an evaluation error, in every mode.

use super::{regorus_builtin, type_name, Builtin, OVER_BUDGET};
use regorus::Value;

pub(super) const BUILTINS: &[(&str, u8, Builtin)] = &[
    ("numbers.range", 2, range),
    ("numbers.range_step", 3, range_step),
];

/// The most elements one range may have.
pub const MAX_ELEMENTS: u128 = 1_000_000;

fn integer(args: &[Value], index: usize) -> Option<i128> {
    match args.get(index) {
        Some(Value::Number(n)) if n.is_integer() => n.as_i64().map(i128::from),
        _ => None,
    }
}

/// Refuses a range of more than [`MAX_ELEMENTS`] before it is built.
fn within_budget(name: &str, from: i128, to: i128, step: i128) -> Result<(), String> {
    let elements = from.abs_diff(to) / step.unsigned_abs().max(1) + 1;
    if elements > MAX_ELEMENTS {
        return Err(format!(
            "{OVER_BUDGET}{name}: {elements} elements is over the budget of {MAX_ELEMENTS} per range"
        ));
    }
    Ok(())
}

fn range(args: &[Value]) -> Result<Value, String> {
    if let (Some(from), Some(to)) = (integer(args, 0), integer(args, 1)) {
        within_budget("numbers.range", from, to, 1)?;
    } else if let Some(other) = args.iter().find(|a| !matches!(a, Value::Number(_))) {
        return Err(format!(
            "operand must be number but got {}",
            type_name(other)
        ));
    }
    regorus_builtin("numbers.range", args)
}

fn range_step(args: &[Value]) -> Result<Value, String> {
    if let (Some(from), Some(to), Some(step)) =
        (integer(args, 0), integer(args, 1), integer(args, 2))
    {
        within_budget("numbers.range_step", from, to, step)?;
    }
    regorus_builtin("numbers.range_step", args)
}
