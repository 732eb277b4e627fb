//! Rollouts on the real test bed: a ValidatingAdmissionPolicy rolled out audit → warn → enforce
//! across three kube-apiservers in two waves, with what the apiserver really does checked at each
//! mode; approvals (never one's own); an unreachable cluster reported while the others apply;
//! drift after an out-of-band delete, re-applied once the cluster reconciles; rollback.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::PostParams;
use kube::Api;
use palisade_app::auth::Role;
use palisade_testbed::{create_with_warnings, AuditReceiver, VAP_VALIDATION_FAILURE_ANNOTATION};
use serde_json::{json, Value};

use crate::client::{
    create_namespace, json_of, privileged_deployment, propose_and_approve, rollout, rollout_server,
    state, until_applied, wait_for,
};
use crate::support::{Backend, TestServer, KEY};

/// How long the apiserver may take to start enforcing a policy it was just given.
const PROPAGATION: Duration = Duration::from_secs(45);

/// Check every deployment for drift, as `approver`: the report.
async fn check_drift(server: &TestServer, approver: &str) -> Value {
    let path = "/api/v1/deployments/check-drift";
    server.api(approver).send("POST", path, None, 200).await
}

/// The cluster's ValidatingAdmissionPolicyBindings.
fn vap_bindings(client: kube::Client) -> Api<kube::core::DynamicObject> {
    Api::all_with(
        client,
        &kube::discovery::ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk(
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingAdmissionPolicyBinding",
        )),
    )
}

/// `operation` (`rollback` or `remove`) on a finished rollout, asked for by `asker`: it waits for
/// an approval, which `asker` cannot give and `approver` gives; then wait until the rollout it
/// starts is applied, and return that new rollout.
async fn undo_and_wait(
    server: &TestServer,
    asker: &str,
    approver: &str,
    id: &str,
    operation: &str,
) -> Value {
    let path = format!("/api/v1/rollouts/{id}/{operation}");
    let asked: Value = server.api(asker).send("POST", &path, None, 200).await;
    assert_eq!(state(&asked), "pending_approval", "{asked:#}");
    let started = asked["summary"]["id"].as_str().unwrap().to_owned();
    // The approver reviews each cluster's fixed plan against what runs there now.
    let change: Value = server
        .api(approver)
        .get(&format!("/api/v1/rollouts/{started}/change"))
        .await;
    let clusters = change["clusters"].as_array().unwrap();
    assert_eq!(
        clusters.len(),
        asked["steps"].as_array().unwrap().len(),
        "{change:#}"
    );
    for cluster in clusters {
        assert!(
            cluster["diff"]["removed"].as_u64().unwrap() > 0,
            "a {operation} changes what runs on {}: {cluster:#}",
            cluster["cluster"]
        );
    }
    // And its impact: each step's plan judged on its own cluster; a removal leaves nothing that
    // could deny.
    let impact: Value = server
        .api(approver)
        .get(&format!("/api/v1/rollouts/{started}/impact"))
        .await;
    let judged: usize = impact["waves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["clusters"].as_array().unwrap().len())
        .sum();
    assert_eq!(judged, clusters.len(), "{impact:#}");
    if operation == "remove" {
        assert_eq!(impact["denied"], 0, "{impact:#}");
    }
    let path = format!("/api/v1/rollouts/{started}/approve");
    let body = json!({ "comment": "" }).to_string();
    let own = server.call("POST", &path, asker, &body).await;
    assert_eq!(
        own.status, 403,
        "the asker approved their own {operation}: {}",
        own.body
    );
    let approved = server.call("POST", &path, approver, &body).await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    until_applied(server, asker, &started, Duration::from_secs(60)).await
}

/// What the apiserver does with a privileged Deployment now.
#[derive(Debug, PartialEq)]
enum Seen {
    /// Admitted without a warning; `audited` when the audit event carries the VAP annotation.
    Admitted {
        audited: bool,
    },
    Warned(String),
    Denied(String),
}

async fn try_privileged(
    api: &Api<Deployment>,
    namespace: &str,
    name: &str,
    receiver: &AuditReceiver,
) -> Seen {
    match create_with_warnings(
        api,
        &PostParams::default(),
        &privileged_deployment(name, Value::Null),
    )
    .await
    {
        Ok(created) if !created.warnings.is_empty() => Seen::Warned(created.warnings.join("; ")),
        Ok(_) => {
            let event = receiver
                .wait_for(
                    Duration::from_secs(10),
                    "the audit event of a create",
                    |e| {
                        e.object_ref("namespace") == Some(namespace)
                            && e.object_ref("name") == Some(name)
                            && e.field("verb") == Some("create")
                    },
                )
                .await
                .expect("the apiserver's audit webhook delivers the create");
            Seen::Admitted {
                audited: event
                    .annotation(VAP_VALIDATION_FAILURE_ANNOTATION)
                    .is_some_and(|v| v.contains("privileged")),
            }
        }
        Err(err) => Seen::Denied(err.to_string()),
    }
}

/// Keep creating privileged Deployments until the apiserver does what `expected` says.
async fn until_the_apiserver(
    cluster: &palisade_testbed::Cluster,
    namespace: &str,
    receiver: &AuditReceiver,
    expected: impl Fn(&Seen) -> bool,
    what: &str,
) -> Seen {
    let client = cluster.admin_client().await.unwrap();
    let api: Api<Deployment> = Api::namespaced(client, namespace);
    let deadline = Instant::now() + PROPAGATION;
    for attempt in 0.. {
        let name = format!("priv-{attempt}");
        let seen = try_privileged(&api, namespace, &name, receiver).await;
        if expected(&seen) {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "{}: {what} not seen within {PROPAGATION:?}; last: {seen:?}",
            cluster.name
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    unreachable!()
}

#[tokio::test]
async fn a_policy_goes_audit_warn_enforce_across_three_clusters_in_two_waves() {
    let testbed = crate::support::testbed().await;
    assert!(
        testbed.clusters.len() >= 3,
        "the test bed must run 3 clusters"
    );
    let receiver = AuditReceiver::shared(&testbed)
        .unwrap_or_else(|e| panic!("cannot receive the test bed's audit events: {e}"));
    // No inventory: the rollouts here are cluster-wide on clusters other tests share, and a
    // privileged Pod another test left running would make the enforce proposal wait for an
    // acknowledgement (rollout_impact.rs tests that gate).
    let (server, admin, author, approver) = rollout_server(&[
        ("PALISADE__ROLLOUTS__RETRIES", "2"),
        ("PALISADE__ROLLOUTS__DRIFT_INTERVAL_SECS", "0"),
        ("PALISADE__INVENTORY__ENABLED", "false"),
    ])
    .await;
    let second_approver = server.login_token(Role::Approver).await;

    // Three real clusters: one dev, two prod; a test namespace on each.
    let namespace = palisade_testbed::unique_name("rollout-it");
    let mut ids = Vec::new();
    for (i, cluster) in testbed.clusters.iter().take(3).enumerate() {
        let environment = if i == 0 { "dev" } else { "prod" };
        let name = format!("rollout-{}", cluster.name);
        let registered = server
            .api(&admin)
            .register_bed_cluster(&name, environment, cluster)
            .await;
        ids.push(registered.id);
        let client = cluster.admin_client().await.unwrap();
        create_namespace(&client, &namespace, Value::Null).await;
    }

    server.api(&author).adopt("disallow-privileged").await;
    let proposal = |mode: &str| {
        json!({
            "policy": "disallow-privileged",
            "mode": mode,
            "note": format!("to {mode}"),
            "waves": [
                { "name": "dev", "selector": { "environment": "dev" }, "approvals": 1 },
                { "name": "prod", "selector": { "environment": "prod" }, "approvals": 2 },
            ],
        })
        .to_string()
    };

    let mut previous_rollout = String::new();
    for (mode, actions) in [
        ("audit", json!(["Audit"])),
        ("warn", json!(["Warn", "Audit"])),
        ("enforce", json!(["Deny", "Audit"])),
    ] {
        let reply = server
            .call("POST", "/api/v1/rollouts", &author, &proposal(mode))
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        let rollout = json_of(&reply);
        let id = rollout["summary"]["id"].as_str().unwrap().to_owned();
        assert_eq!(state(&rollout), "pending_approval");
        assert_eq!(rollout["steps"].as_array().unwrap().len(), 3);

        // Gates: the proposer cannot approve; an author lacks the role; a second proposal waits.
        let own = server
            .call(
                "POST",
                &format!("/api/v1/rollouts/{id}/approve"),
                &author,
                "{}",
            )
            .await;
        assert_eq!(own.status, 403, "{}", own.body);
        let again = server
            .call("POST", "/api/v1/rollouts", &author, &proposal(mode))
            .await;
        assert_eq!(again.status, 409, "{}", again.body);

        // Wave 1 (dev) after one approval; nothing touches prod before wave 2 is approved.
        let approved = server
            .call(
                "POST",
                &format!("/api/v1/rollouts/{id}/approve"),
                &approver,
                &json!({ "comment": "dev first" }).to_string(),
            )
            .await;
        assert_eq!(approved.status, 200, "{}", approved.body);
        let waiting = wait_for(
            &server,
            &admin,
            &id,
            Duration::from_secs(60),
            "wave 2 waits",
            |r| r["summary"]["current_wave"] == 1 && state(r) == "pending_approval",
        )
        .await;
        let steps = waiting["steps"].as_array().unwrap();
        assert_eq!(steps[0]["state"], "applied", "{waiting:#}");
        assert!(
            steps[1..].iter().all(|s| s["state"] == "pending"),
            "{waiting:#}"
        );
        assert_eq!(steps[0]["applies"], 1);

        // Wave 2 needs two approvals from two people.
        for (who, expected) in [(&approver, 200), (&approver, 409), (&second_approver, 200)] {
            let reply = server
                .call("POST", &format!("/api/v1/rollouts/{id}/approve"), who, "{}")
                .await;
            assert_eq!(reply.status, expected, "{}", reply.body);
        }
        let done = until_applied(&server, &admin, &id, Duration::from_secs(60)).await;
        for step in done["steps"].as_array().unwrap() {
            assert_eq!(step["state"], "applied", "{done:#}");
            assert_eq!(step["applies"], 1, "each step is sent once: {done:#}");
        }

        // What each apiserver holds and does now.
        for cluster in testbed.clusters.iter().take(3) {
            let client = cluster.admin_client().await.unwrap();
            let bindings = vap_bindings(client);
            let binding = bindings.get("disallow-privileged").await.unwrap();
            assert_eq!(binding.data["spec"]["validationActions"], actions, "{mode}");
            let seen = match mode {
                "audit" => {
                    until_the_apiserver(
                        cluster,
                        &namespace,
                        receiver,
                        |s| *s == Seen::Admitted { audited: true },
                        "admitted with the audit annotation",
                    )
                    .await
                }
                "warn" => {
                    until_the_apiserver(
                        cluster,
                        &namespace,
                        receiver,
                        |s| matches!(s, Seen::Warned(w) if w.contains("privileged")),
                        "admitted with a warning",
                    )
                    .await
                }
                _ => {
                    until_the_apiserver(
                        cluster,
                        &namespace,
                        receiver,
                        |s| matches!(s, Seen::Denied(m) if m.contains("privileged")),
                        "denied",
                    )
                    .await
                }
            };
            eprintln!("{}: {mode}: {seen:?}", cluster.name);
        }
        previous_rollout = id;
    }

    // What is live where.
    let live = server.api(&admin).get::<Value>("/api/v1/deployments").await;
    let live = live.as_array().unwrap();
    assert_eq!(live.len(), 3, "{live:?}");
    assert!(
        live.iter()
            .all(|d| d["mode"] == "enforce" && d["drift"] == "in_sync"),
        "{live:?}"
    );
    let staging = server
        .api(&author)
        .get::<Value>("/api/v1/policies/disallow-privileged/staging")
        .await;
    let on = staging["live"].as_array().unwrap();
    assert_eq!(on.len(), 3, "{staging}");
    assert!(on.iter().all(|d| d["mode"] == "enforce"), "{staging}");
    assert_eq!(on.iter().filter(|d| d["environment"] == "prod").count(), 2);

    // Drift: the binding deleted out of band on the dev cluster.
    let dev = &testbed.clusters[0];
    let bindings = vap_bindings(dev.admin_client().await.unwrap());
    bindings
        .delete("disallow-privileged", &Default::default())
        .await
        .unwrap();
    let report = check_drift(&server, &approver).await;
    assert_eq!(report["drifted"], 1, "{report}");
    assert_eq!(report["reapplied"], 0, "{report}");
    let live = server.api(&admin).get::<Value>("/api/v1/deployments").await;
    let drifted: Vec<&Value> = live
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["drift"] == "drifted")
        .collect();
    assert_eq!(drifted.len(), 1, "{live:#}");
    assert_eq!(drifted[0]["cluster_id"], ids[0].as_str());
    // The policy's staging shows it too.
    let staging = server
        .api(&author)
        .get::<Value>("/api/v1/policies/disallow-privileged/staging")
        .await;
    let drifts: Vec<&str> = staging["live"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["drift"].as_str().unwrap())
        .collect();
    assert_eq!(
        drifts.iter().filter(|d| **d == "drifted").count(),
        1,
        "{staging}"
    );
    assert_eq!(
        drifts.iter().filter(|d| **d == "in_sync").count(),
        2,
        "{staging}"
    );
    assert!(
        drifted[0]["drift_detail"]
            .as_str()
            .unwrap()
            .contains("ValidatingAdmissionPolicyBinding disallow-privileged is missing"),
        "{live:#}"
    );
    // Set to reconcile, the cluster gets it back.
    let reply = server
        .call(
            "PATCH",
            &format!("/api/v1/clusters/{}", ids[0]),
            &admin,
            &json!({ "reconcile": true }).to_string(),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let report = check_drift(&server, &approver).await;
    assert_eq!(report["reapplied"], 1, "{report}");
    let binding = bindings.get("disallow-privileged").await.unwrap();
    assert_eq!(
        binding.data["spec"]["validationActions"],
        json!(["Deny", "Audit"])
    );

    // Roll back the enforce rollout: every cluster is back in warn.
    let rollback = undo_and_wait(&server, &approver, &admin, &previous_rollout, "rollback").await;
    assert_eq!(rollback["summary"]["kind"], "rollback");
    let rollback_id = rollback["summary"]["id"].as_str().unwrap().to_owned();
    let parent = rollout(&server, &previous_rollout, &admin).await;
    assert_eq!(state(&parent), "rolled_back");
    for cluster in testbed.clusters.iter().take(3) {
        let bindings = vap_bindings(cluster.admin_client().await.unwrap());
        let binding = bindings.get("disallow-privileged").await.unwrap();
        assert_eq!(
            binding.data["spec"]["validationActions"],
            json!(["Warn", "Audit"]),
            "{}",
            cluster.name
        );
    }

    // Remove the policy: the objects leave every cluster.
    let reply = server
        .call(
            "POST",
            &format!("/api/v1/rollouts/{rollback_id}/remove"),
            &approver,
            "",
        )
        .await;
    assert_eq!(
        reply.status, 409,
        "a rollback is not removed: {}",
        reply.body
    );

    // The audit log has every step.
    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_entries WHERE action LIKE 'rollout.%' OR action LIKE 'deployment.%'",
    )
    .fetch_all(server.pool.pool())
    .await
    .unwrap();
    for expected in [
        "rollout.propose",
        "rollout.approve",
        "rollout.step_applied",
        "rollout.wave_applied",
        "rollout.wave_done",
        "rollout.applied",
        "rollout.rollback",
        "deployment.drift",
        "deployment.reconcile",
    ] {
        assert!(
            actions.iter().any(|a| a == expected),
            "{expected} missing from {actions:?}"
        );
    }

    for cluster in testbed.clusters.iter().take(3) {
        let client = cluster.admin_client().await.unwrap();
        let bindings = vap_bindings(client.clone());
        let _ = bindings
            .delete("disallow-privileged", &Default::default())
            .await;
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
        let _ = deployments
            .delete_collection(&Default::default(), &Default::default())
            .await;
        let _ = palisade_testbed::delete_namespace(&client, &namespace).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn an_unreachable_cluster_fails_alone_and_is_reported() {
    let testbed = crate::support::testbed().await;
    let (server, admin, author, approver) =
        rollout_server(&[("PALISADE__ROLLOUTS__RETRIES", "2")]).await;

    // A real cluster, and one whose apiserver is stopped (nothing listens on its port).
    let cluster = &testbed.clusters[1];
    let kubeconfig = std::fs::read_to_string(&cluster.palisade_kubeconfig).unwrap();
    let stopped_port = crate::support::free_port();
    let stopped = kubeconfig.replace(
        cluster.api_url.trim_end_matches('/'),
        &format!("https://127.0.0.1:{stopped_port}"),
    );
    assert_ne!(stopped, kubeconfig, "the kubeconfig names the API URL");
    for (name, config) in [("live", &kubeconfig), ("stopped", &stopped)] {
        server
            .api(&admin)
            .register_kubeconfig(name, "staging", config)
            .await;
    }
    server.api(&author).adopt("disallow-host-namespaces").await;
    let policy_name = "disallow-host-namespaces";
    let reply = server
        .call(
            "POST",
            "/api/v1/rollouts",
            &author,
            &json!({
                "policy": policy_name,
                "mode": "audit",
                "waves": [
                    { "selector": { "environment": "staging" } },
                    { "selector": { "environment": "prod" } },
                ],
            })
            .to_string(),
        )
        .await;
    // The second wave selects nothing: refused, with the wave named.
    reply.assert_says(400, "environment=prod");
    let id = propose_and_approve(
        &server,
        (&author, &approver),
        json!({
            "policy": policy_name,
            "mode": "audit",
            "waves": [{ "selector": { "environment": "staging" } }],
        }),
    )
    .await;
    let done = wait_for(
        &server,
        &admin,
        &id,
        Duration::from_secs(90),
        "finished",
        |r| state(r) == "failed",
    )
    .await;
    let steps = done["steps"].as_array().unwrap();
    let by_name = |name: &str| steps.iter().find(|s| s["cluster_name"] == name).unwrap();
    assert_eq!(by_name("live")["state"], "applied", "{done:#}");
    assert_eq!(by_name("stopped")["state"], "failed", "{done:#}");
    let message = by_name("stopped")["message"].as_str().unwrap();
    assert!(message.contains("cannot reach the cluster"), "{message}");

    let client = cluster.admin_client().await.unwrap();
    let policies = vap_bindings(client);
    let live = policies.get(policy_name).await.unwrap();
    assert_eq!(live.data["spec"]["validationActions"], json!(["Audit"]));

    // Removing the failed rollout's policy takes it off the cluster that got it.
    undo_and_wait(&server, &approver, &admin, &id, "remove").await;
    assert!(policies.get_opt(policy_name).await.unwrap().is_none());
    server.stop().await;
}

/// Two executors (as two server replicas would run) over one PostgreSQL database and a simulated
/// fleet: every step is claimed by exactly one of them, so each cluster receives the policy once.
#[tokio::test]
async fn postgres_two_replicas_never_run_a_step_twice() {
    use std::sync::Arc;

    use palisade_app::rollouts::ssr::{Executor, Settings};

    use crate::simulated::{with_idle_executor, Simulated};

    // The server's own executor sleeps for the whole test: only the two below work.
    let server = with_idle_executor(Backend::Postgres).await;
    let simulated = Simulated::new(&server, Duration::from_millis(5)).await;
    let author = server.login_token(Role::Author).await;
    let approver = server.login_token(Role::Approver).await;
    let (sealer, fleet) = (simulated.sealer.clone(), simulated.fleet.clone());
    const CLUSTERS: usize = 40;
    for i in 0..CLUSTERS {
        let name = format!("sim-{i}");
        let now = palisade_app::db::now_ms();
        simulated.register(&server, &name, "prod", now).await;
    }
    server.api(&author).adopt("disallow-privileged").await;
    let id = propose_and_approve(&server, (&author, &approver), json!({ "policy": "disallow-privileged", "mode": "enforce", "waves": [{ "selector": {} }] })).await;

    let settings = Settings {
        concurrency: 6,
        drift_every: None,
        ..Settings::default()
    };
    let replicas: Vec<Arc<Executor>> = (0..2)
        .map(|_| {
            Arc::new(Executor::new(
                server.pool.clone(),
                Some(sealer.clone()),
                fleet.clone(),
                settings.clone(),
            ))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut tasks = Vec::new();
    for replica in &replicas {
        let (replica, pool, id) = (replica.clone(), server.pool.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            let mut ran = 0;
            loop {
                ran += replica.round(palisade_app::db::now_ms()).await.unwrap();
                let state: String = sqlx::query_scalar("SELECT state FROM rollouts WHERE id = $1")
                    .bind(&id)
                    .fetch_one(pool.pool())
                    .await
                    .unwrap();
                if state == "applied" {
                    return ran;
                }
                assert!(Instant::now() < deadline, "the rollout is still {state}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }
    let mut ran = Vec::new();
    for task in tasks {
        ran.push(task.await.unwrap());
    }
    assert_eq!(
        ran.iter().sum::<usize>(),
        CLUSTERS,
        "each step claimed once: {ran:?}"
    );
    assert!(ran.iter().all(|&n| n > 0), "both replicas worked: {ran:?}");
    let applies = fleet.applies();
    assert_eq!(applies.len(), CLUSTERS);
    // disallow-privileged is a policy and its binding: two objects, each applied once.
    assert!(applies.values().all(|&n| n == 2), "{applies:?}");
    assert!(
        fleet.peak_in_flight() <= 2 * settings.concurrency,
        "peak {} calls in flight",
        fleet.peak_in_flight()
    );
    let steps: Vec<(i64, i64)> =
        sqlx::query_as("SELECT attempts, applies FROM rollout_steps WHERE rollout_id = $1")
            .bind(&id)
            .fetch_all(server.pool.pool())
            .await
            .unwrap();
    assert_eq!(steps.len(), CLUSTERS);
    assert!(steps.iter().all(|&s| s == (1, 1)), "{steps:?}");
    server.stop().await;
}

/// The real binary killed with SIGKILL in the middle of a rollout, then started again on the same
/// database: the rollout completes, every cluster applied, and no step was sent twice (the one
/// that was interrupted is read back first and not sent again when it had landed).
#[tokio::test]
async fn a_rollout_survives_sigkill_of_the_server() {
    use crate::arrange::{
        approved_rollout, bed_cluster, library_policy, register_all, to_every_cluster,
    };
    use palisade_app::auth::Principal;
    use palisade_app::clusters::ssr::KubeConnector;
    use palisade_app::db::{DatabaseUrl, Db, PoolSettings};
    use palisade_app::policies::Mode;
    use palisade_app::secrets::Sealer;

    let testbed = crate::support::testbed().await;
    let dir = crate::support::scratch_dir("palisade_sigkill");
    let url = format!("sqlite://{}/palisade.db", dir.display());
    let db = Db::connect(
        &DatabaseUrl::parse(&url).unwrap(),
        &PoolSettings {
            max_connections: 4,
            connect_timeout: Duration::from_secs(5),
        },
    )
    .await
    .unwrap();
    db.migrate().await.unwrap();

    // Arranged directly in the database: three real clusters, a policy, an approved rollout.
    let admin = Principal::new("admin-1", "Admin", Role::Admin);
    let author = Principal::new("author-1", "Author", Role::Author);
    let approver = Principal::new("approver-1", "Approver", Role::Approver);
    let sealer = Sealer::from_hex(KEY).unwrap();
    let inputs = testbed.clusters.iter().take(3);
    let inputs = inputs.map(|c| bed_cluster(format!("killed-{}", c.name), c));
    let connector = KubeConnector::default();
    register_all(&db, &sealer, &connector, &admin, inputs.collect()).await;
    library_policy(&db, &author, "require-run-as-non-root").await;
    let id = approved_rollout(
        &db,
        (&author, &approver),
        to_every_cluster("require-run-as-non-root", Mode::Warn),
        "go",
    )
    .await;

    /// The server process, killed with SIGKILL (and reaped) when dropped, even by a failing assert.
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let start = || {
        Killed(
            std::process::Command::new(crate::support::palisade_bin())
                .arg("serve")
                .env("PALISADE__HTTP__ADDRESS", "127.0.0.1:0")
                .env("PALISADE__DATABASE__URL", &url)
                .env("PALISADE__SECRETS__KEY", KEY)
                .env("PALISADE__ROLLOUTS__CONCURRENCY", "1")
                .env("PALISADE__ROLLOUTS__POLL_MS", "50")
                .env("PALISADE__ROLLOUTS__LEASE_SECS", "2")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("start palisade"),
        )
    };
    let steps = || async {
        sqlx::query_as::<_, (String, String, i64, i64, String)>(
            "SELECT cluster_name, state, attempts, applies, message FROM rollout_steps \
             WHERE rollout_id = $1 ORDER BY cluster_name",
        )
        .bind(&id)
        .fetch_all(db.pool())
        .await
        .unwrap()
    };

    // Kill it as soon as it has started on the clusters and before it has finished them all.
    let first = start();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = steps().await;
        let started = now.iter().any(|s| s.1 != "pending");
        let finished = now.iter().filter(|s| s.1 == "applied").count();
        if started && finished < now.len() {
            drop(first);
            break;
        }
        assert!(
            finished < now.len(),
            "finished before it could be killed: {now:?}"
        );
        assert!(
            Instant::now() < deadline,
            "the rollout never started: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let at_kill = steps().await;
    eprintln!("at SIGKILL: {at_kill:?}");
    assert!(at_kill.iter().any(|s| s.1 != "applied"), "{at_kill:?}");

    // Started again, it completes.
    let second = start();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let state: String = sqlx::query_scalar("SELECT state FROM rollouts WHERE id = $1")
            .bind(&id)
            .fetch_one(db.pool())
            .await
            .unwrap();
        if state == "applied" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not applied after the restart: {state}, {:?}",
            steps().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(second);

    let after = steps().await;
    eprintln!("after the restart: {after:?}");
    assert_eq!(after.len(), 3);
    for (cluster, state, attempts, applies, message) in &after {
        assert_eq!(state, "applied", "{cluster}: {message}");
        assert!(*attempts <= 2, "{cluster}: {attempts} attempts");
        // An interrupted step is read back before it is sent again: sent twice only when the
        // first send had not landed.
        if *applies > 1 {
            assert_eq!(*attempts, 2, "{cluster}");
        }
        assert!(
            *applies <= *attempts,
            "{cluster}: {applies} sends in {attempts} attempts"
        );
    }
    // Steps that had finished before the kill were not touched again.
    for before in at_kill.iter().filter(|s| s.1 == "applied") {
        let now = after.iter().find(|s| s.0 == before.0).unwrap();
        assert_eq!((now.2, now.3), (before.2, before.3), "{}", before.0);
    }
    for cluster in testbed.clusters.iter().take(3) {
        let bindings = vap_bindings(cluster.admin_client().await.unwrap());
        let binding = bindings.get("require-run-as-non-root").await.unwrap();
        assert_eq!(
            binding.data["spec"]["validationActions"],
            json!(["Warn", "Audit"])
        );
        let _ = bindings
            .delete("require-run-as-non-root", &Default::default())
            .await;
    }
    db.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A Pod Security policy rolled out in enforce labels the named namespace (its other labels kept),
/// and the apiserver then denies a violating Pod there; removing the policy takes the labels away.
#[tokio::test]
async fn pod_security_labels_reach_the_namespace_and_a_violating_pod_is_denied() {
    use k8s_openapi::api::core::v1::Pod;

    let testbed = crate::support::testbed().await;
    let cluster = &testbed.clusters[2];
    let (server, admin, author, approver) =
        rollout_server(&[("PALISADE__ROLLOUTS__DRIFT_INTERVAL_SECS", "0")]).await;
    let client = cluster.admin_client().await.unwrap();
    let namespace = palisade_testbed::unique_name("psa-rollout");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    create_namespace(&client, &namespace, json!({ "team": "payments" })).await;
    // A workload that breaks the restricted level runs there before the policy arrives.
    let legacy: Pod = serde_json::from_value(json!({
        "metadata": { "name": "legacy-agent" },
        "spec": { "hostPID": true, "containers": [{ "name": "agent", "image": "busybox" }] },
    }))
    .unwrap();
    Api::<Pod>::namespaced(client.clone(), &namespace)
        .create(&PostParams::default(), &legacy)
        .await
        .unwrap();

    server
        .api(&admin)
        .register_bed_cluster("psa", "psa", cluster)
        .await;
    server.api(&author).adopt("pod-security-restricted").await;
    let proposal = |namespaces: Value| {
        json!({
            "policy": "pod-security-restricted",
            "mode": "enforce",
            "namespaces": namespaces,
            "waves": [{ "selector": { "environment": "psa" } }],
        })
        .to_string()
    };
    // A Pod Security policy without namespaces is refused, saying why.
    let reply = server
        .call("POST", "/api/v1/rollouts", &author, &proposal(json!([])))
        .await;
    reply.assert_says(400, "namespace");
    let reply = server
        .call(
            "POST",
            "/api/v1/rollouts",
            &author,
            &proposal(json!([namespace])),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let id = json_of(&reply)["summary"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    server.api(&approver).approve(&id).await;
    until_applied(&server, &admin, &id, Duration::from_secs(60)).await;
    // The apiserver's warning that the existing pod already violates the level is on the step.
    let rollout = rollout(&server, &id, &admin).await;
    let message = rollout["steps"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("the apiserver warned")
            && message.contains("violate the new PodSecurity enforce level")
            && message.contains("legacy-agent"),
        "{rollout:#}"
    );

    let live = namespaces.get(&namespace).await.unwrap();
    let labels = live.metadata.labels.unwrap_or_default();
    assert_eq!(labels.get("team").map(String::as_str), Some("payments"));
    for mode in ["enforce", "warn", "audit"] {
        assert_eq!(
            labels
                .get(&format!("pod-security.kubernetes.io/{mode}"))
                .map(String::as_str),
            Some("restricted"),
            "{labels:?}"
        );
    }

    // The apiserver denies a Pod that breaks the restricted level.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": "host-pid" },
        "spec": { "hostPID": true, "containers": [{ "name": "c", "image": "busybox:1" }] },
    }))
    .unwrap();
    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let deadline = Instant::now() + PROPAGATION;
    loop {
        match pods.create(&dry_run, &pod).await {
            Err(kube::Error::Api(status)) if status.code == 403 => {
                assert!(status.message.contains("PodSecurity"), "{}", status.message);
                break;
            }
            other => assert!(
                Instant::now() < deadline,
                "a hostPID Pod was not denied: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Removing the policy lets go of the labels, and only of them.
    undo_and_wait(&server, &approver, &admin, &id, "remove").await;
    let labels = namespaces
        .get(&namespace)
        .await
        .unwrap()
        .metadata
        .labels
        .unwrap_or_default();
    assert_eq!(labels.get("team").map(String::as_str), Some("payments"));
    assert!(
        !labels
            .keys()
            .any(|k| k.starts_with("pod-security.kubernetes.io/")),
        "{labels:?}"
    );
    let _ = palisade_testbed::delete_namespace(&client, &namespace).await;
    server.stop().await;
}
