//! Kubernetes' URL library: `url()`, `isURL()`, and on `kubernetes.URL`: `getScheme()`,
//! `getHost()`, `getHostname()`, `getPort()`, `getEscapedPath()`, `getQuery()`.
//!
//! Kubernetes parses with Go's `net/url.ParseRequestURI`: an absolute URI or an absolute path,
//! no fragment splitting (`#` stays in the query or path), escapes checked, ports all digits:
//! [`GoUrl::parse_request_uri`] (in [`crate::go_url`]).

use std::collections::HashMap;
use std::sync::Arc;

use ::cel::common::types::STRING_TYPE;
use ::cel::objects::{Key, Map, Opaque};
use ::cel::{DeclarationError, Env, Value};

use super::{error, opaque_type, ret, ret_opaque, str_arg, with_opaque, Args, Ret};

/// The CEL type name of a URL.
pub const URL_TYPE: &str = "kubernetes.URL";

pub use crate::go_url::GoUrl;

impl Opaque for GoUrl {
    fn runtime_type_name(&self) -> &str {
        URL_TYPE
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
