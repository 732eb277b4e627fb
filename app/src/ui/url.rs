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

/// The query string once `key` is set to `value` (or dropped, when `value` is empty), every other
/// parameter kept in its place.
pub fn with_param(pairs: &[(String, String)], key: &str, value: &str) -> String {
    let mut replaced = false;
    let mut out: Vec<(&str, &str)> = Vec::with_capacity(pairs.len() + 1);
    for (k, v) in pairs {
        if k == key {
            if !replaced {
                out.push((key, value));
                replaced = true;
            }
        } else {
            out.push((k, v));
        }
    }
    if !replaced {
        out.push((key, value));
    }
    query(&out)
}

/// A text that lives in the page's URL as `?key=value`: read from it when the page opens, and
/// written back whenever it changes (replacing the history entry, keeping the other parameters),
/// so a reload or a shared link keeps a filter.
pub fn query_signal(key: &'static str) -> leptos::prelude::RwSignal<String> {
    use leptos::prelude::*;
    use leptos_router::hooks::{use_location, use_navigate, use_query_map};

    let query = use_query_map();
    let location = use_location();
    let navigate = use_navigate();
    let value = RwSignal::new(query.with_untracked(|q| q.get(key).unwrap_or_default()));
    Effect::new(move |previous: Option<()>| {
        let current = value.get();
        if previous.is_some() {
            let pairs: Vec<(String, String)> = query.with_untracked(|q| {
                q.latest_values()
                    .map(|(k, v)| (k.to_string(), v.to_owned()))
                    .collect()
            });
            let search = with_param(&pairs, key, &current);
            let path = location.pathname.get_untracked();
            let target = if search.is_empty() {
                path
            } else {
                format!("{path}?{search}")
            };
            navigate(
                &target,
                leptos_router::NavigateOptions {
                    replace: true,
                    scroll: false,
                    ..Default::default()
                },
            );
        }
    });
    value
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

    #[test]
    fn one_parameter_changes_and_the_rest_stay() {
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let now = pairs(&[("tab", "impact"), ("cluster", "a"), ("action", "deny")]);
        assert_eq!(
            with_param(&now, "cluster", "b c"),
            "tab=impact&cluster=b%20c&action=deny"
        );
        assert_eq!(with_param(&now, "cluster", ""), "tab=impact&action=deny");
        assert_eq!(
            with_param(&now, "namespace", "web"),
            "tab=impact&cluster=a&action=deny&namespace=web"
        );
        assert_eq!(with_param(&[], "q", ""), "");
    }
}
