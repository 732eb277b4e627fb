//! Reading the inventory: how complete each kind is, and the objects themselves.

use serde_json::Value;

use super::changes::Held;
use super::{kinds::KINDS, queries};
use crate::db::Db;
use crate::error::{OrFault, ServerResult};
use crate::inventory::{ClusterInventory, KindInventory};

/// A cluster's inventory, kind by kind; a kind never listed yet shows no objects and no time.
pub async fn of_cluster(db: &Db, cluster_id: &str) -> ServerResult<ClusterInventory> {
    let rows = queries::kinds_of(db.pool(), cluster_id).await?;
    Ok(assemble(cluster_id, &rows))
}

/// The inventories of several clusters, in the order of `cluster_ids`, from one read.
pub async fn of_clusters(db: &Db, cluster_ids: &[String]) -> ServerResult<Vec<ClusterInventory>> {
    let rows = queries::kinds_of_clusters(db.pool(), cluster_ids).await?;
    Ok(cluster_ids
        .iter()
        .map(|id| {
            let own: Vec<queries::KindRow> = rows
                .iter()
                .filter(|(cluster, _)| cluster == id)
                .map(|(_, row)| row.clone())
                .collect();
            assemble(id, &own)
        })
        .collect())
}

/// Every kind Palisade keeps, with what `rows` hold of it.
fn assemble(cluster_id: &str, rows: &[queries::KindRow]) -> ClusterInventory {
    let kinds = KINDS
        .iter()
        .map(|(api_version, kind, _)| {
            let row = rows.iter().find(|r| r.kind == *kind);
            KindInventory {
                kind: (*kind).to_owned(),
                api_version: (*api_version).to_owned(),
                objects: row.map_or(0, |r| r.objects),
                listed_ms: row.map_or(0, |r| r.listed_ms),
                changed_ms: row.map_or(0, |r| r.changed_ms),
                error: row.map(|r| r.error.clone()).unwrap_or_default(),
                needs: row.map(|r| r.needs.clone()).unwrap_or_default(),
            }
        })
        .collect();
    ClusterInventory {
        cluster_id: cluster_id.to_owned(),
        kinds,
    }
}

/// Every Namespace object a cluster holds.
pub async fn namespaces(db: &Db, cluster_id: &str) -> ServerResult<Vec<Value>> {
    queries::objects_of_kind(db.pool(), cluster_id, "Namespace")
        .await?
        .iter()
        .map(|text| serde_json::from_str(text).or_fault())
        .collect()
}

/// The names of these Namespace objects, the system namespaces left out: those a Pod Security
/// policy labels.
pub fn labelled_names(namespaces: &[Value]) -> Vec<String> {
    namespaces
        .iter()
        .filter_map(|o| o.pointer("/metadata/name").and_then(Value::as_str))
        .filter(|n| !palisade_engine::bundle::SYSTEM_NAMESPACES.contains(n))
        .map(str::to_owned)
        .collect()
}

/// The next page of a cluster's objects after `after_uid`, as the inventory holds them: the
/// columns, the controller and the text (for a caller that parses the text off the async threads,
/// one object at a time, or not at all when the columns tell it enough).
pub async fn held_after(db: &Db, cluster_id: &str, after_uid: &str) -> ServerResult<Vec<Held>> {
    Ok(queries::objects_page(db.pool(), cluster_id, after_uid, TEXT_PAGE).await?)
}

/// Objects read at once as text: only the text is held (a few MB), and each query costs the
/// same whatever its size, so larger pages than [`PAGE`] read faster.
pub const TEXT_PAGE: i64 = 2_000;

/// Objects read at once from the inventory.
pub const PAGE: i64 = 500;

/// The next page of a cluster's objects after `after_uid` (by uid; `""` for the first), each
/// with its uid. A stored object that does not read as JSON is an error.
pub async fn objects_after(
    db: &Db,
    cluster_id: &str,
    after_uid: &str,
) -> ServerResult<Vec<(String, Value)>> {
    queries::objects_page(db.pool(), cluster_id, after_uid, PAGE)
        .await?
        .into_iter()
        .map(|held| Ok((held.uid, serde_json::from_str(&held.object).or_fault()?)))
        .collect()
}
