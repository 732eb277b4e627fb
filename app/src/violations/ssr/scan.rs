//! The background scan: per cluster, every workload is read (page by page, so a large cluster
//! never sits in memory whole) and evaluated with the engine against what Palisade deployed there.
//! What fails opens (or keeps open) a `scan` violation; what a complete pass no longer finds is
//! resolved. The same pass reads what other engines report: PolicyReports
//! (`wgpolicyk8s.io/v1alpha2`) and the status of the Gatekeeper constraints Palisade deployed.

use std::collections::{BTreeMap, HashMap};

use palisade_engine::bundle::{Bundle, Context, SYSTEM_NAMESPACES};
use palisade_engine::cel::projection::Projection;
use palisade_engine::pss::LevelVersion;
use palisade_engine::{AdmissionRequest, EngineKind};
use serde_json::Value;
use sqlx::Row;

use super::store::{self, Finding};
use crate::clusters::ssr::{service as clusters, ClusterConnector, Context as ClustersContext};
use crate::db::Db;
use crate::error::ServerResult;
use crate::secrets::Sealer;
use crate::violations::{Action, Source};

/// The workload kinds a scan reads: the ones the engine finds a pod template in.
pub use palisade_engine::pss::WORKLOAD_KINDS as KINDS;

/// Objects per list call.
pub const PAGE: u32 = 250;

pub use crate::violations::ssr_types::ClusterScan;
pub use reports::{constraint_findings, report_findings};

/// The engine's name of a finding's policy as the apiserver reports it (and ingest records it).
fn reported(engine: EngineKind, policy: &str) -> String {
    match engine {
        EngineKind::PodSecurity => {
            let level = policy.split(':').next().unwrap_or(policy);
            format!("pod-security:{level}")
        }
        // `Kind/name`: the constraint's name.
        EngineKind::Gatekeeper => policy.rsplit('/').next().unwrap_or(policy).to_owned(),
        // `policy` or `policy/binding`.
        _ => policy.split('/').next().unwrap_or(policy).to_owned(),
    }
}

fn action_of(action: palisade_engine::Action) -> Option<Action> {
    match action {
        palisade_engine::Action::Allow => None,
        palisade_engine::Action::Audit => Some(Action::Audit),
        palisade_engine::Action::Warn => Some(Action::Warn),
        palisade_engine::Action::Deny => Some(Action::Deny),
    }
}

/// What Palisade deployed on a cluster, ready to evaluate: one bundle of the admission policies,
/// the Pod Security levels per namespace, the constraints (for their status), and which Palisade
/// policy each reported name belongs to.
#[derive(Default)]
pub struct Deployed {
    pub bundle: Bundle,
    pub pod_security: HashMap<String, Vec<(LevelVersion, crate::model::Mode)>>,
    pub constraints: Vec<Value>,
    pub names: HashMap<String, String>,
    /// Active exceptions per Palisade policy: what they cover is not a violation.
    pub exceptions: HashMap<String, Vec<crate::exceptions::Exception>>,
    /// The time exceptions are judged at.
    pub now_ms: i64,
}

impl Deployed {
    /// What judging an object can read of it (see [`Bundle::object_reads`]): the whole object
    /// wherever Pod Security levels are deployed, or Gatekeeper constraints judged by Rego.
    pub fn object_reads(&self) -> Projection {
        if !self.pod_security.is_empty() {
            return Projection::whole();
        }
        let mut reads = self.bundle.object_reads();
        // A finding names its object by uid; exceptions match its labels.
        reads.add_path(&["metadata", "uid"]);
        reads.add_path(&["metadata", "labels"]);
        reads
    }

    /// Whether what judging says about an object may depend on which object it is, not only on
    /// what it holds (see [`Bundle::reads_identity`]): also when an exception names one object,
    /// or Pod Security levels are deployed (whose reads are not followed). An exception by
    /// namespace places a Namespace object by its name, so only a namespaced object may ever be
    /// judged by what it holds alone.
    pub fn reads_identity(&self) -> bool {
        !self.pod_security.is_empty()
            || self
                .exceptions
                .values()
                .flatten()
                .any(|e| matches!(e.scope, crate::exceptions::Scope::Resource { .. }))
            || self.bundle.reads_identity()
    }

    /// Whether what judging says about a namespaced object may depend on its labels (see
    /// [`Bundle::reads_labels`]): also when an exception selects objects by label, or Pod
    /// Security levels are deployed.
    pub fn reads_labels(&self) -> bool {
        !self.pod_security.is_empty()
            || self
                .exceptions
                .values()
                .flatten()
                .any(|e| matches!(e.scope, crate::exceptions::Scope::Selector { .. }))
            || self.bundle.reads_labels()
    }

    /// Whether judging could find anything about an object of `kind` (see
    /// [`Bundle::may_judge_kind`]; Pod Security levels judge the kinds that hold a pod).
    pub fn may_judge_kind(&self, kind: &str) -> bool {
        self.bundle.may_judge_kind(kind)
            || (!self.pod_security.is_empty() && palisade_engine::pss::POD_KINDS.contains(&kind))
    }

    /// From `(policy id, manifests)` pairs; a deployment that does not load is reported in the
    /// returned errors and left out.
    pub fn from_deployments(deployments: &[(String, Vec<Value>)]) -> (Deployed, Vec<String>) {
        let mut deployed = Deployed::default();
        let mut errors = Vec::new();
        let mut sources = Vec::new();
        for (policy_id, objects) in deployments {
            for name in super::ingest::reported_names(objects) {
                deployed.names.insert(name, policy_id.clone());
            }
            let mut text = String::new();
            for object in objects {
                if object["kind"] == "Namespace" {
                    let ns = object["metadata"]["name"].as_str().unwrap_or_default();
                    let labels = object["metadata"]["labels"].as_object();
                    for (mode, engine_mode) in [
                        ("enforce", crate::model::Mode::Enforce),
                        ("warn", crate::model::Mode::Warn),
                        ("audit", crate::model::Mode::Audit),
                    ] {
                        let label = |key: String| {
                            labels
                                .and_then(|l| l.get(&key))
                                .and_then(Value::as_str)
                                .map(str::to_owned)
                        };
                        if let Some(level) = label(format!("pod-security.kubernetes.io/{mode}")) {
                            let version =
                                label(format!("pod-security.kubernetes.io/{mode}-version"))
                                    .unwrap_or_else(|| "latest".into());
                            match format!("{level}:{version}").parse::<LevelVersion>() {
                                Ok(lv) => deployed
                                    .pod_security
                                    .entry(ns.to_owned())
                                    .or_default()
                                    .push((lv, engine_mode)),
                                Err(err) => errors.push(format!("namespace {ns}: {err}")),
                            }
                        }
                    }
                    continue;
                }
                if object["apiVersion"]
                    .as_str()
                    .is_some_and(|v| v.starts_with("constraints.gatekeeper.sh/"))
                {
                    deployed.constraints.push(object.clone());
                }
                text.push_str(&object.to_string());
                text.push_str("\n---\n");
            }
            if !text.is_empty() {
                sources.push((policy_id.clone(), text));
            }
        }
        for (policy_id, text) in &sources {
            if let Err(problems) = deployed.bundle.add_source(policy_id, text) {
                errors.push(format!(
                    "policy {policy_id} does not load: {}",
                    problems
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                ));
            }
        }
        (deployed, errors)
    }

    /// Every violation of `object` (a workload read from the cluster), with `now_ms` as its time;
    /// what an active exception covers is left out.
    pub fn evaluate(&self, object: Value, context: &Context, now_ms: i64) -> Vec<Finding> {
        self.judge(object, context, now_ms)
            .findings
            .into_iter()
            .filter(|(_, excepted)| !excepted)
            .map(|(finding, _)| finding)
            .collect()
    }

    /// Everything the deployed policies say about `object`: each finding with whether an active
    /// exception covers it, and what could not be evaluated here (with the reason).
    pub fn judge(&self, object: Value, context: &Context, now_ms: i64) -> Judged {
        match AdmissionRequest::create(object) {
            Ok(request) => self.judge_request(&request, context, now_ms),
            Err(_) => Judged::default(),
        }
    }

    /// [`Deployed::judge`] of a request already made: several deployments (what an impact
    /// proposes and what runs now) judge one object without copying it.
    pub fn judge_request(
        &self,
        request: &AdmissionRequest,
        context: &Context,
        now_ms: i64,
    ) -> Judged {
        let mut verdict = self.bundle.evaluate(request, context);
        // The namespace's labels, as a bundle of only Pod Security levels would evaluate them.
        if let Some(levels) = self.pod_security.get(&request.namespace) {
            if !SYSTEM_NAMESPACES.contains(&request.namespace.as_str()) {
                for (level, mode) in levels {
                    verdict.merge(palisade_engine::pss::evaluate(*level, *mode, request));
                }
            }
        }
        let not_evaluable = verdict
            .not_evaluable
            .into_iter()
            .map(|n| format!("{}: {}", n.policy, n.reason))
            .collect();
        // Most objects pass: what a finding names is worked out only for those that do not.
        if verdict.findings.is_empty() {
            return Judged {
                findings: Vec::new(),
                not_evaluable,
            };
        }
        let resource = if request.resource.group.is_empty() {
            request.resource.resource.clone()
        } else {
            format!("{}/{}", request.resource.group, request.resource.resource)
        };
        let metadata = request.object.as_ref().map(|o| &o["metadata"]);
        let uid = metadata
            .and_then(|m| m["uid"].as_str())
            .unwrap_or_default()
            .to_owned();
        let labels: std::collections::BTreeMap<String, String> = metadata
            .and_then(|m| m["labels"].as_object())
            .map(|l| {
                l.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        let kind = request.kind.kind.clone();
        let excepted = |policy_id: &str| {
            self.exceptions.get(policy_id).is_some_and(|list| {
                list.iter().any(|e| {
                    e.covers(
                        &kind,
                        &request.namespace,
                        &request.name,
                        &labels,
                        self.now_ms,
                    )
                })
            })
        };
        let mut findings: Vec<(Finding, bool)> = verdict
            .findings
            .into_iter()
            .filter_map(|f| {
                let action = action_of(f.action)?;
                let policy = reported(f.engine, &f.policy);
                let policy_id = self.names.get(&policy).cloned().unwrap_or_default();
                let excepted = excepted(&policy_id);
                Some((
                    Finding {
                        policy_id,
                        policy,
                        resource: resource.clone(),
                        namespace: request.namespace.clone(),
                        name: request.name.clone(),
                        uid: uid.clone(),
                        action,
                        source: Source::Scan,
                        message: f.message,
                        at_ms: now_ms,
                    },
                    excepted,
                ))
            })
            .collect();
        // One row per policy and action: the engines may report a policy once per binding.
        findings.sort_by(|(a, _), (b, _)| (&a.policy, a.action).cmp(&(&b.policy, b.action)));
        findings.dedup_by(|(a, _), (b, _)| a.policy == b.policy && a.action == b.action);
        Judged {
            findings,
            not_evaluable,
        }
    }
}

/// What the deployed policies say about one object (see [`Deployed::judge`]).
#[derive(Debug, Default)]
pub struct Judged {
    /// Each finding, and whether an active exception covers it.
    pub findings: Vec<(Finding, bool)>,
    /// `policy: reason` for each policy that could not be evaluated here.
    pub not_evaluable: Vec<String>,
}

/// A workload that a controller owns is checked through its owner (a Pod of a ReplicaSet of a
/// Deployment is one workload, reported once, on the Deployment).
fn owned(object: &Value) -> bool {
    object["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|owners| owners.iter().any(|o| o["controller"] == true))
}

async fn deployments_of(db: &Db, cluster_id: &str) -> ServerResult<Vec<(String, Vec<Value>)>> {
    let rows = sqlx::query("SELECT policy_id, manifests FROM deployments WHERE cluster_id = $1")
        .bind(cluster_id)
        .fetch_all(db.pool())
        .await?;
    let mut out = Vec::new();
    for row in rows {
        let policy_id: String = row.try_get("policy_id")?;
        let manifests: String = row.try_get("manifests")?;
        out.push((policy_id, crate::db::json_column("manifests", &manifests)?));
    }
    Ok(out)
}

/// What a cluster runs of one policy now: its version, mode and the objects applied; `None` when
/// the policy is not deployed there.
pub async fn running_on(
    db: &Db,
    cluster_id: &str,
    policy_id: &str,
) -> ServerResult<Option<(i64, crate::model::Mode, Vec<Value>)>> {
    let row = sqlx::query(
        "SELECT version, mode, manifests FROM deployments WHERE cluster_id = $1 AND policy_id = $2",
    )
    .bind(cluster_id)
    .bind(policy_id)
    .fetch_optional(db.pool())
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let mode: String = row.try_get("mode")?;
    let manifests: String = row.try_get("manifests")?;
    Ok(Some((
        row.try_get("version")?,
        crate::model::Mode::decode(&mode)?,
        crate::db::json_column("manifests", &manifests)?,
    )))
}

async fn write(
    db: &Db,
    cluster_id: &str,
    findings: &[Finding],
    scan: &mut ClusterScan,
) -> ServerResult<()> {
    if findings.is_empty() {
        return Ok(());
    }
    let _turn = db.write_turn().await;
    let mut tx = db.begin().await?;
    let written = store::record(&mut tx, cluster_id, findings, 0).await?;
    tx.commit().await?;
    scan.findings += findings.len();
    scan.opened += written.opened;
    Ok(())
}

/// Scans one cluster now.
pub async fn scan_cluster(
    db: &Db,
    sealer: Option<&Sealer>,
    connector: &dyn ClusterConnector,
    cluster_id: &str,
    now_ms: i64,
) -> ServerResult<ClusterScan> {
    let context = ClustersContext {
        db,
        sealer,
        connector,
    };
    let (cluster, credentials) = clusters::open_credentials(&context, cluster_id).await?;
    let mut scan = ClusterScan {
        cluster_id: cluster.id.clone(),
        cluster_name: cluster.name.clone(),
        ..ClusterScan::default()
    };
    let deployments = deployments_of(db, cluster_id).await?;
    let (mut deployed, errors) = Deployed::from_deployments(&deployments);
    scan.errors.extend(errors);
    deployed.now_ms = now_ms;
    for (policy_id, _) in &deployments {
        let active = crate::exceptions::ssr::active_for(db, policy_id, now_ms).await?;
        if !active.is_empty() {
            deployed.exceptions.insert(policy_id.clone(), active);
        }
    }

    // Namespaces first: their labels decide what namespace selectors match.
    let mut namespaces = Vec::new();
    let mut token: Option<String> = None;
    loop {
        match connector
            .list(&credentials, "v1", "Namespace", token.as_deref(), PAGE)
            .await
        {
            Ok((items, next)) => {
                namespaces.extend(items);
                token = next;
            }
            Err(err) => {
                scan.errors.push(format!("namespaces: {err}"));
                break;
            }
        }
        if token.is_none() {
            break;
        }
    }
    let engine_context = Context {
        namespaces: namespaces.into(),
        ..Context::default()
    };
    if !deployments.is_empty() {
        for (api_version, kind) in KINDS {
            let mut token: Option<String> = None;
            loop {
                let (items, next) = match connector
                    .list(&credentials, api_version, kind, token.as_deref(), PAGE)
                    .await
                {
                    Ok(page) => page,
                    Err(err) => {
                        scan.errors.push(format!("{kind}: {err}"));
                        break;
                    }
                };
                let mut findings = Vec::new();
                for mut object in items {
                    if owned(&object) {
                        continue;
                    }
                    object["apiVersion"] = Value::from(*api_version);
                    object["kind"] = Value::from(*kind);
                    scan.objects += 1;
                    findings.extend(deployed.evaluate(object, &engine_context, now_ms));
                }
                write(db, cluster_id, &findings, &mut scan).await?;
                token = next;
                if token.is_none() {
                    break;
                }
            }
        }
    }
    // Other engines' reports, where the cluster has them.
    if cluster.capabilities.policy_reports {
        for kind in ["PolicyReport", "ClusterPolicyReport"] {
            let mut token: Option<String> = None;
            loop {
                let (items, next) = match connector
                    .list(
                        &credentials,
                        "wgpolicyk8s.io/v1alpha2",
                        kind,
                        token.as_deref(),
                        PAGE,
                    )
                    .await
                {
                    Ok(page) => page,
                    Err(err) => {
                        scan.errors.push(format!("{kind}: {err}"));
                        break;
                    }
                };
                // A report about a policy Palisade deployed (Kyverno's) counts for that policy.
                let findings: Vec<Finding> = items
                    .iter()
                    .flat_map(|r| report_findings(r, now_ms))
                    .map(|mut f| {
                        f.policy_id = deployed.names.get(&f.policy).cloned().unwrap_or_default();
                        f
                    })
                    .collect();
                write(db, cluster_id, &findings, &mut scan).await?;
                token = next;
                if token.is_none() {
                    break;
                }
            }
        }
    }
    for constraint in &deployed.constraints {
        match connector.get(&credentials, constraint).await {
            Ok(Some(live)) => {
                let mut findings = constraint_findings(&live, now_ms);
                for f in &mut findings {
                    f.policy_id = deployed.names.get(&f.policy).cloned().unwrap_or_default();
                }
                write(db, cluster_id, &findings, &mut scan).await?;
            }
            Ok(None) => {}
            Err(err) => scan.errors.push(format!(
                "constraint {}: {err}",
                constraint["metadata"]["name"].as_str().unwrap_or_default()
            )),
        }
    }
    if scan.errors.is_empty() {
        let _turn = db.write_turn().await;
        let mut tx = db.begin().await?;
        store::mark_reported(&mut tx, cluster_id, now_ms).await?;
        for source in [Source::Scan, Source::Report] {
            scan.resolved +=
                store::resolve_unseen(&mut tx, cluster_id, source, now_ms, now_ms).await?;
        }
        tx.commit().await?;
    }
    Ok(scan)
}

/// The timed scan: every enabled cluster with deployments whose scan is due, claimed first (a
/// compare-and-set on `scan_due_ms`), so that of several replicas one scans each cluster per
/// `every_ms`.
pub async fn scan_due(
    db: &Db,
    sealer: Option<&Sealer>,
    connector: &dyn ClusterConnector,
    now_ms: i64,
    every_ms: i64,
) -> ServerResult<Vec<ClusterScan>> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT c.id FROM clusters c JOIN deployments d ON d.cluster_id = c.id \
         WHERE c.disabled = 0 AND c.scan_due_ms <= $1 ORDER BY c.id",
    )
    .bind(now_ms)
    .fetch_all(db.pool())
    .await?;
    let mut out = Vec::new();
    for id in ids {
        let claimed =
            sqlx::query("UPDATE clusters SET scan_due_ms = $1 WHERE id = $2 AND scan_due_ms <= $3")
                .bind(now_ms + every_ms)
                .bind(&id)
                .bind(now_ms)
                .execute(db.pool())
                .await?
                .rows_affected()
                == 1;
        if !claimed {
            continue;
        }
        out.push(scan_or_error(db, sealer, connector, id, now_ms).await);
    }
    Ok(out)
}

/// One cluster's scan; a scan that could not run is reported as its error, so one cluster's
/// failure never hides the others'.
async fn scan_or_error(
    db: &Db,
    sealer: Option<&Sealer>,
    connector: &dyn ClusterConnector,
    id: String,
    now_ms: i64,
) -> ClusterScan {
    match scan_cluster(db, sealer, connector, &id, now_ms).await {
        Ok(scan) => scan,
        Err(err) => ClusterScan {
            cluster_id: id,
            errors: vec![err.to_string()],
            ..ClusterScan::default()
        },
    }
}

/// Scans every enabled cluster that has deployments, one after the other (on request).
pub async fn scan_all(
    db: &Db,
    sealer: Option<&Sealer>,
    connector: &dyn ClusterConnector,
    now_ms: i64,
) -> ServerResult<Vec<ClusterScan>> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT c.id FROM clusters c JOIN deployments d ON d.cluster_id = c.id \
         WHERE c.disabled = 0 ORDER BY c.id",
    )
    .fetch_all(db.pool())
    .await?;
    let mut out = Vec::new();
    for id in ids {
        out.push(scan_or_error(db, sealer, connector, id, now_ms).await);
    }
    Ok(out)
}

/// Totals of several scans, for logs.
pub fn totals(scans: &[ClusterScan]) -> BTreeMap<&'static str, usize> {
    let mut out = BTreeMap::new();
    out.insert("clusters", scans.len());
    out.insert("objects", scans.iter().map(|s| s.objects).sum());
    out.insert("findings", scans.iter().map(|s| s.findings).sum());
    out.insert("errors", scans.iter().map(|s| s.errors.len()).sum());
    out
}

mod reports;
#[cfg(test)]
mod tests;
