//! `/api/v1/clusters`: register, list, change, check and remove clusters. Credentials go in, never
//! come out.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use palisade_app::auth::ssr::Caller;
use palisade_app::auth::Action;
use palisade_app::clusters::ssr::service;
use palisade_app::clusters::{Cluster, ClusterChange, NewCluster};
use palisade_app::db::now_ms;
use palisade_app::posture::Assessment;
use palisade_app::state::AppState;
use palisade_app::ServerError;
use serde::Deserialize;
use serde_json::json;

use super::openapi::schema;
use super::{Endpoint, Operation};

pub fn endpoints() -> Vec<Endpoint> {
    let token_example = json!({
        "kind": "token",
        "api_url": "https://203.0.113.10:6443",
        "ca_pem": "",
        "token": "example-token",
    });
    vec![
        Operation {
            method: "GET",
            path: "/api/v1/clusters",
            action: Some(Action::Read),
            id: "list_clusters",
            summary: "Every registered cluster, by environment then name.",
            request: None,
            example: None,
            response: schema::<Vec<Cluster>>(),
            success: 200,
        }
        .with(list),
        Operation {
            method: "POST",
            path: "/api/v1/clusters",
            action: Some(Action::ManageClusters),
            id: "register_cluster",
            summary: "Register a cluster from a kubeconfig context or URL + CA + token. The cluster is probed; an unreachable one is registered with the reason.",
            request: Some(schema::<NewCluster>()),
            example: Some(json!({
                "name": "example-cluster",
                "environment": "dev",
                "labels": { "team": "platform" },
                "credentials": token_example,
            })),
            response: schema::<Cluster>(),
            success: 201,
        }
        .with(register),
        Operation {
            method: "GET",
            path: "/api/v1/clusters/{id}",
            action: Some(Action::Read),
            id: "get_cluster",
            summary: "One cluster.",
            request: None,
            example: None,
            response: schema::<Cluster>(),
            success: 200,
        }
        .with(read),
        Operation {
            method: "PATCH",
            path: "/api/v1/clusters/{id}",
            action: Some(Action::ManageClusters),
            id: "update_cluster",
            summary: "Change environment, labels, credentials, reconcile, or disable / enable.",
            request: Some(schema::<ClusterChange>()),
            example: Some(json!({ "disabled": true })),
            response: schema::<Cluster>(),
            success: 200,
        }
        .with(update),
        Operation {
            method: "DELETE",
            path: "/api/v1/clusters/{id}",
            action: Some(Action::ManageClusters),
            id: "remove_cluster",
            summary: "Remove a cluster and its sealed credentials.",
            request: None,
            example: None,
            response: schema::<()>(),
            success: 204,
        }
        .with(remove),
        Operation {
            method: "POST",
            path: "/api/v1/clusters/{id}/check",
            action: Some(Action::ManageClusters),
            id: "check_cluster",
            summary: "Probe a cluster now: reachability, Kubernetes version, admission capabilities.",
            request: None,
            example: None,
            response: schema::<Cluster>(),
            success: 200,
        }
        .with(check),
        Operation {
            method: "GET",
            path: "/api/v1/clusters/{id}/posture",
            action: Some(Action::Read),
            id: "get_cluster_posture",
            summary: "The cluster's last posture assessment: every library entry judged against its inventory, per entry and namespace (null before the first).",
            request: None,
            example: None,
            response: schema::<Option<Assessment>>(),
            success: 200,
        }
        .with(posture),
        Operation {
            method: "POST",
            path: "/api/v1/clusters/{id}/posture",
            action: Some(Action::EditPolicies),
            id: "assess_cluster_posture",
            summary: "Assess the cluster's posture now, from its inventory (read-only: nothing is sent to the cluster).",
            request: None,
            example: None,
            response: schema::<Assessment>(),
            success: 200,
        }
        .with(assess),
        Operation {
            method: "POST",
            path: "/api/v1/clusters/contexts",
            action: Some(Action::ManageClusters),
            id: "list_kubeconfig_contexts",
            summary: "The context names of a kubeconfig, current context first.",
            request: Some(schema::<ContextsRequest>()),
            example: Some(json!({ "kubeconfig": "apiVersion: v1\nkind: Config\ncontexts: []\n" })),
            response: schema::<Vec<String>>(),
            success: 200,
        }
        .with(contexts),
    ]
}

async fn list(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<Vec<Cluster>>, ServerError> {
    caller.require(Action::Read)?;
    service::list(&state.db).await.map(Json)
}

async fn register(
    caller: Caller,
    State(state): State<AppState>,
    Json(input): Json<NewCluster>,
) -> Result<(StatusCode, Json<Cluster>), ServerError> {
    let who = caller.require(Action::ManageClusters)?;
    let cluster = service::register(&state.clusters_context(), &who, now_ms(), input).await?;
    Ok((StatusCode::CREATED, Json(cluster)))
}

async fn read(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Cluster>, ServerError> {
    caller.require(Action::Read)?;
    service::get(&state.db, &id).await.map(Json)
}

async fn update(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(change): Json<ClusterChange>,
) -> Result<Json<Cluster>, ServerError> {
    let who = caller.require(Action::ManageClusters)?;
    service::update(&state.clusters_context(), &who, now_ms(), &id, change)
        .await
        .map(Json)
}

async fn remove(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ServerError> {
    let who = caller.require(Action::ManageClusters)?;
    service::remove(&state.db, &who, now_ms(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn check(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Cluster>, ServerError> {
    let who = caller.require(Action::ManageClusters)?;
    service::check(&state.clusters_context(), &who, now_ms(), &id)
        .await
        .map(Json)
}

async fn posture(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Option<Assessment>>, ServerError> {
    let who = caller.require(Action::Read)?;
    palisade_app::posture::ssr::latest(&state.db, &who, &id)
        .await
        .map(Json)
}

async fn assess(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Assessment>, ServerError> {
    let who = caller.require(Action::EditPolicies)?;
    palisade_app::posture::ssr::assess_now(&state.db, &who, now_ms(), &id)
        .await
        .map(Json)
}

/// A kubeconfig whose contexts to list.
#[derive(Deserialize, schemars::JsonSchema)]
struct ContextsRequest {
    kubeconfig: String,
}

async fn contexts(
    caller: Caller,
    Json(request): Json<ContextsRequest>,
) -> Result<Json<Vec<String>>, ServerError> {
    caller.require(Action::ManageClusters)?;
    palisade_app::clusters::ssr::credentials::contexts(&request.kubeconfig).map(Json)
}
