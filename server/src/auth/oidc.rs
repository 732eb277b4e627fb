//! Single sign-on through an OpenID provider, with the `openidconnect` crate.
//!
//! At start the provider is discovered (its metadata and keys). `/auth/oidc/start` begins an
//! authorization-code flow with PKCE, a random state and a random nonce, all three kept in the
//! (pre-sign-in) session with a time limit; `/auth/oidc/callback` takes them out (one use), checks
//! the state, exchanges the code with the PKCE verifier, verifies the ID token (signature, issuer,
//! audience, expiry, nonce), reads the groups claim (from the ID token, else from userinfo), maps it
//! to a role, and signs the user in on a fresh session id. HTTP goes through hyper and rustls, the
//! stack kube already brings; redirects are never followed.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, Scope, TokenResponse,
};
use palisade_app::account::ssr::{constant_time_eq, find_user, lose_groups, upsert_user};
use palisade_app::audit::ssr::Event;
use palisade_app::auth::{Principal, Role, Via};
use palisade_app::db::now_ms;
use palisade_app::AppError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tower_sessions::{Expiry, Session};

use super::login::{back_to_login, start_session, too_many};
use super::{safe_next, url_encode, Auth, ClientAddr};
use crate::config::{Config, ConfigError, OidcConfig};

/// The session key of the ID token, kept for RP-initiated logout's `id_token_hint`.
pub const ID_TOKEN_KEY: &str = "oidc_id_token";
/// The session key of a sign-in in progress.
const PENDING_KEY: &str = "oidc_pending";
/// How long a sign-in may take at the provider.
const PENDING_MS: i64 = 10 * 60 * 1000;

pub(crate) type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;
type OidcClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// A discovered provider and Palisade's client at it.
pub struct Sso {
    client: OidcClient,
    http: HttpsClient,
    issuer: String,
    client_id: String,
    /// Where RP-initiated logout sends people, if the provider offers it.
    pub end_session_url: Option<String>,
    userinfo_url: Option<String>,
    groups_claim: String,
    role_groups: Vec<(Role, Vec<String>)>,
}

impl std::fmt::Debug for Sso {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sso")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("end_session_url", &self.end_session_url)
            .finish_non_exhaustive()
    }
}

/// Why the HTTP exchange with the provider failed (no secret in it: requests are not echoed).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(String);

pub(crate) fn https_client() -> Result<HttpsClient, HttpError> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|err| HttpError(format!("no TLS root certificates: {err}")))?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

/// One request to the provider, with a time limit.
async fn send(
    http: HttpsClient,
    request: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, HttpError> {
    let (parts, body) = request.into_parts();
    let request = http::Request::from_parts(parts, Full::new(Bytes::from(body)));
    let response = tokio::time::timeout(std::time::Duration::from_secs(15), http.request(request))
        .await
        .map_err(|_| HttpError("the identity provider did not answer in 15 s".into()))?
        .map_err(|err| HttpError(format!("cannot reach the identity provider: {err}")))?;
    let (parts, body) = response.into_parts();
    let bytes = body
        .collect()
        .await
        .map_err(|err| HttpError(format!("reading the provider's answer: {err}")))?
        .to_bytes();
    Ok(http::Response::from_parts(parts, bytes.to_vec()))
}

/// Each role and the groups that give it, highest role first (the first match wins at sign-in).
pub fn role_groups(config: &OidcConfig) -> Vec<(Role, Vec<String>)> {
    vec![
        (Role::Admin, config.admin_groups.clone()),
        (Role::Approver, config.approver_groups.clone()),
        (Role::Author, config.author_groups.clone()),
        (Role::Viewer, config.viewer_groups.clone()),
    ]
}

/// The highest role any of `groups` gives.
pub fn role_for(role_groups: &[(Role, Vec<String>)], groups: &[String]) -> Option<Role> {
    role_groups
        .iter()
        .find(|(_, names)| names.iter().any(|name| groups.contains(name)))
        .map(|(role, _)| *role)
}

/// Discover the provider at start when `oidc.issuer_url` is set; a provider that cannot be reached
/// or described stops start-up with a message naming the setting.
pub async fn discover(config: &Config) -> Result<Option<Arc<Sso>>, ConfigError> {
    if !config.oidc.enabled() {
        return Ok(None);
    }
    let oidc = &config.oidc;
    let fail = |message: String| ConfigError::new("oidc.issuer_url", message);
    let http = https_client().map_err(|err| fail(err.to_string()))?;
    let issuer = IssuerUrl::new(oidc.issuer_url.trim().to_owned())
        .map_err(|err| fail(format!("not a URL: {err}")))?;
    let metadata =
        CoreProviderMetadata::discover_async(issuer, &|request| send(http.clone(), request))
            .await
            .map_err(|err| fail(format!("discovery failed: {err}")))?;
    let userinfo_url = metadata.userinfo_endpoint().map(|url| url.to_string());
    let raw = raw_discovery(&http, oidc.issuer_url.trim())
        .await
        .map_err(|err| fail(format!("discovery failed: {err}")))?;
    let end_session_url = raw
        .get("end_session_endpoint")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let redirect = if oidc.redirect_url.trim().is_empty() {
        format!(
            "{}/auth/oidc/callback",
            config.http.public_url.trim().trim_end_matches('/')
        )
    } else {
        oidc.redirect_url.trim().to_owned()
    };
    let redirect = RedirectUrl::new(redirect)
        .map_err(|err| ConfigError::new("oidc.redirect_url", format!("not a URL: {err}")))?;
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(oidc.client_id.clone()),
        Some(ClientSecret::new(oidc.client_secret.clone())),
    )
    .set_redirect_uri(redirect);
    tracing::info!(issuer = %oidc.issuer_url, "single sign-on configured");
    Ok(Some(Arc::new(Sso {
        client,
        http,
        issuer: oidc.issuer_url.trim().to_owned(),
        client_id: oidc.client_id.clone(),
        end_session_url,
        userinfo_url,
        groups_claim: oidc.groups_claim.clone(),
        role_groups: role_groups(oidc),
    })))
}

/// The discovery document as JSON, for what the typed metadata leaves out (`end_session_endpoint`).
async fn raw_discovery(http: &HttpsClient, issuer: &str) -> Result<Value, HttpError> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let request = http::Request::get(&url)
        .header("accept", "application/json")
        .body(Vec::new())
        .map_err(|err| HttpError(err.to_string()))?;
    let response = send(http.clone(), request).await?;
    serde_json::from_slice(response.body()).map_err(|err| HttpError(err.to_string()))
}

impl Sso {
    /// Origins the browser is sent to (the provider's), for the CSP's `form-action`.
    pub fn origins(&self) -> Vec<String> {
        let mut origins = Vec::new();
        for url in std::iter::once(self.issuer.as_str()).chain(self.end_session_url.as_deref()) {
            if let Some((scheme, rest)) = url.split_once("://") {
                let host = rest.split('/').next().unwrap_or_default();
                let origin = format!("{scheme}://{host}");
                if !origins.contains(&origin) {
                    origins.push(origin);
                }
            }
        }
        origins
    }

    /// The provider's logout page, when it has one, sending people back to the sign-in page.
    pub fn logout_url(&self, id_token: Option<&str>, public_url: &str) -> Option<String> {
        let end = self.end_session_url.as_deref()?;
        let separator = if end.contains('?') { '&' } else { '?' };
        let mut url = format!("{end}{separator}client_id={}", url_encode(&self.client_id));
        if !public_url.is_empty() {
            url.push_str(&format!(
                "&post_logout_redirect_uri={}",
                url_encode(&format!("{public_url}/login?signed_out=1"))
            ));
        }
        if let Some(token) = id_token {
            url.push_str(&format!("&id_token_hint={}", url_encode(token)));
        }
        Some(url)
    }
}

/// A sign-in in progress, kept in the session until the provider sends the browser back.
#[derive(Serialize, Deserialize)]
struct Pending {
    state: String,
    nonce: String,
    pkce_verifier: String,
    next: String,
    started_ms: i64,
}

pub fn routes() -> Router<Auth> {
    Router::new()
        .route("/auth/oidc/start", get(start))
        .route("/auth/oidc/callback", get(callback))
}

#[derive(Deserialize)]
struct StartQuery {
    next: Option<String>,
}

async fn start(
    State(auth): State<Auth>,
    ClientAddr(from): ClientAddr,
    session: Session,
    Query(query): Query<StartQuery>,
) -> Result<Response, AppError> {
    let Some(sso) = auth.oidc.clone() else {
        return Err(AppError::NotFound(
            "single sign-on is not configured".into(),
        ));
    };
    if !auth.login_limiter.allow(&from, now_ms()) {
        return Ok(too_many());
    }
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = sso
        .client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();
    let pending = Pending {
        state: state.secret().clone(),
        nonce: nonce.secret().clone(),
        pkce_verifier: verifier.secret().clone(),
        next: safe_next(query.next.as_deref()),
        started_ms: now_ms(),
    };
    session.set_expiry(Some(Expiry::OnInactivity(time::Duration::minutes(10))));
    session
        .insert(PENDING_KEY, &pending)
        .await
        .map_err(|err| AppError::internal("starting single sign-on", err))?;
    Ok(Redirect::to(url.as_str()).into_response())
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// Why a callback was refused, as the sign-in page's error code.
fn refuse(code: &str, next: &str, why: &dyn std::fmt::Display) -> Response {
    tracing::warn!(reason = %why, code, "single sign-on refused");
    back_to_login(code, next)
}

async fn callback(
    State(auth): State<Auth>,
    ClientAddr(from): ClientAddr,
    session: Session,
    Query(query): Query<CallbackQuery>,
) -> Result<Response, AppError> {
    let Some(sso) = auth.oidc.clone() else {
        return Err(AppError::NotFound(
            "single sign-on is not configured".into(),
        ));
    };
    let now = now_ms();
    if !auth.login_limiter.allow(&from, now) {
        return Ok(too_many());
    }
    // One use: whatever happens next, this sign-in attempt is over.
    let pending: Option<Pending> = session
        .remove(PENDING_KEY)
        .await
        .map_err(|err| AppError::internal("reading single sign-on state", err))?;
    let Some(pending) = pending else {
        return Ok(refuse(
            "expired",
            "/",
            &"no sign-in in progress in this session",
        ));
    };
    let next = pending.next.clone();
    if now - pending.started_ms > PENDING_MS {
        return Ok(refuse("expired", &next, &"sign-in older than 10 minutes"));
    }
    let state_matches = query
        .state
        .as_deref()
        .is_some_and(|state| constant_time_eq(state.as_bytes(), pending.state.as_bytes()));
    if !state_matches {
        return Ok(refuse("state", &next, &"state does not match"));
    }
    if let Some(error) = query.error.as_deref() {
        return Ok(refuse("denied", &next, &format!("provider said {error}")));
    }
    let Some(code) = query.code else {
        return Ok(refuse("failed", &next, &"no code"));
    };
    let http = sso.http.clone();
    let client = |request| send(http.clone(), request);
    let exchange = match sso.client.exchange_code(AuthorizationCode::new(code)) {
        Ok(exchange) => exchange,
        Err(err) => return Ok(refuse("failed", &next, &err)),
    };
    let token = match exchange
        .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
        .request_async(&client)
        .await
    {
        Ok(token) => token,
        Err(err) => return Ok(refuse("failed", &next, &err)),
    };
    let Some(id_token) = token.id_token() else {
        return Ok(refuse("failed", &next, &"no ID token in the answer"));
    };
    let verifier = sso.client.id_token_verifier();
    let claims = match id_token.claims(&verifier, &Nonce::new(pending.nonce.clone())) {
        Ok(claims) => claims.clone(),
        Err(openidconnect::ClaimsVerificationError::InvalidNonce(why)) => {
            return Ok(refuse("nonce", &next, &why));
        }
        Err(err) => return Ok(refuse("failed", &next, &err)),
    };
    let id_token_text = id_token.to_string();
    // The verified token's payload, for the groups claim the typed claims do not carry.
    let mut groups = payload_groups(&id_token_text, &sso.groups_claim);
    if groups.is_none() {
        if let Some(url) = &sso.userinfo_url {
            groups = userinfo_groups(&sso, url, token.access_token().secret()).await;
        }
    }
    let groups = groups.unwrap_or_default();
    let subject = claims.subject().as_str().to_owned();
    let Some(role) = role_for(&sso.role_groups, &groups) else {
        // Someone who had a role and left every mapped group: their sessions and tokens stop
        // now, not when they expire.
        let lost = lose_groups(&auth.db, &sso.issuer, &subject, now)
            .await
            .map_err(|err| AppError::internal("ending a user's access", err))?;
        if let Some(user_id) = lost {
            let mut system = Principal::new("palisade", "Palisade (single sign-on)", Role::Viewer);
            system.from.clone_from(&from);
            Event::new("user.groups_lost", "user", &user_id)
                .detail(serde_json::json!({ "groups": groups }))
                .record(auth.db.pool(), &system, now)
                .await
                .map_err(|err| AppError::internal("auditing a lost role", err))?;
        }
        return Ok(refuse(
            "no_role",
            &next,
            &format!("groups {groups:?} give no role"),
        ));
    };
    let email = claims
        .email()
        .map(|email| email.as_str().to_owned())
        .unwrap_or_default();
    let display_name = claims
        .preferred_username()
        .map(|name| name.as_str().to_owned())
        .or_else(|| {
            claims
                .name()
                .and_then(|name| name.get(None))
                .map(|name| name.as_str().to_owned())
        })
        .or_else(|| (!email.is_empty()).then(|| email.clone()))
        .unwrap_or_else(|| subject.clone());
    let user_id = upsert_user(
        auth.db.pool(),
        &sso.issuer,
        &subject,
        &display_name,
        &email,
        role,
        now,
    )
    .await
    .map_err(|err| AppError::internal("saving a signed-in user", err))?;
    let user = find_user(&auth.db, &user_id)
        .await
        .map_err(|err| AppError::internal("reading a signed-in user", err))?;
    if user.is_none_or(|user| user.disabled) {
        return Ok(refuse("disabled", &next, &"an admin disabled this account"));
    }
    let principal = Principal {
        user_id,
        display_name,
        role,
        via: Via::Session,
        from,
        token: None,
    };
    start_session(&auth, &session, &principal, "oidc", now).await?;
    session
        .insert(ID_TOKEN_KEY, &id_token_text)
        .await
        .map_err(|err| AppError::internal("starting a session", err))?;
    Ok(Redirect::to(&next).into_response())
}

/// The string list under `claim` in a JWT's payload (the token was verified before).
fn payload_groups(jwt: &str, claim: &str) -> Option<Vec<String>> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    strings(value.get(claim)?)
}

fn strings(value: &Value) -> Option<Vec<String>> {
    match value {
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_owned))
                .collect(),
        ),
        Value::String(one) => Some(vec![one.clone()]),
        _ => None,
    }
}

async fn userinfo_groups(sso: &Sso, url: &str, access_token: &str) -> Option<Vec<String>> {
    let request = http::Request::get(url)
        .header("accept", "application/json")
        .header("authorization", format!("Bearer {access_token}"))
        .body(Vec::new())
        .ok()?;
    let response = send(sso.http.clone(), request).await.ok()?;
    if !response.status().is_success() {
        tracing::warn!(status = %response.status(), "userinfo request failed");
        return None;
    }
    let value: Value = serde_json::from_slice(response.body()).ok()?;
    strings(value.get(&sso.groups_claim)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_highest_mapped_role_wins() {
        let config = OidcConfig {
            viewer_groups: vec!["everyone".into()],
            author_groups: vec!["devs".into()],
            admin_groups: vec!["ops".into()],
            ..OidcConfig::default()
        };
        let mapping = role_groups(&config);
        let groups = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(
            role_for(&mapping, &groups(&["everyone"])),
            Some(Role::Viewer)
        );
        assert_eq!(
            role_for(&mapping, &groups(&["everyone", "devs"])),
            Some(Role::Author)
        );
        assert_eq!(
            role_for(&mapping, &groups(&["ops", "devs"])),
            Some(Role::Admin)
        );
        assert_eq!(role_for(&mapping, &groups(&["strangers"])), None);
    }

    #[test]
    fn groups_come_from_the_payload() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(r#"{"sub":"1","groups":["a","b"],"role":"x"}"#);
        let jwt = format!("h.{payload}.s");
        assert_eq!(
            payload_groups(&jwt, "groups"),
            Some(vec!["a".to_owned(), "b".to_owned()])
        );
        assert_eq!(payload_groups(&jwt, "role"), Some(vec!["x".to_owned()]));
        assert_eq!(payload_groups(&jwt, "missing"), None);
    }
}
