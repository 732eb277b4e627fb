//! `/api/v1/users`: the people who have signed in, for admins; disable or enable one.

use axum::extract::{Path, State};
use axum::Json;
use palisade_app::account::people::{ssr, Person, PersonChange};
use palisade_app::auth::ssr::Caller;
use palisade_app::auth::Action;
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
            path: "/api/v1/users",
            action: Some(Action::ManageSettings),
            id: "list_users",
            summary: "Everyone who has signed in, most recent first: role, last sign-in and whether their sessions and tokens work.",
            request: None,
            example: None,
            response: schema::<Vec<Person>>(),
            success: 200,
        }
        .with(list),
        Operation {
            method: "PATCH",
            path: "/api/v1/users/{id}",
            action: Some(Action::ManageSettings),
            id: "update_user",
            summary: "Disable a person (their sessions and API tokens stop at once; nothing else changes) or enable them again. Not yourself.",
            request: Some(schema::<PersonChange>()),
            example: Some(json!({ "disabled": true })),
            response: schema::<Person>(),
            success: 200,
        }
        .with(update),
    ]
}

async fn list(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<Vec<Person>>, ServerError> {
    let who = caller.require(Action::ManageSettings)?;
    ssr::list(&state.db, &who).await.map(Json)
}

async fn update(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(change): Json<PersonChange>,
) -> Result<Json<Person>, ServerError> {
    let who = caller.require(Action::ManageSettings)?;
    ssr::change(&state.db, &who, now_ms(), &id, &change)
        .await
        .map(Json)
}
