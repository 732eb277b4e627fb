//! `validate.pattern` and `validate.anyPattern`: an overlay of the resource whose leaves are
//! values, wildcards (`*`, `?`) and operators (`>`, `<=`, `!`, `|`, `&`, ranges), and whose keys
//! may carry anchors: `(key)` conditional, `=(key)` equality, `^(key)` existence, `X(key)`
//! negation, `<(key)` global and `+(key)` (add if absent, a mutation: ignored here).
//!
//! The walk follows Kyverno's: at each object, anchors first (by name), then the other keys
//! (those with nested anchors first); a conditional anchor that does not hold makes the element
//! (and, when nothing else applied, the rule) skip rather than fail. Numbers, quantities
//! (`500m`, `1Gi`) and durations (`1h30m`) compare as Kyverno compares them.

use std::sync::LazyLock;

use serde_json::Value;

use crate::go_duration;

/// The deepest pattern read.
pub const MAX_PATTERN_DEPTH: usize = 64;

const CONDITIONAL: &str = "conditional anchor mismatch";
const GLOBAL: &str = "global anchor mismatch";
const NEGATION: &str = "negation anchor matched in resource";

/// What a pattern said about a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Failed at `path` (a JSON-pointer-like path ending in `/`), with why.
    Fail {
        path: String,
        why: String,
    },
    /// A conditional or global anchor did not hold: the rule does not apply.
    Skip(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AnchorKind {
    Condition,
    Global,
    Negation,
    AddIfNotPresent,
    Equality,
    Existence,
}

/// A key's anchor and the key inside it.
fn parse_anchor(key: &str) -> Option<(AnchorKind, &str)> {
    let key = key.trim();
    let (kind, rest) = match key.as_bytes().first()? {
        b'+' => (AnchorKind::AddIfNotPresent, &key[1..]),
        b'<' => (AnchorKind::Global, &key[1..]),
        b'=' => (AnchorKind::Equality, &key[1..]),
        b'X' => (AnchorKind::Negation, &key[1..]),
        b'^' => (AnchorKind::Existence, &key[1..]),
        _ => (AnchorKind::Condition, key),
    };
    let inner = rest.strip_prefix('(')?.strip_suffix(')')?;
    if inner.is_empty() {
        return None;
    }
    Some((kind, inner))
}

/// Check a pattern when the policy is read: its depth, and keys that start like an anchor but
/// are not one. Returns the offending text and why.
pub fn check(pattern: &Value) -> Result<(), (String, String)> {
    check_at(pattern, 0)
}

fn check_at(pattern: &Value, depth: usize) -> Result<(), (String, String)> {
    if depth > MAX_PATTERN_DEPTH {
        return Err((
            String::new(),
            format!("the pattern nests deeper than {MAX_PATTERN_DEPTH} levels"),
        ));
    }
    match pattern {
        Value::Object(map) => {
            for (key, value) in map {
                let looks_anchored = key.starts_with('(')
                    || (key.len() > 1
                        && matches!(key.as_bytes()[0], b'+' | b'<' | b'=' | b'X' | b'^')
                        && key.as_bytes()[1] == b'(');
                if looks_anchored && parse_anchor(key).is_none() {
                    return Err((key.clone(), format!("`{key}` is not a valid anchor")));
                }
                if let Some((AnchorKind::Existence, _)) = parse_anchor(key) {
                    if !value.is_array() {
                        return Err((
                            key.clone(),
                            format!("the existence anchor `{key}` needs a list"),
                        ));
                    }
                }
                check_at(value, depth + 1)?;
            }
            Ok(())
        }
        Value::Array(items) => items.iter().try_for_each(|i| check_at(i, depth + 1)),
        _ => Ok(()),
    }
}

#[derive(Debug, Clone)]
enum Kind {
    Anchor(AnchorKind),
    /// A skip carried up from a nested level.
    Skipped,
    Plain,
}

#[derive(Debug, Clone)]
struct Error {
    kind: Kind,
    msg: String,
}

impl Error {
    fn plain(msg: String) -> Error {
        Error {
            kind: Kind::Plain,
            msg,
        }
    }

    fn anchor(kind: AnchorKind, prefix: &str, msg: &str) -> Error {
        Error {
            kind: Kind::Anchor(kind),
            msg: format!("{prefix}: {msg}"),
        }
    }

    fn is_skip(&self) -> bool {
        match self.kind {
            Kind::Anchor(kind) => matches!(kind, AnchorKind::Condition | AnchorKind::Global),
            _ => self.msg.contains(CONDITIONAL) || self.msg.contains(GLOBAL),
        }
    }
}

type Walk = Result<(), (String, Error)>;

/// Validate `resource` against `pattern`.
pub fn validate(resource: &Value, pattern: &Value) -> Verdict {
    match element(resource, pattern, "/") {
        Ok(()) => Verdict::Pass,
        Err((path, error)) => {
            // A negation anchor's error and any other error fail alike.
            if error.is_skip() {
                Verdict::Skip(error.msg)
            } else {
                Verdict::Fail {
                    path,
                    why: error.msg,
                }
            }
        }
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<nil>".into(),
        other => other.to_string(),
    }
}

fn element(resource: &Value, pattern: &Value, path: &str) -> Walk {
    match pattern {
        Value::Object(map) => {
            let Value::Object(resource_map) = resource else {
                return Err((
                    path.to_owned(),
                    Error::plain(format!(
                        "pattern and resource have different structures. Path: {path}"
                    )),
                ));
            };
            validate_map(resource_map, map, path)
        }
        Value::Array(items) => {
            let Value::Array(resource_items) = resource else {
                return Err((
                    path.to_owned(),
                    Error::plain(format!(
                        "validation rule failed at path {path}, resource does not satisfy the expected overlay pattern"
                    )),
                ));
            };
            validate_array(resource_items, items, path)
        }
        scalar => {
            let mismatch = || {
                Err((
                    path.to_owned(),
                    Error::plain(format!(
                        "resource value '{}' does not match '{}' at path {path}",
                        describe(resource),
                        describe(scalar)
                    )),
                ))
            };
            match resource {
                Value::Array(items) => {
                    if items.iter().all(|item| value_matches(item, scalar)) {
                        Ok(())
                    } else {
                        mismatch()
                    }
                }
                _ if value_matches(resource, scalar) => Ok(()),
                _ => mismatch(),
            }
        }
    }
}

/// Wildcard keys under `metadata.labels` and `metadata.annotations` of the pattern take the
/// name of the first resource key they match.
fn expand_metadata(
    pattern: &serde_json::Map<String, Value>,
    resource: &serde_json::Map<String, Value>,
) -> serde_json::Map<String, Value> {
    let mut pattern = pattern.clone();
    let Some(resource_meta) = resource.get("metadata").and_then(Value::as_object) else {
        return pattern;
    };
    let meta_key = pattern
        .keys()
        .find(|k| *k == "metadata" || parse_anchor(k).is_some_and(|(_, key)| key == "metadata"))
        .cloned();
    let Some(meta_key) = meta_key else {
        return pattern;
    };
    let Some(Value::Object(meta)) = pattern.get_mut(&meta_key) else {
        return pattern;
    };
    for tag in ["labels", "annotations"] {
        let tag_key = meta
            .keys()
            .find(|k| *k == tag || parse_anchor(k).is_some_and(|(_, key)| key == tag))
            .cloned();
        let Some(tag_key) = tag_key else { continue };
        let Some(Value::Object(entries)) = meta.get(&tag_key) else {
            continue;
        };
        let Some(have) = resource_meta
            .iter()
            .find(|(k, _)| *k == tag || parse_anchor(k).is_some_and(|(_, key)| key == tag))
            .and_then(|(_, v)| v.as_object())
        else {
            continue;
        };
        let mut names: Vec<&String> = have.keys().collect();
        names.sort();
        let mut expanded = serde_json::Map::new();
        for (key, value) in entries {
            if !(key.contains('*') || key.contains('?')) {
                expanded.insert(key.clone(), value.clone());
                continue;
            }
            let (prefix, bare) = match parse_anchor(key) {
                Some((kind, inner)) => (anchor_prefix(kind), inner),
                None => ("", key.as_str()),
            };
            let found = names.iter().find(|n| wildcard_match(bare, n));
            let name = match found {
                Some(n) if prefix.is_empty() => (*n).clone(),
                Some(n) => format!("{prefix}({n})"),
                None => key.clone(),
            };
            expanded.insert(name, value.clone());
        }
        meta.insert(tag_key, Value::Object(expanded));
    }
    pattern
}

fn anchor_prefix(kind: AnchorKind) -> &'static str {
    match kind {
        AnchorKind::Condition => "",
        AnchorKind::Global => "<",
        AnchorKind::Negation => "X",
        AnchorKind::AddIfNotPresent => "+",
        AnchorKind::Equality => "=",
        AnchorKind::Existence => "^",
    }
}

fn has_nested_anchors(pattern: &Value) -> bool {
    match pattern {
        Value::Object(map) => map.iter().any(|(k, v)| {
            parse_anchor(k).is_some_and(|(kind, _)| kind != AnchorKind::AddIfNotPresent)
                || has_nested_anchors(v)
        }),
        Value::Array(items) => items.iter().any(has_nested_anchors),
        _ => false,
    }
}

fn validate_map(
    resource: &serde_json::Map<String, Value>,
    pattern: &serde_json::Map<String, Value>,
    path: &str,
) -> Walk {
    let pattern = expand_metadata(pattern, resource);
    let mut anchors: Vec<(&String, &Value)> = Vec::new();
    let mut others: Vec<(&String, &Value)> = Vec::new();
    for (key, value) in &pattern {
        match parse_anchor(key) {
            Some((
                AnchorKind::Condition
                | AnchorKind::Existence
                | AnchorKind::Equality
                | AnchorKind::Negation,
                _,
            )) => anchors.push((key, value)),
            _ => others.push((key, value)),
        }
    }
    anchors.sort_by(|a, b| a.0.cmp(b.0));
    let mut skips: Vec<Error> = Vec::new();
    let mut applied = 0;
    let sibling_skip = |skips: &[Error]| skips.iter().any(|e| !matches!(e.kind, Kind::Skipped));
    for (key, value) in &anchors {
        match handle(key, value, resource, path) {
            Ok(()) => applied += 1,
            Err((at, error)) => {
                if error.is_skip() {
                    skips.push(error);
                    continue;
                }
                if !sibling_skip(&skips) {
                    return Err((at, error));
                }
            }
        }
    }
    if !skips.is_empty() && (applied == 0 || sibling_skip(&skips)) {
        let msg = skips
            .iter()
            .map(|e| e.msg.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        return Err((
            path.to_owned(),
            Error {
                kind: Kind::Skipped,
                msg,
            },
        ));
    }
    // Global anchors and keys with nested anchors first (in reverse name order, as they are
    // pushed to the front), then the rest by name.
    others.sort_by(|a, b| a.0.cmp(b.0));
    let mut front = Vec::new();
    let mut back = Vec::new();
    for (key, value) in others {
        let global = matches!(parse_anchor(key), Some((AnchorKind::Global, _)));
        if global || has_nested_anchors(value) {
            front.push((key, value));
        } else {
            back.push((key, value));
        }
    }
    front.reverse();
    for (key, value) in front.into_iter().chain(back) {
        handle(key, value, resource, path)?;
    }
    Ok(())
}

fn handle(
    key: &str,
    pattern: &Value,
    resource: &serde_json::Map<String, Value>,
    path: &str,
) -> Walk {
    let Some((kind, name)) = parse_anchor(key) else {
        let current = format!("{path}{key}/");
        let value = resource.get(key);
        if pattern.as_str() == Some("*") {
            return match value {
                Some(v) if !v.is_null() => Ok(()),
                _ => Err((
                    path.to_owned(),
                    Error::plain(format!("{path}/{key} not found")),
                )),
            };
        }
        return element(value.unwrap_or(&Value::Null), pattern, &current);
    };
    let current = format!("{path}{name}/");
    let value = resource.get(name);
    match kind {
        AnchorKind::Negation => match value {
            Some(_) => Err((
                current.clone(),
                Error::anchor(kind, NEGATION, &format!("{current} is not allowed")),
            )),
            None => Ok(()),
        },
        AnchorKind::Equality => match value {
            Some(v) => element(v, pattern, &current),
            None => Ok(()),
        },
        AnchorKind::Condition => match value {
            Some(v) => element(v, pattern, &current)
                .map_err(|(at, e)| (at, Error::anchor(kind, CONDITIONAL, &e.msg))),
            None => Err((
                current,
                Error::anchor(
                    kind,
                    CONDITIONAL,
                    "conditional anchor key doesn't exist in the resource",
                ),
            )),
        },
        AnchorKind::Global => match value {
            Some(v) => element(v, pattern, &current)
                .map_err(|(at, e)| (at, Error::anchor(kind, GLOBAL, &e.msg))),
            None => Ok(()),
        },
        AnchorKind::AddIfNotPresent => Ok(()),
        AnchorKind::Existence => {
            let Some(value) = value else { return Ok(()) };
            let Value::Array(items) = value else {
                return Err((
                    current,
                    Error::plain(
                        "existence anchor ^() can be used only on list/array type resource".into(),
                    ),
                ));
            };
            let Value::Array(wanted) = pattern else {
                return Err((
                    current,
                    Error::plain("an existence anchor's pattern must be a list".into()),
                ));
            };
            for want in wanted {
                if !want.is_object() {
                    return Err((
                        current,
                        Error::plain("an existence anchor's pattern must list objects".into()),
                    ));
                }
                let found = items
                    .iter()
                    .enumerate()
                    .any(|(i, item)| element(item, want, &format!("{current}{i}/")).is_ok());
                if !found {
                    return Err((
                        current.clone(),
                        Error::plain(format!(
                            "existence anchor validation failed at path {current}"
                        )),
                    ));
                }
            }
            Ok(())
        }
    }
}

fn validate_array(resource: &[Value], pattern: &[Value], path: &str) -> Walk {
    let Some(first) = pattern.first() else {
        return Err((path.to_owned(), Error::plain("pattern Array empty".into())));
    };
    match first {
        Value::Object(_) => {
            let mut applied = 0;
            let mut skips = Vec::new();
            for (i, item) in resource.iter().enumerate() {
                match element(item, first, &format!("{path}{i}/")) {
                    Ok(()) => applied += 1,
                    Err((_, e)) if e.is_skip() => skips.push(e),
                    Err(other) => return Err(other),
                }
            }
            all_skipped(path, applied, &skips)
        }
        Value::Array(_) => {
            if resource.len() < pattern.len() {
                return Err((
                    String::new(),
                    Error::plain(format!(
                        "validate Array failed, array length mismatch, resource Array len is {} and pattern Array len is {}",
                        resource.len(),
                        pattern.len()
                    )),
                ));
            }
            let mut applied = 0;
            let mut skips = Vec::new();
            for (i, want) in pattern.iter().enumerate() {
                match element(&resource[i], want, &format!("{path}{i}/")) {
                    Ok(()) => applied += 1,
                    Err((_, e)) if e.is_skip() => skips.push(e),
                    Err(other) => return Err(other),
                }
            }
            all_skipped(path, applied, &skips)
        }
        scalar => element(&Value::Array(resource.to_vec()), scalar, path),
    }
}

// ------------------------------------------------------------------------------------ values

/// Whether a resource value satisfies a scalar pattern.
pub fn value_matches(value: &Value, pattern: &Value) -> bool {
    match pattern {
        Value::Bool(b) => value.as_bool() == Some(*b),
        Value::Number(n) => {
            if let Some(want) = n.as_i64() {
                match value {
                    Value::Number(v) => match v.as_i64() {
                        Some(i) => i == want,
                        None => v
                            .as_f64()
                            .is_some_and(|f| f.fract() == 0.0 && f as i64 == want),
                    },
                    Value::String(s) => s.parse::<i64>().is_ok_and(|i| i == want),
                    _ => false,
                }
            } else {
                let want = n.as_f64().unwrap_or(f64::NAN);
                match value {
                    Value::Number(v) => match v.as_i64() {
                        Some(i) => want.fract() == 0.0 && want as i64 == i,
                        None => v.as_f64() == Some(want),
                    },
                    Value::String(s) => s.parse::<f64>().is_ok_and(|f| f == want),
                    _ => false,
                }
            }
        }
        Value::Null => match value {
            Value::Number(n) => n.as_f64() == Some(0.0),
            Value::String(s) => s.is_empty(),
            Value::Bool(b) => !b,
            Value::Null => true,
            _ => false,
        },
        Value::Object(_) => value.is_object(),
        Value::String(p) => string_patterns(value, p),
        Value::Array(_) => false,
    }
}

fn string_patterns(value: &Value, pattern: &str) -> bool {
    if value.as_str() == Some(pattern) {
        return true;
    }
    pattern.split('|').any(|alternative| {
        alternative
            .trim_matches(' ')
            .split('&')
            .all(|condition| string_pattern(value, condition.trim_matches(' ')))
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Equal,
    MoreEqual,
    LessEqual,
    NotEqual,
    More,
    Less,
    InRange,
    NotInRange,
}

static IN_RANGE: LazyLock<Option<regex::Regex>> = LazyLock::new(|| {
    regex::Regex::new(r"^([-|\+]?\d+(?:\.\d+)?[A-Za-z]*)-([-|\+]?\d+(?:\.\d+)?[A-Za-z]*)$").ok()
});
static NOT_IN_RANGE: LazyLock<Option<regex::Regex>> = LazyLock::new(|| {
    regex::Regex::new(r"^([-|\+]?\d+(?:\.\d+)?[A-Za-z]*)!-([-|\+]?\d+(?:\.\d+)?[A-Za-z]*)$").ok()
});

fn range_parts<'a>(re: &LazyLock<Option<regex::Regex>>, s: &'a str) -> Option<(&'a str, &'a str)> {
    let caps = re.as_ref()?.captures(s)?;
    Some((caps.get(1)?.as_str(), caps.get(2)?.as_str()))
}

fn operator_of(pattern: &str) -> Op {
    if pattern.len() < 2 {
        return Op::Equal;
    }
    if pattern.starts_with(">=") {
        Op::MoreEqual
    } else if pattern.starts_with("<=") {
        Op::LessEqual
    } else if pattern.starts_with('>') {
        Op::More
    } else if pattern.starts_with('<') {
        Op::Less
    } else if pattern.starts_with('!') {
        Op::NotEqual
    } else if range_parts(&NOT_IN_RANGE, pattern).is_some() {
        Op::NotInRange
    } else if range_parts(&IN_RANGE, pattern).is_some() {
        Op::InRange
    } else {
        Op::Equal
    }
}

fn op_len(op: Op) -> usize {
    match op {
        Op::MoreEqual | Op::LessEqual => 2,
        Op::More | Op::Less | Op::NotEqual => 1,
        _ => 0,
    }
}

fn string_pattern(value: &Value, pattern: &str) -> bool {
    let op = operator_of(pattern);
    match op {
        Op::InRange => range_parts(&IN_RANGE, pattern).is_some_and(|(low, high)| {
            string_pattern(value, &format!(">= {low}"))
                && string_pattern(value, &format!("<= {high}"))
        }),
        Op::NotInRange => range_parts(&NOT_IN_RANGE, pattern).is_some_and(|(low, high)| {
            string_pattern(value, &format!("< {low}"))
                || string_pattern(value, &format!("> {high}"))
        }),
        _ => {
            let operand = pattern.get(op_len(op)..).unwrap_or("").trim();
            compare_value(value, operand, op)
        }
    }
}

fn compare_value(value: &Value, operand: &str, op: Op) -> bool {
    let ordered = |ord: std::cmp::Ordering| match op {
        Op::Equal => Some(ord.is_eq()),
        Op::NotEqual => Some(!ord.is_eq()),
        Op::More => Some(ord.is_gt()),
        Op::Less => Some(ord.is_lt()),
        Op::MoreEqual => Some(ord.is_ge()),
        Op::LessEqual => Some(ord.is_le()),
        _ => None,
    };
    if let (Some(want), Some(have)) = (
        parse_duration(operand),
        number_text(value).and_then(|t| parse_duration(&t)),
    ) {
        if let Some(answer) = ordered(have.cmp(&want)) {
            return answer;
        }
    }
    if let (Some(want), Some(have)) = (
        parse_quantity(operand),
        number_text(value).and_then(|t| parse_quantity(&t)),
    ) {
        if let Some(answer) = have.partial_cmp(&want).and_then(ordered) {
            return answer;
        }
    }
    if matches!(op, Op::Equal | Op::NotEqual) {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => match n.as_i64() {
                Some(i) => i.to_string(),
                None => go_exponent(n.as_f64().unwrap_or(0.0)),
            },
            _ => return false,
        };
        let matched = wildcard_match(operand, &text);
        return if op == Op::NotEqual {
            !matched
        } else {
            matched
        };
    }
    false
}

/// Go's `strconv.FormatFloat(v, 'E', -1, 64)`.
fn go_exponent(v: f64) -> String {
    let text = format!("{v:E}");
    let (mantissa, exponent) = text.split_once('E').unwrap_or((&text, "0"));
    let (sign, digits) = match exponent.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', exponent),
    };
    format!("{mantissa}E{sign}{digits:0>2}")
}

/// A value as the text Kyverno parses quantities and durations from (a missing value is `0`).
fn number_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => Some("0".into()),
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(match n.as_i64() {
            Some(i) => i.to_string(),
            None => format!("{:.6}", n.as_f64().unwrap_or(0.0)),
        }),
        _ => None,
    }
}

/// A Go duration (`300ms`, `-1.5h`, `2h45m`, `0`) in nanoseconds.
pub fn parse_duration(text: &str) -> Option<i128> {
    let (negative, terms) = go_duration::terms(text, &[])?;
    let mut total: f64 = 0.0;
    for term in terms {
        let amount: f64 = format!("{}.{}", term.whole, term.fraction).parse().ok()?;
        total += amount * term.scale as f64;
    }
    let nanos = total.round() as i128;
    Some(if negative { -nanos } else { nanos })
}

/// A Kubernetes quantity (`500m`, `1Gi`, `1e3`, `2`) as a number.
pub fn parse_quantity(text: &str) -> Option<f64> {
    let text = text.trim();
    let (sign, body) = match text.as_bytes().first()? {
        b'-' => (-1.0, &text[1..]),
        b'+' => (1.0, &text[1..]),
        _ => (1.0, text),
    };
    let number_end = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(body.len());
    let number = &body[..number_end];
    if number.is_empty() || number == "." || number.matches('.').count() > 1 {
        return None;
    }
    let amount: f64 = number.parse().ok()?;
    let suffix = &body[number_end..];
    let scale = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exponent => {
            let digits = exponent
                .strip_prefix('e')
                .or_else(|| exponent.strip_prefix('E'))?;
            let power: i32 = digits.parse().ok()?;
            10f64.powi(power)
        }
    };
    Some(sign * amount * scale)
}

/// `*` matches any run of characters, `?` exactly one.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && p[pi] == t[ti])) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// A list whose elements were all skipped (a conditional anchor did not hold for any of them) is
/// skipped itself, with their reasons; one element that applied makes it apply.
fn all_skipped(path: &str, applied: usize, skips: &[Error]) -> Result<(), (String, Error)> {
    if applied == 0 && !skips.is_empty() {
        return Err((
            path.to_owned(),
            Error {
                kind: Kind::Skipped,
                msg: skips
                    .iter()
                    .map(|e| e.msg.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
            },
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalar_patterns_follow_kyverno() {
        let cases: &[(Value, Value, bool)] = &[
            (json!("nginx"), json!("ngi*"), true),
            (json!("nginx"), json!("?*"), true),
            (json!(""), json!("?*"), false),
            (Value::Null, json!("?*"), false),
            (json!("abc"), json!("a?c"), true),
            (json!("abc"), json!("a?"), false),
            (json!(5), json!(">4"), true),
            (json!(5), json!("<=4"), false),
            (json!(5), json!("1-10"), true),
            (json!(11), json!("1-10"), false),
            (json!(11), json!("1!-10"), true),
            (json!(5), json!("1!-10"), false),
            (json!("Always"), json!("!Never"), true),
            (json!("Never"), json!("!Never"), false),
            (json!("a"), json!("a | b"), true),
            (json!("c"), json!("a | b"), false),
            (json!(5), json!(">1 & <10"), true),
            (json!(50), json!(">1 & <10"), false),
            (json!("500m"), json!("<1"), true),
            (json!("2Gi"), json!(">1Gi"), true),
            (json!("1Gi"), json!("1024Mi"), true),
            (json!("90m"), json!(">1h"), true),
            (json!("30m"), json!(">1h"), false),
            (Value::Null, json!("<=0"), true),
            (json!(true), json!(true), true),
            (json!("true"), json!(true), false),
            (json!(0), json!("0"), true),
            (json!(0), Value::Null, true),
            (json!(1), Value::Null, false),
            (json!(3), json!(3), true),
            (json!("3"), json!(3), true),
            (json!(3.5), json!(3.5), true),
            (json!(true), json!("true"), true),
            (json!(false), json!("!true"), true),
        ];
        for (value, pattern, want) in cases {
            assert_eq!(
                value_matches(value, pattern),
                *want,
                "{value} against {pattern}"
            );
        }
    }

    fn verdict(resource: Value, pattern: Value) -> Verdict {
        validate(&resource, &pattern)
    }

    #[test]
    fn anchors_follow_kyverno() {
        let pod =
            |sc: Value| json!({"spec": {"containers": [{"name": "a", "securityContext": sc}]}});
        // Plain keys must be there.
        let p = json!({"spec": {"containers": [{"securityContext": {"runAsNonRoot": true}}]}});
        assert_eq!(
            verdict(pod(json!({"runAsNonRoot": true})), p.clone()),
            Verdict::Pass
        );
        assert!(matches!(
            verdict(pod(json!({})), p),
            Verdict::Fail { path, .. } if path == "/spec/containers/0/securityContext/runAsNonRoot/"
        ));
        // Equality: only when present.
        let p = json!({"spec": {"containers": [{"=(securityContext)": {"=(privileged)": false}}]}});
        assert_eq!(verdict(pod(json!({})), p.clone()), Verdict::Pass);
        assert!(matches!(
            verdict(pod(json!({"privileged": true})), p),
            Verdict::Fail { .. }
        ));
        // Negation: the key must be absent.
        let p = json!({"spec": {"containers": [{"securityContext": {"X(privileged)": "null"}}]}});
        assert_eq!(verdict(pod(json!({})), p.clone()), Verdict::Pass);
        assert!(matches!(
            verdict(pod(json!({"privileged": false})), p),
            Verdict::Fail { .. }
        ));
        // Conditional: skip when it does not hold, check the siblings when it does.
        let p = json!({"spec": {"containers": [{"(name)": "a", "securityContext": {"privileged": false}}]}});
        assert_eq!(
            verdict(pod(json!({"privileged": false})), p.clone()),
            Verdict::Pass
        );
        assert!(matches!(
            verdict(pod(json!({"privileged": true})), p),
            Verdict::Fail { .. }
        ));
        let p = json!({"spec": {"containers": [{"(name)": "b", "securityContext": {"privileged": false}}]}});
        assert!(matches!(
            verdict(pod(json!({"privileged": true})), p),
            Verdict::Skip(_)
        ));
        // Existence: at least one element matches.
        let p = json!({"spec": {"^(containers)": [{"name": "a"}]}});
        assert_eq!(verdict(pod(json!({})), p), Verdict::Pass);
        let p = json!({"spec": {"^(containers)": [{"name": "z"}]}});
        assert!(matches!(verdict(pod(json!({})), p), Verdict::Fail { .. }));
        // Global: when it does not hold anywhere, the rule is skipped.
        let p = json!({"spec": {"containers": [{"<(name)": "z", "securityContext": {"privileged": false}}]}});
        assert!(matches!(
            verdict(pod(json!({"privileged": true})), p),
            Verdict::Skip(_)
        ));
        // Add-if-not-present is a mutation: ignored.
        let p = json!({"spec": {"+(hostNetwork)": false}});
        assert_eq!(verdict(pod(json!({})), p), Verdict::Pass);
        // A scalar pattern against a list checks every element.
        let p = json!({"spec": {"containers": [{"name": "?*"}]}});
        assert_eq!(verdict(pod(json!({})), p), Verdict::Pass);
        // `*` needs the key.
        assert!(matches!(
            verdict(json!({}), json!({"metadata": "*"})),
            Verdict::Fail { .. }
        ));
    }

    #[test]
    fn wildcard_label_keys_expand_against_the_resource() {
        let resource = json!({"metadata": {"labels": {"app.kubernetes.io/name": "x"}}});
        let pattern = json!({"metadata": {"labels": {"app.kubernetes.io/*": "?*"}}});
        assert_eq!(verdict(resource, pattern.clone()), Verdict::Pass);
        assert!(matches!(
            verdict(json!({"metadata": {"labels": {"other": "x"}}}), pattern),
            Verdict::Fail { .. }
        ));
    }

    #[test]
    fn patterns_are_checked_when_read() {
        assert!(check(&json!({"spec": {"=(a": 1}})).is_err());
        assert!(check(&json!({"spec": {"^(a)": 1}})).is_err());
        assert!(check(&json!({"spec": {"=(a)": 1, "(b)": [{"c": "?*"}]}})).is_ok());
        let mut deep = json!("leaf");
        for _ in 0..=MAX_PATTERN_DEPTH + 1 {
            deep = json!({ "a": deep });
        }
        assert!(matches!(check(&deep), Err((_, why)) if why.contains("deeper")));
    }

    #[test]
    fn quantities_and_durations_parse() {
        assert_eq!(parse_quantity("500m"), Some(0.5));
        assert_eq!(parse_quantity("1Ki"), Some(1024.0));
        assert_eq!(parse_quantity("1e3"), Some(1000.0));
        assert_eq!(parse_quantity("abc"), None);
        assert_eq!(parse_duration("1h30m"), Some(5_400_000_000_000));
        assert_eq!(parse_duration("0"), Some(0));
        assert_eq!(parse_duration("10"), None);
        assert_eq!(go_exponent(1.5), "1.5E+00");
    }
}
