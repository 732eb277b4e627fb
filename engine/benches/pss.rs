//! Pod Security throughput: pods checked per second.
//!
//! 10,000 varied pods (seeded, so every run sees the same ones) at baseline and restricted on one
//! core, one typical passing pod on its own, then the same 10,000 pods on every core at once
//! with `std::thread::scope`, printed as pods per second.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion, Throughput};
use palisade_engine::pss::{self, Level, LevelVersion};
use serde_json::{json, Value};

/// SplitMix64: tiny, seeded, good enough to vary test pods.
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
fn pod(rng: &mut Rng, i: usize, hardened: bool) -> Value {
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
fn pods() -> Vec<Value> {
    let mut rng = Rng(0x005e_ed0f_9055);
    (0..10_000)
        .map(|i| {
            let hardened = rng.chance(70);
            pod(&mut rng, i, hardened)
        })
        .collect()
}

fn check_all(lv: LevelVersion, pods: &[Value]) -> usize {
    pods.iter()
        .filter(|p| pss::check_pod(lv, &p["metadata"], &p["spec"]).allowed())
        .count()
}

fn single_core(c: &mut Criterion) {
    let pods = pods();
    let mut group = c.benchmark_group("pss");
    group.throughput(Throughput::Elements(pods.len() as u64));
    for level in [Level::Baseline, Level::Restricted] {
        let lv = LevelVersion::latest(level);
        let allowed = check_all(lv, &pods);
        eprintln!("{lv}: {allowed} of {} varied pods allowed", pods.len());
        group.bench_function(format!("{level}/10k-varied-pods"), |b| {
            b.iter(|| check_all(lv, black_box(&pods)))
        });
    }
    group.finish();

    // The same kind of pods, few enough to stay in cache: what the checks cost apart from
    // fetching 10,000 pod trees from memory.
    for n in [100, 1000] {
        let hot: Vec<Value> = pods.iter().take(n).cloned().collect();
        let mut group = c.benchmark_group("pss");
        group.throughput(Throughput::Elements(hot.len() as u64));
        for level in [Level::Baseline, Level::Restricted] {
            let lv = LevelVersion::latest(level);
            group.bench_function(format!("{level}/{n}-varied-pods"), |b| {
                b.iter(|| check_all(lv, black_box(&hot)))
            });
        }
        group.finish();
    }

    let mut rng = Rng(7);
    let typical = pod(&mut rng, 0, true);
    let lv = LevelVersion::latest(Level::Restricted);
    assert!(pss::check_pod(lv, &typical["metadata"], &typical["spec"]).allowed());
    let mut group = c.benchmark_group("pss");
    group.throughput(Throughput::Elements(1));
    group.bench_function("restricted/typical-passing-pod", |b| {
        b.iter(|| {
            pss::check_pod(
                lv,
                black_box(&typical["metadata"]),
                black_box(&typical["spec"]),
            )
        })
    });
    group.finish();
}

/// Every core checks the same 10,000 pods for about two seconds.
fn all_cores() {
    let pods = pods();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    for level in [Level::Baseline, Level::Restricted] {
        let lv = LevelVersion::latest(level);
        let started = Instant::now();
        let results: Vec<(usize, f64)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        let cpu_start = thread_cpu_seconds();
                        let mut checked = 0usize;
                        while started.elapsed() < Duration::from_secs(2) {
                            black_box(check_all(lv, black_box(&pods)));
                            checked += pods.len();
                        }
                        (checked, thread_cpu_seconds() - cpu_start)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let secs = started.elapsed().as_secs_f64();
        let (checked, cpu): (usize, f64) = results
            .iter()
            .fold((0, 0.0), |(n, t), (dn, dt)| (n + dn, t + dt));
        println!(
            "pss/{level} on {threads} threads: {:.2} M pods/s wall clock; {:.2} M pods per CPU-second \
             ({checked} pods, {secs:.1} s, {cpu:.1} CPU-s)",
            checked as f64 / secs / 1e6,
            if cpu > 0.0 { checked as f64 / cpu / 1e6 } else { f64::NAN },
        );
    }
}

/// CPU time this thread has used (Linux: `/proc/thread-self/stat`, in clock ticks of 10 ms);
/// 0 where unavailable. On a shared machine this says what the work costs when wall-clock
/// figures are diluted by other processes.
fn thread_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/thread-self/stat") else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

criterion_group!(benches, single_core);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    all_cores();
}
