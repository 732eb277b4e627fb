//! The runtime cost limits the apiserver puts on admission CEL, so an author's expression cannot
//! pin a CPU or fill memory in Palisade any more than in a cluster: at most
//! [`EXPRESSION_COST_LIMIT`] per expression and [`CALL_COST_BUDGET`] per validation call (one
//! policy, binding and parameter against one request). Over either, the evaluation stops with the
//! apiserver's own words.
//!
//! The `cel` crate has no cost tracker, so work is charged where it can grow without bound, before
//! it is done: every comprehension (`all`, `exists`, `map`, `filter` …) is charged its range's size
//! times the size of its loop body when the range is known, and `lists.range(n)` is charged `n`
//! before it builds the list. Compile time rewrites those places into calls of [`CHARGE`]
//! ([`instrument`]); evaluation keeps the count per thread ([`Meter`]). Everything else an
//! expression does is bounded by its own size and its input's.

use std::cell::Cell;

use cel::common::ast::{CallExpr, EntryExpr, Expr, IdedExpr, LiteralValue};
use cel::common::types::{CelInt, CelList, CelMap, INT_TYPE, LIST_TYPE, MAP_TYPE};
use cel::common::value::CowVal;
use cel::{DeclarationError, Env, ExecutionError};

/// The apiserver's runtime limit for one expression (`PerCallLimit`).
pub const EXPRESSION_COST_LIMIT: u64 = 1_000_000;
/// The apiserver's runtime budget for one validation call of a ValidatingAdmissionPolicy
/// (`RuntimeCELCostBudget`), shared by all of its expressions.
pub const CALL_COST_BUDGET: u64 = 10_000_000;

/// The function charged places are rewritten to call: `palisade_charge(weight, value)` charges
/// `weight` times the size of `value` (a list, a map, or a count) and returns `value` unchanged.
pub const CHARGE: &str = "palisade_charge";

/// The apiserver's message for an expression over [`EXPRESSION_COST_LIMIT`].
pub const OVER_EXPRESSION_LIMIT: &str = "operation cancelled: actual cost limit exceeded";
/// The apiserver's message for a validation call over [`CALL_COST_BUDGET`].
pub const OVER_CALL_BUDGET: &str =
    "validation failed due to running out of cost budget, no further validation rules will be run";

/// What the expression being evaluated on this thread has spent, and may.
#[derive(Debug, Clone, Copy)]
pub struct Spent {
    used: u64,
    limit: u64,
    /// The limit is what is left of the call's budget, not the per-expression limit.
    by_call: bool,
}

thread_local! {
    static SPENT: Cell<Option<Spent>> = const { Cell::new(None) };
    /// What is left of the current validation call's budget (`None`: outside a call).
    static CALL_LEFT: Cell<Option<u64>> = const { Cell::new(None) };
}

/// The apiserver's runtime budget for the `matchConditions` of one policy and parameter
/// (`RuntimeCELCostBudgetMatchConditions`), apart from the validation call's.
pub const MATCH_CONDITIONS_BUDGET: u64 = 2_500_000;

/// Run `work` as one validation call: the expressions it evaluates share [`CALL_COST_BUDGET`].
pub fn with_call_budget<R>(work: impl FnOnce() -> R) -> R {
    with_budget(CALL_COST_BUDGET, work).0
}

/// Run `work` with `budget` shared by the expressions it evaluates; also returns what is left.
pub fn with_budget<R>(budget: u64, work: impl FnOnce() -> R) -> (R, u64) {
    let saved = CALL_LEFT.replace(Some(budget));
    let result = work();
    let left = CALL_LEFT.replace(saved).unwrap_or(0);
    (result, left)
}

/// What is left of the current validation call's budget on this thread (`None`: outside a call),
/// to carry work of the call to another thread ([`with_optional_budget`]) and back
/// ([`set_call_left`]).
pub fn call_left() -> Option<u64> {
    CALL_LEFT.get()
}

/// Set what is left of the current validation call's budget on this thread.
pub fn set_call_left(left: Option<u64>) {
    CALL_LEFT.set(left);
}

/// Run `work` with `budget` (none: outside a call) shared by the expressions it evaluates; also
/// returns what is left.
pub fn with_optional_budget<R>(budget: Option<u64>, work: impl FnOnce() -> R) -> (R, Option<u64>) {
    let saved = CALL_LEFT.replace(budget);
    let result = work();
    let left = CALL_LEFT.replace(saved);
    (result, left)
}

/// Charge the current validation call `used`, the cost of a value another call computed and this
/// one reuses (a composited variable several policies share): each call pays for it as if it had
/// computed it, as each policy does in the apiserver. When less is left, the apiserver's words for
/// a call out of budget, and nothing is left.
pub fn charge_call(used: u64) -> Result<(), &'static str> {
    let Some(left) = CALL_LEFT.get() else {
        return Ok(());
    };
    if used > left {
        CALL_LEFT.set(Some(0));
        return Err(OVER_CALL_BUDGET);
    }
    CALL_LEFT.set(Some(left - used));
    Ok(())
}

/// What [`Meter::enter`] replaced on the evaluating thread.
pub type Saved = (Option<Spent>, Option<u64>);

/// The accounting of one expression's evaluation, which may run on another thread than the
/// caller's: [`Meter::start`] on the caller's thread, [`Meter::enter`] / [`Meter::leave`] around
/// the evaluation on whichever thread runs it, [`Meter::finish`] back on the caller's thread.
#[derive(Debug, Clone, Copy)]
pub struct Meter {
    call_left: Option<u64>,
    spent: Spent,
}

impl Meter {
    pub fn start() -> Meter {
        let call_left = CALL_LEFT.get();
        let (limit, by_call) = match call_left {
            Some(left) if left < EXPRESSION_COST_LIMIT => (left, true),
            _ => (EXPRESSION_COST_LIMIT, false),
        };
        Meter {
            call_left,
            spent: Spent {
                used: 0,
                limit,
                by_call,
            },
        }
    }

    /// On the evaluating thread: count from zero; returns what to restore.
    pub fn enter(&self) -> Saved {
        (
            SPENT.replace(Some(self.spent)),
            CALL_LEFT.replace(self.call_left),
        )
    }

    /// On the evaluating thread: what was spent, restoring what [`Meter::enter`] replaced.
    pub fn leave(saved: Saved) -> u64 {
        let used = SPENT.get().map_or(0, |spent| spent.used);
        SPENT.set(saved.0);
        CALL_LEFT.set(saved.1);
        used
    }

    /// On the caller's thread: charge what the expression spent to the call, and to the
    /// expression that is evaluating this one, if any (a composited variable is evaluated inside
    /// the expression that first uses it, and counts there, as in the apiserver).
    pub fn finish(self, used: u64) {
        if let Some(left) = self.call_left {
            CALL_LEFT.set(Some(left.saturating_sub(used)));
        }
        if let Some(mut outer) = SPENT.get() {
            outer.used = outer.used.saturating_add(used);
            SPENT.set(Some(outer));
        }
    }
}

/// Charge `cost` to the expression being evaluated; an error once it is over its limit.
fn charge(cost: u64) -> Result<(), ExecutionError> {
    let Some(mut spent) = SPENT.get() else {
        return Ok(());
    };
    spent.used = spent.used.saturating_add(cost);
    SPENT.set(Some(spent));
    if spent.used > spent.limit {
        let message = if spent.by_call {
            OVER_CALL_BUDGET
        } else {
            OVER_EXPRESSION_LIMIT
        };
        return Err(ExecutionError::function_error(
            super::RAW_ERROR,
            message.to_owned(),
        ));
    }
    Ok(())
}

/// `palisade_charge(weight, value)`.
fn charged<'b, 'v>(mut args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let value = args
        .pop()
        .ok_or_else(|| ExecutionError::function_error(CHARGE, "missing argument"))?;
    let weight = args
        .first()
        .and_then(|w| w.downcast_ref::<CelInt>())
        .map_or(1, |w| u64::try_from(*w.inner()).unwrap_or(1));
    let size = if let Some(list) = value.downcast_ref::<CelList>() {
        list.inner().len() as u64
    } else if let Some(map) = value.downcast_ref::<CelMap>() {
        map.len() as u64
    } else if let Some(count) = value.downcast_ref::<CelInt>() {
        u64::try_from(*count.inner()).unwrap_or(0)
    } else {
        0
    };
    charge(weight.saturating_mul(size))?;
    Ok(value)
}

/// Declare [`CHARGE`] on `env`.
pub fn register(env: &mut Env) -> Result<(), DeclarationError> {
    env.add_overload(
        CHARGE,
        "palisade_charge_list",
        vec![INT_TYPE, LIST_TYPE],
        charged,
    )?;
    env.add_overload(
        CHARGE,
        "palisade_charge_map",
        vec![INT_TYPE, MAP_TYPE],
        charged,
    )?;
    env.add_overload(
        CHARGE,
        "palisade_charge_int",
        vec![INT_TYPE, INT_TYPE],
        charged,
    )?;
    Ok(())
}

/// How many nodes `expr` has: the weight of evaluating it once.
fn nodes(expr: &IdedExpr) -> u64 {
    let mut count = 0u64;
    let mut stack = vec![expr];
    while let Some(expr) = stack.pop() {
        count += 1;
        match &expr.expr {
            Expr::Call(call) => {
                stack.extend(call.target.as_deref());
                stack.extend(call.args.iter());
            }
            Expr::Comprehension(c) => {
                stack.extend([
                    &c.iter_range,
                    &c.accu_init,
                    &c.loop_cond,
                    &c.loop_step,
                    &c.result,
                ]);
            }
            Expr::Select(select) => stack.push(&select.operand),
            Expr::List(list) => stack.extend(list.elements.iter()),
            Expr::Map(map) => {
                for entry in &map.entries {
                    if let EntryExpr::MapEntry(entry) = &entry.expr {
                        stack.extend([&entry.key, &entry.value]);
                    }
                }
            }
            Expr::Struct(structure) => {
                for entry in &structure.entries {
                    if let EntryExpr::StructField(field) = &entry.expr {
                        stack.push(&field.value);
                    }
                }
            }
            Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
        }
    }
    count
}

/// `expr` wrapped as `palisade_charge(weight, expr)`, keeping its id (errors point at it).
fn wrap(expr: &mut IdedExpr, weight: u64) {
    let id = expr.id;
    let inner = std::mem::replace(
        expr,
        IdedExpr {
            id,
            expr: Expr::Unspecified,
        },
    );
    *expr = IdedExpr {
        id,
        expr: Expr::Call(CallExpr {
            func_name: CHARGE.to_owned(),
            target: None,
            args: vec![
                IdedExpr {
                    id,
                    expr: Expr::Literal(LiteralValue::Int(
                        i64::try_from(weight).unwrap_or(i64::MAX).into(),
                    )),
                },
                inner,
            ],
        }),
    };
}

/// Rewrite the places of `expr` where work can grow without bound into charged ones (see the
/// module documentation). Iterative, so deep expressions cannot overflow the stack.
pub fn instrument(expr: &mut IdedExpr) {
    let mut stack = vec![expr];
    while let Some(expr) = stack.pop() {
        match &mut expr.expr {
            Expr::Call(call) => {
                // The parser leaves `lists.range(n)` as `range` called on the identifier `lists`.
                let on_lists = matches!(
                    call.target.as_deref().map(|t| &t.expr),
                    Some(Expr::Ident(name)) if name == "lists"
                );
                let range = (call.func_name == "range" && on_lists)
                    || (call.func_name == "lists.range" && call.target.is_none());
                if range && call.args.len() == 1 {
                    wrap(&mut call.args[0], 1);
                }
                if let Some(target) = call.target.as_deref_mut() {
                    stack.push(target);
                }
                stack.extend(call.args.iter_mut());
            }
            Expr::Comprehension(c) => {
                let weight = (nodes(&c.loop_cond) + nodes(&c.loop_step)).max(1);
                wrap(&mut c.iter_range, weight);
                stack.extend([
                    &mut c.iter_range,
                    &mut c.accu_init,
                    &mut c.loop_cond,
                    &mut c.loop_step,
                    &mut c.result,
                ]);
            }
            Expr::Select(select) => stack.push(&mut select.operand),
            Expr::List(list) => stack.extend(list.elements.iter_mut()),
            Expr::Map(map) => {
                for entry in &mut map.entries {
                    if let EntryExpr::MapEntry(entry) = &mut entry.expr {
                        stack.extend([&mut entry.key, &mut entry.value]);
                    }
                }
            }
            Expr::Struct(structure) => {
                for entry in &mut structure.entries {
                    if let EntryExpr::StructField(field) = &mut entry.expr {
                        stack.push(&mut field.value);
                    }
                }
            }
            Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
        }
    }
}
