//! Access to the multi-cluster test bed that `e2e/clusters up` starts: real
//! `kube-apiserver` + `etcd` pairs on 127.0.0.1 (see `e2e/README.md`).
//!
//! - [`Testbed::from_env`] reads the `TESTBED_*` variables that `e2e/clusters env` prints.
//! - [`Cluster::admin_client`] / [`Cluster::palisade_client`] build `kube::Client`s from the
//!   admin and least-privilege kubeconfigs.
//! - [`create_with_warnings`] creates an object and returns the apiserver's `Warning` headers.
//! - [`AuditReceiver`] is an audit-webhook endpoint that records the events the apiservers post.
//! - [`delete_namespace`] removes a namespace completely (no namespace controller runs here).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// Audit annotation that ValidatingAdmissionPolicy sets for `Audit` validation actions.
pub const VAP_VALIDATION_FAILURE_ANNOTATION: &str =
    "validation.policy.admission.k8s.io/validation_failure";

/// The hint every "not configured" error carries.
pub const HOW_TO_START: &str =
    "the cluster test bed is not running in this environment: start it with \
`e2e/clusters up` and load its settings with `eval \"$(e2e/clusters env)\"` (see e2e/README.md, \
\"Cluster test bed\")";

/// Everything that can go wrong talking to the test bed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A `TESTBED_*` variable is missing.
    #[error("{var} is not set; {HOW_TO_START}")]
    NotConfigured {
        /// The missing variable.
        var: String,
    },
    /// A `TESTBED_*` variable holds something unusable.
    #[error("{var}={value:?} is invalid: {reason}")]
    BadValue {
        /// The variable.
        var: String,
        /// Its value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A kubeconfig could not be read or used.
    #[error("kubeconfig {path}: {source}")]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// An API call failed.
    #[error(transparent)]
    Kube(#[from] kube::Error),
    /// JSON (de)serialisation failed.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// The audit receiver could not start.
    #[error("audit receiver on {addr}: {reason}")]
    Receiver {
        /// Where it tried to listen.
        addr: String,
        /// Why it failed.
        reason: String,
    },
    /// Something did not happen in time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// How long we waited.
        after: Duration,
        /// What we waited for.
        what: String,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One test-bed cluster, as described by the `TESTBED_*_<i>` variables.
#[derive(Clone, Debug)]
pub struct Cluster {
    /// 1-based index (`i` in the variable names).
    pub index: usize,
    /// `cluster-<i>`; also the last path segment of its audit URL by default.
    pub name: String,
    /// `https://127.0.0.1:<port>` (`TESTBED_API_URL_<i>`).
    pub api_url: String,
    /// PEM file of the cluster's own CA (`TESTBED_CA_FILE_<i>`).
    pub ca_file: PathBuf,
    /// Kubeconfig of a `system:masters` client certificate (`TESTBED_ADMIN_KUBECONFIG_<i>`).
    pub admin_kubeconfig: PathBuf,
    /// Kubeconfig of Palisade's least-privilege token user (`TESTBED_PALISADE_KUBECONFIG_<i>`).
    pub palisade_kubeconfig: PathBuf,
    /// Where this cluster posts its audit events (`TESTBED_AUDIT_URL_<i>`).
    pub audit_url: String,
    /// Bearer token this cluster sends with its audit events (`TESTBED_AUDIT_TOKEN_<i>`); the
    /// apiserver sends it only when the audit URL is `https`.
    pub audit_token: String,
    /// Whether a real Gatekeeper enforces beside this cluster (`e2e/clusters up --gatekeeper`,
    /// listed in `TESTBED_GATEKEEPER_CLUSTERS`): its CRDs, namespace and webhook are there.
    pub gatekeeper: bool,
    /// Whether a real Kyverno (admission and reports controllers) enforces beside this cluster
    /// (`e2e/clusters up --kyverno`, listed in `TESTBED_KYVERNO_CLUSTERS`).
    pub kyverno: bool,
}

impl Cluster {
    /// The path part of [`Cluster::audit_url`], as an audit receiver sees it.
    pub fn audit_path(&self) -> String {
        url_path(&self.audit_url)
    }

    /// A client with cluster-admin rights.
    pub async fn admin_client(&self) -> Result<Client> {
        client_from_kubeconfig(&self.admin_kubeconfig).await
    }

    /// A client with Palisade's least-privilege credentials.
    pub async fn palisade_client(&self) -> Result<Client> {
        client_from_kubeconfig(&self.palisade_kubeconfig).await
    }
}

/// The whole test bed.
#[derive(Clone, Debug)]
pub struct Testbed {
    /// The clusters, index 1 first.
    pub clusters: Vec<Cluster>,
    /// Base audit-webhook URL (`TESTBED_AUDIT_WEBHOOK_URL`).
    pub audit_webhook_url: String,
    /// Its port, when it names one (`TESTBED_AUDIT_WEBHOOK_PORT`).
    pub audit_webhook_port: Option<u16>,
    /// The kube-apiserver release, e.g. `v1.37.2` (`TESTBED_K8S_VERSION`).
    pub k8s_version: String,
}

impl Testbed {
    /// Reads the test bed from the process environment; fails with a message saying how to
    /// start it when the variables are missing.
    pub fn from_env() -> Result<Self> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Reads the test bed from any variable source (for tests of this crate).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let var = |name: &str| -> Result<String> {
            get(name)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| Error::NotConfigured {
                    var: name.to_owned(),
                })
        };
        let count_raw = var("TESTBED_CLUSTERS")?;
        let count: usize =
            count_raw
                .parse()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| Error::BadValue {
                    var: "TESTBED_CLUSTERS".into(),
                    value: count_raw.clone(),
                    reason: "expected a number >= 1".into(),
                })?;
        let port = match get("TESTBED_AUDIT_WEBHOOK_PORT").filter(|v| !v.is_empty()) {
            None => None,
            Some(p) => Some(p.parse().map_err(|_| Error::BadValue {
                var: "TESTBED_AUDIT_WEBHOOK_PORT".into(),
                value: p.clone(),
                reason: "expected a TCP port".into(),
            })?),
        };
        let cluster_list = |var: &str| -> Result<Vec<usize>> {
            let raw = get(var).unwrap_or_default();
            raw.split(',')
                .filter(|s| !s.is_empty())
                .map(|s| s.parse().ok().filter(|i| (1..=count).contains(i)))
                .collect::<Option<_>>()
                .ok_or_else(|| Error::BadValue {
                    var: var.into(),
                    value: raw.clone(),
                    reason: format!("expected cluster numbers 1..={count} separated by commas"),
                })
        };
        let gatekeeper = cluster_list("TESTBED_GATEKEEPER_CLUSTERS")?;
        let kyverno = cluster_list("TESTBED_KYVERNO_CLUSTERS")?;
        let mut clusters = Vec::with_capacity(count);
        for i in 1..=count {
            let path = |prefix: &str| -> Result<PathBuf> {
                let name = format!("{prefix}_{i}");
                let p = PathBuf::from(var(&name)?);
                if !p.is_absolute() {
                    return Err(Error::BadValue {
                        var: name,
                        value: p.display().to_string(),
                        reason: "expected an absolute path".into(),
                    });
                }
                Ok(p)
            };
            clusters.push(Cluster {
                index: i,
                name: format!("cluster-{i}"),
                api_url: var(&format!("TESTBED_API_URL_{i}"))?,
                ca_file: path("TESTBED_CA_FILE")?,
                admin_kubeconfig: path("TESTBED_ADMIN_KUBECONFIG")?,
                palisade_kubeconfig: path("TESTBED_PALISADE_KUBECONFIG")?,
                audit_url: var(&format!("TESTBED_AUDIT_URL_{i}"))?,
                audit_token: var(&format!("TESTBED_AUDIT_TOKEN_{i}"))?,
                gatekeeper: gatekeeper.contains(&i),
                kyverno: kyverno.contains(&i),
            });
        }
        Ok(Self {
            clusters,
            audit_webhook_url: var("TESTBED_AUDIT_WEBHOOK_URL")?,
            audit_webhook_port: port,
            k8s_version: var("TESTBED_K8S_VERSION")?,
        })
    }
}

/// Builds a client from a kubeconfig file (its current context).
pub async fn client_from_kubeconfig(path: &Path) -> Result<Client> {
    let err = |source| Error::Kubeconfig {
        path: path.to_owned(),
        source,
    };
    let kubeconfig = Kubeconfig::read_from(path).map_err(err)?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(err)?;
    Ok(Client::try_from(config)?)
}

/// `prefix-<10 random hex digits>`: a DNS-1123 name that concurrent tests, and repeated runs
/// against the same clusters, do not share.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    h.write_u128(nanos);
    format!("{prefix}-{:010x}", h.finish() & 0xff_ffff_ffff)
}

/// An object the apiserver accepted, with the warnings it sent back.
#[derive(Clone, Debug)]
pub struct Created<K> {
    /// The stored object.
    pub object: K,
    /// The text of each `Warning` response header (RFC 7234 form `299 - "text"` unwrapped).
    pub warnings: Vec<String>,
}

/// Creates `obj` through `api` and returns the apiserver's warnings too (kube's typed API
/// drops response headers). A rejection comes back as [`kube::Error::Api`], as with `Api::create`.
pub async fn create_with_warnings<K>(api: &Api<K>, pp: &PostParams, obj: &K) -> Result<Created<K>>
where
    K: kube::Resource + Serialize + DeserializeOwned + Clone,
{
    let client = api.clone().into_client();
    let request = kube::core::Request::new(api.resource_url())
        .create(pp, serde_json::to_vec(obj)?)
        .map_err(kube::Error::BuildRequest)?;
    let Reply {
        status,
        warnings,
        body,
    } = send_with_warnings(&client, request).await?;
    if status.is_client_error() || status.is_server_error() {
        let mut st: kube::core::Status = serde_json::from_slice(&body).unwrap_or_else(|_| {
            kube::core::Status::failure(&String::from_utf8_lossy(&body), "unparsable error body")
        });
        if st.code == 0 {
            st.code = status.as_u16();
        }
        return Err(kube::Error::Api(st.boxed()).into());
    }
    Ok(Created {
        object: serde_json::from_slice(&body)?,
        warnings,
    })
}

/// The apiserver's raw answer to a request: status, `Warning` headers (as text) and body.
pub struct Reply {
    pub status: http::StatusCode,
    pub warnings: Vec<String>,
    pub body: Vec<u8>,
}

impl Reply {
    /// The message of the `Status` the apiserver returned, or the body as text.
    pub fn message(&self) -> String {
        serde_json::from_slice::<Value>(&self.body)
            .ok()
            .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&self.body).into_owned())
    }
}

/// Sends `request` and keeps what kube's typed API drops: the `Warning` headers, and the status
/// without turning a rejection into an error.
pub async fn send_with_warnings(client: &Client, request: http::Request<Vec<u8>>) -> Result<Reply> {
    let response = client.send(request.map(kube::client::Body::from)).await?;
    let status = response.status();
    let warnings = response
        .headers()
        .get_all(http::header::WARNING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(warning_text)
        .collect();
    let body = response.into_body().collect_bytes().await?.to_vec();
    Ok(Reply {
        status,
        warnings,
        body,
    })
}

/// Unwraps a `Warning` header value: `299 - "text"` becomes `text`.
pub fn warning_text(header: &str) -> String {
    let rest = header
        .strip_prefix("299")
        .map(str::trim_start)
        .and_then(|r| r.strip_prefix('-'))
        .map(str::trim)
        .unwrap_or(header);
    match rest.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        Some(inner) => inner.replace("\\\"", "\"").replace("\\\\", "\\"),
        None => rest.to_owned(),
    }
}

/// The HTTP status code of an API error, if `err` is one.
pub fn api_status_code(err: &Error) -> Option<u16> {
    match err {
        Error::Kube(kube::Error::Api(st)) => Some(st.code),
        _ => None,
    }
}

/// Deletes a namespace and finalizes it at once. The test bed runs no namespace controller,
/// so a deleted namespace would otherwise stay `Terminating` forever; delete what you created
/// inside it first. A namespace that does not exist is not an error.
pub async fn delete_namespace(client: &Client, name: &str) -> Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(st)) if st.code == 404 => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    let mut ns = match api.get(name).await {
        Ok(ns) => ns,
        Err(kube::Error::Api(st)) if st.code == 404 => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if let Some(spec) = ns.spec.as_mut() {
        spec.finalizers = None;
    }
    match api
        .replace_subresource("finalize", name, &PostParams::default(), &ns)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(st)) if st.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The path of an `http(s)://host[:port]/path` URL (`/` when it has none).
pub fn url_path(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    match rest.find('/') {
        Some(i) => rest[i..].split(['?', '#']).next().unwrap_or("/").to_owned(),
        None => "/".to_owned(),
    }
}

// ------------------------------------------------------------------ audit receiver

/// One audit event as an apiserver posted it.
#[derive(Clone, Debug)]
pub struct ReceivedAudit {
    /// The request path it was posted to (`/audit/cluster-<i>` by default).
    pub path: String,
    /// The `Authorization` header of the post (`Bearer <TESTBED_AUDIT_TOKEN_i>` over https,
    /// none over plain http).
    pub authorization: Option<String>,
    /// The `audit.k8s.io/v1` Event.
    pub event: Value,
}

impl ReceivedAudit {
    /// An annotation of the event.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.event.get("annotations")?.get(key)?.as_str()
    }

    /// A field of `objectRef` (`namespace`, `name`, `resource`, `apiGroup`, …).
    pub fn object_ref(&self, field: &str) -> Option<&str> {
        self.event.get("objectRef")?.get(field)?.as_str()
    }

    /// A top-level string field (`verb`, `stage`, `auditID`, …).
    pub fn field(&self, field: &str) -> Option<&str> {
        self.event.get(field)?.as_str()
    }
}

#[derive(Default)]
struct Inbox {
    events: Mutex<Vec<ReceivedAudit>>,
    notify: tokio::sync::Notify,
    forwards: Mutex<Vec<Forward>>,
    next_forward: AtomicU64,
}

/// Where the batches of one test-bed cluster are relayed to, with which token.
#[derive(Clone)]
struct Forward {
    id: u64,
    path: String,
    to: SocketAddr,
    to_path: String,
    authorization: String,
    statuses: Arc<Mutex<Vec<u16>>>,
}

/// Relays a cluster's audit batches while it lives (see [`AuditReceiver::forward`]).
pub struct Forwarding {
    id: u64,
    inbox: Arc<Inbox>,
    statuses: Arc<Mutex<Vec<u16>>>,
}

impl std::fmt::Debug for Forwarding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarding").field("id", &self.id).finish()
    }
}

impl Forwarding {
    /// The status of every relayed batch, in order.
    pub fn statuses(&self) -> Vec<u16> {
        self.statuses.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for Forwarding {
    fn drop(&mut self) {
        if let Ok(mut forwards) = self.inbox.forwards.lock() {
            forwards.retain(|f| f.id != self.id);
        }
    }
}

/// POSTs `body` over plain HTTP/1.1 and returns the status (0 when the target did not answer).
async fn relay(forward: &Forward, body: &[u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(forward.to).await.ok()?;
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            forward.to_path,
            forward.to,
            forward.authorization,
            body.len()
        );
        stream.write_all(head.as_bytes()).await.ok()?;
        stream.write_all(body).await.ok()?;
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).await.ok()?;
        let line = String::from_utf8_lossy(&reply[..reply.len().min(64)]).into_owned();
        line.split_whitespace().nth(1)?.parse::<u16>().ok()
    };
    tokio::time::timeout(Duration::from_secs(20), attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(0)
}

impl Inbox {
    fn push(
        &self,
        path: &str,
        authorization: Option<String>,
        body: &[u8],
    ) -> Result<usize, String> {
        let doc: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        let items = match doc.get("items").and_then(Value::as_array) {
            Some(items) => items.clone(),
            None if doc.get("kind").and_then(Value::as_str) == Some("Event") => vec![doc],
            None => return Err("expected an audit.k8s.io EventList or Event".into()),
        };
        let n = items.len();
        let mut events = self
            .events
            .lock()
            .map_err(|_| "inbox lock poisoned".to_owned())?;
        events.extend(items.into_iter().map(|event| ReceivedAudit {
            path: path.to_owned(),
            authorization: authorization.clone(),
            event,
        }));
        drop(events);
        self.notify.notify_waiters();
        Ok(n)
    }
}

/// An audit-webhook endpoint: accepts `POST <any path>` with an `audit.k8s.io/v1` EventList
/// (what kube-apiserver's webhook backend sends) and keeps every event in memory.
#[derive(Clone)]
pub struct AuditReceiver {
    addr: SocketAddr,
    inbox: Arc<Inbox>,
}

impl std::fmt::Debug for AuditReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditReceiver")
            .field("addr", &self.addr)
            .finish()
    }
}

impl AuditReceiver {
    /// Listens on `addr` from the current tokio runtime; it lives as long as the runtime.
    pub async fn start(addr: SocketAddr) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Error::Receiver {
                addr: addr.to_string(),
                reason: e.to_string(),
            })?;
        let addr = listener.local_addr().map_err(|e| Error::Receiver {
            addr: addr.to_string(),
            reason: e.to_string(),
        })?;
        let inbox = Arc::new(Inbox::default());
        let app = router(inbox.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!("audit receiver on {addr} stopped: {e}");
            }
        });
        Ok(Self { addr, inbox })
    }

    /// One receiver per process on the test bed's `TESTBED_AUDIT_WEBHOOK_PORT`, served from its
    /// own thread so that it outlives any single `#[tokio::test]` runtime. Every test in the
    /// process shares it; filter events by namespace or name.
    pub fn shared(testbed: &Testbed) -> Result<&'static AuditReceiver> {
        static SHARED: OnceLock<Result<AuditReceiver, String>> = OnceLock::new();
        let port = testbed.audit_webhook_port.ok_or_else(|| Error::BadValue {
            var: "TESTBED_AUDIT_WEBHOOK_PORT".into(),
            value: String::new(),
            reason: format!(
                "not set, so TESTBED_AUDIT_WEBHOOK_URL={} is not served by this process",
                testbed.audit_webhook_url
            ),
        })?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        SHARED
            .get_or_init(|| Self::spawn_thread(addr))
            .as_ref()
            .map_err(|reason| Error::Receiver {
                addr: addr.to_string(),
                reason: reason.clone(),
            })
    }

    fn spawn_thread(addr: SocketAddr) -> Result<AuditReceiver, String> {
        let std_listener = StdTcpListener::bind(addr).map_err(|e| e.to_string())?;
        std_listener
            .set_nonblocking(true)
            .map_err(|e| e.to_string())?;
        let inbox = Arc::new(Inbox::default());
        let app = router(inbox.clone());
        std::thread::Builder::new()
            .name("audit-receiver".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!("audit receiver runtime: {e}");
                        return;
                    }
                };
                rt.block_on(async move {
                    match tokio::net::TcpListener::from_std(std_listener) {
                        Ok(listener) => {
                            if let Err(e) = axum::serve(listener, app).await {
                                tracing::error!("audit receiver on {addr} stopped: {e}");
                            }
                        }
                        Err(e) => tracing::error!("audit receiver on {addr}: {e}"),
                    }
                });
            })
            .map_err(|e| e.to_string())?;
        Ok(AuditReceiver { addr, inbox })
    }

    /// From now until the returned handle is dropped, every batch posted to `path` (e.g.
    /// `/audit/cluster-1`) is also POSTed to `http://{to}{to_path}` with `authorization`, and the
    /// apiserver is answered 429 or 5xx when the target answers so (so it sends the batch again,
    /// as it would to the target directly). A target that cannot be reached is not waited for.
    pub fn forward(
        &self,
        path: &str,
        to: SocketAddr,
        to_path: &str,
        authorization: &str,
    ) -> Forwarding {
        let id = self.inbox.next_forward.fetch_add(1, Ordering::Relaxed);
        let statuses = Arc::new(Mutex::new(Vec::new()));
        if let Ok(mut forwards) = self.inbox.forwards.lock() {
            forwards.push(Forward {
                id,
                path: path.to_owned(),
                to,
                to_path: to_path.to_owned(),
                authorization: authorization.to_owned(),
                statuses: statuses.clone(),
            });
        }
        Forwarding {
            id,
            inbox: self.inbox.clone(),
            statuses,
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every event received so far.
    pub fn events(&self) -> Vec<ReceivedAudit> {
        self.inbox
            .events
            .lock()
            .map(|e| e.clone())
            .unwrap_or_default()
    }

    /// Waits until an event matching `pred` has arrived (including ones that arrived earlier).
    pub async fn wait_for(
        &self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&ReceivedAudit) -> bool,
    ) -> Result<ReceivedAudit> {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.inbox.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(hit) = self
                .inbox
                .events
                .lock()
                .ok()
                .and_then(|events| events.iter().find(|e| pred(e)).cloned())
            {
                return Ok(hit);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Timeout {
                    after: timeout,
                    what: what.to_owned(),
                });
            }
            // Wake on new events, and re-check now and then in any case.
            let _ = tokio::time::timeout(left.min(Duration::from_millis(500)), notified).await;
        }
    }
}

fn router(inbox: Arc<Inbox>) -> axum::Router {
    axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
        let inbox = inbox.clone();
        async move {
            let authorization = headers
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            if let Err(e) = inbox.push(uri.path(), authorization, &body) {
                return (StatusCode::BAD_REQUEST, e);
            }
            let forwards: Vec<Forward> = inbox
                .forwards
                .lock()
                .map(|f| f.iter().filter(|f| f.path == uri.path()).cloned().collect())
                .unwrap_or_default();
            let mut answer = StatusCode::OK;
            for forward in forwards {
                let status = relay(&forward, &body).await;
                if let Ok(mut statuses) = forward.statuses.lock() {
                    statuses.push(status);
                }
                if status == 429 || status >= 500 {
                    answer = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
                }
            }
            (answer, String::new())
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn warning_header_is_unwrapped() {
        assert_eq!(
            warning_text(r#"299 - "no \"latest\" tags""#),
            r#"no "latest" tags"#
        );
        assert_eq!(warning_text("plain"), "plain");
    }

    #[test]
    fn url_path_is_extracted() {
        assert_eq!(
            url_path("http://127.0.0.1:9/audit/cluster-2"),
            "/audit/cluster-2"
        );
        assert_eq!(url_path("http://127.0.0.1:9"), "/");
        assert_eq!(url_path("https://h/a?b=c"), "/a");
    }

    #[test]
    fn unique_names_differ_and_are_dns_labels() {
        let a = unique_name("t");
        let b = unique_name("t");
        assert_ne!(a, b);
        assert!(
            a.len() <= 63
                && a.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
    }

    #[test]
    fn missing_env_names_the_variable_and_the_fix() {
        let err = Testbed::from_vars(|_| None).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("TESTBED_CLUSTERS"), "{msg}");
        assert!(msg.contains("e2e/clusters up"), "{msg}");
    }

    #[test]
    fn env_is_parsed() {
        let mut vars = HashMap::new();
        for (k, v) in [
            ("TESTBED_CLUSTERS", "1"),
            ("TESTBED_AUDIT_WEBHOOK_URL", "http://127.0.0.1:7/audit"),
            ("TESTBED_AUDIT_WEBHOOK_PORT", "7"),
            ("TESTBED_K8S_VERSION", "v1.37.2"),
            ("TESTBED_API_URL_1", "https://127.0.0.1:8"),
            ("TESTBED_CA_FILE_1", "/s/ca.crt"),
            ("TESTBED_ADMIN_KUBECONFIG_1", "/s/admin"),
            ("TESTBED_PALISADE_KUBECONFIG_1", "/s/palisade"),
            ("TESTBED_AUDIT_URL_1", "http://127.0.0.1:7/audit/cluster-1"),
            ("TESTBED_AUDIT_TOKEN_1", "tok"),
        ] {
            vars.insert(k.to_owned(), v.to_owned());
        }
        let tb = Testbed::from_vars(|k| vars.get(k).cloned()).unwrap();
        assert_eq!(tb.clusters.len(), 1);
        assert_eq!(tb.audit_webhook_port, Some(7));
        assert_eq!(tb.clusters[0].audit_path(), "/audit/cluster-1");
        assert!(!tb.clusters[0].gatekeeper);

        vars.insert("TESTBED_GATEKEEPER_CLUSTERS".into(), "1".into());
        let tb = Testbed::from_vars(|k| vars.get(k).cloned()).unwrap();
        assert!(tb.clusters[0].gatekeeper);
        vars.insert("TESTBED_GATEKEEPER_CLUSTERS".into(), "2".into());
        let err = Testbed::from_vars(|k| vars.get(k).cloned()).unwrap_err();
        assert!(
            err.to_string().contains("TESTBED_GATEKEEPER_CLUSTERS"),
            "{err}"
        );
        vars.remove("TESTBED_GATEKEEPER_CLUSTERS");
        assert!(!tb.clusters[0].kyverno);
        vars.insert("TESTBED_KYVERNO_CLUSTERS".into(), "1".into());
        let tb = Testbed::from_vars(|k| vars.get(k).cloned()).unwrap();
        assert!(tb.clusters[0].kyverno && !tb.clusters[0].gatekeeper);
        vars.insert("TESTBED_KYVERNO_CLUSTERS".into(), "1,x".into());
        let err = Testbed::from_vars(|k| vars.get(k).cloned()).unwrap_err();
        assert!(
            err.to_string().contains("TESTBED_KYVERNO_CLUSTERS"),
            "{err}"
        );
        vars.remove("TESTBED_KYVERNO_CLUSTERS");

        vars.insert("TESTBED_ADMIN_KUBECONFIG_1".into(), "relative".into());
        let err = Testbed::from_vars(|k| vars.get(k).cloned()).unwrap_err();
        assert!(err.to_string().contains("absolute"), "{err}");
    }

    #[tokio::test]
    async fn receiver_records_posted_event_lists() {
        let rx = AuditReceiver::start(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let addr = rx.addr();
        // A bare HTTP/1.1 client on a blocking thread, as the apiserver's webhook would post.
        let post = |body: &'static str| async move {
            tokio::task::spawn_blocking(move || {
                use std::io::{Read, Write};
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                let req = format!(
                    "POST /audit/cluster-9 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\n\
                     Content-Type: application/json\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n{body}",
                    body.len()
                );
                s.write_all(req.as_bytes()).unwrap();
                let mut out = String::new();
                s.read_to_string(&mut out).unwrap();
                out
            })
            .await
            .unwrap()
        };
        let ok =
            post(r#"{"kind":"EventList","items":[{"verb":"create","annotations":{"k":"v"}}]}"#)
                .await;
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        let got = rx
            .wait_for(Duration::from_secs(5), "the event", |e| {
                e.annotation("k") == Some("v")
            })
            .await
            .unwrap();
        assert_eq!(got.path, "/audit/cluster-9");
        assert_eq!(got.authorization.as_deref(), Some("Bearer tok"));
        assert_eq!(got.field("verb"), Some("create"));
        let bad = post("{}").await;
        assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
        assert_eq!(rx.events().len(), 1);
    }
}
