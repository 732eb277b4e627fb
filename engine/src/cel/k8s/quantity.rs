//! Kubernetes' quantity library (since 1.28): `quantity()`, `isQuantity()`, and on
//! `kubernetes.Quantity`: `sign()`, `isInteger()`, `asInteger()`, `asApproximateFloat()`,
//! `add(<Quantity|int>)`, `sub(<Quantity|int>)`, `isGreaterThan()`, `isLessThan()`,
//! `compareTo()`, and `==` (equal values, whatever their spelling: `200M == 0.2G`).
//!
//! A quantity is kept as an exact decimal, `mantissa × 10^exponent` with a 128-bit mantissa and no
//! trailing zeros, which holds every quantity a Kubernetes object can carry (38 significant
//! digits). Parsing follows apimachinery's `ParseQuantity`: the same grammar and suffixes, and a
//! non-zero value finer than a nano-unit rounded away from zero to one. apimachinery's
//! arbitrary-precision arithmetic goes further: a sum or difference beyond 38 digits is an
//! evaluation error here ("quantity overflow") where Kubernetes would still compute it.

use std::cmp::Ordering;

use ::cel::common::types::{INT_TYPE, STRING_TYPE};
use ::cel::objects::Opaque;
use ::cel::{DeclarationError, Env, ExecutionError, Value};

use crate::apiview::quantity::{named_suffix, parts, Parts, FORMAT_WRONG, NUMERIC, SUFFIX};

use super::{error, int_arg, opaque_type, ret, ret_opaque, str_arg, with_opaque, Args, Ret};

/// The CEL type name of a quantity.
pub const QUANTITY_TYPE: &str = "kubernetes.Quantity";

const OVERFLOW: &str = "quantity overflow";

/// A `kubernetes.Quantity` value: `mantissa × 10^exponent`, normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity {
    mantissa: i128,
    exponent: i32,
}

impl Opaque for Quantity {
    fn runtime_type_name(&self) -> &str {
        QUANTITY_TYPE
    }
}

fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

impl Quantity {
    fn new(mantissa: i128, exponent: i32) -> Quantity {
        let (mut m, mut e) = (mantissa, exponent);
        if m == 0 {
            return Quantity {
                mantissa: 0,
                exponent: 0,
            };
        }
        while m % 10 == 0 {
            m /= 10;
            e += 1;
        }
        Quantity {
            mantissa: m,
            exponent: e,
        }
    }

    /// The integer `n`.
    pub fn from_int(n: i64) -> Quantity {
        Quantity::new(i128::from(n), 0)
    }

    /// Parses a quantity as apimachinery's `ParseQuantity` does.
    ///
    /// # Errors
    ///
    /// apimachinery's message for a malformed quantity or an unknown suffix.
    pub fn parse(s: &str) -> Result<Quantity, String> {
        let Parts {
            negative,
            num,
            denom,
            suffix,
        } = parts(s)?;
        if num.is_empty() && denom.is_empty() {
            return Err(FORMAT_WRONG.to_owned());
        }
        let (base2, exp) = match named_suffix(suffix) {
            Some(named) => named,
            None => match suffix.strip_prefix(['e', 'E']) {
                Some(e) => (false, e.parse::<i32>().map_err(|_| SUFFIX.to_owned())?),
                None => return Err(SUFFIX.to_owned()),
            },
        };

        // The decimal digits, then the scale they are at.
        let all = format!("{num}{denom}");
        let significant = all.trim_start_matches('0');
        let trimmed = significant.trim_end_matches('0');
        let mut exponent = i32::try_from(significant.len() - trimmed.len())
            .map_err(|_| NUMERIC.to_owned())?
            - i32::try_from(denom.len()).map_err(|_| NUMERIC.to_owned())?;
        let mut mantissa: i128 = if trimmed.is_empty() {
            0
        } else {
            trimmed.parse().map_err(|_| OVERFLOW.to_owned())?
        };
        if base2 {
            mantissa = mantissa
                .checked_mul(1i128 << exp)
                .ok_or_else(|| OVERFLOW.to_owned())?;
        } else {
            exponent = exponent
                .checked_add(exp)
                .ok_or_else(|| NUMERIC.to_owned())?;
        }
        if negative {
            mantissa = -mantissa;
        }
        Ok(Quantity::new(mantissa, exponent).round_to_nano())
    }

    /// A value finer than 10⁻⁹, rounded away from zero to a whole number of nano-units.
    fn round_to_nano(self) -> Quantity {
        if self.mantissa == 0 || self.exponent >= -9 {
            return self;
        }
        let shift = u32::try_from(-9 - i64::from(self.exponent)).unwrap_or(u32::MAX);
        let m = match pow10(shift) {
            Some(p) => {
                let q = self.mantissa / p;
                if self.mantissa % p == 0 {
                    q
                } else {
                    q + self.mantissa.signum()
                }
            }
            None => self.mantissa.signum(),
        };
        Quantity::new(m, -9)
    }

    /// Both mantissas at the smaller exponent, if that fits.
    fn aligned(&self, other: &Quantity) -> Option<(i128, i128, i32)> {
        let e = self.exponent.min(other.exponent);
        let a = self
            .mantissa
            .checked_mul(pow10(u32::try_from(self.exponent - e).ok()?)?)?;
        let b = other
            .mantissa
            .checked_mul(pow10(u32::try_from(other.exponent - e).ok()?)?)?;
        Some((a, b, e))
    }

    /// The sum of two quantities.
    ///
    /// # Errors
    ///
    /// When the result does not fit 38 digits.
    pub fn add(&self, other: &Quantity) -> Result<Quantity, String> {
        let (a, b, e) = self.aligned(other).ok_or_else(|| OVERFLOW.to_owned())?;
        let m = a.checked_add(b).ok_or_else(|| OVERFLOW.to_owned())?;
        Ok(Quantity::new(m, e))
    }

    /// The difference of two quantities.
    ///
    /// # Errors
    ///
    /// When the result does not fit 38 digits.
    pub fn sub(&self, other: &Quantity) -> Result<Quantity, String> {
        let negated = Quantity {
            mantissa: -other.mantissa,
            exponent: other.exponent,
        };
        self.add(&negated)
    }

    /// -1, 0 or 1.
    pub fn sign(&self) -> i64 {
        self.mantissa.signum() as i64
    }

    /// How this quantity orders against `other`.
    pub fn compare(&self, other: &Quantity) -> Ordering {
        let (sa, sb) = (self.sign(), other.sign());
        if sa != sb {
            return sa.cmp(&sb);
        }
        match self.aligned(other) {
            Some((a, b, _)) => a.cmp(&b),
            // Scaling the one with the larger exponent overflowed: it is the larger in magnitude.
            None => {
                let bigger = if self.exponent > other.exponent {
                    Ordering::Greater
                } else {
                    Ordering::Less
                };
                if sa < 0 {
                    bigger.reverse()
                } else {
                    bigger
                }
            }
        }
    }

    /// The value as an `i64`, if it is a whole number in range.
    pub fn as_i64(&self) -> Option<i64> {
        if self.exponent < 0 {
            return None;
        }
        let m = self
            .mantissa
            .checked_mul(pow10(u32::try_from(self.exponent).ok()?)?)?;
        i64::try_from(m).ok()
    }

    /// The value as the nearest `f64` (infinite beyond its range).
    pub fn as_f64(&self) -> f64 {
        (self.mantissa as f64) * 10f64.powi(self.exponent)
    }
}

pub(crate) fn register(env: &mut Env) -> Result<(), DeclarationError> {
    let q = || opaque_type(QUANTITY_TYPE);
    env.add_type(q())?;
    env.add_overload(
        "quantity",
        "string_to_quantity",
        vec![STRING_TYPE],
        to_quantity,
    )?;
    env.add_overload(
        "isQuantity",
        "is_quantity_string",
        vec![STRING_TYPE],
        is_quantity,
    )?;
    env.add_member_overload("sign", "quantity_sign", q(), vec![], sign)?;
    env.add_member_overload("isInteger", "quantity_is_integer", q(), vec![], is_integer)?;
    env.add_member_overload("asInteger", "quantity_get_int", q(), vec![], as_integer)?;
    env.add_member_overload(
        "asApproximateFloat",
        "quantity_get_float",
        q(),
        vec![],
        as_approximate_float,
    )?;
    env.add_member_overload("add", "quantity_add", q(), vec![q()], add)?;
    env.add_member_overload("add", "quantity_add_int", q(), vec![INT_TYPE], add)?;
    env.add_member_overload("sub", "quantity_sub", q(), vec![q()], sub)?;
    env.add_member_overload("sub", "quantity_sub_int", q(), vec![INT_TYPE], sub)?;
    env.add_member_overload("isLessThan", "quantity_less", q(), vec![q()], is_less_than)?;
    env.add_member_overload(
        "isGreaterThan",
        "quantity_greater",
        q(),
        vec![q()],
        is_greater_than,
    )?;
    env.add_member_overload(
        "compareTo",
        "quantity_compare_to",
        q(),
        vec![q()],
        compare_to,
    )?;
    Ok(())
}

fn receiver(args: &Args<'_, '_>, function: &str) -> Result<Quantity, ExecutionError> {
    with_opaque(args, 0, function, |q: &Quantity| *q)
}

/// The operand: a quantity, or an int.
fn operand(args: &Args<'_, '_>, function: &str) -> Result<Quantity, ExecutionError> {
    match int_arg(args, 1, function) {
        Ok(n) => Ok(Quantity::from_int(n)),
        Err(_) => with_opaque(args, 1, function, |q: &Quantity| *q),
    }
}

fn to_quantity<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let q = Quantity::parse(str_arg(&args, 0, "quantity")?).map_err(|e| error("quantity", e))?;
    ret_opaque(q)
}

fn is_quantity<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let raw = str_arg(&args, 0, "isQuantity")?;
    ret(Value::Bool(Quantity::parse(raw).is_ok()))
}

fn sign<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    ret(Value::Int(receiver(&args, "sign")?.sign()))
}

fn is_integer<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    ret(Value::Bool(
        receiver(&args, "isInteger")?.as_i64().is_some(),
    ))
}

fn as_integer<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let n = receiver(&args, "asInteger")?
        .as_i64()
        .ok_or_else(|| error("asInteger", "cannot convert value to integer"))?;
    ret(Value::Int(n))
}

fn as_approximate_float<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    ret(Value::Float(
        receiver(&args, "asApproximateFloat")?.as_f64(),
    ))
}

fn add<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let sum = receiver(&args, "add")?
        .add(&operand(&args, "add")?)
        .map_err(|e| error("add", e))?;
    ret_opaque(sum)
}

fn sub<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let difference = receiver(&args, "sub")?
        .sub(&operand(&args, "sub")?)
        .map_err(|e| error("sub", e))?;
    ret_opaque(difference)
}

fn ordering(args: &Args<'_, '_>, function: &str) -> Result<Ordering, ExecutionError> {
    Ok(receiver(args, function)?.compare(&operand(args, function)?))
}

comparisons!(ordering);

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_error, assert_true};
    use super::Quantity;

    #[test]
    fn documented_examples() {
        assert_true(&[
            "quantity('1.5G') == quantity('1500M')",
            "quantity('200k').asInteger() == 200000",
            "isQuantity('1.3G')",
            "isQuantity('1.3Gi')",
            "!isQuantity('1,3G')",
            "isQuantity('10000k')",
            "!isQuantity('200K')",
            "!isQuantity('Three')",
            "!isQuantity('Mi')",
            "quantity('50000000G').isInteger()",
            "quantity('50k').isInteger()",
            "!quantity('9999999999999999999999999999999999999G').isInteger()",
            "quantity('50k').asInteger() == 50000",
            "quantity('50k').sub(20000).asApproximateFloat() == 30000.0",
            "quantity('50k').add(quantity('20k')) == quantity('70k')",
            "quantity('50k').add(20) == quantity('50020')",
            "quantity('50k').sub(quantity('20k')) == quantity('30k')",
            "quantity('50k').sub(20000) == quantity('30k')",
            "quantity('50k').add(20).sub(quantity('100k')).sub(-50000) == quantity('20')",
            "quantity('200M').compareTo(quantity('0.2G')) == 0",
            "quantity('50M').compareTo(quantity('50Mi')) == -1",
            "quantity('50Mi').compareTo(quantity('50M')) == 1",
            "quantity('150Mi').isGreaterThan(quantity('100Mi'))",
            "!quantity('50Mi').isGreaterThan(quantity('100Mi'))",
            "quantity('50M').isLessThan(quantity('100M'))",
            "!quantity('100M').isLessThan(quantity('50M'))",
        ]);
        assert_error(&[
            ("quantity('200K')", "unable to parse quantity's suffix"),
            ("quantity('Three')", "quantities must match"),
            ("quantity('Mi')", "quantities must match"),
            (
                "quantity('9999999999999999999999999999999999999G').asInteger()",
                "cannot convert value to integer",
            ),
        ]);
    }

    #[test]
    fn kubernetes_test_cases() {
        assert_true(&[
            "isQuantity('20')",
            "isQuantity('20M')",
            "isQuantity('20Mi')",
            "!isQuantity('20Mo')",
            "!isQuantity('10Mm')",
            "quantity('200M') == quantity('200M')",
            "quantity('200M') == quantity('0.2G') && quantity('0.2G') == quantity('200M')",
            "quantity('2M') == quantity('0.002G') && quantity('2000k') == quantity('2M')",
            "quantity('200M') != quantity('0.3G')",
            "quantity('50M').isLessThan(quantity('50Mi'))",
            "quantity('50k').add(quantity('20')) == quantity('50.02k')",
            "!quantity('50k').add(20).isLessThan(quantity('50020'))",
            "quantity('50k').sub(quantity('20')) == quantity('49.98k')",
            "quantity('50k').sub(20) == quantity('49980')",
            "quantity('50k').add(20).sub(quantity('100k')).asInteger() == -49980",
            "quantity('50').isInteger()",
            "quantity('50.703k').asApproximateFloat() == 50703.0",
            "quantity('-1.5').sign() == -1",
            "quantity('0').sign() == 0",
            "quantity('1e3') == quantity('1k')",
            "quantity('1E-3') == quantity('1m')",
            "quantity('1Ki').asInteger() == 1024",
            "quantity('0.5m') == quantity('500u')",
        ]);
    }

    #[test]
    fn rounds_up_to_nano() {
        assert_eq!(Quantity::parse("0.1n"), Quantity::parse("1n"));
        assert_eq!(Quantity::parse("-0.1n"), Quantity::parse("-1n"));
        assert_eq!(
            Quantity::parse("1.0000000001"),
            Quantity::parse("1.000000001")
        );
    }
}
