//! Colours for policy source as it is typed: YAML, with the CEL of `expression`-like fields and
//! the Rego of a ConstraintTemplate's `rego` drawn in their own languages, the bracket that
//! matches the one at the caret, and the engine's problems underlined where they are.
//!
//! The editor stays a plain `textarea` (every keyboard shortcut, undo, selection and screen
//! reader behaviour is the browser's); this draws a copy of its text underneath, in colour. The
//! output is HTML built here: every character of the source is escaped, and classes come from
//! [`Kind`] only. Work is linear in the source; sources over [`MAX_BYTES`] are drawn plain.

mod cel_rego;
mod yaml;

use super::html::escape_into;
use cel_rego::code;
use yaml::yaml_line;

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

fn tok(base: usize, start: usize, end: usize, kind: Kind) -> Token {
    Token {
        start: base + start,
        end: base + end,
        kind,
    }
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
mod tests;
