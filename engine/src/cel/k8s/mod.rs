//! The function libraries the Kubernetes apiserver adds to its CEL environment, for the `cel`
//! crate.
//!
//! [`register`] declares them all on an [`Env`]; [`environment`] builds the whole Kubernetes
//! environment (standard library, the crate's strings and lists extensions, and these).
//!
//! Each library lives in its own module:
//!
//! - [`lists`]: `isSorted`, `sum`, `min`, `max`, `indexOf`, `lastIndexOf`, `includes`;
//! - [`regex`]: `find`, `findAll` (patterns compiled once, kept in a small cache);
//! - [`sets`]: `sets.contains`, `sets.equivalent`, `sets.intersects`;
//! - [`url`]: `url`, `isURL` and the getters, parsing like Go's `net/url.ParseRequestURI`;
//! - [`net`]: `ip`, `isIP`, `ip.isCanonical`, `cidr`, `isCIDR` and their member functions;
//! - [`quantity`]: `quantity`, `isQuantity` and the arithmetic and comparisons;
//! - [`semver`]: `semver`, `isSemver` and the comparisons;
//! - [`format`]: `format.named`, `format.dns1123Label()` …, `<Format>.validate`;
//! - [`comprehensions`]: the two-variable comprehension macros (`all(k, v, p)`, `transformMap` …).
//!
//! The custom types (`net.IP`, `net.CIDR`, `kubernetes.URL`, `kubernetes.Quantity`,
//! `kubernetes.Semver`, `kubernetes.NamedFormat`) are [`Opaque`] values carried as
//! [`Value::Opaque`]: they keep their type name (so overloads dispatch on them and `type(x)` names
//! them), compare with `==` as they do in Kubernetes, and survive a round trip through [`Value`].

/// `isLessThan`, `isGreaterThan` and `compareTo` of an opaque type, from its
/// `ordering(&args, function)`: the receiver against the operand, the error naming `function`.
macro_rules! comparisons {
    ($ordering:ident) => {
        fn is_less_than<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
            ret(Value::Bool(
                $ordering(&args, "isLessThan")? == Ordering::Less,
            ))
        }

        fn is_greater_than<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
            ret(Value::Bool(
                $ordering(&args, "isGreaterThan")? == Ordering::Greater,
            ))
        }

        fn compare_to<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
            ret(Value::Int($ordering(&args, "compareTo")? as i64))
        }
    };
}

pub mod comprehensions;
pub mod format;
pub mod lists;
pub mod net;
pub mod quantity;
pub mod regex;
pub mod semver;
pub mod sets;
pub mod url;

use std::sync::Arc;

use ::cel::common::types::{CelString, Type};
use ::cel::common::value::{CowVal, Val};
use ::cel::objects::Opaque;
use ::cel::{extensions, DeclarationError, Env, ExecutionError, Value};

/// Declares every Kubernetes library on `env`: functions, overloads, types and macros.
///
/// `env` must already hold the standard library ([`Env::stdlib`]); the strings and lists
/// extensions of the crate are added by [`environment`], not here.
///
/// # Errors
///
/// Fails if one of the declarations clashes with one already made on `env`, e.g. when called
/// twice.
pub fn register(env: &mut Env) -> Result<(), DeclarationError> {
    lists::register(env)?;
    regex::register(env)?;
    sets::register(env)?;
    url::register(env)?;
    net::register(env)?;
    quantity::register(env)?;
    semver::register(env)?;
    format::register(env)?;
    comprehensions::register(env)?;
    Ok(())
}

/// The Kubernetes CEL environment (as of Kubernetes 1.37): the standard library with optional
/// types, the strings (v2 and later) and lists (v3) extensions of the crate, and every library
/// of [`register`].
///
/// # Errors
///
/// Only if the crate's own extensions clash with these libraries, which would be a bug.
pub fn environment() -> Result<Env, DeclarationError> {
    let mut env = Env::stdlib();
    env.add_extension(extensions::strings)?;
    env.add_extension(extensions::lists)?;
    register(&mut env)?;
    Ok(env)
}

/// The arguments of an overload, and what it returns.
pub(crate) type Args<'b, 'v> = Vec<CowVal<'b, 'v>>;
pub(crate) type Ret<'b, 'v> = Result<CowVal<'b, 'v>, ExecutionError>;

/// The type of an opaque value named `name`, for overload declarations.
pub(crate) fn opaque_type(name: &'static str) -> Type {
    Type::new_opaque_type(name)
}

/// The `i`th argument, or an error naming `function` if the call has fewer.
pub(crate) fn nth<'a, 'b, 'v>(
    args: &'a Args<'b, 'v>,
    i: usize,
    function: &str,
) -> Result<&'a (dyn Val + 'v), ExecutionError> {
    args.get(i)
        .map(|a| a.as_ref())
        .ok_or_else(|| ExecutionError::function_error(function, "missing argument"))
}

/// The `i`th argument as a string.
pub(crate) fn str_arg<'a>(
    args: &'a Args<'_, '_>,
    i: usize,
    function: &str,
) -> Result<&'a str, ExecutionError> {
    nth(args, i, function)?
        .downcast_ref::<CelString>()
        .map(|s| s.inner())
        .ok_or_else(|| no_overload(function, args))
}

/// The `i`th argument as an int.
pub(crate) fn int_arg(
    args: &Args<'_, '_>,
    i: usize,
    function: &str,
) -> Result<i64, ExecutionError> {
    match Value::try_from(nth(args, i, function)?)? {
        Value::Int(n) => Ok(n),
        _ => Err(no_overload(function, args)),
    }
}

/// The `i`th argument as a bool.
pub(crate) fn bool_arg(
    args: &Args<'_, '_>,
    i: usize,
    function: &str,
) -> Result<bool, ExecutionError> {
    match Value::try_from(nth(args, i, function)?)? {
        Value::Bool(b) => Ok(b),
        _ => Err(no_overload(function, args)),
    }
}

/// The `i`th argument as the opaque value `T`; `f` is called with it.
pub(crate) fn with_opaque<T: Opaque, R>(
    args: &Args<'_, '_>,
    i: usize,
    function: &str,
    f: impl FnOnce(&T) -> R,
) -> Result<R, ExecutionError> {
    let value = Value::try_from(nth(args, i, function)?)?;
    match &value {
        Value::Opaque(o) => o
            .downcast_ref::<T>()
            .map(f)
            .ok_or_else(|| no_overload(function, args)),
        _ => Err(no_overload(function, args)),
    }
}

/// cel-go's "no such overload" for a call with these arguments.
pub(crate) fn no_overload(function: &str, args: &Args<'_, '_>) -> ExecutionError {
    ExecutionError::no_such_overload(
        function,
        args.iter()
            .map(|a| a.get_type().name().to_owned())
            .collect(),
    )
}

/// A result built as a [`Value`].
pub(crate) fn ret<'b, 'v>(value: Value) -> Ret<'b, 'v> {
    let boxed: Box<dyn Val> = value.try_into()?;
    Ok(CowVal::Owned(boxed))
}

/// An opaque result.
pub(crate) fn ret_opaque<'b, 'v, T: Opaque>(value: T) -> Ret<'b, 'v> {
    ret(Value::Opaque(Arc::new(value)))
}

/// `optional.of(value)` or `optional.none()`.
pub(crate) fn ret_optional<'b, 'v>(value: Option<Value>) -> Ret<'b, 'v> {
    let optional = match value {
        Some(v) => ::cel::objects::OptionalValue::of(v),
        None => ::cel::objects::OptionalValue::none(),
    };
    ret(Value::Opaque(Arc::new(optional)))
}

/// A list of strings.
pub(crate) fn string_list(items: Vec<String>) -> Value {
    Value::List(Arc::new(items.into_iter().map(Value::from).collect()))
}

/// An evaluation error raised by `function`, with cel-go's message.
pub(crate) fn error(function: &str, message: impl ToString) -> ExecutionError {
    ExecutionError::function_error(function, message)
}

#[cfg(test)]
pub(crate) mod testing {
    //! Evaluating an expression in the Kubernetes environment, for the libraries' unit tests.

    use std::sync::{Arc, OnceLock};

    use ::cel::{Context, Env, ExecutionError, Value};

    fn env() -> Arc<Env> {
        static ENV: OnceLock<Arc<Env>> = OnceLock::new();
        ENV.get_or_init(|| Arc::new(super::environment().expect("the Kubernetes environment")))
            .clone()
    }

    /// The value of `expr`, or its evaluation error.
    pub fn eval(expr: &str) -> Result<Value, ExecutionError> {
        let env = env();
        let program = env
            .compile(expr)
            .unwrap_or_else(|e| panic!("{expr}: parse error {e}"));
        let context = Context::with_env(env);
        program.execute(&context)
    }

    /// Asserts that each expression evaluates to `true`.
    pub fn assert_true(exprs: &[&str]) {
        for expr in exprs {
            assert_eq!(eval(expr), Ok(Value::Bool(true)), "{expr}");
        }
    }

    /// Asserts that each expression is an evaluation error whose message contains the text.
    pub fn assert_error(cases: &[(&str, &str)]) {
        for (expr, text) in cases {
            match eval(expr) {
                Err(e) => assert!(e.to_string().contains(text), "{expr}: {e} lacks {text:?}"),
                Ok(v) => panic!("{expr}: expected an error, got {v:?}"),
            }
        }
    }

    /// Odd inputs give values or errors, never a panic.
    #[test]
    fn odd_inputs_do_not_panic() {
        let inputs = [
            "",
            "%",
            "%%",
            "%zz",
            "é",
            "/",
            "//",
            "[",
            "]:",
            "::",
            ":::",
            ".",
            "-",
            "+",
            "v",
            "1.",
            ".5",
            "1e",
            "1e999999999999",
            "1Ki1",
            "0.0000000000000000000000000000001",
            "99999999999999999999999999999999999999999999",
            "1.2.3-",
            "1.2.3+",
            "1.2.3-01",
            "http://[::1",
            "http://a:99999999999999999999/",
            "2020-01-0é00:00:00Z",
            "1.2.3.4/",
        ];
        let calls = [
            "quantity(@)",
            "isQuantity(@)",
            "url(@)",
            "isURL(@)",
            "ip(@)",
            "isIP(@)",
            "cidr(@)",
            "isCIDR(@)",
            "semver(@)",
            "semver(@, true)",
            "isSemver(@, true)",
            "@.find(@)",
            "@.findAll(@, -5)",
            "format.named('datetime').value().validate(@)",
            "format.qualifiedName().validate(@)",
            "format.uri().validate(@)",
            "ip.isCanonical(@)",
            "url(@).getQuery()",
            "cidr('10.0.0.0/8').containsIP(@)",
        ];
        for input in inputs {
            let literal = format!("'{input}'");
            for call in calls {
                let _ = eval(&call.replace('@', &literal));
            }
        }
        assert!(eval("quantity('1e999999999999')").is_err());
        assert!(eval("isQuantity('1e999999999999')") == Ok(Value::Bool(false)));
    }
}
