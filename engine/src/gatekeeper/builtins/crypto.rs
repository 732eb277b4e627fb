//! `crypto.md5`, `crypto.sha1`, `crypto.sha256`, the `crypto.hmac.*` family and `crypto.hmac.equal`,
//! which regorus 0.14.1 does not have. Digests are of the string's UTF-8 bytes, written as
//! lower-case hex, as OPA writes them.

use hmac::{Hmac, Mac};
use md5::Md5;
use regorus::Value;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use super::{string_arg, Builtin};

pub(super) const BUILTINS: &[(&str, u8, Builtin)] = &[
    ("crypto.md5", 1, md5_hex),
    ("crypto.sha1", 1, sha1_hex),
    ("crypto.sha256", 1, sha256_hex),
    ("crypto.hmac.md5", 2, hmac_md5),
    ("crypto.hmac.sha1", 2, hmac_sha1),
    ("crypto.hmac.sha256", 2, hmac_sha256),
    ("crypto.hmac.sha512", 2, hmac_sha512),
    ("crypto.hmac.equal", 2, hmac_equal),
];

/// Lower-case hex of `bytes`.
pub(super) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

fn digest<D: Digest>(args: &[Value]) -> Result<Value, String> {
    let text = string_arg(args, 0)?;
    Ok(Value::from(hex(&D::digest(text.as_bytes()))))
}

fn md5_hex(args: &[Value]) -> Result<Value, String> {
    digest::<Md5>(args)
}

fn sha1_hex(args: &[Value]) -> Result<Value, String> {
    digest::<Sha1>(args)
}

fn sha256_hex(args: &[Value]) -> Result<Value, String> {
    digest::<Sha256>(args)
}

/// The HMAC of `message` with `key`.
pub(super) fn hmac_bytes<M: Mac + hmac::digest::KeyInit>(key: &[u8], message: &[u8]) -> Vec<u8> {
    // An HMAC takes a key of any length, so this cannot fail.
    match <M as hmac::digest::KeyInit>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(message);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

fn hmac_hex<M: Mac + hmac::digest::KeyInit>(args: &[Value]) -> Result<Value, String> {
    let message = string_arg(args, 0)?;
    let key = string_arg(args, 1)?;
    Ok(Value::from(hex(&hmac_bytes::<M>(
        key.as_bytes(),
        message.as_bytes(),
    ))))
}

fn hmac_md5(args: &[Value]) -> Result<Value, String> {
    hmac_hex::<Hmac<Md5>>(args)
}

fn hmac_sha1(args: &[Value]) -> Result<Value, String> {
    hmac_hex::<Hmac<Sha1>>(args)
}

fn hmac_sha256(args: &[Value]) -> Result<Value, String> {
    hmac_hex::<Hmac<Sha256>>(args)
}

fn hmac_sha512(args: &[Value]) -> Result<Value, String> {
    hmac_hex::<Hmac<Sha512>>(args)
}

/// Whether two MACs are equal, compared in time that does not depend on where they differ.
fn hmac_equal(args: &[Value]) -> Result<Value, String> {
    let (a, b) = (
        string_arg(args, 0)?.as_bytes(),
        string_arg(args, 1)?.as_bytes(),
    );
    Ok(Value::from(constant_time_eq(a, b)))
}

pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(f: Builtin, args: &[&str]) -> Value {
        let args: Vec<Value> = args.iter().map(|a| Value::from(*a)).collect();
        f(&args).unwrap_or(Value::Undefined)
    }

    #[test]
    fn digests_are_lower_case_hex() {
        assert_eq!(
            call(md5_hex, &["abc"]),
            Value::from("900150983cd24fb0d6963f7d28e17f72")
        );
        assert_eq!(
            call(sha1_hex, &["abc"]),
            Value::from("a9993e364706816aba3e25717850c26c9cd0d89d")
        );
        assert_eq!(
            call(sha256_hex, &[""]),
            Value::from("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
    }

    #[test]
    fn hmacs_match_the_rfc_4231_example() {
        assert_eq!(
            call(hmac_sha256, &["what do ya want for nothing?", "Jefe"]),
            Value::from("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        );
        assert_eq!(call(hmac_equal, &["ab", "ab"]), Value::from(true));
        assert_eq!(call(hmac_equal, &["ab", "ac"]), Value::from(false));
        assert_eq!(call(hmac_equal, &["ab", "abc"]), Value::from(false));
    }
}
