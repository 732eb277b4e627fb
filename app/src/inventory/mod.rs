//! The inventory: Palisade's copy of the objects policies can match on each cluster (namespaces,
//! workloads, Services, Ingresses, NetworkPolicies, ServiceAccounts and RBAC), kept fresh by a list
//! and then a watch of each kind. Impact previews read it; the cluster page shows how complete it
//! is.

#[cfg(feature = "ssr")]
pub mod ssr;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// How much of one kind Palisade holds for a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct KindInventory {
    /// `Deployment`, `Pod`, …
    pub kind: String,
    /// `apps/v1`, `v1`, …
    pub api_version: String,
    /// Objects held now.
    pub objects: i64,
    /// When the last complete list of the kind finished (ms since the epoch); 0: never.
    pub listed_ms: i64,
    /// When the last change after that list arrived; 0: none yet.
    pub changed_ms: i64,
    /// Why the kind cannot be read now, in the cluster's words; empty when it can.
    pub error: String,
    /// Where `error` is a refusal: the RBAC rule Palisade's credentials lack, e.g.
    /// `get, list, watch on apps deployments`.
    pub needs: String,
}

/// A cluster's inventory, kind by kind, in the order of [`ssr::kinds::KINDS`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct ClusterInventory {
    pub cluster_id: String,
    pub kinds: Vec<KindInventory>,
}

impl ClusterInventory {
    /// Objects held, every kind together.
    pub fn objects(&self) -> i64 {
        self.kinds.iter().map(|k| k.objects).sum()
    }

    /// The kinds that cannot be read now.
    pub fn unreadable(&self) -> impl Iterator<Item = &KindInventory> {
        self.kinds.iter().filter(|k| !k.error.is_empty())
    }

    /// Every kind was listed whole and can be read: what is held is what the cluster holds.
    pub fn complete(&self) -> bool {
        self.unreadable().next().is_none() && self.kinds.iter().all(|k| k.listed_ms > 0)
    }

    /// The inventory in one line: how many objects, and whether every kind is known.
    pub fn summary(&self) -> String {
        let unreadable = self.unreadable().count();
        match (self.objects(), unreadable) {
            (_, 0) if self.kinds.iter().all(|k| k.listed_ms == 0) => {
                "Not listed yet: Palisade lists every kind once it reaches the cluster.".to_owned()
            }
            (objects, 0) if self.complete() => {
                format!("{objects} objects known, every kind readable.")
            }
            (objects, 0) => format!("{objects} objects known so far; still listing."),
            (objects, n) => format!(
                "{objects} objects known; {n} kind{} cannot be read.",
                if n == 1 { "" } else { "s" }
            ),
        }
    }

    /// The oldest complete list among the kinds (ms), or 0 when some kind was never listed.
    pub fn listed_ms(&self) -> i64 {
        self.kinds.iter().map(|k| k.listed_ms).min().unwrap_or(0)
    }
}

/// The inventories of the clusters on one page of the Clusters list (the same keyed page as
/// `list_cluster_page` with the same `after`), read at once.
#[server(endpoint = "inventory_page")]
pub async fn inventory_page(after: Option<String>) -> Result<Vec<ClusterInventory>, AppError> {
    let call = crate::state::authorized(crate::auth::Action::Read)?;
    let page = crate::clusters::ssr::service::page(
        &call.db,
        after.as_deref(),
        crate::clusters::CLUSTERS_PER_PAGE,
    )
    .await?;
    let ids: Vec<String> = page.clusters.into_iter().map(|c| c.id).collect();
    Ok(ssr::service::of_clusters(&call.db, &ids).await?)
}

/// A cluster's inventory, for its page.
#[server(endpoint = "get_inventory")]
pub async fn get_inventory(cluster_id: String) -> Result<ClusterInventory, AppError> {
    let call = crate::state::authorized(crate::auth::Action::Read)?;
    Ok(ssr::service::of_cluster(&call.db, &cluster_id).await?)
}
