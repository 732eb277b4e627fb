//! Kubernetes' semver library (since 1.33): `semver(<string>[, <normalize>])`,
//! `isSemver(<string>[, <normalize>])`, `<Semver>.major()`, `minor()`, `patch()`,
//! `isGreaterThan()`, `isLessThan()`, `compareTo()`, and `==`.
//!
//! Parsing is strict Semantic Versioning 2.0.0 as the blang/semver `Parse` used by Kubernetes has
//! it; with `normalize`, a leading `v` is dropped, missing minor and patch numbers become 0, and
//! leading zeros are removed first. Precedence ignores build metadata, and so does `==`.

use std::cmp::Ordering;

use ::cel::common::types::{BOOL_TYPE, STRING_TYPE};
use ::cel::objects::Opaque;
use ::cel::{DeclarationError, Env, Value};

use super::{bool_arg, error, opaque_type, ret, ret_opaque, str_arg, with_opaque, Args, Ret};

/// The CEL type name of a semantic version.
pub const SEMVER_TYPE: &str = "kubernetes.Semver";

/// One dot-separated identifier of a pre-release.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PreRelease {
    Numeric(u64),
    Alpha(String),
}

impl PreRelease {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PreRelease::Numeric(a), PreRelease::Numeric(b)) => a.cmp(b),
            (PreRelease::Numeric(_), PreRelease::Alpha(_)) => Ordering::Less,
            (PreRelease::Alpha(_), PreRelease::Numeric(_)) => Ordering::Greater,
            (PreRelease::Alpha(a), PreRelease::Alpha(b)) => a.cmp(b),
        }
    }
}

/// A `kubernetes.Semver` value.
#[derive(Debug, Clone)]
pub struct Semver {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    pre: Vec<PreRelease>,
    build: Vec<String>,
}

impl PartialEq for Semver {
    fn eq(&self, other: &Self) -> bool {
        self.precedence(other) == Ordering::Equal
    }
}

impl Eq for Semver {}

impl Opaque for Semver {
    fn runtime_type_name(&self) -> &str {
        SEMVER_TYPE
    }
}

fn is_numeric(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

fn is_alphanumeric(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn number(part: &str, what: &str) -> Result<u64, String> {
    if !is_numeric(part) {
        return Err(format!(
            "Invalid character(s) found in {what} number {part:?}"
        ));
    }
    if part.len() > 1 && part.starts_with('0') {
        return Err(format!(
            "{} number must not contain leading zeroes {part:?}",
            capitalised(what)
        ));
    }
    part.parse()
        .map_err(|e| format!("strconv.ParseUint: parsing {part:?}: {e}"))
}

fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

impl Semver {
    /// Parses a version strictly.
    ///
    /// # Errors
    ///
    /// The message of blang/semver's error.
    pub fn parse(s: &str) -> Result<Semver, String> {
        if s.is_empty() {
            return Err("Version string empty".to_owned());
        }
        let parts: Vec<&str> = s.splitn(3, '.').collect();
        let [major, minor, rest] = parts.as_slice() else {
            return Err("No Major.Minor.Patch elements found".to_owned());
        };
        let major = number(major, "major")?;
        let minor = number(minor, "minor")?;
        let mut patch = *rest;
        let mut build = Vec::new();
        if let Some((p, b)) = patch.split_once('+') {
            build = b.split('.').map(str::to_owned).collect();
            patch = p;
        }
        let mut pre = Vec::new();
        if let Some((p, r)) = patch.split_once('-') {
            for id in r.split('.') {
                if id.is_empty() {
                    return Err("Prerelease is empty".to_owned());
                }
                if is_numeric(id) {
                    if id.len() > 1 && id.starts_with('0') {
                        return Err(format!(
                            "Numeric PreRelease version must not contain leading zeroes {id:?}"
                        ));
                    }
                    pre.push(PreRelease::Numeric(id.parse().map_err(|e| format!("{e}"))?));
                } else if is_alphanumeric(id) {
                    pre.push(PreRelease::Alpha(id.to_owned()));
                } else {
                    return Err(format!("Invalid character(s) found in prerelease {id:?}"));
                }
            }
            patch = p;
        }
        let patch = number(patch, "patch")?;
        for id in &build {
            if id.is_empty() {
                return Err("Build meta data is empty".to_owned());
            }
            if !is_alphanumeric(id) {
                return Err(format!(
                    "Invalid character(s) found in build meta data {id:?}"
                ));
            }
        }
        Ok(Semver {
            major,
            minor,
            patch,
            pre,
            build,
        })
    }

    /// Parses a version after normalising it: no leading `v`, missing minor and patch numbers
    /// filled in with 0, leading zeros removed.
    ///
    /// # Errors
    ///
    /// As [`Semver::parse`], and for a short version with pre-release or build metadata.
    pub fn parse_normalized(s: &str) -> Result<Semver, String> {
        let s = s.strip_prefix('v').unwrap_or(s);
        let mut parts: Vec<String> = s
            .splitn(3, '.')
            .map(|p| {
                if p.len() > 1 {
                    let trimmed = p.trim_start_matches('0');
                    if trimmed.is_empty() || !trimmed.starts_with(|c: char| c.is_ascii_digit()) {
                        format!("0{trimmed}")
                    } else {
                        trimmed.to_owned()
                    }
                } else {
                    p.to_owned()
                }
            })
            .collect();
        if parts.len() < 3 {
            if parts.last().is_some_and(|p| p.contains(['+', '-'])) {
                return Err("short version cannot contain PreRelease/Build meta data".to_owned());
            }
            while parts.len() < 3 {
                parts.push("0".to_owned());
            }
        }
        Semver::parse(&parts.join("."))
    }

    /// Semantic Versioning precedence; build metadata does not count.
    pub fn precedence(&self, other: &Semver) -> Ordering {
        let core =
            (self.major, self.minor, self.patch).cmp(&(other.major, other.minor, other.patch));
        if core != Ordering::Equal {
            return core;
        }
        match (self.pre.is_empty(), other.pre.is_empty()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Greater,
            (false, true) => return Ordering::Less,
            (false, false) => {}
        }
        for (a, b) in self.pre.iter().zip(&other.pre) {
            let c = a.cmp(b);
            if c != Ordering::Equal {
                return c;
            }
        }
        self.pre.len().cmp(&other.pre.len())
    }

    /// The build metadata identifiers.
    pub fn build(&self) -> &[String] {
        &self.build
    }
}

pub(crate) fn register(env: &mut Env) -> Result<(), DeclarationError> {
    let semver = || opaque_type(SEMVER_TYPE);
    env.add_type(semver())?;
    env.add_overload("semver", "string_to_semver", vec![STRING_TYPE], to_semver)?;
    env.add_overload(
        "semver",
        "string_bool_to_semver",
        vec![STRING_TYPE, BOOL_TYPE],
        to_semver,
    )?;
    env.add_overload("isSemver", "is_semver", vec![STRING_TYPE], is_semver)?;
    env.add_overload(
        "isSemver",
        "is_semver_normalize",
        vec![STRING_TYPE, BOOL_TYPE],
        is_semver,
    )?;
    env.add_member_overload("major", "semver_major", semver(), vec![], major)?;
    env.add_member_overload("minor", "semver_minor", semver(), vec![], minor)?;
    env.add_member_overload("patch", "semver_patch", semver(), vec![], patch)?;
    env.add_member_overload(
        "isGreaterThan",
        "semver_is_greater_than",
        semver(),
        vec![semver()],
        is_greater_than,
    )?;
    env.add_member_overload(
        "isLessThan",
        "semver_is_less_than",
        semver(),
        vec![semver()],
        is_less_than,
    )?;
    env.add_member_overload(
        "compareTo",
        "semver_compare_to",
        semver(),
        vec![semver()],
        compare_to,
    )?;
    Ok(())
}

fn parse_args(
    args: &Args<'_, '_>,
    function: &str,
) -> Result<Result<Semver, String>, ::cel::ExecutionError> {
    let raw = str_arg(args, 0, function)?;
    let normalize = args.len() > 1 && bool_arg(args, 1, function)?;
    Ok(if normalize {
        Semver::parse_normalized(raw)
    } else {
        Semver::parse(raw)
    })
}

fn to_semver<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let v = parse_args(&args, "semver")?.map_err(|e| error("semver", e))?;
    ret_opaque(v)
}

fn is_semver<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    ret(Value::Bool(parse_args(&args, "isSemver")?.is_ok()))
}

fn part<'b, 'v>(args: Args<'b, 'v>, function: &str, get: fn(&Semver) -> u64) -> Ret<'b, 'v> {
    let n = with_opaque(&args, 0, function, |v: &Semver| get(v) as i64)?;
    ret(Value::Int(n))
}

fn major<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    part(args, "major", |v| v.major)
}

fn minor<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    part(args, "minor", |v| v.minor)
}

fn patch<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    part(args, "patch", |v| v.patch)
}

fn ordering(args: &Args<'_, '_>, function: &str) -> Result<Ordering, ::cel::ExecutionError> {
    let other = with_opaque(args, 1, function, |v: &Semver| v.clone())?;
    with_opaque(args, 0, function, |v: &Semver| v.precedence(&other))
}

comparisons!(ordering);

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_error, assert_true};

    #[test]
    fn documented_examples() {
        assert_true(&[
            "semver('1.0.0') == semver('1.0.0')",
            "semver('0.1.0-alpha.1').minor() == 1",
            "semver('v1.0.0', true) == semver('1.0.0')",
            "semver('1.0', true) == semver('1.0.0')",
            "semver('01.01.01', true) == semver('1.1.1')",
            "isSemver('1.0.0')",
            "!isSemver('hello')",
            "!isSemver('v1.0')",
            "isSemver('v1.0', true)",
            "semver('1.2.3').major() == 1",
            "semver('1.2.3').minor() == 2",
            "semver('1.2.3').patch() == 3",
            "semver('1.2.3').compareTo(semver('1.2.3')) == 0",
            "semver('1.2.3').compareTo(semver('2.0.0')) == -1",
            "semver('1.2.3').compareTo(semver('0.1.2')) == 1",
        ]);
        assert_error(&[
            ("semver('200K')", "No Major.Minor.Patch"),
            ("semver('Three')", "No Major.Minor.Patch"),
            ("semver('Mi')", "No Major.Minor.Patch"),
        ]);
    }

    #[test]
    fn kubernetes_test_cases() {
        // From the cases of Kubernetes' own semver library test.
        assert_true(&[
            "isSemver('1.2.3-beta.1+build.1')",
            "!isSemver('')",
            "!isSemver('v1.0.0')",
            "!isSemver(' 1.0.0')",
            "!isSemver('1. 0.0')",
            "!isSemver('1.0.0 ')",
            "!isSemver('01.01.01')",
            "!isSemver('1')",
            "!isSemver('1.1')",
            "!isSemver('', true)",
            "!isSemver(' 1.0.0', true)",
            "!isSemver('1. 0.0', true)",
            "!isSemver('1.0.0 ', true)",
            "isSemver('v1.0.0', true)",
            "isSemver('01.01.01', true)",
            "isSemver('1', true)",
            "isSemver('1.1', true)",
            "semver('v01.01', true) == semver('1.1.0')",
            "semver('1.2.3') != semver('1.0.0')",
            "semver('1.0.0').isLessThan(semver('1.2.3'))",
            "!semver('1.0.0').isLessThan(semver('1.0.0'))",
            "semver('1.2.3').isGreaterThan(semver('1.0.0'))",
            "!semver('1.0.0').isGreaterThan(semver('1.0.0'))",
            "semver('1.0.0-alpha').isLessThan(semver('1.0.0-alpha.1'))",
            "semver('1.0.0-alpha.1').isLessThan(semver('1.0.0-alpha.beta'))",
            "semver('1.0.0-rc.1').isLessThan(semver('1.0.0'))",
            "semver('1.0.0+a') == semver('1.0.0+b')",
        ]);
        assert_error(&[
            ("semver('v1.0')", "No Major.Minor.Patch"),
            (
                "semver('v1.0.0')",
                "Invalid character(s) found in major number",
            ),
        ]);
    }
}
