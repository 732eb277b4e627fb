//! Kyverno keeps cel-go's older `orValue`, which also answers a value that is not optional (itself)
//! where current CEL raises "no such overload", and Kyverno's library relies on it. Its policies'
//! expressions are evaluated with [`crate::cel::OR_VALUE_LENIENT`] in its place; errors are put
//! back in the words and columns of the source as written.

use serde_json::Value;

use crate::source::{Document, SourceError};

/// `x.orValue(d)` as written, and as evaluated for Kyverno (see [`crate::cel::OR_VALUE_LENIENT`]).
pub const OR_VALUE: &str = ".orValue(";
pub const LENIENT_OR_VALUE: &str = ".palisade_or_value(";

/// `source` with its `orValue` calls (outside string literals) made Kyverno's lenient ones.
pub fn or_value(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut rest = source;
    while let Some(c) = rest.chars().next() {
        if quote.is_none() && rest.starts_with(OR_VALUE) {
            out.push_str(LENIENT_OR_VALUE);
            rest = &rest[OR_VALUE.len()..];
            continue;
        }
        match quote {
            Some(_) if escaped => escaped = false,
            Some(_) if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            None if c == '\'' || c == '"' => quote = Some(c),
            _ => {}
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// A list of `{expression | messageExpression | valueExpression}` objects with their expressions
/// made lenient ([`or_value`]).
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

/// An error found in the rewritten document, placed and worded as in the document as written.
pub fn unrewrite_error(rewritten: &Document, error: &mut SourceError) {
    error.message = error
        .message
        .replace(&LENIENT_OR_VALUE[1..LENIENT_OR_VALUE.len() - 1], "orValue");
    let Some(line) = error
        .line
        .checked_sub(rewritten.first_line)
        .and_then(|at| rewritten.text.lines().nth(at))
    else {
        return;
    };
    let before = line
        .match_indices(LENIENT_OR_VALUE)
        .filter(|(at, _)| at + 1 < error.column)
        .count();
    error.column -= before * (LENIENT_OR_VALUE.len() - OR_VALUE.len());
}

/// A document's text with its `orValue` calls made lenient, so errors found in the rewritten
/// expressions are located in it.
pub fn text(source: &str) -> String {
    source.replace(OR_VALUE, LENIENT_OR_VALUE)
}
