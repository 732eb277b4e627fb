//! What Kyverno's CEL has that the apiserver's does not, written in terms our CEL evaluates:
//!
//! - Kyverno keeps cel-go's older `orValue`, which also answers a value that is not optional
//!   (itself) where current CEL raises "no such overload", and Kyverno's library relies on it: it
//!   is evaluated as [`crate::cel::OR_VALUE_LENIENT`].
//! - Kyverno's user library, `parseServiceAccount(username)` (also `user.parseServiceAccount`),
//!   evaluated as [`crate::cel::PARSE_SERVICE_ACCOUNT`].
//!
//! Each call is rewritten (outside string literals) before compiling; errors are put back in the
//! words and columns of the source as written. Every rewrite makes a call longer by the same
//! number of characters on a line, which is how columns are put back.

use serde_json::Value;

use crate::source::{Document, SourceError};

/// `x.orValue(d)` as written, and as evaluated for Kyverno (see [`crate::cel::OR_VALUE_LENIENT`]).
pub const OR_VALUE: &str = ".orValue(";
pub const LENIENT_OR_VALUE: &str = ".palisade_or_value(";

/// Each call as written, what it is evaluated as, and whether it is a global function (so the
/// name must not continue another identifier or follow a `.`). Longest first.
const REWRITES: &[(&str, &str, bool)] = &[
    (
        "user.parseServiceAccount(",
        "palisade_user_parse_service_account(",
        true,
    ),
    (
        "parseServiceAccount(",
        "palisade_parse_service_account(",
        true,
    ),
    (OR_VALUE, LENIENT_OR_VALUE, false),
];

/// The name a rewritten call's errors mention, and the name the author wrote.
const NAMES: &[(&str, &str)] = &[
    (
        "palisade_user_parse_service_account",
        "user.parseServiceAccount",
    ),
    ("palisade_parse_service_account", "parseServiceAccount"),
    ("palisade_or_value", "orValue"),
];

/// The rewrite that starts `rest`, where `before` is the character before it.
fn rewrite_at(rest: &str, before: Option<char>) -> Option<(&'static str, &'static str)> {
    let continues = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.';
    REWRITES
        .iter()
        .find(|(written, _, global)| {
            rest.starts_with(written) && !(*global && before.is_some_and(continues))
        })
        .map(|(written, evaluated, _)| (*written, *evaluated))
}

/// `source` with its Kyverno-only calls (outside string literals) rewritten.
pub fn or_value(source: &str) -> String {
    rewrite(source, true)
}

fn rewrite(source: &str, skip_strings: bool) -> String {
    let mut out = String::with_capacity(source.len());
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut rest = source;
    let mut before: Option<char> = None;
    while let Some(c) = rest.chars().next() {
        if quote.is_none() {
            if let Some((written, evaluated)) = rewrite_at(rest, before) {
                out.push_str(evaluated);
                rest = &rest[written.len()..];
                before = Some('(');
                continue;
            }
        }
        if skip_strings {
            match quote {
                Some(_) if escaped => escaped = false,
                Some(_) if c == '\\' => escaped = true,
                Some(q) if c == q => quote = None,
                None if c == '\'' || c == '"' => quote = Some(c),
                _ => {}
            }
        }
        out.push(c);
        before = Some(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// A list of `{expression | messageExpression | valueExpression}` objects with their expressions
/// rewritten ([`or_value`]).
pub fn expressions(list: &Value) -> Value {
    let mut list = list.clone();
    for item in list.as_array_mut().into_iter().flatten() {
        for key in ["expression", "messageExpression", "valueExpression"] {
            if let Some(Value::String(source)) = item.get_mut(key) {
                *source = or_value(source);
            }
        }
    }
    list
}

/// `message` (about a rewritten expression) worded as the expression was written.
pub fn as_written(message: &str) -> String {
    NAMES
        .iter()
        .fold(message.to_owned(), |m, (evaluated, written)| {
            m.replace(evaluated, written)
        })
}

/// An error found in the rewritten document, placed and worded as in the document as written.
pub fn unrewrite_error(rewritten: &Document, error: &mut SourceError) {
    error.message = as_written(&error.message);
    let Some(line) = error
        .line
        .checked_sub(rewritten.first_line)
        .and_then(|at| rewritten.text.lines().nth(at))
    else {
        return;
    };
    let mut shift = 0;
    for (written, evaluated, _) in REWRITES {
        let before = line
            .match_indices(evaluated)
            .filter(|(at, _)| at + 1 < error.column)
            .count();
        shift += before * (evaluated.len() - written.len());
    }
    error.column = error.column.saturating_sub(shift);
}

/// A document's text with its Kyverno-only calls rewritten, so errors found in the rewritten
/// expressions are located in it.
pub fn text(source: &str) -> String {
    rewrite(source, false)
}
