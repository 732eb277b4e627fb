//! Pod Security throughput: pods checked per second, per core.
//!
//! 10,000 varied pods (seeded, so every run sees the same ones; about 16% fail baseline and 30%
//! fail restricted) at baseline and restricted, two ways:
//! - `verdict`: which checks fail ([`pss::verdict_pod`]), all a scan needs per pod;
//! - `messages`: [`pss::check_pod`] plus the apiserver's wording of every denial.
//!
//! Then the same on 100 pods that stay in cache, one typical passing pod, CPU time per pod on one
//! core (the machine may be shared, so wall time alone misleads), and every core at once. A
//! line gives the floor set by memory: the 10,000 parsed pods take about 200 MB of
//! `serde_json::Value` trees, far beyond the caches, and merely walking to the fields every
//! check must read costs most of what checking costs.
//!
//! The compact form ([`pss::CompactPod`]: only what the checks read, a few MB for the 10,000):
//! - `compact-verdict` / `compact-messages`: the same checks on the 10,000 pods already in
//!   compact form (built once, outside the measurement);
//! - `text/compact-verdict`: from each pod's JSON text (what the impact path holds) to its
//!   verdict, building the compact form each time; `text/value-verdict` is the same through a
//!   `serde_json::Value`, as before the compact form.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion, Throughput};
use palisade_engine::pss::CompactPod;
use palisade_engine::pss::{self, Level, LevelVersion};
use serde_json::Value;

#[path = "support/pss_pods.rs"]
mod pss_pods;

use pss_pods::{pod, pods, Rng};

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

/// A way to check pods of one form (its answer only keeps the work from being optimised away).
type PodRun<T> = fn(LevelVersion, &[T]) -> usize;

type Run = PodRun<Value>;
const RUNS: [(&str, Run); 2] = [("verdict", verdicts), ("messages", messages)];

fn compact_verdicts(lv: LevelVersion, pods: &[CompactPod]) -> usize {
    pods.iter().filter(|p| p.verdict(lv).allowed()).count()
}

fn compact_messages(lv: LevelVersion, pods: &[CompactPod]) -> usize {
    pods.iter()
        .map(|p| p.check(lv).message(lv).map_or(0, |m| m.len()))
        .sum()
}

type CompactRun = PodRun<CompactPod>;
const COMPACT_RUNS: [(&str, CompactRun); 2] = [
    ("compact-verdict", compact_verdicts),
    ("compact-messages", compact_messages),
];

/// From JSON text to verdict through the compact form.
fn text_compact_verdicts(lv: LevelVersion, texts: &[String]) -> usize {
    texts
        .iter()
        .filter(|t| {
            CompactPod::from_json(t)
                .unwrap()
                .is_some_and(|p| p.verdict(lv).allowed())
        })
        .count()
}

/// From JSON text to verdict through a `serde_json::Value`.
fn text_value_verdicts(lv: LevelVersion, texts: &[String]) -> usize {
    texts
        .iter()
        .filter(|t| {
            let object: Value = serde_json::from_str(t).unwrap();
            pss::verdict_object(lv, &object).is_some_and(|v| v.allowed())
        })
        .count()
}

type TextRun = PodRun<String>;
const TEXT_RUNS: [(&str, TextRun); 2] = [
    ("text/compact-verdict", text_compact_verdicts),
    ("text/value-verdict", text_value_verdicts),
];

fn compact(pods: &[Value]) -> Vec<CompactPod> {
    pods.iter()
        .map(|p| CompactPod::from_object(p).unwrap().unwrap())
        .collect()
}

fn texts(pods: &[Value]) -> Vec<String> {
    pods.iter()
        .map(|p| serde_json::to_string(p).unwrap())
        .collect()
}

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
        assert_eq!(
            allowed,
            compact_verdicts(lv, &compact(&pods)),
            "compact form disagrees"
        );
        assert_eq!(
            allowed,
            text_compact_verdicts(lv, &texts(&pods)),
            "from text disagrees"
        );
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
    let mut group = c.benchmark_group("pss");
    group.throughput(Throughput::Elements(pods.len() as u64));
    let (compact, texts) = (compact(&pods), texts(&pods));
    for level in [Level::Baseline, Level::Restricted] {
        let lv = LevelVersion::latest(level);
        for (kind, run) in COMPACT_RUNS {
            group.bench_function(format!("{level}/10k-varied-pods/{kind}"), |b| {
                b.iter(|| run(lv, black_box(&compact)))
            });
        }
        for (kind, run) in TEXT_RUNS {
            group.bench_function(format!("{level}/10k-varied-pods/{kind}"), |b| {
                b.iter(|| run(lv, black_box(&texts)))
            });
        }
    }
    group.finish();

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
fn cpu_ns_per_pod<T>(lv: LevelVersion, pods: &[T], run: fn(LevelVersion, &[T]) -> usize) -> f64 {
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

/// CPU time per pod on one core for each of `runs`: over all `pods`, and over `hot` (100 pods
/// that stay in cache).
fn cold_and_warm<T>(lv: LevelVersion, runs: &[(&str, PodRun<T>)], pods: &[T], hot: &[T]) {
    let level = lv.level;
    for &(kind, run) in runs {
        let cold = cpu_ns_per_pod(lv, pods, run);
        let warm = cpu_ns_per_pod(lv, hot, run);
        println!(
            "pss/{level}/{kind} CPU per pod on one core: {cold:.0} ns over 10,000 pods \
             ({:.2} M pods/s), {warm:.0} ns over 100 cached pods ({:.2} M pods/s)",
            1e3 / cold,
            1e3 / warm
        );
    }
}

fn cpu_per_pod() {
    let pods = pods();
    let hot: Vec<Value> = pods.iter().take(100).cloned().collect();
    for level in [Level::Baseline, Level::Restricted] {
        let lv = LevelVersion::latest(level);
        cold_and_warm(lv, &RUNS, &pods, &hot);
    }
    let (compact, texts) = (compact(&pods), texts(&pods));
    let bytes: usize = texts.iter().map(String::len).sum();
    println!(
        "the 10,000 pods: {:.1} MB of JSON text, {:.0} bytes a pod",
        bytes as f64 / 1e6,
        bytes as f64 / 1e4
    );
    let compact_hot: Vec<CompactPod> = compact.iter().take(100).cloned().collect();
    for level in [Level::Baseline, Level::Restricted] {
        let lv = LevelVersion::latest(level);
        cold_and_warm(lv, &COMPACT_RUNS, &compact, &compact_hot);
        for (kind, run) in TEXT_RUNS {
            let cold = cpu_ns_per_pod(lv, &texts, run);
            println!(
                "pss/{level}/{kind} CPU per pod on one core: {cold:.0} ns over 10,000 pods' JSON \
                 text ({:.2} M pods/s, {:.0} MB/s)",
                1e3 / cold,
                bytes as f64 / 1e4 / cold * 1e3
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
