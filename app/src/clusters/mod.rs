//! Clusters: the Kubernetes clusters Palisade pushes policies to.
//!
//! A cluster is registered from a kubeconfig (one chosen context) or from an API URL, CA and token.
//! Its credentials are sealed at rest ([`crate::secrets`]) and never leave the server: nothing in
//! this module's wire types carries them. Registration and "Check now" probe the cluster for its
//! Kubernetes version and admission capabilities (ValidatingAdmissionPolicy, Gatekeeper, Kyverno,
//! PolicyReports).

pub mod pages;
#[cfg(feature = "ssr")]
pub mod ssr;

use crate::wire::wire_enum;
use std::collections::BTreeMap;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

wire_enum! {
    /// Whether Palisade could reach a cluster at its last check.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    pub enum Health as "health" {
        /// Not checked yet.
        Unknown = "unknown",
        Reachable = "reachable",
        Unreachable = "unreachable",
    }
}

/// What the cluster's API offers for admission control.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct Capabilities {
    /// `admissionregistration.k8s.io/v1` serves `validatingadmissionpolicies` (Kubernetes 1.30+).
    pub validating_admission_policy: bool,
    /// Gatekeeper's `templates.gatekeeper.sh` API (ConstraintTemplates) is installed.
    pub gatekeeper: bool,
    /// Kyverno's `kyverno.io` or `policies.kyverno.io` API is installed.
    pub kyverno: bool,
    /// The `wgpolicyk8s.io` PolicyReport API is installed.
    pub policy_reports: bool,
}

/// A registered cluster, as the UI and the API show it. Holds no credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct Cluster {
    pub id: String,
    pub name: String,
    /// e.g. `dev`, `staging`, `prod`: rollout waves select clusters by it.
    pub environment: String,
    pub labels: BTreeMap<String, String>,
    pub api_url: String,
    /// `kubeconfig` or `token`: how the credentials were given.
    pub credential_kind: String,
    /// A disabled cluster is skipped by rollouts, scans and checks.
    pub disabled: bool,
    /// Re-apply the desired state when drift is found.
    pub reconcile: bool,
    pub health: Health,
    /// The apiserver's `gitVersion`, e.g. `v1.37.2`, from the last successful check.
    pub k8s_version: String,
    pub capabilities: Capabilities,
    /// What went wrong at the last check, in the apiserver's or the network's words.
    pub last_error: String,
    pub last_checked_ms: i64,
    pub created_ms: i64,
    pub created_by: String,
}

impl Cluster {
    /// A cluster as it is registered, before anything is known of it: enabled, not reconciling,
    /// never checked (health unknown, no version, no capabilities), no labels, no apiserver URL.
    pub fn registered(
        id: String,
        name: String,
        environment: String,
        credential_kind: &str,
        created_ms: i64,
        created_by: String,
    ) -> Cluster {
        Cluster {
            id,
            name,
            environment,
            labels: BTreeMap::new(),
            api_url: String::new(),
            credential_kind: credential_kind.to_owned(),
            disabled: false,
            reconcile: false,
            health: Health::Unknown,
            k8s_version: String::new(),
            capabilities: Capabilities::default(),
            last_error: String::new(),
            last_checked_ms: 0,
            created_ms,
            created_by,
        }
    }
}

/// How to reach a cluster, as the person registering it gives it. Secret: sealed before storage
/// and never sent back.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum CredentialsInput {
    /// A kubeconfig, with everything embedded (`kubectl config view --raw --minify --flatten`),
    /// and the context to use (its current context when `None`).
    Kubeconfig {
        kubeconfig: String,
        context: Option<String>,
    },
    /// The API server's https URL, its CA certificate (PEM) and a bearer token.
    Token {
        api_url: String,
        ca_pem: String,
        token: String,
    },
}

impl std::fmt::Debug for CredentialsInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CredentialsInput::Kubeconfig { context, .. } => f
                .debug_struct("Kubeconfig")
                .field("context", context)
                .finish_non_exhaustive(),
            CredentialsInput::Token { api_url, .. } => f
                .debug_struct("Token")
                .field("api_url", api_url)
                .finish_non_exhaustive(),
        }
    }
}

/// Everything needed to register a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct NewCluster {
    pub name: String,
    pub environment: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub credentials: CredentialsInput,
}

/// A change to a cluster; fields left out stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct ClusterChange {
    #[serde(default)]
    pub environment: Option<String>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub disabled: Option<bool>,
    #[serde(default)]
    pub reconcile: Option<bool>,
    /// New credentials (for example a rotated token).
    #[serde(default)]
    pub credentials: Option<CredentialsInput>,
}

/// A name Kubernetes would accept as a label value and a DNS label: lowercase letters, digits and
/// `-`, starting and ending with a letter or digit, at most 63 characters.
pub fn validate_name(field: &str, value: &str) -> Result<(), AppError> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(AppError::Invalid(format!(
            "{field} `{value}` must be 1–63 lowercase letters, digits or `-`, starting and ending with a letter or digit"
        )))
    }
}

/// Namespace names as a person typed them: trimmed, the empty ones dropped, sorted, each once.
pub fn tidy_namespaces(names: &[String]) -> Vec<String> {
    let mut namespaces: Vec<String> = names
        .iter()
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .collect();
    namespaces.sort();
    namespaces.dedup();
    namespaces
}

/// Labels as `key=value` pairs: keys are an optional DNS prefix and a name of letters, digits,
/// `-`, `_` and `.`; values the same characters, at most 63.
pub fn validate_labels(labels: &BTreeMap<String, String>) -> Result<(), AppError> {
    let part_ok = |part: &str, allow_empty: bool| {
        (allow_empty || !part.is_empty())
            && part.len() <= 63
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    for (key, value) in labels {
        let name = key.rsplit_once('/').map_or(key.as_str(), |(_, name)| name);
        if !part_ok(name, false) || !part_ok(value, true) {
            return Err(AppError::Invalid(format!(
                "label `{key}={value}`: keys and values are letters, digits, `-`, `_` and `.`, at most 63 characters"
            )));
        }
    }
    Ok(())
}

/// `team=payments, tier=1` → a label map; the form's text field for labels.
pub fn parse_labels(text: &str) -> Result<BTreeMap<String, String>, AppError> {
    let mut labels = BTreeMap::new();
    for pair in text
        .split([',', '\n'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let (key, value) = pair.split_once('=').ok_or_else(|| {
            AppError::Invalid(format!("label `{pair}` must be written key=value"))
        })?;
        labels.insert(key.trim().to_owned(), value.trim().to_owned());
    }
    validate_labels(&labels)?;
    Ok(labels)
}

/// Every registered cluster, by environment then name.
#[server(endpoint = "list_clusters")]
pub async fn list_clusters() -> Result<Vec<Cluster>, AppError> {
    use crate::auth::{ssr::require, Action};
    require(Action::Read)?;
    let state = crate::state::current()?;
    Ok(ssr::service::list(&state.db).await?)
}

/// One registered cluster, for its page.
#[server(endpoint = "get_cluster")]
pub async fn get_cluster(id: String) -> Result<Cluster, AppError> {
    use crate::auth::{ssr::require, Action};
    require(Action::Read)?;
    let state = crate::state::current()?;
    Ok(ssr::service::get(&state.db, &id).await?)
}

/// A cluster's id and name: what a filter's choice of cluster needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterName {
    pub id: String,
    pub name: String,
}

/// Every registered cluster's id and name, by environment then name (a filter's choices, without
/// the rest of each cluster).
#[server(endpoint = "cluster_names")]
pub async fn cluster_names() -> Result<Vec<ClusterName>, AppError> {
    use crate::auth::{ssr::require, Action};
    require(Action::Read)?;
    let state = crate::state::current()?;
    Ok(ssr::service::names(&state.db)
        .await?
        .into_iter()
        .map(|(id, name)| ClusterName { id, name })
        .collect())
}

/// Clusters the Clusters page shows at once.
pub const CLUSTERS_PER_PAGE: usize = 25;

/// One page of the Clusters page: the clusters after a cursor, in list order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterPage {
    pub clusters: Vec<Cluster>,
    /// The cursor of the next page (the id of this page's last cluster), when there is one.
    pub next: Option<String>,
    /// Where this page starts (1-based) and how many clusters there are in all.
    pub first: usize,
    pub total: usize,
}

/// The `per_page` clusters of `all` that come after the one whose id is `after` (from the start
/// when `after` is absent or names no cluster any more): the rule the Clusters page's keyed read
/// follows (a test holds the query to it).
pub fn page_of(all: Vec<Cluster>, after: Option<&str>, per_page: usize) -> ClusterPage {
    let total = all.len();
    let start = after
        .and_then(|after| all.iter().position(|c| c.id == after))
        .map_or(0, |i| i + 1);
    let clusters: Vec<Cluster> = all.into_iter().skip(start).take(per_page).collect();
    let next = (start + clusters.len() < total)
        .then(|| clusters.last().map(|c| c.id.clone()))
        .flatten();
    ClusterPage {
        first: start + 1,
        total,
        clusters,
        next,
    }
}

/// A page of the registered clusters, by environment then name.
#[server(endpoint = "list_cluster_page")]
pub async fn list_cluster_page(after: Option<String>) -> Result<ClusterPage, AppError> {
    use crate::auth::{ssr::require, Action};
    require(Action::Read)?;
    let state = crate::state::current()?;
    Ok(ssr::service::page(&state.db, after.as_deref(), CLUSTERS_PER_PAGE).await?)
}

/// The context names of a pasted kubeconfig, for the context chooser.
#[server(endpoint = "kubeconfig_contexts")]
pub async fn kubeconfig_contexts(kubeconfig: String) -> Result<Vec<String>, AppError> {
    use crate::auth::{ssr::require, Action};
    require(Action::ManageClusters)?;
    Ok(ssr::credentials::contexts(&kubeconfig)?)
}

/// Register a cluster: check the credentials, probe the cluster, seal and store.
#[server(endpoint = "register_cluster")]
pub async fn register_cluster(input: NewCluster) -> Result<Cluster, AppError> {
    use crate::auth::{ssr::require, Action};
    let who = require(Action::ManageClusters)?;
    let state = crate::state::current()?;
    Ok(ssr::service::register(&state.clusters_context(), &who, crate::db::now_ms(), input).await?)
}

/// Change a cluster's environment, labels, credentials, or disable / enable it.
#[server(endpoint = "update_cluster")]
pub async fn update_cluster(id: String, change: ClusterChange) -> Result<Cluster, AppError> {
    use crate::auth::{ssr::require, Action};
    let who = require(Action::ManageClusters)?;
    let state = crate::state::current()?;
    Ok(ssr::service::update(
        &state.clusters_context(),
        &who,
        crate::db::now_ms(),
        &id,
        change,
    )
    .await?)
}

/// Remove a cluster and its sealed credentials.
#[server(endpoint = "remove_cluster")]
pub async fn remove_cluster(id: String) -> Result<(), AppError> {
    use crate::auth::{ssr::require, Action};
    let who = require(Action::ManageClusters)?;
    let state = crate::state::current()?;
    Ok(ssr::service::remove(&state.db, &who, crate::db::now_ms(), &id).await?)
}

/// Probe a cluster now: reachability, version and capabilities.
#[server(endpoint = "check_cluster")]
pub async fn check_cluster(id: String) -> Result<Cluster, AppError> {
    use crate::auth::{ssr::require, Action};
    let who = require(Action::ManageClusters)?;
    let state = crate::state::current()?;
    Ok(ssr::service::check(&state.clusters_context(), &who, crate::db::now_ms(), &id).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_the_cursor_and_end_where_the_list_ends() {
        let cluster = |n: usize| {
            Cluster::registered(
                format!("id-{n}"),
                format!("c{n}"),
                "prod".into(),
                "token",
                0,
                String::new(),
            )
        };
        let all = || (0..7).map(cluster).collect::<Vec<_>>();
        let ids = |page: &ClusterPage| {
            page.clusters
                .iter()
                .map(|c| c.id.clone())
                .collect::<Vec<_>>()
        };
        let first = page_of(all(), None, 3);
        assert_eq!(ids(&first), ["id-0", "id-1", "id-2"]);
        assert_eq!(
            (first.first, first.total, first.next.as_deref()),
            (1, 7, Some("id-2"))
        );
        let last = page_of(all(), Some("id-5"), 3);
        assert_eq!(ids(&last), ["id-6"]);
        assert_eq!((last.first, last.next), (7, None));
        let exact = page_of(all(), Some("id-3"), 3);
        assert_eq!((ids(&exact).len(), exact.next), (3, None));
        // A cursor naming a cluster that is gone starts over.
        assert_eq!(page_of(all(), Some("removed"), 3).first, 1);
    }

    #[test]
    fn names_follow_dns_label_rules() {
        for good in ["prod-eu-1", "a", "dev"] {
            assert_eq!(validate_name("name", good), Ok(()));
        }
        for bad in ["", "-a", "a-", "Prod", "a_b", &"x".repeat(64)] {
            assert!(validate_name("name", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn labels_parse_from_text_and_bad_ones_say_which() {
        let labels = parse_labels("team=payments, tier = 1\nregion=eu").unwrap();
        assert_eq!(labels.len(), 3);
        assert_eq!(labels["tier"], "1");
        let err = parse_labels("team").unwrap_err();
        assert!(err.to_string().contains("key=value"), "{err}");
        let err = parse_labels("team=a b").unwrap_err();
        assert!(err.to_string().contains("team=a b"), "{err}");
        assert_eq!(parse_labels("").unwrap(), BTreeMap::new());
    }

    #[test]
    fn credentials_never_show_in_debug_output() {
        let token = CredentialsInput::Token {
            api_url: "https://k8s.example:6443".into(),
            ca_pem: "-----BEGIN CERTIFICATE-----".into(),
            token: "s3cr3t-token".into(),
        };
        let kubeconfig = CredentialsInput::Kubeconfig {
            kubeconfig: "users: [{user: {token: s3cr3t-token}}]".into(),
            context: Some("prod".into()),
        };
        for input in [token, kubeconfig] {
            let shown = format!("{input:?}");
            assert!(!shown.contains("s3cr3t"), "{shown}");
        }
    }
}
