//! The one way a page puts a value into a URL.

/// Percent-encodes everything but the unreserved characters of RFC 3986, so any value (a label
/// selector, a namespace with a colon, text in another script) survives as one query parameter or
/// path segment.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(byte));
            }
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// `key=value&…` from the pairs whose value is not empty, each value encoded.
pub fn query(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(key, value)| format!("{key}={}", encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_survive_as_one_parameter() {
        assert_eq!(encode("team-a.prod_1~"), "team-a.prod_1~");
        assert_eq!(
            encode("app=web, tier in (a b)"),
            "app%3Dweb%2C%20tier%20in%20%28a%20b%29"
        );
        assert_eq!(encode("kube:system&x=/y"), "kube%3Asystem%26x%3D%2Fy");
        assert_eq!(encode("é"), "%C3%A9");
        assert_eq!(
            query(&[("cluster", "c 1"), ("namespace", ""), ("days", "7")]),
            "cluster=c%201&days=7"
        );
    }
}
