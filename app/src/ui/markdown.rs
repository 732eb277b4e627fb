//! Descriptions and remediation text as people write them: a small, safe part of Markdown.
//!
//! Understood: paragraphs, `#` headings (drawn as bold lines, so they never break the page's own
//! heading order), `-`/`*`/`+` and `1.` lists, `>` quotes, fenced code blocks, `` `code` ``,
//! `**strong**`, `*emphasis*`, `[links](https://…)`, `<https://…>` and backslash escapes.
//!
//! Safe by construction: the output is built here from a fixed set of tags; every character of
//! the text is escaped; raw HTML in the text shows as text; a link keeps its target only when it
//! is `http`, `https`, `mailto` or a path in Palisade, otherwise only its words remain. Work is
//! linear in the text, and nesting stops at [`MAX_DEPTH`].

use leptos::prelude::*;

use super::html::escape_into;

/// Deepest nesting of emphasis and links; deeper delimiters stay as written.
pub const MAX_DEPTH: usize = 8;

/// How far (bytes) a closing delimiter, backtick run or `]` is looked for: longer spans stay as
/// written, and no text makes the walk quadratic.
const REACH: usize = 4096;

/// `text` as HTML, for `inner_html`.
pub fn to_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    let lines: Vec<&str> = text.lines().collect();
    let mut at = 0;
    while at < lines.len() {
        let line = lines[at];
        let trimmed = line.trim_start();
        if trimmed.is_empty() {
            at += 1;
        } else if let Some(fence) = fence_of(trimmed) {
            out.push_str("<pre class=\"code\" tabindex=\"0\"><code>");
            at += 1;
            let mut first = true;
            while at < lines.len() && !lines[at].trim_start().starts_with(fence) {
                if !first {
                    out.push('\n');
                }
                first = false;
                escape_into(lines[at], &mut out);
                at += 1;
            }
            at += 1; // the closing fence, if any
            out.push_str("</code></pre>");
        } else if let Some(heading) = heading_of(trimmed) {
            out.push_str("<p class=\"md-heading\"><strong>");
            inline_into(heading, 0, &mut out);
            out.push_str("</strong></p>");
            at += 1;
        } else if let Some((ordered, _)) = item_of(trimmed) {
            let tag = if ordered { "ol" } else { "ul" };
            out.push('<');
            out.push_str(tag);
            out.push('>');
            while at < lines.len() {
                let Some((this_ordered, item)) = item_of(lines[at].trim_start()) else {
                    break;
                };
                if this_ordered != ordered {
                    break;
                }
                let mut words = item.to_owned();
                at += 1;
                // Lines indented under an item continue it.
                while at < lines.len()
                    && lines[at].starts_with([' ', '\t'])
                    && !lines[at].trim().is_empty()
                    && item_of(lines[at].trim_start()).is_none()
                {
                    words.push('\n');
                    words.push_str(lines[at].trim());
                    at += 1;
                }
                out.push_str("<li>");
                inline_into(&words, 0, &mut out);
                out.push_str("</li>");
            }
            out.push_str("</");
            out.push_str(tag);
            out.push('>');
        } else if trimmed.starts_with('>') {
            let mut words = String::new();
            while at < lines.len() {
                let Some(rest) = lines[at].trim_start().strip_prefix('>') else {
                    break;
                };
                if !words.is_empty() {
                    words.push('\n');
                }
                words.push_str(rest.strip_prefix(' ').unwrap_or(rest));
                at += 1;
            }
            out.push_str("<blockquote><p>");
            inline_into(&words, 0, &mut out);
            out.push_str("</p></blockquote>");
        } else {
            let mut words = String::new();
            while at < lines.len() {
                let next = lines[at].trim_start();
                let starts_other = !words.is_empty()
                    && (fence_of(next).is_some()
                        || heading_of(next).is_some()
                        || item_of(next).is_some()
                        || next.starts_with('>'));
                if next.is_empty() || starts_other {
                    break;
                }
                if !words.is_empty() {
                    words.push('\n');
                }
                words.push_str(next);
                at += 1;
            }
            out.push_str("<p>");
            inline_into(&words, 0, &mut out);
            out.push_str("</p>");
        }
    }
    out
}

/// The text drawn as Markdown, in a `div` of class `md`.
#[component]
pub fn Markdown(
    text: String,
    /// `data-testid` of the block.
    #[prop(optional)]
    testid: &'static str,
) -> impl IntoView {
    let html = to_html(&text);
    view! { <div class="md" data-testid=testid inner_html=html></div> }
}

fn fence_of(line: &str) -> Option<&'static str> {
    if line.starts_with("```") {
        Some("```")
    } else if line.starts_with("~~~") {
        Some("~~~")
    } else {
        None
    }
}

fn heading_of(line: &str) -> Option<&str> {
    let hashes = line.bytes().take_while(|b| *b == b'#').count();
    if (1..=6).contains(&hashes) {
        let rest = &line[hashes..];
        if rest.is_empty() {
            return Some("");
        }
        if let Some(words) = rest.strip_prefix([' ', '\t']) {
            return Some(words.trim().trim_end_matches('#').trim_end());
        }
    }
    None
}

/// A list item: whether it is numbered, and its words.
fn item_of(line: &str) -> Option<(bool, &str)> {
    for bullet in ["- ", "* ", "+ "] {
        if let Some(rest) = line.strip_prefix(bullet) {
            return Some((false, rest.trim_start()));
        }
    }
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    if (1..=9).contains(&digits) {
        let rest = &line[digits..];
        if let Some(words) = rest.strip_prefix(". ").or_else(|| rest.strip_prefix(") ")) {
            return Some((true, words.trim_start()));
        }
    }
    None
}

/// A link target kept as written only when it cannot run anything: `http(s)`, `mailto`, or a
/// path or anchor in Palisade (not `//host`, which leaves it).
fn safe_href(href: &str) -> bool {
    let lower = href.to_ascii_lowercase();
    lower.starts_with("https://")
        || lower.starts_with("http://")
        || lower.starts_with("mailto:")
        || (href.starts_with('/') && !href.starts_with("//"))
        || href.starts_with('#')
}

/// An autolink's target: an absolute `http(s)` or `mailto` address only.
fn is_absolute(href: &str) -> bool {
    safe_href(href) && !href.starts_with(['/', '#'])
}

fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation()
}

/// The inline part of a block: code, emphasis, links, escapes; the rest as text.
fn inline_into(text: &str, depth: usize, out: &mut String) {
    let bytes = text.as_bytes();
    let mut at = 0;
    let mut plain_from = 0;
    let flush = |from: usize, to: usize, out: &mut String| {
        if from < to {
            escape_into(&text[from..to], out);
        }
    };
    while at < bytes.len() {
        let b = bytes[at];
        match b {
            b'\\' if at + 1 < bytes.len() && is_punctuation(char::from(bytes[at + 1])) => {
                flush(plain_from, at, out);
                escape_into(&text[at + 1..at + 2], out);
                at += 2;
                plain_from = at;
            }
            b'\n' => {
                flush(plain_from, at, out);
                out.push('\n');
                at += 1;
                plain_from = at;
            }
            b'`' => {
                let run = bytes[at..].iter().take_while(|c| **c == b'`').count();
                match closing_ticks(bytes, at + run, run) {
                    Some(end) => {
                        flush(plain_from, at, out);
                        let code = &text[at + run..end];
                        let code = if code.len() > 2
                            && code.starts_with(' ')
                            && code.ends_with(' ')
                            && !code.trim().is_empty()
                        {
                            &code[1..code.len() - 1]
                        } else {
                            code
                        };
                        out.push_str("<code>");
                        escape_into(&code.replace('\n', " "), out);
                        out.push_str("</code>");
                        at = end + run;
                        plain_from = at;
                    }
                    None => at += run,
                }
            }
            b'*' | b'_' if depth < MAX_DEPTH => {
                let double = bytes.get(at + 1) == Some(&b);
                let width = if double { 2 } else { 1 };
                let delimiter = &text[at..at + width];
                let opens = bytes
                    .get(at + width)
                    .is_some_and(|c| !c.is_ascii_whitespace())
                    && (b == b'*' || at == 0 || !bytes[at - 1].is_ascii_alphanumeric());
                let close = opens
                    .then(|| closing_delimiter(text, at + width, delimiter))
                    .flatten();
                match close {
                    Some(end) => {
                        flush(plain_from, at, out);
                        let tag = if double { "strong" } else { "em" };
                        out.push('<');
                        out.push_str(tag);
                        out.push('>');
                        inline_into(&text[at + width..end], depth + 1, out);
                        out.push_str("</");
                        out.push_str(tag);
                        out.push('>');
                        at = end + width;
                        plain_from = at;
                    }
                    None => at += width,
                }
            }
            b'[' if depth < MAX_DEPTH => match link_at(text, at) {
                Some((words, href, end)) => {
                    flush(plain_from, at, out);
                    if safe_href(href) {
                        out.push_str("<a href=\"");
                        escape_into(href, out);
                        out.push_str("\" rel=\"noopener noreferrer\">");
                        inline_into(words, depth + 1, out);
                        out.push_str("</a>");
                    } else {
                        inline_into(words, depth + 1, out);
                    }
                    at = end;
                    plain_from = at;
                }
                None => at += 1,
            },
            b'<' => match text[at + 1..].find('>') {
                Some(len)
                    if is_absolute(&text[at + 1..at + 1 + len])
                        && !text[at + 1..at + 1 + len].contains(char::is_whitespace) =>
                {
                    flush(plain_from, at, out);
                    let href = &text[at + 1..at + 1 + len];
                    out.push_str("<a href=\"");
                    escape_into(href, out);
                    out.push_str("\" rel=\"noopener noreferrer\">");
                    escape_into(href, out);
                    out.push_str("</a>");
                    at += len + 2;
                    plain_from = at;
                }
                _ => at += 1,
            },
            _ => at += 1,
        }
    }
    flush(plain_from, bytes.len(), out);
}

/// Where a run of exactly `run` backticks starts, at or after `from` and within [`REACH`].
fn closing_ticks(bytes: &[u8], from: usize, run: usize) -> Option<usize> {
    let end = bytes.len().min(from + REACH);
    let mut at = from;
    while at < end {
        if bytes[at] == b'`' {
            let len = bytes[at..].iter().take_while(|c| **c == b'`').count();
            if len == run {
                return Some(at);
            }
            at += len;
        } else {
            at += 1;
        }
    }
    None
}

/// Where `delimiter` closes an emphasis opened just before `from`: after at least one character,
/// not after a space, for `_` not inside a word, and within [`REACH`].
fn closing_delimiter(text: &str, from: usize, delimiter: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let wanted = delimiter.as_bytes();
    let end = bytes.len().min(from + REACH);
    let mut found = from + 1;
    while found + wanted.len() <= end {
        if &bytes[found..found + wanted.len()] != wanted {
            found += 1;
            continue;
        }
        let after_space = bytes[found - 1].is_ascii_whitespace();
        let inside_word = wanted[0] == b'_'
            && bytes
                .get(found + wanted.len())
                .is_some_and(u8::is_ascii_alphanumeric);
        // `**` closing a single `*`: not this one.
        let longer = wanted.len() == 1 && bytes.get(found + 1) == Some(&wanted[0]);
        if !after_space && !inside_word && !longer {
            return Some(found);
        }
        found += if longer { 2 } else { 1 };
    }
    None
}

/// `[words](href)` at `at`: the words, the target and where the link ends.
fn link_at(text: &str, at: usize) -> Option<(&str, &str, usize)> {
    let rest = &text[at + 1..];
    let mut depth = 0usize;
    let mut close = None;
    for (i, c) in rest.char_indices() {
        if i > REACH {
            return None;
        }
        match c {
            '[' => depth += 1,
            ']' if depth == 0 => {
                close = Some(i);
                break;
            }
            ']' => depth -= 1,
            '\n' => return None,
            _ => {}
        }
    }
    let close = close?;
    let after = rest[close + 1..].strip_prefix('(')?;
    // The target ends at the `)` that balances its own parentheses.
    let mut open = 0usize;
    let mut end = None;
    for (i, c) in after.char_indices().take(REACH) {
        match c {
            '(' => open += 1,
            ')' if open == 0 => {
                end = Some(i);
                break;
            }
            ')' => open -= 1,
            '\n' => return None,
            _ => {}
        }
    }
    let end = end?;
    let href = after[..end].trim();
    if href.contains(char::is_whitespace) {
        return None;
    }
    let consumed = at + 1 + close + 2 + end + 1;
    Some((&rest[..close], href, consumed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_common_parts_render() {
        assert_eq!(
            to_html("Set `runAsNonRoot: true` on **every** container, see\n[the docs](https://kubernetes.io/docs/)."),
            "<p>Set <code>runAsNonRoot: true</code> on <strong>every</strong> container, see\n<a href=\"https://kubernetes.io/docs/\" rel=\"noopener noreferrer\">the docs</a>.</p>"
        );
        assert_eq!(
            to_html("# Why\n\nFirst.\n\n- one\n- *two*\n  continued\n\n1. a\n2. b"),
            "<p class=\"md-heading\"><strong>Why</strong></p><p>First.</p><ul><li>one</li><li><em>two</em>\ncontinued</li></ul><ol><li>a</li><li>b</li></ol>"
        );
        assert_eq!(
            to_html("```yaml\nsecurityContext:\n  privileged: false\n```\n> quoted\n> more"),
            "<pre class=\"code\" tabindex=\"0\"><code>securityContext:\n  privileged: false</code></pre><blockquote><p>quoted\nmore</p></blockquote>"
        );
        assert_eq!(
            to_html("see <https://example.com/a?b=1&c=2>"),
            "<p>see <a href=\"https://example.com/a?b=1&amp;c=2\" rel=\"noopener noreferrer\">https://example.com/a?b=1&amp;c=2</a></p>"
        );
    }

    #[test]
    fn what_is_not_markdown_stays_as_written() {
        // snake_case, lone stars, unclosed code, escapes.
        assert_eq!(
            to_html("run_as_non_root and 2 * 3 * 4, `open, \\*not em\\*"),
            "<p>run_as_non_root and 2 * 3 * 4, `open, *not em*</p>"
        );
        assert_eq!(to_html("a **b"), "<p>a **b</p>");
        assert_eq!(
            to_html("[no target] and [x] (y)"),
            "<p>[no target] and [x] (y)</p>"
        );
    }

    #[test]
    fn nothing_in_the_text_can_become_markup_or_script() {
        let html = to_html("<script>alert(1)</script> <img src=x onerror=alert(1)>");
        assert_eq!(
            html,
            "<p>&lt;script&gt;alert(1)&lt;/script&gt; &lt;img src=x onerror=alert(1)&gt;</p>"
        );
        // Links that would run something keep only their words.
        for target in [
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            "data:text/html,x",
            "vbscript:x",
            "//evil.example/",
        ] {
            let html = to_html(&format!("[click]({target})"));
            assert_eq!(html, "<p>click</p>", "{target}");
            let html = to_html(&format!("<{target}>"));
            assert!(!html.contains("href"), "{target}: {html}");
        }
        // A quote in a target cannot leave the attribute.
        let html = to_html("[x](https://a.example/\"onmouseover=\"alert(1))");
        assert!(
            html.contains("href=\"https://a.example/&quot;onmouseover=&quot;alert(1)\""),
            "{html}"
        );
        assert!(!html.contains("\" onmouseover"), "{html}");
        // Code blocks and spans are escaped too.
        assert_eq!(
            to_html("`<b>`\n\n```\n</pre><script>\n```"),
            "<p><code>&lt;b&gt;</code></p><pre class=\"code\" tabindex=\"0\"><code>&lt;/pre&gt;&lt;script&gt;</code></pre>"
        );
    }

    #[test]
    fn deep_nesting_stops_and_long_text_is_linear() {
        let deep = "[".repeat(50) + "x" + &"](/a)".repeat(50);
        let html = to_html(&deep);
        assert!(html.matches("<a ").count() <= MAX_DEPTH, "{html}");
        // Unclosed delimiters stay text; each looks only within its reach.
        let stars = "*a ".repeat(20_000) + "[x" + &"`".repeat(3);
        let html = to_html(&stars);
        assert_eq!(html.matches("*a").count(), 20_000);
        assert!(!html.contains("<em>"));
        // A span longer than the reach is not emphasis.
        let long = format!("*{}*", "a".repeat(REACH + 10));
        assert!(!to_html(&long).contains("<em>"));
        assert!(to_html("*short*").contains("<em>short</em>"));
    }
}
