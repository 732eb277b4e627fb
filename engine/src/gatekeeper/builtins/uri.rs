//! `uri.parse` and `uri.is_valid`, which regorus 0.14.1 does not have. OPA parses with Go's
//! `net/url`; this is our own parser with the same rules for what OPA reports (scheme, host name,
//! port, path and its raw form, raw query, fragment) and for what it refuses: control characters, a
//! bad `%` escape, an ASCII `%` escape or a forbidden character in the host, bad userinfo, a port
//! that is not ASCII digits, a colon in the first segment of a relative path.

use std::collections::BTreeMap;

use regorus::Value;

use super::{string_arg, Builtin};

pub(super) const BUILTINS: &[(&str, u8, Builtin)] =
    &[("uri.parse", 1, parse), ("uri.is_valid", 1, is_valid)];

/// Where a piece of a URL sits, which decides what must be escaped there.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Path,
    Host,
    UserPassword,
    Fragment,
}

/// A URL split as Go's `url.Parse` splits it (only what OPA reports).
#[derive(Debug, Default, PartialEq, Eq)]
struct Url {
    scheme: String,
    host: String,
    path: String,
    raw_path: String,
    raw_query: String,
    fragment: String,
}

impl Url {
    /// The host without a port and without the brackets of an IPv6 literal.
    fn hostname(&self) -> &str {
        let (host, _) = split_host_port(&self.host);
        host.strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
    }

    fn port(&self) -> &str {
        split_host_port(&self.host).1
    }
}

fn split_host_port(host: &str) -> (&str, &str) {
    match host.rfind(':') {
        Some(colon) if host[colon + 1..].bytes().all(|b| b.is_ascii_digit()) => {
            // A colon inside an IPv6 literal is not a port separator.
            if host.starts_with('[') && !host[..colon].ends_with(']') {
                (host, "")
            } else {
                (&host[..colon], &host[colon + 1..])
            }
        }
        _ => (host, ""),
    }
}

fn should_escape(c: u8, part: Part) -> bool {
    if c.is_ascii_alphanumeric() {
        return false;
    }
    if part == Part::Host
        && matches!(
            c,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'['
                | b']'
                | b'<'
                | b'>'
                | b'"'
        )
    {
        return false;
    }
    match c {
        b'-' | b'_' | b'.' | b'~' => false,
        b'$' | b'&' | b'+' | b',' | b'/' | b':' | b';' | b'=' | b'?' | b'@' => match part {
            Part::Path => c == b'?',
            Part::UserPassword => matches!(c, b'@' | b'/' | b'?' | b':'),
            Part::Fragment => false,
            Part::Host => true,
        },
        b'!' | b'(' | b')' | b'*' if part == Part::Fragment => false,
        _ => true,
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// `%XX` escapes decoded, with Go's refusals for the part.
fn unescape(text: &str, part: Part) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let escape = || text.get(i..(i + 3).min(text.len())).unwrap_or("%");
                let (Some(high), Some(low)) = (
                    bytes.get(i + 1).copied().and_then(hex_value),
                    bytes.get(i + 2).copied().and_then(hex_value),
                ) else {
                    return Err(format!("invalid URL escape {:?}", escape()));
                };
                // In a host only non-ASCII bytes may be escaped.
                if part == Part::Host && high < 8 {
                    return Err(format!("invalid URL escape {:?}", escape()));
                }
                out.push(high * 16 + low);
                i += 3;
            }
            c if part == Part::Host && c < 0x80 && should_escape(c, part) => {
                return Err(format!(
                    "invalid character {:?} in host name",
                    char::from(c)
                ));
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| "invalid UTF-8 after unescaping".to_owned())
}

fn escape(text: &str, part: Part) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        if should_escape(b, part) {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(char::from(b));
        }
    }
    out
}

/// A scheme and the rest, or no scheme when the text does not start with one.
fn split_scheme(raw: &str) -> Result<(String, &str), String> {
    for (i, c) in raw.bytes().enumerate() {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' if i > 0 => {}
            b':' if i == 0 => return Err("missing protocol scheme".to_owned()),
            b':' => return Ok((raw[..i].to_ascii_lowercase(), &raw[i + 1..])),
            _ => return Ok((String::new(), raw)),
        }
    }
    Ok((String::new(), raw))
}

fn valid_userinfo(userinfo: &str) -> bool {
    userinfo.bytes().all(|c| {
        c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.'
                    | b'_'
                    | b':'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b'%'
                    | b'@'
            )
    })
}

fn valid_optional_port(port: &str) -> bool {
    port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|digits| digits.bytes().all(|b| b.is_ascii_digit()))
}

fn parse_host(host: &str) -> Result<String, String> {
    if host.starts_with('[') {
        let Some(close) = host.rfind(']') else {
            return Err("missing ']' in host".to_owned());
        };
        let port = &host[close + 1..];
        if !valid_optional_port(port) {
            return Err(format!("invalid port {port:?} after host"));
        }
        return Ok(host.to_owned());
    }
    if let Some(colon) = host.rfind(':') {
        let port = &host[colon..];
        if !valid_optional_port(port) {
            return Err(format!("invalid port {port:?} after host"));
        }
    }
    unescape(host, Part::Host)
}

fn parse_url(raw: &str) -> Result<Url, String> {
    let (rest, fragment) = match raw.split_once('#') {
        Some((rest, fragment)) => (rest, Some(fragment)),
        None => (raw, None),
    };
    let mut url = Url::default();
    if rest.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err("net/url: invalid control character in URL".to_owned());
    }
    if !rest.is_empty() {
        let (scheme, mut rest) = split_scheme(rest)?;
        url.scheme = scheme;
        if let Some((before, query)) = rest.split_once('?') {
            url.raw_query = query.to_owned();
            rest = before;
        }
        if !rest.starts_with('/') {
            if !url.scheme.is_empty() {
                // An opaque URL (`mailto:…`): nothing more that OPA reports.
                return finish(url, fragment);
            }
            let first_segment = rest.split('/').next().unwrap_or("");
            if first_segment.contains(':') {
                return Err("first path segment in URL cannot contain colon".to_owned());
            }
        }
        if rest.starts_with("//") && (!url.scheme.is_empty() || !rest.starts_with("///")) {
            let authority_and_path = &rest[2..];
            let (authority, path) = match authority_and_path.find('/') {
                Some(slash) => authority_and_path.split_at(slash),
                None => (authority_and_path, ""),
            };
            let host = match authority.rfind('@') {
                Some(at) => {
                    let userinfo = &authority[..at];
                    if !valid_userinfo(userinfo) {
                        return Err("net/url: invalid userinfo".to_owned());
                    }
                    unescape(userinfo, Part::UserPassword)?;
                    &authority[at + 1..]
                }
                None => authority,
            };
            url.host = parse_host(host)?;
            rest = path;
        }
        url.path = unescape(rest, Part::Path)?;
        if escape(&url.path, Part::Path) != rest {
            url.raw_path = rest.to_owned();
        }
    }
    finish(url, fragment)
}

fn finish(mut url: Url, fragment: Option<&str>) -> Result<Url, String> {
    if let Some(fragment) = fragment {
        url.fragment = unescape(fragment, Part::Fragment)?;
    }
    Ok(url)
}

fn parse(args: &[Value]) -> Result<Value, String> {
    let raw = string_arg(args, 0)?;
    let url = parse_url(raw).map_err(|e| format!("parse {raw:?}: {e}"))?;
    let mut object = BTreeMap::new();
    let mut put = |key: &str, value: &str| {
        if !value.is_empty() {
            object.insert(Value::from(key), Value::from(value));
        }
    };
    put("scheme", &url.scheme);
    put("hostname", url.hostname());
    put("port", url.port());
    if !url.path.is_empty() {
        put("path", &url.path);
        put(
            "raw_path",
            if url.raw_path.is_empty() {
                &url.path
            } else {
                &url.raw_path
            },
        );
    }
    put("raw_query", &url.raw_query);
    put("fragment", &url.fragment);
    Ok(Value::from(object))
}

/// Whether `uri.parse` would accept the argument; an empty string is not a URI here (OPA's choice).
fn is_valid(args: &[Value]) -> Result<Value, String> {
    Ok(Value::from(match args.first() {
        Some(Value::String(raw)) if !raw.is_empty() => parse_url(raw).is_ok(),
        _ => false,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_url_splits_as_go_splits_it() {
        let url = parse_url("https://user@Example.com:8080/a%2Fb?q=1#top").unwrap_or_default();
        assert_eq!(url.scheme, "https");
        assert_eq!((url.hostname(), url.port()), ("Example.com", "8080"));
        assert_eq!(
            (url.path.as_str(), url.raw_path.as_str()),
            ("/a/b", "/a%2Fb")
        );
        assert_eq!(
            (url.raw_query.as_str(), url.fragment.as_str()),
            ("q=1", "top")
        );
        let v6 = parse_url("http://[::1]:80/").unwrap_or_default();
        assert_eq!((v6.hostname(), v6.port()), ("::1", "80"));
    }

    #[test]
    fn what_go_refuses_is_refused() {
        for bad in [
            "http://exa%6dple.com/",
            "http://a<b@example.com/",
            "http://example.com:\u{663}/",
            "http://[::1",
            "1http://x",
            "a:b/c:d",
        ] {
            assert!(parse_url(bad).is_err() || bad == "a:b/c:d", "{bad}");
        }
        assert!(parse_url(":no-scheme").is_err());
        assert_eq!(is_valid(&[Value::from("")]), Ok(Value::from(false)));
        assert_eq!(
            is_valid(&[Value::from("http://foo]bar/")]),
            Ok(Value::from(true))
        );
    }

    /// OPA's cases written as queries with an output argument, which only modules can use here.
    #[test]
    fn the_query_form_cases_of_opa() {
        let valid = |raw: &str| is_valid(&[Value::from(raw)]);
        assert_eq!(valid("http://exa%6dple.com/"), Ok(Value::from(false)));
        assert_eq!(valid("http://a<b@example.com/"), Ok(Value::from(false)));
        assert_eq!(
            valid("http://user name@example.com/"),
            Ok(Value::from(false))
        );
        assert_eq!(
            valid("http://example.com:\u{663}\u{664}/"),
            Ok(Value::from(false))
        );
        assert_eq!(valid("http://foo]bar/"), Ok(Value::from(true)));
        let parsed = |raw: &str| parse(&[Value::from(raw)]).unwrap_or(Value::Undefined);
        for (raw, path) in [
            ("https://example.com/a%21b", "/a!b"),
            ("https://example.com/a%27b", "/a'b"),
            ("https://example.com/a%2Ab", "/a*b"),
            ("https://example.com/a%28b%29", "/a(b)"),
        ] {
            let url = parsed(raw);
            assert_eq!(url[&Value::from("path")], Value::from(path), "{raw}");
            assert_eq!(url[&Value::from("raw_path")], Value::from(path), "{raw}");
        }
        let bracket = parsed("http://foo]bar/");
        assert_eq!(bracket[&Value::from("hostname")], Value::from("foo]bar"));
        assert_eq!(
            parse(&[Value::from("http://exa%6dple.com/")]),
            Err("parse \"http://exa%6dple.com/\": invalid URL escape \"%6d\"".to_owned())
        );
    }
}
