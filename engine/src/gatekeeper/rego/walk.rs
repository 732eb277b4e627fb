//! Walking a parsed Rego module: every statement and every expression, with an explicit stack for
//! expressions so deep nesting cannot overflow the thread's stack.

use regorus::unstable::{Expr, Literal, LiteralStmt, Query, Rule, RuleBody, RuleHead};

/// What the walk visits.
#[derive(Clone, Copy)]
pub(super) enum Node<'a> {
    /// A statement of a query (a rule body, a comprehension, an `every`), before its expressions.
    Stmt(&'a LiteralStmt),
    Expr(&'a Expr),
}

/// The dotted path of a reference made of names (`data.lib.f`, `strings.any_prefix_match`), or
/// `None` for anything else.
/// The first name of a reference (`strings` in `strings.count`), where a call's text begins.
pub(super) fn leftmost(mut expr: &Expr) -> &Expr {
    while let Expr::RefDot { refr, .. } | Expr::RefBrack { refr, .. } = expr {
        expr = refr;
    }
    expr
}

pub(super) fn path_of(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Var { span, .. } => Some(span.text().to_owned()),
        Expr::RefDot { refr, field, .. } => Some(format!("{}.{}", path_of(refr)?, field.0.text())),
        Expr::RefBrack { refr, index, .. } => match index.as_ref() {
            Expr::String { value, .. } => {
                Some(format!("{}.{}", path_of(refr)?, value.as_string().ok()?))
            }
            _ => None,
        },
        _ => None,
    }
}

pub(super) fn visit_rule(rule: &Rule, f: &mut dyn FnMut(Node<'_>)) {
    match rule {
        Rule::Spec { head, bodies, .. } => {
            match head {
                RuleHead::Compr { refr, assign, .. } => {
                    visit_expr(refr, f);
                    if let Some(assign) = assign {
                        visit_expr(&assign.value, f);
                    }
                }
                RuleHead::Set { refr, key, .. } => {
                    visit_expr(refr, f);
                    if let Some(key) = key {
                        visit_expr(key, f);
                    }
                }
                RuleHead::Func {
                    refr, args, assign, ..
                } => {
                    visit_expr(refr, f);
                    args.iter().for_each(|a| visit_expr(a, f));
                    if let Some(assign) = assign {
                        visit_expr(&assign.value, f);
                    }
                }
            }
            for body in bodies {
                visit_body(body, f);
            }
        }
        Rule::Default {
            refr, args, value, ..
        } => {
            visit_expr(refr, f);
            args.iter().for_each(|a| visit_expr(a, f));
            visit_expr(value, f);
        }
    }
}

fn visit_body(body: &RuleBody, f: &mut dyn FnMut(Node<'_>)) {
    if let Some(assign) = &body.assign {
        visit_expr(&assign.value, f);
    }
    visit_query(&body.query, f);
}

fn visit_query(query: &Query, f: &mut dyn FnMut(Node<'_>)) {
    for stmt in &query.stmts {
        f(Node::Stmt(stmt));
        match &stmt.literal {
            Literal::SomeVars { .. } => {}
            Literal::SomeIn {
                key,
                value,
                collection,
                ..
            } => {
                if let Some(key) = key {
                    visit_expr(key, f);
                }
                visit_expr(value, f);
                visit_expr(collection, f);
            }
            Literal::Expr { expr, .. } | Literal::NotExpr { expr, .. } => visit_expr(expr, f),
            Literal::Every { domain, query, .. } => {
                visit_expr(domain, f);
                visit_query(query, f);
            }
        }
        // `with f as g` names a function without calling it; only the replacement's calls count.
        for modifier in &stmt.with_mods {
            visit_expr(&modifier.r#as, f);
        }
    }
}

/// Visit `expr` and every expression inside it, outermost first. Written with an explicit stack,
/// so a deeply nested expression cannot overflow the thread's stack.
fn visit_expr(expr: &Expr, f: &mut dyn FnMut(Node<'_>)) {
    let mut stack: Vec<&Expr> = vec![expr];
    while let Some(expr) = stack.pop() {
        f(Node::Expr(expr));
        match expr {
            Expr::String { .. }
            | Expr::RawString { .. }
            | Expr::Number { .. }
            | Expr::Bool { .. }
            | Expr::Null { .. }
            | Expr::Var { .. } => {}
            Expr::Array { items, .. } | Expr::Set { items, .. } => {
                stack.extend(items.iter().map(|i| i.as_ref()));
            }
            Expr::Object { fields, .. } => {
                for (_, key, value) in fields {
                    stack.push(key);
                    stack.push(value);
                }
            }
            Expr::ArrayCompr { term, query, .. } | Expr::SetCompr { term, query, .. } => {
                stack.push(term);
                visit_query(query, f);
            }
            Expr::ObjectCompr {
                key, value, query, ..
            } => {
                stack.push(key);
                stack.push(value);
                visit_query(query, f);
            }
            Expr::Call { fcn, params, .. } => {
                // The function's name is not an expression to check; a computed one would be.
                if !matches!(fcn.as_ref(), Expr::Var { .. } | Expr::RefDot { .. }) {
                    stack.push(fcn);
                }
                stack.extend(params.iter().map(|p| p.as_ref()));
            }
            Expr::UnaryExpr { expr, .. } => stack.push(expr),
            Expr::RefDot { refr, .. } => stack.push(refr),
            Expr::RefBrack { refr, index, .. } => {
                stack.push(refr);
                stack.push(index);
            }
            Expr::BinExpr { lhs, rhs, .. }
            | Expr::BoolExpr { lhs, rhs, .. }
            | Expr::ArithExpr { lhs, rhs, .. }
            | Expr::AssignExpr { lhs, rhs, .. } => {
                stack.push(lhs);
                stack.push(rhs);
            }
            Expr::Membership {
                key,
                value,
                collection,
                ..
            } => {
                if let Some(key) = key {
                    stack.push(key);
                }
                stack.push(value);
                stack.push(collection);
            }
        }
    }
}
