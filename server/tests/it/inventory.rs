//! The inventory on both databases, with a fake cluster behind the connector trait: what the
//! keeper copies, how a later list forgets what is gone, how a refused kind names the rule it
//! lacks, how a second replica takes a cluster over when the first stops renewing its lease, and
//! how replicas split the clusters between them.
//! Against the real kube-apiservers of the test bed: the keeper's watches, and how it catches up
//! after the network to a cluster is cut and comes back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use palisade_app::auth::{Principal, Role};
use palisade_app::clusters::ssr::{
    service, Applied, BoxFuture, ClusterConnector, ClusterError, Context, Credentials, Probe,
};
use palisade_app::clusters::{Capabilities, ClusterChange, CredentialsInput, NewCluster};
use palisade_app::inventory::ssr::keeper::{Keeper, Settings};
use palisade_app::inventory::ssr::{queries, service as inventory};
use palisade_app::inventory::ClusterInventory;
use palisade_app::secrets::Sealer;
use serde_json::{json, Value};

use crate::proxy::Proxy;
use crate::support::{on_each_database, Backend, TestServer, KEY};

/// A cluster holding objects by kind that it lists on request, and refusing to list Ingresses.
#[derive(Default)]
struct Listed {
    objects: Mutex<HashMap<String, Vec<Value>>>,
}

impl Listed {
    fn set(&self, kind: &str, objects: Vec<Value>) {
        self.objects
            .lock()
            .unwrap()
            .insert(kind.to_owned(), objects);
    }
}

impl ClusterConnector for Listed {
    fn probe<'a>(&'a self, _: &'a Credentials) -> BoxFuture<'a, Result<Probe, ClusterError>> {
        Box::pin(async {
            Ok(Probe {
                version: "v1.37.2".into(),
                capabilities: Capabilities::default(),
            })
        })
    }
    fn apply<'a>(
        &'a self,
        _: &'a Credentials,
        manifest: &'a Value,
    ) -> BoxFuture<'a, Result<Applied, ClusterError>> {
        Box::pin(async move { Ok(Applied::quietly(manifest.clone())) })
    }
    fn get<'a>(
        &'a self,
        _: &'a Credentials,
        _: &'a Value,
    ) -> BoxFuture<'a, Result<Option<Value>, ClusterError>> {
        Box::pin(async { Ok(None) })
    }
    fn delete<'a>(
        &'a self,
        _: &'a Credentials,
        _: &'a Value,
    ) -> BoxFuture<'a, Result<bool, ClusterError>> {
        Box::pin(async { Ok(false) })
    }
    fn list<'a>(
        &'a self,
        _: &'a Credentials,
        _api_version: &'a str,
        kind: &'a str,
        continue_token: Option<&'a str>,
        _limit: u32,
    ) -> BoxFuture<'a, Result<palisade_app::clusters::ssr::connector::ListPage, ClusterError>> {
        Box::pin(async move {
            if kind == "Ingress" {
                return Err(ClusterError::Api {
                    code: 403,
                    message: "ingresses.networking.k8s.io is forbidden: User \"palisade\" cannot list resource \"ingresses\"".into(),
                });
            }
            // Two pages: the first object, then the rest.
            let all = self
                .objects
                .lock()
                .unwrap()
                .get(kind)
                .cloned()
                .unwrap_or_default();
            Ok(match continue_token {
                None if all.len() > 1 => (all[..1].to_vec(), Some("more".to_owned())),
                None => (all, None),
                Some(_) => (all[1..].to_vec(), None),
            })
        })
    }
}

fn deployment(name: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {
            "name": name, "namespace": "team", "uid": format!("uid-{name}"),
            "managedFields": [{"manager": "kubectl", "operation": "Apply"}],
        },
        "spec": {"replicas": 1},
    })
}

fn kind<'a>(
    inventory: &'a ClusterInventory,
    kind: &str,
) -> &'a palisade_app::inventory::KindInventory {
    inventory.kinds.iter().find(|k| k.kind == kind).unwrap()
}

/// Polls `check` on the cluster's inventory every 50 ms for up to `within`.
async fn eventually(
    db: &palisade_app::db::Db,
    cluster_id: &str,
    within: Duration,
    what: &str,
    check: impl Fn(&ClusterInventory) -> bool,
) -> ClusterInventory {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let got = inventory::of_cluster(db, cluster_id).await.unwrap();
        if check(&got) {
            return got;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("{what}: not so within {within:?}: {got:#?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn the_keeper_copies_forgets_and_hands_over(backend: Backend) {
    // The server's own keeper is off: this test runs its replicas itself.
    let server = TestServer::start(backend, &[("PALISADE__INVENTORY__ENABLED", "false")]).await;
    let db = server.pool.clone();
    let sealer = Arc::new(Sealer::from_hex(KEY).unwrap());
    let fake = Arc::new(Listed::default());
    fake.set("Deployment", vec![deployment("web"), deployment("api")]);
    fake.set(
        "Namespace",
        vec![json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team", "uid": "uid-ns"}})],
    );
    let admin = Principal::new("u-admin", "Ada Admin", Role::Admin);
    let ctx = Context {
        db: &db,
        sealer: Some(&sealer),
        connector: fake.as_ref(),
    };
    let cluster = register(
        &ctx,
        &admin,
        "staging-1",
        "staging",
        "https://10.1.2.3:6443",
    )
    .await;

    let settings = Settings {
        // Long enough that a round slowed by a busy machine (every test writing to SQLite at
        // once) still renews in time; short enough to keep the test quick.
        lease: Duration::from_secs(3),
        relist: Duration::from_millis(300),
        max_clusters: 100,
    };
    // The first replica has a pool of its own, as a replica in its own process would: when it
    // dies below, what it had in flight dies with it instead of lingering in the server's pool.
    let first_db = palisade_app::db::Db::connect(
        &palisade_app::db::DatabaseUrl::parse(&server.db.url).unwrap(),
        &palisade_app::db::PoolSettings {
            max_connections: 4,
            connect_timeout: Duration::from_secs(5),
        },
    )
    .await
    .unwrap();
    let first = Arc::new(Keeper::new(
        first_db,
        Some(sealer.clone()),
        fake.clone(),
        settings.clone(),
    ));
    let (stop_first, stopped) = tokio::sync::watch::channel(false);
    let first_task = tokio::spawn(first.clone().run(stopped));

    // Both pages of Deployments are copied, without managedFields; the refused kind says why and
    // what rule it lacks; kinds the cluster has none of are listed and empty.
    let got = eventually(
        &db,
        &cluster.id,
        Duration::from_secs(10),
        "two deployments",
        |i| {
            kind(i, "Deployment").objects == 2
                && !kind(i, "Ingress").error.is_empty()
                && kind(i, "Service").listed_ms > 0
                && kind(i, "Namespace").objects == 1
        },
    )
    .await;
    assert!(kind(&got, "Deployment").listed_ms > 0);
    assert_eq!(kind(&got, "Namespace").objects, 1);
    let ingress = kind(&got, "Ingress");
    assert!(ingress.error.contains("403"), "{ingress:?}");
    assert_eq!(
        ingress.needs,
        "get, list, watch on \"networking.k8s.io\" ingresses"
    );
    assert!(kind(&got, "Service").listed_ms > 0 && kind(&got, "Service").error.is_empty());
    assert_eq!(got.objects(), 3);
    let objects = inventory::all_objects(&db, &cluster.id).await.unwrap();
    assert_eq!(objects.len(), 3);
    for object in &objects {
        assert!(
            object["metadata"].get("managedFields").is_none(),
            "{object}"
        );
    }

    // A later list no longer names `api`: it is forgotten; a new one appears.
    fake.set("Deployment", vec![deployment("web"), deployment("worker")]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let names: Vec<String> = inventory::all_objects(&db, &cluster.id)
            .await
            .unwrap()
            .into_iter()
            .filter(|o| o["kind"] == "Deployment")
            .map(|o| o["metadata"]["name"].as_str().unwrap().to_owned())
            .collect();
        if names.contains(&"worker".to_owned()) && !names.contains(&"api".to_owned()) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "still {names:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A second replica waits while the first renews its lease.
    let second = Arc::new(Keeper::new(
        db.clone(),
        Some(sealer.clone()),
        fake.clone(),
        settings.clone(),
    ));
    let (stop_second, stopped) = tokio::sync::watch::channel(false);
    let second_task = tokio::spawn(second.clone().run(stopped));
    tokio::time::sleep(settings.lease + Duration::from_millis(600)).await;
    let (holder, _) = queries::lease_of(db.pool(), &cluster.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(holder, first.holder(), "the first replica still renews");

    // The first replica dies without letting go: the second takes the cluster within a lease.
    first_task.abort();
    let died = tokio::time::Instant::now();
    loop {
        let (holder, until) = queries::lease_of(db.pool(), &cluster.id)
            .await
            .unwrap()
            .unwrap();
        if holder == second.holder() {
            break;
        }
        // The lease runs out at most one lease after the death, and the second replica claims it
        // at its next round (a third of a lease later). The rest is slack for rounds slowed by
        // every other test writing to the same machine's disks at once: this checks that the
        // cluster is handed over, not how fast (the figure is the setting's, not a timing here).
        if died.elapsed() >= settings.lease * 4 {
            let replicas: Vec<(String, i64)> =
                sqlx::query_as("SELECT holder, until_ms FROM inventory_replicas")
                    .fetch_all(db.pool())
                    .await
                    .unwrap();
            panic!(
                "the second replica did not take over within four lease periods: the lease is \
                 {holder}'s until {until} (now {}; first {}, second {}); replicas {replicas:?}",
                palisade_app::db::now_ms(),
                first.holder(),
                second.holder()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(stop_first);
    // It keeps the copy fresh: a change made now arrives through it.
    fake.set("Deployment", vec![deployment("web")]);
    eventually(
        &db,
        &cluster.id,
        Duration::from_secs(10),
        "one deployment",
        |i| kind(i, "Deployment").objects == 1,
    )
    .await;
    // The Clusters list reads a page of clusters' inventories at once: the same as each alone.
    let reader = server.people().await.author;
    let page = server
        .call("POST", "/api/inventory_page", &reader, "")
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let page: Vec<ClusterInventory> = serde_json::from_str(&page.body).unwrap();
    let alone = inventory::of_cluster(&db, &cluster.id).await.unwrap();
    // The keeper keeps working between the two reads (a kind may be listed again, seen under load
    // in the full test run), so what is compared is what they hold, not when it was listed.
    let held = |inventories: &[ClusterInventory]| -> Vec<String> {
        inventories
            .iter()
            .flat_map(|i| {
                i.kinds
                    .iter()
                    .map(move |k| format!("{} {} {} {}", i.cluster_id, k.kind, k.objects, k.error))
            })
            .collect()
    };
    assert_eq!(held(&page), held(std::slice::from_ref(&alone)));
    assert_eq!(page[0].objects(), 2, "{page:?}");

    // A disabled cluster's copy is forgotten.
    service::update(
        &ctx,
        &admin,
        2,
        &cluster.id,
        ClusterChange {
            disabled: Some(true),
            ..ClusterChange::default()
        },
    )
    .await
    .unwrap();
    eventually(
        &db,
        &cluster.id,
        Duration::from_secs(10),
        "forgotten",
        |i| i.objects() == 0 && i.kinds.iter().all(|k| k.listed_ms == 0),
    )
    .await;

    stop_keeper(stop_second, second_task, Duration::from_secs(5)).await;
    server.stop().await;
}

on_each_database!(
    the_keeper_copies_forgets_and_hands_over:
    sqlite_the_keeper_copies_forgets_and_hands_over,
    postgres_the_keeper_copies_forgets_and_hands_over
);

/// Register a token-authenticated cluster behind the fake connector.
async fn register(
    ctx: &Context<'_>,
    admin: &Principal,
    name: &str,
    environment: &str,
    api_url: &str,
) -> palisade_app::clusters::Cluster {
    service::register(
        ctx,
        admin,
        1,
        NewCluster {
            name: name.into(),
            environment: environment.into(),
            labels: Default::default(),
            credentials: CredentialsInput::Token {
                api_url: api_url.into(),
                ca_pem: String::new(),
                token: "t0k3n".into(),
            },
        },
    )
    .await
    .unwrap()
}

/// Tell a keeper to stop and wait, at most `within`, until it has.
async fn stop_keeper(
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    within: Duration,
) {
    stop.send(true).unwrap();
    tokio::time::timeout(within, task)
        .await
        .expect("the keeper stops when told")
        .unwrap();
}

/// How many clusters each replica holds a live lease on.
async fn holdings(db: &palisade_app::db::Db, now: i64) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for lease in queries::leases(db.pool()).await.unwrap() {
        if lease.until_ms >= now && !lease.holder.is_empty() {
            *counts.entry(lease.holder).or_insert(0) += 1;
        }
    }
    counts
}

/// Replicas split the clusters: a second replica started beside one holding all four ends up
/// with two, the first letting two go; when the second stops, the first takes all four back.
async fn replicas_split_the_clusters(backend: Backend) {
    let server = TestServer::start(backend, &[("PALISADE__INVENTORY__ENABLED", "false")]).await;
    let db = server.pool.clone();
    let sealer = Arc::new(Sealer::from_hex(KEY).unwrap());
    let fake = Arc::new(Listed::default());
    let admin = Principal::new("u-admin", "Ada Admin", Role::Admin);
    let ctx = Context {
        db: &db,
        sealer: Some(&sealer),
        connector: fake.as_ref(),
    };
    for n in 0..4 {
        let api_url = format!("https://10.1.2.{n}:6443");
        register(&ctx, &admin, &format!("edge-{n}"), "edge", &api_url).await;
    }
    let settings = Settings {
        lease: Duration::from_secs(3),
        relist: Duration::from_millis(300),
        max_clusters: 100,
    };
    let start = |settings: Settings| {
        let keeper = Arc::new(Keeper::new(
            db.clone(),
            Some(sealer.clone()),
            fake.clone(),
            settings,
        ));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(keeper.clone().run(stopped));
        (keeper, stop, task)
    };
    type Check = Box<dyn Fn(&HashMap<String, usize>) -> bool>;
    let until = |want: &'static str, check: Check| {
        let db = db.clone();
        async move {
            let started = tokio::time::Instant::now();
            loop {
                let counts = holdings(&db, palisade_app::db::now_ms()).await;
                if check(&counts) {
                    return counts;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "{want}: {counts:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let (first, stop_first, first_task) = start(settings.clone());
    let a = first.holder().to_owned();
    until("the first replica holds all four", {
        let a = a.clone();
        Box::new(move |c| c.get(&a) == Some(&4))
    })
    .await;
    let (second, stop_second, second_task) = start(settings.clone());
    let b = second.holder().to_owned();
    let split = until("two each", {
        let (a, b) = (a.clone(), b.clone());
        Box::new(move |c| c.get(&a) == Some(&2) && c.get(&b) == Some(&2))
    })
    .await;
    assert_eq!(split.values().sum::<usize>(), 4);
    // The second stops (and says so): the first takes its two back.
    // (Generous: letting go writes each lease, and every test writes to SQLite at once.)
    stop_keeper(stop_second, second_task, Duration::from_secs(30)).await;
    until("the first replica holds all four again", {
        let a = a.clone();
        Box::new(move |c| c.get(&a) == Some(&4) && c.len() == 1)
    })
    .await;
    stop_keeper(stop_first, first_task, Duration::from_secs(30)).await;
    server.stop().await;
}

on_each_database!(
    replicas_split_the_clusters:
    sqlite_replicas_split_the_clusters,
    postgres_replicas_split_the_clusters
);

/// The object of `kind` named `namespace/name` in the cluster's inventory, if held.
async fn held(
    db: &palisade_app::db::Db,
    cluster_id: &str,
    kind: &str,
    name: &str,
) -> Option<Value> {
    let (namespace, name) = name.split_once('/').unwrap();
    inventory::all_objects(db, cluster_id)
        .await
        .unwrap()
        .into_iter()
        .find(|o| {
            o["kind"] == kind
                && o["metadata"]["namespace"] == namespace
                && o["metadata"]["name"] == name
        })
}

async fn wait_until_held(
    db: &palisade_app::db::Db,
    cluster_id: &str,
    kind: &str,
    name: &str,
    held_or_gone: bool,
    within: Duration,
) -> Duration {
    let started = tokio::time::Instant::now();
    loop {
        if held(db, cluster_id, kind, name).await.is_some() == held_or_gone {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "{kind} {name}: {} within {within:?}",
            if held_or_gone {
                "not copied"
            } else {
                "not forgotten"
            }
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A keeper of the test bed's clusters, as a replica runs it, with a short lease.
fn bed_keeper(db: &palisade_app::db::Db) -> Arc<Keeper> {
    use palisade_app::clusters::ssr::KubeConnector;
    Arc::new(Keeper::new(
        db.clone(),
        Some(Arc::new(Sealer::from_hex(KEY).unwrap())),
        Arc::new(KubeConnector::default()),
        Settings {
            lease: Duration::from_secs(2),
            relist: Duration::from_secs(300),
            max_clusters: 100,
        },
    ))
}

/// Wait until every kind of cluster `id` is listed, and require that none is refused.
async fn every_kind_listed(db: &palisade_app::db::Db, id: &str) -> ClusterInventory {
    let listed = eventually(db, id, Duration::from_secs(30), "every kind listed", |i| {
        i.kinds.iter().all(|k| k.listed_ms > 0)
    })
    .await;
    assert_eq!(listed.unreadable().count(), 0, "{listed:#?}");
    listed
}

/// A namespace of its own for a test, made by the test bed's admin; its name.
async fn new_namespace(admin: &kube::Client, prefix: &str) -> String {
    use k8s_openapi::api::core::v1::Namespace;
    use kube::api::{Api, PostParams};
    let namespace = palisade_testbed::unique_name(prefix);
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": namespace}})).unwrap();
    Api::<Namespace>::all(admin.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    namespace
}

/// Delete Deployment `name` and wait until the apiserver no longer has it.
async fn delete_deployment(
    deployments: &kube::Api<k8s_openapi::api::apps::v1::Deployment>,
    name: &str,
) {
    deployments
        .delete(name, &kube::api::DeleteParams::default())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while deployments.get_opt(name).await.unwrap().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the apiserver still has Deployment {name}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Against a real kube-apiserver, with Palisade's least-privilege credentials: every kind is
/// readable, a new Deployment arrives through the watch within seconds, owners resolve from a Pod
/// to its Deployment, and after the watch is cut (its replica dies) the replica that takes over
/// lists again and forgets what was deleted meanwhile.
#[tokio::test]
async fn the_keeper_watches_a_real_cluster() {
    use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, DeleteParams, PostParams};
    use palisade_app::inventory::ssr::owners::Owners;

    let testbed = crate::support::testbed().await;
    let cluster = &testbed.clusters[0];
    let server = TestServer::with_key(&[("PALISADE__INVENTORY__ENABLED", "false")]).await;
    let db = server.pool.clone();
    let people = server.people().await;
    let registered = server
        .api(&people.admin)
        .register_bed_cluster("inventory-1", "staging", cluster)
        .await;
    let id = registered.id.clone();

    let first = bed_keeper(&db);
    let (_stop_first, stopped) = tokio::sync::watch::channel(false);
    let first_task = tokio::spawn(first.clone().run(stopped));

    // Every kind is listed; none is refused to Palisade's role.
    let listed = every_kind_listed(&db, &id).await;
    assert!(kind(&listed, "Namespace").objects >= 4, "{listed:#?}");
    assert!(kind(&listed, "ClusterRole").objects > 10, "{listed:#?}");

    // A Deployment, a ReplicaSet it controls and a Pod of that ReplicaSet, made by the admin.
    let admin = cluster.admin_client().await.unwrap();
    let namespace = new_namespace(&admin, "inventory-it").await;
    let labels = json!({"app": "web"});
    let template = json!({
        "metadata": {"labels": labels},
        "spec": {"containers": [{"name": "web", "image": "registry.example/web:1.0"}]},
    });
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), &namespace);
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": labels}, "template": template},
    }))
    .unwrap();
    let deployment = deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    let owner = |kind: &str, name: &str, uid: &Option<String>| {
        json!([{
            "apiVersion": "apps/v1", "kind": kind, "name": name,
            "uid": uid.clone().unwrap(), "controller": true,
        }])
    };
    let replicasets: Api<ReplicaSet> = Api::namespaced(admin.clone(), &namespace);
    let replicaset: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": "web-1", "ownerReferences": owner("Deployment", "web", &deployment.metadata.uid)},
        "spec": {"selector": {"matchLabels": labels}, "template": template},
    }))
    .unwrap();
    let replicaset = replicasets
        .create(&PostParams::default(), &replicaset)
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(admin.clone(), &namespace);
    let mut pod = template.clone();
    pod["metadata"]["name"] = json!("web-1-a");
    pod["metadata"]["ownerReferences"] = owner("ReplicaSet", "web-1", &replicaset.metadata.uid);
    let pod: Pod = serde_json::from_value(pod).unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();

    let arrived = wait_until_held(
        &db,
        &id,
        "Pod",
        &format!("{namespace}/web-1-a"),
        true,
        Duration::from_secs(10),
    )
    .await;
    println!("a new Pod reached the inventory {arrived:?} after it was created");
    wait_until_held(
        &db,
        &id,
        "Deployment",
        &format!("{namespace}/web"),
        true,
        Duration::from_secs(10),
    )
    .await;
    let copied = held(&db, &id, "Deployment", &format!("{namespace}/web"))
        .await
        .unwrap();
    assert!(
        copied["metadata"].get("managedFields").is_none(),
        "{copied}"
    );
    assert_eq!(copied["apiVersion"], "apps/v1");

    // Owners resolve through the copy: the Pod belongs to the Deployment.
    let mut owners = Owners::default();
    for object in &inventory::all_objects(&db, &id).await.unwrap() {
        owners.learn(object);
    }
    let pod_uid = held(&db, &id, "Pod", &format!("{namespace}/web-1-a"))
        .await
        .unwrap()["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_owned();
    let top = owners.top(&pod_uid).unwrap();
    assert_eq!(
        (top.kind.as_str(), top.name.as_str()),
        ("Deployment", "web")
    );

    // The replica dies: its watches are cut and it never lets go of the lease.
    first_task.abort();
    // While nobody watches, the Pod is deleted.
    pods.delete("web-1-a", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    // A second replica takes the cluster once the lease runs out, lists again, and forgets it.
    let second = bed_keeper(&db);
    let (stop_second, stopped) = tokio::sync::watch::channel(false);
    let second_task = tokio::spawn(second.clone().run(stopped));
    wait_until_held(
        &db,
        &id,
        "Pod",
        &format!("{namespace}/web-1-a"),
        false,
        Duration::from_secs(20),
    )
    .await;
    let (holder, _) = queries::lease_of(db.pool(), &id).await.unwrap().unwrap();
    assert_eq!(holder, second.holder());
    // And it watches: a deletion now arrives without a list.
    delete_deployment(&deployments, "web").await;
    wait_until_held(
        &db,
        &id,
        "Deployment",
        &format!("{namespace}/web"),
        false,
        Duration::from_secs(10),
    )
    .await;

    stop_second.send(true).unwrap();
    second_task.await.unwrap();
    palisade_testbed::delete_namespace(&admin, &namespace)
        .await
        .unwrap();
    server.stop().await;
}

/// Against a real kube-apiserver reached through a [`Proxy`]: the network between the keeper and
/// the cluster is cut while the replica keeps running, a Deployment is deleted and another created
/// meanwhile, and once the network is back the same keeper brings both changes into the inventory
/// and no kind stays marked unreadable.
#[tokio::test]
async fn the_keeper_recovers_when_its_watches_are_cut() {
    use k8s_openapi::api::apps::v1::Deployment;
    use kube::api::{Api, PostParams};

    let testbed = crate::support::testbed().await;
    let cluster = &testbed.clusters[0];
    let proxy = Proxy::start(cluster.api_url.trim_start_matches("https://")).await;
    let server = TestServer::with_key(&[("PALISADE__INVENTORY__ENABLED", "false")]).await;
    let db = server.pool.clone();
    let people = server.people().await;
    let id = server
        .api(&people.admin)
        .register_bed_cluster_at("inventory-cut", "staging", cluster, &proxy.https_url())
        .await
        .id;

    let keeper = bed_keeper(&db);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(keeper.clone().run(stopped));
    every_kind_listed(&db, &id).await;

    // Deployment `a` arrives through the watch.
    let admin = cluster.admin_client().await.unwrap();
    let namespace = new_namespace(&admin, "inventory-cut").await;
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), &namespace);
    let create = |name: &str| {
        let labels = json!({"app": name});
        let deployment: Deployment = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": labels}, "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": "registry.example/web:1.0"}]},
            }},
        }))
        .unwrap();
        let deployments = deployments.clone();
        async move {
            deployments
                .create(&PostParams::default(), &deployment)
                .await
                .unwrap()
        }
    };
    create("a").await;
    let a = format!("{namespace}/a");
    let b = format!("{namespace}/b");
    wait_until_held(&db, &id, "Deployment", &a, true, Duration::from_secs(10)).await;

    // The network is cut: the keeper's watches fail, and it says so.
    proxy.cut();
    eventually(&db, &id, Duration::from_secs(20), "the cut noticed", |i| {
        !kind(i, "Deployment").error.is_empty()
    })
    .await;
    // Meanwhile `a` is deleted and `b` created, by the admin straight at the apiserver.
    delete_deployment(&deployments, "a").await;
    create("b").await;
    // Nothing of that reaches the inventory while the cut lasts.
    let cut_until = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::time::Instant::now() < cut_until {
        assert!(
            held(&db, &id, "Deployment", &a).await.is_some(),
            "a forgotten through a cut"
        );
        assert!(
            held(&db, &id, "Deployment", &b).await.is_none(),
            "b copied through a cut"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The network is back: the same keeper, still running, catches up.
    proxy.restore();
    let restored = tokio::time::Instant::now();
    wait_until_held(&db, &id, "Deployment", &a, false, Duration::from_secs(30)).await;
    wait_until_held(&db, &id, "Deployment", &b, true, Duration::from_secs(30)).await;
    println!(
        "the inventory caught up {:?} after the network came back",
        restored.elapsed()
    );
    // No kind keeps the failure the cut caused.
    let recovered = eventually(
        &db,
        &id,
        Duration::from_secs(30),
        "every kind readable again",
        |i| i.unreadable().count() == 0,
    )
    .await;
    assert_eq!(kind(&recovered, "Deployment").needs, "");
    let (holder, _) = queries::lease_of(db.pool(), &id).await.unwrap().unwrap();
    assert_eq!(holder, keeper.holder(), "no other replica took over");

    stop_keeper(stop, task, Duration::from_secs(10)).await;
    drop(proxy);
    palisade_testbed::delete_namespace(&admin, &namespace)
        .await
        .unwrap();
    server.stop().await;
}
