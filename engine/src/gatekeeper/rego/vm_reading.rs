//! Two forms regorus 0.14.1's register VM reads differently from OPA, written before a module is
//! added in a form both read as OPA does, on the same lines:
//!
//! - `x := e` where `e` is undefined fails the body in OPA; the VM binds `x` to undefined and goes
//!   on, so a later `not f(x)` is true (and the binding that [`super::super::normalise`] writes in
//!   front of a `not` would lose its purpose). After the statement we write `x == x` for every
//!   variable it binds: in OPA a variable bound by a `:=` that succeeded is defined and equal to
//!   itself, so the comparison is always true there, and in the VM a comparison with undefined is
//!   undefined, which fails the body as OPA does. (A comparison, not `_ = x`: regorus would read a
//!   unification with a variable of the rule's head as binding it.)
//! - A function with neither body nor value, `f("a", _)`, is true where its arguments match in OPA;
//!   the VM leaves it undefined. We write its value, `f("a", _) = true`, which is what the form
//!   means.
//!
//! Where the text around such a form is not what the rewrite expects, nothing is written and the
//! reason is returned: the template is then evaluated by the interpreter, never guessed at.

use regorus::unstable::{AssignOp, Expr, Literal, Rule, RuleHead};

use super::walk::{visit_rule, Node};

/// `text` with the forms above rewritten, and why the VM would still read it differently from OPA,
/// if it would. `engine` is the engine the module will be added to (its Rego version decides the
/// parse); it is not changed. Text that does not parse is returned as it is: adding it reports the
/// error.
pub(super) fn rewrite(engine: &regorus::Engine, text: &str) -> (String, Option<String>) {
    let mut scratch = engine.clone();
    if scratch
        .add_policy("vm-reading.rego".to_owned(), text.to_owned())
        .is_err()
    {
        return (text.to_owned(), None);
    }
    let Some(module) = scratch.get_modules().last().cloned() else {
        return (text.to_owned(), None);
    };
    // (insert at, text to insert), applied from the end of the text.
    let mut edits: Vec<(usize, String)> = Vec::new();
    let mut divergence: Option<String> = None;
    let line_of = |offset: usize| text.get(..offset).unwrap_or(text).matches('\n').count() + 1;
    for rule in &module.policy {
        if let Rule::Spec {
            span,
            head: RuleHead::Func { assign: None, .. },
            bodies,
        } = rule.as_ref()
        {
            if bodies.is_empty() {
                let end = span.end as usize;
                if text.get(..end).is_some_and(|head| head.ends_with(')'))
                    && ends_statement(text, end)
                {
                    edits.push((end, " = true".to_owned()));
                } else {
                    divergence.get_or_insert_with(|| {
                        format!("line {}: a function without body or value", line_of(end))
                    });
                }
            }
        }
        visit_rule(rule, &mut |node| {
            let Node::Stmt(stmt) = node else {
                return;
            };
            let Literal::Expr { expr, .. } = &stmt.literal else {
                return;
            };
            let Expr::AssignExpr {
                op: AssignOp::ColEq,
                lhs,
                rhs,
                ..
            } = expr.as_ref()
            else {
                return;
            };
            if matches!(
                rhs.as_ref(),
                Expr::String { .. }
                    | Expr::RawString { .. }
                    | Expr::Number { .. }
                    | Expr::Bool { .. }
                    | Expr::Null { .. }
            ) {
                return;
            }
            let mut names = Vec::new();
            bound_names(lhs, &mut names);
            if names.is_empty() {
                return;
            }
            let end = stmt.span.end as usize;
            if stmt.with_mods.is_empty() && ends_statement(text, end) {
                let guards: String = names
                    .iter()
                    .map(|name| format!("; {name} == {name}"))
                    .collect();
                edits.push((end, guards));
            } else {
                divergence.get_or_insert_with(|| {
                    format!(
                        "line {}: an assignment whose end is not certain",
                        line_of(end)
                    )
                });
            }
        });
    }
    if let Some(divergence) = divergence {
        return (text.to_owned(), Some(divergence));
    }
    edits.sort_by_key(|edit| std::cmp::Reverse(edit.0));
    let mut out = text.to_owned();
    for (at, insert) in edits {
        out.insert_str(at, &insert);
    }
    (out, None)
}

/// Whether a statement can end at `offset` of `text`: only blanks, then a line end, `;`, a closing
/// bracket, a comment or the end of the text follow.
fn ends_statement(text: &str, offset: usize) -> bool {
    let Some(rest) = text.get(offset..) else {
        return false;
    };
    let rest = rest.trim_start_matches([' ', '\t']);
    rest.is_empty() || rest.starts_with(['\n', '\r', ';', '}', ']', '#'])
}

/// The variables an assignment's left side binds (`_` aside).
fn bound_names(lhs: &Expr, names: &mut Vec<String>) {
    match lhs {
        Expr::Var { span, .. } => {
            let name = span.text();
            if name != "_" {
                names.push(name.to_owned());
            }
        }
        Expr::Array { items, .. } => items.iter().for_each(|item| bound_names(item, names)),
        Expr::Object { fields, .. } => {
            for (_, _, value) in fields {
                bound_names(value, names);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_an_assignment_binds_is_guarded_after_it() {
        let engine = super::super::engine(false);
        let text = "package t\n\np {\n  x := input.a\n  [a, _] := input.b # two\n  y := \"s\"\n  \
                    zs := [z | z := input.c[_]]\n  not f(x)\n}\n\nf(v) { v == 1 }\n";
        let (out, divergence) = rewrite(&engine, text);
        assert_eq!(divergence, None);
        assert_eq!(
            out,
            "package t\n\np {\n  x := input.a; x == x\n  [a, _] := input.b; a == a # two\n  y := \"s\"\n  \
             zs := [z | z := input.c[_]; z == z]; zs == zs\n  not f(x)\n}\n\nf(v) { v == 1 }\n"
        );
    }

    #[test]
    fn a_function_without_body_or_value_is_given_its_value() {
        let engine = super::super::engine(false);
        let text = "package t\n\nf(\"a\", _)\n\np { f(\"a\", 1) }\n";
        let (out, divergence) = rewrite(&engine, text);
        assert_eq!(divergence, None);
        assert_eq!(
            out,
            "package t\n\nf(\"a\", _) = true\n\np { f(\"a\", 1) }\n"
        );
    }

    #[test]
    fn text_that_does_not_parse_is_left_alone() {
        let engine = super::super::engine(true);
        assert_eq!(
            rewrite(&engine, "not rego {"),
            ("not rego {".to_owned(), None)
        );
    }
}
