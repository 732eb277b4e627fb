//! A mutation fuzzer for the YAML → engine path, on stable Rust and with no extra tooling.
//!
//! It takes real policy and resource files as seeds (the built-in library and, when
//! `PALISADE_ORACLES` is set, the upstream oracle data), mutates them (byte flips, deletions,
//! duplications, splices, and tokens that YAML, CEL and Rego parsers find interesting), and feeds each
//! result through everything a user's file reaches: the YAML splitter, every engine's loader, the
//! suite runners and evaluation. Any panic is a bug: the input is saved and the run fails.
//!
//! ```sh
//! cargo run --release -p palisade-engine --example fuzz -- --seconds 600
//! ```

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use palisade_engine::bundle::{Bundle, Context};
use palisade_engine::source::parse_documents;
use palisade_engine::suite::{self, Files};
use palisade_engine::{library, AdmissionRequest, Mode};
use serde_json::json;

/// Fragments that tend to reach unusual corners of the parsers.
const TOKENS: &[&str] = &[
    ": ",
    "- ",
    "{",
    "}",
    "[",
    "]",
    "\"",
    "'",
    "\n  ",
    "\n- ",
    "null",
    "~",
    "*a",
    "&a ",
    "!!binary ",
    "!!int ",
    "0x",
    "1e999",
    "-9223372036854775809",
    "18446744073709551616",
    "has(",
    "object.",
    ".all(x, ",
    ".exists(",
    "size(",
    "matches('",
    "(((",
    ")))",
    "\\u0000",
    "\t",
    "---\n",
    "...\n",
    "kind: ",
    "apiVersion: ",
    "expression: ",
    "rego: |\n",
    "violation[{\"msg\": m}] {",
    "input.review.object",
    "not ",
    "some i; ",
    "import data.lib",
    "default allow = false",
    "params.",
    "variables.",
    "namespaceObject.",
    "request.",
    "quantity('",
    "ip('",
    "cidr('",
    "url('",
    "semver('",
    "!= null",
    " ? ",
    " : ",
    "'\\",
    "\"\\",
    "matchConstraints:",
    "validationActions: [",
    "paramKind:",
    "paramRef:",
    "resourceRules:",
    "operations: [\"*\"]",
    "level: restricted",
    "version: v1.",
    "securityContext: {privileged: true}",
    "hostPath: {path: /}",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: small, fast and good enough to drive mutations.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// The mutated text, offered for every path a suite asks for, so suite runners are fuzzed too.
struct SameText<'a>(&'a str);

impl Files for SameText<'_> {
    fn read(&self, _path: &str) -> Result<String, String> {
        Ok(self.0.to_owned())
    }
}

fn main() {
    let mut seconds = 60u64;
    let mut seed = 0x5eed_u64;
    let mut extra = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => seconds = args.next().and_then(|v| v.parse().ok()).unwrap_or(seconds),
            "--seed" => seed = args.next().and_then(|v| v.parse().ok()).unwrap_or(seed),
            other => extra.push(PathBuf::from(other)),
        }
    }

    let corpus = load_corpus(&extra);
    println!(
        "fuzz: {} seed inputs, {seconds} s, seed {seed}",
        corpus.len()
    );
    if corpus.is_empty() {
        eprintln!("fuzz: no seed inputs");
        std::process::exit(2);
    }

    let crash_dir = PathBuf::from("target/fuzz-crashes");
    let default_hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let mut rng = Rng(seed | 1);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let (mut runs, mut crashes, mut loaded) = (0u64, 0u64, 0u64);
    while Instant::now() < deadline {
        let input = mutate(&corpus, &mut rng);
        runs += 1;
        match panic::catch_unwind(AssertUnwindSafe(|| exercise(&input))) {
            Ok(true) => loaded += 1,
            Ok(false) => {}
            Err(payload) => {
                crashes += 1;
                let message = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                let mut hasher = DefaultHasher::new();
                input.hash(&mut hasher);
                let _ = std::fs::create_dir_all(&crash_dir);
                let path = crash_dir.join(format!("{:016x}.yaml", hasher.finish()));
                let _ = std::fs::write(&path, &input);
                eprintln!("fuzz: PANIC ({message}); input saved to {}", path.display());
            }
        }
    }
    panic::set_hook(default_hook);
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "fuzz: {runs} inputs in {elapsed:.0} s ({:.0}/s), {loaded} loaded as policies without error, {crashes} panics",
        runs as f64 / elapsed
    );
    if crashes > 0 {
        std::process::exit(1);
    }
}

/// Everything a user's YAML reaches. Returns whether it loaded as a policy without error.
fn exercise(text: &str) -> bool {
    let documents = match parse_documents("fuzz.yaml", text) {
        Ok(documents) => documents,
        Err(_) => return false,
    };
    let _ = suite::run_file("fuzz.yaml", text, &SameText(text));

    let mut bundle = Bundle::default();
    let loaded = bundle.add_source("fuzz.yaml", text).is_ok();
    if let Ok(level) = "restricted:v1.25".parse() {
        bundle.add_pod_security(level, Mode::Enforce);
    }
    let context = Context::default();
    let mut requests: Vec<AdmissionRequest> = documents
        .iter()
        .filter_map(|d| AdmissionRequest::from_value(d.value.clone()).ok())
        .collect();
    requests.extend(AdmissionRequest::create(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "team", "labels": {"app": "x"}},
        "spec": {"containers": [{"name": "c", "image": "nginx:latest", "securityContext": {"privileged": true}}]}
    })));
    for request in &requests {
        let _ = bundle.evaluate(request, &context);
    }
    loaded
}

fn mutate(corpus: &[String], rng: &mut Rng) -> String {
    let mut bytes = corpus[rng.below(corpus.len())].clone().into_bytes();
    for _ in 0..1 + rng.below(6) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(6) {
            0 if !bytes.is_empty() => {
                let i = rng.below(bytes.len());
                bytes[i] ^= 1 << rng.below(8);
            }
            1 if !bytes.is_empty() => {
                let end = (at + 1 + rng.below(32)).min(bytes.len());
                bytes.drain(at.min(end)..end);
            }
            2 => {
                let token = TOKENS[rng.below(TOKENS.len())].as_bytes();
                bytes.splice(at..at, token.iter().copied());
            }
            3 if !bytes.is_empty() => {
                let start = rng.below(bytes.len());
                let end = (start + 1 + rng.below(64)).min(bytes.len());
                let piece = bytes[start..end].to_vec();
                bytes.splice(at..at, piece);
            }
            4 => {
                let other = corpus[rng.below(corpus.len())].as_bytes();
                let start = rng.below(other.len());
                let end = (start + rng.below(256)).min(other.len());
                bytes.splice(at..at, other[start..end].iter().copied());
            }
            _ => bytes.truncate(at),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn load_corpus(extra: &[PathBuf]) -> Vec<String> {
    let mut corpus: Vec<String> = library::entries()
        .unwrap_or_default()
        .iter()
        .flat_map(|e| [e.policy_yaml.to_owned(), e.test_yaml.to_owned()])
        .collect();
    let mut roots: Vec<PathBuf> = extra.to_vec();
    if let Ok(oracles) = std::env::var("PALISADE_ORACLES") {
        let oracles = PathBuf::from(oracles);
        roots.push(oracles.join("gatekeeper-library/library"));
        roots.push(oracles.join("kyverno-engine-tests/test/cli/test-validating-admission-policy"));
        roots.push(oracles.join("k8s-vap-examples"));
        roots.push(oracles.join("pod-security-admission/test/testdata/restricted/v1.37"));
    } else {
        eprintln!("fuzz: PALISADE_ORACLES is not set; seeding from the built-in library only");
    }
    for root in roots {
        collect(&root, &mut corpus);
    }
    corpus
}

fn collect(path: &Path, corpus: &mut Vec<String>) {
    if path.is_dir() {
        let Ok(entries) = std::fs::read_dir(path) else {
            return;
        };
        let mut children: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        children.sort();
        for child in children {
            collect(&child, corpus);
        }
    } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
        if let Ok(text) = std::fs::read_to_string(path) {
            corpus.push(text);
        }
    }
}
