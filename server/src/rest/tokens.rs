//! `/api/v1/tokens` and `/api/v1/sessions`: the caller's API tokens and browser sessions (an
//! admin's lists hold everyone's). Creating a token returns its secret once.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use palisade_app::account::ssr::{
    issue_token, list_sessions, list_tokens, revoke_session, revoke_token, validate_request,
};
use palisade_app::account::{
    CurrentSession, NewToken, SessionInfo, SessionLimits, TokenInfo, TokenRequest,
};
use palisade_app::auth::ssr::Caller;
use palisade_app::auth::{Action, Role};
use palisade_app::db::now_ms;
use palisade_app::state::AppState;
use palisade_app::ServerError;
use serde_json::json;

use super::openapi::schema;
use super::{Endpoint, Operation};

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Operation {
            method: "GET",
            path: "/api/v1/tokens",
            action: Some(Action::ManageOwnTokens),
            id: "list_tokens",
            summary: "The caller's API tokens (an admin's list holds everyone's). Never their secrets.",
            request: None,
            example: None,
            response: schema::<Vec<TokenInfo>>(),
            success: 200,
        }
        .with(get_tokens),
        Operation {
            method: "POST",
            path: "/api/v1/tokens",
            action: Some(Action::ManageOwnTokens),
            id: "create_token",
            summary: "Create an API token with a role no higher than the caller's. The response holds its secret, shown this once.",
            request: Some(schema::<TokenRequest>()),
            example: Some(json!({ "name": "ci", "role": "viewer", "expires_in_days": 30 })),
            response: schema::<NewToken>(),
            success: 201,
        }
        .with(create_token),
        Operation {
            method: "DELETE",
            path: "/api/v1/tokens/{id}",
            action: Some(Action::ManageOwnTokens),
            id: "revoke_token",
            summary: "Revoke a token (one's own; an admin's, anyone's). It stops working at once.",
            request: None,
            example: None,
            response: schema::<()>(),
            success: 204,
        }
        .with(delete_token),
        Operation {
            method: "GET",
            path: "/api/v1/sessions",
            action: Some(Action::ManageOwnTokens),
            id: "list_sessions",
            summary: "The caller's signed-in browser sessions (an admin's list holds everyone's).",
            request: None,
            example: None,
            response: schema::<Vec<SessionInfo>>(),
            success: 200,
        }
        .with(get_sessions),
        Operation {
            method: "DELETE",
            path: "/api/v1/sessions/{id}",
            action: Some(Action::ManageOwnTokens),
            id: "revoke_session",
            summary: "End a session (one's own; an admin's, anyone's). Its cookie stops working at once.",
            request: None,
            example: None,
            response: schema::<()>(),
            success: 204,
        }
        .with(delete_session),
    ]
}

async fn get_tokens(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<Vec<TokenInfo>>, ServerError> {
    let who = caller.require(Action::ManageOwnTokens)?;
    list_tokens(&state.db, &who, who.has(Role::Admin))
        .await
        .map(Json)
}

async fn create_token(
    caller: Caller,
    State(state): State<AppState>,
    Json(request): Json<TokenRequest>,
) -> Result<(StatusCode, Json<NewToken>), ServerError> {
    let who = caller.require(Action::ManageOwnTokens)?;
    let now = now_ms();
    let expires_ms = validate_request(&who, &request, now)?;
    let created = issue_token(
        &state.db,
        &who,
        &request.name,
        request.role,
        expires_ms,
        now,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn delete_token(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ServerError> {
    let who = caller.require(Action::ManageOwnTokens)?;
    revoke_token(&state.db, &who, &id, now_ms()).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn get_sessions(
    caller: Caller,
    State(state): State<AppState>,
    current: Option<Extension<CurrentSession>>,
    limits: Option<Extension<SessionLimits>>,
) -> Result<Json<Vec<SessionInfo>>, ServerError> {
    let who = caller.require(Action::ManageOwnTokens)?;
    let limits = limits.map_or(
        SessionLimits {
            idle_ms: i64::MAX / 4,
            absolute_ms: i64::MAX / 4,
        },
        |Extension(limits)| limits,
    );
    let current = current.map(|Extension(CurrentSession(id))| id);
    list_sessions(
        &state.db,
        &who,
        who.has(Role::Admin),
        current.as_deref(),
        limits,
        now_ms(),
    )
    .await
    .map(Json)
}

async fn delete_session(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ServerError> {
    let who = caller.require(Action::ManageOwnTokens)?;
    revoke_session(&state.db, &who, &id, now_ms()).await?;
    Ok(StatusCode::NO_CONTENT)
}
