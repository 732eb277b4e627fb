//! Kubernetes' URL library: `url()`, `isURL()`, and on `kubernetes.URL`: `getScheme()`,
//! `getHost()`, `getHostname()`, `getPort()`, `getEscapedPath()`, `getQuery()`.
//!
//! Kubernetes parses with Go's `net/url.ParseRequestURI`: an absolute URI or an absolute path,
//! no fragment splitting (`#` stays in the query or path), escapes checked, ports all digits.
//! [`GoUrl::parse_request_uri`] is a port of that behaviour, written for these functions (the
//! WHATWG parsing of the `url` crate differs: it normalises hosts and paths).

use std::collections::HashMap;
use std::sync::Arc;

use ::cel::common::types::STRING_TYPE;
use ::cel::objects::{Key, Map, Opaque};
use ::cel::{DeclarationError, Env, Value};

use super::{error, opaque_type, ret, ret_opaque, str_arg, with_opaque, Args, Ret};

/// The CEL type name of a URL.
pub const URL_TYPE: &str = "kubernetes.URL";

/// A parsed URL, with the fields of Go's `url.URL` these functions need.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GoUrl {
    pub scheme: String,
    pub opaque: String,
    pub host: String,
    pub path: String,
    pub raw_path: String,
    pub raw_query: String,
}

impl Opaque for GoUrl {
    fn runtime_type_name(&self) -> &str {
        URL_TYPE
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Path,
    Host,
    QueryComponent,
}

fn should_escape(c: u8, mode: Mode) -> bool {
    if c.is_ascii_alphanumeric() {
        return false;
    }
    if mode == Mode::Host && b"!$&'()*+,;=:[]<>\"".contains(&c) {
        return false;
    }
    match c {
        b'-' | b'_' | b'.' | b'~' => false,
        b'$' | b'&' | b'+' | b',' | b'/' | b':' | b';' | b'=' | b'?' | b'@' => match mode {
            Mode::Path => c == b'?',
            Mode::QueryComponent | Mode::Host => true,
        },
        _ => true,
    }
}

fn unhex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Go's `unescape`: percent-decoding, checked for the part of the URL `mode` names.
fn unescape(s: &str, mode: Mode) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let (Some(hi), Some(lo)) = (
                    b.get(i + 1).copied().and_then(unhex),
                    b.get(i + 2).copied().and_then(unhex),
                ) else {
                    let end = (i + 3).min(b.len());
                    return Err(format!(
                        "invalid URL escape {:?}",
                        String::from_utf8_lossy(&b[i..end])
                    ));
                };
                if mode == Mode::Host && hi < 8 && &s[i..i + 3] != "%25" {
                    return Err(format!("invalid URL escape {:?}", &s[i..i + 3]));
                }
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' if mode == Mode::QueryComponent => {
                out.push(b' ');
                i += 1;
            }
            c => {
                if mode == Mode::Host && c < 0x80 && should_escape(c, mode) {
                    return Err(format!(
                        "invalid character {:?} in host name",
                        (c as char).to_string()
                    ));
                }
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Go's `escape` for a path.
fn escape_path(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &c in s.as_bytes() {
        if should_escape(c, Mode::Path) {
            out.push_str(&format!("%{c:02X}"));
        } else {
            out.push(c as char);
        }
    }
    out
}

fn valid_encoded_path(s: &str) -> bool {
    s.bytes()
        .all(|c| b"!$&'()*+,;=:@[]%".contains(&c) || !should_escape(c, Mode::Path))
}

fn valid_optional_port(port: &str) -> bool {
    match port.strip_prefix(':') {
        _ if port.is_empty() => true,
        Some(digits) => digits.bytes().all(|b| b.is_ascii_digit()),
        None => false,
    }
}

fn valid_userinfo(s: &str) -> bool {
    s.bytes()
        .all(|c| c.is_ascii_alphanumeric() || b"-._:~!$&'()*+,;=%@".contains(&c) || c >= 0x80)
}

fn parse_host(host: &str) -> Result<String, String> {
    if host.starts_with('[') {
        let Some(i) = host.rfind(']') else {
            return Err("missing ']' in host".to_owned());
        };
        let port = &host[i + 1..];
        if !valid_optional_port(port) {
            return Err(format!("invalid port {port:?} after host"));
        }
    } else if let Some(i) = host.rfind(':') {
        let port = &host[i..];
        if !valid_optional_port(port) {
            return Err(format!("invalid port {port:?} after host"));
        }
    }
    unescape(host, Mode::Host)
}

impl GoUrl {
    /// Parses `raw` as Go's `url.ParseRequestURI` does.
    ///
    /// # Errors
    ///
    /// Go's message, e.g. `parse "../x": invalid URI for request`.
    pub fn parse_request_uri(raw: &str) -> Result<GoUrl, String> {
        Self::parse_inner(raw).map_err(|e| format!("parse {raw:?}: {e}"))
    }

    fn parse_inner(raw: &str) -> Result<GoUrl, String> {
        if raw.bytes().any(|b| b < 0x20 || b == 0x7f) {
            return Err("net/url: invalid control character in URL".to_owned());
        }
        if raw.is_empty() {
            return Err("empty url".to_owned());
        }
        let mut url = GoUrl::default();
        if raw == "*" {
            url.path = "*".to_owned();
            return Ok(url);
        }
        let mut rest = raw;
        for (i, c) in raw.bytes().enumerate() {
            if c.is_ascii_alphabetic() {
                continue;
            }
            if c.is_ascii_digit() || c == b'+' || c == b'-' || c == b'.' {
                if i == 0 {
                    break;
                }
                continue;
            }
            if c == b':' {
                if i == 0 {
                    return Err("missing protocol scheme".to_owned());
                }
                url.scheme = raw[..i].to_ascii_lowercase();
                rest = &raw[i + 1..];
            }
            break;
        }
        if rest.ends_with('?') && rest.matches('?').count() == 1 {
            rest = &rest[..rest.len() - 1];
        } else if let Some((r, q)) = rest.split_once('?') {
            url.raw_query = q.to_owned();
            rest = r;
        }
        if !rest.starts_with('/') {
            if !url.scheme.is_empty() {
                url.opaque = rest.to_owned();
                return Ok(url);
            }
            return Err("invalid URI for request".to_owned());
        }
        if !url.scheme.is_empty() && rest.starts_with("//") {
            let after = &rest[2..];
            let (authority, path) = match after.find('/') {
                Some(i) => (&after[..i], &after[i..]),
                None => (after, ""),
            };
            let host = match authority.rfind('@') {
                Some(i) => {
                    if !valid_userinfo(&authority[..i]) {
                        return Err("net/url: invalid userinfo".to_owned());
                    }
                    &authority[i + 1..]
                }
                None => authority,
            };
            url.host = parse_host(host)?;
            rest = path;
        }
        url.path = unescape(rest, Mode::Path)?;
        if escape_path(&url.path) != rest {
            url.raw_path = rest.to_owned();
        }
        Ok(url)
    }

    /// Go's `EscapedPath`.
    pub fn escaped_path(&self) -> String {
        if !self.raw_path.is_empty()
            && valid_encoded_path(&self.raw_path)
            && unescape(&self.raw_path, Mode::Path).is_ok_and(|p| p == self.path)
        {
            return self.raw_path.clone();
        }
        if self.path == "*" {
            return "*".to_owned();
        }
        escape_path(&self.path)
    }

    /// The host without its port, and without brackets around an IPv6 address.
    pub fn hostname(&self) -> &str {
        let (host, _) = self.split_host_port();
        host.strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
    }

    /// The port, or "".
    pub fn port(&self) -> &str {
        self.split_host_port().1
    }

    fn split_host_port(&self) -> (&str, &str) {
        match self.host.rfind(':') {
            Some(i) if valid_optional_port(&self.host[i..]) => {
                (&self.host[..i], &self.host[i + 1..])
            }
            _ => (&self.host, ""),
        }
    }

    /// Go's `Query()`: each key with all its values, in order; malformed pairs skipped.
    pub fn query(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for pair in self.raw_query.split('&') {
            if pair.is_empty() || pair.contains(';') {
                continue;
            }
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let (Ok(k), Ok(v)) = (
                unescape(k, Mode::QueryComponent),
                unescape(v, Mode::QueryComponent),
            ) else {
                continue;
            };
            match out.iter_mut().find(|(key, _)| *key == k) {
                Some((_, values)) => values.push(v),
                None => out.push((k, vec![v])),
            }
        }
        out
    }
}

pub(crate) fn register(env: &mut Env) -> Result<(), DeclarationError> {
    let url = || opaque_type(URL_TYPE);
    env.add_type(url())?;
    env.add_overload("url", "string_to_url", vec![STRING_TYPE], to_url)?;
    env.add_overload("isURL", "is_url_string", vec![STRING_TYPE], is_url)?;
    env.add_member_overload("getScheme", "url_get_scheme", url(), vec![], get_scheme)?;
    env.add_member_overload("getHost", "url_get_host", url(), vec![], get_host)?;
    env.add_member_overload(
        "getHostname",
        "url_get_hostname",
        url(),
        vec![],
        get_hostname,
    )?;
    env.add_member_overload("getPort", "url_get_port", url(), vec![], get_port)?;
    env.add_member_overload(
        "getEscapedPath",
        "url_get_escaped_path",
        url(),
        vec![],
        get_escaped_path,
    )?;
    env.add_member_overload("getQuery", "url_get_query", url(), vec![], get_query)?;
    Ok(())
}

fn to_url<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let url = GoUrl::parse_request_uri(str_arg(&args, 0, "url")?).map_err(|e| {
        error(
            "url",
            format!("URL parse error during conversion from string: {e}"),
        )
    })?;
    ret_opaque(url)
}

fn is_url<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let raw = str_arg(&args, 0, "isURL")?;
    ret(Value::Bool(GoUrl::parse_request_uri(raw).is_ok()))
}

fn getter<'b, 'v>(args: Args<'b, 'v>, function: &str, get: fn(&GoUrl) -> String) -> Ret<'b, 'v> {
    let s = with_opaque(&args, 0, function, get)?;
    ret(Value::from(s))
}

fn get_scheme<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    getter(args, "getScheme", |u| u.scheme.clone())
}

fn get_host<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    getter(args, "getHost", |u| u.host.clone())
}

fn get_hostname<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    getter(args, "getHostname", |u| u.hostname().to_owned())
}

fn get_port<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    getter(args, "getPort", |u| u.port().to_owned())
}

fn get_escaped_path<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    getter(args, "getEscapedPath", GoUrl::escaped_path)
}

fn get_query<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let query = with_opaque(&args, 0, "getQuery", GoUrl::query)?;
    let map: HashMap<Key, Value> = query
        .into_iter()
        .map(|(k, vs)| (Key::from(k), super::string_list(vs)))
        .collect();
    ret(Value::Map(Map { map: Arc::new(map) }))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_error, assert_true};

    #[test]
    fn documented_examples() {
        assert_true(&[
            "isURL('https://user:pass@example.com:80/path?query=val#fragment')",
            "isURL('/absolute-path')",
            "!isURL('https://a:b:c/')",
            "!isURL('../relative-path')",
            "url('/path').getScheme() == ''",
            "url('https://example.com/').getScheme() == 'https'",
            "url('https://example.com:80/').getHost() == 'example.com:80'",
            "url('https://example.com/').getHost() == 'example.com'",
            "url('https://[::1]:80/').getHost() == '[::1]:80'",
            "url('https://[::1]/').getHost() == '[::1]'",
            "url('/path').getHost() == ''",
            "url('https://example.com:80/').getHostname() == 'example.com'",
            "url('https://127.0.0.1:80/').getHostname() == '127.0.0.1'",
            "url('https://[::1]:80/').getHostname() == '::1'",
            "url('/path').getHostname() == ''",
            "url('https://example.com:80/').getPort() == '80'",
            "url('https://example.com/').getPort() == ''",
            "url('/path').getPort() == ''",
            "url('https://example.com/path').getEscapedPath() == '/path'",
            "url('https://example.com/path with spaces/').getEscapedPath() == '/path%20with%20spaces/'",
            "url('https://example.com').getEscapedPath() == ''",
            "url('https://example.com/path?k1=a&k2=b&k2=c').getQuery() == {'k1': ['a'], 'k2': ['b', 'c']}",
            "url('https://example.com/path?key with spaces=value with spaces').getQuery() == {'key with spaces': ['value with spaces']}",
            "url('https://example.com/path?').getQuery() == {}",
            "url('https://example.com/path').getQuery() == {}",
        ]);
        assert_error(&[
            ("url('https://a:b:c/')", "invalid port"),
            ("url('../relative-path')", "invalid URI for request"),
        ]);
    }

    #[test]
    fn go_details() {
        assert_true(&[
            "url('HTTPS://Example.com/').getScheme() == 'https'",
            "url('https://example.com/a%2Fb').getEscapedPath() == '/a%2Fb'",
            "url('https://example.com/p?a=1%202&b=x+y').getQuery() == {'a': ['1 2'], 'b': ['x y']}",
            "url('https://example.com/p?a=1;b=2').getQuery() == {}",
            "url('mailto:someone@example.com').getScheme() == 'mailto'",
            "url('https://example.com/') == url('https://example.com/')",
            "!isURL('https://exa mple.com/')",
            "!isURL('https://example.com/%zz')",
            "!isURL('')",
        ]);
    }
}
