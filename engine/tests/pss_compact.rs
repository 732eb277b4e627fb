//! The compact Pod form ([`pss::CompactPod`]) against the JSON path it stands in for: for every
//! object, from its JSON text and from its `serde_json::Value`, the verdict and the worded result
//! at every level and version are exactly those of [`pss::verdict_object`] and
//! [`pss::check_object`]; where the JSON path finds no pod, neither does the compact form; text
//! that does not parse as JSON is an error. Held to upstream's fixture pods, the benchmark's
//! 10,000 pods, the sample workloads of every kind, and generated odd objects (nulls, wrong
//! types, missing fields, repeated keys, escaped keys, huge numbers).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../benches/support/pss_pods.rs"]
mod pss_pods;

mod common;

use palisade_engine::pss::{self, CompactPod, Level, LevelVersion, Version, NEWEST_MINOR};
use palisade_engine::source::parse_documents;
use serde_json::Value;

/// Every level at every minor up to one past the newest change, and `latest`.
fn every_level_version() -> Vec<LevelVersion> {
    let mut out = Vec::new();
    for level in Level::ALL {
        for minor in 0..=NEWEST_MINOR + 1 {
            out.push(LevelVersion::new(level, Version::Minor(minor)));
        }
        out.push(LevelVersion::latest(level));
    }
    out
}

/// Level-versions at which some check changes, and `latest`: enough for large sets.
fn changing_level_versions() -> Vec<LevelVersion> {
    let mut out = Vec::new();
    for level in [Level::Baseline, Level::Restricted] {
        for minor in [0, 8, 18, 19, 22, 23, 24, 25, 27, 29, 31, 32, 34, 35, 37] {
            out.push(LevelVersion::new(level, Version::Minor(minor)));
        }
        out.push(LevelVersion::latest(level));
    }
    out
}

/// What agreeing found, to check that a set exercised something.
#[derive(Default, Debug)]
struct Tally {
    objects: usize,
    with_pod: usize,
    denials: usize,
    checks: std::collections::BTreeSet<&'static str>,
}

/// The compact form of `object`, from its text and from its `Value`, agrees with the JSON path
/// at each of `lvs`.
fn agrees(object: &Value, lvs: &[LevelVersion], what: &str, tally: &mut Tally) {
    let text = serde_json::to_string(object).unwrap();
    agrees_text(&text, object, lvs, what, tally);
}

fn agrees_text(text: &str, object: &Value, lvs: &[LevelVersion], what: &str, tally: &mut Tally) {
    let compact = CompactPod::from_json(text).unwrap_or_else(|e| panic!("{what}: {e}\n{text}"));
    let from_value = CompactPod::from_object(object).unwrap();
    assert_eq!(compact, from_value, "{what}: text and Value forms differ");
    tally.objects += 1;
    assert_eq!(
        compact.is_some(),
        pss::pod_template(object).is_some(),
        "{what}: a pod found by one path only\n{text}"
    );
    let Some(compact) = compact else {
        assert!(pss::verdict_object(LevelVersion::latest(Level::Restricted), object).is_none());
        return;
    };
    tally.with_pod += 1;
    assert_eq!(compact.is_pod(), object["kind"] == "Pod", "{what}");
    for &lv in lvs {
        let want = pss::verdict_object(lv, object).unwrap();
        let got = compact.verdict(lv);
        assert_eq!(got, want, "{what} at {lv}\n{text}");
        let want = pss::check_object(lv, object).unwrap();
        let got = compact.check(lv);
        assert_eq!(got, want, "{what} at {lv}\n{text}");
        tally.denials += usize::from(!got.allowed());
        tally
            .checks
            .extend(got.forbidden.iter().map(|f| f.check_id));
    }
}

#[test]
fn every_upstream_fixture_at_every_level_and_version() {
    let Some(root) = common::oracle_dir("pod-security-admission/test/testdata") else {
        return;
    };
    let files = common::files_under(&root, |path| {
        path.extension().and_then(|e| e.to_str()) == Some("yaml")
    });
    assert!(files.len() >= 4537, "only {} fixtures found", files.len());
    let lvs = every_level_version();
    let mut tally = Tally::default();
    for file in &files {
        let name = file.display().to_string();
        let text = std::fs::read_to_string(file).unwrap();
        for doc in parse_documents(&name, &text).unwrap() {
            agrees(&doc.value, &lvs, &name, &mut tally);
            // The same pod as a template of each workload kind.
            for (api_version, kind) in pss::WORKLOAD_KINDS.iter().skip(1) {
                let template = serde_json::json!({"metadata": doc.value["metadata"], "spec": doc.value["spec"]});
                let spec = if *kind == "CronJob" {
                    serde_json::json!({"jobTemplate": {"spec": {"template": template}}})
                } else {
                    serde_json::json!({"template": template})
                };
                let workload =
                    serde_json::json!({"apiVersion": api_version, "kind": kind, "spec": spec});
                agrees(&workload, &changing_level_versions(), &name, &mut tally);
            }
        }
    }
    eprintln!("compact form agrees on the fixtures: {tally:?}");
    assert!(tally.denials > 100_000, "{tally:?}");
    // Every check of every level fails on some fixture, so every rule was compared.
    for lv in [
        LevelVersion::new(Level::Restricted, Version::Minor(34)),
        LevelVersion::latest(Level::Restricted),
        LevelVersion::new(Level::Baseline, Version::Minor(18)),
    ] {
        for id in lv.check_ids() {
            assert!(tally.checks.contains(id), "no fixture fails {id}");
        }
    }
}

#[test]
fn the_benchmark_pods_and_every_workload_kind() {
    let lvs = changing_level_versions();
    let mut tally = Tally::default();
    for (i, pod) in pss_pods::pods().iter().enumerate() {
        agrees(pod, &lvs, &format!("bench pod {i}"), &mut tally);
    }
    assert_eq!(tally.with_pod, 10_000);
    let denied_before = tally.denials;
    assert!(denied_before > 10_000, "{tally:?}");
    for (i, object) in palisade_engine::sample::workloads(17, 3_000)
        .iter()
        .enumerate()
    {
        agrees(object, &lvs, &format!("sample workload {i}"), &mut tally);
    }
    assert!(tally.denials > denied_before, "{tally:?}");
    // Kinds without a pod, and the template cases of `pod_template`.
    let none = [
        r#"{"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "b"}}"#,
        r#"{"apiVersion": "example.com/v1", "kind": "Deployment", "spec": {"template": {}}}"#,
        r#"{"apiVersion": "apps/v1", "kind": "Job", "spec": {"template": {}}}"#,
        r#"{"apiVersion": "v1", "kind": "ReplicationController", "spec": {}}"#,
        r#"{"apiVersion": "v1", "kind": "ReplicationController", "spec": {"template": null}}"#,
        r#"{"apiVersion": "v1", "kind": "ReplicationController"}"#,
        r#"{"kind": 5, "spec": {}}"#,
        r#"{"apiVersion": "v1", "spec": {"containers": [{"name": "a"}]}}"#,
        r#"[1, 2]"#,
        r#""Pod""#,
        r#"null"#,
    ];
    let some = [
        r#"{"apiVersion": "v1", "kind": "ReplicationController", "spec": {"template": 5}}"#,
        r#"{"apiVersion": "v1", "kind": "ReplicationController", "spec": {"template": []}}"#,
        r#"{"kind": "Deployment", "spec": {"template": {"spec": {"hostPID": true}}}}"#,
        r#"{"apiVersion": 1, "kind": "Pod", "spec": {"hostPID": true}}"#,
        r#"{"apiVersion": "v1", "kind": "PodTemplate", "template": {"spec": {"hostIPC": true, "containers": [{}]}}}"#,
        r#"{"apiVersion": "v1", "kind": "PodTemplate", "template": 7}"#,
        r#"{"apiVersion": "batch/v1", "kind": "CronJob", "spec": {"jobTemplate": {"spec": 3}}}"#,
        r#"{"apiVersion": "v1", "kind": "Pod", "spec": [], "metadata": "m"}"#,
        r#"{"apiVersion": "v1", "kind": "Pod"}"#,
    ];
    for (texts, found) in [(&none[..], false), (&some[..], true)] {
        for text in texts {
            let object: Value = serde_json::from_str(text).unwrap();
            let before = tally.with_pod;
            agrees_text(text, &object, &every_level_version(), text, &mut tally);
            assert_eq!(tally.with_pod > before, found, "{text}");
        }
    }
}

// ------------------------------------------------------------------ odd objects

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) % n as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// The shape of what is generated where.
#[derive(Clone, Copy)]
enum K {
    Top,
    Metadata,
    Annotations,
    Spec,
    Template,
    JobTemplate,
    Sc,
    Caps,
    Profile,
    SeLinux,
    WindowsOptions,
    Sysctl,
    Container,
    Port,
    Handler,
    Action,
    Lifecycle,
    Volume,
    Os,
    List(&'static K),
    Str(&'static [&'static str]),
    Bool,
    Int,
}

const NAMES: &[&str] = &["a", "b", "", "containers0", "web"];
const CAPS: &[&str] = &["ALL", "NET_BIND_SERVICE", "CHOWN", "SYS_ADMIN", "", "all"];
const TYPES: &[&str] = &[
    "RuntimeDefault",
    "Localhost",
    "Unconfined",
    "",
    "runtime/default",
];

fn fields(k: K) -> &'static [(&'static str, K)] {
    match k {
        K::Top => &[
            (
                "kind",
                K::Str(&[
                    "Pod",
                    "Deployment",
                    "CronJob",
                    "Job",
                    "ReplicationController",
                    "PodTemplate",
                    "DaemonSet",
                    "ConfigMap",
                ]),
            ),
            (
                "apiVersion",
                K::Str(&["v1", "apps/v1", "batch/v1", "example.com/v1", "", "apps"]),
            ),
            ("metadata", K::Metadata),
            ("spec", K::Spec),
            ("template", K::Template),
        ],
        K::Metadata => &[("annotations", K::Annotations), ("name", K::Str(NAMES))],
        K::Spec => &[
            ("securityContext", K::Sc),
            ("os", K::Os),
            ("hostUsers", K::Bool),
            ("hostNetwork", K::Bool),
            ("hostPID", K::Bool),
            ("hostIPC", K::Bool),
            ("volumes", K::List(&K::Volume)),
            ("initContainers", K::List(&K::Container)),
            ("containers", K::List(&K::Container)),
            ("ephemeralContainers", K::List(&K::Container)),
            ("template", K::Template),
            ("jobTemplate", K::JobTemplate),
        ],
        K::Template => &[("metadata", K::Metadata), ("spec", K::Spec)],
        K::JobTemplate => &[("spec", K::Spec)],
        K::Sc => &[
            ("privileged", K::Bool),
            ("allowPrivilegeEscalation", K::Bool),
            ("capabilities", K::Caps),
            ("procMount", K::Str(&["Default", "Unmasked", ""])),
            ("runAsNonRoot", K::Bool),
            ("runAsUser", K::Int),
            ("seLinuxOptions", K::SeLinux),
            ("seccompProfile", K::Profile),
            ("appArmorProfile", K::Profile),
            ("windowsOptions", K::WindowsOptions),
            ("sysctls", K::List(&K::Sysctl)),
        ],
        K::Caps => &[
            ("drop", K::List(&K::Str(CAPS))),
            ("add", K::List(&K::Str(CAPS))),
        ],
        K::Profile => &[
            ("type", K::Str(TYPES)),
            ("localhostProfile", K::Str(&["p", ""])),
        ],
        K::SeLinux => &[
            (
                "type",
                K::Str(&["container_t", "spc_t", "", "container_engine_t"]),
            ),
            ("user", K::Str(&["u", ""])),
            ("role", K::Str(&["r", ""])),
        ],
        K::WindowsOptions => &[("hostProcess", K::Bool)],
        K::Sysctl => &[(
            "name",
            K::Str(&[
                "kernel.shm_rmid_forced",
                "kernel.msgmax",
                "net.ipv4.tcp_rmem",
                "",
            ]),
        )],
        K::Container => &[
            ("name", K::Str(NAMES)),
            ("securityContext", K::Sc),
            ("ports", K::List(&K::Port)),
            ("livenessProbe", K::Handler),
            ("readinessProbe", K::Handler),
            ("startupProbe", K::Handler),
            ("lifecycle", K::Lifecycle),
        ],
        K::Port => &[("hostPort", K::Int), ("containerPort", K::Int)],
        K::Handler => &[("httpGet", K::Action), ("tcpSocket", K::Action)],
        K::Action => &[("host", K::Str(&["h", ""]))],
        K::Lifecycle => &[("postStart", K::Handler), ("preStop", K::Handler)],
        K::Volume => &[
            ("name", K::Str(NAMES)),
            ("emptyDir", K::Str(&[])),
            ("hostPath", K::Str(&[])),
            ("nfs", K::Str(&[])),
            ("secret", K::Str(&[])),
            ("gitRepo", K::Str(&[])),
        ],
        K::Os => &[("name", K::Str(&["windows", "linux", ""]))],
        _ => &[],
    }
}

/// A JSON string literal; sometimes with its first character escaped.
fn string(rng: &mut Rng, s: &str) -> String {
    match s.chars().next() {
        Some(c) if rng.chance(10) => format!("\"\\u{:04x}{}\"", c as u32, &s[c.len_utf8()..]),
        _ => serde_json::to_string(s).unwrap(),
    }
}

/// Scalars of every type, numbers at the edges of `i64` and `u64` among them.
const ODD: &[&str] = &[
    "null",
    "true",
    "false",
    "0",
    "-0",
    "0.0",
    "1",
    "-1",
    "1e2",
    "80",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "18446744073709551616",
    "123456789012345678901234567890",
    "\"\"",
    "\"x\"",
    "[]",
    "{}",
    "[null, 1, \"ALL\"]",
    "{\"type\": \"Unconfined\"}",
];

fn generate(rng: &mut Rng, k: K, depth: usize, out: &mut String) {
    if rng.chance(8) {
        out.push_str(rng.pick(ODD));
        return;
    }
    match k {
        K::Str([]) => out.push_str(rng.pick(&["{}", "null", "{\"path\": \"/\"}"])),
        K::Str(choices) => {
            let s = rng.pick(choices);
            out.push_str(&string(rng, s));
        }
        K::Bool => out.push_str(rng.pick(&["true", "false"])),
        K::Int => out.push_str(rng.pick(
            &[
                "0",
                "80",
                "8080",
                "-1",
                "0.0",
                "-0",
                "9223372036854775808",
                "1e400",
            ][..7],
        )),
        K::List(item) => {
            out.push('[');
            for i in 0..rng.below(4) {
                if i > 0 {
                    out.push(',');
                }
                generate(rng, *item, depth + 1, out);
            }
            out.push(']');
        }
        K::Annotations => {
            out.push('{');
            let keys = [
                "container.apparmor.security.beta.kubernetes.io/a",
                "container.apparmor.security.beta.kubernetes.io/web",
                "container.seccomp.security.alpha.kubernetes.io/a",
                "container.seccomp.security.alpha.kubernetes.io/containers0",
                "seccomp.security.alpha.kubernetes.io/pod",
                "team",
            ];
            let values = [
                "unconfined",
                "runtime/default",
                "localhost/p",
                "",
                "docker/default",
                "x",
            ];
            for i in 0..rng.below(5) {
                if i > 0 {
                    out.push(',');
                }
                let key = rng.pick(&keys);
                out.push_str(&string(rng, key));
                out.push(':');
                if rng.chance(10) {
                    out.push_str(rng.pick(ODD));
                } else {
                    let value = rng.pick(&values);
                    out.push_str(&string(rng, value));
                }
            }
            out.push('}');
        }
        k if depth > 8 => {
            let _ = k;
            out.push_str("{}");
        }
        k => {
            let fields = fields(k);
            let mut entries: Vec<String> = Vec::new();
            for (key, shape) in fields {
                if !rng.chance(55) {
                    continue;
                }
                // Sometimes twice: the last one counts.
                for _ in 0..if rng.chance(12) { 2 } else { 1 } {
                    let mut entry = string(rng, key);
                    entry.push(':');
                    generate(rng, *shape, depth + 1, &mut entry);
                    entries.push(entry);
                }
            }
            if rng.chance(20) {
                entries.push(
                    r#""unknown": {"deep": [1, {"x": null}, "s\n\u00e9"], "n": 1e5}"#.to_owned(),
                );
            }
            // Any order.
            for i in (1..entries.len()).rev() {
                let j = rng.below(i + 1);
                entries.swap(i, j);
            }
            out.push('{');
            out.push_str(&entries.join(","));
            out.push('}');
        }
    }
}

#[test]
fn odd_objects_read_the_same_from_text_and_value() {
    let lvs = changing_level_versions();
    let mut rng = Rng(0x0dd);
    let mut tally = Tally::default();
    let mut refused = 0;
    for i in 0..6_000 {
        let mut text = String::new();
        generate(&mut rng, K::Top, 0, &mut text);
        match serde_json::from_str::<Value>(&text) {
            Ok(object) => agrees_text(&text, &object, &lvs, &format!("odd object {i}"), &mut tally),
            Err(e) => {
                refused += 1;
                assert!(
                    CompactPod::from_json(&text).is_err(),
                    "{e} but the compact form read\n{text}"
                );
            }
        }
    }
    eprintln!("odd objects: {tally:?}, {refused} not JSON");
    assert!(
        tally.with_pod > 1_000 && tally.denials > 10_000,
        "{tally:?}"
    );
    assert!(tally.checks.len() >= 18, "{:?}", tally.checks);
}

#[test]
fn text_that_is_not_json_is_an_error() {
    let bad = [
        "",
        "{",
        r#"{"kind": "Pod",}"#,
        r#"{"kind": "Pod"} x"#,
        r#"{"kind": "Pod", "ignored": [1,,2]}"#,
        r#"{"kind": "Pod", "ignored": {"a" 1}}"#,
        r#"{"kind": "Pod", "spec": {"containers": [{"name": "a"}]}"#,
        r#"{'kind': 'Pod'}"#,
        r#"{"kind": "Pod", "ignored": tru}"#,
        r#"{"kind": "Pod", "ignored": "\x"}"#,
        r#"{"kind": "Pod", "ignored": 01}"#,
        "{\"kind\": \"Pod\", \"ignored\": \"a\u{1}b\"}",
    ];
    for text in bad {
        assert!(serde_json::from_str::<Value>(text).is_err(), "{text}");
        assert!(CompactPod::from_json(text).is_err(), "{text}");
    }
    // Every cut of a real pod's text, and a few bytes replaced: the compact form errs exactly
    // where parsing to a Value does, and otherwise agrees.
    let pods = pss_pods::pods();
    let lvs = [
        LevelVersion::latest(Level::Baseline),
        LevelVersion::latest(Level::Restricted),
    ];
    let mut tally = Tally::default();
    let mut errors = 0;
    for pod in pods.iter().take(20) {
        let text = serde_json::to_string(pod).unwrap();
        let mut variants: Vec<String> = (0..text.len()).map(|cut| text[..cut].to_owned()).collect();
        for (i, replacement) in [(7, "]"), (31, ","), (64, "\""), (100, "}"), (3, ":")] {
            if let Some(at) = text.char_indices().nth(i).map(|(at, _)| at) {
                let mut t = text.clone();
                t.replace_range(at..at + 1, replacement);
                variants.push(t);
            }
        }
        for t in variants {
            match serde_json::from_str::<Value>(&t) {
                Err(_) => {
                    errors += 1;
                    assert!(CompactPod::from_json(&t).is_err(), "{t}");
                }
                Ok(object) => agrees_text(&t, &object, &lvs, &t, &mut tally),
            }
        }
    }
    assert!(errors > 10_000, "{errors}");
}

/// The large parts (security contexts, containers, specs, metadata, templates) are read in place:
/// a repeated key must still replace what an earlier one read, wholly, and a later value that is
/// not an object must clear it, as in a `Value`'s map where the last key counts.
#[test]
fn a_repeated_key_replaces_a_part_read_in_place() {
    let lvs = changing_level_versions();
    let mut tally = Tally::default();
    let texts = [
        // A container's securityContext: a later object does not merge into the earlier one.
        r#"{"kind": "Pod", "spec": {"containers": [{"name": "a",
            "securityContext": {"privileged": true, "capabilities": {"add": ["SYS_ADMIN"]}},
            "securityContext": {"runAsNonRoot": true}}]}}"#,
        // ... and a later non-object clears it.
        r#"{"kind": "Pod", "spec": {"containers": [{"name": "a",
            "securityContext": {"privileged": true}, "securityContext": 5}]}}"#,
        r#"{"kind": "Pod", "spec": {"securityContext": {"runAsUser": 0,
            "seccompProfile": {"type": "Unconfined"}}, "securityContext": null,
            "containers": [{"name": "a"}]}}"#,
        // A repeated spec, metadata and container list.
        r#"{"kind": "Pod", "metadata": {"annotations":
            {"container.apparmor.security.beta.kubernetes.io/a": "unconfined"}},
            "spec": {"hostNetwork": true, "containers": [{"name": "a", "ports":
            [{"containerPort": 80}]}]}, "metadata": {"name": "x"},
            "spec": {"containers": [{"name": "b"}], "containers": [{"name": "c",
            "securityContext": {"privileged": true}}]}}"#,
        r#"{"kind": "Pod", "spec": {"hostPID": true}, "spec": []}"#,
        // A workload's template, and a Pod's spec that is not an object.
        r#"{"kind": "Deployment", "apiVersion": "apps/v1", "spec": {"template": {"spec":
            {"hostIPC": true}}, "template": {"metadata": {}}}}"#,
        r#"{"kind": "Pod", "spec": "none"}"#,
    ];
    for text in texts {
        let object: Value = serde_json::from_str(text).unwrap();
        agrees_text(text, &object, &lvs, text, &mut tally);
    }
    assert_eq!(tally.with_pod, texts.len(), "{tally:?}");
    assert!(tally.denials > 0, "{tally:?}");
}
