//! Kubernetes' lists library (`kubernetes.lists`, version 1): `isSorted`, `sum`, `min`, `max`,
//! `indexOf`, `lastIndexOf` on lists, and `includes`.
//!
//! Kubernetes declares these for lists of comparable (or summable) types and lets its type
//! checker pick the overload. Without a checker, they take any list here and ask each element at
//! run time: an element that cannot be compared (or added) is a "no such overload" error, as in
//! cel-go. `[].sum()` is the int `0`, the only answer possible without static types.

use std::cmp::Ordering;

use ::cel::common::types::{CelBool, CelInt, DYN_TYPE, LIST_TYPE};
use ::cel::common::value::{CowVal, Val};
use ::cel::{DeclarationError, Env, ExecutionError};

use super::{error, no_overload, nth, Args, Ret};

pub(crate) fn register(env: &mut Env) -> Result<(), DeclarationError> {
    env.add_member_overload(
        "isSorted",
        "list_is_sorted_bool",
        LIST_TYPE,
        vec![],
        is_sorted,
    )?;
    env.add_member_overload("sum", "list_sum", LIST_TYPE, vec![], sum)?;
    env.add_member_overload("min", "list_min", LIST_TYPE, vec![], min)?;
    env.add_member_overload("max", "list_max", LIST_TYPE, vec![], max)?;
    env.add_member_overload(
        "indexOf",
        "list_a_index_of_int",
        LIST_TYPE,
        vec![DYN_TYPE],
        index_of,
    )?;
    env.add_member_overload(
        "lastIndexOf",
        "list_a_last_index_of_int",
        LIST_TYPE,
        vec![DYN_TYPE],
        last_index_of,
    )?;
    env.add_member_overload(
        "includes",
        "list_includes_dyn_dyn",
        DYN_TYPE,
        vec![DYN_TYPE],
        includes,
    )?;
    Ok(())
}

/// The elements of the list receiver.
fn elements<'a, 'v>(
    args: &'a Args<'_, 'v>,
    function: &str,
) -> Result<Vec<&'a (dyn Val + 'v)>, ExecutionError> {
    let list = nth(args, 0, function)?;
    let iterable = list
        .as_iterable()
        .ok_or_else(|| no_overload(function, args))?;
    let mut items = iterable.iter();
    let mut out = Vec::new();
    while let Some(item) = items.next() {
        out.push(item);
    }
    Ok(out)
}

/// How `a` orders against `b`, or "no such overload" if they do not compare.
fn compare(
    a: &dyn Val,
    b: &dyn Val,
    function: &str,
    args: &Args<'_, '_>,
) -> Result<Ordering, ExecutionError> {
    a.as_comparer()
        .ok_or_else(|| no_overload(function, args))?
        .compare(b)
        .map_err(|_| no_overload(function, args))
}

fn is_sorted<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let items = elements(&args, "isSorted")?;
    for pair in items.windows(2) {
        if compare(pair[0], pair[1], "isSorted", &args)? == Ordering::Greater {
            return Ok(CowVal::owned(CelBool::from(false)));
        }
    }
    if let [only] = items.as_slice() {
        // a single element must still be comparable
        only.as_comparer()
            .ok_or_else(|| no_overload("isSorted", &args))?;
    }
    Ok(CowVal::owned(CelBool::from(true)))
}

fn sum<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let items = elements(&args, "sum")?;
    let Some((first, rest)) = items.split_first() else {
        return Ok(CowVal::owned(CelInt::from(0)));
    };
    let mut acc: Box<dyn Val + 'v> = first.clone_as_boxed();
    if acc.as_adder().is_none() {
        return Err(no_overload("sum", &args));
    }
    for item in rest {
        let next = {
            let adder = acc.as_adder().ok_or_else(|| no_overload("sum", &args))?;
            adder.add(*item)?.into_owned()
        };
        acc = next;
    }
    Ok(CowVal::Owned(acc))
}

/// The element that wins every comparison with `prefer`: the least for `min`, the greatest for
/// `max`.
fn extreme<'b, 'v>(args: Args<'b, 'v>, function: &str, prefer: Ordering) -> Ret<'b, 'v> {
    let items = elements(&args, function)?;
    let Some((first, rest)) = items.split_first() else {
        return Err(error(function, format!("{function} called on empty list")));
    };
    let mut best = *first;
    best.as_comparer()
        .ok_or_else(|| no_overload(function, &args))?;
    for item in rest {
        if compare(*item, best, function, &args)? == prefer {
            best = *item;
        }
    }
    Ok(CowVal::Owned(best.clone_as_boxed()))
}

fn min<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    extreme(args, "min", Ordering::Less)
}

fn max<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    extreme(args, "max", Ordering::Greater)
}

fn index_of<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let items = elements(&args, "indexOf")?;
    let needle = nth(&args, 1, "indexOf")?;
    let found = items.iter().position(|item| item.equals(needle));
    Ok(CowVal::owned(CelInt::from(found.map_or(-1, |i| i as i64))))
}

fn last_index_of<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let items = elements(&args, "lastIndexOf")?;
    let needle = nth(&args, 1, "lastIndexOf")?;
    let found = items.iter().rposition(|item| item.equals(needle));
    Ok(CowVal::owned(CelInt::from(found.map_or(-1, |i| i as i64))))
}

/// `list.includes(x)`: `x` is an element of the list; on anything else, `target == x`.
fn includes<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let target = nth(&args, 0, "includes")?;
    let needle = nth(&args, 1, "includes")?;
    let found = if target.get_type().name() == "list" {
        elements(&args, "includes")?
            .iter()
            .any(|item| item.equals(needle))
    } else {
        target.equals(needle)
    };
    Ok(CowVal::owned(CelBool::from(found)))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_error, assert_true, eval};
    use ::cel::Value;

    #[test]
    fn documented_examples() {
        assert_true(&[
            "[1, 2, 3].isSorted()",
            "['a', 'b', 'b', 'c'].isSorted()",
            "[2.0, 1.0].isSorted() == false",
            "[1].isSorted()",
            "[].isSorted()",
            "[1, 3].sum() == 4",
            "[1.0, 3.0].sum() == 4.0",
            "[duration('1m'), duration('1s')].sum() == duration('1m1s')",
            "[].sum() == 0",
            "[1, 3].min() == 1",
            "[1, 3].max() == 3",
            "[1].min() == 1",
            "([0] + []).min() == 0",
            "[1, 2, 2, 3].indexOf(2) == 1",
            "['a', 'b', 'b', 'c'].lastIndexOf('b') == 2",
            "[1.0].indexOf(1.1) == -1",
            "[].indexOf('string') == -1",
            "[1, 2, 3].includes(2)",
            "![1, 2, 3].includes(4)",
            "'model-a'.includes('model-a')",
            "!'model-a'.includes('model-b')",
        ]);
        assert_error(&[("[].min()", "min called on empty list")]);
    }

    #[test]
    fn more_types() {
        assert_true(&[
            "[1u, 2u].sum() == 3u",
            "['b', 'a'].min() == 'a'",
            "[b'a', b'b'].isSorted()",
            "[timestamp('2020-01-01T00:00:00Z'), timestamp('2021-01-01T00:00:00Z')].max() == timestamp('2021-01-01T00:00:00Z')",
            "[false, true].isSorted()",
            "[3, 1, 2].max() == 3",
            "[3, 1, 2].lastIndexOf(9) == -1",
        ]);
        // The string library's indexOf still answers on strings.
        assert_eq!(eval("'abcabc'.lastIndexOf('b')"), Ok(Value::Int(4)));
        assert_error(&[("[[1], [2]].min()", "no matching overload")]);
        assert_error(&[("[{}, {}].sum()", "no matching overload")]);
    }
}
