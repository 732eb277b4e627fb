//! `/api/v1/impact`: what a stored policy version, or a policy source, would do to each object of
//! the clusters' inventories if enforced. The handler extracts, authorizes and calls
//! `palisade_app::impact::ssr::findings`, the service the Impact tab's grouping shares its
//! evaluation with.

use axum::extract::State;
use axum::Json;
use palisade_app::auth::ssr::Caller;
use palisade_app::auth::Action;
use palisade_app::db::now_ms;
use palisade_app::impact::findings::{ImpactFindings, ImpactRequest};
use palisade_app::state::AppState;
use palisade_app::ServerError;
use serde_json::json;

use super::openapi::schema;
use super::{Endpoint, Operation};

async fn post_impact(
    caller: Caller,
    State(state): State<AppState>,
    Json(request): Json<ImpactRequest>,
) -> Result<Json<ImpactFindings>, ServerError> {
    // A source needs more (EditPolicies, as a draft's preview): the service checks it.
    let who = caller.require(Action::Read)?;
    palisade_app::impact::ssr::findings::findings(&state.db, &who, now_ms(), request)
        .await
        .map(Json)
}

pub fn endpoints() -> Vec<Endpoint> {
    vec![Operation {
        method: "POST",
        path: "/api/v1/impact",
        action: Some(Action::Read),
        id: "post_impact",
        summary: "What enforcing a policy would do to each object of the inventory of every enabled cluster, or of the clusters named (`clusters`, at most 200 ids; an unknown id is 404). Give either a stored policy (`policy`: id or name, with `version`, default the current one) or a policy `source` with optional `params` (at most 256 KiB together; needs the author role, like a draft's preview; nothing is saved). Per cluster: the objects evaluated, whether the answer is complete, the kinds that cannot be read, exact deny/warn/audit counts, and up to 10,000 findings (denials first; `truncated` says when there were more), each with the object, its owning workload, the action, whether an active exception covers it, the policy and the engine's message. A source the engine refuses is 400 with its line and column.",
        request: Some(schema::<ImpactRequest>()),
        example: Some(json!({ "policy": "pod-security-baseline-api", "clusters": ["nonexistent"] })),
        response: schema::<ImpactFindings>(),
        success: 200,
    }
    .with(post_impact)]
}
