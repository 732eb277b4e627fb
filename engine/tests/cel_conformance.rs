//! The cel-spec "simple" conformance tests, run against the Kubernetes CEL environment
//! (`palisade_engine::cel::k8s::environment()`).
//!
//! The test data (`SimpleTestFile` textproto) is read from
//! `$PALISADE_ORACLES/cel-spec-conformance/tests/simple/testdata/`. A small textproto reader
//! below handles the subset these files use. Each test's expression is compiled and evaluated;
//! the result is compared strictly (an `int` 1 is not a `uint` 1) with the expected value, or an
//! expected evaluation error must occur. Tests the environment cannot run (protobuf messages, the
//! type checker, extensions Kubernetes does not enable) count as failures, with a reason category.
//!
//! The pass rate must not drop below [`MIN_PASS_RATE`], a ratchet: raise it when more pass.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cel::common::types::CelType;
use cel::{Context, Env, Value};

mod common;

/// The overall pass rate reached, as a fraction; the test fails below it.
const MIN_PASS_RATE: f64 = 0.608;

// ---------------------------------------------------------------------------------------------
// Textproto

/// A textproto field value.
#[derive(Debug, Clone)]
enum Field {
    /// A bare token: a number, `true`, an enum name.
    Scalar(String),
    /// A quoted string (adjacent literals joined), as bytes.
    Str(Vec<u8>),
    Message(Message),
    List(Vec<Field>),
}

/// A message: its fields in order, repeated fields repeated.
#[derive(Debug, Clone, Default)]
struct Message(Vec<(String, Field)>);

impl Message {
    fn get(&self, name: &str) -> Option<&Field> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, f)| f)
    }

    /// Every value of a repeated field, whether written once per value or as a `[...]` list.
    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Field> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n == name)
            .flat_map(|(_, f)| match f {
                Field::List(items) => items.iter().collect::<Vec<_>>(),
                other => vec![other],
            })
    }

    fn msg(&self, name: &str) -> Option<&Message> {
        match self.get(name)? {
            Field::Message(m) => Some(m),
            _ => None,
        }
    }

    fn string(&self, name: &str) -> Option<String> {
        match self.get(name)? {
            Field::Str(b) => Some(String::from_utf8_lossy(b).into_owned()),
            Field::Scalar(s) => Some(s.clone()),
            _ => None,
        }
    }

    fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), Some(Field::Scalar(s)) if s == "true")
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(Vec<u8>),
    Punct(char),
}

fn tokenize(src: &str) -> Result<Vec<Token>, String> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            c if c.is_ascii_whitespace() => i += 1,
            b'{' | b'}' | b'<' | b'>' | b'[' | b']' | b':' | b',' | b';' | b'/' => {
                out.push(Token::Punct(c as char));
                i += 1;
            }
            b'"' | b'\'' => {
                let quote = c;
                i += 1;
                let mut s = Vec::new();
                loop {
                    let Some(&c) = b.get(i) else {
                        return Err("unterminated string".to_owned());
                    };
                    i += 1;
                    if c == quote {
                        break;
                    }
                    if c != b'\\' {
                        s.push(c);
                        continue;
                    }
                    let Some(&e) = b.get(i) else {
                        return Err("unterminated escape".to_owned());
                    };
                    i += 1;
                    match e {
                        b'n' => s.push(b'\n'),
                        b't' => s.push(b'\t'),
                        b'r' => s.push(b'\r'),
                        b'a' => s.push(7),
                        b'b' => s.push(8),
                        b'f' => s.push(12),
                        b'v' => s.push(11),
                        b'0'..=b'7' => {
                            let mut v = u32::from(e - b'0');
                            for _ in 0..2 {
                                match b.get(i) {
                                    Some(&d @ b'0'..=b'7') => {
                                        v = v * 8 + u32::from(d - b'0');
                                        i += 1;
                                    }
                                    _ => break,
                                }
                            }
                            s.push(v as u8);
                        }
                        b'x' | b'X' => {
                            let mut v = 0u32;
                            let mut n = 0;
                            while n < 2 {
                                match b.get(i).and_then(|d| (*d as char).to_digit(16)) {
                                    Some(d) => {
                                        v = v * 16 + d;
                                        i += 1;
                                        n += 1;
                                    }
                                    None => break,
                                }
                            }
                            s.push(v as u8);
                        }
                        b'u' | b'U' => {
                            let len = if e == b'u' { 4 } else { 8 };
                            let hex = src.get(i..i + len).ok_or("short unicode escape")?;
                            let code = u32::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
                            let ch = char::from_u32(code).ok_or("bad unicode escape")?;
                            let mut buf = [0; 4];
                            s.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                            i += len;
                        }
                        other => s.push(other),
                    }
                }
                // adjacent literals are one string
                if let Some(Token::Str(prev)) = out.last_mut() {
                    prev.extend(s);
                } else {
                    out.push(Token::Str(s));
                }
            }
            _ => {
                let start = i;
                while i < b.len()
                    && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'_' | b'.' | b'-' | b'+'))
                {
                    i += 1;
                }
                if start == i {
                    return Err(format!("unexpected character {:?}", c as char));
                }
                out.push(Token::Ident(src[start..i].to_owned()));
            }
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(&Token::Punct(c)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn message(&mut self, end: Option<char>) -> Result<Message, String> {
        let mut fields = Vec::new();
        loop {
            match self.peek() {
                None if end.is_none() => return Ok(Message(fields)),
                None => return Err("unexpected end of input".to_owned()),
                Some(Token::Punct(c)) if Some(*c) == end => {
                    self.pos += 1;
                    return Ok(Message(fields));
                }
                _ => {}
            }
            let name = match self.next() {
                Some(Token::Ident(name)) => name,
                Some(Token::Punct('[')) => {
                    // an extension or Any type name: [type.googleapis.com/pkg.Msg]
                    let mut name = String::from("[");
                    loop {
                        match self.next() {
                            Some(Token::Punct(']')) => break,
                            Some(Token::Ident(s)) => name.push_str(&s),
                            Some(Token::Punct(c)) => name.push(c),
                            _ => return Err("bad extension name".to_owned()),
                        }
                    }
                    name.push(']');
                    name
                }
                other => return Err(format!("expected a field name, got {other:?}")),
            };
            self.eat(':');
            let value = self.value()?;
            fields.push((name, value));
            if !self.eat(',') {
                self.eat(';');
            }
        }
    }

    fn value(&mut self) -> Result<Field, String> {
        match self.next() {
            Some(Token::Punct('{')) => Ok(Field::Message(self.message(Some('}'))?)),
            Some(Token::Punct('<')) => Ok(Field::Message(self.message(Some('>'))?)),
            Some(Token::Punct('[')) => {
                let mut items = Vec::new();
                while !self.eat(']') {
                    items.push(self.value()?);
                    self.eat(',');
                }
                Ok(Field::List(items))
            }
            Some(Token::Punct('-')) => match self.next() {
                Some(Token::Ident(s)) => Ok(Field::Scalar(format!("-{s}"))),
                other => Err(format!("expected a number after '-', got {other:?}")),
            },
            Some(Token::Str(s)) => Ok(Field::Str(s)),
            Some(Token::Ident(s)) => Ok(Field::Scalar(s)),
            other => Err(format!("expected a value, got {other:?}")),
        }
    }
}

fn parse_textproto(src: &str) -> Result<Message, String> {
    let mut parser = Parser {
        tokens: tokenize(src)?,
        pos: 0,
    };
    parser.message(None)
}

// ---------------------------------------------------------------------------------------------
// Expected values

/// A value as the test data gives it.
#[derive(Debug, Clone)]
enum Expected {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Double(f64),
    String(String),
    Bytes(Vec<u8>),
    List(Vec<Expected>),
    Map(Vec<(Expected, Expected)>),
    Type(String),
    Duration(i64, i64),
    Timestamp(i64, i64),
}

/// Why an expected value cannot be represented.
#[derive(Debug)]
struct Unsupported(String);

fn scalar(field: Option<&Field>) -> String {
    match field {
        Some(Field::Scalar(s)) => s.clone(),
        Some(Field::Str(b)) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    }
}

fn parse_int(s: &str) -> Result<i64, Unsupported> {
    s.parse().map_err(|_| Unsupported(format!("bad int {s}")))
}

fn parse_double(s: &str) -> Result<f64, Unsupported> {
    match s.to_ascii_lowercase().as_str() {
        "inf" | "infinity" => Ok(f64::INFINITY),
        "-inf" | "-infinity" => Ok(f64::NEG_INFINITY),
        "nan" => Ok(f64::NAN),
        other => other
            .trim_end_matches('f')
            .parse()
            .map_err(|_| Unsupported(format!("bad double {s}"))),
    }
}

/// A `cel.expr.Value` message.
fn expected_value(m: &Message) -> Result<Expected, Unsupported> {
    let Some((name, field)) = m.0.first() else {
        return Err(Unsupported("empty value".to_owned()));
    };
    Ok(match name.as_str() {
        "null_value" => Expected::Null,
        "bool_value" => Expected::Bool(scalar(Some(field)) == "true"),
        "int64_value" => Expected::Int(parse_int(&scalar(Some(field)))?),
        "uint64_value" => Expected::Uint(
            scalar(Some(field))
                .parse()
                .map_err(|_| Unsupported("bad uint".to_owned()))?,
        ),
        "double_value" => Expected::Double(parse_double(&scalar(Some(field)))?),
        "string_value" => Expected::String(scalar(Some(field))),
        "bytes_value" => match field {
            Field::Str(b) => Expected::Bytes(b.clone()),
            _ => Expected::Bytes(Vec::new()),
        },
        "type_value" => Expected::Type(scalar(Some(field))),
        "list_value" => {
            let Field::Message(list) = field else {
                return Ok(Expected::List(Vec::new()));
            };
            Expected::List(
                list.all("values")
                    .map(|v| match v {
                        Field::Message(v) => expected_value(v),
                        _ => Err(Unsupported("bad list element".to_owned())),
                    })
                    .collect::<Result<_, _>>()?,
            )
        }
        "map_value" => {
            let Field::Message(map) = field else {
                return Ok(Expected::Map(Vec::new()));
            };
            let mut entries = Vec::new();
            for entry in map.all("entries") {
                let Field::Message(entry) = entry else {
                    continue;
                };
                let key = expected_value(entry.msg("key").unwrap_or(&Message::default()))?;
                let value = expected_value(entry.msg("value").unwrap_or(&Message::default()))?;
                entries.push((key, value));
            }
            Expected::Map(entries)
        }
        "enum_value" => {
            return Err(Unsupported(
                "proto enums unsupported (enum-typed value)".to_owned(),
            ))
        }
        "object_value" => {
            let Field::Message(any) = field else {
                return Err(Unsupported("bad object".to_owned()));
            };
            object_value(any)?
        }
        other => return Err(Unsupported(format!("value kind {other}"))),
    })
}

/// A protobuf value packed in an `Any`: the well-known types CEL maps to its own values.
fn object_value(any: &Message) -> Result<Expected, Unsupported> {
    let Some((type_url, Field::Message(body))) = any.0.first() else {
        return Err(Unsupported("bad Any".to_owned()));
    };
    let type_name = type_url
        .trim_start_matches('[')
        .trim_end_matches(']')
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let value = || body.get("value");
    Ok(match type_name.as_str() {
        "google.protobuf.Duration" | "google.protobuf.Timestamp" => {
            let seconds = parse_int(&scalar(body.get("seconds"))).unwrap_or(0);
            let nanos = parse_int(&scalar(body.get("nanos"))).unwrap_or(0);
            if type_name.ends_with("Duration") {
                Expected::Duration(seconds, nanos)
            } else {
                Expected::Timestamp(seconds, nanos)
            }
        }
        "google.protobuf.Int32Value" | "google.protobuf.Int64Value" => {
            Expected::Int(parse_int(&scalar(value())).unwrap_or(0))
        }
        "google.protobuf.UInt32Value" | "google.protobuf.UInt64Value" => {
            Expected::Uint(scalar(value()).parse().unwrap_or(0))
        }
        "google.protobuf.FloatValue" | "google.protobuf.DoubleValue" => {
            Expected::Double(parse_double(&scalar(value())).unwrap_or(0.0))
        }
        "google.protobuf.StringValue" => Expected::String(scalar(value())),
        "google.protobuf.BytesValue" => match value() {
            Some(Field::Str(b)) => Expected::Bytes(b.clone()),
            _ => Expected::Bytes(Vec::new()),
        },
        "google.protobuf.BoolValue" => Expected::Bool(scalar(value()) == "true"),
        "google.protobuf.Value" => json_value(body)?,
        "google.protobuf.Struct" => json_struct(body)?,
        "google.protobuf.ListValue" => json_list(body)?,
        other => return Err(Unsupported(format!("proto messages unsupported ({other})"))),
    })
}

fn json_value(m: &Message) -> Result<Expected, Unsupported> {
    let Some((kind, field)) = m.0.first() else {
        return Ok(Expected::Null);
    };
    Ok(match (kind.as_str(), field) {
        ("null_value", _) => Expected::Null,
        ("bool_value", f) => Expected::Bool(scalar(Some(f)) == "true"),
        ("number_value", f) => Expected::Double(parse_double(&scalar(Some(f)))?),
        ("string_value", f) => Expected::String(scalar(Some(f))),
        ("struct_value", Field::Message(s)) => json_struct(s)?,
        ("list_value", Field::Message(l)) => json_list(l)?,
        (other, _) => return Err(Unsupported(format!("JSON value kind {other}"))),
    })
}

fn json_struct(m: &Message) -> Result<Expected, Unsupported> {
    let mut entries = Vec::new();
    for f in m.all("fields") {
        if let Field::Message(entry) = f {
            let key = Expected::String(entry.string("key").unwrap_or_default());
            let value = json_value(entry.msg("value").unwrap_or(&Message::default()))?;
            entries.push((key, value));
        }
    }
    Ok(Expected::Map(entries))
}

fn json_list(m: &Message) -> Result<Expected, Unsupported> {
    m.all("values")
        .map(|v| match v {
            Field::Message(v) => json_value(v),
            _ => Err(Unsupported("bad JSON list".to_owned())),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Expected::List)
}

/// An expected value as a binding for the expression.
fn to_binding(e: &Expected) -> Result<Value, Unsupported> {
    Ok(match e {
        Expected::Null => Value::Null,
        Expected::Bool(b) => Value::Bool(*b),
        Expected::Int(i) => Value::Int(*i),
        Expected::Uint(u) => Value::UInt(*u),
        Expected::Double(d) => Value::Float(*d),
        Expected::String(s) => Value::from(s.clone()),
        Expected::Bytes(b) => Value::Bytes(Arc::new(b.clone())),
        Expected::List(items) => Value::List(Arc::new(
            items.iter().map(to_binding).collect::<Result<_, _>>()?,
        )),
        Expected::Map(entries) => {
            let mut map = HashMap::new();
            for (k, v) in entries {
                let key: cel::objects::Key = to_binding(k)?
                    .try_into()
                    .map_err(|_| Unsupported("map key".to_owned()))?;
                map.insert(key, to_binding(v)?);
            }
            Value::Map(cel::objects::Map { map: Arc::new(map) })
        }
        Expected::Duration(seconds, nanos) => {
            evaluate(&format!("duration('{seconds}s') + duration('{nanos}ns')"))?
        }
        Expected::Timestamp(seconds, nanos) => evaluate(&format!(
            "timestamp('1970-01-01T00:00:00Z') + duration('{seconds}s') + duration('{nanos}ns')"
        ))?,
        Expected::Type(_) => return Err(Unsupported(format!("binding of {e:?}"))),
    })
}

/// The value of a constant expression, for bindings `Value` cannot be built from directly.
fn evaluate(expr: &str) -> Result<Value, Unsupported> {
    let env = Arc::new(Env::stdlib());
    let program = env.compile(expr).map_err(|e| Unsupported(e.to_string()))?;
    program
        .execute(&Context::with_env(env))
        .map_err(|e| Unsupported(e.to_string()))
}

/// Strict equality: same type, same value (NaN equals NaN here, as the test data expects).
fn same(expected: &Expected, actual: &Value) -> bool {
    match (expected, actual) {
        (Expected::Null, Value::Null) => true,
        (Expected::Bool(a), Value::Bool(b)) => a == b,
        (Expected::Int(a), Value::Int(b)) => a == b,
        (Expected::Uint(a), Value::UInt(b)) => a == b,
        (Expected::Double(a), Value::Float(b)) => a == b || (a.is_nan() && b.is_nan()),
        (Expected::String(a), Value::String(b)) => a == b.as_str(),
        (Expected::Bytes(a), Value::Bytes(b)) => a == b.as_ref(),
        // nested type values become their names in `Value`
        (Expected::Type(a), Value::String(b)) => a == b.as_str(),
        (Expected::List(a), Value::List(b)) => {
            a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| same(x, y))
        }
        (Expected::Map(a), Value::Map(b)) => {
            a.len() == b.map.len()
                && a.iter().all(|(k, v)| {
                    b.map
                        .iter()
                        .any(|(bk, bv)| same(k, &Value::from(bk)) && same(v, bv))
                })
        }
        (Expected::Duration(s, n), Value::Duration(d)) => {
            d.num_seconds() == *s && i64::from(d.subsec_nanos()) == *n
        }
        (Expected::Timestamp(s, n), Value::Timestamp(t)) => {
            t.timestamp() == *s && i64::from(t.timestamp_subsec_nanos()) == *n
        }
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Running

/// The failure categories no function library can fix: they need the crate to model protobuf
/// messages and enums, or a type checker, or are libraries Kubernetes does not enable.
const OUT_OF_REACH: [&str; 4] = [
    "proto messages unsupported",
    "proto enums unsupported",
    "type checker unsupported",
    "extension not in the Kubernetes environment",
];

/// The outcome of one test.
enum Outcome {
    Pass,
    Fail {
        category: &'static str,
        detail: String,
    },
}

fn fail(category: &'static str, detail: impl Into<String>) -> Outcome {
    Outcome::Fail {
        category,
        detail: detail.into(),
    }
}

/// The files whose library Kubernetes does not enable, with the reason.
fn file_category(file: &str) -> Option<&'static str> {
    match file {
        "bindings_ext" | "block_ext" | "math_ext" | "encoders_ext" => {
            Some("extension not in the Kubernetes environment")
        }
        "proto2_ext" => Some("proto messages unsupported"),
        _ => None,
    }
}

/// Whether a test needs protobuf message types.
fn uses_proto(test: &Message) -> bool {
    let expr = test.string("expr").unwrap_or_default();
    let container = test.string("container").unwrap_or_default();
    container.contains("conformance.proto")
        || container.contains("google.protobuf")
        || [
            "TestAllTypes",
            "NestedTestAllTypes",
            "proto2.",
            "proto3.",
            "google.protobuf.",
        ]
        .iter()
        .any(|t| expr.contains(t))
}

struct Envs(BTreeMap<String, Arc<Env>>);

impl Envs {
    fn get(&mut self, container: &str) -> Result<Arc<Env>, String> {
        if let Some(env) = self.0.get(container) {
            return Ok(env.clone());
        }
        let mut env = palisade_engine::cel::k8s::environment().map_err(|e| e.to_string())?;
        if !container.is_empty() {
            env.set_container(container).map_err(|e| e.to_string())?;
        }
        let env = Arc::new(env);
        self.0.insert(container.to_owned(), env.clone());
        Ok(env)
    }
}

fn run_test(file: &str, test: &Message, envs: &mut Envs) -> Outcome {
    let expr = test.string("expr").unwrap_or_default();
    let proto = uses_proto(test);
    let category_on_failure = |default: &'static str| -> &'static str {
        if let Some(c) = file_category(file) {
            c
        } else if proto {
            "proto messages unsupported"
        } else if expr.contains('`') {
            "identifier escapes (`a.`b-c``) not enabled in Kubernetes"
        } else if file == "network_ext" {
            "Kubernetes' IP library differs from cel-go's network extension"
        } else {
            default
        }
    };
    if test.flag("check_only") || test.get("typed_result").is_some() {
        return fail(
            "type checker unsupported",
            "the test checks the deduced type, and the cel crate has no type checker",
        );
    }
    if test.get("unknown").is_some() || test.get("any_unknowns").is_some() {
        return fail("unknowns unsupported", "partial evaluation");
    }
    let container = test.string("container").unwrap_or_default();
    let env = match envs.get(&container) {
        Ok(env) => env,
        Err(e) => return fail("environment", e),
    };
    let program = match env.compile(&expr) {
        Ok(p) => p,
        Err(e) => {
            let first = e.to_string().lines().next().unwrap_or_default().to_owned();
            return fail(category_on_failure("parse error"), first);
        }
    };
    let mut context = Context::with_env(env.clone());
    for binding in test.all("bindings") {
        let Field::Message(binding) = binding else {
            continue;
        };
        let key = binding.string("key").unwrap_or_default();
        let value = binding
            .msg("value")
            .and_then(|v| v.msg("value"))
            .ok_or_else(|| Unsupported("binding without a value".to_owned()))
            .and_then(expected_value)
            .and_then(|e| to_binding(&e));
        match value {
            Ok(v) => context.add_variable_from_value(key, v),
            Err(Unsupported(why)) => {
                let category = if why.starts_with("proto") {
                    "proto messages unsupported"
                } else {
                    category_on_failure("binding unsupported")
                };
                return fail(category, why);
            }
        }
    }
    let result = Value::resolve_val(program.expression(), &context).and_then(|v| {
        if let Some(t) = v.downcast_ref::<CelType>() {
            // a type value: the name of the type it denotes
            Ok(Err(t.name().to_owned()))
        } else {
            Value::try_from(v.as_ref()).map(Ok)
        }
    });
    let expects_error = test.get("eval_error").is_some() || test.get("any_eval_errors").is_some();
    if expects_error {
        return match result {
            // failing because a message type is unknown is not the error the test is about
            Err(e) if e.to_string().contains("known struct") => {
                fail("proto messages unsupported", e.to_string())
            }
            // nor is calling a function of a library the environment lacks
            Err(e @ cel::ExecutionError::UndeclaredReference(_))
                if file_category(file).is_some() =>
            {
                fail(category_on_failure("undeclared"), e.to_string())
            }
            Err(_) => Outcome::Pass,
            Ok(v) => fail(
                category_on_failure("no error where one is expected"),
                format!("got {v:?}"),
            ),
        };
    }
    let expected = match test.msg("value") {
        Some(v) => match expected_value(v) {
            Ok(e) => e,
            Err(Unsupported(why)) => {
                let category = if why.starts_with("proto messages") {
                    "proto messages unsupported"
                } else if why.starts_with("proto enums") {
                    "proto enums unsupported"
                } else {
                    category_on_failure("expected value unsupported")
                };
                return fail(category, why);
            }
        },
        None => Expected::Bool(true),
    };
    match result {
        Err(e) => fail(category_on_failure("evaluation error"), e.to_string()),
        Ok(Err(type_name)) => {
            // a type value at the top level
            if matches!(&expected, Expected::Type(t) if *t == type_name) {
                Outcome::Pass
            } else {
                fail(
                    category_on_failure("wrong value"),
                    format!("expected {expected:?}, got type {type_name}"),
                )
            }
        }
        Ok(Ok(actual)) => {
            if matches!(expected, Expected::Type(_)) {
                fail(
                    category_on_failure("wrong value"),
                    format!("expected {expected:?}, got {actual:?}"),
                )
            } else if same(&expected, &actual) {
                Outcome::Pass
            } else {
                fail(
                    category_on_failure("wrong value"),
                    format!("expected {expected:?}, got {actual:?}"),
                )
            }
        }
    }
}

fn truncate(s: &str, n: usize) -> String {
    let s = s.replace('\n', " ");
    if s.chars().count() <= n {
        s
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

#[test]
fn cel_spec_simple_conformance() {
    let Some(dir) = common::oracle_dir("cel-spec-conformance/tests/simple/testdata") else {
        return;
    };
    // Some parse tests nest expressions deeply, and the parser and interpreter recurse on them:
    // more than the 2 MiB of a test thread in a debug build (8 MiB is enough).
    std::thread::Builder::new()
        .stack_size(64 * 1024 * 1024)
        .spawn(move || run_suite(&dir))
        .expect("spawn the conformance thread")
        .join()
        .expect("the conformance run")
        .expect("read the conformance data");
}

fn run_suite(dir: &Path) -> Result<(), String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "textproto"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no textproto files in {}", dir.display());

    let mut envs = Envs(BTreeMap::new());
    let (mut passed, mut total) = (0usize, 0usize);
    let mut failures: Vec<(String, &'static str, String)> = Vec::new();
    let mut categories: BTreeMap<&'static str, usize> = BTreeMap::new();
    println!("cel-spec simple conformance, Kubernetes environment:");
    for path in &files {
        let file = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let parsed = parse_textproto(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let (mut file_passed, mut file_total) = (0usize, 0usize);
        for section in parsed.all("section") {
            let Field::Message(section) = section else {
                continue;
            };
            let section_name = section.string("name").unwrap_or_default();
            for test in section.all("test") {
                let Field::Message(test) = test else {
                    continue;
                };
                file_total += 1;
                let name = test.string("name").unwrap_or_default();
                match run_test(&file, test, &mut envs) {
                    Outcome::Pass => file_passed += 1,
                    Outcome::Fail { category, detail } => {
                        *categories.entry(category).or_default() += 1;
                        failures.push((format!("{file}/{section_name}/{name}"), category, detail));
                    }
                }
            }
        }
        if file_total > 0 {
            println!(
                "  {file:<16} {file_passed:>4}/{file_total:<4} {:>6.1}%",
                100.0 * file_passed as f64 / file_total as f64
            );
        } else {
            println!("  {file:<16}    0/0");
        }
        passed += file_passed;
        total += file_total;
    }
    let rate = passed as f64 / total.max(1) as f64;
    println!(
        "  overall          {passed:>4}/{total:<4} {:>6.1}%",
        100.0 * rate
    );
    // What the environment could pass at all: not protobuf messages, enums, the type checker or
    // extensions Kubernetes does not enable.
    let out_of_reach: usize = categories
        .iter()
        .filter(|(c, _)| OUT_OF_REACH.contains(c))
        .map(|(_, n)| n)
        .sum();
    let in_scope = total - out_of_reach;
    println!(
        "  in scope         {passed:>4}/{in_scope:<4} {:>6.1}%  (without: {})",
        100.0 * passed as f64 / in_scope.max(1) as f64,
        OUT_OF_REACH.join("; ")
    );
    println!("failures by category:");
    for (category, n) in &categories {
        println!("  {n:>5}  {category}");
    }
    println!("failing tests:");
    for (name, category, detail) in &failures {
        println!("  {name}: [{category}] {}", truncate(detail, 140));
    }
    assert!(total > 2000, "expected the full suite, found {total} tests");
    assert!(
        rate >= MIN_PASS_RATE,
        "conformance dropped: {passed}/{total} = {:.2}% < {:.2}%",
        100.0 * rate,
        100.0 * MIN_PASS_RATE
    );
    Ok(())
}
