//! A typed client of `/api/v1` for the integration tests, and the arrange steps they share
//! (register a cluster, adopt a policy, propose a rollout, approve it).
//!
//! Each call sends real HTTP to the test server as one caller, checks the status the API documents
//! for success, and decodes the body into the app's own wire types, so a test reads as the steps a
//! user takes and fails with the server's answer when one of them is refused.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{DeleteParams, PostParams};
use palisade_app::auth::Role;
use palisade_app::clusters::Cluster;
use palisade_app::policies::PolicyDetail;
use palisade_app::rollouts::Rollout;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::support::{People, Reply, TestServer};

/// The body of a reply as JSON, or a panic that shows it.
pub fn json_of(reply: &Reply) -> Value {
    serde_json::from_str(&reply.body).unwrap_or_else(|e| panic!("{e}: {}", reply.body))
}

/// The detail of the newest audit entry of `action`, read as an admin would.
pub async fn audited(server: &TestServer, admin: &str, action: &str) -> Value {
    let reply = server
        .call("GET", &format!("/api/v1/audit?action={action}"), admin, "")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let entries = json_of(&reply);
    let detail = entries["entries"][0]["detail"]
        .as_str()
        .unwrap_or_else(|| panic!("no {action} entry: {entries:#}"));
    serde_json::from_str(detail).unwrap()
}

/// `/api/v1` as one caller (an API token).
pub struct Api<'a> {
    server: &'a TestServer,
    token: &'a str,
}

impl TestServer {
    /// The typed API as the holder of `token`.
    pub fn api<'a>(&'a self, token: &'a str) -> Api<'a> {
        Api {
            server: self,
            token,
        }
    }
}

impl Api<'_> {
    /// `method path` with `body`; the reply must have status `expect`, and its body decodes as `T`.
    pub async fn send<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        expect: u16,
    ) -> T {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let reply = self.server.call(method, path, self.token, &body).await;
        assert_eq!(reply.status, expect, "{method} {path}: {}", reply.body);
        serde_json::from_str(&reply.body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}: {}", reply.body))
    }

    /// `GET path` (200), decoded as `T`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> T {
        self.send("GET", path, None, 200).await
    }

    /// Make an API token named `name` with `role`, valid for `days` days (201): `{secret, token}`.
    pub async fn new_token(&self, name: &str, role: &str, days: u32) -> Value {
        let body = json!({ "name": name, "role": role, "expires_in_days": days });
        self.send("POST", "/api/v1/tokens", Some(body), 201).await
    }

    /// Register a cluster named `name` in `environment` with these credentials (a JSON
    /// `CredentialsInput`).
    pub async fn register_cluster(
        &self,
        name: &str,
        environment: &str,
        credentials: Value,
    ) -> Cluster {
        let body = json!({ "name": name, "environment": environment, "credentials": credentials });
        self.send("POST", "/api/v1/clusters", Some(body), 201).await
    }

    /// Register a cluster from a kubeconfig.
    pub async fn register_kubeconfig(
        &self,
        name: &str,
        environment: &str,
        kubeconfig: &str,
    ) -> Cluster {
        let credentials = json!({ "kind": "kubeconfig", "kubeconfig": kubeconfig });
        self.register_cluster(name, environment, credentials).await
    }

    /// Register one of the test bed's clusters, through the kubeconfig it made for Palisade.
    pub async fn register_bed_cluster(
        &self,
        name: &str,
        environment: &str,
        cluster: &palisade_testbed::Cluster,
    ) -> Cluster {
        let kubeconfig = std::fs::read_to_string(&cluster.palisade_kubeconfig).unwrap();
        self.register_kubeconfig(name, environment, &kubeconfig)
            .await
    }

    /// Register one of the test bed's clusters as [`Api::register_bed_cluster`] does, but reached
    /// at `api_url` (a proxy in front of it) instead of its own address.
    pub async fn register_bed_cluster_at(
        &self,
        name: &str,
        environment: &str,
        cluster: &palisade_testbed::Cluster,
        api_url: &str,
    ) -> Cluster {
        let mut kubeconfig = kube::config::Kubeconfig::read_from(&cluster.palisade_kubeconfig)
            .unwrap_or_else(|e| panic!("{}: {e}", cluster.palisade_kubeconfig.display()));
        for named in &mut kubeconfig.clusters {
            if let Some(bed) = named.cluster.as_mut() {
                bed.server = Some(api_url.to_owned());
            }
        }
        // JSON is YAML too.
        let kubeconfig = serde_json::to_string(&kubeconfig).unwrap();
        self.register_kubeconfig(name, environment, &kubeconfig)
            .await
    }

    /// A new ingest token for cluster `id` (200): `{token, url, …}`.
    pub async fn ingest_token(&self, id: &str) -> Value {
        let path = format!("/api/v1/clusters/{id}/ingest-token");
        self.send("POST", &path, None, 200).await
    }

    /// Scan cluster `id` now (200): what the scan found, resolved and could not read.
    pub async fn scan(&self, id: &str) -> Value {
        let path = format!("/api/v1/clusters/{id}/scan");
        self.send("POST", &path, None, 200).await
    }

    /// Register a cluster nothing listens for (for tests that never reach it).
    pub async fn register_unreachable(&self, name: &str, environment: &str) -> Cluster {
        let credentials = json!({
            "kind": "token", "api_url": "https://127.0.0.1:9", "ca_pem": "", "token": "t",
        });
        self.register_cluster(name, environment, credentials).await
    }

    /// Adopt a library entry as a policy (201, or 200 when it was adopted already).
    pub async fn adopt(&self, entry: &str) -> PolicyDetail {
        let body = json!({ "from": "library", "entry": entry }).to_string();
        let reply = self
            .server
            .call("POST", "/api/v1/policies", self.token, &body)
            .await;
        assert!(
            reply.status == 201 || reply.status == 200,
            "adopting {entry}: {}",
            reply.body
        );
        serde_json::from_str(&reply.body).unwrap_or_else(|e| panic!("{e}: {}", reply.body))
    }

    /// Adopt a library entry not adopted before (201); the new policy's id.
    pub async fn adopt_new(&self, entry: &str) -> String {
        let body = json!({ "from": "library", "entry": entry });
        let created: PolicyDetail = self.send("POST", "/api/v1/policies", Some(body), 201).await;
        created.policy.id
    }

    /// Paste a policy's YAML (201); the created policy as JSON.
    pub async fn paste(&self, source: &str) -> Value {
        let body = json!({ "from": "yaml", "source": source });
        self.send("POST", "/api/v1/policies", Some(body), 201).await
    }

    /// Request an exception (`{policy, scope, justification, expires_ms, …}` as the API takes
    /// it); its id.
    pub async fn request_exception(&self, request: Value) -> String {
        let created: Value = self
            .send("POST", "/api/v1/exceptions", Some(request), 201)
            .await;
        created["id"].as_str().unwrap().to_owned()
    }

    /// Approve exception `id`.
    pub async fn approve_exception(&self, id: &str) -> Value {
        let path = format!("/api/v1/exceptions/{id}/decision");
        self.send("POST", &path, Some(json!({ "approve": true })), 200)
            .await
    }

    /// Ask for the removal of what rollout `id` applied (200); the id of the removal, which waits
    /// for someone else's approval.
    pub async fn remove(&self, id: &str) -> String {
        let path = format!("/api/v1/rollouts/{id}/remove");
        let removal: Value = self.send("POST", &path, None, 200).await;
        removal["summary"]["id"].as_str().unwrap().to_owned()
    }

    /// Propose a rollout (`{policy, mode, waves, …}` as the API takes it).
    pub async fn propose(&self, proposal: Value) -> Rollout {
        self.send("POST", "/api/v1/rollouts", Some(proposal), 201)
            .await
    }

    /// Approve the wave of rollout `id` that waits for approval.
    pub async fn approve(&self, id: &str) -> Rollout {
        let path = format!("/api/v1/rollouts/{id}/approve");
        self.send("POST", &path, Some(json!({})), 200).await
    }
}

// ------------------------------------------------------------ rollouts onto real engines

/// A Pod with one privileged container, named `name`.
pub fn privileged(name: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "app", "image": "registry.example/app:1",
                                 "securityContext": {"privileged": true}}]},
    }))
    .unwrap()
}

/// A server on SQLite for rollouts onto the test bed (with the secrets key, its executor polling
/// every 100 ms, and `settings` on top), with the API tokens of its admin, author and approver.
pub async fn rollout_server(settings: &[(&str, &str)]) -> (TestServer, String, String, String) {
    let mut all = vec![("PALISADE__ROLLOUTS__POLL_MS", "100")];
    all.extend_from_slice(settings);
    let server = TestServer::with_key(&all).await;
    let People {
        admin,
        author,
        approver,
    } = server.people().await;
    (server, admin, author, approver)
}

/// The first test bed cluster that `runs` says has an engine beside it; without one, fails with
/// `missing` (which says how to start it).
pub fn bed_cluster_with<'a>(
    testbed: &'a palisade_testbed::Testbed,
    runs: fn(&palisade_testbed::Cluster) -> bool,
    missing: &str,
) -> &'a palisade_testbed::Cluster {
    testbed
        .clusters
        .iter()
        .find(|c| runs(c))
        .unwrap_or_else(|| panic!("{missing}"))
}

/// A rollout server (two retries, no drift checks) for rolling a policy out onto the real engine
/// beside `cluster`, which it registers in `dev` as `{prefix}-{its name}`: the server, the API
/// tokens of its author, approver and a viewer, and the registered cluster's id.
pub async fn engine_rollout_server(
    cluster: &palisade_testbed::Cluster,
    prefix: &str,
) -> (TestServer, String, String, String, String) {
    let (server, admin, author, approver) = rollout_server(&[
        ("PALISADE__ROLLOUTS__RETRIES", "2"),
        ("PALISADE__ROLLOUTS__DRIFT_INTERVAL_SECS", "0"),
    ])
    .await;
    let viewer = server.login_token(Role::Viewer).await;
    let registered = server
        .api(&admin)
        .register_bed_cluster(&format!("{prefix}-{}", cluster.name), "dev", cluster)
        .await;
    (server, author, approver, viewer, registered.id)
}

/// Paste `source` as `author`: a policy of `engine`. Its id.
pub async fn paste_of(server: &TestServer, author: &str, source: &str, engine: &str) -> String {
    let created = server.api(author).paste(source).await;
    assert_eq!(created["policy"]["engine"], engine);
    created["policy"]["id"].as_str().unwrap().to_owned()
}

/// Rollout `id` as `token` sees it.
pub async fn rollout(server: &TestServer, id: &str, token: &str) -> Value {
    let reply = server
        .call("GET", &format!("/api/v1/rollouts/{id}"), token, "")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    json_of(&reply)
}

/// A rollout's state (`pending_approval`, `applied`, …).
pub fn state(rollout: &Value) -> &str {
    rollout["summary"]["state"].as_str().unwrap_or_default()
}

/// Poll the rollout until `done` says so, or fail after `within` with its last state.
pub async fn wait_for(
    server: &TestServer,
    token: &str,
    id: &str,
    within: Duration,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let rollout = rollout(server, id, token).await;
        if done(&rollout) {
            return rollout;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not reached within {within:?}; the rollout is {rollout:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Wait until rollout `id` (as `token` sees it) is applied, for at most `within`; it, applied.
pub async fn until_applied(server: &TestServer, token: &str, id: &str, within: Duration) -> Value {
    wait_for(server, token, id, within, "applied", |r| {
        state(r) == "applied"
    })
    .await
}

/// Approve rollout `id` and wait until it is applied.
pub async fn approve_and_wait(server: &TestServer, approver: &str, id: &str) {
    server.api(approver).approve(id).await;
    until_applied(server, approver, id, Duration::from_secs(90)).await;
}

/// Propose a rollout as `author` and approve it as `approver`; its id.
pub async fn propose_and_approve(
    server: &TestServer,
    (author, approver): (&str, &str),
    proposal: Value,
) -> String {
    let id = server.api(author).propose(proposal).await.summary.id;
    server.api(approver).approve(&id).await;
    id
}

/// Propose a rollout as `author`, approve it as `approver` and wait until it is applied; its id.
pub async fn propose_and_apply(
    server: &TestServer,
    (author, approver): (&str, &str),
    proposal: Value,
) -> String {
    let id = propose_and_approve(server, (author, approver), proposal).await;
    until_applied(server, approver, &id, Duration::from_secs(90)).await;
    id
}

/// A proposal of `policy` in `mode` to one wave of every cluster, approved once, acknowledging
/// what it would deny.
pub fn one_wave(policy: &str, mode: &str) -> Value {
    json!({
        "policy": policy, "mode": mode, "note": format!("to {mode}"),
        "acknowledge_denials": true,
        "waves": [{"name": "dev", "selector": {}, "approvals": 1}],
    })
}

/// Ask (as `approver`) for the removal of what rollout `id` applied; whoever asks for a removal
/// cannot approve it, so a second approver does. Wait until the removal is applied.
pub async fn remove_and_wait(server: &TestServer, approver: &str, id: &str) {
    let removal = server.api(approver).remove(id).await;
    let second_approver = server.login_token(Role::Approver).await;
    approve_and_wait(server, &second_approver, &removal).await;
}

/// Request an exception as `author` and have `approver` approve it; its id.
pub async fn approved_exception(
    server: &TestServer,
    (author, approver): (&str, &str),
    request: Value,
) -> String {
    let id = server.api(author).request_exception(request).await;
    server.api(approver).approve_exception(&id).await;
    id
}

/// Create namespace `name` with `labels` (`null` for none).
pub async fn create_namespace(client: &kube::Client, name: &str, labels: Value) {
    let ns: Namespace =
        serde_json::from_value(json!({ "metadata": { "name": name, "labels": labels } })).unwrap();
    kube::Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
}

/// A Deployment named `name` (with `labels`, `null` for none) whose pod template asks for a
/// privileged container.
pub fn privileged_deployment(name: &str, labels: Value) -> Deployment {
    serde_json::from_value(json!({
        "metadata": { "name": name, "labels": labels },
        "spec": {
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": { "containers": [{
                    "name": "app",
                    "image": "registry.example.com/app:1.0",
                    "securityContext": { "privileged": true },
                }] },
            },
        },
    }))
    .unwrap()
}

/// Create a privileged Pod named `name` until `done` accepts what happened (an admission webhook
/// may take a moment to see a new policy), deleting what was admitted on the way.
pub async fn until_admission(
    pods: &kube::Api<Pod>,
    name: &str,
    what: &str,
    done: impl Fn(&Result<Vec<String>, String>) -> bool,
) -> Result<Vec<String>, String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let outcome = match palisade_testbed::create_with_warnings(
            pods,
            &PostParams::default(),
            &privileged(name),
        )
        .await
        {
            Ok(created) => {
                let _ = pods.delete(name, &DeleteParams::default()).await;
                Ok(created.warnings)
            }
            Err(err) => Err(err.to_string()),
        };
        if done(&outcome) {
            return outcome;
        }
        assert!(
            Instant::now() < deadline,
            "admission did not {what} within 60 s: last {outcome:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// What a new privileged Pod meets once a policy that refuses it with `words` is live in `mode`:
/// in audit it is admitted without a word, in warn with a warning of `words`, in enforce it is
/// refused with `words`. The refusal's message, in enforce.
pub async fn admission_in(pods: &kube::Api<Pod>, mode: &str, words: &str) -> Option<String> {
    match mode {
        "audit" => {
            let _ = until_admission(
                pods,
                "audited",
                "admit silently",
                |o| matches!(o, Ok(w) if w.is_empty()),
            )
            .await;
            None
        }
        "warn" => {
            let _ = until_admission(
                pods,
                "warned",
                "warn",
                |o| matches!(o, Ok(w) if w.iter().any(|w| w.contains(words))),
            )
            .await;
            None
        }
        _ => {
            let outcome = until_admission(
                pods,
                "denied",
                "deny",
                |o| matches!(o, Err(e) if e.contains(words)),
            )
            .await;
            Some(outcome.unwrap_err())
        }
    }
}

/// Once a policy is gone, a new privileged Pod is admitted again without a word.
pub async fn admitted_again(pods: &kube::Api<Pod>) {
    let _ = until_admission(
        pods,
        "after",
        "admit again",
        |o| matches!(o, Ok(w) if w.is_empty()),
    )
    .await;
}

/// A violation read back from an engine's report is of policy `policy` (of id `policy_id`),
/// in the engine's `words`.
pub fn assert_reported_by(found: &Value, policy: &str, policy_id: &str, words: &str) {
    assert_eq!(found["policy"], policy, "{found:#}");
    assert_eq!(found["policy_id"], policy_id, "{found:#}");
    assert!(
        found["message"].as_str().unwrap().contains(words),
        "{found:#}"
    );
}

/// Scan cluster `cluster` (as `scanner`) until the violations read by `viewer` hold one from an
/// engine's report for the object `name` in `namespace`, for at most `limit`; that violation.
pub async fn until_reported(
    server: &TestServer,
    (scanner, viewer): (&str, &str),
    cluster: &str,
    namespace: &str,
    name: &str,
    limit: Duration,
) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        server.api(scanner).scan(cluster).await;
        let listed = json_of(
            &server
                .call(
                    "GET",
                    &format!("/api/v1/violations?namespace={namespace}&source=report"),
                    viewer,
                    "",
                )
                .await,
        );
        if let Some(found) = listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
        {
            return found.clone();
        }
        assert!(
            Instant::now() < deadline,
            "Palisade read no report finding for `{name}` within {limit:?}: {listed:#}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
