//! Cross-site request forgery defence, on top of `SameSite=Lax` cookies: a state-changing request
//! (anything but GET, HEAD, OPTIONS) that a browser marks as cross-site is refused. Browsers send
//! `Sec-Fetch-Site` (trusted: scripts cannot set it) and `Origin`; either showing another site is
//! enough to refuse. Requests with a Bearer token carry no ambient credential and are exempt.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use palisade_app::AppError;

/// The origins this server answers as: the configured public URL's, if any.
#[derive(Debug, Clone, Default)]
pub struct Origins {
    pub public: Option<String>,
}

/// Whether a request with these headers may change state.
pub fn allowed(method: &Method, headers: &HeaderMap, origins: &Origins) -> bool {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return true;
    }
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if text(header::AUTHORIZATION).is_some_and(|v| v.starts_with("Bearer ")) {
        return true;
    }
    // Sec-Fetch-Site, when the browser sends it, decides: scripts cannot forge it, and it is there
    // even when `Referrer-Policy: no-referrer` makes the browser send `Origin: null` on a form post.
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return matches!(site, "same-origin" | "none");
    }
    match text(header::ORIGIN) {
        None => true,
        Some(origin) => {
            let own = text(header::HOST).is_some_and(|host| {
                origin == format!("http://{host}") || origin == format!("https://{host}")
            });
            own || origins.public.as_deref() == Some(origin)
        }
    }
}

pub async fn check(State(origins): State<Origins>, request: Request, next: Next) -> Response {
    if allowed(request.method(), request.headers(), &origins) {
        next.run(request).await
    } else {
        tracing::warn!(method = %request.method(), path = %request.uri().path(), "cross-site request refused");
        AppError::Forbidden("cross-site request refused".into()).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, v.parse().unwrap());
        }
        map
    }

    #[test]
    fn cross_site_writes_are_refused_and_everything_else_passes() {
        let origins = Origins {
            public: Some("https://palisade.example.com".into()),
        };
        let host = ("host", "127.0.0.1:3000");
        let cases = [
            (
                Method::GET,
                headers(&[("sec-fetch-site", "cross-site")]),
                true,
            ),
            (Method::POST, headers(&[host]), true),
            (
                Method::POST,
                headers(&[host, ("origin", "http://127.0.0.1:3000")]),
                true,
            ),
            (
                Method::POST,
                headers(&[host, ("origin", "https://palisade.example.com")]),
                true,
            ),
            (
                Method::POST,
                headers(&[host, ("origin", "https://evil.example")]),
                false,
            ),
            (
                Method::DELETE,
                headers(&[host, ("sec-fetch-site", "cross-site")]),
                false,
            ),
            (
                Method::PUT,
                headers(&[host, ("sec-fetch-site", "same-site")]),
                false,
            ),
            (
                Method::POST,
                headers(&[host, ("sec-fetch-site", "same-origin")]),
                true,
            ),
            // A same-origin form post under `Referrer-Policy: no-referrer`: Origin is "null".
            (
                Method::POST,
                headers(&[host, ("sec-fetch-site", "same-origin"), ("origin", "null")]),
                true,
            ),
            (Method::POST, headers(&[host, ("origin", "null")]), false),
            (
                Method::POST,
                headers(&[
                    host,
                    ("origin", "https://evil.example"),
                    ("authorization", "Bearer pal_x"),
                ]),
                true,
            ),
        ];
        for (method, headers, expected) in cases {
            assert_eq!(
                allowed(&method, &headers, &origins),
                expected,
                "{method} {headers:?}"
            );
        }
    }
}
