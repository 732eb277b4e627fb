//! Text into HTML that the UI kit builds itself (`markdown`, `highlight`): the one escaper.

/// Appends `text` with what HTML gives meaning to escaped, safe in text and in double- or
/// single-quoted attribute values.
pub fn escape_into(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_character_html_reads_is_escaped() {
        let mut out = String::new();
        escape_into("<a href=\"x\" title='y'>&é</a>", &mut out);
        assert_eq!(
            out,
            "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;é&lt;/a&gt;"
        );
    }
}
