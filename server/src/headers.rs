//! Security headers on every response, unless a handler set its own, and the Content-Security-Policy
//! with a fresh nonce per response.
//!
//! The policy allows scripts only from this site and inline scripts carrying the response's nonce
//! (Leptos's hydration script and streamed resources read it from context, see `shell`), plus
//! `'wasm-unsafe-eval'` so the browser may compile the app's WebAssembly. Styles, images, fonts and
//! connections come from this site only; nothing may frame the app.

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use palisade_app::account::ssr::random_hex;
use palisade_app::auth::ssr::CspNonce;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::auth::Auth;

/// Headers that cost nothing and close common browser-side holes: no MIME sniffing, no framing by
/// other sites (clickjacking), no URLs leaked in `Referer`, no shared browsing context with openers.
pub const SECURITY_HEADERS: [(&str, &str); 4] = [
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cross-origin-opener-policy", "same-origin"),
];

/// What varies with the configuration: HSTS over https, and where forms may lead (the provider's
/// logout page, after the sign-out form).
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub hsts: bool,
    pub form_targets: Vec<String>,
}

impl Policy {
    pub fn new(auth: &Auth) -> Policy {
        Policy {
            hsts: auth.secure,
            form_targets: auth
                .oidc
                .as_ref()
                .map(|sso| sso.origins())
                .unwrap_or_default(),
        }
    }

    /// The Content-Security-Policy for a response whose inline scripts carry `nonce`.
    pub fn csp(&self, nonce: &str) -> String {
        let mut form_action = String::from("'self'");
        for target in &self.form_targets {
            form_action.push(' ');
            form_action.push_str(target);
        }
        format!(
            "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
             style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; \
             object-src 'none'; base-uri 'none'; form-action {form_action}; frame-ancestors 'none'"
        )
    }
}

pub fn with_security_headers(router: Router, policy: &Policy) -> Router {
    let mut router = SECURITY_HEADERS
        .iter()
        .fold(router, |router, (name, value)| {
            router.layer(SetResponseHeaderLayer::if_not_present(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            ))
        });
    if policy.hsts {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("strict-transport-security"),
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        ));
    }
    router.layer(axum::middleware::from_fn_with_state(
        policy.clone(),
        content_security_policy,
    ))
}

/// Make the nonce, hand it to the page renderer through the request, and send the policy.
async fn content_security_policy(
    State(policy): State<Policy>,
    mut request: Request,
    next: Next,
) -> Response {
    let nonce = random_hex(16).unwrap_or_else(|_| palisade_app::db::new_id());
    request.extensions_mut().insert(CspNonce(nonce.clone()));
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&policy.csp(&nonce)) {
        response
            .headers_mut()
            .entry(HeaderName::from_static("content-security-policy"))
            .or_insert(value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_names_the_nonce_and_forbids_framing() {
        let policy = Policy {
            hsts: false,
            form_targets: vec!["https://id.example.com".into()],
        };
        let csp = policy.csp("abc123");
        assert!(
            csp.contains("script-src 'self' 'nonce-abc123' 'wasm-unsafe-eval'"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(
            csp.contains("form-action 'self' https://id.example.com"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe-inline"), "{csp}");
    }
}
