//! `time.parse_duration_ns` as OPA reads a duration: Go's `time.ParseDuration` (a sign, then numbers
//! with optional fractions, each with a unit `ns`, `us`/`µs`/`μs`, `ms`, `s`, `m`, `h`), and also
//! `d` (24 hours), `w` (7 days) and `y` (365 days). regorus 0.14.1 lacks the last three.

use regorus::Value;

use super::{string_arg, Builtin};
use crate::go_duration::{self, Term};

pub(super) const BUILTINS: &[(&str, u8, Builtin)] =
    &[("time.parse_duration_ns", 1, parse_duration_ns)];

/// The units OPA reads beside Go's: days, weeks and years.
const MORE_UNITS: &[(&str, i128)] = &[
    ("d", 86_400 * 1_000_000_000),
    ("w", 7 * 86_400 * 1_000_000_000),
    ("y", 365 * 86_400 * 1_000_000_000),
];

fn parse_duration_ns(args: &[Value]) -> Result<Value, String> {
    let text = string_arg(args, 0)?;
    parse(text)
        .map(Value::from)
        .ok_or_else(|| format!("time: invalid duration {text:?}"))
}

/// Nanoseconds, or `None` for text that is not a duration or does not fit in 64 bits.
fn parse(text: &str) -> Option<i64> {
    let (negative, terms) = go_duration::terms(text, MORE_UNITS)?;
    let mut total: i128 = 0;
    for Term {
        whole,
        fraction,
        scale,
    } in terms
    {
        let whole: i128 = if whole.is_empty() {
            0
        } else {
            whole.parse().ok()?
        };
        let mut value = whole.checked_mul(scale)?;
        // The fraction, digit by digit, as far as it still counts at this unit.
        let mut place = scale;
        for digit in fraction.bytes() {
            place /= 10;
            if place == 0 {
                break;
            }
            value = value.checked_add(i128::from(digit - b'0') * place)?;
        }
        total = total.checked_add(value)?;
        if total > i128::from(i64::MAX) + 1 {
            return None;
        }
    }
    let total = if negative { -total } else { total };
    i64::try_from(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_opa_reads_them() {
        assert_eq!(parse("100ms"), Some(100_000_000));
        assert_eq!(parse("1d2h"), Some(93_600_000_000_000));
        assert_eq!(parse("1w"), Some(604_800_000_000_000));
        assert_eq!(parse("365d"), Some(31_536_000_000_000_000));
        assert_eq!(parse("1.5h"), Some(5_400_000_000_000));
        assert_eq!(parse("-2m"), Some(-120_000_000_000));
        assert_eq!(parse("0"), Some(0));
        assert_eq!(parse("1"), None, "a number needs a unit");
        assert_eq!(parse("300y"), None, "beyond 64 bits of nanoseconds");
        assert_eq!(parse("h"), None);
    }
}
