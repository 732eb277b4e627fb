//! The real connector: one `kube::Client` per cluster (kept in the [`cache`](super::cache)), the
//! probe, and lists and watches of whole kinds.

use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::Client;

use super::cache::{cache_key, ClientCache, Connection};
use super::{
    from_kube, Applied, BoxFuture, BoxStream, Change, ClusterConnector, ClusterError, ListPage,
    Probe, LIST_PAGE,
};
use crate::clusters::ssr::credentials::Credentials;
use crate::clusters::Capabilities;

/// How long one watch call stays open, and how long a watch's client waits for a byte.
const WATCH_SECS: u32 = 290;
const WATCH_READ_TIMEOUT: Duration = Duration::from_secs(WATCH_SECS as u64 + 30);

/// The real connector: one `kube::Client` per cluster, kept while its credentials stay the same
/// (so a step's apply and its read-back share a connection) together with the kinds discovery
/// found through it (so applying ten manifests asks the apiserver where each kind lives once, not
/// ten times), with timeouts so one slow cluster cannot hold a caller for long.
#[derive(Debug, Clone)]
pub struct KubeConnector {
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    clients: ClientCache,
}

impl Default for KubeConnector {
    fn default() -> Self {
        KubeConnector {
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(15),
            clients: ClientCache::default(),
        }
    }
}

impl KubeConnector {
    /// The connection for `credentials`: the cached one, or a new one (then cached).
    pub async fn connect(&self, credentials: &Credentials) -> Result<Connection, ClusterError> {
        let key = cache_key(credentials);
        if let Some(connection) = self.clients.get(&key) {
            return Ok(connection);
        }
        let connection = Connection::new(self.new_client(credentials).await?);
        self.clients.put(key, connection.clone());
        Ok(connection)
    }

    async fn new_client(&self, credentials: &Credentials) -> Result<Client, ClusterError> {
        self.client_reading_for(credentials, self.read_timeout)
            .await
    }

    /// A client whose reads may wait `read_timeout` for the next byte.
    async fn client_reading_for(
        &self,
        credentials: &Credentials,
        read_timeout: Duration,
    ) -> Result<Client, ClusterError> {
        let kubeconfig = Kubeconfig::from_yaml(&credentials.kubeconfig)
            .map_err(|err| ClusterError::Credentials(err.to_string()))?;
        let mut config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|err| ClusterError::Credentials(err.to_string()))?;
        config.connect_timeout = Some(self.connect_timeout);
        config.read_timeout = Some(read_timeout);
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
            let client = self.connect(credentials).await?.client;
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

    fn apply<'a>(
        &'a self,
        credentials: &'a Credentials,
        manifest: &'a serde_json::Value,
    ) -> BoxFuture<'a, Result<Applied, ClusterError>> {
        Box::pin(self.apply_manifest(credentials, manifest))
    }

    fn get<'a>(
        &'a self,
        credentials: &'a Credentials,
        manifest: &'a serde_json::Value,
    ) -> BoxFuture<'a, Result<Option<serde_json::Value>, ClusterError>> {
        Box::pin(self.get_manifest(credentials, manifest))
    }

    fn delete<'a>(
        &'a self,
        credentials: &'a Credentials,
        manifest: &'a serde_json::Value,
    ) -> BoxFuture<'a, Result<bool, ClusterError>> {
        Box::pin(self.delete_manifest(credentials, manifest))
    }

    fn list<'a>(
        &'a self,
        credentials: &'a Credentials,
        api_version: &'a str,
        kind: &'a str,
        continue_token: Option<&'a str>,
        limit: u32,
    ) -> BoxFuture<'a, Result<ListPage, ClusterError>> {
        Box::pin(self.list_kind(credentials, api_version, kind, continue_token, limit))
    }

    fn watch<'a>(
        &'a self,
        credentials: &'a Credentials,
        api_version: &'a str,
        kind: &'a str,
    ) -> BoxStream<'a, Result<Change, ClusterError>> {
        use futures_util::stream::{self, StreamExt, TryStreamExt};
        let opened = async move {
            use kube::core::GroupVersionKind;
            let connection = self.connect(credentials).await?;
            let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
            let gvk = GroupVersionKind::gvk(group, version, kind);
            let (resource, _) = connection.kind(&gvk).await.map_err(from_kube)?;
            // A watch waits quietly for minutes: its own client, whose reads may wait longer than
            // the apiserver keeps a watch open (290 s here; bookmarks come about every minute).
            let client = self
                .client_reading_for(credentials, WATCH_READ_TIMEOUT)
                .await?;
            let api: kube::Api<kube::core::DynamicObject> = kube::Api::all_with(client, &resource);
            // List in pages, then watch from the list's resourceVersion with bookmarks, renewing
            // the watch from the last one seen when it times out. After an error (the cluster
            // unreachable, 410 Gone, …) it starts over with a list, a backoff after the error:
            // a watch resumed quietly would say nothing until the kind next changes, and the
            // kind would stay marked unreadable until then; the list says it is readable again.
            let config = kube::runtime::watcher::Config::default()
                .page_size(LIST_PAGE)
                .timeout(WATCH_SECS);
            let typed = (api_version.to_owned(), kind.to_owned());
            // One watcher, ended after its first error; then a new one, which lists.
            let until_failed = move || {
                kube::runtime::watcher(api.clone(), config.clone()).scan(false, |failed, event| {
                    let end = *failed;
                    *failed = event.is_err();
                    std::future::ready((!end).then_some(event))
                })
            };
            let restarting = stream::repeat_with(until_failed).flatten();
            let events = kube::runtime::WatchStreamExt::default_backoff(restarting)
                .map_err(|err| match err {
                    kube::runtime::watcher::Error::InitialListFailed(err)
                    | kube::runtime::watcher::Error::WatchStartFailed(err)
                    | kube::runtime::watcher::Error::WatchFailed(err) => from_kube(err),
                    kube::runtime::watcher::Error::WatchError(status) => ClusterError::Api {
                        code: status.code,
                        message: status.message,
                    },
                    other => ClusterError::Unreachable(other.to_string()),
                })
                .map(move |event| {
                    let typed = typed.clone();
                    let value = move |object: kube::core::DynamicObject| {
                        let mut value =
                            serde_json::to_value(object).map_err(|err| ClusterError::Api {
                                code: 500,
                                message: err.to_string(),
                            })?;
                        value["apiVersion"] = serde_json::Value::from(typed.0.as_str());
                        value["kind"] = serde_json::Value::from(typed.1.as_str());
                        Ok::<_, ClusterError>(value)
                    };
                    use kube::runtime::watcher::Event;
                    Ok(match event? {
                        Event::Init => Change::Restart,
                        Event::InitApply(object) => Change::Listed(value(object)?),
                        Event::InitDone => Change::Synced,
                        Event::Apply(object) => Change::Applied(value(object)?),
                        Event::Delete(object) => Change::Deleted(value(object)?),
                    })
                });
            Ok::<_, ClusterError>(events)
        };
        Box::pin(
            stream::once(opened)
                .map(|opened| match opened {
                    Ok(events) => events.left_stream(),
                    Err(err) => stream::iter([Err(err)]).right_stream(),
                })
                .flatten(),
        )
    }
}

impl KubeConnector {
    async fn list_kind(
        &self,
        credentials: &Credentials,
        api_version: &str,
        kind: &str,
        continue_token: Option<&str>,
        limit: u32,
    ) -> Result<ListPage, ClusterError> {
        use kube::core::GroupVersionKind;
        let connection = self.connect(credentials).await?;
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let resource = match connection.kind(&gvk).await {
            Ok((resource, _)) => resource,
            // Not served here (no such CRD): nothing to list.
            Err(kube::Error::Discovery(_)) => return Ok((Vec::new(), None)),
            Err(kube::Error::Api(status)) if status.code == 404 => return Ok((Vec::new(), None)),
            Err(err) => return Err(from_kube(err)),
        };
        let api: kube::Api<kube::core::DynamicObject> =
            kube::Api::all_with(connection.client, &resource);
        let mut params = kube::api::ListParams::default().limit(limit);
        if let Some(token) = continue_token {
            params = params.continue_token(token);
        }
        let list = api.list(&params).await.map_err(from_kube)?;
        let next = list.metadata.continue_.filter(|t| !t.is_empty());
        let items = list
            .items
            .into_iter()
            .map(|item| {
                serde_json::to_value(item).map_err(|err| ClusterError::Api {
                    code: 500,
                    message: err.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((items, next))
    }
}
