//! The plain YAML most manifests are written in, read straight into JSON values: block mappings
//! and sequences by indentation, plain and quoted scalars, empty flow collections, comments on
//! lines of their own. That is what `kubectl get -o yaml`, Helm and most hand-written manifests
//! hold, and reading it here is several times faster than through the YAML library's events.
//!
//! [`read`] answers only when it is certain to give exactly the value the YAML library gives
//! ([`super::source`] reads through it): anything else — anchors, aliases, tags, block and
//! multi-line scalars, flow collections with content, escapes, tabs, trailing comments, keys that
//! would not read as strings, duplicate keys, a number it does not spell out the same way — makes
//! it answer `None`, and the YAML library reads the document (and reports its errors). A test holds
//! it to the library over every YAML file of the upstream oracles.

use serde_json::{Map, Number, Value};

/// The value of one YAML document, when it is written in the subset; `None` otherwise.
pub fn read(text: &str) -> Option<Value> {
    if text.contains(['\t', '\r', '\u{feff}']) {
        return None;
    }
    let lines: Vec<Line<'_>> = text.lines().filter_map(Line::of).collect();
    let first = lines.first()?;
    if first.indent != 0 || first.text.starts_with('%') {
        return None;
    }
    let mut reader = Reader {
        lines,
        at: 0,
        left: crate::source::expansion_budget(text.len()),
    };
    let value = reader.node(0)?;
    (reader.at == reader.lines.len()).then_some(value)
}

/// A line with content: its indentation and what follows it. Blank lines and comment lines are
/// not lines here.
#[derive(Clone, Copy)]
struct Line<'a> {
    indent: usize,
    text: &'a str,
}

impl<'a> Line<'a> {
    fn of(line: &'a str) -> Option<Line<'a>> {
        let text = line.trim_start_matches(' ');
        if text.is_empty() || text.starts_with('#') {
            return None;
        }
        Some(Line {
            indent: line.len() - text.len(),
            text: text.trim_end_matches(' '),
        })
    }
}

struct Reader<'a> {
    lines: Vec<Line<'a>>,
    at: usize,
    /// What is left of the document's budget, counted as the YAML library's reading counts it
    /// (see [`crate::source::expansion_budget`]): a document over it is left to that reading,
    /// which refuses it.
    left: usize,
}

impl<'a> Reader<'a> {
    /// Pay for a node of `bytes`.
    fn take(&mut self, bytes: usize) -> Option<()> {
        self.left = self
            .left
            .checked_sub(bytes.saturating_add(crate::source::NODE_COST))?;
        Some(())
    }

    /// Pay for a scalar (or an empty collection) as its value.
    fn pay(&mut self, value: Value) -> Option<Value> {
        let bytes = match &value {
            Value::Bool(_) => 1,
            Value::Number(_) => 8,
            Value::String(s) => s.len(),
            Value::Null | Value::Array(_) | Value::Object(_) => 0,
        };
        self.take(bytes)?;
        Some(value)
    }

    fn peek(&self) -> Option<Line<'a>> {
        self.lines.get(self.at).copied()
    }

    /// The block node that starts at the current line, indented by `indent`.
    fn node(&mut self, indent: usize) -> Option<Value> {
        let line = self.peek()?;
        if line.indent != indent {
            return None;
        }
        if is_item(line.text) {
            self.sequence(indent)
        } else {
            self.mapping(indent, None)
        }
    }

    /// Items `- …` at `indent`, as long as they last.
    fn sequence(&mut self, indent: usize) -> Option<Value> {
        self.take(0)?;
        let mut items = Vec::new();
        while let Some(line) = self
            .peek()
            .filter(|l| l.indent == indent && is_item(l.text))
        {
            self.at += 1;
            let rest = line.text[1..].trim_start_matches(' ');
            if rest.is_empty() {
                items.push(self.nested(indent, false)?);
                continue;
            }
            // The item's content starts this many columns in: a mapping written on the dash's
            // line continues at that column.
            let column = indent + (line.text.len() - rest.len());
            if is_item(rest) {
                return None;
            }
            match entry(rest)? {
                Some((key, value)) => {
                    let first = self.entry_value(column, value)?;
                    items.push(self.mapping(column, Some((key, first)))?);
                }
                None => {
                    let item = scalar(rest)?;
                    items.push(self.pay(item)?);
                    self.after_scalar(indent)?;
                }
            }
        }
        Some(Value::Array(items))
    }

    /// Entries `key: …` at `indent` (after `first`, read already from a dash's line).
    fn mapping(&mut self, indent: usize, first: Option<(&'a str, Value)>) -> Option<Value> {
        self.take(0)?;
        let mut map = Map::new();
        if let Some((key, value)) = first {
            self.take(key.len())?;
            map.insert(key.to_owned(), value);
        }
        while let Some(line) = self
            .peek()
            .filter(|l| l.indent == indent && !is_item(l.text))
        {
            self.at += 1;
            let (key, value) = entry(line.text)??;
            self.take(key.len())?;
            let value = self.entry_value(indent, value)?;
            if map.insert(key.to_owned(), value).is_some() {
                return None;
            }
        }
        // Whatever comes next must belong to an enclosing node.
        match self.peek() {
            Some(next) if next.indent > indent => None,
            _ => Some(Value::Object(map)),
        }
    }

    /// The value of an entry of the mapping at `indent` whose text after the colon is `value`.
    fn entry_value(&mut self, indent: usize, value: &str) -> Option<Value> {
        if value.is_empty() {
            return self.nested(indent, true);
        }
        let value = scalar(value)?;
        self.after_scalar(indent)?;
        self.pay(value)
    }

    /// What follows a key or a dash with nothing after it: a deeper block node, a sequence at
    /// the key's own indentation (`key:` then `- …`, as kubectl writes lists), or null.
    fn nested(&mut self, indent: usize, after_key: bool) -> Option<Value> {
        match self.peek() {
            Some(next) if next.indent > indent => self.node(next.indent),
            Some(next) if after_key && next.indent == indent && is_item(next.text) => {
                self.sequence(indent)
            }
            _ => self.pay(Value::Null),
        }
    }

    /// A scalar ended its line: a deeper line after it would continue it (a multi-line scalar,
    /// not in the subset).
    fn after_scalar(&self, indent: usize) -> Option<()> {
        match self.peek() {
            Some(next) if next.indent > indent => None,
            _ => Some(()),
        }
    }
}

/// Whether a line's text is a sequence item.
fn is_item(text: &str) -> bool {
    text == "-" || text.starts_with("- ")
}

/// `key: value` or `key:` as (key, value text); `Some(None)` when the text is no entry at all
/// (a scalar), `None` when it is an entry outside the subset.
fn entry(text: &str) -> Option<Option<(&str, &str)>> {
    let (key, value) = match text.find(": ") {
        Some(at) => (&text[..at], text[at + 2..].trim_start_matches(' ')),
        None => match text.strip_suffix(':') {
            Some(key) => (key, ""),
            None => return Some(None),
        },
    };
    plain_key(key).then_some(Some((key, value)))
}

/// A key the YAML library reads as this very string: letters, digits and `-._/`, not starting
/// with anything that could make it a number, null or boolean.
fn plain_key(key: &str) -> bool {
    let Some(first) = key.bytes().next() else {
        return false;
    };
    first.is_ascii_alphabetic()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'/'))
        && !matches!(
            key,
            "null" | "Null" | "NULL" | "true" | "True" | "TRUE" | "false" | "False" | "FALSE"
        )
}

/// One scalar written on a single line, as the YAML library reads it.
fn scalar(text: &str) -> Option<Value> {
    match text.as_bytes()[0] {
        b'\'' => single_quoted(text),
        b'"' => double_quoted(text),
        b'[' => (text == "[]").then(|| Value::Array(Vec::new())),
        b'{' => (text == "{}").then(|| Value::Object(Map::new())),
        // Indicators that start something outside the subset (or an error).
        b'-' | b'?' | b':' | b',' | b']' | b'}' | b'#' | b'&' | b'*' | b'!' | b'|' | b'>'
        | b'%' | b'@' | b'`' => None,
        _ => plain(text),
    }
}

/// `'…'` with `''` for a quote, and nothing after it.
fn single_quoted(text: &str) -> Option<Value> {
    let inner = text.strip_prefix('\'')?.strip_suffix('\'')?;
    // A lone quote inside would end the scalar early: an error or more text after it.
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' && chars.next() != Some('\'') {
            return None;
        }
        out.push(c);
    }
    Some(Value::String(out))
}

/// `"…"` without escapes, and nothing after it.
fn double_quoted(text: &str) -> Option<Value> {
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains(['"', '\\']) {
        return None;
    }
    Some(Value::String(inner.to_owned()))
}

/// A plain scalar: null, a boolean, a number or a string, as the YAML library resolves it.
fn plain(text: &str) -> Option<Value> {
    // A comment after it, or a colon that would make it a key: not in the subset.
    if text.contains(" #") || text.contains(": ") || text.ends_with(':') {
        return None;
    }
    match text {
        "null" | "Null" | "NULL" | "~" => return Some(Value::Null),
        "true" | "True" | "TRUE" => return Some(Value::Bool(true)),
        "false" | "False" | "FALSE" => return Some(Value::Bool(false)),
        _ => {}
    }
    let first = text.as_bytes()[0];
    if !(first.is_ascii_digit() || matches!(first, b'+' | b'.')) {
        return Some(Value::String(text.to_owned()));
    }
    if first == b'+' || first == b'.' || text.starts_with("0x") || text.starts_with("0o") {
        return None;
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        // Leading zeros make a string in YAML 1.2.
        if text.len() > 1 && first == b'0' {
            return Some(Value::String(text.to_owned()));
        }
        return text.parse::<u64>().ok().map(|n| Value::Number(n.into()));
    }
    if text.starts_with("0b") {
        return None;
    }
    // Digits with more: a float if Rust reads one (as the library does), else a string.
    match text.parse::<f64>() {
        Ok(float) if float.is_finite() => Number::from_f64(float).map(Value::Number),
        Ok(_) => None,
        Err(_) => Some(Value::String(text.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn library(text: &str) -> Value {
        serde_yaml_ng::from_str(text).unwrap()
    }

    #[test]
    fn reads_a_manifest_as_the_library_does() {
        let text = "\
apiVersion: v1
kind: Pod
metadata:
  name: web-0
  labels:
    app: web
    tier: ''
  annotations:
    note: \"it's fine\"
    empty:
spec:
  containers:
  - name: app
    image: registry.example/app:1.2
    args: [] # comment lines are fine, trailing ones are not
    ports:
    - containerPort: 8080
      protocol: TCP
    resources:
      limits: {cpu: '2'}
  - name: side
    image: busybox
    securityContext:
      runAsUser: 1000
      privileged: false
      ratio: 0.5
  volumes:
    -   name: data
        emptyDir: {}
  tolerations:
  -
    key: a
";
        // The comment after `args: []` is outside the subset: the library reads it.
        assert_eq!(read(text), None);
        let text = text
            .replace(" # comment lines are fine, trailing ones are not", "")
            .replace("limits: {cpu: '2'}", "limits:\n        cpu: '2'");
        let value = read(&text).expect("in the subset");
        assert_eq!(value, library(&text));
        assert_eq!(
            value["spec"]["containers"][1]["securityContext"]["runAsUser"],
            1000
        );
        assert_eq!(value["metadata"]["annotations"]["empty"], Value::Null);
        assert_eq!(
            value["spec"]["volumes"][0]["emptyDir"],
            serde_json::json!({})
        );
    }

    /// Scalars either read as the library reads them or are left to it.
    #[test]
    fn scalars_agree_with_the_library_or_are_left_to_it() {
        let cases = [
            "",
            "~",
            "null",
            "NULL",
            "Null",
            "nULL",
            "true",
            "True",
            "TRUE",
            "tRUE",
            "yes",
            "no",
            "on",
            "off",
            "y",
            "0",
            "00",
            "007",
            "08",
            "1",
            "-1",
            "+1",
            "-0",
            "+0",
            "12345678901234567890",
            "123456789012345678901234567890",
            "1.5",
            "1.",
            ".5",
            "1e3",
            "1E3",
            "1e-3",
            "1e999",
            "-1.5",
            "1_000",
            "0x1F",
            "0o17",
            "0b101",
            "0xZZ",
            ".inf",
            "-.inf",
            ".nan",
            "inf",
            "nan",
            "infinity",
            "NaN",
            "1Gi",
            "100m",
            "500Mi",
            "1.8.0",
            "10.0.0.1",
            "2001-12-14",
            "12:30",
            "1:2",
            "a:b",
            "http://x.example/a#b",
            "a #b",
            "a#b",
            "a: b",
            "a:",
            "'it''s'",
            "'a'b'",
            "\"q\"",
            "\"a\\nb\"",
            "\"a\"b\"",
            "[]",
            "[a]",
            "{}",
            "{a: 1}",
            "&a x",
            "*a",
            "!!str 1",
            "|",
            ">",
            "@x",
            "`x",
            "%x",
            "- a",
            "-a",
            "?x",
            ",x",
            "é",
            "x y z",
            "'' ",
            "3.14e+2",
        ];
        let mut read_here = 0;
        for case in cases {
            let text = format!("key: {case}\n");
            let library = serde_yaml_ng::from_str::<Value>(&text).ok();
            if let Some(value) = read(&text) {
                read_here += 1;
                assert_eq!(Some(&value), library.as_ref(), "{case:?}");
            }
        }
        assert!(read_here >= 45, "only {read_here} cases read in the subset");
    }

    /// Keys read as the very strings they are, as the library reads them.
    #[test]
    fn keys_agree_with_the_library() {
        for key in [
            "yes",
            "no",
            "on",
            "off",
            "y",
            "n",
            "inf",
            "nan",
            "e5",
            "Infinity",
            "x.y/z_1-2",
        ] {
            let text = format!("{key}: 1\n");
            let library: Value = serde_yaml_ng::from_str(&text).unwrap();
            assert_eq!(read(&text), Some(library), "{key:?}");
        }
    }

    #[test]
    fn structures_outside_the_subset_are_left_to_the_library() {
        for text in [
            "a: 1\na: 2\n",
            "a:\n  b: 1\n c: 2\n",
            "a: x\n  y\n",
            "- - a\n",
            "a: |\n  text\n",
            "\"quoted key\": 1\n",
            "1: a\n",
            "true: a\n",
            "a: &x 1\nb: *x\n",
            "a:\n\tb: 1\n",
            "  a: 1\n",
            "plain\n",
            "%YAML 1.2\n",
        ] {
            assert_eq!(read(text), None, "{text:?}");
        }
    }
}
