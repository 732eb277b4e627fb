//! Seeded, varied Kubernetes workloads: for benchmarks, differential tests and demos.
//!
//! Everything here is pure and deterministic: the same seed gives the same objects on every
//! machine. The objects are meant to be *valid* for a real kube-apiserver (a server-side dry-run
//! create of any of them must not fail validation), and varied along the lines Palisade's policies
//! look at: security contexts (privileged, privilege escalation, root users, read-only root
//! filesystems, capabilities, seccomp, SELinux, AppArmor, procMount), images (tags, `:latest`, no
//! tag, digests, several registries including the library's sample allow-list), resource limits,
//! environment variables read from Secrets or holding literal credentials, service account token
//! automount, host namespaces and ports, volumes (hostPath among others), init and sidecar
//! containers, Windows pods, labels (with and without the library's required labels) and
//! namespaces.
//!
//! - [`pods`]: `n` Pods from a seed.
//! - [`workloads`]: `n` objects of every pod-bearing kind from a seed.
//! - [`pod`] / [`workload`]: one object from a [`Rng`] you drive yourself.

use serde_json::{json, Map, Value};

/// Namespaces the generated objects are put in. `kube-system` is among them so that policies'
/// system-namespace exclusions are exercised; callers that need other names can remap them.
pub const NAMESPACES: &[&str] = &["default", "team-a", "team-b", "payments", "kube-system"];

/// The label keys the library's `require-labels` sample parameters ask for.
pub const REQUIRED_LABELS: &[&str] = &["app.kubernetes.io/name", "owner"];

/// The kinds [`workload`] makes, with their `apiVersion`: every workload kind.
pub use crate::pss::WORKLOAD_KINDS as KINDS;

/// SplitMix64: a small, seeded, reproducible pseudo-random generator (not for cryptography).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// True `percent` times in a hundred.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One of `items`, which must not be empty (an empty slice gives `T::default()`).
    pub fn pick<T: Clone + Default>(&mut self, items: &[T]) -> T {
        let index = self.below(items.len() as u64) as usize;
        items.get(index).cloned().unwrap_or_default()
    }
}

const DIGEST: &str = "@sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945";

/// Images: tagged, `:latest`, untagged, by digest, tag and digest, a registry with a port; from
/// the library's sample allow-list (`registry.example.com/`, `ghcr.io/example-org/`) and not.
const IMAGES: &[&str] = &[
    "registry.example.com/shop/api:1.4.2",
    "registry.example.com/shop/api:latest",
    "registry.example.com/shop/worker@sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945",
    "ghcr.io/example-org/tool:2.0.1@sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945",
    "ghcr.io/example-org/tool",
    "ghcr.io/acme/worker@sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945",
    "nginx:1.27",
    "nginx",
    "busybox:latest",
    "docker.io/library/redis:7.2",
    "quay.io/prometheus/node-exporter:v1.8.0",
    "localhost:5000/debug-tools",
    "localhost:5000/debug-tools:0.3",
];

const WINDOWS_IMAGES: &[&str] = &[
    "mcr.microsoft.com/windows/nanoserver:ltsc2022",
    "mcr.microsoft.com/windows/servercore:latest",
];

/// Seccomp / AppArmor profile: RuntimeDefault, Unconfined or Localhost (with a profile).
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

/// Resource requests and limits: none, only requests, only some limits, or full limits.
fn resources(rng: &mut Rng) -> Option<Value> {
    match rng.below(6) {
        0 => None,
        1 => Some(json!({"requests": {"cpu": "100m", "memory": "64Mi"}})),
        2 => Some(json!({"limits": {"memory": "256Mi"}})),
        3 => Some(json!({"limits": {"cpu": "1"}})),
        _ => Some(json!({
            "requests": {"cpu": "100m", "memory": "64Mi"},
            "limits": {"cpu": rng.pick(&["250m", "1", "2"]), "memory": rng.pick(&["128Mi", "1Gi"])}
        })),
    }
}

/// Environment: plain values, values from Secrets or ConfigMaps, literal credentials.
fn env(rng: &mut Rng, container: &mut Value) {
    let mut vars = Vec::new();
    if rng.chance(40) {
        vars.push(json!({"name": "LOG_LEVEL", "value": rng.pick(&["info", "debug"])}));
    }
    if rng.chance(12) {
        vars.push(json!({"name": "DB_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}}));
    }
    if rng.chance(8) {
        let name = rng.pick(&["API_TOKEN", "api_key", "SERVICE_SECRET", "DB_PASSWORD_FILE"]);
        let value = if name.ends_with("_FILE") {
            "/etc/secrets/db-password"
        } else {
            rng.pick(&["hunter2", ""])
        };
        vars.push(json!({"name": name, "value": value}));
    }
    if rng.chance(10) {
        vars.push(json!({"name": "REGION",
            "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "region"}}}));
    }
    if !vars.is_empty() {
        container["env"] = json!(vars);
    }
    if rng.chance(6) {
        let from = if rng.chance(50) {
            json!({"secretRef": {"name": "creds"}})
        } else {
            json!({"configMapRef": {"name": "settings"}})
        };
        container["envFrom"] = json!([from]);
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
    if let Some(r) = resources(rng) {
        c["resources"] = r;
    }
    env(rng, &mut c);
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
    } else if rng.chance(5) {
        sc.insert("privileged".into(), json!(false));
    }
    if rng.chance(65) {
        let mut caps = Map::new();
        let drop: Value = rng.pick(&[
            json!(["ALL"]),
            json!(["ALL"]),
            json!(["NET_RAW"]),
            json!(["all"]),
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
    if let Some(v) = rng.pick(&[None, None, Some(true), Some(true), Some(false)]) {
        sc.insert("readOnlyRootFilesystem".into(), json!(v));
    }
    c["securityContext"] = Value::Object(sc);
    c
}

fn windows_container(rng: &mut Rng, name: &str, host_process: bool) -> Value {
    let mut c = json!({"name": name, "image": rng.pick(WINDOWS_IMAGES)});
    if let Some(r) = resources(rng) {
        c["resources"] = r;
    }
    env(rng, &mut c);
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
        json!({"hostPath": {"path": "/var/run/docker.sock", "type": "Socket"}}),
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

/// Labels: an `app` label always (workload selectors use it), and the library's required labels
/// sometimes, each on its own.
fn labels(rng: &mut Rng, app: &str, hardened: bool) -> Map<String, Value> {
    let likely = if hardened { HARDENING } else { 60 };
    let mut labels = Map::new();
    labels.insert("app".into(), json!(app));
    if rng.chance(likely) {
        labels.insert("app.kubernetes.io/name".into(), json!(app));
    }
    if rng.chance(likely) {
        labels.insert("owner".into(), json!(rng.pick(&["team-a", "team-b"])));
    }
    if rng.chance(20) {
        labels.insert("tier".into(), json!(rng.pick(&["web", "batch"])));
    }
    labels
}

/// Images a hardened container uses: from the library's sample allow-list, pinned by digest.
const HARDENED_IMAGES: &[&str] = &[
    "registry.example.com/shop/api:1.4.2@sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945",
    "ghcr.io/example-org/tool@sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945",
];

/// Percent chance that each hardening step of a hardened pod is taken: most are, so a hardened
/// pod breaks one or two rules rather than all of them.
const HARDENING: u64 = 90;

/// Fixes a Linux container along each line the library checks, each step with [`HARDENING`]
/// percent chance, keeping it valid (no privileged or added SYS_ADMIN once escalation is off).
fn harden_container(rng: &mut Rng, c: &mut Value) {
    if rng.chance(HARDENING) {
        c["image"] = json!(rng.pick(HARDENED_IMAGES));
    }
    if rng.chance(HARDENING) {
        c["resources"] = json!({"requests": {"cpu": "100m", "memory": "64Mi"},
            "limits": {"cpu": "500m", "memory": "256Mi"}});
    }
    if rng.chance(HARDENING) {
        if let Some(env) = c.get_mut("env").and_then(Value::as_array_mut) {
            env.retain(|e| {
                let name = e["name"].as_str().unwrap_or_default();
                e["valueFrom"].get("secretKeyRef").is_none()
                    && !["API_TOKEN", "api_key", "SERVICE_SECRET"].contains(&name)
            });
        }
        if let Some(map) = c.as_object_mut() {
            map.remove("envFrom");
        }
    }
    if !c["securityContext"].is_object() {
        c["securityContext"] = json!({});
    }
    let sc = &mut c["securityContext"];
    if rng.chance(HARDENING) {
        sc["allowPrivilegeEscalation"] = json!(false);
        if let Some(map) = sc.as_object_mut() {
            map.remove("privileged");
        }
        if let Some(add) = sc["capabilities"]
            .get_mut("add")
            .and_then(Value::as_array_mut)
        {
            add.retain(|a| a != "SYS_ADMIN");
        }
    }
    if rng.chance(HARDENING) {
        let keep_bind = rng.chance(30);
        sc["capabilities"] = if keep_bind {
            json!({"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]})
        } else {
            json!({"drop": ["ALL"]})
        };
    }
    if rng.chance(HARDENING) {
        sc["runAsNonRoot"] = json!(true);
        if sc["runAsUser"] == 0 {
            sc["runAsUser"] = json!(1000);
        }
    }
    if rng.chance(HARDENING) {
        sc["readOnlyRootFilesystem"] = json!(true);
    }
    if rng.chance(HARDENING) && sc["seccompProfile"]["type"] == "Unconfined" {
        sc["seccompProfile"] = json!({"type": "RuntimeDefault"});
    }
}

/// Fixes a Linux pod spec (host namespaces, hostPath volumes, token automount, root user,
/// seccomp) and its containers, each step with [`HARDENING`] percent chance.
fn harden_spec(rng: &mut Rng, spec: &mut Map<String, Value>) {
    for field in ["containers", "initContainers"] {
        if let Some(containers) = spec.get_mut(field).and_then(Value::as_array_mut) {
            for c in containers {
                harden_container(rng, c);
            }
        }
    }
    if rng.chance(HARDENING) {
        for field in ["hostNetwork", "hostPID", "hostIPC"] {
            spec.remove(field);
        }
    }
    if rng.chance(HARDENING) {
        if let Some(volumes) = spec.get_mut("volumes").and_then(Value::as_array_mut) {
            volumes.retain(|v| v.get("hostPath").is_none());
        }
    }
    if rng.chance(HARDENING) {
        spec.insert("automountServiceAccountToken".into(), json!(false));
    }
    let psc = spec.entry("securityContext").or_insert_with(|| json!({}));
    if rng.chance(HARDENING) {
        psc["runAsNonRoot"] = json!(true);
        if psc["runAsUser"] == 0 {
            psc["runAsUser"] = json!(1000);
        }
    }
    if rng.chance(HARDENING) {
        psc["seccompProfile"] = json!({"type": "RuntimeDefault"});
    }
}

/// One varied, valid pod spec. `restart_policy` is what the owning kind allows (`None`: leave it
/// unset, which a Pod defaults to `Always`). Also says whether the pod is Windows and whether it
/// was hardened.
fn pod_spec(rng: &mut Rng, restart_policy: Option<&str>) -> (Map<String, Value>, bool, bool) {
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
        } else if rng.chance(3) {
            spec.insert(field.into(), json!(false));
        }
    }
    if shape.user_namespace {
        spec.insert("hostUsers".into(), json!(false));
    }
    if let Some(v) = rng.pick(&[None, None, Some(true), Some(false), Some(false)]) {
        spec.insert("automountServiceAccountToken".into(), json!(v));
    }
    if let Some(policy) = restart_policy {
        spec.insert("restartPolicy".into(), json!(policy));
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
    // Half the Linux pods are hardened: they break a rule or two, not nearly all of them.
    let hardened = !shape.windows && rng.chance(50);
    if hardened {
        harden_spec(rng, &mut spec);
    }
    (spec, shape.windows, hardened)
}

/// Pod metadata for `spec`: labels and, sometimes, the old AppArmor annotation on a container
/// that has no AppArmor field.
fn pod_metadata(
    rng: &mut Rng,
    app: &str,
    spec: &Map<String, Value>,
    windows: bool,
    hardened: bool,
) -> Value {
    let mut metadata = json!({"labels": labels(rng, app, hardened)});
    if !windows && rng.chance(6) {
        let spec_has_field = spec
            .get("securityContext")
            .and_then(|s| s.get("appArmorProfile"))
            .is_some()
            || spec
                .get("containers")
                .and_then(|c| c.get(0))
                .and_then(|c| c.get("securityContext"))
                .and_then(|s| s.get("appArmorProfile"))
                .is_some();
        if !spec_has_field {
            metadata["annotations"] = json!({
                "container.apparmor.security.beta.kubernetes.io/c0":
                    rng.pick(&["runtime/default", "unconfined", "localhost/app"])
            });
        }
    }
    metadata
}

/// One varied, valid Pod named `name`, in one of [`NAMESPACES`].
pub fn pod(rng: &mut Rng, name: &str) -> Value {
    let namespace = rng.pick(NAMESPACES);
    let (spec, windows, hardened) = pod_spec(rng, None);
    let mut metadata = pod_metadata(rng, name, &spec, windows, hardened);
    metadata["name"] = json!(name);
    metadata["namespace"] = json!(namespace);
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec})
}

/// One varied, valid object of one of [`KINDS`] named `name` (a Pod, or a workload with a pod
/// template), in one of [`NAMESPACES`]. Workloads select their pods by the `app: <name>` label;
/// the workload's own labels and its template's are drawn separately, so either may lack the
/// library's required labels.
pub fn workload(rng: &mut Rng, name: &str) -> Value {
    let (api_version, kind) = rng.pick(KINDS);
    if kind == "Pod" {
        return pod(rng, name);
    }
    let namespace = rng.pick(NAMESPACES);
    let batch = matches!(kind, "Job" | "CronJob");
    let restart = if batch {
        Some(rng.pick(&["OnFailure", "Never"]))
    } else if rng.chance(30) {
        Some("Always")
    } else {
        None
    };
    let (spec, windows, hardened) = pod_spec(rng, restart);
    let template_metadata = pod_metadata(rng, name, &spec, windows, hardened);
    let template = json!({"metadata": template_metadata, "spec": spec});
    let selector = json!({"matchLabels": {"app": name}});
    let workload_spec = match kind {
        "Deployment" | "ReplicaSet" => {
            json!({"replicas": 1 + rng.below(3), "selector": selector, "template": template})
        }
        "StatefulSet" => json!({
            "replicas": 1, "serviceName": name, "selector": selector, "template": template
        }),
        "DaemonSet" => json!({"selector": selector, "template": template}),
        "Job" => json!({"backoffLimit": rng.below(4), "template": template}),
        _ => json!({
            "schedule": rng.pick(&["*/5 * * * *", "0 3 * * *"]),
            "jobTemplate": {"spec": {"template": template}}
        }),
    };
    json!({
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace, "labels": labels(rng, name, hardened)},
        "spec": workload_spec,
    })
}

/// `n` varied Pods named `pod-0`, `pod-1` …, from `seed`.
pub fn pods(seed: u64, n: usize) -> Vec<Value> {
    let mut rng = Rng::new(seed);
    (0..n).map(|i| pod(&mut rng, &format!("pod-{i}"))).collect()
}

/// `n` varied objects of every kind in [`KINDS`] named `w-0`, `w-1` …, from `seed`.
pub fn workloads(seed: u64, n: usize) -> Vec<Value> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|i| workload(&mut rng, &format!("w-{i}")))
        .collect()
}

/// The image every container of the object uses, for quick summaries in demos.
pub fn images(object: &Value) -> Vec<&str> {
    let spec = match object.get("kind").and_then(Value::as_str) {
        Some("Pod") => object.get("spec"),
        Some("CronJob") => object.pointer("/spec/jobTemplate/spec/template/spec"),
        _ => object.pointer("/spec/template/spec"),
    };
    ["containers", "initContainers"]
        .iter()
        .filter_map(|field| spec.and_then(|s| s.get(*field)).and_then(Value::as_array))
        .flatten()
        .filter_map(|c| c.get("image").and_then(Value::as_str))
        .collect()
}

/// A digest suffix used by the generated images, for tests that build their own.
pub const SAMPLE_DIGEST: &str = DIGEST;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_objects() {
        assert_eq!(pods(7, 50), pods(7, 50));
        assert_ne!(pods(7, 50), pods(8, 50));
        assert_eq!(workloads(7, 50), workloads(7, 50));
    }

    #[test]
    fn workloads_cover_every_kind_and_their_selectors_match() {
        let objects = workloads(1, 300);
        for (_, kind) in KINDS {
            assert!(
                objects.iter().any(|o| o["kind"] == *kind),
                "no {kind} among 300"
            );
        }
        for object in &objects {
            let name = &object["metadata"]["name"];
            match object["kind"].as_str().unwrap() {
                "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" => {
                    assert_eq!(&object["spec"]["selector"]["matchLabels"]["app"], name);
                    assert_eq!(
                        &object["spec"]["template"]["metadata"]["labels"]["app"],
                        name
                    );
                    let restart = &object["spec"]["template"]["spec"]["restartPolicy"];
                    assert!(restart.is_null() || restart == "Always", "{object}");
                }
                "Job" => {
                    let restart = &object["spec"]["template"]["spec"]["restartPolicy"];
                    assert!(restart == "OnFailure" || restart == "Never", "{object}");
                }
                "CronJob" => assert!(object["spec"]["schedule"].is_string()),
                _ => {}
            }
            assert!(!images(object).is_empty(), "{object}");
        }
    }

    #[test]
    fn pods_vary_along_what_policies_check() {
        let all = pods(3, 500);
        let text: Vec<String> = all.iter().map(Value::to_string).collect();
        let count = |needle: &str| text.iter().filter(|t| t.contains(needle)).count();
        for needle in [
            "\"privileged\":true",
            "\"allowPrivilegeEscalation\":true",
            "\"runAsUser\":0",
            "\"readOnlyRootFilesystem\":true",
            "\"drop\":[\"ALL\"]",
            "Unconfined",
            "Localhost",
            ":latest",
            "@sha256:",
            "registry.example.com/",
            "\"limits\"",
            "secretKeyRef",
            "\"automountServiceAccountToken\":false",
            "\"hostNetwork\":true",
            "\"hostPID\":true",
            "\"hostPath\"",
            "initContainers",
            "\"owner\"",
            "kube-system",
            "windows",
        ] {
            let n = count(needle);
            assert!(n > 0 && n < all.len(), "{needle}: in {n} of {}", all.len());
        }
        // Ports are unique within a pod, so host ports never collide.
        for pod in &all {
            let ports: Vec<&Value> = text_ports(pod);
            let mut unique = ports.clone();
            unique.dedup();
            assert_eq!(ports.len(), unique.len(), "{pod}");
        }
    }

    fn text_ports(pod: &Value) -> Vec<&Value> {
        let mut ports: Vec<&Value> = ["containers", "initContainers"]
            .iter()
            .filter_map(|f| pod["spec"][*f].as_array())
            .flatten()
            .filter_map(|c| c["ports"].as_array())
            .flatten()
            .map(|p| &p["containerPort"])
            .collect();
        ports.sort_by_key(|p| p.as_u64());
        ports
    }

    #[test]
    fn pick_and_below_never_panic_on_empty_input() {
        let mut rng = Rng::new(0);
        assert_eq!(rng.below(0), 0);
        let empty: [u8; 0] = [];
        assert_eq!(rng.pick(&empty), 0);
    }
}
