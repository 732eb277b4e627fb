//! Gathering an impact: the version or draft, every enabled cluster's inventory, the version
//! each runs now and the active exceptions; the evaluation itself is [`super::judge`].

use std::time::{Duration, Instant};

use serde_json::Value;

use std::sync::Arc;

use super::judge::Judge;
use super::progress::Progress;
use crate::auth::{authorize, Action, Principal};
use crate::clusters::ssr::service as clusters;
use crate::db::Db;
use crate::error::{AppError, OrFault, ServerResult};
use crate::impact::{ClusterImpact, Impact, Running};
use crate::inventory::ssr::service as inventory;
use crate::model::Mode;
use crate::policies::Content;
use crate::violations::ssr::scan::Deployed;

/// How long one impact may evaluate, all clusters together; past it the answer says partial.
pub const BUDGET: Duration = Duration::from_secs(30);

/// What an impact previews.
#[derive(Debug, Clone)]
pub enum Subject {
    /// A version's (or draft's) content, enforced: Pod Security labels go to every namespace of
    /// each cluster, with the policy's active exceptions.
    Content(Content),
    /// The exact objects a rollout applies (its namespaces and exclusions already written in).
    Objects(Vec<Value>),
}

/// The impact of enforcing `version` of the policy (its current one when `None`), or of `draft`.
pub async fn impact(
    db: &Db,
    who: &Principal,
    now: i64,
    policy_key: &str,
    version: Option<i64>,
    draft: Option<Content>,
    progress: Option<&Progress>,
) -> ServerResult<Impact> {
    authorize(Some(who), Action::Read)?;
    if draft.is_some() {
        authorize(Some(who), Action::EditPolicies)?;
    }
    let detail = crate::policies::ssr::detail(db, who, policy_key).await?;
    let policy_id = detail.policy.id.clone();
    let (content, version) = match (draft, version) {
        (Some(draft), _) => (draft, None),
        (None, Some(number)) if number != detail.current.number => {
            let found = crate::policies::ssr::version(db, who, &policy_id, number).await?;
            (found.content, Some(number))
        }
        (None, _) => (detail.current.content.clone(), Some(detail.current.number)),
    };
    let judged = judge_clusters(
        db,
        &policy_id,
        &Subject::Content(content),
        None,
        now,
        progress,
    )
    .await?;
    Ok(Impact {
        policy_id,
        policy_name: detail.policy.name.clone(),
        version,
        mode: Mode::Enforce,
        computed_ms: now,
        clusters: judged.into_iter().map(Judged::into_impact).collect(),
    })
}

/// One cluster's inventory judged: the cluster, how complete its inventory is, what runs there
/// now, and the judge holding what was found.
pub struct Judged {
    pub cluster: crate::clusters::Cluster,
    pub inventory: crate::inventory::ClusterInventory,
    pub running: Option<Running>,
    pub judge: Judge,
    /// Evaluation stopped at [`BUDGET`]: the judge holds only part of the inventory.
    pub partial: bool,
}

impl Judged {
    /// Whether the answer covers everything: every kind listed and readable, and evaluated whole.
    pub fn complete(&self) -> bool {
        !self.partial && self.inventory.complete()
    }

    /// What the judge found, grouped by workload, as the Impact tab shows it.
    pub fn into_impact(self) -> ClusterImpact {
        let listed_ms = if self.inventory.kinds.iter().any(|k| k.listed_ms == 0) {
            0
        } else {
            self.inventory
                .kinds
                .iter()
                .map(|k| k.listed_ms)
                .min()
                .unwrap_or(0)
        };
        let judgement = self.judge.finish(self.partial);
        ClusterImpact {
            cluster_id: self.cluster.id.clone(),
            cluster_name: self.cluster.name.clone(),
            environment: self.cluster.environment.clone(),
            objects: judgement.objects,
            listed_ms,
            unreadable: self
                .inventory
                .unreadable()
                .map(|k| k.kind.clone())
                .collect(),
            running: self.running,
            deny: judgement.deny,
            warn: judgement.warn,
            audit: judgement.audit,
            excepted: judgement.excepted,
            newly_denied: judgement.newly_denied,
            no_longer_denied: judgement.no_longer_denied,
            not_evaluable: judgement.not_evaluable,
            workloads: judgement.workloads,
            partial: self.partial,
        }
    }
}

/// Judge `subject` against the inventory of every enabled cluster, or of the enabled clusters
/// among `only` (ids, in any order), counting the objects into `progress` as they are judged.
pub async fn judge_clusters(
    db: &Db,
    policy_id: &str,
    subject: &Subject,
    only: Option<&[String]>,
    now: i64,
    progress: Option<&Progress>,
) -> ServerResult<Vec<Judged>> {
    // The content must render: a draft the engine refuses says why, where.
    if let Subject::Content(content) = subject {
        crate::policies::ssr::render::objects(content, Mode::Enforce)
            .map_err(|why| AppError::Invalid(format!("source: {why}")))?;
    }
    let exceptions = match subject {
        Subject::Content(_) => crate::exceptions::ssr::active_for(db, policy_id, now).await?,
        // A rollout's exclusions are already in its objects.
        Subject::Objects(_) => Vec::new(),
    };
    let started = Instant::now();
    let enabled: Vec<_> = clusters::list(db)
        .await?
        .into_iter()
        .filter(|c| !c.disabled)
        .filter(|c| only.is_none_or(|ids| ids.contains(&c.id)))
        .collect();
    // Every cluster at once: each reads its inventory page by page and evaluates it off the async
    // threads, so memory holds one page per cluster, not a whole cluster.
    let asked = Asked {
        policy_id,
        subject,
        exceptions: &exceptions,
        now,
        started,
        progress,
    };
    futures_util::future::try_join_all(
        enabled
            .into_iter()
            .map(|cluster| on_cluster(db, cluster, &asked)),
    )
    .await
}

/// What every cluster of one impact is judged by.
struct Asked<'a> {
    policy_id: &'a str,
    subject: &'a Subject,
    exceptions: &'a [crate::exceptions::Exception],
    now: i64,
    /// When the impact started: its [`BUDGET`] counts from here.
    started: Instant,
    progress: Option<&'a Progress>,
}

/// Judge one cluster's inventory.
async fn on_cluster(
    db: &Db,
    cluster: crate::clusters::Cluster,
    asked: &Asked<'_>,
) -> ServerResult<Judged> {
    let Asked {
        policy_id,
        subject,
        exceptions,
        now,
        started,
        progress,
    } = *asked;
    let held = inventory::of_cluster(db, &cluster.id).await?;
    if let Some(progress) = progress {
        progress.expect(held.kinds.iter().map(|kind| kind.objects).sum());
    }
    let namespaces = inventory::namespaces(db, &cluster.id).await?;
    let proposed = match subject {
        Subject::Content(content) => {
            let names = inventory::labelled_names(&namespaces);
            deployed(policy_id, content, &names, exceptions, now)?
        }
        Subject::Objects(objects) => of_objects(policy_id, objects.clone(), now)?,
    };
    let current = crate::violations::ssr::scan::running_on(db, &cluster.id, policy_id).await?;
    let running = current.as_ref().map(|(version, mode, _)| Running {
        version: *version,
        mode: *mode,
    });
    let running_manifests = current.as_ref().map(|(_, _, manifests)| manifests.clone());
    let running_deployed = current.map(|(_, _, manifests)| {
        let (mut deployed, _) = Deployed::from_deployments(&[(policy_id.to_owned(), manifests)]);
        deployed.exceptions = proposed.exceptions.clone();
        deployed.now_ms = now;
        Arc::new(deployed)
    });
    let mut judge = Judge::new(Arc::new(proposed), running_deployed, namespaces, now);
    judge.reserve(
        held.kinds
            .iter()
            .map(|kind| usize::try_from(kind.objects).unwrap_or(0))
            .sum(),
    );
    // A Gatekeeper template that reads `data.inventory` (unique hosts, unique selectors, …) sees
    // the cluster's objects there, as Gatekeeper's replicated data; built only when one does.
    let referential = match subject {
        Subject::Content(content) => content.source.contains("data.inventory"),
        Subject::Objects(objects) => reads_inventory(objects),
    } || running_manifests.as_deref().is_some_and(reads_inventory);
    if referential {
        let objects = inventory::all_objects(db, &cluster.id).await?;
        let inventory = tokio::task::spawn_blocking(move || {
            palisade_engine::gatekeeper::Inventory::from_objects(&objects)
        })
        .await
        .or_fault()?
        .map_err(|err| AppError::internal("building data.inventory from the inventory", err))?;
        judge = judge.with_inventory(inventory);
    }
    let (judge, partial) = feed(db, &cluster.id, judge, started, progress).await?;
    Ok(Judged {
        cluster,
        inventory: held,
        running,
        judge,
        partial,
    })
}

/// Give `judge` every object of a cluster's inventory, page by page off the async threads, until
/// [`BUDGET`] from `started`; true when it stopped there (the judge holds only part). The next
/// page is read while this one is judged: the database and the engine overlap. Each page judged
/// counts into `progress`.
pub async fn feed(
    db: &Db,
    cluster_id: &str,
    mut judge: Judge,
    started: Instant,
    progress: Option<&Progress>,
) -> ServerResult<(Judge, bool)> {
    let mut page = inventory::held_after(db, cluster_id, "").await?;
    while !page.objects.is_empty() {
        if started.elapsed() > BUDGET {
            return Ok((judge, true));
        }
        let objects = i64::try_from(page.objects.len()).unwrap_or(i64::MAX);
        let held = page.objects;
        let judged = tokio::task::spawn_blocking(move || {
            for held in &held {
                // The keeper stored JSON: text that is read and does not parse is an error,
                // never skipped.
                judge.add_held(held)?;
            }
            Ok::<_, serde_json::Error>(judge)
        });
        let (judged, next) =
            tokio::join!(judged, inventory::held_after(db, cluster_id, &page.next));
        judge = judged.or_fault()??;
        if let Some(progress) = progress {
            progress.advance(objects);
        }
        page = next?;
    }
    Ok((judge, false))
}

/// Pod Security readiness of every namespace of a cluster (see [`super::readiness`]).
pub async fn readiness(
    db: &Db,
    who: &Principal,
    cluster_id: &str,
) -> ServerResult<Vec<crate::impact::NamespaceReadiness>> {
    authorize(Some(who), Action::Read)?;
    // The cluster must exist: an unknown id is a 404, not an empty answer.
    clusters::get(db, cluster_id).await?;
    let objects = inventory::all_objects(db, cluster_id).await?;
    tokio::task::spawn_blocking(move || super::readiness::readiness(&objects))
        .await
        .or_fault()
}

/// Every object the inventory holds for a cluster.
/// Whether any Gatekeeper ConstraintTemplate among `manifests` reads `data.inventory` (in its
/// Rego or its libraries). Pure.
pub fn reads_inventory(manifests: &[Value]) -> bool {
    manifests
        .iter()
        .filter(|m| m["kind"] == "ConstraintTemplate")
        .flat_map(|m| {
            m.pointer("/spec/targets")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .any(|target| {
            let rego = target["rego"].as_str().unwrap_or_default();
            let libs = target["libs"].as_array().into_iter().flatten();
            rego.contains("data.inventory")
                || libs
                    .filter_map(Value::as_str)
                    .any(|lib| lib.contains("data.inventory"))
        })
}

/// The policy as it would be deployed on a cluster with these namespaces, in enforce mode, with
/// the active exceptions.
fn deployed(
    policy_id: &str,
    content: &Content,
    namespaces: &[String],
    exceptions: &[crate::exceptions::Exception],
    now: i64,
) -> ServerResult<Deployed> {
    let objects = if namespaces.is_empty() {
        // A cluster whose inventory holds no namespace yet: no Pod Security label to place.
        crate::policies::ssr::render::objects(content, Mode::Enforce)
            .map_err(|why| AppError::Invalid(format!("source: {why}")))?
            .into_iter()
            .filter(|o| o["metadata"]["name"] != palisade_engine::render::EACH_NAMESPACE)
            .collect()
    } else {
        crate::policies::ssr::render::desired_objects(content, Mode::Enforce, namespaces, &[])
            .map_err(|why| AppError::Invalid(format!("source: {why}")))?
    };
    let mut deployed = of_objects(policy_id, objects, now)?;
    if !exceptions.is_empty() {
        deployed
            .exceptions
            .insert(policy_id.to_owned(), exceptions.to_vec());
    }
    deployed.now_ms = now;
    Ok(deployed)
}

/// Exactly these objects as the engine would hold them deployed.
fn of_objects(policy_id: &str, objects: Vec<Value>, now: i64) -> ServerResult<Deployed> {
    let (mut deployed, errors) = Deployed::from_deployments(&[(policy_id.to_owned(), objects)]);
    if let Some(error) = errors.first() {
        return Err(AppError::Invalid(format!("source: {error}")).into());
    }
    deployed.now_ms = now;
    Ok(deployed)
}
