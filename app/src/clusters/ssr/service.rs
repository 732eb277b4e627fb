//! The clusters service: registration, changes, removal and checks. It owns transactions; network
//! calls to clusters happen outside them. Every change is written to the audit log in the same
//! transaction.

use serde_json::json;

use super::connector::Probe;
use super::credentials::Credentials;
use super::queries;
use super::Context;
use crate::audit::ssr::Event;
use crate::auth::Principal;
use crate::clusters::{
    validate_labels, validate_name, Cluster, ClusterChange, CredentialsInput, Health, NewCluster,
};
use crate::db::{conflict_if_unique, new_id, Db};
use crate::error::{AppError, OrFault, ServerResult};
use crate::secrets::Sealer;

const NO_KEY: &str = "no secrets key is configured, so cluster credentials cannot be stored: set \
     secrets.key_file (a file holding 64 hex digits, from `openssl rand -hex 32`) or \
     PALISADE__SECRETS__KEY and restart Palisade";

pub async fn list(db: &Db) -> ServerResult<Vec<Cluster>> {
    Ok(queries::list(db.pool()).await?)
}

/// One page of the clusters, in list order, after the cluster `after` names.
pub async fn page(
    db: &Db,
    after: Option<&str>,
    per_page: usize,
) -> ServerResult<crate::clusters::ClusterPage> {
    Ok(queries::page(db.pool(), after, per_page).await?)
}

/// Every cluster's id and name, in list order.
pub async fn names(db: &Db) -> ServerResult<Vec<(String, String)>> {
    Ok(queries::names(db.pool()).await?)
}

pub async fn get(db: &Db, id: &str) -> ServerResult<Cluster> {
    Ok(load(db, id).await?.cluster)
}

async fn load(db: &Db, id: &str) -> ServerResult<queries::Stored> {
    Ok(queries::get(db.pool(), id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("cluster {id}")))?)
}

fn kind_of(input: &CredentialsInput) -> &'static str {
    match input {
        CredentialsInput::Kubeconfig { .. } => "kubeconfig",
        CredentialsInput::Token { .. } => "token",
    }
}

fn seal(sealer: &Sealer, credentials: &Credentials, id: &str) -> ServerResult<String> {
    sealer
        .seal(credentials.kubeconfig.as_bytes(), id)
        .or_fault()
}

fn open(sealer: Option<&Sealer>, stored: &queries::Stored) -> ServerResult<Credentials> {
    let sealer = sealer.ok_or_else(|| AppError::Conflict(NO_KEY.to_owned()))?;
    let plain = sealer.open(&stored.sealed, &stored.cluster.id).or_fault()?;
    let kubeconfig = String::from_utf8(plain).or_fault()?;
    Ok(Credentials {
        kubeconfig,
        api_url: stored.cluster.api_url.clone(),
    })
}

/// Apply what a probe found (or why it failed) to `cluster`.
fn apply_probe(cluster: &mut Cluster, result: Result<Probe, super::ClusterError>, now: i64) {
    cluster.last_checked_ms = now;
    match result {
        Ok(probe) => {
            cluster.health = Health::Reachable;
            cluster.k8s_version = probe.version;
            cluster.capabilities = probe.capabilities;
            cluster.last_error = String::new();
        }
        Err(err) => {
            cluster.health = Health::Unreachable;
            cluster.last_error = err.to_string();
        }
    }
}

/// Register a cluster. The credentials are checked and the cluster probed first; an unreachable
/// cluster is still registered (so it can be fixed later), with the reason shown.
pub async fn register(
    ctx: &Context<'_>,
    who: &Principal,
    now: i64,
    input: NewCluster,
) -> ServerResult<Cluster> {
    let name = input.name.trim().to_owned();
    let environment = input.environment.trim().to_owned();
    validate_name("name", &name)?;
    validate_name("environment", &environment)?;
    validate_labels(&input.labels)?;
    let credentials = Credentials::from_input(&input.credentials)?;
    let sealer = ctx
        .sealer
        .ok_or_else(|| AppError::Conflict(NO_KEY.to_owned()))?;
    if queries::name_taken(ctx.db.pool(), &name).await? {
        return Err(
            AppError::Conflict(format!("a cluster named `{name}` is already registered")).into(),
        );
    }
    let mut cluster = Cluster {
        labels: input.labels,
        api_url: credentials.api_url.clone(),
        ..Cluster::registered(
            new_id(),
            name,
            environment,
            kind_of(&input.credentials),
            now,
            who.display_name.clone(),
        )
    };
    apply_probe(&mut cluster, ctx.connector.probe(&credentials).await, now);
    let sealed = seal(sealer, &credentials, &cluster.id)?;

    let mut tx = ctx.db.begin().await?;
    queries::insert(&mut *tx, &cluster, &sealed)
        .await
        .map_err(conflict_if_unique(
            "storing a cluster",
            format!("a cluster named `{}` is already registered", cluster.name),
        ))?;
    Event::new("cluster.register", "cluster", &cluster.id)
        .detail(json!({
            "name": cluster.name,
            "environment": cluster.environment,
            "api_url": cluster.api_url,
            "credentials": cluster.credential_kind,
            "health": cluster.health.as_str(),
        }))
        .record(&mut *tx, who, now)
        .await?;
    tx.commit().await?;
    tracing::info!(cluster = %cluster.name, health = cluster.health.as_str(), "cluster registered");
    Ok(cluster)
}

/// Change a cluster. New credentials are checked and probed before they replace the old ones.
pub async fn update(
    ctx: &Context<'_>,
    who: &Principal,
    now: i64,
    id: &str,
    change: ClusterChange,
) -> ServerResult<Cluster> {
    let stored = load(ctx.db, id).await?;
    let mut cluster = stored.cluster;
    let mut changed = Vec::new();
    if let Some(environment) = change.environment.map(|e| e.trim().to_owned()) {
        validate_name("environment", &environment)?;
        if environment != cluster.environment {
            cluster.environment = environment;
            changed.push("environment");
        }
    }
    if let Some(labels) = change.labels {
        validate_labels(&labels)?;
        if labels != cluster.labels {
            cluster.labels = labels;
            changed.push("labels");
        }
    }
    if let Some(disabled) = change.disabled.filter(|d| *d != cluster.disabled) {
        cluster.disabled = disabled;
        changed.push(if disabled { "disabled" } else { "enabled" });
    }
    if let Some(reconcile) = change.reconcile.filter(|r| *r != cluster.reconcile) {
        cluster.reconcile = reconcile;
        changed.push("reconcile");
    }
    let mut sealed = None;
    if let Some(input) = &change.credentials {
        let credentials = Credentials::from_input(input)?;
        let sealer = ctx
            .sealer
            .ok_or_else(|| AppError::Conflict(NO_KEY.to_owned()))?;
        apply_probe(&mut cluster, ctx.connector.probe(&credentials).await, now);
        cluster.api_url = credentials.api_url.clone();
        cluster.credential_kind = kind_of(input).to_owned();
        sealed = Some(seal(sealer, &credentials, &cluster.id)?);
        changed.push("credentials");
    }
    if changed.is_empty() {
        return Ok(cluster);
    }
    let mut tx = ctx.db.begin().await?;
    let rows = queries::update(&mut *tx, &cluster, sealed.as_deref(), now).await?;
    if rows == 0 {
        return Err(AppError::NotFound(format!("cluster {id}")).into());
    }
    Event::new("cluster.update", "cluster", &cluster.id)
        .detail(json!({ "name": cluster.name, "changed": changed }))
        .record(&mut *tx, who, now)
        .await?;
    tx.commit().await?;
    Ok(cluster)
}

/// Remove a cluster and its sealed credentials. Palisade leaves what it applied in the cluster.
pub async fn remove(db: &Db, who: &Principal, now: i64, id: &str) -> ServerResult<()> {
    let cluster = get(db, id).await?;
    let mut tx = db.begin().await?;
    if queries::delete(&mut *tx, id).await? == 0 {
        return Err(AppError::NotFound(format!("cluster {id}")).into());
    }
    Event::new("cluster.remove", "cluster", id)
        .detail(json!({ "name": cluster.name, "environment": cluster.environment }))
        .record(&mut *tx, who, now)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// The credentials of an enabled cluster, opened with the configured key: what rollouts and scans
/// hand to the connector.
pub async fn open_credentials(ctx: &Context<'_>, id: &str) -> ServerResult<(Cluster, Credentials)> {
    let stored = load(ctx.db, id).await?;
    if stored.cluster.disabled {
        return Err(
            AppError::Conflict(format!("cluster `{}` is disabled", stored.cluster.name)).into(),
        );
    }
    let credentials = open(ctx.sealer, &stored)?;
    Ok((stored.cluster, credentials))
}

/// Probe a cluster now and store what was found.
pub async fn check(
    ctx: &Context<'_>,
    _who: &Principal,
    now: i64,
    id: &str,
) -> ServerResult<Cluster> {
    let stored = load(ctx.db, id).await?;
    if stored.cluster.disabled {
        return Err(AppError::Conflict(format!(
            "cluster `{}` is disabled: enable it to check it",
            stored.cluster.name
        ))
        .into());
    }
    let credentials = open(ctx.sealer, &stored)?;
    let mut cluster = stored.cluster;
    apply_probe(&mut cluster, ctx.connector.probe(&credentials).await, now);
    queries::update(ctx.db.pool(), &cluster, None, now).await?;
    Ok(cluster)
}

/// The start-up check: when clusters exist, the key must be there and must open every cluster's
/// credentials. The error says what to fix; it never includes a credential.
pub async fn check_key(db: &Db, sealer: Option<&Sealer>) -> Result<(), String> {
    let sealed = queries::all_sealed(db.pool())
        .await
        .map_err(|err| format!("cannot read clusters: {err}"))?;
    if sealed.is_empty() {
        return Ok(());
    }
    let Some(sealer) = sealer else {
        return Err(format!(
            "{} cluster(s) have sealed credentials but no secrets key is configured: set \
             secrets.key_file or PALISADE__SECRETS__KEY to the key they were sealed with",
            sealed.len()
        ));
    };
    for (id, name, value) in &sealed {
        if sealer.open(value, id).is_err() {
            return Err(format!(
                "the configured secrets key does not open the credentials of cluster `{name}`: \
                 it is not the key they were sealed with"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clusters::ssr::ClusterError;
    use crate::clusters::Capabilities;

    #[test]
    fn probes_set_health_version_and_the_reason() {
        let mut cluster = Cluster::registered(
            "c".into(),
            "c".into(),
            "dev".into(),
            "token",
            0,
            String::new(),
        );
        let found = Probe {
            version: "v1.37.2".into(),
            capabilities: Capabilities {
                validating_admission_policy: true,
                ..Capabilities::default()
            },
        };
        apply_probe(&mut cluster, Ok(found), 5);
        assert_eq!(
            (cluster.health, cluster.k8s_version.as_str()),
            (Health::Reachable, "v1.37.2")
        );
        assert!(cluster.capabilities.validating_admission_policy);
        apply_probe(&mut cluster, Err(ClusterError::Unauthorized), 6);
        assert_eq!(cluster.health, Health::Unreachable);
        assert!(cluster.last_error.contains("401"), "{}", cluster.last_error);
        assert_eq!(cluster.last_checked_ms, 6);
        // What was known from the last good probe stays.
        assert_eq!(cluster.k8s_version, "v1.37.2");
    }
}
