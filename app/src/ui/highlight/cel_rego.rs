//! Colouring one line of CEL or Rego: strings, numbers, keywords, function calls, brackets and
//! comments.

use super::{quoted_end, tok, Kind, Lang, Token};

const CEL_KEYWORDS: &[&str] = &["in", "true", "false", "null"];
const REGO_KEYWORDS: &[&str] = &[
    "package", "import", "default", "not", "some", "every", "with", "as", "if", "contains", "else",
    "in", "true", "false", "null",
];

/// Colours one line of CEL or Rego.
pub(super) fn code(text: &str, base: usize, lang: Lang, out: &mut Vec<Token>) {
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
