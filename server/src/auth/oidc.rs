//! Single sign-on through an OpenID provider.

/// A discovered provider and Palisade's client at it.
#[derive(Debug)]
pub struct Sso {
    /// Where RP-initiated logout sends people, if the provider offers it.
    pub end_session_url: Option<String>,
}

use axum::Router;

use super::Auth;

/// The session key of the ID token, kept for RP-initiated logout's `id_token_hint`.
pub const ID_TOKEN_KEY: &str = "oidc_id_token";

impl Sso {
    pub fn logout_url(&self, _id_token: Option<&str>, _public_url: &str) -> Option<String> {
        self.end_session_url.clone()
    }
}

pub fn routes() -> Router<Auth> {
    Router::new()
}

/// Discover the provider at start when `oidc.issuer_url` is set; a provider that cannot be reached
/// or described stops start-up with a message naming the setting.
pub async fn discover(
    config: &crate::config::Config,
) -> Result<Option<std::sync::Arc<Sso>>, crate::config::ConfigError> {
    if !config.oidc.enabled() {
        return Ok(None);
    }
    Err(crate::config::ConfigError::new(
        "oidc.issuer_url",
        "single sign-on is not available yet",
    ))
}

impl Sso {
    /// Origins the browser is sent to (the provider's), for the CSP's `form-action`.
    pub fn origins(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Each role and the groups that give it, highest role first (the first match wins at sign-in).
pub fn role_groups(
    config: &crate::config::OidcConfig,
) -> Vec<(palisade_app::auth::Role, Vec<String>)> {
    use palisade_app::auth::Role;
    vec![
        (Role::Admin, config.admin_groups.clone()),
        (Role::Approver, config.approver_groups.clone()),
        (Role::Author, config.author_groups.clone()),
        (Role::Viewer, config.viewer_groups.clone()),
    ]
}
