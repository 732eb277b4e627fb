//! `units.parse` and `units.parse_bytes`, guarded. regorus 0.14.1 computes a literal's exponent in
//! full before it applies the unit, so `units.parse("10e10000000Ei")` runs for minutes: one
//! admission request could pin a CPU. OPA refuses such input with "exponent too large"; we refuse
//! an exponent of five digits or more the same way (no real quantity comes near), and hand
//! everything else to regorus's own implementation, which agrees with OPA on the rest.

use regorus::Value;

use super::{string_arg, Builtin};

pub(super) const BUILTINS: &[(&str, u8, Builtin)] = &[
    ("units.parse", 1, parse),
    ("units.parse_bytes", 1, parse_bytes),
];

/// The most digits an exponent may have.
const MAX_EXPONENT_DIGITS: usize = 4;

fn parse(args: &[Value]) -> Result<Value, String> {
    guarded("units.parse", args)
}

fn parse_bytes(args: &[Value]) -> Result<Value, String> {
    guarded("units.parse_bytes", args)
}

/// Whether `text` writes an exponent (`e` or `E`, an optional sign, digits) longer than allowed.
fn exponent_too_large(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.iter().enumerate().any(|(at, b)| {
        if !matches!(b, b'e' | b'E') || at == 0 || !bytes[at - 1].is_ascii_digit() {
            return false;
        }
        let mut rest = &bytes[at + 1..];
        if let Some((b'+' | b'-', tail)) = rest.split_first() {
            rest = tail;
        }
        rest.iter().take_while(|c| c.is_ascii_digit()).count() > MAX_EXPONENT_DIGITS
    })
}

fn guarded(name: &'static str, args: &[Value]) -> Result<Value, String> {
    let text = string_arg(args, 0)?;
    if exponent_too_large(text) {
        return Err("exponent too large".to_owned());
    }
    super::regorus_builtin(name, args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_exponent_is_refused_at_once() {
        let started = std::time::Instant::now();
        assert_eq!(
            parse(&[Value::from("10e10000000Ei")]),
            Err("exponent too large".to_owned())
        );
        assert_eq!(
            parse_bytes(&[Value::from("1E+99999KiB")]),
            Err("exponent too large".to_owned())
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn ordinary_quantities_parse_as_opa_parses_them() {
        assert_eq!(parse(&[Value::from("1.5Ki")]), Ok(Value::from(1536)));
        assert_eq!(
            parse(&[Value::from("2E")]),
            Ok(Value::from(2_000_000_000_000_000_000u64))
        );
        assert_eq!(
            parse(&[Value::from("1e3M")]),
            Ok(Value::from(1_000_000_000u64))
        );
        assert_eq!(
            parse_bytes(&[Value::from("2MiB")]),
            Ok(Value::from(2_097_152))
        );
        assert!(parse(&[Value::from("1 K")]).is_err());
    }
}
