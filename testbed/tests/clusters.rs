//! Proofs that the test bed's kube-apiservers really run admission and RBAC:
//! Pod Security Admission, ValidatingAdmissionPolicy in Deny / Warn / Audit (with the audit
//! event reaching a webhook receiver), and Palisade's least-privilege credentials.
//!
//! Needs running clusters: `e2e/clusters up && eval "$(e2e/clusters env)"`. Without them every
//! test fails and says so. Every proof runs on every cluster, concurrently; names are unique
//! per run and everything created is deleted again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, ResourceExt};
use palisade_testbed::{
    create_with_warnings, delete_namespace, unique_name, AuditReceiver, Cluster, Created,
    VAP_VALIDATION_FAILURE_ANNOTATION,
};
use serde_json::{json, Value};

const LATEST_MESSAGE: &str = "images must not use the :latest tag";

fn from_json<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("test object matches its type")
}

fn api_error(e: &kube::Error) -> Option<&kube::core::Status> {
    match e {
        kube::Error::Api(st) => Some(st),
        _ => None,
    }
}

fn pod(name: &str, security_context: Value, pod_security_context: Value) -> Pod {
    from_json(json!({
        "metadata": { "name": name },
        "spec": {
            "securityContext": pod_security_context,
            "containers": [{
                "name": "app",
                "image": "registry.example/app:1.0",
                "securityContext": security_context
            }]
        }
    }))
}

fn deployment(name: &str, image: &str) -> Deployment {
    from_json(json!({
        "metadata": { "name": name },
        "spec": {
            "replicas": 1,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": { "containers": [{ "name": "app", "image": image }] }
            }
        }
    }))
}

async fn delete_quietly<K>(api: &Api<K>, name: &str)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let _ = api.delete(name, &DeleteParams::default()).await;
}

/// Creates `object(1)`, `object(2)`, … until the apiserver refuses one, and returns the refusal.
/// An admitted object means the admission control was not effective yet: it is deleted and the
/// next one tried, for at most [`PROPAGATION`]; then the error is `admitted`. A failure other than
/// the apiserver's answer is "creating `what` failed".
async fn first_refusal<K>(
    api: &Api<K>,
    object: impl Fn(u32) -> K,
    what: &str,
    admitted: &str,
) -> Result<kube::core::Status>
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let deadline = Instant::now() + PROPAGATION;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let candidate = object(attempt);
        match api.create(&PostParams::default(), &candidate).await {
            Ok(_) => {
                delete_quietly(api, &candidate.name_any()).await;
                ensure!(Instant::now() < deadline, "{admitted}");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => {
                return api_error(&e)
                    .cloned()
                    .ok_or_else(|| anyhow!("creating {what} failed: {e}"));
            }
        }
    }
}

// ------------------------------------------------------------------ 1. Pod Security Admission

#[tokio::test]
async fn pod_security_restricted_rejects_privileged_pod() {
    let tb = testbed();
    on_every_cluster(&tb, |cluster| async move {
        let client = cluster.admin_client().await?;
        let ns = unique_name("psa");
        create_namespace(
            &client,
            &ns,
            json!({
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest"
            }),
        )
        .await?;
        let result = psa_checks(&client, &ns).await;
        let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
        for name in ["privileged", "restricted"] {
            delete_quietly(&pods, name).await;
        }
        delete_namespace(&client, &ns).await?;
        result
    })
    .await;
}

async fn psa_checks(client: &Client, ns: &str) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let privileged = pod("privileged", json!({ "privileged": true }), json!({}));
    // Admitted only if the apiserver had not seen the namespace labels yet.
    let status = first_refusal(
        &pods,
        |_| privileged.clone(),
        "the privileged pod",
        "a privileged pod was admitted into a restricted namespace",
    )
    .await?;
    ensure!(
        status.code == 403 && status.reason == "Forbidden",
        "expected 403 Forbidden, got {status:?}"
    );
    for needle in [
        r#"pods "privileged" is forbidden: violates PodSecurity "restricted:latest""#,
        r#"privileged (container "app" must not set securityContext.privileged=true)"#,
    ] {
        ensure!(
            status.message.contains(needle),
            "apiserver message {:?} lacks {needle:?}",
            status.message
        );
    }

    // Control: a pod that meets the restricted profile is admitted in the same namespace,
    // so the rejection above came from Pod Security and nothing else.
    let restricted = pod(
        "restricted",
        json!({
            "allowPrivilegeEscalation": false,
            "capabilities": { "drop": ["ALL"] }
        }),
        json!({
            "runAsNonRoot": true,
            "runAsUser": 1000,
            "seccompProfile": { "type": "RuntimeDefault" }
        }),
    );
    pods.create(&PostParams::default(), &restricted)
        .await
        .context("a pod meeting the restricted profile was rejected")?;
    Ok(())
}

// ------------------------------------------------------------------ 2. ValidatingAdmissionPolicy

/// A namespace, and a policy + binding that apply only to it, forbidding `:latest` images.
#[derive(Clone)]
struct VapFixture {
    client: Client,
    ns: String,
    /// The Deployments made in it, deleted by [`VapFixture::cleanup`] (shared by the fixture's
    /// clones: the test's and the one that cleans up).
    created: Arc<Mutex<Vec<String>>>,
}

impl VapFixture {
    async fn new(cluster: &Cluster, action: &str) -> Result<Self> {
        let client = cluster.admin_client().await?;
        let ns = unique_name(&format!("vap-{}", action.to_lowercase()));
        create_namespace(&client, &ns, json!({ TEST_LABEL: ns })).await?;
        let fixture = Self {
            client: client.clone(),
            ns: ns.clone(),
            created: Arc::default(),
        };
        let policy: ValidatingAdmissionPolicy = from_json(json!({
            "metadata": { "name": ns },
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [{
                        "apiGroups": ["apps"],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["deployments"]
                    }]
                },
                "validations": [{
                    "expression":
                        "object.spec.template.spec.containers.all(c, !c.image.endsWith(':latest'))",
                    "message": LATEST_MESSAGE
                }]
            }
        }));
        let binding: ValidatingAdmissionPolicyBinding = from_json(json!({
            "metadata": { "name": ns },
            "spec": {
                "policyName": ns,
                "validationActions": [action],
                "matchResources": {
                    "namespaceSelector": { "matchLabels": { TEST_LABEL: ns } }
                }
            }
        }));
        let setup = async {
            Api::<ValidatingAdmissionPolicy>::all(client.clone())
                .create(&PostParams::default(), &policy)
                .await
                .context("creating the ValidatingAdmissionPolicy")?;
            Api::<ValidatingAdmissionPolicyBinding>::all(client.clone())
                .create(&PostParams::default(), &binding)
                .await
                .context("creating the ValidatingAdmissionPolicyBinding")?;
            anyhow::Ok(())
        };
        if let Err(e) = setup.await {
            fixture.cleanup().await;
            return Err(e);
        }
        Ok(fixture)
    }

    fn deployments(&self) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// Create the `:latest` Deployment `web-{attempt}`, which a `binding` (`[Warn]`, `[Audit]`)
    /// must admit: the stored object and the warnings it drew.
    async fn create_latest(&self, attempt: u32, binding: &str) -> Result<Created<Deployment>> {
        let name = format!("web-{attempt}");
        let created = create_with_warnings(
            &self.deployments(),
            &PostParams::default(),
            &deployment(&name, "registry.example/web:latest"),
        )
        .await
        .with_context(|| format!("{binding} binding must admit {name}"))?;
        self.created.lock().unwrap().push(name);
        Ok(created)
    }

    /// Create the control Deployment `web-pinned`, whose pinned tag every binding admits: the
    /// stored object and the warnings it drew.
    async fn create_pinned(&self) -> Result<Created<Deployment>> {
        let created = create_with_warnings(
            &self.deployments(),
            &PostParams::default(),
            &deployment("web-pinned", "registry.example/web:1.27"),
        )
        .await
        .context("a Deployment with a pinned tag was rejected")?;
        self.created.lock().unwrap().push("web-pinned".into());
        Ok(created)
    }

    /// Expected message prefix of the binding (policy and binding share the namespace's name).
    fn names(&self) -> String {
        format!(
            "ValidatingAdmissionPolicy '{0}' with binding '{0}'",
            self.ns
        )
    }

    async fn cleanup(&self) {
        let deployments = self.deployments();
        let created = std::mem::take(&mut *self.created.lock().unwrap());
        for name in &created {
            delete_quietly(&deployments, name).await;
        }
        delete_quietly(
            &Api::<ValidatingAdmissionPolicyBinding>::all(self.client.clone()),
            &self.ns,
        )
        .await;
        delete_quietly(
            &Api::<ValidatingAdmissionPolicy>::all(self.client.clone()),
            &self.ns,
        )
        .await;
        if let Err(e) = delete_namespace(&self.client, &self.ns).await {
            eprintln!("cleanup of namespace {}: {e}", self.ns);
        }
    }
}

/// Runs `body` against a fresh fixture on every cluster, cleaning up whatever happens.
async fn vap_test<F, Fut>(action: &'static str, body: F)
where
    F: Fn(Cluster, VapFixture) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    let tb = testbed();
    on_every_cluster(&tb, move |cluster| {
        let body = body.clone();
        async move {
            let fixture = VapFixture::new(&cluster, action).await?;
            let result = body(cluster, fixture.clone()).await;
            fixture.cleanup().await;
            result
        }
    })
    .await;
}

#[tokio::test]
async fn vap_deny_rejects_latest_image() {
    vap_test("Deny", |_cluster, fx| vap_deny(fx)).await;
}

async fn vap_deny(fx: VapFixture) -> Result<()> {
    let api = fx.deployments();
    // Admitted only while the policy is not effective yet.
    let status = first_refusal(
        &api,
        |attempt| deployment(&format!("web-{attempt}"), "registry.example/web:latest"),
        "the Deployment",
        &format!("a :latest Deployment was still admitted {PROPAGATION:?} after a [Deny] binding"),
    )
    .await?;
    ensure!(
        status.code == 422 && status.reason == "Invalid",
        "expected 422 Invalid (the VAP default reason), got {status:?}"
    );
    let expected = format!("{} denied request: {LATEST_MESSAGE}", fx.names());
    ensure!(
        status.message.contains(&expected),
        "apiserver message {:?} lacks {expected:?}",
        status.message
    );

    // Control: a pinned tag passes the same binding.
    fx.create_pinned().await?;
    Ok(())
}

#[tokio::test]
async fn vap_warn_admits_with_warning() {
    vap_test("Warn", |_cluster, fx| vap_warn(fx)).await;
}

async fn vap_warn(fx: VapFixture) -> Result<()> {
    let expected = format!("Validation failed for {}: {LATEST_MESSAGE}", fx.names());
    let deadline = Instant::now() + PROPAGATION;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let created = fx.create_latest(attempt, "a [Warn]").await?;
        let name = format!("web-{attempt}");
        ensure!(
            created.object.metadata.name.as_deref() == Some(name.as_str()),
            "the apiserver returned another object: {:?}",
            created.object.metadata.name
        );
        if created.warnings.iter().any(|w| w == &expected) {
            break;
        }
        ensure!(
            created.warnings.is_empty(),
            "unexpected warnings {:?}; wanted {expected:?}",
            created.warnings
        );
        ensure!(
            Instant::now() < deadline,
            "no warning {PROPAGATION:?} after a [Warn] binding (wanted {expected:?})"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Control: a pinned tag is admitted without any warning.
    let pinned = fx.create_pinned().await?;
    ensure!(
        pinned.warnings.is_empty(),
        "a pinned tag drew warnings {:?}",
        pinned.warnings
    );
    Ok(())
}

#[tokio::test]
async fn vap_audit_admits_and_reports_annotation() {
    let tb = testbed();
    let receiver = AuditReceiver::shared(&tb)
        .unwrap_or_else(|e| panic!("cannot receive the test bed's audit events: {e}"));
    vap_test("Audit", move |cluster, fx| vap_audit(cluster, fx, receiver)).await;
}

async fn vap_audit(cluster: Cluster, fx: VapFixture, receiver: &AuditReceiver) -> Result<()> {
    let deadline = Instant::now() + PROPAGATION;
    let mut attempt = 0;
    let event = loop {
        attempt += 1;
        let created = fx.create_latest(attempt, "an [Audit]").await?;
        let name = format!("web-{attempt}");
        ensure!(
            created.warnings.is_empty(),
            "an [Audit]-only binding sent warnings {:?}",
            created.warnings
        );
        // The event for this create arrives within the webhook's 1 s batch wait; if it has no
        // annotation, the policy was not effective yet and we try again with a new object.
        let ns = fx.ns.clone();
        let for_this = |e: &palisade_testbed::ReceivedAudit| {
            e.object_ref("namespace") == Some(ns.as_str())
                && e.object_ref("name") == Some(name.as_str())
                && e.field("verb") == Some("create")
        };
        let seen = receiver
            .wait_for(
                Duration::from_secs(10),
                &format!("the audit event for {}/{name}", fx.ns),
                for_this,
            )
            .await
            .context("the apiserver's audit webhook did not deliver the create event")?;
        if seen.annotation(VAP_VALIDATION_FAILURE_ANNOTATION).is_some() {
            break seen;
        }
        ensure!(
            Instant::now() < deadline,
            "no {VAP_VALIDATION_FAILURE_ANNOTATION} annotation {PROPAGATION:?} after an [Audit] binding"
        );
    };

    ensure!(
        event.path == cluster.audit_path(),
        "event from {} arrived on {:?}, expected {:?}",
        cluster.name,
        event.path,
        cluster.audit_path()
    );
    // client-go attaches credentials only over TLS: the token comes with https URLs only.
    let bearer = format!("Bearer {}", cluster.audit_token);
    let expected_auth = cluster
        .audit_url
        .starts_with("https://")
        .then_some(bearer.as_str());
    ensure!(
        event.authorization.as_deref() == expected_auth,
        "event carried authorization {:?}, expected {expected_auth:?}",
        event.authorization
    );
    ensure!(
        event.field("stage") == Some("ResponseComplete"),
        "stage {:?}",
        event.field("stage")
    );
    let code = event
        .event
        .pointer("/responseStatus/code")
        .and_then(Value::as_u64);
    ensure!(
        code == Some(201),
        "the audited create answered {code:?}, expected 201"
    );

    let raw = event
        .annotation(VAP_VALIDATION_FAILURE_ANNOTATION)
        .unwrap_or_default();
    let failures: Value = serde_json::from_str(raw).context("annotation value is not JSON")?;
    let expected = json!([{
        "message": LATEST_MESSAGE,
        "policy": fx.ns,
        "binding": fx.ns,
        "expressionIndex": 0,
        "validationActions": ["Audit"]
    }]);
    ensure!(
        failures == expected,
        "annotation {failures} differs from {expected}"
    );
    Ok(())
}

// ------------------------------------------------------------------ 3. least privilege

async fn expect_forbidden<T: std::fmt::Debug>(
    what: &str,
    result: Result<T, kube::Error>,
) -> Result<()> {
    match result {
        Err(e) if api_error(&e).is_some_and(|st| st.code == 403) => {
            let msg = &api_error(&e)
                .map(|st| st.message.clone())
                .unwrap_or_default();
            ensure!(
                msg.contains(r#"User "palisade" cannot"#),
                "{what}: 403 for another reason: {msg}"
            );
            Ok(())
        }
        Err(e) => bail!("{what}: expected 403 Forbidden, got {e}"),
        Ok(v) => bail!("{what}: expected 403 Forbidden, but it succeeded: {v:?}"),
    }
}

/// GET a path with a client; the status code, whatever it is.
async fn status_of(client: &Client, path: &str) -> Result<u16> {
    let req = http::Request::get(path).body(Vec::new())?;
    match client.request_text(req).await {
        Ok(_) => Ok(200),
        Err(kube::Error::Api(st)) => Ok(st.code),
        Err(e) => Err(e.into()),
    }
}

#[tokio::test]
async fn palisade_credentials_are_least_privilege() {
    let tb = testbed();
    on_every_cluster(&tb, |cluster| async move {
        let admin = cluster.admin_client().await?;
        let ns = unique_name("rbac");
        create_namespace(&admin, &ns, json!({})).await?;
        let result = rbac_checks(&cluster, &ns).await;
        delete_namespace(&admin, &ns).await?;
        result
    })
    .await;
}

async fn rbac_checks(cluster: &Cluster, ns: &str) -> Result<()> {
    let p = cluster.palisade_client().await?;

    // What the issue demands: no Secrets, no Pods created.
    let secrets: Api<Secret> = Api::namespaced(p.clone(), ns);
    expect_forbidden("list secrets", secrets.list(&ListParams::default()).await).await?;
    expect_forbidden("get a secret", secrets.get("any").await).await?;
    expect_forbidden(
        "list secrets in all namespaces",
        Api::<Secret>::all(p.clone())
            .list(&ListParams::default())
            .await,
    )
    .await?;
    let pods: Api<Pod> = Api::namespaced(p.clone(), ns);
    expect_forbidden(
        "create a pod",
        pods.create(&PostParams::default(), &pod("p", json!({}), json!({})))
            .await,
    )
    .await?;
    // Nor anything else outside its role.
    let namespaces: Api<Namespace> = Api::all(p.clone());
    expect_forbidden(
        "create a namespace",
        namespaces
            .create(
                &PostParams::default(),
                &from_json(json!({ "metadata": { "name": unique_name("no") } })),
            )
            .await,
    )
    .await?;
    expect_forbidden(
        "delete a namespace",
        namespaces.delete(ns, &DeleteParams::default()).await,
    )
    .await?;
    expect_forbidden(
        "create a deployment",
        Api::<Deployment>::namespaced(p.clone(), ns)
            .create(
                &PostParams::default(),
                &deployment("d", "registry.example/web:1"),
            )
            .await,
    )
    .await?;
    // RBAC is read for the inventory, never written: no role can be made or bound.
    expect_forbidden(
        "create a clusterrole",
        Api::<k8s_openapi::api::rbac::v1::ClusterRole>::all(p.clone())
            .create(
                &PostParams::default(),
                &from_json(json!({
                    "metadata": { "name": unique_name("no") },
                    "rules": [{ "apiGroups": ["*"], "resources": ["*"], "verbs": ["*"] }],
                })),
            )
            .await,
    )
    .await?;
    expect_forbidden(
        "create a clusterrolebinding",
        Api::<k8s_openapi::api::rbac::v1::ClusterRoleBinding>::all(p.clone())
            .create(
                &PostParams::default(),
                &from_json(json!({
                    "metadata": { "name": unique_name("no") },
                    "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin" },
                    "subjects": [{ "apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "palisade" }],
                })),
            )
            .await,
    )
    .await?;
    // Palisade pushes Gatekeeper policies: it may list templates (found where Gatekeeper runs).
    let status = status_of(&p, "/apis/templates.gatekeeper.sh/v1/constrainttemplates").await?;
    let expected = if cluster.gatekeeper { 200 } else { 404 };
    ensure!(
        status == expected,
        "list constrainttemplates: expected {expected}, got {status}"
    );
    // And Kyverno policies, with the PolicyExceptions for its exclusions (found where Kyverno
    // runs), but not Kyverno's other kinds.
    let expected = if cluster.kyverno { 200 } else { 404 };
    for path in [
        "/apis/kyverno.io/v1/clusterpolicies",
        "/apis/kyverno.io/v2/policyexceptions",
        "/apis/policies.kyverno.io/v1/validatingpolicies",
    ] {
        let status = status_of(&p, path).await?;
        ensure!(
            status == expected,
            "GET {path}: expected {expected}, got {status}"
        );
    }
    if cluster.kyverno {
        let status = status_of(&p, "/apis/policies.kyverno.io/v1/mutatingpolicies").await?;
        ensure!(
            status == 403,
            "GET mutatingpolicies: expected 403, got {status}"
        );
    }

    // What Palisade does need works (so the 403s above are RBAC, not a broken token).
    namespaces
        .list(&ListParams::default())
        .await
        .context("palisade must list namespaces")?;
    pods.list(&ListParams::default())
        .await
        .context("palisade must list pods")?;
    Api::<Deployment>::all(p.clone())
        .list(&ListParams::default())
        .await
        .context("palisade must list deployments")?;
    for path in [
        "/api/v1/services",
        "/api/v1/serviceaccounts",
        "/apis/networking.k8s.io/v1/ingresses",
        "/apis/networking.k8s.io/v1/networkpolicies",
        "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        "/apis/rbac.authorization.k8s.io/v1/rolebindings",
    ] {
        let status = status_of(&p, path).await?;
        ensure!(
            status == 200,
            "the inventory must list {path}: got {status}"
        );
    }
    let label =
        json!({ "metadata": { "labels": { "pod-security.kubernetes.io/warn": "baseline" } } });
    let patched = namespaces
        .patch(ns, &PatchParams::default(), &Patch::Merge(&label))
        .await
        .context("palisade must patch namespace labels")?;
    ensure!(
        patched
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("pod-security.kubernetes.io/warn"))
            .map(String::as_str)
            == Some("baseline"),
        "the label patch did not stick"
    );
    let policy: ValidatingAdmissionPolicy = from_json(json!({
        "metadata": { "name": unique_name("rbac-dry-run") },
        "spec": {
            "matchConstraints": { "resourceRules": [{
                "apiGroups": ["apps"], "apiVersions": ["v1"],
                "operations": ["CREATE"], "resources": ["deployments"]
            }]},
            "validations": [{ "expression": "true" }]
        }
    }));
    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    Api::<ValidatingAdmissionPolicy>::all(p.clone())
        .create(&dry_run, &policy)
        .await
        .context("palisade must create ValidatingAdmissionPolicies")?;
    Api::<ValidatingAdmissionPolicyBinding>::all(p.clone())
        .list(&ListParams::default())
        .await
        .context("palisade must list ValidatingAdmissionPolicyBindings")?;
    // Not installed here, so authorized requests get 404 where a denied one would get 403
    // (the report CRDs are there where Kyverno runs).
    let reports = if cluster.kyverno { 200 } else { 404 };
    for (path, expected) in [
        ("/apis/wgpolicyk8s.io/v1alpha2/policyreports", reports),
        (
            "/apis/wgpolicyk8s.io/v1alpha2/clusterpolicyreports",
            reports,
        ),
        (
            "/apis/constraints.gatekeeper.sh/v1beta1/k8srequiredlabels",
            404,
        ),
    ] {
        let status = status_of(&p, path).await?;
        ensure!(
            status == expected,
            "GET {path}: expected {expected} (allowed), got {status}"
        );
    }
    Ok(())
}

// ------------------------------------------------------------------ the clusters themselves

/// A client for `server` that uses the kubeconfig at `kubeconfig` for everything else.
async fn client_with_server(
    kubeconfig: &std::path::Path,
    server: &str,
    ca_from: Option<&std::path::Path>,
) -> Result<Client> {
    let mut kc = Kubeconfig::read_from(kubeconfig)?;
    let other_ca = match ca_from {
        Some(path) => Kubeconfig::read_from(path)?
            .clusters
            .first()
            .and_then(|c| c.cluster.as_ref())
            .and_then(|c| c.certificate_authority_data.clone()),
        None => None,
    };
    for named in &mut kc.clusters {
        if let Some(c) = named.cluster.as_mut() {
            c.server = Some(server.to_owned());
            if other_ca.is_some() {
                c.certificate_authority_data = other_ca.clone();
            }
        }
    }
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    Ok(Client::try_from(config)?)
}

#[tokio::test]
async fn clusters_are_independent_and_run_the_pinned_release() {
    let tb = testbed();
    for cluster in &tb.clusters {
        let info = cluster
            .admin_client()
            .await
            .unwrap()
            .apiserver_version()
            .await
            .unwrap();
        assert_eq!(
            info.git_version, tb.k8s_version,
            "{} reports {info:?}",
            cluster.name
        );
    }
    let (Some(first), Some(second)) = (tb.clusters.first(), tb.clusters.get(1)) else {
        return;
    };
    // Separate storage: a namespace made in one cluster does not exist in the other.
    let a = first.admin_client().await.unwrap();
    let b = second.admin_client().await.unwrap();
    let ns = unique_name("indep");
    create_namespace(&a, &ns, json!({})).await.unwrap();
    let other = Api::<Namespace>::all(b).get_opt(&ns).await;
    delete_namespace(&a, &ns).await.unwrap();
    assert!(
        matches!(other, Ok(None)),
        "namespace {ns} from {} visible in {}: {other:?}",
        first.name,
        second.name
    );
    // Separate credentials: cluster 1's Palisade token means nothing to cluster 2.
    let foreign = client_with_server(
        &first.palisade_kubeconfig,
        &second.api_url,
        Some(&second.admin_kubeconfig),
    )
    .await
    .unwrap();
    let err = Api::<Namespace>::all(foreign)
        .list(&ListParams::default())
        .await
        .expect_err("a foreign token must not authenticate");
    assert_eq!(
        api_error(&err).map(|st| st.code),
        Some(401),
        "expected 401 Unauthorized, got {err}"
    );
    // Separate CAs: cluster 1's CA does not vouch for cluster 2's serving certificate.
    let mistrusting = client_with_server(&first.admin_kubeconfig, &second.api_url, None)
        .await
        .unwrap();
    let err = mistrusting
        .apiserver_version()
        .await
        .expect_err("cluster 2's certificate must not verify against cluster 1's CA");
    assert!(
        api_error(&err).is_none(),
        "expected a TLS failure, got an API answer: {err}"
    );
}
