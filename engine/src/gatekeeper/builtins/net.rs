//! `net.cidr_intersects`, `net.cidr_overlap`, `net.cidr_contains_matches` and `net.cidr_merge`,
//! which regorus 0.14.1 does not have, with OPA's rules: addresses are compared in one 128-bit space
//! where IPv4 sits at `::ffff:a.b.c.d`; an IPv4 address without a prefix given to `cidr_merge` takes
//! its classful mask (as Go's `DefaultMask` gives), an IPv6 one is refused.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use regorus::Value;

use super::{string_arg, type_name, Builtin};

pub(super) const BUILTINS: &[(&str, u8, Builtin)] = &[
    ("net.cidr_intersects", 2, intersects),
    ("net.cidr_overlap", 2, overlap),
    ("net.cidr_contains_matches", 2, contains_matches),
    ("net.cidr_merge", 1, merge),
];

/// Where IPv4 addresses sit in the 128-bit space.
const V4_MAPPED: u128 = 0xffff_0000_0000;

/// A network: its first address in the 128-bit space, its prefix length there, and whether it was
/// written as IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Net {
    first: u128,
    prefix: u32,
    v4: bool,
}

impl Net {
    fn last(&self) -> u128 {
        self.first | host_mask(self.prefix)
    }

    fn contains(&self, address: u128) -> bool {
        address & !host_mask(self.prefix) == self.first
    }

    fn contains_net(&self, other: &Net) -> bool {
        self.v4 == other.v4 && self.prefix <= other.prefix && self.contains(other.first)
    }
}

fn host_mask(prefix: u32) -> u128 {
    u128::MAX.checked_shr(prefix).unwrap_or(0)
}

fn address_bits(address: IpAddr) -> (u128, bool) {
    match address {
        IpAddr::V4(v4) => (V4_MAPPED | u128::from(u32::from(v4)), true),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => (V4_MAPPED | u128::from(u32::from(v4)), true),
            None => (u128::from(v6), false),
        },
    }
}

/// `a.b.c.d/n` or `x::y/n`, as Go's `net.ParseCIDR` reads it (the address is masked).
fn parse_cidr(text: &str) -> Result<Net, String> {
    let invalid = || format!("invalid CIDR address: {text}");
    let (address, prefix) = text.split_once('/').ok_or_else(invalid)?;
    if prefix.is_empty() || prefix.len() > 3 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let prefix: u32 = prefix.parse().map_err(|_| invalid())?;
    let address: IpAddr = address.parse().map_err(|_| invalid())?;
    let (bits, v4) = match address {
        IpAddr::V4(v4) => (V4_MAPPED | u128::from(u32::from(v4)), true),
        IpAddr::V6(v6) => (u128::from(v6), false),
    };
    let width = if v4 { 32 } else { 128 };
    if prefix > width {
        return Err(invalid());
    }
    let prefix = prefix + (128 - width);
    Ok(Net {
        first: bits & !host_mask(prefix),
        prefix,
        v4,
    })
}

fn cidr_arg(args: &[Value], index: usize) -> Result<Net, String> {
    parse_cidr(string_arg(args, index)?)
}

/// Whether the networks share an address.
fn intersects(args: &[Value]) -> Result<Value, String> {
    let (a, b) = (cidr_arg(args, 0)?, cidr_arg(args, 1)?);
    Ok(Value::from(
        a.v4 == b.v4 && (a.contains(b.first) || b.contains(a.first)),
    ))
}

/// Whether the network contains an address or all of another network (`net.cidr_contains`).
fn contains_text(cidr: &str, other: &str) -> Result<bool, String> {
    let net = parse_cidr(cidr)?;
    if let Ok(address) = other.parse::<IpAddr>() {
        let (bits, v4) = address_bits(address);
        return Ok(net.v4 == v4 && net.contains(bits));
    }
    let other = parse_cidr(other).map_err(|_| {
        format!("not a valid textual representation of an IP address or CIDR: {other}")
    })?;
    Ok(net.contains_net(&other))
}

/// OPA's deprecated name for `net.cidr_contains`.
fn overlap(args: &[Value]) -> Result<Value, String> {
    Ok(Value::from(contains_text(
        string_arg(args, 0)?,
        string_arg(args, 1)?,
    )?))
}

/// The (CIDR or address, key) pairs of an operand of `cidr_contains_matches`: a string is its own
/// key; an array's elements are keyed by index, a set's by themselves, an object's by their keys;
/// an element is a string or an array whose first item is the string.
fn match_terms(operand: usize, value: &Value) -> Result<Vec<(String, Value)>, String> {
    let text_of = |element: &Value| -> Result<String, String> {
        let bad = || format!("operand {operand}: element must be string or non-empty array");
        match element {
            Value::String(s) => Ok(s.to_string()),
            Value::Array(items) => match items.first() {
                Some(Value::String(s)) => Ok(s.to_string()),
                Some(other) => Err(format!(
                    "operand {operand} must be string but got {}",
                    type_name(other)
                )),
                None => Err(bad()),
            },
            _ => Err(bad()),
        }
    };
    match value {
        Value::String(s) => Ok(vec![(s.to_string(), value.clone())]),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, e)| Ok((text_of(e)?, Value::from(i))))
            .collect(),
        Value::Set(items) => items.iter().map(|e| Ok((text_of(e)?, e.clone()))).collect(),
        Value::Object(map) => map
            .iter()
            .map(|(k, e)| Ok((text_of(e)?, k.clone())))
            .collect(),
        other => Err(format!(
            "operand {operand} must be one of {{string, array, set, object}} but got {}",
            type_name(other)
        )),
    }
}

fn contains_matches(args: &[Value]) -> Result<Value, String> {
    let (Some(cidrs), Some(others)) = (args.first(), args.get(1)) else {
        return Err("two operands are needed".to_owned());
    };
    let cidrs = match_terms(1, cidrs)?;
    let others = match_terms(2, others)?;
    let mut found = BTreeSet::new();
    for (cidr, cidr_key) in &cidrs {
        for (other, other_key) in &others {
            if contains_text(cidr, other)? {
                found.insert(Value::from(vec![cidr_key.clone(), other_key.clone()]));
            }
        }
    }
    Ok(Value::from(found))
}

/// One element of `cidr_merge`'s operand as a network, and whether it was written as a network.
fn merge_element(element: &Value) -> Result<(Net, Option<String>), String> {
    let Value::String(text) = element else {
        return Err("element must be string".to_owned());
    };
    match text.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => {
            // Go's classful default mask: A /8, B /16, C /24.
            let prefix = match v4.octets()[0] {
                0..=127 => 8,
                128..=191 => 16,
                _ => 24,
            };
            let bits = V4_MAPPED | u128::from(u32::from(v4));
            let net = Net {
                first: bits & !host_mask(96 + prefix),
                prefix: 96 + prefix,
                v4: true,
            };
            // Unmerged, Go prints the address as written with the mask's length.
            Ok((net, Some(format!("{v4}/{prefix}"))))
        }
        Ok(IpAddr::V6(_)) => Err("IPv6 invalid: needs prefix length".to_owned()),
        Err(_) => parse_cidr(text).map(|net| (net, None)),
    }
}

fn net_text(net: &Net) -> String {
    if net.v4 || (net.first & !0xffff_ffff == V4_MAPPED && net.prefix >= 96) {
        let address = Ipv4Addr::from((net.first & 0xffff_ffff) as u32);
        format!("{address}/{}", net.prefix.saturating_sub(96))
    } else {
        format!("{}/{}", Ipv6Addr::from(net.first), net.prefix)
    }
}

/// The fewest networks that cover `first..=last` exactly.
fn range_to_nets(mut first: u128, last: u128, v4: bool) -> Vec<Net> {
    let mut nets = Vec::new();
    loop {
        // The largest block that starts at `first` and ends at or before `last`.
        let mut prefix = 128 - first.trailing_zeros().min(128);
        while prefix < 128 && first | host_mask(prefix) > last {
            prefix += 1;
        }
        let net = Net { first, prefix, v4 };
        nets.push(net);
        match net.last().checked_add(1) {
            Some(next) if next <= last && net.last() < last => first = next,
            _ => break,
        }
    }
    nets
}

/// A range being merged: first and last address, and the network as given (with its text for a
/// bare address) while it is not merged with another.
type Range = (u128, u128, Option<(Net, Option<String>)>);

fn merge(args: &[Value]) -> Result<Value, String> {
    let elements: Vec<&Value> = match args.first() {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(Value::Set(items)) => items.iter().collect(),
        _ => return Err("operand must be an array".to_owned()),
    };
    let mut ranges: Vec<Range> = Vec::new();
    for element in elements {
        let (net, text) = merge_element(element)?;
        ranges.push((net.first, net.last(), Some((net, text))));
    }
    ranges.sort_by_key(|(first, last, _)| (*last, *first));
    let mut i = ranges.len();
    while i > 1 {
        i -= 1;
        let previous = ranges[i].0.saturating_sub(1);
        if previous <= ranges[i - 1].1 {
            let first = ranges[i - 1].0.min(ranges[i].0);
            let last = ranges[i].1;
            ranges[i - 1] = (first, last, None);
            ranges.remove(i);
        }
    }
    let mut merged = BTreeSet::new();
    for (first, last, given) in ranges {
        match given {
            Some((_, Some(text))) => {
                merged.insert(Value::from(text));
            }
            Some((net, None)) => {
                merged.insert(Value::from(net_text(&net)));
            }
            None => {
                let v4 = first & !0xffff_ffff == V4_MAPPED;
                for net in range_to_nets(first, last, v4) {
                    merged.insert(Value::from(net_text(&net)));
                }
            }
        }
    }
    Ok(Value::from(merged))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(value: Value) -> Vec<String> {
        match value {
            Value::Set(items) => items
                .iter()
                .map(|v| v.to_string().replace('"', ""))
                .collect(),
            other => vec![format!("{other:?}")],
        }
    }

    fn merged(items: &[&str]) -> Vec<String> {
        let items: Vec<Value> = items.iter().map(|s| Value::from(*s)).collect();
        strings(merge(&[Value::from(items)]).unwrap_or(Value::Undefined))
    }

    #[test]
    fn networks_merge_into_the_fewest_blocks() {
        assert_eq!(
            merged(&["192.0.128.0/24", "192.0.129.0/24"]),
            ["192.0.128.0/23"]
        );
        assert_eq!(
            merged(&["192.0.2.112/31", "192.0.2.116/31", "192.0.2.118/31"]),
            ["192.0.2.112/31", "192.0.2.116/30"]
        );
        assert_eq!(merged(&["192.0.2.112", "192.0.2.116/31"]), ["192.0.2.0/24"]);
        assert_eq!(merged(&["::/0", "fe80::1/128"]), ["::/0"]);
        assert_eq!(merged(&["0.0.0.0/0", "10.0.0.0/8"]), ["0.0.0.0/0"]);
        assert!(merge(&[Value::from(vec![Value::from("fe80::1")])]).is_err());
    }

    #[test]
    fn intersection_and_containment() {
        let two = |a: &str, b: &str| [Value::from(a), Value::from(b)];
        assert_eq!(
            intersects(&two("10.0.0.0/8", "10.1.0.0/16")),
            Ok(Value::from(true))
        );
        assert_eq!(
            intersects(&two("10.0.0.0/16", "10.1.0.0/16")),
            Ok(Value::from(false))
        );
        assert_eq!(
            intersects(&two("::/0", "10.1.0.0/16")),
            Ok(Value::from(false))
        );
        assert_eq!(
            overlap(&two("10.0.0.0/8", "10.2.3.4")),
            Ok(Value::from(true))
        );
        assert!(intersects(&two("10.0.0.0/33", "10.0.0.0/8")).is_err());
        let pairs = contains_matches(&[
            Value::from(vec![Value::from("1.1.2.0/24"), Value::from("1.1.1.0/24")]),
            Value::from(vec![Value::from("1.1.1.1"), Value::from("1.1.2.1")]),
        ]);
        assert_eq!(
            pairs.map(strings),
            Ok(vec!["[0,1]".to_owned(), "[1,0]".to_owned()])
        );
    }
}
