//! A typed client of `/api/v1` for the integration tests, and the arrange steps they share
//! (register a cluster, adopt a policy, propose a rollout, approve it).
//!
//! Each call sends real HTTP to the test server as one caller, checks the status the API documents
//! for success, and decodes the body into the app's own wire types, so a test reads as the steps a
//! user takes and fails with the server's answer when one of them is refused.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, PostParams};
use palisade_app::clusters::Cluster;
use palisade_app::policies::PolicyDetail;
use palisade_app::rollouts::Rollout;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::support::{Reply, TestServer};

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

/// Rollout `id` as `token` sees it.
pub async fn rollout(server: &TestServer, id: &str, token: &str) -> Value {
    let reply = server
        .call("GET", &format!("/api/v1/rollouts/{id}"), token, "")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    json_of(&reply)
}

/// Approve rollout `id` and wait until it is applied.
pub async fn approve_and_wait(server: &TestServer, approver: &str, id: &str) {
    let reply = server
        .call(
            "POST",
            &format!("/api/v1/rollouts/{id}/approve"),
            approver,
            "{}",
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let now = rollout(server, id, approver).await;
        if now["summary"]["state"] == "applied" {
            return;
        }
        assert!(Instant::now() < deadline, "not applied: {now:#}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
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
        let scan = server
            .call(
                "POST",
                &format!("/api/v1/clusters/{cluster}/scan"),
                scanner,
                "",
            )
            .await;
        assert_eq!(scan.status, 200, "{}", scan.body);
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
