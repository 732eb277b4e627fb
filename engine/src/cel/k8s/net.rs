//! Kubernetes' IP and CIDR libraries (since 1.30): `ip()`, `isIP()`, `ip.isCanonical()`,
//! `<IP>.family()`, `isUnspecified()`, `isLoopback()`, `isLinkLocalMulticast()`,
//! `isLinkLocalUnicast()`, `isGlobalUnicast()`, `string(<IP>)`; `cidr()`, `isCIDR()`,
//! `<CIDR>.containsIP(<IP|string>)`, `containsCIDR(<CIDR|string>)`, `ip()`, `masked()`,
//! `prefixLength()`, `string(<CIDR>)`.
//!
//! Parsing follows Go's `net/netip` as Kubernetes uses it: dotted-quad IPv4 without leading
//! zeros, IPv6 with an optional trailing IPv4 part, no zones, and no IPv4-mapped IPv6 addresses.
//! A CIDR may have bits set after its prefix (`cidr('192.168.0.1/24')` is valid; `masked()`
//! clears them), and its prefix length has no sign and no leading zeros.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ::cel::common::types::STRING_TYPE;
use ::cel::objects::Opaque;
use ::cel::{DeclarationError, Env, ExecutionError, Value};

use super::{error, opaque_type, ret, ret_opaque, str_arg, with_opaque, Args, Ret};

/// The CEL type name of an IP address.
pub const IP_TYPE: &str = "net.IP";
/// The CEL type name of a CIDR.
pub const CIDR_TYPE: &str = "net.CIDR";

/// A `net.IP` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ip(pub IpAddr);

impl Opaque for Ip {
    fn runtime_type_name(&self) -> &str {
        IP_TYPE
    }
}

/// A `net.CIDR` value: an address and a prefix length, host bits kept as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub bits: u8,
}

impl Opaque for Cidr {
    fn runtime_type_name(&self) -> &str {
        CIDR_TYPE
    }
}

/// Parses an address as Kubernetes' `ip()` does.
///
/// # Errors
///
/// The message of Kubernetes' error for an invalid, zoned or IPv4-mapped address.
pub fn parse_ip(raw: &str) -> Result<IpAddr, String> {
    let bad = || {
        format!("IP Address {raw:?} parse error during conversion from string: ParseAddr({raw:?}): unable to parse IP")
    };
    if let Some((addr, _zone)) = raw.split_once('%') {
        if addr.contains(':') && addr.parse::<Ipv6Addr>().is_ok() {
            return Err(format!("IP address {raw:?} with zone value is not allowed"));
        }
        return Err(bad());
    }
    let addr: IpAddr = if raw.contains(':') {
        IpAddr::V6(raw.parse::<Ipv6Addr>().map_err(|_| bad())?)
    } else {
        IpAddr::V4(parse_ipv4(raw).ok_or_else(bad)?)
    };
    if let IpAddr::V6(v6) = addr {
        if v6.to_ipv4_mapped().is_some() {
            return Err(format!("IPv4-mapped IPv6 address {raw:?} is not allowed"));
        }
    }
    Ok(addr)
}

/// Four decimal octets, each without a leading zero, as Go's `netip` accepts them.
fn parse_ipv4(raw: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = raw.split('.');
    for octet in &mut octets {
        let part = parts.next()?;
        if part.is_empty()
            || part.len() > 3
            || !part.bytes().all(|b| b.is_ascii_digit())
            || (part.len() > 1 && part.starts_with('0'))
        {
            return None;
        }
        *octet = part.parse().ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(Ipv4Addr::from(octets))
}

/// Parses a CIDR as Kubernetes' `cidr()` does.
///
/// # Errors
///
/// A message naming what is wrong.
pub fn parse_cidr(raw: &str) -> Result<Cidr, String> {
    let wrap = |why: String| {
        format!("network address parse error during conversion from string: network address parse error during conversion from string: {why}")
    };
    let Some((addr, bits)) = raw.rsplit_once('/') else {
        return Err(wrap(format!("netip.ParsePrefix({raw:?}): no '/'")));
    };
    if addr.contains('%') {
        return Err(wrap(format!(
            "netip.ParsePrefix({raw:?}): IPv6 zones cannot be present in a prefix"
        )));
    }
    let parsed: IpAddr = if addr.contains(':') {
        IpAddr::V6(
            addr.parse::<Ipv6Addr>()
                .map_err(|_| wrap(format!("netip.ParsePrefix({raw:?}): unable to parse IP")))?,
        )
    } else {
        IpAddr::V4(
            parse_ipv4(addr)
                .ok_or_else(|| wrap(format!("netip.ParsePrefix({raw:?}): unable to parse IP")))?,
        )
    };
    let max = if parsed.is_ipv4() { 32 } else { 128 };
    let bad_bits = || {
        wrap(format!(
            "netip.ParsePrefix({raw:?}): bad bits after slash: {bits:?}"
        ))
    };
    if bits.is_empty()
        || !bits.bytes().all(|b| b.is_ascii_digit())
        || (bits.len() > 1 && bits.starts_with('0'))
    {
        return Err(bad_bits());
    }
    let bits: u32 = bits.parse().map_err(|_| bad_bits())?;
    if bits > max {
        return Err(wrap(format!(
            "netip.ParsePrefix({raw:?}): prefix length out of range"
        )));
    }
    if let IpAddr::V6(v6) = parsed {
        if v6.to_ipv4_mapped().is_some() {
            return Err(format!("network address parse error during conversion from string: IPv4-mapped IPv6 address {raw:?} is not allowed"));
        }
    }
    Ok(Cidr {
        addr: parsed,
        bits: bits as u8,
    })
}

/// The address with only its first `bits` bits kept.
fn mask(addr: IpAddr, bits: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let m = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(bits))
            };
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & m))
        }
        IpAddr::V6(v6) => {
            let m = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(bits))
            };
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & m))
        }
    }
}

impl Cidr {
    /// Whether `ip` is inside this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.bits) == mask(self.addr, self.bits)
    }

    /// Whether every address of `other` is inside this network.
    pub fn contains_cidr(&self, other: &Cidr) -> bool {
        other.addr.is_ipv4() == self.addr.is_ipv4()
            && self.bits <= other.bits
            && mask(other.addr, self.bits) == mask(self.addr, self.bits)
    }

    /// The network with its host bits cleared.
    pub fn masked(&self) -> Cidr {
        Cidr {
            addr: mask(self.addr, self.bits),
            bits: self.bits,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.bits)
    }
}

pub(crate) fn register(env: &mut Env) -> Result<(), DeclarationError> {
    let ip = || opaque_type(IP_TYPE);
    let cidr = || opaque_type(CIDR_TYPE);
    env.add_type(ip())?;
    env.add_type(cidr())?;

    env.add_overload("ip", "string_to_ip", vec![STRING_TYPE], string_to_ip)?;
    env.add_overload("string", "ip_to_string", vec![ip()], ip_to_string)?;
    env.add_overload("isIP", "is_ip", vec![STRING_TYPE], is_ip)?;
    env.add_overload(
        "ip.isCanonical",
        "ip_is_canonical",
        vec![STRING_TYPE],
        is_canonical,
    )?;
    env.add_member_overload("family", "ip_family", ip(), vec![], family)?;
    env.add_member_overload(
        "isUnspecified",
        "ip_is_unspecified",
        ip(),
        vec![],
        unspecified,
    )?;
    env.add_member_overload("isLoopback", "ip_is_loopback", ip(), vec![], loopback)?;
    env.add_member_overload(
        "isLinkLocalMulticast",
        "ip_is_link_local_multicast",
        ip(),
        vec![],
        link_local_multicast,
    )?;
    env.add_member_overload(
        "isLinkLocalUnicast",
        "ip_is_link_local_unicast",
        ip(),
        vec![],
        link_local_unicast,
    )?;
    env.add_member_overload(
        "isGlobalUnicast",
        "ip_is_global_unicast",
        ip(),
        vec![],
        global_unicast,
    )?;

    env.add_overload("cidr", "string_to_cidr", vec![STRING_TYPE], string_to_cidr)?;
    env.add_overload("string", "cidr_to_string", vec![cidr()], cidr_to_string)?;
    env.add_overload("isCIDR", "is_cidr", vec![STRING_TYPE], is_cidr)?;
    env.add_member_overload(
        "containsIP",
        "cidr_contains_ip_ip",
        cidr(),
        vec![ip()],
        contains_ip,
    )?;
    env.add_member_overload(
        "containsIP",
        "cidr_contains_ip_string",
        cidr(),
        vec![STRING_TYPE],
        contains_ip,
    )?;
    env.add_member_overload(
        "containsCIDR",
        "cidr_contains_cidr",
        cidr(),
        vec![cidr()],
        contains_cidr,
    )?;
    env.add_member_overload(
        "containsCIDR",
        "cidr_contains_cidr_string",
        cidr(),
        vec![STRING_TYPE],
        contains_cidr,
    )?;
    env.add_member_overload("ip", "cidr_ip", cidr(), vec![], cidr_ip)?;
    env.add_member_overload("masked", "cidr_masked", cidr(), vec![], masked)?;
    env.add_member_overload(
        "prefixLength",
        "cidr_prefix_length",
        cidr(),
        vec![],
        prefix_length,
    )?;
    Ok(())
}

fn string_to_ip<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let raw = str_arg(&args, 0, "ip")?;
    let addr = parse_ip(raw).map_err(|e| error("ip", e))?;
    ret_opaque(Ip(addr))
}

fn ip_to_string<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let s = with_opaque(&args, 0, "string", |ip: &Ip| ip.0.to_string())?;
    ret(Value::from(s))
}

fn is_ip<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let raw = str_arg(&args, 0, "isIP")?;
    ret(Value::Bool(parse_ip(raw).is_ok()))
}

fn is_canonical<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let raw = str_arg(&args, 0, "ip.isCanonical")?;
    let addr = parse_ip(raw).map_err(|e| error("ip.isCanonical", e))?;
    ret(Value::Bool(addr.to_string() == raw))
}

fn family<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let n = with_opaque(
        &args,
        0,
        "family",
        |ip: &Ip| if ip.0.is_ipv4() { 4 } else { 6 },
    )?;
    ret(Value::Int(n))
}

fn ip_predicate<'b, 'v>(
    args: Args<'b, 'v>,
    function: &str,
    test: fn(IpAddr) -> bool,
) -> Ret<'b, 'v> {
    let b = with_opaque(&args, 0, function, |ip: &Ip| test(ip.0))?;
    ret(Value::Bool(b))
}

/// The member functions that test an address.
macro_rules! ip_predicates {
    ($($name:ident => $function:literal, $test:ident;)*) => {
        $(
            fn $name<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
                ip_predicate(args, $function, $test)
            }
        )*
    };
}

ip_predicates! {
    unspecified => "isUnspecified", is_unspecified;
    loopback => "isLoopback", is_loopback;
    link_local_multicast => "isLinkLocalMulticast", is_link_local_multicast;
    link_local_unicast => "isLinkLocalUnicast", is_link_local_unicast;
    global_unicast => "isGlobalUnicast", is_global_unicast;
}

fn is_unspecified(ip: IpAddr) -> bool {
    ip.is_unspecified()
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.octets()[0] == 127,
        IpAddr::V6(v6) => v6 == Ipv6Addr::LOCALHOST,
    }
}

fn is_multicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.octets()[0] & 0xf0 == 0xe0,
        IpAddr::V6(v6) => v6.octets()[0] == 0xff,
    }
}

fn is_link_local_multicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            o[0] == 224 && o[1] == 0 && o[2] == 0
        }
        // ff02::/16, whatever the flags of the second nibble, as Go's netip has it
        IpAddr::V6(v6) => v6.segments()[0] & 0xff0f == 0xff02,
    }
}

fn is_link_local_unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            o[0] == 169 && o[1] == 254
        }
        IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
    }
}

/// Go's `IsGlobalUnicast`: private and unique-local addresses count as global.
fn is_global_unicast(ip: IpAddr) -> bool {
    if let IpAddr::V4(v4) = ip {
        if v4.is_unspecified() || v4.is_broadcast() {
            return false;
        }
    }
    !ip.is_unspecified() && !is_loopback(ip) && !is_multicast(ip) && !is_link_local_unicast(ip)
}

fn string_to_cidr<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let raw = str_arg(&args, 0, "cidr")?;
    let cidr = parse_cidr(raw).map_err(|e| error("cidr", e))?;
    ret_opaque(cidr)
}

fn cidr_to_string<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let s = with_opaque(&args, 0, "string", |c: &Cidr| c.to_string())?;
    ret(Value::from(s))
}

fn is_cidr<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let raw = str_arg(&args, 0, "isCIDR")?;
    ret(Value::Bool(parse_cidr(raw).is_ok()))
}

/// The second argument as an address: an IP, or a string parsed as one.
fn ip_operand(args: &Args<'_, '_>, function: &str) -> Result<IpAddr, ExecutionError> {
    if let Ok(raw) = str_arg(args, 1, function) {
        return parse_ip(raw).map_err(|e| error(function, e));
    }
    with_opaque(args, 1, function, |ip: &Ip| ip.0)
}

fn contains_ip<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let ip = ip_operand(&args, "containsIP")?;
    let b = with_opaque(&args, 0, "containsIP", |c: &Cidr| c.contains(ip))?;
    ret(Value::Bool(b))
}

fn contains_cidr<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let other = match str_arg(&args, 1, "containsCIDR") {
        Ok(raw) => parse_cidr(raw).map_err(|e| error("containsCIDR", e))?,
        Err(_) => with_opaque(&args, 1, "containsCIDR", |c: &Cidr| *c)?,
    };
    let b = with_opaque(&args, 0, "containsCIDR", |c: &Cidr| c.contains_cidr(&other))?;
    ret(Value::Bool(b))
}

fn cidr_ip<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let addr = with_opaque(&args, 0, "ip", |c: &Cidr| c.addr)?;
    ret_opaque(Ip(addr))
}

fn masked<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let m = with_opaque(&args, 0, "masked", |c: &Cidr| c.masked())?;
    ret_opaque(m)
}

fn prefix_length<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let bits = with_opaque(&args, 0, "prefixLength", |c: &Cidr| i64::from(c.bits))?;
    ret(Value::Int(bits))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_error, assert_true};

    #[test]
    fn ip_documented_examples() {
        assert_true(&[
            "isIP('127.0.0.1')",
            "isIP('::1')",
            "!isIP('127.0.0.256')",
            "!isIP(':::1')",
            "ip.isCanonical('127.0.0.1')",
            "ip.isCanonical('2001:db8::abcd')",
            "!ip.isCanonical('2001:DB8::ABCD')",
            "!ip.isCanonical('2001:db8::0:0:0:abcd')",
            "ip('127.0.0.1').family() == 4",
            "ip('::1').family() == 6",
            "ip('0.0.0.0').isUnspecified()",
            "!ip('127.0.0.1').isUnspecified()",
            "ip('::').isUnspecified()",
            "!ip('::1').isUnspecified()",
            "ip('127.0.0.1').isLoopback()",
            "!ip('192.168.0.1').isLoopback()",
            "ip('::1').isLoopback()",
            "!ip('2001:db8::abcd').isLoopback()",
            "ip('224.0.0.1').isLinkLocalMulticast()",
            "!ip('224.0.1.1').isLinkLocalMulticast()",
            "ip('ff02::1').isLinkLocalMulticast()",
            "!ip('fd00::1').isLinkLocalMulticast()",
            "ip('169.254.169.254').isLinkLocalUnicast()",
            "!ip('192.168.0.1').isLinkLocalUnicast()",
            "ip('fe80::1').isLinkLocalUnicast()",
            "!ip('fd80::1').isLinkLocalUnicast()",
            "ip('192.168.0.1').isGlobalUnicast()",
            "!ip('255.255.255.255').isGlobalUnicast()",
            "ip('2001:db8::abcd').isGlobalUnicast()",
            "!ip('ff00::1').isGlobalUnicast()",
            "ip('127.0.0.1') == ip('127.0.0.1')",
            "ip('::1') != ip('127.0.0.1')",
            "string(ip('2001:DB8::0:0:0:abcd')) == '2001:db8::abcd'",
            "type(ip('::1')) == net.IP",
        ]);
        assert_error(&[
            ("ip('127.0.0.256')", "parse error"),
            ("ip(':::1')", "parse error"),
            ("ip('127.0.0.01')", "parse error"),
            ("ip('::ffff:1.2.3.4')", "IPv4-mapped IPv6 address"),
            ("ip('fe80::1%eth0')", "zone value is not allowed"),
        ]);
    }

    #[test]
    fn cidr_documented_examples() {
        assert_true(&[
            "isCIDR('192.168.0.0/16')",
            "isCIDR('::1/128')",
            "!isCIDR('192.168.0.0/33')",
            "!isCIDR('::1/129')",
            "!isCIDR('192.168.0.0/016')",
            "cidr('192.168.0.0/24').containsIP(ip('192.168.0.1'))",
            "!cidr('192.168.0.0/24').containsIP(ip('192.168.1.1'))",
            "cidr('192.168.0.0/24').containsIP('192.168.0.1')",
            "!cidr('192.168.0.0/24').containsIP('192.168.1.1')",
            "cidr('192.168.0.0/16').containsCIDR(cidr('192.168.10.0/24'))",
            "!cidr('192.168.1.0/24').containsCIDR(cidr('192.168.2.0/24'))",
            "cidr('192.168.0.0/16').containsCIDR('192.168.10.0/24')",
            "!cidr('192.168.1.0/24').containsCIDR('192.168.2.0/24')",
            "cidr('192.168.0.1/24').ip() == ip('192.168.0.1')",
            "cidr('192.168.0.1/24').ip().family() == 4",
            "cidr('::1/128').ip() == ip('::1')",
            "cidr('::1/128').ip().family() == 6",
            "cidr('192.168.0.0/24').masked() == cidr('192.168.0.0/24')",
            "cidr('192.168.0.1/24').masked() == cidr('192.168.0.0/24')",
            "cidr('192.168.0.0/24') == cidr('192.168.0.0/24').masked()",
            "cidr('192.168.0.1/24') != cidr('192.168.0.1/24').masked()",
            "cidr('192.168.0.0/16').prefixLength() == 16",
            "cidr('::1/128').prefixLength() == 128",
            "string(cidr('192.168.0.1/24').masked()) == '192.168.0.0/24'",
            "!cidr('::/0').containsIP('1.2.3.4')",
        ]);
        assert_error(&[
            ("cidr('192.168.0.0/33')", "network address parse error"),
            ("cidr('::1/129')", "network address parse error"),
            ("cidr('::ffff:1.2.3.4/120')", "IPv4-mapped"),
            ("cidr('192.168.0.0/24').containsIP('nope')", "parse error"),
        ]);
    }
}
