//! String builtins regorus 0.14.1 answers differently from OPA:
//!
//! - `strings.count` as Go's `strings.Count` counts: non-overlapping occurrences, and for an empty
//!   substring one more than the number of characters (regorus panics on an empty substring).
//! - `strings.replace_n` as Go's `strings.Replacer` replaces, with the patterns sorted as OPA sorts
//!   them: one pass from the left, at each place the first pattern (in sorted order) that matches
//!   wins, and replaced text is never scanned again; an empty pattern inserts its value at every
//!   place (regorus replaces pattern after pattern, so replacements chain).

use regorus::Value;

use super::{string_arg, Builtin};

pub(super) const BUILTINS: &[(&str, u8, Builtin)] = &[
    ("strings.count", 2, count),
    ("strings.replace_n", 2, replace_n),
];

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

fn replace_n(args: &[Value]) -> Result<Value, String> {
    let Some(Value::Object(patterns)) = args.first() else {
        return Err(format!(
            "operand 1 must be object but got {}",
            args.first().map_or("nothing", super::type_name)
        ));
    };
    let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(patterns.len());
    for (key, value) in patterns.iter() {
        let Value::String(key) = key else {
            return Err("operand 1 non-string key found in pattern object".to_owned());
        };
        let Value::String(value) = value else {
            return Err("operand 1 non-string value found in pattern object".to_owned());
        };
        pairs.push((key.as_ref(), value.as_ref()));
    }
    pairs.sort();
    let text = string_arg(args, 1)?;
    let empty = pairs.iter().find(|(k, _)| k.is_empty()).map(|(_, v)| *v);
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while at < text.len() {
        if let Some(insert) = empty {
            out.push_str(insert);
        }
        let rest = &text[at..];
        match pairs
            .iter()
            .find(|(k, _)| !k.is_empty() && rest.starts_with(k))
        {
            Some((key, value)) => {
                out.push_str(value);
                at += key.len();
            }
            None => {
                let step = rest.chars().next().map_or(1, char::len_utf8);
                out.push_str(&rest[..step]);
                at += step;
            }
        }
    }
    if let Some(insert) = empty {
        out.push_str(insert);
    }
    Ok(Value::from(out))
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

    #[test]
    fn replace_n_replaces_in_one_pass_with_sorted_patterns() {
        let replace = |pairs: &[(&str, &str)], text: &str| {
            let object: std::collections::BTreeMap<Value, Value> = pairs
                .iter()
                .map(|(k, v)| (Value::from(*k), Value::from(*v)))
                .collect();
            replace_n(&[Value::from(object), Value::from(text)])
        };
        assert_eq!(
            replace(&[("a", "b"), ("b", "a")], "abba"),
            Ok(Value::from("baab"))
        );
        assert_eq!(
            replace(&[("a", "YY"), ("bba", "bX")], "bbab"),
            Ok(Value::from("bXb"))
        );
        assert_eq!(
            replace(&[("", "X"), ("a", "Y")], "ab"),
            Ok(Value::from("XYXbX"))
        );
        assert_eq!(
            replace(&[("", "-"), ("é", "e")], "aéb"),
            Ok(Value::from("-a-e-b-"))
        );
    }
}
