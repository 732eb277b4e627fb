//! cel-go's sets extension (`ext.Sets()`, in Kubernetes since 1.29): `sets.contains`,
//! `sets.equivalent` and `sets.intersects`, on lists seen as sets. Elements are compared with
//! CEL equality, so `sets.contains([1], [1.0])` holds.

use ::cel::common::types::{CelBool, LIST_TYPE};
use ::cel::common::value::{CowVal, Val};
use ::cel::{DeclarationError, Env, ExecutionError};

use super::{no_overload, nth, Args, Ret};

pub(crate) fn register(env: &mut Env) -> Result<(), DeclarationError> {
    let lists = || vec![LIST_TYPE, LIST_TYPE];
    env.add_overload(
        "sets.contains",
        "list_sets_contains_list",
        lists(),
        contains,
    )?;
    env.add_overload(
        "sets.equivalent",
        "list_sets_equivalent_list",
        lists(),
        equivalent,
    )?;
    env.add_overload(
        "sets.intersects",
        "list_sets_intersects_list",
        lists(),
        intersects,
    )?;
    Ok(())
}

/// The elements of the `i`th argument.
fn items<'a, 'v>(
    args: &'a Args<'_, 'v>,
    i: usize,
    function: &str,
) -> Result<Vec<&'a (dyn Val + 'v)>, ExecutionError> {
    let list = nth(args, i, function)?;
    let mut iter = list
        .as_iterable()
        .ok_or_else(|| no_overload(function, args))?
        .iter();
    let mut out = Vec::new();
    while let Some(item) = iter.next() {
        out.push(item);
    }
    Ok(out)
}

/// Every element of `sub` is in `of`.
fn subset(sub: &[&dyn Val], of: &[&dyn Val]) -> bool {
    sub.iter().all(|x| of.iter().any(|y| y.equals(*x)))
}

fn contains<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let a = items(&args, 0, "sets.contains")?;
    let b = items(&args, 1, "sets.contains")?;
    Ok(CowVal::owned(CelBool::from(subset(&b, &a))))
}

fn equivalent<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let a = items(&args, 0, "sets.equivalent")?;
    let b = items(&args, 1, "sets.equivalent")?;
    Ok(CowVal::owned(CelBool::from(
        subset(&a, &b) && subset(&b, &a),
    )))
}

fn intersects<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let a = items(&args, 0, "sets.intersects")?;
    let b = items(&args, 1, "sets.intersects")?;
    let any = a.iter().any(|x| b.iter().any(|y| y.equals(*x)));
    Ok(CowVal::owned(CelBool::from(any)))
}

#[cfg(test)]
mod tests {
    use super::super::testing::assert_true;

    #[test]
    fn documented_examples() {
        // From cel-go's ext README (sets section).
        assert_true(&[
            "sets.contains([], [])",
            "sets.contains([1, 2, 3, 4], [2, 3])",
            "sets.contains([1, 2.0, 3u], [1.0, 2u, 3])",
            "!sets.contains([1, 2], [2, 3])",
            "sets.equivalent([], [])",
            "sets.equivalent([1], [1, 1])",
            "sets.equivalent([1], [1u, 1.0])",
            "sets.equivalent([1, 2, 3], [3u, 2.0, 1])",
            "!sets.equivalent([2, 1], [2, 2])",
            "!sets.equivalent([1, 2, 3], [1, 2])",
            "sets.intersects([1], [1])",
            "sets.intersects([1], [1.0, 2])",
            "!sets.intersects([1], [])",
            "!sets.intersects([1], [2, 3])",
            "sets.intersects([[1], [2, 3]], [[1, 2], [2, 3.0]])",
        ]);
    }
}
