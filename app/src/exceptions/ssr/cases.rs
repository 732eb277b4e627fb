//! How exceptions apply to a policy's test cases: a case whose object an active exception covers
//! is allowed, as the cluster would allow it.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::exceptions::Exception;
use crate::inventory::ssr::text_at;
use crate::policies::ssr::validate::{case_object, Ran};
use crate::policies::{CaseStatus, Content, Expect};

/// What a case's object is, for exceptions: kind, namespace, name and labels (an AdmissionReview's
/// object, or its old object on DELETE).
fn case_identity(yaml: &str) -> Option<(String, String, String, BTreeMap<String, String>)> {
    let value = case_object(yaml).ok()?;
    let (object, namespace) =
        if value.get("kind").and_then(Value::as_str) == Some("AdmissionReview") {
            let request = value.get("request")?;
            let object = request
                .get("object")
                .filter(|o| !o.is_null())
                .or_else(|| request.get("oldObject"))?
                .clone();
            let namespace = request
                .get("namespace")
                .and_then(Value::as_str)
                .map(str::to_owned);
            (object, namespace)
        } else {
            (value, None)
        };
    let field = |pointer: &str| text_at(&object, pointer).to_owned();
    let labels = object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|map| {
            map.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    let namespace = namespace.unwrap_or_else(|| field("/metadata/namespace"));
    Some((field("/kind"), namespace, field("/metadata/name"), labels))
}

/// Test runs honour exceptions: a case whose object an active exception covers is allowed, and
/// its result says which exception.
pub fn honour(content: &Content, ran: &mut Ran, exceptions: &[Exception], now_ms: i64) {
    if exceptions.is_empty() {
        return;
    }
    for (case, result) in content.tests.iter().zip(ran.results.iter_mut()) {
        let Some((kind, namespace, name, labels)) = case_identity(&case.yaml) else {
            continue;
        };
        let Some(exception) = exceptions
            .iter()
            .find(|e| e.covers(&kind, &namespace, &name, &labels, now_ms))
        else {
            continue;
        };
        let message = format!("allowed: exception {} covers it", exception.id);
        result.actual = Some(Expect::Allow.as_str().to_owned());
        result.messages = vec![message.clone()];
        if case.expect == Expect::Allow {
            result.status = CaseStatus::Passed;
            result.reason = message;
        } else {
            result.status = CaseStatus::Failed;
            result.reason = format!("expected {}, but {message}", case.expect.as_str());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exceptions::{ExceptionState, Scope};
    use crate::policies::ssr::validate::run_cases;
    use crate::policies::TestCase;

    fn pod(namespace: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: {namespace}\nspec:\n  containers:\n  - name: c\n    image: nginx\n    securityContext:\n      privileged: true\n"
        )
    }

    #[test]
    fn a_case_an_active_exception_covers_is_allowed_and_says_so() {
        let content = Content {
            source: "apiVersion: palisade.dev/v1alpha1\nkind: PodSecurityEntry\nmetadata:\n  name: baseline\nspec:\n  level: baseline\n  version: v1.30\n".into(),
            tests: vec![
                TestCase {
                    name: "excepted".into(),
                    yaml: pod("legacy"),
                    expect: Expect::Allow,
                    message: None,
                },
                TestCase {
                    name: "elsewhere".into(),
                    yaml: pod("shop"),
                    expect: Expect::Deny,
                    message: None,
                },
            ],
            ..Content::default()
        };
        let mut ran = run_cases(&content);
        assert_eq!(
            ran.results[0].status,
            CaseStatus::Failed,
            "{:?}",
            ran.results
        );
        let exception = Exception::example(
            "exc1",
            "p",
            Scope::Namespaces {
                namespaces: vec!["legacy".into()],
            },
            ExceptionState::Approved,
            2_000,
        );
        let mut expired = ran.clone();
        honour(
            &content,
            &mut expired,
            std::slice::from_ref(&exception),
            2_000,
        );
        assert_eq!(expired.results[0].status, CaseStatus::Failed);
        honour(&content, &mut ran, &[exception], 1_000);
        assert_eq!(ran.results[0].status, CaseStatus::Passed);
        assert_eq!(ran.results[0].actual.as_deref(), Some("allow"));
        assert_eq!(ran.results[0].reason, "allowed: exception exc1 covers it");
        assert_eq!(
            ran.results[1].status,
            CaseStatus::Passed,
            "{:?}",
            ran.results[1]
        );
        assert_eq!(ran.results[1].actual.as_deref(), Some("deny"));
    }
}
