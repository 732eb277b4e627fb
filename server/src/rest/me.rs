//! `/api/v1/me`: who the caller is, as the server sees them.

use axum::routing::get;
use axum::{Json, Router};
use palisade_app::auth::ssr::Caller;
use palisade_app::auth::{Action, Principal};
use palisade_app::state::AppState;
use palisade_app::ServerError;
use serde_json::json;

use super::Operation;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/me", get(get_me))
}

pub fn operations() -> Vec<Operation> {
    vec![Operation {
        method: "GET",
        path: "/api/v1/me",
        action: Some(Action::Read),
        id: "get_me",
        summary: "The caller: user id, display name, role and how they signed in.",
        request: None,
        example: None,
        response: json!({
            "type": "object",
            "required": ["user_id", "display_name", "role", "via"],
            "properties": {
                "user_id": { "type": "string" },
                "display_name": { "type": "string" },
                "role": { "enum": ["viewer", "author", "approver", "admin"] },
                "via": { "enum": ["session", "token"] },
            },
        }),
        success: 200,
    }]
}

async fn get_me(caller: Caller) -> Result<Json<Principal>, ServerError> {
    Ok(caller.require(Action::Read).map(Json)?)
}
