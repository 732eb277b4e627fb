//! JSON objects as CEL values, with the semantics the apiserver gives them.
//!
//! - Strings are borrowed from the JSON document, never copied.
//! - Whole numbers become `int`, other numbers `double`: what the apiserver's conversion of an
//!   unstructured object gives for integer fields (`replicas`, `runAsUser`, ports) and number fields.
//!   Whole numbers too large for `int64` become `double`, as Go's JSON decoding makes them.
//! - A field whose value is `null` is absent, as the apiserver has it: decoding into typed objects
//!   drops nulls, and structural pruning drops them from custom resources. So
//!   `has(object.metadata.creationTimestamp)` is `false` for `creationTimestamp: null`.
//! - A `null` in a list (and a variable that is null: `oldObject` on CREATE, `params` without a
//!   parameter, `namespaceObject` for a cluster-scoped object) is [`K8sNull`]: equal to `null` and of
//!   type `null_type`, but `has(x.f)` on it is `false`, as in cel-go, where the `cel` crate's own
//!   `null` makes it an error. See [`K8sNull`] for how.

use std::any::Any;
use std::collections::HashMap;

use std::sync::{Arc, OnceLock};

use cel::common::traits::{Container, Indexer, Iterable, Sizer, Zeroer};
use cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, Kind, Type,
    NULL_TYPE,
};
use cel::common::value::{Builtin, BuiltinRef, CowVal, Val};
use cel::ExecutionError;
use serde_json::Value;

/// The one `null` every [`K8sNull`] hands out as its `Any` view, so that `downcast_ref::<CelNull>`
/// (which the crate's own `null` uses for equality: `null == x`) recognises it.
static NULL: CelNull = CelNull;

/// `null`, as the apiserver's CEL sees it.
///
/// The `cel` crate answers `has(x.f)` by asking `x` for an indexer and calling `get(f)`: a value
/// without an indexer (its own `null`) is an error, a `NoSuchKey` from the indexer is `false`. cel-go
/// answers `false` for every presence test on a value that is not a container. We cannot change the
/// crate, so this null *has* an indexer, one that finds no key: `has(x.f)` is `false`, `x.f` is the
/// error "no such key: f" (as in cel-go). Everything else behaves as the crate's `null`: its type is
/// `null_type`, `x == null` and `null == x` hold (the latter because [`Val::as_any`] hands out the
/// crate's `CelNull`, which is what `null`'s equality looks for), it converts to `Value::Null`.
#[derive(Debug, Clone, Copy, Default)]
pub struct K8sNull;

impl Val for K8sNull {
    fn get_type(&self) -> &Type {
        &NULL_TYPE
    }

    fn cel_type() -> &'static Type {
        &NULL_TYPE
    }

    fn equals(&self, other: &dyn Val) -> bool {
        other.get_type() == &NULL_TYPE
    }

    fn as_indexer<'b, 'v>(&'b self) -> Option<&'b (dyn Indexer + 'v)>
    where
        Self: 'v,
    {
        Some(self)
    }

    fn as_zeroer(&self) -> Option<&dyn Zeroer> {
        Some(self)
    }

    fn clone_as_boxed<'v>(&self) -> Box<dyn Val + 'v>
    where
        Self: 'v,
    {
        Box::new(K8sNull)
    }

    fn as_any(&self) -> Option<&dyn Any> {
        Some(&NULL)
    }
}

impl Indexer for K8sNull {
    fn get<'b, 'v>(&'b self, idx: &dyn Val) -> Result<CowVal<'b, 'v>, ExecutionError>
    where
        Self: 'v,
    {
        Err(ExecutionError::no_such_key(&key_text(idx)))
    }

    fn steal<'v>(self: Box<Self>, idx: &dyn Val) -> Result<Box<dyn Val + 'v>, ExecutionError>
    where
        Self: 'v,
    {
        Err(ExecutionError::no_such_key(&key_text(idx)))
    }
}

impl Zeroer for K8sNull {
    fn is_zero_value(&self) -> bool {
        true
    }
}

fn key_text(idx: &dyn Val) -> String {
    match idx.downcast_ref::<CelString>() {
        Some(s) => s.inner().to_owned(),
        None => cel::Value::try_from(idx)
            .map(|v| format!("{v:?}"))
            .unwrap_or_default(),
    }
}

/// `json` as a CEL value that borrows its strings from `json`. Objects and arrays are converted
/// lazily: a [`LazyMap`] or [`LazyList`] builds the crate's own map or list (one level, with lazy
/// children) the first time an expression looks into it, so the parts of an object no expression
/// reads (`managedFields`, `status`, most of `spec`) are never converted.
pub fn from_json<'j>(json: &'j Value) -> Box<dyn Val + 'j> {
    convert(json, false)
}

/// [`from_json`], but fields whose value is `null` stay (as `null`) instead of reading as
/// absent: how Kyverno's CEL sees an unstructured object (`object.rules == null` holds for
/// `rules: null`), where the apiserver's typed objects drop them.
pub fn from_json_keeping_nulls<'j>(json: &'j Value) -> Box<dyn Val + 'j> {
    convert(json, true)
}

fn convert<'j>(json: &'j Value, keep_nulls: bool) -> Box<dyn Val + 'j> {
    match json {
        Value::Null => Box::new(K8sNull),
        Value::Bool(b) => Box::new(CelBool::from(*b)),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Box::new(CelInt::from(i))
            } else {
                Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN)))
            }
        }
        Value::String(s) => Box::new(CelString::from(s.as_str())),
        Value::Array(items) => Box::new(Lazy::<CelList<'j>>::keeping(
            LazySource::List(items),
            keep_nulls,
        )),
        Value::Object(fields) => Box::new(Lazy::<CelMap<'j>>::keeping(
            LazySource::Map(fields),
            keep_nulls,
        )),
    }
}

/// What a lazy value is built from.
#[derive(Debug, Clone, Copy)]
pub enum LazySource<'j> {
    Map(&'j serde_json::Map<String, Value>),
    List(&'j [Value]),
}

/// A JSON object or array as the crate's own map or list, built when first needed and shared by
/// every copy (the interpreter copies values freely: a comprehension binds a copy of each element).
/// To the interpreter it is that map or list in every respect: it hands it out as its built-in
/// view, so equality and functions taking maps or lists see one. Reading a field of an object by
/// name (`object.spec`, `has(c.securityContext)`) does not build the map: the field alone is
/// converted, once, and the fields nothing reads never are.
#[derive(Debug, Clone)]
pub struct Lazy<'j, T> {
    source: LazySource<'j>,
    cells: Arc<Cells<'j, T>>,
    /// Null fields stay (see [`from_json_keeping_nulls`]).
    keep_nulls: bool,
}

/// What the copies of one [`Lazy`] share.
#[derive(Debug)]
struct Cells<'j, T> {
    built: OnceLock<T>,
    /// An object's fields that are not null, sorted by [`by_length_then_text`], each converted
    /// when first read.
    fields: OnceLock<Box<[Field<'j>]>>,
}

#[derive(Debug)]
struct Field<'j> {
    name: &'j str,
    json: &'j Value,
    value: OnceLock<Box<dyn Val + 'j>>,
}

/// A lazily converted JSON object.
pub type LazyMap<'j> = Lazy<'j, CelMap<'j>>;
/// A lazily converted JSON array.
pub type LazyList<'j> = Lazy<'j, CelList<'j>>;

impl<'j, T> Lazy<'j, T> {
    #[cfg(test)]
    fn new(source: LazySource<'j>) -> Self {
        Self::keeping(source, false)
    }

    fn keeping(source: LazySource<'j>, keep_nulls: bool) -> Self {
        Lazy {
            source,
            keep_nulls,
            cells: Arc::new(Cells {
                built: OnceLock::new(),
                fields: OnceLock::new(),
            }),
        }
    }

    /// The field `idx` names, when this is an object and `idx` a string: what the built map
    /// would give (null fields are absent), without building it. `None` otherwise.
    fn field<'b>(&'b self, idx: &dyn Val) -> Option<Result<&'b (dyn Val + 'j), ExecutionError>> {
        let LazySource::Map(object) = self.source else {
            return None;
        };
        let name = idx.downcast_ref::<CelString>()?.inner();
        let fields = self.cells.fields.get_or_init(|| {
            let mut fields: Vec<Field<'j>> = object
                .iter()
                .filter(|(_, json)| self.keep_nulls || !json.is_null())
                .map(|(name, json)| Field {
                    name: name.as_str(),
                    json,
                    value: OnceLock::new(),
                })
                .collect();
            fields.sort_unstable_by(|a, b| by_length_then_text(a.name, b.name));
            fields.into_boxed_slice()
        });
        Some(
            match fields.binary_search_by(|field| by_length_then_text(field.name, name)) {
                Ok(at) => {
                    let field = &fields[at];
                    let keep_nulls = self.keep_nulls;
                    Ok(field
                        .value
                        .get_or_init(|| convert(field.json, keep_nulls))
                        .as_ref())
                }
                Err(_) => Err(ExecutionError::no_such_key(name)),
            },
        )
    }
}

/// The order fields are searched in: most names differ in length, which is cheaper to compare.
fn by_length_then_text(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Building the built-in value of a [`Lazy`].
pub trait Build<'j>: Sized {
    fn build(source: LazySource<'j>, keep_nulls: bool) -> Self;
    fn cel_type() -> &'static Type;
    fn view<'b>(&'b self) -> BuiltinRef<'b, 'j>;
    fn into_builtin(self) -> Builtin<'j>;
}

impl<'j> Build<'j> for CelMap<'j> {
    fn build(source: LazySource<'j>, keep_nulls: bool) -> Self {
        let LazySource::Map(fields) = source else {
            return CelMap::default();
        };
        let mut map: HashMap<CelMapKey<'j>, Box<dyn Val + 'j>> =
            HashMap::with_capacity(fields.len());
        for (key, value) in fields {
            if keep_nulls || !value.is_null() {
                map.insert(CelMapKey::from(key.as_str()), convert(value, keep_nulls));
            }
        }
        CelMap::from(map)
    }

    fn cel_type() -> &'static Type {
        &cel::common::types::MAP_TYPE
    }

    fn view<'b>(&'b self) -> BuiltinRef<'b, 'j> {
        BuiltinRef::Map(self)
    }

    fn into_builtin(self) -> Builtin<'j> {
        Builtin::Map(self)
    }
}

impl<'j> Build<'j> for CelList<'j> {
    fn build(source: LazySource<'j>, keep_nulls: bool) -> Self {
        let LazySource::List(items) = source else {
            return CelList::default();
        };
        CelList::from(
            items
                .iter()
                .map(|item| convert(item, keep_nulls))
                .collect::<Vec<_>>(),
        )
    }

    fn cel_type() -> &'static Type {
        &cel::common::types::LIST_TYPE
    }

    fn view<'b>(&'b self) -> BuiltinRef<'b, 'j> {
        BuiltinRef::List(self)
    }

    fn into_builtin(self) -> Builtin<'j> {
        Builtin::List(self)
    }
}

impl<'j, T> Lazy<'j, T>
where
    T: Build<'j> + Val + Clone + 'j,
{
    fn built(&self) -> &T {
        self.cells
            .built
            .get_or_init(|| T::build(self.source, self.keep_nulls))
    }
}

impl<'j, T> Val for Lazy<'j, T>
where
    T: Build<'j> + Val + Clone + std::fmt::Debug + Send + Sync + 'j,
{
    fn get_type(&self) -> &Type {
        <T as Build>::cel_type()
    }

    fn cel_type() -> &'static Type {
        <T as Build>::cel_type()
    }

    fn as_adder<'b, 'v>(&'b self) -> Option<&'b (dyn cel::common::traits::Adder + 'v)>
    where
        Self: 'v,
    {
        self.built().as_adder()
    }

    fn as_container(&self) -> Option<&dyn Container> {
        self.built().as_container()
    }

    fn as_indexer<'b, 'v>(&'b self) -> Option<&'b (dyn Indexer + 'v)>
    where
        Self: 'v,
    {
        Some(self)
    }

    fn into_indexer<'v>(self: Box<Self>) -> Option<Box<dyn Indexer + 'v>>
    where
        Self: 'v,
    {
        Some(self)
    }

    fn as_iterable<'b, 'v>(&'b self) -> Option<&'b (dyn Iterable + 'v)>
    where
        Self: 'v,
    {
        self.built().as_iterable()
    }

    fn as_sizer(&self) -> Option<&dyn Sizer> {
        self.built().as_sizer()
    }

    fn as_zeroer(&self) -> Option<&dyn Zeroer> {
        self.built().as_zeroer()
    }

    fn equals(&self, other: &dyn Val) -> bool {
        self.built().equals(other)
    }

    fn clone_as_boxed<'v>(&self) -> Box<dyn Val + 'v>
    where
        Self: 'v,
    {
        Box::new(self.clone())
    }

    fn as_builtin<'b, 'v>(&'b self) -> BuiltinRef<'b, 'v>
    where
        Self: 'v,
    {
        self.built().view()
    }

    fn into_builtin<'v>(self: Box<Self>) -> Option<Builtin<'v>>
    where
        Self: 'v,
    {
        Some(self.built().clone().into_builtin())
    }
}

/// Indexing as the built map or list indexes, but a field of an object read by name is converted
/// alone (see [`Lazy::field`]).
impl<'j, T> Indexer for Lazy<'j, T>
where
    T: Build<'j> + Val + Clone + std::fmt::Debug + Send + Sync + 'j,
{
    fn get<'b, 'v>(&'b self, idx: &dyn Val) -> Result<CowVal<'b, 'v>, ExecutionError>
    where
        Self: 'v,
    {
        if let Some(field) = self.field(idx) {
            return field.map(CowVal::Borrowed);
        }
        match self.built().as_indexer() {
            Some(indexer) => indexer.get(idx),
            None => Err(ExecutionError::no_such_key(&key_text(idx))),
        }
    }

    fn steal<'v>(self: Box<Self>, idx: &dyn Val) -> Result<Box<dyn Val + 'v>, ExecutionError>
    where
        Self: 'v,
    {
        if let Some(field) = self.field(idx) {
            return field.map(|value| value.clone_as_boxed());
        }
        match Box::new(self.built().clone()).into_indexer() {
            Some(indexer) => indexer.steal(idx),
            None => Err(ExecutionError::no_such_key(&key_text(idx))),
        }
    }
}

/// What a variable resolver hands out for `name`: the variable `lookup` gives for the whole name,
/// else, for a path below a variable (`object.spec.containers`), the field it names, read from
/// map to map as `a.b` reads it. The interpreter asks a resolver for the longest prefix of a
/// dotted name first. Answering it here skips the question the `cel` crate asks on every `.field`
/// (whether the value is an optional), which makes a [`Lazy`] build its whole map: so
/// `object.spec.template.spec` converts four fields and builds no map. `None` where a segment is
/// not a field of a map, or a read would make a new value: the interpreter then reads the path
/// itself and words any error as it always does.
pub fn resolve_path<'b>(
    name: &str,
    lookup: impl Fn(&str) -> Option<&'b (dyn Val + 'b)>,
) -> Option<CowVal<'b, 'b>> {
    if let Some(value) = lookup(name) {
        return Some(CowVal::Borrowed(value));
    }
    let (root, path) = name.split_once('.')?;
    let mut value = lookup(root)?;
    for segment in path.split('.') {
        if value.get_type().kind() != Kind::Map {
            return None;
        }
        match value.as_indexer()?.get(&CelString::from(segment)) {
            Ok(CowVal::Borrowed(field)) => value = field,
            _ => return None,
        }
    }
    Some(CowVal::Borrowed(value))
}

/// An optional JSON object as a CEL value: `None` is [`K8sNull`].
pub fn from_optional_json(json: Option<&Value>) -> Box<dyn Val + '_> {
    match json {
        Some(json) => from_json(json),
        None => Box::new(K8sNull),
    }
}

/// [`from_optional_json`], keeping null fields when `keep_nulls` (see
/// [`from_json_keeping_nulls`]).
pub fn from_optional_json_with(json: Option<&Value>, keep_nulls: bool) -> Box<dyn Val + '_> {
    match json {
        Some(json) => convert(json, keep_nulls),
        None => Box::new(K8sNull),
    }
}

/// A deep copy of `val` that borrows nothing, for a value that must outlive what it was computed
/// from ([`super::evaluate`]). Composited variables are not copied so (see
/// [`super::evaluate_value`]); the tests of `vap` compare the two.
pub fn to_static(val: &dyn Val) -> Result<Box<dyn Val + 'static>, ExecutionError> {
    if let Some(s) = val.downcast_ref::<CelString>() {
        return Ok(Box::new(CelString::from(s.inner().to_owned())));
    }
    if let Some(list) = val.downcast_ref::<CelList>() {
        let items = list
            .inner()
            .iter()
            .map(|item| to_static(item.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Box::new(CelList::from(items)));
    }
    if let Some(map) = val.downcast_ref::<CelMap>() {
        let mut copy = HashMap::with_capacity(map.inner().len());
        for (key, value) in map.inner() {
            copy.insert(key.clone().into_static(), to_static(value.as_ref())?);
        }
        return Ok(Box::new(CelMap::from(copy)));
    }
    if val.get_type() == &NULL_TYPE {
        return Ok(Box::new(K8sNull));
    }
    let value = cel::Value::try_from(val)?;
    Box::<dyn Val>::try_from(value)
}

/// A CEL value back as JSON, for messages and tests. Values with no JSON form (types, optionals,
/// durations) are written as their debug text.
pub fn to_json(val: &dyn Val) -> Value {
    match cel::Value::try_from(val) {
        Ok(value) => value_to_json(&value),
        Err(_) => Value::String(format!("{val:?}")),
    }
}

fn value_to_json(value: &cel::Value) -> Value {
    match value {
        cel::Value::Null => Value::Null,
        cel::Value::Bool(b) => Value::Bool(*b),
        cel::Value::Int(i) => Value::from(*i),
        cel::Value::UInt(u) => Value::from(*u),
        cel::Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        cel::Value::String(s) => Value::String(s.to_string()),
        cel::Value::List(items) => Value::Array(items.iter().map(value_to_json).collect()),
        cel::Value::Map(map) => {
            let mut object = serde_json::Map::new();
            for (key, value) in map.map.iter() {
                object.insert(key_to_string(key), value_to_json(value));
            }
            Value::Object(object)
        }
        other => Value::String(format!("{other:?}")),
    }
}

fn key_to_string(key: &cel::objects::Key) -> String {
    match key {
        cel::objects::Key::String(s) => s.to_string(),
        cel::objects::Key::Int(i) => i.to_string(),
        cel::objects::Key::Uint(u) => u.to_string(),
        cel::objects::Key::Bool(b) => b.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_keep_the_integer_double_split() {
        let whole = json!(3);
        let fraction = json!(0.5);
        let huge = json!(u64::MAX);
        assert_eq!(from_json(&whole).get_type().name(), "int");
        assert_eq!(from_json(&fraction).get_type().name(), "double");
        assert_eq!(from_json(&huge).get_type().name(), "double");
    }

    #[test]
    fn round_trip_to_json() {
        let object = json!({"a": [1, "x", null, true, 1.5], "b": {"c": "d"}});
        assert_eq!(to_json(from_json(&object).as_ref()), object);
    }

    #[test]
    fn list_elements_are_shared_maps_that_behave_as_maps() {
        let object = json!({"items": [{"a": 1}, {"a": 2}]});
        let value = from_json(&object);
        let items = value
            .as_indexer()
            .unwrap()
            .get(&CelString::from("items"))
            .unwrap();
        let list = items.downcast_ref::<CelList>().unwrap();
        let first = list.inner()[0].as_ref();
        assert!(first.downcast_ref::<CelMap>().is_some(), "seen as a map");
        let literal = from_json(&object["items"][0]);
        assert!(literal.equals(first) && first.equals(literal.as_ref()));
        assert_eq!(to_json(first), json!({"a": 1}));
        assert_eq!(
            to_static(first).map(|v| to_json(v.as_ref())).ok(),
            Some(json!({"a": 1}))
        );
    }

    #[test]
    fn fields_read_by_name_are_converted_alone_and_as_the_built_map_gives_them() {
        let object = json!({"spec": {"a": 1}, "b": null, "list": [1], "kind": "Pod", "z": {}});
        let lazy = Lazy::<CelMap>::new(LazySource::Map(object.as_object().unwrap()));
        let read = |key: &dyn Val| lazy.get(key).map(|v| to_json(v.as_ref()));
        for key in ["spec", "list", "kind", "z"] {
            assert_eq!(
                read(&CelString::from(key)),
                Ok(object[key].clone()),
                "{key}"
            );
        }
        assert!(lazy.cells.built.get().is_none(), "the map was built");
        let missing = [
            read(&CelString::from("b")),
            read(&CelString::from("nope")),
            read(&CelInt::from(1)),
            read(&CelBool::from(true)),
        ];
        // The map itself, built, answers the same.
        let built = lazy.built().clone();
        let expected = [
            built
                .get(&CelString::from("b"))
                .map(|v| to_json(v.as_ref())),
            built
                .get(&CelString::from("nope"))
                .map(|v| to_json(v.as_ref())),
            built.get(&CelInt::from(1)).map(|v| to_json(v.as_ref())),
            built.get(&CelBool::from(true)).map(|v| to_json(v.as_ref())),
        ];
        assert_eq!(missing, expected);
        assert!(missing.iter().all(Result::is_err));
        // A field read once is the same value when read again.
        let first = lazy.get(&CelString::from("spec")).unwrap();
        let again = lazy.get(&CelString::from("spec")).unwrap();
        assert!(std::ptr::addr_eq(
            first.as_ref() as *const dyn Val,
            again.as_ref() as *const dyn Val
        ));
        // Taking a field out of an owned object gives the same.
        let stolen = Box::new(lazy.clone())
            .into_indexer()
            .unwrap()
            .steal(&CelString::from("spec"))
            .unwrap();
        assert_eq!(to_json(stolen.as_ref()), json!({"a": 1}));
    }

    /// A resolver that knows only whole variables, as resolvers were before [`resolve_path`]: the
    /// interpreter reads every field of a path itself.
    struct RootsOnly<'a>(&'a (dyn Val + 'a));

    impl cel::context::VariableResolver for RootsOnly<'_> {
        fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
            (variable == "object").then_some(CowVal::Borrowed(self.0))
        }
    }

    #[test]
    fn paths_resolved_by_name_answer_as_the_interpreter_does_and_build_no_map() {
        use crate::cel::{compile, evaluate_with, Activation};
        let object = json!({"kind": "Deployment", "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"replicas": 2, "selector": null, "template": {"spec": {"containers": [
                {"name": "app", "securityContext": {"privileged": true}}, {"name": "side"}]}}}});
        let null = K8sNull;
        let activation =
            |object: &'static (dyn Val + 'static)| Activation::of_object(object, &null);
        for source in [
            "object.kind",
            "object.spec.template.spec.containers[0].name",
            "object.spec.template.spec.containers.map(c, c.name)",
            "object.metadata.labels.app + object.metadata.name",
            "object.spec.replicas + 1",
            "has(object.spec.template) && !has(object.spec.selector)",
            "object.spec.missing",
            "object.kind.deeper",
            "object.spec.replicas.deeper",
            "object.spec.?missing.orValue(7)",
            "object.metadata.name.startsWith('w')",
            "object.spec.template.spec.containers.filter(c, has(c.securityContext) && c.securityContext.privileged).size()",
        ] {
            let program = compile(source).unwrap();
            let lazy: &'static LazyMap<'static> = Box::leak(Box::new(Lazy::new(LazySource::Map(
                Box::leak(Box::new(object.clone())).as_object().unwrap(),
            ))));
            let by_path = evaluate_with(&program, &activation(lazy), to_json);
            let interpreted = evaluate_with(&program, &RootsOnly(lazy), to_json);
            assert_eq!(
                by_path.as_ref().map_err(|e| &e.message),
                interpreted.as_ref().map_err(|e| &e.message),
                "{source}"
            );
            if source == "object.spec.template.spec.containers[0].name" {
                assert_eq!(by_path.unwrap(), json!("app"));
                let fresh: &'static LazyMap<'static> = Box::leak(Box::new(Lazy::new(
                    LazySource::Map(Box::leak(Box::new(object.clone())).as_object().unwrap()),
                )));
                evaluate_with(&program, &activation(fresh), |_| ()).unwrap();
                assert!(fresh.cells.built.get().is_none(), "the object's map was built");
            }
        }
    }

    #[test]
    fn null_fields_are_absent() {
        let object = json!({"a": null, "b": 1});
        assert_eq!(to_json(from_json(&object).as_ref()), json!({"b": 1}));
    }
}
