//! Kyverno's `{{ }}` variables and its conditions (`preconditions`, `validate.deny.conditions`):
//! a key, an operator and a value, combined by `any` / `all`.
//!
//! A string that is one variable becomes the variable's value (of any type); a variable inside
//! longer text is written in (JSON for what is not a string). Variables read the request data
//! through [`super::jmespath`].

use serde_json::Value;

use super::jmespath::{self, Budget, JmesError};
use super::pattern::{parse_duration, parse_quantity, wildcard_match};

/// Why a condition or a substitution could not be decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConditionError {
    /// The policy is wrong (an unknown operator, a malformed expression).
    Invalid(String),
    /// It needs something this engine does not have.
    NotEvaluable(String),
}

impl From<JmesError> for ConditionError {
    fn from(e: JmesError) -> Self {
        match e {
            JmesError::Unsupported(m) => ConditionError::NotEvaluable(m),
            other => ConditionError::Invalid(other.to_string()),
        }
    }
}

/// The roots of the data variables may read; any other root needs a rule `context` entry or
/// something Kyverno gathers elsewhere.
const KNOWN_ROOTS: [&str; 6] = [
    "request",
    "element",
    "elementIndex",
    "serviceAccountName",
    "serviceAccountNamespace",
    "@",
];

/// The variables (`{{ ... }}`) of a string, as (start, end, expression) byte ranges.
fn variables(text: &str) -> Vec<(usize, usize, &str)> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == b'{' && bytes[i + 1] == b'{' && (i == 0 || bytes[i - 1] != b'\\') {
            // Find the matching `}}`, allowing single braces inside (JMESPath hashes).
            let mut depth = 0usize;
            let mut j = i + 2;
            let mut end = None;
            while j < bytes.len() {
                match bytes[j] {
                    b'{' => depth += 1,
                    b'}' if depth > 0 => depth -= 1,
                    b'}' if j + 1 < bytes.len() && bytes[j + 1] == b'}' => {
                        end = Some(j + 2);
                        break;
                    }
                    _ => {}
                }
                j += 1;
            }
            match end {
                Some(end) => {
                    found.push((i, end, &text[i + 2..end - 2]));
                    i = end;
                }
                None => break,
            }
        } else {
            i += 1;
        }
    }
    found
}

/// Whether `value` has any `{{ }}` in its strings.
pub fn has_variables(value: &Value) -> bool {
    match value {
        Value::String(s) => !variables(s).is_empty(),
        Value::Array(a) => a.iter().any(has_variables),
        Value::Object(o) => o
            .iter()
            .any(|(k, v)| !variables(k).is_empty() || has_variables(v)),
        _ => false,
    }
}

/// The first identifier of an expression (`request` of `request.object.x`).
fn root_of(expression: &str) -> &str {
    let trimmed = expression.trim_start();
    let end = trimmed
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '@'))
        .unwrap_or(trimmed.len());
    &trimmed[..end]
}

/// Every variable's root name that `value` uses which is not in `known` (so it needs a
/// `context` entry or data this engine does not gather).
pub fn foreign_roots(value: &Value, extra: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    collect_roots(value, extra, &mut out);
    out
}

fn collect_roots(value: &Value, extra: &[String], out: &mut Vec<String>) {
    match value {
        Value::String(s) => {
            for (_, _, expression) in variables(s) {
                let root = root_of(expression);
                // A function call or literal at the start reads no root of its own.
                let called = expression.trim_start()[root.len()..]
                    .trim_start()
                    .starts_with('(');
                if root.is_empty() || called {
                    continue;
                }
                if !KNOWN_ROOTS.contains(&root)
                    && !extra.iter().any(|e| e == root)
                    && !out.iter().any(|o| o == root)
                {
                    out.push(root.to_owned());
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| collect_roots(v, extra, out)),
        Value::Object(o) => o.iter().for_each(|(k, v)| {
            collect_roots(&Value::String(k.clone()), extra, out);
            collect_roots(v, extra, out);
        }),
        _ => {}
    }
}

/// How a failed lookup reads: as null (preconditions) or as an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Strict,
    NullOnError,
}

/// The most substitution rounds one string takes (a variable may produce another).
const MAX_ROUNDS: usize = 8;

/// `value` with its variables replaced by what they read in `data`.
pub fn substitute(
    value: &Value,
    data: &Value,
    lookup: Lookup,
    budget: &mut Budget,
) -> Result<Value, ConditionError> {
    Ok(match value {
        Value::String(s) => substitute_text(s, data, lookup, budget)?,
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| substitute(v, data, lookup, budget))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                let key = match substitute_text(k, data, lookup, budget)? {
                    Value::String(s) => s,
                    other => jmespath::to_text(&other),
                };
                out.insert(key, substitute(v, data, lookup, budget)?);
            }
            Value::Object(out)
        }
        other => other.clone(),
    })
}

fn substitute_text(
    text: &str,
    data: &Value,
    lookup: Lookup,
    budget: &mut Budget,
) -> Result<Value, ConditionError> {
    let mut current = text.to_owned();
    for _ in 0..MAX_ROUNDS {
        let found = variables(&current);
        if found.is_empty() {
            return Ok(Value::String(current.replace("\\{{", "{{")));
        }
        let mut out = String::new();
        let mut last = 0;
        for (start, end, expression) in &found {
            let result = match jmespath::parse(expression.trim())
                .and_then(|ast| jmespath::evaluate(&ast, data, budget))
            {
                Ok(v) => v,
                Err(JmesError::Unsupported(m)) => return Err(ConditionError::NotEvaluable(m)),
                Err(e) if lookup == Lookup::NullOnError => {
                    if matches!(e, JmesError::Syntax(_)) {
                        return Err(e.into());
                    }
                    Value::Null
                }
                Err(e) => return Err(e.into()),
            };
            if *start == 0 && *end == current.len() {
                return Ok(result);
            }
            out.push_str(&current[last..*start]);
            out.push_str(&jmespath::to_text(&result));
            last = *end;
        }
        out.push_str(&current[last..]);
        current = out;
    }
    Err(ConditionError::Invalid(format!(
        "variables in `{text}` still substitute after {MAX_ROUNDS} rounds"
    )))
}

/// A condition's operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Equals,
    NotEquals,
    In,
    NotIn,
    AnyIn,
    AllIn,
    AnyNotIn,
    AllNotIn,
    GreaterThan,
    GreaterThanOrEquals,
    LessThan,
    LessThanOrEquals,
    DurationGreaterThan,
    DurationGreaterThanOrEquals,
    DurationLessThan,
    DurationLessThanOrEquals,
}

impl Operator {
    pub fn parse(name: &str) -> Option<Operator> {
        Some(match name {
            "Equals" | "Equal" => Operator::Equals,
            "NotEquals" | "NotEqual" => Operator::NotEquals,
            "In" => Operator::In,
            "NotIn" => Operator::NotIn,
            "AnyIn" => Operator::AnyIn,
            "AllIn" => Operator::AllIn,
            "AnyNotIn" => Operator::AnyNotIn,
            "AllNotIn" => Operator::AllNotIn,
            "GreaterThan" => Operator::GreaterThan,
            "GreaterThanOrEquals" => Operator::GreaterThanOrEquals,
            "LessThan" => Operator::LessThan,
            "LessThanOrEquals" => Operator::LessThanOrEquals,
            "DurationGreaterThan" => Operator::DurationGreaterThan,
            "DurationGreaterThanOrEquals" => Operator::DurationGreaterThanOrEquals,
            "DurationLessThan" => Operator::DurationLessThan,
            "DurationLessThanOrEquals" => Operator::DurationLessThanOrEquals,
            _ => return None,
        })
    }
}

/// One condition, read.
#[derive(Debug, Clone)]
pub struct Condition {
    pub key: Value,
    pub operator: Operator,
    pub value: Value,
    pub message: Option<String>,
}

/// Conditions combined: every `all` holds and (when there are any) some `any` holds.
#[derive(Debug, Clone, Default)]
pub struct Conditions {
    pub any: Vec<Condition>,
    pub all: Vec<Condition>,
}

impl Conditions {
    /// Read `{any, all}` or the older plain list (all of them). Errors name the field.
    pub fn read(value: &Value) -> Result<Conditions, String> {
        let list = |v: Option<&Value>, field: &str| -> Result<Vec<Condition>, String> {
            let Some(v) = v else { return Ok(Vec::new()) };
            if v.is_null() {
                return Ok(Vec::new());
            }
            let items = v
                .as_array()
                .ok_or_else(|| format!("{field}: must be a list of conditions"))?;
            items
                .iter()
                .enumerate()
                .map(|(i, c)| read_condition(c).map_err(|e| format!("{field}[{i}]: {e}")))
                .collect()
        };
        match value {
            Value::Array(_) => Ok(Conditions {
                any: Vec::new(),
                all: list(Some(value), "conditions")?,
            }),
            Value::Object(map) => {
                if let Some(other) = map.keys().find(|k| *k != "any" && *k != "all") {
                    return Err(format!("unknown field `{other}` (expected any or all)"));
                }
                Ok(Conditions {
                    any: list(map.get("any"), "any")?,
                    all: list(map.get("all"), "all")?,
                })
            }
            Value::Null => Ok(Conditions::default()),
            _ => Err("conditions must be {any, all} or a list".into()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.any.is_empty() && self.all.is_empty()
    }

    /// Every key and value, for checking which variables they use.
    pub fn values(&self) -> Value {
        Value::Array(
            self.any
                .iter()
                .chain(&self.all)
                .flat_map(|c| [c.key.clone(), c.value.clone()])
                .collect(),
        )
    }

    /// Whether the conditions hold on `data`; when they do not, the message of the first that
    /// failed (if it has one).
    pub fn evaluate(
        &self,
        data: &Value,
        lookup: Lookup,
        budget: &mut Budget,
    ) -> Result<(bool, Option<String>), ConditionError> {
        for condition in &self.all {
            if !condition.evaluate(data, lookup, budget)? {
                return Ok((false, condition.message.clone()));
            }
        }
        if self.any.is_empty() {
            return Ok((true, None));
        }
        let mut first_message = None;
        for condition in &self.any {
            if condition.evaluate(data, lookup, budget)? {
                return Ok((true, None));
            }
            if first_message.is_none() {
                first_message = condition.message.clone();
            }
        }
        Ok((false, first_message))
    }
}

fn read_condition(value: &Value) -> Result<Condition, String> {
    let map = value.as_object().ok_or("a condition must be an object")?;
    if let Some(other) = map
        .keys()
        .find(|k| !matches!(k.as_str(), "key" | "operator" | "value" | "message"))
    {
        return Err(format!("unknown field `{other}`"));
    }
    let operator_name = map
        .get("operator")
        .and_then(Value::as_str)
        .ok_or("operator: required")?;
    let operator = Operator::parse(operator_name)
        .ok_or_else(|| format!("operator: unknown operator `{operator_name}`"))?;
    Ok(Condition {
        key: map.get("key").cloned().unwrap_or(Value::Null),
        operator,
        value: map.get("value").cloned().unwrap_or(Value::Null),
        message: map
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

impl Condition {
    pub fn evaluate(
        &self,
        data: &Value,
        lookup: Lookup,
        budget: &mut Budget,
    ) -> Result<bool, ConditionError> {
        let key = substitute(&self.key, data, lookup, budget)?;
        let value = substitute(&self.value, data, lookup, budget)?;
        Ok(apply(self.operator, &key, &value))
    }
}

/// Go's `fmt.Sprint` of a JSON value, as Kyverno's set operators compare.
fn sprint(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<nil>".into(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.to_string(),
            None => n.as_f64().map_or_else(String::new, |f| f.to_string()),
        },
        other => other.to_string(),
    }
}

/// Apply an operator to a substituted key and value.
pub fn apply(op: Operator, key: &Value, value: &Value) -> bool {
    match op {
        Operator::Equals => equals(key, value),
        Operator::NotEquals => !equals(key, value),
        Operator::In | Operator::NotIn => in_operator(key, value, op == Operator::NotIn),
        Operator::AnyIn | Operator::AllIn | Operator::AnyNotIn | Operator::AllNotIn => {
            set_operator(op, key, value)
        }
        Operator::GreaterThan
        | Operator::GreaterThanOrEquals
        | Operator::LessThan
        | Operator::LessThanOrEquals => numeric(op, key, value),
        Operator::DurationGreaterThan
        | Operator::DurationGreaterThanOrEquals
        | Operator::DurationLessThan
        | Operator::DurationLessThanOrEquals => duration(op, key, value),
    }
}

fn equals(key: &Value, value: &Value) -> bool {
    match key {
        Value::Bool(k) => value.as_bool() == Some(*k),
        Value::Number(k) => {
            let k = k.as_f64().unwrap_or(f64::NAN);
            match value {
                Value::Number(v) => v.as_f64() == Some(k),
                Value::String(s) => s.parse::<f64>().is_ok_and(|v| v == k),
                _ => false,
            }
        }
        Value::String(k) => {
            if let (Some(a), Some(b)) = (parse_duration(k), duration_of(value)) {
                return a == b;
            }
            if let Some(a) = parse_quantity(k) {
                if let Value::String(v) = value {
                    if let Some(b) = parse_quantity(v) {
                        return a == b;
                    }
                    return false;
                }
            }
            value.as_str().is_some_and(|v| wildcard_match(v, k))
        }
        Value::Array(_) | Value::Object(_) => jmespath::json_equal(key, value),
        Value::Null => value.is_null(),
    }
}

fn duration_of(value: &Value) -> Option<i128> {
    match value {
        Value::String(s) => parse_duration(s),
        Value::Number(n) => n.as_f64().map(|f| (f * 1e9) as i128),
        _ => None,
    }
}

/// The values a set operator's right side lists: a list, a JSON list in a string, or one value.
fn value_list(value: &Value) -> Option<Vec<String>> {
    match value {
        Value::Array(items) => Some(items.iter().map(sprint).collect()),
        Value::String(s) => match serde_json::from_str::<Vec<Value>>(s) {
            Ok(items) => Some(items.iter().map(sprint).collect()),
            Err(_) => Some(vec![s.clone()]),
        },
        Value::Number(_) | Value::Bool(_) => Some(vec![sprint(value)]),
        _ => None,
    }
}

fn key_list(key: &Value) -> Option<Vec<String>> {
    match key {
        Value::Array(items) => Some(items.iter().map(sprint).collect()),
        Value::String(_) | Value::Number(_) | Value::Bool(_) => Some(vec![sprint(key)]),
        _ => None,
    }
}

fn in_operator(key: &Value, value: &Value, negate: bool) -> bool {
    match key {
        Value::Array(items) => {
            let keys: Vec<String> = items.iter().map(sprint).collect();
            let Some(values) = value_list(value) else {
                return false;
            };
            let all_in = keys.iter().all(|k| values.contains(k));
            if negate {
                !all_in
            } else {
                all_in
            }
        }
        Value::String(_) | Value::Number(_) | Value::Bool(_) => {
            let k = sprint(key);
            let found = match value {
                Value::Array(items) => items.iter().any(|v| {
                    let v = sprint(v);
                    wildcard_match(&v, &k) || wildcard_match(&k, &v)
                }),
                Value::String(s) => {
                    wildcard_match(s, &k)
                        || match serde_json::from_str::<Vec<String>>(s) {
                            Ok(items) => items.contains(&k),
                            Err(_) => return false,
                        }
                }
                _ => return false,
            };
            if negate {
                !found
            } else {
                found
            }
        }
        _ => false,
    }
}

fn set_operator(op: Operator, key: &Value, value: &Value) -> bool {
    let (Some(keys), Some(values)) = (key_list(key), value_list(value)) else {
        return false;
    };
    // A range (`1-10`) on the right: each key is checked against it as a pattern.
    let range = match value {
        Value::String(s) if serde_json::from_str::<Vec<Value>>(s).is_err() => Some(s.clone())
            .filter(|s| s.contains('-') && s.chars().next().is_some_and(|c| c.is_ascii_digit())),
        _ => None,
    };
    let contained = |k: &String| match &range {
        Some(r) => {
            super::pattern::value_matches(&Value::String(k.clone()), &Value::String(r.clone()))
        }
        None => values
            .iter()
            .any(|v| wildcard_match(k, v) || wildcard_match(v, k)),
    };
    match op {
        Operator::AnyIn => keys.iter().any(contained),
        Operator::AllIn => !keys.is_empty() && keys.iter().all(contained),
        Operator::AnyNotIn => keys.iter().any(|k| !contained(k)),
        _ => keys.iter().all(|k| !contained(k)),
    }
}

fn compare_op(op: Operator, ord: std::cmp::Ordering) -> bool {
    match op {
        Operator::GreaterThan | Operator::DurationGreaterThan => ord.is_gt(),
        Operator::GreaterThanOrEquals | Operator::DurationGreaterThanOrEquals => ord.is_ge(),
        Operator::LessThan | Operator::DurationLessThan => ord.is_lt(),
        _ => ord.is_le(),
    }
}

fn numeric(op: Operator, key: &Value, value: &Value) -> bool {
    let as_number = |v: &Value| match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse::<f64>().ok(),
        _ => None,
    };
    if let (Some(k), Some(v)) = (as_number(key), as_number(value)) {
        return k.partial_cmp(&v).is_some_and(|o| compare_op(op, o));
    }
    if let (Some(k), Some(v)) = (
        key.as_str().and_then(parse_duration),
        value.as_str().and_then(parse_duration),
    ) {
        return compare_op(op, k.cmp(&v));
    }
    let as_quantity = |v: &Value| match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => parse_quantity(s),
        _ => None,
    };
    if let (Some(k), Some(v)) = (as_quantity(key), as_quantity(value)) {
        return k.partial_cmp(&v).is_some_and(|o| compare_op(op, o));
    }
    false
}

fn duration(op: Operator, key: &Value, value: &Value) -> bool {
    let as_duration = |v: &Value| match v {
        Value::Number(n) => n.as_f64().map(|f| (f * 1e9) as i128),
        Value::String(s) => parse_duration(s),
        _ => None,
    };
    match (as_duration(key), as_duration(value)) {
        (Some(k), Some(v)) => compare_op(op, k.cmp(&v)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn operators_compare_as_kyverno() {
        use Operator::*;
        let cases: &[(Operator, Value, Value, bool)] = &[
            (Equals, json!("abc"), json!("a*"), true),
            (Equals, json!("abc"), json!("b*"), false),
            (Equals, json!(1), json!("1"), true),
            (Equals, json!(true), json!(true), true),
            (Equals, json!("1Gi"), json!("1024Mi"), true),
            (Equals, json!("1h"), json!("60m"), true),
            (Equals, json!({"a": 1}), json!({"a": 1}), true),
            (NotEquals, json!("CREATE"), json!("DELETE"), true),
            (NotEquals, Value::Null, json!("DELETE"), true),
            (In, json!("b"), json!(["a", "b"]), true),
            (In, json!("c"), json!(["a", "b"]), false),
            (In, json!(["a", "b"]), json!(["a", "b", "c"]), true),
            (NotIn, json!("c"), json!(["a", "b"]), true),
            (NotIn, json!(["a", "z"]), json!(["a", "b"]), true),
            (AnyIn, json!(["x", "a"]), json!(["a", "b"]), true),
            (AnyIn, json!(["x"]), json!(["a", "b"]), false),
            (AllIn, json!(["a", "b"]), json!(["a", "b"]), true),
            (AllIn, json!(["a", "x"]), json!(["a", "b"]), false),
            (AnyNotIn, json!(["a", "x"]), json!(["a", "b"]), true),
            (AnyNotIn, json!(["a"]), json!(["a", "b"]), false),
            (AnyNotIn, json!([]), json!(["a"]), false),
            (AllNotIn, json!(["x", "y"]), json!(["a", "b"]), true),
            (AllNotIn, json!(["x", "a"]), json!(["a", "b"]), false),
            (AnyIn, json!([80, 8080]), json!("1-1024"), true),
            (AnyNotIn, json!([80, 8080]), json!("1-1024"), true),
            (AnyIn, json!(["NET_ADMIN"]), json!(["NET_*"]), true),
            (GreaterThan, json!(5), json!(3), true),
            (GreaterThan, json!("5"), json!(3), true),
            (LessThanOrEquals, json!("500m"), json!("1"), true),
            (GreaterThanOrEquals, json!("2h"), json!("90m"), true),
            (DurationGreaterThan, json!("2h"), json!("1h"), true),
            (DurationLessThan, json!(30), json!("1m"), true),
        ];
        for (op, key, value, want) in cases {
            assert_eq!(apply(*op, key, value), *want, "{op:?} {key} {value}");
        }
    }

    #[test]
    fn conditions_read_any_all_and_lists() {
        let data =
            json!({"request": {"operation": "CREATE", "object": {"metadata": {"name": "x"}}}});
        let read = |v: Value| Conditions::read(&v);
        let all = read(json!({"all": [{"key": "{{ request.operation }}", "operator": "Equals", "value": "CREATE"}]}))
            .unwrap_or_default();
        let got = all.evaluate(&data, Lookup::Strict, &mut Budget::default());
        assert_eq!(got, Ok((true, None)));
        let any = read(json!({"any": [
            {"key": "a", "operator": "Equals", "value": "b", "message": "no"},
            {"key": "{{ request.object.metadata.name }}", "operator": "In", "value": ["y"]}
        ]}))
        .unwrap_or_default();
        let got = any.evaluate(&data, Lookup::Strict, &mut Budget::default());
        assert_eq!(got, Ok((false, Some("no".into()))));
        let list = read(json!([{"key": "1", "operator": "Equal", "value": 1}])).unwrap_or_default();
        assert_eq!(list.all.len(), 1);
        assert!(
            read(json!({"all": [{"key": 1, "operator": "Bigger", "value": 1}]}))
                .is_err_and(|e| e.contains("Bigger"))
        );
        assert!(read(json!({"none": []})).is_err());
    }

    #[test]
    fn substitution_keeps_types_and_writes_text() {
        let data = json!({"request": {"object": {"spec": {"replicas": 3, "ports": [1, 2]}}}});
        let sub = |v: Value| substitute(&v, &data, Lookup::Strict, &mut Budget::default());
        assert_eq!(
            sub(json!("{{ request.object.spec.replicas }}")),
            Ok(json!(3))
        );
        assert_eq!(
            sub(json!("n={{request.object.spec.replicas}}")),
            Ok(json!("n=3"))
        );
        assert_eq!(
            sub(json!("p={{request.object.spec.ports}}")),
            Ok(json!("p=[1,2]"))
        );
        assert_eq!(sub(json!("\\{{ kept }}")), Ok(json!("{{ kept }}")));
        assert_eq!(
            sub(json!("{{ request.object.spec.missing || `[]` }}")),
            Ok(json!([]))
        );
        assert!(matches!(
            sub(json!("{{ time_now() }}")),
            Err(ConditionError::NotEvaluable(_))
        ));
    }

    #[test]
    fn roots_outside_the_request_are_found() {
        let v = json!([
            "{{ request.object }}",
            "{{ images.containers }}",
            "{{ lookup(x, 'a') }}",
            "{{ element.name }}"
        ]);
        assert_eq!(foreign_roots(&v, &[]), vec!["images".to_owned()]);
    }
}
