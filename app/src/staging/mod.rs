//! The staging view: a read model on top of the domains. For one policy it shows the intended mode
//! per environment (policies), what runs on each cluster and whether it drifted (rollouts,
//! clusters), and what each mode renders to with the exceptions active now (exceptions). It reads
//! each domain through its service and nothing reads it back, so the domains below stay one-way.

#[cfg(feature = "ssr")]
pub mod ssr;

use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use serde::{Deserialize, Serialize};

use crate::error::AppError;
use crate::model::Mode;
use crate::policies::EnvironmentMode;

/// Per policy: the intended modes, what is live where, and what each mode renders to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct Staging {
    pub policy_id: String,
    pub version: i64,
    pub modes: Vec<EnvironmentMode>,
    /// Deployments per cluster; empty until rollouts exist (the page says so).
    pub live: Vec<LiveDeployment>,
    /// The manifests each engine receives, per mode, as YAML.
    pub manifests: Vec<RenderedMode>,
}

/// What runs on one cluster (filled in by rollouts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct LiveDeployment {
    pub cluster: String,
    pub environment: String,
    pub version: i64,
    pub mode: Mode,
    /// Whether the live objects still match what was applied, at the last check.
    pub drift: crate::model::Drift,
    /// Which object drifted and how; empty when in sync.
    pub drift_detail: String,
    pub checked_ms: i64,
}

/// The manifests of one mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct RenderedMode {
    pub mode: Mode,
    /// `Ok(yaml)` or why it could not be rendered.
    pub yaml: Result<String, String>,
}

#[server(endpoint = "get_staging", input = Json)]
pub async fn get_staging(id: String) -> Result<Staging, AppError> {
    let call = crate::state::authorized(crate::auth::Action::Read)?;
    Ok(ssr::view(&call.db, &call.who, &id, call.now).await?)
}

#[server(endpoint = "set_mode", input = Json)]
pub async fn set_mode(
    id: String,
    environment: String,
    mode: Option<Mode>,
) -> Result<Staging, AppError> {
    let call = crate::state::authorized(crate::auth::Action::EditPolicies)?;
    let db = crate::state::current()?.db;
    let now = call.now;
    crate::policies::ssr::set_mode(&db, &call.who, now, &id, &environment, mode).await?;
    Ok(ssr::view(&db, &call.who, &id, now).await?)
}
