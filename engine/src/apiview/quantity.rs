//! Quantities as the apiserver decodes and writes them back (apimachinery `resource.Quantity`).
//!
//! Decoding keeps the text as written when it is already in a short exact form (the "fast path"
//! of `ParseQuantity`: a decimal at a scale that is a multiple of three without three trailing
//! zeros or a leading zero, like `2`, `100m`, `100M`, `1e3`; a binary amount not divisible by
//! eight, like `1Gi`); any other spelling is written in the canonical form: `0.5` → `500m`,
//! `1000m` → `1`, `1.5Gi` → `1536Mi`, `2.5` → `2500m`. Values finer than a nano-unit round away
//! from zero; binary amounts above 2⁶³−1 are capped there. In resource lists (requests, limits,
//! overhead, PVC storage) the defaulting also rounds up to a milli-unit (`1n` → `1m`).
//!
//! Amounts are held as `mantissa × 10^exponent` with a 128-bit mantissa; apimachinery's
//! arbitrary precision goes further, so a quantity of more than 38 significant digits is refused
//! here as "unable to parse numeric part of quantity" where the apiserver would accept it.

use std::cmp::Ordering;

use serde_json::Value;

pub(crate) const FORMAT_WRONG: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
pub(crate) const NUMERIC: &str = "unable to parse numeric part of quantity";
pub(crate) const SUFFIX: &str = "unable to parse quantity's suffix";

/// The largest binary amount a quantity holds (2⁶³−1).
const MAX_BINARY: u128 = i64::MAX as u128;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    DecimalSi,
    BinarySi,
    DecimalExponent,
}

/// A decoded quantity: its value, how it prints, and what decoding kept of the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quantity {
    negative: bool,
    /// The magnitude's digits, without trailing zeros (0 for zero).
    mantissa: u128,
    exponent: i32,
    format: Format,
    /// The text as written, when decoding keeps it.
    kept: Option<String>,
    /// The decimal scale of a quantity decoded on the 64-bit path (rounding to a milli-unit
    /// keeps its text when this is at least −3); `None` for the arbitrary-precision path.
    small_scale: Option<i32>,
}

fn pow10(n: u32) -> Option<u128> {
    10u128.checked_pow(n)
}

fn normalised(mut mantissa: u128, mut exponent: i32) -> (u128, i32) {
    if mantissa == 0 {
        return (0, 0);
    }
    while mantissa.is_multiple_of(10) {
        mantissa /= 10;
        exponent += 1;
    }
    (mantissa, exponent)
}

/// `mantissa × 10^exponent` rounded away from zero to a whole number of `10^scale`.
fn round_up_to(mantissa: u128, exponent: i32, scale: i32) -> (u128, i32) {
    if mantissa == 0 || exponent >= scale {
        return (mantissa, exponent);
    }
    let shift = u32::try_from(i64::from(scale) - i64::from(exponent)).unwrap_or(u32::MAX);
    let rounded = match pow10(shift) {
        Some(p) => mantissa / p + u128::from(!mantissa.is_multiple_of(p)),
        None => 1,
    };
    normalised(rounded, scale)
}

/// A quantity's text cut into its parts as `ParseQuantity` cuts it.
pub(crate) struct Parts<'a> {
    pub negative: bool,
    /// The digits before the point, leading zeros and all (empty for none).
    pub num: &'a str,
    /// The digits after the point (empty for none).
    pub denom: &'a str,
    /// The suffix, exponent included (`Ki`, `m`, `e3`, `E`, or empty).
    pub suffix: &'a str,
}

/// `text` cut into a sign, digits, a fraction and a suffix; [`FORMAT_WRONG`] when it is not of
/// that shape (what each part may hold is the caller's to judge).
pub(crate) fn parts(text: &str) -> Result<Parts<'_>, &'static str> {
    let bytes = text.as_bytes();
    let Some(&first) = bytes.first() else {
        return Err(FORMAT_WRONG);
    };
    let mut pos = 0;
    let negative = first == b'-';
    if matches!(first, b'-' | b'+') {
        pos += 1;
    }
    let digits_from = |from: usize| {
        from + bytes[from..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    let num_end = digits_from(pos);
    let num = &text[pos..num_end];
    pos = num_end;
    let mut denom = "";
    if pos < bytes.len() && bytes[pos] == b'.' {
        let end = digits_from(pos + 1);
        denom = &text[pos + 1..end];
        pos = end;
    }
    let suffix_start = pos;
    while pos < bytes.len() && b"eEinumkKMGTP".contains(&bytes[pos]) {
        pos += 1;
    }
    if pos < bytes.len() && matches!(bytes[pos], b'-' | b'+') {
        pos += 1;
    }
    if digits_from(pos) != bytes.len() {
        return Err(FORMAT_WRONG);
    }
    Ok(Parts {
        negative,
        num,
        denom,
        suffix: &text[suffix_start..],
    })
}

/// A suffix that names its scale (none, an SI prefix or a binary one): whether it is binary, and
/// the exponent (of 2 when binary, of 10 otherwise). An exponent written out (`e3`) is not one.
pub(crate) fn named_suffix(suffix: &str) -> Option<(bool, i32)> {
    Some(match suffix {
        "" => (false, 0),
        "n" => (false, -9),
        "u" => (false, -6),
        "m" => (false, -3),
        "k" => (false, 3),
        "M" => (false, 6),
        "G" => (false, 9),
        "T" => (false, 12),
        "P" => (false, 15),
        "E" => (false, 18),
        "Ki" => (true, 10),
        "Mi" => (true, 20),
        "Gi" => (true, 30),
        "Ti" => (true, 40),
        "Pi" => (true, 50),
        "Ei" => (true, 60),
        _ => return None,
    })
}

fn suffix_of(suffix: &str) -> Option<(bool, i32, Format)> {
    match named_suffix(suffix) {
        Some((true, exp)) => Some((true, exp, Format::BinarySi)),
        Some((false, exp)) => Some((false, exp, Format::DecimalSi)),
        None if suffix.len() > 1 && suffix.starts_with(['e', 'E']) => {
            // Go reads the exponent as 64 bits and keeps its low 32.
            let parsed: i64 = suffix[1..].parse().ok()?;
            #[allow(clippy::cast_possible_truncation)]
            Some((false, parsed as i32, Format::DecimalExponent))
        }
        _ => None,
    }
}

impl Quantity {
    /// Decodes the text of a quantity as `ParseQuantity` does.
    ///
    /// # Errors
    ///
    /// apimachinery's message for a malformed quantity, a bad suffix or a bad number.
    pub fn parse(text: &str) -> Result<Quantity, String> {
        if text.is_empty() {
            return Err(FORMAT_WRONG.into());
        }
        if text == "0" {
            return Ok(Quantity {
                negative: false,
                mantissa: 0,
                exponent: 0,
                format: Format::DecimalSi,
                kept: Some("0".into()),
                small_scale: Some(0),
            });
        }
        let Parts {
            negative,
            num,
            denom,
            suffix,
        } = parts(text)?;
        let num = match num.trim_start_matches('0') {
            "" => "0",
            num => num,
        };
        let (binary, exp, format) = suffix_of(suffix).ok_or(SUFFIX)?;

        let shifted = format!("{num}{denom}");
        let denom_len = i32::try_from(denom.len()).map_err(|_| NUMERIC)?;
        let mut kept = None;
        let mut small_scale = None;
        // The 64-bit path, and whether it keeps the text.
        let fits = if binary {
            exp >= 0 && denom.is_empty() && {
                let precision = 15 - num.len() as i64 - i64::from(exp) * 3 / 10 - 1;
                precision >= 0
            }
        } else {
            18 >= shifted.len() && exp.checked_sub(denom_len).is_some_and(|s| s >= -9)
        };
        if fits {
            if let Ok(value) = shifted.parse::<i64>() {
                let multiplied = if binary {
                    value.checked_mul(1i64 << exp)
                } else {
                    Some(value)
                };
                if multiplied.is_some() {
                    let scale = if binary { 0 } else { exp - denom_len };
                    small_scale = Some(scale);
                    let keep = if binary {
                        exp % 10 == 0 && value & 7 != 0
                    } else {
                        scale % 3 == 0 && !shifted.ends_with("000") && !shifted.starts_with('0')
                    };
                    if keep {
                        kept = Some(text.to_owned());
                    }
                }
            }
        }

        let significant = shifted.trim_start_matches('0');
        let trimmed = significant.trim_end_matches('0');
        let zeros = i32::try_from(significant.len() - trimmed.len()).map_err(|_| NUMERIC)?;
        let mut mantissa: u128 = if trimmed.is_empty() {
            0
        } else {
            trimmed.parse().map_err(|_| NUMERIC)?
        };
        let mut exponent = zeros - denom_len;
        if binary {
            mantissa = mantissa.checked_mul(1u128 << exp).ok_or(NUMERIC)?;
        } else {
            exponent = exponent.checked_add(exp).ok_or(NUMERIC)?;
        }
        let (mut mantissa, mut exponent) = normalised(mantissa, exponent);
        (mantissa, exponent) = round_up_to(mantissa, exponent, -9);
        let mut format = format;
        if format == Format::BinarySi {
            if magnitude_cmp(mantissa, exponent, MAX_BINARY, 0) == Ordering::Greater {
                (mantissa, exponent) = normalised(MAX_BINARY, 0);
            }
            if mantissa != 0 && magnitude_cmp(mantissa, exponent, 1, 0) == Ordering::Less {
                format = Format::DecimalSi;
            }
        }
        Ok(Quantity {
            negative: negative && mantissa != 0,
            mantissa,
            exponent,
            format,
            kept,
            small_scale,
        })
    }

    /// Decodes a quantity field of a JSON object as the apiserver's JSON decoder does: a string
    /// (spaces around it ignored) or a number as written; `null` is zero.
    ///
    /// # Errors
    ///
    /// As [`Quantity::parse`].
    pub fn from_json(value: &Value) -> Result<Quantity, String> {
        match value {
            Value::Null => Ok(Quantity {
                negative: false,
                mantissa: 0,
                exponent: 0,
                format: Format::DecimalSi,
                kept: None,
                small_scale: Some(0),
            }),
            Value::String(s) => Quantity::parse(s.trim()),
            Value::Number(n) => Quantity::parse(&n.to_string()),
            _ => Err(FORMAT_WRONG.into()),
        }
    }

    /// Rounds up to a milli-unit, as the defaulting of a resource list does.
    #[must_use]
    pub fn rounded_to_milli(mut self) -> Quantity {
        if self.small_scale.is_some_and(|s| s >= -3) {
            return self;
        }
        self.kept = None;
        (self.mantissa, self.exponent) = round_up_to(self.mantissa, self.exponent, -3);
        self
    }

    pub fn is_zero(&self) -> bool {
        self.mantissa == 0
    }

    pub fn is_negative(&self) -> bool {
        self.negative
    }

    /// Compares values, whatever their spelling.
    pub fn compare(&self, other: &Quantity) -> Ordering {
        match (self.negative, other.negative) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => {
                magnitude_cmp(self.mantissa, self.exponent, other.mantissa, other.exponent)
            }
            (true, true) => {
                magnitude_cmp(other.mantissa, other.exponent, self.mantissa, self.exponent)
            }
        }
    }

    /// The text the apiserver writes for this quantity.
    pub fn text(&self) -> String {
        if let Some(kept) = &self.kept {
            return kept.clone();
        }
        if self.mantissa == 0 {
            return "0".into();
        }
        let sign = if self.negative { "-" } else { "" };
        if self.format == Format::BinarySi
            && magnitude_cmp(self.mantissa, self.exponent, 1024, 0) != Ordering::Less
            && self.exponent >= 0
        {
            if let Some(whole) =
                pow10(self.exponent.unsigned_abs()).and_then(|p| self.mantissa.checked_mul(p))
            {
                let (mut amount, mut power) = (whole, 0);
                while amount % 1024 == 0 && power < 6 {
                    amount /= 1024;
                    power += 1;
                }
                let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][power];
                return format!("{sign}{amount}{suffix}");
            }
        }
        // Decimal: the exponent brought to a multiple of three.
        let (mut amount, mut exponent) = (self.mantissa, self.exponent);
        while exponent.rem_euclid(3) != 0 {
            amount = amount.saturating_mul(10);
            exponent -= 1;
        }
        let suffix = if self.format == Format::DecimalExponent {
            if exponent == 0 {
                String::new()
            } else {
                format!("e{exponent}")
            }
        } else {
            // An exponent the SI table lacks gets no suffix at all, as in apimachinery.
            match exponent {
                -9 => "n",
                -6 => "u",
                -3 => "m",
                3 => "k",
                6 => "M",
                9 => "G",
                12 => "T",
                15 => "P",
                18 => "E",
                _ => "",
            }
            .to_owned()
        };
        format!("{sign}{amount}{suffix}")
    }
}

/// Orders two magnitudes `a × 10^ea` and `b × 10^eb` (normalised mantissas).
fn magnitude_cmp(a: u128, ea: i32, b: u128, eb: i32) -> Ordering {
    match (a == 0, b == 0) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Less,
        (false, true) => return Ordering::Greater,
        _ => {}
    }
    let digits = |m: u128| i64::from(m.ilog10()) + 1;
    let (top_a, top_b) = (digits(a) + i64::from(ea), digits(b) + i64::from(eb));
    if top_a != top_b {
        return top_a.cmp(&top_b);
    }
    let e = ea.min(eb);
    let scaled = |m: u128, em: i32| pow10((em - e).unsigned_abs()).and_then(|p| m.checked_mul(p));
    match (scaled(a, ea), scaled(b, eb)) {
        (Some(x), Some(y)) => x.cmp(&y),
        // Same number of digits before the point and too many to align: compare as text.
        _ => a
            .to_string()
            .trim_end_matches('0')
            .cmp(b.to_string().trim_end_matches('0')),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn written(value: Value) -> String {
        Quantity::from_json(&value).unwrap().text()
    }

    #[test]
    fn quantities_are_written_as_the_apiserver_writes_them() {
        let table = [
            (json!("2"), "2"),
            (json!(2), "2"),
            (json!(2.5), "2500m"),
            (json!("0.5"), "500m"),
            (json!("1000m"), "1"),
            (json!("1.5Gi"), "1536Mi"),
            (json!("1e3"), "1e3"),
            (json!("100M"), "100M"),
            (json!("0.1"), "100m"),
            (json!(1e-3), "1m"),
            (json!(1000), "1k"),
            (json!("1Gi"), "1Gi"),
            (json!("1024Mi"), "1Gi"),
            (json!("8Gi"), "8Gi"),
            (json!("512Ki"), "512Ki"),
            (json!("0.5Ki"), "512"),
            (json!("0.5Mi"), "512Ki"),
            (json!("100m"), "100m"),
            (json!("1.0"), "1"),
            (json!("05"), "05"),
            (json!("+2"), "+2"),
            (json!(" 2 "), "2"),
            (json!("0"), "0"),
            (json!("0.000"), "0"),
            (json!("1n"), "1n"),
            (json!("0.1n"), "1n"),
            (json!("1.5e3"), "1500"),
            (json!("1E"), "1E"),
            (json!("-1"), "-1"),
            (json!("1200m"), "1200m"),
            (json!("1.2"), "1200m"),
            (json!("10Ei"), "9223372036854775807"),
            (json!("1000E"), "1"),
            (json!(null), "0"),
            (json!("."), "0"),
        ];
        for (input, expected) in table {
            assert_eq!(written(input.clone()), expected, "{input}");
        }
    }

    #[test]
    fn resource_lists_round_up_to_a_milli_unit() {
        let rounded = |s: &str| Quantity::parse(s).unwrap().rounded_to_milli().text();
        assert_eq!(rounded("1n"), "1m");
        assert_eq!(rounded("1500u"), "2m");
        assert_eq!(rounded("100m"), "100m");
        assert_eq!(rounded("0.0005"), "1m");
        assert_eq!(rounded("2"), "2");
        assert_eq!(rounded("1.5Gi"), "1536Mi");
    }

    #[test]
    fn malformed_quantities_have_apimachinerys_messages() {
        for (bad, message) in [
            ("", FORMAT_WRONG),
            ("two", FORMAT_WRONG),
            ("1x", FORMAT_WRONG),
            ("1Qi", FORMAT_WRONG),
            ("1e", SUFFIX),
            ("1mm", SUFFIX),
        ] {
            assert_eq!(Quantity::parse(bad).unwrap_err(), message, "{bad}");
        }
        assert_eq!(Quantity::from_json(&json!(true)).unwrap_err(), FORMAT_WRONG);
    }

    #[test]
    fn values_compare_whatever_their_spelling() {
        let q = |s: &str| Quantity::parse(s).unwrap();
        assert_eq!(q("1").compare(&q("1000m")), Ordering::Equal);
        assert_eq!(q("2").compare(&q("1")), Ordering::Greater);
        assert_eq!(q("1Gi").compare(&q("1G")), Ordering::Greater);
        assert_eq!(q("-1").compare(&q("0")), Ordering::Less);
    }
}
