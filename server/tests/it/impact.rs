//! Impact previews over HTTP on both databases, from an inventory written the way the keeper
//! writes it: the workloads a version would deny, grouped by owner, compared with nothing deployed,
//! with an active exception shown as such; a draft's impact needs the author role and a broken
//! draft is refused naming the source. Against a real kube-apiserver, impact is held to what the
//! cluster then does: Pod Security enforced on a namespace denies exactly the Pods impact named,
//! with the apiserver's messages.

use std::time::Duration;

use palisade_app::auth::Role;
use palisade_app::exceptions::DAY_MS;
use palisade_app::inventory::ssr::changes::{held, Write};
use palisade_app::inventory::ssr::keeper::apply;
use palisade_app::inventory::ssr::kinds::KINDS;
use serde_json::{json, Value};

use crate::client::json_of;
use crate::support::{on_each_database, Backend, TestServer, KEY};

fn pod(namespace: &str, name: &str, owner: Option<(&str, &str, &str)>, privileged: bool) -> Value {
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "uid": format!("uid-{namespace}-{name}")},
        "spec": {"containers": [{"name": "c", "image": "registry.example/app:1", "securityContext": {"privileged": privileged}}]},
    });
    if let Some((kind, name, uid)) = owner {
        pod["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": uid, "controller": true}]);
    }
    pod
}

/// The inventory of a small cluster, as the keeper would have written it after listing.
pub(crate) async fn write_inventory(db: &palisade_app::db::Db, cluster_id: &str) {
    let mut objects = vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "uid": "uid-ns-shop"}}),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "legacy", "uid": "uid-ns-legacy"}}),
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
               "metadata": {"name": "web-1", "namespace": "shop", "uid": "uid-rs",
                            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "uid-deploy", "controller": true}]},
               "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}),
        pod(
            "shop",
            "web-1-a",
            Some(("ReplicaSet", "web-1", "uid-rs")),
            true,
        ),
        pod(
            "shop",
            "web-1-b",
            Some(("ReplicaSet", "web-1", "uid-rs")),
            true,
        ),
        pod("shop", "clean", None, false),
        pod("legacy", "old", None, true),
    ];
    let mut writes: Vec<Write> = objects
        .drain(..)
        .map(|o| Write::Put {
            held: held(o).unwrap(),
            seen_ms: 10,
        })
        .collect();
    writes.extend(KINDS.iter().map(|(_, kind, _)| Write::Listed {
        kind: (*kind).to_owned(),
        started_ms: 10,
        at_ms: 20,
    }));
    apply(db, cluster_id, &writes).await.unwrap();
}

/// A server with the inventory off and one registered (unreachable) cluster, `shop-1` in `prod`,
/// whose inventory [`write_inventory`] wrote: what the impact, rollout and posture tests start from.
pub(crate) struct Shop {
    pub server: TestServer,
    pub people: crate::support::People,
    pub viewer: String,
    pub cluster: palisade_app::clusters::Cluster,
}

pub(crate) async fn shop(backend: Backend) -> Shop {
    let server = TestServer::start(
        backend,
        &[
            ("PALISADE__SECRETS__KEY", KEY),
            ("PALISADE__INVENTORY__ENABLED", "false"),
        ],
    )
    .await;
    let people = server.people().await;
    let viewer = server.login_token(Role::Viewer).await;
    let cluster = server
        .api(&people.admin)
        .register_unreachable("shop-1", "prod")
        .await;
    write_inventory(&server.pool, &cluster.id).await;
    Shop {
        server,
        people,
        viewer,
        cluster,
    }
}

async fn impact_of(server: &TestServer, token: &str, body: Value) -> crate::support::Reply {
    server
        .call("POST", "/api/policy_impact", token, &body.to_string())
        .await
}

async fn impact_over_http(backend: Backend) {
    let Shop {
        server,
        people,
        viewer,
        ..
    } = shop(backend).await;
    let (_, approver_token) = server.user_token(Role::Approver).await;
    let baseline = server
        .api(&people.author)
        .adopt_new("pod-security-baseline")
        .await;

    // A key for its progress is held to its budget before anything is evaluated, and named.
    let long = "k".repeat(palisade_app::impact::ssr::progress::KEY_LIMIT + 1);
    let reply = impact_of(
        &server,
        &viewer,
        json!({"policy_id": baseline, "progress": long}),
    )
    .await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(reply.body.contains("progress"), "{}", reply.body);
    // A viewer may see the impact of a saved version, and how far it got while it ran: once it
    // has answered, nothing runs under its key any more.
    let reply = impact_of(
        &server,
        &viewer,
        json!({"policy_id": baseline, "progress": "k-1"}),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let after = server
        .call("POST", "/api/impact_progress", &viewer, "key=k-1")
        .await;
    assert_eq!((after.status, after.body.as_str()), (200, "null"));
    let impact = json_of(&reply);
    let shop = &impact["clusters"][0];
    assert_eq!(shop["cluster_name"], "shop-1");
    assert_eq!(shop["objects"], 7);
    assert!(shop["listed_ms"].as_i64().unwrap() > 0, "{shop:#}");
    assert!(shop["running"].is_null(), "{shop:#}");
    // Two workloads denied: the Deployment (through its two Pods) and the legacy Pod; both new.
    assert_eq!(
        (shop["deny"].as_i64(), shop["newly_denied"].as_i64()),
        (Some(2), Some(2)),
        "{shop:#}"
    );
    let denied: Vec<(String, i64)> = shop["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["action"] == "deny")
        .map(|w| {
            (
                format!(
                    "{}/{} {}",
                    w["namespace"].as_str().unwrap(),
                    w["owner_kind"].as_str().unwrap(),
                    w["owner_name"].as_str().unwrap()
                ),
                w["objects"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        denied,
        [
            ("legacy/Pod old".to_owned(), 1),
            ("shop/Deployment web".to_owned(), 2)
        ]
    );
    let web = shop["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["owner_name"] == "web" && w["action"] == "deny")
        .unwrap();
    assert!(
        web["message"].as_str().unwrap().contains("privileged"),
        "{web:#}"
    );
    assert_eq!(web["change"], "new");

    // An approved exception for the legacy namespace: that workload is shown as excepted.
    let request = json!({
        "policy": baseline,
        "scope": {"kind": "namespaces", "namespaces": ["legacy"]},
        "justification": "being retired this quarter",
        "ticket": "SEC-7",
        "expires_ms": palisade_app::db::now_ms() + 30 * DAY_MS,
    });
    let asked = server
        .call(
            "POST",
            "/api/v1/exceptions",
            &people.author,
            &request.to_string(),
        )
        .await;
    assert_eq!(asked.status, 201, "{}", asked.body);
    let id = json_of(&asked)["id"].as_str().unwrap().to_owned();
    let decided = server
        .call(
            "POST",
            &format!("/api/v1/exceptions/{id}/decision"),
            &approver_token,
            &json!({"approve": true, "comment": "ok"}).to_string(),
        )
        .await;
    assert_eq!(decided.status, 200, "{}", decided.body);
    let impact = json_of(&impact_of(&server, &viewer, json!({"policy_id": baseline})).await);
    let shop = &impact["clusters"][0];
    assert_eq!(
        (shop["deny"].as_i64(), shop["excepted"].as_i64()),
        (Some(1), Some(2)),
        "{shop:#}"
    );
    let old = shop["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["owner_name"] == "old" && w["action"] == "deny")
        .unwrap();
    assert_eq!(old["excepted"], true);

    // A draft: restricted instead of baseline also denies the clean Pod (it runs as root). Only
    // authors may preview drafts.
    let draft = json!({
        "policy_id": baseline,
        "draft": {"source": "apiVersion: palisade.dev/v1alpha1\nkind: PodSecurityEntry\nmetadata: {name: pod-security-baseline}\nspec: {level: restricted, version: latest}\n"},
    });
    let refused = impact_of(&server, &viewer, draft.clone()).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let reply = impact_of(&server, &people.author, draft).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let impact = json_of(&reply);
    assert!(impact["version"].is_null());
    let mut owners: Vec<&str> = impact["clusters"][0]["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["action"] == "deny" && w["excepted"] == false)
        .map(|w| w["owner_name"].as_str().unwrap())
        .collect();
    owners.sort_unstable();
    assert_eq!(owners, ["clean", "web"]);

    // The REST API gives the same impact, and its workloads as CSV; a wrong format is a 400.
    let rest = server
        .call(
            "GET",
            &format!("/api/v1/policies/{baseline}/impact"),
            &viewer,
            "",
        )
        .await;
    assert_eq!(rest.status, 200, "{}", rest.body);
    assert_eq!(json_of(&rest)["clusters"][0]["deny"], 1);
    let csv = server
        .call(
            "GET",
            &format!("/api/v1/policies/{baseline}/impact?format=csv&version=1"),
            &viewer,
            "",
        )
        .await;
    assert_eq!(csv.status, 200, "{}", csv.body);
    assert_eq!(csv.headers["content-type"], "text/csv; charset=utf-8");
    let lines: Vec<&str> = csv.body.trim_end().split("\r\n").collect();
    assert_eq!(
        lines[0],
        "cluster,environment,namespace,owner_kind,owner_name,action,excepted,change,objects,examples,message"
    );
    assert!(
        lines.iter().any(|l| l.starts_with(
            "shop-1,prod,shop,Deployment,web,deny,false,new,2,Pod/web-1-a Pod/web-1-b,"
        )),
        "{}",
        csv.body
    );
    let wrong = server
        .call(
            "GET",
            &format!("/api/v1/policies/{baseline}/impact?format=xml"),
            &viewer,
            "",
        )
        .await;
    wrong.assert_says(400, "format");

    // A broken draft is a 400 that names the source and where.
    let broken = impact_of(
        &server,
        &people.author,
        json!({"policy_id": baseline, "draft": {"source": "kind: [unclosed"}}),
    )
    .await;
    broken.assert_says(400, "source");
    // An unknown policy is a 404.
    let missing = impact_of(&server, &viewer, json!({"policy_id": "no-such-policy"})).await;
    assert_eq!(missing.status, 404, "{}", missing.body);
    server.stop().await;
}

on_each_database!(impact_over_http: sqlite_impact_over_http, postgres_impact_over_http);

/// Pods (and one Deployment) that Pod Security and the privileged/host-namespace policies judge
/// differently.
pub(crate) fn varied(namespace: &str) -> Vec<Value> {
    let container = |security: Value| json!({"name": "c", "image": "registry.example/app:1", "securityContext": security});
    let hardened = json!({
        "runAsNonRoot": true, "runAsUser": 1000, "allowPrivilegeEscalation": false,
        "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"},
    });
    let pod = |name: &str, spec: Value| json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace}, "spec": spec});
    let plain = container(json!({}));
    vec![
        pod(
            "hardened",
            json!({"containers": [container(hardened.clone())]}),
        ),
        pod("root", json!({"containers": [plain.clone()]})),
        pod(
            "privileged",
            json!({"containers": [container(json!({"privileged": true}))]}),
        ),
        pod(
            "host-pid",
            json!({"hostPID": true, "containers": [plain.clone()]}),
        ),
        pod(
            "host-network",
            json!({"hostNetwork": true, "containers": [plain.clone()]}),
        ),
        pod(
            "host-path",
            json!({"containers": [plain.clone()], "volumes": [{"name": "h", "hostPath": {"path": "/var/log"}}]}),
        ),
        pod(
            "net-admin",
            json!({"containers": [container(json!({"capabilities": {"add": ["NET_ADMIN"]}}))]}),
        ),
        pod(
            "host-port",
            json!({"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80, "hostPort": 8080}]}]}),
        ),
        pod(
            "escalates",
            json!({"containers": [container(json!({"runAsNonRoot": true, "runAsUser": 1000, "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}))]}),
        ),
        pod(
            "init-privileged",
            json!({"initContainers": [{"name": "init", "image": "i", "securityContext": {"privileged": true}}], "containers": [container(hardened)]}),
        ),
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "template-privileged", "namespace": namespace},
            "spec": {"selector": {"matchLabels": {"app": "t"}}, "template": {"metadata": {"labels": {"app": "t"}},
                     "spec": {"containers": [container(json!({"privileged": true}))]}}},
        }),
    ]
}

/// The object as a person would send it again under another name: what they wrote, not what
/// the cluster added.
fn again(object: &Value) -> Value {
    let metadata = &object["metadata"];
    json!({
        "apiVersion": object["apiVersion"], "kind": object["kind"],
        "metadata": {
            "name": format!("{}-again", metadata["name"].as_str().unwrap()),
            "namespace": metadata["namespace"],
            "labels": metadata.get("labels").cloned().unwrap_or(json!({})),
        },
        "spec": object["spec"],
    })
}

/// Dry-run create of `object`: `Some(message)` when admission refuses it.
async fn refusal(client: &kube::Client, object: &Value) -> Option<String> {
    use kube::api::{Api, DynamicObject, PostParams};
    use kube::discovery::ApiResource;
    let api_version = object["apiVersion"].as_str().unwrap();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let kind = object["kind"].as_str().unwrap();
    let resource = ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk(group, version, kind));
    let api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        object["metadata"]["namespace"].as_str().unwrap(),
        &resource,
    );
    let params = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let typed: DynamicObject = serde_json::from_value(object.clone()).unwrap();
    match api.create(&params, &typed).await {
        Ok(_) => None,
        // Pod Security answers 403; a ValidatingAdmissionPolicy its `reason` (422 for Invalid).
        Err(kube::Error::Api(status)) if status.message.contains(" is forbidden: ") => {
            Some(status.message)
        }
        Err(err) => panic!("dry-run create of {}: {err}", object["metadata"]["name"]),
    }
}

/// For each policy: what impact says enforcing it would deny in the test namespace, then the same
/// enforced on the real apiserver and every inventoried object sent again (dry run): the same
/// objects are refused, and the apiserver's refusal carries the engine's message.
#[tokio::test]
async fn impact_is_what_the_cluster_then_does() {
    use palisade_app::clusters::ssr::{ClusterConnector, KubeConnector};
    use palisade_app::policies::Mode;

    let testbed = crate::support::testbed_alone().await;
    let cluster = &testbed.clusters[0];
    let server = TestServer::with_key(&[("PALISADE__INVENTORY__LEASE_SECS", "3")]).await;
    let people = server.people().await;
    let viewer = server.login_token(Role::Viewer).await;
    let registered = server
        .api(&people.admin)
        .register_bed_cluster("impact-1", "staging", cluster)
        .await;
    let admin = cluster.admin_client().await.unwrap();
    let admin_credentials = crate::support::kubeconfig_credentials(&cluster.admin_kubeconfig);
    let connector = KubeConnector::default();

    let namespace = palisade_testbed::unique_name("impact-it");
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}});
    connector.apply(&admin_credentials, &ns).await.unwrap();
    let objects = varied(&namespace);
    // Until admission has dropped what an earlier run left, nothing here can be created.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(45);
    for object in &objects {
        while refusal(&admin, object).await.is_some() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "a policy left by an earlier run still refuses {}",
                object["metadata"]["name"]
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    for object in &objects {
        connector.apply(&admin_credentials, object).await.unwrap();
    }
    // The keeper picks them up.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let held = loop {
        let held: Vec<Value> =
            palisade_app::inventory::ssr::service::all_objects(&server.pool, &registered.id)
                .await
                .unwrap()
                .into_iter()
                .filter(|o| o["metadata"]["namespace"] == namespace.as_str())
                .collect();
        if held.len() == objects.len() {
            break held;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the inventory holds {} of {} objects",
            held.len(),
            objects.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    let mut checked = Vec::new();
    for entry in [
        "pod-security-baseline",
        "pod-security-restricted",
        "disallow-privileged",
        "disallow-host-namespaces",
    ] {
        let policy = server.api(&people.author).adopt_new(entry).await;
        let reply = impact_of(&server, &viewer, json!({"policy_id": policy})).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let impact = json_of(&reply);
        let here = impact["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["cluster_id"] == registered.id.as_str())
            .unwrap();
        assert!(
            here["unreadable"].as_array().unwrap().is_empty(),
            "{here:#}"
        );
        // Every object here is its own workload (no controller runs in the test bed).
        let predicted: std::collections::BTreeMap<String, String> = here["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|w| w["namespace"] == namespace.as_str() && w["action"] == "deny")
            .map(|w| {
                (
                    format!(
                        "{}/{}",
                        w["owner_kind"].as_str().unwrap(),
                        w["owner_name"].as_str().unwrap()
                    ),
                    w["message"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert!(
            !predicted.is_empty(),
            "{entry}: the test objects should be denied by it"
        );

        // Enforce it for real.
        let version = server
            .api(&viewer)
            .get::<Value>(&format!("/api/v1/policies/{policy}"))
            .await;
        let content: palisade_app::policies::Content =
            serde_json::from_value(version["current"].clone()).unwrap();
        let manifests = palisade_app::policies::ssr::render::desired_objects(
            &content,
            Mode::Enforce,
            std::slice::from_ref(&namespace),
            &[],
        )
        .unwrap();
        // Other tests roll out the library's policies under these names to the same clusters at
        // the same time: enforced here under names of this run, and only in this namespace.
        let suffix = namespace.rsplit('-').next().unwrap().to_owned();
        let manifests = own_names(manifests, &namespace, &suffix);
        for manifest in &manifests {
            connector.apply(&admin_credentials, manifest).await.unwrap();
        }
        // Admission takes the new policy within seconds: wait until one predicted denial holds.
        let (probe, _) = predicted.iter().next().unwrap();
        let probe_object = held
            .iter()
            .find(|o| {
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap(),
                    o["metadata"]["name"].as_str().unwrap()
                ) == *probe
            })
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(45);
        while refusal(&admin, &again(probe_object)).await.is_none() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{entry}: never enforced"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let mut refused = std::collections::BTreeMap::new();
        for object in &held {
            if let Some(message) = refusal(&admin, &again(object)).await {
                refused.insert(
                    format!(
                        "{}/{}",
                        object["kind"].as_str().unwrap(),
                        object["metadata"]["name"].as_str().unwrap()
                    ),
                    message,
                );
            }
        }
        assert_eq!(
            predicted.keys().collect::<Vec<_>>(),
            refused.keys().collect::<Vec<_>>(),
            "{entry}: impact and the apiserver disagree on what is denied"
        );
        for (object, message) in &predicted {
            // The apiserver names the object sent (`…-again`); the engine's text is inside.
            let said = &refused[object];
            let expected = message.replace(
                &format!("\"{}\"", object.split('/').nth(1).unwrap()),
                &format!("\"{}-again\"", object.split('/').nth(1).unwrap()),
            );
            let renamed =
                |text: &str| text.replace(&format!("'{entry}'"), &format!("'{entry}-{suffix}'"));
            assert!(
                said.contains(&renamed(&expected)) || said.contains(&renamed(message)),
                "{entry} {object}: the apiserver said {said:?}, impact said {message:?}"
            );
        }
        checked.push(format!("{entry}: {} denied", predicted.len()));

        // Undo: labels off the namespace, admission objects deleted.
        for manifest in &manifests {
            if manifest["kind"] == "Namespace" {
                let bare = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}});
                connector.apply(&admin_credentials, &bare).await.unwrap();
            } else {
                connector
                    .delete(&admin_credentials, manifest)
                    .await
                    .unwrap();
            }
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(45);
        while refusal(&admin, &again(probe_object)).await.is_some() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{entry}: never lifted"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    println!("impact agreed with the apiserver: {}", checked.join("; "));
    palisade_testbed::delete_namespace(&admin, &namespace)
        .await
        .unwrap();
    server.stop().await;
}

/// The admission policies and bindings among `manifests` renamed with `suffix`, each binding
/// matching only `namespace`: what one test enforces cannot deny another test's objects, and
/// nothing it leaves behind matters to a later run.
fn own_names(manifests: Vec<Value>, namespace: &str, suffix: &str) -> Vec<Value> {
    manifests
        .into_iter()
        .map(|mut manifest| {
            let kind = manifest["kind"].as_str().unwrap_or_default().to_owned();
            if kind.starts_with("ValidatingAdmissionPolicy") {
                let name = manifest["metadata"]["name"].as_str().unwrap().to_owned();
                manifest["metadata"]["name"] = json!(format!("{name}-{suffix}"));
            }
            if kind == "ValidatingAdmissionPolicyBinding" {
                let policy = manifest["spec"]["policyName"].as_str().unwrap().to_owned();
                manifest["spec"]["policyName"] = json!(format!("{policy}-{suffix}"));
                manifest["spec"]["matchResources"]["namespaceSelector"] = json!({
                    "matchLabels": { "kubernetes.io/metadata.name": namespace }
                });
            }
            manifest
        })
        .collect()
}

/// `count` Pods in namespace `bulk`, one in ten privileged, as the keeper would have written them.
async fn write_bulk_pods(db: &palisade_app::db::Db, cluster_id: &str, count: usize) {
    let writes: Vec<Write> = (0..count)
        .map(|i| {
            let mut pod = pod("bulk", &format!("p-{i}"), None, i % 10 == 0);
            // A container name of its own (which the policies' messages read), so that no two
            // Pods are copies of one template and each is judged on its own, as long as before.
            pod["spec"]["containers"][0]["name"] = json!(format!("c-{i}"));
            Write::Put {
                held: held(pod).unwrap(),
                seen_ms: 10,
            }
        })
        .collect();
    for chunk in writes.chunks(2_000) {
        apply(db, cluster_id, chunk).await.unwrap();
    }
    // As the keeper marks a kind changed after its watch events: the kind's count follows.
    let changed = Write::Changed {
        kind: "Pod".to_owned(),
        at_ms: 30,
    };
    apply(db, cluster_id, &[changed]).await.unwrap();
}

/// Two replicas on one PostgreSQL database, each a process of its own: while one computes an
/// impact over a large inventory, the other answers how far it has got (from the count the first
/// writes a few times a second), only to the person who asked, and nothing once it has answered.
#[tokio::test]
async fn another_replica_process_reports_how_far_an_impact_has_got() {
    use crate::support::{request, scratch_dir, Serving};

    let Shop {
        server,
        people,
        viewer,
        cluster,
    } = shop(Backend::Postgres).await;
    write_bulk_pods(&server.pool, &cluster.id, 10_000).await;
    let policy = server
        .api(&people.author)
        .adopt_new("disallow-privileged")
        .await;
    let dir = scratch_dir("palisade_second_replica");
    let other = Serving::start(
        &dir,
        &[
            ("PALISADE__DATABASE__URL", server.db.url.as_str()),
            ("PALISADE__SECRETS__KEY", KEY),
            ("PALISADE__INVENTORY__ENABLED", "false"),
            ("PALISADE__INGEST__SCAN_INTERVAL_SECS", "0"),
        ],
    );
    let other_addr = other.addr;
    let ask_other = |token: String| async move {
        let bearer = format!("Bearer {token}");
        let reply = request(
            other_addr,
            "POST",
            "/api/impact_progress",
            &[
                ("authorization", &bearer),
                ("content-type", "application/json"),
            ],
            "key=far-1",
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        serde_json::from_str::<Value>(&reply.body).unwrap()
    };

    let (addr, token) = (server.addr, viewer.clone());
    let body = json!({"policy_id": policy, "progress": "far-1"}).to_string();
    let impact = tokio::spawn(async move {
        let bearer = format!("Bearer {token}");
        request(
            addr,
            "POST",
            "/api/policy_impact",
            &[
                ("authorization", &bearer),
                ("content-type", "application/json"),
            ],
            &body,
        )
        .await
    });
    let mut seen: Vec<(i64, i64)> = Vec::new();
    let mut others_seen = Vec::new();
    while !impact.is_finished() {
        let so_far = ask_other(viewer.clone()).await;
        if !so_far.is_null() {
            seen.push((
                so_far["done"].as_i64().unwrap(),
                so_far["total"].as_i64().unwrap(),
            ));
            // Another person asking under the same key sees nothing.
            others_seen.push(ask_other(people.author.clone()).await);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let reply = impact.await.unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    let objects = json_of(&reply)["clusters"][0]["objects"].as_i64().unwrap();
    assert!(objects > 10_000, "{objects}");

    // The other replica saw the count grow while it ran, against every object of the inventory.
    assert!(
        seen.iter().any(|&(done, total)| done > 0 && done < total),
        "no count part way through: {seen:?}"
    );
    assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0), "{seen:?}");
    assert!(
        seen.iter()
            .all(|&(done, total)| total == 0 || (total == objects && done <= total)),
        "{seen:?} of {objects}"
    );
    assert!(others_seen.iter().all(Value::is_null), "{others_seen:?}");
    // Once the answer is out, neither replica has anything under that key.
    assert!(ask_other(viewer.clone()).await.is_null());
    let here = server
        .call("POST", "/api/impact_progress", &viewer, "key=far-1")
        .await;
    assert_eq!((here.status, here.body.as_str()), (200, "null"));

    let (exit, rest) = other.stop().await;
    assert!(exit.success(), "exit {exit:?}: {rest}");
    let _ = std::fs::remove_dir_all(&dir);
    server.stop().await;
}
