//! The benchmark's 10,000 varied pods (seeded, so every run sees the same ones), shared by
//! `benches/pss.rs` and the tests that hold the compact Pod form to the JSON path on them.
#![allow(dead_code)]

use serde_json::{json, Value};

/// SplitMix64: tiny, seeded, good enough to vary test pods.
pub struct Rng(pub u64);

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
    /// True with probability `percent`/100.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const IMAGES: &[&str] = &[
    "registry.example/app:1.4.2",
    "nginx:1.27",
    "ghcr.io/acme/api@sha256:0f3c6d1e9a0b",
    "busybox:latest",
    "quay.io/team/worker:2024.11",
];

fn container(rng: &mut Rng, name: String, hardened: bool) -> Value {
    let mut sc = serde_json::Map::new();
    if hardened || rng.chance(50) {
        sc.insert(
            "allowPrivilegeEscalation".into(),
            json!(!hardened && rng.chance(30)),
        );
    }
    if hardened || rng.chance(50) {
        let mut caps = json!({"drop": ["ALL"]});
        if rng.chance(20) {
            let add: &[&str] = if hardened {
                &["NET_BIND_SERVICE"]
            } else {
                &["NET_BIND_SERVICE", "NET_ADMIN", "CHOWN", "SYS_ADMIN"]
            };
            caps["add"] = json!([rng.pick(add)]);
        }
        sc.insert("capabilities".into(), caps);
    }
    if !hardened && rng.chance(5) {
        sc.insert("privileged".into(), json!(true));
    }
    if rng.chance(30) {
        sc.insert("readOnlyRootFilesystem".into(), json!(true));
    }
    if rng.chance(20) {
        sc.insert(
            "runAsUser".into(),
            json!(if hardened { 1000 } else { rng.below(2) * 1000 }),
        );
    }
    if !hardened && rng.chance(5) {
        sc.insert("procMount".into(), json!("Unmasked"));
    }
    if !hardened && rng.chance(5) {
        sc.insert("seccompProfile".into(), json!({"type": "Unconfined"}));
    }
    let mut c = json!({
        "name": name,
        "image": rng.pick(IMAGES),
        "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}},
        "env": [{"name": "MODE", "value": "prod"}],
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    });
    if !sc.is_empty() {
        c["securityContext"] = Value::Object(sc);
    }
    if rng.chance(60) {
        let mut port = json!({"containerPort": 8080, "protocol": "TCP"});
        if !hardened && rng.chance(10) {
            port["hostPort"] = json!(8080);
        }
        c["ports"] = json!([port]);
    }
    if rng.chance(40) {
        c["readinessProbe"] = json!({"httpGet": {"path": "/healthz", "port": 8080}});
    }
    c
}

/// A pod; `hardened` ones meet the restricted profile.
pub fn pod(rng: &mut Rng, i: usize, hardened: bool) -> Value {
    let containers = 1 + rng.below(3) as usize;
    let mut spec = json!({
        "containers": (0..containers).map(|n| container(rng, format!("c{n}"), hardened)).collect::<Vec<_>>(),
        "volumes": [{"name": "data", "emptyDir": {}}],
        "serviceAccountName": "app",
    });
    if rng.chance(30) {
        spec["initContainers"] = json!([container(rng, "init".into(), hardened)]);
    }
    let mut psc = serde_json::Map::new();
    if hardened || rng.chance(50) {
        psc.insert("runAsNonRoot".into(), json!(hardened || rng.chance(50)));
        psc.insert("seccompProfile".into(), json!({"type": "RuntimeDefault"}));
    }
    if rng.chance(20) {
        psc.insert("fsGroup".into(), json!(2000));
    }
    if !hardened && rng.chance(5) {
        psc.insert(
            "sysctls".into(),
            json!([{"name": "kernel.msgmax", "value": "1"}]),
        );
    }
    spec["securityContext"] = Value::Object(psc);
    if !hardened {
        for field in ["hostNetwork", "hostPID", "hostIPC"] {
            if rng.chance(3) {
                spec[field] = json!(true);
            }
        }
        if rng.chance(5) {
            spec["volumes"]
                .as_array_mut()
                .unwrap()
                .push(json!({"name": "host", "hostPath": {"path": "/var/run"}}));
        }
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": format!("pod-{i}"), "namespace": "team", "labels": {"app": "bench"},
                     "annotations": {"team": "payments"}},
        "spec": spec,
    })
}

/// 10,000 pods, 70% meeting the restricted profile.
pub fn pods() -> Vec<Value> {
    let mut rng = Rng(0x005e_ed0f_9055);
    (0..10_000)
        .map(|i| {
            let hardened = rng.chance(70);
            pod(&mut rng, i, hardened)
        })
        .collect()
}
