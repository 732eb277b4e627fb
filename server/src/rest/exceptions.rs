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
use serde::Deserialize;
use serde_json::{json, Value};

use super::{Endpoint, Operation};

fn scope_schema() -> Value {
    json!({
        "oneOf": [
            { "type": "object", "required": ["kind", "namespaces"], "properties": {
                "kind": { "const": "namespaces" },
                "namespaces": { "type": "array", "minItems": 1, "maxItems": 50, "items": { "type": "string" } },
            } },
            { "type": "object", "required": ["kind", "labels"], "properties": {
                "kind": { "const": "selector" },
                "labels": { "type": "object", "additionalProperties": { "type": "string" }, "description": "Objects carrying all these labels." },
            } },
            { "type": "object", "required": ["kind", "resource_kind", "namespace", "name"], "properties": {
                "kind": { "const": "resource" },
                "resource_kind": { "type": "string", "description": "e.g. Deployment" },
                "namespace": { "type": "string", "description": "Empty for cluster-scoped objects." },
                "name": { "type": "string" },
            } },
        ],
        "description": "Pod Security policies take namespaces only; Gatekeeper policies take namespaces or a one-label selector.",
    })
}

fn exception_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "id": { "type": "string" },
            "policy_id": { "type": "string" },
            "policy_name": { "type": "string" },
            "scope": scope_schema(),
            "justification": { "type": "string" },
            "ticket": { "type": "string" },
            "expires_ms": { "type": "integer" },
            "state": { "enum": ["requested", "approved", "rejected", "revoked", "expired"] },
            "requester_id": { "type": "string" },
            "requester_name": { "type": "string" },
            "decider_id": { "type": "string" },
            "decider_name": { "type": "string" },
            "decision_comment": { "type": "string" },
            "decided_ms": { "type": "integer" },
            "created_ms": { "type": "integer" },
            "updated_ms": { "type": "integer" },
        },
    })
}

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
            response: json!({ "type": "array", "items": exception_schema() }),
            success: 200,
        }
        .with(list),
        Operation {
            method: "POST",
            path: "/api/v1/exceptions",
            action: Some(Action::RequestException),
            id: "request_exception",
            summary: "Request an exception to a policy for namespaces, a label selector or one named resource, with a justification, a ticket and an expiry (at most 365 days ahead). An approver other than you decides.",
            request: Some(json!({
                "type": "object",
                "required": ["policy", "scope", "justification", "expires_ms"],
                "properties": {
                    "policy": { "type": "string", "description": "Policy id or name." },
                    "scope": scope_schema(),
                    "justification": { "type": "string" },
                    "ticket": { "type": "string" },
                    "expires_ms": { "type": "integer", "description": "Milliseconds since the epoch; in the future, at most 365 days ahead." },
                },
            })),
            example: Some(json!({
                "policy": "disallow-privileged",
                "scope": { "kind": "namespaces", "namespaces": ["legacy-agents"] },
                "justification": "the node agent needs privileged mode until its 2.0 release",
                "ticket": "SEC-1234",
                "expires_ms": 4_102_444_800_000_i64,
            })),
            response: exception_schema(),
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
            response: exception_schema(),
            success: 200,
        }
        .with(read),
        Operation {
            method: "POST",
            path: "/api/v1/exceptions/{id}/decision",
            action: Some(Action::Approve),
            id: "decide_exception",
            summary: "Approve or reject a requested exception (never your own); a rejection needs a comment.",
            request: Some(json!({
                "type": "object",
                "required": ["approve"],
                "properties": {
                    "approve": { "type": "boolean" },
                    "comment": { "type": "string" },
                },
            })),
            example: Some(json!({ "approve": true, "comment": "compensating control: node isolation" })),
            response: exception_schema(),
            success: 200,
        }
        .with(decide),
        Operation {
            method: "POST",
            path: "/api/v1/exceptions/{id}/revoke",
            action: Some(Action::Approve),
            id: "revoke_exception",
            summary: "End a requested or approved exception now; the next rollout of the policy drops its exclusion.",
            request: Some(json!({
                "type": "object",
                "properties": { "comment": { "type": "string" } },
            })),
            example: Some(json!({ "comment": "the agent was upgraded" })),
            response: exception_schema(),
            success: 200,
        }
        .with(revoke),
    ]
}

#[derive(Debug, Deserialize)]
struct PolicyQuery {
    #[serde(default)]
    policy: Option<String>,
}

#[derive(Debug, Deserialize)]
struct DecisionBody {
    approve: bool,
    #[serde(default)]
    comment: String,
}

#[derive(Debug, Default, Deserialize)]
struct CommentBody {
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
