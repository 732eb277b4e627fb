//! Authentication: who is making a request.
//!
//! [`authenticate`] runs on every request. It resolves at most one
//! [`Principal`](palisade_app::auth::Principal) — from `Authorization: Bearer <token>` (an API
//! token) or else from the session cookie (a signed-in browser) — and puts it in the request's
//! extensions, where `palisade_app::auth::ssr::require` (server functions) and `Caller` (REST) find
//! it and make the one authorization decision. A request without credentials goes on without a
//! principal and handlers answer 401; a Bearer token that does not check out is answered 401 here.
//! [`require_login`] sends browsers that ask for a page without a session to `/login`.

pub mod bootstrap;
pub mod csrf;
pub mod login;
pub mod oidc;
pub mod ratelimit;
pub mod store;
pub mod tokens;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use palisade_app::account::settings::SignInSettings;
use palisade_app::account::ssr::find_user;
use palisade_app::account::{CurrentSession, SessionLimits};
use palisade_app::auth::{Principal, SignInOptions, Via};
use palisade_app::db::{now_ms, Db};
use palisade_app::AppError;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, Session, SessionManagerLayer};

use self::ratelimit::RateLimiter;
use self::store::{SqlStore, USER_KEY};
use crate::config::Config;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "palisade_session";

/// Everything authentication needs, shared by the middleware and the sign-in routes.
#[derive(Clone, Debug)]
pub struct Auth {
    pub db: Db,
    pub store: SqlStore,
    pub options: SignInOptions,
    /// Cookies are `Secure` (the public URL is https).
    pub secure: bool,
    /// Sign-in attempts per client address.
    pub login_limiter: Arc<RateLimiter>,
    /// Attempts on the local admin account from any address: ten addresses' worth, so guessing
    /// from many addresses at once gains little, and one address cannot lock the account alone.
    pub account_limiter: Arc<RateLimiter>,
    /// Single sign-on, when configured.
    pub oidc: Option<Arc<oidc::Sso>>,
    /// Where the provider sends people back after RP-initiated logout.
    pub public_url: String,
    /// What the Settings page shows admins.
    pub sign_in: SignInSettings,
}

impl Auth {
    pub fn new(config: &Config, db: Db, oidc: Option<Arc<oidc::Sso>>) -> Auth {
        let idle_ms = minutes_ms(config.auth.session_idle_minutes);
        let absolute_ms = minutes_ms(config.auth.session_absolute_hours.saturating_mul(60));
        Auth {
            store: SqlStore::new(db.clone(), idle_ms, absolute_ms),
            db,
            options: SignInOptions {
                local: local_login_enabled(config),
                sso: oidc.is_some(),
            },
            secure: config.is_https(),
            login_limiter: Arc::new(RateLimiter::new(
                config.auth.login_attempts_per_minute,
                60_000,
            )),
            account_limiter: Arc::new(RateLimiter::new(
                config.auth.login_attempts_per_minute.saturating_mul(10),
                60_000,
            )),
            oidc,
            public_url: config
                .http
                .public_url
                .trim()
                .trim_end_matches('/')
                .to_owned(),
            sign_in: SignInSettings {
                local: local_login_enabled(config),
                issuer: config
                    .oidc
                    .enabled()
                    .then(|| config.oidc.issuer_url.clone()),
                groups_claim: config.oidc.groups_claim.clone(),
                role_groups: oidc::role_groups(&config.oidc),
                idle_minutes: i64::try_from(config.auth.session_idle_minutes).unwrap_or(i64::MAX),
                absolute_hours: i64::try_from(config.auth.session_absolute_hours)
                    .unwrap_or(i64::MAX),
            },
        }
    }

    /// The tower-sessions layer: HttpOnly, SameSite=Lax, Secure over https; the cookie lives as
    /// long as the browser session, the server enforces the timeouts.
    pub fn session_layer(&self) -> SessionManagerLayer<SqlStore> {
        SessionManagerLayer::new(self.store.clone())
            .with_name(SESSION_COOKIE)
            .with_http_only(true)
            .with_same_site(SameSite::Lax)
            .with_secure(self.secure)
            .with_path("/")
            .with_expiry(Expiry::OnSessionEnd)
    }
}

fn minutes_ms(minutes: u64) -> i64 {
    i64::try_from(minutes.saturating_mul(60_000)).unwrap_or(i64::MAX)
}

/// The local bootstrap admin signs in unless single sign-on is configured (or it is kept on purpose).
pub fn local_login_enabled(config: &Config) -> bool {
    !config.oidc.enabled() || config.auth.keep_local_admin
}

/// The client's address, for the audit log and rate limits ("" when the server runs without
/// connection info, as in router unit tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAddr(pub String);

impl ClientAddr {
    fn of(parts_extensions: &axum::http::Extensions) -> ClientAddr {
        // The address behind trusted proxies, found where the connection was accepted.
        if let Some(client) = parts_extensions.get::<crate::proxies::Client>() {
            return ClientAddr(client.0.to_string());
        }
        ClientAddr(
            parts_extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|info| info.0.ip().to_string())
                .unwrap_or_default(),
        )
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr::of(&parts.extensions))
    }
}

/// Resolve the request's principal (see the module documentation).
pub async fn authenticate(State(auth): State<Auth>, mut request: Request, next: Next) -> Response {
    let from = ClientAddr::of(request.extensions()).0;
    request.extensions_mut().insert(auth.options.clone());
    request.extensions_mut().insert(auth.sign_in.clone());
    request.extensions_mut().insert(SessionLimits {
        idle_ms: auth.store.idle_ms,
        absolute_ms: auth.store.absolute_ms,
    });
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(|token| token.trim().to_owned())
        // A cluster's ingest token is no one's sign-in: the ingest handler checks it itself.
        .filter(|token| !token.starts_with(palisade_app::violations::ssr::ingest::TOKEN_PREFIX));
    if let Some(token) = bearer {
        match tokens::resolve_token(&auth.db, &token, &from, now_ms()).await {
            Ok(Some(principal)) => {
                request.extensions_mut().insert(principal);
            }
            Ok(None) => return AppError::Unauthenticated.into_response(),
            Err(err) => return err.into_response(),
        }
    } else if let Some(session) = request.extensions().get::<Session>().cloned() {
        if let Some(principal) = session_principal(&auth, &session, &from).await {
            request.extensions_mut().insert(principal);
            if let Some(id) = session.id() {
                request
                    .extensions_mut()
                    .insert(CurrentSession(store::key(&id)));
            }
        }
    }
    next.run(request).await
}

async fn session_principal(auth: &Auth, session: &Session, from: &str) -> Option<Principal> {
    let user_id = match session.get::<String>(USER_KEY).await {
        Ok(user_id) => user_id?,
        Err(err) => {
            tracing::error!(error = %err, "cannot read the session");
            return None;
        }
    };
    match find_user(&auth.db, &user_id).await {
        Ok(Some(user)) if user.may_act() => Some(Principal {
            user_id: user.id,
            display_name: user.display_name,
            role: user.role,
            via: Via::Session,
            from: from.to_owned(),
            token: None,
        }),
        Ok(_) => None,
        Err(err) => {
            tracing::error!(error = %err, "cannot read the session's user");
            None
        }
    }
}

/// On page routes: a browser without a session is sent to `/login?next=<where it was going>`.
pub async fn require_login(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let public = path == "/login" || path.starts_with("/api/");
    if request.method() == Method::GET
        && !public
        && request.extensions().get::<Principal>().is_none()
    {
        let target = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
        return Redirect::to(&format!("/login?next={}", url_encode(target))).into_response();
    }
    next.run(request).await
}

/// Percent-encode everything but unreserved characters.
pub fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Where to go after sign-in: a path on this site only (no `//host`, no scheme), else `/`.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.contains('\\')
                && !path.chars().any(char::is_control) =>
        {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next(Some("/policies?x=1")), "/policies?x=1");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil",
            "evil",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_next(None), "/");
        assert_eq!(url_encode("/a b?c=d&e"), "%2Fa%20b%3Fc%3Dd%26e");
    }

    #[test]
    fn the_local_admin_gives_way_to_sso_unless_kept() {
        let mut config = Config::default();
        assert!(local_login_enabled(&config));
        config.oidc.issuer_url = "https://id.example.com".into();
        assert!(!local_login_enabled(&config));
        config.auth.keep_local_admin = true;
        assert!(local_login_enabled(&config));
    }
}
