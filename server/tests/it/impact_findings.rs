//! Impact object by object: `POST /api/v1/impact` on both databases (a stored version, a source,
//! a cluster filter, and every refusal naming its field), and `palisade impact` against a real
//! kube-apiserver of the test bed, run as the built binary.

use serde_json::{json, Value};

use crate::client::json_of;
use crate::impact::{varied, Shop};
use crate::support::{on_each_database, palisade_bin, Backend};

const RESTRICTED: &str = "apiVersion: palisade.dev/v1alpha1\nkind: PodSecurityEntry\nmetadata: {name: pod-security-baseline}\nspec: {level: restricted, version: latest}\n";

/// `namespace/Kind name (owner Kind/name)` of each finding with `action`.
fn objects(cluster: &Value, action: &str) -> Vec<String> {
    cluster["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["action"] == action && f["excepted"] == false)
        .map(|f| {
            format!(
                "{}/{} {} ({}/{})",
                f["namespace"].as_str().unwrap(),
                f["kind"].as_str().unwrap(),
                f["name"].as_str().unwrap(),
                f["owner"]["kind"].as_str().unwrap(),
                f["owner"]["name"].as_str().unwrap()
            )
        })
        .collect()
}

async fn rest_impact(backend: Backend) {
    let Shop {
        server,
        people,
        viewer,
        cluster: shop,
    } = crate::impact::shop(backend).await;
    let admin = server.api(&people.admin);
    let empty = admin.register_unreachable("empty-1", "dev").await;
    let baseline = server
        .api(&people.author)
        .adopt("pod-security-baseline")
        .await
        .policy
        .id;
    let impact = |token: String, body: Value| {
        let server = &server;
        async move {
            server
                .call("POST", "/api/v1/impact", &token, &body.to_string())
                .await
        }
    };

    // A viewer may judge a stored policy: every denied object, named by its workload.
    let reply = impact(
        viewer.clone(),
        json!({"policy": baseline, "clusters": [shop.id]}),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let found = json_of(&reply);
    let clusters = found["clusters"].as_array().unwrap();
    assert_eq!(clusters.len(), 1, "{found:#}");
    let here = &clusters[0];
    assert_eq!(here["cluster"], shop.id.as_str());
    assert_eq!(here["objects"], 7);
    assert_eq!(
        (&here["complete"], &here["partial"], &here["truncated"]),
        (&json!(true), &json!(false), &json!(false)),
        "{here:#}"
    );
    assert_eq!(
        objects(here, "deny"),
        [
            "legacy/Pod old (Pod/old)",
            "shop/Pod web-1-a (Deployment/web)",
            "shop/Pod web-1-b (Deployment/web)",
        ]
    );
    assert_eq!(here["deny"], 3);
    let first = &here["findings"][0];
    assert_eq!(first["policy"], "pod-security:baseline");
    assert!(
        first["message"].as_str().unwrap().contains("privileged"),
        "{first:#}"
    );

    // Without a filter: every enabled cluster; one whose kinds were never listed is incomplete.
    let reply = impact(viewer.clone(), json!({"policy": baseline})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let found = json_of(&reply);
    let mut ids: Vec<&str> = found["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["cluster"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    let mut expected = vec![shop.id.as_str(), empty.id.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected);
    let bare = found["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["cluster"] == empty.id.as_str())
        .unwrap();
    assert_eq!(
        (&bare["objects"], &bare["complete"]),
        (&json!(0), &json!(false))
    );

    // A second version, restricted: it also denies the clean Pod (root); version 1 does not.
    let saved = server
        .call(
            "POST",
            &format!("/api/v1/policies/{baseline}/versions"),
            &people.author,
            &json!({"base_version": 1, "note": "stricter", "source": RESTRICTED}).to_string(),
        )
        .await;
    assert_eq!(saved.status, 201, "{}", saved.body);
    let current = json_of(
        &impact(
            viewer.clone(),
            json!({"policy": baseline, "clusters": [shop.id]}),
        )
        .await,
    );
    assert_eq!(current["clusters"][0]["deny"], 4, "{current:#}");
    assert!(objects(&current["clusters"][0], "deny").contains(&"shop/Pod clean (Pod/clean)".into()));
    let first_version = json_of(
        &impact(
            viewer.clone(),
            json!({"policy": baseline, "version": 1, "clusters": [shop.id]}),
        )
        .await,
    );
    assert_eq!(first_version["clusters"][0]["deny"], 3, "{first_version:#}");

    // A source needs no stored policy, but the author role; a viewer is refused.
    let source = json!({"source": RESTRICTED, "clusters": [shop.id]});
    let refused = impact(viewer.clone(), source.clone()).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let reply = impact(people.author.clone(), source).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let by_source = json_of(&reply);
    assert_eq!(
        objects(&by_source["clusters"][0], "deny"),
        objects(&current["clusters"][0], "deny")
    );

    // Refusals name what is wrong.
    let author = people.author.clone();
    let broken = impact(
        author.clone(),
        json!({"source": "kind: Pod\nmetadata: [unclosed\n"}),
    )
    .await;
    broken.assert_says(400, "source");
    // The flow sequence opened on line 2 is still open where the text ends, line 3 column 1.
    assert!(
        broken.body.contains("source: policy.yaml:3:1: "),
        "the line and column of the problem: {}",
        broken.body
    );
    let huge = "#".repeat(palisade_app::impact::findings::MAX_SOURCE_BYTES + 1);
    let over = impact(author.clone(), json!({"source": huge})).await;
    assert_eq!(over.status, 400, "{}", over.body);
    assert!(
        over.body.contains("source") && over.body.contains("at most"),
        "{}",
        over.body
    );
    let unknown = impact(
        viewer.clone(),
        json!({"policy": baseline, "clusters": [shop.id, "no-such-cluster"]}),
    )
    .await;
    unknown.assert_says(404, "no-such-cluster");
    let many: Vec<String> = (0..201).map(|i| format!("c{i}")).collect();
    let too_many = impact(
        viewer.clone(),
        json!({"policy": baseline, "clusters": many}),
    )
    .await;
    too_many.assert_says(400, "clusters");
    let both = impact(
        author.clone(),
        json!({"policy": baseline, "source": RESTRICTED}),
    )
    .await;
    assert_eq!(both.status, 400, "{}", both.body);
    let neither = impact(viewer.clone(), json!({})).await;
    neither.assert_says(400, "policy");
    let missing = impact(viewer.clone(), json!({"policy": "no-such-policy"})).await;
    assert_eq!(missing.status, 404, "{}", missing.body);
    server.stop().await;
}

on_each_database!(rest_impact: sqlite_rest_impact_findings, postgres_rest_impact_findings);

/// `palisade impact` with `args`: its exit code, standard output and standard error.
async fn palisade_impact(args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(palisade_bin())
        .arg("impact")
        .args(args)
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn impact_cli_reads_a_live_cluster() {
    use palisade_app::clusters::ssr::{ClusterConnector, KubeConnector};

    let testbed = crate::support::testbed().await;
    let cluster = &testbed.clusters[0];
    let admin = cluster.admin_client().await.unwrap();
    let kubeconfig = cluster.admin_kubeconfig.to_str().unwrap().to_owned();
    let credentials = crate::support::kubeconfig_credentials(&cluster.admin_kubeconfig);
    let connector = KubeConnector::default();
    let namespace = palisade_testbed::unique_name("impact-cli");
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}});
    connector.apply(&credentials, &ns).await.unwrap();
    for object in varied(&namespace) {
        connector.apply(&credentials, &object).await.unwrap();
    }

    let (code, stdout, stderr) = palisade_impact(&[
        "--pss",
        "baseline",
        "--kubeconfig",
        &kubeconfig,
        "--output",
        "json",
    ])
    .await;
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let here = &report["clusters"][0];
    assert_eq!(here["complete"], true, "{here:#}");
    let mut denied: Vec<String> = objects(here, "deny")
        .into_iter()
        .filter(|o| o.starts_with(&format!("{namespace}/")))
        .map(|o| o[namespace.len() + 1..].to_owned())
        .collect();
    denied.sort_unstable();
    assert_eq!(
        denied,
        [
            "Pod host-network (Pod/host-network)",
            "Pod host-path (Pod/host-path)",
            "Pod host-pid (Pod/host-pid)",
            "Pod host-port (Pod/host-port)",
            "Pod init-privileged (Pod/init-privileged)",
            "Pod net-admin (Pod/net-admin)",
            "Pod privileged (Pod/privileged)",
        ]
    );
    // The Deployment's template is warned of, not denied.
    assert!(
        objects(here, "warn").contains(&format!(
            "{namespace}/Deployment template-privileged (Deployment/template-privileged)"
        )),
        "{here:#}"
    );
    // The text output names the same, one line each, and the same exit code.
    let (code, text, _) =
        palisade_impact(&["--pss", "baseline", "--kubeconfig", &kubeconfig]).await;
    assert_eq!(code, 1, "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("deny")
            && l.contains(&format!("Pod {namespace}/privileged"))
            && l.contains("pod-security:baseline")),
        "{text}"
    );
    // Nothing denies these under the privileged level: exit 0.
    let (code, _, stderr) =
        palisade_impact(&["--pss", "privileged", "--kubeconfig", &kubeconfig]).await;
    assert_eq!(code, 0, "{stderr}");

    palisade_testbed::delete_namespace(&admin, &namespace)
        .await
        .unwrap();
}

/// Credentials that may list only Namespaces and Pods: the other kinds are named as not readable,
/// the answer is not complete, and what could be read is still judged.
#[tokio::test]
async fn impact_cli_names_the_kinds_it_may_not_read() {
    use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
    use k8s_openapi::api::core::v1::ServiceAccount;
    use palisade_app::clusters::ssr::{ClusterConnector, KubeConnector};

    let testbed = crate::support::testbed().await;
    let cluster = &testbed.clusters[0];
    let admin = cluster.admin_client().await.unwrap();
    let credentials = crate::support::kubeconfig_credentials(&cluster.admin_kubeconfig);
    let connector = KubeConnector::default();
    let namespace = palisade_testbed::unique_name("impact-cli-rbac");
    let rbac = |kind: &str| json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": {"name": namespace}});
    let mut role = rbac("ClusterRole");
    role["rules"] =
        json!([{"apiGroups": [""], "resources": ["namespaces", "pods"], "verbs": ["list"]}]);
    let mut binding = rbac("ClusterRoleBinding");
    binding["roleRef"] =
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": namespace});
    binding["subjects"] =
        json!([{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}]);
    let applied = [
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "reader", "namespace": namespace}}),
        role.clone(),
        binding.clone(),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "privileged", "namespace": namespace},
               "spec": {"containers": [{"name": "c", "image": "registry.example/app:1", "securityContext": {"privileged": true}}]}}),
    ];
    for object in &applied {
        connector.apply(&credentials, object).await.unwrap();
    }
    let accounts: kube::Api<ServiceAccount> = kube::Api::namespaced(admin.clone(), &namespace);
    let token = accounts
        .create_token_request(
            "reader",
            &kube::api::PostParams::default(),
            &TokenRequest {
                spec: Some(TokenRequestSpec {
                    expiration_seconds: Some(600),
                    ..TokenRequestSpec::default()
                }),
                ..TokenRequest::default()
            },
        )
        .await
        .unwrap()
        .status
        .unwrap()
        .token
        .unwrap();
    let dir = std::env::temp_dir().join(&namespace);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("kubeconfig");
    std::fs::write(
        &file,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: reader\nclusters:\n- name: c\n  cluster: {{server: '{}', certificate-authority: '{}'}}\nusers:\n- name: reader\n  user: {{token: '{token}'}}\ncontexts:\n- name: reader\n  context: {{cluster: c, user: reader}}\n",
            cluster.api_url,
            cluster.ca_file.display()
        ),
    )
    .unwrap();

    // RBAC takes effect within moments of the binding.
    let path = file.to_str().unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let (code, stdout, stderr) = loop {
        let ran = palisade_impact(&[
            "--pss",
            "baseline",
            "--kubeconfig",
            path,
            "--output",
            "json",
        ])
        .await;
        if ran.0 == 1 || tokio::time::Instant::now() > deadline {
            break ran;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(!stdout.contains(&token) && !stderr.contains(&token));
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let here = &report["clusters"][0];
    assert_eq!(here["complete"], false, "{here:#}");
    let unreadable: Vec<&str> = here["unreadable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert!(
        unreadable.contains(&"Deployment") && unreadable.contains(&"ClusterRole"),
        "{unreadable:?}"
    );
    assert!(
        !unreadable.contains(&"Pod") && !unreadable.contains(&"Namespace"),
        "{unreadable:?}"
    );
    assert!(
        objects(here, "deny").contains(&format!("{namespace}/Pod privileged (Pod/privileged)")),
        "{here:#}"
    );
    let (_, text, _) = palisade_impact(&["--pss", "baseline", "--kubeconfig", path]).await;
    assert!(
        text.contains("not readable with these credentials"),
        "{text}"
    );

    connector.delete(&credentials, &binding).await.unwrap();
    connector.delete(&credentials, &role).await.unwrap();
    palisade_testbed::delete_namespace(&admin, &namespace)
        .await
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn impact_cli_refuses_what_it_cannot_use() {
    // No kubeconfig: exit 2, naming the file.
    let (code, stdout, stderr) =
        palisade_impact(&["--pss", "baseline", "--kubeconfig", "/no/such/kubeconfig"]).await;
    assert_eq!(code, 2, "{stdout}");
    assert!(stderr.contains("/no/such/kubeconfig"), "{stderr}");
    // A cluster nothing answers for: exit 2, and the token never printed.
    let dir = std::env::temp_dir().join(palisade_testbed::unique_name("impact-cli"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("kubeconfig");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:9', insecure-skip-tls-verify: true}\nusers:\n- name: u\n  user: {token: very-secret-token-4711}\ncontexts:\n- name: c\n  context: {cluster: c, user: u}\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let (code, stdout, stderr) =
        palisade_impact(&["--pss", "baseline", "--kubeconfig", path]).await;
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    assert!(stderr.contains("cannot reach"), "{stderr}");
    assert!(
        !stderr.contains("very-secret-token-4711") && !stdout.contains("very-secret-token-4711")
    );
    // A context the file does not have, and a level that does not exist: exit 2.
    let (code, _, stderr) = palisade_impact(&[
        "--pss",
        "baseline",
        "--kubeconfig",
        path,
        "--context",
        "nope",
    ])
    .await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("nope"), "{stderr}");
    let (code, _, stderr) = palisade_impact(&["--pss", "extreme", "--kubeconfig", path]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--pss extreme"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}
