//! Small, valid starting points for a blank policy of each engine.

use crate::policies::{Content, Engine, Expect, TestCase};

/// The first version of a blank policy named `name`. (Gatekeeper names a template after the
/// constraint kind it defines, lower-cased: `require-owner` becomes the kind `RequireOwner` and
/// the template, and so the policy, `requireowner`.)
pub fn blank(engine: Engine, name: &str) -> Content {
    match engine {
        Engine::Vap => owner_label_policy(VAP.replace("NAME", name), "owner label"),
        Engine::Gatekeeper => owner_label_policy(
            GATEKEEPER
                .replace("PACKAGE", &name.replace(['-', '.'], "_"))
                .replace("TEMPLATE", &kind_of(name).to_lowercase())
                .replace("NAME", name)
                .replace("KIND", &kind_of(name)),
            "owner",
        ),
        Engine::Kyverno => owner_label_policy(KYVERNO.replace("NAME", name), "owner label"),
        Engine::PodSecurity => Content {
            source: POD_SECURITY.replace("NAME", name),
            description: "The Pod Security Standards baseline level, as namespace labels.".into(),
            remediation: "Change the pods the apiserver names so they meet the level.".into(),
            tests: vec![
                case(
                    "an ordinary pod is allowed",
                    &labelled_pod(),
                    Expect::Allow,
                    None,
                ),
                case(
                    "a privileged pod is denied",
                    &privileged_pod(),
                    Expect::Deny,
                    Some("privileged"),
                ),
            ],
            ..Content::default()
        },
    }
}

/// A template of `source` that asks every pod for an owner label, with the two cases of it: a
/// labelled pod is allowed, an unlabelled one denied with a message matching `message`.
fn owner_label_policy(source: String, message: &str) -> Content {
    Content {
        source,
        description: "Describe what this policy checks and why.".into(),
        remediation: "Say what to change when it finds something.".into(),
        tests: owner_label_cases(message),
        ..Content::default()
    }
}

fn owner_label_cases(message: &str) -> Vec<TestCase> {
    vec![
        case(
            "a labelled pod is allowed",
            &labelled_pod(),
            Expect::Allow,
            None,
        ),
        case(
            "a pod without an owner label is denied",
            UNLABELLED_POD,
            Expect::Deny,
            Some(message),
        ),
    ]
}

fn case(name: &str, yaml: &str, expect: Expect, message: Option<&str>) -> TestCase {
    TestCase {
        name: name.into(),
        yaml: yaml.into(),
        expect,
        message: message.map(Into::into),
    }
}

/// A Gatekeeper constraint kind from a policy name: `require-owner` → `RequireOwner`.
fn kind_of(name: &str) -> String {
    name.split(['-', '.'])
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

const KYVERNO: &str = "\
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: NAME
spec:
  validationFailureAction: Enforce
  background: true
  rules:
  - name: owner-label
    match:
      any:
      - resources:
          kinds: [Pod]
    validate:
      message: every pod needs an owner label
      pattern:
        metadata:
          labels:
            owner: \"?*\"
";

const VAP: &str = "\
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: NAME
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - apiGroups: [\"\"]
      apiVersions: [v1]
      operations: [CREATE, UPDATE]
      resources: [pods]
  validations:
  - expression: \"has(object.metadata.labels) && 'owner' in object.metadata.labels\"
    message: every pod needs an owner label
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: NAME
spec:
  policyName: NAME
  validationActions: [Deny]
  matchResources:
    namespaceSelector:
      matchExpressions:
      - key: kubernetes.io/metadata.name
        operator: NotIn
        values: [kube-system, kube-public, kube-node-lease, palisade-system]
";

const GATEKEEPER: &str = "\
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: TEMPLATE
spec:
  crd:
    spec:
      names:
        kind: KIND
  targets:
  - target: admission.k8s.gatekeeper.sh
    rego: |
      package PACKAGE

      violation[{\"msg\": msg}] {
        not input.review.object.metadata.labels.owner
        msg := \"every pod needs an owner label\"
      }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: KIND
metadata:
  name: NAME
spec:
  match:
    kinds:
    - apiGroups: [\"\"]
      kinds: [Pod]
    excludedNamespaces: [kube-system, kube-public, kube-node-lease, palisade-system]
";

const POD_SECURITY: &str = "\
apiVersion: palisade.dev/v1alpha1
kind: PodSecurityEntry
metadata:
  name: NAME
spec:
  level: baseline
  version: latest
";

/// The pod the blank templates' cases try, as it is: no labels, nothing privileged.
const UNLABELLED_POD: &str = "\
apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: app
    image: registry.example.com/app:1.0
";

/// The same pod with the owner label the templates ask for.
fn labelled_pod() -> String {
    UNLABELLED_POD.replace("  name: web\n", "  name: web\n  labels: {owner: team-a}\n")
}

/// The same pod with a privileged container.
fn privileged_pod() -> String {
    format!("{UNLABELLED_POD}    securityContext: {{privileged: true}}\n")
}
