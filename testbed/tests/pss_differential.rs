//! Differential test of Palisade's Pod Security port against real kube-apiservers.
//!
//! Namespaces enforce `baseline` and `restricted` at `latest` (and two older versions); a few
//! hundred seeded, varied Pods are sent to each with a server-side dry-run create. The engine
//! must allow exactly the pods the apiserver admits, and for each denial produce the
//! apiserver's message word for word. Deployments made from some of the pods must draw the same
//! Pod Security warning (or none) from the apiserver as from the engine.
//!
//! Needs running clusters: `e2e/clusters up && eval "$(e2e/clusters env)"`. Without them the
//! test fails and says so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, PostParams};
use kube::Client;
use palisade_engine::pss::{self, Level, LevelVersion, Version};
use palisade_engine::{Action, AdmissionRequest, Mode};
use palisade_testbed::{create_with_warnings, delete_namespace, unique_name};
use serde_json::{json, Map, Value};

/// Pods generated per run; each is sent to both namespaces.
const PODS: usize = 600;
/// Of those, how many are also sent as Deployments.
const DEPLOYMENTS: usize = 200;

// ------------------------------------------------------------------ seeded pod generator

/// SplitMix64: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize].clone()
    }
}

const IMAGES: &[&str] = &[
    "registry.example/app:1.4.2",
    "nginx:1.27",
    "busybox:latest",
    "ghcr.io/acme/worker@sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945",
];

/// Profile types for seccomp and AppArmor; `Localhost` comes with a profile name.
fn profile(rng: &mut Rng) -> Value {
    match rng.below(3) {
        0 => json!({"type": "RuntimeDefault"}),
        1 => json!({"type": "Unconfined"}),
        _ => json!({"type": "Localhost", "localhostProfile": "profiles/app.json"}),
    }
}

fn se_linux(rng: &mut Rng) -> Value {
    let mut o = Map::new();
    o.insert(
        "type".into(),
        json!(rng.pick(&[
            "container_t",
            "spc_t",
            "container_engine_t",
            "container_init_t"
        ])),
    );
    if rng.chance(20) {
        o.insert("user".into(), json!("system_u"));
    }
    if rng.chance(20) {
        o.insert("role".into(), json!("system_r"));
    }
    if rng.chance(50) {
        o.insert("level".into(), json!("s0:c123,c456"));
    }
    Value::Object(o)
}

fn probe(rng: &mut Rng, port: u64) -> Value {
    let host = rng.pick(&["", "", "10.0.0.1", "metadata.example"]);
    let mut action = json!({"port": port});
    if !host.is_empty() {
        action["host"] = json!(host);
    }
    if rng.chance(50) {
        action["path"] = json!("/healthz");
        json!({"httpGet": action})
    } else {
        json!({"tcpSocket": action})
    }
}

struct PodShape {
    host_network: bool,
    user_namespace: bool,
    windows: bool,
    /// Ports handed out so far (unique across the pod, so host ports never collide).
    next_port: u64,
}

fn linux_container(rng: &mut Rng, name: &str, shape: &mut PodShape) -> Value {
    let mut c = json!({"name": name, "image": rng.pick(IMAGES)});
    if rng.chance(45) {
        let port = shape.next_port;
        shape.next_port += 1;
        let mut p = json!({"containerPort": port});
        if rng.chance(15) {
            p["hostPort"] = json!(if shape.host_network {
                port
            } else {
                port + 20000
            });
        }
        c["ports"] = json!([p]);
    }
    if rng.chance(15) {
        c[rng.pick(&["readinessProbe", "livenessProbe", "startupProbe"])] = probe(rng, 8080);
    }
    if rng.chance(8) {
        let handler = probe(rng, 8080);
        c["lifecycle"] = json!({ rng.pick(&["postStart", "preStop"]): handler });
    }
    if !rng.chance(75) {
        return c;
    }
    let mut sc = Map::new();
    let escalation = rng.pick(&[None, Some(true), Some(false), Some(false)]);
    if let Some(e) = escalation {
        sc.insert("allowPrivilegeEscalation".into(), json!(e));
    }
    if escalation != Some(false) && rng.chance(8) {
        sc.insert("privileged".into(), json!(true));
    }
    if rng.chance(65) {
        let mut caps = Map::new();
        let drop: Value = rng.pick(&[
            json!(["ALL"]),
            json!(["ALL"]),
            json!(["NET_RAW"]),
            json!([]),
        ]);
        caps.insert("drop".into(), drop);
        if rng.chance(25) {
            let mut add = vec![rng.pick(&["NET_BIND_SERVICE", "CHOWN", "NET_ADMIN", "SYS_TIME"])];
            if escalation != Some(false) && rng.chance(30) {
                add.push("SYS_ADMIN");
            }
            add.dedup();
            caps.insert("add".into(), json!(add));
        }
        sc.insert("capabilities".into(), Value::Object(caps));
    }
    if let Some(v) = rng.pick(&[None, None, Some(true), Some(false)]) {
        sc.insert("runAsNonRoot".into(), json!(v));
    }
    if rng.chance(25) {
        sc.insert("runAsUser".into(), json!(rng.pick(&[0, 1000])));
    }
    if rng.chance(20) {
        sc.insert("seccompProfile".into(), profile(rng));
    }
    if rng.chance(8) {
        sc.insert("seLinuxOptions".into(), se_linux(rng));
    }
    if rng.chance(8) {
        sc.insert("appArmorProfile".into(), profile(rng));
    }
    if rng.chance(10) {
        let unmasked = shape.user_namespace && rng.chance(70);
        sc.insert(
            "procMount".into(),
            json!(if unmasked { "Unmasked" } else { "Default" }),
        );
    }
    if rng.chance(20) {
        sc.insert("readOnlyRootFilesystem".into(), json!(true));
    }
    c["securityContext"] = Value::Object(sc);
    c
}

fn windows_container(rng: &mut Rng, name: &str, host_process: bool) -> Value {
    let mut c = json!({"name": name, "image": "mcr.microsoft.com/windows/nanoserver:ltsc2022"});
    let mut sc = Map::new();
    if let Some(v) = rng.pick(&[None, Some(true), Some(false)]) {
        sc.insert("runAsNonRoot".into(), json!(v));
    }
    if host_process {
        sc.insert(
            "windowsOptions".into(),
            json!({"hostProcess": true, "runAsUserName": "NT AUTHORITY\\SYSTEM"}),
        );
    }
    if !sc.is_empty() {
        c["securityContext"] = Value::Object(sc);
    }
    c
}

const SYSCTLS: &[(&str, &str)] = &[
    ("kernel.shm_rmid_forced", "1"),
    ("net.ipv4.ip_local_port_range", "1024 65000"),
    ("net.ipv4.tcp_keepalive_time", "600"),
    ("net.ipv4.tcp_slow_start_after_idle", "0"),
    ("kernel.msgmax", "65536"),
    ("net.core.somaxconn", "1024"),
    ("kernel.sem", "250 32000 32 128"),
];

fn volumes(rng: &mut Rng) -> Vec<Value> {
    let sources = [
        json!({"emptyDir": {}}),
        json!({"configMap": {"name": "settings"}}),
        json!({"secret": {"secretName": "creds"}}),
        json!({"persistentVolumeClaim": {"claimName": "data"}}),
        json!({"projected": {"sources": []}}),
        json!({"downwardAPI": {"items": []}}),
        json!({"csi": {"driver": "csi.example.com"}}),
        json!({"hostPath": {"path": "/var/log"}}),
        json!({"nfs": {"server": "nfs.example", "path": "/exports"}}),
        json!({"iscsi": {"targetPortal": "10.0.0.9:3260", "iqn": "iqn.2001-04.com.example:storage", "lun": 0}}),
        json!({}),
    ];
    (0..rng.below(4))
        .map(|i| {
            let mut v = rng.pick(&sources);
            v["name"] = json!(format!("vol{i}"));
            v
        })
        .collect()
}

/// One varied, valid Pod named `name`.
fn generate_pod(rng: &mut Rng, name: &str) -> Value {
    let windows = rng.chance(8);
    let host_process = windows && rng.chance(50);
    let mut shape = PodShape {
        host_network: host_process || (!windows && rng.chance(8)),
        user_namespace: false,
        windows,
        next_port: 8000,
    };
    let host_pid = !windows && rng.chance(6);
    let host_ipc = !windows && rng.chance(6);
    shape.user_namespace =
        !windows && !shape.host_network && !host_pid && !host_ipc && rng.chance(10);

    let mut spec = Map::new();
    let count = 1 + rng.below(3) as usize;
    let containers: Vec<Value> = (0..count)
        .map(|i| {
            let name = format!("c{i}");
            if shape.windows {
                windows_container(rng, &name, host_process)
            } else {
                linux_container(rng, &name, &mut shape)
            }
        })
        .collect();
    spec.insert("containers".into(), json!(containers));
    if rng.chance(25) {
        let mut init = if shape.windows {
            windows_container(rng, "init", host_process)
        } else {
            linux_container(rng, "init", &mut shape)
        };
        // Probes and lifecycle hooks are only valid on sidecars (restartable init containers).
        let sidecar = [
            "readinessProbe",
            "livenessProbe",
            "startupProbe",
            "lifecycle",
        ]
        .iter()
        .any(|k| init.get(*k).is_some());
        if sidecar || rng.chance(20) {
            init["restartPolicy"] = json!("Always");
        }
        spec.insert("initContainers".into(), json!([init]));
    }
    for (field, on) in [
        ("hostNetwork", shape.host_network),
        ("hostPID", host_pid),
        ("hostIPC", host_ipc),
    ] {
        if on {
            spec.insert(field.into(), json!(true));
        }
    }
    if shape.user_namespace {
        spec.insert("hostUsers".into(), json!(false));
    }

    let mut psc = Map::new();
    if let Some(v) = rng.pick(&[None, Some(true), Some(true), Some(false)]) {
        psc.insert("runAsNonRoot".into(), json!(v));
    }
    if shape.windows {
        spec.insert("os".into(), json!({"name": "windows"}));
        if host_process {
            psc.insert(
                "windowsOptions".into(),
                json!({"hostProcess": true, "runAsUserName": "NT AUTHORITY\\SYSTEM"}),
            );
        }
    } else {
        if rng.chance(20) {
            psc.insert("runAsUser".into(), json!(rng.pick(&[0, 1000])));
        }
        if rng.chance(60) {
            psc.insert("seccompProfile".into(), profile(rng));
        }
        if rng.chance(8) {
            psc.insert("seLinuxOptions".into(), se_linux(rng));
        }
        if rng.chance(8) {
            psc.insert("appArmorProfile".into(), profile(rng));
        }
        if rng.chance(15) {
            let mut sysctls: Vec<Value> = Vec::new();
            for _ in 0..1 + rng.below(2) {
                let (name, value) = rng.pick(SYSCTLS);
                let clashes = (shape.host_network && name.starts_with("net."))
                    || (host_ipc
                        && (name.starts_with("kernel.shm")
                            || name.starts_with("kernel.msg")
                            || name == "kernel.sem"));
                if !clashes && !sysctls.iter().any(|s| s["name"] == name) {
                    sysctls.push(json!({"name": name, "value": value}));
                }
            }
            if !sysctls.is_empty() {
                psc.insert("sysctls".into(), json!(sysctls));
            }
        }
        let vols = volumes(rng);
        if !vols.is_empty() {
            spec.insert("volumes".into(), json!(vols));
        }
    }
    spec.insert("securityContext".into(), Value::Object(psc));

    let mut metadata = json!({"name": name});
    // The old AppArmor annotation, on a container that has no AppArmor field.
    if !shape.windows && rng.chance(6) {
        let spec_has_field = spec["securityContext"].get("appArmorProfile").is_some()
            || spec["containers"][0]["securityContext"]
                .get("appArmorProfile")
                .is_some();
        if !spec_has_field {
            metadata["annotations"] = json!({
                "container.apparmor.security.beta.kubernetes.io/c0":
                    rng.pick(&["runtime/default", "unconfined", "localhost/app"])
            });
        }
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec})
}

// ------------------------------------------------------------------ the test

async fn create_namespace(client: &Client, name: &str, lv: LevelVersion) -> Result<()> {
    let ns: Namespace = serde_json::from_value(json!({
        "metadata": { "name": name, "labels": {
            "pod-security.kubernetes.io/enforce": lv.level.as_str(),
            "pod-security.kubernetes.io/enforce-version": lv.version.to_string()
        }}
    }))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .with_context(|| format!("creating namespace {name}"))?;
    Ok(())
}

/// What the apiserver did with a dry-run create.
enum Outcome {
    Admitted,
    Forbidden(String),
    Invalid(String),
}

async fn dry_run(client: &Client, ns: &str, pod: &Value) -> Result<Outcome> {
    let typed: Pod = serde_json::from_value(pod.clone()).context("the pod matches the Pod type")?;
    let pp = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    match Api::<Pod>::namespaced(client.clone(), ns)
        .create(&pp, &typed)
        .await
    {
        Ok(_) => Ok(Outcome::Admitted),
        Err(kube::Error::Api(st)) if st.code == 403 => Ok(Outcome::Forbidden(st.message)),
        Err(kube::Error::Api(st)) if st.code == 422 => Ok(Outcome::Invalid(st.message)),
        Err(e) => Err(e).context("dry-run create"),
    }
}

/// Waits until Pod Security Admission enforces the namespace's labels.
async fn wait_for_enforcement(client: &Client, ns: &str) -> Result<()> {
    let probe = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probe"},
        "spec": {"hostPID": true, "containers": [{"name": "c", "image": "busybox:1"}]}});
    let deadline = Instant::now() + PROPAGATION;
    loop {
        if let Outcome::Forbidden(_) = dry_run(client, ns, &probe).await? {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "namespace {ns} did not enforce Pod Security within {PROPAGATION:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn engine_agrees_with_the_apiserver_on_pod_security() {
    let tb = testbed();
    on_every_cluster(&tb, |cluster| async move {
        let client = cluster.admin_client().await?;
        // `latest` as the brief of this test; two older versions to prove the per-version
        // behaviour against the apiserver's own (restricted before the Windows exemptions and
        // the newer sysctls; baseline before the probe-host check).
        let namespaces = [
            (
                LevelVersion::latest(Level::Baseline),
                unique_name("pss-baseline"),
            ),
            (
                LevelVersion::latest(Level::Restricted),
                unique_name("pss-restricted"),
            ),
            (
                LevelVersion::new(Level::Restricted, Version::Minor(24)),
                unique_name("pss-restricted-124"),
            ),
            (
                LevelVersion::new(Level::Baseline, Version::Minor(33)),
                unique_name("pss-baseline-133"),
            ),
        ];
        for (lv, ns) in &namespaces {
            create_namespace(&client, ns, *lv).await?;
        }
        let result = compare(&client, &namespaces).await;
        for (_, ns) in &namespaces {
            delete_namespace(&client, ns).await?;
        }
        result
    })
    .await;
}

async fn compare(client: &Client, namespaces: &[(LevelVersion, String)]) -> Result<()> {
    for (_, ns) in namespaces {
        wait_for_enforcement(client, ns).await?;
    }
    let mut rng = Rng(0x0070_d5ec_0001);
    let pods: Vec<Value> = (0..PODS)
        .map(|i| generate_pod(&mut rng, &format!("pod-{i:03}")))
        .collect();
    let (mut allowed, mut denied) = (0usize, 0usize);
    let mut mismatches = Vec::new();
    let mut invalid = Vec::new();
    for pod in &pods {
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        for (lv, ns) in namespaces {
            let lv = *lv;
            let mut object = pod.clone();
            object["metadata"]["namespace"] = json!(ns);
            let request = AdmissionRequest::create(object)?;
            let verdict = pss::evaluate(lv, Mode::Enforce, &request);
            let engine = (verdict.action() == Action::Deny).then(|| {
                format!(
                    "pods \"{name}\" is forbidden: {}",
                    verdict.findings[0].message
                )
            });
            let describe = || serde_json::to_string_pretty(pod).unwrap_or_default();
            match (dry_run(client, ns, pod).await?, engine) {
                (Outcome::Invalid(message), _) => {
                    invalid.push(format!("{lv} {name}: {message}\n{}", describe()));
                }
                (Outcome::Admitted, None) => allowed += 1,
                (Outcome::Forbidden(server), Some(ours)) if server == ours => denied += 1,
                (server, ours) => {
                    let server = match server {
                        Outcome::Admitted => "admitted".to_owned(),
                        Outcome::Forbidden(m) | Outcome::Invalid(m) => m,
                    };
                    let ours = ours.unwrap_or_else(|| "admitted".to_owned());
                    mismatches.push(format!(
                        "{lv} {name}:\n  apiserver: {server}\n  engine:    {ours}\n{}",
                        describe()
                    ));
                }
            }
        }
    }
    let compared = allowed + denied + mismatches.len();
    eprintln!(
        "PSS differential, Pods: {compared} dry-run creates compared ({PODS} pods x {} policies): \
         {} agree ({allowed} admitted, {denied} denied with the same message), {} differ, \
         {} invalid pods skipped",
        namespaces.len(),
        allowed + denied,
        mismatches.len(),
        invalid.len()
    );
    let (warned, quiet, template_mismatches) = compare_templates(client, namespaces, &pods).await?;
    eprintln!(
        "PSS differential, Deployments: {} dry-run creates: {} agree ({warned} warned with the \
         same text, {quiet} without a warning), {} differ",
        warned + quiet + template_mismatches.len(),
        warned + quiet,
        template_mismatches.len()
    );
    mismatches.extend(template_mismatches);
    for m in &mismatches {
        eprintln!("MISMATCH {m}\n");
    }
    for m in &invalid {
        eprintln!("INVALID {m}\n");
    }
    if !mismatches.is_empty() {
        bail!(
            "{} of {compared} verdicts differ from the apiserver (printed above)",
            mismatches.len()
        );
    }
    ensure!(
        invalid.is_empty(),
        "{} generated pods were invalid (printed above); the generator must only make valid pods",
        invalid.len()
    );
    ensure!(
        allowed > PODS / 10 && denied > PODS / 2 && warned > 0 && quiet > 0,
        "the pods are not varied enough: {allowed} admitted, {denied} denied, \
         {warned} Deployments warned, {quiet} not"
    );
    Ok(())
}

/// Deployments made from the first pods: enforce does not apply to templates, but the warn
/// level (which follows enforce) does, and the template sees no Pod defaulting.
async fn compare_templates(
    client: &Client,
    namespaces: &[(LevelVersion, String)],
    pods: &[Value],
) -> Result<(usize, usize, Vec<String>)> {
    let (mut warned, mut quiet) = (0usize, 0usize);
    let mut mismatches = Vec::new();
    let pp = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    for pod in pods.iter().take(DEPLOYMENTS) {
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        let mut template_metadata = pod["metadata"].clone();
        if let Some(m) = template_metadata.as_object_mut() {
            m.remove("name");
        }
        template_metadata["labels"] = json!({"app": name});
        let deployment = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": template_metadata, "spec": pod["spec"]}
            }
        });
        for (lv, ns) in namespaces {
            let mut object = deployment.clone();
            object["metadata"]["namespace"] = json!(ns);
            let verdict = pss::evaluate(*lv, Mode::Enforce, &AdmissionRequest::create(object)?);
            let ours = verdict
                .findings
                .iter()
                .find(|f| f.action == Action::Warn)
                .map(|f| f.message.clone());
            ensure!(
                verdict.action() != Action::Deny,
                "enforce must not deny a Deployment: {verdict:?}"
            );
            let typed: Deployment = serde_json::from_value(deployment.clone())?;
            let api = Api::<Deployment>::namespaced(client.clone(), ns);
            let created = create_with_warnings(&api, &pp, &typed)
                .await
                .with_context(|| format!("dry-run create of Deployment {name} in {ns}"))?;
            let server: Vec<&String> = created
                .warnings
                .iter()
                .filter(|w| w.contains("PodSecurity"))
                .collect();
            match (server.as_slice(), &ours) {
                ([], None) => quiet += 1,
                ([theirs], Some(ours)) if *theirs == ours => warned += 1,
                _ => mismatches.push(format!(
                    "{lv} Deployment {name}:\n  apiserver: {server:?}\n  engine:    {ours:?}\n{}",
                    serde_json::to_string_pretty(&deployment).unwrap_or_default()
                )),
            }
        }
    }
    Ok((warned, quiet, mismatches))
}
