//! `strings.count` as Go's `strings.Count` counts, which OPA uses: non-overlapping occurrences, and
//! for an empty substring one more than the number of characters. regorus 0.14.1 panics on an empty
//! substring and counts overlapping occurrences.

use regorus::Value;

use super::{string_arg, Builtin};

pub(super) const BUILTINS: &[(&str, u8, Builtin)] = &[("strings.count", 2, count)];

fn count(args: &[Value]) -> Result<Value, String> {
    let search = string_arg(args, 0)?;
    let substring = string_arg(args, 1)?;
    let found = if substring.is_empty() {
        search.chars().count() + 1
    } else {
        search.matches(substring).count()
    };
    Ok(Value::from(found))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_as_go_counts() {
        let count_of = |s: &str, sub: &str| count(&[Value::from(s), Value::from(sub)]);
        assert_eq!(count_of("cheese", "e"), Ok(Value::from(3)));
        assert_eq!(
            count_of("aaaa", "aa"),
            Ok(Value::from(2)),
            "non-overlapping"
        );
        assert_eq!(
            count_of("héllo", ""),
            Ok(Value::from(6)),
            "characters plus one"
        );
        assert_eq!(count_of("", ""), Ok(Value::from(1)));
    }
}
