//! `/api/v1/ingest/audit`, where clusters' apiservers post their audit events, and
//! `/api/v1/violations`, where people and scripts read what came of them.
//!
//! Ingest is authenticated by the cluster's own token (`pali_…`, see
//! `palisade_app::violations::ssr::ingest`), never by a user's. At most `ingest.max_in_flight`
//! batches are counted at once; a batch that finds no slot within `ingest.wait_ms` is answered 429
//! with `Retry-After` (the apiserver's webhook backend sends it again), never dropped. A 200 means
//! the batch is committed.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use palisade_app::auth::ssr::Caller;
use palisade_app::auth::Action;
use palisade_app::db::now_ms;
use palisade_app::state::AppState;
use palisade_app::violations::ssr::events::EventList;
use palisade_app::violations::ssr::{ingest, queries};
use palisade_app::violations::ssr_types::ClusterScan;
use palisade_app::violations::{
    to_csv, Charts, Evidence, IngestToken, Violation, ViolationFilter, ViolationPage, EXPORT_LIMIT,
};
use palisade_app::{AppError, ServerError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::Semaphore;

use super::openapi::schema;
use super::{Endpoint, Operation};

/// How ingest admits batches; one per server.
#[derive(Debug, Clone)]
pub struct Gate {
    slots: Arc<Semaphore>,
    wait: Duration,
    retry_after_secs: u64,
    deny_spike: i64,
}

impl Gate {
    pub fn new(
        max_in_flight: usize,
        wait: Duration,
        retry_after_secs: u64,
        deny_spike: i64,
    ) -> Gate {
        Gate {
            slots: Arc::new(Semaphore::new(max_in_flight.max(1))),
            wait,
            retry_after_secs,
            deny_spike,
        }
    }
}

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Operation {
            method: "POST",
            path: ingest::PATH,
            action: None,
            id: "ingest_audit",
            summary: "Where a cluster's kube-apiserver posts its audit events (audit.k8s.io/v1 EventList, as --audit-webhook-config-file sends them), authenticated by that cluster's ingest token (Authorization: Bearer pali_…; see POST /api/v1/clusters/{id}/ingest-token). ValidatingAdmissionPolicy validation failures, Pod Security audit violations and admission denials become violations; an audit ID counts once. 200 means committed; 429 with Retry-After means send it again later.",
            request: Some(schema::<EventList>()),
            example: Some(json!({ "kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [] })),
            response: schema::<ingest::Accepted>(),
            success: 200,
        }
        .with(ingest_audit),
        Operation {
            method: "GET",
            path: "/api/v1/violations",
            action: Some(Action::Read),
            id: "list_violations",
            summary: "One page of violations, most recently seen first. Query: cluster (id), namespace, policy (reported name or Palisade policy id), action, source, since_ms, until_ms, within_days, open=true, after (the previous page's next), limit (1-500).",
            request: None,
            example: None,
            response: schema::<ViolationPage>(),
            success: 200,
        }
        .with(list),
        Operation {
            method: "GET",
            path: "/api/v1/violations/export",
            action: Some(Action::Read),
            id: "export_violations",
            summary: "Every matching violation (up to 100,000) as a download: format=csv (default) or json. Same filters as the list.",
            request: None,
            example: None,
            response: schema::<Vec<Violation>>(),
            success: 200,
        }
        .with(export),
        Operation {
            method: "GET",
            path: "/api/v1/violations/charts",
            action: Some(Action::Read),
            id: "chart_violations",
            summary: "Counts per day over the last `days` (1-90, default 14), per policy and per cluster. Filters: cluster, policy, action.",
            request: None,
            example: None,
            response: schema::<Charts>(),
            success: 200,
        }
        .with(charts),
        Operation {
            method: "GET",
            path: "/api/v1/rollouts/{id}/evidence",
            action: Some(Action::Read),
            id: "rollout_evidence",
            summary: "The evidence for promoting the rollout's policy: its violations on the rollout's clusters over the last `days` (1-90, default 7), per cluster, with the most recent workloads still in the way and a one-line summary (`clean` when none).",
            request: None,
            example: None,
            response: schema::<EvidenceReply>(),
            success: 200,
        }
        .with(evidence),
        Operation {
            method: "POST",
            path: "/api/v1/clusters/{id}/scan",
            action: Some(Action::OperateRollout),
            id: "scan_cluster",
            summary: "Scan the cluster now: every workload (Pods, Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs, CronJobs; those a controller owns through their owner), read page by page and evaluated against what Palisade deployed there; its PolicyReports and the status of its Gatekeeper constraints. Opens scan violations, and resolves the earlier ones a complete scan no longer finds.",
            request: None,
            example: None,
            response: schema::<ClusterScan>(),
            success: 200,
        }
        .with(scan_one),
        Operation {
            method: "POST",
            path: "/api/v1/clusters/{id}/ingest-token",
            action: Some(Action::ManageClusters),
            id: "rotate_ingest_token",
            summary: "A new ingest token for the cluster, shown once; the previous one stops working at once. Put it in the apiserver's audit webhook kubeconfig (an https URL: clients send tokens over TLS only).",
            request: None,
            example: None,
            response: schema::<IngestToken>(),
            success: 200,
        }
        .with(rotate_token),
    ]
}

fn too_busy(gate: &Gate) -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, gate.retry_after_secs.to_string())],
        Json(json!({ "Busy": "too many audit batches at once; send this one again after Retry-After" })),
    )
        .into_response()
}

async fn ingest_audit(
    State(state): State<AppState>,
    Extension(gate): Extension<Gate>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ServerError> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or_default();
    let Some(cluster_id) = ingest::authenticate(&state.db, bearer).await? else {
        return Err(AppError::Unauthenticated.into());
    };
    let Ok(Ok(_permit)) = tokio::time::timeout(gate.wait, gate.slots.acquire()).await else {
        tracing::warn!(cluster = %cluster_id, "audit batch refused with 429: every ingest slot is busy");
        return Ok(too_busy(&gate));
    };
    let accepted = ingest::accept(&state.db, &cluster_id, &body, now_ms(), gate.deny_spike).await?;
    if !accepted.written.spikes.is_empty() {
        for spike in &accepted.written.spikes {
            tracing::warn!(cluster = %cluster_id, policy = %spike.policy, count = spike.count, "deny spike");
        }
    }
    Ok(Json(accepted).into_response())
}

/// The query string of the list, export and charts. Every value arrives as text (flattened
/// numbers do not survive URL decoding), and is read here with an error naming the parameter.
#[derive(Debug, Default, Deserialize)]
struct RawFilter {
    cluster: Option<String>,
    namespace: Option<String>,
    policy: Option<String>,
    action: Option<String>,
    source: Option<String>,
    since_ms: Option<String>,
    until_ms: Option<String>,
    within_days: Option<String>,
    open: Option<String>,
    after: Option<String>,
    limit: Option<String>,
    format: Option<String>,
    days: Option<String>,
}

fn number(name: &str, value: Option<&String>) -> Result<Option<i64>, ServerError> {
    Ok(value
        .filter(|v| !v.trim().is_empty())
        .map(|v| {
            v.trim()
                .parse()
                .map_err(|_| AppError::Invalid(format!("{name}: {v:?} is not a whole number")))
        })
        .transpose()?)
}

impl RawFilter {
    fn filter(&self) -> Result<ViolationFilter, ServerError> {
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        let action = match self.action.as_deref().filter(|a| !a.is_empty()) {
            None => None,
            Some(a) => Some(palisade_app::violations::Action::parse(a).ok_or_else(|| {
                AppError::Invalid(format!("action: {a:?} is not audit, warn or deny"))
            })?),
        };
        let source = match self.source.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(palisade_app::violations::Source::parse(s).ok_or_else(|| {
                AppError::Invalid(format!("source: {s:?} is not audit, scan or report"))
            })?),
        };
        Ok(ViolationFilter {
            cluster: text(&self.cluster),
            namespace: text(&self.namespace),
            policy: text(&self.policy),
            action,
            source,
            since_ms: number("since_ms", self.since_ms.as_ref())?,
            until_ms: number("until_ms", self.until_ms.as_ref())?,
            within_days: number("within_days", self.within_days.as_ref())?,
            open: matches!(self.open.as_deref(), Some("true" | "1")),
            after: self.after.clone().filter(|a| !a.is_empty()),
            limit: number("limit", self.limit.as_ref())?,
        })
    }
}

async fn list(
    caller: Caller,
    State(state): State<AppState>,
    Query(query): Query<RawFilter>,
) -> Result<Json<ViolationPage>, ServerError> {
    caller.require(Action::Read)?;
    queries::list(&state.db, &query.filter()?, now_ms())
        .await
        .map(Json)
}

async fn export(
    caller: Caller,
    State(state): State<AppState>,
    Query(query): Query<RawFilter>,
) -> Result<Response, ServerError> {
    caller.require(Action::Read)?;
    let format = query.format.as_deref().unwrap_or("csv");
    if !matches!(format, "json" | "csv") {
        return Err(AppError::Invalid("format: json or csv".into()).into());
    }
    let filter = ViolationFilter {
        after: None,
        limit: Some(EXPORT_LIMIT),
        ..query.filter()?
    };
    let page = queries::page(&state.db, &filter, EXPORT_LIMIT, now_ms()).await?;
    Ok(if format == "csv" {
        (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"violations.csv\"",
                ),
            ],
            to_csv(&page.items),
        )
            .into_response()
    } else {
        (
            [(
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"violations.json\"",
            )],
            Json(page.items),
        )
            .into_response()
    })
}

async fn charts(
    caller: Caller,
    State(state): State<AppState>,
    Query(query): Query<RawFilter>,
) -> Result<Json<Charts>, ServerError> {
    caller.require(Action::Read)?;
    let days = number("days", query.days.as_ref())?.unwrap_or(14);
    queries::charts(&state.db, &query.filter()?, days, now_ms())
        .await
        .map(Json)
}

/// The evidence, with its one-line summary and whether the policy ran clean.
#[derive(Debug, Serialize, JsonSchema)]
struct EvidenceReply {
    #[serde(flatten)]
    evidence: Evidence,
    /// The claim a promotion rests on, or what stands in its way.
    summary: String,
    /// No violations on any of the rollout's clusters in the period.
    clean: bool,
}

async fn evidence(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<RawFilter>,
) -> Result<Json<EvidenceReply>, ServerError> {
    caller.require(Action::Read)?;
    let days = number("days", query.days.as_ref())?.unwrap_or(7);
    let evidence = queries::evidence(&state.db, &id, days, now_ms()).await?;
    Ok(Json(EvidenceReply {
        summary: evidence.summary(),
        clean: evidence.clean(),
        evidence,
    }))
}

async fn scan_one(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ClusterScan>, ServerError> {
    caller.require(Action::OperateRollout)?;
    palisade_app::violations::ssr::scan::scan_cluster(
        &state.db,
        state.sealer.as_deref(),
        state.clusters.as_ref(),
        &id,
        now_ms(),
    )
    .await
    .map(Json)
}

async fn rotate_token(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<IngestToken>, ServerError> {
    let who = caller.require(Action::ManageClusters)?;
    ingest::rotate(&state.db, &who, &id, &state.public_url, now_ms())
        .await
        .map(Json)
}
