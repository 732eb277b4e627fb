//! `io.jwt.decode` and `io.jwt.verify_hs256`/`384`/`512`, which regorus 0.14.1 does not have. The
//! verifications that need public keys (RSA, ECDSA, EdDSA, `decode_verify`) are not here: a
//! template calling them is reported as not evaluable locally.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::Hmac;
use regorus::Value;
use sha2::{Sha256, Sha384, Sha512};

use super::crypto::{constant_time_eq, hex, hmac_bytes};
use super::{string_arg, Builtin};

pub(super) const BUILTINS: &[(&str, u8, Builtin)] = &[
    ("io.jwt.decode", 1, decode),
    ("io.jwt.verify_hs256", 2, verify_hs256),
    ("io.jwt.verify_hs384", 2, verify_hs384),
    ("io.jwt.verify_hs512", 2, verify_hs512),
];

/// How deep `cty: JWT` tokens may nest inside each other.
const MAX_NESTING: usize = 8;

/// The three sections of a compact JWT.
fn sections(token: &str) -> Result<[&str; 3], String> {
    let parts: Vec<&str> = token.split('.').collect();
    match parts.as_slice() {
        [_] => Err("encoded JWT had no period separators".to_owned()),
        [header, payload, signature] => Ok([header, payload, signature]),
        other => Err(format!(
            "encoded JWT must have 3 sections, found {}",
            other.len()
        )),
    }
}

/// A base64url section (padding optional), or the error naming the section and the first bad byte.
fn section_bytes(what: &str, text: &str) -> Result<Vec<u8>, String> {
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| {
            let at = text
                .bytes()
                .position(|b| !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'='))
                .unwrap_or(text.len());
            format!("JWT {what} had invalid encoding: illegal base64 data at input byte {at}")
        })
}

fn json_of(what: &str, bytes: &[u8]) -> Result<serde_json::Value, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("JWT {what} had invalid JSON: {e}"))
}

/// `[header, payload, signature as hex]`; a token whose header says `cty: JWT` carries another
/// token as its payload, which is decoded in turn.
fn decode(args: &[Value]) -> Result<Value, String> {
    let mut token = string_arg(args, 0)?.to_owned();
    for _ in 0..MAX_NESTING {
        let [header, payload, signature] = sections(&token)?;
        let header = json_of("header", &section_bytes("header", header)?)?;
        if header.get("enc").is_some() {
            return Err("JWT is a JWE object, which is not supported".to_owned());
        }
        let payload_bytes = section_bytes("payload", payload)?;
        let signature = hex(&section_bytes("signature", signature)?);
        let nested = header
            .get("cty")
            .and_then(serde_json::Value::as_str)
            .is_some_and(|cty| cty.eq_ignore_ascii_case("JWT"));
        if nested {
            match json_of("payload", &payload_bytes)? {
                serde_json::Value::String(inner) => {
                    token = inner;
                    continue;
                }
                _ => return Err("JWT payload of a nested token is not a string".to_owned()),
            }
        }
        let payload = json_of("payload", &payload_bytes)?;
        if !payload.is_object() {
            return Err("JWT payload is not a JSON object".to_owned());
        }
        return Ok(Value::from(vec![
            Value::from(header),
            Value::from(payload),
            Value::from(signature),
        ]));
    }
    Err(format!("JWT nests more than {MAX_NESTING} tokens"))
}

/// Whether the token's signature is the HMAC of its first two sections under `secret`.
fn verify_hmac<M: hmac::Mac + hmac::digest::KeyInit>(args: &[Value]) -> Result<Value, String> {
    let token = string_arg(args, 0)?;
    let secret = string_arg(args, 1)?;
    let [header, payload, signature] = sections(token)?;
    // A signature that is not even base64url verifies nothing: false, as OPA answers.
    let Ok(signature) = section_bytes("signature", signature) else {
        return Ok(Value::from(false));
    };
    let signed = format!("{header}.{payload}");
    let expected = hmac_bytes::<M>(secret.as_bytes(), signed.as_bytes());
    Ok(Value::from(constant_time_eq(&expected, &signature)))
}

fn verify_hs256(args: &[Value]) -> Result<Value, String> {
    verify_hmac::<Hmac<Sha256>>(args)
}

fn verify_hs384(args: &[Value]) -> Result<Value, String> {
    verify_hmac::<Hmac<Sha384>>(args)
}

fn verify_hs512(args: &[Value]) -> Result<Value, String> {
    verify_hmac::<Hmac<Sha512>>(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1c2VyIjoiYWxpY2UiLCJhenAiOiJhbGljZSIsInN1Ym9yZGluYXRlcyI6W10sImhyIjpmYWxzZX0.rz3jTY033z-NrKfwrK89_dcLF7TN4gwCMj-fVBDyLoM";

    #[test]
    fn a_token_decodes_into_header_payload_and_hex_signature() {
        let Ok(Value::Array(parts)) = decode(&[Value::from(TOKEN)]) else {
            panic!("no decode");
        };
        assert_eq!(
            parts[0],
            Value::from(serde_json::json!({"alg": "HS256", "typ": "JWT"}))
        );
        assert_eq!(parts[1][&Value::from("user")], Value::from("alice"));
        assert_eq!(
            parts[2],
            Value::from("af3de34d8d37df3f8daca7f0acaf3dfdd70b17b4cde20c02323f9f5410f22e83")
        );
        assert_eq!(
            decode(&[Value::from("abc")]),
            Err("encoded JWT had no period separators".to_owned())
        );
    }

    #[test]
    fn an_hmac_signature_verifies_only_with_its_secret() {
        let check = |secret: &str| verify_hs256(&[Value::from(TOKEN), Value::from(secret)]);
        assert_eq!(check("secret"), Ok(Value::from(true)));
        assert_eq!(check("guess"), Ok(Value::from(false)));
    }
}
