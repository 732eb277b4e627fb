//! Colours for policy source as it is typed: YAML, with the CEL of `expression`-like fields and
//! the Rego of a ConstraintTemplate's `rego` drawn in their own languages, the bracket that
//! matches the one at the caret, and the engine's problems underlined where they are.
//!
//! The editor stays a plain `textarea` (every keyboard shortcut, undo, selection and screen
//! reader behaviour is the browser's); this draws a copy of its text underneath, in colour. The
//! output is HTML built here: every character of the source is escaped, and classes come from
//! [`Kind`] only. Work is linear in the source; sources over [`MAX_BYTES`] are drawn plain.

use super::html::escape_into;

/// Largest source drawn in colour (the policy source budget); larger ones are drawn as text.
pub const MAX_BYTES: usize = 256 * 1024;

/// What a piece of source is, as a CSS class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Key,
    Str,
    Number,
    Literal,
    Comment,
    Keyword,
    Function,
    Punct,
    Meta,
}

impl Kind {
    fn class(self) -> &'static str {
        match self {
            Kind::Key => "t-key",
            Kind::Str => "t-str",
            Kind::Number => "t-num",
            Kind::Literal => "t-lit",
            Kind::Comment => "t-com",
            Kind::Keyword => "t-kw",
            Kind::Function => "t-fn",
            Kind::Punct => "t-punct",
            Kind::Meta => "t-meta",
        }
    }
}

/// A coloured piece: bytes `start..end` of the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    pub start: usize,
    pub end: usize,
    pub kind: Kind,
}

/// The language of a stretch of source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    Cel,
    Rego,
    /// A block of plain text (a message, a description).
    Text,
}

/// YAML keys whose values are CEL (ValidatingAdmissionPolicy and the CEL-based policy kinds).
const CEL_KEYS: &[&str] = &[
    "expression",
    "messageExpression",
    "valueExpression",
    "keyExpression",
];

/// The tokens of `source`, in order, not overlapping.
pub fn tokens(source: &str) -> Vec<Token> {
    let mut out = Vec::new();
    // Inside a block scalar: the indentation of the line that opened it, and its language.
    let mut block: Option<(usize, Lang)> = None;
    let mut offset = 0;
    for line in source.split_inclusive('\n') {
        let content = line.trim_end_matches(['\n', '\r']);
        let indent = content.len() - content.trim_start_matches(' ').len();
        let blank = content.trim().is_empty();
        if let Some((opened_at, lang)) = block {
            if blank || indent > opened_at {
                match lang {
                    Lang::Cel => code(content, offset, Lang::Cel, &mut out),
                    Lang::Rego => code(content, offset, Lang::Rego, &mut out),
                    Lang::Text => {}
                }
                offset += line.len();
                continue;
            }
        }
        block = yaml_line(content, offset, &mut out);
        offset += line.len();
    }
    out
}

/// Colours one YAML line; returns the block scalar it opens, if any.
fn yaml_line(line: &str, base: usize, out: &mut Vec<Token>) -> Option<(usize, Lang)> {
    let bytes = line.as_bytes();
    let mut at = line.len() - line.trim_start_matches(' ').len();
    let indent = at;
    if line.starts_with("---") || line.starts_with("...") {
        out.push(tok(base, 0, 3, Kind::Meta));
        at = 3;
    }
    // Sequence dashes.
    while at < bytes.len() && bytes[at] == b'-' && bytes.get(at + 1).is_none_or(|b| *b == b' ') {
        out.push(tok(base, at, at + 1, Kind::Punct));
        at += 1;
        while at < bytes.len() && bytes[at] == b' ' {
            at += 1;
        }
    }
    if at >= bytes.len() {
        return None;
    }
    if bytes[at] == b'#' {
        out.push(tok(base, at, line.len(), Kind::Comment));
        return None;
    }
    // A key: a plain or quoted scalar followed by `:` and a space or the end of the line.
    let mut key = None;
    if let Some(end) = key_end(line, at) {
        out.push(tok(base, at, end, Kind::Key));
        out.push(tok(base, end, end + 1, Kind::Punct));
        key = Some(line[at..end].trim_matches(['"', '\'']));
        at = end + 1;
    }
    while at < bytes.len() && bytes[at] == b' ' {
        at += 1;
    }
    if at >= bytes.len() {
        return None;
    }
    let lang = match key {
        Some(k) if CEL_KEYS.contains(&k) => Lang::Cel,
        Some("rego") => Lang::Rego,
        _ => Lang::Text,
    };
    // A block scalar: `|`, `>`, with chomping and indentation indicators, then nothing or a
    // comment.
    if matches!(bytes[at], b'|' | b'>') {
        let mut end = at + 1;
        while end < bytes.len() && matches!(bytes[end], b'+' | b'-' | b'0'..=b'9') {
            end += 1;
        }
        let rest = line[end..].trim_start();
        if rest.is_empty() || rest.starts_with('#') {
            out.push(tok(base, at, end, Kind::Meta));
            if rest.starts_with('#') {
                out.push(tok(
                    base,
                    line.len() - rest.len(),
                    line.len(),
                    Kind::Comment,
                ));
            }
            return Some((indent, lang));
        }
    }
    yaml_value(line, at, base, lang, out);
    None
}

/// Where a mapping key starting at `at` ends (the position of its `:`).
fn key_end(line: &str, at: usize) -> Option<usize> {
    let bytes = line.as_bytes();
    let colon_ok =
        |i: usize| bytes.get(i) == Some(&b':') && bytes.get(i + 1).is_none_or(|b| *b == b' ');
    match bytes[at] {
        q @ (b'"' | b'\'') => {
            let close = at + 1 + line[at + 1..].find(char::from(q))?;
            colon_ok(close + 1).then_some(close + 1)
        }
        b'[' | b'{' | b'&' | b'*' | b'!' | b'|' | b'>' | b'%' | b'@' | b'`' => None,
        _ => {
            let mut i = at;
            while i < bytes.len() {
                if colon_ok(i) {
                    return (i > at).then_some(i);
                }
                if bytes[i] == b'#' && i > at && bytes[i - 1] == b' ' {
                    return None;
                }
                i += 1;
            }
            None
        }
    }
}

/// Colours a YAML value from `at`: quoted and plain scalars, flow brackets, a trailing comment.
/// The value of a CEL key is drawn as CEL, inside its quotes when quoted.
fn yaml_value(line: &str, mut at: usize, base: usize, lang: Lang, out: &mut Vec<Token>) {
    let bytes = line.as_bytes();
    while at < bytes.len() {
        let b = bytes[at];
        match b {
            b' ' | b'\t' => at += 1,
            b'#' if at == 0 || bytes[at - 1] == b' ' => {
                out.push(tok(base, at, line.len(), Kind::Comment));
                return;
            }
            b'"' | b'\'' => {
                let end = quoted_end(bytes, at);
                if lang == Lang::Cel && end > at + 1 {
                    out.push(tok(base, at, at + 1, Kind::Str));
                    let inner_end = if bytes[end - 1] == b && end - 1 > at {
                        end - 1
                    } else {
                        end
                    };
                    code(&line[at + 1..inner_end], base + at + 1, Lang::Cel, out);
                    if inner_end < end {
                        out.push(tok(base, inner_end, end, Kind::Str));
                    }
                } else {
                    out.push(tok(base, at, end, Kind::Str));
                }
                at = end;
            }
            b'[' | b']' | b'{' | b'}' | b',' => {
                out.push(tok(base, at, at + 1, Kind::Punct));
                at += 1;
            }
            _ => {
                // A plain scalar runs to a flow character or a comment.
                let mut end = at;
                while end < bytes.len()
                    && !matches!(bytes[end], b',' | b']' | b'}')
                    && !(bytes[end] == b'#' && end > at && bytes[end - 1] == b' ')
                {
                    end += 1;
                }
                let word = line[at..end].trim_end();
                let end = at + word.len();
                if lang == Lang::Cel {
                    code(word, base + at, Lang::Cel, out);
                } else if let Some(kind) = scalar_kind(word) {
                    out.push(tok(base, at, end, kind));
                }
                at = end.max(at + 1);
            }
        }
    }
}

/// The colour of a plain YAML scalar, if it has one.
fn scalar_kind(word: &str) -> Option<Kind> {
    match word {
        "true" | "false" | "True" | "False" | "TRUE" | "FALSE" | "null" | "Null" | "NULL" | "~" => {
            Some(Kind::Literal)
        }
        _ if word.starts_with(['&', '*', '!']) => Some(Kind::Meta),
        _ if is_number(word) => Some(Kind::Number),
        _ => None,
    }
}

/// A decimal number as YAML writes one: `3`, `-1.5`, `.5`, `2e10`. Read by hand: the standard
/// float parser would bring its large tables into the browser's main module.
fn is_number(word: &str) -> bool {
    let digits = word.strip_prefix(['-', '+']).unwrap_or(word);
    let (mantissa, exponent) = match digits.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e.strip_prefix(['-', '+']).unwrap_or(e))),
        None => (digits, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    (!whole.is_empty() || !fraction.is_empty())
        && all_digits(whole)
        && all_digits(fraction)
        && exponent.is_none_or(|e| !e.is_empty() && all_digits(e))
}

/// Where a string quoted at `at` ends (after its closing quote, or the line's end).
fn quoted_end(bytes: &[u8], at: usize) -> usize {
    let quote = bytes[at];
    let mut i = at + 1;
    while i < bytes.len() {
        if quote == b'"' && bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        if bytes[i] == quote {
            if quote == b'\'' && bytes.get(i + 1) == Some(&b'\'') {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    bytes.len()
}

const CEL_KEYWORDS: &[&str] = &["in", "true", "false", "null"];
const REGO_KEYWORDS: &[&str] = &[
    "package", "import", "default", "not", "some", "every", "with", "as", "if", "contains", "else",
    "in", "true", "false", "null",
];

/// Colours one line of CEL or Rego.
fn code(text: &str, base: usize, lang: Lang, out: &mut Vec<Token>) {
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        let b = bytes[at];
        if b.is_ascii_whitespace() {
            at += 1;
        } else if (lang == Lang::Rego && b == b'#')
            || (lang == Lang::Cel && text[at..].starts_with("//"))
        {
            out.push(tok(base, at, text.len(), Kind::Comment));
            return;
        } else if b == b'"' || b == b'\'' || (lang == Lang::Rego && b == b'`') {
            let end = if b == b'`' {
                text[at + 1..].find('`').map_or(text.len(), |i| at + i + 2)
            } else {
                quoted_end(bytes, at)
            };
            out.push(tok(base, at, end, Kind::Str));
            at = end;
        } else if b.is_ascii_digit() {
            let end = at
                + bytes[at..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == b'.')
                    .count();
            out.push(tok(base, at, end, Kind::Number));
            at = end;
        } else if b.is_ascii_alphabetic() || b == b'_' {
            let end = at
                + bytes[at..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                    .count();
            let word = &text[at..end];
            let called = bytes[end..].iter().find(|c| !c.is_ascii_whitespace()) == Some(&b'(');
            let keywords = if lang == Lang::Cel {
                CEL_KEYWORDS
            } else {
                REGO_KEYWORDS
            };
            if keywords.contains(&word) {
                out.push(tok(base, at, end, Kind::Keyword));
            } else if called {
                out.push(tok(base, at, end, Kind::Function));
            }
            at = end;
        } else if matches!(b, b'(' | b')' | b'[' | b']' | b'{' | b'}') {
            out.push(tok(base, at, at + 1, Kind::Punct));
            at += 1;
        } else {
            at += text[at..].chars().next().map_or(1, char::len_utf8);
        }
    }
}

fn tok(base: usize, start: usize, end: usize, kind: Kind) -> Token {
    Token {
        start: base + start,
        end: base + end,
        kind,
    }
}

/// The bracket at the caret (just before it, else just after) and its partner, as byte offsets;
/// the partner is `None` when the bracket is unmatched. Strings and comments are not skipped:
/// the answer is about the characters, which is what a person counts by eye.
pub fn matching_bracket(source: &str, caret: usize) -> Option<(usize, Option<usize>)> {
    let bytes = source.as_bytes();
    let candidates = [caret.checked_sub(1), Some(caret)];
    let at = candidates
        .into_iter()
        .flatten()
        .find(|&i| bytes.get(i).is_some_and(|b| b"()[]{}".contains(b)))?;
    let (open, close, forward) = match bytes[at] {
        b'(' => (b'(', b')', true),
        b'[' => (b'[', b']', true),
        b'{' => (b'{', b'}', true),
        b')' => (b'(', b')', false),
        b']' => (b'[', b']', false),
        _ => (b'{', b'}', false),
    };
    let mut depth = 0usize;
    let partner = if forward {
        (at + 1..bytes.len()).find(|&i| {
            if bytes[i] == open {
                depth += 1;
            } else if bytes[i] == close {
                if depth == 0 {
                    return true;
                }
                depth -= 1;
            }
            false
        })
    } else {
        (0..at).rev().find(|&i| {
            if bytes[i] == close {
                depth += 1;
            } else if bytes[i] == open {
                if depth == 0 {
                    return true;
                }
                depth -= 1;
            }
            false
        })
    };
    Some((at, partner))
}

/// A place to underline: from a 1-based line and column (bytes, as the engine reports them) to
/// the end of that line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    pub line: usize,
    pub column: usize,
    pub warning: bool,
}

/// `source` as HTML for the layer under the textarea: coloured tokens, the caret's bracket pair
/// and the underlined problems. Ends with a newline so a last empty line keeps its height.
pub fn to_html(source: &str, caret: Option<usize>, marks: &[Mark]) -> String {
    if source.len() > MAX_BYTES {
        let mut out = String::with_capacity(source.len() + 16);
        escape_into(source, &mut out);
        out.push('\n');
        return out;
    }
    let mut tokens = tokens(source);
    let pair = caret.and_then(|c| matching_bracket(source, c));
    if let Some((at, partner)) = pair {
        // The pair is drawn as brackets even where no token had them (a bracket in plain text).
        for spot in [Some(at), partner].into_iter().flatten() {
            if !tokens.iter().any(|t| t.start <= spot && spot < t.end) {
                tokens.push(Token {
                    start: spot,
                    end: spot + 1,
                    kind: Kind::Punct,
                });
            }
        }
        tokens.sort_by_key(|t| t.start);
    }
    render(
        source,
        &tokens,
        marks,
        pair.map(|(at, partner)| (at, partner, partner.is_some())),
    )
}

fn render(
    source: &str,
    tokens: &[Token],
    marks: &[Mark],
    pair: Option<(usize, Option<usize>, bool)>,
) -> String {
    let mut out = String::with_capacity(source.len() * 2 + 16);
    // Byte ranges to underline, by line.
    let mut underlines: Vec<(usize, usize, bool)> = Vec::new();
    let mut offset = 0;
    for (index, line) in source.split('\n').enumerate() {
        for mark in marks.iter().filter(|m| m.line == index + 1) {
            let mut from = mark.column.saturating_sub(1).min(line.len());
            while !line.is_char_boundary(from) {
                from -= 1;
            }
            let (from, to) = if from >= line.trim_end().len() {
                (0, line.len())
            } else {
                (from, line.len())
            };
            underlines.push((offset + from, offset + to, mark.warning));
        }
        offset += line.len() + 1;
    }
    let in_underline = |at: usize| {
        underlines
            .iter()
            .filter(|(from, to, _)| *from <= at && at < *to)
            .map(|(_, _, warning)| *warning)
            .min()
    };
    let mut at = 0;
    let mut next_token = 0;
    let mut open_mark: Option<bool> = None;
    while at < source.len() {
        // Marks open and close only between tokens, at character boundaries.
        let wanted = in_underline(at);
        if wanted != open_mark {
            if open_mark.is_some() {
                out.push_str("</span>");
            }
            if let Some(warning) = wanted {
                out.push_str(if warning {
                    "<span class=\"t-warning\">"
                } else {
                    "<span class=\"t-error\">"
                });
            }
            open_mark = wanted;
        }
        while next_token < tokens.len() && tokens[next_token].start < at {
            next_token += 1;
        }
        if let Some(token) = tokens.get(next_token).filter(|t| t.start == at) {
            let end = token.end.min(source.len());
            let pair_class = pair.and_then(|(spot, partner, matched)| {
                (at == spot || Some(at) == partner).then_some(if matched {
                    " t-match"
                } else {
                    " t-nomatch"
                })
            });
            out.push_str("<span class=\"");
            out.push_str(token.kind.class());
            if let Some(extra) = pair_class {
                out.push_str(extra);
            }
            out.push_str("\">");
            escape_into(&source[at..end], &mut out);
            out.push_str("</span>");
            at = end.max(at + 1);
            next_token += 1;
        } else {
            // Plain text up to the next token or mark boundary, whole characters only.
            let stop = tokens
                .get(next_token)
                .map_or(source.len(), |t| t.start)
                .min(
                    underlines
                        .iter()
                        .flat_map(|(from, to, _)| [*from, *to])
                        .filter(|b| *b > at)
                        .min()
                        .unwrap_or(source.len()),
                );
            let mut stop = stop.max(at + 1).min(source.len());
            while !source.is_char_boundary(stop) {
                stop += 1;
            }
            escape_into(&source[at..stop], &mut out);
            at = stop;
        }
    }
    if open_mark.is_some() {
        out.push_str("</span>");
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(text, class)` of every token, for reading.
    fn spans(source: &str) -> Vec<(&str, &'static str)> {
        tokens(source)
            .into_iter()
            .map(|t| (&source[t.start..t.end], t.kind.class()))
            .collect()
    }

    #[test]
    fn yaml_keys_values_and_comments() {
        let source = "apiVersion: v1 # the core group\nspec:\n  replicas: 3\n  - name: \"web\"\n    on: true\n---\n";
        assert_eq!(
            spans(source),
            vec![
                ("apiVersion", "t-key"),
                (":", "t-punct"),
                ("# the core group", "t-com"),
                ("spec", "t-key"),
                (":", "t-punct"),
                ("replicas", "t-key"),
                (":", "t-punct"),
                ("3", "t-num"),
                ("-", "t-punct"),
                ("name", "t-key"),
                (":", "t-punct"),
                ("\"web\"", "t-str"),
                ("on", "t-key"),
                (":", "t-punct"),
                ("true", "t-lit"),
                ("---", "t-meta"),
            ]
        );
        // A URL is not a key; a colon without a space is part of the value.
        assert_eq!(
            spans("image: nginx:1.27"),
            vec![("image", "t-key"), (":", "t-punct")]
        );
    }

    #[test]
    fn cel_and_rego_are_drawn_in_their_own_language() {
        let vap = "validations:\n  - expression: \"has(object.spec) && object.spec.replicas <= 5\"\n    messageExpression: |\n      'too many: ' + string(object.spec.replicas)\n  - message: has(x) stays text\n";
        let got = spans(vap);
        assert!(got.contains(&("has", "t-fn")), "{got:?}");
        assert!(got.contains(&("5", "t-num")), "{got:?}");
        assert!(got.contains(&("'too many: '", "t-str")), "{got:?}");
        assert!(got.contains(&("string", "t-fn")), "{got:?}");
        assert!(got.contains(&("|", "t-meta")), "{got:?}");
        // `message` is not CEL: its words are not coloured as code.
        assert_eq!(
            got.iter().filter(|(t, _)| *t == "has").count(),
            1,
            "{got:?}"
        );

        let template = "spec:\n  targets:\n    - rego: |\n        package k8s\n        violation[{\"msg\": msg}] {\n          not input.review.object.spec # why\n        }\n    - target: x\n";
        let got = spans(template);
        for expected in [
            ("package", "t-kw"),
            ("not", "t-kw"),
            ("\"msg\"", "t-str"),
            ("# why", "t-com"),
            ("target", "t-key"),
        ] {
            assert!(got.contains(&expected), "{expected:?} in {got:?}");
        }
        // After the block, YAML again: `target` is a key, not Rego.
        assert!(!got.contains(&("target", "t-fn")));
    }

    #[test]
    fn numbers_are_told_by_hand() {
        for yes in ["3", "-1.5", ".5", "5.", "2e10", "1.5E-3", "+7"] {
            assert!(is_number(yes), "{yes}");
        }
        for no in [
            "", "-", ".", "1.2.3", "e5", "1e", "12a", "v1", "0x1F", "inf", "nan",
        ] {
            assert!(!is_number(no), "{no}");
        }
    }

    #[test]
    fn brackets_find_their_partner() {
        let text = "f(a[1], {b: (c)})";
        assert_eq!(matching_bracket(text, 2), Some((1, Some(16))));
        assert_eq!(matching_bracket(text, 17), Some((16, Some(1))));
        assert_eq!(matching_bracket(text, 4), Some((3, Some(5))));
        assert_eq!(matching_bracket("(a", 1), Some((0, None)));
        assert_eq!(matching_bracket("abc", 1), None);
    }

    #[test]
    fn the_html_is_the_source_escaped_and_nothing_more() {
        let source = "name: \"<script>alert('x')</script>\" # </span><b>\nrego: |\n  x := `<i>`\n";
        let html = to_html(source, None, &[]);
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<b>") && !html.contains("<i>"), "{html}");
        // Dropping the tags gives back the source, character for character.
        assert_eq!(unescape(&strip_tags(&html)), format!("{source}\n"));
        // Multibyte text and marks at any column keep the text whole.
        let source = "ünïcode: 'é' # ✓\nbad line\n";
        let marks = [
            Mark {
                line: 1,
                column: 3,
                warning: false,
            },
            Mark {
                line: 2,
                column: 99,
                warning: true,
            },
        ];
        let html = to_html(source, Some(0), &marks);
        assert_eq!(unescape(&strip_tags(&html)), format!("{source}\n"));
        assert!(html.contains("<span class=\"t-error\">"), "{html}");
        assert!(
            html.contains("<span class=\"t-warning\">bad line</span>"),
            "{html}"
        );
    }

    #[test]
    fn the_caret_pair_is_marked() {
        let html = to_html("a: [1, 2]", Some(4), &[]);
        assert_eq!(html.matches("t-match").count(), 2, "{html}");
        let html = to_html("a: [1, 2", Some(4), &[]);
        assert_eq!(html.matches("t-nomatch").count(), 1, "{html}");
    }

    #[test]
    fn a_source_over_the_budget_is_drawn_plain() {
        let big = "a: <b>\n".repeat(MAX_BYTES / 7 + 1);
        let html = to_html(&big, Some(3), &[]);
        assert!(!html.contains("<span"));
        assert!(html.starts_with("a: &lt;b&gt;"));
    }

    fn unescape(text: &str) -> String {
        text.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&amp;", "&")
    }

    fn strip_tags(html: &str) -> String {
        let mut out = String::new();
        let mut inside = false;
        for c in html.chars() {
            match c {
                '<' => inside = true,
                '>' if inside => inside = false,
                c if !inside => out.push(c),
                _ => {}
            }
        }
        out
    }
}
