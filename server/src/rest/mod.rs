//! `/api/v1`: the stable, documented JSON API for automation (CI, GitOps, scripts).
//!
//! Each domain has a module with two functions: `routes()`, its axum routes, and `operations()`,
//! the same routes described for the OpenAPI document. Every operation names the
//! [`Action`](palisade_app::auth::Action) it performs; its handler calls
//! `Caller::require(action)` first, and `server/tests/it/authz.rs` calls every documented operation
//! as every role to prove the two agree. Handlers only extract, authorize and call the same service
//! code the UI's server functions call; errors leave as [`AppError`](palisade_app::AppError) JSON.

pub mod audit;
pub mod clusters;
pub mod compliance;
pub mod exceptions;
pub mod me;
pub mod openapi;
pub mod policies;
pub mod rollouts;
pub mod tokens;
pub mod violations;

use axum::Router;
use palisade_app::state::AppState;

pub use openapi::Operation;

/// Every `/api/v1` route.
pub fn router(state: AppState, gate: violations::Gate) -> Router {
    Router::new()
        .merge(openapi::routes())
        .merge(me::routes())
        .merge(policies::routes())
        .merge(tokens::routes())
        .merge(audit::routes())
        .merge(clusters::routes())
        .merge(rollouts::routes())
        .merge(violations::routes())
        .merge(exceptions::routes())
        .merge(compliance::routes())
        .layer(axum::Extension(gate))
        .with_state(state)
}

/// Every documented operation, in the order the OpenAPI document lists them.
pub fn operations() -> Vec<Operation> {
    [
        openapi::operations(),
        me::operations(),
        policies::operations(),
        tokens::operations(),
        audit::operations(),
        clusters::operations(),
        rollouts::operations(),
        violations::operations(),
        exceptions::operations(),
        compliance::operations(),
    ]
    .concat()
}
