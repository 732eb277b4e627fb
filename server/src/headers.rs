//! Security headers on every response, unless a handler set its own.

use axum::http::{HeaderName, HeaderValue};
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;

/// Headers that cost nothing and close common browser-side holes: no MIME sniffing, no framing by
/// other sites (clickjacking), no URLs leaked in `Referer`, no shared browsing context with openers.
pub const SECURITY_HEADERS: [(&str, &str); 4] = [
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cross-origin-opener-policy", "same-origin"),
];

pub fn with_security_headers(router: Router) -> Router {
    SECURITY_HEADERS
        .iter()
        .fold(router, |router, (name, value)| {
            router.layer(SetResponseHeaderLayer::if_not_present(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            ))
        })
}
