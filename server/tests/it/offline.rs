//! The offline commands through the real binary: `palisade test` and `palisade check`, their output
//! lines and their exit codes (0 nothing failed / denied, 1 failed / denied, 2 bad input).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::support::{palisade_bin, scratch_dir};

fn palisade(args: &[&str], dir: &Path) -> Output {
    Command::new(palisade_bin())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run palisade")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn library_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/library")
}

const POLICY: &str = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: max-replicas
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - apiGroups: ["apps"]
      apiVersions: ["v1"]
      operations: ["CREATE", "UPDATE"]
      resources: ["deployments"]
  validations:
  - expression: "object.spec.replicas <= 5"
    message: "at most 5 replicas"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: max-replicas
spec:
  policyName: max-replicas
  validationActions: [Deny]
"#;

fn deployment(name: &str, replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: team\nspec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{app: x}}}}\n  template:\n    metadata: {{labels: {{app: x}}}}\n    spec:\n      containers:\n      - name: c\n        image: nginx:1.27\n"
    )
}

#[test]
fn the_built_in_library_passes_its_own_tests() {
    let output = palisade(&["test", library_dir().to_str().unwrap()], &library_dir());
    let out = stdout(&output);
    assert!(output.status.success(), "{out}\n{}", stderr(&output));
    let last = out.lines().last().unwrap_or_default();
    let counts: Vec<&str> = last.split(", ").collect();
    assert!(
        counts[0].ends_with(" passed") && counts[1] == "0 failed",
        "{last}"
    );
    let passed: usize = counts[0].trim_end_matches(" passed").parse().unwrap();
    assert!(passed >= 40, "only {passed} library cases ran:\n{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("PASS ")).count(),
        passed,
        "{out}"
    );
}

#[test]
fn a_failing_case_fails_the_run_with_exit_1() {
    let dir = scratch_dir("palisade_suite");
    std::fs::write(dir.join("policy.yaml"), POLICY).unwrap();
    std::fs::write(
        dir.join("palisade-test.yaml"),
        format!(
            "apiVersion: palisade.dev/v1alpha1\nkind: PolicyTest\nmetadata: {{name: replicas}}\npolicies: [policy.yaml]\ncases:\n- name: small is fine\n  expect: allow\n  object:\n{}\n- name: wrongly expected to pass\n  expect: allow\n  object:\n{}\n- name: big is denied\n  expect: deny\n  message: at most 5\n  object:\n{}\n",
            indent(&deployment("a", 2)),
            indent(&deployment("b", 9)),
            indent(&deployment("c", 9)),
        ),
    )
    .unwrap();
    let output = palisade(&["test", "."], &dir);
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(
        out.contains("PASS ./palisade-test.yaml small is fine"),
        "{out}"
    );
    assert!(
        out.contains(
            "FAIL ./palisade-test.yaml wrongly expected to pass: expected allow, got deny"
        ),
        "{out}"
    );
    assert!(out.contains("at most 5 replicas"), "{out}");
    assert_eq!(out.lines().last(), Some("2 passed, 1 failed"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_path_without_suites_is_bad_input() {
    let dir = scratch_dir("palisade_empty");
    let output = palisade(&["test", "."], &dir);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("no test suites found"),
        "{}",
        stderr(&output)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

#[test]
fn check_denies_with_exit_1_and_allows_with_exit_0() {
    let dir = scratch_dir("palisade_check");
    std::fs::write(dir.join("policy.yaml"), POLICY).unwrap();
    std::fs::write(dir.join("ok.yaml"), deployment("small", 3)).unwrap();
    std::fs::write(dir.join("bad.yaml"), deployment("big", 50)).unwrap();

    let allowed = palisade(&["check", "--policy", "policy.yaml", "ok.yaml"], &dir);
    assert_eq!(allowed.status.code(), Some(0), "{}", stdout(&allowed));
    assert!(
        stdout(&allowed).contains("allow  Deployment team/small"),
        "{}",
        stdout(&allowed)
    );

    let denied = palisade(
        &["check", "--policy", "policy.yaml", "ok.yaml", "bad.yaml"],
        &dir,
    );
    let out = stdout(&denied);
    assert_eq!(denied.status.code(), Some(1), "{out}");
    assert!(out.contains("deny   Deployment team/big"), "{out}");
    assert!(
        out.contains("ValidatingAdmissionPolicy 'max-replicas' with binding 'max-replicas' denied request: at most 5 replicas"),
        "{out}"
    );
    assert!(
        out.contains("1 denied, 0 warned, 0 audited, 1 allowed"),
        "{out}"
    );

    let json = palisade(
        &[
            "check",
            "--policy",
            "policy.yaml",
            "--output",
            "json",
            "bad.yaml",
        ],
        &dir,
    );
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON output");
    assert_eq!(report["denied"], 1);
    assert_eq!(report["results"][0]["action"], "deny");
    assert_eq!(report["results"][0]["name"], "big");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn check_reads_standard_input_and_pod_security_levels() {
    let dir = scratch_dir("palisade_stdin");
    let mut child = Command::new(palisade_bin())
        .args(["check", "--pss", "restricted:latest", "-"])
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: team}\nspec:\n  containers:\n  - name: c\n    image: nginx\n    securityContext: {privileged: true}\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{out}{}", stderr(&output));
    assert!(
        out.contains("violates PodSecurity \"restricted:latest\""),
        "{out}"
    );
    assert!(out.contains("privileged"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn check_reports_bad_input_with_exit_2_and_the_place() {
    let dir = scratch_dir("palisade_bad");
    std::fs::write(
        dir.join("broken.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata: [oops\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("bad-policy.yaml"),
        POLICY.replace("object.spec.replicas <= 5", "object.spec.replicas <= )"),
    )
    .unwrap();
    std::fs::write(dir.join("ok.yaml"), deployment("small", 1)).unwrap();

    let broken = palisade(&["check", "--pss", "baseline", "broken.yaml"], &dir);
    assert_eq!(broken.status.code(), Some(2));
    assert!(
        stderr(&broken).contains("palisade: error: broken.yaml:"),
        "{}",
        stderr(&broken)
    );

    let bad_policy = palisade(&["check", "--policy", "bad-policy.yaml", "ok.yaml"], &dir);
    let err = stderr(&bad_policy);
    assert_eq!(bad_policy.status.code(), Some(2), "{err}");
    // The expression sits on line 15 of the file.
    assert!(err.contains("bad-policy.yaml:15:"), "{err}");

    let nothing = palisade(&["check", "ok.yaml"], &dir);
    assert_eq!(nothing.status.code(), Some(2));
    assert!(
        stderr(&nothing).contains("nothing to check against"),
        "{}",
        stderr(&nothing)
    );

    let unknown = palisade(&["check", "--library", "no-such-thing", "ok.yaml"], &dir);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        stderr(&unknown).contains("no such library entry"),
        "{}",
        stderr(&unknown)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A Gatekeeper template of one's own, with a Constraint on Pods; `RULE_BODY` is its rule's body.
const TEMPLATE: &str = r#"apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: k8sowner
spec:
  crd:
    spec:
      names:
        kind: K8sOwner
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8sowner

        violation[{"msg": msg}] {
          RULE_BODY
        }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sOwner
metadata:
  name: owner
spec:
  match:
    kinds: [{apiGroups: [""], kinds: ["Pod"]}]
"#;

#[test]
fn check_refuses_rego_gatekeeper_would_refuse_and_warns_about_what_it_cannot_run() {
    let dir = scratch_dir("palisade_rego");
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: team\n  labels: {owner: me}\nspec:\n  containers:\n  - name: c\n    image: nginx\n";
    std::fs::write(dir.join("pod.yaml"), pod).unwrap();
    let write = |name: &str, body: &str| {
        std::fs::write(dir.join(name), TEMPLATE.replace("RULE_BODY", body)).unwrap();
    };
    write(
        "undefined.yaml",
        "msg := strings.no_such(input.review.object.metadata.name)",
    );
    write("arity.yaml", "msg := sprintf(\"owner %v\")");
    write(
        "network.yaml",
        "r := http.send({\"method\": \"get\", \"url\": \"https://example.com\"})\n          msg := r.body",
    );
    write(
        "builtins.yaml",
        "not re_match(\"^[a-z]+$\", input.review.object.metadata.labels.owner)\n          msg := \"bad owner\"",
    );

    // Refused as Gatekeeper refuses the template, at the call's line (16) and column.
    let undefined = palisade(&["check", "--policy", "undefined.yaml", "pod.yaml"], &dir);
    let err = stderr(&undefined);
    assert_eq!(undefined.status.code(), Some(2), "{err}");
    assert!(
        err.contains("undefined.yaml:16:18:") && err.contains("undefined function strings.no_such"),
        "{err}"
    );
    let arity = palisade(&["check", "--policy", "arity.yaml", "pod.yaml"], &dir);
    let err = stderr(&arity);
    assert_eq!(arity.status.code(), Some(2), "{err}");
    assert!(
        err.contains("arity.yaml:16:18:") && err.contains("arity mismatch"),
        "{err}"
    );

    // Accepted with a warning at its place; the template is not evaluable, never guessed.
    let network = palisade(&["check", "--policy", "network.yaml", "pod.yaml"], &dir);
    let err = stderr(&network);
    assert_eq!(network.status.code(), Some(0), "{err}");
    assert!(
        err.contains("palisade: warning: network.yaml:16:16:")
            && err.contains("http.send is not evaluable locally"),
        "{err}"
    );
    assert!(
        stdout(&network).contains("not evaluable"),
        "{}",
        stdout(&network)
    );

    // A deprecated v0 builtin Palisade supplies itself evaluates.
    let builtins = palisade(&["check", "--policy", "builtins.yaml", "pod.yaml"], &dir);
    assert_eq!(
        builtins.status.code(),
        Some(0),
        "{}{}",
        stdout(&builtins),
        stderr(&builtins)
    );
    std::fs::write(
        dir.join("pod.yaml"),
        pod.replace("owner: me", "owner: Me-1"),
    )
    .unwrap();
    let denied = palisade(&["check", "--policy", "builtins.yaml", "pod.yaml"], &dir);
    assert_eq!(denied.status.code(), Some(1), "{}", stdout(&denied));
    assert!(stdout(&denied).contains("bad owner"), "{}", stdout(&denied));
    let _ = std::fs::remove_dir_all(&dir);
}
