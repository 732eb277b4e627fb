//! Probes: `/healthz` says the process is alive; `/readyz` says it can serve (database reachable, schema
//! current), or 503 with the reason.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use palisade_app::state::AppState;

/// `GET /healthz`: the process answers.
pub async fn healthz() -> impl IntoResponse {
    "ok\n"
}

/// `GET /readyz`: the database answers and every migration of this binary is applied.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.db.migration_status().await {
        Ok(status) if status.pending.is_empty() => (StatusCode::OK, "ready\n".to_owned()),
        Ok(status) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "not ready: database schema is behind, {} migration(s) pending; run `palisade migrate`\n",
                status.pending.len()
            ),
        ),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "not ready: database unreachable\n".to_owned())
        }
    }
}
