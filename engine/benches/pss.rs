//! Pod Security throughput: pods checked per second, per core.
//!
//! 10,000 varied pods (seeded, so every run sees the same ones; about 16% fail baseline and 30%
//! fail restricted) at baseline and restricted, two ways:
//! - `verdict`: which checks fail ([`pss::verdict_pod`]), all a scan needs per pod;
//! - `messages`: [`pss::check_pod`] plus the apiserver's wording of every denial.
//!
//! Then the same on 100 pods that stay in cache, one typical passing pod, CPU time per pod on one
//! core (the machine may be shared, so wall time alone misleads), and every core at once. A last
//! line gives the floor set by memory: the 10,000 parsed pods take about 200 MB of
//! `serde_json::Value` trees, far beyond the caches, and merely walking to the fields every
//! check must read costs most of what checking costs.
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

fn verdicts(lv: LevelVersion, pods: &[Value]) -> usize {
    pods.iter()
        .filter(|p| pss::verdict_pod(lv, &p["metadata"], &p["spec"]).allowed())
        .count()
}

/// Checks with the full wording: the length of all messages, so none is optimised away.
fn messages(lv: LevelVersion, pods: &[Value]) -> usize {
    pods.iter()
        .map(|p| {
            pss::check_pod(lv, &p["metadata"], &p["spec"])
                .message(lv)
                .map_or(0, |m| m.len())
        })
        .sum()
}

type Run = fn(LevelVersion, &[Value]) -> usize;
const RUNS: [(&str, Run); 2] = [("verdict", verdicts), ("messages", messages)];

fn single_core(c: &mut Criterion) {
    let pods = pods();
    for level in [Level::Baseline, Level::Restricted] {
        let lv = LevelVersion::latest(level);
        let allowed = verdicts(lv, &pods);
        let full = pods
            .iter()
            .filter(|p| pss::check_pod(lv, &p["metadata"], &p["spec"]).allowed())
            .count();
        assert_eq!(allowed, full, "verdict and full check disagree");
        eprintln!(
            "{lv}: {allowed} of {} varied pods allowed, {:.1}% denied",
            pods.len(),
            100.0 * (pods.len() - allowed) as f64 / pods.len() as f64
        );
    }
    // The same kind of pods, few enough to stay in cache: what the checks cost apart from
    // fetching 10,000 pod trees from memory.
    let hot: Vec<Value> = pods.iter().take(100).cloned().collect();
    for (label, set) in [("10k-varied-pods", &pods), ("100-varied-pods", &hot)] {
        let mut group = c.benchmark_group("pss");
        group.throughput(Throughput::Elements(set.len() as u64));
        for level in [Level::Baseline, Level::Restricted] {
            let lv = LevelVersion::latest(level);
            for (kind, run) in RUNS {
                group.bench_function(format!("{level}/{label}/{kind}"), |b| {
                    b.iter(|| run(lv, black_box(set)))
                });
            }
        }
        group.finish();
    }

    let mut rng = Rng(7);
    let typical = pod(&mut rng, 0, true);
    let lv = LevelVersion::latest(Level::Restricted);
    assert!(pss::check_pod(lv, &typical["metadata"], &typical["spec"]).allowed());
    let mut group = c.benchmark_group("pss");
    group.throughput(Throughput::Elements(1));
    group.bench_function("restricted/typical-passing-pod/verdict", |b| {
        b.iter(|| {
            pss::verdict_pod(
                lv,
                black_box(&typical["metadata"]),
                black_box(&typical["spec"]),
            )
        })
    });
    group.finish();
}

/// CPU nanoseconds per pod on this thread, the best of several passes of at least 0.2 s.
fn cpu_ns_per_pod(lv: LevelVersion, pods: &[Value], run: Run) -> f64 {
    if thread_cpu_ns() == 0 {
        return f64::NAN;
    }
    let reps = (20_000 / pods.len()).max(1);
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let started = thread_cpu_ns();
        let mut checked = 0usize;
        while thread_cpu_ns() - started < 200_000_000 {
            for _ in 0..reps {
                black_box(run(lv, black_box(pods)));
            }
            checked += reps * pods.len();
        }
        best = best.min((thread_cpu_ns() - started) as f64 / checked as f64);
    }
    best
}

/// Only reaches the fields every check must read for a typical pod (annotations, the pod's
/// seccomp profile, each container's capabilities and ports): a lower bound set by memory.
fn touch(_: LevelVersion, pods: &[Value]) -> usize {
    let mut n = 0;
    for p in pods {
        let spec = &p["spec"];
        n += p["metadata"]
            .get("annotations")
            .and_then(Value::as_object)
            .map_or(0, |a| a.len());
        n += spec
            .get("securityContext")
            .and_then(|s| s.get("seccompProfile"))
            .map_or(0, |_| 1);
        for c in spec["containers"].as_array().into_iter().flatten() {
            n += c.get("ports").map_or(0, |_| 1);
            n += c
                .get("securityContext")
                .and_then(|s| s.get("capabilities"))
                .and_then(|c| c.get("drop"))
                .map_or(0, |_| 1);
        }
    }
    n
}

fn cpu_per_pod() {
    let pods = pods();
    let hot: Vec<Value> = pods.iter().take(100).cloned().collect();
    for level in [Level::Baseline, Level::Restricted] {
        let lv = LevelVersion::latest(level);
        for (kind, run) in RUNS {
            let cold = cpu_ns_per_pod(lv, &pods, run);
            let warm = cpu_ns_per_pod(lv, &hot, run);
            println!(
                "pss/{level}/{kind} CPU per pod on one core: {cold:.0} ns over 10,000 pods \
                 ({:.2} M pods/s), {warm:.0} ns over 100 cached pods ({:.2} M pods/s)",
                1e3 / cold,
                1e3 / warm
            );
        }
    }
    let lv = LevelVersion::latest(Level::Restricted);
    println!(
        "memory floor: walking to the checked fields alone takes {:.0} ns per pod over 10,000 pods",
        cpu_ns_per_pod(lv, &pods, touch)
    );
}

/// Every core checks the same 10,000 pods for about two seconds.
fn all_cores() {
    let pods = pods();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    for level in [Level::Baseline, Level::Restricted] {
        let lv = LevelVersion::latest(level);
        for (kind, run) in RUNS {
            let started = Instant::now();
            let results: Vec<(usize, u64)> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..threads)
                    .map(|_| {
                        scope.spawn(|| {
                            let cpu_start = thread_cpu_ns();
                            let mut checked = 0usize;
                            while started.elapsed() < Duration::from_secs(2) {
                                black_box(run(lv, black_box(&pods)));
                                checked += pods.len();
                            }
                            (checked, thread_cpu_ns() - cpu_start)
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let secs = started.elapsed().as_secs_f64();
            let (checked, cpu) = results
                .iter()
                .fold((0, 0), |(n, t), (dn, dt)| (n + dn, t + dt));
            let cpu = cpu as f64 / 1e9;
            println!(
                "pss/{level}/{kind} on {threads} threads: {:.2} M pods/s wall clock; \
                 {:.2} M pods per CPU-second ({checked} pods, {secs:.1} s, {cpu:.1} CPU-s)",
                checked as f64 / secs / 1e6,
                if cpu > 0.0 {
                    checked as f64 / cpu / 1e6
                } else {
                    f64::NAN
                },
            );
        }
    }
}

/// CPU time this thread has used, in nanoseconds (Linux: `/proc/thread-self/schedstat`); 0
/// where unavailable. On a shared machine this says what the work costs when wall-clock figures
/// are diluted by other processes.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

criterion_group!(benches, single_core);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    cpu_per_pod();
    all_cores();
}
