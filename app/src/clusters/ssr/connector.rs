//! Reaching a cluster, behind a narrow trait: the real one speaks to kube-apiservers through
//! `kube::Client`; unit tests use a fake. Only the verbs Palisade uses are here (rollouts add
//! apply, read-back and delete).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::Client;

use super::credentials::Credentials;
use crate::clusters::Capabilities;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The apiserver's `gitVersion`, e.g. `v1.37.2`.
    pub version: String,
    pub capabilities: Capabilities,
}

/// Why a cluster could not be reached or refused us, in words an operator can act on. Never holds
/// a credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    #[error("the credentials cannot be used: {0}")]
    Credentials(String),
    #[error("the cluster refused the credentials (401 Unauthorized): the token or certificate is wrong or expired")]
    Unauthorized,
    #[error("the cluster's API answered {code}: {message}")]
    Api { code: u16, message: String },
    #[error("cannot reach the cluster: {0}")]
    Unreachable(String),
}

/// How Palisade talks to clusters.
pub trait ClusterConnector: Send + Sync {
    /// Version and admission capabilities of the cluster these credentials reach.
    fn probe<'a>(
        &'a self,
        credentials: &'a Credentials,
    ) -> BoxFuture<'a, Result<Probe, ClusterError>>;
}

/// The real connector: one short-lived `kube::Client` per call, with timeouts so one slow cluster
/// cannot hold a caller for long.
#[derive(Debug, Clone)]
pub struct KubeConnector {
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
}

impl Default for KubeConnector {
    fn default() -> Self {
        KubeConnector {
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(15),
        }
    }
}

impl KubeConnector {
    /// A client for `credentials`.
    pub async fn client(&self, credentials: &Credentials) -> Result<Client, ClusterError> {
        let kubeconfig = Kubeconfig::from_yaml(&credentials.kubeconfig)
            .map_err(|err| ClusterError::Credentials(err.to_string()))?;
        let mut config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|err| ClusterError::Credentials(err.to_string()))?;
        config.connect_timeout = Some(self.connect_timeout);
        config.read_timeout = Some(self.read_timeout);
        config.write_timeout = Some(self.read_timeout);
        Client::try_from(config).map_err(|err| ClusterError::Credentials(err.to_string()))
    }
}

impl ClusterConnector for KubeConnector {
    fn probe<'a>(
        &'a self,
        credentials: &'a Credentials,
    ) -> BoxFuture<'a, Result<Probe, ClusterError>> {
        Box::pin(async move {
            let client = self.client(credentials).await?;
            let version = client.apiserver_version().await.map_err(from_kube)?;
            let groups = client.list_api_groups().await.map_err(from_kube)?;
            let has_group = |names: &[&str]| {
                groups
                    .groups
                    .iter()
                    .any(|g| names.contains(&g.name.as_str()))
            };
            let validating_admission_policy = has_group(&["admissionregistration.k8s.io"])
                && client
                    .list_api_group_resources("admissionregistration.k8s.io/v1")
                    .await
                    .map_err(from_kube)?
                    .resources
                    .iter()
                    .any(|r| r.name == "validatingadmissionpolicies");
            Ok(Probe {
                version: version.git_version,
                capabilities: Capabilities {
                    validating_admission_policy,
                    gatekeeper: has_group(&["templates.gatekeeper.sh"]),
                    kyverno: has_group(&["kyverno.io", "policies.kyverno.io"]),
                    policy_reports: has_group(&["wgpolicyk8s.io"]),
                },
            })
        })
    }
}

/// A kube error in an operator's words: the apiserver's own message for API errors, the innermost
/// cause for network and TLS failures.
pub fn from_kube(err: kube::Error) -> ClusterError {
    match err {
        kube::Error::Api(status) if status.code == 401 => ClusterError::Unauthorized,
        kube::Error::Api(status) => ClusterError::Api {
            code: status.code,
            message: status.message.clone(),
        },
        other => {
            let mut cause: &dyn std::error::Error = &other;
            while let Some(next) = cause.source() {
                cause = next;
            }
            ClusterError::Unreachable(cause.to_string())
        }
    }
}
