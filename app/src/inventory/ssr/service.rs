//! Reading the inventory: how complete each kind is, and the objects themselves.

use serde_json::Value;

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

/// The next page of a cluster's objects after the place `after` (`""` for the first; see
/// [`queries::objects_page`]), as the inventory holds them: the columns, the controller and the
/// text (for a caller that parses the text off the async threads, one object at a time, or not at
/// all when the columns tell it enough).
pub async fn held_after(db: &Db, cluster_id: &str, after: &str) -> ServerResult<queries::Page> {
    Ok(queries::objects_page(db.pool(), db.backend(), cluster_id, after, TEXT_PAGE).await?)
}

/// Objects read at once as text: only the text is held (a few MB), and each query costs the
/// same whatever its size, so larger pages read faster.
pub const TEXT_PAGE: i64 = 2_000;

/// Every object a cluster's inventory holds, read page by page. A stored object that does not
/// read as JSON is an error.
pub async fn all_objects(db: &Db, cluster_id: &str) -> ServerResult<Vec<Value>> {
    let mut out = Vec::new();
    let mut after = String::new();
    loop {
        let page = held_after(db, cluster_id, &after).await?;
        if page.objects.is_empty() {
            return Ok(out);
        }
        for held in page.objects {
            out.push(serde_json::from_str(&held.object).or_fault()?);
        }
        after = page.next;
    }
}
