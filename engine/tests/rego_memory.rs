//! A Rego policy that builds ever larger values stops at the heap ceiling with an error, and the
//! process keeps its memory. The ceiling is process-wide, so this test has a process of its own
//! (an integration test binary) and sets a low one before any engine exists.

// Test code: a failed step should stop the test loudly.
#![allow(clippy::unwrap_used)]

use palisade_engine::gatekeeper::{rego, EnforcementPoint, Evaluator, Inventory, Library};
use palisade_engine::source::parse_documents;
use serde_json::json;

const CEILING: u64 = 128 << 20;

/// Thirty doublings of a 1 KiB string: a terabyte, if nothing stopped it.
fn template() -> String {
    let mut body = String::from("  s0 := concat(\"\", [input.parameters.seed])\n");
    for step in 1..=30 {
        let previous = step - 1;
        body.push_str(&format!(
            "  s{step} := concat(\"\", [s{previous}, s{previous}])\n"
        ));
    }
    format!(
        r#"apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: k8sgrow
spec:
  crd:
    spec:
      names:
        kind: K8sGrow
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8sgrow

        violation[{{"msg": msg}}] {{
          input.parameters.grow
{body}          msg := sprintf("grew to %v", [count(s30)])
        }}

        violation[{{"msg": msg}}] {{
          not input.parameters.grow
          msg := sprintf("seed of %v", [count(input.parameters.seed)])
        }}
"#,
        body = body
            .lines()
            .map(|line| format!("        {line}\n"))
            .collect::<String>()
    )
}

/// The review of a pod by the growing template, evaluated by `evaluator`.
fn review(grow: bool, evaluator: Evaluator) -> Vec<String> {
    let constraint = json!({
        "apiVersion": "constraints.gatekeeper.sh/v1beta1",
        "kind": "K8sGrow",
        "metadata": {"name": "grow"},
        "spec": {"parameters": {"grow": grow, "seed": "x".repeat(1024)}},
    });
    let text = format!("{}---\n{}", template(), constraint);
    let documents = parse_documents("grow.yaml", &text).unwrap();
    let mut library = Library::new().with_evaluator(evaluator);
    library.add_documents("grow.yaml", &documents).unwrap();
    let template = library.templates().next().unwrap();
    assert_eq!(
        template.interpreted().is_none(),
        evaluator == Evaluator::Vm,
        "{template:?}"
    );
    let pod =
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "a"}});
    library
        .review_object(&pod, &Inventory::empty(), EnforcementPoint::Gator)
        .unwrap()
        .violations
        .into_iter()
        .map(|v| v.message)
        .collect()
}

/// The process's peak resident memory, in bytes (Linux).
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

#[test]
fn a_policy_that_grows_without_end_stops_at_the_heap_ceiling() {
    assert!(rego::set_heap_ceiling(CEILING));
    assert!(
        !rego::set_heap_ceiling(CEILING * 2),
        "the first choice stays"
    );
    assert_eq!(rego::heap_ceiling(), CEILING);

    // The VM evaluates the template; the interpreter, which evaluates what the VM cannot, stops too.
    for evaluator in [Evaluator::Vm, Evaluator::Interpreter] {
        let before = peak_rss();
        let grown = review(true, evaluator);
        let after = peak_rss();
        assert_eq!(grown.len(), 1, "{grown:?}");
        assert!(
            grown[0].contains("exceeded its budget of memory") && grown[0].contains("128 MiB"),
            "{grown:?}"
        );
        // The last doubling before the check may overshoot the ceiling by what it allocated.
        assert!(
            after < before + 4 * CEILING,
            "{evaluator:?}: peak resident memory went from {} MiB to {} MiB",
            before >> 20,
            after >> 20
        );
        eprintln!(
            "{evaluator:?}: peak resident memory {} MiB before, {} MiB after the growing policy (ceiling {} MiB)",
            before >> 20,
            after >> 20,
            CEILING >> 20
        );

        // The memory came back: the next evaluation runs as usual.
        assert_eq!(review(false, evaluator), vec!["seed of 1024".to_owned()]);
    }
}
