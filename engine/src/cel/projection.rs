//! What of `object` (and `oldObject`) a ValidatingAdmissionPolicy's expressions can read, and
//! reading only that from an object's JSON text.
//!
//! An expression sees the object only through what it does with it: it selects fields
//! (`object.spec.containers`), tests their presence (`has(...)`), iterates lists
//! (`.all(c, c.securityContext.privileged)`) and builds new lists from their items (`filter`,
//! `map`, `+`); anything else it does with a value (compares it, passes it to a function, takes
//! its size) needs that value whole. Each expression is summarised once, when it compiles, as the
//! places of the object (or of a composited variable) it selects through and those it needs whole,
//! and what its own value may be. A policy then follows its variables to places of the object.
//!
//! The projection of an object keeps every value needed whole, of every map on the way only the
//! fields selected, of every list iterated each item's projection, and every other value whole: a
//! number or string is always kept. An expression gives the same answer and the same errors on the
//! projection as on the whole object. Anything the analysis does not follow (a bare `variables`, a
//! comprehension variable named `variables`, a variable defined later) needs the whole object.
//!
//! Reading a projection from text skips what is not kept without building it: for an impact over
//! a large inventory that is most of each object.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

use cel::common::ast::{operators, EntryExpr, Expr, LiteralValue};
use cel::parser::Expression;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Number, Value};

/// The part of a value to keep.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Projection {
    /// All of it.
    whole: bool,
    /// Of a map, the fields to keep (each as its projection says); other fields are left out.
    fields: BTreeMap<String, Projection>,
    /// Of a list, what to keep of each item. A map whose entries are iterated is kept whole.
    items: Option<Box<Projection>>,
}

/// One step from a value to a part of it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Step {
    Field(String),
    /// Any item of a list (or entry of a map).
    Items,
}

impl Projection {
    /// Keep everything.
    pub fn whole() -> Projection {
        Projection {
            whole: true,
            ..Projection::default()
        }
    }

    /// Whether it keeps the whole object (what reads it is not followed).
    pub fn is_whole(&self) -> bool {
        self.whole
    }

    /// Keep the value at the field path `path` whole as well.
    pub fn add_path(&mut self, path: &[&str]) {
        let steps: Vec<Step> = path.iter().map(|f| Step::Field((*f).to_owned())).collect();
        self.add(&steps, true);
    }

    /// Keep the place at `steps`: whole, or only what else is kept below it.
    fn add(&mut self, steps: &[Step], whole: bool) {
        if self.whole {
            return;
        }
        match steps.split_first() {
            None => {
                if whole {
                    *self = Projection::whole();
                }
            }
            Some((Step::Field(field), rest)) => self
                .fields
                .entry(field.clone())
                .or_default()
                .add(rest, whole),
            Some((Step::Items, rest)) => self
                .items
                .get_or_insert_with(Default::default)
                .add(rest, whole),
        }
    }

    /// Whether anything at the field path `path` is kept (the whole of it, or some part).
    pub fn keeps(&self, path: &[&str]) -> bool {
        if self.whole {
            return true;
        }
        match path.split_first() {
            None => true,
            Some((field, rest)) => self.fields.get(*field).is_some_and(|p| p.keeps(rest)),
        }
    }

    /// Keep what `other` keeps as well.
    pub fn merge(&mut self, other: &Projection) {
        if self.whole {
            return;
        }
        if other.whole {
            *self = Projection::whole();
            return;
        }
        for (field, projection) in &other.fields {
            self.fields
                .entry(field.clone())
                .or_default()
                .merge(projection);
        }
        if let Some(items) = &other.items {
            self.items.get_or_insert_with(Default::default).merge(items);
        }
    }

    /// The projection of the JSON value in `text` (what the tests' `apply` gives for the whole
    /// parsed text), without building what it leaves out. Text that is not JSON is the error
    /// `serde_json` gives.
    pub fn read(&self, text: &str) -> serde_json::Result<Value> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let value = Read(self).deserialize(&mut deserializer)?;
        deserializer.end()?;
        Ok(value)
    }

    /// The projection of a value already parsed: what [`Projection::read`] must give.
    #[cfg(test)]
    pub fn apply(&self, value: &Value) -> Value {
        match value {
            Value::Object(map) if !self.whole && self.items.is_none() => Value::Object(
                map.iter()
                    .filter_map(|(key, value)| {
                        let projection = self.fields.get(key)?;
                        Some((key.clone(), projection.apply(value)))
                    })
                    .collect(),
            ),
            Value::Array(items) if !self.whole => match &self.items {
                Some(projection) => {
                    Value::Array(items.iter().map(|i| projection.apply(i)).collect())
                }
                None => value.clone(),
            },
            _ => value.clone(),
        }
    }
}

/// Where a value comes from: the object (or old object), or a composited variable.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Root {
    Object,
    Variable(String),
}

type Place = (Root, Vec<Step>);

/// What an expression's value may be, as far as it is part of the object: one of the values at
/// `exactly`, or a new list whose items are values at `items`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Origin {
    exactly: Vec<Place>,
    items: Vec<Place>,
}

impl Origin {
    fn of(place: Place) -> Origin {
        Origin {
            exactly: vec![place],
            items: Vec::new(),
        }
    }

    fn union(mut self, other: Origin) -> Origin {
        for place in other.exactly {
            if !self.exactly.contains(&place) {
                self.exactly.push(place);
            }
        }
        for place in other.items {
            if !self.items.contains(&place) {
                self.items.push(place);
            }
        }
        self
    }

    /// The places any item of this value (a list) comes from.
    fn item_places(&self) -> Vec<Place> {
        let mut places: Vec<Place> = self
            .exactly
            .iter()
            .map(|(root, steps)| (root.clone(), with(steps, Step::Items)))
            .collect();
        places.extend(self.items.iter().cloned());
        places
    }

    fn len(&self) -> usize {
        self.exactly.len() + self.items.len()
    }
}

fn with(steps: &[Step], step: Step) -> Vec<Step> {
    let mut steps = steps.to_vec();
    steps.push(step);
    steps
}

/// What one expression does with the object and the variables (see the module documentation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Places needed whole.
    whole: Vec<Place>,
    /// Places selected through: each field on the way must be kept.
    through: Vec<Place>,
    /// What the expression's value may be.
    value: Origin,
    /// The object or the variables are used in a way the analysis does not follow.
    opaque: bool,
    /// The request is read where it tells one object from another of the same content (its
    /// name, uid or objects, or the request whole), or the authorizer is asked.
    identity: bool,
}

/// The fields of `request` that say nothing of which object it is about beyond what the object
/// holds: reading them keeps an expression free of the object's identity.
const REQUEST_FIELDS_NOT_NAMING: [&str; 11] = [
    "operation",
    "kind",
    "resource",
    "subResource",
    "requestKind",
    "requestResource",
    "requestSubResource",
    "userInfo",
    "dryRun",
    "options",
    "namespace",
];

/// How many places one expression may name before it is treated as needing the whole object.
const MAX_PLACES: usize = 4096;

/// Summarise `expr` (as parsed, before any rewriting).
pub(crate) fn summarise(expr: &Expression) -> Summary {
    let mut analysis = Analysis {
        summary: Summary::default(),
        scope: HashMap::new(),
    };
    let value = analysis.value_of(expr);
    let mut summary = analysis.summary;
    summary.value = value;
    if summary.whole.len() + summary.through.len() + summary.value.len() > MAX_PLACES {
        summary.opaque = true;
    }
    summary
}

struct Analysis {
    summary: Summary,
    /// Comprehension variables in scope.
    scope: HashMap<String, Origin>,
}

impl Analysis {
    /// Everything `value` may be is needed whole.
    fn need(&mut self, value: Origin) {
        for place in value.exactly.into_iter().chain(value.items) {
            if !self.summary.whole.contains(&place) {
                self.summary.whole.push(place);
            }
        }
    }

    /// `places` are selected through.
    fn through(&mut self, places: &[Place]) {
        for place in places {
            if !self.summary.through.contains(place) {
                self.summary.through.push(place.clone());
            }
        }
    }

    fn need_value_of(&mut self, expr: &Expression) {
        let value = self.value_of(expr);
        self.need(value);
    }

    fn value_of(&mut self, expr: &Expression) -> Origin {
        if self.summary.opaque || self.summary.whole.len() + self.summary.through.len() > MAX_PLACES
        {
            self.summary.opaque = true;
            return Origin::default();
        }
        match &expr.expr {
            Expr::Ident(name) => {
                if let Some(value) = self.scope.get(name) {
                    return value.clone();
                }
                match name.as_str() {
                    "object" | "oldObject" => Origin::of((Root::Object, Vec::new())),
                    "variables" => {
                        self.summary.opaque = true;
                        Origin::default()
                    }
                    "request" | "authorizer" => {
                        self.summary.identity = true;
                        Origin::default()
                    }
                    _ => Origin::default(),
                }
            }
            Expr::Select(select) => {
                let request = matches!(&select.operand.expr,
                    Expr::Ident(name) if name == "request" && !self.scope.contains_key(name));
                if request && REQUEST_FIELDS_NOT_NAMING.contains(&select.field.as_str()) {
                    return Origin::default();
                }
                let variables = matches!(&select.operand.expr,
                    Expr::Ident(name) if name == "variables" && !self.scope.contains_key(name));
                if variables {
                    // `has(variables.x)` asks whether the policy defines x.
                    return if select.test {
                        Origin::default()
                    } else {
                        Origin::of((Root::Variable(select.field.clone()), Vec::new()))
                    };
                }
                let operand = self.value_of(&select.operand);
                let selected: Vec<Place> = operand
                    .exactly
                    .iter()
                    .map(|(root, steps)| {
                        (root.clone(), with(steps, Step::Field(select.field.clone())))
                    })
                    .collect();
                // A field of a new list is an error whatever the list holds.
                self.through(&selected);
                if select.test {
                    Origin::default()
                } else {
                    Origin {
                        exactly: selected,
                        items: Vec::new(),
                    }
                }
            }
            Expr::Call(call) => self.call(call),
            Expr::Comprehension(c) => {
                let shadows_variables = std::iter::once(&c.iter_var)
                    .chain(c.iter_var2.as_ref())
                    .chain(std::iter::once(&c.accu_var))
                    .any(|name| name == "variables");
                if shadows_variables {
                    self.summary.opaque = true;
                    return Origin::default();
                }
                let range = self.value_of(&c.iter_range);
                let item = if c.iter_var2.is_some() {
                    // Index and item, or key and value: followed no further.
                    self.need(range);
                    Origin::default()
                } else {
                    Origin {
                        exactly: range.item_places(),
                        items: Vec::new(),
                    }
                };
                let accu_init = self.value_of(&c.accu_init);
                let saved: Vec<(String, Option<Origin>)> = std::iter::once(&c.iter_var)
                    .chain(c.iter_var2.as_ref())
                    .chain(std::iter::once(&c.accu_var))
                    .map(|name| (name.clone(), self.scope.get(name).cloned()))
                    .collect();
                self.scope.insert(c.iter_var.clone(), item);
                if let Some(second) = &c.iter_var2 {
                    self.scope.insert(second.clone(), Origin::default());
                }
                // The accumulator holds what the steps put in it: grow it until it stays the same.
                let mut accu = accu_init;
                let mut settled = false;
                for _ in 0..4 {
                    self.scope.insert(c.accu_var.clone(), accu.clone());
                    self.need_value_of(&c.loop_cond);
                    let step = self.value_of(&c.loop_step);
                    let grown = accu.clone().union(step);
                    if grown == accu {
                        settled = true;
                        break;
                    }
                    accu = grown;
                }
                if !settled {
                    self.summary.opaque = true;
                }
                self.scope.insert(c.accu_var.clone(), accu);
                let result = self.value_of(&c.result);
                for (name, value) in saved {
                    match value {
                        Some(value) => self.scope.insert(name, value),
                        None => self.scope.remove(&name),
                    };
                }
                result
            }
            Expr::List(list) => {
                let mut items = Vec::new();
                for element in &list.elements {
                    let value = self.value_of(element);
                    // A list inside a new list is followed no further.
                    self.need(Origin {
                        exactly: Vec::new(),
                        items: value.items,
                    });
                    items.extend(value.exactly);
                }
                Origin {
                    exactly: Vec::new(),
                    items,
                }
            }
            Expr::Map(map) => {
                for entry in &map.entries {
                    if let EntryExpr::MapEntry(entry) = &entry.expr {
                        self.need_value_of(&entry.key);
                        self.need_value_of(&entry.value);
                    }
                }
                Origin::default()
            }
            Expr::Struct(structure) => {
                for entry in &structure.entries {
                    if let EntryExpr::StructField(field) = &entry.expr {
                        self.need_value_of(&field.value);
                    }
                }
                Origin::default()
            }
            Expr::Literal(_) | Expr::Unspecified => Origin::default(),
        }
    }

    fn call(&mut self, call: &cel::common::ast::CallExpr) -> Origin {
        let args = call.args.as_slice();
        match (call.func_name.as_str(), &call.target, args) {
            // The branches' values, the condition needed whole.
            (operators::CONDITIONAL, None, [condition, then, otherwise]) => {
                self.need_value_of(condition);
                let then = self.value_of(then);
                let otherwise = self.value_of(otherwise);
                then.union(otherwise)
            }
            // Whether a value is null needs only whether it is there: a projection keeps every
            // place it selects through (a map as a map, a list as a list), and a new list is
            // never null.
            (operators::EQUALS | operators::NOT_EQUALS, None, [left, right])
                if is_null(left) || is_null(right) =>
            {
                let value = self.value_of(if is_null(left) { right } else { left });
                self.through(&value.exactly);
                Origin::default()
            }
            // Lists joined are a new list of their items. Numbers and strings added are kept
            // whole wherever they are.
            (operators::ADD, None, [left, right]) => {
                let left = self.value_of(left);
                let right = self.value_of(right);
                let mut items = left.item_places();
                items.extend(right.item_places());
                Origin {
                    exactly: Vec::new(),
                    items,
                }
            }
            // A field named by a literal, or any item.
            (operators::INDEX, None, [operand, index]) => {
                let operand = self.value_of(operand);
                let step = match &index.expr {
                    Expr::Literal(LiteralValue::String(field)) => {
                        Step::Field(field.inner().to_owned())
                    }
                    _ => {
                        self.need_value_of(index);
                        Step::Items
                    }
                };
                // An item of a new list is one of its items.
                let mut exactly: Vec<Place> = operand
                    .exactly
                    .iter()
                    .map(|(root, steps)| (root.clone(), with(steps, step.clone())))
                    .collect();
                self.through(&exactly);
                if step == Step::Items {
                    exactly.extend(operand.items);
                }
                Origin {
                    exactly,
                    items: Vec::new(),
                }
            }
            _ => {
                if let Some(target) = &call.target {
                    self.need_value_of(target);
                }
                for arg in args {
                    self.need_value_of(arg);
                }
                Origin::default()
            }
        }
    }
}

/// Whether `expr` is the literal `null`.
fn is_null(expr: &Expression) -> bool {
    matches!(expr.expr, Expr::Literal(LiteralValue::Null))
}

/// A value in places of the object: those it may be exactly, and those whose values may be the
/// items of a new list it is.
#[derive(Default)]
struct Resolved {
    exactly: Vec<Vec<Step>>,
    items: Vec<Vec<Step>>,
}

/// The places of the object that a policy's expressions read, its variables followed.
#[derive(Default)]
pub struct PolicyReads {
    projection: Projection,
    /// Some expression reads the request where it names its object (see [`Summary`]).
    identity: bool,
    /// Each variable's value, in places of the object.
    variables: HashMap<String, Resolved>,
}

impl PolicyReads {
    /// Add a composited variable, in the order the policy declares them.
    pub fn add_variable(&mut self, name: &str, summary: &Summary) {
        let value = self.add(summary);
        self.variables.insert(name.to_owned(), value);
    }

    /// Add any other expression of the policy.
    pub fn add_expression(&mut self, summary: &Summary) {
        let value = self.add(summary);
        // What an expression evaluates to is read whole (compared, written into a message).
        for steps in value.exactly.iter().chain(&value.items) {
            self.projection.add(steps, true);
        }
    }

    pub fn into_projection(self) -> Projection {
        self.projection
    }

    /// Whether the policy's answer about an object may depend on which object it is, not only on
    /// what it holds: an expression reads the object's name or uid (or anything above them), or
    /// the request where it names the object. When it does not, two objects that differ only in
    /// name and uid get the same answer.
    pub fn reads_identity(&self) -> bool {
        self.identity
            || self.projection.keeps(&["metadata", "name"])
            || self.projection.keeps(&["metadata", "uid"])
    }

    /// Whether an expression reads the object's labels (or anything above them).
    pub fn reads_labels(&self) -> bool {
        self.projection.keeps(&["metadata", "labels"])
    }

    /// Keep what `summary` reads; its value, in places of the object.
    fn add(&mut self, summary: &Summary) -> Resolved {
        self.identity |= summary.identity;
        if summary.opaque {
            return self.unknown();
        }
        let mut value = Resolved::default();
        for place in &summary.through {
            let Some(resolved) = self.resolve(place) else {
                return self.unknown();
            };
            for steps in &resolved.exactly {
                self.projection.add(steps, false);
            }
        }
        for place in &summary.whole {
            let Some(resolved) = self.resolve(place) else {
                return self.unknown();
            };
            for steps in resolved.exactly.iter().chain(&resolved.items) {
                self.projection.add(steps, true);
            }
        }
        for place in &summary.value.exactly {
            let Some(resolved) = self.resolve(place) else {
                return self.unknown();
            };
            value.exactly.extend(resolved.exactly);
            value.items.extend(resolved.items);
        }
        for place in &summary.value.items {
            let Some(resolved) = self.resolve(place) else {
                return self.unknown();
            };
            value.items.extend(resolved.exactly);
            // Items of a new list's items: followed no further.
            for steps in &resolved.items {
                self.projection.add(steps, true);
            }
        }
        value
    }

    /// Something not followed (a variable not yet defined): the whole object may be needed.
    fn unknown(&mut self) -> Resolved {
        self.projection = Projection::whole();
        Resolved::default()
    }

    /// A place as places of the object.
    fn resolve(&self, (root, steps): &Place) -> Option<Resolved> {
        let Root::Variable(name) = root else {
            return Some(Resolved {
                exactly: vec![steps.clone()],
                items: Vec::new(),
            });
        };
        let variable = self.variables.get(name)?;
        let below = |bases: &[Vec<Step>], rest: &[Step]| -> Vec<Vec<Step>> {
            bases
                .iter()
                .map(|base| base.iter().chain(rest).cloned().collect())
                .collect()
        };
        let mut resolved = Resolved {
            exactly: below(&variable.exactly, steps),
            items: Vec::new(),
        };
        match steps.split_first() {
            None => resolved.items.clone_from(&variable.items),
            Some((Step::Items, rest)) => resolved.exactly.extend(below(&variable.items, rest)),
            // A field of a new list is an error whatever it holds.
            Some((Step::Field(_), _)) => {}
        }
        Some(resolved)
    }
}

/// Deserialize one value as a projection keeps it.
struct Read<'p>(&'p Projection);

impl<'de> DeserializeSeed<'de> for Read<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        if self.0.whole {
            Value::deserialize(deserializer)
        } else {
            deserializer.deserialize_any(Partial(self.0))
        }
    }
}

/// A value read as the projection keeps it: of a map the fields named (the whole map when
/// its entries are iterated), of a list each item's projection, anything else whole (as
/// `serde_json::Value` reads it).
struct Partial<'p>(&'p Projection);

impl<'de> Visitor<'de> for Partial<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        let iterated = self.0.items.is_some();
        while let Some(Key(key)) = access.next_key()? {
            if iterated {
                map.insert(key.into_owned(), access.next_value()?);
                continue;
            }
            match self.0.fields.get(key.as_ref()) {
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
        match &self.0.items {
            Some(projection) => {
                while let Some(item) = access.next_element_seed(Read(projection))? {
                    items.push(item);
                }
            }
            None => {
                while let Some(item) = access.next_element::<Value>()? {
                    items.push(item);
                }
            }
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

    fn summary(source: &str) -> Summary {
        super::super::compile(source)
            .expect("compiles")
            .object_summary()
            .clone()
    }

    fn reads(source: &str) -> Projection {
        let mut reads = PolicyReads::default();
        reads.add_expression(&summary(source));
        reads.into_projection()
    }

    /// A projection from dotted places (`*` for any item), each kept whole (`true`) or only
    /// selected through.
    fn places(places: &[(&str, bool)]) -> Projection {
        let mut projection = Projection::default();
        for (place, whole) in places {
            let steps: Vec<Step> = place
                .split('.')
                .map(|s| match s {
                    "*" => Step::Items,
                    field => Step::Field(field.to_owned()),
                })
                .collect();
            projection.add(&steps, *whole);
        }
        projection
    }

    #[test]
    fn what_an_expression_reads_of_the_object() {
        type Case<'a> = (&'a str, Option<&'a [(&'a str, bool)]>);
        let cases: &[Case] = &[
            ("object.spec.replicas > 1", Some(&[("spec.replicas", true)])),
            (
                "has(object.spec.hostNetwork) && object.metadata.name == 'a'",
                Some(&[("spec.hostNetwork", false), ("metadata.name", true)]),
            ),
            (
                "object.spec.containers.all(c, !has(c.securityContext) || c.securityContext.privileged != true)",
                Some(&[("spec.containers.*.securityContext.privileged", true)]),
            ),
            ("oldObject.spec.x == object.spec.x.y", Some(&[("spec.x", true)])),
            ("request.operation == 'CREATE'", Some(&[])),
            ("object == oldObject", None),
            ("size(object) > 1", None),
            ("object['spec'].replicas > 1", Some(&[("spec.replicas", true)])),
            ("object.?spec.orValue({}) == {}", None),
            ("[1].all(object, object > 0)", Some(&[])),
            (
                "[object.spec.a].exists(x, x == object.spec.b.c)",
                Some(&[("spec.a", true), ("spec.b.c", true)]),
            ),
            (
                "object.spec.containers.filter(c, c.image.startsWith('x')).map(c, c.name).join(',')",
                Some(&[("spec.containers.*.image", true), ("spec.containers.*.name", true)]),
            ),
            ("object.spec.containers[0].name == 'a'", Some(&[("spec.containers.*.name", true)])),
            ("object.metadata.labels.all(k, k != 'x')", Some(&[("metadata.labels.*", true)])),
            ("size(variables) > 0", None),
            // Whether a value is null needs it only selected through.
            ("object == null ? oldObject.spec.a : object.spec.b", Some(&[("spec.a", true), ("spec.b", true)])),
            ("object.spec.x != null && null == object.spec.y.z", Some(&[("spec.x", false), ("spec.y.z", false)])),
            ("object.spec.x == object.spec.y", Some(&[("spec.x", true), ("spec.y", true)])),
            ("variables.later.x == 1", None),
        ];
        for (source, expected) in cases {
            let expected = expected.map_or(Projection::whole(), places);
            assert_eq!(reads(source), expected, "{source}");
        }
    }

    /// The variables of the library's `disallow-privileged`, followed to the object: of each
    /// container only its name and whether it is privileged are read.
    #[test]
    fn variables_are_followed_to_the_places_they_read() {
        let mut reads = PolicyReads::default();
        let variables = [
            ("spec", "object.kind == 'Pod' ? object.spec : object.spec.template.spec"),
            (
                "containers",
                "variables.spec.containers + (has(variables.spec.initContainers) ? variables.spec.initContainers : [])",
            ),
            (
                "privileged",
                "variables.containers.filter(c, has(c.securityContext) && c.securityContext.privileged).map(c, c.name)",
            ),
        ];
        for (name, source) in variables {
            reads.add_variable(name, &summary(source));
        }
        reads.add_expression(&summary("size(variables.privileged) == 0"));
        reads.add_expression(&summary("'no: ' + variables.privileged.join(', ')"));
        let projection = reads.into_projection();
        let container = json!({"name": "c", "image": "nginx", "ports": [{"containerPort": 80}],
                               "securityContext": {"privileged": true, "runAsUser": 0}});
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                         "spec": {"containers": [container], "initContainers": [container, {"name": "i"}],
                                  "hostPID": true, "volumes": [{"name": "v"}]},
                         "status": {"phase": "Running"}});
        let kept = json!({"name": "c", "securityContext": {"privileged": true}});
        assert_eq!(
            projection.apply(&pod),
            json!({"kind": "Pod", "spec": {"containers": [kept], "initContainers": [kept, {"name": "i"}]}})
        );
        let deployment = json!({"kind": "Deployment", "spec": {"replicas": 2,
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [container]}}}});
        assert_eq!(
            projection.apply(&deployment),
            json!({"kind": "Deployment", "spec": {"template": {"spec": {"containers": [kept]}}}})
        );
    }

    #[test]
    fn a_place_needed_whole_keeps_what_was_selected_below_it() {
        let mut projection = places(&[("spec.a.b", true), ("spec.c", false)]);
        projection.add(&[Step::Field("spec".into()), Step::Field("a".into())], true);
        assert_eq!(projection, places(&[("spec.a", true), ("spec.c", false)]));
        projection.merge(&places(&[("spec", true)]));
        assert_eq!(projection, places(&[("spec", true)]));
        projection.merge(&Projection::whole());
        assert!(projection.is_whole());
    }

    /// Whether a policy of these variables and expressions reads which object it is about.
    fn reads_identity(variables: &[(&str, &str)], expressions: &[&str]) -> bool {
        let mut reads = PolicyReads::default();
        for (name, source) in variables {
            reads.add_variable(name, &summary(source));
        }
        for source in expressions {
            reads.add_expression(&summary(source));
        }
        reads.reads_identity()
    }

    #[test]
    fn an_expression_reads_identity_through_the_name_the_uid_or_the_request_naming_the_object() {
        let free = [
            "object.spec.containers.all(c, c.name != 'x')",
            "has(request.operation) && request.operation == 'DELETE' && object == null",
            "request.userInfo.username == 'a' && request.namespace == 'b' && request.kind.kind == 'Pod'",
            "object.metadata.labels.app == 'x' && object.metadata.namespace == 'y'",
            "has(object.metadata.generateName)",
            "[1, 2].all(request, request > 0 && request.size() > 0)",
        ];
        for source in free {
            assert!(!reads_identity(&[], &[source]), "{source}");
        }
        let naming = [
            "object.metadata.name.startsWith('a')",
            "has(object.metadata.name)",
            "object.metadata.uid != ''",
            "'bad: ' + object.metadata.name",
            "object.metadata.size() > 1",
            "object == oldObject",
            "request.name == 'a'",
            "request.uid == 'a'",
            "has(request.object.spec)",
            "request.size() > 0",
            "authorizer.group('').resource('pods').check('get').allowed()",
            "variables.unknown.name == 'a'",
        ];
        for source in naming {
            assert!(reads_identity(&[], &[source]), "{source}");
        }
        // Through a variable, as Gatekeeper's driver hands templates the object.
        let any = [(
            "anyObject",
            "has(request.operation) && request.operation == 'DELETE' && object == null ? oldObject : object",
        )];
        assert!(!reads_identity(
            &any,
            &["variables.anyObject.spec.hostPID == true"]
        ));
        assert!(reads_identity(
            &any,
            &["variables.anyObject.metadata.name == 'a'"]
        ));
        let meta = [("meta", "object.metadata")];
        assert!(reads_identity(&meta, &["variables.meta.name == 'a'"]));
        assert!(!reads_identity(&meta, &["variables.meta.labels.a == 'b'"]));
        let request = [("op", "request.operation"), ("r", "request")];
        assert!(!reads_identity(
            &request[..1],
            &["variables.op == 'CREATE'"]
        ));
        assert!(reads_identity(&request, &["variables.op == 'CREATE'"]));
    }

    #[test]
    fn reading_text_gives_the_projection_of_the_parsed_value() {
        let object = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": {"a": "b"}, "annotations": {"x": "y"}},
            "spec": {"containers": [{"name": "c", "securityContext": {"privileged": true}}, "odd", 3],
                     "volumes": [{"name": "v", "emptyDir": {}}], "hostPID": false,
                     "priority": -3, "overhead": 1.5, "big": 18446744073709551615u64, "none": null,
                     "weird": "\u{e9}\"\\n"},
            "status": {"phase": "Running"}
        });
        let text = serde_json::to_string(&object).unwrap();
        let projections = [
            Projection::whole(),
            Projection::default(),
            places(&[
                ("metadata", true),
                ("kind", true),
                ("spec.containers", true),
            ]),
            places(&[
                ("spec.priority", true),
                ("spec.overhead", true),
                ("spec.big", true),
                ("spec.none", false),
            ]),
            places(&[
                ("spec.weird", true),
                ("spec.containers.*.name", true),
                ("status.phase.x", false),
            ]),
            places(&[
                ("spec.containers.*.securityContext", false),
                ("metadata.labels.*", true),
            ]),
            places(&[("metadata.*", false), ("spec.volumes.*.emptyDir", true)]),
            places(&[("wei\"rd", true), ("spec.hostPID", true)]),
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
            places(&[("spec.a", true)]).read(escaped).unwrap(),
            json!({"spec": {"a": 1}})
        );
        for bad in ["{\"spec\": ", "{\"x\": [1,]}", "{} {}", "{\"x\": tru}"] {
            assert!(places(&[("spec", true)]).read(bad).is_err(), "{bad}");
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
        // The projections leave out most of what the objects hold (about four fifths).
        assert!(bytes.1 * 10 < bytes.0 * 4, "{bytes:?}");
    }
}
