//! Type checking of an expression when a policy is read, as the apiserver checks one when the policy
//! is created: an identifier nothing declares (`params` without a `paramKind`, `authorizer` in a
//! message expression, a misspelt `objet`), a function that does not exist, an overload that does
//! not exist for the argument types (`1 + 'a'`, `size(1, 2)`, `'a'.startsWith(1)`), a list or map
//! literal mixing types, and a result of the wrong type (a validation must be a bool, a message a
//! string) are refused with cel-go's words and the place.
//!
//! Objects are schemaless (`dyn`), as they are to the apiserver's policy plugin, so most of a
//! policy's expressions involve `dyn`, which is accepted wherever any type is. The checker is
//! lenient where it is unsure: an overload is refused only when every argument's type is known and
//! none fits, and a result is refused only when its type is known and wrong.

use std::collections::HashMap;
use std::fmt;
use std::sync::LazyLock;

use cel::common::ast::{EntryExpr, Expr, IdedExpr, LiteralValue};

/// A CEL type as the checker knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ty {
    Dyn,
    Null,
    Bool,
    Int,
    Uint,
    Double,
    String,
    Bytes,
    Duration,
    Timestamp,
    Type,
    List(Box<Ty>),
    Map(Box<Ty>, Box<Ty>),
    Optional(Box<Ty>),
    /// An opaque Kubernetes type (`net.IP`, `kubernetes.Quantity` …).
    Opaque(&'static str),
    /// A type parameter of an overload (`A`, `B`, `K`, `V`).
    Param(u8),
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ty::Dyn => f.write_str("dyn"),
            Ty::Null => f.write_str("null_type"),
            Ty::Bool => f.write_str("bool"),
            Ty::Int => f.write_str("int"),
            Ty::Uint => f.write_str("uint"),
            Ty::Double => f.write_str("double"),
            Ty::String => f.write_str("string"),
            Ty::Bytes => f.write_str("bytes"),
            Ty::Duration => f.write_str("google.protobuf.Duration"),
            Ty::Timestamp => f.write_str("google.protobuf.Timestamp"),
            Ty::Type => f.write_str("type"),
            Ty::List(e) => write!(f, "list({e})"),
            Ty::Map(k, v) => write!(f, "map({k}, {v})"),
            Ty::Optional(t) => write!(f, "optional_type({t})"),
            Ty::Opaque(name) => f.write_str(name),
            Ty::Param(p) => write!(f, "{}", char::from(b'A' + p)),
        }
    }
}

impl Ty {
    fn is_known(&self) -> bool {
        !matches!(self, Ty::Dyn | Ty::Param(_))
    }

    /// The type with every parameter replaced by what `binds` holds (`dyn` when unbound).
    fn substitute(&self, binds: &[Option<Ty>; 4]) -> Ty {
        match self {
            Ty::Param(p) => binds[usize::from(*p)].clone().unwrap_or(Ty::Dyn),
            Ty::List(e) => Ty::List(Box::new(e.substitute(binds))),
            Ty::Map(k, v) => Ty::Map(Box::new(k.substitute(binds)), Box::new(v.substitute(binds))),
            Ty::Optional(t) => Ty::Optional(Box::new(t.substitute(binds))),
            other => other.clone(),
        }
    }
}

/// Whether `a` is as general as `b` or more (cel-go's `isEqualOrLessSpecific`): `dyn` and type
/// parameters are more general than anything, and containers compare by their parts.
fn less_specific(a: &Ty, b: &Ty) -> bool {
    match (a, b) {
        (Ty::Dyn | Ty::Param(_), _) => true,
        (_, Ty::Dyn | Ty::Param(_)) => false,
        (Ty::List(a), Ty::List(b)) | (Ty::Optional(a), Ty::Optional(b)) => less_specific(a, b),
        (Ty::Map(ak, av), Ty::Map(bk, bv)) => less_specific(ak, bk) && less_specific(av, bv),
        (a, b) => a == b,
    }
}

/// Does an argument of type `arg` fit a parameter of type `param`, binding type parameters?
/// `dyn` fits everything and everything fits `dyn`; `null` fits everything (it is lenient here).
fn unify(param: &Ty, arg: &Ty, binds: &mut [Option<Ty>; 4]) -> bool {
    match (param, arg) {
        (Ty::Dyn, _) | (_, Ty::Dyn) | (_, Ty::Null) | (_, Ty::Param(_)) => true,
        (Ty::Param(p), arg) => {
            let slot = usize::from(*p);
            match binds[slot].clone() {
                Some(bound) if bound.is_known() => {
                    let mut inner = [None, None, None, None];
                    unify(&bound, arg, &mut inner)
                }
                _ => {
                    binds[slot] = Some(arg.clone());
                    true
                }
            }
        }
        (Ty::List(p), Ty::List(a)) | (Ty::Optional(p), Ty::Optional(a)) => unify(p, a, binds),
        (Ty::Map(pk, pv), Ty::Map(ak, av)) => unify(pk, ak, binds) && unify(pv, av, binds),
        (p, a) => p == a,
    }
}

/// One overload: whether it is called on a receiver, its parameter types (the receiver first) and
/// its result.
struct Overload {
    member: bool,
    params: Vec<Ty>,
    result: Ty,
}

/// The functions of the apiserver's CEL environment (the standard library, optional types, the
/// strings, sets, lists and two-variable comprehension extensions, and the Kubernetes libraries),
/// one signature per line: `name(params) result` or `receiver.name(params) result`.
const SIGNATURES: &str = "
_+_(int, int) int
_+_(uint, uint) uint
_+_(double, double) double
_+_(string, string) string
_+_(bytes, bytes) bytes
_+_(list(A), list(A)) list(A)
_+_(duration, duration) duration
_+_(timestamp, duration) timestamp
_+_(duration, timestamp) timestamp
_-_(int, int) int
_-_(uint, uint) uint
_-_(double, double) double
_-_(timestamp, timestamp) duration
_-_(timestamp, duration) timestamp
_-_(duration, duration) duration
_*_(int, int) int
_*_(uint, uint) uint
_*_(double, double) double
_/_(int, int) int
_/_(uint, uint) uint
_/_(double, double) double
_%_(int, int) int
_%_(uint, uint) uint
-_(int) int
-_(double) double
!_(bool) bool
_&&_(bool, bool) bool
_||_(bool, bool) bool
@not_strictly_false(bool) bool
_?_:_(bool, A, A) A
_==_(A, A) bool
_!=_(A, A) bool
_<_(bool, bool) bool
_<_(int, int) bool
_<_(uint, uint) bool
_<_(double, double) bool
_<_(string, string) bool
_<_(bytes, bytes) bool
_<_(timestamp, timestamp) bool
_<_(duration, duration) bool
_<_(int, uint) bool
_<_(int, double) bool
_<_(uint, int) bool
_<_(uint, double) bool
_<_(double, int) bool
_<_(double, uint) bool
_[_](list(A), int) A
_[_](map(K, V), K) V
_[?_](list(A), int) optional(A)
_[?_](map(K, V), K) optional(V)
_?._(map(K, V), string) optional(V)
_?._(optional(map(K, V)), string) optional(V)
_[?_](optional(list(A)), int) optional(A)
_[?_](optional(map(K, V)), K) optional(V)
_[_](optional(list(A)), int) optional(A)
_[_](optional(map(K, V)), K) optional(V)
@in(A, list(A)) bool
@in(K, map(K, V)) bool
size(string) int
size(bytes) int
size(list(A)) int
size(map(K, V)) int
string.size() int
bytes.size() int
list(A).size() int
map(K, V).size() int
type(A) type
dyn(A) dyn
int(int) int
int(uint) int
int(double) int
int(string) int
int(timestamp) int
uint(int) uint
uint(uint) uint
uint(double) uint
uint(string) uint
double(int) double
double(uint) double
double(double) double
double(string) double
string(int) string
string(uint) string
string(double) string
string(bool) string
string(string) string
string(bytes) string
string(timestamp) string
string(duration) string
string(net.IP) string
string(net.CIDR) string
bytes(string) bytes
bytes(bytes) bytes
bool(bool) bool
bool(string) bool
duration(string) duration
duration(duration) duration
timestamp(string) timestamp
timestamp(timestamp) timestamp
timestamp(int) timestamp
string.contains(string) bool
string.endsWith(string) bool
string.startsWith(string) bool
string.matches(string) bool
matches(string, string) bool
timestamp.getFullYear() int
timestamp.getFullYear(string) int
timestamp.getMonth() int
timestamp.getMonth(string) int
timestamp.getDayOfYear() int
timestamp.getDayOfYear(string) int
timestamp.getDayOfMonth() int
timestamp.getDayOfMonth(string) int
timestamp.getDate() int
timestamp.getDate(string) int
timestamp.getDayOfWeek() int
timestamp.getDayOfWeek(string) int
timestamp.getHours() int
timestamp.getHours(string) int
timestamp.getMinutes() int
timestamp.getMinutes(string) int
timestamp.getSeconds() int
timestamp.getSeconds(string) int
timestamp.getMilliseconds() int
timestamp.getMilliseconds(string) int
duration.getHours() int
duration.getMinutes() int
duration.getSeconds() int
duration.getMilliseconds() int
optional.of(A) optional(A)
optional.ofNonZeroValue(A) optional(A)
optional.none() optional(dyn)
optional(A).hasValue() bool
optional(A).value() A
optional(A).orValue(A) A
optional(A).or(optional(A)) optional(A)
string.charAt(int) string
string.indexOf(string) int
string.indexOf(string, int) int
string.lastIndexOf(string) int
string.lastIndexOf(string, int) int
string.lowerAscii() string
string.upperAscii() string
string.replace(string, string) string
string.replace(string, string, int) string
string.split(string) list(string)
string.split(string, int) list(string)
string.substring(int) string
string.substring(int, int) string
string.trim() string
string.reverse() string
string.format(list(dyn)) string
list(string).join() string
list(string).join(string) string
strings.quote(string) string
sets.contains(list(A), list(A)) bool
sets.equivalent(list(A), list(A)) bool
sets.intersects(list(A), list(A)) bool
list(A).slice(int, int) list(A)
list(dyn).flatten() list(dyn)
list(dyn).flatten(int) list(dyn)
lists.range(int) list(int)
list(A).distinct() list(A)
list(A).reverse() list(A)
list(A).sort() list(A)
list(A).first() optional(A)
list(A).last() optional(A)
list(A).isSorted() bool
list(A).sum() A
list(A).min() A
list(A).max() A
list(A).indexOf(A) int
list(A).lastIndexOf(A) int
list(A).includes(A) bool
string.find(string) string
string.findAll(string) list(string)
string.findAll(string, int) list(string)
url(string) kubernetes.URL
isURL(string) bool
kubernetes.URL.getScheme() string
kubernetes.URL.getHost() string
kubernetes.URL.getHostname() string
kubernetes.URL.getPort() string
kubernetes.URL.getEscapedPath() string
kubernetes.URL.getQuery() map(string, list(string))
kubernetes.authorization.Authorizer.path(string) kubernetes.authorization.PathCheck
kubernetes.authorization.Authorizer.group(string) kubernetes.authorization.GroupCheck
kubernetes.authorization.Authorizer.serviceAccount(string, string) kubernetes.authorization.Authorizer
kubernetes.authorization.GroupCheck.resource(string) kubernetes.authorization.ResourceCheck
kubernetes.authorization.ResourceCheck.subresource(string) kubernetes.authorization.ResourceCheck
kubernetes.authorization.ResourceCheck.namespace(string) kubernetes.authorization.ResourceCheck
kubernetes.authorization.ResourceCheck.name(string) kubernetes.authorization.ResourceCheck
kubernetes.authorization.ResourceCheck.fieldSelector(string) kubernetes.authorization.ResourceCheck
kubernetes.authorization.ResourceCheck.labelSelector(string) kubernetes.authorization.ResourceCheck
kubernetes.authorization.ResourceCheck.check(string) kubernetes.authorization.Decision
kubernetes.authorization.PathCheck.check(string) kubernetes.authorization.Decision
kubernetes.authorization.Decision.allowed() bool
kubernetes.authorization.Decision.reason() string
kubernetes.authorization.Decision.errored() bool
kubernetes.authorization.Decision.error() string
quantity(string) kubernetes.Quantity
isQuantity(string) bool
kubernetes.Quantity.sign() int
kubernetes.Quantity.isInteger() bool
kubernetes.Quantity.asInteger() int
kubernetes.Quantity.asApproximateFloat() double
kubernetes.Quantity.add(kubernetes.Quantity) kubernetes.Quantity
kubernetes.Quantity.add(int) kubernetes.Quantity
kubernetes.Quantity.sub(kubernetes.Quantity) kubernetes.Quantity
kubernetes.Quantity.sub(int) kubernetes.Quantity
kubernetes.Quantity.isLessThan(kubernetes.Quantity) bool
kubernetes.Quantity.isGreaterThan(kubernetes.Quantity) bool
kubernetes.Quantity.compareTo(kubernetes.Quantity) int
ip(string) net.IP
isIP(string) bool
ip.isCanonical(string) bool
net.IP.family() int
net.IP.isUnspecified() bool
net.IP.isLoopback() bool
net.IP.isLinkLocalMulticast() bool
net.IP.isLinkLocalUnicast() bool
net.IP.isGlobalUnicast() bool
cidr(string) net.CIDR
isCIDR(string) bool
net.CIDR.containsIP(string) bool
net.CIDR.containsIP(net.IP) bool
net.CIDR.containsCIDR(string) bool
net.CIDR.containsCIDR(net.CIDR) bool
net.CIDR.ip() net.IP
net.CIDR.masked() net.CIDR
net.CIDR.prefixLength() int
format.named(string) optional(kubernetes.NamedFormat)
format.dns1123Label() kubernetes.NamedFormat
format.dns1123Subdomain() kubernetes.NamedFormat
format.dns1035Label() kubernetes.NamedFormat
format.qualifiedName() kubernetes.NamedFormat
format.dns1123LabelPrefix() kubernetes.NamedFormat
format.dns1123SubdomainPrefix() kubernetes.NamedFormat
format.dns1035LabelPrefix() kubernetes.NamedFormat
format.labelValue() kubernetes.NamedFormat
format.uri() kubernetes.NamedFormat
format.uuid() kubernetes.NamedFormat
format.byte() kubernetes.NamedFormat
format.date() kubernetes.NamedFormat
format.datetime() kubernetes.NamedFormat
kubernetes.NamedFormat.validate(string) optional(list(string))
semver(string) kubernetes.Semver
semver(string, bool) kubernetes.Semver
isSemver(string) bool
isSemver(string, bool) bool
kubernetes.Semver.major() int
kubernetes.Semver.minor() int
kubernetes.Semver.patch() int
kubernetes.Semver.isLessThan(kubernetes.Semver) bool
kubernetes.Semver.isGreaterThan(kubernetes.Semver) bool
kubernetes.Semver.compareTo(kubernetes.Semver) int
";

/// Operators that are the same overloads under another name.
const ALIASES: &[(&str, &str)] = &[("_<=_", "_<_"), ("_>_", "_<_"), ("_>=_", "_<_")];

/// The receiver types written in [`SIGNATURES`], longest first (they contain dots).
const RECEIVERS: &[&str] = &[
    "kubernetes.authorization.Authorizer",
    "kubernetes.authorization.GroupCheck",
    "kubernetes.authorization.ResourceCheck",
    "kubernetes.authorization.PathCheck",
    "kubernetes.authorization.Decision",
    "kubernetes.NamedFormat",
    "kubernetes.Quantity",
    "kubernetes.Semver",
    "kubernetes.URL",
    "net.CIDR",
    "net.IP",
];

const OPAQUE: &[&str] = RECEIVERS;

fn parse_type(text: &str) -> Ty {
    let text = text.trim();
    let inner = |prefix: &str| -> Option<&str> {
        text.strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(')'))
    };
    if let Some(element) = inner("list(") {
        return Ty::List(Box::new(parse_type(element)));
    }
    if let Some(value) = inner("optional(") {
        return Ty::Optional(Box::new(parse_type(value)));
    }
    if let Some(pair) = inner("map(") {
        let (key, value) = pair.split_once(',').unwrap_or((pair, "dyn"));
        return Ty::Map(Box::new(parse_type(key)), Box::new(parse_type(value)));
    }
    match text {
        "dyn" => Ty::Dyn,
        "bool" => Ty::Bool,
        "int" => Ty::Int,
        "uint" => Ty::Uint,
        "double" => Ty::Double,
        "string" => Ty::String,
        "bytes" => Ty::Bytes,
        "duration" => Ty::Duration,
        "timestamp" => Ty::Timestamp,
        "type" => Ty::Type,
        "A" => Ty::Param(0),
        "B" => Ty::Param(1),
        "K" => Ty::Param(2),
        "V" => Ty::Param(3),
        other => match OPAQUE.iter().find(|name| **name == other) {
            Some(name) => Ty::Opaque(name),
            None => Ty::Dyn,
        },
    }
}

/// Split `list(string)` into its top-level comma-separated parts.
fn split_params(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if !text[start..].trim().is_empty() {
        parts.push(&text[start..]);
    }
    parts
}

/// The position of the `(` that the final `)` of `text` closes.
fn matching_open(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in text.char_indices().rev() {
        match c {
            ')' => depth += 1,
            '(' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

static FUNCTIONS: LazyLock<HashMap<String, Vec<Overload>>> = LazyLock::new(|| {
    let mut functions: HashMap<String, Vec<Overload>> = HashMap::new();
    for line in SIGNATURES.lines().map(str::trim).filter(|l| !l.is_empty()) {
        // The call ends at the first `) ` (types inside it have no space after a parenthesis).
        let Some(end) = line.find(") ") else {
            continue;
        };
        let (call, result) = (&line[..=end], &line[end + 2..]);
        // The parameters are the last parenthesised group (a receiver may have its own).
        let Some(open) = matching_open(call) else {
            continue;
        };
        let (head, params) = (&call[..open], &call[open + 1..call.len() - 1]);
        let mut types: Vec<Ty> = split_params(params).into_iter().map(parse_type).collect();
        // A receiver is a type written before the name: a known dotted type, a generic one, or a
        // plain one followed by `.`.
        let receiver = RECEIVERS
            .iter()
            .find(|r| head.starts_with(&format!("{r}.")))
            .map(|r| (r.to_string(), &head[r.len() + 1..]))
            .or_else(|| {
                let (before, name) = head.rsplit_once(").")?;
                Some((format!("{before})"), name))
            })
            .or_else(|| {
                let (receiver, name) = head.split_once('.')?;
                let typed = ["string", "bytes", "timestamp", "duration"].contains(&receiver);
                typed.then(|| (receiver.to_owned(), name))
            });
        let (member, name) = match receiver {
            Some((receiver, name)) => {
                types.insert(0, parse_type(&receiver));
                (true, name.to_owned())
            }
            None => (false, head.to_owned()),
        };
        functions.entry(name).or_default().push(Overload {
            member,
            params: types,
            result: parse_type(result),
        });
    }
    functions
});

fn overloads(name: &str) -> Option<&'static [Overload]> {
    let name = ALIASES
        .iter()
        .find(|(alias, _)| *alias == name)
        .map_or(name, |(_, same)| same);
    FUNCTIONS.get(name).map(Vec::as_slice)
}

/// Namespaces of functions called as `namespace.name(…)`.
const NAMESPACES: &[&str] = &["optional", "strings", "sets", "lists", "ip", "format"];

/// Type names usable as values (`type(x) == int`).
const TYPE_NAMES: &[&str] = &[
    "int",
    "uint",
    "double",
    "bool",
    "string",
    "bytes",
    "list",
    "map",
    "null_type",
    "type",
];

/// What an expression may refer to.
#[derive(Debug, Clone, Default)]
pub struct Declarations {
    /// Variables and their types (`object`, `params`, `authorizer` …).
    pub variables: Vec<(String, Ty)>,
    /// The composited variables declared so far and their types, if `variables` is declared.
    pub composited: Option<Vec<(String, Ty)>>,
}

impl Declarations {
    /// What the apiserver declares for a ValidatingAdmissionPolicy's expressions: the objects,
    /// `params` only with a `paramKind`, and `authorizer` where the phase has it.
    pub fn admission(params: bool, authorizer: bool) -> Declarations {
        let mut variables = vec![
            ("object".to_owned(), Ty::Dyn),
            ("oldObject".to_owned(), Ty::Dyn),
            ("request".to_owned(), Ty::Dyn),
            ("namespaceObject".to_owned(), Ty::Dyn),
        ];
        if params {
            variables.push(("params".to_owned(), Ty::Dyn));
        }
        if authorizer {
            variables.push((
                "authorizer".to_owned(),
                Ty::Opaque("kubernetes.authorization.Authorizer"),
            ));
        }
        Declarations {
            variables,
            composited: None,
        }
    }
}

/// A type error: cel-go's message and the expression node it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeError {
    pub message: String,
    pub id: u64,
}

/// The type of `expr`, or the first type error in it.
pub fn type_of(expr: &IdedExpr, declarations: &Declarations) -> Result<Ty, TypeError> {
    let mut checker = Checker {
        declarations,
        scopes: Vec::new(),
    };
    checker.check(expr)
}

struct Checker<'d> {
    declarations: &'d Declarations,
    scopes: Vec<(String, Ty)>,
}

fn error(id: u64, message: String) -> TypeError {
    TypeError { message, id }
}

fn undeclared(id: u64, name: &str) -> TypeError {
    error(
        id,
        format!("undeclared reference to '{name}' (in container '')"),
    )
}

impl Checker<'_> {
    fn lookup(&self, name: &str) -> Option<Ty> {
        if let Some((_, ty)) = self.scopes.iter().rev().find(|(n, _)| n == name) {
            return Some(ty.clone());
        }
        if name == "variables" {
            return self.declarations.composited.as_ref().map(|_| Ty::Dyn);
        }
        self.declarations
            .variables
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, ty)| ty.clone())
    }

    fn check(&mut self, expr: &IdedExpr) -> Result<Ty, TypeError> {
        match &expr.expr {
            Expr::Unspecified => Ok(Ty::Dyn),
            Expr::Literal(literal) => Ok(match literal {
                LiteralValue::Boolean(_) => Ty::Bool,
                LiteralValue::Bytes(_) => Ty::Bytes,
                LiteralValue::Double(_) => Ty::Double,
                LiteralValue::Int(_) => Ty::Int,
                LiteralValue::Null => Ty::Null,
                LiteralValue::String(_) => Ty::String,
                LiteralValue::UInt(_) => Ty::Uint,
            }),
            Expr::Ident(name) => self.ident(expr.id, name),
            Expr::Select(select) => {
                if let Expr::Ident(root) = &select.operand.expr {
                    if root == "variables" && self.lookup("variables").is_some() {
                        let composited = self.declarations.composited.as_deref().unwrap_or(&[]);
                        let ty = composited
                            .iter()
                            .find(|(n, _)| *n == select.field)
                            .map_or(Ty::Dyn, |(_, ty)| ty.clone());
                        return Ok(if select.test { Ty::Bool } else { ty });
                    }
                    if root == "authorizer"
                        && select.field == "requestResource"
                        && self.lookup("authorizer").is_some()
                    {
                        return Ok(Ty::Opaque("kubernetes.authorization.ResourceCheck"));
                    }
                }
                let operand = self.check(&select.operand)?;
                if select.test {
                    return Ok(Ty::Bool);
                }
                Ok(match operand {
                    Ty::Map(_, value) => *value,
                    Ty::Null
                    | Ty::Bool
                    | Ty::Int
                    | Ty::Uint
                    | Ty::Double
                    | Ty::String
                    | Ty::Bytes
                    | Ty::List(_) => {
                        return Err(error(
                            expr.id,
                            format!("type '{operand}' does not support field selection"),
                        ))
                    }
                    _ => Ty::Dyn,
                })
            }
            Expr::List(list) => {
                let mut first: Option<Ty> = None;
                for (index, element) in list.elements.iter().enumerate() {
                    let mut ty = self.check(element)?;
                    if list.optional_indices.contains(&index) {
                        if let Ty::Optional(inner) = ty {
                            ty = *inner;
                        }
                    }
                    first = Some(self.homogeneous(first, ty, element.id)?);
                }
                Ok(Ty::List(Box::new(first.unwrap_or(Ty::Dyn))))
            }
            Expr::Map(map) => {
                let (mut keys, mut values) = (None, None);
                for entry in &map.entries {
                    if let EntryExpr::MapEntry(entry) = &entry.expr {
                        let key = self.check(&entry.key)?;
                        keys = Some(self.homogeneous(keys, key, entry.key.id)?);
                        let mut value = self.check(&entry.value)?;
                        if entry.optional {
                            if let Ty::Optional(inner) = value {
                                value = *inner;
                            }
                        }
                        values = Some(self.homogeneous(values, value, entry.value.id)?);
                    }
                }
                Ok(Ty::Map(
                    Box::new(keys.unwrap_or(Ty::Dyn)),
                    Box::new(values.unwrap_or(Ty::Dyn)),
                ))
            }
            Expr::Struct(s) => {
                for entry in &s.entries {
                    if let EntryExpr::StructField(field) = &entry.expr {
                        self.check(&field.value)?;
                    }
                }
                Ok(Ty::Dyn)
            }
            Expr::Comprehension(c) => {
                let range = self.check(&c.iter_range)?;
                let (first, second) = match (&range, c.iter_var2.is_some()) {
                    (Ty::List(element), false) => ((**element).clone(), Ty::Dyn),
                    (Ty::List(element), true) => (Ty::Int, (**element).clone()),
                    (Ty::Map(key, value), _) => ((**key).clone(), (**value).clone()),
                    _ => (Ty::Dyn, Ty::Dyn),
                };
                let accu = self.check(&c.accu_init)?;
                let depth = self.scopes.len();
                self.scopes.push((c.iter_var.clone(), first));
                if let Some(second_var) = &c.iter_var2 {
                    self.scopes.push((second_var.clone(), second));
                }
                // An empty list or map starts the accumulator: what the step adds decides.
                let open =
                    matches!(&accu, Ty::List(e) if **e == Ty::Dyn) || matches!(&accu, Ty::Map(..));
                self.scopes.push((c.accu_var.clone(), accu.clone()));
                let outcome = (|| {
                    self.check(&c.loop_cond)?;
                    let step = self.check(&c.loop_step)?;
                    if open {
                        if let Some(slot) = self.scopes.last_mut() {
                            slot.1 = step;
                        }
                    }
                    self.check(&c.result)
                })();
                self.scopes.truncate(depth);
                outcome
            }
            Expr::Call(call) => {
                // `namespace.name(…)`: a function of that qualified name, not a member call.
                if let Some(target) = &call.target {
                    if let Expr::Ident(namespace) = &target.expr {
                        if NAMESPACES.contains(&namespace.as_str())
                            && self.lookup(namespace).is_none()
                        {
                            let qualified = format!("{namespace}.{}", call.func_name);
                            let args = self.args(&call.args)?;
                            return self.resolve(expr.id, &qualified, false, args);
                        }
                    }
                }
                let name = call.func_name.as_str();
                if name.starts_with('@') && overloads(name).is_none()
                    || name.starts_with("palisade_")
                {
                    // The engine's own helpers (charges, cached regexes, comprehension pairs)
                    // stand in for what the user wrote: the value of their last argument.
                    let mut ty = Ty::Dyn;
                    if let Some(target) = &call.target {
                        self.check(target)?;
                    }
                    for arg in &call.args {
                        ty = self.check(arg)?;
                    }
                    return Ok(match name {
                        super::CACHED_MATCHES | super::PRESENCE => Ty::Bool,
                        super::cost::CHARGE => ty,
                        _ => Ty::Dyn,
                    });
                }
                let mut args = Vec::new();
                if let Some(target) = &call.target {
                    args.push(self.check(target)?);
                }
                args.extend(self.args(&call.args)?);
                self.resolve(expr.id, name, call.target.is_some(), args)
            }
        }
    }

    fn args(&mut self, args: &[IdedExpr]) -> Result<Vec<Ty>, TypeError> {
        args.iter().map(|arg| self.check(arg)).collect()
    }

    fn ident(&self, id: u64, name: &str) -> Result<Ty, TypeError> {
        if let Some(ty) = self.lookup(name) {
            return Ok(ty);
        }
        if name.starts_with('@') || name.starts_with('#') || name.starts_with("__") {
            return Ok(Ty::Dyn);
        }
        if TYPE_NAMES.contains(&name) {
            return Ok(Ty::Type);
        }
        Err(undeclared(id, name))
    }

    /// Literals must be of one type (`HomogeneousAggregateLiterals`): `dyn` goes with anything.
    fn homogeneous(&self, first: Option<Ty>, next: Ty, id: u64) -> Result<Ty, TypeError> {
        match first {
            None => Ok(next),
            Some(first) => {
                let mut binds = [None, None, None, None];
                if unify(&first, &next, &mut binds) && unify(&next, &first, &mut binds) {
                    // The more general of the two, as cel-go joins element types: `[x.name,
                    // ["a"]]` with a `dyn` name is a `list(dyn)`, not a list of lists.
                    Ok(if less_specific(&next, &first) {
                        next
                    } else {
                        first
                    })
                } else {
                    Err(error(
                        id,
                        format!("expected type '{first}' but found '{next}'"),
                    ))
                }
            }
        }
    }

    fn resolve(&self, id: u64, name: &str, member: bool, args: Vec<Ty>) -> Result<Ty, TypeError> {
        let Some(candidates) = overloads(name) else {
            return Err(undeclared(id, name));
        };
        let mut result: Option<Ty> = None;
        let mut any = false;
        for overload in candidates
            .iter()
            .filter(|o| o.member == member && o.params.len() == args.len())
        {
            let mut binds = [None, None, None, None];
            if overload
                .params
                .iter()
                .zip(&args)
                .all(|(param, arg)| unify(param, arg, &mut binds))
            {
                let ty = overload.result.substitute(&binds);
                result = Some(match result {
                    None => ty,
                    Some(same) if same == ty => same,
                    Some(_) => Ty::Dyn,
                });
                any = true;
            }
        }
        if any {
            return Ok(result.unwrap_or(Ty::Dyn));
        }
        let exists = candidates.iter().any(|o| o.member == member);
        if !exists {
            // Only the other call style exists (`x.size()` against `size(x)` is declared both
            // ways; others are not): cel-go calls it undeclared.
            return Err(undeclared(id, name));
        }
        // Arity mismatches and concrete argument types that fit no overload.
        let shown = |types: &[Ty]| {
            types
                .iter()
                .map(Ty::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let applied = if member {
            let (receiver, rest) = args
                .split_first()
                .map_or((Ty::Dyn, &[][..]), |(r, rest)| (r.clone(), rest));
            format!("{receiver}.({})", shown(rest))
        } else {
            format!("({})", shown(&args))
        };
        Err(error(
            id,
            format!("found no matching overload for '{name}' applied to '{applied}'"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(source: &str, declarations: &Declarations) -> Result<Ty, String> {
        let (expr, _) = super::super::ENV
            .parser()
            .parse_with_source_info(source)
            .map_err(|e| format!("{e:?}"))?;
        type_of(&expr, declarations).map_err(|e| e.message)
    }

    fn plain() -> Declarations {
        Declarations::admission(false, true)
    }

    #[test]
    fn every_signature_is_read() {
        let lines = SIGNATURES.lines().filter(|l| !l.trim().is_empty()).count();
        let read: usize = FUNCTIONS.values().map(Vec::len).sum();
        assert_eq!(read, lines);
        // No parameter or result fell back to `dyn` by a misspelt type name: only `dyn(A) dyn`
        // says `dyn` at the top.
        let misspelt: Vec<_> = FUNCTIONS
            .iter()
            .flat_map(|(name, overloads)| overloads.iter().map(move |o| (name, o)))
            .filter(|(_, o)| o.params.iter().chain([&o.result]).any(|t| *t == Ty::Dyn))
            .map(|(name, _)| name.clone())
            .collect();
        let mut misspelt = misspelt;
        misspelt.sort();
        misspelt.dedup();
        assert_eq!(misspelt, ["dyn"]);
    }

    #[test]
    fn what_the_apiserver_refuses_is_refused() {
        for (source, message) in [
            (
                "params.x == 1",
                "undeclared reference to 'params' (in container '')",
            ),
            (
                "objet.metadata.name == 'a'",
                "undeclared reference to 'objet' (in container '')",
            ),
            (
                "undefinedFn(object) == 1",
                "undeclared reference to 'undefinedFn' (in container '')",
            ),
            (
                "1 + 'a' == 2",
                "found no matching overload for '_+_' applied to '(int, string)'",
            ),
            (
                "size(1, 2) == 1",
                "found no matching overload for 'size' applied to '(int, int)'",
            ),
            (
                "'abc'.startsWith(1)",
                "found no matching overload for 'startsWith' applied to 'string.(int)'",
            ),
            ("[1, 'a'].size() > 0", "expected type 'int' but found 'string'"),
            (
                "object.metadata.name.size().foo == 1",
                "type 'int' does not support field selection",
            ),
            (
                "quantity('1').isLessThan('2')",
                "found no matching overload for 'isLessThan' applied to 'kubernetes.Quantity.(string)'",
            ),
        ] {
            assert_eq!(check(source, &plain()), Err(message.to_owned()), "{source}");
        }
        let no_authorizer = Declarations::admission(true, false);
        assert_eq!(
            check(
                "authorizer.path('/x').check('get').allowed()",
                &no_authorizer
            ),
            Err("undeclared reference to 'authorizer' (in container '')".to_owned())
        );
    }

    #[test]
    fn what_users_write_is_accepted_with_its_type() {
        let with_params = Declarations::admission(true, true);
        for (source, ty) in [
            ("object.spec.replicas <= params.max", Ty::Bool),
            (
                "has(object.spec.x) && object.spec.x.all(c, c.name != '')",
                Ty::Bool,
            ),
            (
                "object.spec.containers.map(c, c.image)",
                Ty::List(Box::new(Ty::Dyn)),
            ),
            ("[1, 2, 3].map(x, x * 2)", Ty::List(Box::new(Ty::Int))),
            ("'x ' + object.metadata.name", Ty::String),
            ("lists.range(3).all(i, i >= 0)", Ty::Bool),
            ("quantity(object.a).isLessThan(quantity('1'))", Ty::Bool),
            ("1 < 2.0 && 2u > 1", Ty::Bool),
            ("object.?spec.?x.orValue(1) == 1", Ty::Bool),
            ("{'a': 1, 'b': object.x}.size()", Ty::Int),
            ("type(object) == map", Ty::Bool),
            (
                "format.dns1123Label().validate(object.metadata.name).hasValue()",
                Ty::Bool,
            ),
            (
                "ip.isCanonical('1.2.3.4') && cidr('10.0.0.0/8').containsIP(ip('10.1.2.3'))",
                Ty::Bool,
            ),
            (
                "authorizer.requestResource.check('create').allowed()",
                Ty::Bool,
            ),
            ("sets.contains([1], [1]) ? 'yes' : 'no'", Ty::String),
            (
                "object.spec.containers.exists_one(c, c.name == 'a')",
                Ty::Bool,
            ),
            (
                "[[1], [2]].size() == 2 && [1, object.x].size() == 2",
                Ty::Bool,
            ),
            ("'a,b'.split(',').join('-')", Ty::String),
            // A list of a `dyn` and a list is a list of `dyn` (Gatekeeper's capabilities template
            // builds `[container.name, [...]]` pairs).
            ("[object.x, ['a']][1].join(', ')", Ty::String),
            ("[object.x, ['a']]", Ty::List(Box::new(Ty::Dyn))),
            ("object.x.y[0]", Ty::Dyn),
        ] {
            assert_eq!(check(source, &with_params), Ok(ty), "{source}");
        }
    }
}
