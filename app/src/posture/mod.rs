//! Posture on day one: what a cluster would fail if the whole built-in library (both Pod Security
//! levels among it) were enforced there, judged against its inventory without deploying anything.
//! Assessed once a newly registered cluster's inventory is complete, and again on request; the
//! compliance page shows it as "assessed, not enforced" where nothing covers a control yet.

#[cfg(feature = "ssr")]
pub mod ssr;

use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// A workload that fails an entry, and why (the engine's message for its first object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct Failing {
    /// The top owner, `Kind/name`.
    pub workload: String,
    pub message: String,
}

/// One namespace's part of an entry's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct NamespacePosture {
    pub namespace: String,
    /// Workloads (top owners) that would be denied or warned of.
    pub workloads: i64,
    /// The first of them, with why; at most [`FAILING_KEPT`].
    pub failing: Vec<Failing>,
}

/// Workloads kept per entry and namespace (the counts stay exact).
pub const FAILING_KEPT: usize = 20;

/// One library entry judged on the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct EntryPosture {
    pub entry: String,
    pub title: String,
    /// The controls it serves, `framework:id`.
    pub controls: Vec<String>,
    /// Workloads that would be denied or warned of, every namespace together.
    pub workloads: i64,
    /// The namespaces with failing workloads, most first.
    pub namespaces: Vec<NamespacePosture>,
}

/// A cluster's posture as assessed from its inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct Assessment {
    pub cluster_id: String,
    pub cluster_name: String,
    pub assessed_ms: i64,
    /// Objects of the inventory judged.
    pub objects: i64,
    /// Every kind was listed and readable, and everything was judged within the time budget:
    /// otherwise a clean entry may not be clean.
    pub complete: bool,
    /// Every entry, those with failing workloads first.
    pub entries: Vec<EntryPosture>,
    /// `policy: reason` for what the engine cannot judge here (never guessed).
    pub not_evaluable: Vec<String>,
}

impl Assessment {
    /// The entry `id`'s result, if it was assessed.
    pub fn entry(&self, id: &str) -> Option<&EntryPosture> {
        self.entries.iter().find(|e| e.entry == id)
    }
}

/// The last assessment of a cluster; `None` before its first.
#[server(endpoint = "get_posture", input = Json)]
pub async fn get_posture(cluster_id: String) -> Result<Option<Assessment>, AppError> {
    let call = crate::state::authorized(crate::auth::Action::Read)?;
    Ok(ssr::latest(&call.db, &call.who, &cluster_id).await?)
}

/// Assess a cluster now, from its inventory (read-only: nothing is sent to the cluster).
#[server(endpoint = "assess_posture", input = Json)]
pub async fn assess_posture(cluster_id: String) -> Result<Assessment, AppError> {
    let call = crate::state::authorized(crate::auth::Action::EditPolicies)?;
    Ok(ssr::assess_now(&call.db, &call.who, call.now, &cluster_id).await?)
}
