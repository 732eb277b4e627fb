//! Reaching a cluster, behind a narrow trait: the real one speaks to kube-apiservers through
//! `kube::Client`; unit tests use a fake. Only the verbs Palisade uses are here: probe,
//! server-side apply, read-back and delete.

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

/// What one apply left on the cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// The object as the cluster now holds it.
    pub object: serde_json::Value,
    /// The apiserver's warnings, in its words: for example that existing pods already violate a
    /// Pod Security level just enforced on their namespace.
    pub warnings: Vec<String>,
}

impl Applied {
    /// An apply the apiserver had nothing to say about.
    pub fn quietly(object: serde_json::Value) -> Applied {
        Applied {
            object,
            warnings: Vec::new(),
        }
    }
}

/// The text of one `Warning` response header (`299 - "text"`), unquoted; a value in another form
/// is kept whole.
pub fn warning_text(header: &str) -> String {
    let Some(rest) = header.trim().strip_prefix("299 ") else {
        return header.trim().to_owned();
    };
    let Some(quoted) = rest
        .split_once(' ')
        .map(|(_agent, text)| text.trim())
        .and_then(|text| text.strip_prefix('"'))
        .and_then(|text| text.strip_suffix('"'))
    else {
        return header.trim().to_owned();
    };
    let mut out = String::with_capacity(quoted.len());
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

/// How Palisade talks to clusters.
pub trait ClusterConnector: Send + Sync {
    /// Version and admission capabilities of the cluster these credentials reach.
    fn probe<'a>(
        &'a self,
        credentials: &'a Credentials,
    ) -> BoxFuture<'a, Result<Probe, ClusterError>>;

    /// Server-side apply of one manifest with field manager `palisade` (forcing ownership of the
    /// fields it sets); returns the object as the cluster now holds it, and what the apiserver
    /// warned of while applying it.
    fn apply<'a>(
        &'a self,
        credentials: &'a Credentials,
        manifest: &'a serde_json::Value,
    ) -> BoxFuture<'a, Result<Applied, ClusterError>>;

    /// The live object named like `manifest` (same apiVersion, kind, namespace and name), or
    /// `None` when the cluster has none: for read-back and drift checks.
    fn get<'a>(
        &'a self,
        credentials: &'a Credentials,
        manifest: &'a serde_json::Value,
    ) -> BoxFuture<'a, Result<Option<serde_json::Value>, ClusterError>>;

    /// Delete the live object named like `manifest`; `Ok(false)` when there was none.
    fn delete<'a>(
        &'a self,
        credentials: &'a Credentials,
        manifest: &'a serde_json::Value,
    ) -> BoxFuture<'a, Result<bool, ClusterError>>;

    /// One page (at most `limit`) of every object of a kind, in all namespaces, and the token of
    /// the next page. A kind the cluster does not serve is an empty list.
    fn list<'a>(
        &'a self,
        credentials: &'a Credentials,
        api_version: &'a str,
        kind: &'a str,
        continue_token: Option<&'a str>,
        limit: u32,
    ) -> BoxFuture<'a, Result<ListPage, ClusterError>> {
        let _ = (credentials, api_version, kind, continue_token, limit);
        Box::pin(async { Ok((Vec::new(), None)) })
    }

    /// Every object of a kind in all namespaces, then its changes as they happen (see
    /// [`Change`]). The stream may end; the caller starts it again. The default lists once.
    fn watch<'a>(
        &'a self,
        credentials: &'a Credentials,
        api_version: &'a str,
        kind: &'a str,
    ) -> BoxStream<'a, Result<Change, ClusterError>> {
        listed_once(self, credentials, api_version, kind)
    }
}

/// Objects of one list call and the continue token of the next, if any.
pub type ListPage = (Vec<serde_json::Value>, Option<String>);

pub type BoxStream<'a, T> = Pin<Box<dyn futures_util::Stream<Item = T> + Send + 'a>>;

/// What a watch of one kind reports, in order: `Restart`, every object `Listed` then, `Synced`
/// once the list is complete, then `Applied` and `Deleted` as the cluster changes. A `Restart` can
/// come again (the watch was cut for longer than the apiserver remembers): what the following list
/// does not name is gone.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Restart,
    Listed(serde_json::Value),
    Synced,
    Applied(serde_json::Value),
    Deleted(serde_json::Value),
}

/// One complete paginated list of a kind as a watch that ends after `Synced`: what a connector
/// without watches offers (the caller lists again on a timer).
pub fn listed_once<'a>(
    connector: &'a (impl ClusterConnector + ?Sized),
    credentials: &'a Credentials,
    api_version: &'a str,
    kind: &'a str,
) -> BoxStream<'a, Result<Change, ClusterError>> {
    use futures_util::stream::{self, StreamExt};
    // The state: `None` before the first page, `Some(token)` while pages remain, and done.
    enum Next {
        First,
        Page(String),
        Done,
    }
    let pages = stream::unfold(Next::First, move |next| async move {
        let token = match next {
            Next::First => None,
            Next::Page(token) => Some(token),
            Next::Done => return None,
        };
        match connector
            .list(credentials, api_version, kind, token.as_deref(), LIST_PAGE)
            .await
        {
            Ok((items, more)) => {
                let mut changes: Vec<Result<Change, ClusterError>> = Vec::new();
                if token.is_none() {
                    changes.push(Ok(Change::Restart));
                }
                changes.extend(items.into_iter().map(|item| Ok(Change::Listed(item))));
                let next = match more {
                    Some(token) => Next::Page(token),
                    None => {
                        changes.push(Ok(Change::Synced));
                        Next::Done
                    }
                };
                Some((stream::iter(changes), next))
            }
            Err(err) => Some((stream::iter(vec![Err(err)]), Next::Done)),
        }
    });
    Box::pin(pages.flatten())
}

/// How long one watch call stays open, and how long a watch's client waits for a byte.
const WATCH_SECS: u32 = 290;
const WATCH_READ_TIMEOUT: Duration = Duration::from_secs(WATCH_SECS as u64 + 30);

/// Objects per list call when listing a whole kind.
pub const LIST_PAGE: u32 = 250;

/// The field manager of everything Palisade applies.
pub const FIELD_MANAGER: &str = "palisade";

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

/// Clients kept at most, and how long one unused is kept.
const CACHED_CLIENTS: usize = 256;
const UNUSED_FOR: Duration = Duration::from_secs(600);

/// What identifies a client: the SHA-256 of the whole kubeconfig (API URL, CA and credential), so
/// changed credentials never reuse an old client, and no secret is kept as a key.
pub fn cache_key(credentials: &Credentials) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, credentials.kubeconfig.as_bytes());
    let mut key = [0u8; 32];
    key.copy_from_slice(digest.as_ref());
    key
}

/// Which cached clients to drop before adding one at `now`: those unused for [`UNUSED_FOR`], then
/// the least recently used while the cache would hold more than `capacity`.
fn evictions(
    last_used: &[([u8; 32], std::time::Instant)],
    now: std::time::Instant,
    capacity: usize,
) -> Vec<[u8; 32]> {
    let mut by_age: Vec<_> = last_used.to_vec();
    by_age.sort_by_key(|(_, used)| *used);
    let mut keep = by_age.len();
    let mut out = Vec::new();
    for (key, used) in by_age {
        if now.saturating_duration_since(used) >= UNUSED_FOR || keep >= capacity {
            out.push(key);
            keep -= 1;
        }
    }
    out
}

/// Each cached connection by its key, with when it was last used.
type Clients = std::collections::HashMap<[u8; 32], (Connection, std::time::Instant)>;

/// How long a kind found by discovery is trusted before it is looked up again.
const KINDS_FOR: Duration = Duration::from_secs(300);

/// What discovery found of each kind (`group/version/Kind`), and when.
type Kinds = std::collections::HashMap<
    String,
    (
        kube::core::ApiResource,
        kube::discovery::ApiCapabilities,
        std::time::Instant,
    ),
>;

/// Whether a kind found at `found` may still be used at `now`.
fn still_fresh(found: std::time::Instant, now: std::time::Instant) -> bool {
    now.saturating_duration_since(found) < KINDS_FOR
}

/// One cluster's client and the kinds discovery found through it, shared by every call with the
/// same credentials. Only kinds found are kept: one not served yet (a custom resource a
/// controller is about to install) is asked for again on the next call.
#[derive(Clone)]
pub struct Connection {
    pub client: Client,
    kinds: std::sync::Arc<std::sync::Mutex<Kinds>>,
}

impl Connection {
    fn new(client: Client) -> Connection {
        Connection {
            client,
            kinds: std::sync::Arc::default(),
        }
    }

    fn kind_key(gvk: &kube::core::GroupVersionKind) -> String {
        format!("{}/{}/{}", gvk.group, gvk.version, gvk.kind)
    }

    /// Where a kind is served and how: from this connection's memory while fresh, else from
    /// discovery.
    async fn kind(
        &self,
        gvk: &kube::core::GroupVersionKind,
    ) -> Result<(kube::core::ApiResource, kube::discovery::ApiCapabilities), kube::Error> {
        let key = Connection::kind_key(gvk);
        let now = std::time::Instant::now();
        let known = self.kinds.lock().ok().and_then(|kinds| {
            kinds
                .get(&key)
                .filter(|(_, _, found)| still_fresh(*found, now))
                .map(|(resource, capabilities, _)| (resource.clone(), capabilities.clone()))
        });
        if let Some(known) = known {
            return Ok(known);
        }
        let (resource, capabilities) = kube::discovery::pinned_kind(&self.client, gvk).await?;
        if let Ok(mut kinds) = self.kinds.lock() {
            kinds.insert(key, (resource.clone(), capabilities.clone(), now));
        }
        Ok((resource, capabilities))
    }

    /// Drops what discovery said of a kind, after the apiserver answered that it does not serve
    /// it (a custom resource definition removed since).
    fn forget(&self, gvk: &kube::core::GroupVersionKind) {
        if let Ok(mut kinds) = self.kinds.lock() {
            kinds.remove(&Connection::kind_key(gvk));
        }
    }
}

/// The cached clients, shared by clones of the connector.
#[derive(Clone, Default)]
struct ClientCache(std::sync::Arc<std::sync::Mutex<Clients>>);

impl std::fmt::Debug for ClientCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self.0.lock().map(|c| c.len()).unwrap_or(0);
        f.debug_struct("ClientCache")
            .field("clients", &count)
            .finish()
    }
}

impl ClientCache {
    fn get(&self, key: &[u8; 32]) -> Option<Connection> {
        let mut clients = self.0.lock().ok()?;
        let (connection, used) = clients.get_mut(key)?;
        *used = std::time::Instant::now();
        Some(connection.clone())
    }

    fn put(&self, key: [u8; 32], connection: Connection) {
        let Ok(mut clients) = self.0.lock() else {
            return;
        };
        let now = std::time::Instant::now();
        let ages: Vec<_> = clients.iter().map(|(k, (_, used))| (*k, *used)).collect();
        for old in evictions(&ages, now, CACHED_CLIENTS) {
            clients.remove(&old);
        }
        clients.insert(key, (connection, now));
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
            // List in pages, then watch from the list's resourceVersion with bookmarks; a watch
            // cut for too long (410 Gone) lists again. Errors come back with a backoff between
            // tries.
            let config = kube::runtime::watcher::Config::default()
                .page_size(LIST_PAGE)
                .timeout(WATCH_SECS);
            let typed = (api_version.to_owned(), kind.to_owned());
            let events =
                kube::runtime::WatchStreamExt::default_backoff(kube::runtime::watcher(api, config))
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

/// Where a manifest lives: its API (resolved by discovery, so plural names are the cluster's own),
/// namespace and name.
struct Target {
    api: kube::Api<kube::core::DynamicObject>,
    /// The collection's URL path, for requests made by hand (to read their headers).
    url: String,
    name: String,
    gvk: kube::core::GroupVersionKind,
}

async fn target(
    connection: &Connection,
    manifest: &serde_json::Value,
) -> Result<Target, ClusterError> {
    use kube::core::GroupVersionKind;
    use kube::discovery::Scope;
    let text = |pointer: &str| {
        manifest
            .pointer(pointer)
            .and_then(serde_json::Value::as_str)
    };
    let (Some(api_version), Some(kind), Some(name)) =
        (text("/apiVersion"), text("/kind"), text("/metadata/name"))
    else {
        return Err(ClusterError::Api {
            code: 422,
            message: "the manifest needs apiVersion, kind and metadata.name".to_owned(),
        });
    };
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (resource, capabilities) = connection.kind(&gvk).await.map_err(from_kube)?;
    let client = &connection.client;
    let namespace = match (capabilities.scope, text("/metadata/namespace")) {
        (Scope::Namespaced, Some(namespace)) => Some(namespace),
        (Scope::Namespaced, None) => Some(client.default_namespace()),
        (Scope::Cluster, _) => None,
    };
    let api = match namespace {
        Some(namespace) => kube::Api::namespaced_with(client.clone(), namespace, &resource),
        None => kube::Api::all_with(client.clone(), &resource),
    };
    Ok(Target {
        api,
        url: <kube::core::DynamicObject as kube::Resource>::url_path(&resource, namespace),
        name: name.to_owned(),
        gvk,
    })
}

impl KubeConnector {
    async fn apply_manifest(
        &self,
        credentials: &Credentials,
        manifest: &serde_json::Value,
    ) -> Result<Applied, ClusterError> {
        use kube::api::{Patch, PatchParams};
        let connection = self.connect(credentials).await?;
        let target = target(&connection, manifest).await?;
        let params = PatchParams::apply(FIELD_MANAGER).force();
        // Sent by hand rather than through `Api::patch`, which drops the response's headers: the
        // apiserver's warnings are in them.
        let request = kube::core::Request::new(&target.url)
            .patch(&target.name, &params, &Patch::Apply(manifest))
            .map_err(|err| ClusterError::Api {
                code: 422,
                message: err.to_string(),
            })?;
        let response = connection
            .client
            .send(request.map(kube::client::Body::from))
            .await
            .map_err(from_kube)?;
        let status = response.status();
        let warnings: Vec<String> = response
            .headers()
            .get_all(http::header::WARNING)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .map(warning_text)
            .collect();
        let body = response
            .into_body()
            .collect_bytes()
            .await
            .map_err(from_kube)?;
        if !status.is_success() {
            if status == http::StatusCode::NOT_FOUND {
                connection.forget(&target.gvk);
            }
            if status == http::StatusCode::UNAUTHORIZED {
                return Err(ClusterError::Unauthorized);
            }
            // A refusal is a metav1 Status; its message is the apiserver's own words.
            let message = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|status| status["message"].as_str().map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
            return Err(ClusterError::Api {
                code: status.as_u16(),
                message,
            });
        }
        let object = serde_json::from_slice(&body).map_err(|err| ClusterError::Api {
            code: 500,
            message: format!("the applied object could not be read: {err}"),
        })?;
        Ok(Applied { object, warnings })
    }

    async fn get_manifest(
        &self,
        credentials: &Credentials,
        manifest: &serde_json::Value,
    ) -> Result<Option<serde_json::Value>, ClusterError> {
        let connection = self.connect(credentials).await?;
        let target = target(&connection, manifest).await?;
        let live = target.api.get_opt(&target.name).await.map_err(from_kube)?;
        live.map(serde_json::to_value)
            .transpose()
            .map_err(|err| ClusterError::Api {
                code: 500,
                message: err.to_string(),
            })
    }
}

impl KubeConnector {
    async fn delete_manifest(
        &self,
        credentials: &Credentials,
        manifest: &serde_json::Value,
    ) -> Result<bool, ClusterError> {
        let connection = self.connect(credentials).await?;
        let target = target(&connection, manifest).await?;
        match target
            .api
            .delete(&target.name, &kube::api::DeleteParams::default())
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
            Err(err) => Err(from_kube(err)),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn credentials(kubeconfig: &str) -> Credentials {
        Credentials {
            kubeconfig: kubeconfig.to_owned(),
            api_url: "https://127.0.0.1:6443".into(),
        }
    }

    #[test]
    fn warnings_are_read_in_the_apiservers_words() {
        assert_eq!(
            warning_text(
                r#"299 - "existing pods in namespace \"shop\" violate the new PodSecurity enforce level \"restricted:latest\"""#
            ),
            r#"existing pods in namespace "shop" violate the new PodSecurity enforce level "restricted:latest""#
        );
        assert_eq!(warning_text("299 - \"web: privileged\""), "web: privileged");
        assert_eq!(warning_text("something else"), "something else");
    }

    #[test]
    fn changed_credentials_never_reuse_a_client() {
        let first = cache_key(&credentials("server: a\ntoken: one"));
        assert_eq!(first, cache_key(&credentials("server: a\ntoken: one")));
        assert_ne!(first, cache_key(&credentials("server: a\ntoken: two")));
        assert_ne!(first, cache_key(&credentials("server: b\ntoken: one")));
        // The key is a digest: the token is not in it.
        assert!(!first.windows(3).any(|w| w == b"one"));
    }

    #[test]
    fn kinds_found_are_trusted_for_five_minutes() {
        let found = Instant::now();
        assert!(still_fresh(found, found));
        assert!(still_fresh(
            found,
            found + KINDS_FOR - Duration::from_millis(1)
        ));
        assert!(!still_fresh(found, found + KINDS_FOR));
    }

    #[test]
    fn unused_and_least_recent_clients_are_dropped() {
        let now = Instant::now() + UNUSED_FOR * 2;
        let key = |n: u8| [n; 32];
        let recent = now - Duration::from_secs(1);
        let older = now - Duration::from_secs(2);
        let stale = now - UNUSED_FOR;
        // Under capacity: only the stale one goes.
        let ages = [(key(1), recent), (key(2), stale), (key(3), older)];
        assert_eq!(evictions(&ages, now, 10), vec![key(2)]);
        // At capacity: room is made for one more by dropping the least recently used.
        let ages = [(key(1), recent), (key(3), older)];
        assert_eq!(evictions(&ages, now, 2), vec![key(3)]);
        assert!(evictions(&[], now, 2).is_empty());
    }
}
