//! Signing in and out: the local bootstrap admin's form post, logout, and the session changes both
//! share (a new session id at sign-in, the session ended at logout), each audited.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use axum::{Extension, Form, Router};
use palisade_app::account::ssr::upsert_user;
use palisade_app::audit::ssr::Event;
use palisade_app::auth::{Principal, Role, Via};
use palisade_app::db::now_ms;
use palisade_app::AppError;
use serde::Deserialize;
use time::OffsetDateTime;
use tower_sessions::{Expiry, Session};

use super::bootstrap::{self, LOCAL_ISSUER, LOCAL_SUBJECT};
use super::store::USER_KEY;
use super::{oidc, safe_next, url_encode, Auth, ClientAddr};

pub fn routes(auth: Auth) -> Router {
    Router::new()
        .route("/auth/local", post(local_sign_in))
        .route("/auth/logout", post(sign_out))
        .merge(oidc::routes())
        .with_state(auth)
}

#[derive(Deserialize)]
pub struct LocalForm {
    secret: String,
    #[serde(default)]
    next: Option<String>,
}

/// Back to the sign-in page with an error code the page explains.
pub fn back_to_login(error: &str, next: &str) -> Response {
    Redirect::to(&format!("/login?error={error}&next={}", url_encode(next))).into_response()
}

/// The account limiter's key for the local admin.
const LOCAL_ACCOUNT_KEY: &str = "local-admin";

/// Too many attempts from one address, or on one account.
pub fn too_many() -> Response {
    (
        axum::http::StatusCode::TOO_MANY_REQUESTS,
        [("retry-after", "60")],
        "Too many sign-in attempts from your address or on this account; wait a minute and try again.\n",
    )
        .into_response()
}

async fn local_sign_in(
    State(auth): State<Auth>,
    ClientAddr(from): ClientAddr,
    session: Session,
    Form(form): Form<LocalForm>,
) -> Result<Response, AppError> {
    let next = safe_next(form.next.as_deref());
    if !auth.options.local {
        return Err(AppError::NotFound("local sign-in is turned off".into()));
    }
    let now = now_ms();
    // Per address, and per account: many addresses guessing together get no more tries than one.
    if !auth.login_limiter.allow(&from, now) || !auth.account_limiter.allow(LOCAL_ACCOUNT_KEY, now)
    {
        return Ok(too_many());
    }
    if !bootstrap::redeem(&auth.db, &form.secret, now).await? {
        tracing::warn!(from = %from, "local sign-in refused: wrong or used bootstrap secret");
        return Ok(back_to_login("invalid_secret", &next));
    }
    let user_id = upsert_user(
        auth.db.pool(),
        LOCAL_ISSUER,
        LOCAL_SUBJECT,
        "Local admin",
        "",
        Role::Admin,
        now,
    )
    .await
    .map_err(|err| AppError::internal("saving the local admin", err))?;
    let principal = Principal {
        user_id,
        display_name: "Local admin".into(),
        role: Role::Admin,
        via: Via::Session,
        from,
        token: None,
    };
    start_session(&auth, &session, &principal, "local", now).await?;
    Ok(Redirect::to(&next).into_response())
}

/// Sign `principal` in on `session`: a fresh session id (so an id planted before sign-in is
/// worthless), the user's id, the absolute expiry, and an audit entry.
pub async fn start_session(
    auth: &Auth,
    session: &Session,
    principal: &Principal,
    method: &str,
    now: i64,
) -> Result<(), AppError> {
    session
        .cycle_id()
        .await
        .map_err(|err| AppError::internal("starting a session", err))?;
    session
        .insert(USER_KEY, &principal.user_id)
        .await
        .map_err(|err| AppError::internal("starting a session", err))?;
    let ends = OffsetDateTime::from_unix_timestamp_nanos(
        i128::from(now.saturating_add(auth.store.absolute_ms)) * 1_000_000,
    )
    .map_err(|err| AppError::internal("starting a session", err))?;
    session.set_expiry(Some(Expiry::AtDateTime(ends)));
    session
        .save()
        .await
        .map_err(|err| AppError::internal("starting a session", err))?;
    Event::new("session.login", "user", &principal.user_id)
        .detail(serde_json::json!({ "method": method, "role": principal.role }))
        .record(auth.db.pool(), principal, now)
        .await
        .map_err(|err| AppError::internal("auditing a sign-in", err))?;
    tracing::info!(user = %principal.user_id, role = %principal.role, method, "signed in");
    Ok(())
}

/// End the session (its cookie stops working at once), then leave through the provider's logout
/// when it offers one.
async fn sign_out(
    State(auth): State<Auth>,
    principal: Option<Extension<Principal>>,
    session: Session,
) -> Result<Response, AppError> {
    let id_token: Option<String> = session.get(oidc::ID_TOKEN_KEY).await.ok().flatten();
    session
        .flush()
        .await
        .map_err(|err| AppError::internal("ending a session", err))?;
    if let Some(Extension(principal)) = principal {
        Event::new("session.logout", "user", &principal.user_id)
            .record(auth.db.pool(), &principal, now_ms())
            .await
            .map_err(|err| AppError::internal("auditing a sign-out", err))?;
    }
    let provider_logout = auth
        .oidc
        .as_ref()
        .and_then(|sso| sso.logout_url(id_token.as_deref(), &auth.public_url));
    Ok(Redirect::to(provider_logout.as_deref().unwrap_or("/login?signed_out=1")).into_response())
}
