//! Calls of Palisade's own builtins in output-argument form. Rego lets a builtin's result be given
//! as one more argument, `cast_set(xs, s)` for `s = cast_set(xs)`; regorus 0.14.1 understands that
//! form only for its own builtins, and reports the output variable as unsafe for an extension. Before
//! a module is added we write such a statement the way it reads, `s = cast_set(xs)`, on the same
//! line, so the rest of the module keeps its places.

use regorus::unstable::{Expr, Literal};

use super::super::builtins;
use super::walk::{leftmost, path_of, visit_rule, Node};

/// `text` with every statement that calls one of Palisade's own builtins with an output argument
/// written as an assignment. `engine` is the engine the module will be added to (its Rego version
/// decides the parse); it is not changed. Text that does not parse is returned as it is: adding it
/// reports the error.
pub(super) fn rewrite(engine: &regorus::Engine, text: &str) -> String {
    // Parsing twice is only worth it when one of our builtins is named at all.
    if !builtins::names().any(|name| text.contains(name)) {
        return text.to_owned();
    }
    let mut scratch = engine.clone();
    if scratch
        .add_policy("output-arguments.rego".to_owned(), text.to_owned())
        .is_err()
    {
        return text.to_owned();
    }
    let Some(module) = scratch.get_modules().last().cloned() else {
        return text.to_owned();
    };
    // (insert at, text to insert, remove from, remove to), applied from the end of the text.
    let mut edits: Vec<(usize, String, usize, usize)> = Vec::new();
    for rule in &module.policy {
        visit_rule(rule, &mut |node| {
            let Node::Stmt(stmt) = node else {
                return;
            };
            let Literal::Expr { expr, .. } = &stmt.literal else {
                return;
            };
            let Expr::Call { fcn, params, .. } = expr.as_ref() else {
                return;
            };
            let Some(name) = path_of(fcn) else {
                return;
            };
            let Some(arity) = builtins::arity(&name) else {
                return;
            };
            let arity = usize::from(arity);
            let (Some(output), true) = (params.last(), params.len() == arity + 1) else {
                return;
            };
            let output_span = output.span();
            let (start, end) = (output_span.start as usize, output_span.end as usize);
            // Remove `, out` (or just `out` for a builtin without arguments). The comma is searched
            // for in the text: a string argument's span leaves out its closing quote.
            let remove_from = if arity == 0 {
                start
            } else {
                match text.get(..start).and_then(|before| before.rfind(',')) {
                    Some(comma) => comma,
                    None => return,
                }
            };
            let removed = text.get(remove_from..end).unwrap_or("\n");
            let output_text = text.get(start..end).unwrap_or("\n");
            if removed.contains('\n') || output_text.contains('\n') {
                return;
            }
            let call_start = leftmost(fcn).span().start as usize;
            edits.push((call_start, format!("{output_text} = "), remove_from, end));
        });
    }
    if edits.is_empty() {
        return text.to_owned();
    }
    edits.sort_by_key(|edit| std::cmp::Reverse(edit.0));
    let mut out = text.to_owned();
    for (insert_at, insert, remove_from, remove_to) in edits {
        if remove_to > out.len() || insert_at > remove_from {
            continue;
        }
        out.replace_range(remove_from..remove_to, "");
        out.insert_str(insert_at, &insert);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_argument_becomes_an_assignment_on_the_same_line() {
        let engine = super::super::engine(false);
        let text = "package t\n\np = x {\n  cast_set([1, 1], x)\n}\n\nq { count([1], n) }\n";
        assert_eq!(
            rewrite(&engine, text),
            "package t\n\np = x {\n  x = cast_set([1, 1])\n}\n\nq { count([1], n) }\n"
        );
        let v1 = super::super::engine(true);
        let text = "package t\n\np contains h if {\n\tcrypto.md5(\"a, b\", h)\n}\n";
        assert_eq!(
            rewrite(&v1, text),
            "package t\n\np contains h if {\n\th = crypto.md5(\"a, b\")\n}\n"
        );
    }

    #[test]
    fn ordinary_calls_are_left_alone() {
        let engine = super::super::engine(true);
        let text = "package t\n\np := cast_set([1])\n";
        assert_eq!(rewrite(&engine, text), text);
        assert_eq!(rewrite(&engine, "not rego {"), "not rego {");
    }
}
