//! `/api/v1/audit`: the audit log for admins, a page at a time or whole as JSON or CSV.

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use palisade_app::audit::ssr::list;
use palisade_app::audit::{to_csv, AuditEntry, AuditPage, AuditQuery, EXPORT_LIMIT};
use palisade_app::auth::ssr::Caller;
use palisade_app::auth::Action;
use palisade_app::state::AppState;
use palisade_app::{AppError, ServerError};
use serde::Deserialize;

use super::openapi::schema;
use super::{Endpoint, Operation};

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Operation {
            method: "GET",
            path: "/api/v1/audit",
            action: Some(Action::ReadAuditLog),
            id: "list_audit_entries",
            summary: "Audit log entries, newest first. Query: actor, action (prefix), since_ms, until_ms, limit (≤ 500), after (the `next` of the previous page).",
            request: None,
            example: None,
            response: schema::<AuditPage>(),
            success: 200,
        }
        .with(get_audit),
        Operation {
            method: "GET",
            path: "/api/v1/audit/export",
            action: Some(Action::ReadAuditLog),
            id: "export_audit_entries",
            summary: "Every matching entry (up to 100,000) as a download: format=json (default) or csv. Same filters as the list.",
            request: None,
            example: None,
            response: schema::<Vec<AuditEntry>>(),
            success: 200,
        }
        .with(export_audit),
    ]
}

async fn get_audit(
    caller: Caller,
    State(state): State<AppState>,
    Query(query): Query<AuditQuery>,
) -> Result<Json<AuditPage>, ServerError> {
    caller.require(Action::ReadAuditLog)?;
    Ok(Json(list(&state.db, &query, 500).await?))
}

#[derive(Deserialize)]
struct ExportQuery {
    #[serde(default)]
    format: Option<String>,
    #[serde(flatten)]
    filter: AuditQuery,
}

async fn export_audit(
    caller: Caller,
    State(state): State<AppState>,
    Query(query): Query<ExportQuery>,
) -> Result<Response, ServerError> {
    caller.require(Action::ReadAuditLog)?;
    let format = query.format.as_deref().unwrap_or("json");
    if !matches!(format, "json" | "csv") {
        return Err(AppError::Invalid("format: json or csv".into()).into());
    }
    let filter = AuditQuery {
        after: None,
        limit: Some(EXPORT_LIMIT),
        ..query.filter
    };
    let page = list(&state.db, &filter, EXPORT_LIMIT).await?;
    Ok(if format == "csv" {
        (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"audit.csv\"",
                ),
            ],
            to_csv(&page.entries),
        )
            .into_response()
    } else {
        (
            [(
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"audit.json\"",
            )],
            Json(page.entries),
        )
            .into_response()
    })
}
