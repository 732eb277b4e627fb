//! What every request handler and server function can reach on the server.

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::prelude::LeptosOptions;

use crate::auth::{Action, Principal};
use crate::clusters::ssr::{ClusterConnector, Context as ClustersContext};
use crate::db::Db;
use crate::error::AppError;
use crate::secrets::Sealer;

/// Shared, cheaply clonable state of a running server.
#[derive(Clone)]
pub struct AppState {
    /// Where the site's files are and how to render; read by leptos_axum.
    pub leptos_options: LeptosOptions,
    /// The connection pool, SQLite or PostgreSQL.
    pub db: Db,
    /// The key that seals cluster credentials; `None` when none is configured (then clusters
    /// cannot be registered, and start-up refuses if any exist).
    pub sealer: Option<Arc<Sealer>>,
    /// How the server reaches clusters: `KubeConnector` in production, a fake in unit tests.
    pub clusters: Arc<dyn ClusterConnector>,
    /// Palisade's address as clusters and people reach it (`http.public_url`); empty when not set.
    pub public_url: Arc<str>,
    /// What every rollout must meet (`rollouts.production_needs_approval`).
    pub rollout_rules: RolloutRules,
}

/// Rules the operator sets for every rollout (the `rollouts.*` settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RolloutRules {
    /// A wave that reaches a production cluster (see `rollouts::ssr::service::is_production`)
    /// needs an approval. On by default; an operator may turn it off, for example where
    /// production is only a name.
    pub production_needs_approval: bool,
}

impl Default for RolloutRules {
    fn default() -> Self {
        RolloutRules {
            production_needs_approval: true,
        }
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("db", &self.db)
            .field("sealer", &self.sealer.as_ref().map(|_| "<configured>"))
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// What the clusters service needs, borrowed from this state.
    pub fn clusters_context(&self) -> ClustersContext<'_> {
        ClustersContext {
            db: &self.db,
            sealer: self.sealer.as_deref(),
            connector: self.clusters.as_ref(),
        }
    }
}

/// The server's state, from the context of the server function being run (the server puts it
/// there for every request).
pub fn current() -> Result<AppState, AppError> {
    leptos::prelude::use_context::<AppState>()
        .ok_or_else(|| AppError::internal("server function", "no AppState in context"))
}

/// What a server function starts from: the caller, already authorized for one action, the
/// database, and the time of the request (passed on, so services never read the clock).
pub struct Call {
    pub who: Principal,
    pub db: Db,
    pub now: i64,
}

/// Authorizes the caller of the server function being run for `action`, then gathers what its
/// service needs: the first line of every server function that acts for someone.
pub fn authorized(action: Action) -> Result<Call, AppError> {
    let who = crate::auth::ssr::require(action)?;
    Ok(Call {
        who,
        db: current()?.db,
        now: crate::db::now_ms(),
    })
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}
