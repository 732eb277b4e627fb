//! `/api/v1/compliance`: each framework's score, its controls × clusters, and the evidence export
//! (JSON or CSV), which is recorded in the audit log.

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use palisade_app::audit::ssr::Event;
use palisade_app::auth::ssr::Caller;
use palisade_app::auth::Action;
use palisade_app::compliance::{ssr, to_csv, FrameworkSummary, Posture};
use palisade_app::db::now_ms;
use palisade_app::state::AppState;
use palisade_app::{AppError, ServerError};
use serde::Deserialize;
use serde_json::json;

use super::openapi::schema;
use super::{Endpoint, Operation};

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Operation {
            method: "GET",
            path: "/api/v1/compliance",
            action: Some(Action::Read),
            id: "list_frameworks",
            summary: "Every framework (CIS Kubernetes Benchmark, NSA/CISA hardening guide, PCI DSS, SOC 2) with its score and number of controls.",
            request: None,
            example: None,
            response: schema::<Vec<FrameworkSummary>>(),
            success: 200,
        }
        .with(list),
        Operation {
            method: "GET",
            path: "/api/v1/compliance/{framework}",
            action: Some(Action::Read),
            id: "read_framework",
            summary: "The framework's controls, the policies serving each, and the status per enabled cluster: enforced, audited_clean, violations (in the last 7 days) or not_covered.",
            request: None,
            example: None,
            response: schema::<Posture>(),
            success: 200,
        }
        .with(read),
        Operation {
            method: "GET",
            path: "/api/v1/compliance/{framework}/evidence",
            action: Some(Action::Read),
            id: "export_evidence",
            summary: "The same as a download for auditors: format=json (default) or csv (one row per control and cluster, with the deployments behind it). Each export is recorded in the audit log.",
            request: None,
            example: None,
            response: schema::<Posture>(),
            success: 200,
        }
        .with(evidence),
    ]
}

async fn list(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<Vec<FrameworkSummary>>, ServerError> {
    caller.require(Action::Read)?;
    ssr::summaries(&state.db, now_ms()).await.map(Json)
}

async fn read(
    caller: Caller,
    State(state): State<AppState>,
    Path(framework): Path<String>,
) -> Result<Json<Posture>, ServerError> {
    caller.require(Action::Read)?;
    ssr::posture(&state.db, &framework, now_ms())
        .await
        .map(|posture| Json((*posture).clone()))
}

#[derive(Debug, Deserialize)]
struct ExportQuery {
    format: Option<String>,
}

async fn evidence(
    caller: Caller,
    State(state): State<AppState>,
    Path(framework): Path<String>,
    Query(query): Query<ExportQuery>,
) -> Result<Response, ServerError> {
    let who = caller.require(Action::Read)?;
    let format = query.format.as_deref().unwrap_or("json");
    if !matches!(format, "json" | "csv") {
        return Err(AppError::Invalid("format: json or csv".into()).into());
    }
    let now = now_ms();
    let posture = ssr::posture(&state.db, &framework, now).await?;
    Event::new("compliance.export", "framework", &posture.framework)
        .detail(json!({ "format": format, "score": posture.score }))
        .record(state.db.pool(), &who, now)
        .await
        .map_err(|err| AppError::internal("recording the audit entry", err))?;
    let file = format!(
        "attachment; filename=\"{}-evidence.{format}\"",
        posture.framework
    );
    Ok(if format == "csv" {
        (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (header::CONTENT_DISPOSITION, file),
            ],
            to_csv(&posture),
        )
            .into_response()
    } else {
        ([(header::CONTENT_DISPOSITION, file)], Json(posture)).into_response()
    })
}
