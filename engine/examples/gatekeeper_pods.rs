//! Writes varied Pods (from `palisade_engine::sample`, fixed seed) as one YAML stream, the workload
//! the Gatekeeper comparison with `gator test` runs on (`benches/gatekeeper.rs` explains it):
//!
//! ```sh
//! cargo run --release -p palisade-engine --example gatekeeper_pods -- 5000 /tmp/gk/pods.yaml
//! ```

use std::io::Write;
use std::process::ExitCode;

use palisade_engine::sample;

/// The seed of the comparison's Pods; the same as the benchmark's.
const SEED: u64 = 0x6a7e_0001;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let count = args.next().and_then(|n| n.parse::<usize>().ok());
    let (Some(count), Some(path)) = (count, args.next()) else {
        eprintln!("usage: gatekeeper_pods COUNT OUTPUT.yaml");
        return ExitCode::from(2);
    };
    let mut text = String::new();
    for pod in sample::pods(SEED, count) {
        match serde_yaml_ng::to_string(&pod) {
            Ok(yaml) => {
                text.push_str("---\n");
                text.push_str(&yaml);
            }
            Err(error) => {
                eprintln!("gatekeeper_pods: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    let written = std::fs::File::create(&path).and_then(|mut f| f.write_all(text.as_bytes()));
    if let Err(error) = written {
        eprintln!("gatekeeper_pods: {path}: {error}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
