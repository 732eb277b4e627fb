//! Colouring YAML, line by line: keys, scalars, flow brackets and comments, and the block
//! scalars and values whose language is CEL or Rego.

use super::cel_rego::code;
use super::{quoted_end, tok, Kind, Lang, Token};

/// YAML keys whose values are CEL (ValidatingAdmissionPolicy and the CEL-based policy kinds).
const CEL_KEYS: &[&str] = &[
    "expression",
    "messageExpression",
    "valueExpression",
    "keyExpression",
];

/// Colours one YAML line; returns the block scalar it opens, if any.
pub(super) fn yaml_line(line: &str, base: usize, out: &mut Vec<Token>) -> Option<(usize, Lang)> {
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
pub(super) fn is_number(word: &str) -> bool {
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
