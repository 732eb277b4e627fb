//! `Bundle::reads_identity` and `Bundle::reads_labels` held to the evaluator over real policies:
//! each built-in library entry, every gatekeeper-library template with its sample constraints and
//! every Kubernetes ValidatingAdmissionPolicy example, each judged alone on varied namespaced
//! objects and on the same objects under another name and uid, or with other labels. Where the
//! bundle says its answer does not depend on which object it is, or on its labels (so an impact
//! judges the copies of one pod template once), the two answers must be equal, messages and
//! reasons included.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use palisade_engine::bundle::{Bundle, Context};
use palisade_engine::library::{self, EntryKind};
use palisade_engine::VapAction as ValidationAction;
use palisade_engine::{sample, AdmissionRequest};
use serde_json::{json, Value};

/// Varied workloads of every kind and Pods, all namespaced.
fn objects() -> Vec<Value> {
    let mut objects = sample::workloads(0x1d_0001, 120);
    objects.extend(sample::pods(0x1d_0002, 80));
    objects
}

/// `object` under another name and uid.
fn renamed(object: &Value) -> Value {
    let mut copy = object.clone();
    let name = format!("{}-copy", copy["metadata"]["name"].as_str().unwrap_or("x"));
    copy["metadata"]["name"] = json!(name);
    copy["metadata"]["uid"] = json!("6f1e0c6a-another-uid");
    copy
}

/// `object` with other labels.
fn relabelled(object: &Value) -> Value {
    let mut copy = object.clone();
    copy["metadata"]["labels"] = json!({"relabelled": "yes"});
    copy
}

/// A change to objects, and whether a bundle says its answers may change with it.
#[derive(Clone, Copy)]
struct Change {
    what: &'static str,
    reads: fn(&Bundle) -> bool,
    apply: fn(&Value) -> Value,
}

const IDENTITY: Change = Change {
    what: "identity",
    reads: Bundle::reads_identity,
    apply: renamed,
};

const LABELS: Change = Change {
    what: "labels",
    reads: Bundle::reads_labels,
    apply: relabelled,
};

/// What a bundle showed over the objects.
#[derive(Default)]
struct Tally {
    /// Bundles whose answers the change cannot change.
    free: usize,
    /// Of their objects, those with findings.
    found: usize,
    /// Objects whose answer changed, in bundles that say it may.
    named: usize,
}

fn judge(
    name: &str,
    bundle: &Bundle,
    change: Change,
    objects: &[Value],
    tally: &mut Tally,
    wrong: &mut Vec<String>,
) {
    let context = Context::default();
    let free = !(change.reads)(bundle);
    tally.free += usize::from(free);
    for object in objects {
        let (Ok(request), Ok(copy)) = (
            AdmissionRequest::create(object.clone()),
            AdmissionRequest::create((change.apply)(object)),
        ) else {
            continue;
        };
        let (one, other) = (
            bundle.evaluate(&request, &context),
            bundle.evaluate(&copy, &context),
        );
        if !free {
            tally.named += usize::from(one != other);
            continue;
        }
        tally.found += usize::from(!one.findings.is_empty());
        if one != other {
            wrong.push(format!(
                "{name}: said not to read {}, but changing them on {} changed {one:?} into {other:?}",
                change.what, object["metadata"]["name"]
            ));
        }
    }
}

fn all_bundles(mut each: impl FnMut(&str, &Bundle)) {
    for entry in library::entries().expect("the library loads") {
        let mut bundle = Bundle::default();
        bundle
            .add_library_entry(&entry)
            .expect("a library entry loads");
        if matches!(entry.kind, EntryKind::Vap) {
            bundle.bind_unbound(&[ValidationAction::Deny]);
        }
        each(entry.id, &bundle);
    }
    if let Some(dir) = common::oracle_dir("k8s-vap-examples/examples") {
        let files = common::files_under(&dir, |p| p.extension().is_some_and(|e| e == "yaml"));
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let mut bundle = Bundle::default();
            let name = file.display().to_string();
            if bundle.add_source(&name, &text).is_err() || bundle.is_empty() {
                continue;
            }
            bundle.bind_unbound(&[ValidationAction::Deny]);
            each(&name, &bundle);
        }
    }
    if let Some(dir) = common::oracle_dir("gatekeeper-library/library") {
        for (name, bundle) in common::gatekeeper_library_bundles(&dir) {
            each(&name, &bundle);
        }
    }
}

#[test]
fn what_does_not_read_identity_or_labels_answers_the_same_under_another_name_or_labels() {
    let objects = objects();
    for change in [IDENTITY, LABELS] {
        let (mut tally, mut wrong, mut bundles) = (Tally::default(), Vec::new(), 0);
        all_bundles(|name, bundle| {
            bundles += 1;
            judge(name, bundle, change, &objects, &mut tally, &mut wrong);
        });
        eprintln!(
            "{}: {bundles} bundles × {} objects: {} do not read it ({} objects with findings); \
             in the others the change changed {} answers",
            change.what,
            objects.len(),
            tally.free,
            tally.found,
            tally.named
        );
        assert!(
            wrong.is_empty(),
            "{} answers changed, the first:\n{}",
            wrong.len(),
            wrong[..wrong.len().min(10)].join("\n")
        );
        assert!(
            tally.free >= 20 && tally.found >= 500,
            "{}: {} bundles free of it, {} objects with findings",
            change.what,
            tally.free,
            tally.found
        );
    }
}

/// Policies whose answers do depend on the name or the labels: the bundles must say so, and the
/// change must show it (so the comparison above can fail).
#[test]
fn a_policy_naming_or_selecting_the_object_says_so() {
    let objects = objects();
    let vap = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: named}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: ['*'], apiVersions: ['*'], operations: ['*'], resources: ['*']}]
  validations:
  - expression: "false"
    messageExpression: "'not allowed: ' + object.metadata.name"
"#;
    let request_name = vap.replace(
        "'not allowed: ' + object.metadata.name",
        "'not allowed: ' + request.name",
    );
    let resource_names = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: by-name}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: ['*'], apiVersions: ['*'], operations: ['*'], resources: ['*'],
                     resourceNames: [NAME]}]
  validations:
  - expression: "false"
"#;
    let template = r#"
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: k8snothing}
spec:
  crd: {spec: {names: {kind: K8sNothing}}}
  targets:
  - target: admission.k8s.gatekeeper.sh
    code:
    - engine: K8sNativeValidation
      source:
        validations:
        - expression: "false"
          message: "nothing is allowed"
"#;
    let constraint = |matcher: &str| {
        format!(
            "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: K8sNothing\n\
             metadata: {{name: nothing}}\nspec: {{match: {matcher}}}\n"
        )
    };
    let label_expression = vap.replace(
        "expression: \"false\"",
        "expression: \"!has(object.metadata.labels) || !('relabelled' in object.metadata.labels)\"",
    );
    let object_selector = vap.replace(
        "  validations:",
        "    objectSelector: {matchLabels: {relabelled: 'yes'}}\n  validations:",
    );
    let cases = [
        (
            "message names the object",
            vec![vap.to_owned()],
            IDENTITY,
            true,
        ),
        (
            "message names the request",
            vec![request_name],
            IDENTITY,
            true,
        ),
        (
            "matches by name",
            vec![resource_names.replace("NAME", objects[0]["metadata"]["name"].as_str().unwrap())],
            IDENTITY,
            true,
        ),
        (
            "Gatekeeper match.name",
            vec![
                template.to_owned(),
                constraint(&format!("{{name: {}}}", objects[0]["metadata"]["name"])),
            ],
            IDENTITY,
            true,
        ),
        (
            "Gatekeeper by kind",
            vec![
                template.to_owned(),
                constraint("{kinds: [{apiGroups: ['*'], kinds: ['*']}]}"),
            ],
            IDENTITY,
            false,
        ),
        (
            "an expression reads a label",
            vec![label_expression],
            LABELS,
            true,
        ),
        ("selects by label", vec![object_selector], LABELS, true),
        (
            "Gatekeeper labelSelector",
            vec![
                template.to_owned(),
                constraint("{labelSelector: {matchLabels: {relabelled: 'yes'}}}"),
            ],
            LABELS,
            true,
        ),
        (
            "Gatekeeper by kind, relabelled",
            vec![
                template.to_owned(),
                constraint("{kinds: [{apiGroups: ['*'], kinds: ['*']}]}"),
            ],
            LABELS,
            false,
        ),
    ];
    for (case, sources, change, reads) in cases {
        let mut bundle = Bundle::default();
        for (i, source) in sources.iter().enumerate() {
            bundle
                .add_source(&format!("{case}-{i}.yaml"), source)
                .unwrap_or_else(|e| panic!("{case}: {e:?}"));
        }
        bundle.bind_unbound(&[ValidationAction::Deny]);
        assert_eq!((change.reads)(&bundle), reads, "{case}");
        let (mut tally, mut wrong) = (Tally::default(), Vec::new());
        judge(case, &bundle, change, &objects, &mut tally, &mut wrong);
        if reads {
            assert!(tally.named > 0, "{case}: the change changed nothing");
        } else {
            assert!(wrong.is_empty() && tally.found > 100, "{case}: {wrong:?}");
        }
    }
}
