//! Kubernetes' regex library: `<string>.find(<pattern>)`, `<string>.findAll(<pattern>)` and
//! `<string>.findAll(<pattern>, <limit>)`.
//!
//! Patterns are compiled once and kept in CEL's bounded cache ([`crate::patterns::CEL`]), so a
//! policy evaluated many times compiles each of its patterns once. The `regex` crate and Go's RE2
//! share the syntax Kubernetes policies use; matches are leftmost-first in both, and an empty match
//! right after the previous match is skipped by both when finding all.

use ::cel::common::types::{CelString, INT_TYPE, STRING_TYPE};
use ::cel::common::value::CowVal;
use ::cel::{DeclarationError, Env};

use super::{error, int_arg, ret, str_arg, string_list, Args, Ret};
use crate::patterns::CEL;

pub(crate) fn register(env: &mut Env) -> Result<(), DeclarationError> {
    env.add_member_overload(
        "find",
        "string_find_string",
        STRING_TYPE,
        vec![STRING_TYPE],
        find,
    )?;
    env.add_member_overload(
        "findAll",
        "string_find_all_string",
        STRING_TYPE,
        vec![STRING_TYPE],
        find_all,
    )?;
    env.add_member_overload(
        "findAll",
        "string_find_all_string_int",
        STRING_TYPE,
        vec![STRING_TYPE, INT_TYPE],
        find_all,
    )?;
    Ok(())
}

fn find<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let text = str_arg(&args, 0, "find")?;
    let re = CEL
        .compiled(str_arg(&args, 1, "find")?)
        .map_err(|e| error("find", e))?;
    let found = re.find(text).map_or("", |m| m.as_str());
    Ok(CowVal::owned(CelString::from(found.to_owned())))
}

fn find_all<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let text = str_arg(&args, 0, "findAll")?;
    let re = CEL
        .compiled(str_arg(&args, 1, "findAll")?)
        .map_err(|e| error("findAll", e))?;
    let limit = if args.len() > 2 {
        usize::try_from(int_arg(&args, 2, "findAll")?).ok()
    } else {
        None
    };
    let matches = re.find_iter(text).map(|m| m.as_str().to_owned());
    let found: Vec<String> = match limit {
        Some(n) => matches.take(n).collect(),
        None => matches.collect(),
    };
    ret(string_list(found))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_error, assert_true};

    #[test]
    fn documented_examples() {
        // The documentation promises '123' for `"abc 123".find('[0-9]*')`, but `[0-9]*` matches
        // the empty string at the start, and Go's regexp (like this one) answers ''. The
        // pattern that does what the documentation means is `[0-9]+`.
        assert_true(&[
            "'abc 123'.find('[0-9]*') == ''",
            "'abc 123'.find('[0-9]+') == '123'",
            "'abc 123'.find('xyz') == ''",
            "'123 abc 456'.findAll('[0-9]+') == ['123', '456']",
            "'123 abc 456'.findAll('[0-9]+', 1) == ['123']",
            "'123 abc 456'.findAll('xyz') == []",
        ]);
    }

    #[test]
    fn all_matches_like_go() {
        assert_true(&[
            // Go: ["123" "" "" "" "" "456"]: the empty match right after "123" is skipped.
            "'123 abc 456'.findAll('[0-9]*') == ['123', '', '', '', '', '456']",
            "'a1b2c3'.findAll('[0-9]', 0) == []",
            "'a1b2c3'.findAll('[0-9]', -1) == ['1', '2', '3']",
            "'a1b2c3'.findAll('[0-9]', 2) == ['1', '2']",
        ]);
        assert_error(&[("'abc'.find('[')", "find")]);
    }

    #[test]
    fn patterns_are_cached() {
        let a = super::CEL.compiled("^x+$").unwrap();
        let b = super::CEL.compiled("^x+$").unwrap();
        assert!(std::sync::Arc::ptr_eq(&a, &b));
    }
}
