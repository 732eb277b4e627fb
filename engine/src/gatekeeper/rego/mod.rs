//! The Rego layer: regorus set up as Gatekeeper's OPA sets itself up, and the checks Gatekeeper's
//! admission of a ConstraintTemplate makes before it accepts the Rego.
//!
//! - [`engine`] is the one place an engine is made, for templates and for the OPA conformance test:
//!   every builtin group OPA has, builtin errors read as undefined (OPA's non-strict mode, which
//!   Gatekeeper uses), and the builtins Palisade never runs answered with an error that says so.
//! - [`BUILTINS`] is OPA's builtin table (name, arity, how Palisade answers a call). The save-time
//!   check reads it to refuse a call of an undefined function or with the wrong number of arguments,
//!   and to warn, naming the line, about a call that cannot be evaluated locally.
//! - [`check`] parses the modules as Gatekeeper would (Rego v0 unless the template says v1), and
//!   walks every call. Rule conflicts that OPA's compiler refuses (a function defined with two
//!   arities, a rule that is both a function and a value) are refused here too.

/// How Palisade answers a call of an OPA builtin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Evaluated with OPA's semantics.
    Evaluated,
    /// Never executed by Palisade: the reason is part of every message about it.
    NotLocal(&'static str),
}

mod check;
mod output_args;
mod vm_reading;
mod walk;

pub use check::{check, support, Checked, Finding};

use super::normalise::{normalise, Rewrite, Rewrites};
use super::template::{guarded, Evaluator};

/// The reasons a builtin is not run locally.
const NETWORK: &str = "it calls out over the network";
const RUNTIME: &str = "it reads the Gatekeeper process's own runtime";
const RANDOM: &str = "its result is random, so a local answer could not equal the cluster's";

/// OPA's builtins in the OPA release Gatekeeper embeds (v1.17.1, in Gatekeeper v3.23.1): name,
/// number of arguments, and how Palisade answers a call. Operators (`plus`, `eq`, …) are not listed: they are written
/// as infix and cannot be misnamed.
pub const BUILTINS: &[(&str, u8, Support)] = &[
    ("abs", 1, Support::Evaluated),
    ("all", 1, Support::Evaluated),
    ("any", 1, Support::Evaluated),
    ("array.concat", 2, Support::Evaluated),
    ("array.flatten", 1, Support::Evaluated),
    ("array.reverse", 1, Support::Evaluated),
    ("array.slice", 3, Support::Evaluated),
    ("base64.decode", 1, Support::Evaluated),
    ("base64.encode", 1, Support::Evaluated),
    ("base64.is_valid", 1, Support::Evaluated),
    ("base64url.decode", 1, Support::Evaluated),
    ("base64url.encode", 1, Support::Evaluated),
    ("base64url.encode_no_pad", 1, Support::Evaluated),
    ("bits.and", 2, Support::Evaluated),
    ("bits.lsh", 2, Support::Evaluated),
    ("bits.negate", 1, Support::Evaluated),
    ("bits.or", 2, Support::Evaluated),
    ("bits.rsh", 2, Support::Evaluated),
    ("bits.xor", 2, Support::Evaluated),
    ("cast_array", 1, Support::Evaluated),
    ("cast_boolean", 1, Support::Evaluated),
    ("cast_null", 1, Support::Evaluated),
    ("cast_object", 1, Support::Evaluated),
    ("cast_set", 1, Support::Evaluated),
    ("cast_string", 1, Support::Evaluated),
    ("ceil", 1, Support::Evaluated),
    ("concat", 2, Support::Evaluated),
    ("contains", 2, Support::Evaluated),
    ("count", 1, Support::Evaluated),
    ("crypto.hmac.equal", 2, Support::Evaluated),
    ("crypto.hmac.md5", 2, Support::Evaluated),
    ("crypto.hmac.sha1", 2, Support::Evaluated),
    ("crypto.hmac.sha256", 2, Support::Evaluated),
    ("crypto.hmac.sha512", 2, Support::Evaluated),
    ("crypto.md5", 1, Support::Evaluated),
    ("crypto.parse_private_keys", 1, Support::Evaluated),
    ("crypto.sha1", 1, Support::Evaluated),
    ("crypto.sha256", 1, Support::Evaluated),
    (
        "crypto.x509.parse_and_verify_certificates",
        1,
        Support::Evaluated,
    ),
    (
        "crypto.x509.parse_and_verify_certificates_with_options",
        2,
        Support::Evaluated,
    ),
    (
        "crypto.x509.parse_certificate_request",
        1,
        Support::Evaluated,
    ),
    ("crypto.x509.parse_certificates", 1, Support::Evaluated),
    ("crypto.x509.parse_keypair", 2, Support::Evaluated),
    ("crypto.x509.parse_rsa_private_key", 1, Support::Evaluated),
    ("endswith", 2, Support::Evaluated),
    ("floor", 1, Support::Evaluated),
    ("format_int", 2, Support::Evaluated),
    ("glob.match", 3, Support::Evaluated),
    ("glob.quote_meta", 1, Support::Evaluated),
    ("graph.reachable", 2, Support::Evaluated),
    ("graph.reachable_paths", 2, Support::Evaluated),
    ("graphql.is_valid", 2, Support::Evaluated),
    ("graphql.parse", 2, Support::Evaluated),
    ("graphql.parse_and_verify", 2, Support::Evaluated),
    ("graphql.parse_query", 1, Support::Evaluated),
    ("graphql.parse_schema", 1, Support::Evaluated),
    ("graphql.schema_is_valid", 1, Support::Evaluated),
    ("hex.decode", 1, Support::Evaluated),
    ("hex.encode", 1, Support::Evaluated),
    ("http.send", 1, Support::NotLocal(NETWORK)),
    ("indexof", 2, Support::Evaluated),
    ("indexof_n", 2, Support::Evaluated),
    ("intersection", 1, Support::Evaluated),
    ("io.jwt.decode", 1, Support::Evaluated),
    ("io.jwt.decode_verify", 2, Support::Evaluated),
    ("io.jwt.encode_sign", 3, Support::Evaluated),
    ("io.jwt.encode_sign_raw", 3, Support::Evaluated),
    ("io.jwt.verify_eddsa", 2, Support::Evaluated),
    ("io.jwt.verify_es256", 2, Support::Evaluated),
    ("io.jwt.verify_es384", 2, Support::Evaluated),
    ("io.jwt.verify_es512", 2, Support::Evaluated),
    ("io.jwt.verify_hs256", 2, Support::Evaluated),
    ("io.jwt.verify_hs384", 2, Support::Evaluated),
    ("io.jwt.verify_hs512", 2, Support::Evaluated),
    ("io.jwt.verify_ps256", 2, Support::Evaluated),
    ("io.jwt.verify_ps384", 2, Support::Evaluated),
    ("io.jwt.verify_ps512", 2, Support::Evaluated),
    ("io.jwt.verify_rs256", 2, Support::Evaluated),
    ("io.jwt.verify_rs384", 2, Support::Evaluated),
    ("io.jwt.verify_rs512", 2, Support::Evaluated),
    ("is_array", 1, Support::Evaluated),
    ("is_boolean", 1, Support::Evaluated),
    ("is_null", 1, Support::Evaluated),
    ("is_number", 1, Support::Evaluated),
    ("is_object", 1, Support::Evaluated),
    ("is_set", 1, Support::Evaluated),
    ("is_string", 1, Support::Evaluated),
    ("json.filter", 2, Support::Evaluated),
    ("json.is_valid", 1, Support::Evaluated),
    ("json.marshal", 1, Support::Evaluated),
    ("json.marshal_with_options", 2, Support::Evaluated),
    ("json.match_schema", 2, Support::Evaluated),
    ("json.patch", 2, Support::Evaluated),
    ("json.remove", 2, Support::Evaluated),
    ("json.unmarshal", 1, Support::Evaluated),
    ("json.verify_schema", 1, Support::Evaluated),
    ("lower", 1, Support::Evaluated),
    ("max", 1, Support::Evaluated),
    ("min", 1, Support::Evaluated),
    ("net.cidr_contains", 2, Support::Evaluated),
    ("net.cidr_contains_matches", 2, Support::Evaluated),
    ("net.cidr_expand", 1, Support::Evaluated),
    ("net.cidr_intersects", 2, Support::Evaluated),
    ("net.cidr_is_valid", 1, Support::Evaluated),
    ("net.cidr_merge", 1, Support::Evaluated),
    ("net.cidr_overlap", 2, Support::Evaluated),
    ("net.lookup_ip_addr", 1, Support::NotLocal(NETWORK)),
    ("numbers.range", 2, Support::Evaluated),
    ("numbers.range_step", 3, Support::Evaluated),
    ("object.filter", 2, Support::Evaluated),
    ("object.get", 3, Support::Evaluated),
    ("object.keys", 1, Support::Evaluated),
    ("object.remove", 2, Support::Evaluated),
    ("object.subset", 2, Support::Evaluated),
    ("object.union", 2, Support::Evaluated),
    ("object.union_n", 1, Support::Evaluated),
    ("opa.runtime", 0, Support::NotLocal(RUNTIME)),
    ("product", 1, Support::Evaluated),
    ("providers.aws.sign_req", 3, Support::Evaluated),
    ("rand.intn", 2, Support::NotLocal(RANDOM)),
    ("re_match", 2, Support::Evaluated),
    ("regex.find_all_string_submatch_n", 3, Support::Evaluated),
    ("regex.find_n", 3, Support::Evaluated),
    ("regex.globs_match", 2, Support::Evaluated),
    ("regex.is_valid", 1, Support::Evaluated),
    ("regex.match", 2, Support::Evaluated),
    ("regex.replace", 3, Support::Evaluated),
    ("regex.split", 2, Support::Evaluated),
    ("regex.template_match", 4, Support::Evaluated),
    ("rego.metadata.chain", 0, Support::Evaluated),
    ("rego.metadata.rule", 0, Support::Evaluated),
    ("rego.parse_module", 2, Support::Evaluated),
    ("replace", 3, Support::Evaluated),
    ("round", 1, Support::Evaluated),
    ("semver.compare", 2, Support::Evaluated),
    ("semver.is_valid", 1, Support::Evaluated),
    ("set_diff", 2, Support::Evaluated),
    ("sort", 1, Support::Evaluated),
    ("split", 2, Support::Evaluated),
    ("sprintf", 2, Support::Evaluated),
    ("startswith", 2, Support::Evaluated),
    ("strings.any_prefix_match", 2, Support::Evaluated),
    ("strings.any_suffix_match", 2, Support::Evaluated),
    ("strings.count", 2, Support::Evaluated),
    ("strings.render_template", 2, Support::Evaluated),
    ("strings.replace_n", 2, Support::Evaluated),
    ("strings.reverse", 1, Support::Evaluated),
    ("substring", 3, Support::Evaluated),
    ("sum", 1, Support::Evaluated),
    ("time.add_date", 4, Support::Evaluated),
    ("time.clock", 1, Support::Evaluated),
    ("time.date", 1, Support::Evaluated),
    ("time.diff", 2, Support::Evaluated),
    ("time.format", 1, Support::Evaluated),
    ("time.now_ns", 0, Support::Evaluated),
    ("time.parse_duration_ns", 1, Support::Evaluated),
    ("time.parse_ns", 2, Support::Evaluated),
    ("time.parse_rfc3339_ns", 1, Support::Evaluated),
    ("time.weekday", 1, Support::Evaluated),
    ("to_number", 1, Support::Evaluated),
    ("trace", 1, Support::Evaluated),
    ("trim", 2, Support::Evaluated),
    ("trim_left", 2, Support::Evaluated),
    ("trim_prefix", 2, Support::Evaluated),
    ("trim_right", 2, Support::Evaluated),
    ("trim_space", 1, Support::Evaluated),
    ("trim_suffix", 2, Support::Evaluated),
    ("type_name", 1, Support::Evaluated),
    ("union", 1, Support::Evaluated),
    ("units.parse", 1, Support::Evaluated),
    ("units.parse_bytes", 1, Support::Evaluated),
    ("upper", 1, Support::Evaluated),
    ("uri.is_valid", 1, Support::Evaluated),
    ("uri.parse", 1, Support::Evaluated),
    ("urlquery.decode", 1, Support::Evaluated),
    ("urlquery.decode_object", 1, Support::Evaluated),
    ("urlquery.encode", 1, Support::Evaluated),
    ("urlquery.encode_object", 1, Support::Evaluated),
    ("uuid.parse", 1, Support::Evaluated),
    ("uuid.rfc4122", 1, Support::Evaluated),
    ("walk", 1, Support::Evaluated),
    ("yaml.is_valid", 1, Support::Evaluated),
    ("yaml.marshal", 1, Support::Evaluated),
    ("yaml.unmarshal", 1, Support::Evaluated),
];

/// The entry of [`BUILTINS`] called `name`.
pub fn builtin(name: &str) -> Option<(u8, Support)> {
    BUILTINS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, arity, support)| (*arity, *support))
}

/// The message of an evaluation that reached a builtin Palisade never runs.
pub fn not_local_message(name: &str, reason: &str) -> String {
    format!("{name} is not evaluable locally: {reason}")
}

/// A regorus engine set up as Gatekeeper's OPA: Rego v0 unless `v1`, builtin errors read as
/// undefined, and every builtin Palisade never runs answered with an error naming it.
pub fn engine(v1: bool) -> regorus::Engine {
    engine_with(v1, false)
}

/// An engine for a template: as [`engine`], but without Palisade's own builtins until
/// [`register_called`] adds those the template calls (an engine is cloned for every evaluation,
/// with every extension it carries).
pub fn template_engine(v1: bool) -> regorus::Engine {
    apply_heap_ceiling();
    let mut engine = regorus::Engine::new();
    engine.set_rego_v0(!v1);
    engine.set_strict_builtin_errors(false);
    engine.set_execution_timer_config(EVALUATION_BUDGET);
    engine
}

/// The heap the whole process may hold while Rego runs, unless [`set_heap_ceiling`] chose another.
pub const DEFAULT_HEAP_CEILING: u64 = 2 << 30;

static HEAP_CEILING: std::sync::OnceLock<u64> = std::sync::OnceLock::new();

/// Choose the heap ceiling of Rego evaluation, in bytes, before the first engine is made; the first
/// choice stays (a later call returns `false`). Evaluation checks the process's heap as it goes and
/// stops with an error once it is above the ceiling, so a policy that builds huge values fails
/// instead of taking the memory of the whole process; it can overshoot by what one builtin call
/// allocates.
pub fn set_heap_ceiling(bytes: u64) -> bool {
    let chosen = HEAP_CEILING.set(bytes).is_ok();
    regorus::set_global_memory_limit(Some(heap_ceiling()));
    chosen
}

/// The heap ceiling in force: what [`set_heap_ceiling`] chose, or [`DEFAULT_HEAP_CEILING`].
pub fn heap_ceiling() -> u64 {
    *HEAP_CEILING.get_or_init(|| DEFAULT_HEAP_CEILING)
}

/// Put the heap ceiling in force (once per process; every engine constructor calls it).
fn apply_heap_ceiling() {
    static APPLIED: std::sync::Once = std::sync::Once::new();
    APPLIED.call_once(|| regorus::set_global_memory_limit(Some(heap_ceiling())));
}

/// The words of an evaluation stopped by one of regorus's limits.
pub(crate) fn over_budget(limit: &regorus::LimitError) -> String {
    const MIB: u64 = 1 << 20;
    match limit {
        regorus::LimitError::TimeLimitExceeded { limit, .. } => format!(
            "evaluation exceeded its budget of {} ms of time",
            limit.as_millis()
        ),
        regorus::LimitError::MemoryLimitExceeded { limit, .. } => format!(
            "evaluation exceeded its budget of memory: the process's heap passed {} MiB while \
             this policy ran",
            limit / MIB
        ),
        regorus::LimitError::RegexSizeLimitExceeded { limit } => format!(
            "evaluation exceeded its budget: a regular expression compiles to more than {limit} \
             bytes"
        ),
    }
}

/// How long one evaluation of a template may run before it stops with an error (checked every
/// 256 steps): a policy that loops for minutes holds no CPU and no request.
pub const EVALUATION_BUDGET: regorus::utils::limits::ExecutionTimerConfig =
    regorus::utils::limits::ExecutionTimerConfig {
        limit: std::time::Duration::from_secs(2),
        check_interval: match std::num::NonZeroU32::new(256) {
            Some(n) => n,
            None => unreachable!(),
        },
    };

/// Register on `engine` Palisade's own builtins among those `checked` found called.
pub fn register_called(engine: &mut regorus::Engine, checked: &Checked) {
    super::builtins::register(engine, false, Some(&|name| checked.called.contains(name)));
}

/// [`engine`], with builtin errors as evaluation errors when `strict` (OPA's `strict-builtin-errors`;
/// the conformance cases ask for it, Gatekeeper never does).
pub fn engine_with(v1: bool, strict: bool) -> regorus::Engine {
    apply_heap_ceiling();
    let mut engine = regorus::Engine::new();
    engine.set_rego_v0(!v1);
    engine.set_strict_builtin_errors(strict);
    super::builtins::register(&mut engine, strict, None);
    for (name, arity, support) in BUILTINS {
        if let Support::NotLocal(reason) = support {
            let message = not_local_message(name, reason);
            // Registered on a fresh engine, so the name is free; an error here would only mean the
            // builtin keeps regorus's own answer, and `check` still refuses to evaluate it.
            let _ = engine.add_extension(
                (*name).to_owned(),
                *arity,
                Box::new(
                    move |_: Vec<regorus::Value>| -> anyhow::Result<regorus::Value> {
                        Err(anyhow::anyhow!(message.clone()))
                    },
                ),
            );
        }
    }
    engine
}

/// Add one module to `engine` after the source normalisation every template gets (see
/// [`super::normalise`]), returning its package path (`data.…`).
pub fn add_module(engine: &mut regorus::Engine, name: &str, text: &str) -> Result<String, String> {
    add_module_with(engine, name, text, Rewrites::ALL, Evaluator::Interpreter)
        .map(|added| added.package)
}

/// A module added by [`add_module_with`].
pub struct Added {
    /// The package path, `data.…`.
    pub package: String,
    /// The rewrites of [`super::normalise`] applied.
    pub rewrites: Vec<Rewrite>,
    /// For the VM: why it would read the module differently from OPA, if it would (see
    /// `vm_reading`); the interpreter must then evaluate it.
    pub vm_divergence: Option<String>,
}

/// [`add_module`] with a chosen set of rewrites, for `evaluator`: for the VM, the forms it reads
/// differently from OPA are also rewritten (see `vm_reading`).
pub fn add_module_with(
    engine: &mut regorus::Engine,
    name: &str,
    text: &str,
    enabled: Rewrites,
    evaluator: Evaluator,
) -> Result<Added, String> {
    let (normalised, rewrites) = normalise(text, enabled);
    let normalised = output_args::rewrite(engine, &normalised);
    let (normalised, vm_divergence) = match evaluator {
        Evaluator::Vm => vm_reading::rewrite(engine, &normalised),
        Evaluator::Interpreter => (normalised, None),
    };
    let package = guarded(|| engine.add_policy(name.to_owned(), normalised))?;
    Ok(Added {
        package,
        rewrites,
        vm_divergence,
    })
}

#[cfg(test)]
mod tests {
    use super::check::UNIMPLEMENTED;
    use super::*;

    /// Check `modules` (Rego v0 unless `v1`) and return the findings as `module:line:column message`.
    fn findings(modules: &[&str], v1: bool) -> (Vec<String>, Vec<String>) {
        let mut engine = engine(v1);
        for (index, text) in modules.iter().enumerate() {
            add_module(&mut engine, &format!("m{index}.rego"), text)
                .unwrap_or_else(|e| panic!("module {index} does not parse: {e}"));
        }
        let checked = check(&mut engine);
        let show = |f: &Finding| format!("{}:{}:{} {}", f.module, f.line, f.column, f.message);
        (
            checked.errors.iter().map(show).collect(),
            checked.not_local.iter().map(show).collect(),
        )
    }

    #[test]
    fn every_builtin_regorus_has_is_in_the_table() {
        // The table is OPA's; regorus must not offer a builtin Gatekeeper's OPA lacks without the
        // table saying so (its two internal set helpers aside).
        for name in regorus::unstable::BUILTINS.keys() {
            assert!(
                name.starts_with("__builtin_")
                    || builtin(name).is_some()
                    || *name == "strings.split_n",
                "regorus has {name}, which the table does not list"
            );
        }
    }

    #[test]
    fn a_builtin_is_evaluated_not_local_or_unimplemented() {
        assert_eq!(support("count"), Some((1, Support::Evaluated)));
        assert_eq!(
            support("re_match"),
            Some((2, Support::Evaluated)),
            "our own builtin"
        );
        assert_eq!(support("http.send"), Some((1, Support::NotLocal(NETWORK))));
        assert_eq!(
            support("graphql.parse"),
            Some((2, Support::NotLocal(UNIMPLEMENTED)))
        );
        assert_eq!(
            support("strings.split_n"),
            None,
            "newer than Gatekeeper's OPA"
        );
        assert_eq!(support("no.such"), None);
    }

    #[test]
    fn an_undefined_function_is_refused_at_its_place() {
        let (errors, _) = findings(
            &["package t\n\nviolation[{\"msg\": m}] {\n  m := strings.no_such(input.x)\n}\n"],
            false,
        );
        assert_eq!(errors, ["m0.rego:4:8 undefined function strings.no_such"]);
    }

    #[test]
    fn a_wrong_arity_is_refused_for_builtins_and_own_functions() {
        let (errors, _) = findings(
            &[
                "package t\n\nf(a, b) = a\n\nviolation[{\"msg\": m}] {\n  m := sprintf(\"%v\")\n  f(1)\n}\n",
            ],
            false,
        );
        assert_eq!(
            errors,
            [
                "m0.rego:6:8 sprintf takes 2 arguments, called with 1 (arity mismatch)",
                "m0.rego:7:3 function f takes 2 arguments, called with 1",
            ]
        );
    }

    #[test]
    fn an_output_argument_is_not_an_arity_mismatch() {
        let (errors, _) = findings(&["package t\n\np { count([1], n); n == 1 }\n"], false);
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn functions_resolve_through_packages_and_imports() {
        let lib = "package lib.helpers\n\nname(o) = n { n := o.metadata.name }\n";
        let main = "package t\n\nimport data.lib.helpers\nimport data.lib.helpers.name as nm\n\n\
                    violation[{\"msg\": m}] {\n  m := helpers.name(input)\n  nm(input)\n  data.lib.helpers.name(input)\n}\n";
        let (errors, _) = findings(&[main, lib], false);
        assert!(errors.is_empty(), "{errors:?}");
        let missing = "package t\n\nimport data.lib.helpers\n\np { helpers.other(input) }\n";
        let (errors, _) = findings(&[missing, lib], false);
        assert_eq!(errors, ["m0.rego:5:5 undefined function helpers.other"]);
    }

    #[test]
    fn rule_conflicts_are_refused() {
        let (errors, _) = findings(
            &["package t\n\nf(a) = 1\nf(a, b) = 2\n\ng = 1\ng(x) = 2\n"],
            false,
        );
        assert_eq!(
            errors,
            [
                "m0.rego:4:1 rule conflict: function data.t.f takes 2 arguments here and 1 at line 3",
                "m0.rego:7:1 rule conflict: data.t.g is a function here and a value rule at line 6",
            ]
        );
    }

    #[test]
    fn network_and_runtime_calls_are_not_local_and_named() {
        let (errors, not_local) = findings(
            &["package t\n\nviolation[{\"msg\": \"x\"}] {\n  r := http.send({\"method\": \"get\"})\n  opa.runtime()\n}\n"],
            false,
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            not_local,
            [
                "m0.rego:4:8 http.send is not evaluable locally: it calls out over the network",
                "m0.rego:5:3 opa.runtime is not evaluable locally: it reads the Gatekeeper process's own runtime",
            ]
        );
    }

    #[test]
    fn a_not_local_builtin_fails_when_evaluated_anyway() {
        let mut engine = engine(true);
        add_module(&mut engine, "m.rego", "package t\n\np := http.send({})\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let error = engine
            .eval_rule("data.t.p".to_owned())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            error.contains("http.send is not evaluable locally"),
            "{error}"
        );
    }

    #[test]
    fn v0_and_v1_syntax_follow_the_template() {
        let v1_only = "package t\n\nviolation contains {\"msg\": \"x\"} if { input.a }\n";
        assert_eq!(findings(&[v1_only], true), (vec![], vec![]));
        // Rego v0 has these keywords only when imported.
        let (errors, _) = findings(&[v1_only], false);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].starts_with("m0.rego:3:11 `contains` is a keyword"),
            "{errors:?}"
        );
        assert!(
            errors[1].starts_with("m0.rego:3:33 `if` is a keyword"),
            "{errors:?}"
        );
        let imported = format!(
            "package t\nimport future.keywords.if\nimport future.keywords.contains\n{}",
            &v1_only[10..]
        );
        assert_eq!(findings(&[&imported], false), (vec![], vec![]));
        // `contains(…)` the builtin and `input.in` the field are not keywords.
        let names = "package t\n\np { contains(input.in, \"x\") }\n";
        assert_eq!(findings(&[names], false), (vec![], vec![]));
        // A v0 body in a v1 template is a syntax error at its place.
        let v0_only = "package t\n\nviolation[{\"msg\": \"x\"}] { input.a }\n";
        let v1 = add_module(&mut engine(true), "m.rego", v0_only)
            .err()
            .unwrap_or_default();
        assert!(v1.contains("m.rego:3:"), "{v1}");
    }
}
