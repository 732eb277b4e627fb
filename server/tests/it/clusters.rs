//! Clusters: registration, sealed credentials, the start-up key check (both databases, with a fake
//! cluster behind the connector trait), and registration over the REST API against the real
//! kube-apiservers of the test bed.

use palisade_app::auth::{Principal, Role};
use palisade_app::clusters::ssr::{
    service, Applied, BoxFuture, ClusterConnector, ClusterError, Context, Credentials, Probe,
};
use palisade_app::clusters::{Capabilities, ClusterChange, CredentialsInput, Health, NewCluster};
use palisade_app::error::AppError;
use palisade_app::secrets::Sealer;
use palisade_server::config::Config;
use palisade_server::Server;
use serde_json::{json, Value};

use crate::support::{on_each_database, request, Backend, TestServer, KEY};

const OTHER_KEY: &str = "0000000000000000000000000000000000000000000000000000000000000001";

/// A cluster that answers like a kube-apiserver v1.37 with ValidatingAdmissionPolicy, and refuses
/// the token `bad-token`.
struct FakeCluster;

impl ClusterConnector for FakeCluster {
    fn probe<'a>(
        &'a self,
        credentials: &'a Credentials,
    ) -> BoxFuture<'a, Result<Probe, ClusterError>> {
        Box::pin(async move {
            if credentials.kubeconfig.contains("bad-token") {
                return Err(ClusterError::Unauthorized);
            }
            Ok(Probe {
                version: "v1.37.2".into(),
                capabilities: Capabilities {
                    validating_admission_policy: true,
                    ..Capabilities::default()
                },
            })
        })
    }
    fn apply<'a>(
        &'a self,
        _credentials: &'a Credentials,
        manifest: &'a serde_json::Value,
    ) -> BoxFuture<'a, Result<Applied, ClusterError>> {
        Box::pin(async move { Ok(Applied::quietly(manifest.clone())) })
    }

    fn get<'a>(
        &'a self,
        _credentials: &'a Credentials,
        _manifest: &'a serde_json::Value,
    ) -> BoxFuture<'a, Result<Option<serde_json::Value>, ClusterError>> {
        Box::pin(async { Ok(None) })
    }

    fn delete<'a>(
        &'a self,
        _credentials: &'a Credentials,
        _manifest: &'a serde_json::Value,
    ) -> BoxFuture<'a, Result<bool, ClusterError>> {
        Box::pin(async { Ok(false) })
    }
}

fn token_input(token: &str) -> CredentialsInput {
    CredentialsInput::Token {
        api_url: "https://10.1.2.3:6443".into(),
        ca_pem: String::new(),
        token: token.into(),
    }
}

fn new_cluster(name: &str, token: &str) -> NewCluster {
    NewCluster {
        name: name.into(),
        environment: "staging".into(),
        labels: [("team".to_owned(), "platform".to_owned())].into(),
        credentials: token_input(token),
    }
}

async fn count(server: &TestServer, sql: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sql)
        .fetch_one(server.pool.pool())
        .await
        .unwrap();
    n
}

async fn registration_seals_audits_and_refuses_bad_input(backend: Backend) {
    let server = TestServer::start(backend, &[]).await;
    let db = &server.pool;
    let admin = Principal::new("u-admin", "Ada Admin", Role::Admin);
    let sealer = Sealer::from_hex(KEY).unwrap();
    let ctx = Context {
        db,
        sealer: Some(&sealer),
        connector: &FakeCluster,
    };

    // Without a key nothing can be stored, and the message says how to set one.
    let no_key = Context {
        sealer: None,
        ..ctx
    };
    let err: AppError =
        service::register(&no_key, &admin, 1, new_cluster("prod-1", "t0k3n-secret"))
            .await
            .unwrap_err()
            .into();
    assert!(
        matches!(&err, AppError::Conflict(m) if m.contains("secrets.key_file")),
        "{err:?}"
    );
    assert_eq!(count(&server, "SELECT COUNT(*) FROM clusters").await, 0);

    let cluster = service::register(&ctx, &admin, 10, new_cluster("prod-1", "t0k3n-secret"))
        .await
        .unwrap();
    assert_eq!(cluster.health, Health::Reachable);
    assert_eq!(cluster.k8s_version, "v1.37.2");
    assert!(cluster.capabilities.validating_admission_policy);
    assert_eq!(cluster.api_url, "https://10.1.2.3:6443");
    assert_eq!(cluster.created_by, "Ada Admin");

    // The credentials are sealed: the token is not in the row, and the row opens only with the key
    // and only as this cluster's.
    let (stored,): (String,) = sqlx::query_as("SELECT credentials FROM clusters WHERE id = $1")
        .bind(&cluster.id)
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert!(stored.starts_with("v1:") && !stored.contains("t0k3n-secret"));
    let opened = String::from_utf8(sealer.open(&stored, &cluster.id).unwrap()).unwrap();
    assert!(opened.contains("t0k3n-secret"));
    assert!(sealer.open(&stored, "another-cluster").is_err());

    // The registration is in the audit log, without the secret.
    let (actor, detail): (String, String) = sqlx::query_as(
        "SELECT actor, detail FROM audit_entries WHERE action = 'cluster.register' AND target_id = $1",
    )
    .bind(&cluster.id)
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!(actor, "u-admin");
    assert!(
        detail.contains("prod-1") && !detail.contains("t0k3n"),
        "{detail}"
    );

    // A second cluster of the same name, a bad name, bad labels, bad credentials: refused, nothing
    // written.
    let refusals = [
        new_cluster("prod-1", "x"),
        new_cluster("Prod_1", "x"),
        NewCluster {
            labels: [("team".to_owned(), "a b".to_owned())].into(),
            ..new_cluster("prod-2", "x")
        },
        NewCluster {
            credentials: CredentialsInput::Kubeconfig {
                kubeconfig: "clusters: [".into(),
                context: None,
            },
            ..new_cluster("prod-3", "x")
        },
    ];
    for input in refusals {
        let name = input.name.clone();
        let err: AppError = service::register(&ctx, &admin, 11, input)
            .await
            .unwrap_err()
            .into();
        assert!(
            matches!(err, AppError::Conflict(_) | AppError::Invalid(_)),
            "{name}: {err:?}"
        );
    }
    assert_eq!(count(&server, "SELECT COUNT(*) FROM clusters").await, 1);

    // A cluster that refuses the token is registered as unreachable, with the reason.
    let refused = service::register(&ctx, &admin, 12, new_cluster("dev-1", "bad-token"))
        .await
        .unwrap();
    assert_eq!(refused.health, Health::Unreachable);
    assert!(refused.last_error.contains("401"), "{}", refused.last_error);

    // Disable: checks are refused until it is enabled again; labels change; each change audited.
    let change = ClusterChange {
        disabled: Some(true),
        labels: Some([("team".to_owned(), "payments".to_owned())].into()),
        ..ClusterChange::default()
    };
    let disabled = service::update(&ctx, &admin, 13, &cluster.id, change)
        .await
        .unwrap();
    assert!(disabled.disabled);
    assert_eq!(disabled.labels["team"], "payments");
    let err: AppError = service::check(&ctx, &admin, 14, &cluster.id)
        .await
        .unwrap_err()
        .into();
    assert!(matches!(err, AppError::Conflict(m) if m.contains("disabled")));
    let enable = ClusterChange {
        disabled: Some(false),
        ..ClusterChange::default()
    };
    service::update(&ctx, &admin, 15, &cluster.id, enable)
        .await
        .unwrap();
    let checked = service::check(&ctx, &admin, 16, &cluster.id).await.unwrap();
    assert_eq!(
        (checked.health, checked.last_checked_ms),
        (Health::Reachable, 16)
    );
    assert_eq!(
        count(
            &server,
            "SELECT COUNT(*) FROM audit_entries WHERE action = 'cluster.update'"
        )
        .await,
        2
    );

    // Rotating the credentials re-probes and re-seals.
    let rotate = ClusterChange {
        credentials: Some(token_input("bad-token")),
        ..ClusterChange::default()
    };
    let rotated = service::update(&ctx, &admin, 17, &cluster.id, rotate)
        .await
        .unwrap();
    assert_eq!(rotated.health, Health::Unreachable);

    // The start-up check: no key, or the wrong key, is refused while clusters exist.
    assert!(service::check_key(db, Some(&sealer)).await.is_ok());
    let missing = service::check_key(db, None).await.unwrap_err();
    assert!(missing.contains("2 cluster(s)"), "{missing}");
    let wrong = service::check_key(db, Some(&Sealer::from_hex(OTHER_KEY).unwrap()))
        .await
        .unwrap_err();
    assert!(wrong.contains("not the key"), "{wrong}");

    // Remove: gone, audited; removing again is NotFound.
    service::remove(db, &admin, 18, &refused.id).await.unwrap();
    assert!(matches!(
        service::remove(db, &admin, 19, &refused.id)
            .await
            .map_err(AppError::from),
        Err(AppError::NotFound(_))
    ));
    assert_eq!(
        count(
            &server,
            "SELECT COUNT(*) FROM audit_entries WHERE action = 'cluster.remove'"
        )
        .await,
        1
    );

    // Start-up refuses a database with clusters when the key is missing or wrong.
    let url = server.db.url.clone();
    for (env, expected) in [
        (vec![], "no secrets key is configured"),
        (vec![("PALISADE__SECRETS__KEY", OTHER_KEY)], "not the key"),
    ] {
        let mut settings = vec![
            (
                "PALISADE__HTTP__ADDRESS".to_owned(),
                "127.0.0.1:0".to_owned(),
            ),
            ("PALISADE__DATABASE__URL".to_owned(), url.clone()),
        ];
        settings.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let config = Config::load_from(None, settings).unwrap();
        let Err(err) = Server::start(&config).await else {
            panic!("start-up must refuse ({expected})");
        };
        assert_eq!(err.setting, "secrets.key", "{err}");
        assert!(err.message.contains(expected), "{err}");
        assert!(!err.message.contains(KEY) && !err.message.contains(OTHER_KEY));
    }
    server.stop().await;
}

on_each_database!(
    registration_seals_audits_and_refuses_bad_input:
    sqlite_registration_seals_audits_and_refuses_bad_input,
    postgres_registration_seals_audits_and_refuses_bad_input
);

/// The test bed's clusters, or a loud failure saying how to start them.
/// The token and CA of the test bed's least-privilege Palisade kubeconfig.
fn token_and_ca(cluster: &palisade_testbed::Cluster) -> (String, String) {
    let kubeconfig = std::fs::read_to_string(&cluster.palisade_kubeconfig).unwrap();
    let parsed = kube::config::Kubeconfig::from_yaml(&kubeconfig).unwrap();
    let user = serde_json::to_value(parsed.auth_infos[0].auth_info.clone().unwrap()).unwrap();
    let token = user["token"]
        .as_str()
        .expect("the Palisade kubeconfig holds a token")
        .to_owned();
    let ca = std::fs::read_to_string(&cluster.ca_file).unwrap();
    (token, ca)
}

#[tokio::test]
async fn registers_the_test_bed_clusters_over_the_api() {
    let testbed = crate::support::testbed().await;
    let server = TestServer::with_key(&[]).await;
    let admin = server.login_token(Role::Admin).await;
    let viewer = server.login_token(Role::Viewer).await;

    for cluster in &testbed.clusters {
        // From the kubeconfig file as an operator would paste it.
        let kubeconfig = std::fs::read_to_string(&cluster.palisade_kubeconfig).unwrap();
        let contexts = server
            .call(
                "POST",
                "/api/v1/clusters/contexts",
                &admin,
                &json!({ "kubeconfig": kubeconfig }).to_string(),
            )
            .await;
        assert_eq!(contexts.status, 200, "{}", contexts.body);
        let contexts: Vec<String> = serde_json::from_str(&contexts.body).unwrap();
        let body = json!({
            "name": format!("{}-kubeconfig", cluster.name),
            "environment": "dev",
            "labels": { "testbed": "yes" },
            "credentials": { "kind": "kubeconfig", "kubeconfig": kubeconfig, "context": contexts[0] },
        });
        let reply = server
            .call("POST", "/api/v1/clusters", &admin, &body.to_string())
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        let registered: Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(registered["health"], "reachable", "{registered}");
        assert_eq!(registered["k8s_version"], testbed.k8s_version.as_str());
        assert_eq!(
            registered["capabilities"],
            json!({
                "validating_admission_policy": true,
                // The test bed runs a real Gatekeeper and a real Kyverno beside some clusters
                // (`up --gatekeeper`, `--kyverno`); Kyverno's CRDs bring PolicyReports.
                "gatekeeper": cluster.gatekeeper,
                "kyverno": cluster.kyverno,
                "policy_reports": cluster.kyverno,
            })
        );
        assert_eq!(registered["api_url"], cluster.api_url.trim_end_matches('/'));

        // From URL, CA and token.
        let (token, ca) = token_and_ca(cluster);
        let body = json!({
            "name": format!("{}-token", cluster.name),
            "environment": "staging",
            "credentials": { "kind": "token", "api_url": cluster.api_url, "ca_pem": ca, "token": token },
        });
        let reply = server
            .call("POST", "/api/v1/clusters", &admin, &body.to_string())
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        let by_token: Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(by_token["health"], "reachable", "{by_token}");
        assert!(!reply.body.contains(&token), "credentials never come back");

        // "Check now" probes again.
        let id = by_token["id"].as_str().unwrap();
        let checked = server
            .call("POST", &format!("/api/v1/clusters/{id}/check"), &admin, "")
            .await;
        assert_eq!(checked.status, 200, "{}", checked.body);
        assert!(checked.body.contains("\"reachable\""));
    }

    // A wrong token: registered, unreachable, with the apiserver's 401 said plainly.
    let cluster = &testbed.clusters[0];
    let (_, ca) = token_and_ca(cluster);
    let body = json!({
        "name": "wrong-token",
        "environment": "dev",
        "credentials": { "kind": "token", "api_url": cluster.api_url, "ca_pem": ca, "token": "not-the-token" },
    });
    let reply = server
        .call("POST", "/api/v1/clusters", &admin, &body.to_string())
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let wrong: Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(wrong["health"], "unreachable");
    assert!(
        wrong["last_error"].as_str().unwrap().contains("401"),
        "{wrong}"
    );

    // Nothing listens on port 1: unreachable, saying why.
    let body = json!({
        "name": "nobody-home",
        "environment": "dev",
        "credentials": { "kind": "token", "api_url": "https://127.0.0.1:1", "ca_pem": ca, "token": "t" },
    });
    let reply = server
        .call("POST", "/api/v1/clusters", &admin, &body.to_string())
        .await;
    let gone: Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(gone["health"], "unreachable", "{gone}");
    assert!(!gone["last_error"].as_str().unwrap().is_empty());

    // A viewer lists them all and sees no credentials; the UI's server function parses its form.
    let list = server.call("GET", "/api/v1/clusters", &viewer, "").await;
    assert_eq!(list.status, 200);
    let list: Vec<Value> = serde_json::from_str(&list.body).unwrap();
    assert_eq!(list.len(), testbed.clusters.len() * 2 + 2);
    let form = "input[name]=via-form&input[environment]=dev&input[credentials][kind]=token\
         &input[credentials][api_url]=https%3A%2F%2F127.0.0.1%3A1&input[credentials][ca_pem]=\
         &input[credentials][token]=t";
    let bearer = format!("Bearer {admin}");
    let reply = request(
        server.addr,
        "POST",
        "/api/register_cluster",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("accept", "application/json"),
            ("authorization", &bearer),
        ],
        form,
    )
    .await;
    reply.assert_says(200, "\"via-form\"");
    server.stop().await;
}

/// What rollouts will build on: the rendered manifests of a library policy, server-side applied
/// with Palisade's least-privilege credentials, read back, then re-applied in a stricter mode; and
/// Pod Security labels put on an existing namespace.
#[tokio::test]
async fn applies_rendered_manifests_to_a_test_bed_cluster_and_reads_them_back() {
    use palisade_app::clusters::ssr::{ClusterConnector as _, KubeConnector};
    use palisade_engine::mode::Mode;
    use palisade_engine::render::{pod_security_patch, render};

    let testbed = crate::support::testbed().await;
    let cluster = &testbed.clusters[0];
    let credentials = crate::support::kubeconfig_credentials(&cluster.palisade_kubeconfig);
    let connector = KubeConnector::default();
    let entry = palisade_engine::library::entry("disallow-host-path")
        .unwrap()
        .unwrap();
    let admin = cluster.admin_client().await.unwrap();

    for (mode, actions) in [
        (Mode::Audit, json!(["Audit"])),
        (Mode::Warn, json!(["Warn", "Audit"])),
        (Mode::Enforce, json!(["Deny", "Audit"])),
    ] {
        let manifests = render(entry.id, entry.policy_yaml, mode).unwrap();
        for manifest in &manifests {
            let applied = connector
                .apply(&credentials, &manifest.object)
                .await
                .unwrap_or_else(|e| panic!("{} {}: {e}", manifest.kind, manifest.name))
                .object;
            let managers: Vec<&str> = applied["metadata"]["managedFields"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|f| f["manager"].as_str())
                .collect();
            assert!(managers.contains(&"palisade"), "{managers:?}");
            let live = connector
                .get(&credentials, &manifest.object)
                .await
                .unwrap()
                .expect("the applied object is there");
            assert_eq!(
                live["metadata"]["labels"]["app.kubernetes.io/managed-by"],
                "palisade"
            );
            if manifest.kind == "ValidatingAdmissionPolicyBinding" {
                assert_eq!(live["spec"]["validationActions"], actions, "{mode}");
            }
        }
    }

    // A missing object reads back as None; a kind the cluster lacks is the apiserver's own error.
    let missing = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": { "name": "no-such-policy-here" },
    });
    assert_eq!(connector.get(&credentials, &missing).await.unwrap(), None);
    let unknown = json!({
        "apiVersion": "templates.gatekeeper.sh/v1",
        "kind": "ConstraintTemplate",
        "metadata": { "name": "x" },
    });
    assert!(connector.apply(&credentials, &unknown).await.is_err());

    // Pod Security labels on a namespace that exists: only the labels change.
    let namespace = palisade_testbed::unique_name("palisade-it");
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> =
        kube::Api::all(admin.clone());
    let ns: k8s_openapi::api::core::v1::Namespace = serde_json::from_value(
        json!({ "metadata": { "name": namespace, "labels": { "team": "a" } } }),
    )
    .unwrap();
    namespaces.create(&Default::default(), &ns).await.unwrap();
    let patch = pod_security_patch(&namespace, "restricted:v1.30".parse().unwrap(), Mode::Warn);
    connector.apply(&credentials, &patch).await.unwrap();
    let live = connector.get(&credentials, &patch).await.unwrap().unwrap();
    assert_eq!(live["metadata"]["labels"]["team"], "a");
    assert_eq!(
        live["metadata"]["labels"]["pod-security.kubernetes.io/warn"],
        "restricted"
    );
    assert_eq!(
        live["metadata"]["labels"]["pod-security.kubernetes.io/audit-version"],
        "v1.30"
    );
    assert_eq!(
        live["metadata"]["labels"].get("pod-security.kubernetes.io/enforce"),
        None
    );

    // A pod that breaks the level already runs there: enforcing the level is still applied, and
    // the apiserver's warnings about that pod come back with the apply.
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
        kube::Api::namespaced(admin.clone(), &namespace);
    let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(json!({
        "metadata": { "name": "privileged-web" },
        "spec": { "containers": [{ "name": "web", "image": "nginx",
                                   "securityContext": { "privileged": true } }] },
    }))
    .unwrap();
    pods.create(&Default::default(), &pod).await.unwrap();
    let enforce = pod_security_patch(
        &namespace,
        "restricted:v1.30".parse().unwrap(),
        Mode::Enforce,
    );
    // Pod Security checks the namespace's pods from its own cache, which may not hold a pod made a
    // moment ago: until the warning names it, take the enforce label off (the warn-only apply)
    // and put it on again, which makes the apiserver check the pods again.
    let mut applied = connector.apply(&credentials, &enforce).await.unwrap();
    for _ in 0..50 {
        if !applied.warnings.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        connector.apply(&credentials, &patch).await.unwrap();
        applied = connector.apply(&credentials, &enforce).await.unwrap();
    }
    assert_eq!(
        applied.object["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
    assert!(
        applied
            .warnings
            .iter()
            .any(|w| w.contains("violate the new PodSecurity enforce level")),
        "{:?}",
        applied.warnings
    );
    assert!(
        applied
            .warnings
            .iter()
            .any(|w| w.starts_with("privileged-web") && w.contains("privileged")),
        "{:?}",
        applied.warnings
    );

    // Clean up what this test made (the policy and binding share the entry's name).
    palisade_testbed::delete_namespace(&admin, &namespace)
        .await
        .unwrap();
    use k8s_openapi::api::admissionregistration::v1::{
        ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
    };
    let bindings: kube::Api<ValidatingAdmissionPolicyBinding> = kube::Api::all(admin.clone());
    bindings
        .delete(entry.id, &Default::default())
        .await
        .unwrap();
    let policies: kube::Api<ValidatingAdmissionPolicy> = kube::Api::all(admin);
    policies
        .delete(entry.id, &Default::default())
        .await
        .unwrap();
}

/// The Clusters page lists twenty-five clusters at a time and pages through the rest by cursor.
#[tokio::test]
async fn the_clusters_page_shows_twenty_five_at_a_time() {
    let server = TestServer::with_key(&[]).await;
    let admin = server.login_token(Role::Admin).await;
    let viewer = server.login_token(Role::Viewer).await;
    let mut ids = Vec::new();
    for n in 0..27 {
        ids.push(
            server
                .api(&admin)
                .register_unreachable(&format!("fleet-{n:02}"), "prod")
                .await
                .id,
        );
    }
    let rows = |body: &str| body.matches(">fleet-").count();
    let first = server.call("GET", "/clusters", &viewer, "").await;
    assert_eq!(first.status, 200);
    assert_eq!(rows(&first.body), 25, "{}", first.body);
    assert!(first.body.contains("Clusters 1–25 of 27"), "{}", first.body);
    let next_href = format!("href=\"/clusters?after={}\"", ids[24]);
    assert!(first.body.contains(&next_href), "{}", first.body);
    let next = server
        .call("GET", &format!("/clusters?after={}", ids[24]), &viewer, "")
        .await;
    assert_eq!(rows(&next.body), 2, "{}", next.body);
    assert!(next.body.contains("Clusters 26–27 of 27"), "{}", next.body);
    server.stop().await;
}
