//! `/api/v1`: the stable, documented JSON API for automation (CI, GitOps, scripts).
//!
//! Each domain has a module with one function, `endpoints()`: its routes, each declared once as an
//! OpenAPI [`Operation`] with its handler; the router and the OpenAPI document are both built from
//! them. Every operation names the
//! [`Action`](palisade_app::auth::Action) it performs; its handler calls
//! `Caller::require(action)` first, and `server/tests/it/authz.rs` calls every documented operation
//! as every role to prove the two agree. Handlers only extract, authorize and call the same service
//! code the UI's server functions call; errors leave as [`AppError`](palisade_app::AppError) JSON.

pub mod audit;
pub mod clusters;
pub mod compliance;
pub mod exceptions;
pub mod impact;
pub mod me;
pub mod openapi;
pub mod people;
pub mod policies;
pub mod rollouts;
pub mod tokens;
pub mod violations;

use axum::routing::MethodRouter;
use axum::Router;
use palisade_app::state::AppState;

pub use openapi::{Endpoint, Operation};

/// `?policy=` (a policy's id or name) on a list.
#[derive(Debug, serde::Deserialize)]
struct PolicyQuery {
    #[serde(default)]
    policy: Option<String>,
}

/// A body that carries only an optional comment (approve, reject, revoke).
#[derive(Debug, Default, serde::Deserialize, schemars::JsonSchema)]
struct CommentBody {
    /// Shown in the history and the audit log.
    #[serde(default)]
    comment: String,
}

/// Every module's endpoints, in the order the OpenAPI document lists them.
fn endpoints() -> Vec<openapi::Endpoint> {
    [
        openapi::endpoints(),
        me::endpoints(),
        policies::endpoints(),
        impact::endpoints(),
        tokens::endpoints(),
        people::endpoints(),
        audit::endpoints(),
        clusters::endpoints(),
        rollouts::endpoints(),
        violations::endpoints(),
        exceptions::endpoints(),
        compliance::endpoints(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Every `/api/v1` route, from the endpoints (methods of one path are served together).
pub fn router(state: AppState, gate: violations::Gate) -> Router {
    let mut paths: Vec<(&'static str, MethodRouter<AppState>)> = Vec::new();
    for endpoint in endpoints() {
        let path = endpoint.operation.path;
        match paths.iter_mut().find(|(p, _)| *p == path) {
            Some((_, methods)) => *methods = std::mem::take(methods).merge(endpoint.handler),
            None => paths.push((path, endpoint.handler)),
        }
    }
    paths
        .into_iter()
        .fold(Router::new(), |router, (path, methods)| {
            router.route(path, methods)
        })
        .layer(axum::Extension(gate))
        .with_state(state)
}

/// Every documented operation, in the order the OpenAPI document lists them.
pub fn operations() -> Vec<Operation> {
    endpoints().into_iter().map(|e| e.operation).collect()
}
