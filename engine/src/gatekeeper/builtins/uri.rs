//! `uri.parse` and `uri.is_valid`, which regorus 0.14.1 does not have. OPA parses with Go's
//! `url.Parse`, which [`GoUrl::parse`] ports, and reports the scheme, host name, port, path and its
//! raw form, raw query and fragment, each only when it is not empty.

use std::collections::BTreeMap;

use regorus::Value;

use super::{string_arg, Builtin};
use crate::go_url::GoUrl;

pub(super) const BUILTINS: &[(&str, u8, Builtin)] =
    &[("uri.parse", 1, parse), ("uri.is_valid", 1, is_valid)];

fn parse(args: &[Value]) -> Result<Value, String> {
    let url = GoUrl::parse(string_arg(args, 0)?)?;
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
        Some(Value::String(raw)) if !raw.is_empty() => GoUrl::parse(raw).is_ok(),
        _ => false,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_url_splits_as_go_splits_it() {
        let url = GoUrl::parse("https://user@Example.com:8080/a%2Fb?q=1#top").unwrap_or_default();
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
        let v6 = GoUrl::parse("http://[::1]:80/").unwrap_or_default();
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
        ] {
            assert!(GoUrl::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            GoUrl::parse("a:b/c:d").map(|u| u.opaque),
            Ok("b/c:d".to_owned())
        );
        assert!(GoUrl::parse(":no-scheme").is_err());
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
