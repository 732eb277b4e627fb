//! `/api/v1/rollouts` and `/api/v1/deployments`: propose, approve or reject, operate and watch
//! rollouts; see what is live where and check it for drift.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use palisade_app::auth::ssr::Caller;
use palisade_app::auth::Action;
use palisade_app::db::now_ms;
use palisade_app::rollouts::ssr::{drift, impact, review, service, DriftReport};
use palisade_app::rollouts::{
    Deployment, NewRollout, Operation as RolloutOperation, ProposedChange, Rollout, RolloutImpact,
    RolloutSummary,
};
use palisade_app::state::AppState;
use palisade_app::ServerError;
use serde_json::json;

use super::openapi::schema;
use super::{CommentBody, Endpoint, Operation, PolicyQuery};

fn operate_operation(path: &'static str, id: &'static str, summary: &'static str) -> Operation {
    Operation {
        method: "POST",
        path,
        action: Some(Action::OperateRollout),
        id,
        summary,
        request: None,
        example: None,
        response: schema::<Rollout>(),
        success: 200,
    }
}

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Operation {
            method: "GET",
            path: "/api/v1/rollouts",
            action: Some(Action::Read),
            id: "list_rollouts",
            summary: "Rollouts, newest first; `?policy=` (id or name) for one policy's.",
            request: None,
            example: None,
            response: schema::<Vec<RolloutSummary>>(),
            success: 200,
        }
        .with(list),
        Operation {
            method: "POST",
            path: "/api/v1/rollouts",
            action: Some(Action::ProposeRollout),
            id: "propose_rollout",
            summary: "Propose moving a policy version to a mode, in waves of clusters chosen by environment or labels. The first wave waits for approvals.",
            request: Some(schema::<NewRollout>()),
            example: Some(json!({
                "policy": "disallow-privileged",
                "mode": "audit",
                "waves": [
                    { "name": "dev", "selector": { "environment": "dev" }, "approvals": 1 },
                    { "name": "prod", "selector": { "environment": "prod" }, "approvals": 1, "soak_secs": 3600 },
                ],
            })),
            response: schema::<Rollout>(),
            success: 201,
        }
        .with(propose),
        Operation {
            method: "GET",
            path: "/api/v1/rollouts/{id}",
            action: Some(Action::Read),
            id: "get_rollout",
            summary: "A rollout with its waves, decisions and per-cluster steps.",
            request: None,
            example: None,
            response: schema::<Rollout>(),
            success: 200,
        }
        .with(read),
        Operation {
            method: "GET",
            path: "/api/v1/rollouts/{id}/change",
            action: Some(Action::Read),
            id: "get_rollout_change",
            summary: "What approvers review: the manifests the rollout applies and, per cluster, the diff from what runs there now (for a rollback or removal, each cluster's fixed plan).",
            request: None,
            example: None,
            response: schema::<ProposedChange>(),
            success: 200,
        }
        .with(change),
        Operation {
            method: "GET",
            path: "/api/v1/rollouts/{id}/impact",
            action: Some(Action::Read),
            id: "get_rollout_impact",
            summary: "What the rollout would deny, warn of and audit on each of its clusters now, per wave, judged from their inventories (apply rollouts only).",
            request: None,
            example: None,
            response: schema::<RolloutImpact>(),
            success: 200,
        }
        .with(rollout_impact),
        Operation {
            method: "POST",
            path: "/api/v1/rollouts/{id}/approve",
            action: Some(Action::Approve),
            id: "approve_rollout",
            summary: "Approve the wave waiting for approval (never your own rollout).",
            request: Some(schema::<CommentBody>()),
            example: Some(json!({ "comment": "tests pass; audit clean for a week" })),
            response: schema::<Rollout>(),
            success: 200,
        }
        .with(approve),
        Operation {
            method: "POST",
            path: "/api/v1/rollouts/{id}/reject",
            action: Some(Action::Approve),
            id: "reject_rollout",
            summary: "Reject the rollout, saying why; nothing more is applied.",
            request: Some(schema::<CommentBody>()),
            example: Some(json!({ "comment": "breaks the payments namespace" })),
            response: schema::<Rollout>(),
            success: 200,
        }
        .with(reject),
        operate_operation(
            "/api/v1/rollouts/{id}/pause",
            "pause_rollout",
            "Pause: nothing new starts; steps already sent finish.",
        )
        .with(pause),
        operate_operation(
            "/api/v1/rollouts/{id}/resume",
            "resume_rollout",
            "Resume a paused rollout.",
        )
        .with(resume),
        operate_operation(
            "/api/v1/rollouts/{id}/abort",
            "abort_rollout",
            "Abort: steps not started are skipped; applied ones stay (roll back to undo them).",
        )
        .with(abort),
        operate_operation(
            "/api/v1/rollouts/{id}/rollback",
            "rollback_rollout",
            "Put back each cluster's previous deployment of the policy; returns the new rollback rollout.",
        )
        .with(rollback),
        operate_operation(
            "/api/v1/rollouts/{id}/remove",
            "remove_rollout",
            "Remove the policy's objects from the rollout's clusters; returns the new removal rollout.",
        )
        .with(remove),
        Operation {
            method: "GET",
            path: "/api/v1/deployments",
            action: Some(Action::Read),
            id: "list_deployments",
            summary: "What is live where: per cluster and policy, the version, mode and drift; `?policy=` for one policy.",
            request: None,
            example: None,
            response: schema::<Vec<Deployment>>(),
            success: 200,
        }
        .with(deployments),
        Operation {
            method: "POST",
            path: "/api/v1/deployments/check-drift",
            action: Some(Action::OperateRollout),
            id: "check_drift",
            summary: "Compare every deployment with its cluster now (re-applying where the cluster is set to reconcile).",
            request: None,
            example: None,
            response: schema::<DriftReport>(),
            success: 200,
        }
        .with(check_drift),
    ]
}

async fn list(
    caller: Caller,
    State(state): State<AppState>,
    Query(query): Query<PolicyQuery>,
) -> Result<Json<Vec<RolloutSummary>>, ServerError> {
    let who = caller.require(Action::Read)?;
    service::list(&state.db, &who, query.policy.as_deref())
        .await
        .map(Json)
}

async fn propose(
    caller: Caller,
    State(state): State<AppState>,
    Json(input): Json<NewRollout>,
) -> Result<(StatusCode, Json<Rollout>), ServerError> {
    let who = caller.require(Action::ProposeRollout)?;
    let rollout = service::propose(&state.db, &who, now_ms(), state.rollout_rules, input).await?;
    Ok((StatusCode::CREATED, Json(rollout)))
}

async fn read(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Rollout>, ServerError> {
    let who = caller.require(Action::Read)?;
    service::get(&state.db, &who, &id).await.map(Json)
}

async fn change(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ProposedChange>, ServerError> {
    let who = caller.require(Action::Read)?;
    review::proposed(&state.db, &who, &id).await.map(Json)
}

async fn rollout_impact(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RolloutImpact>, ServerError> {
    let who = caller.require(Action::Read)?;
    impact::of_rollout(&state.db, &who, now_ms(), &id, None)
        .await
        .map(Json)
}

async fn approve(
    caller: Caller,
    state: State<AppState>,
    id: Path<String>,
    body: Option<Json<CommentBody>>,
) -> Result<Json<Rollout>, ServerError> {
    decide(caller, state, id, body, true).await
}

async fn reject(
    caller: Caller,
    state: State<AppState>,
    id: Path<String>,
    body: Option<Json<CommentBody>>,
) -> Result<Json<Rollout>, ServerError> {
    decide(caller, state, id, body, false).await
}

async fn decide(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Option<Json<CommentBody>>,
    approve: bool,
) -> Result<Json<Rollout>, ServerError> {
    let who = caller.require(Action::Approve)?;
    let comment = body.map(|Json(b)| b.comment).unwrap_or_default();
    service::decide(&state.db, &who, now_ms(), &id, approve, &comment)
        .await
        .map(Json)
}

/// One operation on a rollout (`POST /api/v1/rollouts/{id}/pause`, …).
async fn operate(
    caller: Caller,
    state: AppState,
    id: String,
    operation: RolloutOperation,
) -> Result<Json<Rollout>, ServerError> {
    let who = caller.require(Action::OperateRollout)?;
    service::operate(&state.db, &who, now_ms(), &id, operation)
        .await
        .map(Json)
}

async fn pause(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Rollout>, ServerError> {
    operate(caller, state, id, RolloutOperation::Pause).await
}

async fn resume(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Rollout>, ServerError> {
    operate(caller, state, id, RolloutOperation::Resume).await
}

async fn abort(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Rollout>, ServerError> {
    operate(caller, state, id, RolloutOperation::Abort).await
}

async fn rollback(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Rollout>, ServerError> {
    operate(caller, state, id, RolloutOperation::Rollback).await
}

async fn remove(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Rollout>, ServerError> {
    operate(caller, state, id, RolloutOperation::Remove).await
}

async fn deployments(
    caller: Caller,
    State(state): State<AppState>,
    Query(query): Query<PolicyQuery>,
) -> Result<Json<Vec<Deployment>>, ServerError> {
    let who = caller.require(Action::Read)?;
    service::deployments(&state.db, &who, query.policy.as_deref())
        .await
        .map(Json)
}

async fn check_drift(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<DriftReport>, ServerError> {
    caller.require(Action::OperateRollout)?;
    drift::check_now(&state).await.map(Json)
}
