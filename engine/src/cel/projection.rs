//! What of `object` (and `oldObject`) a set of CEL expressions can read, and reading only that
//! from an object's JSON text.
//!
//! An expression that reaches the object only through chains of field selections
//! (`object.spec.containers`, `has(object.metadata.labels)`) sees nothing but the values at the
//! ends of those chains and the presence of each field along the way. A copy of the object that
//! keeps those values whole, and of the maps on the way only the fields named, gives every such
//! expression the same answer and the same errors as the whole object. Any other use of the object
//! (itself as a value, an index, an optional selection, a comprehension variable that shadows it)
//! needs the whole object.
//!
//! Reading a projection from text skips what is not kept without building it: for an impact over
//! a large inventory that is most of each object.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use cel::common::ast::{EntryExpr, Expr};
use cel::parser::Expression;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Number, Value};

/// The part of an object to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Projection {
    /// All of it.
    Whole,
    /// Of a map, only these fields (each kept as its projection says); any other value whole.
    Fields(BTreeMap<String, Projection>),
}

impl Default for Projection {
    /// Nothing is read.
    fn default() -> Self {
        Projection::Fields(BTreeMap::new())
    }
}

impl Projection {
    /// Keep the value at `path` whole as well.
    pub fn add_path(&mut self, path: &[&str]) {
        let Projection::Fields(fields) = self else {
            return;
        };
        let Some((first, rest)) = path.split_first() else {
            *self = Projection::Whole;
            return;
        };
        let child = fields
            .entry((*first).to_owned())
            .or_insert_with(Projection::default);
        if rest.is_empty() {
            *child = Projection::Whole;
        } else {
            child.add_path(rest);
        }
    }

    /// Keep what `other` keeps as well.
    pub fn merge(&mut self, other: &Projection) {
        match (&mut *self, other) {
            (Projection::Whole, _) => {}
            (_, Projection::Whole) => *self = Projection::Whole,
            (Projection::Fields(mine), Projection::Fields(theirs)) => {
                for (key, projection) in theirs {
                    match mine.get_mut(key) {
                        Some(existing) => existing.merge(projection),
                        None => {
                            mine.insert(key.clone(), projection.clone());
                        }
                    }
                }
            }
        }
    }

    pub fn is_whole(&self) -> bool {
        matches!(self, Projection::Whole)
    }

    /// The projection of the JSON object in `text`: the value [`Projection::apply`] gives for the
    /// whole parsed text, without building what it leaves out. Text that is not JSON is the error
    /// `serde_json` gives.
    pub fn read(&self, text: &str) -> serde_json::Result<Value> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let value = Read(self).deserialize(&mut deserializer)?;
        deserializer.end()?;
        Ok(value)
    }

    /// The projection of a value already parsed.
    pub fn apply(&self, value: &Value) -> Value {
        match (self, value) {
            (Projection::Fields(fields), Value::Object(map)) => Value::Object(
                map.iter()
                    .filter_map(|(key, value)| {
                        fields
                            .get(key)
                            .map(|projection| (key.clone(), projection.apply(value)))
                    })
                    .collect(),
            ),
            _ => value.clone(),
        }
    }
}

/// What `expr` reads of `object` and `oldObject` (one projection serves both).
pub(crate) fn object_reads(expr: &Expression) -> Projection {
    let mut reads = Projection::default();
    collect(expr, &mut reads);
    reads
}

const OBJECTS: [&str; 2] = ["object", "oldObject"];

/// `root.a.b.c` as (`root`, [`a`, `b`, `c`]) when `expr` is a chain of field selections (presence
/// tests included) on a name.
fn chain(expr: &Expression) -> Option<(&str, Vec<&str>)> {
    match &expr.expr {
        Expr::Ident(name) => Some((name.as_str(), Vec::new())),
        Expr::Select(select) => {
            let (root, mut path) = chain(&select.operand)?;
            path.push(select.field.as_str());
            Some((root, path))
        }
        _ => None,
    }
}

fn collect(expr: &Expression, reads: &mut Projection) {
    if reads.is_whole() {
        return;
    }
    if let Some((root, path)) = chain(expr) {
        if OBJECTS.contains(&root) {
            // A bare `object` is the whole object.
            reads.add_path(&path);
            return;
        }
    }
    match &expr.expr {
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
        Expr::Select(select) => collect(&select.operand, reads),
        Expr::Call(call) => {
            if let Some(target) = &call.target {
                collect(target, reads);
            }
            for arg in &call.args {
                collect(arg, reads);
            }
        }
        Expr::Comprehension(comprehension) => {
            let shadows = std::iter::once(&comprehension.iter_var)
                .chain(comprehension.iter_var2.as_ref())
                .chain(std::iter::once(&comprehension.accu_var))
                .any(|name| OBJECTS.contains(&name.as_str()));
            if shadows {
                *reads = Projection::Whole;
                return;
            }
            for part in [
                &comprehension.iter_range,
                &comprehension.accu_init,
                &comprehension.loop_cond,
                &comprehension.loop_step,
                &comprehension.result,
            ] {
                collect(part, reads);
            }
        }
        Expr::List(list) => list.elements.iter().for_each(|e| collect(e, reads)),
        Expr::Map(map) => {
            for entry in &map.entries {
                if let EntryExpr::MapEntry(entry) = &entry.expr {
                    collect(&entry.key, reads);
                    collect(&entry.value, reads);
                }
            }
        }
        Expr::Struct(structure) => {
            for entry in &structure.entries {
                if let EntryExpr::StructField(field) = &entry.expr {
                    collect(&field.value, reads);
                }
            }
        }
    }
}

/// Deserialize one value as a projection keeps it.
struct Read<'p>(&'p Projection);

impl<'de> DeserializeSeed<'de> for Read<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        match self.0 {
            Projection::Whole => Value::deserialize(deserializer),
            Projection::Fields(fields) => deserializer.deserialize_any(Partial(fields)),
        }
    }
}

/// A value read where only some fields of a map are kept: a map keeps those, anything else is
/// read whole (as `serde_json::Value` reads it).
struct Partial<'p>(&'p BTreeMap<String, Projection>);

impl<'de> Visitor<'de> for Partial<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(Key(key)) = access.next_key()? {
            match self.0.get(key.as_ref()) {
                Some(projection) => {
                    let value = access.next_value_seed(Read(projection))?;
                    map.insert(key.into_owned(), value);
                }
                None => {
                    access.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(map))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = access.next_element::<Value>()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        Ok(Number::from_f64(value).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Value::deserialize(deserializer)
    }
}

/// A map key, borrowed from the text where it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }

            fn visit_borrowed_str<E>(self, value: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(value)))
            }

            fn visit_str<E>(self, value: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(value.to_owned())))
            }

            fn visit_string<E: de::Error>(self, value: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(value)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn reads(source: &str) -> Projection {
        super::super::compile(source)
            .expect("compiles")
            .object_reads()
            .clone()
    }

    fn paths(paths: &[&[&str]]) -> Projection {
        let mut projection = Projection::default();
        for path in paths {
            projection.add_path(path);
        }
        projection
    }

    #[test]
    fn chains_of_fields_are_read_and_anything_else_needs_the_whole_object() {
        let cases: &[(&str, Option<&[&[&str]]>)] = &[
            ("object.spec.replicas > 1", Some(&[&["spec", "replicas"]])),
            (
                "has(object.spec.hostNetwork) && object.metadata.name == 'a'",
                Some(&[&["spec", "hostNetwork"], &["metadata", "name"]]),
            ),
            (
                "object.spec.containers.all(c, !has(c.securityContext) || c.securityContext.privileged != true)",
                Some(&[&["spec", "containers"]]),
            ),
            (
                "oldObject.spec.x == object.spec.x.y",
                Some(&[&["spec", "x"]]),
            ),
            ("request.operation == 'CREATE'", Some(&[])),
            ("object == oldObject", None),
            ("size(object) > 1", None),
            ("object['spec'].replicas > 1", None),
            ("object.?spec.orValue({}) == {}", None),
            ("[1].all(object, object > 0)", None),
            ("[object.spec.a].exists(x, x == object.spec.b.c)", Some(&[&["spec", "a"], &["spec", "b", "c"]])),
        ];
        for (source, expected) in cases {
            let expected = expected.map_or(Projection::Whole, paths);
            assert_eq!(reads(source), expected, "{source}");
        }
    }

    #[test]
    fn a_shorter_path_keeps_what_a_longer_one_named() {
        let mut projection = paths(&[&["spec", "a", "b"], &["spec", "c"]]);
        projection.add_path(&["spec", "a"]);
        assert_eq!(projection, paths(&[&["spec", "a"], &["spec", "c"]]));
        projection.merge(&paths(&[&["spec"]]));
        assert_eq!(projection, paths(&[&["spec"]]));
        projection.merge(&Projection::Whole);
        assert!(projection.is_whole());
    }

    #[test]
    fn reading_text_gives_the_projection_of_the_parsed_value() {
        let object = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": {"a": "b"}, "annotations": {"x": "y"}},
            "spec": {"containers": [{"name": "c", "securityContext": {"privileged": true}}],
                     "volumes": [{"name": "v", "emptyDir": {}}], "hostPID": false,
                     "priority": -3, "overhead": 1.5, "big": 18446744073709551615u64, "none": null,
                     "weird": "\u{e9}\"\\n"},
            "status": {"phase": "Running"}
        });
        let text = serde_json::to_string(&object).unwrap();
        let projections = [
            Projection::Whole,
            Projection::default(),
            paths(&[&["metadata"], &["kind"], &["spec", "containers"]]),
            paths(&[
                &["spec", "priority"],
                &["spec", "overhead"],
                &["spec", "big"],
                &["spec", "none"],
            ]),
            paths(&[
                &["spec", "weird"],
                &["spec", "containers", "name"],
                &["status", "phase", "x"],
            ]),
            paths(&[&["wei\"rd"], &["spec", "hostPID"]]),
        ];
        for projection in projections {
            assert_eq!(
                projection.read(&text).unwrap(),
                projection.apply(&object),
                "{projection:?}"
            );
        }
        let escaped = r#"{"sp\u0065c": {"a": 1, "b": 2}, "x": 3}"#;
        assert_eq!(
            paths(&[&["spec", "a"]]).read(escaped).unwrap(),
            json!({"spec": {"a": 1}})
        );
        for bad in ["{\"spec\": ", "{\"x\": [1,]}", "{} {}", "{\"x\": tru}"] {
            assert!(paths(&[&["spec"]]).read(bad).is_err(), "{bad}");
        }
    }

    /// Every ValidatingAdmissionPolicy of the built-in library gives the same verdict on varied
    /// Pods and workloads read as its projection as on the whole objects.
    #[test]
    fn every_library_policy_judges_the_projection_as_the_whole_object() {
        use crate::bundle::{Bundle, Context};
        use crate::library::{entries, EntryKind};
        use crate::AdmissionRequest;

        let objects: Vec<Value> = crate::sample::pods(11, 150)
            .into_iter()
            .chain(crate::sample::workloads(12, 150))
            .collect();
        let context = Context::default();
        let mut projected_policies = 0;
        let mut denials = 0;
        // (whole, projected) bytes read.
        let mut bytes = (0, 0);
        for entry in entries().expect("the library loads") {
            if !matches!(entry.kind, EntryKind::Vap) {
                continue;
            }
            let mut bundle = Bundle::default();
            bundle
                .add_library_entry(&entry)
                .expect("a library entry loads");
            let reads = bundle.object_reads();
            assert!(!reads.is_whole(), "{}: {reads:?}", entry.id);
            projected_policies += 1;
            for object in &objects {
                let text = serde_json::to_string(object).unwrap();
                let projected = reads.read(&text).unwrap();
                bytes.0 += text.len();
                bytes.1 += serde_json::to_string(&projected).unwrap().len();
                let whole =
                    bundle.evaluate(&AdmissionRequest::create(object.clone()).unwrap(), &context);
                let part = bundle.evaluate(&AdmissionRequest::create(projected).unwrap(), &context);
                assert_eq!(whole, part, "{} on {object}", entry.id);
                denials += usize::from(!whole.findings.is_empty());
            }
        }
        assert!(
            projected_policies >= 10,
            "{projected_policies} library policies"
        );
        assert!(denials > 100, "{denials} objects with findings");
        // The projections leave out a good part of what the objects hold.
        assert!(bytes.1 * 10 < bytes.0 * 8, "{bytes:?}");
    }
}
