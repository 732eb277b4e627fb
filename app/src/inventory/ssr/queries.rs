//! Every query of the inventory. Each takes an executor, so it runs inside or outside a
//! transaction as the caller decides.

use sqlx::{Any, Row};

use super::changes::Held;
use super::owners::Controller;
use crate::db::Backend;

pub async fn put<'e, E: sqlx::Executor<'e, Database = Any>>(
    executor: E,
    cluster_id: &str,
    held: &Held,
    seen_ms: i64,
) -> Result<(), sqlx::Error> {
    let controller = held.controller.as_ref();
    sqlx::query(
        "INSERT INTO inventory_objects \
         (cluster_id, uid, kind, namespace, name, owner_uid, owner_kind, owner_name, object, seen_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (cluster_id, uid) DO UPDATE SET kind = excluded.kind, \
         namespace = excluded.namespace, name = excluded.name, owner_uid = excluded.owner_uid, \
         owner_kind = excluded.owner_kind, owner_name = excluded.owner_name, \
         object = excluded.object, seen_ms = excluded.seen_ms",
    )
    .bind(cluster_id)
    .bind(&held.uid)
    .bind(&held.kind)
    .bind(&held.namespace)
    .bind(&held.name)
    .bind(controller.map_or("", |c| c.uid.as_str()))
    .bind(controller.map_or("", |c| c.kind.as_str()))
    .bind(controller.map_or("", |c| c.name.as_str()))
    .bind(&held.object)
    .bind(seen_ms)
    .execute(executor)
    .await?;
    Ok(())
}

pub async fn remove<'e, E: sqlx::Executor<'e, Database = Any>>(
    executor: E,
    cluster_id: &str,
    uid: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM inventory_objects WHERE cluster_id = $1 AND uid = $2")
        .bind(cluster_id)
        .bind(uid)
        .execute(executor)
        .await?;
    Ok(())
}

/// Forget the objects of `kind` no list or change has named since `before_ms`.
pub async fn forget_unseen<'e, E: sqlx::Executor<'e, Database = Any>>(
    executor: E,
    cluster_id: &str,
    kind: &str,
    before_ms: i64,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "DELETE FROM inventory_objects WHERE cluster_id = $1 AND kind = $2 AND seen_ms < $3",
    )
    .bind(cluster_id)
    .bind(kind)
    .bind(before_ms)
    .execute(executor)
    .await?
    .rows_affected())
}

/// Where `kind` stands: its objects counted again, and the given times and error. A time of
/// `None` keeps the stored one.
pub async fn set_kind<'e, E: sqlx::Executor<'e, Database = Any>>(
    executor: E,
    cluster_id: &str,
    kind: &str,
    listed_ms: Option<i64>,
    changed_ms: Option<i64>,
    error: &str,
    needs: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO inventory_kinds (cluster_id, kind, objects, listed_ms, changed_ms, error, needs) \
         VALUES ($1, $2, (SELECT COUNT(*) FROM inventory_objects WHERE cluster_id = $1 AND kind = $2), \
         $3, $4, $5, $6) \
         ON CONFLICT (cluster_id, kind) DO UPDATE SET objects = excluded.objects, \
         listed_ms = CASE WHEN $7 = 1 THEN excluded.listed_ms ELSE inventory_kinds.listed_ms END, \
         changed_ms = CASE WHEN $8 = 1 THEN excluded.changed_ms ELSE inventory_kinds.changed_ms END, \
         error = excluded.error, needs = excluded.needs",
    )
    .bind(cluster_id)
    .bind(kind)
    .bind(listed_ms.unwrap_or(0))
    .bind(changed_ms.unwrap_or(0))
    .bind(error)
    .bind(needs)
    .bind(i64::from(listed_ms.is_some()))
    .bind(i64::from(changed_ms.is_some()))
    .execute(executor)
    .await?;
    Ok(())
}

/// One row of `inventory_kinds`.
#[derive(Clone)]
pub struct KindRow {
    pub kind: String,
    pub objects: i64,
    pub listed_ms: i64,
    pub changed_ms: i64,
    pub error: String,
    pub needs: String,
}

pub async fn kinds_of<'e, E: sqlx::Executor<'e, Database = Any>>(
    executor: E,
    cluster_id: &str,
) -> Result<Vec<KindRow>, sqlx::Error> {
    let rows = kinds_of_clusters(executor, &[cluster_id.to_owned()]).await?;
    Ok(rows.into_iter().map(|(_, row)| row).collect())
}

/// The kind rows of several clusters at once: `(cluster id, row)`.
pub async fn kinds_of_clusters<'e, E: sqlx::Executor<'e, Database = Any>>(
    executor: E,
    cluster_ids: &[String],
) -> Result<Vec<(String, KindRow)>, sqlx::Error> {
    if cluster_ids.is_empty() {
        return Ok(Vec::new());
    }
    let marks: Vec<String> = (1..=cluster_ids.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT cluster_id, kind, objects, listed_ms, changed_ms, error, needs FROM inventory_kinds \
         WHERE cluster_id IN ({})",
        marks.join(", ")
    );
    let mut query = sqlx::query(&sql);
    for id in cluster_ids {
        query = query.bind(id);
    }
    let rows = query.fetch_all(executor).await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get("cluster_id")?,
                KindRow {
                    kind: row.try_get("kind")?,
                    objects: row.try_get("objects")?,
                    listed_ms: row.try_get("listed_ms")?,
                    changed_ms: row.try_get("changed_ms")?,
                    error: row.try_get("error")?,
                    needs: row.try_get("needs")?,
                },
            ))
        })
        .collect()
}

/// A page of a cluster's objects (see [`objects_page`]), and where the next page starts.
pub struct Page {
    pub objects: Vec<Held>,
    /// What to pass as `after` for the next page.
    pub next: String,
}

/// Up to `limit` objects of a cluster after the place `after` (`""` for the first page), as the
/// inventory holds them, with the place of the next page.
///
/// Objects come in the order the database keeps them. On SQLite that is by rowid (a place is a
/// rowid): the rows of a page then sit side by side in the table, and reading in uid order instead
/// fetched one table page per object (a fifth of an impact's CPU over 100,000 objects). An upsert
/// keeps an object's rowid, so no object is read twice. On PostgreSQL, whose row positions move
/// with every update, a place is a uid and objects come by uid.
///
/// The page comes back as one row: every row a query returns is handed from the database's
/// thread to the async one on its own, and for pages of small objects those hand-overs cost more
/// than reading the objects. So the objects are joined into one text, fields by [`FIELD`] and
/// objects by [`RECORD`]; neither can stand in what is joined (the apiserver checks names and
/// uids, the controller's are kept without control characters, and the object is JSON, which
/// writes them escaped). The text is split again here, and a page that does not split into as
/// many objects as were counted is an error.
pub async fn objects_page<'e, E: sqlx::Executor<'e, Database = Any>>(
    executor: E,
    backend: Backend,
    cluster_id: &str,
    after: &str,
    limit: i64,
) -> Result<Page, sqlx::Error> {
    let (place, next, after_place) = match backend {
        Backend::Sqlite => ("rowid", "CAST(MAX(place) AS TEXT)", "CAST($2 AS INTEGER)"),
        Backend::Postgres => ("uid", "MAX(place)", "$2"),
    };
    let row = sqlx::query(&format!(
        "SELECT COUNT(*) AS objects, {next} AS next, string_agg(uid || $3 || kind || $3 || \
         namespace || $3 || name || $3 || owner_uid || $3 || owner_kind || $3 || owner_name || \
         $3 || object, $4) AS page FROM (SELECT {place} AS place, * FROM inventory_objects \
         WHERE cluster_id = $1 AND {place} > {after_place} ORDER BY {place} LIMIT $5) AS page",
    ))
    .bind(cluster_id)
    .bind(after)
    .bind(FIELD.to_string())
    .bind(RECORD.to_string())
    .bind(limit)
    .fetch_one(executor)
    .await?;
    let objects: i64 = row.try_get("objects")?;
    let next: Option<String> = row.try_get("next")?;
    let page: Option<String> = row.try_get("page")?;
    let held: Vec<Held> = page
        .as_deref()
        .unwrap_or_default()
        .split(RECORD)
        .filter(|_| objects > 0)
        .map_while(split_held)
        .collect();
    if usize::try_from(objects).ok() != Some(held.len()) {
        return Err(sqlx::Error::Decode(
            format!(
                "a page of the inventory of cluster {cluster_id} after {after:?} holds \
                 {objects} objects but reads as {}",
                held.len()
            )
            .into(),
        ));
    }
    Ok(Page {
        objects: held,
        next: next.unwrap_or_else(|| after.to_owned()),
    })
}

/// What joins the fields of one object in [`objects_page`]: the ASCII unit separator.
const FIELD: char = '\u{1f}';

/// What joins the objects of a page in [`objects_page`]: the ASCII record separator.
const RECORD: char = '\u{1e}';

/// One object of a page of [`objects_page`]; `None` when it has not every field.
fn split_held(record: &str) -> Option<Held> {
    let mut fields = record.splitn(8, FIELD).map(str::to_owned);
    let mut next = || fields.next();
    let (uid, kind, namespace, name) = (next()?, next()?, next()?, next()?);
    let (owner_uid, owner_kind, owner_name) = (next()?, next()?, next()?);
    let object = next()?;
    Some(Held {
        uid,
        kind,
        namespace,
        name,
        controller: (!owner_uid.is_empty()).then_some(Controller {
            uid: owner_uid,
            kind: owner_kind,
            name: owner_name,
        }),
        object,
    })
}

/// Every object of `kind` a cluster holds, as text.
pub async fn objects_of_kind<'e, E: sqlx::Executor<'e, Database = Any>>(
    executor: E,
    cluster_id: &str,
    kind: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT object FROM inventory_objects WHERE cluster_id = $1 AND kind = $2")
        .bind(cluster_id)
        .bind(kind)
        .fetch_all(executor)
        .await
}

/// Take or renew the lease on a cluster's inventory: true when `holder` holds it until
/// `until_ms` (it held it, or the last holder's lease ran out before `now_ms`).
pub async fn claim(
    pool: &sqlx::Pool<Any>,
    cluster_id: &str,
    holder: &str,
    now_ms: i64,
    until_ms: i64,
) -> Result<bool, sqlx::Error> {
    sqlx::query(
        "INSERT INTO inventory_leases (cluster_id, holder, until_ms) VALUES ($1, '', 0) \
         ON CONFLICT (cluster_id) DO NOTHING",
    )
    .bind(cluster_id)
    .execute(pool)
    .await?;
    Ok(sqlx::query(
        "UPDATE inventory_leases SET holder = $1, until_ms = $2 \
         WHERE cluster_id = $3 AND (holder = $1 OR until_ms < $4)",
    )
    .bind(holder)
    .bind(until_ms)
    .bind(cluster_id)
    .bind(now_ms)
    .execute(pool)
    .await?
    .rows_affected()
        == 1)
}

/// Let go of a lease (on shutdown), so another replica takes the cluster at once.
pub async fn release(
    pool: &sqlx::Pool<Any>,
    cluster_id: &str,
    holder: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE inventory_leases SET until_ms = 0 WHERE cluster_id = $1 AND holder = $2")
        .bind(cluster_id)
        .bind(holder)
        .execute(pool)
        .await?;
    Ok(())
}

/// Say replica `holder` runs until `until_ms`; forget replicas whose time ran out before
/// `now_ms`. Returns the replicas running now.
pub async fn heartbeat(
    pool: &sqlx::Pool<Any>,
    holder: &str,
    now_ms: i64,
    until_ms: i64,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query(
        "INSERT INTO inventory_replicas (holder, until_ms) VALUES ($1, $2) \
         ON CONFLICT (holder) DO UPDATE SET until_ms = excluded.until_ms",
    )
    .bind(holder)
    .bind(until_ms)
    .execute(pool)
    .await?;
    sqlx::query("DELETE FROM inventory_replicas WHERE until_ms < $1")
        .bind(now_ms)
        .execute(pool)
        .await?;
    sqlx::query_scalar("SELECT holder FROM inventory_replicas ORDER BY holder")
        .fetch_all(pool)
        .await
}

/// A replica that stops says so, so the others count it out at once.
pub async fn retire(pool: &sqlx::Pool<Any>, holder: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM inventory_replicas WHERE holder = $1")
        .bind(holder)
        .execute(pool)
        .await?;
    Ok(())
}

/// Every stored lease.
pub async fn leases(pool: &sqlx::Pool<Any>) -> Result<Vec<super::share::Lease>, sqlx::Error> {
    let rows = sqlx::query("SELECT cluster_id, holder, until_ms FROM inventory_leases")
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(super::share::Lease {
                cluster_id: row.try_get("cluster_id")?,
                holder: row.try_get("holder")?,
                until_ms: row.try_get("until_ms")?,
            })
        })
        .collect()
}

/// The holder of a cluster's lease and until when; `None` when none was ever taken.
pub async fn lease_of(
    pool: &sqlx::Pool<Any>,
    cluster_id: &str,
) -> Result<Option<(String, i64)>, sqlx::Error> {
    let row = sqlx::query("SELECT holder, until_ms FROM inventory_leases WHERE cluster_id = $1")
        .bind(cluster_id)
        .fetch_optional(pool)
        .await?;
    row.map(|row| Ok((row.try_get("holder")?, row.try_get("until_ms")?)))
        .transpose()
}

/// Forget everything held for clusters that are no longer registered or are disabled.
pub async fn forget_gone(pool: &sqlx::Pool<Any>) -> Result<u64, sqlx::Error> {
    let mut forgotten = 0;
    for table in ["inventory_objects", "inventory_kinds", "inventory_leases"] {
        forgotten += sqlx::query(&format!(
            "DELETE FROM {table} WHERE cluster_id NOT IN \
             (SELECT id FROM clusters WHERE disabled = 0)"
        ))
        .execute(pool)
        .await?
        .rows_affected();
    }
    Ok(forgotten)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::testing::{database, on_both_backends, Backend as TestBackend};

    fn object(uid: &str) -> Held {
        Held {
            uid: uid.to_owned(),
            kind: "Pod".to_owned(),
            namespace: "team".to_owned(),
            name: format!("pod-{uid}"),
            controller: None,
            object: format!("{{\"metadata\":{{\"uid\":\"{uid}\"}}}}"),
        }
    }

    /// Paged through while objects change, a cluster's inventory gives each object at most once
    /// and every object that stayed throughout exactly once, and nothing of another cluster.
    async fn pages_give_each_object_once(backend: TestBackend) {
        let db = database(backend).await;
        // Stored in an order unlike the uids'.
        let uids: Vec<String> = (0..1_200u32)
            .map(|i| format!("u{:04}", (i * 7_919) % 1_200))
            .collect();
        for uid in &uids {
            put(db.pool(), "c1", &object(uid), 1).await.unwrap();
        }
        put(db.pool(), "c2", &object("other"), 1).await.unwrap();
        let (mut seen, mut after, mut pages) = (Vec::new(), String::new(), 0);
        loop {
            let page = objects_page(db.pool(), db.backend(), "c1", &after, 500)
                .await
                .unwrap();
            if page.objects.is_empty() {
                break;
            }
            pages += 1;
            seen.extend(page.objects.iter().map(|held| held.uid.clone()));
            after = page.next;
            // Between pages: objects already read and not yet read are written again, and after
            // the first two pages a new one comes (which a page may or may not give).
            for uid in [&uids[0], &uids[1_199], &seen[0]] {
                put(db.pool(), "c1", &object(uid), 2).await.unwrap();
            }
            if pages <= 2 {
                put(db.pool(), "c1", &object(&format!("new{pages}")), 2)
                    .await
                    .unwrap();
            }
            assert!(pages <= 3, "{pages} pages of 500 for at most 1,202 objects");
        }
        assert!(pages >= 3);
        let mut once = seen.clone();
        once.sort();
        once.dedup();
        assert_eq!(once.len(), seen.len(), "an object came twice");
        for uid in &uids {
            assert!(seen.contains(uid), "{uid} never came");
        }
        assert!(!seen.contains(&"other".to_owned()));
    }

    on_both_backends!(
        pages_give_each_object_once: sqlite_pages_give_each_object_once,
        postgres_pages_give_each_object_once
    );

    #[test]
    fn an_object_of_a_page_has_every_field_or_is_refused() {
        let record = [
            "u1",
            "Pod",
            "team",
            "web-1-a",
            "r1",
            "ReplicaSet",
            "web-1",
            "{\"a\":1}",
        ]
        .join(&FIELD.to_string());
        let held = split_held(&record).unwrap();
        assert_eq!(
            (
                held.uid.as_str(),
                held.kind.as_str(),
                held.namespace.as_str()
            ),
            ("u1", "Pod", "team")
        );
        assert_eq!(held.name, "web-1-a");
        let controller = held.controller.unwrap();
        assert_eq!(
            (controller.uid, controller.kind),
            ("r1".into(), "ReplicaSet".into())
        );
        assert_eq!(held.object, "{\"a\":1}");
        // Without a controller, its fields are empty.
        let alone = ["u2", "Pod", "team", "tool", "", "", "", "{}"].join(&FIELD.to_string());
        assert_eq!(split_held(&alone).unwrap().controller, None);
        // A record cut short is refused, not read with fields shifted.
        let short = ["u3", "Pod", "team", "tool", "", "", "{}"].join(&FIELD.to_string());
        assert!(split_held(&short).is_none());
    }
}
