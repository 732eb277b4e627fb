//! Kubernetes' format library (since 1.31): `format.named(<name>)` (an optional format),
//! `format.dns1123Label()` and the other named formats, and `<Format>.validate(<string>)`, which
//! is `optional.none()` for a valid string and otherwise the list of apimachinery's messages.
//!
//! The checks are ports of apimachinery's validation functions (`IsDNS1123Label`,
//! `IsQualifiedName`, `IsValidLabelValue`, …) with their messages; `uri` uses the same parser as
//! the URL library, `uuid`, `byte`, `date` and `datetime` the go-openapi `strfmt` rules.

use std::sync::Arc;

use ::cel::common::types::STRING_TYPE;
use ::cel::objects::Opaque;
use ::cel::{DeclarationError, Env, Value};

use super::url::GoUrl;
use super::{
    no_overload, opaque_type, ret_opaque, ret_optional, str_arg, string_list, with_opaque,
};
use super::{Args, Ret};

/// The CEL type name of a named format.
pub const FORMAT_TYPE: &str = "kubernetes.NamedFormat";

/// The names `format.named()` knows, as `format.<name>()` is spelled.
pub const NAMES: [&str; 13] = [
    "dns1123Label",
    "dns1123Subdomain",
    "dns1035Label",
    "qualifiedName",
    "dns1123LabelPrefix",
    "dns1123SubdomainPrefix",
    "dns1035LabelPrefix",
    "labelValue",
    "uri",
    "uuid",
    "byte",
    "date",
    "datetime",
];

/// A `kubernetes.NamedFormat` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamedFormat(pub &'static str);

impl Opaque for NamedFormat {
    fn runtime_type_name(&self) -> &str {
        FORMAT_TYPE
    }
}

const DNS1123_LABEL: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_SUBDOMAIN: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1035_LABEL: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const QUALIFIED_NAME: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_VALUE: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

/// Whether all of `s` matches `pattern`.
fn full_match(pattern: &str, s: &str) -> bool {
    crate::patterns::CEL
        .compiled(&format!("^(?:{pattern})$"))
        .is_ok_and(|re| re.is_match(s))
}

/// apimachinery's `RegexError`.
fn regex_error(msg: &str, pattern: &str, examples: &[&str]) -> String {
    let mut out = msg.to_owned();
    if examples.is_empty() {
        return format!("{out} (regex used for validation is '{pattern}')");
    }
    out.push_str(" (e.g. ");
    for (i, e) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push_str(&format!("'{e}', "));
    }
    out.push_str(&format!("regex used for validation is '{pattern}')"));
    out
}

fn max_len(n: usize) -> String {
    format!("must be no more than {n} characters")
}

fn dns1123_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push(max_len(63));
    }
    if !full_match(DNS1123_LABEL, s) {
        errs.push(regex_error(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
            DNS1123_LABEL,
            &["my-name", "123-abc"],
        ));
    }
    errs
}

fn dns1123_subdomain(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 253 {
        errs.push(max_len(253));
    }
    if !full_match(DNS1123_SUBDOMAIN, s) {
        errs.push(regex_error(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            DNS1123_SUBDOMAIN,
            &["example.com"],
        ));
    }
    errs
}

fn dns1035_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push(max_len(63));
    }
    if !full_match(DNS1035_LABEL, s) {
        errs.push(regex_error(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character",
            DNS1035_LABEL,
            &["my-name", "abc-123"],
        ));
    }
    errs
}

/// apimachinery's name validators with `prefix`: a trailing dash is allowed, as a generated
/// suffix follows.
fn mask_trailing_dash(s: &str) -> String {
    if s.len() > 1 && s.ends_with('-') {
        format!("{}a", &s[..s.len() - 1])
    } else {
        s.to_owned()
    }
}

fn qualified_name(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = s.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_owned());
            } else {
                errs.extend(
                    dns1123_subdomain(prefix)
                        .into_iter()
                        .map(|e| format!("prefix part {e}")),
                );
            }
            *name
        }
        _ => {
            return vec![format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(QUALIFIED_NAME_MSG, QUALIFIED_NAME, &["MyName", "my.name", "123-abc"])
            )]
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_owned());
    } else if name.len() > 63 {
        errs.push(format!("name part {}", max_len(63)));
    }
    if !full_match(QUALIFIED_NAME, name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_MSG,
                QUALIFIED_NAME,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

fn label_value(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push(max_len(63));
    }
    if !full_match(LABEL_VALUE, s) {
        errs.push(regex_error(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
            LABEL_VALUE,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// Standard base64 with padding, as Go's `base64.StdEncoding` decodes it.
fn is_base64(s: &str) -> bool {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(4) {
        return false;
    }
    let pad = b.iter().rev().take_while(|&&c| c == b'=').count();
    if pad > 2 {
        return false;
    }
    b[..b.len() - pad]
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        _ => 0,
    }
}

/// `YYYY-MM-DD`, a real calendar date.
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())
            .flatten()
    };
    match (num(0..4), num(5..7), num(8..10)) {
        (Some(y), Some(m), Some(d)) => d >= 1 && d <= days_in_month(y, m),
        _ => false,
    }
}

/// RFC 3339 date-time (`T` or space or lower-case `t`, optional fraction, `Z` or an offset).
fn is_datetime(s: &str) -> bool {
    let (Some(date), Some(time)) = (s.get(..10), s.get(11..)) else {
        return false;
    };
    if !is_date(date) || !matches!(s.as_bytes().get(10), Some(b'T' | b't' | b' ')) {
        return false;
    }
    full_match(
        r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?([Zz]|[+-]([01][0-9]|2[0-3]):?[0-5][0-9])?",
        time,
    )
}

fn is_uuid(s: &str) -> bool {
    full_match(
        "(?i)[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32}",
        s,
    )
}

impl NamedFormat {
    /// The format of that name, if there is one.
    pub fn named(name: &str) -> Option<NamedFormat> {
        NAMES.iter().find(|n| **n == name).map(|n| NamedFormat(n))
    }

    /// What is wrong with `s`: empty when it is valid.
    pub fn validate(&self, s: &str) -> Vec<String> {
        let fail = |ok: bool, msg: &str| if ok { vec![] } else { vec![msg.to_owned()] };
        match self.0 {
            "dns1123Label" => dns1123_label(s),
            "dns1123Subdomain" => dns1123_subdomain(s),
            "dns1035Label" => dns1035_label(s),
            "qualifiedName" => qualified_name(s),
            "dns1123LabelPrefix" => dns1123_label(&mask_trailing_dash(s)),
            "dns1123SubdomainPrefix" => dns1123_subdomain(&mask_trailing_dash(s)),
            "dns1035LabelPrefix" => dns1035_label(&mask_trailing_dash(s)),
            "labelValue" => label_value(s),
            "uri" => GoUrl::parse_request_uri(s).err().into_iter().collect(),
            "uuid" => fail(is_uuid(s), "does not match the UUID format"),
            "byte" => fail(is_base64(s), "invalid base64"),
            "date" => fail(is_date(s), "invalid date"),
            "datetime" => fail(is_datetime(s), "invalid datetime"),
            _ => vec![],
        }
    }
}

pub(crate) fn register(env: &mut Env) -> Result<(), DeclarationError> {
    env.add_type(opaque_type(FORMAT_TYPE))?;
    env.add_overload("format.named", "format-named", vec![STRING_TYPE], named)?;
    macro_rules! constructors {
        ($($f:ident => $name:literal),* $(,)?) => {
            $(
                fn $f<'b, 'v>(_args: Args<'b, 'v>) -> Ret<'b, 'v> {
                    ret_opaque(NamedFormat($name))
                }
                env.add_overload(concat!("format.", $name), concat!("format-", $name), vec![], $f)?;
            )*
        };
    }
    constructors! {
        dns1123_label_format => "dns1123Label",
        dns1123_subdomain_format => "dns1123Subdomain",
        dns1035_label_format => "dns1035Label",
        qualified_name_format => "qualifiedName",
        dns1123_label_prefix_format => "dns1123LabelPrefix",
        dns1123_subdomain_prefix_format => "dns1123SubdomainPrefix",
        dns1035_label_prefix_format => "dns1035LabelPrefix",
        label_value_format => "labelValue",
        uri_format => "uri",
        uuid_format => "uuid",
        byte_format => "byte",
        date_format => "date",
        datetime_format => "datetime",
    }
    env.add_member_overload(
        "validate",
        "format-validate",
        opaque_type(FORMAT_TYPE),
        vec![STRING_TYPE],
        validate,
    )?;
    Ok(())
}

fn named<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let name = str_arg(&args, 0, "format.named")?;
    let found = NamedFormat::named(name).map(|f| Value::Opaque(Arc::new(f)));
    ret_optional(found)
}

fn validate<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let s = str_arg(&args, 1, "validate").map_err(|_| no_overload("validate", &args))?;
    let errors = with_opaque(&args, 0, "validate", |f: &NamedFormat| f.validate(s))?;
    ret_optional((!errors.is_empty()).then(|| string_list(errors)))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_true, eval};
    use ::cel::Value;

    #[test]
    fn documented_examples() {
        assert_true(&[
            "!format.dns1123Label().validate('my-label-name').hasValue()",
            "!format.dns1123Subdomain().validate('apiextensions.k8s.io').hasValue()",
            "!format.dns1035Label().validate('my-label-name').hasValue()",
            "!format.qualifiedName().validate('apiextensions.k8s.io/v1beta1').hasValue()",
            "!format.dns1123LabelPrefix().validate('my-label-prefix-').hasValue()",
            "!format.dns1123SubdomainPrefix().validate('mysubdomain.prefix.-').hasValue()",
            "!format.dns1035LabelPrefix().validate('my-label-prefix-').hasValue()",
            "!format.uri().validate('http://example.com').hasValue()",
            "!format.uuid().validate('123e4567-e89b-12d3-a456-426614174000').hasValue()",
            "!format.byte().validate('aGVsbG8=').hasValue()",
            "!format.date().validate('2021-01-01').hasValue()",
            "!format.datetime().validate('2021-01-01T00:00:00Z').hasValue()",
            "!format.named('unknown').hasValue()",
            "format.named('dns1123Label').value() == format.dns1123Label()",
            "format.named('uri').hasValue()",
            "format.dns1123Label() != format.dns1035Label()",
        ]);
    }

    #[test]
    fn kubernetes_test_cases() {
        assert_true(&[
            "format.dns1123Label().validate('contains a space').hasValue()",
            "format.dns1123Subdomain().validate('contains a space').hasValue()",
            "format.dns1035Label().validate('contains a space').hasValue()",
            "format.qualifiedName().validate('contains a space').hasValue()",
            "format.dns1123LabelPrefix().validate('contains a space-').hasValue()",
            "format.dns1123SubdomainPrefix().validate('contains a space-').hasValue()",
            "format.dns1035LabelPrefix().validate('contains a space-').hasValue()",
            "format.byte().validate('aGVsbG8').value() == ['invalid base64']",
            "format.date().validate('2020-01-32').value() == ['invalid date']",
            "format.datetime().validate('2020-01-32T00:00:00Z').value() == ['invalid datetime']",
            "!format.labelValue().validate('my-cool-label-Value').hasValue()",
            "format.uri().validate('../x').value() == ['parse \"../x\": invalid URI for request']",
            "format.datetime().validate('2020-01-0é00:00:00Z').hasValue()",
            "!format.datetime().validate('2020-01-01 10:00:00.5+02:00').hasValue()",
        ]);
        assert_eq!(
            eval("format.dns1123Label().validate('contains a space').value()"),
            Ok(Value::List(std::sync::Arc::new(vec![Value::from(
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
            )])))
        );
        assert_eq!(
            eval("format.labelValue().validate('my-cool-label-Value!!\\n\\n!!!').value().size()"),
            Ok(Value::Int(1))
        );
    }
}
