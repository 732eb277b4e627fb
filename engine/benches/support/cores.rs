//! CPU time and every core at once, for the benchmarks that report CPU time per evaluation beside
//! criterion's wall-clock figures (the machine may be shared, and CPU time is not distorted by
//! what else it runs).
#![allow(dead_code)]

use std::hint::black_box;
use std::time::Duration;

/// This thread's CPU time so far (Linux); `None` elsewhere.
pub fn thread_cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

/// The CPU seconds this thread spends running `work` `rounds` times; `None` off Linux.
pub fn cpu_seconds(rounds: usize, mut work: impl FnMut() -> usize) -> Option<f64> {
    let start = thread_cpu_time()?;
    for _ in 0..rounds {
        black_box(work());
    }
    Some((thread_cpu_time()? - start).as_secs_f64())
}

/// How many threads [`on_every_core`] runs.
pub fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `work` on a thread per core at once, each given its share of `items`; their answers in order.
pub fn on_every_core<T: Sync, R: Send>(items: &[T], work: impl Fn(&[T]) -> R + Sync) -> Vec<R> {
    let chunk = items.len().div_ceil(threads());
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(|| work(part)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a benchmark thread panicked"))
            .collect()
    })
}
