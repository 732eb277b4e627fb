//! Durations as Go's `time.ParseDuration` reads them: an optional sign, then numbers (each with an
//! optional fraction) each followed by a unit, or a bare `0`. Gatekeeper's OPA built-ins and
//! Kyverno's pattern operators read this grammar; each brings its units and adds the terms up in
//! its own arithmetic.

/// Go's units, in nanoseconds.
const GO_UNITS: &[(&str, i128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("μs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60 * 1_000_000_000),
    ("h", 3_600 * 1_000_000_000),
];

/// One number of a duration with its unit: `1.5h` is the digits `1` and `5` at the scale of an
/// hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Term<'a> {
    /// The digits before the point (empty in `.5s`).
    pub whole: &'a str,
    /// The digits after the point (empty in `5s` and `5.s`).
    pub fraction: &'a str,
    /// The unit, in nanoseconds.
    pub scale: i128,
}

/// `text` read as a duration in Go's units and `more` (each with its scale in nanoseconds):
/// whether it is negative, and its terms (none for `0`); `None` when it is not a duration. A unit
/// is the longest one that follows a number.
pub fn terms<'a>(text: &'a str, more: &[(&str, i128)]) -> Option<(bool, Vec<Term<'a>>)> {
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Some((negative, Vec::new()));
    }
    if rest.is_empty() {
        return None;
    }
    let mut terms = Vec::new();
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let whole = &rest[..digits];
        rest = &rest[digits..];
        let mut fraction = "";
        if let Some(after) = rest.strip_prefix('.') {
            let count = after.bytes().take_while(u8::is_ascii_digit).count();
            fraction = &after[..count];
            rest = &after[count..];
        }
        if whole.is_empty() && fraction.is_empty() {
            return None;
        }
        let (unit, scale) = GO_UNITS
            .iter()
            .chain(more)
            .filter(|(u, _)| rest.starts_with(u))
            .max_by_key(|(u, _)| u.len())?;
        rest = &rest[unit.len()..];
        terms.push(Term {
            whole,
            fraction,
            scale: *scale,
        });
    }
    Some((negative, terms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_cut_into_terms() {
        let term = |whole, fraction, scale| Term {
            whole,
            fraction,
            scale,
        };
        assert_eq!(
            terms("-1.5h30ms", &[]),
            Some((
                true,
                vec![term("1", "5", 3_600_000_000_000), term("30", "", 1_000_000)]
            ))
        );
        assert_eq!(
            terms(".5µs", &[]),
            Some((false, vec![term("", "5", 1_000)]))
        );
        assert_eq!(terms("+0", &[]), Some((false, vec![])));
        for wrong in ["", "-", "1", ".s", "1.2.3s", "1sm", "1d", "h"] {
            assert_eq!(terms(wrong, &[]), None, "{wrong}");
        }
        let day = 86_400_000_000_000;
        assert_eq!(
            terms("1d", &[("d", day)]),
            Some((false, vec![term("1", "", day)]))
        );
    }
}
