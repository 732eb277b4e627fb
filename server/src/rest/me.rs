//! `/api/v1/me`: who the caller is, as the server sees them.

use axum::Json;
use palisade_app::auth::ssr::Caller;
use palisade_app::auth::{Action, Principal};
use palisade_app::ServerError;

use super::openapi::schema;
use super::{Endpoint, Operation};

pub fn endpoints() -> Vec<Endpoint> {
    vec![Operation {
        method: "GET",
        path: "/api/v1/me",
        action: Some(Action::Read),
        id: "get_me",
        summary: "The caller: user id, display name, role and how they signed in.",
        request: None,
        example: None,
        response: schema::<Principal>(),
        success: 200,
    }
    .with(get_me)]
}

async fn get_me(caller: Caller) -> Result<Json<Principal>, ServerError> {
    Ok(caller.require(Action::Read).map(Json)?)
}
