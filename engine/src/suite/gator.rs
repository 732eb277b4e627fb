//! gator `Suite` files (`test.gatekeeper.sh/v1alpha1`): for each test, a ConstraintTemplate and a
//! Constraint; for each case, an object (a bare object or an `AdmissionReview`), optional inventory
//! files, and assertions on the violations.
//!
//! Assertions follow gator: `violations` is `yes` (at least one), `no` (none) or an exact count
//! (default `yes`), counted among the violations whose message matches the `message` regular
//! expression when one is given. YAML 1.1 readers turn `yes`/`no` into booleans; both spellings are
//! accepted. A case without assertions fails, as in gator.

use serde_json::Value;

use super::{one_line, read_documents, CaseResult, CaseStatus, Files};
use crate::admission::AdmissionRequest;
use crate::gatekeeper::{EnforcementPoint, Inventory, Library, Review, Violation};
use crate::source::parse_documents;

/// Run every case of the gator suite `suite` (its text is `text`; the files it names are read through
/// `files`, relative to the suite's directory). Cases are named `<test>/<case>`.
pub fn run(suite: &str, text: &str, files: &dyn Files) -> Vec<CaseResult> {
    run_with(suite, text, files, &Library::new())
}

/// [`run`], with libraries that start as `base` (its source rewrites and evaluator).
pub fn run_with(suite: &str, text: &str, files: &dyn Files, base: &Library) -> Vec<CaseResult> {
    let result = |name: String, status: CaseStatus| CaseResult {
        suite: suite.to_owned(),
        name,
        status,
    };
    let whole_suite_failed = |why: String| vec![result(String::new(), CaseStatus::Failed(why))];
    let documents = match parse_documents(suite, text) {
        Ok(documents) => documents,
        Err(error) => return whole_suite_failed(error.to_string()),
    };
    let Some(document) = documents.first() else {
        return whole_suite_failed("the suite file is empty".to_owned());
    };
    let value = &document.value;
    if value.get("kind").and_then(Value::as_str) != Some("Suite")
        || !value
            .get("apiVersion")
            .and_then(Value::as_str)
            .is_some_and(|v| v.starts_with("test.gatekeeper.sh/"))
    {
        return whole_suite_failed(
            "not a gator Suite (kind: Suite, apiVersion: test.gatekeeper.sh/v1alpha1)".to_owned(),
        );
    }
    let suite_skipped = flag(value, "skip");
    let mut results = Vec::new();
    for test in items(value, "tests") {
        let test_name = string(test, "name");
        let cases = items(test, "cases");
        let case_name = |case: &Value| format!("{test_name}/{}", string(case, "name"));
        let skip_all = if suite_skipped {
            Some("the suite is marked skip".to_owned())
        } else if flag(test, "skip") {
            Some("the test is marked skip".to_owned())
        } else if !string(test, "expansion").is_empty() {
            Some("expansion templates are not supported".to_owned())
        } else if flag(test, "invalid") {
            Some(
                "`invalid` tests check the constraint against the template's schema, which is not supported"
                    .to_owned(),
            )
        } else {
            None
        };
        if let Some(why) = skip_all {
            if cases.is_empty() {
                results.push(result(test_name.clone(), CaseStatus::Skipped(why.clone())));
            }
            for case in cases {
                results.push(result(case_name(case), CaseStatus::Skipped(why.clone())));
            }
            continue;
        }
        let library = load_library(test, files, base.clone());
        for case in cases {
            let status = if flag(case, "skip") {
                CaseStatus::Skipped("the case is marked skip".to_owned())
            } else {
                match &library {
                    Ok(library) => run_case(library, case, files),
                    Err(why) => CaseStatus::Failed(why.clone()),
                }
            };
            results.push(result(case_name(case), status));
        }
    }
    results
}

fn items<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn string(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn flag(value: &Value, key: &str) -> bool {
    value.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// A case's name and its review, or why it could not be reviewed.
pub type CaseReview = (String, Result<Review, String>);

/// The review of every case of the suite `suite` that is not skipped (named as by [`run`]), by
/// libraries that start as `base`: what [`run`] checks the assertions against, for comparing two
/// ways of evaluating.
pub fn reviews(
    suite: &str,
    text: &str,
    files: &dyn Files,
    base: &Library,
) -> Result<Vec<CaseReview>, String> {
    let documents = parse_documents(suite, text).map_err(|e| e.to_string())?;
    let value = &documents.first().ok_or("the suite file is empty")?.value;
    let mut reviews = Vec::new();
    if flag(value, "skip") {
        return Ok(reviews);
    }
    for test in items(value, "tests") {
        if flag(test, "skip") || flag(test, "invalid") || !string(test, "expansion").is_empty() {
            continue;
        }
        let library = load_library(test, files, base.clone())?;
        for case in items(test, "cases").iter().filter(|c| !flag(c, "skip")) {
            let name = format!("{}/{}", string(test, "name"), string(case, "name"));
            reviews.push((name, review_of_case(&library, case, files)));
        }
    }
    Ok(reviews)
}

fn load_library(test: &Value, files: &dyn Files, base: Library) -> Result<Library, String> {
    let template = string(test, "template");
    if template.is_empty() {
        return Err("the test has no template".to_owned());
    }
    let constraint = string(test, "constraint");
    if constraint.is_empty() {
        return Err("the test has no constraint".to_owned());
    }
    let mut library = base;
    let documents = read_documents(files, &template)?;
    library
        .add_documents(&template, &documents)
        .map_err(one_line)?;
    if library.templates().next().is_none() {
        return Err(format!("{template} holds no ConstraintTemplate"));
    }
    let documents = read_documents(files, &constraint)?;
    library
        .add_documents(&constraint, &documents)
        .map_err(one_line)?;
    if library.constraints().next().is_none() {
        return Err(format!("{constraint} holds no constraint"));
    }
    Ok(library)
}

fn run_case(library: &Library, case: &Value, files: &dyn Files) -> CaseStatus {
    match review_case(library, case, files) {
        Ok(status) => status,
        Err(why) => CaseStatus::Failed(why),
    }
}

fn review_case(library: &Library, case: &Value, files: &dyn Files) -> Result<CaseStatus, String> {
    let object_path = string(case, "object");
    if object_path.is_empty() {
        return Err("the case has no object".to_owned());
    }
    let assertions = items(case, "assertions");
    if assertions.is_empty() {
        return Err("the case has no assertions".to_owned());
    }
    let review = review_of_case(library, case, files)?;
    for assertion in assertions {
        if let Err(why) = check(assertion, &review.violations) {
            return Ok(CaseStatus::Failed(why));
        }
    }
    Ok(CaseStatus::Passed)
}

/// The review of a case's object, with the case's inventory.
fn review_of_case(library: &Library, case: &Value, files: &dyn Files) -> Result<Review, String> {
    let object_path = string(case, "object");
    let documents = read_documents(files, &object_path)?;
    let [document] = documents.as_slice() else {
        return Err(format!(
            "{object_path} must hold exactly one object, it holds {}",
            documents.len()
        ));
    };
    let mut inventory_objects = Vec::new();
    for path in items(case, "inventory") {
        let path = path.as_str().ok_or("inventory entries must be paths")?;
        inventory_objects.extend(read_documents(files, path)?.into_iter().map(|d| d.value));
    }
    let inventory = Inventory::from_objects(&inventory_objects)?;
    review_object(library, &document.value, &inventory)
}

/// Review the case's object: an `admission.k8s.io` AdmissionReview is reviewed as its request (taken
/// as written, as gator does), anything else as a bare object.
fn review_object(
    library: &Library,
    object: &Value,
    inventory: &Inventory,
) -> Result<Review, String> {
    let is_review = object.get("kind").and_then(Value::as_str) == Some("AdmissionReview")
        && object
            .get("apiVersion")
            .and_then(Value::as_str)
            .is_some_and(|v| v.starts_with("admission.k8s.io/"));
    let review = if is_review {
        let request = object
            .get("request")
            .filter(|r| !r.is_null())
            .ok_or("the AdmissionReview has no request")?;
        let request: AdmissionRequest = serde_json::from_value(request.clone())
            .map_err(|e| format!("the AdmissionReview request is malformed: {e}"))?;
        if request.object.is_none() && request.old_object.is_none() {
            return Err("the AdmissionRequest has neither object nor oldObject".to_owned());
        }
        library.review_at(&request, inventory, EnforcementPoint::Gator)
    } else {
        library.review_object(object, inventory, EnforcementPoint::Gator)
    };
    review.map_err(|e| e.to_string())
}

/// What an assertion expects of the number of matching violations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expected {
    AtLeastOne,
    None,
    Exactly(u64),
}

fn check(assertion: &Value, violations: &[Violation]) -> Result<(), String> {
    let expected = match assertion.get("violations") {
        None | Some(Value::Null) => Expected::AtLeastOne,
        Some(Value::Bool(true)) => Expected::AtLeastOne,
        Some(Value::Bool(false)) => Expected::None,
        Some(Value::String(s)) if s == "yes" => Expected::AtLeastOne,
        Some(Value::String(s)) if s == "no" => Expected::None,
        Some(Value::Number(n)) if n.as_u64().is_some() => {
            Expected::Exactly(n.as_u64().unwrap_or(0))
        }
        Some(other) => {
            return Err(format!(
            "assertion violations must be a non-negative integer, \"yes\" or \"no\", not {other}"
        ))
        }
    };
    let pattern = match assertion.get("message") {
        None | Some(Value::Null) => None,
        Some(Value::String(pattern)) => Some(
            regex::Regex::new(pattern)
                .map_err(|e| format!("invalid message regular expression {pattern:?}: {e}"))?,
        ),
        Some(other) => return Err(format!("assertion message must be a string, not {other}")),
    };
    let matching = violations
        .iter()
        .filter(|v| pattern.as_ref().is_none_or(|p| p.is_match(&v.message)))
        .count() as u64;
    let containing = pattern
        .as_ref()
        .map(|p| format!(" containing {:?}", p.as_str()))
        .unwrap_or_default();
    let failure = match expected {
        Expected::AtLeastOne if matching == 0 => Some("want at least 1".to_owned()),
        Expected::None if matching > 0 => Some("want none".to_owned()),
        Expected::Exactly(want) if matching != want => Some(format!("want exactly {want}")),
        _ => None,
    };
    match failure {
        None => Ok(()),
        Some(want) => {
            let messages: Vec<&str> = violations.iter().map(|v| v.message.as_str()).collect();
            Err(format!(
                "got {matching} violations{containing} but {want}; messages: {messages:?}"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    struct MemoryFiles(BTreeMap<&'static str, &'static str>);

    impl Files for MemoryFiles {
        fn read(&self, path: &str) -> Result<String, String> {
            self.0
                .get(path)
                .map(|s| (*s).to_owned())
                .ok_or_else(|| format!("{path}: no such file"))
        }
    }

    const TEMPLATE: &str = r#"
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: k8srequiredlabels
spec:
  crd:
    spec:
      names:
        kind: K8sRequiredLabels
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8srequiredlabels

        violation[{"msg": msg, "details": {"missing": missing}}] {
          provided := {l | input.review.object.metadata.labels[l]}
          required := {l | l := input.parameters.labels[_]}
          missing := required - provided
          count(missing) > 0
          msg := sprintf("missing labels: %v", [missing])
        }
"#;

    const CONSTRAINT: &str = r#"
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sRequiredLabels
metadata:
  name: need-owner
spec:
  match:
    kinds: [{apiGroups: [""], kinds: ["Pod"]}]
  parameters:
    labels: ["owner"]
"#;

    const SUITE: &str = r#"
kind: Suite
apiVersion: test.gatekeeper.sh/v1alpha1
tests:
- name: owner
  template: template.yaml
  constraint: constraint.yaml
  cases:
  - name: labelled
    object: good.yaml
    assertions:
    - violations: no
  - name: unlabelled
    object: bad.yaml
    assertions:
    - violations: yes
    - violations: 1
      message: "missing labels"
    - violations: 0
      message: "^nothing like this$"
  - name: wrong-expectation
    object: bad.yaml
    assertions:
    - violations: no
  - name: no-assertions
    object: good.yaml
  - name: skipped
    skip: true
    object: good.yaml
    assertions:
    - violations: no
"#;

    fn files() -> MemoryFiles {
        MemoryFiles(BTreeMap::from([
            ("template.yaml", TEMPLATE),
            ("constraint.yaml", CONSTRAINT),
            (
                "good.yaml",
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  labels:\n    owner: me\n",
            ),
            (
                "bad.yaml",
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: b\n",
            ),
        ]))
    }

    #[test]
    fn a_suite_runs_every_case_and_names_it_by_test_and_case() {
        let results = run("suite.yaml", SUITE, &files());
        let by_name: BTreeMap<&str, &CaseStatus> = results
            .iter()
            .map(|r| (r.name.as_str(), &r.status))
            .collect();
        assert_eq!(by_name["owner/labelled"], &CaseStatus::Passed);
        assert_eq!(by_name["owner/unlabelled"], &CaseStatus::Passed);
        let CaseStatus::Failed(why) = by_name["owner/wrong-expectation"] else {
            panic!(
                "expected a failure, got {:?}",
                by_name["owner/wrong-expectation"]
            );
        };
        assert!(why.contains("got 1 violations but want none"), "{why}");
        assert!(why.contains("missing labels"), "{why}");
        assert!(matches!(
            by_name["owner/no-assertions"],
            CaseStatus::Failed(_)
        ));
        assert!(matches!(by_name["owner/skipped"], CaseStatus::Skipped(_)));
        assert_eq!(results.len(), 5);
        assert!(results.iter().all(|r| r.suite == "suite.yaml"));
    }

    #[test]
    fn yes_and_no_may_be_booleans_or_strings() {
        let one = Violation {
            kind: "K".into(),
            constraint: "c".into(),
            message: "bad thing".into(),
            details: Value::Null,
            action: crate::verdict::Action::Deny,
            enforcement_action: "deny".into(),
        };
        let yes = [
            serde_json::json!({"violations": true}),
            serde_json::json!({"violations": "yes"}),
            serde_json::json!({}),
        ];
        for assertion in yes {
            assert_eq!(check(&assertion, std::slice::from_ref(&one)), Ok(()));
            assert!(check(&assertion, &[]).is_err());
        }
        for assertion in [
            serde_json::json!({"violations": false}),
            serde_json::json!({"violations": "no"}),
        ] {
            assert_eq!(check(&assertion, &[]), Ok(()));
            assert!(check(&assertion, std::slice::from_ref(&one)).is_err());
        }
        assert!(check(&serde_json::json!({"violations": "maybe"}), &[]).is_err());
        assert!(check(&serde_json::json!({"violations": -1}), &[]).is_err());
        assert!(check(&serde_json::json!({"violations": 1, "message": "("}), &[]).is_err());
    }

    #[test]
    fn a_missing_template_fails_every_case_of_its_test() {
        let mut files = files();
        files.0.remove("template.yaml");
        let results = run("suite.yaml", SUITE, &files);
        let failed = results
            .iter()
            .filter(
                |r| matches!(&r.status, CaseStatus::Failed(why) if why.contains("no such file")),
            )
            .count();
        assert_eq!(failed, 4);
    }

    #[test]
    fn a_file_that_is_not_a_suite_is_one_failure() {
        let results = run("x.yaml", "kind: Pod\napiVersion: v1\n", &files());
        assert_eq!(results.len(), 1);
        assert!(matches!(results[0].status, CaseStatus::Failed(_)));
    }
}
