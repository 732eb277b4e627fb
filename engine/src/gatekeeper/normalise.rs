//! Source-level normalisation of Rego before regorus compiles it, for three places where regorus
//! 0.14.1 reads Gatekeeper's (Rego v0) templates differently from OPA.
//!
//! Each rewrite is applied only where the Rego grammar makes the OPA reading unambiguous, keeps every
//! line where it was (so compile errors still point at the user's line), and is reported back so a
//! caller can say what was changed:
//!
//! 1. [`Rewrite::CallAcrossNewline`]: OPA continues a term with `(` (a call) only when the parenthesis
//!    follows the term directly. In a query body a newline separates expressions, so
//!    `x\n(a - b) >= c` is two expressions in OPA; regorus reads `x(a - b) >= c`. We insert `;` after
//!    the term, which is what the newline means there.
//! 2. [`Rewrite::MultiBodyRule`]: Rego v0 lets one head carry several bodies, `p { a } { b }`, which
//!    means `p { a }` and `p { b }` (an OR). regorus rejects the second body; we repeat the head in
//!    front of it on the same line.
//! 3. [`Rewrite::HoistNegatedOperands`]: OPA's compiler binds every operand that needs evaluation
//!    (a ref, a nested call, a composite) to a fresh variable in an expression of its own *before* the
//!    expression, and the `not` stays on what is left; so `not f(input.missing)` is undefined (the
//!    body fails), not true (`rewriteDynamicTerms` in OPA's `ast/compile.go`; OPA issues 1877, 4743,
//!    8387). regorus evaluates `f(undefined)` inside the negation and answers true. We write the
//!    binding OPA's compiler writes, `__palisade_n0__ := input.missing; not f(__palisade_n0__)`, for
//!    calls, comparisons (`not input.a != "x"`) and ref indexes (`not allowed[input.kind]`) whose
//!    extent is certain from the tokens. OPA (v1.17, checked with `opa eval --v0-compatible`)
//!    binds nothing of a plain ref under `not … == …` (so `not input.missing == true` is true)
//!    except its dynamic indexes, and neither do we.
//! 4. [`Rewrite::SprintfMissingArgs`]: Go's `fmt` (and so OPA's `sprintf`) prints a verb that has no
//!    argument as `%!v(MISSING)`; regorus fails the call, which makes the whole rule undefined. When
//!    the format is a string literal and the arguments an array literal, the number of missing
//!    arguments is known from the source, and we write the verbs that have none as the literal text
//!    Go would print (`%%!v(MISSING)` in the format).
//!
//! The scanner is a small lexer (strings, raw strings, comments, brackets); it never fails. Input it
//! does not understand is left as it is, and regorus then reports the error.

use std::fmt;

/// One kind of rewrite, with the 1-based line of the Rego source where it was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rewrite {
    CallAcrossNewline { line: usize },
    MultiBodyRule { line: usize },
    HoistNegatedOperands { line: usize },
    SprintfMissingArgs { line: usize },
}

impl fmt::Display for Rewrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rewrite::CallAcrossNewline { line } => write!(
                f,
                "line {line}: `(` at the start of a line begins a new expression (`;` inserted)"
            ),
            Rewrite::MultiBodyRule { line } => {
                write!(f, "line {line}: second body of a rule (head repeated)")
            }
            Rewrite::HoistNegatedOperands { line } => write!(
                f,
                "line {line}: operands of a negated expression bound before the `not`, as OPA does"
            ),
            Rewrite::SprintfMissingArgs { line } => write!(
                f,
                "line {line}: `sprintf` verbs without an argument printed as `%!v(MISSING)`, as Go does"
            ),
        }
    }
}

/// Which rewrites to apply. All are on by default; the conformance test turns each off to measure it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewrites {
    pub call_across_newline: bool,
    pub multi_body_rule: bool,
    pub hoist_negated_operands: bool,
    pub sprintf_missing_args: bool,
}

impl Default for Rewrites {
    fn default() -> Self {
        Rewrites::ALL
    }
}

impl Rewrites {
    pub const ALL: Rewrites = Rewrites {
        call_across_newline: true,
        multi_body_rule: true,
        hoist_negated_operands: true,
        sprintf_missing_args: true,
    };
    pub const NONE: Rewrites = Rewrites {
        call_across_newline: false,
        multi_body_rule: false,
        hoist_negated_operands: false,
        sprintf_missing_args: false,
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ident,
    Number,
    Str,
    Newline,
    Comment,
    Punct,
}

#[derive(Debug, Clone, Copy)]
struct Token {
    kind: Kind,
    start: usize,
    end: usize,
    line: usize,
}

const KEYWORDS: &[&str] = &[
    "package", "import", "as", "default", "else", "not", "some", "with", "if", "contains", "in",
    "every",
];

fn tokenize(src: &str) -> Vec<Token> {
    let bytes = src.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    let mut line = 1;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let start_line = line;
        let kind = match c {
            b'\n' => {
                i += 1;
                line += 1;
                Kind::Newline
            }
            b' ' | b'\t' | b'\r' => {
                i += 1;
                continue;
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                Kind::Comment
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i = (i + 1).min(bytes.len());
                Kind::Str
            }
            b'`' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'`' {
                    if bytes[i] == b'\n' {
                        line += 1;
                    }
                    i += 1;
                }
                i = (i + 1).min(bytes.len());
                Kind::Str
            }
            b'0'..=b'9' => {
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric()
                        || bytes[i] == b'.'
                        || ((bytes[i] == b'+' || bytes[i] == b'-')
                            && matches!(bytes[i - 1], b'e' | b'E')))
                {
                    i += 1;
                }
                Kind::Number
            }
            c if c == b'_' || c.is_ascii_alphabetic() => {
                while i < bytes.len() && (bytes[i] == b'_' || bytes[i].is_ascii_alphanumeric()) {
                    i += 1;
                }
                Kind::Ident
            }
            _ => {
                let two = src.get(i..i + 2).unwrap_or("");
                if matches!(two, ":=" | "==" | "!=" | "<=" | ">=") {
                    i += 2;
                } else {
                    // One character, whole (it may be multi-byte).
                    i += src[i..].chars().next().map_or(1, char::len_utf8);
                }
                Kind::Punct
            }
        };
        tokens.push(Token {
            kind,
            start,
            end: i,
            line: start_line,
        });
    }
    tokens
}

/// A bracket open at some point of the scan.
#[derive(Debug, Clone, Copy)]
struct Open {
    /// `{`, `[` or `(`.
    bracket: u8,
    /// A `{` that opens a rule, `else`, `every` or comprehension-less query body.
    body: bool,
    /// A `|` was seen directly inside: this bracket holds a comprehension body.
    bar: bool,
    /// A body `{` opened at the top level (a rule's body).
    top_level_body: bool,
}

/// The places `src` uses one of the keywords Rego v0 has only when imported (`if`, `contains`,
/// `in`, `every`): keyword, 1-based line and column. A name after `.` (`input.in`) and the
/// `contains(…)` builtin are not keywords.
pub(crate) fn keyword_uses(src: &str) -> Vec<(&'static str, usize, usize)> {
    const FUTURE: &[&str] = &["if", "contains", "in", "every"];
    let tokens: Vec<Token> = tokenize(src)
        .into_iter()
        .filter(|t| !matches!(t.kind, Kind::Comment))
        .collect();
    let text = |t: &Token| &src[t.start..t.end];
    let mut uses = Vec::new();
    for (index, token) in tokens.iter().enumerate() {
        if token.kind != Kind::Ident {
            continue;
        }
        let Some(keyword) = FUTURE.iter().find(|k| **k == text(token)) else {
            continue;
        };
        let before = index.checked_sub(1).map(|i| &tokens[i]);
        let after = tokens.get(index + 1);
        let after_dot = before.is_some_and(|t| text(t) == ".");
        let called = after.is_some_and(|t| text(t) == "(");
        // `in` reads as a keyword only between two terms (`x in xs`); elsewhere it is a name.
        let between_terms = before.is_some_and(|t| match t.kind {
            Kind::Ident | Kind::Number | Kind::Str => true,
            Kind::Punct => matches!(text(t), ")" | "]" | "}"),
            _ => false,
        }) && after.is_some_and(|t| match t.kind {
            Kind::Ident | Kind::Number | Kind::Str => true,
            Kind::Punct => matches!(text(t), "(" | "[" | "{"),
            _ => false,
        });
        if after_dot || (*keyword == "contains" && called) || (*keyword == "in" && !between_terms) {
            continue;
        }
        let line_start = src[..token.start].rfind('\n').map_or(0, |at| at + 1);
        uses.push((*keyword, token.line, token.start - line_start + 1));
    }
    uses
}

/// Apply the enabled rewrites to `src`. Returns the new text and what was rewritten.
pub fn normalise(src: &str, enabled: Rewrites) -> (String, Vec<Rewrite>) {
    let tokens = tokenize(src);
    let text = |t: &Token| &src[t.start..t.end];
    let is_term_end = |t: &Token| match t.kind {
        Kind::Ident => !KEYWORDS.contains(&text(t)),
        Kind::Number | Kind::Str => true,
        Kind::Punct => matches!(text(t), ")" | "]" | "}"),
        _ => false,
    };
    let mut edits: Vec<Edit> = Vec::new();
    let mut rewrites = Vec::new();

    let mut stack: Vec<Open> = Vec::new();
    // The previous significant token (not a newline or comment), and whether a newline came since.
    let mut prev: Option<usize> = None;
    let mut newline_since_prev = false;
    // Top-level statement tracking for multi-body rules.
    let mut statement_start: Option<usize> = None;
    let mut need_start = true;
    let mut head: Option<Option<String>> = None;
    let mut last_closed_top_body = false;

    let mut index = 0;
    while index < tokens.len() {
        let token = tokens[index];
        match token.kind {
            Kind::Comment => {
                index += 1;
                continue;
            }
            Kind::Newline => {
                newline_since_prev = true;
                if stack.is_empty() {
                    if let Some(p) = prev {
                        if is_term_end(&tokens[p]) {
                            need_start = true;
                        }
                    }
                }
                index += 1;
                continue;
            }
            _ => {}
        }
        let word = text(&token);

        // A new top-level statement starts here, unless this continues the previous one.
        if stack.is_empty() && need_start && !(word == "{" || word == "else") {
            statement_start = Some(token.start);
            head = None;
            last_closed_top_body = false;
            need_start = false;
        }

        // Rewrite 1: `(` on a new line after a term, inside a query body.
        if word == "(" && newline_since_prev && enabled.call_across_newline {
            if let (Some(p), Some(open)) = (prev, stack.last()) {
                let in_query = (open.bracket == b'{' && (open.body || open.bar))
                    || (open.bracket == b'[' && open.bar);
                if in_query && is_term_end(&tokens[p]) {
                    edits.push(Edit::insert(tokens[p].end, ";"));
                    rewrites.push(Rewrite::CallAcrossNewline { line: token.line });
                }
            }
        }

        // Rewrite 3: `not f(args)` as a whole expression.
        if word == "not" && enabled.hoist_negated_operands {
            if let Some(hoist) = hoist_negated_operands(src, &tokens, index) {
                let line = token.line;
                edits.push(Edit::insert(token.start, &hoist.prefix));
                for (start, end, name) in hoist.replacements {
                    edits.push(Edit {
                        at: start,
                        delete: end - start,
                        text: name,
                    });
                }
                rewrites.push(Rewrite::HoistNegatedOperands { line });
            }
        }

        // Rewrite 4: `sprintf("…", [...])` with fewer arguments than verbs.
        if word == "sprintf"
            && enabled.sprintf_missing_args
            && prev.is_none_or(|p| text(&tokens[p]) != ".")
        {
            if let Some(edit) = sprintf_missing_args(src, &tokens, index) {
                edits.push(edit);
                rewrites.push(Rewrite::SprintfMissingArgs { line: token.line });
            }
        }

        match word {
            "{" => {
                let body = prev.is_some_and(|p| {
                    is_term_end(&tokens[p]) || matches!(text(&tokens[p]), "if" | "else")
                });
                let top = stack.is_empty();
                if top && body {
                    if last_closed_top_body && prev.is_some_and(|p| text(&tokens[p]) == "}") {
                        // Rewrite 2: another body of the same head.
                        if enabled.multi_body_rule {
                            if let Some(Some(head_text)) = &head {
                                edits.push(Edit::insert(token.start, &format!("{head_text} ")));
                                rewrites.push(Rewrite::MultiBodyRule { line: token.line });
                            }
                        }
                    } else if head.is_none() {
                        head = Some(statement_start.and_then(|s| {
                            let h = src[s..token.start].trim_end();
                            (!h.is_empty() && !h.contains('\n') && !h.contains('#'))
                                .then(|| h.to_owned())
                        }));
                    }
                }
                stack.push(Open {
                    bracket: b'{',
                    body,
                    bar: false,
                    top_level_body: top && body,
                });
                last_closed_top_body = false;
            }
            "[" | "(" => {
                stack.push(Open {
                    bracket: word.as_bytes()[0],
                    body: false,
                    bar: false,
                    top_level_body: false,
                });
                last_closed_top_body = false;
            }
            "}" | "]" | ")" => {
                let closed = stack.pop();
                last_closed_top_body =
                    word == "}" && stack.is_empty() && closed.is_some_and(|o| o.top_level_body);
            }
            "|" => {
                if let Some(open) = stack.last_mut() {
                    open.bar = true;
                }
                last_closed_top_body = false;
            }
            _ => {
                last_closed_top_body = false;
            }
        }
        prev = Some(index);
        newline_since_prev = false;
        index += 1;
    }

    (apply(src, edits), rewrites)
}

/// Replace `delete` bytes at `at` by `text`.
struct Edit {
    at: usize,
    delete: usize,
    text: String,
}

impl Edit {
    fn insert(at: usize, text: &str) -> Edit {
        Edit {
            at,
            delete: 0,
            text: text.to_owned(),
        }
    }
}

/// Apply edits in offset order (stable for equal offsets); an edit overlapping an earlier one is
/// dropped.
fn apply(src: &str, mut edits: Vec<Edit>) -> String {
    edits.sort_by_key(|edit| edit.at);
    let mut out = String::with_capacity(src.len() + 64);
    let mut at = 0;
    for edit in edits {
        if edit.at < at || edit.at + edit.delete > src.len() {
            continue;
        }
        out.push_str(&src[at..edit.at]);
        out.push_str(&edit.text);
        at = edit.at + edit.delete;
    }
    out.push_str(&src[at..]);
    out
}

/// For `sprintf("format", [a, b])` at `tokens[at]`: when the format has more verbs than the array has
/// elements, the format with each verb past the last argument replaced by Go's `%!<verb>(MISSING)`.
fn sprintf_missing_args(src: &str, tokens: &[Token], at: usize) -> Option<Edit> {
    let significant: Vec<usize> = (at + 1..tokens.len())
        .filter(|&i| !matches!(tokens[i].kind, Kind::Comment | Kind::Newline))
        .collect();
    let text = |i: usize| &src[tokens[i].start..tokens[i].end];
    let [open, format, comma, bracket, ..] = significant[..] else {
        return None;
    };
    if text(open) != "(" || tokens[open].start != tokens[at].end {
        return None;
    }
    if tokens[format].kind != Kind::Str || !text(format).starts_with('"') || text(comma) != "," {
        return None;
    }
    if text(bracket) != "[" {
        return None;
    }
    // Count the array's elements: depth-1 commas, ignoring a trailing one.
    let mut depth = 0usize;
    let mut elements = 0usize;
    let mut element_open = false;
    let mut close = None;
    for (n, &i) in significant[3..].iter().enumerate() {
        match text(i) {
            "(" | "[" | "{" => {
                depth += 1;
                if depth == 1 {
                    continue;
                }
            }
            ")" | "]" | "}" => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    close = Some(n + 3);
                    break;
                }
            }
            "," if depth == 1 => {
                element_open = false;
                continue;
            }
            _ => {}
        }
        if !element_open {
            elements += 1;
            element_open = true;
        }
    }
    let close = close?;
    if significant.get(close + 1).map(|&i| text(i)) != Some(")") {
        return None;
    }
    let literal = text(format);
    let verbs = verb_spans(literal);
    if verbs.len() <= elements {
        return None;
    }
    let mut rewritten = String::with_capacity(literal.len() + 16);
    let mut last = 0;
    for &(start, end) in &verbs[elements..] {
        rewritten.push_str(&literal[last..start]);
        let verb = &literal[end - 1..end];
        rewritten.push_str(&format!("%%!{verb}(MISSING)"));
        last = end;
    }
    rewritten.push_str(&literal[last..]);
    Some(Edit {
        at: tokens[format].start,
        delete: literal.len(),
        text: rewritten,
    })
}

/// The byte spans of the formatting verbs (`%v`, `%-5d`, `%.2f` …) in a double-quoted Rego string
/// literal, skipping `%%` and escape sequences.
fn verb_spans(literal: &str) -> Vec<(usize, usize)> {
    let bytes = literal.as_bytes();
    let mut spans = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'%' if bytes.get(i + 1) == Some(&b'%') => i += 2,
            b'%' => {
                let start = i;
                i += 1;
                while i < bytes.len() && matches!(bytes[i], b'+' | b'-' | b'#' | b' ' | b'0') {
                    i += 1;
                }
                while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                    i += 1;
                }
                if i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                    spans.push((start, i + 1));
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    spans
}

struct Hoist {
    /// `__palisade_n0__ := <arg>; ` for each hoisted argument, to insert before `not`.
    prefix: String,
    /// (start, end, variable): argument spans replaced by their variable.
    replacements: Vec<(usize, usize, String)>,
}

/// What a term after `not` turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TermKind {
    /// A string, number, `true`, `false` or `null`.
    Literal,
    /// A bare variable.
    Var,
    /// `a.b[c]…`
    Ref,
    /// `f(…)` or `a.b.f(…)`.
    Call,
    /// `[…]`, `{…}`.
    Composite,
}

/// A term of a negated expression: `expr[start..end]`, with the spans (in `expr` positions, end
/// exclusive) of its bracket indexes or call arguments.
struct Term {
    end: usize,
    kind: TermKind,
    parts: Vec<(usize, usize)>,
}

const COMPARISONS: &[&str] = &["==", "!=", "<", "<=", ">", ">="];

/// OPA's compiler binds every operand that needs evaluation to a fresh variable in an expression of
/// its own before the negated expression, so that the negation only covers the final step. For the
/// negated expressions whose shape is certain from the tokens (the whole expression on one line, no
/// `with`):
///
/// - `not f(args)`: each argument that is more than a variable or a constant;
/// - `not a OP b` with OP a comparison: each side that is more than a variable or a constant;
/// - `not ref`: each bracket index of the ref that is more than a variable or a constant;
///
/// returns the bindings to insert before `not` and the spans they replace.
fn hoist_negated_operands(src: &str, tokens: &[Token], not_index: usize) -> Option<Hoist> {
    // The expression: significant tokens up to its end (a newline, `;` or a bracket it did not open).
    let mut expr: Vec<usize> = Vec::new();
    let mut depth = 0usize;
    for (i, token) in tokens.iter().enumerate().skip(not_index + 1) {
        let word = &src[token.start..token.end];
        match token.kind {
            Kind::Comment => continue,
            Kind::Newline if depth == 0 => break,
            // A line break inside the expression: its extent is not certain from one line.
            Kind::Newline => return None,
            _ => {}
        }
        match word {
            "(" | "[" | "{" => depth += 1,
            ")" | "]" | "}" => {
                if depth == 0 {
                    break;
                }
                depth -= 1;
            }
            ";" if depth == 0 => break,
            "with" if depth == 0 => return None,
            _ => {}
        }
        expr.push(i);
    }
    let text = |position: usize| {
        let token = &tokens[expr[position]];
        &src[token.start..token.end]
    };
    let adjacent = |a: usize, b: usize| tokens[expr[a]].end == tokens[expr[b]].start;
    let matching = |open: usize| -> Option<usize> {
        let mut depth = 0usize;
        for position in open..expr.len() {
            match text(position) {
                "(" | "[" | "{" => depth += 1,
                ")" | "]" | "}" => {
                    depth = depth.checked_sub(1)?;
                    if depth == 0 {
                        return Some(position);
                    }
                }
                _ => {}
            }
        }
        None
    };
    let parse_term = |start: usize| -> Option<Term> {
        let token = tokens[*expr.get(start)?];
        let word = text(start);
        match token.kind {
            Kind::Str | Kind::Number => {
                return Some(Term {
                    end: start + 1,
                    kind: TermKind::Literal,
                    parts: Vec::new(),
                })
            }
            Kind::Punct if word == "[" || word == "{" => {
                return Some(Term {
                    end: matching(start)? + 1,
                    kind: TermKind::Composite,
                    parts: Vec::new(),
                })
            }
            Kind::Ident if !KEYWORDS.contains(&word) => {}
            _ => return None,
        }
        if matches!(word, "true" | "false" | "null") {
            return Some(Term {
                end: start + 1,
                kind: TermKind::Literal,
                parts: Vec::new(),
            });
        }
        let mut term = Term {
            end: start + 1,
            kind: TermKind::Var,
            parts: Vec::new(),
        };
        while term.end < expr.len() && adjacent(term.end - 1, term.end) {
            match text(term.end) {
                "." if term.end + 1 < expr.len()
                    && tokens[expr[term.end + 1]].kind == Kind::Ident =>
                {
                    term.end += 2;
                    term.kind = TermKind::Ref;
                }
                "[" => {
                    let close = matching(term.end)?;
                    term.parts.push((term.end + 1, close));
                    term.end = close + 1;
                    term.kind = TermKind::Ref;
                }
                "(" if term.parts.is_empty() => {
                    // A call; its arguments are the parts. Anything chained after it is left alone.
                    let close = matching(term.end)?;
                    let mut from = term.end + 1;
                    let mut depth = 0usize;
                    for position in term.end + 1..close {
                        match text(position) {
                            "(" | "[" | "{" => depth += 1,
                            ")" | "]" | "}" => depth = depth.saturating_sub(1),
                            "," if depth == 0 => {
                                term.parts.push((from, position));
                                from = position + 1;
                            }
                            _ => {}
                        }
                    }
                    if from < close {
                        term.parts.push((from, close));
                    }
                    term.end = close + 1;
                    term.kind = TermKind::Call;
                    if term.end < expr.len() && matches!(text(term.end), "." | "[") {
                        return None;
                    }
                    break;
                }
                _ => break,
            }
        }
        Some(term)
    };

    let first = parse_term(0)?;
    let mut hoisted: Vec<(usize, usize)> = Vec::new();
    if first.end == expr.len() {
        match first.kind {
            TermKind::Call | TermKind::Ref => hoisted.extend(first.parts.iter().copied()),
            _ => return None,
        }
    } else if COMPARISONS.contains(&text(first.end)) {
        let equality = text(first.end) == "==";
        let second = parse_term(first.end + 1)?;
        if second.end != expr.len() {
            return None;
        }
        // OPA leaves a plain ref under `not … == …` where it is, so `not input.missing == true`
        // is true; only the dynamic indexes of such a ref are bound first. Every other
        // comparison, and a call or composite on either side of `==`, is bound whole.
        for (from, term) in [(0, &first), (first.end + 1, &second)] {
            match term.kind {
                TermKind::Ref if equality => hoisted.extend(term.parts.iter().copied()),
                _ => hoisted.push((from, term.end)),
            }
        }
    } else {
        return None;
    }
    // Only what needs evaluation: more than one token (a lone variable or constant stays).
    hoisted.retain(|(from, to)| to.saturating_sub(*from) > 1);
    if hoisted.is_empty() {
        return None;
    }
    let mut prefix = String::new();
    let mut replacements = Vec::new();
    for (from, to) in hoisted {
        let (start, end) = (tokens[expr[from]].start, tokens[expr[to - 1]].end);
        let name = format!(
            "__palisade_n{}_{}__",
            tokens[not_index].start,
            replacements.len()
        );
        prefix.push_str(&format!("{name} := {}; ", &src[start..end]));
        replacements.push((start, end, name));
    }
    Some(Hoist {
        prefix,
        replacements,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(src: &str) -> (String, Vec<Rewrite>) {
        normalise(src, Rewrites::ALL)
    }

    #[test]
    fn a_parenthesis_on_a_new_line_starts_an_expression_in_a_body() {
        let src = "p {\n  input.a\n  (input.b - 1) >= 2\n}\n";
        let (out, rewrites) = run(src);
        assert_eq!(out, "p {\n  input.a;\n  (input.b - 1) >= 2\n}\n");
        assert_eq!(rewrites, [Rewrite::CallAcrossNewline { line: 3 }]);
        assert_eq!(out.lines().count(), src.lines().count());
    }

    #[test]
    fn parentheses_that_continue_an_expression_are_left_alone() {
        for src in [
            "p {\n  x := a +\n  (b)\n}\n",
            "p {\n  f(a,\n  (b))\n}\n",
            "p {\n  f(x)\n}\n",
            "p = [a\n(b)]\n",
            "s := {1,\n(2)}\n",
            "p {\n  x := \"(\"\n  # (y)\n}\n",
        ] {
            let (out, rewrites) = run(src);
            assert_eq!(out, src);
            assert!(rewrites.is_empty(), "{src}: {rewrites:?}");
        }
    }

    #[test]
    fn comprehension_bodies_count_as_query_bodies() {
        let src = "p := [x | x := input.a\n(x) > 1]\n";
        let (out, _) = run(src);
        assert_eq!(out, "p := [x | x := input.a;\n(x) > 1]\n");
    }

    #[test]
    fn a_second_body_gets_the_head_repeated() {
        let src = "f(x) = y {\n  x == 1\n  y := 2\n} {\n  x == 2\n  y := 3\n}\n\np { true }\n";
        let (out, rewrites) = run(src);
        assert_eq!(
            out,
            "f(x) = y {\n  x == 1\n  y := 2\n} f(x) = y {\n  x == 2\n  y := 3\n}\n\np { true }\n"
        );
        assert_eq!(rewrites, [Rewrite::MultiBodyRule { line: 4 }]);
    }

    #[test]
    fn literals_and_else_are_not_second_bodies() {
        for src in [
            "p = {1} {\n  true\n}\n",
            "p {\n  false\n} else = 2 {\n  true\n}\n",
            "violation[{\"msg\": m}] {\n  m := \"x\"\n}\nq {\n true\n}\n",
            "x := {\"a\": 1}\ny := {2}\n",
        ] {
            let (out, rewrites) = run(src);
            assert_eq!(out, src);
            assert!(rewrites.is_empty(), "{src}: {rewrites:?}");
        }
    }

    #[test]
    fn negated_calls_bind_their_evaluated_arguments_first() {
        let src = "p {\n  not f(rule, params.ranges, \"x\")\n}\n";
        let (out, rewrites) = run(src);
        assert_eq!(
            out,
            "p {\n  __palisade_n6_0__ := params.ranges; not f(rule, __palisade_n6_0__, \"x\")\n}\n"
        );
        assert_eq!(rewrites, [Rewrite::HoistNegatedOperands { line: 2 }]);
        let (out, _) = run("p {\n  not lib.f(g(x), [a.b]) # why\n}\n");
        assert_eq!(
            out,
            "p {\n  __palisade_n6_0__ := g(x); __palisade_n6_1__ := [a.b]; \
             not lib.f(__palisade_n6_0__, __palisade_n6_1__) # why\n}\n"
        );
    }

    #[test]
    fn negated_comparisons_and_indexes_bind_their_operands_first() {
        let (out, _) = run("p {\n  not input.a != b.c\n}\n");
        assert_eq!(
            out,
            "p {\n  __palisade_n6_0__ := input.a; __palisade_n6_1__ := b.c; \
             not __palisade_n6_0__ != __palisade_n6_1__\n}\n"
        );
        // Under `==`, OPA binds a call or composite side, and a ref's dynamic indexes only.
        let (out, _) = run("p {\n  not lower(input.a) == input.b[input.i]\n}\n");
        assert_eq!(
            out,
            "p {\n  __palisade_n6_0__ := lower(input.a); __palisade_n6_1__ := input.i; \
             not __palisade_n6_0__ == input.b[__palisade_n6_1__]\n}\n"
        );
        let (out, _) = run("p { x := 1; not y != input.b[0] }\n");
        assert_eq!(
            out,
            "p { x := 1; __palisade_n12_0__ := input.b[0]; not y != __palisade_n12_0__ }\n"
        );
        let (out, _) = run("p {\n  not allowed[input.kind][x]\n}\n");
        assert_eq!(
            out,
            "p {\n  __palisade_n6_0__ := input.kind; not allowed[__palisade_n6_0__][x]\n}\n"
        );
    }

    #[test]
    fn negations_whose_shape_is_not_certain_are_left_alone() {
        for src in [
            "p {\n  not f(x, y)\n}\n",
            "p {\n  not x == 1\n}\n",
            // OPA leaves plain refs under `not … == …` alone: undefined makes the `not` true.
            "p {\n  not c.securityContext.readOnlyRootFilesystem == true\n}\n",
            "p {\n  not input.a == b.c\n}\n",
            "p {\n  not f(a.b) with input as {}\n}\n",
            "p {\n  not input.a.b\n}\n",
            "p {\n  not f (a.b)\n}\n",
            "p {\n  not a.b + 1 > 2\n}\n",
            "p {\n  not f(a.b).c\n}\n",
            "p {\n  not f(a,\n    b.c)\n}\n",
            "p {\n  not count(a.b) > 1 + 2\n}\n",
        ] {
            let (out, rewrites) = run(src);
            assert_eq!(out, src);
            assert!(rewrites.is_empty(), "{src}: {rewrites:?}");
        }
    }

    #[test]
    fn sprintf_verbs_without_arguments_print_as_go_prints_them() {
        let src = "p {\n  msg := sprintf(\"%v <%v> has %5d%% of %v\", [a, b[0]])\n}\n";
        let (out, rewrites) = run(src);
        assert_eq!(
            out,
            "p {\n  msg := sprintf(\"%v <%v> has %%!d(MISSING)%% of %%!v(MISSING)\", [a, b[0]])\n}\n"
        );
        assert_eq!(rewrites, [Rewrite::SprintfMissingArgs { line: 2 }]);
        for untouched in [
            "m := sprintf(\"%v %v\", [a, b])\n",
            "m := sprintf(\"%v %v\", args)\n",
            "m := sprintf(\"100%%\", [])\n",
            "m := x.sprintf(\"%v\", [])\n",
        ] {
            assert_eq!(run(untouched), (untouched.to_owned(), Vec::new()));
        }
        let (out, _) = run("m := sprintf(\"%v\", [])\n");
        assert_eq!(out, "m := sprintf(\"%%!v(MISSING)\", [])\n");
    }

    #[test]
    fn rewrites_can_be_turned_off() {
        let src = "p {\n  not f(a.b)\n  x\n  (y)\n  sprintf(\"%v\", [])\n} {\n  true\n}\n";
        let (out, rewrites) = normalise(src, Rewrites::NONE);
        assert_eq!(out, src);
        assert!(rewrites.is_empty());
        assert_eq!(normalise(src, Rewrites::ALL).1.len(), 4);
    }

    #[test]
    fn odd_input_never_panics() {
        for src in [
            "",
            "}",
            ")))",
            "not",
            "not f(",
            "p { \"unterminated",
            "`raw\n",
            "p {\n(",
            "é(ü)\n(",
        ] {
            let _ = run(src);
        }
    }
}
