//! Policy and resource source text: splitting YAML streams into documents and reporting errors at
//! a file, line and column.
//!
//! Kubernetes manifests are YAML streams (`---` between documents). We split the stream ourselves so
//! that every document knows the line it starts on; errors inside a document are then reported at the
//! line of the whole file, not of the document.

use std::fmt;

use serde_json::Value;

/// A problem in policy or resource source, at a place a person can find.
///
/// `line` and `column` are 1-based. `0` means "unknown" (for example an error about the document as a
/// whole); [`fmt::Display`] leaves unknown parts out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SourceError {
    /// The file name as the user gave it, or `-` for standard input; empty when there is no file.
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl SourceError {
    pub fn new(file: &str, line: usize, column: usize, message: impl Into<String>) -> Self {
        SourceError {
            file: file.to_owned(),
            line,
            column,
            message: message.into(),
        }
    }
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut wrote_place = false;
        if !self.file.is_empty() {
            f.write_str(&self.file)?;
            wrote_place = true;
        }
        if self.line > 0 {
            if wrote_place {
                f.write_str(":")?;
            }
            write!(f, "{}", self.line)?;
            if self.column > 0 {
                write!(f, ":{}", self.column)?;
            }
            wrote_place = true;
        }
        if wrote_place {
            f.write_str(": ")?;
        }
        f.write_str(&self.message)
    }
}

/// An object's `apiVersion` and `kind`; `""` for either one that is missing or not a string.
pub fn type_meta(object: &Value) -> (&str, &str) {
    let field = |name| object.get(name).and_then(Value::as_str).unwrap_or_default();
    (field("apiVersion"), field("kind"))
}

/// The strings of a list, its other items skipped; empty where `value` is missing or not a list.
pub fn string_items(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// A list of strings, empty where `value` is missing or `null`; `None` where it is anything else
/// or holds anything but strings.
pub fn string_list(value: Option<&Value>) -> Option<Vec<String>> {
    match value {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Some(_) => None,
    }
}

/// One YAML document of a stream, already converted to JSON values.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub value: Value,
    /// The 1-based line of the file where this document's text begins.
    pub first_line: usize,
    /// This document's text, exactly as in the file.
    pub text: String,
}

impl Document {
    /// Where `snippet` (for example a CEL expression, or one line of it) appears in this document's
    /// text, as a 1-based (line, column) of the whole file. `offset` is a byte offset inside the snippet
    /// (for example the column an expression parser reported). Block scalars (`|` keeps the lines,
    /// `>` folds them into one) and plain one-line values are found; when nothing matches (quoted
    /// strings with escapes) it falls back to the document's first line.
    ///
    /// The search does work linear in the sizes of the document and the snippet: every comparison
    /// is paid from one budget ([`Work`]), and when it runs out the place falls back as above, so
    /// a hostile policy cannot make finding an error's line take quadratic time.
    pub fn locate(&self, snippet: &str, offset: usize) -> (usize, usize) {
        let mut work = Work::for_sizes(self.text.len(), snippet.len());
        // The whole snippet as an indented block (a literal `|` scalar): most precise, since a line
        // such as `}` may appear many times.
        if let Some(place) = self.locate_block(snippet, offset, &mut work) {
            return place;
        }
        // A line of the file whose text is a piece of the snippet covering `offset`: that is how
        // both literal and folded block scalars lay an expression out.
        for (index, line) in self.text.lines().enumerate() {
            let piece = line.trim();
            if piece.len() < 2 {
                continue;
            }
            if !work.spend(snippet.len() + piece.len()) {
                return (self.first_line, 0);
            }
            for (at, _) in snippet.match_indices(piece) {
                if at <= offset && offset <= at + piece.len() {
                    let indent = line.len() - line.trim_start().len();
                    return (self.first_line + index, indent + (offset - at) + 1);
                }
            }
        }
        // The snippet's line holding `offset`, found inside a longer line of the file
        // (`expression: "a.b == 1"`).
        let mut consumed = 0;
        for part in snippet.split('\n') {
            let end = consumed + part.len();
            if offset <= end {
                let within = offset - consumed;
                let needle = part.trim_start();
                let lead = part.len() - needle.len();
                if needle.is_empty() {
                    break;
                }
                for (index, line) in self.text.lines().enumerate() {
                    if !work.spend(line.len() + needle.len()) {
                        break;
                    }
                    if let Some(at) = line.find(needle) {
                        let column = at + within.saturating_sub(lead) + 1;
                        return (self.first_line + index, column);
                    }
                }
                break;
            }
            consumed = end + 1;
        }
        (self.first_line, 0)
    }

    /// A multi-line snippet written as a YAML block scalar (`|` or `>-`) appears in the text as the
    /// same lines, indented. Find the run of text lines that matches every non-blank snippet line, so
    /// that a line such as `}` that occurs many times is placed where it really is.
    fn locate_block(
        &self,
        snippet: &str,
        offset: usize,
        work: &mut Work,
    ) -> Option<(usize, usize)> {
        let wanted: Vec<&str> = snippet.split('\n').collect();
        if wanted.len() < 2 {
            return None;
        }
        // The snippet line holding `offset`, and the offset within it.
        let mut consumed = 0;
        let mut target = None;
        for (index, part) in wanted.iter().enumerate() {
            if offset <= consumed + part.len() {
                target = Some((index, offset - consumed));
                break;
            }
            consumed += part.len() + 1;
        }
        let (target, within) = target?;
        let first = wanted.iter().position(|l| !l.trim().is_empty())?;
        let lines: Vec<&str> = self.text.lines().collect();
        let mut matches_at = |start: usize| {
            wanted[first..].iter().enumerate().all(|(i, want)| {
                want.trim().is_empty()
                    || lines.get(start + i).is_some_and(|have| {
                        work.spend(have.len().min(want.len()) + 1) && have.trim() == want.trim()
                    })
            })
        };
        let start = (0..lines.len()).find(|&start| matches_at(start))?;
        let index = (start + target).checked_sub(first)?;
        let want = wanted[target];
        let needle = want.trim_start();
        let lead = want.len() - needle.len();
        let column = match lines.get(index).and_then(|have| have.find(needle)) {
            Some(at) if !needle.is_empty() => at + within.saturating_sub(lead) + 1,
            _ => 0,
        };
        Some((self.first_line + index, column))
    }

    /// A [`SourceError`] at `snippet[offset]` in this document (see [`Document::locate`]).
    pub fn error_at(
        &self,
        file: &str,
        snippet: &str,
        offset: usize,
        message: impl Into<String>,
    ) -> SourceError {
        let (line, column) = self.locate(snippet, offset);
        SourceError::new(file, line, column, message)
    }
}

/// A budget of comparisons, so that locating a snippet stays linear in the input's size.
struct Work {
    left: usize,
}

impl Work {
    /// Eight passes over both texts, and some room for tiny inputs.
    fn for_sizes(text: usize, snippet: usize) -> Work {
        Work {
            left: text
                .saturating_add(snippet)
                .saturating_mul(8)
                .saturating_add(4096),
        }
    }

    /// Pay `cost`; false once the budget is spent.
    fn spend(&mut self, cost: usize) -> bool {
        match self.left.checked_sub(cost) {
            Some(left) => {
                self.left = left;
                true
            }
            None => {
                self.left = 0;
                false
            }
        }
    }
}

/// Split a YAML stream into its documents and parse each one. Empty documents (nothing but comments or
/// whitespace) are left out. `file` only names the source in errors.
pub fn parse_documents(file: &str, text: &str) -> Result<Vec<Document>, SourceError> {
    let mut documents = Vec::new();
    for (first_line, chunk) in split_stream(text) {
        if let Some(document) = parse_document(file, first_line, chunk)? {
            documents.push(document);
        }
    }
    Ok(documents)
}

/// The texts of a YAML stream's documents, each with the 1-based line of the file it begins on, as
/// [`parse_documents`] cuts them (a reader that parses them one at a time with [`parse_document`]
/// gets the same documents and errors).
pub fn split_documents(text: &str) -> Vec<(usize, String)> {
    split_stream(text)
}

/// One document's text (from [`split_documents`]) parsed; `None` when it holds nothing (comments or
/// whitespace only). Errors are placed in the whole file by `first_line`.
pub fn parse_document(
    file: &str,
    first_line: usize,
    text: String,
) -> Result<Option<Document>, SourceError> {
    let value: Value = match read_budgeted(&text) {
        Ok(value) => value,
        Err(Read::OverBudget(budget)) => {
            return Err(SourceError::new(
                file,
                first_line,
                0,
                format!(
                    "this document expands to more than {budget} bytes through YAML aliases \
                     (the budget is four times its size plus 1 MiB): write the repeated parts \
                     out instead of repeating aliases"
                ),
            ));
        }
        Err(Read::Yaml(error)) => {
            let (line, column) = error
                .location()
                .map(|at| (first_line + at.line() - 1, at.column()))
                .unwrap_or((first_line, 0));
            return Err(SourceError::new(file, line, column, yaml_message(&error)));
        }
    };
    Ok((!value.is_null()).then_some(Document {
        value,
        first_line,
        text,
    }))
}

/// One YAML document read with the alias budget of [`parse_documents`], for YAML that arrives
/// inside values (a Rego policy unmarshalling an annotation) rather than as a file.
pub fn read_yaml(text: &str) -> Result<Value, String> {
    read_budgeted(text).map_err(|error| match error {
        Read::OverBudget(budget) => {
            format!("the YAML expands to more than {budget} bytes through aliases")
        }
        Read::Yaml(error) => error.to_string(),
    })
}

/// Why one YAML document could not be read.
enum Read {
    /// Following its aliases would pass this many bytes ([`expansion_budget`]).
    OverBudget(usize),
    Yaml(serde_yaml_ng::Error),
}

/// One YAML document through [`Budgeted`]: over budget by our count, or by the YAML library's own
/// limit on following aliases (a hundred jumps per event), is [`Read::OverBudget`].
fn read_budgeted(text: &str) -> Result<Value, Read> {
    // Most manifests are plain block YAML, read directly; the rest through the YAML library.
    if let Some(value) = crate::yaml_subset::read(text) {
        return Ok(value);
    }
    let budget = expansion_budget(text.len());
    let left = std::cell::Cell::new(budget);
    serde::de::DeserializeSeed::deserialize(
        Budgeted { left: &left },
        serde_yaml_ng::Deserializer::from_str(text),
    )
    .map_err(|error| {
        if left.get() == 0 || error.to_string().contains("repetition limit exceeded") {
            Read::OverBudget(budget)
        } else {
            Read::Yaml(error)
        }
    })
}

/// How many bytes a document of `len` bytes may expand to when its aliases are followed: a document
/// without aliases stays well inside it (each node is counted at its text plus a few bytes), while
/// a document of nested aliases ("billion laughs") is refused long before it fills memory.
pub fn expansion_budget(len: usize) -> usize {
    len.saturating_mul(4).saturating_add(1 << 20)
}

/// What every node costs beyond its text, so a flood of empty nodes counts too.
pub(crate) const NODE_COST: usize = 8;

/// A JSON value read from YAML while counting what it expands to: every scalar, sequence and map
/// (aliases included, each time they are followed) takes its size from `left`, and reading stops
/// with an error as soon as `left` runs out, before the expansion is built.
struct Budgeted<'a> {
    left: &'a std::cell::Cell<usize>,
}

impl Budgeted<'_> {
    fn take<E: serde::de::Error>(&self, bytes: usize) -> Result<(), E> {
        let cost = bytes.saturating_add(NODE_COST);
        match self.left.get().checked_sub(cost) {
            Some(left) => {
                self.left.set(left);
                Ok(())
            }
            None => {
                self.left.set(0);
                Err(E::custom("the document expands beyond its budget"))
            }
        }
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Budgeted<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Budgeted<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Value, E> {
        self.take(1)?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
        self.take(8)?;
        Ok(Value::from(v))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
        self.take(8)?;
        Ok(Value::from(v))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        self.take(8)?;
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
        self.take(v.len())?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Value, E> {
        self.take(v.len())?;
        Ok(Value::String(v))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        self.take(0)?;
        Ok(Value::Null)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        serde::de::DeserializeSeed::deserialize(self, deserializer)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.take(0)?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Budgeted { left: self.left })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.take(0)?;
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            self.take(key.len())?;
            let value = map.next_value_seed(Budgeted { left: self.left })?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

/// serde_yaml_ng writes places into its messages (" at line L column C"), relative to the document;
/// we print the place in the whole file ourselves, so those are taken out.
fn yaml_message(error: &serde_yaml_ng::Error) -> String {
    let mut message = error.to_string();
    while let Some(at) = message.find(" at line ") {
        let rest = &message[at + " at line ".len()..];
        let digits = |s: &str| s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let line_len = digits(rest);
        let after_line = &rest[line_len..];
        let Some(column_part) = after_line.strip_prefix(" column ") else {
            break;
        };
        let end = at + " at line ".len() + line_len + " column ".len() + digits(column_part);
        message.replace_range(at..end, "");
    }
    message
}

/// The documents of a YAML stream with the 1-based line each starts on. A line that is exactly `---`
/// (optionally followed by a space and content, or a comment) starts a new document; `...` ends one.
fn split_stream(text: &str) -> Vec<(usize, String)> {
    let mut chunks = Vec::new();
    let mut current = String::new();
    let mut first_line = 1;
    for (index, line) in text.lines().enumerate() {
        let is_start = line == "---" || line.starts_with("--- ") || line.starts_with("---\t");
        let is_end = line == "...";
        if is_start || is_end {
            if !current.trim().is_empty() {
                chunks.push((first_line, std::mem::take(&mut current)));
            }
            current.clear();
            first_line = index + 2;
            if is_start {
                // Content on the marker line itself (`--- !tag` or `--- {a: 1}`) belongs to the document.
                let rest = line[3..].trim_start();
                if !rest.is_empty() && !rest.starts_with('#') {
                    current.push_str(rest);
                    current.push('\n');
                    first_line = index + 1;
                }
            }
            continue;
        }
        current.push_str(line);
        current.push('\n');
    }
    if !current.trim().is_empty() {
        chunks.push((first_line, current));
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nested aliases: each level repeats the one before ten times, after `padding` plain items
    /// (which raise the YAML library's own limit on following aliases, as a large document does).
    fn laughs(levels: usize, padding: usize) -> String {
        let mut text = format!("pad: [{}]\n", vec!["x"; padding].join(","));
        text.push_str("a0: &a0 [\"lol lol lol lol lol lol lol lol\"]\n");
        for level in 1..=levels {
            let previous = format!("*a{}", level - 1);
            let list = [previous.as_str(); 10].join(", ");
            text.push_str(&format!("a{level}: &a{level} [{list}]\n"));
        }
        text
    }

    #[test]
    fn alias_bombs_are_refused_before_they_expand() {
        // Six levels: a million copies of the string if followed, from 100 KB of text. The YAML
        // library alone would follow them all (its limit grows with the document).
        let text = laughs(6, 50_000);
        assert!(text.len() < 110_000);
        let err = parse_documents("bomb.yaml", &text).unwrap_err();
        assert_eq!(err.line, 1);
        assert!(err.message.contains("YAML aliases"), "{err}");
        assert!(
            err.message
                .contains(&expansion_budget(text.len()).to_string()),
            "{err}"
        );
        // A small document of many levels meets the library's own limit: the same refusal.
        let err = parse_documents("bomb.yaml", &laughs(7, 0)).unwrap_err();
        assert!(err.message.contains("YAML aliases"), "{err}");
        // A few levels stay inside the budget and read as the YAML library reads them.
        let small = laughs(2, 3);
        let read = parse_documents("small.yaml", &small).unwrap();
        let plain: Value = serde_yaml_ng::from_str(&small).unwrap();
        assert_eq!(read[0].value, plain);
        assert_eq!(read[0].value["a2"].as_array().unwrap().len(), 10);
    }

    #[test]
    fn documents_read_as_the_yaml_library_reads_them() {
        let text = "kind: Pod\nmetadata:\n  name: p\n  labels: {app: web, tier: \"1\"}\nspec:\n  replicas: 3\n  ratio: 0.5\n  big: 18446744073709551615\n  neg: -4\n  on: true\n  none: ~\n  nan: .nan\n  list: [1, two, {three: 3}]\n  block: |\n    line one\n    line two\n---\n# only a comment\n---\n- 1\n- [a, b]\n";
        let read = parse_documents("f.yaml", text).unwrap();
        assert_eq!(read.len(), 2);
        for doc in &read {
            let plain: Value = serde_yaml_ng::from_str(&doc.text).unwrap();
            assert_eq!(doc.value, plain);
        }
    }

    #[test]
    fn documents_know_their_first_line() {
        let text = "a: 1\n---\n# comment only\n---\nb: 2\nc: 3\n";
        let docs = parse_documents("x.yaml", text).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].first_line, 1);
        assert_eq!(docs[1].first_line, 5);
        assert_eq!(docs[1].value["c"], 3);
    }

    #[test]
    fn yaml_errors_are_placed_in_the_whole_file() {
        let text = "a: 1\n---\nb: 2\nc: [1, 2\n";
        let error = parse_documents("p.yaml", text).unwrap_err();
        assert_eq!(error.file, "p.yaml");
        assert!(error.line >= 4, "{error}");
        assert!(error.to_string().starts_with("p.yaml:"), "{error}");
        assert!(!error.message.contains(" at line "), "{error}");
        assert!(
            error.message.contains("while parsing a flow sequence"),
            "{error}"
        );
    }

    #[test]
    fn locating_stays_linear_on_hostile_input() {
        // A block of 20,000 `}` lines in the file and an expression of 20,000 `}` lines ending in
        // a line the file lacks: matching the block from every start would take 400 million
        // comparisons.
        let lines = 20_000;
        let mut text = String::from("expression: |\n");
        for _ in 0..lines {
            text.push_str("  }\n");
        }
        let doc = Document {
            value: Value::Null,
            first_line: 1,
            text,
        };
        let mut snippet = "}\n".repeat(lines);
        snippet.push_str("missing");
        let started = std::time::Instant::now();
        let _ = doc.locate(&snippet, snippet.len() - 1);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "took {:?}",
            started.elapsed()
        );
    }

    #[test]
    fn locate_finds_an_expression_line_in_a_block_scalar() {
        let text = "spec:\n  validations:\n  - expression: >-\n      object.spec.replicas <= 5 &&\n      object.bad(\n";
        let doc = Document {
            value: Value::Null,
            first_line: 10,
            text: text.to_owned(),
        };
        let snippet = "object.spec.replicas <= 5 &&\nobject.bad(";
        let offset = snippet.find("bad").unwrap();
        assert_eq!(doc.locate(snippet, offset), (14, 14));
    }

    #[test]
    fn locate_finds_an_offset_in_a_folded_scalar() {
        let text = "spec:\n  validations:\n  - expression: >-\n      object.spec.replicas <= 5 &&\n      object.bad(\n";
        let doc = Document {
            value: Value::Null,
            first_line: 1,
            text: text.to_owned(),
        };
        // `>-` folds the two lines into one, joined by a space.
        let snippet = "object.spec.replicas <= 5 && object.bad(";
        let offset = snippet.find("bad").unwrap();
        assert_eq!(doc.locate(snippet, offset), (5, 14));
        assert_eq!(doc.locate(snippet, 0), (4, 7));
    }

    #[test]
    fn locate_finds_a_quoted_one_line_value() {
        let text = "- expression: \"object.x <= )\"\n";
        let doc = Document {
            value: Value::Null,
            first_line: 3,
            text: text.to_owned(),
        };
        assert_eq!(doc.locate("object.x <= )", 12), (3, 28));
    }

    #[test]
    fn locate_places_a_repeated_line_of_a_block_where_it_is() {
        let text = "spec:\n  rego: |\n    p {\n      true\n    }\n    q {\n      x(\n    }\n";
        let doc = Document {
            value: Value::Null,
            first_line: 1,
            text: text.to_owned(),
        };
        let snippet = "p {\n  true\n}\nq {\n  x(\n}\n";
        // The second `}` (snippet line 6) is on file line 8, not on line 5 where the first one is.
        let offset = snippet.rfind('}').unwrap();
        assert_eq!(doc.locate(snippet, offset), (8, 5));
        assert_eq!(doc.locate(snippet, snippet.find("x(").unwrap() + 1), (7, 8));
    }

    #[test]
    fn display_leaves_out_unknown_parts() {
        assert_eq!(SourceError::new("", 0, 0, "boom").to_string(), "boom");
        assert_eq!(SourceError::new("f", 3, 0, "boom").to_string(), "f:3: boom");
        assert_eq!(
            SourceError::new("f", 3, 7, "boom").to_string(),
            "f:3:7: boom"
        );
    }
}
