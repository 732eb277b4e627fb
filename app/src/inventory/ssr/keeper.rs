//! The keeper: every replica runs it. It takes (or renews) the lease on each enabled cluster; for
//! each cluster it holds, it watches every kept kind and writes what changes. A cluster whose lease
//! another replica holds is left alone; one whose holder stopped renewing is taken over once the
//! lease runs out. Changed credentials restart the cluster's watches.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;

use super::changes::{self, Pass, Write};
use super::share;
use super::{kinds::KINDS, queries};
use crate::clusters::ssr::connector::cache::cache_key;
use crate::clusters::ssr::{service as clusters, ClusterConnector, Context, Credentials};
use crate::db::{now_ms, Db};
use crate::error::ServerResult;
use crate::secrets::Sealer;

/// How the keeper paces itself.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long a lease lasts without renewal: a stopped replica's clusters are taken over within
    /// this. Renewed every third of it.
    pub lease: Duration,
    /// Where a cluster offers no watch, how often each kind is listed again.
    pub relist: Duration,
    /// Most clusters one replica watches; beyond its fair share it lets go (see [`share`]).
    pub max_clusters: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            lease: Duration::from_secs(30),
            relist: Duration::from_secs(300),
            max_clusters: 500,
        }
    }
}

/// Changes written in one transaction at most.
const CHUNK: usize = 500;

pub struct Keeper {
    db: Db,
    sealer: Option<Arc<Sealer>>,
    connector: Arc<dyn ClusterConnector>,
    settings: Settings,
    /// This replica's name in the leases table.
    holder: String,
}

/// A cluster this replica keeps: the credentials its watches use, and the watches. Dropping it
/// tells them to stop (also when the keeper itself is stopped by aborting its task); each stops
/// between two writes, never inside one.
///
/// Why not abort the task: a database call cut short may leave its connection in a state the
/// pool cannot test on its way back (the test waits without a time limit), so each cut could
/// take a connection out of the pool for good; a handful of those starve every other caller.
struct Kept {
    key: [u8; 32],
    stop: tokio::sync::watch::Sender<bool>,
}

impl Drop for Kept {
    fn drop(&mut self) {
        // Nothing waits for the watches: they end on their own after their current write.
        let _ = self.stop.send(true);
    }
}

/// Resolves when `stop` turns true, or never when its sender is gone without saying so.
async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            // The sender dropped after sending `true` is caught by the check above on the next
            // turn; one dropped without a word leaves the task to its owner's abort.
            if *stop.borrow() {
                return;
            }
            std::future::pending::<()>().await;
        }
    }
}

impl Keeper {
    pub fn new(
        db: Db,
        sealer: Option<Arc<Sealer>>,
        connector: Arc<dyn ClusterConnector>,
        settings: Settings,
    ) -> Keeper {
        Keeper {
            db,
            sealer,
            connector,
            settings,
            holder: crate::db::new_id(),
        }
    }

    /// This replica's name in the leases table.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Keep the inventory until `stop` turns true; then stop every watch and let go of the
    /// leases, so another replica takes the clusters at once.
    pub async fn run(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut kept: HashMap<String, Kept> = HashMap::new();
        let every = self.settings.lease / 3;
        loop {
            if *stop.borrow() {
                break;
            }
            // A round is not cut short by a stop: it is a few short statements, and a statement
            // cut in the middle could cost the pool a connection (see [`Kept`]).
            if let Err(err) = self.round(now_ms(), &mut kept).await {
                tracing::warn!(error = %err, "keeping the inventory");
            }
            if *stop.borrow() {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                () = stopped(&mut stop) => {}
            }
        }
        for (cluster_id, kept) in kept {
            drop(kept);
            if let Err(err) = queries::release(self.db.pool(), &cluster_id, &self.holder).await {
                tracing::warn!(error = %err, cluster_id, "releasing an inventory lease");
            }
        }
        if let Err(err) = queries::retire(self.db.pool(), &self.holder).await {
            tracing::warn!(error = %err, "saying this replica stopped keeping inventories");
        }
    }

    /// One round: renew or take the leases, start the watches of clusters newly held (or whose
    /// credentials changed), stop those of clusters no longer held.
    async fn round(&self, now: i64, kept: &mut HashMap<String, Kept>) -> ServerResult<()> {
        queries::forget_gone(self.db.pool()).await?;
        let until = now + i64::try_from(self.settings.lease.as_millis()).unwrap_or(i64::MAX / 4);
        let context = Context {
            db: &self.db,
            sealer: self.sealer.as_deref(),
            connector: self.connector.as_ref(),
        };
        let enabled: Vec<_> = clusters::list(&self.db)
            .await?
            .into_iter()
            .filter(|c| !c.disabled)
            .collect();
        let ids: Vec<String> = enabled.iter().map(|c| c.id.clone()).collect();
        let replicas = queries::heartbeat(self.db.pool(), &self.holder, now, until).await?;
        let leases = queries::leases(self.db.pool()).await?;
        let claims = share::plan(
            &ids,
            &leases,
            &replicas,
            &self.holder,
            now,
            self.settings.max_clusters,
        );
        for cluster_id in &claims.release {
            kept.remove(cluster_id);
            queries::release(self.db.pool(), cluster_id, &self.holder).await?;
            tracing::info!(
                cluster_id,
                "letting another replica keep this cluster's inventory"
            );
        }
        let mut held = Vec::new();
        for cluster in enabled
            .into_iter()
            .filter(|c| claims.keep.contains(&c.id) || claims.take.contains(&c.id))
        {
            if !queries::claim(self.db.pool(), &cluster.id, &self.holder, now, until).await? {
                continue;
            }
            let credentials = match clusters::open_credentials(&context, &cluster.id).await {
                Ok((_, credentials)) => credentials,
                Err(err) => {
                    tracing::warn!(error = %err, cluster = %cluster.name, "cannot open credentials for the inventory");
                    continue;
                }
            };
            let key = cache_key(&credentials);
            held.push(cluster.id.clone());
            if kept.get(&cluster.id).is_some_and(|k| k.key == key) {
                continue;
            }
            // Changed credentials: the old watches stop as the old entry is dropped.
            kept.remove(&cluster.id);
            let (stop, stop_watches) = tokio::sync::watch::channel(false);
            tokio::spawn(keep_cluster(
                self.db.clone(),
                Arc::clone(&self.connector),
                cluster.id.clone(),
                credentials,
                self.settings.relist,
                stop_watches,
            ));
            tracing::info!(cluster = %cluster.name, "keeping the inventory");
            kept.insert(cluster.id, Kept { key, stop });
        }
        kept.retain(|cluster_id, _| held.contains(cluster_id));
        Ok(())
    }
}

/// Watch every kept kind of one cluster, for as long as the task runs.
async fn keep_cluster(
    db: Db,
    connector: Arc<dyn ClusterConnector>,
    cluster_id: String,
    credentials: Credentials,
    relist: Duration,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let kinds = KINDS.iter().map(|(api_version, kind, _)| {
        keep_kind(
            &db,
            connector.as_ref(),
            &cluster_id,
            &credentials,
            (api_version, kind),
            relist,
            stop.clone(),
        )
    });
    futures_util::future::join_all(kinds).await;
}

async fn keep_kind(
    db: &Db,
    connector: &dyn ClusterConnector,
    cluster_id: &str,
    credentials: &Credentials,
    (api_version, kind): (&str, &str),
    relist: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut pass = Pass::default();
    loop {
        let mut chunks = connector
            .watch(credentials, api_version, kind)
            .ready_chunks(CHUNK);
        loop {
            // Waiting for the cluster may be cut short; the write that follows may not.
            let chunk = tokio::select! {
                chunk = chunks.next() => chunk,
                () = stopped(&mut stop) => return,
            };
            let Some(chunk) = chunk else { break };
            let writes = changes::writes(kind, &mut pass, chunk, now_ms());
            if let Err(err) = apply(db, cluster_id, &writes).await {
                tracing::warn!(error = %err, cluster_id, kind, "writing the inventory");
            }
        }
        // Only a connector without watches ends its stream: list again later.
        tokio::select! {
            _ = tokio::time::sleep(relist) => {}
            () = stopped(&mut stop) => return,
        }
    }
}

/// Apply `writes` to one cluster's inventory in one transaction.
pub async fn apply(db: &Db, cluster_id: &str, writes: &[Write]) -> ServerResult<()> {
    if writes.is_empty() {
        return Ok(());
    }
    let _turn = db.write_turn().await;
    let mut tx = db.begin().await?;
    for write in writes {
        match write {
            Write::Put { held, seen_ms } => {
                queries::put(&mut *tx, cluster_id, held, *seen_ms).await?;
            }
            Write::Remove { uid } => queries::remove(&mut *tx, cluster_id, uid).await?,
            Write::Listed {
                kind,
                started_ms,
                at_ms,
            } => {
                queries::forget_unseen(&mut *tx, cluster_id, kind, *started_ms).await?;
                queries::set_kind(&mut *tx, cluster_id, kind, Some(*at_ms), None, "", "").await?;
            }
            Write::Changed { kind, at_ms } => {
                queries::set_kind(&mut *tx, cluster_id, kind, None, Some(*at_ms), "", "").await?;
            }
            Write::Failed { kind, error, needs } => {
                queries::set_kind(&mut *tx, cluster_id, kind, None, None, error, needs).await?;
            }
        }
    }
    tx.commit().await?;
    Ok(())
}
