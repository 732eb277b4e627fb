//! cel-go's two-variable comprehensions (`ext.TwoVarComprehensions()`, in Kubernetes since
//! 1.32): `all(k, v, p)`, `exists(k, v, p)`, `existsOne(k, v, p)` (also `exists_one`),
//! `transformList(k, v, [filter,] e)`, `transformMap(k, v, [filter,] e)` and
//! `transformMapEntry(k, v, [filter,] e)`, on lists (index, element) and maps (key, value).
//!
//! The crate's interpreter ignores a comprehension's second variable, so these macros expand to
//! one-variable comprehensions over the (key, value) pairs of the range, given by the hidden
//! function `@k8s_pairs`; the two names are then bound to `pair[0]` and `pair[1]` with empty
//! comprehensions, the way cel-go's `cel.bind` does. New entries of `transformMap` and
//! `transformMapEntry` are added by the hidden functions `@k8s_map_insert` and `@k8s_map_merge`;
//! the latter rejects a key already present, as cel-go does.
//!
//! A map's pairs come in the crate's map order, which is not the insertion order cel-go keeps:
//! `transformList` over a map may order its result differently.

use std::collections::HashMap;
use std::sync::Arc;

use ::cel::common::ast::{
    operators, CallExpr, ComprehensionExpr, Expr, IdedExpr, ListExpr, LiteralValue, MapExpr,
};
use ::cel::common::types::{CelBool, CelInt, DYN_TYPE, LIST_TYPE, MAP_TYPE};
use ::cel::objects::Key;
use ::cel::parser::{Macro, MacroExprHelper, ParseError};
use ::cel::{DeclarationError, Env, ExecutionError, Value};

use super::{error, no_overload, nth, ret, Args, Ret};

const PAIRS: &str = "@k8s_pairs";
const MAP_INSERT: &str = "@k8s_map_insert";
const MAP_MERGE: &str = "@k8s_map_merge";
const PAIR_VAR: &str = "@k8s_pair";
const ACCU: &str = "@result";

pub(crate) fn register(env: &mut Env) -> Result<(), DeclarationError> {
    env.add_overload(PAIRS, "k8s_pairs_list", vec![LIST_TYPE], pairs)?;
    env.add_overload(PAIRS, "k8s_pairs_map", vec![MAP_TYPE], pairs)?;
    env.add_overload(
        MAP_INSERT,
        "k8s_map_insert",
        vec![MAP_TYPE, DYN_TYPE, DYN_TYPE],
        map_insert,
    )?;
    env.add_overload(
        MAP_MERGE,
        "k8s_map_merge",
        vec![MAP_TYPE, MAP_TYPE],
        map_merge,
    )?;
    env.add_macro(Macro::receiver("all", 3, |h, t, a| {
        expand(h, t, a, Kind::All)
    }))?;
    env.add_macro(Macro::receiver("exists", 3, |h, t, a| {
        expand(h, t, a, Kind::Exists)
    }))?;
    env.add_macro(Macro::receiver("existsOne", 3, |h, t, a| {
        expand(h, t, a, Kind::ExistsOne)
    }))?;
    env.add_macro(Macro::receiver("exists_one", 3, |h, t, a| {
        expand(h, t, a, Kind::ExistsOne)
    }))?;
    for arity in [3, 4] {
        env.add_macro(Macro::receiver("transformList", arity, |h, t, a| {
            expand(h, t, a, Kind::TransformList)
        }))?;
        env.add_macro(Macro::receiver("transformMap", arity, |h, t, a| {
            expand(h, t, a, Kind::TransformMap)
        }))?;
        env.add_macro(Macro::receiver("transformMapEntry", arity, |h, t, a| {
            expand(h, t, a, Kind::TransformMapEntry)
        }))?;
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    All,
    Exists,
    ExistsOne,
    TransformList,
    TransformMap,
    TransformMapEntry,
}

fn call(h: &mut MacroExprHelper<'_>, name: &str, args: Vec<IdedExpr>) -> IdedExpr {
    h.next_expr(Expr::Call(CallExpr {
        func_name: name.to_owned(),
        target: None,
        args,
    }))
}

fn ident(h: &mut MacroExprHelper<'_>, name: &str) -> IdedExpr {
    h.next_expr(Expr::Ident(name.to_owned()))
}

fn literal(h: &mut MacroExprHelper<'_>, value: LiteralValue) -> IdedExpr {
    h.next_expr(Expr::Literal(value))
}

/// `body` with `name` bound to `value`: an empty comprehension whose accumulator is `name`.
fn bind(h: &mut MacroExprHelper<'_>, name: String, value: IdedExpr, body: IdedExpr) -> IdedExpr {
    let empty = h.next_expr(Expr::List(ListExpr::new(Vec::new())));
    let never = literal(h, LiteralValue::Boolean(CelBool::from(false)));
    let step = ident(h, &name);
    h.next_expr(Expr::Comprehension(Box::new(ComprehensionExpr {
        iter_range: empty,
        iter_var: "#unused".to_owned(),
        iter_var2: None,
        accu_var: name,
        accu_init: value,
        loop_cond: never,
        loop_step: step,
        result: body,
    })))
}

/// `expr` with the two names bound to the current pair. Only the macro's own arguments are
/// wrapped, so the loop step keeps the shapes the interpreter recognises (`@result && p` folds
/// errors as cel-go does, `@result + [e]` appends in place).
fn bound(h: &mut MacroExprHelper<'_>, key: &str, value: &str, expr: IdedExpr) -> IdedExpr {
    let second = pair_part(h, 1);
    let inner = bind(h, value.to_owned(), second, expr);
    let first = pair_part(h, 0);
    bind(h, key.to_owned(), first, inner)
}

/// `@k8s_pair[i]`.
fn pair_part(h: &mut MacroExprHelper<'_>, i: i64) -> IdedExpr {
    let pair = ident(h, PAIR_VAR);
    let index = literal(h, LiteralValue::Int(CelInt::from(i)));
    call(h, operators::INDEX, vec![pair, index])
}

fn simple_name(h: &mut MacroExprHelper<'_>, expr: &IdedExpr) -> Result<String, ParseError> {
    match &expr.expr {
        Expr::Ident(name) => Ok(name.clone()),
        _ => Err(h.new_error(expr.id, "argument must be a simple name")),
    }
}

fn expand(
    h: &mut MacroExprHelper<'_>,
    target: &mut Option<IdedExpr>,
    args: &mut Vec<IdedExpr>,
    kind: Kind,
) -> Result<Option<IdedExpr>, ParseError> {
    let Some(range) = target.take() else {
        return Ok(None);
    };
    if args.len() < 3 {
        return Ok(None);
    }
    let key = simple_name(h, &args[0])?;
    let value = simple_name(h, &args[1])?;
    if key == value {
        return Err(h.new_error(args[1].id, "duplicate variable name"));
    }
    let mut rest: Vec<IdedExpr> = args.drain(2..).collect();
    let Some(body) = rest.pop() else {
        return Ok(None);
    };
    let body = bound(h, &key, &value, body);
    let filter = rest.pop().map(|f| bound(h, &key, &value, f));

    let accu = |h: &mut MacroExprHelper<'_>| ident(h, ACCU);
    let (init, cond, step, result) = match kind {
        Kind::All | Kind::Exists => {
            let all = kind == Kind::All;
            let init = literal(h, LiteralValue::Boolean(CelBool::from(all)));
            let a = accu(h);
            let test = if all {
                a
            } else {
                call(h, operators::LOGICAL_NOT, vec![a])
            };
            let cond = call(h, operators::NOT_STRICTLY_FALSE, vec![test]);
            let a = accu(h);
            let op = if all {
                operators::LOGICAL_AND
            } else {
                operators::LOGICAL_OR
            };
            let step = call(h, op, vec![a, body]);
            (init, cond, step, accu(h))
        }
        Kind::ExistsOne => {
            let init = literal(h, LiteralValue::Int(CelInt::from(0)));
            let cond = literal(h, LiteralValue::Boolean(CelBool::from(true)));
            let a = accu(h);
            let one = literal(h, LiteralValue::Int(CelInt::from(1)));
            let plus = call(h, operators::ADD, vec![a, one]);
            let a = accu(h);
            let step = call(h, operators::CONDITIONAL, vec![body, plus, a]);
            let a = accu(h);
            let one = literal(h, LiteralValue::Int(CelInt::from(1)));
            let result = call(h, operators::EQUALS, vec![a, one]);
            (init, cond, step, result)
        }
        Kind::TransformList | Kind::TransformMap | Kind::TransformMapEntry => {
            let init = if kind == Kind::TransformList {
                h.next_expr(Expr::List(ListExpr::new(Vec::new())))
            } else {
                h.next_expr(Expr::Map(MapExpr {
                    entries: Vec::new(),
                }))
            };
            let cond = literal(h, LiteralValue::Boolean(CelBool::from(true)));
            let a = accu(h);
            let grown = match kind {
                Kind::TransformList => {
                    let one = h.next_expr(Expr::List(ListExpr::new(vec![body])));
                    call(h, operators::ADD, vec![a, one])
                }
                Kind::TransformMap => {
                    let k = pair_part(h, 0);
                    call(h, MAP_INSERT, vec![a, k, body])
                }
                _ => call(h, MAP_MERGE, vec![a, body]),
            };
            let step = match filter {
                Some(filter) => {
                    let a = accu(h);
                    call(h, operators::CONDITIONAL, vec![filter, grown, a])
                }
                None => grown,
            };
            (init, cond, step, accu(h))
        }
    };
    let range = call(h, PAIRS, vec![range]);
    Ok(Some(h.next_expr(Expr::Comprehension(Box::new(
        ComprehensionExpr {
            iter_range: range,
            iter_var: PAIR_VAR.to_owned(),
            iter_var2: None,
            accu_var: ACCU.to_owned(),
            accu_init: init,
            loop_cond: cond,
            loop_step: step,
            result,
        },
    )))))
}

/// The (index, element) pairs of a list, or the (key, value) pairs of a map, as two-element
/// lists.
fn pairs<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let range = Value::try_from(nth(&args, 0, PAIRS)?)?;
    let pair = |k: Value, v: Value| Value::List(Arc::new(vec![k, v]));
    let out: Vec<Value> = match range {
        Value::List(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| pair(Value::Int(i as i64), v.clone()))
            .collect(),
        Value::Map(map) => map
            .map
            .iter()
            .map(|(k, v)| pair(Value::from(k), v.clone()))
            .collect(),
        _ => return Err(no_overload(PAIRS, &args)),
    };
    ret(Value::List(Arc::new(out)))
}

fn key_of(value: Value) -> Result<Key, ExecutionError> {
    value
        .try_into()
        .map_err(|v: Value| ExecutionError::unsupported_key_type(v))
}

/// The map with one more entry.
fn map_insert<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let Value::Map(map) = Value::try_from(nth(&args, 0, MAP_INSERT)?)? else {
        return Err(no_overload(MAP_INSERT, &args));
    };
    let key = key_of(Value::try_from(nth(&args, 1, MAP_INSERT)?)?)?;
    let value = Value::try_from(nth(&args, 2, MAP_INSERT)?)?;
    let mut entries: HashMap<Key, Value> = (*map.map).clone();
    entries.insert(key, value);
    ret(Value::Map(::cel::objects::Map {
        map: Arc::new(entries),
    }))
}

/// The union of two maps; a key present in both is an error.
fn map_merge<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let (Value::Map(into), Value::Map(from)) = (
        Value::try_from(nth(&args, 0, MAP_MERGE)?)?,
        Value::try_from(nth(&args, 1, MAP_MERGE)?)?,
    ) else {
        return Err(no_overload(MAP_MERGE, &args));
    };
    let mut entries: HashMap<Key, Value> = (*into.map).clone();
    for (k, v) in from.map.iter() {
        let clash = entries
            .keys()
            .any(|existing| Value::from(existing) == Value::from(k));
        if clash {
            return Err(error(
                "transformMapEntry",
                format!("insert failed: key {k} already exists"),
            ));
        }
        entries.insert(k.clone(), v.clone());
    }
    ret(Value::Map(::cel::objects::Map {
        map: Arc::new(entries),
    }))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_error, assert_true};

    #[test]
    fn documented_examples() {
        assert_true(&[
            "[1, 2, 3].all(i, j, i < j)",
            "{'hello': 'world', 'taco': 'taco'}.all(k, v, k != v) == false",
            "{'h': ['hello', 'hi'], 'j': ['joke', 'jog']}.all(k, vals, vals.all(v, v.startsWith(k)))",
            "{'greeting': 'hello', 'farewell': 'goodbye'}.exists(k, v, k.startsWith('good') || v.endsWith('bye'))",
            "[1, 2, 4, 8, 16].exists(i, v, v == 1024 && i == 10) == false",
            "[1, 2, 1, 3, 1, 4].existsOne(i, v, i == 1 || v == 1) == false",
            "[1, 1, 2, 2, 3, 3].existsOne(i, v, i == 2 && v == 2)",
            "{'i': 0, 'j': 1, 'k': 2}.existsOne(i, v, i == 'l' || v == 1)",
            "[1, 2, 3].transformList(indexVar, valueVar, (indexVar * valueVar) + valueVar) == [1, 4, 9]",
            "[1, 2, 3].transformList(indexVar, valueVar, indexVar % 2 == 0, (indexVar * valueVar) + valueVar) == [1, 9]",
            "{'greeting': 'hello'}.transformList(k, _, k) == ['greeting']",
            "{'greeting': 'hello'}.transformList(_, v, v) == ['hello']",
            "[1, 2, 3].transformMap(indexVar, valueVar, (indexVar * valueVar) + valueVar) == {0: 1, 1: 4, 2: 9}",
            "[1, 2, 3].transformMap(indexVar, valueVar, indexVar % 2 == 0, (indexVar * valueVar) + valueVar) == {0: 1, 2: 9}",
            "{'greeting': 'hello'}.transformMap(k, v, v + '!') == {'greeting': 'hello!'}",
            "{'greeting': 'hello'}.transformMapEntry(keyVar, valueVar, {valueVar: keyVar}) == {'hello': 'greeting'}",
            "[1, 2, 3].transformMapEntry(indexVar, valueVar, {valueVar: indexVar}) == {1: 0, 2: 1, 3: 2}",
            "['a', 'b'].exists_one(i, v, v == 'b')",
        ]);
        assert_error(&[(
            "{'greeting': 'aloha', 'farewell': 'aloha'}.transformMapEntry(keyVar, valueVar, {valueVar: keyVar})",
            "already exists",
        )]);
    }

    #[test]
    fn one_variable_forms_still_work() {
        assert_true(&[
            "[1, 2, 3].all(x, x > 0)",
            "[1, 2, 3].exists(x, x == 2)",
            "[1, 2, 3].map(x, x * 2) == [2, 4, 6]",
        ]);
    }
}
