//! The typed round trip: what the apiserver's decoder keeps of a manifest and what its encoder
//! writes back, from the JSON shape of each type ([`types.txt`](types.txt)).
//!
//! Decoding drops the fields a type does not have (with a note each). Encoding follows Go's
//! `encoding/json`: an omitempty field at its zero value (`""`, `0`, `false`, an empty list or
//! map) is left out, a field without omitempty is written even when the manifest left it out
//! (`""`, `0`, `false`), and a struct is always written, omitempty or not (`resources: {}`).
//! Pointers keep their value, whatever it is (`automountServiceAccountToken: false`).

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use serde_json::{Map, Value};

use super::Cx;

const TYPES: &str = include_str!("types.txt");

#[derive(Debug)]
enum Ty {
    Str,
    Int,
    Bool,
    Float,
    Any,
    Quantity,
    IntOrString,
    Time,
    Ptr(Box<Ty>),
    List(Box<Ty>),
    Map(Box<Ty>),
    Struct(&'static str),
}

/// How the encoder treats a field at its zero value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Omit {
    /// `omitempty`.
    Empty,
    /// Always written.
    Never,
    /// `omitzero`.
    Zero,
}

#[derive(Debug)]
struct Field {
    name: &'static str,
    ty: Ty,
    omit: Omit,
}

type Types = HashMap<&'static str, Vec<Field>>;

fn types() -> &'static Types {
    static PARSED: OnceLock<Types> = OnceLock::new();
    PARSED.get_or_init(|| {
        let mut types = HashMap::new();
        for line in TYPES.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let mut words = line.split(' ');
            let name = words.next().unwrap_or_default();
            let fields = words.filter(|w| !w.is_empty()).map(field).collect();
            types.insert(name, fields);
        }
        types
    })
}

/// One `name=TYPE[mark]` of the table.
fn field(word: &'static str) -> Field {
    let (name, rest) = word.split_once('=').unwrap_or((word, "a"));
    let (rest, omit) = match rest.as_bytes().last() {
        Some(b'!') => (&rest[..rest.len() - 1], Omit::Never),
        Some(b'~') => (&rest[..rest.len() - 1], Omit::Zero),
        _ => (rest, Omit::Empty),
    };
    let (ty, _) = ty(rest);
    Field { name, ty, omit }
}

/// The type at the start of `text`, and what follows it.
fn ty(text: &'static str) -> (Ty, &'static str) {
    let wrap = |inner: &'static str, close: u8, make: fn(Box<Ty>) -> Ty| {
        let (inner, rest) = ty(inner);
        let rest = rest.strip_prefix(close as char).unwrap_or(rest);
        (make(Box::new(inner)), rest)
    };
    match text.as_bytes().first() {
        Some(b'*') => {
            let (inner, rest) = ty(&text[1..]);
            (Ty::Ptr(Box::new(inner)), rest)
        }
        Some(b'[') => wrap(&text[1..], b']', Ty::List),
        Some(b'{') => wrap(&text[1..], b'}', Ty::Map),
        _ => {
            let end = text
                .find(|c: char| !c.is_ascii_alphanumeric())
                .unwrap_or(text.len());
            let (word, rest) = text.split_at(end);
            let ty = match word {
                "s" => Ty::Str,
                "i" => Ty::Int,
                "b" => Ty::Bool,
                "f" => Ty::Float,
                "q" => Ty::Quantity,
                "n" => Ty::IntOrString,
                "t" => Ty::Time,
                "a" => Ty::Any,
                name => Ty::Struct(name),
            };
            (ty, rest)
        }
    }
}

/// Drops what the decoder of `type_name` does not know, at every depth, with a note each.
pub(super) fn decode(object: &mut Map<String, Value>, type_name: &str, cx: &mut Cx) {
    decode_struct(object, type_name, Place::Top, cx);
}

/// Where a value is in the object (`spec.containers[0].name`), written out only when a note
/// names it: most values need none.
#[derive(Clone, Copy)]
enum Place<'a> {
    Top,
    Field(&'a Place<'a>, &'a str),
    Item(&'a Place<'a>, usize),
}

impl fmt::Display for Place<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Top => Ok(()),
            Place::Field(Place::Top, key) => f.write_str(key),
            Place::Field(parent, key) => write!(f, "{parent}.{key}"),
            Place::Item(parent, index) => write!(f, "{parent}[{index}]"),
        }
    }
}

fn decode_struct(map: &mut Map<String, Value>, type_name: &str, place: Place<'_>, cx: &mut Cx) {
    let Some(fields) = types().get(type_name) else {
        return;
    };
    cx.prune(map, |key| fields.iter().any(|f| f.name == key), &place);
    for field in fields {
        if let Some(value) = map.get_mut(field.name) {
            decode_value(value, &field.ty, Place::Field(&place, field.name), cx);
        }
    }
}

fn decode_value(value: &mut Value, ty: &Ty, place: Place<'_>, cx: &mut Cx) {
    match (ty, value) {
        (Ty::Ptr(inner), value) => decode_value(value, inner, place, cx),
        (Ty::List(inner), Value::Array(items)) => {
            for (i, item) in items.iter_mut().enumerate() {
                decode_value(item, inner, Place::Item(&place, i), cx);
            }
        }
        (Ty::Map(inner), Value::Object(map)) => {
            for (key, item) in map.iter_mut() {
                decode_value(item, inner, Place::Field(&place, key), cx);
            }
        }
        (Ty::Struct(name), Value::Object(map)) => decode_struct(map, name, place, cx),
        _ => {}
    }
}

/// Writes `object` as the encoder of `type_name` writes it back (see the module documentation).
pub(super) fn encode(object: &mut Map<String, Value>, type_name: &str) {
    encode_struct(object, type_name);
}

fn encode_struct(map: &mut Map<String, Value>, type_name: &str) {
    let Some(fields) = types().get(type_name) else {
        return;
    };
    for field in fields {
        match map.get_mut(field.name) {
            Some(value) => {
                encode_value(value, &field.ty);
                let drop = match field.omit {
                    Omit::Empty => is_empty(value, &field.ty),
                    Omit::Zero => is_zero(value, &field.ty),
                    Omit::Never => false,
                };
                if drop {
                    map.remove(field.name);
                }
            }
            None => {
                if let Some(value) = absent(&field.ty, field.omit) {
                    map.insert(field.name.to_owned(), value);
                }
            }
        }
    }
}

fn encode_value(value: &mut Value, ty: &Ty) {
    match (ty, value) {
        (Ty::Ptr(inner), value) => encode_value(value, inner),
        (Ty::List(inner), Value::Array(items)) => {
            items.iter_mut().for_each(|item| encode_value(item, inner));
        }
        (Ty::Map(inner), Value::Object(map)) => {
            map.values_mut().for_each(|item| encode_value(item, inner));
        }
        (Ty::Struct(name), Value::Object(map)) => encode_struct(map, name),
        _ => {}
    }
}

/// What omitempty leaves out: the zero value of a string, number or bool, an empty list or map.
/// Structs and pointers are never empty.
fn is_empty(value: &Value, ty: &Ty) -> bool {
    match ty {
        Ty::Str => value.as_str() == Some(""),
        Ty::Int | Ty::Float => value.as_f64() == Some(0.0),
        Ty::Bool => value.as_bool() == Some(false),
        Ty::List(_) => value.as_array().is_some_and(Vec::is_empty),
        Ty::Map(_) => value.as_object().is_some_and(Map::is_empty),
        _ => false,
    }
}

/// What omitzero leaves out: the zero value, structs included.
fn is_zero(value: &Value, ty: &Ty) -> bool {
    match ty {
        Ty::Struct(_) => value.as_object().is_some_and(Map::is_empty),
        Ty::Time => value.is_null() || value.as_str() == Some(""),
        _ => is_empty(value, ty),
    }
}

/// What the encoder writes for a field the manifest left out (its zero value), if anything.
fn absent(ty: &Ty, omit: Omit) -> Option<Value> {
    if omit == Omit::Zero {
        return None;
    }
    match ty {
        Ty::Struct(name) => {
            let mut map = Map::new();
            encode_struct(&mut map, name);
            Some(Value::Object(map))
        }
        Ty::Quantity => Some(Value::from("0")),
        Ty::IntOrString => Some(Value::from(0)),
        Ty::Str if omit == Omit::Never => Some(Value::from("")),
        Ty::Int | Ty::Float if omit == Omit::Never => Some(Value::from(0)),
        Ty::Bool if omit == Omit::Never => Some(Value::from(false)),
        // A nil list, map, pointer or time is written as null: the same as absent here.
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_the_table_names_is_in_it() {
        fn named(ty: &Ty) -> Option<&'static str> {
            match ty {
                Ty::Ptr(inner) | Ty::List(inner) | Ty::Map(inner) => named(inner),
                Ty::Struct(name) => Some(name),
                _ => None,
            }
        }
        let types = types();
        assert!(types.len() > 200);
        for (owner, fields) in types {
            for field in fields {
                if let Some(name) = named(&field.ty) {
                    assert!(types.contains_key(name), "{owner}.{}: {name}", field.name);
                }
            }
        }
    }
}
