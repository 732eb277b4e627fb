//! `/api/v1/exceptions`: request exceptions to a policy, approve or reject them (never your own),
//! revoke them, and read them with their state as of now (`expired` once the expiry passed).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use palisade_app::auth::ssr::Caller;
use palisade_app::auth::Action;
use palisade_app::db::now_ms;
use palisade_app::exceptions::ssr::service;
use palisade_app::exceptions::{Exception, NewException};
use palisade_app::state::AppState;
use palisade_app::ServerError;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use super::openapi::schema;
use super::{CommentBody, Endpoint, Operation, PolicyQuery};

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Operation {
            method: "GET",
            path: "/api/v1/exceptions",
            action: Some(Action::Read),
            id: "list_exceptions",
            summary: "Exceptions, newest first, with their state as of now; `?policy=` (id or name) for one policy's.",
            request: None,
            example: None,
            response: schema::<Vec<Exception>>(),
            success: 200,
        }
        .with(list),
        Operation {
            method: "POST",
            path: "/api/v1/exceptions",
            action: Some(Action::RequestException),
            id: "request_exception",
            summary: "Request an exception to a policy for namespaces, a label selector or one named resource, with a justification, a ticket and an expiry (at most 365 days ahead). An approver other than you decides.",
            request: Some(schema::<NewException>()),
            example: Some(json!({
                "policy": "disallow-privileged",
                "scope": { "kind": "namespaces", "namespaces": ["legacy-agents"] },
                "justification": "the node agent needs privileged mode until its 2.0 release",
                "ticket": "SEC-1234",
                "expires_ms": 4_102_444_800_000_i64,
            })),
            response: schema::<Exception>(),
            success: 201,
        }
        .with(request),
        Operation {
            method: "GET",
            path: "/api/v1/exceptions/{id}",
            action: Some(Action::Read),
            id: "get_exception",
            summary: "One exception, with its state as of now.",
            request: None,
            example: None,
            response: schema::<Exception>(),
            success: 200,
        }
        .with(read),
        Operation {
            method: "POST",
            path: "/api/v1/exceptions/{id}/decision",
            action: Some(Action::Approve),
            id: "decide_exception",
            summary: "Approve or reject a requested exception (never your own); a rejection needs a comment.",
            request: Some(schema::<DecisionBody>()),
            example: Some(json!({ "approve": true, "comment": "compensating control: node isolation" })),
            response: schema::<Exception>(),
            success: 200,
        }
        .with(decide),
        Operation {
            method: "POST",
            path: "/api/v1/exceptions/{id}/revoke",
            action: Some(Action::Approve),
            id: "revoke_exception",
            summary: "End a requested or approved exception now; the next rollout of the policy drops its exclusion.",
            request: Some(schema::<CommentBody>()),
            example: Some(json!({ "comment": "the agent was upgraded" })),
            response: schema::<Exception>(),
            success: 200,
        }
        .with(revoke),
    ]
}

/// An approver's decision on a requested exception.
#[derive(Debug, Deserialize, JsonSchema)]
struct DecisionBody {
    approve: bool,
    /// Why; required when rejecting.
    #[serde(default)]
    comment: String,
}

async fn list(
    caller: Caller,
    State(state): State<AppState>,
    Query(query): Query<PolicyQuery>,
) -> Result<Json<Vec<Exception>>, ServerError> {
    let who = caller.require(Action::Read)?;
    service::list(&state.db, &who, now_ms(), query.policy.as_deref())
        .await
        .map(Json)
}

async fn request(
    caller: Caller,
    State(state): State<AppState>,
    Json(input): Json<NewException>,
) -> Result<(StatusCode, Json<Exception>), ServerError> {
    let who = caller.require(Action::RequestException)?;
    let exception = service::request(&state.db, &who, now_ms(), input).await?;
    Ok((StatusCode::CREATED, Json(exception)))
}

async fn read(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Exception>, ServerError> {
    let who = caller.require(Action::Read)?;
    service::get(&state.db, &who, now_ms(), &id).await.map(Json)
}

async fn decide(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<DecisionBody>,
) -> Result<Json<Exception>, ServerError> {
    let who = caller.require(Action::Approve)?;
    service::decide(&state.db, &who, now_ms(), &id, body.approve, &body.comment)
        .await
        .map(Json)
}

async fn revoke(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Option<Json<CommentBody>>,
) -> Result<Json<Exception>, ServerError> {
    let who = caller.require(Action::Approve)?;
    let comment = body.map(|Json(b)| b.comment).unwrap_or_default();
    service::revoke(&state.db, &who, now_ms(), &id, &comment)
        .await
        .map(Json)
}
